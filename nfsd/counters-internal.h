/*
 * counters-internal.h - the counters the transport and the dispatcher
 * bump (rpc.c, dispatch.c; counters.c), which the metrics endpoint
 * (metrics-internal.h) renders.
 *
 * Counters are process-wide relaxed atomics: the request path adds to
 * them without a lock and without ordering (a scrape may see one counter
 * a call ahead of another; Prometheus rates do not care).  Figures that
 * other modules already keep (the duplicate request cache, cache_stats,
 * the object-store wrappers, meta_usage) are read when /metrics is
 * fetched, never copied on the request path.
 *
 * Below the transport and the dispatcher: this file includes no other
 * header of nfsd/, and counters.c only nfsd-internal.h (the program
 * numbers).  Nothing outside nfsd/ includes this file.
 */
#ifndef NFSD_COUNTERS_INTERNAL_H
#define NFSD_COUNTERS_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Room per program; NFS v3 has 22 procedures, MOUNT 6, NLM v4 24
 * (numbers 16 to 19 unused), NSM 7 (of which the gateway serves NULL,
 * STAT and NOTIFY); calls of others are counted as RPC errors. */
#define NFSD_M_PROCS     24
#define NFSD_M_NFS_PROCS 22
#define NFSD_M_MNT_PROCS 6
#define NFSD_M_NLM_PROCS 24
#define NFSD_M_NSM_PROCS 7
/* Finite latency buckets; the last slot counts what is above them. */
#define NFSD_M_BUCKETS 16
/* nfsstat3 values with a name (plus one slot for any other). */
#define NFSD_M_NSTATUS 30
/* nlm4_stats values (0 to 9, NLM4_GRANTED to NLM4_FAILED), counted in
 * the first status slots of an NLM procedure (others in the last). */
#define NFSD_M_NLM_NSTATUS 10

enum nfsd_m_prog {
	NFSD_M_NFS,
	NFSD_M_MOUNT,
	NFSD_M_NLM,
	NFSD_M_NSM,
	NFSD_M_NPROG
};

/* Calls refused at the RPC level (no procedure ran). */
enum nfsd_m_rpc_err {
	NFSD_M_ERR_MALFORMED,    /* not a call / truncated: no reply */
	NFSD_M_ERR_RPC_MISMATCH, /* RPC version */
	NFSD_M_ERR_AUTH,         /* AUTH_BADCRED */
	NFSD_M_ERR_PROG_UNAVAIL,
	NFSD_M_ERR_PROG_MISMATCH,
	NFSD_M_ERR_PROC_UNAVAIL,
	NFSD_M_ERR_GARBAGE_ARGS,
	NFSD_M_ERR_SYSTEM, /* reply could not be encoded */
	NFSD_M_ERR_COUNT
};

/* Why connections closed (rpc.c conn_close's reasons, named by
 * nfsd_m_close_names). */
enum nfsd_m_close {
	NFSD_M_CLOSE_EOF,   /* the client hung up */
	NFSD_M_CLOSE_RESET, /* or reset the connection: routine too */
	NFSD_M_CLOSE_ERROR, /* any other recv or send error */
	NFSD_M_CLOSE_IDLE,
	NFSD_M_CLOSE_STALLED, /* held request memory without progress */
	NFSD_M_CLOSE_MAXCONN, /* made room for a new connection */
	NFSD_M_CLOSE_TOO_LARGE,
	NFSD_M_CLOSE_SHUTDOWN,
	NFSD_M_CLOSE_OTHER,
	NFSD_M_CLOSE_COUNT
};

typedef atomic_uint_fast64_t nfsd_m_counter;

struct nfsd_m_proc {
	nfsd_m_counter calls;                   /* received, replays too */
	nfsd_m_counter lat[NFSD_M_BUCKETS + 1]; /* runs, not cumulative */
	nfsd_m_counter lat_sum_ns;
	nfsd_m_counter status[NFSD_M_NSTATUS]; /* NFS replies by nfsstat3,
						  NLM's by nlm4_stats */
};

struct nfsd_m_counters {
	struct nfsd_m_proc proc[NFSD_M_NPROG][NFSD_M_PROCS];
	nfsd_m_counter rpc_err[NFSD_M_ERR_COUNT];
	nfsd_m_counter conn_accepted;
	nfsd_m_counter conn_closed[NFSD_M_CLOSE_COUNT];
	atomic_int_fast64_t conn_open;
	nfsd_m_counter rx_bytes, tx_bytes; /* RPC records in, replies out */
	atomic_int_fast64_t req_open;      /* requests read, not answered */
	atomic_int_fast64_t mem_bytes;     /* request memory held (rpc.c) */
};

extern struct nfsd_m_counters nfsd_m;

static inline void
nfsd_m_inc(nfsd_m_counter *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static inline void
nfsd_m_add(nfsd_m_counter *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* A record of len bytes was read and handed to a worker (rpc.c)... */
static inline void
nfsd_m_request_in(size_t len)
{
	nfsd_m_add(&nfsd_m.rx_bytes, len);
	atomic_fetch_add_explicit(&nfsd_m.req_open, 1, memory_order_relaxed);
}

/* ...and is done with. */
static inline void
nfsd_m_request_done(size_t len)
{
	(void)len;
	atomic_fetch_sub_explicit(&nfsd_m.req_open, 1, memory_order_relaxed);
}

/* The request memory the transport holds changed by delta bytes. */
static inline void
nfsd_m_memory(int64_t delta)
{
	atomic_fetch_add_explicit(&nfsd_m.mem_bytes, delta,
				  memory_order_relaxed);
}

static inline void
nfsd_m_rpc_error(enum nfsd_m_rpc_err e)
{
	nfsd_m_inc(&nfsd_m.rpc_err[e]);
}

/* A call of prog/proc (NFSD_PROG_*) was received; one that ran took ns
 * nanoseconds (dispatch.c).  Unknown programs and procedures are
 * ignored: they are counted as RPC errors. */
void nfsd_m_call(uint32_t prog, uint32_t proc);
void nfsd_m_call_done(uint32_t prog, uint32_t proc, uint64_t ns);
/* An NFS procedure answered status (an nfsstat3). */
void nfsd_m_nfs_status(uint32_t proc, uint32_t status);
/* An NLM procedure answered status (an nlm4_stats; the _MSG forms in
 * their _RES call). */
void nfsd_m_nlm_status(uint32_t proc, uint32_t status);
/* Connections (rpc.c, loop thread). */
void nfsd_m_conn_opened(void);
/* why: one of nfsd_m_close_names (anything else counts as "other"). */
void nfsd_m_conn_closed(const char *why);

/* Bytes read and written through each export, since the process
 * started (READ and WRITE replies that answered NFS3_OK: the count of
 * the reply).  A table of NFSD_M_EXPORTS exports by export id, whose
 * path is recorded when the id is first seen; further exports are not
 * counted (logged once).  The billing job (billing.c) reads it. */
#define NFSD_M_EXPORTS 256
struct nfsd_m_export {
	atomic_bool used; /* id and path are set (release) */
	uint32_t id;
	char *path;
	nfsd_m_counter read, written;
};
void nfsd_m_export_io(uint32_t id, const char *path, uint64_t read,
		      uint64_t written);
/* The slots in use: *n of them, from slot 0 (they never go away). */
const struct nfsd_m_export *nfsd_m_exports(size_t *n);

/* Upper bounds of the finite latency buckets, in nanoseconds. */
extern const uint64_t nfsd_m_bucket_ns[NFSD_M_BUCKETS];
/* conn_close's reasons, indexed by enum nfsd_m_close. */
extern const char *const nfsd_m_close_names[NFSD_M_CLOSE_COUNT];

#endif /* NFSD_COUNTERS_INTERNAL_H */
