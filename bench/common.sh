# bench/common.sh - what bench/run.sh and bench/raft.sh share.  Sourced
# once src (the source tree) is set; the functions below use out (the
# results directory) and work (a scratch directory), set before they run.

# The options every benchmark takes.
QUICK=0
ONLY=
KEEP=0
# bench_opt ARGS...: when $1 is --quick, --only PART[,PART...] (or
# --only=...) or --keep, sets QUICK, ONLY or KEEP, and OPT_WORDS to the
# number of words it took; returns 1 for anything else.
bench_opt() {
	OPT_WORDS=1
	case $1 in
	--quick) QUICK=1 ;;
	--only)
		[ $# -ge 2 ] || { echo "--only wants a value" >&2; exit 2; }
		ONLY="${ONLY:+$ONLY,}$2"; OPT_WORDS=2 ;;
	--only=*) ONLY="${ONLY:+$ONLY,}${1#--only=}" ;;
	--keep) KEEP=1 ;;
	*) return 1 ;;
	esac
}
# want PART: PART was asked for (every part, without --only)
want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

say() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$out/progress.log"; }

# Tessera built in $BUILD (default $src/build-bench) unless it is there
# already; exits on a failed build.
bench_build() {
	BUILD=${BUILD:-$src/build-bench}
	[ -x "$BUILD/tesserad" ] && [ -x "$BUILD/tessera" ] && return 0
	say "building Tessera in $BUILD"
	[ -x "$src/scripts/install-deps.sh" ] &&
		"$src/scripts/install-deps.sh" >"$out/deps.log" 2>&1
	( cd "$src" && { [ -x configure ] || autoreconf -fi; } &&
	  mkdir -p "$BUILD" && cd "$BUILD" &&
	  { [ -f Makefile ] || "$src/configure"; } && make -j2 ) \
		>"$out/build.log" 2>&1 ||
		{ echo "build failed, see $out/build.log" >&2; exit 1; }
}

# The load generator, built here so it is always the current source:
# sets LOAD.
bench_nfsload() {
	LOAD=$work/nfsload
	cc -O2 -std=gnu11 -Wall -o "$LOAD" "$src/bench/nfsload.c" -lnfs ||
		{ echo "cannot build bench/nfsload.c (libnfs-dev)" >&2; exit 1; }
}

# Below the ephemeral range: a port the kernel may hand to an outgoing
# connection (a client's, or the probe below) can be taken between the
# probe and the server's bind ("Address already in use").
eph_lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
eph_lo=${eph_lo:-32768}
port_base=$((eph_lo > 12000 ? eph_lo - 10000 + $$ % 8000 : 2000 + $$ % 8000))
free_port() { # sets $port to a TCP port nobody listens on (no subshell:
	# the next call must not hand out the same one)
	port=$port_base
	while (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do
		port=$((port + 1))
	done
	port_base=$((port + 1))
}
wait_port() { # $1 port, $2 pid, $3 tenths of a second (default 300)
	for _ in $(seq "${3:-300}"); do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
