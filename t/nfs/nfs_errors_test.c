/*
 * nfs_errors_test.c - the error statuses that are not tied to one
 * procedure: STALE (handles of removed files and directories), BADHANDLE
 * (forged: a flipped byte anywhere, truncated, empty, of another volume),
 * ACCES (permission bits against other uids), ISDIR, and NOSPC on volumes
 * formatted with an inode limit and with a small capacity.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t/nfs/tharness.h"

static struct th_server srv;
static struct th_conn cn;

/* Every handle-taking procedure answers want for handle h. */
static void
all_procs(const char *what, const struct th_fh *h, const struct th_fh *dir,
	  int want)
{
	uint8_t buf[64], verf[8] = {0};
	struct th_dirpage p;
	struct th_obj o;
	fattr3 a;
	uint32_t g;
	sattr3 sa = th_sattr_mode(0600);

	TH_STAT(th_getattr(&cn, h, &a), want, "GETATTR, %s", what);
	TH_STAT(th_setattr(&cn, h, &sa, NULL, NULL), want, "SETATTR, %s", what);
	TH_STAT(th_access(&cn, h, ACCESS3_READ, &g), want, "ACCESS, %s", what);
	TH_STAT(th_read(&cn, h, 0, 16, buf, NULL, NULL), want, "READ, %s",
		what);
	TH_STAT(th_write(&cn, h, 0, "x", 1, FILE_SYNC, NULL), want, "WRITE, %s",
		what);
	TH_STAT(th_commit(&cn, h, 0, 0, NULL), want, "COMMIT, %s", what);
	TH_STAT(th_lookup(&cn, h, "x", &o), want, "LOOKUP in dir, %s", what);
	TH_STAT(th_create(&cn, h, "x", GUARDED, NULL, NULL, &o), want,
		"CREATE in dir, %s", what);
	TH_STAT(th_mkdir(&cn, h, "x", NULL, &o), want, "MKDIR in dir, %s",
		what);
	TH_STAT(th_remove(&cn, h, "x"), want, "REMOVE in dir, %s", what);
	TH_STAT(th_readdir(&cn, h, 0, verf, 4096, &p), want, "READDIR, %s",
		what);
	th_dirpage_free(&p);
	TH_STAT(th_readdirplus(&cn, h, 0, verf, 4096, 8192, &p), want,
		"READDIRPLUS, %s", what);
	th_dirpage_free(&p);
	TH_STAT(th_rename(&cn, dir, "src", h, "x"), want,
		"RENAME to a dir with %s", what);
	TH_STAT(th_link(&cn, h, dir, "lnk", NULL), want, "LINK of %s", what);
	TH_STAT(th_fsstat(&cn, h, &(FSSTAT3res){0}), want, "FSSTAT, %s", what);
	TH_STAT(th_pathconf(&cn, h, &(PATHCONF3res){0}), want, "PATHCONF, %s",
		what);
}

static void
test_stale(void)
{
	struct th_obj o;
	struct th_fh d, f, sub;
	int st;

	st = th_mkdir(&cn, &cn.root, "stale", NULL, &o);
	TH_REQUIRE(st == NFS3_OK, "MKDIR stale");
	d = o.fh;
	th_create_fh(&cn, &d, "src", (sattr3[]){th_sattr_mode(0644)});
	f = th_create_fh(&cn, &d, "gone", (sattr3[]){th_sattr_mode(0644)});
	th_remove(&cn, &d, "gone");
	all_procs("handle of a removed file", &f, &d, NFS3ERR_STALE);
	st = th_mkdir(&cn, &d, "subgone", NULL, &o);
	sub = o.fh;
	th_rmdir(&cn, &d, "subgone");
	TH_STAT(th_lookup(&cn, &sub, "x", &o), NFS3ERR_STALE,
		"LOOKUP in a removed directory");
	TH_STAT(th_create(&cn, &sub, "x", GUARDED, NULL, NULL, &o),
		NFS3ERR_STALE, "CREATE in a removed directory");
	/* A handle stays stale across a restart (inode numbers are never
	 * reused), and a live one stays valid. */
	TH_REQUIRE(th_server_restart(&srv, false) == 0, "restart");
	th_disconnect(&cn);
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0, "reconnect");
	TH_STAT(th_getattr(&cn, &f, &(fattr3){0}), NFS3ERR_STALE,
		"removed file still STALE after restart");
	TH_STAT(th_getattr(&cn, &d, &(fattr3){0}), NFS3_OK,
		"live directory handle valid after restart");
}

static void
test_badhandle(void)
{
	struct th_obj o;
	struct th_fh d, f, bad;
	int st;

	st = th_mkdir(&cn, &cn.root, "bad", NULL, &o);
	TH_REQUIRE(st == NFS3_OK, "MKDIR bad");
	d = o.fh;
	th_create_fh(&cn, &d, "src", (sattr3[]){th_sattr_mode(0644)});
	f = th_create_fh(&cn, &d, "f", (sattr3[]){th_sattr_mode(0644)});
	th_diag("file handle length %u", f.len);
	TH_CHECK(f.len > 0 && f.len <= 64,
		 "handle length within 1..64 "
		 "(%u)",
		 f.len);

	/* Flip each byte in turn: every one must be detected. */
	{
		unsigned bad_ok = 0, first_fail = 0;
		int first_st = 0;

		for (uint32_t i = 0; i < f.len; i++) {
			bad = f;
			bad.data[i] ^= 0x01;
			st = th_getattr(&cn, &bad, &(fattr3){0});
			if (st == NFS3ERR_BADHANDLE || st == NFS3ERR_STALE)
				bad_ok++;
			else if (!first_st) {
				first_st = st ? st : 1000000;
				first_fail = i;
			}
		}
		TH_CHECK(bad_ok == f.len,
			 "GETATTR with one bit flipped, each "
			 "of %u positions: BADHANDLE/STALE for %u (first miss "
			 "at byte %u: %s)",
			 f.len, bad_ok, first_fail,
			 first_st == 1000000 ? "NFS3_OK"
					     : th_stat_name(first_st));
	}
	bad = f;
	bad.data[bad.len - 1] ^= 0x80;
	all_procs("a forged handle (last byte flipped)", &bad, &d,
		  NFS3ERR_BADHANDLE);
	bad = f;
	bad.len = f.len / 2;
	TH_STAT(th_getattr(&cn, &bad, &(fattr3){0}), NFS3ERR_BADHANDLE,
		"GETATTR with a truncated handle");
	bad.len = 0;
	TH_STAT(th_getattr(&cn, &bad, &(fattr3){0}), NFS3ERR_BADHANDLE,
		"GETATTR with an empty handle");
	bad = f;
	bad.len = f.len + 4 <= 64 ? f.len + 4 : 64;
	memset(bad.data + f.len, 0, bad.len - f.len);
	if (bad.len != f.len)
		TH_STAT(th_getattr(&cn, &bad, &(fattr3){0}), NFS3ERR_BADHANDLE,
			"GETATTR with 4 bytes appended");
	memset(&bad, 0x5a, sizeof bad);
	bad.len = f.len;
	TH_STAT(th_getattr(&cn, &bad, &(fattr3){0}), NFS3ERR_BADHANDLE,
		"GETATTR with a handle of random bytes");
	/* The second handle of RENAME and LINK is checked too. */
	bad = d;
	bad.data[bad.len - 1] ^= 0x01;
	TH_STAT(th_rename(&cn, &d, "src", &bad, "x"), NFS3ERR_BADHANDLE,
		"RENAME with a forged target directory");
	TH_STAT(th_link(&cn, &f, &bad, "x", NULL), NFS3ERR_BADHANDLE,
		"LINK with a forged target directory");
	TH_STAT(th_lookup(&cn, &d, "src", &o), NFS3_OK,
		"the source is still in place");
}

static void
test_acces(void)
{
	struct th_obj o;
	struct th_fh d, priv, ro, own;
	uint8_t buf[16];
	sattr3 sa;
	int st;

	st = th_mkdir(&cn, &cn.root, "perm", NULL, &o);
	TH_REQUIRE(st == NFS3_OK, "MKDIR perm (0755, root)");
	d = o.fh;
	priv = th_create_fh(&cn, &d, "private",
			    (sattr3[]){th_sattr_mode(0600)});
	ro = th_create_fh(&cn, &d, "readonly", (sattr3[]){th_sattr_mode(0444)});
	th_write(&cn, &priv, 0, "secret", 6, FILE_SYNC, NULL);
	st = th_mkdir(&cn, &d, "closed", &(sattr3){0}, &o);
	sa = th_sattr_mode(0700);
	th_setattr(&cn, &o.fh, &sa, NULL, NULL);
	th_create_fh(&cn, &o.fh, "inside", (sattr3[]){th_sattr_mode(0644)});
	own = o.fh;

	th_set_cred(&cn, 1000, 1000, 0, NULL);
	TH_STAT(th_read(&cn, &priv, 0, 6, buf, NULL, NULL), NFS3ERR_ACCES,
		"READ of a 0600 root file as uid 1000");
	TH_STAT(th_write(&cn, &priv, 0, "x", 1, FILE_SYNC, NULL), NFS3ERR_ACCES,
		"WRITE to a 0600 root file as uid 1000");
	TH_STAT(th_write(&cn, &ro, 0, "x", 1, FILE_SYNC, NULL), NFS3ERR_ACCES,
		"WRITE to a 0444 file as uid 1000");
	TH_STAT(th_create(&cn, &d, "mine", GUARDED, NULL, NULL, &o),
		NFS3ERR_ACCES, "CREATE in a 0755 root directory as uid 1000");
	TH_STAT(th_mkdir(&cn, &d, "mydir", NULL, &o), NFS3ERR_ACCES,
		"MKDIR in a 0755 root directory as uid 1000");
	TH_STAT(th_remove(&cn, &d, "private"), NFS3ERR_ACCES,
		"REMOVE in a 0755 root directory as uid 1000");
	TH_STAT(th_rename(&cn, &d, "private", &d, "p2"), NFS3ERR_ACCES,
		"RENAME in a 0755 root directory as uid 1000");
	TH_STAT(th_lookup(&cn, &own, "inside", &o), NFS3ERR_ACCES,
		"LOOKUP in a 0700 root directory as uid 1000");
	sa = th_sattr_none();
	sa.size.set_it = 1;
	sa.size.set_size3_u.size = 0;
	TH_STAT(th_setattr(&cn, &priv, &sa, NULL, NULL), NFS3ERR_ACCES,
		"SETATTR size on a 0600 root file as uid 1000");
	TH_STAT(th_getattr(&cn, &priv, &(fattr3){0}), NFS3_OK,
		"GETATTR needs no permission");

	/* Root is not subject to the read/write bits. */
	th_set_cred(&cn, 0, 0, 0, NULL);
	TH_STAT(th_write(&cn, &ro, 0, "x", 1, FILE_SYNC, NULL), NFS3_OK,
		"WRITE to a 0444 file as root");

	/* The sticky bit: others may create but not remove others' files. */
	sa = th_sattr_mode(01777);
	th_setattr(&cn, &d, &sa, NULL, NULL);
	th_set_cred(&cn, 1000, 1000, 0, NULL);
	st = th_create(&cn, &d, "u1000", GUARDED, NULL, NULL, &o);
	TH_STAT(st, NFS3_OK, "CREATE in a 1777 directory as uid 1000");
	th_set_cred(&cn, 1001, 1001, 0, NULL);
	/* Linux's unlink(2) says EPERM here; ACCES is as defensible. */
	st = th_remove(&cn, &d, "u1000");
	TH_CHECK(st == NFS3ERR_PERM || st == NFS3ERR_ACCES,
		 "REMOVE of another user's file in a sticky directory: PERM "
		 "or ACCES (got %s)",
		 th_stat_name(st));
	th_set_cred(&cn, 1000, 1000, 0, NULL);
	TH_STAT(th_remove(&cn, &d, "u1000"), NFS3_OK,
		"REMOVE of one's own file in a sticky directory");
	th_set_cred(&cn, 0, 0, 0, NULL);
}

static void
test_nospc(void)
{
	struct th_server s2;
	struct th_conn c2;
	struct th_obj o;
	uint8_t *buf;
	int st = NFS3_OK, last = NFS3_OK;
	char name[32];
	int made = 0;

	/* An inode limit of 10 (the root counts as one). */
	TH_REQUIRE(th_server_start(&s2, "--inodes 10", NULL) == 0,
		   "tesserad on a volume with --inodes 10");
	TH_REQUIRE(th_connect(&c2, s2.port, "/", 0, 0) == 0, "MOUNT");
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof name, "f%d", i);
		st = th_create(&c2, &c2.root, name, GUARDED, NULL, NULL, &o);
		if (st != NFS3_OK)
			break;
		made++;
	}
	TH_STAT(st, NFS3ERR_NOSPC, "CREATE past --inodes 10 (after %d)", made);
	TH_CHECK(made >= 8 && made <= 10, "8..10 files fit (%d)", made);
	TH_STAT(th_mkdir(&c2, &c2.root, "d", NULL, &o), NFS3ERR_NOSPC,
		"MKDIR past the inode limit");
	TH_STAT(th_symlink(&c2, &c2.root, "s", "t", &o), NFS3ERR_NOSPC,
		"SYMLINK past the inode limit");
	TH_STAT(th_remove(&c2, &c2.root, "f0"), NFS3_OK, "REMOVE one");
	TH_STAT(th_create(&c2, &c2.root, "again", GUARDED, NULL, NULL, &o),
		NFS3_OK, "CREATE fits again after a REMOVE");
	{
		FSSTAT3res fs;

		st = th_fsstat(&c2, &c2.root, &fs);
		TH_CHECK(st == NFS3_OK && fs.FSSTAT3res_u.resok.tfiles == 10 &&
				 fs.FSSTAT3res_u.resok.ffiles == 0,
			 "FSSTAT tfiles 10, ffiles 0 (%llu, %llu)",
			 (unsigned long long)fs.FSSTAT3res_u.resok.tfiles,
			 (unsigned long long)fs.FSSTAT3res_u.resok.ffiles);
	}
	th_disconnect(&c2);
	th_server_destroy(&s2);

	/* A capacity of 4 MiB. */
	TH_REQUIRE(th_server_start(&s2, "--capacity 4194304", NULL) == 0,
		   "tesserad on a volume with --capacity 4 MiB");
	TH_REQUIRE(th_connect(&c2, s2.port, "/", 0, 0) == 0, "MOUNT");
	st = th_create(&c2, &c2.root, "big", GUARDED, NULL, NULL, &o);
	TH_REQUIRE(st == NFS3_OK, "CREATE big");
	buf = calloc(1, 1 << 20);
	made = 0;
	for (int i = 0; i < 8; i++) {
		last = th_write(&c2, &o.fh, (uint64_t)i << 20, buf, 1 << 20,
				FILE_SYNC, NULL);
		if (last != NFS3_OK)
			break;
		made++;
	}
	TH_STAT(last, NFS3ERR_NOSPC,
		"FILE_SYNC WRITE past the capacity "
		"(after %d MiB)",
		made);
	TH_CHECK(made >= 3 && made <= 4, "3..4 MiB fit (%d)", made);
	{
		FSSTAT3res fs;

		st = th_fsstat(&c2, &c2.root, &fs);
		TH_CHECK(st == NFS3_OK &&
				 fs.FSSTAT3res_u.resok.tbytes == 4194304 &&
				 fs.FSSTAT3res_u.resok.fbytes <= 1048576,
			 "FSSTAT: tbytes 4 MiB, fbytes <= 1 MiB (%llu)",
			 (unsigned long long)fs.FSSTAT3res_u.resok.fbytes);
	}
	free(buf);
	th_disconnect(&c2);
	th_server_destroy(&s2);
}

int
main(void)
{
	TH_REQUIRE(th_server_start(&srv, NULL, NULL) == 0, "tesserad started");
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0,
		   "MOUNT / as root");
	test_stale();
	test_badhandle();
	test_acces();
	test_nospc();
	th_disconnect(&cn);
	return th_done();
}
