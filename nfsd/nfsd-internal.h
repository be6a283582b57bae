/*
 * nfsd-internal.h - the contract inside nfsd/ between the dispatcher
 * (dispatch.c, rpc-internal.h), the security pieces (exports.c, fh.c)
 * and the protocol handlers (nfs3*.c, mount3.c).
 *
 * A request's life: the transport (libevent) reads one RPC record,
 * a worker thread decodes the call header and credentials, finds the
 * procedure in a table, decodes the arguments with the procedure's XDR
 * routine, and, for procedures flagged NFSD_PF_FH, verifies the file handle
 * that every NFSv3 argument struct begins with: MAC, export, client access
 * (exports rules), squash, read-only exports for NFSD_PF_MODIFIES, and the
 * inode's generation (fetching its attributes into call->attr).  Only then
 * is the handler called; it fills the result, whose first member is always
 * the nfsstat3 status.  The dispatcher encodes the reply, sends it and
 * releases arguments and results with xdr_free, so handlers allocate
 * result memory with tl_malloc & co and never free it themselves.
 *
 * The files of nfsd/ form layers, top to bottom; a file includes the
 * headers of its own layer and of layers below, never one above, so no
 * include or call goes back up:
 *
 *   main.c metrics.c        metrics-internal.h   the admin endpoint
 *   billing.c               (nfsd.h)             billing lines, figures
 *   server.c rpc.c          server-internal.h    life cycle, transport
 *   dispatch.c limit.c drc.c  rpc-internal.h     dispatcher, rate
 *                                                limits, DRC
 *   counters.c              counters-internal.h  request-path counters
 *   nfs3*.c                 nfs3-internal.h      NFSv3 handlers
 *   nlm4.c lockd.c callback.c  nlm-internal.h    NLM, NSM, locks
 *   exports.c fh.c mount3.c nfsd-internal.h      this contract
 *   addr.c                  addr-internal.h      socket addresses
 *   xdr_bound.c             xdr-bound.h          bounded XDR decoding
 *
 * The public nfsd.h includes none of them; below the top only its types
 * and its configuration calls (config.c, a leaf) are used.  Nothing
 * outside nfsd/ and its tests includes this file.
 */
#ifndef NFSD_INTERNAL_H
#define NFSD_INTERNAL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <rpc/rpc.h>

#include "cache/cache.h"
#include "lib/tl.h"
#include "meta/meta.h"
#include "nfsd/nfs3_prot.h"

/* ---- exports (exports.c) ---------------------------------------------------
 *
 * exports(5) syntax: one export per line, "path client(opts) client(opts)",
 * '#' comments, '\' line continuation.  Clients: "*", a host name
 * (resolved when loaded and refreshed, never while matching) or IP
 * address, a CIDR (10.0.0.0/8) ; first match wins.  Options: rw, ro,
 * root_squash (default), no_root_squash, all_squash, anonuid=N, anongid=N,
 * secure (default: source port < 1024), insecure, fsid=N (export id in file
 * handles; default: a hash of the path), meta_read_rate=N and
 * meta_write_rate=N (the rule's clients' metadata rate limits).
 */

enum nfsd_squash {
	NFSD_SQUASH_ROOT = 0,
	NFSD_SQUASH_NONE,
	NFSD_SQUASH_ALL,
};

/* An address of a host-name rule (IPv4-mapped IPv6 stored as IPv4). */
struct nfsd_addr {
	int family;       /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* 4 or 16 bytes, the rest zero */
};

struct nfsd_client_rule {
	char *pattern;           /* as written, for messages and EXPORT */
	int family;              /* AF_INET / AF_INET6, 0 for "*" or host */
	uint8_t addr[16];        /* network address */
	unsigned prefix;         /* CIDR prefix length */
	char *host;              /* host name, or NULL */
	struct nfsd_addr *addrs; /* its addresses at the last resolution */
	size_t naddrs;           /* (nfsd_exports_resolve_hosts) */
	bool rw;
	enum nfsd_squash squash;
	uint32_t anonuid, anongid;
	bool secure;
	bool async; /* metadata commits not waited for */
	/* meta_read_rate=N, meta_write_rate=N: the client metadata rate
	 * limit of the clients this rule admits, instead of tessera.conf's
	 * (limit.c; index NFSD_LIMIT_READ, _WRITE of nfsd.h) */
	bool meta_rate_set[2];
	uint64_t meta_rate[2];
};

struct nfsd_export {
	uint32_t id;       /* export id in file handles */
	char *path;        /* absolute path inside the volume */
	uint64_t root_ino; /* resolved when the server starts */
	struct nfsd_client_rule *rules;
	size_t nrules;
};

struct nfsd_exports {
	struct nfsd_export *v;
	size_t n;
	bool meta_rates; /* some rule sets meta_read_rate / meta_write_rate */
};

/* Parse text (the contents of an exports file); errors name the line.
 * Caller frees with nfsd_exports_free. */
int nfsd_exports_parse(const char *text, const char *fname,
		       struct nfsd_exports *out, char **err);
/* The default when no exports file is given: "/" rw, no_root_squash,
 * insecure, to 127.0.0.1 (and ::1) only. */
void nfsd_exports_default(struct nfsd_exports *out);
void nfsd_exports_free(struct nfsd_exports *e);
/* Resolve every export's root with meta_resolve; exports whose path
 * does not exist (or is not a directory) are logged and dropped.
 * m NULL (transport tests): roots stay 0. */
void nfsd_exports_resolve(struct meta *m, struct nfsd_exports *e);
/* Resolve the host names of e's rules (getaddrinfo: may wait for the
 * resolver's timeout, so never on the event loop or a request's path).
 * A name that does not resolve now keeps the addresses the same rule
 * had in prev (may be NULL); one never resolved matches no client.
 * Returns how many rules' addresses differ from prev's. */
size_t nfsd_exports_resolve_hosts(struct nfsd_exports *e,
				  const struct nfsd_exports *prev);
bool nfsd_exports_have_hosts(const struct nfsd_exports *e);
/* A deep copy of src into dst (free with nfsd_exports_free). */
void nfsd_exports_copy(const struct nfsd_exports *src,
		       struct nfsd_exports *dst);
/* First rule of exp matching the peer address, NULL if none; host-name
 * rules match the addresses of their last resolution (no lookup). */
const struct nfsd_client_rule *
nfsd_export_match(const struct nfsd_export *exp,
		  const struct sockaddr_storage *peer);
/* Append "pattern(rw|ro,squash,anonuid=N,anongid=N,secure|insecure,
 * sync|async)":
 * every option in effect, defaults included (for the log). */
struct tl_buf;
void nfsd_rule_format(const struct nfsd_client_rule *r, struct tl_buf *out);
struct nfsd_export *nfsd_export_by_id(const struct nfsd_exports *e,
				      uint32_t id);
struct nfsd_export *nfsd_export_by_path(const struct nfsd_exports *e,
					const char *path);

/* ---- file handles (fh.c) ---------------------------------------------------
 *
 * Layout (NFSD_FH_SIZE bytes, all big-endian):
 *   0  version (1)
 *   1  volume id: the first 8 bytes of the volume uuid
 *   9  export id (4)
 *  13  inode (8)
 *  21  generation (4)
 *  25  MAC: the first 16 bytes of HMAC-SHA256(volume secret, bytes 0..24)
 * Stable across restarts and across gateways of one volume; any change to
 * a byte makes the MAC fail.
 */
#define NFSD_FH_VERSION 1
#define NFSD_FH_SIZE    41

struct nfsd_fh {
	uint32_t export_id;
	uint64_t ino;
	uint32_t gen;
};

void nfsd_fh_encode(const struct meta_settings *vol, const struct nfsd_fh *fh,
		    uint8_t out[NFSD_FH_SIZE]);
/* -EBADMSG for a handle that is too short or long, of another version,
 * volume, or whose MAC fails (-> NFS3ERR_BADHANDLE). */
int nfsd_fh_decode(const struct meta_settings *vol, const void *buf, size_t len,
		   struct nfsd_fh *out);

/* ---- the server and a call -------------------------------------------------- */

struct nfsd_exports_gen; /* a reference-counted nfsd_exports, dispatch.c */
struct nfsd_drc;         /* duplicate request cache, drc.c */
struct nfsd_nlm;         /* the lock manager, lockd.c (nlm-internal.h) */

struct nfsd_ctx {
	struct meta *meta;
	struct cache *cache;
	const struct meta_settings *vol;
	struct nfsd_exports_gen *exports; /* in force: nfsd_exports_get */
	uint8_t write_verf[8];            /* random per process start */
	uint64_t start_ns;
	struct nfsd_drc *drc; /* NULL: no duplicate request cache */
	struct nfsd_nlm *nlm; /* NULL: NLM and NSM not served */
};

struct nfsd_call {
	struct nfsd_ctx *ctx;
	uint32_t xid;
	uint32_t prog, vers, proc;
	struct sockaddr_storage peer;
	struct sockaddr_storage local;      /* the address the peer reached;
					  family 0 when unknown */
	const struct nfsd_exports *exports; /* held for the whole call */
	uint32_t flavor;                    /* AUTH_NONE / AUTH_SYS */
	struct meta_cred cred;         /* after the export's squash rules */
	const struct nfsd_export *exp; /* set for NFSD_PF_FH procedures;
					  points into exports */
	const struct nfsd_client_rule *rule;
	bool rdonly;           /* export is read-only for this client */
	uint64_t ino;          /* inode of the first file handle */
	struct meta_attr attr; /* its attributes, fetched at dispatch */
	/* READ may answer with bytes of a cache block (cache_read_ref):
	 * set by the dispatcher, which hands them on as the reply's tail;
	 * read_ref is what the handler borrowed.  read_files: or with a
	 * range of an object file (the sender can sendfile it). */
	bool read_lend;
	bool read_files;
	void *read_ref;
	/* procedures with fh_of: how their handle fared in the checks
	 * NFSD_PF_FH procedures get (NFS3_OK: exp, rule, cred, rdonly, ino
	 * and attr are set); the handler answers a failure itself. */
	nfsstat3 fh_status;
	/* NLM procedures: the nlm4_stats answered (for the metrics; the
	 * dispatcher starts it at -1, none) */
	int32_t nlm_status;
};

/* The RPC programs served (version 3 of each; NLM 4, NSM 1). */
#define NFSD_PROG_NFS   100003u
#define NFSD_PROG_MOUNT 100005u
#define NFSD_PROG_NLM   100021u
#define NFSD_PROG_NSM   100024u

/* Procedure table entry. */
#define NFSD_PF_FH       (1u << 0) /* args begin with a file handle */
#define NFSD_PF_MODIFIES (1u << 1) /* refused with ROFS on ro exports */
#define NFSD_PF_DRC      (1u << 2) /* non-idempotent: duplicate cache */

struct nfsd_proc {
	const char *name;
	xdrproc_t xdr_args;
	size_t args_size;
	xdrproc_t xdr_res;
	size_t res_size;
	void (*handler)(struct nfsd_call *c, void *args, void *res);
	unsigned flags;
	/* Arguments that hold a file handle elsewhere than first (NLM):
	 * fill fh with it (borrowed from args); the dispatcher checks it
	 * as NFSD_PF_FH's and leaves the verdict in call->fh_status. */
	void (*fh_of)(const void *args, nfs_fh3 *fh);
};

extern const struct nfsd_proc nfsd_nfs3_procs[];
extern const size_t nfsd_nfs3_nprocs;
extern const struct nfsd_proc nfsd_mnt3_procs[];
extern const size_t nfsd_mnt3_nprocs;
extern const struct nfsd_proc nfsd_nlm4_procs[]; /* nlm4.c */
extern const size_t nfsd_nlm4_nprocs;
extern const struct nfsd_proc nfsd_nsm_procs[];
extern const size_t nfsd_nsm_nprocs;

/* The one translation from Tessera's errors (a negative errno, or one
 * of lib/tl.h's own codes, negated) to nfsstat3. */
nfsstat3 nfsd_errno_to_nfs3(int err);

/* Fill out with a handle for ino in call's export (memory: tl_malloc,
 * released by xdr_free of the result). */
void nfsd_fh_make(struct nfsd_call *c, uint64_t ino, uint32_t gen,
		  nfs_fh3 *out);
/* Verify a further handle argument (RENAME/LINK target directory): MAC,
 * same export as the call, generation.  Returns 0 or a negative errno for
 * nfsd_errno_to_nfs3 (-EBADMSG -> BADHANDLE, -ESTALE -> STALE, -EXDEV ->
 * XDEV across exports); attr (may be NULL) receives the attributes. */
int nfsd_fh_resolve(struct nfsd_call *c, const nfs_fh3 *fh, uint64_t *ino,
		    struct meta_attr *attr);
/* The attributes of ino as a handle of it in the call's export would
 * get them: 0, or -ESTALE when it is gone or lies outside the export
 * (what ".." answers are checked with). */
int nfsd_fh_inside(struct nfsd_call *c, uint64_t ino, struct meta_attr *attr);
/* Attributes of ino when its generation is gen and it lies inside exp,
 * cache overlay applied; -ESTALE if the inode is gone, was reused or
 * lies outside the export (the dispatcher's check of the first
 * handle). */
int nfsd_fh_getattr(struct nfsd_ctx *ctx, const struct nfsd_export *exp,
		    uint64_t ino, uint32_t gen, struct meta_attr *attr);

/* ---- the MOUNT list for DUMP (mount3.c) ----
 *
 * One entry per client address and export path, renewed by each MNT,
 * dropped by UMNT/UMNTALL, forgotten NFSD_MOUNTS_TTL_NS after the last
 * MNT; beyond NFSD_MOUNTS_MAX entries the least recently mounted goes.
 * now_ns: tl_mono_ns() (tests pass other times). */
#define NFSD_MOUNTS_MAX    4096
#define NFSD_MOUNTS_TTL_NS (7ULL * 86400 * 1000000000)
void nfsd_mounts_add(const char *host, const char *dir, uint64_t now_ns);
/* Remove host's entry for dir (all of host's when dir is NULL). */
void nfsd_mounts_del(const char *host, const char *dir);
/* Entries left once those expired at now_ns are dropped. */
size_t nfsd_mounts_count(uint64_t now_ns);
/* Forget the whole list (at shutdown). */
void nfsd_mnt3_reset(void);

#endif /* NFSD_INTERNAL_H */
