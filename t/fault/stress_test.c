/*
 * stress_test - several libnfs clients (threads, one connection each) do
 * random operations on one shared tree for a fixed time; only the errors
 * that races make legitimate may appear (NOENT, EXIST, NOTEMPTY, NOTDIR,
 * ISDIR, STALE), the daemon survives, and `tessera fsck` is clean after.
 *
 * Environment: STRESS_SECONDS (default 20), STRESS_CLIENTS (default 6),
 * TH_SEED.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "t/nfs/tharness.h"

#define NDIRS      4
#define NNAMES     16
#define MAXCLIENTS 16

static struct th_server srv;
static uint64_t deadline, seed;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t n_ops, n_races, n_bad;

struct client {
	int id;
	struct th_conn c;
	struct th_fh dirs[NDIRS];
	uint64_t rng;
	uint64_t ops, races, bad;
};

static bool
legit(int st)
{
	switch (st) {
	case NFS3ERR_NOENT:
	case NFS3ERR_EXIST:
	case NFS3ERR_NOTEMPTY:
	case NFS3ERR_NOTDIR:
	case NFS3ERR_ISDIR:
	case NFS3ERR_STALE:
		return true;
	default:
		return false;
	}
}

static void
result(struct client *k, int st, const char *op)
{
	k->ops++;
	if (st == NFS3_OK)
		return;
	if (legit(st)) {
		k->races++;
		return;
	}
	if (k->bad++ < 10)
		th_diag("client %d: %s: %s", k->id, op, th_stat_name(st));
}

static void
one_op(struct client *k)
{
	uint8_t buf[32768];
	char name[16], name2[16];
	int d = (int)(th_rand(&k->rng) % NDIRS);
	int d2 = (int)(th_rand(&k->rng) % NDIRS);
	int r = (int)(th_rand(&k->rng) % 100);
	struct th_obj o;
	uint32_t len, got;
	bool eof;
	int st;

	sprintf(name, "n%u", (unsigned)(th_rand(&k->rng) % NNAMES));
	sprintf(name2, "n%u", (unsigned)(th_rand(&k->rng) % NNAMES));
	if (r < 15) {
		sattr3 sa = th_sattr_mode(0644);

		result(k,
		       th_create(&k->c, &k->dirs[d], name, GUARDED, &sa, NULL,
				 &o),
		       "create");
	} else if (r < 22) {
		result(k, th_mkdir(&k->c, &k->dirs[d], name, NULL, &o),
		       "mkdir");
	} else if (r < 32) {
		result(k, th_remove(&k->c, &k->dirs[d], name), "remove");
	} else if (r < 38) {
		result(k, th_rmdir(&k->c, &k->dirs[d], name), "rmdir");
	} else if (r < 48) {
		result(k,
		       th_rename(&k->c, &k->dirs[d], name, &k->dirs[d2], name2),
		       "rename");
	} else if (r < 90) {
		/* Operations on an object found by name. */
		st = th_lookup(&k->c, &k->dirs[d], name, &o);
		result(k, st, "lookup");
		if (st != NFS3_OK || !o.fh_follows || !o.attr_follows)
			return;
		if (o.attr.type == NF3DIR) {
			struct th_dirpage p;

			st = th_readdirplus(&k->c, &o.fh, 0, NULL, 4096, 8192,
					    &p);
			result(k, st, "readdirplus");
			if (st == NFS3_OK)
				th_dirpage_free(&p);
			return;
		}
		len = 1 + (uint32_t)(th_rand(&k->rng) % sizeof(buf));
		th_fill(th_rand(&k->rng), buf, len);
		if (r < 60) {
			result(k,
			       th_write(&k->c, &o.fh, th_rand(&k->rng) % 200000,
					buf, len, r < 54 ? UNSTABLE : FILE_SYNC,
					NULL),
			       "write");
		} else if (r < 66) {
			result(k, th_commit(&k->c, &o.fh, 0, 0, NULL),
			       "commit");
		} else if (r < 76) {
			result(k,
			       th_read(&k->c, &o.fh, 0, len, buf, &got, &eof),
			       "read");
		} else if (r < 82) {
			sattr3 sa = th_sattr_none();

			sa.size.set_it = 1;
			sa.size.set_size3_u.size = th_rand(&k->rng) % 100000;
			result(k, th_setattr(&k->c, &o.fh, &sa, NULL, NULL),
			       "truncate");
		} else {
			result(k,
			       th_link(&k->c, &o.fh, &k->dirs[d2], name2, NULL),
			       "link");
		}
	} else {
		struct th_dirpage p;

		st = th_readdir(&k->c, &k->dirs[d], 0, NULL, 8192, &p);
		result(k, st, "readdir");
		if (st == NFS3_OK)
			th_dirpage_free(&p);
	}
}

static void *
client_main(void *arg)
{
	struct client *k = arg;
	char name[8];
	struct th_obj o;

	if (th_connect(&k->c, srv.port, "/", 0, 0) != 0) {
		k->bad++;
		th_diag("client %d cannot connect", k->id);
		return NULL;
	}
	for (int d = 0; d < NDIRS; d++) {
		sprintf(name, "s%d", d);
		if (th_lookup(&k->c, &k->c.root, name, &o) != NFS3_OK) {
			k->bad++;
			th_diag("client %d: lookup %s", k->id, name);
			goto out;
		}
		k->dirs[d] = o.fh;
	}
	while (th_now_ms() < deadline)
		one_op(k);
out:
	th_disconnect(&k->c);
	pthread_mutex_lock(&lock);
	n_ops += k->ops;
	n_races += k->races;
	n_bad += k->bad;
	pthread_mutex_unlock(&lock);
	return NULL;
}

int
main(void)
{
	const char *e = getenv("STRESS_SECONDS");
	unsigned secs = e ? (unsigned)atoi(e) : 20;
	int nclients =
		getenv("STRESS_CLIENTS") ? atoi(getenv("STRESS_CLIENTS")) : 6;
	struct client *ks;
	pthread_t t[MAXCLIENTS];
	struct th_conn c;
	struct th_obj o;
	char name[8];

	if (nclients < 1 || nclients > MAXCLIENTS)
		nclients = 6;
	seed = getenv("TH_SEED") ? strtoull(getenv("TH_SEED"), NULL, 0)
				 : (uint64_t)time(NULL);
	printf("# seed %llu, %d clients, %u s\n", (unsigned long long)seed,
	       nclients, secs);
	TH_REQUIRE(th_server_start(&srv, NULL, NULL) == 0, "start tesserad");
	TH_REQUIRE(th_connect(&c, srv.port, "/", 0, 0) == 0, "connect");
	for (int d = 0; d < NDIRS; d++) {
		sprintf(name, "s%d", d);
		TH_REQUIRE(th_mkdir(&c, &c.root, name, NULL, &o) == NFS3_OK,
			   "mkdir %s", name);
	}
	ks = calloc((size_t)nclients, sizeof(*ks));
	deadline = th_now_ms() + secs * 1000ULL;
	for (int i = 0; i < nclients; i++) {
		ks[i].id = i;
		ks[i].rng = (seed + (uint64_t)i * 7919) | 1;
		pthread_create(&t[i], NULL, client_main, &ks[i]);
	}
	for (int i = 0; i < nclients; i++)
		pthread_join(t[i], NULL);
	TH_CHECK(n_bad == 0,
		 "%llu operations by %d clients, %llu lost "
		 "races (expected errors), %llu unexpected errors",
		 (unsigned long long)n_ops, nclients,
		 (unsigned long long)n_races, (unsigned long long)n_bad);
	TH_CHECK(n_ops > 0, "operations ran");
	TH_CHECK(th_null(&c) == NFS3_OK, "the daemon still answers");
	th_disconnect(&c);
	/* Stop the daemon (cleanly) so buffered data is flushed and the
	 * check sees a quiet volume. */
	th_server_stop(&srv, false);
	TH_CHECK(th_server_fsck(&srv) == 0,
		 "tessera fsck clean after the storm");
	free(ks);
	return th_done();
}
