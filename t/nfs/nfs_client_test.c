/*
 * nfs_client_test.c - the daemon through libnfs's ordinary synchronous
 * client (nfs_mount by URL, open/pwrite/fsync/pread, opendir, rename,
 * symlink, statvfs): the call sequences a stock client makes, including
 * the FSINFO/GETATTR at mount and COMMIT on fsync, as a user of libnfs
 * would see them; and a retransmitted non-idempotent call (same XID, raw
 * layer) answered from the duplicate-request cache.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "t/nfs/tharness.h"

static struct th_server srv;

static void
test_sync_api(void)
{
	struct nfs_context *nfs = nfs_init_context();
	struct nfs_url *url;
	struct nfsfh *fh;
	struct nfsdir *dir;
	struct nfsdirent *de;
	struct nfs_stat_64 st;
	struct statvfs sv;
	char link[64];
	uint8_t *w = malloc(3 << 20), *r = malloc(3 << 20);
	int rc, n = 0, found = 0;

	TH_REQUIRE(nfs && w && r, "nfs_init_context");
	url = nfs_parse_url_dir(nfs, th_server_url(&srv, "/"));
	TH_REQUIRE(url != NULL, "parse %s", th_server_url(&srv, "/"));
	rc = nfs_mount(nfs, url->server, url->path);
	TH_REQUIRE(rc == 0, "nfs_mount (%s)", nfs_get_error(nfs));
	TH_CHECK(nfs_mkdir(nfs, "/d") == 0, "nfs_mkdir /d (%s)",
		 nfs_get_error(nfs));
	rc = nfs_creat(nfs, "/d/f", 0640, &fh);
	TH_REQUIRE(rc == 0, "nfs_creat /d/f (%s)", nfs_get_error(nfs));
	th_fill(5, w, 3 << 20);
	rc = nfs_pwrite(nfs, fh, 0, 3 << 20, w);
	TH_CHECK(rc == 3 << 20, "nfs_pwrite 3 MiB (%d: %s)", rc,
		 nfs_get_error(nfs));
	TH_CHECK(nfs_fsync(nfs, fh) == 0, "nfs_fsync (COMMIT)");
	TH_CHECK(nfs_close(nfs, fh) == 0, "nfs_close");
	rc = nfs_stat64(nfs, "/d/f", &st);
	TH_CHECK(rc == 0 && st.nfs_size == 3 << 20 &&
			 (st.nfs_mode & 07777) == 0640,
		 "nfs_stat64: size 3 MiB, mode 0640");
	rc = nfs_open(nfs, "/d/f", O_RDONLY, &fh);
	TH_REQUIRE(rc == 0, "nfs_open (%s)", nfs_get_error(nfs));
	rc = nfs_pread(nfs, fh, 0, 3 << 20, r);
	TH_CHECK(rc == 3 << 20 && memcmp(w, r, 3 << 20) == 0,
		 "nfs_pread returns the 3 MiB written (%d)", rc);
	nfs_close(nfs, fh);
	TH_CHECK(nfs_symlink(nfs, "f", "/d/l") == 0, "nfs_symlink");
	rc = nfs_readlink(nfs, "/d/l", link, sizeof link);
	TH_CHECK(rc == 0 && strcmp(link, "f") == 0, "nfs_readlink");
	TH_CHECK(nfs_rename(nfs, "/d/f", "/d/g") == 0, "nfs_rename");
	rc = nfs_opendir(nfs, "/d", &dir);
	TH_REQUIRE(rc == 0, "nfs_opendir (%s)", nfs_get_error(nfs));
	while ((de = nfs_readdir(nfs, dir))) {
		if (strcmp(de->name, ".") && strcmp(de->name, ".."))
			n++;
		if (strcmp(de->name, "g") == 0 && de->size == 3 << 20)
			found++;
		if (strcmp(de->name, "l") == 0)
			found++;
	}
	nfs_closedir(nfs, dir);
	TH_CHECK(n == 2 && found == 2,
		 "directory lists g (3 MiB) and l "
		 "(%d entries besides dots)",
		 n);
	rc = nfs_statvfs(nfs, "/", &sv);
	TH_CHECK(rc == 0 && sv.f_bsize > 0, "nfs_statvfs");
	TH_CHECK(nfs_unlink(nfs, "/d/g") == 0 && nfs_unlink(nfs, "/d/l") == 0,
		 "nfs_unlink");
	TH_CHECK(nfs_rmdir(nfs, "/d") == 0, "nfs_rmdir");
	TH_CHECK(nfs_stat64(nfs, "/d", &st) != 0, "/d is gone");
	nfs_destroy_url(url);
	nfs_destroy_context(nfs);
	free(w);
	free(r);
}

/* The same XID sent twice: the second REMOVE/MKDIR/RENAME must not fail
 * with NOENT/EXIST (RFC 1813 section 4.1 on non-idempotent requests). */
static void
test_retransmit(void)
{
	struct th_conn c;
	struct th_obj o;
	int st;

	TH_REQUIRE(th_connect(&c, srv.port, "/", 0, 0) == 0, "MOUNT /");
	th_create(&c, &c.root, "rm-me", GUARDED, NULL, NULL, &o);
	th_create(&c, &c.root, "mv-me", GUARDED, NULL, NULL, &o);

	rpc_set_next_xid(c.rpc, 0x7e550001);
	st = th_remove(&c, &c.root, "rm-me");
	TH_STAT(st, NFS3_OK, "REMOVE");
	rpc_set_next_xid(c.rpc, 0x7e550001);
	st = th_remove(&c, &c.root, "rm-me");
	TH_STAT(st, NFS3_OK, "REMOVE retransmitted with the same XID");

	rpc_set_next_xid(c.rpc, 0x7e550002);
	st = th_mkdir(&c, &c.root, "mk", NULL, &o);
	TH_STAT(st, NFS3_OK, "MKDIR");
	rpc_set_next_xid(c.rpc, 0x7e550002);
	st = th_mkdir(&c, &c.root, "mk", NULL, &o);
	TH_STAT(st, NFS3_OK, "MKDIR retransmitted with the same XID");

	rpc_set_next_xid(c.rpc, 0x7e550003);
	st = th_rename(&c, &c.root, "mv-me", &c.root, "moved");
	TH_STAT(st, NFS3_OK, "RENAME");
	rpc_set_next_xid(c.rpc, 0x7e550003);
	st = th_rename(&c, &c.root, "mv-me", &c.root, "moved");
	TH_STAT(st, NFS3_OK, "RENAME retransmitted with the same XID");

	/* A new XID is a new request and fails as it should. */
	rpc_set_next_xid(c.rpc, 0x7e550004);
	st = th_remove(&c, &c.root, "rm-me");
	TH_STAT(st, NFS3ERR_NOENT, "REMOVE again with a new XID");
	th_disconnect(&c);
}

int
main(void)
{
	TH_REQUIRE(th_server_start(&srv, NULL, NULL) == 0, "tesserad started");
	test_sync_api();
	test_retransmit();
	return th_done();
}
