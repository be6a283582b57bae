/*
 * dispatch.c - from one RPC call message to one reply.
 *
 * The call header (RFC 5531) is decoded by hand with xdr_* primitives so
 * every way a call can be refused is visible here: RPC version (only 2:
 * RPC_MISMATCH), program (PROG_UNAVAIL), version (PROG_MISMATCH with the
 * range served), procedure (PROC_UNAVAIL), arguments that do not decode
 * (GARBAGE_ARGS), credentials (AUTH_SYS and AUTH_NONE are accepted,
 * anything else or a malformed AUTH_SYS body is AUTH_BADCRED).  Replies
 * carry an AUTH_NONE verifier.
 *
 * For NFS procedures flagged NFSD_PF_FH the first file handle is checked
 * before the handler runs, in this order, each failure answered with a
 * zeroed result carrying only the status:
 *   handle MAC/volume/length       -> NFS3ERR_BADHANDLE
 *   export id unknown              -> NFS3ERR_STALE
 *   no client rule matches peer    -> NFS3ERR_ACCES
 *   "secure" rule, port >= 1024    -> NFS3ERR_PERM (what knfsd answers)
 *   read-only and NFSD_PF_MODIFIES -> NFS3ERR_ROFS
 *   inode gone / generation differs-> NFS3ERR_STALE
 *   inode outside the export's root -> NFS3ERR_STALE
 * then credentials are squashed by the rule (root_squash: uid 0 and gid
 * 0, also in the groups, become anonuid/anongid; all_squash and AUTH_NONE:
 * everyone is anonymous).  Only a call that passed these checks may be
 * answered from the duplicate request cache (NFSD_PF_DRC, drc.c).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "nfsd/addr-internal.h"
#include "nfsd/counters-internal.h"
#include "nfsd/mount3_prot.h"
#include "nfsd/rpc-internal.h"
#include "nfsd/xdr-bound.h"

#define RPC_CALL         0
#define RPC_REPLY        1
#define MAX_AUTH_BYTES   400
#define MAX_MACHINE_NAME 255
#define ANON_ID          65534

/* ---- the exports generation ----------------------------------------------- */

struct nfsd_exports_gen {
	atomic_uint refs; /* the ctx's own, and one per call holding it */
	struct nfsd_exports ex;
};

/* Guards ctx->exports (the pointer) while a reference is taken. */
static pthread_mutex_t gen_lock = PTHREAD_MUTEX_INITIALIZER;
static const struct nfsd_exports no_exports;

const struct nfsd_exports *
nfsd_exports_get(struct nfsd_ctx *ctx)
{
	struct nfsd_exports_gen *g;

	pthread_mutex_lock(&gen_lock);
	g = ctx->exports;
	if (g != NULL)
		atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&gen_lock);
	return g != NULL ? &g->ex : &no_exports;
}

void
nfsd_exports_put(const struct nfsd_exports *e)
{
	struct nfsd_exports_gen *g;

	if (e == NULL || e == &no_exports)
		return;
	g = (struct nfsd_exports_gen *)((char *)e -
					offsetof(struct nfsd_exports_gen, ex));
	if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1)
		return;
	nfsd_exports_free(&g->ex);
	free(g);
}

void
nfsd_exports_publish(struct nfsd_ctx *ctx, struct nfsd_exports *fresh)
{
	struct nfsd_exports_gen *g = NULL, *old;

	if (fresh != NULL) {
		g = tl_calloc(1, sizeof(*g));
		atomic_init(&g->refs, 1);
		g->ex = *fresh;
		memset(fresh, 0, sizeof(*fresh));
	}
	pthread_mutex_lock(&gen_lock);
	old = ctx->exports;
	ctx->exports = g;
	pthread_mutex_unlock(&gen_lock);
	if (old != NULL)
		nfsd_exports_put(&old->ex);
}

/* ---- reply framing ------------------------------------------------------- */

/* Record mark placeholder, xid, REPLY. */
static void
reply_begin(struct tl_buf *b, uint32_t xid)
{
	tl_buf_reset(b);
	tl_buf_append_be32(b, 0);
	tl_buf_append_be32(b, xid);
	tl_buf_append_be32(b, RPC_REPLY);
}

/* MSG_ACCEPTED, AUTH_NONE verifier, accept status. */
static void
reply_accepted(struct tl_buf *b, uint32_t xid, uint32_t stat)
{
	reply_begin(b, xid);
	tl_buf_append_be32(b, MSG_ACCEPTED);
	tl_buf_append_be32(b, AUTH_NONE);
	tl_buf_append_be32(b, 0);
	tl_buf_append_be32(b, stat);
}

static void
reply_mismatch(struct tl_buf *b, uint32_t xid, uint32_t lo, uint32_t hi)
{
	reply_accepted(b, xid, PROG_MISMATCH);
	tl_buf_append_be32(b, lo);
	tl_buf_append_be32(b, hi);
}

static void
reply_denied(struct tl_buf *b, uint32_t xid, uint32_t why, uint32_t auth)
{
	reply_begin(b, xid);
	tl_buf_append_be32(b, MSG_DENIED);
	tl_buf_append_be32(b, why);
	if (why == RPC_MISMATCH) {
		tl_buf_append_be32(b, NFSD_RPC_VERS);
		tl_buf_append_be32(b, NFSD_RPC_VERS);
	} else {
		tl_buf_append_be32(b, auth);
	}
}

static void
reply_finish(struct tl_buf *b)
{
	tl_put_be32(b->data, 0x80000000u | (uint32_t)(b->len - 4));
}

/* ---- credentials --------------------------------------------------------- */

static bool
decode_authsys(const char *body, u_int len, struct meta_cred *cred)
{
	char name[MAX_MACHINE_NAME + 1], *np = name;
	uint32_t stamp, n;
	XDR x;
	bool ok = false;

	xdrmem_create(&x, (char *)body, len, XDR_DECODE);
	if (!xdr_uint32_t(&x, &stamp) ||
	    !xdr_string(&x, &np, MAX_MACHINE_NAME) ||
	    !xdr_uint32_t(&x, &cred->uid) || !xdr_uint32_t(&x, &cred->gid) ||
	    !xdr_uint32_t(&x, &n) || n > META_NGROUPS_MAX)
		goto out;
	for (uint32_t i = 0; i < n; i++)
		if (!xdr_uint32_t(&x, &cred->groups[i]))
			goto out;
	cred->ngroups = n;
	ok = true;
out:
	xdr_destroy(&x);
	return ok;
}

static void
squash(struct nfsd_call *c, const struct nfsd_client_rule *r)
{
	struct meta_cred *cr = &c->cred;
	uint32_t auid = r != NULL ? r->anonuid : ANON_ID;
	uint32_t agid = r != NULL ? r->anongid : ANON_ID;

	if (c->flavor == AUTH_NONE ||
	    (r != NULL && r->squash == NFSD_SQUASH_ALL)) {
		cr->uid = auid;
		cr->gid = agid;
		cr->ngroups = 0;
		return;
	}
	if (r == NULL || r->squash != NFSD_SQUASH_ROOT)
		return;
	if (cr->uid == 0)
		cr->uid = auid;
	if (cr->gid == 0)
		cr->gid = agid;
	for (uint32_t i = 0; i < cr->ngroups; i++)
		if (cr->groups[i] == 0)
			cr->groups[i] = agid;
}

/* ---- the file handle check ------------------------------------------------
 */

/* 0 or the nfsstat3 to answer instead of running the handler. */
static nfsstat3
check_fh(struct nfsd_call *c, const struct nfsd_proc *p, void *args)
{
	struct nfsd_ctx *ctx = c->ctx;
	const nfs_fh3 *fh = args;
	const struct nfsd_client_rule *r;
	struct nfsd_fh h;
	char who[INET6_ADDRSTRLEN];
	int rc;

	if (ctx->meta == NULL || ctx->vol == NULL)
		return NFS3ERR_SERVERFAULT;
	if (nfsd_fh_decode(ctx->vol, fh->data.data_val, fh->data.data_len,
			   &h) != 0)
		return NFS3ERR_BADHANDLE;
	c->exp = nfsd_export_by_id(c->exports, h.export_id);
	if (c->exp == NULL)
		return NFS3ERR_STALE;
	r = nfsd_export_match(c->exp, &c->peer);
	if (r == NULL)
		return NFS3ERR_ACCES;
	if (r->secure && nfsd_peer_port(&c->peer) >= 1024) {
		if (tl_log_enabled(TL_LOG_INFO)) {
			nfsd_peer_str(&c->peer, who, sizeof(who));
			tl_info("nfsd", "%s: %s from insecure port %u",
				c->exp->path, who, nfsd_peer_port(&c->peer));
		}
		return NFS3ERR_PERM;
	}
	c->rule = r;
	squash(c, r);
	c->cred.async = r->async;
	c->rdonly = !r->rw;
	if (c->rdonly && (p->flags & NFSD_PF_MODIFIES))
		return NFS3ERR_ROFS;
	rc = nfsd_fh_getattr(ctx, c->exp, h.ino, h.gen, &c->attr);
	if (rc != 0)
		return nfsd_errno_to_nfs3(rc);
	c->ino = h.ino;
	return NFS3_OK;
}

/* xdr_void takes no parameters; a cast of it to xdrproc_t is flagged. */
static bool_t
xdr_nothing(XDR *x, void *p)
{
	return TRUE;
}

/* ---- the call --------------------------------------------------------------
 */

static const struct nfsd_proc *
find_proc(struct tl_buf *b, struct nfsd_call *c)
{
	const struct nfsd_proc *tab;
	size_t n;

	if (c->prog == NFSD_PROG_NFS) {
		if (c->vers != 3) {
			nfsd_m_rpc_error(NFSD_M_ERR_PROG_MISMATCH);
			reply_mismatch(b, c->xid, 3, 3);
			return NULL;
		}
		tab = nfsd_nfs3_procs;
		n = nfsd_nfs3_nprocs;
	} else if (c->prog == NFSD_PROG_MOUNT) {
		/* v1 and v2 share NULL, DUMP, UMNT, UMNTALL and EXPORT with
		 * v3 (showmount speaks v1); their MNT returns a 32-byte
		 * handle that ours do not fit in. */
		if (c->vers < 1 || c->vers > 3) {
			nfsd_m_rpc_error(NFSD_M_ERR_PROG_MISMATCH);
			reply_mismatch(b, c->xid, 1, 3);
			return NULL;
		}
		tab = nfsd_mnt3_procs;
		n = nfsd_mnt3_nprocs;
		if (c->vers < 3 && c->proc == MOUNTPROC3_MNT)
			n = 0;
	} else if (c->prog == NFSD_PROG_NLM && c->ctx->nlm != NULL) {
		if (c->vers != 4) { /* NFSv3 clients speak NLM v4 */
			nfsd_m_rpc_error(NFSD_M_ERR_PROG_MISMATCH);
			reply_mismatch(b, c->xid, 4, 4);
			return NULL;
		}
		tab = nfsd_nlm4_procs;
		n = nfsd_nlm4_nprocs;
	} else if (c->prog == NFSD_PROG_NSM && c->ctx->nlm != NULL) {
		if (c->vers != 1) {
			nfsd_m_rpc_error(NFSD_M_ERR_PROG_MISMATCH);
			reply_mismatch(b, c->xid, 1, 1);
			return NULL;
		}
		tab = nfsd_nsm_procs;
		n = nfsd_nsm_nprocs;
	} else {
		nfsd_m_rpc_error(NFSD_M_ERR_PROG_UNAVAIL);
		reply_accepted(b, c->xid, PROG_UNAVAIL);
		return NULL;
	}
	if (c->proc >= n || tab[c->proc].handler == NULL) {
		nfsd_m_rpc_error(NFSD_M_ERR_PROC_UNAVAIL);
		reply_accepted(b, c->xid, PROC_UNAVAIL);
		return NULL;
	}
	nfsd_m_call(c->prog, c->proc);
	return &tab[c->proc];
}

/* Encode res into b at its end with room for size bytes; false (b->len
 * unchanged) when it does not fit. */
static bool
encode_into(struct tl_buf *b, xdrproc_t xres, void *res, size_t size)
{
	XDR x;
	bool ok;

	tl_buf_reserve(b, size);
	xdrmem_create(&x, (char *)b->data + b->len, (u_int)size, XDR_ENCODE);
	ok = xres(&x, res);
	if (ok)
		b->len += xdr_getpos(&x);
	xdr_destroy(&x);
	return ok;
}

/* Encode the accepted reply with its result; SYSTEM_ERR if that fails.
 * Most results fit in REPLY_GUESS bytes: encoding straight into that
 * room saves the xdr_sizeof walk, which is only done when it fails. */
#define REPLY_GUESS 4096
static void
encode_result(struct tl_buf *b, struct nfsd_call *c, const struct nfsd_proc *p,
	      void *res)
{
	xdrproc_t xres =
		p->xdr_res != NULL ? p->xdr_res : (xdrproc_t)xdr_nothing;

	reply_accepted(b, c->xid, SUCCESS);
	if (encode_into(b, xres, res, REPLY_GUESS) ||
	    encode_into(b, xres, res, xdr_sizeof(xres, res)))
		return;
	tl_err("nfsd", "cannot encode %s reply", p->name);
	nfsd_m_rpc_error(NFSD_M_ERR_SYSTEM);
	reply_accepted(b, c->xid, SYSTEM_ERR);
}

/*
 * READ data is not copied into the reply: the handler's buffer becomes
 * the reply's tail (sent after b, then zero padding to 4 bytes).  data<>
 * is the last item of READ3resok, so the result is encoded with an empty
 * data and the length word, the last 4 bytes, patched.
 */
static void
take_read_tail(struct nfsd_call *c, void *res, struct nfsd_tail *t)
{
	READ3res *r = res;
	void *ref = c->read_ref;

	c->read_ref = NULL;
	if (c->prog != NFSD_PROG_NFS || c->proc != NFSPROC3_READ)
		return;
	/* data_val is NULL when a file is lent (cache_ref_file). */
	if (r->status == NFS3_OK && r->READ3res_u.resok.data.data_len > 0) {
		t->data = r->READ3res_u.resok.data.data_val;
		t->len = r->READ3res_u.resok.data.data_len;
		t->ref = ref;
	} else if (ref != NULL) {
		cache_read_done(ref); /* lent bytes are never xdr_freed */
	}
	if (r->status == NFS3_OK) {
		r->READ3res_u.resok.data.data_val = NULL;
		r->READ3res_u.resok.data.data_len = 0;
	}
}

/* Room for the decoded arguments and results of every procedure; larger
 * ones (none today) are allocated. */
#define CALL_BUF 1024

/*
 * The duplicate request cache is consulted only once the call passed the
 * checks a first run would face (export, client rule, secure port, read
 * only): a replay from another port or host must not get a reply that
 * its own checks would have refused.  body is the call after the
 * procedure number (credentials, verifier, arguments), checksummed into
 * the key.  false: no reply (the first run is in progress) or b holds
 * the saved reply; true: run the call (d->drc set: nfsd_drc_end after).
 */
struct drc_use {
	struct nfsd_drc *drc; /* non-NULL once an entry was begun */
	struct nfsd_drc_key key;
	const uint8_t *body;
	size_t len;
};

enum { RUN_DONE, RUN_REPLAYED, RUN_DROPPED };

static int
drc_consult(struct tl_buf *b, struct nfsd_call *c, const struct nfsd_proc *p,
	    struct drc_use *d)
{
	if (!(p->flags & NFSD_PF_DRC) || c->ctx->drc == NULL)
		return RUN_DONE;
	nfsd_drc_make_key(&c->peer, c->xid, c->prog, c->vers, c->proc, d->body,
			  d->len, &d->key);
	switch (nfsd_drc_begin(c->ctx->drc, &d->key, b)) {
	case NFSD_DRC_RUNNING:
		tl_buf_reset(b);
		return RUN_DROPPED;
	case NFSD_DRC_REPLAY:
		tl_debug("nfsd", "xid %08x %s: replayed", c->xid, p->name);
		return RUN_REPLAYED;
	}
	d->drc = c->ctx->drc;
	return RUN_DONE;
}

/* The handler is done with the exports generation (and exp, rule). */
static void
call_put_exports(struct nfsd_call *c)
{
	nfsd_exports_put(c->exports);
	c->exports = NULL;
	c->exp = NULL;
	c->rule = NULL;
}

static int
run_proc(struct tl_buf *b, struct nfsd_call *c, const struct nfsd_proc *p,
	 XDR *x, u_int msglen, struct nfsd_tail *tail, struct drc_use *d)
{
	xdrproc_t xargs =
		p->xdr_args != NULL ? p->xdr_args : (xdrproc_t)xdr_nothing;
	xdrproc_t xres =
		p->xdr_res != NULL ? p->xdr_res : (xdrproc_t)xdr_nothing;
	_Alignas(max_align_t) char abuf[CALL_BUF], rbuf[CALL_BUF];
	size_t asize = p->args_size + 1;
	size_t rsize = p->res_size + sizeof(nfsstat3);
	void *args = asize <= CALL_BUF ? abuf : tl_malloc(asize);
	void *res = rsize <= CALL_BUF ? rbuf : tl_malloc(rsize);
	nfsstat3 st = NFS3_OK;
	int run = RUN_DONE;
	bool_t ok;

	memset(args, 0, asize);
	memset(res, 0, rsize);
	c->read_lend = true; /* take_read_tail below takes what READ lends */
	c->read_files = tail->files;
	/* no string or opaque in the arguments is longer than the whole
	 * message: bounds what a lying length can make us allocate */
	nfsd_xdr_limit = msglen;
	ok = xargs(x, args);
	nfsd_xdr_limit = 0;
	if (!ok) {
		nfsd_m_rpc_error(NFSD_M_ERR_GARBAGE_ARGS);
		reply_accepted(b, c->xid, GARBAGE_ARGS);
		goto out;
	}
	c->exports = nfsd_exports_get(c->ctx);
	if (p->flags & NFSD_PF_FH) {
		st = check_fh(c, p, args);
	} else if (p->fh_of != NULL) {
		nfs_fh3 fh;

		p->fh_of(args, &fh);
		c->fh_status = check_fh(c, p, &fh); /* the handler answers */
	} else {
		squash(c, NULL);
	}
	if (st == NFS3_OK && (run = drc_consult(b, c, p, d)) != RUN_DONE) {
		call_put_exports(c);
		goto out;
	}
	if (st == NFS3_OK)
		p->handler(c, args, res);
	else
		*(nfsstat3 *)res = st; /* every NFSv3 result starts so */
	if (st == NFS3_OK && c->prog == NFSD_PROG_NFS && c->exp != NULL &&
	    *(nfsstat3 *)res == NFS3_OK) {
		/* the bytes of the export, for billing (before the exports
		 * holding c->exp go) */
		if (c->proc == NFSPROC3_READ)
			nfsd_m_export_io(
				c->exp->id, c->exp->path,
				((READ3res *)res)->READ3res_u.resok.count, 0);
		else if (c->proc == NFSPROC3_WRITE)
			nfsd_m_export_io(
				c->exp->id, c->exp->path, 0,
				((WRITE3res *)res)->WRITE3res_u.resok.count);
	}
	call_put_exports(c);
	if (c->prog == NFSD_PROG_NFS && c->proc != NFSPROC3_NULL)
		nfsd_m_nfs_status(c->proc, *(nfsstat3 *)res);
	else if (c->prog == NFSD_PROG_NLM && c->nlm_status >= 0)
		nfsd_m_nlm_status(c->proc, (uint32_t)c->nlm_status);
	if (tl_log_enabled(TL_LOG_DEBUG))
		tl_debug("nfsd", "xid %08x %s status %d", c->xid, p->name,
			 (p->flags & NFSD_PF_FH) ? (int)*(nfsstat3 *)res : 0);
	take_read_tail(c, res, tail);
	encode_result(b, c, p, res);
	if (tail->data != NULL || tail->ref != NULL) {
		/* SYSTEM_ERR instead ends with the accept status */
		if (b->len >= 4 && tl_get_be32(b->data + b->len - 4) == 0 &&
		    *(nfsstat3 *)res == NFS3_OK)
			tl_put_be32(b->data + b->len - 4, (uint32_t)tail->len);
		else
			nfsd_tail_free(tail);
	}
	xdr_free(xres, res);
out:
	xdr_free(xargs, args);
	if (res != rbuf)
		free(res);
	if (args != abuf)
		free(args);
	return run;
}

/* A hand-off to a worker costs two context switches, more than these
 * calls cost themselves: they read LMDB (MVCC: never blocked by a writer)
 * and the cache's buffered sizes. */
bool
nfsd_call_is_quick(const uint8_t *msg, size_t len)
{
	if (len < 24 || tl_get_be32(msg + 4) != RPC_CALL ||
	    tl_get_be32(msg + 8) != NFSD_RPC_VERS ||
	    tl_get_be32(msg + 12) != NFSD_PROG_NFS ||
	    tl_get_be32(msg + 16) != 3)
		return false;
	switch (tl_get_be32(msg + 20)) {
	case NFSPROC3_NULL:
	case NFSPROC3_GETATTR:
	case NFSPROC3_LOOKUP:
	case NFSPROC3_ACCESS:
		return true;
	default:
		return false;
	}
}

/* READ, READDIR and READDIRPLUS replies are clipped to rtmax (nfs3.c's
 * NFS3_IOMAX, 1 MiB) plus their fixed part; other replies are small. */
#define REPLY_SMALL    4096
#define REPLY_DATA_MAX (1u << 20)

size_t
nfsd_call_reply_max(const uint8_t *msg, size_t len)
{
	uint64_t off = 24, count;
	uint32_t proc;

	if (len < 24 || tl_get_be32(msg + 4) != RPC_CALL ||
	    tl_get_be32(msg + 12) != NFSD_PROG_NFS ||
	    tl_get_be32(msg + 16) != 3)
		return REPLY_SMALL;
	proc = tl_get_be32(msg + 20);
	if (proc != NFSPROC3_READ && proc != NFSPROC3_READDIR &&
	    proc != NFSPROC3_READDIRPLUS)
		return REPLY_SMALL;
	/* credentials and verifier (flavor, length, body), the handle */
	for (int i = 0; i < 3; i++) {
		uint64_t n;

		off += i < 2 ? 4 : 0;
		if (off + 4 > len)
			return REPLY_SMALL;
		n = tl_get_be32(msg + off);
		off += 4 + (n + 3) / 4 * 4;
	}
	/* READ: offset, count; READDIR: cookie, verifier, count;
	 * READDIRPLUS: cookie, verifier, dircount, maxcount */
	off += proc == NFSPROC3_READ ? 8 : proc == NFSPROC3_READDIR ? 16 : 20;
	if (off + 4 > len)
		return REPLY_SMALL;
	count = tl_get_be32(msg + off);
	return REPLY_SMALL + (size_t)TL_MIN(count, REPLY_DATA_MAX);
}

void
nfsd_tail_free(struct nfsd_tail *t)
{
	if (t->ref != NULL)
		cache_read_done(t->ref);
	else
		free(t->data);
	t->data = NULL;
	t->len = 0;
	t->ref = NULL;
}

void
nfsd_dispatch(struct nfsd_ctx *ctx, const struct sockaddr_storage *peer,
	      const uint8_t *msg, size_t len, struct tl_buf *reply)
{
	static const uint8_t zero[3];
	struct nfsd_tail t;

	t.files = false; /* t.data is all there is */
	nfsd_dispatch_tail(ctx, peer, msg, len, reply, &t);
	if (t.data == NULL)
		return;
	tl_buf_append(reply, t.data, t.len);
	tl_buf_append(reply, zero, (4 - t.len % 4) % 4);
	nfsd_tail_free(&t);
}

void
nfsd_dispatch_tail(struct nfsd_ctx *ctx, const struct sockaddr_storage *peer,
		   const uint8_t *msg, size_t len, struct tl_buf *reply,
		   struct nfsd_tail *tail)
{
	nfsd_dispatch_from(ctx, peer, NULL, msg, len, reply, tail);
}

void
nfsd_dispatch_from(struct nfsd_ctx *ctx, const struct sockaddr_storage *peer,
		   const struct sockaddr_storage *local, const uint8_t *msg,
		   size_t len, struct tl_buf *reply, struct nfsd_tail *tail)
{
	struct nfsd_call c;
	const struct nfsd_proc *p;
	char cred[MAX_AUTH_BYTES], verf[MAX_AUTH_BYTES];
	char *cp = cred, *vp = verf;
	uint32_t mtype, rpcvers, vflavor;
	u_int clen, vlen;
	struct drc_use d = {NULL};
	uint64_t t0;
	int run;
	XDR x;

	tl_buf_reset(reply);
	tail->data = NULL; /* tail->files is the caller's */
	tail->len = 0;
	tail->ref = NULL;
	memset(&c, 0, sizeof(c));
	c.ctx = ctx;
	c.nlm_status = -1;
	c.peer = *peer;
	if (local != NULL)
		c.local = *local;
	xdrmem_create(&x, (char *)msg, len, XDR_DECODE);
	if (!xdr_uint32_t(&x, &c.xid) || !xdr_uint32_t(&x, &mtype) ||
	    mtype != RPC_CALL || !xdr_uint32_t(&x, &rpcvers)) {
		nfsd_m_rpc_error(NFSD_M_ERR_MALFORMED);
		goto out; /* nothing sensible to answer */
	}
	if (rpcvers != NFSD_RPC_VERS) {
		nfsd_m_rpc_error(NFSD_M_ERR_RPC_MISMATCH);
		reply_denied(reply, c.xid, RPC_MISMATCH, 0);
		goto done;
	}
	if (!xdr_uint32_t(&x, &c.prog) || !xdr_uint32_t(&x, &c.vers) ||
	    !xdr_uint32_t(&x, &c.proc) || !xdr_uint32_t(&x, &c.flavor) ||
	    !xdr_bytes(&x, &cp, &clen, MAX_AUTH_BYTES) ||
	    !xdr_uint32_t(&x, &vflavor) ||
	    !xdr_bytes(&x, &vp, &vlen, MAX_AUTH_BYTES)) {
		nfsd_m_rpc_error(NFSD_M_ERR_AUTH);
		reply_denied(reply, c.xid, AUTH_ERROR, AUTH_BADCRED);
		goto done;
	}
	if (c.flavor == AUTH_NONE) {
		c.cred.uid = c.cred.gid = ANON_ID;
	} else if (c.flavor != AUTH_SYS ||
		   !decode_authsys(cred, clen, &c.cred)) {
		nfsd_m_rpc_error(NFSD_M_ERR_AUTH);
		reply_denied(reply, c.xid, AUTH_ERROR, AUTH_BADCRED);
		goto done;
	}
	p = find_proc(reply, &c);
	if (p == NULL)
		goto done;
	d.body = msg + 24; /* the header up to the procedure decoded */
	d.len = len - 24;
	t0 = tl_mono_ns();
	run = run_proc(reply, &c, p, &x, (u_int)len, tail, &d);
	if (run != RUN_DONE)
		goto out; /* the saved reply (record mark included), or none */
	nfsd_m_call_done(c.prog, c.proc, tl_mono_ns() - t0);
	reply_finish(reply);
	if (tail->data != NULL || tail->ref != NULL)
		tl_put_be32(reply->data,
			    0x80000000u |
				    (uint32_t)(reply->len - 4 + tail->len +
					       (4 - tail->len % 4) % 4));
	if (d.drc != NULL)
		nfsd_drc_end(d.drc, &d.key, reply);
	goto out;
done:
	reply_finish(reply);
out:
	xdr_destroy(&x);
}

void
nfsd_dispatch_refuse(const uint8_t *msg, size_t len, nfsstat3 st,
		     struct tl_buf *reply)
{
	_Alignas(max_align_t) char rbuf[CALL_BUF];
	const struct nfsd_proc *p;
	struct nfsd_call c;
	uint32_t proc;

	tl_buf_reset(reply);
	if (len < 24 || tl_get_be32(msg + 12) != NFSD_PROG_NFS ||
	    tl_get_be32(msg + 16) != 3)
		return;
	proc = tl_get_be32(msg + 20);
	if (proc >= nfsd_nfs3_nprocs || nfsd_nfs3_procs[proc].handler == NULL)
		return;
	p = &nfsd_nfs3_procs[proc];
	if (p->res_size + sizeof(nfsstat3) > sizeof(rbuf))
		return;
	memset(&c, 0, sizeof(c));
	c.xid = tl_get_be32(msg);
	c.prog = NFSD_PROG_NFS;
	c.vers = 3;
	c.proc = proc;
	memset(rbuf, 0, sizeof(rbuf));
	*(nfsstat3 *)rbuf = st; /* every NFSv3 result starts so */
	nfsd_m_call(c.prog, proc);
	nfsd_m_nfs_status(proc, st);
	encode_result(reply, &c, p, rbuf);
	reply_finish(reply);
}
