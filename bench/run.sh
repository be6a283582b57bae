#!/bin/bash
# bench/run.sh - Tessera against NFS-Ganesha, side by side, in one run.
#
# Usage: bench/run.sh [--quick] [--only WORKLOAD[,WORKLOAD...]] [--reps N]
#                     [--servers tessera,tessera-wb,tessera-async,ganesha,
#                                ganesha5[,tessera-s3][,tessera-noinline]]
#                     [--keep]
# Workloads: seqwrite seqread randrw smallfiles meta readdir jfsbench
#
# Installs what it needs (Debian packages), builds Tessera if needed (in
# $BUILD, default <repo>/build-bench), measures the ceilings (loopback TCP
# with iperf3, the disk with O_DIRECT dd), then runs every workload against
# every server with the same client (bench/nfsload), the same data and the
# same parameters, REPS times (in rounds: the servers take turns), and prints
# the medians as tables.  ganesha is Debian 12's NFS-Ganesha 4.3; ganesha5
# is 5.9 from bookworm-backports, unpacked beside the run (see
# ganesha5_prepare), never installed over 4.3.  Results go to <repo>/results/<timestamp>/ (results.md,
# raw.txt, chart.png, logs).
# TESSERAD_OPTS="-o inline_max=0" adds options to every tesserad started.
# Benchmarks print figures; they never fail on speed.  See bench/README.
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
. "$src/bench/common.sh" # options, want, say, bench_build, bench_nfsload, ports
REPS=
SERVERS=tessera,tessera-wb,tessera-async,ganesha,ganesha5
TESSERAD_OPTS=${TESSERAD_OPTS:-}
while [ $# -gt 0 ]; do
	bench_opt "$@" && { shift "$OPT_WORDS"; continue; }
	case $1 in
	--reps) REPS=$2; shift ;;
	--servers) SERVERS=$2; shift ;;
	-h|--help) sed -n 2,16p "$0"; exit 0 ;;
	*) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done

# Sizes: the issue's figures, or smaller ones with --quick.
if [ $QUICK = 1 ]; then
	REPS=${REPS:-1}
	SEQ_SIZE=256M RAND_SIZE=256M RAND_SECS=10 SMALL_FILES=2000
	META_FILES=5000 META_SECS=8 READDIR_SIZES="10000 100000"
	JFS_BIG=256M JFS_SMALL=100 DD_MB=512
else
	REPS=${REPS:-3}
	SEQ_SIZE=1G RAND_SIZE=1G RAND_SECS=30 SMALL_FILES=10000
	META_FILES=20000 META_SECS=20 READDIR_SIZES="10000 100000 1000000"
	JFS_BIG=1G JFS_SMALL=100 DD_MB=2048
fi
PHASE_TIMEOUT=${PHASE_TIMEOUT:-1800}
ALL="seqwrite seqread randrw smallfiles meta readdir jfsbench"
for w in ${ONLY//,/ }; do
	[[ " $ALL " == *" $w "* ]] ||
		{ echo "unknown workload $w" >&2; exit 2; }
done

stamp=$(date +%Y%m%d-%H%M%S)
out=$src/results/$stamp
mkdir -p "$out"
raw=$out/raw.txt
: >"$raw"
work=$(mktemp -d /var/tmp/tessera-bench-XXXXXX)

# --- processes we start, stopped by PID whatever happens -----------------
srv_pid=
rpcbind_pid=
iperf_pid=
# tessera-s3: radosgw (t/s3/radosgw.sh; reused when one answers, else
# started here and stopped at the end) and a bucket of this run
export S3_PORT=${S3_PORT:-7480}
export S3_ACCESS_KEY=${S3_ACCESS_KEY:-TESSERAKEY}
export S3_SECRET_KEY=${S3_SECRET_KEY:-TESSERASECRET}
S3_ENDPOINT=http://127.0.0.1:$S3_PORT
RGW=$src/t/s3/radosgw.sh
rgw_started=0
bucket=
s3curl() { # radosgw wants the payload hash header, which curl signs
	curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" \
		--user "$S3_ACCESS_KEY:$S3_SECRET_KEY" -H "x-amz-content-sha256: \
e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" "$@"
}
cleanup() {
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null &&
		wait "$srv_pid" 2>/dev/null
	[ -n "$iperf_pid" ] && kill "$iperf_pid" 2>/dev/null
	[ -n "$rpcbind_pid" ] && kill "$rpcbind_pid" 2>/dev/null
	[ -d "$work/tessera-s3/meta" ] && srv_remove tessera-s3
	[ -n "$bucket" ] && s3curl -X DELETE "$S3_ENDPOINT/$bucket" >/dev/null
	[ $rgw_started = 1 ] && "$RGW" stop >/dev/null 2>&1
	if [ $KEEP = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- packages and build --------------------------------------------------
need=
for p in nfs-ganesha nfs-ganesha-vfs rpcbind iperf3 gnuplot-nox libnfs-dev \
	 liblmdb-dev strace curl; do
	dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
	say "installing:$need"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q $need >"$out/apt.log" 2>&1 ||
		{ apt-get update -q >>"$out/apt.log" 2>&1 &&
		  apt-get install -y -q $need >>"$out/apt.log" 2>&1; } ||
		{ echo "apt-get failed, see $out/apt.log" >&2; exit 1; }
fi
bench_build
bench_nfsload
record() { # stdin: nfsload output; keeps R lines, shows the human ones
	while IFS= read -r line; do
		case $line in
		R\ *) echo "$line" >>"$raw" ;;
		*) echo "    $line" | tee -a "$out/progress.log" ;;
		esac
	done
}

# --- ceilings --------------------------------------------------------------
DROP=yes
SETTLE=${SETTLE:-5}
sync
if ! (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
	DROP=no
	say "cannot drop the page cache here: cold reads are not cold"
fi
ceilings() {
	local p bps t0 t1
	free_port; p=$port
	iperf3 -s -1 -B 127.0.0.1 -p "$p" >"$out/iperf3-server.log" 2>&1 &
	iperf_pid=$!
	sleep 0.5
	bps=$(iperf3 -c 127.0.0.1 -p "$p" -t 3 -J 2>>"$out/iperf3.log" |
	      tee -a "$out/iperf3.log" | python3 -c 'import json, sys
print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"])' \
	      2>/dev/null)
	wait "$iperf_pid" 2>/dev/null; iperf_pid=
	[ -n "$bps" ] && echo "R ceiling - loopback_MBps $(awk -v b="$bps" \
		'BEGIN{print b/8/1e6}')" >>"$raw"
	t0=$(date +%s.%N)
	dd if=/dev/zero of="$work/dd.test" bs=1M count="$DD_MB" oflag=direct \
		conv=fsync 2>>"$out/dd.log"
	t1=$(date +%s.%N)
	echo "R ceiling - disk_write_MBps $(awk -v n="$DD_MB" -v a="$t0" \
		-v b="$t1" 'BEGIN{print n*1048576/(b-a)/1e6}')" >>"$raw"
	t0=$(date +%s.%N)
	dd if="$work/dd.test" of=/dev/null bs=1M iflag=direct 2>>"$out/dd.log"
	t1=$(date +%s.%N)
	echo "R ceiling - disk_read_MBps $(awk -v n="$DD_MB" -v a="$t0" \
		-v b="$t1" 'BEGIN{print n*1048576/(b-a)/1e6}')" >>"$raw"
	rm -f "$work/dd.test"
	grep '^R ceiling' "$raw" | sed 's/^R ceiling - /    ceiling /' |
		tee -a "$out/progress.log"
}

# --- servers ---------------------------------------------------------------
WB_OK=no
"$BUILD/tesserad" --help 2>&1 | grep -q '^ *writeback ' && WB_OK=yes
srv=		# name of the running server
url=
mport=		# the running tesserad's metrics port
srv_start() { # $1 server name; starts it on its existing data
	local p m log=$out/$1.log
	free_port; p=$port
	mport=
	case $1 in
	tessera|tessera-wb|tessera-async|tessera-s3|tessera-noinline)
		local o=()
		free_port; mport=$port
		[ "$1" = tessera-wb ] && mkdir -p "$work/$1/cache" &&
			o=(-o cache_dirs="$work/$1/cache" -o writeback=yes)
		# the export option async: metadata operations answered
		# before their commit is flushed (a row of its own, so the
		# default's figures stay those of full durability)
		# small files' bytes in objects, as before inline data
		# (tessera.conf(5) inline_max): the same run's before/after
		[ "$1" = tessera-noinline ] && o=(-o inline_max=0)
		[ "$1" = tessera-async ] &&
			echo "/ 127.0.0.1(rw,no_root_squash,insecure,async)" \
				>"$work/$1/exports" &&
			o=(--exports "$work/$1/exports")
		"$BUILD/tesserad" --meta "lmdb://$work/$1/meta" \
			--listen "127.0.0.1:$p" --foreground --no-rpcbind \
			--metrics-listen "127.0.0.1:$mport" \
			-L warn "${o[@]}" $TESSERAD_OPTS 2>>"$log" &
		srv_pid=$!
		url="nfs://127.0.0.1/?version=3&nfsport=$p&mountport=$p"
		;;
	ganesha|ganesha5)
		local g=$work/$1 bin=ganesha.nfsd libs=
		free_port; m=$port
		sed -e "s|@NFS_PORT@|$p|" -e "s|@MNT_PORT@|$m|" \
		    -e "s|@EXPORT_DIR@|$g/export|" \
		    -e "s|@RECOVERY_DIR@|$g/recovery|" \
		    "$src/bench/ganesha.conf.in" >"$g/ganesha.conf"
		if [ "$1" = ganesha5 ]; then
			# its own FSAL and libraries, from the unpacked tree
			sed -i "s|^NFS_CORE_PARAM {|&\n\tPlugins_Dir = \
$G5_ROOT/usr/lib/x86_64-linux-gnu/ganesha;|" "$g/ganesha.conf"
			bin=$G5_ROOT/usr/bin/ganesha.nfsd
			libs=$G5_ROOT/usr/lib/ganesha:$G5_ROOT/usr/lib/x86_64-linux-gnu
		fi
		LD_LIBRARY_PATH=$libs "$bin" -F -f "$g/ganesha.conf" \
			-L "$log" -p "$g/pid" >>"$log" 2>&1 &
		srv_pid=$!
		url="nfs://127.0.0.1/export?version=3&nfsport=$p&mountport=$m"
		;;
	esac
	srv=$1
	wait_port "$p" "$srv_pid" ||
		{ echo "$1 did not start, see $log" >&2; tail "$log" >&2
		  exit 1; }
	# Ganesha answers MOUNT a little after it listens.
	for _ in $(seq 50); do
		timeout 10 "$LOAD" -f / readdir "$url" >/dev/null 2>&1 &&
			break
		sleep 0.2
	done
}
srv_stop() {
	[ -n "$srv_pid" ] || return 0
	kill "$srv_pid" 2>/dev/null
	wait "$srv_pid" 2>/dev/null
	srv_pid=
}
srv_restart() { # cold: server restarted and the page cache dropped
	srv_stop
	sync
	[ $DROP = yes ] && echo 3 >/proc/sys/vm/drop_caches
	srv_start "$srv"
}
settle() { # every server starts from the same memory state
	# On a VM whose free memory goes back to the hypervisor (free page
	# reporting), the first touch of a page the host took back costs
	# ~10x: 256 MiB written into the page cache at ~350 MB/s instead of
	# ~4.5 GB/s into pages freed less than ~2 s before.  Without this,
	# a server started right after another one's data was deleted
	# writes into warm memory and the first one into cold.
	sync
	[ $DROP = yes ] && echo 3 >/proc/sys/vm/drop_caches
	sleep "$SETTLE"
}
srv_fresh() { # $1 server: empty volume/export, started
	settle
	rm -rf "${work:?}/$1"
	mkdir -p "$work/$1"
	case $1 in
	tessera|tessera-wb|tessera-async|tessera-s3|tessera-noinline)
		local store="file://$work/$1/obj"
		# a prefix of its own in the bucket for every fresh volume
		[ "$1" = tessera-s3 ] && s3_vols=$((s3_vols + 1)) &&
			store="s3://$bucket/v$s3_vols?endpoint=$S3_ENDPOINT"
		"$BUILD/tessera" format --trash-days 0 "lmdb://$work/$1/meta" \
			"$store" bench >>"$out/$1.log" 2>&1 ||
			{ echo "tessera format failed" >&2; exit 1; }
		;;
	ganesha|ganesha5)
		mkdir -p "$work/$1/export" "$work/$1/recovery"
		if ! rpcinfo -p 127.0.0.1 >/dev/null 2>&1; then
			rpcbind -f -w >/dev/null 2>&1 &
			rpcbind_pid=$!
			sleep 0.5
		fi
		;;
	esac
	srv_start "$1"
}
srv_remove() { # $1 server, stopped: its volume's data removed
	# objects in the (shared) radosgw go with tessera destroy
	[ "$1" = tessera-s3 ] && [ -d "$work/$1/meta" ] &&
		"$BUILD/tessera" destroy --yes "lmdb://$work/$1/meta" \
			>>"$out/$1.log" 2>&1
	rm -rf "${work:?}/$1"
}
s3_vols=0
# NFS-Ganesha 5.9 (bookworm-backports) beside Debian's 4.3: its packages
# (nfs-ganesha, nfs-ganesha-vfs and the libntirpc they need) downloaded
# once and unpacked into $G5_ROOT, run from there with their own
# libraries and FSAL.  Sets G5_VERSION; fails when backports cannot give
# them.
G5_ROOT=${G5_ROOT:-/var/cache/tessera-bench/ganesha5}
ganesha5_prepare() {
	local v dl ntirpc f
	if [ -x "$G5_ROOT/usr/bin/ganesha.nfsd" ]; then
		G5_VERSION=$(cat "$G5_ROOT/VERSION" 2>/dev/null)
		return 0
	fi
	v=$(apt-cache madison nfs-ganesha 2>/dev/null |
		awk -F' *[|] *' '$2 ~ /bpo12/ {print $2; exit}')
	if [ -z "$v" ]; then
		echo "deb http://deb.debian.org/debian bookworm-backports main" \
			>/etc/apt/sources.list.d/tessera-bench-backports.list
		apt-get update -q >>"$out/apt.log" 2>&1
		v=$(apt-cache madison nfs-ganesha 2>/dev/null |
			awk -F' *[|] *' '$2 ~ /bpo12/ {print $2; exit}')
	fi
	[ -n "$v" ] || return 1
	ntirpc=$(apt-cache show "nfs-ganesha=$v" 2>/dev/null |
		grep -o 'libntirpc[0-9.]*' | head -1)
	[ -n "$ntirpc" ] || return 1
	dl=$(mktemp -d /var/tmp/tessera-g5-XXXXXX)
	chmod 755 "$dl"	# apt downloads as _apt
	(cd "$dl" && apt-get download -q "nfs-ganesha=$v" \
		"nfs-ganesha-vfs=$v" "$ntirpc/bookworm-backports") \
		>>"$out/apt.log" 2>&1 || { rm -rf "$dl"; return 1; }
	mkdir -p "$G5_ROOT.new"
	for f in "$dl"/*.deb; do
		dpkg-deb -x "$f" "$G5_ROOT.new" || { rm -rf "$dl"; return 1; }
	done
	rm -rf "$dl"
	echo "$v" >"$G5_ROOT.new/VERSION"
	rm -rf "$G5_ROOT" && mv "$G5_ROOT.new" "$G5_ROOT"
	G5_VERSION=$v
}
srv_buffer_limit() { # the configured buffer limit, as tesserad reports it
	"$BUILD/tesserad" --help 2>&1 |
		awk '/^ *buffer_limit/ {getline; gsub(/[()]/, ""); print $2}'
}

# --- workloads -------------------------------------------------------------
L() { # label, then nfsload arguments: runs one phase against $srv
	local label=$1; shift
	# Bounded: a wedged server costs this phase, not the whole run.
	timeout "$PHASE_TIMEOUT" "$LOAD" -l "$label" -S "$srv" "$@" "$url" \
		2>>"$out/nfsload.err" | record
	[ "${PIPESTATUS[0]}" = 0 ] ||
		say "  $label on $srv failed (see $out/nfsload.err)"

}

# Flushes per file: the phase's workload again, on FLUSH_FILES fresh files
# in a directory of its own, with strace counting the server's calls that
# wait for the disk (fsync, fdatasync, syncfs, sync, msync; not
# sync_file_range, which only starts writeback).  A separate pass: strace
# stops the server at every system call, which would slow the measured
# phase itself.  The count is the server's, whatever other processes on
# the machine flush (/proc/diskstats counts the whole device).
FLUSH_FILES=${FLUSH_FILES:-500}
FLUSH_CALLS="fsync fdatasync syncfs sync msync"
flushes() { # label dir n-files nfsload-args...: one R line, flushes_per_file
	local label=$1 d=$2 n=$3 st sp c; shift 3
	[ "$FLUSH_FILES" -lt "$n" ] && n=$FLUSH_FILES
	st=$out/strace.$srv.$label.$r
	L setup -f "$d" mkdir
	strace -q -c -f -e "trace=${FLUSH_CALLS// /,},sync_file_range" \
		-o "$st" -p "$srv_pid" 2>>"$out/strace.err" &
	sp=$!
	# strace attaches to the threads one by one: wait until every
	# thread of the server has it as its tracer.
	for _ in $(seq 100); do
		! grep -L "^TracerPid:[[:space:]]*$sp$" \
			/proc/"$srv_pid"/task/*/status 2>/dev/null |
			grep -q . && break
		sleep 0.1
	done
	L setup -f "$d" -n "$n" "$@" create
	kill -INT "$sp" 2>/dev/null
	wait "$sp" 2>/dev/null
	c=$(awk -v calls=" $FLUSH_CALLS " '
		index(calls, " " $NF " ") && $4 ~ /^[0-9]+$/ { t += $4 }
		END { print t + 0 }' "$st" 2>/dev/null)
	if [ -s "$st" ]; then
		echo "R $label $srv flushes_per_file $(awk -v c="$c" -v n="$n" \
			'BEGIN { printf "%.3f", c / n }')" >>"$raw"
		say "  $label on $srv: $c flushes for $n files" \
			"($(awk -v c="$c" -v n="$n" 'BEGIN { printf "%.2f", c / n }')" \
			"per file; strace -c: $st)"
	else
		say "  $label on $srv: no flush count (strace failed, see" \
			"$out/strace.err)"
	fi
}

# Objects stored per file: tesserad's tessera_objstore_puts_total before
# and after the phase (S3 PUTs accepted; files renamed into place by
# file://).  With writeback the uploads trail the phase: the count is
# what was stored by its end.
puts() { # the running tesserad's objects stored so far (empty: unknown)
	[ -n "$mport" ] || return 0
	curl -sf "http://127.0.0.1:$mport/metrics" 2>/dev/null |
		awk '$1 == "tessera_objstore_puts_total" { print $2; exit }'
}
puts_per_file() { # label before after n-files: one R line
	[ -n "$2" ] && [ -n "$3" ] || return 0
	echo "R $1 $srv puts_per_file $(awk -v a="$2" -v b="$3" -v n="$4" \
		'BEGIN { printf "%.3f", (b - a) / n }')" >>"$raw"
}

w_seqwrite() {
	local r
	for r in $RUN_REPS; do
		say "$srv seqwrite $SEQ_SIZE, 1 MiB x 8 in flight, rep $r"
		L seqwrite -f "/seq.$r" -s "$SEQ_SIZE" -b 1M -q 8 \
			-m "$srv_pid" write
		seq_file=/seq.$r
	done
}
w_seqread() {
	local r
	for r in $RUN_REPS; do
		if [ -z "$seq_file" ]; then # seqwrite not run on this volume
			seq_file=/seq.0
			L setup -f $seq_file -s "$SEQ_SIZE" -b 1M -q 8 write
		fi
		say "$srv seqread cold (restart, drop caches: $DROP), rep $r"
		srv_restart
		L seqread-cold -f $seq_file -b 1M -q 8 read
		say "$srv seqread warm, rep $r"
		L seqread-warm -f $seq_file -b 1M -q 8 read
	done
}
w_randrw() {
	local r
	say "$srv randrw: writing the $RAND_SIZE file"
	L setup -f /rand -s "$RAND_SIZE" -b 1M -q 8 write
	for r in $RUN_REPS; do
		say "$srv randrw 4 KiB 50% reads, 16 in flight," \
			"${RAND_SECS}s, rep $r"
		L randrw -f /rand -b 4k -q 16 -n 10000000 -t "$RAND_SECS" \
			-m "$srv_pid" randrw
		# memory given back: the server's RssAnon 10 s after the
		# last write (and its COMMIT)
		sleep 10
		echo "R randrw $srv rssanon_after_10s_MiB $(awk \
			'/^RssAnon:/ { printf "%.1f", $2 / 1024 }' \
			"/proc/$srv_pid/status")" >>"$raw"
	done
}
w_smallfiles() {
	local r c d p0 n=$SMALL_FILES
	for r in $RUN_REPS; do
		for c in 1 4; do
			d=/small.$c.$r
			L setup -f "$d" mkdir
			say "$srv smallfiles $n x 4 KiB, $c client(s), rep $r"
			p0=$(puts)
			L "small-create-${c}c" -f "$d" -n "$n" -b 4k -q 8 \
				-p "$c" create
			puts_per_file "small-create-${c}c" "$p0" "$(puts)" "$n"
			flushes "small-create-${c}c" "$d.flush" "$n" -b 4k \
				-q 8 -p "$c"
			L "small-getattr-${c}c" -f "$d" -n "$n" -q 8 \
				-p "$c" stat
			L "small-read-${c}c" -f "$d" -n "$n" -b 4k -q 8 \
				-p "$c" readf
			L "small-remove-${c}c" -f "$d" -n "$n" -q 8 \
				-p "$c" remove
		done
	done
}
w_meta() {
	local r
	say "$srv meta: tree of $META_FILES files in 10 directories"
	L setup -f /meta0 mkdir
	L setup -d 10 -f /meta0 mkdir
	L setup -f /meta0 -d 10 -n "$META_FILES" -b 0 -q 16 -p 2 create
	L setup -f /meta0 -d 10 -n "$META_FILES" -q 16 stat  # warm it
	for r in $RUN_REPS; do
		say "$srv meta LOOKUP+GETATTR storm, 2 clients x 16," \
			"${META_SECS}s, rep $r"
		L meta-stat -f /meta0 -d 10 -N "$META_FILES" -n 100000000 \
			-t "$META_SECS" -q 16 -p 2 statrand
	done
}
w_readdir() {
	local n r
	for n in $READDIR_SIZES; do
		say "$srv readdir: creating $n empty files"
		L setup -f "/rd$n" mkdir
		L "readdir-create-$n" -f "/rd$n" -n "$n" -b 0 -q 32 -c 2 \
			-p 2 create
		for r in $(seq "$REPS"); do
			say "$srv readdir $n entries (server restarted), rep $r"
			srv_restart
			L "readdir-$n" -f "/rd$n" -m "$srv_pid" readdir
		done
	done
}
w_jfsbench() {
	local r t d p0
	for r in $RUN_REPS; do
		for t in 1 4; do
			d=/jfs.$t.$r
			L setup -f "$d" mkdir
			L setup -f "$d/small" mkdir
			say "$srv jfsbench $t thread(s): big $JFS_BIG," \
				"$JFS_SMALL x 128 KiB each, rep $r"
			L "jfs-bigwrite-${t}t" -f "$d/big" -P -p "$t" \
				-s "$JFS_BIG" -b 1M -q 1 write
			L "jfs-bigread-${t}t" -f "$d/big" -P -p "$t" -b 1M \
				-q 1 read
			p0=$(puts)
			L "jfs-smallwrite-${t}t" -f "$d/small" \
				-n $((JFS_SMALL * t)) -b 128k -q 1 -p "$t" \
				create
			puts_per_file "jfs-smallwrite-${t}t" "$p0" "$(puts)" \
				$((JFS_SMALL * t))
			flushes "jfs-smallwrite-${t}t" "$d/small.flush" \
				$((JFS_SMALL * t)) -b 128k -q 1 -p "$t"
			L "jfs-smallread-${t}t" -f "$d/small" \
				-n $((JFS_SMALL * t)) -b 128k -q 1 -p "$t" readf
			L "jfs-stat-${t}t" -f "$d/small" -n $((JFS_SMALL * t)) \
				-q 1 -p "$t" stat
		done
	done
}

# --- the run ---------------------------------------------------------------
say "Tessera vs NFS-Ganesha: reps $REPS, quick $QUICK," \
	"workloads ${ONLY:-all}, results in $out"
say "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)," \
	"data in $work ($(df -h "$work" | awk 'NR==2 {print $1}'))"
say "ceilings: loopback TCP (iperf3) and disk O_DIRECT ($DD_MB MiB)"
ceilings
servers=()
for s in ${SERVERS//,/ }; do
	if [ "$s" = tessera-wb ] && [ $WB_OK = no ]; then
		say "tesserad has no writeback option yet: skipping tessera-wb"
		continue
	fi
	if [ "$s" = ganesha5 ]; then
		if ! ganesha5_prepare; then
			say "no NFS-Ganesha 5.9 from bookworm-backports (see" \
				"$out/apt.log): skipping ganesha5"
			continue
		fi
		say "ganesha5: NFS-Ganesha $G5_VERSION unpacked in $G5_ROOT"
	fi
	if [ "$s" = tessera-s3 ]; then
		if ! "$RGW" status >/dev/null 2>&1; then
			say "starting radosgw (t/s3/radosgw.sh)"
			if "$RGW" start >"$out/radosgw.log" 2>&1; then
				rgw_started=1
			else
				say "no radosgw (see $out/radosgw.log):" \
					"skipping tessera-s3"
				continue
			fi
		fi
		bucket=tessera-bench-$$
		s3curl -X PUT "$S3_ENDPOINT/$bucket" >/dev/null || {
			say "cannot create bucket $bucket: skipping tessera-s3"
			bucket=
			continue
		}
		export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY
		export AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
	fi
	servers+=("$s")
	if [ "${s#tessera}" != "$s" ]; then
		echo "R buffer_limit $s configured_MiB $(srv_buffer_limit |
			awk '{v=$1+0; if ($1 ~ /G$/) v*=1024;
			      if ($1 ~ /k$/) v/=1024; print v}')" >>"$raw"
	fi
done
# The servers take turns: each repetition is a round in which every server,
# on a fresh volume, runs one repetition of every workload; the order
# rotates from round to round.  So each server meets the machine (the VM's
# page cache and free memory, the disk's backlog) in the same states, not
# one server early in the run and another late.  readdir, whose
# directories are created once and listed REPS times, runs per server
# after the rounds.
seq_file=
rounds=0
for w in $ALL; do
	[ "$w" != readdir ] && want "$w" && rounds=$REPS
done
for r in $(seq "$rounds"); do
	RUN_REPS=$r
	n=${#servers[@]}
	for i in $(seq 0 $((n - 1))); do
		s=${servers[$(((i + r - 1) % n))]}
		say "=== round $r of $REPS: $s ==="
		srv_fresh "$s"
		seq_file=
		for w in $ALL; do
			[ "$w" != readdir ] && want "$w" && "w_$w"
		done
		srv_stop
		srv_remove "$s"
	done
done
if want readdir; then
	for s in "${servers[@]}"; do
		say "=== readdir: $s ==="
		srv_fresh "$s"
		w_readdir
		srv_stop
		srv_remove "$s"
	done
fi

say "summary"
python3 "$src/bench/report.py" "$raw" "$out" "quick=$QUICK reps=$REPS \
drop_caches=$DROP load=$(cut -d' ' -f1-3 /proc/loadavg)" |
	tee "$out/summary.txt"
if [ -f "$out/chart.gp" ]; then
	gnuplot "$out/chart.gp" >"$out/gnuplot.log" 2>&1 &&
		say "chart: $out/chart.png" ||
		say "gnuplot failed, see $out/gnuplot.log"
fi
say "results: $out/results.md"
exit 0
