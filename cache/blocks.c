/*
 * blocks.c - the block store: blocks on their way to and from the object
 * store, through memory, writeback staging and the disk cache, with one
 * fetch per missing block (single-flight).  Every object-store call of
 * the data path is made here or below (writeback.c).
 *
 * Writes: a block is staged with writeback (writeback.c), else put to
 * the object store; cache_blocks_sync makes every block stored so far
 * durable by name (fsync of the staging dirs, os_sync of a deferring
 * store) and tells whether a sync failed since a mark was taken.
 *
 * Read policy (the reader above chooses "whole"):
 *   - whole: the block is brought into memory as a whole, looking in this
 *     order: memory, writeback staging, disk cache, object store (a GET
 *     of the whole object, then written to the disk cache).  Concurrent
 *     readers of a block that is loading wait for that one load: the
 *     table of memory blocks doubles as the table of fetches in flight.
 *     Sequential reads, reads covering most of a block and prefetches
 *     are whole.
 *   - otherwise (a small read at a random offset): the bytes are served
 *     from memory, staging or the disk cache when the block is there, else
 *     by a range GET of exactly those bytes, which is not cached: a 4 KiB
 *     random read costs a 4 KiB GET, not 4 MiB.
 * Unreferenced blocks stay in memory on an LRU list within mem_cap bytes.
 * Blocks written through this gateway reach the disk cache only by way of
 * writeback (a staged block moves into the cache once uploaded); without
 * writeback the first read of a written block fetches it.  A deleted
 * block's cache file is left for eviction (object keys are never reused).
 * Block buffers come from the pool (bufpool.c): a stream's blocks are
 * dropped as soon as it has read them (see cache_blocks_ref), and their
 * buffers go to the next fetch.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/bufpool-internal.h"
#include "cache/cache.h"
#include "cache/diskcache-internal.h"
#include "cache/blocks-internal.h"
#include "cache/writeback-internal.h"
#include "lib/tl.h"

/* Blocks a stream read through and let go, remembered so that a
 * prefetch that lost the race with the stream does not fetch them again. */
#define DROPPED_MAX 32

/* A block in memory: loading (!ready; readers of the same block wait for
 * the one fetch) or ready.  Unreferenced ready blocks sit on an LRU list
 * within the memory budget. */
struct cache_mblk {
	struct tl_hnode hn; /* in the table, by bhash(id, idx) */
	struct cache_mblk *lprev, *lnext;
	struct cache_mblk *gnext; /* out of the table, on a list to free */
	uint64_t id;
	uint32_t idx, len;
	uint8_t *data;
	unsigned refs;
	uint32_t used; /* bytes sequential readers copied out */
	bool ready, failed, on_lru;
	bool drop; /* read through by a stream: free when unused */
};

struct cache_blocks {
	struct os_store *os;
	bool os_defer; /* puts durable only after os_sync */
	bool os_local; /* a local store read in place (blocks-internal.h) */
	uint32_t bs;
	char volume[META_VOLNAME_MAX + 1];
	struct cache_bufpool *bp; /* borrowed */
	struct cache_disk *dc;    /* NULL: no disk cache */
	struct cache_wb *wb;      /* NULL: no writeback */
	struct meta *m;           /* inline slices' bytes (borrowed) */

	/* blocks in memory and fetches in flight */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct tl_htab tab;
	struct cache_mblk *lru_head, *lru_tail;
	uint64_t mem_bytes, mem_cap, mem_blocks;
	struct {
		uint64_t id;
		uint32_t idx;
	} dropped[DROPPED_MAX]; /* under mu; a ring */
	unsigned ndropped;
	_Atomic uint64_t mem_hits, fetches, fetch_bytes;
};

/* ---- open and close --------------------------------------------------- */

int
cache_blocks_open(struct os_store *os, const struct cache_opts *o,
		  const char *volume, uint32_t block_size, unsigned wb_threads,
		  struct cache_bufpool *bp, struct cache_blocks **out)
{
	struct cache_blocks *st = tl_calloc(1, sizeof(*st));
	int r;

	*out = NULL;
	st->os = os;
	/* A flush stores many blocks, then commits once: their directory
	 * syncs can wait for one os_sync before the commit. */
	st->os_defer = os_defer_sync(os) == 0;
	/* With a disk cache the operator asked for copies: keep them.
	 * Injected latency makes a store remote-like, and zstd or crypt
	 * read whole objects for any range: then blocks are worth holding
	 * in memory again (os_local says which). */
	st->os_local = os_local(os) &&
		       (o->cache_dirs == NULL || o->cache_dirs[0] == '\0');
	st->bs = block_size;
	snprintf(st->volume, sizeof(st->volume), "%s", volume);
	st->bp = bp;
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->cv, NULL);
	st->mem_cap = o->readahead_budget;
	r = cache_disk_open(o->cache_dirs, o->cache_size, o->cache_free_floor,
			    &st->dc);
	if (r == 0 && o->writeback)
		r = cache_wb_open(os, st->os_defer, st->dc,
				  o->writeback_max_age_ms, wb_threads, &st->wb);
	if (r < 0) {
		cache_blocks_close(st);
		return r;
	}
	*out = st;
	return 0;
}

void
cache_blocks_set_meta(struct cache_blocks *st, struct meta *m)
{
	st->m = m;
}

static void
mblk_free(struct cache_blocks *st, struct cache_mblk *b)
{
	cache_buf_put(st->bp, b->data, b->len);
	free(b);
}

void
cache_blocks_close(struct cache_blocks *st)
{
	struct tl_hnode *n, *next;

	if (st == NULL)
		return;
	cache_wb_close(st->wb);
	/* Before the blocks go: fills in flight hold some of them. */
	cache_disk_close(st->dc);
	for (n = tl_htab_first(&st->tab); n != NULL; n = next) {
		next = tl_htab_next(&st->tab, n);
		mblk_free(st, TL_CONTAINER_OF(n, struct cache_mblk, hn));
	}
	tl_htab_fini(&st->tab);
	pthread_mutex_destroy(&st->mu);
	pthread_cond_destroy(&st->cv);
	free(st);
}

bool
cache_blocks_local(const struct cache_blocks *st)
{
	return st->os_local;
}

/* ---- writes: store, delete, sync ------------------------------------- */

void
cache_blocks_key(const struct cache_blocks *st, char *key, size_t n,
		 uint64_t id, uint32_t idx, uint32_t len)
{
	cache_block_key(key, n, st->volume, id, idx, len);
}

int
cache_blocks_put(struct cache_blocks *st, uint64_t id, uint32_t idx,
		 const void *data, uint32_t len)
{
	char key[256];

	cache_blocks_key(st, key, sizeof(key), id, idx, len);
	if (st->wb != NULL && cache_wb_stage(st->wb, key, data, len) == 0)
		return 0;
	/* Without writeback, or when staging fails (disk full): store it
	 * directly, which is as durable. */
	return os_put(st->os, key, data, len);
}

int
cache_blocks_delete(struct cache_blocks *st, uint64_t id, uint32_t idx,
		    uint32_t len)
{
	char key[256];

	cache_blocks_key(st, key, sizeof(key), id, idx, len);
	if (st->wb != NULL)
		cache_wb_cancel(st->wb, key);
	return os_delete(st->os, key);
}

int
cache_blocks_delete_slice(struct cache_blocks *st, uint64_t id, uint32_t size)
{
	uint32_t k, nb = (uint32_t)(((uint64_t)size + st->bs - 1) / st->bs);
	int r;

	if (meta_slice_inline(id))
		return 0; /* no object: its bytes went with its release */

	for (k = 0; k < nb; k++) {
		r = cache_blocks_delete(st, id, k,
					TL_MIN(st->bs, size - k * st->bs));
		if (r < 0)
			return r;
	}
	return 0;
}

uint64_t
cache_blocks_mark(struct cache_blocks *st)
{
	/* Both counts only grow, so their sum changed iff one did. */
	return os_sync_mark(st->os) + cache_wb_failures(st->wb);
}

int
cache_blocks_sync(struct cache_blocks *st, uint64_t mark)
{
	int r = cache_wb_sync(st->wb);

	if (r == 0 && st->os_defer)
		r = os_sync(st->os);
	if (r == 0 && cache_blocks_mark(st) != mark)
		r = -EIO;
	return r;
}

/* ---- blocks in memory ------------------------------------------------- */

static uint64_t
bhash(uint64_t id, uint32_t idx)
{
	return (id * 0x9E3779B97F4A7C15ULL) ^ idx;
}

static struct cache_mblk *
bfind(struct cache_blocks *st, uint64_t id, uint32_t idx)
{
	struct tl_hnode *n;

	TL_HTAB_FOREACH_HASH(&st->tab, n, bhash(id, idx))
	{
		struct cache_mblk *b =
			TL_CONTAINER_OF(n, struct cache_mblk, hn);

		if (b->id == id && b->idx == idx)
			return b;
	}
	return NULL;
}

static void
bunhash(struct cache_blocks *st, struct cache_mblk *b)
{
	tl_htab_del(&st->tab, &b->hn);
}

static void
lru_del(struct cache_blocks *st, struct cache_mblk *b)
{
	if (!b->on_lru)
		return;
	if (b->lprev)
		b->lprev->lnext = b->lnext;
	else
		st->lru_head = b->lnext;
	if (b->lnext)
		b->lnext->lprev = b->lprev;
	else
		st->lru_tail = b->lprev;
	b->lprev = b->lnext = NULL;
	b->on_lru = false;
}

static void
lru_add(struct cache_blocks *st, struct cache_mblk *b)
{
	b->lprev = st->lru_tail;
	b->lnext = NULL;
	if (st->lru_tail)
		st->lru_tail->lnext = b;
	else
		st->lru_head = b;
	st->lru_tail = b;
	b->on_lru = true;
}

/* Drop unreferenced blocks, oldest first, down to the budget.  Called
 * with mu held; the freeing happens outside it. */
static struct cache_mblk *
trim(struct cache_blocks *st)
{
	struct cache_mblk *b, *gone = NULL;

	while (st->mem_bytes > st->mem_cap && (b = st->lru_head) != NULL) {
		lru_del(st, b);
		bunhash(st, b);
		st->mem_bytes -= b->len;
		st->mem_blocks--;
		b->gnext = gone;
		gone = b;
	}
	return gone;
}

static void
free_list(struct cache_blocks *st, struct cache_mblk *b)
{
	struct cache_mblk *n;

	for (; b != NULL; b = n) {
		n = b->gnext;
		mblk_free(st, b);
	}
}

static void
blk_put(struct cache_blocks *st, struct cache_mblk *b)
{
	struct cache_mblk *gone;

	pthread_mutex_lock(&st->mu);
	if (--b->refs == 0 && b->drop) {
		unsigned i = st->ndropped++ % DROPPED_MAX;

		st->dropped[i].id = b->id;
		st->dropped[i].idx = b->idx;
		bunhash(st, b);
		st->mem_bytes -= b->len;
		st->mem_blocks--;
		b->gnext = NULL;
		gone = b;
	} else {
		if (b->refs == 0)
			lru_add(st, b);
		gone = trim(st);
	}
	pthread_mutex_unlock(&st->mu);
	free_list(st, gone);
}

/* Bytes [off, off+n) of the block from staging or the disk cache; a miss
 * there is -ENOENT. */
static int
local_read(struct cache_blocks *st, const char *key, uint32_t blen,
	   uint32_t off, uint32_t n, uint8_t *buf)
{
	int r = -ENOENT;

	if (st->wb != NULL)
		r = cache_wb_read(st->wb, key, blen, off, n, buf);
	if (r == -ENOENT && st->dc != NULL)
		r = cache_disk_get(st->dc, key, blen, off, n, buf);
	return r;
}

static int
remote_read(struct cache_blocks *st, const char *key, uint32_t off, uint32_t n,
	    uint8_t *buf)
{
	size_t got;
	int r;

	r = os_get(st->os, key, off, n, buf, &got);
	atomic_fetch_add(&st->fetches, 1);
	atomic_fetch_add(&st->fetch_bytes, got);
	if (r == 0 && got != n)
		r = -EIO;
	/* A missing object is -ENOENT: the slice naming it may have been
	 * released since the read planned (the file removed or truncated
	 * and the deletion job quick), which the caller tells apart from
	 * damage by looking at the file again (nfsd/nfs3_data.c). */
	if (r == -ENOENT) {
		tl_debug("cache", "read %s: no such object", key);
		return -ENOENT;
	}
	if (r < 0) {
		/* A short or failed block is damage the client can only
		 * see as an I/O error; say which. */
		tl_warn("cache", "read %s: %s", key,
			r == -EIO ? "short or failed" : strerror(-r));
		return -EIO;
	}
	return 0;
}

/* Bytes of inline slice p->id (one block: the whole slice) from
 * metadata.  -ENOENT, as for a missing object, when the slice was
 * released since the read planned. */
static int
inline_read(struct cache_blocks *st, const struct cache_piece *p, uint32_t off,
	    uint32_t n, uint8_t *buf)
{
	int r;

	if (st->m == NULL || p->idx != 0)
		return -EIO;
	r = meta_inline_read(st->m, p->id, p->blen, off, n, buf);
	if (r < 0 && r != -ENOENT) {
		tl_warn("cache", "read of inline slice %llu: %s",
			(unsigned long long)(p->id & ~META_SLICE_INLINE),
			strerror(-r));
		r = -EIO;
	}
	return r;
}

struct bfill {
	struct cache_blocks *st;
	struct cache_mblk *b;
};

/* The disk cache's fill thread wrote the block (cache_disk_fill): the
 * one completion handed down, so that the block stays in memory (and
 * counted) while the fill reads it. */
static void
fill_done(void *arg)
{
	struct bfill *bf = arg;

	blk_put(bf->st, bf->b);
	free(bf);
}

/* Whether a stream read block p through and let it go lately (mu). */
static bool
was_dropped(const struct cache_blocks *st, const struct cache_piece *p)
{
	unsigned i, n = TL_MIN(st->ndropped, DROPPED_MAX);

	for (i = 0; i < n; i++)
		if (st->dropped[i].id == p->id && st->dropped[i].idx == p->idx)
			return true;
	return false;
}

/* Bring the whole block into memory; *out is referenced.  A prefetch of
 * a block a stream has already read and dropped gets -EALREADY. */
static int
blk_get(struct cache_blocks *st, const struct cache_piece *p, bool prefetch,
	struct cache_mblk **out)
{
	struct cache_mblk *b, *gone;
	bool fetched = false;
	char key[256];
	int r;

	pthread_mutex_lock(&st->mu);
	while ((b = bfind(st, p->id, p->idx)) != NULL) {
		/* A waiter holds a reference, so the block cannot be
		 * trimmed between its load and the waiter's wake-up. */
		b->refs++;
		lru_del(st, b);
		while (!b->ready && !b->failed)
			pthread_cond_wait(&st->cv, &st->mu);
		if (b->ready) {
			pthread_mutex_unlock(&st->mu);
			atomic_fetch_add(&st->mem_hits, 1);
			*out = b;
			return 0;
		}
		/* The load failed: try for ourselves. */
		if (--b->refs == 0)
			mblk_free(st, b);
	}
	if (prefetch && was_dropped(st, p)) {
		/* A prefetch the stream overtook: checked under mu, where
		 * the stream's reader let the block go, so either that
		 * reader found this load in the table or this finds its
		 * drop here; the block is never fetched twice. */
		pthread_mutex_unlock(&st->mu);
		return -EALREADY;
	}
	b = tl_calloc(1, sizeof(*b));
	b->id = p->id;
	b->idx = p->idx;
	b->len = p->blen;
	b->refs = 1;
	tl_htab_add(&st->tab, &b->hn, bhash(p->id, p->idx));
	/* Counted from now, so blocks loading push older ones out and
	 * memory stays within the budget plus what readers hold. */
	st->mem_bytes += b->len;
	st->mem_blocks++;
	gone = trim(st);
	pthread_mutex_unlock(&st->mu);
	free_list(st, gone);

	b->data = cache_buf_get(st->bp, p->blen);
	cache_blocks_key(st, key, sizeof(key), p->id, p->idx, p->blen);
	if (meta_slice_inline(p->id))
		r = inline_read(st, p, 0, p->blen, b->data);
	else
		r = local_read(st, key, p->blen, 0, p->blen, b->data);
	if (r == -ENOENT && !meta_slice_inline(p->id)) {
		r = remote_read(st, key, 0, p->blen, b->data);
		fetched = r == 0;
	}

	pthread_mutex_lock(&st->mu);
	if (r < 0) {
		bunhash(st, b);
		st->mem_bytes -= b->len;
		st->mem_blocks--;
		b->failed = true;
		if (--b->refs > 0)
			b = NULL; /* the last waiter frees it */
	} else {
		b->ready = true;
		if (fetched && st->dc != NULL)
			b->refs++; /* the disk-cache fill's, see below */
	}
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
	if (r < 0) {
		if (b != NULL)
			mblk_free(st, b);
		return r;
	}
	/* Waiters already have the block; the disk copy is written by the
	 * disk cache's fill thread, from a reference of its own, so neither
	 * this reader nor a prefetch slot waits for it. */
	if (fetched && st->dc != NULL) {
		struct bfill *bf = tl_malloc(sizeof(*bf));

		*bf = (struct bfill){st, b};
		if (!cache_disk_fill(st->dc, key, b->data, p->blen, fill_done,
				     bf))
			fill_done(bf);
	}
	*out = b;
	return 0;
}

/* Bytes of a block in memory into dst, if it is there and ready. */
static bool
mem_peek(struct cache_blocks *st, const struct cache_piece *p, uint8_t *dst)
{
	struct cache_mblk *b;

	pthread_mutex_lock(&st->mu);
	b = bfind(st, p->id, p->idx);
	if (b != NULL && b->ready) {
		b->refs++;
		lru_del(st, b);
	} else {
		b = NULL;
	}
	pthread_mutex_unlock(&st->mu);
	if (b == NULL)
		return false;
	memcpy(dst, b->data + p->from, p->n);
	atomic_fetch_add(&st->mem_hits, 1);
	blk_put(st, b);
	return true;
}

/* ---- reads ------------------------------------------------------------ */

int
cache_blocks_ref(struct cache_blocks *st, const struct cache_piece *p, bool seq,
		 struct cache_mblk **out, const uint8_t **data)
{
	int r = blk_get(st, p, false, out);

	if (r < 0)
		return r;
	if (seq) {
		/* Its buffer then goes to the next fetch (the pool) once
		 * the last reference goes: a stream reuses a window's worth
		 * of memory instead of filling the whole budget with blocks
		 * it is done with, and new memory is what costs here. */
		pthread_mutex_lock(&st->mu);
		(*out)->used += p->n;
		(*out)->drop = (*out)->used >= (*out)->len;
		pthread_mutex_unlock(&st->mu);
	}
	*data = (*out)->data + p->from;
	return 0;
}

void
cache_blocks_unref(struct cache_blocks *st, struct cache_mblk *b)
{
	blk_put(st, b);
}

int
cache_blocks_read(struct cache_blocks *st, const struct cache_piece *p,
		  uint8_t *dst, bool whole, bool seq)
{
	struct cache_mblk *b;
	const uint8_t *data;
	char key[256];
	int r;

	if (dst != NULL && whole) {
		r = cache_blocks_ref(st, p, seq, &b, &data);
		if (r < 0)
			return r;
		memcpy(dst, data, p->n);
		blk_put(st, b);
		return 0;
	}
	if (dst == NULL) {
		r = blk_get(st, p, true, &b);
		if (r == 0)
			blk_put(st, b);
		return r;
	}
	if (mem_peek(st, p, dst))
		return 0;
	if (meta_slice_inline(p->id))
		return inline_read(st, p, p->from, p->n, dst);
	cache_blocks_key(st, key, sizeof(key), p->id, p->idx, p->blen);
	r = local_read(st, key, p->blen, p->from, p->n, dst);
	if (r == -ENOENT)
		r = remote_read(st, key, p->from, p->n, dst);
	return r;
}

int
cache_blocks_open_range(struct cache_blocks *st, const struct cache_piece *p,
			int *fd)
{
	char key[256];
	int r;

	if (meta_slice_inline(p->id))
		return -EAGAIN; /* no file: the caller copies (inline_read) */
	cache_blocks_key(st, key, sizeof(key), p->id, p->idx, p->blen);
	r = os_open_range(st->os, key, p->from, p->n, fd);
	if (r == 0) {
		atomic_fetch_add(&st->fetches, 1);
		atomic_fetch_add(&st->fetch_bytes, p->n);
	}
	return r;
}

int
cache_blocks_advise(struct cache_blocks *st, const struct cache_piece *p)
{
	struct os_store *fs = os_unwrap(st->os, "file");
	char key[256];

	if (fs == NULL)
		return -ENOTSUP;
	if (meta_slice_inline(p->id))
		return 0; /* in metadata, which LMDB maps */
	cache_blocks_key(st, key, sizeof(key), p->id, p->idx, p->blen);
	return os_file_advise(fs, key, p->from, p->n);
}

void
cache_blocks_stats(struct cache_blocks *st, struct cache_stats *out)
{
	if (st->wb != NULL)
		cache_wb_stats(st->wb, out);
	if (st->dc != NULL)
		cache_disk_stats(st->dc, out);
	pthread_mutex_lock(&st->mu);
	out->mem_blocks = st->mem_blocks;
	out->mem_bytes = st->mem_bytes;
	pthread_mutex_unlock(&st->mu);
	out->mem_hits = atomic_load(&st->mem_hits);
	out->fetches = atomic_load(&st->fetches);
	out->fetch_bytes = atomic_load(&st->fetch_bytes);
}
