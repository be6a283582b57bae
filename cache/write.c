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
 * A block of the first run is sealed and uploaded in the background as
 * soon as the run covers it, so a COMMIT finds little left to store.
 *
 * Flush freezes the file's builders, stores every block not yet stored
 * (in parallel on the upload pool), then commits all their slices with
 * one meta_write_slices call: a block is always stored before the
 * metadata that refers to it.  A failed upload leaves the builders
 * frozen and buffered so the next flush retries; -ENOENT from meta (the
 * file is gone) deletes what was uploaded and drops the data.
 */
#include "config.h"

#include <errno.h>
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
};

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

static uint32_t
align_down(struct cache *c, uint32_t pos)
{
	return pos & ~(c->bs - 1);
}

static struct builder *
builder_new(struct cache *c, uint32_t chunk, uint32_t start)
{
	struct builder *b = tl_calloc(1, sizeof(*b));

	b->chunk = chunk;
	b->start = start;
	b->nblk = (uint32_t)((META_CHUNK_SIZE - start + c->bs - 1) / c->bs);
	b->blk = tl_calloc(b->nblk, sizeof(*b->blk));
	return b;
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

/* Release the builder's buffers and its share of the buffer total. */
static void
builder_drop_data(struct cache *c, struct cfile *f, struct builder *b)
{
	uint32_t i;

	for (i = 0; i < b->nblk; i++) {
		free(b->blk[i].data);
		b->blk[i].data = NULL;
	}
	if (b->bytes) {
		atomic_fetch_sub(&f->bytes, b->bytes);
		cache_space_release(c, b->bytes);
		b->bytes = 0;
	}
}

static void
builder_free(struct cache *c, struct cfile *f, struct builder *b)
{
	size_t i;

	builder_drop_data(c, f, b);
	for (i = 0; i < b->nruns; i++)
		free(b->runs[i].st);
	free(b->runs);
	free(b->blk);
	free(b->iv);
	free(b);
}

/* Add [s, e) to the written ranges; returns how many bytes are new. */
static uint32_t
ival_add(struct builder *b, uint32_t s, uint32_t e)
{
	size_t i = 0, j;
	uint32_t covered = 0, ns = s, ne = e;

	while (i < b->niv && b->iv[i].e < s)
		i++;
	for (j = i; j < b->niv && b->iv[j].s <= e; j++) {
		if (b->iv[j].e > s && b->iv[j].s < e)
			covered += TL_MIN(e, b->iv[j].e) -
				   TL_MAX(s, b->iv[j].s);
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
	return (e - s) - covered;
}

/* Are all blocks that [p, q) touches still open for writes? */
static bool
blocks_open(struct cache *c, struct builder *b, uint32_t p, uint32_t q)
{
	uint32_t i = (p - b->start) / c->bs, last = (q - 1 - b->start) / c->bs;

	for (; i <= last; i++)
		if (b->blk[i].state != BLK_FILL)
			return false;
	return true;
}

static struct builder *
pick_builder(struct cache *c, struct cfile *f, uint32_t chunk, uint32_t p,
	     uint32_t q)
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
		if (b->frozen || p < b->start || !blocks_open(c, b, p, q))
			return NULL;
		return b;
	}
	for (b = f->tail; b != NULL; b = b->prev) {
		if (b->chunk != chunk || b->frozen)
			continue;
		hi = b->iv[b->niv - 1].e;
		if (p > hi && p - hi <= CACHE_GAP_WINDOW &&
		    blocks_open(c, b, p, q))
			return b;
	}
	return NULL;
}

static struct upjob *
upjob_new(struct cache *c, struct cfile *f, struct builder *b,
	  struct run *run, uint32_t idx)
{
	struct upjob *u = tl_malloc(sizeof(*u));

	*u = (struct upjob){c, f, b, run, idx};
	b->inflight++;
	return u;
}

/* Seal and queue the blocks the first run now covers completely. */
static void
seal_ready(struct cache *c, struct cfile *f, struct builder *b,
	   struct jobv *jobs)
{
	uint32_t end = b->iv[0].e;

	while (b->nsealed < b->nblk &&
	       b->start + (uint64_t)(b->nsealed + 1) * c->bs <= end) {
		if (b->id == 0 && meta_new_slice_id(c->m, &b->id) < 0) {
			b->id = 0;
			return; /* the flush will allocate and upload */
		}
		b->blk[b->nsealed].state = BLK_UPLOADING;
		jobv_add(jobs, upjob_new(c, f, b, NULL, b->nsealed));
		b->nsealed++;
	}
}

static void
job_target(struct upjob *u, char *key, size_t keylen, const uint8_t **data,
	   uint32_t *len)
{
	struct cache *c = u->c;
	struct builder *b = u->b;
	uint32_t bi, from;

	if (u->run == NULL) {
		cache_block_key(key, keylen, c->volume, b->id, u->idx, c->bs);
		*data = b->blk[u->idx].data;
		*len = c->bs;
		return;
	}
	from = u->run->base + u->idx * c->bs;
	bi = (from - b->start) / c->bs;
	*len = TL_MIN(c->bs, u->run->e - from);
	*data = b->blk[bi].data;
	cache_block_key(key, keylen, c->volume, u->run->id, u->idx, *len);
}

/* Runs on the upload pool.  The block's bytes no longer change (sealed or
 * frozen), so they are read without the file lock. */
static void
upload_fn(void *arg)
{
	struct upjob *u = arg;
	struct cache *c = u->c;
	struct cfile *f = u->f;
	struct builder *b = u->b;
	const uint8_t *data;
	uint32_t len, n;
	char key[256];
	int r;

	job_target(u, key, sizeof(key), &data, &len);
	r = cache_store_block(c, key, data, len);
	pthread_mutex_lock(&f->mu);
	if (u->run != NULL) {
		u->run->st[u->idx] = r == 0 ? 2 : 0;
	} else if (r == 0) {
		b->blk[u->idx].state = BLK_STORED;
		free(b->blk[u->idx].data);
		b->blk[u->idx].data = NULL;
		/* Block 0 may start after the builder's start. */
		n = c->bs - (u->idx == 0 ? b->iv[0].s - b->start : 0);
		b->bytes -= n;
		atomic_fetch_sub(&f->bytes, n);
		cache_space_release(c, n);
	} else {
		b->blk[u->idx].state = BLK_FAILED;
	}
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
 * needs c->lock, which comes before f->mu). */
static void
submit_jobs(struct cache *c, struct cfile *f, struct jobv *jobs)
{
	size_t i;

	for (i = 0; i < jobs->n; i++) {
		cache_file_get(c, f->ino, false); /* held by the job */
		tl_pool_submit(c->up, upload_fn, jobs->v[i]);
	}
	free(jobs->v);
	*jobs = (struct jobv){NULL, 0, 0};
}

static void
copy_in(struct cache *c, struct builder *b, uint32_t p, const uint8_t *buf,
	uint32_t n)
{
	uint32_t rel, bi, boff, k;

	while (n > 0) {
		rel = p - b->start;
		bi = rel / c->bs;
		boff = rel % c->bs;
		k = TL_MIN(n, c->bs - boff);
		if (b->blk[bi].data == NULL)
			b->blk[bi].data = tl_calloc(1, c->bs);
		memcpy(b->blk[bi].data + boff, buf, k);
		p += k;
		buf += k;
		n -= k;
	}
}

/* Buffer [off, off+len).  *fresh receives how many bytes were not
 * buffered before (the caller reserved len and gives the rest back);
 * *chunk_full tells that a builder reached the end of its chunk. */
void
cache_file_write(struct cache *c, struct cfile *f, uint64_t off,
		 const uint8_t *buf, size_t len, uint64_t *fresh,
		 bool *chunk_full)
{
	struct jobv jobs = {NULL, 0, 0};
	struct builder *b;
	uint64_t added = 0;
	uint32_t chunk, p, n, nb;

	*chunk_full = false;
	pthread_mutex_lock(&f->mu);
	while (len > 0) {
		chunk = (uint32_t)(off / META_CHUNK_SIZE);
		p = (uint32_t)(off % META_CHUNK_SIZE);
		n = (uint32_t)TL_MIN(len, META_CHUNK_SIZE - p);
		b = pick_builder(c, f, chunk, p, p + n);
		if (b == NULL) {
			b = builder_new(c, chunk, align_down(c, p));
			list_append(f, b);
		}
		copy_in(c, b, p, buf, n);
		nb = ival_add(b, p, p + n);
		b->bytes += nb;
		added += nb;
		seal_ready(c, f, b, &jobs);
		if (b->iv[0].e == META_CHUNK_SIZE)
			*chunk_full = true;
		off += n;
		buf += n;
		len -= n;
	}
	atomic_fetch_add(&f->bytes, added);
	f->mtime_ns = tl_now_ns();
	pthread_mutex_unlock(&f->mu);
	submit_jobs(c, f, &jobs);
	*fresh = added;
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

/* Cut a frozen builder into its slices: one per run of written bytes.
 * Each slice is laid out from the block boundary at or before its first
 * byte, so its blocks are the builder's blocks and need no copy (bytes
 * before the run are stored but never referenced). */
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
		u->base = align_down(c, u->s);
		u->nblocks = (u->e - u->base + c->bs - 1) / c->bs;
		u->st = tl_calloc(u->nblocks, 1);
		if (i == 0 && b->id != 0) {
			u->id = b->id;
			for (k = 0; k < u->nblocks; k++)
				if (b->blk[k].state == BLK_STORED)
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
		for (k = 0; k < b->nblk; k++) {
			if (b->blk[k].state != BLK_STORED)
				continue;
			cache_block_key(key, sizeof(key), c->volume, b->id, k,
					c->bs);
			cache_delete_block(c, key);
		}
		return;
	}
	for (i = 0; i < b->nruns; i++) {
		struct run *u = &b->runs[i];

		for (k = 0; k < u->nblocks; k++) {
			if (u->st[k] != 2)
				continue;
			cache_block_key(key, sizeof(key), c->volume, u->id, k,
					TL_MIN(c->bs, u->e - u->base -
							      k * c->bs));
			cache_delete_block(c, key);
		}
	}
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

/* Queue every block of the frozen builders not stored yet. */
static void
collect_uploads(struct cache *c, struct cfile *f, struct builder *last,
		struct jobv *jobs)
{
	struct builder *b;
	size_t i;
	uint32_t k;

	for (b = f->head; b != NULL; b = b->next) {
		b->upload_err = 0;
		for (i = 0; i < b->nruns; i++)
			for (k = 0; k < b->runs[i].nblocks; k++)
				if (b->runs[i].st[k] == 0) {
					b->runs[i].st[k] = 1;
					jobv_add(jobs, upjob_new(c, f, b,
								 &b->runs[i],
								 k));
				}
		if (b == last)
			break;
	}
}

/* All blocks stored: free the buffers and list the slice records. */
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
		builder_drop_data(c, f, b);
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
	struct meta_slice_write *w = NULL;
	struct builder *b, *last, *next;
	uint64_t mtime;
	size_t n = 0;
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
	collect_uploads(c, f, last, &jobs);
	pthread_mutex_unlock(&f->mu);
	submit_jobs(c, f, &jobs);
	pthread_mutex_lock(&f->mu);
	while (any_inflight(f, last))
		pthread_cond_wait(&f->cv, &f->mu);
	r = stored_records(c, f, last, &w, &n);
	if (r < 0)
		goto out;
	mtime = f->mtime_ns;
	pthread_mutex_unlock(&f->mu);
	/* Staged blocks are durable by name before metadata names them. */
	r = cache_wb_sync(c);
	if (r == 0)
		r = meta_write_slices(c->m, f->ino, w, n, mtime, NULL);
	pthread_mutex_lock(&f->mu);
	if (r == 0 || r == -ENOENT) {
		b = detach(f, last);
		pthread_mutex_unlock(&f->mu);
		for (; b != NULL; b = next) {
			next = b->next;
			if (r == -ENOENT)
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

bool
cache_file_overlaps(struct cfile *f, uint64_t off, uint64_t end)
{
	struct builder *b;
	uint64_t base;
	bool hit = false;

	pthread_mutex_lock(&f->mu);
	for (b = f->head; b != NULL && !hit; b = b->next) {
		base = (uint64_t)b->chunk * META_CHUNK_SIZE;
		hit = base + b->iv[0].s < end &&
		      base + b->iv[b->niv - 1].e > off;
	}
	pthread_mutex_unlock(&f->mu);
	return hit;
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
