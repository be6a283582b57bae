/*
 * metrics.c - Prometheus metrics and the admin endpoint of tesserad.
 *
 * GET /metrics answers the text exposition format 0.0.4: every family has
 * its # HELP and # TYPE lines, names start with tessera_, carry their
 * unit (_bytes, _seconds) and counters end in _total.  GET /healthz
 * answers 200 "ok" while the metadata engine answers a read transaction,
 * 503 otherwise.  Other paths are 404, other methods 405.
 *
 * The endpoint runs on a thread and event loop of its own, not on the
 * RPC loop: a scrape reads cache_stats (which walks the staging index
 * under the cache's locks) and opens an LMDB read transaction, and
 * neither should delay the reading of NFS records for every client.  It
 * also keeps rpc.c's loop private to rpc.c.
 *
 * The request path only adds to the relaxed atomics of nfsd_m
 * (counters-internal.h); everything else is read at scrape time, through
 * the public calls of the server (nfsd.h), the cache, the object store
 * and meta.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>

#include "meta/kv.h"
#include "nfsd/nfs3_status.h"
#include "nfsd/addr-internal.h"
#include "nfsd/counters-internal.h"
#include "nfsd/metrics-internal.h"
#include "nfsd/nfs3_prot.h"
#include "nfsd/nfsd.h"

/* ---- names ------------------------------------------------------------- */

static const char *const prog_names[NFSD_M_NPROG] = {"nfs", "mount", "nlm",
						     "nsm"};

/* Label values, indexed by procedure number (RFC 1813). */
static const char *const nfs_procs[] = {
	"null",   "getattr", "setattr",  "lookup", "access",  "readlink",
	"read",   "write",   "create",   "mkdir",  "symlink", "mknod",
	"remove", "rmdir",   "rename",   "link",   "readdir", "readdirplus",
	"fsstat", "fsinfo",  "pathconf", "commit",
};
static const char *const mnt_procs[] = {
	"null", "mnt", "dump", "umnt", "umntall", "export",
};
/* NLM v4 (numbers 16 to 19 unused) and NSM (the gateway serves NULL,
 * STAT and NOTIFY; calls of the others are RPC errors): NULL names are
 * left out. */
static const char *const nlm_procs[] = {
	"null",        "test",     "lock",     "cancel",     "unlock",
	"granted",     "test_msg", "lock_msg", "cancel_msg", "unlock_msg",
	"granted_msg", "test_res", "lock_res", "cancel_res", "unlock_res",
	"granted_res", NULL,       NULL,       NULL,         NULL,
	"share",       "unshare",  "nm_lock",  "free_all",
};
static const char *const nsm_procs[] = {
	"null", "stat", NULL, NULL, NULL, NULL, "notify",
};
_Static_assert(TL_ARRAY_SIZE(nfs_procs) == NFSD_M_NFS_PROCS &&
		       TL_ARRAY_SIZE(mnt_procs) == NFSD_M_MNT_PROCS &&
		       TL_ARRAY_SIZE(nlm_procs) == NFSD_M_NLM_PROCS &&
		       TL_ARRAY_SIZE(nsm_procs) == NFSD_M_NSM_PROCS,
	       "a name for every procedure counters.c counts");
/* nlm4_stats, by value. */
static const char *const nlm_status[NFSD_M_NLM_NSTATUS] = {
	"NLM4_GRANTED",
	"NLM4_DENIED",
	"NLM4_DENIED_NOLOCKS",
	"NLM4_BLOCKED",
	"NLM4_DENIED_GRACE_PERIOD",
	"NLM4_DEADLCK",
	"NLM4_ROFS",
	"NLM4_STALE_FH",
	"NLM4_FBIG",
	"NLM4_FAILED",
};

/* Status labels, in the order of counters.c's status slots. */
#define NFS_STATUS(s) #s,
static const char *const nfs_status[] = {NFSD_NFS3_STATUSES(NFS_STATUS)};
#undef NFS_STATUS
/* The last status slot counts statuses not in the list ("other"). */
_Static_assert(TL_ARRAY_SIZE(nfs_status) == NFSD_M_NSTATUS - 1,
	       "NFSD_M_NSTATUS is the nfsstat3 list plus one");

static const char *const rpc_err_names[NFSD_M_ERR_COUNT] = {
	[NFSD_M_ERR_MALFORMED] = "malformed",
	[NFSD_M_ERR_RPC_MISMATCH] = "rpc_mismatch",
	[NFSD_M_ERR_AUTH] = "auth_badcred",
	[NFSD_M_ERR_PROG_UNAVAIL] = "prog_unavail",
	[NFSD_M_ERR_PROG_MISMATCH] = "prog_mismatch",
	[NFSD_M_ERR_PROC_UNAVAIL] = "proc_unavail",
	[NFSD_M_ERR_GARBAGE_ARGS] = "garbage_args",
	[NFSD_M_ERR_SYSTEM] = "system_err",
};

/* ---- rendering --------------------------------------------------------- */

static void
family(struct tl_buf *b, const char *name, const char *type, const char *help)
{
	tl_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
		      type);
}

/* A family of one sample, labelled volume="volume" unless volume is
 * NULL.  Volume names are [A-Za-z0-9._-] (meta_format), nothing to
 * escape. */
static void
one_in(struct tl_buf *b, const char *name, const char *type, const char *help,
       const char *volume, uint64_t v)
{
	family(b, name, type, help);
	if (volume == NULL)
		tl_buf_printf(b, "%s %llu\n", name, (unsigned long long)v);
	else
		tl_buf_printf(b, "%s{volume=\"%s\"} %llu\n", name, volume,
			      (unsigned long long)v);
}

/* A family of one sample without labels. */
static void
one(struct tl_buf *b, const char *name, const char *type, const char *help,
    uint64_t v)
{
	one_in(b, name, type, help, NULL, v);
}

/* The same for a real number, printed with prec decimals. */
static void
one_real(struct tl_buf *b, const char *name, const char *type, const char *help,
	 int prec, double v)
{
	family(b, name, type, help);
	tl_buf_printf(b, "%s %.*f\n", name, prec, v);
}

/* A gauge of the volume. */
static void
vol(struct tl_buf *b, const char *volume, const char *name, const char *help,
    uint64_t v)
{
	one_in(b, name, "gauge", help, volume, v);
}

/* A family of n samples told apart by one label, key="vals[i]". */
static void
by_label(struct tl_buf *b, const char *name, const char *type, const char *help,
	 const char *key, const char *const *vals, const uint64_t *v,
	 unsigned n)
{
	family(b, name, type, help);
	for (unsigned i = 0; i < n; i++)
		tl_buf_printf(b, "%s{%s=\"%s\"} %llu\n", name, key, vals[i],
			      (unsigned long long)v[i]);
}

/* A family of one sample read from a uint64_t member of a figures
 * struct (at offset off; SERIES_AT checks the member's type). */
struct series {
	const char *name, *type, *help;
	size_t off;
};
#define SERIES_AT(type, member)                                                \
	(offsetof(type, member) +                                              \
	 0 * sizeof(_Generic(((type *)0)->member, uint64_t : 1)))

/* The families of table t, in order, read from fig. */
static void
series(struct tl_buf *b, const struct series *t, size_t n, const void *fig,
       const char *volume)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v;

		memcpy(&v, (const char *)fig + t[i].off, sizeof(v));
		one_in(b, t[i].name, t[i].type, t[i].help, volume, v);
	}
}
#define SERIES(b, table, fig, volume)                                          \
	series(b, table, TL_ARRAY_SIZE(table), fig, volume)

/* A histogram's buckets, _sum and _count; labels "k=\"v\",...". */
static void
histogram(struct tl_buf *b, const char *name, const char *labels,
	  const double *le, unsigned nle, const uint64_t *v, uint64_t sum_ns)
{
	uint64_t cum = 0;

	for (unsigned i = 0; i < nle; i++) {
		cum += v[i];
		/* %g: "0.0001" ... "0.25", "1", "2.5" */
		tl_buf_printf(b, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels,
			      le[i], (unsigned long long)cum);
	}
	cum += v[nle];
	tl_buf_printf(b, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels,
		      (unsigned long long)cum);
	tl_buf_printf(b, "%s_sum{%s} %.9f\n", name, labels,
		      (double)sum_ns / 1e9);
	tl_buf_printf(b, "%s_count{%s} %llu\n", name, labels,
		      (unsigned long long)cum);
}

static uint64_t
get(nfsd_m_counter *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* A gauge kept as +/- pairs may be read between the two halves. */
static uint64_t
nonneg(atomic_int_fast64_t *g)
{
	int_fast64_t v = atomic_load_explicit(g, memory_order_relaxed);

	return v > 0 ? (uint64_t)v : 0;
}

static const char *
proc_name(unsigned prog, unsigned proc)
{
	switch (prog) {
	case NFSD_M_NFS:
		return proc < TL_ARRAY_SIZE(nfs_procs) ? nfs_procs[proc] : NULL;
	case NFSD_M_MOUNT:
		return proc < TL_ARRAY_SIZE(mnt_procs) ? mnt_procs[proc] : NULL;
	case NFSD_M_NLM:
		return proc < TL_ARRAY_SIZE(nlm_procs) ? nlm_procs[proc] : NULL;
	default:
		return proc < TL_ARRAY_SIZE(nsm_procs) ? nsm_procs[proc] : NULL;
	}
}

static void
render_histogram(struct tl_buf *b)
{
	const char *n = "tessera_rpc_call_duration_seconds";
	double le[NFSD_M_BUCKETS];
	char labels[96];

	for (unsigned k = 0; k < NFSD_M_BUCKETS; k++)
		le[k] = (double)nfsd_m_bucket_ns[k] / 1e9;
	family(b, n, "histogram",
	       "Time from decoding a call to its encoded reply, per "
	       "procedure (calls that ran).");
	for (unsigned g = 0; g < NFSD_M_NPROG; g++) {
		for (unsigned i = 0; i < NFSD_M_PROCS; i++) {
			struct nfsd_m_proc *p = &nfsd_m.proc[g][i];
			uint64_t cum = 0, v[NFSD_M_BUCKETS + 1];
			const char *pn = proc_name(g, i);

			if (pn == NULL)
				continue;
			for (unsigned k = 0; k <= NFSD_M_BUCKETS; k++)
				cum += v[k] = get(&p->lat[k]);
			if (cum == 0)
				continue; /* never ran: no series */
			snprintf(labels, sizeof(labels),
				 "program=\"%s\",procedure=\"%s\"",
				 prog_names[g], pn);
			histogram(b, n, labels, le, NFSD_M_BUCKETS, v,
				  get(&p->lat_sum_ns));
		}
	}
}

/* Replies of program prog per procedure (names procs, NULL: not served)
 * and status (names status, later slots "other"); statuses never sent
 * are left out. */
static void
render_replies(struct tl_buf *b, const char *name, const char *help,
	       unsigned prog, const char *const *procs, unsigned nprocs,
	       const char *const *status, unsigned nstatus)
{
	family(b, name, "counter", help);
	for (unsigned i = 1; i < nprocs; i++)
		for (unsigned k = 0; k < NFSD_M_NSTATUS; k++) {
			uint64_t v = get(&nfsd_m.proc[prog][i].status[k]);

			if (v == 0 || procs[i] == NULL)
				continue;
			tl_buf_printf(b,
				      "%s{procedure=\"%s\",status=\"%s\"} "
				      "%llu\n",
				      name, procs[i],
				      k < nstatus ? status[k] : "other",
				      (unsigned long long)v);
		}
}

static void
render_rpc(struct tl_buf *b)
{
	uint64_t err[NFSD_M_ERR_COUNT];

	family(b, "tessera_rpc_calls_total", "counter",
	       "RPC calls received per program and procedure "
	       "(retransmissions too).");
	for (unsigned g = 0; g < NFSD_M_NPROG; g++)
		for (unsigned i = 0; i < NFSD_M_PROCS; i++)
			if (proc_name(g, i) != NULL)
				tl_buf_printf(
					b,
					"tessera_rpc_calls_total{program=\"%"
					"s\","
					"procedure=\"%s\"} %llu\n",
					prog_names[g], proc_name(g, i),
					(unsigned long long)get(
						&nfsd_m.proc[g][i].calls));
	render_histogram(b);
	render_replies(b, "tessera_nfs_replies_total",
		       "NFS v3 replies per procedure and nfsstat3 (statuses "
		       "never sent are left out).",
		       NFSD_M_NFS, nfs_procs, TL_ARRAY_SIZE(nfs_procs),
		       nfs_status, TL_ARRAY_SIZE(nfs_status));
	render_replies(b, "tessera_nlm_replies_total",
		       "NLM v4 answers per procedure and nlm4_stats (the _MSG "
		       "forms' in their _RES calls; statuses never sent are "
		       "left out).",
		       NFSD_M_NLM, nlm_procs, TL_ARRAY_SIZE(nlm_procs),
		       nlm_status, NFSD_M_NLM_NSTATUS);
	for (unsigned i = 0; i < NFSD_M_ERR_COUNT; i++)
		err[i] = get(&nfsd_m.rpc_err[i]);
	by_label(b, "tessera_rpc_errors_total", "counter",
		 "Calls refused at the RPC level, by reason (no procedure "
		 "ran).",
		 "reason", rpc_err_names, err, NFSD_M_ERR_COUNT);
}

static void
render_conns(struct tl_buf *b)
{
	char label[NFSD_M_CLOSE_COUNT][32];
	const char *reason[NFSD_M_CLOSE_COUNT];
	uint64_t closed[NFSD_M_CLOSE_COUNT];

	one(b, "tessera_connections_open", "gauge",
	    "Client TCP connections open now.", nonneg(&nfsd_m.conn_open));
	one(b, "tessera_connections_accepted_total", "counter",
	    "Client TCP connections accepted.", get(&nfsd_m.conn_accepted));
	one(b, "tessera_rpc_received_bytes_total", "counter",
	    "Bytes of RPC records read from clients.", get(&nfsd_m.rx_bytes));
	one(b, "tessera_rpc_sent_bytes_total", "counter",
	    "Bytes of RPC replies sent (READ data included).",
	    get(&nfsd_m.tx_bytes));
	one(b, "tessera_rpc_requests_in_progress", "gauge",
	    "Requests read and not yet answered.", nonneg(&nfsd_m.req_open));
	one(b, "tessera_rpc_request_memory_bytes", "gauge",
	    "Bytes held for clients: records being read, requests in "
	    "progress with room for their replies, replies not yet sent "
	    "(request_memory bounds them).",
	    nonneg(&nfsd_m.mem_bytes));
	for (unsigned i = 0; i < NFSD_M_CLOSE_COUNT; i++) {
		/* "record too large" -> record_too_large */
		snprintf(label[i], sizeof(label[i]), "%s",
			 nfsd_m_close_names[i]);
		for (char *p = label[i]; *p; p++)
			if (*p == ' ')
				*p = '_';
		reason[i] = label[i];
		closed[i] = get(&nfsd_m.conn_closed[i]);
	}
	by_label(b, "tessera_connections_closed_total", "counter",
		 "Client TCP connections closed, by reason.", "reason", reason,
		 closed, NFSD_M_CLOSE_COUNT);
}

#define DRC(m) SERIES_AT(struct nfsd_drc_stats, m)
static const struct series drc_series[] = {
	{"tessera_drc_hits_total", "counter",
	 "Retransmitted non-idempotent calls answered with the saved reply "
	 "(duplicate request cache replays).",
	 DRC(hits)},
	{"tessera_drc_inprogress_drops_total", "counter",
	 "Retransmits dropped because the first call was still running.",
	 DRC(inprogress)},
	{"tessera_drc_misses_total", "counter",
	 "Non-idempotent calls run (not found in the cache).", DRC(misses)},
	{"tessera_drc_evictions_total", "counter",
	 "Entries dropped to stay within drc_entries and drc_size.",
	 DRC(evictions)},
	{"tessera_drc_expired_total", "counter",
	 "Entries found too old to replay.", DRC(expired)},
	{"tessera_drc_uncached_total", "counter", "Replies not kept (too big).",
	 DRC(uncached)},
	{"tessera_drc_entries", "gauge",
	 "Entries in the duplicate request cache.", DRC(entries)},
	{"tessera_drc_bytes", "gauge",
	 "Memory held by the duplicate request cache.", DRC(bytes)},
};
#undef DRC

static void
render_drc(struct tl_buf *b, struct nfsd_server *srv)
{
	struct nfsd_drc_stats d;

	nfsd_server_drc_stats(srv, &d);
	SERIES(b, drc_series, &d, NULL);
}

#define LCK(m) SERIES_AT(struct nfsd_lock_stats, m)
static const struct series lock_series[] = {
	{"tessera_nlm_locks", "gauge",
	 "NFS lock records (byte ranges of one owner on one file, shares) of "
	 "the volume, all gateways.",
	 LCK(locks)},
	{"tessera_nlm_blocked_requests", "gauge",
	 "Blocked lock requests this gateway keeps, to be granted by a "
	 "callback.",
	 LCK(waiters)},
	{"tessera_nlm_callbacks_in_flight", "gauge",
	 "Calls to clients (GRANTED, _RES, SM_NOTIFY) queued or running.",
	 LCK(callbacks)},
	{"tessera_nlm_granted_callbacks_total", "counter",
	 "Blocked locks granted by a GRANTED callback the client accepted.",
	 LCK(granted_cb)},
	{"tessera_nlm_callbacks_failed_total", "counter",
	 "Calls to clients given up (unreachable, or no answer in time).",
	 LCK(cb_failed)},
	{"tessera_nlm_clients_adopted_total", "counter",
	 "Lock clients taken over from gateways that are gone (this "
	 "gateway's earlier runs included), told to reclaim.",
	 LCK(adopted)},
};
#undef LCK

static void
render_locks(struct tl_buf *b, struct nfsd_server *srv)
{
	struct nfsd_lock_stats l;

	if (!nfsd_server_lock_stats(srv, &l))
		return;
	SERIES(b, lock_series, &l, NULL);
	one(b, "tessera_nlm_grace", "gauge",
	    "1 while only lock reclaims are granted (after a restart).",
	    l.grace);
}

/* A label value: \\, \" and \n escaped (export paths are any bytes). */
static void
label_value(struct tl_buf *b, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			tl_buf_printf(b, "\\%c", *v);
		else if (*v == '\n')
			tl_buf_printf(b, "\\n");
		else
			tl_buf_append(b, v, 1);
	}
}

static const char *const limit_classes[NFSD_LIMIT_NCLASS] = {"read", "write"};

struct limit_rows {
	struct tl_buf delayed, refused;
};

/* name{export="path",class="cls"} v */
static void
limit_sample(struct tl_buf *b, const char *name, const char *path,
	     const char *cls, uint64_t v)
{
	tl_buf_printf(b, "%s{export=\"", name);
	label_value(b, path);
	tl_buf_printf(b, "\",class=\"%s\"} %llu\n", cls, (unsigned long long)v);
}

static void
limit_row(void *arg, const struct nfsd_limit_stats *st)
{
	struct limit_rows *r = arg;

	for (int k = 0; k < NFSD_LIMIT_NCLASS; k++) {
		limit_sample(&r->delayed, "tessera_limit_delayed_total",
			     st->path, limit_classes[k], st->delayed[k]);
		limit_sample(&r->refused, "tessera_limit_refused_total",
			     st->path, limit_classes[k], st->refused[k]);
	}
}

/* The metadata rate limits: what they are, and what they did by export
 * (the exports that had a limited call since the start). */
static void
render_limits(struct tl_buf *b, struct nfsd_server *srv)
{
	struct limit_rows r = {TL_BUF_INIT, TL_BUF_INIT};
	struct nfsd_limit_conf c;
	uint64_t evicted;
	size_t clients;

	nfsd_server_get_limits(srv, &c);
	family(b, "tessera_limit_meta_rate", "gauge",
	       "Metadata operations per second allowed (0: no limit), per "
	       "client address or per export, reads or changes.");
	for (int k = 0; k < NFSD_LIMIT_NCLASS; k++) {
		tl_buf_printf(b,
			      "tessera_limit_meta_rate{scope=\"client\","
			      "class=\"%s\"} %llu\n",
			      limit_classes[k],
			      (unsigned long long)c.client_rate[k]);
		tl_buf_printf(b,
			      "tessera_limit_meta_rate{scope=\"export\","
			      "class=\"%s\"} %llu\n",
			      limit_classes[k],
			      (unsigned long long)c.export_rate[k]);
	}
	one_real(b, "tessera_limit_wait_max_seconds", "gauge",
		 "limit_wait_max: longest wait for a rate limit, then "
		 "NFS3ERR_JUKEBOX.",
		 3, (double)c.wait_max_ms / 1000);
	nfsd_server_limit_stats(srv, limit_row, &r, &clients, &evicted);
	family(b, "tessera_limit_delayed_total", "counter",
	       "Calls made to wait for a metadata rate limit, by export.");
	tl_buf_append(b, r.delayed.data, r.delayed.len);
	family(b, "tessera_limit_refused_total", "counter",
	       "Calls answered NFS3ERR_JUKEBOX by a metadata rate limit, by "
	       "export.");
	tl_buf_append(b, r.refused.data, r.refused.len);
	one(b, "tessera_limit_clients", "gauge",
	    "Client addresses with rate-limit buckets (at most "
	    "limit_clients).",
	    clients);
	one(b, "tessera_limit_clients_reused_total", "counter",
	    "Buckets of the least recently seen client reused for another.",
	    evicted);
	tl_buf_free(&r.delayed);
	tl_buf_free(&r.refused);
}

/* What render_cache shows: the cache's figures and, beside them, the
 * settings they are read against. */
struct cache_figs {
	struct cache_stats s;
	uint64_t limit, buffered, buffer_limit, max_age_s, alarm;
};

#define CF(m) SERIES_AT(struct cache_figs, m)
static const struct series cache_series[] = {
	{"tessera_cache_misses_total", "counter",
	 "Block reads the disk cache could not serve.", CF(s.disk_misses)},
	{"tessera_cache_evictions_total", "counter",
	 "Blocks evicted from the disk cache.", CF(s.disk_evicted)},
	{"tessera_cache_damaged_total", "counter",
	 "Cached blocks found corrupt and fetched again.", CF(s.disk_damaged)},
	{"tessera_cache_used_bytes", "gauge",
	 "Bytes of blocks in the disk cache.", CF(s.disk_bytes)},
	{"tessera_cache_blocks", "gauge", "Blocks in the disk cache.",
	 CF(s.disk_blocks)},
	{"tessera_cache_limit_bytes", "gauge",
	 "Configured disk cache size (cache_size; 0: no disk cache).",
	 CF(limit)},
	{"tessera_cache_memory_bytes", "gauge",
	 "Bytes of prefetched and recently read blocks in memory.",
	 CF(s.mem_bytes)},
	{"tessera_buffered_write_bytes", "gauge",
	 "Bytes of unstable writes buffered in memory, not yet stored.",
	 CF(buffered)},
	{"tessera_buffered_write_limit_bytes", "gauge",
	 "buffer_limit: writers flush or wait above it.", CF(buffer_limit)},
	{"tessera_objstore_fetches_total", "counter",
	 "Block GETs issued to the object store.", CF(s.fetches)},
	{"tessera_objstore_fetch_bytes_total", "counter",
	 "Bytes fetched by block GETs.", CF(s.fetch_bytes)},
	{"tessera_readahead_blocks_total", "counter",
	 "Blocks fetched by readahead.", CF(s.prefetches)},
	{"tessera_compacted_chunks_total", "counter",
	 "Fragmented chunks rewritten as one slice.", CF(s.compacted)},
	{"tessera_compaction_queued_chunks", "gauge",
	 "Chunks this gateway queued for compaction, waiting for the "
	 "background job (only the lease holder keeps a queue).",
	 CF(s.compact_queued)},
};
/* Only where the cache runs the background jobs. */
static const struct series cache_bgjob_series[] = {
	{"tessera_bgjob_delete_rate", "gauge",
	 "bgjob_delete_rate in force: objects the background jobs delete per "
	 "second (0: no limit; SIGHUP changes it).",
	 CF(s.bgjob_delete_rate)},
	{"tessera_bgjob_txn_rate", "gauge",
	 "bgjob_txn_rate in force: metadata transactions of the background "
	 "jobs per second (0: no limit).",
	 CF(s.bgjob_txn_rate)},
};
static const struct series writeback_series[] = {
	{"tessera_writeback_staged_blocks", "gauge",
	 "Blocks staged on local disk, waiting for upload.",
	 CF(s.staged_blocks)},
	{"tessera_writeback_staged_bytes", "gauge",
	 "Bytes staged on local disk, waiting for upload.", CF(s.staged_bytes)},
	{"tessera_writeback_oldest_age_seconds", "gauge",
	 "Age of the oldest staged block (0: none).", CF(s.staged_oldest_s)},
	{"tessera_writeback_overdue_blocks", "gauge",
	 "Staged blocks older than writeback_max_age.", CF(s.staged_overdue)},
	{"tessera_writeback_max_age_seconds", "gauge",
	 "writeback_max_age: the alarm threshold.", CF(max_age_s)},
	{"tessera_writeback_alarm", "gauge",
	 "1 while a staged block is older than writeback_max_age.", CF(alarm)},
	{"tessera_writeback_uploaded_blocks_total", "counter",
	 "Staged blocks uploaded since start.", CF(s.uploaded)},
	{"tessera_writeback_upload_errors_total", "counter",
	 "Failed background uploads (retried).", CF(s.upload_errors)},
};
#undef CF

static void
render_cache(struct tl_buf *b, const struct nfsd_metrics_src *src)
{
	static const char *const tiers[2] = {"disk", "memory"};
	struct cache_figs f;
	uint64_t hits[2];

	cache_stats(src->cache, &f.s);
	f.limit = src->cache_size;
	f.buffered = cache_buffered(src->cache);
	f.buffer_limit = src->buffer_limit;
	f.max_age_s = src->writeback_max_age_ms / 1000;
	f.alarm = f.s.staged_overdue > 0 ||
		  (f.s.staged_blocks > 0 &&
		   f.s.staged_oldest_s * 1000 > src->writeback_max_age_ms);
	hits[0] = f.s.disk_hits;
	hits[1] = f.s.mem_hits;
	by_label(b, "tessera_cache_hits_total", "counter",
		 "Block reads served from the cache, by tier.", "tier", tiers,
		 hits, 2);
	SERIES(b, cache_series, &f, NULL);
	if (f.s.bgjob)
		SERIES(b, cache_bgjob_series, &f, NULL);
	SERIES(b, writeback_series, &f, NULL);
}

#define OS(m) SERIES_AT(struct os_stats, m)
static const struct series os_puts_series[] = {
	{"tessera_objstore_puts_total", "counter",
	 "Objects stored (S3 PUTs accepted, files renamed into place by "
	 "file://).",
	 OS(puts)},
};
static const struct series os_traffic_series[] = {
	{"tessera_objstore_uploaded_bytes_total", "counter",
	 "Bytes put to the object store.", OS(up_bytes)},
	{"tessera_objstore_downloaded_bytes_total", "counter",
	 "Bytes got from the object store.", OS(down_bytes)},
};
static const struct series os_retry_series[] = {
	{"tessera_objstore_retries_total", "counter",
	 "Object-store calls retried after an I/O error.", OS(retries)},
	{"tessera_objstore_failures_total", "counter",
	 "Object-store calls that failed after the last retry.", OS(failures)},
};
#undef OS

/* Figures the store's wrapper stack keeps (objstore.h, os_stats): a
 * family appears only when some layer keeps it. */
static void
render_objstore(struct tl_buf *b, struct os_store *os)
{
	struct os_stats st;

	os_stats(os, &st);
	if (st.have & OS_STATS_PUTS)
		SERIES(b, os_puts_series, &st, NULL);
	if (st.have & OS_STATS_TRAFFIC) {
		SERIES(b, os_traffic_series, &st, NULL);
		one_real(b, "tessera_objstore_throttled_seconds_total",
			 "counter",
			 "Time callers waited for upload_limit and "
			 "download_limit.",
			 6, (double)st.throttled_ns / 1e9);
	}
	if (st.have & OS_STATS_RETRY)
		SERIES(b, os_retry_series, &st, NULL);
}

/* Requests to the object store by operation (objstore.h, os_op_stats). */
static void
render_objstore_ops(struct tl_buf *b)
{
	struct os_op_stats st[OS_OP_COUNT];
	const char *ops[OS_OP_COUNT];
	uint64_t calls[OS_OP_COUNT], errors[OS_OP_COUNT];
	char l[32];

	os_op_stats(st);
	for (unsigned op = 0; op < OS_OP_COUNT; op++) {
		ops[op] = os_op_name(op);
		calls[op] = st[op].calls;
		errors[op] = st[op].errors;
	}
	by_label(b, "tessera_objstore_requests_total", "counter",
		 "Object-store requests by operation (a retry wrapper's "
		 "attempts are inside one).",
		 "operation", ops, calls, OS_OP_COUNT);
	by_label(b, "tessera_objstore_request_errors_total", "counter",
		 "Object-store requests that failed, by operation (a missing "
		 "object is an answer, not an error).",
		 "operation", ops, errors, OS_OP_COUNT);
	family(b, "tessera_objstore_request_duration_seconds", "histogram",
	       "Object-store request latency by operation.");
	for (unsigned op = 0; op < OS_OP_COUNT; op++) {
		snprintf(l, sizeof(l), "operation=\"%s\"", ops[op]);
		histogram(b, "tessera_objstore_request_duration_seconds", l,
			  os_op_bucket_s, OS_OP_BUCKETS, st[op].lat,
			  st[op].lat_sum_ns);
	}
}

/* Metadata transactions (meta.h, meta_txn_stats) and the LMDB map. */
static void
render_meta_engine(struct tl_buf *b, struct meta *m)
{
	static const char *const kinds[2] = {"read", "write"};
	struct meta_txn_stats t;
	char lab[32];

	meta_txn_stats(&t);
	by_label(b, "tessera_metadata_transactions_total", "counter",
		 "Metadata transactions ended, by kind (read-only or "
		 "read-write).",
		 "kind", kinds, t.count, 2);
	family(b, "tessera_metadata_transaction_duration_seconds", "histogram",
	       "Metadata transaction latency, begin to commit or abort.");
	for (unsigned k = 0; k < 2; k++) {
		snprintf(lab, sizeof(lab), "kind=\"%s\"", kinds[k]);
		histogram(b, "tessera_metadata_transaction_duration_seconds",
			  lab, meta_txn_bucket_s, META_TXN_BUCKETS, t.lat[k],
			  t.lat_sum_ns[k]);
	}
	one(b, "tessera_metadata_transaction_conflicts_total", "counter",
	    "Commits that conflicted with another transaction (raft://).",
	    t.conflicts);
	one(b, "tessera_metadata_transaction_retries_total", "counter",
	    "Transactions run again after a conflict.", t.retries);
}

/* The process_* series every Prometheus client library exports, read
 * from getrusage, /proc/self/statm and /proc/self/fd. */
static void
render_process(struct tl_buf *b, uint64_t start_ns)
{
	struct rusage ru;
	struct rlimit rl;
	unsigned long long vm = 0, rss = 0;
	long page = sysconf(_SC_PAGESIZE);
	uint64_t fds = 0;
	struct dirent *e;
	FILE *f;
	DIR *d;

	if (getrusage(RUSAGE_SELF, &ru) == 0)
		one_real(b, "process_cpu_seconds_total", "counter",
			 "User and system CPU time spent, seconds.", 6,
			 (double)ru.ru_utime.tv_sec +
				 ru.ru_utime.tv_usec / 1e6 +
				 (double)ru.ru_stime.tv_sec +
				 ru.ru_stime.tv_usec / 1e6);
	f = fopen("/proc/self/statm", "re");
	if (f != NULL) {
		if (fscanf(f, "%llu %llu", &vm, &rss) == 2 && page > 0) {
			one(b, "process_virtual_memory_bytes", "gauge",
			    "Virtual memory size.", vm * (uint64_t)page);
			one(b, "process_resident_memory_bytes", "gauge",
			    "Resident memory size.", rss * (uint64_t)page);
		}
		fclose(f);
	}
	d = opendir("/proc/self/fd");
	if (d != NULL) {
		while ((e = readdir(d)) != NULL)
			if (e->d_name[0] != '.')
				fds++;
		closedir(d);
		one(b, "process_open_fds", "gauge",
		    "Open file descriptors (this scrape's directory one "
		    "included).",
		    fds);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		one(b, "process_max_fds", "gauge",
		    "Limit on open file descriptors.", rl.rlim_cur);
	if (start_ns != 0)
		one_real(b, "process_start_time_seconds", "gauge",
			 "Start time of the process, seconds since the epoch.",
			 3, (double)start_ns / 1e9);
}

/* A raft:// node's figures and two read from its state. */
struct raft_figs {
	struct meta_kv_raft_stats s;
	uint64_t is_leader, voter;
};

#define RF(m) SERIES_AT(struct raft_figs, m)
static const struct series raft_series[] = {
	{"tessera_raft_node_id", "gauge", "This gateway's raft node id.",
	 RF(s.id)},
	{"tessera_raft_term", "gauge", "The current raft term.", RF(s.term)},
	{"tessera_raft_leader", "gauge",
	 "The node id of the leader this node knows (0: none).", RF(s.leader)},
	{"tessera_raft_is_leader", "gauge", "1 while this node leads.",
	 RF(is_leader)},
	{"tessera_raft_voter", "gauge",
	 "1 while this node is a voter of the configuration.", RF(voter)},
	{"tessera_raft_commit_index", "gauge",
	 "The last log index this node knows committed.", RF(s.commit)},
	{"tessera_raft_last_index", "gauge",
	 "The last index of this node's log.", RF(s.last_index)},
	{"tessera_raft_applied_index", "gauge",
	 "The last log index applied to this node's replica.", RF(s.applied)},
	{"tessera_raft_log_bytes", "gauge",
	 "Bytes of this node's raft log files (segments, snapshots).",
	 RF(s.log_bytes)},
	{"tessera_raft_leader_changes_total", "counter",
	 "Times the leader this node knows changed.", RF(s.leader_changes)},
	{"tessera_raft_elections_won_total", "counter",
	 "Times this node became the leader.", RF(s.elections_won)},
	{"tessera_raft_snapshots_sent_total", "counter",
	 "Replica copies sent to nodes that were new or behind.",
	 RF(s.snapshots_sent)},
	{"tessera_raft_snapshots_received_total", "counter",
	 "Replica copies this node restored.", RF(s.snapshots_received)},
	{"tessera_raft_commits_total", "counter",
	 "Transactions of this gateway committed.", RF(s.commits)},
	{"tessera_raft_conflicts_total", "counter",
	 "Transactions of this gateway that conflicted (retried).",
	 RF(s.conflicts)},
	{"tessera_raft_reads_total", "counter",
	 "Transactions that waited for a read index.", RF(s.reads)},
	{"tessera_raft_lease_reads_total", "counter",
	 "Of those, answered from the leader's lease without a message.",
	 RF(s.lease_reads)},
};
#undef RF

/* A raft:// node's figures (meta/kv.h, meta_kv_raft_stats). */
static void
render_raft(struct tl_buf *b, struct meta *m)
{
	struct raft_figs f;
	uint64_t cum = 0;

	if (meta_kv_raft_stats(meta_engine(m), &f.s) != 0)
		return;
	f.is_leader = f.s.state == 3;
	f.voter = f.s.voter;
	SERIES(b, raft_series, &f, NULL);
	/* buckets of 100 us doubling, the last one +Inf; the count is the
	 * applier's batches, the sum in microseconds */
	family(b, "tessera_raft_apply_duration_seconds", "histogram",
	       "Applying committed entries to the replica, per LMDB batch.");
	for (unsigned i = 0; i < META_KV_RAFT_LAT_BUCKETS; i++) {
		cum += f.s.apply_count[i];
		if (i + 1 < META_KV_RAFT_LAT_BUCKETS)
			tl_buf_printf(b,
				      "tessera_raft_apply_duration_seconds"
				      "_bucket{le=\"%g\"} %llu\n",
				      100e-6 * (1u << i),
				      (unsigned long long)cum);
	}
	tl_buf_printf(b,
		      "tessera_raft_apply_duration_seconds_bucket"
		      "{le=\"+Inf\"} %llu\n",
		      (unsigned long long)cum);
	tl_buf_printf(b, "tessera_raft_apply_duration_seconds_sum %.6f\n",
		      (double)f.s.apply_sum_us / 1e6);
	tl_buf_printf(b, "tessera_raft_apply_duration_seconds_count %llu\n",
		      (unsigned long long)f.s.apply_batches);
}

/* An LMDB engine's figures and the bytes of the map used. */
struct lmdb_figs {
	struct meta_kv_lmdb_stats s;
	uint64_t map_used;
};

#define LF(m) SERIES_AT(struct lmdb_figs, m)
static const struct series lmdb_series[] = {
	{"tessera_meta_lmdb_batches_total", "counter",
	 "LMDB write transactions committed, each a batch of operations that "
	 "syncs its data pages once.",
	 LF(s.batches)},
	{"tessera_meta_lmdb_syncs_total", "counter",
	 "Syncs of the LMDB file that acknowledged durable commits (one serves "
	 "every batch written before it).",
	 LF(s.syncs)},
	{"tessera_meta_lmdb_lazy_commits_total", "counter",
	 "Operations committed without waiting for the disk (exports with "
	 "async, session renewals, gc).",
	 LF(s.lazy)},
	{"tessera_meta_lmdb_map_size_bytes", "gauge",
	 "Size of the LMDB map (mapsize): the most the data file may grow to.",
	 LF(s.map_bytes)},
	{"tessera_meta_lmdb_map_used_bytes", "gauge",
	 "Bytes of the map up to its last page written (free pages inside "
	 "included).",
	 LF(map_used)},
	{"tessera_meta_lmdb_page_size_bytes", "gauge", "LMDB page size.",
	 LF(s.page_size)},
	{"tessera_meta_lmdb_pages_used", "gauge",
	 "Pages up to the last page written.", LF(s.pages_used)},
};
static const struct series lmdb_tree_series[] = {
	{"tessera_meta_lmdb_entries", "gauge", "Keys in the tree.",
	 LF(s.entries)},
	{"tessera_meta_lmdb_tree_depth", "gauge", "Depth of the B+tree.",
	 LF(s.depth)},
	{"tessera_meta_lmdb_readers", "gauge",
	 "Reader slots used (high-water mark of the lock table).",
	 LF(s.readers)},
	{"tessera_meta_lmdb_max_readers", "gauge", "Reader slots available.",
	 LF(s.max_readers)},
};
#undef LF

/* An lmdb:// engine's commits, syncs and map (meta/kv.h,
 * meta_kv_lmdb_stats), or a raft:// node's replica's (its batches and
 * syncs are the applier's). */
static void
render_lmdb(struct tl_buf *b, struct meta *m)
{
	static const char *const kinds[3] = {"branch", "leaf", "overflow"};
	struct lmdb_figs f;
	uint64_t pages[3];

	if (meta_kv_lmdb_stats(meta_engine(m), &f.s) != 0 &&
	    meta_kv_raft_lmdb_stats(meta_engine(m), &f.s) != 0)
		return;
	f.map_used = f.s.pages_used * f.s.page_size;
	pages[0] = f.s.branch_pages;
	pages[1] = f.s.leaf_pages;
	pages[2] = f.s.overflow_pages;
	SERIES(b, lmdb_series, &f, NULL);
	by_label(b, "tessera_meta_lmdb_tree_pages", "gauge",
		 "Pages of the B+tree by kind (the rest of pages_used is free "
		 "or the free list).",
		 "kind", kinds, pages, 3);
	SERIES(b, lmdb_tree_series, &f, NULL);
}

#define VU(m) SERIES_AT(struct meta_usage, m)
static const struct series usage_series[] = {
	{"tessera_volume_used_bytes", "gauge",
	 "Bytes used by regular files (4 KiB-rounded sizes).", VU(used_bytes)},
	{"tessera_volume_used_inodes", "gauge", "Inodes in use.",
	 VU(used_inodes)},
	{"tessera_volume_capacity_bytes", "gauge",
	 "Volume capacity (0: unlimited).", VU(capacity)},
	{"tessera_volume_max_inodes", "gauge", "Inode limit (0: unlimited).",
	 VU(max_inodes)},
	{"tessera_volume_pending_delete", "gauge",
	 "Files and slices waiting for background deletion (`tessera status`: "
	 "pending delete).",
	 VU(pending_delete)},
	/* the volume's usage for billing (meta.h, struct meta_usage) */
	{"tessera_volume_logical_bytes", "gauge",
	 "Sizes of the regular files outside the trash (exact).",
	 VU(logical_bytes)},
	{"tessera_volume_stored_bytes", "gauge",
	 "Bytes of the slices whose objects are in the object store: "
	 "referenced, in grace, or waiting for deletion (before compression).",
	 VU(stored_bytes)},
	{"tessera_volume_trash_logical_bytes", "gauge",
	 "Sizes of the regular files in the trash (exact).", VU(trash_bytes)},
	{"tessera_volume_pending_delete_bytes", "gauge",
	 "Bytes waiting for the deletion job: released slices and removed "
	 "files not purged yet.",
	 VU(pending_bytes)},
};
#undef VU

/* Volume figures; false when the metadata engine does not answer. */
static bool
render_volume(struct tl_buf *b, struct meta *m)
{
	const char *name = meta_settings(m)->name;
	struct meta_usage u;
	bool up = meta_usage(m, &u) == 0;

	vol(b, name, "tessera_metadata_up",
	    "1 when the metadata engine answered a read transaction.", up);
	if (!up)
		return false;
	SERIES(b, usage_series, &u, name);
	return true;
}

struct holder_find {
	uint64_t id, now;
	bool live;
};

static int
holder_cb(void *arg, const struct meta_session *s)
{
	struct holder_find *h = arg;

	if (s->id == h->id)
		h->live = meta_session_live(s, h->now);
	return 0;
}

/* The stall alarm (meta.h, meta_bgjob_stall): the backlog the jobs can
 * work on, as last sampled, and whether it has stopped shrinking. */
static void
render_stall(struct tl_buf *b, struct meta *m)
{
	const char *name = meta_settings(m)->name;
	struct meta_stall st;

	if (meta_bgjob_stall(m, &st) != 0)
		return;
	vol(b, name, "tessera_bgjob_backlog_items",
	    "Items the background jobs can work on now (removed files, "
	    "released slices, compacted slices past their grace, trash "
	    "files past their retention), at the last sample.",
	    st.sampled ? st.w.backlog : 0);
	vol(b, name, "tessera_bgjob_backlog_flat_seconds",
	    "How long that backlog has been above zero without shrinking "
	    "(0: it is zero or shrinking).",
	    st.flat_ns / 1000000000);
	family(b, "tessera_bgjob_stalled", "gauge",
	       "1 (alarm) when the backlog has not shrunk for 3 lease "
	       "periods (session_timeout), by reason: no_holder (no live "
	       "gateway holds the background-job lease) or holder (the "
	       "holder makes no progress).");
	tl_buf_printf(
		b,
		"tessera_bgjob_stalled{volume=\"%s\",reason=\"no_holder\"}"
		" %d\n"
		"tessera_bgjob_stalled{volume=\"%s\",reason=\"holder\"} "
		"%d\n",
		name, st.reason == META_STALL_NO_HOLDER, name,
		st.reason == META_STALL_HOLDER);
}

#define BL(m) SERIES_AT(struct meta_backlog, m)
static const struct series backlog_series[] = {
	{"tessera_volume_pending_delete_files", "gauge",
	 "Removed files whose data waits for the deletion job.", BL(files)},
	{"tessera_volume_pending_delete_file_bytes", "gauge",
	 "Sizes of the removed files waiting for the deletion job.",
	 BL(file_bytes)},
	{"tessera_volume_pending_delete_slices", "gauge",
	 "Released slices whose objects wait for the deletion job.",
	 BL(slices)},
	{"tessera_volume_pending_delete_slice_bytes", "gauge",
	 "Stored bytes of the released slices waiting for deletion.",
	 BL(slice_bytes)},
	{"tessera_volume_grace_slices", "gauge",
	 "Slices compaction dropped, waiting out their grace period.",
	 BL(grace)},
	{"tessera_volume_grace_bytes", "gauge",
	 "Stored bytes of the slices in their grace period.", BL(grace_bytes)},
	{"tessera_volume_trash_files", "gauge",
	 "Removed files kept in the trash.", BL(trash_files)},
	{"tessera_volume_trash_bytes", "gauge",
	 "Bytes of the files in the trash (4 KiB-rounded sizes).",
	 BL(trash_bytes)},
};
#undef BL

/* The background jobs: who runs them, and their backlog (meta.h,
 * meta_backlog: the figures `tessera status` prints). */
static void
render_bgjob(struct tl_buf *b, const struct nfsd_metrics_src *src)
{
	struct holder_find h = {0, tl_now_ns(), false};
	struct meta_backlog bl;
	struct meta_lease l;
	const char *name = meta_settings(src->meta)->name;

	if (src->session != NULL)
		vol(b, name, "tessera_bgjob_lease_held",
		    "1 while this gateway holds the background-job lease "
		    "and runs the jobs.",
		    meta_session_lease_held(src->session));
	if (meta_lease_get(src->meta, &l) == 0) {
		h.id = l.holder;
		if (meta_session_list(src->meta, holder_cb, &h) != 0)
			h.live = false;
	}
	vol(b, name, "tessera_bgjob_lease_live",
	    "1 when a gateway with a live session holds the volume's "
	    "background-job lease; 0 (alarm): no gateway runs the jobs.",
	    h.live);
	render_stall(b, src->meta);
	if (meta_backlog(src->meta, &bl) != 0)
		return;
	SERIES(b, backlog_series, &bl, name);
}

/* Metadata backups: the age of the volume's newest (whoever wrote it,
 * from its record in metadata) and what this gateway wrote. */
static void
render_backup(struct tl_buf *b, struct meta *m, struct nfsd_backup_job *j)
{
	static const char *const results[2] = {"written", "failed"};
	struct nfsd_backup_stats s;
	struct meta_backup mb;
	uint64_t now = tl_now_ns(), done[2];

	if (meta_backup_get(m, &mb) == 0 && mb.snap_ns != 0) {
		one(b, "tessera_meta_backup_age_seconds", "gauge",
		    "Age of the snapshot of the volume's newest metadata "
		    "backup in the object store (absent: none yet).",
		    now > mb.snap_ns ? (now - mb.snap_ns) / 1000000000 : 0);
		one(b, "tessera_meta_backup_last_bytes", "gauge",
		    "Size in the object store of the newest metadata backup.",
		    mb.bytes);
	}
	if (j == NULL)
		return;
	nfsd_backup_stats(j, &s);
	one(b, "tessera_meta_backup_interval_seconds", "gauge",
	    "backup_interval: how often a metadata backup is due (0: off).",
	    s.interval_ms / 1000);
	done[0] = s.written;
	done[1] = s.failed;
	by_label(b, "tessera_meta_backups_total", "counter",
		 "Metadata backups this gateway wrote, by result.", "result",
		 results, done, 2);
	one_real(b, "tessera_meta_backup_duration_seconds", "gauge",
		 "How long this gateway's last metadata backup took.", 3,
		 (double)s.last_ms / 1000);
}

void
nfsd_metrics_render(const struct nfsd_metrics_src *src, struct tl_buf *out)
{
	family(out, "tessera_build_info", "gauge",
	       "Always 1; the version is a label.");
	tl_buf_printf(out, "tessera_build_info{version=\"%s\"} 1\n",
		      PACKAGE_VERSION);
	if (src->start_ns != 0)
		one(out, "tessera_start_time_seconds", "gauge",
		    "When tesserad started, seconds since the epoch.",
		    src->start_ns / 1000000000);
	render_process(out, src->start_ns);
	render_rpc(out);
	render_conns(out);
	if (src->srv != NULL) {
		render_drc(out, src->srv);
		render_locks(out, src->srv);
		render_limits(out, src->srv);
	}
	if (src->cache != NULL)
		render_cache(out, src);
	if (src->os != NULL) {
		render_objstore(out, src->os);
		render_objstore_ops(out);
	}
	if (src->meta != NULL) {
		if (render_volume(out, src->meta)) {
			render_bgjob(out, src);
			render_backup(out, src->meta, src->backup);
			if (src->billing != NULL)
				nfsd_billing_metrics(src->billing, out);
		}
		render_meta_engine(out, src->meta);
		render_lmdb(out, src->meta);
		render_raft(out, src->meta);
	}
}

/* ---- the HTTP endpoint ------------------------------------------------- */

struct nfsd_metrics {
	struct nfsd_metrics_src src;
	struct event_base *base;
	struct evhttp *http;
	pthread_t thread;
	bool running;
	unsigned port;
};

bool
nfsd_metrics_off(const char *listen)
{
	return listen == NULL || listen[0] == '\0' ||
	       strcmp(listen, "off") == 0 || strcmp(listen, "no") == 0 ||
	       strcmp(listen, "none") == 0;
}

static void
reply_text(struct evhttp_request *req, int code, const char *reason,
	   const char *ctype, const void *body, size_t len)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Cache-Control", "no-store");
	if (code == HTTP_BADMETHOD)
		evhttp_add_header(h, "Allow", "GET, HEAD");
	evbuffer_add(out, body, len);
	evhttp_send_reply(req, code, reason, NULL);
}

static void
reply_plain(struct evhttp_request *req, int code, const char *reason,
	    const char *body)
{
	reply_text(req, code, reason, "text/plain; charset=utf-8", body,
		   strlen(body));
}

static void
serve_metrics(struct evhttp_request *req, struct nfsd_metrics *m)
{
	struct tl_buf b = TL_BUF_INIT;

	nfsd_metrics_render(&m->src, &b);
	reply_text(req, HTTP_OK, "OK",
		   "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
	tl_buf_free(&b);
}

static void
serve_healthz(struct evhttp_request *req, struct nfsd_metrics *m)
{
	struct meta_usage u;
	int rc = m->src.meta != NULL ? meta_usage(m->src.meta, &u) : 0;
	char msg[160];

	if (rc == 0) {
		reply_plain(req, HTTP_OK, "OK", "ok\n");
		return;
	}
	snprintf(msg, sizeof(msg), "metadata engine: %s\n", strerror(-rc));
	reply_plain(req, 503, "Service Unavailable", msg);
}

/* ---- the admin endpoint ------------------------------------------------ */

int
nfsd_admin_token_read(const char *path, char *out, char **msg)
{
	char buf[NFSD_ADMIN_TOKEN_MAX + 2];
	struct stat st;
	size_t b = 0, e;
	ssize_t n;
	int fd, rc;

	*msg = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		rc = -errno;
		*msg = tl_asprintf("admin_token_file %s: %s", path,
				   strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		close(fd);
		*msg = tl_asprintf("admin_token_file %s must be a regular file "
				   "of this user with mode 0600 (chmod 600 "
				   "%s)",
				   path, path);
		return -EPERM;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		rc = -errno;
		*msg = tl_asprintf("admin_token_file %s: %s", path,
				   strerror(errno));
		return rc;
	}
	e = (size_t)n;
	while (b < e && (buf[b] == ' ' || buf[b] == '\t' || buf[b] == '\n' ||
			 buf[b] == '\r'))
		b++;
	while (e > b && (buf[e - 1] == ' ' || buf[e - 1] == '\t' ||
			 buf[e - 1] == '\n' || buf[e - 1] == '\r'))
		e--;
	if (e == b || e - b > NFSD_ADMIN_TOKEN_MAX ||
	    (size_t)n == sizeof(buf) - 1) {
		*msg = tl_asprintf(
			"admin_token_file %s is empty or longer than "
			"%d bytes",
			path, NFSD_ADMIN_TOKEN_MAX);
		return -ENODATA;
	}
	memcpy(out, buf + b, e - b);
	out[e - b] = '\0';
	return 0;
}

int
nfsd_admin_token_make(const char *path, char **msg)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t r[32];
	char text[2 * sizeof(r) + 1];
	int fd, rc;

	*msg = NULL;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return 0;
		rc = -errno;
		*msg = tl_asprintf("cannot make admin_token_file %s: %s", path,
				   strerror(errno));
		return rc;
	}
	tl_random_bytes(r, sizeof(r));
	for (size_t i = 0; i < sizeof(r); i++) {
		text[2 * i] = hex[r[i] >> 4];
		text[2 * i + 1] = hex[r[i] & 15];
	}
	text[2 * sizeof(r)] = '\n';
	if (write(fd, text, sizeof(text)) != (ssize_t)sizeof(text) ||
	    fsync(fd) != 0) {
		rc = errno ? -errno : -EIO;
		close(fd);
		unlink(path);
		*msg = tl_asprintf("cannot write admin_token_file %s: %s", path,
				   strerror(-rc));
		return rc;
	}
	close(fd);
	return 0;
}

/* Equal strings, in time that depends on their lengths only. */
static bool
token_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;

	for (size_t i = 0; i < la; i++)
		d |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
	return d == 0;
}

/* The request carries the token of admin_token_file; else it is
 * answered (401, or 503 when the file is unusable). */
static bool
admin_authorized(struct evhttp_request *req, struct nfsd_metrics *m)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const char *auth = evhttp_find_header(h, "Authorization");
	char token[NFSD_ADMIN_TOKEN_MAX + 1], *msg = NULL, *body;
	bool ok;

	if (nfsd_admin_token_read(m->src.admin_token_file, token, &msg) != 0) {
		tl_err("admin", "%s: admin requests refused", msg);
		body = tl_asprintf("admin endpoint unavailable: %s\n", msg);
		reply_plain(req, 503, "Service Unavailable", body);
		free(body);
		free(msg);
		return false;
	}
	ok = auth != NULL && strncmp(auth, "Bearer ", 7) == 0 &&
	     token_equal(auth + 7, token);
	memset(token, 0, sizeof(token));
	if (ok)
		return true;
	tl_notice("admin", "refused a request for %s: %s token",
		  evhttp_request_get_uri(req), auth == NULL ? "no" : "a wrong");
	evhttp_add_header(evhttp_request_get_output_headers(req),
			  "WWW-Authenticate", "Bearer realm=\"tessera admin\"");
	reply_plain(req, 401, "Unauthorized",
		    auth == NULL
			    ? "admin: no token; send \"Authorization: Bearer "
			      "TOKEN\" "
			      "with the contents of the gateway's "
			      "admin_token_file\n"
			    : "admin: wrong token; it is the contents of the "
			      "gateway's admin_token_file\n");
	return false;
}

/* POST /admin/limit: a body of NAME=VALUE lines, applied in order. */
static void
admin_limit_set(struct evhttp_request *req, struct nfsd_metrics *m)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	struct tl_buf out = TL_BUF_INIT;
	size_t len = evbuffer_get_length(in);
	char *body = tl_malloc(len + 1), *save = NULL, *line;
	int code = HTTP_OK, n = 0;

	evbuffer_remove(in, body, len);
	body[len] = '\0';
	for (line = strtok_r(body, "\r\n&", &save); line != NULL;
	     line = strtok_r(NULL, "\r\n&", &save)) {
		char *eq = strchr(line, '='), *msg = NULL;
		int rc;

		if (eq == NULL) {
			tl_buf_printf(&out, "'%s': want NAME=VALUE\n", line);
			code = HTTP_BADREQUEST;
			break;
		}
		*eq = '\0';
		rc = m->src.admin->limit_set(m->src.admin_arg, line, eq + 1,
					     &msg);
		if (rc != 0) {
			tl_buf_printf(&out, "%s\n", msg ? msg : strerror(-rc));
			free(msg);
			code = rc == -ENOENT ? HTTP_NOTFOUND : HTTP_BADREQUEST;
			break;
		}
		tl_buf_printf(&out, "%s = %s\n", line, eq + 1);
		free(msg);
		n++;
	}
	if (code == HTTP_OK && n == 0) {
		tl_buf_printf(&out, "no NAME=VALUE in the request\n");
		code = HTTP_BADREQUEST;
	}
	tl_buf_append(&out, "", 1);
	reply_plain(req, code,
		    code == HTTP_OK         ? "OK"
		    : code == HTTP_NOTFOUND ? "Not Found"
					    : "Bad Request",
		    (char *)out.data);
	tl_buf_free(&out);
	free(body);
}

static void
serve_admin(struct evhttp_request *req, struct nfsd_metrics *m,
	    const char *path, enum evhttp_cmd_type cmd)
{
	bool limit = strcmp(path, "/admin/limit") == 0;
	bool reload = strcmp(path, "/admin/reload") == 0;
	struct tl_buf out = TL_BUF_INIT;
	char *msg = NULL;
	int rc;

	if (m->src.admin == NULL || m->src.admin_token_file == NULL ||
	    m->src.admin_token_file[0] == '\0') {
		reply_plain(req, HTTP_NOTFOUND, "Not Found",
			    "no admin endpoint: admin_token_file is empty\n");
		return;
	}
	if (!limit && !reload) {
		reply_plain(req, HTTP_NOTFOUND, "Not Found",
			    "not found: try /admin/limit or /admin/reload\n");
		return;
	}
	if (!admin_authorized(req, m))
		return;
	if (limit && cmd == EVHTTP_REQ_GET) {
		m->src.admin->limit_get(m->src.admin_arg, &out);
		reply_text(req, HTTP_OK, "OK", "text/plain; charset=utf-8",
			   out.data, out.len);
		tl_buf_free(&out);
	} else if (cmd != EVHTTP_REQ_POST) {
		reply_plain(req, HTTP_BADMETHOD, "Method Not Allowed",
			    limit ? "GET or POST\n" : "only POST\n");
	} else if (limit) {
		admin_limit_set(req, m);
	} else {
		rc = m->src.admin->reload(m->src.admin_arg, &msg);
		out.len = 0;
		tl_buf_printf(&out, "%s\n",
			      msg       ? msg
			      : rc == 0 ? "reloaded"
					: strerror(-rc));
		tl_buf_append(&out, "", 1);
		reply_plain(req, rc == 0 ? HTTP_OK : HTTP_INTERNAL,
			    rc == 0 ? "OK" : "Internal Server Error",
			    (char *)out.data);
		tl_buf_free(&out);
		free(msg);
	}
}

static void
http_cb(struct evhttp_request *req, void *arg)
{
	struct nfsd_metrics *m = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	if (path == NULL || path[0] == '\0')
		path = "/";
	if (strncmp(path, "/admin/", 7) == 0) {
		serve_admin(req, m, path, cmd);
		return;
	}
	if (strcmp(path, "/metrics") != 0 && strcmp(path, "/healthz") != 0) {
		reply_plain(req, HTTP_NOTFOUND, "Not Found",
			    "not found: try /metrics or /healthz\n");
		return;
	}
	/* evhttp drops the body of a HEAD reply itself */
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		reply_plain(req, HTTP_BADMETHOD, "Method Not Allowed",
			    "only GET\n");
		return;
	}
	if (strcmp(path, "/metrics") == 0)
		serve_metrics(req, m);
	else
		serve_healthz(req, m);
}

static void *
http_thread(void *arg)
{
	struct nfsd_metrics *m = arg;

	pthread_setname_np(pthread_self(), "metrics");
	event_base_dispatch(m->base);
	return NULL;
}

/* A listening socket on listen; -errno with *err set. */
static int
bind_socket(const char *listen_s, evutil_socket_t *fd, unsigned *port,
	    char **err)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	unsigned len;
	int one = 1, s, rc;

	if (nfsd_parse_listen(listen_s, &ss, &len) != 0) {
		*err = tl_asprintf("bad metrics_listen address \"%s\" (want "
				   "ADDR:PORT, or off)",
				   listen_s);
		return -EINVAL;
	}
	s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0) {
		rc = -errno;
		goto fail;
	}
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&ss, len) != 0 || listen(s, 64) != 0) {
		rc = -errno;
		close(s);
		goto fail;
	}
	sl = sizeof(ss);
	getsockname(s, (struct sockaddr *)&ss, &sl);
	*port = nfsd_peer_port(&ss);
	*fd = s;
	return 0;
fail:
	*err = tl_asprintf("metrics: cannot listen on %s: %s", listen_s,
			   strerror(-rc));
	return rc;
}

int
nfsd_metrics_start(const char *listen_s, const struct nfsd_metrics_src *src,
		   struct nfsd_metrics **out, char **err)
{
	struct nfsd_metrics *m = tl_calloc(1, sizeof(*m));
	evutil_socket_t fd = -1;
	int rc;

	*err = NULL;
	*out = NULL;
	m->src = *src;
	rc = bind_socket(listen_s, &fd, &m->port, err);
	if (rc != 0)
		goto fail;
	evthread_use_pthreads();
	m->base = event_base_new();
	m->http = m->base != NULL ? evhttp_new(m->base) : NULL;
	if (m->http == NULL) {
		*err = tl_strdup("metrics: cannot create the HTTP server");
		rc = -ENOMEM;
		goto fail;
	}
	/* every method reaches http_cb, which answers 405 (evhttp would
	 * answer 501 to the ones outside its default set) */
	evhttp_set_allowed_methods(
		m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
				 EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
				 EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
				 EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_timeout(m->http, 30);
	evhttp_set_max_headers_size(m->http, 16384);
	evhttp_set_max_body_size(m->http, 65536);
	evhttp_set_gencb(m->http, http_cb, m);
	if (evhttp_accept_socket_with_handle(m->http, fd) == NULL) {
		*err = tl_strdup("metrics: cannot accept on the socket");
		rc = -EIO;
		goto fail;
	}
	fd = -1; /* the evhttp's now */
	rc = -pthread_create(&m->thread, NULL, http_thread, m);
	if (rc != 0) {
		*err = tl_asprintf("metrics: thread: %s", strerror(-rc));
		goto fail;
	}
	m->running = true;
	*out = m;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	nfsd_metrics_stop(m);
	return rc;
}

unsigned
nfsd_metrics_port(const struct nfsd_metrics *m)
{
	return m->port;
}

void
nfsd_metrics_stop(struct nfsd_metrics *m)
{
	if (m == NULL)
		return;
	if (m->running) {
		event_base_loopbreak(m->base);
		pthread_join(m->thread, NULL);
	}
	if (m->http != NULL)
		evhttp_free(m->http);
	if (m->base != NULL)
		event_base_free(m->base);
	free(m);
}
