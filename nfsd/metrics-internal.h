/*
 * metrics-internal.h - tesserad's Prometheus metrics and admin endpoint
 * (metrics.c): the counters of counters-internal.h and the figures
 * other modules keep (the duplicate request cache through nfsd.h,
 * cache_stats, the object store's wrappers, meta_usage), read when
 * /metrics is fetched.
 *
 * The top of nfsd/ with main.c: nothing below includes this file, and
 * nothing outside nfsd/ does.
 */
#ifndef NFSD_METRICS_INTERNAL_H
#define NFSD_METRICS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "cache/cache.h"
#include "lib/tl.h"
#include "meta/meta.h"
#include "nfsd/nfsd.h"
#include "objstore/objstore.h"

/* What /metrics and /healthz read, borrowed for the endpoint's life;
 * any pointer may be NULL (the figures are then left out). */
struct nfsd_metrics_src {
	struct nfsd_server *srv;       /* connections, DRC */
	struct meta *meta;	       /* volume usage, /healthz */
	struct cache *cache;	       /* cache and writeback */
	struct os_store *os;	       /* the store stack (wrappers) */
	uint64_t cache_size;	       /* configured limit, 0: no cache */
	uint64_t buffer_limit;	       /* configured buffer_limit */
	uint64_t start_ns;	       /* wall clock at startup */
	uint64_t writeback_max_age_ms; /* alarm threshold */
	/* this gateway's session: whether it holds the background-job
	 * lease (NULL: not reported) */
	struct meta_session_keeper *session;
	struct nfsd_backup_job *backup; /* scheduled metadata backups */
};

struct nfsd_metrics;

/* True for the values of metrics_listen that disable the endpoint ("",
 * "off", "no", "none"). */
bool nfsd_metrics_off(const char *listen);

/*
 * Serve GET /metrics (Prometheus text format 0.0.4) and GET /healthz on
 * listen ("ADDR:PORT" as nfsd_parse_listen; port 0 picks one, see
 * nfsd_metrics_port), on a thread and event loop of its own.  *err
 * receives a message the caller frees.  Stop with nfsd_metrics_stop
 * before src's objects go away.
 */
int nfsd_metrics_start(const char *listen, const struct nfsd_metrics_src *src,
		       struct nfsd_metrics **out, char **err);
unsigned nfsd_metrics_port(const struct nfsd_metrics *m);
/* Stop the thread, close the socket, free (NULL is fine). */
void nfsd_metrics_stop(struct nfsd_metrics *m);

/* The exposition text of src appended to out (tests, the endpoint). */
void nfsd_metrics_render(const struct nfsd_metrics_src *src,
			 struct tl_buf *out);

#endif /* NFSD_METRICS_INTERNAL_H */
