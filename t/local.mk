# Tests: unit tests per module (t/unit/*.mk), protocol tests through
# libnfs (t/nfs/local.mk), the Linux kernel client in a VM (t/kernel).
#
# A C test is a name in its directory's list: its source is NAME.c, it
# compiles with AM_CPPFLAGS (the paths of the built binaries and of the
# source tree are in t/testpaths.h, made by configure) and links LDADD,
# every library of the project and the protocol tests' harness (a
# static archive gives a program only what it calls).
if HAVE_LIBNFS
T_HARNESS_LIBS = t/nfs/libtharness.a $(NFS_LIBS)
endif
LDADD = $(T_HARNESS_LIBS) $(TESSERA_LIBS)

include t/unit/meta.mk
include t/unit/cache.mk
include t/unit/nfsd.mk
include t/unit/lib.mk
include t/unit/tools.mk
include t/nfs/local.mk
include t/kernel/local.mk
include t/s3/local.mk
include t/fault/local.mk
include t/fuzz/local.mk
include t/pkg/local.mk

# Every global symbol of a module carries its prefix (nm on the built
# libraries and objects; doc/DESIGN.md, "Conventions").
TESTS += t/unit/symbols_test.sh
dist_check_SCRIPTS += t/unit/symbols_test.sh

# Every .c and .h file is as .clang-format says (clang-format 14;
# skipped without it).
TESTS += t/unit/format_test.sh
dist_check_SCRIPTS += t/unit/format_test.sh
