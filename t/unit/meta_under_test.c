/*
 * meta_under_test - meta_getattr_under and the link records behind it, on
 * a real LMDB volume:
 *   - directories and files under a root, and outside it; the root
 *     itself; "/" holds everything;
 *   - a directory renamed out of the root (also from deep inside, after
 *     the cache was filled) is outside at once, and inside again when
 *     moved back; a rename inside one directory keeps the cache;
 *   - hard links: a file linked inside and outside lies under both;
 *     when the link in its parent goes, a directory holding another one
 *     becomes its parent (`ln a b; rm a` keeps a parent, usage follows);
 *   - a file linked in more than two directories, a rename of a linked
 *     file, an overwriting rename of one;
 *   - a rename through another handle of the volume (another gateway)
 *     is seen by this one's cache at once;
 *   - fsck finds every state above clean, and finds and repairs a file
 *     whose parent is unknown (what older volumes left) and wrong link
 *     records.
 */
#include "config.h"

#include "meta/kv.h"
#include "meta/meta-internal.h"
#include "t/unit/meta_test.h"

static struct meta *m;

static void
on_problem(void *arg, enum meta_fsck_cat c, const char *msg)
{
	(void)arg;
	printf("#   [%s] %s\n", meta_fsck_cat_name(c), msg);
}

static struct meta_fsck_report
fsck(bool repair)
{
	struct meta_fsck_opts o = {repair, NULL, on_problem, NULL, NULL, false};
	struct meta_fsck_report r;

	CHECK_EQ(meta_fsck(m, &o, &r), 0, "fsck%s runs",
		 repair ? " --repair" : "");
	return r;
}

static void
clean(const char *what)
{
	struct meta_fsck_report r = fsck(false);

	CHECK_EQ(r.problems, 0, "fsck: clean %s", what);
}

/* 1 under, 0 outside, -errno otherwise. */
static int
under(uint64_t root, uint64_t ino)
{
	struct meta_attr a;
	int rc = meta_getattr_under(m, root, ino, &a);

	if (rc == 0 && a.ino != ino)
		return -EINVAL;
	return rc == 0 ? 1 : rc == -EXDEV ? 0 : rc;
}

static uint64_t
dir(uint64_t parent, const char *name)
{
	uint64_t ino = mk(m, &root_cred, parent, name, META_DIR, 0755, NULL);

	CHECK_FATAL(ino != 0, "mkdir %s", name);
	return ino;
}

static uint64_t
file(uint64_t parent, const char *name)
{
	uint64_t ino = mk(m, &root_cred, parent, name, META_REG, 0644, NULL);

	CHECK_FATAL(ino != 0, "create %s", name);
	return ino;
}

static struct meta_attr
attr(uint64_t ino)
{
	struct meta_attr a;

	memset(&a, 0, sizeof(a));
	CHECK(meta_getattr(m, ino, &a) == 0, "getattr %llu",
	      (unsigned long long)ino);
	return a;
}

static void
mv(uint64_t sdir, const char *sname, uint64_t ddir, const char *dname)
{
	CHECK_EQ(meta_rename(m, &root_cred, sdir, sname, ddir, dname, NULL,
			     NULL, NULL, NULL),
		 0, "rename %s -> %s", sname, dname);
}

static void
ln(uint64_t ino, uint64_t d, const char *name)
{
	CHECK_EQ(meta_link(m, &root_cred, ino, d, name, NULL, NULL, NULL), 0,
		 "link %s", name);
}

static void
rm(uint64_t d, const char *name)
{
	CHECK_EQ(meta_unlink(m, &root_cred, d, name, NULL, NULL), 0,
		 "unlink %s", name);
}

static uint64_t
inodes_of(uint64_t d)
{
	struct mtxn t;
	uint64_t b = 0, i = 0;

	CHECK_FATAL(meta_txn_begin(m, &t, true) == 0, "txn");
	CHECK(meta_usage_get(&t, d, &b, &i) == 0, "usage of %llu",
	      (unsigned long long)d);
	meta_txn_end(&t, 0);
	return i;
}

static void
test_tree(void)
{
	uint64_t t, a, a1, a2, b, f, g;

	t = dir(1, "tenants");
	a = dir(t, "a");
	a1 = dir(a, "a1");
	a2 = dir(a1, "a2");
	b = dir(t, "b");
	f = file(a2, "f");
	g = file(b, "g");

	CHECK_EQ(under(a, a), 1, "the root lies under itself");
	CHECK_EQ(under(a, a2), 1, "a/a1/a2 lies under a");
	CHECK_EQ(under(a, f), 1, "a/a1/a2/f lies under a");
	CHECK_EQ(under(a, a2), 1, "... asked again (cached)");
	CHECK_EQ(under(a, b), 0, "b does not lie under a");
	CHECK_EQ(under(a, g), 0, "b/g does not lie under a");
	CHECK_EQ(under(a, t), 0, "a's parent does not lie under a");
	CHECK_EQ(under(a, 1), 0, "the volume root does not");
	CHECK_EQ(under(1, g), 1, "\"/\" holds everything");
	CHECK_EQ(under(a, 999999), -ENOENT, "a missing inode: ENOENT");

	/* An operator moves a1 (cached, with a2 below it) out of a. */
	mv(a, "a1", b, "a1");
	CHECK_EQ(under(a, a2), 0, "after a1 moved into b, a2 is outside a");
	CHECK_EQ(under(a, f), 0, "and so is f");
	CHECK_EQ(under(a, a1), 0, "and a1");
	CHECK_EQ(under(b, f), 1, "f lies under b now");
	mv(b, "a1", a, "a1");
	CHECK_EQ(under(a, f), 1, "moved back: under a again");
	CHECK_EQ(under(b, f), 0, "and not under b");
	/* A rename in one directory changes no ancestry. */
	mv(a, "a1", a, "a1-renamed");
	CHECK_EQ(under(a, f), 1, "renamed in place: still under a");
	/* A file moved out, and back. */
	mv(a2, "f", b, "f");
	CHECK_EQ(under(a, f), 0, "f moved to b: outside a");
	mv(b, "f", a2, "f");
	CHECK_EQ(under(a, f), 1, "f moved back");
	clean("after the moves");
}

static void
test_links(void)
{
	uint64_t in, out, other, f, h, x;
	struct meta_attr at;

	in = dir(1, "in");
	out = dir(1, "out");
	other = dir(1, "other");

	/* ln a b; rm a, in one directory. */
	f = file(in, "a");
	ln(f, in, "b");
	rm(in, "a");
	at = attr(f);
	CHECK(at.parent == in && at.nlink == 1,
	      "ln a b; rm a: parent is "
	      "still the directory (%llu, nlink %u)",
	      (unsigned long long)at.parent, at.nlink);
	CHECK_EQ(under(in, f), 1, "and the file lies under it");
	CHECK_EQ(inodes_of(in), 1, "its usage counts the file once");
	clean("after ln a b; rm a");

	/* Linked inside and outside. */
	h = file(in, "h");
	ln(h, out, "h");
	CHECK_EQ(attr(h).parent, out, "parent: the last linked directory");
	CHECK_EQ(under(in, h), 1,
		 "a file linked inside and outside lies "
		 "under the inside directory");
	CHECK_EQ(under(out, h), 1, "and under the outside one");
	CHECK_EQ(under(other, h), 0, "not under a third one");
	clean("with a file linked in two directories");
	rm(in, "h");
	CHECK_EQ(under(in, h), 0, "its inside link removed: outside");
	CHECK_EQ(attr(h).parent, out, "parent the outside directory");
	rm(out, "h");

	/* The link in the parent goes, another directory takes over. */
	h = file(in, "h2");
	ln(h, out, "h2");
	rm(out, "h2");
	CHECK_EQ(attr(h).parent, in,
		 "the parent's link removed: the other "
		 "directory holding one is the parent");
	CHECK_EQ(under(in, h), 1, "and it lies under it");
	CHECK_EQ(inodes_of(out), 0, "out counts nothing");
	clean("after the parent's link went");

	/* Three directories, two links in one; a rename of a linked file. */
	x = file(in, "x");
	ln(x, in, "x2");
	ln(x, out, "x3");
	ln(x, other, "x4");
	CHECK_EQ(attr(x).nlink, 4, "nlink 4");
	clean("with a file of 4 links in 3 directories");
	rm(other, "x4");
	CHECK_EQ(attr(x).parent, in,
		 "x4 (the parent's) removed: in or out "
		 "became the parent (in, the lower inode)");
	mv(in, "x", other, "x");
	CHECK_EQ(under(other, x), 1, "renamed into other: under other");
	clean("after a linked file was renamed");
	rm(in, "x2");
	rm(out, "x3");
	at = attr(x);
	CHECK(at.nlink == 1 && at.parent == other,
	      "one link left, in "
	      "other: nlink %u parent %llu",
	      at.nlink, (unsigned long long)at.parent);
	CHECK_EQ(under(in, x), 0, "no longer under in");
	clean("back to one link");

	/* An overwriting rename takes one link of a linked file. */
	x = file(in, "y");
	ln(x, out, "y");
	(void)file(out, "z");
	mv(out, "z", out, "y");
	at = attr(x);
	CHECK(at.nlink == 1 && at.parent == in,
	      "overwritten in out: nlink %u "
	      "parent %llu",
	      at.nlink, (unsigned long long)at.parent);
	clean("after an overwriting rename");
}

/* What older volumes left: a file of two links with no link records
 * whose parent link went (parent 0). */
static void
test_legacy(void)
{
	uint64_t d, e, f;
	struct meta_key k;
	struct meta_fsck_report r;
	struct inode in;
	struct mtxn t;

	d = dir(1, "old");
	e = dir(1, "old2");
	f = file(d, "f");
	ln(f, e, "f");
	CHECK_FATAL(meta_txn_begin(m, &t, false) == 0, "txn");
	CHECK(meta_links_clear(&t, f) == 0, "drop its link records");
	CHECK(meta_inode_get(&t, f, &in) == 0, "inode");
	in.a.parent = 0;
	CHECK(meta_inode_put(&t, &in) == 0, "parent 0");
	CHECK(meta_usage_add(&t, e, 0, -1) == 0,
	      "usage as older volumes kept it");
	CHECK(meta_txn_end(&t, 0) == 0, "commit");
	CHECK_EQ(under(d, f), 0,
		 "a file of unknown parent lies under no "
		 "export");
	r = fsck(false);
	CHECK(r.found[META_FSCK_PARENT] == 1 && r.found[META_FSCK_NLINK] == 2,
	      "fsck: the unknown parent and the 2 missing link records (%llu, "
	      "%llu)",
	      (unsigned long long)r.found[META_FSCK_PARENT],
	      (unsigned long long)r.found[META_FSCK_NLINK]);
	fsck(true);
	clean("after repair");
	CHECK_EQ(under(d, f), 1, "repaired: under its first directory");
	CHECK_EQ(under(e, f), 1, "and its second");

	/* A stray record of a file of one link. */
	f = file(d, "g");
	meta_key_link(m, &k, f, e);
	{
		struct meta_kv_txn *kt;

		CHECK_FATAL(meta_kv_begin(m->kv, false, &kt) == 0, "kv");
		CHECK(meta_kv_put(kt, k.b, k.len, "\0\0\0\1", 4) == 0, "put");
		CHECK(meta_kv_commit(kt) == 0, "commit");
	}
	r = fsck(false);
	CHECK_EQ(r.found[META_FSCK_NLINK], 1, "fsck: a stray link record");
	fsck(true);
	clean("stray record removed");
}

/* Another gateway's rename (another meta handle: its own cache, the same
 * metadata) is seen at once: nothing but the counter in the metadata
 * tells this handle's cache. */
static void
test_other_gateway(const char *url)
{
	struct meta *m2 = NULL;
	uint64_t r, s, x, f;
	char *err = NULL;

	CHECK_FATAL(meta_open(url, "test", &m2, &err) == 0,
		    "second handle "
		    "(%s)",
		    err ? err : "");
	free(err);
	r = dir(1, "g-root");
	s = dir(r, "g-sub");
	x = dir(1, "g-out");
	f = file(s, "g-file");
	CHECK_EQ(under(r, f), 1, "g-sub/g-file lies under g-root (cached)");
	CHECK_EQ(meta_rename(m2, &root_cred, r, "g-sub", x, "g-sub", NULL, NULL,
			     NULL, NULL),
		 0, "the other handle moves g-sub out");
	CHECK_EQ(under(r, f), 0, "this handle sees g-file outside at once");
	CHECK_EQ(under(r, s), 0, "and g-sub");
	meta_close(m2);
}

/* fsck repairing a directory's parent moves it: the cache must see it. */
static void
test_fsck_moves_dir(void)
{
	uint64_t a, b, c;
	struct inode in;
	struct mtxn t;

	a = dir(1, "fa");
	b = dir(1, "fb");
	c = dir(a, "c");
	CHECK_EQ(under(a, c), 1, "c under fa (cached)");
	/* Corrupt: c's dentry moves to fb, its parent stays fa. */
	CHECK_FATAL(meta_txn_begin(m, &t, false) == 0, "txn");
	CHECK(meta_inode_get(&t, b, &in) == 0, "fb");
	CHECK(meta_dentry_add(&t, &in, "c", 1, META_DIR, c) == 0,
	      "dentry in fb");
	CHECK(meta_inode_put(&t, &in) == 0, "put fb");
	CHECK(meta_txn_end(&t, 0) == 0, "commit");
	CHECK(meta_unlink(m, &root_cred, a, "c", NULL, NULL) == -EISDIR,
	      "(c is a directory)");
	CHECK_FATAL(meta_txn_begin(m, &t, false) == 0, "txn");
	{
		uint64_t ino, cookie;

		CHECK(meta_dentry_get(&t, a, "c", 1, NULL, &ino, &cookie) == 0,
		      "dentry in fa");
		CHECK(meta_dentry_del(&t, a, "c", 1, cookie) == 0, "del in fa");
	}
	CHECK(meta_txn_end(&t, 0) == 0, "commit");
	fsck(true);
	CHECK_EQ(attr(c).parent, b, "fsck gave c its parent fb");
	CHECK_EQ(under(a, c), 0,
		 "and the cache no longer says c lies under "
		 "fa");
	CHECK_EQ(under(b, c), 1, "it lies under fb");
}

int
main(void)
{
	struct fixture f;

	fixture_init(&f);
	m = fixture_volume(&f, 0, 0);
	test_tree();
	test_links();
	test_legacy();
	test_other_gateway(f.url);
	test_fsck_moves_dir();
	meta_close(m);
	fixture_done(&f);
	return tap_done();
}
