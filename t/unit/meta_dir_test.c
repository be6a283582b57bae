/*
 * meta_dir_test.c - names: create, lookup, readdir cookies, rename, link,
 * unlink and rmdir; async (lazy) commits.
 */
#include "config.h"

#include "meta/kv.h"
#include "t/unit/meta_test.h"

struct listing {
	char names[64][32];
	uint64_t cookies[64];
	int n, stop_after; /* stop_after: accept this many, then stop */
};

static int
list_cb(void *arg, const char *name, size_t namelen, uint64_t ino,
	uint64_t cookie, const struct meta_attr *attr)
{
	struct listing *l = arg;

	if (l->stop_after && l->n >= l->stop_after)
		return 1;
	if (l->n < 64 && namelen < 32) {
		memcpy(l->names[l->n], name, namelen + 1);
		l->cookies[l->n] = cookie;
	}
	l->n++;
	return 0;
}

static struct listing
list(struct meta *m, uint64_t dir, uint64_t after, int stop_after, bool *eof)
{
	struct listing l;
	int rc;

	memset(&l, 0, sizeof(l));
	l.stop_after = stop_after;
	rc = meta_readdir(m, &root_cred, dir, after, false, list_cb, &l, eof);
	CHECK_EQ(rc, 0, "readdir after %llu", (unsigned long long)after);
	return l;
}

static void
test_create_lookup(struct meta *m)
{
	struct meta_attr a, root;
	uint64_t ino, f, d;
	char longname[300];
	bool existed = true;
	struct meta_new n = new_of(META_REG, 0644, &user_cred);
	int rc;

	CHECK_EQ(meta_getattr(m, META_ROOT_INO, &root), 0, "root getattr");
	CHECK(root.type == META_DIR && root.mode == 0755 && root.nlink == 2,
	      "root is a 0755 directory with nlink 2");
	rc = meta_create(m, &root_cred, 1, "file", &n, &f, &a, &existed, NULL,
			 NULL);
	CHECK_EQ(rc, 0, "create file");
	CHECK(!existed && a.type == META_REG && a.nlink == 1 && a.uid == 1000 &&
		      a.parent == 1 && a.gen != 0,
	      "new file attributes");
	CHECK(f > META_ROOT_INO, "inode number above root");
	CHECK_EQ(meta_lookup(m, &user_cred, 1, "file", &ino, &a), 0,
		 "lookup file");
	CHECK_EQ(ino, f, "lookup finds the created inode");
	CHECK_EQ(meta_lookup(m, &user_cred, 1, "nope", &ino, NULL), -ENOENT,
		 "lookup missing -> ENOENT");
	CHECK_EQ(meta_lookup(m, &user_cred, 1, "", &ino, NULL), -ENOENT,
		 "lookup empty name -> ENOENT");
	CHECK_EQ(meta_lookup(m, &user_cred, 1, ".", &ino, NULL), 0, "lookup .");
	CHECK_EQ(ino, 1, ". is the directory");
	CHECK_EQ(meta_lookup(m, &user_cred, 1, "..", &ino, NULL), 0,
		 "lookup .. of root");
	CHECK_EQ(ino, 1, "root's parent is root");
	CHECK_EQ(meta_lookup(m, &user_cred, f, "x", &ino, NULL), -ENOTDIR,
		 "lookup in a file -> ENOTDIR");

	rc = meta_create(m, &root_cred, 1, "file", &n, &ino, NULL, NULL, NULL,
			 NULL);
	CHECK_EQ(rc, -EEXIST, "GUARDED create of an existing name");
	n.how = META_UNCHECKED;
	rc = meta_create(m, &root_cred, 1, "file", &n, &ino, NULL, &existed,
			 NULL, NULL);
	CHECK(rc == 0 && existed && ino == f, "UNCHECKED returns the file");
	n.how = META_EXCLUSIVE;
	memcpy(n.verf, "verifier", 8);
	rc = meta_create(m, &root_cred, 1, "excl", &n, &ino, NULL, &existed,
			 NULL, NULL);
	CHECK(rc == 0 && !existed, "EXCLUSIVE create");
	rc = meta_create(m, &root_cred, 1, "excl", &n, &d, NULL, &existed, NULL,
			 NULL);
	CHECK(rc == 0 && existed && d == ino, "EXCLUSIVE retransmit succeeds");
	memcpy(n.verf, "otherver", 8);
	rc = meta_create(m, &root_cred, 1, "excl", &n, &d, NULL, &existed, NULL,
			 NULL);
	CHECK_EQ(rc, -EEXIST, "EXCLUSIVE with another verifier -> EEXIST");

	mk(m, &root_cred, 1, "", META_REG, 0644, &rc);
	CHECK_EQ(rc, -EINVAL, "create empty name -> EINVAL");
	mk(m, &root_cred, 1, "a/b", META_REG, 0644, &rc);
	CHECK_EQ(rc, -EINVAL, "create name with / -> EINVAL");
	memset(longname, 'x', 256);
	longname[256] = 0;
	mk(m, &root_cred, 1, longname, META_REG, 0644, &rc);
	CHECK_EQ(rc, -ENAMETOOLONG, "256-byte name -> ENAMETOOLONG");
	longname[255] = 0;
	mk(m, &root_cred, 1, longname, META_REG, 0644, &rc);
	CHECK_EQ(rc, 0, "255-byte name is fine");
	mk(m, &root_cred, 1, ".", META_DIR, 0755, &rc);
	CHECK_EQ(rc, -EEXIST, "mkdir . -> EEXIST");
	mk(m, &root_cred, 1, "..", META_REG, 0644, &rc);
	CHECK_EQ(rc, -EEXIST, "create .. -> EEXIST");

	d = mk(m, &root_cred, 1, "dir", META_DIR, 0755, &rc);
	CHECK_EQ(rc, 0, "mkdir");
	meta_getattr(m, d, &a);
	CHECK(a.nlink == 2 && a.parent == 1, "new dir nlink 2, parent root");
	meta_getattr(m, 1, &a);
	CHECK_EQ(a.nlink, 3, "root nlink counts the subdirectory");
	CHECK_EQ(meta_lookup(m, &user_cred, d, "..", &ino, NULL), 0, "..");
	CHECK_EQ(ino, 1, "dir/.. is root");

	ino = mk(m, &root_cred, 1, "link", META_LNK, 0777, &rc);
	CHECK_EQ(rc, 0, "symlink");
	{
		char *t = NULL;

		CHECK_EQ(meta_readlink(m, ino, &t), 0, "readlink");
		CHECK(t && strcmp(t, "target") == 0, "symlink target kept");
		free(t);
		meta_getattr(m, ino, &a);
		CHECK_EQ(a.size, 6, "symlink size is the target length");
		CHECK_EQ(meta_readlink(m, f, &t), -EINVAL,
			 "readlink of a file -> EINVAL");
	}
	CHECK_EQ(meta_resolve(m, "/dir", &ino), 0, "resolve /dir");
	CHECK_EQ(ino, d, "resolve finds dir");
	CHECK_EQ(meta_resolve(m, "/", &ino), 0, "resolve /");
	CHECK_EQ(ino, 1, "/ is root");
	CHECK_EQ(meta_resolve(m, "/dir/nope", &ino), -ENOENT,
		 "resolve missing -> ENOENT");
}

static void
test_readdir(struct meta *m)
{
	uint64_t d = mk(m, &root_cred, 1, "rd", META_DIR, 0755, NULL);
	struct listing l;
	char name[16];
	bool eof = false;
	int rc;

	l = list(m, d, 0, 0, &eof);
	CHECK(l.n == 0 && eof, "empty directory lists nothing, eof");
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "e%d", i);
		mk(m, &root_cred, d, name, META_REG, 0644, &rc);
	}
	l = list(m, d, 0, 0, &eof);
	CHECK(l.n == 10 && eof, "ten entries, eof");
	CHECK(strcmp(l.names[0], "e0") == 0 && l.cookies[0] == 3,
	      "first entry has cookie 3");
	CHECK(strcmp(l.names[9], "e9") == 0 && l.cookies[9] == 12,
	      "entries in creation order");
	for (int i = 0; i < 10; i++) {
		struct listing r = list(m, d, l.cookies[i], 0, &eof);

		CHECK(r.n == 9 - i && eof &&
			      (r.n == 0 || r.cookies[0] == l.cookies[i] + 1),
		      "resume after cookie %llu",
		      (unsigned long long)l.cookies[i]);
	}
	l = list(m, d, 2, 0, &eof);
	CHECK_EQ(l.n, 10, "resume after '..' cookie lists all");
	l = list(m, d, 0, 4, &eof);
	CHECK(l.n == 4 && !eof, "callback stop leaves eof false");
	/* A listing in progress: entries created meanwhile appear at the
	 * end, removed ones vanish. */
	mk(m, &root_cred, d, "late", META_REG, 0644, &rc);
	CHECK_EQ(meta_unlink(m, &root_cred, d, "e5", NULL, NULL), 0,
		 "unlink during listing");
	{
		struct listing r = list(m, d, l.cookies[3], 0, &eof);

		CHECK(r.n == 6 && eof, "rest of listing: 6 entries");
		CHECK(strcmp(r.names[0], "e4") == 0 &&
			      strcmp(r.names[1], "e6") == 0,
		      "removed entry vanished");
		CHECK(strcmp(r.names[5], "late") == 0,
		      "new entry appears at the end");
	}
	{
		struct listing p;
		struct meta_attr a;

		memset(&p, 0, sizeof(p));
		(void)a;
		rc = meta_readdir(m, &root_cred, d, 0, true, list_cb, &p, &eof);
		CHECK(rc == 0 && p.n == 10, "readdirplus");
	}
	rc = meta_readdir(m, &root_cred, 1, 0, false, list_cb, &l, NULL);
	CHECK_EQ(rc, 0, "readdir with eof NULL");
}

static void
test_rename(struct meta *m)
{
	uint64_t a = mk(m, &root_cred, 1, "ra", META_DIR, 0755, NULL);
	uint64_t b = mk(m, &root_cred, 1, "rb", META_DIR, 0755, NULL);
	uint64_t sub = mk(m, &root_cred, a, "sub", META_DIR, 0755, NULL);
	uint64_t deep = mk(m, &root_cred, sub, "deep", META_DIR, 0755, NULL);
	uint64_t f = mk(m, &root_cred, a, "f", META_REG, 0644, NULL);
	uint64_t g = mk(m, &root_cred, a, "g", META_REG, 0644, NULL);
	uint64_t ino;
	struct meta_attr at;
	bool eof;
	struct listing l;

	CHECK(a && b && sub && deep && f && g, "rename fixture");
	CHECK_EQ(meta_rename(m, &root_cred, a, "f", a, "f", NULL, NULL, NULL,
			     NULL),
		 0, "rename to itself is a no-op");
	CHECK_EQ(meta_lookup(m, &root_cred, a, "f", &ino, NULL), 0,
		 "still there");
	CHECK_EQ(meta_rename(m, &root_cred, a, "nope", b, "x", NULL, NULL, NULL,
			     NULL),
		 -ENOENT, "missing source -> ENOENT");
	CHECK_EQ(meta_rename(m, &root_cred, a, "sub", deep, "x", NULL, NULL,
			     NULL, NULL),
		 -EINVAL, "into own subtree -> EINVAL");
	CHECK_EQ(meta_rename(m, &root_cred, a, "sub", sub, "x", NULL, NULL,
			     NULL, NULL),
		 -EINVAL, "into itself -> EINVAL");
	CHECK_EQ(meta_rename(m, &root_cred, a, "sub", a, "f", NULL, NULL, NULL,
			     NULL),
		 -ENOTDIR, "dir over file -> ENOTDIR");
	CHECK_EQ(meta_rename(m, &root_cred, a, "f", a, "sub", NULL, NULL, NULL,
			     NULL),
		 -EISDIR, "file over dir -> EISDIR");
	CHECK_EQ(meta_rename(m, &root_cred, 1, "rb", 1, "ra", NULL, NULL, NULL,
			     NULL),
		 -ENOTEMPTY, "over non-empty dir");
	CHECK_EQ(meta_rename(m, &root_cred, a, ".", b, "x", NULL, NULL, NULL,
			     NULL),
		 -EINVAL, "rename . -> EINVAL");

	/* file over file: the target goes */
	CHECK_EQ(meta_rename(m, &root_cred, a, "f", a, "g", NULL, NULL, NULL,
			     NULL),
		 0, "file over file");
	CHECK_EQ(meta_lookup(m, &root_cred, a, "g", &ino, NULL), 0, "g");
	CHECK_EQ(ino, f, "g is now f's inode");
	CHECK_EQ(meta_getattr(m, g, &at), -ENOENT, "old g is gone");
	CHECK_EQ(meta_lookup(m, &root_cred, a, "f", &ino, NULL), -ENOENT,
		 "f name gone");

	/* directory across parents: nlink and parent follow */
	CHECK_EQ(meta_rename(m, &root_cred, a, "sub", b, "moved", NULL, NULL,
			     NULL, NULL),
		 0, "move dir to another parent");
	meta_getattr(m, a, &at);
	CHECK_EQ(at.nlink, 2, "source parent lost a subdir link");
	meta_getattr(m, b, &at);
	CHECK_EQ(at.nlink, 3, "target parent gained a subdir link");
	meta_getattr(m, sub, &at);
	CHECK_EQ(at.parent, b, "moved dir's parent updated");
	CHECK_EQ(meta_lookup(m, &root_cred, sub, "..", &ino, NULL), 0, "..");
	CHECK_EQ(ino, b, "moved dir's .. is the new parent");

	/* dir over empty dir */
	mk(m, &root_cred, a, "empty", META_DIR, 0755, NULL);
	meta_getattr(m, a, &at);
	CHECK_EQ(at.nlink, 3, "a has one subdir");
	CHECK_EQ(meta_rename(m, &root_cred, b, "moved", a, "empty", NULL, NULL,
			     NULL, NULL),
		 0, "dir over empty dir");
	meta_getattr(m, a, &at);
	CHECK_EQ(at.nlink, 3, "a still has one subdir");
	meta_getattr(m, b, &at);
	CHECK_EQ(at.nlink, 2, "b has none");
	l = list(m, a, 0, 0, &eof);
	CHECK(l.n == 2, "a lists g and empty");
	CHECK(strcmp(l.names[1], "empty") == 0,
	      "renamed entry got a new cookie at the end");
}

static void
test_link_unlink(struct meta *m)
{
	uint64_t d = mk(m, &root_cred, 1, "ld", META_DIR, 0755, NULL);
	uint64_t f = mk(m, &root_cred, d, "f", META_REG, 0644, NULL);
	uint64_t sd = mk(m, &root_cred, d, "sd", META_DIR, 0755, NULL);
	struct meta_attr a;
	uint64_t ino;

	CHECK_EQ(meta_link(m, &root_cred, f, d, "f2", &a, NULL, NULL), 0,
		 "link");
	CHECK_EQ(a.nlink, 2, "nlink 2 after link");
	CHECK_EQ(meta_link(m, &root_cred, f, d, "f2", NULL, NULL, NULL),
		 -EEXIST, "link over existing -> EEXIST");
	CHECK_EQ(meta_link(m, &root_cred, sd, d, "sd2", NULL, NULL, NULL),
		 -EPERM, "link a directory -> EPERM");
	CHECK_EQ(meta_rename(m, &root_cred, d, "f", d, "f2", NULL, NULL, NULL,
			     NULL),
		 0, "rename onto a hard link of itself");
	CHECK_EQ(meta_lookup(m, &root_cred, d, "f", &ino, NULL), 0,
		 "same inode rename does nothing");
	CHECK_EQ(meta_unlink(m, &root_cred, d, "f", NULL, NULL), 0, "unlink");
	CHECK_EQ(meta_getattr(m, f, &a), 0, "still linked");
	CHECK_EQ(a.nlink, 1, "nlink 1");
	CHECK_EQ(meta_unlink(m, &root_cred, d, "sd", NULL, NULL), -EISDIR,
		 "unlink a dir -> EISDIR");
	CHECK_EQ(meta_unlink(m, &root_cred, d, ".", NULL, NULL), -EISDIR,
		 "unlink . -> EISDIR");
	CHECK_EQ(meta_rmdir(m, &root_cred, d, "f2", NULL, NULL), -ENOTDIR,
		 "rmdir a file -> ENOTDIR");
	CHECK_EQ(meta_rmdir(m, &root_cred, d, ".", NULL, NULL), -EINVAL,
		 "rmdir . -> EINVAL");
	CHECK_EQ(meta_rmdir(m, &root_cred, d, "..", NULL, NULL), -ENOTEMPTY,
		 "rmdir .. -> ENOTEMPTY");
	CHECK_EQ(meta_rmdir(m, &root_cred, 1, "ld", NULL, NULL), -ENOTEMPTY,
		 "rmdir non-empty -> ENOTEMPTY");
	CHECK_EQ(meta_unlink(m, &root_cred, d, "f2", NULL, NULL), 0,
		 "unlink last link");
	CHECK_EQ(meta_getattr(m, f, &a), -ENOENT, "inode gone");
	CHECK_EQ(meta_rmdir(m, &root_cred, d, "sd", NULL, NULL), 0, "rmdir");
	meta_getattr(m, d, &a);
	CHECK_EQ(a.nlink, 2, "parent nlink back to 2");
	CHECK_EQ(meta_rmdir(m, &root_cred, 1, "ld", NULL, NULL), 0,
		 "rmdir now empty");
	CHECK_EQ(meta_unlink(m, &root_cred, 1, "ld", NULL, NULL), -ENOENT,
		 "unlink missing -> ENOENT");
	ino = mk(m, &root_cred, 1, "ld", META_DIR, 0755, NULL);
	CHECK(ino > sd, "inode numbers are not reused");
}

/* meta_cred.async (the export option async): CREATE, SETATTR, RENAME and
 * REMOVE commit lazily, visible at once and waiting for no sync; the
 * same operations without it each wait for one.  Counted by
 * meta_kv_lmdb_stats, which raft:// does not keep (it has no lazy
 * commit): there only the operations are checked. */
static void
test_async(struct meta *m)
{
	struct meta_cred ac = root_cred;
	struct meta_new n = new_of(META_REG, 0644, &root_cred);
	struct meta_setattr sa = {.valid = META_SET_MODE, .mode = 0600};
	struct meta_kv_lmdb_stats s0, s1, s2;
	struct meta_attr a;
	uint64_t ino;
	bool lmdb;

	ac.async = true;
	lmdb = meta_kv_lmdb_stats(meta_engine(m), &s0) == 0;
	CHECK_EQ(meta_create(m, &root_cred, 1, "sync-a", &n, &ino, NULL, NULL,
			     NULL, NULL),
		 0, "create without async");
	CHECK_EQ(meta_setattr(m, &root_cred, ino, &sa, NULL, NULL), 0,
		 "setattr without async");
	CHECK_EQ(meta_unlink(m, &root_cred, 1, "sync-a", NULL, NULL), 0,
		 "unlink without async");
	if (lmdb) {
		CHECK_EQ(meta_kv_lmdb_stats(meta_engine(m), &s1), 0, "stats");
		CHECK(s1.syncs == s0.syncs + 3 && s1.lazy == s0.lazy,
		      "without async each waited for a sync of its own (%llu "
		      "syncs, %llu lazy)",
		      (unsigned long long)(s1.syncs - s0.syncs),
		      (unsigned long long)(s1.lazy - s0.lazy));
	}
	CHECK_EQ(meta_create(m, &ac, 1, "async-a", &n, &ino, NULL, NULL, NULL,
			     NULL),
		 0, "create with async");
	CHECK_EQ(meta_setattr(m, &ac, ino, &sa, NULL, NULL), 0,
		 "setattr with async");
	CHECK_EQ(meta_rename(m, &ac, 1, "async-a", 1, "async-b", NULL, NULL,
			     NULL, NULL),
		 0, "rename with async");
	CHECK(meta_lookup(m, &root_cred, 1, "async-b", &ino, &a) == 0 &&
		      a.mode == 0600 &&
		      meta_lookup(m, &root_cred, 1, "async-a", &ino, NULL) ==
			      -ENOENT,
	      "visible at once: renamed, mode set");
	CHECK_EQ(meta_unlink(m, &ac, 1, "async-b", NULL, NULL), 0,
		 "unlink with async");
	if (lmdb) {
		CHECK_EQ(meta_kv_lmdb_stats(meta_engine(m), &s2), 0, "stats");
		CHECK(s2.lazy == s1.lazy + 4 && s2.syncs == s1.syncs,
		      "with async the four were lazy and none waited (%llu "
		      "lazy, %llu syncs)",
		      (unsigned long long)(s2.lazy - s1.lazy),
		      (unsigned long long)(s2.syncs - s1.syncs));
	}
}

int
main(void)
{
	struct fixture f;
	struct meta *m = fixture_open(&f);

	test_create_lookup(m);
	test_readdir(m);
	test_rename(m);
	test_link_unlink(m);
	test_async(m);
	meta_close(m);
	fixture_done(&f);
	return tap_done();
}
