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
# Env: top_builddir  where tesserad and tessera are (default: the source
#                    tree holding this script)
#      KEEP_LOG      copy the VM's console log there
#      KERNEL_WORK, TIMEOUT, ACCEL: passed on to run.sh
# Exit: 0 all checks passed, 1 something failed, 77 QEMU, the guest tools
# or haproxy cannot be had.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
top_builddir=${top_builddir:-$(cd "$HERE/../.." && pwd)}
if [ -z "${KERNEL_WORK:-}" ] && ! [ -w "$HERE" ]; then
	export KERNEL_WORK=${TMPDIR:-/tmp}/tessera-kernel-work
fi
command -v haproxy >/dev/null ||
	{ echo "# SKIP: no haproxy (apt-get install haproxy)"; exit 77; }
for b in tessera tesserad; do
	[ -x "$top_builddir/$b" ] || { echo "# $top_builddir/$b not built"; exit 1; }
done

echo "# kernel-raft-test: setup"
bash "$HERE/setup.sh" >/dev/null
rc=$?
[ $rc = 77 ] && { echo "# SKIP: cannot install QEMU and guest tools"; exit 77; }
[ $rc = 0 ] || { echo "# setup.sh failed ($rc)"; exit 1; }

TMP=$(mktemp -d /tmp/tessera-kraft.XXXXXX)
declare -A PID
RUN=
HAP=
n=0
nfail=0
cleanup() {
	[ -n "$RUN" ] && kill -- -"$RUN" 2>/dev/null
	for p in $HAP "${PID[@]}"; do
		[ -n "$p" ] || continue
		kill "$p" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
ok() {   # NAME RC
	n=$((n + 1))
	if [ "$2" = 0 ]; then echo "ok $n - $1"
	else echo "not ok $n - $1"; nfail=$((nfail + 1)); fi
}

listening() { ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }
free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 12000))
		listening "$p" || { echo "$p"; return 0; }
	done
	return 1
}

PORT=$(free_port) || exit 1
for i in 1 2 3; do
	NP[$i]=$(free_port) || exit 1
	RP[$i]=$(free_port) || exit 1
done
PEERS="1@127.0.0.1:${RP[1]},2@127.0.0.1:${RP[2]},3@127.0.0.1:${RP[3]}"
"$top_builddir/tessera" raft secret "$TMP/raft.key" >/dev/null || exit 1
echo "/ 127.0.0.1(rw,insecure,no_root_squash)" > "$TMP/exports"
for i in 1 2 3; do
	cat > "$TMP/n$i.conf" <<-EOF
	raft_id = $i
	raft_dir = $TMP/n$i
	raft_address = 127.0.0.1:${RP[$i]}
	raft_peers = $PEERS
	raft_secret_file = $TMP/raft.key
	listen = 127.0.0.1:${NP[$i]}
	exports = $TMP/exports
	metrics_listen = off
	rpcbind = no
	EOF
done
# A node that is not a member yet waits (tessera raft add) before it
# serves NFS: start them all, add, then wait for the NFS ports.
start() {   # I
	"$top_builddir/tesserad" -c "$TMP/n$1.conf" --meta raft:// -f \
		>> "$TMP/n$1.log" 2>&1 &
	PID[$1]=$!
}
wait_up() {   # I
	for _ in $(seq 150); do
		listening "${NP[$1]}" && return 0
		kill -0 "${PID[$1]}" 2>/dev/null || break
		sleep 0.2
	done
	echo "# gateway $1 did not start:"; tail -20 "$TMP/n$1.log" | sed 's/^/#   /'
	return 1
}
"$top_builddir/tessera" -c "$TMP/n1.conf" format raft:// "file://$TMP/obj" \
	kvol > "$TMP/format.log" 2>&1 ||
	{ echo "# tessera format failed:"; sed 's/^/#   /' "$TMP/format.log"; exit 1; }
for i in 1 2 3; do start $i; done
wait_up 1 || exit 1
for i in 2 3; do
	"$top_builddir/tessera" -c "$TMP/n1.conf" raft add $i \
		"127.0.0.1:${RP[$i]}" > "$TMP/add$i.log" 2>&1 ||
		{ echo "# raft add $i:"; sed 's/^/#   /' "$TMP/add$i.log"; exit 1; }
	wait_up $i || exit 1
done
"$top_builddir/tessera" -c "$TMP/n1.conf" raft status > "$TMP/status" 2>&1
sed 's/^/# /' "$TMP/status"
grep -q "^ *1 .*leader" "$TMP/status" ||
	echo "# (node 1 does not lead: the kill below is a follower's)"

# `balance first`: every connection to the first gateway that is up;
# checks every 200 ms; a connection whose server went away is closed and
# the client's next one redispatched.
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
	bind 127.0.0.1:$PORT
	default_backend gateways
backend gateways
	balance first
	default-server inter 200ms fall 1 rise 2 on-marked-down shutdown-sessions
	server g1 127.0.0.1:${NP[1]} check
	server g2 127.0.0.1:${NP[2]} check
	server g3 127.0.0.1:${NP[3]} check
EOF
haproxy -db -f "$TMP/haproxy.cfg" > "$TMP/haproxy.log" 2>&1 &
HAP=$!
for _ in $(seq 50); do listening "$PORT" && break; sleep 0.1; done
listening "$PORT" || { echo "# haproxy did not start:"; cat "$TMP/haproxy.log"; exit 1; }
echo "# haproxy on 127.0.0.1:$PORT in front of gateways on ports" \
	"${NP[1]} ${NP[2]} ${NP[3]}"

# The killer: waits for the guest's word on its console, then SIGKILLs
# gateway 1; it is restarted once the guest is done writing.
killer() {
	local log=$TMP/console.log t0
	for _ in $(seq 6000); do
		grep -aq 'KTEST_KILL_NOW' "$log" 2>/dev/null && break
		sleep 0.1
	done
	t0=$(date +%s.%N)
	kill -9 "${PID[1]}"
	echo "[host] killed gateway 1 (pid ${PID[1]}) at $(date +%T.%N)" \
		>> "$TMP/killer.log"
	for _ in $(seq 6000); do
		grep -aq 'KTEST_WRITES_DONE' "$log" 2>/dev/null && break
		sleep 0.1
	done
	echo "[host] the guest finished writing $(echo "$t0 $(date +%s.%N)" |
		awk '{printf "%.1f", $2-$1}') s after the kill" >> "$TMP/killer.log"
}
killer &
KILLER=$!

LOG=$TMP/console.log TEST_SCRIPT=$HERE/guest-raft.sh \
	NFS_OPTS="timeo=50,retrans=10" \
	setsid -w bash "$HERE/run.sh" "$PORT" "$PORT" / > "$TMP/run.out" 2>&1 &
RUN=$!
wait $RUN
rc=$?
RUN=
grep -v '^1\.\.' "$TMP/run.out"
n=$(grep -cE '^(ok|not ok) ' "$TMP/run.out")
kill $KILLER 2>/dev/null
wait $KILLER 2>/dev/null
[ -n "${KEEP_LOG:-}" ] && cp "$TMP/console.log" "$KEEP_LOG"
sed 's/^/# /' "$TMP/killer.log" 2>/dev/null
ok "the guest's job through HAProxy ran to its end, its gateway killed" $rc
grep -q "killed gateway 1" "$TMP/killer.log" 2>/dev/null
ok "gateway 1 was killed during the job" $?

# Gateway 1 back: it catches up; then identical replicas, a clean volume.
wait "${PID[1]}" 2>/dev/null
start 1
wait_up 1
ok "gateway 1 restarts and rejoins" $?
"$top_builddir/tessera" -c "$TMP/n2.conf" raft verify > "$TMP/verify" 2>&1
vrc=$?
sed 's/^/#   /' "$TMP/verify"
ok "tessera raft verify: the replicas are identical" $vrc
"$top_builddir/tessera" -c "$TMP/n2.conf" fsck raft:// > "$TMP/fsck" 2>&1
frc=$?
[ $frc = 0 ] || tail -20 "$TMP/fsck" | sed 's/^/#   /'
ok "tessera fsck through gateway 2: clean" $frc
if [ $nfail != 0 ]; then
	for i in 1 2 3; do
		echo "# gateway $i log (last 15 lines):"
		tail -n 15 "$TMP/n$i.log" | sed 's/^/#   /'
	done
	echo "# haproxy log:"; tail -n 15 "$TMP/haproxy.log" | sed 's/^/#   /'
fi
echo "1..$n"
[ $nfail = 0 ]
