# meta unit tests: real LMDB in a mkdtemp directory.
META_TESTS = t/unit/meta_dir_test t/unit/meta_data_test \
	t/unit/meta_perm_test t/unit/meta_schema_test t/unit/meta_fsck_test \
	t/unit/meta_kv_group_test t/unit/meta_kv_resident_test \
	t/unit/meta_kv_ops_test t/unit/meta_kv_raft_one_test \
	t/unit/meta_kv_raft_group_test t/unit/meta_kv_raft_proc_test \
	t/unit/meta_under_test t/unit/meta_lock_test t/unit/meta_lock_group_test \
	t/unit/meta_quota_test t/unit/meta_dump_test
check_PROGRAMS += $(META_TESTS)
TESTS += $(META_TESTS)
META_TEST_LIBS = meta/libmeta.a lib/libtl.a $(RAFT_LIBS) $(CRYPTO_LIBS) \
	$(LMDB_LIBS)
EXTRA_DIST += t/unit/meta_test.h t/unit/raft_test.h t/unit/free_port.h \
	t/unit/libraft.supp
t_unit_meta_dir_test_LDADD = $(META_TEST_LIBS)
t_unit_meta_data_test_LDADD = $(META_TEST_LIBS)
t_unit_meta_perm_test_LDADD = $(META_TEST_LIBS)
t_unit_meta_schema_test_LDADD = $(META_TEST_LIBS)
t_unit_meta_fsck_test_LDADD = $(META_TEST_LIBS)
t_unit_meta_under_test_LDADD = $(META_TEST_LIBS)
t_unit_meta_quota_test_LDADD = $(META_TEST_LIBS)
t_unit_meta_lock_test_LDADD = $(META_TEST_LIBS) -lpthread
t_unit_meta_lock_group_test_LDADD = $(META_TEST_LIBS) -lpthread
t_unit_meta_dump_test_LDADD = $(META_TEST_LIBS) -lpthread
t_unit_meta_kv_group_test_LDADD = $(META_TEST_LIBS) -lpthread
t_unit_meta_kv_resident_test_LDADD = $(META_TEST_LIBS) -lpthread
t_unit_meta_kv_ops_test_LDADD = $(META_TEST_LIBS)
t_unit_meta_kv_raft_one_test_LDADD = $(META_TEST_LIBS)
t_unit_meta_kv_raft_group_test_LDADD = $(META_TEST_LIBS)
# The same tests on a one-node raft:// group.
TESTS += t/unit/meta_on_raft.sh
dist_check_SCRIPTS += t/unit/meta_on_raft.sh
t/unit/meta_on_raft.log: $(META_TESTS)
t_unit_meta_kv_raft_proc_test_LDADD = $(META_TEST_LIBS)
# LMDB only: its pace callback writes while its snapshot is open.
check_PROGRAMS += t/unit/meta_recount_test
TESTS += t/unit/meta_recount_test
t_unit_meta_recount_test_LDADD = $(META_TEST_LIBS)
