/*
 * meta_kv_group_test.c - LMDB group commit: concurrent write transactions
 * from many threads, some aborted (as leaders of a batch and as members),
 * some committed lazily (no wait for the sync), each either wholly
 * committed or wholly absent, and every committed one readable once its
 * commit returned.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/tl.h"
#include "meta/kv.h"
#include "t/unit/tap.h"

#define THREADS 8
#define TXNS    200

struct worker {
	struct meta_kv *kv;
	unsigned id;
	unsigned committed, failures;
};

static void
key_of(char *k, unsigned id, unsigned i, char tag)
{
	snprintf(k, 32, "t%02u-%04u-%c", id, i, tag);
}

/* Every third transaction aborts after writing; the others write two
 * keys and must find both once committed. */
static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct meta_kv_txn *t;
	const void *v;
	size_t vlen;
	char k[32];

	for (unsigned i = 0; i < TXNS; i++) {
		if (meta_kv_begin(w->kv, false, &t) != 0) {
			w->failures++;
			continue;
		}
		key_of(k, w->id, i, 'a');
		if (meta_kv_put(t, k, strlen(k), "x", 1) != 0)
			w->failures++;
		key_of(k, w->id, i, 'b');
		if (meta_kv_put(t, k, strlen(k), "y", 1) != 0)
			w->failures++;
		if (i % 3 == 0) {
			meta_kv_abort(t);
			continue;
		}
		if ((i % 5 == 1 ? meta_kv_commit_lazy(t) : meta_kv_commit(t)) !=
		    0) {
			w->failures++;
			continue;
		}
		w->committed++;
		/* Visible to a reader begun after the commit returned. */
		if (meta_kv_begin(w->kv, true, &t) != 0) {
			w->failures++;
			continue;
		}
		if (meta_kv_get(t, k, strlen(k), &v, &vlen) != 0)
			w->failures++;
		meta_kv_abort(t);
	}
	return NULL;
}

static int
count_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	(*(unsigned *)arg)++;
	return 0;
}

int
main(void)
{
	char dir[] = "/tmp/meta-kv-group-XXXXXX";
	struct meta_kv *kv;
	struct meta_kv_txn *t;
	struct worker w[THREADS];
	pthread_t th[THREADS];
	unsigned committed = 0, failures = 0, keys = 0, lost = 0;
	char *err = NULL, *url, *cmd, k[32];
	const void *v;
	size_t vlen;

	CHECK_FATAL(mkdtemp(dir) != NULL, "mkdtemp");
	url = tl_asprintf("lmdb://%s/db?mapsize=64M", dir);
	CHECK_FATAL(meta_kv_open(url, &kv, &err) == 0, "open (%s)",
		    err ? err : "");
	for (unsigned i = 0; i < THREADS; i++) {
		w[i] = (struct worker){kv, i, 0, 0};
		pthread_create(&th[i], NULL, worker_run, &w[i]);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		committed += w[i].committed;
		failures += w[i].failures;
	}
	CHECK_EQ(failures, 0, "no call failed");
	CHECK_EQ(committed, THREADS * (TXNS - (TXNS + 2) / 3),
		 "every transaction not aborted committed");
	CHECK_FATAL(meta_kv_begin(kv, true, &t) == 0, "read transaction");
	CHECK(meta_kv_scan(t, "t", 1, "u", 1, count_cb, &keys) == 0, "scan");
	CHECK_EQ(keys, 2 * committed,
		 "both keys of each commit, none of "
		 "an abort");
	for (unsigned i = 0; i < THREADS; i++)
		for (unsigned j = 0; j < TXNS; j++) {
			key_of(k, i, j, 'a');
			if ((meta_kv_get(t, k, strlen(k), &v, &vlen) == 0) !=
			    (j % 3 != 0))
				lost++;
		}
	CHECK_EQ(lost, 0, "exactly the committed transactions are there");
	meta_kv_abort(t);
	meta_kv_close(kv);
	cmd = tl_asprintf("rm -rf '%s'", dir);
	CHECK(system(cmd) == 0, "remove %s", dir);
	free(cmd);
	free(url);
	return tap_done();
}
