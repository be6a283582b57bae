/*
 * rpc-internal.h - the dispatcher (dispatch.c: one RPC record in, one
 * reply out; the exports generation in force) and the duplicate request
 * cache (drc.c), for the transport and the server's life cycle
 * (server-internal.h) above them.
 *
 * Includes nfsd-internal.h (the contract with the handlers) and, for its
 * types, the public nfsd.h, and nothing else of nfsd/ (see the layers
 * there).  Nothing outside nfsd/ and its
 * tests includes this file.
 */
#ifndef NFSD_RPC_INTERNAL_H
#define NFSD_RPC_INTERNAL_H

#include <pthread.h>

#include "nfsd/nfsd-internal.h"
#include "nfsd/nfsd.h"

#define NFSD_RPC_VERS 2u

/*
 * The exports in force are a generation, replaced whole on reload: a
 * call takes a reference to the current one when it starts and drops it
 * when its handler is done, so call->exp and call->rule stay valid while
 * the handler waits for the object store, and a reload never waits for
 * a call (nor a call for a reload: the only lock guards the pointer and
 * is held for a few instructions).
 */
/* The exports in force (never NULL; empty before the first publish),
 * valid until nfsd_exports_put. */
const struct nfsd_exports *nfsd_exports_get(struct nfsd_ctx *ctx);
void nfsd_exports_put(const struct nfsd_exports *e);
/* Make *fresh the exports in force (taken over; *fresh is emptied); the
 * previous generation is freed when its last call puts it.  fresh NULL:
 * none (at shutdown). */
void nfsd_exports_publish(struct nfsd_ctx *ctx, struct nfsd_exports *fresh);

/*
 * Run one RPC record (the call message, record mark removed) from peer.
 * reply receives a complete record-marked reply, or stays empty when the
 * message deserves no answer (not a call, truncated header).
 */
void nfsd_dispatch(struct nfsd_ctx *ctx, const struct sockaddr_storage *peer,
		   const uint8_t *msg, size_t len, struct tl_buf *reply);

/* Bytes sent after a reply's head: READ data, not copied into the reply.
 * data (malloc'd, owned by the receiver) is followed on the wire by
 * (4 - len % 4) % 4 zero bytes; the head's record mark counts both. */
struct nfsd_tail {
	bool files; /* in: READ may lend a file range (sent with sendfile) */
	void *data; /* NULL: none, unless ref lends a file (cache_ref_file) */
	size_t len;
	void *ref; /* non-NULL: data is lent, cache_read_done(ref) ends it */
};

/* nfsd_dispatch, but READ data is handed over as *tail instead of being
 * appended to reply.  msg must stay valid and unchanged until it returns
 * (WRITE data is used in place). */
void nfsd_dispatch_tail(struct nfsd_ctx *ctx,
			const struct sockaddr_storage *peer, const uint8_t *msg,
			size_t len, struct tl_buf *reply,
			struct nfsd_tail *tail);
/* nfsd_dispatch_tail, knowing the local address the peer reached
 * (call->local, which NLM records for its callbacks; may be NULL). */
void nfsd_dispatch_from(struct nfsd_ctx *ctx,
			const struct sockaddr_storage *peer,
			const struct sockaddr_storage *local,
			const uint8_t *msg, size_t len, struct tl_buf *reply,
			struct nfsd_tail *tail);
void nfsd_tail_free(struct nfsd_tail *t);

/* True for a call cheap enough to run on the event loop's thread rather
 * than be handed to a worker (NFSv3 NULL, GETATTR, LOOKUP, ACCESS): it
 * reads metadata and never waits for a commit or the object store. */
bool nfsd_call_is_quick(const uint8_t *msg, size_t len);

/* An upper bound of the size of the reply to the call msg (a complete
 * record), for the transport's request memory: READ, READDIR and
 * READDIRPLUS by the count they ask for, as clipped by the handlers;
 * any other call a few KiB (a longer reply, a MOUNT EXPORT of many
 * exports, is counted once it is queued). */
size_t nfsd_call_reply_max(const uint8_t *msg, size_t len);

/* Answer the NFSv3 call msg with status st alone (a zeroed result: no
 * attributes), as the dispatcher answers a failed check: the limiter's
 * NFS3ERR_JUKEBOX.  reply stays empty for what is no NFSv3 call. */
void nfsd_dispatch_refuse(const uint8_t *msg, size_t len, nfsstat3 st,
			  struct tl_buf *reply);

/* ---- metadata rate limits (limit.c; the settings are nfsd.h's) ---- */

struct nfsd_limits;
struct nfsd_limits *nfsd_limits_create(const struct nfsd_limit_conf *conf,
				       size_t max_clients);
void nfsd_limits_free(struct nfsd_limits *l);
void nfsd_limits_set(struct nfsd_limits *l, const struct nfsd_limit_conf *c);
void nfsd_limits_get(struct nfsd_limits *l, struct nfsd_limit_conf *c);
/* NFSD_LIMIT_READ or _WRITE for an NFSv3 procedure; -1: not limited. */
int nfsd_limit_class(uint32_t proc);
enum { NFSD_LIMIT_PASS, NFSD_LIMIT_DELAY, NFSD_LIMIT_REFUSE };
/* The verdict on the call msg (a whole record) from peer at now_ns:
 * PASS, DELAY (run it *delay_ns from now: its tokens are taken) or
 * REFUSE (answer NFS3ERR_JUKEBOX).  Loop thread. */
int nfsd_limit_admit(struct nfsd_limits *l, struct nfsd_ctx *ctx,
		     const struct sockaddr_storage *peer, const uint8_t *msg,
		     size_t len, uint64_t now_ns, uint64_t *delay_ns);
/* fn for every export that had a limited call, then with zeros for
 * those of cur (may be NULL) that had none. */
void nfsd_limits_stats(struct nfsd_limits *l, const struct nfsd_exports *cur,
		       void (*fn)(void *arg, const struct nfsd_limit_stats *st),
		       void *arg);
/* Entries of the client table, and how many were reused for another
 * address. */
size_t nfsd_limits_clients(struct nfsd_limits *l, uint64_t *evicted);

/* ---- duplicate request cache (drc.c) for NFSD_PF_DRC procedures ---- */

struct nfsd_drc_key {
	uint32_t family;
	uint8_t addr[16]; /* client address */
	uint32_t xid, prog, vers, proc;
	uint32_t port; /* and port: a call from another port is another's */
	uint64_t csum; /* of credentials and arguments; last member */
};

struct nfsd_drc;
struct nfsd_drc_stats; /* nfsd.h */

/* A cache of at most max_entries entries and max_bytes bytes. */
struct nfsd_drc *nfsd_drc_create(size_t max_entries, size_t max_bytes);
void nfsd_drc_free(struct nfsd_drc *d);
/* body: the call message after the procedure number (credentials,
 * verifier, arguments). */
void nfsd_drc_make_key(const struct sockaddr_storage *peer, uint32_t xid,
		       uint32_t prog, uint32_t vers, uint32_t proc,
		       const void *body, size_t len, struct nfsd_drc_key *k);

enum { NFSD_DRC_NEW, NFSD_DRC_RUNNING, NFSD_DRC_REPLAY };
/* NEW: run the call, then nfsd_drc_end(k, reply).  RUNNING: the same
 * call is in progress; send nothing.  REPLAY: reply holds the first
 * run's record-marked reply; send it. */
int nfsd_drc_begin(struct nfsd_drc *d, const struct nfsd_drc_key *k,
		   struct tl_buf *reply);
void nfsd_drc_end(struct nfsd_drc *d, const struct nfsd_drc_key *k,
		  const struct tl_buf *reply);
void nfsd_drc_stats(struct nfsd_drc *d, struct nfsd_drc_stats *out);

#endif /* NFSD_RPC_INTERNAL_H */
