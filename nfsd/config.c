/*
 * config.c - tessera.conf options of tesserad, declared once as a table:
 * the same table parses the file, fills the defaults, prints --help and
 * is checked against tessera.conf(5) by t/unit/nfsd_conf_test.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "nfsd/nfsd.h"

#define OFF(f) offsetof(struct nfsd_config, f)

const struct tl_conf_opt nfsd_conf_opts[] = {
	{"meta", TL_CONF_STRING, "", 0, 0, false,
	 "metadata URL of the volume served (--meta overrides it)", OFF(meta)},
	{"volume", TL_CONF_STRING, "", 0, 0, false,
	 "volume to serve when the metadata URL holds several", OFF(volume)},
	{"listen", TL_CONF_STRING, "0.0.0.0:2049", 0, 0, false,
	 "NFS and MOUNT address: ADDR:PORT or [V6]:PORT", OFF(listen)},
	{"exports", TL_CONF_STRING, "", 0, 0, true,
	 "exports file; empty: \"/\" to localhost only", OFF(exports)},
	{"workers", TL_CONF_U64, "32", 1, 1024, false,
	 "worker threads running NFS requests", OFF(workers)},
	{"buffer_limit", TL_CONF_SIZE, "256M", 1 << 20, 1ULL << 40, false,
	 "memory for unstable writes until committed, all files together",
	 OFF(buffer_limit)},
	{"upload_threads", TL_CONF_U64, "8", 1, 256, false,
	 "parallel block uploads to the object store", OFF(upload_threads)},
	{"max_record_size", TL_CONF_SIZE, "4M", (1 << 20) + (64 << 10),
	 64 << 20, false,
	 "largest RPC record; a bigger one closes the connection",
	 OFF(max_record_size)},
	{"max_connections", TL_CONF_U64, "1024", 1, 1000000, false,
	 "client connections at once; a new one closes the longest idle",
	 OFF(max_connections)},
	{"max_inflight_per_conn", TL_CONF_U64, "64", 1, 65536, false,
	 "requests of a connection in progress before it pauses",
	 OFF(max_inflight_per_conn)},
	{"request_memory", TL_CONF_SIZE, "256M", 1 << 20, 1ULL << 40, false,
	 "records being read, requests and replies not yet sent, all "
	 "connections",
	 OFF(request_memory)},
	{"idle_timeout", TL_CONF_DURATION, "6m", 0, 7ULL * 86400 * 1000, false,
	 "close a connection idle this long (0: never)", OFF(idle_timeout)},
	{"drc_entries", TL_CONF_U64, "8192", 0, 1ULL << 24, false,
	 "replies kept for retransmitted calls (0: no cache)",
	 OFF(drc_entries)},
	{"drc_size", TL_CONF_SIZE, "8M", 0, 1ULL << 32, false,
	 "memory of the duplicate request cache", OFF(drc_size)},
	{"rpcbind", TL_CONF_BOOL, "yes", 0, 0, false,
	 "register with rpcbind (a warning if none runs)", OFF(rpcbind)},
	{"proxy_protocol", TL_CONF_BOOL, "no", 0, 0, false,
	 "TCP connections begin with a PROXY header (v1 or v2) from a load "
	 "balancer: the client is who it names",
	 OFF(proxy_protocol)},
	{"cache_dirs", TL_CONF_STRING, "", 0, 0, false,
	 "block cache directories, ':'-separated; empty: none",
	 OFF(cache_dirs)},
	{"cache_size", TL_CONF_SIZE, "10G", 1 << 20, 1ULL << 50, false,
	 "bytes of cached blocks, all cache directories together",
	 OFF(cache_size)},
	{"cache_free_floor", TL_CONF_U64, "10", 0, 90, false,
	 "percent of each cache file system kept free", OFF(cache_free_floor)},
	{"writeback", TL_CONF_BOOL, "no", 0, 0, false,
	 "COMMIT once staged in a cache dir; upload later", OFF(writeback)},
	{"writeback_max_age", TL_CONF_DURATION, "1h", 1000,
	 30ULL * 86400 * 1000, false,
	 "alarm when a staged block waits longer for upload",
	 OFF(writeback_max_age)},
	{"readahead_max", TL_CONF_SIZE, "64M", 0, 1ULL << 32, false,
	 "largest readahead window of a sequential read (0: none)",
	 OFF(readahead_max)},
	{"readahead_budget", TL_CONF_SIZE, "256M", 0, 1ULL << 40, false,
	 "memory for prefetched and recently read blocks",
	 OFF(readahead_budget)},
	{"download_threads", TL_CONF_U64, "16", 1, 256, false,
	 "parallel block fetches from the object store", OFF(download_threads)},
	{"inline_max", TL_CONF_SIZE, "64K", 0, 1ULL << 20, false,
	 "files up to this size keep their data in the metadata commit "
	 "(0: never)",
	 OFF(inline_max)},
	{"file_direct_io", TL_CONF_BOOL, "no", 0, 0, false,
	 "file:// store: write whole blocks with O_DIRECT, not through the "
	 "page cache",
	 OFF(file_direct_io)},
	{"upload_limit", TL_CONF_SIZE, "0", 0, 1ULL << 40, true,
	 "bytes/s uploaded to the object store (0: no limit)",
	 OFF(upload_limit)},
	{"download_limit", TL_CONF_SIZE, "0", 0, 1ULL << 40, true,
	 "bytes/s downloaded from the object store (0: no limit)",
	 OFF(download_limit)},
	{"store_wait_max", TL_CONF_DURATION, "30s", 0, 86400 * 1000, true,
	 "a request waiting this long for the object store answers JUKEBOX "
	 "(0: waits as long as it takes)",
	 OFF(store_wait_max)},
	{"client_meta_read_rate", TL_CONF_U64, "0", 0, 100000000, true,
	 "metadata reads (GETATTR, LOOKUP, ACCESS, READDIR...) per second of "
	 "one client address (0: no limit)",
	 OFF(client_meta_read_rate)},
	{"client_meta_read_burst", TL_CONF_U64, "0", 0, 100000000, true,
	 "metadata reads a client may save up (0: one second's worth)",
	 OFF(client_meta_read_burst)},
	{"client_meta_write_rate", TL_CONF_U64, "0", 0, 100000000, true,
	 "metadata changes (CREATE, REMOVE, RENAME, SETATTR...) per second "
	 "of one client address (0: no limit)",
	 OFF(client_meta_write_rate)},
	{"client_meta_write_burst", TL_CONF_U64, "0", 0, 100000000, true,
	 "metadata changes a client may save up (0: one second's worth)",
	 OFF(client_meta_write_burst)},
	{"export_meta_read_rate", TL_CONF_U64, "0", 0, 100000000, true,
	 "metadata reads per second of one export, all clients together "
	 "(0: no limit)",
	 OFF(export_meta_read_rate)},
	{"export_meta_read_burst", TL_CONF_U64, "0", 0, 100000000, true,
	 "metadata reads an export may save up (0: one second's worth)",
	 OFF(export_meta_read_burst)},
	{"export_meta_write_rate", TL_CONF_U64, "0", 0, 100000000, true,
	 "metadata changes per second of one export, all clients together "
	 "(0: no limit)",
	 OFF(export_meta_write_rate)},
	{"export_meta_write_burst", TL_CONF_U64, "0", 0, 100000000, true,
	 "metadata changes an export may save up (0: one second's worth)",
	 OFF(export_meta_write_burst)},
	{"limit_wait_max", TL_CONF_DURATION, "1s", 0, 60000, true,
	 "longest wait of a call over a metadata rate limit; one that would "
	 "wait longer is answered NFS3ERR_JUKEBOX",
	 OFF(limit_wait_max)},
	{"limit_clients", TL_CONF_U64, "16384", 16, 1ULL << 22, false,
	 "client addresses whose rate-limit buckets are kept (the least "
	 "recently seen are reused)",
	 OFF(limit_clients)},
	{"admin_token_file", TL_CONF_STRING, "/etc/tessera/admin.token", 0, 0,
	 false,
	 "the admin endpoint's token (mode 0600; made when missing); "
	 "empty: no admin endpoint",
	 OFF(admin_token_file)},
	{"log_level", TL_CONF_STRING, "notice", 0, 0, true,
	 "err, warn, notice, info or debug", OFF(log_level)},
	{"log_file", TL_CONF_STRING, "", 0, 0, false,
	 "append log lines to this file (reopened on SIGHUP); empty: stderr, "
	 "or syslog when daemonized",
	 OFF(log_file)},
	{"metrics_listen", TL_CONF_STRING, "127.0.0.1:9049", 0, 0, false,
	 "Prometheus /metrics and /healthz over HTTP: ADDR:PORT, or off",
	 OFF(metrics_listen)},
	{"session_timeout", TL_CONF_DURATION, "60s", 3000, 86400 * 1000, false,
	 "a killed gateway's session expires after this (heartbeat: 1/6 of it)",
	 OFF(session_timeout)},
	{"locking", TL_CONF_BOOL, "yes", 0, 0, false,
	 "serve NFS locks (NLM v4, NSM) on the NFS port; no: clients mount "
	 "with nolock",
	 OFF(locking)},
	{"lock_grace", TL_CONF_DURATION, "90s", 0, 3600000, false,
	 "after a restart only lock reclaims are granted this long, or until "
	 "all are reclaimed",
	 OFF(lock_grace)},
	{"lock_poll", TL_CONF_DURATION, "1s", 10, 60000, false,
	 "blocked lock requests look this often for releases on other gateways",
	 OFF(lock_poll)},
	{"max_locks", TL_CONF_U64, "1000000", 1, 1ULL << 40, false,
	 "byte ranges and shares locked on the volume, all clients together",
	 OFF(max_locks)},
	{"max_locks_per_client", TL_CONF_U64, "100000", 1, 1ULL << 40, false,
	 "byte ranges and shares one client may hold",
	 OFF(max_locks_per_client)},
	{"max_lock_waiters", TL_CONF_U64, "4096", 1, 1000000, false,
	 "blocked lock requests kept in memory (a quarter per client)",
	 OFF(max_lock_waiters)},
	{"lock_callback_window", TL_CONF_DURATION, "60s", 1000, 3600000, false,
	 "a client that cannot be called back has this long to take a lock it "
	 "waited for",
	 OFF(lock_callback_window)},
	{"bgjob", TL_CONF_BOOL, "yes", 0, 0, false,
	 "run the volume's background jobs when holding their lease "
	 "(--no-bgjob)",
	 OFF(bgjob)},
	{"bgjob_only", TL_CONF_BOOL, "no", 0, 0, false,
	 "run only the background jobs, serve no NFS (--bgjob-only)",
	 OFF(bgjob_only)},
	{"bgjob_delete_rate", TL_CONF_U64, "1000", 0, 1000000, true,
	 "objects the background jobs delete per second (0: no limit)",
	 OFF(bgjob_delete_rate)},
	{"bgjob_txn_rate", TL_CONF_U64, "100", 0, 1000000, true,
	 "metadata transactions of the background jobs per second (0: no "
	 "limit)",
	 OFF(bgjob_txn_rate)},
	{"test_trash_retention", TL_CONF_DURATION, "0", 0, 3650ULL * 86400000,
	 false,
	 "for tests: keep removed files this long instead of "
	 "trash_days (0: trash_days)",
	 OFF(test_trash_retention)},
	{"backup_interval", TL_CONF_DURATION, "1h", 0, 30ULL * 86400 * 1000,
	 false,
	 "write a metadata backup into the object store this often "
	 "(0: never)",
	 OFF(backup_interval)},
	{"backup_keep", TL_CONF_U64, "24", 1, 100000, false,
	 "metadata backups kept in the object store", OFF(backup_keep)},
	{"backup_tmpdir", TL_CONF_STRING, "", 0, 0, false,
	 "where a backup's copy of the metadata engine goes; empty: $TMPDIR "
	 "or /var/tmp",
	 OFF(backup_tmpdir)},
	{"billing_dir", TL_CONF_STRING, "", 0, 0, true,
	 "the lease holder appends billing lines to billing-DAY.jsonl here; "
	 "empty: none",
	 OFF(billing_dir)},
	{"billing_interval", TL_CONF_DURATION, "1h", 1000, 86400 * 1000, true,
	 "billing lines are written at every multiple of this (UTC)",
	 OFF(billing_interval)},
	{"billing_dirs", TL_CONF_STRING, "", 0, 0, true,
	 "volume directories billed besides exports and quotas, "
	 "':'-separated",
	 OFF(billing_dirs)},
	{"raft_id", TL_CONF_U64, "0", 0, 1ULL << 62, false,
	 "this gateway's node id in its raft group (raft://); 0: none",
	 OFF(raft_id)},
	{"raft_dir", TL_CONF_STRING, "/var/lib/tessera/raft", 0, 0, false,
	 "the node's directory: replica, raft log, control socket",
	 OFF(raft_dir)},
	{"raft_address", TL_CONF_STRING, "", 0, 0, false,
	 "HOST:PORT at which the other nodes reach this one",
	 OFF(raft_address)},
	{"raft_listen", TL_CONF_STRING, "", 0, 0, false,
	 "ADDR:PORT to bind for the other nodes; empty: raft_address",
	 OFF(raft_listen)},
	{"raft_peers", TL_CONF_STRING, "", 0, 0, false,
	 "ID@HOST:PORT,... nodes a new node copies its replica from",
	 OFF(raft_peers)},
	{"raft_secret_file", TL_CONF_STRING, "/etc/tessera/raft.key", 0, 0,
	 false, "the cluster secret every node of the group holds",
	 OFF(raft_secret_file)},
	{"raft_election_timeout", TL_CONF_DURATION, "600ms", 50, 60000, false,
	 "a follower that hears no leader this long (to twice it) stands",
	 OFF(raft_election_timeout)},
	{"raft_heartbeat", TL_CONF_DURATION, "60ms", 5, 30000, false,
	 "the leader's heartbeat, at most half the election timeout",
	 OFF(raft_heartbeat)},
	{"raft_snapshot_entries", TL_CONF_U64, "4096", 16, 1ULL << 30, false,
	 "log entries between two snapshots", OFF(raft_snapshot_entries)},
	{"raft_snapshot_trailing", TL_CONF_U64, "4096", 0, 1ULL << 30, false,
	 "entries kept behind a snapshot for nodes a little behind",
	 OFF(raft_snapshot_trailing)},
	{"raft_timeout", TL_CONF_DURATION, "10s", 100, 3600000, false,
	 "longest wait for a commit or a read (then NFS3ERR_JUKEBOX)",
	 OFF(raft_timeout)},
	{"raft_follower_leases", TL_CONF_BOOL, "yes", 0, 0, false,
	 "followers read without asking the leader (writes wait for them)",
	 OFF(raft_follower_leases)},
};
const size_t nfsd_conf_nopts = TL_ARRAY_SIZE(nfsd_conf_opts);

void
nfsd_config_defaults(struct nfsd_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	tl_conf_defaults(nfsd_conf_opts, nfsd_conf_nopts, cfg);
}

void
nfsd_config_free(struct nfsd_config *cfg)
{
	tl_conf_free(nfsd_conf_opts, nfsd_conf_nopts, cfg);
}

void
nfsd_limit_conf_from(const struct nfsd_config *cfg, struct nfsd_limit_conf *out)
{
	memset(out, 0, sizeof(*out));
	out->client_rate[NFSD_LIMIT_READ] = cfg->client_meta_read_rate;
	out->client_burst[NFSD_LIMIT_READ] = cfg->client_meta_read_burst;
	out->client_rate[NFSD_LIMIT_WRITE] = cfg->client_meta_write_rate;
	out->client_burst[NFSD_LIMIT_WRITE] = cfg->client_meta_write_burst;
	out->export_rate[NFSD_LIMIT_READ] = cfg->export_meta_read_rate;
	out->export_burst[NFSD_LIMIT_READ] = cfg->export_meta_read_burst;
	out->export_rate[NFSD_LIMIT_WRITE] = cfg->export_meta_write_rate;
	out->export_burst[NFSD_LIMIT_WRITE] = cfg->export_meta_write_burst;
	out->wait_max_ms = cfg->limit_wait_max;
}

int
nfsd_parse_listen(const char *s, struct sockaddr_storage *ss, unsigned *len)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *h = s;
	size_t hl;
	uint64_t port;

	memset(ss, 0, sizeof(*ss));
	colon = strrchr(s, ':');
	if (colon == NULL)
		return -EINVAL;
	hl = (size_t)(colon - s);
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
		h = s + 1;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (tl_parse_u64(colon + 1, 0, 65535, &port) != 0)
		return -EINVAL;
	if (hl == 0)
		strcpy(host, "0.0.0.0");
	if (strchr(host, ':') != NULL) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
			return -EINVAL;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			return -EINVAL;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof(*a4);
	}
	return 0;
}

char *
nfsd_raft_url(const struct nfsd_config *cfg, const char *url, bool node,
	      bool bootstrap, char **err)
{
	const char *rest = url + strlen("raft://"), *q = strchr(rest, '?');
	char *dir, *out = NULL, vol[128] = "";

	if (strncmp(url, "raft://", 7) != 0) {
		*err = tl_asprintf("'%s' is not a raft:// URL", url);
		return NULL;
	}
	/* only ?volume=NAME may follow: the raft_* options say the rest */
	if (q && (strncmp(q, "?volume=", 8) != 0 || strchr(q + 1, '&') ||
		  strlen(q) + 1 >= sizeof(vol))) {
		*err = tl_asprintf("'%s': the raft URL of tessera.conf is "
				   "raft:// or raft:///DIR, with at most "
				   "?volume=NAME (the raft_* options say the "
				   "rest)",
				   url);
		return NULL;
	}
	if (q)
		snprintf(vol, sizeof(vol), "%s%s", node ? "&" : "?", q + 1);
	dir = q ? tl_strndup(rest, (size_t)(q - rest)) : tl_strdup(rest);
	if (dir[0] == '\0') {
		free(dir);
		dir = tl_strdup(cfg->raft_dir ? cfg->raft_dir : "");
	}
	if (dir[0] != '/') {
		*err = tl_asprintf("raft_dir must be an absolute path");
	} else if (!node) {
		out = tl_asprintf("raft://%s%s", dir, vol);
	} else if (cfg->raft_id == 0 || cfg->raft_address == NULL ||
		   cfg->raft_address[0] == '\0') {
		*err = tl_asprintf("a raft node needs raft_id and raft_address "
				   "in tessera.conf");
	} else {
		out = tl_asprintf(
			"raft://%s?id=%llu&address=%s%s%s&peers=%s&secret=%s&"
			"election=%llu&heartbeat=%llu&snapshot=%llu&"
			"trailing=%llu&timeout=%llu&leases=%d%s%s",
			dir, (unsigned long long)cfg->raft_id,
			cfg->raft_address,
			cfg->raft_listen && cfg->raft_listen[0] ? "&listen="
								: "",
			cfg->raft_listen ? cfg->raft_listen : "",
			cfg->raft_peers ? cfg->raft_peers : "",
			cfg->raft_secret_file,
			(unsigned long long)cfg->raft_election_timeout,
			(unsigned long long)cfg->raft_heartbeat,
			(unsigned long long)cfg->raft_snapshot_entries,
			(unsigned long long)cfg->raft_snapshot_trailing,
			(unsigned long long)cfg->raft_timeout,
			cfg->raft_follower_leases ? 1 : 0,
			bootstrap ? "&bootstrap=1" : "", vol);
	}
	free(dir);
	return out;
}
