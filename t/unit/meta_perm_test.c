/*
 * meta_perm_test.c - POSIX permission checks of the metadata layer:
 * access bits, search permission, sticky directories, S_ISGID
 * inheritance and the ownership rules of setattr.
 */
#include "config.h"

#include <sys/stat.h>

#include "t/unit/meta_test.h"

static void
test_access(void)
{
	struct meta_attr a;
	struct meta_cred grp = {
		.uid = 3000, .gid = 3000, .ngroups = 2, .groups = {3000, 1000}};

	memset(&a, 0, sizeof(a));
	a.type = META_REG;
	a.uid = 1000;
	a.gid = 1000;
	a.mode = 0640;
	CHECK_EQ(meta_access(&a, &user_cred, 7), 6, "owner rw-");
	CHECK_EQ(meta_access(&a, &grp, 7), 4, "supplementary group r--");
	CHECK_EQ(meta_access(&a, &other_cred, 7), 0, "other ---");
	CHECK_EQ(meta_access(&a, &root_cred, 7), 6, "root rw, no x");
	a.mode = 0001;
	CHECK_EQ(meta_access(&a, &root_cred, 7), 7, "root x with any x bit");
	CHECK_EQ(meta_access(&a, &user_cred, 7), 0,
		 "owner bits win over other bits");
	a.type = META_DIR;
	a.mode = 0;
	CHECK_EQ(meta_access(&a, &root_cred, 7), 7, "root searches any dir");
}

static void
test_dir_perms(struct meta *m)
{
	uint64_t d, f, ino;
	struct meta_attr a;
	bool eof;
	int rc;

	d = mk(m, &root_cred, 1, "priv", META_DIR, 0700, NULL);
	mk(m, &user_cred, d, "x", META_REG, 0644, &rc);
	CHECK_EQ(rc, -EACCES, "create without write permission -> EACCES");
	CHECK_EQ(meta_lookup(m, &user_cred, d, "x", &ino, NULL), -EACCES,
		 "lookup without search permission -> EACCES");
	CHECK_EQ(meta_readdir(m, &user_cred, d, 0, false, NULL, NULL, &eof),
		 -EACCES, "readdir without read permission -> EACCES");
	f = mk(m, &root_cred, d, "x", META_REG, 0644, NULL);
	CHECK_EQ(meta_unlink(m, &user_cred, d, "x", NULL, NULL), -EACCES,
		 "unlink without write permission -> EACCES");
	CHECK_EQ(meta_rename(m, &user_cred, d, "x", 1, "y", NULL, NULL, NULL,
			     NULL),
		 -EACCES, "rename out -> EACCES");
	CHECK_EQ(meta_link(m, &user_cred, f, d, "z", NULL, NULL, NULL), -EACCES,
		 "link into it -> EACCES");

	/* sticky /tmp-like directory */
	d = mk(m, &root_cred, 1, "tmp", META_DIR, 01777, NULL);
	f = mk(m, &user_cred, d, "mine", META_REG, 0644, &rc);
	CHECK_EQ(rc, 0, "user creates in sticky dir");
	CHECK_EQ(meta_unlink(m, &other_cred, d, "mine", NULL, NULL), -EPERM,
		 "other cannot remove in sticky dir -> EPERM");
	CHECK_EQ(meta_rename(m, &other_cred, d, "mine", d, "theirs", NULL, NULL,
			     NULL, NULL),
		 -EPERM, "other cannot rename in sticky dir -> EPERM");
	mk(m, &other_cred, d, "theirs", META_REG, 0644, NULL);
	CHECK_EQ(meta_rename(m, &user_cred, d, "mine", d, "theirs", NULL, NULL,
			     NULL, NULL),
		 -EPERM,
		 "cannot replace another's file in sticky dir -> EPERM");
	CHECK_EQ(meta_unlink(m, &user_cred, d, "mine", NULL, NULL), 0,
		 "owner removes own file");
	CHECK_EQ(meta_unlink(m, &root_cred, d, "theirs", NULL, NULL), 0,
		 "root removes any file");

	/* S_ISGID directory: group and bit inherited */
	d = mk(m, &root_cred, 1, "sgid", META_DIR, 02777, NULL);
	{
		struct meta_setattr s = {META_SET_GID, 0, 0, 555, 0, 0, 0, 0};

		CHECK_EQ(meta_setattr(m, &root_cred, d, &s, NULL, NULL), 0,
			 "chgrp dir");
	}
	f = mk(m, &user_cred, d, "file", META_REG, 0644, NULL);
	meta_getattr(m, f, &a);
	CHECK_EQ(a.gid, 555, "file takes the directory's group");
	ino = mk(m, &user_cred, d, "sub", META_DIR, 0755, NULL);
	meta_getattr(m, ino, &a);
	CHECK(a.gid == 555 && (a.mode & S_ISGID), "subdir inherits S_ISGID");
	f = mk(m, &user_cred, d, "sg", META_REG, 02755, NULL);
	meta_getattr(m, f, &a);
	CHECK(!(a.mode & S_ISGID),
	      "S_ISGID dropped on a file outside the creator's groups");

	/* moving a directory needs write permission on it */
	d = mk(m, &root_cred, 1, "open", META_DIR, 0777, NULL);
	mk(m, &root_cred, d, "rootdir", META_DIR, 0755, NULL);
	ino = mk(m, &user_cred, 1, "udir", META_DIR, 0777, NULL);
	CHECK_EQ(meta_rename(m, &user_cred, d, "rootdir", ino, "x", NULL, NULL,
			     NULL, NULL),
		 -EACCES, "moving another's dir to a new parent -> EACCES");
}

static void
test_setattr(struct meta *m)
{
	uint64_t f = mk(m, &user_cred, 1, "sa", META_REG, 06755, NULL);
	struct meta_setattr s;
	struct meta_attr a, b;
	struct meta_cred multi = {
		.uid = 1000, .gid = 1000, .ngroups = 2, .groups = {1000, 77}};
	struct meta_pre_attr pre;

	meta_getattr(m, f, &a);
	memset(&s, 0, sizeof(s));
	s.valid = META_SET_MODE;
	s.mode = 0600;
	CHECK_EQ(meta_setattr(m, &other_cred, f, &s, NULL, NULL), -EPERM,
		 "chmod by non-owner -> EPERM");
	s.valid = META_SET_UID;
	s.uid = 2000;
	CHECK_EQ(meta_setattr(m, &user_cred, f, &s, NULL, NULL), -EPERM,
		 "chown by owner -> EPERM");
	s.valid = META_SET_GID;
	s.gid = 77;
	CHECK_EQ(meta_setattr(m, &user_cred, f, &s, NULL, NULL), -EPERM,
		 "chgrp to a group the owner is not in -> EPERM");
	CHECK_EQ(meta_setattr(m, &multi, f, &s, &pre, &b), 0,
		 "owner chgrp to own group");
	CHECK(pre.ctime_ns == a.ctime_ns, "pre-op attributes");
	CHECK(b.gid == 77 && !(b.mode & S_ISUID) && !(b.mode & S_ISGID),
	      "chgrp clears set-id bits");
	s.valid = META_SET_UID;
	s.uid = 2000;
	CHECK_EQ(meta_setattr(m, &root_cred, f, &s, NULL, &b), 0,
		 "chown by root");
	CHECK_EQ(b.uid, 2000, "new owner");
	s.valid = META_SET_SIZE;
	s.size = 10;
	CHECK_EQ(meta_setattr(m, &user_cred, f, &s, NULL, NULL), -EACCES,
		 "truncate without write permission -> EACCES");
	s.valid = META_SET_MTIME;
	s.mtime_ns = 5;
	CHECK_EQ(meta_setattr(m, &user_cred, f, &s, NULL, NULL), -EPERM,
		 "explicit times by non-owner -> EPERM");
	s.valid = META_SET_MTIME_NOW;
	CHECK_EQ(meta_setattr(m, &user_cred, f, &s, NULL, NULL), -EACCES,
		 "NOW times without write permission -> EACCES");
	s.valid = META_SET_MODE;
	s.mode = 0666;
	CHECK_EQ(meta_setattr(m, &other_cred, f, &s, NULL, NULL), 0,
		 "chmod by owner");
	s.valid = META_SET_MTIME_NOW | META_SET_ATIME_NOW;
	CHECK_EQ(meta_setattr(m, &user_cred, f, &s, NULL, NULL), 0,
		 "NOW times with write permission");
	meta_getattr(m, f, &a);
	s.valid = META_SET_MODE | META_SET_GUARD;
	s.guard_ctime_ns = a.ctime_ns + 1;
	CHECK_EQ(meta_setattr(m, &root_cred, f, &s, NULL, NULL), -TL_ENOTSYNC,
		 "guard mismatch -> TL_ENOTSYNC");
	s.guard_ctime_ns = a.ctime_ns;
	s.valid = META_SET_MTIME | META_SET_ATIME | META_SET_GUARD;
	s.mtime_ns = 1000;
	s.atime_ns = 2000;
	CHECK_EQ(meta_setattr(m, &other_cred, f, &s, NULL, &b), 0,
		 "guard match, explicit times by owner");
	CHECK(b.mtime_ns == 1000 && b.atime_ns == 2000 &&
		      b.ctime_ns >= a.ctime_ns,
	      "times set, ctime moves");
}

int
main(void)
{
	struct fixture f;
	struct meta *m;

	test_access();
	fixture_init(&f);
	m = fixture_volume(&f, 0, 0);
	{
		/* Users create at the top level below. */
		struct meta_setattr s = {META_SET_MODE, 0777, 0, 0, 0, 0, 0, 0};

		CHECK_EQ(meta_setattr(m, &root_cred, 1, &s, NULL, NULL), 0,
			 "chmod 777 /");
	}
	test_dir_perms(m);
	test_setattr(m);
	meta_close(m);
	fixture_done(&f);
	return tap_done();
}
