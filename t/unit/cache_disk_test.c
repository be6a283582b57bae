/* cache: the disk block cache on a real LMDB volume and file:// store -
 * blocks read once are served from disk (also after a restart, from the
 * scan), a bit-flipped, truncated or damaged-header cache file is a miss
 * that is refetched (never returned), the size limit holds under eviction
 * and keeps the hot block, the free-space floor stops caching, concurrent
 * readers of one missing block cause one GET (single-flight), and without
 * cache directories nothing is cached. */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "t/unit/cache_test.h"

#define BS (64u << 10)
#define NB 8

static char cdir[128];

static struct cache *
open_cache(const char *dirs, uint64_t size, unsigned floor)
{
	struct cache_opts o = {.buffer_limit = 64u << 20,
			       .upload_threads = 4,
			       .cache_dirs = dirs,
			       .cache_size = size,
			       .cache_free_floor = floor};
	return t_cache(&o);
}

/* The cache that writes the test file: no disk cache. */
static struct cache *
open_nodisk(void)
{
	return open_cache(NULL, 0, 0);
}

/* Apply fn to every cached block file; returns how many there are and
 * adds their sizes to *bytes. */
static int
each_file(void (*fn)(const char *path), uint64_t *bytes)
{
	char sub[256], path[512];
	struct dirent *de;
	struct stat st;
	int n = 0, k;
	DIR *d;

	for (k = 0; k < 256; k++) {
		snprintf(sub, sizeof(sub), "%s/blocks/%02x", cdir, k);
		if ((d = opendir(sub)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", sub, de->d_name);
			if (bytes && stat(path, &st) == 0)
				*bytes += (uint64_t)st.st_size;
			if (fn)
				fn(path);
			n++;
		}
		closedir(d);
	}
	return n;
}

static void
flip_data(const char *path)
{
	struct stat st;
	uint8_t b;
	int fd = open(path, O_RDWR);

	if (fd < 0 || fstat(fd, &st) < 0)
		goto out;
	if (pread(fd, &b, 1, st.st_size - 100) == 1) {
		b ^= 0x40;
		if (pwrite(fd, &b, 1, st.st_size - 100) != 1)
			printf("# cannot write %s\n", path);
	}
out:
	if (fd >= 0)
		close(fd);
}

static void
flip_header(const char *path)
{
	uint8_t b;
	int fd = open(path, O_RDWR);

	if (fd < 0)
		return;
	if (pread(fd, &b, 1, 20) == 1) {
		b ^= 1;
		if (pwrite(fd, &b, 1, 20) != 1)
			printf("# cannot write %s\n", path);
	}
	close(fd);
}

static void
cut(const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0 && truncate(path, st.st_size - 10) != 0)
		printf("# cannot truncate %s\n", path);
}

static void
test_cached_and_restart(uint64_t ino, const uint8_t *data)
{
	struct cache *c = open_cache(cdir, 0, 0);
	struct cache_stats s;

	t_count_reset();
	CHECK(t_read_eq(c, ino, 0, NB * BS, data), "cold read");
	CHECK_EQ(t_gets(), NB, "one GET per block");
	CHECK_EQ(t_stats(c).disk_blocks, NB, "every block cached on disk");
	CHECK(t_read_eq(c, ino, 0, NB * BS, data), "warm read");
	CHECK(t_read_eq(c, ino, 1000, 5000, data + 1000), "small warm read");
	CHECK_EQ(t_gets(), NB, "warm reads need no GET");
	cache_close(c);

	c = open_cache(cdir, 0, 0);
	s = t_stats(c);
	CHECK_EQ(s.disk_blocks, NB, "the scan at open finds every block");
	CHECK(s.disk_bytes > NB * BS, "and counts their bytes");
	t_count_reset();
	CHECK(t_read_eq(c, ino, 0, NB * BS, data), "read after restart");
	CHECK_EQ(t_gets(), 0, "served from disk after restart");
	cache_close(c);
}

static void
test_damage(uint64_t ino, const uint8_t *data, void (*fn)(const char *),
	    const char *what)
{
	struct cache *c;

	CHECK_EQ(each_file(fn, NULL), NB, "%s: every cache file", what);
	c = open_cache(cdir, 0, 0);
	t_count_reset();
	CHECK(t_read_eq(c, ino, 0, NB * BS, data),
	      "%s: the read returns the right data", what);
	CHECK_EQ(t_gets(), NB, "%s: every block refetched", what);
	CHECK_EQ(t_stats(c).disk_damaged, NB, "%s: counted as damaged", what);
	t_count_reset();
	CHECK(t_read_eq(c, ino, 0, NB * BS, data), "%s: read again", what);
	CHECK_EQ(t_gets(), 0, "%s: the cache was repaired", what);
	cache_close(c);
}

/* Small damaged reads are checked too (piece checksums). */
static void
test_damage_small(uint64_t ino, const uint8_t *data)
{
	struct cache *c;

	each_file(flip_data, NULL);
	c = open_cache(cdir, 0, 0);
	t_count_reset();
	/* The flipped byte is 100 bytes before the end of each block. */
	CHECK(t_read_eq(c, ino, BS - 200, 150, data + BS - 200),
	      "small read over a flipped byte returns the right data");
	CHECK_EQ(t_gets(), 1, "with one (range) GET");
	cache_close(c);
}

/* Whole 4 KiB multiples in aligned buffers are written O_DIRECT (TSB2,
 * data 4 KiB aligned in the file), other lengths by write(2) (TSB1):
 * both kinds are found again after a restart and a flipped data byte in
 * either is a miss. */
static void
test_both_layouts(void)
{
	const size_t n = 2 * BS + 1000; /* blocks of BS, BS and 1000 bytes */
	uint8_t *data = tl_malloc(n);
	uint64_t ino;
	struct cache *c = open_cache(NULL, 0, 0);
	char dir[160];

	snprintf(dir, sizeof(dir), "%s/layouts", t_dir);
	CHECK_FATAL(mkdir(dir, 0700) == 0, "mkdir %s", dir);
	ino = t_new_file("layouts");
	t_fill(data, n, 0, 11);
	CHECK_EQ(cache_write(c, ino, 0, data, n, true), 0, "write odd size");
	cache_close(c);
	c = open_cache(dir, 0, 0);
	CHECK(t_read_eq(c, ino, 0, n, data), "cold read of both layouts");
	CHECK_EQ(t_stats(c).disk_blocks, 3, "all three blocks cached");
	cache_close(c);
	c = open_cache(dir, 0, 0);
	t_count_reset();
	CHECK(t_read_eq(c, ino, 0, n, data), "warm read of both layouts");
	CHECK(t_read_eq(c, ino, 2 * BS + 10, 900, data + 2 * BS + 10),
	      "small read of the short block");
	CHECK_EQ(t_gets(), 0, "served from the disk cache");
	cache_close(c);
	free(data);
}

static void
test_eviction(uint64_t ino, const uint8_t *data)
{
	const uint64_t limit = 4 * (BS + 4096);
	struct cache *c = open_cache(cdir, limit, 0);
	uint64_t bytes = 0;
	int i;

	for (i = 1; i < NB; i++) {
		CHECK(t_read_eq(c, ino, 0, BS, data), "hot block %d", i);
		CHECK(t_read_eq(c, ino, (uint64_t)i * BS, BS,
				data + (size_t)i * BS),
		      "block %d", i);
		/* Fills are written in the background: let them land, so
		 * that the next read of the hot block finds it on disk
		 * (not in memory, held by its fill) and touches it. */
		(void)t_stats(c);
	}
	CHECK(t_stats(c).disk_bytes <= limit, "index within the limit");
	CHECK(t_stats(c).disk_evicted > 0, "blocks were evicted");
	each_file(NULL, &bytes);
	CHECK(bytes <= limit, "files on disk within the limit (%llu)",
	      (unsigned long long)bytes);
	t_count_reset();
	CHECK(t_read_eq(c, ino, 0, BS, data), "hot block");
	CHECK_EQ(t_gets(), 0, "the hot block stayed cached");
	cache_close(c);
}

static void
test_floor(uint64_t ino, const uint8_t *data)
{
	char other[160];
	struct cache *c;

	snprintf(other, sizeof(other), "%s/floor", t_dir);
	CHECK_FATAL(mkdir(other, 0700) == 0, "mkdir %s", other);
	c = open_cache(other, 0, 100); /* clamped to 99 % */
	CHECK(t_read_eq(c, ino, 0, NB * BS, data), "read under the floor");
	CHECK_EQ(t_stats(c).disk_blocks, 0, "nothing cached under the floor");
	cache_close(c);
}

struct sf {
	struct cache *c;
	uint64_t ino;
	const uint8_t *data;
	pthread_barrier_t *bar;
	bool ok;
};

static void *
sf_main(void *arg)
{
	struct sf *a = arg;

	pthread_barrier_wait(a->bar);
	a->ok = t_read_eq(a->c, a->ino, 3 * BS, BS, a->data + 3 * BS);
	return NULL;
}

static void
test_single_flight(uint64_t ino, const uint8_t *data, const char *dirs)
{
	enum { N = 8 };
	struct cache *c = open_cache(dirs, 0, 0);
	pthread_barrier_t bar;
	pthread_t th[N];
	struct sf a[N];
	int i, ok = 0;

	pthread_barrier_init(&bar, NULL, N);
	t_count_reset();
	t_faults("ops=get,latency=300ms");
	for (i = 0; i < N; i++) {
		a[i] = (struct sf){c, ino, data, &bar, false};
		pthread_create(&th[i], NULL, sf_main, &a[i]);
	}
	for (i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		ok += a[i].ok;
	}
	t_faults("");
	CHECK_EQ(ok, N, "%d concurrent readers read the right data (%s)", N,
		 dirs ? "disk cache" : "no disk cache");
	CHECK_EQ(t_gets(), 1, "one GET for them all (%s)",
		 dirs ? "disk cache" : "no disk cache");
	pthread_barrier_destroy(&bar);
	cache_close(c);
}

static void
test_no_disk_cache(uint64_t ino, const uint8_t *data)
{
	struct cache *c = open_cache(NULL, 0, 0);
	struct cache_stats s;

	t_count_reset();
	CHECK(t_read_eq(c, ino, 0, NB * BS, data), "read without a cache");
	CHECK(t_read_eq(c, ino, 0, NB * BS, data), "and again");
	CHECK_EQ(t_gets(), 2 * NB,
		 "without a disk cache (or memory) every read fetches");
	s = t_stats(c);
	CHECK_EQ(s.disk_blocks + s.disk_hits, 0, "no disk cache figures");
	cache_close(c);
}

int
main(void)
{
	uint8_t *data;
	uint64_t ino = t_start_file(BS, NB * BS, 7, open_nodisk, &data);

	snprintf(cdir, sizeof(cdir), "%s/cache", t_dir);
	CHECK_FATAL(mkdir(cdir, 0700) == 0, "mkdir %s", cdir);

	test_cached_and_restart(ino, data);
	test_damage(ino, data, flip_data, "bit flip in the data");
	test_damage(ino, data, cut, "truncated file");
	test_damage(ino, data, flip_header, "bit flip in the header");
	test_damage_small(ino, data);
	test_eviction(ino, data);
	test_both_layouts();
	test_floor(ino, data);
	test_single_flight(ino, data, NULL);
	test_single_flight(ino, data, t_dir);
	test_no_disk_cache(ino, data);

	free(data);
	t_finish();
	return tap_done();
}
