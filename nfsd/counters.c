/*
 * counters.c - the counters of the request path (counters-internal.h):
 * calls, their latency and NFS statuses per procedure, connections.
 * Any thread adds to them; metrics.c reads them when /metrics is
 * fetched.
 */
#include "config.h"

#include <pthread.h>
#include <string.h>

#include "nfsd/nfs3_status.h"
#include "nfsd/counters-internal.h"
#include "nfsd/nfsd-internal.h"

struct nfsd_m_counters nfsd_m;

/* 100 us to 10 s. */
const uint64_t nfsd_m_bucket_ns[NFSD_M_BUCKETS] = {
	100000,     250000,     500000,     1000000,     2500000,   5000000,
	10000000,   25000000,   50000000,   100000000,   250000000, 500000000,
	1000000000, 2500000000, 5000000000, 10000000000,
};

const char *const nfsd_m_close_names[NFSD_M_CLOSE_COUNT] = {
	[NFSD_M_CLOSE_EOF] = "eof",
	[NFSD_M_CLOSE_RESET] = "reset",
	[NFSD_M_CLOSE_ERROR] = "error",
	[NFSD_M_CLOSE_IDLE] = "idle",
	[NFSD_M_CLOSE_STALLED] = "stalled",
	[NFSD_M_CLOSE_MAXCONN] = "max_connections",
	[NFSD_M_CLOSE_TOO_LARGE] = "record too large",
	[NFSD_M_CLOSE_SHUTDOWN] = "shutdown",
	[NFSD_M_CLOSE_OTHER] = "other",
};

/* The status slots, in the order of the list metrics.c names them by. */
#define NFS_STATUS(s) s,
static const uint32_t nfs_status[] = {NFSD_NFS3_STATUSES(NFS_STATUS)};
#undef NFS_STATUS
/* The last status slot counts statuses not in the list ("other"). */
_Static_assert(TL_ARRAY_SIZE(nfs_status) == NFSD_M_NSTATUS - 1,
	       "NFSD_M_NSTATUS is the nfsstat3 list plus one");

static struct nfsd_m_proc *
proc_slot(uint32_t prog, uint32_t proc)
{
	if (prog == NFSD_PROG_NFS && proc < NFSD_M_NFS_PROCS)
		return &nfsd_m.proc[NFSD_M_NFS][proc];
	if (prog == NFSD_PROG_MOUNT && proc < NFSD_M_MNT_PROCS)
		return &nfsd_m.proc[NFSD_M_MOUNT][proc];
	if (prog == NFSD_PROG_NLM && proc < NFSD_M_NLM_PROCS)
		return &nfsd_m.proc[NFSD_M_NLM][proc];
	if (prog == NFSD_PROG_NSM && proc < NFSD_M_NSM_PROCS)
		return &nfsd_m.proc[NFSD_M_NSM][proc];
	return NULL;
}

void
nfsd_m_call(uint32_t prog, uint32_t proc)
{
	struct nfsd_m_proc *p = proc_slot(prog, proc);

	if (p != NULL)
		nfsd_m_inc(&p->calls);
}

void
nfsd_m_call_done(uint32_t prog, uint32_t proc, uint64_t ns)
{
	struct nfsd_m_proc *p = proc_slot(prog, proc);
	unsigned i = 0;

	if (p == NULL)
		return;
	while (i < NFSD_M_BUCKETS && ns > nfsd_m_bucket_ns[i])
		i++;
	nfsd_m_inc(&p->lat[i]);
	atomic_fetch_add_explicit(&p->lat_sum_ns, ns, memory_order_relaxed);
}

void
nfsd_m_nfs_status(uint32_t proc, uint32_t status)
{
	struct nfsd_m_proc *p = proc_slot(NFSD_PROG_NFS, proc);
	unsigned i = 0;

	if (p == NULL)
		return;
	while (i < TL_ARRAY_SIZE(nfs_status) && nfs_status[i] != status)
		i++;
	nfsd_m_inc(&p->status[i]); /* i == the "other" slot if unknown */
}

void
nfsd_m_nlm_status(uint32_t proc, uint32_t status)
{
	struct nfsd_m_proc *p = proc_slot(NFSD_PROG_NLM, proc);

	if (p != NULL)
		nfsd_m_inc(&p->status[status < NFSD_M_NLM_NSTATUS
					      ? status
					      : NFSD_M_NSTATUS - 1]);
}

void
nfsd_m_conn_opened(void)
{
	nfsd_m_inc(&nfsd_m.conn_accepted);
	atomic_fetch_add_explicit(&nfsd_m.conn_open, 1, memory_order_relaxed);
}

void
nfsd_m_conn_closed(const char *why)
{
	unsigned i = 0;

	while (i < NFSD_M_CLOSE_OTHER &&
	       strcmp(nfsd_m_close_names[i], why) != 0)
		i++;
	nfsd_m_inc(&nfsd_m.conn_closed[i]);
	atomic_fetch_sub_explicit(&nfsd_m.conn_open, 1, memory_order_relaxed);
}

/* ---- bytes per export ---------------------------------------------------- */

static struct nfsd_m_export exp_io[NFSD_M_EXPORTS];
static atomic_size_t exp_n;
static pthread_mutex_t exp_lock = PTHREAD_MUTEX_INITIALIZER;

static struct nfsd_m_export *
exp_find(uint32_t id, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (atomic_load_explicit(&exp_io[i].used,
					 memory_order_acquire) &&
		    exp_io[i].id == id)
			return &exp_io[i];
	return NULL;
}

void
nfsd_m_export_io(uint32_t id, const char *path, uint64_t read, uint64_t written)
{
	size_t n = atomic_load_explicit(&exp_n, memory_order_acquire);
	struct nfsd_m_export *e = exp_find(id, n);

	if (e == NULL) {
		pthread_mutex_lock(&exp_lock);
		n = atomic_load_explicit(&exp_n, memory_order_relaxed);
		e = exp_find(id, n);
		if (e == NULL && n < NFSD_M_EXPORTS) {
			e = &exp_io[n];
			e->id = id;
			e->path = tl_strdup(path);
			atomic_store_explicit(&e->used, true,
					      memory_order_release);
			atomic_store_explicit(&exp_n, n + 1,
					      memory_order_release);
		} else if (e == NULL && n == NFSD_M_EXPORTS) {
			tl_warn("nfsd",
				"more than %d exports: the bytes read "
				"and written through %s are not counted",
				NFSD_M_EXPORTS, path);
			atomic_store_explicit(&exp_n, n + 1,
					      memory_order_release);
		}
		pthread_mutex_unlock(&exp_lock);
		if (e == NULL)
			return;
	}
	if (read)
		nfsd_m_add(&e->read, read);
	if (written)
		nfsd_m_add(&e->written, written);
}

const struct nfsd_m_export *
nfsd_m_exports(size_t *n)
{
	*n = TL_MIN(atomic_load_explicit(&exp_n, memory_order_acquire),
		    (size_t)NFSD_M_EXPORTS);
	return exp_io;
}
