/*
 * warmup.c - tessera warmup: fill a gateway's disk cache with the blocks
 * of a tree, before the first real read needs them.
 *
 * The disk cache belongs to a running gateway: its index lives in the
 * daemon's memory (cache/diskcache.c), so blocks written into its
 * directories from outside would not be seen until a restart, and a
 * second writer would race its eviction.  So warmup goes through the
 * gateway: it is an NFS client (libnfs, the Debian library the tests
 * already use, rather than an NFS client of our own) that reads every
 * regular file of the trees it is given and throws the bytes away.  The
 * gateway serves those READs like any other, fetching each block from
 * the object store and filling its disk cache (and its memory tier) on
 * the way.  The data crosses the network once more than the fill needs;
 * on the gateway's own machine that is a loopback copy.
 *
 * The walk keeps a stack of directory paths, not a recursion, and reads
 * a file with several hard links once.  --bwlimit paces the reads.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw-nfs.h>

#include "lib/tl.h"
#include "tools/tools-internal.h"

#ifdef TESSERA_SANITIZERS
/* libnfs 4.0 (Debian 12) loses 24 bytes decoding the MOUNT reply inside
 * nfs_mount, once per process (valgrind: calloc <- rpc_process_pdu <-
 * nfs_mount); LeakSanitizer's documented hook keeps it out of the
 * report, and only it. */
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
	return "leak:libnfs.so\n";
}
#endif

static const char warmup_usage[] =
	"Usage: tessera warmup [--bwlimit RATE] NFS_URL [PATH...]\n"
	"\n"
	"Read every regular file under PATH (default: the whole export) "
	"through\n"
	"the gateway NFS_URL names, so that its disk cache holds their "
	"blocks.\n"
	"\n"
	"  NFS_URL            nfs://HOST[:PORT]/EXPORT[?nfsport=N&mountport=N\n"
	"                     &uid=N&gid=N] (libnfs's URL form)\n"
	"  PATH               a file or directory inside the export\n"
	"  --bwlimit RATE     read at most RATE bytes a second (\"50M\")\n"
	"  -h, --help         this text\n";

struct warm {
	struct nfs_context *nfs;
	uint8_t *buf;
	uint64_t chunk; /* bytes per READ */
	uint64_t limit; /* bytes a second, 0: no limit */
	uint64_t start_ns;
	uint64_t files, bytes, dirs, errors, links_skipped;
	void *seen; /* tsearch tree of inode numbers with nlink > 1 */
	struct tessera_progress prog;
};

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
show_progress(struct warm *w)
{
	double s = (double)(tl_now_ns() - w->start_ns) / 1e9;

	if (!tessera_progress_due(&w->prog))
		return;
	fprintf(stderr, "warmup: %" PRIu64 " files, %.1f MiB, %.1f MiB/s",
		w->files, (double)w->bytes / 1048576.0,
		s > 0 ? (double)w->bytes / 1048576.0 / s : 0.0);
	fflush(stderr);
}

/* Sleep until the bytes read so far fit the --bwlimit rate. */
static void
pace(struct warm *w)
{
	uint64_t due_ns, now;

	if (w->limit == 0)
		return;
	due_ns = w->start_ns +
		 (uint64_t)((double)w->bytes * 1e9 / (double)w->limit);
	now = tl_now_ns();
	if (due_ns > now) {
		struct timespec ts = {(time_t)((due_ns - now) / 1000000000),
				      (long)((due_ns - now) % 1000000000)};

		nanosleep(&ts, NULL);
	}
}

static void
report(struct warm *w, const char *path, const char *what, int rc)
{
	tessera_progress_clear(&w->prog);
	fprintf(stderr, "tessera: warmup: %s: %s: %s\n", path, what,
		rc < 0 ? strerror(-rc) : nfs_get_error(w->nfs));
	w->errors++;
}

static void
read_file(struct warm *w, const char *path)
{
	struct nfsfh *fh;
	int rc;

	rc = nfs_open(w->nfs, path, O_RDONLY, &fh);
	if (rc < 0) {
		report(w, path, "open", rc);
		return;
	}
	for (;;) {
		rc = nfs_read(w->nfs, fh, w->chunk, w->buf);
		if (rc < 0) {
			report(w, path, "read", rc);
			break;
		}
		if (rc == 0)
			break;
		w->bytes += (uint64_t)rc;
		show_progress(w);
		pace(w);
	}
	nfs_close(w->nfs, fh);
	w->files++;
}

/* A file seen before through another link: true (skip it). */
static bool
seen_before(struct warm *w, uint64_t ino, uint32_t nlink)
{
	uint64_t *k;
	void *r;

	if (nlink <= 1)
		return false;
	k = tl_malloc(sizeof(*k));
	*k = ino;
	r = tsearch(k, &w->seen, cmp_u64);
	if (r != NULL && *(uint64_t **)r != k) {
		free(k);
		w->links_skipped++;
		return true;
	}
	return false;
}

static char *
join(const char *dir, const char *name)
{
	size_t n = strlen(dir);

	return tl_asprintf("%s%s%s", dir, n > 0 && dir[n - 1] == '/' ? "" : "/",
			   name);
}

/* Walk the tree at root (a directory or a file). */
static void
warm_tree(struct warm *w, const char *root)
{
	struct nfs_stat_64 st;
	char **stack = NULL;
	size_t n = 0, cap = 0;
	int rc;

	rc = nfs_stat64(w->nfs, root, &st);
	if (rc < 0) {
		report(w, root, "stat", rc);
		return;
	}
	if (!S_ISDIR(st.nfs_mode)) {
		if (S_ISREG(st.nfs_mode) &&
		    !seen_before(w, st.nfs_ino, (uint32_t)st.nfs_nlink))
			read_file(w, root);
		return;
	}
	stack = tl_malloc(sizeof(*stack) * (cap = 16));
	stack[n++] = tl_strdup(root);
	while (n > 0) {
		char *dir = stack[--n];
		struct nfsdir *d;
		struct nfsdirent *e;

		rc = nfs_opendir(w->nfs, dir, &d);
		if (rc < 0) {
			report(w, dir, "opendir", rc);
			free(dir);
			continue;
		}
		w->dirs++;
		while ((e = nfs_readdir(w->nfs, d)) != NULL) {
			char *p;

			if (strcmp(e->name, ".") == 0 ||
			    strcmp(e->name, "..") == 0)
				continue;
			if (e->type == NF3DIR) {
				if (n == cap)
					stack = tl_realloc(stack,
							   sizeof(*stack) *
								   (cap *= 2));
				stack[n++] = join(dir, e->name);
				continue;
			}
			if (e->type != NF3REG ||
			    seen_before(w, e->inode, e->nlink))
				continue;
			p = join(dir, e->name);
			read_file(w, p);
			free(p);
		}
		nfs_closedir(w->nfs, d);
		free(dir);
	}
	free(stack);
}

int
tessera_cmd_warmup(int argc, char **argv)
{
	static const struct option opts[] = {
		{"bwlimit", required_argument, NULL, 'b'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct warm w = {0};
	struct nfs_url *url = NULL;
	double secs;
	int c, rc = 1;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(warmup_usage, stdout);
			return 0;
		case 'b':
			if (tl_parse_size(optarg, &w.limit) == 0 && w.limit > 0)
				break;
			return tessera_usage_error(
				warmup_usage, "bad --bwlimit '%s'", optarg);
		default:
			fputs(warmup_usage, stderr);
			return TESSERA_EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return tessera_usage_error(warmup_usage, "%s", "no NFS_URL");
	if (strncmp(argv[optind], "nfs://", 6) != 0)
		return tessera_usage_error(warmup_usage,
					   "'%s' is not an nfs:// URL",
					   argv[optind]);
	w.nfs = nfs_init_context();
	if (w.nfs == NULL) {
		fprintf(stderr, "tessera: warmup: cannot make an NFS "
				"context\n");
		return 1;
	}
	url = nfs_parse_url_dir(w.nfs, argv[optind]);
	if (url == NULL) {
		fprintf(stderr, "tessera: warmup: bad URL %s: %s\n",
			argv[optind], nfs_get_error(w.nfs));
		goto out;
	}
	nfs_set_version(w.nfs, NFS_V3);
	if (nfs_mount(w.nfs, url->server, url->path) != 0) {
		fprintf(stderr, "tessera: warmup: cannot mount %s:%s: %s\n",
			url->server, url->path, nfs_get_error(w.nfs));
		goto out;
	}
	w.chunk = nfs_get_readmax(w.nfs);
	if (w.chunk == 0 || w.chunk > (1u << 20))
		w.chunk = 1u << 20;
	w.buf = tl_malloc(w.chunk);
	tessera_progress_init(&w.prog, 2);
	w.start_ns = tl_now_ns();
	if (optind + 1 >= argc)
		warm_tree(&w, "/");
	for (int i = optind + 1; i < argc; i++) {
		char *p = tl_asprintf("%s%s", argv[i][0] == '/' ? "" : "/",
				      argv[i]);

		warm_tree(&w, p);
		free(p);
	}
	tessera_progress_clear(&w.prog);
	secs = (double)(tl_now_ns() - w.start_ns) / 1e9;
	printf("warmed up %" PRIu64 " files (%" PRIu64 " bytes) in %" PRIu64
	       " directories in %.1f s, %.1f MiB/s",
	       w.files, w.bytes, w.dirs, secs,
	       secs > 0 ? (double)w.bytes / 1048576.0 / secs : 0.0);
	if (w.links_skipped > 0)
		printf("; %" PRIu64 " further links skipped", w.links_skipped);
	if (w.errors > 0)
		printf("; %" PRIu64 " errors", w.errors);
	printf("\n");
	rc = w.errors > 0;
out:
	tdestroy(w.seen, free);
	free(w.buf);
	if (url != NULL)
		nfs_destroy_url(url);
	nfs_destroy_context(w.nfs);
	return rc;
}
