# meta unit tests: real LMDB in a mkdtemp directory.
META_TESTS = t/unit/meta_dir_test t/unit/meta_data_test \
	t/unit/meta_perm_test t/unit/meta_schema_test t/unit/meta_fsck_test \
	t/unit/meta_kv_group_test t/unit/meta_kv_resident_test \
	t/unit/meta_kv_ops_test
check_PROGRAMS += $(META_TESTS)
TESTS += $(META_TESTS)
META_TEST_LIBS = meta/libmeta.a lib/libtl.a $(LMDB_LIBS)
EXTRA_DIST += t/unit/meta_test.h
t_unit_meta_dir_test_LDADD = $(META_TEST_LIBS)
t_unit_meta_data_test_LDADD = $(META_TEST_LIBS)
t_unit_meta_perm_test_LDADD = $(META_TEST_LIBS)
t_unit_meta_schema_test_LDADD = $(META_TEST_LIBS)
t_unit_meta_fsck_test_LDADD = $(META_TEST_LIBS)
t_unit_meta_kv_group_test_LDADD = $(META_TEST_LIBS) -lpthread
t_unit_meta_kv_resident_test_LDADD = $(META_TEST_LIBS) -lpthread
t_unit_meta_kv_ops_test_LDADD = $(META_TEST_LIBS)
