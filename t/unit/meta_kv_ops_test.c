/*
 * meta_kv_ops_test.c - the operations of kv.h on the LMDB engine: get,
 * put, del, ordered and bounded scans, commutative adds (missing key as
 * zeros, a zero sum deletes, a wrong-sized value is -EIO, the
 * transaction sees its own sum), peek, abort leaving nothing behind.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/tl.h"
#include "meta/kv.h"
#include "t/unit/tap.h"

struct collect {
	char keys[16][16];
	unsigned n, stop;
};

static int
collect_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct collect *c = arg;

	if (c->n < 16 && klen < 16) {
		memcpy(c->keys[c->n], k, klen);
		c->keys[c->n][klen] = 0;
	}
	c->n++;
	return c->stop && c->n >= c->stop;
}

static uint64_t
get_u64(struct meta_kv_txn *t, const char *k, unsigned field, int *rcp)
{
	const void *v;
	size_t vlen;
	int rc = meta_kv_get(t, k, strlen(k), &v, &vlen);

	*rcp = rc;
	if (rc || vlen < 8 * (field + 1))
		return 0;
	return tl_get_be64((const uint8_t *)v + 8 * field);
}

int
main(void)
{
	char dir[] = "/tmp/meta-kv-ops-XXXXXX", *cmd;
	struct meta_kv_txn *t;
	struct meta_kv *kv;
	struct collect c;
	const void *v;
	size_t vlen;
	int64_t d2[2] = {5, 1}, m2[2] = {-5, -1}, one = 1;
	char *err = NULL;
	int rc;

	CHECK_FATAL(mkdtemp(dir) != NULL, "mkdtemp");
	rc = meta_kv_lmdb_open(dir, 64 << 20, 0, 0, &kv, &err);
	CHECK_FATAL(rc == 0, "open lmdb (%s)", err ? err : "");

	CHECK_FATAL(meta_kv_begin(kv, false, &t) == 0, "begin");
	CHECK(meta_kv_put(t, "a", 1, "1", 1) == 0, "put a");
	CHECK(meta_kv_put(t, "b", 1, "2", 1) == 0, "put b");
	CHECK(meta_kv_put(t, "c", 1, "3", 1) == 0, "put c");
	CHECK(meta_kv_put(t, "wrong", 5, "123", 3) == 0, "put a 3-byte value");
	CHECK(meta_kv_add(t, "u", 1, d2, 2) == 0, "add to a missing key");
	CHECK_EQ(get_u64(t, "u", 0, &rc), 5, "the transaction sees the sum");
	CHECK_EQ(get_u64(t, "u", 1, &rc), 1, "of every field");
	CHECK(meta_kv_add(t, "wrong", 5, &one, 1) == -EIO,
	      "add to a value of another size: -EIO");
	CHECK(meta_kv_add(t, "u", 1, d2, 0) == -EINVAL, "add of no field");
	CHECK(meta_kv_commit(t) == 0, "commit");

	CHECK_FATAL(meta_kv_begin(kv, false, &t) == 0, "begin");
	CHECK(meta_kv_add(t, "u", 1, d2, 2) == 0, "add again");
	CHECK(meta_kv_peek(t, "u", 1, &v, &vlen) == 0 && vlen == 16 &&
		      tl_get_be64(v) == 10,
	      "peek sees the sum too");
	CHECK(meta_kv_del(t, "b", 1) == 0, "delete b");
	CHECK(meta_kv_del(t, "zz", 2) == 0, "delete a missing key: 0");
	memset(&c, 0, sizeof(c));
	CHECK(meta_kv_scan(t, "a", 1, "d", 1, collect_cb, &c) == 0 &&
		      c.n == 2 && !strcmp(c.keys[0], "a") &&
		      !strcmp(c.keys[1], "c"),
	      "scan [a, d) in order without the deleted key");
	memset(&c, 0, sizeof(c));
	c.stop = 1;
	CHECK(meta_kv_scan(t, "", 0, NULL, 0, collect_cb, &c) == 0 &&
		      c.n == 1 && !strcmp(c.keys[0], "a"),
	      "a scan stops when the callback says so");
	CHECK(meta_kv_commit(t) == 0, "commit");

	CHECK_FATAL(meta_kv_begin(kv, false, &t) == 0, "begin");
	CHECK(meta_kv_add(t, "u", 1, m2, 2) == 0, "subtract");
	CHECK(meta_kv_add(t, "u", 1, m2, 2) == 0, "subtract to zero");
	CHECK(meta_kv_get(t, "u", 1, &v, &vlen) == -ENOENT,
	      "a zero sum deletes the key");
	CHECK(meta_kv_put(t, "x", 1, "x", 1) == 0, "put x");
	meta_kv_abort(t);

	CHECK_FATAL(meta_kv_begin(kv, true, &t) == 0, "begin read-only");
	CHECK_EQ(get_u64(t, "u", 0, &rc), 10, "aborted adds left nothing");
	CHECK(meta_kv_get(t, "x", 1, &v, &vlen) == -ENOENT,
	      "aborted put left nothing");
	CHECK(meta_kv_get(t, "b", 1, &v, &vlen) == -ENOENT, "b deleted");
	meta_kv_abort(t);

	meta_kv_close(kv);
	cmd = tl_asprintf("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	free(cmd);
	return tap_done();
}
