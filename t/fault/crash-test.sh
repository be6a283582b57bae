#!/bin/sh
# crash-test.sh - SIGKILL tesserad at random moments of a mixed workload
# and check that everything acknowledged survives (t/fault/crash_client.c
# says exactly what is checked).
#
#   t/fault/crash-test.sh                 30 cycles (the `make check` run)
#   t/fault/crash-test.sh --cycles 300    a soak (`make soak` runs this)
#   TH_SEED=N t/fault/crash-test.sh       repeat the workload of seed N
#   TH_KEEP=1 ...                         keep the volume, log and journal
#
# Run from the build directory (make check does); exit 77 (skip) when the
# client was not built (no libnfs).
bin=${top_builddir:-.}/t/fault/crash_client
if [ ! -x "$bin" ]; then
	echo "1..0 # SKIP $bin not built (libnfs missing?)"
	exit 77
fi
exec "$bin" "$@"
