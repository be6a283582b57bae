/*
 * metafull_test - the metadata directory (LMDB) on a small tmpfs: creates
 * fill it until the gateway answers NFS3ERR_NOSPC; every name created
 * before is there; once space is freed (an unrelated filler file removed)
 * creates succeed again without a restart, and fsck is clean.
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

#define MAXN   200000
#define FILLER (512 * 1024)

static struct th_server srv;
static struct th_conn cn;

/* Long names make every entry cost a few hundred bytes of metadata. */
static int
create(int i)
{
	char name[200];
	struct th_obj o;

	snprintf(name, sizeof name, "%0180d", i);
	return th_create(&cn, &cn.root, name, GUARDED,
			 (sattr3[]){th_sattr_mode(0644)}, NULL, &o);
}

static bool
exists(int i)
{
	char name[200];
	struct th_obj o;

	snprintf(name, sizeof name, "%0180d", i);
	return th_lookup(&cn, &cn.root, name, &o) == NFS3_OK;
}

int
main(void)
{
	const char *filler;
	int st = NFS3_OK, i, missing = 0;

	TH_REQUIRE(th_server_start(&srv, NULL, NULL) == 0, "start tesserad");
	th_server_stop(&srv, false);
	/* the metadata directory on a 2 MiB tmpfs, 512 KiB of it filler */
	filler = th_server_tmpfs(&srv, "meta", 2, FILLER);
	TH_REQUIRE(th_server_restart(&srv, false) == 0, "restart");
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0, "connect");

	for (i = 0; i < MAXN; i++) {
		st = create(i);
		if (st != NFS3_OK)
			break;
	}
	TH_STAT(st, NFS3ERR_NOSPC,
		"the full metadata directory refuses "
		"CREATE number %d",
		i + 1);
	TH_CHECK(th_null(&cn) == NFS3_OK, "the daemon still answers");
	for (int j = 0; j < i; j++)
		missing += !exists(j);
	TH_CHECK(missing == 0,
		 "all %d acknowledged creates are there "
		 "(%d missing)",
		 i, missing);

	TH_REQUIRE(unlink(filler) == 0, "remove the filler (frees 512 KiB)");
	st = create(i);
	TH_STAT(st, NFS3_OK, "creates succeed again without a restart");
	TH_CHECK(exists(i), "the new name is there");
	th_disconnect(&cn);
	th_server_stop(&srv, false);
	TH_CHECK(th_server_fsck(&srv) == 0, "fsck clean");
	th_tmpfs_unmount();
	return th_done();
}
