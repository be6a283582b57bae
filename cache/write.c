/*
 * write.c - buffered writes: slice builders, early block uploads, flush.
 *
 * A write lands in a builder of its chunk (see struct builder).  The
 * choice keeps a sequential stream in one builder even when NFS WRITEs
 * arrive slightly out of order, while keeping "later write wins" true:
 *   - the newest builder whose written extent overlaps or touches the
 *     write takes it, if the write starts at or after the builder's start
 *     and every block it touches is still open; otherwise a new builder
 *     starts (it is newer, so it wins over all older data at commit);
 *   - failing that, the newest builder ending at most CACHE_GAP_WINDOW
 *     before the write takes it (the gap is filled by writes in flight).
 * Memory follows what was written: a block's bytes live in extents that
 * grow as writes extend them, so a 4 KiB write holds about 4 KiB.  Each
 * slice stores only its written bytes, laid out from its first byte.  A
 * slice block of the first run is sealed and uploaded in the background
 * as soon as the run covers it, so a COMMIT finds little left to store.
 * Reads see buffered bytes through cache_file_overlay, without a flush.
 *
 * Flush freezes the file's builders, stores every block not yet stored
 * (in parallel on the upload pool), then commits all their slices with
 * one meta_write_slices call: a block is always stored before the
 * metadata that refers to it.  With a deferring store (file://) "stored"
 * means written and renamed; the flush's os_sync, just before the
 * commit, is what makes the blocks durable (one barrier per flush, not
 * a disk wait per block); with writeback, cache_wb_sync does the same
 * for the staging directories.
 *
 * Data acknowledged UNSTABLE is kept until it is committed (RFC 1813:
 * COMMIT must never answer OK with the write verifier of the WRITEs for
 * bytes that are not stored, and this gateway keeps its verifier for
 * its whole run).  So a builder's buffers are freed only once its
 * slices are committed or its file is gone, never when a block is
 * stored: a stored block is not yet durable (a failed sync may lose it,
 * objstore.h), and nothing but the buffers could store it again.  Every
 * failure before the commit leaves the builders frozen and buffered,
 * and the flush answers the error (COMMIT: NFS3ERR_IO); the next flush
 * retries:
 *   - a failed upload: that flush stores what is not stored yet;
 *   - a failed sync, or a sync of anyone that failed since the
 *     builder's first block was stored (cache_sync_mark: a failed sync
 *     may lose any put made before it, not only its caller's): every
 *     block of the frozen builders is stored again, under fresh ids,
 *     and the old objects are deleted (restore_runs);
 *   - a failed commit: the stored blocks stay as they are, unless they
 *     were stored more than CACHE_RESTORE_NS ago (`tessera gc` may take
 *     an object that old and unreferenced for a leak): then they are
 *     stored again too.
 * -ENOENT from meta (the file is gone, once meta_getattr confirms it:
 * file_gone) deletes what was stored and drops the data: nobody can read
 * it.  The
 * other path that drops data is cache_close's (cache.c).  So the write
 * verifier never has to change while the gateway runs.  The price is
 * memory: an early upload does not free its block's buffers, which stay
 * counted against buffer_limit until the commit (a writer over the limit
 * flushes, which is quick then: the blocks are stored).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache-internal.h"

struct upjob {
	struct cache *c;
	struct cfile *f;
	struct builder *b;
	struct run *run; /* NULL: early upload of builder block idx */
	uint32_t idx;
	struct pack *pk; /* set: upload of this pack (b, run unused) */
};

/* Runs of at most PACK_RUN bytes, not stored yet, are packed with the
 * other small runs of their chunk in the same flush, up to PACK_MAX
 * bytes (and one block) per pack: random 4 KiB writes made one object
 * per write, and a local file system pays an inode, a rename and a
 * journal entry for each.  The cap keeps what a read of one small run
 * fetches (a whole block, from S3 or into the disk cache) modest. */
#define PACK_RUN (64u << 10)
#define PACK_MAX (1u << 20)

struct jobv {
	struct upjob **v;
	size_t n, cap;
};

static void
jobv_add(struct jobv *j, struct upjob *u)
{
	if (j->n == j->cap) {
		j->cap = j->cap ? j->cap * 2 : 16;
		j->v = tl_realloc(j->v, j->cap * sizeof(*j->v));
	}
	j->v[j->n++] = u;
}

/* Whole-block write buffers (see struct bext's base) are mapped on a
 * 2 MiB boundary with transparent huge pages asked for, and a few are
 * kept for reuse: a fresh 4 MiB mapping faulted in page by page costs
 * the kernel more than the copy into it (page faults, zeroing, munmap:
 * a fifth of a sequential write's CPU).  The kept buffers are part of
 * the gateway's fixed overhead (WBUF_KEEP blocks), not of buffer_limit.
 * They are page aligned, so the file store writes them with O_DIRECT. */
#define WBUF_KEEP 4
#define WBUF_MIN (1u << 20) /* smaller blocks: plain mallocs */

static pthread_mutex_t wbuf_mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *wbuf_v[WBUF_KEEP];
static size_t wbuf_n;
static uint32_t wbuf_size; /* of the kept buffers */

/* Blocks that get whole-block buffers: large powers of two. */
static bool
wbuf_kind(uint32_t size)
{
	return size >= WBUF_MIN && (size & (size - 1)) == 0;
}

static uint8_t *
wbuf_alloc(uint32_t size)
{
	uint8_t *d = NULL;

	pthread_mutex_lock(&wbuf_mu);
	if (wbuf_n > 0 && wbuf_size == size)
		d = wbuf_v[--wbuf_n];
	pthread_mutex_unlock(&wbuf_mu);
	return d != NULL ? d : tl_map_huge(size);
}

static void
wbuf_free(uint8_t *d, uint32_t size)
{
	pthread_mutex_lock(&wbuf_mu);
	if (wbuf_n == 0)
		wbuf_size = size;
	if (wbuf_n < WBUF_KEEP && wbuf_size == size) {
		wbuf_v[wbuf_n++] = d;
		d = NULL;
	}
	pthread_mutex_unlock(&wbuf_mu);
	if (d != NULL)
		tl_unmap_huge(d, size);
}

static void
ext_free(struct bext *e)
{
	if (e->base != NULL)
		wbuf_free(e->base, e->cap);
	else
		free(e->d);
}

/* At exit, so that nothing stays mapped for leak checkers to wonder. */
__attribute__((destructor)) static void
wbuf_drain(void)
{
	while (wbuf_n > 0) {
		wbuf_n--;
		tl_unmap_huge(wbuf_v[wbuf_n], wbuf_size);
	}
}

static uint32_t
align_down(struct cache *c, uint32_t pos)
{
	return pos & ~(c->bs - 1);
}

/* Bookkeeping a builder allocates besides its buffers. */
static int64_t
builder_overhead(uint32_t nblk)
{
	return (int64_t)(sizeof(struct builder) + nblk * sizeof(struct bblock));
}

uint64_t
cache_write_slack(struct cache *c)
{
	/* Two partial blocks may grow by a block each; a write crossing a
	 * chunk boundary may start two builders. */
	return 2 * (uint64_t)c->bs +
	       2 * (uint64_t)builder_overhead(META_CHUNK_SIZE / c->bs + 1) +
	       4096;
}

static struct builder *
builder_new(struct cache *c, uint32_t chunk, uint32_t start)
{
	struct builder *b = tl_calloc(1, sizeof(*b));

	(void)c;
	b->chunk = chunk;
	b->start = start;
	b->bytes = builder_overhead(0);
	return b;
}

/* Make room for block i in the block table (it grows as writes reach
 * further); returns the bytes added. */
static int64_t
blk_reach(struct cache *c, struct builder *b, uint32_t i)
{
	uint32_t max = (uint32_t)((META_CHUNK_SIZE - b->start + c->bs - 1) /
				  c->bs), n;

	if (i < b->nblk)
		return 0;
	n = TL_MIN(max, TL_MAX(i + 1, 2 * b->nblk));
	b->blk = tl_realloc(b->blk, n * sizeof(*b->blk));
	memset(b->blk + b->nblk, 0, (n - b->nblk) * sizeof(*b->blk));
	n -= b->nblk;
	b->nblk += n;
	return (int64_t)(n * sizeof(*b->blk));
}

static void
list_append(struct cfile *f, struct builder *b)
{
	b->prev = f->tail;
	b->next = NULL;
	if (f->tail)
		f->tail->next = b;
	else
		f->head = b;
	f->tail = b;
}

/* Free block k's buffers; returns the bytes it held. */
static int64_t
block_free(struct bblock *k)
{
	int64_t n = (int64_t)(k->cx * sizeof(*k->x));
	uint32_t i;

	for (i = 0; i < k->nx; i++) {
		n += k->x[i].cap;
		ext_free(&k->x[i]);
	}
	free(k->x);
	k->x = NULL;
	k->nx = k->cx = 0;
	return n;
}

/* Give n bytes of the builder's count back to the file and the total. */
static void
builder_release(struct cache *c, struct cfile *f, struct builder *b,
		int64_t n)
{
	if (n <= 0)
		return;
	b->bytes -= n;
	atomic_fetch_sub(&f->bytes, (uint64_t)n);
	cache_space_release(c, (uint64_t)n);
}

/* Release the builder's buffers and its share of the buffer total. */
static void
builder_drop_data(struct cache *c, struct cfile *f, struct builder *b)
{
	uint32_t i;

	for (i = 0; i < b->nblk; i++)
		block_free(&b->blk[i]);
	builder_release(c, f, b, b->bytes);
}

static void
builder_free(struct cache *c, struct cfile *f, struct builder *b)
{
	size_t i;

	builder_drop_data(c, f, b);
	for (i = 0; i < b->nruns; i++)
		free(b->runs[i].st);
	free(b->runs);
	free(b->st0);
	free(b->blk);
	free(b->iv);
	free(b);
}

/* Add [s, e) to the written ranges; returns the growth of the list. */
static int64_t
ival_add(struct builder *b, uint32_t s, uint32_t e)
{
	size_t i = 0, j, old = b->civ;
	uint32_t ns = s, ne = e;

	while (i < b->niv && b->iv[i].e < s)
		i++;
	for (j = i; j < b->niv && b->iv[j].s <= e; j++) {
		ns = TL_MIN(ns, b->iv[j].s);
		ne = TL_MAX(ne, b->iv[j].e);
	}
	if (i == j) { /* insert at i */
		if (b->niv == b->civ) {
			b->civ = b->civ ? b->civ * 2 : 4;
			b->iv = tl_realloc(b->iv, b->civ * sizeof(*b->iv));
		}
		memmove(b->iv + i + 1, b->iv + i,
			(b->niv - i) * sizeof(*b->iv));
		b->niv++;
	} else if (j > i + 1) { /* merge i..j-1 into i */
		memmove(b->iv + i + 1, b->iv + j,
			(b->niv - j) * sizeof(*b->iv));
		b->niv -= j - i - 1;
	}
	b->iv[i] = (struct ival){ns, ne};
	return (int64_t)((b->civ - old) * sizeof(*b->iv));
}

/* Write block bytes [a, z) of block k (blen bytes long) from src: the
 * extents it overlaps or touches merge into the first of them, which
 * grows to at least twice its size (so a stream of small writes costs
 * few reallocations) but never past the block's end; stream: the write
 * continues a block just filled.  Returns the change in allocated
 * bytes. */
static int64_t
ext_write(struct bblock *k, uint32_t blen, uint32_t a, uint32_t z,
	  const uint8_t *src, bool stream)
{
	int64_t delta = 0;
	uint32_t i = 0, j, t, lo, hi, ncap;
	struct bext *e;
	uint8_t *nd;

	while (i < k->nx && k->x[i].hi < a)
		i++;
	for (j = i; j < k->nx && k->x[j].lo <= z; j++)
		;
	if (i == j) {
		if (k->nx == k->cx) {
			k->cx = k->cx ? k->cx * 2 : 1;
			k->x = tl_realloc(k->x, k->cx * sizeof(*k->x));
			delta += (int64_t)((k->cx - k->nx) * sizeof(*k->x));
		}
		memmove(k->x + i + 1, k->x + i, (k->nx - i) * sizeof(*k->x));
		k->nx++;
		/* A stream filling blocks in order, or a large write, gets
		 * the whole block at once rather than growing it by copies
		 * (NFS WRITEs of a stream often arrive out of order). */
		if (wbuf_kind(blen) && (stream || z - a >= blen / 4)) {
			uint8_t *base = wbuf_alloc(blen);

			k->x[i] = (struct bext){a, z, blen, base + a, base};
			memcpy(base + a, src, z - a);
			return delta + blen;
		}
		ncap = stream ? blen - a : z - a;
		k->x[i] = (struct bext){a, z, ncap, tl_malloc(ncap), NULL};
		memcpy(k->x[i].d, src, z - a);
		return delta + ncap;
	}
	e = &k->x[i];
	lo = TL_MIN(a, e->lo);
	hi = TL_MAX(z, k->x[j - 1].hi);
	for (t = i; t < j; t++)
		delta -= k->x[t].cap;
	if (e->base != NULL) {
		e->d = e->base + lo; /* the bytes are in place already */
		e->lo = lo;
	} else if (lo != e->lo || hi - lo > e->cap) {
		ncap = TL_MAX(hi - lo, TL_MIN(2 * e->cap, blen - lo));
		if (lo == e->lo) {
			e->d = tl_realloc(e->d, ncap);
		} else {
			nd = tl_malloc(ncap);
			memcpy(nd + (e->lo - lo), e->d, e->hi - e->lo);
			free(e->d);
			e->d = nd;
		}
		e->cap = ncap;
		e->lo = lo;
	}
	for (t = i + 1; t < j; t++) {
		memcpy(e->d + (k->x[t].lo - lo), k->x[t].d,
		       k->x[t].hi - k->x[t].lo);
		ext_free(&k->x[t]);
	}
	e->hi = hi;
	memcpy(e->d + (a - lo), src, z - a);
	memmove(k->x + i + 1, k->x + j, (k->nx - j) * sizeof(*k->x));
	k->nx -= j - i - 1;
	return delta + e->cap;
}

/* Length of builder block i (the last one may end at the chunk's end). */
static uint32_t
blk_len(struct cache *c, struct builder *b, uint32_t i)
{
	uint32_t s = b->start + i * c->bs;

	return (uint32_t)TL_MIN((uint64_t)c->bs, META_CHUNK_SIZE - s);
}

/* Copy the builder's bytes of chunk range [p, q) that it holds into dst
 * (dst[0] is position p); what it does not hold is left alone. */
static void
builder_copy(struct cache *c, struct builder *b, uint32_t p, uint32_t q,
	     uint8_t *dst)
{
	uint32_t i, last, j, bs0, lo, hi;
	const struct bext *e;

	if (q <= b->start || p >= q)
		return;
	p = TL_MAX(p, b->start);
	i = (p - b->start) / c->bs;
	last = (q - 1 - b->start) / c->bs;
	for (; i <= last && i < b->nblk; i++) {
		bs0 = b->start + i * c->bs;
		for (j = 0; j < b->blk[i].nx; j++) {
			e = &b->blk[i].x[j];
			lo = TL_MAX(p, bs0 + e->lo);
			hi = TL_MIN(q, bs0 + e->hi);
			if (lo < hi)
				memcpy(dst + (lo - p), e->d + (lo - bs0 - e->lo),
				       hi - lo);
		}
	}
}

/* The bytes of chunk range [p, p + n), all written: a pointer into the
 * extent holding them all when there is one and it cannot move (the
 * builder is frozen or the block is sealed), else a copy in *tmp. */
static const uint8_t *
builder_bytes(struct cache *c, struct builder *b, uint32_t p, uint32_t n,
	      uint8_t **tmp)
{
	uint32_t i = (p - b->start) / c->bs, bs0 = b->start + i * c->bs, j;
	const struct bext *e;

	*tmp = NULL;
	if ((b->frozen || bs0 + blk_len(c, b, i) <= b->sealed_end) &&
	    p - bs0 + n <= blk_len(c, b, i)) {
		for (j = 0; j < b->blk[i].nx; j++) {
			e = &b->blk[i].x[j];
			if (bs0 + e->lo <= p && p + n <= bs0 + e->hi)
				return e->d + (p - bs0 - e->lo);
		}
	}
	/* Page aligned when the store could write it with O_DIRECT. */
	if (n >= (256u << 10) && n % 4096 == 0) {
		*tmp = aligned_alloc(4096, n);
		if (*tmp == NULL)
			abort(); /* out of memory, as tl_malloc does */
	} else {
		*tmp = tl_malloc(n);
	}
	builder_copy(c, b, p, p + n, *tmp);
	return *tmp;
}

/* May [p, q) go into b?  Not below its start, nor into sealed bytes. */
static bool
fits(struct builder *b, uint32_t p)
{
	return !b->frozen && p >= b->start && p >= b->sealed_end;
}

static struct builder *
pick_builder(struct cache *c, struct cfile *f, uint32_t chunk, uint32_t p,
	     uint32_t q)
{
	struct builder *b;
	uint32_t lo, hi;

	(void)c;
	for (b = f->tail; b != NULL; b = b->prev) {
		if (b->chunk != chunk)
			continue;
		lo = b->iv[0].s;
		hi = b->iv[b->niv - 1].e;
		if (q < lo || p > hi)
			continue;
		return fits(b, p) ? b : NULL;
	}
	for (b = f->tail; b != NULL; b = b->prev) {
		if (b->chunk != chunk || b->frozen)
			continue;
		hi = b->iv[b->niv - 1].e;
		if (p > hi && p - hi <= CACHE_GAP_WINDOW && fits(b, p))
			return b;
	}
	return NULL;
}

/* Before b's first store (since the last restore_runs): which sync
 * failures its blocks may have been lost to, and how old they are. */
static void
builder_mark(struct cache *c, struct builder *b)
{
	if (b->marked)
		return;
	b->marked = true;
	b->mark = cache_sync_mark(c);
	b->mark_ns = tl_mono_ns();
}

static struct upjob *
upjob_new(struct cache *c, struct cfile *f, struct builder *b,
	  struct run *run, uint32_t idx)
{
	struct upjob *u = tl_malloc(sizeof(*u));

	*u = (struct upjob){c, f, b, run, idx, NULL};
	b->inflight++;
	return u;
}

/* Seal and queue the slice blocks the first run now covers completely.
 * The first seal fixes the slice's first byte (base). */
static void
seal_ready(struct cache *c, struct cfile *f, struct builder *b,
	   struct jobv *jobs)
{
	uint32_t end = b->iv[0].e, base = b->id ? b->base : b->iv[0].s;

	while (base + (uint64_t)(b->nsealed + 1) * c->bs <= end) {
		if (b->id == 0) {
			if (meta_new_slice_id(c->m, &b->id) < 0) {
				b->id = 0;
				return; /* the flush will allocate and upload */
			}
			b->base = base;
			b->nst0 = (META_CHUNK_SIZE - base) / c->bs;
			b->st0 = tl_calloc(b->nst0, 1);
		}
		b->st0[b->nsealed] = BLK_UPLOADING;
		builder_mark(c, b);
		jobv_add(jobs, upjob_new(c, f, b, NULL, b->nsealed));
		b->nsealed++;
		b->sealed_end = base + b->nsealed * c->bs;
	}
}

/* Key and bytes of an upload; *tmp is a copy to free after. */
static void
job_target(struct upjob *u, char *key, size_t keylen, const uint8_t **data,
	   uint32_t *len, uint8_t **tmp)
{
	struct cache *c = u->c;
	struct builder *b = u->b;
	struct pack *pk = u->pk;
	uint32_t from, off = 0;
	size_t i;

	if (pk != NULL) {
		*tmp = tl_malloc(pk->size);
		for (i = 0; i < pk->n; i++) {
			struct run *r = pk->m[i].r;

			builder_copy(c, pk->m[i].b, r->s, r->e, *tmp + off);
			off += r->e - r->s;
		}
		*data = *tmp;
		*len = pk->size;
		cache_block_key(key, keylen, c->volume, pk->id, 0, pk->size);
		return;
	}
	if (u->run == NULL) {
		cache_block_key(key, keylen, c->volume, b->id, u->idx, c->bs);
		*len = c->bs;
		*data = builder_bytes(c, b, b->base + u->idx * c->bs, c->bs,
				      tmp);
		return;
	}
	from = u->run->base + u->idx * c->bs;
	*len = TL_MIN(c->bs, u->run->e - from);
	*data = builder_bytes(c, b, from, *len, tmp);
	cache_block_key(key, keylen, c->volume, u->run->id, u->idx, *len);
}

/* A pack's upload finished with r (f->mu held): its members' state and
 * their builders' in-flight counts follow. */
static void
pack_done(struct pack *pk, int r, const char *key)
{
	size_t i;

	pk->st = r == 0 ? 2 : 0;
	for (i = 0; i < pk->n; i++) {
		struct builder *b = pk->m[i].b;

		pk->m[i].r->st[0] = pk->st;
		if (r < 0 && b->upload_err == 0)
			b->upload_err = r;
		b->inflight--;
	}
	if (r < 0)
		tl_debug("cache", "upload of %s failed: %d", key, r);
}

/* Runs on the upload pool.  The bytes are found under the file lock;
 * they no longer change (sealed or frozen), and a pointer into a buffer
 * stays valid until this upload reports (a block is freed only once
 * stored, and sealed extents are never reallocated). */
static void
upload_fn(void *arg)
{
	struct upjob *u = arg;
	struct cache *c = u->c;
	struct cfile *f = u->f;
	struct builder *b = u->b;
	const uint8_t *data;
	uint8_t *tmp;
	uint32_t len;
	char key[256];
	int r;

	pthread_mutex_lock(&f->mu);
	job_target(u, key, sizeof(key), &data, &len, &tmp);
	pthread_mutex_unlock(&f->mu);
	r = cache_store_block(c, key, data, len);
	free(tmp);
	pthread_mutex_lock(&f->mu);
	if (u->pk != NULL) {
		pack_done(u->pk, r, key);
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
		cache_file_put(c, f);
		free(u);
		return;
	}
	if (u->run != NULL)
		u->run->st[u->idx] = r == 0 ? 2 : 0;
	else
		b->st0[u->idx] = r == 0 ? BLK_STORED : BLK_FAILED;
	if (r < 0) {
		/* Kept so that a full store answers NOSPC, not IO. */
		if (b->upload_err == 0)
			b->upload_err = r;
		tl_debug("cache", "upload of %s failed: %d", key, r);
	}
	b->inflight--;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	cache_file_put(c, f);
	free(u);
}

/* Submit collected jobs; called without f->mu (taking a file reference
 * needs c->lock, which comes before f->mu).  With here, the caller is
 * about to wait for them all (a flush): it runs the last job itself, so
 * a small file's single block costs no hand-off (two context switches
 * and a wakeup, more than writing 4 KiB to a local store). */
static void
submit_jobs(struct cache *c, struct cfile *f, struct jobv *jobs, bool here)
{
	size_t i, n = jobs->n;

	if (here && n > 0)
		n--;
	for (i = 0; i < jobs->n; i++) {
		cache_file_get(c, f->ino, false); /* held by the job */
		if (i < n)
			tl_pool_submit(c->up, upload_fn, jobs->v[i]);
		else
			upload_fn(jobs->v[i]);
	}
	free(jobs->v);
	*jobs = (struct jobv){NULL, 0, 0};
}

/* Copy [p, p + n) into b's blocks; returns the change in allocation. */
static int64_t
copy_in(struct cache *c, struct builder *b, uint32_t p, const uint8_t *buf,
	uint32_t n, bool whole)
{
	uint32_t rel, bi, boff, k, blen;
	int64_t delta = 0;
	bool stream;

	while (n > 0) {
		rel = p - b->start;
		bi = rel / c->bs;
		boff = rel % c->bs;
		blen = blk_len(c, b, bi);
		k = TL_MIN(n, blen - boff);
		delta += blk_reach(c, b, bi);
		stream = whole ||
			 (boff == 0 && bi > 0 &&
			 (b->start + bi * c->bs <= b->sealed_end ||
			  (b->blk[bi - 1].nx > 0 &&
			   b->blk[bi - 1].x[b->blk[bi - 1].nx - 1].hi ==
				   c->bs)));
		delta += ext_write(&b->blk[bi], blen, boff, boff + k, buf,
				   stream);
		p += k;
		buf += k;
		n -= k;
	}
	return delta;
}

/* Before the first seal fixes the slice's first byte (base), lay the
 * builder's blocks out again from that byte if they do not start there
 * (a builder begun mid-block, as after a flush): the slice's blocks are
 * then whole builder blocks, each one aligned buffer stored with no
 * copy (and O_DIRECT), instead of every upload copying bytes from two
 * builder blocks into an unaligned buffer.  One copy of what the
 * builder holds, once.  Returns the change in allocation. */
static int64_t
regrid(struct cache *c, struct builder *b)
{
	uint32_t s = b->iv[0].s, ostart = b->start, nold = b->nblk, i, j;
	struct bblock *old = b->blk;
	int64_t delta;

	if (b->id != 0 || s == ostart || b->iv[0].e - s < c->bs)
		return 0;
	delta = -(int64_t)(nold * sizeof(*old));
	b->blk = NULL;
	b->nblk = 0;
	b->start = s;
	for (i = 0; i < nold; i++) {
		for (j = 0; j < old[i].nx; j++) {
			const struct bext *e = &old[i].x[j];

			uint32_t p = ostart + i * c->bs + e->lo;

			/* Whole buffers for the run being sealed. */
			delta += copy_in(c, b, p, e->d, e->hi - e->lo,
					 p < b->iv[0].e);
		}
		delta -= block_free(&old[i]);
	}
	free(old);
	return delta;
}

/* Buffer [off, off+len).  *grown receives the change in bytes allocated
 * (the caller reserved len plus the slack and gives the rest back);
 * *chunk_full tells that a builder reached the end of its chunk. */
void
cache_file_write(struct cache *c, struct cfile *f, uint64_t off,
		 const uint8_t *buf, size_t len, int64_t *grown,
		 bool *chunk_full)
{
	struct jobv jobs = {NULL, 0, 0};
	struct builder *b;
	int64_t added = 0, nb;
	uint32_t chunk, p, n;

	*chunk_full = false;
	pthread_mutex_lock(&f->mu);
	while (len > 0) {
		chunk = (uint32_t)(off / META_CHUNK_SIZE);
		p = (uint32_t)(off % META_CHUNK_SIZE);
		n = (uint32_t)TL_MIN(len, META_CHUNK_SIZE - p);
		b = pick_builder(c, f, chunk, p, p + n);
		nb = 0;
		if (b == NULL) {
			b = builder_new(c, chunk, align_down(c, p));
			list_append(f, b);
			nb = b->bytes;
			b->bytes = 0;
		}
		nb += copy_in(c, b, p, buf, n, false);
		nb += ival_add(b, p, p + n);
		nb += regrid(c, b);
		b->bytes += nb;
		added += nb;
		seal_ready(c, f, b, &jobs);
		if (b->iv[0].e == META_CHUNK_SIZE)
			*chunk_full = true;
		off += n;
		buf += n;
		len -= n;
	}
	atomic_fetch_add(&f->bytes, (uint64_t)added);
	f->mtime_ns = tl_now_ns();
	pthread_mutex_unlock(&f->mu);
	submit_jobs(c, f, &jobs, false);
	*grown = added;
}

void
cache_file_overlay(struct cache *c, struct cfile *f, uint64_t off, uint64_t end,
		   uint8_t *buf)
{
	struct builder *b;
	uint64_t base, p, q;

	for (b = f->head; b != NULL; b = b->next) {
		base = (uint64_t)b->chunk * META_CHUNK_SIZE;
		p = TL_MAX(off, base + b->iv[0].s);
		q = TL_MIN(end, base + b->iv[b->niv - 1].e);
		if (p < q)
			builder_copy(c, b, (uint32_t)(p - base),
				     (uint32_t)(q - base), buf + (p - off));
	}
}

/* ---- flush ---------------------------------------------------------------- */

static bool
any_inflight(struct cfile *f, struct builder *last)
{
	struct builder *b;

	for (b = f->head; b != NULL; b = b->next) {
		if (b->inflight)
			return true;
		if (b == last)
			break;
	}
	return false;
}

/* Cut a frozen builder into its slices: one per run of written bytes,
 * each laid out from its first byte (so a slice holds only written
 * bytes).  The first run keeps the id its early uploads used: its first
 * byte was fixed when they began. */
static int
make_runs(struct cache *c, struct builder *b)
{
	struct run *runs = tl_calloc(b->niv, sizeof(*runs));
	size_t i, k;
	int r = 0;

	for (i = 0; i < b->niv; i++) {
		struct run *u = &runs[i];

		u->s = b->iv[i].s;
		u->e = b->iv[i].e;
		u->base = u->s;
		u->nblocks = (u->e - u->base + c->bs - 1) / c->bs;
		u->st = tl_calloc(u->nblocks, 1);
		if (i == 0 && b->id != 0) {
			u->id = b->id;
			for (k = 0; k < b->nsealed; k++)
				if (b->st0[k] == BLK_STORED)
					u->st[k] = 2;
		} else if ((r = meta_new_slice_id(c->m, &u->id)) < 0) {
			goto fail;
		}
	}
	b->runs = runs;
	b->nruns = b->niv;
	return 0;
fail:
	for (k = 0; k <= i; k++)
		free(runs[k].st);
	free(runs);
	return r;
}

/* Delete whatever of b reached the object store (the data is dropped). */
static void
delete_objects(struct cache *c, struct builder *b)
{
	char key[256];
	size_t i;
	uint32_t k;

	if (b->runs == NULL) {
		for (k = 0; k < b->nsealed; k++) {
			if (b->st0[k] != BLK_STORED)
				continue;
			cache_block_key(key, sizeof(key), c->volume, b->id, k,
					c->bs);
			cache_delete_block(c, key);
		}
		return;
	}
	for (i = 0; i < b->nruns; i++) {
		struct run *u = &b->runs[i];

		for (k = 0; k < u->nblocks && u->pack == NULL; k++) {
			if (u->st[k] != 2)
				continue;
			cache_block_key(key, sizeof(key), c->volume, u->id, k,
					TL_MIN(c->bs, u->e - u->base -
							      k * c->bs));
			cache_delete_block(c, key);
		}
	}
}

struct pcand {
	struct builder *b;
	struct run *r;
	size_t seq; /* list order: packs keep the members' write order */
};

static int
pcand_cmp(const void *a, const void *b)
{
	const struct pcand *x = a, *y = b;

	if (x->b->chunk != y->b->chunk)
		return x->b->chunk < y->b->chunk ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Pack cand[0..n) (one chunk, in write order) greedily into packs of at
 * most PACK_MAX bytes; a pack of a single run is left a plain run. */
static int
pack_chunk(struct cache *c, struct cfile *f, struct pcand *cand, size_t n)
{
	uint32_t max = TL_MIN(PACK_MAX, c->bs), len;
	size_t i = 0, j, k;
	struct pack *pk;
	int r;

	while (i < n) {
		uint32_t size = 0;

		for (j = i; j < n; j++) {
			len = cand[j].r->e - cand[j].r->s;
			if (size + len > max)
				break;
			size += len;
		}
		if (j - i < 2) {
			i = j > i ? j : i + 1;
			continue;
		}
		pk = tl_calloc(1, sizeof(*pk));
		r = meta_new_slice_id(c->m, &pk->id);
		if (r < 0) {
			free(pk);
			return r;
		}
		pk->size = size;
		pk->m = tl_calloc(j - i, sizeof(*pk->m));
		for (k = i, size = 0; k < j; k++) {
			struct run *u = cand[k].r;

			pk->m[pk->n++] = (struct pmember){cand[k].b, u};
			u->pack = pk;
			u->pack_off = size;
			size += u->e - u->s;
		}
		pk->next = f->packs;
		f->packs = pk;
		i = j;
	}
	return 0;
}

/* Pack the small runs of the frozen builders head..last that are not
 * stored nor packed yet (f->mu held). */
static int
pack_runs(struct cache *c, struct cfile *f, struct builder *last)
{
	struct pcand *cand = NULL;
	size_t n = 0, cap = 0, i, j;
	struct builder *b;
	int r = 0;

	for (b = f->head; b != NULL; b = b->next) {
		for (i = 0; i < b->nruns; i++) {
			struct run *u = &b->runs[i];

			if (u->pack != NULL || u->nblocks != 1 ||
			    u->st[0] != 0 || u->e - u->s > PACK_RUN ||
			    (i == 0 && b->id != 0))
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				cand = tl_realloc(cand, cap * sizeof(*cand));
			}
			cand[n] = (struct pcand){b, u, n};
			n++;
		}
		if (b == last)
			break;
	}
	if (n < 2)
		goto out;
	qsort(cand, n, sizeof(*cand), pcand_cmp);
	for (i = 0; r == 0 && i < n; i = j) {
		for (j = i + 1; j < n && cand[j].b->chunk == cand[i].b->chunk;
		     j++)
			;
		r = pack_chunk(c, f, cand + i, j - i);
	}
out:
	free(cand);
	return r;
}

/* Forget the file's packs, deleting the stored ones with del (f->mu
 * held; their builders are leaving). */
static void
packs_free(struct cache *c, struct cfile *f, bool del)
{
	struct pack *pk, *next;
	char key[256];

	for (pk = f->packs; pk != NULL; pk = next) {
		next = pk->next;
		if (del && pk->st == 2) {
			cache_block_key(key, sizeof(key), c->volume, pk->id, 0,
					pk->size);
			cache_delete_block(c, key);
		}
		free(pk->m);
		free(pk);
	}
	f->packs = NULL;
}

/* Unlink head..last from f (with f->mu held) and return the first. */
static struct builder *
detach(struct cfile *f, struct builder *last)
{
	struct builder *first = f->head;

	f->head = last->next;
	if (f->head)
		f->head->prev = NULL;
	else
		f->tail = NULL;
	last->next = NULL;
	return first;
}

/* Queue every pack and every block of the frozen builders not stored
 * yet. */
static void
collect_uploads(struct cache *c, struct cfile *f, struct builder *last,
		struct jobv *jobs)
{
	struct builder *b;
	struct upjob *u;
	size_t i;
	uint32_t k;

	struct pack *pk;

	for (pk = f->packs; pk != NULL; pk = pk->next) {
		if (pk->st != 0)
			continue;
		pk->st = 1;
		u = tl_malloc(sizeof(*u));
		*u = (struct upjob){.c = c, .f = f, .pk = pk};
		for (i = 0; i < pk->n; i++) {
			pk->m[i].r->st[0] = 1;
			pk->m[i].b->inflight++;
		}
		jobv_add(jobs, u);
	}
	for (b = f->head; b != NULL; b = b->next) {
		b->upload_err = 0;
		builder_mark(c, b);
		for (i = 0; i < b->nruns; i++)
			for (k = 0; k < b->runs[i].nblocks; k++)
				if (b->runs[i].st[k] == 0 &&
				    b->runs[i].pack == NULL) {
					b->runs[i].st[k] = 1;
					jobv_add(jobs, upjob_new(c, f, b,
								 &b->runs[i],
								 k));
				}
		if (b == last)
			break;
	}
}

/* Keys of objects to delete once f->mu is released. */
struct keyv {
	char **v;
	size_t n, cap;
};

static void
keyv_add(struct keyv *k, struct cache *c, uint64_t id, uint32_t idx,
	 uint32_t len)
{
	char key[256];

	cache_block_key(key, sizeof(key), c->volume, id, idx, len);
	if (k->n == k->cap) {
		k->cap = k->cap ? 2 * k->cap : 16;
		k->v = tl_realloc(k->v, k->cap * sizeof(*k->v));
	}
	k->v[k->n++] = tl_strdup(key);
}

/* Delete them (without f->mu) and free the list. */
static void
keyv_delete(struct cache *c, struct keyv *k)
{
	for (size_t i = 0; i < k->n; i++) {
		cache_delete_block(c, k->v[i]);
		free(k->v[i]);
	}
	free(k->v);
	*k = (struct keyv){NULL, 0, 0};
}

/* Whether what the frozen builders head..last stored must be stored
 * again before it is committed: a sync failed since (restore, set by
 * the flush that saw it fail, or a sync failure counted since the
 * builder's mark: anyone's), or it was stored too long ago. */
static bool
must_restore(struct cache *c, struct cfile *f, struct builder *last)
{
	uint64_t now = tl_mono_ns(), mark = cache_sync_mark(c);
	struct builder *b;

	for (b = f->head; b != NULL; b = b->next) {
		if (b->restore ||
		    (b->marked &&
		     (b->mark != mark || now - b->mark_ns > c->restore_ns)))
			return true;
		if (b == last)
			break;
	}
	return false;
}

/* Forget what the frozen builders head..last stored (f->mu held): every
 * run gets a fresh slice id and all its blocks are to be stored again,
 * packs are made again; the keys of what was stored go to *del.  Fresh
 * ids, not the old keys again: `tessera gc` may be deleting an old one
 * as a leak right now.  On failure (no id) nothing is stored and
 * restore stays set: the next flush does it again. */
static int
restore_runs(struct cache *c, struct cfile *f, struct builder *last,
	     struct keyv *del)
{
	struct builder *b;
	struct pack *pk;
	size_t i;
	uint32_t k;
	int r;

	for (pk = f->packs; pk != NULL; pk = pk->next)
		if (pk->st == 2)
			keyv_add(del, c, pk->id, 0, pk->size);
	for (b = f->head; b != NULL; b = b->next) {
		for (i = 0; i < b->nruns; i++) {
			struct run *u = &b->runs[i];

			for (k = 0; k < u->nblocks; k++) {
				if (u->st[k] == 2 && u->pack == NULL)
					keyv_add(del, c, u->id, k,
						 TL_MIN(c->bs, u->e - u->base -
								   k * c->bs));
				u->st[k] = 0;
			}
			u->pack = NULL;
		}
		b->marked = false;
		b->upload_err = 0;
		b->restore = true; /* until every run has its fresh id */
		if (b == last)
			break;
	}
	packs_free(c, f, false); /* no run points to them any more */
	for (b = f->head; b != NULL; b = b->next) {
		for (i = 0; i < b->nruns; i++)
			if ((r = meta_new_slice_id(c->m, &b->runs[i].id)) < 0)
				return r;
		if (b == last)
			break;
	}
	for (b = f->head; b != NULL; b = b->next) {
		b->restore = false;
		if (b == last)
			break;
	}
	return 0;
}

/* Whether ino is gone, as -ENOENT from meta_write_slices said.  A
 * write transaction may see a removal that is not committed yet (one
 * group commit, meta/kv_lmdb.c) and may still fail; a read sees only
 * what is committed, so it confirms the removal before the data goes.
 * Until it does, the data stays (the REMOVE's own cache_forget, or a
 * later flush, lets it go). */
static bool
file_gone(struct cache *c, uint64_t ino)
{
	struct meta_attr a;

	return meta_getattr(c->m, ino, &a) == -ENOENT;
}

/* All blocks stored: list the slice records (the buffers stay until
 * the commit). */
static int
stored_records(struct cache *c, struct cfile *f, struct builder *last,
	       struct meta_slice_write **out, size_t *nout)
{
	struct meta_slice_write *w = NULL;
	struct builder *b;
	size_t n = 0, cap = 0, i;
	uint32_t k;

	for (b = f->head; b != NULL; b = b->next) {
		for (i = 0; i < b->nruns; i++)
			for (k = 0; k < b->runs[i].nblocks; k++)
				if (b->runs[i].st[k] != 2)
					return b->upload_err ? b->upload_err
							     : -EIO;
		if (b == last)
			break;
	}
	for (b = f->head; b != NULL; b = b->next) {
		for (i = 0; i < b->nruns; i++) {
			struct run *u = &b->runs[i];

			if (n == cap) {
				cap = cap ? cap * 2 : 8;
				w = tl_realloc(w, cap * sizeof(*w));
			}
			w[n].chunk = b->chunk;
			w[n].s = (struct meta_slice){
				.id = u->id,
				.size = u->e - u->base,
				.off = u->s - u->base,
				.len = u->e - u->s,
				.pos = u->s,
			};
			if (u->pack != NULL) {
				w[n].s.id = u->pack->id;
				w[n].s.size = u->pack->size;
				w[n].s.off = u->pack_off;
			}
			n++;
		}
		if (b == last)
			break;
	}
	*out = w;
	*nout = n;
	return 0;
}

int
cache_file_flush(struct cache *c, struct cfile *f)
{
	struct jobv jobs = {NULL, 0, 0};
	struct keyv del = {NULL, 0, 0};
	struct meta_slice_write *w = NULL;
	struct builder *b, *last, *next;
	uint64_t mtime, mark = UINT64_MAX;
	size_t n = 0;
	bool unsynced = false, gone = false;
	int r = 0;

	pthread_mutex_lock(&f->mu);
	while (f->flushing)
		pthread_cond_wait(&f->cv, &f->mu);
	last = f->tail;
	if (last == NULL)
		goto unlock;
	f->flushing = true;
	for (b = f->head; b != last->next; b = b->next)
		b->frozen = true;
	while (any_inflight(f, last))
		pthread_cond_wait(&f->cv, &f->mu);
	for (b = f->head; b != last->next; b = b->next)
		if (b->runs == NULL && (r = make_runs(c, b)) < 0)
			goto out;
	if (must_restore(c, f, last) &&
	    (r = restore_runs(c, f, last, &del)) < 0)
		goto out;
	if ((r = pack_runs(c, f, last)) < 0)
		goto out;
	collect_uploads(c, f, last, &jobs);
	pthread_mutex_unlock(&f->mu);
	submit_jobs(c, f, &jobs, true);
	pthread_mutex_lock(&f->mu);
	while (any_inflight(f, last))
		pthread_cond_wait(&f->cv, &f->mu);
	r = stored_records(c, f, last, &w, &n);
	if (r < 0)
		goto out;
	for (b = f->head; b != last->next; b = b->next)
		mark = TL_MIN(mark, b->mark); /* all marked: collect_uploads */
	mtime = f->mtime_ns;
	pthread_mutex_unlock(&f->mu);
	/* Staged or stored blocks are durable by name before metadata
	 * names them, and none was lost to a failed sync meanwhile. */
	r = cache_sync(c, mark);
	unsynced = r < 0;
	if (r == 0) {
		uint32_t *recs = tl_malloc((n ? n : 1) * sizeof(*recs));

		r = meta_write_slices(c->m, f->ino, w, n, mtime, NULL, recs);
		for (size_t i = 0; r == 0 && i < n; i++)
			if (recs[i] >= c->compact_records &&
			    (i == 0 || w[i].chunk != w[i - 1].chunk))
				cache_compact_want(c, f->ino, w[i].chunk);
		free(recs);
		gone = r == -ENOENT && file_gone(c, f->ino);
	}
	pthread_mutex_lock(&f->mu);
	if (unsynced) {
		/* Some of the blocks may be gone and nothing tells which:
		 * all are stored again by the next flush. */
		tl_debug("cache", "inode %llu: sync failed (%s); its blocks "
			 "will be stored again", (unsigned long long)f->ino,
			 strerror(-r));
		for (b = f->head; b != last->next; b = b->next)
			b->restore = true;
	} else if (r == 0 || gone) {
		b = detach(f, last);
		f->gen++;
		packs_free(c, f, r < 0);
		pthread_mutex_unlock(&f->mu);
		for (; b != NULL; b = next) {
			next = b->next;
			if (r < 0)
				delete_objects(c, b);
			builder_free(c, f, b);
		}
		pthread_mutex_lock(&f->mu);
	}
out:
	f->flushing = false;
	pthread_cond_broadcast(&f->cv);
unlock:
	pthread_mutex_unlock(&f->mu);
	keyv_delete(c, &del);
	free(w);
	return r;
}

void
cache_file_drop(struct cache *c, struct cfile *f)
{
	struct builder *b, *last, *next;

	pthread_mutex_lock(&f->mu);
	while (f->flushing)
		pthread_cond_wait(&f->cv, &f->mu);
	last = f->tail;
	if (last == NULL)
		goto unlock;
	f->flushing = true;
	for (b = f->head; b != last->next; b = b->next)
		b->frozen = true;
	while (any_inflight(f, last))
		pthread_cond_wait(&f->cv, &f->mu);
	b = detach(f, last);
	f->gen++;
	packs_free(c, f, true);
	pthread_mutex_unlock(&f->mu);
	for (; b != NULL; b = next) {
		next = b->next;
		delete_objects(c, b);
		builder_free(c, f, b);
	}
	pthread_mutex_lock(&f->mu);
	f->flushing = false;
	pthread_cond_broadcast(&f->cv);
unlock:
	pthread_mutex_unlock(&f->mu);
}

/* End of the buffered data (0 if none) and the last write's time. */
uint64_t
cache_file_end(struct cfile *f, uint64_t *mtime_ns)
{
	struct builder *b;
	uint64_t end = 0;

	pthread_mutex_lock(&f->mu);
	for (b = f->head; b != NULL; b = b->next)
		end = TL_MAX(end, (uint64_t)b->chunk * META_CHUNK_SIZE +
					  b->iv[b->niv - 1].e);
	*mtime_ns = f->mtime_ns;
	pthread_mutex_unlock(&f->mu);
	return end;
}
