#!/bin/bash
# bench/raft.sh - raft:// metadata beside single-node LMDB, in one run.
#
# Usage: bench/raft.sh [--quick] [--only PART[,PART...]] [--keep]
# Parts: create storm kill catchup
#
# Starts, on loopback ports, one tesserad on an lmdb:// volume and three
# tesserad on one raft:// volume (a group with the default timings:
# election 600 ms, heartbeat 60 ms), and with the same client
# (bench/nfsload) measures:
#   create   small files (create + 4 KiB WRITE + COMMIT) in one directory,
#            1 and 4 client processes x 8 in flight: files/s through the
#            LMDB gateway, the raft leader and a raft follower, and the
#            ratios to LMDB (target: >= 0.5 at 4 clients);
#   storm    a LOOKUP+GETATTR storm at random files of a warm tree, 2
#            clients x 16 in flight: ops/s, the same three ways (target:
#            >= 0.8);
#   kill     a client of a follower creating files one at a time while the
#            leader is SIGKILLed (KILLS times, the killed node restarted
#            in between): the time until writes resume on the survivors
#            (from the kill to the first MKDIR acknowledged through the
#            other survivor: a probe that sends one MKDIR after another,
#            each a new nfsload process, from the moment of the kill),
#            and the client's longest create, i.e. the time its writes
#            stood still (target for both: <= 2 s);
#   catchup  a follower stopped, CATCHUP_FILES files created through the
#            leader (4 clients, 100 directories), the follower started:
#            the time until its replica has applied the leader's commit
#            index (a replica copy, then the log's tail).
# Figures only: nothing is asserted.  Raw lines "R <part> <server>
# <metric> <value>" and the summary go to results/raft-<timestamp>/.
# Env: BUILD (a configured build with tesserad and tessera; default
# <repo>/build-bench, built if missing), SMALL_FILES, META_FILES,
# META_SECS, KILLS, CATCHUP_FILES.
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
. "$src/bench/common.sh" # options, want, say, bench_build, bench_nfsload, ports
. "$src/t/gateways.sh"   # rg_found, rg_start: the raft group
while [ $# -gt 0 ]; do
	bench_opt "$@" && { shift "$OPT_WORDS"; continue; }
	case $1 in
	-h|--help) sed -n 2,32p "$0"; exit 0 ;;
	*) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
if [ $QUICK = 1 ]; then
	SMALL_FILES=${SMALL_FILES:-2000} META_FILES=${META_FILES:-5000}
	META_SECS=${META_SECS:-8} KILLS=${KILLS:-3}
	CATCHUP_FILES=${CATCHUP_FILES:-50000}
else
	SMALL_FILES=${SMALL_FILES:-10000} META_FILES=${META_FILES:-20000}
	META_SECS=${META_SECS:-20} KILLS=${KILLS:-5}
	CATCHUP_FILES=${CATCHUP_FILES:-1000000}
fi

stamp=$(date +%Y%m%d-%H%M%S)
out=$src/results/raft-$stamp
mkdir -p "$out"
raw=$out/raw.txt
: >"$raw"
work=$(mktemp -d /var/tmp/tessera-raftbench-XXXXXX)

declare -A PID PORT
cleanup() {
	local p
	for p in "${PID[@]}"; do
		[ -n "$p" ] || continue
		kill "$p" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	if [ $KEEP = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_build
T=$BUILD/tessera
bench_nfsload
record() { # PART SERVER: nfsload's R lines relabelled; the others shown
	while IFS= read -r line; do
		case $line in
		R\ *) set -- $line; echo "R $part $server $4 $5" >>"$raw" ;;
		*) echo "    $line" | tee -a "$out/progress.log" ;;
		esac
	done
}
# L PART SERVER NODE nfsload-args...: run the client against a gateway.
L() {
	local part=$1 server=$2 node=$3
	shift 3
	"$LOAD" -l "$part" -S "$server" "$@" \
		"nfs://127.0.0.1/?version=3&nfsport=${PORT[$node]}&mountport=${PORT[$node]}" \
		2>>"$out/nfsload.err" | part=$part server=$server record
}
fig() { echo "R $1 $2 $3 $4" >>"$raw"; }
get() { awk -v p="$1" -v s="$2" -v m="$3" \
	'$2==p && $3==s && $4==m {v=$5} END {print v}' "$raw"; }

echo "/ 127.0.0.1(rw,insecure,no_root_squash)" >"$work/exports"
# ---- the servers ----------------------------------------------------------
start_lmdb() {
	free_port; PORT[lmdb]=$port
	"$T" format "lmdb://$work/lmdb" "file://$work/obj-lmdb" benchvol \
		>"$out/format-lmdb.log" 2>&1 || { cat "$out/format-lmdb.log"; exit 1; }
	"$BUILD/tesserad" --meta "lmdb://$work/lmdb" -f --no-rpcbind \
		--listen "127.0.0.1:${PORT[lmdb]}" --exports "$work/exports" \
		-o metrics_listen=off >"$out/lmdb.log" 2>&1 &
	PID[lmdb]=$!
	wait_port "${PORT[lmdb]}" "${PID[lmdb]}" 600 ||
		{ echo "tesserad (lmdb) did not start" >&2; exit 1; }
}
node_start() { # I
	rg_start "$1"
}
node_stop() { # I [SIGNAL]
	kill -"${2:-TERM}" "${PID[$1]}" 2>/dev/null
	wait "${PID[$1]}" 2>/dev/null
	PID[$1]=
}
status() { # through the first node that runs
	local i
	for i in 1 2 3; do
		[ -n "${PID[$i]}" ] || continue
		"$T" -c "$work/n$i.conf" raft status 2>/dev/null && return 0
	done
	return 1
}
leader() { # the leader's id, as the running nodes say
	local i
	for i in 1 2 3; do
		[ -n "${PID[$i]}" ] || continue
		"$T" -c "$work/n$i.conf" raft status 2>/dev/null |
			awk '$4 == "leader" {print $1; exit}' | grep . && return 0
	done
	return 1
}
start_group() {
	local i
	for i in 1 2 3; do
		free_port; PORT[$i]=$port; NFS_ADDR[$i]=127.0.0.1:$port
		free_port; RAFT_ADDR[$i]=127.0.0.1:$port
	done
	RG_BIN=$BUILD RG_DIR=$work RG_LOGS=$out
	rg_found "file://$work/obj-raft" benchvol || exit 1
}
follower_of() { # a node other than the leader $1
	echo $(($1 % 3 + 1))
}
# probe NODE DIR: MKDIRs DIR.1, DIR.2... through NODE, one after another,
# until one is acknowledged; prints the time of that answer.
probe() {
	local n
	for n in $(seq 600); do
		if "$LOAD" -l probe -S raft -f "$2.$n" mkdir \
			"nfs://127.0.0.1/?version=3&nfsport=${PORT[$1]}&mountport=${PORT[$1]}" \
			>/dev/null 2>>"$out/nfsload.err"; then
			date +%s.%N
			return 0
		fi
		sleep 0.01
	done
	return 1
}

say "bench/raft.sh: results in $out"
start_lmdb
start_group
status | sed 's/^/    /' | tee -a "$out/progress.log"
LEAD=$(leader); FOLL=$(follower_of "$LEAD")
say "lmdb gateway on ${PORT[lmdb]}; raft leader node $LEAD, follower node $FOLL"

# ---- create ----------------------------------------------------------------
if want create; then
	for c in 1 4; do
		for t in lmdb raft-leader raft-follower; do
			case $t in
			lmdb) node=lmdb ;; raft-leader) node=$LEAD ;; *) node=$FOLL ;;
			esac
			d=/small.$t.$c
			L setup "$t" "$node" -f "$d" mkdir
			say "create: $SMALL_FILES files x 4 KiB, $c client(s), $t"
			L "create-${c}c" "$t" "$node" -f "$d" -n "$SMALL_FILES" \
				-b 4k -q 8 -p "$c" create
		done
	done
fi

# ---- storm -----------------------------------------------------------------
if want storm; then
	L setup lmdb lmdb -f /meta0 mkdir
	L setup lmdb lmdb -d 10 -f /meta0 mkdir
	L setup lmdb lmdb -f /meta0 -d 10 -n "$META_FILES" -b 0 -q 16 -p 2 create
	L setup raft "$LEAD" -f /meta0 mkdir
	L setup raft "$LEAD" -d 10 -f /meta0 mkdir
	L setup raft "$LEAD" -f /meta0 -d 10 -n "$META_FILES" -b 0 -q 16 -p 2 create
	for t in lmdb raft-leader raft-follower; do
		case $t in
		lmdb) node=lmdb ;; raft-leader) node=$LEAD ;; *) node=$FOLL ;;
		esac
		L setup "$t" "$node" -f /meta0 -d 10 -n "$META_FILES" -q 16 stat
		say "storm: LOOKUP+GETATTR, 2 clients x 16, ${META_SECS}s, $t"
		L storm "$t" "$node" -f /meta0 -d 10 -N "$META_FILES" \
			-n 100000000 -t "$META_SECS" -q 16 -p 2 statrand
	done
fi

# ---- kill ------------------------------------------------------------------
if want kill; then
	L setup raft "$LEAD" -f /kill mkdir
	for k in $(seq "$KILLS"); do
		LEAD=$(leader); FOLL=$(follower_of "$LEAD")
		say "kill $k: a client of node $FOLL creating; node $LEAD (leader) SIGKILLed after 2 s"
		L setup raft "$FOLL" -f /kill/$k mkdir
		L "kill-$k" raft "$FOLL" -f /kill/$k -n 100000000 -b 0 -q 1 -t 6 \
			create &
		lp=$!
		sleep 2
		t0=$(date +%s.%N)
		node_stop "$LEAD" KILL
		SURV=$(follower_of "$FOLL")
		probe "$SURV" "/kill/p$k" >"$work/probe.$k" &
		pp=$!
		nl=
		for _ in $(seq 200); do
			nl=$(leader) && [ "$nl" != "$LEAD" ] && break
			sleep 0.05
		done
		t1=$(date +%s.%N)
		wait $lp
		wait $pp
		fig "kill-$k" raft new_leader_seen_s \
			"$(echo "$t0 $t1" | awk '{printf "%.3f", $2-$1}')"
		tw=$(cat "$work/probe.$k")
		fig "kill-$k" raft writes_resumed_s \
			"$(echo "$t0 ${tw:-}" | awk 'NF == 2 {printf "%.3f", $2-$1; next} {print "never"}')"
		fig "kill-$k" raft probe_node "$SURV"
		node_start "$LEAD"
		wait_port "${PORT[$LEAD]}" "${PID[$LEAD]}" 600
		sleep 2
	done
fi

# ---- catchup -----------------------------------------------------------------
if want catchup; then
	LEAD=$(leader); FOLL=$(follower_of "$LEAD")
	say "catchup: node $FOLL stopped; $CATCHUP_FILES files through node $LEAD"
	node_stop "$FOLL"
	L setup raft "$LEAD" -f /cu mkdir
	L setup raft "$LEAD" -d 100 -f /cu mkdir
	L catchup-create raft "$LEAD" -f /cu -d 100 -n "$CATCHUP_FILES" -b 0 \
		-q 16 -c 2 -p 4 create
	commit=$(status | awk -v l="$LEAD" '$1 == l {print $6}')
	say "catchup: node $FOLL started; the leader's commit index is $commit"
	t0=$(date +%s.%N)
	node_start "$FOLL"
	done_=0
	for _ in $(seq 36000); do
		a=$("$T" -c "$work/n$LEAD.conf" raft status 2>/dev/null |
			awk -v f="$FOLL" '$1 == f {print $7}')
		if [ -n "$a" ] && [ "$a" -ge "$commit" ]; then done_=1; break; fi
		sleep 0.1
	done
	t1=$(date +%s.%N)
	secs=$(echo "$t0 $t1" | awk '{printf "%.2f", $2-$1}')
	[ $done_ = 1 ] || secs=timeout
	fig catchup raft secs "$secs"
	fig catchup raft files "$CATCHUP_FILES"
	fig catchup raft replica_MiB "$(du -sm "$work/n$LEAD" | awk '{print $1}')"
	grep -h "copied the replica" "$out/n$FOLL.log" | tail -1 |
		sed 's/^/    /' | tee -a "$out/progress.log"
fi

# ---- summary -----------------------------------------------------------------
{
echo "raft:// beside lmdb:// (same run, same client; noisy shared machine)"
if want create; then
	for c in 1 4; do
		l=$(get "create-${c}c" lmdb files_s)
		for t in raft-leader raft-follower; do
			r=$(get "create-${c}c" "$t" files_s)
			printf "create %dc  %-14s %8.0f files/s   lmdb %8.0f   ratio %.2f   errors %s (lmdb %s)\n" \
				"$c" "$t" "${r:-0}" "${l:-0}" \
				"$(echo "${r:-0} ${l:-1}" | awk '{print ($2 > 0) ? $1/$2 : 0}')" \
				"$(get "create-${c}c" "$t" errors)" \
				"$(get "create-${c}c" lmdb errors)"
		done
	done
fi
if want storm; then
	# nfsload names a storm's rate files_s (one LOOKUP+GETATTR a file)
	l=$(get storm lmdb files_s)
	for t in raft-leader raft-follower; do
		r=$(get storm "$t" files_s)
		printf "storm      %-14s %8.0f ops/s     lmdb %8.0f   ratio %.2f\n" \
			"$t" "${r:-0}" "${l:-0}" \
			"$(echo "${r:-0} ${l:-1}" | awk '{print ($2 > 0) ? $1/$2 : 0}')"
	done
fi
if want kill; then
	for k in $(seq "$KILLS"); do
		printf "kill %d     writes resumed on the survivors after %s s (node %s); the client's writes stood still %6.0f ms (longest create); new leader seen after %s s; %s errors\n" \
			"$k" "$(get "kill-$k" raft writes_resumed_s)" \
			"$(get "kill-$k" raft probe_node)" \
			"$(get "kill-$k" raft max_ms)" \
			"$(get "kill-$k" raft new_leader_seen_s)" \
			"$(get "kill-$k" raft errors)"
	done
fi
if want catchup; then
	printf "catchup    %s files changed while a follower was down: caught up in %s s (replica %s MiB)\n" \
		"$(get catchup raft files)" "$(get catchup raft secs)" \
		"$(get catchup raft replica_MiB)"
fi
} | tee "$out/summary.txt"
