/*
 * nfs_names_test.c - the namespace procedures: LOOKUP, CREATE (UNCHECKED,
 * GUARDED, EXCLUSIVE and its retransmit), MKDIR, SYMLINK, READLINK, MKNOD
 * (fifo, socket, chr, blk; devices need root), REMOVE, RMDIR, RENAME
 * (across directories, over files and directories, into its own subtree),
 * LINK (link counts).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t/nfs/tharness.h"

static struct th_server srv;
static struct th_conn cn;

static bool
fh_eq(const struct th_fh *a, const struct th_fh *b)
{
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static uint32_t
nlink_of(const struct th_fh *fh)
{
	fattr3 a;

	if (th_getattr(&cn, fh, &a) != NFS3_OK)
		return (uint32_t)-1;
	return a.nlink;
}

static void
test_lookup(void)
{
	struct th_obj o;
	struct th_fh d, f;
	fattr3 ra;
	int st;

	d = th_mkdir_fh(&cn, &cn.root, "ld");
	f = th_create_fh(&cn, &d, "file", NULL);
	st = th_lookup(&cn, &d, "file", &o);
	TH_STAT(st, NFS3_OK, "LOOKUP ld/file");
	TH_CHECK(fh_eq(&o.fh, &f), "LOOKUP returns the handle CREATE gave");
	TH_CHECK(o.attr_follows && o.attr.type == NF3REG,
		 "LOOKUP returns the object's attributes");
	TH_CHECK(o.dir_attributes.attributes_follow &&
			 o.dir_attributes.post_op_attr_u.attributes.type ==
				 NF3DIR,
		 "LOOKUP returns the directory's attributes");
	st = th_lookup(&cn, &d, "nonexistent", &o);
	TH_STAT(st, NFS3ERR_NOENT, "LOOKUP of a missing name");
	st = th_lookup(&cn, &f, "x", &o);
	TH_STAT(st, NFS3ERR_NOTDIR, "LOOKUP in a regular file");
	st = th_lookup(&cn, &d, ".", &o);
	TH_CHECK(st == NFS3_OK && fh_eq(&o.fh, &d),
		 "LOOKUP . is the "
		 "directory itself (%s)",
		 th_stat_name(st));
	st = th_lookup(&cn, &d, "..", &o);
	TH_CHECK(st == NFS3_OK && fh_eq(&o.fh, &cn.root),
		 "LOOKUP .. of a subdirectory is the root (%s)",
		 th_stat_name(st));
	st = th_lookup(&cn, &cn.root, "..", &o);
	th_getattr(&cn, &cn.root, &ra);
	TH_CHECK(st == NFS3_OK && o.attr_follows && o.attr.fileid == ra.fileid,
		 "LOOKUP .. at the export root stays at the root (%s, "
		 "fileid %llu vs %llu)",
		 th_stat_name(st), (unsigned long long)o.attr.fileid,
		 (unsigned long long)ra.fileid);
	st = th_lookup(&cn, &d, "", &o);
	TH_CHECK(st == NFS3ERR_NOENT || st == NFS3ERR_ACCES ||
			 st == NFS3ERR_INVAL,
		 "LOOKUP of an empty name fails (%s)", th_stat_name(st));
}

static void
test_create(void)
{
	struct th_obj o, o2;
	struct th_fh d;
	uint8_t v1[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	uint8_t v2[8] = {8, 7, 6, 5, 4, 3, 2, 1};
	sattr3 sa;
	fattr3 a;
	uint32_t got;
	char buf[16];
	int st;

	d = th_mkdir_fh(&cn, &cn.root, "cd");

	sa = th_sattr_mode(0600);
	st = th_create(&cn, &d, "u", UNCHECKED, &sa, NULL, &o);
	TH_STAT(st, NFS3_OK, "CREATE UNCHECKED new");
	TH_CHECK(o.fh_follows && o.attr_follows &&
			 (o.attr.mode & 07777) == 0600,
		 "CREATE returns handle and attributes with mode 0600");
	TH_CHECK(o.dir_wcc.after.attributes_follow,
		 "CREATE returns the "
		 "directory's post-op attributes");
	th_write(&cn, &o.fh, 0, "hello", 5, FILE_SYNC, NULL);
	sa = th_sattr_mode(0644);
	st = th_create(&cn, &d, "u", UNCHECKED, &sa, NULL, &o2);
	TH_STAT(st, NFS3_OK, "CREATE UNCHECKED over an existing file");
	TH_CHECK(o2.fh_follows && fh_eq(&o.fh, &o2.fh),
		 "UNCHECKED on an existing file returns the same file");
	th_getattr(&cn, &o.fh, &a);
	TH_CHECK(a.size == 5,
		 "UNCHECKED without size keeps the data "
		 "(size %llu)",
		 (unsigned long long)a.size);
	sa = th_sattr_none();
	sa.size.set_it = 1;
	sa.size.set_size3_u.size = 0;
	st = th_create(&cn, &d, "u", UNCHECKED, &sa, NULL, &o2);
	th_getattr(&cn, &o.fh, &a);
	TH_CHECK(st == NFS3_OK && a.size == 0,
		 "UNCHECKED with size 0 "
		 "truncates the existing file (%s, size %llu)",
		 th_stat_name(st), (unsigned long long)a.size);

	st = th_create(&cn, &d, "g", GUARDED, NULL, NULL, &o);
	TH_STAT(st, NFS3_OK, "CREATE GUARDED new");
	st = th_create(&cn, &d, "g", GUARDED, NULL, NULL, &o2);
	TH_STAT(st, NFS3ERR_EXIST, "CREATE GUARDED over an existing name");
	st = th_create(&cn, &cn.root, "cd", GUARDED, NULL, NULL, &o2);
	TH_STAT(st, NFS3ERR_EXIST, "CREATE GUARDED over a directory");

	st = th_create(&cn, &d, "x", EXCLUSIVE, NULL, v1, &o);
	TH_STAT(st, NFS3_OK, "CREATE EXCLUSIVE new");
	TH_REQUIRE(o.fh_follows, "EXCLUSIVE returns a handle");
	st = th_create(&cn, &d, "x", EXCLUSIVE, NULL, v1, &o2);
	TH_STAT(st, NFS3_OK, "CREATE EXCLUSIVE retransmit, same verifier");
	TH_CHECK(o2.fh_follows && fh_eq(&o.fh, &o2.fh),
		 "the retransmit returns the same handle");
	st = th_create(&cn, &d, "x", EXCLUSIVE, NULL, v2, &o2);
	TH_STAT(st, NFS3ERR_EXIST, "CREATE EXCLUSIVE, different verifier");
	/* The client sets the real attributes with SETATTR afterwards. */
	sa = th_sattr_mode(0640);
	st = th_setattr(&cn, &o.fh, &sa, NULL, NULL);
	TH_STAT(st, NFS3_OK, "SETATTR after EXCLUSIVE");
	th_getattr(&cn, &o.fh, &a);
	TH_CHECK((a.mode & 07777) == 0640 && a.size == 0,
		 "EXCLUSIVE file: mode 0640 after SETATTR, size 0");
	st = th_write(&cn, &o.fh, 0, "abc", 3, FILE_SYNC, NULL);
	TH_STAT(st, NFS3_OK, "WRITE to the EXCLUSIVE-created file");
	st = th_read(&cn, &o.fh, 0, sizeof buf, buf, &got, NULL);
	TH_CHECK(st == NFS3_OK && got == 3 && memcmp(buf, "abc", 3) == 0,
		 "READ it back");
	st = th_create(&cn, &d, "g", EXCLUSIVE, NULL, v1, &o2);
	TH_STAT(st, NFS3ERR_EXIST,
		"CREATE EXCLUSIVE over a file created "
		"GUARDED");

	st = th_create(&cn, &o.fh, "y", GUARDED, NULL, NULL, &o2);
	TH_STAT(st, NFS3ERR_NOTDIR, "CREATE inside a regular file");
}

static void
test_mkdir_symlink(void)
{
	struct th_obj o, o2;
	struct th_fh d;
	fattr3 a, pa;
	char target[4096 + 1], buf[8192];
	int st;

	th_getattr(&cn, &cn.root, &pa);
	st = th_mkdir(&cn, &cn.root, "md", NULL, &o);
	TH_STAT(st, NFS3_OK, "MKDIR md");
	d = o.fh;
	TH_CHECK(o.attr_follows && o.attr.type == NF3DIR &&
			 (o.attr.mode & 07777) == 0755 && o.attr.nlink == 2,
		 "new directory: DIR 0755 nlink 2 (got %d 0%o %u)", o.attr.type,
		 o.attr.mode & 07777, o.attr.nlink);
	th_getattr(&cn, &cn.root, &a);
	TH_CHECK(a.nlink == pa.nlink + 1,
		 "parent nlink +1 after MKDIR "
		 "(%u -> %u)",
		 pa.nlink, a.nlink);
	st = th_mkdir(&cn, &cn.root, "md", NULL, &o2);
	TH_STAT(st, NFS3ERR_EXIST, "MKDIR over an existing directory");

	st = th_symlink(&cn, &d, "sl", "../some/where", &o);
	TH_STAT(st, NFS3_OK, "SYMLINK");
	TH_CHECK(o.attr_follows && o.attr.type == NF3LNK &&
			 o.attr.size == strlen("../some/where"),
		 "symlink attributes: LNK, size = target length (%llu)",
		 (unsigned long long)o.attr.size);
	st = th_readlink(&cn, &o.fh, buf, sizeof buf);
	TH_STAT(st, NFS3_OK, "READLINK");
	TH_CHECK(strcmp(buf, "../some/where") == 0,
		 "READLINK returns the "
		 "target (got '%s')",
		 buf);
	st = th_readlink(&cn, &d, buf, sizeof buf);
	TH_STAT(st, NFS3ERR_INVAL, "READLINK of a directory");
	st = th_symlink(&cn, &d, "sl", "x", &o2);
	TH_STAT(st, NFS3ERR_EXIST, "SYMLINK over an existing name");
	/* libnfs 4.0 encodes paths of at most 1024 bytes. */
	memset(target, 'a', 1000);
	target[1000] = 0;
	st = th_symlink(&cn, &d, "long", target, &o);
	TH_STAT(st, NFS3_OK, "SYMLINK with a 1000-byte target");
	st = th_readlink(&cn, &o.fh, buf, sizeof buf);
	TH_CHECK(st == NFS3_OK && strcmp(buf, target) == 0,
		 "READLINK of the 1000-byte target");
}

static void
test_mknod(void)
{
	struct th_obj o;
	struct th_fh d;
	int st;

	d = th_mkdir_fh(&cn, &cn.root, "nd");
	st = th_mknod(&cn, &d, "fifo", NF3FIFO, 0644, 0, 0, &o);
	TH_STAT(st, NFS3_OK, "MKNOD fifo");
	TH_CHECK(o.attr_follows && o.attr.type == NF3FIFO &&
			 (o.attr.mode & 07777) == 0644,
		 "fifo attributes (type %d mode 0%o)", o.attr.type,
		 o.attr.mode & 07777);
	st = th_mknod(&cn, &d, "sock", NF3SOCK, 0600, 0, 0, &o);
	TH_STAT(st, NFS3_OK, "MKNOD socket");
	TH_CHECK(o.attr_follows && o.attr.type == NF3SOCK, "socket type");
	st = th_mknod(&cn, &d, "chr", NF3CHR, 0600, 1, 3, &o);
	TH_STAT(st, NFS3_OK, "MKNOD chr 1,3 as root");
	TH_CHECK(o.attr_follows && o.attr.type == NF3CHR &&
			 o.attr.rdev.specdata1 == 1 &&
			 o.attr.rdev.specdata2 == 3,
		 "chr device numbers 1,3 (got %u,%u)", o.attr.rdev.specdata1,
		 o.attr.rdev.specdata2);
	st = th_mknod(&cn, &d, "blk", NF3BLK, 0600, 8, 1, &o);
	TH_STAT(st, NFS3_OK, "MKNOD blk 8,1 as root");
	TH_CHECK(o.attr_follows && o.attr.type == NF3BLK &&
			 o.attr.rdev.specdata1 == 8 &&
			 o.attr.rdev.specdata2 == 1,
		 "blk device numbers 8,1");
	st = th_mknod(&cn, &d, "fifo", NF3FIFO, 0644, 0, 0, &o);
	TH_STAT(st, NFS3ERR_EXIST, "MKNOD over an existing name");
	st = th_mknod(&cn, &d, "reg", NF3REG, 0644, 0, 0, &o);
	TH_STAT(st, NFS3ERR_BADTYPE, "MKNOD of a regular file");
	st = th_mknod(&cn, &d, "dir", NF3DIR, 0755, 0, 0, &o);
	TH_STAT(st, NFS3ERR_BADTYPE, "MKNOD of a directory");

	/* Non-root: devices refused, fifo allowed in a writable dir. */
	{
		sattr3 sa = th_sattr_mode(0777);

		th_setattr(&cn, &d, &sa, NULL, NULL);
	}
	th_set_cred(&cn, 1000, 1000, 0, NULL);
	st = th_mknod(&cn, &d, "chr2", NF3CHR, 0600, 1, 3, &o);
	TH_STAT(st, NFS3ERR_PERM, "MKNOD chr as uid 1000");
	st = th_mknod(&cn, &d, "fifo2", NF3FIFO, 0600, 0, 0, &o);
	TH_STAT(st, NFS3_OK, "MKNOD fifo as uid 1000");
	TH_CHECK(o.attr_follows && o.attr.uid == 1000,
		 "the fifo is owned by uid 1000 (got %u)", o.attr.uid);
	th_set_cred(&cn, 0, 0, 0, NULL);
}

static void
test_remove_rmdir(void)
{
	struct th_obj o;
	struct th_fh d, sub, f;
	fattr3 a, pa;
	int st;

	d = th_mkdir_fh(&cn, &cn.root, "rd");
	f = th_create_fh(&cn, &d, "f", NULL);
	sub = th_mkdir_fh(&cn, &d, "sub");
	th_create_fh(&cn, &sub, "inner", NULL);

	st = th_remove(&cn, &d, "f");
	TH_STAT(st, NFS3_OK, "REMOVE a file");
	st = th_lookup(&cn, &d, "f", &o);
	TH_STAT(st, NFS3ERR_NOENT, "LOOKUP after REMOVE");
	st = th_getattr(&cn, &f, &a);
	TH_STAT(st, NFS3ERR_STALE, "GETATTR of the removed file's handle");
	st = th_remove(&cn, &d, "f");
	TH_STAT(st, NFS3ERR_NOENT, "REMOVE a missing name");
	st = th_remove(&cn, &d, "sub");
	TH_CHECK(st == NFS3ERR_ISDIR || st == NFS3ERR_PERM,
		 "REMOVE of a directory: ISDIR (or PERM) (got %s)",
		 th_stat_name(st));

	st = th_rmdir(&cn, &d, "sub");
	TH_STAT(st, NFS3ERR_NOTEMPTY, "RMDIR of a non-empty directory");
	th_create_fh(&cn, &d, "plain", NULL);
	st = th_rmdir(&cn, &d, "plain");
	TH_STAT(st, NFS3ERR_NOTDIR, "RMDIR of a regular file");
	st = th_rmdir(&cn, &d, "missing");
	TH_STAT(st, NFS3ERR_NOENT, "RMDIR of a missing name");
	st = th_rmdir(&cn, &d, ".");
	TH_CHECK(st == NFS3ERR_INVAL || st == NFS3ERR_ACCES ||
			 st == NFS3ERR_NOTEMPTY,
		 "RMDIR . is refused (%s)", th_stat_name(st));
	st = th_remove(&cn, &sub, "inner");
	TH_STAT(st, NFS3_OK, "REMOVE sub/inner");
	th_getattr(&cn, &d, &pa);
	st = th_rmdir(&cn, &d, "sub");
	TH_STAT(st, NFS3_OK, "RMDIR of the now empty directory");
	th_getattr(&cn, &d, &a);
	TH_CHECK(a.nlink == pa.nlink - 1,
		 "parent nlink -1 after RMDIR "
		 "(%u -> %u)",
		 pa.nlink, a.nlink);
	st = th_getattr(&cn, &sub, &a);
	TH_STAT(st, NFS3ERR_STALE, "GETATTR of the removed directory");
}

static void
test_rename(void)
{
	struct th_obj o;
	struct th_fh a, b, f, g, da, db, dc, dd;
	fattr3 at;
	int st;

	a = th_mkdir_fh(&cn, &cn.root, "ra");
	b = th_mkdir_fh(&cn, &cn.root, "rb");
	f = th_create_fh(&cn, &a, "f", NULL);

	st = th_rename(&cn, &a, "f", &b, "f2");
	TH_STAT(st, NFS3_OK, "RENAME across directories");
	st = th_lookup(&cn, &b, "f2", &o);
	TH_CHECK(st == NFS3_OK && fh_eq(&o.fh, &f),
		 "the file is found at its new name with the same handle");
	st = th_lookup(&cn, &a, "f", &o);
	TH_STAT(st, NFS3ERR_NOENT, "the old name is gone");

	g = th_create_fh(&cn, &b, "g", NULL);
	st = th_rename(&cn, &b, "f2", &b, "g");
	TH_STAT(st, NFS3_OK, "RENAME over an existing file");
	st = th_lookup(&cn, &b, "g", &o);
	TH_CHECK(st == NFS3_OK && fh_eq(&o.fh, &f), "g is now the renamed "
						    "file");
	st = th_getattr(&cn, &g, &at);
	TH_STAT(st, NFS3ERR_STALE, "the replaced file's handle is stale");

	st = th_rename(&cn, &b, "g", &b, "g");
	TH_STAT(st, NFS3_OK, "RENAME onto itself is a no-op");
	st = th_lookup(&cn, &b, "g", &o);
	TH_STAT(st, NFS3_OK, "the file is still there");

	da = th_mkdir_fh(&cn, &a, "da");
	db = th_mkdir_fh(&cn, &a, "db");
	st = th_rename(&cn, &a, "da", &a, "db");
	TH_STAT(st, NFS3_OK, "RENAME a directory over an empty directory");
	st = th_getattr(&cn, &db, &at);
	TH_STAT(st, NFS3ERR_STALE, "the replaced directory is gone");
	st = th_lookup(&cn, &a, "db", &o);
	TH_CHECK(st == NFS3_OK && fh_eq(&o.fh, &da), "db is now da");

	dc = th_mkdir_fh(&cn, &a, "dc");
	th_create_fh(&cn, &dc, "x", NULL);
	st = th_rename(&cn, &a, "db", &a, "dc");
	TH_CHECK(st == NFS3ERR_EXIST || st == NFS3ERR_NOTEMPTY,
		 "RENAME a directory over a non-empty one: EXIST or "
		 "NOTEMPTY (got %s)",
		 th_stat_name(st));
	th_create_fh(&cn, &a, "file", NULL);
	st = th_rename(&cn, &a, "db", &a, "file");
	TH_STAT(st, NFS3ERR_NOTDIR, "RENAME a directory over a file");
	st = th_rename(&cn, &a, "file", &a, "dc");
	TH_STAT(st, NFS3ERR_ISDIR, "RENAME a file over a directory");

	dd = th_mkdir_fh(&cn, &da, "deeper");
	st = th_rename(&cn, &a, "db", &dd, "loop");
	TH_STAT(st, NFS3ERR_INVAL, "RENAME a directory into its own subtree");
	st = th_rename(&cn, &a, "db", &da, "self");
	TH_STAT(st, NFS3ERR_INVAL, "RENAME a directory into itself");
	st = th_rename(&cn, &a, "missing", &a, "m2");
	TH_STAT(st, NFS3ERR_NOENT, "RENAME of a missing name");

	/* Moving a directory updates its ".." and both parents' nlink. */
	{
		fattr3 pa0, pb0, pa1, pb1;

		th_getattr(&cn, &a, &pa0);
		th_getattr(&cn, &b, &pb0);
		st = th_rename(&cn, &a, "dc", &b, "dc");
		TH_STAT(st, NFS3_OK, "RENAME a directory to another parent");
		th_getattr(&cn, &a, &pa1);
		th_getattr(&cn, &b, &pb1);
		TH_CHECK(pa1.nlink == pa0.nlink - 1 &&
				 pb1.nlink == pb0.nlink + 1,
			 "nlink: source parent %u -> %u, target %u -> %u",
			 pa0.nlink, pa1.nlink, pb0.nlink, pb1.nlink);
		st = th_lookup(&cn, &dc, "..", &o);
		TH_CHECK(st == NFS3_OK && fh_eq(&o.fh, &b),
			 "LOOKUP .. of the moved directory is its new parent");
	}
}

static void
test_link(void)
{
	struct th_obj o;
	struct th_fh d, f, sub;
	LINK3res lr;
	int st;

	d = th_mkdir_fh(&cn, &cn.root, "lk");
	f = th_create_fh(&cn, &d, "f", NULL);
	sub = th_mkdir_fh(&cn, &d, "sub");
	TH_CHECK(nlink_of(&f) == 1, "new file nlink 1");
	st = th_link(&cn, &f, &d, "f2", &lr);
	TH_STAT(st, NFS3_OK, "LINK f -> f2");
	TH_CHECK(lr.LINK3res_u.resok.file_attributes.attributes_follow &&
			 lr.LINK3res_u.resok.file_attributes.post_op_attr_u
					 .attributes.nlink == 2,
		 "LINK post-op attributes show nlink 2");
	st = th_link(&cn, &f, &sub, "f3", NULL);
	TH_STAT(st, NFS3_OK, "LINK into another directory");
	TH_CHECK(nlink_of(&f) == 3, "nlink 3 (got %u)", nlink_of(&f));
	st = th_lookup(&cn, &sub, "f3", &o);
	TH_CHECK(st == NFS3_OK && fh_eq(&o.fh, &f), "the link resolves to "
						    "the same handle");
	st = th_link(&cn, &f, &d, "f2", NULL);
	TH_STAT(st, NFS3ERR_EXIST, "LINK over an existing name");
	st = th_link(&cn, &sub, &d, "dirlink", NULL);
	TH_CHECK(st == NFS3ERR_PERM || st == NFS3ERR_ISDIR ||
			 st == NFS3ERR_INVAL,
		 "LINK of a directory is refused (%s)", th_stat_name(st));
	st = th_link(&cn, &f, &f, "x", NULL);
	TH_STAT(st, NFS3ERR_NOTDIR, "LINK into a regular file");
	st = th_remove(&cn, &d, "f");
	TH_STAT(st, NFS3_OK, "REMOVE one name");
	TH_CHECK(nlink_of(&f) == 2, "nlink 2 after one REMOVE (got %u)",
		 nlink_of(&f));
	th_remove(&cn, &d, "f2");
	th_remove(&cn, &sub, "f3");
	{
		fattr3 a;

		st = th_getattr(&cn, &f, &a);
		TH_STAT(st, NFS3ERR_STALE,
			"handle is stale after the last "
			"link is removed");
	}
}

static void
test_names(void)
{
	char name[300];
	struct th_obj o;
	int st;

	memset(name, 'n', 255);
	name[255] = 0;
	st = th_create(&cn, &cn.root, name, GUARDED, NULL, NULL, &o);
	TH_STAT(st, NFS3_OK, "CREATE with a 255-byte name");
	st = th_lookup(&cn, &cn.root, name, &o);
	TH_STAT(st, NFS3_OK, "LOOKUP the 255-byte name");
	memset(name, 'm', 256);
	name[256] = 0;
	st = th_create(&cn, &cn.root, name, GUARDED, NULL, NULL, &o);
	TH_STAT(st, NFS3ERR_NAMETOOLONG, "CREATE with a 256-byte name");
	st = th_mkdir(&cn, &cn.root, name, NULL, &o);
	TH_STAT(st, NFS3ERR_NAMETOOLONG, "MKDIR with a 256-byte name");
	st = th_lookup(&cn, &cn.root, name, &o);
	TH_STAT(st, NFS3ERR_NAMETOOLONG, "LOOKUP with a 256-byte name");
	st = th_symlink(&cn, &cn.root, name, "t", &o);
	TH_STAT(st, NFS3ERR_NAMETOOLONG, "SYMLINK with a 256-byte name");
	st = th_create(&cn, &cn.root, "a/b", GUARDED, NULL, NULL, &o);
	TH_CHECK(st == NFS3ERR_INVAL || st == NFS3ERR_ACCES ||
			 st == NFS3ERR_NOENT,
		 "CREATE of a name with '/' is refused (%s)", th_stat_name(st));
	st = th_create(&cn, &cn.root, "..", GUARDED, NULL, NULL, &o);
	TH_CHECK(st == NFS3ERR_EXIST || st == NFS3ERR_INVAL ||
			 st == NFS3ERR_ISDIR,
		 "CREATE of '..' is refused (%s)", th_stat_name(st));
}

int
main(void)
{
	TH_REQUIRE(th_server_start(&srv, NULL, NULL) == 0, "tesserad started");
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0,
		   "MOUNT / as root");
	test_lookup();
	test_create();
	test_mkdir_symlink();
	test_mknod();
	test_remove_rmdir();
	test_rename();
	test_link();
	test_names();
	th_disconnect(&cn);
	return th_done();
}
