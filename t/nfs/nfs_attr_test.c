/*
 * nfs_attr_test.c - NULL, GETATTR, SETATTR (mode, uid, gid, size, times,
 * the ctime guard), ACCESS against AUTH_SYS credentials of other users,
 * FSSTAT on a volume with a capacity, FSINFO and PATHCONF.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t/nfs/tharness.h"

#define CAPACITY (10ULL << 30)

static struct th_server srv;
static struct th_conn cn;

static void
make_file(const struct th_fh *dir, const char *name, uint32_t mode,
	  struct th_obj *o)
{
	sattr3 sa = th_sattr_mode(mode);
	int st = th_create(&cn, dir, name, GUARDED, &sa, NULL, o);

	TH_REQUIRE(st == NFS3_OK && o->fh_follows,
		   "CREATE %s (status %s, handle %d)", name, th_stat_name(st),
		   o->fh_follows);
}

static void
test_getattr(void)
{
	fattr3 a;
	struct th_obj f;
	int st;

	TH_STAT(th_null(&cn), NFS3_OK, "NULL procedure");
	st = th_getattr(&cn, &cn.root, &a);
	TH_STAT(st, NFS3_OK, "GETATTR of the export root");
	TH_CHECK(a.type == NF3DIR, "root is a directory (type %d)", a.type);
	TH_CHECK((a.mode & 07777) == 0755, "root mode 0755 (got 0%o)",
		 a.mode & 07777);
	TH_CHECK(a.uid == 0 && a.gid == 0, "root owned by 0:0 (got %u:%u)",
		 a.uid, a.gid);
	TH_CHECK(a.nlink >= 2, "root nlink >= 2 (got %u)", a.nlink);

	make_file(&cn.root, "ga", 0640, &f);
	TH_CHECK(f.attr_follows, "CREATE returns post-op attributes");
	st = th_getattr(&cn, &f.fh, &a);
	TH_STAT(st, NFS3_OK, "GETATTR of a new file");
	TH_CHECK(a.type == NF3REG && (a.mode & 07777) == 0640 && a.size == 0 &&
			 a.nlink == 1,
		 "new file: REG 0640 size 0 nlink 1 (got type %d 0%o size "
		 "%llu nlink %u)",
		 a.type, a.mode & 07777, (unsigned long long)a.size, a.nlink);
	TH_CHECK(a.fileid == f.attr.fileid, "fileid stable between calls");
	TH_CHECK(a.uid == 0,
		 "file created as uid 0 on a no_root_squash "
		 "export is owned by 0 (got %u)",
		 a.uid);
}

static void
test_setattr(void)
{
	struct th_obj f;
	SETATTR3res r;
	fattr3 a, b;
	sattr3 sa;
	nfstime3 bad;
	uint8_t buf[8192], zero[8192];
	uint32_t got;
	bool eof;
	int st;

	make_file(&cn.root, "sa", 0644, &f);

	sa = th_sattr_mode(04711);
	st = th_setattr(&cn, &f.fh, &sa, NULL, &r);
	TH_STAT(st, NFS3_OK, "SETATTR mode 04711");
	TH_CHECK(r.SETATTR3res_u.resok.obj_wcc.after.attributes_follow &&
			 (r.SETATTR3res_u.resok.obj_wcc.after.post_op_attr_u
				  .attributes.mode &
			  07777) == 04711,
		 "SETATTR post-op attributes show mode 04711");
	th_getattr(&cn, &f.fh, &a);
	TH_CHECK((a.mode & 07777) == 04711, "GETATTR mode 04711 (got 0%o)",
		 a.mode & 07777);

	sa = th_sattr_none();
	sa.uid.set_it = 1;
	sa.uid.set_uid3_u.uid = 1234;
	sa.gid.set_it = 1;
	sa.gid.set_gid3_u.gid = 5678;
	st = th_setattr(&cn, &f.fh, &sa, NULL, NULL);
	TH_STAT(st, NFS3_OK, "SETATTR uid 1234 gid 5678 as root");
	th_getattr(&cn, &f.fh, &a);
	TH_CHECK(a.uid == 1234 && a.gid == 5678,
		 "owner now 1234:5678 "
		 "(got %u:%u)",
		 a.uid, a.gid);

	/* A non-owner may not chown. */
	th_set_cred(&cn, 4321, 4321, 0, NULL);
	sa = th_sattr_none();
	sa.uid.set_it = 1;
	sa.uid.set_uid3_u.uid = 4321;
	st = th_setattr(&cn, &f.fh, &sa, NULL, NULL);
	TH_STAT(st, NFS3ERR_PERM, "SETATTR uid by a non-owner non-root");
	sa = th_sattr_mode(0777);
	st = th_setattr(&cn, &f.fh, &sa, NULL, NULL);
	TH_STAT(st, NFS3ERR_PERM, "SETATTR mode by a non-owner non-root");
	th_set_cred(&cn, 0, 0, 0, NULL);

	/* Times: client time, then server time. */
	sa = th_sattr_none();
	sa.atime.set_it = SET_TO_CLIENT_TIME;
	sa.atime.set_atime_u.atime.seconds = 1000000000;
	sa.atime.set_atime_u.atime.nseconds = 123456789;
	sa.mtime.set_it = SET_TO_CLIENT_TIME;
	sa.mtime.set_mtime_u.mtime.seconds = 1100000000;
	sa.mtime.set_mtime_u.mtime.nseconds = 987654321;
	st = th_setattr(&cn, &f.fh, &sa, NULL, NULL);
	TH_STAT(st, NFS3_OK, "SETATTR atime/mtime to client time");
	th_getattr(&cn, &f.fh, &a);
	TH_CHECK(a.atime.seconds == 1000000000 && a.atime.nseconds == 123456789,
		 "atime set exactly (got %u.%09u)", a.atime.seconds,
		 a.atime.nseconds);
	TH_CHECK(a.mtime.seconds == 1100000000 && a.mtime.nseconds == 987654321,
		 "mtime set exactly (got %u.%09u)", a.mtime.seconds,
		 a.mtime.nseconds);
	TH_CHECK(a.ctime.seconds > 1500000000,
		 "ctime is the server's "
		 "clock, not the client's (got %u)",
		 a.ctime.seconds);
	sa = th_sattr_none();
	sa.mtime.set_it = SET_TO_SERVER_TIME;
	st = th_setattr(&cn, &f.fh, &sa, NULL, NULL);
	TH_STAT(st, NFS3_OK, "SETATTR mtime to server time");
	th_getattr(&cn, &f.fh, &b);
	TH_CHECK(b.mtime.seconds > 1500000000,
		 "mtime moved to the server "
		 "clock (got %u)",
		 b.mtime.seconds);

	/* Guard: a ctime that does not match -> NOT_SYNC, nothing changed. */
	th_getattr(&cn, &f.fh, &a);
	bad = a.ctime;
	bad.seconds -= 1;
	sa = th_sattr_mode(0600);
	st = th_setattr(&cn, &f.fh, &sa, &bad, NULL);
	TH_STAT(st, NFS3ERR_NOT_SYNC, "SETATTR with a stale ctime guard");
	th_getattr(&cn, &f.fh, &b);
	TH_CHECK((b.mode & 07777) == (a.mode & 07777),
		 "guarded SETATTR that failed changed nothing (0%o)",
		 b.mode & 07777);
	st = th_setattr(&cn, &f.fh, &sa, &a.ctime, NULL);
	TH_STAT(st, NFS3_OK, "SETATTR with the current ctime as guard");
	th_getattr(&cn, &f.fh, &b);
	TH_CHECK((b.mode & 07777) == 0600, "guarded SETATTR applied");

	/* Size: write, truncate, extend: the extension reads zeros. */
	th_fill(7, buf, sizeof buf);
	st = th_write(&cn, &f.fh, 0, buf, sizeof buf, FILE_SYNC, NULL);
	TH_STAT(st, NFS3_OK, "WRITE 8 KiB");
	sa = th_sattr_none();
	sa.size.set_it = 1;
	sa.size.set_size3_u.size = 100;
	st = th_setattr(&cn, &f.fh, &sa, NULL, NULL);
	TH_STAT(st, NFS3_OK, "SETATTR size 100 (truncate)");
	th_getattr(&cn, &f.fh, &a);
	TH_CHECK(a.size == 100, "size 100 after truncate (got %llu)",
		 (unsigned long long)a.size);
	sa.size.set_size3_u.size = 8192;
	st = th_setattr(&cn, &f.fh, &sa, NULL, NULL);
	TH_STAT(st, NFS3_OK, "SETATTR size 8192 (extend)");
	memset(buf + 100, 0xee, sizeof buf - 100);
	st = th_read(&cn, &f.fh, 0, 8192, buf, &got, &eof);
	TH_STAT(st, NFS3_OK, "READ after truncate+extend");
	memset(zero, 0, sizeof zero);
	th_fill(7, zero, 100);
	memset(zero + 100, 0, sizeof zero - 100);
	TH_CHECK(got == 8192 && memcmp(buf, zero, 8192) == 0,
		 "first 100 bytes kept, bytes 100..8191 read as zeros "
		 "(got %u bytes)",
		 got);
	TH_CHECK(eof, "READ to the end sets eof");
	sa.size.set_size3_u.size = 0;
	st = th_setattr(&cn, &f.fh, &sa, NULL, NULL);
	TH_STAT(st, NFS3_OK, "SETATTR size 0");
	th_getattr(&cn, &f.fh, &a);
	TH_CHECK(a.size == 0, "size 0 after truncate");

	/* Size on a directory is refused. */
	st = th_setattr(&cn, &cn.root, &sa, NULL, NULL);
	TH_CHECK(st == NFS3ERR_ISDIR || st == NFS3ERR_INVAL,
		 "SETATTR size on a directory: ISDIR or INVAL (got %s)",
		 th_stat_name(st));
}

static void
test_access(void)
{
	struct th_obj f, d;
	uint32_t g;
	const uint32_t all = ACCESS3_READ | ACCESS3_LOOKUP | ACCESS3_MODIFY |
			     ACCESS3_EXTEND | ACCESS3_DELETE | ACCESS3_EXECUTE;
	uint32_t groups[1] = {600};
	sattr3 sa;
	int st;

	make_file(&cn.root, "acc", 0640, &f);
	sa = th_sattr_none();
	sa.uid.set_it = 1;
	sa.uid.set_uid3_u.uid = 500;
	sa.gid.set_it = 1;
	sa.gid.set_gid3_u.gid = 600;
	th_setattr(&cn, &f.fh, &sa, NULL, NULL);

	st = th_access(&cn, &f.fh, all, &g);
	TH_STAT(st, NFS3_OK, "ACCESS as root");
	TH_CHECK((g & (ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND)) ==
			 (ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND),
		 "root may read and write a 0640 file (granted 0x%x)", g);
	TH_CHECK(!(g & ACCESS3_EXECUTE),
		 "root may not execute a file "
		 "without x bits (granted 0x%x)",
		 g);

	th_set_cred(&cn, 500, 999, 0, NULL);
	st = th_access(&cn, &f.fh, all, &g);
	TH_STAT(st, NFS3_OK, "ACCESS as the owner");
	TH_CHECK((g & (ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND)) ==
				 (ACCESS3_READ | ACCESS3_MODIFY |
				  ACCESS3_EXTEND) &&
			 !(g & ACCESS3_EXECUTE),
		 "owner gets rw- (granted 0x%x)", g);

	th_set_cred(&cn, 501, 600, 0, NULL);
	st = th_access(&cn, &f.fh, all, &g);
	TH_CHECK(st == NFS3_OK && (g & ACCESS3_READ) &&
			 !(g &
			   (ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_EXECUTE)),
		 "group member (primary gid) gets r-- (granted 0x%x)", g);

	th_set_cred(&cn, 502, 1, 1, groups);
	st = th_access(&cn, &f.fh, all, &g);
	TH_CHECK(st == NFS3_OK && (g & ACCESS3_READ) &&
			 !(g & (ACCESS3_MODIFY | ACCESS3_EXTEND)),
		 "group member (supplementary gid) gets r-- (granted 0x%x)", g);

	th_set_cred(&cn, 503, 503, 0, NULL);
	st = th_access(&cn, &f.fh, all, &g);
	TH_CHECK(st == NFS3_OK && !(g & (ACCESS3_READ | ACCESS3_MODIFY |
					 ACCESS3_EXTEND | ACCESS3_EXECUTE)),
		 "other uid gets --- on 0640 (granted 0x%x)", g);
	st = th_access(&cn, &f.fh, ACCESS3_READ, &g);
	TH_CHECK(st == NFS3_OK && !(g & ~ACCESS3_READ),
		 "ACCESS grants no bit that was not asked for (0x%x)", g);

	/* Directory: lookup/modify/extend/delete from the bits. */
	th_set_cred(&cn, 0, 0, 0, NULL);
	st = th_mkdir(&cn, &cn.root, "accdir", NULL, &d);
	TH_REQUIRE(st == NFS3_OK, "MKDIR accdir");
	th_set_cred(&cn, 503, 503, 0, NULL);
	st = th_access(&cn, &d.fh, all, &g);
	TH_CHECK(st == NFS3_OK && (g & ACCESS3_LOOKUP) && (g & ACCESS3_READ) &&
			 !(g &
			   (ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE)),
		 "other uid on a 0755 directory: read+lookup only (0x%x)", g);
	th_set_cred(&cn, 0, 0, 0, NULL);
	st = th_access(&cn, &d.fh, all, &g);
	TH_CHECK(st == NFS3_OK && (g & (ACCESS3_LOOKUP | ACCESS3_MODIFY |
					ACCESS3_EXTEND | ACCESS3_DELETE)) ==
					  (ACCESS3_LOOKUP | ACCESS3_MODIFY |
					   ACCESS3_EXTEND | ACCESS3_DELETE),
		 "root on a directory: lookup+modify+extend+delete (0x%x)", g);
}

static void
test_fs(void)
{
	FSSTAT3res fs;
	FSINFO3res fi;
	PATHCONF3res pc;
	int st;

	st = th_fsstat(&cn, &cn.root, &fs);
	TH_STAT(st, NFS3_OK, "FSSTAT");
	TH_CHECK(fs.FSSTAT3res_u.resok.tbytes == CAPACITY,
		 "FSSTAT tbytes equals --capacity %llu (got %llu)",
		 (unsigned long long)CAPACITY,
		 (unsigned long long)fs.FSSTAT3res_u.resok.tbytes);
	TH_CHECK(fs.FSSTAT3res_u.resok.fbytes <= CAPACITY &&
			 fs.FSSTAT3res_u.resok.abytes <=
				 fs.FSSTAT3res_u.resok.fbytes,
		 "abytes <= fbytes <= tbytes (%llu %llu)",
		 (unsigned long long)fs.FSSTAT3res_u.resok.abytes,
		 (unsigned long long)fs.FSSTAT3res_u.resok.fbytes);
	TH_CHECK(fs.FSSTAT3res_u.resok.afiles <= fs.FSSTAT3res_u.resok.ffiles &&
			 fs.FSSTAT3res_u.resok.ffiles <=
				 fs.FSSTAT3res_u.resok.tfiles,
		 "afiles <= ffiles <= tfiles");

	st = th_fsinfo(&cn, &cn.root, &fi);
	TH_STAT(st, NFS3_OK, "FSINFO");
	TH_CHECK(fi.FSINFO3res_u.resok.rtmax == 1048576,
		 "FSINFO rtmax 1 MiB (got %u)", fi.FSINFO3res_u.resok.rtmax);
	TH_CHECK(fi.FSINFO3res_u.resok.wtmax == 1048576,
		 "FSINFO wtmax 1 MiB (got %u)", fi.FSINFO3res_u.resok.wtmax);
	TH_CHECK(fi.FSINFO3res_u.resok.rtpref > 0 &&
			 fi.FSINFO3res_u.resok.rtpref <=
				 fi.FSINFO3res_u.resok.rtmax &&
			 fi.FSINFO3res_u.resok.wtpref > 0 &&
			 fi.FSINFO3res_u.resok.wtpref <=
				 fi.FSINFO3res_u.resok.wtmax,
		 "rtpref/wtpref within (0, max]");
	TH_CHECK(fi.FSINFO3res_u.resok.dtpref > 0, "dtpref > 0");
	TH_CHECK(fi.FSINFO3res_u.resok.maxfilesize >= (1ULL << 40),
		 "maxfilesize >= 1 TiB (got %llu)",
		 (unsigned long long)fi.FSINFO3res_u.resok.maxfilesize);
	TH_CHECK((fi.FSINFO3res_u.resok.properties &
		  (FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS |
		   FSF3_CANSETTIME)) == (FSF3_LINK | FSF3_SYMLINK |
					 FSF3_HOMOGENEOUS | FSF3_CANSETTIME),
		 "FSINFO properties LINK|SYMLINK|HOMOGENEOUS|CANSETTIME "
		 "(0x%x)",
		 fi.FSINFO3res_u.resok.properties);

	st = th_pathconf(&cn, &cn.root, &pc);
	TH_STAT(st, NFS3_OK, "PATHCONF");
	TH_CHECK(pc.PATHCONF3res_u.resok.name_max == 255,
		 "PATHCONF name_max 255 (got %u)",
		 pc.PATHCONF3res_u.resok.name_max);
	TH_CHECK(pc.PATHCONF3res_u.resok.no_trunc,
		 "PATHCONF no_trunc (long names are refused)");
	TH_CHECK(pc.PATHCONF3res_u.resok.linkmax >= 1000,
		 "PATHCONF linkmax >= 1000 (got %u)",
		 pc.PATHCONF3res_u.resok.linkmax);
	TH_CHECK(pc.PATHCONF3res_u.resok.chown_restricted,
		 "PATHCONF chown_restricted");
	TH_CHECK(!pc.PATHCONF3res_u.resok.case_insensitive &&
			 pc.PATHCONF3res_u.resok.case_preserving,
		 "PATHCONF case sensitive and preserving");
}

int
main(void)
{
	char args[64];

	snprintf(args, sizeof args, "--capacity %llu",
		 (unsigned long long)CAPACITY);
	TH_REQUIRE(th_server_start(&srv, args, NULL) == 0, "tesserad started");
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0,
		   "MOUNT / as root");
	test_getattr();
	test_setattr();
	test_access();
	test_fs();
	th_disconnect(&cn);
	return th_done();
}
