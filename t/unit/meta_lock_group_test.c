/*
 * meta_lock_group_test.c - NFS locks across two gateways of one volume:
 * a raft:// group of two nodes in this process, a meta handle on each
 * (each reads its own replica, commits through the leader), as two
 * tesserad of the volume would.  A lock granted through one node
 * conflicts at once through the other; a release through one is seen
 * through the other's release counter (how a gateway learns that a
 * blocked request may now succeed); two threads, one per node, take and
 * release one exclusive range many times and are never inside it
 * together; a client adopted by one node's gateway is not adopted by the
 * other's.
 */
#include "config.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "meta/meta.h"
#include "t/unit/raft_test.h"

#define ROUNDS 100

static struct meta_lock_req
req(const char *client, uint64_t start, uint64_t end, bool excl)
{
	struct meta_lock_req r;

	memset(&r, 0, sizeof(r));
	r.owner.client = client;
	r.owner.client_len = strlen(client);
	r.owner.svid = 1;
	r.owner.oh = "owner";
	r.owner.oh_len = 5;
	r.start = start;
	r.end = end;
	r.exclusive = excl;
	return r;
}

struct gw {
	struct meta *m;
	const char *name;
	atomic_int *inside;
	int got, overlaps, errors, busy;
};

static void *
gw_main(void *arg)
{
	struct gw *g = arg;
	struct meta_lock_req r = req(g->name, 100, 200, true);

	while (g->got < ROUNDS) {
		struct meta_lock_result res;
		int rc = meta_lock(g->m, 7, &r, &res);

		if (rc == -EBUSY) {
			g->busy++;
			sched_yield();
			continue;
		}
		if (rc != 0) {
			printf("# %s: lock: %s\n", g->name, strerror(-rc));
			g->errors++;
			break;
		}
		if (atomic_fetch_add(g->inside, 1) != 0)
			g->overlaps++;
		atomic_fetch_sub(g->inside, 1);
		rc = meta_unlock(g->m, 7, &r.owner, 0, META_LOCK_EOF, &res);
		if (rc != 0) {
			printf("# %s: unlock: %s\n", g->name, strerror(-rc));
			g->errors++;
			break;
		}
		g->got++;
	}
	return NULL;
}

int
main(void)
{
	struct rt t;
	struct meta_kv *kv[3] = {NULL, NULL, NULL};
	struct meta *m1 = NULL, *m2 = NULL;
	struct meta_format_opts fo;
	struct meta_lock_req r;
	struct meta_lock_result res;
	struct meta_lock_where w = {"10.1.1.1", "10.1.1.100", 1, 3};
	char *url[3], *err = NULL, *msg = NULL, addr[64];
	uint64_t rel0 = 0, rel1 = 0, now = tl_now_ns();
	uint32_t epoch;
	atomic_int inside = 0;
	struct gw a = {NULL, "client-of-gw1", &inside, 0, 0, 0, 0};
	struct gw b = {NULL, "client-of-gw2", &inside, 0, 0, 0, 0};
	pthread_t ta, tb;
	int rc;

	rt_init(&t, 2);
	url[1] = rt_url(&t, 1, 2, "bootstrap=1");
	url[2] = rt_url(&t, 2, 2, NULL);
	rc = meta_kv_open(url[1], &kv[1], &err);
	CHECK_FATAL(rc == 0, "node 1 founds the group (%s)", err ? err : "");
	rc = meta_kv_open(url[2], &kv[2], &err);
	CHECK_FATAL(rc == 0, "node 2 starts (%s)", err ? err : "");
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", t.port[1]);
	rc = meta_kv_raft_change(kv[1], META_KV_RAFT_ADD, 2, addr, &msg);
	CHECK_FATAL(rc == 0, "node 2 joins (%s)", msg ? msg : "");
	free(msg);
	memset(&fo, 0, sizeof(fo));
	fo.name = "v";
	fo.storage = "file:///nonexistent";
	rc = meta_format(url[1], &fo, &err);
	CHECK_FATAL(rc == 0, "format the volume (%s)", err ? err : "");
	rc = meta_open(url[1], "v", &m1, &err);
	CHECK_FATAL(rc == 0, "gateway 1 opens it on node 1 (%s)",
		    err ? err : "");
	rc = meta_open(url[2], "v", &m2, &err);
	CHECK_FATAL(rc == 0, "gateway 2 opens it on node 2 (%s)",
		    err ? err : "");

	r = req("host1", 0, 100, true);
	CHECK_EQ(meta_lock(m1, 5, &r, &res), 0, "gateway 1 grants a lock");
	r = req("host2", 50, 51, false);
	CHECK_EQ(meta_lock(m2, 5, &r, &res), -EBUSY,
		 "gateway 2 refuses a conflicting one at once");
	CHECK(res.holder.start == 0 && res.holder.end == 100 &&
		      res.holder.exclusive,
	      "naming the lock held through gateway 1");
	CHECK_EQ(meta_lock_releases(m2, &rel0), 0,
		 "gateway 2 reads the "
		 "release counter");
	r = req("host1", 0, 100, true);
	CHECK_EQ(meta_unlock(m1, 5, &r.owner, 0, 100, &res), 0,
		 "gateway 1 releases it");
	CHECK_EQ(meta_lock_releases(m2, &rel1), 0, "gateway 2 reads it again");
	CHECK(rel1 > rel0, "and sees it changed (%llu -> %llu)",
	      (unsigned long long)rel0, (unsigned long long)rel1);
	r = req("host2", 50, 51, false);
	CHECK_EQ(meta_lock(m2, 5, &r, &res), 0,
		 "so its blocked request is granted");

	a.m = m1;
	b.m = m2;
	pthread_create(&ta, NULL, gw_main, &a);
	pthread_create(&tb, NULL, gw_main, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	printf("# busy answers: %d and %d\n", a.busy, b.busy);
	CHECK(a.errors == 0 && b.errors == 0, "no errors");
	CHECK(a.got == ROUNDS && b.got == ROUNDS,
	      "both gateways' clients got the range %d times", ROUNDS);
	CHECK_EQ(a.overlaps + b.overlaps, 0, "never both inside it at once");

	/* adoption: only one gateway wins a client of a gone gateway */
	r = req("orphan", 0, 10, true);
	r.where = &w; /* served by session 1, which is gone */
	CHECK_EQ(meta_lock(m1, 6, &r, &res), 0, "a client of session 1");
	CHECK_EQ(meta_lock_adopt(m2, "orphan", 6, 1, 2, now + 1000000000ull,
				 &epoch),
		 0, "gateway 2 adopts it");
	CHECK_EQ(meta_lock_adopt(m1, "orphan", 6, 1, 3, now + 1000000000ull,
				 &epoch),
		 -ESTALE, "gateway 1, a moment later, does not");

	meta_lock_drop(m1, "orphan", 6, -1, NULL, NULL, NULL);
	meta_lock_drop(m1, "host2", 5, -1, NULL, NULL, NULL);
	meta_lock_drop(m1, "host1", 5, -1, NULL, NULL, NULL);
	meta_lock_drop(m1, a.name, strlen(a.name), -1, NULL, NULL, NULL);
	meta_lock_drop(m1, b.name, strlen(b.name), -1, NULL, NULL, NULL);
	rel0 = 1;
	meta_lock_total(m2, &rel0);
	CHECK_EQ(rel0, 0, "nothing held in the end, as gateway 2 sees it");
	meta_close(m2);
	meta_close(m1);
	meta_kv_close(kv[2]);
	meta_kv_close(kv[1]);
	free(url[1]);
	free(url[2]);
	free(err);
	rt_done(&t);
	return tap_done();
}
