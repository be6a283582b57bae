/*
 * readahead-internal.h - sequential detection per file and prefetch
 * (readahead.c).
 *
 * Below: plan.c (what to prefetch), blocks.c (the prefetches),
 * compact.c (fragmented chunks a prefetch plan finds are queued, as a
 * read's are).  Above: cache.c.  Made by cache_ra_open, freed by
 * cache_ra_close; every call is thread safe.
 */
#ifndef CACHE_READAHEAD_INTERNAL_H
#define CACHE_READAHEAD_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

struct cache_compactor;
struct cache_planner;
struct cache_ra;
struct cache_blocks;

/* A stream's window doubles from a block up to max bytes (0: no
 * prefetch); prefetches in flight stay within budget bytes; threads
 * prefetch.  pl, st and cp are borrowed. */
struct cache_ra *cache_ra_open(struct cache_planner *pl,
			       struct cache_blocks *st,
			       struct cache_compactor *cp, uint32_t block_size,
			       uint64_t max, uint64_t budget, unsigned threads);
/* Wait for the prefetches queued, free (NULL: nothing). */
void cache_ra_close(struct cache_ra *ra);
/* Note a read of [off, end) of ino (size bytes); returns whether it is
 * part of a sequential stream, and queues prefetches when it is. */
bool cache_ra_note(struct cache_ra *ra, uint64_t ino, uint64_t size,
		   uint64_t off, uint64_t end);
/* Blocks prefetched (or hinted) since open. */
uint64_t cache_ra_prefetches(struct cache_ra *ra);

#endif /* CACHE_READAHEAD_INTERNAL_H */
