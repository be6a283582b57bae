/*
 * cache.c - the data path's public calls: the table of files with
 * buffered writes, the buffer limit, reads and the deletion job.
 *
 * Buffer limit: the total counts the memory builders allocated
 * (extent buffers, which grow with what was written, and bookkeeping),
 * not bytes written.  cache_write reserves its length plus the most it
 * may allocate beyond it (cache_write_slack) before copying (under
 * space_mu, so concurrent writers cannot overshoot together) and gives
 * back what it did not need; bytes leave the total when their buffers
 * are freed (committed, or the file removed: write.c).  A writer that
 * does not fit flushes its own file (or, having nothing buffered, the
 * file holding the most) until it fits, so the total stays within the
 * limit plus one write and its slack.  When the store fails, its own
 * flush's error is the write's (NFS3ERR_IO); another file's is not, and
 * the write gets -EAGAIN (NFS3ERR_JUKEBOX) after a short wait.
 */
#include "config.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache-internal.h"

#define CACHE_NBUCKETS 1024
#define CACHE_DEFAULT_LIMIT (256ULL << 20)
#define CACHE_DEFAULT_THREADS 8
#define CACHE_DEFAULT_DOWNLOADS 16
#define CACHE_GC_BATCH 256
#define CACHE_GC_PAUSE_MS 50 /* after a round that was not full */
#define CACHE_TRIM_NS (1000ULL * 1000000) /* malloc_trim at most this often */

/* ---- the file table ----------------------------------------------------- */

static size_t
bucket(struct cache *c, uint64_t ino)
{
	return (size_t)((ino * 0x9E3779B97F4A7C15ULL) >> 40) % c->nbuckets;
}

/* A counted reference to ino's entry; NULL when absent and !create. */
struct cfile *
cache_file_get(struct cache *c, uint64_t ino, bool create)
{
	struct cfile *f;
	size_t h = bucket(c, ino);

	pthread_mutex_lock(&c->lock);
	for (f = c->tab[h]; f != NULL && f->ino != ino; f = f->hnext)
		;
	if (f == NULL && create) {
		f = tl_calloc(1, sizeof(*f));
		f->ino = ino;
		pthread_mutex_init(&f->mu, NULL);
		pthread_cond_init(&f->cv, NULL);
		atomic_init(&f->bytes, 0);
		f->hnext = c->tab[h];
		c->tab[h] = f;
	}
	if (f != NULL)
		f->refs++;
	pthread_mutex_unlock(&c->lock);
	return f;
}

/* Drop a reference; an unreferenced entry without buffered data goes. */
void
cache_file_put(struct cache *c, struct cfile *f)
{
	struct cfile **pp;
	bool empty;

	pthread_mutex_lock(&c->lock);
	if (--f->refs > 0)
		goto out;
	pthread_mutex_lock(&f->mu);
	empty = f->head == NULL && !f->flushing;
	pthread_mutex_unlock(&f->mu);
	if (!empty)
		goto out;
	for (pp = &c->tab[bucket(c, f->ino)]; *pp != f; pp = &(*pp)->hnext)
		;
	*pp = f->hnext;
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free(f);
out:
	pthread_mutex_unlock(&c->lock);
}

/* The file with the most buffered bytes (referenced), or NULL. */
struct cfile *
cache_file_largest(struct cache *c)
{
	struct cfile *f, *best = NULL;
	uint64_t most = 0, v;
	size_t i;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < c->nbuckets; i++)
		for (f = c->tab[i]; f != NULL; f = f->hnext) {
			v = atomic_load(&f->bytes);
			if (v > most) {
				most = v;
				best = f;
			}
		}
	if (best)
		best->refs++;
	pthread_mutex_unlock(&c->lock);
	return best;
}

void
cache_space_release(struct cache *c, uint64_t n)
{
	if (n == 0)
		return;
	atomic_fetch_sub(&c->buffered, n);
	pthread_mutex_lock(&c->space_mu);
	pthread_cond_broadcast(&c->space_cv);
	pthread_mutex_unlock(&c->space_mu);
}

static void
timed_wait(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(cv, mu, &ts);
}

/* Reserve len bytes of buffer, flushing to make room. */
static int
space_reserve(struct cache *c, struct cfile *f, uint64_t len)
{
	struct cfile *v;
	uint64_t cur;
	int r;

	pthread_mutex_lock(&c->space_mu);
	for (;;) {
		cur = atomic_load(&c->buffered);
		if (cur == 0 || cur + len <= c->limit)
			break;
		pthread_mutex_unlock(&c->space_mu);
		if (atomic_load(&f->bytes) > 0) {
			r = cache_file_flush(c, f);
			if (r < 0)
				return r;
		} else if ((v = cache_file_largest(c)) != NULL) {
			r = cache_file_flush(c, v);
			cache_file_put(c, v);
			if (r < 0) {
				/* Not this writer's failure: wait a little for
				 * room that flushes in flight may free, then
				 * ask the client to retry later (JUKEBOX)
				 * rather than hold a worker while the store
				 * fails (the other file's data stays
				 * buffered until it can be stored). */
				pthread_mutex_lock(&c->space_mu);
				timed_wait(&c->space_cv, &c->space_mu, 100);
				cur = atomic_load(&c->buffered);
				pthread_mutex_unlock(&c->space_mu);
				if (cur != 0 && cur + len > c->limit)
					return -EAGAIN;
			}
		}
		pthread_mutex_lock(&c->space_mu);
		cur = atomic_load(&c->buffered);
		if (cur != 0 && cur + len > c->limit)
			timed_wait(&c->space_cv, &c->space_mu, 10);
	}
	atomic_fetch_add(&c->buffered, len);
	pthread_mutex_unlock(&c->space_mu);
	return 0;
}

/* ---- public calls ------------------------------------------------------- */

int
cache_write(struct cache *c, uint64_t ino, uint64_t off, const void *buf,
	    size_t len, bool stable)
{
	struct cfile *f;
	uint64_t want;
	int64_t grown;
	bool full = false;
	int r = 0;

	if (off >= META_MAX_FILE_SIZE || len > META_MAX_FILE_SIZE - off)
		return -EFBIG;
	f = cache_file_get(c, ino, true);
	if (len > 0) {
		/* What the write may allocate: its bytes, partial blocks
		 * growing, new builders. */
		want = len + cache_write_slack(c);
		r = space_reserve(c, f, want);
		if (r < 0)
			goto out;
		cache_file_write(c, f, off, buf, len, &grown, &full);
		if (grown <= (int64_t)want)
			cache_space_release(c, want - (uint64_t)grown);
		else /* cannot happen: the slack bounds the growth */
			atomic_fetch_add(&c->buffered,
					 (uint64_t)grown - want);
	}
	if (stable || full)
		r = cache_file_flush(c, f);
out:
	cache_file_put(c, f);
	return r;
}

int
cache_flush(struct cache *c, uint64_t ino)
{
	struct cfile *f = cache_file_get(c, ino, false);
	int r;

	if (f == NULL)
		return 0;
	r = cache_file_flush(c, f);
	cache_file_put(c, f);
	return r;
}

void
cache_forget(struct cache *c, uint64_t ino)
{
	struct cfile *f = cache_file_get(c, ino, false);

	if (f == NULL)
		return;
	cache_file_drop(c, f);
	cache_file_put(c, f);
}

void
cache_overlay_attr(struct cache *c, struct meta_attr *a)
{
	struct cfile *f = cache_file_get(c, a->ino, false);
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
	cache_file_put(c, f);
}

uint64_t
cache_buffered(struct cache *c)
{
	return atomic_load(&c->buffered);
}

/* ---- reads -------------------------------------------------------------- */

/* Add the pieces of bytes [off, off+len) of slice id (stored size size)
 * that land at dst (NULL: prefetch). */
int
cache_plan_slice(struct cache *c, uint64_t id, uint32_t size, uint32_t off,
		 uint32_t len, uint8_t *dst, struct piece **v, size_t *n,
		 size_t *cap)
{
	uint32_t k, from, blen, k_n;

	if ((uint64_t)off + len > size)
		return -EIO; /* a record pointing past its slice */
	while (len > 0) {
		k = off / c->bs;
		from = off % c->bs;
		blen = TL_MIN(c->bs, size - k * c->bs);
		k_n = TL_MIN(len, blen - from);
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 8;
			*v = tl_realloc(*v, *cap * sizeof(**v));
		}
		(*v)[(*n)++] = (struct piece){id, k, blen, from, k_n, dst};
		off += k_n;
		if (dst != NULL)
			dst += k_n;
		len -= k_n;
	}
	return 0;
}

int
cache_plan(struct cache *c, uint64_t ino, uint64_t off, uint64_t end,
	   uint8_t *buf, struct piece **out, size_t *nout)
{
	struct meta_slice *s = NULL;
	struct cache_seg *seg = NULL;
	struct piece *v = NULL;
	size_t n = 0, cap = 0, ns = 0, nseg = 0, i;
	uint64_t pos, cend, base;
	uint32_t chunk;
	int r = 0;

	for (pos = off; r == 0 && pos < end; pos = cend) {
		chunk = (uint32_t)(pos / META_CHUNK_SIZE);
		base = (uint64_t)chunk * META_CHUNK_SIZE;
		cend = TL_MIN(end, base + META_CHUNK_SIZE);
		r = meta_read_chunk(c->m, ino, chunk, (uint32_t)(pos - base),
				    (uint32_t)(cend - base), &s, &ns);
		if (r == 0)
			r = cache_view_build(s, ns, (uint32_t)(pos - base),
					     (uint32_t)(cend - base), &seg,
					     &nseg);
		if (r == 0 && nseg >= CACHE_COMPACT_SEGS) {
			size_t data = 0;

			for (i = 0; i < nseg; i++)
				data += seg[i].id != 0;
			if (data >= CACHE_COMPACT_SEGS)
				cache_compact_want(c, ino, chunk);
		}
		for (i = 0; r == 0 && i < nseg; i++) {
			uint8_t *p = buf ? buf + (base + seg[i].pos - off)
					 : NULL;

			if (seg[i].id == 0) {
				if (p != NULL)
					memset(p, 0, seg[i].len);
				continue;
			}
			r = cache_plan_slice(c, seg[i].id, seg[i].size,
					     seg[i].off, seg[i].len, p, &v, &n,
					     &cap);
		}
		free(seg);
		free(s);
		seg = NULL;
		s = NULL;
	}
	if (r < 0) {
		free(v);
		v = NULL;
		n = 0;
	}
	*out = v;
	*nout = n;
	return r;
}

/* Pieces of one read fetched in parallel: all but the first on the
 * read pool, the first by the caller. */
struct rdwait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t left;
	int r;
};

struct rdjob {
	struct cache *c;
	const struct piece *p;
	bool whole, seq;
	struct rdwait *w;
};

static void
rd_fn(void *arg)
{
	struct rdjob *j = arg;
	int r = cache_piece_read(j->c, j->p, j->whole, j->seq);

	pthread_mutex_lock(&j->w->mu);
	if (r < 0 && j->w->r == 0)
		j->w->r = r;
	if (--j->w->left == 0)
		pthread_cond_signal(&j->w->cv);
	pthread_mutex_unlock(&j->w->mu);
	free(j);
}

/* A piece is fetched whole when the stream is sequential or the piece
 * covers at least half its block (a range GET would save little);
 * otherwise only its bytes (see block.c).  A bare file:// store is read
 * directly, a piece's bytes straight into the reply: its objects sit in
 * the kernel's page cache (readahead.c hints what comes), so a
 * whole block in memory would only add a 4 MiB copy, fresh pages to
 * fault in and a second copy into the reply (most of a READ's CPU). */
static bool
want_whole(const struct cache *c, const struct piece *p, bool seq)
{
	if (c->os_local)
		return false;
	return seq || (uint64_t)p->n * 2 >= p->blen;
}

int
cache_read_pieces(struct cache *c, const struct piece *p, size_t n, bool seq)
{
	struct rdwait w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			   0, 0};
	struct rdjob *j;
	size_t i;
	int r;

	if (n == 0)
		return 0;
	w.left = n - 1;
	for (i = 1; i < n; i++) {
		j = tl_malloc(sizeof(*j));
		*j = (struct rdjob){c, &p[i], want_whole(c, &p[i], seq), seq,
				    &w};
		tl_pool_submit(c->rd, rd_fn, j);
	}
	r = cache_piece_read(c, &p[0], want_whole(c, &p[0], seq), seq);
	pthread_mutex_lock(&w.mu);
	while (w.left > 0)
		pthread_cond_wait(&w.cv, &w.mu);
	if (r == 0)
		r = w.r;
	pthread_mutex_unlock(&w.mu);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	return r;
}

/* Read [off, end) into buf from committed slices, then lay the file's
 * buffered bytes over it (they are newer than anything committed).  A
 * commit between the two would hide the bytes it took from both, so the
 * file's generation is checked and the read retried (after a flush, if
 * commits keep coming).  f: ino's entry (NULL: nothing buffered). */
static int
read_copy(struct cache *c, struct cfile *f, uint64_t ino, uint64_t off,
	  uint64_t end, void *buf, bool seq)
{
	struct piece *p = NULL;
	size_t np = 0;
	uint64_t gen = 0;
	int r = 0, tries;

	for (tries = 0;; tries++) {
		if (f != NULL && tries >= 3) {
			r = cache_file_flush(c, f);
			if (r < 0)
				break;
		}
		if (f != NULL) {
			pthread_mutex_lock(&f->mu);
			gen = f->gen;
			pthread_mutex_unlock(&f->mu);
		}
		r = cache_plan(c, ino, off, end, buf, &p, &np);
		if (r == 0)
			r = cache_read_pieces(c, p, np, seq);
		free(p);
		p = NULL;
		if (r < 0 || f == NULL)
			break;
		pthread_mutex_lock(&f->mu);
		if (f->gen == gen)
			cache_file_overlay(c, f, off, end, buf);
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
	end = off + TL_MIN(len, size - off);
	f = cache_file_get(c, ino, false);
	seq = cache_ra_note(c, ino, size, off, end);
	r = read_copy(c, f, ino, off, end, buf, seq);
	if (f != NULL)
		cache_file_put(c, f);
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
	struct mblk *b;
	int fd;
	uint64_t foff;
};

static uint8_t lend_mark;

/* [off, end) without a copy: when nothing of the file is buffered and
 * the range is the bytes of one block that is fetched whole anyway, the
 * reply can point into that block.  1 when lent, 0 when not possible. */
static int
read_lend(struct cache *c, uint64_t ino, uint64_t off, uint64_t end,
	  bool seq, void **data, void **ref)
{
	struct piece *p = NULL;
	struct cache_ref *cr;
	struct mblk *b;
	size_t np = 0;
	int r;

	r = cache_plan(c, ino, off, end, NULL, &p, &np);
	/* A hole is no piece: the one piece must cover the whole range. */
	if (r < 0 || np != 1 || p[0].n != end - off ||
	    !want_whole(c, &p[0], seq)) {
		free(p);
		return r < 0 ? r : 0;
	}
	/* A reader's piece, not a prefetch's (dst NULL, see block.c);
	 * nothing is copied to it. */
	p[0].dst = &lend_mark;
	r = cache_piece_ref(c, &p[0], seq, &b);
	if (r == 0) {
		cr = tl_malloc(sizeof(*cr));
		*cr = (struct cache_ref){c, b, -1, 0};
		*data = b->data + p[0].from;
		*ref = cr;
		r = 1;
	}
	free(p);
	return r;
}

/* A bare file:// store: when [off, end) is one piece, lend the object
 * file it lies in, for the reply to be sent from the page cache
 * (sendfile) with no copy at all; 1 when lent, 0 to read it instead. */
static int
read_file(struct cache *c, uint64_t ino, uint64_t off, uint64_t end,
	  void **ref)
{
	struct piece *p = NULL;
	struct cache_ref *cr;
	char key[256];
	size_t np = 0;
	int r, fd;

	r = cache_plan(c, ino, off, end, NULL, &p, &np);
	if (r < 0 || np != 1 || p[0].n != end - off) {
		free(p);
		return r < 0 ? r : 0;
	}
	cache_block_key(key, sizeof(key), c->volume, p[0].id, p[0].idx,
			p[0].blen);
	/* Any failure: the copying read, which retries and reports. */
	r = os_open_range(c->os, key, p[0].from, p[0].n, &fd);
	if (r == 0) {
		atomic_fetch_add(&c->fetches, 1);
		atomic_fetch_add(&c->fetch_bytes, p[0].n);
		cr = tl_malloc(sizeof(*cr));
		*cr = (struct cache_ref){c, NULL, fd, p[0].from};
		*ref = cr;
	}
	free(p);
	return r == 0;
}

int
cache_read_ref(struct cache *c, uint64_t ino, uint64_t size, uint64_t off,
	       size_t len, bool files, void **data, void **ref, size_t *got,
	       bool *eof)
{
	struct cfile *f;
	uint64_t end;
	bool seq;
	int r = 0;

	*data = NULL;
	*ref = NULL;
	*got = 0;
	*eof = off >= size;
	if (off >= size || len == 0)
		return 0;
	end = off + TL_MIN(len, size - off);
	f = cache_file_get(c, ino, false);
	seq = cache_ra_note(c, ino, size, off, end);
	/* Buffered bytes would have to be laid over the block: copy. */
	if (f == NULL && !c->os_local)
		r = read_lend(c, ino, off, end, seq, data, ref);
	else if (f == NULL && files && c->os_local)
		r = read_file(c, ino, off, end, ref);
	if (r == 0) {
		*data = tl_malloc(end - off);
		r = read_copy(c, f, ino, off, end, *data, seq);
		if (r < 0) {
			free(*data);
			*data = NULL;
		}
	}
	if (f != NULL)
		cache_file_put(c, f);
	if (r < 0)
		return r;
	*got = (size_t)(end - off);
	*eof = end == size;
	return 0;
}

void
cache_read_done(void *ref)
{
	struct cache_ref *cr = ref;

	if (cr == NULL)
		return;
	if (cr->b != NULL)
		cache_blk_unref(cr->c, cr->b);
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

/* ---- deletion job ------------------------------------------------------- */

/* Delete the objects of one released slice; 0 when all are gone. */
static int
gc_slice(struct cache *c, const struct meta_slice_ref *ref)
{
	uint32_t k, nb = (uint32_t)(((uint64_t)ref->size + c->bs - 1) / c->bs);
	char key[256];
	int r;

	for (k = 0; k < nb; k++) {
		cache_block_key(key, sizeof(key), c->volume, ref->id, k,
				TL_MIN(c->bs, ref->size - k * c->bs));
		r = cache_delete_block(c, key);
		if (r < 0)
			return r;
	}
	return 0;
}

/* One round: delete what meta released.  Returns the number of slices
 * forgotten, or a negative errno. */
static int
gc_round(struct cache *c, struct meta_slice_ref *refs)
{
	size_t n = 0, i, done = 0;
	int r;

	r = meta_gc_next(c->m, refs, CACHE_GC_BATCH, &n);
	if (r < 0 || n == 0)
		return r;
	/* Only slices whose objects are all gone are released; the others
	 * come back in a later round. */
	for (i = 0; i < n; i++)
		if (gc_slice(c, &refs[i]) == 0)
			refs[done++] = refs[i];
	if (done > 0) {
		r = meta_gc_release(c->m, refs, done);
		if (r < 0)
			return r;
	}
	return done < n ? -EIO : (int)done;
}

/* Hand the free memory of every malloc arena back to the kernel, once a
 * second at most.  glibc keeps what its per-thread arenas freed mapped
 * for reuse; blocks of many sizes churning through many threads (random
 * writes with writeback and a disk cache: packed slices, staged and
 * cached blocks) leave the arenas fragmented, and the process then held
 * 900 MiB resident with 150 MiB in use (malloc_stats), more after each
 * run of the load.  malloc_trim(0) releases the free pages inside the
 * arenas too (MADV_DONTNEED), at the price of faulting them in again
 * when reused: a few milliseconds a second at most. */
static void
trim_memory(uint64_t *last)
{
#ifdef __GLIBC__
	uint64_t now = tl_mono_ns();

	if (now - *last < CACHE_TRIM_NS)
		return;
	*last = now;
	malloc_trim(0);
#else
	(void)last;
#endif
}

static void *
gc_main(void *arg)
{
	struct cache *c = arg;
	struct meta_slice_ref *refs = tl_malloc(CACHE_GC_BATCH * sizeof(*refs));
	uint64_t trimmed = tl_mono_ns();
	int r;

	pthread_mutex_lock(&c->gc_mu);
	while (!c->stop) {
		pthread_mutex_unlock(&c->gc_mu);
		r = gc_round(c, refs);
		if (r < 0)
			tl_debug("cache", "gc round: %s", strerror(-r));
		cache_compact_round(c);
		trim_memory(&trimmed);
		pthread_mutex_lock(&c->gc_mu);
		/* A round that was not full leaves a short pause, so that a
		 * remove storm is deleted in batches: one commit per round,
		 * and rounds back to back contend with the removes for
		 * LMDB's write lock and the disk. */
		if (r <= 0 && !c->stop)
			timed_wait(&c->gc_cv, &c->gc_mu, 1000);
		else if (r < CACHE_GC_BATCH && !c->stop)
			timed_wait(&c->gc_cv, &c->gc_mu, CACHE_GC_PAUSE_MS);
	}
	pthread_mutex_unlock(&c->gc_mu);
	free(refs);
	return NULL;
}

/* ---- open and close ----------------------------------------------------- */

/* The read side: memory blocks, disk cache, writeback, readahead. */
static int
open_blocks(struct cache *c, const struct cache_opts *o)
{
	struct cache_opts z = {0};
	unsigned dl;
	int r;

	if (o == NULL)
		o = &z;
	dl = o->download_threads ? o->download_threads
				 : CACHE_DEFAULT_DOWNLOADS;
	cache_blk_init(c, o->readahead_budget);
	c->rd = tl_pool_create("read", dl, 0);
	/* With a disk cache the operator asked for copies: keep them. */
	/* A local store (os_local: a file:// store under nothing but
	 * pass-through wrappers).  Injected latency makes it remote-like,
	 * and zstd or crypt read whole objects for any range: then blocks
	 * are worth holding in memory again. */
	c->os_local = os_local(c->os) &&
		      (o->cache_dirs == NULL || o->cache_dirs[0] == '\0');
	/* From a local store, prefetch only hints (readahead.c). */
	cache_ra_init(c, o->readahead_max, o->readahead_budget, dl);
	r = dcache_open(o->cache_dirs, o->cache_size, o->cache_free_floor,
			&c->dc);
	if (r < 0)
		return r;
	if (o->writeback)
		r = cache_wb_open(c, o->writeback_max_age_ms,
				  o->upload_threads ? o->upload_threads
						    : CACHE_DEFAULT_THREADS);
	return r;
}

int
cache_stats(struct cache *c, struct cache_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (c->wb != NULL)
		cache_wb_stats(c, out);
	if (c->dc != NULL)
		dcache_stats(c->dc, out);
	pthread_mutex_lock(&c->bmu);
	out->mem_blocks = c->mem_blocks;
	out->mem_bytes = c->mem_bytes;
	pthread_mutex_unlock(&c->bmu);
	out->mem_hits = atomic_load(&c->mem_hits);
	out->fetches = atomic_load(&c->fetches);
	out->fetch_bytes = atomic_load(&c->fetch_bytes);
	out->prefetches = atomic_load(&c->prefetches);
	out->compacted = atomic_load(&c->compacted);
	return 0;
}

int
cache_open(struct meta *m, struct os_store *os, const struct cache_opts *o,
	   struct cache **out)
{
	const struct meta_settings *st = meta_settings(m);
	struct cache *c;
	int r;

	*out = NULL;
	if (st->block_size == 0 || (st->block_size & (st->block_size - 1)) ||
	    META_CHUNK_SIZE % st->block_size != 0)
		return -EINVAL;
#ifdef M_MMAP_THRESHOLD
	/* Whole blocks (read blocks, full write buffers) are mapped and
	 * unmapped: with glibc's adaptive threshold they would come from
	 * per-thread arenas, which keep freed blocks resident, and the
	 * process would hold far more than its budgets. */
	if (st->block_size >= (1u << 20) && st->block_size <= (32u << 20)) {
		mallopt(M_MMAP_THRESHOLD, (int)st->block_size);
		/* Fixing the threshold also fixes the trim threshold at
		 * 128 KiB: every freed 1 MiB READ reply would then be
		 * handed back to the kernel (madvise) and faulted in again
		 * by the next one, a quarter of a READ's CPU.  Keep up to
		 * a block per arena (glibc's adaptive default keeps two). */
		mallopt(M_TRIM_THRESHOLD, (int)st->block_size);
	}
#endif
	c = tl_calloc(1, sizeof(*c));
	c->m = m;
	c->os = os;
	/* A flush stores many blocks, then commits once: their directory
	 * syncs can wait for one os_sync before the commit. */
	c->os_defer = os_defer_sync(os) == 0;
	c->bs = st->block_size;
	snprintf(c->volume, sizeof(c->volume), "%s", st->name);
	c->limit = o && o->buffer_limit ? o->buffer_limit : CACHE_DEFAULT_LIMIT;
	c->restore_ns = o && o->restore_age_ms ? o->restore_age_ms * 1000000ULL
					       : CACHE_RESTORE_NS;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->space_mu, NULL);
	pthread_cond_init(&c->space_cv, NULL);
	pthread_mutex_init(&c->gc_mu, NULL);
	pthread_cond_init(&c->gc_cv, NULL);
	atomic_init(&c->buffered, 0);
	c->nbuckets = CACHE_NBUCKETS;
	c->tab = tl_calloc(c->nbuckets, sizeof(*c->tab));
	c->up = tl_pool_create("upload",
			       o && o->upload_threads ? o->upload_threads
						      : CACHE_DEFAULT_THREADS,
			       0);
	r = open_blocks(c, o);
	if (r < 0) {
		cache_close(c);
		return r;
	}
	c->compact_records = o && o->compact_records ? o->compact_records :
						       CACHE_COMPACT_RECORDS;
	if (o && o->gc) {
		if (pthread_create(&c->gc, NULL, gc_main, c) != 0) {
			cache_close(c);
			return -EAGAIN;
		}
		c->gc_on = true;
	}
	*out = c;
	return 0;
}

/* Flush every file; what cannot be stored now is lost, so say so.
 * This is the one place where data acknowledged UNSTABLE is dropped
 * while its file exists (write.c keeps it otherwise): the process is
 * stopping, and the next one answers with another write verifier
 * (random per start, nfsd/nfs3_data.c), so clients resend what they
 * had not seen committed (RFC 1813).  The server answers no request
 * any more by now (nfsd_server_free ran first), so no COMMIT can answer
 * OK for what is dropped here. */
static void
flush_all(struct cache *c)
{
	struct cfile *f;
	size_t i;
	int r;

	for (i = 0; i < c->nbuckets; i++) {
		for (;;) {
			pthread_mutex_lock(&c->lock);
			f = c->tab[i];
			if (f != NULL)
				f->refs++;
			pthread_mutex_unlock(&c->lock);
			if (f == NULL)
				break;
			r = cache_file_flush(c, f);
			if (r < 0 && r != -ENOENT)
				tl_err("cache", "inode %llu: buffered data "
						"lost at close: %s",
				       (unsigned long long)f->ino,
				       strerror(-r));
			if (r < 0)
				cache_file_drop(c, f);
			cache_file_put(c, f);
		}
	}
}

void
cache_close(struct cache *c)
{
	if (c == NULL)
		return;
	if (c->gc_on) {
		pthread_mutex_lock(&c->gc_mu);
		c->stop = true;
		pthread_cond_broadcast(&c->gc_cv);
		pthread_mutex_unlock(&c->gc_mu);
		pthread_join(c->gc, NULL);
	}
	flush_all(c);
	tl_pool_destroy(c->up);
	if (c->ra != NULL)
		cache_ra_fini(c);
	if (c->rd != NULL)
		tl_pool_destroy(c->rd);
	cache_wb_close(c);
	/* Before the blocks go: fills in flight hold some of them. */
	dcache_close(c->dc);
	c->dc = NULL;
	if (c->btab != NULL)
		cache_blk_fini(c);
	free(c->tab);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->space_mu);
	pthread_cond_destroy(&c->space_cv);
	pthread_mutex_destroy(&c->gc_mu);
	pthread_cond_destroy(&c->gc_cv);
	free(c);
}
