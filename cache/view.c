/*
 * view.c - a chunk's visible bytes from its slice list.
 *
 * Records are applied newest first to the set of positions nothing newer
 * covers yet; each record claims the uncovered parts of its range.  The
 * set starts as [from, to) and only shrinks, so the loop stops as soon as
 * everything is claimed, which makes the common case (one fresh slice
 * over the range) cost one step however long the list is.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "cache/cache.h"
#include "lib/tl.h"

struct span {
	uint32_t s, e;
};

static int
seg_cmp(const void *a, const void *b)
{
	const struct cache_seg *x = a, *y = b;

	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static void
seg_add(struct cache_seg **v, size_t *n, size_t *cap, uint64_t id,
	uint32_t size, uint32_t off, uint32_t pos, uint32_t len)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		*v = tl_realloc(*v, *cap * sizeof(**v));
	}
	(*v)[*n] = (struct cache_seg){id, size, off, pos, len};
	(*n)++;
}

int
cache_view_build(const struct meta_slice *s, size_t n, uint32_t from,
		 uint32_t to, struct cache_seg **out, size_t *nout)
{
	struct span *un, *next;
	size_t nun = 0, nnext, i, k, nseg = 0, cap = 0;
	struct cache_seg *seg = NULL;
	uint64_t a, b, lo, hi;

	*out = NULL;
	*nout = 0;
	if (from > to)
		return -EINVAL;
	if (from == to)
		return 0;
	/* Each record splits at most one span in two. */
	un = tl_malloc((n + 1) * sizeof(*un));
	next = tl_malloc((n + 1) * sizeof(*next));
	un[nun++] = (struct span){from, to};
	for (i = n; i-- > 0 && nun > 0;) {
		a = s[i].pos;
		b = a + s[i].len;
		nnext = 0;
		for (k = 0; k < nun; k++) {
			if (b <= un[k].s || a >= un[k].e) {
				next[nnext++] = un[k];
				continue;
			}
			lo = TL_MAX(a, un[k].s);
			hi = TL_MIN(b, un[k].e);
			seg_add(&seg, &nseg, &cap, s[i].id, s[i].size,
				s[i].id ? (uint32_t)(s[i].off + (lo - a)) : 0,
				(uint32_t)lo, (uint32_t)(hi - lo));
			if (un[k].s < lo)
				next[nnext++] =
					(struct span){un[k].s, (uint32_t)lo};
			if (hi < un[k].e)
				next[nnext++] =
					(struct span){(uint32_t)hi, un[k].e};
		}
		struct span *t = un;
		un = next;
		next = t;
		nun = nnext;
	}
	for (k = 0; k < nun; k++)
		seg_add(&seg, &nseg, &cap, 0, 0, 0, un[k].s, un[k].e - un[k].s);
	free(un);
	free(next);
	qsort(seg, nseg, sizeof(*seg), seg_cmp);
	*out = seg;
	*nout = nseg;
	return 0;
}
