#!/bin/bash
# NFS locks across a gateway failover, through the Linux kernel client:
# HAProxy (TCP mode, PROXY protocol v2 to the servers) in front of three
# tesserad gateways on one raft:// volume; the guest, mounted without
# nolock, holds an fcntl lock (guest-lock-raft.sh), the host SIGKILLs the
# gateway the guest's connections go through, and a surviving gateway
# adopts the client once the dead one's session is stale (session_timeout
# 5 s here), tells it with SM_NOTIFY to reclaim, and the client reclaims
# its lock through HAProxy; meanwhile and afterwards another process is
# refused the lock, and gets it once the holder releases it.
#
# The network, as kernel-lock-test.sh: the script runs in a network and
# mount namespace of its own (unshare), with a tap device 10.77.0.1/24
# for the guest (10.77.0.2) and rpcbind on a private /run.  HAProxy
# listens on 10.77.0.1:2049 and the gateways on 10.77.0.11-13:2049
# (addresses on lo), all registered with that rpcbind on port 2049, so
# the guest's lock manager, which asks rpcbind at 10.77.0.1, reaches
# NLM through HAProxy too.  With proxy_protocol the gateways know the
# guest's address and that it reached 10.77.0.1: GRANTED and SM_NOTIFY
# go to 10.77.0.2 from 10.77.0.1 (the gateways share the namespace, so
# they can send from it), naming 10.77.0.1, which the guest's statd
# monitors.  The host's helpers reach the volume through HAProxy as well
# (libnfs, nfs-ls/nfs-cp).
#
# Env: top_builddir, KEEP_LOG, KEEP_DIR, KERNEL_WORK, TIMEOUT, ACCEL
# (common.sh).  Exit: 0 all checks passed, 1 something failed, 77 QEMU,
# the guest tools, haproxy, rpcbind, libnfs-utils or a tap device are not
# available.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/common.sh"
kt_need haproxy nfs-ls nfs-cp
kt_unshare kernel-lock-raft-test "$@"

# ---- inside the namespaces ------------------------------------------------
PORT=2049
kt_tmp klr
declare -A PID
HAP=
RPCB=
KILLER=
kt_procs() { echo $KILLER $HAP "${PID[@]}" $RPCB; }
kt_tap_net klrtap0
for i in 1 2 3; do
	NFS_ADDR[$i]=10.77.0.1$i:$PORT
	RAFT_ADDR[$i]=127.0.0.1:710$i
	ip addr add "10.77.0.1$i/32" dev lo ||
		{ echo "# cannot add 10.77.0.1$i"; exit 1; }
done

echo "/ 10.77.0.0/24(rw,insecure,no_root_squash)" > "$TMP/exports"
rg_conf() {
	cat <<-EOF
	metrics_listen = 127.0.0.1:919$1
	proxy_protocol = yes
	session_timeout = 5s
	lock_grace = 60s
	log_level = info
	EOF
}
RG_BIN=$top_builddir RG_DIR=$TMP RG_LOGS=$TMP
rg_found "file://$TMP/obj" klr || exit 1
for _ in $(seq 100); do
	rpcinfo -p 127.0.0.1 2>/dev/null | grep -q "100021 *4 *tcp *$PORT" && break
	sleep 0.2
done

# The gateways check no PROXY header from HAProxy's health checks (plain
# connects) and proxy nothing for them.
kt_haproxy "$HOSTA:$PORT" send-proxy-v2 "${NFS_ADDR[@]}"
echo "# haproxy on $HOSTA:$PORT in front of ${NFS_ADDR[*]};" \
	"rpcbind: $(rpcinfo -p 127.0.0.1 | awk 'NR>1{print $1"/"$2"/"$3"/"$4}' |
		sort -u | tr '\n' ' ')"

# metric I NAME: its value on gateway I's metrics endpoint
metric() { kt_metric "127.0.0.1:919$1" "$2"; }
# The killer: waits for the guest's word on its console, SIGKILLs
# gateway 1, then waits until gateway 2 or 3 saw the guest reclaim its
# lock (their logs) and tells the guest so through HAProxy; then, when
# the guest starts its waiter, until a gateway keeps its blocked request.
killer() {
	local word=klr-reclaimed
	kt_console_wait KTEST_KILL_NOW
	kill -9 "${PID[1]}"
	echo "[host] killed gateway 1 (pid ${PID[1]})" >> "$TMP/killer.log"
	# a stall detector: 240 s
	for _ in $(seq 2400); do
		grep -q 'client ktest reclaimed its locks' "$TMP/n2.log" \
			"$TMP/n3.log" && break
		sleep 0.1
	done
	grep -q 'client ktest reclaimed its locks' "$TMP/n2.log" "$TMP/n3.log" ||
		word=klr-noreclaim
	echo "[host] $word" >> "$TMP/killer.log"
	kt_tell $word
	# then the guest's waiter: once a gateway keeps its blocked request
	kt_console_wait KTEST_WAITER
	for _ in $(seq 2400); do
		[ "$(metric 2 tessera_nlm_blocked_requests)" = 1 ] ||
			[ "$(metric 3 tessera_nlm_blocked_requests)" = 1 ] && break
		sleep 0.1
	done
	echo "[host] the waiter's request is blocked at a gateway" \
		>> "$TMP/killer.log"
	kt_tell klr-blocked
}
killer &
KILLER=$!

GUEST_ENV="NFS_LOCKS=1" NFS_OPTS="timeo=50,retrans=10" \
	kt_vm_start "$HERE/guest-lock-raft.sh" "$PORT" "$PORT" / "$TMP/run.out"
kt_vm_wait
kt_vm_tap
wait $KILLER 2>/dev/null
KILLER=
sed 's/^/# /' "$TMP/killer.log" 2>/dev/null
kt_ok "the guest's lock checks through HAProxy, its gateway killed" $VMRC
grep -q "killed gateway 1" "$TMP/killer.log" 2>/dev/null
kt_ok "gateway 1 was killed while the lock was held" $?
grep -hE 'client ktest .*adopted|told to reclaim|ktest reclaimed' \
	"$TMP/n2.log" "$TMP/n3.log" | sed 's/^/# /'
grep -qE 'client ktest \(10\.77\.0\.2\) of gateway session .* adopted' \
	"$TMP/n2.log" "$TMP/n3.log"
kt_ok "a surviving gateway adopted the guest (its address through HAProxy)" $?
grep -q 'client ktest reclaimed its locks' "$TMP/n2.log" "$TMP/n3.log"
kt_ok "the guest reclaimed its lock there (SM_NOTIFY reached its statd)" $?
granted=0
for i in 2 3; do
	kill -0 "${PID[$i]}" 2>/dev/null
	kt_ok "gateway $i still serves" $?
	g=$(metric $i tessera_nlm_granted_callbacks_total)
	echo "# gateway $i: ${g:-?} GRANTED callbacks accepted by the guest," \
		"$(metric $i tessera_nlm_callbacks_failed_total) failed"
	granted=$((granted + ${g:-0}))
done
# The waiter's blocked request was kept by a surviving gateway before the
# holder let go (the host waited for it): its lock came by a GRANTED
# callback, to the guest's address and from the balancer's, both known
# only through the PROXY header.  (A refused one would have left the
# waiter to its own poll, 30 s later.)
[ "$granted" -ge 1 ]
kt_ok "the waiter was granted its lock by GRANTED ($granted accepted)" $?
kt_group_end
