/*
 * nfsd_nlm_test.c - NLM v4 and NSM through a raw RPC client against the
 * real server (nfsd_test.h: LMDB, a file:// store, the server in a
 * thread), in a network namespace of the test's own where the test also
 * plays the client host the gateway calls back (nlm_test.h: rpcbind on
 * port 111, a lock manager and status monitor that record and answer).
 *
 * Checked: TEST, LOCK (non-blocking, blocking, reclaim), CANCEL, UNLOCK,
 * the GRANTED callback of a blocked lock when it comes free (from the
 * address the client reached), a client that answers GRANTED "no", one
 * that never answers and one that cannot be reached (the lock is given
 * back after lock_callback_window, unless it asked again meanwhile),
 * the _MSG forms and their _RES callbacks, SHARE and UNSHARE, FREE_ALL,
 * SM_NOTIFY over TCP and UDP (a client's restart drops what it took
 * before), the bounds (NLM4_DENIED_NOLOCKS, blocked requests bounded),
 * bad input (handles, ranges, lengths, garbage, unknown owners and
 * versions) with precise answers while the server keeps serving, a
 * failover (another gateway of the volume goes away: its client is
 * adopted, told to reclaim, its lock protected while others are
 * granted), and a restart: SM_NOTIFY to the client from the address it knows,
 * the grace period (only reclaims), its early end once everything is reclaimed.
 * Behind a load balancer (proxy_protocol, PROXY headers v1 and v2):
 * the client is who the header names, GRANTED and SM_NOTIFY go to it
 * from the balancer's address, which SM_NOTIFY names; a connection
 * without the header is closed.
 * valgrind: nothing leaked.
 */
#include "config.h"

#include "nfsd/addr-internal.h"
#include "nfsd/metrics-internal.h"
#include "nfsd/nlm-internal.h"
#include "nfsd/server-internal.h"
#include "t/unit/nfsd_test.h"
#include "t/unit/nlm_test.h"

#define LOCKD_PORT 4045

static struct tsrv T;
static struct nlt_client C;
static struct nfsd_config cfg;
static int fd = -1;
static uint32_t xid = 100;
static nfs_fh3 file1, file2, dir1;

static const struct nlt_owner A = {"hostA", 11, "11@hostA"};
static const struct nlt_owner B = {"hostB", 22, "22@hostB"};
static const struct nlt_owner B2 = {"hostB", 23, "23@hostB"};
static const struct nlt_owner D = {"hostD", 44, "44@hostD"};

/* ---- calls ------------------------------------------------------------------ */

static uint32_t
call(uint32_t prog, uint32_t vers, uint32_t proc, xdrproc_t xa, void *a,
     xdrproc_t xr, void *r)
{
	struct tl_buf b = TL_BUF_INIT;
	uint32_t st;

	tcall_encode(&b, ++xid, prog, vers, proc, xa, a);
	st = tcall(fd, &b, NULL, xr, r);
	tl_buf_free(&b);
	return st;
}

static int
nlm_res_call(uint32_t proc, xdrproc_t xa, void *a)
{
	nlm4_res r;
	int st = -1;

	memset(&r, 0, sizeof(r));
	if (call(NLT_PROG_NLM, 4, proc, xa, a, (xdrproc_t)xdr_nlm4_res, &r) ==
	    SUCCESS)
		st = (int)r.stat.stat;
	xdr_free((xdrproc_t)xdr_nlm4_res, (char *)&r);
	return st;
}

/* Call proc with arguments a (of type xa) whose nlm4_lock k is o's
 * range of fh: the status answered, or -1. */
static int
lock_call(uint32_t proc, xdrproc_t xa, void *a, nlm4_lock *k,
	  const struct nlt_owner *o, const nfs_fh3 *fh, uint64_t off,
	  uint64_t len)
{
	nlt_lock_of(k, o, fh->data.data_val, fh->data.data_len, off, len);
	return nlm_res_call(proc, xa, a);
}

static int
lock(const struct nlt_owner *o, const nfs_fh3 *fh, uint64_t off, uint64_t len,
     bool excl, bool block, bool reclaim, int32_t state)
{
	nlm4_lockargs a = {.cookie = {2, "ck"},
			   .block = block,
			   .exclusive = excl,
			   .reclaim = reclaim,
			   .state = state};

	return lock_call(NLMPROC4_LOCK, (xdrproc_t)xdr_nlm4_lockargs, &a,
			 &a.alock, o, fh, off, len);
}

static int
unlock(const struct nlt_owner *o, const nfs_fh3 *fh, uint64_t off, uint64_t len)
{
	nlm4_unlockargs a = {0};

	return lock_call(NLMPROC4_UNLOCK, (xdrproc_t)xdr_nlm4_unlockargs, &a,
			 &a.alock, o, fh, off, len);
}

static int
cancel(const struct nlt_owner *o, const nfs_fh3 *fh, uint64_t off, uint64_t len,
       bool excl)
{
	nlm4_cancargs a = {.block = true, .exclusive = excl};

	return lock_call(NLMPROC4_CANCEL, (xdrproc_t)xdr_nlm4_cancargs, &a,
			 &a.alock, o, fh, off, len);
}

/* TEST: the status; *h the holder when NLM4_DENIED (h may be NULL). */
static int
test(const struct nlt_owner *o, const nfs_fh3 *fh, uint64_t off, uint64_t len,
     bool excl, nlm4_holder *h)
{
	nlm4_testargs a;
	nlm4_testres r;
	int st = -1;

	memset(&a, 0, sizeof(a));
	memset(&r, 0, sizeof(r));
	a.exclusive = excl;
	nlt_lock_of(&a.alock, o, fh->data.data_val, fh->data.data_len, off,
		    len);
	if (call(NLT_PROG_NLM, 4, NLMPROC4_TEST, (xdrproc_t)xdr_nlm4_testargs,
		 &a, (xdrproc_t)xdr_nlm4_testres, &r) == SUCCESS) {
		st = (int)r.stat.stat;
		if (st == NLM4_DENIED && h != NULL) {
			*h = r.stat.nlm4_testrply_u.holder;
			h->oh.nlm4_netobj_val = NULL;
		}
	}
	xdr_free((xdrproc_t)xdr_nlm4_testres, (char *)&r);
	return st;
}

static struct nfsd_lock_stats
stats(void)
{
	struct nfsd_lock_stats s;

	nfsd_nlm_stats(T.srv->ctx.nlm, &s);
	return s;
}

/* Until TEST by o of the range says free (a stall detector, not a
 * timer: 600 looks 50 ms apart). */
static bool
becomes_free(const struct nlt_owner *o, const nfs_fh3 *fh, uint64_t off,
	     uint64_t len)
{
	for (int i = 0; i < 600; i++) {
		if (test(o, fh, off, len, true, NULL) == NLM4_GRANTED)
			return true;
		usleep(50000);
	}
	return false;
}

static int
create(const char *name, nfs_fh3 *out)
{
	nfs_fh3 root;
	CREATE3args a;
	CREATE3res r;
	int st;

	memset(&root, 0, sizeof(root));
	if (tmnt(fd, "/", &root) != MNT3_OK)
		return -1;
	memset(&a, 0, sizeof(a));
	memset(&r, 0, sizeof(r));
	a.where.dir = root;
	a.where.name = (char *)name;
	a.how.mode = UNCHECKED;
	st = tnfs(fd, ++xid, NFSPROC3_CREATE, (xdrproc_t)xdr_CREATE3args, &a,
		  (xdrproc_t)xdr_CREATE3res, &r);
	if (st == NFS3_OK)
		tfh_copy(out, &r.CREATE3res_u.resok.obj.post_op_fh3_u.handle);
	xdr_free((xdrproc_t)xdr_CREATE3res, (char *)&r);
	free(root.data.data_val);
	return st;
}

/* ---- the checks --------------------------------------------------------------- */

static void
test_basics(void)
{
	nlm4_holder h;

	CHECK_EQ(call(NLT_PROG_NLM, 4, NLMPROC4_NULL, NULL, NULL, NULL, NULL),
		 SUCCESS, "NLM v4 NULL");
	CHECK_EQ(call(NLT_PROG_NLM, 1, NLMPROC4_NULL, NULL, NULL, NULL, NULL),
		 PROG_MISMATCH, "NLM v1 is PROG_MISMATCH (4 only)");
	CHECK_EQ(call(NLT_PROG_NSM, 1, NSMPROC_NULL, NULL, NULL, NULL, NULL),
		 SUCCESS, "NSM NULL");
	CHECK_EQ(call(NLT_PROG_NSM, 1, NSMPROC_MON, NULL, NULL, NULL, NULL),
		 PROC_UNAVAIL, "SM_MON is for a host's own statd");
	CHECK_EQ(call(NLT_PROG_NLM, 4, 17, NULL, NULL, NULL, NULL),
		 PROC_UNAVAIL, "NLM procedure 17 does not exist");

	CHECK_EQ(test(&A, &file1, 0, 100, true, NULL), NLM4_GRANTED,
		 "TEST of a free range");
	CHECK_EQ(lock(&A, &file1, 0, 100, true, false, false, 1), NLM4_GRANTED,
		 "LOCK exclusive [0,100)");
	CHECK_EQ(lock(&A, &file1, 0, 100, true, false, false, 1), NLM4_GRANTED,
		 "the same LOCK again (a retransmission)");
	memset(&h, 0, sizeof(h));
	CHECK_EQ(test(&B, &file1, 50, 1, false, &h), NLM4_DENIED,
		 "TEST by another owner: denied");
	CHECK(h.exclusive && h.svid == 11 && h.l_offset == 0 && h.l_len == 100,
	      "naming the holder (svid %d, %llu+%llu)", h.svid,
	      (unsigned long long)h.l_offset, (unsigned long long)h.l_len);
	CHECK_EQ(lock(&B, &file1, 99, 0, false, false, false, 1), NLM4_DENIED,
		 "a non-blocking shared LOCK to EOF over it: denied");
	CHECK_EQ(lock(&B, &file1, 100, 0, true, false, false, 1), NLM4_GRANTED,
		 "from its end to EOF: granted");
	CHECK_EQ(test(&A, &file1, 1ull << 62, 1, false, &h), NLM4_DENIED,
		 "the lock to EOF covers 2^62");
	CHECK(h.l_offset == 100 && h.l_len == 0,
	      "TEST reports a lock to EOF with l_len 0");
	CHECK_EQ(lock(&B2, &file1, 100, 1, true, false, false, 1), NLM4_DENIED,
		 "same host, another svid: another owner");
	CHECK_EQ(unlock(&B, &file1, 0, 0), NLM4_GRANTED, "UNLOCK all of B");
	CHECK_EQ(unlock(&B, &file1, 0, 0), NLM4_GRANTED,
		 "UNLOCK of nothing held: granted");
	CHECK_EQ(unlock(&D, &file2, 5, 5), NLM4_GRANTED,
		 "UNLOCK by an owner never seen: granted");
	CHECK_EQ(unlock(&A, &file1, 0, 0), NLM4_GRANTED, "UNLOCK A");
	CHECK_EQ(test(&D, &file1, 0, 0, true, NULL), NLM4_GRANTED,
		 "the file is free");
}

static void
test_blocked(void)
{
	nlm4_testargs g;
	int i, before = nlt_count(&C, NLT_PROG_NLM, NLMPROC4_GRANTED);

	CHECK_EQ(lock(&A, &file1, 0, 10, true, false, false, 1), NLM4_GRANTED,
		 "A locks [0,10)");
	CHECK_EQ(lock(&B, &file1, 5, 10, true, true, false, 1), NLM4_BLOCKED,
		 "B's blocking LOCK of [5,15): BLOCKED");
	CHECK_EQ(stats().waiters, 1, "one blocked request kept");
	CHECK_EQ(lock(&B, &file1, 5, 10, true, true, false, 1), NLM4_BLOCKED,
		 "B asks again (a client's poll): still BLOCKED");
	CHECK_EQ(stats().waiters, 1, "still one blocked request");
	CHECK_EQ(unlock(&A, &file1, 0, 10), NLM4_GRANTED, "A unlocks");
	i = nlt_wait_call(&C, NLT_PROG_NLM, NLMPROC4_GRANTED, before);
	CHECK_FATAL(i >= 0, "the client is called back with GRANTED");
	memset(&g, 0, sizeof(g));
	CHECK(nlt_args(&C, i, (xdrproc_t)xdr_nlm4_testargs, &g),
	      "GRANTED's arguments decode");
	CHECK(g.exclusive && g.alock.svid == 22 && g.alock.l_offset == 5 &&
		      g.alock.l_len == 10 && g.cookie.nlm4_netobj_len == 2 &&
		      memcmp(g.cookie.nlm4_netobj_val, "ck", 2) == 0 &&
		      g.alock.fh.nlm4_netobj_len == file1.data.data_len &&
		      memcmp(g.alock.fh.nlm4_netobj_val, file1.data.data_val,
			     file1.data.data_len) == 0,
	      "repeating the blocked LOCK: cookie, handle, svid, range");
	xdr_free((xdrproc_t)xdr_nlm4_testargs, (char *)&g);
	CHECK(strcmp(C.calls[i].from, "127.0.0.1") == 0,
	      "from the address the client reached (%s)", C.calls[i].from);
	CHECK_EQ(test(&D, &file1, 7, 1, false, NULL), NLM4_DENIED,
		 "B now holds [5,15)");
	{
		struct nfsd_metrics_src src = {.srv = T.srv};
		struct tl_buf m = TL_BUF_INIT;

		nfsd_metrics_render(&src, &m);
		tl_buf_append(&m, "", 1);
		CHECK(strstr((char *)m.data, "\ntessera_nlm_locks 1\n") &&
			      strstr((char *)m.data,
				     "\ntessera_nlm_blocked_requests 0\n") &&
			      strstr((char *)m.data, "\ntessera_nlm_grace 0\n"),
		      "metrics: one lock record, no blocked request, no grace");
		tl_buf_free(&m);
	}
	CHECK_EQ(lock(&B, &file1, 5, 10, true, false, false, 1), NLM4_GRANTED,
		 "B asking again is told it holds it");
	CHECK_EQ(unlock(&B, &file1, 0, 0), NLM4_GRANTED, "B unlocks");
	CHECK_EQ(stats().waiters, 0, "no blocked request left");
}

static void
test_cancel(void)
{
	CHECK_EQ(lock(&B, &file1, 0, 1, true, false, false, 1), NLM4_GRANTED,
		 "B locks [0,1)");
	CHECK_EQ(lock(&A, &file1, 0, 1, true, true, false, 1), NLM4_BLOCKED,
		 "A blocks on it");
	CHECK_EQ(cancel(&A, &file1, 0, 1, false), NLM4_DENIED,
		 "CANCEL of another kind of request (shared): no such request");
	CHECK_EQ(cancel(&A, &file1, 0, 1, true), NLM4_GRANTED,
		 "CANCEL of A's blocked request");
	CHECK_EQ(stats().waiters, 0, "no blocked request left");
	CHECK_EQ(cancel(&A, &file1, 0, 1, true), NLM4_DENIED,
		 "CANCEL again: there is none");
	CHECK_EQ(unlock(&B, &file1, 0, 1), NLM4_GRANTED, "B unlocks");
	CHECK_EQ(lock(&D, &file1, 0, 1, true, false, false, 1), NLM4_GRANTED,
		 "the range is free: nobody got it behind our back");
	unlock(&D, &file1, 0, 0);
}

/* A client that says no, one that does not answer, one not there. */
static void
test_callback_failures(void)
{
	int before = nlt_count(&C, NLT_PROG_NLM, NLMPROC4_GRANTED);

	pthread_mutex_lock(&C.mu);
	C.granted_status = NLM4_DENIED;
	pthread_mutex_unlock(&C.mu);
	lock(&A, &file1, 0, 1, true, false, false, 1);
	CHECK_EQ(lock(&B, &file1, 0, 1, true, true, false, 1), NLM4_BLOCKED,
		 "B blocks");
	unlock(&A, &file1, 0, 0);
	CHECK(nlt_wait_call(&C, NLT_PROG_NLM, NLMPROC4_GRANTED, before) >= 0,
	      "GRANTED sent");
	CHECK(becomes_free(&D, &file1, 0, 1),
	      "the client answered no: the lock is given back");

	/* silent: accepts, never answers */
	pthread_mutex_lock(&C.mu);
	C.granted_status = NLM4_GRANTED;
	C.silent = true;
	pthread_mutex_unlock(&C.mu);
	lock(&A, &file1, 0, 1, true, false, false, 1);
	CHECK_EQ(lock(&B, &file1, 0, 1, true, true, false, 1), NLM4_BLOCKED,
		 "B blocks again, its host now silent");
	unlock(&A, &file1, 0, 0);
	CHECK(nlt_wait_call(&C, NLT_PROG_NLM, NLMPROC4_GRANTED, before + 1) >=
		      0,
	      "GRANTED sent, never answered");
	CHECK_EQ(call(NLT_PROG_NLM, 4, NLMPROC4_NULL, NULL, NULL, NULL, NULL),
		 SUCCESS, "the server keeps serving meanwhile");
	CHECK(becomes_free(&D, &file1, 0, 1),
	      "after lock_callback_window the lock is given back");
	CHECK_EQ(stats().callbacks, 0, "no callback left in flight");

	/* the silent client asks again in time: it keeps the lock */
	before = nlt_count(&C, NLT_PROG_NLM, NLMPROC4_GRANTED);
	lock(&A, &file1, 0, 1, true, false, false, 1);
	lock(&B, &file1, 0, 1, true, true, false, 1);
	unlock(&A, &file1, 0, 0);
	CHECK(nlt_wait_call(&C, NLT_PROG_NLM, NLMPROC4_GRANTED, before) >= 0,
	      "GRANTED sent to the silent client");
	CHECK_EQ(lock(&B, &file1, 0, 1, true, true, false, 1), NLM4_GRANTED,
		 "which asks again (its poll) and is told it holds the lock");
	for (int i = 0; i < 600 && stats().callbacks > 0; i++)
		usleep(50000);
	CHECK_EQ(stats().callbacks, 0, "the callback's tries are spent");
	CHECK_EQ(test(&D, &file1, 0, 1, true, NULL), NLM4_DENIED,
		 "and B still holds the lock it confirmed");
	unlock(&B, &file1, 0, 0);

	/* nothing registered at the client: the rpcbind says so */
	pthread_mutex_lock(&C.mu);
	C.silent = false;
	C.no_program = true;
	pthread_mutex_unlock(&C.mu);
	lock(&A, &file1, 0, 1, true, false, false, 1);
	lock(&B, &file1, 0, 1, true, true, false, 1);
	unlock(&A, &file1, 0, 0);
	CHECK(becomes_free(&D, &file1, 0, 1),
	      "no lock manager registered at the client: given back");
	pthread_mutex_lock(&C.mu);
	C.no_program = false;
	pthread_mutex_unlock(&C.mu);
}

static void
test_msg(void)
{
	nlm4_lockargs a;
	nlm4_res r;
	int i, before = nlt_count(&C, NLT_PROG_NLM, NLMPROC4_LOCK_RES);

	memset(&a, 0, sizeof(a));
	a.cookie.nlm4_netobj_val = "msg1";
	a.cookie.nlm4_netobj_len = 4;
	a.exclusive = true;
	a.state = 1;
	nlt_lock_of(&a.alock, &A, file2.data.data_val, file2.data.data_len, 0,
		    10);
	CHECK_EQ(call(NLT_PROG_NLM, 4, NLMPROC4_LOCK_MSG,
		      (xdrproc_t)xdr_nlm4_lockargs, &a, NULL, NULL),
		 SUCCESS, "LOCK_MSG is answered with an empty reply");
	i = nlt_wait_call(&C, NLT_PROG_NLM, NLMPROC4_LOCK_RES, before);
	CHECK_FATAL(i >= 0, "and a LOCK_RES call to the client");
	memset(&r, 0, sizeof(r));
	CHECK(nlt_args(&C, i, (xdrproc_t)xdr_nlm4_res, &r) &&
		      r.stat.stat == NLM4_GRANTED &&
		      r.cookie.nlm4_netobj_len == 4 &&
		      memcmp(r.cookie.nlm4_netobj_val, "msg1", 4) == 0,
	      "carrying the cookie and NLM4_GRANTED");
	xdr_free((xdrproc_t)xdr_nlm4_res, (char *)&r);
	nlt_lock_of(&a.alock, &B, file2.data.data_val, file2.data.data_len, 5,
		    1);
	before = nlt_count(&C, NLT_PROG_NLM, NLMPROC4_TEST_RES);
	CHECK_EQ(call(NLT_PROG_NLM, 4, NLMPROC4_TEST_MSG,
		      (xdrproc_t)xdr_nlm4_testargs, &a, NULL, NULL),
		 SUCCESS, "TEST_MSG (the same fields as TEST's)");
	i = nlt_wait_call(&C, NLT_PROG_NLM, NLMPROC4_TEST_RES, before);
	CHECK(i >= 0, "answered by TEST_RES");
	before = nlt_count(&C, NLT_PROG_NLM, NLMPROC4_UNLOCK_RES);
	nlt_lock_of(&a.alock, &A, file2.data.data_val, file2.data.data_len, 0,
		    0);
	CHECK_EQ(call(NLT_PROG_NLM, 4, NLMPROC4_UNLOCK_MSG,
		      (xdrproc_t)xdr_nlm4_netobj, &a.cookie, NULL, NULL),
		 GARBAGE_ARGS, "UNLOCK_MSG with a cookie and no lock: garbage");
	{
		nlm4_unlockargs u;

		memset(&u, 0, sizeof(u));
		u.alock = a.alock;
		CHECK_EQ(call(NLT_PROG_NLM, 4, NLMPROC4_UNLOCK_MSG,
			      (xdrproc_t)xdr_nlm4_unlockargs, &u, NULL, NULL),
			 SUCCESS, "UNLOCK_MSG");
	}
	CHECK(nlt_wait_call(&C, NLT_PROG_NLM, NLMPROC4_UNLOCK_RES, before) >= 0,
	      "answered by UNLOCK_RES");
	{
		nlm4_res rr;

		memset(&rr, 0, sizeof(rr));
		rr.stat.stat = NLM4_GRANTED;
		CHECK_EQ(call(NLT_PROG_NLM, 4, NLMPROC4_GRANTED_RES,
			      (xdrproc_t)xdr_nlm4_res, &rr, NULL, NULL),
			 SUCCESS, "a GRANTED_RES nobody asked for: accepted");
	}
	CHECK(becomes_free(&D, &file2, 0, 10), "file2 is free again");
}

static void
test_shares(void)
{
	nlm4_shareargs a;
	nlm4_shareres r;
	uint32_t st;

	memset(&a, 0, sizeof(a));
	a.share.caller_name.caller_name_val = "pc";
	a.share.caller_name.caller_name_len = 2;
	a.share.fh.nlm4_netobj_val = file2.data.data_val;
	a.share.fh.nlm4_netobj_len = file2.data.data_len;
	a.share.oh.nlm4_netobj_val = "pc-1";
	a.share.oh.nlm4_netobj_len = 4;
	a.share.mode = NLM4_FSM_DW;
	a.share.access = NLM4_FSA_R;
	memset(&r, 0, sizeof(r));
	st = call(NLT_PROG_NLM, 4, NLMPROC4_SHARE,
		  (xdrproc_t)xdr_nlm4_shareargs, &a,
		  (xdrproc_t)xdr_nlm4_shareres, &r);
	CHECK(st == SUCCESS && r.stat == NLM4_GRANTED,
	      "SHARE read, deny write");
	xdr_free((xdrproc_t)xdr_nlm4_shareres, (char *)&r);
	a.share.oh.nlm4_netobj_val = "pc-2";
	a.share.mode = NLM4_FSM_DN;
	a.share.access = NLM4_FSA_RW;
	st = call(NLT_PROG_NLM, 4, NLMPROC4_SHARE,
		  (xdrproc_t)xdr_nlm4_shareargs, &a,
		  (xdrproc_t)xdr_nlm4_shareres, &r);
	CHECK(st == SUCCESS && r.stat == NLM4_DENIED, "a writer is denied (%d)",
	      (int)r.stat);
	xdr_free((xdrproc_t)xdr_nlm4_shareres, (char *)&r);
	a.share.oh.nlm4_netobj_val = "pc-1";
	st = call(NLT_PROG_NLM, 4, NLMPROC4_UNSHARE,
		  (xdrproc_t)xdr_nlm4_shareargs, &a,
		  (xdrproc_t)xdr_nlm4_shareres, &r);
	CHECK(st == SUCCESS && r.stat == NLM4_GRANTED, "UNSHARE");
	xdr_free((xdrproc_t)xdr_nlm4_shareres, (char *)&r);
	a.share.oh.nlm4_netobj_val = "pc-2";
	st = call(NLT_PROG_NLM, 4, NLMPROC4_SHARE,
		  (xdrproc_t)xdr_nlm4_shareargs, &a,
		  (xdrproc_t)xdr_nlm4_shareres, &r);
	CHECK(st == SUCCESS && r.stat == NLM4_GRANTED, "the writer fits now");
	xdr_free((xdrproc_t)xdr_nlm4_shareres, (char *)&r);
	st = call(NLT_PROG_NLM, 4, NLMPROC4_UNSHARE,
		  (xdrproc_t)xdr_nlm4_shareargs, &a,
		  (xdrproc_t)xdr_nlm4_shareres, &r);
	xdr_free((xdrproc_t)xdr_nlm4_shareres, (char *)&r);
}

/* FREE_ALL, and SM_NOTIFY over TCP and UDP. */
static void
test_client_gone(void)
{
	nlm4_notify n;
	nsm_stat_chge s;
	struct tl_buf b = TL_BUF_INIT;
	struct sockaddr_in sa;
	int u;

	lock(&B, &file1, 0, 1, true, false, false, 5);
	lock(&B2, &file2, 0, 1, true, false, false, 5);
	memset(&n, 0, sizeof(n));
	n.name.name_val = "hostB";
	n.name.name_len = 5;
	n.state = 5;
	CHECK_EQ(call(NLT_PROG_NLM, 4, NLMPROC4_FREE_ALL,
		      (xdrproc_t)xdr_nlm4_notify, &n, NULL, NULL),
		 SUCCESS, "FREE_ALL hostB");
	CHECK(becomes_free(&D, &file1, 0, 1) && becomes_free(&D, &file2, 0, 1),
	      "frees both of hostB's locks");

	/* a restart: locks of the old NSM state go, those of the new stay */
	lock(&B, &file1, 0, 1, true, false, false, 5);
	lock(&B2, &file2, 0, 1, true, false, false, 7);
	memset(&s, 0, sizeof(s));
	s.mon_name.mon_name_val = "hostB";
	s.mon_name.mon_name_len = 5;
	s.state = 7;
	CHECK_EQ(call(NLT_PROG_NSM, 1, NSMPROC_NOTIFY,
		      (xdrproc_t)xdr_nsm_stat_chge, &s, NULL, NULL),
		 SUCCESS, "SM_NOTIFY: hostB restarted, now in state 7");
	CHECK(becomes_free(&D, &file1, 0, 1),
	      "its lock taken in state 5 is dropped");
	CHECK_EQ(test(&D, &file2, 0, 1, true, NULL), NLM4_DENIED,
		 "its lock taken in state 7 stays");

	/* over UDP, as sm-notify sends it, and with a name the locks do
	 * not carry: the sender's address finds the client */
	s.state = 9;
	s.mon_name.mon_name_val = "hostB.example.com";
	s.mon_name.mon_name_len = 17;
	tcall_encode(&b, ++xid, NLT_PROG_NSM, 1, NSMPROC_NOTIFY,
		     (xdrproc_t)xdr_nsm_stat_chge, &s);
	u = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)T.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(sendto(u, b.data + 4, b.len - 4, 0, (struct sockaddr *)&sa,
		     sizeof(sa)) == (ssize_t)(b.len - 4),
	      "SM_NOTIFY over UDP");
	{
		uint8_t rep[256];
		ssize_t got = recv(u, rep, sizeof(rep), 0);

		CHECK(got >= 24 && tl_get_be32(rep) == xid &&
			      tl_get_be32(rep + 20) == SUCCESS,
		      "answered over UDP");
	}
	CHECK(becomes_free(&D, &file2, 0, 1),
	      "hostB's lock of state 7 is dropped (found by address)");
	/* other programs over UDP are not answered */
	tcall_encode(&b, ++xid, NFSD_PROG_NFS, 3, 0, NULL, NULL);
	sendto(u, b.data + 4, b.len - 4, 0, (struct sockaddr *)&sa, sizeof(sa));
	tcall_encode(&b, ++xid, NLT_PROG_NSM, 1, NSMPROC_NULL, NULL, NULL);
	sendto(u, b.data + 4, b.len - 4, 0, (struct sockaddr *)&sa, sizeof(sa));
	{
		uint8_t rep[256];
		ssize_t got = recv(u, rep, sizeof(rep), 0);

		CHECK(got >= 24 && tl_get_be32(rep) == xid,
		      "NFS over UDP gets no answer, NSM NULL after it does");
	}
	close(u);
	tl_buf_free(&b);
}

static void
test_bad_input(void)
{
	nlm4_lockargs a;
	nfs_fh3 bad;
	uint8_t junk[41];
	struct tl_buf b = TL_BUF_INIT;
	char *big = tl_malloc(2048);

	memset(junk, 0x5a, sizeof(junk));
	bad.data.data_val = (char *)junk;
	bad.data.data_len = sizeof(junk);
	CHECK_EQ(lock(&A, &bad, 0, 1, true, false, false, 1), NLM4_STALE_FH,
		 "a forged handle: NLM4_STALE_FH");
	bad.data.data_len = 3;
	CHECK_EQ(lock(&A, &bad, 0, 1, true, false, false, 1), NLM4_STALE_FH,
		 "a 3-byte handle: NLM4_STALE_FH");
	CHECK_EQ(unlock(&A, &bad, 0, 1), NLM4_STALE_FH,
		 "UNLOCK with a forged handle: NLM4_STALE_FH");
	CHECK_EQ(lock(&A, &dir1, 0, 1, true, false, false, 1), NLM4_FAILED,
		 "a lock on a directory: NLM4_FAILED");
	CHECK_EQ(lock(&A, &file1, UINT64_MAX - 5, 10, true, false, false, 1),
		 NLM4_FBIG, "a range past 2^64: NLM4_FBIG");
	CHECK_EQ(lock(&A, &file1, UINT64_MAX - 5, 6, true, false, false, 1),
		 NLM4_GRANTED, "a range ending exactly at 2^64 is to EOF");
	unlock(&A, &file1, 0, 0);

	memset(big, 'x', 2048);
	memset(&a, 0, sizeof(a));
	nlt_lock_of(&a.alock, &A, file1.data.data_val, file1.data.data_len, 0,
		    1);
	/* by hand: a cookie announcing 1025 bytes */
	{
		uint8_t raw[1200];
		uint32_t w[] = {0, ++xid, 0, 2, NLT_PROG_NLM, 4, NLMPROC4_LOCK,
				0, 0,     0, 0, 1025};

		memset(raw, 0, sizeof(raw));
		for (size_t i = 0; i < TL_ARRAY_SIZE(w); i++)
			tl_put_be32(raw + 4 * i, w[i]);
		tl_put_be32(raw, 0x80000000u | (uint32_t)(sizeof(raw) - 4));
		tl_buf_reset(&b);
		tl_buf_append(&b, raw, sizeof(raw));
		CHECK_EQ(tcall(fd, &b, NULL, NULL, NULL), GARBAGE_ARGS,
			 "a cookie longer than 1024 bytes: GARBAGE_ARGS");
	}
	a.cookie.nlm4_netobj_val = "ck";
	a.cookie.nlm4_netobj_len = 2;
	a.alock.caller_name.caller_name_val = big;
	a.alock.caller_name.caller_name_len = 1024;
	CHECK_EQ(nlm_res_call(NLMPROC4_LOCK, (xdrproc_t)xdr_nlm4_lockargs, &a),
		 NLM4_GRANTED, "a 1024-byte client name is fine");
	{
		nlm4_unlockargs u;

		memset(&u, 0, sizeof(u));
		u.alock = a.alock;
		nlm_res_call(NLMPROC4_UNLOCK, (xdrproc_t)xdr_nlm4_unlockargs,
			     &u);
	}
	/* a truncated call: the header and half a lock */
	tcall_encode(&b, ++xid, NLT_PROG_NLM, 4, NLMPROC4_LOCK,
		     (xdrproc_t)xdr_nlm4_lockargs, &a);
	b.len -= 40;
	tl_put_be32(b.data, 0x80000000u | (uint32_t)(b.len - 4));
	CHECK_EQ(tcall(fd, &b, NULL, NULL, NULL), GARBAGE_ARGS,
		 "a LOCK cut short: GARBAGE_ARGS");
	CHECK_EQ(call(NLT_PROG_NLM, 4, NLMPROC4_GRANTED,
		      (xdrproc_t)xdr_nlm4_testargs, &a, NULL, NULL),
		 SUCCESS, "GRANTED sent to the server is answered");
	CHECK_EQ(call(NLT_PROG_NLM, 4, NLMPROC4_NULL, NULL, NULL, NULL, NULL),
		 SUCCESS, "and the server still serves");
	CHECK_EQ(test(&D, &file1, 0, 0, true, NULL), NLM4_GRANTED,
		 "nothing was left locked by all that");
	tl_buf_free(&b);
	free(big);
}

/* A client floods: its locks and blocked requests are bounded. */
static void
test_flood(void)
{
	const struct nlt_owner F = {"flood", 1, "f"};
	int granted = 0, nolocks = 0, blocked = 0, refused = 0;

	for (uint64_t i = 0; i < 60; i++) {
		int st = lock(&F, &file2, 2 * i, 1, true, false, false, 1);

		granted += st == NLM4_GRANTED;
		nolocks += st == NLM4_DENIED_NOLOCKS;
	}
	CHECK(granted == (int)cfg.max_locks_per_client &&
		      nolocks == 60 - granted,
	      "60 separate ranges, %llu per client: %d granted, %d "
	      "NLM4_DENIED_NOLOCKS",
	      (unsigned long long)cfg.max_locks_per_client, granted, nolocks);
	lock(&A, &file1, 0, 0, true, false, false, 1);
	for (int i = 0; i < 20; i++) {
		struct nlt_owner o = {"flood", 100 + i, "g"};
		int st = lock(&o, &file1, (uint64_t)i, 1, true, true, false, 1);

		blocked += st == NLM4_BLOCKED;
		refused += st == NLM4_DENIED_NOLOCKS;
	}
	CHECK(blocked == (int)cfg.max_lock_waiters / 4 &&
		      refused == 20 - blocked,
	      "blocked requests of one client: %d kept (a quarter of %llu), "
	      "%d NLM4_DENIED_NOLOCKS",
	      blocked, (unsigned long long)cfg.max_lock_waiters, refused);
	for (int i = 0; i < 20; i++) {
		struct nlt_owner o = {"flood", 100 + i, "g"};

		cancel(&o, &file1, (uint64_t)i, 1, true);
	}
	CHECK_EQ(stats().waiters, 0, "cancelled");
	unlock(&A, &file1, 0, 0);
	CHECK_EQ(lock(&F, &file2, 1000, 1, true, false, false, 1),
		 NLM4_DENIED_NOLOCKS, "still full");
	{
		nlm4_notify n = {{5, "flood"}, 1};

		call(NLT_PROG_NLM, 4, NLMPROC4_FREE_ALL,
		     (xdrproc_t)xdr_nlm4_notify, &n, NULL, NULL);
	}
	CHECK(becomes_free(&D, &file2, 0, 0), "FREE_ALL empties it");
}

/* ---- restarts --------------------------------------------------------------- */

/* Another gateway of the volume goes away while this one serves: this
 * one adopts that gateway's client, tells it to reclaim, and keeps
 * granting, protecting only the adopted client's unreclaimed lock. */
static void
test_failover(void)
{
	const struct nlt_owner F = {"hostF", 66, "66@hostF"};
	struct meta_session_keeper *other;
	struct meta_lock_where where = {"127.0.0.1", "127.0.0.1", 0, 3};
	struct meta_lock_result res;
	struct meta_lock_req q;
	uint64_t ino = 0, adopted0 = stats().adopted;
	int i, n0 = nlt_count(&C, NLT_PROG_NSM, NSMPROC_NOTIFY);
	struct nfsd_fh h;

	CHECK_FATAL(meta_session_start(T.m, "127.0.0.2:2049", "test", 60,
				       &other) == 0,
		    "another gateway of the volume starts");
	for (i = 0; i < 600 && stats().gateways == 0; i++)
		usleep(50000); /* the lock manager looks every 5 s */
	CHECK_FATAL(stats().gateways == 1, "this gateway sees it live");
	/* a client of the other gateway takes a lock there */
	CHECK_FATAL(nfsd_fh_decode(T.srv->ctx.vol, file2.data.data_val,
				   file2.data.data_len, &h) == 0,
		    "file2's inode");
	ino = h.ino;
	memset(&q, 0, sizeof(q));
	q.owner.client = F.host;
	q.owner.client_len = strlen(F.host);
	q.owner.svid = (uint32_t)F.svid;
	q.owner.oh = F.oh;
	q.owner.oh_len = strlen(F.oh);
	q.start = 0;
	q.end = 100;
	q.exclusive = true;
	where.session = meta_session_id(other);
	q.where = &where;
	q.max_client = 1000;
	q.max_total = 1000;
	CHECK_FATAL(meta_lock(T.m, ino, &q, &res) == 0,
		    "hostF holds [0,100) of file2 through the other gateway");
	CHECK_EQ(lock(&D, &file2, 10, 1, true, false, false, 1), NLM4_DENIED,
		 "which conflicts here");
	meta_session_stop(other); /* it goes away */
	i = nlt_wait_call(&C, NLT_PROG_NSM, NSMPROC_NOTIFY, n0);
	CHECK_FATAL(i >= 0, "this gateway tells hostF to reclaim (SM_NOTIFY)");
	for (i = 0; i < 600 && stats().adopted == adopted0; i++)
		usleep(50000); /* counted once all are told */
	CHECK_EQ(stats().adopted, adopted0 + 1, "having adopted it");
	CHECK(!stats().grace, "and keeps granting");
	CHECK_EQ(lock(&D, &file2, 200, 1, true, false, false, 1), NLM4_GRANTED,
		 "a lock elsewhere is granted");
	CHECK_EQ(lock(&D, &file2, 10, 1, true, false, false, 1),
		 NLM4_DENIED_GRACE_PERIOD,
		 "one that meets hostF's unreclaimed lock: grace period");
	CHECK_EQ(lock(&F, &file2, 0, 100, true, false, true, 3), NLM4_GRANTED,
		 "hostF reclaims its lock here");
	CHECK_EQ(lock(&D, &file2, 10, 1, true, false, false, 1), NLM4_DENIED,
		 "now it is simply held");
	CHECK_EQ(unlock(&F, &file2, 0, 0), NLM4_GRANTED, "hostF unlocks");
	CHECK_EQ(unlock(&D, &file2, 0, 0), NLM4_GRANTED, "D unlocks");
	CHECK(becomes_free(&A, &file2, 0, 0), "file2 is free");
}

static struct meta_session_keeper *keeper;

/* Stop the server and start it again on the same port and volume, as
 * gateway session fresh; crash: the old session record is left live
 * (a killed gateway's stays until it expires), else removed. */
static void
restart(bool crash, struct meta_session_keeper **old)
{
	char *err = NULL, *addr;
	int rc;

	close(fd);
	nfsd_server_stop(T.srv);
	pthread_join(T.thr, NULL);
	nfsd_server_free(T.srv);
	if (!crash) {
		meta_session_stop(keeper);
		*old = NULL;
	} else {
		*old = keeper;
	}
	free(cfg.listen);
	cfg.listen = tl_asprintf("127.0.0.1:%u", T.port);
	rc = nfsd_server_create(&cfg, T.m, T.c, &T.srv, &err);
	CHECK_FATAL(rc == 0, "the server starts again (%s)", err ? err : "");
	free(err);
	pthread_create(&T.thr, NULL, tsrv_run, &T);
	addr = tl_asprintf("127.0.0.1:%u", T.port);
	rc = meta_session_start(T.m, addr, "test", 60, &keeper);
	free(addr);
	CHECK_FATAL(rc == 0, "a new gateway session");
	CHECK_FATAL(nfsd_server_locks_start(T.srv, meta_session_id(keeper)) ==
			    0,
		    "NFS locking starts");
	fd = tdial(T.port);
	CHECK_FATAL(fd >= 0, "reconnected");
}

static bool
grace_ends(void)
{
	for (int i = 0; i < 600; i++) {
		if (!stats().grace)
			return true;
		usleep(50000);
	}
	return false;
}

static void
test_restart(void)
{
	struct meta_session_keeper *old;
	nsm_stat_chge s;
	int i, n0 = nlt_count(&C, NLT_PROG_NSM, NSMPROC_NOTIFY);
	int32_t state0 = nfsd_nlm_nsm_state(T.srv->ctx.nlm);

	CHECK_EQ(lock(&A, &file1, 0, 10, true, false, false, 1), NLM4_GRANTED,
		 "A holds [0,10)");
	CHECK_EQ(lock(&B, &file1, 20, 10, false, false, false, 1), NLM4_GRANTED,
		 "B holds [20,30) shared");
	restart(true, &old);
	i = nlt_wait_call(&C, NLT_PROG_NSM, NSMPROC_NOTIFY, n0);
	CHECK_FATAL(i >= 0, "after a crash and a restart, SM_NOTIFY reaches "
			    "the clients' host");
	memset(&s, 0, sizeof(s));
	CHECK(nlt_args(&C, i, (xdrproc_t)xdr_nsm_stat_chge, &s) &&
		      s.mon_name.mon_name_len == 9 &&
		      memcmp(s.mon_name.mon_name_val, "127.0.0.1", 9) == 0,
	      "naming the gateway as the client knows it (127.0.0.1)");
	CHECK(s.state % 2 == 1 && s.state > state0,
	      "with a new, odd NSM state (%d after %d)", s.state, state0);
	xdr_free((xdrproc_t)xdr_nsm_stat_chge, (char *)&s);
	CHECK(stats().grace, "the gateway is in its grace period");
	CHECK_EQ(lock(&D, &file2, 0, 1, true, false, false, 1),
		 NLM4_DENIED_GRACE_PERIOD, "a new lock: grace period");
	CHECK_EQ(test(&D, &file2, 0, 1, true, NULL), NLM4_DENIED_GRACE_PERIOD,
		 "TEST: grace period");
	CHECK_EQ(unlock(&D, &file2, 0, 1), NLM4_GRANTED,
		 "UNLOCK is served in the grace period");
	CHECK_EQ(lock(&A, &file1, 0, 10, true, false, true, 1), NLM4_GRANTED,
		 "A reclaims its lock");
	CHECK(grace_ends(), "the grace ends (B did not reclaim in time)");
	CHECK_EQ(lock(&D, &file1, 0, 1, true, false, false, 1), NLM4_DENIED,
		 "A's reclaimed lock is held");
	CHECK_EQ(lock(&D, &file1, 20, 10, true, false, false, 1), NLM4_GRANTED,
		 "B's lock, not reclaimed after it was told, is gone");
	unlock(&D, &file1, 0, 0);
	meta_session_stop(old);

	/* a clean restart, a long grace: it ends once A reclaimed */
	cfg.lock_grace = 600000;
	n0 = nlt_count(&C, NLT_PROG_NSM, NSMPROC_NOTIFY);
	restart(false, &old);
	CHECK(nlt_wait_call(&C, NLT_PROG_NSM, NSMPROC_NOTIFY, n0) >= 0,
	      "after a clean restart too, SM_NOTIFY");
	CHECK(stats().grace, "grace period");
	CHECK_EQ(lock(&A, &file1, 0, 10, true, false, true, 1), NLM4_GRANTED,
		 "A reclaims");
	CHECK(grace_ends(), "the grace ends at once: all is reclaimed");
	CHECK_EQ(lock(&D, &file1, 0, 1, true, false, false, 1), NLM4_DENIED,
		 "A holds its lock");
	unlock(&A, &file1, 0, 0);
}

/* ---- behind a load balancer ------------------------------------------------
 */

/* A connection to the server from 127.0.0.5 (not the client host) that
 * begins with the PROXY header hdr (len bytes). */
static int
dial_proxied(const void *hdr, size_t len)
{
	struct sockaddr_in sa;
	struct timeval tv = {20, 0};
	int s = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(0x7f000005);
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(s);
		return -1;
	}
	sa.sin_port = htons(T.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    write(s, hdr, len) != (ssize_t)len) {
		close(s);
		return -1;
	}
	return s;
}

/* "PROXY TCP4 127.0.0.1 127.0.0.3 ...": the client host (127.0.0.1,
 * where the fake one listens) through the balancer's 127.0.0.3. */
static const char proxy_v1[] = "PROXY TCP4 127.0.0.1 127.0.0.3 40001 2049\r\n";
static const uint8_t proxy_v2[28] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a,
				     0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11,
				     0x00, 0x0c, 127,  0,    0,    1,    127,
				     0,    0,    3,    0x9c, 0x42, 0x08, 0x01};

static void
test_proxy_parse(void)
{
	struct sockaddr_storage src, dst;
	char a[INET6_ADDRSTRLEN];
	uint8_t v2[40];
	bool proxied;
	int rc;

	rc = nfsd_proxy_parse((const uint8_t *)proxy_v1, 20, &proxied, &src,
			      &dst);
	CHECK_EQ(rc, 0, "a v1 header cut short: more bytes needed");
	rc = nfsd_proxy_parse((const uint8_t *)proxy_v1, strlen(proxy_v1),
			      &proxied, &src, &dst);
	nfsd_peer_str(&src, a, sizeof(a));
	CHECK(rc == (int)strlen(proxy_v1) && proxied &&
		      strcmp(a, "127.0.0.1") == 0 &&
		      nfsd_peer_port(&src) == 40001 &&
		      nfsd_peer_port(&dst) == 2049,
	      "v1: its length, the client's address and port (%d, %s)", rc, a);
	rc = nfsd_proxy_parse(
		(const uint8_t *)"PROXY TCP6 ::1 2001:db8::3 1 2049\r\nxyz", 38,
		&proxied, &src, &dst);
	nfsd_peer_str(&dst, a, sizeof(a));
	CHECK(rc == 35 && proxied && src.ss_family == AF_INET6 &&
		      strcmp(a, "2001:db8::3") == 0,
	      "v1 over IPv6, bytes after it left (%d, %s)", rc, a);
	rc = nfsd_proxy_parse((const uint8_t *)"PROXY UNKNOWN\r\n", 15,
			      &proxied, &src, &dst);
	CHECK(rc == 15 && !proxied, "v1 UNKNOWN: nothing proxied");
	{
		static const char *const bad[] = {
			"PROXY TCP4 1.2.3.4 x 1 2\r\n",
			"PROXY TCP4 1.2.3.4 1.2.3.5 1 65536\r\n",
			"PROXY TCP4 1.2.3.4 1.2.3.5 01 2\r\n",
			"PROXY TCP4 1.2.3.4 1.2.3.5 1\r\n",
			"PROXY UDP4 1.2.3.4 1.2.3.5 1 2\r\n",
		};

		for (size_t k = 0; k < TL_ARRAY_SIZE(bad); k++)
			CHECK_EQ(nfsd_proxy_parse((const uint8_t *)bad[k],
						  strlen(bad[k]), &proxied,
						  &src, &dst),
				 -1, "v1 refused: %.*s",
				 (int)strlen(bad[k]) - 2, bad[k]);
	}
	CHECK_EQ(nfsd_proxy_parse((const uint8_t *)"\x80\0\0\x28", 4, &proxied,
				  &src, &dst),
		 -1, "an RPC record mark: refused");
	memset(v2, 'a', sizeof(v2));
	memcpy(v2, "PROXY ", 6);
	CHECK_EQ(nfsd_proxy_parse(v2, sizeof(v2), &proxied, &src, &dst), 0,
		 "v1 without its end yet: more needed...");
	{
		uint8_t longer[120];

		memset(longer, 'a', sizeof(longer));
		memcpy(longer, "PROXY ", 6);
		CHECK_EQ(nfsd_proxy_parse(longer, sizeof(longer), &proxied,
					  &src, &dst),
			 -1, "...but not past 107 bytes");
	}
	CHECK_EQ(nfsd_proxy_parse(proxy_v2, 27, &proxied, &src, &dst), 0,
		 "v2 cut short: more needed");
	rc = nfsd_proxy_parse(proxy_v2, sizeof(proxy_v2), &proxied, &src, &dst);
	nfsd_peer_str(&dst, a, sizeof(a));
	CHECK(rc == 28 && proxied && strcmp(a, "127.0.0.3") == 0 &&
		      nfsd_peer_port(&src) == 40002,
	      "v2 TCP over IPv4 (%d, %s)", rc, a);
	memcpy(v2, proxy_v2, 16);
	v2[12] = 0x20; /* LOCAL */
	v2[13] = 0;
	v2[15] = 0;
	rc = nfsd_proxy_parse(v2, 16, &proxied, &src, &dst);
	CHECK(rc == 16 && !proxied, "v2 LOCAL (a health check): nothing "
				    "proxied");
	v2[12] = 0x31;
	CHECK_EQ(nfsd_proxy_parse(v2, 16, &proxied, &src, &dst), -1,
		 "v2 of another version: refused");
	memcpy(v2, proxy_v2, 16);
	v2[14] = 0xff;
	CHECK_EQ(nfsd_proxy_parse(v2, 16, &proxied, &src, &dst), -1,
		 "v2 longer than the gateway takes: refused");
}

/* proxy_protocol on: the client is who the header names.  Its blocked
 * lock is granted by a callback to the client host (not to the
 * balancer's address the connection came from) from the address the
 * client reached (the balancer's); after a crash and a restart,
 * SM_NOTIFY goes to it from there too and names the balancer's
 * address, the one the client monitors. */
static void
test_proxied(void)
{
	struct meta_session_keeper *old;
	nsm_stat_chge s;
	nlm4_testargs g;
	int i, n0, raw;

	cfg.proxy_protocol = true;
	cfg.lock_grace = 600000;
	restart(false, &old);
	CHECK(grace_ends(), "no grace: nothing was held");
	close(fd);
	fd = dial_proxied(proxy_v1, strlen(proxy_v1));
	CHECK_FATAL(fd >= 0, "connected from 127.0.0.5 with a v1 header");
	CHECK_EQ(lock(&A, &file1, 0, 10, true, false, false, 1), NLM4_GRANTED,
		 "A locks [0,10) through the balancer");
	CHECK_EQ(lock(&B, &file1, 0, 10, true, true, false, 1), NLM4_BLOCKED,
		 "B's blocking LOCK: BLOCKED");
	n0 = nlt_count(&C, NLT_PROG_NLM, NLMPROC4_GRANTED);
	CHECK_EQ(unlock(&A, &file1, 0, 10), NLM4_GRANTED, "A unlocks");
	i = nlt_wait_call(&C, NLT_PROG_NLM, NLMPROC4_GRANTED, n0);
	CHECK_FATAL(i >= 0, "GRANTED reaches the client host the header "
			    "names");
	memset(&g, 0, sizeof(g));
	CHECK(nlt_args(&C, i, (xdrproc_t)xdr_nlm4_testargs, &g) &&
		      g.alock.svid == 22,
	      "B's GRANTED");
	xdr_free((xdrproc_t)xdr_nlm4_testargs, (char *)&g);
	CHECK(strcmp(C.calls[i].from, "127.0.0.3") == 0,
	      "from the balancer's address, the one the client reached (%s)",
	      C.calls[i].from);
	CHECK_EQ(lock(&B, &file1, 0, 10, true, false, false, 1), NLM4_GRANTED,
		 "B holds it");

	/* the gateway crashes; its successor notifies through the
	 * balancer's address */
	n0 = nlt_count(&C, NLT_PROG_NSM, NSMPROC_NOTIFY);
	restart(true, &old);
	close(fd);
	fd = dial_proxied(proxy_v2, sizeof(proxy_v2));
	CHECK_FATAL(fd >= 0, "connected with a v2 header");
	i = nlt_wait_call(&C, NLT_PROG_NSM, NSMPROC_NOTIFY, n0);
	CHECK_FATAL(i >= 0, "SM_NOTIFY reaches the client host");
	memset(&s, 0, sizeof(s));
	CHECK(nlt_args(&C, i, (xdrproc_t)xdr_nsm_stat_chge, &s) &&
		      s.mon_name.mon_name_len == 9 &&
		      memcmp(s.mon_name.mon_name_val, "127.0.0.3", 9) == 0 &&
		      strcmp(C.calls[i].from, "127.0.0.3") == 0,
	      "naming the balancer's address, and sent from it (%s)",
	      C.calls[i].from);
	xdr_free((xdrproc_t)xdr_nsm_stat_chge, (char *)&s);
	CHECK_EQ(lock(&D, &file1, 0, 1, true, false, false, 1),
		 NLM4_DENIED_GRACE_PERIOD, "grace period");
	CHECK_EQ(lock(&B, &file1, 0, 10, true, false, true, 1), NLM4_GRANTED,
		 "B reclaims its lock");
	CHECK(grace_ends(), "the grace ends: all is reclaimed");
	CHECK_EQ(lock(&D, &file1, 0, 1, true, false, false, 1), NLM4_DENIED,
		 "B holds it");
	CHECK_EQ(unlock(&B, &file1, 0, 0), NLM4_GRANTED, "B unlocks");
	meta_session_stop(old);

	/* a call without the header first: the connection is closed */
	raw = fd;
	fd = tdial(T.port);
	CHECK_FATAL(fd >= 0, "a connection without a PROXY header");
	CHECK(lock(&D, &file1, 0, 1, true, false, false, 1) == -1,
	      "its call is not answered: closed");
	close(fd);
	fd = raw;
	CHECK_EQ(lock(&D, &file1, 0, 1, true, false, false, 1), NLM4_GRANTED,
		 "the server serves on");
	unlock(&D, &file1, 0, 0);
}

int
main(void)
{
	char *addr;

	if (geteuid() != 0 || !nlt_private_net()) {
		printf("1..0 # SKIP needs root for a network namespace\n");
		return 77;
	}
	CHECK_FATAL(nlt_client_start(&C, LOCKD_PORT),
		    "the fake client host listens on 111 and %d", LOCKD_PORT);
	nfsd_config_defaults(&cfg);
	cfg.lock_grace = 3000;
	cfg.lock_poll = 100;
	cfg.lock_callback_window = 2000;
	cfg.max_locks_per_client = 50;
	cfg.max_lock_waiters = 16;
	tsrv_start(&T, &cfg);
	addr = tl_asprintf("127.0.0.1:%u", T.port);
	CHECK_FATAL(meta_session_start(T.m, addr, "test", 60, &keeper) == 0,
		    "a gateway session");
	free(addr);
	CHECK_FATAL(nfsd_server_locks_start(T.srv, meta_session_id(keeper)) ==
			    0,
		    "NFS locking starts");
	fd = tdial(T.port);
	CHECK_FATAL(fd >= 0, "connected");
	CHECK_FATAL(create("f1", &file1) == NFS3_OK &&
			    create("f2", &file2) == NFS3_OK,
		    "two files");
	{
		nfs_fh3 root;

		memset(&root, 0, sizeof(root));
		CHECK_FATAL(tmnt(fd, "/", &root) == MNT3_OK, "root handle");
		tfh_copy(&dir1, &root);
		free(root.data.data_val);
	}
	test_basics();
	test_blocked();
	test_cancel();
	test_callback_failures();
	test_msg();
	test_shares();
	test_client_gone();
	test_bad_input();
	test_flood();
	test_failover();
	test_restart();
	test_proxy_parse();
	test_proxied();
	close(fd);
	meta_session_stop(keeper);
	tsrv_stop(&T);
	nlt_client_stop(&C);
	nfsd_config_free(&cfg);
	free(file1.data.data_val);
	free(file2.data.data_val);
	free(dir1.data.data_val);
	return tap_done();
}
