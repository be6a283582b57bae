/* cache: writeback - a process whose object store takes no uploads
 * flushes (COMMIT returns once blocks are staged), serves reads from the
 * staged blocks and is killed; a new process finds every staged block,
 * uploads it, and a third cache without disk cache or staging reads the
 * file back.  Also: a removed file's staged blocks are never uploaded
 * (nor left in the store by an upload in flight), the age alarm, and
 * `tessera status`'s scan of the staging directory. */
#include "config.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "t/unit/cache_test.h"
#include "t/unit/os_count.h"

#define BS   (64u << 10)
#define LEN  (5 * BS + 1000) /* 6 blocks, the last one short */
#define NBLK 6

static char cdir[128];

static struct cache *
open_wb(const char *dirs, bool writeback, bool gc, uint64_t max_age_ms)
{
	struct cache_opts o = {.buffer_limit = 64u << 20,
			       .upload_threads = 2,
			       .gc = gc,
			       .cache_dirs = dirs,
			       .writeback = writeback,
			       .writeback_max_age_ms = max_age_ms};
	return t_cache(&o);
}

static int
nobjects(void)
{
	return t_nobjects(t_fs, "vol/chunks/");
}

static uint64_t
staged(struct cache *c)
{
	struct cache_stats s;

	cache_stats(c, &s);
	return s.staged_blocks;
}

/* Wait until nothing is staged (up to 5 minutes: a stall detector, not
 * a speed limit). */
static bool
drained(struct cache *c)
{
	int i;

	for (i = 0; i < 3000 && staged(c) > 0; i++)
		usleep(100000);
	return staged(c) == 0;
}

/* The child: write with an object store that holds every PUT, flush,
 * report through fd, and die without any cleanup. */
static void
child(int fd, const uint8_t *data)
{
	struct cache *c;
	struct cache_stats s;
	uint64_t ino;
	char res[8] = "-----";

	t_open();
	t_hold_puts(true);
	c = open_wb(cdir, true, false, 0);
	ino = t_new_file("w");
	if (cache_write(c, ino, 0, data, LEN, false) == 0 &&
	    cache_flush(c, ino) == 0)
		res[0] = 'A';
	cache_stats(c, &s);
	if (s.staged_blocks == NBLK && s.staged_bytes == LEN)
		res[1] = 'B';
	if (t_read_eq(c, ino, 0, LEN, data))
		res[2] = 'C';
	if (nobjects() == 0)
		res[3] = 'D';
	if (t_size(c, ino) == LEN)
		res[4] = 'E';
	if (write(fd, res, 5) != 5)
		_exit(2);
	kill(getpid(), SIGKILL);
	_exit(3);
}

static void
test_crash(const uint8_t *data)
{
	struct cache_stats s;
	struct cache *c;
	char res[8] = {0};
	int p[2], st = 0;
	uint64_t ino;
	pid_t pid;

	CHECK_FATAL(pipe(p) == 0, "pipe");
	fflush(stdout);
	pid = fork();
	CHECK_FATAL(pid >= 0, "fork");
	if (pid == 0) {
		close(p[0]);
		child(p[1], data);
	}
	close(p[1]);
	CHECK(read(p[0], res, 5) == 5, "the child reports");
	close(p[0]);
	CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) &&
		      WTERMSIG(st) == SIGKILL,
	      "the child was killed with its uploads pending");
	CHECK(res[0] == 'A', "flush returned with the store taking no PUTs");
	CHECK(res[1] == 'B', "every block was staged");
	CHECK(res[2] == 'C', "staged blocks served reads");
	CHECK(res[3] == 'D', "nothing reached the store before the kill");
	CHECK(res[4] == 'E', "the slices were committed");

	t_open();
	CHECK_EQ(nobjects(), 0, "the store holds no block after the kill");
	CHECK_EQ(cache_staging_scan(cdir, 0, &s), 0, "scan the staging dir");
	CHECK_EQ(s.staged_blocks, NBLK, "status sees the staged blocks");
	CHECK_EQ(s.staged_bytes, LEN, "and their bytes");

	t_count_reset();
	c = open_wb(cdir, true, false, 0);
	CHECK(drained(c), "the restarted cache uploads every staged block");
	cache_stats(c, &s);
	CHECK_EQ(s.uploaded, NBLK, "uploaded count");
	CHECK_EQ(s.disk_blocks, NBLK, "uploaded blocks moved into the cache");
	cache_close(c);
	CHECK_EQ(t_puts(), NBLK, "one PUT per block");
	CHECK_EQ(nobjects(), NBLK, "the store holds every block");
	cache_staging_scan(cdir, 0, &s);
	CHECK_EQ(s.staged_blocks, 0, "the staging dir is empty");

	c = open_wb(NULL, false, false, 0);
	ino = t_lookup("w");
	t_count_reset();
	CHECK(t_read_eq(c, ino, 0, LEN, data),
	      "a cache without disk cache or staging reads the data back");
	CHECK(t_gets() >= NBLK, "from the object store");
	cache_close(c);
}

/* A file removed while its blocks wait for upload: gc cancels them, and
 * an upload in flight deletes its object again. */
static void
test_removed(const uint8_t *data)
{
	struct cache *c;
	uint64_t ino;
	int before = nobjects(), i;

	t_hold_puts(true);
	c = open_wb(cdir, true, true, 0);
	ino = t_new_file("gone");
	CHECK_EQ(cache_write(c, ino, 0, data, LEN, true), 0,
		 "stable write, staged");
	CHECK_EQ(staged(c), NBLK, "staged");
	CHECK_EQ(meta_unlink(t_m, &t_root, META_ROOT_INO, "gone", NULL, NULL),
		 0, "unlink");
	for (i = 0; i < 3000 && staged(c) > 0; i++)
		usleep(100000);
	CHECK_EQ(staged(c), 0, "gc cancelled the staged blocks");
	t_hold_puts(false);
	cache_close(c);
	CHECK_EQ(nobjects(), before,
		 "no block of the removed file is left in the store");
	c = open_wb(cdir, true, false, 0);
	CHECK_EQ(staged(c), 0, "nothing is staged after a restart");
	cache_close(c);
	CHECK_EQ(nobjects(), before, "and nothing was uploaded");
}

static void
test_alarm(const uint8_t *data)
{
	struct cache_stats s;
	struct cache *c;
	uint64_t ino;

	t_hold_puts(true);
	c = open_wb(cdir, true, false, 1);
	ino = t_new_file("old");
	CHECK_EQ(cache_write(c, ino, 0, data, BS, true), 0, "staged write");
	usleep(1100000);
	cache_stats(c, &s);
	CHECK(s.staged_overdue > 0, "a block staged too long is overdue");
	t_hold_puts(false);
	CHECK(drained(c), "uploaded once the store takes PUTs");
	cache_stats(c, &s);
	CHECK_EQ(s.staged_overdue, 0, "no alarm once uploaded");
	cache_close(c);
}

int
main(void)
{
	uint8_t *data = tl_malloc(LEN);

	t_fill(data, LEN, 0, 11);
	t_setup(BS, 0);
	snprintf(cdir, sizeof(cdir), "%s/cache", t_dir);
	CHECK_FATAL(mkdir(cdir, 0700) == 0, "mkdir %s", cdir);

	test_crash(data);
	test_removed(data);
	test_alarm(data);

	free(data);
	t_close();
	t_teardown();
	return tap_done();
}
