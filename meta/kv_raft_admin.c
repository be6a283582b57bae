/*
 * kv_raft_admin.c - operating a raft:// group: the status of every node,
 * membership changes (add, remove, transfer), and the control socket
 * through which the tessera command on this machine uses the local node.
 *
 * Calls.  A caller thread (a control-socket client, or a test) queues a
 * call and waits; the raft thread carries it out: a status asks every
 * node of the configuration (M_STATUS) and gathers what answers within a
 * second; a membership change runs on the leader (forwarded to it,
 * M_ADMIN, when this node is not it).  Adding a node makes it a standby
 * first (it receives the log or a replica copy but does not vote), waits
 * until it has caught up, then makes it a voter, so that a slow copy
 * never weakens the quorum.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "meta/kv_raft_node.h"

#define STATUS_WAIT_MS 1000
#define CHANGE_WAIT_MS (30 * 60 * 1000) /* a standby may copy for long */
#define CATCHUP_LAG    64               /* entries behind: caught up */

enum call_op { CALL_STATUS = 1, CALL_CHANGE = 2, CALL_VERIFY = 3 };

#define VERIFY_WAIT_MS (10 * 60 * 1000) /* hashing a big replica */
/* A node that says nothing for this long (down, cut off) is reported
 * unreachable instead of holding the verify for VERIFY_WAIT_MS. */
#define VERIFY_SILENT_NS (15ULL * 1000000000ULL)

/* A node's answer to a verify. */
struct vres {
	uint64_t id, index, keys;
	uint8_t sha256[32];
	int rc;
	bool done;
	uint64_t asked_ns, heard_ns;
};
enum change_op { CH_ADD = 1, CH_REMOVE = 2, CH_TRANSFER = 3 };

struct meta_kvr_call {
	struct meta_kvr_call *next;
	uint64_t id;
	enum call_op op;
	bool started, done;
	int rc;
	uint64_t deadline_ns;
	/* change */
	uint8_t chop;
	uint64_t target;
	char addr[256];
	int stage;       /* add: 0 add, 1 standby, 2 catching up */
	uint64_t leader; /* forwarded to */
	/* result: status records, or a message */
	struct tl_buf out;
	unsigned expect; /* status answers still expected */
	uint64_t asked[64];
	unsigned nasked;
	/* verify */
	uint64_t marker, mindex;
	struct vres vr[16];
	unsigned nvr;
	pthread_cond_t cv;
};

/* ---- the node's own status record ---------------------------------------- */

uint64_t
meta_kvr_dir_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	uint64_t sum = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		char *p = tl_asprintf("%s/%s", dir, e->d_name);

		if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_size;
		free(p);
	}
	closedir(d);
	return sum;
}

static const char *
role_name(struct meta_kvr_node *n)
{
	const struct raft_configuration *c = &n->raft.configuration;

	for (unsigned i = 0; i < c->n; i++)
		if (c->servers[i].id == n->o.id)
			return c->servers[i].role == RAFT_VOTER     ? "voter"
			       : c->servers[i].role == RAFT_STANDBY ? "standby"
								    : "spare";
	return "none";
}

/* id u64, term u64, leader u64, commit u64, last u64, applied u64,
 * snapshot u64, log bytes u64, copies sent u64, received u64, state str8,
 * role str8, address str8 */
static void
put_str8(struct tl_buf *b, const char *s)
{
	size_t l = TL_MIN(strlen(s), 255);

	tl_buf_append(b, (uint8_t[]){(uint8_t)l}, 1);
	tl_buf_append(b, s, l);
}

void
meta_kvr_admin_self(struct meta_kvr_node *n, struct tl_buf *b)
{
	raft_id lid = 0;
	const char *laddr;

	raft_leader(&n->raft, &lid, &laddr);
	tl_buf_append_be64(b, n->o.id);
	tl_buf_append_be64(b, raft_current_term(&n->raft));
	tl_buf_append_be64(b, lid);
	tl_buf_append_be64(b, raft_commit_index(&n->raft));
	tl_buf_append_be64(b, raft_last_index(&n->raft));
	/* applied: what libraft applied once the replica has it all (the
	 * barriers between commands change nothing) */
	pthread_mutex_lock(&n->lock);
	tl_buf_append_be64(b, n->aq_head || n->aq_busy
				      ? n->applied
				      : raft_last_applied(&n->raft));
	pthread_mutex_unlock(&n->lock);
	tl_buf_append_be64(b, n->snap_index);
	tl_buf_append_be64(b, meta_kvr_dir_bytes(n->logdir));
	tl_buf_append_be64(b, atomic_load(&n->st.snap_sent));
	tl_buf_append_be64(b, atomic_load(&n->st.snap_recv));
	put_str8(b, raft_state_name(raft_state(&n->raft)));
	put_str8(b, role_name(n));
	put_str8(b, n->o.address);
}

/* ---- calls (the list under adm->lock; the raft thread runs them) --------- */

struct change_req;

struct meta_kvr_admin {
	pthread_mutex_t lock;
	struct meta_kvr_call *calls;
	uint64_t next;
	struct change_req *waiting[16]; /* [raft] standbys catching up */
};

void
meta_kvr_admin_init(struct meta_kvr_node *n)
{
	n->adm = tl_calloc(1, sizeof(*n->adm));
	pthread_mutex_init(&n->adm->lock, NULL);
}

void
meta_kvr_admin_free(struct meta_kvr_node *n)
{
	if (n->adm == NULL)
		return;
	for (size_t i = 0; i < TL_ARRAY_SIZE(n->adm->waiting); i++)
		free(n->adm->waiting[i]);
	pthread_mutex_destroy(&n->adm->lock);
	free(n->adm);
	n->adm = NULL;
}

static struct meta_kvr_call *
call_find(struct meta_kvr_admin *adm, uint64_t id)
{
	for (struct meta_kvr_call *c = adm->calls; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

static void
call_done(struct meta_kvr_call *c, int rc, const char *msg)
{
	if (c->done)
		return;
	c->done = true;
	c->rc = rc;
	if (msg && c->op == CALL_CHANGE) {
		tl_buf_reset(&c->out);
		tl_buf_append(&c->out, msg, strlen(msg));
	}
	pthread_cond_broadcast(&c->cv);
}

/* Run a call: queue it for the raft thread and wait. */
static int
call_run(struct meta_kvr_node *n, struct meta_kvr_call *c, uint64_t wait_ms,
	 struct tl_buf *out)
{
	struct meta_kvr_admin *adm = n->adm;
	struct meta_kvr_call **pp;
	struct timespec ts;
	int rc;

	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &a);
	pthread_condattr_destroy(&a);
	c->deadline_ns = tl_mono_ns() + wait_ms * 1000000ULL;
	pthread_mutex_lock(&adm->lock);
	c->id = ++adm->next;
	c->next = adm->calls;
	adm->calls = c;
	pthread_mutex_unlock(&adm->lock);
	meta_kvr_node_kick(n);
	pthread_mutex_lock(&adm->lock);
	while (!c->done) {
		/* a little past the deadline: the raft thread ends it */
		uint64_t dl = c->deadline_ns + 2000000000ULL;

		ts.tv_sec = (time_t)(dl / 1000000000ULL);
		ts.tv_nsec = (long)(dl % 1000000000ULL);
		if (pthread_cond_timedwait(&c->cv, &adm->lock, &ts) != 0 &&
		    !c->done) {
			c->done = true;
			c->rc = -ETIMEDOUT;
		}
	}
	for (pp = &adm->calls; *pp != c; pp = &(*pp)->next)
		;
	*pp = c->next;
	pthread_mutex_unlock(&adm->lock);
	rc = c->rc;
	if (out)
		tl_buf_append(out, c->out.data, c->out.len);
	tl_buf_free(&c->out);
	pthread_cond_destroy(&c->cv);
	return rc;
}

int
meta_kvr_admin_status(struct meta_kvr_node *n, struct tl_buf *out)
{
	struct meta_kvr_call c;

	memset(&c, 0, sizeof(c));
	c.op = CALL_STATUS;
	return call_run(n, &c, STATUS_WAIT_MS, out);
}

int
meta_kvr_admin_change(struct meta_kvr_node *n, uint8_t op, uint64_t id,
		      const char *addr, struct tl_buf *msg)
{
	struct meta_kvr_call c;

	memset(&c, 0, sizeof(c));
	c.op = CALL_CHANGE;
	c.chop = op;
	c.target = id;
	snprintf(c.addr, sizeof(c.addr), "%s", addr ? addr : "");
	return call_run(n, &c, CHANGE_WAIT_MS, msg);
}

int
meta_kvr_admin_verify(struct meta_kvr_node *n, struct tl_buf *out)
{
	struct meta_kvr_call c;

	memset(&c, 0, sizeof(c));
	c.op = CALL_VERIFY;
	do
		c.marker = tl_random_u64();
	while (c.marker == 0);
	return call_run(n, &c, VERIFY_WAIT_MS, out);
}

/* Results: id u64, index u64, keys u64, rc i32, sha256[32] per node. */
static void
verify_out(struct meta_kvr_call *c)
{
	tl_buf_reset(&c->out);
	for (unsigned i = 0; i < c->nvr; i++) {
		struct vres *v = &c->vr[i];

		tl_buf_append_be64(&c->out, v->id);
		tl_buf_append_be64(&c->out, v->index);
		tl_buf_append_be64(&c->out, v->keys);
		tl_buf_append_be32(&c->out,
				   (uint32_t)(v->done ? v->rc : -ETIMEDOUT));
		tl_buf_append(&c->out, v->sha256, 32);
	}
}

/* This node's hash of marker: state 0 unknown, 1 hashing, 2 done. */
static int
verify_local(struct meta_kvr_node *n, uint64_t marker, struct vres *v)
{
	int st = 0;

	pthread_mutex_lock(&n->lock);
	for (size_t i = 0; i < TL_ARRAY_SIZE(n->verify); i++) {
		struct meta_kvr_verify *s = &n->verify[i];

		if (s->state == 0 || s->id != marker)
			continue;
		st = s->state;
		v->index = s->index;
		v->keys = s->keys;
		v->rc = s->rc;
		memcpy(v->sha256, s->sha256, 32);
	}
	pthread_mutex_unlock(&n->lock);
	v->done = st == 2;
	return st;
}

/* Ask every node of the configuration for its hash (again, for those
 * still hashing or that did not answer, every 100 ms). */
static void
verify_ask(struct meta_kvr_node *n, struct meta_kvr_call *c)
{
	const struct raft_configuration *cf = &n->raft.configuration;
	struct tl_buf m = TL_BUF_INIT;
	uint64_t now = tl_mono_ns();
	bool all = true;

	if (c->nvr == 0) {
		for (unsigned i = 0; i < cf->n && c->nvr < 16; i++) {
			c->vr[c->nvr].heard_ns = now;
			c->vr[c->nvr++].id = cf->servers[i].id;
		}
	}
	tl_buf_append(&m, (uint8_t[]){M_HASH}, 1);
	tl_buf_append_be64(&m, c->id);
	tl_buf_append_be64(&m, c->marker);
	for (unsigned i = 0; i < c->nvr; i++) {
		struct vres *v = &c->vr[i];

		if (v->done)
			continue;
		all = false;
		if (v->id == n->o.id) {
			verify_local(n, c->marker, v);
			all &= false;
			continue;
		}
		if (now - v->heard_ns > VERIFY_SILENT_NS) {
			v->done = true;
			v->rc = -EHOSTUNREACH;
			continue;
		}
		if (now - v->asked_ns < 100000000ULL)
			continue;
		v->asked_ns = now;
		meta_kvr_net_send(n, v->id, NULL, m.data, m.len);
	}
	tl_buf_free(&m);
	all = true;
	for (unsigned i = 0; i < c->nvr; i++)
		all &= c->vr[i].done;
	if (all) {
		verify_out(c);
		call_done(c, 0, NULL);
	}
}

/* ---- membership changes on the leader ------------------------------------ */

struct change_req {
	union {
		struct raft_change change;
		struct raft_transfer transfer;
	} u;
	struct meta_kvr_node *n;
	uint64_t call;  /* local call, or 0 */
	uint64_t conn;  /* forwarded: the connection to answer */
	uint64_t rcall; /* forwarded: the caller's call id */
	uint8_t op;
	uint64_t target;
	int stage;
};

static void change_step(struct change_req *q, int status);

static void
change_reply(struct change_req *q, int rc, const char *msg)
{
	struct meta_kvr_node *n = q->n;

	if (q->conn) {
		struct tl_buf m = TL_BUF_INIT;

		tl_buf_append(&m, (uint8_t[]){M_ADMIN_R}, 1);
		tl_buf_append_be64(&m, q->rcall);
		tl_buf_append_be32(&m, (uint32_t)rc);
		tl_buf_append(&m, msg, strlen(msg));
		meta_kvr_net_reply(n, q->conn, m.data, m.len);
		tl_buf_free(&m);
	} else {
		struct meta_kvr_call *c;

		pthread_mutex_lock(&n->adm->lock);
		c = call_find(n->adm, q->call);
		if (c)
			call_done(c, rc, msg);
		pthread_mutex_unlock(&n->adm->lock);
	}
	free(q);
}

static void
change_cb(struct raft_change *req, int status)
{
	change_step((struct change_req *)req, status);
}

static void
transfer_cb(struct raft_transfer *req)
{
	struct change_req *q = (struct change_req *)req;
	raft_id lid = 0;
	const char *laddr;
	char msg[128];

	raft_leader(&q->n->raft, &lid, &laddr);
	if (lid == q->n->o.id)
		meta_kvr_lease_grants(q->n, true); /* still here: grant again */
	snprintf(msg, sizeof(msg), "leader: node %llu",
		 (unsigned long long)lid);
	change_reply(q, lid && lid != q->n->o.id ? 0 : -EAGAIN, msg);
}

static bool
caught_up(struct meta_kvr_node *n, uint64_t id)
{
	raft_index m = 0;

	return raft_match_index(&n->raft, id, &m) == 0 &&
	       m + CATCHUP_LAG >= raft_last_index(&n->raft);
}

static void
change_step(struct change_req *q, int status)
{
	struct meta_kvr_node *n = q->n;
	char msg[160];
	int rc = 0;

	if (status != 0) {
		snprintf(msg, sizeof(msg), "%s", raft_strerror(status));
		change_reply(q, -EIO, msg);
		return;
	}
	switch (q->op * 10 + q->stage) {
	case CH_ADD * 10 + 0: /* added as a spare: now a standby */
		q->stage = 1;
		rc = raft_assign(&n->raft, &q->u.change, q->target,
				 RAFT_STANDBY, change_cb);
		break;
	case CH_ADD * 10 + 1: /* a standby: wait until it caught up */
		q->stage = 2;
		for (size_t i = 0; i < TL_ARRAY_SIZE(n->adm->waiting); i++)
			if (n->adm->waiting[i] == NULL) {
				n->adm->waiting[i] = q;
				return;
			}
		rc = RAFT_BUSY;
		break;
	case CH_ADD * 10 + 2: /* caught up: a voter */
		q->stage = 3;
		rc = raft_assign(&n->raft, &q->u.change, q->target, RAFT_VOTER,
				 change_cb);
		break;
	default:
		snprintf(msg, sizeof(msg), "done");
		change_reply(q, 0, msg);
		return;
	}
	if (rc) {
		snprintf(msg, sizeof(msg), "%s", raft_errmsg(&n->raft));
		change_reply(q, -EIO, msg);
	}
}

/* The role of id in the configuration, -1 if it is not in it. */
static int
role_of(struct meta_kvr_node *n, uint64_t id)
{
	const struct raft_configuration *c = &n->raft.configuration;

	for (unsigned i = 0; i < c->n; i++)
		if (c->servers[i].id == id)
			return c->servers[i].role;
	return -1;
}

static int
transfer_now(struct meta_kvr_node *n, struct change_req *q)
{
	int rc;

	/* no lease reads from here on: another node may lead soon */
	atomic_store(&n->lease_until, 0);
	rc = raft_transfer(&n->raft, &q->u.transfer, q->target, transfer_cb);
	if (rc)
		meta_kvr_lease_grants(n, true);
	return rc;
}

static void
change_start(struct meta_kvr_node *n, struct change_req *q, const char *addr)
{
	char msg[160];
	int rc, role = role_of(n, q->target);

	if (n->state != RAFT_LEADER) {
		change_reply(q, -EAGAIN, "not the leader");
		return;
	}
	/* A change asked again (its answer was lost with a connection, or
	 * leadership moved) picks up where the configuration stands. */
	switch (q->op) {
	case CH_ADD:
		if (role == RAFT_VOTER) {
			change_reply(q, 0, "done");
			return;
		}
		if (role == RAFT_STANDBY) {
			q->stage = 1;
			change_step(q, 0);
			return;
		}
		if (role == RAFT_SPARE) {
			q->stage = 0;
			change_step(q, 0);
			return;
		}
		rc = raft_add(&n->raft, &q->u.change, q->target, addr,
			      change_cb);
		break;
	case CH_REMOVE:
		if (role < 0) {
			change_reply(q, 0, "done");
			return;
		}
		q->stage = 9;
		rc = raft_remove(&n->raft, &q->u.change, q->target, change_cb);
		break;
	case CH_TRANSFER:
		if (q->target == n->o.id) {
			change_reply(q, 0, "leader: this node already");
			return;
		}
		/* The new leader is elected at once: the follower leases
		 * this one gave must have ended first (kv_raft_lease.c). */
		if (!meta_kvr_lease_quiet(n)) {
			q->stage = 40;
			for (size_t i = 0; i < TL_ARRAY_SIZE(n->adm->waiting);
			     i++)
				if (n->adm->waiting[i] == NULL) {
					n->adm->waiting[i] = q;
					return;
				}
			meta_kvr_lease_grants(n, true);
			change_reply(q, -EAGAIN, "busy: try again");
			return;
		}
		rc = transfer_now(n, q);
		break;
	default:
		rc = RAFT_INVALID;
		break;
	}
	if (rc) {
		snprintf(msg, sizeof(msg), "%s", raft_errmsg(&n->raft));
		change_reply(q, rc == RAFT_NOTLEADER ? -EAGAIN : -EINVAL, msg);
	}
}

/* ---- the raft thread: running calls -------------------------------------- */

static void
status_send(struct meta_kvr_node *n, struct meta_kvr_call *c)
{
	const struct raft_configuration *cf = &n->raft.configuration;
	struct tl_buf m = TL_BUF_INIT;

	meta_kvr_admin_self(n, &c->out);
	tl_buf_append(&m, (uint8_t[]){M_STATUS}, 1);
	tl_buf_append_be64(&m, c->id);
	for (unsigned i = 0; i < cf->n; i++) {
		if (cf->servers[i].id == n->o.id)
			continue;
		if (meta_kvr_net_send(n, cf->servers[i].id,
				      cf->servers[i].address, m.data,
				      m.len) == 0 &&
		    c->nasked < TL_ARRAY_SIZE(c->asked)) {
			c->asked[c->nasked++] = cf->servers[i].id;
			c->expect++;
		}
	}
	tl_buf_free(&m);
	if (c->expect == 0)
		call_done(c, 0, NULL);
}

static void
change_forward(struct meta_kvr_node *n, struct meta_kvr_call *c)
{
	struct tl_buf m = TL_BUF_INIT;

	if (n->leader == 0)
		return; /* the next tick tries again */
	tl_buf_append(&m, (uint8_t[]){M_ADMIN}, 1);
	tl_buf_append_be64(&m, c->id);
	tl_buf_append(&m, (uint8_t[]){c->chop}, 1);
	tl_buf_append_be64(&m, c->target);
	put_str8(&m, c->addr);
	if (meta_kvr_net_send(n, n->leader, n->leader_addr, m.data, m.len) ==
	    0) {
		c->started = true;
		c->leader = n->leader;
	}
	tl_buf_free(&m);
}

/* Called by the raft thread on each kick and tick. */
void
meta_kvr_admin_pump(struct meta_kvr_node *n)
{
	struct meta_kvr_admin *adm = n->adm;
	uint64_t now = tl_mono_ns();

	pthread_mutex_lock(&adm->lock);
	for (struct meta_kvr_call *c = adm->calls; c; c = c->next) {
		if (c->done)
			continue;
		if (now > c->deadline_ns) {
			if (c->op == CALL_STATUS) {
				call_done(c, 0, NULL); /* who answered */
			} else if (c->op == CALL_VERIFY && c->mindex) {
				verify_out(c);
				call_done(c, 0, NULL);
			} else {
				call_done(c, -ETIMEDOUT, "no answer");
			}
			continue;
		}
		if (c->op == CALL_VERIFY && c->mindex) {
			verify_ask(n, c);
			continue;
		}
		if (c->started)
			continue;
		if (c->op == CALL_VERIFY) {
			if (n->state == RAFT_LEADER) {
				c->mindex =
					meta_kvr_leader_marker(n, c->marker);
				if (c->mindex)
					verify_ask(n, c);
			} else if (n->leader) {
				struct tl_buf m = TL_BUF_INIT;

				tl_buf_append(&m, (uint8_t[]){M_VERIFY}, 1);
				tl_buf_append_be64(&m, c->id);
				tl_buf_append_be64(&m, c->marker);
				if (meta_kvr_net_send(n, n->leader,
						      n->leader_addr, m.data,
						      m.len) == 0)
					c->started = true;
				tl_buf_free(&m);
			}
			continue;
		}
		if (c->op == CALL_STATUS) {
			c->started = true;
			status_send(n, c);
		} else if (n->state == RAFT_LEADER) {
			struct change_req *q = tl_calloc(1, sizeof(*q));

			c->started = true;
			q->n = n;
			q->call = c->id;
			q->op = c->chop;
			q->target = c->target;
			{
				char addr[256];

				memcpy(addr, c->addr, sizeof(addr));
				pthread_mutex_unlock(&adm->lock);
				change_start(n, q, addr);
				pthread_mutex_lock(&adm->lock);
			}
			/* the list may have changed: start over next time */
			break;
		} else {
			change_forward(n, c);
		}
	}
	pthread_mutex_unlock(&adm->lock);
	/* standbys catching up */
	for (size_t i = 0; i < TL_ARRAY_SIZE(adm->waiting); i++) {
		struct change_req *q = adm->waiting[i];

		if (q == NULL)
			continue;
		if (n->state != RAFT_LEADER) {
			adm->waiting[i] = NULL;
			change_reply(
				q, -EAGAIN,
				q->op == CH_TRANSFER
					? "leadership lost meanwhile"
					: "leadership lost while the "
					  "new node caught up: run it again");
		} else if (q->op == CH_TRANSFER) {
			if (meta_kvr_lease_quiet(n)) {
				adm->waiting[i] = NULL;
				if (transfer_now(n, q) != 0)
					change_reply(q, -EIO,
						     raft_errmsg(&n->raft));
			}
		} else if (caught_up(n, q->target)) {
			adm->waiting[i] = NULL;
			change_step(q, 0);
		}
	}
}

/* A forwarded call's peer went away: it may be asked again. */
void
meta_kvr_admin_peer_down(struct meta_kvr_node *n, uint64_t peer)
{
	pthread_mutex_lock(&n->adm->lock);
	for (struct meta_kvr_call *c = n->adm->calls; c; c = c->next)
		if (!c->done && c->op == CALL_CHANGE && c->started &&
		    c->leader == peer)
			c->started = false;
	pthread_mutex_unlock(&n->adm->lock);
}

/* Messages of this file (meta_kvr_node_recv passes them on): 0 if handled. */
int
meta_kvr_admin_recv(struct meta_kvr_node *n, uint64_t conn, uint8_t type,
		    struct meta_kvr_rdr *r)
{
	struct tl_buf m = TL_BUF_INIT;
	struct meta_kvr_call *c;
	uint64_t id = meta_kvr_get64(r);

	if (r->bad)
		return -EPROTO;
	switch (type) {
	case M_STATUS:
		tl_buf_append(&m, (uint8_t[]){M_STATUS_R}, 1);
		tl_buf_append_be64(&m, id);
		meta_kvr_admin_self(n, &m);
		meta_kvr_net_reply(n, conn, m.data, m.len);
		break;
	case M_STATUS_R:
		pthread_mutex_lock(&n->adm->lock);
		c = call_find(n->adm, id);
		if (c && !c->done && c->expect > 0) {
			tl_buf_append(&c->out, r->p, (size_t)(r->end - r->p));
			if (--c->expect == 0)
				call_done(c, 0, NULL);
		}
		pthread_mutex_unlock(&n->adm->lock);
		break;
	case M_ADMIN: {
		struct change_req *q = tl_calloc(1, sizeof(*q));
		char addr[256];
		const uint8_t *a;
		uint8_t alen;

		q->n = n;
		q->conn = conn;
		q->rcall = id;
		q->op = meta_kvr_get8(r);
		q->target = meta_kvr_get64(r);
		alen = meta_kvr_get8(r);
		a = meta_kvr_getn(r, alen);
		if (a)
			memcpy(addr, a, alen);
		addr[a ? alen : 0] = '\0';
		if (r->bad) {
			free(q);
			return -EPROTO;
		}
		change_start(n, q, addr);
		break;
	}
	case M_VERIFY: {
		uint64_t marker = meta_kvr_get64(r), index = 0;

		if (r->bad)
			return -EPROTO;
		if (n->state == RAFT_LEADER)
			index = meta_kvr_leader_marker(n, marker);
		tl_buf_append(&m, (uint8_t[]){M_VERIFY_R}, 1);
		tl_buf_append_be64(&m, id);
		tl_buf_append_be64(&m, index);
		meta_kvr_net_reply(n, conn, m.data, m.len);
		break;
	}
	case M_VERIFY_R: {
		uint64_t index = meta_kvr_get64(r);

		pthread_mutex_lock(&n->adm->lock);
		c = call_find(n->adm, id);
		if (c && !c->done && !r->bad) {
			if (index)
				c->mindex = index;
			else
				c->started = false; /* not the leader: again */
		}
		pthread_mutex_unlock(&n->adm->lock);
		meta_kvr_node_kick(n);
		break;
	}
	case M_HASH: {
		uint64_t marker = meta_kvr_get64(r);
		struct vres v;
		int st;

		if (r->bad)
			return -EPROTO;
		memset(&v, 0, sizeof(v));
		st = verify_local(n, marker, &v);
		tl_buf_append(&m, (uint8_t[]){M_HASH_R}, 1);
		tl_buf_append_be64(&m, id);
		tl_buf_append_be64(&m, n->o.id);
		tl_buf_append(&m, (uint8_t[]){(uint8_t)st}, 1);
		tl_buf_append_be64(&m, v.index);
		tl_buf_append_be64(&m, v.keys);
		tl_buf_append_be32(&m, (uint32_t)v.rc);
		tl_buf_append(&m, v.sha256, 32);
		meta_kvr_net_reply(n, conn, m.data, m.len);
		break;
	}
	case M_HASH_R: {
		uint64_t node = meta_kvr_get64(r);
		uint8_t st = meta_kvr_get8(r);
		uint64_t index = meta_kvr_get64(r), keys = meta_kvr_get64(r);
		int32_t vrc = (int32_t)meta_kvr_get32(r);
		const uint8_t *sha = meta_kvr_getn(r, 32);

		if (r->bad)
			return -EPROTO;
		pthread_mutex_lock(&n->adm->lock);
		c = call_find(n->adm, id);
		for (unsigned i = 0; c && !c->done && i < c->nvr; i++)
			if (c->vr[i].id == node && !c->vr[i].done) {
				c->vr[i].heard_ns = tl_mono_ns();
				if (st != 2)
					continue;
				c->vr[i].done = true;
				c->vr[i].index = index;
				c->vr[i].keys = keys;
				c->vr[i].rc = vrc;
				memcpy(c->vr[i].sha256, sha, 32);
			}
		pthread_mutex_unlock(&n->adm->lock);
		meta_kvr_node_kick(n);
		break;
	}
	case M_ADMIN_R: {
		int32_t rc = (int32_t)meta_kvr_get32(r);

		pthread_mutex_lock(&n->adm->lock);
		c = call_find(n->adm, id);
		if (c && !r->bad) {
			char msg[256];
			size_t l = TL_MIN((size_t)(r->end - r->p),
					  sizeof(msg) - 1);

			memcpy(msg, r->p, l);
			msg[l] = '\0';
			if (rc == -EAGAIN && !c->done) {
				c->started = false; /* not the leader: again */
			} else {
				call_done(c, rc, msg);
			}
		}
		pthread_mutex_unlock(&n->adm->lock);
		break;
	}
	default:
		tl_buf_free(&m);
		return -ENOTSUP;
	}
	tl_buf_free(&m);
	return 0;
}

/* ---- the control socket -------------------------------------------------- */

struct ctl_client {
	struct ctl_client *next;
	struct meta_kvr_node *n;
	int fd;
	pthread_t thread;
	bool done;
};

struct meta_kvr_ctl {
	bool running;
	int fd, stop[2];
	pthread_t thread;
	pthread_mutex_t lock;
	struct ctl_client *clients;
};

static int
ctl_reply(int fd, int status, const void *p, size_t len)
{
	uint8_t h[8];

	tl_put_be32(h, (uint32_t)status);
	tl_put_be32(h + 4, (uint32_t)len);
	if (tl_io_full(fd, h, 8, TL_IO_SEND))
		return -1;
	return len ? tl_io_full(fd, (void *)p, len, TL_IO_SEND) : 0;
}

/* One request of a local client. */
static int
ctl_handle(struct meta_kvr_node *n, int fd, uint8_t type, uint8_t *p,
	   size_t len)
{
	struct tl_buf out = TL_BUF_INIT;
	struct meta_kvr_rdr r;
	int rc;

	switch (type) {
	case 'R':
		rc = meta_kvr_node_read_barrier(n);
		break;
	case 'C':
		if (len < 24) {
			rc = -EINVAL;
			break;
		}
		tl_put_be64(p, n->inc);
		tl_put_be64(p + 8, atomic_fetch_add(&n->seq, 1) + 1);
		rc = meta_kvr_node_commit(n, p, len, NULL);
		break;
	case 'S':
		rc = meta_kvr_admin_status(n, &out);
		break;
	case 'V':
		rc = meta_kvr_admin_verify(n, &out);
		break;
	case 'A': {
		uint8_t op, alen;
		uint64_t id;
		char addr[256];

		meta_kvr_rdr_init(&r, p, len);
		op = meta_kvr_get8(&r);
		id = meta_kvr_get64(&r);
		alen = meta_kvr_get8(&r);
		if (meta_kvr_getn(&r, alen) == NULL) {
			rc = -EINVAL;
			break;
		}
		memcpy(addr, r.p - alen, alen);
		addr[alen] = '\0';
		rc = meta_kvr_admin_change(n, op, id, addr, &out);
		break;
	}
	default:
		rc = -EINVAL;
		break;
	}
	rc = ctl_reply(fd, rc, out.data, out.len);
	tl_buf_free(&out);
	return rc;
}

static void *
ctl_client_main(void *arg)
{
	struct ctl_client *cl = arg;
	uint8_t h[5], *p = NULL;

	for (;;) {
		uint32_t len;

		if (tl_io_full(cl->fd, h, 5, TL_IO_READ))
			break;
		len = tl_get_be32(h + 1);
		if (len > KVR_FRAME_MAX)
			break;
		p = tl_realloc(p, len + 1);
		if (len && tl_io_full(cl->fd, p, len, TL_IO_READ))
			break;
		if (ctl_handle(cl->n, cl->fd, h[0], p, len))
			break;
	}
	free(p);
	shutdown(cl->fd, SHUT_RDWR);
	cl->done = true;
	return NULL;
}

static void *
ctl_accept_main(void *arg)
{
	struct meta_kvr_node *n = arg;
	struct meta_kvr_ctl *ctl = n->ctl;

	for (;;) {
		struct pollfd pf[2] = {{ctl->fd, POLLIN, 0},
				       {ctl->stop[0], POLLIN, 0}};
		struct ctl_client *cl;
		int fd;

		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			break;
		if (pf[1].revents)
			break;
		if (!(pf[0].revents & POLLIN))
			continue;
		fd = accept4(ctl->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		cl = tl_calloc(1, sizeof(*cl));
		cl->n = n;
		cl->fd = fd;
		pthread_mutex_lock(&ctl->lock);
		/* reap the clients that left */
		for (struct ctl_client **pp = &ctl->clients; *pp;) {
			struct ctl_client *o = *pp;

			if (o->done) {
				*pp = o->next;
				pthread_join(o->thread, NULL);
				close(o->fd);
				free(o);
			} else {
				pp = &o->next;
			}
		}
		if (pthread_create(&cl->thread, NULL, ctl_client_main, cl)) {
			close(fd);
			free(cl);
		} else {
			cl->next = ctl->clients;
			ctl->clients = cl;
		}
		pthread_mutex_unlock(&ctl->lock);
	}
	return NULL;
}

int
meta_kvr_ctl_start(struct meta_kvr_node *n, char **err)
{
	struct meta_kvr_ctl *ctl = tl_calloc(1, sizeof(*ctl));
	struct sockaddr_un a;
	int rc = 0;

	ctl->fd = ctl->stop[0] = ctl->stop[1] = -1;
	pthread_mutex_init(&ctl->lock, NULL);
	n->ctl = ctl;
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	if ((size_t)snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s", n->o.dir,
			     KVR_CONTROL) >= sizeof(a.sun_path)) {
		*err = tl_asprintf("%s: path too long for a socket", n->o.dir);
		return -ENAMETOOLONG;
	}
	unlink(a.sun_path);
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ctl->fd < 0 ||
	    bind(ctl->fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    chmod(a.sun_path, 0600) < 0 || listen(ctl->fd, 16) < 0 ||
	    pipe2(ctl->stop, O_CLOEXEC) < 0) {
		rc = -errno;
		*err = tl_asprintf("control socket %s: %s", a.sun_path,
				   strerror(errno));
		return rc;
	}
	if (pthread_create(&ctl->thread, NULL, ctl_accept_main, n) != 0) {
		*err = tl_asprintf("cannot start the control socket thread");
		return -EAGAIN;
	}
	ctl->running = true;
	return 0;
}

void
meta_kvr_ctl_stop(struct meta_kvr_node *n)
{
	struct meta_kvr_ctl *ctl = n->ctl;
	char *path;

	if (ctl == NULL)
		return;
	if (ctl->running) {
		if (write(ctl->stop[1], "x", 1) < 0)
			tl_warn(KVR_SUB, "control socket: cannot stop");
		pthread_join(ctl->thread, NULL);
	}
	while (ctl->clients) {
		struct ctl_client *cl = ctl->clients;

		ctl->clients = cl->next;
		shutdown(cl->fd, SHUT_RDWR);
		pthread_join(cl->thread, NULL);
		close(cl->fd);
		free(cl);
	}
	if (ctl->fd >= 0)
		close(ctl->fd);
	if (ctl->stop[0] >= 0) {
		close(ctl->stop[0]);
		close(ctl->stop[1]);
	}
	path = tl_asprintf("%s/%s", n->o.dir, KVR_CONTROL);
	unlink(path);
	free(path);
	pthread_mutex_destroy(&ctl->lock);
	free(ctl);
	n->ctl = NULL;
}
