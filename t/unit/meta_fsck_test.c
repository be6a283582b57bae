/*
 * meta_fsck_test - meta_fsck on a real LMDB volume: a volume built
 * through the API is clean; each corruption written with meta/kv.h
 * directly is found in its category (and only there), --repair fixes what
 * it can, and a second check is clean again.
 */
#include "config.h"

#include "meta/kv.h"
#include "meta/meta-internal.h"
#include "t/unit/meta_test.h"

static uint64_t missing_slice; /* slice_check reports it missing */

static int
slice_check(void *arg, uint64_t id, uint32_t size)
{
	(void)size;
	++*(uint64_t *)arg;
	return id == missing_slice ? 1 : 0;
}

static void
on_problem(void *arg, enum meta_fsck_cat c, const char *msg)
{
	(void)arg;
	printf("#   [%s] %s\n", meta_fsck_cat_name(c), msg);
}

static struct meta_fsck_report
fsck(struct meta *m, bool repair)
{
	uint64_t checked = 0;
	struct meta_fsck_opts o = {repair, slice_check, on_problem,
				   NULL,   &checked,    false};
	struct meta_fsck_report r;

	CHECK_EQ(meta_fsck(m, &o, &r), 0, "fsck%s runs",
		 repair ? " --repair" : "");
	return r;
}

/* Exactly the categories in mask have problems. */
static void
expect(struct meta *m, unsigned mask, const char *what)
{
	struct meta_fsck_report r = fsck(m, false);

	for (int c = 0; c < META_FSCK_NCAT; c++)
		CHECK((r.found[c] != 0) == !!(mask & (1u << c)), "%s: %s %s",
		      what, meta_fsck_cat_name(c),
		      mask & (1u << c) ? "found" : "clean");
}

/* Repair, then only `left` categories remain. */
static void
repair(struct meta *m, unsigned left, const char *what)
{
	struct meta_fsck_report r = fsck(m, true);

	CHECK(r.problems > 0, "%s: repair saw the problem", what);
	expect(m, left, what);
}

static void
kv_put(struct meta *m, const struct meta_key *k, const void *v, size_t n)
{
	struct meta_kv_txn *t;

	CHECK_FATAL(meta_kv_begin(m->kv, false, &t) == 0, "kv begin");
	CHECK(meta_kv_put(t, k->b, k->len, v, n) == 0, "kv put");
	CHECK(meta_kv_commit(t) == 0, "kv commit");
}

static void
kv_del(struct meta *m, const struct meta_key *k)
{
	struct meta_kv_txn *t;

	CHECK_FATAL(meta_kv_begin(m->kv, false, &t) == 0, "kv begin");
	CHECK(meta_kv_del(t, k->b, k->len) == 0, "kv del");
	CHECK(meta_kv_commit(t) == 0, "kv commit");
}

/* Read-modify-write of an inode record. */
static void
set_nlink(struct meta *m, uint64_t ino, uint32_t nlink)
{
	struct inode in;
	struct mtxn t;

	CHECK_FATAL(meta_txn_begin(m, &t, false) == 0, "txn");
	CHECK(meta_inode_get(&t, ino, &in) == 0, "inode get");
	in.a.nlink = nlink;
	CHECK(meta_inode_put(&t, &in) == 0, "inode put");
	CHECK(meta_txn_end(&t, 0) == 0, "txn end");
}

static uint64_t
mkfile(struct meta *m, uint64_t dir, const char *name, uint32_t bytes)
{
	struct meta_new n = new_of(META_REG, 0644, &root_cred);
	struct meta_slice_write w = {0, {0, bytes, 0, bytes, 0}};
	uint64_t ino;

	CHECK_FATAL(meta_create(m, &root_cred, dir, name, &n, &ino, NULL, NULL,
				NULL, NULL) == 0,
		    "create %s", name);
	CHECK_FATAL(meta_new_slice_id(m, &w.s.id) == 0, "slice id");
	CHECK_FATAL(meta_write_slices(m, ino, &w, 1, 1, NULL, NULL) == 0,
		    "write %s", name);
	return ino;
}

#define BIT(c) (1u << (c))

int
main(void)
{
	struct fixture f;
	struct meta_key k;
	struct meta_slice *sl;
	struct meta *m;
	uint64_t d1, d2, a, b, c, ino;
	uint8_t v[16];
	size_t n;

	fixture_init(&f);
	m = fixture_volume(&f, 0, 0);
	d1 = mk(m, &root_cred, 1, "d1", META_DIR, 0755, NULL);
	d2 = mk(m, &root_cred, d1, "d2", META_DIR, 0755, NULL);
	CHECK_FATAL(d1 && d2, "mkdir d1 d1/d2");
	a = mkfile(m, d1, "a", 10000);
	b = mkfile(m, d2, "b", 5000);
	c = mkfile(m, 1, "c", 70000);
	CHECK(meta_link(m, &root_cred, a, d2, "a-link", NULL, NULL, NULL) == 0,
	      "link");
	ino = mkfile(m, 1, "gone", 4096);
	CHECK(meta_unlink(m, &root_cred, 1, "gone", NULL, NULL) == 0,
	      "unlink leaves a deletion record");
	expect(m, 0, "fresh volume");

	/* inline data (meta.h): bytes missing, of the wrong length, or
	 * named by no record */
	{
		struct meta_new nw = new_of(META_REG, 0644, &root_cred);
		struct meta_slice_write w = {0, {0, 300, 0, 300, 0}};
		uint8_t buf[300] = {1, 2, 3};
		uint64_t fi, id;

		CHECK_FATAL(meta_create(m, &root_cred, 1, "in", &nw, &fi, NULL,
					NULL, NULL, NULL) == 0,
			    "create in");
		CHECK_FATAL(meta_new_slice_id(m, &id) == 0, "slice id");
		id |= META_SLICE_INLINE;
		w.s.id = id;
		CHECK_FATAL(meta_write_inline(m, fi, &w, 1, id, buf, 300, 1,
					      NULL, NULL) == 0,
			    "write an inline file");
		expect(m, 0, "an inline file");
		meta_key_slice(m, &k, 'I', id, 300);
		kv_del(m, &k);
		expect(m, BIT(META_FSCK_BLOCKS), "inline bytes missing");
		kv_put(m, &k, buf, 299);
		expect(m, BIT(META_FSCK_BLOCKS),
		       "inline bytes of the wrong "
		       "length");
		kv_put(m, &k, buf, 300);
		expect(m, 0, "inline bytes back");
		meta_key_slice(m, &k, 'I', id + 1, 50);
		kv_put(m, &k, buf, 50);
		expect(m, BIT(META_FSCK_LEAK), "inline bytes no record names");
		kv_del(m, &k);
		expect(m, 0, "stray inline bytes gone");
	}

	/* nlink */
	set_nlink(m, a, 7);
	set_nlink(m, d1, 9);
	expect(m, BIT(META_FSCK_NLINK), "wrong nlink");
	repair(m, 0, "wrong nlink");

	/* readdir index: an O key removed */
	{
		uint64_t cookie;
		struct mtxn t;

		CHECK_FATAL(meta_txn_begin(m, &t, true) == 0, "txn");
		CHECK(meta_dentry_get(&t, d2, "b", 1, NULL, &ino, &cookie) == 0,
		      "dentry");
		meta_txn_end(&t, 0);
		meta_key_order(m, &k, d2, cookie);
		kv_del(m, &k);
		expect(m, BIT(META_FSCK_INDEX), "index entry missing");
		repair(m, 0, "index entry missing");
		/* and a stale one */
		meta_key_order(m, &k, d2, 999);
		kv_put(m, &k, "\0\0\0\0\0\0\0\7\1x", 10);
		expect(m, BIT(META_FSCK_INDEX), "stale index entry");
		repair(m, 0, "stale index entry");
	}

	/* a dentry naming a missing inode; a dentry of the wrong type */
	{
		uint8_t dv[17] = {META_REG};

		tl_put_be64(dv + 1, 424242);
		tl_put_be64(dv + 9, 3000);
		meta_key_dentry(m, &k, d1, "ghost", 5);
		kv_put(m, &k, dv, 17);
		expect(m, BIT(META_FSCK_DANGLING), "dangling entry");
		repair(m, 0, "dangling entry");
		CHECK(meta_lookup(m, &root_cred, d1, "ghost", &ino, NULL) ==
			      -ENOENT,
		      "ghost entry removed");

		dv[0] = META_DIR;
		tl_put_be64(dv + 1, c);
		tl_put_be64(dv + 9, 3);
		meta_key_dentry(m, &k, 1, "c", 1);
		kv_put(m, &k, dv, 17);
		expect(m, BIT(META_FSCK_TYPE) | BIT(META_FSCK_INDEX),
		       "entry type differs");
		repair(m, 0, "entry type differs");
	}

	/* usage and volume counters */
	meta_key_usage(m, &k, d1);
	memset(v, 0, 16);
	v[7] = 1;
	kv_put(m, &k, v, 16);
	expect(m, BIT(META_FSCK_USAGE), "directory usage");
	repair(m, 0, "directory usage");
	meta_key_counter(m, &k, CNT_USED_BYTES);
	kv_put(m, &k, "\0\0\0\0\0\0\0\1", 8);
	meta_key_counter(m, &k, CNT_USED_INODES);
	kv_put(m, &k, "\0\0\0\0\0\0\1\0", 8);
	expect(m, BIT(META_FSCK_COUNTERS), "volume counters");
	repair(m, 0, "volume counters");

	/* slices: wrong refcount, a live slice queued for deletion, a
	 * missing block */
	CHECK_FATAL(meta_read_chunk(m, c, 0, 0, META_CHUNK_SIZE, &sl, &n) ==
				    0 &&
			    n == 1,
		    "chunk of c");
	meta_key_slice(m, &k, 'K', sl[0].id, sl[0].size);
	kv_put(m, &k, "\0\0\0\0\0\0\0\5", 8);
	expect(m, BIT(META_FSCK_REFCOUNT), "refcount");
	repair(m, 0, "refcount");
	meta_key_slice(m, &k, 'R', sl[0].id, sl[0].size);
	kv_put(m, &k, "", 0);
	expect(m, BIT(META_FSCK_PENDING) | BIT(META_FSCK_COUNTERS),
	       "live slice queued for deletion");
	repair(m, 0, "live slice queued for deletion");
	missing_slice = sl[0].id;
	expect(m, BIT(META_FSCK_BLOCKS), "missing block");
	missing_slice = 0;
	free(sl);

	/* an inode record lost: its entries dangle, its data leaks */
	meta_key_ino(m, &k, b, 'I');
	kv_del(m, &k);
	expect(m,
	       BIT(META_FSCK_DANGLING) | BIT(META_FSCK_USAGE) |
		       BIT(META_FSCK_COUNTERS) | BIT(META_FSCK_LEAK),
	       "inode record lost");
	repair(m, BIT(META_FSCK_LEAK), "inode record lost (leak stays)");
	CHECK(meta_lookup(m, &root_cred, d2, "b", &ino, NULL) == -ENOENT,
	      "entry of the lost inode removed");
	CHECK(meta_lookup(m, &root_cred, d2, "a-link", &ino, NULL) == 0 &&
		      ino == a,
	      "other entries intact");

	/* an orphan directory: not repairable */
	meta_key_dentry(m, &k, d1, "d2", 2);
	kv_del(m, &k);
	{
		struct meta_fsck_report r = fsck(m, false);

		CHECK(r.found[META_FSCK_ORPHAN] == 1, "orphan directory found");
		r = fsck(m, true);
		r = fsck(m, false);
		CHECK(r.found[META_FSCK_ORPHAN] == 1,
		      "orphan directory left as is by repair");
		CHECK(r.found[META_FSCK_NLINK] == 0, "d1's nlink repaired");
	}

	meta_close(m);
	fixture_done(&f);
	return tap_done();
}
