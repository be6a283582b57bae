#!/bin/bash
# Install, build and run Tessera's whole test suite:
#   1. unit and protocol tests (make check) on the plain build,
#   2. the same under AddressSanitizer + UndefinedBehaviorSanitizer,
#   3. the Debian package: built with dpkg-buildpackage, lintian, installed,
#      a volume served by its tesserad@ unit as the user tessera (the
#      unit's command line where systemd is not PID 1), used through
#      libnfs, purged (t/pkg/package-test.sh);
#   4. the Linux kernel NFS client in a QEMU VM against a real tesserad,
#      on a file:// volume and again on radosgw (S3) with writeback on,
#      through HAProxy in front of three raft:// gateways, one killed,
#      and mounted without nolock: fcntl and flock locks through NLM.
# Ends with one line "N passed, N failed[, N skipped]"; exit status 0 only
# when nothing failed.
#
# Each stage's time is printed as it ends, and all of them together at
# the end, so a slow stage shows (CI must stay well under 60 minutes).
#
#   bash t/run-all.sh --quick   the developers' fast lane: step 1 only
#                               (unit and protocol tests, plain build)
#
# Environment: TESSERA_SKIP_KERNEL=1 skips step 4, TESSERA_SKIP_PACKAGE=1
# step 3, TESSERA_SKIP_ASAN=1 step 2, TESSERA_SKIP_FUZZ=1 the libFuzzer
# run after step 2,
# TESSERA_SKIP_DISTCHECK=1 the release-tarball check
# (TESSERA_FUZZ_SECONDS, default 120) (for quick local runs; CI runs
# everything).
set -u
case "${1:-}" in
--quick)
	TESSERA_SKIP_KERNEL=1 TESSERA_SKIP_ASAN=1 TESSERA_SKIP_FUZZ=1
	TESSERA_SKIP_DISTCHECK=1 TESSERA_SKIP_PACKAGE=1
	;;
"") ;;
*)
	echo "usage: bash t/run-all.sh [--quick]" >&2
	exit 2
	;;
esac
cd "$(dirname "$0")/.."
TOP=$(pwd)
JOBS=$(nproc)
PASS=0 FAIL=0 SKIP=0
LOGDIR=$TOP/t/logs
mkdir -p "$LOGDIR"

# Stages and their times: step NAME starts a stage (ending the one
# before); stage_times prints them all.
STAGE= STAGE_T0=0 STAGE_TIMES= RUN_T0=$(date +%s)
stage_end() {
	local now
	[ -n "$STAGE" ] || return 0
	now=$(date +%s)
	echo "=== [$(date +%H:%M:%S)] ($STAGE: $((now - STAGE_T0)) s)"
	STAGE_TIMES="$STAGE_TIMES$(printf '%6d s  %s' $((now - STAGE_T0)) "$STAGE")
"
	STAGE=
}
step() {
	stage_end
	STAGE=$*
	STAGE_T0=$(date +%s)
	echo "=== [$(date +%H:%M:%S)] $*"
}
stage_times() {
	stage_end
	echo "=== stage times"
	printf '%s' "$STAGE_TIMES"
	printf '%6d s  all\n' $(($(date +%s) - RUN_T0))
}

# Add the automake summary of one `make check` run to the totals.
count_automake() {
	local out=$1 p f s e xp
	p=$(sed -n 's/^# PASS: *\([0-9]*\).*/\1/p' "$out" | tail -1)
	f=$(sed -n 's/^# FAIL: *\([0-9]*\).*/\1/p' "$out" | tail -1)
	s=$(sed -n 's/^# SKIP: *\([0-9]*\).*/\1/p' "$out" | tail -1)
	e=$(sed -n 's/^# ERROR: *\([0-9]*\).*/\1/p' "$out" | tail -1)
	xp=$(sed -n 's/^# XPASS: *\([0-9]*\).*/\1/p' "$out" | tail -1)
	if [ -z "$p" ]; then
		echo "no test summary in $out: counting the run as failed"
		tail -30 "$out"
		FAIL=$((FAIL + 1))
		return
	fi
	PASS=$((PASS + p))
	FAIL=$((FAIL + ${f:-0} + ${e:-0} + ${xp:-0}))
	SKIP=$((SKIP + ${s:-0}))
}

# Configure and build in DIR with extra configure flags, then make check.
build_and_check() {
	local dir=$1 name=$2
	shift 2
	step "$name: configure and build in $dir"
	mkdir -p "$dir"
	(cd "$dir" && "$TOP/configure" -q "$@" && make -j"$JOBS" -s) \
		>"$LOGDIR/$name-build.log" 2>&1
	if [ $? -ne 0 ]; then
		tail -40 "$LOGDIR/$name-build.log"
		echo "$name: build FAILED"
		FAIL=$((FAIL + 1))
		return 1
	fi
	step "$name: make check"
	(cd "$dir" && make -j"$JOBS" check) >"$LOGDIR/$name-check.log" 2>&1
	grep -E '^(PASS|FAIL|SKIP|ERROR|XPASS|XFAIL):|^# ' \
		"$LOGDIR/$name-check.log"
	# Show the logs of failed tests, they are what CI readers need.
	for l in $(grep -lE '^(FAIL|ERROR)' "$dir"/t/*/*.log \
		   "$dir"/t/*/*.trs 2>/dev/null | sed 's/\.trs$/.log/' |
		   sort -u); do
		echo "--- $l"
		tail -60 "$l"
	done
	count_automake "$LOGDIR/$name-check.log"
	return 0
}

step "install packages"
sh scripts/install-deps.sh --test || { echo "package install failed"; exit 1; }
step "autoreconf"
autoreconf -fi >"$LOGDIR/autoreconf.log" 2>&1 ||
	{ cat "$LOGDIR/autoreconf.log"; echo "0 passed, 1 failed"; exit 1; }

build_and_check "$TOP/build-plain" plain && plain_ok=1 || plain_ok=0

# The release tarball: builds out of a read-only source tree, installs,
# uninstalls and passes the unit tests (the protocol tests ran above).
if [ "$plain_ok" = 1 ] && [ "${TESSERA_SKIP_DISTCHECK:-0}" != 1 ]; then
	step "make distcheck"
	units=$(cd "$TOP/build-plain" && ls t/unit/*_test 2>/dev/null |
		tr '\n' ' ')
	if (cd "$TOP/build-plain" && make -j"$JOBS" distcheck \
		TESTS="$units") >"$LOGDIR/distcheck.log" 2>&1; then
		echo "PASS: make distcheck"
		PASS=$((PASS + 1))
	else
		tail -40 "$LOGDIR/distcheck.log"
		echo "FAIL: make distcheck"
		FAIL=$((FAIL + 1))
	fi
fi

if [ "${TESSERA_SKIP_ASAN:-0}" != 1 ]; then
	# Leak checking of the long-running daemon is valgrind's job in the
	# unit tests; LeakSanitizer's exit-time report would only restate the
	# caches a killed daemon still holds.
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	build_and_check "$TOP/build-asan" asan --enable-sanitizers
fi

if [ "${TESSERA_SKIP_FUZZ:-0}" != 1 ]; then
	# libFuzzer + ASan/UBSan on the five targets (the RPC dispatcher,
	# the transport, MOUNT, the exports parser, the S3 XML parser)
	# sharing a bounded time, then every corpus and the regressions
	# replayed: one pass or fail.
	step "fuzz five targets (${TESSERA_FUZZ_SECONDS:-120} s in all)"
	FUZZ_BUILD=$TOP/build-fuzz bash t/fuzz/run-fuzz.sh \
		"${TESSERA_FUZZ_SECONDS:-120}" >"$LOGDIR/fuzz.log" 2>&1
	frc=$?
	tail -5 "$LOGDIR/fuzz.log"
	if [ "$frc" = 0 ]; then
		PASS=$((PASS + 1))
	elif [ "$frc" = 77 ]; then
		SKIP=$((SKIP + 1))
	else
		tail -40 "$LOGDIR/fuzz.log"
		FAIL=$((FAIL + 1))
	fi
fi

# Run one script of TAP checks (kernel client, package) and add them to
# the totals; a run that fails without a failed check counts as one
# failure.
tap_run() {
	local script=$1 name=$2 krc kp kf
	TIMEOUT=${TESSERA_KERNEL_TIMEOUT:-1200} \
	top_builddir=$TOP/build-plain top_srcdir=$TOP \
		bash "$script" >"$LOGDIR/$name.log" 2>&1
	krc=$?
	grep -E '^(ok|not ok) ' "$LOGDIR/$name.log"
	kp=$(grep -cE '^ok ' "$LOGDIR/$name.log")
	kf=$(grep -cE '^not ok ' "$LOGDIR/$name.log")
	if [ "$krc" = 77 ]; then
		grep '^# SKIP' "$LOGDIR/$name.log"
		SKIP=$((SKIP + 1))
	elif [ "$krc" != 0 ] && [ "$kf" = 0 ]; then
		tail -60 "$LOGDIR/$name.log"
		FAIL=$((FAIL + 1))
		PASS=$((PASS + kp))
	else
		[ "$krc" != 0 ] && tail -40 "$LOGDIR/$name.log"
		PASS=$((PASS + kp))
		FAIL=$((FAIL + kf))
	fi
}

# Installs the package and purges it, whatever happens, before the
# kernel stages run the build tree's binaries.
if [ "${TESSERA_SKIP_PACKAGE:-0}" != 1 ] && [ "$plain_ok" = 1 ]; then
	step "Debian package: build, lintian, install, serve as the unit, purge"
	tap_run t/pkg/package-test.sh package
fi

if [ "${TESSERA_SKIP_KERNEL:-0}" != 1 ] && [ "$plain_ok" = 1 ]; then
	step "kernel client in a VM"
	tap_run t/kernel/kernel-test.sh kernel
	step "kernel client in a VM, volume on radosgw (S3), writeback on"
	tap_run t/kernel/kernel-s3-test.sh kernel-s3
	step "kernel client through HAProxy, three raft:// gateways, one killed"
	tap_run t/kernel/kernel-raft-test.sh kernel-raft
	step "kernel client with NFS locks (NLM, NSM): fcntl, flock, reclaim"
	tap_run t/kernel/kernel-lock-test.sh kernel-lock
	step "kernel client with NFS locks through HAProxy, its gateway killed"
	tap_run t/kernel/kernel-lock-raft-test.sh kernel-lock-raft
fi

stage_times
if [ "$SKIP" -gt 0 ]; then
	echo "$PASS passed, $FAIL failed, $SKIP skipped"
else
	echo "$PASS passed, $FAIL failed"
fi
[ "$FAIL" = 0 ]
