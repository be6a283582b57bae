/*
 * plan-internal.h - read planning (plan.c): which block bytes make up a
 * range of a file, and reading them in parallel.
 *
 * Below: blocks.c (the reads), view.c, the metadata (slice records).
 * Above: compact.c, readahead.c, cache.c.  Made by cache_planner_open,
 * freed by cache_planner_close; every call is thread safe.
 */
#ifndef CACHE_PLAN_INTERNAL_H
#define CACHE_PLAN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/blocks-internal.h"
#include "meta/meta.h"

/* A chunk whose view has this many data extents is fragmented: a read
 * that finds one reports it for data compaction (compact.c). */
#define CACHE_COMPACT_SEGS 32

struct cache_planner;

/* The pieces of a range, in order, holes included (id 0), each with
 * its place in the reader's buffer (at, from the range's start); and
 * the fragmented chunks the range touches.  Zero-initialise; free with
 * cache_plan_free. */
struct cache_plan {
	struct cache_piece *p;
	size_t n, cap;
	uint32_t *frag;
	size_t nfrag;
};

/* Plan with m's slice records and read through st (both borrowed),
 * blocks of block_size bytes, threads readers for the pieces of one
 * read. */
struct cache_planner *cache_planner_open(struct meta *m,
					 struct cache_blocks *st,
					 uint32_t block_size, unsigned threads);
void cache_planner_close(struct cache_planner *pl);

/* Append the pieces of committed bytes [off, end) of ino to *out. */
int cache_plan_range(struct cache_planner *pl, uint64_t ino, uint64_t off,
		     uint64_t end, struct cache_plan *out);
/* Append the pieces of bytes [off, off+len) of slice id (stored size
 * size), to land at at.  -EIO for a range past the slice's end. */
int cache_plan_slice(struct cache_planner *pl, uint64_t id, uint32_t size,
		     uint32_t off, uint32_t len, uint64_t at,
		     struct cache_plan *out);
void cache_plan_free(struct cache_plan *pl);

/* Whether piece p is fetched whole (see plan.c) by a reader that is a
 * sequential stream (seq) or not. */
bool cache_plan_whole(const struct cache_planner *pl,
		      const struct cache_piece *p, bool seq);
/* Read the planned pieces into buf (holes as zeros), in parallel. */
int cache_plan_read(struct cache_planner *pl, const struct cache_plan *plan,
		    uint8_t *buf, bool seq);

#endif /* CACHE_PLAN_INTERNAL_H */
