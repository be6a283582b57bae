#!/bin/bash
# bench/readahead.sh - cold sequential read of a big file through the
# gateway against raw GET throughput of the same object store, in one run
# with the same parallelism.  Prints figures; asserts nothing.
#
# Usage: bench/readahead.sh [BUILD_DIR]      (default: the source tree)
# Environment (defaults in brackets):
#   SIZE [1G]      file size
#   THREADS [16]   raw GET threads = the gateway's download_threads
#   DEPTH [16]     NFS READs in flight (a kernel client with readahead
#                  keeps several)
#   RSIZE [1M]     NFS READ size
#   BS [4M]        volume block size
#   CACHE [yes]    give the gateway an (empty) disk cache, so the cold
#                  read also fills it, as in production; "no" for none
#   STORE [file]   object store: "file" (a directory under the run's
#                  temporary dir) or a full storage URL (s3://...)
#   WRAP []        wrappers put before the store URL (tessera(1)), e.g.
#                  "fault(latency=20ms,ops=get):ratelimit(down=300M):" to
#                  model a remote store's first-byte latency and bandwidth
#
# With a bare file:// store the object files are in the page cache for
# both sides (written just before): raw GETs are then memory copies
# (GB/s), and on a small machine the gateway is bound by the CPU cost of
# serving NFS over loopback rather than by fetching; WRAP gives the
# comparison the issue means, against a store that has latency.
# Needs libnfs-dev (apt-get install libnfs-dev).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src}" && pwd)
SIZE=${SIZE:-1G}
THREADS=${THREADS:-16}
DEPTH=${DEPTH:-16}
RSIZE=${RSIZE:-1M}
BS=${BS:-4M}
CACHE=${CACHE:-yes}
STORE=${STORE:-file}
WRAP=${WRAP:-}

for f in tesserad tessera cache/libcache.a; do
	[ -e "$build/$f" ] || { echo "no $build/$f: build first" >&2; exit 1; }
done
[ -e /usr/include/nfsc/libnfs.h ] ||
	{ echo "needs libnfs-dev (apt-get install libnfs-dev)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/tessera-bench-XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	[ -n "${KEEP:-}" ] && echo "kept $tmp" >&2 && return; rm -rf "$tmp"
}
trap cleanup EXIT

# The reader needs the object-store library and what it links with, as
# configure found them (read from the Makefile, not by running make).
ext=$(sed -n 's/^\(LIBS\|CRYPTO_LIBS\|CURL_LIBS\|ZSTD_LIBS\) = //p' \
	"$build/Makefile" | tr '\n' ' ')
objs="$build/objstore/libobjstore.a $build/lib/libtl.a $ext"
cc -O2 -std=gnu11 -I"$src" -I"$build" -o "$tmp/reader" \
	"$src/bench/readahead_reader.c" $objs -lnfs -pthread

meta="lmdb://$tmp/meta"
[ "$STORE" = file ] && storage="file://$tmp/obj" || storage=$STORE
storage="${WRAP:-}$storage"
"$build/tessera" format --block-size "$BS" --trash-days 0 "$meta" \
	"$storage" bvol >/dev/null
port=$((20000 + $$ % 20000))
url="nfs://127.0.0.1/big?version=3&nfsport=$port&mountport=$port"

start() { # $1: cache dir or ""
	"$build/tesserad" --meta "$meta" --listen "127.0.0.1:$port" \
		--foreground --no-rpcbind -L warn \
		-o download_threads="$THREADS" -o cache_dirs="$1" \
		2>>"$tmp/tesserad.log" &
	pid=$!
	for _ in $(seq 100); do
		(exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && return 0
		sleep 0.1
	done
	echo "tesserad did not start:" >&2
	cat "$tmp/tesserad.log" >&2
	exit 1
}
stop() { kill "$pid"; wait "$pid" || true; pid=; }

echo "# $SIZE file, block size $BS, $THREADS fetch threads," \
	"$DEPTH x $RSIZE NFS READs in flight, disk cache: $CACHE," \
	"store: ${WRAP:-}$STORE"
start ""
"$tmp/reader" write "$url" "$SIZE"
stop

raw=$("$tmp/reader" raw "$storage" "bvol/chunks/" "$THREADS")
cdir=
[ "$CACHE" = yes ] && cdir="$tmp/cache" && mkdir -p "$cdir"
start "$cdir"
gw=$("$tmp/reader" nfs "$url" "$DEPTH" "$RSIZE")
# The gateway's CPU seconds (user + system) for the cold read: on a
# shared machine a steadier figure than the throughput.
gw_cpu=$(awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' \
	"/proc/$pid/stat")
stop

set -- $raw
raw_mbs=$3
echo "raw GET:        $1 bytes in $2 s = $3 MB/s"
set -- $gw
gw_mbs=$3
echo "gateway (cold): $1 bytes in $2 s = $3 MB/s, gateway CPU $gw_cpu s"
awk -v g="$gw_mbs" -v r="$raw_mbs" \
	'BEGIN { printf "ratio:          %.0f%% of raw GET throughput\n", 100 * g / r }'
