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

struct ref {
	uint64_t id;
	uint32_t size;
};

struct recount {
	struct meta *m;
	size_t p; /* pfxlen */
	meta_recount_pace pace;
	void *arg;
	uint64_t keys;
	/* sorted: the trash's hour directories, slices with a K record */
	uint64_t *hours;
	size_t nhours, caphours;
	struct ref *shared;
	size_t nshared, capshared;
	struct ref *chunk; /* one chunk value's slices */
	size_t capchunk;
	uint64_t logical, stored, trash, pending;
};

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int
cmp_ref(const void *a, const void *b)
{
	const struct ref *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->size < y->size ? -1 : x->size > y->size;
}

static bool
is_shared(const struct recount *r, uint64_t id, uint32_t size)
{
	struct ref k = {id, size};

	return bsearch(&k, r->shared, r->nshared, sizeof(k), cmp_ref) != NULL;
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
hours_cb(void *arg, const void *key, size_t klen, const void *val,
	 size_t vlen)
{
	struct recount *r = arg;
	const uint8_t *v = val;

	(void)key;
	(void)klen;
	if (vlen < 10 || v[8] != META_DIR)
		return 0;
	if (r->nhours == r->caphours) {
		r->caphours = r->caphours ? 2 * r->caphours : 64;
		r->hours = tl_realloc(r->hours,
				      r->caphours * sizeof(*r->hours));
	}
	r->hours[r->nhours++] = tl_get_be64(v);
	return 0;
}

/* K, L, R and D records. */
static int
records_cb(void *arg, const void *key, size_t klen, const void *val,
	   size_t vlen)
{
	struct recount *r = arg;
	const uint8_t *k = (const uint8_t *)key + r->p;
	uint64_t id;
	uint32_t size;

	(void)val;
	(void)vlen;
	switch (k[0]) {
	case 'K':
		if (klen != r->p + 13)
			break;
		if (r->nshared == r->capshared) {
			r->capshared = r->capshared ? 2 * r->capshared : 256;
			r->shared = tl_realloc(r->shared, r->capshared *
							      sizeof(*r->shared));
		}
		r->shared[r->nshared].id = id = tl_get_be64(k + 1);
		r->shared[r->nshared++].size = size = tl_get_be32(k + 9);
		if (!meta_slice_inline(id))
			r->stored += size;
		break;
	case 'L':
		if (klen != r->p + 21)
			break;
		id = tl_get_be64(k + 9);
		size = tl_get_be32(k + 17);
		/* K records come first: the set is complete */
		if (!meta_slice_inline(id) && !is_shared(r, id, size))
			r->stored += size;
		break;
	case 'R':
		if (klen != r->p + 13)
			break;
		size = tl_get_be32(k + 9);
		r->stored += size;
		r->pending += size;
		break;
	case 'D':
		if (klen == r->p + 17)
			r->pending += tl_get_be64(k + 9);
		break;
	}
	return step(r);
}

/* Distinct slices of a chunk value with an object and no K record. */
static void
count_chunk(struct recount *r, const uint8_t *v, size_t vlen)
{
	size_t n = vlen / SLICE_REC, u = 0;
	struct meta_slice s;

	if (n > r->capchunk) {
		r->capchunk = n;
		r->chunk = tl_realloc(r->chunk, n * sizeof(*r->chunk));
	}
	for (size_t i = 0; i < n; i++) {
		meta_slice_decode(v + i * SLICE_REC, &s);
		if (s.id == 0 || meta_slice_inline(s.id))
			continue;
		r->chunk[u].id = s.id;
		r->chunk[u++].size = s.size;
	}
	qsort(r->chunk, u, sizeof(*r->chunk), cmp_ref);
	for (size_t i = 0; i < u; i++)
		if ((i == 0 || cmp_ref(&r->chunk[i - 1], &r->chunk[i]) != 0) &&
		    !is_shared(r, r->chunk[i].id, r->chunk[i].size))
			r->stored += r->chunk[i].size;
}

/* The A section: inodes and chunks. */
static int
inodes_cb(void *arg, const void *key, size_t klen, const void *val,
	  size_t vlen)
{
	struct recount *r = arg;
	const uint8_t *k = (const uint8_t *)key + r->p;
	struct inode in;

	if (klen == r->p + 10 && k[9] == 'I') {
		uint64_t parent;

		if (meta_inode_decode(val, vlen, tl_get_be64(k + 1), &in) != 0)
			return -EIO;
		parent = in.a.parent;
		if (in.a.type != META_REG)
			;
		else if (bsearch(&parent, r->hours, r->nhours, sizeof(parent),
				 cmp_u64) != NULL)
			r->trash += in.a.size;
		else
			r->logical += in.a.size;
	} else if (klen == r->p + 14 && k[9] == 'C') {
		if (vlen % SLICE_REC)
			return -EIO;
		count_chunk(r, val, vlen);
	}
	return step(r);
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
		qsort(r->hours, r->nhours, sizeof(*r->hours), cmp_u64);
	}
	/* K before L, R, D: in key order */
	meta_key_tag(r->m, &b, 'D');
	meta_key_tag(r->m, &e, 'S');
	if (rc == 0)
		rc = meta_kv_scan(t.kv, b.b, b.len, e.b, e.len, records_cb, r);
	meta_key_tag(r->m, &b, 'A');
	meta_key_tag(r->m, &e, 'B');
	if (rc == 0)
		rc = meta_kv_scan(t.kv, b.b, b.len, e.b, e.len, inodes_cb, r);
	return meta_txn_end(&t, rc);
}

int
meta_usage_marked(struct meta *m, bool *valid)
{
	struct mtxn t;
	uint64_t v = 0;
	int rc;

	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	rc = meta_counter_get(&t, CNT_USAGE_VALID, &v);
	*valid = v != 0;
	return meta_txn_end(&t, rc);
}

int
meta_usage_mark(struct mtxn *t)
{
	return meta_counter_set(t, CNT_USAGE_VALID, 1);
}

int
meta_usage_recount(struct meta *m, meta_recount_pace pace, void *arg,
		   struct meta_recount *out)
{
	struct recount r = {.m = m, .p = m->pfxlen, .pace = pace, .arg = arg};
	struct mtxn t;
	uint64_t marked;
	int rc, tries = 0;

	memset(out, 0, sizeof(*out));
	rc = recount_read(&r, out);
	out->keys = r.keys;
	out->now[0] = r.logical;
	out->now[1] = r.stored;
	out->now[2] = r.trash;
	out->now[3] = r.pending;
	free(r.hours);
	free(r.shared);
	free(r.chunk);
	if (rc)
		return rc;
	do {
		rc = meta_txn_begin(m, &t, false);
		if (rc)
			return rc;
		rc = meta_counter_get(&t, CNT_USAGE_VALID, &marked);
		if (rc == 0 && marked)
			rc = -EALREADY; /* another gateway's recount */
		for (int i = 0; rc == 0 && i < META_RECOUNT_N; i++)
			rc = meta_counter_add(&t, recount_names[i],
					      (int64_t)(out->now[i] -
							out->was[i]));
		if (rc == 0)
			rc = meta_usage_mark(&t);
		rc = meta_txn_end(&t, rc);
	} while (meta_txn_retry(rc, &tries));
	return rc;
}
