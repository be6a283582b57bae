/*
 * files.c - the table of files with buffered writes, and the buffer
 * total.
 *
 * The total counts the memory builders allocated (extent buffers, which
 * grow with what was written, and bookkeeping), not bytes written.  A
 * writer takes its length plus the most it may allocate beyond it before
 * copying (cache_space_take: the check and the addition under one lock,
 * so concurrent writers cannot overshoot together) and gives back what
 * it did not need; bytes leave the total when their buffers are freed
 * (write.c).  What a writer does when the total is full is cache.c's
 * policy: it flushes, and waits here for room.
 */
#include "config.h"

#include <stdlib.h>
#include <time.h>

#include "cache/files-internal.h"
#include "lib/tl.h"

struct cache_files {
	pthread_mutex_t lock;
	struct tl_htab tab; /* by inode number */
	uint64_t limit;
	pthread_mutex_t space_mu;
	pthread_cond_t space_cv;
	_Atomic uint64_t buffered;
};

struct cache_files *
cache_files_open(uint64_t limit)
{
	struct cache_files *ft = tl_calloc(1, sizeof(*ft));

	pthread_mutex_init(&ft->lock, NULL);
	pthread_mutex_init(&ft->space_mu, NULL);
	pthread_cond_init(&ft->space_cv, NULL);
	atomic_init(&ft->buffered, 0);
	ft->limit = limit;
	return ft;
}

void
cache_files_close(struct cache_files *ft)
{
	if (ft == NULL)
		return;
	tl_htab_fini(&ft->tab);
	pthread_mutex_destroy(&ft->lock);
	pthread_mutex_destroy(&ft->space_mu);
	pthread_cond_destroy(&ft->space_cv);
	free(ft);
}

static struct cfile *
cfile_of(struct tl_hnode *n)
{
	return n != NULL ? TL_CONTAINER_OF(n, struct cfile, hn) : NULL;
}

struct cfile *
cache_file_get(struct cache_files *ft, uint64_t ino, bool create)
{
	struct tl_hnode *n;
	struct cfile *f = NULL;

	pthread_mutex_lock(&ft->lock);
	TL_HTAB_FOREACH_HASH(&ft->tab, n, ino)
	if (cfile_of(n)->ino == ino) {
		f = cfile_of(n);
		break;
	}
	if (f == NULL && create) {
		f = tl_calloc(1, sizeof(*f));
		f->ino = ino;
		pthread_mutex_init(&f->mu, NULL);
		pthread_cond_init(&f->cv, NULL);
		atomic_init(&f->bytes, 0);
		tl_htab_add(&ft->tab, &f->hn, ino);
	}
	if (f != NULL)
		f->refs++;
	pthread_mutex_unlock(&ft->lock);
	return f;
}

void
cache_file_put(struct cache_files *ft, struct cfile *f)
{
	bool empty;

	pthread_mutex_lock(&ft->lock);
	if (--f->refs > 0)
		goto out;
	pthread_mutex_lock(&f->mu);
	empty = f->head == NULL && !f->flushing;
	pthread_mutex_unlock(&f->mu);
	if (!empty)
		goto out;
	tl_htab_del(&ft->tab, &f->hn);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free(f);
out:
	pthread_mutex_unlock(&ft->lock);
}

struct cfile *
cache_file_largest(struct cache_files *ft)
{
	struct cfile *best = NULL;
	struct tl_hnode *n;
	uint64_t most = 0, v;

	pthread_mutex_lock(&ft->lock);
	TL_HTAB_FOREACH(&ft->tab, n)
	{
		v = atomic_load(&cfile_of(n)->bytes);
		if (v > most) {
			most = v;
			best = cfile_of(n);
		}
	}
	if (best)
		best->refs++;
	pthread_mutex_unlock(&ft->lock);
	return best;
}

struct cfile *
cache_file_any(struct cache_files *ft)
{
	struct cfile *f;

	pthread_mutex_lock(&ft->lock);
	f = cfile_of(tl_htab_first(&ft->tab));
	if (f != NULL)
		f->refs++;
	pthread_mutex_unlock(&ft->lock);
	return f;
}

/* ---- the buffer total -------------------------------------------------- */

void
cache_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t ms)
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

static bool
fits(struct cache_files *ft, uint64_t len)
{
	uint64_t cur = atomic_load(&ft->buffered);

	return cur == 0 || cur + len <= ft->limit;
}

bool
cache_space_take(struct cache_files *ft, uint64_t len)
{
	bool ok;

	pthread_mutex_lock(&ft->space_mu);
	ok = fits(ft, len);
	if (ok)
		atomic_fetch_add(&ft->buffered, len);
	pthread_mutex_unlock(&ft->space_mu);
	return ok;
}

bool
cache_space_wait(struct cache_files *ft, uint64_t len, uint64_t ms)
{
	bool ok;

	pthread_mutex_lock(&ft->space_mu);
	if (!fits(ft, len))
		cache_cond_wait_ms(&ft->space_cv, &ft->space_mu, ms);
	ok = fits(ft, len);
	pthread_mutex_unlock(&ft->space_mu);
	return ok;
}

void
cache_space_add(struct cache_files *ft, uint64_t n)
{
	atomic_fetch_add(&ft->buffered, n);
}

void
cache_space_release(struct cache_files *ft, uint64_t n)
{
	if (n == 0)
		return;
	atomic_fetch_sub(&ft->buffered, n);
	pthread_mutex_lock(&ft->space_mu);
	pthread_cond_broadcast(&ft->space_cv);
	pthread_mutex_unlock(&ft->space_mu);
}

uint64_t
cache_space_used(struct cache_files *ft)
{
	return atomic_load(&ft->buffered);
}
