/* cache: readahead and the read policy, counted at the object store -
 * a sequential stream of small reads costs one whole-block GET per block
 * (prefetch and reader share each fetch), readahead runs ahead of the
 * reader, while small reads at random offsets cost range GETs of exactly
 * their bytes and prefetch nothing. */
#include "config.h"

#include <fcntl.h>
#include <sys/mman.h>

#include "t/unit/cache_test.h"

#define BS (64u << 10)
#define NB 32
#define RS (16u << 10) /* read size */

static struct cache *
open_ra(uint64_t ra_max, uint64_t budget)
{
	struct cache_opts o = {.buffer_limit = 64u << 20,
			       .upload_threads = 4,
			       .readahead_max = ra_max,
			       .readahead_budget = budget,
			       .download_threads = 4};
	return t_cache(&o);
}

/* The cache that writes the test file: no read-ahead. */
static struct cache *
open_nora(void)
{
	return open_ra(0, 0);
}

/* Wait until the GET count reaches want (T_WAIT: a stall detector,
 * not a speed limit). */
static int
gets_reach(int want)
{
	T_WAIT(t_gets() >= want);
	return t_gets();
}

static void
test_sequential(uint64_t ino, const uint8_t *data)
{
	struct cache *c = open_ra(8 * BS, 4u << 20);
	bool ok = true;
	uint64_t off;

	t_count_reset();
	for (off = 0; off < NB * BS; off += RS)
		ok = ok && t_read_eq(c, ino, off, RS, data + off);
	CHECK(ok, "sequential 16 KiB reads return the data");
	cache_close(c); /* waits for prefetches */
	CHECK_EQ(t_gets(), NB, "%d reads cost one GET per block (%d)",
		 NB * BS / RS, NB);
	CHECK_EQ(t_get_bytes(), (uint64_t)NB * BS,
		 "every GET is a whole block");
}

static void
test_ahead(uint64_t ino, const uint8_t *data)
{
	struct cache *c = open_ra(8 * BS, 4u << 20);
	uint64_t off;

	t_count_reset();
	CHECK(t_read_eq(c, ino, 0, RS, data), "first read");
	usleep(100000);
	CHECK_EQ(t_gets(), 1,
		 "a stream that has read less "
		 "than 256 KiB prefetches nothing");
	for (off = RS; off < 4 * BS; off += RS)
		t_read_eq(c, ino, off, RS, data + off);
	CHECK_EQ(gets_reach(4 + 1), 4 + 1,
		 "at 256 KiB (4 blocks read) it "
		 "prefetches one block");
	for (off = 4 * BS; off < 8 * BS; off += RS)
		t_read_eq(c, ino, off, RS, data + off);
	/* Window doubles per sequential read up to 8 blocks: by now the
	 * prefetch reaches 8 blocks past the read end. */
	CHECK_EQ(gets_reach(8 + 8), 8 + 8, "the window grew to 8 blocks");
	CHECK(t_stats(c).prefetches >= 8, "counted as prefetches");
	usleep(100000);
	CHECK_EQ(t_gets(), 8 + 8, "and no further");
	cache_close(c);
}

/* RS bytes at block blk[i], byte skew + i * step of it, for each i;
 * whether every read returned the file's bytes. */
static bool
read_blocks(struct cache *c, uint64_t ino, const uint8_t *data,
	    const uint64_t *blk, size_t n, uint64_t skew, uint64_t step)
{
	bool ok = true;

	for (size_t i = 0; i < n; i++) {
		uint64_t off = blk[i] * BS + skew + i * step;

		ok = ok && t_read_eq(c, ino, off, RS, data + off);
	}
	return ok;
}

static void
test_random(uint64_t ino, const uint8_t *data)
{
	struct cache *c = open_ra(8 * BS, 4u << 20);
	static const uint64_t blk[] = {17, 3, 29, 9, 22, 5, 13, 26};

	t_count_reset();
	CHECK(read_blocks(c, ino, data, blk, TL_ARRAY_SIZE(blk), 1000, 777),
	      "random 16 KiB reads return the data");
	cache_close(c);
	CHECK_EQ(t_gets(), TL_ARRAY_SIZE(blk), "one GET per random read");
	CHECK_EQ(t_get_bytes(), (uint64_t)TL_ARRAY_SIZE(blk) * RS,
		 "range GETs of exactly the bytes read, no prefetch");
}

/* Random small reads that land within a few blocks of each other look
 * like a stream read out of order; they must not start prefetching
 * (after random writes, a block's range is hundreds of small blocks). */
static void
test_random_near(uint64_t ino, const uint8_t *data)
{
	struct cache *c = open_ra(8 * BS, 4u << 20);
	static const uint64_t blk[] = {5, 7, 6, 8, 5, 9, 7, 6, 10, 8};

	t_count_reset();
	CHECK(read_blocks(c, ino, data, blk, TL_ARRAY_SIZE(blk), 4096, 1024),
	      "random reads near each other return the data");
	usleep(100000); /* a prefetch queued would have run */
	CHECK_EQ(t_stats(c).prefetches, 0, "they prefetch nothing");
	cache_close(c);
}

/* A read across blocks fetches each once, in parallel pieces. */
static void
test_big_read(uint64_t ino, const uint8_t *data)
{
	struct cache *c = open_ra(0, 0);

	t_count_reset();
	CHECK(t_read_eq(c, ino, BS / 2, 6 * BS, data + BS / 2),
	      "a read over 7 blocks");
	CHECK_EQ(t_gets(), 7, "one GET per block touched");
	cache_close(c);
}

/* From a bare file:// store a stream's prefetches only hint the kernel
 * (readahead.c): reads return the same bytes, a sequential stream hints,
 * random small reads do not. */
static void
test_local(uint64_t ino, const uint8_t *data)
{
	struct cache_opts o = {.buffer_limit = 64u << 20,
			       .readahead_max = 8 * BS,
			       .readahead_budget = 4u << 20,
			       .download_threads = 4};
	static const uint64_t blk[] = {17, 3, 29, 9, 22, 5, 13, 26, 18, 4};
	struct cache *c = NULL;
	bool ok = true;
	uint64_t off;
	size_t i;

	CHECK_FATAL(cache_open(t_m, t_fs, &o, &c) == 0, "cache_open");
	for (i = 0; i < TL_ARRAY_SIZE(blk); i++) {
		off = blk[i] * BS + 1000 + i * 777;
		ok = ok && t_read_eq(c, ino, off, 4096, data + off);
	}
	CHECK(ok, "local: random 4 KiB reads return the data");
	usleep(50000);
	CHECK_EQ(t_stats(c).prefetches, 0, "and hint nothing");
	/* Half the file, then a pause: a hint the stream has already
	 * passed is skipped, so the stream must not outrun the hint
	 * threads on a loaded machine before they are counted. */
	for (off = 0; off < NB * BS / 2; off += RS)
		ok = ok && t_read_eq(c, ino, off, RS, data + off);
	T_WAIT(t_stats(c).prefetches > 0);
	CHECK(t_stats(c).prefetches > 0, "a local stream hints what comes");
	for (; off < NB * BS; off += RS)
		ok = ok && t_read_eq(c, ino, off, RS, data + off);
	CHECK(ok, "local: sequential 16 KiB reads return the data");
	cache_close(c);
}

/* cache_read_ref lends a block held in memory when the range is bytes
 * of that one block, and copies when more must be laid over: another
 * block, or buffered writes.  Lent bytes stay valid until released. */
static void
test_lend(uint64_t ino, uint8_t *data)
{
	struct cache *c = open_ra(8 * BS, 4u << 20);
	uint64_t size = (uint64_t)NB * BS, off;
	uint8_t w[100];
	void *d, *ref;
	size_t got;
	bool eof;

	off = 3 * BS + 100;
	CHECK_EQ(cache_read_ref(c, ino, size, off, BS, false, &d, &ref, &got,
				&eof),
		 0, "read over two blocks");
	CHECK(ref == NULL && got == BS && memcmp(d, data + off, BS) == 0,
	      "is copied, and right");
	free(d);
	CHECK_EQ(cache_read_ref(c, ino, size, off, BS - 100, false, &d, &ref,
				&got, &eof),
		 0, "read of most of one block");
	CHECK(ref != NULL && got == BS - 100 &&
		      memcmp(d, data + off, BS - 100) == 0,
	      "is lent, and right");
	cache_read_done(ref);
	memset(w, 0xA5, sizeof(w));
	CHECK_EQ(cache_write(c, ino, 5 * BS + 10, w, sizeof(w), false), 0,
		 "a buffered write");
	memcpy(data + 5 * BS + 10, w, sizeof(w));
	CHECK_EQ(cache_read_ref(c, ino, size, 5 * BS, BS, false, &d, &ref, &got,
				&eof),
		 0, "read of a block with buffered bytes");
	CHECK(ref == NULL && memcmp(d, data + 5 * BS, BS) == 0,
	      "is copied, with the buffered bytes");
	free(d);
	CHECK_EQ(cache_flush(c, ino), 0, "commit");
	CHECK_EQ(cache_read_ref(c, ino, size, 5 * BS, BS, false, &d, &ref, &got,
				&eof),
		 0, "read after the commit");
	CHECK(ref == NULL && memcmp(d, data + 5 * BS, BS) == 0,
	      "is copied (two slices), with the new bytes");
	free(d);
	CHECK_EQ(cache_read_ref(c, ino, size, size - 10, 100, false, &d, &ref,
				&got, &eof),
		 0, "read at the end");
	CHECK(got == 10 && eof && memcmp(d, data + size - 10, 10) == 0,
	      "stops at the size");
	if (ref != NULL)
		cache_read_done(ref);
	else
		free(d);
	cache_close(c);
}

/* How many of the pages holding [off, off+len) of fd are in the page
 * cache (mincore over a mapping that faults nothing in). */
static size_t
pages_cached(int fd, uint64_t off, size_t len)
{
	uint64_t a = off - off % 4096;
	size_t n = (size_t)(off + len - a), np = (n + 4095) / 4096, in = 0;
	unsigned char *v = tl_malloc(np);
	void *p = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, (off_t)a);

	if (p != MAP_FAILED && mincore(p, n, v) == 0) {
		for (size_t i = 0; i < np; i++)
			in += v[i] & 1;
	} else {
		in = np;
	}
	if (p != MAP_FAILED)
		munmap(p, n);
	free(v);
	return in;
}

/* From a bare file:// store, a caller that can send from a file
 * (files) is lent the object file when the range is bytes of one block
 * in the page cache: no data pointer, the descriptor and offset of the
 * bytes.  Bytes not cached, a range over two blocks, a caller that cannot
 * take a file, and a file with buffered writes get a copy. */
static void
test_lend_file(uint64_t ino, uint8_t *data)
{
	struct cache_opts o = {.buffer_limit = 64u << 20,
			       .download_threads = 4};
	uint64_t size = (uint64_t)NB * BS, foff = 0;
	struct cache *c = NULL;
	uint8_t *buf = tl_malloc(BS), w[100];
	void *d, *ref;
	size_t got;
	bool eof, evicted;
	int fd = -1;

	CHECK_FATAL(cache_open(t_m, t_fs, &o, &c) == 0, "cache_open");
	CHECK_EQ(cache_read_ref(c, ino, size, 7 * BS + 10, BS - 10, true, &d,
				&ref, &got, &eof),
		 0, "read of most of one block");
	CHECK(d == NULL && ref != NULL && got == BS - 10 &&
		      cache_ref_file(ref, &fd, &foff) && foff == 10,
	      "lends the object file: no bytes, the offset in the object");
	CHECK(fd >= 0 && pread(fd, buf, got, (off_t)foff) == (ssize_t)got &&
		      memcmp(buf, data + 7 * BS + 10, got) == 0,
	      "whose bytes there are the file's");
	/* Out of the page cache (the blocks were synced: clean pages go).
	 * DONTNEED skips a page still in another CPU's LRU batch, so try a
	 * few times; the copy is asserted only when no page of the range is
	 * left (with the first and last left, lending would be right too). */
	evicted = false;
	for (int i = 0; i < 20 && !evicted; i++) {
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		evicted = pages_cached(fd, foff, got) == 0;
		if (!evicted)
			usleep(10000);
	}
	cache_read_done(ref);
	CHECK(fcntl(fd, F_GETFD) < 0, "cache_read_done closes it");
	if (evicted) {
		CHECK_EQ(cache_read_ref(c, ino, size, 7 * BS + 10, BS - 10,
					true, &d, &ref, &got, &eof),
			 0, "read of bytes no longer cached");
		CHECK(ref == NULL && d != NULL &&
			      memcmp(d, data + 7 * BS + 10, BS - 10) == 0,
		      "is copied: sending them would wait for the disk");
		free(d);
	} else {
		printf("# the kernel kept the pages: uncached case not "
		       "checked\n");
	}

	CHECK_EQ(cache_read_ref(c, ino, size, 7 * BS + 10, BS, true, &d, &ref,
				&got, &eof),
		 0, "read over two blocks");
	CHECK(ref == NULL && d != NULL &&
		      memcmp(d, data + 7 * BS + 10, BS) == 0,
	      "is copied, and right");
	free(d);
	CHECK_EQ(cache_read_ref(c, ino, size, 7 * BS, BS, false, &d, &ref, &got,
				&eof),
		 0, "read by a caller that cannot send a file");
	CHECK(ref == NULL && d != NULL && memcmp(d, data + 7 * BS, BS) == 0,
	      "is copied");
	free(d);
	memset(w, 0x5A, sizeof(w));
	CHECK_EQ(cache_write(c, ino, 7 * BS + 10, w, sizeof(w), false), 0,
		 "a buffered write");
	memcpy(data + 7 * BS + 10, w, sizeof(w));
	CHECK_EQ(cache_read_ref(c, ino, size, 7 * BS, BS, true, &d, &ref, &got,
				&eof),
		 0, "read of a block with buffered bytes");
	CHECK(ref == NULL && d != NULL && memcmp(d, data + 7 * BS, BS) == 0,
	      "is copied, with the buffered bytes");
	free(d);
	CHECK_EQ(cache_flush(c, ino), 0, "commit");
	free(buf);
	cache_close(c);
}

int
main(void)
{
	uint8_t *data;
	uint64_t ino = t_start_file(BS, NB * BS, 5, open_nora, &data);

	test_sequential(ino, data);
	test_ahead(ino, data);
	test_random(ino, data);
	test_random_near(ino, data);
	test_big_read(ino, data);
	test_local(ino, data);
	test_lend(ino, data); /* last ones: they write */
	test_lend_file(ino, data);

	free(data);
	t_finish();
	return tap_done();
}
