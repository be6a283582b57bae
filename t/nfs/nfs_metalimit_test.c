/*
 * nfs_metalimit_test.c - the metadata rate limits of a real tesserad
 * (client_meta_*_rate, export_meta_*_rate, limit_wait_max: nfsd/limit.c)
 * and the admin endpoint that changes them while it runs.
 *
 *   client A (127.0.0.1) sends 50 GETATTRs at once against a limit of
 *   5/s with a burst of 5 and limit_wait_max 1 s: some are made to wait
 *   (tessera_limit_delayed_total moves), the rest are answered
 *   NFS3ERR_JUKEBOX, each one counted by tessera_limit_refused_total;
 *   nothing else is answered;
 *
 *   client B (127.0.0.2, its own address) right after: its 5 GETATTRs
 *   are all answered NFS3_OK and none waits: A's limit is A's;
 *
 *   changes (limited by their own, unset, limit) are not slowed;
 *
 *   the limit changed while the gateway runs (SIGHUP, `tessera limit
 *   set`, `tessera config reload`) takes effect without a restart: 0
 *   lifts it, an export limit holds back every client of the export;
 *
 *   40 client addresses against limit_clients 16: the table of client
 *   buckets keeps 16 entries (tessera_limit_clients), the others reuse
 *   them;
 *
 *   meta_read_rate=N in an exports rule limits the clients it admits
 *   alone;
 *
 *   the admin endpoint refuses a request without the token of
 *   admin_token_file (made by tesserad, mode 0600) or with a wrong one
 *   (401), an unknown limit and a bad value; a reload of a broken
 *   tessera.conf fails and changes nothing.
 *
 * Only counts are asserted, never how long anything took: 50 calls sent
 * at once arrive within milliseconds, and the limit lets about 10 of
 * them through in the second the others wait at most; a very slow
 * machine could only let more through, so the checks ask for at least
 * one of each answer.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "t/nfs/tharness.h"

#define FLOOD 50

static struct th_server srv;
static int http_port;
static char conf_path[400], token_path[400];

/* ---- HTTP ------------------------------------------------------------- */

/* th_http to this test's gateway (auth: an Authorization header's
 * value, or NULL): the status code (-1: no answer), the body in *body
 * (malloc'd; body may be NULL). */
static int
http(const char *method, const char *path, const char *auth, char **body)
{
	return th_http(http_port, method, path, auth, body);
}

static char *
http_get(const char *path)
{
	char *body = NULL;

	if (http("GET", path, NULL, &body) != 200) {
		free(body);
		return NULL;
	}
	return body;
}

/* The value of the sample line that begins with what in /metrics; -1 if
 * none. */
static long long
metric(const char *what)
{
	char *m = http_get("/metrics"), *p;
	long long v = -1;

	if (m == NULL)
		return -1;
	for (p = m; (p = strstr(p, what)) != NULL; p++)
		if (p == m || p[-1] == '\n') {
			v = atoll(p + strlen(what));
			break;
		}
	free(m);
	return v;
}

static long long
refused(const char *cls)
{
	char what[128];
	long long v;

	snprintf(what, sizeof what,
		 "tessera_limit_refused_total{export=\"/\",class=\"%s\"} ",
		 cls);
	v = metric(what);
	return v < 0 ? 0 : v;
}

static long long
delayed(const char *cls)
{
	char what[128];
	long long v;

	snprintf(what, sizeof what,
		 "tessera_limit_delayed_total{export=\"/\",class=\"%s\"} ",
		 cls);
	v = metric(what);
	return v < 0 ? 0 : v;
}

/* ---- clients -------------------------------------------------------------- */

/* Connect from the address from (a loopback address of its own): the
 * libnfs connection's socket is replaced, under the same descriptor, by
 * one bound to from; the mount's handle stays valid. */
static int
connect_from(struct th_conn *c, const char *from)
{
	struct sockaddr_in sin, me;
	int fd;

	if (th_connect(c, srv.port, "/", 0, 0) != 0)
		return -1;
	if (strcmp(from, "127.0.0.1") == 0)
		return 0;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&me, 0, sizeof me);
	me.sin_family = AF_INET;
	inet_pton(AF_INET, from, &me.sin_addr);
	th_loopback(&sin, srv.port);
	if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof me) != 0 ||
	    connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
	    dup2(fd, rpc_get_fd(c->rpc)) < 0) {
		th_diag("connect from %s: %s", from, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return th_null(c) == 0 ? 0 : -1;
}

struct flood {
	int inflight;
	int ok, jukebox, other;
};

static void
flood_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct flood *f = priv;

	(void)rpc;
	f->inflight--;
	if (status != RPC_STATUS_SUCCESS || data == NULL)
		f->other++;
	else if (*(int *)data == NFS3_OK)
		f->ok++;
	else if (*(int *)data == NFS3ERR_JUKEBOX)
		f->jukebox++;
	else
		f->other++;
}

/* n GETATTRs of the root sent at once; their answers counted. */
static struct flood
flood_getattr(struct th_conn *c, int n)
{
	struct flood f = {0};
	GETATTR3args a;
	uint64_t t0 = th_now_ms();

	memset(&a, 0, sizeof a);
	a.object = th_fh3(&c->root);
	for (int i = 0; i < n; i++) {
		if (rpc_nfs3_getattr_async(c->rpc, flood_cb, &a, &f) != 0) {
			th_diag("GETATTR: %s", rpc_get_error(c->rpc));
			f.other += n - i;
			return f;
		}
		f.inflight++;
	}
	while (f.inflight > 0) {
		if (th_service(c, 1000) < 0 || th_now_ms() - t0 > TH_STALL_MS) {
			th_diag("GETATTR flood: connection lost, or stalled");
			f.other += f.inflight;
			break;
		}
	}
	return f;
}

static void
write_conf(const char *text)
{
	FILE *f = fopen(conf_path, "w");

	TH_REQUIRE(f != NULL, "write %s", conf_path);
	fprintf(f, "admin_token_file = %s\n%s", token_path, text);
	fclose(f);
}

/* `tessera ARGS --gateway 127.0.0.1:PORT --token-file TOKEN`: its exit
 * status; its output in tool_out. */
static char tool_out[4096];

static int
tool(const char *args)
{
	char path[400];
	FILE *f;
	size_t n = 0;
	int st;

	st = th_tessera(&srv, "%s --gateway 127.0.0.1:%d --token-file %s", args,
			http_port, token_path);
	snprintf(path, sizeof path, "%s/tool.out", srv.dir);
	tool_out[0] = '\0';
	f = fopen(path, "r");
	if (f != NULL) {
		n = fread(tool_out, 1, sizeof tool_out - 1, f);
		tool_out[n] = '\0';
		fclose(f);
	}
	return st;
}

int
main(void)
{
	struct th_conn a, b;
	struct flood f, g;
	long long r0, d0;
	long from;
	uint64_t failed = 0;
	char args[600], dir[] = "/tmp/metalimit.XXXXXX";

	if (mkdtemp(dir) == NULL)
		th_skip_all("mkdtemp");
	snprintf(conf_path, sizeof conf_path, "%s/tessera.conf", dir);
	snprintf(token_path, sizeof token_path, "%s/admin.token", dir);
	write_conf("client_meta_read_rate = 5\n"
		   "client_meta_read_burst = 5\n"
		   "limit_wait_max = 1s\n");
	snprintf(args, sizeof args, "-c %s --metrics-listen 127.0.0.1:0",
		 conf_path);
	TH_REQUIRE(th_server_start(&srv, NULL, NULL) == 0, "server starts");
	TH_REQUIRE(th_server_set_exports(
			   &srv,
			   "/ 127.0.0.0/8(rw,no_root_squash,insecure)\n") == 0,
		   "exports for 127.0.0.0/8");
	th_server_set_args(&srv, args);
	from = th_server_log_size(&srv);
	TH_REQUIRE(th_server_restart(&srv, false) == 0,
		   "restarted with the limits");
	T_WAIT((http_port = th_server_metrics_port(&srv, from)) > 0);
	TH_REQUIRE(http_port > 0, "metrics port %d", http_port);
	TH_REQUIRE(connect_from(&a, "127.0.0.1") == 0, "client A connects");
	TH_REQUIRE(connect_from(&b, "127.0.0.2") == 0,
		   "client B connects from 127.0.0.2");

	/* A over its limit: slowed, then refused */
	f = flood_getattr(&a, FLOOD);
	th_diag("A: %d OK, %d JUKEBOX, %d other", f.ok, f.jukebox, f.other);
	TH_CHECK(f.other == 0, "A: every answer is OK or JUKEBOX");
	TH_CHECK(f.ok >= 5, "A: at least its burst answered OK (%d)", f.ok);
	TH_CHECK(f.jukebox >= 1, "A: over its limit, JUKEBOX (%d)", f.jukebox);
	TH_CHECK(refused("read") == f.jukebox,
		 "refused metric counts each JUKEBOX (%lld)", refused("read"));
	TH_CHECK(delayed("read") >= 1, "some calls waited (%lld)",
		 delayed("read"));

	/* B is another client: its own buckets */
	r0 = refused("read");
	d0 = delayed("read");
	g = flood_getattr(&b, 5);
	TH_CHECK(g.ok == 5 && g.jukebox == 0 && g.other == 0,
		 "B: 5 GETATTRs all OK (%d OK, %d JUKEBOX)", g.ok, g.jukebox);
	TH_CHECK(refused("read") == r0 && delayed("read") == d0,
		 "B: none refused, none waited");

	/* changes have their own limit, unset here */
	TH_CHECK(th_bulk_create(&a, &a.root, "w", 0, 0, 30, 30, &failed) == 0 &&
			 failed == 0,
		 "A: 30 CREATEs at once, none refused");
	TH_CHECK(refused("write") == 0 && delayed("write") == 0,
		 "write limit: nothing delayed or refused");

	/* a reload lifts the limit (SIGHUP) */
	write_conf("limit_wait_max = 1s\n");
	TH_REQUIRE(kill(srv.pid, SIGHUP) == 0, "SIGHUP");
	for (int i = 0;
	     i < 500 && metric("tessera_limit_meta_rate{scope=\"client\","
			       "class=\"read\"} ") != 0;
	     i++)
		usleep(10000);
	r0 = refused("read");
	f = flood_getattr(&a, FLOOD);
	TH_CHECK(f.ok == FLOOD && refused("read") == r0,
		 "after the reload lifted it: %d of %d OK", f.ok, FLOOD);

	/* the admin endpoint: the token of admin_token_file, or nothing */
	{
		char *body = NULL, wrong[420];
		int code;
		struct stat st;
		FILE *f0;

		TH_CHECK(stat(token_path, &st) == 0 &&
				 (st.st_mode & 0777) == 0600,
			 "tesserad made its admin token file, mode 0600");
		code = http("GET", "/admin/limit", NULL, &body);
		TH_CHECK(code == 401 && body && strstr(body, "no token"),
			 "GET /admin/limit without a token: 401 (%d)", code);
		free(body);
		code = http("POST", "/admin/reload", "Bearer nope", &body);
		TH_CHECK(code == 401 && body && strstr(body, "wrong token"),
			 "POST /admin/reload with a wrong token: 401 (%d)",
			 code);
		free(body);
		snprintf(wrong, sizeof wrong, "%s.wrong", token_path);
		f0 = fopen(wrong, "w");
		TH_REQUIRE(f0 != NULL, "write %s", wrong);
		fputs("0123456789abcdef\n", f0);
		fclose(f0);
		TH_CHECK(th_tessera(&srv,
				    "limit get --gateway 127.0.0.1:%d "
				    "--token-file %s",
				    http_port, wrong) != 0,
			 "tessera limit with a wrong token fails");
		unlink(wrong);
	}

	/* tessera limit set, at run time; the token file named by
	 * tessera.conf */
	TH_CHECK(th_tessera(&srv,
			    "-c %s limit set client_meta_read_rate 5 "
			    "--gateway 127.0.0.1:%d",
			    conf_path, http_port) == 0 &&
			 tool("limit get client_meta_read_rate") == 0 &&
			 strcmp(tool_out, "5\n") == 0,
		 "tessera limit set client_meta_read_rate 5, get says 5");
	r0 = refused("read");
	f = flood_getattr(&a, FLOOD);
	TH_CHECK(f.jukebox >= 1 && f.other == 0 &&
			 refused("read") - r0 == f.jukebox,
		 "set at run time: A gets JUKEBOX again (%d)", f.jukebox);
	TH_CHECK(tool("limit set client_meta_read_rate 0") == 0 &&
			 tool("limit set export_meta_read_rate 5") == 0 &&
			 tool("limit set export_meta_read_burst 5") == 0,
		 "tessera limit set: client limit off, export limit 5/s");
	/* A's flood leaves the export's bucket empty: B's 5 calls, sent
	 * right after, wait (or are refused) */
	r0 = refused("read");
	f = flood_getattr(&a, FLOOD);
	d0 = delayed("read");
	g = flood_getattr(&b, 5);
	th_diag("export limit: A %d OK %d JUKEBOX; B %d OK %d JUKEBOX, "
		"%lld waited",
		f.ok, f.jukebox, g.ok, g.jukebox, delayed("read") - d0);
	TH_CHECK(f.jukebox >= 1 && g.other == 0 &&
			 g.jukebox + (delayed("read") - d0) >= 1 &&
			 refused("read") - r0 == f.jukebox + g.jukebox,
		 "an export limit holds back every client of the export");
	TH_CHECK(tool("limit set upload_limit 3M") == 0 &&
			 tool("limit get upload_limit") == 0 &&
			 strcmp(tool_out, "3145728\n") == 0,
		 "tessera limit set upload_limit 3M: 3145728");
	TH_CHECK(tool("limit set store_wait_max 10s") == 0 &&
			 tool("limit get store_wait_max") == 0 &&
			 strcmp(tool_out, "10000ms\n") == 0,
		 "tessera limit set store_wait_max 10s: 10000ms");
	TH_CHECK(tool("limit set no_such_limit 1") != 0 &&
			 tool("limit set client_meta_read_rate lots") != 0,
		 "an unknown limit or a bad value is refused");

	/* tessera config reload */
	write_conf("client_meta_read_rate = 7\n");
	TH_CHECK(tool("config reload") == 0 &&
			 tool("limit get client_meta_read_rate") == 0 &&
			 strcmp(tool_out, "7\n") == 0 &&
			 tool("limit get export_meta_read_rate") == 0 &&
			 strcmp(tool_out, "0\n") == 0 &&
			 tool("limit get upload_limit") == 0 &&
			 strcmp(tool_out, "0\n") == 0,
		 "tessera config reload: tessera.conf's limits in force");
	write_conf("client_meta_read_rate = many\n");
	TH_CHECK(tool("config reload") != 0 &&
			 tool("limit get client_meta_read_rate") == 0 &&
			 strcmp(tool_out, "7\n") == 0,
		 "a reload of a bad tessera.conf fails and changes nothing");

	/* a rule of the exports sets its clients' limit: B (127.0.0.2)
	 * 2/s, A (the rest of 127.0.0.0/8) none */
	write_conf("");
	TH_REQUIRE(th_server_set_exports(
			   &srv,
			   "/ 127.0.0.2(rw,no_root_squash,insecure,"
			   "meta_read_rate=2) "
			   "127.0.0.0/8(rw,no_root_squash,insecure)\n") == 0,
		   "exports: meta_read_rate=2 for 127.0.0.2");
	TH_CHECK(tool("config reload") == 0, "tessera config reload");
	r0 = refused("read");
	f = flood_getattr(&a, FLOOD);
	g = flood_getattr(&b, FLOOD);
	th_diag("rule limit: A %d OK %d JUKEBOX; B %d OK %d JUKEBOX", f.ok,
		f.jukebox, g.ok, g.jukebox);
	TH_CHECK(f.ok == FLOOD, "A, no limit in its rule: %d of %d OK", f.ok,
		 FLOOD);
	TH_CHECK(g.jukebox >= 1 && g.other == 0 &&
			 refused("read") - r0 == g.jukebox,
		 "B, meta_read_rate=2 in its rule: JUKEBOX (%d)", g.jukebox);

	/* 40 addresses, limit_clients 16: the table stays at 16 */
	write_conf("client_meta_read_rate = 100\nlimit_clients = 16\n");
	th_server_set_args(&srv, args);
	th_disconnect(&a);
	th_disconnect(&b);
	from = th_server_log_size(&srv);
	TH_REQUIRE(th_server_restart(&srv, false) == 0,
		   "restarted with limit_clients 16");
	T_WAIT((http_port = th_server_metrics_port(&srv, from)) > 0);
	TH_REQUIRE(http_port > 0, "metrics port %d", http_port);
	{
		int served = 0;

		for (int i = 0; i < 40; i++) {
			struct th_conn x;
			char who[32];

			snprintf(who, sizeof who, "127.0.1.%d", i + 1);
			if (connect_from(&x, who) == 0 &&
			    th_getattr(&x, &x.root, NULL) == NFS3_OK)
				served++;
			th_disconnect(&x);
		}
		TH_CHECK(served == 40, "40 client addresses served (%d)",
			 served);
	}
	TH_CHECK(metric("tessera_limit_clients ") == 16 &&
			 metric("tessera_limit_clients_reused_total ") >= 24,
		 "client table bounded: %lld entries, %lld reused",
		 metric("tessera_limit_clients "),
		 metric("tessera_limit_clients_reused_total "));
	TH_REQUIRE(connect_from(&a, "127.0.0.1") == 0, "A reconnects");
	TH_REQUIRE(connect_from(&b, "127.0.0.2") == 0, "B reconnects");

	th_disconnect(&a);
	th_disconnect(&b);
	th_server_destroy(&srv);
	unlink(conf_path);
	unlink(token_path);
	rmdir(dir);
	return th_done();
}
