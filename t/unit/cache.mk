# Unit tests of objstore and cache.  A test is a name in the list (built
# and linked like every test program, t/local.mk):
#   objstore_file_test      the file:// store
#   objstore_sigv4_test     SigV4 against AWS's published examples
#   objstore_wrap_test      the wrappers
#   objstore_listinfo_test  os_list_info on the file store
#   cache_blockkey_test     block object names: made and parsed back,
#                           nothing else parsed
#   cache_view_test         the block view
#   cache_data_test         end to end on a real LMDB volume and a
#                           file:// store
#   cache_disk_test         block cache on disk: restart, damage,
#                           eviction, floor, single-flight
#   cache_writeback_test    writeback: crash with staged blocks, restart
#                           uploads them; gc races
#   cache_sync_test         UNSTABLE data kept until committed: failed
#                           syncs (its own and another file's), puts and
#                           commits, through the fault wrapper
#   cache_readahead_test    readahead and the read policy, counted at the
#                           object store
CACHE_UNIT_TESTS = t/unit/objstore_file_test t/unit/objstore_sigv4_test \
	t/unit/objstore_wrap_test t/unit/objstore_listinfo_test \
	t/unit/cache_blockkey_test t/unit/cache_view_test \
	t/unit/cache_data_test t/unit/cache_disk_test \
	t/unit/cache_writeback_test t/unit/cache_sync_test \
	t/unit/cache_readahead_test
check_PROGRAMS += $(CACHE_UNIT_TESTS)
TESTS += $(CACHE_UNIT_TESTS)
EXTRA_DIST += t/unit/tap.h t/unit/tproc.h t/unit/os_count.h \
	t/unit/cache_test.h

# cache/ has a top and a bottom: the calls between its files (nm on
# the library) go down the layers drawn at the top of cache/cache.c.
TESTS += t/unit/cache_layers_test.sh
dist_check_SCRIPTS += t/unit/cache_layers_test.sh
