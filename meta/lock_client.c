/*
 * lock_client.c - the NFS locks of a client as a whole (meta.h, "NFS
 * locks"): dropping them (NLM FREE_ALL, the client's NSM reporting a
 * restart), recovery after the gateway serving it is gone (adoption, the
 * end of its grace), the records of idle clients, the volume's counters
 * and listings.  The records are lock.c's.
 *
 * Client-wide calls walk the client's index (n<client id>...) in
 * transactions of LK_BATCH records, so their size stays bounded
 * whatever a client holds.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "meta/lock-internal.h"

/* ---- client-wide sweeps -------------------------------------------------- */

enum sweep_mode {
	SW_ALL,         /* drop every record */
	SW_STATE,       /* drop records of another NSM state */
	SW_UNRECLAIMED, /* drop ranges and shares of an older epoch */
	SW_COUNT,       /* count those, change nothing */
};

struct sweep {
	struct meta *m;
	enum sweep_mode mode;
	uint32_t keep_state;
	uint32_t epoch;
	uint8_t cid[LOCK_ID]; /* the client */
	uint64_t n;           /* records dropped, or ranges counted */
	/* the index entries of one batch */
	uint64_t ino[LK_BATCH];
	uint8_t oid[LK_BATCH][LOCK_ID];
	size_t nb;
	struct meta_key last; /* the last index key taken */
	/* where the batch started, and the inodes where something went */
	uint64_t n0;
	struct meta_key last0;
	uint64_t gone[LK_BATCH];
	size_t ngone;
};

static int
sweep_scan_cb(void *arg, const void *key, size_t klen, const void *val,
	      size_t vlen)
{
	struct sweep *s = arg;
	size_t p = s->m->pfxlen + 1 + LOCK_ID;
	const uint8_t *k = key;

	if (klen != p + 8 + LOCK_ID)
		return 0;
	s->ino[s->nb] = tl_get_be64(k + p);
	memcpy(s->oid[s->nb], k + p + 8, LOCK_ID);
	s->nb++;
	memcpy(s->last.b, key, klen);
	s->last.len = klen;
	return s->nb == LK_BATCH;
}

/* Apply the sweep to one record; *changed when it must be stored.
 * Returns how many ranges or shares it drops (SW_COUNT: counts). */
static uint64_t
sweep_rec(const struct sweep *s, struct lrec *x, bool *changed)
{
	uint64_t before = meta_lk_rec_count(x), k = 0;

	*changed = false;
	switch (s->mode) {
	case SW_ALL:
		k = before;
		break;
	case SW_STATE:
		k = x->state != s->keep_state ? before : 0;
		break;
	case SW_UNRECLAIMED:
	case SW_COUNT:
		if (x->kind == KIND_SHARE) {
			k = x->epoch < s->epoch;
			break;
		}
		for (size_t i = 0; i < x->n; i++)
			k += x->r[i].epoch < s->epoch;
		break;
	}
	if (k == 0 || s->mode == SW_COUNT)
		return k;
	*changed = true;
	if (s->mode == SW_UNRECLAIMED && x->kind == KIND_RANGES) {
		size_t j = 0;

		for (size_t i = 0; i < x->n; i++)
			if (x->r[i].epoch >= s->epoch)
				x->r[j++] = x->r[i];
		x->n = j;
	} else {
		x->n = 0;
	}
	return k;
}

/* One batch of the sweep (s->cid) in one transaction, from where the
 * batch started (s->n0, s->last0) on each attempt. */
static int
sweep_txn(struct mtxn *t, void *arg)
{
	struct sweep *s = arg;
	bool rdonly = s->mode == SW_COUNT, any = false;
	struct meta_key start, end, from, k;
	int rc;

	s->n = s->n0;
	s->last = s->last0;
	s->ngone = 0;
	meta_lk_key_client(s->m, &start, 'n', s->cid, 0, NULL);
	meta_lk_key_after(&start, &end);
	from = s->last.len > 0 ? s->last : start;
	if (s->last.len > 0)
		from.b[from.len++] = 0; /* just past the last one taken */
	s->nb = 0;
	rc = meta_kv_scan(t->kv, from.b, from.len, end.b, end.len,
			  sweep_scan_cb, s);
	for (size_t i = 0; rc == 0 && i < s->nb; i++) {
		const void *v;
		size_t vlen;
		struct lrec x;
		uint64_t old, d;
		bool changed;

		meta_lk_key_lock(s->m, &k, s->ino[i], s->oid[i]);
		rc = meta_kv_get(t->kv, k.b, k.len, &v, &vlen);
		if (rc == -ENOENT ||
		    (rc == 0 && meta_lk_rec_decode(v, vlen, &x))) {
			/* an index entry of nothing: drop it */
			meta_lk_key_client(s->m, &k, 'n', s->cid, s->ino[i],
					   s->oid[i]);
			rc = rdonly ? 0 : meta_kv_del(t->kv, k.b, k.len);
			continue;
		}
		if (rc)
			break;
		old = meta_lk_rec_count(&x);
		d = sweep_rec(s, &x, &changed);
		s->n += s->mode == SW_COUNT || s->mode == SW_UNRECLAIMED
				? d
				: (d > 0);
		if (changed) {
			rc = meta_lk_rec_store(t, s->ino[i], s->oid[i], s->cid,
					       &x, old);
			any = true;
			if (s->ngone == 0 || s->gone[s->ngone - 1] != s->ino[i])
				s->gone[s->ngone++] = s->ino[i];
		}
		meta_lk_rec_free(&x);
	}
	if (rc == 0 && any)
		rc = meta_counter_add(t, CNT_NLM_RELEASES, 1);
	return rc;
}

/* Sweep client s->cid in batches of LK_BATCH index entries, each in
 * its own transaction; cb(arg, ino) after each commit for every inode
 * where something went.  On an error, s->n counts what the batches
 * committed before it did. */
static int
sweep_run(struct sweep *s, meta_lock_released_cb cb, void *arg)
{
	int rc;

	s->last.len = 0;
	do {
		s->n0 = s->n;
		s->last0 = s->last;
		rc = meta_txn_run(s->m, s->mode == SW_COUNT, sweep_txn, s);
		if (rc) {
			s->n = s->n0; /* the batch did nothing */
			break;
		}
		for (size_t i = 0; cb != NULL && i < s->ngone; i++)
			cb(arg, s->gone[i]);
	} while (s->nb == LK_BATCH);
	return rc;
}

static int
first_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	*(bool *)arg = true;
	return 1;
}

/* Whether client cid holds anything (its index is not empty). */
static int
client_holds(struct mtxn *t, const uint8_t cid[LOCK_ID], bool *any)
{
	struct meta_key k, e;

	*any = false;
	meta_lk_key_client(t->m, &k, 'n', cid, 0, NULL);
	meta_lk_key_after(&k, &e);
	return meta_kv_scan(t->kv, k.b, k.len, e.b, e.len, first_cb, any);
}

/* Delete the record and count of client cid if it holds nothing. */
static int
client_forget_txn(struct mtxn *t, const uint8_t cid[LOCK_ID], bool *gone)
{
	struct meta_key k;
	bool any;
	int rc;

	*gone = false;
	rc = client_holds(t, cid, &any);
	if (rc || any)
		return rc;
	meta_lk_key_client(t->m, &k, 'M', cid, 0, NULL);
	rc = meta_kv_del(t->kv, k.b, k.len);
	meta_lk_key_client(t->m, &k, 'm', cid, 0, NULL);
	if (rc == 0)
		rc = meta_kv_del(t->kv, k.b, k.len);
	*gone = rc == 0;
	return rc;
}

static int
forget_txn(struct mtxn *t, void *arg)
{
	bool gone;

	return client_forget_txn(t, arg, &gone);
}

static int
client_forget(struct meta *m, const uint8_t cid[LOCK_ID])
{
	uint8_t id[LOCK_ID];

	memcpy(id, cid, LOCK_ID);
	return meta_txn_run(m, false, forget_txn, id);
}

int
meta_lock_drop(struct meta *m, const char *client, size_t len,
	       int64_t keep_state, meta_lock_released_cb cb, void *arg,
	       uint64_t *n)
{
	struct sweep *s = tl_calloc(1, sizeof(*s));
	int rc;

	if (len > META_LOCK_STR_MAX || (client == NULL && len > 0)) {
		free(s);
		return -EINVAL;
	}
	meta_lk_client_id(client, len, s->cid);
	s->m = m;
	s->mode = keep_state < 0 ? SW_ALL : SW_STATE;
	s->keep_state = (uint32_t)keep_state;
	rc = sweep_run(s, cb, arg);
	if (rc == 0)
		rc = client_forget(m, s->cid);
	if (n != NULL)
		*n = s->n;
	free(s);
	return rc;
}

/* ---- clients and recovery ------------------------------------------------ */

#define CLIENT_BATCH 64

struct cscan {
	struct meta *m;
	struct meta_lock_client c[CLIENT_BATCH];
	uint8_t cid[CLIENT_BATCH][LOCK_ID];
	size_t n, seen;
	struct meta_key last;
};

static int
cscan_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct cscan *s = arg;
	size_t p = s->m->pfxlen + 1;

	if (klen != p + LOCK_ID)
		return 0;
	memcpy(s->last.b, key, klen);
	s->last.len = klen;
	s->seen++;
	if (meta_lk_client_decode(val, vlen, &s->c[s->n]) != 0)
		tl_err(META_SUB, "an unreadable NFS lock client record; "
				 "skipped");
	else
		memcpy(s->cid[s->n++], (const uint8_t *)key + p, LOCK_ID);
	return s->seen == CLIENT_BATCH;
}

int
meta_lock_clients(struct meta *m, meta_lock_client_cb cb, void *arg)
{
	struct cscan *s = tl_calloc(1, sizeof(*s));
	struct meta_key from, end;
	struct mtxn t;
	bool more = true;
	int rc = 0;

	s->m = m;
	meta_key_tag(m, &from, 'M');
	meta_key_tag(m, &end, 'N');
	while (more && rc == 0) {
		rc = meta_txn_begin(m, &t, true);
		if (rc)
			break;
		s->n = s->seen = 0;
		rc = meta_kv_scan(t.kv, from.b, from.len, end.b, end.len,
				  cscan_cb, s);
		more = s->seen == CLIENT_BATCH;
		for (size_t i = 0; rc == 0 && i < s->n; i++)
			rc = meta_lk_peek_count(&t, s->cid[i], &s->c[i].held);
		meta_kv_abort(t.kv);
		for (size_t i = 0; rc == 0 && i < s->n; i++) {
			rc = cb(arg, &s->c[i]);
			if (rc > 0) {
				rc = 0;
				more = false;
				break;
			}
		}
		from = s->last;
		from.b[from.len++] = 0;
	}
	free(s);
	return rc;
}

/* A change to one client's record, run by meta_txn_run (client_txn):
 * fn returns 0 (write c), 1 (leave it) or an error. */
struct client_op {
	uint8_t cid[LOCK_ID];
	struct meta_lock_client c;
	int (*fn)(struct mtxn *t, struct client_op *op);
	void *arg;
};

static int
client_txn(struct mtxn *t, void *arg)
{
	struct client_op *op = arg;
	int rc = meta_lk_client_get(t, op->cid, &op->c);

	if (rc == 0)
		rc = op->fn(t, op);
	if (rc == 0)
		rc = meta_lk_client_put(t, op->cid, &op->c);
	return rc == 1 ? 0 : rc;
}

static int
client_update(struct meta *m, const char *client, size_t len,
	      struct client_op *op)
{
	if (len > META_LOCK_STR_MAX)
		return -EINVAL;
	meta_lk_client_id(client, len, op->cid);
	return meta_txn_run(m, false, client_txn, op);
}

struct adopt {
	uint64_t from, to, grace_until_ns;
	bool gone; /* the client held nothing: its record is deleted */
};

static int
adopt(struct mtxn *t, struct client_op *op)
{
	struct adopt *a = op->arg;
	int rc;

	a->gone = false;
	if (op->c.session != a->from)
		return -ESTALE;
	rc = client_forget_txn(t, op->cid, &a->gone);
	if (rc || a->gone)
		return rc ? rc : 1;
	op->c.epoch++;
	op->c.session = a->to;
	op->c.grace_until_ns = a->grace_until_ns;
	op->c.notified = false;
	return 0;
}

int
meta_lock_adopt(struct meta *m, const char *client, size_t len, uint64_t from,
		uint64_t to, uint64_t grace_until_ns, uint32_t *epoch)
{
	struct adopt a = {
		.from = from, .to = to, .grace_until_ns = grace_until_ns};
	struct client_op op = {.fn = adopt, .arg = &a};
	int rc = client_update(m, client, len, &op);

	if (rc == 0 && a.gone)
		return -ENOENT;
	if (rc == 0 && epoch != NULL)
		*epoch = op.c.epoch;
	return rc;
}

static int
set_notified(struct mtxn *t, struct client_op *op)
{
	if (op->c.epoch != *(uint32_t *)op->arg || op->c.notified)
		return 1;
	op->c.notified = true;
	return 0;
}

int
meta_lock_notified(struct meta *m, const char *client, size_t len,
		   uint32_t epoch)
{
	struct client_op op = {.fn = set_notified, .arg = &epoch};

	return client_update(m, client, len, &op);
}

static int
end_grace(struct mtxn *t, struct client_op *op)
{
	if (op->c.epoch != *(uint32_t *)op->arg || op->c.grace_until_ns == 0)
		return 1;
	op->c.grace_until_ns = 0;
	return 0;
}

int
meta_lock_recover(struct meta *m, const char *client, size_t len,
		  uint64_t now_ns, uint64_t *left, meta_lock_released_cb cb,
		  void *arg, uint64_t *dropped)
{
	struct meta_lock_client c;
	struct client_op op = {.fn = end_grace};
	struct sweep *s;
	uint8_t cid[LOCK_ID];
	struct mtxn t;
	int rc;

	*left = 0;
	if (dropped != NULL)
		*dropped = 0;
	if (len > META_LOCK_STR_MAX)
		return -EINVAL;
	meta_lk_client_id(client, len, cid);
	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	rc = meta_lk_client_get(&t, cid, &c);
	meta_kv_abort(t.kv);
	if (rc == -ENOENT || (rc == 0 && c.grace_until_ns == 0))
		return 0;
	if (rc)
		return rc;
	s = tl_calloc(1, sizeof(*s));
	s->m = m;
	memcpy(s->cid, cid, LOCK_ID);
	s->mode = SW_COUNT;
	s->epoch = c.epoch;
	rc = sweep_run(s, NULL, NULL);
	*left = s->n;
	if (rc == 0 && *left > 0 && now_ns >= c.grace_until_ns && c.notified) {
		s->mode = SW_UNRECLAIMED;
		s->n = 0;
		rc = sweep_run(s, cb, arg);
		if (dropped != NULL)
			*dropped = s->n;
	}
	if (rc == 0 && (*left == 0 || now_ns >= c.grace_until_ns)) {
		op.arg = &c.epoch;
		rc = client_update(m, client, len, &op);
	}
	if (rc == 0)
		rc = client_forget(m, cid);
	free(s);
	return rc;
}

static int
tidy_cb(void *arg, const struct meta_lock_client *c)
{
	void **a = arg;
	uint8_t cid[LOCK_ID];
	int rc;

	if (c->held > 0 || c->grace_until_ns != 0)
		return 0;
	meta_lk_client_id(c->name, c->name_len, cid);
	rc = client_forget(a[0], cid);
	if (rc == 0)
		(*(uint64_t *)a[1])++;
	return rc;
}

int
meta_lock_tidy(struct meta *m, uint64_t *removed)
{
	uint64_t n = 0;
	void *a[2] = {m, &n};
	int rc = meta_lock_clients(m, tidy_cb, a);

	if (removed != NULL)
		*removed = n;
	return rc;
}

/* ---- counters and listings ----------------------------------------------- */

static int
read_counter(struct meta *m, const char *name, uint64_t *n)
{
	struct mtxn t;
	int rc;

	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	rc = meta_counter_get(&t, name, n);
	meta_kv_abort(t.kv);
	return rc;
}

int
meta_lock_releases(struct meta *m, uint64_t *n)
{
	return read_counter(m, CNT_NLM_RELEASES, n);
}

int
meta_lock_total(struct meta *m, uint64_t *n)
{
	return read_counter(m, CNT_NLM_LOCKS, n);
}

static int
nsm_state_txn(struct mtxn *t, void *arg)
{
	uint64_t *v = arg;
	int rc = meta_counter_get(t, CNT_NSM_STATE, v);

	if (rc)
		return rc;
	/* odd: up (NSM's convention); wraps before INT32_MAX */
	*v = *v == 0 || *v >= INT32_MAX - 2 ? 1 : (*v | 1) + 2;
	return meta_counter_set(t, CNT_NSM_STATE, *v);
}

int
meta_lock_nsm_state(struct meta *m, int32_t *state)
{
	uint64_t v;
	int rc = meta_txn_run(m, false, nsm_state_txn, &v);

	if (rc == 0)
		*state = (int32_t)v;
	return rc;
}

struct lscan {
	struct meta *m;
	meta_lock_info_cb cb;
	void *arg;
	int rc;
};

static int
lscan_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct lscan *s = arg;
	size_t p = s->m->pfxlen + 1;
	struct meta_lock_info li;
	struct lrec x;

	if (klen != p + 8 + LOCK_ID)
		return 0;
	if (meta_lk_rec_decode(val, vlen, &x) != 0) {
		tl_err(META_SUB, "an unreadable NFS lock record; skipped");
		return 0;
	}
	memset(&li, 0, sizeof(li));
	li.ino = tl_get_be64((const uint8_t *)key + p);
	li.share = x.kind == KIND_SHARE;
	li.client = (const char *)x.name;
	li.client_len = x.name_len;
	li.svid = x.svid;
	li.oh = x.oh;
	li.oh_len = x.oh_len;
	li.state = (int32_t)x.state;
	if (li.share) {
		li.mode = x.mode;
		li.access = x.access;
		li.epoch = x.epoch;
	} else {
		li.nranges = x.n;
		li.ranges = x.r;
	}
	s->rc = s->cb(s->arg, &li);
	meta_lk_rec_free(&x);
	return s->rc != 0;
}

int
meta_lock_list(struct meta *m, uint64_t ino, meta_lock_info_cb cb, void *arg)
{
	struct lscan s = {m, cb, arg, 0};
	struct meta_key k, e;
	struct mtxn t;
	int rc;

	if (ino != 0) {
		meta_lk_key_lock(m, &k, ino, NULL);
	} else {
		meta_key_tag(m, &k, 'N');
	}
	meta_lk_key_after(&k, &e);
	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	rc = meta_kv_scan(t.kv, k.b, k.len, e.b, e.len, lscan_cb, &s);
	meta_kv_abort(t.kv);
	return rc ? rc : (s.rc < 0 ? s.rc : 0);
}
