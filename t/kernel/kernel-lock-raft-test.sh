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
# Env: top_builddir, KEEP_LOG, KERNEL_WORK, TIMEOUT, ACCEL as
# kernel-test.sh; KEEP_DIR: copy the gateways' and HAProxy's logs there.  Exit: 0 all checks passed, 1 something failed, 77
# QEMU, the guest tools, haproxy, rpcbind, libnfs-utils or a tap device
# are not available.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
top_builddir=${top_builddir:-$(cd "$HERE/../.." && pwd)}
if [ -z "${KERNEL_WORK:-}" ] && ! [ -w "$HERE" ]; then
	export KERNEL_WORK=${TMPDIR:-/tmp}/tessera-kernel-work
fi

if [ "${KLR_INSIDE:-}" != 1 ]; then
	[ "$(id -u)" = 0 ] || { echo "# SKIP: needs root (namespaces, tap)"; exit 77; }
	for t in rpcbind rpc.statd unshare ip haproxy nfs-ls nfs-cp; do
		command -v $t >/dev/null ||
			{ echo "# SKIP: no $t (apt-get install rpcbind" \
				"nfs-common haproxy libnfs-utils)"; exit 77; }
	done
	for b in tessera tesserad; do
		[ -x "$top_builddir/$b" ] ||
			{ echo "# $top_builddir/$b not built"; exit 1; }
	done
	echo "# kernel-lock-raft-test: setup"
	bash "$HERE/setup.sh" >/dev/null
	rc=$?
	[ $rc = 77 ] && { echo "# SKIP: cannot install QEMU and guest tools"; exit 77; }
	[ $rc = 0 ] || { echo "# setup.sh failed ($rc)"; exit 1; }
	KLR_INSIDE=1 exec unshare --net --mount --propagation private \
		bash "$0" "$@"
fi

# ---- inside the namespaces ------------------------------------------------
HOSTA=10.77.0.1
GUESTA=10.77.0.2
TAP=klrtap0
PORT=2049
TMP=$(mktemp -d /tmp/tessera-klr.XXXXXX)
declare -A PID GW
RUN=
HAP=
RPCB=
KILLER=
n=0
nfail=0
stop_pid() {
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
cleanup() {
	[ -n "$RUN" ] && kill -- -"$RUN" 2>/dev/null
	for p in $KILLER $HAP "${PID[@]}" $RPCB; do stop_pid "$p"; done
	[ -n "${KEEP_DIR:-}" ] && cp "$TMP"/*.log "$KEEP_DIR"/ 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
ok() {   # NAME RC
	n=$((n + 1))
	if [ "$2" = 0 ]; then echo "ok $n - $1"
	else echo "not ok $n - $1"; nfail=$((nfail + 1)); fi
}

mount -t tmpfs run /run || { echo "# cannot mount a private /run"; exit 1; }
ip link set lo up
if ! ip tuntap add dev $TAP mode tap 2>/dev/null; then
	echo "# SKIP: cannot make a tap device"; exit 77
fi
ip addr add $HOSTA/24 dev $TAP && ip link set $TAP up ||
	{ echo "# cannot set up $TAP"; exit 1; }
for i in 1 2 3; do
	GW[$i]=10.77.0.1$i
	ip addr add "${GW[$i]}/32" dev lo || { echo "# cannot add ${GW[$i]}"; exit 1; }
done
rpcbind -f -w & RPCB=$!
for _ in $(seq 50); do [ -S /run/rpcbind.sock ] && break; sleep 0.1; done
[ -S /run/rpcbind.sock ] || { echo "# rpcbind did not start"; exit 1; }

listening() { ss -ltnH "src $1" 2>/dev/null | grep -q .; }
PEERS="1@127.0.0.1:7101,2@127.0.0.1:7102,3@127.0.0.1:7103"
"$top_builddir/tessera" raft secret "$TMP/raft.key" >/dev/null || exit 1
echo "/ 10.77.0.0/24(rw,insecure,no_root_squash)" > "$TMP/exports"
for i in 1 2 3; do
	cat > "$TMP/n$i.conf" <<-EOF
	raft_id = $i
	raft_dir = $TMP/n$i
	raft_address = 127.0.0.1:710$i
	raft_peers = $PEERS
	raft_secret_file = $TMP/raft.key
	listen = ${GW[$i]}:$PORT
	exports = $TMP/exports
	metrics_listen = 127.0.0.1:919$i
	proxy_protocol = yes
	session_timeout = 5s
	lock_grace = 60s
	log_level = info
	EOF
done
start() {   # I
	"$top_builddir/tesserad" -c "$TMP/n$1.conf" --meta raft:// -f \
		>> "$TMP/n$1.log" 2>&1 &
	PID[$1]=$!
}
wait_up() {   # I
	for _ in $(seq 150); do
		listening "${GW[$1]}:$PORT" && return 0
		kill -0 "${PID[$1]}" 2>/dev/null || break
		sleep 0.2
	done
	echo "# gateway $1 did not start:"; tail -20 "$TMP/n$1.log" | sed 's/^/#   /'
	return 1
}
"$top_builddir/tessera" -c "$TMP/n1.conf" format raft:// "file://$TMP/obj" \
	klr > "$TMP/format.log" 2>&1 ||
	{ echo "# tessera format failed:"; sed 's/^/#   /' "$TMP/format.log"; exit 1; }
for i in 1 2 3; do start $i; done
wait_up 1 || exit 1
for i in 2 3; do
	"$top_builddir/tessera" -c "$TMP/n1.conf" raft add $i 127.0.0.1:710$i \
		> "$TMP/add$i.log" 2>&1 ||
		{ echo "# raft add $i:"; sed 's/^/#   /' "$TMP/add$i.log"; exit 1; }
	wait_up $i || exit 1
done
for _ in $(seq 100); do
	rpcinfo -p 127.0.0.1 2>/dev/null | grep -q "100021 *4 *tcp *$PORT" && break
	sleep 0.2
done

# `balance first`: every connection to the first gateway up; checks
# every 200 ms (plain TCP connects: no PROXY header, nothing proxied);
# the sessions of a gateway marked down are shut, the client's new
# connections go to the next one.
cat > "$TMP/haproxy.cfg" <<-EOF
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
	bind $HOSTA:$PORT
	default_backend gateways
backend gateways
	balance first
	default-server inter 200ms fall 1 rise 2 on-marked-down shutdown-sessions send-proxy-v2
	server g1 ${GW[1]}:$PORT check
	server g2 ${GW[2]}:$PORT check
	server g3 ${GW[3]}:$PORT check
EOF
haproxy -db -f "$TMP/haproxy.cfg" > "$TMP/haproxy.log" 2>&1 &
HAP=$!
for _ in $(seq 50); do listening "$HOSTA:$PORT" && break; sleep 0.1; done
listening "$HOSTA:$PORT" ||
	{ echo "# haproxy did not start:"; cat "$TMP/haproxy.log"; exit 1; }
echo "# haproxy on $HOSTA:$PORT in front of ${GW[1]} ${GW[2]} ${GW[3]};" \
	"rpcbind: $(rpcinfo -p 127.0.0.1 | awk 'NR>1{print $1"/"$2"/"$3"/"$4}' |
		sort -u | tr '\n' ' ')"

# The killer: waits for the guest's word on its console, SIGKILLs
# gateway 1, then waits until gateway 2 or 3 saw the guest reclaim its
# lock (their logs) and tells the guest so through HAProxy; then, when
# the guest starts its waiter, until a gateway keeps its blocked request.
Q="?version=3&nfsport=$PORT&mountport=$PORT"
# tell WORD: create WORD at the volume's root, through HAProxy
tell() {
	: > "$TMP/empty"
	for _ in $(seq 30); do
		nfs-cp "$TMP/empty" "nfs://$HOSTA//$1$Q" > "$TMP/nfs-cp.log" \
			2>&1 && break
		sleep 1
	done
}
# metric I NAME: its value on gateway I's metrics endpoint
metric() {
	exec 3<>/dev/tcp/127.0.0.1/919$1 || return 1
	printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
	tr -d '\r' <&3 | awk -v n="$2" '$1 == n {print $2}'
	exec 3<&-
}
killer() {
	local log=$TMP/console.log word=klr-reclaimed
	for _ in $(seq 6000); do
		grep -aq 'KTEST_KILL_NOW' "$log" 2>/dev/null && break
		sleep 0.1
	done
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
	tell $word
	# then the guest's waiter: once a gateway keeps its blocked request
	for _ in $(seq 6000); do
		grep -aq 'KTEST_WAITER' "$log" 2>/dev/null && break
		sleep 0.1
	done
	for _ in $(seq 2400); do
		[ "$(metric 2 tessera_nlm_blocked_requests)" = 1 ] ||
			[ "$(metric 3 tessera_nlm_blocked_requests)" = 1 ] && break
		sleep 0.1
	done
	echo "[host] the waiter's request is blocked at a gateway" \
		>> "$TMP/killer.log"
	tell klr-blocked
}
killer &
KILLER=$!

LOG=$TMP/console.log NETDEV="tap,id=n0,ifname=$TAP,script=no,downscript=no" \
	NFS_SERVER=$HOSTA GUEST_ADDR=$GUESTA/24 GUEST_ENV="NFS_LOCKS=1" \
	NFS_OPTS="timeo=50,retrans=10" TEST_SCRIPT="$HERE/guest-lock-raft.sh" \
	setsid -w bash "$HERE/run.sh" "$PORT" "$PORT" / > "$TMP/run.out" 2>&1 &
RUN=$!
wait $RUN
rc=$?
RUN=
grep -v '^1\.\.' "$TMP/run.out"
n=$(grep -cE '^(ok|not ok) ' "$TMP/run.out")
wait $KILLER 2>/dev/null
KILLER=
[ -n "${KEEP_LOG:-}" ] && cp "$TMP/console.log" "$KEEP_LOG"
sed 's/^/# /' "$TMP/killer.log" 2>/dev/null
ok "the guest's lock checks through HAProxy, its gateway killed" $rc
grep -q "killed gateway 1" "$TMP/killer.log" 2>/dev/null
ok "gateway 1 was killed while the lock was held" $?
grep -hE 'client ktest .*adopted|told to reclaim|ktest reclaimed' \
	"$TMP/n2.log" "$TMP/n3.log" | sed 's/^/# /'
grep -qE 'client ktest \(10\.77\.0\.2\) of gateway session .* adopted' \
	"$TMP/n2.log" "$TMP/n3.log"
ok "a surviving gateway adopted the guest (its address through HAProxy)" $?
grep -q 'client ktest reclaimed its locks' "$TMP/n2.log" "$TMP/n3.log"
ok "the guest reclaimed its lock there (SM_NOTIFY reached its statd)" $?
granted=0
for i in 2 3; do
	kill -0 "${PID[$i]}" 2>/dev/null
	ok "gateway $i still serves" $?
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
ok "the waiter was granted its lock by GRANTED ($granted accepted)" $?
if [ $nfail != 0 ]; then
	for i in 1 2 3; do
		echo "# gateway $i log (last 20 lines):"
		tail -n 20 "$TMP/n$i.log" | sed 's/^/#   /'
	done
	echo "# haproxy log:"; tail -n 15 "$TMP/haproxy.log" | sed 's/^/#   /'
fi
echo "1..$n"
[ $nfail = 0 ]
