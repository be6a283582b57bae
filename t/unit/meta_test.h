/*
 * meta_test.h - fixture of the meta unit tests: a fresh LMDB directory
 * under a mkdtemp() directory, formatted as volume "test", and removed
 * at the end.
 */
#ifndef T_META_TEST_H
#define T_META_TEST_H

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/tl.h"
#include "meta/meta.h"
#include "t/unit/tap.h"

struct fixture {
	char dir[64];
	char *url;
};

static const struct meta_cred root_cred = {.uid = 0};
static const struct meta_cred user_cred = {
	.uid = 1000, .gid = 1000, .ngroups = 1, .groups = {1000}};
static const struct meta_cred other_cred = {
	.uid = 2000, .gid = 2000, .ngroups = 1, .groups = {2000}};

/* TESSERA_TEST_META=raft runs the test on a one-node raft:// group (a
 * node in the test's process, on a free loopback port) instead of LMDB:
 * the file-system layer must behave the same on both engines. */
static void
fixture_init(struct fixture *f)
{
	const char *engine = getenv("TESSERA_TEST_META");

	strcpy(f->dir, "/tmp/meta-test-XXXXXX");
	CHECK_FATAL(mkdtemp(f->dir) != NULL, "mkdtemp");
	if (engine && strcmp(engine, "raft") == 0) {
		char *secret = tl_asprintf("%s/secret", f->dir);
		FILE *s = fopen(secret, "w");
		int port = 0;

		CHECK_FATAL(s != NULL, "secret file");
		fputs("the secret of a one-node test group, 32+ bytes\n", s);
		fclose(s);
		chmod(secret, 0600);
		for (int i = 0; i < 200 && port == 0; i++) {
			struct sockaddr_in a;
			int fd = socket(AF_INET, SOCK_STREAM, 0);

			memset(&a, 0, sizeof(a));
			a.sin_family = AF_INET;
			a.sin_port = htons(
				(uint16_t)(20000 + tl_random_u64() % 12000));
			a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
				port = ntohs(a.sin_port);
			close(fd);
		}
		f->url = tl_asprintf("raft://%s/node?id=1&address=127.0.0.1:%d&"
				     "peers=1@127.0.0.1:%d&secret=%s&"
				     "bootstrap=1&mapsize=256M",
				     f->dir, port, port, secret);
		free(secret);
		return;
	}
	/* A small map: valgrind cannot reserve the default 64 GiB. */
	f->url = tl_asprintf("lmdb://%s/db?mapsize=256M", f->dir);
}

/* Format volume "test" with the given limits and open it. */
static struct meta *
fixture_volume(struct fixture *f, uint64_t capacity, uint64_t max_inodes)
{
	struct meta_format_opts o = {
		"test", "file:///tmp/objects", 0, 0, capacity, max_inodes,
		true};
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

/* fixture_init, and volume "test" without limits, opened. */
static inline struct meta *
fixture_open(struct fixture *f)
{
	fixture_init(f);
	return fixture_volume(f, 0, 0);
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
