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
if HAVE_LIBNFS
FAULT_CPPFLAGS = $(AM_CPPFLAGS) $(NFS_CFLAGS) \
	-DTH_BUILDDIR='"$(abs_top_builddir)"'
FAULT_LDADD = t/nfs/libtharness.a $(NFS_LIBS) -lpthread

check_PROGRAMS += t/fault/crash_client
t_fault_crash_client_SOURCES = t/fault/crash_client.c
t_fault_crash_client_CPPFLAGS = $(FAULT_CPPFLAGS)
t_fault_crash_client_LDADD = $(FAULT_LDADD)

check_PROGRAMS += t/fault/smallcrash_test
t_fault_smallcrash_test_SOURCES = t/fault/smallcrash_test.c
t_fault_smallcrash_test_CPPFLAGS = $(FAULT_CPPFLAGS)
t_fault_smallcrash_test_LDADD = $(FAULT_LDADD)

check_PROGRAMS += t/fault/stress_test
t_fault_stress_test_SOURCES = t/fault/stress_test.c
t_fault_stress_test_CPPFLAGS = $(FAULT_CPPFLAGS)
t_fault_stress_test_LDADD = $(FAULT_LDADD)

check_PROGRAMS += t/fault/objfail_test
t_fault_objfail_test_SOURCES = t/fault/objfail_test.c
t_fault_objfail_test_CPPFLAGS = $(FAULT_CPPFLAGS)
t_fault_objfail_test_LDADD = $(FAULT_LDADD)

check_PROGRAMS += t/fault/metafull_test
t_fault_metafull_test_SOURCES = t/fault/metafull_test.c
t_fault_metafull_test_CPPFLAGS = $(FAULT_CPPFLAGS)
t_fault_metafull_test_LDADD = $(FAULT_LDADD)

check_PROGRAMS += t/fault/nospc_test
t_fault_nospc_test_SOURCES = t/fault/nospc_test.c
t_fault_nospc_test_CPPFLAGS = $(FAULT_CPPFLAGS)
t_fault_nospc_test_LDADD = $(FAULT_LDADD)

check_PROGRAMS += t/fault/raft_fault_test
t_fault_raft_fault_test_SOURCES = t/fault/raft_fault_test.c
t_fault_raft_fault_test_CPPFLAGS = $(FAULT_CPPFLAGS)
t_fault_raft_fault_test_LDADD = $(FAULT_LDADD) meta/libmeta.a lib/libtl.a \
	$(RAFT_LIBS) $(CRYPTO_LIBS) $(LMDB_LIBS)

FAULT_TESTS = t/fault/crash-test.sh t/fault/smallcrash_test \
	t/fault/stress_test \
	t/fault/objfail_test t/fault/nospc_test t/fault/metafull_test \
	t/fault/raft_fault_test
dist_check_SCRIPTS += t/fault/crash-test.sh
TESTS += $(FAULT_TESTS)
FAULT_LOGS = t/fault/crash-test.log t/fault/smallcrash_test.log \
	t/fault/stress_test.log \
	t/fault/objfail_test.log t/fault/nospc_test.log t/fault/metafull_test.log \
	t/fault/raft_fault_test.log
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
