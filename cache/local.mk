# cache: the data path (slice writers and readers, the deletion job, the
# memory and disk block caches, writeback staging, readahead), and a
# volume's claim on its object store.  Its layers are drawn at the top
# of cache/cache.c; t/unit/cache_layers_test.sh checks them.
noinst_LIBRARIES += cache/libcache.a
cache_libcache_a_SOURCES = cache/cache.h cache/cache.c \
	cache/volume.c \
	cache/gc.c cache/gc-internal.h \
	cache/readahead.c cache/readahead-internal.h \
	cache/flush.c cache/flush-internal.h \
	cache/compact.c cache/compact-internal.h \
	cache/write.c cache/write-internal.h \
	cache/files.c cache/files-internal.h \
	cache/plan.c cache/plan-internal.h \
	cache/blocks.c cache/blocks-internal.h \
	cache/writeback.c cache/writeback-internal.h \
	cache/diskcache.c cache/diskcache-internal.h \
	cache/blockfile.c cache/blockfile-internal.h \
	cache/bufpool.c cache/bufpool-internal.h \
	cache/blockkey.c cache/view.c
