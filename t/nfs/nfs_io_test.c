/*
 * nfs_io_test.c - READ, WRITE and COMMIT: eof flags, the three stability
 * levels, the write verifier (constant within a run, new after a
 * restart), GETATTR seeing unstable writes, writes across the 64 MiB chunk
 * boundaries, a file of exactly one chunk, a sparse file past 4 GiB, a
 * region overwritten thousands of times (its chunk compacted over and
 * over) reading back right and fsck-clean, and data surviving a restart
 * (graceful and SIGKILL) after COMMIT/FILE_SYNC.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t/nfs/tharness.h"

#define MiB   (1024ULL * 1024)
#define CHUNK (64 * MiB)

static struct th_server srv;
static struct th_conn cn;

static struct th_fh
new_file(const char *name)
{
	struct th_obj o;
	int st = th_create(&cn, &cn.root, name, GUARDED, NULL, NULL, &o);

	TH_REQUIRE(st == NFS3_OK && o.fh_follows, "CREATE %s (%s)", name,
		   th_stat_name(st));
	return o.fh;
}

/* Read [off, off+len) in pieces of at most 1 MiB and compare. */
static bool
read_equals(const struct th_fh *fh, uint64_t off, const uint8_t *want,
	    size_t len)
{
	static uint8_t buf[MiB];
	size_t done = 0;

	while (done < len) {
		uint32_t n = len - done > MiB ? MiB : len - done, got = 0;
		int st = th_read(&cn, fh, off + done, n, buf, &got, NULL);

		if (st != NFS3_OK || got == 0) {
			th_diag("READ at %llu: %s, %u bytes",
				(unsigned long long)(off + done),
				th_stat_name(st), got);
			return false;
		}
		if (memcmp(buf, want + done, got) != 0) {
			for (uint32_t i = 0; i < got; i++)
				if (buf[i] != want[done + i]) {
					th_diag("first difference at byte "
						"%llu: got 0x%02x want 0x%02x",
						(unsigned long long)(off +
								     done + i),
						buf[i], want[done + i]);
					break;
				}
			return false;
		}
		done += got;
	}
	return true;
}

static void
test_eof(void)
{
	struct th_fh f = new_file("eof");
	uint8_t buf[256];
	uint32_t got;
	bool eof;
	int st;

	memset(buf, 'z', 100);
	th_write(&cn, &f, 0, buf, 100, FILE_SYNC, NULL);
	st = th_read(&cn, &f, 0, 50, buf, &got, &eof);
	TH_CHECK(st == NFS3_OK && got == 50 && !eof,
		 "READ 50 of 100 bytes: 50, no eof (%s %u %d)",
		 th_stat_name(st), got, eof);
	st = th_read(&cn, &f, 0, 100, buf, &got, &eof);
	TH_CHECK(st == NFS3_OK && got == 100 && eof,
		 "READ exactly to the end: 100, eof (%s %u %d)",
		 th_stat_name(st), got, eof);
	st = th_read(&cn, &f, 50, 200, buf, &got, &eof);
	TH_CHECK(st == NFS3_OK && got == 50 && eof,
		 "READ past the end: short count 50, eof (%s %u %d)",
		 th_stat_name(st), got, eof);
	st = th_read(&cn, &f, 100, 10, buf, &got, &eof);
	TH_CHECK(st == NFS3_OK && got == 0 && eof,
		 "READ at the end: 0 bytes, eof (%s %u %d)", th_stat_name(st),
		 got, eof);
	st = th_read(&cn, &f, 1000000, 10, buf, &got, &eof);
	TH_CHECK(st == NFS3_OK && got == 0 && eof,
		 "READ far beyond the end: 0 bytes, eof");
	st = th_read(&cn, &f, 0, 0, buf, &got, &eof);
	TH_CHECK(st == NFS3_OK && got == 0, "READ of 0 bytes (%s)",
		 th_stat_name(st));
	st = th_read(&cn, &cn.root, 0, 10, buf, &got, &eof);
	TH_STAT(st, NFS3ERR_ISDIR, "READ of a directory");
	st = th_write(&cn, &cn.root, 0, buf, 10, FILE_SYNC, NULL);
	TH_STAT(st, NFS3ERR_ISDIR, "WRITE to a directory");
}

static void
test_stability(uint8_t verf_out[8])
{
	struct th_fh f = new_file("stab");
	static uint8_t data[3 * 65536];
	WRITE3res w[3];
	COMMIT3res c;
	fattr3 a;
	int st;

	th_fill(11, data, sizeof data);
	st = th_write(&cn, &f, 0, data, 65536, UNSTABLE, &w[0]);
	TH_STAT(st, NFS3_OK, "WRITE UNSTABLE");
	TH_CHECK(w[0].WRITE3res_u.resok.count == 65536,
		 "UNSTABLE count 65536 (got %u)", w[0].WRITE3res_u.resok.count);
	st = th_write(&cn, &f, 65536, data + 65536, 65536, DATA_SYNC, &w[1]);
	TH_STAT(st, NFS3_OK, "WRITE DATA_SYNC");
	TH_CHECK(w[1].WRITE3res_u.resok.committed == DATA_SYNC ||
			 w[1].WRITE3res_u.resok.committed == FILE_SYNC,
		 "DATA_SYNC write committed at least DATA_SYNC (got %d)",
		 w[1].WRITE3res_u.resok.committed);
	st = th_write(&cn, &f, 131072, data + 131072, 65536, FILE_SYNC, &w[2]);
	TH_STAT(st, NFS3_OK, "WRITE FILE_SYNC");
	TH_CHECK(w[2].WRITE3res_u.resok.committed == FILE_SYNC,
		 "FILE_SYNC write committed FILE_SYNC (got %d)",
		 w[2].WRITE3res_u.resok.committed);
	TH_CHECK(w[2].WRITE3res_u.resok.file_wcc.after.attributes_follow &&
			 w[2].WRITE3res_u.resok.file_wcc.after.post_op_attr_u
					 .attributes.size == sizeof data,
		 "WRITE post-op size %zu", sizeof data);
	TH_CHECK(memcmp(w[0].WRITE3res_u.resok.verf,
			w[1].WRITE3res_u.resok.verf, 8) == 0 &&
			 memcmp(w[0].WRITE3res_u.resok.verf,
				w[2].WRITE3res_u.resok.verf, 8) == 0,
		 "write verifier is the same for all three writes");
	st = th_getattr(&cn, &f, &a);
	TH_CHECK(st == NFS3_OK && a.size == sizeof data,
		 "GETATTR sees the size of unstable writes (%llu)",
		 (unsigned long long)a.size);
	st = th_commit(&cn, &f, 0, 0, &c);
	TH_STAT(st, NFS3_OK, "COMMIT whole file");
	TH_CHECK(memcmp(c.COMMIT3res_u.resok.verf, w[0].WRITE3res_u.resok.verf,
			8) == 0,
		 "COMMIT verifier equals the WRITE verifier");
	TH_CHECK(read_equals(&f, 0, data, sizeof data),
		 "data of the three writes reads back");
	st = th_commit(&cn, &f, 4096, 4096, &c);
	TH_STAT(st, NFS3_OK, "COMMIT of a range");
	st = th_commit(&cn, &cn.root, 0, 0, &c);
	TH_CHECK(st == NFS3ERR_ISDIR || st == NFS3ERR_INVAL || st == NFS3_OK,
		 "COMMIT of a directory does not crash (%s)", th_stat_name(st));
	memcpy(verf_out, w[0].WRITE3res_u.resok.verf, 8);

	/* Overwrite in the middle: later writes win. */
	memset(data + 1000, 0xab, 5000);
	st = th_write(&cn, &f, 1000, data + 1000, 5000, UNSTABLE, NULL);
	th_commit(&cn, &f, 0, 0, NULL);
	TH_CHECK(read_equals(&f, 0, data, sizeof data),
		 "an overwrite in the middle reads back (later write wins)");
}

static void
test_chunks(void)
{
	struct th_fh f = new_file("chunks"), g;
	uint8_t *data = malloc(MiB * 2), buf[16];
	uint64_t offs[] = {CHUNK - 512 * 1024, 2 * CHUNK - 1, 3 * CHUNK - 7};
	uint32_t got;
	bool eof;
	fattr3 a;
	int st;

	TH_REQUIRE(data != NULL, "malloc");
	for (size_t i = 0; i < sizeof offs / sizeof *offs; i++) {
		th_fill(100 + i, data, MiB);
		st = th_write(&cn, &f, offs[i], data, MiB, UNSTABLE, NULL);
		TH_STAT(st, NFS3_OK, "WRITE 1 MiB at %llu (crosses chunk %zu)",
			(unsigned long long)offs[i], i + 1);
	}
	th_commit(&cn, &f, 0, 0, NULL);
	for (size_t i = 0; i < sizeof offs / sizeof *offs; i++) {
		th_fill(100 + i, data, MiB);
		TH_CHECK(read_equals(&f, offs[i], data, MiB),
			 "1 MiB across chunk boundary %zu reads back", i + 1);
		/* A read that starts in the middle and ends past the edge. */
		TH_CHECK(read_equals(&f, offs[i] + 3, data + 3, MiB - 3),
			 "unaligned read across boundary %zu", i + 1);
	}
	/* Between the written pieces: holes read as zeros. */
	st = th_read(&cn, &f, CHUNK + MiB, sizeof buf, buf, &got, &eof);
	TH_CHECK(st == NFS3_OK && got == sizeof buf &&
			 memcmp(buf, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16) ==
				 0,
		 "hole between written pieces reads zeros");

	/* A file of exactly one chunk. */
	g = new_file("onechunk");
	for (uint64_t off = 0; off < CHUNK; off += MiB) {
		th_fill(1000 + off / MiB, data, MiB);
		st = th_write(&cn, &g, off, data, MiB, UNSTABLE, NULL);
		if (st != NFS3_OK) {
			TH_STAT(st, NFS3_OK, "WRITE at %llu",
				(unsigned long long)off);
			break;
		}
	}
	st = th_commit(&cn, &g, 0, 0, NULL);
	TH_STAT(st, NFS3_OK, "COMMIT the 64 MiB file");
	th_getattr(&cn, &g, &a);
	TH_CHECK(a.size == CHUNK, "size is exactly 64 MiB (%llu)",
		 (unsigned long long)a.size);
	st = th_read(&cn, &g, CHUNK, 16, buf, &got, &eof);
	TH_CHECK(st == NFS3_OK && got == 0 && eof,
		 "READ at exactly 64 MiB: 0 bytes, eof (%s %u %d)",
		 th_stat_name(st), got, eof);
	th_fill(1000 + 63, data, MiB);
	st = th_read(&cn, &g, CHUNK - MiB, MiB, data + MiB, &got, &eof);
	TH_CHECK(st == NFS3_OK && got == MiB && eof &&
			 memcmp(data, data + MiB, MiB) == 0,
		 "last MiB of the chunk reads back with eof");
	{
		bool ok = true;

		for (uint64_t off = 0; off < CHUNK && ok; off += MiB) {
			th_fill(1000 + off / MiB, data, MiB);
			ok = read_equals(&g, off, data, MiB);
		}
		TH_CHECK(ok, "all 64 MiB read back");
	}
	st = th_write(&cn, &g, CHUNK, "X", 1, FILE_SYNC, NULL);
	TH_STAT(st, NFS3_OK, "append 1 byte at 64 MiB");
	st = th_read(&cn, &g, CHUNK - 1, 16, buf, &got, &eof);
	th_fill(1000 + 63, data, MiB);
	TH_CHECK(st == NFS3_OK && got == 2 && eof && buf[1] == 'X' &&
			 buf[0] == data[MiB - 1],
		 "the byte before and after the boundary (%u bytes)", got);
	free(data);
}

static void
test_sparse(void)
{
	struct th_fh f = new_file("sparse");
	const uint64_t off = 5ULL << 30;
	uint8_t buf[8192], zero[8192];
	uint32_t got;
	bool eof;
	fattr3 a;
	int st;

	memset(zero, 0, sizeof zero);
	st = th_write(&cn, &f, off, "past-4GiB", 9, FILE_SYNC, NULL);
	TH_STAT(st, NFS3_OK, "WRITE at 5 GiB");
	th_getattr(&cn, &f, &a);
	TH_CHECK(a.size == off + 9, "size 5 GiB + 9 (%llu)",
		 (unsigned long long)a.size);
	/* Not asserted: the volume accounts space by file size (meta.h,
	 * meta_usage), so `used` of a sparse file may equal its size. */
	th_diag("sparse file: size %llu, used %llu", (unsigned long long)a.size,
		(unsigned long long)a.used);
	st = th_read(&cn, &f, 0, sizeof buf, buf, &got, &eof);
	TH_CHECK(st == NFS3_OK && got == sizeof buf && !eof &&
			 memcmp(buf, zero, sizeof buf) == 0,
		 "start of the sparse file reads zeros");
	st = th_read(&cn, &f, (4ULL << 30) - 4096, sizeof buf, buf, &got, &eof);
	TH_CHECK(st == NFS3_OK && got == sizeof buf &&
			 memcmp(buf, zero, sizeof buf) == 0,
		 "across 4 GiB reads zeros (32-bit offset boundary)");
	st = th_read(&cn, &f, off - 4, sizeof buf, buf, &got, &eof);
	TH_CHECK(st == NFS3_OK && got == 13 && eof &&
			 memcmp(buf, "\0\0\0\0past-4GiB", 13) == 0,
		 "the data at 5 GiB reads back with eof (%u bytes)", got);
	st = th_write(&cn, &f, (4ULL << 30) + 1, "mid", 3, FILE_SYNC, NULL);
	st = th_read(&cn, &f, 4ULL << 30, 8, buf, &got, &eof);
	TH_CHECK(st == NFS3_OK && got == 8 &&
			 memcmp(buf, "\0mid\0\0\0\0", 8) == 0,
		 "write just past 4 GiB is not wrapped to a low offset");
	st = th_read(&cn, &f, 1, 3, buf, &got, &eof);
	TH_CHECK(st == NFS3_OK && memcmp(buf, zero, 3) == 0,
		 "offset 1 stays zero (no 32-bit wrap)");
}

static void
reconnect(void)
{
	th_disconnect(&cn);
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0,
		   "MOUNT again after the restart");
}

/* 40 rounds of 50 random writes of 4-16 KiB (some not 4 KiB aligned)
 * over 2 MiB, each round COMMITted: the chunk's record list is compacted
 * many times over; every byte reads back as last written, before and
 * after a SIGKILL, and fsck is clean. */
static void
test_overwrite(void)
{
	const size_t len = 2 * MiB;
	struct th_fh f = new_file("overwrite");
	uint8_t *model = calloc(1, len), piece[16384];
	uint64_t rng = 4242;
	bool ok = true;
	int st;

	TH_REQUIRE(model != NULL, "malloc");
	st = th_write(&cn, &f, 0, model, 4096, FILE_SYNC, NULL);
	for (int r = 0; r < 40 && ok; r++) {
		for (int i = 0; i < 50 && ok; i++) {
			uint32_t n = 4096 * (1 + th_rand(&rng) % 4);
			uint64_t off = 4096 * (th_rand(&rng) % (len / 4096));

			if (i % 7 == 3)
				off += th_rand(&rng) % 4096;
			if (off + n > len)
				off = len - n;
			th_fill(th_rand(&rng), piece, n);
			st = th_write(&cn, &f, off, piece, n, UNSTABLE, NULL);
			ok = st == NFS3_OK;
			memcpy(model + off, piece, n);
		}
		if (ok)
			ok = th_commit(&cn, &f, 0, 0, NULL) == NFS3_OK;
	}
	TH_CHECK(ok, "2,000 overwrites in 40 COMMITted rounds (%s)",
		 th_stat_name(st));
	TH_CHECK(read_equals(&f, 0, model, len),
		 "every byte reads back as last written");
	TH_REQUIRE(th_server_restart(&srv, true) == 0,
		   "tesserad restarted after SIGKILL");
	reconnect();
	TH_CHECK(read_equals(&f, 0, model, len), "and so after SIGKILL");
	TH_CHECK(th_server_fsck(&srv) == 0,
		 "tessera fsck clean after the overwrites");
	free(model);
}

static void
test_restart(const uint8_t verf0[8])
{
	struct th_fh f = new_file("durable"), g = new_file("durable2");
	uint8_t *data = malloc(4 * MiB);
	WRITE3res w;
	int st;

	TH_REQUIRE(data != NULL, "malloc");
	th_fill(77, data, 4 * MiB);
	for (int i = 0; i < 4; i++)
		th_write(&cn, &f, i * MiB, data + i * MiB, MiB, UNSTABLE, NULL);
	st = th_commit(&cn, &f, 0, 0, NULL);
	TH_STAT(st, NFS3_OK, "COMMIT 4 MiB of unstable writes");
	TH_REQUIRE(th_server_restart(&srv, false) == 0,
		   "tesserad restarted (SIGTERM)");
	reconnect();
	TH_CHECK(read_equals(&f, 0, data, 4 * MiB),
		 "committed data reads back after a graceful restart, with "
		 "the old handle");

	st = th_write(&cn, &g, 0, data, MiB, FILE_SYNC, &w);
	TH_STAT(st, NFS3_OK, "WRITE FILE_SYNC 1 MiB");
	TH_CHECK(memcmp(w.WRITE3res_u.resok.verf, verf0, 8) != 0,
		 "the write verifier changed with the restart");
	st = th_write(&cn, &f, 0, data + MiB, 4096, UNSTABLE, NULL);
	st = th_commit(&cn, &f, 0, 0, NULL);
	TH_STAT(st, NFS3_OK, "COMMIT an overwrite");
	memcpy(data, data + MiB, 4096);
	TH_REQUIRE(th_server_restart(&srv, true) == 0,
		   "tesserad restarted after SIGKILL");
	reconnect();
	TH_CHECK(read_equals(&f, 0, data, 4 * MiB),
		 "COMMITted data survives SIGKILL");
	th_fill(77, data, MiB);
	TH_CHECK(read_equals(&g, 0, data, MiB),
		 "FILE_SYNC data survives SIGKILL");
	free(data);
}

int
main(void)
{
	uint8_t verf[8];

	TH_REQUIRE(th_server_start(&srv, NULL, NULL) == 0, "tesserad started");
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0,
		   "MOUNT / as root");
	test_eof();
	test_stability(verf);
	test_chunks();
	test_sparse();
	test_overwrite();
	test_restart(verf);
	th_disconnect(&cn);
	return th_done();
}
