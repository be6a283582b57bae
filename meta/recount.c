/*
 * recount.c - the volume's usage counters for billing (CNT_LOGICAL,
 * CNT_STORED, CNT_TRASH_BYTES, CNT_PENDING_BYTES; meta.h, struct
 * meta_usage) recomputed online, for a volume whose counters are not
 * marked valid (CNT_USAGE_VALID absent: formatted before they existed,
 * so they count only the changes since).
 *
 * One read transaction (a snapshot) reads the four counters and scans
 * what they count: the inodes (sizes, outside or inside the trash) and
 * chunks (slices referenced) of the A section, and the K, L, R and D
 * records.  Every transaction after the snapshot added its changes to
 * the counters, so adding (figure - counter), both of the snapshot, to
 * each counter in a write transaction makes it exact, whatever changed
 * meanwhile; the same transaction sets the marker, and does nothing if
 * another gateway set it first.  The scan costs memory for the shared
 * slices (K records) and the trash's hour directories only.
 *
 * stored counts every slice with objects once: a slice with a K record
 * (shared, or held by an L record) by its K record; any other has one
 * reference, a chunk (distinct slices of a chunk value, as
 * chunk_release counts them) or an L record; released ones by their R
 * record.  Inline slices have no object.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta-internal.h"

#define RECOUNT_STEP 4096 /* keys between two calls of pace */

struct recount {
	struct meta *m;
	size_t p; /* pfxlen */
	meta_recount_pace pace;
	void *arg;
	uint64_t keys;
	/* sorted: the trash's hour directories (uint64_t), the slices with
	 * a K record (struct meta_slice_ref) */
	struct tl_buf hours, shared;
	struct tl_buf chunk; /* one chunk value's slices */
	uint64_t logical, stored, trash, pending;
};

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool
is_shared(const struct recount *r, uint64_t id, uint32_t size)
{
	struct meta_slice_ref k = {id, size};

	return r->shared.len > 0 &&
	       bsearch(&k, r->shared.data, r->shared.len / sizeof(k), sizeof(k),
		       meta_slice_ref_cmp) != NULL;
}

static bool
in_trash(const struct recount *r, uint64_t parent)
{
	return r->hours.len > 0 &&
	       bsearch(&parent, r->hours.data, r->hours.len / sizeof(parent),
		       sizeof(parent), cmp_u64) != NULL;
}

/* At the first key and every RECOUNT_STEP keys: the pace, and whether
 * to go on. */
static int
step(struct recount *r)
{
	if (r->keys++ % RECOUNT_STEP == 0 && r->pace != NULL &&
	    !r->pace(r->arg, r->keys - 1))
		return -ECANCELED;
	return 0;
}

static int
hours_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct recount *r = arg;
	const uint8_t *v = val;
	uint64_t ino;

	(void)key;
	(void)klen;
	if (vlen >= 10 && v[8] == META_DIR) {
		ino = tl_get_be64(v);
		tl_buf_append(&r->hours, &ino, sizeof(ino));
	}
	return 0;
}

/* Distinct slices of a chunk value with an object and no K record. */
static void
count_chunk(struct recount *r, const uint8_t *v, size_t vlen)
{
	struct meta_slice_ref *s;
	size_t n;

	tl_buf_reset(&r->chunk);
	tl_buf_reserve(&r->chunk, vlen / SLICE_REC * sizeof(*s) + 1);
	s = (struct meta_slice_ref *)r->chunk.data;
	n = meta_chunk_refs(v, vlen, s);
	for (size_t i = 0; i < n; i++)
		if (!meta_slice_inline(s[i].id) &&
		    !is_shared(r, s[i].id, s[i].size))
			r->stored += s[i].size;
}

/* An inode or chunk of the A section. */
static int
count_ino(struct recount *r, const uint8_t *k, size_t klen, const void *val,
	  size_t vlen)
{
	struct inode in;

	if (klen == 10 && k[9] == 'I') {
		if (meta_inode_decode(val, vlen, tl_get_be64(k + 1), &in) != 0)
			return -EIO;
		if (in.a.type == META_REG && in_trash(r, in.a.parent))
			r->trash += in.a.size;
		else if (in.a.type == META_REG)
			r->logical += in.a.size;
	} else if (klen == 14 && k[9] == 'C') {
		if (vlen % SLICE_REC)
			return -EIO;
		count_chunk(r, val, vlen);
	}
	return 0;
}

/* The A section, then K, L, R and D records (K before L: in key
 * order, so the set of shared slices is complete when L needs it). */
static int
recount_cb(void *arg, const void *key, size_t klen, const void *val,
	   size_t vlen)
{
	struct recount *r = arg;
	const uint8_t *k = (const uint8_t *)key + r->p;
	struct meta_slice_ref s;
	size_t at;
	int rc = 0;

	klen -= r->p;
	switch (k[0]) {
	case 'A':
		rc = count_ino(r, k, klen, val, vlen);
		break;
	case 'K': /* K<id><size> */
	case 'L': /* L<time><id><size> */
		at = k[0] == 'K' ? 1 : 9;
		if (klen != at + 12)
			break;
		s.id = tl_get_be64(k + at);
		s.size = tl_get_be32(k + at + 8);
		if (k[0] == 'K')
			tl_buf_append(&r->shared, &s, sizeof(s));
		else if (is_shared(r, s.id, s.size))
			break; /* counted by its K record */
		if (!meta_slice_inline(s.id))
			r->stored += s.size;
		break;
	case 'R':
		if (klen != 13)
			break;
		r->stored += tl_get_be32(k + 9);
		r->pending += tl_get_be32(k + 9);
		break;
	case 'D':
		if (klen == 17)
			r->pending += tl_get_be64(k + 9);
		break;
	}
	return rc ? rc : step(r);
}

static const char *const recount_names[META_RECOUNT_N] = {
	CNT_LOGICAL, CNT_STORED, CNT_TRASH_BYTES, CNT_PENDING_BYTES};

/* The figures and the counters, in one snapshot. */
static int
recount_read(struct recount *r, struct meta_recount *out)
{
	struct meta_key b, e;
	struct mtxn t;
	uint64_t trash_ino = 0;
	int rc;

	rc = meta_txn_begin(r->m, &t, true);
	if (rc)
		return rc;
	for (int i = 0; rc == 0 && i < META_RECOUNT_N; i++)
		rc = meta_counter_get(&t, recount_names[i], &out->was[i]);
	if (rc == 0)
		rc = meta_counter_get(&t, CNT_TRASH_INO, &trash_ino);
	if (rc == 0 && trash_ino != 0) {
		meta_key_order(r->m, &b, trash_ino, 3);
		meta_key_ino(r->m, &e, trash_ino, 'P');
		rc = meta_kv_scan(t.kv, b.b, b.len, e.b, e.len, hours_cb, r);
		if (r->hours.len > 0)
			qsort(r->hours.data, r->hours.len / sizeof(uint64_t),
			      sizeof(uint64_t), cmp_u64);
	}
	meta_key_tag(r->m, &b, 'D');
	meta_key_tag(r->m, &e, 'S');
	if (rc == 0)
		rc = meta_kv_scan(t.kv, b.b, b.len, e.b, e.len, recount_cb, r);
	meta_key_tag(r->m, &b, 'A');
	meta_key_tag(r->m, &e, 'B');
	if (rc == 0)
		rc = meta_kv_scan(t.kv, b.b, b.len, e.b, e.len, recount_cb, r);
	return meta_txn_end(&t, rc);
}

static int
marked_txn(struct mtxn *t, void *arg)
{
	return meta_counter_get(t, CNT_USAGE_VALID, arg);
}

int
meta_usage_marked(struct meta *m, bool *valid)
{
	uint64_t v = 0;
	int rc = meta_txn_run(m, true, marked_txn, &v);

	*valid = v != 0;
	return rc;
}

int
meta_usage_mark(struct mtxn *t)
{
	return meta_counter_set(t, CNT_USAGE_VALID, 1);
}

/* Each counter corrected by what the snapshot showed, and the marker. */
static int
correct_txn(struct mtxn *t, void *arg)
{
	const struct meta_recount *out = arg;
	uint64_t marked;
	int rc;

	rc = meta_counter_get(t, CNT_USAGE_VALID, &marked);
	if (rc == 0 && marked)
		rc = -EALREADY; /* another gateway's recount */
	for (int i = 0; rc == 0 && i < META_RECOUNT_N; i++)
		rc = meta_counter_add(t, recount_names[i],
				      (int64_t)(out->now[i] - out->was[i]));
	return rc ? rc : meta_usage_mark(t);
}

int
meta_usage_recount(struct meta *m, meta_recount_pace pace, void *arg,
		   struct meta_recount *out)
{
	struct recount r = {.m = m,
			    .p = m->pfxlen,
			    .pace = pace,
			    .arg = arg,
			    .hours = TL_BUF_INIT,
			    .shared = TL_BUF_INIT,
			    .chunk = TL_BUF_INIT};
	int rc;

	memset(out, 0, sizeof(*out));
	rc = recount_read(&r, out);
	out->keys = r.keys;
	out->now[0] = r.logical;
	out->now[1] = r.stored;
	out->now[2] = r.trash;
	out->now[3] = r.pending;
	tl_buf_free(&r.hours);
	tl_buf_free(&r.shared);
	tl_buf_free(&r.chunk);
	return rc ? rc : meta_txn_run(m, false, correct_txn, out);
}
