/*
 * flush.c - flush, packing and upload: a file's buffered writes stored
 * and committed.
 *
 * Flush freezes the file's builders, stores every block not yet stored
 * (in parallel on the upload pool), then commits all their slices with
 * one meta_write_slices call: a block is always stored before the
 * metadata that refers to it.  With a deferring store (file://) "stored"
 * means written and renamed; the flush's os_sync, just before the
 * commit, is what makes the blocks durable (one barrier per flush, not
 * a disk wait per block); with writeback, the fsync of the staging
 * directories does the same (both in cache_blocks_sync).  Blocks a write
 * sealed are uploaded earlier, as they fill (cache_flush_upload).
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
 *     builder's first block was stored (cache_blocks_mark: a failed sync
 *     may lose any put made before it, not only its caller's): every
 *     block of the frozen builders is stored again, under fresh ids,
 *     and the old objects are deleted (restore_runs);
 *   - a failed commit: the stored blocks stay as they are, unless they
 *     were stored more than CACHE_RESTORE_NS ago (`tessera gc` may take
 *     an object that old and unreferenced for a leak): then they are
 *     stored again too.
 * -ENOENT from meta (the file is gone, once meta_getattr confirms it:
 * file_gone) deletes what was stored and drops the data: nobody can read
 * it.  The other path that drops data is cache_close's (cache.c).  So
 * the write verifier never has to change while the gateway runs.  The price is
 * memory: an early upload does not free its block's buffers, which stay
 * counted against buffer_limit until the commit (a writer over the limit
 * flushes, which is quick then: the blocks are stored).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache/compact-internal.h"
#include "cache/files-internal.h"
#include "cache/flush-internal.h"
#include "cache/blocks-internal.h"
#include "cache/write-internal.h"
#include "lib/tl.h"

/* Stored blocks older than this are stored again before a flush
 * commits them (cache_opts.restore_age_ms): `tessera gc` takes an
 * unreferenced object older than its grace period (1 hour by default,
 * tessera(1)) for a leak. */
#define CACHE_RESTORE_NS (600ULL * 1000000000ULL)

/* Runs of at most PACK_RUN bytes, not stored yet, are packed with the
 * other small runs of their chunk in the same flush, up to PACK_MAX
 * bytes (and one block) per pack: random 4 KiB writes made one object
 * per write, and a local file system pays an inode, a rename and a
 * journal entry for each.  The cap keeps what a read of one small run
 * fetches (a whole block, from S3 or into the disk cache) modest. */
#define PACK_RUN (64u << 10)
#define PACK_MAX (1u << 20)

struct cache_flusher {
	uint32_t inline_max; /* 0: no inline slices */
	struct meta *m;
	struct cache_files *ft;
	struct cache_writer *wr;
	struct cache_blocks *st;
	struct cache_compactor *cp;
	uint32_t bs;
	struct tl_pool *up;       /* uploads */
	struct tl_pool *fq;       /* flushes that callers wait for, bounded */
	uint64_t restore_ns;      /* CACHE_RESTORE_NS or cache_opts' */
	uint32_t compact_records; /* a commit's trigger for compaction */
};

/* One slice a frozen builder commits: a run of contiguous written bytes,
 * stored from its first byte (block k of the slice holds run bytes
 * [k * block_size, (k + 1) * block_size)). */
struct run {
	uint64_t id;
	struct pack *pack; /* stored in this pack instead */
	uint32_t pack_off; /* where its bytes start in the pack */
	uint32_t base;     /* chunk position of the slice's byte 0 (= s) */
	uint32_t s, e;     /* chunk positions recorded: [s, e) */
	uint32_t nblocks;
	uint8_t *st; /* per block: 0 to upload, 1 in flight, 2 stored */
};

/* Small runs of one chunk stored back to back as one slice of one
 * block: their records name the pack's id at their offsets, so a flush
 * of random small writes stores a few objects, not one per run. */
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

struct upjob {
	struct cache_flusher *fl;
	struct cfile *f;
	struct builder *b;
	struct run *run; /* NULL: early upload of builder block idx */
	uint32_t idx;
	struct pack *pk; /* set: upload of this pack (b, run unused) */
};

struct jobv {
	struct upjob **v;
	size_t n, cap;
};

struct cache_flusher *
cache_flusher_open(struct meta *m, struct cache_files *ft,
		   struct cache_writer *wr, struct cache_blocks *st,
		   struct cache_compactor *cp, uint32_t block_size,
		   unsigned threads, uint64_t restore_age_ms,
		   uint32_t compact_records, uint32_t inline_max)
{
	struct cache_flusher *fl = tl_calloc(1, sizeof(*fl));

	fl->inline_max =
		TL_MIN(TL_MIN(inline_max, block_size), META_INLINE_MAX);

	fl->m = m;
	fl->ft = ft;
	fl->wr = wr;
	fl->st = st;
	fl->cp = cp;
	fl->bs = block_size;
	fl->up = tl_pool_create("upload", threads, 0);
	fl->fq = tl_pool_create("flush", threads, 0);
	fl->restore_ns =
		restore_age_ms ? restore_age_ms * 1000000ULL : CACHE_RESTORE_NS;
	fl->compact_records = compact_records;
	return fl;
}

void
cache_flusher_close(struct cache_flusher *fl)
{
	if (fl == NULL)
		return;
	tl_pool_destroy(fl->fq); /* its flushes still submit uploads */
	tl_pool_destroy(fl->up);
	free(fl);
}

/* ---- uploads ---------------------------------------------------------- */

static void
jobv_add(struct jobv *j, struct upjob *u)
{
	if (j->n == j->cap) {
		j->cap = j->cap ? j->cap * 2 : 16;
		j->v = tl_realloc(j->v, j->cap * sizeof(*j->v));
	}
	j->v[j->n++] = u;
}

static struct upjob *
upjob_new(struct cache_flusher *fl, struct cfile *f, struct builder *b,
	  struct run *run, uint32_t idx)
{
	struct upjob *u = tl_malloc(sizeof(*u));

	*u = (struct upjob){fl, f, b, run, idx, NULL};
	return u;
}

/* Block and bytes of an upload; *tmp is a copy to free after. */
static void
job_target(struct upjob *u, uint64_t *id, uint32_t *idx, const uint8_t **data,
	   uint32_t *len, uint8_t **tmp)
{
	struct cache_flusher *fl = u->fl;
	struct builder *b = u->b;
	struct pack *pk = u->pk;
	uint32_t from, off = 0;
	size_t i;

	if (pk != NULL) {
		*tmp = tl_malloc(pk->size);
		for (i = 0; i < pk->n; i++) {
			struct run *r = pk->m[i].r;

			cache_builder_copy(fl->wr, pk->m[i].b, r->s, r->e,
					   *tmp + off);
			off += r->e - r->s;
		}
		*data = *tmp;
		*len = pk->size;
		*id = pk->id;
		*idx = 0;
		return;
	}
	if (u->run == NULL) {
		*id = b->id;
		*idx = u->idx;
		*len = fl->bs;
		*data = cache_builder_bytes(
			fl->wr, b, b->base + u->idx * fl->bs, fl->bs, tmp);
		return;
	}
	from = u->run->base + u->idx * fl->bs;
	*len = TL_MIN(fl->bs, u->run->e - from);
	*data = cache_builder_bytes(fl->wr, b, from, *len, tmp);
	*id = u->run->id;
	*idx = u->idx;
}

static void
upload_failed(struct cache_flusher *fl, uint64_t id, uint32_t idx, uint32_t len,
	      int r)
{
	char key[256];

	if (!tl_log_enabled(TL_LOG_DEBUG))
		return;
	cache_blocks_key(fl->st, key, sizeof(key), id, idx, len);
	tl_debug("cache", "upload of %s failed: %d", key, r);
}

/* A pack's upload finished with r (f->mu held): its members' state and
 * their builders' in-flight counts follow. */
static void
pack_done(struct pack *pk, int r)
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
}

/* Runs on the upload pool.  The bytes are found under the file lock;
 * they no longer change (sealed or frozen), and a pointer into a buffer
 * stays valid until this upload reports (a block is freed only once
 * stored, and sealed extents are never reallocated). */
static void
upload_fn(void *arg)
{
	struct upjob *u = arg;
	struct cache_flusher *fl = u->fl;
	struct cfile *f = u->f;
	struct builder *b = u->b;
	const uint8_t *data;
	uint8_t *tmp;
	uint32_t len, idx;
	uint64_t id;
	int r;

	pthread_mutex_lock(&f->mu);
	job_target(u, &id, &idx, &data, &len, &tmp);
	pthread_mutex_unlock(&f->mu);
	r = cache_blocks_put(fl->st, id, idx, data, len);
	free(tmp);
	if (r < 0)
		upload_failed(fl, id, idx, len, r);
	pthread_mutex_lock(&f->mu);
	if (u->pk != NULL) {
		pack_done(u->pk, r);
	} else {
		if (u->run != NULL)
			u->run->st[u->idx] = r == 0 ? 2 : 0;
		else
			b->st0[u->idx] = r == 0 ? BLK_STORED : BLK_FAILED;
		/* Kept so that a full store answers NOSPC, not IO. */
		if (r < 0 && b->upload_err == 0)
			b->upload_err = r;
		b->inflight--;
	}
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	cache_file_put(fl->ft, f);
	free(u);
}

/* Submit collected jobs; called without f->mu (taking a file reference
 * needs the table's lock, which comes before f->mu).  With here, the
 * caller is about to wait for them all (a flush): it runs the last job
 * itself, so a small file's single block costs no hand-off (two context
 * switches and a wakeup, more than writing 4 KiB to a local store). */
static void
submit_jobs(struct cache_flusher *fl, struct cfile *f, struct jobv *jobs,
	    bool here)
{
	size_t i, n = jobs->n;

	if (here && n > 0)
		n--;
	for (i = 0; i < jobs->n; i++) {
		cache_file_get(fl->ft, f->ino, false); /* held by the job */
		if (i < n)
			tl_pool_submit(fl->up, upload_fn, jobs->v[i]);
		else
			upload_fn(jobs->v[i]);
	}
	free(jobs->v);
	*jobs = (struct jobv){NULL, 0, 0};
}

void
cache_flush_upload(struct cache_flusher *fl, struct cfile *f,
		   const struct cache_sealv *sealed)
{
	struct jobv jobs = {NULL, 0, 0};
	size_t i;

	for (i = 0; i < sealed->n; i++)
		jobv_add(&jobs, upjob_new(fl, f, sealed->v[i].b, NULL,
					  sealed->v[i].idx));
	submit_jobs(fl, f, &jobs, false);
}

/* ---- flush ------------------------------------------------------------ */

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
make_runs(struct cache_flusher *fl, struct builder *b)
{
	struct run *runs = tl_calloc(b->niv, sizeof(*runs));
	size_t i, k;
	int r = 0;

	for (i = 0; i < b->niv; i++) {
		struct run *u = &runs[i];

		u->s = b->iv[i].s;
		u->e = b->iv[i].e;
		u->base = u->s;
		u->nblocks = (u->e - u->base + fl->bs - 1) / fl->bs;
		u->st = tl_calloc(u->nblocks, 1);
		if (i == 0 && b->id != 0) {
			u->id = b->id;
			for (k = 0; k < b->nsealed; k++)
				if (b->st0[k] == BLK_STORED)
					u->st[k] = 2;
		} else if ((r = meta_new_slice_id(fl->m, &u->id)) < 0) {
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
delete_objects(struct cache_flusher *fl, struct builder *b)
{
	size_t i;
	uint32_t k;

	if (b->runs == NULL) {
		for (k = 0; k < b->nsealed; k++)
			if (b->st0[k] == BLK_STORED)
				cache_blocks_delete(fl->st, b->id, k, fl->bs);
		return;
	}
	for (i = 0; i < b->nruns; i++) {
		struct run *u = &b->runs[i];

		for (k = 0; k < u->nblocks && u->pack == NULL; k++)
			if (u->st[k] == 2)
				cache_blocks_delete(
					fl->st, u->id, k,
					TL_MIN(fl->bs,
					       u->e - u->base - k * fl->bs));
	}
}

/* Free b's runs, then b (it left f's list; without f->mu). */
static void
builder_free(struct cache_flusher *fl, struct cfile *f, struct builder *b)
{
	size_t i;

	for (i = 0; i < b->nruns; i++)
		free(b->runs[i].st);
	free(b->runs);
	cache_builder_free(fl->wr, f, b);
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
pack_chunk(struct cache_flusher *fl, struct cfile *f, struct pcand *cand,
	   size_t n)
{
	uint32_t max = TL_MIN(PACK_MAX, fl->bs), len;
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
		r = meta_new_slice_id(fl->m, &pk->id);
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
pack_runs(struct cache_flusher *fl, struct cfile *f, struct builder *last)
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
		r = pack_chunk(fl, f, cand + i, j - i);
	}
out:
	free(cand);
	return r;
}

/* Forget the file's packs, deleting the stored ones with del (f->mu
 * held; their builders are leaving). */
static void
packs_free(struct cache_flusher *fl, struct cfile *f, bool del)
{
	struct pack *pk, *next;

	for (pk = f->packs; pk != NULL; pk = next) {
		next = pk->next;
		if (del && pk->st == 2)
			cache_blocks_delete(fl->st, pk->id, 0, pk->size);
		free(pk->m);
		free(pk);
	}
	f->packs = NULL;
}

/* Queue every pack and every block of the frozen builders not stored
 * yet. */
static void
collect_uploads(struct cache_flusher *fl, struct cfile *f, struct builder *last,
		struct jobv *jobs)
{
	struct builder *b;
	struct upjob *u;
	struct pack *pk;
	size_t i;
	uint32_t k;

	for (pk = f->packs; pk != NULL; pk = pk->next) {
		if (pk->st != 0)
			continue;
		pk->st = 1;
		u = tl_malloc(sizeof(*u));
		*u = (struct upjob){.fl = fl, .f = f, .pk = pk};
		for (i = 0; i < pk->n; i++) {
			pk->m[i].r->st[0] = 1;
			pk->m[i].b->inflight++;
		}
		jobv_add(jobs, u);
	}
	for (b = f->head; b != NULL; b = b->next) {
		b->upload_err = 0;
		cache_builder_mark(fl->wr, b);
		for (i = 0; i < b->nruns; i++)
			for (k = 0; k < b->runs[i].nblocks; k++)
				if (b->runs[i].st[k] == 0 &&
				    b->runs[i].pack == NULL) {
					b->runs[i].st[k] = 1;
					b->inflight++;
					jobv_add(jobs,
						 upjob_new(fl, f, b,
							   &b->runs[i], k));
				}
		if (b == last)
			break;
	}
}

/* Blocks to delete once f->mu is released. */
struct delv {
	struct {
		uint64_t id;
		uint32_t idx, len;
	} * v;
	size_t n, cap;
};

static void
delv_add(struct delv *d, uint64_t id, uint32_t idx, uint32_t len)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 16;
		d->v = tl_realloc(d->v, d->cap * sizeof(*d->v));
	}
	d->v[d->n].id = id;
	d->v[d->n].idx = idx;
	d->v[d->n++].len = len;
}

/* Delete them (without f->mu) and free the list. */
static void
delv_delete(struct cache_flusher *fl, struct delv *d)
{
	for (size_t i = 0; i < d->n; i++)
		cache_blocks_delete(fl->st, d->v[i].id, d->v[i].idx,
				    d->v[i].len);
	free(d->v);
	*d = (struct delv){NULL, 0, 0};
}

/* Whether what the frozen builders head..last stored must be stored
 * again before it is committed: a sync failed since (restore, set by
 * the flush that saw it fail, or a sync failure counted since the
 * builder's mark: anyone's), or it was stored too long ago. */
static bool
must_restore(struct cache_flusher *fl, struct cfile *f, struct builder *last)
{
	uint64_t now = tl_mono_ns(), mark = cache_blocks_mark(fl->st);
	struct builder *b;

	for (b = f->head; b != NULL; b = b->next) {
		if (b->restore ||
		    (b->marked &&
		     (b->mark != mark || now - b->mark_ns > fl->restore_ns)))
			return true;
		if (b == last)
			break;
	}
	return false;
}

/* Forget what the frozen builders head..last stored (f->mu held): every
 * run gets a fresh slice id and all its blocks are to be stored again,
 * packs are made again; what was stored goes to *del.  Fresh ids, not
 * the old keys again: `tessera gc` may be deleting an old one as a leak
 * right now.  On failure (no id) nothing is stored and restore stays
 * set: the next flush does it again. */
static int
restore_runs(struct cache_flusher *fl, struct cfile *f, struct builder *last,
	     struct delv *del)
{
	struct builder *b;
	struct pack *pk;
	size_t i;
	uint32_t k;
	int r;

	for (pk = f->packs; pk != NULL; pk = pk->next)
		if (pk->st == 2)
			delv_add(del, pk->id, 0, pk->size);
	for (b = f->head; b != NULL; b = b->next) {
		for (i = 0; i < b->nruns; i++) {
			struct run *u = &b->runs[i];

			for (k = 0; k < u->nblocks; k++) {
				if (u->st[k] == 2 && u->pack == NULL)
					delv_add(del, u->id, k,
						 TL_MIN(fl->bs,
							u->e - u->base -
								k * fl->bs));
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
	packs_free(fl, f, false); /* no run points to them any more */
	for (b = f->head; b != NULL; b = b->next) {
		for (i = 0; i < b->nruns; i++)
			if ((r = meta_new_slice_id(fl->m, &b->runs[i].id)) < 0)
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
file_gone(struct cache_flusher *fl, uint64_t ino)
{
	struct meta_attr a;

	return meta_getattr(fl->m, ino, &a) == -ENOENT;
}

/* All blocks stored: list the slice records (the buffers stay until
 * the commit). */
static int
stored_records(struct cfile *f, struct builder *last,
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

/* Take the file's builders for a flush or a drop (f->mu held): wait
 * for the flush or drop that has them, freeze every builder there is
 * (no more writes go into them), wait for their uploads in flight.  The
 * last one taken, or NULL when nothing is buffered (then not taken);
 * f->flushing says they are taken until done() gives them back. */
static struct builder *
freeze(struct cfile *f)
{
	struct builder *b, *last;

	while (f->flushing)
		pthread_cond_wait(&f->cv, &f->mu);
	last = f->tail;
	if (last == NULL)
		return NULL;
	f->flushing = true;
	for (b = f->head; b != last->next; b = b->next)
		b->frozen = true;
	while (any_inflight(f, last))
		pthread_cond_wait(&f->cv, &f->mu);
	return last;
}

/* The taken builders are given back (f->mu held). */
static void
done(struct cfile *f)
{
	f->flushing = false;
	pthread_cond_broadcast(&f->cv);
}

/* The taken builders head..last leave: their data is committed, or
 * dropped (del: what they stored is deleted).  Called and returns with
 * f->mu held; frees them without it. */
static void
release(struct cache_flusher *fl, struct cfile *f, struct builder *last,
	bool del)
{
	struct builder *b, *next;

	b = f->head;
	f->head = last->next;
	if (f->head)
		f->head->prev = NULL;
	else
		f->tail = NULL;
	last->next = NULL;
	f->gen++;
	cache_file_reend(f);
	packs_free(fl, f, del);
	pthread_mutex_unlock(&f->mu);
	for (; b != NULL; b = next) {
		next = b->next;
		if (del)
			delete_objects(fl, b);
		builder_free(fl, f, b);
	}
	pthread_mutex_lock(&f->mu);
}

/* Store what head..last hold and is not stored yet, and wait for it
 * (f->mu held; released meanwhile). */
static int
store_all(struct cache_flusher *fl, struct cfile *f, struct builder *last,
	  struct delv *del)
{
	struct jobv jobs = {NULL, 0, 0};
	struct builder *b;
	int r;

	for (b = f->head; b != last->next; b = b->next)
		if (b->runs == NULL && (r = make_runs(fl, b)) < 0)
			return r;
	if (must_restore(fl, f, last) &&
	    (r = restore_runs(fl, f, last, del)) < 0)
		return r;
	if ((r = pack_runs(fl, f, last)) < 0)
		return r;
	collect_uploads(fl, f, last, &jobs);
	pthread_mutex_unlock(&f->mu);
	submit_jobs(fl, f, &jobs, true);
	pthread_mutex_lock(&f->mu);
	while (any_inflight(f, last))
		pthread_cond_wait(&f->cv, &f->mu);
	return 0;
}

/* Make the stored blocks durable and commit the slice records w[0..n)
 * of f (without f->mu).  *unsynced: the sync failed, the blocks may be
 * lost. */
static int
commit(struct cache_flusher *fl, struct cfile *f,
       const struct meta_slice_write *w, size_t n, uint64_t mark,
       uint64_t mtime, bool *unsynced)
{
	uint32_t *recs;
	size_t i;
	int r;

	/* Staged or stored blocks are durable by name before metadata
	 * names them, and none was lost to a failed sync meanwhile. */
	r = cache_blocks_sync(fl->st, mark);
	*unsynced = r < 0;
	if (r < 0)
		return r;
	recs = tl_malloc((n ? n : 1) * sizeof(*recs));
	r = meta_write_slices(fl->m, f->ino, w, n, mtime, NULL, recs);
	for (i = 0; r == 0 && i < n; i++)
		if (recs[i] >= fl->compact_records &&
		    (i == 0 || w[i].chunk != w[i - 1].chunk))
			cache_compact_want(fl->cp, f->ino, w[i].chunk);
	free(recs);
	return r;
}

/* ---- inline flushes ----------------------------------------------------
 *
 * A small file's flush stores its bytes in the metadata commit itself
 * (meta_write_inline): one transaction, no object, no object or
 * directory sync, no PUT.  Taken when the frozen builders head..last
 * have stored nothing yet (no early upload, no run stored by a flush
 * that failed to commit: those go the way above), all lie in chunk 0
 * below inline_max, hold at most inline_max bytes, and the file is no
 * longer than inline_max: so the inline bytes a file shows are at most
 * inline_max, and a file that grows past it gets plain slices from its
 * next flush on (its inline slice, partly or wholly overwritten, goes
 * like any slice: released when no record shows it).  Its records name
 * one inline slice holding the runs back to back, like a pack.  A
 * failed commit keeps the builders buffered, as above; nothing was
 * stored, so nothing is to be stored again or deleted.  -ENOSPC (the
 * metadata's map or disk is full) sends the same flush the usual way:
 * the bytes go to an object. */

/* Bytes of the runs of head..last when they fit inline, else 0 (f->mu
 * held). */
static uint32_t
inline_size(struct cache_flusher *fl, struct cfile *f, struct builder *last)
{
	struct builder *b;
	uint64_t total = 0;
	struct meta_attr a;
	size_t i;

	if (fl->inline_max == 0)
		return 0;
	for (b = f->head; b != last->next; b = b->next) {
		if (b->chunk != 0 || b->id != 0 || b->nsealed != 0 ||
		    b->inflight != 0 || b->restore)
			return 0;
		for (i = 0; b->runs != NULL && i < b->nruns; i++)
			if (b->runs[i].pack != NULL || b->runs[i].st[0] != 0)
				return 0; /* stored by a flush before */
		for (i = 0; i < b->niv; i++) {
			if (b->iv[i].e > fl->inline_max)
				return 0;
			total += b->iv[i].e - b->iv[i].s;
		}
	}
	if (total == 0 || total > fl->inline_max || !meta_inline_room(fl->m))
		return 0;
	/* The committed size: a file longer than inline_max keeps its
	 * data in objects. */
	if (meta_getattr(fl->m, f->ino, &a) == 0 && a.size > fl->inline_max)
		return 0;
	return (uint32_t)total;
}

/* The records of head..last, naming inline slice id of size bytes, and
 * those bytes into buf (f->mu held). */
static void
inline_records(struct cache_flusher *fl, struct cfile *f, struct builder *last,
	       uint64_t id, uint32_t size, uint8_t *buf,
	       struct meta_slice_write **out, size_t *nout)
{
	struct meta_slice_write *w = NULL;
	struct builder *b;
	uint32_t off = 0;
	size_t n = 0, i;

	for (b = f->head; b != last->next; b = b->next)
		n += b->niv;
	w = tl_malloc((n ? n : 1) * sizeof(*w));
	n = 0;
	for (b = f->head; b != last->next; b = b->next)
		for (i = 0; i < b->niv; i++) {
			uint32_t s = b->iv[i].s, e = b->iv[i].e;

			cache_builder_copy(fl->wr, b, s, e, buf + off);
			w[n].chunk = 0;
			w[n].s = (struct meta_slice){id, size, off, e - s, s};
			off += e - s;
			n++;
		}
	*out = w;
	*nout = n;
}

/* Commit head..last inline (f->mu held; released meanwhile).  r as
 * cache_file_flush's. */
static int
flush_inline(struct cache_flusher *fl, struct cfile *f, struct builder *last,
	     uint32_t size)
{
	struct meta_slice_write *w = NULL;
	uint8_t *buf;
	uint64_t id, mtime;
	size_t n = 0;
	bool gone = false;
	int r;

	r = meta_new_slice_id(fl->m, &id);
	if (r < 0)
		return r;
	id |= META_SLICE_INLINE;
	buf = tl_malloc(size);
	inline_records(fl, f, last, id, size, buf, &w, &n);
	mtime = f->mtime_ns;
	pthread_mutex_unlock(&f->mu);
	r = meta_write_inline(fl->m, f->ino, w, n, id, buf, size, mtime, NULL,
			      NULL);
	gone = r == -ENOENT && file_gone(fl, f->ino);
	pthread_mutex_lock(&f->mu);
	if (r == 0 || gone)
		release(fl, f, last, r < 0);
	free(buf);
	free(w);
	return r;
}

int
cache_file_flush(struct cache_flusher *fl, struct cfile *f)
{
	struct delv del = {NULL, 0, 0};
	struct meta_slice_write *w = NULL;
	struct builder *b, *last;
	uint64_t mtime, mark = UINT64_MAX;
	size_t n = 0;
	uint32_t size;
	bool unsynced = false, gone = false;
	int r = 0;

	pthread_mutex_lock(&f->mu);
	last = freeze(f);
	if (last == NULL)
		goto unlock;
	if ((size = inline_size(fl, f, last)) > 0) {
		r = flush_inline(fl, f, last, size);
		/* -ENOSPC: the metadata is full (or the volume, which the
		 * way below finds again): the bytes go to an object. */
		if (r != -ENOSPC)
			goto out;
	}
	r = store_all(fl, f, last, &del);
	if (r == 0)
		r = stored_records(f, last, &w, &n);
	if (r < 0)
		goto out;
	for (b = f->head; b != last->next; b = b->next)
		mark = TL_MIN(mark, b->mark); /* all marked: collect_uploads */
	mtime = f->mtime_ns;
	pthread_mutex_unlock(&f->mu);
	r = commit(fl, f, w, n, mark, mtime, &unsynced);
	gone = !unsynced && r == -ENOENT && file_gone(fl, f->ino);
	pthread_mutex_lock(&f->mu);
	if (unsynced) {
		/* Some of the blocks may be gone and nothing tells which:
		 * all are stored again by the next flush. */
		tl_debug("cache",
			 "inode %llu: sync failed (%s); its blocks "
			 "will be stored again",
			 (unsigned long long)f->ino, strerror(-r));
		for (b = f->head; b != last->next; b = b->next)
			b->restore = true;
	} else if (r == 0 || gone) {
		release(fl, f, last, r < 0);
	}
out:
	done(f);
unlock:
	pthread_mutex_unlock(&f->mu);
	delv_delete(fl, &del);
	free(w);
	return r;
}

/* ---- bounded flushes ---------------------------------------------------- */

/*
 * store_wait_max: a request that needs a file flushed (COMMIT, a
 * FILE_SYNC WRITE, a writer making room, SETATTR of the size) waits for
 * it a bounded time.  The flush itself runs on the flusher's "flush"
 * pool: when the store does not answer (a PUT retrying for minutes, a
 * hung connection) the caller's wait ends, it answers -EAGAIN
 * (NFS3ERR_JUKEBOX: the client retries later) and its worker is free,
 * while the flush goes on and stores and commits the data once the
 * store answers; the builders stay buffered (and frozen) meanwhile, as
 * with any failure (top of this file).
 *
 * Tickets: a caller takes the next ticket t after its writes are
 * buffered; a flush job takes the highest ticket asked when it starts,
 * before it freezes, so its flush covers every write of tickets up to
 * it, and its result answers them.  One job per file waits to start at
 * a time (a later caller joins it); one more may run.  The pool's
 * threads bound how many flushes hang at once; callers past them wait
 * their bound in the queue and answer -EAGAIN too.
 */
struct fqjob {
	struct cache_flusher *fl;
	struct cfile *f; /* referenced */
};

static void
flush_job(void *arg)
{
	struct fqjob *j = arg;
	struct cfile *f = j->f;
	uint64_t t;
	int r;

	pthread_mutex_lock(&f->mu);
	f->fq_queued = false;
	t = f->fq_asked;
	pthread_mutex_unlock(&f->mu);
	r = cache_file_flush(j->fl, f);
	pthread_mutex_lock(&f->mu);
	if (t > f->fq_done) {
		f->fq_done = t;
		f->fq_err = r;
	}
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	cache_file_put(j->fl->ft, f);
	free(j);
}

int
cache_file_flush_wait(struct cache_flusher *fl, struct cfile *f,
		      uint64_t wait_ms)
{
	uint64_t t, now, end;
	struct fqjob *j = NULL;
	int r;

	if (wait_ms == 0)
		return cache_file_flush(fl, f);
	pthread_mutex_lock(&f->mu);
	t = ++f->fq_asked;
	if (!f->fq_queued) {
		f->fq_queued = true;
		j = tl_malloc(sizeof(*j));
		*j = (struct fqjob){fl, f};
	}
	pthread_mutex_unlock(&f->mu);
	if (j != NULL) {
		cache_file_get(fl->ft, f->ino, false); /* held by the job */
		tl_pool_submit(fl->fq, flush_job, j);
	}
	end = tl_mono_ns() + wait_ms * 1000000ULL;
	pthread_mutex_lock(&f->mu);
	while (f->fq_done < t && (now = tl_mono_ns()) < end)
		cache_cond_wait_ms(&f->cv, &f->mu,
				   (end - now + 999999) / 1000000);
	r = f->fq_done >= t ? f->fq_err : -EAGAIN;
	pthread_mutex_unlock(&f->mu);
	return r;
}

/* A drop that its caller waits for at most wait_ms (cache_file_drop_wait):
 * shared by the caller and the job, freed by the last to leave. */
struct dropjob {
	struct cache_flusher *fl;
	struct cfile *f; /* referenced by the job */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done, left; /* under mu */
};

static void
drop_job(void *arg)
{
	struct dropjob *j = arg;
	bool left;

	cache_file_drop(j->fl, j->f);
	cache_file_put(j->fl->ft, j->f);
	pthread_mutex_lock(&j->mu);
	j->done = true;
	left = j->left;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
	if (left) {
		pthread_mutex_destroy(&j->mu);
		pthread_cond_destroy(&j->cv);
		free(j);
	}
}

void
cache_file_drop_wait(struct cache_flusher *fl, struct cfile *f,
		     uint64_t wait_ms)
{
	struct dropjob *j;
	uint64_t now, end;
	bool done;

	if (wait_ms == 0) {
		cache_file_drop(fl, f);
		return;
	}
	j = tl_calloc(1, sizeof(*j));
	j->fl = fl;
	j->f = cache_file_get(fl->ft, f->ino, false); /* held by the job */
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	tl_pool_submit(fl->fq, drop_job, j);
	end = tl_mono_ns() + wait_ms * 1000000ULL;
	pthread_mutex_lock(&j->mu);
	while (!j->done && (now = tl_mono_ns()) < end)
		cache_cond_wait_ms(&j->cv, &j->mu,
				   (end - now + 999999) / 1000000);
	done = j->done;
	j->left = true;
	pthread_mutex_unlock(&j->mu);
	if (done) {
		pthread_mutex_destroy(&j->mu);
		pthread_cond_destroy(&j->cv);
		free(j);
	}
}

void
cache_file_drop(struct cache_flusher *fl, struct cfile *f)
{
	struct builder *last;

	pthread_mutex_lock(&f->mu);
	last = freeze(f);
	if (last != NULL) {
		release(fl, f, last, true);
		done(f);
	}
	pthread_mutex_unlock(&f->mu);
}
