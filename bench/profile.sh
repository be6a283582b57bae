#!/bin/bash
# bench/profile.sh - where a server spends a workload: one nfsload phase
# against tesserad or Ganesha, with the server under perf stat (CPU time,
# context switches), strace -c (syscalls per type, counted in a second,
# slower pass) and perf record (hottest functions).  Prints figures only.
#
# Usage: bench/profile.sh SERVER PHASE
#   SERVER: tessera | tessera-wb | ganesha
#   PHASE:  seqwrite | randrw | smallcreate | remove | meta
# Environment: BUILD (default <repo>/build-bench), N (files, 1000),
# SIZE (seqwrite size, 256M), SECS (randrw/meta seconds, 5).
# Needs what bench/run.sh installs, plus linux-perf and strace.
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$src/build-bench}
SRV=${1:?server}
PHASE=${2:?phase}
N=${N:-1000}
SIZE=${SIZE:-256M}
SECS=${SECS:-5}
work=$(mktemp -d /var/tmp/tessera-prof-XXXXXX)
pid=
rpcbind_pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	[ -n "$rpcbind_pid" ] && kill "$rpcbind_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
cc -O2 -std=gnu11 -o "$work/nfsload" "$src/bench/nfsload.c" -lnfs || exit 1
port=$((40000 + $$ % 20000))

start() {
	case $SRV in
	tessera|tessera-wb)
		local o=()
		[ "$SRV" = tessera-wb ] && mkdir -p "$work/cache" &&
			o=(-o cache_dirs="$work/cache" -o writeback=yes)
		"$BUILD/tessera" format --trash-days 0 "lmdb://$work/meta" \
			"file://$work/obj" prof >/dev/null || exit 1
		"$BUILD/tesserad" --meta "lmdb://$work/meta" \
			--listen "127.0.0.1:$port" --foreground --no-rpcbind \
			-L warn "${o[@]}" 2>"$work/server.log" &
		pid=$!
		url="nfs://127.0.0.1/?version=3&nfsport=$port&mountport=$port"
		;;
	ganesha)
		mkdir -p "$work/export" "$work/rec"
		if ! rpcinfo -p 127.0.0.1 >/dev/null 2>&1; then
			rpcbind -f -w & rpcbind_pid=$!
			sleep 0.5
		fi
		sed -e "s|@NFS_PORT@|$port|" -e "s|@MNT_PORT@|$((port + 1))|" \
		    -e "s|@EXPORT_DIR@|$work/export|" \
		    -e "s|@RECOVERY_DIR@|$work/rec|" \
		    "$src/bench/ganesha.conf.in" >"$work/g.conf"
		ganesha.nfsd -F -f "$work/g.conf" -L "$work/server.log" \
			-p "$work/g.pid" &
		pid=$!
		url="nfs://127.0.0.1/export?version=3&nfsport=$port"
		url="$url&mountport=$((port + 1))"
		;;
	*) echo "unknown server $SRV" >&2; exit 2 ;;
	esac
	for _ in $(seq 100); do
		timeout 5 "$work/nfsload" -f / readdir "$url" >/dev/null 2>&1 &&
			return 0
		sleep 0.1
	done
	echo "$SRV did not start" >&2
	exit 1
}
L() { "$work/nfsload" -S "$SRV" "$@" "$url" | grep '^#'; }
setup() { # $1: pass number, so that each pass has fresh names
	case $PHASE in
	smallcreate|remove) L -l setup -f "/s$1" mkdir ;;
	randrw) L -l setup -f "/r$1" -s "$SIZE" -b 1M -q 8 write ;;
	meta)
		L -l setup -f "/m$1" mkdir
		L -l setup -f "/m$1" -d 10 mkdir
		L -l setup -f "/m$1" -d 10 -n "$N" -b 0 -q 16 create
		;;
	esac
	[ "$PHASE" = remove ] &&
		L -l setup -f "/s$1" -n "$N" -b 4k -q 8 create
}
run() { # $1: pass number
	case $PHASE in
	seqwrite) L -l seqwrite -f "/w$1" -s "$SIZE" -b 1M -q 8 write ;;
	randrw) L -l randrw -f "/r$1" -b 4k -q 16 -n 100000000 \
		-t "$SECS" randrw ;;
	smallcreate) L -l smallcreate -f "/s$1" -n "$N" -b 4k -q 8 create ;;
	remove) L -l remove -f "/s$1" -n "$N" -q 8 remove ;;
	meta) L -l meta -f "/m$1" -d 10 -N "$N" -n 100000000 -t "$SECS" \
		-q 16 -p 2 statrand ;;
	*) echo "unknown phase $PHASE" >&2; exit 2 ;;
	esac
}

start
echo "== $SRV $PHASE: perf stat of the server (pid $pid)"
setup 1
perf stat -e task-clock,context-switches,cpu-migrations,page-faults \
	-p "$pid" -o "$work/stat.txt" & sp=$!
sleep 0.2
run 1
kill -INT "$sp"; wait "$sp"
grep -E 'task-clock|context-sw|migrations|faults|elapsed' "$work/stat.txt"

echo "== $SRV $PHASE: syscalls of the server (strace -c, slows it down)"
setup 2
strace -c -f -q -p "$pid" -o "$work/strace.txt" & tp=$!
sleep 0.5
run 2
kill -INT "$tp"; wait "$tp"
head -25 "$work/strace.txt"

echo "== $SRV $PHASE: hottest functions (perf record -g)"
setup 3
perf record -g -p "$pid" -o "$work/perf.data" >/dev/null 2>&1 & rp=$!
sleep 0.2
run 3
kill -INT "$rp"; wait "$rp"
perf report -i "$work/perf.data" --stdio --no-children --sort symbol \
	--percent-limit 1.5 -g none 2>/dev/null | grep -v '^#' | grep -v '^$' |
	head -30
exit 0
