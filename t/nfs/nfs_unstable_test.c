/*
 * nfs_unstable_test - a COMMIT never answers OK with the WRITEs' verifier
 * for bytes that are not stored (RFC 1813: the verifier changes whenever
 * the server may have lost uncommitted data).  Two clients (A and B, one
 * connection each) and a real tesserad (64 KiB blocks, buffer_limit=1M)
 * on a store that fails on demand: the fault wrapper's control file
 * (objstore/fault.c), rewritten by the test between calls.  An injected
 * sync failure deletes every put since the previous sync, as the file
 * store does with objects it could not sync.
 *   1. A writes UNSTABLE; B's write needs the buffer A holds and forces a
 *      flush of A's file, whose sync fails once: B is told to retry
 *      (JUKEBOX), A's data stays, B's retry succeeds and A's COMMIT
 *      answers OK with the same verifier over the whole file.
 *   2. A's COMMIT while every sync fails answers NFS3ERR_IO (A's data
 *      still reads back); once the store heals it answers OK.
 *   3. A's blocks were stored early and B's failed sync lost them: A's
 *      COMMIT stores them again.
 *   4. Puts fail at the flush (early uploads and the flush's own): B's
 *      forcing write gets JUKEBOX, A's COMMIT NFS3ERR_IO, then both
 *      succeed once the store heals.
 *   5. The gateway stops while it cannot store A's data (the one place
 *      data is dropped): after the restart COMMIT answers another
 *      verifier, A resends, and the file is whole.
 * Whenever a COMMIT answers OK with the verifier A's WRITEs got, the file
 * must read back whole; at the end fsck finds every block the metadata
 * names.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t/nfs/tharness.h"

/* WRITE size and block size; BIG is half of buffer_limit, so A's and
 * B's BIG writes do not fit together. */
#define PIECE (64 * 1024)
#define BIG   (512 * 1024)

static struct th_server srv;
static struct th_conn ca, cb;
static char ctl[300];

/* The store's fault settings from now on (NULL: none). */
static void
faults(const char *spec)
{
	th_store_faults(ctl, spec);
}

static struct th_fh
create(struct th_conn *c, const char *name)
{
	struct th_obj o;

	TH_REQUIRE(th_create(c, &c->root, name, GUARDED,
			     (sattr3[]){th_sattr_mode(0644)}, NULL,
			     &o) == NFS3_OK,
		   "create %s", name);
	return o.fh;
}

/* Write data[0..n) UNSTABLE in PIECE writes; *verf: the last one's. */
static int
write_unstable(struct th_conn *c, const struct th_fh *fh, const uint8_t *data,
	       size_t n, uint8_t verf[8])
{
	WRITE3res r;
	int st = NFS3_OK;

	for (size_t off = 0; off < n && st == NFS3_OK; off += PIECE) {
		uint32_t len = (uint32_t)(n - off < PIECE ? n - off : PIECE);

		st = th_write(c, fh, off, data + off, len, UNSTABLE, &r);
		if (st == NFS3_OK)
			memcpy(verf, r.WRITE3res_u.resok.verf, 8);
	}
	return st;
}

static int
commit(struct th_conn *c, const struct th_fh *fh, uint8_t verf[8])
{
	COMMIT3res r;
	int st = th_commit(c, fh, 0, 0, &r);

	if (st == NFS3_OK)
		memcpy(verf, r.COMMIT3res_u.resok.verf, 8);
	return st;
}

/* Whether the file is exactly data[0..n). */
static bool
whole(struct th_conn *c, const struct th_fh *fh, const uint8_t *data, size_t n)
{
	uint8_t *buf = malloc(n + PIECE);
	uint64_t off = 0;
	bool eof = false, ok;

	while (buf != NULL && !eof && off <= n) {
		uint32_t got = 0;

		if (th_read(c, fh, off, PIECE, buf + off, &got, &eof) !=
		    NFS3_OK)
			break;
		off += got;
		if (got == 0)
			break;
	}
	ok = buf != NULL && eof && off == n && memcmp(buf, data, n) == 0;
	if (!ok)
		th_diag("read back %llu bytes of %zu%s",
			(unsigned long long)off, n, eof ? "" : ", no EOF");
	free(buf);
	return ok;
}

/* A COMMIT that answered OK with the verifier of the WRITEs vouches for
 * every byte: check it. */
static void
check_ok_commit(const char *what, int st, const uint8_t cv[8],
		const uint8_t wv[8], const struct th_fh *fh,
		const uint8_t *data, size_t n)
{
	if (st == NFS3_OK && memcmp(cv, wv, 8) == 0)
		TH_CHECK(whole(&ca, fh, data, n),
			 "%s: COMMIT OK with the WRITEs' verifier, and every "
			 "byte is there",
			 what);
}

/* B's WRITE of data, retried while the gateway answers JUKEBOX (at most
 * a few times: each retry flushes A again); *first: the first answer. */
static int
write_b(const struct th_fh *fh, const uint8_t *data, int *first)
{
	int st = NFS3_OK;

	for (int i = 0; i < 5; i++) {
		st = th_write(&cb, fh, 0, data, BIG, UNSTABLE, NULL);
		if (i == 0)
			*first = st;
		if (st != NFS3ERR_JUKEBOX)
			break;
	}
	return st;
}

/* Objects in the store (the obj directory's files, temporaries aside). */
static int
count_objects(const char *path)
{
	struct dirent *de;
	DIR *d = opendir(path);
	int n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		char sub[600];

		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
		if (de->d_type == DT_DIR)
			n += count_objects(sub);
		else
			n++;
	}
	closedir(d);
	return n;
}

static int
objects(void)
{
	char path[300];

	snprintf(path, sizeof path, "%s/obj", srv.dir);
	return count_objects(path);
}

/* 1: the sequence of issue 12. */
static void
test_forced_flush_sync_fails(const uint8_t *da, const uint8_t *db)
{
	struct th_fh fa = create(&ca, "a1"), fb = create(&cb, "b1");
	uint8_t wv[8], cv[8];
	int st, first;

	faults("ops=sync,err=1,failures=1");
	TH_STAT(write_unstable(&ca, &fa, da, BIG, wv), NFS3_OK,
		"1: A writes 512 KiB UNSTABLE");
	st = write_b(&fb, db, &first);
	TH_STAT(first, NFS3ERR_JUKEBOX,
		"1: B's write forces a flush of A, whose sync fails: B is "
		"told to retry");
	TH_STAT(st, NFS3_OK, "1: B's retry succeeds (A's flush did)");
	st = commit(&ca, &fa, cv);
	check_ok_commit("1", st, cv, wv, &fa, da, BIG);
	TH_CHECK(st == NFS3_OK && memcmp(cv, wv, 8) == 0,
		 "1: A's data was kept: COMMIT OK, same verifier (%s)",
		 th_stat_name(st));
	TH_STAT(commit(&cb, &fb, cv), NFS3_OK, "1: B commits");
	TH_CHECK(whole(&cb, &fb, db, BIG), "1: B's file is whole");
	faults(NULL);
}

/* 2: COMMIT while every sync fails. */
static void
test_commit_while_sync_fails(const uint8_t *da)
{
	struct th_fh fa = create(&ca, "a2");
	const size_t n = 3 * PIECE + 1000;
	uint8_t wv[8], cv[8];
	int st;

	faults("ops=sync,err=1");
	TH_STAT(write_unstable(&ca, &fa, da, n, wv), NFS3_OK,
		"2: A writes UNSTABLE");
	st = commit(&ca, &fa, cv);
	check_ok_commit("2", st, cv, wv, &fa, da, n);
	TH_STAT(st, NFS3ERR_IO, "2: COMMIT while syncs fail");
	TH_STAT(commit(&ca, &fa, cv), NFS3ERR_IO, "2: and again");
	TH_CHECK(whole(&ca, &fa, da, n), "2: the data still reads back");
	faults(NULL);
	st = commit(&ca, &fa, cv);
	check_ok_commit("2", st, cv, wv, &fa, da, n);
	TH_CHECK(st == NFS3_OK && memcmp(cv, wv, 8) == 0,
		 "2: healed: COMMIT OK, same verifier (%s)", th_stat_name(st));
}

/* 3: blocks stored early, lost to another file's failed sync. */
static void
test_early_blocks_lost(const uint8_t *da, const uint8_t *db)
{
	struct th_fh fa = create(&ca, "a3"), fb = create(&cb, "b3");
	const size_t n = 3 * PIECE + 100;
	uint8_t wv[8], cv[8];
	int before = objects(), st;

	TH_STAT(write_unstable(&ca, &fa, da, n, wv), NFS3_OK,
		"3: A writes 3 blocks and a bit UNSTABLE");
	/* Its whole blocks are stored in the background: wait for them
	 * (T_WAIT: a stall bound, not a speed limit). */
	T_WAIT(objects() >= before + 3);
	TH_CHECK(objects() == before + 3, "3: A's 3 blocks are stored early");
	faults("ops=sync,err=1,failures=1");
	TH_STAT(th_write(&cb, &fb, 0, db, 10000, FILE_SYNC, NULL), NFS3ERR_IO,
		"3: B's FILE_SYNC write: its sync fails");
	TH_CHECK(objects() == before,
		 "3: the failed sync lost A's stored blocks too (%d objects, "
		 "%d before)",
		 objects(), before);
	st = commit(&ca, &fa, cv);
	check_ok_commit("3", st, cv, wv, &fa, da, n);
	TH_CHECK(st == NFS3_OK && memcmp(cv, wv, 8) == 0,
		 "3: A's COMMIT stored them again: OK, same verifier (%s)",
		 th_stat_name(st));
	TH_STAT(th_write(&cb, &fb, 0, db, 10000, FILE_SYNC, NULL), NFS3_OK,
		"3: B's FILE_SYNC write again");
	TH_CHECK(whole(&cb, &fb, db, 10000), "3: B's file is whole");
	faults(NULL);
}

/* 4: puts fail, early and at the flush. */
static void
test_puts_fail(const uint8_t *da, const uint8_t *db)
{
	struct th_fh fa = create(&ca, "a4"), fb = create(&cb, "b4");
	uint8_t wv[8], cv[8];
	int st, first;

	faults("ops=put,err=1");
	TH_STAT(write_unstable(&ca, &fa, da, BIG, wv), NFS3_OK,
		"4: A writes 512 KiB UNSTABLE (early uploads fail)");
	TH_STAT(th_write(&cb, &fb, 0, db, BIG, UNSTABLE, NULL), NFS3ERR_JUKEBOX,
		"4: B's write forces a flush of A, whose puts fail: B is "
		"told to retry");
	st = commit(&ca, &fa, cv);
	check_ok_commit("4", st, cv, wv, &fa, da, BIG);
	TH_STAT(st, NFS3ERR_IO, "4: A's COMMIT while puts fail");
	TH_CHECK(whole(&ca, &fa, da, BIG), "4: A's data still reads back");
	faults(NULL);
	TH_STAT(write_b(&fb, db, &first), NFS3_OK, "4: healed: B's write");
	st = commit(&ca, &fa, cv);
	check_ok_commit("4", st, cv, wv, &fa, da, BIG);
	TH_CHECK(st == NFS3_OK && memcmp(cv, wv, 8) == 0,
		 "4: A's COMMIT OK, same verifier (%s)", th_stat_name(st));
	TH_STAT(commit(&cb, &fb, cv), NFS3_OK, "4: B commits");
	TH_CHECK(whole(&cb, &fb, db, BIG), "4: B's file is whole");
}

/* 5: data that cannot be stored when the gateway stops. */
static void
test_stop_drops(const uint8_t *da)
{
	struct th_fh fa = create(&ca, "a5");
	const size_t n = 100000;
	uint8_t wv[8], cv[8];
	fattr3 at;
	int st;

	faults("ops=sync,err=1");
	TH_STAT(write_unstable(&ca, &fa, da, n, wv), NFS3_OK,
		"5: A writes UNSTABLE");
	th_disconnect(&ca);
	th_disconnect(&cb);
	th_server_stop(&srv, false);
	faults(NULL);
	TH_REQUIRE(th_server_restart(&srv, false) == 0, "5: restart");
	TH_REQUIRE(th_connect(&ca, srv.port, "/", 0, 0) == 0, "5: reconnect");
	TH_STAT(th_getattr(&ca, &fa, &at), NFS3_OK, "5: getattr");
	TH_CHECK(at.size == 0, "5: the data could not be stored (size %llu)",
		 (unsigned long long)at.size);
	st = commit(&ca, &fa, cv);
	check_ok_commit("5", st, cv, wv, &fa, da, n);
	TH_CHECK(st == NFS3_OK && memcmp(cv, wv, 8) != 0,
		 "5: COMMIT answers another verifier (%s)", th_stat_name(st));
	TH_STAT(write_unstable(&ca, &fa, da, n, wv), NFS3_OK,
		"5: so A resends");
	TH_CHECK(memcmp(cv, wv, 8) == 0,
		 "5: with the verifier COMMIT answered");
	st = commit(&ca, &fa, cv);
	TH_CHECK(st == NFS3_OK && memcmp(cv, wv, 8) == 0,
		 "5: COMMIT OK, same verifier (%s)", th_stat_name(st));
	TH_CHECK(whole(&ca, &fa, da, n), "5: the file is whole");
}

int
main(void)
{
	static uint8_t da[BIG], db[BIG];

	th_fill(1, da, BIG);
	th_fill(2, db, BIG);
	TH_REQUIRE(th_server_start(&srv, "--block-size 64K", NULL) == 0,
		   "start tesserad");
	th_server_fault_store(&srv, NULL, ctl, sizeof ctl);
	/* inline_max 0: B's small FILE_SYNC write must go through the
	 * store, whose failures are what is tested (small files' bytes
	 * in the metadata: nfs_inline_test). */
	th_server_set_args(&srv, "-o buffer_limit=1M -o inline_max=0");
	TH_REQUIRE(th_server_restart(&srv, false) == 0, "restart");
	TH_REQUIRE(th_connect(&ca, srv.port, "/", 0, 0) == 0, "connect A");
	TH_REQUIRE(th_connect(&cb, srv.port, "/", 0, 0) == 0, "connect B");

	test_forced_flush_sync_fails(da, db);
	test_commit_while_sync_fails(da);
	test_early_blocks_lost(da, db);
	test_puts_fail(da, db);
	test_stop_drops(da);

	th_disconnect(&ca);
	th_server_stop(&srv, false);
	TH_CHECK(th_server_fsck(&srv) == 0,
		 "fsck: every block the metadata names is there");
	return th_done();
}
