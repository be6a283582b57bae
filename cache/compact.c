/*
 * compact.c - data compaction: the small extents of a chunk, scattered
 * over many slices, are rewritten as one fresh slice.
 *
 * Random writes leave a chunk's visible bytes in many small extents of
 * many slices (packs of 4 KiB runs, say), and so do appends fsynced a
 * few KiB at a time (one slice each).  Compacting the record list
 * (meta/data.c) bounds the list, but a sequential read still fetches one
 * piece per extent, and a pack stays stored as long as one of its runs is
 * visible.  Two things queue a chunk (at most CACHE_COMPACT_QUEUE wait,
 * each once): a read that finds at least CACHE_COMPACT_SEGS data extents
 * in it, and a flush that leaves its list with at least compact_records
 * records (cache_opts; so chunks written and never read are compacted
 * too).  The background job (the gc thread, one chunk a round) builds the
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
 * copy stale, or fragment the chunk again at once.  Memory: one block.
 *
 * Because extents of COMPACT_KEEP and more stay, a chunk appended to in
 * small pieces is rewritten a few times (its merged slice doubles until
 * it reaches COMPACT_KEEP), not once per compaction.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache-internal.h"

/* Extents at least this big, of slices at least half visible, stay. */
#define COMPACT_KEEP (1u << 20)
/* The job leaves files written less than this long ago for later. */
#define COMPACT_QUIET_NS (3ULL * 1000000000ULL)

void
cache_compact_want(struct cache *c, uint64_t ino, uint32_t chunk)
{
	unsigned i;

	if (!c->gc_on)
		return;
	pthread_mutex_lock(&c->gc_mu);
	for (i = 0; i < c->ncq; i++)
		if (c->cq[i].ino == ino && c->cq[i].chunk == chunk)
			break;
	if (i == c->ncq && c->ncq < CACHE_COMPACT_QUEUE) {
		c->cq[c->ncq].ino = ino;
		c->cq[c->ncq++].chunk = chunk;
	}
	pthread_mutex_unlock(&c->gc_mu);
}

/* Fill block k (blen bytes) of the new slice: the data segments of seg
 * laid end to end. */
static int
fill_block(struct cache *c, const struct cache_seg *seg, size_t nseg,
	   uint64_t k, uint32_t blen, uint8_t *buf)
{
	uint64_t b0 = k * c->bs, b1 = b0 + blen, so = 0;
	struct piece *v = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	for (size_t i = 0; r == 0 && i < nseg && so < b1; i++) {
		uint64_t a, z;

		if (seg[i].id == 0)
			continue;
		a = TL_MAX(so, b0);
		z = TL_MIN(so + seg[i].len, b1);
		if (a < z)
			r = cache_plan_slice(c, seg[i].id, seg[i].size,
					     (uint32_t)(seg[i].off + (a - so)),
					     (uint32_t)(z - a), buf + (a - b0),
					     &v, &n, &cap);
		so += seg[i].len;
	}
	if (r == 0)
		r = cache_read_pieces(c, v, n, true);
	free(v);
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
cache_compact(struct cache *c, uint64_t ino, uint32_t chunk)
{
	struct meta_slice *old = NULL, *nw = NULL;
	struct cache_seg *seg = NULL, *mseg = NULL;
	struct vis *vis = NULL;
	size_t nold = 0, nseg = 0, nn = 0, nm = 0, nvis = 0, i;
	uint64_t total = 0, id = 0, k, nblocks = 0, stored = 0, mark;
	uint8_t *buf = NULL;
	struct cfile *f;
	char key[256];
	int r;

	f = cache_file_get(c, ino, false);
	if (f != NULL) {
		bool busy;

		pthread_mutex_lock(&f->mu);
		busy = f->head != NULL;
		pthread_mutex_unlock(&f->mu);
		cache_file_put(c, f);
		if (busy)
			return -EBUSY; /* its flush will change the chunk */
	}
	r = meta_read_chunk(c->m, ino, chunk, 0, (uint32_t)META_CHUNK_SIZE,
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
	r = meta_new_slice_id(c->m, &id);
	if (r < 0)
		goto out;
	nblocks = (total + c->bs - 1) / c->bs;
	mark = cache_sync_mark(c);
	if (posix_memalign((void **)&buf, 4096, c->bs) != 0)
		abort(); /* out of memory, as tl_malloc does */
	for (k = 0; r == 0 && k < nblocks; k++) {
		uint32_t blen = (uint32_t)TL_MIN(c->bs, total - k * c->bs);

		r = fill_block(c, mseg, nm, k, blen, buf);
		if (r == 0) {
			cache_block_key(key, sizeof(key), c->volume, id,
					(uint32_t)k, blen);
			r = cache_store_block(c, key, buf, blen);
		}
		if (r == 0)
			stored++;
	}
	/* Durable by name before the records name them (as a flush). */
	if (r == 0)
		r = cache_sync(c, mark);
	for (i = 0; r == 0 && i < nn; i++)
		if (nw[i].id == 0) {
			nw[i].id = id;
			nw[i].size = (uint32_t)total;
		}
	if (r == 0)
		r = meta_rewrite_chunk(c->m, ino, chunk, old, nold, nw, nn);
	if (r == 0) {
		atomic_fetch_add(&c->compacted, 1);
		tl_debug("cache", "inode %llu chunk %u: %zu records, %zu "
			 "extents merged into one slice; %zu records now",
			 (unsigned long long)ino, chunk, nold, nm, nn);
	}
out:
	if (r < 0)
		for (k = 0; k < stored; k++) {
			cache_block_key(key, sizeof(key), c->volume, id,
					(uint32_t)k,
					(uint32_t)TL_MIN(c->bs,
							 total - k * c->bs));
			cache_delete_block(c, key);
		}
	free(buf);
	free(nw);
	free(mseg);
	free(vis);
	free(seg);
	free(old);
	return r;
}

void
cache_compact_round(struct cache *c)
{
	struct meta_attr a;
	uint64_t ino;
	uint32_t chunk;
	int r;

	pthread_mutex_lock(&c->gc_mu);
	if (c->ncq == 0) {
		pthread_mutex_unlock(&c->gc_mu);
		return;
	}
	ino = c->cq[0].ino;
	chunk = c->cq[0].chunk;
	memmove(c->cq, c->cq + 1, --c->ncq * sizeof(c->cq[0]));
	pthread_mutex_unlock(&c->gc_mu);
	/* A file written in the last COMPACT_QUIET_NS (here or through
	 * another gateway) is left for later: its next writes would make
	 * the copy stale (-EAGAIN after all the work) or fragment it again. */
	if (meta_getattr(c->m, ino, &a) == 0 &&
	    tl_now_ns() < a.ctime_ns + COMPACT_QUIET_NS) {
		cache_compact_want(c, ino, chunk);
		return;
	}
	r = cache_compact(c, ino, chunk);
	if (r == -EBUSY)
		cache_compact_want(c, ino, chunk); /* later, at the end */
	else if (r < 0 && r != -EAGAIN && r != -ENOENT)
		tl_warn("cache", "compacting inode %llu chunk %u: %s",
			(unsigned long long)ino, chunk, strerror(-r));
}
