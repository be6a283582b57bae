/* tessera gc on a real LMDB volume and a file:// store, through the real
 * `tessera` binary: every object is counted, with its bytes, as live,
 * pending deletion (a removed file not purged yet, the deletion queue),
 * in flight (young, or above the slice counter) or leaked; without
 * --delete nothing is deleted; with it leaked objects older than the
 * grace are deleted and nothing else (every object is aged, so only
 * what the metadata says protects them): files read back byte for byte,
 * the pending ones stay for the background job; fsck is clean
 * afterwards. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "lib/tl.h"
#include "t/unit/os_count.h"
#include "t/unit/tools_test.h"

#define BS    (64u << 10)
#define OLD_S (2 * 3600) /* older than the default grace of 1 h */

static const struct meta_cred root_cred = {.uid = 0};
static char dir[64];
static char *murl;
static struct meta *m;
static struct os_store *fs;

static void
fill(uint8_t *p, size_t n, unsigned salt)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + salt + (i >> 11));
}

static struct cache *
open_cache(void)
{
	struct cache_opts o = {
		.buffer_limit = 64u << 20, .upload_threads = 2, .gc = false};
	struct cache *c = NULL;

	CHECK_FATAL(cache_open(m, fs, &o, &c) == 0, "cache_open");
	return c;
}

static uint64_t
write_file(struct cache *c, const char *name, size_t len, unsigned salt)
{
	struct meta_new n = {.type = META_REG, .mode = 0644};
	uint8_t *buf = tl_malloc(len);
	struct meta_attr a;
	uint64_t ino = 0;
	bool existed;

	CHECK_FATAL(meta_create(m, &root_cred, META_ROOT_INO, name, &n, &ino,
				&a, &existed, NULL, NULL) == 0,
		    "create %s", name);
	fill(buf, len, salt);
	CHECK_FATAL(cache_write(c, ino, 0, buf, len, false) == 0, "write %s",
		    name);
	CHECK_FATAL(cache_flush(c, ino) == 0, "flush %s", name);
	free(buf);
	return ino;
}

static bool
read_back(struct cache *c, uint64_t ino, size_t len, unsigned salt)
{
	uint8_t *want = tl_malloc(len), *got = tl_malloc(len);
	size_t n = 0;
	bool eof, ok;

	fill(want, len, salt);
	ok = cache_read(c, ino, len, 0, len, got, &n, &eof) == 0 && n == len &&
	     memcmp(want, got, len) == 0;
	free(want);
	free(got);
	return ok;
}

/* Set the mtime of object key to age_s seconds ago. */
static void
age(const char *key, uint64_t age_s)
{
	struct timespec ts[2];
	char *path = tl_asprintf("%s/objects/%s", dir, key);

	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= (time_t)age_s;
	ts[1] = ts[0];
	CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0, "age %s", key);
	free(path);
}

static int
age_cb(void *arg, const char *key, uint64_t size)
{
	(void)arg;
	(void)size;
	age(key, OLD_S);
	return 0;
}

static int
nobjects(void)
{
	return t_nobjects(fs, "");
}

static bool
exists(const char *key)
{
	uint64_t size;

	return os_head(fs, key, &size) == 0;
}

/* Plant block idx of slice id (len bytes), aged age_s; key into out. */
static void
plant(uint64_t id, uint32_t idx, uint32_t len, uint64_t age_s, char *out)
{
	uint8_t *buf = tl_calloc(1, len);

	cache_block_key(out, 256, "vol", id, idx, len);
	CHECK_FATAL(os_put(fs, out, buf, len) == 0, "plant %s", out);
	age(out, age_s);
	free(buf);
}

/* Run `tessera ARGS` (tt_run); its output into out (caller frees);
 * exit status. */
static int
run(const char *args, char **out)
{
	int st = tt_run("%s", args);

	*out = tl_strdup(tt_out);
	return st;
}

/* The number after "label" in the summary (objects), or -1. */
static long long
figure(const char *out, const char *label)
{
	const char *p = strstr(out, label);

	return p ? strtoll(p + strlen(label), NULL, 10) : -1;
}

/* The bytes of "label  N objects, B bytes", or -1. */
static long long
figure_bytes(const char *out, const char *label)
{
	const char *p = strstr(out, label);

	p = p ? strstr(p, "objects, ") : NULL;
	return p ? strtoll(p + 9, NULL, 10) : -1;
}

/* A file of 17 chunks (one 4 KiB block each) removed: too big to purge
 * in the unlink's transaction, its records wait for the background job
 * (none runs here): pending deletion, not leaked. */
static void
removed_big(void)
{
	struct meta_new n = {.type = META_REG, .mode = 0644};
	struct meta_slice_write w[17];
	uint64_t ino;
	char key[256];

	CHECK_FATAL(meta_create(m, &root_cred, META_ROOT_INO, "big", &n, &ino,
				NULL, NULL, NULL, NULL) == 0,
		    "create big");
	for (uint32_t i = 0; i < 17; i++) {
		w[i].chunk = i;
		memset(&w[i].s, 0, sizeof(w[i].s));
		CHECK_FATAL(meta_new_slice_id(m, &w[i].s.id) == 0, "id");
		w[i].s.size = w[i].s.len = 4096;
		plant(w[i].s.id, 0, 4096, OLD_S, key);
	}
	CHECK_FATAL(meta_write_slices(m, ino, w, 17, tl_now_ns(), NULL, NULL) ==
			    0,
		    "17 chunks");
	CHECK_FATAL(meta_unlink(m, &root_cred, META_ROOT_INO, "big", NULL,
				NULL) == 0,
		    "unlink big");
}

/* ---- the trash and the grace period ----------------------------------- */

/* A file removed with the trash on keeps its objects in the trash: gc
 * counts them "in trash", never leaked, and --delete leaves them; a
 * slice data compaction dropped waits out its grace: "grace period".
 * Every object is old, so only the metadata protects them. */
static void
test_trash_grace(void)
{
	struct meta_slice *old = NULL, nw;
	struct cache *c;
	char *args, *out, key[256];
	uint64_t ino;
	size_t nold = 0;
	int before;

	CHECK_FATAL(meta_set_trash_days(m, 7) == 0, "trash on");
	c = open_cache();
	write_file(c, "trashed", 2 * BS + 10, 7);
	ino = write_file(c, "regraced", 4096, 8);
	cache_close(c);
	CHECK_FATAL(meta_unlink(m, &root_cred, META_ROOT_INO, "trashed", NULL,
				NULL) == 0,
		    "remove trashed (into the trash)");
	meta_read_chunk(m, ino, 0, 0, META_CHUNK_SIZE, &old, &nold);
	memset(&nw, 0, sizeof(nw));
	CHECK_FATAL(meta_new_slice_id(m, &nw.id) == 0, "slice id");
	nw.size = nw.len = 4096;
	plant(nw.id, 0, 4096, OLD_S, key);
	CHECK_FATAL(nold == 1 && meta_rewrite_chunk(m, ino, 0, old, nold, &nw,
						    1) == 0,
		    "regraced's chunk rewritten as a fresh slice");
	free(old);
	os_list(fs, "", NULL, age_cb, NULL);
	before = nobjects();

	args = tl_asprintf("gc '%s'", murl);
	CHECK_EQ(run(args, &out), 0, "report with a trash exits 0");
	CHECK(figure(out, "in trash:") == 3 &&
		      figure_bytes(out, "in trash:") == 2 * BS + 10,
	      "in trash: the removed file's 3 blocks, with their bytes");
	CHECK(figure(out, "grace period:") == 1 &&
		      figure_bytes(out, "grace period:") == 4096,
	      "grace period: the slice compaction dropped");
	CHECK_EQ(figure(out, "leaked:"), 0, "nothing leaked");
	free(out);
	free(args);
	args = tl_asprintf("gc --delete --grace 0 '%s'", murl);
	CHECK_EQ(run(args, &out), 0, "gc --delete with a trash exits 0");
	CHECK(figure(out, "deleted:") == 0 && figure(out, "in trash:") == 3,
	      "--delete deletes nothing of the trash or the grace");
	CHECK_EQ(nobjects(), before, "every object kept");
	free(out);
	free(args);
	CHECK_FATAL(meta_set_trash_days(m, 0) == 0, "trash off");
}

/* ---- gc while the volume is written ------------------------------------ */

#define LIVE_FILES 24

static atomic_bool live_stop;

/* Create, write, flush; remove every third file again (the deletion
 * queue, drained by both this cache's job and tessera gc). */
static void *
live_writer(void *arg)
{
	struct cache *c = arg;
	char name[32];
	uint64_t ino;

	for (int i = 0; i < LIVE_FILES; i++) {
		snprintf(name, sizeof(name), "live%d", i);
		ino = write_file(c, name, (size_t)(i % 5 + 1) * BS + 100u * i,
				 100 + i);
		if (i % 3 == 2) {
			CHECK(meta_unlink(m, &root_cred, META_ROOT_INO, name,
					  NULL, NULL) == 0,
			      "unlink %s", name);
			cache_forget(c, ino);
		}
	}
	atomic_store(&live_stop, true);
	return NULL;
}

static void
test_live(void)
{
	struct cache_opts o = {
		.buffer_limit = 64u << 20, .upload_threads = 2, .gc = true};
	char leak[256], name[32], *args, *out;
	struct cache *c = NULL;
	pthread_t th;
	uint64_t id;
	int runs = 0, bad = 0;

	CHECK_FATAL(meta_new_slice_id(m, &id) == 0, "slice id");
	plant(id, 0, 8192, OLD_S, leak);
	CHECK_FATAL(cache_open(m, fs, &o, &c) == 0, "cache_open with gc");
	CHECK_FATAL(pthread_create(&th, NULL, live_writer, c) == 0,
		    "writer thread");
	args = tl_asprintf("gc --delete '%s'", murl);
	while (!atomic_load(&live_stop) || runs == 0) {
		bad += run(args, &out) != 0;
		free(out);
		runs++;
	}
	pthread_join(th, NULL);
	CHECK_EQ(bad, 0, "%d gc runs during writes exit 0", runs);
	CHECK(!exists(leak), "the old leak went while files were written");
	for (int i = 0; i < LIVE_FILES; i++) {
		uint64_t ino;

		snprintf(name, sizeof(name), "/live%d", i);
		if (i % 3 == 2)
			continue;
		CHECK(meta_resolve(m, name, &ino) == 0 &&
			      read_back(c, ino,
					(size_t)(i % 5 + 1) * BS + 100u * i,
					100 + i),
		      "%s reads back after gc", name);
	}
	cache_close(c);
	free(args);
}

int
main(void)
{
	struct meta_format_opts o = {"vol", NULL, BS, 0, 0, 0, true};
	char old1[256], old2a[256], old2b[256], young[256], above[256];
	char *err = NULL, *url, *args, *out;
	uint64_t f1, f2, f3, id1, id2, id3, counter = 0;
	struct cache *c;
	int before;

	strcpy(dir, "/tmp/gc-test-XXXXXX");
	CHECK_FATAL(mkdtemp(dir) != NULL, "mkdtemp");
	murl = tl_asprintf("lmdb://%s/db?mapsize=256M", dir);
	url = tl_asprintf("file://%s/objects", dir);
	o.storage = url;
	CHECK_FATAL(meta_format(murl, &o, &err) == 0, "format");
	CHECK_FATAL(meta_open(murl, NULL, &m, &err) == 0, "open");
	CHECK_FATAL(os_open(url, &fs, &err) == 0, "object store");
	/* What `tessera format` writes; gc refuses a store it cannot
	 * tell is this volume's. */
	CHECK_FATAL(cache_store_mark(m, fs, murl) == 0, "volume marker");

	/* Files, one removed (trash 0: its slices go to the queue). */
	c = open_cache();
	f1 = write_file(c, "multi", 5 * BS + 1234, 1);
	f2 = write_file(c, "small", 5000, 2);
	f3 = write_file(c, "doomed", 3 * BS, 3);
	(void)f3;
	CHECK(meta_unlink(m, &root_cred, META_ROOT_INO, "doomed", NULL, NULL) ==
		      0,
	      "unlink doomed");
	cache_close(c);
	removed_big();

	/* Leaks: ids handed out (below the counter) but never committed. */
	CHECK_FATAL(meta_new_slice_id(m, &id1) == 0 &&
			    meta_new_slice_id(m, &id2) == 0 &&
			    meta_new_slice_id(m, &id3) == 0,
		    "slice ids");
	CHECK(meta_slice_counter(m, &counter) == 0 && id3 < counter,
	      "slice counter %llu above the ids handed out",
	      (unsigned long long)counter);
	os_list(fs, "", NULL, age_cb, NULL); /* referenced ones are old too */
	plant(id1, 0, 4096, OLD_S, old1);
	plant(id2, 0, BS, OLD_S, old2a);
	plant(id2, 1, 100, OLD_S, old2b);
	plant(id3, 0, 777, 10, young);
	plant(counter + 10, 0, 512, OLD_S, above);
	CHECK(os_put(fs, "vol/chunks/notes.txt", "x", 1) == 0, "foreign");
	age("vol/chunks/notes.txt", OLD_S);
	before = nobjects();

	/* Without --delete: every object accounted for, nothing deleted. */
	args = tl_asprintf("gc -v '%s'", murl);
	CHECK_EQ(run(args, &out), 0, "report exits 0");
	CHECK_EQ(figure(out, "objects listed:"), 6 + 1 + 3 + 17 + 5 + 1,
		 "every block listed");
	CHECK(figure(out, "live:") == 7 &&
		      figure_bytes(out, "live:") == 5 * BS + 1234 + 5000,
	      "live: multi's 6 blocks and small's, with their bytes");
	CHECK(figure(out, "pending, removed files:") == 17 &&
		      figure_bytes(out, "pending, removed files:") == 17 * 4096,
	      "pending: the removed 17-chunk file not purged yet");
	CHECK(figure(out, "pending, deletion queue:") == 3 &&
		      figure_bytes(out, "pending, deletion queue:") == 3 * BS,
	      "pending: the removed file's blocks in the deletion queue");
	CHECK(figure(out, "grace period:") == 0, "nothing in its grace");
	CHECK(figure(out, "in flight:") == 2 &&
		      figure_bytes(out, "in flight:") == 777 + 512,
	      "in flight: the young leak and the id above the counter");
	CHECK(figure(out, "leaked:") == 3 &&
		      figure_bytes(out, "leaked:") == 4096 + BS + 100,
	      "leaked: 3 objects with their bytes");
	CHECK(strstr(out, "deleted:") == NULL, "no deletion reported");
	CHECK(strstr(out, old2b) != NULL, "-v names the leaked objects");
	CHECK_EQ(nobjects(), before, "the report deleted nothing");
	free(out);
	free(args);
	args = tl_asprintf("gc --dry-run '%s'", murl);
	CHECK_EQ(run(args, &out), 0, "--dry-run: the same report");
	CHECK_EQ(figure(out, "leaked:"), 3, "--dry-run: 3 leaked");
	free(out);
	free(args);

	/* --delete, default grace: the old leaks go, and only they. */
	args = tl_asprintf("gc --delete --jobs 3 '%s'", murl);
	CHECK_EQ(run(args, &out), 0, "gc --delete exits 0");
	CHECK(figure(out, "deleted:") == 3 &&
		      figure_bytes(out, "deleted:") == 4096 + BS + 100,
	      "3 leaked objects deleted, with their bytes");
	CHECK_EQ(figure(out, "errors:"), 0, "no errors");
	CHECK(!exists(old1) && !exists(old2a) && !exists(old2b),
	      "old leaks deleted");
	CHECK(exists(young), "young leak kept");
	CHECK(exists(above), "object above the slice counter kept");
	CHECK(exists("vol/chunks/notes.txt"), "foreign name kept");
	CHECK_EQ(nobjects(), before - 3, "only leaks deleted");
	free(out);
	free(args);
	args = tl_asprintf("gc '%s'", murl);
	CHECK_EQ(run(args, &out), 0, "report after --delete");
	CHECK(figure(out, "leaked:") == 0 &&
		      figure(out, "pending, removed files:") == 17 &&
		      figure(out, "pending, deletion queue:") == 3,
	      "no leak left; the pending objects wait for the job");
	free(out);
	free(args);

	c = open_cache();
	CHECK(read_back(c, f1, 5 * BS + 1234, 1), "multi reads back");
	CHECK(read_back(c, f2, 5000, 2), "small reads back");
	cache_close(c);

	/* --grace 0: the young leak too; above the counter never. */
	args = tl_asprintf("gc --delete --grace 0 '%s'", murl);
	CHECK_EQ(run(args, &out), 0, "gc --delete --grace 0 exits 0");
	CHECK_EQ(figure(out, "deleted:"), 1, "young leak deleted");
	CHECK(!exists(young) && exists(above), "young gone, above kept");
	free(out);
	free(args);

	args = tl_asprintf("fsck '%s'", murl);
	CHECK_EQ(run(args, &out), 0, "fsck clean after gc");
	free(out);
	free(args);
	CHECK_EQ(run("gc", &out), 2, "no META_URL: usage error");
	free(out);
	CHECK_EQ(run("gc --grace soon x", &out), 2, "bad grace: usage error");
	free(out);
	CHECK_EQ(run("gc --jobs 0 x", &out), 2, "bad jobs: usage error");
	free(out);
	CHECK_EQ(run("gc --dry-run --delete x", &out), 2,
		 "--dry-run and --delete: usage error");
	free(out);

	test_trash_grace();
	test_live();
	args = tl_asprintf("fsck '%s'", murl);
	CHECK_EQ(run(args, &out), 0, "fsck clean after gc during writes");
	free(out);
	free(args);

	os_close(fs);
	meta_close(m);
	free(url);
	free(murl);
	tap_rm_rf(dir);
	return tap_done();
}
