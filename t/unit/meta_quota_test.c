/*
 * meta_quota_test.c - directory quotas in the metadata layer (quota.c):
 * a quota set on a populated tree counts it; operations past a limit
 * fail with -EDQUOT and change nothing; a directory tree renamed between
 * two quotas takes its usage along, nested quotas included; a usage that
 * drifted (written behind the layer's back) is found and repaired by
 * meta_quota_check; RMDIR takes a quota along; meta_path.
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
	struct meta_quota q = {dir, bytes, inodes, 0, 0}, out;

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
	CHECK_EQ(
	    meta_rename(m, &root_cred, a, "d", b, "d", NULL, NULL, NULL, NULL),
	    0, "rename qa/d to qb/d");
	used_is(m, a, 0, 0, "qa after the move");
	used_is(m, b, 8192, 4, "qb after the move");
	used_is(m, n, 8192, 1, "the quota inside moved along unchanged");
	set(m, b, 4096, 100);
	CHECK_EQ(
	    meta_rename(m, &root_cred, b, "d", a, "d", NULL, NULL, NULL, NULL),
	    0, "moving out of a quota over its limit");
	set(m, b, 4096, 100);
	CHECK_EQ(
	    meta_rename(m, &root_cred, a, "d", b, "d", NULL, NULL, NULL, NULL),
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
	/* Write a wrong usage behind the layer's back: "test" NUL Q ino U */
	memcpy(key, "test", 5);
	kl = 5;
	key[kl++] = 'Q';
	tl_put_be64(key + kl, d);
	kl += 8;
	key[kl++] = 'U';
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

int
main(void)
{
	struct fixture f;
	struct meta *m;

	fixture_init(&f);
	m = fixture_volume(&f, 0, 0);
	test_limits(m);
	test_move_between(m);
	test_drift(m);
	meta_close(m);
	fixture_done(&f);
	return tap_done();
}
