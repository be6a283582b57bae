/*
 * billing.c - what the billing lines of the lease holder need from the
 * volume's metadata (meta.h, "billing"): the bytes read and written
 * through NFS per export since the last billing line, summed over every
 * gateway of the volume, and when the last lines were written.
 *
 *   <vol>\0X<export path>   read bytes be64, written bytes be64: every
 *                           gateway adds what its clients moved since
 *                           its last flush (commutative adds: gateways
 *                           never conflict); the lease holder subtracts
 *                           what it billed, so the record holds what
 *                           no line has counted yet (a record back at
 *                           zero goes: meta_kv_add)
 *   <vol>\0Y                the last billing: time be64 (ns, the end of
 *                           the period billed)
 *
 * An export path longer than fits in a key is cut to 200 bytes followed
 * by '#' and 16 hex digits of a hash of the whole path.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta-internal.h"

#define IO_PATH_KEY_MAX 200

static void
key_io(struct meta *m, struct meta_key *k, const char *path)
{
	size_t n = strlen(path);

	meta_key_tag(m, k, 'X');
	if (n > IO_PATH_KEY_MAX + 17) {
		uint64_t h = 1469598103934665603ULL; /* FNV-1a */

		for (size_t i = 0; i < n; i++)
			h = (h ^ (uint8_t)path[i]) * 1099511628211ULL;
		memcpy(k->b + k->len, path, IO_PATH_KEY_MAX);
		k->len += IO_PATH_KEY_MAX;
		k->len += (size_t)snprintf((char *)k->b + k->len, 18,
					   "#%016llx", (unsigned long long)h);
		return;
	}
	memcpy(k->b + k->len, path, n);
	k->len += n;
}

struct io_add_op {
	const struct meta_io *v;
	size_t n;
};

static int
add_txn(struct mtxn *t, void *arg)
{
	const struct io_add_op *o = arg;
	struct meta_key k;
	int rc = 0;

	/* Lost in a crash: those bytes go unbilled, as would the counts in
	 * the gateway's memory. */
	t->lazy = true;
	for (size_t i = 0; rc == 0 && i < o->n; i++) {
		int64_t d[2] = {(int64_t)o->v[i].read,
				(int64_t)o->v[i].written};

		if (d[0] == 0 && d[1] == 0)
			continue;
		key_io(t->m, &k, o->v[i].path);
		rc = meta_kv_add(t->kv, k.b, k.len, d, 2);
	}
	return rc;
}

int
meta_io_add(struct meta *m, const struct meta_io *v, size_t n)
{
	struct io_add_op o = {v, n};

	return meta_txn_run(m, false, add_txn, &o);
}

struct io_scan {
	struct meta_io *v;
	size_t n, cap, pfx;
};

static int
io_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct io_scan *s = arg;
	struct meta_io *e;
	size_t plen = klen - s->pfx - 1;

	if (vlen != 16 || klen <= s->pfx + 1)
		return 0;
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 16;
		s->v = tl_realloc(s->v, s->cap * sizeof(*s->v));
	}
	e = &s->v[s->n++];
	memset(e, 0, sizeof(*e));
	if (plen > META_IO_PATH_MAX)
		plen = META_IO_PATH_MAX;
	memcpy(e->path, (const uint8_t *)key + s->pfx + 1, plen);
	e->path[plen] = '\0';
	e->read = tl_get_be64(val);
	e->written = tl_get_be64((const uint8_t *)val + 8);
	return 0;
}

/* The X records and Y in t: *out (caller frees), *last. */
static int
io_read(struct mtxn *t, struct meta_io **out, size_t *n, uint64_t *last)
{
	struct io_scan s = {NULL, 0, 0, t->m->pfxlen};
	struct meta_key b, e;
	const void *v;
	size_t vlen;
	int rc;

	*out = NULL;
	*n = 0;
	*last = 0;
	meta_key_tag(t->m, &b, 'X');
	meta_key_tag(t->m, &e, 'Y');
	rc = meta_kv_scan(t->kv, b.b, b.len, e.b, e.len, io_cb, &s);
	if (rc == 0) {
		rc = meta_kv_get(t->kv, e.b, e.len, &v, &vlen);
		if (rc == 0 && vlen == 8)
			*last = tl_get_be64(v);
		else if (rc == 0 || rc == -ENOENT)
			rc = 0;
	}
	if (rc) {
		free(s.v);
		return rc;
	}
	*out = s.v;
	*n = s.n;
	return 0;
}

int
meta_io_list(struct meta *m, struct meta_io **out, size_t *n, uint64_t *last_ns)
{
	struct mtxn t;
	uint64_t last;
	int rc;

	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	rc = io_read(&t, out, n, &last);
	if (last_ns)
		*last_ns = last;
	return meta_txn_end(&t, rc);
}

struct take_op {
	uint64_t now_ns;
	struct meta_io **out;
	size_t *n;
	uint64_t *last_ns;
};

static int
take_txn(struct mtxn *t, void *arg)
{
	const struct take_op *o = arg;
	struct meta_key k;
	uint8_t b[8];
	int rc;

	free(*o->out); /* a previous attempt's */
	rc = io_read(t, o->out, o->n, o->last_ns);
	if (rc == 0 && *o->last_ns >= o->now_ns)
		rc = -EALREADY; /* billed already, by us or another */
	for (size_t i = 0; rc == 0 && i < *o->n; i++) {
		int64_t d[2] = {-(int64_t)(*o->out)[i].read,
				-(int64_t)(*o->out)[i].written};

		key_io(t->m, &k, (*o->out)[i].path);
		rc = meta_kv_add(t->kv, k.b, k.len, d, 2);
	}
	meta_key_tag(t->m, &k, 'Y');
	tl_put_be64(b, o->now_ns);
	if (rc == 0)
		rc = meta_kv_put(t->kv, k.b, k.len, b, 8);
	return rc;
}

int
meta_billing_take(struct meta *m, uint64_t now_ns, struct meta_io **out,
		  size_t *n, uint64_t *last_ns)
{
	struct take_op o = {now_ns, out, n, last_ns};
	int rc;

	*out = NULL;
	*n = 0;
	rc = meta_txn_run(m, false, take_txn, &o);
	if (rc) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}
