/*
 * rpc-internal.h - what the transport pieces of nfsd/ share (rpc.c,
 * dispatch.c, fh.c, mount3.c, main.c) beyond the nfsd-internal.h
 * contract with the NFS handlers.
 */
#ifndef NFSD_RPC_INTERNAL_H
#define NFSD_RPC_INTERNAL_H

#include <pthread.h>

#include "nfsd/nfsd-internal.h"
#include "nfsd/nfsd.h"

#define NFSD_PROG_NFS	100003u
#define NFSD_PROG_MOUNT 100005u
#define NFSD_RPC_VERS	2u

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

/* How often the control thread resolves the exports' host names again. */
#define NFSD_HOST_REFRESH_MS 60000
/* Resolve the host names of the exports in force again and publish them
 * if an address changed (what the control thread does every
 * NFSD_HOST_REFRESH_MS; may wait for the resolver).  Any thread but the
 * event loop. */
void nfsd_server_refresh_hosts(struct nfsd_server *s);

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

/* Attributes of ino when its generation is gen and it lies inside exp,
 * cache overlay applied; -ESTALE if the inode is gone, was reused or
 * lies outside the export.  (fh.c) */
int nfsd_fh_getattr(struct nfsd_ctx *ctx, const struct nfsd_export *exp,
		    uint64_t ino, uint32_t gen, struct meta_attr *attr);

/* Source port of peer (host order), 0 for unknown families. */
unsigned nfsd_peer_port(const struct sockaddr_storage *peer);
/* Numeric address of peer into buf ("10.0.0.1", "::1"). */
void nfsd_peer_str(const struct sockaddr_storage *peer, char *buf, size_t len);

/* Resolve every export's root with meta_resolve; exports whose path
 * does not exist (or is not a directory) are logged and dropped.
 * m NULL (transport tests): roots stay 0. */
void nfsd_exports_resolve(struct meta *m, struct nfsd_exports *e);

/* ---- duplicate request cache (drc.c) for NFSD_PF_DRC procedures ---- */

struct nfsd_drc_key {
	uint32_t family;
	uint8_t addr[16]; /* client address */
	uint32_t xid, prog, vers, proc;
	uint32_t port; /* and port: a call from another port is another's */
	uint64_t csum; /* of credentials and arguments; last member */
};

struct nfsd_drc;

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

/* ---- the MOUNT list for DUMP (mount3.c) ----
 *
 * One entry per client address and export path, renewed by each MNT,
 * dropped by UMNT/UMNTALL, forgotten NFSD_MOUNTS_TTL_NS after the last
 * MNT; beyond NFSD_MOUNTS_MAX entries the least recently mounted goes.
 * now_ns: tl_mono_ns() (tests pass other times). */
#define NFSD_MOUNTS_MAX	   4096
#define NFSD_MOUNTS_TTL_NS (7ULL * 86400 * 1000000000)
void nfsd_mounts_add(const char *host, const char *dir, uint64_t now_ns);
/* Remove host's entry for dir (all of host's when dir is NULL). */
void nfsd_mounts_del(const char *host, const char *dir);
/* Entries left once those expired at now_ns are dropped. */
size_t nfsd_mounts_count(uint64_t now_ns);
/* Forget the whole list (at shutdown). */
void nfsd_mnt3_reset(void);

#endif /* NFSD_RPC_INTERNAL_H */
