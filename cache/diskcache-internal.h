/*
 * diskcache-internal.h - the block cache on local disk (diskcache.c).
 *
 * Below: blockfile.c.  Above: writeback.c, blocks.c.  A struct cache_disk
 * is made by cache_disk_open and freed by cache_disk_close; every call is
 * thread safe.  The cache is best effort: a put that cannot be made is
 * skipped, a damaged file is a miss.
 */
#ifndef CACHE_DISKCACHE_INTERNAL_H
#define CACHE_DISKCACHE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

struct cache_disk;
struct cache_stats;

/* Open the cache over dirs ("/a:/b"; NULL or "": none, *out NULL and 0),
 * size bytes of cached blocks in all (0: 10 GiB), keeping floor_pct
 * percent of each dir's file system free.  Makes <dir>/blocks/XX and
 * <dir>/staging, and indexes the cached files found. */
int cache_disk_open(const char *dirs, uint64_t size, unsigned floor_pct,
		    struct cache_disk **out);
/* Write the fills that wait, then free (NULL: nothing). */
void cache_disk_close(struct cache_disk *d);

/* The cache directories (borrowed for the cache's life), and the one
 * a key belongs to (writeback stages a block there, so that it moves
 * into the cache by a rename). */
unsigned cache_disk_ndirs(struct cache_disk *d);
const char *cache_disk_dir(struct cache_disk *d, unsigned i);
unsigned cache_disk_dir_of(struct cache_disk *d, const char *key);

/* 0 with bytes [off, off+n) of the cached block key (blen bytes) in buf,
 * or -ENOENT (a damaged file is deleted and counted). */
int cache_disk_get(struct cache_disk *d, const char *key, uint32_t blen,
		   uint32_t off, uint32_t n, uint8_t *buf);
/* Cache a block on the fill thread: data stays valid until done(arg) is
 * called there (the caller's completion: it lets the block go).  False
 * (done not called) when too much waits already: the block is not
 * cached. */
bool cache_disk_fill(struct cache_disk *d, const char *key, const uint8_t *data,
		     uint32_t len, void (*done)(void *arg), void *arg);
/* Move a block file (a staged block after upload) into the cache. */
int cache_disk_adopt(struct cache_disk *d, const char *from, const char *key);
/* The disk_* fields of *s. */
void cache_disk_stats(struct cache_disk *d, struct cache_stats *s);

#endif /* CACHE_DISKCACHE_INTERNAL_H */
