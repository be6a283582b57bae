/*
 * nfs_metrics_test.c - tesserad's HTTP endpoint (metrics_listen): GET
 * /metrics is well-formed Prometheus text (format 0.0.4) whose counters
 * move with real NFS traffic, the duplicate request cache counts a
 * retransmitted CREATE it replays, the writeback alarm rises once a
 * staged block is older than writeback_max_age, a client's reset is
 * counted as such and not as an error, CREATE and REMOVE on an export
 * with async are committed without waiting for a sync of the metadata
 * and on the default (sync) export each waits for one, /healthz answers
 * "ok", a gateway of a one-node raft:// group shows its replica's LMDB
 * map and pages like an lmdb:// one,
 * and unknown paths and other methods are refused.
 *
 * The daemon listens for HTTP on port 0 and logs the port it got ("metrics
 * on http://127.0.0.1:PORT/metrics"), which the test reads back: no race
 * for a port chosen in advance.  Uploads are throttled to 1 KiB/s so a
 * staged 64 KiB block stays staged for a minute; the test polls for the
 * alarm and kills the daemon hard at the end (a clean stop would wait
 * for the upload).
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t/nfs/tharness.h"
#include "t/testpaths.h"

static struct th_server srv;
static struct th_conn cn;
static int http_port;

/* ---- HTTP ------------------------------------------------------------- */

/* th_http to this test's gateway: the status code (-1: no answer) and
 * the body (malloc'd, NUL-terminated) in *body (may be NULL). */
static int
http(const char *method, const char *path, char **body)
{
	return th_http(http_port, method, path, NULL, body);
}

/* ---- the exposition format -------------------------------------------- */

static bool
name_ok(const char *s, size_t n)
{
	if (n == 0 ||
	    !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' ||
		      s[i] == ':'))
			return false;
	return true;
}

/* {a="b",c="d"} at *p; advances past it.  false if malformed. */
static bool
labels_ok(const char **pp)
{
	const char *p = *pp + 1;

	while (*p != '}') {
		const char *k = p;

		while (isalnum((unsigned char)*p) || *p == '_')
			p++;
		if (!name_ok(k, (size_t)(p - k)) || *p++ != '=' || *p++ != '"')
			return false;
		while (*p != '"') {
			if (*p == '\0' || *p == '\n')
				return false;
			if (*p == '\\' && p[1] != '\0')
				p++;
			p++;
		}
		p++;
		if (*p == ',')
			p++;
		else if (*p != '}')
			return false;
	}
	*pp = p + 1;
	return true;
}

struct family {
	char name[128];
	char type[32];
};

/* Check every line of text; the number of problems (each printed). */
static int
check_format(const char *text, int *nsamples)
{
	static struct family fam[256];
	size_t nfam = 0;
	int bad = 0;
	char line[1024];

	*nsamples = 0;
	for (const char *s = text; *s != '\0';) {
		const char *e = strchr(s, '\n');
		size_t n = e != NULL ? (size_t)(e - s) : strlen(s);
		char name[128], type[32];

		if (e == NULL) {
			th_diag("last line lacks its newline");
			bad++;
		}
		snprintf(line, sizeof line, "%.*s", (int)n, s);
		s += n + (e != NULL);
		if (strncmp(line, "# HELP ", 7) == 0)
			continue;
		if (sscanf(line, "# TYPE %127s %31s", name, type) == 2) {
			bool known = strcmp(type, "counter") == 0 ||
				     strcmp(type, "gauge") == 0 ||
				     strcmp(type, "histogram") == 0;
			size_t nl = strlen(name);

			for (size_t i = 0; i < nfam; i++)
				if (strcmp(fam[i].name, name) == 0) {
					th_diag("TYPE twice: %s", line);
					bad++;
				}
			if (!known ||
			    (strncmp(name, "tessera_", 8) != 0 &&
			     strncmp(name, "process_", 8) != 0) ||
			    !name_ok(name, nl) ||
			    (strcmp(type, "counter") == 0) !=
				    (nl > 6 &&
				     strcmp(name + nl - 6, "_total") == 0)) {
				th_diag("bad TYPE line: %s", line);
				bad++;
			}
			if (nfam < sizeof fam / sizeof fam[0]) {
				snprintf(fam[nfam].name, sizeof fam[0].name,
					 "%s", name);
				snprintf(fam[nfam].type, sizeof fam[0].type,
					 "%s", type);
				nfam++;
			}
			continue;
		}
		if (line[0] == '#' || line[0] == '\0') {
			th_diag("unexpected line: \"%s\"", line);
			bad++;
			continue;
		}
		/* a sample: name{labels} value */
		const char *p = line, *v;
		char *end = NULL;
		bool typed = false;
		size_t k = 0;

		while (isalnum((unsigned char)p[k]) || p[k] == '_' ||
		       p[k] == ':')
			k++;
		snprintf(name, sizeof name, "%.*s", (int)k, p);
		p += k;
		if (*p == '{' && !labels_ok(&p)) {
			th_diag("bad labels: %s", line);
			bad++;
			continue;
		}
		v = p + 1;
		if (*p == ' ')
			strtod(v, &end);
		if (*p != ' ' || end == v || *end != '\0') {
			th_diag("bad value: %s", line);
			bad++;
			continue;
		}
		/* the family of the sample was declared before it */
		for (size_t i = 0; i < nfam && !typed; i++) {
			size_t fl = strlen(fam[i].name);
			const char *suf = name + fl;

			if (strncmp(name, fam[i].name, fl) != 0)
				continue;
			typed = *suf == '\0' ||
				(strcmp(fam[i].type, "histogram") == 0 &&
				 (strcmp(suf, "_bucket") == 0 ||
				  strcmp(suf, "_sum") == 0 ||
				  strcmp(suf, "_count") == 0));
		}
		if (!typed || !name_ok(name, strlen(name))) {
			th_diag("sample without a TYPE before it: %s", line);
			bad++;
		}
		(*nsamples)++;
	}
	return bad;
}

static char *
scrape(void)
{
	char *body = NULL;
	int code = http("GET", "/metrics", &body);

	TH_REQUIRE(code == 200 && body != NULL, "GET /metrics: %d", code);
	return body;
}

/* ---- a retransmitted CREATE, by hand ---------------------------------- */

static void
put32(uint8_t **p, uint32_t v)
{
	uint32_t be = htonl(v);

	memcpy(*p, &be, 4);
	*p += 4;
}

static void
put_opaque(uint8_t **p, const void *d, uint32_t len)
{
	put32(p, len);
	memcpy(*p, d, len);
	memset(*p + len, 0, (4 - len % 4) % 4);
	*p += (len + 3) / 4 * 4;
}

/* A record-marked RPC call of prog/proc with AUTH_SYS root credentials;
 * args (already XDR) appended.  Returns its length. */
static size_t
rpc_call(uint8_t *buf, uint32_t xid, uint32_t prog, uint32_t vers,
	 uint32_t proc, const uint8_t *args, size_t alen)
{
	uint8_t *p = buf + 4;

	put32(&p, xid);
	put32(&p, 0); /* CALL */
	put32(&p, 2);
	put32(&p, prog);
	put32(&p, vers);
	put32(&p, proc);
	put32(&p, 1);  /* AUTH_SYS */
	put32(&p, 20); /* stamp, "", uid 0, gid 0, no groups */
	put32(&p, 1);
	put32(&p, 0);
	put32(&p, 0);
	put32(&p, 0);
	put32(&p, 0);
	put32(&p, 0); /* AUTH_NONE verifier */
	put32(&p, 0);
	if (alen > 0)
		memcpy(p, args, alen);
	p = buf;
	put32(&p, 0x80000000u | (uint32_t)(alen + 60));
	return alen + 64;
}

/* Send a record, read one reply record; the reply's words in w (at most
 * nw), or -1. */
static int
rpc_roundtrip(int fd, const uint8_t *msg, size_t len, uint32_t *w, int nw)
{
	uint8_t mark[4], body[512];
	uint32_t rl;
	size_t got = 0;

	if (write(fd, msg, len) != (ssize_t)len)
		return -1;
	if (recv(fd, mark, 4, MSG_WAITALL) != 4)
		return -1;
	rl = (uint32_t)mark[0] << 24 | mark[1] << 16 | mark[2] << 8 | mark[3];
	rl &= 0x7fffffffu;
	if (rl > sizeof body)
		return -1;
	while (got < rl) {
		ssize_t n = recv(fd, body + got, rl - got, 0);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	for (int i = 0; i < nw && (size_t)(i + 1) * 4 <= rl; i++)
		w[i] = ntohl(*(uint32_t *)(body + 4 * i));
	return 0;
}

static int
nfs_connect(void)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	th_loopback(&sin, srv.port);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* GUARDED CREATE of name in the root sent twice with one xid: the
 * second run would fail with EXIST, the cache replays the first reply. */
static void
retransmitted_create(const char *name)
{
	uint8_t args[256], msg[512], *p = args;
	uint32_t w1[8] = {0}, w2[8] = {0};
	size_t len;
	int rc, fd = nfs_connect();

	TH_REQUIRE(fd >= 0, "raw connection to the NFS port");
	put_opaque(&p, cn.root.data, cn.root.len);
	put_opaque(&p, name, (uint32_t)strlen(name));
	put32(&p, 1); /* GUARDED */
	for (int i = 0; i < 6; i++)
		put32(&p, 0); /* sattr3: nothing set */
	len = rpc_call(msg, 0x7e55e7a1, 100003, 3, 8, args, (size_t)(p - args));
	TH_REQUIRE(rpc_roundtrip(fd, msg, len, w1, 8) == 0, "CREATE sent");
	TH_CHECK(w1[0] == 0x7e55e7a1 && w1[5] == 0 && w1[6] == NFS3_OK,
		 "first CREATE: accepted %u, %s", w1[5],
		 th_stat_name((int)w1[6]));
	TH_REQUIRE(rpc_roundtrip(fd, msg, len, w2, 8) == 0,
		   "CREATE retransmitted");
	TH_CHECK(w2[5] == 0 && w2[6] == NFS3_OK,
		 "retransmitted CREATE answered from the cache: %s",
		 th_stat_name((int)w2[6]));

	/* two refusals at the RPC level: no such program, and GETATTR
	 * without its handle */
	len = rpc_call(msg, 1, 100099, 1, 0, NULL, 0);
	w1[5] = ~0u;
	rc = rpc_roundtrip(fd, msg, len, w1, 8);
	TH_CHECK(rc == 0 && w1[5] == 1, "unknown program: PROG_UNAVAIL (%u)",
		 w1[5]);
	len = rpc_call(msg, 2, 100003, 3, 1, NULL, 0);
	w1[5] = ~0u;
	rc = rpc_roundtrip(fd, msg, len, w1, 8);
	TH_CHECK(rc == 0 && w1[5] == 4,
		 "GETATTR without arguments: GARBAGE_ARGS (%u)", w1[5]);
	close(fd);
}

/* ---- NLM and NSM, by hand --------------------------------------------- */

/* NLM v4 LOCK (proc 2) or UNLOCK (4) of the whole file fh by owner svid
 * of client "metrics-test", exclusive, not blocking; the nlm4_stats
 * answered, or -1. */
static int
nlm_call(int fd, uint32_t proc, const struct th_fh *fh, uint32_t svid)
{
	uint8_t args[256], msg[512], *p = args;
	uint32_t w[9] = {0};
	size_t len;

	put32(&p, 4);
	put32(&p, svid); /* cookie */
	if (proc == 2) {
		put32(&p, 0); /* block */
		put32(&p, 1); /* exclusive */
	}
	put_opaque(&p, "metrics-test", 12);
	put_opaque(&p, fh->data, fh->len);
	put_opaque(&p, &svid, 4); /* owner handle */
	put32(&p, svid);
	for (int i = 0; i < 4; i++)
		put32(&p, 0); /* l_offset, l_len: the whole file */
	if (proc == 2) {
		put32(&p, 0); /* reclaim */
		put32(&p, 1); /* state */
	}
	len = rpc_call(msg, 0x4e4c0000 + proc * 16 + svid, 100021, 4, proc,
		       args, (size_t)(p - args));
	if (rpc_roundtrip(fd, msg, len, w, 9) != 0 || w[5] != 0 || w[6] != 4 ||
	    w[7] != svid)
		return -1;
	return (int)w[8]; /* after the cookie */
}

/* Locks through NLM and a status query through NSM: counted by
 * procedure (and NLM by status) like NFS. */
static void
nlm_traffic(const struct th_fh *fh)
{
	uint8_t args[64], msg[256], *p = args;
	uint32_t w[8] = {0};
	size_t len;
	int fd = nfs_connect();

	TH_REQUIRE(fd >= 0, "raw connection for NLM");
	TH_CHECK(nlm_call(fd, 2, fh, 1) == 0, "NLM LOCK by one owner: granted");
	TH_CHECK(nlm_call(fd, 2, fh, 2) == 1, "NLM LOCK by another: denied");
	TH_CHECK(nlm_call(fd, 4, fh, 1) == 0, "NLM UNLOCK: granted");
	put_opaque(&p, "metrics-test", 12);
	len = rpc_call(msg, 0x4e534d01, 100024, 1, 1, args, (size_t)(p - args));
	TH_CHECK(rpc_roundtrip(fd, msg, len, w, 8) == 0 && w[5] == 0,
		 "NSM STAT answered");
	len = rpc_call(msg, 0x4e4c4c4c, 100021, 4, 2, NULL, 0);
	w[5] = ~0u;
	TH_CHECK(rpc_roundtrip(fd, msg, len, w, 8) == 0 && w[5] == 4,
		 "NLM LOCK without arguments: GARBAGE_ARGS (%u)", w[5]);
	close(fd);
}

/* Whether tesserad.log has a line containing both a and b. */
static bool
log_has(const char *a, const char *b)
{
	char path[400], line[1024];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof path, "%s/tesserad.log", srv.dir);
	f = fopen(path, "r");
	while (f != NULL && !found && fgets(line, sizeof line, f) != NULL)
		found = strstr(line, a) != NULL && strstr(line, b) != NULL;
	if (f != NULL)
		fclose(f);
	return found;
}

/*
 * A client that resets its connection (close with SO_LINGER 0 sends an
 * RST) is routine: counted as "reset", not as an error, and logged at
 * info, below the default level.
 */
static void
check_reset(void)
{
	struct linger lg = {1, 0};
	uint8_t msg[128];
	uint32_t w[8];
	double reset = 0;
	char *m = NULL;
	int fd = nfs_connect();

	TH_REQUIRE(fd >= 0, "connect for a reset");
	TH_CHECK(rpc_roundtrip(fd, msg, rpc_call(msg, 9, 100003, 3, 0, NULL, 0),
			       w, 8) == 0 &&
			 w[5] == 0,
		 "NULL before the reset");
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
	for (uint64_t t0 = th_now_ms();
	     reset < 1 && th_now_ms() - t0 < TH_STALL_MS; usleep(20000)) {
		free(m);
		m = NULL;
		if (http("GET", "/metrics", &m) == 200 && m != NULL)
			reset = th_sample(m, "tessera_connections_closed_total{"
					     "reason=\"reset\"}");
	}
	TH_CHECK(reset >= 1, "a reset connection counted as reset (%g)", reset);
	TH_CHECK(m != NULL && th_sample(m, "tessera_connections_closed_total{"
					   "reason=\"error\"}") == 0,
		 "and not as an error");
	TH_CHECK(!log_has(" notice ", "reset by peer") &&
			 !log_has(" warn ", "reset by peer"),
		 "a client's reset is not logged at notice or above");
	free(m);
}

/* ---- the test ---------------------------------------------------------- */

static void
nfs_traffic(void)
{
	static uint8_t data[65536];
	struct th_obj o;
	fattr3 a;
	int st;

	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0, "mounted /");
	TH_CHECK(th_getattr(&cn, &cn.root, &a) == NFS3_OK, "GETATTR /");
	st = th_lookup(&cn, &cn.root, "missing", &o);
	TH_STAT(st, NFS3ERR_NOENT, "LOOKUP missing");
	st = th_create(&cn, &cn.root, "f", GUARDED, NULL, NULL, &o);
	TH_REQUIRE(st == NFS3_OK && o.fh_follows, "CREATE f (%s)",
		   th_stat_name(st));
	th_fill(3, data, sizeof data);
	/* writeback: stable once staged; the upload then waits for the
	 * 1 KiB/s limit */
	st = th_write(&cn, &o.fh, 0, data, sizeof data, FILE_SYNC, NULL);
	TH_STAT(st, NFS3_OK, "FILE_SYNC WRITE of 64 KiB");
	retransmitted_create("again");
	nlm_traffic(&o.fh);
}

static void
check_counters(const char *m)
{
	TH_CHECK(th_sample(m, "tessera_rpc_calls_total{program=\"nfs\","
			      "procedure=\"getattr\"}") >= 1,
		 "GETATTR calls counted");
	TH_CHECK(th_sample(m, "tessera_rpc_calls_total{program=\"mount\","
			      "procedure=\"mnt\"}") >= 1,
		 "MNT calls counted");
	TH_CHECK(th_sample(m, "tessera_rpc_calls_total{program=\"nfs\","
			      "procedure=\"create\"}") >= 3,
		 "CREATE calls counted, the retransmission too");
	TH_CHECK(th_sample(m, "tessera_nfs_replies_total{procedure=\"lookup\","
			      "status=\"NFS3ERR_NOENT\"}") >= 1,
		 "LOOKUP's NOENT counted by status");
	TH_CHECK(th_sample(m, "tessera_rpc_call_duration_seconds_count{program="
			      "\"nfs\",procedure=\"write\"}") >= 1,
		 "WRITE latency histogram");
	TH_CHECK(th_sample(m,
			   "tessera_rpc_call_duration_seconds_bucket{program="
			   "\"nfs\",procedure=\"write\",le=\"+Inf\"}") ==
			 th_sample(m, "tessera_rpc_call_duration_seconds_count{"
				      "program=\"nfs\",procedure=\"write\"}"),
		 "+Inf bucket equals the count");
	TH_CHECK(th_sample(m, "tessera_rpc_calls_total{program=\"nlm\","
			      "procedure=\"lock\"}") == 3 &&
			 th_sample(m, "tessera_rpc_calls_total{program=\"nlm\","
				      "procedure=\"unlock\"}") == 1 &&
			 th_sample(m, "tessera_rpc_calls_total{program=\"nsm\","
				      "procedure=\"stat\"}") == 1,
		 "NLM and NSM calls counted by procedure (GARBAGE_ARGS "
		 "too)");
	TH_CHECK(th_sample(m, "tessera_nlm_replies_total{procedure=\"lock\","
			      "status=\"NLM4_GRANTED\"}") == 1 &&
			 th_sample(
				 m,
				 "tessera_nlm_replies_total{procedure=\"lock\","
				 "status=\"NLM4_DENIED\"}") == 1 &&
			 th_sample(m,
				   "tessera_nlm_replies_total{procedure="
				   "\"unlock\",status=\"NLM4_GRANTED\"}") == 1,
		 "NLM answers counted by procedure and status");
	TH_CHECK(th_sample(m, "tessera_rpc_call_duration_seconds_count{program="
			      "\"nlm\",procedure=\"lock\"}") >= 2 &&
			 th_sample(m,
				   "tessera_rpc_call_duration_seconds_count{"
				   "program=\"nsm\",procedure=\"stat\"}") == 1,
		 "NLM and NSM latency histograms (calls that ran)");
	TH_CHECK(th_sample(m, "tessera_rpc_calls_total{program=\"nsm\","
			      "procedure=\"notify\"}") == 0 &&
			 strstr(m, "procedure=\"mon\"") == NULL,
		 "NSM procedures the gateway does not serve are not listed");
	TH_CHECK(th_sample(m, "tessera_drc_hits_total") >= 1,
		 "duplicate request cache hit counted (%g)",
		 th_sample(m, "tessera_drc_hits_total"));
	TH_CHECK(th_sample(m, "tessera_drc_entries") >= 1, "DRC entries");
	TH_CHECK(th_sample(m, "tessera_drc_bytes") > 0, "DRC bytes");
	TH_CHECK(th_sample(
			 m,
			 "tessera_rpc_errors_total{reason=\"prog_unavail\"}") >=
			 1,
		 "PROG_UNAVAIL counted");
	TH_CHECK(th_sample(
			 m,
			 "tessera_rpc_errors_total{reason=\"garbage_args\"}") >=
			 2,
		 "GARBAGE_ARGS counted (NFS's and NLM's)");
	TH_CHECK(th_sample(m, "tessera_connections_open") >= 1,
		 "open connections (%g)",
		 th_sample(m, "tessera_connections_open"));
	TH_CHECK(
		th_sample(m,
			  "tessera_connections_closed_total{reason=\"eof\"}") >=
			1,
		"a closed connection counted by reason");
	TH_CHECK(th_sample(m, "tessera_volume_used_inodes{volume=\"tvol\"}") >=
			 3,
		 "volume inodes, labelled with the volume (%g)",
		 th_sample(m, "tessera_volume_used_inodes{volume=\"tvol\"}"));
	TH_CHECK(th_sample(m, "tessera_metadata_up{volume=\"tvol\"}") == 1,
		 "metadata up");
	TH_CHECK(th_sample(m,
			   "tessera_volume_pending_delete{volume=\"tvol\"}") >=
				 0 &&
			 th_sample(m,
				   "tessera_volume_pending_delete_files{volume="
				   "\"tvol\"}") >= 0,
		 "the deletion backlog, labelled with the volume");
	/* the object store by operation: the gateway read the volume
	 * marker at start */
	TH_CHECK(th_sample(m, "tessera_objstore_requests_total{operation="
			      "\"get\"}") >= 1,
		 "object-store GETs counted (%g)",
		 th_sample(
			 m,
			 "tessera_objstore_requests_total{operation=\"get\"}"));
	TH_CHECK(th_sample(m, "tessera_objstore_request_duration_seconds_count{"
			      "operation=\"get\"}") ==
			 th_sample(m,
				   "tessera_objstore_requests_total{operation="
				   "\"get\"}"),
		 "a latency sample per GET");
	for (int i = 0; i < 6; i++) {
		static const char *const ops[] = {"get",    "put",  "head",
						  "delete", "list", "sync"};
		char s[160];

		snprintf(s, sizeof s,
			 "tessera_objstore_request_errors_total{operation="
			 "\"%s\"}",
			 ops[i]);
		TH_CHECK(th_sample(m, s) == 0, "no %s errors", ops[i]);
	}
	/* metadata transactions and the LMDB map */
	TH_CHECK(th_sample(m, "tessera_metadata_transactions_total{kind="
			      "\"write\"}") >= 3,
		 "write transactions counted (%g)",
		 th_sample(m, "tessera_metadata_transactions_total{kind="
			      "\"write\"}"));
	TH_CHECK(th_sample(m, "tessera_metadata_transaction_duration_seconds_"
			      "count{kind=\"read\"}") >= 1,
		 "read transaction latency");
	TH_CHECK(
		th_sample(m, "tessera_metadata_transaction_conflicts_total") ==
				0 &&
			th_sample(
				m,
				"tessera_metadata_transaction_retries_total") ==
				0,
		"no conflicts on LMDB (writers are serialised)");
	TH_CHECK(th_sample(m, "tessera_meta_lmdb_pages_used") >= 2 &&
			 th_sample(m, "tessera_meta_lmdb_map_used_bytes") ==
				 th_sample(m, "tessera_meta_lmdb_pages_used") *
					 th_sample(m, "tessera_meta_lmdb_page_"
						      "size_bytes") &&
			 th_sample(m, "tessera_meta_lmdb_map_size_bytes") >=
				 th_sample(m,
					   "tessera_meta_lmdb_map_used_bytes"),
		 "LMDB map use (%g of %g bytes)",
		 th_sample(m, "tessera_meta_lmdb_map_used_bytes"),
		 th_sample(m, "tessera_meta_lmdb_map_size_bytes"));
	TH_CHECK(th_sample(m, "tessera_meta_lmdb_tree_pages{kind=\"leaf\"}") >=
				 1 &&
			 th_sample(m, "tessera_meta_lmdb_entries") >= 3,
		 "LMDB tree pages and entries");
	/* the process */
	TH_CHECK(th_sample(m, "process_resident_memory_bytes") > 1 << 20 &&
			 th_sample(m, "process_virtual_memory_bytes") >=
				 th_sample(m, "process_resident_memory_bytes"),
		 "process memory (%g resident)",
		 th_sample(m, "process_resident_memory_bytes"));
	TH_CHECK(th_sample(m, "process_open_fds") >= 4 &&
			 th_sample(m, "process_max_fds") >=
				 th_sample(m, "process_open_fds"),
		 "process file descriptors (%g)",
		 th_sample(m, "process_open_fds"));
	TH_CHECK(th_sample(m, "process_cpu_seconds_total") > 0,
		 "process CPU time");
	TH_CHECK(th_sample(m, "process_start_time_seconds") ==
				 th_sample(m, "tessera_start_time_seconds") ||
			 (th_sample(m, "process_start_time_seconds") >=
				  th_sample(m, "tessera_start_time_seconds") &&
			  th_sample(m, "process_start_time_seconds") <
				  th_sample(m, "tessera_start_time_seconds") +
					  1),
		 "process start time");
	TH_CHECK(th_sample(m, "tessera_rpc_received_bytes_total") > 65536 &&
			 th_sample(m, "tessera_rpc_sent_bytes_total") > 0,
		 "RPC bytes in and out");
	TH_CHECK(th_sample(m, "tessera_rpc_requests_in_progress") >= 0,
		 "requests in progress");
	TH_CHECK(th_sample(m, "tessera_start_time_seconds") > 1.5e9,
		 "start time");
	TH_CHECK(th_sample(m, "tessera_cache_limit_bytes") == 64 << 20,
		 "cache limit is cache_size");
	TH_CHECK(th_sample(m, "tessera_buffered_write_bytes") >= 0,
		 "buffered write bytes");
	TH_CHECK(th_sample(m, "tessera_build_info{version=\"" PACKAGE_VERSION
			      "\"}") == 1,
		 "build info");
}

/* The staged block outlives writeback_max_age (1 s): poll until the
 * alarm is raised (the uploader sleeps for the 1 KiB/s limit). */
static void
check_writeback_alarm(void)
{
	uint64_t t0 = th_now_ms();
	char *m = NULL;

	for (;;) {
		free(m);
		if (http("GET", "/metrics", &m) != 200 || m == NULL ||
		    th_sample(m, "tessera_writeback_alarm") == 1 ||
		    th_now_ms() - t0 > TH_STALL_MS)
			break;
		usleep(200000);
	}
	TH_REQUIRE(m != NULL, "GET /metrics while polling");
	TH_CHECK(th_sample(m, "tessera_writeback_alarm") == 1,
		 "writeback alarm raised past writeback_max_age");
	TH_CHECK(th_sample(m, "tessera_writeback_staged_blocks") >= 1,
		 "staged blocks (%g)",
		 th_sample(m, "tessera_writeback_staged_blocks"));
	TH_CHECK(th_sample(m, "tessera_writeback_staged_bytes") >= 65536,
		 "staged bytes (%g)",
		 th_sample(m, "tessera_writeback_staged_bytes"));
	TH_CHECK(th_sample(m, "tessera_writeback_oldest_age_seconds") >= 1,
		 "oldest staged age (%g s)",
		 th_sample(m, "tessera_writeback_oldest_age_seconds"));
	TH_CHECK(th_sample(m, "tessera_writeback_max_age_seconds") == 1,
		 "max age exported");
	TH_CHECK(th_sample(m, "tessera_objstore_throttled_seconds_total") > 0,
		 "upload throttling counted");
	free(m);
}

/* ---- the export option async ------------------------------------------ */

#define ASYNC_N 40

static void
lmdb_figures(double *syncs, double *lazy)
{
	char *m = scrape();

	*syncs = th_sample(m, "tessera_meta_lmdb_syncs_total");
	*lazy = th_sample(m, "tessera_meta_lmdb_lazy_commits_total");
	free(m);
}

/* ASYNC_N CREATEs then REMOVEs, one at a time; the number that failed. */
static int
create_remove(struct th_conn *c, const char *prefix)
{
	struct th_obj o;
	char name[32];
	int bad = 0;

	for (int i = 0; i < ASYNC_N; i++) {
		snprintf(name, sizeof name, "%s%d", prefix, i);
		bad += th_create(c, &c->root, name, GUARDED, NULL, NULL, &o) !=
		       NFS3_OK;
	}
	for (int i = 0; i < ASYNC_N; i++) {
		snprintf(name, sizeof name, "%s%d", prefix, i);
		bad += th_remove(c, &c->root, name) != NFS3_OK;
	}
	return bad;
}

/* / is exported sync (the default), /async with async.  One client, one
 * request in flight: on / every CREATE and REMOVE waits for a sync of its
 * own (nothing else is in flight to share it), on /async none waits and
 * each is counted as a lazy commit.  (gc's durable round, once a second
 * at most, syncs what the lazy commits left: far fewer than 2 x ASYNC_N
 * in the time these take.) */
static void
check_async(void)
{
	struct th_conn a;
	double s0, l0, s1, l1, s2, l2;
	int bad;

	TH_REQUIRE(th_connect(&a, srv.port, "/async", 0, 0) == 0,
		   "mounted /async");
	lmdb_figures(&s0, &l0);
	TH_REQUIRE(s0 >= 0 && l0 >= 0, "the LMDB figures are exported");
	bad = create_remove(&cn, "sync");
	lmdb_figures(&s1, &l1);
	bad += create_remove(&a, "async");
	lmdb_figures(&s2, &l2);
	TH_CHECK(bad == 0, "%d CREATEs and REMOVEs on each export", ASYNC_N);
	TH_CHECK(s1 - s0 >= 2 * ASYNC_N,
		 "sync export: each waited for a sync (%g syncs for %d)",
		 s1 - s0, 2 * ASYNC_N);
	TH_CHECK(l1 - l0 < ASYNC_N,
		 "sync export: not committed lazily (%g lazy commits)",
		 l1 - l0);
	TH_CHECK(l2 - l1 >= 2 * ASYNC_N,
		 "async export: each committed lazily (%g for %d)", l2 - l1,
		 2 * ASYNC_N);
	TH_CHECK(s2 - s1 < ASYNC_N,
		 "async export: none waited for a sync (%g syncs for %d)",
		 s2 - s1, 2 * ASYNC_N);
	th_disconnect(&a);
}

/* Every series the Grafana dashboard queries (contrib/grafana/
 * tessera.json: the tessera_* and process_* names in it) has a sample in
 * the scrape m; a histogram's _bucket, _sum and _count are its own
 * sample lines. */
static void
check_dashboard(const char *m)
{
	char *json = NULL, name[128];
	unsigned names = 0, missing = 0;
	size_t len = 0;
	FILE *f = fopen(TESSERA_DASHBOARD, "r");

	TH_REQUIRE(f != NULL, "open %s", TESSERA_DASHBOARD);
	TH_REQUIRE(getdelim(&json, &len, '\0', f) > 0, "read the dashboard");
	fclose(f);
	for (const char *p = json; (p = strpbrk(p, "tp")) != NULL;) {
		size_t n = 0;
		bool found = false;

		if ((strncmp(p, "tessera_", 8) != 0 &&
		     strncmp(p, "process_", 8) != 0) ||
		    (p > json &&
		     (isalnum((unsigned char)p[-1]) || p[-1] == '_'))) {
			p++;
			continue;
		}
		while (n + 1 < sizeof name &&
		       (islower((unsigned char)p[n]) ||
			isdigit((unsigned char)p[n]) || p[n] == '_'))
			name[n] = p[n], n++;
		name[n] = '\0';
		p += n;
		names++;
		for (const char *s = m; s != NULL && *s != '\0';) {
			if (strncmp(s, name, n) == 0 &&
			    (s[n] == '{' || s[n] == ' ')) {
				found = true;
				break;
			}
			s = strchr(s, '\n');
			if (s != NULL)
				s++;
		}
		if (!found) {
			th_diag("the dashboard queries %s, which /metrics "
				"lacks",
				name);
			missing++;
		}
	}
	TH_CHECK(names >= 30 && missing == 0,
		 "every series the dashboard queries is served (%u queried, "
		 "%u missing)",
		 names, missing);
	free(json);
}

/* tessera top --once against this gateway: one view, from two scrapes,
 * with the figures it promises. */
static void
check_top(void)
{
	char path[400], *out = NULL;
	size_t len = 0;
	FILE *f;

	/* th_tessera leaves the output in tool.out */
	snprintf(path, sizeof path, "%s/tool.out", srv.dir);
	TH_CHECK(th_tessera(&srv, "top --once --interval 0.2 127.0.0.1:%d",
			    http_port) == 0,
		 "tessera top --once");
	f = fopen(path, "r");
	TH_REQUIRE(f != NULL && getdelim(&out, &len, '\0', f) > 0,
		   "read its output");
	fclose(f);
	th_diag("tessera top --once:");
	for (char *l = out, *e; *l != '\0'; l = e + (*e != '\0')) {
		e = l + strcspn(l, "\n");
		th_diag("  %.*s", (int)(e - l), l);
	}
	TH_CHECK(strstr(out, "volume tvol") != NULL &&
			 strstr(out, "clients ") != NULL &&
			 strstr(out, " ops/s") != NULL &&
			 strstr(out, "cache   hit") != NULL &&
			 strstr(out, "pending delete 0") != NULL &&
			 strstr(out, "writeback ") != NULL &&
			 strstr(out, "PROCEDURE") != NULL &&
			 strstr(out, "\ngetattr ") != NULL &&
			 strstr(out, "\nnlm lock ") != NULL &&
			 strstr(out, " locks ") != NULL,
		 "the view shows the volume, clients, operations, cache, "
		 "backlogs and procedures (NLM's too)");
	free(out);
	TH_CHECK(th_tessera(&srv, "top --once 127.0.0.1:1 2>/dev/null") >> 8 ==
			 1,
		 "top of an endpoint that does not answer: exit 1");
	TH_CHECK(th_tessera(&srv, "top --interval 0 2>/dev/null") >> 8 == 2,
		 "top --interval 0: usage error");
}

/* ---- a raft:// gateway ------------------------------------------------- */

/* A loopback TCP port nobody listens on now. */
static int
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

	th_loopback(&sin, 0);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* A gateway of a one-node raft:// group shows its replica's LMDB map
 * and pages like an lmdb:// gateway (tessera_meta_lmdb_*). */
static void
check_raft(void)
{
	char dir[300], conf[400], log[400], *cmd, bin[600];
	int raft_port = free_port(), nfs_port = free_port(), st;
	pid_t pid;
	char *m;
	FILE *f;

	snprintf(dir, sizeof dir, "%s/raft", srv.dir);
	snprintf(conf, sizeof conf, "%s/node.conf", dir);
	snprintf(log, sizeof log, "%s/node.log", dir);
	TH_REQUIRE(mkdir(dir, 0700) == 0 && raft_port > 0 && nfs_port > 0,
		   "a directory and ports for a raft node");
	f = fopen(conf, "w");
	TH_REQUIRE(f != NULL, "write %s", conf);
	fprintf(f,
		"raft_id = 1\nraft_dir = %s/n1\n"
		"raft_address = 127.0.0.1:%d\nraft_peers = 1@127.0.0.1:%d\n"
		"raft_secret_file = %s/raft.key\nlisten = 127.0.0.1:%d\n"
		"metrics_listen = 127.0.0.1:0\nrpcbind = no\n"
		"locking = no\nlog_file = %s\n",
		dir, raft_port, raft_port, dir, nfs_port, log);
	fclose(f);
	TH_REQUIRE(asprintf(&cmd,
			    "%s/tessera raft secret %s/raft.key >/dev/null && "
			    "%s/tessera -c %s format raft:// file://%s/obj "
			    "rvol >%s/format.out 2>&1 || { sed 's/^/#   /' "
			    "%s/format.out; exit 1; }",
			    th_builddir(), dir, th_builddir(), conf, dir, dir,
			    dir) > 0,
		   "asprintf");
	st = system(cmd);
	free(cmd);
	TH_REQUIRE(st == 0, "tessera format raft:// founds a group of one "
			    "node");
	snprintf(bin, sizeof bin, "%s/tesserad", th_builddir());
	/* what it says before its log file opens goes there too */
	pid = t_fork_logged(log);
	if (pid == 0) {
		execl(bin, bin, "-c", conf, "--meta", "raft://", "-f",
		      (char *)NULL);
		_exit(127);
	}
	TH_REQUIRE(pid > 0, "fork");
	http_port = 0;
	for (uint64_t t0 = th_now_ms(); th_now_ms() - t0 < TH_STALL_MS;
	     usleep(50000))
		if ((http_port = th_log_metrics_port(log, 0)) > 0 ||
		    waitpid(pid, &st, WNOHANG) == pid)
			break;
	TH_REQUIRE(http_port > 0, "the raft gateway serves its metrics");
	m = scrape();
	TH_CHECK(th_sample(m, "tessera_raft_node_id") == 1,
		 "it is node 1 of a raft group");
	TH_CHECK(
		th_sample(m, "tessera_meta_lmdb_pages_used") >= 2 &&
			th_sample(m, "tessera_meta_lmdb_map_used_bytes") ==
				th_sample(m, "tessera_meta_lmdb_pages_used") *
					th_sample(m,
						  "tessera_meta_lmdb_page_size_"
						  "bytes") &&
			th_sample(m, "tessera_meta_lmdb_map_size_bytes") >=
				th_sample(m,
					  "tessera_meta_lmdb_map_used_bytes") &&
			th_sample(m, "tessera_meta_lmdb_entries") >= 3 &&
			th_sample(m, "tessera_meta_lmdb_tree_pages{kind="
				     "\"leaf\"}") >= 1,
		"its replica's LMDB map and pages (%.0f of %.0f bytes, %.0f "
		"keys)",
		th_sample(m, "tessera_meta_lmdb_map_used_bytes"),
		th_sample(m, "tessera_meta_lmdb_map_size_bytes"),
		th_sample(m, "tessera_meta_lmdb_entries"));
	free(m);
	kill(pid, SIGTERM);
	TH_CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
			 WEXITSTATUS(st) == 0,
		 "the raft gateway stops");
}

int
main(void)
{
	char args[400], *m, *body = NULL;
	int nsamples = 0, bad, code, fd;
	long at;

	TH_REQUIRE(th_server_start(&srv, NULL, NULL) == 0, "tesserad started");
	snprintf(args, sizeof args, "%s/cache", srv.dir);
	TH_REQUIRE(mkdir(args, 0700) == 0, "mkdir %s", args);
	snprintf(args, sizeof args,
		 "--metrics-listen 127.0.0.1:0 -o cache_dirs=%s/cache "
		 "-o cache_size=64M -o writeback=yes -o writeback_max_age=1s "
		 "-o upload_limit=1K -o inline_max=0",
		 srv.dir);
	th_server_set_args(&srv, args);
	{
		struct th_conn c;
		struct th_obj d;
		sattr3 sa = th_sattr_mode(0777);

		TH_REQUIRE(th_connect(&c, srv.port, "/", 0, 0) == 0 &&
				   th_mkdir(&c, &c.root, "async", &sa, &d) ==
					   NFS3_OK,
			   "MKDIR /async");
		th_disconnect(&c);
	}
	TH_REQUIRE(th_server_set_exports(
			   &srv, "/ 127.0.0.1(rw,no_root_squash,insecure)\n"
				 "/async 127.0.0.1(rw,no_root_squash,insecure,"
				 "async)\n") == 0,
		   "exports / and /async (async)");
	at = th_server_log_size(&srv);
	TH_REQUIRE(th_server_restart(&srv, false) == 0,
		   "tesserad restarted with metrics on port 0");
	for (uint64_t t0 = th_now_ms(); th_now_ms() - t0 < TH_STALL_MS;
	     usleep(50000))
		if ((http_port = th_server_metrics_port(&srv, at)) > 0)
			break;
	TH_REQUIRE(http_port > 0, "the metrics port is logged");

	/* the checker itself finds what it must */
	th_diag("three format errors follow on purpose:");
	bad = check_format("# TYPE tessera_x_total counter\n"
			   "tessera_x_total{a=\"1\" 2\n"
			   "tessera_y 1\n# TYPE tessera_z counter\n",
			   &nsamples);
	TH_CHECK(bad == 3, "the format check rejects bad lines (%d)", bad);

	m = scrape();
	bad = check_format(m, &nsamples);
	TH_CHECK(bad == 0 && nsamples > 50,
		 "exposition format well-formed (%d samples)", nsamples);
	TH_CHECK(th_sample(m, "tessera_drc_hits_total") == 0, "no DRC hit yet");
	TH_CHECK(th_sample(m, "tessera_objstore_puts_total") >= 0,
		 "objects stored are counted");
	free(m);

	/* a connection that comes and goes: closed with reason eof */
	fd = nfs_connect();
	TH_REQUIRE(fd >= 0, "connect and hang up");
	close(fd);
	nfs_traffic();

	m = scrape();
	bad = check_format(m, &nsamples);
	TH_CHECK(bad == 0, "still well-formed after traffic (%d samples)",
		 nsamples);
	check_counters(m);
	free(m);
	check_reset();
	check_writeback_alarm();
	m = scrape();
	check_dashboard(m);
	free(m);
	check_top();
	check_async();

	code = http("GET", "/healthz", &body);
	TH_CHECK(code == 200 && body != NULL && strcmp(body, "ok\n") == 0,
		 "GET /healthz: %d \"%s\"", code, body ? body : "");
	free(body);
	TH_CHECK(http("GET", "/nope", NULL) == 404, "unknown path: 404");
	TH_CHECK(http("POST", "/metrics", NULL) == 405, "POST: 405");
	TH_CHECK(http("HEAD", "/metrics", NULL) == 200, "HEAD: 200");

	th_disconnect(&cn);
	/* the throttled upload would hold a clean stop for a minute */
	th_server_stop(&srv, true);
	check_raft();
	th_server_destroy(&srv);
	return th_done();
}
