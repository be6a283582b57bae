/*
 * gc.c - `tessera gc`: delete objects of the store that no metadata
 * references (leaked blocks), and drain the pending-deletion queue.
 *
 * How objects leak: a flush that crashed after uploading blocks but before
 * committing its slice records; a power loss before the file store's
 * barrier (os_sync) made a commit impossible; a gateway killed between a
 * delete and meta_gc_release only repeats deletes, it leaks nothing.
 *
 * Why deleting is safe with a gateway writing (the order matters):
 *  1. the slice-id counter is read first: an id at or above it was handed
 *     out after we started, so its object is in flight, never a leak;
 *  2. the referenced set (every slice id in a chunk record, plus the ids
 *     the deletion queue owns) is read in one snapshot;
 *  3. the store is listed; an object is a candidate only if its id is in
 *     neither set, is below the counter, and the object is older than the
 *     grace period (a flush uploads its blocks, then commits: an
 *     uncommitted object younger than the grace is a write in progress);
 *  4. if there are candidates, the metadata is read again and a candidate
 *     referenced now (committed while we listed) is kept.
 * What stays unsafe: a flush whose commit comes more than the grace
 * period after its upload.  A gateway stores blocks again, under fresh
 * ids, before committing them when it stored them more than
 * CACHE_RESTORE_NS (10 minutes) earlier (cache/flush.c), so that takes a
 * grace above that plus a stall of a gateway (default 1 hour).
 *
 * The deletion queue (R records: slices released by unlink and truncate)
 * is drained with meta_gc_next / meta_gc_release, exactly as the gateway's
 * background job does (cache/gc.c), so running both is harmless: a
 * slice may have its objects deleted twice.
 *
 * Leaked objects are deleted by --jobs threads (stores are thread safe);
 * the queue is drained one slice at a time, as the gateway does.
 *
 * Memory: 8 bytes per referenced slice (two sorted id arrays), plus the
 * keys of the leaked objects found.
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

#define GC_QUEUE_BATCH 256
#define GC_DEFAULT_GRACE_MS (3600ULL * 1000)
#define GC_DEFAULT_JOBS 8
#define GC_MAX_JOBS 64

static const char gc_usage[] =
	"Usage: tessera gc [--dry-run] [--grace DURATION] [--jobs N]\n"
	"                  [--no-queue] [--verbose] [--volume NAME] META_URL\n"
	"\n"
	"Delete the objects of the volume at META_URL that no metadata\n"
	"references (leaked blocks of writes that crashed before their\n"
	"commit), and the objects of the pending-deletion queue.  Safe while\n"
	"gateways serve the volume.  Blocks that metadata references but the\n"
	"store lacks are reported by 'tessera fsck'.\n"
	"Exit status 0: done; 1: errors (some objects were not deleted).\n"
	"\n"
	"Options:\n"
	"  -n, --dry-run       only report what would be deleted (reads\n"
	"                      only: creates and changes nothing)\n"
	"  --grace DURATION    keep unreferenced objects younger than this:\n"
	"                      they may belong to a write in progress\n"
	"                      (30s, 10m, 2h, 1d; default 1h)\n"
	"  --jobs N            parallel deletes (1 to 64, default 8)\n"
	"  --no-queue          do not drain the pending-deletion queue\n"
	"  -v, --verbose       print the key of each leaked object\n"
	"  --volume NAME       the volume, when META_URL holds several\n"
	"  -h, --help          show this help\n";

struct leak {
	char *key;
	uint64_t size;
	uint64_t id;
	struct gc *g;  /* for the delete job */
};

struct gc {
	struct meta *m;
	struct os_store *os;
	const struct meta_settings *set;
	struct meta_slice_set ref, queued;
	uint64_t counter;  /* slice-id counter at the start */
	uint64_t cutoff;   /* objects stored after this are too young */
	bool dry_run, verbose, tty;
	const char *volume; /* --volume, or NULL */
	unsigned jobs;     /* parallel deletes */
	pthread_mutex_t mu; /* counters and stderr, while deletes run */
	uint64_t last_ms;
	/* what was found */
	struct leak *leaks;
	size_t nleaks, leakcap;
	uint64_t listed, listed_bytes, referenced, in_queue, young, foreign;
	uint64_t leaked_bytes, deleted, deleted_bytes, errors;
	uint64_t q_slices, q_objects;
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
		fprintf(stderr, "reading metadata: %" PRIu64 " chunks ", chunks);
}

static int
list_cb(void *arg, const char *key, const struct os_obj_info *oi)
{
	struct gc *g = arg;
	struct leak *l;
	uint32_t idx, len;
	uint64_t id;
	char h[32];

	g->listed++;
	g->listed_bytes += oi->size;
	if (progress_due(g))
		fprintf(stderr, "listed %" PRIu64 " objects, %zu leaked (%s) ",
			g->listed, g->nleaks,
			tl_fmt_size(g->leaked_bytes, h, sizeof(h)));
	if (cache_block_key_parse(key, g->set->name, &id, &idx, &len) < 0) {
		g->foreign++;
		return 0;
	}
	if (meta_slice_set_has(&g->ref, id)) {
		g->referenced++;
		return 0;
	}
	if (meta_slice_set_has(&g->queued, id)) {
		g->in_queue++;
		return 0;
	}
	/* mtime 0: the store could not say; never old enough. */
	if (id >= g->counter || oi->mtime_ns == 0 || oi->mtime_ns > g->cutoff) {
		g->young++;
		return 0;
	}
	if (g->nleaks == g->leakcap) {
		g->leakcap = g->leakcap ? g->leakcap * 2 : 256;
		g->leaks = tl_realloc(g->leaks, g->leakcap * sizeof(*l));
	}
	l = &g->leaks[g->nleaks++];
	l->key = tl_strdup(key);
	l->size = oi->size;
	l->id = id;
	g->leaked_bytes += oi->size;
	return 0;
}

/* Step 4: keep the candidates committed while we listed. */
static int
recheck(struct gc *g)
{
	size_t i, n = 0;
	int rc;

	meta_slice_set_free(&g->ref);
	meta_slice_set_free(&g->queued);
	rc = meta_scan_slices(g->m, &g->ref, &g->queued, scan_progress, g);
	if (rc)
		return rc;
	for (i = 0; i < g->nleaks; i++) {
		struct leak *l = &g->leaks[i];

		if (meta_slice_set_has(&g->ref, l->id) ||
		    meta_slice_set_has(&g->queued, l->id)) {
			g->referenced++;
			g->leaked_bytes -= l->size;
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
			fprintf(stderr, "deleted %" PRIu64 " of %zu leaked "
				"objects ", g->deleted, g->nleaks);
	}
	pthread_mutex_unlock(&g->mu);
}

/* Stores are thread safe (objstore.h); a bounded queue keeps at most
 * 2 * jobs deletes waiting. */
static void
delete_leaks(struct gc *g)
{
	struct tl_pool *pool = NULL;

	if (!g->dry_run && g->nleaks > 0)
		pool = tl_pool_create("gc-del", g->jobs, g->jobs * 2);
	for (size_t i = 0; i < g->nleaks; i++) {
		struct leak *l = &g->leaks[i];

		if (g->verbose) {
			pthread_mutex_lock(&g->mu);
			progress_clear(g);
			printf("%s %s (%" PRIu64 " bytes)\n",
			       g->dry_run ? "leaked" : "deleting", l->key,
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

/* The objects of one released slice; 0 when all are gone. */
static int
queue_slice(struct gc *g, const struct meta_slice_ref *r)
{
	uint32_t bs = g->set->block_size;
	uint32_t nb = (uint32_t)(((uint64_t)r->size + bs - 1) / bs);
	char key[512];
	int rc;

	for (uint32_t k = 0; k < nb; k++) {
		cache_block_key(key, sizeof(key), g->set->name, r->id, k,
				TL_MIN(bs, r->size - k * bs));
		rc = os_delete(g->os, key);
		if (rc) {
			progress_clear(g);
			fprintf(stderr, "tessera: gc: delete %s: %s\n", key,
				strerror(-rc));
			return rc;
		}
		g->q_objects++;
	}
	return 0;
}

/* Drain the deletion queue until it is empty or stops shrinking (a
 * gateway may be adding to it; the next run continues). */
static int
drain_queue(struct gc *g)
{
	struct meta_slice_ref refs[GC_QUEUE_BATCH];
	uint64_t before = UINT64_MAX;
	struct meta_usage u;
	size_t n, done, i;
	int rc;

	for (;;) {
		rc = meta_gc_next(g->m, refs, GC_QUEUE_BATCH, &n);
		if (rc)
			return rc;
		if (n == 0) {
			/* Deleted files are purged a bounded number of keys
			 * per call: go on while that makes progress. */
			rc = meta_usage(g->m, &u);
			if (rc || u.pending_delete == 0 ||
			    u.pending_delete >= before)
				return rc;
			before = u.pending_delete;
			continue;
		}
		for (i = done = 0; i < n; i++)
			if (queue_slice(g, &refs[i]) == 0)
				refs[done++] = refs[i];
			else
				g->errors++;
		if (done > 0) {
			rc = meta_gc_release(g->m, refs, done);
			if (rc)
				return rc;
		}
		g->q_slices += done;
		if (progress_due(g))
			fprintf(stderr, "deletion queue: %" PRIu64 " slices, %"
				PRIu64 " objects deleted ", g->q_slices,
				g->q_objects);
		if (done < n)
			return 0; /* they would come back at once */
	}
}

static void
print_summary(const struct gc *g, bool queue)
{
	char h[32];

	printf("objects listed:     %" PRIu64 " (%s)\n", g->listed,
	       tl_fmt_size(g->listed_bytes, h, sizeof(h)));
	printf("referenced:         %" PRIu64 "\n", g->referenced);
	printf("queued for delete:  %" PRIu64 "%s\n", g->in_queue,
	       g->in_queue ? " (the deletion queue owns them)" : "");
	printf("leaked:             %zu (%s)\n", g->nleaks,
	       tl_fmt_size(g->leaked_bytes, h, sizeof(h)));
	printf("deleted:            %" PRIu64 " (%s)%s\n", g->deleted,
	       tl_fmt_size(g->deleted_bytes, h, sizeof(h)),
	       g->dry_run ? " (dry run)" : "");
	printf("skipped, too young: %" PRIu64 "\n", g->young);
	if (g->foreign)
		printf("not block names:    %" PRIu64 " (kept)\n", g->foreign);
	if (queue)
		printf("deletion queue:     %" PRIu64 " slices, %" PRIu64
		       " objects deleted\n", g->q_slices, g->q_objects);
	printf("errors:             %" PRIu64 "\n", g->errors);
}

static int
parse_args(int argc, char **argv, struct gc *g, uint64_t *grace_ms,
	   bool *queue)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{"dry-run", no_argument, NULL, 'n'},
		{"grace", required_argument, NULL, 'g'},
		{"no-queue", no_argument, NULL, 'q'},
		{"jobs", required_argument, NULL, 'j'},
		{"verbose", no_argument, NULL, 'v'},
		TESSERA_VOLUME_OPTION,
		{NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "hnv", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(gc_usage, stdout);
			return 0;
		case 'n':
			g->dry_run = true;
			break;
		case 'g':
			if (tl_parse_duration_ms(optarg, grace_ms) == 0)
				break;
			fprintf(stderr, "tessera: bad --grace '%s'\n%s",
				optarg, gc_usage);
			return TESSERA_EXIT_USAGE;
		case 'q':
			*queue = false;
			break;
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
	if (argc - optind != 1) {
		fprintf(stderr, "tessera: gc needs META_URL\n%s", gc_usage);
		return TESSERA_EXIT_USAGE;
	}
	return -1; /* go on */
}

/* Objects of the store that this volume does not reference would be
 * deleted as leaks: never in a store that is not provably this
 * volume's.  gc marks a store without a marker as tesserad does (when a
 * referenced block reads back); a dry run only warns. */
static int
gc_store_check(struct gc *g, const char *url)
{
	struct cache_store_check c;
	char *msg = NULL;
	int rc;

	if (!g->dry_run) {
		rc = cache_store_claim(g->m, g->os, url, &msg);
		if (rc)
			fprintf(stderr, "tessera: gc: refused: %s\n", msg);
		free(msg);
		return rc;
	}
	rc = cache_store_check(g->m, g->os, &c);
	if (rc) {
		fprintf(stderr, "tessera: gc: storage %s: cannot read the "
			"volume marker: %s\n", g->os->url,
			rc == -EBADMSG ? "not a volume marker" :
					 strerror(-rc));
		return rc;
	}
	if (c.state == CACHE_STORE_FOREIGN) {
		msg = cache_store_foreign_msg(g->m, g->os, &c.marker);
		fprintf(stderr, "tessera: gc: refused: %s\n", msg);
		free(msg);
		rc = -EEXIST;
	} else if (c.state == CACHE_STORE_UNMARKED) {
		fprintf(stderr, "tessera: gc: warning: storage %s has no "
			"volume marker; gc without --dry-run marks it if a "
			"block of this volume reads back, and refuses "
			"otherwise\n", g->os->url);
	}
	cache_store_check_free(&c);
	return rc;
}

static int
gc_open(struct gc *g, const char *url)
{
	char *err = NULL;
	int rc;

	rc = tessera_open("gc", url, g->volume, g->dry_run, &g->m);
	if (rc)
		return rc;
	g->set = meta_settings(g->m);
	rc = os_open_flags(g->set->storage, g->dry_run ? OS_OPEN_RDONLY : 0,
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
gc_run(struct gc *g, uint64_t grace_ms, bool queue)
{
	char *prefix;
	int rc;

	printf("gc of volume %s%s, grace %" PRIu64 " s\n", g->set->name,
	       g->dry_run ? " (dry run: nothing is deleted)" : "",
	       grace_ms / 1000);
	if (queue && !g->dry_run) {
		rc = drain_queue(g);
		if (rc) {
			fprintf(stderr, "tessera: gc: deletion queue: %s\n",
				strerror(-rc));
			return rc;
		}
	}
	rc = meta_slice_counter(g->m, &g->counter);
	g->cutoff = tl_now_ns() - TL_MIN(grace_ms * 1000000, tl_now_ns());
	if (rc == 0)
		rc = meta_scan_slices(g->m, &g->ref, &g->queued, scan_progress,
				      g);
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
					 "with their times)" : "");
		return rc;
	}
	delete_leaks(g);
	progress_clear(g);
	print_summary(g, queue && !g->dry_run);
	return 0;
}

int
tessera_cmd_gc(int argc, char **argv)
{
	struct gc g;
	uint64_t grace_ms = GC_DEFAULT_GRACE_MS;
	bool queue = true;
	int rc;

	memset(&g, 0, sizeof(g));
	g.jobs = GC_DEFAULT_JOBS;
	rc = parse_args(argc, argv, &g, &grace_ms, &queue);
	if (rc >= 0)
		return rc;
	g.tty = isatty(STDERR_FILENO);
	pthread_mutex_init(&g.mu, NULL);
	rc = gc_open(&g, argv[optind]);
	if (rc == 0)
		rc = gc_run(&g, grace_ms, queue);
	for (size_t i = 0; i < g.nleaks; i++)
		free(g.leaks[i].key);
	free(g.leaks);
	meta_slice_set_free(&g.ref);
	meta_slice_set_free(&g.queued);
	if (g.os)
		os_close(g.os);
	if (g.m)
		meta_close(g.m);
	pthread_mutex_destroy(&g.mu);
	return rc || g.errors ? 1 : 0;
}
