/*
 * destroy.c - `tessera destroy`: remove a volume, its objects and its
 * metadata, and nothing else.
 *
 * Order, so that an interrupted destroy can simply be run again: the
 * objects under NAME/ of its store (listed a page at a time, deleted by
 * --jobs threads), the volume marker last of them; then the metadata,
 * the registry entry last.  Until the metadata goes the volume can be
 * named again; once the marker is gone a gateway refuses the store
 * (its blocks are missing), so nothing serves a half-destroyed volume.
 *
 * Objects are deleted only from a store that is provably the volume's:
 * its marker names the volume, or (a volume formatted before markers)
 * a block the metadata references reads back.  A store whose marker
 * names another volume is never touched.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache.h"
#include "lib/tl.h"
#include "meta/meta.h"
#include "objstore/objstore.h"
#include "tools/tools-internal.h"

#define DESTROY_PAGE         4096
#define DESTROY_DEFAULT_JOBS 8
#define DESTROY_MAX_JOBS     64

static const char destroy_usage[] =
	"Usage: tessera destroy [--yes] [--force] [--jobs N] [--volume NAME]\n"
	"                       META_URL\n"
	"\n"
	"Remove the volume at META_URL: every object of the volume in its\n"
	"object store (NAME/...), then its metadata.  Other volumes of the\n"
	"same metadata engine or store are not touched.  Refused while a\n"
	"gateway serves the volume.  Asks for the volume's name on a\n"
	"terminal, unless --yes.\n"
	"\n"
	"Options:\n"
	"  --yes          do not ask (needed when stdin is not a terminal)\n"
	"  --force        go on although a gateway serves the volume, or\n"
	"                 its store cannot be opened, belongs to another\n"
	"                 volume or cannot be shown to be this volume's:\n"
	"                 then only the metadata is removed\n"
	"  --jobs N       parallel deletes (1 to 64, default 8)\n"
	"  --volume NAME  the volume, when META_URL holds several\n"
	"  -h, --help     show this help\n";

struct destroy {
	struct os_store *os; /* the bottom store: deletes need no wrapper */
	const char *name;
	unsigned jobs;
	struct tessera_progress pr;
	pthread_mutex_t mu;
	uint64_t deleted, bytes, errors;
	/* one page of keys */
	char **keys;
	uint64_t *sizes;
	size_t n;
	const char *skip; /* the marker's key: deleted last */
};

struct del_job {
	struct destroy *d;
	size_t i;
};

static void
del_job(void *arg)
{
	struct del_job *j = arg;
	struct destroy *d = j->d;
	int rc = os_delete(d->os, d->keys[j->i]);

	pthread_mutex_lock(&d->mu);
	if (rc) {
		tessera_progress_clear(&d->pr);
		fprintf(stderr, "tessera: destroy: delete %s: %s\n",
			d->keys[j->i], strerror(-rc));
		d->errors++;
	} else {
		d->deleted++;
		d->bytes += d->sizes[j->i];
	}
	if (tessera_progress_due(&d->pr)) {
		char h[32];

		fprintf(stderr, "deleted %" PRIu64 " objects (%s) ", d->deleted,
			tl_fmt_size(d->bytes, h, sizeof(h)));
	}
	pthread_mutex_unlock(&d->mu);
}

static int
page_cb(void *arg, const char *key, uint64_t size)
{
	struct destroy *d = arg;

	if (strcmp(key, d->skip) == 0)
		return 0;
	d->keys[d->n] = tl_strdup(key);
	d->sizes[d->n] = size;
	return ++d->n == DESTROY_PAGE;
}

/* Delete every object under NAME/ but the marker, a page at a time;
 * then the marker.  A page that left errors stops the walk (the next
 * page would list the same keys again). */
static int
delete_objects(struct destroy *d)
{
	char *prefix = tl_asprintf("%s/", d->name), *after = NULL;
	char *marker = tl_asprintf("%s/" OS_MARKER_FILE, d->name);
	struct del_job *jobs = tl_calloc(DESTROY_PAGE, sizeof(*jobs));
	int rc;

	d->keys = tl_calloc(DESTROY_PAGE, sizeof(*d->keys));
	d->sizes = tl_calloc(DESTROY_PAGE, sizeof(*d->sizes));
	d->skip = marker;
	for (;;) {
		struct tl_pool *pool;
		uint64_t errors = d->errors;

		d->n = 0;
		rc = os_list(d->os, prefix, after, page_cb, d);
		if (rc > 0)
			rc = 0;
		if (rc || d->n == 0)
			break;
		pool = tl_pool_create("destroy", d->jobs, d->jobs * 2);
		for (size_t i = 0; i < d->n; i++) {
			jobs[i] = (struct del_job){d, i};
			tl_pool_submit(pool, del_job, &jobs[i]);
		}
		tl_pool_destroy(pool);
		free(after);
		after = tl_strdup(d->keys[d->n - 1]);
		for (size_t i = 0; i < d->n; i++)
			free(d->keys[i]);
		d->n = 0;
		if (d->errors > errors)
			break;
	}
	for (size_t i = 0; i < d->n; i++)
		free(d->keys[i]);
	if (rc == 0 && d->errors == 0)
		rc = os_marker_delete(d->os, d->name);
	else if (rc == 0)
		rc = -EIO;
	tessera_progress_clear(&d->pr);
	free(d->keys);
	free(d->sizes);
	free(jobs);
	free(after);
	free(marker);
	free(prefix);
	return rc;
}

/* Whether the volume's objects may be deleted from s: 1 yes, 0 no (the
 * reason printed; with force that is a warning), or an error. */
static int
store_is_ours(struct meta *m, struct os_store *s, bool force)
{
	const char *what = force ? "warning" : "refused";
	struct cache_store_check c;
	char *key = NULL, *msg;
	int rc, yes = 0;

	rc = cache_store_check(m, s, &c);
	if (rc) {
		fprintf(stderr,
			"tessera: destroy: %s: object store %s: "
			"cannot read the volume marker: %s\n",
			what, s->url, strerror(-rc));
		return 0;
	}
	switch (c.state) {
	case CACHE_STORE_OWNED:
	case CACHE_STORE_EMPTY:
		yes = 1;
		break;
	case CACHE_STORE_FOREIGN:
		msg = cache_store_foreign_msg(m, s, &c.marker);
		fprintf(stderr, "tessera: destroy: %s: %s\n", what, msg);
		free(msg);
		break;
	case CACHE_STORE_UNMARKED:
		rc = cache_store_probe(m, s, &key);
		if (rc == 0) {
			yes = 1;
			break;
		}
		fprintf(stderr,
			"tessera: destroy: %s: object store %s has "
			"no volume marker and objects under %s/ (%s) that "
			"cannot be shown to be this volume's (%s%s%s)\n",
			what, s->url, meta_settings(m)->name, c.first,
			rc == 1 ? "it references no block" : "block ",
			rc == 1 ? "" : key,
			rc == 1 ? ""
				: (rc == -ENOENT ? " missing" : " unreadable"));
		break;
	}
	free(key);
	cache_store_check_free(&c);
	return yes;
}

static void
meta_progress(void *arg, uint64_t keys)
{
	struct tessera_progress *p = arg;

	if (tessera_progress_due(p))
		fprintf(stderr, "metadata: %" PRIu64 " keys deleted ", keys);
}

int
tessera_destroy_volume(struct meta *m, bool force, unsigned jobs)
{
	const struct meta_settings *set = meta_settings(m);
	struct destroy d;
	struct os_store *s = NULL;
	char *err = NULL, h[32], *name = tl_strdup(set->name);
	bool objects = false;
	int rc;

	memset(&d, 0, sizeof(d));
	tessera_progress_init(&d.pr, STDERR_FILENO);
	pthread_mutex_init(&d.mu, NULL);
	rc = os_open(set->storage, &s, &err);
	if (rc)
		fprintf(stderr,
			"tessera: destroy: %s: cannot open storage "
			"%s: %s\n",
			force ? "warning" : "refused", set->storage,
			err ? err : strerror(-rc));
	else
		objects = store_is_ours(m, s, force) == 1;
	free(err);
	rc = 0;
	if (!objects && !force) {
		fprintf(stderr,
			"tessera: destroy: nothing was removed; "
			"--force removes the metadata only and leaves the "
			"store as it is\n");
		rc = -EPERM;
		goto out;
	}
	if (objects) {
		d.os = os_bottom(s);
		d.name = name;
		d.jobs = jobs;
		rc = delete_objects(&d);
		if (rc) {
			fprintf(stderr,
				"tessera: destroy: %s: %s; the "
				"metadata is kept: run destroy again\n",
				s->url, strerror(-rc));
			goto out;
		}
	}
	rc = meta_destroy(m, meta_progress, &d.pr);
	tessera_progress_clear(&d.pr);
	if (rc) {
		fprintf(stderr,
			"tessera: destroy: metadata: %s; run destroy "
			"again\n",
			strerror(-rc));
		goto out;
	}
	if (objects)
		printf("destroyed volume %s: %" PRIu64 " objects (%s) deleted "
		       "from %s, metadata removed\n",
		       name, d.deleted, tl_fmt_size(d.bytes, h, sizeof(h)),
		       s->url);
	else
		printf("destroyed volume %s: metadata removed; the object "
		       "store %s was left as it is\n",
		       name, s ? s->url : "(not opened)");
out:
	if (s)
		os_close(s);
	pthread_mutex_destroy(&d.mu);
	free(name);
	return rc;
}

/* On a terminal, the volume's name typed back; elsewhere --yes. */
static bool
confirmed(const struct meta_settings *set, const struct meta_usage *u)
{
	char line[128], h[32];

	if (!isatty(STDIN_FILENO)) {
		fprintf(stderr,
			"tessera: destroy: not on a terminal: add "
			"--yes to destroy volume %s\n",
			set->name);
		return false;
	}
	printf("This deletes volume %s for good: %" PRIu64 " inodes, %s of "
	       "files, in %s.\nType the volume's name to go on: ",
	       set->name, u->used_inodes,
	       tl_fmt_size(u->used_bytes, h, sizeof(h)), set->storage);
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return false;
	line[strcspn(line, "\n")] = '\0';
	if (strcmp(line, set->name) != 0) {
		fprintf(stderr,
			"tessera: destroy: \"%s\" is not the volume's "
			"name; nothing was removed\n",
			line);
		return false;
	}
	return true;
}

int
tessera_cmd_destroy(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{"yes", no_argument, NULL, 'y'},
		{"force", no_argument, NULL, TESSERA_OPT_FORCE},
		{"jobs", required_argument, NULL, 'j'},
		TESSERA_VOLUME_OPTION,
		{NULL, 0, NULL, 0},
	};
	const char *volume = NULL;
	bool yes = false, force = false;
	unsigned jobs = DESTROY_DEFAULT_JOBS;
	struct meta_usage u;
	struct meta *m = NULL;
	uint64_t v;
	int c, rc;

	while ((c = getopt_long(argc, argv, "hy", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(destroy_usage, stdout);
			return 0;
		case 'y':
			yes = true;
			break;
		case TESSERA_OPT_FORCE:
			force = true;
			break;
		case 'j':
			if (tl_parse_u64(optarg, 1, DESTROY_MAX_JOBS, &v))
				return tessera_usage_error(destroy_usage,
							   "bad --jobs '%s'",
							   optarg);
			jobs = (unsigned)v;
			break;
		case TESSERA_OPT_VOLUME:
			volume = optarg;
			break;
		default:
			fputs(destroy_usage, stderr);
			return TESSERA_EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return tessera_usage_error(destroy_usage,
					   "destroy needs META_URL");
	if (tessera_open("destroy", argv[optind], volume, false, &m))
		return 1;
	rc = tessera_no_gateway("destroy", m, force);
	if (rc == 0 && (rc = meta_usage(m, &u)) != 0)
		fprintf(stderr, "tessera: destroy: %s\n", strerror(-rc));
	if (rc == 0 && !yes && !confirmed(meta_settings(m), &u))
		rc = -ECANCELED;
	if (rc == 0)
		rc = tessera_destroy_volume(m, force, jobs);
	meta_close(m);
	return rc ? 1 : 0;
}
