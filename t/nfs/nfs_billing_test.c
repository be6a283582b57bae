/*
 * nfs_billing_test.c - the billing lines (tessera(1), BILLING) of a
 * gateway holding the background-job lease, to the byte: a volume with
 * a trash, billing_interval 1s, billing_dirs /t, a quota on /q; through
 * NFS the test writes three files of known sizes in /t, reads one,
 * removes one (into the trash) and truncates one to 0, and writes two
 * in /q and removes one, while the store refuses every delete (the
 * fault wrapper: the deletion job cannot delete, so the released bytes
 * stay pending).  A line written after all that must show every figure
 * exactly: logical, used, stored, trash and pending bytes and inodes
 * for the volume and the export "/"; logical, used and trash bytes and
 * inodes for /t (which got a quota without limits) and /q, whose stored
 * and pending bytes and NFS bytes are null (tessera(1), BILLING); and
 * the lines of every period together the bytes read and written.  The
 * same figures are gauges on /metrics.  Then the store deletes again,
 * and a later line shows nothing pending and the stored bytes down by
 * the truncated file's.  `tessera quota check` and fsck find the
 * counters right.
 *
 * The waits are for a line to appear, never for a time to pass.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "t/nfs/tharness.h"
#include "t/nfs/thbill.h"

#define A_SIZE 100000u
#define B_SIZE 50000u
#define C_SIZE 30000u
#define D_SIZE 20000u
#define E_SIZE 7000u
#define R4K(x) (((x) + 4095u) & ~4095u)

static struct th_server srv;
static struct th_conn cn;
static char billdir[300], ctl[300];
static int http_port;
static uint8_t data[A_SIZE], rbuf[A_SIZE];

/* ---- the lines ------------------------------------------------------------ */

static void
lines_read(struct thb_lines *l)
{
	thb_lines_free(l);
	thb_lines_add(l, billdir);
}

/* The volume line of a period ending after unix time after; its index
 * (-1: none yet). */
static int
line_after(const struct thb_lines *l, long long after)
{
	for (size_t i = 0; i < l->n; i++)
		if (thb_is(l->v[i], "volume", NULL) &&
		    thb_field(l->v[i], "unix") > after)
			return (int)i;
	return -1;
}

/* Wait for the volume line of a period ending after after; the lines
 * read are in *l, the index returned. */
static int
wait_line(struct thb_lines *l, long long after)
{
	int i;

	for (int tries = 0; tries < TH_STALL_MS / 100; tries++) {
		lines_read(l);
		if ((i = line_after(l, after)) >= 0)
			return i;
		usleep(100000);
	}
	return -1;
}

/* The line of scope and path of the same period as volume line at. */
static const char *
line_of(const struct thb_lines *l, int at, const char *scope, const char *path)
{
	long long t = thb_field(l->v[at], "unix");

	for (size_t i = 0; i < l->n; i++)
		if (thb_field(l->v[i], "unix") == t &&
		    thb_is(l->v[i], scope, path))
			return l->v[i];
	return NULL;
}

/* ---- HTTP ----------------------------------------------------------------- */

static char *
scrape(void)
{
	struct sockaddr_in sin;
	static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
	char *buf = NULL, *p;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	th_loopback(&sin, http_port);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
	    write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	for (;;) {
		if (len + 4097 > cap) {
			cap = cap ? 2 * cap : 65536;
			buf = realloc(buf, cap);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	p = strstr(buf, "\r\n\r\n");
	p = p ? strdup(p + 4) : NULL;
	free(buf);
	return p;
}

/* ---- NFS ------------------------------------------------------------------ */

static struct th_fh
mkfile(const struct th_fh *dir, const char *name, uint32_t size)
{
	sattr3 sa = th_sattr_mode(0644);
	struct th_obj o;
	WRITE3res w;

	TH_REQUIRE(th_create(&cn, dir, name, GUARDED, &sa, NULL, &o) == 0 &&
			   o.fh_follows,
		   "create %s", name);
	TH_REQUIRE(th_write(&cn, &o.fh, 0, data, size, FILE_SYNC, &w) == 0 &&
			   w.WRITE3res_u.resok.count == size,
		   "write %u bytes to %s", size, name);
	return o.fh;
}

static void
check_line(const char *l, const char *what, long long logical, long long used,
	   long long stored, long long inodes, long long trash,
	   long long pending)
{
	TH_REQUIRE(l != NULL, "%s: a line", what);
	TH_CHECK(thb_field(l, "logical_bytes") == logical,
		 "%s: logical_bytes %lld (%lld)", what, logical,
		 thb_field(l, "logical_bytes"));
	TH_CHECK(thb_field(l, "used_bytes") == used,
		 "%s: used_bytes %lld (%lld)", what, used,
		 thb_field(l, "used_bytes"));
	TH_CHECK(thb_field(l, "stored_bytes") == stored,
		 "%s: stored_bytes %lld (%lld)", what, stored,
		 thb_field(l, "stored_bytes"));
	TH_CHECK(thb_field(l, "inodes") == inodes, "%s: inodes %lld (%lld)",
		 what, inodes, thb_field(l, "inodes"));
	TH_CHECK(thb_field(l, "trash_bytes") == trash,
		 "%s: trash_bytes %lld (%lld)", what, trash,
		 thb_field(l, "trash_bytes"));
	TH_CHECK(thb_field(l, "pending_bytes") == pending,
		 "%s: pending_bytes %lld (%lld)", what, pending,
		 thb_field(l, "pending_bytes"));
}

int
main(void)
{
	struct thb_lines l = {NULL, 0};
	struct th_fh t, a, c, q;
	struct th_obj o;
	sattr3 sa;
	long long done, rd, wr, erd, ewr, upto;
	char args[900], when[32], *m;
	long logsize;
	uint32_t got;
	bool eof;
	int at;
	/* format: root, then /t, a, b, c, /.trash and its hour, /q, d, e */
	const long long inodes = 10;
	const long long stored = A_SIZE + B_SIZE + C_SIZE + D_SIZE + E_SIZE;
	const long long used =
		R4K(A_SIZE) + R4K(B_SIZE) + R4K(D_SIZE) + R4K(E_SIZE);

	th_fill(11, data, sizeof data);
	TH_REQUIRE(th_server_start(&srv, "--block-size 64K --trash-days 1",
				   NULL) == 0,
		   "start tesserad");
	snprintf(billdir, sizeof billdir, "%s/billing", srv.dir);
	TH_REQUIRE(mkdir(billdir, 0700) == 0, "billing dir");
	/* the deletion job runs, and fails: released bytes stay pending */
	th_server_fault_store(&srv, "ops=del err=1", ctl, sizeof ctl);
	/* inline_max 0: every byte goes to the store (inline slices, in
	 * the metadata, are not stored bytes) */
	snprintf(args, sizeof args,
		 "-o billing_dir=%s -o billing_interval=1s "
		 "-o billing_dirs=/t -o inline_max=0 "
		 "--metrics-listen 127.0.0.1:0",
		 billdir);
	th_server_set_args(&srv, args);
	logsize = th_server_log_size(&srv);
	TH_REQUIRE(th_server_restart(&srv, false) == 0, "restart");
	for (int i = 0; i < TH_STALL_MS / 100 && http_port == 0; i++)
		if ((http_port = th_server_metrics_port(&srv, logsize)) == 0)
			usleep(100000);
	TH_REQUIRE(http_port > 0, "the metrics port is logged");
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0, "connect");

	sa = th_sattr_mode(0755);
	TH_REQUIRE(th_mkdir(&cn, &cn.root, "t", &sa, &o) == 0 && o.fh_follows,
		   "mkdir /t");
	t = o.fh;
	sa = th_sattr_mode(0755);
	TH_REQUIRE(th_mkdir(&cn, &cn.root, "q", &sa, &o) == 0 && o.fh_follows,
		   "mkdir /q");
	q = o.fh;
	TH_REQUIRE(th_tessera(&srv, "quota set %s /q --bytes 1M",
			      srv.meta_url) == 0,
		   "tessera quota set /q");
	/* billing_dirs: /t gets its quota when a line is written; what is
	 * removed from under it before counts in no trash bytes of it */
	for (done = (long long)time(NULL);;) {
		TH_REQUIRE((at = wait_line(&l, done)) >= 0, "a line");
		if (line_of(&l, at, "dir", "/t") != NULL)
			break;
		done = thb_field(l.v[at], "unix");
	}
	a = mkfile(&t, "a", A_SIZE);
	(void)mkfile(&t, "b", B_SIZE);
	c = mkfile(&t, "c", C_SIZE);
	TH_CHECK(th_read(&cn, &a, 0, A_SIZE, rbuf, &got, &eof) == 0 &&
			 got == A_SIZE && memcmp(rbuf, data, A_SIZE) == 0,
		 "read a whole");
	TH_STAT(th_remove(&cn, &t, "b"), 0, "remove b: into the trash");
	sa = th_sattr_none();
	sa.size.set_it = 1;
	sa.size.set_size3_u.size = 0;
	TH_STAT(th_setattr(&cn, &c, &sa, NULL, NULL), 0, "truncate c to 0");
	(void)mkfile(&q, "d", D_SIZE);
	(void)mkfile(&q, "e", E_SIZE);
	TH_STAT(th_remove(&cn, &q, "e"), 0, "remove q/e: into the trash");
	done = (long long)time(NULL);

	at = wait_line(&l, done);
	TH_REQUIRE(at >= 0, "a line of a period ending after the operations");
	thb_sfield(l.v[at], "time", when, sizeof when);
	TH_CHECK(strlen(when) == 20 && when[10] == 'T' && when[19] == 'Z',
		 "time in RFC 3339 UTC (%s)", when);
	TH_CHECK(thb_field(l.v[at], "period_seconds") >= 1, "a period (%lld s)",
		 thb_field(l.v[at], "period_seconds"));
	check_line(l.v[at], "volume", A_SIZE + D_SIZE, used, stored, inodes,
		   B_SIZE + E_SIZE, C_SIZE);
	check_line(line_of(&l, at, "export", "/"), "export /", A_SIZE + D_SIZE,
		   used, stored, inodes, B_SIZE + E_SIZE, C_SIZE);
	/* the trash's files count in the used bytes of the volume only */
	check_line(line_of(&l, at, "dir", "/t"), "dir /t", A_SIZE, R4K(A_SIZE),
		   -1, 2, B_SIZE, -1);
	check_line(line_of(&l, at, "dir", "/q"), "dir /q", D_SIZE, R4K(D_SIZE),
		   -1, 1, E_SIZE, -1);
	TH_CHECK(thb_field(line_of(&l, at, "dir", "/t"), "read_bytes") == -1 &&
			 thb_field(line_of(&l, at, "dir", "/q"),
				   "written_bytes") == -1,
		 "dirs: NFS bytes are counted per export, not per directory");
	/* every period's NFS bytes, up to this one, add up */
	upto = thb_field(l.v[at], "unix");
	rd = thb_sum(&l, "volume", NULL, "read_bytes", upto);
	wr = thb_sum(&l, "volume", NULL, "written_bytes", upto);
	erd = thb_sum(&l, "export", "/", "read_bytes", upto);
	ewr = thb_sum(&l, "export", "/", "written_bytes", upto);
	TH_CHECK(rd == A_SIZE && erd == A_SIZE,
		 "read bytes %lld, export / "
		 "%lld (%u)",
		 rd, erd, A_SIZE);
	TH_CHECK(wr == stored && ewr == wr,
		 "written bytes %lld, export / %lld (%lld)", wr, ewr, stored);

	m = scrape();
	TH_REQUIRE(m != NULL, "GET /metrics");
	TH_CHECK(th_sample(m,
			   "tessera_billing_logical_bytes{volume=\"tvol\"}") ==
			 A_SIZE + D_SIZE,
		 "gauge: logical bytes");
	TH_CHECK(th_sample(m, "tessera_billing_trash_bytes{volume=\"tvol\","
			      "export=\"/\"}") == B_SIZE + E_SIZE,
		 "gauge: trash bytes of export /");
	TH_CHECK(th_sample(m, "tessera_billing_trash_bytes{volume=\"tvol\","
			      "dir=\"/q\"}") == E_SIZE,
		 "gauge: trash bytes of /q");
	TH_CHECK(th_sample(m, "tessera_billing_logical_bytes{volume=\"tvol\","
			      "dir=\"/t\"}") == A_SIZE,
		 "gauge: logical bytes of /t");
	TH_CHECK(th_sample(m,
			   "tessera_billing_pending_bytes{volume=\"tvol\"}") ==
			 C_SIZE,
		 "gauge: pending bytes");
	TH_CHECK(th_sample(m, "tessera_billing_used_bytes{volume=\"tvol\","
			      "dir=\"/t\"}") == R4K(A_SIZE),
		 "gauge: used bytes of /t");
	TH_CHECK(th_sample(m, "tessera_volume_stored_bytes{volume=\"tvol\"}") ==
			 stored,
		 "volume gauge: stored bytes");
	TH_CHECK(th_sample(m, "tessera_volume_trash_logical_bytes{volume="
			      "\"tvol\"}") == B_SIZE + E_SIZE,
		 "volume gauge: trash bytes");
	TH_CHECK(
		th_sample(m,
			  "tessera_export_written_bytes_total{export=\"/\"}") ==
			stored,
		"this gateway's written bytes");
	free(m);

	/* the store deletes again: nothing pending, c's bytes gone */
	th_store_faults(ctl, NULL);
	for (int tries = 0; tries < TH_STALL_MS / 100; tries++) {
		done = (long long)time(NULL);
		at = wait_line(&l, done);
		if (at < 0 || thb_field(l.v[at], "pending_bytes") == 0)
			break;
		usleep(100000);
	}
	TH_REQUIRE(at >= 0, "a later line");
	check_line(l.v[at], "volume, deleted", A_SIZE + D_SIZE, used,
		   stored - C_SIZE, inodes, B_SIZE + E_SIZE, 0);
	check_line(line_of(&l, at, "dir", "/q"), "dir /q, deleted", D_SIZE,
		   R4K(D_SIZE), -1, 1, E_SIZE, -1);
	thb_lines_free(&l);
	TH_CHECK(th_tessera(&srv, "quota check %s --dry-run", srv.meta_url) ==
			 0,
		 "tessera quota check: no drift");

	th_disconnect(&cn);
	th_server_stop(&srv, false);
	TH_CHECK(th_server_fsck(&srv) == 0, "fsck: the usage counters agree");
	th_server_destroy(&srv);
	return th_done();
}
