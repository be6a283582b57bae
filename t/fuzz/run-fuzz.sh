#!/bin/bash
# Fuzz tesserad with libFuzzer under ASan+UBSan for a bounded time, then
# replay every target's seed corpus and regression inputs.  Exit status
# 0 when nothing was found.
#
#   t/fuzz/run-fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS (default 120; 0: replay only) is shared among the targets by
# weight: rpc 35%, transport 25%, mount 15%, s3xml 15%, exports 10%
# (see t/fuzz/local.mk for what each covers).  Builds with clang in its
# own directory ($FUZZ_BUILD, default build-fuzz under the source tree),
# never touching the gcc build.  New inputs go to a scratch corpus copy;
# a crash leaves TARGET-crash-* files in $FUZZ_BUILD/artifacts: fix the
# bug, then add the input to t/fuzz/regressions/TARGET/.  The volumes
# live on /dev/shm when it exists and are removed at the end.
set -u
cd "$(dirname "$0")/../.."
TOP=$(pwd)
SECS=${1:-120}
shift $(($# > 0 ? 1 : 0))
TARGETS=${*:-rpc transport mount s3xml exports}
B=${FUZZ_BUILD:-$TOP/build-fuzz}
JOBS=$(nproc)
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"

# share of SECONDS (percent) and longest input of each target
weight() {
	case $1 in
	rpc) echo 35 ;; transport) echo 25 ;; mount | s3xml) echo 15 ;;
	*) echo 10 ;;
	esac
}
max_len() {
	case $1 in
	transport) echo 81920 ;; s3xml | exports) echo 16384 ;;
	*) echo 8192 ;;
	esac
}

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
bins=
for t in $TARGETS; do
	bins="$bins t/fuzz/fuzz_$t"
done
# the rpcgen headers first: BUILT_SOURCES only apply to all and check
(cd "$B" && make -s nfsd/nfs3_prot.h nfsd/mount3_prot.h &&
	make -j"$JOBS" -s $bins FUZZ_LDFLAGS="-fsanitize=fuzzer $SAN") \
	>"$B/build.log" 2>&1 ||
	{ tail -30 "$B/build.log"; echo "fuzz build FAILED"; exit 1; }

SHM=/dev/shm
[ -d "$SHM" ] && [ -w "$SHM" ] || SHM=${TMPDIR:-/tmp}
WORK=$(mktemp -d "$SHM/tessera-fuzz.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$B/artifacts"
export FUZZ_RPC_DIR=$WORK
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
rc=0
for t in $TARGETS; do
	secs=$((SECS * $(weight "$t") / 100))
	[ "$SECS" -gt 0 ] && [ "$secs" -lt 1 ] && secs=1
	mkdir -p "$WORK/corpus-$t"
	cp "$TOP/t/fuzz/corpus/$t"/* "$WORK/corpus-$t/"
	if [ "$secs" -gt 0 ]; then
		echo "fuzzing $t for $secs s"
		"$B/t/fuzz/fuzz_$t" -max_total_time="$secs" \
			-max_len="$(max_len "$t")" -rss_limit_mb=2048 \
			-malloc_limit_mb=256 -timeout=20 -print_final_stats=1 \
			-artifact_prefix="$B/artifacts/$t-" \
			"$WORK/corpus-$t" >"$B/fuzz-$t.log" 2>&1 || {
			rc=1
			# the target's own words first: the tail is the stack
			grep -E '^(fuzz|fuzz_[a-z]+): ' "$B/fuzz-$t.log" | tail -5
			tail -25 "$B/fuzz-$t.log"
			echo "fuzzing $t found a problem: see" \
				"$B/fuzz-$t.log and $B/artifacts"
		}
		grep -E '^stat::(number_of_executed_runs|average_exec_per_sec|new_units_added)' \
			"$B/fuzz-$t.log" | sed "s/^/  $t: /"
	fi
	regs=
	[ -d "$TOP/t/fuzz/regressions/$t" ] && regs=$TOP/t/fuzz/regressions/$t
	echo "replaying the $t corpus and regressions"
	"$B/t/fuzz/fuzz_$t" -runs=0 -rss_limit_mb=2048 -malloc_limit_mb=256 \
		"$TOP/t/fuzz/corpus/$t" $regs >"$B/replay-$t.log" 2>&1 || {
		tail -30 "$B/replay-$t.log"
		echo "replay of $t FAILED"
		rc=1
	}
done
[ "$rc" = 0 ] && echo "fuzz: ok"
exit $rc
