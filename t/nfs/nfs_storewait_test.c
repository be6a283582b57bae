/*
 * nfs_storewait_test - a store that does not answer holds no worker
 * (store_wait_max, cache/flush.c "bounded flushes").
 *
 * The volume's store sits behind the fault wrapper, whose hold=1
 * (objstore/fault.c) keeps every PUT waiting while the test wants: the
 * store that does not answer.  With store_wait_max=1s and two workers:
 *   - UNSTABLE WRITEs are still answered OK (buffered);
 *   - a COMMIT answers NFS3ERR_JUKEBOX, and so does a FILE_SYNC WRITE,
 *     more of them than there are workers, and a WRITE and a READ
 *     still get answers after them: no worker is held;
 *   - the buffered data reads back byte for byte meanwhile;
 *   - a file whose COMMIT answered JUKEBOX is removed: the REMOVE
 *     answers, not held by the flush that waits for the store;
 *   - once the store answers again, the COMMIT the client retries
 *     answers OK with the WRITEs' verifier (retried while JUKEBOX, as a
 *     client does), and after a SIGKILL and a restart every byte reads
 *     back from the store;
 *   - after a restart (no block in memory), with every GET held, READs
 *     answer JUKEBOX, more of them than workers, and a WRITE after
 *     them is answered; once the GETs go on, the retried READ answers
 *     the file's bytes;
 *   - the daemon stops with SIGTERM, losing nothing.
 * Nothing here measures time: the bound only has to end the waits.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t/nfs/tharness.h"

#define BS      (64 * 1024)
#define SIZE    (3 * BS + 1000) /* three sealed blocks and a tail */
#define WORKERS 2

static struct th_server srv;
static struct th_conn cn;
static char ctl[300], held[310];
static uint8_t data[SIZE], data2[BS];

static bool
is_held(void)
{
	return access(held, F_OK) == 0;
}

/* Read [0, len) of fh and compare with want. */
static bool
reads_back(const struct th_fh *fh, const uint8_t *want, uint32_t len)
{
	static uint8_t buf[SIZE];
	uint32_t off = 0, got;
	bool eof = false;

	while (off < len) {
		if (th_read(&cn, fh, off, len - off < BS ? len - off : BS,
			    buf + off, &got, &eof) != NFS3_OK ||
		    got == 0)
			return false;
		off += got;
	}
	return memcmp(buf, want, len) == 0;
}

/* COMMIT, retried while it answers JUKEBOX (what a client does); the
 * last status, and the verifier into verf. */
static int
commit_retried(const struct th_fh *fh, uint8_t verf[8], int *jukeboxes)
{
	COMMIT3res res;
	int st;

	*jukeboxes = 0;
	for (;;) {
		st = th_commit(&cn, fh, 0, 0, &res);
		if (st != NFS3ERR_JUKEBOX || *jukeboxes > 1000)
			break;
		(*jukeboxes)++;
		usleep(100000);
	}
	if (st == NFS3_OK)
		memcpy(verf, res.COMMIT3res_u.resok.verf, 8);
	return st;
}

int
main(void)
{
	uint8_t verf[8], cverf[8];
	struct th_fh a, b;
	WRITE3res wr;
	int st, n, jb;

	th_fill(16, data, SIZE);
	th_fill(17, data2, BS);
	TH_REQUIRE(th_server_start(&srv, "--block-size 64K", NULL) == 0,
		   "start tesserad");
	th_server_fault_store(&srv, NULL, ctl, sizeof ctl);
	snprintf(held, sizeof held, "%s.held", ctl);
	th_server_set_args(&srv, "-o store_wait_max=1s -o workers=2");
	TH_REQUIRE(th_server_restart(&srv, false) == 0, "restart");
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0, "connect");
	a = th_create_fh(&cn, &cn.root, "a", NULL);
	b = th_create_fh(&cn, &cn.root, "b", NULL);

	/* The store stops answering PUTs. */
	th_store_faults(ctl, "hold=1,ops=put");
	st = th_write(&cn, &a, 0, data, SIZE, UNSTABLE, &wr);
	TH_STAT(st, NFS3_OK, "an UNSTABLE WRITE is buffered while PUTs hang");
	memcpy(verf, wr.WRITE3res_u.resok.verf, 8);
	TH_REQUIRE(T_WAIT(is_held()), "the sealed blocks' PUTs are held");

	st = th_commit(&cn, &a, 0, 0, NULL);
	TH_STAT(st, NFS3ERR_JUKEBOX,
		"COMMIT answers JUKEBOX while the PUTs "
		"hang");
	TH_CHECK(is_held(), "the PUTs are still held");
	for (n = 0; n < 2 * WORKERS; n++) {
		st = th_write(&cn, &b, 0, data2, BS, FILE_SYNC, NULL);
		TH_STAT(st, NFS3ERR_JUKEBOX,
			"FILE_SYNC WRITE %d answers "
			"JUKEBOX",
			n);
		st = th_commit(&cn, &a, 0, 0, NULL);
		TH_STAT(st, NFS3ERR_JUKEBOX, "COMMIT %d again answers JUKEBOX",
			n);
	}
	/* A file removed while its flush waits for the store: the REMOVE
	 * does not wait for the flush either. */
	{
		struct th_fh c = th_create_fh(&cn, &cn.root, "c", NULL);

		st = th_write(&cn, &c, 0, data2, BS, UNSTABLE, NULL);
		TH_STAT(st, NFS3_OK, "c written UNSTABLE");
		st = th_commit(&cn, &c, 0, 0, NULL);
		TH_STAT(st, NFS3ERR_JUKEBOX, "c's COMMIT answers JUKEBOX");
		st = th_remove(&cn, &cn.root, "c");
		TH_STAT(st, NFS3_OK,
			"REMOVE of c answers while its flush "
			"waits for the store");
	}
	/* More waits than workers have ended: the workers are free. */
	st = th_write(&cn, &a, SIZE, "x", 1, UNSTABLE, NULL);
	TH_STAT(st, NFS3_OK, "a WRITE after them is answered");
	TH_CHECK(reads_back(&a, data, SIZE),
		 "a's buffered bytes read back while the store hangs");
	TH_CHECK(reads_back(&b, data2, BS),
		 "b's buffered bytes read back while the store hangs");
	TH_CHECK(is_held(), "the PUTs are still held");

	/* The store answers again. */
	th_store_faults(ctl, NULL);
	st = commit_retried(&a, cverf, &jb);
	TH_STAT(st, NFS3_OK,
		"a retried COMMIT of a answers OK once the "
		"store is back (%d more JUKEBOX first)",
		jb);
	TH_CHECK(memcmp(cverf, verf, 8) == 0,
		 "with the verifier of the WRITEs: nothing to resend");
	st = commit_retried(&b, cverf, &jb);
	TH_STAT(st, NFS3_OK, "a retried COMMIT of b answers OK");

	/* Committed means durable: a crash loses none of it. */
	TH_REQUIRE(th_server_restart(&srv, true) == 0, "SIGKILL, restart");
	th_disconnect(&cn);
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0, "reconnect");
	TH_CHECK(reads_back(&a, data, SIZE), "a reads back byte for byte "
					     "from the store after the crash");
	TH_CHECK(reads_back(&b, data2, BS), "b reads back byte for byte");
	{
		static uint8_t x[1];
		uint32_t got = 0;
		bool eof = false;

		TH_CHECK(th_read(&cn, &a, SIZE, 1, x, &got, &eof) == NFS3_OK &&
				 got == 1 && x[0] == 'x',
			 "and the WRITE sent while the store hung too");
	}

	/* A READ whose GET hangs: a fresh process holds no block. */
	TH_REQUIRE(th_server_restart(&srv, false) == 0, "restart");
	th_disconnect(&cn);
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0, "reconnect");
	th_store_faults(ctl, "hold=1,ops=get");
	for (n = 0; n < 2 * WORKERS; n++) {
		static uint8_t buf[BS];

		st = th_read(&cn, &a, (uint64_t)(n % 3) * BS, BS, buf, NULL,
			     NULL);
		TH_STAT(st, NFS3ERR_JUKEBOX,
			"READ %d answers JUKEBOX while "
			"its GET hangs",
			n);
	}
	TH_CHECK(is_held(), "the GETs are held");
	st = th_write(&cn, &b, BS, "y", 1, UNSTABLE, NULL);
	TH_STAT(st, NFS3_OK, "a WRITE after them is answered");
	th_store_faults(ctl, NULL);
	{
		static uint8_t buf[BS];
		uint32_t got = 0;

		jb = 0;
		while ((st = th_read(&cn, &a, 0, BS, buf, &got, NULL)) ==
			       NFS3ERR_JUKEBOX &&
		       jb < 1000) {
			jb++;
			usleep(100000);
		}
		TH_STAT(st, NFS3_OK,
			"the READ retried once the store is "
			"back answers (%d more JUKEBOX first)",
			jb);
		TH_CHECK(got == BS && memcmp(buf, data, BS) == 0,
			 "with the file's bytes");
	}
	TH_CHECK(reads_back(&a, data, SIZE), "a reads back byte for byte");
	th_disconnect(&cn);
	th_server_stop(&srv, false);
	TH_CHECK(th_server_log_count(&srv, "lost at close") == 0,
		 "nothing lost at the stop");
	TH_CHECK(th_server_fsck(&srv) == 0, "fsck clean");
	th_server_destroy(&srv);
	return th_done();
}
