/*
 * rpc.c - the RPC-over-TCP transport of tesserad.
 *
 * One libevent loop thread owns the listener and the connections: it
 * reads RPC records (RFC 5531 record marking: a 4-byte mark per fragment
 * whose top bit flags the last fragment, the rest its length), and hands
 * every complete record to the worker pool.  A worker decodes and runs
 * the call (dispatch.c) and sends the record-marked reply itself, so
 * replies go out in completion order and a slow request never holds up
 * the others on its connection.
 *
 * Syscalls per byte: libevent 2.1's bufferevents read at most 4 KiB per
 * readiness (EVBUFFER_MAX_READ) and write 16 KiB per call, i.e. 256 reads
 * and epoll_waits per 1 MiB WRITE.  So the socket is read by our own
 * event: small records through a 64 KiB staging buffer (many calls per
 * recv), the body of a large fragment straight into the record buffer
 * with one recv of all that remains.  A worker whose connection has
 * nothing queued sends its reply with one non-blocking sendmsg (READ
 * data by reference, see nfsd_dispatch_tail), without waking the loop;
 * what the socket does not take goes to the bufferevent's output, which
 * the loop writes when the socket is writable.
 *
 * Limits: a record longer than max_record_size closes the connection (a
 * client that sends one is broken or hostile); at max_inflight_per_conn
 * requests in progress the connection stops being read until one
 * finishes, and while more than OUT_HIGH bytes of replies wait for the
 * client to read them, which bounds the memory one client can pin; while
 * requests read but not yet answered hold more than request_memory bytes
 * (all connections), connections that add to them stop being read; beyond
 * max_connections new connections are closed at once; a connection with
 * nothing in flight that completed no request for idle_timeout is closed
 * (bytes alone do not count: a peer that trickles one byte a minute, or
 * never finishes its fragment, is idle too).
 *
 * Threads and lifetimes: bufferevents are BEV_OPT_THREADSAFE and their
 * callbacks deferred and unlocked, so the lock order is srv->mem_lock,
 * conn->lock, the bufferevent's lock.  A connection is reference counted
 * (one reference for the loop while open, one per request in flight, one
 * while on the request-memory wait list); closing
 * it (loop thread, under conn->lock) frees the socket at once, and a
 * worker that finishes later sees `closed` and drops its reply.
 */
#include "config.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "nfsd/metrics-internal.h"
#include "nfsd/server-internal.h"

#define OUT_HIGH (32u << 20)
#define STAGE_SIZE (64u << 10)
/* fragment bodies at least this long are read straight into the record */
#define DIRECT_MIN (16u << 10)

struct conn {
	struct nfsd_server *srv;
	struct bufferevent *bev; /* output only; NULL once closed */
	struct event *rd;	 /* readable socket (loop) */
	evutil_socket_t fd;
	struct event *resume;	 /* wakes the loop when below the cap */
	pthread_mutex_t lock;
	unsigned refs;	   /* under lock */
	unsigned inflight; /* under lock */
	bool paused;	   /* under lock: reading stopped at cap */
	bool closed;	   /* under lock; set by the loop only */
	struct sockaddr_storage peer;
	char name[INET6_ADDRSTRLEN + 8];
	bool out_full;		  /* reading stopped: replies unread (loop) */
	uint64_t last_ns;	  /* under lock: last request read or done */
	bool mem_wait;		  /* under srv->mem_lock: on mem_waiters */
	struct conn *mem_next;	  /* under srv->mem_lock */
	struct tl_buf rec;	  /* record being assembled (loop) */
	uint8_t *stage;		  /* bytes read, not yet parsed (loop) */
	size_t st_pos, st_len;
	uint8_t hdr[4];		  /* fragment mark being read (loop) */
	unsigned hdr_have;
	bool in_frag;		  /* hdr complete, frag_left body bytes due */
	bool frag_last;
	uint32_t frag_left;
	struct conn *prev, *next; /* open connections (loop) */
};

struct job {
	struct conn *conn;
	uint8_t *msg;
	size_t len;
};


/* ---- connections ------------------------------------------------------------
 */

static void
conn_unref(struct conn *c)
{
	unsigned left;

	pthread_mutex_lock(&c->lock);
	left = --c->refs;
	pthread_mutex_unlock(&c->lock);
	if (left > 0)
		return;
	pthread_mutex_destroy(&c->lock);
	tl_buf_free(&c->rec);
	free(c->stage);
	free(c);
}

/* Loop thread (or after the loop stopped). */
static void
conn_close(struct conn *c, const char *why)
{
	struct nfsd_server *s = c->srv;
	struct bufferevent *bev;
	struct event *resume, *rd;

	pthread_mutex_lock(&c->lock);
	if (c->closed) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	c->closed = true;
	bev = c->bev;
	resume = c->resume;
	rd = c->rd;
	c->bev = NULL;
	c->resume = NULL;
	c->rd = NULL;
	pthread_mutex_unlock(&c->lock);

	/* A client hanging up or resetting, or an idle connection timed
	 * out, is routine (info); anything else an operator wants to see. */
	if (strcmp(why, "shutdown") == 0)
		tl_debug("rpc", "%s: closed (%s)", c->name, why);
	else if (strcmp(why, "eof") == 0 || strcmp(why, "reset") == 0 ||
		 strcmp(why, "idle") == 0)
		tl_info("rpc", "%s: closed (%s)", c->name, why);
	else
		tl_notice("rpc", "%s: connection closed (%s)", c->name, why);
	nfsd_m_conn_closed(why);
	event_free(rd);
	bufferevent_free(bev);
	event_free(resume);
	tl_buf_free(&c->rec);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->nconns--;
	conn_unref(c);
}

/* A recv or send failed with err: a client that reset the connection
 * or went away is routine ("reset", info); any other error is not. */
static void
conn_lost(struct conn *c, const char *op, int err)
{
	if (err == ECONNRESET || err == EPIPE || err == ECONNABORTED ||
	    err == ETIMEDOUT) {
		tl_info("rpc", "%s: %s: %s", c->name, op, strerror(err));
		conn_close(c, "reset");
		return;
	}
	tl_notice("rpc", "%s: %s: %s", c->name, op, strerror(err));
	conn_close(c, "error");
}

/* arg: the start of the malloc'd block (data may point into it). */
static void
free_reply(const void *data, size_t len, void *arg)
{
	free(arg);
}

/* A tail lent by the cache (nfsd_tail's ref), once sent. */
static void
release_lent(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	cache_read_done(arg);
}

/* A file segment the output holds, once sent (or dropped). */
static void
release_segment(struct evbuffer_file_segment const *seg, int flags,
		void *arg)
{
	(void)seg;
	(void)flags;
	cache_read_done(arg);
}

/* Queue bytes [off, off+len) of the tail's file for the loop to send:
 * by reference to the file (sendfile when the socket is writable; the
 * output releases the lend), else read now.  False if neither worked:
 * the reply cannot be completed. */
static bool
queue_file(struct evbuffer *out, struct nfsd_tail *tail, int fd,
	   uint64_t off, size_t len)
{
	struct evbuffer_file_segment *seg;
	uint8_t *buf;
	size_t got = 0;

	seg = evbuffer_file_segment_new(fd, (ev_off_t)off, (ev_off_t)len, 0);
	if (seg != NULL) {
		bool ok = evbuffer_add_file_segment(out, seg, 0,
						    (ev_off_t)len) == 0;

		if (ok) {
			evbuffer_file_segment_add_cleanup_cb(
			    seg, release_segment, tail->ref);
			tail->ref = NULL; /* the output releases it */
		}
		evbuffer_file_segment_free(seg);
		if (ok)
			return true;
	}
	buf = tl_malloc(len);
	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got,
				  (off_t)(off + got));

		if (n <= 0 && !(n < 0 && errno == EINTR))
			break;
		got += n > 0 ? (size_t)n : 0;
	}
	if (got < len || evbuffer_add_reference(out, buf, len, free_reply,
						 buf) != 0) {
		free(buf);
		return false;
	}
	return true;
}

/* Send as much of bytes [off, off+len) of fd as the socket takes now;
 * returns how many, or -1 on an error other than a full socket. */
static ssize_t
send_file_now(int sock, int fd, uint64_t off, size_t len)
{
	off_t o = (off_t)off;
	size_t sent = 0;

	while (sent < len) {
		ssize_t n = sendfile(sock, fd, &o, len - sent);

		if (n > 0) {
			sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n == 0)
			errno = EIO; /* the file is shorter than it was */
		return -1;
	}
	return (ssize_t)sent;
}

/*
 * Send one reply: head (record mark included), then tail and its zero
 * padding.  Under c->lock, connection open.  When nothing is queued the
 * worker writes to the socket itself; the rest, if any, is queued by
 * reference for the loop.  Takes ownership of head->data and of the tail.
 * A tail that lends a file (a READ from a bare file:// store) goes from
 * the page cache to the socket with sendfile(2), never copied; the store
 * lends only bytes in the page cache (os_open_range), so sendfile does
 * not wait for the disk while the locks the loop needs are held.
 */
static void
conn_send(struct conn *c, struct tl_buf *head, struct nfsd_tail *tail)
{
	static const uint8_t zero[3];
	size_t pad = (4 - tail->len % 4) % 4, sent = 0, off;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	uint64_t foff = 0;
	int ffd = -1;
	bool file = tail->data == NULL && tail->ref != NULL &&
		    cache_ref_file(tail->ref, &ffd, &foff);
	struct iovec iov[3] = {{head->data, head->len},
			       {tail->data, tail->len},
			       {(void *)zero, pad}};
	struct msghdr mh = {.msg_iov = iov,
			    .msg_iovlen = tail->data != NULL ? 3 : 1};

	bufferevent_lock(c->bev);
	if (evbuffer_get_length(out) == 0) {
		ssize_t n = sendmsg(c->fd, &mh,
				    MSG_DONTWAIT | MSG_NOSIGNAL |
					(file ? MSG_MORE : 0));

		/* an error is the loop's to see (read or write fails) */
		sent = n > 0 ? (size_t)n : 0;
		if (file && sent == head->len) {
			n = send_file_now(c->fd, ffd, foff, tail->len);
			if (n < 0) {
				tl_warn("nfsd", "sending READ data from a "
						"file: %s; closing the "
						"connection",
					strerror(errno));
				shutdown(c->fd, SHUT_RDWR);
				bufferevent_unlock(c->bev);
				return;
			}
			sent += (size_t)n;
		}
	}
	if (sent < head->len) {
		if (evbuffer_add_reference(out, head->data + sent,
					   head->len - sent, free_reply,
					   head->data) == 0)
			head->data = NULL;
		sent = 0;
	} else {
		sent -= head->len;
	}
	if (file && sent < tail->len) {
		if (!queue_file(out, tail, ffd, foff + sent,
				tail->len - sent)) {
			tl_warn("nfsd", "cannot queue READ data from a file; "
					"closing the connection");
			shutdown(c->fd, SHUT_RDWR);
			bufferevent_unlock(c->bev);
			return;
		}
		sent = 0;
	} else if (file) {
		sent -= tail->len;
	} else if (tail->data != NULL && sent < tail->len) {
		if (evbuffer_add_reference(
			out, (char *)tail->data + sent, tail->len - sent,
			tail->ref != NULL ? release_lent : free_reply,
			tail->ref != NULL ? tail->ref : tail->data) == 0) {
			tail->data = NULL;
			tail->ref = NULL;
		}
		sent = 0;
	} else {
		sent -= tail->len;
	}
	off = sent;
	if (file && off == 0 && pad > 0 && evbuffer_get_length(out) == 0) {
		ssize_t n = send(c->fd, zero, pad,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		off = n > 0 ? (size_t)n : 0;
	}
	if (off < pad)
		evbuffer_add(out, zero, pad - off);
	bufferevent_unlock(c->bev);
}

/* True while the connection must not be read (in-flight cap or the
 * request memory limit). */
static bool
conn_blocked(struct conn *c)
{
	bool b;

	pthread_mutex_lock(&c->lock);
	b = c->paused;
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_lock(&c->srv->mem_lock);
	b |= c->mem_wait;
	pthread_mutex_unlock(&c->srv->mem_lock);
	return b;
}

/* A request of len bytes was answered: wake the connections that wait
 * for request memory once usage is below the limit again. */
static void
mem_release(struct nfsd_server *s, size_t len)
{
	struct conn *w = NULL, *next;

	pthread_mutex_lock(&s->mem_lock);
	s->mem_used -= len;
	if (s->mem_used < s->mem_limit) {
		w = s->mem_waiters;
		s->mem_waiters = NULL;
		for (struct conn *c = w; c != NULL; c = c->mem_next)
			c->mem_wait = false;
	}
	pthread_mutex_unlock(&s->mem_lock);
	for (; w != NULL; w = next) {
		next = w->mem_next;
		pthread_mutex_lock(&w->lock);
		if (!w->closed)
			event_active(w->resume, EV_READ, 0);
		pthread_mutex_unlock(&w->lock);
		conn_unref(w);
	}
}

static void
worker(void *arg)
{
	struct job *j = arg;
	struct conn *c = j->conn;
	struct tl_buf reply = TL_BUF_INIT;
	struct nfsd_tail tail = {.files = true};

	nfsd_dispatch_tail(&c->srv->ctx, &c->peer, j->msg, j->len, &reply,
			   &tail);
	free(j->msg);
	pthread_mutex_lock(&c->lock);
	if (reply.len > 0 && !c->closed) {
		nfsd_m_add(&nfsd_m.tx_bytes, reply.len + tail.len);
		conn_send(c, &reply, &tail);
	}
	c->inflight--;
	c->last_ns = tl_mono_ns();
	if (c->paused && !c->closed && c->inflight < c->srv->max_inflight) {
		c->paused = false;
		event_active(c->resume, EV_READ, 0);
	}
	pthread_mutex_unlock(&c->lock);
	free(reply.data);
	nfsd_tail_free(&tail);
	nfsd_m_request_done(j->len);
	mem_release(c->srv, j->len);
	conn_unref(c);
	free(j);
}

/* Hand one complete record to the pool; false once the connection hit
 * its in-flight cap (reading stops until a worker resumes it). */
static bool
submit(struct conn *c)
{
	struct nfsd_server *s = c->srv;
	struct job *j = tl_malloc(sizeof(*j));
	bool more, over;

	j->conn = c;
	j->msg = c->rec.data;
	j->len = c->rec.len;
	c->rec = (struct tl_buf)TL_BUF_INIT;
	nfsd_m_request_in(j->len);
	pthread_mutex_lock(&s->mem_lock);
	s->mem_used += j->len;
	over = s->mem_used >= s->mem_limit;
	if (over && !c->mem_wait) {
		/* the list's reference is taken before a worker can see c
		 * there (mem_release drops it) */
		pthread_mutex_lock(&c->lock);
		c->refs++;
		pthread_mutex_unlock(&c->lock);
		c->mem_wait = true;
		c->mem_next = s->mem_waiters;
		s->mem_waiters = c;
	}
	pthread_mutex_unlock(&s->mem_lock);
	pthread_mutex_lock(&c->lock);
	c->refs++;
	c->inflight++;
	c->last_ns = tl_mono_ns();
	if (c->inflight >= s->max_inflight)
		c->paused = true;
	more = !c->paused && !over;
	if (!more)
		event_del(c->rd);
	pthread_mutex_unlock(&c->lock);
	if (nfsd_call_is_quick(j->msg, j->len))
		worker(j); /* cheaper here than a hand-off (dispatch.c) */
	else
		tl_pool_submit(c->srv->pool, worker, j);
	return more;
}

/* A fragment mark is complete: check the length; false once closed. */
static bool
frag_begin(struct conn *c)
{
	uint32_t mark = tl_get_be32(c->hdr);
	uint32_t frag = mark & 0x7fffffffu;

	if (c->rec.len + frag > c->srv->max_record) {
		tl_warn("rpc",
			"%s: RPC record over %llu bytes, closing the "
			"connection",
			c->name, (unsigned long long)c->srv->max_record);
		conn_close(c, "record too large");
		return false;
	}
	c->hdr_have = 0;
	c->in_frag = true;
	c->frag_last = (mark & 0x80000000u) != 0;
	c->frag_left = frag;
	return true;
}

/* The fragment's body is complete: submit the record if it was the last
 * fragment; false when reading must stop (cap reached). */
static bool
frag_end(struct conn *c)
{
	c->in_frag = false;
	return !c->frag_last || submit(c);
}

/* Room for extra more bytes in the record, exactly: tl_buf_reserve
 * would double a 1 MiB WRITE's buffer to 2 MiB. */
static void
rec_reserve(struct conn *c, size_t extra)
{
	if (c->rec.len + extra <= c->rec.cap)
		return;
	c->rec.cap = c->rec.len + extra;
	c->rec.data = tl_realloc(c->rec.data, c->rec.cap);
}

/* Parse the staged bytes; false when the connection was closed (c may
 * be gone) or must not be read for now. */
static bool
feed(struct conn *c)
{
	while (c->st_pos < c->st_len) {
		const uint8_t *p = c->stage + c->st_pos;
		size_t n = c->st_len - c->st_pos, k;

		if (!c->in_frag) {
			k = TL_MIN(4 - c->hdr_have, n);
			memcpy(c->hdr + c->hdr_have, p, k);
			c->hdr_have += (unsigned)k;
			c->st_pos += k;
			if (c->hdr_have < 4)
				break;
			if (!frag_begin(c))
				return false;
		} else {
			k = TL_MIN((size_t)c->frag_left, n);
			/* the whole body at once: the peer is sending it */
			rec_reserve(c, c->frag_left);
			memcpy(c->rec.data + c->rec.len, p, k);
			c->rec.len += k;
			c->frag_left -= (uint32_t)k;
			c->st_pos += k;
		}
		if (c->frag_left == 0 && !frag_end(c))
			return false;
	}
	return true;
}

/* Output the client does not read: stop reading until it drains
 * (conn_write_cb). */
static bool
conn_out_full(struct conn *c)
{
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) <= OUT_HIGH)
		return false;
	c->out_full = true;
	event_del(c->rd);
	return true;
}

/* One recv into the record (large fragment body) or the staging buffer;
 * the byte count, 0 at EOF, -1 with errno. */
static ssize_t
conn_recv(struct conn *c, size_t *want)
{
	ssize_t n;

	if (c->in_frag && c->frag_left >= DIRECT_MIN) {
		*want = c->frag_left;
		rec_reserve(c, *want);
		n = recv(c->fd, c->rec.data + c->rec.len, *want, 0);
		if (n > 0) {
			c->rec.len += (size_t)n;
			c->frag_left -= (uint32_t)n;
		}
		return n;
	}
	*want = STAGE_SIZE;
	n = recv(c->fd, c->stage, STAGE_SIZE, 0);
	if (n > 0) {
		c->st_pos = 0;
		c->st_len = (size_t)n;
	}
	return n;
}

/* Read and cut records until the socket is drained or reading must stop
 * (loop thread). */
static void
conn_input(struct conn *c)
{
	bool drained = false;

	for (;;) {
		size_t want;
		ssize_t n;

		if (conn_out_full(c))
			return;
		if (c->st_pos < c->st_len) {
			if (!feed(c))
				return;
			continue;
		}
		if (drained)
			return;
		n = conn_recv(c, &want);
		if (n == 0) {
			conn_close(c, "eof");
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_lost(c, "recv", errno);
			return;
		}
		/* a short read emptied the socket: no need to ask again
		 * (the event is level-triggered) */
		drained = (size_t)n < want;
		if (c->in_frag && c->frag_left == 0 && !frag_end(c))
			return;
	}
}

static void
conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_input(arg);
}

/* Output drained completely. */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (!c->out_full)
		return;
	c->out_full = false;
	if (!conn_blocked(c)) {
		event_add(c->rd, NULL);
		conn_input(c);
	}
}

static void
conn_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->closed || c->out_full || conn_blocked(c))
		return;
	event_add(c->rd, NULL);
	conn_input(c);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (what & BEV_EVENT_ERROR)
		conn_lost(c, "send", errno); /* libevent kept the errno */
	else
		conn_close(c, "eof");
}

/* Timer (loop thread): close connections idle for idle_timeout. */
static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct nfsd_server *s = arg;
	uint64_t idle_ns = s->idle_ms * 1000000;
	struct conn *c, *next;

	for (c = s->conns; c != NULL; c = next) {
		bool idle;

		next = c->next;
		pthread_mutex_lock(&c->lock);
		/*
		 * Read the clock under the lock: a worker finishing a request
		 * sets last_ns under it, and a clock read before that would be
		 * older than last_ns; the unsigned difference would wrap and a
		 * busy connection would look idle for centuries.
		 */
		uint64_t now = tl_mono_ns();
		idle = c->inflight == 0 && now > c->last_ns &&
		       now - c->last_ns >= idle_ns;
		pthread_mutex_unlock(&c->lock);
		if (idle)
			conn_close(c, "idle");
	}
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
	  int salen, void *arg)
{
	struct nfsd_server *s = arg;
	struct conn *c;
	char addr[INET6_ADDRSTRLEN];
	int one = 1;

	if (s->nconns >= s->max_conns) {
		tl_warn("rpc",
			"max_connections (%llu) reached, refusing a "
			"connection",
			(unsigned long long)s->max_conns);
		nfsd_m_inc(&nfsd_m.conn_refused);
		evutil_closesocket(fd);
		return;
	}
	c = tl_calloc(1, sizeof(*c));
	c->srv = s;
	c->refs = 1;
	pthread_mutex_init(&c->lock, NULL);
	memcpy(&c->peer, sa, TL_MIN((size_t)salen, sizeof(c->peer)));
	nfsd_peer_str(&c->peer, addr, sizeof(addr));
	snprintf(c->name, sizeof(c->name), "%s:%u", addr,
		 nfsd_peer_port(&c->peer));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->bev = bufferevent_socket_new(
	    s->base, fd,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_THREADSAFE |
		BEV_OPT_DEFER_CALLBACKS | BEV_OPT_UNLOCK_CALLBACKS);
	c->resume = event_new(s->base, -1, 0, conn_resume_cb, c);
	c->rd = event_new(s->base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
	c->fd = fd;
	c->stage = tl_malloc(STAGE_SIZE);
	if (c->bev == NULL || c->resume == NULL || c->rd == NULL) {
		tl_err("rpc", "%s: cannot set up the connection", c->name);
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		else
			evutil_closesocket(fd);
		if (c->resume != NULL)
			event_free(c->resume);
		if (c->rd != NULL)
			event_free(c->rd);
		pthread_mutex_destroy(&c->lock);
		free(c->stage);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, NULL, conn_write_cb, conn_event_cb, c);
	/* the loop writes what workers could not send at once in one go */
	bufferevent_set_max_single_write(c->bev, 4u << 20);
	c->last_ns = tl_mono_ns();
	event_add(c->rd, NULL);
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	nfsd_m_conn_opened();
	tl_debug("rpc", "%s: connected", c->name);
}

static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();

	tl_warn("rpc", "accept: %s", evutil_socket_error_to_string(err));
}

/* ---- the transport's part of the server's life ---------------------------- */

void
nfsd_rpc_init(struct nfsd_server *s, const struct nfsd_config *cfg)
{
	s->max_record = cfg->max_record_size;
	s->max_inflight = cfg->max_inflight_per_conn;
	s->max_conns = cfg->max_connections;
	s->idle_ms = cfg->idle_timeout;
	s->mem_limit = cfg->request_memory;
	pthread_mutex_init(&s->mem_lock, NULL);
}

int
nfsd_rpc_listen(struct nfsd_server *s, const char *listen, char **err)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	unsigned len;

	if (nfsd_parse_listen(listen, &ss, &len) != 0) {
		*err = tl_asprintf("bad listen address \"%s\" (want "
				   "ADDR:PORT)",
				   listen);
		return -EINVAL;
	}
	s->lis = evconnlistener_new_bind(
	    s->base, accept_cb, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
	    256, (struct sockaddr *)&ss, len);
	if (s->lis == NULL) {
		int e = errno;

		*err =
		    tl_asprintf("cannot listen on %s: %s", listen, strerror(e));
		return e != 0 ? -e : -EADDRINUSE;
	}
	evconnlistener_set_error_cb(s->lis, accept_error_cb);
	sl = sizeof(ss);
	getsockname(evconnlistener_get_fd(s->lis), (struct sockaddr *)&ss, &sl);
	s->port = nfsd_peer_port(&ss);
	s->family = ss.ss_family;
	if (s->idle_ms > 0) {
		/* a quarter of the timeout, at most 10 s, is precise enough */
		uint64_t ms = TL_MIN(TL_MAX(s->idle_ms / 4, 50), 10000);
		struct timeval tv = {(time_t)(ms / 1000),
				     (suseconds_t)(ms % 1000) * 1000};

		s->sweep = event_new(s->base, -1, EV_PERSIST, sweep_cb, s);
		event_add(s->sweep, &tv);
	}
	return 0;
}

void
nfsd_rpc_close(struct nfsd_server *s)
{
	if (s->lis != NULL)
		evconnlistener_free(s->lis);
	s->lis = NULL;
	while (s->conns != NULL)
		conn_close(s->conns, "shutdown");
}

void
nfsd_rpc_free(struct nfsd_server *s)
{
	while (s->mem_waiters != NULL) {
		struct conn *w = s->mem_waiters;

		s->mem_waiters = w->mem_next;
		conn_unref(w);
	}
	pthread_mutex_destroy(&s->mem_lock);
	if (s->sweep != NULL)
		event_free(s->sweep);
	s->sweep = NULL;
}
