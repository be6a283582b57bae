/*
 * nlm4.c - the NLM v4 (100021) and NSM v1 (100024) programs, served on
 * the NFS port: the procedure tables and their handlers.
 *
 * A call's file handle (nlm4_lock.fh) is checked by the dispatcher as an
 * NFSv3 handle is (MAC, export, client rule, secure port, squash,
 * generation: the procedures give it through fh_of), but the outcome is
 * left to the handler (call->fh_status), which answers in NLM's terms:
 *   bad or stale handle            -> NLM4_STALE_FH
 *   client not allowed, not a regular file, no read permission (the
 *   owner may lock without it, as knfsd) -> NLM4_FAILED
 *   exclusive lock or write share on a read-only export -> NLM4_ROFS
 *   range past 2^64                -> NLM4_FBIG
 *   a bound reached, the metadata engine failing -> NLM4_DENIED_NOLOCKS
 *   in the grace period, not a reclaim (LOCK, TEST, SHARE, NM_LOCK) ->
 *   NLM4_DENIED_GRACE_PERIOD; also a request that meets a lock still to
 *   be reclaimed by a client adopted after a failover
 * UNLOCK and CANCEL of a file removed meanwhile (a stale handle with a
 * valid MAC) still release what the owner held.  UNLOCK of something
 * never locked, by an owner never seen, is NLM4_GRANTED (nothing to do);
 * CANCEL of no blocked request is NLM4_DENIED.
 *
 * The _MSG procedures run as their synchronous forms and send the result
 * as the matching _RES call to the client's lock manager (callback.c);
 * the _RES and GRANTED_MSG calls a client may send us are accepted and
 * ignored: this server sends GRANTED, never GRANTED_MSG.  GRANTED sent
 * to the server is NLM4_DENIED (it holds no blocked request).
 *
 * NSM: SM_NOTIFY from a client that restarted drops the locks it took
 * under its earlier state (nlm-internal.h, nfsd_nlm_client_gone);
 * SM_STAT answers this gateway's state; the calls between a lock manager
 * and its own host's statd (SM_MON, SM_UNMON, SM_UNMON_ALL,
 * SM_SIMU_CRASH) are PROC_UNAVAIL.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nfsd/addr-internal.h"
#include "nfsd/nfsd-internal.h"
#include "nfsd/nlm-internal.h"
#include "nfsd/nlm4_prot.h"
#include "nfsd/nsm_prot.h"

/* ---- pieces ---------------------------------------------------------------- */

static void
cookie_copy(nlm4_netobj *dst, const nlm4_netobj *src)
{
	dst->nlm4_netobj_len = src->nlm4_netobj_len;
	dst->nlm4_netobj_val =
		src->nlm4_netobj_len > 0
			? tl_memdup(src->nlm4_netobj_val, src->nlm4_netobj_len)
			: NULL;
}

static struct meta_lock_owner
owner_of(const nlm4_lock *k)
{
	struct meta_lock_owner o = {k->caller_name.caller_name_val,
				    k->caller_name.caller_name_len,
				    (uint32_t)k->svid, k->oh.nlm4_netobj_val,
				    k->oh.nlm4_netobj_len};

	return o;
}

/* [start, end) of offset and length (0: to the end of the file). */
static nlm4_stats
range_of(uint64_t off, uint64_t len, uint64_t *start, uint64_t *end)
{
	*start = off;
	if (len == 0 || off + len == 0) { /* 0, or exactly 2^64 */
		*end = META_LOCK_EOF;
		return NLM4_GRANTED;
	}
	if (off + len < off)
		return NLM4_FBIG;
	*end = off + len;
	return NLM4_GRANTED;
}

/* The file of the call: NLM4_GRANTED and *ino, or what to answer.
 * release: UNLOCK or CANCEL, allowed on a removed file. */
static nlm4_stats
file_of(struct nfsd_call *c, const nlm4_netobj *fh, bool write, bool release,
	uint64_t *ino)
{
	struct nfsd_fh h;

	if (!nfsd_nlm_ready(c->ctx->nlm))
		return NLM4_DENIED_GRACE_PERIOD;
	switch (c->fh_status) {
	case NFS3_OK:
		break;
	case NFS3ERR_STALE:
		if (release && c->ctx->vol != NULL &&
		    nfsd_fh_decode(c->ctx->vol, fh->nlm4_netobj_val,
				   fh->nlm4_netobj_len, &h) == 0) {
			*ino = h.ino;
			return NLM4_GRANTED;
		}
		return NLM4_STALE_FH;
	case NFS3ERR_BADHANDLE:
		return NLM4_STALE_FH;
	case NFS3ERR_JUKEBOX:
	case NFS3ERR_IO:
	case NFS3ERR_SERVERFAULT:
		return NLM4_DENIED_NOLOCKS;
	default: /* ACCES, PERM */
		return NLM4_FAILED;
	}
	*ino = c->ino;
	if (release)
		return NLM4_GRANTED;
	if (c->attr.type != META_REG)
		return NLM4_FAILED;
	if (write && c->rdonly)
		return NLM4_ROFS;
	if (c->cred.uid != c->attr.uid &&
	    !(meta_access(&c->attr, &c->cred, META_MAY_READ) & META_MAY_READ))
		return NLM4_FAILED;
	return NLM4_GRANTED;
}

/* Answer st in *stat, the result's status; the call keeps it for the
 * metrics. */
static void
answer(struct nfsd_call *c, nlm4_stats *stat, nlm4_stats st)
{
	*stat = st;
	c->nlm_status = (int32_t)st;
}

/* What a metadata error other than a conflict answers. */
static nlm4_stats
meta_status(int rc, const char *what)
{
	if (rc == -ENOLCK) {
		tl_info("nlm", "%s: a bound on locks reached", what);
		return NLM4_DENIED_NOLOCKS;
	}
	if (rc == -EINVAL)
		return NLM4_FAILED;
	tl_warn("nlm", "%s: %s", what, strerror(-rc));
	return NLM4_DENIED_NOLOCKS;
}

static void
holder_of(const struct meta_lock_holder *h, nlm4_holder *out)
{
	out->exclusive = h->exclusive;
	out->svid = (int)h->svid;
	out->oh.nlm4_netobj_len = (u_int)h->oh_len;
	out->oh.nlm4_netobj_val =
		h->oh_len > 0 ? tl_memdup(h->oh, h->oh_len) : NULL;
	out->l_offset = h->start;
	out->l_len = h->end == META_LOCK_EOF ? 0 : h->end - h->start;
}

/* What the lock procedures (TEST, LOCK, CANCEL, UNLOCK) take from their
 * nlm4_lock: the file, and the request (owner, range, exclusive). */
struct lockcall {
	uint64_t ino;
	struct meta_lock_req q;
};

/* The file and request of k (lock_of), NLM4_GRANTED or what to answer:
 * write (an exclusive lock), release as file_of; grace: refused in the
 * grace period. */
static nlm4_stats
lock_of(struct nfsd_call *c, const nlm4_lock *k, bool write, bool release,
	bool grace, struct lockcall *lc)
{
	nlm4_stats st;

	memset(lc, 0, sizeof(*lc));
	lc->q.owner = owner_of(k);
	lc->q.exclusive = write;
	st = file_of(c, &k->fh, write, release, &lc->ino);
	if (st == NLM4_GRANTED)
		st = range_of(k->l_offset, k->l_len, &lc->q.start, &lc->q.end);
	if (st == NLM4_GRANTED && grace && nfsd_nlm_in_grace(c->ctx->nlm))
		st = NLM4_DENIED_GRACE_PERIOD;
	return st;
}

/* What a conflict (-EBUSY) answers when no client may wait for it. */
static nlm4_stats
conflict_status(const struct meta_lock_result *res, bool reclaim)
{
	return res->holder.recovering && !reclaim ? NLM4_DENIED_GRACE_PERIOD
						  : NLM4_DENIED;
}

/* ---- the procedures -------------------------------------------------------- */

static void
nlm_test(struct nfsd_call *c, void *args, void *res)
{
	const nlm4_testargs *a = args;
	nlm4_testres *r = res;
	struct meta_lock_result mr;
	struct lockcall lc;
	nlm4_stats st;
	int rc;

	cookie_copy(&r->cookie, &a->cookie);
	st = lock_of(c, &a->alock, a->exclusive, false, true, &lc);
	if (st != NLM4_GRANTED)
		goto out;
	rc = meta_lock_test(c->ctx->meta, lc.ino, &lc.q, &mr);
	if (rc == -EBUSY) {
		st = NLM4_DENIED;
		holder_of(&mr.holder, &r->stat.nlm4_testrply_u.holder);
	} else if (rc != 0) {
		st = meta_status(rc, "TEST");
	}
out:
	answer(c, &r->stat.stat, st);
}

/* Queue a LOCK that conflicts and may block: NLM4_BLOCKED, or
 * NLM4_DENIED_NOLOCKS when no more may wait. */
static nlm4_stats
lock_wait(struct nfsd_call *c, const nlm4_lockargs *a,
	  const struct lockcall *lc)
{
	struct nfsd_nlm_wait w;

	memset(&w, 0, sizeof(w));
	w.ino = lc->ino;
	w.client = lc->q.owner.client;
	w.client_len = lc->q.owner.client_len;
	w.svid = a->alock.svid;
	w.oh = lc->q.owner.oh;
	w.oh_len = lc->q.owner.oh_len;
	w.l_offset = a->alock.l_offset;
	w.l_len = a->alock.l_len;
	w.start = lc->q.start;
	w.end = lc->q.end;
	w.exclusive = a->exclusive;
	w.state = a->state;
	w.cookie = a->cookie.nlm4_netobj_val;
	w.cookie_len = a->cookie.nlm4_netobj_len;
	w.fh = a->alock.fh.nlm4_netobj_val;
	w.fh_len = a->alock.fh.nlm4_netobj_len;
	w.peer = c->peer;
	w.local = c->local;
	return nfsd_nlm_wait(c->ctx->nlm, &w) == 0 ? NLM4_BLOCKED
						   : NLM4_DENIED_NOLOCKS;
}

/* LOCK, LOCK_MSG, and NM_LOCK (not monitored: never blocks, no NSM
 * state). */
static void
nlm_lock(struct nfsd_call *c, void *args, void *res)
{
	const nlm4_lockargs *a = args;
	nlm4_res *r = res;
	bool monitored = c->proc != NLMPROC4_NM_LOCK;
	struct nfsd_nlm *l = c->ctx->nlm;
	struct meta_lock_result mr;
	struct nfsd_nlm_where where;
	struct lockcall lc;
	nlm4_stats st;
	int rc;

	cookie_copy(&r->cookie, &a->cookie);
	st = lock_of(c, &a->alock, a->exclusive, false, !a->reclaim, &lc);
	if (st != NLM4_GRANTED)
		goto out;
	lc.q.reclaim = a->reclaim;
	nfsd_nlm_where(l, &c->peer, &c->local, monitored ? a->state : 0, &where,
		       &lc.q);
	rc = meta_lock(c->ctx->meta, lc.ino, &lc.q, &mr);
	if (rc == 0) {
		nfsd_nlm_holds(l, lc.ino, &lc.q.owner, lc.q.start, lc.q.end);
		if (mr.released) /* a downgrade */
			nfsd_nlm_released(l, lc.ino);
	} else if (rc == -EBUSY && a->block && monitored &&
		   !(mr.holder.recovering && !a->reclaim)) {
		st = lock_wait(c, a, &lc);
	} else if (rc == -EBUSY) {
		st = conflict_status(&mr, a->reclaim);
	} else {
		st = meta_status(rc, "LOCK");
	}
out:
	answer(c, &r->stat.stat, st);
}

static void
nlm_cancel(struct nfsd_call *c, void *args, void *res)
{
	const nlm4_cancargs *a = args;
	nlm4_res *r = res;
	struct lockcall lc;
	nlm4_stats st;

	cookie_copy(&r->cookie, &a->cookie);
	st = lock_of(c, &a->alock, false, true, false, &lc);
	if (st == NLM4_GRANTED &&
	    nfsd_nlm_cancel(c->ctx->nlm, lc.ino, &lc.q.owner, lc.q.start,
			    lc.q.end, a->exclusive) != 0)
		st = NLM4_DENIED;
	answer(c, &r->stat.stat, st);
}

static void
nlm_unlock(struct nfsd_call *c, void *args, void *res)
{
	const nlm4_unlockargs *a = args;
	struct meta_lock_result mr;
	struct lockcall lc;
	nlm4_res *r = res;
	nlm4_stats st;
	int rc;

	cookie_copy(&r->cookie, &a->cookie);
	st = lock_of(c, &a->alock, false, true, false, &lc);
	if (st != NLM4_GRANTED)
		goto out;
	rc = meta_unlock(c->ctx->meta, lc.ino, &lc.q.owner, lc.q.start,
			 lc.q.end, &mr);
	if (rc != 0) {
		st = meta_status(rc, "UNLOCK");
		goto out;
	}
	nfsd_nlm_unlocked(c->ctx->nlm, lc.ino, &lc.q.owner, lc.q.start,
			  lc.q.end);
	if (mr.released)
		nfsd_nlm_released(c->ctx->nlm, lc.ino);
out:
	answer(c, &r->stat.stat, st);
}

static void
nlm_null(struct nfsd_call *c, void *args, void *res)
{
}

/* GRANTED is for clients; this server blocks on nobody's behalf. */
static void
nlm_granted(struct nfsd_call *c, void *args, void *res)
{
	const nlm4_testargs *a = args;
	nlm4_res *r = res;

	cookie_copy(&r->cookie, &a->cookie);
	answer(c, &r->stat.stat, NLM4_DENIED);
}

/* ---- the _MSG forms ------------------------------------------------------------ */

/* A _MSG procedure (TEST_MSG to UNLOCK_MSG) runs as its synchronous
 * form, numbered 5 below it, and sends the result as the _RES call
 * numbered 5 above it (the numbering of NLM v1 to v4). */
#define NLM_MSG_OFFSET 5

static void
nlm_msg(struct nfsd_call *c, void *args, void *unused)
{
	const struct nfsd_proc *p = &nfsd_nlm4_procs[c->proc - NLM_MSG_OFFSET];
	struct tl_buf b = TL_BUF_INIT;
	void *r = tl_calloc(1, p->res_size);
	size_t n;
	XDR x;

	p->handler(c, args, r);
	n = xdr_sizeof(p->xdr_res, r);
	tl_buf_reserve(&b, n);
	xdrmem_create(&x, (char *)b.data, (u_int)n, XDR_ENCODE);
	if (p->xdr_res(&x, r)) {
		b.len = xdr_getpos(&x);
		nfsd_nlm_reply(c->ctx->nlm, &c->peer, &c->local,
			       c->proc + NLM_MSG_OFFSET, &b);
	}
	xdr_destroy(&x);
	tl_buf_free(&b);
	xdr_free(p->xdr_res, r);
	free(r);
}

/* GRANTED_MSG and the _RES calls: answers to calls this server does not
 * make; accepted, nothing to do. */
static void
nlm_ignore(struct nfsd_call *c, void *args, void *res)
{
	tl_debug("nlm", "procedure %u from a client: nothing to do", c->proc);
}

/* ---- shares and FREE_ALL ---------------------------------------------------------- */

/* SHARE and UNSHARE. */
static void
nlm_share(struct nfsd_call *c, void *args, void *res)
{
	const nlm4_shareargs *a = args;
	nlm4_shareres *r = res;
	bool on = c->proc == NLMPROC4_SHARE;
	struct nfsd_nlm *l = c->ctx->nlm;
	struct meta_lock_result mr;
	struct meta_lock_req q;
	struct nfsd_nlm_where where;
	uint64_t ino = 0;
	nlm4_stats st;
	int rc;

	cookie_copy(&r->cookie, &a->cookie);
	r->sequence = 0;
	memset(&q, 0, sizeof(q));
	q.owner.client = a->share.caller_name.caller_name_val;
	q.owner.client_len = a->share.caller_name.caller_name_len;
	q.owner.oh = a->share.oh.nlm4_netobj_val;
	q.owner.oh_len = a->share.oh.nlm4_netobj_len;
	st = file_of(c, &a->share.fh, on && (a->share.access & NLM4_FSA_W), !on,
		     &ino);
	if (st == NLM4_GRANTED && on && !a->reclaim && nfsd_nlm_in_grace(l))
		st = NLM4_DENIED_GRACE_PERIOD;
	if (st != NLM4_GRANTED)
		goto out;
	if (!on) {
		rc = meta_unshare(c->ctx->meta, ino, &q.owner, &mr);
		if (rc != 0)
			st = meta_status(rc, "UNSHARE");
		else if (mr.released)
			nfsd_nlm_released(l, ino);
		goto out;
	}
	q.mode = (uint32_t)a->share.mode & 3;
	q.access = (uint32_t)a->share.access & 3;
	q.reclaim = a->reclaim;
	nfsd_nlm_where(l, &c->peer, &c->local, 0, &where, &q);
	rc = meta_share(c->ctx->meta, ino, &q, &mr);
	if (rc == -EBUSY)
		st = conflict_status(&mr, a->reclaim);
	else if (rc != 0)
		st = meta_status(rc, "SHARE");
	else if (mr.released)
		nfsd_nlm_released(l, ino);
out:
	answer(c, &r->stat, st);
}

static void
nlm_free_all(struct nfsd_call *c, void *args, void *res)
{
	const nlm4_notify *a = args;

	if (nfsd_nlm_ready(c->ctx->nlm))
		nfsd_nlm_client_gone(c->ctx->nlm, a->name.name_val,
				     a->name.name_len, -1, &c->peer);
}

/* ---- NSM --------------------------------------------------------------------------- */

static void
nsm_stat_proc(struct nfsd_call *c, void *args, void *res)
{
	nsm_stat_res *r = res;

	r->res_stat = NSM_STAT_FAIL; /* monitors nobody on request */
	r->state = nfsd_nlm_ready(c->ctx->nlm) ? nfsd_nlm_nsm_state(c->ctx->nlm)
					       : 0;
}

static void
nsm_notify(struct nfsd_call *c, void *args, void *res)
{
	const nsm_stat_chge *a = args;

	if (nfsd_nlm_ready(c->ctx->nlm))
		nfsd_nlm_client_gone(c->ctx->nlm, a->mon_name.mon_name_val,
				     a->mon_name.mon_name_len,
				     (int64_t)(uint32_t)a->state, &c->peer);
}

/* ---- the tables -------------------------------------------------------------------- */

static bool_t
xdr_void_arg(XDR *x, void *p)
{
	return TRUE;
}

/* The NFS file handle an NLM request names (an opaque netobj). */
static void
fh_of_netobj(const nlm4_netobj *o, nfs_fh3 *fh)
{
	fh->data.data_len = o->nlm4_netobj_len;
	fh->data.data_val = o->nlm4_netobj_val;
}

/* fh_of for the procedures whose arguments, of type ta, name the file
 * in field fh. */
#define FH_OF(name, ta, fh)                                                    \
	static void name(const void *args, nfs_fh3 *out)                       \
	{                                                                      \
		fh_of_netobj(&((const ta *)args)->fh, out);                    \
	}
FH_OF(fh_of_test, nlm4_testargs, alock.fh)
FH_OF(fh_of_lock, nlm4_lockargs, alock.fh)
FH_OF(fh_of_cancel, nlm4_cancargs, alock.fh)
FH_OF(fh_of_unlock, nlm4_unlockargs, alock.fh)
FH_OF(fh_of_share, nlm4_shareargs, share.fh)

#define NP(num, nm, fn, xa, ta, xr, tr, fh)                                    \
	[num] = {.name = nm,                                                   \
		 .xdr_args = (xdrproc_t)(xa),                                  \
		 .args_size = sizeof(ta),                                      \
		 .xdr_res = (xdrproc_t)(xr),                                   \
		 .res_size = sizeof(tr),                                       \
		 .handler = fn,                                                \
		 .fh_of = fh}

const struct nfsd_proc nfsd_nlm4_procs[] = {
	NP(NLMPROC4_NULL, "NLM_NULL", nlm_null, xdr_void_arg, char, NULL, char,
	   NULL),
	NP(NLMPROC4_TEST, "NLM_TEST", nlm_test, xdr_nlm4_testargs,
	   nlm4_testargs, xdr_nlm4_testres, nlm4_testres, fh_of_test),
	NP(NLMPROC4_LOCK, "NLM_LOCK", nlm_lock, xdr_nlm4_lockargs,
	   nlm4_lockargs, xdr_nlm4_res, nlm4_res, fh_of_lock),
	NP(NLMPROC4_CANCEL, "NLM_CANCEL", nlm_cancel, xdr_nlm4_cancargs,
	   nlm4_cancargs, xdr_nlm4_res, nlm4_res, fh_of_cancel),
	NP(NLMPROC4_UNLOCK, "NLM_UNLOCK", nlm_unlock, xdr_nlm4_unlockargs,
	   nlm4_unlockargs, xdr_nlm4_res, nlm4_res, fh_of_unlock),
	NP(NLMPROC4_GRANTED, "NLM_GRANTED", nlm_granted, xdr_nlm4_testargs,
	   nlm4_testargs, xdr_nlm4_res, nlm4_res, NULL),
	NP(NLMPROC4_TEST_MSG, "NLM_TEST_MSG", nlm_msg, xdr_nlm4_testargs,
	   nlm4_testargs, NULL, char, fh_of_test),
	NP(NLMPROC4_LOCK_MSG, "NLM_LOCK_MSG", nlm_msg, xdr_nlm4_lockargs,
	   nlm4_lockargs, NULL, char, fh_of_lock),
	NP(NLMPROC4_CANCEL_MSG, "NLM_CANCEL_MSG", nlm_msg, xdr_nlm4_cancargs,
	   nlm4_cancargs, NULL, char, fh_of_cancel),
	NP(NLMPROC4_UNLOCK_MSG, "NLM_UNLOCK_MSG", nlm_msg, xdr_nlm4_unlockargs,
	   nlm4_unlockargs, NULL, char, fh_of_unlock),
	NP(NLMPROC4_GRANTED_MSG, "NLM_GRANTED_MSG", nlm_ignore,
	   xdr_nlm4_testargs, nlm4_testargs, NULL, char, NULL),
	NP(NLMPROC4_TEST_RES, "NLM_TEST_RES", nlm_ignore, xdr_nlm4_testres,
	   nlm4_testres, NULL, char, NULL),
	NP(NLMPROC4_LOCK_RES, "NLM_LOCK_RES", nlm_ignore, xdr_nlm4_res,
	   nlm4_res, NULL, char, NULL),
	NP(NLMPROC4_CANCEL_RES, "NLM_CANCEL_RES", nlm_ignore, xdr_nlm4_res,
	   nlm4_res, NULL, char, NULL),
	NP(NLMPROC4_UNLOCK_RES, "NLM_UNLOCK_RES", nlm_ignore, xdr_nlm4_res,
	   nlm4_res, NULL, char, NULL),
	NP(NLMPROC4_GRANTED_RES, "NLM_GRANTED_RES", nlm_ignore, xdr_nlm4_res,
	   nlm4_res, NULL, char, NULL),
	NP(NLMPROC4_SHARE, "NLM_SHARE", nlm_share, xdr_nlm4_shareargs,
	   nlm4_shareargs, xdr_nlm4_shareres, nlm4_shareres, fh_of_share),
	NP(NLMPROC4_UNSHARE, "NLM_UNSHARE", nlm_share, xdr_nlm4_shareargs,
	   nlm4_shareargs, xdr_nlm4_shareres, nlm4_shareres, fh_of_share),
	NP(NLMPROC4_NM_LOCK, "NLM_NM_LOCK", nlm_lock, xdr_nlm4_lockargs,
	   nlm4_lockargs, xdr_nlm4_res, nlm4_res, fh_of_lock),
	NP(NLMPROC4_FREE_ALL, "NLM_FREE_ALL", nlm_free_all, xdr_nlm4_notify,
	   nlm4_notify, NULL, char, NULL),
};
const size_t nfsd_nlm4_nprocs = TL_ARRAY_SIZE(nfsd_nlm4_procs);

const struct nfsd_proc nfsd_nsm_procs[] = {
	NP(NSMPROC_NULL, "NSM_NULL", nlm_null, xdr_void_arg, char, NULL, char,
	   NULL),
	NP(NSMPROC_STAT, "NSM_STAT", nsm_stat_proc, xdr_nsm_name, nsm_name,
	   xdr_nsm_stat_res, nsm_stat_res, NULL),
	NP(NSMPROC_NOTIFY, "NSM_NOTIFY", nsm_notify, xdr_nsm_stat_chge,
	   nsm_stat_chge, NULL, char, NULL),
};
const size_t nfsd_nsm_nprocs = TL_ARRAY_SIZE(nfsd_nsm_procs);
