/* objstore: the file:// backend - put/get/head/delete, ranges, listing in
 * key order, bad keys, crash safety of put, ENOSPC passed through. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/tl.h"
#include "objstore/objstore.h"
#include "t/unit/tap.h"

static char root[64];

static struct os_store *
open_store(const char *sub)
{
	struct os_store *s = NULL;
	char *url = tl_asprintf("file://%s/%s", root, sub);
	char *err = NULL;
	int r = os_open(url, &s, &err);

	CHECK_FATAL(r == 0, "open %s (%s)", url, err ? err : "");
	free(url);
	free(err);
	return s;
}

static void
test_put_get(void)
{
	struct os_store *s = open_store("basic");
	char buf[64];
	size_t got = 99;
	uint64_t size = 0;

	CHECK_EQ(os_put(s, "v/chunks/0/0/1_0_10", "0123456789", 10), 0,
		 "put creates the subdirectories");
	CHECK_EQ(os_get(s, "v/chunks/0/0/1_0_10", 0, 10, buf, &got), 0,
		 "get whole");
	CHECK(got == 10 && memcmp(buf, "0123456789", 10) == 0,
	      "whole object read back");
	CHECK_EQ(os_get(s, "v/chunks/0/0/1_0_10", 3, 4, buf, &got), 0,
		 "get range");
	CHECK(got == 4 && memcmp(buf, "3456", 4) == 0, "range bytes 3..6");
	CHECK_EQ(os_get(s, "v/chunks/0/0/1_0_10", 8, 10, buf, &got), 0,
		 "get past the end is short");
	CHECK(got == 2 && memcmp(buf, "89", 2) == 0, "short read at the end");
	CHECK_EQ(os_get(s, "v/chunks/0/0/1_0_10", 10, 5, buf, &got), 0,
		 "get at the end");
	CHECK_EQ(got, 0, "nothing at the end");
	CHECK_EQ(os_get(s, "v/chunks/0/0/1_0_10", 11, 5, buf, &got), -ERANGE,
		 "offset past the end is -ERANGE");
	CHECK_EQ(os_head(s, "v/chunks/0/0/1_0_10", &size), 0, "head");
	CHECK_EQ(size, 10, "head size");
	CHECK_EQ(os_head(s, "v/nope", &size), -ENOENT, "head missing");
	CHECK_EQ(os_get(s, "v/nope", 0, 1, buf, &got), -ENOENT, "get missing");
	CHECK_EQ(os_get(s, "v/chunks", 0, 1, buf, &got), -ENOENT,
		 "a directory is not an object");
	CHECK_EQ(os_put(s, "v/chunks/0/0/1_0_10", "abc", 3), 0, "put replaces");
	CHECK_EQ(os_get(s, "v/chunks/0/0/1_0_10", 0, 64, buf, &got), 0,
		 "get replaced");
	CHECK(got == 3 && memcmp(buf, "abc", 3) == 0, "new content");
	CHECK_EQ(os_put(s, "empty", "", 0), 0, "empty object");
	CHECK_EQ(os_head(s, "empty", &size), 0, "head empty");
	CHECK_EQ(size, 0, "empty size");
	CHECK_EQ(os_delete(s, "v/chunks/0/0/1_0_10"), 0, "delete");
	CHECK_EQ(os_head(s, "v/chunks/0/0/1_0_10", &size), -ENOENT,
		 "gone after delete");
	CHECK_EQ(os_delete(s, "v/chunks/0/0/1_0_10"), 0,
		 "delete of a missing object is not an error");
	CHECK_EQ(os_delete(s, "no/such/dir/x"), 0, "delete under missing dir");
	os_close(s);
}

/* os_open_range: a descriptor on the object holding the range, only
 * when the bytes are in the page cache; what a plain read would say
 * otherwise; through the rate limiter too. */
static void
test_open_range(void)
{
	struct os_store *s = open_store("range"), *rl = NULL;
	char buf[16];
	int fd = -1;

	CHECK_EQ(os_put(s, "a/obj", "0123456789", 10), 0, "put");
	CHECK_EQ(os_sync(s), 0, "sync (clean pages)");
	CHECK_EQ(os_open_range(s, "a/obj", 3, 4, &fd), 0, "open a range");
	CHECK(fd >= 0 && pread(fd, buf, 4, 3) == 4 &&
		      memcmp(buf, "3456", 4) == 0,
	      "the descriptor reads the object");
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	fd = -1;
	/* The kernel may keep the pages; it usually drops clean ones. */
	if (os_open_range(s, "a/obj", 3, 4, &fd) == -EAGAIN) {
		CHECK(fd == -1, "bytes not in the page cache: -EAGAIN");
	} else {
		printf("# the kernel kept the pages: -EAGAIN not checked\n");
		close(fd);
	}
	CHECK_EQ(os_get(s, "a/obj", 0, 10, buf, &(size_t){0}), 0,
		 "a get brings them back");
	CHECK_EQ(os_open_range(s, "a/obj", 8, 3, &fd), -EIO,
		 "a range past the end: -EIO");
	CHECK_EQ(os_open_range(s, "a/none", 0, 1, &fd), -ENOENT, "missing");
	CHECK_EQ(os_open_range(s, "../x", 0, 1, &fd), -EINVAL, "bad key");
	CHECK_EQ(os_open_range(s, "a", 0, 1, &fd), -ENOENT,
		 "a directory is no object");
	CHECK_EQ(os_ratelimit_wrap(s, 0, 0, &rl), 0, "rate limiter");
	CHECK_EQ(os_open_range(rl, "a/obj", 0, 10, &fd), 0,
		 "through the rate limiter");
	if (fd >= 0)
		close(fd);
	os_close(rl);
}

static void
test_bad_keys(void)
{
	static const char *bad[] = {"",     "/abs",  "a/../b", "..",
				    "a/..", "a//b",  "a/",     "./a",
				    ".",    "a/./b", ".tmp/x", ".tmp"};
	struct os_store *s = open_store("bad");
	uint64_t size;
	size_t i, got;
	char buf[4];

	for (i = 0; i < TL_ARRAY_SIZE(bad); i++) {
		CHECK_EQ(os_put(s, bad[i], "x", 1), -EINVAL, "put '%s' refused",
			 bad[i]);
		CHECK(os_get(s, bad[i], 0, 1, buf, &got) < 0,
		      "get '%s' refused", bad[i]);
		CHECK(os_head(s, bad[i], &size) < 0, "head '%s' refused",
		      bad[i]);
		CHECK_EQ(os_delete(s, bad[i]), -EINVAL, "delete '%s' refused",
			 bad[i]);
	}
	CHECK_EQ(os_put(s, "a..b/.c", "x", 1), 0,
		 "dots inside a component are fine");
	CHECK_EQ(os_list(s, "../", NULL, NULL, NULL), -EINVAL,
		 "list prefix cannot climb");
	CHECK_EQ(os_list(s, "/", NULL, NULL, NULL), -EINVAL,
		 "list prefix is relative");
	os_close(s);
}

struct col {
	char keys[32][64];
	uint64_t sizes[32];
	int n;
	int stop_at;
};

static int
collect(void *arg, const char *key, uint64_t size)
{
	struct col *c = arg;

	if (c->n < 32) {
		snprintf(c->keys[c->n], sizeof(c->keys[0]), "%s", key);
		c->sizes[c->n] = size;
	}
	c->n++;
	return c->stop_at && c->n == c->stop_at ? 7 : 0;
}

static int
cmpstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void
expect_list(struct os_store *s, const char *prefix, const char *after,
	    const char **want, int nwant)
{
	struct col c = {.n = 0};
	int i, r, ok;

	r = os_list(s, prefix, after, collect, &c);
	ok = r == 0 && c.n == nwant;
	for (i = 0; ok && i < nwant; i++)
		ok = strcmp(c.keys[i], want[i]) == 0;
	CHECK(ok, "list prefix '%s' after '%s': %d keys in order", prefix,
	      after ? after : "(null)", nwant);
	if (!ok)
		for (i = 0; i < c.n && i < 32; i++)
			printf("#   got %s\n", c.keys[i]);
}

static void
test_list(void)
{
	static const char *keys[] = {
		"v/chunks/0/0/1_0_10",
		"v/chunks/0/0/10_0_5",
		"v/chunks/0/0/2_0_3",
		"v/chunks/0/1/1000_0_1",
		"v.x",
		"v/a",
		"w",
		"v/chunks/0/0/1_1_7",
		"v-y/z",
		"v0",
	};
	const char *sorted[TL_ARRAY_SIZE(keys)];
	struct os_store *s = open_store("list");
	struct col c = {.n = 0, .stop_at = 3};
	size_t i;
	int n = (int)TL_ARRAY_SIZE(keys);

	for (i = 0; i < TL_ARRAY_SIZE(keys); i++) {
		CHECK_EQ(os_put(s, keys[i], keys[i], strlen(keys[i])), 0,
			 "put %s", keys[i]);
		sorted[i] = keys[i];
	}
	qsort(sorted, TL_ARRAY_SIZE(keys), sizeof(sorted[0]), cmpstr);
	expect_list(s, "", NULL, sorted, n);
	expect_list(s, NULL, NULL, sorted, n);
	expect_list(s, "", sorted[3], sorted + 4, n - 4);
	expect_list(s, "", "v/chunks/0/0/1_0_11", sorted + 5, n - 5);
	expect_list(s, "", "w", NULL, 0);
	{
		const char *w[] = {"v/chunks/0/0/10_0_5", "v/chunks/0/0/1_0_10",
				   "v/chunks/0/0/1_1_7"};
		expect_list(s, "v/chunks/0/0/1", NULL, w, 3);
		expect_list(s, "v/chunks/0/0/1", "v/chunks/0/0/10_0_5", w + 1,
			    2);
	}
	{
		const char *w[] = {"v/chunks/0/0/10_0_5", "v/chunks/0/0/1_0_10",
				   "v/chunks/0/0/1_1_7", "v/chunks/0/0/2_0_3",
				   "v/chunks/0/1/1000_0_1"};
		expect_list(s, "v/chunks/", NULL, w, 5);
		expect_list(s, "v/chunks/0/", "v/chunks/0/0/2_0_3", w + 4, 1);
		expect_list(s, "v/chunks/0/", "v/chunks/0/0", w, 5);
	}
	expect_list(s, "nothing/here/", NULL, NULL, 0);
	CHECK_EQ(os_list(s, "", NULL, collect, &c), 7,
		 "callback's non-zero stops the listing and is returned");
	CHECK_EQ(c.n, 3, "stopped after the third key");
	c.n = 0;
	c.stop_at = 0;
	os_list(s, "v/a", NULL, collect, &c);
	CHECK(c.n == 1 && c.sizes[0] == 3, "list reports sizes");
	os_close(s);
}

/* Readers polling a key while it is rewritten never see a partial
 * object: the rename publishes whole objects only. */
#define BIG (8u << 20)

struct poller {
	struct os_store *s;
	volatile int stop;
	int bad, seen;
};

static void *
poll_key(void *arg)
{
	struct poller *p = arg;
	uint8_t *buf = tl_malloc(BIG);
	uint64_t size;
	size_t got, i;

	while (!p->stop) {
		if (os_get(p->s, "big/obj", 0, BIG, buf, &got) != 0)
			continue;
		p->seen++;
		if (got != BIG) {
			p->bad++;
			continue;
		}
		for (i = 1; i < BIG; i += 4093)
			if (buf[i] != buf[0])
				p->bad++;
		if (os_head(p->s, "big/obj", &size) == 0 && size != BIG)
			p->bad++;
	}
	free(buf);
	return NULL;
}

static void
test_atomic_put(void)
{
	struct poller p = {.s = open_store("atomic")};
	uint8_t *data = tl_malloc(BIG);
	pthread_t th;
	int i;

	pthread_create(&th, NULL, poll_key, &p);
	for (i = 0; i < 20; i++) {
		memset(data, 'a' + i, BIG);
		CHECK_FATAL(os_put(p.s, "big/obj", data, BIG) == 0,
			    "rewrite %d", i);
	}
	p.stop = 1;
	pthread_join(th, NULL);
	CHECK_EQ(p.bad, 0, "no reader saw a partial object (%d reads)", p.seen);
	free(data);
	os_close(p.s);
}

/* A writer killed in the middle of a put leaves no object under the
 * final name, and its temporary is never listed. */
static void
test_crash_mid_put(void)
{
	struct os_store *s = open_store("crash");
	char *tmpdir = tl_asprintf("%s/crash/.tmp", root);
	struct col c = {.n = 0};
	uint64_t size;
	pid_t pid;
	int i, found = 0;

	pid = fork();
	if (pid == 0) {
		size_t n = 512u << 20;
		uint8_t *d = tl_calloc(1, n);

		os_put(s, "k/obj", d, n);
		_exit(0);
	}
	/* Kill it once its temporary has some data in it. */
	for (i = 0; i < 2000 && !found; i++) {
		char *cmd = tl_asprintf("test -n \"$(find '%s' -type f "
					"-size +1k)\"",
					tmpdir);
		found = system(cmd) == 0;
		free(cmd);
		if (!found)
			usleep(5000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	CHECK(found, "the killed put had started writing");
	CHECK_EQ(os_head(s, "k/obj", &size), -ENOENT,
		 "no object under the final name after the crash");
	os_list(s, "", NULL, collect, &c);
	CHECK_EQ(c.n, 0, "the temporary is not listed");
	free(tmpdir);
	os_close(s);
}

/* A full file system is reported as -ENOSPC (in a private mount
 * namespace with a tiny tmpfs; skipped where that is not allowed). */
static void
test_enospc(void)
{
	int st = 0;
	pid_t pid = fork();

	if (pid == 0) {
		char *dir = tl_asprintf("%s/full", root);
		char *url = tl_asprintf("file://%s", dir);
		struct os_store *s;
		uint8_t *d = tl_calloc(1, 4u << 20);

		mkdir(dir, 0755);
		if (unshare(CLONE_NEWNS) != 0 ||
		    mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) !=
			    0 ||
		    mount("tmpfs", dir, "tmpfs", 0, "size=1m") != 0)
			_exit(77);
		if (os_open(url, &s, NULL) != 0)
			_exit(2);
		_exit(os_put(s, "x/y", d, 4u << 20) == -ENOSPC ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
		printf("# skip ENOSPC check: no mount namespace here\n");
		return;
	}
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "a full file system gives -ENOSPC");
}

static void
test_open_errors(void)
{
	struct os_store *s = NULL;
	char *err = NULL;

	CHECK_EQ(os_open("s4://x", &s, &err), -EINVAL, "unknown scheme");
	CHECK(err != NULL && s == NULL, "with a message");
	free(err);
	err = NULL;
	CHECK_EQ(os_open("file://", &s, &err), -EINVAL, "file:// needs a path");
	free(err);
}

struct syncer {
	struct os_store *s;
	int id, bad;
};

static void *
put_and_sync(void *arg)
{
	struct syncer *t = arg;
	char key[64];
	int i;

	for (i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "c/%d/%d", (t->id + i) % 5, i);
		if (os_put(t->s, key, "abcd", 4) != 0 || os_sync(t->s) != 0)
			t->bad++;
	}
	return NULL;
}

/* Deferred directory syncs: puts stay readable at once; os_sync syncs
 * every directory written since the last one, and one it could not sync
 * stays due.  Through a wrapper the file store is the one deferring. */
static void
test_deferred_sync(void)
{
	struct os_store *s = open_store("defer"), *w = NULL;
	char key[64], buf[8], *url, *path;
	uint64_t mark;
	size_t got = 0;
	int i;

	CHECK_EQ(os_sync(s), 0, "sync with nothing deferred");
	CHECK_EQ(os_defer_sync(s), 0, "the file store defers");
	for (i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "v/chunks/0/%d/%d_0_4", i % 3, i);
		CHECK_FATAL(os_put(s, key, "abcd", 4) == 0, "put %s", key);
	}
	CHECK(os_get(s, "v/chunks/0/2/5_0_4", 0, 4, buf, &got) == 0 &&
		      got == 4 && memcmp(buf, "abcd", 4) == 0,
	      "a deferred put is readable");
	CHECK_EQ(os_sync(s), 0, "sync");
	CHECK_EQ(os_sync(s), 0, "sync again (nothing due)");
	mark = os_sync_mark(s);
	CHECK_EQ(os_put(s, "v/chunks/0/7/99_0_4", "abcd", 4), 0, "put");
	path = tl_asprintf("%s/defer/v/chunks/0/7", root);
	tap_rm_rf(path);
	CHECK(os_sync(s) < 0, "a directory that cannot be synced fails");
	CHECK(os_sync_mark(s) != mark, "the failure is counted");
	CHECK(os_sync(s) < 0, "and stays due");
	CHECK_EQ(mkdir(path, 0755), 0, "recreate it");
	CHECK_EQ(os_sync(s), 0, "then the sync succeeds");
	CHECK_EQ(os_sync_since(s, mark), -EIO,
		 "but not since a mark taken before the failures");
	mark = os_sync_mark(s);
	CHECK_EQ(os_put(s, "v/chunks/0/7/100_0_4", "abcd", 4), 0, "put");
	CHECK_EQ(os_sync_since(s, mark), 0, "since a fresh mark it does");
	free(path);

	{
		struct syncer t[4];
		pthread_t th[4];
		int k, bad = 0;

		for (k = 0; k < 4; k++) {
			t[k] = (struct syncer){s, k, 0};
			pthread_create(&th[k], NULL, put_and_sync, &t[k]);
		}
		for (k = 0; k < 4; k++) {
			pthread_join(th[k], NULL);
			bad += t[k].bad;
		}
		CHECK_EQ(bad, 0, "concurrent puts and syncs share passes");
	}
	os_close(s);

	url = tl_asprintf("retry:file://%s/defer2", root);
	CHECK_FATAL(os_open(url, &w, NULL) == 0, "open %s", url);
	CHECK_EQ(os_defer_sync(w), 0, "defer through a wrapper");
	CHECK_EQ(os_put(w, "a/b", "x", 1), 0, "put through it");
	CHECK_EQ(os_sync(w), 0, "sync through it");
	os_close(w);
	free(url);
}

static int
count_fds(void)
{
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Deferred data: puts of a whole aligned buffer (written with O_DIRECT)
 * and of an unaligned one, and more puts than may wait for os_sync, all
 * read back whole, before and after the sync; the sync lets go of the
 * objects it kept open. */
static void
test_deferred_data(void)
{
	struct os_store *s = open_store("ddata");
	size_t len = 1 << 20, got = 0, i;
	uint8_t *al = aligned_alloc(4096, len + 4096), *back = malloc(len);
	char key[64];
	int fds, k, bad = 0;

	for (i = 0; i < len + 4096; i++)
		al[i] = (uint8_t)(i * 7 + i / 4096);
	fds = count_fds();
	CHECK_EQ(os_defer_sync(s), 0, "defer");
	CHECK_EQ(os_put(s, "d/aligned", al, len), 0, "put aligned 1 MiB");
	CHECK_EQ(os_put(s, "d/unaligned", al + 1, len - 1), 0, "put unaligned");
	for (k = 0; k < 300; k++) {
		snprintf(key, sizeof(key), "d/small/%d", k);
		bad += os_put(s, key, key, strlen(key)) != 0;
	}
	CHECK_EQ(bad, 0, "300 small puts (more than may wait)");
	CHECK(os_get(s, "d/aligned", 0, len, back, &got) == 0 && got == len &&
		      memcmp(back, al, len) == 0,
	      "aligned object readable before the sync");
	CHECK_EQ(os_sync(s), 0, "sync");
	CHECK_EQ(count_fds(), fds, "the sync closed the objects it kept");
	CHECK(os_get(s, "d/aligned", 0, len, back, &got) == 0 && got == len &&
		      memcmp(back, al, len) == 0,
	      "aligned object after the sync");
	CHECK(os_get(s, "d/unaligned", 0, len, back, &got) == 0 &&
		      got == len - 1 && memcmp(back, al + 1, len - 1) == 0,
	      "unaligned object after the sync");
	for (k = 0, bad = 0; k < 300; k++) {
		char buf[64];

		snprintf(key, sizeof(key), "d/small/%d", k);
		bad += os_get(s, key, 0, sizeof(buf), buf, &got) != 0 ||
		       got != strlen(key) || memcmp(buf, key, got) != 0;
	}
	CHECK_EQ(bad, 0, "every small object after the sync");
	os_close(s);
	free(al);
	free(back);
}

/* Pages of the stored object key held in the page cache. */
static size_t
resident_pages(const char *sub, const char *key, size_t len)
{
	char *path = tl_asprintf("%s/%s/%s", root, sub, key);
	size_t n = (len + 4095) / 4096, i, res = 0;
	unsigned char *vec = calloc(n, 1);
	int fd = open(path, O_RDONLY);
	void *p = MAP_FAILED;

	if (fd >= 0)
		p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	CHECK_FATAL(p != MAP_FAILED && mincore(p, len, vec) == 0, "mincore %s",
		    path);
	for (i = 0; i < n; i++)
		res += vec[i] & 1;
	munmap(p, len);
	close(fd);
	free(vec);
	free(path);
	return res;
}

/* Buffered puts leave the object in the page cache (read back from
 * memory); with os_file_direct a whole aligned block bypasses it. */
static void
test_direct(void)
{
	struct os_store *s = open_store("direct"), *w = NULL;
	size_t len = 1 << 20, got = 0, i;
	uint8_t *al = aligned_alloc(4096, len), *back = malloc(len);
	struct statfs sf;
	char *err = NULL, *url;

	for (i = 0; i < len; i++)
		al[i] = (uint8_t)(i * 13 + i / 4096);
	CHECK_EQ(os_put(s, "buffered", al, len), 0, "buffered put");
	CHECK_EQ(resident_pages("direct", "buffered", len), len / 4096,
		 "a buffered put leaves the object in the page cache");
	CHECK_EQ(os_file_direct(s, true), 0, "direct on");
	CHECK_EQ(os_put(s, "direct", al, len), 0, "direct put");
	CHECK(os_get(s, "direct", 0, len, back, &got) == 0 && got == len &&
		      memcmp(back, al, len) == 0,
	      "direct object reads back");
	CHECK_EQ(os_put(s, "direct-odd", al, len - 1), 0,
		 "direct on, unaligned length: buffered");
	CHECK_EQ(os_file_direct(s, false), 0, "direct off");
	CHECK_EQ(os_put(s, "after", al, len), 0, "buffered again");
	CHECK_EQ(resident_pages("direct", "after", len), len / 4096,
		 "direct off again: cached");
	os_close(s);
	/* tmpfs keeps everything in memory (and may refuse O_DIRECT). */
	if (statfs(root, &sf) == 0 && sf.f_type != 0x01021994) {
		s = open_store("direct");
		CHECK_EQ(os_file_direct(s, true), 0, "direct on");
		CHECK_EQ(os_put(s, "d2", al, len), 0, "direct put");
		/* (valgrind reads the head of every file mapped) */
		CHECK(resident_pages("direct", "d2", len) < 16,
		      "a direct put leaves nothing in the page cache");
		os_close(s);
	}
	url = tl_asprintf("zstd:file://%s/direct", root);
	CHECK_EQ(os_open(url, &w, &err), 0, "wrapped store");
	CHECK_EQ(os_file_direct(w, true), -EINVAL,
		 "os_file_direct wants the file store itself");
	CHECK_EQ(os_file_direct(os_unwrap(w, "file"), true), 0,
		 "found through os_unwrap");
	os_close(w);
	free(url);
	free(err);
	free(al);
	free(back);
}

int
main(void)
{
	snprintf(root, sizeof(root), "/tmp/objstore-test-XXXXXX");
	if (mkdtemp(root) == NULL)
		return 99;
	test_put_get();
	test_open_range();
	test_bad_keys();
	test_list();
	test_atomic_put();
	test_crash_mid_put();
	test_enospc();
	test_open_errors();
	test_deferred_sync();
	test_deferred_data();
	test_direct();
	tap_rm_rf(root);
	return tap_done();
}
