/*
 * write-internal.h - the write builders (write.c): a file's buffered
 * writes, held per chunk in slice builders.
 *
 * Below: files.c (struct cfile, the buffer total), blocks.c (sync marks),
 * bufpool.c, the metadata (slice ids).  Above: flush.c, which freezes,
 * uploads, commits and frees builders, and cache.c.  Made by
 * cache_writer_open, freed by cache_writer_close.  The calls on a file
 * take its mu themselves where they say nothing else; a builder is
 * f->mu's.
 */
#ifndef CACHE_WRITE_INTERNAL_H
#define CACHE_WRITE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/files-internal.h"
#include "meta/meta.h"

/* A builder absorbs a write that starts at most this far past its end,
 * so NFS writes that arrive slightly out of order still make one slice. */
#define CACHE_GAP_WINDOW (8u << 20)

struct cache_bufpool;
struct cache_blocks;
struct cache_writer;
struct run;

/* State of a sealed block of a builder's first slice (st0). */
enum blk_state {
	BLK_FILL = 0,  /* not sealed */
	BLK_UPLOADING, /* sealed, early upload in flight */
	BLK_STORED,    /* stored early */
	BLK_FAILED,    /* early upload failed; flush retries */
};

/* Written bytes [lo, hi) of a builder block, in a buffer holding block
 * bytes [lo, lo + cap): it grows (geometrically, up to the block's end)
 * as writes extend it, so memory follows what was written. */
struct bext {
	uint32_t lo, hi, cap;
	uint8_t *d;
	/* A whole-block buffer (cap is then the block's length, from the
	 * pool) that holds byte lo at d = base + lo, so the extent grows
	 * either way in place; NULL when d is the allocation. */
	uint8_t *base;
};

struct bblock {
	struct bext *x; /* sorted, disjoint, not touching */
	uint32_t nx, cx;
};

struct ival {
	uint32_t s, e; /* chunk positions, [s, e) */
};

/*
 * A slice builder: buffered writes in one chunk, held in per-block
 * extents of a block-aligned layout from start, so a write a little
 * before the first one (out of order) still fits.  Slices are laid out
 * from their own first byte, not from start.  Once the first run covers
 * a whole slice block from its first byte, that byte becomes fixed
 * (base) and the run's slice blocks are sealed and uploaded in the
 * background as they fill (under id).  At flush each run of written
 * bytes becomes one slice, the first one keeping id and its stored
 * blocks.  bytes counts what the builder allocated (buffers and
 * bookkeeping).  The fields from frozen on are flush.c's.
 */
struct builder {
	struct builder *prev, *next; /* the file's list, oldest first */
	uint32_t chunk;
	uint32_t start; /* chunk position of block 0: block aligned, until
			   * regrid (write.c) moves it to base */
	uint32_t nblk;
	struct bblock *blk;
	struct ival *iv; /* written ranges, sorted, merged */
	size_t niv, civ;
	uint64_t id;      /* slice id of the first run, 0 until sealing */
	uint32_t base;    /* with id: chunk position of that slice's byte 0 */
	uint32_t nsealed; /* slice blocks 0..nsealed-1 of id are sealed */
	uint32_t sealed_end; /* base + nsealed * block size; no writes below */
	uint32_t nst0;
	uint8_t *st0;      /* per slice block of id: enum blk_state */
	int64_t bytes;     /* counted in the buffer total */
	unsigned inflight; /* uploads of its blocks not reported yet */
	/* flush.c */
	bool frozen;    /* taken by a flush: no more writes */
	int upload_err; /* first failed upload's error since the last try */
	/* Before the first store since the blocks were last (re)made:
	 * cache_blocks_mark and the time (cache_builder_mark). */
	bool marked;
	uint64_t mark, mark_ns;
	bool restore;     /* a sync failed: store every block again */
	struct run *runs; /* its slices, once frozen */
	size_t nruns;
};

/* A block a write sealed: block idx of b's first slice, counted in
 * b->inflight until its upload reports (flush.c). */
struct cache_sealed {
	struct builder *b;
	uint32_t idx;
};

struct cache_sealv {
	struct cache_sealed *v;
	size_t n, cap;
};

void cache_sealv_free(struct cache_sealv *v);

/* Builders of block_size bytes per block, counted in ft's total; m, st
 * and bp are borrowed. */
struct cache_writer *cache_writer_open(struct meta *m, struct cache_files *ft,
				       struct cache_blocks *st,
				       struct cache_bufpool *bp,
				       uint32_t block_size);
void cache_writer_close(struct cache_writer *wr);
/* Bytes of buffer one write may allocate beyond its length (partial
 * blocks growing, new builders): reserved with it. */
uint64_t cache_writer_slack(const struct cache_writer *wr);

/* Buffer [off, off+len) of f.  *grown receives the change in bytes
 * allocated (the caller reserved len plus the slack and gives the rest
 * back); *chunk_full tells that a builder reached the end of its chunk;
 * blocks the write sealed are appended to *sealed, for the caller to
 * hand to flush.c (cache_flush_upload). */
void cache_file_write(struct cache_writer *wr, struct cfile *f, uint64_t off,
		      const uint8_t *buf, size_t len, int64_t *grown,
		      bool *chunk_full, struct cache_sealv *sealed);
/* Copy the buffered bytes of [off, end) over buf (which holds the
 * committed view of that range), newest last.  With f->mu held.  (A
 * builder keeps every byte until its slices are committed.) */
void cache_file_overlay(struct cache_writer *wr, struct cfile *f, uint64_t off,
			uint64_t end, uint8_t *buf);
/* End of the buffered data (0 if none) and the last write's time: O(1),
 * kept by the writes and by cache_file_reend. */
uint64_t cache_file_end(struct cfile *f, uint64_t *mtime_ns);
/* Recompute f->end after builders left the list (f->mu held). */
void cache_file_reend(struct cfile *f);

/* ---- for flush.c (f->mu held unless said) ----------------------------- */

/* Copy b's bytes of chunk range [p, q) that it holds into dst (dst[0] is
 * position p); what it does not hold is left alone. */
void cache_builder_copy(struct cache_writer *wr, struct builder *b, uint32_t p,
			uint32_t q, uint8_t *dst);
/* The bytes of chunk range [p, p + n), all written: a pointer into the
 * extent holding them all when there is one and it cannot move (the
 * builder is frozen or the block is sealed), else a copy in *tmp (the
 * caller frees it). */
const uint8_t *cache_builder_bytes(struct cache_writer *wr, struct builder *b,
				   uint32_t p, uint32_t n, uint8_t **tmp);
/* Before b's first store (since its blocks were last made): which sync
 * failures its blocks may be lost to, and how old they are. */
void cache_builder_mark(struct cache_writer *wr, struct builder *b);
/* Free b (detached from f; without f->mu): its buffers and its share of
 * the buffer total (its runs are flush.c's, freed before). */
void cache_builder_free(struct cache_writer *wr, struct cfile *f,
			struct builder *b);

#endif /* CACHE_WRITE_INTERNAL_H */
