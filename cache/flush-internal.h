/*
 * flush-internal.h - flush, packing and upload (flush.c): a file's
 * buffered writes stored in the block store and committed to metadata.
 *
 * Below: write.c (the builders it freezes, reads and frees), files.c,
 * compact.c (it reports chunks with long record lists), blocks.c, the
 * metadata.  Above: cache.c.  Made by cache_flusher_open, freed by
 * cache_flusher_close once every file is flushed or dropped.
 */
#ifndef CACHE_FLUSH_INTERNAL_H
#define CACHE_FLUSH_INTERNAL_H

#include <stdint.h>

#include "cache/files-internal.h"
#include "cache/write-internal.h"
#include "meta/meta.h"

struct cache_compactor;
struct cache_flusher;
struct cache_blocks;

/* Upload on threads workers; everything but the numbers is borrowed.
 * restore_age_ms: see cache_opts (0: 10 minutes); compact_records: a
 * commit leaving a chunk with this many records queues it for
 * compaction. */
struct cache_flusher *
cache_flusher_open(struct meta *m, struct cache_files *ft,
		   struct cache_writer *wr, struct cache_blocks *st,
		   struct cache_compactor *cp, uint32_t block_size,
		   unsigned threads, uint64_t restore_age_ms,
		   uint32_t compact_records, uint32_t inline_max);
/* Wait for the uploads in flight, free. */
void cache_flusher_close(struct cache_flusher *fl);

/* Upload the blocks a write sealed (cache_file_write), in the
 * background; without f->mu. */
void cache_flush_upload(struct cache_flusher *fl, struct cfile *f,
			const struct cache_sealv *sealed);
/* Store and commit every byte f has buffered: 0 only once all of it is
 * committed; otherwise it stays buffered for the next flush (see
 * flush.c).  Without f->mu. */
int cache_file_flush(struct cache_flusher *fl, struct cfile *f);
/* The same, waiting at most wait_ms (0: as long as it takes): the flush
 * runs on the flusher's own threads and goes on after the wait ends, so
 * a store that does not answer holds no caller.  -EAGAIN when the wait
 * ended first (the data stays buffered; the flush stores and commits
 * it once the store answers).  Without f->mu. */
int cache_file_flush_wait(struct cache_flusher *fl, struct cfile *f,
			  uint64_t wait_ms);
/* Drop f's buffered data and delete what of it was stored (the file was
 * removed).  Without f->mu. */
void cache_file_drop(struct cache_flusher *fl, struct cfile *f);
/* The same, waiting at most wait_ms (0: as long as it takes): a drop
 * waits for a flush that has the builders, which may wait for a store
 * that does not answer; the drop then happens when that flush ends
 * (the file is gone: its data is dropped, never committed).  Without
 * f->mu. */
void cache_file_drop_wait(struct cache_flusher *fl, struct cfile *f,
			  uint64_t wait_ms);

#endif /* CACHE_FLUSH_INTERNAL_H */
