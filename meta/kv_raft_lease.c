/*
 * kv_raft_lease.c - follower leases: linearizable reads on a follower
 * without a round trip to the leader (a quorum lease, after Moraru,
 * Andersen and Kaminsky's "Paxos Quorum Leases").
 *
 * A follower that serves reads asks the leader for a lease every
 * heartbeat.  The leader grants one only while it holds its own lease
 * (kv_raft_leader.c), and never longer than what is left of it: the
 * follower's lease runs from when it sent the request, the leader counts
 * it from when it answered (plus a margin), so the follower's ends first,
 * and both end before another leader can be elected.  The grant says
 * which index the follower must have applied before it uses the lease:
 * the last command the leader knew committed.
 *
 * The leader keeps its holders and, for every member m, a release index
 * R(m): the last command every holder other than m has applied
 * (holders tell the leader each time they apply).  A node
 *   - answers a commit at index x only once it applied x and R(itself)
 *     >= x: every holder holds x before anyone learns x happened;
 *   - lets a transaction read a snapshot at index s only once R(itself)
 *     >= s: what one node shows, every holder shows.
 * So a holder reads its replica at once and is never behind an answer
 * given anywhere.  The price: while followers hold leases, a write waits
 * until they applied it (one more message), and a holder that dies
 * holds writes up until its lease ends (under half a second by
 * default).  A follower asks only while it has had reads in the last
 * second: an idle group has no holders and writes as before.  Before a
 * leadership transfer (whose new leader is elected at once) the leader
 * grants nothing more and waits for the leases it gave to end.
 *
 * Everything here runs on the raft thread, except meta_kvr_lease_read and
 * meta_kvr_node_visible (any thread).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "meta/kv_raft_node.h"

#define MAX_HOLDERS 16
#define DEMAND_NS   1000000000ULL /* asks while it read within this */
#define RESEND_NS   500000000ULL  /* a release index again, if unchanged */

struct holder {
	uint64_t id, expires_ns, applied;
};

struct relto {
	uint64_t id, sent, sent_ns, term;
};

struct meta_kvr_lease {
	/* follower: requests on their way */
	struct {
		uint64_t id, sent_ns, term;
	} req[8];
	uint64_t next_id, last_req_ns, reported;
	/* leader */
	struct holder h[MAX_HOLDERS];
	unsigned nh;
	struct relto rt[MAX_HOLDERS];
	bool nogrant; /* a transfer waits for the leases to end */
};

void
meta_kvr_lease_init(struct meta_kvr_node *n)
{
	n->ls = tl_calloc(1, sizeof(*n->ls));
}

void
meta_kvr_lease_free(struct meta_kvr_node *n)
{
	free(n->ls);
	n->ls = NULL;
}

/* ---- any thread ---------------------------------------------------------- */

bool
meta_kvr_lease_read(struct meta_kvr_node *n, uint64_t *need)
{
	uint64_t until = atomic_load(&n->flease_until);

	if (!n->o.follower_leases || until == 0 || tl_mono_ns() >= until)
		return false;
	/* Still sound after a leader change, but a transaction that read
	 * before the new leader's first entry could only fail: in a new
	 * term, ask the new leader. */
	if (atomic_load(&n->flease_term) != atomic_load(&n->st.term))
		return false;
	*need = atomic_load(&n->flease_need);
	return true;
}

int
meta_kvr_node_visible(struct meta_kvr_node *n, uint64_t index,
		      uint64_t deadline_ns)
{
	struct timespec ts;
	int rc = 0;

	if (!n->o.follower_leases)
		return 0;
	pthread_mutex_lock(&n->lock);
	while (n->rel < index && !n->failed && !n->stopping) {
		if (tl_mono_ns() >= deadline_ns) {
			rc = -ETIMEDOUT;
			break;
		}
		ts.tv_sec = (time_t)(deadline_ns / 1000000000ULL);
		ts.tv_nsec = (long)(deadline_ns % 1000000000ULL);
		pthread_cond_timedwait(&n->applied_cv, &n->lock, &ts);
	}
	if (rc == 0 && (n->failed || n->stopping))
		rc = n->failed ? n->failed : -ESHUTDOWN;
	pthread_mutex_unlock(&n->lock);
	if (rc == -ETIMEDOUT)
		tl_warn(KVR_SUB,
			"index %llu is not released after %u ms "
			"(a follower lease holder is slow or gone)",
			(unsigned long long)index, n->o.timeout_ms);
	return rc;
}

static void
rel_raise(struct meta_kvr_node *n, uint64_t r)
{
	pthread_mutex_lock(&n->lock);
	if (r > n->rel) {
		n->rel = r;
		pthread_cond_broadcast(&n->applied_cv);
	}
	pthread_mutex_unlock(&n->lock);
}

/* ---- follower ------------------------------------------------------------ */

static bool
member_role(struct meta_kvr_node *n, uint64_t id, int *role)
{
	const struct raft_configuration *c = &n->raft.configuration;

	for (unsigned i = 0; i < c->n; i++)
		if (c->servers[i].id == id) {
			*role = c->servers[i].role;
			return true;
		}
	return false;
}

void
meta_kvr_lease_pump(struct meta_kvr_node *n)
{
	struct meta_kvr_lease *ls = n->ls;
	uint64_t now = tl_mono_ns(), applied;
	struct tl_buf m = TL_BUF_INIT;
	int role;

	if (!n->o.follower_leases || ls == NULL || n->state == RAFT_LEADER ||
	    n->leader == 0 || n->leader == n->raft.id ||
	    !member_role(n, n->raft.id, &role) || role == RAFT_SPARE)
		return;
	pthread_mutex_lock(&n->lock);
	applied = n->applied;
	pthread_mutex_unlock(&n->lock);
	/* while it asks (and a while after): tell what it applied */
	if (ls->last_req_ns && now - ls->last_req_ns < 2 * DEMAND_NS &&
	    applied > ls->reported) {
		tl_buf_append(&m, (uint8_t[]){M_APPLIED}, 1);
		tl_buf_append_be64(&m, n->term);
		tl_buf_append_be64(&m, applied);
		if (meta_kvr_net_send(n, n->leader, n->leader_addr, m.data,
				      m.len) == 0)
			ls->reported = applied;
		tl_buf_reset(&m);
	}
	if (now - atomic_load(&n->read_demand_ns) > DEMAND_NS ||
	    now - ls->last_req_ns < (uint64_t)n->o.heartbeat_ms * 1000000ULL)
		goto out;
	{
		unsigned slot = (unsigned)(ls->next_id % 8);

		ls->req[slot].id = ++ls->next_id;
		ls->req[slot].sent_ns = now;
		ls->req[slot].term = n->term;
		tl_buf_append(&m, (uint8_t[]){M_LEASE}, 1);
		tl_buf_append_be64(&m, n->term);
		tl_buf_append_be64(&m, ls->req[slot].id);
		tl_buf_append_be64(&m, applied);
		if (meta_kvr_net_send(n, n->leader, n->leader_addr, m.data,
				      m.len) == 0) {
			ls->last_req_ns = now;
			ls->reported = applied;
		}
	}
out:
	tl_buf_free(&m);
}

static void
recv_grant(struct meta_kvr_node *n, struct meta_kvr_rdr *r)
{
	struct meta_kvr_lease *ls = n->ls;
	uint64_t id = meta_kvr_get64(r);
	uint8_t ok = meta_kvr_get8(r);
	uint64_t left = meta_kvr_get64(r), need = meta_kvr_get64(r);

	if (r->bad || !ok || ls == NULL)
		return;
	for (unsigned i = 0; i < 8; i++) {
		uint64_t until;

		if (ls->req[i].id != id)
			continue;
		until = ls->req[i].sent_ns + left;
		ls->req[i].id = 0;
		if (ls->req[i].term != n->term)
			break; /* granted in a term that is over */
		if (ls->req[i].term != atomic_load(&n->flease_term)) {
			atomic_store(&n->flease_until, 0);
			atomic_store(&n->flease_need, need);
			atomic_store(&n->flease_term, ls->req[i].term);
		}
		if (need > atomic_load(&n->flease_need))
			atomic_store(&n->flease_need, need);
		if (until > atomic_load(&n->flease_until))
			atomic_store(&n->flease_until, until);
		break;
	}
}

static void
recv_release(struct meta_kvr_node *n, uint64_t peer, struct meta_kvr_rdr *r)
{
	uint64_t term = meta_kvr_get64(r), rel = meta_kvr_get64(r);

	if (r->bad || peer == 0 || peer != n->leader || term != n->term)
		return;
	rel_raise(n, rel);
}

/* ---- leader -------------------------------------------------------------- */

static void
reply_grant(struct meta_kvr_node *n, uint64_t conn, uint64_t id, bool ok,
	    uint64_t left, uint64_t need)
{
	struct tl_buf m = TL_BUF_INIT;

	tl_buf_append(&m, (uint8_t[]){M_LEASE_R}, 1);
	tl_buf_append_be64(&m, id);
	tl_buf_append(&m, (uint8_t[]){ok}, 1);
	tl_buf_append_be64(&m, left);
	tl_buf_append_be64(&m, need);
	meta_kvr_net_reply(n, conn, m.data, m.len);
	tl_buf_free(&m);
}

static struct holder *
holder_of(struct meta_kvr_lease *ls, uint64_t id, bool add)
{
	for (unsigned i = 0; i < ls->nh; i++)
		if (ls->h[i].id == id)
			return &ls->h[i];
	if (!add || ls->nh == MAX_HOLDERS)
		return NULL;
	memset(&ls->h[ls->nh], 0, sizeof(ls->h[0]));
	ls->h[ls->nh].id = id;
	return &ls->h[ls->nh++];
}

static void
recv_request(struct meta_kvr_node *n, uint64_t conn, uint64_t peer,
	     struct meta_kvr_rdr *r)
{
	struct meta_kvr_lease *ls = n->ls;
	uint64_t term = meta_kvr_get64(r), id = meta_kvr_get64(r);
	uint64_t applied = meta_kvr_get64(r), left, now;
	struct holder *h;
	int role;

	if (r->bad)
		return;
	left = meta_kvr_leader_lease_left(n);
	if (!n->o.follower_leases || ls == NULL || ls->nogrant || left == 0 ||
	    term != n->term || peer == 0 || peer == n->raft.id ||
	    !member_role(n, peer, &role) || role == RAFT_SPARE ||
	    (h = holder_of(ls, peer, true)) == NULL) {
		reply_grant(n, conn, id, false, 0, 0);
		return;
	}
	now = tl_mono_ns();
	/* counted here from now, there from before it asked: ends later */
	if (now + left + left / 64 + 1000000ULL > h->expires_ns)
		h->expires_ns = now + left + left / 64 + 1000000ULL;
	if (applied > h->applied)
		h->applied = applied;
	reply_grant(n, conn, id, true, left, n->cmd_seen);
}

static void
recv_applied(struct meta_kvr_node *n, uint64_t peer, struct meta_kvr_rdr *r)
{
	uint64_t term = meta_kvr_get64(r), applied = meta_kvr_get64(r);
	struct holder *h;

	if (r->bad || n->ls == NULL || term != n->term)
		return;
	h = holder_of(n->ls, peer, false);
	if (h && applied > h->applied)
		h->applied = applied;
}

/* R(except): the last command every live holder but `except` applied. */
static uint64_t
release_for(struct meta_kvr_lease *ls, uint64_t except, uint64_t cmd)
{
	uint64_t r = cmd;

	for (unsigned i = 0; i < ls->nh; i++)
		if (ls->h[i].id != except && ls->h[i].applied < r)
			r = ls->h[i].applied;
	return r;
}

void
meta_kvr_lease_leader_turn(struct meta_kvr_node *n)
{
	struct meta_kvr_lease *ls = n->ls;
	const struct raft_configuration *c = &n->raft.configuration;
	uint64_t now = tl_mono_ns(), cmd = n->cmd_seen;
	struct tl_buf m = TL_BUF_INIT;
	unsigned j = 0;

	if (!n->o.follower_leases || ls == NULL || !meta_kvr_leader_ready(n))
		return;
	/* holders whose lease ended no longer count */
	for (unsigned i = 0; i < ls->nh; i++)
		if (ls->h[i].expires_ns > now)
			ls->h[j++] = ls->h[i];
	ls->nh = j;
	rel_raise(n, release_for(ls, n->raft.id, cmd));
	for (unsigned i = 0; i < c->n; i++) {
		uint64_t id = c->servers[i].id, rel;
		struct relto *t = NULL;

		if (id == n->raft.id || c->servers[i].role == RAFT_SPARE)
			continue;
		for (unsigned k = 0; k < MAX_HOLDERS && !t; k++)
			if (ls->rt[k].id == id)
				t = &ls->rt[k];
		for (unsigned k = 0; k < MAX_HOLDERS && !t; k++)
			if (ls->rt[k].id == 0) {
				t = &ls->rt[k];
				t->id = id;
			}
		if (t == NULL)
			continue;
		rel = release_for(ls, id, cmd);
		if (t->term == n->term && rel <= t->sent &&
		    now - t->sent_ns < RESEND_NS)
			continue;
		tl_buf_reset(&m);
		tl_buf_append(&m, (uint8_t[]){M_RELEASE}, 1);
		tl_buf_append_be64(&m, n->term);
		tl_buf_append_be64(&m, rel);
		if (meta_kvr_net_send(n, id, c->servers[i].address, m.data,
				      m.len) == 0) {
			t->sent = rel;
			t->sent_ns = now;
			t->term = n->term;
		}
	}
	tl_buf_free(&m);
}

void
meta_kvr_lease_leader_end(struct meta_kvr_node *n)
{
	if (n->ls == NULL)
		return;
	n->ls->nh = 0;
	n->ls->nogrant = false;
	memset(n->ls->rt, 0, sizeof(n->ls->rt));
}

bool
meta_kvr_lease_quiet(struct meta_kvr_node *n)
{
	uint64_t now = tl_mono_ns();

	if (n->ls == NULL)
		return true;
	n->ls->nogrant = true;
	for (unsigned i = 0; i < n->ls->nh; i++)
		if (n->ls->h[i].expires_ns > now)
			return false;
	return true;
}

void
meta_kvr_lease_grants(struct meta_kvr_node *n, bool on)
{
	if (n->ls)
		n->ls->nogrant = !on;
}

int
meta_kvr_lease_recv(struct meta_kvr_node *n, uint64_t conn, uint64_t peer,
		    uint8_t type, struct meta_kvr_rdr *r)
{
	switch (type) {
	case M_LEASE:
		recv_request(n, conn, peer, r);
		return 0;
	case M_LEASE_R:
		recv_grant(n, r);
		return 0;
	case M_APPLIED:
		recv_applied(n, peer, r);
		return 0;
	case M_RELEASE:
		recv_release(n, peer, r);
		return 0;
	default:
		return -ENOENT;
	}
}
