/*
 * fsck.c - `tessera fsck`: check a volume's metadata (meta_fsck) and
 * that every block it refers to is in the object store.
 *
 * meta never includes objstore (doc/DESIGN.md), so the object check is a
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
#include "tools/tools-internal.h"

static const char fsck_usage[] =
	"Usage: tessera fsck [--repair [--force]] [--no-objects]\n"
	"                    [--volume NAME] META_URL\n"
	"\n"
	"Check the volume at META_URL: every entry names a live inode,\n"
	"link counts, the readdir index, directory usage and volume\n"
	"counters, slice reference counts, deletion records, and that every\n"
	"block the metadata refers to is in the object store with its size.\n"
	"Without --repair it only reads: it creates and changes nothing.\n"
	"Exit status 0: clean; 1: problems found (or the check failed).\n"
	"\n"
	"Options:\n"
	"  --repair      fix what follows from the metadata alone (counters,\n"
	"                entries naming missing inodes, the readdir index);\n"
	"                refused while a gateway serves the volume\n"
	"  --force       repair even while a gateway serves it (a warning)\n"
	"  --no-objects  do not check the object store\n"
	"  --volume NAME the volume, when META_URL holds several\n"
	"  -h, --help    show this help\n";

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
	printf("checked %" PRIu64 " inodes (%" PRIu64 " directories), %" PRIu64
	       " entries, %" PRIu64 " chunks, %" PRIu64 " slices",
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
			printf(r->repaired[c] ? ": repaired"
					      : ": not repairable, left as is");
		printf("\n");
	}
	if (r->problems == 0)
		printf("no problems found\n");
	else
		printf("%" PRIu64 " problem(s) found%s\n", r->problems,
		       repair ? "; run fsck again to confirm the repair" : "");
}

/* Say whose the store is, when it is not plainly this volume's; true
 * when it belongs to another volume (the blocks found may be its). */
static bool
store_note(struct meta *m, struct os_store *s)
{
	struct cache_store_check c;
	bool foreign = false;
	char *msg;

	if (cache_store_check(m, s, &c) != 0)
		return false;
	if (c.state == CACHE_STORE_FOREIGN) {
		msg = cache_store_foreign_msg(m, s, &c.marker);
		printf("  %s\n", msg);
		free(msg);
		foreign = true;
	} else if (c.state != CACHE_STORE_OWNED) {
		printf("  storage %s has no volume marker (tesserad or "
		       "'tessera config --storage' writes it)\n",
		       s->url);
	}
	cache_store_check_free(&c);
	return foreign;
}

int
tessera_cmd_fsck(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{"repair", no_argument, NULL, 'r'},
		{"no-objects", no_argument, NULL, 'n'},
		{"force", no_argument, NULL, TESSERA_OPT_FORCE},
		TESSERA_VOLUME_OPTION,
		{NULL, 0, NULL, 0},
	};
	struct fsck_ui u = {NULL, NULL, 0, false, 0, 0};
	struct meta_fsck_opts o = {false,       NULL, on_problem,
				   on_progress, &u,   false};
	struct meta_fsck_report r;
	const struct meta_settings *s;
	struct meta *m = NULL;
	const char *volume = NULL;
	bool objects = true, foreign = false;
	char *err = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(fsck_usage, stdout);
			return 0;
		}
		if (c == TESSERA_OPT_VOLUME) {
			volume = optarg;
			continue;
		}
		if (c == TESSERA_OPT_FORCE) {
			o.gateways_ok = true;
			continue;
		}
		if (c == 'r' || c == 'n') {
			if (c == 'r')
				o.repair = true;
			else
				objects = false;
			continue;
		}
		fputs(fsck_usage, stderr);
		return TESSERA_EXIT_USAGE;
	}
	if (argc - optind != 1) {
		fprintf(stderr, "tessera: fsck needs META_URL\n%s", fsck_usage);
		return TESSERA_EXIT_USAGE;
	}
	if (tessera_open("fsck", argv[optind], volume, !o.repair, &m))
		return 1;
	if (o.repair && tessera_no_gateway("fsck", m, o.gateways_ok)) {
		meta_close(m);
		return 1;
	}
	s = meta_settings(m);
	u.volume = s->name;
	u.block_size = s->block_size;
	u.tty = isatty(STDOUT_FILENO);
	if (objects) {
		rc = os_open_flags(s->storage, OS_OPEN_RDONLY, &u.os, &err);
		if (rc) {
			fprintf(stderr,
				"tessera: fsck: cannot open storage "
				"%s: %s\n",
				s->storage, err ? err : strerror(-rc));
			free(err);
			meta_close(m);
			return 1;
		}
		o.slice_check = slice_check;
	}
	printf("checking volume %s%s\n", s->name,
	       objects ? "" : " (objects not checked)");
	if (u.os != NULL)
		foreign = store_note(m, u.os);
	rc = meta_fsck(m, &o, &r);
	clear_progress(&u);
	if (rc == -EBUSY)
		fprintf(stderr,
			"tessera: fsck: a gateway started serving the "
			"volume during the check: nothing was repaired\n");
	else if (rc)
		fprintf(stderr, "tessera: fsck: %s\n", strerror(-rc));
	else
		print_summary(&r, o.repair, objects, u.blocks);
	if (u.os)
		os_close(u.os);
	meta_close(m);
	return rc || r.problems || foreign ? 1 : 0;
}
