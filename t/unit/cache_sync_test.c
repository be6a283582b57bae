/* cache: data acknowledged UNSTABLE stays until it is committed, on a
 * real LMDB volume and a file:// store that defers syncs, behind the
 * fault wrapper (an injected sync failure deletes every put since the
 * previous sync, the worst os_sync allows):
 *   - a failed sync fails the flush, keeps the data buffered and
 *     readable, and the next flush stores it again and commits it;
 *   - blocks stored early for one file and lost to another file's failed
 *     sync are stored again by the first file's flush, never committed
 *     as they are;
 *   - a failed put (early upload and flush) keeps the data;
 *   - blocks stored by a flush whose commit failed are stored again
 *     once they are older than restore_age_ms;
 *   - with writeback, a failed sync fails the flush too, and staged
 *     blocks whose upload lost its sync are uploaded again;
 * and after each, every block the committed slices name exists. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/cache.h"
#include "lib/tl.h"
#include "t/unit/cache_test.h"
#include "t/unit/os_count.h"

#define BS       (64u << 10)
#define CAPACITY (4u << 20)

static struct cache *
open_cache_wb(uint64_t restore_age_ms, const char *cache_dirs)
{
	struct cache_opts o = {.buffer_limit = 64u << 20,
			       .upload_threads = 4,
			       .restore_age_ms = restore_age_ms,
			       .cache_dirs = cache_dirs,
			       .writeback = cache_dirs != NULL};
	return t_cache(&o);
}

static struct cache *
open_cache(uint64_t restore_age_ms)
{
	return open_cache_wb(restore_age_ms, NULL);
}

static void
fault(const char *spec)
{
	CHECK_FATAL(os_fault_configure(t_os, spec, NULL) == 0, "fault(%s)",
		    spec);
}

/* The whole file reads as want[0..n). */
static bool
reads_back(struct cache *c, uint64_t ino, const uint8_t *want, size_t n)
{
	uint8_t *buf = tl_malloc(n + 1);
	struct meta_attr a;
	size_t got = 0;
	bool eof, ok;
	int r;

	CHECK_FATAL(meta_getattr(t_m, ino, &a) == 0, "getattr");
	cache_overlay_attr(c, &a);
	r = cache_read(c, ino, a.size, 0, n + 1, buf, &got, &eof);
	ok = r == 0 && a.size == n && got == n && memcmp(buf, want, n) == 0;
	if (!ok)
		printf("#   read: r=%d size=%llu got=%zu of %zu\n", r,
		       (unsigned long long)a.size, got, n);
	free(buf);
	return ok;
}

static size_t
nslices(uint64_t ino)
{
	struct meta_slice *s = NULL;
	size_t n = 0;

	meta_read_chunk(t_m, ino, 0, 0, META_CHUNK_SIZE, &s, &n);
	free(s);
	return n;
}

/* Every block the committed slices of ino's first chunk name exists. */
static bool
blocks_exist(uint64_t ino)
{
	struct meta_slice *s = NULL;
	const char *vol = meta_settings(t_m)->name;
	size_t n = 0, missing = 0;
	char key[256];
	uint64_t size;

	meta_read_chunk(t_m, ino, 0, 0, META_CHUNK_SIZE, &s, &n);
	for (size_t i = 0; i < n; i++)
		for (uint32_t k = 0; k * BS < s[i].size; k++) {
			cache_block_key(key, sizeof(key), vol, s[i].id, k,
					TL_MIN(BS, s[i].size - k * BS));
			if (os_head(t_os, key, &size) != 0) {
				printf("#   missing %s\n", key);
				missing++;
			}
		}
	free(s);
	return n > 0 && missing == 0;
}

static uint64_t
puts_seen(void)
{
	struct os_fault_stats st;

	os_fault_stats(t_os, &st);
	return st.calls[OS_OP_PUT];
}

static void
test_sync_failure(void)
{
	struct cache *c = open_cache(0);
	uint64_t ino = t_new_file("syncfail");
	const size_t n = 5 * BS + 777;
	uint8_t *data = tl_malloc(n);

	t_fill(data, n, 0, 1);
	CHECK_EQ(cache_write(c, ino, 0, data, n, false), 0, "unstable write");
	fault("ops=sync,err=1,failures=1");
	CHECK_EQ(cache_flush(c, ino), -EIO, "a failed sync fails the flush");
	CHECK(cache_buffered(c) >= n, "the data stays buffered");
	CHECK_EQ(nslices(ino), 0, "nothing committed");
	CHECK(reads_back(c, ino, data, n), "and reads back meanwhile");
	CHECK_EQ(cache_flush(c, ino), 0, "the next flush succeeds");
	CHECK_EQ(cache_buffered(c), 0, "and empties the buffer");
	CHECK(reads_back(c, ino, data, n), "no byte lost");
	CHECK(blocks_exist(ino), "every committed block exists");
	fault("");
	free(data);
	cache_close(c);
}

/* File x's blocks are stored early; file y's flush then fails its sync,
 * which loses x's blocks too.  x's own flush syncs fine afterwards: it
 * must store them again rather than commit what is gone. */
static void
test_other_files_sync(void)
{
	struct cache *c = open_cache(0);
	uint64_t x = t_new_file("early"), y = t_new_file("other");
	const size_t nx = 3 * BS + 100, ny = BS / 2;
	uint8_t *dx = tl_malloc(nx), *dy = tl_malloc(ny);
	int before;

	t_fill(dx, nx, 0, 2);
	t_fill(dy, ny, 0, 3);
	before = t_nobjects(t_os, "");
	CHECK_EQ(cache_write(c, x, 0, dx, nx, false), 0, "x: unstable write");
	/* The objects, not the wrapper's count of puts: a put is counted
	 * when it starts, and its object exists only once it is done. */
	T_WAIT(t_nobjects(t_os, "") >= before + 3);
	CHECK_EQ(t_nobjects(t_os, ""), before + 3,
		 "x: its 3 whole blocks are stored early");
	CHECK_EQ(cache_write(c, y, 0, dy, ny, false), 0, "y: unstable write");
	fault("ops=sync,err=1,failures=1");
	CHECK_EQ(cache_flush(c, y), -EIO, "y: its flush's sync fails");
	CHECK_EQ(t_nobjects(t_os, ""), before,
		 "and the failed sync lost x's stored blocks too");
	CHECK_EQ(cache_flush(c, x), 0, "x: flush with a healthy sync");
	CHECK(reads_back(c, x, dx, nx), "x: no byte lost");
	CHECK(blocks_exist(x), "x: every committed block exists");
	CHECK_EQ(cache_flush(c, y), 0, "y: flush again");
	CHECK(reads_back(c, y, dy, ny), "y: no byte lost");
	CHECK(blocks_exist(y), "y: every committed block exists");
	fault("");
	free(dx);
	free(dy);
	cache_close(c);
}

static void
test_put_failure(void)
{
	struct cache *c = open_cache(0);
	uint64_t ino = t_new_file("putfail");
	const size_t n = 2 * BS + 5;
	uint8_t *data = tl_malloc(n);

	t_fill(data, n, 0, 4);
	fault("ops=put,err=1");
	CHECK_EQ(cache_write(c, ino, 0, data, n, false), 0,
		 "unstable write (its early uploads fail)");
	CHECK_EQ(cache_flush(c, ino), -EIO, "flush fails while puts fail");
	CHECK(cache_buffered(c) >= n, "the data stays buffered");
	CHECK(reads_back(c, ino, data, n), "and reads back meanwhile");
	fault("");
	CHECK_EQ(cache_flush(c, ino), 0, "a later flush succeeds");
	CHECK(reads_back(c, ino, data, n), "no byte lost");
	CHECK(blocks_exist(ino), "every committed block exists");
	free(data);
	cache_close(c);
}

/* The volume is full: the flush stores x's blocks but cannot commit
 * them.  Once there is room again, blocks stored longer ago than
 * restore_age_ms are stored again before they are committed. */
static void
test_commit_failure(void)
{
	struct cache *c = open_cache(1);
	uint64_t filler = t_new_file("filler"), x = t_new_file("late"), p;
	const size_t nx = 2 * BS + 9;
	struct meta_usage u;
	uint8_t *df, *dx = tl_malloc(nx);
	size_t nf;

	CHECK_FATAL(meta_usage(t_m, &u) == 0, "usage");
	nf = CAPACITY - u.used_bytes - BS; /* x does not fit after it */
	df = tl_malloc(nf);
	t_fill(df, nf, 0, 5);
	t_fill(dx, nx, 0, 6);
	CHECK_EQ(cache_write(c, filler, 0, df, nf, true), 0, "fill the volume");
	CHECK_EQ(cache_write(c, x, 0, dx, nx, false), 0, "unstable write");
	p = puts_seen();
	CHECK_EQ(cache_flush(c, x), -ENOSPC, "flush: the volume is full");
	CHECK(puts_seen() > p, "its blocks were stored");
	CHECK(cache_buffered(c) >= nx, "the data stays buffered");
	CHECK_EQ(meta_unlink(t_m, &t_root, META_ROOT_INO, "filler", NULL, NULL),
		 0, "make room");
	usleep(2000); /* older than restore_age_ms (1 ms) */
	p = puts_seen();
	CHECK_EQ(cache_flush(c, x), 0, "flush again");
	CHECK_EQ(puts_seen() - p, 3, "its 3 blocks were stored again");
	CHECK(reads_back(c, x, dx, nx), "no byte lost");
	CHECK(blocks_exist(x), "every committed block exists");
	free(df);
	free(dx);
	cache_close(c);
}

/* With writeback the flush stages its blocks and the background
 * uploads sync the store.  One sync fails: an upload's (the upload is
 * retried; the staged copy stays until then) or the flush's (it fails,
 * and the next one stages everything again).  Either way the data is
 * committed and in the end every block is in the store. */
static void
test_writeback(void)
{
	char *cdir = tl_asprintf("%s/cache", t_dir);
	struct cache *c;
	uint64_t ino = t_new_file("staged");
	const size_t n = 3 * BS + 10;
	uint8_t *data = tl_malloc(n);
	struct os_fault_stats fs;
	struct cache_stats st;
	uint64_t injected;
	int r;

	CHECK_FATAL(mkdir(cdir, 0700) == 0, "mkdir %s", cdir);
	c = open_cache_wb(0, cdir);
	t_fill(data, n, 0, 7);
	os_fault_stats(t_os, &fs);
	injected = fs.injected[OS_OP_SYNC];
	CHECK_EQ(cache_write(c, ino, 0, data, n, false), 0, "unstable write");
	fault("ops=sync,err=1,failures=1");
	r = cache_flush(c, ino);
	if (r == -EIO) {
		CHECK(cache_buffered(c) >= n, "the flush's sync failed: the "
					      "data stays buffered");
		r = cache_flush(c, ino);
	}
	CHECK_EQ(r, 0, "flush (again if its sync failed)");
	CHECK(reads_back(c, ino, data, n), "no byte lost");
	/* Uploads that failed are retried after a second: wait for them. */
	T_WAIT(cache_stats(c, &st) == 0 && st.staged_blocks == 0);
	CHECK_EQ(st.staged_blocks, 0, "every staged block was uploaded");
	os_fault_stats(t_os, &fs);
	CHECK_EQ(fs.injected[OS_OP_SYNC] - injected, 1,
		 "the sync failure was injected");
	CHECK(blocks_exist(ino), "every committed block reached the store");
	fault("");
	free(data);
	cache_close(c);
	free(cdir);
}

int
main(void)
{
	t_start(BS, CAPACITY);

	test_sync_failure();
	test_other_files_sync();
	test_put_failure();
	test_commit_failure();
	test_writeback();

	t_finish();
	return tap_done();
}
