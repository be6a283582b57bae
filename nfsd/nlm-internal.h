/*
 * nlm-internal.h - NFS locking inside nfsd/: the lock manager
 * (lockd.c), the RPC calls it makes to clients (callback.c), for the
 * NLM v4 and NSM procedures (nlm4.c) and the server's life cycle.
 *
 * Where things live.  Granted locks are records in the volume's metadata
 * (meta.h, "NFS locks"): every gateway of the volume grants from the
 * same table, and a lock outlives the gateway that granted it.  What
 * only one gateway knows is here, in memory and bounded: the blocked
 * requests it answered NLM4_BLOCKED (waiters), the GRANTED callbacks it
 * has yet to deliver, and whether it is in its grace period.
 *
 * Threads.  Handlers run on the server's workers and call the metadata
 * themselves.  The lock manager's thread retries waiters (when a release
 * happens here, and every lock_poll while any wait, when the volume's
 * release counter says one happened on another gateway), settles the
 * grace of adopted clients, watches for gateways that went away and
 * adopts their clients, and tidies.  Callbacks run on their own thread
 * with its own event loop (callback.c), never on the server's loop, and
 * report back through the lock manager's queue.
 *
 * Nothing outside nfsd/ includes this file; it sits with nfs3-internal.h
 * in nfsd-internal.h's layers (below the dispatcher, above addresses).
 */
#ifndef NFSD_NLM_INTERNAL_H
#define NFSD_NLM_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/tl.h"
#include "meta/meta.h"
#include "nfsd/nfsd.h"

/* ---- RPC calls to clients (callback.c) -------------------------------------
 *
 * One call: find the program's TCP port through the client's rpcbind
 * (port 111, PMAP GETPORT; answers are kept a minute), connect from the
 * given local address (the one the client reached us at: clients check
 * where GRANTED and SM_NOTIFY come from), send the call (AUTH_SYS as root
 * of this host) and read the reply.  Every step has a timeout; a failed
 * attempt is tried again after 1, 2, 4... seconds (at most 16) until
 * tries are spent.  At most NFSD_CB_PARALLEL calls are connected at
 * once and max_calls queued or running: a client that never answers
 * holds one call's memory until its tries are spent.
 */
#define NFSD_CB_PARALLEL    32
#define NFSD_CB_RPCBIND     111
#define NFSD_CB_BACKOFF_MAX 16000 /* ms between two attempts */

struct nfsd_cb;

struct nfsd_cb_call {
	struct sockaddr_storage to;   /* the client (its port is ignored) */
	struct sockaddr_storage from; /* send from; family 0: any */
	uint16_t rpcbind_port;        /* 0: NFSD_CB_RPCBIND */
	uint32_t prog, vers, proc;
	struct tl_buf args;  /* XDR of the arguments; the call owns it */
	unsigned tries;      /* attempts, at least 1 */
	unsigned timeout_ms; /* per step of an attempt (0: 5 s) */
	unsigned backoff_ms; /* before the second attempt, doubling
				(0: 1 s) */
	/* The outcome, on the callback thread (be quick: hand it on).  rc 0:
	 * the call was accepted and res (len bytes, borrowed for the call)
	 * is its result; -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH...: the
	 * last attempt's failure; -ENOENT: the program is not registered
	 * there; -EPROTO: the reply was not a successful one; -ECANCELED:
	 * shutdown. */
	void (*done)(void *arg, int rc, const uint8_t *res, size_t len);
	void *arg;
};

/* A callback client with its thread; max_calls bounds what is queued
 * and running. */
int nfsd_cb_create(unsigned max_calls, struct nfsd_cb **out);
/* Queue call (copied; its args are taken over, done is called exactly
 * once), or -ENOSPC when max_calls are queued or running (args freed,
 * done not called). */
int nfsd_cb_submit(struct nfsd_cb *cb, struct nfsd_cb_call *call);
/* Calls queued or running. */
unsigned nfsd_cb_pending(struct nfsd_cb *cb);
/* Stop the thread; calls not finished are done with -ECANCELED. */
void nfsd_cb_free(struct nfsd_cb *cb);

/* ---- the lock manager (lockd.c) -------------------------------------------- */

struct nfsd_nlm_opts {
	uint64_t grace_ms;         /* lock_grace */
	uint64_t poll_ms;          /* lock_poll */
	uint64_t max_locks;        /* all clients; 0: none */
	uint64_t max_locks_client; /* one client */
	uint64_t max_waiters;      /* blocked requests held in memory */
	uint64_t cb_window_ms;     /* lock_callback_window */
};

struct nfsd_nlm;

/* A lock manager over m (borrowed).  It serves nothing until started. */
int nfsd_nlm_create(struct meta *m, const struct nfsd_nlm_opts *o,
		    struct nfsd_nlm **out);
/* Begin with gateway session (meta_session_*; 0: none, in tests): take
 * a new NSM state, adopt the clients of gateways that are gone (this
 * one's earlier runs included: sessions of this host and address),
 * notify them, and keep the grace period if any held locks.  Starts the
 * thread. */
int nfsd_nlm_start(struct nfsd_nlm *l, uint64_t session);
/* Stop the thread and the callbacks; locks stay in the metadata. */
void nfsd_nlm_free(struct nfsd_nlm *l);

/* Handlers' side. */
bool nfsd_nlm_ready(struct nfsd_nlm *l);
/* Only reclaims are granted (this gateway restarted and its clients
 * have not all reclaimed yet, or lock_grace has not passed). */
bool nfsd_nlm_in_grace(struct nfsd_nlm *l);
int32_t nfsd_nlm_nsm_state(struct nfsd_nlm *l);
/* Where a request that takes a lock or share comes from (the addresses
 * peer called from and reached, this gateway's session, the client's
 * NSM state) and the bounds on what a client and the volume hold:
 * nfsd_nlm_where fills w and q (q->where points into w). */
struct nfsd_nlm_where {
	char addr[META_LOCK_ADDR_MAX], local[META_LOCK_ADDR_MAX];
	struct meta_lock_where w;
};
void nfsd_nlm_where(const struct nfsd_nlm *l,
		    const struct sockaddr_storage *peer,
		    const struct sockaddr_storage *local, int32_t state,
		    struct nfsd_nlm_where *w, struct meta_lock_req *q);
struct meta *nfsd_nlm_meta(struct nfsd_nlm *l);

/* A blocked request, as the LOCK that was answered NLM4_BLOCKED said it
 * (the GRANTED callback repeats it) and where it came from. */
struct nfsd_nlm_wait {
	uint64_t ino;
	const char *client;
	size_t client_len;
	int32_t svid;
	const void *oh;
	size_t oh_len;
	uint64_t l_offset, l_len; /* as sent */
	uint64_t start, end;      /* the range */
	bool exclusive;
	int32_t state;
	const void *cookie;
	size_t cookie_len;
	const void *fh;
	size_t fh_len;
	struct sockaddr_storage peer, local;
};
/* Queue w (or refresh the same request already queued); the manager
 * tries it whenever a range may have come free and calls the client
 * back with GRANTED once it holds the lock.  -ENOSPC: max_waiters, or
 * the client's share of them, are queued. */
int nfsd_nlm_wait(struct nfsd_nlm *l, const struct nfsd_nlm_wait *w);
/* CANCEL: forget the matching blocked request, or release the lock
 * granted to it that the client has not confirmed.  0 when one was
 * found, -ENOENT. */
int nfsd_nlm_cancel(struct nfsd_nlm *l, uint64_t ino,
		    const struct meta_lock_owner *o, uint64_t start,
		    uint64_t end, bool exclusive);
/* The owner asked for a range it holds: a GRANTED callback for it in
 * flight is confirmed (its failure no longer releases the lock), and
 * its blocked requests for that range are done. */
void nfsd_nlm_holds(struct nfsd_nlm *l, uint64_t ino,
		    const struct meta_lock_owner *o, uint64_t start,
		    uint64_t end);
/* The owner unlocked [start, end): grants of it in flight are over. */
void nfsd_nlm_unlocked(struct nfsd_nlm *l, uint64_t ino,
		       const struct meta_lock_owner *o, uint64_t start,
		       uint64_t end);
/* Something of ino was released: its waiters are tried at once. */
void nfsd_nlm_released(struct nfsd_nlm *l, uint64_t ino);
/* FREE_ALL (state < 0) or SM_NOTIFY (a restart into state) of client
 * name, from address from: its locks are dropped and its waiters
 * forgotten by the manager's thread. */
void nfsd_nlm_client_gone(struct nfsd_nlm *l, const char *name, size_t len,
			  int64_t state, const struct sockaddr_storage *from);
/* The result of a _MSG call, sent as the matching _RES call to the
 * client's NLM service (res: its XDR, taken over); dropped when the
 * callback queue is full (the client sends its _MSG again). */
void nfsd_nlm_reply(struct nfsd_nlm *l, const struct sockaddr_storage *peer,
		    const struct sockaddr_storage *local, uint32_t proc,
		    struct tl_buf *res);

/* Figures for the metrics (nfsd.h; all but locks). */
void nfsd_nlm_stats(struct nfsd_nlm *l, struct nfsd_lock_stats *out);

#endif /* NFSD_NLM_INTERNAL_H */
