# Unit tests of objstore and cache.
check_PROGRAMS += t/unit/objstore_file_test
TESTS += t/unit/objstore_file_test
t_unit_objstore_file_test_SOURCES = t/unit/objstore_file_test.c t/unit/tap.h
t_unit_objstore_file_test_LDADD = objstore/libobjstore.a lib/libtl.a
