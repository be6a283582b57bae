/*
 * nfs_posix_test.c - the POSIX rules that guard privilege, through AUTH_SYS
 * credentials of other users:
 *   - a WRITE (UNSTABLE or FILE_SYNC) or a size-changing SETATTR by anyone
 *     but root clears set-user-ID, and set-group-ID when group-execute is
 *     set; root's keep them; a change of owner or group clears them;
 *   - only root sets uid and the owner sets gid (to its current group or
 *     one of its groups), even when the new value equals the current one;
 *   - READDIRPLUS gives entries' handles and attributes only to a caller
 *     that may search the directory (as LOOKUP requires).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t/nfs/tharness.h"

#define USER 1000

static struct th_server srv;
static struct th_conn cn;

static void
as_root(void)
{
	th_set_cred(&cn, 0, 0, 0, NULL);
}

static void
as_user(uint32_t uid, uint32_t gid)
{
	th_set_cred(&cn, uid, gid, 0, NULL);
}

/* A file made by root with mode, owner uid:gid (root-owned when 0). */
static struct th_fh
make_file(const char *name, uint32_t mode, uint32_t uid, uint32_t gid)
{
	struct th_obj o;
	sattr3 sa;
	int st;

	as_root();
	st = th_create(&cn, &cn.root, name, GUARDED, NULL, NULL, &o);
	TH_REQUIRE(st == NFS3_OK, "CREATE %s (%s)", name, th_stat_name(st));
	sa = th_sattr_none();
	sa.uid.set_it = 1;
	sa.uid.set_uid3_u.uid = uid;
	sa.gid.set_it = 1;
	sa.gid.set_gid3_u.gid = gid;
	st = th_setattr(&cn, &o.fh, &sa, NULL, NULL);
	TH_REQUIRE(st == NFS3_OK, "chown %s %u:%u", name, uid, gid);
	/* after the chown, which drops set-id bits */
	sa = th_sattr_mode(mode);
	st = th_setattr(&cn, &o.fh, &sa, NULL, NULL);
	TH_REQUIRE(st == NFS3_OK, "chmod %s 0%o", name, mode);
	return o.fh;
}

static uint32_t
mode_of(const struct th_fh *fh)
{
	fattr3 a;
	int st;

	as_root();
	st = th_getattr(&cn, fh, &a);
	TH_REQUIRE(st == NFS3_OK, "GETATTR (%s)", th_stat_name(st));
	return a.mode & 07777;
}

static void
check_mode(const struct th_fh *fh, uint32_t want, const char *what)
{
	uint32_t got = mode_of(fh);

	TH_CHECK(got == want, "%s: mode 0%o (got 0%o)", what, want, got);
}

static void
write_as(const struct th_fh *fh, uint32_t uid, stable_how how, const char *what)
{
	int st;

	as_user(uid, uid);
	st = th_write(&cn, fh, 0, "planted", 7, how, NULL);
	TH_STAT(st, NFS3_OK, "%s", what);
}

static void
test_write_clears_setid(void)
{
	struct th_fh f;
	sattr3 sa;
	int st;

	f = make_file("suid-unstable", 04777, 0, 0);
	write_as(&f, USER, UNSTABLE,
		 "UNSTABLE WRITE by uid 1000 to a root "
		 "04777 file");
	check_mode(&f, 0777,
		   "set-user-ID cleared by another user's "
		   "UNSTABLE WRITE");
	as_root();
	TH_STAT(th_commit(&cn, &f, 0, 0, NULL), NFS3_OK, "COMMIT");
	check_mode(&f, 0777, "and still clear after COMMIT");

	f = make_file("suid-sync", 04775, 0, USER);
	write_as(&f, USER, FILE_SYNC,
		 "FILE_SYNC WRITE by a group member to a "
		 "root 04775 file");
	check_mode(&f, 0775, "set-user-ID cleared by a FILE_SYNC WRITE");

	f = make_file("sgid-gx", 06777, 0, 0);
	write_as(&f, USER, UNSTABLE, "WRITE by uid 1000 to a root 06777 file");
	check_mode(&f, 0777, "set-user-ID and set-group-ID (with g+x) cleared");

	f = make_file("sgid-nogx", 02767, 0, 0);
	write_as(&f, USER, UNSTABLE, "WRITE by uid 1000 to a root 02767 file");
	check_mode(&f, 02767,
		   "set-group-ID without group-execute (a locking "
		   "mark) is kept");

	f = make_file("own-suid", 04755, USER, USER);
	write_as(&f, USER, UNSTABLE,
		 "WRITE by the (non-root) owner of its "
		 "04755 file");
	check_mode(&f, 0755, "the owner's own write clears it too (Linux)");

	f = make_file("root-writes", 06777, 0, 0);
	write_as(&f, 0, UNSTABLE, "WRITE by root to a 06777 file");
	check_mode(&f, 06777, "root's write keeps the set-id bits");

	f = make_file("empty-write", 04777, 0, 0);
	as_user(USER, USER);
	st = th_write(&cn, &f, 0, "", 0, UNSTABLE, NULL);
	TH_STAT(st, NFS3_OK, "WRITE of 0 bytes by uid 1000");
	check_mode(&f, 04777, "a write of nothing keeps them (Linux)");

	/* A refused write clears nothing. */
	f = make_file("no-write", 04755, 0, 0);
	as_user(USER, USER);
	st = th_write(&cn, &f, 0, "x", 1, UNSTABLE, NULL);
	TH_STAT(st, NFS3ERR_ACCES, "WRITE by uid 1000 to a root 04755 file");
	check_mode(&f, 04755, "a refused WRITE changes nothing");

	/* Truncation. */
	f = make_file("suid-trunc", 06777, 0, 0);
	as_user(USER, USER);
	sa = th_sattr_none();
	sa.size.set_it = 1;
	sa.size.set_size3_u.size = 0;
	st = th_setattr(&cn, &f, &sa, NULL, NULL);
	TH_STAT(st, NFS3_OK,
		"SETATTR size 0 by uid 1000 of a root 06777 "
		"file");
	check_mode(&f, 0777, "truncation by another user clears them");
	f = make_file("suid-extend", 04777, 0, 0);
	as_user(USER, USER);
	sa.size.set_size3_u.size = 4096;
	st = th_setattr(&cn, &f, &sa, NULL, NULL);
	TH_STAT(st, NFS3_OK, "SETATTR size 4096 by uid 1000");
	check_mode(&f, 0777, "so does an extension");
	f = make_file("root-trunc", 04777, 0, 0);
	as_root();
	st = th_setattr(&cn, &f, &sa, NULL, NULL);
	TH_STAT(st, NFS3_OK, "SETATTR size by root");
	check_mode(&f, 04777, "root's truncation keeps them");
	f = make_file("trunc-refused", 04755, 0, 0);
	as_user(USER, USER);
	st = th_setattr(&cn, &f, &sa, NULL, NULL);
	TH_STAT(st, NFS3ERR_ACCES, "SETATTR size by a user who may not write");
	check_mode(&f, 04755, "a refused truncation changes nothing");
}

static void
test_chown_clears_setid(void)
{
	uint32_t groups[1] = {777};
	struct th_fh f;
	sattr3 sa;
	int st;

	f = make_file("chgrp-own", 06775, USER, USER);
	th_set_cred(&cn, USER, USER, 1, groups);
	sa = th_sattr_none();
	sa.gid.set_it = 1;
	sa.gid.set_gid3_u.gid = 777;
	st = th_setattr(&cn, &f, &sa, NULL, NULL);
	TH_STAT(st, NFS3_OK, "chgrp by the owner to one of its groups");
	check_mode(&f, 0775, "chgrp by a non-root owner clears both bits");

	f = make_file("chown-self", 04755, USER, USER);
	as_user(USER, USER);
	sa = th_sattr_none();
	sa.uid.set_it = 1;
	sa.uid.set_uid3_u.uid = USER;
	st = th_setattr(&cn, &f, &sa, NULL, NULL);
	TH_STAT(st, NFS3_OK, "chown to itself by the non-root owner");
	check_mode(&f, 0755, "which clears set-user-ID");
}

static void
test_ownership_rules(void)
{
	uint32_t groups[1] = {5678};
	struct th_fh f;
	fattr3 a;
	sattr3 sa;
	int st;

	f = make_file("owned", 0666, 1234, 5678);

	/* A non-owner, even a member of the file's group, with the
	 * current values. */
	th_set_cred(&cn, 4321, 4321, 1, groups);
	sa = th_sattr_none();
	sa.uid.set_it = 1;
	sa.uid.set_uid3_u.uid = 1234;
	st = th_setattr(&cn, &f, &sa, NULL, NULL);
	TH_STAT(st, NFS3ERR_PERM, "SETATTR uid = current uid by a non-owner");
	sa = th_sattr_none();
	sa.gid.set_it = 1;
	sa.gid.set_gid3_u.gid = 5678;
	st = th_setattr(&cn, &f, &sa, NULL, NULL);
	TH_STAT(st, NFS3ERR_PERM,
		"SETATTR gid = current gid by a non-owner "
		"in that group");
	sa.uid.set_it = 1;
	sa.uid.set_uid3_u.uid = 1234;
	st = th_setattr(&cn, &f, &sa, NULL, NULL);
	TH_STAT(st, NFS3ERR_PERM,
		"SETATTR uid and gid unchanged by a "
		"non-owner");
	as_root();
	th_getattr(&cn, &f, &a);
	TH_CHECK(a.uid == 1234 && a.gid == 5678 && (a.mode & 07777) == 0666,
		 "nothing changed (%u:%u 0%o)", a.uid, a.gid, a.mode & 07777);

	/* The owner. */
	th_set_cred(&cn, 1234, 1234, 1, groups);
	sa = th_sattr_none();
	sa.uid.set_it = 1;
	sa.uid.set_uid3_u.uid = 1234;
	st = th_setattr(&cn, &f, &sa, NULL, NULL);
	TH_STAT(st, NFS3_OK, "SETATTR uid = its own uid by the owner");
	sa.uid.set_uid3_u.uid = 4321;
	st = th_setattr(&cn, &f, &sa, NULL, NULL);
	TH_STAT(st, NFS3ERR_PERM, "SETATTR uid to another user by the owner");
	sa = th_sattr_none();
	sa.gid.set_it = 1;
	sa.gid.set_gid3_u.gid = 5678;
	st = th_setattr(&cn, &f, &sa, NULL, NULL);
	TH_STAT(st, NFS3_OK, "SETATTR gid = current gid by the owner");
	as_user(1234, 1234);
	st = th_setattr(&cn, &f, &sa, NULL, NULL);
	TH_STAT(st, NFS3_OK,
		"... also when it is not one of the owner's "
		"groups");
	sa.gid.set_gid3_u.gid = 999;
	st = th_setattr(&cn, &f, &sa, NULL, NULL);
	TH_STAT(st, NFS3ERR_PERM,
		"SETATTR gid to a group the owner is not "
		"in");
	sa.gid.set_gid3_u.gid = 1234;
	st = th_setattr(&cn, &f, &sa, NULL, NULL);
	TH_STAT(st, NFS3_OK, "SETATTR gid to the owner's primary group");
	as_root();
	th_getattr(&cn, &f, &a);
	TH_CHECK(a.uid == 1234 && a.gid == 1234,
		 "owner now 1234:1234 (got "
		 "%u:%u)",
		 a.uid, a.gid);
	sa.uid.set_it = 1;
	sa.uid.set_uid3_u.uid = 42;
	st = th_setattr(&cn, &f, &sa, NULL, NULL);
	TH_STAT(st, NFS3_OK, "root gives the file away");
}

/* Entries of a READDIRPLUS of dir as uid:uid, "." and ".." included:
 * how many there are, and how many carry a handle or attributes. */
static int
plus_as(const struct th_fh *dir, uint32_t uid, size_t *n, size_t *with_fh,
	size_t *with_attr, bool *named_f)
{
	struct th_dirpage p;
	uint8_t verf[8] = {0};
	int st;

	as_user(uid, uid);
	st = th_readdirplus(&cn, dir, 0, verf, 4096, 32768, &p);
	*n = *with_fh = *with_attr = 0;
	*named_f = false;
	if (st == NFS3_OK) {
		for (size_t i = 0; i < p.n; i++) {
			*with_fh += p.v[i].fh_follows;
			*with_attr += p.v[i].attr_follows;
			*named_f |= strcmp(p.v[i].name, "f") == 0;
		}
		*n = p.n;
		TH_CHECK(p.eof, "one page holds the directory");
	}
	th_dirpage_free(&p);
	as_root();
	return st;
}

static void
test_readdirplus_search(void)
{
	struct th_obj d, f, o;
	struct th_dirpage p;
	size_t n, fh, at;
	bool named;
	sattr3 sa;
	int st;

	as_root();
	sa = th_sattr_mode(0744);
	st = th_mkdir(&cn, &cn.root, "noexec", &sa, &d);
	TH_REQUIRE(st == NFS3_OK, "MKDIR noexec 0744");
	th_setattr(&cn, &d.fh, &sa, NULL, NULL);
	sa = th_sattr_mode(0644);
	st = th_create(&cn, &d.fh, "f", GUARDED, &sa, NULL, &f);
	TH_REQUIRE(st == NFS3_OK, "CREATE noexec/f");
	th_write(&cn, &f.fh, 0, "private", 7, FILE_SYNC, NULL);

	as_user(USER, USER);
	st = th_lookup(&cn, &d.fh, "f", &o);
	TH_STAT(st, NFS3ERR_ACCES,
		"LOOKUP in a 0744 root directory by uid "
		"1000");
	st = plus_as(&d.fh, USER, &n, &fh, &at, &named);
	TH_STAT(st, NFS3_OK, "READDIRPLUS of it by uid 1000 (may read)");
	TH_CHECK(n == 3 && named, "names and cookies: ., .., f (%zu entries)",
		 n);
	TH_CHECK(fh == 0, "no handle without search permission (%zu given)",
		 fh);
	TH_CHECK(at == 0,
		 "no attributes without search permission (%zu "
		 "given)",
		 at);
	as_user(USER, USER);
	st = th_readdir(&cn, &d.fh, 0, NULL, 4096, &p);
	TH_CHECK(st == NFS3_OK && p.n == 3,
		 "READDIR of it by uid 1000 lists "
		 "3 names (%s, %zu)",
		 th_stat_name(st), p.n);
	th_dirpage_free(&p);

	st = plus_as(&d.fh, 0, &n, &fh, &at, &named);
	TH_CHECK(st == NFS3_OK && n == 3 && fh == 3 && at == 3,
		 "root (who may search) gets every handle and attribute "
		 "(%s: %zu/%zu/%zu)",
		 th_stat_name(st), n, fh, at);
	sa = th_sattr_mode(0755);
	th_setattr(&cn, &d.fh, &sa, NULL, NULL);
	st = plus_as(&d.fh, USER, &n, &fh, &at, &named);
	TH_CHECK(st == NFS3_OK && n == 3 && fh == 3 && at == 3,
		 "uid 1000 gets them once the directory is 0755 (%s: "
		 "%zu/%zu/%zu)",
		 th_stat_name(st), n, fh, at);
	sa = th_sattr_mode(0711);
	th_setattr(&cn, &d.fh, &sa, NULL, NULL);
	st = plus_as(&d.fh, USER, &n, &fh, &at, &named);
	TH_STAT(st, NFS3ERR_ACCES,
		"READDIRPLUS of a 0711 directory by uid "
		"1000 (may not read)");
}

int
main(void)
{
	TH_REQUIRE(th_server_start(&srv, NULL, NULL) == 0, "tesserad started");
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0,
		   "MOUNT / as root");
	test_write_clears_setid();
	test_chown_clears_setid();
	test_ownership_rules();
	test_readdirplus_search();
	th_disconnect(&cn);
	TH_CHECK(th_server_fsck(&srv) == 0, "fsck finds the volume clean");
	return th_done();
}
