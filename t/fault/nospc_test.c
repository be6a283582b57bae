/*
 * nospc_test - the object directory on a small tmpfs (8 MiB): writes fill
 * it until the gateway answers NFS3ERR_NOSPC; nothing acknowledged is
 * lost; once space is freed (an unrelated filler file removed) writes
 * succeed again without a restart, and fsck is clean.
 * Skipped (77) when tmpfs cannot be mounted (not root, no CAP_SYS_ADMIN).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t/nfs/tharness.h"

#define FSIZE (512 * 1024)
#define MAXF  64

static struct th_server srv;
static struct th_conn cn;

static int
write_file(int i, const uint8_t *data)
{
	char name[16];
	struct th_obj o;
	int st;

	snprintf(name, sizeof name, "f%d", i);
	st = th_create(&cn, &cn.root, name, UNCHECKED,
		       (sattr3[]){th_sattr_mode(0644)}, NULL, &o);
	if (st != NFS3_OK)
		return st;
	return th_write(&cn, &o.fh, 0, data, FSIZE, FILE_SYNC, NULL);
}

static bool
read_back(int i, const uint8_t *want)
{
	static uint8_t buf[FSIZE];
	char name[16];
	struct th_obj o;
	uint64_t off = 0;

	snprintf(name, sizeof name, "f%d", i);
	if (th_lookup(&cn, &cn.root, name, &o) != NFS3_OK)
		return false;
	while (off < FSIZE) {
		uint32_t got = 0;
		bool eof;

		if (th_read(&cn, &o.fh, off, 65536, buf + off, &got, &eof) !=
			    NFS3_OK ||
		    got == 0)
			return false;
		off += got;
	}
	return memcmp(buf, want, FSIZE) == 0;
}

int
main(void)
{
	static uint8_t data[MAXF][FSIZE];
	const char *filler;
	bool acked[MAXF] = {false};
	int st = NFS3_OK, i, nacked = 0;

	for (i = 0; i < MAXF; i++)
		th_fill(500 + (uint64_t)i, data[i], FSIZE);
	TH_REQUIRE(th_server_start(&srv, NULL, NULL) == 0, "start tesserad");
	th_server_stop(&srv, false);
	/* the object directory on an 8 MiB tmpfs, with 2 MiB of something
	 * else, removed later to free space */
	filler = th_server_tmpfs(&srv, "obj", 8, 4 * FSIZE);
	TH_REQUIRE(th_server_restart(&srv, false) == 0, "restart");
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0, "connect");

	for (i = 0; i < MAXF; i++) {
		st = write_file(i, data[i]);
		if (st != NFS3_OK)
			break;
		acked[i] = true;
		nacked++;
	}
	TH_CHECK(st == NFS3ERR_NOSPC,
		 "the full store "
		 "refuses the write after %d files of %d KiB: %s",
		 nacked, FSIZE / 1024, th_stat_name(st));
	TH_CHECK(th_null(&cn) == NFS3_OK, "the daemon still answers");
	for (int j = 0; j < MAXF; j++)
		if (acked[j])
			TH_CHECK(read_back(j, data[j]),
				 "f%d (acknowledged) "
				 "reads back on the full store",
				 j);

	TH_REQUIRE(unlink(filler) == 0, "remove the filler (frees 2 MiB)");
	st = write_file(i, data[i]);
	TH_STAT(st, NFS3_OK, "writes succeed again without a restart");
	if (st == NFS3_OK)
		acked[i] = true;
	for (int j = 0; j < MAXF; j++)
		if (acked[j])
			TH_CHECK(read_back(j, data[j]),
				 "f%d reads back after "
				 "the recovery",
				 j);
	th_disconnect(&cn);
	th_server_stop(&srv, false);
	TH_CHECK(th_server_fsck(&srv) == 0, "fsck clean");
	th_tmpfs_unmount();
	return th_done();
}
