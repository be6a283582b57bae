/*
 * meta_test.h - fixture of the meta unit tests: a fresh LMDB directory
 * under a mkdtemp() directory, formatted as volume "test", and removed
 * at the end.
 */
#ifndef T_META_TEST_H
#define T_META_TEST_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/tl.h"
#include "meta/meta.h"
#include "t/unit/tap.h"

struct fixture {
	char dir[64];
	char *url;
};

static const struct meta_cred root_cred = {0, 0, 0, {0}};
static const struct meta_cred user_cred = {1000, 1000, 1, {1000}};
static const struct meta_cred other_cred = {2000, 2000, 1, {2000}};

static void
fixture_init(struct fixture *f)
{
	strcpy(f->dir, "/tmp/meta-test-XXXXXX");
	CHECK_FATAL(mkdtemp(f->dir) != NULL, "mkdtemp");
	/* A small map: valgrind cannot reserve the default 64 GiB. */
	f->url = tl_asprintf("lmdb://%s/db?mapsize=256M", f->dir);
}

/* Format volume "test" with the given limits and open it. */
static struct meta *
fixture_volume(struct fixture *f, uint64_t capacity, uint64_t max_inodes)
{
	struct meta_format_opts o = {"test", "file:///tmp/objects", 0, 0,
				     capacity, max_inodes, true};
	struct meta *m = NULL;
	char *err = NULL;
	int rc;

	rc = meta_format(f->url, &o, &err);
	CHECK_FATAL(rc == 0, "format volume (%s)", err ? err : "");
	free(err);
	rc = meta_open(f->url, "test", &m, &err);
	CHECK_FATAL(rc == 0, "open volume (%s)", err ? err : "");
	free(err);
	return m;
}

static void
fixture_done(struct fixture *f)
{
	char *cmd = tl_asprintf("rm -rf '%s'", f->dir);

	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", f->dir);
	free(cmd);
	free(f->url);
}

static struct meta_new
new_of(uint8_t type, uint32_t mode, const struct meta_cred *c)
{
	struct meta_new n;

	memset(&n, 0, sizeof(n));
	n.type = type;
	n.mode = mode;
	n.uid = c->uid;
	n.gid = c->gid;
	n.how = META_GUARDED;
	return n;
}

/* Create name in dir as c; returns the inode (0 on failure, rc in *rcp). */
static uint64_t
mk(struct meta *m, const struct meta_cred *c, uint64_t dir, const char *name,
   uint8_t type, uint32_t mode, int *rcp)
{
	struct meta_new n = new_of(type, mode, c);
	uint64_t ino = 0;
	int rc;

	if (type == META_LNK)
		n.target = "target";
	rc = meta_create(m, c, dir, name, &n, &ino, NULL, NULL, NULL, NULL);
	if (rcp)
		*rcp = rc;
	return rc ? 0 : ino;
}

#endif
