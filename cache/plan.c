/*
 * plan.c - read planning: a range of a file as the block bytes that
 * make it up, and their reading.
 *
 * A range is planned chunk by chunk: the chunk's slice records (one
 * metadata read per chunk), their visible view (view.c: later records
 * win, what none covers is a hole), and each extent of the view cut at
 * block boundaries into pieces.  A plan does not depend on where the
 * bytes go, so the reader plans once and then either lends a block or
 * an object file, or copies (cache.c).  A chunk whose view is
 * fragmented (CACHE_COMPACT_SEGS data extents) is reported with the
 * plan, for the caller to queue for compaction.
 *
 * The pieces of one read are fetched in parallel: all but the first on
 * the read pool, the first by the caller.  A piece is fetched whole when
 * the stream is sequential or the piece covers at least half its block
 * (a range GET would save little); otherwise only its bytes (see
 * blocks.c).  A local store is read directly, a piece's bytes straight
 * into the reply: its objects sit in the kernel's page cache (readahead.c
 * hints what comes), so a whole block in memory would only add a 4 MiB
 * copy, fresh pages to fault in and a second copy into the reply (most
 * of a READ's CPU).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "cache/plan-internal.h"
#include "cache/blocks-internal.h"
#include "lib/tl.h"

struct cache_planner {
	struct meta *m;
	struct cache_blocks *st;
	uint32_t bs;
	struct tl_pool *rd; /* parallel pieces of one read */
};

struct cache_planner *
cache_planner_open(struct meta *m, struct cache_blocks *st, uint32_t block_size,
		   unsigned threads)
{
	struct cache_planner *pl = tl_calloc(1, sizeof(*pl));

	pl->m = m;
	pl->st = st;
	pl->bs = block_size;
	pl->rd = tl_pool_create("read", threads, 0);
	return pl;
}

void
cache_planner_close(struct cache_planner *pl)
{
	if (pl == NULL)
		return;
	tl_pool_destroy(pl->rd);
	free(pl);
}

void
cache_plan_free(struct cache_plan *plan)
{
	free(plan->p);
	free(plan->frag);
	*plan = (struct cache_plan){0};
}

static void
add_piece(struct cache_plan *plan, struct cache_piece pc)
{
	if (plan->n == plan->cap) {
		plan->cap = plan->cap ? plan->cap * 2 : 8;
		plan->p = tl_realloc(plan->p, plan->cap * sizeof(*plan->p));
	}
	plan->p[plan->n++] = pc;
}

int
cache_plan_slice(struct cache_planner *pl, uint64_t id, uint32_t size,
		 uint32_t off, uint32_t len, uint64_t at,
		 struct cache_plan *out)
{
	uint32_t k, from, blen, k_n;

	if ((uint64_t)off + len > size)
		return -EIO; /* a record pointing past its slice */
	while (len > 0) {
		k = off / pl->bs;
		from = off % pl->bs;
		blen = TL_MIN(pl->bs, size - k * pl->bs);
		k_n = TL_MIN(len, blen - from);
		add_piece(out,
			  (struct cache_piece){id, k, blen, from, k_n, at});
		off += k_n;
		at += k_n;
		len -= k_n;
	}
	return 0;
}

/* Whether a chunk's view is fragmented enough to want compaction. */
static bool
fragmented(const struct cache_seg *seg, size_t nseg)
{
	size_t data = 0, i;

	if (nseg < CACHE_COMPACT_SEGS)
		return false;
	for (i = 0; i < nseg; i++)
		data += seg[i].id != 0;
	return data >= CACHE_COMPACT_SEGS;
}

int
cache_plan_range(struct cache_planner *pl, uint64_t ino, uint64_t off,
		 uint64_t end, struct cache_plan *out)
{
	struct meta_slice *s = NULL;
	struct cache_seg *seg = NULL;
	size_t ns = 0, nseg = 0, i;
	uint64_t pos, cend, base;
	uint32_t chunk;
	int r = 0;

	for (pos = off; r == 0 && pos < end; pos = cend) {
		chunk = (uint32_t)(pos / META_CHUNK_SIZE);
		base = (uint64_t)chunk * META_CHUNK_SIZE;
		cend = TL_MIN(end, base + META_CHUNK_SIZE);
		r = meta_read_chunk(pl->m, ino, chunk, (uint32_t)(pos - base),
				    (uint32_t)(cend - base), &s, &ns);
		if (r == 0)
			r = cache_view_build(s, ns, (uint32_t)(pos - base),
					     (uint32_t)(cend - base), &seg,
					     &nseg);
		if (r == 0 && fragmented(seg, nseg)) {
			out->frag = tl_realloc(out->frag,
					       (out->nfrag + 1) *
						       sizeof(*out->frag));
			out->frag[out->nfrag++] = chunk;
		}
		for (i = 0; r == 0 && i < nseg; i++) {
			uint64_t at = base + seg[i].pos - off;

			if (seg[i].id == 0)
				add_piece(out,
					  (struct cache_piece){0, 0, 0, 0,
							       seg[i].len, at});
			else
				r = cache_plan_slice(pl, seg[i].id, seg[i].size,
						     seg[i].off, seg[i].len, at,
						     out);
		}
		free(seg);
		free(s);
		seg = NULL;
		s = NULL;
	}
	return r;
}

bool
cache_plan_whole(const struct cache_planner *pl, const struct cache_piece *p,
		 bool seq)
{
	if (cache_blocks_local(pl->st))
		return false;
	return seq || (uint64_t)p->n * 2 >= p->blen;
}

/* Pieces of one read fetched in parallel. */
struct rdwait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t left;
	int r;
};

struct rdjob {
	struct cache_planner *pl;
	const struct cache_piece *p;
	uint8_t *dst;
	bool seq;
	struct rdwait *w;
};

static int
read_one(struct cache_planner *pl, const struct cache_piece *p, uint8_t *dst,
	 bool seq)
{
	return cache_blocks_read(pl->st, p, dst, cache_plan_whole(pl, p, seq),
				 seq);
}

static void
rd_fn(void *arg)
{
	struct rdjob *j = arg;
	int r = read_one(j->pl, j->p, j->dst, j->seq);

	pthread_mutex_lock(&j->w->mu);
	if (r < 0 && j->w->r == 0)
		j->w->r = r;
	if (--j->w->left == 0)
		pthread_cond_signal(&j->w->cv);
	pthread_mutex_unlock(&j->w->mu);
	free(j);
}

int
cache_plan_read(struct cache_planner *pl, const struct cache_plan *plan,
		uint8_t *buf, bool seq)
{
	struct rdwait w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			   0, 0};
	const struct cache_piece *first = NULL, *p;
	struct rdjob *j;
	size_t i;
	int r = 0;

	for (i = 0; i < plan->n; i++) {
		p = &plan->p[i];
		if (p->id == 0)
			memset(buf + p->at, 0, p->n);
		else if (first == NULL)
			first = p;
		else
			w.left++;
	}
	for (i = 0; i < plan->n; i++) {
		p = &plan->p[i];
		if (p->id == 0 || p == first)
			continue;
		j = tl_malloc(sizeof(*j));
		*j = (struct rdjob){pl, p, buf + p->at, seq, &w};
		tl_pool_submit(pl->rd, rd_fn, j);
	}
	if (first != NULL)
		r = read_one(pl, first, buf + first->at, seq);
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
