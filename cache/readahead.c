/*
 * readahead.c - sequential detection per file and prefetch.
 *
 * NFS has no open or close, so streams are tracked in a small table of
 * slots keyed by inode (direct mapped: a busy gateway forgets the
 * coldest stream first, which costs one window).  A read is sequential
 * when it starts near where the file's last reads ended (within the
 * window or four blocks, since clients keep several READs in flight and
 * they arrive out of order), or at offset 0.  Each sequential read
 * doubles the window, from one block up to `max` bytes, and queues whole
 * block prefetches for what lies between the prefetched end and the read
 * end plus the window.  Prefetches run on their own pool and land in the
 * memory (and disk) cache, where the reader finds them or waits for the
 * fetch in flight (blocks.c's single-flight).  Bytes of prefetches in
 * flight stay within `budget`, which is also the size of the memory
 * cache, so prefetched blocks are not pushed out before they are read.
 * A non-sequential read resets the stream: random reads fetch only what
 * they touch.  Prefetching starts only once a stream has read RA_MIN
 * bytes: random 4 KiB reads land within four blocks of the last one
 * often enough (one in eight over a 256 MiB file), and each such hit
 * used to fetch the next block whole -- after random writes, hundreds of
 * small packed blocks -- which churned the memory cache and the heap
 * (1.6 million prefetches in a 10 s random read/write run).
 *
 * From a local store (cache_blocks_local) nothing is fetched into memory
 * (see plan.c): a prefetch only asks the kernel to read the coming range
 * of each object into the page cache (cache_blocks_advise).
 * Readers open an object afresh for each READ, so the kernel's own
 * readahead never sees the stream: without the hint each READ is one
 * synchronous disk read.  The hints, too, start at RA_MIN bytes (random
 * 4 KiB reads that happen to land near each other must not pull whole
 * blocks off the disk) and reach
 * RA_LOCAL_BLOCKS blocks ahead, from the block after the one being read
 * (the client's READs in flight are already reading that one; hinting
 * it too only queued more disk reads before theirs: a worse p99).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cache/compact-internal.h"
#include "cache/plan-internal.h"
#include "cache/readahead-internal.h"
#include "cache/blocks-internal.h"
#include "lib/tl.h"

#define RA_SLOTS        256
#define RA_MIN          (256u << 10)
#define RA_LOCAL_BLOCKS 4

struct raslot {
	uint64_t ino;
	uint64_t next;   /* end of the stream's reads so far */
	uint64_t win;    /* current window, bytes */
	uint64_t ra_end; /* prefetched (or queued) up to here */
	uint64_t bytes;  /* read by the stream so far */
};

struct cache_ra {
	struct cache_planner *pl;
	struct cache_blocks *st;
	struct cache_compactor *cp;
	uint32_t bs;
	bool local; /* hints only (cache_blocks_local) */
	pthread_mutex_t mu;
	struct raslot slot[RA_SLOTS];
	uint64_t max, budget;
	_Atomic uint64_t inflight;
	_Atomic uint64_t prefetches; /* blocks fetched or hinted */
	struct tl_pool *pool;
};

struct rajob {
	struct cache_ra *ra;
	uint64_t ino, off, end;
};

struct cache_ra *
cache_ra_open(struct cache_planner *pl, struct cache_blocks *st,
	      struct cache_compactor *cp, uint32_t block_size, uint64_t max,
	      uint64_t budget, unsigned threads)
{
	struct cache_ra *ra = tl_calloc(1, sizeof(*ra));

	ra->pl = pl;
	ra->st = st;
	ra->cp = cp;
	ra->bs = block_size;
	ra->local = cache_blocks_local(st);
	pthread_mutex_init(&ra->mu, NULL);
	ra->max = TL_MIN(max, budget);
	ra->budget = budget;
	atomic_init(&ra->inflight, 0);
	atomic_init(&ra->prefetches, 0);
	if (ra->max > 0)
		ra->pool = tl_pool_create("prefetch", threads, 0);
	return ra;
}

void
cache_ra_close(struct cache_ra *ra)
{
	if (ra == NULL)
		return;
	if (ra->pool)
		tl_pool_destroy(ra->pool);
	pthread_mutex_destroy(&ra->mu);
	free(ra);
}

uint64_t
cache_ra_prefetches(struct cache_ra *ra)
{
	return atomic_load(&ra->prefetches);
}

static struct raslot *
slot_of(struct cache_ra *ra, uint64_t ino)
{
	return &ra->slot[(ino * 0x9E3779B97F4A7C15ULL) >> 56];
}

/* Whether the stream of ino has read up to end already: its readers
 * fetched those blocks themselves, and may have let them go (drop-behind,
 * blocks.c), so a prefetch now would fetch them a second time. */
static bool
passed(struct cache_ra *ra, uint64_t ino, uint64_t end)
{
	struct raslot *s = slot_of(ra, ino);
	bool r;

	pthread_mutex_lock(&ra->mu);
	r = s->ino == ino && s->next >= end;
	pthread_mutex_unlock(&ra->mu);
	return r;
}

static void
prefetch_fn(void *arg)
{
	struct rajob *j = arg;
	struct cache_ra *ra = j->ra;
	struct cache_plan plan = {0};
	const struct cache_piece *p;
	size_t i;

	/* The view may be older than buffered writes: harmless, blocks are
	 * immutable and a read builds its own view. */
	if (!passed(ra, j->ino, j->end) &&
	    cache_plan_range(ra->pl, j->ino, j->off, j->end, &plan) == 0) {
		for (i = 0; i < plan.nfrag; i++)
			cache_compact_want(ra->cp, j->ino, plan.frag[i]);
		for (i = 0; i < plan.n; i++) {
			p = &plan.p[i];
			if (p->id != 0 &&
			    (ra->local ? cache_blocks_advise(ra->st, p)
				       : cache_blocks_read(ra->st, p, NULL,
							   true, false)) == 0)
				atomic_fetch_add(&ra->prefetches, 1);
		}
	}
	cache_plan_free(&plan);
	atomic_fetch_sub(&ra->inflight, j->end - j->off);
	free(j);
}

static uint64_t
align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

bool
cache_ra_note(struct cache_ra *ra, uint64_t ino, uint64_t size, uint64_t off,
	      uint64_t end)
{
	struct raslot *s = slot_of(ra, ino);
	struct rajob *jobs[64];
	uint64_t near, target, p, e, max, bs = ra->bs;
	size_t nj = 0, i;
	bool seq;

	pthread_mutex_lock(&ra->mu);
	near = TL_MAX(s->win, 4 * bs);
	seq = (s->ino == ino && off <= s->next + near &&
	       end + near >= s->next) ||
	      off == 0;
	if (!seq || s->ino != ino) {
		*s = (struct raslot){ino, end, 0, 0, 0};
		if (!seq)
			goto out;
	}
	s->next = TL_MAX(s->next, end);
	s->bytes += end - off;
	if (ra->max == 0 || s->bytes < RA_MIN)
		goto out;
	max = ra->local ? TL_MIN(ra->max, RA_LOCAL_BLOCKS * bs) : ra->max;
	s->win = s->win ? TL_MIN(s->win * 2, max) : TL_MIN(bs, max);
	target = TL_MIN(size, align_up(end + s->win, bs));
	p = TL_MAX(s->ra_end, align_up(end, bs));
	for (; p < target && nj < TL_ARRAY_SIZE(jobs); p += bs) {
		e = TL_MIN(p + bs, size);
		if (atomic_load(&ra->inflight) + (e - p) > ra->budget)
			break;
		atomic_fetch_add(&ra->inflight, e - p);
		jobs[nj] = tl_malloc(sizeof(*jobs[nj]));
		*jobs[nj++] = (struct rajob){ra, ino, p, e};
		s->ra_end = e;
	}
out:
	pthread_mutex_unlock(&ra->mu);
	for (i = 0; i < nj; i++)
		tl_pool_submit(ra->pool, prefetch_fn, jobs[i]);
	return seq;
}
