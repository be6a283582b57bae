/*
 * meta_kv_raft_one_test.c - the raft:// engine on a group of one node:
 * the operations of kv.h through the replicated path (read-your-writes,
 * merged scans, adds), a conflict between two transactions reported as
 * -EAGAIN with nothing of the loser applied, commits that survive a
 * restart (the log replayed onto the replica exactly once), the
 * refusal to start with another node's directory, the version of a
 * read-only snapshot, read-only opens (META_KV_RDONLY), the
 * conversion of an lmdb:// volume into a group of one node, the
 * refusal to start on the replica of another group, and the replica's
 * LMDB figures (map, pages) that /metrics shows.
 */
#include "config.h"

#include <pthread.h>

#include "t/unit/raft_test.h"

struct collect {
	char keys[16][16];
	char vals[16][32];
	unsigned n;
};

static int
collect_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct collect *c = arg;

	if (c->n < 16 && klen < 16 && vlen < 32) {
		memcpy(c->keys[c->n], k, klen);
		c->keys[c->n][klen] = 0;
		memcpy(c->vals[c->n], v, vlen);
		c->vals[c->n][vlen] = 0;
	}
	c->n++;
	return 0;
}

static void
test_ops(struct meta_kv *kv)
{
	struct meta_kv_txn *t;
	struct collect c;
	const void *v;
	size_t vlen;
	int64_t d[2] = {7, 1};
	char buf[64];

	CHECK(rt_put(kv, "a", "1") == 0, "put a");
	CHECK(rt_put(kv, "c", "3") == 0, "put c");
	CHECK(rt_get(kv, "a", buf, sizeof(buf)) == 0 && !strcmp(buf, "1"),
	      "a committed transaction is read back");

	CHECK_FATAL(meta_kv_begin(kv, false, &t) == 0, "begin");
	CHECK(meta_kv_put(t, "b", 1, "2", 1) == 0, "put b");
	CHECK(meta_kv_del(t, "c", 1) == 0, "delete c");
	CHECK(meta_kv_add(t, "u", 1, d, 2) == 0, "add to u");
	CHECK(meta_kv_get(t, "b", 1, &v, &vlen) == 0 && vlen == 1 &&
		      !memcmp(v, "2", 1),
	      "the transaction reads its own put");
	CHECK(meta_kv_get(t, "c", 1, &v, &vlen) == -ENOENT,
	      "and its own delete");
	CHECK(meta_kv_get(t, "u", 1, &v, &vlen) == 0 && vlen == 16 &&
		      tl_get_be64(v) == 7,
	      "and its own add");
	memset(&c, 0, sizeof(c));
	CHECK(meta_kv_scan(t, "", 0, NULL, 0, collect_cb, &c) == 0, "scan");
	/* the engine's own \0R keys come first */
	{
		unsigned i = 0;

		while (i < c.n && c.keys[i][0] == 0)
			i++;
		CHECK(c.n - i == 3 && !strcmp(c.keys[i], "a") &&
			      !strcmp(c.keys[i + 1], "b") &&
			      !strcmp(c.keys[i + 2], "u"),
		      "a scan merges the replica with the buffered writes");
	}
	CHECK(meta_kv_commit(t) == 0, "commit");

	CHECK_FATAL(meta_kv_begin(kv, false, &t) == 0, "begin");
	CHECK(meta_kv_add(t, "u", 1, d, 2) == 0, "add again");
	CHECK(meta_kv_commit(t) == 0, "commit");
	CHECK_FATAL(meta_kv_begin(kv, true, &t) == 0, "begin read-only");
	CHECK(meta_kv_get(t, "u", 1, &v, &vlen) == 0 && vlen == 16 &&
		      tl_get_be64(v) == 14 &&
		      tl_get_be64((uint8_t *)v + 8) == 2,
	      "adds of two transactions sum up");
	CHECK(meta_kv_get(t, "c", 1, &v, &vlen) == -ENOENT, "c deleted");
	CHECK(meta_kv_put(t, "x", 1, "x", 1) == -EROFS,
	      "a read-only transaction cannot write");
	meta_kv_abort(t);
}

/* T1 reads k; T2 writes k and commits; T1 writes and commits: -EAGAIN,
 * and T1's other write is nowhere. */
static void
test_conflict(struct meta_kv *kv)
{
	struct meta_kv_txn *t1, *t2;
	const void *v;
	size_t vlen;
	int64_t one = 1;
	char buf[64];

	CHECK(rt_put(kv, "k", "0") == 0, "put k");
	CHECK_FATAL(meta_kv_begin(kv, false, &t1) == 0, "begin t1");
	CHECK(meta_kv_get(t1, "k", 1, &v, &vlen) == 0, "t1 reads k");
	CHECK_FATAL(meta_kv_begin(kv, false, &t2) == 0, "begin t2");
	CHECK(meta_kv_put(t2, "k", 1, "2", 1) == 0, "t2 writes k");
	CHECK(meta_kv_commit(t2) == 0, "t2 commits");
	CHECK(meta_kv_put(t1, "k", 1, "1", 1) == 0, "t1 writes k");
	CHECK(meta_kv_put(t1, "t1only", 6, "1", 1) == 0, "t1 writes another");
	CHECK_EQ(meta_kv_commit(t1), -EAGAIN,
		 "t1, which read what t2 changed, conflicts");
	CHECK(rt_get(kv, "k", buf, sizeof(buf)) == 0 && !strcmp(buf, "2"),
	      "k holds t2's value");
	CHECK(rt_get(kv, "t1only", buf, sizeof(buf)) == -ENOENT,
	      "nothing of t1 was applied");

	/* adds do not conflict with each other, peeks do not conflict */
	CHECK_FATAL(meta_kv_begin(kv, false, &t1) == 0, "begin t1");
	CHECK(meta_kv_peek(t1, "u", 1, &v, &vlen) == 0, "t1 peeks at u");
	CHECK(meta_kv_add(t1, "u", 1, (int64_t[]){1, 0}, 2) == 0,
	      "t1 adds to u");
	CHECK_FATAL(meta_kv_begin(kv, false, &t2) == 0, "begin t2");
	CHECK(meta_kv_add(t2, "u", 1, (int64_t[]){1, 0}, 2) == 0,
	      "t2 adds to u");
	CHECK(meta_kv_commit(t2) == 0, "t2 commits");
	CHECK(meta_kv_commit(t1) == 0,
	      "t1 commits: adds and peeks do not conflict");
	(void)one;

	/* a scan that stopped early read only up to where it stopped */
	CHECK(rt_put(kv, "s1", "1") == 0 && rt_put(kv, "s2", "1") == 0,
	      "put s1, s2");
	CHECK_FATAL(meta_kv_begin(kv, false, &t1) == 0, "begin t1");
	{
		struct collect c;

		memset(&c, 0, sizeof(c));
		CHECK(meta_kv_scan(t1, "s1", 2, "s9", 2, collect_cb, &c) == 0 &&
			      c.n == 2,
		      "t1 scans [s1, s9)");
	}
	CHECK(rt_put(kv, "s5", "1") == 0, "another transaction puts s5");
	CHECK(meta_kv_put(t1, "z", 1, "1", 1) == 0, "t1 writes z");
	CHECK_EQ(meta_kv_commit(t1), -EAGAIN, "t1's scan covered s5: conflict");
}

/* Threads of one node increment one key by read-modify-write, each
 * retrying on -EAGAIN: a transaction that begins while another's commit
 * is in flight reads that commit's writes (the overlay) and goes after
 * it, so no increment is lost and few conflict. */
#define RMW_THREADS 6
#define RMW_EACH    40

struct rmw {
	struct meta_kv *kv;
	int errors, conflicts;
};

static void *
rmw_run(void *arg)
{
	struct rmw *w = arg;

	for (int i = 0; i < RMW_EACH; i++) {
		int rc, tries = 0;

		do {
			struct meta_kv_txn *t;
			const void *v;
			size_t vlen;
			uint8_t nv[8];
			uint64_t x = 0;

			rc = meta_kv_begin(w->kv, false, &t);
			if (rc)
				break;
			rc = meta_kv_get(t, "rmw", 3, &v, &vlen);
			if (rc == 0 && vlen == 8)
				x = tl_get_be64(v);
			tl_put_be64(nv, x + 1);
			rc = meta_kv_put(t, "rmw", 3, nv, 8);
			if (rc) {
				meta_kv_abort(t);
				break;
			}
			rc = meta_kv_commit(t);
			w->conflicts += rc == -EAGAIN;
		} while (rc == -EAGAIN && ++tries < 100);
		w->errors += rc != 0;
	}
	return NULL;
}

static void
test_overlay(struct meta_kv *kv)
{
	struct rmw w[RMW_THREADS];
	pthread_t th[RMW_THREADS];
	struct meta_kv_txn *t;
	const void *v;
	size_t vlen;
	int errors = 0, conflicts = 0;

	for (int i = 0; i < RMW_THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].kv = kv;
		pthread_create(&th[i], NULL, rmw_run, &w[i]);
	}
	for (int i = 0; i < RMW_THREADS; i++) {
		pthread_join(th[i], NULL);
		errors += w[i].errors;
		conflicts += w[i].conflicts;
	}
	printf("# %d read-modify-writes, %d conflicts retried\n",
	       RMW_THREADS * RMW_EACH, conflicts);
	CHECK_EQ(errors, 0, "every read-modify-write commits");
	CHECK_FATAL(meta_kv_begin(kv, true, &t) == 0, "begin read-only");
	CHECK(meta_kv_get(t, "rmw", 3, &v, &vlen) == 0 && vlen == 8 &&
		      tl_get_be64(v) == RMW_THREADS * RMW_EACH,
	      "no increment lost (%llu)",
	      vlen == 8 ? (unsigned long long)tl_get_be64(v) : 0ULL);
	meta_kv_abort(t);
}

/* meta_kv_version: one per applied state, 0 for write transactions. */
static void
test_version(struct meta_kv *kv)
{
	struct meta_kv_txn *a, *b, *w;
	uint64_t va, vb, vc;

	CHECK_FATAL(rt_put(kv, "ver", "1") == 0, "put");
	CHECK_FATAL(meta_kv_begin(kv, true, &a) == 0 &&
			    meta_kv_begin(kv, true, &b) == 0,
		    "two read-only transactions");
	va = meta_kv_version(a);
	vb = meta_kv_version(b);
	meta_kv_abort(a);
	meta_kv_abort(b);
	CHECK(va != 0 && va == vb,
	      "two snapshots of one state have one version (%llu, %llu)",
	      (unsigned long long)va, (unsigned long long)vb);
	CHECK_FATAL(rt_put(kv, "ver", "2") == 0, "put");
	CHECK_FATAL(meta_kv_begin(kv, true, &a) == 0, "begin");
	vc = meta_kv_version(a);
	meta_kv_abort(a);
	CHECK(vc > va, "a commit gives a newer version (%llu > %llu)",
	      (unsigned long long)vc, (unsigned long long)va);
	CHECK_FATAL(meta_kv_begin(kv, false, &w) == 0, "begin write");
	CHECK(meta_kv_version(w) == 0, "a write transaction has none");
	meta_kv_abort(w);
}

/* META_KV_RDONLY: refused for a node URL; through the group's directory
 * reads work, writes are -EROFS, a directory without a node -ENOENT. */
static void
test_rdonly(struct rt *t, const char *node_url)
{
	struct meta_kv *kv;
	struct meta_kv_txn *tx;
	char *url, *err = NULL, buf[16];
	int rc;

	rc = meta_kv_open_flags(node_url, META_KV_RDONLY, &kv, &err);
	CHECK(rc == -EINVAL && err && strstr(err, "read-only"),
	      "a node URL is not opened read-only (%s)", err ? err : "");
	free(err);
	err = NULL;

	url = tl_asprintf("raft://%s/n1", t->dir);
	rc = meta_kv_open_flags(url, META_KV_RDONLY, &kv, &err);
	CHECK_FATAL(rc == 0, "the group's directory opens read-only (%s)",
		    err ? err : "");
	CHECK(rt_get(kv, "ver", buf, sizeof(buf)) == 0 && !strcmp(buf, "2"),
	      "a read-only open reads what the node committed");
	CHECK(meta_kv_begin(kv, false, &tx) == -EROFS,
	      "a write transaction is -EROFS");
	meta_kv_close(kv);
	free(url);

	url = tl_asprintf("raft://%s/none", t->dir);
	free(err);
	err = NULL;
	rc = meta_kv_open_flags(url, META_KV_RDONLY, &kv, &err);
	CHECK(rc == -ENOENT, "a directory without a node is -ENOENT (%s)",
	      err ? err : "");
	CHECK(access(url + 7, F_OK) != 0, "and nothing is created");
	free(err);
	free(url);
}

/* meta_kv_raft_convert: the LMDB volume's keys become the replica of a
 * new group of one, which commits; the LMDB volume is left as it was. */
static void
test_convert(void)
{
	struct rt t;
	struct meta_kv *kv;
	char *lmdb, *url, *err = NULL, buf[32];
	int rc;

	rt_init(&t, 1);
	lmdb = tl_asprintf("lmdb://%s/lmdb", t.dir);
	rc = meta_kv_open(lmdb, &kv, &err);
	CHECK_FATAL(rc == 0, "an LMDB volume (%s)", err ? err : "");
	for (int i = 0; i < 100 && rc == 0; i++) {
		char k[16], v[16];

		snprintf(k, sizeof(k), "old%03d", i);
		snprintf(v, sizeof(v), "v%d", i);
		rc = rt_put(kv, k, v);
	}
	CHECK_FATAL(rc == 0, "100 keys in the LMDB volume");
	meta_kv_close(kv);

	url = rt_url(&t, 1, 1, "bootstrap=1");
	rc = meta_kv_raft_convert("lmdb:///nonexistent-dir", url, &err);
	CHECK(rc != 0 && err, "a missing LMDB volume is refused (%s)",
	      err ? err : "");
	free(err);
	err = NULL;
	rc = meta_kv_raft_convert(lmdb, url, &err);
	CHECK_FATAL(rc == 0, "the LMDB volume converts (%s)", err ? err : "");
	rc = meta_kv_raft_convert(lmdb, url, &err);
	CHECK(rc == -EEXIST, "converting into a node again is refused (%s)",
	      err ? err : "");
	free(err);
	err = NULL;

	rc = meta_kv_open(url, &kv, &err);
	CHECK_FATAL(rc == 0, "the converted node starts (%s)", err ? err : "");
	{
		bool all = true;

		for (int i = 0; i < 100; i++) {
			char k[16], v[16];

			snprintf(k, sizeof(k), "old%03d", i);
			snprintf(v, sizeof(v), "v%d", i);
			all &= rt_get(kv, k, buf, sizeof(buf)) == 0 &&
			       strcmp(buf, v) == 0;
		}
		CHECK(all, "every key of the LMDB volume is in the group");
	}
	CHECK(rt_put(kv, "new", "1") == 0 &&
		      rt_get(kv, "new", buf, sizeof(buf)) == 0,
	      "the group commits");
	meta_kv_close(kv);

	rc = meta_kv_open(lmdb, &kv, &err);
	CHECK_FATAL(rc == 0, "the LMDB volume opens (%s)", err ? err : "");
	CHECK(rt_get(kv, "new", buf, sizeof(buf)) == -ENOENT &&
		      rt_get(kv, "old000", buf, sizeof(buf)) == 0,
	      "the LMDB volume is left as it was");
	meta_kv_close(kv);
	free(err);
	free(url);
	free(lmdb);
	rt_done(&t);
}

/* A node whose replica is another group's refuses to start. */
static void
test_other_group(void)
{
	struct rt a, b;
	struct meta_kv *kv;
	char *ua, *ub, *err = NULL;
	int rc;

	rt_init(&a, 1);
	rt_init(&b, 1);
	ua = rt_url(&a, 1, 1, "bootstrap=1");
	ub = rt_url(&b, 1, 1, "bootstrap=1");
	rc = meta_kv_open(ua, &kv, &err);
	CHECK_FATAL(rc == 0, "group A starts (%s)", err ? err : "");
	CHECK(rt_put(kv, "k", "a") == 0, "group A commits");
	meta_kv_close(kv);
	rc = meta_kv_open(ub, &kv, &err);
	CHECK_FATAL(rc == 0, "group B starts (%s)", err ? err : "");
	CHECK(rt_put(kv, "k", "b") == 0, "group B commits");
	meta_kv_close(kv);
	{
		char *cmd = tl_asprintf("cp %s/n1/replica/data.mdb "
					"%s/n1/replica/data.mdb",
					b.dir, a.dir);

		CHECK_FATAL(system(cmd) == 0, "B's replica copied over A's");
		free(cmd);
	}
	rc = meta_kv_open(ua, &kv, &err);
	CHECK(rc == -EXDEV && err && strstr(err, "another group"),
	      "a node refuses the replica of another group (%s)",
	      err ? err : "");
	if (rc == 0)
		meta_kv_close(kv);
	free(err);
	free(ua);
	free(ub);
	rt_done(&a);
	rt_done(&b);
}

int
main(void)
{
	struct meta_kv *kv;
	struct rt t;
	char *url, *err = NULL, buf[64];
	int rc;

	tl_log_set_level(getenv("RT_DEBUG") ? TL_LOG_DEBUG : TL_LOG_WARN);
	rt_init(&t, 1);
	url = rt_url(&t, 1, 1, "bootstrap=1");
	rc = meta_kv_open(url, &kv, &err);
	CHECK_FATAL(rc == 0, "a one-node group starts (%s)", err ? err : "");
	test_ops(kv);
	test_conflict(kv);
	test_overlay(kv);
	test_version(kv);
	test_rdonly(&t, url);
	{
		/* the replica's LMDB figures, as /metrics shows them */
		struct meta_kv_lmdb_stats ls;

		CHECK(meta_kv_raft_lmdb_stats(kv, &ls) == 0 &&
			      ls.map_bytes > 0 && ls.page_size > 0 &&
			      ls.pages_used >= 2 &&
			      ls.map_bytes >= ls.pages_used * ls.page_size &&
			      ls.leaf_pages >= 1 && ls.entries >= 4 &&
			      ls.batches >= 1,
		      "the replica's LMDB map and pages (%llu of %llu bytes, "
		      "%llu keys)",
		      (unsigned long long)(ls.pages_used * ls.page_size),
		      (unsigned long long)ls.map_bytes,
		      (unsigned long long)ls.entries);
		CHECK(meta_kv_lmdb_stats(kv, &ls) == -ENOTSUP,
		      "meta_kv_lmdb_stats is for lmdb:// only");
	}
	meta_kv_close(kv);

	/* restart: the replica and the log agree, nothing applied twice */
	free(err);
	err = NULL;
	rc = meta_kv_open(url, &kv, &err);
	CHECK_FATAL(rc == 0, "the node restarts (%s)", err ? err : "");
	CHECK(rt_get(kv, "a", buf, sizeof(buf)) == 0 && !strcmp(buf, "1"),
	      "a commit survives a restart");
	{
		struct meta_kv_txn *tx;
		const void *v;
		size_t vlen;

		CHECK_FATAL(meta_kv_begin(kv, true, &tx) == 0, "begin");
		CHECK(meta_kv_get(tx, "u", 1, &v, &vlen) == 0 &&
			      tl_get_be64(v) == 16,
		      "adds were applied exactly once across the restart");
		meta_kv_abort(tx);
	}
	CHECK(rt_put(kv, "after", "1") == 0, "commits go on after it");
	meta_kv_close(kv);
	free(url);

	/* the directory of node 1 is not node 2's */
	url = rt_url(&t, 1, 1, NULL);
	{
		char *u2 = tl_asprintf("%s", url), *p = strstr(u2, "id=1");

		p[3] = '2';
		free(err);
		err = NULL;
		rc = meta_kv_open(u2, &kv, &err);
		CHECK(rc != 0 && err && strstr(err, "node 1"),
		      "a node refuses another node's directory (%s)",
		      err ? err : "");
		free(u2);
	}
	free(url);
	free(err);
	rt_done(&t);
	test_convert();
	test_other_group();
	return tap_done();
}
