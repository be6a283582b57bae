/*
 * nfs_quota_test.c - directory quotas through a real client: a tree /q
 * with a quota of 64 KiB and 8 inodes, exported on its own, and every
 * operation at its boundary.
 *
 *   WRITE to the exact byte (FILE_SYNC and UNSTABLE), one more byte
 *   refused with DQUOT and the file unchanged; SETATTR growing and
 *   truncating; a sparse file counts by its size; RENAME of a file and
 *   of a directory tree into and out of the quota'd tree (refused when
 *   it does not fit, nothing moved); LINK of an outside file into it,
 *   and the usage following the last link; CREATE, MKDIR, SYMLINK and
 *   MKNOD at the inode limit; FSSTAT of the export /q showing the quota
 *   as size and free space, of / showing the volume; `tessera quota
 *   get` figures to the byte after each step; `quota check` finding no
 *   drift; RMDIR of a quota'd directory taking its quota along; fsck
 *   clean at the end.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t/nfs/tharness.h"

#define QBYTES  65536
#define QINODES 8

static struct th_server srv;
static struct th_conn rc; /* MOUNT / */
static struct th_conn qc; /* MOUNT /q */
static struct th_fh qdir; /* /q seen from / */

/* `tessera quota get` of path: its usage, or false. */
static bool
quota_used(const char *path, uint64_t *bytes, uint64_t *inodes)
{
	char fn[400], line[256];
	bool gb = false, gi = false;
	FILE *f;

	if (th_tessera(&srv, "quota get %s %s", srv.meta_url, path) != 0)
		return false;
	snprintf(fn, sizeof fn, "%s/tool.out", srv.dir);
	f = fopen(fn, "r");
	if (!f)
		return false;
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "  bytes: %" SCNu64, bytes) == 1)
			gb = true;
		if (sscanf(line, "  inodes: %" SCNu64, inodes) == 1)
			gi = true;
	}
	fclose(f);
	return gb && gi;
}

static void
expect_used(const char *when, uint64_t bytes, uint64_t inodes)
{
	uint64_t b = 0, i = 0;
	bool ok = quota_used("/q", &b, &i);

	TH_CHECK(ok && b == bytes && i == inodes,
		 "%s: /q uses %" PRIu64 " bytes, %" PRIu64
		 " inodes (got %" PRIu64 ", %" PRIu64 ")",
		 when, bytes, inodes, b, i);
}

static uint64_t
size_of(struct th_conn *c, const struct th_fh *fh)
{
	fattr3 a;

	return th_getattr(c, fh, &a) == NFS3_OK ? a.size : UINT64_MAX;
}

static int
set_size(struct th_conn *c, const struct th_fh *fh, uint64_t size)
{
	sattr3 sa = th_sattr_none();

	sa.size.set_it = 1;
	sa.size.set_size3_u.size = size;
	return th_setattr(c, fh, &sa, NULL, NULL);
}

/* Write len bytes of pattern at off, FILE_SYNC, in 32 KiB calls. */
static int
fill(struct th_conn *c, const struct th_fh *fh, uint64_t off, uint64_t len)
{
	static uint8_t buf[32768];
	int st = NFS3_OK;

	memset(buf, 0x5a, sizeof buf);
	while (st == NFS3_OK && len > 0) {
		uint32_t n = len < sizeof buf ? (uint32_t)len : sizeof buf;

		st = th_write(c, fh, off, buf, n, FILE_SYNC, NULL);
		off += n;
		len -= n;
	}
	return st;
}

static struct th_fh
mkfile(struct th_conn *c, const struct th_fh *dir, const char *name,
       uint64_t len)
{
	struct th_obj o;
	int st;

	st = th_create(c, dir, name, GUARDED, NULL, NULL, &o);
	TH_REQUIRE(st == NFS3_OK, "CREATE %s", name);
	if (len > 0)
		TH_REQUIRE(fill(c, &o.fh, 0, len) == NFS3_OK,
			   "WRITE %" PRIu64 " bytes to %s", len, name);
	return o.fh;
}

static bool
exists(struct th_conn *c, const struct th_fh *dir, const char *name)
{
	struct th_obj o;

	return th_lookup(c, dir, name, &o) == NFS3_OK;
}

static void
fsstat_is(struct th_conn *c, const char *what, uint64_t tbytes, uint64_t fbytes,
	  uint64_t tfiles, uint64_t ffiles)
{
	FSSTAT3res r;
	FSSTAT3resok *ok = &r.FSSTAT3res_u.resok;
	int st = th_fsstat(c, &c->root, &r);

	TH_CHECK(
		st == NFS3_OK && ok->tbytes == tbytes && ok->fbytes == fbytes &&
			ok->abytes == fbytes && ok->tfiles == tfiles &&
			ok->ffiles == ffiles && ok->afiles == ffiles,
		"FSSTAT %s: %" PRIu64 "/%" PRIu64 " bytes, %" PRIu64 "/%" PRIu64
		" files (got %s %llu/%llu, %llu/%llu)",
		what, fbytes, tbytes, ffiles, tfiles, th_stat_name(st),
		(unsigned long long)ok->fbytes, (unsigned long long)ok->tbytes,
		(unsigned long long)ok->ffiles, (unsigned long long)ok->tfiles);
}

static void
setup(void)
{
	struct th_obj o;
	sattr3 sa = th_sattr_mode(0777);

	TH_REQUIRE(th_connect(&rc, srv.port, "/", 0, 0) == 0, "MOUNT /");
	TH_REQUIRE(th_mkdir(&rc, &rc.root, "q", &sa, &o) == NFS3_OK,
		   "MKDIR /q");
	th_disconnect(&rc);
	TH_REQUIRE(th_server_set_exports(&srv, "/ 127.0.0.1(rw,insecure,"
					       "no_root_squash)\n"
					       "/q 127.0.0.1(rw,insecure,"
					       "no_root_squash)\n") == 0 &&
			   th_server_restart(&srv, false) == 0,
		   "restart exporting / and /q");
	TH_REQUIRE(th_tessera(&srv,
			      "quota set %s /q --bytes 64K "
			      "--inodes %d",
			      srv.meta_url, QINODES) == 0,
		   "tessera quota set /q --bytes 64K --inodes 8");
	TH_REQUIRE(th_connect(&rc, srv.port, "/", 0, 0) == 0, "MOUNT /");
	TH_REQUIRE(th_connect(&qc, srv.port, "/q", 0, 0) == 0, "MOUNT /q");
	TH_REQUIRE(th_lookup(&rc, &rc.root, "q", &o) == NFS3_OK, "LOOKUP q");
	qdir = o.fh;
	expect_used("empty", 0, 0);
	fsstat_is(&qc, "of /q, empty", QBYTES, QBYTES, QINODES, QINODES);
}

/* The exact byte: 64 KiB fit, one more does not, in either stability. */
static void
exact_byte(struct th_fh *f)
{
	uint8_t one = 1;
	int st;

	*f = mkfile(&qc, &qc.root, "f", 0);
	st = fill(&qc, f, 0, QBYTES);
	TH_STAT(st, NFS3_OK, "WRITE 65536 bytes: exactly the quota");
	expect_used("after 64 KiB", QBYTES, 1);
	st = th_write(&qc, f, QBYTES, &one, 1, FILE_SYNC, NULL);
	TH_STAT(st, NFS3ERR_DQUOT, "WRITE FILE_SYNC of byte 65537");
	st = th_write(&qc, f, QBYTES, &one, 1, UNSTABLE, NULL);
	TH_STAT(st, NFS3ERR_DQUOT, "WRITE UNSTABLE of byte 65537");
	TH_CHECK(size_of(&qc, f) == QBYTES, "the file stayed 65536 bytes");
	st = th_write(&qc, f, 100, &one, 1, UNSTABLE, NULL);
	TH_STAT(st, NFS3_OK, "an overwrite inside the file is no growth");
	TH_STAT(th_commit(&qc, f, 0, 0, NULL), NFS3_OK, "COMMIT");
	fsstat_is(&qc, "of /q, full", QBYTES, 0, QINODES, QINODES - 1);
	expect_used("full", QBYTES, 1);
}

/* SETATTR: growing past refused, truncation frees; sparse by size. */
static void
truncation(const struct th_fh *f)
{
	uint8_t one = 1;

	TH_STAT(set_size(&qc, f, QBYTES + 1), NFS3ERR_DQUOT,
		"SETATTR size 65537");
	TH_CHECK(size_of(&qc, f) == QBYTES, "size still 65536");
	TH_STAT(set_size(&qc, f, 0), NFS3_OK, "truncate to 0");
	expect_used("truncated", 0, 1);
	TH_STAT(set_size(&qc, f, QBYTES), NFS3_OK,
		"SETATTR size 65536 (sparse: no byte stored)");
	expect_used("sparse 64 KiB", QBYTES, 1);
	TH_STAT(th_write(&qc, f, QBYTES, &one, 1, FILE_SYNC, NULL),
		NFS3ERR_DQUOT, "WRITE past a sparse file's size at the limit");
	TH_STAT(th_write(&qc, f, 40000, &one, 1, FILE_SYNC, NULL), NFS3_OK,
		"WRITE into its hole");
	TH_STAT(set_size(&qc, f, 4096), NFS3_OK, "truncate to 4096");
	expect_used("4 KiB file", 4096, 1);
	TH_STAT(set_size(&qc, f, 1), NFS3_OK, "truncate to 1 byte");
	expect_used("1-byte file counts 4 KiB", 4096, 1);
	TH_STAT(set_size(&qc, f, 4096), NFS3_OK, "back to 4096");
}

/* RENAME and LINK of files across the boundary. */
static void
files_across(void)
{
	struct th_fh big, small;
	LINK3res lr;

	big = mkfile(&rc, &rc.root, "big", QBYTES);
	small = mkfile(&rc, &rc.root, "small", 4096);
	TH_STAT(th_rename(&rc, &rc.root, "big", &qdir, "big"), NFS3ERR_DQUOT,
		"RENAME a 64 KiB file into /q holding 4 KiB");
	TH_CHECK(exists(&rc, &rc.root, "big") && !exists(&rc, &qdir, "big"),
		 "the refused rename moved nothing");
	TH_STAT(th_rename(&rc, &rc.root, "small", &qdir, "small"), NFS3_OK,
		"RENAME a 4 KiB file into /q");
	expect_used("file renamed in", 8192, 2);
	TH_STAT(th_rename(&rc, &qdir, "small", &rc.root, "small"), NFS3_OK,
		"RENAME it out again");
	expect_used("file renamed out", 4096, 1);

	TH_STAT(th_link(&rc, &big, &qdir, "biglink", &lr), NFS3ERR_DQUOT,
		"LINK a 64 KiB file into /q");
	TH_CHECK(!exists(&rc, &qdir, "biglink"), "no link made");
	TH_STAT(th_link(&rc, &small, &qdir, "sl", &lr), NFS3_OK,
		"LINK a 4 KiB file into /q");
	expect_used("linked in: counts where last linked", 8192, 2);
	TH_STAT(th_remove(&rc, &rc.root, "small"), NFS3_OK,
		"REMOVE its link outside");
	expect_used("outside link gone", 8192, 2);
	TH_STAT(th_link(&rc, &small, &rc.root, "small", &lr), NFS3_OK,
		"LINK it outside again");
	expect_used("last linked outside", 4096, 1);
	TH_STAT(th_remove(&rc, &qdir, "sl"), NFS3_OK, "REMOVE /q/sl");
	expect_used("inside link gone", 4096, 1);
	TH_STAT(th_remove(&rc, &rc.root, "big"), NFS3_OK, "REMOVE /big");
}

/* RENAME of a directory tree into and out of /q. */
static void
dirs_across(const struct th_fh *f)
{
	struct th_obj d, e;

	TH_REQUIRE(th_mkdir(&rc, &rc.root, "d", NULL, &d) == NFS3_OK,
		   "MKDIR /d");
	mkfile(&rc, &d.fh, "a", 4096);
	TH_REQUIRE(th_mkdir(&rc, &d.fh, "e", NULL, &e) == NFS3_OK,
		   "MKDIR /d/e");
	mkfile(&rc, &e.fh, "b", 5000);
	TH_STAT(th_rename(&rc, &rc.root, "d", &qdir, "d"), NFS3_OK,
		"RENAME /d (4 inodes, 12 KiB) into /q");
	expect_used("tree renamed in", 4096 + 4096 + 8192, 5);
	TH_CHECK(th_tessera(&srv, "quota check %s /q", srv.meta_url) == 0,
		 "quota check: no drift after the move");
	TH_STAT(th_rename(&rc, &qdir, "d", &rc.root, "d2"), NFS3_OK,
		"RENAME it out as /d2");
	expect_used("tree renamed out", 4096, 1);
	TH_STAT(set_size(&qc, f, QBYTES - 8192), NFS3_OK,
		"grow /q/f to 56 KiB");
	TH_STAT(th_rename(&rc, &rc.root, "d2", &qdir, "d"), NFS3ERR_DQUOT,
		"RENAME the 12 KiB tree into /q with 8 KiB free");
	TH_CHECK(exists(&rc, &rc.root, "d2") && !exists(&rc, &qdir, "d"),
		 "the refused rename moved nothing");
	expect_used("after the refused rename", QBYTES - 8192, 1);
	TH_STAT(set_size(&qc, f, 0), NFS3_OK, "truncate /q/f");
}

/* The inode limit for every kind of inode. */
static void
inodes(void)
{
	struct th_obj o, sub;
	char name[16];
	int st;

	/* f is one; seven more make eight */
	for (int i = 0; i < QINODES - 1; i++) {
		snprintf(name, sizeof name, "i%d", i);
		st = th_create(&qc, &qc.root, name, GUARDED, NULL, NULL, &o);
		TH_STAT(st, NFS3_OK, "CREATE /q/%s", name);
	}
	expect_used("eight inodes", 0, QINODES);
	fsstat_is(&qc, "of /q, inodes full", QBYTES, QBYTES, QINODES, 0);
	TH_STAT(th_create(&qc, &qc.root, "x", GUARDED, NULL, NULL, &o),
		NFS3ERR_DQUOT, "CREATE a ninth");
	TH_STAT(th_mkdir(&qc, &qc.root, "x", NULL, &o), NFS3ERR_DQUOT,
		"MKDIR a ninth");
	TH_STAT(th_symlink(&qc, &qc.root, "x", "target", &o), NFS3ERR_DQUOT,
		"SYMLINK a ninth");
	TH_STAT(th_mknod(&qc, &qc.root, "x", NF3FIFO, 0644, 0, 0, &o),
		NFS3ERR_DQUOT, "MKNOD a ninth");
	TH_CHECK(!exists(&qc, &qc.root, "x"), "nothing was created");
	TH_STAT(th_remove(&qc, &qc.root, "i0"), NFS3_OK, "REMOVE one");
	TH_STAT(th_mkdir(&qc, &qc.root, "sub", NULL, &sub), NFS3_OK,
		"then MKDIR fits");
	expect_used("a directory instead", 0, QINODES);
	TH_STAT(th_create(&qc, &sub.fh, "deeper", GUARDED, NULL, NULL, &o),
		NFS3ERR_DQUOT, "CREATE deeper in the tree counts too");
}

/* A quota inside a quota, removed with its directory. */
static void
nested(void)
{
	struct th_obj o;

	TH_REQUIRE(th_tessera(&srv,
			      "quota set %s /q/sub --inodes 0 "
			      "--bytes 4K",
			      srv.meta_url) == 0,
		   "quota set /q/sub --bytes 4K");
	TH_CHECK(th_tessera(&srv, "quota list %s", srv.meta_url) == 0,
		 "quota list");
	TH_STAT(th_rmdir(&qc, &qc.root, "sub"), NFS3_OK,
		"RMDIR /q/sub (quota'd)");
	TH_CHECK(th_tessera(&srv, "quota get %s /q/sub", srv.meta_url) != 0,
		 "its quota went with it");
	TH_CHECK(th_tessera(&srv, "quota check %s", srv.meta_url) == 0,
		 "quota check of every quota: no drift");
	TH_REQUIRE(th_tessera(&srv, "quota delete %s /q", srv.meta_url) == 0,
		   "quota delete /q");
	TH_STAT(th_create(&qc, &qc.root, "x", GUARDED, NULL, NULL, &o), NFS3_OK,
		"CREATE past the old limit once it is deleted");
}

int
main(void)
{
	struct th_fh f;

	if (th_server_start(&srv, NULL, NULL) != 0)
		th_bail();
	setup();
	exact_byte(&f);
	truncation(&f);
	files_across();
	dirs_across(&f);
	inodes();
	nested();
	th_disconnect(&qc);
	th_disconnect(&rc);
	TH_CHECK(th_server_fsck(&srv) == 0, "fsck clean");
	th_server_destroy(&srv);
	return th_done();
}
