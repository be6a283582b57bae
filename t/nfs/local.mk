# Protocol tests: C programs that speak NFSv3 and MOUNTv3 through libnfs
# (its raw RPC layer, for exact status codes, handles, cookies and
# verifiers) to a real tesserad started on a free loopback port.  Each
# program formats its own volume(s) and starts, restarts and stops the
# daemon itself through t/nfs/tharness.c, so `make check` needs nothing
# running.  Tests are skipped when libnfs is not installed.
#
# A test is a name in TH_NFS_TESTS: its source is the name's .c, built
# and linked like every test program (t/local.mk).
#
# The two long ones are separate entries so they can be timed:
#   nfs_bigfile_test  1 GiB written at random offsets, read back
#   nfs_bigdir_test   200,000 entries listed with bounded server memory
if HAVE_LIBNFS
noinst_LIBRARIES += t/nfs/libtharness.a
t_nfs_libtharness_a_SOURCES = t/nfs/tharness.c t/nfs/tharness.h \
	t/nfs/thbill.c t/nfs/thbill.h
t_nfs_libtharness_a_CPPFLAGS = $(AM_CPPFLAGS) $(NFS_CFLAGS) \
	-DTH_BUILDDIR='"$(abs_top_builddir)"'

TH_NFS_TESTS = \
	t/nfs/nfs_attr_test \
	t/nfs/nfs_posix_test \
	t/nfs/nfs_names_test \
	t/nfs/nfs_io_test \
	t/nfs/nfs_readdir_test \
	t/nfs/nfs_errors_test \
	t/nfs/nfs_exports_test \
	t/nfs/nfs_confine_test \
	t/nfs/nfs_client_test \
	t/nfs/nfs_ratelimit_test \
	t/nfs/nfs_metalimit_test \
	t/nfs/nfs_metrics_test \
	t/nfs/nfs_limits_test \
	t/nfs/nfs_unstable_test \
	t/nfs/nfs_readrace_test \
	t/nfs/nfs_storewait_test \
	t/nfs/nfs_quota_test \
	t/nfs/nfs_warmup_test \
	t/nfs/nfs_bgjob_test \
	t/nfs/nfs_trash_test \
	t/nfs/nfs_inline_test \
	t/nfs/nfs_billing_test \
	t/nfs/nfs_billing_ha_test \
	t/nfs/nfs_usage_test \
	t/nfs/nfs_dump_test \
	t/nfs/nfs_bigfile_test \
	t/nfs/nfs_bigdir_test

check_PROGRAMS += $(TH_NFS_TESTS)
TESTS += $(TH_NFS_TESTS)

# The daemon and the admin tool must be built before these tests run.
TH_NFS_LOGS = $(TH_NFS_TESTS:=.log)
$(TH_NFS_LOGS): tesserad$(EXEEXT) tessera$(EXEEXT)
endif
