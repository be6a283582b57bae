/*
 * nfs_exports_test.c - exports files: root_squash (uid 0 becomes 65534),
 * all_squash, anonuid/anongid, a read-only export (every modifying
 * procedure answers ROFS, reads work), MOUNT of unexported paths and of
 * exports that do not list the client, XDEV between exports; a space
 * before an option list is warned about and every rule's effective
 * options are logged; an async export keeps what it answered across a
 * SIGKILL of the gateway.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t/nfs/tharness.h"

static struct th_server srv;

static const char *exports_text =
	"# written by nfs_exports_test\n"
	"/sq    127.0.0.1(rw,insecure,root_squash)\n"
	"/all   127.0.0.1(rw,insecure,all_squash)\n"
	"/anon  127.0.0.1(rw,insecure,all_squash,anonuid=1234,anongid=4321)\n"
	"/none  127.0.0.1(rw,insecure,no_root_squash)\n"
	"/other 10.255.255.1(rw,insecure)\n";

static struct th_fh sq_private;

static void
setup(void)
{
	static const char *dirs[] = {"sq", "all", "anon", "none", "other"};
	struct th_conn c;
	struct th_obj o, d;
	sattr3 sa = th_sattr_mode(0777);
	int st;

	TH_REQUIRE(th_connect(&c, srv.port, "/", 0, 0) == 0,
		   "MOUNT / with the default exports");
	for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
		st = th_mkdir(&c, &c.root, dirs[i], &sa, &d);
		TH_REQUIRE(st == NFS3_OK, "MKDIR /%s", dirs[i]);
		/* mode from MKDIR might be masked; make sure it is 0777 */
		th_setattr(&c, &d.fh, &sa, NULL, NULL);
		if (i == 0) {
			sattr3 m = th_sattr_mode(0600);

			st = th_create(&c, &d.fh, "rootonly", GUARDED, &m, NULL,
				       &o);
			TH_REQUIRE(st == NFS3_OK, "CREATE /sq/rootonly 0600");
			sq_private = o.fh;
		}
	}
	th_disconnect(&c);
}

static void
create_as(const char *path, uint32_t uid, uint32_t gid, uint32_t want_uid,
	  uint32_t want_gid)
{
	struct th_conn c;
	struct th_obj o;
	char name[64];
	int st;

	st = th_connect(&c, srv.port, path, uid, gid);
	TH_STAT(st, 0, "MOUNT %s as %u:%u", path, uid, gid);
	if (st != 0) {
		th_disconnect(&c);
		return;
	}
	snprintf(name, sizeof name, "by-%u", uid);
	st = th_create(&c, &c.root, name, GUARDED, NULL, NULL, &o);
	TH_STAT(st, NFS3_OK, "CREATE in %s as %u:%u", path, uid, gid);
	TH_CHECK(o.attr_follows && o.attr.uid == want_uid &&
			 o.attr.gid == want_gid,
		 "file created in %s by %u:%u is owned by %u:%u (got %u:%u)",
		 path, uid, gid, want_uid, want_gid, o.attr.uid, o.attr.gid);
	st = th_mkdir(&c, &c.root, "dir-by-x", NULL, &o);
	if (st == NFS3_OK)
		TH_CHECK(o.attr_follows && o.attr.uid == want_uid,
			 "directory created in %s by uid %u is owned by %u "
			 "(got %u)",
			 path, uid, want_uid, o.attr.uid);
	th_rmdir(&c, &c.root, "dir-by-x");
	th_disconnect(&c);
}

static void
test_squash(void)
{
	struct th_conn c;
	uint8_t buf[16];
	sattr3 sa;
	int st;

	create_as("/sq", 0, 0, 65534, 65534);
	create_as("/sq", 1000, 1000, 1000, 1000);
	create_as("/all", 1000, 1000, 65534, 65534);
	create_as("/all", 0, 0, 65534, 65534);
	create_as("/anon", 1000, 1000, 1234, 4321);
	create_as("/anon", 0, 0, 1234, 4321);
	create_as("/none", 0, 0, 0, 0);

	/* A squashed root has no root powers. */
	st = th_connect(&c, srv.port, "/sq", 0, 0);
	TH_REQUIRE(st == 0, "MOUNT /sq as root");
	{
		struct th_obj o;

		/* The handle from the "/" export went stale with it. */
		st = th_getattr(&c, &sq_private, &(fattr3){0});
		TH_STAT(st, NFS3ERR_STALE,
			"a handle of an export that is no "
			"longer exported");
		st = th_lookup(&c, &c.root, "rootonly", &o);
		TH_STAT(st, NFS3_OK, "LOOKUP /sq/rootonly as squashed root");
		sq_private = o.fh;
	}
	st = th_read(&c, &sq_private, 0, sizeof buf, buf, NULL, NULL);
	TH_STAT(st, NFS3ERR_ACCES, "squashed root READs a 0600 root file");
	sa = th_sattr_none();
	sa.uid.set_it = 1;
	sa.uid.set_uid3_u.uid = 65534;
	st = th_setattr(&c, &c.root, &sa, NULL, NULL);
	TH_STAT(st, NFS3ERR_PERM,
		"squashed root chowns the root-owned "
		"export root to 65534");
	{
		struct th_obj o;

		st = th_mknod(&c, &c.root, "dev", NF3CHR, 0600, 1, 3, &o);
		TH_STAT(st, NFS3ERR_PERM, "squashed root MKNOD chr");
	}
	th_disconnect(&c);
}

static void
test_mount_rules(void)
{
	struct th_conn c;
	struct th_fh all_root;
	struct th_obj o;
	int st;

	st = th_connect(&c, srv.port, "/other", 0, 0);
	TH_CHECK(st == MNT3ERR_ACCES || st == MNT3ERR_PERM,
		 "MOUNT of an export that does not list 127.0.0.1 is "
		 "refused (got %d)",
		 st);
	th_disconnect(&c);
	st = th_connect(&c, srv.port, "/nonexistent", 0, 0);
	TH_CHECK(st == MNT3ERR_NOENT || st == MNT3ERR_ACCES,
		 "MOUNT of an unexported path is refused (got %d)", st);
	th_disconnect(&c);
	st = th_connect(&c, srv.port, "/", 0, 0);
	TH_CHECK(st == MNT3ERR_NOENT || st == MNT3ERR_ACCES,
		 "MOUNT / is refused when only subdirectories are exported "
		 "(got %d)",
		 st);
	th_disconnect(&c);

	/* Crossing exports. */
	st = th_connect(&c, srv.port, "/none", 0, 0);
	TH_REQUIRE(st == 0, "MOUNT /none");
	st = th_mnt(&c, "/all", &all_root);
	TH_REQUIRE(st == 0, "MOUNT /all on the same connection");
	th_create(&c, &c.root, "x", GUARDED, NULL, NULL, &o);
	st = th_rename(&c, &c.root, "x", &all_root, "x");
	TH_STAT(st, NFS3ERR_XDEV, "RENAME between two exports");
	st = th_link(&c, &o.fh, &all_root, "x", NULL);
	TH_STAT(st, NFS3ERR_XDEV, "LINK between two exports");
	/* .. at an export root does not leave the export. */
	st = th_lookup(&c, &c.root, "..", &o);
	TH_CHECK(st == NFS3_OK && o.fh.len == c.root.len &&
			 memcmp(o.fh.data, c.root.data, o.fh.len) == 0,
		 "LOOKUP .. at the root of /none stays there (%s)",
		 th_stat_name(st));
	th_disconnect(&c);
}

static void
test_rofs(void)
{
	struct th_conn c, w;
	struct th_obj o, f, dir;
	uint8_t buf[16];
	uint32_t got, g;
	sattr3 sa = th_sattr_mode(0644);
	int st;

	/* Make a file to work on while the export is writable. */
	TH_REQUIRE(th_server_set_exports(&srv, NULL) == 0 &&
			   th_server_restart(&srv, false) == 0,
		   "restart with the default exports");
	TH_REQUIRE(th_connect(&w, srv.port, "/", 0, 0) == 0, "MOUNT / rw");
	st = th_create(&w, &w.root, "rofile", GUARDED, NULL, NULL, &f);
	TH_REQUIRE(st == NFS3_OK, "CREATE /rofile");
	th_write(&w, &f.fh, 0, "readable", 8, FILE_SYNC, NULL);
	th_mkdir(&w, &w.root, "rodir", NULL, &dir);
	th_create(&w, &dir.fh, "victim", GUARDED, NULL, NULL, &o);
	th_disconnect(&w);

	TH_REQUIRE(th_server_set_exports(&srv, "/ 127.0.0.1(ro,insecure)\n") ==
				   0 &&
			   th_server_restart(&srv, false) == 0,
		   "restart with '/ 127.0.0.1(ro,insecure)'");
	TH_REQUIRE(th_connect(&c, srv.port, "/", 0, 0) == 0, "MOUNT / ro");
	TH_STAT(th_getattr(&c, &f.fh, &(fattr3){0}), NFS3_OK,
		"GETATTR on a ro export");
	st = th_read(&c, &f.fh, 0, sizeof buf, buf, &got, NULL);
	TH_CHECK(st == NFS3_OK && got == 8 && memcmp(buf, "readable", 8) == 0,
		 "READ on a ro export (%s)", th_stat_name(st));
	TH_STAT(th_lookup(&c, &c.root, "rofile", &o), NFS3_OK,
		"LOOKUP on a ro export");
	st = th_access(&c, &f.fh,
		       ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND, &g);
	TH_CHECK(st == NFS3_OK && !(g & (ACCESS3_MODIFY | ACCESS3_EXTEND)),
		 "ACCESS on a ro export grants no MODIFY/EXTEND (0x%x)", g);

	TH_STAT(th_setattr(&c, &f.fh, &sa, NULL, NULL), NFS3ERR_ROFS,
		"SETATTR on a ro export");
	TH_STAT(th_write(&c, &f.fh, 0, "x", 1, FILE_SYNC, NULL), NFS3ERR_ROFS,
		"WRITE on a ro export");
	TH_STAT(th_create(&c, &c.root, "new", GUARDED, NULL, NULL, &o),
		NFS3ERR_ROFS, "CREATE on a ro export");
	TH_STAT(th_mkdir(&c, &c.root, "newdir", NULL, &o), NFS3ERR_ROFS,
		"MKDIR on a ro export");
	TH_STAT(th_symlink(&c, &c.root, "newlink", "x", &o), NFS3ERR_ROFS,
		"SYMLINK on a ro export");
	TH_STAT(th_mknod(&c, &c.root, "fifo", NF3FIFO, 0644, 0, 0, &o),
		NFS3ERR_ROFS, "MKNOD on a ro export");
	TH_STAT(th_remove(&c, &dir.fh, "victim"), NFS3ERR_ROFS,
		"REMOVE on a ro export");
	TH_STAT(th_rmdir(&c, &c.root, "rodir"), NFS3ERR_ROFS,
		"RMDIR on a ro export");
	TH_STAT(th_rename(&c, &dir.fh, "victim", &c.root, "moved"),
		NFS3ERR_ROFS, "RENAME on a ro export");
	TH_STAT(th_link(&c, &f.fh, &c.root, "hard", NULL), NFS3ERR_ROFS,
		"LINK on a ro export");
	TH_STAT(th_lookup(&c, &dir.fh, "victim", &o), NFS3_OK,
		"nothing was removed");
	th_disconnect(&c);
}

/*
 * "/sq 127.0.0.1 (rw,...)": the space makes "(rw,...)" a rule of its
 * own for every host, as exportfs reads it too.  The daemon warns, and
 * logs every rule's effective options (squash and defaults included) at
 * start and again on SIGHUP.
 */
static void
test_space_before_options(void)
{
	static const char rules[] =
		" 127.0.0.1(ro,root_squash,anonuid=65534,anongid=65534,secure,"
		"sync) "
		"*(rw,no_root_squash,anonuid=65534,anongid=65534,insecure,"
		"sync)";
	struct th_conn c;
	int before = th_server_log_count(&srv, rules), st;

	TH_REQUIRE(
		th_server_set_exports(
			&srv, "/sq 127.0.0.1 (rw,insecure,no_root_squash)\n") ==
				0 &&
			th_server_restart(&srv, false) == 0,
		"restart with '/sq 127.0.0.1 (rw,insecure,no_root_squash)'");
	TH_CHECK(th_server_log_count(&srv, "warn exports: ") > 0 &&
			 th_server_log_count(&srv,
					     "no client before "
					     "\"(rw,insecure,no_root_squash)"
					     "\"") > 0,
		 "a warning names the option list without a client");
	TH_CHECK(th_server_log_count(&srv, "export /sq (fsid=") > 0 &&
			 th_server_log_count(&srv, rules) == before + 1,
		 "the effective options of both rules are logged");
	/* 127.0.0.1 matches first, with the defaults: ro and secure
	 * (libnfs binds a privileged port when run as root) */
	st = th_connect(&c, srv.port, "/sq", 0, 0);
	if (st == 0) {
		struct th_obj o;

		TH_STAT(th_create(&c, &c.root, "x", GUARDED, NULL, NULL, &o),
			NFS3ERR_ROFS, "127.0.0.1 got the defaults: read-only");
	} else {
		TH_STAT(st, MNT3ERR_ACCES,
			"127.0.0.1 got the defaults: secure, MNT refused");
	}
	th_disconnect(&c);
	kill(srv.pid, SIGHUP);
	T_WAIT(th_server_log_count(&srv, rules) >= before + 2);
	TH_CHECK(th_server_log_count(&srv, rules) == before + 2,
		 "and logged again on SIGHUP");
}

/*
 * async: answered before the metadata commit is on disk, but written to
 * the metadata file before the answer, so a gateway killed with SIGKILL
 * (not a power loss) keeps every change it answered.
 */
static void
test_async_kill(void)
{
	sattr3 m640 = th_sattr_mode(0640), m755 = th_sattr_mode(0755);
	struct th_conn c;
	struct th_obj o, d;
	fattr3 fa;
	char name[32];
	int bad = 0;

	TH_REQUIRE(th_server_set_exports(
			   &srv, "/none 127.0.0.1(rw,insecure,no_root_squash,"
				 "async)\n") == 0 &&
			   th_server_restart(&srv, false) == 0,
		   "restart with /none exported async");
	TH_REQUIRE(th_server_log_count(&srv, "insecure,async)") > 0,
		   "the rule is logged with async");
	TH_REQUIRE(th_connect(&c, srv.port, "/none", 0, 0) == 0, "MOUNT /none");
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof name, "a%d", i);
		bad += th_create(&c, &c.root, name, GUARDED, NULL, NULL, &o) !=
		       NFS3_OK;
	}
	bad += th_mkdir(&c, &c.root, "adir", &m755, &d) != NFS3_OK;
	bad += th_rename(&c, &c.root, "a0", &d.fh, "moved") != NFS3_OK;
	bad += th_remove(&c, &c.root, "a1") != NFS3_OK;
	bad += th_lookup(&c, &c.root, "a2", &o) != NFS3_OK ||
	       th_setattr(&c, &o.fh, &m640, NULL, NULL) != NFS3_OK;
	TH_CHECK(bad == 0, "CREATE, MKDIR, RENAME, REMOVE, SETATTR answered");
	th_disconnect(&c);
	TH_REQUIRE(th_server_restart(&srv, true) == 0,
		   "tesserad killed (SIGKILL) and started again");
	TH_REQUIRE(th_connect(&c, srv.port, "/none", 0, 0) == 0,
		   "MOUNT /none again");
	bad = 0;
	for (int i = 2; i < 20; i++) {
		snprintf(name, sizeof name, "a%d", i);
		bad += th_lookup(&c, &c.root, name, &o) != NFS3_OK;
	}
	TH_CHECK(bad == 0, "every file created is there");
	TH_CHECK(th_lookup(&c, &c.root, "adir", &d) == NFS3_OK &&
			 th_lookup(&c, &d.fh, "moved", &o) == NFS3_OK &&
			 th_lookup(&c, &c.root, "a0", &o) == NFS3ERR_NOENT,
		 "the directory and the rename are there");
	TH_CHECK(th_lookup(&c, &c.root, "a1", &o) == NFS3ERR_NOENT,
		 "the removed file is gone");
	TH_CHECK(th_lookup(&c, &c.root, "a2", &o) == NFS3_OK &&
			 th_getattr(&c, &o.fh, &fa) == NFS3_OK &&
			 (fa.mode & 07777) == 0640,
		 "the mode set is kept");
	th_disconnect(&c);
	TH_CHECK(th_server_fsck(&srv) == 0, "fsck finds the volume clean");
}

int
main(void)
{
	TH_REQUIRE(th_server_start(&srv, NULL, NULL) == 0, "tesserad started");
	setup();
	TH_REQUIRE(th_server_set_exports(&srv, exports_text) == 0 &&
			   th_server_restart(&srv, false) == 0,
		   "restart with squash exports");
	test_squash();
	test_mount_rules();
	test_rofs();
	test_space_before_options();
	test_async_kill();
	return th_done();
}
