# Protocol tests: C programs that speak NFSv3 and MOUNTv3 through libnfs
# (its raw RPC layer, for exact status codes, handles, cookies and
# verifiers) to a real tesserad started on a free loopback port.  Each
# program formats its own volume(s) and starts, restarts and stops the
# daemon itself through t/nfs/tharness.c, so `make check` needs nothing
# running.  Tests are skipped when libnfs is not installed.
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

TH_NFS_CPPFLAGS = $(AM_CPPFLAGS) $(NFS_CFLAGS)
TH_NFS_LDADD = t/nfs/libtharness.a $(NFS_LIBS)

t_nfs_nfs_readrace_test_SOURCES = t/nfs/nfs_readrace_test.c
t_nfs_nfs_readrace_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_readrace_test_LDADD = $(TH_NFS_LDADD) -lpthread
t_nfs_nfs_storewait_test_SOURCES = t/nfs/nfs_storewait_test.c
t_nfs_nfs_storewait_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_storewait_test_LDADD = $(TH_NFS_LDADD)
EXTRA_t_nfs_nfs_storewait_test_DEPENDENCIES = tessera$(EXEEXT) \
	tesserad$(EXEEXT)
t_nfs_nfs_warmup_test_SOURCES = t/nfs/nfs_warmup_test.c
t_nfs_nfs_warmup_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_warmup_test_LDADD = $(TH_NFS_LDADD)
EXTRA_t_nfs_nfs_warmup_test_DEPENDENCIES = tessera$(EXEEXT)
t_nfs_nfs_bgjob_test_SOURCES = t/nfs/nfs_bgjob_test.c
t_nfs_nfs_bgjob_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_bgjob_test_LDADD = $(TH_NFS_LDADD)
EXTRA_t_nfs_nfs_bgjob_test_DEPENDENCIES = tessera$(EXEEXT)
t_nfs_nfs_inline_test_SOURCES = t/nfs/nfs_inline_test.c
t_nfs_nfs_inline_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_inline_test_LDADD = $(TH_NFS_LDADD)
EXTRA_t_nfs_nfs_inline_test_DEPENDENCIES = tessera$(EXEEXT)
t_nfs_nfs_trash_test_SOURCES = t/nfs/nfs_trash_test.c
t_nfs_nfs_trash_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_trash_test_LDADD = $(TH_NFS_LDADD)
EXTRA_t_nfs_nfs_trash_test_DEPENDENCIES = tessera$(EXEEXT)
t_nfs_nfs_billing_test_SOURCES = t/nfs/nfs_billing_test.c
t_nfs_nfs_billing_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_billing_test_LDADD = $(TH_NFS_LDADD)
EXTRA_t_nfs_nfs_billing_test_DEPENDENCIES = tessera$(EXEEXT)
t_nfs_nfs_billing_ha_test_SOURCES = t/nfs/nfs_billing_ha_test.c
t_nfs_nfs_billing_ha_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_billing_ha_test_LDADD = $(TH_NFS_LDADD)
EXTRA_t_nfs_nfs_billing_ha_test_DEPENDENCIES = tessera$(EXEEXT)
t_nfs_nfs_usage_test_SOURCES = t/nfs/nfs_usage_test.c
t_nfs_nfs_usage_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_usage_test_LDADD = $(TH_NFS_LDADD)
EXTRA_t_nfs_nfs_usage_test_DEPENDENCIES = tessera$(EXEEXT)
t_nfs_nfs_dump_test_SOURCES = t/nfs/nfs_dump_test.c
t_nfs_nfs_dump_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_dump_test_LDADD = $(TH_NFS_LDADD)
EXTRA_t_nfs_nfs_dump_test_DEPENDENCIES = tessera$(EXEEXT)
t_nfs_nfs_attr_test_SOURCES = t/nfs/nfs_attr_test.c
t_nfs_nfs_attr_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_attr_test_LDADD = $(TH_NFS_LDADD)
t_nfs_nfs_posix_test_SOURCES = t/nfs/nfs_posix_test.c
t_nfs_nfs_posix_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_posix_test_LDADD = $(TH_NFS_LDADD)
t_nfs_nfs_names_test_SOURCES = t/nfs/nfs_names_test.c
t_nfs_nfs_names_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_names_test_LDADD = $(TH_NFS_LDADD)
t_nfs_nfs_io_test_SOURCES = t/nfs/nfs_io_test.c
t_nfs_nfs_io_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_io_test_LDADD = $(TH_NFS_LDADD)
t_nfs_nfs_readdir_test_SOURCES = t/nfs/nfs_readdir_test.c
t_nfs_nfs_readdir_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_readdir_test_LDADD = $(TH_NFS_LDADD)
t_nfs_nfs_errors_test_SOURCES = t/nfs/nfs_errors_test.c
t_nfs_nfs_errors_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_errors_test_LDADD = $(TH_NFS_LDADD)
t_nfs_nfs_exports_test_SOURCES = t/nfs/nfs_exports_test.c
t_nfs_nfs_exports_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_exports_test_LDADD = $(TH_NFS_LDADD)
t_nfs_nfs_confine_test_SOURCES = t/nfs/nfs_confine_test.c
t_nfs_nfs_confine_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_confine_test_LDADD = $(TH_NFS_LDADD)
t_nfs_nfs_ratelimit_test_SOURCES = t/nfs/nfs_ratelimit_test.c
t_nfs_nfs_ratelimit_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_ratelimit_test_LDADD = $(TH_NFS_LDADD)
t_nfs_nfs_metalimit_test_SOURCES = t/nfs/nfs_metalimit_test.c
t_nfs_nfs_metalimit_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_metalimit_test_LDADD = $(TH_NFS_LDADD)
EXTRA_t_nfs_nfs_metalimit_test_DEPENDENCIES = tessera$(EXEEXT)
t_nfs_nfs_metrics_test_SOURCES = t/nfs/nfs_metrics_test.c
t_nfs_nfs_metrics_test_CPPFLAGS = $(TH_NFS_CPPFLAGS) \
	-DTESSERA_DASHBOARD='"$(abs_top_srcdir)/contrib/grafana/tessera.json"' 
t_nfs_nfs_metrics_test_LDADD = $(TH_NFS_LDADD)
EXTRA_t_nfs_nfs_metrics_test_DEPENDENCIES = tessera$(EXEEXT)
t_nfs_nfs_unstable_test_SOURCES = t/nfs/nfs_unstable_test.c
t_nfs_nfs_unstable_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_unstable_test_LDADD = $(TH_NFS_LDADD)
t_nfs_nfs_limits_test_SOURCES = t/nfs/nfs_limits_test.c
t_nfs_nfs_limits_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_limits_test_LDADD = $(TH_NFS_LDADD)
t_nfs_nfs_quota_test_SOURCES = t/nfs/nfs_quota_test.c
t_nfs_nfs_quota_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_quota_test_LDADD = $(TH_NFS_LDADD)
t_nfs_nfs_client_test_SOURCES = t/nfs/nfs_client_test.c
t_nfs_nfs_client_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_client_test_LDADD = $(TH_NFS_LDADD)
t_nfs_nfs_bigfile_test_SOURCES = t/nfs/nfs_bigfile_test.c
t_nfs_nfs_bigfile_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_bigfile_test_LDADD = $(TH_NFS_LDADD)
t_nfs_nfs_bigdir_test_SOURCES = t/nfs/nfs_bigdir_test.c
t_nfs_nfs_bigdir_test_CPPFLAGS = $(TH_NFS_CPPFLAGS)
t_nfs_nfs_bigdir_test_LDADD = $(TH_NFS_LDADD)

# The daemon and the admin tool must be built before these tests run.
TH_NFS_LOGS = $(TH_NFS_TESTS:=.log)
$(TH_NFS_LOGS): tesserad$(EXEEXT) tessera$(EXEEXT)
endif
