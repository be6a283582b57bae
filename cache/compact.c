/*
 * compact.c - data compaction: a chunk whose bytes are scattered over
 * many small slices is rewritten as one fresh slice.
 *
 * Random writes leave a chunk's visible bytes in many small extents of
 * many slices (packs of 4 KiB runs, say).  Compacting the record list
 * (meta/data.c) bounds the list, but a sequential read still fetches one
 * piece per extent, and a pack stays stored as long as one of its runs is
 * visible.  A read that finds at least CACHE_COMPACT_SEGS extents in one
 * chunk queues the chunk; the background job (the gc thread, one chunk a
 * round) reads the chunk's visible bytes block by block through the
 * cache, stores them as one slice (holes are not stored: one record per
 * run of data), and swaps the records in one transaction that checks the
 * chunk did not change meanwhile (meta_rewrite_chunk).  If it did, or
 * the file has buffered writes in this gateway, the work is dropped (the
 * new objects deleted) and a later read queues the chunk again.  The old
 * slices are released after the grace period, so reads in flight that
 * planned with the old records still find them.  Memory: one block.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache-internal.h"

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

int
cache_compact(struct cache *c, uint64_t ino, uint32_t chunk)
{
	struct meta_slice *old = NULL, *nw = NULL;
	struct cache_seg *seg = NULL;
	size_t nold = 0, nseg = 0, nn = 0, ndata = 0, i;
	uint64_t total = 0, id = 0, k, nblocks = 0, stored = 0;
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
	nw = tl_malloc((nseg ? nseg : 1) * sizeof(*nw));
	for (i = 0; i < nseg; i++) {
		if (seg[i].id == 0)
			continue;
		ndata++;
		if (nn > 0 && nw[nn - 1].pos + nw[nn - 1].len == seg[i].pos)
			nw[nn - 1].len += seg[i].len;
		else
			nw[nn++] = (struct meta_slice){0, 0, (uint32_t)total,
						       seg[i].len, seg[i].pos};
		total += seg[i].len;
	}
	if (ndata < CACHE_COMPACT_SEGS) {
		r = 0; /* not fragmented (any more) */
		goto out;
	}
	r = meta_new_slice_id(c->m, &id);
	if (r < 0)
		goto out;
	nblocks = (total + c->bs - 1) / c->bs;
	if (posix_memalign((void **)&buf, 4096, c->bs) != 0)
		abort(); /* out of memory, as tl_malloc does */
	for (k = 0; r == 0 && k < nblocks; k++) {
		uint32_t blen = (uint32_t)TL_MIN(c->bs, total - k * c->bs);

		r = fill_block(c, seg, nseg, k, blen, buf);
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
		r = cache_wb_sync(c);
	if (r == 0 && c->os_defer)
		r = os_sync(c->os);
	for (i = 0; r == 0 && i < nn; i++) {
		nw[i].id = id;
		nw[i].size = (uint32_t)total;
	}
	if (r == 0)
		r = meta_rewrite_chunk(c->m, ino, chunk, old, nold, nw, nn);
	if (r == 0) {
		atomic_fetch_add(&c->compacted, 1);
		tl_debug("cache", "inode %llu chunk %u: %zu records into one "
			 "slice of %zu extents",
			 (unsigned long long)ino, chunk, nold, nn);
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
	free(seg);
	free(old);
	return r;
}

void
cache_compact_round(struct cache *c)
{
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
	r = cache_compact(c, ino, chunk);
	if (r < 0 && r != -EBUSY && r != -EAGAIN && r != -ENOENT)
		tl_warn("cache", "compacting inode %llu chunk %u: %s",
			(unsigned long long)ino, chunk, strerror(-r));
}
