/* cache: the data path end to end on a real LMDB volume and a file://
 * t_os - out-of-order sequential writes make few slices, overwrites,
 * sparse files, offsets past 4 GiB, truncation, the buffer limit, t_os
 * failures retried by a later flush, removed files, the deletion job and
 * a randomized comparison with an in-memory model. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>

#include "cache/cache.h"
#include "lib/tl.h"
#include "t/unit/cache_test.h"
#include "t/unit/os_count.h"

#define BS (64u << 10)

/* ---- fixture ------------------------------------------------------------ */

/* Make every put fail with -EIO (on), or none (off).  A put that fails
 * never reaches the file t_os. */
static void
fail_puts(bool on)
{
	REQUIRE(os_fault_configure(t_os, on ? "ops=put,err=1" : "err=0",
				   NULL) == 0);
}

/* Puts the t_os was asked for, failed ones included. */
static uint64_t
puts_seen(void)
{
	struct os_fault_stats st;

	REQUIRE(os_fault_stats(t_os, &st) == 0);
	return st.calls[OS_OP_PUT];
}

static int
add_size(void *arg, const char *key, uint64_t size)
{
	(void)key;
	*(uint64_t *)arg += size;
	return 0;
}

/* Bytes of every object in the file t_os. */
static uint64_t
stored_bytes(void)
{
	uint64_t n = 0;

	REQUIRE(os_list(t_fs, "", NULL, add_size, &n) == 0);
	return n;
}

static int
nobjects(void)
{
	return t_nobjects(t_fs, "");
}

static struct cache *
open_cache_compact(uint64_t limit, bool gc, uint32_t compact_records)
{
	struct cache_opts o = {.buffer_limit = limit,
			       .upload_threads = 4,
			       .gc = gc,
			       .compact_records = compact_records};
	return t_cache(&o);
}

static struct cache *
open_cache(uint64_t limit, bool gc)
{
	struct cache_opts o = {
		.buffer_limit = limit, .upload_threads = 4, .gc = gc};
	return t_cache(&o);
}

static uint64_t
file_size(struct cache *c, uint64_t ino)
{
	struct meta_attr a;

	CHECK_FATAL(meta_getattr(t_m, ino, &a) == 0, "getattr");
	cache_overlay_attr(c, &a);
	return a.size;
}

/* Read [off, off+len) and compare with want (NULL: zeros). */
static bool
read_eq(struct cache *c, uint64_t ino, uint64_t off, size_t len,
	const uint8_t *want)
{
	uint8_t *buf = tl_malloc(len);
	size_t got = 0;
	bool eof, ok;
	int r;

	r = cache_read(c, ino, file_size(c, ino), off, len, buf, &got, &eof);
	ok = r == 0 && got == len;
	if (ok && want)
		ok = memcmp(buf, want, len) == 0;
	for (size_t i = 0; ok && !want && i < len; i++)
		ok = buf[i] == 0;
	if (!ok)
		printf("#   read %llu+%zu: r=%d got=%zu\n",
		       (unsigned long long)off, len, r, got);
	free(buf);
	return ok;
}

static size_t
nslices(uint64_t ino, uint32_t chunk)
{
	struct meta_slice *s = NULL;
	size_t n = 0;

	meta_read_chunk(t_m, ino, chunk, 0, META_CHUNK_SIZE, &s, &n);
	free(s);
	return n;
}

static uint64_t
compactions(struct cache *c)
{
	struct cache_stats st;

	cache_stats(c, &st);
	return st.compacted;
}

/* ---- tests -------------------------------------------------------------- */

/* 1 MiB written in 16 KiB pieces, pairs swapped and every 8th piece
 * delayed by three, across a chunk boundary: one slice per chunk. */
static void
test_out_of_order(void)
{
	struct cache *c = open_cache(64u << 20, false);
	uint64_t ino = t_new_file("seq");
	const size_t piece = 16u << 10, total = 1u << 20;
	const uint64_t base = META_CHUNK_SIZE - 256 * 1024;
	uint8_t *data = tl_malloc(total);
	size_t order[64], i, np = total / piece;

	t_fill(data, total, base, 1);
	for (i = 0; i < np; i++)
		order[i] = i;
	for (i = 0; i + 1 < np; i += 2) {
		size_t t = order[i];
		order[i] = order[i + 1];
		order[i + 1] = t;
	}
	for (i = 8; i + 3 < np; i += 8) {
		size_t t = order[i];
		memmove(order + i, order + i + 1, 3 * sizeof(order[0]));
		order[i + 3] = t;
	}
	for (i = 0; i < np; i++)
		CHECK_FATAL(cache_write(c, ino, base + order[i] * piece,
					data + order[i] * piece, piece,
					false) == 0,
			    "write piece %zu", order[i]);
	CHECK_EQ(file_size(c, ino), base + total,
		 "getattr sees the buffered size");
	CHECK(cache_buffered(c) > 0, "data is buffered before COMMIT");
	CHECK_EQ(cache_flush(c, ino), 0, "flush");
	CHECK_EQ(cache_buffered(c), 0, "nothing buffered after flush");
	CHECK_EQ(nslices(ino, 0), 1, "one slice in the first chunk");
	CHECK_EQ(nslices(ino, 1), 1, "one slice in the second chunk");
	CHECK(read_eq(c, ino, base, total, data), "read back");
	CHECK(read_eq(c, ino, base + 1000, 70000, data + 1000),
	      "read back an unaligned range");
	CHECK(read_eq(c, ino, 0, 4096, NULL), "the start is a hole");
	free(data);
	cache_close(c);
}

/* A stream that begins mid-block, its first pieces out of order: the
 * builder's blocks are laid out again from the stream's first byte
 * before its first block is sealed, and everything reads back, before
 * and after the flush, as one slice. */
static void
test_mid_block_stream(void)
{
	struct cache *c = open_cache(64u << 20, false);
	uint64_t ino = t_new_file("midblock");
	const size_t piece = BS / 4, np = 24;
	const uint64_t base = 3 * BS + BS / 3;
	uint8_t *data = tl_malloc(np * piece);
	size_t order[24], i;

	t_fill(data, np * piece, base, 7);
	for (i = 0; i < np; i++)
		order[i] = i;
	order[0] = 1, order[1] = 0; /* the second piece first */
	for (i = 0; i < np; i++)
		CHECK_FATAL(cache_write(c, ino, base + order[i] * piece,
					data + order[i] * piece, piece,
					false) == 0,
			    "write piece %zu", order[i]);
	CHECK(read_eq(c, ino, base, np * piece, data),
	      "buffered and early-stored bytes read back");
	CHECK_EQ(cache_flush(c, ino), 0, "flush");
	CHECK_EQ(nslices(ino, 0), 1, "one slice");
	CHECK(read_eq(c, ino, base, np * piece, data), "read back");
	CHECK(read_eq(c, ino, base - 100, 100, NULL), "before it: a hole");
	free(data);
	cache_close(c);
}

static void
test_overwrite(void)
{
	struct cache *c = open_cache(64u << 20, false);
	uint64_t ino = t_new_file("over");
	const size_t n = 300000;
	uint8_t *data = tl_malloc(n), *patch = tl_malloc(5000);

	t_fill(data, n, 0, 2);
	CHECK_EQ(cache_write(c, ino, 0, data, n, true), 0, "stable write");
	CHECK_EQ(cache_buffered(c), 0, "stable write leaves nothing buffered");
	t_fill(patch, 5000, 0, 3);
	CHECK_EQ(cache_write(c, ino, 100000, patch, 1000, false), 0,
		 "overwrite the middle");
	memcpy(data + 100000, patch, 1000);
	CHECK(read_eq(c, ino, 0, n, data), "read sees the overwrite");
	/* Overwrite buffered data before any flush: later wins. */
	CHECK_EQ(cache_write(c, ino, 200000, patch, 5000, false), 0, "w1");
	CHECK_EQ(cache_write(c, ino, 201000, patch + 10, 1000, false), 0, "w2");
	CHECK_EQ(cache_write(c, ino, 199000, patch + 20, 1500, false), 0, "w3");
	memcpy(data + 200000, patch, 5000);
	memcpy(data + 201000, patch + 10, 1000);
	memcpy(data + 199000, patch + 20, 1500);
	CHECK(read_eq(c, ino, 0, n, data), "later buffered writes win");
	free(data);
	free(patch);
	cache_close(c);
}

static void
test_sparse_and_big(void)
{
	struct cache *c = open_cache(64u << 20, false);
	uint64_t ino = t_new_file("sparse");
	const uint64_t far = (5ULL << 30) + 123; /* past 4 GiB */
	uint8_t a[5000], b[70000];

	t_fill(a, sizeof(a), 0, 4);
	t_fill(b, sizeof(b), far, 5);
	CHECK_EQ(cache_write(c, ino, 0, a, sizeof(a), false), 0, "write at 0");
	CHECK_EQ(cache_write(c, ino, 10u << 20, a, sizeof(a), false), 0,
		 "write at 10 MiB");
	CHECK_EQ(cache_write(c, ino, far, b, sizeof(b), false), 0,
		 "write past 4 GiB");
	CHECK_EQ(file_size(c, ino), far + sizeof(b), "size past 4 GiB");
	CHECK_EQ(cache_flush(c, ino), 0, "flush");
	CHECK_EQ(file_size(c, ino), far + sizeof(b), "committed size");
	CHECK(read_eq(c, ino, 0, sizeof(a), a), "first piece");
	CHECK(read_eq(c, ino, sizeof(a), (10u << 20) - sizeof(a), NULL),
	      "hole between reads as zeros");
	CHECK(read_eq(c, ino, 10u << 20, sizeof(a), a), "second piece");
	CHECK(read_eq(c, ino, far, sizeof(b), b), "piece past 4 GiB");
	CHECK(read_eq(c, ino, far - 4096, 4096, NULL), "zeros before it");
	{
		uint8_t buf[100];
		size_t got;
		bool eof;

		CHECK(cache_read(c, ino, far + sizeof(b), far + sizeof(b) - 10,
				 100, buf, &got, &eof) == 0 &&
			      got == 10 && eof,
		      "read across the end is short with eof");
	}
	CHECK_EQ(cache_write(c, ino, META_MAX_FILE_SIZE - 1, a, 2, false),
		 -EFBIG, "past the largest file");
	cache_close(c);
}

static void
test_truncate(void)
{
	struct cache *c = open_cache(64u << 20, false);
	uint64_t ino = t_new_file("trunc");
	const size_t n = 300000;
	uint8_t *data = tl_malloc(n);
	struct meta_setattr sa = {.valid = META_SET_SIZE, .size = 1000};

	t_fill(data, n, 0, 6);
	CHECK_EQ(cache_write(c, ino, 0, data, n, false), 0, "write");
	CHECK_EQ(cache_flush(c, ino), 0, "flush");
	CHECK_EQ(meta_setattr(t_m, &t_root, ino, &sa, NULL, NULL), 0,
		 "truncate to 1000");
	sa.size = n;
	CHECK_EQ(meta_setattr(t_m, &t_root, ino, &sa, NULL, NULL), 0,
		 "extend again");
	CHECK(read_eq(c, ino, 0, 1000, data), "kept bytes");
	CHECK(read_eq(c, ino, 1000, n - 1000, NULL),
	      "truncated bytes read as zeros");
	free(data);
	cache_close(c);
}

struct lim_arg {
	struct cache *c;
	uint64_t ino;
	uint64_t limit;
	size_t piece;
	atomic_int over;
};

static void *
lim_writer(void *p)
{
	struct lim_arg *a = p;
	uint8_t buf[16384];
	uint64_t off;

	for (off = 0; off < (4u << 20); off += a->piece) {
		t_fill(buf, a->piece, off, (unsigned)a->ino);
		if (cache_write(a->c, a->ino, off, buf, a->piece, false) != 0)
			atomic_fetch_add(&a->over, 1000);
		if (cache_buffered(a->c) > a->limit + a->piece)
			atomic_fetch_add(&a->over, 1);
	}
	return NULL;
}

static void
test_buffer_limit(void)
{
	const uint64_t limit = 256u << 10;
	struct cache *c = open_cache(limit, false);
	struct lim_arg a1 = {c, t_new_file("lim1"), limit, 16384, 0};
	struct lim_arg a2 = {c, t_new_file("lim2"), limit, 16384, 0};
	uint8_t *want = tl_malloc(4u << 20);
	pthread_t t1, t2;
	uint64_t off;

	pthread_create(&t1, NULL, lim_writer, &a1);
	pthread_create(&t2, NULL, lim_writer, &a2);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	CHECK_EQ(atomic_load(&a1.over) + atomic_load(&a2.over), 0,
		 "buffered bytes never above limit + one write");
	CHECK(cache_buffered(c) <= limit, "within the limit at the end");
	for (off = 0; off < (4u << 20); off += 16384)
		t_fill(want + off, 16384, off, (unsigned)a1.ino);
	CHECK(read_eq(c, a1.ino, 0, 4u << 20, want), "file 1 intact");
	for (off = 0; off < (4u << 20); off += 16384)
		t_fill(want + off, 16384, off, (unsigned)a2.ino);
	CHECK(read_eq(c, a2.ino, 0, 4u << 20, want), "file 2 intact");
	free(want);
	cache_close(c);
}

static void
test_store_failure(void)
{
	struct cache *c = open_cache(64u << 20, false);
	uint64_t ino = t_new_file("fail");
	const size_t n = 5 * BS + 777;
	uint8_t *data = tl_malloc(n);

	t_fill(data, n, 0, 7);
	fail_puts(true);
	CHECK_EQ(cache_write(c, ino, 0, data, n / 2, false), 0,
		 "unstable write is accepted");
	CHECK_EQ(cache_write(c, ino, n / 2, data + n / 2, n - n / 2, true),
		 -EIO, "stable write fails while the store fails");
	CHECK_EQ(cache_flush(c, ino), -EIO, "flush fails too");
	CHECK(cache_buffered(c) >= n, "the data stays buffered");
	CHECK_EQ(nslices(ino, 0), 0, "nothing committed");
	fail_puts(false);
	CHECK_EQ(cache_flush(c, ino), 0, "a later flush succeeds");
	CHECK_EQ(cache_buffered(c), 0, "and empties the buffer");
	CHECK(read_eq(c, ino, 0, n, data), "no data lost");
	free(data);
	cache_close(c);
}

static void
test_removed_and_gc(void)
{
	struct cache *c = open_cache(64u << 20, true);
	uint64_t ino = t_new_file("gone");
	uint8_t *data = tl_malloc(3 * BS);
	int before, i, left;

	t_fill(data, 3 * BS, 0, 8);
	before = nobjects();
	CHECK_EQ(cache_write(c, ino, 0, data, 3 * BS, false), 0, "write");
	CHECK_EQ(meta_unlink(t_m, &t_root, META_ROOT_INO, "gone", NULL, NULL),
		 0, "unlink while buffered");
	CHECK_EQ(cache_flush(c, ino), -ENOENT, "flush of a removed file");
	CHECK_EQ(cache_buffered(c), 0, "its data is dropped");
	CHECK_EQ(nobjects(), before, "its uploaded blocks are deleted");

	ino = t_new_file("gc");
	CHECK_EQ(cache_write(c, ino, 0, data, 3 * BS, true), 0,
		 "write and commit");
	CHECK(nobjects() >= before + 3, "blocks stored");
	CHECK_EQ(meta_unlink(t_m, &t_root, META_ROOT_INO, "gc", NULL, NULL), 0,
		 "unlink");
	/* The job runs every second; give it plenty of rounds. */
	for (i = 0, left = nobjects(); i < 3000 && left > before; i++) {
		usleep(100000);
		left = nobjects();
	}
	CHECK_EQ(left, before, "gc deleted the removed file's blocks");
	free(data);
	cache_close(c);
}

/* Small scattered writes hold about what they wrote, and are stored as
 * exactly their bytes, not whole blocks: the four of each chunk packed
 * into one object. */
static void
test_small_writes(void)
{
	struct cache *c = open_cache(64u << 20, false);
	uint64_t ino = t_new_file("small");
	uint8_t buf[4096], want[4096];
	uint64_t puts, bytes;
	int i;

	for (i = 0; i < 32; i++) {
		t_fill(buf, sizeof(buf),
		       (uint64_t)i * (16u << 20) + BS / 2 + 100, 5);
		CHECK_FATAL(
			cache_write(c, ino,
				    (uint64_t)i * (16u << 20) + BS / 2 + 100,
				    buf, sizeof(buf), false) == 0,
			"write %d", i);
	}
	CHECK(cache_buffered(c) <= 32 * (4096 + 1024),
	      "32 scattered 4 KiB writes hold %llu bytes",
	      (unsigned long long)cache_buffered(c));
	puts = puts_seen();
	bytes = stored_bytes();
	CHECK_EQ(cache_flush(c, ino), 0, "flush");
	CHECK_EQ(puts_seen() - puts, 8, "one put per chunk");
	CHECK_EQ(stored_bytes() - bytes, 32 * 4096,
		 "the puts hold only the bytes written");
	CHECK_EQ(nslices(ino, 0), 4, "a record per write");
	for (i = 0; i < 32; i++) {
		t_fill(want, sizeof(want),
		       (uint64_t)i * (16u << 20) + BS / 2 + 100, 5);
		CHECK(read_eq(c, ino, (uint64_t)i * (16u << 20) + BS / 2 + 100,
			      sizeof(want), want),
		      "read back %d", i);
	}
	CHECK(read_eq(c, ino, 0, BS / 2 + 100, NULL), "hole before");
	cache_close(c);
}

/* Distinct slice ids of a chunk's records. */
static size_t
nids(uint64_t ino, uint32_t chunk)
{
	struct meta_slice *s = NULL;
	size_t n = 0, i, j, d = 0;

	meta_read_chunk(t_m, ino, chunk, 0, META_CHUNK_SIZE, &s, &n);
	for (i = 0; i < n; i++) {
		for (j = 0; j < i && s[j].id != s[i].id; j++)
			;
		d += j == i;
	}
	free(s);
	return d;
}

/* Random small writes, overlapping, over two chunks: a flush packs them
 * (a few objects, one record each), reads match a model before and
 * after, a failed pack upload is retried by the next flush without loss,
 * and removing the file lets gc delete the packs. */
static void
test_packed(void)
{
	struct cache *c = open_cache(64u << 20, true);
	uint64_t ino = t_new_file("packed"), seed = 7;
	const size_t n = 2 * (64u << 20) + 8192;
	uint8_t *model = tl_calloc(1, n), buf[6000];
	int before = nobjects(), i, round, left;
	uint64_t puts;

	for (round = 0; round < 3; round++) {
		if (round == 1)
			fail_puts(true);
		for (i = 0; i < 400; i++) {
			uint64_t off, len;

			seed = seed * 6364136223846793005ull +
			       1442695040888963407ull;
			len = 1 + (seed >> 33) % sizeof(buf);
			/* Half of them in a 1 MiB window, so they overlap. */
			off = (seed >> 20) % (i % 2 ? n - len : (1u << 20));
			t_fill(buf, len, off, (unsigned)(round * 1000 + i));
			CHECK_FATAL(cache_write(c, ino, off, buf, len, false) ==
					    0,
				    "write %d.%d", round, i);
			memcpy(model + off, buf, len);
		}
		CHECK(read_eq(c, ino, 0, file_size(c, ino), model),
		      "round %d: buffered reads", round);
		puts = puts_seen();
		if (round == 1) {
			CHECK(cache_flush(c, ino) < 0, "flush fails");
			fail_puts(false);
			CHECK(read_eq(c, ino, 0, file_size(c, ino), model),
			      "the data stays buffered");
			puts = puts_seen();
		}
		CHECK_EQ(cache_flush(c, ino), 0, "round %d: flush", round);
		CHECK(puts_seen() - puts < 100,
		      "round %d: %llu puts for 400 writes", round,
		      (unsigned long long)(puts_seen() - puts));
		CHECK(read_eq(c, ino, 0, file_size(c, ino), model),
		      "round %d: stored reads", round);
	}
	CHECK(nslices(ino, 0) > 10 * nids(ino, 0),
	      "chunk 0: %zu records name %zu slices", nslices(ino, 0),
	      nids(ino, 0));
	/* Reads may have queued the chunks for data compaction: the packs
	 * it replaced wait for the grace period. */
	meta_set_compact_grace(t_m, 0);
	CHECK_EQ(meta_unlink(t_m, &t_root, META_ROOT_INO, "packed", NULL, NULL),
		 0, "unlink");
	for (i = 0, left = nobjects(); i < 3000 && left > before; i++) {
		usleep(100000);
		left = nobjects();
	}
	CHECK_EQ(left, before, "gc deleted every pack");
	meta_set_compact_grace(t_m, 300ULL * 1000000000ULL);
	free(model);
	cache_close(c);
}

/* Whether block 0 of slice (id, size) is stored. */
static bool
stored(uint64_t id, uint32_t size)
{
	char key[256];
	uint64_t sz;

	cache_block_key(key, sizeof(key), "vol", id, 0, size < BS ? size : BS);
	return os_head(t_fs, key, &sz) == 0;
}

/* Data compaction: a dense 2 MiB file overwritten by 4 KiB writes at
 * random places in 8 flushes (so packs, out of order).  A buffered write
 * makes cache_compact back off (-EBUSY); a rewrite against a stale list
 * is refused (-EAGAIN) and changes nothing; a sequential read queues the
 * chunk and the gc job rewrites it as one slice with one record; reads
 * still match; the old slices stay stored through the grace period and
 * are deleted after it. */
static void
test_compact(void)
{
	/* Only the read queues the chunk here (flushes would too). */
	struct cache *c = open_cache_compact(64u << 20, true, UINT32_MAX);
	uint64_t ino = t_new_file("compact"), seed = 99;
	const size_t n = 2u << 20;
	uint8_t *model = tl_malloc(n), buf[4096];
	struct meta_slice *old = NULL, *now = NULL;
	struct meta_slice_ref ids[600];
	struct cache_stats st;
	size_t nold = 0, nnow = 0, nid = 0, i, k, recs;
	bool ok = true;
	int round;

	t_fill(model, n, 0, 5);
	CHECK_EQ(cache_write(c, ino, 0, model, n, false), 0, "dense write");
	CHECK_EQ(cache_flush(c, ino), 0, "flush");
	for (round = 0; round < 8; round++) {
		for (i = 0; i < 64; i++) {
			uint64_t off;

			seed = seed * 6364136223846793005ull +
			       1442695040888963407ull;
			off = 4096 * ((seed >> 33) % (n / 4096));
			t_fill(buf, sizeof(buf), off,
			       (unsigned)(round * 100 + i));
			ok = ok && cache_write(c, ino, off, buf, sizeof(buf),
					       false) == 0;
			memcpy(model + off, buf, sizeof(buf));
		}
		ok = ok && cache_flush(c, ino) == 0;
	}
	CHECK(ok, "512 random 4 KiB overwrites in 8 flushes");
	recs = nslices(ino, 0);
	CHECK(recs > 100 && nids(ino, 0) >= 9,
	      "fragmented: %zu records, %zu slices", recs, nids(ino, 0));

	CHECK_EQ(cache_write(c, ino, 4096, "x", 1, false), 0, "buffer a byte");
	model[4096] = 'x';
	CHECK_EQ(cache_compact(c, ino, 0), -EBUSY,
		 "compaction backs off while writes are buffered");
	CHECK_EQ(cache_flush(c, ino), 0, "flush it");

	meta_read_chunk(t_m, ino, 0, 0, META_CHUNK_SIZE, &old, &nold);
	CHECK_EQ(cache_write(c, ino, 8192, "y", 1, false), 0, "one more");
	model[8192] = 'y';
	CHECK_EQ(cache_flush(c, ino), 0, "flush it");
	recs = nslices(ino, 0);
	{
		struct meta_slice w = {old[0].id, old[0].size, 0, 4096, 0};

		CHECK_EQ(meta_rewrite_chunk(t_m, ino, 0, old, nold, &w, 1),
			 -EAGAIN, "a rewrite of a stale list is refused");
	}
	CHECK_EQ(nslices(ino, 0), recs, "and changes nothing");
	free(old);

	/* The slices before compaction. */
	meta_read_chunk(t_m, ino, 0, 0, META_CHUNK_SIZE, &old, &nold);
	for (i = 0; i < nold; i++) {
		for (k = 0; k < nid && ids[k].id != old[i].id; k++)
			;
		if (k == nid && nid < 600)
			ids[nid++] =
				(struct meta_slice_ref){old[i].id, old[i].size};
	}
	free(old);

	CHECK(read_eq(c, ino, 0, n, model), "sequential read of it");
	for (i = 0; i < 3000 && (nslices(ino, 0) != 1 || compactions(c) == 0);
	     i++)
		usleep(100000);
	meta_read_chunk(t_m, ino, 0, 0, META_CHUNK_SIZE, &now, &nnow);
	CHECK(nnow == 1 && now[0].pos == 0 && now[0].len == n &&
		      now[0].size == n,
	      "the read queued the chunk; the gc job rewrote it as one "
	      "slice, one record (%zu)",
	      nnow);
	cache_stats(c, &st);
	CHECK(st.compacted >= 1, "counted (%llu)",
	      (unsigned long long)st.compacted);
	CHECK(read_eq(c, ino, 0, n, model), "reads match after compaction");

	for (ok = true, k = 0; k < nid; k++)
		ok = ok && stored(ids[k].id, ids[k].size);
	CHECK(ok, "the %zu old slices stay stored through the grace", nid);
	meta_set_compact_grace(t_m, 0);
	for (i = 0, ok = false; i < 3000 && !ok; i++) {
		usleep(100000);
		for (ok = true, k = 0; ok && k < nid; k++)
			ok = !stored(ids[k].id, ids[k].size);
	}
	CHECK(ok, "after it gc deleted them");
	CHECK(nnow == 1 && stored(now[0].id, now[0].size),
	      "the new slice is stored");
	CHECK(read_eq(c, ino, 0, n, model), "reads still match");
	meta_set_compact_grace(t_m, 300ULL * 1000000000ULL);
	free(now);
	free(model);
	cache_close(c);
}

/* A log appended 4 KiB at a time, each append flushed (fsync), never
 * read: the flushes that leave 128 records queue the chunk and the gc
 * job merges the appends, so the list stays short; the data reads back
 * the same. */
static void
test_compact_appends(void)
{
	struct cache *c = open_cache(64u << 20, true);
	const size_t n = 400, sz = 4096;
	uint8_t *model = tl_malloc(n * sz);
	uint64_t ino = t_new_file("log");
	struct cache_stats st;
	bool ok = true;
	size_t i, recs;

	for (i = 0; i < n; i++) {
		t_fill(model + i * sz, sz, i * sz, 7);
		ok = ok &&
		     cache_write(c, ino, i * sz, model + i * sz, sz, false) ==
			     0 &&
		     cache_flush(c, ino) == 0;
	}
	CHECK(ok, "%zu appends of 4 KiB, each flushed", n);
	/* The job counts a compaction just after committing it. */
	for (i = 0; i < 3000 && (nslices(ino, 0) >= 128 || compactions(c) == 0);
	     i++)
		usleep(100000);
	recs = nslices(ino, 0);
	cache_stats(c, &st);
	CHECK(recs < 128 && st.compacted >= 1,
	      "no read needed: the flushes queued the chunk, the gc job "
	      "compacted it (%zu records, %llu compactions)",
	      recs, (unsigned long long)st.compacted);
	CHECK(read_eq(c, ino, 0, n * sz, model), "the log reads back");
	free(model);
	cache_close(c);
}

/* A chunk whose first 3 MiB are one slice, written once, and whose next
 * 40 blocks were overwritten one 4 KiB flush at a time: compaction keeps
 * the big slice's record as it is (nothing of it copied, the slice not
 * released) and merges the 40 small ones into one new slice, which
 * replaces them. */
static void
test_compact_keeps_big(void)
{
	struct cache *c = open_cache_compact(64u << 20, true, UINT32_MAX);
	const size_t big = 3u << 20, n = big + (2u << 20);
	uint8_t *model = tl_malloc(n), buf[4096];
	struct meta_slice *s = NULL;
	size_t ns = 0, i, small = 0;
	uint64_t big_id = 0, ino = t_new_file("keepbig");
	uint32_t big_size = 0;
	bool ok = true, kept = false;

	t_fill(model, n, 0, 11);
	CHECK_EQ(cache_write(c, ino, 0, model, n, false), 0, "dense write");
	CHECK_EQ(cache_flush(c, ino), 0, "flush");
	meta_read_chunk(t_m, ino, 0, 0, META_CHUNK_SIZE, &s, &ns);
	CHECK_FATAL(ns >= 1, "records");
	big_id = s[0].id;
	big_size = s[0].size;
	free(s);
	for (i = 0; i < 40; i++) {
		uint64_t off = big + i * 2 * 4096; /* every other block */

		t_fill(buf, sizeof(buf), off, 100 + (unsigned)i);
		memcpy(model + off, buf, sizeof(buf));
		ok = ok &&
		     cache_write(c, ino, off, buf, sizeof(buf), false) == 0 &&
		     cache_flush(c, ino) == 0;
	}
	CHECK(ok, "40 small overwrites after the first 3 MiB");
	CHECK_EQ(cache_compact(c, ino, 0), 0, "compaction");
	meta_read_chunk(t_m, ino, 0, 0, META_CHUNK_SIZE, &s, &ns);
	for (i = 0; i < ns; i++) {
		if (s[i].id != big_id)
			small++;
		else if (s[i].pos == 0 && s[i].off == 0 && s[i].len == big)
			kept = true;
	}
	free(s);
	CHECK(kept, "the first 3 MiB still name the big slice, uncopied");
	CHECK(ns == 3 && small == 1,
	      "the 80 small extents after them became one record of a new "
	      "slice; the last 1.7 MiB name the big slice (%zu records)",
	      ns);
	CHECK(read_eq(c, ino, 0, n, model), "reads match");
	meta_set_compact_grace(t_m, 0);
	for (i = 0; i < 50; i++)
		usleep(100000);
	CHECK(stored(big_id, big_size), "the big slice is not released");
	CHECK(read_eq(c, ino, 0, n, model), "reads still match");
	meta_set_compact_grace(t_m, 300ULL * 1000000000ULL);
	free(model);
	cache_close(c);
}

/* Truncate to size as nfsd does: flush first, then SETATTR. */
static bool
truncate_to(struct cache *c, uint64_t ino, uint64_t size)
{
	struct meta_setattr sa = {.valid = META_SET_SIZE, .size = size};

	return cache_flush(c, ino) == 0 &&
	       meta_setattr(t_m, &t_root, ino, &sa, NULL, NULL) == 0;
}

/* Random writes, overwrites, flushes, truncates and reads (of buffered,
 * committed and mixed data, some while blocks are stored early) against
 * an in-memory copy. */
static void
random_model(unsigned seed, int rounds, const char *name, uint64_t at)
{
	struct cache *c = open_cache(1u << 20, false);
	uint64_t ino = t_new_file(name);
	const size_t span = 3 * BS + 12345;
	uint8_t *model = tl_calloc(1, span), *buf = tl_malloc(span);
	uint64_t size = 0;
	int i, bad = 0;

	for (i = 0; i < rounds; i++) {
		size_t off = (size_t)rand_r(&seed) % span;
		size_t len = 1 + (size_t)rand_r(&seed) %
					 (rand_r(&seed) % 4 ? 4096 : BS + 100);
		int what = rand_r(&seed) % 20;

		if (len > span - off)
			len = span - off;
		if (what == 3) { /* a stream of pieces: early uploads */
			size_t p, k = 1 + (size_t)rand_r(&seed) % 8192;

			len = TL_MIN(span - off, 2 * BS + 5);
			for (p = off; p < off + len; p += k) {
				size_t n = TL_MIN(k, off + len - p);

				t_fill(buf, n, p, (unsigned)i);
				if (cache_write(c, ino, at + p, buf, n,
						false) != 0)
					bad++;
				memcpy(model + p, buf, n);
			}
			size = TL_MAX(size, off + len);
		} else if (what == 4) {
			size = off;
			memset(model + size, 0, span - size);
			if (!truncate_to(c, ino, at + size))
				bad++;
			continue;
		} else {
			t_fill(buf, len, off, (unsigned)i);
			if (cache_write(c, ino, at + off, buf, len,
					what == 0) != 0)
				bad++;
			memcpy(model + off, buf, len);
			size = TL_MAX(size, off + len);
		}
		if (what == 1 && cache_flush(c, ino) != 0)
			bad++;
		if ((what == 2 || what == 3) &&
		    !read_eq(c, ino, at, size, model))
			bad++;
		if (what >= 5 && what < 12 && size > 0) {
			off = (size_t)rand_r(&seed) % size;
			len = 1 + (size_t)rand_r(&seed) % (size - off);
			if (!read_eq(c, ino, at + off, len, model + off))
				bad++;
		}
	}
	CHECK_EQ(bad, 0,
		 "%s: %d random writes, flushes, truncates and reads "
		 "agree",
		 name, rounds);
	CHECK_EQ(file_size(c, ino), at + size, "%s: size", name);
	CHECK(read_eq(c, ino, at, size, model), "%s: final content", name);
	CHECK(cache_buffered(c) <= (1u << 20), "%s: within the limit", name);
	free(model);
	free(buf);
	cache_close(c);
}

static void
test_random(void)
{
	random_model(777, 600, "rand", 0);
	/* Across a chunk boundary. */
	random_model(4242, 600, "rand2", META_CHUNK_SIZE - 2 * BS);
}

int
main(void)
{
	t_start(BS, 0);
	CHECK_EQ(meta_settings(t_m)->block_size, BS, "block size");

	test_out_of_order();
	test_mid_block_stream();
	test_overwrite();
	test_sparse_and_big();
	test_truncate();
	test_buffer_limit();
	test_store_failure();
	test_removed_and_gc();
	test_small_writes();
	test_packed();
	test_compact();
	test_compact_appends();
	test_compact_keeps_big();
	test_random();

	t_finish();
	return tap_done();
}
