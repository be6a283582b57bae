/*
 * compact.c - data compaction: the small extents of a chunk, scattered
 * over many slices, are rewritten as one fresh slice.
 *
 * Random writes leave a chunk's visible bytes in many small extents of
 * many slices (packs of 4 KiB runs, say), and so do appends fsynced a
 * few KiB at a time (one slice each).  Compacting the record list
 * (meta/data.c) bounds the list, but a sequential read still fetches one
 * piece per extent, and a pack stays stored as long as one of its runs is
 * visible.  Two things queue a chunk (at most COMPACT_QUEUE wait, each
 * once): a read that finds at least CACHE_COMPACT_SEGS data extents in
 * it (plan.c reports them), and a flush that leaves its list with at
 * least compact_records records (cache_opts; so chunks written and never
 * read are compacted too).  The background job (the gc thread, gc.c:
 * one chunk a round, cache_compact_round) builds the
 * chunk's view and keeps in place every extent that is big (at least
 * COMPACT_KEEP) and whose slice is at least half visible in the chunk:
 * copying it would cost much and free little.  If at least
 * CACHE_COMPACT_SEGS extents remain, it reads them block by block
 * through the cache, stores them end to end as one slice (holes are not
 * stored: one record per run of data), and swaps the records in one
 * transaction that checks the chunk did not change meanwhile
 * (meta_rewrite_chunk).  If it did, the work is dropped (the new objects
 * deleted) and a later write or read queues the chunk again; if the file
 * has buffered writes in this gateway, the chunk goes back to the end of
 * the queue, untouched.  Old slices no record names any more are
 * released after the grace period, so reads in flight that planned with
 * the old records still find them.  The job waits until a file has not
 * been written for COMPACT_QUIET_NS: one being written would make the
 * copy stale, or fragment the chunk again at once.  Memory: one block
 * (from the pool of whole-block buffers, bufpool.c).
 *
 * Because extents of COMPACT_KEEP and more stay, a chunk appended to in
 * small pieces is rewritten a few times (its merged slice doubles until
 * it reaches COMPACT_KEEP), not once per compaction.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cache/bufpool-internal.h"
#include "cache/cache.h"
#include "cache/compact-internal.h"
#include "cache/files-internal.h"
#include "cache/plan-internal.h"
#include "cache/blocks-internal.h"
#include "lib/tl.h"

/* Extents at least this big, of slices at least half visible, stay. */
#define COMPACT_KEEP (1u << 20)
/* The job leaves files written less than this long ago for later. */
#define COMPACT_QUIET_NS (3ULL * 1000000000ULL)
/* Chunks waiting. */
#define COMPACT_QUEUE 16

struct cache_compactor {
	struct meta *m;
	struct cache_files *ft;   /* whether a file has buffered writes */
	struct cache_planner *pl; /* reads of the old extents */
	struct cache_blocks *st;  /* the new slice's blocks */
	struct cache_bufpool *bp; /* the block being filled */
	uint32_t bs;
	bool on; /* a job runs rounds: queue chunks */
	pthread_mutex_t mu;
	struct {
		uint64_t ino;
		uint32_t chunk;
	} q[COMPACT_QUEUE];
	unsigned nq;
	_Atomic uint64_t compacted; /* chunks rewritten */
};

struct cache_compactor *
cache_compactor_open(struct meta *m, struct cache_files *ft,
		     struct cache_planner *pl, struct cache_blocks *st,
		     struct cache_bufpool *bp, uint32_t block_size, bool on)
{
	struct cache_compactor *cp = tl_calloc(1, sizeof(*cp));

	cp->m = m;
	cp->ft = ft;
	cp->pl = pl;
	cp->st = st;
	cp->bp = bp;
	cp->bs = block_size;
	cp->on = on;
	pthread_mutex_init(&cp->mu, NULL);
	atomic_init(&cp->compacted, 0);
	return cp;
}

void
cache_compactor_close(struct cache_compactor *cp)
{
	if (cp == NULL)
		return;
	pthread_mutex_destroy(&cp->mu);
	free(cp);
}

uint64_t
cache_compacted(struct cache_compactor *cp)
{
	return atomic_load(&cp->compacted);
}

unsigned
cache_compact_queued(struct cache_compactor *cp)
{
	unsigned n;

	pthread_mutex_lock(&cp->mu);
	n = cp->nq;
	pthread_mutex_unlock(&cp->mu);
	return n;
}

void
cache_compact_want(struct cache_compactor *cp, uint64_t ino, uint32_t chunk)
{
	unsigned i;

	if (!cp->on)
		return;
	pthread_mutex_lock(&cp->mu);
	for (i = 0; i < cp->nq; i++)
		if (cp->q[i].ino == ino && cp->q[i].chunk == chunk)
			break;
	if (i == cp->nq && cp->nq < COMPACT_QUEUE) {
		cp->q[cp->nq].ino = ino;
		cp->q[cp->nq++].chunk = chunk;
	}
	pthread_mutex_unlock(&cp->mu);
}

void
cache_compact_forget(struct cache_compactor *cp)
{
	pthread_mutex_lock(&cp->mu);
	cp->nq = 0;
	pthread_mutex_unlock(&cp->mu);
}

/* Fill block k (blen bytes) of the new slice: the data segments of seg
 * laid end to end. */
static int
fill_block(struct cache_compactor *cp, const struct cache_seg *seg, size_t nseg,
	   uint64_t k, uint32_t blen, uint8_t *buf)
{
	uint64_t b0 = k * cp->bs, b1 = b0 + blen, so = 0;
	struct cache_plan plan = {0};
	int r = 0;

	for (size_t i = 0; r == 0 && i < nseg && so < b1; i++) {
		uint64_t a, z;

		if (seg[i].id == 0)
			continue;
		a = TL_MAX(so, b0);
		z = TL_MIN(so + seg[i].len, b1);
		if (a < z)
			r = cache_plan_slice(cp->pl, seg[i].id, seg[i].size,
					     (uint32_t)(seg[i].off + (a - so)),
					     (uint32_t)(z - a), a - b0, &plan);
		so += seg[i].len;
	}
	if (r == 0)
		r = cache_plan_read(cp->pl, &plan, buf, true);
	cache_plan_free(&plan);
	return r;
}

struct vis {
	uint64_t id;
	uint64_t bytes; /* visible in the chunk */
	uint32_t size;
};

static int
cmp_vis(const void *a, const void *b)
{
	const struct vis *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->size < y->size ? -1 : x->size > y->size;
}

/* Whether seg[i] stays where it is (see the top): v[0..nv) holds the
 * visible bytes of every slice, sorted. */
static bool
keep_seg(const struct cache_seg *s, const struct vis *v, size_t nv)
{
	struct vis k = {s->id, 0, s->size}, *f;

	if (s->len < COMPACT_KEEP)
		return false;
	f = bsearch(&k, v, nv, sizeof(*v), cmp_vis);
	return f != NULL && 2 * f->bytes >= f->size;
}

/* The visible bytes of each slice of seg[0..nseg), sorted by slice. */
static struct vis *
slice_visibility(const struct cache_seg *seg, size_t nseg, size_t *nv)
{
	struct vis *v = tl_malloc((nseg ? nseg : 1) * sizeof(*v));
	size_t n = 0, k = 0;

	for (size_t i = 0; i < nseg; i++)
		if (seg[i].id != 0)
			v[n++] = (struct vis){seg[i].id, seg[i].len,
					      seg[i].size};
	qsort(v, n, sizeof(*v), cmp_vis);
	for (size_t i = 0; i < n; i++) {
		if (k > 0 && cmp_vis(&v[k - 1], &v[i]) == 0)
			v[k - 1].bytes += v[i].bytes;
		else
			v[k++] = v[i];
	}
	*nv = k;
	return v;
}

int
cache_compact_chunk(struct cache_compactor *cp, uint64_t ino, uint32_t chunk)
{
	struct meta_slice *old = NULL, *nw = NULL;
	struct cache_seg *seg = NULL, *mseg = NULL;
	struct vis *vis = NULL;
	size_t nold = 0, nseg = 0, nn = 0, nm = 0, nvis = 0, i;
	uint64_t total = 0, id = 0, k, nblocks = 0, stored = 0, mark;
	uint8_t *buf = NULL;
	struct cfile *f;
	int r;

	f = cache_file_get(cp->ft, ino, false);
	if (f != NULL) {
		bool busy;

		pthread_mutex_lock(&f->mu);
		busy = f->head != NULL;
		pthread_mutex_unlock(&f->mu);
		cache_file_put(cp->ft, f);
		if (busy)
			return -EBUSY; /* its flush will change the chunk */
	}
	r = meta_read_chunk(cp->m, ino, chunk, 0, (uint32_t)META_CHUNK_SIZE,
			    &old, &nold);
	if (r == 0)
		r = cache_view_build(old, nold, 0, (uint32_t)META_CHUNK_SIZE,
				     &seg, &nseg);
	if (r < 0)
		goto out;
	vis = slice_visibility(seg, nseg, &nvis);
	nw = tl_malloc((nseg ? nseg : 1) * sizeof(*nw));
	mseg = tl_malloc((nseg ? nseg : 1) * sizeof(*mseg));
	for (i = 0; i < nseg; i++) {
		const struct cache_seg *s = &seg[i];

		if (s->id == 0)
			continue;
		if (keep_seg(s, vis, nvis)) {
			nw[nn++] = (struct meta_slice){s->id, s->size, s->off,
						       s->len, s->pos};
			continue;
		}
		mseg[nm++] = *s;
		/* Merged records have id 0 until the slice exists. */
		if (nn > 0 && nw[nn - 1].id == 0 &&
		    nw[nn - 1].pos + nw[nn - 1].len == s->pos)
			nw[nn - 1].len += s->len;
		else
			nw[nn++] = (struct meta_slice){0, 0, (uint32_t)total,
						       s->len, s->pos};
		total += s->len;
	}
	if (nm < CACHE_COMPACT_SEGS) {
		r = 0; /* not fragmented (any more) */
		goto out;
	}
	r = meta_new_slice_id(cp->m, &id);
	if (r < 0)
		goto out;
	nblocks = (total + cp->bs - 1) / cp->bs;
	mark = cache_blocks_mark(cp->st);
	buf = cache_buf_get(cp->bp, cp->bs);
	for (k = 0; r == 0 && k < nblocks; k++) {
		uint32_t blen = (uint32_t)TL_MIN(cp->bs, total - k * cp->bs);

		r = fill_block(cp, mseg, nm, k, blen, buf);
		if (r == 0)
			r = cache_blocks_put(cp->st, id, (uint32_t)k, buf,
					     blen);
		if (r == 0)
			stored++;
	}
	/* Durable by name before the records name them (as a flush). */
	if (r == 0)
		r = cache_blocks_sync(cp->st, mark);
	for (i = 0; r == 0 && i < nn; i++)
		if (nw[i].id == 0) {
			nw[i].id = id;
			nw[i].size = (uint32_t)total;
		}
	if (r == 0)
		r = meta_rewrite_chunk(cp->m, ino, chunk, old, nold, nw, nn);
	if (r == 0) {
		atomic_fetch_add(&cp->compacted, 1);
		tl_debug("cache",
			 "inode %llu chunk %u: %zu records, %zu "
			 "extents merged into one slice; %zu records now",
			 (unsigned long long)ino, chunk, nold, nm, nn);
	}
out:
	for (k = 0; r < 0 && k < stored; k++) {
		uint64_t blen = TL_MIN(cp->bs, total - k * cp->bs);

		cache_blocks_delete(cp->st, id, (uint32_t)k, (uint32_t)blen);
	}
	cache_buf_put(cp->bp, buf, cp->bs);
	free(nw);
	free(mseg);
	free(vis);
	free(seg);
	free(old);
	return r;
}

void
cache_compact_round(struct cache_compactor *cp)
{
	struct meta_attr a;
	uint64_t ino;
	uint32_t chunk;
	int r;

	pthread_mutex_lock(&cp->mu);
	if (cp->nq == 0) {
		pthread_mutex_unlock(&cp->mu);
		return;
	}
	ino = cp->q[0].ino;
	chunk = cp->q[0].chunk;
	memmove(cp->q, cp->q + 1, --cp->nq * sizeof(cp->q[0]));
	pthread_mutex_unlock(&cp->mu);
	/* A file written in the last COMPACT_QUIET_NS (here or through
	 * another gateway) is left for later: its next writes would make
	 * the copy stale (-EAGAIN after all the work) or fragment it again. */
	if (meta_getattr(cp->m, ino, &a) == 0 &&
	    tl_now_ns() < a.ctime_ns + COMPACT_QUIET_NS) {
		cache_compact_want(cp, ino, chunk);
		return;
	}
	r = cache_compact_chunk(cp, ino, chunk);
	if (r == -EBUSY)
		cache_compact_want(cp, ino, chunk); /* later, at the end */
	else if (r < 0 && r != -EAGAIN && r != -ENOENT)
		tl_warn("cache", "compacting inode %llu chunk %u: %s",
			(unsigned long long)ino, chunk, strerror(-r));
}
