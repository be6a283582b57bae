/* cache: building a chunk's visible view from its slice list - later
 * slices win, holes and id 0 read as zeros, ranges clip, many slices. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "lib/tl.h"
#include "t/unit/tap.h"

#define CH 4096

/* Reference: paint every byte with the newest record covering it; the
 * value of a byte is (id, offset in slice), id 0 = zero. */
struct px {
	uint64_t id;
	uint32_t off;
};

static void
paint(const struct meta_slice *s, size_t n, struct px *px)
{
	size_t i;
	uint32_t k;

	memset(px, 0, CH * sizeof(*px));
	for (i = 0; i < n; i++)
		for (k = 0; k < s[i].len; k++)
			px[s[i].pos + k] = (struct px){
				s[i].id, s[i].id ? s[i].off + k : 0};
}

/* The view must tile [from, to) in order and agree with the painting. */
static int
view_ok(const struct meta_slice *s, size_t n, uint32_t from, uint32_t to)
{
	struct px *px = tl_malloc(CH * sizeof(*px));
	struct cache_seg *seg;
	size_t nseg, i;
	uint32_t pos = from, k;
	int ok = 1;

	paint(s, n, px);
	if (cache_view_build(s, n, from, to, &seg, &nseg) != 0) {
		free(px);
		return 0;
	}
	for (i = 0; i < nseg && ok; i++) {
		if (seg[i].pos != pos || seg[i].len == 0)
			ok = 0;
		for (k = 0; ok && k < seg[i].len; k++) {
			struct px want = px[seg[i].pos + k];
			ok = want.id == seg[i].id &&
			     (want.id == 0 || want.off == seg[i].off + k);
		}
		pos += seg[i].len;
	}
	ok = ok && pos == to;
	free(seg);
	free(px);
	return ok;
}

static void
test_basic(void)
{
	struct meta_slice one[] = {{7, 100, 0, 100, 10}};
	struct meta_slice over[] = {
		{1, 1000, 0, 1000, 0},
		{2, 100, 0, 100, 200},
		{3, 50, 10, 30, 250},
	};
	struct meta_slice hole[] = {
		{1, 1000, 0, 1000, 0},
		{0, 0, 0, 500, 300}, /* truncate down to 300 then extend */
		{4, 10, 0, 10, 600},
	};
	struct cache_seg *seg;
	size_t n;

	CHECK(cache_view_build(NULL, 0, 0, 100, &seg, &n) == 0 && n == 1 &&
		      seg[0].id == 0 && seg[0].len == 100,
	      "a chunk never written is one hole");
	free(seg);
	CHECK(cache_view_build(one, 1, 5, 5, &seg, &n) == 0 && n == 0,
	      "empty range, empty view");
	free(seg);
	CHECK(view_ok(one, 1, 0, 200), "one slice with holes around it");
	CHECK(cache_view_build(one, 1, 0, 200, &seg, &n) == 0 && n == 3 &&
		      seg[1].id == 7 && seg[1].pos == 10 && seg[1].len == 100,
	      "hole, slice, hole");
	free(seg);
	CHECK(view_ok(over, 3, 0, 1000), "overlapping slices, later win");
	CHECK(view_ok(over, 3, 255, 260), "small range inside the newest");
	CHECK(cache_view_build(over, 3, 255, 260, &seg, &n) == 0 && n == 1 &&
		      seg[0].id == 3 && seg[0].off == 15,
	      "offset inside the slice follows the record's off");
	free(seg);
	CHECK(view_ok(over, 3, 199, 301), "range across three slices");
	CHECK(view_ok(hole, 3, 0, 1000), "truncation hole record zeroes");
	CHECK(view_ok(hole, 3, 290, 310), "range across the hole's start");
	CHECK(cache_view_build(hole, 3, 0, 1000, &seg, &n) == 0 && n == 5 &&
		      seg[1].id == 0 && seg[1].pos == 300 &&
		      seg[1].len == 300 && seg[2].id == 4 && seg[3].id == 0 &&
		      seg[3].len == 190 && seg[4].id == 1 && seg[4].off == 800,
	      "old data, hole, new slice, hole, old data again");
	free(seg);
}

static void
test_random(void)
{
	struct meta_slice s[600];
	unsigned seed = 12345;
	int round, ok = 1;
	size_t n, i;

	for (round = 0; round < 200 && ok; round++) {
		n = (size_t)(rand_r(&seed) % 600);
		for (i = 0; i < n; i++) {
			uint32_t pos = (uint32_t)rand_r(&seed) % CH;
			uint32_t len = 1 + (uint32_t)rand_r(&seed) %
						   (round % 2 ? 64 : CH - pos);
			uint32_t off = (uint32_t)rand_r(&seed) % 100;

			if (len > CH - pos)
				len = CH - pos;
			s[i] = (struct meta_slice){rand_r(&seed) % 8 ? i + 1
								     : 0,
						   off + len, off, len, pos};
		}
		uint32_t a = (uint32_t)rand_r(&seed) % CH;
		uint32_t b = a + (uint32_t)rand_r(&seed) % (CH - a + 1);
		ok = view_ok(s, n, 0, CH) && view_ok(s, n, a, b);
	}
	CHECK(ok, "200 random lists of up to 600 slices match the reference");
}

int
main(void)
{
	test_basic();
	test_random();
	return tap_done();
}
