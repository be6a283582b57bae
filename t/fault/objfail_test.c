/*
 * objfail_test - tesserad on an object store that fails (the fault
 * wrapper, set with `tessera config --storage` between restarts):
 *   - writes that cannot be stored get NFS3ERR_IO or NFS3ERR_JUKEBOX,
 *     never NFS3_OK;
 *   - reads that cannot be served get IO/JUKEBOX, never wrong data;
 *   - with random failures (behind the retry wrapper), whatever was
 *     acknowledged stays readable once the store is healthy again, and
 *     fsck finds every block the metadata refers to (a block is stored
 *     before the metadata that refers to it).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t/nfs/tharness.h"

#define FSIZE  (256 * 1024)
#define NFILES 12

static struct th_server srv;
static struct th_conn cn;
static char plain_url[300];

/* Restart the daemon on another storage URL ("" = the plain one). */
static void
restart_on(const char *wrap)
{
	char url[1000], arg[1400];

	snprintf(url, sizeof url, "%s%s", wrap, plain_url);
	th_disconnect(&cn);
	th_server_stop(&srv, false);
	/* --force: the point is a store that fails, which config's
	 * read-back of a block would refuse. */
	snprintf(arg, sizeof arg, "config --force %s --storage '%s'",
		 srv.meta_url, url);
	TH_REQUIRE(th_tessera(&srv, "%s", arg) == 0,
		   "tessera config --storage %s", url);
	TH_REQUIRE(th_server_restart(&srv, false) == 0, "restart");
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0, "connect");
}

static bool
is_failure(int st)
{
	return st == NFS3ERR_IO || st == NFS3ERR_JUKEBOX;
}

static int
lookup(const char *name, struct th_fh *fh)
{
	struct th_obj o;
	int st = th_lookup(&cn, &cn.root, name, &o);

	if (st == NFS3_OK)
		*fh = o.fh;
	return st;
}

/* Read the whole file: NFS3_OK only with exactly want. */
static int
read_check(const struct th_fh *fh, const uint8_t *want, bool *wrong)
{
	static uint8_t buf[FSIZE];
	uint64_t off = 0;

	*wrong = false;
	while (off < FSIZE) {
		uint32_t got = 0;
		bool eof = false;
		int st = th_read(&cn, fh, off, 65536, buf + off, &got, &eof);

		if (st != NFS3_OK)
			return st;
		if (got == 0)
			break;
		off += got;
	}
	*wrong = off != FSIZE || memcmp(buf, want, FSIZE) != 0;
	return NFS3_OK;
}

int
main(void)
{
	static uint8_t data[NFILES][FSIZE];
	bool acked[NFILES] = {false}, wrong;
	struct th_fh fh;
	struct th_obj o;
	COMMIT3res cr;
	char name[16];
	int st, nok = 0, nfail = 0, rok = 0, rfail = 0;

	for (int i = 0; i < NFILES; i++)
		th_fill(100 + (uint64_t)i, data[i], FSIZE);
	TH_REQUIRE(th_server_start(&srv, NULL, NULL) == 0, "start tesserad");
	snprintf(plain_url, sizeof plain_url, "%s", srv.storage_url);
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0, "connect");
	TH_REQUIRE(th_create(&cn, &cn.root, "f0", GUARDED,
			     (sattr3[]){th_sattr_mode(0644)}, NULL,
			     &o) == NFS3_OK,
		   "create f0");
	TH_STAT(th_write(&cn, &o.fh, 0, data[0], FSIZE, FILE_SYNC, NULL),
		NFS3_OK, "f0 written FILE_SYNC on a healthy store");
	acked[0] = true;

	/* Every put fails: nothing new can become stable. */
	restart_on("fault(err=1,ops=put):");
	TH_REQUIRE(th_create(&cn, &cn.root, "f1", GUARDED,
			     (sattr3[]){th_sattr_mode(0644)}, NULL,
			     &o) == NFS3_OK,
		   "create f1 (metadata only)");
	st = th_write(&cn, &o.fh, 0, data[1], FSIZE, FILE_SYNC, NULL);
	TH_CHECK(is_failure(st), "FILE_SYNC write while puts fail: %s",
		 th_stat_name(st));
	st = th_write(&cn, &o.fh, 0, data[1], 65536, UNSTABLE, NULL);
	if (st == NFS3_OK) {
		st = th_commit(&cn, &o.fh, 0, 0, &cr);
		TH_CHECK(is_failure(st),
			 "COMMIT of an UNSTABLE write while "
			 "puts fail: %s",
			 th_stat_name(st));
	} else {
		TH_CHECK(is_failure(st), "UNSTABLE write while puts fail: %s",
			 th_stat_name(st));
	}
	TH_STAT(lookup("f0", &fh), NFS3_OK, "lookup f0");
	st = read_check(&fh, data[0], &wrong);
	TH_CHECK(st == NFS3_OK && !wrong,
		 "f0 still reads back right "
		 "(gets work): %s",
		 th_stat_name(st));

	/* Every get fails: reads fail, they never invent data. */
	restart_on("fault(err=1,ops=get):");
	TH_STAT(lookup("f0", &fh), NFS3_OK, "lookup f0");
	st = read_check(&fh, data[0], &wrong);
	TH_CHECK(is_failure(st), "READ while gets fail: %s", th_stat_name(st));

	/* Random failures behind retries: some calls fail, none lies. */
	restart_on("retry(attempts=2,base=5ms,cap=20ms):"
		   "fault(err=0.5,seed=11):");
	for (int i = 2; i < NFILES; i++) {
		snprintf(name, sizeof name, "f%d", i);
		st = th_create(&cn, &cn.root, name, GUARDED,
			       (sattr3[]){th_sattr_mode(0644)}, NULL, &o);
		if (st != NFS3_OK) {
			TH_STAT(st, NFS3_OK, "create %s", name);
			continue;
		}
		st = th_write(&cn, &o.fh, 0, data[i], FSIZE, FILE_SYNC, NULL);
		if (st == NFS3_OK)
			acked[i] = true, nok++;
		else if (is_failure(st))
			nfail++;
		else
			TH_STAT(st, NFS3_OK, "write %s", name);
	}
	for (int i = 0; i < NFILES; i++) {
		snprintf(name, sizeof name, "f%d", i);
		if (!acked[i] || lookup(name, &fh) != NFS3_OK)
			continue;
		st = read_check(&fh, data[i], &wrong);
		if (st == NFS3_OK)
			rok++;
		else if (is_failure(st))
			rfail++;
		TH_CHECK(st == NFS3_OK ? !wrong : is_failure(st),
			 "%s under random faults: %s%s", name, th_stat_name(st),
			 wrong ? " with WRONG data" : "");
	}
	th_diag("random faults: %d writes acknowledged, %d refused; %d "
		"reads right, %d refused",
		nok, nfail, rok, rfail);

	/* Healthy again: everything acknowledged is there. */
	restart_on("");
	for (int i = 0; i < NFILES; i++) {
		snprintf(name, sizeof name, "f%d", i);
		if (!acked[i])
			continue;
		TH_STAT(lookup(name, &fh), NFS3_OK, "lookup %s", name);
		st = read_check(&fh, data[i], &wrong);
		TH_CHECK(st == NFS3_OK && !wrong,
			 "acknowledged %s reads back "
			 "once the store is healthy",
			 name);
	}
	snprintf(name, sizeof name, "f1");
	TH_STAT(lookup(name, &fh), NFS3_OK, "lookup f1");
	TH_STAT(th_write(&cn, &fh, 0, data[1], FSIZE, FILE_SYNC, NULL), NFS3_OK,
		"writes succeed again");
	th_disconnect(&cn);
	th_server_stop(&srv, false);
	TH_CHECK(th_server_fsck(&srv) == 0,
		 "fsck: every block the metadata refers to is stored");
	return th_done();
}
