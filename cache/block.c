/*
 * block.c - blocks on their way to a reader: memory, staging, disk cache,
 * object store, with one fetch per missing block (single-flight).
 *
 * Read policy (the reader in cache.c chooses "whole"):
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
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache-internal.h"

#define BTAB_SIZE 4096

void
cache_blk_init(struct cache *c, uint64_t mem_cap)
{
	pthread_mutex_init(&c->bmu, NULL);
	pthread_cond_init(&c->bcv, NULL);
	c->nbtab = BTAB_SIZE;
	c->btab = tl_calloc(c->nbtab, sizeof(*c->btab));
	c->mem_cap = mem_cap;
	pthread_mutex_init(&c->fmu, NULL);
}

/*
 * Block buffers.  A fresh buffer costs a page fault per 4 KiB as the
 * fetch fills it, which in a VM costs more than the copy: 2.7 ms for a
 * fresh 4 MiB block with 4 KiB pages against 0.3 ms with two 2 MiB
 * pages.  So buffers of 2 MiB and more are mapped on a 2 MiB boundary
 * and asked for transparent huge pages, and whole-block buffers are
 * recycled through a short free list (once memory is at its budget
 * every fetch frees one block and allocates the next); at most
 * CACHE_BFREE_MAX wait, outside the memory budget.  All are page
 * aligned, so the disk cache can write them with O_DIRECT.
 */
#define HUGE_SZ (2u << 20)

static uint8_t *
bbuf_get(struct cache *c, uint32_t len)
{
	uint8_t *d = NULL;

	if (len == c->bs) {
		pthread_mutex_lock(&c->fmu);
		if (c->nfree > 0)
			d = c->freebuf[--c->nfree];
		pthread_mutex_unlock(&c->fmu);
	}
	if (d != NULL)
		return d;
	if (len >= HUGE_SZ)
		return tl_map_huge(len);
	if (posix_memalign((void **)&d, 4096, len ? len : 1) != 0)
		abort(); /* out of memory, as tl_malloc does */
	return d;
}

static void
bbuf_put(uint8_t *d, uint32_t len)
{
	if (d == NULL)
		return;
	if (len >= HUGE_SZ)
		tl_unmap_huge(d, len);
	else
		free(d);
}

static void
mblk_free(struct cache *c, struct mblk *b)
{
	uint8_t *d = b->data;

	if (d != NULL && b->len == c->bs) {
		pthread_mutex_lock(&c->fmu);
		if (c->nfree < CACHE_BFREE_MAX) {
			c->freebuf[c->nfree++] = d;
			d = NULL;
		}
		pthread_mutex_unlock(&c->fmu);
	}
	bbuf_put(d, b->len);
	free(b);
}

void
cache_blk_fini(struct cache *c)
{
	struct mblk *b, *n;
	size_t i;

	for (i = 0; i < c->nbtab; i++)
		for (b = c->btab[i]; b != NULL; b = n) {
			n = b->hnext;
			mblk_free(c, b);
		}
	while (c->nfree > 0)
		bbuf_put(c->freebuf[--c->nfree], c->bs);
	pthread_mutex_destroy(&c->fmu);
	free(c->btab);
	pthread_mutex_destroy(&c->bmu);
	pthread_cond_destroy(&c->bcv);
}

static size_t
bslot(struct cache *c, uint64_t id, uint32_t idx)
{
	return (size_t)(((id * 0x9E3779B97F4A7C15ULL) ^ idx) >> 20) % c->nbtab;
}

static struct mblk *
bfind(struct cache *c, uint64_t id, uint32_t idx)
{
	struct mblk *b;

	for (b = c->btab[bslot(c, id, idx)]; b != NULL; b = b->hnext)
		if (b->id == id && b->idx == idx)
			return b;
	return NULL;
}

static void
bunhash(struct cache *c, struct mblk *b)
{
	struct mblk **pp = &c->btab[bslot(c, b->id, b->idx)];

	while (*pp != b)
		pp = &(*pp)->hnext;
	*pp = b->hnext;
}

static void
lru_del(struct cache *c, struct mblk *b)
{
	if (!b->on_lru)
		return;
	if (b->lprev)
		b->lprev->lnext = b->lnext;
	else
		c->lru_head = b->lnext;
	if (b->lnext)
		b->lnext->lprev = b->lprev;
	else
		c->lru_tail = b->lprev;
	b->lprev = b->lnext = NULL;
	b->on_lru = false;
}

static void
lru_add(struct cache *c, struct mblk *b)
{
	b->lprev = c->lru_tail;
	b->lnext = NULL;
	if (c->lru_tail)
		c->lru_tail->lnext = b;
	else
		c->lru_head = b;
	c->lru_tail = b;
	b->on_lru = true;
}

/* Drop unreferenced blocks, oldest first, down to the budget.  Called
 * with bmu held; the freeing happens outside it. */
static struct mblk *
trim(struct cache *c)
{
	struct mblk *b, *gone = NULL;

	while (c->mem_bytes > c->mem_cap && (b = c->lru_head) != NULL) {
		lru_del(c, b);
		bunhash(c, b);
		c->mem_bytes -= b->len;
		c->mem_blocks--;
		b->hnext = gone;
		gone = b;
	}
	return gone;
}

static void
free_list(struct cache *c, struct mblk *b)
{
	struct mblk *n;

	for (; b != NULL; b = n) {
		n = b->hnext;
		mblk_free(c, b);
	}
}

static void
blk_put(struct cache *c, struct mblk *b)
{
	struct mblk *gone;

	pthread_mutex_lock(&c->bmu);
	if (--b->refs == 0 && b->drop) {
		unsigned i = c->ndropped++ % CACHE_DROPPED_MAX;

		c->dropped[i].id = b->id;
		c->dropped[i].idx = b->idx;
		bunhash(c, b);
		c->mem_bytes -= b->len;
		c->mem_blocks--;
		b->hnext = NULL;
		gone = b;
	} else {
		if (b->refs == 0)
			lru_add(c, b);
		gone = trim(c);
	}
	pthread_mutex_unlock(&c->bmu);
	free_list(c, gone);
}

/* Bytes [off, off+n) of the block from staging or the disk cache; a miss
 * there is -ENOENT. */
static int
local_read(struct cache *c, const char *key, uint32_t blen, uint32_t off,
	   uint32_t n, uint8_t *buf)
{
	int r = -ENOENT;

	if (c->wb != NULL)
		r = cache_wb_read(c, key, blen, off, n, buf);
	if (r == -ENOENT && c->dc != NULL)
		r = dcache_get(c->dc, key, blen, off, n, buf);
	return r;
}

static int
remote_read(struct cache *c, const char *key, uint32_t off, uint32_t n,
	    uint8_t *buf)
{
	size_t got;
	int r;

	r = os_get(c->os, key, off, n, buf, &got);
	atomic_fetch_add(&c->fetches, 1);
	atomic_fetch_add(&c->fetch_bytes, got);
	if (r == 0 && got != n)
		r = -EIO;
	if (r < 0) {
		/* A missing or short block is damage the client can only
		 * see as an I/O error; say which. */
		tl_warn("cache", "read %s: %s", key,
			r == -EIO ? "short or failed" : strerror(-r));
		return -EIO;
	}
	return 0;
}

struct bfill {
	struct cache *c;
	struct mblk *b;
};

static void
fill_done(void *arg)
{
	struct bfill *bf = arg;

	blk_put(bf->c, bf->b);
	free(bf);
}

/* Whether a stream read block p through and let it go lately (bmu). */
static bool
was_dropped(const struct cache *c, const struct piece *p)
{
	unsigned i, n = TL_MIN(c->ndropped, CACHE_DROPPED_MAX);

	for (i = 0; i < n; i++)
		if (c->dropped[i].id == p->id && c->dropped[i].idx == p->idx)
			return true;
	return false;
}

/* Bring the whole block into memory; *out is referenced.  A prefetch of
 * a block a stream has already read and dropped gets -EALREADY. */
static int
blk_get(struct cache *c, const struct piece *p, bool prefetch,
	struct mblk **out)
{
	struct mblk *b, *gone;
	bool fetched = false;
	char key[256];
	int r;

	pthread_mutex_lock(&c->bmu);
	while ((b = bfind(c, p->id, p->idx)) != NULL) {
		/* A waiter holds a reference, so the block cannot be
		 * trimmed between its load and the waiter's wake-up. */
		b->refs++;
		lru_del(c, b);
		while (!b->ready && !b->failed)
			pthread_cond_wait(&c->bcv, &c->bmu);
		if (b->ready) {
			pthread_mutex_unlock(&c->bmu);
			atomic_fetch_add(&c->mem_hits, 1);
			*out = b;
			return 0;
		}
		/* The load failed: try for ourselves. */
		if (--b->refs == 0)
			mblk_free(c, b);
	}
	if (prefetch && was_dropped(c, p)) {
		/* A prefetch the stream overtook: checked under bmu, where
		 * the stream's reader let the block go, so either that
		 * reader found this load in the table or this finds its
		 * drop here; the block is never fetched twice. */
		pthread_mutex_unlock(&c->bmu);
		return -EALREADY;
	}
	b = tl_calloc(1, sizeof(*b));
	b->id = p->id;
	b->idx = p->idx;
	b->len = p->blen;
	b->refs = 1;
	b->hnext = c->btab[bslot(c, p->id, p->idx)];
	c->btab[bslot(c, p->id, p->idx)] = b;
	/* Counted from now, so blocks loading push older ones out and
	 * memory stays within the budget plus what readers hold. */
	c->mem_bytes += b->len;
	c->mem_blocks++;
	gone = trim(c);
	pthread_mutex_unlock(&c->bmu);
	free_list(c, gone);

	b->data = bbuf_get(c, p->blen);
	cache_block_key(key, sizeof(key), c->volume, p->id, p->idx, p->blen);
	r = local_read(c, key, p->blen, 0, p->blen, b->data);
	if (r == -ENOENT) {
		r = remote_read(c, key, 0, p->blen, b->data);
		fetched = r == 0;
	}

	pthread_mutex_lock(&c->bmu);
	if (r < 0) {
		bunhash(c, b);
		c->mem_bytes -= b->len;
		c->mem_blocks--;
		b->failed = true;
		if (--b->refs > 0)
			b = NULL; /* the last waiter frees it */
	} else {
		b->ready = true;
		if (fetched && c->dc != NULL)
			b->refs++; /* the disk-cache fill's, see below */
	}
	pthread_cond_broadcast(&c->bcv);
	pthread_mutex_unlock(&c->bmu);
	if (r < 0) {
		if (b != NULL)
			mblk_free(c, b);
		return r;
	}
	/* Waiters already have the block; the disk copy is written by the
	 * disk cache's fill thread, from a reference of its own, so neither
	 * this reader nor a prefetch slot waits for it. */
	if (fetched && c->dc != NULL) {
		struct bfill *bf = tl_malloc(sizeof(*bf));

		*bf = (struct bfill){c, b};
		if (!dcache_fill(c->dc, key, b->data, p->blen, fill_done, bf))
			fill_done(bf);
	}
	*out = b;
	return 0;
}

/* Bytes of a block in memory, if it is there and ready. */
static bool
mem_peek(struct cache *c, const struct piece *p)
{
	struct mblk *b;

	pthread_mutex_lock(&c->bmu);
	b = bfind(c, p->id, p->idx);
	if (b != NULL && b->ready) {
		b->refs++;
		lru_del(c, b);
	} else {
		b = NULL;
	}
	pthread_mutex_unlock(&c->bmu);
	if (b == NULL)
		return false;
	memcpy(p->dst, b->data + p->from, p->n);
	atomic_fetch_add(&c->mem_hits, 1);
	blk_put(c, b);
	return true;
}

int
cache_piece_ref(struct cache *c, const struct piece *p, bool seq,
		struct mblk **out)
{
	int r = blk_get(c, p, false, out);

	if (r == 0 && seq) {
		/* Its buffer then goes to the next fetch (bbuf_get) once
		 * the last reference goes: a stream reuses a window's worth
		 * of memory instead of filling the whole budget with blocks
		 * it is done with, and new memory is what costs here. */
		pthread_mutex_lock(&c->bmu);
		(*out)->used += p->n;
		(*out)->drop = (*out)->used >= (*out)->len;
		pthread_mutex_unlock(&c->bmu);
	}
	return r;
}

void
cache_blk_unref(struct cache *c, struct mblk *b)
{
	blk_put(c, b);
}

int
cache_piece_read(struct cache *c, const struct piece *p, bool whole,
		 bool seq)
{
	struct mblk *b;
	char key[256];
	int r;

	if (p->dst != NULL && whole) {
		r = cache_piece_ref(c, p, seq, &b);
		if (r < 0)
			return r;
		memcpy(p->dst, b->data + p->from, p->n);
		blk_put(c, b);
		return 0;
	}
	if (p->dst == NULL) {
		r = blk_get(c, p, true, &b);
		if (r == 0)
			blk_put(c, b);
		return r;
	}
	if (mem_peek(c, p))
		return 0;
	cache_block_key(key, sizeof(key), c->volume, p->id, p->idx, p->blen);
	r = local_read(c, key, p->blen, p->from, p->n, p->dst);
	if (r == -ENOENT)
		r = remote_read(c, key, p->from, p->n, p->dst);
	return r;
}

int
cache_store_block(struct cache *c, const char *key, const void *data,
		  uint32_t len)
{
	if (c->wb != NULL && cache_wb_stage(c, key, data, len) == 0)
		return 0;
	/* Without writeback, or when staging fails (disk full): store it
	 * directly, which is as durable. */
	return os_put(c->os, key, data, len);
}

uint64_t
cache_sync_mark(struct cache *c)
{
	/* Both counts only grow, so their sum changed iff one did. */
	return os_sync_mark(c->os) + (c->wb != NULL ? cache_wb_failures(c) : 0);
}

int
cache_sync(struct cache *c, uint64_t mark)
{
	int r = cache_wb_sync(c);

	if (r == 0 && c->os_defer)
		r = os_sync(c->os);
	if (r == 0 && cache_sync_mark(c) != mark)
		r = -EIO;
	return r;
}

int
cache_delete_block(struct cache *c, const char *key)
{
	if (c->wb != NULL)
		cache_wb_cancel(c, key);
	return os_delete(c->os, key);
}
