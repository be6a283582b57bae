/*
 * info.c - `tessera info PATH` (one inode: attributes, a file's chunks
 * and slices, a directory's usage and quota) and `tessera summary PATH`
 * (the usage of a tree, directory by directory, in memory that grows
 * with the tree's depth only).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/tl.h"
#include "meta/meta.h"
#include "tools/tools-internal.h"

static const char info_usage[] =
	"Usage: tessera info [--volume NAME] META_URL PATH\n"
	"\n"
	"Show one inode of the volume: PATH is absolute in the volume.\n"
	"Attributes; for a regular file its chunks and slice records; for a\n"
	"directory the usage of its own entries and its quota, if any; for\n"
	"a symlink its target.\n"
	"\n"
	"Options:\n"
	"  --volume NAME  the volume, when META_URL holds several\n"
	"  -h, --help     show this help\n";

static const char summary_usage[] =
	"Usage: tessera summary [--depth N] [--volume NAME] META_URL PATH\n"
	"\n"
	"The usage of the tree below PATH (a directory, absolute in the\n"
	"volume): for each directory down to depth N (default 0: PATH\n"
	"only), after the directories below it as du(1) does, one line:\n"
	"bytes (file sizes rounded up to 4 KiB), inodes below it,\n"
	"directories below it, path.  Then a total.  Memory grows with the\n"
	"depth of the tree, not with its size; the figures are summed from\n"
	"each directory's usage record, not from a snapshot (changes made\n"
	"meanwhile may show in part).\n"
	"\n"
	"Options:\n"
	"  --depth N      print directories down to N levels below PATH\n"
	"  --volume NAME  the volume, when META_URL holds several\n"
	"  -h, --help     show this help\n";

static const char *
type_name(uint8_t t)
{
	static const char *const n[] = {"?",
					"file",
					"directory",
					"block device",
					"character device",
					"symlink",
					"socket",
					"fifo"};

	return t < 8 ? n[t] : "?";
}

static void
print_time(const char *what, uint64_t ns)
{
	time_t t = (time_t)(ns / 1000000000ULL);
	char when[64];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	printf("%-10s %s.%09" PRIu64 " UTC\n", what, when,
	       (uint64_t)(ns % 1000000000ULL));
}

struct chunk_sum {
	uint64_t chunks, records, holes;
};

static int
chunk_cb(void *arg, uint32_t chunk, const struct meta_slice *s, size_t n)
{
	struct chunk_sum *c = arg;

	c->chunks++;
	printf("  chunk %" PRIu32 " (bytes %" PRIu64 "-): %zu records\n", chunk,
	       (uint64_t)(chunk * META_CHUNK_SIZE), n);
	for (size_t i = 0; i < n; i++) {
		c->records++;
		if (s[i].id == 0) {
			c->holes++;
			printf("    pos %" PRIu32 " len %" PRIu32 ": hole\n",
			       s[i].pos, s[i].len);
			continue;
		}
		printf("    pos %" PRIu32 " len %" PRIu32 ": slice %" PRIu64
		       " (size %" PRIu32 ") from offset %" PRIu32 "\n",
		       s[i].pos, s[i].len, s[i].id, s[i].size, s[i].off);
	}
	return 0;
}

static int
info_dir(struct meta *m, uint64_t ino)
{
	struct meta_quota q;
	uint64_t b, i;
	char h[32];
	int rc;

	rc = meta_dir_usage(m, ino, &b, &i);
	if (rc)
		return rc;
	printf("%-10s %" PRIu64 " inodes, %" PRIu64 " bytes (%s) in its "
	       "own entries\n",
	       "usage:", i, b, tl_fmt_size(b, h, sizeof(h)));
	rc = meta_quota_get(m, ino, &q);
	if (rc == -ENOENT) {
		printf("%-10s none\n", "quota:");
		return 0;
	}
	if (rc)
		return rc;
	printf("%-10s bytes %" PRIu64 " used of ", "quota:", q.used_bytes);
	if (q.max_bytes)
		printf("%" PRIu64, q.max_bytes);
	else
		printf("unlimited");
	printf(", inodes %" PRIu64 " used of ", q.used_inodes);
	if (q.max_inodes)
		printf("%" PRIu64 "\n", q.max_inodes);
	else
		printf("unlimited\n");
	return 0;
}

static int
info_run(struct meta *m, const char *path)
{
	struct chunk_sum c = {0, 0, 0};
	struct meta_attr a;
	uint64_t ino;
	char *target = NULL, h[32];
	int rc;

	rc = meta_resolve(m, path, &ino);
	if (rc == 0)
		rc = meta_getattr(m, ino, &a);
	if (rc)
		return rc;
	printf("%-10s %s\n", "path:", path);
	printf("%-10s %" PRIu64 " (generation %" PRIu32 ")\n", "inode:", ino,
	       a.gen);
	printf("%-10s %s\n", "type:", type_name(a.type));
	printf("%-10s %04o\n", "mode:", a.mode);
	printf("%-10s uid %" PRIu32 ", gid %" PRIu32 "\n", "owner:", a.uid,
	       a.gid);
	printf("%-10s %" PRIu32 "\n", "links:", a.nlink);
	printf("%-10s %" PRIu64 " (%s)\n", "size:", a.size,
	       tl_fmt_size(a.size, h, sizeof(h)));
	if (a.type == META_REG)
		printf("%-10s %" PRIu64 " bytes written (holes not "
		       "stored)\n",
		       "data:", a.written);
	if (a.type == META_BLK || a.type == META_CHR)
		printf("%-10s %" PRIu32 ", %" PRIu32 "\n",
		       "device:", a.rdev_major, a.rdev_minor);
	printf("%-10s %" PRIu64 "\n", "parent:", a.parent);
	print_time("atime:", a.atime_ns);
	print_time("mtime:", a.mtime_ns);
	print_time("ctime:", a.ctime_ns);
	switch (a.type) {
	case META_DIR:
		return info_dir(m, ino);
	case META_LNK:
		rc = meta_readlink(m, ino, &target);
		if (rc == 0)
			printf("%-10s %s\n", "target:", target);
		free(target);
		return rc;
	case META_REG:
		printf("chunks:\n");
		rc = meta_file_chunks(m, ino, chunk_cb, &c);
		if (rc == 0)
			printf("%" PRIu64 " chunks, %" PRIu64 " slice records "
			       "(%" PRIu64 " holes)\n",
			       c.chunks, c.records, c.holes);
		return rc;
	default:
		return 0;
	}
}

int
tessera_cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		TESSERA_VOLUME_OPTION,
		{NULL, 0, NULL, 0},
	};
	const char *volume = NULL;
	struct meta *m;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(info_usage, stdout);
			return 0;
		}
		if (c != TESSERA_OPT_VOLUME) {
			fputs(info_usage, stderr);
			return TESSERA_EXIT_USAGE;
		}
		volume = optarg;
	}
	if (argc - optind != 2)
		return tessera_usage_error(info_usage, "info needs %s",
					   "META_URL and PATH");
	if (argv[optind + 1][0] != '/')
		return tessera_usage_error(info_usage,
					   "PATH must be "
					   "absolute: '%s'",
					   argv[optind + 1]);
	if (tessera_open("info", argv[optind], volume, true, &m))
		return 1;
	rc = info_run(m, argv[optind + 1]);
	if (rc)
		fprintf(stderr, "tessera: info: %s: %s\n", argv[optind + 1],
			strerror(-rc));
	meta_close(m);
	return rc ? 1 : 0;
}

/* ---- summary ---------------------------------------------------------------
 *
 * Depth first with an explicit stack of one frame per level: a frame
 * remembers the cookie of the subdirectory it descended into, and the
 * next one is fetched after it, so nothing but the path from PATH to
 * the directory being summed is held. */

struct frame {
	uint64_t ino;
	uint64_t after; /* cookie of the last subdirectory done */
	uint64_t bytes, inodes, dirs;
	size_t pathlen; /* its path is path[0..pathlen) */
};

struct summary {
	struct meta *m;
	uint64_t depth;
	struct frame *st;
	size_t n, cap;
	char *path;
	size_t pathcap;
	struct tessera_progress p;
	uint64_t visited;
};

static void
summary_push(struct summary *s, uint64_t ino, const char *name)
{
	size_t base = s->n ? s->st[s->n - 1].pathlen : 0;
	size_t nl = strlen(name);
	struct frame *f;

	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 16;
		s->st = tl_realloc(s->st, s->cap * sizeof(*s->st));
	}
	if (base + nl + 2 > s->pathcap) {
		s->pathcap = 2 * (base + nl + 2);
		s->path = tl_realloc(s->path, s->pathcap);
	}
	if (s->n > 0 && !(base == 1 && s->path[0] == '/'))
		s->path[base++] = '/';
	memcpy(s->path + base, name, nl);
	f = &s->st[s->n++];
	memset(f, 0, sizeof(*f));
	f->ino = ino;
	f->pathlen = base + nl;
}

static void
summary_line(const struct frame *f, const char *path, size_t len)
{
	char h[32];

	printf("%16" PRIu64 " %10s %12" PRIu64 " %10" PRIu64 "  %.*s\n",
	       f->bytes, tl_fmt_size(f->bytes, h, sizeof(h)), f->inodes,
	       f->dirs, (int)len, path);
}

static int
summary_run(struct summary *s, uint64_t root, const char *path)
{
	struct meta_subdir sub;
	uint64_t b, i;
	size_t n;
	int rc;

	summary_push(s, root, path);
	rc = meta_dir_usage(s->m, root, &b, &i);
	s->st[0].bytes = b;
	s->st[0].inodes = i;
	while (rc == 0 && s->n > 0) {
		struct frame *f = &s->st[s->n - 1];

		rc = meta_subdirs(s->m, f->ino, f->after, &sub, 1, &n, NULL);
		if (rc == -ENOENT || rc == -ENOTDIR)
			rc = 0, n = 0; /* removed meanwhile */
		if (rc)
			break;
		if (n == 1) {
			f->after = sub.cookie;
			summary_push(s, sub.ino, sub.name);
			f = &s->st[s->n - 1];
			rc = meta_dir_usage(s->m, sub.ino, &f->bytes,
					    &f->inodes);
			if (rc == -ENOENT || rc == -ENOTDIR)
				rc = 0;
			if (++s->visited % 1024 == 0 &&
			    tessera_progress_due(&s->p)) {
				fprintf(stderr, "%" PRIu64 " directories",
					s->visited);
				fflush(stderr);
			}
			continue;
		}
		/* f is complete: print it, add it to its parent. */
		if (s->n - 1 <= s->depth) {
			tessera_progress_clear(&s->p);
			summary_line(f, s->path, f->pathlen);
		}
		if (s->n > 1) {
			struct frame *p = &s->st[s->n - 2];

			p->bytes += f->bytes;
			p->inodes += f->inodes;
			p->dirs += f->dirs + 1;
		} else {
			tessera_progress_clear(&s->p);
			printf("total: %" PRIu64 " bytes, %" PRIu64 " inodes, "
			       "%" PRIu64 " directories below %s\n",
			       f->bytes, f->inodes, f->dirs, path);
		}
		s->n--;
	}
	return rc;
}

int
tessera_cmd_summary(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{"depth", required_argument, NULL, 'd'},
		TESSERA_VOLUME_OPTION,
		{NULL, 0, NULL, 0},
	};
	struct summary s;
	const char *volume = NULL, *path;
	struct meta_attr a;
	uint64_t ino;
	int c, rc;

	memset(&s, 0, sizeof(s));
	while ((c = getopt_long(argc, argv, "hd:", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(summary_usage, stdout);
			return 0;
		case 'd':
			if (tl_parse_u64(optarg, 0, UINT64_MAX, &s.depth))
				return tessera_usage_error(summary_usage,
							   "bad --depth '%s'",
							   optarg);
			break;
		case TESSERA_OPT_VOLUME:
			volume = optarg;
			break;
		default:
			fputs(summary_usage, stderr);
			return TESSERA_EXIT_USAGE;
		}
	}
	if (argc - optind != 2)
		return tessera_usage_error(summary_usage, "summary needs %s",
					   "META_URL and PATH");
	path = argv[optind + 1];
	if (path[0] != '/')
		return tessera_usage_error(summary_usage,
					   "PATH must be "
					   "absolute: '%s'",
					   path);
	if (tessera_open("summary", argv[optind], volume, true, &s.m))
		return 1;
	tessera_progress_init(&s.p, STDERR_FILENO);
	rc = meta_resolve(s.m, path, &ino);
	if (rc == 0)
		rc = meta_getattr(s.m, ino, &a);
	if (rc == 0 && a.type != META_DIR)
		rc = -ENOTDIR;
	if (rc == 0) {
		printf("%16s %10s %12s %10s  %s\n", "BYTES", "", "INODES",
		       "DIRS", "PATH");
		rc = summary_run(&s, ino, path);
	}
	tessera_progress_clear(&s.p);
	if (rc)
		fprintf(stderr, "tessera: summary: %s: %s\n", path,
			strerror(-rc));
	free(s.st);
	free(s.path);
	meta_close(s.m);
	return rc ? 1 : 0;
}
