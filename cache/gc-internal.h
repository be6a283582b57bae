/*
 * gc-internal.h - the background job (gc.c): deletes the objects of
 * released slices, runs compaction rounds, trims malloc's arenas.
 *
 * Below: compact.c (its rounds), blocks.c (the deletions), files.c (a
 * timed wait), the metadata (the deletion queue).  Above: cache.c.
 */
#ifndef CACHE_GC_INTERNAL_H
#define CACHE_GC_INTERNAL_H

#include "meta/meta.h"

struct cache_compactor;
struct cache_gc;
struct cache_blocks;

/* Start the job's thread; m, st and cp are borrowed until
 * cache_gc_stop.  -EAGAIN when the thread cannot start. */
struct cache_opts;

/* Start the job (gate, rates: cache_opts). */
int cache_gc_start(struct meta *m, struct cache_blocks *st,
		   struct cache_compactor *cp, uint32_t block_size,
		   const struct cache_opts *o, struct cache_gc **out);
/* New rates (SIGHUP), applied at once: a wait the old rate set ends. */
void cache_gc_set_rates(struct cache_gc *gc, uint64_t delete_rate,
			uint64_t txn_rate);
void cache_gc_rates(struct cache_gc *gc, uint64_t *delete_rate,
		    uint64_t *txn_rate);
/* Stop the job (after its current round) and free it (NULL: nothing). */
void cache_gc_stop(struct cache_gc *gc);

#endif /* CACHE_GC_INTERNAL_H */
