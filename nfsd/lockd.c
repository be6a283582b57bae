/*
 * lockd.c - the lock manager of tesserad (nlm-internal.h): blocked
 * requests and their GRANTED callbacks, the grace period after a
 * restart, the adoption of the clients of gateways that are gone, and
 * the notifications (NSM SM_NOTIFY) that make them reclaim.
 *
 * Blocked requests.  A LOCK with block set that conflicts is answered
 * NLM4_BLOCKED and kept here (a waiter, with what the GRANTED callback
 * must repeat).  Waiters are tried again, oldest first, when a release
 * of their inode happens through this gateway (at once), and every
 * lock_poll while any wait when the volume's release counter changed
 * (a release through another gateway of the volume: one read of one
 * key per poll).  A waiter that gets its lock moves to the grants,
 * and GRANTED goes to the client's lock manager.  The client answers
 * NLM4_GRANTED (done), or anything else (it no longer waits: the lock
 * is released); if it cannot be reached, the attempts are spread over
 * lock_callback_window (60 s) and the lock is released after them,
 * unless the client asked for it again meanwhile and was told it holds
 * it (Linux clients repeat a blocked request every 30 s, so a client
 * behind a firewall still gets its lock).  Waiters not repeated for WAITER_TTL_NS are
 * forgotten.  At most max_waiters wait, a quarter of them per client.
 *
 * Restart and failover.  Locks are kept in the metadata, each client
 * recorded with the gateway session that serves it.  When this gateway
 * starts, and whenever a session of the volume goes stale, the clients
 * of sessions that are gone (this gateway's earlier runs: the sessions
 * of this host and address) are adopted: a new recovery epoch, a grace
 * of lock_grace, and SM_NOTIFY to the client's statd from the address
 * it reached, carrying a new NSM state, so that it reclaims.  A gateway
 * that adopted clients when it started grants only reclaims (others get
 * NLM4_DENIED_GRACE_PERIOD) until every adopted client reclaimed all it
 * held or lock_grace passed.  A gateway that adopts while it serves
 * (a failover) keeps granting: only the adopted clients' unreclaimed
 * locks are protected, requests that meet them are told to retry after
 * the grace.  Unreclaimed locks of a client that was notified are
 * dropped at the end of its grace; those of a client that could not be
 * told are kept.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nfsd/addr-internal.h"
#include "nfsd/nlm-internal.h"
#include "nfsd/nlm4_prot.h"
#include "nfsd/nsm_prot.h"

#define WAITER_TTL_NS   (600ull * 1000000000)
#define WATCH_MS        5000   /* sessions looked at this often */
#define TIDY_MS         600000 /* idle client records removed */
#define GRACE_RESEND_MS 5000   /* a client in its own grace */
#define GRACE_RESENDS   24
#define KICKS_MAX       64 /* inodes to retry; more: all */

/* A blocked request; later a granted one whose callback is in flight. */
struct waiter {
	struct nfsd_nlm *l;
	struct waiter *prev, *next;
	uint64_t ino;
	char *client;
	size_t client_len;
	int32_t svid;
	uint8_t *oh;
	size_t oh_len;
	uint64_t l_offset, l_len, start, end;
	bool excl;
	int32_t state;
	uint8_t *cookie;
	size_t cookie_len;
	uint8_t *fh;
	size_t fh_len;
	struct sockaddr_storage peer, local;
	uint64_t refreshed_ns;
	bool busy;          /* being tried by the thread (waiters) */
	bool cancelled;     /* CANCEL while busy: release what it gets */
	bool satisfied;     /* the owner holds it already: no callback */
	bool confirmed;     /* grant: the client asked again, was told */
	bool unlocked;      /* grant: the client unlocked it meanwhile */
	unsigned resends;   /* grant: answers NLM4_DENIED_GRACE_PERIOD */
	uint64_t resend_ns; /* grant: send again then (0: in flight) */
};

struct list {
	struct waiter *head, *tail;
	size_t n;
};

/* What the callback thread and the handlers hand to the lock thread. */
enum ev_kind { EV_GRANTED, EV_NOTIFIED, EV_GONE };

struct ev {
	struct ev *next;
	enum ev_kind kind;
	struct waiter *w; /* EV_GRANTED */
	int rc;           /* of the call */
	int32_t status;   /* its NLM status, rc 0 */
	char *name;       /* EV_NOTIFIED, EV_GONE */
	size_t name_len;
	uint32_t epoch; /* EV_NOTIFIED */
	int64_t state;  /* EV_GONE */
	struct sockaddr_storage from;
};

/* A client adopted, in grace. */
struct graced {
	char *name;
	size_t name_len;
	uint64_t until_ns; /* wall clock */
};

struct nfsd_nlm {
	struct meta *meta;
	struct nfsd_nlm_opts o;
	struct nfsd_cb *cb;
	pthread_t thr;
	bool thr_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* under mu */
	bool stop;
	struct list waiters, grants;
	struct ev *evs, *evs_tail;
	uint64_t kicks[KICKS_MAX];
	size_t nkicks;
	bool kick_all;
	/* set once by start */
	atomic_bool ready;
	atomic_bool grace; /* only reclaims */
	uint64_t session;
	int32_t nsm_state;
	char host[256], addr[META_SESSION_STR];
	/* the thread's */
	struct graced *graced;
	size_t ngraced;
	bool releases_known;
	uint64_t releases;
	uint64_t *live; /* sessions live at the last look */
	size_t nlive;
	/* figures */
	_Atomic uint64_t st_granted, st_failed, st_polls, st_adopted;
	_Atomic uint64_t st_gateways; /* other live sessions, last look */
};

/* ---- small things ----------------------------------------------------------- */

static void
list_push(struct list *l, struct waiter *w)
{
	w->next = NULL;
	w->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = w;
	else
		l->head = w;
	l->tail = w;
	l->n++;
}

static void
list_unlink(struct list *l, struct waiter *w)
{
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		l->head = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	else
		l->tail = w->prev;
	w->prev = w->next = NULL;
	l->n--;
}

static void
waiter_free(struct waiter *w)
{
	if (w == NULL)
		return;
	free(w->client);
	free(w->oh);
	free(w->cookie);
	free(w->fh);
	free(w);
}

static bool
owner_is(const struct waiter *w, const struct meta_lock_owner *o)
{
	return w->client_len == o->client_len &&
	       memcmp(w->client, o->client, o->client_len) == 0 &&
	       w->svid == (int32_t)o->svid && w->oh_len == o->oh_len &&
	       (o->oh_len == 0 || memcmp(w->oh, o->oh, o->oh_len) == 0);
}

static struct meta_lock_owner
owner_of(const struct waiter *w)
{
	struct meta_lock_owner o = {w->client, w->client_len, (uint32_t)w->svid,
				    w->oh, w->oh_len};

	return o;
}

/* Wake the thread (under mu). */
static void
wake(struct nfsd_nlm *l)
{
	pthread_cond_signal(&l->cv);
}

static void
ev_push(struct nfsd_nlm *l, struct ev *e)
{
	pthread_mutex_lock(&l->mu);
	e->next = NULL;
	if (l->evs_tail != NULL)
		l->evs_tail->next = e;
	else
		l->evs = e;
	l->evs_tail = e;
	wake(l);
	pthread_mutex_unlock(&l->mu);
}

static void
ev_free(struct ev *e)
{
	free(e->name);
	free(e);
}

static void
kick_locked(struct nfsd_nlm *l, uint64_t ino)
{
	for (size_t i = 0; i < l->nkicks; i++)
		if (l->kicks[i] == ino)
			return;
	if (l->nkicks < KICKS_MAX)
		l->kicks[l->nkicks++] = ino;
	else
		l->kick_all = true;
	wake(l);
}

/* meta's released callback: the thread is the caller. */
static void
released_cb(void *arg, uint64_t ino)
{
	struct nfsd_nlm *l = arg;

	pthread_mutex_lock(&l->mu);
	kick_locked(l, ino);
	pthread_mutex_unlock(&l->mu);
}

static bool
addr_parse(const char *s, struct sockaddr_storage *ss)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		return true;
	}
	return false;
}

/* A printable copy of a client name (names are bytes). */
static void
name_str(const char *name, size_t len, char *out, size_t cap)
{
	size_t k = 0;

	for (size_t i = 0; i < len && k + 1 < cap; i++)
		out[k++] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
	out[k] = '\0';
}

/* ---- callbacks -------------------------------------------------------------- */

/* Attempts of a callback spread over window_ms: a timeout per step of
 * a sixth of it (0.2 to 5 s), a first backoff of a thirtieth (0.1 to
 * 2 s), doubling, and attempts until the backoffs alone pass the window
 * (so even a client that refuses at once has the whole window). */
static void
spread(struct nfsd_cb_call *c, uint64_t window_ms)
{
	uint64_t t = 0, d;

	c->timeout_ms = (unsigned)TL_MIN(TL_MAX(window_ms / 6, 200), 5000);
	c->backoff_ms = (unsigned)TL_MIN(TL_MAX(window_ms / 30, 100), 2000);
	c->tries = 1;
	for (d = c->backoff_ms; t < window_ms;
	     d = TL_MIN(TL_MIN(d * 2, 16ull * c->backoff_ms),
			NFSD_CB_BACKOFF_MAX)) {
		t += d;
		c->tries++;
	}
}

/* Callback thread: the client answered GRANTED (or could not be told). */
static void
granted_done(void *arg, int rc, const uint8_t *res, size_t len)
{
	struct waiter *w = arg;
	struct ev *e = tl_calloc(1, sizeof(*e));
	nlm4_res r;
	XDR x;

	e->kind = EV_GRANTED;
	e->w = w;
	e->rc = rc;
	e->status = -1;
	if (rc == 0) {
		memset(&r, 0, sizeof(r));
		xdrmem_create(&x, (char *)res, (u_int)len, XDR_DECODE);
		if (xdr_nlm4_res(&x, &r))
			e->status = (int32_t)r.stat.stat;
		xdr_destroy(&x);
		xdr_free((xdrproc_t)xdr_nlm4_res, (char *)&r);
	}
	ev_push(w->l, e);
}

/* GRANTED for grant w (under mu or not: submit takes its own lock).
 * False when the callback queue is full. */
static bool
send_granted(struct nfsd_nlm *l, struct waiter *w)
{
	struct nfsd_cb_call c;
	nlm4_testargs a;
	XDR x;
	size_t n;

	memset(&a, 0, sizeof(a));
	a.cookie.nlm4_netobj_len = (u_int)w->cookie_len;
	a.cookie.nlm4_netobj_val = (char *)w->cookie;
	a.exclusive = w->excl;
	a.alock.caller_name.caller_name_len = (u_int)strlen(l->host);
	a.alock.caller_name.caller_name_val = l->host;
	a.alock.fh.nlm4_netobj_len = (u_int)w->fh_len;
	a.alock.fh.nlm4_netobj_val = (char *)w->fh;
	a.alock.oh.nlm4_netobj_len = (u_int)w->oh_len;
	a.alock.oh.nlm4_netobj_val = (char *)w->oh;
	a.alock.svid = w->svid;
	a.alock.l_offset = w->l_offset;
	a.alock.l_len = w->l_len;
	memset(&c, 0, sizeof(c));
	c.to = w->peer;
	c.from = w->local;
	c.prog = NLM_PROGRAM;
	c.vers = NLM_V4;
	c.proc = NLMPROC4_GRANTED;
	n = xdr_sizeof((xdrproc_t)xdr_nlm4_testargs, &a);
	tl_buf_reserve(&c.args, n);
	xdrmem_create(&x, (char *)c.args.data, (u_int)n, XDR_ENCODE);
	xdr_nlm4_testargs(&x, &a);
	c.args.len = xdr_getpos(&x);
	xdr_destroy(&x);
	spread(&c, l->o.cb_window_ms);
	c.done = granted_done;
	c.arg = w;
	w->resend_ns = 0;
	return nfsd_cb_submit(l->cb, &c) == 0;
}

struct notify_arg {
	struct nfsd_nlm *l;
	char *name;
	size_t name_len;
	uint32_t epoch;
	char who[160];
};

static void
notify_done(void *arg, int rc, const uint8_t *res, size_t len)
{
	struct notify_arg *a = arg;
	struct ev *e;

	if (rc != 0) {
		tl_notice("nlm",
			  "cannot tell client %s to reclaim its "
			  "locks (SM_NOTIFY: %s); they are kept",
			  a->who, strerror(-rc));
		atomic_fetch_add(&a->l->st_failed, 1);
		free(a->name);
		free(a);
		return;
	}
	tl_info("nlm", "client %s told to reclaim its locks", a->who);
	e = tl_calloc(1, sizeof(*e));
	e->kind = EV_NOTIFIED;
	e->name = a->name;
	e->name_len = a->name_len;
	e->epoch = a->epoch;
	ev_push(a->l, e);
	free(a);
}

/* SM_NOTIFY to client c, adopted in epoch: "the host you know as
 * c->local restarted, now in our NSM state". */
static void
send_notify(struct nfsd_nlm *l, const struct meta_lock_client *c,
	    uint32_t epoch)
{
	struct notify_arg *a = tl_calloc(1, sizeof(*a));
	struct nfsd_cb_call k;
	nsm_stat_chge s;
	char name[64];
	XDR x;
	size_t n;

	name_str(c->name, c->name_len, name, sizeof(name));
	snprintf(a->who, sizeof(a->who), "%s (%s)", name, c->addr);
	memset(&k, 0, sizeof(k));
	if (!addr_parse(c->addr, &k.to)) {
		tl_notice("nlm",
			  "client %s has no address to be told to "
			  "reclaim its locks; they are kept",
			  a->who);
		free(a);
		return;
	}
	addr_parse(c->local, &k.from);
	a->l = l;
	a->name = tl_memdup(c->name, c->name_len + 1);
	a->name_len = c->name_len;
	a->epoch = epoch;
	memset(&s, 0, sizeof(s));
	s.mon_name.mon_name_len = (u_int)strlen(c->local);
	s.mon_name.mon_name_val = (char *)c->local;
	s.state = l->nsm_state;
	n = xdr_sizeof((xdrproc_t)xdr_nsm_stat_chge, &s);
	tl_buf_reserve(&k.args, n);
	xdrmem_create(&x, (char *)k.args.data, (u_int)n, XDR_ENCODE);
	xdr_nsm_stat_chge(&x, &s);
	k.args.len = xdr_getpos(&x);
	xdr_destroy(&x);
	k.prog = NSM_PROGRAM;
	k.vers = NSM_V1;
	k.proc = NSMPROC_NOTIFY;
	spread(&k, TL_MAX(l->o.grace_ms, l->o.cb_window_ms));
	k.done = notify_done;
	k.arg = a;
	if (nfsd_cb_submit(l->cb, &k) != 0) {
		tl_notice("nlm",
			  "callback queue full: client %s not told to "
			  "reclaim its locks; they are kept",
			  a->who);
		free(a->name);
		free(a);
	}
}

static void
reply_done(void *arg, int rc, const uint8_t *res, size_t len)
{
	(void)arg;
	(void)res;
	(void)len;
	if (rc != 0)
		tl_debug("nlm", "an NLM _RES callback failed: %s",
			 strerror(-rc));
}

void
nfsd_nlm_reply(struct nfsd_nlm *l, const struct sockaddr_storage *peer,
	       const struct sockaddr_storage *local, uint32_t proc,
	       struct tl_buf *res)
{
	struct nfsd_cb_call c;

	memset(&c, 0, sizeof(c));
	c.to = *peer;
	c.from = *local;
	c.prog = NLM_PROGRAM;
	c.vers = NLM_V4;
	c.proc = proc;
	c.args = *res;
	memset(res, 0, sizeof(*res));
	spread(&c, l->o.cb_window_ms);
	c.done = reply_done;
	if (nfsd_cb_submit(l->cb, &c) != 0)
		tl_debug("nlm", "callback queue full: an NLM _RES dropped");
}

/* ---- waiters ------------------------------------------------------------------ */

void
nfsd_nlm_where(const struct nfsd_nlm *l, const struct sockaddr_storage *peer,
	       const struct sockaddr_storage *local, int32_t state,
	       struct nfsd_nlm_where *w, struct meta_lock_req *q)
{
	nfsd_peer_str(peer, w->addr, sizeof(w->addr));
	nfsd_peer_str(local, w->local, sizeof(w->local));
	w->w.addr = w->addr;
	w->w.local = w->local;
	w->w.session = l->session;
	w->w.state = state;
	q->where = &w->w;
	q->max_client = l->o.max_locks_client;
	q->max_total = l->o.max_locks;
}

int
nfsd_nlm_wait(struct nfsd_nlm *l, const struct nfsd_nlm_wait *q)
{
	struct waiter *w;
	size_t mine = 0;
	uint64_t cap = TL_MAX(l->o.max_waiters / 4, 1);
	struct meta_lock_owner o = {q->client, q->client_len, (uint32_t)q->svid,
				    q->oh, q->oh_len};

	pthread_mutex_lock(&l->mu);
	for (w = l->waiters.head; w != NULL; w = w->next) {
		if (w->client_len == q->client_len &&
		    memcmp(w->client, q->client, q->client_len) == 0)
			mine++;
		if (w->ino == q->ino && owner_is(w, &o) &&
		    w->start == q->start && w->end == q->end &&
		    w->excl == q->exclusive && !w->cancelled)
			break;
	}
	if (w != NULL) {
		/* the client asks again: it still waits */
		w->refreshed_ns = tl_mono_ns();
		w->peer = q->peer;
		w->local = q->local;
		w->state = q->state;
		if (!w->busy && q->cookie_len <= 1024) {
			free(w->cookie);
			w->cookie = tl_memdup(q->cookie_len ? q->cookie : "",
					      q->cookie_len);
			w->cookie_len = q->cookie_len;
		}
		kick_locked(l, q->ino);
		pthread_mutex_unlock(&l->mu);
		return 0;
	}
	if (l->waiters.n >= l->o.max_waiters || mine >= cap) {
		pthread_mutex_unlock(&l->mu);
		return -ENOSPC;
	}
	w = tl_calloc(1, sizeof(*w));
	w->l = l;
	w->ino = q->ino;
	w->client = tl_memdup(q->client_len ? q->client : "", q->client_len);
	w->client_len = q->client_len;
	w->svid = q->svid;
	w->oh = tl_memdup(q->oh_len ? q->oh : "", q->oh_len);
	w->oh_len = q->oh_len;
	w->l_offset = q->l_offset;
	w->l_len = q->l_len;
	w->start = q->start;
	w->end = q->end;
	w->excl = q->exclusive;
	w->state = q->state;
	w->cookie = tl_memdup(q->cookie_len ? q->cookie : "", q->cookie_len);
	w->cookie_len = q->cookie_len;
	w->fh = tl_memdup(q->fh_len ? q->fh : "", q->fh_len);
	w->fh_len = q->fh_len;
	w->peer = q->peer;
	w->local = q->local;
	w->refreshed_ns = tl_mono_ns();
	list_push(&l->waiters, w);
	/* a release between the handler's try and now is not missed */
	kick_locked(l, q->ino);
	pthread_mutex_unlock(&l->mu);
	return 0;
}

/* Try waiter w (busy, mu not held) and settle it (takes mu). */
static void
try_waiter(struct nfsd_nlm *l, struct waiter *w)
{
	struct nfsd_nlm_where wh;
	struct meta_lock_req r;
	struct meta_lock_result res;
	int rc;

	memset(&r, 0, sizeof(r));
	r.owner = owner_of(w);
	r.start = w->start;
	r.end = w->end;
	r.exclusive = w->excl;
	nfsd_nlm_where(l, &w->peer, &w->local, w->state, &wh, &r);
	rc = meta_lock(l->meta, w->ino, &r, &res);
	if (rc == 0 && w->cancelled) {
		/* the client gave up meanwhile: what it got goes back */
		if (!res.had) {
			meta_unlock(l->meta, w->ino, &r.owner, w->start, w->end,
				    &res);
			released_cb(l, w->ino);
		}
	}
	pthread_mutex_lock(&l->mu);
	w->busy = false;
	if (rc == -EBUSY && !w->cancelled && !w->satisfied) {
		pthread_mutex_unlock(&l->mu);
		return;
	}
	if (rc != 0 && rc != -EBUSY && rc != -ENOLCK && !w->cancelled &&
	    !w->satisfied) {
		/* the engine failed: try again at the next occasion */
		tl_info("nlm", "retrying a blocked lock: %s", strerror(-rc));
		pthread_mutex_unlock(&l->mu);
		return;
	}
	list_unlink(&l->waiters, w);
	if (rc == 0 && !w->cancelled && !w->satisfied) {
		list_push(&l->grants, w);
		if (send_granted(l, w)) {
			pthread_mutex_unlock(&l->mu);
			return;
		}
		/* no room to tell it: give the lock back, keep waiting */
		list_unlink(&l->grants, w);
		pthread_mutex_unlock(&l->mu);
		if (!res.had)
			meta_unlock(l->meta, w->ino, &r.owner, w->start, w->end,
				    &res);
		pthread_mutex_lock(&l->mu);
		list_push(&l->waiters, w);
		pthread_mutex_unlock(&l->mu);
		return;
	}
	pthread_mutex_unlock(&l->mu);
	waiter_free(w);
}

/* Try the waiters of the inodes in kicks (all of them when all), in the
 * order they came. */
static void
retry_waiters(struct nfsd_nlm *l, const uint64_t *kicks, size_t n, bool all)
{
	struct waiter **v;
	size_t k = 0, cap;

	pthread_mutex_lock(&l->mu);
	cap = l->waiters.n;
	v = tl_calloc(cap + 1, sizeof(*v));
	for (struct waiter *w = l->waiters.head; w != NULL; w = w->next) {
		bool hit = all;

		for (size_t i = 0; !hit && i < n; i++)
			hit = kicks[i] == w->ino;
		if (!hit || w->busy)
			continue;
		w->busy = true;
		v[k++] = w;
	}
	pthread_mutex_unlock(&l->mu);
	for (size_t i = 0; i < k; i++)
		try_waiter(l, v[i]);
	free(v);
}

/* Remove the waiters that drop(w, arg) selects, called under l->mu,
 * and free them (outside it). */
static void
drop_waiters(struct nfsd_nlm *l, bool (*drop)(struct waiter *w, void *arg),
	     void *arg)
{
	struct waiter *w, *next, *gone = NULL;

	pthread_mutex_lock(&l->mu);
	for (w = l->waiters.head; w != NULL; w = next) {
		next = w->next;
		if (!drop(w, arg))
			continue;
		list_unlink(&l->waiters, w);
		w->next = gone;
		gone = w;
	}
	pthread_mutex_unlock(&l->mu);
	while (gone != NULL) {
		w = gone;
		gone = w->next;
		waiter_free(w);
	}
}

static bool
expired(struct waiter *w, void *arg)
{
	return !w->busy && *(uint64_t *)arg - w->refreshed_ns >= WAITER_TTL_NS;
}

/* Forget waiters nobody asked for again for WAITER_TTL_NS. */
static void
expire_waiters(struct nfsd_nlm *l)
{
	uint64_t now = tl_mono_ns();

	drop_waiters(l, expired, &now);
}

int
nfsd_nlm_cancel(struct nfsd_nlm *l, uint64_t ino,
		const struct meta_lock_owner *o, uint64_t start, uint64_t end,
		bool exclusive)
{
	struct meta_lock_result res;
	struct waiter *w;
	bool release = false;

	pthread_mutex_lock(&l->mu);
	for (w = l->waiters.head; w != NULL; w = w->next)
		if (w->ino == ino && owner_is(w, o) && w->start == start &&
		    w->end == end && w->excl == exclusive && !w->cancelled)
			break;
	if (w != NULL) {
		if (w->busy) {
			w->cancelled = true;
		} else {
			list_unlink(&l->waiters, w);
			waiter_free(w);
		}
		pthread_mutex_unlock(&l->mu);
		return 0;
	}
	for (w = l->grants.head; w != NULL; w = w->next)
		if (w->ino == ino && owner_is(w, o) && w->start == start &&
		    w->end == end && w->excl == exclusive && !w->confirmed &&
		    !w->unlocked)
			break;
	if (w != NULL) {
		/* granted, the client not yet told: it no longer wants it */
		w->unlocked = true;
		release = true;
	}
	pthread_mutex_unlock(&l->mu);
	if (!release)
		return -ENOENT;
	if (meta_unlock(l->meta, ino, o, start, end, &res) == 0 && res.released)
		nfsd_nlm_released(l, ino);
	return 0;
}

void
nfsd_nlm_holds(struct nfsd_nlm *l, uint64_t ino,
	       const struct meta_lock_owner *o, uint64_t start, uint64_t end)
{
	struct waiter *w, *next;

	pthread_mutex_lock(&l->mu);
	for (w = l->grants.head; w != NULL; w = w->next)
		if (w->ino == ino && owner_is(w, o) && w->start >= start &&
		    w->end <= end)
			w->confirmed = true;
	for (w = l->waiters.head; w != NULL; w = next) {
		next = w->next;
		if (w->ino != ino || !owner_is(w, o) || w->start < start ||
		    w->end > end)
			continue;
		if (w->busy) {
			w->satisfied = true;
			continue;
		}
		list_unlink(&l->waiters, w);
		waiter_free(w);
	}
	pthread_mutex_unlock(&l->mu);
}

void
nfsd_nlm_unlocked(struct nfsd_nlm *l, uint64_t ino,
		  const struct meta_lock_owner *o, uint64_t start, uint64_t end)
{
	pthread_mutex_lock(&l->mu);
	for (struct waiter *w = l->grants.head; w != NULL; w = w->next)
		if (w->ino == ino && owner_is(w, o) && w->start < end &&
		    start < w->end)
			w->unlocked = true;
	pthread_mutex_unlock(&l->mu);
}

void
nfsd_nlm_released(struct nfsd_nlm *l, uint64_t ino)
{
	pthread_mutex_lock(&l->mu);
	if (l->waiters.n > 0)
		kick_locked(l, ino);
	pthread_mutex_unlock(&l->mu);
}

void
nfsd_nlm_client_gone(struct nfsd_nlm *l, const char *name, size_t len,
		     int64_t state, const struct sockaddr_storage *from)
{
	struct ev *e = tl_calloc(1, sizeof(*e));

	e->kind = EV_GONE;
	e->name = tl_malloc(len + 1); /* name: len bytes, unterminated */
	if (len > 0)
		memcpy(e->name, name, len);
	e->name[len] = '\0';
	e->name_len = len;
	e->state = state;
	e->from = *from;
	ev_push(l, e);
}

/* ---- events --------------------------------------------------------------------- */

/* The outcome of the GRANTED callback of grant w. */
static void
ev_granted(struct nfsd_nlm *l, struct ev *e)
{
	struct waiter *w = e->w;
	struct meta_lock_owner o = owner_of(w);
	struct meta_lock_result res;
	bool release;
	char name[64];

	name_str(w->client, w->client_len, name, sizeof(name));
	pthread_mutex_lock(&l->mu);
	if (e->rc == 0 && e->status == NLM4_DENIED_GRACE_PERIOD &&
	    ++w->resends <= GRACE_RESENDS && !w->unlocked) {
		/* the client restarted its lock manager: later */
		w->resend_ns = tl_mono_ns() + GRACE_RESEND_MS * 1000000ull;
		pthread_mutex_unlock(&l->mu);
		return;
	}
	list_unlink(&l->grants, w);
	release = !(e->rc == 0 && e->status == NLM4_GRANTED) && !w->confirmed &&
		  !w->unlocked;
	pthread_mutex_unlock(&l->mu);
	if (e->rc == 0 && e->status == NLM4_GRANTED) {
		atomic_fetch_add(&l->st_granted, 1);
		tl_debug("nlm", "client %s took its blocked lock", name);
	} else if (release) {
		atomic_fetch_add(&l->st_failed, e->rc != 0);
		tl_info("nlm",
			"client %s did not take the lock it waited for "
			"(%s); released",
			name, e->rc != 0 ? strerror(-e->rc) : "it answered no");
		if (meta_unlock(l->meta, w->ino, &o, w->start, w->end, &res) ==
			    0 &&
		    res.released)
			released_cb(l, w->ino);
	}
	waiter_free(w);
}

/* Grants whose client was in grace: call again. */
static void
resend_grants(struct nfsd_nlm *l)
{
	uint64_t now = tl_mono_ns();

	pthread_mutex_lock(&l->mu);
	for (struct waiter *w = l->grants.head; w != NULL; w = w->next)
		if (w->resend_ns != 0 && w->resend_ns <= now &&
		    !send_granted(l, w))
			w->resend_ns = now + GRACE_RESEND_MS * 1000000ull;
	pthread_mutex_unlock(&l->mu);
}

struct by_addr {
	uint8_t a[16];
	int fam;
	char **names;
	size_t *lens, n;
};

static int
by_addr_cb(void *arg, const struct meta_lock_client *c)
{
	struct by_addr *b = arg;
	struct sockaddr_storage ss;
	uint8_t a[16];

	if (!addr_parse(c->addr, &ss) ||
	    nfsd_peer_addr(&ss, true, a) != b->fam ||
	    memcmp(a, b->a, b->fam == AF_INET ? 4 : 16) != 0 || b->n >= 16)
		return 0;
	b->names[b->n] = tl_memdup(c->name, c->name_len + 1);
	b->lens[b->n++] = c->name_len;
	return 0;
}

/* The waiters of the clients an event names (n names; of another NSM
 * state than state, unless state < 0). */
struct gone_clients {
	char **names;
	size_t *lens, n;
	int64_t state;
};

/* A waiter of a gone client: dropped, or, being tried, cancelled (the
 * try releases what it gets and frees it). */
static bool
of_gone_client(struct waiter *w, void *arg)
{
	const struct gone_clients *g = arg;
	bool match = false;

	for (size_t i = 0; i < g->n && !match; i++)
		match = w->client_len == g->lens[i] &&
			memcmp(w->client, g->names[i], g->lens[i]) == 0 &&
			(g->state < 0 || w->state != g->state);
	if (match && w->busy)
		w->cancelled = true;
	return match && !w->busy;
}

/* FREE_ALL or SM_NOTIFY: drop the client's locks.  A name no record
 * knows (an SM_NOTIFY may carry a fully qualified name where the
 * client's locks say a short one) falls back on the clients recorded at
 * the sender's address. */
static void
ev_gone(struct nfsd_nlm *l, struct ev *e)
{
	char *names[17], name[64];
	size_t lens[17];
	struct by_addr b = {{0}, 0, names + 1, lens + 1, 0};
	uint64_t dropped = 0, d;
	struct gone_clients g = {names, lens, 0, e->state};

	name_str(e->name, e->name_len, name, sizeof(name));
	names[0] = e->name; /* e's */
	lens[0] = e->name_len;
	if (meta_lock_drop(l->meta, e->name, e->name_len, e->state, released_cb,
			   l, &dropped) == 0 &&
	    dropped == 0 && e->state >= 0) {
		b.fam = nfsd_peer_addr(&e->from, true, b.a);
		if (b.fam != 0)
			meta_lock_clients(l->meta, by_addr_cb, &b);
		for (size_t i = 0; i < b.n; i++)
			if (meta_lock_drop(l->meta, b.names[i], b.lens[i],
					   e->state, released_cb, l, &d) == 0)
				dropped += d;
	}
	g.n = 1 + b.n;
	drop_waiters(l, of_gone_client, &g); /* its waiters too */
	tl_notice("nlm", "client %s %s: %llu of its lock records dropped", name,
		  e->state < 0 ? "freed all its locks" : "restarted",
		  (unsigned long long)dropped);
	for (size_t i = 0; i < b.n; i++)
		free(b.names[i]);
}

static void
run_events(struct nfsd_nlm *l, struct ev *e)
{
	while (e != NULL) {
		struct ev *next = e->next;

		switch (e->kind) {
		case EV_GRANTED:
			ev_granted(l, e);
			break;
		case EV_NOTIFIED:
			meta_lock_notified(l->meta, e->name, e->name_len,
					   e->epoch);
			break;
		case EV_GONE:
			ev_gone(l, e);
			break;
		}
		ev_free(e);
		e = next;
	}
}

/* ---- grace and adoption --------------------------------------------------------- */

static void
graced_add(struct nfsd_nlm *l, const struct meta_lock_client *c, uint64_t until)
{
	struct graced *g;

	l->graced = tl_realloc(l->graced, (l->ngraced + 1) * sizeof(*g));
	g = &l->graced[l->ngraced++];
	g->name = tl_memdup(c->name, c->name_len + 1);
	g->name_len = c->name_len;
	g->until_ns = until;
}

/* Settle the grace of the adopted clients; the restart's grace ends
 * with the last of them. */
static void
settle_grace(struct nfsd_nlm *l)
{
	uint64_t now = tl_now_ns(), left, dropped;
	size_t k = 0;

	for (size_t i = 0; i < l->ngraced; i++) {
		struct graced *g = &l->graced[i];
		char name[64];
		int rc = meta_lock_recover(l->meta, g->name, g->name_len, now,
					   &left, released_cb, l, &dropped);

		name_str(g->name, g->name_len, name, sizeof(name));
		if (rc == 0 && (left == 0 || now >= g->until_ns)) {
			if (left == 0)
				tl_info("nlm", "client %s reclaimed its locks",
					name);
			else
				tl_notice("nlm",
					  "client %s: grace over, %llu "
					  "locks not reclaimed, %llu dropped",
					  name, (unsigned long long)left,
					  (unsigned long long)dropped);
			free(g->name);
			continue;
		}
		l->graced[k++] = *g;
	}
	l->ngraced = k;
	if (k == 0 && atomic_load(&l->grace)) {
		atomic_store(&l->grace, false);
		tl_notice("nlm", "grace period over: granting every lock "
				 "request");
	}
}

struct sess {
	uint64_t id;
	bool live;
	char host[META_SESSION_STR], addr[META_SESSION_STR];
};

struct sess_list {
	struct sess *v;
	size_t n;
	uint64_t now;
};

static int
sess_cb(void *arg, const struct meta_session *s)
{
	struct sess_list *sl = arg;
	struct sess *e;

	sl->v = tl_realloc(sl->v, (sl->n + 1) * sizeof(*e));
	e = &sl->v[sl->n++];
	e->id = s->id;
	e->live = meta_session_live(s, sl->now);
	memcpy(e->host, s->host, sizeof(e->host));
	memcpy(e->addr, s->addr, sizeof(e->addr));
	return 0;
}

struct adopt_scan {
	struct nfsd_nlm *l;
	struct meta_lock_client *v;
	size_t n;
};

static bool
live_session(const struct nfsd_nlm *l, uint64_t id)
{
	if (id == l->session)
		return true;
	for (size_t i = 0; i < l->nlive; i++)
		if (l->live[i] == id)
			return true;
	return false;
}

static int
adopt_cb(void *arg, const struct meta_lock_client *c)
{
	struct adopt_scan *a = arg;

	if (c->held == 0 || live_session(a->l, c->session))
		return 0;
	a->v = tl_realloc(a->v, (a->n + 1) * sizeof(*a->v));
	a->v[a->n++] = *c;
	return 0;
}

/* Look at the gateway sessions; when one went away (or at start), adopt
 * the clients of those gone.  Returns how many were adopted. */
static size_t
watch_sessions(struct nfsd_nlm *l, bool start)
{
	struct sess_list sl = {NULL, 0, tl_now_ns()};
	struct adopt_scan a = {l, NULL, 0};
	const struct sess *me = NULL;
	uint64_t *live, until;
	size_t nlive = 0, adopted = 0;
	bool changed = start;

	if (meta_session_list(l->meta, sess_cb, &sl) != 0) {
		free(sl.v);
		return 0;
	}
	for (size_t i = 0; i < sl.n; i++)
		if (sl.v[i].id == l->session)
			me = &sl.v[i];
	live = tl_calloc(sl.n + 1, sizeof(*live));
	for (size_t i = 0; i < sl.n; i++) {
		const struct sess *s = &sl.v[i];

		/* this gateway's earlier runs are gone, whatever their
		 * heartbeat says */
		if (!s->live || s->id == l->session ||
		    (me != NULL && strcmp(s->host, me->host) == 0 &&
		     strcmp(s->addr, me->addr) == 0))
			continue;
		live[nlive++] = s->id;
	}
	/* a session that was live and is no longer: a gateway went away */
	for (size_t i = 0; i < l->nlive && !changed; i++) {
		bool still = false;

		for (size_t j = 0; j < nlive && !still; j++)
			still = live[j] == l->live[i];
		changed = !still;
	}
	free(l->live);
	l->live = live;
	l->nlive = nlive;
	atomic_store(&l->st_gateways, nlive);
	free(sl.v);
	if (!changed)
		return 0;
	if (meta_lock_clients(l->meta, adopt_cb, &a) != 0) {
		free(a.v);
		return 0;
	}
	until = tl_now_ns() + l->o.grace_ms * 1000000ull;
	for (size_t i = 0; i < a.n; i++) {
		struct meta_lock_client *c = &a.v[i];
		uint32_t epoch;
		char name[64];

		if (meta_lock_adopt(l->meta, c->name, c->name_len, c->session,
				    l->session, until, &epoch) != 0)
			continue;
		name_str(c->name, c->name_len, name, sizeof(name));
		tl_notice("nlm",
			  "client %s (%s) of gateway session %016llx, "
			  "which is gone, adopted: %llu locks to reclaim",
			  name, c->addr, (unsigned long long)c->session,
			  (unsigned long long)c->held);
		graced_add(l, c, until);
		send_notify(l, c, epoch);
		adopted++;
	}
	atomic_fetch_add(&l->st_adopted, adopted);
	free(a.v);
	return adopted;
}

/* ---- the thread ---------------------------------------------------------------- */

static void
poll_releases(struct nfsd_nlm *l)
{
	uint64_t n;

	if (meta_lock_releases(l->meta, &n) != 0)
		return;
	atomic_fetch_add(&l->st_polls, 1);
	if (l->releases_known && n == l->releases)
		return;
	l->releases = n;
	l->releases_known = true;
	retry_waiters(l, NULL, 0, true);
}

static uint64_t
earliest_resend(struct nfsd_nlm *l)
{
	uint64_t t = UINT64_MAX;

	for (struct waiter *w = l->grants.head; w != NULL; w = w->next)
		if (w->resend_ns != 0 && w->resend_ns < t)
			t = w->resend_ns;
	return t;
}

static void
wait_until(struct nfsd_nlm *l, uint64_t mono_ns)
{
	struct timespec ts = {(time_t)(mono_ns / 1000000000ull),
			      (long)(mono_ns % 1000000000ull)};

	pthread_cond_timedwait(&l->cv, &l->mu, &ts);
}

static void *
lockd_main(void *arg)
{
	struct nfsd_nlm *l = arg;
	uint64_t t0 = tl_mono_ns(), poll_ns = l->o.poll_ms * 1000000ull;
	uint64_t next_poll = t0, next_watch = t0 + WATCH_MS * 1000000ull;
	uint64_t next_tidy = t0 + TIDY_MS * 1000000ull, next_grace = t0;
	uint64_t grace_ns = TL_MIN(poll_ns, 1000000000ull);

	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		uint64_t now = tl_mono_ns(), at;
		uint64_t kicks[KICKS_MAX];
		size_t nkicks;
		bool all;
		struct ev *evs;

		if (l->evs == NULL && l->nkicks == 0 && !l->kick_all) {
			at = TL_MIN(next_watch, next_tidy);
			if (l->waiters.n > 0)
				at = TL_MIN(at, next_poll);
			if (l->ngraced > 0)
				at = TL_MIN(at, next_grace);
			at = TL_MIN(at, earliest_resend(l));
			if (at > now) {
				wait_until(l, at);
				continue;
			}
		}
		evs = l->evs;
		l->evs = l->evs_tail = NULL;
		nkicks = l->nkicks;
		memcpy(kicks, l->kicks, nkicks * sizeof(*kicks));
		all = l->kick_all;
		l->nkicks = 0;
		l->kick_all = false;
		pthread_mutex_unlock(&l->mu);

		run_events(l, evs);
		if (nkicks > 0 || all)
			retry_waiters(l, kicks, nkicks, all);
		now = tl_mono_ns();
		if (now >= next_poll) {
			if (l->waiters.n > 0)
				poll_releases(l);
			next_poll = now + poll_ns;
		}
		if (l->ngraced > 0 && now >= next_grace) {
			settle_grace(l);
			next_grace = now + grace_ns;
		}
		resend_grants(l);
		if (now >= next_watch) {
			watch_sessions(l, false);
			expire_waiters(l);
			next_watch = now + WATCH_MS * 1000000ull;
		}
		if (now >= next_tidy) {
			meta_lock_tidy(l->meta, NULL);
			next_tidy = now + TIDY_MS * 1000000ull;
		}
		pthread_mutex_lock(&l->mu);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* ---- life ----------------------------------------------------------------------- */

int
nfsd_nlm_create(struct meta *m, const struct nfsd_nlm_opts *o,
		struct nfsd_nlm **out)
{
	struct nfsd_nlm *l = tl_calloc(1, sizeof(*l));
	pthread_condattr_t ca;
	int rc;

	l->meta = m;
	l->o = *o;
	if (l->o.max_waiters == 0)
		l->o.max_waiters = 1;
	if (l->o.poll_ms == 0)
		l->o.poll_ms = 1000;
	if (l->o.cb_window_ms == 0)
		l->o.cb_window_ms = 60000;
	if (gethostname(l->host, sizeof(l->host) - 1) != 0)
		strcpy(l->host, "tesserad");
	pthread_mutex_init(&l->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
	rc = nfsd_cb_create((unsigned)TL_MIN(l->o.max_waiters + 4096, 1u << 20),
			    &l->cb);
	if (rc != 0) {
		nfsd_nlm_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

int
nfsd_nlm_start(struct nfsd_nlm *l, uint64_t session)
{
	size_t adopted;
	int rc;

	l->session = session;
	rc = meta_lock_nsm_state(l->meta, &l->nsm_state);
	if (rc != 0) {
		tl_err("nlm", "cannot take an NSM state: %s", strerror(-rc));
		return rc;
	}
	adopted = watch_sessions(l, true);
	if (adopted > 0 && l->o.grace_ms > 0) {
		atomic_store(&l->grace, true);
		tl_notice("nlm",
			  "grace period: %zu clients to reclaim their "
			  "locks within %llu s; only reclaims are granted "
			  "until then",
			  adopted, (unsigned long long)(l->o.grace_ms / 1000));
	}
	rc = pthread_create(&l->thr, NULL, lockd_main, l);
	if (rc != 0)
		return -rc;
	l->thr_started = true;
	atomic_store(&l->ready, true);
	tl_info("nlm", "NFS locking (NLM v4, NSM): NSM state %d", l->nsm_state);
	return 0;
}

void
nfsd_nlm_free(struct nfsd_nlm *l)
{
	struct waiter *w;
	struct ev *e;

	if (l == NULL)
		return;
	if (l->thr_started) {
		pthread_mutex_lock(&l->mu);
		l->stop = true;
		wake(l);
		pthread_mutex_unlock(&l->mu);
		pthread_join(l->thr, NULL);
	}
	/* calls in flight end (-ECANCELED) and queue their events */
	nfsd_cb_free(l->cb);
	while ((e = l->evs) != NULL) {
		l->evs = e->next;
		ev_free(e); /* an EV_GRANTED's waiter is in grants */
	}
	while ((w = l->waiters.head) != NULL) {
		list_unlink(&l->waiters, w);
		waiter_free(w);
	}
	while ((w = l->grants.head) != NULL) {
		list_unlink(&l->grants, w);
		waiter_free(w);
	}
	for (size_t i = 0; i < l->ngraced; i++)
		free(l->graced[i].name);
	free(l->graced);
	free(l->live);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

bool
nfsd_nlm_ready(struct nfsd_nlm *l)
{
	return l != NULL && atomic_load(&l->ready);
}

bool
nfsd_nlm_in_grace(struct nfsd_nlm *l)
{
	return atomic_load(&l->grace);
}

int32_t
nfsd_nlm_nsm_state(struct nfsd_nlm *l)
{
	return l->nsm_state;
}

struct meta *
nfsd_nlm_meta(struct nfsd_nlm *l)
{
	return l->meta;
}

void
nfsd_nlm_stats(struct nfsd_nlm *l, struct nfsd_lock_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&l->mu);
	out->waiters = l->waiters.n;
	pthread_mutex_unlock(&l->mu);
	out->callbacks = nfsd_cb_pending(l->cb);
	out->granted_cb = atomic_load(&l->st_granted);
	out->cb_failed = atomic_load(&l->st_failed);
	out->polls = atomic_load(&l->st_polls);
	out->adopted = atomic_load(&l->st_adopted);
	out->gateways = atomic_load(&l->st_gateways);
	out->grace = atomic_load(&l->grace);
}
