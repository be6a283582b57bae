/*
 * scan.c - whole-volume scans of slice ids, for `tessera gc`: which slices
 * live files reference, which files in the trash reference (a file
 * whose one link is in an hour directory of the trash), which removed
 * files not purged yet still name,
 * which compaction dropped within the grace period, which wait in the
 * deletion queue, and the slice-id counter.
 *
 * The referenced set is a sorted array of distinct ids (8 bytes per
 * slice), built by appending every id of every chunk record and, when the
 * array is full, sorting and compacting it before growing it: a slice
 * recorded many times (hard links share records only by refcount, but a
 * chunk may record a slice several times) costs little more than once.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta-internal.h"

#define SCAN_PROGRESS_EVERY 4096

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sort and drop duplicates. */
static void
set_compact(struct meta_slice_set *s)
{
	size_t i, n = 0;

	if (s->n < 2)
		return;
	qsort(s->ids, s->n, sizeof(*s->ids), cmp_u64);
	for (i = 0; i < s->n; i++)
		if (n == 0 || s->ids[n - 1] != s->ids[i])
			s->ids[n++] = s->ids[i];
	s->n = n;
}

static void
set_add(struct meta_slice_set *s, size_t *cap, uint64_t id)
{
	if (s->n == *cap) {
		set_compact(s);
		/* Grow only if compacting freed less than a quarter. */
		if (*cap == 0 || s->n > *cap - *cap / 4) {
			*cap = *cap ? *cap * 2 : 4096;
			s->ids = tl_realloc(s->ids, *cap * sizeof(*s->ids));
		}
	}
	s->ids[s->n++] = id;
}

struct scan_ctx {
	struct meta *m;
	struct meta_slice_sets *s;
	size_t livecap, removedcap, gracecap, qcap, trashcap;
	/* The trash's hour directories, ascending (meta_trash_hours). */
	const uint64_t *hours;
	size_t nhours;
	/* The slices of the inode being scanned: its chunk records come
	 * before its attributes (C < I), so whether it is live is known
	 * only at its I key or when the next inode begins. */
	uint64_t ino;
	bool has_attr, in_trash;
	uint64_t *cur;
	size_t ncur, curcap;
	uint64_t chunks;
	void (*progress)(void *arg, uint64_t chunks);
	void *arg;
};

static void
inode_flush(struct scan_ctx *c)
{
	struct meta_slice_set *set = &c->s->removed;
	size_t *cap = &c->removedcap;

	if (c->in_trash) {
		set = &c->s->trash;
		cap = &c->trashcap;
	} else if (c->has_attr) {
		set = &c->s->live;
		cap = &c->livecap;
	}
	for (size_t i = 0; i < c->ncur; i++)
		set_add(set, cap, c->cur[i]);
	c->ncur = 0;
	c->has_attr = c->in_trash = false;
}

static bool
is_hour(const struct scan_ctx *c, uint64_t dir)
{
	size_t lo = 0, hi = c->nhours;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->hours[mid] == dir)
			return true;
		if (c->hours[mid] < dir)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Every A key: I marks its inode live; A<ino>C<chunk> gives every
 * non-hole slice id of its records. */
static int
chunk_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct scan_ctx *c = arg;
	const uint8_t *k = key, *v = val;
	size_t p = c->m->pfxlen, i;
	uint64_t ino;

	if (klen < p + 10)
		return 0;
	ino = tl_get_be64(k + p + 1);
	if (ino != c->ino) {
		inode_flush(c);
		c->ino = ino;
	}
	if (klen == p + 10 && k[p + 9] == 'I') {
		struct inode in;

		c->has_attr = true;
		/* Trashed: one link, in an hour directory of the trash
		 * (meta_trash_put). */
		if (c->nhours > 0 && meta_inode_decode(v, vlen, ino, &in) == 0)
			c->in_trash = in.a.type != META_DIR &&
				      in.a.nlink == 1 &&
				      is_hour(c, in.a.parent);
	}
	if (klen != p + 14 || k[p + 9] != 'C')
		return 0; /* entries, links, ... */
	for (i = 0; i + SLICE_REC <= vlen; i += SLICE_REC) {
		uint64_t id = tl_get_be64(v + i);

		if (id == 0)
			continue;
		if (c->ncur == c->curcap) {
			c->curcap = c->curcap ? 2 * c->curcap : 64;
			c->cur =
				tl_realloc(c->cur, c->curcap * sizeof(*c->cur));
		}
		c->cur[c->ncur++] = id;
	}
	if (++c->chunks % SCAN_PROGRESS_EVERY == 0 && c->progress != NULL)
		c->progress(c->arg, c->chunks);
	return 0;
}

/* Keys of one tag that name a slice: the id at idoff of every key of
 * klen bytes goes into set.  L<time><id><size> (dropped by compaction,
 * still referenced until gc releases it after the grace period) and
 * R<id><size> (released, its objects are the deletion queue's). */
struct idkeys {
	struct meta_slice_set *set;
	size_t *cap, klen, idoff;
};

static int
idkey_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct idkeys *s = arg;

	(void)val;
	(void)vlen;
	if (klen == s->klen)
		set_add(s->set, s->cap,
			tl_get_be64((const uint8_t *)key + s->idoff));
	return 0;
}

void
meta_slice_sets_free(struct meta_slice_sets *s)
{
	meta_slice_set_free(&s->live);
	meta_slice_set_free(&s->removed);
	meta_slice_set_free(&s->grace);
	meta_slice_set_free(&s->queued);
	meta_slice_set_free(&s->trash);
}

int
meta_scan_slices(struct meta *m, struct meta_slice_sets *sets,
		 void (*progress)(void *arg, uint64_t chunks), void *arg)
{
	struct scan_ctx c = {
		.m = m, .s = sets, .progress = progress, .arg = arg};
	struct idkeys lkeys = {&sets->grace, &c.gracecap, m->pfxlen + 21,
			       m->pfxlen + 9};
	struct idkeys rkeys = {&sets->queued, &c.qcap, m->pfxlen + 13,
			       m->pfxlen + 1};
	struct meta_key s, e;
	uint64_t *hours = NULL;
	struct mtxn t;
	int rc;

	memset(sets, 0, sizeof(*sets));
	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	rc = meta_trash_hours(&t, &hours, &c.nhours);
	c.hours = hours;
	meta_key_tag(m, &s, 'A');
	meta_key_tag(m, &e, 'B');
	if (rc == 0)
		rc = meta_kv_scan(t.kv, s.b, s.len, e.b, e.len, chunk_cb, &c);
	inode_flush(&c);
	free(c.cur);
	free(hours);
	meta_key_tag(m, &s, 'L');
	meta_key_tag(m, &e, 'M');
	if (rc == 0)
		rc = meta_kv_scan(t.kv, s.b, s.len, e.b, e.len, idkey_cb,
				  &lkeys);
	meta_key_tag(m, &s, 'R');
	meta_key_tag(m, &e, 'S');
	if (rc == 0)
		rc = meta_kv_scan(t.kv, s.b, s.len, e.b, e.len, idkey_cb,
				  &rkeys);
	rc = meta_txn_end(&t, rc);
	if (rc) {
		meta_slice_sets_free(sets);
		return rc;
	}
	set_compact(&sets->live);
	set_compact(&sets->removed);
	set_compact(&sets->grace);
	set_compact(&sets->queued);
	set_compact(&sets->trash);
	return 0;
}

bool
meta_slice_set_has(const struct meta_slice_set *s, uint64_t id)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->ids[mid] == id)
			return true;
		if (s->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

void
meta_slice_set_free(struct meta_slice_set *s)
{
	free(s->ids);
	s->ids = NULL;
	s->n = 0;
}

int
meta_slice_counter(struct meta *m, uint64_t *next)
{
	struct mtxn t;
	int rc;

	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	rc = meta_counter_get(&t, CNT_NEXT_SLICE, next);
	return meta_txn_end(&t, rc);
}

/* ---- a sample of referenced slices ------------------------------------- */

/* Inodes looked at before meta_sample_slices gives up. */
#define SAMPLE_MAX_INODES 1000000

struct first_key {
	size_t pfxlen;
	uint64_t ino;
	bool found;
};

/* The inode of the first A<ino>... key at or after the start. */
static int
first_ino_cb(void *arg, const void *key, size_t klen, const void *val,
	     size_t vlen)
{
	struct first_key *f = arg;

	(void)val;
	(void)vlen;
	if (klen >= f->pfxlen + 9) {
		f->ino = tl_get_be64((const uint8_t *)key + f->pfxlen + 1);
		f->found = true;
	}
	return 1;
}

struct sample {
	struct meta_slice_ref *out;
	size_t max, n;
};

static int
sample_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct sample *s = arg;
	const uint8_t *v = val;

	(void)key;
	(void)klen;
	for (size_t i = 0; i + SLICE_REC <= vlen && s->n < s->max;
	     i += SLICE_REC) {
		struct meta_slice sl;

		meta_slice_decode(v + i, &sl);
		/* Inline slices have no object to probe. */
		if (sl.id != 0 && !meta_slice_inline(sl.id))
			s->out[s->n++] =
				(struct meta_slice_ref){sl.id, sl.size};
	}
	return s->n == s->max;
}

/* Jump from inode to inode (two seeks each), reading only chunk keys,
 * so a huge directory's entries are never walked. */
int
meta_sample_slices(struct meta *m, struct meta_slice_ref *out, size_t max,
		   size_t *n)
{
	struct first_key f = {m->pfxlen, 0, false};
	struct sample s = {out, max, 0};
	struct meta_key k, e, end;
	uint64_t ino = 0;
	struct mtxn t;
	int rc, i;

	*n = 0;
	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	meta_key_tag(m, &end, 'B');
	for (i = 0; rc == 0 && s.n < max && i < SAMPLE_MAX_INODES; i++) {
		meta_key_ino(m, &k, ino, 0);
		f.found = false;
		rc = meta_kv_scan(t.kv, k.b, k.len, end.b, end.len,
				  first_ino_cb, &f);
		if (rc || !f.found)
			break;
		meta_key_ino(m, &k, f.ino, 'C');
		meta_key_ino(m, &e, f.ino, 'D');
		rc = meta_kv_scan(t.kv, k.b, k.len, e.b, e.len, sample_cb, &s);
		if (f.ino == UINT64_MAX)
			break;
		ino = f.ino + 1;
	}
	*n = s.n;
	return meta_txn_end(&t, rc);
}
