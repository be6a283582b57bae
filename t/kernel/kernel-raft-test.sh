#!/bin/bash
# The Linux kernel NFSv3 client through HAProxy (TCP mode) in front of
# three tesserad gateways on one raft:// volume: the guest (guest-raft.sh)
# writes files and creates small ones with fsync, and tells the host, on
# its console, when to kill; the host SIGKILLs the gateway the guest's
# connection goes through (node 1, the leader the group was founded on).
# HAProxy sees the connection drop, marks the gateway down and sends the
# client's reconnection to the next one; the kernel client retransmits.
# The job must finish without an error, and every byte read back, through
# a cold cache, must be what was written.  Then the host checks the group:
# gateway 1 restarted, `tessera raft verify` (three identical replicas),
# `tessera fsck`.
#
# Env: top_builddir, KEEP_LOG, KEEP_DIR, KERNEL_WORK, TIMEOUT, ACCEL
# (common.sh).
# Exit: 0 all checks passed, 1 something failed, 77 QEMU, the guest tools
# or haproxy cannot be had.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/common.sh"
kt_need haproxy
kt_built
kt_setup kernel-raft-test

kt_tmp kraft
declare -A PID
HAP=
KILLER=
kt_procs() { echo $KILLER $HAP "${PID[@]}"; }

PORT=$(kt_free_port) || exit 1
for i in 1 2 3; do
	NFS_ADDR[$i]=127.0.0.1:$(kt_free_port) || exit 1
	RAFT_ADDR[$i]=127.0.0.1:$(kt_free_port) || exit 1
done
echo "/ 127.0.0.1(rw,insecure,no_root_squash)" > "$TMP/exports"
RG_BIN=$top_builddir RG_DIR=$TMP RG_LOGS=$TMP
rg_found "file://$TMP/obj" kvol || exit 1
"$top_builddir/tessera" -c "$TMP/n1.conf" raft status > "$TMP/status" 2>&1
sed 's/^/# /' "$TMP/status"
grep -q "^ *1 .*leader" "$TMP/status" ||
	echo "# (node 1 does not lead: the kill below is a follower's)"

kt_haproxy "127.0.0.1:$PORT" "" "${NFS_ADDR[@]}"
echo "# haproxy on 127.0.0.1:$PORT in front of gateways ${NFS_ADDR[*]}"

# The killer: waits for the guest's word on its console, then SIGKILLs
# gateway 1; it is restarted once the guest is done writing.
killer() {
	local t0
	kt_console_wait KTEST_KILL_NOW
	t0=$(date +%s.%N)
	kill -9 "${PID[1]}"
	echo "[host] killed gateway 1 (pid ${PID[1]}) at $(date +%T.%N)" \
		>> "$TMP/killer.log"
	kt_console_wait KTEST_WRITES_DONE
	echo "[host] the guest finished writing $(echo "$t0 $(date +%s.%N)" |
		awk '{printf "%.1f", $2-$1}') s after the kill" >> "$TMP/killer.log"
}
killer &
KILLER=$!

NFS_OPTS="timeo=50,retrans=10" \
	kt_vm_start "$HERE/guest-raft.sh" "$PORT" "$PORT" / "$TMP/run.out"
kt_vm_wait
kt_vm_tap
kt_stop_pid "$KILLER"
KILLER=
sed 's/^/# /' "$TMP/killer.log" 2>/dev/null
kt_ok "the guest's job through HAProxy ran to its end, its gateway killed" $VMRC
grep -q "killed gateway 1" "$TMP/killer.log" 2>/dev/null
kt_ok "gateway 1 was killed during the job" $?

# Gateway 1 back: it catches up; then identical replicas, a clean volume.
wait "${PID[1]}" 2>/dev/null
rg_start 1
rg_wait 1
kt_ok "gateway 1 restarts and rejoins" $?
"$top_builddir/tessera" -c "$TMP/n2.conf" raft verify > "$TMP/verify" 2>&1
vrc=$?
sed 's/^/#   /' "$TMP/verify"
kt_ok "tessera raft verify: the replicas are identical" $vrc
"$top_builddir/tessera" -c "$TMP/n2.conf" fsck raft:// > "$TMP/fsck" 2>&1
frc=$?
[ $frc = 0 ] || tail -20 "$TMP/fsck" | sed 's/^/#   /'
kt_ok "tessera fsck through gateway 2: clean" $frc
kt_group_end
