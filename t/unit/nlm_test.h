/*
 * nlm_test.h - the client side of NLM tests: raw NLM v4 and NSM calls
 * (rpcgen's encoders, one record per call on a TCP connection), and a
 * fake client host that the gateway calls back: an rpcbind on port 111
 * that gives the port of its lock manager and status monitor, and that
 * lock manager / status monitor, which record every call (GRANTED,
 * _RES, SM_NOTIFY) and answer as the test says: with a status, or not
 * at all.
 *
 * Port 111 and callbacks to 127.0.0.1 need a network of the test's
 * own: nlt_private_net() moves the process into a new network namespace
 * (root only: the test skips otherwise), where 127.0.0.1 is nobody
 * else's.  Everything the process starts afterwards lives there.
 */
#ifndef T_NLM_TEST_H
#define T_NLM_TEST_H

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rpc/rpc.h>

#include "lib/tl.h"
#include "nfsd/nlm4_prot.h"
#include "nfsd/nsm_prot.h"

#define NLT_PROG_NLM 100021u
#define NLT_PROG_NSM 100024u

/* A new network namespace with its loopback up; false if not allowed. */
static inline bool
nlt_private_net(void)
{
	struct ifreq ifr;
	int fd;

	if (unshare(CLONE_NEWNET) != 0)
		return false;
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) {
		close(fd);
		return false;
	}
	close(fd);
	return true;
}

/* ---- the fake client host ------------------------------------------------- */

struct nlt_call {
	uint32_t prog, vers, proc;
	uint8_t *args; /* the call's arguments (XDR) */
	size_t len;
	char from[INET6_ADDRSTRLEN]; /* who called */
};

#define NLT_CALLS 256
#define NLT_CONNS 64

struct nlt_client {
	int lfd[2]; /* rpcbind (111), the lock manager and monitor */
	uint16_t port;
	int conns[NLT_CONNS];
	struct tl_buf in[NLT_CONNS];
	pthread_t thr;
	int stop_pipe[2];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* under mu: what to answer */
	bool silent;            /* accept calls, answer none */
	bool no_program;        /* rpcbind: nothing registered */
	int32_t granted_status; /* the answer to GRANTED */
	/* under mu: what came */
	struct nlt_call calls[NLT_CALLS];
	int ncalls;
	int pmap_calls;
};

static inline int
nlt_listen(uint16_t port)
{
	struct sockaddr_in a;
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(fd, 64) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static inline void
nlt_reply(int fd, uint32_t xid, const void *res, size_t len)
{
	struct tl_buf b = TL_BUF_INIT;

	tl_buf_append_be32(&b, 0x80000000u | (uint32_t)(24 + len));
	tl_buf_append_be32(&b, xid);
	tl_buf_append_be32(&b, 1); /* REPLY */
	tl_buf_append_be32(&b, 0); /* MSG_ACCEPTED */
	tl_buf_append_be32(&b, 0); /* AUTH_NONE */
	tl_buf_append_be32(&b, 0);
	tl_buf_append_be32(&b, 0); /* SUCCESS */
	tl_buf_append(&b, res, len);
	(void)!write(fd, b.data, b.len);
	tl_buf_free(&b);
}

/* One complete call record rec[0..len) from connection fd. */
static inline void
nlt_handle(struct nlt_client *t, int fd, const uint8_t *rec, size_t len)
{
	uint32_t xid, prog, vers, proc, clen, vlen;
	const uint8_t *args;
	size_t off, alen;
	struct sockaddr_in peer;
	socklen_t pl = sizeof(peer);
	bool silent;

	if (len < 40)
		return;
	xid = tl_get_be32(rec);
	prog = tl_get_be32(rec + 12);
	vers = tl_get_be32(rec + 16);
	proc = tl_get_be32(rec + 20);
	clen = tl_get_be32(rec + 28);
	off = 32 + (clen + 3) / 4 * 4;
	if (off + 8 > len)
		return;
	vlen = tl_get_be32(rec + off + 4);
	off += 8 + (vlen + 3) / 4 * 4;
	if (off > len)
		return;
	args = rec + off;
	alen = len - off;
	pthread_mutex_lock(&t->mu);
	silent = t->silent;
	if (prog == 100000 && proc == 3) {
		uint8_t port[4];
		uint32_t want = alen >= 4 ? tl_get_be32(args) : 0;

		t->pmap_calls++;
		tl_put_be32(port, !t->no_program && (want == NLT_PROG_NLM ||
						     want == NLT_PROG_NSM)
					  ? t->port
					  : 0);
		pthread_mutex_unlock(&t->mu);
		nlt_reply(fd, xid, port, 4);
		return;
	}
	if (t->ncalls < NLT_CALLS) {
		struct nlt_call *c = &t->calls[t->ncalls++];

		c->prog = prog;
		c->vers = vers;
		c->proc = proc;
		c->args = tl_memdup(alen ? args : (const uint8_t *)"", alen);
		c->len = alen;
		getpeername(fd, (struct sockaddr *)&peer, &pl);
		inet_ntop(AF_INET, &peer.sin_addr, c->from, sizeof(c->from));
	}
	pthread_cond_broadcast(&t->cv);
	if (silent) {
		pthread_mutex_unlock(&t->mu);
		return;
	}
	if (prog == NLT_PROG_NLM && proc == NLMPROC4_GRANTED) {
		uint8_t res[1100];
		size_t rl = 0;
		uint32_t ck = alen >= 4 ? tl_get_be32(args) : 0;

		/* nlm4_res: the cookie again, then the status */
		if (ck <= 1024 && 4 + ck <= alen) {
			memcpy(res, args, 4 + (ck + 3) / 4 * 4);
			rl = 4 + (ck + 3) / 4 * 4;
		}
		tl_put_be32(res + rl, (uint32_t)t->granted_status);
		rl += 4;
		pthread_mutex_unlock(&t->mu);
		nlt_reply(fd, xid, res, rl);
		return;
	}
	pthread_mutex_unlock(&t->mu);
	nlt_reply(fd, xid, NULL, 0); /* void results */
}

static inline void
nlt_drop_conn(struct nlt_client *t, int i)
{
	close(t->conns[i]);
	t->conns[i] = -1;
	tl_buf_reset(&t->in[i]);
}

static inline void *
nlt_main(void *arg)
{
	struct nlt_client *t = arg;

	for (;;) {
		struct pollfd p[3 + NLT_CONNS];
		int n = 0, map[NLT_CONNS];

		p[n++] = (struct pollfd){t->stop_pipe[0], POLLIN, 0};
		p[n++] = (struct pollfd){t->lfd[0], POLLIN, 0};
		p[n++] = (struct pollfd){t->lfd[1], POLLIN, 0};
		for (int i = 0; i < NLT_CONNS; i++)
			if (t->conns[i] >= 0) {
				map[n - 3] = i;
				p[n++] =
					(struct pollfd){t->conns[i], POLLIN, 0};
			}
		if (poll(p, (nfds_t)n, -1) < 0)
			continue;
		if (p[0].revents)
			break;
		for (int l = 1; l <= 2; l++) {
			int fd;

			if (!(p[l].revents & POLLIN))
				continue;
			fd = accept(p[l].fd, NULL, NULL);
			for (int i = 0; fd >= 0 && i < NLT_CONNS; i++)
				if (t->conns[i] < 0) {
					t->conns[i] = fd;
					fd = -1;
				}
			if (fd >= 0)
				close(fd);
		}
		for (int k = 3; k < n; k++) {
			int i = map[k - 3];
			uint8_t buf[4096];
			ssize_t r;

			if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(t->conns[i], buf, sizeof(buf));
			if (r <= 0) {
				nlt_drop_conn(t, i);
				continue;
			}
			tl_buf_append(&t->in[i], buf, (size_t)r);
			while (t->in[i].len >= 4) {
				uint32_t mark = tl_get_be32(t->in[i].data);
				size_t fl = mark & 0x7fffffff;

				if (t->in[i].len < 4 + fl)
					break;
				nlt_handle(t, t->conns[i], t->in[i].data + 4,
					   fl);
				memmove(t->in[i].data, t->in[i].data + 4 + fl,
					t->in[i].len - 4 - fl);
				t->in[i].len -= 4 + fl;
			}
		}
	}
	return NULL;
}

/* Listen on 127.0.0.1:111 and on port (the lock manager and monitor). */
static inline bool
nlt_client_start(struct nlt_client *t, uint16_t port)
{
	memset(t, 0, sizeof(*t));
	for (int i = 0; i < NLT_CONNS; i++)
		t->conns[i] = -1;
	t->port = port;
	t->granted_status = NLM4_GRANTED;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	t->lfd[0] = nlt_listen(111);
	t->lfd[1] = nlt_listen(port);
	if (t->lfd[0] < 0 || t->lfd[1] < 0 || pipe(t->stop_pipe) != 0)
		return false;
	pthread_create(&t->thr, NULL, nlt_main, t);
	return true;
}

static inline void
nlt_client_stop(struct nlt_client *t)
{
	(void)!write(t->stop_pipe[1], "x", 1);
	pthread_join(t->thr, NULL);
	for (int i = 0; i < NLT_CONNS; i++)
		if (t->conns[i] >= 0)
			nlt_drop_conn(t, i);
	for (int i = 0; i < NLT_CONNS; i++)
		tl_buf_free(&t->in[i]);
	for (int i = 0; i < t->ncalls; i++)
		free(t->calls[i].args);
	close(t->lfd[0]);
	close(t->lfd[1]);
	close(t->stop_pipe[0]);
	close(t->stop_pipe[1]);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
}

/* Wait until the client received more than `have` calls of prog/proc
 * (stall detector: 120 s); returns the index of the first such call
 * past `have` others, or -1. */
static inline int
nlt_wait_call(struct nlt_client *t, uint32_t prog, uint32_t proc, int have)
{
	struct timespec ts;
	int found = -1;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 120;
	pthread_mutex_lock(&t->mu);
	for (;;) {
		int seen = 0;

		for (int i = 0; i < t->ncalls; i++)
			if (t->calls[i].prog == prog &&
			    t->calls[i].proc == proc && seen++ == have) {
				found = i;
				break;
			}
		if (found >= 0 ||
		    pthread_cond_timedwait(&t->cv, &t->mu, &ts) != 0)
			break;
	}
	pthread_mutex_unlock(&t->mu);
	return found;
}

/* How many calls of prog/proc came. */
static inline int
nlt_count(struct nlt_client *t, uint32_t prog, uint32_t proc)
{
	int n = 0;

	pthread_mutex_lock(&t->mu);
	for (int i = 0; i < t->ncalls; i++)
		n += t->calls[i].prog == prog && t->calls[i].proc == proc;
	pthread_mutex_unlock(&t->mu);
	return n;
}

/* Decode call i's arguments with x into out. */
static inline bool
nlt_args(struct nlt_client *t, int i, xdrproc_t x, void *out)
{
	XDR d;
	bool ok;

	pthread_mutex_lock(&t->mu);
	xdrmem_create(&d, (char *)t->calls[i].args, (u_int)t->calls[i].len,
		      XDR_DECODE);
	ok = x(&d, out);
	xdr_destroy(&d);
	pthread_mutex_unlock(&t->mu);
	return ok;
}

/* ---- building NLM arguments ------------------------------------------------- */

struct nlt_owner {
	const char *host;
	int32_t svid;
	const char *oh;
};

static inline void
nlt_lock_of(nlm4_lock *k, const struct nlt_owner *o, const void *fh,
	    size_t fhlen, uint64_t off, uint64_t len)
{
	memset(k, 0, sizeof(*k));
	k->caller_name.caller_name_val = (char *)o->host;
	k->caller_name.caller_name_len = (u_int)strlen(o->host);
	k->fh.nlm4_netobj_val = (char *)fh;
	k->fh.nlm4_netobj_len = (u_int)fhlen;
	k->oh.nlm4_netobj_val = (char *)o->oh;
	k->oh.nlm4_netobj_len = (u_int)strlen(o->oh);
	k->svid = o->svid;
	k->l_offset = off;
	k->l_len = len;
}

#endif
