/*
 * kv_raft_apply.c - the applier of a raft:// node: committed entries into
 * the LMDB replica, and the session table.
 *
 * libraft hands each committed command to the state machine in log order
 * (kv_raft_node.c queues a copy); this thread writes all that is queued
 * in one LMDB transaction together with the index of the last entry
 * (KVR_KEY_APPLIED), so an entry is applied exactly once whatever
 * crashes: entries at or below the replica's applied index are skipped
 * (libraft replays its log after a restart).  The commit does not wait
 * for the sync; libraft's log is the durable copy until a snapshot.
 *
 * The session table.  For every origin (a process that commits: a node,
 * a tessera command through its node) the replica keeps which of its
 * recent transactions were applied: key KVR_KEY_SESSION + origin, value
 * index u64 (the last entry that touched it), base u64, then a bitmap of
 * SESSION_BITS sequence numbers from base.  A node whose replica was
 * replaced by a copy (kv_raft_snap.c) never saw the entries the copy
 * skipped; the table tells it which of its waiting transactions they
 * held.  Sessions untouched for SESSION_AGE entries are deleted at fixed
 * indexes (multiples of SESSION_GC), the same on every replica.
 */
#include "config.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "meta/kv_raft_node.h"

#define SESSION_BITS 1024
#define SESSION_VLEN (16 + SESSION_BITS / 8)
#define SESSION_GC   65536ULL
#define SESSION_AGE  (1ULL << 22)

/* ---- sessions ------------------------------------------------------------ */

static void
session_key(uint8_t k[KVR_KEYLEN(KVR_KEY_SESSION) + 8], uint64_t origin)
{
	memcpy(k, KVR_KEY_SESSION, KVR_KEYLEN(KVR_KEY_SESSION));
	tl_put_be64(k + KVR_KEYLEN(KVR_KEY_SESSION), origin);
}

/* Record that origin's seq was applied by the entry at index. */
static int
session_mark(struct meta_kv_txn *t, uint64_t origin, uint64_t seq,
	     uint64_t index)
{
	uint8_t k[KVR_KEYLEN(KVR_KEY_SESSION) + 8], v[SESSION_VLEN];
	const void *old;
	size_t olen;
	uint64_t base, shift;

	session_key(k, origin);
	memset(v, 0, sizeof(v));
	if (meta_kv_get(t, k, sizeof(k), &old, &olen) == 0 &&
	    olen == SESSION_VLEN)
		memcpy(v, old, SESSION_VLEN);
	else
		tl_put_be64(v + 8, seq > SESSION_BITS / 2
					   ? seq - SESSION_BITS / 2
					   : 0);
	base = tl_get_be64(v + 8);
	if (seq < base)
		return 0; /* older than the window: nobody can wait for it */
	if (seq >= base + SESSION_BITS) {
		/* slide the window so that seq is its last bit */
		shift = seq - (base + SESSION_BITS - 1);
		base += shift;
		if (shift >= SESSION_BITS) {
			memset(v + 16, 0, SESSION_BITS / 8);
		} else {
			uint8_t *b = v + 16, tmp[SESSION_BITS / 8];

			memset(tmp, 0, sizeof(tmp));
			for (uint64_t i = shift; i < SESSION_BITS; i++)
				if (b[i / 8] & (1u << (i % 8)))
					tmp[(i - shift) / 8] |=
						(uint8_t)(1u
							  << ((i - shift) % 8));
			memcpy(b, tmp, sizeof(tmp));
		}
		tl_put_be64(v + 8, base);
	}
	v[16 + (seq - base) / 8] |= (uint8_t)(1u << ((seq - base) % 8));
	tl_put_be64(v, index);
	return meta_kv_put(t, k, sizeof(k), v, SESSION_VLEN);
}

int
meta_kvr_session_applied(struct meta_kv_txn *t, uint64_t origin, uint64_t seq)
{
	uint8_t k[KVR_KEYLEN(KVR_KEY_SESSION) + 8];
	const uint8_t *v;
	size_t vlen;
	uint64_t base;

	session_key(k, origin);
	if (meta_kv_get(t, k, sizeof(k), (const void **)&v, &vlen) != 0 ||
	    vlen != SESSION_VLEN)
		return 0; /* nothing of this origin was ever applied */
	base = tl_get_be64(v + 8);
	if (seq >= base + SESSION_BITS)
		return 0;
	if (seq < base)
		return -1;
	return (v[16 + (seq - base) / 8] >> ((seq - base) % 8)) & 1;
}

int
meta_kvr_session_lookup(struct meta_kv *kv, uint64_t origin, uint64_t seq)
{
	struct meta_kv_txn *t;
	int in;

	if (meta_kv_begin(kv, true, &t) != 0)
		return -1;
	in = meta_kvr_session_applied(t, origin, seq);
	meta_kv_abort(t);
	return in;
}

struct gc {
	struct tl_buf keys;
	uint64_t before;
};

static int
gc_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct gc *g = arg;

	if (vlen == SESSION_VLEN && tl_get_be64(v) < g->before) {
		tl_buf_append(&g->keys, (uint8_t[]){(uint8_t)klen}, 1);
		tl_buf_append(&g->keys, k, klen);
	}
	return 0;
}

/* At index boundary: drop the sessions idle for SESSION_AGE entries. */
static int
session_gc(struct meta_kv_txn *t, uint64_t boundary)
{
	uint8_t end[KVR_KEYLEN(KVR_KEY_SESSION)];
	struct gc g = {TL_BUF_INIT, 0};
	int rc;

	if (boundary <= SESSION_AGE)
		return 0;
	g.before = boundary - SESSION_AGE;
	memcpy(end, KVR_KEY_SESSION, sizeof(end));
	end[sizeof(end) - 1]++;
	rc = meta_kv_scan(t, KVR_KEY_SESSION, KVR_KEYLEN(KVR_KEY_SESSION), end,
			  sizeof(end), gc_cb, &g);
	for (size_t off = 0; rc == 0 && off < g.keys.len;) {
		uint8_t l = g.keys.data[off];

		rc = meta_kv_del(t, g.keys.data + off + 1, l);
		off += 1 + (size_t)l;
	}
	tl_buf_free(&g.keys);
	return rc;
}

/* ---- entries ------------------------------------------------------------- */

static int
apply_write(struct meta_kv_txn *t, const struct meta_kvr_wr *w, uint64_t index)
{
	int64_t d[META_KV_ADD_MAX];
	int rc;

	if (w->op == KVR_PUT)
		return meta_kv_put(t, w->k, w->klen, w->v, w->vlen);
	if (w->op == KVR_DEL)
		return meta_kv_del(t, w->k, w->klen);
	for (uint32_t f = 0; f < w->vlen / 8; f++)
		d[f] = (int64_t)tl_get_be64(w->v + 8 * f);
	rc = meta_kv_add(t, w->k, w->klen, d, w->vlen / 8);
	if (rc == -EIO) {
		/* every replica holds the same value: each skips it alike */
		tl_warn(KVR_SUB,
			"entry %llu: an add to a value of another "
			"size: skipped",
			(unsigned long long)index);
		rc = 0;
	}
	return rc;
}

struct done_list {
	struct meta_kvr_done *d;
	size_t n, cap;
};

/* Write one entry's transactions into the open LMDB transaction. */
static int
apply_entry(struct meta_kvr_node *n, struct meta_kv_txn *t,
	    const struct aitem *it, struct done_list *dl)
{
	struct meta_kvr_rdr r;
	struct meta_kvr_wr w;
	uint32_t ntx;
	int rc = 0;

	if (it->data[5] != KVR_E_TXNS)
		return 0;
	meta_kvr_rdr_init(&r, it->data + KVR_ENTRY_HDR,
			  it->len - KVR_ENTRY_HDR);
	ntx = meta_kvr_get32(&r);
	for (uint32_t i = 0; i < ntx && rc == 0; i++) {
		uint64_t origin = meta_kvr_get64(&r), seq = meta_kvr_get64(&r);
		uint32_t nw = meta_kvr_get32(&r);

		for (uint32_t j = 0; j < nw && rc == 0; j++) {
			rc = meta_kvr_get_write(&r, &w) ? -EIO : 0;
			if (rc == 0)
				rc = apply_write(t, &w, it->index);
		}
		if (rc == 0 && r.bad)
			rc = -EIO;
		if (rc == 0)
			rc = session_mark(t, origin, seq, it->index);
		if (rc == 0 && origin == n->inc) {
			if (dl->n == dl->cap) {
				dl->cap = dl->cap ? 2 * dl->cap : 64;
				dl->d = tl_realloc(dl->d,
						   dl->cap * sizeof(*dl->d));
			}
			dl->d[dl->n++] = (struct meta_kvr_done){seq, it->index};
		}
	}
	return rc;
}

static void
lat_record(struct meta_kvr_node *n, uint64_t us)
{
	unsigned b = 0;

	/* buckets: <= 100us * 2^b, the last one unbounded */
	while (b < 11 && us > (100ULL << b))
		b++;
	atomic_fetch_add(&n->st.lat_bucket[b], 1);
	atomic_fetch_add(&n->st.lat_sum_us, us);
	atomic_fetch_add(&n->st.lat_count, 1);
}

/* Apply the entries of list in one LMDB transaction, up to and including
 * a verify marker if there is one (*marker then says which): the marker
 * is hashed on the state it leaves.  *rest: what is left of list. */
static int
apply_batch(struct meta_kvr_node *n, struct aitem *list, uint64_t from,
	    uint64_t *last, struct done_list *dl, struct aitem **rest,
	    uint64_t *marker)
{
	struct meta_kv_txn *t;
	uint64_t t0 = tl_mono_ns(), entries = 0;
	struct aitem *it = list;
	uint8_t v[8];
	int rc;

	*last = from;
	*marker = 0;
	rc = meta_kv_begin(n->replica, false, &t);
	if (rc)
		return rc;
	for (; it && rc == 0; it = it->next) {
		uint64_t b = it->index / SESSION_GC * SESSION_GC;

		if (it->index <= from)
			continue; /* replayed after a restart: already here */
		/* a boundary passed: collect idle sessions right there */
		if (*last < b && b > 0)
			rc = session_gc(t, b);
		if (rc == 0)
			rc = apply_entry(n, t, it, dl);
		*last = it->index;
		entries++;
		if (it->data[5] == KVR_E_VERIFY &&
		    it->len >= KVR_ENTRY_HDR + 8) {
			*marker = tl_get_be64(it->data + KVR_ENTRY_HDR);
			it = it->next;
			break;
		}
	}
	*rest = it;
	if (rc == 0 && *last == from) {
		meta_kv_abort(t);
		return 0;
	}
	tl_put_be64(v, *last);
	if (rc == 0)
		rc = meta_kv_put(t, KVR_KEY_APPLIED,
				 KVR_KEYLEN(KVR_KEY_APPLIED), v, 8);
	if (rc) {
		meta_kv_abort(t);
		return rc;
	}
	rc = meta_kv_commit_lazy(t);
	if (rc == 0) {
		lat_record(n, (tl_mono_ns() - t0) / 1000);
		atomic_fetch_add(&n->st.applied_entries, entries);
	}
	return rc;
}

/* ---- verify -------------------------------------------------------------- */

struct hasher {
	struct meta_kvr_node *n;
	struct meta_kvr_verify *slot;
	struct meta_kv_txn *t;
};

static int
hash_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	EVP_MD_CTX *h = arg;
	uint8_t l[8];

	tl_put_be32(l, (uint32_t)klen);
	tl_put_be32(l + 4, (uint32_t)vlen);
	EVP_DigestUpdate(h, l, 8);
	EVP_DigestUpdate(h, k, klen);
	EVP_DigestUpdate(h, v, vlen);
	return 0;
}

struct counter {
	EVP_MD_CTX *h;
	uint64_t keys;
};

static int
count_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct counter *c = arg;

	c->keys++;
	return hash_cb(c->h, k, klen, v, vlen);
}

static void *
hasher_main(void *arg)
{
	struct hasher *hs = arg;
	struct meta_kvr_node *n = hs->n;
	struct counter c = {EVP_MD_CTX_new(), 0};
	uint8_t md[32];
	unsigned mdlen = 0;
	int rc;

	EVP_DigestInit_ex(c.h, EVP_sha256(), NULL);
	rc = meta_kv_scan(hs->t, "", 0, NULL, 0, count_cb, &c);
	EVP_DigestFinal_ex(c.h, md, &mdlen);
	EVP_MD_CTX_free(c.h);
	meta_kv_abort(hs->t);
	pthread_rwlock_unlock(&n->swap);
	pthread_mutex_lock(&n->lock);
	hs->slot->rc = rc;
	hs->slot->keys = c.keys;
	memcpy(hs->slot->sha256, md, 32);
	hs->slot->state = 2;
	pthread_mutex_unlock(&n->lock);
	tl_info(KVR_SUB, "verify %llx: the replica at %llu hashed (%llu keys)",
		(unsigned long long)hs->slot->id,
		(unsigned long long)hs->slot->index,
		(unsigned long long)c.keys);
	free(hs);
	return NULL;
}

/* The applier stopped on marker id at index: hash the replica as it
 * stands now, on a thread of its own (the applier goes on; LMDB keeps
 * the snapshot). */
static void
verify_start(struct meta_kvr_node *n, uint64_t id, uint64_t index)
{
	struct hasher *hs = tl_calloc(1, sizeof(*hs));
	struct meta_kvr_verify *slot;
	int rc;

	pthread_mutex_lock(&n->lock);
	slot = &n->verify[n->verify_next++ % TL_ARRAY_SIZE(n->verify)];
	if (slot->joinable) {
		/* the oldest slot: its thread done (or nearly) */
		pthread_t th = slot->thread;

		pthread_mutex_unlock(&n->lock);
		pthread_join(th, NULL);
		pthread_mutex_lock(&n->lock);
	}
	memset(slot, 0, sizeof(*slot));
	slot->id = id;
	slot->index = index;
	slot->state = 1;
	pthread_mutex_unlock(&n->lock);
	hs->n = n;
	hs->slot = slot;
	pthread_rwlock_rdlock(&n->swap);
	rc = meta_kv_begin(n->replica, true, &hs->t);
	if (rc == 0)
		rc = pthread_create(&slot->thread, NULL, hasher_main, hs);
	if (rc == 0) {
		pthread_mutex_lock(&n->lock);
		slot->joinable = true;
		pthread_mutex_unlock(&n->lock);
	} else {
		if (hs->t)
			meta_kv_abort(hs->t);
		pthread_rwlock_unlock(&n->swap);
		pthread_mutex_lock(&n->lock);
		slot->state = 2;
		slot->rc = rc < 0 ? rc : -EAGAIN;
		pthread_mutex_unlock(&n->lock);
		free(hs);
	}
}

/* The node stops: wait for the hashes still running. */
void
meta_kvr_verify_stop(struct meta_kvr_node *n)
{
	for (size_t i = 0; i < TL_ARRAY_SIZE(n->verify); i++) {
		bool joinable;

		pthread_mutex_lock(&n->lock);
		joinable = n->verify[i].joinable;
		n->verify[i].joinable = false;
		pthread_mutex_unlock(&n->lock);
		if (joinable)
			pthread_join(n->verify[i].thread, NULL);
	}
}

void *
meta_kvr_applier_main(void *arg)
{
	struct meta_kvr_node *n = arg;
	struct done_list dl = {NULL, 0, 0};

	for (;;) {
		struct aitem *list, *rest;
		uint64_t from, last = 0, marker = 0;
		int rc;

		pthread_mutex_lock(&n->lock);
		while (n->aq_head == NULL && !n->stopping)
			pthread_cond_wait(&n->aq_cv, &n->lock);
		if (n->aq_head == NULL) {
			pthread_mutex_unlock(&n->lock);
			break;
		}
		list = n->aq_head;
		n->aq_head = NULL;
		n->aq_tail = &n->aq_head;
		n->aq_busy = true;
		pthread_mutex_unlock(&n->lock);

		for (rest = list; rest;) {
			struct aitem *batch = rest;

			pthread_mutex_lock(&n->lock);
			from = n->applied;
			pthread_mutex_unlock(&n->lock);
			dl.n = 0;
			pthread_rwlock_rdlock(&n->swap);
			rc = n->failed ? 0
				       : apply_batch(n, batch, from, &last, &dl,
						     &rest, &marker);
			pthread_rwlock_unlock(&n->swap);
			if (n->failed)
				rest = NULL;
			if (rc)
				tl_err(KVR_SUB,
				       "cannot apply committed "
				       "entries to %s: %s; this node stops "
				       "serving",
				       n->repdir, strerror(-rc));
			meta_kvr_node_batch_done(n, rc, last, dl.d, dl.n,
						 rest == NULL);
			if (rc == 0 && marker)
				verify_start(n, marker, last);
			if (rc)
				break;
		}
		while (list) {
			struct aitem *next = list->next;

			free(list);
			list = next;
		}
	}
	free(dl.d);
	pthread_mutex_lock(&n->lock);
	n->applier_gone = true;
	pthread_cond_broadcast(&n->aq_idle);
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

/* Wait until the applier has applied everything queued (raft thread,
 * before a snapshot or a restore). */
int
meta_kvr_node_drain(struct meta_kvr_node *n)
{
	int rc;

	pthread_mutex_lock(&n->lock);
	while ((n->aq_head || n->aq_busy) && !n->failed && !n->applier_gone)
		pthread_cond_wait(&n->aq_idle, &n->lock);
	rc = n->failed ? n->failed : n->applier_gone ? -ESHUTDOWN : 0;
	pthread_mutex_unlock(&n->lock);
	return rc;
}
