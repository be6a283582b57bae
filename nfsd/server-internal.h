/*
 * server-internal.h - the server object shared by the transport (rpc.c:
 * connections, records, replies, the limits on what clients hold) and
 * the server's life cycle (server.c: create, run, signals, exports
 * reloads and the control thread, rpcbind, shutdown).
 *
 * Nothing outside rpc.c and server.c includes this file but the
 * transport's unit test, which runs the idle sweep by hand
 * (t/unit/nfsd_rpc_test.c).
 */
#ifndef NFSD_SERVER_INTERNAL_H
#define NFSD_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "nfsd/nfsd.h"
#include "nfsd/rpc-internal.h"

struct conn;
struct job;

/* How often the control thread resolves the exports' host names again
 * (nfsd_server_refresh_hosts). */
#define NFSD_HOST_REFRESH_MS 60000

/* Rate of the lines saying a limit was reached (rpc.c). */
struct nfsd_limit_log {
	uint64_t next_ns;
	unsigned skipped;
};

struct nfsd_server {
	struct nfsd_ctx ctx;
	struct event_base *base;
	struct evconnlistener *lis;
	struct tl_pool *pool;
	struct event *sig[3];
	TAILQ_HEAD(conn_list, conn) conns;
	size_t nconns;
	unsigned port;
	int family; /* of the listening socket */
	bool registered;
	char *exports_file; /* NULL: built-in default; under reload_lock */
	void (*on_hup)(struct nfsd_server *, void *);
	void *on_hup_arg;
	pthread_mutex_t reload_lock; /* one reload or host refresh at once */
	/* The control thread runs what may block for long, off the loop:
	 * SIGHUP's reload and the periodic resolution of host names. */
	pthread_t ctl;
	bool ctl_started;
	pthread_mutex_t ctl_lock;
	pthread_cond_t ctl_cond; /* CLOCK_MONOTONIC */
	bool ctl_stop, ctl_hup;  /* under ctl_lock */
	uint64_t max_record, max_inflight, max_conns, idle_ms;
	bool proxy;          /* proxy_protocol: a PROXY header first */
	struct event *sweep; /* closes idle connections */
	uint8_t *stage;      /* read, being parsed (loop) */
	/* request memory (rpc.c): what clients make the transport hold */
	_Atomic uint64_t mem_used;
	uint64_t mem_limit;   /* request_memory */
	uint64_t big_limit;   /* fragments over SMALL_FRAG wait beyond it */
	uint64_t spill_limit; /* read but unparsed, all connections */
	_Atomic uint64_t spill_used;
	uint64_t out_conn;          /* replies queued on one connection */
	TAILQ_HEAD(, conn) waiters; /* wait for memory (loop) */
	_Atomic unsigned nwaiters;
	struct event *mem_wake; /* memory released (any thread) */
	struct event *stall;    /* closes stalled holders while some wait */
	struct nfsd_limit_log stall_log, conn_log, proxy_log; /* (loop) */
	/* metadata rate limits (limit.c): calls waiting for their tokens
	 * on timers of the loop (rpc.c) */
	struct nfsd_limits *limits;
	LIST_HEAD(, job) delayed; /* (loop) */
	/* NSM over UDP on the NFS port (udp.c) */
	int udp_fd;           /* -1: none */
	struct event *udp_ev; /* readable (loop) */
	uint8_t *udp_buf;
};

/* ---- rpc.c ---- */

/* The transport's settings and state from cfg. */
void nfsd_rpc_init(struct nfsd_server *s, const struct nfsd_config *cfg);
/* Listen on listen (s->base exists) and arm the idle sweep; sets
 * s->port and s->family. */
int nfsd_rpc_listen(struct nfsd_server *s, const char *listen, char **err);
/* Stop listening and close every connection (the loop is not running). */
void nfsd_rpc_close(struct nfsd_server *s);
/* Free the rest, once no request is in flight (the pool is gone). */
void nfsd_rpc_free(struct nfsd_server *s);

/* ---- udp.c ---- */

/* Serve NSM over UDP on listen's address and s->port (the TCP
 * listener's). */
int nfsd_udp_listen(struct nfsd_server *s, const char *listen, char **err);
void nfsd_udp_close(struct nfsd_server *s);

#endif /* NFSD_SERVER_INTERNAL_H */
