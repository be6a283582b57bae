# Fault tests (t/fault): crashes, full disks, a failing object store,
# concurrent clients.  Each starts its own tesserad on a free loopback port
# through t/nfs/tharness.c and checks the volume with `tessera fsck`.
#
#   crash-test.sh     SIGKILL at random moments, 30 cycles (CRASH_CYCLES)
#   smallcrash_test   SIGKILL amid many small files' COMMITs (inline
#                     data and objects), 4 cycles (SMALLCRASH_CYCLES)
#   stress_test       several libnfs clients on one tree (STRESS_SECONDS)
#   nospc_test        the object directory on a small tmpfs
#   metafull_test     the metadata directory on a small tmpfs
#   objfail_test      an object store that fails: IO/JUKEBOX, no wrong data
#   raft_fault_test   three tesserad on one raft:// volume: kill, stop and
#                     cut (network namespaces, when root) gateways under a
#                     client per gateway, 12 cycles (RAFT_FAULT_CYCLES),
#                     then a corrupt segment and a corrupt snapshot
#
# `make soak` runs the crash test for 300 cycles (SOAK_CYCLES=N to change)
# and the raft fault test for 300 cycles on five nodes then three
# (RAFT_SOAK_CYCLES=N).

# A test is a name in FAULT_C_TESTS (built and linked like every test
# program, t/local.mk).
if HAVE_LIBNFS
check_PROGRAMS += t/fault/crash_client
FAULT_C_TESTS = t/fault/smallcrash_test t/fault/stress_test \
	t/fault/objfail_test t/fault/nospc_test t/fault/metafull_test \
	t/fault/raft_fault_test
check_PROGRAMS += $(FAULT_C_TESTS)
FAULT_TESTS = t/fault/crash-test.sh $(FAULT_C_TESTS)
dist_check_SCRIPTS += t/fault/crash-test.sh
TESTS += $(FAULT_TESTS)
FAULT_LOGS = t/fault/crash-test.log $(FAULT_C_TESTS:=.log)
$(FAULT_LOGS): tesserad$(EXEEXT) tessera$(EXEEXT) t/fault/crash_client$(EXEEXT)

SOAK_CYCLES = 300
RAFT_SOAK_CYCLES = 300
soak: tesserad$(EXEEXT) tessera$(EXEEXT) t/fault/crash_client$(EXEEXT) \
		t/fault/raft_fault_test$(EXEEXT)
	$(srcdir)/t/fault/crash-test.sh --cycles $(SOAK_CYCLES)
	RAFT_FAULT_NODES=5 RAFT_FAULT_CYCLES=$(RAFT_SOAK_CYCLES) \
		t/fault/raft_fault_test
	RAFT_FAULT_NODES=3 RAFT_FAULT_CYCLES=$(RAFT_SOAK_CYCLES) \
		t/fault/raft_fault_test
.PHONY: soak
endif
