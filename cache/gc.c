/*
 * gc.c - the background job: the objects of slices that metadata
 * released (files removed or truncated, records compacted away) are
 * deleted from the store, then the slices are forgotten; each round
 * also releases files of the trash past their retention (meta.h, the
 * trash), compacts one queued chunk (compact.c) and hands malloc's free
 * memory back to the kernel.  The first round of a holder on a volume
 * whose usage counters are not marked exact recounts them first
 * (usage_round).
 *
 * Only one gateway of a volume runs the job: with a gate (cache_opts
 * bgjob_gate; tesserad's says whether this gateway holds the volume's
 * background-job lease, meta.h), a round runs only while it answers
 * true, and chunks queued for compaction meanwhile are forgotten (the
 * holder's reads and flushes queue its own).  The rounds are paced:
 * at most gc_delete_rate objects deleted and gc_txn_rate metadata
 * transactions per second (0: no limit), with up to a second's worth
 * in a burst, so that a burst of removes is released at a rate client
 * traffic does not notice.
 *
 * Meta hands out the released slices (meta_gc_next: those of removed
 * and truncated files, and those compaction dropped once their grace
 * period is over).  Only slices whose objects are all gone are
 * forgotten (meta_gc_release); the others come back in a later round.
 */
#include "config.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cache/compact-internal.h"
#include "cache/files-internal.h"
#include "cache/gc-internal.h"
#include "cache/blocks-internal.h"
#include "cache/cache.h"
#include "lib/tl.h"

#define GC_BATCH    256
#define GC_PAUSE_MS 50                  /* after a round that was not full */
#define GC_IDLE_MS  1000                /* after a round with nothing to do */
#define TRIM_NS     (1000ULL * 1000000) /* malloc_trim at most this often */

/* A rate: units spaced 1/per_s apart, a second's worth of credit.
 * per_s changes at run time (cache_gc_set_rates: SIGHUP). */
struct pace {
	_Atomic uint64_t per_s; /* 0: no limit */
	uint64_t next_ns;
};

struct cache_gc {
	struct meta *m;
	struct cache_blocks *st;
	struct cache_compactor *cp;
	uint32_t bs;
	bool (*gate)(void *arg);
	void *gate_arg;
	struct pace del, txn;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	bool repace;        /* the rates changed: waits start over (under mu) */
	bool usage_known;   /* the usage counters are marked exact */
	uint64_t usage_log; /* tl_mono_ns of the last progress line */
};

/* Wait until n more units of p fit its rate; false when the job stops
 * meanwhile. */
static bool
gc_pace(struct cache_gc *gc, struct pace *p, uint64_t n)
{
	uint64_t now = tl_mono_ns(), burst = 1000000000ULL, per_s;
	bool go;

	if (atomic_load(&p->per_s) == 0)
		return true;
	if (p->next_ns + burst < now)
		p->next_ns = now - burst;
	pthread_mutex_lock(&gc->mu);
	while (!gc->stop && (now = tl_mono_ns()) < p->next_ns) {
		if (gc->repace) {
			/* a wait the old rate set is not the new one's */
			gc->repace = false;
			p->next_ns = now;
			break;
		}
		cache_cond_wait_ms(&gc->cv, &gc->mu,
				   (p->next_ns - now) / 1000000 + 1);
	}
	go = !gc->stop;
	pthread_mutex_unlock(&gc->mu);
	per_s = atomic_load(&p->per_s);
	if (per_s != 0)
		p->next_ns += n * 1000000000ULL / per_s;
	return go;
}

/* One round: delete what meta released.  Returns the number of slices
 * forgotten, or a negative errno. */
static int
gc_round(struct cache_gc *gc, struct meta_slice_ref *refs)
{
	size_t n = 0, i, done = 0;
	int r;

	if (!gc_pace(gc, &gc->txn, 1))
		return 0;
	r = meta_gc_next(gc->m, refs, GC_BATCH, &n);
	if (r < 0 || n == 0)
		return r;
	for (i = 0; i < n; i++) {
		uint64_t blocks =
			((uint64_t)refs[i].size + gc->bs - 1) / gc->bs;

		if (!gc_pace(gc, &gc->del, blocks ? blocks : 1))
			break;
		if (cache_blocks_delete_slice(gc->st, refs[i].id,
					      refs[i].size) == 0)
			refs[done++] = refs[i];
	}
	if (done > 0) {
		gc_pace(gc, &gc->txn, 1); /* stopping: release still */
		r = meta_gc_release(gc->m, refs, done);
		if (r < 0)
			return r;
	}
	return done < i ? -EIO : (int)done;
}

#define RECOUNT_LOG_NS (10ULL * 1000000000) /* progress this often */

/* A transaction's worth of pace per call (4096 keys read). */
static bool
recount_pace(void *arg, uint64_t keys)
{
	struct cache_gc *gc = arg;
	uint64_t now = tl_mono_ns();

	if (now - gc->usage_log >= RECOUNT_LOG_NS) {
		gc->usage_log = now;
		tl_notice("cache",
			  "recounting the usage counters: %llu keys "
			  "read",
			  (unsigned long long)keys);
	}
	return gc_pace(gc, &gc->txn, 1);
}

/* Once: the usage counters of a volume formatted before they existed
 * (meta.h, meta_usage_recount), recounted online; tried again at the
 * next round after an error. */
static void
usage_round(struct cache_gc *gc)
{
	static const char *const names[META_RECOUNT_N] = {"logical", "stored",
							  "trash", "pending"};
	struct meta_recount r;
	bool valid = false;
	int rc;

	if (gc->usage_known || meta_usage_marked(gc->m, &valid) != 0)
		return;
	if (valid) {
		gc->usage_known = true;
		return;
	}
	tl_notice("cache",
		  "the volume's usage counters (logical, stored, "
		  "trash and pending bytes) are not marked exact (a volume "
		  "formatted before them): recounting them from the "
		  "metadata, at one bgjob_txn_rate transaction per 4096 "
		  "keys");
	gc->usage_log = tl_mono_ns();
	rc = meta_usage_recount(gc->m, recount_pace, gc, &r);
	if (rc == -ECANCELED)
		return; /* stopping */
	if (rc == -EALREADY) {
		tl_notice("cache", "the usage counters were recounted by "
				   "another gateway");
		gc->usage_known = true;
		return;
	}
	if (rc != 0) {
		tl_err("cache",
		       "recounting the usage counters: %s (tried "
		       "again later)",
		       strerror(-rc));
		return;
	}
	for (int i = 0; i < META_RECOUNT_N; i++)
		tl_notice("cache",
			  "usage counters recounted: %s bytes %llu "
			  "(the counter said %llu at the snapshot)",
			  names[i], (unsigned long long)r.now[i],
			  (unsigned long long)r.was[i]);
	tl_notice("cache",
		  "usage counters recounted: %llu keys read; they "
		  "are exact from now on",
		  (unsigned long long)r.keys);
	gc->usage_known = true;
}

/* Release what the trash holds past its retention (meta.h, the trash):
 * one transaction of up to GC_BATCH files a round; their data then
 * comes through meta_gc_next like any removed file's. */
static void
trash_round(struct cache_gc *gc)
{
	struct meta_trash_done d = {0, 0};
	bool more;
	int r;

	r = meta_trash_expire_due(gc->m, GC_BATCH, &d, &more);
	if (r < 0)
		tl_debug("cache", "trash expiry: %s", strerror(-r));
	else if (d.files > 0)
		tl_info("cache",
			"trash: %llu files (%llu bytes) past their "
			"retention released",
			(unsigned long long)d.files,
			(unsigned long long)d.bytes);
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

	if (now - *last < TRIM_NS)
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
	struct cache_gc *gc = arg;
	struct meta_slice_ref *refs = tl_malloc(GC_BATCH * sizeof(*refs));
	uint64_t trimmed = tl_mono_ns();
	int r;

	pthread_mutex_lock(&gc->mu);
	while (!gc->stop) {
		pthread_mutex_unlock(&gc->mu);
		if (gc->gate != NULL && !gc->gate(gc->gate_arg)) {
			cache_compact_forget(gc->cp);
			r = 0; /* another gateway runs the job */
		} else {
			usage_round(gc);
			r = gc_round(gc, refs);
			if (r < 0)
				tl_debug("cache", "gc round: %s", strerror(-r));
			if (gc_pace(gc, &gc->txn, 1))
				trash_round(gc);
			if (gc_pace(gc, &gc->txn, 1))
				cache_compact_round(gc->cp);
		}
		trim_memory(&trimmed);
		pthread_mutex_lock(&gc->mu);
		/* A round that was not full leaves a short pause, so that a
		 * remove storm is deleted in batches: one commit per round,
		 * and rounds back to back contend with the removes for
		 * LMDB's write lock and the disk. */
		if (r <= 0 && !gc->stop)
			cache_cond_wait_ms(&gc->cv, &gc->mu, GC_IDLE_MS);
		else if (r < GC_BATCH && !gc->stop)
			cache_cond_wait_ms(&gc->cv, &gc->mu, GC_PAUSE_MS);
	}
	pthread_mutex_unlock(&gc->mu);
	free(refs);
	return NULL;
}

int
cache_gc_start(struct meta *m, struct cache_blocks *st,
	       struct cache_compactor *cp, uint32_t block_size,
	       const struct cache_opts *o, struct cache_gc **out)
{
	struct cache_gc *gc = tl_calloc(1, sizeof(*gc));

	*out = NULL;
	gc->m = m;
	gc->st = st;
	gc->cp = cp;
	gc->bs = block_size;
	gc->gate = o->bgjob_gate;
	gc->gate_arg = o->bgjob_arg;
	atomic_init(&gc->del.per_s, o->gc_delete_rate);
	atomic_init(&gc->txn.per_s, o->gc_txn_rate);
	pthread_mutex_init(&gc->mu, NULL);
	pthread_cond_init(&gc->cv, NULL);
	if (pthread_create(&gc->thread, NULL, gc_main, gc) != 0) {
		pthread_mutex_destroy(&gc->mu);
		pthread_cond_destroy(&gc->cv);
		free(gc);
		return -EAGAIN;
	}
	*out = gc;
	return 0;
}

void
cache_gc_set_rates(struct cache_gc *gc, uint64_t delete_rate, uint64_t txn_rate)
{
	pthread_mutex_lock(&gc->mu);
	atomic_store(&gc->del.per_s, delete_rate);
	atomic_store(&gc->txn.per_s, txn_rate);
	gc->repace = true;
	pthread_cond_broadcast(&gc->cv);
	pthread_mutex_unlock(&gc->mu);
}

void
cache_gc_rates(struct cache_gc *gc, uint64_t *delete_rate, uint64_t *txn_rate)
{
	*delete_rate = atomic_load(&gc->del.per_s);
	*txn_rate = atomic_load(&gc->txn.per_s);
}

void
cache_gc_stop(struct cache_gc *gc)
{
	if (gc == NULL)
		return;
	pthread_mutex_lock(&gc->mu);
	gc->stop = true;
	pthread_cond_broadcast(&gc->cv);
	pthread_mutex_unlock(&gc->mu);
	pthread_join(gc->thread, NULL);
	pthread_mutex_destroy(&gc->mu);
	pthread_cond_destroy(&gc->cv);
	free(gc);
}
