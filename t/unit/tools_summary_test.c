/*
 * tools_summary_test.c - `tessera info` and `tessera summary` on a real
 * LMDB volume built through the metadata layer:
 *
 *   info of a file lists its chunks and slice records, of a directory
 *   its own usage and quota, of a symlink its target;
 *   summary of a tree of 20,100 entries (100 directories of 200 files,
 *   some with sizes) gives its totals to the byte, --depth 1 a line per
 *   directory, and its peak memory (ru_maxrss, with LMDB's resident map
 *   held to 1 MiB) exceeds that of a summary of a tree of 3 entries by
 *   less than 2 MiB: memory does not grow with the size of the tree.
 *
 * The volume lives in /dev/shm when there is one: 20,000 creates, each
 * a durable transaction, cost nothing there.
 */
#include "config.h"

#include <inttypes.h>
#include <sys/resource.h>

#include "meta/meta.h"
#include "t/unit/tools_test.h"

#define NDIRS       100
#define NFILES      200
#define SIZED_EVERY 50   /* one file in 50 gets a size */
#define SIZE        5000 /* counts 8192 */

static char dir[64], url[160];
static const struct meta_cred root = {.uid = 0};

static uint64_t
mk(struct meta *m, uint64_t parent, const char *name, uint8_t type)
{
	struct meta_new n;
	uint64_t ino = 0;

	memset(&n, 0, sizeof(n));
	n.type = type;
	n.mode = type == META_DIR ? 0755 : 0644;
	n.target = "somewhere/else";
	TT_MUST(meta_create(m, &root, parent, name, &n, &ino, NULL, NULL, NULL,
			    NULL) == 0,
		"create %s", name);
	return ino;
}

static void
set_size(struct meta *m, uint64_t ino, uint64_t size)
{
	struct meta_setattr s = {.valid = META_SET_SIZE, .size = size};

	TT_MUST(meta_setattr(m, &root, ino, &s, NULL, NULL) == 0, "size");
}

/* Lines of the last tt_run that contain s. */
static int
count_lines(const char *s)
{
	int n = 0;

	for (const char *l = tt_out; l && *l;) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);
		char *line = tl_strndup(l, len);

		n += strstr(line, s) != NULL;
		free(line);
		l = e ? e + 1 : l + len;
	}
	return n;
}

/* Peak RSS in KiB of `tessera ARGS` run to its end (output dropped). */
static long
peak_kib(const char *args)
{
	struct rusage ru;
	char *cmd =
		tl_asprintf("exec %s %s >/dev/null 2>&1", TESSERA_BIN, args);
	pid_t pid = fork();
	int st;

	TT_MUST(pid >= 0, "fork");
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	TT_MUST(wait4(pid, &st, 0, &ru) == pid, "wait4");
	free(cmd);
	TT_MUST(WIFEXITED(st) && WEXITSTATUS(st) == 0, "tessera %s", args);
	return ru.ru_maxrss;
}

static void
build(struct meta *m, uint64_t *bytes, uint64_t *inodes)
{
	uint64_t s = mk(m, META_ROOT_INO, "small", META_DIR), big, f;
	struct meta_slice_write w[2] = {
		{0, {7, 4096, 0, 4096, 0}},
		{1, {9, 1000, 10, 990, 100}},
	};
	char name[32];

	set_size(m, mk(m, s, "a", META_REG), 10);
	mk(m, s, "b", META_REG);
	mk(m, s, "link", META_LNK);
	f = mk(m, s, "data", META_REG);
	TT_MUST(meta_write_slices(m, f, w, 2, tl_now_ns(), NULL, NULL) == 0,
		"write slices");
	big = mk(m, META_ROOT_INO, "big", META_DIR);
	*bytes = *inodes = 0;
	for (int d = 0; d < NDIRS; d++) {
		uint64_t di;

		snprintf(name, sizeof(name), "d%03d", d);
		di = mk(m, big, name, META_DIR);
		++*inodes;
		for (int i = 0; i < NFILES; i++) {
			snprintf(name, sizeof(name), "file-%d", i);
			f = mk(m, di, name, META_REG);
			++*inodes;
			if (i % SIZED_EVERY == 0) {
				set_size(m, f, SIZE);
				*bytes += 8192;
			}
		}
	}
}

int
main(void)
{
	struct meta_format_opts o = {"test", "file:///nonexistent", 0, 0, 0, 0,
				     false};
	struct meta_quota q = {.max_bytes = 1 << 30}, qo;
	struct meta *m;
	uint64_t bytes, inodes;
	long small, large;
	char *err = NULL, *want, *cmd;

	snprintf(dir, sizeof(dir), "%s/tessera-summary-XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	TT_MUST(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(url, sizeof(url), "lmdb://%s/meta?mapsize=256M&resident=1M",
		 dir);
	TT_MUST(meta_format(url, &o, &err) == 0, "format: %s", err);
	TT_MUST(meta_open(url, "test", &m, &err) == 0, "open: %s", err);
	build(m, &bytes, &inodes);
	TT_MUST(meta_resolve(m, "/small", &q.ino) == 0, "resolve");
	TT_MUST(meta_quota_set(m, &q, NULL, NULL, &qo) == 0, "quota");
	meta_close(m);

	CHECK_EQ(tt_run("info '%s' /small/data", url), 0, "info of a file");
	/* Slice 9 ends at 100 + 990 in chunk 1; written: 4 KiB each. */
	CHECK(tt_said("size:      67109954 (") &&
		      tt_said("data:      8192 bytes written"),
	      "its size and the bytes its slices hold");
	CHECK(tt_said("chunk 0 (bytes 0-): 1 records") &&
		      tt_said("pos 0 len 4096: slice 7 (size 4096) from "
			      "offset 0") &&
		      tt_said("chunk 1 (bytes 67108864-): 1 records") &&
		      tt_said("pos 100 len 990: slice 9 (size 1000) from "
			      "offset 10") &&
		      tt_said("2 chunks, 2 slice records (0 holes)"),
	      "its chunks and slice records");
	/* a: 4096; data: 64 MiB + 4096; b and link: none. */
	CHECK_EQ(tt_run("info '%s' /small", url), 0, "info of a directory");
	CHECK(tt_said("type:      directory") &&
		      tt_said("usage:     4 inodes, 67117056 bytes") &&
		      tt_said("quota:     bytes 67117056 used of 1073741824, "
			      "inodes 4 used of unlimited"),
	      "its usage and quota");
	CHECK_EQ(tt_run("info '%s' /small/link", url), 0, "info of a link");
	CHECK(tt_said("target:    somewhere/else"), "its target");
	CHECK(tt_run("info '%s' /nothing", url) == 1 && tt_said("No such file"),
	      "info of a missing path: exit 1");

	CHECK_EQ(tt_run("summary '%s' /big", url), 0, "summary");
	want = tl_asprintf("total: %" PRIu64 " bytes, %" PRIu64 " inodes, "
			   "%d directories below /big",
			   bytes, inodes, NDIRS);
	CHECK(tt_said(want), "%s", want);
	free(want);
	CHECK(!tt_said("/big/d"), "depth 0: no line for directories below");
	CHECK_EQ(tt_run("summary --depth 1 '%s' /big", url), 0,
		 "summary --depth 1");
	CHECK(count_lines(" /big/d") == NDIRS && tt_said("/big/d099\n"),
	      "a line per directory below");
	CHECK(tt_said("           32768   32.0 KiB          200          0"
		      "  /big/d007\n"),
	      "each with its bytes, inodes and directories");
	CHECK_EQ(tt_run("summary --depth 1 '%s' /", url), 0,
		 "summary --depth 1 of /");
	CHECK(tt_said(" /big\n") && !tt_said("/big/d007"),
	      "two levels down is past depth 1");

	cmd = tl_asprintf("summary '%s' /small", url);
	small = peak_kib(cmd);
	free(cmd);
	cmd = tl_asprintf("summary '%s' /big", url);
	large = peak_kib(cmd);
	free(cmd);
	printf("# peak RSS: %ld KiB for 4 entries, %ld KiB for %d\n", small,
	       large, NDIRS * (NFILES + 1));
#ifdef TESSERA_SANITIZERS
	printf("# sanitizer build: the memory bound is not asserted\n");
#else
	CHECK(large - small < 2048,
	      "summary of 20,100 entries peaks within 2 MiB of one of 4");
#endif
	tap_rm_rf(dir);
	free(tt_out);
	return tap_done();
}
