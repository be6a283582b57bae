/*
 * nfs_limits_test.c - request_memory and max_connections bound what they
 * say against a real tesserad, while a well-behaved libnfs client is
 * served throughout (GETATTR, a small WRITE and READ at each step):
 *
 *   200 connections each announcing a 4 MiB record and sending 1 MiB of
 *   it, then nothing (request_memory=16M): the daemon's anonymous memory
 *   grows by at most BOUND, not by the 200 MiB it was sent;
 *
 *   16 connections pipelining READDIRPLUS calls without reading a reply:
 *   the unsent replies are bounded as well;
 *
 *   one host holding all max_connections (32) connections, each kept
 *   alive by a NULL call: a new client gets in (the longest-idle
 *   connection is closed for it) and is served.
 *
 * Memory is RssAnon from /proc/PID/status of the daemon, sampled while
 * the patterns run; the sanitizer build runs every pattern but does not
 * assert the bound (ASan's quarantine keeps freed memory resident).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "t/nfs/tharness.h"

#define MEM_LIMIT (16ull << 20)
#define BOUND     (3 * MEM_LIMIT) /* growth allowed: 48 MiB */
#define NPARTIAL  200
#define NPIPE     16
#define NENTRIES  1000
#define MAX_CONNS 32

static struct th_server srv;
static struct th_conn cn;
static struct th_fh file; /* the well-behaved client's */
static uint64_t rss0, peak;

static void
sample(void)
{
	uint64_t m = th_server_mem(&srv, "RssAnon");

	if (m > peak)
		peak = m;
}

/* The well-behaved client does a little of everything. */
static void
served(const char *when)
{
	static uint32_t round;
	uint8_t buf[4096], back[4096];
	uint32_t got = 0;
	fattr3 a;
	int st;

	th_fill(++round, buf, sizeof buf);
	st = th_getattr(&cn, &cn.root, &a);
	TH_STAT(st, NFS3_OK, "%s: GETATTR", when);
	st = th_write(&cn, &file, 0, buf, sizeof buf, FILE_SYNC, NULL);
	TH_STAT(st, NFS3_OK, "%s: WRITE 4 KiB", when);
	st = th_read(&cn, &file, 0, sizeof back, back, &got, NULL);
	TH_CHECK(st == NFS3_OK && got == sizeof back &&
			 memcmp(buf, back, sizeof buf) == 0,
		 "%s: READ it back (%s)", when, th_stat_name(st));
	sample();
}

static void
check_bound(const char *what)
{
	th_diag("%s: RssAnon before %llu KiB, peak %llu KiB", what,
		(unsigned long long)(rss0 >> 10),
		(unsigned long long)(peak >> 10));
#ifdef TESSERA_SANITIZERS
	th_diag("sanitizer build: the memory bound is not asserted");
#else
	TH_CHECK(peak > 0 && peak <= rss0 + BOUND,
		 "%s: the daemon grew by %lld KiB, at most %llu KiB", what,
		 (long long)(peak - rss0) / 1024,
		 (unsigned long long)(BOUND >> 10));
#endif
}

/* A connection to the daemon, non-blocking once connected. */
static int
dial(void)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	th_loopback(&sin, srv.port);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
		close(fd);
		return -1;
	}
	if (fd >= 0)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* Write what the socket takes of [p, p+n) now; the bytes written. */
static size_t
push(int fd, const uint8_t *p, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t w = send(fd, p + done, n - done, MSG_NOSIGNAL);

		if (w <= 0)
			break;
		done += (size_t)w;
	}
	return done;
}

static void
put32(uint8_t **p, uint32_t v)
{
	v = htonl(v);
	memcpy(*p, &v, 4);
	*p += 4;
}

/* A record-marked NFSv3 or MOUNTv3 call (AUTH_SYS root) with args into
 * buf; its length. */
static size_t
call(uint8_t *buf, uint32_t xid, uint32_t prog, uint32_t proc,
     const uint8_t *args, size_t alen)
{
	static const uint32_t cred[] = {1, 20, 0, 0, 0, 0, 0, 0, 0};
	uint8_t *p = buf + 4, *m = buf;
	size_t len;

	put32(&p, xid);
	put32(&p, 0); /* CALL */
	put32(&p, 2);
	put32(&p, prog);
	put32(&p, 3);
	put32(&p, proc);
	/* AUTH_SYS: stamp, "", uid 0, gid 0, no groups; AUTH_NONE verifier */
	for (size_t i = 0; i < sizeof cred / sizeof *cred; i++)
		put32(&p, cred[i]);
	if (alen > 0)
		memcpy(p, args, alen);
	p += alen;
	len = (size_t)(p - buf);
	put32(&m, 0x80000000u | (uint32_t)(len - 4));
	return len;
}

/* ---- the patterns ----------------------------------------------------- */

static void
partial_records(void)
{
	static int fds[NPARTIAL];
	uint8_t *junk = calloc(1, 1 << 20), mark[4];
	size_t sent = 0;
	int opened = 0;

	peak = 0;
	rss0 = th_server_mem(&srv, "RssAnon");
	/* a record of 4 MiB (max_record_size) announced, 1 MiB sent */
	mark[0] = 0x80;
	mark[1] = 0x3f;
	mark[2] = 0xff;
	mark[3] = 0xf0;
	for (int i = 0; i < NPARTIAL; i++) {
		fds[i] = dial();
		if (fds[i] < 0)
			continue;
		opened++;
		if (push(fds[i], mark, 4) == 4)
			sent += push(fds[i], junk, 1 << 20);
		if (i % 20 == 0)
			sample();
	}
	th_diag("%d connections hold partial records (%zu MiB sent)", opened,
		sent >> 20);
	for (int i = 0; i < 3; i++) {
		served("partial records held");
		usleep(500000);
	}
	/* the daemon may close the stalled ones while others wait; what
	 * is still to come from them fits as well */
	for (int i = 0; i < NPARTIAL; i++)
		if (fds[i] >= 0)
			push(fds[i], junk, 1 << 20);
	for (int i = 0; i < 4; i++) {
		served("more partial records sent");
		usleep(500000);
	}
	check_bound("200 partial 4 MiB records");
	for (int i = 0; i < NPARTIAL; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(junk);
}

static void
pipelined_readdirplus(const struct th_fh *dir)
{
	enum { CALLS = 2000 };
	static int fds[NPIPE];
	uint8_t args[256], *p = args, *all, *q;
	size_t one, total = 0;

	peak = 0;
	rss0 = th_server_mem(&srv, "RssAnon");
	put32(&p, dir->len);
	memcpy(p, dir->data, dir->len);
	p += (dir->len + 3) / 4 * 4;
	memset(p, 0, 16); /* cookie, cookie verifier */
	p += 16;
	put32(&p, 8192);    /* dircount */
	put32(&p, 1 << 20); /* maxcount */
	one = 4 + 24 + 36 + (size_t)(p - args);
	all = malloc(one * CALLS);
	for (uint32_t i = 0; i < CALLS; i++) {
		q = all + i * one;
		call(q, 0x5000 + i, 100003, 17, args, (size_t)(p - args));
	}
	for (int i = 0; i < NPIPE; i++) {
		fds[i] = dial();
		if (fds[i] >= 0)
			total += push(fds[i], all, one * CALLS);
	}
	th_diag("%d connections sent %zu READDIRPLUS calls, reading no reply",
		NPIPE, total / one);
	for (int i = 0; i < 10; i++) {
		served("replies unread");
		usleep(500000);
	}
	check_bound("16 connections not reading READDIRPLUS replies");
	for (int i = 0; i < NPIPE; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(all);
}

static void
held_connections(void)
{
	static int fds[MAX_CONNS];
	uint8_t msg[128], reply[256];
	size_t len = call(msg, 7, 100003, 0, NULL, 0);
	int alive = 0, lost = 0, st;

	peak = 0;
	rss0 = th_server_mem(&srv, "RssAnon");
	for (int i = 0; i < MAX_CONNS; i++) {
		struct pollfd pf;

		fds[i] = dial();
		pf.fd = fds[i];
		pf.events = POLLIN;
		if (fds[i] >= 0 && push(fds[i], msg, len) == len &&
		    poll(&pf, 1, 20000) == 1 &&
		    recv(fds[i], reply, sizeof reply, 0) > 0)
			alive++;
	}
	TH_CHECK(alive == MAX_CONNS,
		 "one host holds all %d connections, each answered a NULL",
		 alive);
	st = th_connect(&cn, srv.port, "/", 0, 0);
	TH_STAT(st, 0, "a new client mounts with every connection taken");
	if (st == 0)
		served("after max_connections");
	for (int i = 0; i < MAX_CONNS; i++) {
		struct pollfd pf = {fds[i], POLLIN, 0};
		ssize_t n = -1;

		if (push(fds[i], msg, len) == len && poll(&pf, 1, 20000) == 1)
			n = recv(fds[i], reply, sizeof reply, 0);
		lost += n <= 0;
		close(fds[i]);
	}
	TH_CHECK(lost == 1,
		 "the longest-idle connection was closed for it (%d were)",
		 lost);
	check_bound("max_connections held by one host");
}

static void
mount_and_make_file(void)
{
	struct th_obj o;
	int st;

	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0, "MOUNT /");
	st = th_create(&cn, &cn.root, "mine", UNCHECKED, NULL, NULL, &o);
	TH_REQUIRE(st == NFS3_OK && o.fh_follows, "CREATE mine");
	file = o.fh;
}

int
main(void)
{
	char args[128];
	struct th_obj o;
	struct th_fh dir;
	uint64_t failed = 0;
	int st;

	TH_REQUIRE(th_server_start(&srv, NULL, NULL) == 0, "tesserad started");
	snprintf(args, sizeof args, "-o request_memory=%lluM -o idle_timeout=0",
		 (unsigned long long)(MEM_LIMIT >> 20));
	th_server_set_args(&srv, args);
	TH_REQUIRE(th_server_restart(&srv, false) == 0,
		   "restart with request_memory=16M");
	mount_and_make_file();
	st = th_mkdir(&cn, &cn.root, "big", NULL, &o);
	TH_REQUIRE(st == NFS3_OK, "MKDIR big");
	dir = o.fh;
	st = th_bulk_create(&cn, &dir, "entry-with-a-longish-name-", 6, 0,
			    NENTRIES, 32, &failed);
	TH_REQUIRE(st == NFS3_OK && failed == 0, "%d entries created",
		   NENTRIES);
	served("before");

	partial_records();
	pipelined_readdirplus(&dir);
	served("after");

	th_disconnect(&cn);
	snprintf(args, sizeof args,
		 "-o request_memory=%lluM -o idle_timeout=0 "
		 "-o max_connections=%d",
		 (unsigned long long)(MEM_LIMIT >> 20), MAX_CONNS);
	th_server_set_args(&srv, args);
	TH_REQUIRE(th_server_restart(&srv, false) == 0,
		   "restart with max_connections=%d", MAX_CONNS);
	held_connections();
	th_disconnect(&cn);
	return th_done();
}
