/*
 * nfs_bigfile_test.c - a 1 GiB file written in random-size pieces (1 B ..
 * 1 MiB) in random order, then overwritten at 1,000 random offsets with
 * mixed stability, 8 writes in flight; COMMIT; read back byte for byte
 * (8 reads of 1 MiB in flight), again after a restart of the daemon, and
 * with 64 reads in flight (replies wait in the server's output).
 *
 * The expected content is kept in a 1 GiB buffer (the machines have
 * 24 GiB); every piece's bytes come from a seeded PRNG so a failure is
 * reproducible (TH_SEED=n to choose the seed).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t/nfs/tharness.h"

#define MiB         (1024ULL * 1024)
#define FILE_SIZE   (1024 * MiB)
#define DEPTH       8
#define NOVERWRITES 1000

static struct th_server srv;
static struct th_conn cn;
static uint8_t *expect;
static struct th_fh file;

struct io {
	int inflight;
	uint64_t failed;
	int first_err;
	uint64_t first_bad; /* first mismatching offset + 1, 0 = none */
	uint64_t bytes;
	uint64_t short_reads;
};

struct req {
	struct io *io;
	uint64_t off;
	uint32_t len;
};

static void
io_fail(struct io *io, int st)
{
	if (!io->failed)
		io->first_err = st;
	io->failed++;
}

static void
write_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct req *r = priv;
	WRITE3res *res = data;

	r->io->inflight--;
	if (status != RPC_STATUS_SUCCESS)
		io_fail(r->io, -1);
	else if (res->status != NFS3_OK)
		io_fail(r->io, res->status);
	else if (res->WRITE3res_u.resok.count != r->len)
		io_fail(r->io, -4); /* short write: the test sends again? no */
	else
		r->io->bytes += r->len;
	free(r);
}

static void
read_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct req *r = priv;
	READ3res *res = data;
	uint32_t n;

	r->io->inflight--;
	if (status != RPC_STATUS_SUCCESS || res->status != NFS3_OK) {
		io_fail(r->io,
			status != RPC_STATUS_SUCCESS ? -1 : (int)res->status);
		goto out;
	}
	n = res->READ3res_u.resok.data.data_len;
	if (n != r->len)
		r->io->short_reads++;
	if (n > r->len)
		n = r->len;
	if (memcmp(res->READ3res_u.resok.data.data_val, expect + r->off, n)) {
		for (uint32_t i = 0; i < n; i++)
			if ((uint8_t)res->READ3res_u.resok.data.data_val[i] !=
			    expect[r->off + i]) {
				if (!r->io->first_bad ||
				    r->off + i + 1 < r->io->first_bad)
					r->io->first_bad = r->off + i + 1;
				break;
			}
	}
	r->io->bytes += n;
out:
	free(r);
}

static int
drain(struct io *io, int below)
{
	while (io->inflight > below)
		if (th_service(&cn, 1000) < 0)
			return -1;
	return 0;
}

static int
send_write(struct io *io, uint64_t off, uint32_t len, stable_how how)
{
	struct req *r = malloc(sizeof *r);
	WRITE3args a;

	if (drain(io, DEPTH - 1) < 0)
		return -1;
	r->io = io;
	r->off = off;
	r->len = len;
	memset(&a, 0, sizeof a);
	a.file = th_fh3(&file);
	a.offset = off;
	a.count = len;
	a.stable = how;
	a.data.data_len = len;
	a.data.data_val = (char *)expect + off;
	/* libnfs copies the data into the request here. */
	if (rpc_nfs3_write_async(cn.rpc, write_cb, &a, r) != 0) {
		free(r);
		return -1;
	}
	io->inflight++;
	return 0;
}

static void
write_all(uint64_t seed)
{
	struct io io = {0};
	uint64_t st = seed, npieces = 0, off = 0, t0 = th_now_ms();
	struct {
		uint64_t off;
		uint32_t len;
	} *pieces = malloc(sizeof *pieces * 4096);
	int rc = 0;

	/* Pass 1: cut the file into random pieces, write them shuffled. */
	while (off < FILE_SIZE) {
		uint64_t len = 1 + th_rand(&st) % MiB;

		if (len > FILE_SIZE - off)
			len = FILE_SIZE - off;
		pieces[npieces].off = off;
		pieces[npieces].len = len;
		th_fill(seed * 1000003 + npieces, expect + off, len);
		npieces++;
		off += len;
	}
	for (uint64_t i = npieces - 1; i > 0; i--) {
		uint64_t j = th_rand(&st) % (i + 1);
		__typeof__(*pieces) t = pieces[i];

		pieces[i] = pieces[j];
		pieces[j] = t;
	}
	for (uint64_t i = 0; i < npieces && rc == 0; i++)
		rc = send_write(&io, pieces[i].off, pieces[i].len, UNSTABLE);
	if (rc == 0)
		rc = drain(&io, 0);
	th_diag("pass 1: %llu pieces in %llu ms", (unsigned long long)npieces,
		(unsigned long long)(th_now_ms() - t0));
	/* Pass 2: overwrites at random offsets, some stable. */
	for (int i = 0; i < NOVERWRITES && rc == 0; i++) {
		uint64_t len = 1 + th_rand(&st) % (256 * 1024);
		uint64_t o = th_rand(&st) % (FILE_SIZE - len);
		stable_how how = i % 10 == 0   ? FILE_SYNC
				 : i % 10 == 1 ? DATA_SYNC
					       : UNSTABLE;

		rc = drain(&io, 0);
		th_fill(seed * 7 + 0x5eed0000 + i, expect + o, len);
		if (rc == 0)
			rc = send_write(&io, o, len, how);
	}
	if (rc == 0)
		rc = drain(&io, 0);
	TH_CHECK(rc == 0 && io.failed == 0,
		 "%llu pieces + %d overwrites written (%llu failed, first "
		 "%s; %llu MB in %llu ms)",
		 (unsigned long long)npieces, NOVERWRITES,
		 (unsigned long long)io.failed, th_stat_name(io.first_err),
		 (unsigned long long)(io.bytes / 1000000),
		 (unsigned long long)(th_now_ms() - t0));
	free(pieces);
}

/* Pass 2 waits for each overwrite before the next one is sent, so
 * overlapping writes reach the server in order (a client never has two
 * overlapping writes in flight and expects an order between them). */

static void
read_all(const char *when, unsigned depth)
{
	struct io io = {0};
	uint64_t t0 = th_now_ms();
	int rc = 0;

	for (uint64_t off = 0; off < FILE_SIZE && rc == 0; off += MiB) {
		struct req *r = malloc(sizeof *r);
		READ3args a;

		rc = drain(&io, depth - 1);
		r->io = &io;
		r->off = off;
		r->len = MiB;
		a.file = th_fh3(&file);
		a.offset = off;
		a.count = MiB;
		if (rc == 0 &&
		    rpc_nfs3_read_async(cn.rpc, read_cb, &a, r) != 0) {
			free(r);
			rc = -1;
		} else
			io.inflight++;
	}
	if (rc == 0)
		rc = drain(&io, 0);
	TH_CHECK(rc == 0 && io.failed == 0 && io.short_reads == 0,
		 "%s: 1 GiB read (%llu failed, first %s, %llu short; %llu "
		 "ms)",
		 when, (unsigned long long)io.failed,
		 th_stat_name(io.first_err), (unsigned long long)io.short_reads,
		 (unsigned long long)(th_now_ms() - t0));
	TH_CHECK(io.first_bad == 0 && io.bytes == FILE_SIZE,
		 "%s: every byte matches (first difference at %lld, %llu "
		 "bytes compared)",
		 when, (long long)io.first_bad - 1,
		 (unsigned long long)io.bytes);
}

int
main(void)
{
	const char *s = getenv("TH_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 0) : 20240601;
	struct th_obj o;
	fattr3 a;
	int st;

	expect = malloc(FILE_SIZE);
	if (!expect)
		th_skip_all("cannot allocate 1 GiB for the expected content");
	th_diag("seed %llu (TH_SEED)", (unsigned long long)seed);
	TH_REQUIRE(th_server_start(&srv, NULL, NULL) == 0, "tesserad started");
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0,
		   "MOUNT / as root");
	st = th_create(&cn, &cn.root, "big", GUARDED, NULL, NULL, &o);
	TH_REQUIRE(st == NFS3_OK, "CREATE big");
	file = o.fh;
	write_all(seed);
	st = th_commit(&cn, &file, 0, 0, NULL);
	TH_STAT(st, NFS3_OK, "COMMIT");
	st = th_getattr(&cn, &file, &a);
	TH_CHECK(st == NFS3_OK && a.size == FILE_SIZE, "size is 1 GiB (%llu)",
		 (unsigned long long)a.size);
	read_all("before restart", DEPTH);
	TH_REQUIRE(th_server_restart(&srv, false) == 0, "restart");
	th_disconnect(&cn);
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0, "reconnect");
	read_all("after restart", DEPTH);
	/* 64 MiB of replies asked for at once fill the socket: the rest of
	 * each reply waits in the server's output (READ data sent from the
	 * object files: a file segment queued, see conn_send). */
	read_all("64 READs in flight", 64);
	th_disconnect(&cn);
	free(expect);
	return th_done();
}
