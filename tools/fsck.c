/*
 * fsck.c - `tessera fsck` and `tessera config`: check a volume's
 * metadata (meta_fsck) and that every block it refers to is in the object
 * store; change the stored storage URL.
 *
 * meta never includes objstore (DESIGN.md), so the object check is a
 * callback here: for each slice, os_head of each of its blocks.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache.h"
#include "lib/tl.h"
#include "meta/meta.h"
#include "objstore/objstore.h"

#define EXIT_USAGE 2

static const char fsck_usage[] =
	"Usage: tessera fsck [--repair] [--no-objects] META_URL\n"
	"\n"
	"Check the volume at META_URL: every entry names a live inode,\n"
	"link counts, the readdir index, directory usage and volume\n"
	"counters, slice reference counts, deletion records, and that every\n"
	"block the metadata refers to is in the object store with its size.\n"
	"Exit status 0: clean; 1: problems found (or the check failed).\n"
	"\n"
	"Options:\n"
	"  --repair      fix what follows from the metadata alone (counters,\n"
	"                entries naming missing inodes, the readdir index);\n"
	"                run it with no tesserad serving the volume\n"
	"  --no-objects  do not check the object store\n"
	"  -h, --help    show this help\n";

static const char config_usage[] =
	"Usage: tessera config META_URL --storage STORAGE_URL\n"
	"\n"
	"Change the object store URL recorded in the volume's settings, for\n"
	"example to add or remove a wrapper (retry, fault, ratelimit) around\n"
	"the same data.  tesserad reads it at start.\n"
	"\n"
	"Options:\n"
	"  --storage URL  the new storage URL (see STORAGE URLS in\n"
	"                 tessera(1)); the data must be the same\n"
	"  -h, --help     show this help\n";

struct fsck_ui {
	struct os_store *os;
	const char *volume;
	uint32_t block_size;
	bool tty;
	uint64_t last_ms;
	uint64_t blocks;
};

static int
slice_check(void *arg, uint64_t id, uint32_t size)
{
	struct fsck_ui *u = arg;
	uint32_t nb = (size + u->block_size - 1) / u->block_size;
	char key[512];
	int bad = 0;

	for (uint32_t i = 0; i < nb; i++) {
		uint32_t len = TL_MIN(u->block_size, size - i * u->block_size);
		uint64_t got = 0;
		int rc;

		cache_block_key(key, sizeof(key), u->volume, id, i, len);
		rc = os_head(u->os, key, &got);
		u->blocks++;
		if (rc == -ENOENT || (rc == 0 && got != len)) {
			bad++;
			continue;
		}
		if (rc) {
			fprintf(stderr, "tessera: fsck: %s: %s\n", key,
				strerror(-rc));
			return rc;
		}
	}
	return bad;
}

static void
clear_progress(struct fsck_ui *u)
{
	if (u->tty && u->last_ms) {
		printf("\r%-70s\r", "");
		u->last_ms = 0;
	}
}

static void
on_problem(void *arg, enum meta_fsck_cat c, const char *msg)
{
	struct fsck_ui *u = arg;

	(void)c;
	clear_progress(u);
	printf("  %s\n", msg);
}

static void
on_progress(void *arg, const char *phase, uint64_t done)
{
	struct fsck_ui *u = arg;
	uint64_t now = tl_now_ns() / 1000000;

	if (!u->tty || now - u->last_ms < 1000)
		return;
	u->last_ms = now;
	printf("\r%s: %" PRIu64 " items...   ", phase, done);
	fflush(stdout);
}

static void
print_summary(const struct meta_fsck_report *r, bool repair, bool objects,
	      uint64_t blocks)
{
	printf("checked %" PRIu64 " inodes (%" PRIu64 " directories), %"
	       PRIu64 " entries, %" PRIu64 " chunks, %" PRIu64 " slices",
	       r->inodes, r->dirs, r->dentries, r->chunks, r->slices);
	if (objects)
		printf(", %" PRIu64 " blocks", blocks);
	printf("\n");
	for (int c = 0; c < META_FSCK_NCAT; c++) {
		if (!r->found[c])
			continue;
		printf("  %" PRIu64 " %s", r->found[c],
		       meta_fsck_cat_name((enum meta_fsck_cat)c));
		if (repair)
			printf(r->repaired[c] ? ": repaired" :
						": not repairable, left as is");
		printf("\n");
	}
	if (r->problems == 0)
		printf("no problems found\n");
	else
		printf("%" PRIu64 " problem(s) found%s\n", r->problems,
		       repair ? "; run fsck again to confirm the repair" : "");
}

static int
open_volume(const char *url, const char *cmd, struct meta **m)
{
	char *err = NULL;
	int rc;

	rc = meta_open(url, NULL, m, &err);
	if (rc) {
		fprintf(stderr, "tessera: %s: %s\n", cmd,
			err ? err : strerror(-rc));
		free(err);
	}
	return rc;
}

int
tessera_cmd_fsck(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{"repair", no_argument, NULL, 'r'},
		{"no-objects", no_argument, NULL, 'n'},
		{NULL, 0, NULL, 0},
	};
	struct fsck_ui u = {NULL, NULL, 0, false, 0, 0};
	struct meta_fsck_opts o = {false, NULL, on_problem, on_progress, &u};
	struct meta_fsck_report r;
	const struct meta_settings *s;
	struct meta *m = NULL;
	bool objects = true;
	char *err = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(fsck_usage, stdout);
			return 0;
		}
		if (c == 'r' || c == 'n') {
			if (c == 'r')
				o.repair = true;
			else
				objects = false;
			continue;
		}
		fputs(fsck_usage, stderr);
		return EXIT_USAGE;
	}
	if (argc - optind != 1) {
		fprintf(stderr, "tessera: fsck needs META_URL\n%s",
			fsck_usage);
		return EXIT_USAGE;
	}
	if (open_volume(argv[optind], "fsck", &m))
		return 1;
	s = meta_settings(m);
	u.volume = s->name;
	u.block_size = s->block_size;
	u.tty = isatty(STDOUT_FILENO);
	if (objects) {
		rc = os_open(s->storage, &u.os, &err);
		if (rc) {
			fprintf(stderr, "tessera: fsck: cannot open storage "
				"%s: %s\n", s->storage,
				err ? err : strerror(-rc));
			free(err);
			meta_close(m);
			return 1;
		}
		o.slice_check = slice_check;
	}
	printf("checking volume %s%s\n", s->name,
	       objects ? "" : " (objects not checked)");
	rc = meta_fsck(m, &o, &r);
	clear_progress(&u);
	if (rc)
		fprintf(stderr, "tessera: fsck: %s\n", strerror(-rc));
	else
		print_summary(&r, o.repair, objects, u.blocks);
	if (u.os)
		os_close(u.os);
	meta_close(m);
	return rc || r.problems ? 1 : 0;
}

int
tessera_cmd_config(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{"storage", required_argument, NULL, 's'},
		{NULL, 0, NULL, 0},
	};
	const char *storage = NULL;
	struct os_store *os = NULL;
	struct meta *m = NULL;
	char *err = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(config_usage, stdout);
			return 0;
		}
		if (c == 's') {
			storage = optarg;
			continue;
		}
		fputs(config_usage, stderr);
		return EXIT_USAGE;
	}
	if (argc - optind != 1 || !storage) {
		fprintf(stderr, "tessera: config needs META_URL and "
			"--storage\n%s", config_usage);
		return EXIT_USAGE;
	}
	/* Refuse a URL that does not open: the daemon could not start. */
	rc = os_open(storage, &os, &err);
	if (rc) {
		fprintf(stderr, "tessera: config: cannot open storage %s: "
			"%s\n", storage, err ? err : strerror(-rc));
		free(err);
		return 1;
	}
	os_close(os);
	if (open_volume(argv[optind], "config", &m))
		return 1;
	rc = meta_set_storage(m, storage);
	if (rc)
		fprintf(stderr, "tessera: config: %s\n", strerror(-rc));
	else
		printf("storage: %s\n", storage);
	meta_close(m);
	return rc ? 1 : 0;
}
