/*
 * bufpool-internal.h - whole-block buffers, and the few kept for reuse
 * (bufpool.c).  One pool serves the whole data path: the write
 * builders' whole-block buffers (write.c), the blocks in memory that
 * reads fetch (blocks.c) and the block compaction fills (compact.c).
 * Calls nothing else in cache/.
 */
#ifndef CACHE_BUFPOOL_INTERNAL_H
#define CACHE_BUFPOOL_INTERNAL_H

#include <stdint.h>

/* Whole-block buffers kept for reuse, outside every memory budget (the
 * gateway's fixed overhead, bench/README). */
#define CACHE_BUFPOOL_KEEP 4

struct cache_bufpool;

/* A pool of buffers of block_size bytes.  Free with
 * cache_bufpool_close, once every buffer it gave is back. */
struct cache_bufpool *cache_bufpool_open(uint32_t block_size);
void cache_bufpool_close(struct cache_bufpool *bp);

/* A page-aligned buffer of len bytes (not zeroed; never NULL): a kept
 * one when len is the block size and one is kept, else a fresh one (2
 * MiB and more: mapped on a 2 MiB boundary, huge pages asked for).
 * Give it back with cache_buf_put and the same len. */
uint8_t *cache_buf_get(struct cache_bufpool *bp, uint32_t len);
/* Keep d for reuse when it is a block and fewer than CACHE_BUFPOOL_KEEP
 * are kept, else free it (NULL: nothing).  Any thread. */
void cache_buf_put(struct cache_bufpool *bp, uint8_t *d, uint32_t len);

#endif /* CACHE_BUFPOOL_INTERNAL_H */
