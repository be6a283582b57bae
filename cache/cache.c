/*
 * cache.c - the data path's public calls (cache.h): each is a few calls
 * into the files below, which never call back up.
 *
 * Layers, top to bottom: a file calls only the files its arrow names,
 * all on lower lines (t/unit/cache_layers_test.sh checks this drawing
 * against the calls in the built objects, and that cache.h has it too):
 *
 *   cache.c      -> * (the public calls: any file below)
 *   volume.c     -> blockkey.c
 *   gc.c         -> compact.c files.c blocks.c
 *   readahead.c  -> compact.c plan.c blocks.c
 *   flush.c      -> compact.c write.c files.c blocks.c
 *   compact.c    -> files.c plan.c blocks.c bufpool.c view.c
 *   write.c      -> files.c blocks.c bufpool.c
 *   files.c      -> (none)
 *   plan.c       -> blocks.c view.c
 *   blocks.c     -> writeback.c diskcache.c bufpool.c blockkey.c
 *   writeback.c  -> diskcache.c blockfile.c blockkey.c
 *   diskcache.c  -> blockfile.c
 *   blockfile.c  -> (none)
 *   bufpool.c    -> (none)
 *   blockkey.c   -> (none)
 *   view.c       -> (none)
 *
 * What each owns (its own struct, made by its open and freed by its
 * close, declared in its <file>-internal.h):
 *   volume.c     a volume's claim on its object store (cache.h), for
 *                tesserad's start and the tools; no open cache needed
 *   gc.c         the background job: deletes released slices' objects,
 *                runs compaction rounds
 *   readahead.c  stream detection and prefetch
 *   flush.c      flush, packing, uploads (early and at flush), commit
 *   compact.c    data compaction and the queue of chunks that want it
 *   write.c      the slice builders: buffered writes, sealed blocks
 *   files.c      the table of files with buffered writes, the buffer
 *                total (struct cfile: fields marked by owner)
 *   plan.c       read planning, and the parallel read of a plan
 *   blocks.c     the block store: blocks in memory, put, delete, sync;
 *                opens writeback.c and diskcache.c below it
 *   writeback.c  blocks staged on local disk, uploaded in the background
 *   diskcache.c  the block cache on local disk
 *   blockfile.c  the checksummed block file both of those keep blocks in
 *   bufpool.c    whole-block buffers (builders, memory blocks, compaction)
 *   blockkey.c   block object names, made and parsed (cache.h)
 *   view.c       a chunk's visible bytes from its slice records (cache.h)
 * Two calls go the other way without being calls up: the disk cache's
 * fill thread runs the completion blocks.c handed to cache_disk_fill,
 * and the thread pools run the jobs their own file submitted.
 *
 * The life of the requests, through these files:
 *   WRITE UNSTABLE  cache_write: files.c (take room in the buffer total;
 *                   full: flush.c flushes to make room), write.c (copy
 *                   into a builder; seal full blocks), flush.c (upload
 *                   sealed blocks in the background: blocks.c puts them,
 *                   through writeback.c when it is on).
 *   COMMIT          cache_flush: flush.c freezes the file's builders,
 *                   uploads what is not stored (blocks.c), syncs
 *                   (blocks.c: writeback's fsync, os_sync), commits the
 *                   slice records (meta_write_slices), queues long
 *                   record lists (compact.c) and frees the builders
 *                   (write.c, files.c).
 *   READ (cold)     cache_read_ref: readahead.c notes the stream (and
 *                   prefetches through plan.c and blocks.c), plan.c
 *                   plans once (one metadata read per chunk); the piece
 *                   is lent (blocks.c: a block in memory, or an object
 *                   file of a local store), or plan.c reads the pieces
 *                   through blocks.c (staging, disk cache, object store).
 *   READ (cached)   the same; blocks.c finds the block in memory (or the
 *                   page cache holds the object file's bytes).
 *   REMOVE          cache_forget: flush.c drops the buffered data and
 *                   deletes what of it was stored; once metadata
 *                   releases the file's slices, gc.c deletes their
 *                   objects (blocks.c).
 *
 * Buffer limit: the total counts the memory builders allocated (see
 * files.c).  cache_write takes its length plus the most it may allocate
 * beyond it (cache_writer_slack) before copying and gives back what it
 * did not need.  A writer that does not fit flushes its own file (or,
 * having nothing buffered, the file holding the most) until it fits, so
 * the total stays within the limit plus one write and its slack.  When
 * the store fails, its own flush's error is the write's (NFS3ERR_IO);
 * another file's is not, and the write gets -EAGAIN (NFS3ERR_JUKEBOX)
 * after a short wait.
 */
#include "config.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/bufpool-internal.h"
#include "cache/cache.h"
#include "cache/compact-internal.h"
#include "cache/files-internal.h"
#include "cache/flush-internal.h"
#include "cache/gc-internal.h"
#include "cache/plan-internal.h"
#include "cache/readahead-internal.h"
#include "cache/blocks-internal.h"
#include "cache/write-internal.h"
#include "cache/writeback-internal.h"
#include "lib/tl.h"

#define DEFAULT_LIMIT     (256ULL << 20)
#define DEFAULT_THREADS   8
#define DEFAULT_DOWNLOADS 16

struct cache {
	struct meta *m;
	struct cache_bufpool *bp;
	struct cache_blocks *st;
	struct cache_planner *pl;
	struct cache_files *ft;
	struct cache_writer *wr;
	struct cache_compactor *cp;
	struct cache_flusher *fl;
	struct cache_ra *ra;
	struct cache_gc *gc;
	_Atomic uint64_t wait_ms; /* store_wait_max (0: no bound) */
	struct tl_pool *rdq;      /* reads that callers wait for, bounded */
};

/* Flush f, waiting at most store_wait_max (flush.c). */
static int
flush_bounded(struct cache *c, struct cfile *f)
{
	return cache_file_flush_wait(c->fl, f, atomic_load(&c->wait_ms));
}

/* ---- writes ------------------------------------------------------------- */

/* Take len bytes of the buffer total, flushing to make room. */
static int
space_reserve(struct cache *c, struct cfile *f, uint64_t len)
{
	struct cfile *v;
	int r;

	while (!cache_space_take(c->ft, len)) {
		if (atomic_load(&f->bytes) > 0) {
			r = flush_bounded(c, f);
			if (r < 0)
				return r;
		} else if ((v = cache_file_largest(c->ft)) != NULL) {
			r = flush_bounded(c, v);
			cache_file_put(c->ft, v);
			/* Not this writer's failure: wait a little for room
			 * that flushes in flight may free, then ask the
			 * client to retry later (JUKEBOX) rather than hold a
			 * worker while the store fails (the other file's
			 * data stays buffered until it can be stored). */
			if (r < 0 && !cache_space_wait(c->ft, len, 100))
				return -EAGAIN;
		}
		cache_space_wait(c->ft, len, 10);
	}
	return 0;
}

int
cache_write(struct cache *c, uint64_t ino, uint64_t off, const void *buf,
	    size_t len, bool stable)
{
	struct cache_sealv sealed = {NULL, 0, 0};
	struct cfile *f;
	uint64_t want;
	int64_t grown;
	bool full = false;
	int r = 0;

	if (off >= META_MAX_FILE_SIZE || len > META_MAX_FILE_SIZE - off)
		return -EFBIG;
	f = cache_file_get(c->ft, ino, true);
	if (len > 0) {
		/* What the write may allocate: its bytes, partial blocks
		 * growing, new builders. */
		want = len + cache_writer_slack(c->wr);
		r = space_reserve(c, f, want);
		if (r < 0)
			goto out;
		cache_file_write(c->wr, f, off, buf, len, &grown, &full,
				 &sealed);
		cache_flush_upload(c->fl, f, &sealed);
		cache_sealv_free(&sealed);
		if (grown <= (int64_t)want)
			cache_space_release(c->ft, want - (uint64_t)grown);
		else /* cannot happen: the slack bounds the growth */
			cache_space_add(c->ft, (uint64_t)grown - want);
	}
	if (stable || full)
		r = flush_bounded(c, f);
	/* An unstable write is buffered whatever became of the flush
	 * that makes room: the flush goes on without it. */
	if (r == -EAGAIN && !stable)
		r = 0;
out:
	cache_file_put(c->ft, f);
	return r;
}

int
cache_flush(struct cache *c, uint64_t ino)
{
	struct cfile *f = cache_file_get(c->ft, ino, false);
	int r;

	if (f == NULL)
		return 0;
	r = flush_bounded(c, f);
	cache_file_put(c->ft, f);
	return r;
}

void
cache_set_store_wait(struct cache *c, uint64_t ms)
{
	atomic_store(&c->wait_ms, ms);
}

void
cache_forget(struct cache *c, uint64_t ino)
{
	struct cfile *f = cache_file_get(c->ft, ino, false);

	if (f == NULL)
		return;
	/* A flush waiting for the store holds the builders: the REMOVE
	 * does not wait for it longer than store_wait_max. */
	cache_file_drop_wait(c->fl, f, atomic_load(&c->wait_ms));
	cache_file_put(c->ft, f);
}

void
cache_overlay_attr(struct cache *c, struct meta_attr *a)
{
	struct cfile *f = cache_file_get(c->ft, a->ino, false);
	uint64_t end, mtime;

	if (f == NULL)
		return;
	end = cache_file_end(f, &mtime);
	if (end > 0) {
		a->size = TL_MAX(a->size, end);
		if (mtime > a->mtime_ns)
			a->mtime_ns = mtime;
		if (mtime > a->ctime_ns)
			a->ctime_ns = mtime;
	}
	cache_file_put(c->ft, f);
}

uint64_t
cache_buffered(struct cache *c)
{
	return cache_space_used(c->ft);
}

/* ---- reads -------------------------------------------------------------- */

/* Plan [off, end) of ino and queue the fragmented chunks it touches. */
static int
plan(struct cache *c, uint64_t ino, uint64_t off, uint64_t end,
     struct cache_plan *p)
{
	int r = cache_plan_range(c->pl, ino, off, end, p);

	for (size_t i = 0; r == 0 && i < p->nfrag; i++)
		cache_compact_want(c->cp, ino, p->frag[i]);
	return r;
}

/* Read [off, end) into buf from committed slices, then lay the file's
 * buffered bytes over it (they are newer than anything committed).  A
 * commit between the two would hide the bytes it took from both, so the
 * file's generation is checked and the read retried (after a flush, if
 * commits keep coming).  f: ino's entry (NULL: nothing buffered).  p:
 * the plan of the range when the caller made one already (f NULL). */
static int
read_copy(struct cache *c, struct cfile *f, uint64_t ino, uint64_t off,
	  uint64_t end, void *buf, bool seq, struct cache_plan *p)
{
	struct cache_plan own = {0};
	uint64_t gen = 0;
	int r = 0, tries;

	if (p != NULL)
		return cache_plan_read(c->pl, p, buf, seq);
	for (tries = 0;; tries++) {
		if (f != NULL && tries >= 3) {
			r = flush_bounded(c, f);
			if (r < 0)
				break;
		}
		if (f != NULL) {
			pthread_mutex_lock(&f->mu);
			gen = f->gen;
			pthread_mutex_unlock(&f->mu);
		}
		r = plan(c, ino, off, end, &own);
		if (r == 0)
			r = cache_plan_read(c->pl, &own, buf, seq);
		cache_plan_free(&own);
		if (r < 0 || f == NULL)
			break;
		pthread_mutex_lock(&f->mu);
		if (f->gen == gen)
			cache_file_overlay(c->wr, f, off, end, buf);
		else
			r = -EAGAIN;
		pthread_mutex_unlock(&f->mu);
		if (r != -EAGAIN)
			break;
	}
	return r;
}

int
cache_read(struct cache *c, uint64_t ino, uint64_t size, uint64_t off,
	   size_t len, void *buf, size_t *got, bool *eof)
{
	struct cfile *f;
	uint64_t end;
	bool seq;
	int r;

	*got = 0;
	*eof = off >= size;
	if (off >= size || len == 0)
		return 0;
	if (atomic_load(&c->wait_ms) != 0 && !cache_blocks_local(c->st)) {
		/* bounded (cache_read_ref): one copy more */
		void *data, *ref;

		r = cache_read_ref(c, ino, size, off, len, false, &data, &ref,
				   got, eof);
		if (r == 0 && *got > 0)
			memcpy(buf, data, *got);
		if (ref != NULL)
			cache_read_done(ref);
		else
			free(data);
		return r;
	}
	end = off + TL_MIN(len, size - off);
	f = cache_file_get(c->ft, ino, false);
	seq = cache_ra_note(c->ra, ino, size, off, end);
	r = read_copy(c, f, ino, off, end, buf, seq, NULL);
	if (f != NULL)
		cache_file_put(c->ft, f);
	if (r < 0)
		return r;
	*got = (size_t)(end - off);
	*eof = end == size;
	return 0;
}

/* What cache_read_ref lends: a block in memory (b), or a range of a
 * local object file (fd >= 0, the bytes at foff). */
struct cache_ref {
	struct cache *c;
	struct cache_mblk *b;
	int fd;
	uint64_t foff;
};

/* Whether the plan is one piece of data covering the whole range. */
static bool
one_piece(const struct cache_plan *p, uint64_t len)
{
	return p->n == 1 && p->p[0].id != 0 && p->p[0].n == len;
}

/* [off, end) without a copy: the range is the bytes of one block that
 * is fetched whole anyway, and the reply can point into that block.  1
 * when lent, 0 when not possible. */
static int
read_lend(struct cache *c, const struct cache_plan *p, uint64_t len, bool seq,
	  void **data, void **ref)
{
	struct cache_ref *cr;
	struct cache_mblk *b;
	const uint8_t *d;
	int r;

	if (!one_piece(p, len) || !cache_plan_whole(c->pl, &p->p[0], seq))
		return 0;
	r = cache_blocks_ref(c->st, &p->p[0], seq, &b, &d);
	if (r < 0)
		return r;
	cr = tl_malloc(sizeof(*cr));
	*cr = (struct cache_ref){c, b, -1, 0};
	*data = (void *)d;
	*ref = cr;
	return 1;
}

/* A local store: when the range is one piece, lend the object file it
 * lies in, for the reply to be sent from the page cache (sendfile) with
 * no copy at all; 1 when lent, 0 to read it instead.  Bytes not in the
 * page cache yet (the cold read) are read with this plan; after any
 * other failure (the object gone: the file was truncated or removed
 * since the plan) *replan sends the copying read to plan again, retry
 * and report. */
static int
read_file(struct cache *c, const struct cache_plan *p, uint64_t len, void **ref,
	  bool *replan)
{
	struct cache_ref *cr;
	int r, fd;

	if (!one_piece(p, len))
		return 0;
	r = cache_blocks_open_range(c->st, &p->p[0], &fd);
	if (r < 0) {
		*replan = r != -EAGAIN;
		return 0;
	}
	cr = tl_malloc(sizeof(*cr));
	*cr = (struct cache_ref){c, NULL, fd, p->p[0].from};
	*ref = cr;
	return 1;
}

static int
read_ref_now(struct cache *c, uint64_t ino, uint64_t size, uint64_t off,
	     size_t len, bool files, void **data, void **ref, size_t *got,
	     bool *eof)
{
	struct cache_plan p = {0}, *planned = NULL;
	bool seq, local = cache_blocks_local(c->st), replan = false;
	struct cfile *f;
	uint64_t end;
	int r = 0;

	*data = NULL;
	*ref = NULL;
	*got = 0;
	*eof = off >= size;
	if (off >= size || len == 0)
		return 0;
	end = off + TL_MIN(len, size - off);
	f = cache_file_get(c->ft, ino, false);
	seq = cache_ra_note(c->ra, ino, size, off, end);
	/* Buffered bytes would have to be laid over the block: copy.
	 * Otherwise one plan serves the lending and, failing that, the
	 * copy. */
	if (f == NULL && (!local || files)) {
		r = plan(c, ino, off, end, &p);
		planned = &p;
		if (r == 0 && !local)
			r = read_lend(c, &p, end - off, seq, data, ref);
		else if (r == 0)
			r = read_file(c, &p, end - off, ref, &replan);
		if (replan)
			planned = NULL;
	}
	if (r == 0) {
		*data = tl_malloc(end - off);
		r = read_copy(c, f, ino, off, end, *data, seq, planned);
		/* Bytes of a local store not in the page cache: the plan
		 * is older than read_file's look at the object, and a
		 * truncate or remove that committed since may have had the
		 * blocks it names deleted.  Failing with it, read with a
		 * fresh one (as a read without the lending attempt would). */
		if (r < 0 && planned != NULL && local)
			r = read_copy(c, f, ino, off, end, *data, seq, NULL);
		if (r < 0) {
			free(*data);
			*data = NULL;
		}
	}
	cache_plan_free(&p);
	if (f != NULL)
		cache_file_put(c->ft, f);
	if (r < 0)
		return r;
	*got = (size_t)(end - off);
	*eof = end == size;
	return 0;
}

/*
 * store_wait_max for READ: from a store that is not read in place (S3,
 * or a file store under wrappers that transform or delay), a read runs
 * on the cache's "readq" pool and the caller waits for it at most
 * store_wait_max, then answers -EAGAIN (NFS3ERR_JUKEBOX) and its worker
 * is free; the read goes on and, when it ends, frees what it read
 * itself (the blocks it fetched stay in memory for the client's retry).
 * A local store reads in place (page cache, sendfile): it never waits
 * for a remote store, and pays no hand-off.
 */
struct rdq_job {
	struct cache *c;
	uint64_t ino, size, off;
	size_t len;
	bool files;
	/* results */
	void *data, *ref;
	size_t got;
	bool eof;
	int r;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done, abandoned; /* under mu */
};

static void
rdq_free(struct rdq_job *j, bool results)
{
	if (results && j->ref != NULL)
		cache_read_done(j->ref);
	else if (results)
		free(j->data);
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv);
	free(j);
}

static void
rdq_fn(void *arg)
{
	struct rdq_job *j = arg;
	bool abandoned;

	j->r = read_ref_now(j->c, j->ino, j->size, j->off, j->len, j->files,
			    &j->data, &j->ref, &j->got, &j->eof);
	pthread_mutex_lock(&j->mu);
	j->done = true;
	abandoned = j->abandoned;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
	if (abandoned)
		rdq_free(j, true);
}

int
cache_read_ref(struct cache *c, uint64_t ino, uint64_t size, uint64_t off,
	       size_t len, bool files, void **data, void **ref, size_t *got,
	       bool *eof)
{
	uint64_t wait = atomic_load(&c->wait_ms), now, end;
	struct rdq_job *j;
	int r;

	if (wait == 0 || cache_blocks_local(c->st) || off >= size || len == 0)
		return read_ref_now(c, ino, size, off, len, files, data, ref,
				    got, eof);
	j = tl_calloc(1, sizeof(*j));
	j->c = c;
	j->ino = ino;
	j->size = size;
	j->off = off;
	j->len = len;
	j->files = files;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	tl_pool_submit(c->rdq, rdq_fn, j);
	end = tl_mono_ns() + wait * 1000000ULL;
	pthread_mutex_lock(&j->mu);
	while (!j->done && (now = tl_mono_ns()) < end)
		cache_cond_wait_ms(&j->cv, &j->mu,
				   (end - now + 999999) / 1000000);
	if (!j->done) {
		j->abandoned = true; /* rdq_fn frees it */
		pthread_mutex_unlock(&j->mu);
		*data = NULL;
		*ref = NULL;
		*got = 0;
		*eof = false;
		return -EAGAIN;
	}
	pthread_mutex_unlock(&j->mu);
	*data = j->data;
	*ref = j->ref;
	*got = j->got;
	*eof = j->eof;
	r = j->r;
	rdq_free(j, false);
	return r;
}

void
cache_read_done(void *ref)
{
	struct cache_ref *cr = ref;

	if (cr == NULL)
		return;
	if (cr->b != NULL)
		cache_blocks_unref(cr->c->st, cr->b);
	if (cr->fd >= 0)
		close(cr->fd);
	free(cr);
}

bool
cache_ref_file(const void *ref, int *fd, uint64_t *off)
{
	const struct cache_ref *cr = ref;

	if (cr == NULL || cr->fd < 0)
		return false;
	*fd = cr->fd;
	*off = cr->foff;
	return true;
}

int
cache_compact(struct cache *c, uint64_t ino, uint32_t chunk)
{
	return cache_compact_chunk(c->cp, ino, chunk);
}

/* ---- figures ------------------------------------------------------------ */

int
cache_stats(struct cache *c, struct cache_stats *out)
{
	memset(out, 0, sizeof(*out));
	cache_blocks_stats(c->st, out);
	out->prefetches = cache_ra_prefetches(c->ra);
	out->compacted = cache_compacted(c->cp);
	out->compact_queued = cache_compact_queued(c->cp);
	out->bgjob = c->gc != NULL;
	if (c->gc != NULL)
		cache_gc_rates(c->gc, &out->bgjob_delete_rate,
			       &out->bgjob_txn_rate);
	return 0;
}

unsigned
cache_compact_queue_len(struct cache *c)
{
	return cache_compact_queued(c->cp);
}

void
cache_set_bgjob_rates(struct cache *c, uint64_t delete_rate, uint64_t txn_rate)
{
	if (c->gc != NULL)
		cache_gc_set_rates(c->gc, delete_rate, txn_rate);
}

int
cache_staging_scan(const char *cache_dirs, uint64_t max_age_ms,
		   struct cache_stats *out)
{
	return cache_wb_scan(cache_dirs, max_age_ms, out);
}

/* ---- open and close ----------------------------------------------------- */

/* Whole blocks (read blocks, full write buffers) are mapped and
 * unmapped: with glibc's adaptive threshold they would come from
 * per-thread arenas, which keep freed blocks resident, and the process
 * would hold far more than its budgets. */
static void
malloc_tune(uint32_t block_size)
{
#ifdef M_MMAP_THRESHOLD
	if (block_size >= (1u << 20) && block_size <= (32u << 20)) {
		mallopt(M_MMAP_THRESHOLD, (int)block_size);
		/* Fixing the threshold also fixes the trim threshold at
		 * 128 KiB: every freed 1 MiB READ reply would then be
		 * handed back to the kernel (madvise) and faulted in again
		 * by the next one, a quarter of a READ's CPU.  Keep up to
		 * a block per arena (glibc's adaptive default keeps two). */
		mallopt(M_TRIM_THRESHOLD, (int)block_size);
	}
#else
	(void)block_size;
#endif
}

int
cache_open(struct meta *m, struct os_store *os, const struct cache_opts *o,
	   struct cache **out)
{
	const struct meta_settings *st = meta_settings(m);
	const struct cache_opts zero = {0};
	unsigned up, dl;
	uint32_t bs;
	struct cache *c;
	int r;

	*out = NULL;
	bs = st->block_size;
	if (bs == 0 || (bs & (bs - 1)) || META_CHUNK_SIZE % bs != 0)
		return -EINVAL;
	if (o == NULL)
		o = &zero;
	malloc_tune(bs);
	up = o->upload_threads ? o->upload_threads : DEFAULT_THREADS;
	dl = o->download_threads ? o->download_threads : DEFAULT_DOWNLOADS;
	c = tl_calloc(1, sizeof(*c));
	c->m = m;
	atomic_init(&c->wait_ms, o->store_wait_ms);
	c->rdq = tl_pool_create("readq", dl, 0);
	c->bp = cache_bufpool_open(bs);
	r = cache_blocks_open(os, o, st->name, bs, up, c->bp, &c->st);
	if (r < 0)
		goto fail;
	cache_blocks_set_meta(c->st, m);
	c->pl = cache_planner_open(m, c->st, bs, dl);
	c->ft = cache_files_open(o->buffer_limit ? o->buffer_limit
						 : DEFAULT_LIMIT);
	c->wr = cache_writer_open(m, c->ft, c->st, c->bp, bs);
	c->cp = cache_compactor_open(m, c->ft, c->pl, c->st, c->bp, bs, o->gc);
	c->fl = cache_flusher_open(
		m, c->ft, c->wr, c->st, c->cp, bs, up, o->restore_age_ms,
		o->compact_records ? o->compact_records : CACHE_COMPACT_RECORDS,
		os_unwrap(os, "crypt") != NULL ? 0 : o->inline_max);
	/* From a local store, prefetch only hints (readahead.c). */
	c->ra = cache_ra_open(c->pl, c->st, c->cp, bs, o->readahead_max,
			      o->readahead_budget, dl);
	if (o->gc && (r = cache_gc_start(m, c->st, c->cp, bs, o, &c->gc)) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	cache_close(c);
	return r;
}

/* Flush every file; what cannot be stored now is lost, so say so.
 * This is the one place where data acknowledged UNSTABLE is dropped
 * while its file exists (flush.c keeps it otherwise): the process is
 * stopping, and the next one answers with another write verifier
 * (random per start, nfsd/nfs3_data.c), so clients resend what they
 * had not seen committed (RFC 1813).  The server answers no request
 * any more by now (nfsd_server_free ran first), so no COMMIT can answer
 * OK for what is dropped here. */
static void
flush_all(struct cache *c)
{
	struct cfile *f;
	int r;

	while ((f = cache_file_any(c->ft)) != NULL) {
		r = cache_file_flush(c->fl, f);
		if (r < 0 && r != -ENOENT)
			tl_err("cache",
			       "inode %llu: buffered data "
			       "lost at close: %s",
			       (unsigned long long)f->ino, strerror(-r));
		if (r < 0)
			cache_file_drop(c->fl, f);
		cache_file_put(c->ft, f);
	}
}

void
cache_close(struct cache *c)
{
	if (c == NULL)
		return;
	cache_gc_stop(c->gc);
	if (c->rdq != NULL)
		tl_pool_destroy(c->rdq); /* reads in flight end first */
	if (c->fl != NULL)
		flush_all(c);
	cache_flusher_close(c->fl);
	cache_ra_close(c->ra);
	cache_planner_close(c->pl);
	cache_compactor_close(c->cp);
	cache_writer_close(c->wr);
	/* Writeback stops (staged blocks stay for the next start), the
	 * disk cache writes its fills, the blocks in memory go. */
	cache_blocks_close(c->st);
	cache_bufpool_close(c->bp);
	cache_files_close(c->ft);
	free(c);
}
