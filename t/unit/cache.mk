# Unit tests of objstore and cache.
check_PROGRAMS += t/unit/objstore_file_test
TESTS += t/unit/objstore_file_test
t_unit_objstore_file_test_SOURCES = t/unit/objstore_file_test.c t/unit/tap.h
t_unit_objstore_file_test_LDADD = objstore/libobjstore.a lib/libtl.a

# Block object names: made and parsed back, nothing else parsed.
check_PROGRAMS += t/unit/cache_blockkey_test
TESTS += t/unit/cache_blockkey_test
t_unit_cache_blockkey_test_SOURCES = t/unit/cache_blockkey_test.c \
	t/unit/tap.h
t_unit_cache_blockkey_test_LDADD = cache/libcache.a lib/libtl.a

check_PROGRAMS += t/unit/cache_view_test
TESTS += t/unit/cache_view_test
t_unit_cache_view_test_SOURCES = t/unit/cache_view_test.c t/unit/tap.h
t_unit_cache_view_test_LDADD = cache/libcache.a lib/libtl.a

# End to end on a real LMDB volume and a file:// store.
check_PROGRAMS += t/unit/cache_data_test
TESTS += t/unit/cache_data_test
t_unit_cache_data_test_SOURCES = t/unit/cache_data_test.c t/unit/tap.h \
	t/unit/os_count.h
t_unit_cache_data_test_LDADD = cache/libcache.a meta/libmeta.a \
	objstore/libobjstore.a lib/libtl.a $(LMDB_LIBS)

# objstore: SigV4 against AWS's published examples, the wrappers.
check_PROGRAMS += t/unit/objstore_sigv4_test
TESTS += t/unit/objstore_sigv4_test
t_unit_objstore_sigv4_test_SOURCES = t/unit/objstore_sigv4_test.c t/unit/tap.h
t_unit_objstore_sigv4_test_LDADD = objstore/libobjstore.a lib/libtl.a

# Block cache on disk: restart, damage, eviction, floor, single-flight.
check_PROGRAMS += t/unit/cache_disk_test
TESTS += t/unit/cache_disk_test
t_unit_cache_disk_test_SOURCES = t/unit/cache_disk_test.c \
	t/unit/cache_test.h t/unit/tap.h
t_unit_cache_disk_test_LDADD = cache/libcache.a meta/libmeta.a \
	objstore/libobjstore.a lib/libtl.a $(LMDB_LIBS)

check_PROGRAMS += t/unit/objstore_wrap_test
TESTS += t/unit/objstore_wrap_test
t_unit_objstore_wrap_test_SOURCES = t/unit/objstore_wrap_test.c t/unit/tap.h
t_unit_objstore_wrap_test_LDADD = objstore/libobjstore.a lib/libtl.a

# Writeback: crash with staged blocks, restart uploads them; gc races.
check_PROGRAMS += t/unit/cache_writeback_test
TESTS += t/unit/cache_writeback_test
t_unit_cache_writeback_test_SOURCES = t/unit/cache_writeback_test.c \
	t/unit/cache_test.h t/unit/tap.h t/unit/os_count.h
t_unit_cache_writeback_test_LDADD = cache/libcache.a meta/libmeta.a \
	objstore/libobjstore.a lib/libtl.a $(LMDB_LIBS)

# UNSTABLE data kept until committed: failed syncs (its own and another
# file's), puts and commits, through the fault wrapper.
check_PROGRAMS += t/unit/cache_sync_test
TESTS += t/unit/cache_sync_test
t_unit_cache_sync_test_SOURCES = t/unit/cache_sync_test.c t/unit/tap.h \
	t/unit/os_count.h
t_unit_cache_sync_test_LDADD = cache/libcache.a meta/libmeta.a \
	objstore/libobjstore.a lib/libtl.a $(LMDB_LIBS)

# Readahead and the read policy, counted at the object store.
check_PROGRAMS += t/unit/cache_readahead_test
TESTS += t/unit/cache_readahead_test
t_unit_cache_readahead_test_SOURCES = t/unit/cache_readahead_test.c \
	t/unit/cache_test.h t/unit/tap.h
t_unit_cache_readahead_test_LDADD = cache/libcache.a meta/libmeta.a \
	objstore/libobjstore.a lib/libtl.a $(LMDB_LIBS)

# cache/ has a top and a bottom: the calls between its files (nm on
# the library) go down the layers drawn at the top of cache/cache.c.
TESTS += t/unit/cache_layers_test.sh
dist_check_SCRIPTS += t/unit/cache_layers_test.sh

# os_list_info on the file store.
check_PROGRAMS += t/unit/objstore_listinfo_test
TESTS += t/unit/objstore_listinfo_test
t_unit_objstore_listinfo_test_SOURCES = t/unit/objstore_listinfo_test.c \
	t/unit/tap.h t/unit/os_count.h
t_unit_objstore_listinfo_test_LDADD = objstore/libobjstore.a lib/libtl.a
