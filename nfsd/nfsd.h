/*
 * nfsd.h - the NFS server of Tessera: configuration and the server's life
 * cycle (used by tesserad's main and by tests that run a server in a
 * thread).
 *
 * One TCP port serves NFS v3 (100003), MOUNT v3 (100005) and, unless
 * locking is off, NLM v4 (100021) and NSM v1 (100024), which is also
 * served over UDP on that port (the restart notifications clients send).  A libevent
 * loop owns the listener and every connection; requests run on a pool of
 * worker threads and their replies go back in any order.
 */
#ifndef NFSD_H
#define NFSD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"
#include "lib/tl.h"
#include "meta/meta.h"

/* tessera.conf settings of the server; see nfsd_conf_opts (config.c) for
 * the defaults, bounds and help text, and tessera.conf(5). */
struct nfsd_config {
	char *meta;               /* metadata URL, "" = from --meta only */
	char *volume;             /* the volume of the metadata URL, "" = its
				     only one */
	char *listen;             /* "ADDR:PORT", "[v6]:PORT" */
	char *exports;            /* exports file, NULL/"" = default */
	uint64_t workers;         /* worker threads */
	uint64_t buffer_limit;    /* cache_opts.buffer_limit */
	uint64_t upload_threads;  /* cache_opts.upload_threads */
	uint64_t max_record_size; /* bytes of one RPC record */
	uint64_t max_connections;
	uint64_t max_inflight_per_conn;
	uint64_t request_memory; /* bytes of unanswered requests */
	uint64_t idle_timeout;   /* ms, 0 = never */
	uint64_t drc_entries;    /* duplicate request cache: entries */
	uint64_t drc_size;       /* and bytes */
	bool rpcbind;            /* register with rpcbind */
	bool proxy_protocol;     /* connections begin with a PROXY header */
	char *cache_dirs;        /* cache_opts: disk block cache */
	uint64_t cache_size;
	uint64_t cache_free_floor; /* percent */
	bool writeback;
	uint64_t writeback_max_age; /* ms */
	uint64_t readahead_max;
	uint64_t readahead_budget;
	uint64_t download_threads;
	uint64_t inline_max; /* cache_opts: inline data, 0: none */
	bool file_direct_io;
	uint64_t upload_limit;   /* bytes/s to the object store, 0: none */
	uint64_t download_limit; /* bytes/s from it */
	uint64_t store_wait_max; /* ms a request waits for the store */
	/* metadata rate limits (nfsd_limit_conf) */
	uint64_t client_meta_read_rate, client_meta_read_burst;
	uint64_t client_meta_write_rate, client_meta_write_burst;
	uint64_t export_meta_read_rate, export_meta_read_burst;
	uint64_t export_meta_write_rate, export_meta_write_burst;
	uint64_t limit_wait_max; /* ms */
	uint64_t limit_clients;  /* client table entries */
	char *admin_token_file;  /* the admin endpoint's token */
	char *log_level;
	char *log_file;           /* "" = stderr or syslog */
	char *metrics_listen;     /* HTTP "ADDR:PORT"; "" or "off": none */
	uint64_t session_timeout; /* ms: the gateway session's ttl */
	/* NFS locks (NLM v4, NSM: nfsd/lockd.c) */
	bool locking;
	uint64_t lock_grace; /* ms */
	uint64_t lock_poll;  /* ms */
	uint64_t max_locks;
	uint64_t max_locks_per_client;
	uint64_t max_lock_waiters;
	uint64_t lock_callback_window; /* ms */
	bool bgjob;                    /* may hold the background-job lease */
	bool bgjob_only;               /* run the jobs, serve no NFS */
	uint64_t bgjob_delete_rate;    /* objects deleted per second, 0: any */
	uint64_t bgjob_txn_rate;       /* jobs' metadata transactions per s */
	uint64_t test_trash_retention; /* ms, tests: instead of trash_days */
	uint64_t backup_interval;      /* ms, 0: no scheduled backups */
	uint64_t backup_keep;
	char *backup_tmpdir;       /* "": $TMPDIR or /var/tmp */
	char *billing_dir;         /* billing lines go here; "": none */
	uint64_t billing_interval; /* ms */
	char *billing_dirs;        /* ':'-separated volume paths billed */
	/* raft:// (meta/kv_raft.c) */
	uint64_t raft_id;
	char *raft_dir, *raft_address, *raft_listen, *raft_peers;
	char *raft_secret_file;
	uint64_t raft_election_timeout, raft_heartbeat; /* ms */
	uint64_t raft_snapshot_entries, raft_snapshot_trailing;
	uint64_t raft_timeout; /* ms */
	bool raft_follower_leases;
};

extern const struct tl_conf_opt nfsd_conf_opts[];
extern const size_t nfsd_conf_nopts;

/* Defaults into cfg; free with nfsd_config_free. */
void nfsd_config_defaults(struct nfsd_config *cfg);
void nfsd_config_free(struct nfsd_config *cfg);

/* The metadata URL of this gateway's raft node, from url ("raft://": the
 * node of raft_dir, or "raft:///DIR") and the raft_* options: node says
 * the node itself (tesserad), else a client of the node running here (the
 * tessera command); bootstrap founds a new group of this one node.
 * Caller frees; NULL and *err (caller frees) if the options are lacking. */
char *nfsd_raft_url(const struct nfsd_config *cfg, const char *url, bool node,
		    bool bootstrap, char **err);

/* Split "ADDR:PORT" / "[ADDR]:PORT" / ":PORT" into a socket address. */
struct sockaddr_storage;
int nfsd_parse_listen(const char *s, struct sockaddr_storage *ss,
		      unsigned *len);

/*
 * Rate limits on metadata operations (limit.c): token buckets per client
 * address and per export, for the procedures that read metadata
 * (GETATTR, LOOKUP, ACCESS, READLINK, READDIR, READDIRPLUS, FSSTAT,
 * FSINFO, PATHCONF) and those that change it (SETATTR, CREATE, MKDIR,
 * SYMLINK, MKNOD, REMOVE, RMDIR, RENAME, LINK) apart.  A call over a
 * limit waits for its token, at most wait_max_ms, without holding a
 * worker; one that would wait longer is answered NFS3ERR_JUKEBOX.
 */
enum { NFSD_LIMIT_READ, NFSD_LIMIT_WRITE, NFSD_LIMIT_NCLASS };
struct nfsd_limit_conf {
	uint64_t client_rate[NFSD_LIMIT_NCLASS];  /* ops/s, 0: no limit */
	uint64_t client_burst[NFSD_LIMIT_NCLASS]; /* 0: the rate */
	uint64_t export_rate[NFSD_LIMIT_NCLASS];
	uint64_t export_burst[NFSD_LIMIT_NCLASS];
	uint64_t wait_max_ms;
};
/* The limits cfg sets. */
void nfsd_limit_conf_from(const struct nfsd_config *cfg,
			  struct nfsd_limit_conf *out);
/* What one export's calls met (per class), for /metrics. */
struct nfsd_limit_stats {
	const char *path;
	uint64_t delayed[NFSD_LIMIT_NCLASS];
	uint64_t refused[NFSD_LIMIT_NCLASS];
};

struct nfsd_server;

/*
 * Create a server that borrows m and c (either may be NULL in tests that
 * only exercise the transport: calls then fail with SERVERFAULT) and
 * listens on cfg->listen (port 0 picks a free port: see
 * nfsd_server_port).  The exports are read from cfg->exports (or the
 * default) and their roots resolved.  *err receives a message the caller
 * frees.
 */
int nfsd_server_create(const struct nfsd_config *cfg, struct meta *m,
		       struct cache *c, struct nfsd_server **out, char **err);
/* The port actually listened on. */
unsigned nfsd_server_port(const struct nfsd_server *s);
/* Register NFS and MOUNT (and NLM, NSM) with rpcbind; a warning, not
 * an error, when no rpcbind runs.  Unregistered by nfsd_server_free. */
void nfsd_server_register(struct nfsd_server *s);
/* Begin serving NFS locks as gateway session (meta_session_id; 0: none):
 * adopt the clients of gateways that are gone, this one's earlier runs
 * included, tell them to reclaim, keep the grace period.  Until then
 * NLM answers NLM4_DENIED_GRACE_PERIOD.  0 when locking is off. */
int nfsd_server_locks_start(struct nfsd_server *s, uint64_t session);
/* Serve until nfsd_server_stop; SIGTERM/SIGINT stop, SIGHUP reloads the
 * exports (in the server's control thread, never on the event loop) when
 * handle_signals.  Returns 0 or a negative errno. */
int nfsd_server_run(struct nfsd_server *s, bool handle_signals);
/* Catch SIGTERM, SIGINT and SIGHUP from now on (their actions run once
 * nfsd_server_run runs), so that a signal sent as soon as the daemon
 * says it serves is not fatal. */
void nfsd_server_catch_signals(struct nfsd_server *s);
/* Ask the loop to return (any thread). */
void nfsd_server_stop(struct nfsd_server *s);
/* Re-read the exports file and resolve the roots and host names; the old
 * exports stay in force if that fails.  Requests in progress keep the
 * exports they started with; the reload never waits for them.  May wait
 * for the resolver: any thread but the event loop's. */
int nfsd_server_reload(struct nfsd_server *s, char **err);
/* Resolve the host names of the exports in force again and publish them
 * if an address changed (what the control thread does every minute; may
 * wait for the resolver).  Any thread but the event loop's. */
void nfsd_server_refresh_hosts(struct nfsd_server *s);
/* Switch to another exports file (NULL or "": the default) and reload;
 * on error nothing changes. */
int nfsd_server_set_exports(struct nfsd_server *s, const char *file,
			    char **err);
/* Call fn(s, arg) on SIGHUP instead of the default (nfsd_server_reload),
 * in the server's control thread (which also resolves the exports' host
 * names every minute), never on the event loop. */
void nfsd_server_on_hup(struct nfsd_server *s,
			void (*fn)(struct nfsd_server *, void *), void *arg);
/* Counters of the duplicate request cache (retransmitted
 * non-idempotent calls answered from it, and its occupancy). */
struct nfsd_drc_stats {
	uint64_t hits;           /* retransmits answered with the saved reply */
	uint64_t inprogress;     /* retransmits dropped: first still running */
	uint64_t misses;         /* calls run (not in the cache) */
	uint64_t evictions;      /* entries dropped to stay within the limits */
	uint64_t expired;        /* entries found too old to replay */
	uint64_t uncached;       /* replies not kept (too big, none) */
	uint64_t entries, bytes; /* now */
};
void nfsd_server_drc_stats(struct nfsd_server *s, struct nfsd_drc_stats *out);
/* Figures of NFS locking (nfsd/lockd.c). */
struct nfsd_lock_stats {
	uint64_t locks;      /* lock records of the volume, all gateways */
	uint64_t waiters;    /* blocked requests kept here now */
	uint64_t callbacks;  /* calls to clients queued or running */
	uint64_t granted_cb; /* GRANTED callbacks the client accepted */
	uint64_t cb_failed;  /* callbacks given up (client unreachable) */
	uint64_t polls;      /* reads of the volume's release counter */
	uint64_t adopted;    /* clients adopted from gateways gone */
	uint64_t gateways;   /* other live gateway sessions, last seen */
	bool grace;          /* only reclaims are granted */
};
/* False when locking is off. */
bool nfsd_server_lock_stats(struct nfsd_server *s, struct nfsd_lock_stats *out);

/* The paths of the exports in force, as an array of *n strings (caller
 * frees each and the array). */
char **nfsd_server_export_paths(struct nfsd_server *s, size_t *n);

/* Close connections, wait for workers, log the DRC counters,
 * unregister, free.  Does not close
 * the meta or cache it borrowed. */
/* The metadata rate limits in force, and new ones (any thread; calls
 * already waiting keep the wait they were given). */
void nfsd_server_get_limits(struct nfsd_server *s, struct nfsd_limit_conf *out);
void nfsd_server_set_limits(struct nfsd_server *s,
			    const struct nfsd_limit_conf *c);
/* fn(arg, st) for each export that had a limited call since the start
 * and each export in force (zeros), then the client table's size and
 * the entries it reused. */
void nfsd_server_limit_stats(struct nfsd_server *s,
			     void (*fn)(void *arg,
					const struct nfsd_limit_stats *st),
			     void *arg, size_t *clients, uint64_t *evicted);
void nfsd_server_free(struct nfsd_server *s);

/* ---- metadata backups in the object store (backup.c) ----------------------
 *
 * A backup is a dump of the volume's metadata (meta_dump, zstd
 * compressed) stored as objects of the volume's own store, under
 *   NAME/meta-backup/ID/00000000 ...   the dump, cut in parts
 *   NAME/meta-backup/ID/index          written last, once every part is
 *                                      durable: without it the backup
 *                                      is incomplete
 * ID is the UTC time of the snapshot, 20261207T133641.123Z, so that
 * backups sort by age.  They go through the store's wrappers (crypt,
 * zstd, ratelimit) like blocks do: reading one back needs the volume's
 * full storage URL.
 */
#define NFSD_BACKUP_DIR        "meta-backup"
#define NFSD_BACKUP_PART       (8u << 20) /* bytes of one part */
#define NFSD_BACKUP_ZSTD_LEVEL 1

struct os_store;

struct nfsd_backup_opts {
	uint64_t interval_ms; /* 0: no scheduled backups */
	unsigned keep;        /* complete backups kept */
	const char *tmpdir;   /* for the snapshot copy (meta_dump_opts) */
	uint32_t part_size;   /* 0: NFSD_BACKUP_PART (tests cut smaller) */
	/* Backups are written only while gate(gate_arg) says so: while
	 * this gateway holds the background-job lease.  NULL: always. */
	bool (*gate)(void *arg);
	void *gate_arg;
};

/* What the store holds of one backup. */
struct nfsd_backup_entry {
	char id[META_BACKUP_ID_MAX];
	bool complete;         /* its index is there */
	uint64_t parts, bytes; /* stored */
	uint64_t keys;         /* from the index (complete ones) */
};

/* Write a backup of m now, whoever's turn it is: *id (META_BACKUP_ID_MAX
 * bytes) receives its name, *b what meta_backup_done records.  On
 * failure what was stored of it is deleted; *err says why. */
int nfsd_backup_write(struct meta *m, struct os_store *os,
		      const struct nfsd_backup_opts *o, struct meta_backup *b,
		      struct meta_dump_stats *st, char **err);
/* The backups of volume in the store, oldest first; caller frees *out. */
int nfsd_backup_list(struct os_store *os, const char *volume,
		     struct nfsd_backup_entry **out, size_t *n);
/* Delete all but the newest keep complete backups, and incomplete ones
 * older than the newest complete one (abandoned); *deleted (may be NULL)
 * counts the backups removed. */
int nfsd_backup_prune(struct os_store *os, const char *volume, unsigned keep,
		      unsigned *deleted);

/* A backup read back as one stream: nfsd_backup_read is a
 * meta_dump_read_fn for meta_load and meta_dump_verify.  id NULL: the
 * newest complete backup (-ENOENT when there is none; *err says so). */
struct nfsd_backup_reader;
int nfsd_backup_open(struct os_store *os, const char *volume, const char *id,
		     struct nfsd_backup_reader **out, char **err);
const char *nfsd_backup_reader_id(const struct nfsd_backup_reader *r);
int nfsd_backup_read(void *arg, void *buf, size_t cap, size_t *got);
void nfsd_backup_close(struct nfsd_backup_reader *r);

/* The gateway's scheduled backups: a thread that writes one every
 * interval_ms when the volume's last backup is older than that and no
 * other live gateway session is writing one (meta_backup_claim), then
 * prunes to keep.  session: this gateway's (meta_session_id).  Until
 * issue 15's background-job lease exists every gateway of a volume
 * runs the thread and the claim decides; then only the lease holder
 * will. */
struct nfsd_backup_job;
int nfsd_backup_start(struct meta *m, struct os_store *os, uint64_t session,
		      const struct nfsd_backup_opts *o,
		      struct nfsd_backup_job **out);
/* Stop (waits for a backup being written; NULL is fine). */
void nfsd_backup_stop(struct nfsd_backup_job *j);
struct nfsd_backup_stats {
	uint64_t interval_ms;
	uint64_t written, failed; /* by this gateway */
	uint64_t last_ms;         /* how long the last one took */
};
void nfsd_backup_stats(struct nfsd_backup_job *j, struct nfsd_backup_stats *s);

/* ---- billing figures (billing.c) -------------------------------------------
 *
 * Every interval (aligned on multiples of it since the epoch: on the
 * hour for 1h), the gateway that holds the volume's background-job lease
 * writes one JSON line for the volume, one per export and one per
 * directory that carries a quota (directories of billing_dirs get a
 * quota without limits, so that their usage is kept), to
 * <dir>/billing-YYYY-MM-DD.jsonl (the UTC day of the line's time), and
 * keeps the same figures for /metrics.  Every gateway adds the bytes
 * its clients read and wrote per export to the volume's metadata
 * (meta_io_add) every flush period, so the lines count all gateways.
 * The format is tessera(1)'s, BILLING. */
struct nfsd_billing_opts {
	const char *dir; /* NULL or "": no lines written */
	uint64_t interval_ms;
	const char *dirs; /* billing_dirs, ':'-separated; may be NULL */
	/* Lines are written only while gate(gate_arg) says so (the lease
	 * holder); NULL: always. */
	bool (*gate)(void *arg);
	void *gate_arg;
	struct nfsd_server *srv; /* its exports; NULL (bgjob_only): none */
};
struct nfsd_billing;
int nfsd_billing_start(struct meta *m, const struct nfsd_billing_opts *o,
		       struct nfsd_billing **out);
/* A reload: o's dir, interval_ms and dirs from the next wake of the
 * thread on (the rest of o is ignored); each change is logged.  A new
 * interval's first lines are at its next multiple. */
void nfsd_billing_set(struct nfsd_billing *b,
		      const struct nfsd_billing_opts *o);
/* Flush this gateway's counts into metadata and stop (NULL is fine). */
void nfsd_billing_stop(struct nfsd_billing *b);
/* Append the figures of the last lines (Prometheus text: tessera_billing_*
 * gauges) and this gateway's bytes per export to out. */
void nfsd_billing_metrics(struct nfsd_billing *b, struct tl_buf *out);
/* The file of the lines of unix time t: "billing-YYYY-MM-DD.jsonl". */
void nfsd_billing_file_name(uint64_t unix_s, char *buf, size_t len);

#endif /* NFSD_H */
