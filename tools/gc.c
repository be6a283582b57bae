/*
 * gc.c - `tessera gc`: account for every object of the volume's store,
 * and with --delete remove the leaked ones.
 *
 * Each block object is, by what the metadata says of its slice id (one
 * snapshot, meta_scan_slices): live (a file that exists names it), in
 * the trash (a removed file the trash keeps names it: released when it
 * expires or is purged, restored with `tessera trash restore`), pending
 * deletion (a removed file not purged yet names it, or the
 * deletion queue owns it: the background job of a gateway deletes
 * those), in its grace period (compaction dropped it less than the
 * grace ago: reads in flight may still want it), in flight (its id is
 * at or above the slice counter, or the object is younger than --grace:
 * a write not committed yet), or leaked (none of these).  Objects and
 * bytes are counted per kind, so an operator can tell a leak from a
 * backlog; the bytes are the objects' sizes in the store (after
 * compression and encryption).
 *
 * How objects leak: a flush that crashed after uploading blocks but before
 * committing its slice records; a power loss before the file store's
 * barrier (os_sync) made a commit impossible; a gateway killed between a
 * delete and meta_gc_release only repeats deletes, it leaks nothing.
 *
 * Why deleting is safe with a gateway writing (the order matters):
 *  1. the slice-id counter is read first: an id at or above it was handed
 *     out after we started, so its object is in flight, never a leak;
 *  2. the metadata's slices are read in one snapshot;
 *  3. the store is listed; an object is a candidate only if its id is in
 *     no set, is below the counter, and the object is older than the
 *     grace period (a flush uploads its blocks, then commits: an
 *     uncommitted object younger than the grace is a write in progress);
 *  4. if there are candidates, the metadata is read again and a candidate
 *     named now (committed while we listed) is kept.
 * What stays unsafe: a flush whose commit comes more than the grace
 * period after its upload.  A gateway stores blocks again, under fresh
 * ids, before committing them when it stored them more than
 * CACHE_RESTORE_NS (10 minutes) earlier (cache/flush.c), so that takes a
 * grace above that plus a stall of a gateway (default 1 hour).
 *
 * Only leaks are deleted: what is pending deletion is the gateways'
 * background job's (cache/gc.c), so a backlog shows here as a figure,
 * not as work gc does behind the job's back.
 *
 * Leaked objects are deleted by --jobs threads (stores are thread safe).
 *
 * Memory: 8 bytes per slice and set, plus the keys of the leaked
 * objects found.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache.h"
#include "lib/tl.h"
#include "meta/meta.h"
#include "objstore/objstore.h"
#include "tools/tools-internal.h"

#define GC_DEFAULT_GRACE_MS (3600ULL * 1000)
#define GC_DEFAULT_JOBS     8
#define GC_MAX_JOBS         64

static const char gc_usage[] =
	"Usage: tessera gc [--delete] [--grace DURATION] [--jobs N]\n"
	"                  [--verbose] [--volume NAME] META_URL\n"
	"\n"
	"Account for every object of the store of the volume at META_URL:\n"
	"live, in the trash (removed files the trash keeps), pending deletion\n"
	"(removed files and the deletion queue, the gateways' background job\n"
	"deletes them), in the grace period after compaction, in flight (too\n"
	"young to judge), and leaked (no metadata names them), with objects\n"
	"and bytes for each.  Without --delete it only reads; --delete\n"
	"removes the leaked objects and nothing else.  Safe while gateways\n"
	"serve the volume.  Blocks that metadata references but the store\n"
	"lacks are reported by 'tessera fsck'.\n"
	"Exit status 0: done; 1: errors (some objects were not deleted).\n"
	"\n"
	"Options:\n"
	"  --delete            delete the leaked objects (and only them)\n"
	"  -n, --dry-run       report only (the default)\n"
	"  --grace DURATION    an unnamed object younger than this is in\n"
	"                      flight, not leaked (30s, 10m, 2h, 1d;\n"
	"                      default 1h)\n"
	"  --jobs N            parallel deletes (1 to 64, default 8)\n"
	"  -v, --verbose       print the key of each leaked object\n"
	"  --volume NAME       the volume, when META_URL holds several\n"
	"  -h, --help          show this help\n";

/* What an object of the store is, by its slice id. */
enum gc_kind {
	GC_LIVE,
	GC_TRASH,   /* a file in the trash names it */
	GC_REMOVED, /* pending deletion: a removed file's */
	GC_QUEUED,  /* pending deletion: the queue's */
	GC_GRACE,
	GC_YOUNG, /* in flight */
	GC_LEAKED,
	GC_NKINDS
};

static const char *const gc_kind_label[GC_NKINDS] = {
	"live:",
	"in trash:",
	"pending, removed files:",
	"pending, deletion queue:",
	"grace period:",
	"in flight:",
	"leaked:",
};

struct leak {
	char *key;
	uint64_t size;
	uint64_t id;
	struct gc *g; /* for the delete job */
};

struct gc {
	struct meta *m;
	struct os_store *os;
	const struct meta_settings *set;
	struct meta_slice_sets sets;
	uint64_t counter; /* slice-id counter at the start */
	uint64_t cutoff;  /* objects stored after this are too young */
	bool delete, verbose, tty;
	const char *volume; /* --volume, or NULL */
	unsigned jobs;      /* parallel deletes */
	pthread_mutex_t mu; /* counters and stderr, while deletes run */
	uint64_t last_ms;
	/* what was found */
	struct leak *leaks;
	size_t nleaks, leakcap;
	uint64_t listed, listed_bytes, foreign;
	uint64_t count[GC_NKINDS], bytes[GC_NKINDS];
	uint64_t deleted, deleted_bytes, errors;
};

static void
progress_clear(struct gc *g)
{
	if (g->tty && g->last_ms) {
		fprintf(stderr, "\r%-75s\r", "");
		g->last_ms = 0;
	}
}

/* True at most once a second, on a terminal: time to print progress
 * (the caller prints one line, no newline, to stderr). */
static bool
progress_due(struct gc *g)
{
	uint64_t now = tl_now_ns() / 1000000;

	if (!g->tty || now - g->last_ms < 1000)
		return false;
	g->last_ms = now;
	fputc('\r', stderr);
	return true;
}

static void
scan_progress(void *arg, uint64_t chunks)
{
	if (progress_due(arg))
		fprintf(stderr, "reading metadata: %" PRIu64 " chunks ",
			chunks);
}

/* The kind of an object of slice id with time mtime_ns (0: unknown,
 * never old enough to be a leak). */
static enum gc_kind
classify(const struct gc *g, uint64_t id, uint64_t mtime_ns)
{
	if (meta_slice_set_has(&g->sets.live, id))
		return GC_LIVE;
	if (meta_slice_set_has(&g->sets.trash, id))
		return GC_TRASH;
	if (meta_slice_set_has(&g->sets.removed, id))
		return GC_REMOVED;
	if (meta_slice_set_has(&g->sets.queued, id))
		return GC_QUEUED;
	if (meta_slice_set_has(&g->sets.grace, id))
		return GC_GRACE;
	if (id >= g->counter || mtime_ns == 0 || mtime_ns > g->cutoff)
		return GC_YOUNG;
	return GC_LEAKED;
}

static int
list_cb(void *arg, const char *key, const struct os_obj_info *oi)
{
	struct gc *g = arg;
	enum gc_kind kind;
	struct leak *l;
	uint32_t idx, len;
	uint64_t id;
	char h[32];

	g->listed++;
	g->listed_bytes += oi->size;
	if (progress_due(g))
		fprintf(stderr,
			"listed %" PRIu64 " objects, %" PRIu64 " leaked (%s) ",
			g->listed, g->count[GC_LEAKED],
			tl_fmt_size(g->bytes[GC_LEAKED], h, sizeof(h)));
	if (cache_block_key_parse(key, g->set->name, &id, &idx, &len) < 0) {
		g->foreign++;
		return 0;
	}
	kind = classify(g, id, oi->mtime_ns);
	g->count[kind]++;
	g->bytes[kind] += oi->size;
	if (kind != GC_LEAKED)
		return 0;
	if (g->nleaks == g->leakcap) {
		g->leakcap = g->leakcap ? g->leakcap * 2 : 256;
		g->leaks = tl_realloc(g->leaks, g->leakcap * sizeof(*l));
	}
	l = &g->leaks[g->nleaks++];
	l->key = tl_strdup(key);
	l->size = oi->size;
	l->id = id;
	return 0;
}

/* Step 4: the candidates committed while we listed are what they are
 * now, not leaks. */
static int
recheck(struct gc *g)
{
	size_t i, n = 0;
	int rc;

	meta_slice_sets_free(&g->sets);
	rc = meta_scan_slices(g->m, &g->sets, scan_progress, g);
	if (rc)
		return rc;
	for (i = 0; i < g->nleaks; i++) {
		struct leak *l = &g->leaks[i];
		enum gc_kind kind = classify(g, l->id, 1);

		if (kind != GC_LEAKED && kind != GC_YOUNG) {
			g->count[GC_LEAKED]--;
			g->bytes[GC_LEAKED] -= l->size;
			g->count[kind]++;
			g->bytes[kind] += l->size;
			free(l->key);
			continue;
		}
		g->leaks[n++] = *l;
	}
	g->nleaks = n;
	return 0;
}

/* One leaked object, on a pool thread. */
static void
delete_job(void *arg)
{
	struct leak *l = arg;
	struct gc *g = l->g;
	int rc = os_delete(g->os, l->key);

	pthread_mutex_lock(&g->mu);
	if (rc) {
		progress_clear(g);
		fprintf(stderr, "tessera: gc: delete %s: %s\n", l->key,
			strerror(-rc));
		g->errors++;
	} else {
		g->deleted++;
		g->deleted_bytes += l->size;
		if (progress_due(g))
			fprintf(stderr,
				"deleted %" PRIu64 " of %zu leaked "
				"objects ",
				g->deleted, g->nleaks);
	}
	pthread_mutex_unlock(&g->mu);
}

/* Stores are thread safe (objstore.h); a bounded queue keeps at most
 * 2 * jobs deletes waiting. */
static void
delete_leaks(struct gc *g)
{
	struct tl_pool *pool = NULL;

	if (g->delete &&g->nleaks > 0)
		pool = tl_pool_create("gc-del", g->jobs, g->jobs * 2);
	for (size_t i = 0; i < g->nleaks; i++) {
		struct leak *l = &g->leaks[i];

		if (g->verbose) {
			pthread_mutex_lock(&g->mu);
			progress_clear(g);
			printf("%s %s (%" PRIu64 " bytes)\n",
			       g->delete ? "deleting" : "leaked", l->key,
			       l->size);
			pthread_mutex_unlock(&g->mu);
		}
		l->g = g;
		if (pool != NULL)
			tl_pool_submit(pool, delete_job, l);
	}
	if (pool != NULL)
		tl_pool_destroy(pool);
}

static void
print_summary(const struct gc *g)
{
	char h[32];

	printf("%-26s %" PRIu64 " objects, %" PRIu64 " bytes (%s)\n",
	       "objects listed:", g->listed, g->listed_bytes,
	       tl_fmt_size(g->listed_bytes, h, sizeof(h)));
	for (int k = 0; k < GC_NKINDS; k++)
		printf("%-26s %" PRIu64 " objects, %" PRIu64 " bytes (%s)\n",
		       gc_kind_label[k], g->count[k], g->bytes[k],
		       tl_fmt_size(g->bytes[k], h, sizeof(h)));
	if (g->delete)
		printf("%-26s %" PRIu64 " objects, %" PRIu64 " bytes (%s)\n",
		       "deleted:", g->deleted, g->deleted_bytes,
		       tl_fmt_size(g->deleted_bytes, h, sizeof(h)));
	if (g->foreign)
		printf("%-26s %" PRIu64 " (kept)\n",
		       "not block names:", g->foreign);
	printf("%-26s %" PRIu64 "\n", "errors:", g->errors);
}

static int
parse_args(int argc, char **argv, struct gc *g, uint64_t *grace_ms)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{"dry-run", no_argument, NULL, 'n'},
		{"delete", no_argument, NULL, 'd'},
		{"grace", required_argument, NULL, 'g'},
		{"jobs", required_argument, NULL, 'j'},
		{"verbose", no_argument, NULL, 'v'},
		TESSERA_VOLUME_OPTION,
		{NULL, 0, NULL, 0},
	};
	bool dry_run = false;
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "hnv", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(gc_usage, stdout);
			return 0;
		case 'n':
			dry_run = true;
			break;
		case 'd':
			g->delete = true;
			break;
		case 'g':
			if (tl_parse_duration_ms(optarg, grace_ms) == 0)
				break;
			fprintf(stderr, "tessera: bad --grace '%s'\n%s", optarg,
				gc_usage);
			return TESSERA_EXIT_USAGE;
		case 'j':
			if (tl_parse_u64(optarg, 1, GC_MAX_JOBS, &v) == 0) {
				g->jobs = (unsigned)v;
				break;
			}
			fprintf(stderr, "tessera: bad --jobs '%s'\n%s", optarg,
				gc_usage);
			return TESSERA_EXIT_USAGE;
		case 'v':
			g->verbose = true;
			break;
		case TESSERA_OPT_VOLUME:
			g->volume = optarg;
			break;
		default:
			fputs(gc_usage, stderr);
			return TESSERA_EXIT_USAGE;
		}
	}
	if (dry_run && g->delete) {
		fprintf(stderr,
			"tessera: gc: --dry-run or --delete, not "
			"both\n%s",
			gc_usage);
		return TESSERA_EXIT_USAGE;
	}
	if (argc - optind != 1) {
		fprintf(stderr, "tessera: gc needs META_URL\n%s", gc_usage);
		return TESSERA_EXIT_USAGE;
	}
	return -1; /* go on */
}

/* Objects of the store that this volume does not reference would be
 * deleted as leaks: never in a store that is not provably this
 * volume's.  gc --delete marks a store without a marker as tesserad does
 * (when a referenced block reads back); a report only warns. */
static int
gc_store_check(struct gc *g, const char *url)
{
	struct cache_store_check c;
	char *msg = NULL;
	int rc;

	if (g->delete) {
		rc = cache_store_claim(g->m, g->os, url, &msg);
		if (rc)
			fprintf(stderr, "tessera: gc: refused: %s\n", msg);
		free(msg);
		return rc;
	}
	rc = cache_store_check(g->m, g->os, &c);
	if (rc) {
		fprintf(stderr,
			"tessera: gc: storage %s: cannot read the "
			"volume marker: %s\n",
			g->os->url,
			rc == -EBADMSG ? "not a volume marker" : strerror(-rc));
		return rc;
	}
	if (c.state == CACHE_STORE_FOREIGN) {
		msg = cache_store_foreign_msg(g->m, g->os, &c.marker);
		fprintf(stderr, "tessera: gc: refused: %s\n", msg);
		free(msg);
		rc = -EEXIST;
	} else if (c.state == CACHE_STORE_UNMARKED) {
		fprintf(stderr,
			"tessera: gc: warning: storage %s has no "
			"volume marker; gc --delete marks it if a "
			"block of this volume reads back, and refuses "
			"otherwise\n",
			g->os->url);
	}
	cache_store_check_free(&c);
	return rc;
}

static int
gc_open(struct gc *g, const char *url)
{
	char *err = NULL;
	int rc;

	rc = tessera_open("gc", url, g->volume, !g->delete, &g->m);
	if (rc)
		return rc;
	g->set = meta_settings(g->m);
	rc = os_open_flags(g->set->storage, g->delete ? 0 : OS_OPEN_RDONLY,
			   &g->os, &err);
	if (rc) {
		fprintf(stderr, "tessera: gc: cannot open storage %s: %s\n",
			g->set->storage, err ? err : strerror(-rc));
		free(err);
		return rc;
	}
	return gc_store_check(g, url);
}

static int
gc_run(struct gc *g, uint64_t grace_ms)
{
	char *prefix;
	int rc;

	printf("gc of volume %s%s, grace %" PRIu64 " s\n", g->set->name,
	       g->delete ? "" : " (report: nothing is deleted)",
	       grace_ms / 1000);
	rc = meta_slice_counter(g->m, &g->counter);
	g->cutoff = tl_now_ns() - TL_MIN(grace_ms * 1000000, tl_now_ns());
	if (rc == 0)
		rc = meta_scan_slices(g->m, &g->sets, scan_progress, g);
	if (rc) {
		fprintf(stderr, "tessera: gc: metadata: %s\n", strerror(-rc));
		return rc;
	}
	prefix = tl_asprintf("%s/chunks/", g->set->name);
	rc = os_list_info(g->os, prefix, NULL, list_cb, g);
	free(prefix);
	if (rc == 0 && g->nleaks > 0)
		rc = recheck(g);
	if (rc) {
		progress_clear(g);
		fprintf(stderr, "tessera: gc: %s%s\n", strerror(-rc),
			rc == -ENOTSUP ? " (the store cannot list objects "
					 "with their times)"
				       : "");
		return rc;
	}
	delete_leaks(g);
	progress_clear(g);
	print_summary(g);
	return 0;
}

int
tessera_cmd_gc(int argc, char **argv)
{
	struct gc g;
	uint64_t grace_ms = GC_DEFAULT_GRACE_MS;
	int rc;

	memset(&g, 0, sizeof(g));
	g.jobs = GC_DEFAULT_JOBS;
	rc = parse_args(argc, argv, &g, &grace_ms);
	if (rc >= 0)
		return rc;
	g.tty = isatty(STDERR_FILENO);
	pthread_mutex_init(&g.mu, NULL);
	rc = gc_open(&g, argv[optind]);
	if (rc == 0)
		rc = gc_run(&g, grace_ms);
	for (size_t i = 0; i < g.nleaks; i++)
		free(g.leaks[i].key);
	free(g.leaks);
	meta_slice_sets_free(&g.sets);
	if (g.os)
		os_close(g.os);
	if (g.m)
		meta_close(g.m);
	pthread_mutex_destroy(&g.mu);
	return rc || g.errors ? 1 : 0;
}
