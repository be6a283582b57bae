/*
 * callback.c - RPC calls from the gateway to its clients (nlm-internal.h):
 * NLM GRANTED for a blocked lock that became free, the _RES answers of
 * the _MSG procedures, NSM SM_NOTIFY after a restart.
 *
 * One thread runs its own libevent loop, so a client that is slow, gone
 * or firewalled costs the server's event loop nothing and its workers
 * nothing.  A call goes through two connections: the client's rpcbind
 * (PMAP GETPORT over TCP, version 2, which every rpcbind answers), then
 * the program's port.  Each step is bounded by the call's timeout, each
 * attempt by its steps, the attempts by the call's tries; between two
 * attempts the call waits its backoff, doubled each time (16 times it,
 * and 16 s, at most), without holding a connection.  Memory: one struct per call queued or running,
 * at most max_calls; a reply longer than CB_REPLY_MAX closes the
 * connection.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <rpc/rpc.h>

#include "nfsd/addr-internal.h"
#include "nfsd/nlm-internal.h"

#define CB_REPLY_MAX (64u << 10)
#define PMAP_PROG    100000u
#define PMAP_VERS    2u
#define PMAP_GETPORT 3u
#define PORT_CACHE   64
#define PORT_TTL_NS  (60ull * 1000000000)

enum { ST_WAIT, ST_PMAP, ST_CALL };

struct cbcall {
	struct nfsd_cb *cb;
	struct nfsd_cb_call c;
	STAILQ_ENTRY(cbcall) q;  /* in, then wq */
	LIST_ENTRY(cbcall) link; /* every call the loop holds */
	int state;
	unsigned attempt;
	uint16_t port;
	struct bufferevent *bev;
	struct event *timer;
	uint32_t xid;
	struct tl_buf in;
};

struct port_ent {
	uint8_t addr[16];
	int family;
	uint32_t prog, vers;
	uint16_t port;
	uint64_t expires;
};

struct nfsd_cb {
	pthread_t thr;
	bool started;
	struct event_base *base;
	struct event *wake;
	pthread_mutex_t mu;
	STAILQ_HEAD(cbq, cbcall) in; /* submitted (under mu) */
	unsigned total;              /* queued or running (under mu) */
	unsigned max;
	bool stop; /* under mu */
	/* the loop's */
	bool closing;              /* the loop stopped: start nothing */
	LIST_HEAD(, cbcall) calls; /* every call taken from in */
	struct cbq wq;             /* waiting for a connection slot */
	unsigned active;
	struct port_ent ports[PORT_CACHE];
	char host[256];
};

static void attempt_start(struct cbcall *k);

/* ---- the port cache (loop) --------------------------------------------- */

static struct port_ent *
port_find(struct nfsd_cb *cb, const struct cbcall *k, bool make)
{
	uint8_t a[16] = {0};
	int fam = nfsd_peer_addr(&k->c.to, true, a);
	struct port_ent *old = &cb->ports[0];
	uint64_t now = tl_mono_ns();

	for (int i = 0; i < PORT_CACHE; i++) {
		struct port_ent *p = &cb->ports[i];

		if (p->family == fam && p->prog == k->c.prog &&
		    p->vers == k->c.vers && memcmp(p->addr, a, 16) == 0 &&
		    (make || p->expires > now))
			return p;
		if (p->expires < old->expires)
			old = p;
	}
	if (!make)
		return NULL;
	memset(old, 0, sizeof(*old));
	memcpy(old->addr, a, 16);
	old->family = fam;
	old->prog = k->c.prog;
	old->vers = k->c.vers;
	return old;
}

/* ---- messages ---------------------------------------------------------------- */

/* A record-marked call of prog/vers/proc with args. */
static void
call_encode(struct cbcall *k, uint32_t prog, uint32_t vers, uint32_t proc,
	    const uint8_t *args, size_t len, struct tl_buf *b)
{
	size_t hl = strlen(k->cb->host), pad = (4 - hl % 4) % 4;
	static const uint8_t zero[4];

	k->xid = (uint32_t)tl_random_u64();
	tl_buf_reset(b);
	tl_buf_append_be32(b, 0);
	tl_buf_append_be32(b, k->xid);
	tl_buf_append_be32(b, 0); /* CALL */
	tl_buf_append_be32(b, 2); /* RPC version */
	tl_buf_append_be32(b, prog);
	tl_buf_append_be32(b, vers);
	tl_buf_append_be32(b, proc);
	tl_buf_append_be32(b, AUTH_SYS);
	tl_buf_append_be32(b, (uint32_t)(4 + 4 + hl + pad + 12));
	tl_buf_append_be32(b, (uint32_t)(tl_now_ns() / 1000000000));
	tl_buf_append_be32(b, (uint32_t)hl);
	tl_buf_append(b, k->cb->host, hl);
	tl_buf_append(b, zero, pad);
	tl_buf_append_be32(b, 0); /* uid */
	tl_buf_append_be32(b, 0); /* gid */
	tl_buf_append_be32(b, 0); /* no groups */
	tl_buf_append_be32(b, AUTH_NONE);
	tl_buf_append_be32(b, 0);
	tl_buf_append(b, args, len);
	tl_put_be32(b->data, 0x80000000u | (uint32_t)(b->len - 4));
}

/* The result of an accepted, successful reply to k's call: 0 and
 * [*res, *res + *len), or -EPROTO. */
static int
reply_parse(const struct cbcall *k, const uint8_t *p, size_t len,
	    const uint8_t **res, size_t *rlen)
{
	uint32_t vlen;

	if (len < 24 || tl_get_be32(p) != k->xid || tl_get_be32(p + 4) != 1 ||
	    tl_get_be32(p + 8) != 0)
		return -EPROTO;
	vlen = tl_get_be32(p + 16);
	if (vlen > 400 || len < 24 + (size_t)(vlen + 3) / 4 * 4)
		return -EPROTO;
	p += 20 + (vlen + 3) / 4 * 4;
	len -= 20 + (vlen + 3) / 4 * 4;
	if (tl_get_be32(p) != 0) /* accept status */
		return -EPROTO;
	*res = p + 4;
	*rlen = len - 4;
	return 0;
}

/* ---- a call's life (loop) ------------------------------------------------------ */

static void
conn_close(struct cbcall *k)
{
	if (k->bev != NULL)
		bufferevent_free(k->bev);
	k->bev = NULL;
	tl_buf_reset(&k->in);
}

static void
pump(struct nfsd_cb *cb)
{
	while (!cb->closing && cb->active < NFSD_CB_PARALLEL &&
	       !STAILQ_EMPTY(&cb->wq)) {
		struct cbcall *k = STAILQ_FIRST(&cb->wq);

		STAILQ_REMOVE_HEAD(&cb->wq, q);
		cb->active++;
		attempt_start(k);
	}
}

static void
call_free(struct cbcall *k)
{
	if (k->timer != NULL)
		event_free(k->timer);
	tl_buf_free(&k->c.args);
	tl_buf_free(&k->in);
	free(k);
}

/* The call is over: tell its owner, free it.  active: it held a slot. */
static void
finish(struct cbcall *k, int rc, const uint8_t *res, size_t len, bool active)
{
	struct nfsd_cb *cb = k->cb;

	k->c.done(k->c.arg, rc, res, len);
	conn_close(k);
	LIST_REMOVE(k, link);
	call_free(k);
	pthread_mutex_lock(&cb->mu);
	cb->total--;
	pthread_mutex_unlock(&cb->mu);
	if (active) {
		cb->active--;
		pump(cb);
	}
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cbcall *k = arg;

	STAILQ_INSERT_TAIL(&k->cb->wq, k, q);
	pump(k->cb);
}

/* This attempt failed with rc: wait and try again, or give up. */
static void
attempt_failed(struct cbcall *k, int rc)
{
	struct nfsd_cb *cb = k->cb;
	struct port_ent *p;
	uint64_t ms;
	struct timeval tv;

	if (k->state == ST_CALL && (p = port_find(cb, k, false)) != NULL)
		p->expires = 0; /* it may have moved (a restart) */
	conn_close(k);
	if (++k->attempt >= k->c.tries) {
		finish(k, rc, NULL, 0, true);
		return;
	}
	ms = TL_MIN((uint64_t)k->c.backoff_ms << TL_MIN(k->attempt - 1, 4u),
		    (uint64_t)NFSD_CB_BACKOFF_MAX);
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	if (k->timer == NULL)
		k->timer = evtimer_new(cb->base, retry_cb, k);
	k->state = ST_WAIT;
	cb->active--;
	evtimer_add(k->timer, &tv);
	pump(cb);
}

static void
send_request(struct cbcall *k)
{
	struct tl_buf b = TL_BUF_INIT;
	uint8_t a[16];

	if (k->state == ST_PMAP) {
		tl_put_be32(a, k->c.prog);
		tl_put_be32(a + 4, k->c.vers);
		tl_put_be32(a + 8, IPPROTO_TCP);
		tl_put_be32(a + 12, 0);
		call_encode(k, PMAP_PROG, PMAP_VERS, PMAP_GETPORT, a, 16, &b);
	} else {
		call_encode(k, k->c.prog, k->c.vers, k->c.proc, k->c.args.data,
			    k->c.args.len, &b);
	}
	bufferevent_write(k->bev, b.data, b.len);
	tl_buf_free(&b);
}

static void open_conn(struct cbcall *k, uint16_t port);

static void
got_reply(struct cbcall *k, const uint8_t *p, size_t len)
{
	const uint8_t *res;
	size_t rlen;
	int rc = reply_parse(k, p, len, &res, &rlen);
	struct port_ent *pe;

	if (rc) {
		finish(k, rc, NULL, 0, true);
		return;
	}
	if (k->state == ST_CALL) {
		finish(k, 0, res, rlen, true);
		return;
	}
	if (rlen < 4 || tl_get_be32(res) == 0 || tl_get_be32(res) > 65535) {
		finish(k, -ENOENT, NULL, 0, true);
		return;
	}
	k->port = (uint16_t)tl_get_be32(res);
	pe = port_find(k->cb, k, true);
	pe->port = k->port;
	pe->expires = tl_mono_ns() + PORT_TTL_NS;
	conn_close(k);
	k->state = ST_CALL;
	open_conn(k, k->port);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct cbcall *k = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in), pos = 0;
	struct tl_buf rec = TL_BUF_INIT;

	if (k->in.len + n > CB_REPLY_MAX) {
		attempt_failed(k, -EPROTO);
		return;
	}
	tl_buf_reserve(&k->in, n);
	evbuffer_remove(in, k->in.data + k->in.len, n);
	k->in.len += n;
	/* the fragments so far, marks removed, until the last one */
	while (pos + 4 <= k->in.len) {
		uint32_t mark = tl_get_be32(k->in.data + pos);
		size_t flen = mark & 0x7fffffffu;

		if (pos + 4 + flen > k->in.len)
			break;
		tl_buf_append(&rec, k->in.data + pos + 4, flen);
		pos += 4 + flen;
		if (mark & 0x80000000u) {
			got_reply(k, rec.data, rec.len);
			break;
		}
	}
	tl_buf_free(&rec);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct cbcall *k = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		send_request(k);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		attempt_failed(k, -ETIMEDOUT);
	else if (what & BEV_EVENT_ERROR)
		attempt_failed(k, err != 0 ? -err : -EIO);
	else
		attempt_failed(k, -ECONNRESET);
}

static void
open_conn(struct cbcall *k, uint16_t port)
{
	struct sockaddr_storage to = k->c.to;
	socklen_t len = to.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						 : sizeof(struct sockaddr_in);
	struct timeval tv = {(time_t)(k->c.timeout_ms / 1000),
			     (suseconds_t)(k->c.timeout_ms % 1000) * 1000};
	int fd;

	if (to.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&to)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)&to)->sin_port = htons(port);
	fd = socket(to.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		attempt_failed(k, -errno);
		return;
	}
	if (k->c.from.ss_family == to.ss_family) {
		struct sockaddr_storage from = k->c.from;

		if (from.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&from)->sin6_port = 0;
		else
			((struct sockaddr_in *)&from)->sin_port = 0;
		/* no longer ours (a moved address): the route's choice */
		if (bind(fd, (struct sockaddr *)&from, len) != 0)
			tl_debug("nlm",
				 "callback: cannot send from the "
				 "address the client used: %s",
				 strerror(errno));
	}
	k->bev = bufferevent_socket_new(k->cb->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (k->bev == NULL) {
		close(fd);
		attempt_failed(k, -ENOMEM);
		return;
	}
	bufferevent_setcb(k->bev, read_cb, NULL, event_cb, k);
	bufferevent_set_timeouts(k->bev, &tv, &tv);
	bufferevent_enable(k->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(k->bev, (struct sockaddr *)&to,
				       (int)len) != 0) {
		int err = EVUTIL_SOCKET_ERROR();

		attempt_failed(k, err != 0 ? -err : -EIO);
	}
}

/* Holding a slot: resolve the port (or use the cached one) and call. */
static void
attempt_start(struct cbcall *k)
{
	struct port_ent *p = port_find(k->cb, k, false);

	if (p != NULL) {
		k->state = ST_CALL;
		k->port = p->port;
		open_conn(k, p->port);
		return;
	}
	k->state = ST_PMAP;
	open_conn(k,
		  k->c.rpcbind_port != 0 ? k->c.rpcbind_port : NFSD_CB_RPCBIND);
}

/* ---- the thread ------------------------------------------------------------------- */

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct nfsd_cb *cb = arg;
	struct cbq taken = STAILQ_HEAD_INITIALIZER(taken);
	struct cbcall *k;
	bool stop;

	pthread_mutex_lock(&cb->mu);
	STAILQ_CONCAT(&taken, &cb->in);
	stop = cb->stop;
	pthread_mutex_unlock(&cb->mu);
	STAILQ_FOREACH(k, &taken, q)
	LIST_INSERT_HEAD(&cb->calls, k, link);
	STAILQ_CONCAT(&cb->wq, &taken);
	if (stop)
		event_base_loopbreak(cb->base);
	else
		pump(cb);
}

static void *
cb_main(void *arg)
{
	struct nfsd_cb *cb = arg;

	event_base_loop(cb->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

int
nfsd_cb_create(unsigned max_calls, struct nfsd_cb **out)
{
	struct nfsd_cb *cb = tl_calloc(1, sizeof(*cb));
	int rc;

	evthread_use_pthreads();
	pthread_mutex_init(&cb->mu, NULL);
	STAILQ_INIT(&cb->in);
	LIST_INIT(&cb->calls);
	STAILQ_INIT(&cb->wq);
	cb->max = max_calls > 0 ? max_calls : 1;
	if (gethostname(cb->host, sizeof(cb->host) - 1) != 0)
		strcpy(cb->host, "tesserad");
	cb->host[sizeof(cb->host) - 1] = '\0';
	cb->base = event_base_new();
	if (cb->base != NULL)
		cb->wake = event_new(cb->base, -1, 0, wake_cb, cb);
	if (cb->base == NULL || cb->wake == NULL) {
		nfsd_cb_free(cb);
		return -ENOMEM;
	}
	rc = pthread_create(&cb->thr, NULL, cb_main, cb);
	if (rc != 0) {
		nfsd_cb_free(cb);
		return -rc;
	}
	cb->started = true;
	*out = cb;
	return 0;
}

int
nfsd_cb_submit(struct nfsd_cb *cb, struct nfsd_cb_call *call)
{
	struct cbcall *k;

	pthread_mutex_lock(&cb->mu);
	if (cb->total >= cb->max || cb->stop) {
		pthread_mutex_unlock(&cb->mu);
		tl_buf_free(&call->args);
		return -ENOSPC;
	}
	cb->total++;
	pthread_mutex_unlock(&cb->mu);
	k = tl_calloc(1, sizeof(*k));
	k->cb = cb;
	k->c = *call;
	if (k->c.tries == 0)
		k->c.tries = 1;
	if (k->c.timeout_ms == 0)
		k->c.timeout_ms = 5000;
	if (k->c.backoff_ms == 0)
		k->c.backoff_ms = 1000;
	memset(&call->args, 0, sizeof(call->args));
	pthread_mutex_lock(&cb->mu);
	STAILQ_INSERT_TAIL(&cb->in, k, q);
	pthread_mutex_unlock(&cb->mu);
	event_active(cb->wake, EV_READ, 0);
	return 0;
}

unsigned
nfsd_cb_pending(struct nfsd_cb *cb)
{
	unsigned n;

	pthread_mutex_lock(&cb->mu);
	n = cb->total;
	pthread_mutex_unlock(&cb->mu);
	return n;
}

void
nfsd_cb_free(struct nfsd_cb *cb)
{
	if (cb == NULL)
		return;
	if (cb->started) {
		pthread_mutex_lock(&cb->mu);
		cb->stop = true;
		pthread_mutex_unlock(&cb->mu);
		event_active(cb->wake, EV_READ, 0);
		pthread_join(cb->thr, NULL);
	}
	if (cb->base != NULL) {
		/* every call left is done with -ECANCELED */
		cb->closing = true;
		cb->stop = false; /* wake_cb only collects what came last */
		wake_cb(-1, 0, cb);
		while (!LIST_EMPTY(&cb->calls))
			finish(LIST_FIRST(&cb->calls), -ECANCELED, NULL, 0,
			       false);
	}
	if (cb->wake != NULL)
		event_free(cb->wake);
	if (cb->base != NULL)
		event_base_free(cb->base);
	pthread_mutex_destroy(&cb->mu);
	free(cb);
}
