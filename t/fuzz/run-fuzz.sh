#!/bin/bash
# Fuzz tesserad's RPC decode-and-dispatch path with libFuzzer under
# ASan+UBSan for a bounded time, then replay the seed corpus and the
# regression inputs.  Exit status 0 when nothing was found.
#
#   t/fuzz/run-fuzz.sh [SECONDS]        (default 120; 0: replay only)
#
# Builds with clang in its own directory ($FUZZ_BUILD, default
# build-fuzz under the source tree), never touching the gcc build.  New
# inputs go to a scratch corpus copy; a crash leaves crash-* files in
# $FUZZ_BUILD/artifacts: fix the bug, then add the input to
# t/fuzz/regressions/.  The volume lives on /dev/shm when it exists and
# is removed at the end.
set -u
cd "$(dirname "$0")/../.."
TOP=$(pwd)
SECS=${1:-120}
B=${FUZZ_BUILD:-$TOP/build-fuzz}
JOBS=$(nproc)
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"

command -v clang >/dev/null || { echo "clang not installed: skipped"; exit 77; }
echo 'int LLVMFuzzerTestOneInput(const char *d, long n){return 0;}' |
	clang -fsanitize=fuzzer -x c - -o /dev/null 2>/dev/null ||
	{ echo "libFuzzer (libfuzzer-14-dev) not installed: skipped"; exit 77; }

mkdir -p "$B"
if [ ! -f "$B/Makefile" ]; then
	[ -x "$TOP/configure" ] || autoreconf -fi || exit 1
	# -Wno-error: clang warns about things gcc does not; the gcc build
	# is the one that keeps the tree -Werror clean.
	(cd "$B" && "$TOP/configure" -q CC=clang \
		CFLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $SAN -Wno-error") ||
		exit 1
fi
# the rpcgen headers first: BUILT_SOURCES only apply to all and check
(cd "$B" && make -s nfsd/nfs3_prot.h nfsd/mount3_prot.h &&
	make -j"$JOBS" -s t/fuzz/fuzz_rpc \
	FUZZ_LDFLAGS="-fsanitize=fuzzer $SAN") >"$B/build.log" 2>&1 ||
	{ tail -30 "$B/build.log"; echo "fuzz build FAILED"; exit 1; }

SHM=/dev/shm
[ -d "$SHM" ] && [ -w "$SHM" ] || SHM=${TMPDIR:-/tmp}
WORK=$(mktemp -d "$SHM/tessera-fuzz.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/corpus" "$B/artifacts"
cp "$TOP"/t/fuzz/corpus/* "$WORK/corpus/"
export FUZZ_RPC_DIR=$WORK
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
rc=0
if [ "$SECS" -gt 0 ]; then
	echo "fuzzing for $SECS s"
	"$B/t/fuzz/fuzz_rpc" -max_total_time="$SECS" -max_len=8192 \
		-rss_limit_mb=2048 -malloc_limit_mb=256 -timeout=20 \
		-print_final_stats=1 -artifact_prefix="$B/artifacts/" \
		"$WORK/corpus" >"$B/fuzz.log" 2>&1 || rc=1
	tail -25 "$B/fuzz.log"
	[ "$rc" = 0 ] || echo "fuzzing found a problem: see $B/fuzz.log and $B/artifacts"
fi
echo "replaying the corpus and the regressions"
"$B/t/fuzz/fuzz_rpc" -runs=0 -rss_limit_mb=2048 -malloc_limit_mb=256 \
	"$TOP/t/fuzz/corpus" "$TOP/t/fuzz/regressions" >"$B/replay.log" 2>&1 || {
	tail -30 "$B/replay.log"
	echo "replay FAILED"
	rc=1
}
[ "$rc" = 0 ] && echo "fuzz: ok"
exit $rc
