/*
 * kv_raft.c - the raft:// engine: transactions over a local LMDB replica
 * that Raft keeps identical on every node of a group.
 *
 * A transaction first waits until this node has applied everything the
 * group had committed when it began (read-index, meta_kvr_node_read_barrier:
 * one round trip to the leader, shared by every transaction that begins
 * meanwhile), then reads an LMDB snapshot of the replica at its applied
 * index i.  It records what it read (each get as a point, each scan as
 * the range it actually consumed) and buffers its writes: puts, deletes
 * and commutative adds, which later gets and scans of the same
 * transaction see (read-your-writes).  Commit sends {i, reads, writes} to
 * the leader, which checks the reads against every write committed or
 * queued after i; a transaction that read something another one changed
 * gets -EAGAIN, as kv.h promises, and the file-system layer retries.
 * Otherwise its writes join the batch the leader forms into one Raft
 * entry, and commit returns once this node has applied that entry.  A
 * read-only transaction needs no commit.
 *
 * URLs:
 *   raft:///DIR?id=N&address=HOST:PORT&peers=ID@HOST:PORT,...&secret=FILE
 *        [&listen=ADDR:PORT][&bootstrap=1][&mapsize=SIZE][&election=MS]
 *        [&heartbeat=MS][&snapshot=N][&trailing=N][&timeout=MS]
 *        [&leases=0|1]
 *     a node of the group: tesserad builds this URL from tessera.conf
 *     (raft_* options); DIR holds the replica, the Raft log and the
 *     control socket.
 *   raft:///DIR
 *     a client of the node running on this machine (tessera's
 *     commands): reads from the node's replica, commits through the
 *     node's control socket.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "meta/kv_raft-internal.h"
#include "meta/kv_raft_node.h"

/* ---- the write buffer ------------------------------------------------------
 * One entry per key (the last write wins; adds fold into what is there),
 * found by a hash of the key, sorted on demand for scans and commit. */

struct wb_ent {
	struct tl_hnode hn; /* in wbuf.tab, by key_hash */
	uint8_t op;
	uint16_t klen;
	uint32_t vlen;
	uint8_t *k; /* key, then value: one allocation */
};

struct wbuf {
	struct wb_ent *e;
	size_t n, cap;
	struct tl_htab tab;
	uint32_t *order; /* entries by key, valid when sorted */
	bool sorted;
};

static uint64_t
key_hash(const void *k, size_t len)
{
	const uint8_t *p = k;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static struct wb_ent *
wb_find(struct wbuf *w, const void *k, size_t klen)
{
	struct tl_hnode *n;

	TL_HTAB_FOREACH_HASH(&w->tab, n, key_hash(k, klen))
	{
		struct wb_ent *e = TL_CONTAINER_OF(n, struct wb_ent, hn);

		if (e->klen == klen && memcmp(e->k, k, klen) == 0)
			return e;
	}
	return NULL;
}

/* The entry of key k, created (op 0) if missing. */
static struct wb_ent *
wb_get(struct wbuf *w, const void *k, size_t klen)
{
	struct wb_ent *e = wb_find(w, k, klen);

	if (e)
		return e;
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 8;
		w->e = tl_realloc(w->e, w->cap * sizeof(*w->e));
		/* the entries moved: index them again (each keeps its hash) */
		tl_htab_fini(&w->tab);
		tl_htab_init(&w->tab, w->cap);
		for (size_t i = 0; i < w->n; i++)
			tl_htab_add(&w->tab, &w->e[i].hn, w->e[i].hn.hash);
	}
	e = &w->e[w->n++];
	memset(e, 0, sizeof(*e));
	e->klen = (uint16_t)klen;
	e->k = tl_memdup(k, klen);
	tl_htab_add(&w->tab, &e->hn, key_hash(k, klen));
	w->sorted = false;
	return e;
}

static void
wb_set(struct wb_ent *e, uint8_t op, const void *v, size_t vlen)
{
	e->k = tl_realloc(e->k, e->klen + vlen);
	if (vlen)
		memcpy(e->k + e->klen, v, vlen);
	e->op = op;
	e->vlen = (uint32_t)vlen;
}

static const struct wbuf *sort_w;

static int
wb_cmp(const void *a, const void *b)
{
	const struct wb_ent *x = &sort_w->e[*(const uint32_t *)a];
	const struct wb_ent *y = &sort_w->e[*(const uint32_t *)b];

	return meta_kvr_keycmp(x->k, x->klen, y->k, y->klen);
}

static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;

static void
wb_sort(struct wbuf *w)
{
	if (w->sorted)
		return;
	w->order = tl_realloc(w->order, (w->n + 1) * sizeof(*w->order));
	for (size_t i = 0; i < w->n; i++)
		w->order[i] = (uint32_t)i;
	/* qsort has no context argument; sorts are short and rare. */
	pthread_mutex_lock(&sort_lock);
	sort_w = w;
	qsort(w->order, w->n, sizeof(*w->order), wb_cmp);
	pthread_mutex_unlock(&sort_lock);
	w->sorted = true;
}

/* First position in order whose key is >= k. */
static size_t
wb_lower(const struct wbuf *w, const void *k, size_t klen)
{
	size_t lo = 0, hi = w->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct wb_ent *e = &w->e[w->order[mid]];

		if (meta_kvr_keycmp(e->k, e->klen, k, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void
wb_free(struct wbuf *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->e[i].k);
	free(w->e);
	tl_htab_fini(&w->tab);
	free(w->order);
}

/* ---- transactions -------------------------------------------------------- */

struct meta_kvr_txn {
	struct meta_kv_txn base;
	bool rdonly;
	bool held;                /* node mode: holds the replica */
	struct meta_kv_txn *snap; /* LMDB read transaction */
	uint64_t index;           /* applied index of the snapshot */
	struct wbuf w;
	struct tl_buf reads;
	uint32_t nreads;
	uint8_t sum[8 * META_KV_ADD_MAX];  /* a get's sum of an add */
	uint8_t osum[8 * META_KV_ADD_MAX]; /* the same over the overlay */
	/* the overlay: this node's commits not applied in snap, oldest
	 * first; the ones this transaction read from are its deps */
	struct meta_kvr_wset **ov;
	size_t nov;
	uint64_t *deps;
	size_t ndeps, capdeps;
};

static void
dep_add(struct meta_kvr_txn *t, uint64_t seq)
{
	for (size_t i = 0; i < t->ndeps; i++)
		if (t->deps[i] == seq)
			return;
	if (t->ndeps == t->capdeps) {
		t->capdeps = t->capdeps ? 2 * t->capdeps : 8;
		t->deps = tl_realloc(t->deps, t->capdeps * sizeof(*t->deps));
	}
	t->deps[t->ndeps++] = seq;
}

static void
record_read(struct meta_kvr_txn *t, const void *s, size_t slen, const void *e,
	    size_t elen, uint8_t flags)
{
	uint8_t h[3];

	if (t->rdonly)
		return;
	h[0] = flags;
	tl_put_be16(h + 1, (uint16_t)slen);
	tl_buf_append(&t->reads, h, 3);
	tl_buf_append(&t->reads, s, slen);
	tl_put_be16(h, (uint16_t)elen);
	tl_buf_append(&t->reads, h, 2);
	tl_buf_append(&t->reads, e, elen);
	t->nreads++;
}

static void
txn_free(struct meta_kvr_txn *t)
{
	struct meta_kvr_kv *k = (struct meta_kvr_kv *)t->base.kv;

	if (t->snap)
		meta_kv_abort(t->snap);
	if (t->held)
		meta_kvr_node_release(k->node);
	wb_free(&t->w);
	tl_buf_free(&t->reads);
	for (size_t i = 0; i < t->nov; i++)
		meta_kvr_wset_unref(t->ov[i]);
	free(t->ov);
	free(t->deps);
	free(t);
}

static uint64_t
snapshot_index(struct meta_kv_txn *snap)
{
	const void *v;
	size_t vlen;

	if (meta_kv_get(snap, KVR_KEY_APPLIED, KVR_KEYLEN(KVR_KEY_APPLIED), &v,
			&vlen) != 0 ||
	    vlen != 8)
		return 0;
	return tl_get_be64(v);
}

/* Client mode: one request to the node's control socket, one reply. */
static int ctl_call(struct meta_kvr_kv *k, uint8_t type, const void *p,
		    size_t len, struct tl_buf *reply);

static int
rft_begin(struct meta_kv *kv, bool rdonly, struct meta_kv_txn **out)
{
	struct meta_kvr_kv *k = (struct meta_kvr_kv *)kv;
	struct meta_kvr_txn *t;
	int rc;

	*out = NULL;
	if (k->rdonly && !rdonly)
		return -EROFS;
	if (k->node)
		rc = meta_kvr_node_read_barrier(k->node);
	else
		rc = ctl_call(k, 'R', NULL, 0, NULL);
	if (rc)
		return rc;
	t = tl_calloc(1, sizeof(*t));
	t->base.kv = kv;
	t->rdonly = rdonly;
	if (k->node) {
		meta_kvr_node_hold(k->node);
		t->held = true;
	}
	if (k->node && !rdonly)
		rc = meta_kvr_node_overlay(k->node, &t->snap, &t->ov, &t->nov);
	else
		rc = meta_kv_begin(k->node ? meta_kvr_node_replica(k->node)
					   : k->replica,
				   true, &t->snap);
	if (rc) {
		txn_free(t);
		return rc;
	}
	t->index = snapshot_index(t->snap);
	/* what it shows, every follower lease holder shows */
	if (k->node) {
		rc = meta_kvr_node_visible(
			k->node, t->index,
			tl_mono_ns() +
				(uint64_t)k->node->o.timeout_ms * 1000000ULL);
		if (rc) {
			txn_free(t);
			return rc;
		}
	}
	/* what the snapshot already holds is no overlay */
	{
		size_t j = 0;

		for (size_t i = 0; i < t->nov; i++) {
			if (meta_kvr_session_applied(
				    t->snap, meta_kvr_node_incarnation(k->node),
				    t->ov[i]->seq) != 0)
				meta_kvr_wset_unref(t->ov[i]);
			else
				t->ov[j++] = t->ov[i];
		}
		t->nov = j;
	}
	*out = &t->base;
	return 0;
}

/* The value of an add entry over the snapshot's value. */
static int
add_value(struct meta_kvr_txn *t, const struct wb_ent *e, const void *base,
	  size_t blen, bool found, const void **val, size_t *vlen)
{
	int64_t d[META_KV_ADD_MAX];
	unsigned n = e->vlen / 8;
	int rc;

	for (unsigned i = 0; i < n; i++)
		d[i] = (int64_t)tl_get_be64(e->k + e->klen + 8 * i);
	rc = meta_kv_add_sum(found ? base : NULL, blen, d, n, t->sum);
	if (rc < 0)
		return rc;
	if (rc == 1)
		return -ENOENT;
	*val = t->sum;
	*vlen = 8 * (size_t)n;
	return 0;
}

/* The value of key before this transaction's own writes: the newest
 * write of the overlay (adds summed on top of what is below them), else
 * the snapshot.  A write transaction that uses an overlay write depends
 * on that commit (unless it only peeks). */
static int
base_read(struct meta_kvr_txn *t, const void *key, size_t klen,
	  const void **val, size_t *vlen, bool peek)
{
	int64_t acc[META_KV_ADD_MAX];
	unsigned nacc = 0;
	const void *b = NULL;
	size_t blen = 0;
	int rc = -ENOENT;
	size_t i;

	/* every overlay commit that writes key goes before this one: the
	 * leader finds them all after the snapshot, the shadowed ones too */
	for (i = 0; i < t->nov && !peek; i++) {
		struct meta_kvr_wr w;

		if (meta_kvr_wset_find(t->ov[i], key, klen, &w) == 0)
			dep_add(t, t->ov[i]->seq);
	}
	for (i = t->nov; i-- > 0;) {
		struct meta_kvr_wr w;

		if (meta_kvr_wset_find(t->ov[i], key, klen, &w) != 0)
			continue;
		if (w.op == KVR_ADD) {
			if (nacc && nacc != w.vlen / 8)
				return -EIO;
			if (!nacc)
				memset(acc, 0, sizeof(acc));
			nacc = w.vlen / 8;
			for (unsigned f = 0; f < nacc; f++)
				acc[f] += (int64_t)tl_get_be64(w.v + 8 * f);
			continue;
		}
		if (w.op == KVR_PUT) {
			b = w.v;
			blen = w.vlen;
			rc = 0;
		}
		break;
	}
	if (i == (size_t)-1) {
		rc = meta_kv_get(t->snap, key, klen, &b, &blen);
		if (rc && rc != -ENOENT)
			return rc;
	}
	if (nacc) {
		rc = meta_kv_add_sum(rc == 0 ? b : NULL, blen, acc, nacc,
				     t->osum);
		if (rc < 0)
			return rc;
		if (rc == 1)
			return -ENOENT;
		b = t->osum;
		blen = 8 * (size_t)nacc;
		rc = 0;
	}
	*val = b;
	*vlen = blen;
	return rc;
}

static int
txn_read(struct meta_kvr_txn *t, const void *key, size_t klen, const void **val,
	 size_t *vlen, bool peek)
{
	struct wb_ent *e;
	const void *b = NULL;
	size_t blen = 0;
	int rc;

	e = wb_find(&t->w, key, klen);
	if (e && e->op == KVR_PUT) {
		*val = e->k + e->klen;
		*vlen = e->vlen;
		return 0;
	}
	if (e && e->op == KVR_DEL)
		return -ENOENT;
	if (!peek)
		record_read(t, key, klen, key, klen, KVR_R_INCL);
	rc = base_read(t, key, klen, &b, &blen, peek);
	if (rc && rc != -ENOENT)
		return rc;
	if (e && e->op == KVR_ADD)
		return add_value(t, e, b, blen, rc == 0, val, vlen);
	*val = b;
	*vlen = blen;
	return rc;
}

static int
rft_get(struct meta_kv_txn *bt, const void *key, size_t klen, const void **val,
	size_t *vlen)
{
	return txn_read((struct meta_kvr_txn *)bt, key, klen, val, vlen, false);
}

static int
rft_peek(struct meta_kv_txn *bt, const void *key, size_t klen, const void **val,
	 size_t *vlen)
{
	return txn_read((struct meta_kvr_txn *)bt, key, klen, val, vlen, true);
}

static int
write_check(struct meta_kvr_txn *t, size_t klen, size_t vlen)
{
	if (t->rdonly)
		return -EROFS;
	if (klen == 0 || klen > KVR_KEY_MAX || vlen > KVR_VAL_MAX)
		return -EINVAL;
	return 0;
}

static int
rft_put(struct meta_kv_txn *bt, const void *key, size_t klen, const void *val,
	size_t vlen)
{
	struct meta_kvr_txn *t = (struct meta_kvr_txn *)bt;
	int rc = write_check(t, klen, vlen);

	if (rc == 0)
		wb_set(wb_get(&t->w, key, klen), KVR_PUT, val, vlen);
	return rc;
}

static int
rft_del(struct meta_kv_txn *bt, const void *key, size_t klen)
{
	struct meta_kvr_txn *t = (struct meta_kvr_txn *)bt;
	int rc = write_check(t, klen, 0);

	if (rc == 0)
		wb_set(wb_get(&t->w, key, klen), KVR_DEL, NULL, 0);
	return rc;
}

/* Fold an add into the buffer's entry of key. */
static int
wb_add(struct wbuf *w, const void *key, size_t klen, const int64_t *delta,
       unsigned n)
{
	uint8_t v[8 * META_KV_ADD_MAX];
	int64_t d[META_KV_ADD_MAX];
	struct wb_ent *e;
	int rc;

	e = wb_get(w, key, klen);
	switch (e->op) {
	case KVR_PUT: /* fold into the value written */
		rc = meta_kv_add_sum(e->k + e->klen, e->vlen, delta, n, v);
		if (rc < 0)
			return rc;
		if (rc == 1)
			wb_set(e, KVR_DEL, NULL, 0);
		else
			wb_set(e, KVR_PUT, v, 8 * (size_t)n);
		return 0;
	case KVR_DEL: /* deleted: the add starts from zeros */
		rc = meta_kv_add_sum(NULL, 0, delta, n, v);
		if (rc == 1)
			wb_set(e, KVR_DEL, NULL, 0);
		else
			wb_set(e, KVR_PUT, v, 8 * (size_t)n);
		return 0;
	case KVR_ADD:
		if (e->vlen != 8 * n)
			return -EIO;
		for (unsigned i = 0; i < n; i++)
			d[i] = (int64_t)tl_get_be64(e->k + e->klen + 8 * i) +
			       delta[i];
		break;
	default:
		memcpy(d, delta, n * sizeof(*d));
		break;
	}
	for (unsigned i = 0; i < n; i++)
		tl_put_be64(v + 8 * i, (uint64_t)d[i]);
	wb_set(e, KVR_ADD, v, 8 * (size_t)n);
	return 0;
}

static int
rft_add(struct meta_kv_txn *bt, const void *key, size_t klen,
	const int64_t *delta, unsigned n)
{
	struct meta_kvr_txn *t = (struct meta_kvr_txn *)bt;
	int rc = write_check(t, klen, 8 * n);

	return rc ? rc : wb_add(&t->w, key, klen, delta, n);
}

/* Apply one write of a record or buffer entry to buffer w. */
static int
wb_apply(struct wbuf *w, uint8_t op, const void *k, size_t klen, const void *v,
	 size_t vlen)
{
	int64_t d[META_KV_ADD_MAX];

	if (op == KVR_PUT || op == KVR_DEL) {
		wb_set(wb_get(w, k, klen), op, v, vlen);
		return 0;
	}
	for (size_t f = 0; f < vlen / 8; f++)
		d[f] = (int64_t)tl_get_be64((const uint8_t *)v + 8 * f);
	return wb_add(w, k, klen, d, (unsigned)(vlen / 8));
}

/* A scan merges the snapshot with the buffered writes in its range. */
struct merge {
	struct meta_kvr_txn *t;
	const struct wbuf *w; /* the writes merged with the snapshot */
	meta_kv_scan_cb cb;
	void *arg;
	const void *end;
	size_t elen;
	size_t pos; /* next buffered entry (in order) */
	int urc;    /* what the caller's callback returned */
	int err;
	struct tl_buf last; /* the last key delivered */
};

static int
deliver(struct merge *m, const void *k, size_t klen, const void *v, size_t vlen)
{
	tl_buf_reset(&m->last);
	tl_buf_append(&m->last, k, klen);
	m->urc = m->cb(m->arg, k, klen, v, vlen);
	return m->urc != 0;
}

static bool
before_end(const struct merge *m, const void *k, size_t klen)
{
	return m->end == NULL || meta_kvr_keycmp(k, klen, m->end, m->elen) < 0;
}

/* Deliver a buffered entry standing alone (no snapshot value). */
static int
deliver_buffered(struct merge *m, const struct wb_ent *e)
{
	const void *v;
	size_t vlen;
	int rc;

	if (e->op == KVR_DEL)
		return 0;
	if (e->op == KVR_PUT)
		return deliver(m, e->k, e->klen, e->k + e->klen, e->vlen);
	rc = add_value(m->t, e, NULL, 0, false, &v, &vlen);
	if (rc == -ENOENT)
		return 0;
	return deliver(m, e->k, e->klen, v, vlen);
}

static int
merge_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct merge *m = arg;
	const struct wbuf *w = m->w;
	const struct wb_ent *e;
	const void *sv;
	size_t slen;
	int c, rc;

	while (m->pos < w->n) {
		e = &w->e[w->order[m->pos]];
		c = meta_kvr_keycmp(e->k, e->klen, k, klen);
		if (c > 0)
			break;
		m->pos++;
		if (c < 0) {
			if (deliver_buffered(m, e))
				return 1;
			continue;
		}
		if (e->op == KVR_DEL)
			return 0;
		if (e->op == KVR_PUT)
			return deliver(m, k, klen, e->k + e->klen, e->vlen);
		rc = add_value(m->t, e, v, vlen, true, &sv, &slen);
		if (rc == -ENOENT)
			return 0;
		if (rc) {
			m->err = rc;
			return 1;
		}
		return deliver(m, k, klen, sv, slen);
	}
	return deliver(m, k, klen, v, vlen);
}

static int
rft_scan(struct meta_kv_txn *bt, const void *start, size_t slen,
	 const void *end, size_t elen, meta_kv_scan_cb cb, void *arg)
{
	struct meta_kvr_txn *t = (struct meta_kvr_txn *)bt;
	struct merge m = {t, &t->w, cb, arg, end, elen, 0, 0, 0, TL_BUF_INIT};
	struct wbuf view;
	const struct wb_ent *e;
	bool use_view = false;
	int rc = 0;

	/* Commits of this node not applied yet, in the range: the scan sees
	 * them under its own writes (a view built for it). */
	memset(&view, 0, sizeof(view));
	for (size_t i = 0; i < t->nov && rc == 0; i++) {
		const struct meta_kvr_wset *o = t->ov[i];

		if (!meta_kvr_wset_hits(o, start, slen, end, elen))
			continue;
		use_view = true;
		dep_add(t, o->seq);
		for (uint32_t j = 0; j < o->nw && rc == 0; j++) {
			struct meta_kvr_rdr r;
			struct meta_kvr_wr w;

			meta_kvr_rdr_init(&r, o->rec + o->woff[j],
					  o->len - o->woff[j]);
			meta_kvr_get_write(&r, &w);
			rc = wb_apply(&view, w.op, w.k, w.klen, w.v, w.vlen);
		}
	}
	for (size_t i = 0; use_view && rc == 0 && i < t->w.n; i++) {
		const struct wb_ent *o = &t->w.e[i];

		rc = wb_apply(&view, o->op, o->k, o->klen, o->k + o->klen,
			      o->vlen);
	}
	if (rc) {
		wb_free(&view);
		return rc;
	}
	if (use_view)
		m.w = &view;
	wb_sort((struct wbuf *)m.w);
	m.pos = wb_lower(m.w, start, slen);
	rc = meta_kv_scan(t->snap, start, slen, end, elen, merge_cb, &m);
	while (rc == 0 && m.err == 0 && m.urc == 0 && m.pos < m.w->n) {
		e = &m.w->e[m.w->order[m.pos++]];
		if (!before_end(&m, e->k, e->klen))
			break;
		if (deliver_buffered(&m, e))
			break;
	}
	wb_free(&view);
	if (rc == 0)
		rc = m.err;
	if (rc == 0 && m.urc)
		/* stopped: what was read is [start, last delivered] */
		record_read(t, start, slen, m.last.data, m.last.len,
			    KVR_R_INCL);
	else if (rc == 0)
		record_read(t, start, slen, end, end ? elen : 0,
			    end ? 0 : KVR_R_OPEN);
	tl_buf_free(&m.last);
	if (rc)
		return rc;
	return m.urc < 0 ? m.urc : 0;
}

/* The record of kv_raft-internal.h. */
static void
txn_record(struct meta_kvr_txn *t, uint64_t origin, uint64_t seq,
	   struct tl_buf *b)
{
	tl_buf_append_be64(b, origin);
	tl_buf_append_be64(b, seq);
	tl_buf_append_be64(b, t->index);
	tl_buf_append_be32(b, (uint32_t)t->ndeps);
	for (size_t i = 0; i < t->ndeps; i++)
		tl_buf_append_be64(b, t->deps[i]);
	tl_buf_append_be32(b, t->nreads);
	tl_buf_append(b, t->reads.data, t->reads.len);
	tl_buf_append_be32(b, (uint32_t)t->w.n);
	wb_sort(&t->w);
	for (size_t i = 0; i < t->w.n; i++) {
		const struct wb_ent *e = &t->w.e[t->w.order[i]];

		meta_kvr_put_write(b, e->op, e->k, e->klen, e->k + e->klen,
				   e->vlen);
	}
}

static int
rft_commit(struct meta_kv_txn *bt)
{
	struct meta_kvr_txn *t = (struct meta_kvr_txn *)bt;
	struct meta_kvr_kv *k = (struct meta_kvr_kv *)bt->kv;
	struct tl_buf rec = TL_BUF_INIT;
	struct meta_kvr_result res;
	int rc;

	if (t->rdonly || (t->w.n == 0 && t->nreads == 0)) {
		txn_free(t);
		return 0;
	}
	/* The reads are done: let a restore swap the replica meanwhile. */
	meta_kv_abort(t->snap);
	t->snap = NULL;
	if (t->held) {
		meta_kvr_node_release(k->node);
		t->held = false;
	}
	if (k->node) {
		txn_record(t, meta_kvr_node_incarnation(k->node),
			   meta_kvr_node_next_seq(k->node), &rec);
		rc = meta_kvr_node_commit(k->node, rec.data, rec.len, &res);
	} else {
		/* the node assigns origin and sequence */
		txn_record(t, 0, 0, &rec);
		rc = ctl_call(k, 'C', rec.data, rec.len, NULL);
	}
	tl_buf_free(&rec);
	txn_free(t);
	return rc;
}

static void
rft_abort(struct meta_kv_txn *bt)
{
	txn_free((struct meta_kvr_txn *)bt);
}

/* ---- client mode: the control socket ------------------------------------- */

/* Messages: type u8, length u32, payload; the reply: status i32 (a
 * negative errno or 0), length u32, payload. */
int
meta_kvr_ctl_request(int fd, uint8_t type, const void *p, size_t len,
		     struct tl_buf *reply)
{
	uint8_t h[8];
	int32_t status;
	uint32_t n;
	int rc;

	h[0] = type;
	tl_put_be32(h + 1, (uint32_t)len);
	rc = tl_io_full(fd, h, 5, TL_IO_SEND);
	if (rc == 0 && len)
		rc = tl_io_full(fd, (void *)p, len, TL_IO_SEND);
	if (rc == 0)
		rc = tl_io_full(fd, h, 8, TL_IO_READ);
	if (rc)
		return rc == -ECONNRESET ? -EIO : rc;
	status = (int32_t)tl_get_be32(h);
	n = tl_get_be32(h + 4);
	if (n > KVR_FRAME_MAX)
		return -EIO;
	if (reply) {
		tl_buf_reset(reply);
		tl_buf_reserve(reply, n);
		rc = tl_io_full(fd, reply->data, n, TL_IO_READ);
		reply->len = rc ? 0 : n;
	} else {
		uint8_t sink[256];

		for (uint32_t left = n; rc == 0 && left > 0;) {
			uint32_t c = TL_MIN(left, (uint32_t)sizeof(sink));

			rc = tl_io_full(fd, sink, c, TL_IO_READ);
			left -= c;
		}
	}
	if (rc)
		return -EIO;
	return status;
}

static int
ctl_call(struct meta_kvr_kv *k, uint8_t type, const void *p, size_t len,
	 struct tl_buf *reply)
{
	int rc;

	pthread_mutex_lock(&k->ctl_lock);
	rc = meta_kvr_ctl_request(k->ctl, type, p, len, reply);
	pthread_mutex_unlock(&k->ctl_lock);
	return rc;
}

int
meta_kvr_ctl_connect(const char *dir, char **err)
{
	struct sockaddr_un a;
	int fd;

	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	if ((size_t)snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s", dir,
			     KVR_CONTROL) >= sizeof(a.sun_path)) {
		*err = tl_asprintf("%s: path too long for a socket", dir);
		return -ENAMETOOLONG;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int rc = -errno;

		*err = tl_asprintf("cannot reach the tesserad of %s (%s): is "
				   "it running?",
				   dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	return fd;
}

/* ---- opening ------------------------------------------------------------- */

static void node_put(struct meta_kvr_node *n);

static void
rft_close(struct meta_kv *kv)
{
	struct meta_kvr_kv *k = (struct meta_kvr_kv *)kv;

	if (k->node)
		node_put(k->node);
	if (k->replica)
		meta_kv_close(k->replica);
	if (k->ctl >= 0)
		close(k->ctl);
	pthread_mutex_destroy(&k->ctl_lock);
	free(k);
}

/* Every replica applies the same log, and writes the applied index in
 * the LMDB transaction of what it applied (a replica copy holds what
 * applying up to its index gives): one index, one content.  0 (unknown)
 * for a replica that applied nothing yet, which may be a converted
 * volume or an empty one. */
static uint64_t
rft_version(struct meta_kv_txn *bt)
{
	struct meta_kvr_txn *t = (struct meta_kvr_txn *)bt;

	return t->rdonly ? t->index : 0;
}

/* The replica as it stands once this node has applied what the group
 * had committed when the call began: the copy a snapshot sends. */
static int
rft_copyfd(struct meta_kv *kv, int fd)
{
	struct meta_kvr_kv *k = (struct meta_kvr_kv *)kv;
	int rc;

	if (k->node == NULL) {
		rc = ctl_call(k, 'R', NULL, 0, NULL);
		return rc ? rc : meta_kv_lmdb_copyfd(k->replica, fd);
	}
	rc = meta_kvr_node_read_barrier(k->node);
	if (rc)
		return rc;
	meta_kvr_node_hold(k->node); /* no swap of the replica meanwhile */
	rc = meta_kv_lmdb_copyfd(meta_kvr_node_replica(k->node), fd);
	meta_kvr_node_release(k->node);
	return rc;
}

static const struct meta_kv_ops raft_ops = {
	.scheme = "raft",
	.begin = rft_begin,
	.get = rft_get,
	.put = rft_put,
	.del = rft_del,
	.add = rft_add,
	.peek = rft_peek,
	.scan = rft_scan,
	.commit = rft_commit,
	.commit_lazy = NULL,
	.abort = rft_abort,
	.close = rft_close,
	.version = rft_version,
	.copyfd = rft_copyfd,
};

void
meta_kvr_opts_free(struct meta_kvr_opts *o)
{
	free(o->dir);
	free(o->address);
	free(o->listen);
	free(o->peers);
	free(o->secret);
	free(o->convert);
	memset(o, 0, sizeof(*o));
}

static int
opt_u(const char *v, uint64_t min, uint64_t max, unsigned *out)
{
	uint64_t x;
	int rc = tl_parse_u64(v, min, max, &x);

	if (rc == 0)
		*out = (unsigned)x;
	return rc;
}

int
meta_kvr_url_parse(const char *url, struct meta_kvr_opts *o, char **err)
{
	const char *rest = url + strlen("raft://"), *q = strchr(rest, '?');
	int rc = 0;

	memset(o, 0, sizeof(*o));
	o->election_ms = 1000;
	o->heartbeat_ms = 100;
	o->snapshot_threshold = 4096;
	o->snapshot_trailing = 4096;
	o->timeout_ms = 10000;
	o->follower_leases = true;
	o->dir = q ? tl_strndup(rest, (size_t)(q - rest)) : tl_strdup(rest);
	if (o->dir[0] != '/') {
		*err = tl_asprintf("raft URL needs the node directory: "
				   "raft:///DIR");
		rc = -EINVAL;
	}
	while (rc == 0 && q && *q) {
		const char *opt = q + 1, *amp = strchr(opt, '&');
		size_t olen = amp ? (size_t)(amp - opt) : strlen(opt);
		char *s = tl_strndup(opt, olen), *v = strchr(s, '=');

		if (v)
			*v++ = '\0';
		if (!v)
			rc = -EINVAL;
		else if (!strcmp(s, "id"))
			rc = tl_parse_u64(v, 1, UINT64_MAX >> 1, &o->id);
		else if (!strcmp(s, "address"))
			o->address = tl_strdup(v);
		else if (!strcmp(s, "listen"))
			o->listen = tl_strdup(v);
		else if (!strcmp(s, "peers"))
			o->peers = tl_strdup(v);
		else if (!strcmp(s, "secret"))
			o->secret = tl_strdup(v);
		else if (!strcmp(s, "bootstrap"))
			rc = tl_parse_bool(v, &o->bootstrap);
		else if (!strcmp(s, "convert"))
			o->convert = tl_strdup(v);
		else if (!strcmp(s, "mapsize"))
			rc = tl_parse_size(v, &o->mapsize);
		else if (!strcmp(s, "election"))
			rc = opt_u(v, 50, 600000, &o->election_ms);
		else if (!strcmp(s, "heartbeat"))
			rc = opt_u(v, 5, 60000, &o->heartbeat_ms);
		else if (!strcmp(s, "snapshot"))
			rc = opt_u(v, 16, 1u << 30, &o->snapshot_threshold);
		else if (!strcmp(s, "trailing"))
			rc = opt_u(v, 0, 1u << 30, &o->snapshot_trailing);
		else if (!strcmp(s, "timeout"))
			rc = opt_u(v, 100, 3600000, &o->timeout_ms);
		else if (!strcmp(s, "leases"))
			rc = tl_parse_bool(v, &o->follower_leases);
		else
			rc = -EINVAL;
		if (rc)
			*err = tl_asprintf("bad raft URL option '%.*s'",
					   (int)olen, opt);
		free(s);
		q = amp;
	}
	if (rc == 0 && o->id && (!o->address || !o->secret || !o->peers)) {
		*err = tl_asprintf("a raft node needs id=, address=, peers= "
				   "and secret= (tessera.conf raft_* "
				   "options)");
		rc = -EINVAL;
	}
	if (rc == 0 && o->heartbeat_ms * 2 > o->election_ms) {
		*err = tl_asprintf("raft heartbeat (%u ms) must be at most "
				   "half the election timeout (%u ms)",
				   o->heartbeat_ms, o->election_ms);
		rc = -EINVAL;
	}
	if (rc)
		meta_kvr_opts_free(o);
	return rc;
}

/* One node per directory in a process, shared by every handle that opens
 * it (the file-system layer may open a volume more than once), like
 * LMDB's environments. */
struct shared_node {
	struct shared_node *next;
	char *dir;
	uint64_t id;
	struct meta_kvr_node *node;
	unsigned refs;
};

static pthread_mutex_t nodes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shared_node *shared_nodes;

static int
node_get(const struct meta_kvr_opts *o, struct meta_kvr_node **out, char **err)
{
	struct shared_node *s;
	int rc = 0;

	pthread_mutex_lock(&nodes_lock);
	for (s = shared_nodes; s && strcmp(s->dir, o->dir) != 0; s = s->next)
		;
	if (s && s->id != o->id) {
		*err = tl_asprintf("%s runs as node %llu in this process",
				   o->dir, (unsigned long long)s->id);
		rc = -EBUSY;
	} else if (s == NULL) {
		struct meta_kvr_node *n;

		rc = meta_kvr_node_start(o, &n, err);
		if (rc == 0) {
			s = tl_calloc(1, sizeof(*s));
			s->dir = tl_strdup(o->dir);
			s->id = o->id;
			s->node = n;
			s->next = shared_nodes;
			shared_nodes = s;
		}
	}
	if (rc == 0) {
		s->refs++;
		*out = s->node;
	}
	pthread_mutex_unlock(&nodes_lock);
	return rc;
}

static void
node_put(struct meta_kvr_node *n)
{
	struct shared_node **pp, *s;

	pthread_mutex_lock(&nodes_lock);
	for (pp = &shared_nodes; *pp && (*pp)->node != n; pp = &(*pp)->next)
		;
	s = *pp;
	if (s && --s->refs == 0) {
		*pp = s->next;
		meta_kvr_node_stop(n);
		free(s->dir);
		free(s);
	}
	pthread_mutex_unlock(&nodes_lock);
}

int
meta_kv_raft_open(const char *url, unsigned flags, struct meta_kv **out,
		  char **errp)
{
	struct meta_kvr_kv *k = tl_calloc(1, sizeof(*k));
	struct meta_kvr_opts o;
	char *dir, *err = NULL;
	int rc;

	*out = NULL;
	k->ctl = -1;
	pthread_mutex_init(&k->ctl_lock, NULL);
	k->base.ops = &raft_ops;
	k->rdonly = (flags & META_KV_RDONLY) != 0;
	rc = meta_kvr_url_parse(url, &o, &err);
	if (rc == 0 && o.id && k->rdonly) {
		err = tl_asprintf("a raft node (id=%llu) cannot be opened "
				  "read-only: it writes its log; read through "
				  "the group's directory instead "
				  "(raft:///DIR)",
				  (unsigned long long)o.id);
		rc = -EINVAL;
	} else if (rc == 0 && o.id) {
		rc = node_get(&o, &k->node, &err);
	} else if (rc == 0) {
		k->ctl = meta_kvr_ctl_connect(o.dir, &err);
		rc = k->ctl < 0 ? k->ctl : 0;
		if (rc == 0) {
			/* the node writes its replica; a client only reads */
			dir = tl_asprintf("%s/%s", o.dir, KVR_REPLICA);
			rc = meta_kv_lmdb_open(dir, o.mapsize, 0,
					       META_KV_RDONLY, &k->replica,
					       &err);
			free(dir);
		}
	}
	if (rc == 0 || o.dir)
		meta_kvr_opts_free(&o);
	if (rc) {
		rft_close(&k->base);
		if (errp)
			*errp = err;
		else
			free(err);
		return rc;
	}
	free(err);
	*out = &k->base;
	return 0;
}

/* ---- operating the group ------------------------------------------------- */

static struct meta_kvr_kv *
raft_of(struct meta_kv *kv)
{
	return kv && kv->ops == &raft_ops ? (struct meta_kvr_kv *)kv : NULL;
}

static void
get_str8(struct meta_kvr_rdr *r, char *out, size_t cap)
{
	uint8_t l = meta_kvr_get8(r);
	const uint8_t *p = meta_kvr_getn(r, l);

	l = p ? (uint8_t)TL_MIN((size_t)l, cap - 1) : 0;
	if (p)
		memcpy(out, p, l);
	out[l] = '\0';
}

/* An administrative question with no argument: asked of this process's
 * node (local), else of the node through its control socket (message
 * type).  The answer in *out. */
static int
admin_ask(struct meta_kv *kv, uint8_t type,
	  int (*local)(struct meta_kvr_node *, struct tl_buf *),
	  struct tl_buf *out)
{
	struct meta_kvr_kv *k = raft_of(kv);

	if (k == NULL)
		return -ENOTSUP;
	return k->node ? local(k->node, out) : ctl_call(k, type, NULL, 0, out);
}

int
meta_kv_raft_status(struct meta_kv *kv, struct meta_kv_raft_node **nodes,
		    size_t *count)
{
	struct tl_buf out = TL_BUF_INIT;
	struct meta_kvr_rdr r;
	size_t n = 0, cap = 0;
	int rc;

	*nodes = NULL;
	*count = 0;
	rc = admin_ask(kv, 'S', meta_kvr_admin_status, &out);
	meta_kvr_rdr_init(&r, out.data, out.len);
	while (rc == 0 && r.p < r.end) {
		struct meta_kv_raft_node *x;

		if (n == cap) {
			cap = cap ? 2 * cap : 8;
			*nodes = tl_realloc(*nodes, cap * sizeof(**nodes));
		}
		x = &(*nodes)[n];
		memset(x, 0, sizeof(*x));
		x->id = meta_kvr_get64(&r);
		x->term = meta_kvr_get64(&r);
		x->leader = meta_kvr_get64(&r);
		x->commit = meta_kvr_get64(&r);
		x->last_index = meta_kvr_get64(&r);
		x->applied = meta_kvr_get64(&r);
		x->snapshot = meta_kvr_get64(&r);
		x->log_bytes = meta_kvr_get64(&r);
		x->snapshots_sent = meta_kvr_get64(&r);
		x->snapshots_received = meta_kvr_get64(&r);
		get_str8(&r, x->state, sizeof(x->state));
		get_str8(&r, x->role, sizeof(x->role));
		get_str8(&r, x->address, sizeof(x->address));
		if (r.bad)
			rc = -EIO;
		else
			n++;
	}
	tl_buf_free(&out);
	if (rc) {
		free(*nodes);
		*nodes = NULL;
		return rc;
	}
	*count = n;
	return 0;
}

int
meta_kv_raft_stats(struct meta_kv *kv, struct meta_kv_raft_stats *s)
{
	struct meta_kvr_kv *k = raft_of(kv);

	if (k == NULL || k->node == NULL)
		return -ENOTSUP;
	return meta_kvr_node_stats(k->node, s);
}

int
meta_kv_raft_lmdb_stats(struct meta_kv *kv, struct meta_kv_lmdb_stats *s)
{
	struct meta_kvr_kv *k = raft_of(kv);
	int rc;

	memset(s, 0, sizeof(*s));
	if (k == NULL || k->node == NULL)
		return -ENOTSUP;
	meta_kvr_node_hold(k->node); /* no swap of the replica meanwhile */
	rc = meta_kv_lmdb_stats(meta_kvr_node_replica(k->node), s);
	meta_kvr_node_release(k->node);
	return rc;
}

int
meta_kv_raft_verify(struct meta_kv *kv, struct meta_kv_raft_verify **v,
		    size_t *count)
{
	struct tl_buf out = TL_BUF_INIT;
	struct meta_kvr_rdr r;
	size_t n = 0;
	int rc;

	*v = NULL;
	*count = 0;
	rc = admin_ask(kv, 'V', meta_kvr_admin_verify, &out);
	if (rc == 0 && out.len % 60) /* 8+8+8+4+32 per node */
		rc = -EIO;
	if (rc == 0 && out.len) {
		*v = tl_calloc(out.len / 60, sizeof(**v));
		meta_kvr_rdr_init(&r, out.data, out.len);
		while (r.p < r.end) {
			struct meta_kv_raft_verify *x = &(*v)[n++];

			x->id = meta_kvr_get64(&r);
			x->index = meta_kvr_get64(&r);
			x->keys = meta_kvr_get64(&r);
			x->rc = (int32_t)meta_kvr_get32(&r);
			memcpy(x->sha256, meta_kvr_getn(&r, 32), 32);
		}
	}
	tl_buf_free(&out);
	if (rc == 0 && n == 0)
		rc = -ETIMEDOUT;
	*count = n;
	return rc;
}

int
meta_kv_raft_change(struct meta_kv *kv, int op, uint64_t id,
		    const char *address, char **msg)
{
	struct meta_kvr_kv *k = raft_of(kv);
	struct tl_buf out = TL_BUF_INIT, req = TL_BUF_INIT;
	size_t alen = address ? strlen(address) : 0;
	int rc;

	if (msg)
		*msg = NULL;
	if (k == NULL)
		return -ENOTSUP;
	if (op < META_KV_RAFT_ADD || op > META_KV_RAFT_TRANSFER || alen > 255 ||
	    (op == META_KV_RAFT_ADD && alen == 0))
		return -EINVAL;
	if (k->node) {
		rc = meta_kvr_admin_change(k->node, (uint8_t)op, id, address,
					   &out);
	} else {
		tl_buf_append(&req, (uint8_t[]){(uint8_t)op}, 1);
		tl_buf_append_be64(&req, id);
		tl_buf_append(&req, (uint8_t[]){(uint8_t)alen}, 1);
		tl_buf_append(&req, address ? address : "", alen);
		rc = ctl_call(k, 'A', req.data, req.len, &out);
	}
	if (msg && out.len)
		*msg = tl_strndup((const char *)out.data, out.len);
	tl_buf_free(&out);
	tl_buf_free(&req);
	return rc;
}

int
meta_kv_raft_convert(const char *lmdb_url, const char *node_url, char **err)
{
	const char *dir = lmdb_url + strlen("lmdb://"), *q;
	char *src, *url, *id;
	struct meta_kv *kv;
	struct meta_kvr_opts o;
	int rc;

	*err = NULL;
	if (strncmp(lmdb_url, "lmdb:///", 8) != 0) {
		*err = tl_asprintf("convert needs an lmdb:///DIR volume");
		return -EINVAL;
	}
	q = strchr(dir, '?');
	src = q ? tl_strndup(dir, (size_t)(q - dir)) : tl_strdup(dir);
	rc = meta_kvr_url_parse(node_url, &o, err);
	if (rc == 0 && (!o.id || !o.bootstrap)) {
		*err = tl_asprintf("convert needs a node URL with bootstrap");
		rc = -EINVAL;
	}
	if (rc == 0) {
		id = tl_asprintf("%s/%s", o.dir, KVR_IDENTITY);
		if (access(id, F_OK) == 0) {
			*err = tl_asprintf("%s is already a raft node", o.dir);
			rc = -EEXIST;
		}
		free(id);
	}
	meta_kvr_opts_free(&o);
	if (rc) {
		free(src);
		return rc;
	}
	/* the node starts once: it copies, founds the group, elects itself */
	url = tl_asprintf("%s&convert=%s", node_url, src);
	rc = meta_kv_raft_open(url, 0, &kv, err);
	if (rc == 0) {
		struct meta_kv_txn *t;

		/* a commit through the group: it works */
		rc = meta_kv_begin(kv, true, &t);
		if (rc == 0)
			meta_kv_abort(t);
		meta_kv_close(kv);
	}
	free(url);
	free(src);
	return rc;
}
