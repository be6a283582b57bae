# cache: the data path (slice writers and readers, the deletion job, the
# memory and disk block caches, writeback staging, readahead).
noinst_LIBRARIES += cache/libcache.a
cache_libcache_a_SOURCES = cache/cache.h cache/cache-internal.h \
	cache/cache.c cache/blockkey.c cache/write.c cache/view.c cache/compact.c \
	cache/block.c cache/diskcache.c cache/writeback.c cache/readahead.c \
	cache/volume.c
