/*
 * meta_kv_raft_group_test.c - raft:// groups of three and five nodes in
 * one process, on loopback ports: new nodes seed themselves from a peer
 * and join one at a time; a write through any node is read through every
 * other at once (close-to-open across gateways); concurrent writers on
 * every node (counters by adds, unique keys, one contended key) lose
 * nothing acknowledged and leave every replica identical; the leader
 * stopped, a new one takes over and writes go on; a stopped node comes
 * back and catches up; two of five stopped, the rest go on; a node with
 * the wrong cluster secret gets nothing.  Reads are linearizable with
 * follower leases: a counter written through one node, readers on every
 * other node (reading their replica under a lease) never see it below a
 * value already acknowledged.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>

#include "t/unit/raft_test.h"

#define MAXN         5
#define WRITERS_TXNS 60

struct group {
	struct rt t;
	int n;
	struct meta_kv *kv[MAXN + 1]; /* 1-based; NULL: stopped */
};

static int
start_node(struct group *g, int i, bool bootstrap)
{
	char *url = rt_url(&g->t, i, g->n, bootstrap ? "bootstrap=1" : NULL);
	char *err = NULL;
	int rc = meta_kv_open(url, &g->kv[i], &err);

	if (rc)
		printf("# node %d: %s\n", i, err ? err : strerror(-rc));
	free(err);
	free(url);
	return rc;
}

static void
stop_node(struct group *g, int i)
{
	meta_kv_close(g->kv[i]);
	g->kv[i] = NULL;
}

/* Any running node's view of the leader, waiting for one to emerge
 * (bounded by a number of looks, not by time). */
static int
leader_of(struct group *g)
{
	for (int tries = 0; tries < 400; tries++) {
		for (int i = 1; i <= g->n; i++) {
			uint64_t l;

			if (!g->kv[i])
				continue;
			l = rt_leader(g->kv[i]);
			if (l && g->kv[l] && rt_leader(g->kv[l]) == l)
				return (int)l;
		}
		usleep(20000);
	}
	return 0;
}

struct dump {
	struct tl_buf b;
};

static int
dump_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct dump *d = arg;

	tl_buf_append_be32(&d->b, (uint32_t)klen);
	tl_buf_append(&d->b, k, klen);
	tl_buf_append_be32(&d->b, (uint32_t)vlen);
	tl_buf_append(&d->b, v, vlen);
	return 0;
}

/* Every key and value of a node's replica, in order. */
static void
dump_node(struct meta_kv *kv, struct dump *d)
{
	struct meta_kv_txn *t;

	tl_buf_reset(&d->b);
	if (meta_kv_begin(kv, true, &t) == 0) {
		meta_kv_scan(t, "", 0, NULL, 0, dump_cb, d);
		meta_kv_abort(t);
	}
}

/* Replicas identical: read through each node (a read-index read, so
 * each has applied the same committed state). */
static bool
replicas_identical(struct group *g)
{
	struct dump a = {TL_BUF_INIT}, b = {TL_BUF_INIT};
	int first = 0;
	bool same = true;

	for (int i = 1; i <= g->n && same; i++) {
		if (!g->kv[i])
			continue;
		if (!first) {
			first = i;
			dump_node(g->kv[i], &a);
			continue;
		}
		dump_node(g->kv[i], &b);
		same = a.b.len == b.b.len &&
		       memcmp(a.b.data, b.b.data, a.b.len) == 0;
		if (!same)
			printf("# node %d differs from node %d\n", i, first);
	}
	tl_buf_free(&a.b);
	tl_buf_free(&b.b);
	return same;
}

struct writer {
	struct meta_kv *kv;
	int id;
	int acked, conflicts, errors;
	int acked_keys[WRITERS_TXNS];
};

/* Each transaction: a unique key, an add to a shared counter, and a
 * read-modify-write of one contended key. */
static void *
writer_run(void *arg)
{
	struct writer *w = arg;

	for (int i = 0; i < WRITERS_TXNS; i++) {
		struct meta_kv_txn *t;
		char k[32];
		const void *v;
		size_t vlen;
		uint64_t hot = 0;
		uint8_t hv[8];
		int64_t one = 1;
		int rc, tries = 0;

		do {
			rc = meta_kv_begin(w->kv, false, &t);
			if (rc)
				break;
			snprintf(k, sizeof(k), "w%d-%03d", w->id, i);
			rc = meta_kv_put(t, k, strlen(k), "v", 1);
			if (rc == 0)
				rc = meta_kv_add(t, "ctr", 3, &one, 1);
			if (rc == 0 && i % 4 == 0) {
				rc = meta_kv_get(t, "hot", 3, &v, &vlen);
				hot = rc == 0 && vlen == 8 ? tl_get_be64(v) : 0;
				tl_put_be64(hv, hot + 1);
				rc = meta_kv_put(t, "hot", 3, hv, 8);
			}
			if (rc) {
				meta_kv_abort(t);
				break;
			}
			rc = meta_kv_commit(t);
			if (rc == -EAGAIN)
				w->conflicts++;
		} while (rc == -EAGAIN && ++tries < 50);
		if (rc == 0)
			w->acked_keys[w->acked++] = i;
		else
			w->errors++;
	}
	return NULL;
}

static uint64_t
get_u64(struct meta_kv *kv, const char *k)
{
	struct meta_kv_txn *t;
	const void *v;
	size_t vlen;
	uint64_t x = 0;

	if (meta_kv_begin(kv, true, &t) == 0) {
		if (meta_kv_get(t, k, strlen(k), &v, &vlen) == 0 && vlen == 8)
			x = tl_get_be64(v);
		meta_kv_abort(t);
	}
	return x;
}

/* ---- linearizable reads under follower leases ---------------------------- */

struct lin {
	struct group *g;
	int writer;
	atomic_uint_fast64_t acked;
	atomic_bool stop;
	uint64_t reads, stale;
};

struct lin_reader {
	struct lin *l;
	int node;
};

static void *
lin_read(void *arg)
{
	struct lin_reader *r = arg;
	struct lin *l = r->l;

	while (!atomic_load(&l->stop)) {
		uint64_t before = atomic_load(&l->acked);
		uint64_t v = get_u64(l->g->kv[r->node], "lin");

		__atomic_fetch_add(&l->reads, 1, __ATOMIC_RELAXED);
		if (v < before)
			__atomic_fetch_add(&l->stale, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static uint64_t
lease_reads_of(struct meta_kv *kv)
{
	struct meta_kv_raft_stats s;

	return meta_kv_raft_stats(kv, &s) == 0 ? s.lease_reads : 0;
}

/* A counter incremented through node `writer`; every other node reads it
 * in a loop: never below what was acknowledged before the read began. */
static void
linearizable_reads(struct group *g, int writer, const char *what)
{
	struct lin l;
	struct lin_reader rd[MAXN];
	pthread_t th[MAXN];
	uint64_t lease0 = 0, lease1 = 0;
	int nr = 0, errors = 0;

	memset(&l, 0, sizeof(l));
	l.g = g;
	l.writer = writer;
	atomic_store(&l.acked, get_u64(g->kv[writer], "lin"));
	for (int i = 1; i <= g->n; i++)
		if (g->kv[i] && i != writer)
			lease0 += lease_reads_of(g->kv[i]);
	for (int i = 1; i <= g->n; i++) {
		if (!g->kv[i] || i == writer)
			continue;
		rd[nr].l = &l;
		rd[nr].node = i;
		pthread_create(&th[nr], NULL, lin_read, &rd[nr]);
		nr++;
	}
	for (int k = 0; k < 150; k++) {
		struct meta_kv_txn *t;
		const void *v;
		size_t vlen;
		uint8_t b[8];
		uint64_t x = 0;
		int rc, tries = 0;

		do {
			rc = meta_kv_begin(g->kv[writer], false, &t);
			if (rc)
				break;
			rc = meta_kv_get(t, "lin", 3, &v, &vlen);
			x = rc == 0 && vlen == 8 ? tl_get_be64(v) : 0;
			tl_put_be64(b, x + 1);
			rc = meta_kv_put(t, "lin", 3, b, 8);
			if (rc) {
				meta_kv_abort(t);
				break;
			}
			rc = meta_kv_commit(t);
		} while (rc == -EAGAIN && ++tries < 50);
		if (rc == 0)
			atomic_store(&l.acked, x + 1);
		else
			errors++;
	}
	atomic_store(&l.stop, true);
	for (int k = 0; k < nr; k++)
		pthread_join(th[k], NULL);
	for (int i = 1; i <= g->n; i++)
		if (g->kv[i] && i != writer)
			lease1 += lease_reads_of(g->kv[i]);
	printf("# %s: %llu reads, %llu of them under a follower lease, "
	       "counter at %llu\n",
	       what, (unsigned long long)l.reads,
	       (unsigned long long)(lease1 - lease0),
	       (unsigned long long)atomic_load(&l.acked));
	CHECK_EQ(errors, 0, "%s: every increment commits", what);
	CHECK(l.stale == 0,
	      "%s: no read saw less than was acknowledged before it "
	      "(%llu stale)",
	      what, (unsigned long long)l.stale);
	CHECK(lease1 > lease0, "%s: readers used their leases", what);
}

static void
concurrent_writers(struct group *g, const char *what)
{
	struct writer w[MAXN];
	pthread_t th[MAXN];
	int nw = 0, acked = 0, hot_acked = 0, errors = 0, conflicts = 0;
	uint64_t ctr0 = 0, hot0 = 0;
	int reader = 0;
	bool all = true;

	for (int i = 1; i <= g->n; i++)
		if (g->kv[i] && !reader)
			reader = i;
	ctr0 = get_u64(g->kv[reader], "ctr");
	hot0 = get_u64(g->kv[reader], "hot");
	for (int i = 1; i <= g->n; i++) {
		if (!g->kv[i])
			continue;
		memset(&w[nw], 0, sizeof(w[nw]));
		w[nw].kv = g->kv[i];
		w[nw].id = i;
		pthread_create(&th[nw], NULL, writer_run, &w[nw]);
		nw++;
	}
	for (int k = 0; k < nw; k++) {
		pthread_join(th[k], NULL);
		acked += w[k].acked;
		errors += w[k].errors;
		conflicts += w[k].conflicts;
		for (int j = 0; j < w[k].acked; j++)
			hot_acked += w[k].acked_keys[j] % 4 == 0;
	}
	printf("# %s: %d acknowledged, %d conflicts retried, %d errors\n", what,
	       acked, conflicts, errors);
	CHECK_EQ(errors, 0, "%s: every transaction eventually commits", what);
	for (int k = 0; k < nw; k++)
		for (int j = 0; j < w[k].acked; j++) {
			char key[32], buf[8];
			int other =
				(k + 1) % nw; /* read through another node */

			snprintf(key, sizeof(key), "w%d-%03d", w[k].id,
				 w[k].acked_keys[j]);
			if (rt_get(w[other].kv, key, buf, sizeof(buf)) != 0)
				all = false;
		}
	CHECK(all, "%s: every acknowledged key is read through another node",
	      what);
	CHECK_EQ(get_u64(g->kv[reader], "ctr") - ctr0, (uint64_t)acked,
		 "%s: the counter got exactly one add per acknowledged "
		 "transaction",
		 what);
	CHECK_EQ(get_u64(g->kv[reader], "hot") - hot0, (uint64_t)hot_acked,
		 "%s: the contended key lost no update (serializable)", what);
	CHECK(replicas_identical(g), "%s: replicas identical", what);
}

static void
run_group(int n)
{
	struct group g;
	char what[64], buf[64], *msg = NULL;
	int l, rc;

	memset(&g, 0, sizeof(g));
	g.n = n;
	rt_init(&g.t, n);
	CHECK_FATAL(start_node(&g, 1, true) == 0,
		    "%d nodes: node 1 founds "
		    "the group",
		    n);
	CHECK(rt_put(g.kv[1], "before", "1") == 0,
	      "a write before the others join");
	for (int i = 2; i <= n; i++) {
		CHECK_FATAL(start_node(&g, i, false) == 0,
			    "node %d starts and copies a replica", i);
		{
			char addr[64];

			snprintf(addr, sizeof(addr), "127.0.0.1:%d",
				 g.t.port[i - 1]);
			rc = meta_kv_raft_change(g.kv[1], META_KV_RAFT_ADD,
						 (uint64_t)i, addr, &msg);
		}
		CHECK_EQ(rc, 0, "node %d joins the group (%s)", i,
			 msg ? msg : "");
		free(msg);
		msg = NULL;
	}
	CHECK(rt_get(g.kv[n], "before", buf, sizeof(buf)) == 0,
	      "the last node to join has the first write");

	/* close-to-open across gateways */
	{
		bool ok = true;

		for (int i = 1; i <= n; i++) {
			int j = i % n + 1;
			char k[16];

			snprintf(k, sizeof(k), "cto%d", i);
			if (rt_put_retry(g.kv[i], k, "x") != 0 ||
			    rt_get(g.kv[j], k, buf, sizeof(buf)) != 0)
				ok = false;
		}
		CHECK(ok, "a write through each node is read at once through "
			  "the next");
	}
	snprintf(what, sizeof(what), "%d nodes", n);
	concurrent_writers(&g, what);
	l = leader_of(&g);
	snprintf(what, sizeof(what), "%d nodes, writes through the leader", n);
	linearizable_reads(&g, l, what);
	snprintf(what, sizeof(what), "%d nodes, writes through a follower", n);
	linearizable_reads(&g, l % n + 1, what);

	/* the leader stops: another takes over */
	l = leader_of(&g);
	CHECK(l > 0, "%d nodes: a leader (node %d)", n, l);
	stop_node(&g, l);
	snprintf(what, sizeof(what), "%d nodes, leader %d stopped", n, l);
	{
		int other = l % n + 1;

		CHECK(rt_put_retry(g.kv[other], "after-leader", "1") == 0,
		      "%s: a write goes through node %d", what, other);
	}
	CHECK(leader_of(&g) != l && leader_of(&g) > 0, "%s: a new leader",
	      what);
	concurrent_writers(&g, what);
	CHECK(start_node(&g, l, false) == 0, "node %d restarts", l);
	CHECK(rt_get(g.kv[l], "after-leader", buf, sizeof(buf)) == 0,
	      "node %d caught up with what it missed", l);
	CHECK(replicas_identical(&g), "%s and back: replicas identical", what);

	if (n == 5) {
		/* two of five stop: the three left go on */
		int a = leader_of(&g), b = a % n + 1;

		stop_node(&g, a);
		stop_node(&g, b);
		snprintf(what, sizeof(what), "5 nodes, %d and %d stopped", a,
			 b);
		concurrent_writers(&g, what);
		CHECK(start_node(&g, a, false) == 0 &&
			      start_node(&g, b, false) == 0,
		      "both restart");
		CHECK(replicas_identical(&g),
		      "%s and back: replicas "
		      "identical",
		      what);
	}

	/* a node with another secret gets no replica */
	if (n == 3) {
		char *url, *err = NULL;
		struct meta_kv *kv = NULL;
		char *bad = tl_asprintf("%s/bad-secret", g.t.dir);
		int port = rt_free_port();
		char *p;

		rt_write_secret(bad, "not the secret of this group at all, "
				     "no\n");
		url = rt_url(&g.t, 1, n, NULL);
		/* node 9 of the peers list, with the bad secret */
		p = tl_asprintf("raft://%s/n9?id=9&address=127.0.0.1:%d&"
				"peers=1@127.0.0.1:%d&secret=%s&mapsize=64M&"
				"timeout=500",
				g.t.dir, port, g.t.port[0], bad);
		rc = meta_kv_open(p, &kv, &err);
		CHECK(rc != 0, "a node with the wrong secret cannot join (%s)",
		      err ? err : "");
		if (rc == 0)
			meta_kv_close(kv);
		free(err);
		free(p);
		free(url);
		free(bad);
	}
	for (int i = 1; i <= n; i++)
		if (g.kv[i])
			stop_node(&g, i);
	rt_done(&g.t);
}

int
main(int argc, char **argv)
{
	tl_log_set_level(getenv("RT_DEBUG") ? TL_LOG_DEBUG : TL_LOG_ERR);
	if (argc < 2 || strcmp(argv[1], "5") != 0)
		run_group(3);
	if (argc < 2 || strcmp(argv[1], "3") != 0)
		run_group(5);
	return tap_done();
}
