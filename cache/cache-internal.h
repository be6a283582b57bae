/*
 * cache-internal.h - the data path's private structures, shared by
 * cache.c (files, reads, gc) and write.c (slice builders, flush).
 *
 * Locking: c->lock guards the file table and file reference counts; a
 * file's mu guards its builders.  Order: c->lock before f->mu.  space_mu
 * is a leaf (taken under f->mu to wake writers waiting for buffer space).
 */
#ifndef CACHE_INTERNAL_H
#define CACHE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "cache/cache.h"
#include "lib/tl.h"

/* A builder absorbs a write that starts at most this far past its end,
 * so NFS writes that arrive slightly out of order still make one slice. */
#define CACHE_GAP_WINDOW (8u << 20)

/* A read that finds this many data extents in one chunk queues the chunk
 * for data compaction (compact.c), as does a flush that leaves its list
 * with CACHE_COMPACT_RECORDS records (cache_opts.compact_records); at
 * most CACHE_COMPACT_QUEUE wait. */
#define CACHE_COMPACT_SEGS 32
#define CACHE_COMPACT_RECORDS 128
#define CACHE_COMPACT_QUEUE 16

/* Stored blocks older than this are stored again before a flush
 * commits them (cache_opts.restore_age_ms): `tessera gc` takes an
 * unreferenced object older than its grace period (1 hour by default,
 * tessera(1)) for a leak. */
#define CACHE_RESTORE_NS (600ULL * 1000000000ULL)

/* Whole-block buffers kept for reuse (block.c). */
#define CACHE_BFREE_MAX 4
/* Blocks a stream read through and let go, remembered so that a
 * prefetch that lost the race with the stream does not fetch them again. */
#define CACHE_DROPPED_MAX 32

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
	/* A whole-block buffer (cap is then the block's length) that holds
	 * byte lo at d = base + lo, so the extent grows either way in
	 * place; NULL when d is the allocation. */
	uint8_t *base;
};

struct bblock {
	struct bext *x; /* sorted, disjoint, not touching */
	uint32_t nx, cx;
};

struct ival {
	uint32_t s, e; /* chunk positions, [s, e) */
};

/* One slice a frozen builder commits: a run of contiguous written bytes,
 * stored from its first byte (block k of the slice holds run bytes
 * [k * block_size, (k + 1) * block_size)). */
struct run {
	uint64_t id;
	struct pack *pack; /* stored in this pack instead (write.c) */
	uint32_t pack_off; /* where its bytes start in the pack */
	uint32_t base;    /* chunk position of the slice's byte 0 (= s) */
	uint32_t s, e;    /* chunk positions recorded: [s, e) */
	uint32_t nblocks;
	uint8_t *st;      /* per block: 0 to upload, 1 in flight, 2 stored */
};

/*
 * A slice builder: buffered writes in one chunk, held in per-block
 * extents of a block-aligned layout from start, so a write a little
 * before the first one (out of order) still fits.  Slices are laid out
 * from their own first byte, not from start.  Once the first run covers
 * a whole slice block from its first byte, that byte becomes fixed
 * (base) and the run's slice blocks are sealed and uploaded in the
 * background as they fill (under id); builder blocks whose bytes are all
 * stored are freed.  At flush each run of written bytes becomes one
 * slice, the first one keeping id and its stored blocks.  bytes counts
 * what the builder allocated (buffers and bookkeeping).
 */
struct builder {
	struct builder *prev, *next; /* the file's list, oldest first */
	uint32_t chunk;
	uint32_t start;   /* chunk position of block 0: block aligned, until
			   * regrid (write.c) moves it to base */
	uint32_t nblk;
	struct bblock *blk;
	struct ival *iv;  /* written ranges, sorted, merged */
	size_t niv, civ;
	uint64_t id;      /* slice id of the first run, 0 until sealing */
	uint32_t base;    /* with id: chunk position of that slice's byte 0 */
	uint32_t nsealed; /* slice blocks 0..nsealed-1 of id are sealed */
	uint32_t sealed_end; /* base + nsealed * block size; no writes below */
	uint32_t nst0;
	uint8_t *st0;     /* per slice block of id: enum blk_state */
	int64_t bytes;    /* counted in the buffer total */
	unsigned inflight;
	int upload_err;   /* first failed upload's error since the last try */
	bool frozen;      /* taken by a flush: no more writes */
	/* Before the first store since the blocks were last (re)made:
	 * cache_sync_mark and the time (write.c, builder_mark). */
	bool marked;
	uint64_t mark, mark_ns;
	bool restore;     /* a sync failed: store every block again */
	struct run *runs; /* set when frozen */
	size_t nruns;
};

/* Small runs of one chunk stored back to back as one slice of one block
 * (write.c): their records name the pack's id at their offsets, so a
 * flush of random small writes stores a few objects, not one per run. */
struct pmember {
	struct builder *b;
	struct run *r;
};

struct pack {
	struct pack *next; /* the file's packs (cfile.packs) */
	uint64_t id;
	uint32_t size;     /* the members' bytes, back to back */
	uint8_t st;        /* 0 to upload, 1 in flight, 2 stored */
	struct pmember *m; /* n of them, in write order */
	size_t n;
};

struct cfile {
	struct cfile *hnext;
	uint64_t ino;
	unsigned refs;    /* under c->lock */
	pthread_mutex_t mu;
	pthread_cond_t cv; /* uploads done, flush done */
	struct builder *head, *tail;
	struct pack *packs; /* of frozen builders, freed with them */
	uint64_t mtime_ns; /* time of the last buffered write */
	_Atomic uint64_t bytes;
	bool flushing;    /* a flush or forget owns the frozen builders */
	uint64_t gen;     /* bumped when builders leave (committed, dropped) */
};

/* A block in memory (block.c): loading (!ready; readers of the same
 * block wait for the one fetch) or ready.  Unreferenced ready blocks sit
 * on an LRU list within the memory budget. */
struct mblk {
	struct mblk *hnext, *lprev, *lnext;
	uint64_t id;
	uint32_t idx, len;
	uint8_t *data;
	unsigned refs;
	uint32_t used;   /* bytes sequential readers copied out */
	bool ready, failed, on_lru;
	bool drop;       /* read through by a stream: free when unused */
};

/* One piece of a read: bytes [from, from+n) of block idx of slice id
 * (blen bytes long) into dst (NULL: only bring the block in). */
struct piece {
	uint64_t id;
	uint32_t idx, blen, from, n;
	uint8_t *dst;
};

struct wb;
struct dcache;
struct ra;

struct cache {
	struct meta *m;
	struct os_store *os;
	bool os_defer;    /* puts durable only after os_sync */
	bool os_local;    /* a bare file:// store: reads go to it directly */
	uint64_t limit;
	uint64_t restore_ns; /* CACHE_RESTORE_NS or cache_opts' */
	uint32_t bs;
	char volume[META_VOLNAME_MAX + 1];

	pthread_mutex_t lock;
	struct cfile **tab;
	size_t nbuckets;

	pthread_mutex_t space_mu;
	pthread_cond_t space_cv;
	_Atomic uint64_t buffered;

	struct tl_pool *up;

	/* blocks in memory and fetches in flight (block.c) */
	pthread_mutex_t bmu;
	pthread_cond_t bcv;
	struct mblk **btab;
	size_t nbtab;
	struct mblk *lru_head, *lru_tail;
	uint64_t mem_bytes, mem_cap;
	uint64_t mem_blocks;
	_Atomic uint64_t mem_hits, fetches, fetch_bytes, prefetches;
	_Atomic uint64_t compacted; /* chunks rewritten (compact.c) */
	pthread_mutex_t fmu; /* whole-block buffers to reuse (leaf lock) */
	uint8_t *freebuf[CACHE_BFREE_MAX];
	unsigned nfree;
	struct {
		uint64_t id;
		uint32_t idx;
	} dropped[CACHE_DROPPED_MAX]; /* under bmu; a ring */
	unsigned ndropped;

	struct dcache *dc; /* NULL: no disk cache */
	struct wb *wb;     /* NULL: no writeback */
	struct ra *ra;     /* readahead state */
	struct tl_pool *rd; /* parallel pieces of one read */

	bool gc_on, stop;
	uint32_t compact_records; /* a flush's trigger (cache_opts) */
	pthread_t gc;
	pthread_mutex_t gc_mu;
	pthread_cond_t gc_cv;
	/* chunks waiting for data compaction, under gc_mu */
	struct {
		uint64_t ino;
		uint32_t chunk;
	} cq[CACHE_COMPACT_QUEUE];
	unsigned ncq;
};

/* cache.c */
struct cfile *cache_file_get(struct cache *c, uint64_t ino, bool create);
void cache_file_put(struct cache *c, struct cfile *f);
struct cfile *cache_file_largest(struct cache *c);
void cache_space_release(struct cache *c, uint64_t n);
/* The pieces of bytes [off, off+len) of slice id (stored size size) that
 * land at dst (NULL: prefetch), appended to *v. */
int cache_plan_slice(struct cache *c, uint64_t id, uint32_t size,
		     uint32_t off, uint32_t len, uint8_t *dst, struct piece **v,
		     size_t *n, size_t *cap);
/* Read pieces p[0..n) into their dst, in parallel. */
int cache_read_pieces(struct cache *c, const struct piece *p, size_t n,
		      bool seq);

/* compact.c */
/* Queue a chunk for data compaction (no-op without the gc job). */
void cache_compact_want(struct cache *c, uint64_t ino, uint32_t chunk);
/* Compact the first queued chunk, if any (the gc job). */
void cache_compact_round(struct cache *c);

/* write.c */
int cache_file_flush(struct cache *c, struct cfile *f);
void cache_file_drop(struct cache *c, struct cfile *f);
/* Bytes of buffer one write may allocate beyond its length (partial
 * blocks growing, new builders): reserved with it. */
uint64_t cache_write_slack(struct cache *c);
void cache_file_write(struct cache *c, struct cfile *f, uint64_t off,
		      const uint8_t *buf, size_t len, int64_t *grown,
		      bool *chunk_full);
/* Copy the buffered bytes of [off, end) over buf (which holds the
 * committed view of that range), newest last.  With f->mu held.  (A
 * builder keeps every byte until its slices are committed.) */
void cache_file_overlay(struct cache *c, struct cfile *f, uint64_t off,
			uint64_t end, uint8_t *buf);
uint64_t cache_file_end(struct cfile *f, uint64_t *mtime_ns);

/* block.c */
void cache_blk_init(struct cache *c, uint64_t mem_cap);
void cache_blk_fini(struct cache *c);
/* Copy piece p, fetching its whole block (into memory and the disk
 * cache) when whole, or only its bytes otherwise (not cached).  seq: the
 * reader is a sequential stream, which will not come back: a block it
 * has read every byte of is freed as soon as nobody holds it, instead
 * of waiting on the LRU list (drop-behind). */
int cache_piece_read(struct cache *c, const struct piece *p, bool whole,
		     bool seq);
/* Bring p's whole block into memory and reference it (cache_piece_read
 * with whole, without the copy); cache_blk_unref lets it go. */
int cache_piece_ref(struct cache *c, const struct piece *p, bool seq,
		    struct mblk **out);
void cache_blk_unref(struct cache *c, struct mblk *b);
/* Store a block: staged with writeback, else put to the object store. */
int cache_store_block(struct cache *c, const char *key, const void *data,
		      uint32_t len);
/* Delete a block wherever it is (staging, object store). */
int cache_delete_block(struct cache *c, const char *key);
/* The sync failures so far (os_sync_mark of the store, and failed
 * cache_wb_sync): taken before blocks are stored, for cache_sync. */
uint64_t cache_sync_mark(struct cache *c);
/* Make every block stored so far durable (cache_wb_sync, os_sync):
 * -EIO also when a sync failed since mark was taken, which may have
 * lost blocks stored since (store them again, under a fresh mark). */
int cache_sync(struct cache *c, uint64_t mark);

/* diskcache.c */
uint32_t cache_crc32c(uint32_t crc, const void *buf, size_t n);
uint64_t cache_key_hash(const char *key);
/* Bytes of the file cache_blockfile_write makes of this block. */
uint64_t cache_blockfile_size(const char *key, const uint8_t *data,
			      uint32_t len);
int cache_blockfile_write(const char *path, const char *key,
			  const uint8_t *data, uint32_t len, bool sync);
int cache_blockfile_read(const char *path, const char *key, uint32_t want,
			 uint32_t off, uint32_t n, uint8_t *buf,
			 uint32_t *blen);
int dcache_open(const char *dirs, uint64_t size, unsigned floor_pct,
		struct dcache **out);
void dcache_close(struct dcache *d);
unsigned dcache_ndirs(struct dcache *d);
const char *dcache_dir(struct dcache *d, unsigned i);
unsigned dcache_dir_of(struct dcache *d, const char *key);
/* 0 with bytes [off, off+n) of the cached block key (blen bytes), or
 * -ENOENT (a damaged file is deleted and counted). */
int dcache_get(struct dcache *d, const char *key, uint32_t blen,
	       uint32_t off, uint32_t n, uint8_t *buf);
void dcache_put(struct dcache *d, const char *key, const uint8_t *data,
		uint32_t len);
/* dcache_put on the fill thread: data stays valid until done(arg) is
 * called there.  False (done not called) when too much waits already:
 * the block is not cached. */
bool dcache_fill(struct dcache *d, const char *key, const uint8_t *data,
		 uint32_t len, void (*done)(void *arg), void *arg);
/* Move a block file (a staged block after upload) into the cache. */
int dcache_adopt(struct dcache *d, const char *from, const char *key);
void dcache_stats(struct dcache *d, struct cache_stats *s);

/* writeback.c */
int cache_wb_open(struct cache *c, uint64_t max_age_ms, unsigned threads);
void cache_wb_close(struct cache *c);
int cache_wb_stage(struct cache *c, const char *key, const void *data,
		   uint32_t len);
/* Make staged files durable (fsync the staging dirs) before a commit.
 * Syncs take turns, and a failed one is counted (cache_wb_failures)
 * before the next begins: after a failed fsync the kernel may report
 * success to the next caller although the name was not written. */
int cache_wb_sync(struct cache *c);
uint64_t cache_wb_failures(struct cache *c);
/* Bytes of a staged block; -ENOENT when key is not staged. */
int cache_wb_read(struct cache *c, const char *key, uint32_t blen,
		  uint32_t off, uint32_t n, uint8_t *buf);
/* The block is released: never upload it (or delete it after). */
void cache_wb_cancel(struct cache *c, const char *key);
void cache_wb_stats(struct cache *c, struct cache_stats *s);

/* readahead.c */
void cache_ra_init(struct cache *c, uint64_t max, uint64_t budget,
		   unsigned threads);
void cache_ra_fini(struct cache *c);
/* Note a read of [off, end) of ino (size bytes); returns whether it is
 * part of a sequential stream, and queues prefetches when it is. */
bool cache_ra_note(struct cache *c, uint64_t ino, uint64_t size,
		   uint64_t off, uint64_t end);

/* cache.c */
/* The pieces of [off, end) of ino in *out (caller frees); holes are
 * zeroed in buf (when buf is not NULL). */
int cache_plan(struct cache *c, uint64_t ino, uint64_t off, uint64_t end,
	       uint8_t *buf, struct piece **out, size_t *nout);

#endif /* CACHE_INTERNAL_H */
