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
# Env: top_builddir, KEEP_LOG, KEEP_DIR, KERNEL_WORK, TIMEOUT, ACCEL
# (common.sh); KLOCK_ONLY=t_NAME runs one check of guest-locks.sh.
# Exit: 0 all guest checks passed, 1 something failed, 77 QEMU, the guest
# tools, rpcbind or a tap device are not available.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/common.sh"
kt_unshare kernel-lock-test "$@"

# ---- inside the namespaces ------------------------------------------------
kt_tmp klock
SRV=
RPCB=
kt_procs() { echo $SRV $RPCB; }
kt_tap_net klocktap0

PORT=2049
kt_tessera format.log format "lmdb://$TMP/meta" "file://$TMP/obj" klock
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

# GRANTED callbacks accepted by the guest (before any restart), on the
# gateway's metrics endpoint (on the tap's address: the guest reads it
# too, with wget)
granted() { kt_metric "$HOSTA:9049" tessera_nlm_granted_callbacks_total; }
GRANTED=0

# The guest asks for a gateway restart (guest-locks.sh, host_ask
# restart); this restarts tesserad, answered once the new one serves.
kt_do_restart() {
	GRANTED=$(granted)
	echo "# host: restarting tesserad ($GRANTED GRANTED callbacks" \
		"accepted by the guest so far)"
	kt_stop_pid "$SRV"
	start_server || return 1
	echo "# host: tesserad restarted"
}
GUEST_ENV=
if command -v nfs-ls >/dev/null; then
	GUEST_ENV=KTEST_HOST=1
fi
# the helper restarts tesserad: it must own SRV, so it runs here and the
# VM in the background
GUEST_ENV="$GUEST_ENV NFS_LOCKS=1${KLOCK_ONLY:+ KLOCK_ONLY=$KLOCK_ONLY}" \
	kt_vm_start "$HERE/guest-locks.sh" "$PORT" "$PORT" /
if [ -n "$GUEST_ENV" ]; then
	while kill -0 "$RUN" 2>/dev/null; do
		sleep 0.5
		kt_serve restart && break
	done
fi
kt_vm_wait
# the blocked locks were granted by callbacks (not by the client's
# polling), which needs the gateway to reach the guest
[ -z "$GUEST_ENV" ] && GRANTED=$(granted)
# A figure here: the guest's t_blocked asserts its own GRANTED (its
# waiter on a second mount).  The count used to read 0 or 1 because the
# waiter shared the holder's mount, where the Linux client queues it
# behind its own process's lock and never asks the server; GRANTED then
# came only from the counter's two mounts, when their locks met.
if [ -z "${KLOCK_ONLY:-}" ] && ! [ "${GRANTED:-0}" -gt 0 ] 2>/dev/null; then
	echo "# note: no GRANTED callback was accepted by the guest" \
		"(counted before the restart)"
fi
kt_server_end tesserad "$SRV"
grep -E 'nlm|NLM' "$TMP/server.log" | tail -n 20 | sed 's/^/# server: /'
exit 0
