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
	struct meta *meta;             /* volume usage, /healthz */
	struct cache *cache;           /* cache and writeback */
	struct os_store *os;           /* the store stack (wrappers) */
	uint64_t cache_size;           /* configured limit, 0: no cache */
	uint64_t buffer_limit;         /* configured buffer_limit */
	uint64_t start_ns;             /* wall clock at startup */
	uint64_t writeback_max_age_ms; /* alarm threshold */
	/* this gateway's session: whether it holds the background-job
	 * lease (NULL: not reported) */
	struct meta_session_keeper *session;
	struct nfsd_backup_job *backup; /* scheduled metadata backups */
	/* the admin endpoint under /admin/: off when admin_token_file is
	 * NULL or "" */
	const char *admin_token_file;
	const struct nfsd_admin_ops *admin;
	void *admin_arg;
	struct nfsd_billing *billing; /* billing figures (NULL: none) */
};

/*
 * The admin endpoint's actions, run on the endpoint's thread (main.c
 * fills them in).  Each returns 0 or a negative errno, with a message
 * for the caller (*msg, malloc'd, may be left NULL).
 */
struct nfsd_admin_ops {
	/* "NAME VALUE" lines of every limit settable at run time */
	void (*limit_get)(void *arg, struct tl_buf *out);
	/* -ENOENT: no such limit; -EINVAL: bad value */
	int (*limit_set)(void *arg, const char *name, const char *value,
			 char **msg);
	/* what SIGHUP does, the outcome reported */
	int (*reload)(void *arg, char **msg);
};

/* The admin endpoint's token: the file's contents, surrounding white
 * space removed, into out (>= NFSD_ADMIN_TOKEN_MAX + 1 bytes).  0; or
 * -EPERM when the file is not a regular file of this user with mode
 * 0600 or stricter, -ENODATA when it is empty or too long, -errno when
 * it cannot be read; *msg says which (caller frees). */
#define NFSD_ADMIN_TOKEN_MAX 256
int nfsd_admin_token_read(const char *path, char *out, char **msg);
/* Make the token file when it does not exist: 32 random bytes in hex,
 * mode 0600, created exclusively.  0 (made, or already there), or
 * -errno with *msg set. */
int nfsd_admin_token_make(const char *path, char **msg);

struct nfsd_metrics;

/* True for the values of metrics_listen that disable the endpoint ("",
 * "off", "no", "none"). */
bool nfsd_metrics_off(const char *listen);

/*
 * Serve GET /metrics (Prometheus text format 0.0.4), GET /healthz and
 * the admin endpoint (GET and POST /admin/limit, POST /admin/reload,
 * with "Authorization: Bearer TOKEN") on
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
