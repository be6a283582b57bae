# Unit tests of objstore and cache.
check_PROGRAMS += t/unit/objstore_file_test
TESTS += t/unit/objstore_file_test
t_unit_objstore_file_test_SOURCES = t/unit/objstore_file_test.c t/unit/tap.h
t_unit_objstore_file_test_LDADD = objstore/libobjstore.a lib/libtl.a

check_PROGRAMS += t/unit/cache_view_test
TESTS += t/unit/cache_view_test
t_unit_cache_view_test_SOURCES = t/unit/cache_view_test.c t/unit/tap.h
t_unit_cache_view_test_LDADD = cache/libcache.a lib/libtl.a
