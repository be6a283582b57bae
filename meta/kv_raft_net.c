/*
 * kv_raft_net.c - the connections of a raft:// node.
 *
 * One TCP port per node (its raft address) carries three kinds of
 * connection, each opened by the handshake of kv_raft_wire.c (the
 * cluster secret proves both ends; everything after is AES-256-GCM):
 *
 *   raft   libraft's own messages.  libraft's uv backend has no
 *          authentication, so it gets our transport (raft_uv_transport):
 *          each connection it asks for, or that a peer opens, is handed
 *          to it as one end of a socketpair; this file relays between
 *          the other end and the encrypted TCP connection.
 *   rpc    our messages (commits, fences, read index, confirmations,
 *          status, membership): one connection from each node to each
 *          peer it talks to, requests one way and answers back.
 *   snap   a replica copy streamed to a node that is new or behind
 *          (kv_raft_snap.c; served on a thread of its own).
 *
 * A peer that fails the handshake (wrong secret, another group, garbage)
 * is logged and disconnected before anything reaches libraft or the
 * replica.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "meta/kv_raft_node.h"

#define RELAY_CHUNK (256u << 10)
#define QUEUE_HIGH  (8u << 20) /* pause the source above this */

enum cstate {
	C_RESOLVE,
	C_CONNECT,
	C_HELLO,
	C_WELCOME,
	C_PROOF,
	C_OPEN,
	C_CLOSED
};

struct conn {
	struct conn *next, **pprev;
	struct meta_kvr_net *net;
	uint64_t id;
	enum cstate state;
	bool client;
	uint8_t kind;
	uint64_t peer;
	char addr[256]; /* peer's raft address (as it says) */
	uv_tcp_t tcp;
	uv_getaddrinfo_t gai;
	uv_connect_t creq;
	unsigned handles;    /* open uv handles */
	bool gai_active;     /* a name lookup runs (it frees then) */
	struct tl_buf in;    /* read, not consumed */
	struct tl_buf hello; /* the handshake transcript */
	uint8_t welcome[KVR_WELCOME_LEN];
	uint8_t nonce[32]; /* the client's */
	struct meta_kvr_session ss;
	bool ss_ok;
	struct tl_buf pend; /* rpc messages before the session */
	size_t wq;          /* bytes queued on tcp */
	/* raft relay */
	uv_pipe_t *pipe; /* our end */
	size_t pq;       /* bytes queued on the pipe */
	struct raft_uv_connect *rreq;
	raft_uv_connect_cb rcb;
};

struct meta_kvr_net {
	struct meta_kvr_node *n;
	struct raft_uv_transport tr;
	raft_uv_accept_cb accept_cb;
	uv_tcp_t listener;
	bool listener_open;
	struct conn *conns;
	uint64_t next_id;
	bool closing;
	/* libraft's transport close callback, called on a later loop turn
	 * (never from inside libraft's own close) */
	uv_timer_t close_timer;
	bool close_timer_open;
	raft_uv_transport_close_cb close_cb;
	struct {
		uint64_t peer, until;
	} backoff[64];
	size_t nbackoff;
};

static void conn_close(struct conn *c, const char *why);
static void tcp_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

/* ---- writing ------------------------------------------------------------- */

struct wreq {
	uv_write_t w;
	struct conn *c;
	size_t len;
	bool to_pipe;
	uint8_t data[];
};

static void
alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)h;
	hint = TL_MIN(hint, RELAY_CHUNK);
	b->base = tl_malloc(hint);
	b->len = hint;
}

static void pipe_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

/* Below the low mark again: read from the paused side. */
static void
relay_resume(struct conn *c)
{
	if (c->state != C_OPEN || !c->pipe)
		return;
	if (c->wq <= QUEUE_HIGH / 2 && !uv_is_closing((uv_handle_t *)c->pipe))
		uv_read_start((uv_stream_t *)c->pipe, alloc_cb, pipe_read_cb);
	if (c->pq <= QUEUE_HIGH / 2)
		uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, tcp_read_cb);
}

static void
write_cb(uv_write_t *w, int status)
{
	struct wreq *r = (struct wreq *)w;
	struct conn *c = r->c;

	if (r->to_pipe)
		c->pq -= r->len;
	else
		c->wq -= r->len;
	free(r);
	if (status < 0 && c->state != C_CLOSED)
		conn_close(c, uv_strerror(status));
	else
		relay_resume(c);
}

static void
raw_write(struct conn *c, uv_stream_t *s, const void *p, size_t len,
	  bool to_pipe)
{
	struct wreq *r;
	uv_buf_t b;
	int rc;

	if (c->state == C_CLOSED || len == 0)
		return;
	r = tl_malloc(sizeof(*r) + len);
	r->c = c;
	r->len = len;
	r->to_pipe = to_pipe;
	memcpy(r->data, p, len);
	b = uv_buf_init((char *)r->data, (unsigned)len);
	if (to_pipe)
		c->pq += len;
	else
		c->wq += len;
	rc = uv_write(&r->w, s, &b, 1, write_cb);
	if (rc < 0) {
		if (to_pipe)
			c->pq -= len;
		else
			c->wq -= len;
		free(r);
		conn_close(c, uv_strerror(rc));
	}
}

/* One sealed frame on the TCP connection. */
static void
send_frame(struct conn *c, const void *p, size_t len)
{
	struct tl_buf b = TL_BUF_INIT;

	meta_kvr_seal(&c->ss.tx, p, len, &b);
	raw_write(c, (uv_stream_t *)&c->tcp, b.data, b.len, false);
	tl_buf_free(&b);
}

/* ---- closing ------------------------------------------------------------- */

static void
conn_free(struct conn *c)
{
	tl_buf_free(&c->in);
	tl_buf_free(&c->hello);
	tl_buf_free(&c->pend);
	if (c->ss_ok)
		meta_kvr_session_free(&c->ss);
	free(c->pipe);
	free(c);
}

static void
handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	if (--c->handles == 0 && !c->gai_active)
		conn_free(c);
}

/* A peer we could not reach is not dialled again for a heartbeat. */
static void
backoff_set(struct meta_kvr_net *net, uint64_t peer)
{
	uint64_t until =
		tl_mono_ns() + (uint64_t)net->n->o.heartbeat_ms * 1000000ULL;
	size_t i;

	for (i = 0; i < net->nbackoff && net->backoff[i].peer != peer; i++)
		;
	if (i == net->nbackoff) {
		if (i == TL_ARRAY_SIZE(net->backoff))
			i = 0;
		else
			net->nbackoff++;
	}
	net->backoff[i].peer = peer;
	net->backoff[i].until = until;
}

static bool
backoff_on(struct meta_kvr_net *net, uint64_t peer)
{
	for (size_t i = 0; i < net->nbackoff; i++)
		if (net->backoff[i].peer == peer)
			return net->backoff[i].until > tl_mono_ns();
	return false;
}

static void
conn_close(struct conn *c, const char *why)
{
	struct meta_kvr_net *net = c->net;
	enum cstate was = c->state;

	if (c->state == C_CLOSED)
		return;
	c->state = C_CLOSED;
	if (c->pprev) {
		*c->pprev = c->next;
		if (c->next)
			c->next->pprev = c->pprev;
		c->pprev = NULL;
	}
	if (why && was == C_OPEN && !net->closing)
		tl_info(KVR_SUB, "connection %s node %llu (%s) closed: %s",
			c->client ? "to" : "from", (unsigned long long)c->peer,
			c->addr, why);
	if (c->client && was != C_OPEN && !net->closing)
		backoff_set(net, c->peer);
	if (c->rcb) {
		raft_uv_connect_cb cb = c->rcb;

		c->rcb = NULL;
		cb(c->rreq, NULL,
		   net->closing ? RAFT_CANCELED : RAFT_NOCONNECTION);
	}
	if (c->kind == KVR_CH_RPC && c->client && !net->closing)
		meta_kvr_node_peer_down(net->n, c->peer);
	if (c->handles && !uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, handle_closed);
	if (c->gai_active)
		uv_cancel((uv_req_t *)&c->gai);
	if (c->pipe && !uv_is_closing((uv_handle_t *)c->pipe))
		uv_close((uv_handle_t *)c->pipe, handle_closed);
	if (c->handles == 0 && !c->gai_active)
		conn_free(c);
}

/* ---- the raft relay ------------------------------------------------------ */

/* libraft wrote to its end: seal it onto TCP. */
static void
pipe_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = s->data;

	if (nread > 0 && c->state == C_OPEN) {
		send_frame(c, b->base, (size_t)nread);
		if (c->wq > QUEUE_HIGH)
			uv_read_stop(s);
	} else if (nread < 0) {
		conn_close(c, nread == UV_EOF ? "closed by libraft"
					      : uv_strerror((int)nread));
	}
	free(b->base);
}

/* A socketpair: one end for libraft (allocated with raft_malloc: libraft
 * frees it), the other ours. */
static int
relay_open(struct conn *c, uv_stream_t **raft_end)
{
	uv_loop_t *loop = &c->net->n->loop;
	uv_pipe_t *rp;
	int fds[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
		       fds) < 0)
		return -errno;
	rp = raft_malloc(sizeof(*rp));
	if (rp == NULL)
		abort();
	c->pipe = tl_calloc(1, sizeof(*c->pipe));
	uv_pipe_init(loop, rp, 0);
	uv_pipe_init(loop, c->pipe, 0);
	uv_pipe_open(rp, fds[0]);
	uv_pipe_open(c->pipe, fds[1]);
	c->pipe->data = c;
	c->handles++;
	uv_read_start((uv_stream_t *)c->pipe, alloc_cb, pipe_read_cb);
	*raft_end = (uv_stream_t *)rp;
	return 0;
}

/* ---- frames -------------------------------------------------------------- */

static void snap_handover(struct conn *c, const uint8_t *p, size_t len);

static void
on_frame(struct conn *c, const uint8_t *p, size_t len)
{
	switch (c->kind) {
	case KVR_CH_RAFT:
		raw_write(c, (uv_stream_t *)c->pipe, p, len, true);
		if (c->pq > QUEUE_HIGH)
			uv_read_stop((uv_stream_t *)&c->tcp);
		break;
	case KVR_CH_RPC:
		meta_kvr_node_recv(c->net->n, c->id, c->peer, p, len);
		break;
	default:
		snap_handover(c, p, len);
		break;
	}
}

static void
read_frames(struct conn *c)
{
	struct tl_buf plain = TL_BUF_INIT;
	size_t off = 0, used;
	int rc;

	while (c->state == C_OPEN) {
		tl_buf_reset(&plain);
		rc = meta_kvr_open(&c->ss.rx, c->in.data + off, c->in.len - off,
				   &plain, &used);
		if (rc == -EAGAIN)
			break;
		if (rc) {
			tl_warn(KVR_SUB,
				"node %llu (%s): %s: connection "
				"closed",
				(unsigned long long)c->peer, c->addr,
				rc == -EBADMSG ? "a forged or corrupt frame"
					       : "a frame too long");
			conn_close(c, NULL);
			break;
		}
		off += used;
		on_frame(c, plain.data, plain.len);
	}
	if (c->state != C_CLOSED && off) {
		memmove(c->in.data, c->in.data + off, c->in.len - off);
		c->in.len -= off;
	}
	tl_buf_free(&plain);
}

/* ---- handshake ----------------------------------------------------------- */

static bool
group_zero(const uint8_t g[16])
{
	static const uint8_t z[16];

	return memcmp(g, z, 16) == 0;
}

static void
opened(struct conn *c)
{
	struct meta_kvr_net *net = c->net;
	uv_stream_t *rs = NULL;

	c->state = C_OPEN;
	if (c->kind == KVR_CH_RPC && c->pend.len) {
		struct meta_kvr_rdr r;

		meta_kvr_rdr_init(&r, c->pend.data, c->pend.len);
		while (!r.bad && r.p < r.end) {
			uint32_t n = meta_kvr_get32(&r);
			const uint8_t *m = meta_kvr_getn(&r, n);

			if (m)
				send_frame(c, m, n);
		}
		tl_buf_free(&c->pend);
	}
	if (c->kind != KVR_CH_RAFT)
		return;
	if (net->closing || relay_open(c, &rs) != 0) {
		conn_close(c, "socketpair failed");
		return;
	}
	if (c->client) {
		raft_uv_connect_cb cb = c->rcb;

		c->rcb = NULL;
		cb(c->rreq, rs, 0);
	} else {
		net->accept_cb(&net->tr, c->peer, c->addr, rs);
	}
}

static void
consume(struct tl_buf *b, size_t n)
{
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

/* Server: HELLO, then PROOF. */
static void
server_handshake(struct conn *c)
{
	struct meta_kvr_node *n = c->net->n;
	struct meta_kvr_hello h;
	uint8_t sn[32], status = KVR_HS_OK;
	size_t used;
	int rc;

	if (c->state == C_HELLO) {
		rc = meta_kvr_hello_decode(c->in.data, c->in.len, &h, &used);
		if (rc == -EAGAIN)
			return;
		if (rc) {
			tl_warn(KVR_SUB, "a connection to the raft port that "
					 "is not a Tessera node: closed");
			conn_close(c, NULL);
			return;
		}
		tl_buf_append(&c->hello, c->in.data, used);
		consume(&c->in, used);
		c->kind = h.kind;
		c->peer = h.id;
		snprintf(c->addr, sizeof(c->addr), "%s", h.addr);
		memcpy(c->nonce, h.nonce, 32);
		/* a new node (no group yet) may only ask for a copy */
		if (group_zero(h.group) ? h.kind != KVR_CH_SNAP
					: memcmp(h.group, n->group, 16) != 0)
			status = KVR_HS_GROUP;
		tl_random_bytes(sn, 32);
		meta_kvr_welcome_encode(&n->secret, c->hello.data, c->hello.len,
					status, n->group, n->o.id, sn,
					c->welcome);
		raw_write(c, (uv_stream_t *)&c->tcp, c->welcome,
			  KVR_WELCOME_LEN, false);
		if (status != KVR_HS_OK) {
			tl_warn(KVR_SUB,
				"node %llu (%s) belongs to another "
				"group: refused",
				(unsigned long long)h.id, h.addr);
			conn_close(c, NULL);
			return;
		}
		c->state = C_PROOF;
	}
	if (c->in.len < KVR_PROOF_LEN)
		return;
	if (meta_kvr_proof_check(&n->secret, c->hello.data, c->hello.len,
				 c->welcome, c->in.data) != 0) {
		tl_warn(KVR_SUB,
			"a peer claiming to be node %llu (%s) failed "
			"authentication (not the cluster secret): refused",
			(unsigned long long)c->peer, c->addr);
		conn_close(c, NULL);
		return;
	}
	consume(&c->in, KVR_PROOF_LEN);
	meta_kvr_session_init(&c->ss, &n->secret, c->nonce, c->welcome + 30,
			      false);
	c->ss_ok = true;
	opened(c);
	if (c->state == C_OPEN)
		read_frames(c);
}

/* Client: WELCOME, then our PROOF. */
static void
client_handshake(struct conn *c)
{
	struct meta_kvr_node *n = c->net->n;
	uint8_t proof[KVR_PROOF_LEN];

	if (c->in.len < KVR_WELCOME_LEN)
		return;
	memcpy(c->welcome, c->in.data, KVR_WELCOME_LEN);
	consume(&c->in, KVR_WELCOME_LEN);
	if (meta_kvr_welcome_check(&n->secret, c->hello.data, c->hello.len,
				   c->welcome) != 0) {
		tl_warn(KVR_SUB,
			"node %llu at %s failed authentication (not "
			"the cluster secret): disconnected",
			(unsigned long long)c->peer, c->addr);
		conn_close(c, NULL);
		return;
	}
	if (c->welcome[5] != KVR_HS_OK ||
	    memcmp(c->welcome + 6, n->group, 16) != 0) {
		tl_warn(KVR_SUB,
			"node at %s belongs to another group: "
			"disconnected",
			c->addr);
		conn_close(c, NULL);
		return;
	}
	c->peer = tl_get_be64(c->welcome + 22);
	meta_kvr_proof_make(&n->secret, c->hello.data, c->hello.len, c->welcome,
			    proof);
	raw_write(c, (uv_stream_t *)&c->tcp, proof, sizeof(proof), false);
	meta_kvr_session_init(&c->ss, &n->secret, c->nonce, c->welcome + 30,
			      true);
	c->ss_ok = true;
	opened(c);
	if (c->state == C_OPEN)
		read_frames(c);
}

static void
tcp_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = s->data;

	if (nread > 0 && c->state != C_CLOSED) {
		tl_buf_append(&c->in, b->base, (size_t)nread);
		if (c->in.len > KVR_FRAME_MAX + 64)
			conn_close(c, "too much unread data");
		else if (c->state == C_HELLO || c->state == C_PROOF)
			server_handshake(c);
		else if (c->state == C_WELCOME)
			client_handshake(c);
		else if (c->state == C_OPEN)
			read_frames(c);
	} else if (nread < 0) {
		/* A peer that checked our welcome and left has not the
		 * cluster secret (a node does this when ours fails its check):
		 * the refusal is logged on this side too. */
		if (c->state == C_PROOF && !c->net->closing)
			tl_warn(KVR_SUB,
				"a peer claiming to be node %llu (%s) left "
				"the handshake without proving the cluster "
				"secret (another secret?): refused",
				(unsigned long long)c->peer, c->addr);
		conn_close(c, nread == UV_EOF ? "closed by the peer"
					      : uv_strerror((int)nread));
	}
	free(b->base);
}

static struct conn *
conn_new(struct meta_kvr_net *net, bool client, uint8_t kind)
{
	struct conn *c = tl_calloc(1, sizeof(*c));

	c->net = net;
	c->id = ++net->next_id;
	c->client = client;
	c->kind = kind;
	c->tcp.data = c;
	c->gai.data = c;
	c->creq.data = c;
	c->next = net->conns;
	if (net->conns)
		net->conns->pprev = &c->next;
	c->pprev = &net->conns;
	net->conns = c;
	return c;
}

static void
listen_cb(uv_stream_t *s, int status)
{
	struct meta_kvr_net *net = s->data;
	struct conn *c;

	if (status < 0 || net->closing)
		return;
	c = conn_new(net, false, 0);
	uv_tcp_init(&net->n->loop, &c->tcp);
	c->handles++;
	c->state = C_HELLO;
	if (uv_accept(s, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c, NULL);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, tcp_read_cb);
}

/* ---- dialing ------------------------------------------------------------- */

static void
connect_cb(uv_connect_t *r, int status)
{
	struct conn *c = r->data;
	struct meta_kvr_node *n = c->net->n;
	struct meta_kvr_hello h;

	if (c->state == C_CLOSED)
		return;
	if (status < 0) {
		conn_close(c, uv_strerror(status));
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	memset(&h, 0, sizeof(h));
	h.kind = c->kind;
	memcpy(h.group, n->group, 16);
	h.id = n->o.id;
	tl_random_bytes(h.nonce, 32);
	memcpy(c->nonce, h.nonce, 32);
	snprintf(h.addr, sizeof(h.addr), "%s", n->o.address);
	meta_kvr_hello_encode(&h, &c->hello);
	c->state = C_WELCOME;
	raw_write(c, (uv_stream_t *)&c->tcp, c->hello.data, c->hello.len,
		  false);
	uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, tcp_read_cb);
}

static void
gai_cb(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
	struct conn *c = g->data;
	struct meta_kvr_net *net = c->net;
	int rc;

	c->gai_active = false;
	if (c->state == C_CLOSED) {
		if (res)
			uv_freeaddrinfo(res);
		if (c->handles == 0)
			conn_free(c);
		return;
	}
	if (status < 0 || res == NULL) {
		tl_warn(KVR_SUB, "cannot resolve %s: %s", c->addr,
			uv_strerror(status));
		if (res)
			uv_freeaddrinfo(res);
		conn_close(c, NULL);
		return;
	}
	uv_tcp_init(&net->n->loop, &c->tcp);
	c->handles++;
	c->state = C_CONNECT;
	rc = uv_tcp_connect(&c->creq, &c->tcp, res->ai_addr, connect_cb);
	uv_freeaddrinfo(res);
	if (rc < 0)
		conn_close(c, uv_strerror(rc));
}

/* Split "host:port" or "[v6]:port". */
static int
split_hostport(const char *a, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *colon = strrchr(a, ':');
	size_t hl = colon ? (size_t)(colon - a) : 0;

	if (!colon || strlen(colon + 1) == 0 || strlen(colon + 1) >= pcap)
		return -EINVAL;
	if (hl >= 2 && a[0] == '[' && a[hl - 1] == ']') {
		a++;
		hl -= 2;
	}
	if (hl >= hcap)
		return -EINVAL;
	memcpy(host, a, hl);
	host[hl] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

static struct conn *
dial(struct meta_kvr_net *net, uint8_t kind, uint64_t id, const char *address)
{
	struct conn *c = conn_new(net, true, kind);
	char host[256], port[16];
	struct addrinfo hints;

	c->peer = id;
	snprintf(c->addr, sizeof(c->addr), "%s", address);
	c->state = C_RESOLVE;
	if (split_hostport(address, host, sizeof(host), port, sizeof(port)) ||
	    host[0] == '\0') {
		tl_warn(KVR_SUB, "bad address '%s' of node %llu", address,
			(unsigned long long)id);
		conn_close(c, NULL);
		return NULL;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	c->gai_active = true;
	if (uv_getaddrinfo(&net->n->loop, &c->gai, gai_cb, host, port, &hints) <
	    0) {
		c->gai_active = false;
		conn_close(c, NULL);
		return NULL;
	}
	return c;
}

/* ---- the libraft transport ----------------------------------------------- */

static int
tr_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
	(void)t;
	(void)id;
	(void)address;
	return 0;
}

static int
tr_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	struct meta_kvr_net *net = t->impl;

	net->accept_cb = cb;
	return 0;
}

static int
tr_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
	   const char *address, raft_uv_connect_cb cb)
{
	struct meta_kvr_net *net = t->impl;
	struct conn *c;

	if (net->closing)
		return RAFT_CANCELED;
	c = dial(net, KVR_CH_RAFT, id, address);
	if (c == NULL)
		return RAFT_NOCONNECTION;
	c->rreq = req;
	c->rcb = cb;
	return 0;
}

static void
tr_closed(uv_timer_t *timer)
{
	struct meta_kvr_net *net = timer->data;
	raft_uv_transport_close_cb cb = net->close_cb;

	net->close_cb = NULL;
	if (cb)
		cb(&net->tr);
}

static void
tr_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
	struct meta_kvr_net *net = t->impl;
	struct conn *c;

	net->closing = true;
	/* pending raft connects are cancelled (their callbacks fire) */
	do {
		for (c = net->conns; c; c = c->next)
			if (c->kind == KVR_CH_RAFT && c->rcb)
				break;
		if (c)
			conn_close(c, NULL);
	} while (c);
	net->close_cb = cb;
	uv_timer_start(&net->close_timer, tr_closed, 0, 0);
}

static int
bind_listener(struct meta_kvr_net *net, char **err)
{
	struct meta_kvr_node *n = net->n;
	const char *a = n->o.listen ? n->o.listen : n->o.address;
	struct sockaddr_storage ss;
	char host[256], port[16];
	int rc;

	if (split_hostport(a, host, sizeof(host), port, sizeof(port))) {
		*err = tl_asprintf("bad raft listen address '%s'", a);
		return -EINVAL;
	}
	rc = strchr(host, ':')
		     ? uv_ip6_addr(host, atoi(port), (struct sockaddr_in6 *)&ss)
		     : uv_ip4_addr(host[0] ? host : "0.0.0.0", atoi(port),
				   (struct sockaddr_in *)&ss);
	if (rc == 0) {
		uv_tcp_init(&n->loop, &net->listener);
		net->listener.data = net;
		net->listener_open = true;
		rc = uv_tcp_bind(&net->listener, (struct sockaddr *)&ss, 0);
	}
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&net->listener, 128, listen_cb);
	if (rc) {
		*err = tl_asprintf("cannot listen on %s (raft): %s", a,
				   uv_strerror(rc));
		return rc == UV_EADDRINUSE ? -EADDRINUSE : -EINVAL;
	}
	return 0;
}

int
meta_kvr_net_init(struct meta_kvr_node *n, struct raft_uv_transport **t,
		  char **err)
{
	struct meta_kvr_net *net = tl_calloc(1, sizeof(*net));

	net->n = n;
	n->net = net;
	net->tr.version = 1;
	net->tr.impl = net;
	net->tr.init = tr_init;
	net->tr.listen = tr_listen;
	net->tr.connect = tr_connect;
	net->tr.close = tr_close;
	uv_timer_init(&n->loop, &net->close_timer);
	net->close_timer.data = net;
	net->close_timer_open = true;
	*t = &net->tr;
	return bind_listener(net, err);
}

/* ---- peer messages ------------------------------------------------------- */

int
meta_kvr_net_send(struct meta_kvr_node *n, uint64_t id, const char *addr,
		  const void *m, size_t len)
{
	struct meta_kvr_net *net = n->net;
	struct conn *c;

	if (net == NULL || net->closing || id == 0)
		return -ENOTCONN;
	for (c = net->conns; c; c = c->next)
		if (c->client && c->kind == KVR_CH_RPC && c->peer == id)
			break;
	if (c == NULL) {
		const struct raft_configuration *cf = &n->raft.configuration;

		if (backoff_on(net, id))
			return -ENOTCONN;
		for (unsigned i = 0; i < cf->n; i++)
			if (cf->servers[i].id == id)
				addr = cf->servers[i].address;
		if (addr == NULL || addr[0] == '\0')
			return -ENOTCONN;
		c = dial(net, KVR_CH_RPC, id, addr);
		if (c == NULL)
			return -ENOTCONN;
	}
	if (c->state == C_OPEN) {
		send_frame(c, m, len);
	} else {
		tl_buf_append_be32(&c->pend, (uint32_t)len);
		tl_buf_append(&c->pend, m, len);
	}
	return 0;
}

void
meta_kvr_net_reply(struct meta_kvr_node *n, uint64_t conn, const void *m,
		   size_t len)
{
	for (struct conn *c = n->net->conns; c; c = c->next)
		if (c->id == conn) {
			if (c->state == C_OPEN)
				send_frame(c, m, len);
			return;
		}
}

/* ---- snapshot connections ------------------------------------------------ */

/* The request of a snapshot connection arrived: the socket goes to a
 * thread of its own, with the session and the request. */
struct snap_job {
	struct meta_kvr_node *n;
	int fd;
	struct meta_kvr_session ss;
	struct tl_buf req;
};

static void *
snap_thread(void *arg)
{
	struct snap_job *j = arg;

	int fd = j->fd;
	struct meta_kvr_node *n = j->n;

	meta_kvr_snap_serve(n, fd, &j->ss, j->req.data, j->req.len);
	meta_kvr_session_free(&j->ss);
	tl_buf_free(&j->req);
	free(j);
	meta_kvr_snap_end(n, fd); /* after this the node may be freed */
	close(fd);
	return NULL;
}

static void
snap_handover(struct conn *c, const uint8_t *p, size_t len)
{
	struct snap_job *j;
	pthread_attr_t a;
	pthread_t t;
	int fd = -1;

	if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
		fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		conn_close(c, "cannot take the socket");
		return;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	if (!meta_kvr_snap_begin(c->net->n, fd)) {
		close(fd);
		conn_close(c, NULL);
		return;
	}
	j = tl_calloc(1, sizeof(*j));
	j->n = c->net->n;
	j->fd = fd;
	j->ss = c->ss;
	c->ss_ok = false; /* the thread owns the session now */
	tl_buf_append(&j->req, p, len);
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, snap_thread, j) != 0) {
		meta_kvr_snap_end(j->n, fd);
		close(fd);
		meta_kvr_session_free(&j->ss);
		tl_buf_free(&j->req);
		free(j);
	}
	pthread_attr_destroy(&a);
	conn_close(c, NULL);
}

/* ---- the end ------------------------------------------------------------- */

static void
listener_closed(uv_handle_t *h)
{
	(void)h;
}

void
meta_kvr_net_close(struct meta_kvr_node *n)
{
	struct meta_kvr_net *net = n->net;

	if (net == NULL)
		return;
	net->closing = true;
	while (net->conns)
		conn_close(net->conns, NULL);
	if (net->close_timer_open) {
		uv_close((uv_handle_t *)&net->close_timer, listener_closed);
		net->close_timer_open = false;
	}
	if (net->listener_open) {
		uv_close((uv_handle_t *)&net->listener, listener_closed);
		net->listener_open = false;
	}
}

void
meta_kvr_net_free(struct meta_kvr_node *n)
{
	free(n->net);
	n->net = NULL;
}
