/*
 * kv_raft_leader.c - what the leader of a raft:// group does beyond
 * libraft: it resolves transactions into batches, answers read-index
 * requests, and keeps followers' commit index fresh.  Everything here
 * runs on the raft thread.
 *
 * Ready.  A new leader appends a barrier and takes no transaction or
 * read until it is applied: then every entry of earlier terms is
 * committed and applied, and the commands after it are all its own.
 *
 * Resolving (FoundationDB's resolver is the model).  A transaction read
 * the replica at command index i.  The leader keeps a window of the
 * transactions it accepted in its term, with their written keys sorted,
 * and the index of their entry (0 while in the batch being formed).  The
 * transaction conflicts if one of them with index > i (or in the batch)
 * wrote a key inside one of its read ranges, or if i is older than the
 * window (i before the first command of the term, or evicted): -EAGAIN,
 * with the index the origin waits to apply before it retries.  Else its
 * writes join the batch.  At the end of each loop turn the batch becomes
 * one raft entry (group commit: every transaction of the turn shares its
 * append and fsyncs), at most MAX_INFLIGHT entries at a time; the
 * members' origins are told its index.
 *
 * Read index.  A request's answer is the last command libraft applied
 * here (committed) when the request arrived, once a majority of voters
 * confirmed after its arrival that this node still leads its term.  A
 * follower asking counts as one confirmation (in a group of three that
 * is the majority with the leader); otherwise the leader asks every
 * voter, one round at a time, and requests that arrive meanwhile share
 * the next round.
 *
 * Lease.  A round confirmed by a majority also gives the leader a lease
 * of LEASE = 0.9 election timeout - 2 heartbeats from the round's start:
 * until then no other leader can have been elected, so the leader
 * answers reads at once (its own transactions need no message at all,
 * kv_raft_node.c).  Why: each voter that confirmed had heard from this
 * leader at most a heartbeat (plus a delay) before, and libraft's
 * followers refuse to vote while they have a leader, until their own
 * election timeout (at least one election timeout) passes.  A node that
 * restarts has no leader and would vote at once, so a node waits one
 * election timeout before it starts libraft again (kv_raft_node.c).  The
 * lease ends when leadership ends and before a transfer.  Clocks are
 * monotonic; their rates differ by far less than the margin.
 *
 * Carrier.  libraft tells followers the commit index only in its next
 * append; when the last entry in flight commits and nothing else is
 * queued, a barrier is appended so that followers learn at once that
 * the entry committed (the transactions waiting on them are answered
 * without waiting for a heartbeat).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "meta/kv_raft_node.h"

#define MAX_INFLIGHT 4
#define WINDOW_ITEMS 65536
#define WINDOW_BYTES (64u << 20)
#define BATCH_BYTES  (8u << 20)

struct witem {
	uint64_t index; /* 0: in the batch being formed */
	uint64_t origin, seq;
	uint32_t nkeys;
	size_t bytes;
	struct {
		uint32_t off;
		uint16_t len;
	} * k;
	uint8_t *keys;
};

struct reply_to {
	uint64_t conn, origin, seq;
};

struct queued {
	struct queued *next;
	uint8_t type;
	uint64_t conn, peer;
	size_t len;
	uint8_t data[];
};

struct rwait {
	uint64_t conn, peer, id;
};

struct meta_kvr_leader {
	uint64_t gen;
	bool ready;
	uint64_t min_ok;   /* oldest read index the window can check */
	uint64_t last_cmd; /* last command index proposed or applied */
	/* window: a ring of accepted transactions, oldest first */
	struct witem **w;
	size_t wcap, whead, wn;
	size_t wbytes;
	/* the batch being formed */
	struct tl_buf batch;
	uint32_t bcount;
	struct reply_to *br;
	size_t nbr, capbr;
	unsigned inflight;
	bool carrier; /* a carrier barrier is in flight */
	struct queued *q, **qtail;
	struct {
		uint64_t origin, seq;
	} * fence;
	size_t nfence;
	/* read index rounds */
	uint64_t round;
	bool round_busy;
	uint64_t round_ri, round_start_ns;
	uint64_t acked[16];
	unsigned nacked;
	struct rwait *rw_cur, *rw_next;
	size_t ncur, nnext, capcur, capnext;
};

static uint64_t leader_gen;

struct req_apply {
	struct raft_apply req;
	struct meta_kvr_node *n;
	uint64_t gen;
};

struct req_barrier {
	struct raft_barrier req;
	struct meta_kvr_node *n;
	uint64_t gen;
	bool carrier;
};

/* ---- replies ------------------------------------------------------------- */

static void
reply_commit(struct meta_kvr_node *n, uint64_t conn, uint64_t origin,
	     uint64_t seq, int status, uint64_t index)
{
	struct tl_buf m = TL_BUF_INIT;

	if (conn == 0) {
		meta_kvr_node_commit_answer(n, seq, status, index, n->raft.id);
		return;
	}
	tl_buf_append(&m, (uint8_t[]){M_COMMIT_R}, 1);
	tl_buf_append_be64(&m, origin);
	tl_buf_append_be64(&m, seq);
	tl_buf_append(&m, (uint8_t[]){(uint8_t)status}, 1);
	tl_buf_append_be64(&m, index);
	meta_kvr_net_reply(n, conn, m.data, m.len);
	tl_buf_free(&m);
}

static void
reply_read(struct meta_kvr_node *n, uint64_t conn, uint64_t id, int status,
	   uint64_t ri)
{
	struct tl_buf m = TL_BUF_INIT;

	if (conn == 0) {
		meta_kvr_node_read_answer(
			n, id, status == KVR_ACCEPTED ? 0 : -EAGAIN, ri);
		return;
	}
	tl_buf_append(&m, (uint8_t[]){M_READ_R}, 1);
	tl_buf_append_be64(&m, id);
	tl_buf_append(&m, (uint8_t[]){(uint8_t)status}, 1);
	tl_buf_append_be64(&m, ri);
	meta_kvr_net_reply(n, conn, m.data, m.len);
	tl_buf_free(&m);
}

static void
reply_fence_notleader(struct meta_kvr_node *n, uint64_t conn)
{
	struct tl_buf m = TL_BUF_INIT;

	if (conn == 0) {
		meta_kvr_node_fence_answer(n, KVR_NOTLEADER, 0, NULL, 0);
		return;
	}
	tl_buf_append(&m, (uint8_t[]){M_FENCE_R, KVR_NOTLEADER}, 2);
	tl_buf_append_be64(&m, 0);
	tl_buf_append_be32(&m, 0);
	meta_kvr_net_reply(n, conn, m.data, m.len);
	tl_buf_free(&m);
}

/* ---- the window ---------------------------------------------------------- */

static struct witem *
w_at(struct meta_kvr_leader *ld, size_t i)
{
	return ld->w[(ld->whead + i) % ld->wcap];
}

static void
witem_free(struct witem *it)
{
	free(it->k);
	free(it->keys);
	free(it);
}

static void
w_push(struct meta_kvr_leader *ld, struct witem *it)
{
	if (ld->wn == ld->wcap) {
		size_t nc = ld->wcap ? 2 * ld->wcap : 1024;
		struct witem **nw = tl_malloc(nc * sizeof(*nw));

		for (size_t i = 0; i < ld->wn; i++)
			nw[i] = w_at(ld, i);
		free(ld->w);
		ld->w = nw;
		ld->wcap = nc;
		ld->whead = 0;
	}
	ld->w[(ld->whead + ld->wn++) % ld->wcap] = it;
	ld->wbytes += it->bytes;
}

/* Drop the oldest proposed items beyond the window's bounds. */
static void
w_evict(struct meta_kvr_leader *ld)
{
	while (ld->wn > 0 &&
	       (ld->wn > WINDOW_ITEMS || ld->wbytes > WINDOW_BYTES)) {
		struct witem *it = w_at(ld, 0);

		if (it->index == 0)
			break;
		if (it->index > ld->min_ok)
			ld->min_ok = it->index;
		ld->wbytes -= it->bytes;
		ld->whead = (ld->whead + 1) % ld->wcap;
		ld->wn--;
		witem_free(it);
	}
}

/* The item's keys from the record's writes (already sorted by key). */
static struct witem *
witem_new(const struct meta_kvr_txnhdr *h)
{
	struct witem *it = tl_calloc(1, sizeof(*it));
	struct meta_kvr_rdr r;
	struct meta_kvr_wr wr;
	size_t off = 0;

	it->origin = h->origin;
	it->seq = h->seq;
	it->nkeys = h->nwrites;
	it->k = tl_malloc((h->nwrites + 1) * sizeof(*it->k));
	it->keys = tl_malloc(h->writes_len + 1);
	meta_kvr_rdr_init(&r, h->writes, h->writes_len);
	for (uint32_t i = 0; i < h->nwrites; i++) {
		meta_kvr_get_write(&r, &wr);
		memcpy(it->keys + off, wr.k, wr.klen);
		it->k[i].off = (uint32_t)off;
		it->k[i].len = wr.klen;
		off += wr.klen;
	}
	it->bytes = sizeof(*it) + off + h->nwrites * sizeof(*it->k);
	return it;
}

/* Does the item write a key inside rd? */
static bool
witem_hits(const struct witem *it, const struct meta_kvr_rd *rd)
{
	size_t lo = 0, hi = it->nkeys;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (meta_kvr_keycmp(it->keys + it->k[mid].off, it->k[mid].len,
				    rd->s, rd->slen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < it->nkeys &&
	       meta_kvr_rd_has(rd, it->keys + it->k[lo].off, it->k[lo].len);
}

static bool
is_dep(const struct meta_kvr_txnhdr *h, const struct witem *it)
{
	if (it->origin != h->origin)
		return false;
	for (uint32_t i = 0; i < h->ndeps; i++)
		if (tl_get_be64(h->deps + 8 * i) == it->seq)
			return true;
	return false;
}

/* 0 if the transaction may join the batch, else KVR_CONFLICT with the
 * index its origin should apply before it retries. */
static int
resolve(struct meta_kvr_leader *ld, const struct meta_kvr_txnhdr *h,
	uint64_t *wait)
{
	struct meta_kvr_rd rd[64], *rds = rd;
	struct meta_kvr_rdr r;
	uint32_t found = 0;
	int rc = 0;

	if (h->index < ld->min_ok) {
		*wait = ld->min_ok;
		return KVR_CONFLICT;
	}
	if (h->nreads > TL_ARRAY_SIZE(rd))
		rds = tl_malloc(h->nreads * sizeof(*rds));
	meta_kvr_rdr_init(&r, h->reads, h->reads_len);
	for (uint32_t i = 0; i < h->nreads; i++)
		meta_kvr_get_read(&r, &rds[i]);
	for (size_t i = ld->wn; i-- > 0 && rc == 0;) {
		const struct witem *it = w_at(ld, i);

		if (it->index && it->index <= h->index)
			break;
		if (is_dep(h, it)) {
			found++;
			continue;
		}
		for (uint32_t j = 0; j < h->nreads; j++)
			if (witem_hits(it, &rds[j])) {
				*wait = it->index ? it->index
						  : ld->last_cmd + 1;
				rc = KVR_CONFLICT;
				break;
			}
	}
	/* A transaction that read others still in flight needs them all
	 * accepted ahead of it. */
	if (rc == 0 && found < h->ndeps) {
		*wait = ld->last_cmd + 1;
		rc = KVR_CONFLICT;
	}
	if (rds != rd)
		free(rds);
	return rc;
}

/* ---- the batch ----------------------------------------------------------- */

static uint64_t
fence_of(struct meta_kvr_leader *ld, uint64_t origin)
{
	for (size_t i = 0; i < ld->nfence; i++)
		if (ld->fence[i].origin == origin)
			return ld->fence[i].seq;
	return 0;
}

static void
queue_req(struct meta_kvr_leader *ld, uint8_t type, uint64_t conn,
	  uint64_t peer, const void *p, size_t len)
{
	struct queued *q = tl_malloc(sizeof(*q) + len);

	q->next = NULL;
	q->type = type;
	q->conn = conn;
	q->peer = peer;
	q->len = len;
	memcpy(q->data, p, len);
	*ld->qtail = q;
	ld->qtail = &q->next;
}

void
meta_kvr_leader_commit(struct meta_kvr_node *n, uint64_t conn,
		       const uint8_t *rec, size_t len)
{
	struct meta_kvr_leader *ld = n->ld;
	struct meta_kvr_txnhdr h;
	struct witem *it;
	uint64_t wait = 0;
	int st;

	if (meta_kvr_txn_parse(rec, len, &h) != 0) {
		tl_warn(KVR_SUB, "a malformed transaction record: refused");
		if (len >= 16)
			reply_commit(n, conn, tl_get_be64(rec),
				     tl_get_be64(rec + 8), KVR_FAILED, 0);
		return;
	}
	if (ld == NULL) {
		reply_commit(n, conn, h.origin, h.seq, KVR_NOTLEADER, 0);
		return;
	}
	if (!ld->ready) {
		queue_req(ld, M_COMMIT, conn, 0, rec, len);
		return;
	}
	if (h.seq <= fence_of(ld, h.origin)) {
		reply_commit(n, conn, h.origin, h.seq, KVR_FENCED, 0);
		return;
	}
	st = resolve(ld, &h, &wait);
	if (st) {
		reply_commit(n, conn, h.origin, h.seq, st, wait);
		return;
	}
	it = witem_new(&h);
	w_push(ld, it);
	if (ld->bcount == 0) {
		tl_buf_reset(&ld->batch);
		tl_buf_reserve(&ld->batch, KVR_ENTRY_HDR + 4);
		ld->batch.len = KVR_ENTRY_HDR + 4;
	}
	tl_buf_append_be64(&ld->batch, h.origin);
	tl_buf_append_be64(&ld->batch, h.seq);
	tl_buf_append_be32(&ld->batch, h.nwrites);
	tl_buf_append(&ld->batch, h.writes, h.writes_len);
	ld->bcount++;
	if (ld->nbr == ld->capbr) {
		ld->capbr = ld->capbr ? 2 * ld->capbr : 64;
		ld->br = tl_realloc(ld->br, ld->capbr * sizeof(*ld->br));
	}
	ld->br[ld->nbr++] = (struct reply_to){conn, h.origin, h.seq};
	if (ld->batch.len >= BATCH_BYTES)
		meta_kvr_leader_flush(n);
}

static void barrier_cb(struct raft_barrier *req, int status);

static void
apply_cb(struct raft_apply *req, int status, void *result)
{
	struct req_apply *a = (struct req_apply *)req;
	struct meta_kvr_node *n = a->n;
	struct meta_kvr_leader *ld = n->ld;

	(void)result;
	if (ld && ld->gen == a->gen) {
		ld->inflight--;
		/* The carrier: followers learn at once that it committed. */
		if (status == 0 && ld->inflight == 0 && ld->bcount == 0 &&
		    !ld->carrier && !n->closing) {
			struct req_barrier *b = tl_calloc(1, sizeof(*b));

			b->n = n;
			b->gen = ld->gen;
			b->carrier = true;
			if (raft_barrier(&n->raft, &b->req, barrier_cb) == 0)
				ld->carrier = true;
			else
				free(b);
		}
	}
	free(a);
}

/* Propose the batch as one entry (end of a loop turn, or when big). */
static void
propose(struct meta_kvr_node *n, bool force)
{
	struct meta_kvr_leader *ld = n->ld;
	struct raft_buffer buf;
	struct req_apply *a;
	uint64_t index;
	uint8_t *b;
	int rc;

	if (!ld || !ld->ready || ld->bcount == 0 ||
	    (ld->inflight >= MAX_INFLIGHT && !force))
		return;
	index = raft_last_index(&n->raft) + 1;
	/* libraft wants entries of whole 8-byte words: zeros pad it */
	while (ld->batch.len % 8)
		tl_buf_append(&ld->batch, "", 1);
	b = raft_malloc(ld->batch.len);
	if (b == NULL)
		abort();
	memcpy(b, ld->batch.data, ld->batch.len);
	tl_put_be32(b, KVR_ENTRY_MAGIC);
	b[4] = KVR_ENTRY_VERSION;
	b[5] = KVR_E_TXNS;
	tl_put_be64(b + 10, index);
	tl_put_be32(b + KVR_ENTRY_HDR, ld->bcount);
	tl_put_be32(b + 6, meta_kvr_crc32c(0, b + 10, ld->batch.len - 10));
	buf.base = b;
	buf.len = ld->batch.len;
	a = tl_calloc(1, sizeof(*a));
	a->n = n;
	a->gen = ld->gen;
	rc = raft_apply(&n->raft, &a->req, &buf, 1, apply_cb);
	if (rc == 0 && a->req.index != index)
		tl_err(KVR_SUB, "entry proposed at %llu, expected %llu",
		       (unsigned long long)a->req.index,
		       (unsigned long long)index);
	if (rc) {
		/* libraft released the buffer */
		tl_warn(KVR_SUB, "cannot append an entry: %s",
			raft_errmsg(&n->raft));
		free(a);
	} else {
		ld->inflight++;
		ld->last_cmd = index;
	}
	/* Members: accepted at index, or (not appended) sent elsewhere. */
	for (size_t i = ld->wn; i-- > 0;) {
		struct witem *it = w_at(ld, i);

		if (it->index)
			break;
		it->index = rc ? UINT64_MAX : index;
	}
	for (size_t i = 0; i < ld->nbr; i++)
		reply_commit(n, ld->br[i].conn, ld->br[i].origin, ld->br[i].seq,
			     rc ? KVR_NOTLEADER : KVR_ACCEPTED, rc ? 0 : index);
	if (rc) /* drop the items: nothing of them was appended */
		while (ld->wn > 0 &&
		       w_at(ld, ld->wn - 1)->index == UINT64_MAX) {
			struct witem *it = w_at(ld, --ld->wn);

			ld->wbytes -= it->bytes;
			witem_free(it);
		}
	ld->nbr = 0;
	ld->bcount = 0;
	w_evict(ld);
}

static void
marker_cb(struct raft_apply *req, int status, void *result)
{
	(void)status;
	(void)result;
	free(req);
}

uint64_t
meta_kvr_leader_marker(struct meta_kvr_node *n, uint64_t id)
{
	struct raft_apply *req;
	struct raft_buffer buf;
	uint64_t index;
	uint8_t *b;

	if (!meta_kvr_leader_ready(n))
		return 0;
	propose(n, true); /* what was accepted goes before it */
	index = raft_last_index(&n->raft) + 1;
	b = raft_calloc(1, 32);
	if (b == NULL)
		abort();
	tl_put_be32(b, KVR_ENTRY_MAGIC);
	b[4] = KVR_ENTRY_VERSION;
	b[5] = KVR_E_VERIFY;
	tl_put_be64(b + 10, index);
	tl_put_be64(b + KVR_ENTRY_HDR, id);
	tl_put_be32(b + 6, meta_kvr_crc32c(0, b + 10, 32 - 10));
	buf.base = b;
	buf.len = 32;
	req = tl_calloc(1, sizeof(*req));
	if (raft_apply(&n->raft, req, &buf, 1, marker_cb) != 0) {
		free(req);
		return 0;
	}
	n->ld->last_cmd = index;
	return index;
}

void
meta_kvr_leader_flush(struct meta_kvr_node *n)
{
	propose(n, false);
}

void
meta_kvr_leader_fence(struct meta_kvr_node *n, uint64_t conn, uint64_t origin,
		      uint64_t maxseq)
{
	struct meta_kvr_leader *ld = n->ld;
	struct tl_buf list = TL_BUF_INIT, m = TL_BUF_INIT;
	uint32_t count = 0;
	size_t i;
	uint8_t b[16];

	if (ld == NULL) {
		reply_fence_notleader(n, conn);
		return;
	}
	if (!ld->ready) {
		tl_put_be64(b, origin);
		tl_put_be64(b + 8, maxseq);
		queue_req(ld, M_FENCE, conn, 0, b, 16);
		return;
	}
	for (i = 0; i < ld->nfence && ld->fence[i].origin != origin; i++)
		;
	if (i == ld->nfence) {
		ld->fence = tl_realloc(ld->fence,
				       (ld->nfence + 1) * sizeof(*ld->fence));
		ld->fence[ld->nfence++].origin = origin;
		ld->fence[i].seq = 0;
	}
	if (maxseq > ld->fence[i].seq)
		ld->fence[i].seq = maxseq;
	/* Members still in the batch get their index now. */
	propose(n, true);
	for (i = 0; i < ld->wn; i++) {
		const struct witem *it = w_at(ld, i);

		if (it->origin == origin && it->seq <= maxseq && it->index) {
			tl_buf_append_be64(&list, it->seq);
			tl_buf_append_be64(&list, it->index);
			count++;
		}
	}
	if (conn == 0) {
		meta_kvr_node_fence_answer(n, KVR_ACCEPTED, ld->last_cmd,
					   list.data, count);
	} else {
		tl_buf_append(&m, (uint8_t[]){M_FENCE_R, KVR_ACCEPTED}, 2);
		tl_buf_append_be64(&m, ld->last_cmd);
		tl_buf_append_be32(&m, count);
		tl_buf_append(&m, list.data, list.len);
		meta_kvr_net_reply(n, conn, m.data, m.len);
	}
	tl_buf_free(&list);
	tl_buf_free(&m);
}

/* ---- read index ---------------------------------------------------------- */

static unsigned
voters(struct meta_kvr_node *n, bool *self_voter)
{
	const struct raft_configuration *c = &n->raft.configuration;
	unsigned v = 0;

	*self_voter = false;
	for (unsigned i = 0; i < c->n; i++)
		if (c->servers[i].role == RAFT_VOTER) {
			v++;
			if (c->servers[i].id == n->raft.id)
				*self_voter = true;
		}
	return v;
}

static bool
is_voter(struct meta_kvr_node *n, uint64_t id)
{
	const struct raft_configuration *c = &n->raft.configuration;

	for (unsigned i = 0; i < c->n; i++)
		if (c->servers[i].id == id)
			return c->servers[i].role == RAFT_VOTER;
	return false;
}

static void
rw_add(struct rwait **a, size_t *na, size_t *cap, struct rwait w)
{
	if (*na == *cap) {
		*cap = *cap ? 2 * *cap : 16;
		*a = tl_realloc(*a, *cap * sizeof(**a));
	}
	(*a)[(*na)++] = w;
}

/* The lease a confirmed round gives, in ns (0: none). */
static uint64_t
lease_len(const struct meta_kvr_node *n)
{
	int64_t ms = (int64_t)n->o.election_ms * 9 / 10 -
		     2 * (int64_t)n->o.heartbeat_ms;

	return ms > 0 ? (uint64_t)ms * 1000000ULL : 0;
}

static bool
lease_ok(struct meta_kvr_node *n)
{
	uint64_t until = atomic_load(&n->lease_until);

	return until && tl_mono_ns() < until;
}

static void
round_done(struct meta_kvr_node *n)
{
	struct meta_kvr_leader *ld = n->ld;

	if (lease_len(n) && raft_transferee(&n->raft) == 0 &&
	    n->state == RAFT_LEADER)
		atomic_store(&n->lease_until,
			     ld->round_start_ns + lease_len(n));
	for (size_t i = 0; i < ld->ncur; i++)
		reply_read(n, ld->rw_cur[i].conn, ld->rw_cur[i].id,
			   KVR_ACCEPTED, ld->round_ri);
	ld->ncur = 0;
	ld->round_busy = false;
}

static void
round_start(struct meta_kvr_node *n, bool renew)
{
	struct meta_kvr_leader *ld = n->ld;
	const struct raft_configuration *c = &n->raft.configuration;
	struct tl_buf m = TL_BUF_INIT;
	struct rwait *t;
	size_t tc;
	bool self;
	unsigned v = voters(n, &self);

	if (ld->round_busy || (ld->nnext == 0 && !renew))
		return;
	/* swap the waiting lists */
	t = ld->rw_cur;
	tc = ld->capcur;
	ld->rw_cur = ld->rw_next;
	ld->capcur = ld->capnext;
	ld->ncur = ld->nnext;
	ld->rw_next = t;
	ld->capnext = tc;
	ld->nnext = 0;
	ld->round_busy = true;
	ld->round++;
	ld->round_ri = n->cmd_seen;
	ld->round_start_ns = tl_mono_ns();
	ld->nacked = 0;
	if ((self ? 1u : 0u) > v / 2) {
		round_done(n);
		return;
	}
	tl_buf_append(&m, (uint8_t[]){M_CONFIRM}, 1);
	tl_buf_append_be64(&m, n->term);
	tl_buf_append_be64(&m, ld->round);
	for (unsigned i = 0; i < c->n; i++)
		if (c->servers[i].role == RAFT_VOTER &&
		    c->servers[i].id != n->raft.id)
			meta_kvr_net_send(n, c->servers[i].id,
					  c->servers[i].address, m.data, m.len);
	tl_buf_free(&m);
}

void
meta_kvr_leader_read(struct meta_kvr_node *n, uint64_t conn, uint64_t peer,
		     uint64_t id, uint64_t term)
{
	struct meta_kvr_leader *ld = n->ld;
	uint8_t b[16];
	bool self;
	unsigned v;

	if (ld == NULL) {
		reply_read(n, conn, id, KVR_NOTLEADER, 0);
		return;
	}
	if (!ld->ready) {
		tl_put_be64(b, id);
		tl_put_be64(b + 8, term);
		queue_req(ld, M_READ, conn, peer, b, 16);
		return;
	}
	v = voters(n, &self);
	/* A voter of this term asking counts as a confirmation. */
	if (conn && term == n->term && is_voter(n, peer) &&
	    (self ? 2u : 1u) > v / 2) {
		reply_read(n, conn, id, KVR_ACCEPTED, n->cmd_seen);
		return;
	}
	if (lease_ok(n)) {
		reply_read(n, conn, id, KVR_ACCEPTED, n->cmd_seen);
		return;
	}
	rw_add(&ld->rw_next, &ld->nnext, &ld->capnext,
	       (struct rwait){conn, peer, id});
	round_start(n, false);
}

void
meta_kvr_leader_confirm_ack(struct meta_kvr_node *n, uint64_t peer,
			    uint64_t term, uint64_t round, bool ok)
{
	struct meta_kvr_leader *ld = n->ld;
	bool self;
	unsigned v;

	if (!ld || !ld->round_busy || round != ld->round || term != n->term ||
	    !ok || !is_voter(n, peer))
		return;
	for (unsigned i = 0; i < ld->nacked; i++)
		if (ld->acked[i] == peer)
			return;
	if (ld->nacked < TL_ARRAY_SIZE(ld->acked))
		ld->acked[ld->nacked++] = peer;
	v = voters(n, &self);
	if (ld->nacked + (self ? 1u : 0u) > v / 2) {
		round_done(n);
		round_start(n, false);
	}
}

/* Every TICK: a round that waits too long (an answer lost with its
 * connection) starts again. */
void
meta_kvr_leader_tick(struct meta_kvr_node *n)
{
	struct meta_kvr_leader *ld = n->ld;
	uint64_t until = atomic_load(&n->lease_until), now = tl_mono_ns();

	if (ld && raft_transferee(&n->raft) != 0)
		atomic_store(&n->lease_until, 0);
	/* renew the lease while it has half its time left */
	if (ld && ld->ready && lease_len(n) && !ld->round_busy &&
	    raft_transferee(&n->raft) == 0 &&
	    (until < now || until - now < lease_len(n) / 2))
		round_start(n, true);
	if (!ld || !ld->round_busy ||
	    tl_mono_ns() - ld->round_start_ns <
		    (uint64_t)n->o.heartbeat_ms * 2000000ULL)
		return;
	/* put the round's requests back in front and start again */
	for (size_t i = 0; i < ld->ncur; i++)
		rw_add(&ld->rw_next, &ld->nnext, &ld->capnext, ld->rw_cur[i]);
	ld->ncur = 0;
	ld->round_busy = false;
	round_start(n, false);
}

/* ---- leadership ---------------------------------------------------------- */

static void
run_queued(struct meta_kvr_node *n)
{
	struct meta_kvr_leader *ld = n->ld;
	struct queued *q = ld->q;

	ld->q = NULL;
	ld->qtail = &ld->q;
	while (q) {
		struct queued *next = q->next;
		struct meta_kvr_rdr r;

		meta_kvr_rdr_init(&r, q->data, q->len);
		if (n->ld == ld) {
			if (q->type == M_COMMIT) {
				meta_kvr_leader_commit(n, q->conn, q->data,
						       q->len);
			} else if (q->type == M_FENCE) {
				uint64_t o = meta_kvr_get64(&r),
					 s = meta_kvr_get64(&r);

				meta_kvr_leader_fence(n, q->conn, o, s);
			} else {
				uint64_t id = meta_kvr_get64(&r),
					 t = meta_kvr_get64(&r);

				meta_kvr_leader_read(n, q->conn, q->peer, id,
						     t);
			}
		}
		free(q);
		q = next;
	}
}

static void
barrier_cb(struct raft_barrier *req, int status)
{
	struct req_barrier *b = (struct req_barrier *)req;
	struct meta_kvr_node *n = b->n;
	struct meta_kvr_leader *ld = n->ld;

	if (ld && ld->gen == b->gen && !n->closing) {
		if (b->carrier) {
			ld->carrier = false;
		} else if (status == 0) {
			/* Every entry before the barrier is applied. */
			ld->ready = true;
			ld->min_ok = n->cmd_seen;
			ld->last_cmd = n->cmd_seen;
			tl_info(KVR_SUB, "leader ready at index %llu",
				(unsigned long long)req->index);
			round_start(n, true); /* the first lease */
			run_queued(n);
			meta_kvr_node_kick(n);
		}
	}
	free(b);
}

void
meta_kvr_leader_begin(struct meta_kvr_node *n)
{
	struct meta_kvr_leader *ld = tl_calloc(1, sizeof(*ld));
	struct req_barrier *b = tl_calloc(1, sizeof(*b));

	ld->gen = ++leader_gen;
	ld->qtail = &ld->q;
	n->ld = ld;
	b->n = n;
	b->gen = ld->gen;
	if (raft_barrier(&n->raft, &b->req, barrier_cb) != 0) {
		tl_warn(KVR_SUB, "cannot append the leader's first entry: %s",
			raft_errmsg(&n->raft));
		free(b);
	}
}

bool
meta_kvr_leader_ready(struct meta_kvr_node *n)
{
	return n->ld && n->ld->ready;
}

uint64_t
meta_kvr_leader_lease_left(struct meta_kvr_node *n)
{
	uint64_t until = atomic_load(&n->lease_until), now = tl_mono_ns();

	if (!n->ld || !n->ld->ready || until <= now ||
	    raft_transferee(&n->raft) != 0)
		return 0;
	return until - now < lease_len(n) ? until - now : lease_len(n);
}

void
meta_kvr_leader_end(struct meta_kvr_node *n)
{
	struct meta_kvr_leader *ld = n->ld;
	struct queued *q;

	atomic_store(&n->lease_until, 0);
	meta_kvr_lease_leader_end(n);
	if (ld == NULL)
		return;
	n->ld = NULL;
	/* Nothing of the batch was appended: its members go elsewhere. */
	for (size_t i = 0; i < ld->nbr; i++)
		reply_commit(n, ld->br[i].conn, ld->br[i].origin, ld->br[i].seq,
			     KVR_NOTLEADER, 0);
	for (size_t i = 0; i < ld->ncur; i++)
		reply_read(n, ld->rw_cur[i].conn, ld->rw_cur[i].id,
			   KVR_NOTLEADER, 0);
	for (size_t i = 0; i < ld->nnext; i++)
		reply_read(n, ld->rw_next[i].conn, ld->rw_next[i].id,
			   KVR_NOTLEADER, 0);
	while ((q = ld->q) != NULL) {
		struct meta_kvr_rdr r;

		ld->q = q->next;
		meta_kvr_rdr_init(&r, q->data, q->len);
		if (q->type == M_COMMIT && q->len >= 16)
			reply_commit(n, q->conn, tl_get_be64(q->data),
				     tl_get_be64(q->data + 8), KVR_NOTLEADER,
				     0);
		else if (q->type == M_FENCE)
			reply_fence_notleader(n, q->conn);
		else if (q->type == M_READ)
			reply_read(n, q->conn, meta_kvr_get64(&r),
				   KVR_NOTLEADER, 0);
		free(q);
	}
	for (size_t i = 0; i < ld->wn; i++)
		witem_free(w_at(ld, i));
	free(ld->w);
	tl_buf_free(&ld->batch);
	free(ld->br);
	free(ld->fence);
	free(ld->rw_cur);
	free(ld->rw_next);
	free(ld);
}
