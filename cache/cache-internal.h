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

enum blk_state {
	BLK_FILL = 0,  /* accepting writes */
	BLK_UPLOADING, /* sealed, early upload in flight */
	BLK_STORED,    /* stored early; data freed */
	BLK_FAILED,    /* early upload failed; flush retries */
};

struct bblock {
	uint8_t *data; /* block_size bytes, zeroed at allocation */
	uint8_t state; /* enum blk_state */
};

struct ival {
	uint32_t s, e; /* chunk positions, [s, e) */
};

/* One slice a frozen builder commits: a run of contiguous written bytes. */
struct run {
	uint64_t id;
	uint32_t base;    /* chunk position of the slice's byte 0 */
	uint32_t s, e;    /* chunk positions recorded: [s, e) */
	uint32_t nblocks;
	uint8_t *st;      /* per block: 0 to upload, 1 in flight, 2 stored */
};

/*
 * A slice builder: buffered writes in one chunk, laid out in blocks from
 * a block-aligned start so a write a little before the first one (out of
 * order) still fits.  The first run of written bytes is uploaded block by
 * block as blocks fill (under id); at flush each run of written bytes
 * becomes one slice, the first one keeping id and its stored blocks.
 */
struct builder {
	struct builder *prev, *next; /* the file's list, oldest first */
	uint32_t chunk;
	uint32_t start;   /* block-aligned chunk position of block 0 */
	uint32_t nblk;
	uint32_t nsealed; /* blocks 0..nsealed-1 left BLK_FILL */
	struct bblock *blk;
	struct ival *iv;  /* written ranges, sorted, merged */
	size_t niv, civ;
	uint64_t id;      /* slice id of the first run, 0 until needed */
	uint64_t bytes;   /* counted in the buffer total */
	unsigned inflight;
	bool frozen;      /* taken by a flush: no more writes */
	struct run *runs; /* set when frozen */
	size_t nruns;
};

struct cfile {
	struct cfile *hnext;
	uint64_t ino;
	unsigned refs;    /* under c->lock */
	pthread_mutex_t mu;
	pthread_cond_t cv; /* uploads done, flush done */
	struct builder *head, *tail;
	uint64_t mtime_ns; /* time of the last buffered write */
	_Atomic uint64_t bytes;
	bool flushing;    /* a flush or forget owns the frozen builders */
};

struct cache {
	struct meta *m;
	struct os_store *os;
	uint64_t limit;
	uint32_t bs;
	char volume[META_VOLNAME_MAX + 1];

	pthread_mutex_t lock;
	struct cfile **tab;
	size_t nbuckets;

	pthread_mutex_t space_mu;
	pthread_cond_t space_cv;
	_Atomic uint64_t buffered;

	struct tl_pool *up;

	bool gc_on, stop;
	pthread_t gc;
	pthread_mutex_t gc_mu;
	pthread_cond_t gc_cv;
};

/* cache.c */
struct cfile *cache_file_get(struct cache *c, uint64_t ino, bool create);
void cache_file_put(struct cache *c, struct cfile *f);
struct cfile *cache_file_largest(struct cache *c);
void cache_space_release(struct cache *c, uint64_t n);

/* write.c */
int cache_file_flush(struct cache *c, struct cfile *f);
void cache_file_drop(struct cache *c, struct cfile *f);
void cache_file_write(struct cache *c, struct cfile *f, uint64_t off,
		      const uint8_t *buf, size_t len, uint64_t *fresh,
		      bool *chunk_full);
bool cache_file_overlaps(struct cfile *f, uint64_t off, uint64_t end);
uint64_t cache_file_end(struct cfile *f, uint64_t *mtime_ns);

#endif /* CACHE_INTERNAL_H */
