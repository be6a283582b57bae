/*
 * meta_quota_test.c - directory quotas in the metadata layer (quota.c):
 * a quota set on a populated tree counts it; operations past a limit
 * fail with -EDQUOT and change nothing; a directory tree renamed between
 * two quotas takes its usage along, nested quotas included; a usage that
 * drifted (written behind the layer's back) is found and repaired by
 * meta_quota_check; RMDIR takes a quota along; meta_path.  The billing
 * figures of a quota (logical and trash bytes) follow size changes,
 * renames of files and trees, hard links, the trash (removal, restore,
 * expiry) to the byte, always as meta_quota_check counts them; a quota
 * from before the figures were kept has none until repaired.
 */
#include "config.h"

#include "meta/kv.h"
#include "t/unit/meta_test.h"

static uint64_t
mkdir_(struct meta *m, uint64_t dir, const char *name)
{
	uint64_t ino = mk(m, &root_cred, dir, name, META_DIR, 0755, NULL);

	CHECK_FATAL(ino != 0, "mkdir %s", name);
	return ino;
}

static int
grow(struct meta *m, uint64_t ino, uint64_t size)
{
	struct meta_setattr s = {.valid = META_SET_SIZE, .size = size};

	return meta_setattr(m, &root_cred, ino, &s, NULL, NULL);
}

static void
used_is(struct meta *m, uint64_t dir, uint64_t bytes, uint64_t inodes,
	const char *what)
{
	struct meta_quota q;
	int rc = meta_quota_get(m, dir, &q);

	CHECK(rc == 0 && q.used_bytes == bytes && q.used_inodes == inodes,
	      "%s: %llu bytes, %llu inodes (got %d: %llu, %llu)", what,
	      (unsigned long long)bytes, (unsigned long long)inodes, rc,
	      (unsigned long long)q.used_bytes,
	      (unsigned long long)q.used_inodes);
}

static void
set(struct meta *m, uint64_t dir, uint64_t bytes, uint64_t inodes)
{
	struct meta_quota q = {.ino = dir,
			       .max_bytes = bytes,
			       .max_inodes = inodes},
			  out;

	CHECK_FATAL(meta_quota_set(m, &q, NULL, NULL, &out) == 0,
		    "quota set on %llu", (unsigned long long)dir);
}

static void
test_limits(struct meta *m)
{
	uint64_t t = mkdir_(m, META_ROOT_INO, "t"), sub, f, g;
	struct meta_attr a;
	char path[64];
	int rc;

	sub = mkdir_(m, t, "sub");
	f = mk(m, &root_cred, sub, "f", META_REG, 0644, NULL);
	CHECK_EQ(grow(m, f, 10000), 0, "grow f to 10000");
	set(m, t, 16384, 4);
	used_is(m, t, 12288, 2, "a quota set on a tree counts it");
	CHECK_EQ(meta_path(m, f, path, sizeof(path)), 0, "meta_path");
	CHECK(strcmp(path, "/t/sub/f") == 0, "path of f is /t/sub/f (%s)",
	      path);
	CHECK_EQ(meta_path(m, META_ROOT_INO, path, sizeof(path)), 0,
		 "meta_path of the root");
	CHECK(strcmp(path, "/") == 0, "path of the root is / (%s)", path);

	CHECK_EQ(grow(m, f, 16385), -EDQUOT, "growing past the bytes");
	CHECK(meta_getattr(m, f, &a) == 0 && a.size == 10000,
	      "and the size did not change");
	CHECK_EQ(grow(m, f, 16384), 0, "growing to the limit");
	CHECK_EQ(meta_quota_write_room(m, f, 16384), 0,
		 "a write inside the file fits");
	CHECK_EQ(meta_quota_write_room(m, f, 16385), -EDQUOT,
		 "a write one byte past does not");
	g = mk(m, &root_cred, t, "g", META_REG, 0644, &rc);
	CHECK(g != 0, "a third inode");
	mk(m, &root_cred, t, "h", META_REG, 0644, &rc);
	CHECK_EQ(rc, 0, "a fourth inode");
	mk(m, &root_cred, t, "i", META_REG, 0644, &rc);
	CHECK_EQ(rc, -EDQUOT, "a fifth: past the inodes");
	CHECK_EQ(meta_unlink(m, &root_cred, t, "h", NULL, NULL), 0,
		 "unlink frees one");
	used_is(m, t, 16384, 3, "after the unlink");

	/* Over a lowered limit, freeing is never refused. */
	set(m, t, 4096, 4);
	CHECK_EQ(grow(m, f, 8192), 0, "shrinking while over a limit");
	CHECK_EQ(grow(m, f, 8193), -EDQUOT, "growing while over it");
	used_is(m, t, 8192, 3, "lowered limit");
}

static void
test_move_between(struct meta *m)
{
	uint64_t a = mkdir_(m, META_ROOT_INO, "qa");
	uint64_t b = mkdir_(m, META_ROOT_INO, "qb");
	uint64_t d, n, f, x;
	struct meta_attr at;

	d = mkdir_(m, a, "d");
	n = mkdir_(m, d, "n");
	f = mk(m, &root_cred, n, "f", META_REG, 0644, NULL);
	CHECK_EQ(grow(m, f, 5000), 0, "a file deep in qa");
	mk(m, &root_cred, d, "g", META_REG, 0644, NULL);
	set(m, a, 0, 100);
	set(m, b, 1 << 20, 100);
	set(m, n, 0, 0); /* a quota without limits inside the tree */
	used_is(m, a, 8192, 4, "qa: d, n, f, g");
	used_is(m, n, 8192, 1, "n: f");
	CHECK_EQ(meta_rename(m, &root_cred, a, "d", b, "d", NULL, NULL, NULL,
			     NULL),
		 0, "rename qa/d to qb/d");
	used_is(m, a, 0, 0, "qa after the move");
	used_is(m, b, 8192, 4, "qb after the move");
	used_is(m, n, 8192, 1, "the quota inside moved along unchanged");
	set(m, b, 4096, 100);
	CHECK_EQ(meta_rename(m, &root_cred, b, "d", a, "d", NULL, NULL, NULL,
			     NULL),
		 0, "moving out of a quota over its limit");
	set(m, b, 4096, 100);
	CHECK_EQ(meta_rename(m, &root_cred, a, "d", b, "d", NULL, NULL, NULL,
			     NULL),
		 -EDQUOT, "moving into it again: too big");
	CHECK(meta_lookup(m, &root_cred, a, "d", &x, &at) == 0,
	      "the refused move left d where it was");
	used_is(m, a, 8192, 4, "qa unchanged");
	used_is(m, b, 0, 0, "qb unchanged");
	/* RMDIR of a quota'd directory. */
	CHECK_EQ(meta_unlink(m, &root_cred, n, "f", NULL, NULL), 0, "empty n");
	CHECK_EQ(meta_rmdir(m, &root_cred, d, "n", NULL, NULL), 0,
		 "rmdir n, which carries a quota");
	{
		struct meta_quota q;

		CHECK_EQ(meta_quota_get(m, n, &q), -ENOENT,
			 "its quota is gone");
	}
}

/* The key of a quota record of volume "test": NUL Q ino what. */
static size_t
quota_key(uint8_t *key, uint64_t ino, char what)
{
	memcpy(key, "test", 5);
	key[5] = 'Q';
	tl_put_be64(key + 6, ino);
	key[14] = (uint8_t)what;
	return 15;
}

static int
count_cb(void *arg, const struct meta_quota *q)
{
	(void)q;
	++*(int *)arg;
	return 0;
}

static void
test_drift(struct meta *m)
{
	struct meta_quota_fix fix;
	struct meta_kv_txn *t;
	uint8_t key[64];
	size_t kl = 0;
	uint64_t d = mkdir_(m, META_ROOT_INO, "drift");
	int64_t delta[2] = {12345, -1};
	int n = 0;

	mk(m, &root_cred, d, "x", META_REG, 0644, NULL);
	set(m, d, 0, 10);
	/* Write a wrong usage behind the layer's back */
	kl = quota_key(key, d, 'U');
	CHECK_FATAL(meta_kv_begin(meta_engine(m), false, &t) == 0, "begin");
	CHECK_EQ(meta_kv_add(t, key, kl, delta, 2), 0, "add drift");
	CHECK_EQ(meta_kv_commit(t), 0, "commit drift");
	used_is(m, d, 12345, 0, "drifted");
	CHECK_EQ(meta_quota_check(m, d, false, NULL, NULL, &fix), 0,
		 "check without repair");
	CHECK(fix.drift && !fix.repaired && fix.actual_bytes == 0 &&
		      fix.actual_inodes == 1 && fix.q.used_bytes == 12345,
	      "finds the drift (counted 0 bytes, 1 inode)");
	used_is(m, d, 12345, 0, "not repaired");
	CHECK_EQ(meta_quota_check(m, d, true, NULL, NULL, &fix), 0,
		 "check with repair");
	CHECK(fix.drift && fix.repaired, "repairs it");
	used_is(m, d, 0, 1, "repaired");
	CHECK_EQ(meta_quota_check(m, d, false, NULL, NULL, &fix), 0,
		 "check again");
	CHECK(!fix.drift, "clean");
	CHECK_EQ(meta_quota_list(m, count_cb, &n), 0, "list");
	CHECK(n == 4, "four quotas listed (%d)", n);
	CHECK_EQ(meta_quota_delete(m, d), 0, "delete");
	CHECK_EQ(meta_quota_delete(m, d), -ENOENT, "delete again");
}

/* The figures of quota dir, and meta_quota_check counting the same. */
static void
figures_are(struct meta *m, uint64_t dir, uint64_t logical, uint64_t trash,
	    const char *what)
{
	struct meta_quota_fix fix;
	struct meta_quota q;

	CHECK_EQ(meta_quota_get(m, dir, &q), 0, "%s: get", what);
	CHECK(q.has_figures, "%s: figures kept", what);
	CHECK_EQ(q.logical_bytes, logical, "%s: logical bytes", what);
	CHECK_EQ(q.trash_bytes, trash, "%s: trash bytes", what);
	CHECK_EQ(meta_quota_check(m, dir, false, NULL, NULL, &fix), 0,
		 "%s: check", what);
	CHECK(!fix.drift && fix.actual_logical == logical &&
		      fix.actual_trash == trash,
	      "%s: check counts the same (%llu, %llu)", what,
	      (unsigned long long)fix.actual_logical,
	      (unsigned long long)fix.actual_trash);
}

/* An operation's result, then the logical bytes of quotas a and b (no
 * trash bytes). */
static void
step(struct meta *m, int rc, uint64_t a, uint64_t la, uint64_t b, uint64_t lb,
     const char *what)
{
	CHECK_EQ(rc, 0, "%s", what);
	figures_are(m, a, la, 0, what);
	figures_are(m, b, lb, 0, what);
}

struct first_entry {
	char hour[32], name[300];
};

static int
first_cb(void *arg, const struct meta_trash_entry *e)
{
	struct first_entry *f = arg;

	snprintf(f->hour, sizeof(f->hour), "%s", e->hour);
	snprintf(f->name, sizeof(f->name), "%s", e->name);
	return 1;
}

static struct meta *
trash_volume(struct fixture *fx)
{
	struct meta *m;

	fixture_init(fx);
	m = fixture_volume(fx, 0, 0);
	CHECK_EQ(meta_set_trash_days(m, 1), 0, "trash on");
	return m;
}

static void
test_figures(void)
{
	struct meta_trash_done done = {0, 0};
	struct first_entry fe;
	struct meta_quota_fix fix;
	struct meta_quota q;
	struct meta_kv_txn *kt;
	uint64_t a, b, sub, f, g, h, x;
	struct fixture fx;
	struct meta_attr at;
	struct meta *m;
	uint8_t key[64], lim[16] = {0};
	int64_t drift[2] = {7, 3};
	struct meta_fsck_opts fo = {0};
	struct meta_fsck_report fr;
	size_t kl;
	bool more;

	m = trash_volume(&fx);
	a = mkdir_(m, META_ROOT_INO, "fa");
	b = mkdir_(m, META_ROOT_INO, "fb");
	sub = mkdir_(m, a, "sub");
	f = mk(m, &root_cred, sub, "f", META_REG, 0644, NULL);
	CHECK_EQ(grow(m, f, 5000), 0, "f: 5000 bytes, before the quota");
	set(m, a, 0, 0);
	set(m, b, 1 << 20, 0);
	set(m, META_ROOT_INO, 0, 0); /* the trash is in its tree */
	figures_are(m, a, 5000, 0, "a counted at set");
	g = mk(m, &root_cred, a, "g", META_REG, 0644, NULL);
	CHECK_EQ(grow(m, g, 123), 0, "g: 123 bytes");
	CHECK_EQ(grow(m, f, 4000), 0, "f truncated to 4000");
	figures_are(m, a, 4123, 0, "sizes");
	/* a file renamed across quotas, hard links, a tree renamed */
	step(m,
	     meta_rename(m, &root_cred, a, "g", b, "g", NULL, NULL, NULL, NULL),
	     a, 4000, b, 123, "rename a/g to b/g");
	step(m, meta_link(m, &root_cred, f, a, "f2", NULL, NULL, NULL), a, 4000,
	     b, 123, "link sub/f as a/f2: a link counts once");
	step(m, meta_link(m, &root_cred, f, b, "f3", NULL, NULL, NULL), a, 0, b,
	     4123, "link it as b/f3: it counts where last linked");
	step(m, meta_unlink(m, &root_cred, b, "f3", NULL, NULL), a, 4000, b,
	     123, "unlink b/f3: back to a");
	step(m,
	     meta_rename(m, &root_cred, a, "sub", b, "sub", NULL, NULL, NULL,
			 NULL),
	     a, 4000, b, 123,
	     "rename a/sub to b/sub: f counts by its link a/f2");
	step(m, meta_unlink(m, &root_cred, a, "f2", NULL, NULL), a, 0, b, 4123,
	     "unlink a/f2: f's parent is b/sub again");
	/* the trash: removed from under b, moved away, restored */
	CHECK_EQ(meta_unlink(m, &root_cred, sub, "f", NULL, NULL), 0,
		 "remove b/sub/f: into the trash");
	figures_are(m, b, 123, 4000, "b: f in its trash bytes");
	CHECK_EQ(meta_link(m, &root_cred, f, a, "out", NULL, NULL, NULL),
		 -EPERM, "a file in the trash cannot be linked out of it");
	figures_are(m, META_ROOT_INO, 123, 4000, "root: f in the trash");
	CHECK_EQ(meta_rename(m, &root_cred, b, "sub", a, "sub", NULL, NULL,
			     NULL, NULL),
		 0, "rename b/sub to a/sub");
	figures_are(m, b, 123, 4000, "b keeps what was removed under it");
	figures_are(m, a, 0, 0, "a: nothing");
	CHECK_EQ(meta_trash_list(m, 0, first_cb, &fe), 0, "trash list");
	CHECK_EQ(meta_trash_restore(m, fe.hour, fe.name, 0, NULL, &x), 0,
		 "restore f");
	CHECK_EQ(x, sub, "f back in sub");
	figures_are(m, b, 123, 0, "b: f out of its trash bytes");
	figures_are(m, a, 4000, 0, "a: f restored under it");
	h = mk(m, &root_cred, b, "h", META_REG, 0644, NULL);
	CHECK_EQ(grow(m, h, 777), 0, "h: 777 bytes");
	CHECK_EQ(meta_unlink(m, &root_cred, b, "h", NULL, NULL), 0,
		 "remove b/h");
	CHECK_EQ(meta_unlink(m, &root_cred, b, "g", NULL, NULL), 0,
		 "remove b/g");
	figures_are(m, b, 0, 900, "b: g and h in the trash");
	figures_are(m, META_ROOT_INO, 4000, 900, "root: g and h trashed");
	CHECK_EQ(meta_trash_expire(m, UINT64_MAX, 100, &done, &more), 0,
		 "expire the trash");
	CHECK_EQ(done.files, 2, "two files released");
	figures_are(m, b, 0, 0, "b: released");
	figures_are(m, META_ROOT_INO, 4000, 0, "root: released");
	CHECK(meta_lookup(m, &root_cred, sub, "f", &x, &at) == 0 &&
		      at.size == 4000,
	      "f is still there");
	/* A quota from before the figures: its L record of 16 bytes. */
	kl = quota_key(key, a, 'L');
	CHECK_FATAL(meta_kv_begin(meta_engine(m), false, &kt) == 0, "begin");
	CHECK_EQ(meta_kv_put(kt, key, kl, lim, 16), 0, "an old L record");
	key[kl - 1] = 'B';
	CHECK_EQ(meta_kv_del(kt, key, kl), 0, "without B");
	CHECK_EQ(meta_kv_commit(kt), 0, "commit");
	CHECK_EQ(meta_quota_get(m, a, &q), 0, "get the old quota");
	CHECK(!q.has_figures && q.used_bytes == 4096,
	      "no figures; its usage as it was");
	CHECK_EQ(grow(m, f, 4500), 0, "f grows while a keeps no figures");
	CHECK_EQ(meta_quota_check(m, a, false, NULL, NULL, &fix), 0, "check");
	CHECK(fix.drift && !fix.repaired && fix.actual_logical == 4500,
	      "no figures: a drift to repair");
	CHECK_EQ(meta_fsck(m, &fo, &fr), 0, "fsck");
	CHECK_EQ(fr.found[META_FSCK_USAGE], 1, "fsck finds it");
	fo.repair = true;
	CHECK_EQ(meta_fsck(m, &fo, &fr), 0, "fsck --repair");
	CHECK_EQ(fr.repaired[META_FSCK_USAGE], 1, "fsck repairs it");
	figures_are(m, a, 4500, 0, "a keeps figures again");
	/* figures that drifted: quota check repairs them */
	CHECK_FATAL(meta_kv_begin(meta_engine(m), false, &kt) == 0, "begin");
	CHECK_EQ(meta_kv_add(kt, key, kl, drift, 2), 0, "add drift to B");
	CHECK_EQ(meta_kv_commit(kt), 0, "commit");
	CHECK_EQ(meta_quota_check(m, a, true, NULL, NULL, &fix), 0,
		 "check --repair");
	CHECK(fix.drift && fix.repaired && fix.q.logical_bytes == 4507 &&
		      fix.q.trash_bytes == 3,
	      "repaired (it read 4507 and 3)");
	figures_are(m, a, 4500, 0, "a right again");
	meta_close(m);
	fixture_done(&fx);
}

int
main(void)
{
	struct fixture f;
	struct meta *m = fixture_open(&f);

	test_limits(m);
	test_move_between(m);
	test_drift(m);
	meta_close(m);
	fixture_done(&f);
	test_figures();
	return tap_done();
}
