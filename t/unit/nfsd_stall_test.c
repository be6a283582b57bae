/*
 * nfsd_stall_test - what may wait for long never runs on the event loop,
 * through a real server and raw RPC clients over TCP:
 *
 *   a SIGHUP while a READ waits for an object store that holds its GET
 *   (the fault: wrapper's hold, until the test lets it go): the reload
 *   completes (MNT of a newly exported
 *   path succeeds) and NULL calls are answered while the READ still
 *   waits, which then completes;
 *
 *   an exports rule with a host name whose DNS server does not answer:
 *   a client from a new address (127.0.0.2) makes no lookup on the
 *   request path, and another client is served while the resolver
 *   hangs; a refresh (what the control thread does every minute) picks
 *   up a changed answer, and a failed lookup keeps the old addresses.
 *
 * The DNS part runs in a private mount namespace whose /etc/resolv.conf
 * names a UDP DNS server of the test's own on 127.3.3.3:53 (a real
 * resolver, glibc's, against a server that answers or stays silent on
 * demand); it is skipped when that cannot be set up (not root).
 */
#include "config.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "t/unit/nfsd_test.h"

static struct tsrv T;
static char exports_path[] = "/tmp/nfsd_stall_exports.XXXXXX";
static nfs_fh3 root;

static void
write_exports(const char *text)
{
	FILE *f = fopen(exports_path, "w");

	CHECK_FATAL(f != NULL && fputs(text, f) >= 0 && fclose(f) == 0,
		    "write the exports file");
}

/* Whether fd has something to read within ms. */
static bool
readable(int fd, int ms)
{
	struct pollfd p = {fd, POLLIN, 0};

	return poll(&p, 1, ms) == 1;
}

/* How long an awaited event may take before the test calls it a stall:
 * a bound for a hung server, never a speed limit. */
#define STALL_NS 300000000000ull

static int
null_call(int fd, uint32_t xid)
{
	struct tl_buf b = TL_BUF_INIT;
	uint32_t st;

	tcall_encode(&b, xid, NFSD_PROG_NFS, 3, NFSPROC3_NULL, NULL, NULL);
	st = tcall(fd, &b, NULL, NULL, NULL);
	tl_buf_free(&b);
	return st == SUCCESS ? 0 : -1;
}

static void
send_getattr(int fd, uint32_t xid, const nfs_fh3 *fh)
{
	struct tl_buf b = TL_BUF_INIT;
	GETATTR3args a = {*fh};

	tcall_encode(&b, xid, NFSD_PROG_NFS, 3, NFSPROC3_GETATTR,
		     (xdrproc_t)xdr_GETATTR3args, &a);
	tio(fd, false, b.data, b.len);
	tl_buf_free(&b);
}

/* The status of the GETATTR reply waiting on fd, or -1. */
static int
recv_status(int fd)
{
	struct tl_buf r = TL_BUF_INIT;
	int st = -1;

	if (trecv(fd, &r) && r.len >= 28 && tl_get_be32(r.data + 20) == 0)
		st = (int)tl_get_be32(r.data + 24);
	tl_buf_free(&r);
	return st;
}

/* ---- a DNS server that answers, or stays silent, on demand --------------- */

enum { DNS_NXDOMAIN, DNS_HOLD, DNS_ADDR };
#define DNS_HELD 16

static struct {
	bool on;
	int fd;
	pthread_t thr;
	pthread_mutex_t lock;
	int mode;         /* under lock */
	uint32_t addr;    /* DNS_ADDR: the IPv4 answer, network order */
	unsigned queries; /* received */
	bool stop;
	unsigned nheld; /* queries kept unanswered (DNS_HOLD) */
	uint8_t held[DNS_HELD][512];
	size_t held_len[DNS_HELD];
	struct sockaddr_in held_from[DNS_HELD];
} dns = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Answer query q (under dns.lock) as the mode says: NXDOMAIN, or for
 * DNS_ADDR an A record (AAAA and others: no data). */
static void
dns_answer(const uint8_t *q, size_t len, const struct sockaddr_in *from)
{
	uint8_t r[600];
	size_t off = 12;
	uint16_t qtype;

	if (len < 12 || len > 512)
		return;
	while (off < len && q[off] != 0 && (q[off] & 0xc0) == 0)
		off += 1u + q[off];
	if (off + 5 > len)
		return;
	qtype = (uint16_t)(q[off + 1] << 8 | q[off + 2]);
	off += 5; /* the root label, type, class */
	memcpy(r, q, off);
	r[2] = 0x80 | (q[2] & 0x79); /* a response; opcode and RD kept */
	r[3] = 0x80;                 /* recursion available, NOERROR */
	memset(r + 4, 0, 8);
	r[5] = 1; /* one question */
	if (dns.mode == DNS_ADDR && qtype == 1) {
		static const uint8_t rr[] = {0xc0, 0x0c, 0, 1,  0, 1,
					     0,    0,    0, 60, 0, 4};

		r[7] = 1; /* one answer */
		memcpy(r + off, rr, sizeof(rr));
		memcpy(r + off + sizeof(rr), &dns.addr, 4);
		off += sizeof(rr) + 4;
	} else if (dns.mode != DNS_ADDR) {
		r[3] |= 3; /* NXDOMAIN */
	}
	sendto(dns.fd, r, off, 0, (const struct sockaddr *)from, sizeof(*from));
}

static void *
dns_main(void *arg)
{
	(void)arg;
	for (;;) {
		uint8_t q[512];
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n;

		pthread_mutex_lock(&dns.lock);
		if (dns.stop) {
			pthread_mutex_unlock(&dns.lock);
			return NULL;
		}
		pthread_mutex_unlock(&dns.lock);
		if (!readable(dns.fd, 50))
			continue;
		n = recvfrom(dns.fd, q, sizeof(q), 0, (struct sockaddr *)&from,
			     &fl);
		if (n <= 0)
			continue;
		pthread_mutex_lock(&dns.lock);
		dns.queries++;
		if (dns.mode == DNS_HOLD && dns.nheld < DNS_HELD) {
			memcpy(dns.held[dns.nheld], q, (size_t)n);
			dns.held_len[dns.nheld] = (size_t)n;
			dns.held_from[dns.nheld++] = from;
		} else if (dns.mode != DNS_HOLD) {
			dns_answer(q, (size_t)n, &from);
		}
		pthread_mutex_unlock(&dns.lock);
	}
}

/* Switch the mode; leaving DNS_HOLD answers the held queries. */
static void
dns_mode(int mode, const char *addr)
{
	pthread_mutex_lock(&dns.lock);
	dns.mode = mode;
	if (addr != NULL)
		inet_pton(AF_INET, addr, &dns.addr);
	if (mode != DNS_HOLD) {
		for (unsigned i = 0; i < dns.nheld; i++)
			dns_answer(dns.held[i], dns.held_len[i],
				   &dns.held_from[i]);
		dns.nheld = 0;
	}
	pthread_mutex_unlock(&dns.lock);
}

static unsigned
dns_count(bool held)
{
	unsigned n;

	pthread_mutex_lock(&dns.lock);
	n = held ? dns.nheld : dns.queries;
	pthread_mutex_unlock(&dns.lock);
	return n;
}

/* Bind file over target in this process's mount namespace. */
static bool
bind_file(const char *text, const char *target)
{
	char path[] = "/tmp/nfsd_stall_etc.XXXXXX";
	int fd = mkstemp(path);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
	close(fd);
	ok = ok && mount(path, target, NULL, MS_BIND, NULL) == 0;
	unlink(path); /* the mount keeps the file */
	return ok;
}

/* A private mount namespace whose resolver asks our server on
 * 127.3.3.3:53 (before any thread starts: unshare wants that). */
static bool
dns_setup(void)
{
	struct sockaddr_in sa;

	if (unshare(CLONE_NEWNS) != 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		return false;
	if (!bind_file("nameserver 127.3.3.3\n"
		       "options timeout:30 attempts:1\n",
		       "/etc/resolv.conf") ||
	    !bind_file("hosts: files dns\n", "/etc/nsswitch.conf"))
		return false;
	dns.fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(53);
	inet_pton(AF_INET, "127.3.3.3", &sa.sin_addr);
	if (dns.fd < 0 || bind(dns.fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return false;
	pthread_create(&dns.thr, NULL, dns_main, NULL);
	dns.on = true;
	return true;
}

static void
dns_stop(void)
{
	if (!dns.on)
		return;
	pthread_mutex_lock(&dns.lock);
	dns.stop = true;
	pthread_mutex_unlock(&dns.lock);
	pthread_join(dns.thr, NULL);
	close(dns.fd);
}

/* Connect from 127.0.0.2. */
static int
dial_other(void)
{
	return tdial_from_addr(T.port, INADDR_LOOPBACK + 1, 0);
}

/*
 * "/ slow.tessera-test(rw) 127.0.0.1(rw)": every request is matched
 * against the host-name rule first.  With the DNS server silent, a
 * GETATTR from 127.0.0.2 (a new address, run on the event loop) and
 * one from 127.0.0.1 after it: the second is answered while the
 * resolver would still wait.
 */
static void
test_resolver(void)
{
	nfs_fh3 fh = {{0, NULL}};
	char *err = NULL;
	int a, b;
	unsigned q0;
	bool served;
	uint64_t t0;

	write_exports("/ slow.tessera-test(rw,insecure,no_root_squash) "
		      "127.0.0.1(rw,insecure,no_root_squash)\n");
	dns_mode(DNS_NXDOMAIN, NULL);
	CHECK_FATAL(nfsd_server_reload(T.srv, &err) == 0,
		    "exports with a host-name rule loaded");
	a = tdial(T.port);
	CHECK_FATAL(tmnt(a, "/", &fh) == MNT3_OK, "127.0.0.1 mounts /");
	send_getattr(a, 20, &fh);
	CHECK(recv_status(a) == NFS3_OK, "and is served");

	dns_mode(DNS_HOLD, NULL);
	q0 = dns_count(false);
	b = dial_other();
	CHECK_FATAL(b >= 0, "connect from 127.0.0.2");
	send_getattr(b, 21, &fh);
	/* until B is answered or its lookup reached the DNS server */
	for (t0 = tl_mono_ns(); !readable(b, 20) && dns_count(false) == q0 &&
				tl_mono_ns() - t0 < STALL_NS;)
		;
	send_getattr(a, 22, &fh);
	served = readable(a, (int)(STALL_NS / 1000000));
	CHECK(served && recv_status(a) == NFS3_OK,
	      "127.0.0.1 is served while the DNS server is silent (%u "
	      "lookups waiting for it)",
	      dns_count(true));
	dns_mode(DNS_NXDOMAIN, NULL);
	CHECK_EQ(recv_status(b), NFS3ERR_ACCES,
		 "127.0.0.2 matches no rule: ACCES");

	dns_mode(DNS_ADDR, "127.0.0.2");
	nfsd_server_refresh_hosts(T.srv);
	send_getattr(b, 23, &fh);
	CHECK_EQ(recv_status(b), NFS3_OK,
		 "after a refresh slow.tessera-test is 127.0.0.2: served");
	dns_mode(DNS_NXDOMAIN, NULL);
	nfsd_server_refresh_hosts(T.srv);
	send_getattr(b, 24, &fh);
	CHECK_EQ(recv_status(b), NFS3_OK,
		 "a lookup that fails keeps the addresses it had");
	close(a);
	close(b);
	free(fh.data.data_val);
	free(err);
}

/* ---- a slow object store and SIGHUP ------------------------------------ */

static void
test_reload_during_slow_io(void)
{
	enum { LEN = 64 << 10 };
	struct os_fault_stats st0, st;
	struct tl_buf b = TL_BUF_INIT, r = TL_BUF_INIT;
	uint8_t *data = malloc(LEN);
	CREATE3args ca;
	CREATE3res cr;
	WRITE3args wa;
	WRITE3res wr;
	READ3args ra;
	READ3res rr;
	nfs_fh3 file = {{0, NULL}}, rofh = {{0, NULL}};
	bool reloaded = false, answered = false, pending;
	char *err = NULL;
	int a = tdial(T.port), bfd = tdial(T.port);
	uint64_t t0;

	for (int i = 0; i < LEN; i++)
		data[i] = (uint8_t)(i * 7);
	memset(&ca, 0, sizeof(ca));
	ca.where.dir = root;
	ca.where.name = "slow";
	ca.how.mode = GUARDED;
	memset(&cr, 0, sizeof(cr));
	CHECK_FATAL(tnfs(a, 10, NFSPROC3_CREATE, (xdrproc_t)xdr_CREATE3args,
			 &ca, (xdrproc_t)xdr_CREATE3res, &cr) == NFS3_OK,
		    "CREATE slow");
	tfh_copy(&file, &cr.CREATE3res_u.resok.obj.post_op_fh3_u.handle);
	xdr_free((xdrproc_t)xdr_CREATE3res, (char *)&cr);
	memset(&wa, 0, sizeof(wa));
	wa.file = file;
	wa.count = LEN;
	wa.stable = FILE_SYNC;
	wa.data.data_len = LEN;
	wa.data.data_val = (char *)data;
	memset(&wr, 0, sizeof(wr));
	CHECK_FATAL(tnfs(a, 11, NFSPROC3_WRITE, (xdrproc_t)xdr_WRITE3args, &wa,
			 (xdrproc_t)xdr_WRITE3res, &wr) == NFS3_OK,
		    "WRITE 64 KiB FILE_SYNC: the block is in the store");
	xdr_free((xdrproc_t)xdr_WRITE3res, (char *)&wr);
	{
		MKDIR3args ma;
		MKDIR3res mr;

		memset(&ma, 0, sizeof(ma));
		ma.where.dir = root;
		ma.where.name = "ro";
		memset(&mr, 0, sizeof(mr));
		CHECK_FATAL(tnfs(a, 14, NFSPROC3_MKDIR,
				 (xdrproc_t)xdr_MKDIR3args, &ma,
				 (xdrproc_t)xdr_MKDIR3res, &mr) == NFS3_OK,
			    "MKDIR ro (not exported yet)");
		xdr_free((xdrproc_t)xdr_MKDIR3res, (char *)&mr);
	}

	/* every get now waits until the test lets it go (objstore/fault.c,
	 * hold): the READ stays in the store while the test acts, however
	 * slow the machine */
	CHECK_FATAL(os_fault_configure(T.fault, "hold=1,ops=get", &err) == 0,
		    "the store holds GETs");
	os_fault_stats(T.fault, &st0);
	memset(&ra, 0, sizeof(ra));
	ra.file = file;
	ra.count = LEN;
	tcall_encode(&b, 12, NFSD_PROG_NFS, 3, NFSPROC3_READ,
		     (xdrproc_t)xdr_READ3args, &ra);
	tio(a, false, b.data, b.len);
	t0 = tl_mono_ns();
	do {
		usleep(5000);
		os_fault_stats(T.fault, &st);
	} while (st.calls[OS_OP_GET] == st0.calls[OS_OP_GET] &&
		 tl_mono_ns() - t0 < STALL_NS);
	CHECK_FATAL(st.calls[OS_OP_GET] > st0.calls[OS_OP_GET],
		    "the READ waits for the store");

	write_exports("/ 127.0.0.1(rw,insecure,no_root_squash)\n"
		      "/ro 127.0.0.1(ro,insecure)\n");
	kill(getpid(), SIGHUP);
	usleep(300000); /* the loop sees the signal before our calls */
	answered = null_call(bfd, 13) == 0;
	while (!reloaded && !readable(a, 0) && tl_mono_ns() - t0 < STALL_NS) {
		reloaded = tmnt(bfd, "/ro", &rofh) == MNT3_OK;
		if (!reloaded)
			usleep(20000);
	}
	pending = !readable(a, 0);
	CHECK(answered && pending,
	      "NULL is answered while the READ waits for the store");
	CHECK(reloaded && pending,
	      "the reload is done (MNT /ro) while the READ waits for it");
	CHECK_FATAL(os_fault_configure(T.fault, "", &err) == 0,
		    "the store lets the GET go");
	memset(&rr, 0, sizeof(rr));
	if (trecv(a, &r) && r.len > 24 && tl_get_be32(r.data + 20) == 0) {
		XDR x;

		xdrmem_create(&x, (char *)r.data + 24, (u_int)r.len - 24,
			      XDR_DECODE);
		if (!xdr_READ3res(&x, &rr))
			rr.status = NFS3ERR_IO;
		xdr_destroy(&x);
	} else {
		rr.status = NFS3ERR_IO;
	}
	CHECK(rr.status == NFS3_OK &&
		      rr.READ3res_u.resok.data.data_len == LEN &&
		      memcmp(rr.READ3res_u.resok.data.data_val, data, LEN) == 0,
	      "then the READ is answered with the data (%d)", (int)rr.status);
	xdr_free((xdrproc_t)xdr_READ3res, (char *)&rr);
	close(a);
	close(bfd);
	free(rofh.data.data_val);
	free(file.data.data_val);
	free(data);
	free(err);
	tl_buf_free(&b);
	tl_buf_free(&r);
}

int
main(void)
{
	struct nfsd_config cfg;
	bool have_dns = dns_setup();
	int fd = mkstemp(exports_path);

	CHECK_FATAL(fd >= 0, "exports file");
	close(fd);
	write_exports("/ 127.0.0.1(rw,insecure,no_root_squash)\n");
	nfsd_config_defaults(&cfg);
	cfg.workers = 4;
	free(cfg.exports);
	cfg.exports = tl_strdup(exports_path);
	T.fault_spec = "";
	T.signals = true;
	tsrv_start(&T, &cfg);
	nfsd_config_free(&cfg);
	fd = tdial(T.port);
	CHECK_FATAL(tmnt(fd, "/", &root) == MNT3_OK, "MNT /");
	close(fd);
	test_reload_during_slow_io();
	if (have_dns)
		test_resolver();
	else
		SKIP(6, "no private mount namespace for a test resolver "
			"(not root?)");
	tsrv_stop(&T);
	dns_stop();
	unlink(exports_path);
	free(root.data.data_val);
	return tap_done();
}
