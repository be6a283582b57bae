/*
 * blocks-internal.h - the block store (blocks.c): where the data path's
 * blocks are stored, read, synced and deleted, by slice id and block
 * index.  It makes every object key of the data path (blockkey.c).
 *
 * Below: writeback.c and diskcache.c (which the store opens and closes
 * with itself), bufpool.c, blockkey.c, the object store.  Above: plan.c
 * (reads), write.c and flush.c (stores), compact.c, readahead.c, gc.c,
 * cache.c.  Made by cache_blocks_open, freed by cache_blocks_close; every
 * call is thread safe.
 */
#ifndef CACHE_BLOCKS_INTERNAL_H
#define CACHE_BLOCKS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "meta/meta.h"
#include "objstore/objstore.h"

struct cache_bufpool;
struct cache_mblk;
struct cache_opts;
struct cache_stats;
struct cache_blocks;

/* Bytes [from, from + n) of block idx of slice id, which is blen bytes
 * long (id 0: a hole, zeros, never read from the store).  at is where
 * the bytes go in the reader's buffer (plan.c); the store ignores it. */
struct cache_piece {
	uint64_t id;
	uint32_t idx, blen, from, n;
	uint64_t at;
};

/* Blocks of volume (block_size bytes) in os, borrowed with bp for the
 * store's life.  From o: the disk cache (cache_dirs, cache_size,
 * cache_free_floor), writeback (writeback, writeback_max_age_ms; its
 * uploads on wb_threads workers) and the memory budget
 * (readahead_budget). */
int cache_blocks_open(struct os_store *os, const struct cache_opts *o,
		      const char *volume, uint32_t block_size,
		      unsigned wb_threads, struct cache_bufpool *bp,
		      struct cache_blocks **out);
/* Inline slices (meta.h, META_SLICE_INLINE) are read from m, borrowed
 * for the store's life: their one block is the slice, in metadata. */
void cache_blocks_set_meta(struct cache_blocks *st, struct meta *m);
/* Stop writeback (staged blocks stay for the next start), write the
 * disk-cache fills that wait, free (NULL: nothing). */
void cache_blocks_close(struct cache_blocks *st);
/* Whether objects are local files read in place (os_local, and no disk
 * cache): the readers then take no block into memory, and lend object
 * files (cache_blocks_open_range) or read their bytes directly. */
bool cache_blocks_local(const struct cache_blocks *st);

/* The object key of a block (for messages). */
void cache_blocks_key(const struct cache_blocks *st, char *key, size_t n,
		      uint64_t id, uint32_t idx, uint32_t len);

/* ---- writes ----------------------------------------------------------- */

/* Store block idx of slice id: staged with writeback, else put to the
 * object store.  data is borrowed for the call. */
int cache_blocks_put(struct cache_blocks *st, uint64_t id, uint32_t idx,
		     const void *data, uint32_t len);
/* Delete a block wherever it is (staging, object store). */
int cache_blocks_delete(struct cache_blocks *st, uint64_t id, uint32_t idx,
			uint32_t len);
/* Delete every block of a slice of size bytes; 0 when all are gone. */
int cache_blocks_delete_slice(struct cache_blocks *st, uint64_t id,
			      uint32_t size);
/* The sync failures so far (os_sync_mark of the store, and failed
 * writeback syncs): taken before blocks are stored, for cache_blocks_sync. */
uint64_t cache_blocks_mark(struct cache_blocks *st);
/* Make every block stored so far durable by name (writeback's fsync,
 * os_sync): -EIO also when a sync failed since mark was taken, which may
 * have lost blocks stored since (store them again, under a fresh mark). */
int cache_blocks_sync(struct cache_blocks *st, uint64_t mark);

/* ---- reads ------------------------------------------------------------ */

/* Copy piece p (id != 0) to dst, fetching its whole block (into memory
 * and the disk cache) when whole, or only its bytes otherwise (not
 * cached).  dst NULL: a prefetch (whole; -EALREADY when a stream has
 * read the block and let it go already).  seq: the reader is a
 * sequential stream, which will not come back: a block it has read
 * every byte of is freed as soon as nobody holds it, instead of waiting
 * on the LRU list (drop-behind). */
int cache_blocks_read(struct cache_blocks *st, const struct cache_piece *p,
		      uint8_t *dst, bool whole, bool seq);
/* Bring p's whole block into memory and reference it (*out): *data is
 * p's first byte there, valid until cache_blocks_unref(*out), which any
 * thread may call. */
int cache_blocks_ref(struct cache_blocks *st, const struct cache_piece *p,
		     bool seq, struct cache_mblk **out, const uint8_t **data);
void cache_blocks_unref(struct cache_blocks *st, struct cache_mblk *b);
/* A local store: *fd (the caller closes it) holds p's bytes at offset
 * p->from, in the page cache (os_open_range; -EAGAIN when they are not
 * all cached). */
int cache_blocks_open_range(struct cache_blocks *st,
			    const struct cache_piece *p, int *fd);
/* A local store: ask the kernel to read p's bytes ahead (a hint). */
int cache_blocks_advise(struct cache_blocks *st, const struct cache_piece *p);

/* The staged_*, disk_*, mem_*, fetches and fetch_bytes fields of *out. */
void cache_blocks_stats(struct cache_blocks *st, struct cache_stats *out);

#endif /* CACHE_BLOCKS_INTERNAL_H */
