/*
 * main.c - tesserad, the Tessera NFS gateway.
 *
 * Settings come from, in increasing priority: the built-in defaults of
 * the table in config.c, tessera.conf (-c, default /etc/tessera/
 * tessera.conf when present), then the command line.  Without
 * --foreground the process daemonizes the Unix way (fork, setsid, chdir
 * /, stdio to /dev/null, syslog); the parent waits until the child
 * listens, so `tesserad ... && mount ...` works and a startup error is
 * printed by the command that failed.
 *
 * Under a service manager ($NOTIFY_SOCKET set, systemd's Type=notify)
 * it never forks, logs to stderr (the journal) and says READY=1 once it
 * serves, RELOADING=1 ... READY=1 around a SIGHUP reload and STOPPING=1
 * when it begins to shut down (lib/sdnotify.c).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/cache.h"
#include "meta/meta.h"
#include "nfsd/metrics-internal.h"
#include "nfsd/nfsd.h"
#include "objstore/objstore.h"

#define DEFAULT_CONF "/etc/tessera/tessera.conf"

struct args {
	const char *conf;
	const char *pidfile;
	bool foreground;
	char **sets; /* "name=value" overrides, in order */
	size_t nsets;
};

static void
usage(FILE *f)
{
	char def[64];

	fprintf(f,
		"Usage: tesserad --meta META_URL [options]\n"
		"Serve a Tessera volume over NFS v3 (with MOUNT v3, NLM v4 "
		"and NSM) on one port.\n\n"
		"  -m, --meta URL        metadata engine (lmdb:///dir, or "
		"raft://\n"
		"                        with the raft_* options; option "
		"meta)\n"
		"      --volume NAME     the volume to serve when the "
		"metadata\n"
		"                        holds several (option volume)\n"
		"  -l, --listen A:P      listen address (option listen)\n"
		"  -e, --exports FILE    exports file (option exports)\n"
		"  -c, --config FILE     tessera.conf (default %s)\n"
		"  -o, --set NAME=VALUE  set any tessera.conf option\n"
		"  -f, --foreground      do not daemonize; log to stderr\n"
		"      --no-rpcbind      do not register with rpcbind\n"
		"      --no-bgjob        never run the volume's background "
		"jobs\n"
		"                        (option bgjob)\n"
		"      --bgjob-only      run only the background jobs, serve "
		"no NFS\n"
		"                        (option bgjob_only)\n"
		"      --metrics-listen A:P  HTTP /metrics and /healthz, "
		"or off\n"
		"                        (option metrics_listen)\n"
		"  -p, --pidfile FILE    write the process id to FILE\n"
		"  -L, --log-level L     err, warn, notice, info, debug\n"
		"      --log-file FILE   log to FILE (option log_file)\n"
		"  -h, --help            this text\n"
		"  -V, --version         print the version\n\n"
		"tessera.conf options (tessera.conf(5)):\n",
		DEFAULT_CONF);
	for (size_t i = 0; i < nfsd_conf_nopts; i++) {
		const struct tl_conf_opt *o = &nfsd_conf_opts[i];

		snprintf(def, sizeof(def), "%s", o->def[0] ? o->def : "\"\"");
		fprintf(f, "  %-22s %s\n  %-22s (default %s)\n", o->name,
			o->help, "", def);
	}
}

static void
add_set(struct args *a, const char *name, const char *value)
{
	a->sets = tl_realloc(a->sets, (a->nsets + 1) * sizeof(char *));
	a->sets[a->nsets++] = tl_asprintf("%s=%s", name, value);
}

/* 0, or 1 (exit now, status in *status). */
static int
parse_args(int argc, char **argv, struct args *a, int *status)
{
	static const struct option lo[] = {
		{"meta", required_argument, NULL, 'm'},
		{"volume", required_argument, NULL, 'N'},
		{"listen", required_argument, NULL, 'l'},
		{"exports", required_argument, NULL, 'e'},
		{"config", required_argument, NULL, 'c'},
		{"set", required_argument, NULL, 'o'},
		{"foreground", no_argument, NULL, 'f'},
		{"no-rpcbind", no_argument, NULL, 'R'},
		{"no-bgjob", no_argument, NULL, 'B'},
		{"bgjob-only", no_argument, NULL, 'J'},
		{"metrics-listen", required_argument, NULL, 'M'},
		{"pidfile", required_argument, NULL, 'p'},
		{"log-level", required_argument, NULL, 'L'},
		{"log-file", required_argument, NULL, 'F'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "m:l:e:c:o:fp:L:hV", lo, NULL)) !=
	       -1) {
		switch (ch) {
		case 'm':
			add_set(a, "meta", optarg);
			break;
		case 'N':
			add_set(a, "volume", optarg);
			break;
		case 'l':
			add_set(a, "listen", optarg);
			break;
		case 'e':
			add_set(a, "exports", optarg);
			break;
		case 'c':
			a->conf = optarg;
			break;
		case 'o':
			a->sets = tl_realloc(a->sets,
					     (a->nsets + 1) * sizeof(char *));
			a->sets[a->nsets++] = tl_strdup(optarg);
			break;
		case 'f':
			a->foreground = true;
			break;
		case 'R':
			add_set(a, "rpcbind", "no");
			break;
		case 'B':
			add_set(a, "bgjob", "no");
			break;
		case 'J':
			add_set(a, "bgjob_only", "yes");
			break;
		case 'M':
			add_set(a, "metrics_listen", optarg);
			break;
		case 'p':
			a->pidfile = optarg;
			break;
		case 'L':
			add_set(a, "log_level", optarg);
			break;
		case 'F':
			add_set(a, "log_file", optarg);
			break;
		case 'h':
			usage(stdout);
			*status = 0;
			return 1;
		case 'V':
			printf("tesserad %s\n", PACKAGE_VERSION);
			*status = 0;
			return 1;
		default:
			usage(stderr);
			*status = 2;
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tesserad: unexpected argument \"%s\"\n",
			argv[optind]);
		usage(stderr);
		*status = 2;
		return 1;
	}
	return 0;
}

/* Every cache directory must be an absolute path (the daemon runs in /)
 * to a directory that exists: it is never created. */
static int
check_cache_dirs(const char *dirs, char **err)
{
	char *list = tl_strdup(dirs), *save = NULL, *d;
	struct stat st;
	int rc = 0;

	for (d = strtok_r(list, ":", &save); d != NULL && rc == 0;
	     d = strtok_r(NULL, ":", &save)) {
		if (d[0] != '/') {
			*err = tl_asprintf("cache_dirs: \"%s\" is not an "
					   "absolute path",
					   d);
			rc = -EINVAL;
		} else if (stat(d, &st) < 0) {
			*err = tl_asprintf("cache_dirs: %s: %s (create it, "
					   "mode 0700, owned by the user "
					   "tesserad runs as)",
					   d, strerror(errno));
			rc = -ENOENT;
		} else if (!S_ISDIR(st.st_mode)) {
			*err = tl_asprintf("cache_dirs: %s is not a "
					   "directory",
					   d);
			rc = -ENOTDIR;
		}
	}
	free(list);
	return rc;
}

/* errp (may be NULL) receives the message of an error (caller frees). */
static int
load_config_err(const struct args *a, struct nfsd_config *cfg, char **errp)
{
	const char *conf = a->conf;
	char *err = NULL;
	int rc = 0;

	nfsd_config_defaults(cfg);
	if (conf == NULL && access(DEFAULT_CONF, R_OK) == 0)
		conf = DEFAULT_CONF;
	if (conf != NULL)
		rc = tl_conf_load(nfsd_conf_opts, nfsd_conf_nopts, cfg, conf,
				  &err);
	for (size_t i = 0; rc == 0 && i < a->nsets; i++) {
		char *eq = strchr(a->sets[i], '=');

		if (eq == NULL) {
			err = tl_asprintf("--set %s: want NAME=VALUE",
					  a->sets[i]);
			rc = -EINVAL;
			break;
		}
		*eq = '\0';
		rc = tl_conf_set(nfsd_conf_opts, nfsd_conf_nopts, cfg,
				 a->sets[i], eq + 1, &err);
		*eq = '=';
	}
	if (rc == 0) {
		struct sockaddr_storage ss;
		unsigned sl;

		if (nfsd_parse_listen(cfg->listen, &ss, &sl) != 0) {
			err = tl_asprintf("bad listen address \"%s\" (want "
					  "ADDR:PORT)",
					  cfg->listen);
			rc = -EINVAL;
		}
		if (rc == 0 && !nfsd_metrics_off(cfg->metrics_listen) &&
		    nfsd_parse_listen(cfg->metrics_listen, &ss, &sl) != 0) {
			err = tl_asprintf("bad metrics_listen address \"%s\" "
					  "(want ADDR:PORT, or off)",
					  cfg->metrics_listen);
			rc = -EINVAL;
		}
		if (rc == 0 && cfg->meta[0] == '\0') {
			err = tl_asprintf("no metadata URL: give --meta URL "
					  "or set meta in %s",
					  conf != NULL ? conf : DEFAULT_CONF);
			rc = -EINVAL;
		}
		if (rc == 0)
			rc = check_cache_dirs(cfg->cache_dirs, &err);
		if (rc == 0 && cfg->bgjob_only && !cfg->bgjob) {
			err = tl_strdup(
				"bgjob_only with bgjob off (--no-bgjob) "
				"would run nothing");
			rc = -EINVAL;
		}
		if (rc == 0 && cfg->writeback && cfg->cache_dirs[0] == '\0') {
			err = tl_strdup("writeback needs cache_dirs (blocks "
					"are staged there)");
			rc = -EINVAL;
		}
	}
	if (rc != 0) {
		tl_err("tesserad", "%s", err != NULL ? err : strerror(-rc));
		if (errp != NULL)
			*errp = err != NULL ? err : tl_strdup(strerror(-rc));
		else
			free(err);
	}
	return rc;
}

static int
load_config(const struct args *a, struct nfsd_config *cfg)
{
	return load_config_err(a, cfg, NULL);
}

/* Fork; the parent waits for one byte on the pipe ("listening") and
 * exits 0, or exits 1 when the child dies first.  Returns the write end
 * in the child. */
static int
daemonize(void)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe(p) != 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &c, 1) == 1)
			_exit(0);
		waitpid(pid, NULL, 0);
		_exit(1);
	}
	close(p[0]);
	setsid();
	if (chdir("/") != 0)
		return -errno;
	umask(022);
	return p[1];
}

/* stdin and stdout to /dev/null, and stderr unless the log goes there
 * (a daemon without syslog and without log_file). */
static void
detach_stdio(int ready_fd, bool keep_stderr)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		if (!keep_stderr)
			dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	if (ready_fd >= 0) {
		(void)!write(ready_fd, "", 1);
		close(ready_fd);
	}
}

static int
write_pidfile(const char *path)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -errno;
	fprintf(f, "%ld\n", (long)getpid());
	return fclose(f) == 0 ? 0 : -errno;
}

/* Tell the service manager, if one waits; a failure is logged, since it
 * will soon think the daemon hung. */
static void
notify(const char *state)
{
	int rc = tl_sd_notify(state);

	if (rc < 0)
		tl_warn("tesserad",
			"cannot notify the service manager at %s: %s",
			getenv("NOTIFY_SOCKET"), strerror(-rc));
}

struct backend {
	struct meta *meta;
	struct os_store *os;
	struct cache *cache;
	/* read by the background job's thread (bgjob_gate) */
	struct meta_session_keeper *_Atomic session;
	struct nfsd_backup_job *backup;
	struct nfsd_billing *billing;
};

/* The background jobs (cache/gc.c) run while this gateway holds the
 * volume's lease (meta.h): none before its session is recorded. */
static bool
bgjob_gate(void *arg)
{
	struct backend *b = arg;
	struct meta_session_keeper *k = b->session;

	return k != NULL && meta_session_lease_held(k);
}

static int
open_backend(const char *url, const struct nfsd_config *cfg, struct backend *b)
{
	struct cache_opts co = {
		.buffer_limit = cfg->buffer_limit,
		.upload_threads = (unsigned)cfg->upload_threads,
		.gc = cfg->bgjob,
		.bgjob_gate = bgjob_gate,
		.bgjob_arg = b,
		.gc_delete_rate = cfg->bgjob_delete_rate,
		.gc_txn_rate = cfg->bgjob_txn_rate,
		.cache_dirs = cfg->cache_dirs,
		.cache_size = cfg->cache_size,
		.cache_free_floor = (unsigned)cfg->cache_free_floor,
		.writeback = cfg->writeback,
		.writeback_max_age_ms = cfg->writeback_max_age,
		.readahead_max = cfg->readahead_max,
		.readahead_budget = cfg->readahead_budget,
		.download_threads = (unsigned)cfg->download_threads,
		.store_wait_ms = cfg->store_wait_max,
		.inline_max = (uint32_t)cfg->inline_max,
	};
	char *err = NULL;
	int rc;

	rc = meta_open(url, cfg->volume[0] ? cfg->volume : NULL, &b->meta,
		       &err);
	if (rc != 0) {
		tl_err("tesserad", "%s: %s", url, err ? err : strerror(-rc));
		goto out;
	}
	rc = os_open(meta_settings(b->meta)->storage, &b->os, &err);
	if (rc != 0) {
		tl_err("tesserad", "object store %s: %s",
		       meta_settings(b->meta)->storage,
		       err ? err : strerror(-rc));
		goto out;
	}
	if (cfg->test_trash_retention != 0) {
		tl_warn("tesserad",
			"test_trash_retention: removed files are "
			"released %llu ms after their removal, not after "
			"trash_days (an option for tests)",
			(unsigned long long)cfg->test_trash_retention);
		meta_set_trash_retention(b->meta, cfg->test_trash_retention *
							  1000000ULL);
	}
	rc = cache_store_claim(b->meta, b->os, url, &err);
	if (rc != 0) {
		tl_err("tesserad", "%s", err);
		goto out;
	}
	if (cfg->file_direct_io &&
	    os_file_direct(os_unwrap(b->os, "file"), true) < 0)
		tl_warn("tesserad",
			"file_direct_io: %s is not a file:// "
			"store; ignored",
			meta_settings(b->meta)->storage);
	/* Always wrapped, so that SIGHUP can set or lift the limits. */
	rc = os_ratelimit_wrap(b->os, cfg->upload_limit, cfg->download_limit,
			       &b->os);
	if (rc != 0) {
		tl_err("tesserad", "bandwidth limits: %s", strerror(-rc));
		goto out;
	}
	rc = cache_open(b->meta, b->os, &co, &b->cache);
	if (rc != 0)
		tl_err("tesserad", "cache: %s", strerror(-rc));
out:
	free(err);
	return rc;
}

static void
close_backend(struct backend *b)
{
	/* a backup being written finishes first: it reads meta, writes os */
	nfsd_backup_stop(b->backup);
	nfsd_billing_stop(b->billing); /* adds its last NFS byte counts */
	if (b->cache != NULL)
		cache_close(b->cache); /* flushes buffered writes */
	if (b->os != NULL)
		os_close(b->os);
	/* Only now is nothing of this gateway left to write. */
	meta_session_stop(b->session);
	if (b->meta != NULL)
		meta_close(b->meta);
}

struct hup {
	const struct args *args;
	const struct nfsd_config *cfg;  /* as started */
	struct os_store *ratelimit;     /* the store's bandwidth limits */
	struct cache *cache;            /* store_wait_max, the jobs' pace */
	uint64_t delete_rate, txn_rate; /* the pace now */
	const char *status;             /* STATUS=...READY=1 after a reload */
	struct nfsd_server *srv;        /* NULL: no NFS (bgjob_only) */
	struct nfsd_billing *billing;   /* the billing_* options */
	/* one reload or limit change at once (SIGHUP's control thread, the
	 * admin endpoint's thread); live: the limits in force */
	pthread_mutex_t lock;
	struct nfsd_config live;
};

/* The options `tessera limit` and the admin endpoint set at run time. */
static const char *const live_limits[] = {
	"client_meta_read_rate",  "client_meta_read_burst",
	"client_meta_write_rate", "client_meta_write_burst",
	"export_meta_read_rate",  "export_meta_read_burst",
	"export_meta_write_rate", "export_meta_write_burst",
	"limit_wait_max",         "upload_limit",
	"download_limit",         "store_wait_max",
};

static const struct tl_conf_opt *
conf_opt(const char *name)
{
	for (size_t i = 0; i < nfsd_conf_nopts; i++)
		if (strcmp(nfsd_conf_opts[i].name, name) == 0)
			return &nfsd_conf_opts[i];
	return NULL;
}

static uint64_t *
conf_u64(struct nfsd_config *c, const char *name)
{
	return (uint64_t *)((char *)c + conf_opt(name)->offset);
}

/* Put h->live in force (under h->lock). */
static void
live_apply(struct hup *h)
{
	struct nfsd_limit_conf lc;

	os_ratelimit_set(h->ratelimit, h->live.upload_limit,
			 h->live.download_limit);
	if (h->cache != NULL)
		cache_set_store_wait(h->cache, h->live.store_wait_max);
	if (h->srv != NULL) {
		nfsd_limit_conf_from(&h->live, &lc);
		nfsd_server_set_limits(h->srv, &lc);
	}
}

/* The limits of cfg become the live ones. */
static void
live_take(struct hup *h, const struct nfsd_config *cfg)
{
	for (size_t i = 0; i < TL_ARRAY_SIZE(live_limits); i++)
		*conf_u64(&h->live, live_limits[i]) =
			*conf_u64((struct nfsd_config *)cfg, live_limits[i]);
}

static void
admin_limit_get(void *arg, struct tl_buf *out)
{
	struct hup *h = arg;
	char line[128];

	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < TL_ARRAY_SIZE(live_limits); i++) {
		const struct tl_conf_opt *o = conf_opt(live_limits[i]);
		int n = snprintf(
			line, sizeof(line), "%s %llu%s\n", o->name,
			(unsigned long long)*conf_u64(&h->live, o->name),
			o->type == TL_CONF_DURATION ? "ms" : "");

		tl_buf_append(out, line, (size_t)n);
	}
	pthread_mutex_unlock(&h->lock);
}

static int
admin_limit_set(void *arg, const char *name, const char *value, char **msg)
{
	struct hup *h = arg;
	bool known = false;
	int rc;

	for (size_t i = 0; i < TL_ARRAY_SIZE(live_limits); i++)
		known |= strcmp(live_limits[i], name) == 0;
	if (!known) {
		*msg = tl_asprintf("'%s' is not a limit settable at run time "
				   "(tessera limit get lists them)",
				   name);
		return -ENOENT;
	}
	pthread_mutex_lock(&h->lock);
	rc = tl_conf_set(nfsd_conf_opts, nfsd_conf_nopts, &h->live, name, value,
			 msg);
	if (rc == 0) {
		live_apply(h);
		tl_notice("tesserad", "admin: %s set to %s", name, value);
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

/* Read the configuration again and apply the reloadable options
 * (exports, log_level, bandwidth and metadata rate limits); say which
 * others need a restart.  0, or -errno with *msg saying why nothing or
 * not all of it changed.  Under h->lock. */
static int
reload(struct hup *h, char **msg)
{
	struct nfsd_server *srv = h->srv;
	struct nfsd_config cfg;
	enum tl_log_level level;
	char *err = NULL;
	int rc;

	if (tl_sd_managed()) {
		rc = tl_sd_notify_reloading();
		if (rc < 0)
			tl_warn("tesserad",
				"cannot notify the service manager: %s",
				strerror(-rc));
	}
	/* logrotate moved the file: write to a new one of that name,
	 * whatever the configuration says. */
	rc = tl_log_reopen();
	if (rc != 0)
		tl_err("tesserad", "reload: cannot reopen the log file %s: %s",
		       tl_log_where(), strerror(-rc));
	if (load_config_err(h->args, &cfg, &err) != 0) {
		tl_err("tesserad", "reload: configuration has errors; "
				   "nothing changed");
		*msg = tl_asprintf("%s; nothing changed", err);
		rc = -EINVAL;
		goto out;
	}
	rc = 0;
	live_take(h, &cfg);
	live_apply(h);
	if (cfg.bgjob_delete_rate != h->delete_rate ||
	    cfg.bgjob_txn_rate != h->txn_rate) {
		tl_notice("tesserad",
			  "reload: background jobs paced at %llu "
			  "deletions and %llu transactions per second (were "
			  "%llu and %llu; 0: no limit)",
			  (unsigned long long)cfg.bgjob_delete_rate,
			  (unsigned long long)cfg.bgjob_txn_rate,
			  (unsigned long long)h->delete_rate,
			  (unsigned long long)h->txn_rate);
		h->delete_rate = cfg.bgjob_delete_rate;
		h->txn_rate = cfg.bgjob_txn_rate;
		if (h->cache != NULL)
			cache_set_bgjob_rates(h->cache, h->delete_rate,
					      h->txn_rate);
	}
	if (h->billing != NULL) {
		struct nfsd_billing_opts bo = {
			.dir = cfg.billing_dir,
			.interval_ms = cfg.billing_interval,
			.dirs = cfg.billing_dirs,
		};

		nfsd_billing_set(h->billing, &bo);
	}
	if (tl_log_parse_level(cfg.log_level, &level) == 0)
		tl_log_set_level(level);
	else
		tl_err("tesserad", "reload: bad log_level \"%s\"",
		       cfg.log_level);
	if (strcmp(cfg.meta, h->cfg->meta) != 0 ||
	    strcmp(cfg.listen, h->cfg->listen) != 0 ||
	    strcmp(cfg.volume, h->cfg->volume) != 0 ||
	    strcmp(cfg.log_file, h->cfg->log_file) != 0 ||
	    cfg.workers != h->cfg->workers ||
	    cfg.buffer_limit != h->cfg->buffer_limit ||
	    cfg.upload_threads != h->cfg->upload_threads ||
	    cfg.max_record_size != h->cfg->max_record_size ||
	    cfg.max_connections != h->cfg->max_connections ||
	    cfg.max_inflight_per_conn != h->cfg->max_inflight_per_conn ||
	    cfg.idle_timeout != h->cfg->idle_timeout ||
	    cfg.rpcbind != h->cfg->rpcbind ||
	    cfg.proxy_protocol != h->cfg->proxy_protocol ||
	    cfg.locking != h->cfg->locking ||
	    cfg.lock_grace != h->cfg->lock_grace ||
	    cfg.lock_poll != h->cfg->lock_poll ||
	    cfg.max_locks != h->cfg->max_locks ||
	    cfg.max_locks_per_client != h->cfg->max_locks_per_client ||
	    cfg.max_lock_waiters != h->cfg->max_lock_waiters ||
	    cfg.lock_callback_window != h->cfg->lock_callback_window ||
	    cfg.limit_clients != h->cfg->limit_clients ||
	    strcmp(cfg.admin_token_file, h->cfg->admin_token_file) != 0 ||
	    strcmp(cfg.metrics_listen, h->cfg->metrics_listen) != 0)
		tl_notice("tesserad",
			  "reload: only exports, log_level, the bandwidth "
			  "limits, store_wait_max, the background jobs' pace, "
			  "the billing options and the metadata rate limits "
			  "change on SIGHUP; restart for the others");
	if (srv != NULL &&
	    nfsd_server_set_exports(srv, cfg.exports, &err) != 0) {
		tl_err("tesserad", "reload: %s; keeping the old exports", err);
		*msg = tl_asprintf("%s; the old exports stay (the rest was "
				   "reloaded)",
				   err);
		rc = -EINVAL;
	} else {
		tl_notice("tesserad", "reloaded");
	}
out:
	/* the reload is over, applied or not: serving goes on */
	notify(h->status);
	nfsd_config_free(&cfg);
	free(err);
	return rc;
}

/* SIGHUP (the server's control thread, or the signal loop of a
 * bgjob_only gateway). */
static void
on_hup(struct nfsd_server *srv, void *arg)
{
	struct hup *h = arg;
	char *msg = NULL;

	(void)srv;
	pthread_mutex_lock(&h->lock);
	reload(h, &msg);
	pthread_mutex_unlock(&h->lock);
	free(msg);
}

static int
admin_reload(void *arg, char **msg)
{
	struct hup *h = arg;
	int rc;

	pthread_mutex_lock(&h->lock);
	tl_notice("tesserad", "admin: reload");
	rc = reload(h, msg);
	pthread_mutex_unlock(&h->lock);
	return rc;
}

static const struct nfsd_admin_ops admin_ops = {
	.limit_get = admin_limit_get,
	.limit_set = admin_limit_set,
	.reload = admin_reload,
};

/* The admin endpoint's token file: made when missing; a file others
 * may read is reported (admin requests are refused until fixed). */
static void
admin_token_check(const struct nfsd_config *cfg)
{
	char token[NFSD_ADMIN_TOKEN_MAX + 1], *msg = NULL;

	if (cfg->admin_token_file[0] == '\0' ||
	    nfsd_metrics_off(cfg->metrics_listen))
		return;
	if (nfsd_admin_token_make(cfg->admin_token_file, &msg) != 0) {
		tl_notice("tesserad",
			  "%s: the admin endpoint refuses every "
			  "request until it exists",
			  msg);
	} else if (nfsd_admin_token_read(cfg->admin_token_file, token, &msg) !=
		   0) {
		tl_err("tesserad",
		       "%s: the admin endpoint refuses every "
		       "request until it is fixed",
		       msg);
	}
	memset(token, 0, sizeof(token));
	free(msg);
}

/* The HTTP endpoint, or NULL when off or when it cannot listen: a busy
 * metrics port is logged but does not keep the volume from being
 * served (the address itself was checked by load_config). */
static struct nfsd_metrics *
start_metrics(const struct nfsd_config *cfg, const struct backend *b,
	      struct nfsd_server *srv, struct hup *hup)
{
	struct nfsd_metrics_src src = {
		.srv = srv,
		.meta = b->meta,
		.cache = b->cache,
		.os = b->os,
		.cache_size = cfg->cache_dirs[0] != '\0' ? cfg->cache_size : 0,
		.buffer_limit = cfg->buffer_limit,
		.start_ns = tl_now_ns(),
		.writeback_max_age_ms = cfg->writeback_max_age,
		.session = b->session,
		.backup = b->backup,
		.admin_token_file = cfg->admin_token_file,
		.admin = &admin_ops,
		.admin_arg = hup,
		.billing = b->billing,
	};
	struct nfsd_metrics *m = NULL;
	const char *l = cfg->metrics_listen;
	char *err = NULL, *host;

	if (nfsd_metrics_off(l))
		return NULL;
	admin_token_check(cfg);
	if (nfsd_metrics_start(l, &src, &m, &err) != 0) {
		tl_err("tesserad", "%s; serving without metrics", err);
		free(err);
		return NULL;
	}
	host = tl_strndup(l, strrchr(l, ':') - l);
	tl_notice("tesserad", "metrics on http://%s:%u/metrics",
		  host[0] ? host : "0.0.0.0", nfsd_metrics_port(m));
	free(host);
	return m;
}

/* What the session record carries of this gateway's jobs. */
static void
session_probe(void *arg, struct meta_session *s)
{
	struct backend *b = arg;

	s->compact_queued =
		b->cache != NULL ? cache_compact_queue_len(b->cache) : 0;
}

/* Record this gateway in the volume (meta.h, gateway sessions), so that
 * `tessera status` lists it and fsck --repair and destroy refuse to run
 * beside it, and compete for the background-job lease unless bgjob is
 * off.  srv NULL: a gateway that serves no NFS (bgjob_only), recorded
 * with the address "-". */
static int
start_session(const struct nfsd_config *cfg, struct backend *b,
	      const struct nfsd_server *srv)
{
	struct meta_session_keeper *k;
	char *host, *addr;
	int rc;

	host = tl_strndup(cfg->listen, strrchr(cfg->listen, ':') - cfg->listen);
	addr = srv == NULL ? tl_strdup("-")
			   : tl_asprintf("%s:%u", host[0] ? host : "0.0.0.0",
					 nfsd_server_port(srv));
	rc = meta_session_start(b->meta, addr, PACKAGE_VERSION,
				(uint32_t)(cfg->session_timeout / 1000), &k);
	if (rc != 0) {
		tl_err("tesserad",
		       "cannot record the gateway session in the "
		       "metadata: %s",
		       strerror(-rc));
	} else {
		b->session = k;
		meta_session_set_probe(k, session_probe, b);
		if (cfg->bgjob)
			meta_session_want_lease(k, true);
		else
			tl_notice("tesserad", "bgjob is off: this gateway "
					      "runs no background job");
	}
	free(addr);
	free(host);
	return rc;
}

/* bgjob_only: no NFS server, so no event loop; the signals that stop
 * or reload the daemon are blocked in every thread (block_signals,
 * before any starts) and taken here. */
static void
block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

static void
wait_for_stop(const sigset_t *set, struct hup *hup)
{
	int sig;

	for (;;) {
		sig = sigwaitinfo(set, NULL);
		if (sig == SIGHUP)
			on_hup(NULL, hup);
		else if (sig == SIGTERM || sig == SIGINT)
			return;
	}
}

/* Scheduled metadata backups into the volume's store (backup_*
 * options); with backup_interval 0 only the figures for /metrics. */
static int
start_backups(const struct nfsd_config *cfg, struct backend *b)
{
	struct nfsd_backup_opts o = {
		.interval_ms = cfg->backup_interval,
		.keep = (unsigned)cfg->backup_keep,
		.tmpdir = cfg->backup_tmpdir,
		.gate = bgjob_gate,
		.gate_arg = b,
	};
	int rc;

	rc = nfsd_backup_start(b->meta, b->os, meta_session_id(b->session), &o,
			       &b->backup);
	if (rc != 0)
		tl_err("tesserad", "cannot start the metadata backups: %s",
		       strerror(-rc));
	return rc;
}

/* The billing figures (billing_* options): every gateway adds its NFS
 * byte counts to the metadata; the lease holder writes the lines. */
static int
start_billing(const struct nfsd_config *cfg, struct backend *b,
	      struct nfsd_server *srv)
{
	struct nfsd_billing_opts o = {
		.dir = cfg->billing_dir,
		.interval_ms = cfg->billing_interval,
		.dirs = cfg->billing_dirs,
		.gate = bgjob_gate,
		.gate_arg = b,
		.srv = srv,
	};
	int rc;

	rc = nfsd_billing_start(b->meta, &o, &b->billing);
	if (rc != 0)
		tl_err("tesserad", "cannot start the billing figures: %s",
		       strerror(-rc));
	return rc;
}

/* The server listens: say so, and where the logs go, on the terminal and
 * where the logs go from now on; a daemon then moves to syslog (when a
 * syslog daemon listens and no log_file is set) and detaches, keeping
 * stderr when the logs stay there. */
static void
log_started(const struct args *a, const struct nfsd_config *cfg,
	    enum tl_log_level level, const char *started, int ready)
{
	bool file = cfg->log_file[0] != '\0';
	bool to_syslog = !a->foreground && !file && tl_log_syslog_available();
	const char *where;

	if (file)
		where = cfg->log_file;
	else if (to_syslog)
		where = "syslog (facility daemon)";
	else if (a->foreground)
		where = "standard error";
	else
		where = "standard error (no syslog socket at /dev/log; "
			"set log_file to keep them)";
	tl_notice("tesserad", "%s", started);
	tl_notice("tesserad", "logs go to %s", where);
	if (to_syslog) {
		tl_log_init(level, true, "tesserad");
		tl_notice("tesserad", "%s", started);
	}
	tl_log_tee_stderr(false);
	if (!a->foreground)
		detach_stdio(ready, !file && !to_syslog);
}

/* A gateway that only runs the background jobs (bgjob_only): the
 * "admin node" of a volume served by gateways with bgjob off. */
static int
serve_bgjob_only(const struct args *a, const struct nfsd_config *cfg,
		 enum tl_log_level level, struct backend *b, struct hup *hup,
		 const sigset_t *sigs, int ready)
{
	struct nfsd_metrics *metrics = NULL;
	char *started, *ready_msg;
	int rc;

	rc = start_session(cfg, b, NULL);
	if (rc == 0)
		rc = start_backups(cfg, b);
	if (rc == 0)
		rc = start_billing(cfg, b, NULL);
	if (rc != 0)
		return rc;
	hup->billing = b->billing;
	metrics = start_metrics(cfg, b, NULL, hup);
	if (a->pidfile != NULL && (rc = write_pidfile(a->pidfile)) != 0) {
		tl_err("tesserad", "%s: %s", a->pidfile, strerror(-rc));
		nfsd_metrics_stop(metrics);
		return rc;
	}
	started = tl_asprintf("tesserad %s: volume \"%s\": background jobs "
			      "only, no NFS (bgjob_only)%s",
			      PACKAGE_VERSION, meta_settings(b->meta)->name,
			      a->foreground ? "" : ", daemonized");
	ready_msg = tl_asprintf("READY=1\nSTATUS=background jobs of volume "
				"\"%s\"",
				meta_settings(b->meta)->name);
	hup->status = ready_msg;
	log_started(a, cfg, level, started, ready);
	free(started);
	notify(ready_msg);
	wait_for_stop(sigs, hup);
	notify("STOPPING=1\nSTATUS=stopping the background jobs");
	tl_notice("tesserad", "stopping the background jobs");
	nfsd_metrics_stop(metrics);
	if (a->pidfile != NULL)
		unlink(a->pidfile);
	free(ready_msg);
	return 0;
}

static int
serve(const struct args *a, const struct nfsd_config *cfg,
      enum tl_log_level level)
{
	struct backend b = {NULL, NULL, NULL, NULL, NULL, NULL};
	struct nfsd_server *srv = NULL;
	struct nfsd_metrics *metrics = NULL;
	char *err = NULL, *at, *ready_msg = NULL, *started, *url = NULL;
	struct hup hup = {.args = a,
			  .cfg = cfg,
			  .delete_rate = cfg->bgjob_delete_rate,
			  .txn_rate = cfg->bgjob_txn_rate,
			  .lock = PTHREAD_MUTEX_INITIALIZER};
	sigset_t sigs;
	int ready = -1, rc;

	if (strncmp(cfg->meta, "raft://", 7) == 0) {
		/* the gateway is a node of its raft group (raft_* options) */
		url = nfsd_raft_url(cfg, cfg->meta, true, false, &err);
		if (url == NULL) {
			tl_err("tesserad", "%s", err);
			free(err);
			return -EINVAL;
		}
	}
	if (!a->foreground && (ready = daemonize()) < 0) {
		tl_err("tesserad", "daemonize: %s", strerror(-ready));
		free(url);
		return ready;
	}
	if (cfg->bgjob_only)
		block_signals(&sigs);
	rc = open_backend(url ? url : cfg->meta, cfg, &b);
	if (rc != 0)
		goto out;
	hup.ratelimit = b.os;
	hup.cache = b.cache;
	live_take(&hup, cfg);
	if (cfg->bgjob_only) {
		rc = serve_bgjob_only(a, cfg, level, &b, &hup, &sigs, ready);
		ready = -1;
		goto out;
	}
	rc = nfsd_server_create(cfg, b.meta, b.cache, &srv, &err);
	if (rc != 0) {
		tl_err("tesserad", "%s", err);
		goto out;
	}
	hup.srv = srv;
	rc = start_session(cfg, &b, srv);
	if (rc != 0)
		goto out;
	/* before rpcbind sends clients here: reclaims find their grace */
	rc = nfsd_server_locks_start(srv, meta_session_id(b.session));
	if (rc != 0) {
		tl_err("tesserad", "cannot start NFS locking: %s",
		       strerror(-rc));
		goto out;
	}
	rc = start_backups(cfg, &b);
	if (rc == 0)
		rc = start_billing(cfg, &b, srv);
	if (rc != 0)
		goto out;
	hup.billing = b.billing;
	if (cfg->rpcbind)
		nfsd_server_register(srv);
	metrics = start_metrics(cfg, &b, srv, &hup);
	if (a->pidfile != NULL && (rc = write_pidfile(a->pidfile)) != 0) {
		tl_err("tesserad", "%s: %s", a->pidfile, strerror(-rc));
		goto out;
	}
	at = tl_strndup(cfg->listen, strrchr(cfg->listen, ':') - cfg->listen);
	started = tl_asprintf("tesserad %s: volume \"%s\" on %s port %u "
			      "(NFS v3, MOUNT v3%s)%s",
			      PACKAGE_VERSION, meta_settings(b.meta)->name,
			      at[0] ? at : "0.0.0.0", nfsd_server_port(srv),
			      cfg->locking ? ", NLM v4, NSM" : "",
			      a->foreground ? "" : ", daemonized");
	ready_msg = tl_asprintf("READY=1\nSTATUS=serving volume \"%s\" on "
				"%s port %u",
				meta_settings(b.meta)->name,
				at[0] ? at : "0.0.0.0", nfsd_server_port(srv));
	free(at);
	hup.status = ready_msg;
	nfsd_server_on_hup(srv, on_hup, &hup);
	/* before READY=1 and before the starting command returns: a
	 * reload sent right after either must not kill us */
	nfsd_server_catch_signals(srv);
	log_started(a, cfg, level, started, ready);
	ready = -1;
	free(started);
	notify(ready_msg);
	rc = nfsd_server_run(srv, true);
	notify("STOPPING=1\nSTATUS=stopping: flushing buffered writes");
	tl_notice("tesserad", "stopping: flushing buffered writes");
out:
	nfsd_metrics_stop(metrics);   /* it reads srv and the backend */
	nfsd_billing_stop(b.billing); /* it reads srv's exports */
	b.billing = NULL;
	nfsd_server_free(srv);
	close_backend(&b);
	if (a->pidfile != NULL && srv != NULL)
		unlink(a->pidfile);
	free(err);
	free(ready_msg);
	free(url);
	if (ready >= 0)
		close(ready);
	return rc;
}

int
main(int argc, char **argv)
{
	struct args a;
	struct nfsd_config cfg;
	enum tl_log_level level = TL_LOG_NOTICE;
	int status = 0, rc;

	memset(&a, 0, sizeof(a));
	tl_log_init(level, false, "tesserad");
	if (parse_args(argc, argv, &a, &status) != 0)
		goto out;
	if (load_config(&a, &cfg) != 0) {
		status = 2;
		goto out_cfg;
	}
	if (tl_log_parse_level(cfg.log_level, &level) != 0) {
		fprintf(stderr, "tesserad: bad log level \"%s\"\n",
			cfg.log_level);
		status = 2;
		goto out_cfg;
	}
	tl_log_init(level, false, "tesserad");
	/* a service manager watches the process it started: forking would
	 * lose it (and its notifications) */
	if (tl_sd_managed())
		a.foreground = true;
	if (cfg.log_file[0] != '\0') {
		char *err = NULL;

		if (tl_log_open_file(cfg.log_file, &err) != 0) {
			fprintf(stderr, "tesserad: %s\n", err);
			free(err);
			status = 2;
			goto out_cfg;
		}
		/* Until it serves, errors reach the terminal too. */
		tl_log_tee_stderr(true);
	}
	rc = serve(&a, &cfg, level);
	status = rc == 0 ? 0 : 1;
out_cfg:
	nfsd_config_free(&cfg);
out:
	for (size_t i = 0; i < a.nsets; i++)
		free(a.sets[i]);
	free(a.sets);
	return status;
}
