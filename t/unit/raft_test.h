/*
 * raft_test.h - helpers of the raft:// engine tests: a temporary
 * directory with a cluster secret, free loopback ports, node URLs, and
 * small transaction helpers that assert nothing themselves (the tests
 * check what they return).
 */
#ifndef T_RAFT_TEST_H
#define T_RAFT_TEST_H

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/tl.h"
#include "meta/kv.h"
#include "t/unit/free_port.h"
#include "t/unit/tap.h"

struct rt {
	char dir[64];
	char *secret;
	int port[8];
};

static void
rt_write_secret(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK_FATAL(f != NULL, "create %s", path);
	fputs(text, f);
	fclose(f);
	chmod(path, 0600);
}

static void
rt_init(struct rt *t, int nodes)
{
	strcpy(t->dir, "/tmp/raft-test-XXXXXX");
	CHECK_FATAL(mkdtemp(t->dir) != NULL, "mkdtemp");
	t->secret = tl_asprintf("%s/secret", t->dir);
	rt_write_secret(t->secret, "a cluster secret of the raft tests, "
				   "long enough\n");
	for (int i = 0; i < nodes; i++) {
		t->port[i] = rt_free_port();
		CHECK_FATAL(t->port[i] > 0, "a free port");
	}
}

/* The URL of node i (1-based); extra options appended. */
static char *
rt_url(struct rt *t, int i, int nodes, const char *extra)
{
	struct tl_buf peers = TL_BUF_INIT;
	char *u;

	for (int k = 1; k <= nodes; k++) {
		char p[64];

		snprintf(p, sizeof(p), "%s%d@127.0.0.1:%d", k > 1 ? "," : "", k,
			 t->port[k - 1]);
		tl_buf_append(&peers, p, strlen(p));
	}
	tl_buf_append(&peers, "", 1);
	u = tl_asprintf("raft://%s/n%d?id=%d&address=127.0.0.1:%d&peers=%s"
			"&secret=%s&mapsize=64M&election=400&heartbeat=40"
			"&timeout=8000%s%s",
			t->dir, i, i, t->port[i - 1], (char *)peers.data,
			t->secret, extra ? "&" : "", extra ? extra : "");
	tl_buf_free(&peers);
	return u;
}

static void
rt_done(struct rt *t)
{
	char *cmd;

	if (getenv("RT_KEEP")) {
		printf("# kept %s\n", t->dir);
	} else {
		cmd = tl_asprintf("rm -rf '%s'", t->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", t->dir);
		free(cmd);
	}
	free(t->secret);
}

/* One put in its own transaction. */
static inline int
rt_put(struct meta_kv *kv, const char *k, const char *v)
{
	struct meta_kv_txn *t;
	int rc = meta_kv_begin(kv, false, &t);

	if (rc)
		return rc;
	rc = meta_kv_put(t, k, strlen(k), v, strlen(v));
	if (rc) {
		meta_kv_abort(t);
		return rc;
	}
	return meta_kv_commit(t);
}

/* rt_put as the file-system layer commits: again after -EAGAIN (a
 * transaction that began before a leader change may get it). */
static inline int
rt_put_retry(struct meta_kv *kv, const char *k, const char *v)
{
	int rc, tries = 0;

	do
		rc = rt_put(kv, k, v);
	while (rc == -EAGAIN && ++tries < 20);
	return rc;
}

/* The value of k (read-only transaction) into buf; -ENOENT if none. */
static inline int
rt_get(struct meta_kv *kv, const char *k, char *buf, size_t cap)
{
	struct meta_kv_txn *t;
	const void *v;
	size_t vlen;
	int rc = meta_kv_begin(kv, true, &t);

	if (rc)
		return rc;
	rc = meta_kv_get(t, k, strlen(k), &v, &vlen);
	if (rc == 0) {
		vlen = TL_MIN(vlen, cap - 1);
		memcpy(buf, v, vlen);
		buf[vlen] = '\0';
	}
	meta_kv_abort(t);
	return rc;
}

/* Index of the node that leads, as the given node sees it (0: none). */
static inline uint64_t
rt_leader(struct meta_kv *kv)
{
	struct meta_kv_raft_node *nodes;
	size_t n;
	uint64_t l = 0;

	if (meta_kv_raft_status(kv, &nodes, &n) != 0)
		return 0;
	if (n > 0 && strcmp(nodes[0].state, "leader") == 0)
		l = nodes[0].id;
	else if (n > 0)
		l = nodes[0].leader;
	free(nodes);
	return l;
}

#endif
