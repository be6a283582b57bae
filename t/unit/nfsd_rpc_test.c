/*
 * nfsd_rpc_test - the RPC transport and call dispatch through a real
 * server on 127.0.0.1 (no volume: meta NULL) and raw TCP: record
 * marking (fragments, pipelining beyond the in-flight cap, oversized
 * records close the connection, request_memory and its accounting back
 * to zero, max_connections closing the longest-idle connection,
 * idle_timeout), RPC_MISMATCH, PROG_UNAVAIL,
 * PROG_MISMATCH ranges, PROC_UNAVAIL, GARBAGE_ARGS, AUTH_ERROR, and
 * MOUNT EXPORT/DUMP replies decoded with the rpcgen routines.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nfsd/counters-internal.h"
#include "nfsd/mount3_prot.h"
#include "nfsd/nfsd.h"
#include "nfsd/rpc-internal.h"
#include "nfsd/server-internal.h"
#include "t/unit/tap.h"

static void *
serve(void *arg)
{
	nfsd_server_run(arg, false);
	return NULL;
}

/* A server on 127.0.0.1 with the given limits, run by thread *t. */
static struct nfsd_server *
start(pthread_t *t, uint64_t inflight, uint64_t mem, uint64_t conns,
      uint64_t idle_ms)
{
	struct nfsd_config cfg;
	struct nfsd_server *s = NULL;
	char *err = NULL;
	int rc;

	nfsd_config_defaults(&cfg);
	free(cfg.listen);
	cfg.listen = tl_strdup("127.0.0.1:0");
	cfg.workers = 4;
	cfg.max_inflight_per_conn = inflight;
	cfg.max_record_size = 3u << 19; /* 1.5 MiB */
	cfg.request_memory = mem;
	cfg.max_connections = conns;
	cfg.idle_timeout = idle_ms;
	rc = nfsd_server_create(&cfg, NULL, NULL, &s, &err);
	CHECK_FATAL(rc == 0, "server starts (%s)", err ? err : "");
	CHECK(nfsd_server_port(s) != 0, "port 0 picks a port");
	pthread_create(t, NULL, serve, s);
	nfsd_config_free(&cfg);
	free(err);
	return s;
}

static void
stop(struct nfsd_server *s, pthread_t t)
{
	nfsd_server_stop(s);
	pthread_join(t, NULL);
	nfsd_server_free(s);
}

static int
dial(unsigned port)
{
	struct sockaddr_in sa;
	struct timeval tv = {60, 0};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* header and body go in two writes: no Nagle wait between them */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
send_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = write(fd, b, n);

		if (w <= 0)
			return;
		b += w;
		n -= (size_t)w;
	}
}

static bool
recv_all(int fd, void *p, size_t n)
{
	uint8_t *b = p;

	while (n > 0) {
		ssize_t r = read(fd, b, n);

		if (r <= 0)
			return false;
		b += r;
		n -= (size_t)r;
	}
	return true;
}

/* One reply record, fragments joined; len 0 on EOF. */
static void
recv_record(int fd, struct tl_buf *b)
{
	uint8_t hdr[4];
	uint32_t mark;

	tl_buf_reset(b);
	do {
		if (!recv_all(fd, hdr, 4)) {
			tl_buf_reset(b);
			return;
		}
		mark = tl_get_be32(hdr);
		tl_buf_reserve(b, mark & 0x7fffffff);
		if (!recv_all(fd, b->data + b->len, mark & 0x7fffffff)) {
			tl_buf_reset(b);
			return;
		}
		b->len += mark & 0x7fffffff;
	} while (!(mark & 0x80000000u));
}

/* A call message (no record mark) with an AUTH_NONE or custom cred. */
static void
call_msg(struct tl_buf *b, uint32_t xid, uint32_t rpcvers, uint32_t prog,
	 uint32_t vers, uint32_t proc, uint32_t flavor,
	 const struct tl_buf *cred)
{
	tl_buf_reset(b);
	tl_buf_append_be32(b, xid);
	tl_buf_append_be32(b, 0);
	tl_buf_append_be32(b, rpcvers);
	tl_buf_append_be32(b, prog);
	tl_buf_append_be32(b, vers);
	tl_buf_append_be32(b, proc);
	tl_buf_append_be32(b, flavor);
	tl_buf_append_be32(b, cred ? (uint32_t)cred->len : 0);
	if (cred)
		tl_buf_append(b, cred->data, cred->len);
	tl_buf_append_be32(b, 0);
	tl_buf_append_be32(b, 0);
}

static void
send_record(int fd, const struct tl_buf *m)
{
	uint8_t hdr[4];

	tl_put_be32(hdr, 0x80000000u | (uint32_t)m->len);
	send_all(fd, hdr, 4);
	send_all(fd, m->data, m->len);
}

static uint32_t
word(const struct tl_buf *r, size_t i)
{
	return r->len >= 4 * (i + 1) ? tl_get_be32(r->data + 4 * i)
				     : 0xffffffffu;
}

/* Call and return the reply record in r. */
static void
rpc(int fd, struct tl_buf *r, uint32_t xid, uint32_t rpcvers, uint32_t prog,
    uint32_t vers, uint32_t proc, const void *args, size_t alen)
{
	struct tl_buf m = TL_BUF_INIT;

	call_msg(&m, xid, rpcvers, prog, vers, proc, AUTH_NONE, NULL);
	tl_buf_append(&m, args, alen);
	send_record(fd, &m);
	tl_buf_free(&m);
	recv_record(fd, r);
}

static void
test_errors(int fd)
{
	struct tl_buf r = TL_BUF_INIT, m = TL_BUF_INIT, cred = TL_BUF_INIT;
	uint8_t args[8];

	rpc(fd, &r, 1, 2, NFSD_PROG_NFS, 3, 0, NULL, 0);
	CHECK(r.len == 24 && word(&r, 0) == 1 && word(&r, 1) == 1 &&
		      word(&r, 2) == MSG_ACCEPTED && word(&r, 3) == AUTH_NONE &&
		      word(&r, 4) == 0 && word(&r, 5) == SUCCESS,
	      "NFS NULL: accepted, AUTH_NONE verifier, SUCCESS, no body");
	rpc(fd, &r, 2, 3, NFSD_PROG_NFS, 3, 0, NULL, 0);
	CHECK(word(&r, 2) == MSG_DENIED && word(&r, 3) == RPC_MISMATCH &&
		      word(&r, 4) == 2 && word(&r, 5) == 2,
	      "RPC version 3: RPC_MISMATCH 2..2");
	rpc(fd, &r, 3, 2, 100099, 1, 0, NULL, 0);
	CHECK(word(&r, 5) == PROG_UNAVAIL, "unknown program: PROG_UNAVAIL");
	rpc(fd, &r, 4, 2, NFSD_PROG_NFS, 2, 0, NULL, 0);
	CHECK(word(&r, 5) == PROG_MISMATCH && word(&r, 6) == 3 &&
		      word(&r, 7) == 3,
	      "NFS v2: PROG_MISMATCH 3..3");
	rpc(fd, &r, 5, 2, NFSD_PROG_MOUNT, 4, 0, NULL, 0);
	CHECK(word(&r, 5) == PROG_MISMATCH && word(&r, 6) == 1 &&
		      word(&r, 7) == 3,
	      "MOUNT v4: PROG_MISMATCH 1..3");
	rpc(fd, &r, 6, 2, NFSD_PROG_NFS, 3, 99, NULL, 0);
	CHECK(word(&r, 5) == PROC_UNAVAIL, "NFS proc 99: PROC_UNAVAIL");
	rpc(fd, &r, 7, 2, NFSD_PROG_MOUNT, 1, MOUNTPROC3_MNT, NULL, 0);
	CHECK(word(&r, 5) == PROC_UNAVAIL, "MOUNT v1 MNT: PROC_UNAVAIL");
	tl_put_be32(args, 2000); /* dirpath longer than MNTPATHLEN */
	rpc(fd, &r, 8, 2, NFSD_PROG_MOUNT, 3, MOUNTPROC3_MNT, args, 4);
	CHECK(word(&r, 5) == GARBAGE_ARGS, "overlong dirpath: GARBAGE_ARGS");
	tl_put_be32(args, 0);
	rpc(fd, &r, 9, 2, NFSD_PROG_NFS, 3, 1, args, 4);
	CHECK(word(&r, 5) == SUCCESS && word(&r, 6) == NFS3ERR_SERVERFAULT,
	      "GETATTR without a volume: NFS3ERR_SERVERFAULT status");

	call_msg(&m, 10, 2, NFSD_PROG_NFS, 3, 0, 6, NULL);
	send_record(fd, &m);
	recv_record(fd, &r);
	CHECK(word(&r, 2) == MSG_DENIED && word(&r, 3) == AUTH_ERROR &&
		      word(&r, 4) == AUTH_BADCRED,
	      "RPCSEC_GSS: AUTH_ERROR AUTH_BADCRED");
	/* AUTH_SYS: stamp, machine "h", uid, gid, groups */
	for (int ng = 16; ng <= 17; ng++) {
		tl_buf_reset(&cred);
		tl_buf_append_be32(&cred, 1);
		tl_buf_append_be32(&cred, 1);
		tl_buf_append(&cred, "h\0\0\0", 4);
		tl_buf_append_be32(&cred, 1000);
		tl_buf_append_be32(&cred, 1000);
		tl_buf_append_be32(&cred, (uint32_t)ng);
		for (int i = 0; i < ng; i++)
			tl_buf_append_be32(&cred, (uint32_t)i);
		call_msg(&m, 11, 2, NFSD_PROG_NFS, 3, 0, AUTH_SYS, &cred);
		send_record(fd, &m);
		recv_record(fd, &r);
		if (ng == 16)
			CHECK(word(&r, 2) == MSG_ACCEPTED &&
				      word(&r, 5) == SUCCESS,
			      "AUTH_SYS with 16 groups accepted");
		else
			CHECK(word(&r, 3) == AUTH_ERROR &&
				      word(&r, 4) == AUTH_BADCRED,
			      "AUTH_SYS with 17 groups: AUTH_BADCRED");
	}
	tl_buf_free(&r);
	tl_buf_free(&m);
	tl_buf_free(&cred);
}

static void
test_mount_lists(int fd)
{
	struct tl_buf r = TL_BUF_INIT;
	struct mnt3_export_res ex;
	struct mnt3_dump_res du;
	XDR x;
	bool ok;

	rpc(fd, &r, 20, 2, NFSD_PROG_MOUNT, 1, MOUNTPROC3_EXPORT, NULL, 0);
	CHECK_FATAL(word(&r, 5) == SUCCESS, "EXPORT (v1) answered");
	memset(&ex, 0, sizeof(ex));
	xdrmem_create(&x, (char *)r.data + 24, r.len - 24, XDR_DECODE);
	ok = xdr_mnt3_export_res(&x, &ex);
	CHECK(ok && ex.list != NULL && strcmp(ex.list->ex_dir, "/") == 0 &&
		      ex.list->ex_next == NULL,
	      "EXPORT lists the default export /");
	CHECK(ok && ex.list && ex.list->ex_groups &&
		      strcmp(ex.list->ex_groups->gr_name, "127.0.0.1") == 0 &&
		      ex.list->ex_groups->gr_next &&
		      strcmp(ex.list->ex_groups->gr_next->gr_name, "::1") == 0,
	      "with its client patterns");
	xdr_free((xdrproc_t)xdr_mnt3_export_res, (char *)&ex);
	xdr_destroy(&x);

	rpc(fd, &r, 21, 2, NFSD_PROG_MOUNT, 3, MOUNTPROC3_DUMP, NULL, 0);
	memset(&du, 0, sizeof(du));
	xdrmem_create(&x, (char *)r.data + 24, r.len - 24, XDR_DECODE);
	CHECK(word(&r, 5) == SUCCESS && xdr_mnt3_dump_res(&x, &du) &&
		      du.list == NULL,
	      "DUMP: nothing mounted");
	xdr_free((xdrproc_t)xdr_mnt3_dump_res, (char *)&du);
	xdr_destroy(&x);
	tl_buf_free(&r);
}

static void
test_fragments(int fd)
{
	struct tl_buf m = TL_BUF_INIT, r = TL_BUF_INIT;
	uint8_t hdr[4];
	size_t cut[] = {0, 5, 17, 0};

	call_msg(&m, 30, 2, NFSD_PROG_NFS, 3, 0, AUTH_NONE, NULL);
	cut[3] = m.len;
	for (int i = 0; i < 3; i++) {
		uint32_t n = (uint32_t)(cut[i + 1] - cut[i]);

		tl_put_be32(hdr, n | (i == 2 ? 0x80000000u : 0));
		send_all(fd, hdr, 4);
		send_all(fd, m.data + cut[i], n);
		usleep(10000);
	}
	recv_record(fd, &r);
	CHECK(word(&r, 0) == 30 && word(&r, 5) == SUCCESS,
	      "a call in three fragments is answered");
	/* an empty record is ignored; the connection keeps working */
	tl_put_be32(hdr, 0x80000000u);
	send_all(fd, hdr, 4);
	rpc(fd, &r, 31, 2, NFSD_PROG_NFS, 3, 0, NULL, 0);
	CHECK(word(&r, 0) == 31, "an empty record is skipped");
	tl_buf_free(&m);
	tl_buf_free(&r);
}

static void
test_pipeline(int fd)
{
	enum { N = 300 };
	struct tl_buf all = TL_BUF_INIT, m = TL_BUF_INIT, r = TL_BUF_INIT;
	static bool seen[N];
	int got = 0, dup = 0;

	for (uint32_t i = 0; i < N; i++) {
		uint8_t hdr[4];

		call_msg(&m, 1000 + i, 2, NFSD_PROG_NFS, 3, 0, AUTH_NONE, NULL);
		tl_put_be32(hdr, 0x80000000u | (uint32_t)m.len);
		tl_buf_append(&all, hdr, 4);
		tl_buf_append(&all, m.data, m.len);
	}
	send_all(fd, all.data, all.len);
	for (int i = 0; i < N; i++) {
		uint32_t xid;

		recv_record(fd, &r);
		xid = word(&r, 0) - 1000;
		if (r.len == 0 || xid >= N)
			break;
		dup += seen[xid];
		seen[xid] = true;
		got++;
	}
	CHECK(got == N && dup == 0,
	      "%d pipelined calls, past the in-flight cap, all answered once",
	      N);
	tl_buf_free(&all);
	tl_buf_free(&m);
	tl_buf_free(&r);
}

static void
test_oversized(unsigned port)
{
	int fd = dial(port);
	uint8_t hdr[4], c;

	tl_put_be32(hdr, 0x80000000u | (3u << 20));
	send_all(fd, hdr, 4);
	CHECK(read(fd, &c, 1) == 0,
	      "a record over max_record_size closes the connection");
	close(fd);
	fd = dial(port);
	/* two fragments that are each small but together too big */
	tl_put_be32(hdr, 1u << 20);
	send_all(fd, hdr, 4);
	{
		uint8_t *junk = calloc(1, 1u << 20);

		send_all(fd, junk, 1u << 20);
		tl_put_be32(hdr, 0x80000000u | (1u << 20));
		send_all(fd, hdr, 4);
		free(junk);
	}
	CHECK(read(fd, &c, 1) == 0, "fragments summing over the cap too");
	close(fd);
}

/* Requests of 600 KB each, more than request_memory (1 MiB) together:
 * connections pause and resume, and every call is answered. */
static void
test_request_memory(unsigned port)
{
	enum { N = 8, ARGS = 600 << 10 };
	struct tl_buf m = TL_BUF_INIT, r = TL_BUF_INIT, all = TL_BUF_INIT;
	int fd = dial(port), got = 0;

	for (uint32_t i = 0; i < N; i++) {
		uint8_t hdr[4];

		call_msg(&m, 2000 + i, 2, NFSD_PROG_NFS, 3, 0, AUTH_NONE, NULL);
		tl_buf_reserve(&m, ARGS);
		memset(m.data + m.len, 0, ARGS); /* NULL ignores its args */
		m.len += ARGS;
		tl_put_be32(hdr, 0x80000000u | (uint32_t)m.len);
		tl_buf_append(&all, hdr, 4);
		tl_buf_append(&all, m.data, m.len);
	}
	send_all(fd, all.data, all.len);
	for (int i = 0; i < N; i++) {
		recv_record(fd, &r);
		if (word(&r, 5) == SUCCESS && word(&r, 0) - 2000 < N)
			got++;
	}
	CHECK_EQ(got, N, "calls beyond request_memory are all answered");
	close(fd);
	tl_buf_free(&m);
	tl_buf_free(&r);
	tl_buf_free(&all);
}

/* max_connections 1: a second connection closes the first (the longest
 * idle, as knfsd does) and is served (no idle_timeout: nothing else
 * closes either).  An idle connection is closed once idle for
 * idle_timeout: the reads wait for the close, up to dial's minute. */
static void
test_conn_limits(void)
{
	pthread_t t;
	struct nfsd_server *s = start(&t, 4, 1 << 20, 1, 0);
	struct tl_buf r = TL_BUF_INIT;
	int fd1 = dial(nfsd_server_port(s)), fd2;
	uint8_t c, hdr[4];
	bool closed = false;

	rpc(fd1, &r, 77, 2, NFSD_PROG_NFS, 3, 0, NULL, 0);
	CHECK(word(&r, 0) == 77, "first connection served");
	fd2 = dial(nfsd_server_port(s));
	rpc(fd2, &r, 78, 2, NFSD_PROG_NFS, 3, 0, NULL, 0);
	CHECK(fd2 >= 0 && word(&r, 0) == 78,
	      "at max_connections a new connection is served");
	CHECK(read(fd1, &c, 1) == 0, "the idle one was closed for it");
	close(fd1);
	close(fd2);
	stop(s, t);

	s = start(&t, 4, 1 << 20, 100, 300);
	fd2 = dial(nfsd_server_port(s));
	rpc(fd2, &r, 79, 2, NFSD_PROG_NFS, 3, 0, NULL, 0);
	CHECK(read(fd2, &c, 1) == 0, "an idle connection is closed");
	close(fd2);
	/* a peer that never finishes its record is idle although it sends
	 * (a byte every 100 ms, for as long as it takes) */
	fd1 = dial(nfsd_server_port(s));
	tl_put_be32(hdr, 0x80000000u | 100);
	send_all(fd1, hdr, 4);
	for (int i = 0; i < 1200 && !closed; i++) {
		usleep(100000);
		closed = write(fd1, "x", 1) < 0;
	}
	CHECK(closed || read(fd1, &c, 1) == 0,
	      "a trickling, unfinished record is closed as idle");
	close(fd1);
	tl_buf_free(&r);
	stop(s, t);
}

enum { BUSY_CALLS = 1000 };

struct busy {
	unsigned port;
	unsigned calls, lost;
	atomic_int *done; /* clients finished */
};

static void *
busy_client(void *arg)
{
	struct busy *b = arg;
	struct tl_buf r = TL_BUF_INIT;
	int fd = dial(b->port);

	for (uint32_t x = 1; fd >= 0 && x <= BUSY_CALLS; x++) {
		rpc(fd, &r, x, 2, NFSD_PROG_NFS, 3, 0, NULL, 0);
		b->calls++;
		if (word(&r, 0) != x) {
			b->lost++;
			break;
		}
	}
	if (fd < 0)
		b->lost++;
	else
		close(fd);
	tl_buf_free(&r);
	atomic_fetch_add(b->done, 1);
	return NULL;
}

/*
 * Connections that call without pause are never idle, however often the
 * idle sweep runs and however it interleaves with the workers finishing
 * their requests.  The timeout is an hour, so that no pause of a loaded
 * machine makes a connection idle; the sweep is run by hand, back to
 * back, while the clients call (a clock misread as earlier than a
 * request's end would make a connection idle for centuries).
 */
static void
test_busy_not_idle(void)
{
	enum { N = 8 };
	pthread_t t, ct[N];
	struct nfsd_server *s = start(&t, 4, 1 << 20, 100, 3600 * 1000);
	struct busy b[N];
	unsigned calls = 0, lost = 0, sweeps = 0;
	atomic_int done = 0;

	for (int i = 0; i < N; i++) {
		b[i] = (struct busy){nfsd_server_port(s), 0, 0, &done};
		pthread_create(&ct[i], NULL, busy_client, &b[i]);
	}
	while (atomic_load(&done) < N) {
		event_active(s->sweep, EV_TIMEOUT, 1);
		sweeps++;
		usleep(1000);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(ct[i], NULL);
		calls += b[i].calls;
		lost += b[i].lost;
	}
	CHECK(lost == 0 && calls == N * BUSY_CALLS,
	      "busy connections are not closed as idle (%u calls, %u "
	      "connections lost, %u sweeps)",
	      calls, lost, sweeps);
	stop(s, t);
}

int
main(void)
{
	pthread_t t;
	struct nfsd_server *srv;
	int fd;

	srv = start(&t, 2, 1 << 20, 100, 0);
	fd = dial(nfsd_server_port(srv));
	CHECK_FATAL(fd >= 0, "connect");
	test_errors(fd);
	test_mount_lists(fd);
	test_fragments(fd);
	test_pipeline(fd);
	test_oversized(nfsd_server_port(srv));
	test_request_memory(nfsd_server_port(srv));
	/* stop with a client still connected */
	stop(srv, t);
	close(fd);
	test_conn_limits();
	test_busy_not_idle();
	CHECK_EQ(atomic_load(&nfsd_m.mem_bytes), 0,
		 "the servers gave back every byte of request memory");
	return tap_done();
}
