# shellcheck shell=bash
# t/kernel/common.sh - what the host scripts of the kernel-client tests
# share (kernel-test.sh, kernel-raft-test.sh, kernel-lock-test.sh,
# kernel-lock-raft-test.sh): the checks before a run, the VM's network
# namespace and tap device, starting and ending the VM, the processes
# stopped at exit, the requests the guest leaves on the volume
# (guest-common.sh, host_ask) and the TAP lines.  Sourced once the script
# has set HERE (its directory).  The script defines kt_procs, which
# prints the pids to stop at exit besides the VM's.
#
# Env: top_builddir  where tesserad and tessera are (default: the source
#                    tree holding this script)
#      KEEP_LOG      copy the VM's console log there
#      KEEP_DIR      copy the daemons' logs (the temporary dir's *.log) there
#      KERNEL_WORK, TIMEOUT, ACCEL: passed on to run.sh

. "$HERE/../gateways.sh"
top_builddir=${top_builddir:-$(cd "$HERE/../.." && pwd)}
# The kernel cache lives next to this script unless that is read-only (a
# distcheck tree): then in /tmp, still shared between runs.
if [ -z "${KERNEL_WORK:-}" ] && ! [ -w "$HERE" ]; then
	export KERNEL_WORK=${TMPDIR:-/tmp}/tessera-kernel-work
fi
TMP=
RUN=
VMRC=
n=0
nfail=0
# the tap network (kt_tap_net): this side's address and the guest's
HOSTA=10.77.0.1
GUESTA=10.77.0.2
KT_TAP=
KT_NFSHOST=127.0.0.1

# ---- before anything runs ---------------------------------------------------

# kt_need TOOL...: each one on PATH, else skip (exit 77), naming its package
kt_need() {
	local t pkg
	for t; do
		command -v "$t" >/dev/null && continue
		case $t in
		rpc.statd) pkg=nfs-common ;;
		nfs-*) pkg=libnfs-utils ;;
		unshare) pkg=util-linux ;;
		ip) pkg=iproute2 ;;
		*) pkg=$t ;;
		esac
		echo "# SKIP: no $t (apt-get install $pkg)"
		exit 77
	done
}

# kt_built: tessera and tesserad are in top_builddir, else exit 1
kt_built() {
	local b
	for b in tessera tesserad; do
		[ -x "$top_builddir/$b" ] ||
			{ echo "# $top_builddir/$b not built"; exit 1; }
	done
}

# kt_setup NAME: the VM's kernel and initramfs (setup.sh); skips (77) when
# QEMU and the guest tools cannot be installed
kt_setup() {
	local rc
	echo "# $1: setup"
	bash "$HERE/setup.sh" >/dev/null
	rc=$?
	[ $rc = 77 ] && { echo "# SKIP: cannot install QEMU and guest tools"; exit 77; }
	[ $rc = 0 ] || { echo "# setup.sh failed ($rc)"; exit 1; }
}

# kt_unshare NAME ARGS...: the checks and setup, then the script again
# (with ARGS) in a network and mount namespace of its own, where both
# vanish with it; inside it, returns at once.  Needs root, rpcbind and
# rpc.statd (the guest's, from the host's /).
kt_unshare() {
	local name=$1
	shift
	[ "${KT_INSIDE:-}" = 1 ] && return 0
	[ "$(id -u)" = 0 ] || { echo "# SKIP: needs root (namespaces, tap)"; exit 77; }
	kt_need rpcbind rpc.statd unshare ip
	kt_built
	kt_setup "$name"
	KT_INSIDE=1 exec unshare --net --mount --propagation private \
		bash "$0" "$@"
}

# ---- processes --------------------------------------------------------------

# kt_stop_pid PID: SIGTERM, up to 10 s, then SIGKILL; reaped
kt_stop_pid() {
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

kt_cleanup() {
	local p
	# run.sh has its own process group (setsid): this ends QEMU too.
	[ -n "$RUN" ] && kill -- -"$RUN" 2>/dev/null
	for p in $(kt_procs); do kt_stop_pid "$p"; done
	[ -n "${KEEP_DIR:-}" ] && cp "$TMP"/*.log "$KEEP_DIR"/ 2>/dev/null
	rm -rf "$TMP"
}

# kt_tmp NAME: TMP, a temporary dir removed at exit, when every process
# the script started (kt_procs) is stopped
kt_tmp() {
	TMP=$(mktemp -d "/tmp/tessera-$1.XXXXXX") || exit 1
	trap kt_cleanup EXIT
	trap 'exit 1' INT TERM
}

# kt_free_port: a TCP port nobody listens on, below the ephemeral range
# (32768-60999 by default), where an outgoing connection can take a port
# between probe and bind
kt_free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 12000))
		listening "127.0.0.1:$p" || { echo "$p"; return 0; }
	done
	return 1
}

# kt_tessera LOG ARGS...: tessera ARGS, its output in TMP/LOG, shown (and
# exit 1) when it fails
kt_tessera() {
	local log=$TMP/$1
	shift
	"$top_builddir/tessera" "$@" >"$log" 2>&1 && return 0
	echo "# tessera $1 failed:"
	sed 's/^/#   /' "$log"
	exit 1
}

# kt_metric ADDR:PORT NAME: NAME's value on a gateway's metrics endpoint
kt_metric() {
	exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || return 1
	printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
	tr -d '\r' <&3 | awk -v n="$2" '$1 == n {print $2}'
	exec 3<&-
}

# ---- the network namespace (after kt_unshare) -------------------------------

# kt_tap_net TAP: a private /run, lo up, the tap device TAP with HOSTA/24
# for the guest (GUESTA), rpcbind on that /run (RPCB, which kt_procs
# lists); the VM goes through TAP and the host's helpers reach the
# volume at HOSTA
kt_tap_net() {
	KT_TAP=$1
	KT_NFSHOST=$HOSTA
	mount -t tmpfs run /run || { echo "# cannot mount a private /run"; exit 1; }
	ip link set lo up
	if ! ip tuntap add dev "$KT_TAP" mode tap 2>/dev/null; then
		echo "# SKIP: cannot make a tap device"; exit 77
	fi
	ip addr add $HOSTA/24 dev "$KT_TAP" && ip link set "$KT_TAP" up ||
		{ echo "# cannot set up $KT_TAP"; exit 1; }
	rpcbind -f -w & RPCB=$!
	for _ in $(seq 50); do [ -S /run/rpcbind.sock ] && break; sleep 0.1; done
	[ -S /run/rpcbind.sock ] || { echo "# rpcbind did not start"; exit 1; }
}

# kt_haproxy BIND OPTION ADDR...: HAProxy (HAP) in TCP mode on BIND,
# `balance first`: every connection to the first of the servers ADDR...
# that is up; checks every 200 ms (plain TCP connects); the sessions of
# a server marked down are shut and the client's next connection goes to
# the next one.  OPTION (or "") is added to every server line.
kt_haproxy() {
	local bind=$1 opt=$2 a i=0
	shift 2
	{
		cat <<-EOF
		global
		maxconn 256
		defaults
		mode tcp
		timeout connect 2s
		timeout client 30m
		timeout server 30m
		retries 3
		option redispatch
		frontend nfs
		bind $bind
		default_backend gateways
		backend gateways
		balance first
		default-server inter 200ms fall 1 rise 2 on-marked-down shutdown-sessions $opt
		EOF
		for a; do i=$((i + 1)); echo "server g$i $a check"; done
	} >"$TMP/haproxy.cfg"
	haproxy -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 &
	HAP=$!
	for _ in $(seq 50); do listening "$bind" && break; sleep 0.1; done
	listening "$bind" ||
		{ echo "# haproxy did not start:"; cat "$TMP/haproxy.log"; exit 1; }
}

# ---- the VM -----------------------------------------------------------------

# kt_vm_start GUEST-SCRIPT PORT MNT-PORT EXPORT [OUT]: the VM booted in the
# background (run.sh in a process group of its own: RUN), through the tap
# device if kt_tap_net made one, mounting EXPORT from PORT and MNT-PORT
# and running GUEST-SCRIPT; its console log in TMP/console.log, run.sh's
# output to OUT (default: this script's).  NFS_OPTS and GUEST_ENV, set
# for the call, go to run.sh.
kt_vm_start() {
	local net=()
	[ -n "$KT_TAP" ] &&
		net=(NETDEV="tap,id=n0,ifname=$KT_TAP,script=no,downscript=no"
		     NFS_SERVER=$HOSTA GUEST_ADDR=$GUESTA/24)
	if [ -n "${5:-}" ]; then
		env "${net[@]}" LOG="$TMP/console.log" TEST_SCRIPT="$1" \
			setsid -w bash "$HERE/run.sh" "$2" "$3" "$4" >"$5" 2>&1 &
	else
		env "${net[@]}" LOG="$TMP/console.log" TEST_SCRIPT="$1" \
			setsid -w bash "$HERE/run.sh" "$2" "$3" "$4" &
	fi
	RUN=$!
}

# kt_vm_wait: until the VM ends; VMRC is run.sh's exit status.  (Waited
# for in the background so that a signal reaches the trap at once.)
kt_vm_wait() {
	wait "$RUN"
	VMRC=$?
	RUN=
	[ -n "${KEEP_LOG:-}" ] && cp "$TMP/console.log" "$KEEP_LOG"
}

# kt_console_wait WORD: until the guest prints WORD on its console (a
# stall detector: 600 s)
kt_console_wait() {
	for _ in $(seq 6000); do
		grep -aq "$1" "$TMP/console.log" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# kt_server_end WHAT PID: the end of a run against one server WHAT (PID,
# logging to TMP/server.log): exit 1, with the log's tail, if the VM's
# checks failed or the server died
kt_server_end() {
	if ! kill -0 "$2" 2>/dev/null; then
		echo "# $1 died during the test"
		VMRC=1
	fi
	[ "$VMRC" = 0 ] && return 0
	echo "# server log (last 40 lines):"
	tail -n 40 "$TMP/server.log" | sed 's/^/#   /'
	exit 1
}

# ---- the guest's requests (guest-common.sh, host_ask) ------------------------

kt_url() { echo "nfs://$KT_NFSHOST/$1?version=3&nfsport=$PORT&mountport=$PORT"; }
kt_ls() { nfs-ls "$(kt_url /)" 2>/dev/null | awk '{print $NF}'; }

# kt_put FILE NAME: FILE copied to NAME at the volume's root; retried for
# 30 s (libnfs may fail just after a gateway restarts)
kt_put() {
	for _ in $(seq 30); do
		nfs-cp "$1" "$(kt_url "/$2")" >"$TMP/nfs-cp.log" 2>&1 && return 0
		sleep 1
	done
	echo "# host: nfs-cp $2 failed:"
	sed 's/^/#   /' "$TMP/nfs-cp.log"
	return 1
}

# kt_tell WORD: an empty file WORD at the volume's root, the guest's cue
kt_tell() {
	: >"$TMP/empty"
	kt_put "$TMP/empty" "$1"
}

# kt_serve KIND: each request ktest-KIND.NAME that the guest left at the
# volume's root and that is not served yet is read into TMP/request and
# handed to the script's kt_do_KIND; when that succeeds, what it wrote to
# TMP/answer goes back as ktest-KIND-done.NAME.  Returns 0 if it answered
# one.
KT_SEEN=" "
kt_serve() {
	local f rc=1
	for f in $(kt_ls | grep -E "^ktest-$1\.[a-z0-9-]+\$"); do
		[[ $KT_SEEN == *" $f "* ]] && continue
		nfs-cat "$(kt_url "/$f")" >"$TMP/request" 2>/dev/null || continue
		KT_SEEN="$KT_SEEN$f "
		: >"$TMP/answer"
		"kt_do_$1" && kt_put "$TMP/answer" "ktest-$1-done.${f#ktest-$1.}" &&
			rc=0
	done
	return $rc
}

# ---- TAP --------------------------------------------------------------------

kt_ok() {   # NAME RC
	n=$((n + 1))
	if [ "$2" = 0 ]; then echo "ok $n - $1"
	else echo "not ok $n - $1"; nfail=$((nfail + 1)); fi
}

# kt_vm_tap: the guest's TAP lines (run.sh's output in TMP/run.out)
# without their plan; the host's own checks are numbered after them
kt_vm_tap() {
	grep -v '^1\.\.' "$TMP/run.out"
	n=$(grep -cE '^(ok|not ok) ' "$TMP/run.out")
}

# kt_group_end: the end of a run against the raft group behind HAProxy:
# the gateways' and HAProxy's logs when a check failed, the plan, the
# verdict
kt_group_end() {
	local i
	if [ $nfail != 0 ]; then
		for i in 1 2 3; do
			echo "# gateway $i log (last 20 lines):"
			tail -n 20 "$TMP/n$i.log" | sed 's/^/#   /'
		done
		echo "# haproxy log:"
		tail -n 15 "$TMP/haproxy.log" | sed 's/^/#   /'
	fi
	echo "1..$n"
	[ $nfail = 0 ]
}
