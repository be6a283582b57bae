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
 * recv; one buffer for all connections, the loop being the only reader),
 * the body of a large fragment straight into the record buffer with one
 * recv of all that remains.  A worker whose connection has nothing
 * queued sends its reply with one non-blocking sendmsg (READ data by
 * reference, see nfsd_dispatch_tail), without waking the loop; what the
 * socket does not take goes to the bufferevent's output, which the loop
 * writes when the socket is writable.
 *
 * Request memory.  request_memory bounds, over all connections, the
 * bytes the transport holds for clients: fragments being received
 * (counted in full when their mark is read: a fragment is admitted, or
 * not yet, before any of its body is read), requests in progress with
 * room for their replies (nfsd_call_reply_max: READ and READDIR by the
 * count they ask for), replies queued and not yet sent (counted as they
 * are queued and sent, by a callback on each output buffer), and bytes
 * read but left unparsed when reading stopped.  A fragment of up to
 * SMALL_FRAG bytes is admitted while the total is below request_memory,
 * a longer one only below BIG_SHARE of it, so the calls every client
 * makes all the time (GETATTR, LOOKUP...) find room while large WRITEs
 * wait; beyond BIG_SHARE the loop reads a fragment mark alone before
 * deciding.  A connection whose next fragment does not fit waits in a
 * queue (not read, holding nothing but the mark) and is resumed, in
 * order, as memory is released.  Memory held by a client that does not
 * do its part cannot block the others for long: while connections wait,
 * one that has held a record it does not finish, or replies it does not
 * read, for STALL_NS is closed ("stalled"), the oldest first.
 *
 * Metadata rate limits (limit.c): before a record goes to a worker the
 * loop asks nfsd_limit_admit.  A call over its client's or export's rate
 * waits on a timer of the loop (struct job on srv->delayed), holding its
 * place in flight and its memory but no worker, and then runs as any
 * other; one that would wait past limit_wait_max is answered
 * NFS3ERR_JUKEBOX by the loop at once (nfsd_dispatch_refuse).  At
 * shutdown the waiting calls are only released.
 *
 * Other limits: a record longer than max_record_size closes the
 * connection (a client that sends one is broken or hostile); at
 * max_inflight_per_conn requests in progress the connection stops being
 * read until one finishes, and while more than out_conn bytes of its
 * replies wait to be read by the client (request_memory / 16, 256 KiB to
 * 32 MiB), until half of them are; at max_connections a new connection
 * closes the longest-idle one (least recently sent a request, nothing in
 * flight preferred), as knfsd does, so that one host holding every slot
 * cannot lock the others out; a connection with nothing in flight that
 * completed no request for idle_timeout is closed (bytes alone do not
 * count: a peer that trickles one byte a minute, or never finishes its
 * fragment, is idle too).  What the worker threads hold while they run a
 * request (decoded arguments and results) is bounded by their number.
 *
 * Threads and lifetimes: bufferevents are BEV_OPT_THREADSAFE and their
 * callbacks deferred and unlocked; the lock order is conn->lock, the
 * bufferevent's lock, libevent's base lock.  The request memory total is
 * an atomic counter (the output callbacks run under the bufferevent's
 * lock, in workers and in the loop); the wait queue, the connection list
 * and everything about reading belong to the loop thread, which a
 * release wakes through one event (mem_wake).  A connection is reference
 * counted (one reference for the loop while open, one per request in
 * flight); closing it (loop thread, under conn->lock) frees the socket
 * at once and gives back what it held, and a worker that finishes later
 * sees `closed` and drops its reply.
 */
#include "config.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "nfsd/addr-internal.h"
#include "nfsd/counters-internal.h"
#include "nfsd/server-internal.h"

#define STAGE_SIZE (64u << 10)
/* fragment bodies at least this long are read straight into the record */
#define DIRECT_MIN (16u << 10)
/* fragments up to this long may use all of request_memory; longer ones
 * only BIG_SHARE of it (in quarters) */
#define SMALL_FRAG (64u << 10)
#define BIG_SHARE  3
/* memory held this long by a client that moved less than PROGRESS
 * bytes of its record or of its replies meanwhile is stalled */
#define STALL_NS       (2ull * 1000000000)
#define PROGRESS       (64u << 10)
#define STALL_CHECK_MS 500
/* at most one line per kind of limit reached this often */
#define LIMIT_LOG_NS (10ull * 1000000000)

/* What reading a connection does next. */
enum { GO, STOP, CLOSED };

struct conn {
	struct nfsd_server *srv;
	struct bufferevent *bev; /* output only; NULL once closed */
	struct event *rd;        /* readable socket (loop) */
	evutil_socket_t fd;
	struct event *resume; /* wakes the loop when below the cap */
	pthread_mutex_t lock;
	unsigned refs;     /* under lock */
	unsigned inflight; /* under lock */
	bool paused;       /* under lock: reading stopped at cap */
	bool closed;       /* under lock; set by the loop only */
	struct sockaddr_storage peer;
	struct sockaddr_storage local; /* the address it reached */
	char name[INET6_ADDRSTRLEN + 8];
	/* proxy_protocol: the PROXY header being read, before any record
	 * (loop) */
	bool proxy_wait;
	unsigned pxy_have;
	uint8_t pxy[NFSD_PROXY_MAX];
	bool out_full;     /* reading stopped: replies unread (loop) */
	uint64_t last_ns;  /* under lock: last request read or done */
	struct tl_buf rec; /* record being assembled (loop) */
	uint8_t hdr[4];    /* fragment mark being read (loop) */
	unsigned hdr_have; /* 4 and !in_frag: waits for admission */
	bool in_frag;      /* admitted, frag_left body bytes due */
	bool frag_last;
	uint32_t frag_left;
	/* request memory (loop, but the out_ fields) */
	uint64_t rec_charge; /* admitted bytes of the record */
	uint64_t rec_since;  /* record started, or last PROGRESS bytes */
	uint64_t rec_moved;  /* bytes received since rec_since */
	uint8_t *spill;      /* read, not parsed when reading stopped */
	size_t spill_pos, spill_len;
	struct evbuffer_cb_entry *out_cb; /* counts the queued replies */
	_Atomic uint64_t out_since;       /* output not empty since, or since it
				       last sent PROGRESS bytes; 0 */
	uint64_t out_moved;               /* under the bufferevent's lock */
	bool mem_wait;                    /* on srv->waiters */
	uint64_t need;                    /* waits for mem_used below it */
	TAILQ_ENTRY(conn) wait;           /* srv->waiters, oldest first */
	TAILQ_ENTRY(conn)
	link; /* srv->conns, most recently active
				   first (loop) */
};

struct job {
	struct conn *conn;
	uint8_t *msg;
	size_t len;
	uint64_t charge; /* request memory held until the worker is done */
	bool refuse;     /* over a rate limit: answer NFS3ERR_JUKEBOX */
	/* waiting for its rate limit's tokens (loop) */
	struct event *timer;
	LIST_ENTRY(job) delayed; /* srv->delayed */
};

/* ---- request memory ------------------------------------------------------- */

static uint64_t
mem_now(struct nfsd_server *s)
{
	return atomic_load(&s->mem_used);
}

static void
mem_charge(struct nfsd_server *s, uint64_t n)
{
	if (n == 0)
		return;
	atomic_fetch_add(&s->mem_used, n);
	nfsd_m_memory((int64_t)n);
}

/* Any thread: n bytes given back; wake the loop if a connection waits
 * and there may be room.  (Sequentially consistent with mem_wait's
 * order, so one of the two always sees the other.) */
static void
mem_release(struct nfsd_server *s, uint64_t n)
{
	uint64_t left;

	if (n == 0)
		return;
	left = atomic_fetch_sub(&s->mem_used, n) - n;
	nfsd_m_memory(-(int64_t)n);
	if (left < s->mem_limit && atomic_load(&s->nwaiters) > 0)
		event_active(s->mem_wake, EV_READ, 0);
}

/* Loop thread, or a worker under the connection's bufferevent lock: the
 * output buffer of c changed (replies queued, or sent). */
static void
out_changed(struct evbuffer *buf, const struct evbuffer_cb_info *info,
	    void *arg)
{
	struct conn *c = arg;

	if (info->n_added > 0) {
		if (info->orig_size == 0) {
			atomic_store(&c->out_since, tl_mono_ns());
			c->out_moved = 0;
		}
		mem_charge(c->srv, info->n_added);
	}
	if (info->n_deleted > 0) {
		c->out_moved += info->n_deleted;
		if (evbuffer_get_length(buf) == 0) {
			atomic_store(&c->out_since, 0);
		} else if (c->out_moved >= PROGRESS) {
			atomic_store(&c->out_since, tl_mono_ns());
			c->out_moved = 0;
		}
		mem_release(c->srv, info->n_deleted);
	}
}

/* Keep bytes [p, p+n) that were read but not parsed (loop). */
static void
spill_keep(struct conn *c, const uint8_t *p, size_t n)
{
	if (n == 0)
		return;
	c->spill = tl_memdup(p, n);
	c->spill_pos = 0;
	c->spill_len = n;
	atomic_fetch_add(&c->srv->spill_used, n);
	mem_charge(c->srv, n);
}

static void
spill_drop(struct conn *c)
{
	if (c->spill == NULL)
		return;
	atomic_fetch_sub(&c->srv->spill_used, c->spill_len);
	mem_release(c->srv, c->spill_len);
	free(c->spill);
	c->spill = NULL;
	c->spill_pos = c->spill_len = 0;
}

/* Stop reading c until the total is below need (loop). */
static void
mem_wait(struct conn *c, uint64_t need)
{
	struct nfsd_server *s = c->srv;
	struct timeval tv = {STALL_CHECK_MS / 1000,
			     (STALL_CHECK_MS % 1000) * 1000};

	event_del(c->rd);
	c->need = need;
	if (c->mem_wait)
		return;
	c->mem_wait = true;
	TAILQ_INSERT_TAIL(&s->waiters, c, wait);
	atomic_fetch_add(&s->nwaiters, 1);
	if (!event_pending(s->stall, EV_TIMEOUT, NULL))
		event_add(s->stall, &tv);
	/* a release may have come between the check and the queueing */
	if (mem_now(s) < need)
		event_active(s->mem_wake, EV_READ, 0);
}

/* Take c off the wait queue (loop). */
static void
mem_unwait(struct conn *c)
{
	if (!c->mem_wait)
		return;
	TAILQ_REMOVE(&c->srv->waiters, c, wait);
	c->mem_wait = false;
	atomic_fetch_sub(&c->srv->nwaiters, 1);
}

/* Whether to log one more time that a limit was reached; *skipped gets
 * how many times it was not since the last line. */
static bool
limit_log(struct nfsd_limit_log *l, unsigned *skipped)
{
	uint64_t now = tl_mono_ns();

	if (now < l->next_ns) {
		l->skipped++;
		return false;
	}
	*skipped = l->skipped;
	l->skipped = 0;
	l->next_ns = now + LIMIT_LOG_NS;
	return true;
}

/* ---- connections ---------------------------------------------------------- */

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
	free(c);
}

/* Give back the request memory c holds, its queued replies included. */
static void
conn_release(struct conn *c, struct bufferevent *bev)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	size_t queued;

	bufferevent_lock(bev);
	evbuffer_remove_cb_entry(out, c->out_cb);
	queued = evbuffer_get_length(out);
	bufferevent_unlock(bev);
	atomic_store(&c->out_since, 0);
	mem_release(c->srv, queued + c->rec_charge);
	c->rec_charge = 0;
	c->rec_since = 0;
	spill_drop(c);
	mem_unwait(c);
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
	 * out, is routine (info); anything else an operator wants to see
	 * (the limits log their own lines). */
	if (strcmp(why, "shutdown") == 0)
		tl_debug("rpc", "%s: closed (%s)", c->name, why);
	else if (strcmp(why, "eof") == 0 || strcmp(why, "reset") == 0 ||
		 strcmp(why, "idle") == 0 || strcmp(why, "stalled") == 0 ||
		 strcmp(why, "max_connections") == 0 ||
		 strcmp(why, "bad PROXY header") == 0)
		tl_info("rpc", "%s: closed (%s)", c->name, why);
	else
		tl_notice("rpc", "%s: connection closed (%s)", c->name, why);
	nfsd_m_conn_closed(why);
	conn_release(c, bev);
	event_free(rd);
	bufferevent_free(bev);
	event_free(resume);
	tl_buf_free(&c->rec);
	TAILQ_REMOVE(&s->conns, c, link);
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
release_segment(struct evbuffer_file_segment const *seg, int flags, void *arg)
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
queue_file(struct evbuffer *out, struct nfsd_tail *tail, int fd, uint64_t off,
	   size_t len)
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
		ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + got));

		if (n <= 0 && !(n < 0 && errno == EINTR))
			break;
		got += n > 0 ? (size_t)n : 0;
	}
	if (got < len ||
	    evbuffer_add_reference(out, buf, len, free_reply, buf) != 0) {
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
				/* a client gone away is routine */
				tl_log(errno == EPIPE || errno == ECONNRESET
					       ? TL_LOG_INFO
					       : TL_LOG_WARN,
				       "nfsd",
				       "%s: sending READ data from a file: "
				       "%s; closing the connection",
				       c->name, strerror(errno));
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
		ssize_t n = send(c->fd, zero, pad, MSG_DONTWAIT | MSG_NOSIGNAL);

		off = n > 0 ? (size_t)n : 0;
	}
	if (off < pad)
		evbuffer_add(out, zero, pad - off);
	bufferevent_unlock(c->bev);
}

/* ---- requests ---------------------------------------------------------- */

static void
worker(void *arg)
{
	struct job *j = arg;
	struct conn *c = j->conn;
	struct tl_buf reply = TL_BUF_INIT;
	struct nfsd_tail tail = {.files = true};

	if (j->refuse)
		nfsd_dispatch_refuse(j->msg, j->len, NFS3ERR_JUKEBOX, &reply);
	else
		nfsd_dispatch_from(&c->srv->ctx, &c->peer, &c->local, j->msg,
				   j->len, &reply, &tail);
	free(j->msg);
	pthread_mutex_lock(&c->lock);
	if (reply.len > 0 && !c->closed) {
		nfsd_m_add(&nfsd_m.tx_bytes, reply.len + tail.len);
		conn_send(c, &reply, &tail); /* what is queued is counted */
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
	mem_release(c->srv, j->charge);
	conn_unref(c);
	free(j);
}

/* Run j: on the loop's thread when cheap (or refused), else on a
 * worker. */
static void
job_run(struct nfsd_server *s, struct job *j)
{
	if (j->refuse || nfsd_call_is_quick(j->msg, j->len))
		worker(j); /* cheaper here than a hand-off (dispatch.c) */
	else
		tl_pool_submit(s->pool, worker, j);
}

static void
delayed_unlink(struct job *j)
{
	LIST_REMOVE(j, delayed);
	event_free(j->timer);
	j->timer = NULL;
}

/* Loop: a call's wait for its rate limit's tokens is over. */
static void
delayed_due(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;
	struct nfsd_server *s = j->conn->srv;

	(void)fd;
	(void)what;
	delayed_unlink(j);
	/* a client gone meanwhile: nothing to run, only to give back */
	pthread_mutex_lock(&j->conn->lock);
	if (j->conn->closed)
		j->refuse = true;
	pthread_mutex_unlock(&j->conn->lock);
	job_run(s, j);
}

/* Run j once its rate limits let it, or answer it NFS3ERR_JUKEBOX
 * now; it holds its place among the connection's requests in flight
 * and its memory meanwhile, and no worker. */
static void
job_admit(struct nfsd_server *s, struct job *j)
{
	uint64_t delay = 0;
	struct timeval tv;
	int v;

	v = nfsd_limit_admit(s->limits, &s->ctx, &j->conn->peer, j->msg, j->len,
			     tl_mono_ns(), &delay);
	if (v == NFSD_LIMIT_REFUSE)
		j->refuse = true;
	if (v != NFSD_LIMIT_DELAY) {
		job_run(s, j);
		return;
	}
	j->timer = evtimer_new(s->base, delayed_due, j);
	if (j->timer == NULL) {
		j->refuse = true;
		job_run(s, j);
		return;
	}
	LIST_INSERT_HEAD(&s->delayed, j, delayed);
	tv.tv_sec = (time_t)(delay / 1000000000ULL);
	tv.tv_usec = (suseconds_t)(delay % 1000000000ULL / 1000);
	evtimer_add(j->timer, &tv);
}

/* Hand the complete record to the pool, with room for its reply; STOP
 * once the connection hit its in-flight cap (a worker resumes it) or
 * the memory is used up (mem_wait). */
static int
submit(struct conn *c)
{
	struct nfsd_server *s = c->srv;
	struct job *j = tl_malloc(sizeof(*j));
	uint64_t room;
	bool paused;

	memset(j, 0, sizeof(*j));
	j->conn = c;
	j->msg = c->rec.data;
	j->len = c->rec.len;
	room = nfsd_call_reply_max(j->msg, j->len);
	mem_charge(s, room);
	j->charge = c->rec_charge + room;
	c->rec = (struct tl_buf)TL_BUF_INIT;
	c->rec_charge = 0;
	c->rec_since = 0;
	nfsd_m_request_in(j->len);
	/* the most recently active first */
	TAILQ_REMOVE(&c->srv->conns, c, link);
	TAILQ_INSERT_HEAD(&c->srv->conns, c, link);
	pthread_mutex_lock(&c->lock);
	c->refs++;
	c->inflight++;
	c->last_ns = tl_mono_ns();
	if (c->inflight >= s->max_inflight)
		c->paused = true;
	paused = c->paused;
	if (paused)
		event_del(c->rd);
	pthread_mutex_unlock(&c->lock);
	if (s->limits != NULL)
		job_admit(s, j);
	else
		job_run(s, j);
	if (paused)
		return STOP;
	if (mem_now(s) >= s->mem_limit) {
		mem_wait(c, s->mem_limit);
		return STOP;
	}
	return GO;
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

/* A fragment mark is complete: check the length and admit the fragment
 * (its whole length counted), or make the connection wait for memory. */
static int
frag_begin(struct conn *c)
{
	struct nfsd_server *s = c->srv;
	uint32_t mark = tl_get_be32(c->hdr);
	uint32_t frag = mark & 0x7fffffffu;
	uint64_t need = frag > SMALL_FRAG ? s->big_limit : s->mem_limit;

	if (c->rec.len + frag > s->max_record) {
		tl_warn("rpc",
			"%s: RPC record over %llu bytes, closing the "
			"connection",
			c->name, (unsigned long long)s->max_record);
		conn_close(c, "record too large");
		return CLOSED;
	}
	if (frag > 0 && mem_now(s) >= need) {
		mem_wait(c, need);
		return STOP;
	}
	mem_charge(s, frag);
	c->rec_charge += frag;
	if (c->rec_since == 0) {
		c->rec_since = tl_mono_ns();
		c->rec_moved = 0;
	}
	rec_reserve(c, frag);
	c->hdr_have = 0;
	c->in_frag = true;
	c->frag_last = (mark & 0x80000000u) != 0;
	c->frag_left = frag;
	return GO;
}

/* n more bytes of the fragment's body are in the record. */
static void
rec_append(struct conn *c, size_t n)
{
	c->rec.len += n;
	c->frag_left -= (uint32_t)n;
	c->rec_moved += n;
	if (c->rec_moved >= PROGRESS) {
		c->rec_since = tl_mono_ns();
		c->rec_moved = 0;
	}
}

/* The fragment's body is complete: submit the record if it was the last
 * fragment. */
static int
frag_end(struct conn *c)
{
	c->in_frag = false;
	return c->frag_last ? submit(c) : GO;
}

/* n bytes at p of the PROXY header the balancer sends first
 * (proxy_protocol): *used of them were the header's.  Once it is whole,
 * the connection's peer and local address are the client's and the
 * one it reached. */
static int
proxy_feed(struct conn *c, const uint8_t *p, size_t n, size_t *used)
{
	struct sockaddr_storage src, dst;
	size_t k = TL_MIN(n, sizeof(c->pxy) - c->pxy_have);
	unsigned before = c->pxy_have;
	char was[sizeof(c->name)], addr[INET6_ADDRSTRLEN];
	bool proxied;
	int rc;

	memcpy(c->pxy + c->pxy_have, p, k);
	c->pxy_have += (unsigned)k;
	rc = nfsd_proxy_parse(c->pxy, c->pxy_have, &proxied, &src, &dst);
	if (rc < 0) {
		unsigned skipped;

		if (limit_log(&c->srv->proxy_log, &skipped))
			tl_notice("rpc",
				  "%s: no valid PROXY header first "
				  "(proxy_protocol is on): closed (%u more "
				  "since the last line)",
				  c->name, skipped);
		conn_close(c, "bad PROXY header");
		return CLOSED;
	}
	if (rc == 0) {
		*used = k;
		return GO;
	}
	*used = (size_t)rc - before;
	c->proxy_wait = false;
	if (!proxied) {
		tl_debug("rpc",
			 "%s: PROXY header proxying nothing (a health "
			 "check)",
			 c->name);
		return GO;
	}
	memcpy(was, c->name, sizeof(was));
	c->peer = src;
	c->local = dst;
	nfsd_peer_str(&c->peer, addr, sizeof(addr));
	snprintf(c->name, sizeof(c->name), "%s:%u", addr,
		 nfsd_peer_port(&c->peer));
	tl_debug("rpc", "%s: proxied by %s", c->name, was);
	return GO;
}

/* Parse n read bytes at p: marks, bodies, records; *used gets how many
 * were consumed (all of them unless reading must stop). */
static int
feed(struct conn *c, const uint8_t *p, size_t n, size_t *used)
{
	size_t i = 0, k;
	int st = GO;

	while (i < n && st == GO) {
		if (c->proxy_wait) {
			st = proxy_feed(c, p + i, n - i, &k);
			i += k;
			continue;
		}
		if (!c->in_frag) {
			k = TL_MIN(4 - c->hdr_have, n - i);
			memcpy(c->hdr + c->hdr_have, p + i, k);
			c->hdr_have += (unsigned)k;
			i += k;
			if (c->hdr_have < 4)
				break;
			st = frag_begin(c);
			if (st != GO)
				break;
		} else {
			k = TL_MIN((size_t)c->frag_left, n - i);
			memcpy(c->rec.data + c->rec.len, p + i, k);
			rec_append(c, k);
			i += k;
		}
		if (c->in_frag && c->frag_left == 0)
			st = frag_end(c);
	}
	*used = i;
	return st;
}

/* Replies the client does not read: stop reading until half of them
 * are sent (conn_write_cb). */
static bool
conn_out_full(struct conn *c)
{
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) <=
	    c->srv->out_conn)
		return false;
	c->out_full = true;
	event_del(c->rd);
	return true;
}

/* One recv: a large (or, memory being short, any) fragment body
 * straight into the record; a mark alone when memory is short, so the
 * fragment is admitted before its body is read; else into the shared
 * staging buffer, parsed at once (what is left unparsed is kept). */
static int
conn_read(struct conn *c, bool *drained)
{
	struct nfsd_server *s = c->srv;
	bool short_mem = mem_now(s) >= s->big_limit ||
			 atomic_load(&s->spill_used) >= s->spill_limit;
	uint8_t *dst = s->stage;
	size_t want = STAGE_SIZE, used;
	ssize_t n;
	int st;

	if (c->in_frag && (c->frag_left >= DIRECT_MIN || short_mem)) {
		dst = c->rec.data + c->rec.len;
		want = c->frag_left;
	} else if (!c->in_frag && short_mem && !c->proxy_wait) {
		dst = c->hdr + c->hdr_have;
		want = 4 - c->hdr_have;
	}
	n = recv(c->fd, dst, want, 0);
	if (n == 0) {
		conn_close(c, "eof");
		return CLOSED;
	}
	if (n < 0) {
		if (errno == EINTR)
			return GO;
		*drained = true;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return STOP;
		conn_lost(c, "recv", errno);
		return CLOSED;
	}
	/* a short read emptied the socket: no need to ask again (the event
	 * is level-triggered) */
	*drained = (size_t)n < want;
	if (dst == s->stage) {
		st = feed(c, s->stage, (size_t)n, &used);
		if (st == STOP)
			spill_keep(c, s->stage + used, (size_t)n - used);
		return st;
	}
	if (dst == c->hdr + c->hdr_have) {
		c->hdr_have += (unsigned)n; /* conn_input admits it */
		return GO;
	}
	rec_append(c, (size_t)n);
	return c->frag_left == 0 ? frag_end(c) : GO;
}

/* Read and cut records until the socket is drained or reading must stop
 * (loop thread). */
static void
conn_input(struct conn *c)
{
	bool drained = false;

	for (;;) {
		int st;

		if (conn_out_full(c))
			return;
		if (!c->in_frag && c->hdr_have == 4) {
			/* a mark that waited for memory, or just read */
			st = frag_begin(c);
			if (st == GO && c->frag_left == 0)
				st = frag_end(c);
		} else if (c->spill != NULL) {
			size_t used;

			st = feed(c, c->spill + c->spill_pos,
				  c->spill_len - c->spill_pos, &used);
			if (st != CLOSED) {
				c->spill_pos += used;
				if (c->spill_pos == c->spill_len)
					spill_drop(c);
			}
		} else if (drained) {
			return;
		} else {
			st = conn_read(c, &drained);
		}
		if (st != GO)
			return;
	}
}

/* Resume reading c if nothing else holds it (loop). */
static void
conn_resume(struct conn *c)
{
	bool paused;

	if (c->closed || c->out_full || c->mem_wait)
		return;
	pthread_mutex_lock(&c->lock);
	paused = c->paused;
	pthread_mutex_unlock(&c->lock);
	if (paused)
		return;
	event_add(c->rd, NULL);
	conn_input(c);
}

static void
conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_input(arg);
}

/* Output drained to its low watermark (half of out_conn). */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (!c->out_full)
		return;
	c->out_full = false;
	conn_resume(c);
}

static void
conn_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_resume(arg);
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

/* Memory was released (loop): resume the waiting connections whose
 * next fragment now fits, oldest first; each is tried once, and one
 * that must wait again goes to the back of the queue. */
static void
mem_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct nfsd_server *s = arg;
	unsigned n = atomic_load(&s->nwaiters);

	while (n-- > 0 && !TAILQ_EMPTY(&s->waiters) &&
	       mem_now(s) < s->mem_limit) {
		struct conn *c = TAILQ_FIRST(&s->waiters);

		TAILQ_REMOVE(&s->waiters, c, wait);
		if (mem_now(s) >= c->need) {
			TAILQ_INSERT_TAIL(&s->waiters, c, wait);
			continue;
		}
		c->mem_wait = false;
		atomic_fetch_sub(&s->nwaiters, 1);
		conn_resume(c);
	}
}

/* Since when c has held request memory without its client doing its
 * part (sending the record it started, reading its replies: PROGRESS
 * bytes at least): 0 if it does not, or not for STALL_NS yet.  A record
 * the loop stopped reading (replies unread, in-flight cap) is the
 * output's or nobody's fault. */
static uint64_t
conn_stalled_since(struct conn *c, uint64_t now)
{
	uint64_t since = 0, out = atomic_load(&c->out_since);
	bool paused;

	pthread_mutex_lock(&c->lock);
	paused = c->paused;
	pthread_mutex_unlock(&c->lock);
	if (c->rec_since != 0 && !c->out_full && !paused)
		since = c->rec_since;
	if (out != 0 && (since == 0 || out < since))
		since = out;
	return since != 0 && now > since && now - since >= STALL_NS ? since : 0;
}

/* Timer (loop) while connections wait for memory: close those that
 * have held it without progress for STALL_NS, the oldest first, until
 * there is room again. */
static void
stall_cb(evutil_socket_t fd, short what, void *arg)
{
	struct nfsd_server *s = arg;
	uint64_t now = tl_mono_ns();

	if (TAILQ_EMPTY(&s->waiters)) {
		event_del(s->stall);
		return;
	}
	while (!TAILQ_EMPTY(&s->waiters) && mem_now(s) >= s->big_limit) {
		struct conn *c, *v = NULL;
		uint64_t vsince = 0, held;
		unsigned skipped;

		TAILQ_FOREACH(c, &s->conns, link)
		{
			uint64_t since = conn_stalled_since(c, now);

			if (since != 0 && (v == NULL || since < vsince)) {
				v = c;
				vsince = since;
			}
		}
		if (v == NULL)
			break;
		held = v->rec_charge +
		       evbuffer_get_length(bufferevent_get_output(v->bev));
		if (limit_log(&s->stall_log, &skipped))
			tl_notice(
				"rpc",
				"request_memory (%llu bytes) used up: "
				"closing %s, which held %llu bytes for %llu "
				"ms without finishing its record or reading "
				"its replies (%u such closes not logged "
				"before)",
				(unsigned long long)s->mem_limit, v->name,
				(unsigned long long)held,
				(unsigned long long)((now - vsince) / 1000000),
				skipped);
		conn_close(v, "stalled");
	}
}

/* Whether c has had nothing in flight and completed no request for
 * idle_ns. */
static bool
conn_idle(struct conn *c, uint64_t idle_ns)
{
	uint64_t now;
	bool idle;

	pthread_mutex_lock(&c->lock);
	/*
	 * Read the clock under the lock: a worker finishing a request sets
	 * last_ns under it, and a clock read before that would be older
	 * than last_ns; the unsigned difference would wrap and a busy
	 * connection would look idle for centuries.
	 */
	now = tl_mono_ns();
	idle = c->inflight == 0 && now > c->last_ns &&
	       now - c->last_ns >= idle_ns;
	pthread_mutex_unlock(&c->lock);
	return idle;
}

/* Timer (loop thread): close connections idle for idle_timeout. */
static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct nfsd_server *s = arg;
	uint64_t idle_ns = s->idle_ms * 1000000;
	struct conn *c, *next;

	for (c = TAILQ_FIRST(&s->conns); c != NULL; c = next) {
		bool idle;

		next = TAILQ_NEXT(c, link);
		if (!conn_idle(c, idle_ns))
			continue;
		/* A call the client sent and the loop has not read yet (a
		 * busy loop) is not idleness: read what is there first.
		 * A reference keeps c while it may close. */
		pthread_mutex_lock(&c->lock);
		c->refs++;
		pthread_mutex_unlock(&c->lock);
		conn_resume(c);
		idle = !c->closed && conn_idle(c, idle_ns);
		conn_unref(c);
		if (idle)
			conn_close(c, "idle");
	}
}

/* The connection to close for a new one at max_connections: the one
 * that sent a request least recently (knfsd closes its oldest too),
 * preferably with nothing in flight and nothing to send (loop). */
static struct conn *
conn_longest_idle(struct nfsd_server *s)
{
	struct conn *c;

	TAILQ_FOREACH_REVERSE(c, &s->conns, conn_list, link)
	{
		bool busy;

		pthread_mutex_lock(&c->lock);
		busy = c->inflight > 0;
		pthread_mutex_unlock(&c->lock);
		if (!busy &&
		    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			return c;
	}
	return TAILQ_LAST(&s->conns, conn_list);
}

/* max_connections reached: make room for a new connection. */
static void
conn_make_room(struct nfsd_server *s, const char *newcomer)
{
	struct conn *v = conn_longest_idle(s);
	unsigned skipped;
	uint64_t idle_ms;

	if (v == NULL)
		return;
	pthread_mutex_lock(&v->lock);
	idle_ms = (tl_mono_ns() - TL_MIN(v->last_ns, tl_mono_ns())) / 1000000;
	pthread_mutex_unlock(&v->lock);
	if (limit_log(&s->conn_log, &skipped))
		tl_notice("rpc",
			  "max_connections (%llu) reached: closing %s, idle "
			  "for %llu ms, for a connection from %s (%u such "
			  "closes not logged before)",
			  (unsigned long long)s->max_conns, v->name,
			  (unsigned long long)idle_ms, newcomer, skipped);
	conn_close(v, "max_connections");
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
	  int salen, void *arg)
{
	struct nfsd_server *s = arg;
	struct conn *c;
	char addr[INET6_ADDRSTRLEN];
	socklen_t llen;
	int one = 1;

	c = tl_calloc(1, sizeof(*c));
	c->srv = s;
	c->refs = 1;
	pthread_mutex_init(&c->lock, NULL);
	memcpy(&c->peer, sa, TL_MIN((size_t)salen, sizeof(c->peer)));
	llen = sizeof(c->local);
	if (getsockname(fd, (struct sockaddr *)&c->local, &llen) != 0)
		c->local.ss_family = 0;
	nfsd_peer_str(&c->peer, addr, sizeof(addr));
	snprintf(c->name, sizeof(c->name), "%s:%u", addr,
		 nfsd_peer_port(&c->peer));
	c->proxy_wait = s->proxy;
	while (s->nconns >= s->max_conns && !TAILQ_EMPTY(&s->conns))
		conn_make_room(s, c->name);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->bev = bufferevent_socket_new(
		s->base, fd,
		BEV_OPT_CLOSE_ON_FREE | BEV_OPT_THREADSAFE |
			BEV_OPT_DEFER_CALLBACKS | BEV_OPT_UNLOCK_CALLBACKS);
	c->resume = event_new(s->base, -1, 0, conn_resume_cb, c);
	c->rd = event_new(s->base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
	c->fd = fd;
	if (c->bev != NULL)
		c->out_cb = evbuffer_add_cb(bufferevent_get_output(c->bev),
					    out_changed, c);
	if (c->bev == NULL || c->resume == NULL || c->rd == NULL ||
	    c->out_cb == NULL) {
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
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, NULL, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, s->out_conn / 2, 0);
	/* the loop writes what workers could not send at once in one go */
	bufferevent_set_max_single_write(c->bev, 4u << 20);
	c->last_ns = tl_mono_ns();
	event_add(c->rd, NULL);
	TAILQ_INSERT_HEAD(&s->conns, c, link);
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
	s->proxy = cfg->proxy_protocol;
	s->mem_limit = cfg->request_memory;
	s->big_limit = s->mem_limit / 4 * BIG_SHARE;
	s->spill_limit = s->mem_limit / 8;
	s->out_conn = TL_MIN(TL_MAX(s->mem_limit / 16, 256u << 10), 32u << 20);
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
	s->stage = tl_malloc(STAGE_SIZE);
	s->mem_wake = event_new(s->base, -1, 0, mem_wake_cb, s);
	s->stall = event_new(s->base, -1, EV_PERSIST, stall_cb, s);
	if (s->mem_wake == NULL || s->stall == NULL) {
		*err = tl_strdup("cannot create the transport's events");
		return -ENOMEM;
	}
	s->lis = evconnlistener_new_bind(s->base, accept_cb, s,
					 LEV_OPT_CLOSE_ON_FREE |
						 LEV_OPT_REUSEABLE,
					 256, (struct sockaddr *)&ss, len);
	if (s->lis == NULL) {
		int e = errno;

		*err = tl_asprintf("cannot listen on %s: %s", listen,
				   strerror(e));
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
	while (!TAILQ_EMPTY(&s->conns))
		conn_close(TAILQ_FIRST(&s->conns), "shutdown");
	/* calls waiting for their tokens: their connections are closed,
	 * so "answering" them only gives back what they hold */
	while (!LIST_EMPTY(&s->delayed)) {
		struct job *j = LIST_FIRST(&s->delayed);

		delayed_unlink(j);
		j->refuse = true;
		worker(j);
	}
}

void
nfsd_rpc_free(struct nfsd_server *s)
{
	if (mem_now(s) != 0)
		tl_err("rpc",
		       "request memory: %llu bytes still counted at "
		       "shutdown",
		       (unsigned long long)mem_now(s));
	if (s->sweep != NULL)
		event_free(s->sweep);
	if (s->stall != NULL)
		event_free(s->stall);
	if (s->mem_wake != NULL)
		event_free(s->mem_wake);
	s->sweep = s->stall = s->mem_wake = NULL;
	free(s->stage);
	s->stage = NULL;
}
