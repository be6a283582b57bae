#!/bin/bash
# NFS locks through the Linux kernel client: the VM mounts tesserad
# without nolock and runs guest-locks.sh (fcntl and flock across
# processes, a blocked lock granted by a GRANTED callback when the
# holder unlocks, a counter from two mounts, a lock reclaimed across a
# gateway restart).  The gateway's metrics listen on the tap's address,
# where the guest reads them (wget).
#
# The gateway must call the guest back (NLM GRANTED, NSM SM_NOTIFY), which
# QEMU's user-mode network cannot carry, and clients find the lock
# service through rpcbind.  So the script runs itself in a network and
# mount namespace of its own (unshare; both vanish with it): a tap device
# 10.77.0.1/24 for the guest (10.77.0.2), rpcbind on a private /run, and
# tesserad on 10.77.0.1 registered there.  Nothing is left behind and
# nothing of the host's network or rpcbind is touched.
#
# Env: top_builddir, KEEP_LOG, KERNEL_WORK, TIMEOUT, ACCEL as
# kernel-test.sh; KLOCK_ONLY=t_NAME runs one check of guest-locks.sh.  Exit: 0 all guest checks passed, 1 something failed,
# 77 QEMU, the guest tools, rpcbind or a tap device are not available.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
top_builddir=${top_builddir:-$(cd "$HERE/../.." && pwd)}
if [ -z "${KERNEL_WORK:-}" ] && ! [ -w "$HERE" ]; then
	export KERNEL_WORK=${TMPDIR:-/tmp}/tessera-kernel-work
fi

if [ "${KLOCK_INSIDE:-}" != 1 ]; then
	[ "$(id -u)" = 0 ] || { echo "# SKIP: needs root (namespaces, tap)"; exit 77; }
	for t in rpcbind rpc.statd unshare ip; do
		command -v $t >/dev/null ||
			{ echo "# SKIP: no $t (apt-get install rpcbind nfs-common)"; exit 77; }
	done
	echo "# kernel-lock-test: setup"
	bash "$HERE/setup.sh" >/dev/null
	rc=$?
	[ $rc = 77 ] && { echo "# SKIP: cannot install QEMU and guest tools"; exit 77; }
	[ $rc = 0 ] || { echo "# setup.sh failed ($rc)"; exit 1; }
	KLOCK_INSIDE=1 exec unshare --net --mount --propagation private \
		bash "$0" "$@"
fi

# ---- inside the namespaces ------------------------------------------------
HOSTA=10.77.0.1
GUESTA=10.77.0.2
TAP=klocktap0
TMP=$(mktemp -d /tmp/tessera-klock.XXXXXX)
SRV=
RPCB=
RUN=
HELPER=
stop_pid() {
	kill "$1" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
cleanup() {
	[ -n "$RUN" ] && kill -- -"$RUN" 2>/dev/null
	for p in $HELPER $SRV $RPCB; do stop_pid "$p"; done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

mount -t tmpfs run /run || { echo "# cannot mount a private /run"; exit 1; }
ip link set lo up
if ! ip tuntap add dev $TAP mode tap 2>/dev/null; then
	echo "# SKIP: cannot make a tap device"; exit 77
fi
ip addr add $HOSTA/24 dev $TAP && ip link set $TAP up ||
	{ echo "# cannot set up $TAP"; exit 1; }
rpcbind -f -w & RPCB=$!
for _ in $(seq 50); do [ -S /run/rpcbind.sock ] && break; sleep 0.1; done
[ -S /run/rpcbind.sock ] || { echo "# rpcbind did not start"; exit 1; }

for b in tessera tesserad; do
	[ -x "$top_builddir/$b" ] || { echo "# $top_builddir/$b not built"; exit 1; }
done
PORT=2049
"$top_builddir/tessera" format "lmdb://$TMP/meta" "file://$TMP/obj" \
	klock > "$TMP/format.log" 2>&1 ||
	{ echo "# tessera format failed:"; sed 's/^/#   /' "$TMP/format.log"; exit 1; }
echo "/ 10.77.0.0/24(rw,insecure,no_root_squash)" > "$TMP/exports"
start_server() {
	"$top_builddir/tesserad" --meta "lmdb://$TMP/meta" \
		--listen "$HOSTA:$PORT" --foreground --exports "$TMP/exports" \
		-o metrics_listen=$HOSTA:9049 -o lock_grace=60s \
		>> "$TMP/server.log" 2>&1 &
	SRV=$!
	for _ in $(seq 100); do
		rpcinfo -p 127.0.0.1 2>/dev/null | grep -q '100021.*4.*tcp' &&
			return 0
		kill -0 $SRV 2>/dev/null || break
		sleep 0.2
	done
	echo "# tesserad did not start and register:"
	tail -n 30 "$TMP/server.log" | sed 's/^/#   /'
	return 1
}
start_server || exit 1
echo "# kernel-lock-test: tesserad (pid $SRV) on $HOSTA:$PORT," \
	"registered: $(rpcinfo -p 127.0.0.1 | awk 'NR>1{print $1"/"$2"/"$3}' |
		sort -u | tr '\n' ' ')"

# metric NAME: its value on the gateway's metrics endpoint (on the tap's
# address: the guest reads it too, with wget)
metric() {
	exec 3<>/dev/tcp/$HOSTA/9049 || return 1
	printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
	tr -d '\r' <&3 | awk -v n="$1" '$1 == n {print $2}'
	exec 3<&-
}
GRANTED=0   # GRANTED callbacks accepted by the guest, before any restart

# The guest asks for a gateway restart by creating klock-restart at the
# volume's root; this loop restarts tesserad and answers with
# klock-restarted once the new one serves (libnfs-utils).
host_helper() {
	local q="?version=3&nfsport=$PORT&mountport=$PORT"
	: > "$TMP/empty"
	while kill -0 "$RUN" 2>/dev/null; do
		sleep 0.5
		nfs-ls "nfs://$HOSTA/$q" 2>/dev/null | awk '{print $NF}' |
			grep -qx klock-restart || continue
		GRANTED=$(metric tessera_nlm_granted_callbacks_total)
		echo "# host: restarting tesserad ($GRANTED GRANTED callbacks" \
			"accepted by the guest so far)"
		stop_pid "$SRV"
		start_server || return 1
		# (libnfs may fail at first, just after the restart: retry)
		for _ in $(seq 20); do
			nfs-cp "$TMP/empty" "nfs://$HOSTA//klock-restarted$q" \
				> "$TMP/nfs-cp.log" 2>&1 && break
			sleep 1
		done
		if ! nfs-ls "nfs://$HOSTA/$q" 2>/dev/null | awk '{print $NF}' |
			grep -qx klock-restarted; then
			echo "# host: nfs-cp failed:"
			sed 's/^/#   /' "$TMP/nfs-cp.log"
			return 1
		fi
		echo "# host: tesserad restarted"
		return 0
	done
}
GUEST_ENV=
if command -v nfs-ls >/dev/null; then
	GUEST_ENV=KTEST_HOST=1
fi
# the helper restarts tesserad: it must own SRV, so it runs here and the
# VM in the background
LOG=$TMP/console.log NETDEV="tap,id=n0,ifname=$TAP,script=no,downscript=no" \
	NFS_SERVER=$HOSTA GUEST_ADDR=$GUESTA/24 GUEST_ENV="$GUEST_ENV NFS_LOCKS=1${KLOCK_ONLY:+ KLOCK_ONLY=$KLOCK_ONLY}" \
	TEST_SCRIPT="$HERE/guest-locks.sh" \
	setsid -w bash "$HERE/run.sh" "$PORT" "$PORT" / &
RUN=$!
if [ -n "$GUEST_ENV" ]; then
	host_helper
fi
wait $RUN
rc=$?
RUN=
# the blocked locks were granted by callbacks (not by the client's
# polling), which needs the gateway to reach the guest
[ -z "$GUEST_ENV" ] && GRANTED=$(metric tessera_nlm_granted_callbacks_total)
# A figure here: the guest's t_blocked asserts its own GRANTED (its
# waiter on a second mount).  The count used to read 0 or 1 because the
# waiter shared the holder's mount, where the Linux client queues it
# behind its own process's lock and never asks the server; GRANTED then
# came only from the counter's two mounts, when their locks met.
if [ -z "${KLOCK_ONLY:-}" ] && ! [ "${GRANTED:-0}" -gt 0 ] 2>/dev/null; then
	echo "# note: no GRANTED callback was accepted by the guest" \
		"(counted before the restart)"
fi
[ -n "${KEEP_LOG:-}" ] && cp "$TMP/console.log" "$KEEP_LOG"
if ! kill -0 "$SRV" 2>/dev/null; then
	echo "# tesserad died during the test"
	rc=1
fi
if [ $rc != 0 ]; then
	echo "# server log (last 40 lines):"
	tail -n 40 "$TMP/server.log" | sed 's/^/#   /'
	exit 1
fi
grep -E 'nlm|NLM' "$TMP/server.log" | tail -n 20 | sed 's/^/# server: /'
exit 0
