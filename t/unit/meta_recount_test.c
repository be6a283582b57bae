/*
 * meta_recount_test - meta_usage_recount (meta.h) on a real LMDB volume
 * with a trash: files live, in the trash, truncated (slices released,
 * pending), removed with more keys than a remove purges at once (a D
 * record) and overwritten in place (two slices of one chunk).  A fresh
 * volume's counters are marked exact.  The four byte counters and the
 * marker deleted with meta/kv.h directly (what a volume formatted before
 * them looks like) and a file written afterwards: the counters count
 * only that file.  The recount, with a file written and another removed
 * from within its pace callback (after its snapshot, before its write),
 * leaves counters that fsck finds exact, and the marker set; a second
 * recount answers -EALREADY and changes nothing.  A pace that says stop
 * cancels the recount.
 */
#include "config.h"

#include "meta/kv.h"
#include "meta/meta-internal.h"
#include "t/unit/meta_test.h"

static const char *const counters[] = {CNT_LOGICAL, CNT_STORED, CNT_TRASH_BYTES,
				       CNT_PENDING_BYTES, CNT_USAGE_VALID};

/* A file of one slice per chunk in chunks [0, nchunks), bytes each. */
static uint64_t
mkfile(struct meta *m, const char *name, uint32_t nchunks, uint32_t bytes)
{
	int rc;
	uint64_t ino =
		mk(m, &root_cred, META_ROOT_INO, name, META_REG, 0644, &rc);

	CHECK_FATAL(rc == 0, "create %s", name);
	for (uint32_t c = 0; c < nchunks; c++) {
		struct meta_slice_write w = {c, {0, bytes, 0, bytes, 0}};

		CHECK_FATAL(meta_new_slice_id(m, &w.s.id) == 0, "slice id");
		CHECK_FATAL(meta_write_slices(m, ino, &w, 1, 1, NULL, NULL) ==
				    0,
			    "write %s", name);
	}
	return ino;
}

static void
truncate_to(struct meta *m, uint64_t ino, uint64_t size)
{
	struct meta_setattr s = {.valid = META_SET_SIZE, .size = size};

	CHECK(meta_setattr(m, &root_cred, ino, &s, NULL, NULL) == 0,
	      "truncate to %llu", (unsigned long long)size);
}

static void
on_problem(void *arg, enum meta_fsck_cat c, const char *msg)
{
	(void)arg;
	printf("#   [%s] %s\n", meta_fsck_cat_name(c), msg);
}

static int
no_check(void *arg, uint64_t id, uint32_t size)
{
	(void)arg;
	(void)id;
	(void)size;
	return 0;
}

/* fsck (no repair): the usage counters are right. */
static bool
counters_exact(struct meta *m)
{
	struct meta_fsck_opts o = {false, no_check, on_problem,
				   NULL,  NULL,     false};
	struct meta_fsck_report r;

	CHECK_FATAL(meta_fsck(m, &o, &r) == 0, "fsck runs");
	return r.found[META_FSCK_COUNTERS] == 0;
}

static bool
marked(struct meta *m)
{
	bool v = false;

	CHECK(meta_usage_marked(m, &v) == 0, "read the marker");
	return v;
}

struct during {
	struct meta *m;
	int calls;
	bool stop;
};

/* Changes after the snapshot: what the counters must still count. */
static bool
pace(void *arg, uint64_t keys)
{
	struct during *d = arg;

	if (d->calls++ == 0 && !d->stop) {
		CHECK(keys == 0, "paced from the first key");
		mkfile(d->m, "during", 1, 7000);
		CHECK(meta_unlink(d->m, &root_cred, META_ROOT_INO, "live", NULL,
				  NULL) == 0,
		      "remove live: trashed");
	}
	return !d->stop;
}

int
main(void)
{
	struct fixture f;
	struct meta_usage u;
	struct meta_recount r;
	struct during d;
	struct meta_key k;
	struct meta_kv_txn *t;
	struct meta *m;
	uint64_t ino;

	fixture_init(&f);
	m = fixture_volume(&f, 0, 0);
	CHECK(marked(m), "a new volume's counters are marked exact");
	CHECK(meta_set_trash_days(m, 1) == 0, "trash_days 1");

	mkfile(m, "live", 1, 1000);
	mkfile(m, "trashed", 1, 3000);
	CHECK(meta_unlink(m, &root_cred, META_ROOT_INO, "trashed", NULL,
			  NULL) == 0,
	      "remove trashed: into the trash");
	ino = mkfile(m, "cut", 3, 500);
	truncate_to(m, ino, 0); /* three slices released: pending */
	ino = mkfile(m, "over", 1, 4000);
	{
		/* the first 1000 bytes again: two slices in one chunk */
		struct meta_slice_write w = {0, {0, 1000, 0, 1000, 0}};

		CHECK(meta_new_slice_id(m, &w.s.id) == 0 &&
			      meta_write_slices(m, ino, &w, 1, 1, NULL, NULL) ==
				      0,
		      "overwrite the head of over");
	}
	CHECK(meta_set_trash_days(m, 0) == 0, "trash_days 0");
	mkfile(m, "big", 40, 100);
	CHECK(meta_unlink(m, &root_cred, META_ROOT_INO, "big", NULL, NULL) == 0,
	      "remove big: a D record, purged later");
	CHECK(meta_set_trash_days(m, 1) == 0, "trash_days 1 again");
	CHECK(counters_exact(m), "fsck: the counters kept as it went are "
				 "exact");

	CHECK_FATAL(meta_kv_begin(m->kv, false, &t) == 0, "kv begin");
	for (size_t i = 0; i < TL_ARRAY_SIZE(counters); i++) {
		meta_key_counter(m, &k, counters[i]);
		CHECK(meta_kv_del(t, k.b, k.len) == 0, "delete counter %s",
		      counters[i]);
	}
	CHECK(meta_kv_commit(t) == 0, "kv commit");
	CHECK(!marked(m), "no marker");
	mkfile(m, "after", 1, 2000);
	CHECK(meta_usage(m, &u) == 0 && u.logical_bytes == 2000 &&
		      u.stored_bytes == 2000 && u.trash_bytes == 0 &&
		      u.pending_bytes == 0,
	      "the counters count only what changed since (%llu logical)",
	      (unsigned long long)u.logical_bytes);
	CHECK(!counters_exact(m), "fsck: the counters are wrong");

	memset(&d, 0, sizeof(d));
	d.m = m;
	d.stop = true;
	CHECK(meta_usage_recount(m, pace, &d, &r) == -ECANCELED,
	      "a pace that says stop cancels the recount");
	CHECK(!marked(m), "still no marker");

	memset(&d, 0, sizeof(d));
	d.m = m;
	CHECK(meta_usage_recount(m, pace, &d, &r) == 0, "recount");
	CHECK(d.calls >= 1 && r.keys > 0, "paced (%d calls, %llu keys)",
	      d.calls, (unsigned long long)r.keys);
	CHECK(r.was[0] == 2000 && r.now[0] == 1000 + 4000 + 2000,
	      "logical: the snapshot's counter 2000, counted %llu",
	      (unsigned long long)r.now[0]);
	CHECK(r.now[2] == 3000, "trash: 3000 in the snapshot (%llu)",
	      (unsigned long long)r.now[2]);
	CHECK(r.now[3] == 3 * 500 + 39 * META_CHUNK_SIZE + 100,
	      "pending: cut's released slices and big's size (%llu)",
	      (unsigned long long)r.now[3]);
	CHECK(marked(m), "the marker is set");
	CHECK(counters_exact(m), "fsck: the counters are exact, the changes "
				 "made during the recount included");
	CHECK(meta_usage(m, &u) == 0 && u.logical_bytes == 4000 + 2000 + 7000 &&
		      u.trash_bytes == 3000 + 1000,
	      "logical %llu, trash %llu", (unsigned long long)u.logical_bytes,
	      (unsigned long long)u.trash_bytes);
	CHECK(meta_usage_recount(m, NULL, NULL, &r) == -EALREADY,
	      "a second recount: -EALREADY");
	CHECK(counters_exact(m), "fsck: still exact");

	meta_close(m);
	fixture_done(&f);
	return tap_done();
}
