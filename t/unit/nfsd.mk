# nfsd unit tests: exports, file handles, MOUNT XDR, the RPC transport,
# the configuration table against tessera.conf(5), the duplicate request
# cache, malformed and hostile input, nothing slow on the event loop.
nfsd_unit_tests = t/unit/nfsd_exports_test t/unit/nfsd_fh_test \
	t/unit/nfsd_mount_xdr_test t/unit/nfsd_rpc_test t/unit/nfsd_serve_test \
	t/unit/nfsd_conf_test t/unit/nfsd_billing_test t/unit/nfsd_drc_test t/unit/nfsd_hostile_test \
	t/unit/nfsd_stall_test t/unit/nfsd_nlm_test
check_PROGRAMS += $(nfsd_unit_tests)
TESTS += $(nfsd_unit_tests)
t_unit_nfsd_exports_test_SOURCES = t/unit/nfsd_exports_test.c
t_unit_nfsd_exports_test_LDADD = $(TESSERA_LIBS)
t_unit_nfsd_fh_test_SOURCES = t/unit/nfsd_fh_test.c
t_unit_nfsd_fh_test_LDADD = $(TESSERA_LIBS)
t_unit_nfsd_mount_xdr_test_SOURCES = t/unit/nfsd_mount_xdr_test.c
t_unit_nfsd_mount_xdr_test_LDADD = $(TESSERA_LIBS)
t_unit_nfsd_rpc_test_SOURCES = t/unit/nfsd_rpc_test.c
t_unit_nfsd_rpc_test_LDADD = $(TESSERA_LIBS)
t_unit_nfsd_conf_test_SOURCES = t/unit/nfsd_conf_test.c
t_unit_nfsd_conf_test_LDADD = $(TESSERA_LIBS)
t_unit_nfsd_billing_test_SOURCES = t/unit/nfsd_billing_test.c
t_unit_nfsd_billing_test_LDADD = $(TESSERA_LIBS)
t_unit_nfsd_serve_test_SOURCES = t/unit/nfsd_serve_test.c t/unit/nfsd_test.h
t_unit_nfsd_serve_test_LDADD = $(TESSERA_LIBS)
t_unit_nfsd_drc_test_SOURCES = t/unit/nfsd_drc_test.c t/unit/nfsd_test.h
t_unit_nfsd_drc_test_LDADD = $(TESSERA_LIBS)
t_unit_nfsd_hostile_test_SOURCES = t/unit/nfsd_hostile_test.c t/unit/nfsd_test.h
t_unit_nfsd_hostile_test_LDADD = $(TESSERA_LIBS)
t_unit_nfsd_stall_test_SOURCES = t/unit/nfsd_stall_test.c t/unit/nfsd_test.h
t_unit_nfsd_stall_test_LDADD = $(TESSERA_LIBS)
t_unit_nfsd_nlm_test_SOURCES = t/unit/nfsd_nlm_test.c t/unit/nfsd_test.h \
	t/unit/nlm_test.h
t_unit_nfsd_nlm_test_LDADD = $(TESSERA_LIBS)
# The real tesserad under a service manager the test plays (sd_notify).
check_PROGRAMS += t/unit/tesserad_notify_test
TESTS += t/unit/tesserad_notify_test
