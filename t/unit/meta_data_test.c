/*
 * meta_data_test.c - slices, truncation holes, gc of removed data,
 * capacity and inode limits, exact usage counters.
 */
#include "config.h"

#include <inttypes.h>

#include "meta/meta-internal.h"
#include "t/unit/meta_test.h"

#define MiB (1ULL << 20)

static struct meta_slice_write
sw(uint32_t chunk, uint64_t id, uint32_t size, uint32_t pos)
{
	struct meta_slice_write w = {chunk, {id, size, 0, size, pos}};

	return w;
}

static uint64_t
used_bytes(struct meta *m)
{
	struct meta_usage u;

	CHECK_EQ(meta_usage(m, &u), 0, "usage");
	return u.used_bytes;
}

static void
test_write_read(struct meta *m)
{
	uint64_t f = mk(m, &root_cred, 1, "w", META_REG, 0644, NULL), id1, id2;
	struct meta_slice_write w[3];
	struct meta_slice *s;
	struct meta_attr a;
	size_t n;

	CHECK_EQ(meta_new_slice_id(m, &id1), 0, "slice id");
	CHECK_EQ(meta_new_slice_id(m, &id2), 0, "slice id");
	CHECK(id1 > 0 && id2 > id1, "slice ids grow");
	CHECK_EQ(meta_read_chunk(m, f, 0, 0, META_CHUNK_SIZE, &s, &n), 0,
		 "read unwritten chunk");
	CHECK(s == NULL && n == 0, "unwritten chunk is empty");
	w[0] = sw(0, id1, 1000, 0);
	w[1] = sw(0, id2, 100, 500);
	w[2] = sw(1, id2 + 1000, 10, 0);
	CHECK_EQ(meta_write_slices(m, f, w, 3, 12345, &a, NULL), 0,
		 "write slices");
	CHECK_EQ(a.size, META_CHUNK_SIZE + 10, "size is the end of the write");
	CHECK_EQ(a.mtime_ns, 12345, "mtime from the caller");
	CHECK_EQ(a.ctime_ns, 12345, "ctime too");
	CHECK_EQ(meta_read_chunk(m, f, 0, 0, META_CHUNK_SIZE, &s, &n), 0,
		 "read chunk 0");
	CHECK(n == 2 && s[0].id == id1 && s[1].id == id2 && s[1].pos == 500 &&
		      s[1].len == 100,
	      "records in write order");
	free(s);
	CHECK_EQ(used_bytes(m), META_CHUNK_SIZE + 4096,
		 "used bytes rounded to 4 KiB");
	w[0] = sw(0, id1, 10, META_CHUNK_SIZE - 5);
	CHECK_EQ(meta_write_slices(m, f, w, 1, 1, NULL, NULL), -EINVAL,
		 "slice past the chunk end -> EINVAL");
	w[0] = sw((uint32_t)(META_MAX_FILE_SIZE / META_CHUNK_SIZE), id1, 10, 0);
	CHECK_EQ(meta_write_slices(m, f, w, 1, 1, NULL, NULL), -EFBIG,
		 "past the largest file -> EFBIG");
	w[0] = sw(0, id1, 10, 0);
	CHECK_EQ(meta_write_slices(m, 999999, w, 1, 1, NULL, NULL), -ENOENT,
		 "write to a missing inode -> ENOENT");
}

static void
test_truncate(struct meta *m)
{
	uint64_t f = mk(m, &root_cred, 1, "t", META_REG, 0644, NULL), id;
	struct meta_slice_write w[2];
	struct meta_setattr s = {META_SET_SIZE, 0, 0, 0, 0, 0, 0, 0};
	struct meta_slice_ref r[16];
	struct meta_slice *sl;
	struct meta_attr a;
	size_t n;

	meta_new_slice_id(m, &id);
	w[0] = sw(0, id, 8 * MiB, 0);
	w[1] = sw(2, id + 1, 4 * MiB, 0);
	CHECK_EQ(meta_write_slices(m, f, w, 2, 1, NULL, NULL), 0,
		 "write 2 chunks");
	{
		uint32_t recs[2] = {0, 0};

		w[1].s.pos = 4096;
		w[1].s.len = 4096;
		CHECK_EQ(meta_write_slices(m, f, w + 1, 1, 1, NULL, recs), 0,
			 "one more record in chunk 2");
		CHECK_EQ(recs[0], 2, "the write says chunk 2 holds 2 records");
	}
	s.size = 1000;
	CHECK_EQ(meta_setattr(m, &root_cred, f, &s, NULL, &a), 0, "truncate");
	CHECK_EQ(a.size, 1000, "size after shrink");
	CHECK_EQ(meta_read_chunk(m, f, 2, 0, META_CHUNK_SIZE, &sl, &n), 0,
		 "read dropped chunk");
	CHECK(n == 0, "chunk past the end dropped");
	free(sl);
	CHECK_EQ(meta_read_chunk(m, f, 0, 0, META_CHUNK_SIZE, &sl, &n), 0,
		 "read boundary chunk");
	CHECK(n == 2 && sl[1].id == 0 && sl[1].pos == 1000 &&
		      sl[1].len == META_CHUNK_SIZE - 1000,
	      "hole slice hides the rest of the boundary chunk");
	free(sl);
	s.size = 3 * META_CHUNK_SIZE;
	CHECK_EQ(meta_setattr(m, &root_cred, f, &s, NULL, &a), 0, "extend");
	CHECK_EQ(a.size, 3 * META_CHUNK_SIZE, "size after extend");
	CHECK_EQ(meta_gc_next(m, r, 16, &n), 0, "gc next");
	CHECK(n == 1 && r[0].id == id + 1 && r[0].size == 4 * MiB,
	      "dropped chunk's slice is released");
	CHECK_EQ(meta_gc_release(m, r, n), 0, "gc release");
	CHECK_EQ(meta_gc_next(m, r, 16, &n), 0, "gc next again");
	CHECK_EQ(n, 0, "nothing left to release");
	s.size = 0;
	CHECK_EQ(meta_setattr(m, &root_cred, f, &s, NULL, &a), 0, "to zero");
	CHECK_EQ(meta_gc_next(m, r, 16, &n), 0, "gc");
	CHECK(n == 1 && r[0].id == id, "slice of chunk 0 released");
	meta_gc_release(m, r, n);
	s.size = 10;
	s.valid = META_SET_SIZE;
	{
		uint64_t d = mk(m, &root_cred, 1, "tdir", META_DIR, 0755, NULL);

		CHECK_EQ(meta_setattr(m, &root_cred, d, &s, NULL, NULL),
			 -EISDIR, "truncate a directory -> EISDIR");
	}
}

static void
test_unlink_gc(struct meta *m)
{
	uint64_t f = mk(m, &root_cred, 1, "g", META_REG, 0644, NULL), id;
	struct meta_slice_write w[3];
	struct meta_slice_ref r[2];
	struct meta_usage u0, u;
	size_t n, total = 0;

	meta_usage(m, &u0);
	meta_new_slice_id(m, &id);
	w[0] = sw(0, id, 4096, 0);
	w[1] = sw(0, id, 4096, 4096); /* the same slice twice in a chunk */
	w[2] = sw(5, id + 7, 4096, 0);
	CHECK_EQ(meta_write_slices(m, f, w, 3, 1, NULL, NULL), 0, "write");
	CHECK_EQ(meta_unlink(m, &root_cred, 1, "g", NULL, NULL), 0, "unlink");
	meta_usage(m, &u);
	CHECK_EQ(u.used_bytes, u0.used_bytes, "used bytes back");
	CHECK_EQ(u.used_inodes, u0.used_inodes - 1, "one inode less");
	CHECK_EQ(u.pending_delete, u0.pending_delete + 2,
		 "a small file's two slices are released at once");
	CHECK_EQ(meta_write_slices(m, f, w, 1, 1, NULL, NULL), -ENOENT,
		 "write to an unlinked file -> ENOENT");
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(meta_gc_next(m, r, 2, &n), 0, "gc next");
		total += n;
		meta_gc_release(m, r, n);
	}
	CHECK_EQ(total, 2, "both distinct slices released once");
	meta_usage(m, &u);
	CHECK_EQ(u.pending_delete, 0, "nothing pending");
}

/* A file of more chunks than an unlink purges itself waits for gc, which
 * releases every slice of it in bounded steps. */
static void
test_unlink_big_gc(struct meta *m)
{
	uint64_t f = mk(m, &root_cred, 1, "big", META_REG, 0644, NULL), id;
	struct meta_slice_write w[20];
	struct meta_slice_ref r[8];
	struct meta_usage u0, u;
	size_t n, total = 0;

	meta_usage(m, &u0);
	for (uint32_t i = 0; i < 20; i++) {
		meta_new_slice_id(m, &id);
		w[i] = sw(i, id, 4096, 0);
	}
	CHECK_EQ(meta_write_slices(m, f, w, 20, 1, NULL, NULL), 0,
		 "write 20 chunks");
	CHECK_EQ(meta_unlink(m, &root_cred, 1, "big", NULL, NULL), 0, "unlink");
	meta_usage(m, &u);
	CHECK_EQ(u.pending_delete, u0.pending_delete + 1,
		 "the big file waits for gc");
	for (int i = 0; i < 10; i++) {
		CHECK_EQ(meta_gc_next(m, r, 8, &n), 0, "gc next");
		total += n;
		meta_gc_release(m, r, n);
	}
	CHECK_EQ(total, 20, "all 20 slices released once");
	meta_usage(m, &u);
	CHECK_EQ(u.pending_delete, u0.pending_delete, "nothing pending");
}

static void
test_limits(void)
{
	struct fixture f;
	struct meta *m;
	struct meta_slice_write w;
	struct meta_setattr s = {META_SET_SIZE, 0, 0, 0, 0, 0, 0, 0};
	struct meta_usage u;
	uint64_t a, id;
	int rc;

	fixture_init(&f);
	m = fixture_volume(&f, 1 * MiB, 4);
	a = mk(m, &root_cred, 1, "a", META_REG, 0644, NULL);
	mk(m, &root_cred, 1, "b", META_DIR, 0755, NULL);
	mk(m, &root_cred, 1, "c", META_REG, 0644, &rc);
	CHECK_EQ(rc, 0, "fourth inode (root counts)");
	mk(m, &root_cred, 1, "d", META_REG, 0644, &rc);
	CHECK_EQ(rc, -ENOSPC, "inode limit -> ENOSPC");
	meta_new_slice_id(m, &id);
	w = sw(0, id, 512 * 1024, 0);
	CHECK_EQ(meta_write_slices(m, a, &w, 1, 1, NULL, NULL), 0,
		 "half capacity");
	w = sw(0, id + 1, 512 * 1024, 512 * 1024);
	CHECK_EQ(meta_write_slices(m, a, &w, 1, 1, NULL, NULL), 0,
		 "full capacity");
	w = sw(0, id + 2, 1, 1024 * 1024);
	CHECK_EQ(meta_write_slices(m, a, &w, 1, 1, NULL, NULL), -ENOSPC,
		 "write past capacity -> ENOSPC");
	w = sw(0, id + 3, 100, 0);
	CHECK_EQ(meta_write_slices(m, a, &w, 1, 1, NULL, NULL), 0,
		 "overwrite inside the size still works");
	s.size = 2 * MiB;
	CHECK_EQ(meta_setattr(m, &root_cred, a, &s, NULL, NULL), -ENOSPC,
		 "extend past capacity -> ENOSPC");
	meta_usage(m, &u);
	CHECK(u.used_bytes == MiB && u.used_inodes == 4 && u.capacity == MiB &&
		      u.max_inodes == 4,
	      "usage exact");
	CHECK_EQ(meta_unlink(m, &root_cred, 1, "c", NULL, NULL), 0, "unlink");
	mk(m, &root_cred, 1, "d", META_REG, 0644, &rc);
	CHECK_EQ(rc, 0, "room for an inode again");
	meta_close(m);
	fixture_done(&f);
}

static void
test_counters_exact(struct meta *m)
{
	struct meta_usage u0, u;
	uint64_t d, f, id;
	struct meta_slice_write w;
	struct meta_setattr s = {META_SET_SIZE, 0, 0, 0, 0, 0, 0, 0};

	meta_usage(m, &u0);
	d = mk(m, &root_cred, 1, "cnt", META_DIR, 0755, NULL);
	f = mk(m, &root_cred, d, "f", META_REG, 0644, NULL);
	meta_new_slice_id(m, &id);
	w = sw(0, id, 5000, 0);
	meta_write_slices(m, f, &w, 1, 1, NULL, NULL);
	meta_usage(m, &u);
	CHECK_EQ(u.used_bytes - u0.used_bytes, 8192, "5000 bytes use 8 KiB");
	CHECK_EQ(u.used_inodes - u0.used_inodes, 2, "two inodes");
	s.size = 4096;
	meta_setattr(m, &root_cred, f, &s, NULL, NULL);
	meta_usage(m, &u);
	CHECK_EQ(u.used_bytes - u0.used_bytes, 4096, "shrunk to 4 KiB");
	CHECK_EQ(meta_rename(m, &root_cred, d, "f", 1, "cntf", NULL, NULL, NULL,
			     NULL),
		 0, "move file out");
	meta_unlink(m, &root_cred, 1, "cntf", NULL, NULL);
	meta_rmdir(m, &root_cred, 1, "cnt", NULL, NULL);
	meta_usage(m, &u);
	CHECK_EQ(u.used_bytes, u0.used_bytes, "bytes back to start");
	CHECK_EQ(u.used_inodes, u0.used_inodes, "inodes back to start");
}

/* st_blocks / du: a sparse file counts only what was stored; a truncate
 * caps the figure; overwrites never push it past the size. */
static void
test_written(struct meta *m)
{
	uint64_t f = mk(m, &root_cred, 1, "sparse", META_REG, 0644, NULL), id;
	struct meta_slice_write w[1];
	struct meta_setattr sa = {.valid = META_SET_SIZE};
	struct meta_attr a;

	CHECK_EQ(meta_new_slice_id(m, &id), 0, "slice id");
	w[0] = sw(0, id, 1, 10u << 20);
	CHECK_EQ(meta_write_slices(m, f, w, 1, 1, &a, NULL), 0,
		 "1 byte at 10 MiB");
	CHECK_EQ(a.size, (10u << 20) + 1, "size covers the hole");
	CHECK_EQ(a.written, 4096, "the hole is not counted as stored");
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(meta_new_slice_id(m, &id), 0, "slice id");
		w[0] = sw(0, id, 8192, 0);
		CHECK_EQ(meta_write_slices(m, f, w, 1, 1, &a, NULL), 0,
			 "overwrite");
	}
	CHECK_EQ(a.written, 4096 + 8192 * 3, "overwrites add up");
	sa.size = 6000;
	CHECK_EQ(meta_setattr(m, &root_cred, f, &sa, NULL, &a), 0, "shrink");
	CHECK_EQ(a.written, 8192, "a truncate caps it at the rounded size");
	CHECK_EQ(meta_getattr(m, f, &a), 0, "getattr");
	CHECK_EQ(a.written, 8192, "and it is stored");
}

/* ---- compaction ---------------------------------------------------------- */

#define CB 256 /* 4 KiB blocks of the range written */

struct model {
	uint64_t id[CB]; /* slice shown at each block, 0 = zeros */
	uint32_t off[CB];
};

static uint64_t
lcg(uint64_t *x)
{
	*x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
	return *x >> 33;
}

/* Every block of the chunk as the records show it (the newest record
 * covering it wins) equals the model. */
static bool
view_matches(const struct meta_slice *s, size_t n, const struct model *md,
	     uint32_t b0, uint32_t b1)
{
	for (uint32_t b = b0; b < b1; b++) {
		uint64_t id = 0;
		uint32_t off = 0, pos = b * 4096;

		for (size_t i = n; i-- > 0;)
			if (s[i].pos <= pos && pos < s[i].pos + s[i].len) {
				id = s[i].id;
				off = s[i].off + (pos - s[i].pos);
				break;
			}
		if (id != md->id[b] || (id && off != md->off[b]))
			return false;
	}
	return true;
}

static void
show_problem(void *arg, enum meta_fsck_cat c, const char *msg)
{
	(void)arg;
	(void)c;
	printf("# fsck: %s\n", msg);
}
static void
fsck_clean(struct meta *m, const char *what)
{
	struct meta_fsck_opts o = {.problem = show_problem};
	struct meta_fsck_report r;

	CHECK_EQ(meta_fsck(m, &o, &r), 0, "fsck runs (%s)", what);
	CHECK_EQ(r.problems, 0, "fsck finds nothing (%s)", what);
}

/* Drain gc: mark each released slice in seen (indexed from id0); a slice
 * released twice fails. */
static size_t
drain(struct meta *m, uint64_t id0, uint8_t *seen, size_t nseen)
{
	struct meta_slice_ref r[64];
	size_t n, total = 0;
	bool twice = false;

	do {
		CHECK_EQ(meta_gc_next(m, r, 64, &n), 0, "gc next");
		for (size_t i = 0; i < n; i++) {
			uint64_t x = r[i].id - id0;

			if (r[i].id < id0 || x >= nseen || seen[x]++)
				twice = true;
		}
		total += n;
		CHECK_EQ(meta_gc_release(m, r, n), 0, "gc release");
	} while (n > 0);
	CHECK(!twice, "no slice released twice or unknown");
	return total;
}

/* Random overlapping writes (several runs of one shared slice per
 * commit, as packing makes them) and truncations: the list stays
 * bounded, reads see what a never-compacted list would show, dropped
 * slices wait for the grace period and are then released exactly once. */
static void
test_compaction(struct meta *m)
{
	uint64_t f = mk(m, &root_cred, 1, "cp", META_REG, 0644, NULL), x = 42;
	uint64_t id0 = 0, id, nids = 0;
	static struct model md;
	struct meta_slice_write w[8];
	struct meta_setattr sa = {META_SET_SIZE, 0, 0, 0, 0, 0, 0, 0};
	struct meta_usage u0, u;
	struct meta_slice *s;
	size_t n, maxn = 0, total;
	uint8_t *seen;
	bool ok = true;

	memset(&md, 0, sizeof(md));
	{
		/* What earlier tests left for gc. */
		struct meta_slice_ref r[64];

		do {
			meta_gc_next(m, r, 64, &n);
			meta_gc_release(m, r, n);
		} while (n > 0);
	}
	meta_usage(m, &u0);
	for (int it = 0; it < 3000; it++) {
		uint32_t nr = 1 + (uint32_t)(lcg(&x) % 8), size = 0;

		if (it % 700 == 350) {
			uint32_t keep = 1 + (uint32_t)(lcg(&x) % (CB - 1));

			sa.size = (uint64_t)keep * 4096;
			CHECK_EQ(
				meta_setattr(m, &root_cred, f, &sa, NULL, NULL),
				0, "truncate");
			for (uint32_t b = keep; b < CB; b++)
				md.id[b] = 0;
		}
		CHECK_EQ(meta_new_slice_id(m, &id), 0, "slice id");
		id0 = id0 ? id0 : id;
		nids = id - id0 + 1;
		for (uint32_t i = 0; i < nr; i++) {
			uint32_t len = 1 + (uint32_t)(lcg(&x) % 4);
			uint32_t b = (uint32_t)(lcg(&x) % (CB - len + 1));

			w[i] = (struct meta_slice_write){
				0, {id, 0, size, len * 4096, b * 4096}};
			for (uint32_t k = 0; k < len; k++) {
				md.id[b + k] = id;
				md.off[b + k] = size + k * 4096;
			}
			size += len * 4096;
		}
		for (uint32_t i = 0; i < nr; i++)
			w[i].s.size = size;
		if (meta_write_slices(m, f, w, nr, 1, NULL, NULL) != 0 ||
		    meta_read_chunk(m, f, 0, 0, META_CHUNK_SIZE, &s, &n) != 0) {
			ok = false;
			break;
		}
		maxn = TL_MAX(maxn, n);
		if (it % 97 == 0 || it == 2999)
			ok = ok && view_matches(s, n, &md, 0, CB);
		free(s);
	}
	CHECK(ok, "3000 random writes: every read matched the model");
	/* 256 blocks: at most 256 visible extents, twice that plus the tail
	 * and one commit before compaction. */
	CHECK(maxn <= 2 * CB + COMPACT_TAIL + 8,
	      "record list bounded (%zu records at most)", maxn);
	/* A ranged read returns only the records over its range, enough to
	 * build the view there. */
	CHECK_EQ(meta_read_chunk(m, f, 0, 40 * 4096, 48 * 4096, &s, &n), 0,
		 "read a range");
	CHECK(view_matches(s, n, &md, 40, 48), "ranged read shows the range");
	for (size_t i = 0; i < n; i++)
		ok = ok && s[i].pos < 48 * 4096 &&
		     s[i].pos + s[i].len > 40 * 4096;
	CHECK(ok, "ranged read: only records over the range (%zu)", n);
	free(s);

	/* Dropped slices wait for the grace period: referenced, not
	 * released. */
	meta_usage(m, &u);
	CHECK(u.pending_delete > u0.pending_delete,
	      "compaction dropped slices (%" PRIu64 " pending)",
	      u.pending_delete - u0.pending_delete);
	seen = tl_calloc(nids, 1);
	CHECK_EQ(drain(m, id0, seen, nids), 0, "none released within grace");
	fsck_clean(m, "slices in the grace period");

	meta_set_compact_grace(m, 0);
	total = drain(m, id0, seen, nids);
	CHECK_FATAL(meta_read_chunk(m, f, 0, 0, META_CHUNK_SIZE, &s, &n) == 0,
		    "read chunk");
	ok = true;
	for (uint64_t i = 0; i < nids; i++) {
		bool shown = false;

		for (size_t j = 0; j < n && !shown; j++)
			shown = s[j].id == id0 + i;
		ok = ok && (bool)seen[i] != shown;
	}
	free(s);
	CHECK(ok,
	      "after the grace every slice not shown was released "
	      "(%zu), no shown one",
	      total);
	meta_usage(m, &u);
	CHECK_EQ(u.pending_delete, u0.pending_delete, "nothing pending");
	fsck_clean(m, "after the grace");

	CHECK_EQ(meta_unlink(m, &root_cred, 1, "cp", NULL, NULL), 0, "unlink");
	drain(m, id0, seen, nids);
	ok = true;
	for (uint64_t i = 0; i < nids; i++)
		ok = ok && seen[i] == 1;
	CHECK(ok, "after unlink every slice was released exactly once");
	free(seen);
	meta_set_compact_grace(m, 300ULL * 1000000000ULL);
	fsck_clean(m, "after unlink");
}

/* Writes in position order are a compacted list already: nothing is
 * rewritten, nothing dropped.  The 300 records name consecutive bytes of
 * one slice, so a rewrite would merge them into one. */
static void
test_sequential_not_compacted(struct meta *m)
{
	uint64_t f = mk(m, &root_cred, 1, "sq", META_REG, 0644, NULL), id;
	struct meta_slice_write w;
	struct meta_usage u0, u;
	struct meta_slice *s;
	size_t n;
	int rc = 0;

	meta_usage(m, &u0);
	meta_new_slice_id(m, &id);
	for (uint32_t i = 0; i < 300 && rc == 0; i++) {
		w = (struct meta_slice_write){
			0, {id, 300 * 4096, i * 4096, 4096, i * 4096}};
		rc = meta_write_slices(m, f, &w, 1, 1, NULL, NULL);
	}
	CHECK_EQ(rc, 0, "300 appends");
	CHECK_EQ(meta_read_chunk(m, f, 0, 0, META_CHUNK_SIZE, &s, &n), 0,
		 "read");
	CHECK_EQ(n, 300, "300 appends keep their 300 records");
	free(s);
	meta_usage(m, &u);
	CHECK_EQ(u.pending_delete, u0.pending_delete, "nothing dropped");
}

/* Inline slices (meta.h, "inline data"): written with their bytes,
 * read, released with them (no R record, nothing for gc). */
static void
test_inline(struct meta *m)
{
	uint64_t f = mk(m, &root_cred, 1, "in", META_REG, 0644, NULL), id, id2;
	struct meta_setattr s = {META_SET_SIZE, 0, 0, 0, 0, 0, 0, 0};
	struct meta_slice_write w[2];
	struct meta_slice_ref r[16];
	uint8_t data[200], got[200];
	struct meta_attr a;
	size_t n;

	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i * 7 + 1);
	CHECK(meta_inline_room(m), "a fresh LMDB map has room for inline "
				   "data");
	CHECK_EQ(meta_new_slice_id(m, &id), 0, "slice id");
	id |= META_SLICE_INLINE;
	w[0] = sw(0, id, 200, 0);
	CHECK_EQ(meta_write_slices(m, f, w, 1, 1, NULL, NULL), -EINVAL,
		 "an inline slice's records without its bytes -> EINVAL");
	CHECK_EQ(meta_write_inline(m, f, w, 1, id & ~META_SLICE_INLINE, data,
				   200, 1, NULL, NULL),
		 -EINVAL, "bytes of a plain slice id -> EINVAL");
	CHECK_EQ(meta_write_inline(m, f, w, 1, id, data, 200, 5, &a, NULL), 0,
		 "records and bytes in one transaction");
	CHECK_EQ(a.size, 200, "size");
	CHECK_EQ(meta_inline_read(m, id, 200, 0, 200, got), 0, "read it all");
	CHECK(memcmp(got, data, 200) == 0, "the bytes read back");
	CHECK_EQ(meta_inline_read(m, id, 200, 50, 10, got), 0, "read a part");
	CHECK(memcmp(got, data + 50, 10) == 0, "the part reads back");
	CHECK_EQ(meta_inline_read(m, id, 200, 195, 10, got), -EINVAL,
		 "a read past its size -> EINVAL");
	CHECK_EQ(meta_inline_read(m, id, 199, 0, 10, got), -ENOENT,
		 "another size: no such slice");

	/* A plain slice over part of it, then truncation to 0: both go,
	 * gc hands out only the plain one. */
	CHECK_EQ(meta_new_slice_id(m, &id2), 0, "slice id");
	w[0] = sw(0, id2, 100, 50);
	CHECK_EQ(meta_write_slices(m, f, w, 1, 1, NULL, NULL), 0,
		 "a plain slice over part of it");
	s.size = 0;
	CHECK_EQ(meta_setattr(m, &root_cred, f, &s, NULL, &a), 0,
		 "truncate to 0");
	CHECK_EQ(meta_inline_read(m, id, 200, 0, 200, got), -ENOENT,
		 "truncation released the inline bytes");
	CHECK_EQ(meta_gc_next(m, r, 16, &n), 0, "gc next");
	CHECK(n == 1 && r[0].id == id2, "gc gets the plain slice only");
	CHECK_EQ(meta_gc_release(m, r, n), 0, "gc release");

	/* Removal of an inline file releases its bytes at once. */
	CHECK_EQ(meta_new_slice_id(m, &id), 0, "slice id");
	id |= META_SLICE_INLINE;
	w[0] = sw(0, id, 200, 0);
	CHECK_EQ(meta_write_inline(m, f, w, 1, id, data, 200, 5, NULL, NULL), 0,
		 "written inline again");
	CHECK_EQ(meta_unlink(m, &root_cred, 1, "in", NULL, NULL), 0,
		 "remove it");
	CHECK_EQ(meta_inline_read(m, id, 200, 0, 200, got), -ENOENT,
		 "its bytes went with it");
	CHECK_EQ(meta_gc_next(m, r, 16, &n), 0, "gc next");
	CHECK_EQ(n, 0, "nothing for gc");
}

/* The billing counters (meta_usage: logical, stored, trash and pending
 * bytes) follow writes, truncation, the trash, expiry and the deletion
 * job to the byte, and fsck finds them right, and repairs them. */
static void
expect_usage(struct meta *m, uint64_t logical, uint64_t stored, uint64_t trash,
	     uint64_t pending, const char *what)
{
	struct meta_usage u;
	struct meta_fsck_opts o = {0};
	struct meta_fsck_report r;

	CHECK_EQ(meta_usage(m, &u), 0, "usage");
	CHECK_EQ(u.logical_bytes, logical, "%s: logical bytes", what);
	CHECK_EQ(u.stored_bytes, stored, "%s: stored bytes", what);
	CHECK_EQ(u.trash_bytes, trash, "%s: trash bytes", what);
	CHECK_EQ(u.pending_bytes, pending, "%s: pending bytes", what);
	CHECK_EQ(meta_fsck(m, &o, &r), 0, "%s: fsck", what);
	CHECK_EQ(r.found[META_FSCK_COUNTERS], 0, "%s: fsck counts the same",
		 what);
}

static void
test_billing_counters(void)
{
	struct meta_setattr s = {.valid = META_SET_SIZE, .size = 100};
	struct meta_fsck_opts o = {.repair = true};
	struct meta_fsck_report rep;
	struct meta_trash_done done = {0, 0};
	struct meta_slice_write w[3];
	struct meta_slice_ref r[8];
	uint64_t a, b, id1, id2, id3, id4;
	struct fixture f;
	struct meta *m;
	struct mtxn t;
	size_t n;
	bool more;

	fixture_init(&f);
	m = fixture_volume(&f, 0, 0);
	CHECK_EQ(meta_set_trash_days(m, 1), 0, "trash on");
	a = mk(m, &root_cred, 1, "a", META_REG, 0644, NULL);
	b = mk(m, &root_cred, 1, "b", META_REG, 0644, NULL);
	meta_new_slice_id(m, &id1);
	meta_new_slice_id(m, &id2);
	meta_new_slice_id(m, &id3);
	meta_new_slice_id(m, &id4);
	w[0] = sw(0, id1, 10000, 0);
	CHECK_EQ(meta_write_slices(m, a, w, 1, 1, NULL, NULL), 0, "write a");
	/* a packed slice: two records of one slice count it once */
	w[0] = (struct meta_slice_write){0, {id2, 8192, 0, 3000, 0}};
	w[1] = (struct meta_slice_write){0, {id2, 8192, 4096, 4096, 5000}};
	w[2] = sw(1, id3, 2000, 0);
	CHECK_EQ(meta_write_slices(m, b, w, 3, 1, NULL, NULL), 0, "write b");
	expect_usage(m, 10000 + META_CHUNK_SIZE + 2000, 10000 + 8192 + 2000, 0,
		     0, "written");
	CHECK_EQ(meta_setattr(m, &root_cred, b, &s, NULL, NULL), 0,
		 "truncate b to 100");
	expect_usage(m, 10000 + 100, 20192, 0, 2000, "truncated");
	CHECK_EQ(meta_unlink(m, &root_cred, 1, "a", NULL, NULL), 0,
		 "remove a: into the trash");
	expect_usage(m, 100, 20192, 10000, 2000, "trashed");
	CHECK_EQ(meta_trash_expire(m, UINT64_MAX, 100, &done, &more), 0,
		 "expire the trash");
	CHECK_EQ(done.files, 1, "one file released");
	expect_usage(m, 100, 20192, 0, 12000, "released");
	do {
		CHECK_EQ(meta_gc_next(m, r, 8, &n), 0, "gc next");
		CHECK_EQ(meta_gc_release(m, r, n), 0, "gc release");
	} while (n > 0);
	expect_usage(m, 100, 8192, 0, 0, "deleted");
	/* a compaction's rewrite adds its fresh slice only */
	{
		struct meta_slice old[2] = {{id2, 8192, 0, 3000, 0},
					    {id2, 8192, 4096, 4096, 5000}};
		struct meta_slice nw[1] = {{id4, 100, 0, 100, 0}};
		struct meta_slice *cur;
		size_t nc;

		CHECK_EQ(
			meta_read_chunk(m, b, 0, 0, META_CHUNK_SIZE, &cur, &nc),
			0, "read b");
		CHECK_EQ(nc, 3, "b: two records and a hole");
		CHECK_EQ(meta_rewrite_chunk(m, b, 0, cur, nc, nw, 1), 0,
			 "rewrite b's chunk");
		free(cur);
		(void)old;
	}
	expect_usage(m, 100, 8192 + 100, 0, 0, "compacted");
	/* drift, repaired */
	CHECK_EQ(meta_txn_begin(m, &t, false), 0, "txn");
	CHECK_EQ(meta_counter_set(&t, CNT_LOGICAL, 7), 0, "break logical");
	CHECK_EQ(meta_counter_set(&t, CNT_STORED, 7), 0, "break stored");
	CHECK_EQ(meta_txn_end(&t, 0), 0, "commit");
	CHECK_EQ(meta_fsck(m, &o, &rep), 0, "fsck --repair");
	CHECK_EQ(rep.found[META_FSCK_COUNTERS], 1, "the drift found");
	expect_usage(m, 100, 8292, 0, 0, "repaired");
	meta_close(m);
	fixture_done(&f);
}

int
main(void)
{
	struct fixture f;
	struct meta *m = fixture_open(&f);

	test_write_read(m);
	test_written(m);
	test_truncate(m);
	test_unlink_gc(m);
	test_unlink_big_gc(m);
	test_counters_exact(m);
	test_compaction(m);
	test_sequential_not_compacted(m);
	test_inline(m);
	meta_close(m);
	fixture_done(&f);
	test_limits();
	test_billing_counters();
	return tap_done();
}
