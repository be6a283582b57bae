/*
 * write.c - the write builders: buffered writes held per chunk in slice
 * builders, and the blocks they seal for early upload.
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
 * grow as writes extend them, so a 4 KiB write holds about 4 KiB; a
 * stream filling blocks, or a large write, gets a whole-block buffer
 * from the pool (bufpool.c) at once.  Each slice stores only its written
 * bytes, laid out from its first byte.  A slice block of the first run
 * is sealed as soon as the run covers it, and handed to the caller,
 * which has flush.c upload it in the background, so a COMMIT finds
 * little left to store.  Reads see buffered bytes through
 * cache_file_overlay, without a flush.
 *
 * A builder's buffers count against the buffer total (files.c) from the
 * write that allocates them until cache_builder_free, which flush.c
 * calls once the builder's slices are committed or its file is gone
 * (flush.c says why a stored block does not free its buffers).
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache/bufpool-internal.h"
#include "cache/files-internal.h"
#include "cache/blocks-internal.h"
#include "cache/write-internal.h"
#include "lib/tl.h"

/* Blocks that get whole-block buffers: large powers of two. */
#define WHOLE_MIN (1u << 20) /* smaller blocks: plain mallocs */

struct cache_writer {
	struct meta *m;           /* slice ids of sealed blocks */
	struct cache_files *ft;   /* the buffer total */
	struct cache_blocks *st;  /* sync marks */
	struct cache_bufpool *bp; /* whole-block buffers */
	uint32_t bs;
};

struct cache_writer *
cache_writer_open(struct meta *m, struct cache_files *ft,
		  struct cache_blocks *st, struct cache_bufpool *bp,
		  uint32_t block_size)
{
	struct cache_writer *wr = tl_calloc(1, sizeof(*wr));

	wr->m = m;
	wr->ft = ft;
	wr->st = st;
	wr->bp = bp;
	wr->bs = block_size;
	return wr;
}

void
cache_writer_close(struct cache_writer *wr)
{
	free(wr);
}

void
cache_sealv_free(struct cache_sealv *v)
{
	free(v->v);
	*v = (struct cache_sealv){NULL, 0, 0};
}

static void
sealv_add(struct cache_sealv *v, struct builder *b, uint32_t idx)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 8;
		v->v = tl_realloc(v->v, v->cap * sizeof(*v->v));
	}
	v->v[v->n++] = (struct cache_sealed){b, idx};
}

static bool
whole_kind(uint32_t size)
{
	return size >= WHOLE_MIN && (size & (size - 1)) == 0;
}

static void
ext_free(struct cache_writer *wr, struct bext *e)
{
	if (e->base != NULL)
		cache_buf_put(wr->bp, e->base, e->cap);
	else
		free(e->d);
}

static uint32_t
align_down(const struct cache_writer *wr, uint32_t pos)
{
	return pos & ~(wr->bs - 1);
}

/* Bookkeeping a builder allocates besides its buffers. */
static int64_t
builder_overhead(uint32_t nblk)
{
	return (int64_t)(sizeof(struct builder) + nblk * sizeof(struct bblock));
}

uint64_t
cache_writer_slack(const struct cache_writer *wr)
{
	/* Two partial blocks may grow by a block each; a write crossing a
	 * chunk boundary may start two builders. */
	return 2 * (uint64_t)wr->bs +
	       2 * (uint64_t)builder_overhead(META_CHUNK_SIZE / wr->bs + 1) +
	       4096;
}

static struct builder *
builder_new(uint32_t chunk, uint32_t start)
{
	struct builder *b = tl_calloc(1, sizeof(*b));

	b->chunk = chunk;
	b->start = start;
	b->bytes = builder_overhead(0);
	return b;
}

/* Make room for block i in the block table (it grows as writes reach
 * further); returns the bytes added. */
static int64_t
blk_reach(struct cache_writer *wr, struct builder *b, uint32_t i)
{
	uint32_t max = (uint32_t)((META_CHUNK_SIZE - b->start + wr->bs - 1) /
				  wr->bs),
		 n;

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
block_free(struct cache_writer *wr, struct bblock *k)
{
	int64_t n = (int64_t)(k->cx * sizeof(*k->x));
	uint32_t i;

	for (i = 0; i < k->nx; i++) {
		n += k->x[i].cap;
		ext_free(wr, &k->x[i]);
	}
	free(k->x);
	k->x = NULL;
	k->nx = k->cx = 0;
	return n;
}

/* Give n bytes of the builder's count back to the file and the total. */
static void
builder_release(struct cache_writer *wr, struct cfile *f, struct builder *b,
		int64_t n)
{
	if (n <= 0)
		return;
	b->bytes -= n;
	atomic_fetch_sub(&f->bytes, (uint64_t)n);
	cache_space_release(wr->ft, (uint64_t)n);
}

/* Release the builder's buffers and its share of the buffer total. */
static void
builder_drop_data(struct cache_writer *wr, struct cfile *f, struct builder *b)
{
	uint32_t i;

	for (i = 0; i < b->nblk; i++)
		block_free(wr, &b->blk[i]);
	builder_release(wr, f, b, b->bytes);
}

void
cache_builder_free(struct cache_writer *wr, struct cfile *f, struct builder *b)
{
	builder_drop_data(wr, f, b);
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
ext_write(struct cache_writer *wr, struct bblock *k, uint32_t blen, uint32_t a,
	  uint32_t z, const uint8_t *src, bool stream)
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
		if (whole_kind(blen) && (stream || z - a >= blen / 4)) {
			uint8_t *base = cache_buf_get(wr->bp, blen);

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
		ext_free(wr, &k->x[t]);
	}
	e->hi = hi;
	memcpy(e->d + (a - lo), src, z - a);
	memmove(k->x + i + 1, k->x + j, (k->nx - j) * sizeof(*k->x));
	k->nx -= j - i - 1;
	return delta + e->cap;
}

/* Length of builder block i (the last one may end at the chunk's end). */
static uint32_t
blk_len(const struct cache_writer *wr, const struct builder *b, uint32_t i)
{
	uint32_t s = b->start + i * wr->bs;

	return (uint32_t)TL_MIN((uint64_t)wr->bs, META_CHUNK_SIZE - s);
}

/* Copy the builder's bytes of chunk range [p, q) that it holds into dst
 * (dst[0] is position p); what it does not hold is left alone. */
void
cache_builder_copy(struct cache_writer *wr, struct builder *b, uint32_t p,
		   uint32_t q, uint8_t *dst)
{
	uint32_t i, last, j, bs0, lo, hi;
	const struct bext *e;

	if (q <= b->start || p >= q)
		return;
	p = TL_MAX(p, b->start);
	i = (p - b->start) / wr->bs;
	last = (q - 1 - b->start) / wr->bs;
	for (; i <= last && i < b->nblk; i++) {
		bs0 = b->start + i * wr->bs;
		for (j = 0; j < b->blk[i].nx; j++) {
			e = &b->blk[i].x[j];
			lo = TL_MAX(p, bs0 + e->lo);
			hi = TL_MIN(q, bs0 + e->hi);
			if (lo < hi)
				memcpy(dst + (lo - p),
				       e->d + (lo - bs0 - e->lo), hi - lo);
		}
	}
}

/* The bytes of chunk range [p, p + n), all written: a pointer into the
 * extent holding them all when there is one and it cannot move (the
 * builder is frozen or the block is sealed), else a copy in *tmp. */
const uint8_t *
cache_builder_bytes(struct cache_writer *wr, struct builder *b, uint32_t p,
		    uint32_t n, uint8_t **tmp)
{
	uint32_t i = (p - b->start) / wr->bs, bs0 = b->start + i * wr->bs, j;
	const struct bext *e;

	*tmp = NULL;
	if ((b->frozen || bs0 + blk_len(wr, b, i) <= b->sealed_end) &&
	    p - bs0 + n <= blk_len(wr, b, i)) {
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
	cache_builder_copy(wr, b, p, p + n, *tmp);
	return *tmp;
}

/* May [p, q) go into b?  Not below its start, nor into sealed bytes. */
static bool
fits(struct builder *b, uint32_t p)
{
	return !b->frozen && p >= b->start && p >= b->sealed_end;
}

static struct builder *
pick_builder(struct cfile *f, uint32_t chunk, uint32_t p, uint32_t q)
{
	struct builder *b;
	uint32_t lo, hi;

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

void
cache_builder_mark(struct cache_writer *wr, struct builder *b)
{
	if (b->marked)
		return;
	b->marked = true;
	b->mark = cache_blocks_mark(wr->st);
	b->mark_ns = tl_mono_ns();
}

/* Seal and queue the slice blocks the first run now covers completely.
 * The first seal fixes the slice's first byte (base). */
static void
seal_ready(struct cache_writer *wr, struct builder *b,
	   struct cache_sealv *sealed)
{
	uint32_t end = b->iv[0].e, base = b->id ? b->base : b->iv[0].s;

	while (base + (uint64_t)(b->nsealed + 1) * wr->bs <= end) {
		if (b->id == 0) {
			if (meta_new_slice_id(wr->m, &b->id) < 0) {
				b->id = 0;
				return; /* the flush will allocate and upload */
			}
			b->base = base;
			b->nst0 = (META_CHUNK_SIZE - base) / wr->bs;
			b->st0 = tl_calloc(b->nst0, 1);
		}
		b->st0[b->nsealed] = BLK_UPLOADING;
		cache_builder_mark(wr, b);
		b->inflight++; /* until its upload reports (flush.c) */
		sealv_add(sealed, b, b->nsealed);
		b->nsealed++;
		b->sealed_end = base + b->nsealed * wr->bs;
	}
}

/* Copy [p, p + n) into b's blocks; returns the change in allocation. */
static int64_t
copy_in(struct cache_writer *wr, struct builder *b, uint32_t p,
	const uint8_t *buf, uint32_t n, bool whole)
{
	uint32_t rel, bi, boff, k, blen;
	int64_t delta = 0;
	bool stream;

	while (n > 0) {
		rel = p - b->start;
		bi = rel / wr->bs;
		boff = rel % wr->bs;
		blen = blk_len(wr, b, bi);
		k = TL_MIN(n, blen - boff);
		delta += blk_reach(wr, b, bi);
		stream = whole ||
			 (boff == 0 && bi > 0 &&
			  (b->start + bi * wr->bs <= b->sealed_end ||
			   (b->blk[bi - 1].nx > 0 &&
			    b->blk[bi - 1].x[b->blk[bi - 1].nx - 1].hi ==
				    wr->bs)));
		delta += ext_write(wr, &b->blk[bi], blen, boff, boff + k, buf,
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
regrid(struct cache_writer *wr, struct builder *b)
{
	uint32_t s = b->iv[0].s, ostart = b->start, nold = b->nblk, i, j;
	struct bblock *old = b->blk;
	int64_t delta;

	if (b->id != 0 || s == ostart || b->iv[0].e - s < wr->bs)
		return 0;
	delta = -(int64_t)(nold * sizeof(*old));
	b->blk = NULL;
	b->nblk = 0;
	b->start = s;
	for (i = 0; i < nold; i++) {
		for (j = 0; j < old[i].nx; j++) {
			const struct bext *e = &old[i].x[j];

			uint32_t p = ostart + i * wr->bs + e->lo;

			/* Whole buffers for the run being sealed. */
			delta += copy_in(wr, b, p, e->d, e->hi - e->lo,
					 p < b->iv[0].e);
		}
		delta -= block_free(wr, &old[i]);
	}
	free(old);
	return delta;
}

void
cache_file_write(struct cache_writer *wr, struct cfile *f, uint64_t off,
		 const uint8_t *buf, size_t len, int64_t *grown,
		 bool *chunk_full, struct cache_sealv *sealed)
{
	uint64_t wend = off + len;
	struct builder *b;
	int64_t added = 0, nb;
	uint32_t chunk, p, n;

	*chunk_full = false;
	pthread_mutex_lock(&f->mu);
	while (len > 0) {
		chunk = (uint32_t)(off / META_CHUNK_SIZE);
		p = (uint32_t)(off % META_CHUNK_SIZE);
		n = (uint32_t)TL_MIN(len, META_CHUNK_SIZE - p);
		b = pick_builder(f, chunk, p, p + n);
		nb = 0;
		if (b == NULL) {
			b = builder_new(chunk, align_down(wr, p));
			list_append(f, b);
			nb = b->bytes;
			b->bytes = 0;
		}
		nb += copy_in(wr, b, p, buf, n, false);
		nb += ival_add(b, p, p + n);
		nb += regrid(wr, b);
		b->bytes += nb;
		added += nb;
		seal_ready(wr, b, sealed);
		if (b->iv[0].e == META_CHUNK_SIZE)
			*chunk_full = true;
		off += n;
		buf += n;
		len -= n;
	}
	atomic_fetch_add(&f->bytes, (uint64_t)added);
	f->mtime_ns = tl_now_ns();
	f->end = TL_MAX(f->end, wend);
	pthread_mutex_unlock(&f->mu);
	*grown = added;
}

void
cache_file_overlay(struct cache_writer *wr, struct cfile *f, uint64_t off,
		   uint64_t end, uint8_t *buf)
{
	struct builder *b;
	uint64_t base, p, q;

	for (b = f->head; b != NULL; b = b->next) {
		base = (uint64_t)b->chunk * META_CHUNK_SIZE;
		p = TL_MAX(off, base + b->iv[0].s);
		q = TL_MIN(end, base + b->iv[b->niv - 1].e);
		if (p < q)
			cache_builder_copy(wr, b, (uint32_t)(p - base),
					   (uint32_t)(q - base),
					   buf + (p - off));
	}
}

uint64_t
cache_file_end(struct cfile *f, uint64_t *mtime_ns)
{
	uint64_t end;

	pthread_mutex_lock(&f->mu);
	end = f->end;
	*mtime_ns = f->mtime_ns;
	pthread_mutex_unlock(&f->mu);
	return end;
}

void
cache_file_reend(struct cfile *f)
{
	struct builder *b;
	uint64_t end = 0;

	for (b = f->head; b != NULL; b = b->next)
		end = TL_MAX(end, (uint64_t)b->chunk * META_CHUNK_SIZE +
					  b->iv[b->niv - 1].e);
	f->end = end;
}
