/*
 * session.c - gateway sessions: the G<id> records through which the
 * gateways serving a volume make themselves known (meta.h, "gateway
 * sessions").
 *
 * Record: key <vol>\0G<id be64>, value (version 1)
 *   u8 version, be64 start_ns, be64 heartbeat_ns, be64 seq, be32 ttl_s,
 *   be32 pid, then three strings of u8 length + bytes: host, addr,
 *   version, then be32 compact_queued (chunks the gateway has queued for
 *   compaction, as of the heartbeat; absent in older records: 0).
 * Fields are only ever appended: a reader ignores bytes past those it
 * knows, so a newer gateway's record still lists.
 *
 * Every session start also bumps the counter CNT_SESSIONS, in the same
 * transaction, so that a command which read the volume and then writes
 * (fsck --repair) can tell whether a gateway started in between, even
 * one that stopped again.
 *
 * The background-job lease: key <vol>\0B, value (version 1) u8 version,
 * be64 holder session id, be64 since_ns (when that holder took it).  A
 * keeper that wants the lease (meta_session_want_lease) looks at it in
 * each heartbeat's transaction and takes it when it is free: no record,
 * or the record names a session that is gone (a clean stop removed both)
 * or stale (no heartbeat within its ttl: the holder was killed or hangs).
 * The holder renews nothing but its heartbeat: the lease lives exactly as
 * long as the holder's session, so the lease time is the session ttl
 * (session_timeout).  The holder trusts its lease for half the ttl past
 * its last heartbeat that committed, on its monotonic clock: a holder
 * that cannot reach the metadata stops its jobs before another gateway
 * may take them (that one waits a whole ttl on the wall clock).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "meta/meta-internal.h"

#define SESSION_VERSION 1
#define SESSION_FIXED   (1 + 8 + 8 + 8 + 4 + 4)
#define SESSION_VMAX    (SESSION_FIXED + 3 * (1 + META_SESSION_STR) + 4)
#define LEASE_VERSION   1
#define LEASE_VLEN      (1 + 8 + 8)

struct meta_session_keeper {
	struct meta *m;
	struct meta_session s; /* as last written */
	pthread_t thread;
	bool running; /* thread started */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	bool kick;                   /* renew now (the lease is wanted) */
	bool failing;                /* the last renewal failed (logged once) */
	_Atomic bool want_lease;     /* take the background-job lease */
	_Atomic uint64_t held_until; /* tl_mono_ns() up to which the lease
					 is ours; 0: not held */
	/* what the heartbeat records of the gateway's jobs */
	void (*probe)(void *arg, struct meta_session *s);
	void *probe_arg;
};

static void
copy_str(char *dst, const char *src)
{
	snprintf(dst, META_SESSION_STR, "%s", src ? src : "");
}

static size_t
session_encode(const struct meta_session *s, uint8_t *v)
{
	uint8_t *p = v;
	const char *strs[3] = {s->host, s->addr, s->version};

	*p++ = SESSION_VERSION;
	tl_put_be64(p, s->start_ns);
	tl_put_be64(p + 8, s->heartbeat_ns);
	tl_put_be64(p + 16, s->seq);
	tl_put_be32(p + 24, s->ttl_s);
	tl_put_be32(p + 28, s->pid);
	p += 32;
	for (int i = 0; i < 3; i++) {
		size_t n = strnlen(strs[i], META_SESSION_STR - 1);

		*p++ = (uint8_t)n;
		memcpy(p, strs[i], n);
		p += n;
	}
	tl_put_be32(p, s->compact_queued);
	p += 4;
	return (size_t)(p - v);
}

static int
session_decode(uint64_t id, const void *val, size_t len, struct meta_session *s)
{
	const uint8_t *p = val, *end = p + len;
	char *strs[3];

	memset(s, 0, sizeof(*s));
	strs[0] = s->host;
	strs[1] = s->addr;
	strs[2] = s->version;
	if (len < SESSION_FIXED || p[0] != SESSION_VERSION)
		return -EIO;
	s->id = id;
	s->start_ns = tl_get_be64(p + 1);
	s->heartbeat_ns = tl_get_be64(p + 9);
	s->seq = tl_get_be64(p + 17);
	s->ttl_s = tl_get_be32(p + 25);
	s->pid = tl_get_be32(p + 29);
	p += SESSION_FIXED;
	for (int i = 0; i < 3; i++) {
		size_t n;

		if (p >= end)
			return -EIO;
		n = *p++;
		if (n >= META_SESSION_STR || (size_t)(end - p) < n)
			return -EIO;
		memcpy(strs[i], p, n);
		strs[i][n] = '\0';
		p += n;
	}
	if (end - p >= 4)
		s->compact_queued = tl_get_be32(p);
	return 0;
}

int
meta_session_get(struct mtxn *t, uint64_t id, struct meta_session *s)
{
	struct meta_key k;
	const void *v;
	size_t vlen;
	int rc;

	meta_key_session(t->m, &k, id);
	rc = meta_kv_get(t->kv, k.b, k.len, &v, &vlen);
	if (rc == 0 && session_decode(id, v, vlen, s) < 0)
		rc = -ENOENT;
	return rc;
}

int
meta_session_decode(uint64_t id, const void *val, size_t len,
		    struct meta_session *s)
{
	return session_decode(id, val, len, s);
}

bool
meta_session_live(const struct meta_session *s, uint64_t now_ns)
{
	return now_ns < s->heartbeat_ns ||
	       now_ns - s->heartbeat_ns <= (uint64_t)s->ttl_s * 1000000000ULL;
}

static int
session_put(struct mtxn *t, const struct meta_session *s)
{
	uint8_t v[SESSION_VMAX];
	struct meta_key k;

	meta_key_session(t->m, &k, s->id);
	return meta_kv_put(t->kv, k.b, k.len, v, session_encode(s, v));
}

struct session_scan {
	meta_session_cb cb;
	void *arg;
	int rc;
};

static int
session_scan_cb(void *arg, const void *key, size_t klen, const void *val,
		size_t vlen)
{
	struct session_scan *sc = arg;
	struct meta_session s;
	const uint8_t *k = key;

	/* <vol>\0G<id>: the id is the last 8 bytes. */
	if (klen < 9 ||
	    session_decode(tl_get_be64(k + klen - 8), val, vlen, &s) < 0) {
		tl_warn(META_SUB, "an unreadable gateway session record; "
				  "skipped");
		return 0;
	}
	sc->rc = sc->cb(sc->arg, &s);
	return sc->rc != 0;
}

static int
session_scan(struct mtxn *t, meta_session_cb cb, void *arg)
{
	struct session_scan sc = {cb, arg, 0};
	struct meta_key s, e;
	int rc;

	meta_key_tag(t->m, &s, 'G');
	meta_key_tag(t->m, &e, 'H');
	rc = meta_kv_scan(t->kv, s.b, s.len, e.b, e.len, session_scan_cb, &sc);
	return rc ? rc : (sc.rc < 0 ? sc.rc : 0);
}

int
meta_session_list(struct meta *m, meta_session_cb cb, void *arg)
{
	struct mtxn t;
	int rc;

	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	rc = session_scan(&t, cb, arg);
	return meta_txn_end(&t, rc);
}

/* At most this many stale sessions are removed at a start. */
#define PURGE_MAX 64

struct purge {
	uint64_t now, ids[PURGE_MAX];
	size_t n;
};

static int
purge_cb(void *arg, const struct meta_session *s)
{
	struct purge *p = arg;

	if (meta_session_live(s, p->now) || p->n == PURGE_MAX)
		return 0;
	tl_notice(META_SUB,
		  "removing the stale session of gateway %s (%s, "
		  "pid %u, version %s): no heartbeat for %llu s, it was "
		  "stopped without a clean shutdown",
		  s->host, s->addr, s->pid, s->version,
		  (unsigned long long)((p->now - s->heartbeat_ns) /
				       1000000000ULL));
	p->ids[p->n++] = s->id;
	return 0;
}

static int
lease_decode(const void *val, size_t len, struct meta_lease *l)
{
	const uint8_t *p = val;

	if (len < LEASE_VLEN || p[0] != LEASE_VERSION)
		return -EIO;
	l->holder = tl_get_be64(p + 1);
	l->since_ns = tl_get_be64(p + 9);
	return 0;
}

/* The lease record, or -ENOENT. */
static int
lease_read(struct mtxn *t, struct meta_lease *l)
{
	struct meta_key k;
	const void *v;
	size_t vlen;
	int rc;

	memset(l, 0, sizeof(*l));
	meta_key_tag(t->m, &k, 'B');
	rc = meta_kv_get(t->kv, k.b, k.len, &v, &vlen);
	if (rc == 0 && lease_decode(v, vlen, l) < 0) {
		tl_warn(META_SUB, "an unreadable background-job lease record; "
				  "taken as free");
		rc = -ENOENT;
	}
	return rc;
}

void
meta_session_set_probe(struct meta_session_keeper *kp,
		       void (*probe)(void *arg, struct meta_session *s),
		       void *arg)
{
	pthread_mutex_lock(&kp->mu);
	kp->probe = probe;
	kp->probe_arg = arg;
	pthread_mutex_unlock(&kp->mu);
}

int
meta_lease_read(struct mtxn *t, struct meta_lease *l)
{
	return lease_read(t, l);
}

/* In the heartbeat's transaction: keep or take the lease for s.  *held
 * says whether s holds it when the transaction commits. */
static int
lease_claim(struct mtxn *t, const struct meta_session *s, bool *held)
{
	struct meta_lease l;
	struct meta_session h;
	struct meta_key k;
	uint8_t v[LEASE_VLEN];
	uint64_t now = tl_now_ns();
	int rc;

	*held = false;
	rc = lease_read(t, &l);
	if (rc == 0 && l.holder == s->id) {
		*held = true;
		return 0;
	}
	if (rc == 0) {
		rc = meta_session_get(t, l.holder, &h);
		if (rc == 0 && meta_session_live(&h, now))
			return 0; /* held by a live gateway */
		if (rc == 0) {
			tl_notice(META_SUB,
				  "taking the background jobs over "
				  "from gateway %s (%s, pid %u): no heartbeat "
				  "for %llu s",
				  h.host, h.addr, h.pid,
				  (unsigned long long)((now - h.heartbeat_ns) /
						       1000000000ULL));
			rc = -ENOENT; /* taken as free */
		}
	}
	if (rc != -ENOENT)
		return rc;
	v[0] = LEASE_VERSION;
	tl_put_be64(v + 1, s->id);
	tl_put_be64(v + 9, now);
	meta_key_tag(t->m, &k, 'B');
	rc = meta_kv_put(t->kv, k.b, k.len, v, sizeof(v));
	*held = rc == 0;
	return rc;
}

static int
create_txn(struct mtxn *t, void *arg)
{
	struct meta_session *s = arg;
	struct purge p;
	struct meta_key k;
	uint64_t n;
	int rc;

	s->id = tl_random_u64();
	s->start_ns = s->heartbeat_ns = tl_now_ns();
	p.now = s->start_ns;
	p.n = 0;
	rc = session_scan(t, purge_cb, &p);
	for (size_t i = 0; rc == 0 && i < p.n; i++) {
		meta_key_session(t->m, &k, p.ids[i]);
		rc = meta_kv_del(t->kv, k.b, k.len);
	}
	if (rc == 0)
		rc = meta_counter_get(t, CNT_SESSIONS, &n);
	if (rc == 0)
		rc = meta_counter_set(t, CNT_SESSIONS, n + 1);
	if (rc == 0)
		rc = session_put(t, s);
	return rc;
}

/* Record s (a fresh id), bump CNT_SESSIONS and remove the sessions of
 * gateways that died without removing theirs. */
static int
session_create(struct meta *m, struct meta_session *s)
{
	return meta_txn_run(m, false, create_txn, s);
}

/* After a heartbeat that committed at or after began: whether the
 * lease is ours, and until when we trust it. */
static void
lease_note(struct meta_session_keeper *kp, bool held, uint64_t began)
{
	uint64_t was = atomic_load(&kp->held_until);

	if (held && was == 0)
		tl_notice(META_SUB,
			  "this gateway holds the background-job "
			  "lease: it runs deletion, compaction and trash "
			  "expiry for the volume");
	else if (!held && was != 0)
		tl_notice(META_SUB, "this gateway no longer holds the "
				    "background-job lease");
	atomic_store(&kp->held_until,
		     held ? began + (uint64_t)kp->s.ttl_s * 500000000ULL : 0);
}

struct renew_op {
	struct meta_session_keeper *kp;
	bool want, held;
};

static int
renew_txn(struct mtxn *t, void *arg)
{
	struct renew_op *o = arg;
	struct meta_session_keeper *kp = o->kp;
	struct meta_session *s = &kp->s;
	struct meta_key k;
	const void *v;
	size_t vlen;
	int rc;

	o->held = false;
	t->lazy = true;
	meta_key_session(t->m, &k, s->id);
	rc = meta_kv_get(t->kv, k.b, k.len, &v, &vlen);
	if (rc == -ENOENT)
		tl_warn(META_SUB, "this gateway's session record was "
				  "removed; writing it again");
	if (rc == 0 || rc == -ENOENT) {
		pthread_mutex_lock(&kp->mu);
		if (kp->probe != NULL)
			kp->probe(kp->probe_arg, s);
		pthread_mutex_unlock(&kp->mu);
		s->heartbeat_ns = tl_now_ns();
		s->seq++;
		rc = session_put(t, s);
	}
	if (rc == 0 && o->want)
		rc = lease_claim(t, s, &o->held);
	return rc;
}

/* One heartbeat: a small transaction committed lazily (a heartbeat lost
 * to a crash costs nothing).  A record someone removed (an operator's
 * --force) is written again. */
static int
session_renew(struct meta_session_keeper *kp)
{
	struct renew_op o = {kp, atomic_load(&kp->want_lease), false};
	uint64_t began = tl_mono_ns();
	int rc;

	rc = meta_txn_run(kp->m, false, renew_txn, &o);
	if (rc == 0)
		lease_note(kp, o.held, began);
	return rc;
}

static void *
keeper_main(void *arg)
{
	struct meta_session_keeper *kp = arg;
	/* Six heartbeats per ttl: a stall of a few is no expiry. */
	uint64_t period_ns = (uint64_t)kp->s.ttl_s * 1000000000ULL / 6;
	struct timespec ts;
	unsigned beats = 0;
	int rc;

	pthread_mutex_lock(&kp->mu);
	while (!kp->stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(period_ns / 1000000000ULL);
		ts.tv_nsec += (long)(period_ns % 1000000000ULL);
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!kp->stop && !kp->kick &&
		       pthread_cond_timedwait(&kp->cv, &kp->mu, &ts) == 0)
			;
		if (kp->stop)
			break;
		kp->kick = false;
		pthread_mutex_unlock(&kp->mu);
		rc = session_renew(kp);
		if (rc && !kp->failing)
			tl_warn(META_SUB,
				"gateway session heartbeat: %s; "
				"retrying (past %u s without one, fsck "
				"--repair and destroy stop seeing this "
				"gateway)",
				strerror(-rc), kp->s.ttl_s);
		else if (rc == 0 && kp->failing)
			tl_notice(META_SUB, "gateway session heartbeat "
					    "works again");
		kp->failing = rc != 0;
		/* The stall alarm's sample, once a lease period (bgwatch.c). */
		if (rc == 0 && beats++ % 6 == 0) {
			rc = meta_bgwatch_sample(kp->m, 6 * period_ns);
			if (rc)
				tl_debug(META_SUB, "backlog sample: %s",
					 strerror(-rc));
		}
		pthread_mutex_lock(&kp->mu);
	}
	pthread_mutex_unlock(&kp->mu);
	return NULL;
}

int
meta_session_start(struct meta *m, const char *addr, const char *version,
		   uint32_t ttl_s, struct meta_session_keeper **out)
{
	struct meta_session_keeper *kp = tl_calloc(1, sizeof(*kp));
	pthread_condattr_t ca;
	char host[256];
	int rc;

	*out = NULL;
	if (ttl_s < META_SESSION_TTL_MIN)
		ttl_s = META_SESSION_TTL_MIN;
	if (gethostname(host, sizeof(host)) < 0)
		strcpy(host, "?");
	host[sizeof(host) - 1] = '\0';
	kp->m = m;
	copy_str(kp->s.host, host);
	copy_str(kp->s.addr, addr);
	copy_str(kp->s.version, version);
	kp->s.pid = (uint32_t)getpid();
	kp->s.ttl_s = ttl_s;
	rc = session_create(m, &kp->s);
	if (rc) {
		free(kp);
		return rc;
	}
	pthread_mutex_init(&kp->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&kp->cv, &ca);
	pthread_condattr_destroy(&ca);
	rc = -pthread_create(&kp->thread, NULL, keeper_main, kp);
	if (rc) {
		meta_session_stop(kp);
		return rc;
	}
	kp->running = true;
	tl_info(META_SUB,
		"gateway session %016llx recorded (heartbeat "
		"every %u ms, expires after %u s)",
		(unsigned long long)kp->s.id, ttl_s * 1000 / 6, ttl_s);
	*out = kp;
	return 0;
}

/* Remove the lease record if it names id: another gateway takes it at
 * its next heartbeat instead of waiting for a ttl. */
static int
lease_drop(struct mtxn *t, uint64_t id)
{
	struct meta_lease l;
	struct meta_key k;
	int rc;

	rc = lease_read(t, &l);
	if (rc == -ENOENT || (rc == 0 && l.holder != id))
		return 0;
	meta_key_tag(t->m, &k, 'B');
	return rc ? rc : meta_kv_del(t->kv, k.b, k.len);
}

void
meta_session_want_lease(struct meta_session_keeper *kp, bool want)
{
	atomic_store(&kp->want_lease, want);
	pthread_mutex_lock(&kp->mu);
	kp->kick = true;
	pthread_cond_signal(&kp->cv);
	pthread_mutex_unlock(&kp->mu);
}

bool
meta_session_lease_held(struct meta_session_keeper *kp)
{
	uint64_t until = atomic_load(&kp->held_until);

	return until != 0 && tl_mono_ns() < until &&
	       atomic_load(&kp->want_lease);
}

int
meta_lease_get(struct meta *m, struct meta_lease *l)
{
	struct mtxn t;
	int rc;

	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	rc = lease_read(&t, l);
	return meta_txn_end(&t, rc);
}

static int
stop_txn(struct mtxn *t, void *arg)
{
	const struct meta_session *s = arg;
	struct meta_key k;
	int rc;

	meta_key_session(t->m, &k, s->id);
	rc = meta_kv_del(t->kv, k.b, k.len);
	if (rc == 0)
		rc = lease_drop(t, s->id);
	return rc;
}

void
meta_session_stop(struct meta_session_keeper *kp)
{
	int rc;

	if (kp == NULL)
		return;
	if (kp->running) {
		pthread_mutex_lock(&kp->mu);
		kp->stop = true;
		pthread_cond_signal(&kp->cv);
		pthread_mutex_unlock(&kp->mu);
		pthread_join(kp->thread, NULL);
	}
	rc = meta_txn_run(kp->m, false, stop_txn, &kp->s);
	if (rc)
		tl_warn(META_SUB,
			"cannot remove the gateway session record "
			"(%s): it expires in %u s",
			strerror(-rc), kp->s.ttl_s);
	pthread_cond_destroy(&kp->cv);
	pthread_mutex_destroy(&kp->mu);
	free(kp);
}

uint64_t
meta_session_id(const struct meta_session_keeper *kp)
{
	return kp->s.id;
}

struct quiet {
	uint64_t now;
	bool live;
};

static int
quiet_cb(void *arg, const struct meta_session *s)
{
	struct quiet *q = arg;

	q->live |= meta_session_live(s, q->now);
	return 0;
}

int
meta_session_quiet(struct mtxn *t, uint64_t epoch)
{
	struct quiet q = {tl_now_ns(), false};
	uint64_t now_epoch;
	int rc;

	rc = meta_counter_get(t, CNT_SESSIONS, &now_epoch);
	if (rc == 0)
		rc = session_scan(t, quiet_cb, &q);
	if (rc == 0 && (q.live || now_epoch != epoch))
		rc = -EBUSY;
	return rc;
}

int
meta_session_epoch(struct meta *m, uint64_t *epoch)
{
	struct mtxn t;
	int rc;

	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	rc = meta_counter_get(&t, CNT_SESSIONS, epoch);
	return meta_txn_end(&t, rc);
}
