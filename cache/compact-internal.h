/*
 * compact-internal.h - data compaction (compact.c): a fragmented
 * chunk's small extents rewritten as one fresh slice, and the queue of
 * chunks that want it.
 *
 * Below: plan.c (it reads the old extents through the planner),
 * files.c (whether a file has buffered writes), blocks.c, bufpool.c,
 * view.c, the metadata.  Above: flush.c and readahead.c (they queue
 * chunks), gc.c (its rounds), cache.c.  Made by cache_compactor_open, freed by
 * cache_compactor_close; every call is thread safe.
 */
#ifndef CACHE_COMPACT_INTERNAL_H
#define CACHE_COMPACT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "meta/meta.h"

/* A flush that leaves a chunk's record list this long queues the chunk
 * (the default of cache_opts.compact_records). */
#define CACHE_COMPACT_RECORDS 128

struct cache_bufpool;
struct cache_compactor;
struct cache_files;
struct cache_planner;
struct cache_blocks;

/* Everything but the numbers is borrowed.  Without on (no background
 * job runs rounds) nothing is queued. */
struct cache_compactor *
cache_compactor_open(struct meta *m, struct cache_files *ft,
		     struct cache_planner *pl, struct cache_blocks *st,
		     struct cache_bufpool *bp, uint32_t block_size, bool on);
void cache_compactor_close(struct cache_compactor *cp);

/* Queue a chunk (at most 16 wait, each once). */
void cache_compact_want(struct cache_compactor *cp, uint64_t ino,
			uint32_t chunk);
/* Compact the first queued chunk, if any (the background job). */
void cache_compact_round(struct cache_compactor *cp);
/* Empty the queue (this gateway does not run the job now). */
void cache_compact_forget(struct cache_compactor *cp);
/* Compact one chunk now: as cache_compact (cache.h). */
int cache_compact_chunk(struct cache_compactor *cp, uint64_t ino,
			uint32_t chunk);
/* Chunks rewritten since open. */
uint64_t cache_compacted(struct cache_compactor *cp);
/* Chunks queued now (at most COMPACT_QUEUE). */
unsigned cache_compact_queued(struct cache_compactor *cp);

#endif /* CACHE_COMPACT_INTERNAL_H */
