/*
 * data.c - chunks and slices: writes, truncation and deletion of data.
 *
 * A chunk's value is its slice records appended in write order (later
 * records win).  A slice is referenced once unless K<id><size> says more;
 * when its count drops to zero it is moved to the released list R, from
 * which meta_gc_next hands it out so the caller deletes its objects.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta-internal.h"

int
meta_slice_release(struct mtxn *t, uint64_t id, uint32_t size)
{
	struct meta_key k;
	const void *v;
	size_t vlen;
	uint64_t cnt = 1;
	uint8_t b[8];
	int rc;

	if (id == 0)
		return 0; /* a hole */
	meta_key_slice(t->m, &k, 'K', id, size);
	rc = meta_kv_get(t->kv, k.b, k.len, &v, &vlen);
	if (rc == 0 && vlen == 8)
		cnt = tl_get_be64(v);
	else if (rc && rc != -ENOENT)
		return rc;
	if (cnt > 2) {
		tl_put_be64(b, cnt - 1);
		return meta_kv_put(t->kv, k.b, k.len, b, 8);
	}
	if (rc == 0)
		rc = meta_kv_del(t->kv, k.b, k.len);
	if (cnt == 2)
		return rc; /* absent means one reference */
	if (meta_slice_inline(id)) {
		/* No object: its bytes go with the last reference. */
		meta_key_slice(t->m, &k, 'I', id, size);
		rc = meta_kv_del(t->kv, k.b, k.len);
		return rc == -ENOENT ? 0 : rc;
	}
	meta_key_slice(t->m, &k, 'R', id, size);
	t->d_pending++;
	t->d_pendbytes += size;
	return meta_kv_put(t->kv, k.b, k.len, "", 0);
}

int
meta_slice_ref_cmp(const void *a, const void *b)
{
	const struct meta_slice_ref *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->size < y->size ? -1 : x->size > y->size;
}

/* Sort v[0..n) and keep one of each: how many are left. */
static size_t
refs_distinct(struct meta_slice_ref *v, size_t n)
{
	size_t k = 0;

	qsort(v, n, sizeof(*v), meta_slice_ref_cmp);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || meta_slice_ref_cmp(&v[k - 1], &v[i]) != 0)
			v[k++] = v[i];
	return k;
}

size_t
meta_chunk_refs(const uint8_t *v, size_t vlen, struct meta_slice_ref *out)
{
	size_t n = vlen / SLICE_REC, u = 0;
	struct meta_slice s;

	for (size_t i = 0; i < n; i++) {
		meta_slice_decode(v + i * SLICE_REC, &s);
		if (s.id != 0)
			out[u++] = (struct meta_slice_ref){s.id, s.size};
	}
	return refs_distinct(out, u);
}

/* Release every distinct slice a chunk value references. */
static int
chunk_release(struct mtxn *t, const uint8_t *v, size_t vlen)
{
	size_t n = vlen / SLICE_REC;
	struct meta_slice_ref *r = tl_calloc(n ? n : 1, sizeof(*r));
	int rc = 0;

	n = meta_chunk_refs(v, vlen, r);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = meta_slice_release(t, r[i].id, r[i].size);
	free(r);
	return rc;
}

/* Delete the keys of l, releasing slices of chunk keys (keys of the
 * form A<ino>C<chunk>). */
static int
kvlist_purge(struct mtxn *t, const struct meta_kvlist *l)
{
	const uint8_t *k, *v;
	size_t klen, vlen, off = 0, p = t->m->pfxlen;
	int rc = 0;

	while (rc == 0 && meta_kvlist_next(l, &off, &k, &klen, &v, &vlen)) {
		if (klen == p + 14 && k[p] == 'A' && k[p + 9] == 'C')
			rc = chunk_release(t, v, vlen);
		if (rc == 0)
			rc = meta_kv_del(t->kv, k, klen);
	}
	return rc;
}

int
meta_data_truncate(struct mtxn *t, uint64_t ino, uint64_t oldsize,
		   uint64_t newsize)
{
	uint64_t first = (newsize + META_CHUNK_SIZE - 1) / META_CHUNK_SIZE;
	struct meta_kvlist l = META_KVLIST_INIT(64);
	struct meta_key s, e;
	int rc;

	/* Chunks wholly past the end go, 64 at a time. */
	meta_key_chunk(t->m, &s, ino, (uint32_t)first);
	meta_key_ino(t->m, &e, ino, 'D');
	do {
		rc = meta_kvlist_scan(t->kv, &l, s.b, s.len, e.b, e.len);
		if (rc == 0)
			rc = kvlist_purge(t, &l);
	} while (rc == 0 && meta_kvlist_full(&l));
	meta_kvlist_free(&l);
	if (rc || newsize % META_CHUNK_SIZE == 0)
		return rc;
	/* The boundary chunk keeps its data but a hole slice hides what
	 * lies past the new end, so a later extension reads zeros. */
	{
		uint32_t pos = (uint32_t)(newsize % META_CHUNK_SIZE);
		struct meta_slice_write w = {
			(uint32_t)(newsize / META_CHUNK_SIZE),
			{0, 0, 0, (uint32_t)META_CHUNK_SIZE - pos, pos}};
		const void *v;
		size_t vlen;
		uint8_t *buf;

		meta_key_chunk(t->m, &s, ino, w.chunk);
		rc = meta_kv_get(t->kv, s.b, s.len, &v, &vlen);
		if (rc == -ENOENT)
			return 0;
		if (rc)
			return rc;
		buf = tl_malloc(vlen + SLICE_REC);
		memcpy(buf, v, vlen);
		meta_slice_encode(&w.s, buf + vlen);
		rc = meta_kv_put(t->kv, s.b, s.len, buf, vlen + SLICE_REC);
		free(buf);
	}
	return rc;
}

/* A file of few keys (its attribute key already deleted) loses them now,
 * its slices released in this transaction: gc then only deletes objects
 * (one commit a round instead of two), and a remove storm does not double
 * the metadata commits.  -EFBIG (nothing changed) when it has more keys
 * than one bounded step takes: gc purges those. */
#define PURGE_INLINE_KEYS 16
static int
purge_small(struct mtxn *t, uint64_t ino)
{
	struct meta_kvlist l = META_KVLIST_INIT(PURGE_INLINE_KEYS + 1);
	struct meta_key s, e;
	int rc;

	meta_key_ino(t->m, &s, ino, 0);
	meta_key_ino(t->m, &e, ino + 1, 0);
	rc = meta_kvlist_scan(t->kv, &l, s.b, s.len, e.b, e.len);
	if (rc == 0 && l.n > PURGE_INLINE_KEYS)
		rc = -EFBIG;
	if (rc == 0)
		rc = kvlist_purge(t, &l);
	meta_kvlist_free(&l);
	return rc;
}

int
meta_inode_drop(struct mtxn *t, const struct inode *in)
{
	struct meta_key k;
	uint8_t v[8];
	int rc;

	meta_key_ino(t->m, &k, in->a.ino, 'I');
	rc = meta_kv_del(t->kv, k.b, k.len);
	if (rc)
		return rc;
	switch (in->a.type) {
	case META_DIR:
		meta_key_usage(t->m, &k, in->a.ino);
		rc = meta_kv_del(t->kv, k.b, k.len);
		return rc ? rc : meta_quota_drop(t, in->a.ino);
	case META_LNK:
		meta_key_ino(t->m, &k, in->a.ino, 'S');
		return meta_kv_del(t->kv, k.b, k.len);
	case META_REG:
		if (in->a.size == 0)
			return 0; /* no chunk can exist: meta_data_truncate */
		rc = meta_size_account(t, in, -(int64_t)in->a.size);
		if (rc)
			return rc;
		rc = purge_small(t, in->a.ino);
		if (rc != -EFBIG)
			return rc;
		/* gc deletes the chunks later, in bounded steps. */
		meta_key_deleted(t->m, &k, in->a.ino, in->a.size);
		tl_put_be64(v, tl_now_ns());
		t->d_pending++;
		t->d_pendbytes += (int64_t)in->a.size;
		return meta_kv_put(t->kv, k.b, k.len, v, 8);
	default:
		return 0;
	}
}

/* ---- compaction of a chunk's record list ---------------------------------
 *
 * Every write appends records, so a chunk written over and over keeps
 * records nothing shows any more, and their slices' objects, and every
 * read and write of it gets slower.  Once the records appended since the
 * list was last in order are as many as those in order (and at least
 * COMPACT_TAIL), the writing transaction rewrites the list as what a
 * reader sees: records in position order, none overlapping, no holes,
 * neighbours of one slice merged.  Amortised that is O(log n) per record
 * appended, and the list never holds more than twice what is visible
 * (plus COMPACT_TAIL).  The data is not copied: records only shrink.
 *
 * A slice no record names any more is not released at once, because a
 * read that planned with the old list may still fetch it: it gets an
 * L<time> record, and meta_gc_next releases it once the grace period has
 * passed.  Until then it counts as referenced (fsck, gc's scan).
 */

/* Records at the start of a chunk value in position order, not
 * overlapping and not holes: a compacted list, and sequential writes. */
static size_t
chunk_sorted(const uint8_t *v, size_t n)
{
	uint64_t end = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		const uint8_t *p = v + i * SLICE_REC;
		uint32_t pos = tl_get_be32(p + 20);

		if (tl_get_be64(p) == 0 || pos < end)
			break;
		end = (uint64_t)pos + tl_get_be32(p + 16);
	}
	return i;
}

/* A max-heap of record indices: the newest record covering a position
 * wins. */
static void
heap_push(size_t *h, size_t *n, size_t x)
{
	size_t i = (*n)++;

	while (i > 0 && h[(i - 1) / 2] < x) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = x;
}

static void
heap_pop(size_t *h, size_t *n)
{
	size_t x = h[--(*n)], i = 0, c;

	while ((c = 2 * i + 1) < *n) {
		if (c + 1 < *n && h[c + 1] > h[c])
			c++;
		if (h[c] <= x)
			break;
		h[i] = h[c];
		i = c;
	}
	if (*n > 0)
		h[i] = x;
}

struct byposition {
	uint32_t pos;
	size_t i;
};

static int
cmp_pos(const void *a, const void *b)
{
	const struct byposition *x = a, *y = b;

	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The visible extents of records r[0..n) (later ones win) into out (room
 * for 2n + 1), in position order; returns how many. */
static size_t
chunk_visible(const struct meta_slice *r, size_t n, struct meta_slice *out)
{
	struct byposition *ord = tl_malloc((n ? n : 1) * sizeof(*ord));
	size_t *heap = tl_malloc((n ? n : 1) * sizeof(*heap));
	uint32_t *at = tl_malloc((2 * n + 1) * sizeof(*at));
	size_t nat = 0, nh = 0, next = 0, nout = 0, i;

	for (i = 0; i < n; i++) {
		ord[i] = (struct byposition){r[i].pos, i};
		at[nat++] = r[i].pos;
		at[nat++] = r[i].pos + r[i].len;
	}
	qsort(ord, n, sizeof(*ord), cmp_pos);
	qsort(at, nat, sizeof(*at), cmp_u32);
	for (i = 0; i + 1 < nat; i++) {
		uint32_t x = at[i], y = at[i + 1];
		const struct meta_slice *w;

		if (x == y)
			continue;
		while (next < n && ord[next].pos <= x)
			heap_push(heap, &nh, ord[next++].i);
		while (nh > 0 && r[heap[0]].pos + r[heap[0]].len <= x)
			heap_pop(heap, &nh);
		if (nh == 0 || r[heap[0]].id == 0)
			continue; /* never written, or a hole */
		w = &r[heap[0]];
		if (nout > 0) {
			struct meta_slice *l = &out[nout - 1];

			if (l->id == w->id && l->size == w->size &&
			    l->pos + l->len == x &&
			    l->off + l->len == w->off + (x - w->pos)) {
				l->len += y - x;
				continue;
			}
		}
		out[nout++] = (struct meta_slice){
			w->id, w->size, w->off + (x - w->pos), y - x, x};
	}
	free(ord);
	free(heap);
	free(at);
	return nout;
}

/* Distinct (id, size) of non-hole records, sorted, into a new array. */
static struct meta_slice_ref *
slice_set(const struct meta_slice *r, size_t n, size_t *nout)
{
	struct meta_slice_ref *v = tl_malloc((n ? n : 1) * sizeof(*v));
	size_t u = 0;

	for (size_t i = 0; i < n; i++)
		if (r[i].id != 0)
			v[u++] = (struct meta_slice_ref){r[i].id, r[i].size};
	*nout = refs_distinct(v, u);
	return v;
}

/* Slices of before[0..nb) that after[0..na) no longer names get an L
 * record: released once the grace period has passed. */
static int
release_dropped(struct mtxn *t, const struct meta_slice *before, size_t nb,
		const struct meta_slice *after, size_t na)
{
	struct meta_slice_ref *b, *a;
	uint64_t now = tl_now_ns();
	size_t nsb, nsa, j = 0;
	struct meta_key k;
	int rc = 0;

	b = slice_set(before, nb, &nsb);
	a = slice_set(after, na, &nsa);
	for (size_t i = 0; rc == 0 && i < nsb; i++) {
		while (j < nsa && meta_slice_ref_cmp(&a[j], &b[i]) < 0)
			j++;
		if (j < nsa && meta_slice_ref_cmp(&a[j], &b[i]) == 0)
			continue;
		meta_key_compacted(t->m, &k, now, b[i].id, b[i].size);
		rc = meta_kv_put(t->kv, k.b, k.len, "", 0);
		t->d_pending++;
	}
	free(b);
	free(a);
	return rc;
}

/* Rewrite the n records in *buf as their visible extents; slices that
 * disappear get L records.  *buf is replaced, *n updated. */
static int
chunk_compact(struct mtxn *t, uint8_t **buf, size_t *n)
{
	struct meta_slice *r = tl_malloc((*n ? *n : 1) * sizeof(*r));
	struct meta_slice *vis = tl_malloc((2 * *n + 1) * sizeof(*vis));
	size_t nvis;
	int rc;

	for (size_t i = 0; i < *n; i++)
		meta_slice_decode(*buf + i * SLICE_REC, &r[i]);
	nvis = chunk_visible(r, *n, vis);
	rc = release_dropped(t, r, *n, vis, nvis);
	if (rc == 0) {
		for (size_t i = 0; i < nvis; i++)
			meta_slice_encode(&vis[i], *buf + i * SLICE_REC);
		*n = nvis;
	}
	free(r);
	free(vis);
	return rc;
}

/* Bytes of the distinct slices of r[0..n) that old[0..nold) does not
 * name: slices whose objects a commit adds to the store (the volume's
 * stored bytes; inline slices have no object).  A slice id is never handed out twice, and a flush
 * names its slices in one commit only. */
static int64_t
new_slice_bytes(const struct meta_slice *r, size_t n,
		const struct meta_slice *old, size_t nold)
{
	struct meta_slice_ref *a, *b;
	size_t na, nb, j = 0;
	int64_t sum = 0;

	a = slice_set(r, n, &na);
	b = slice_set(old, nold, &nb);
	for (size_t i = 0; i < na; i++) {
		while (j < nb && meta_slice_ref_cmp(&b[j], &a[i]) < 0)
			j++;
		if (j < nb && meta_slice_ref_cmp(&b[j], &a[i]) == 0)
			continue;
		if (!meta_slice_inline(
			    a[i].id)) /* in metadata, not the store */
			sum += a[i].size;
	}
	free(a);
	free(b);
	return sum;
}

/* The inode of a regular file: -EINVAL for any other type. */
static int
reg_get(struct mtxn *t, uint64_t ino, struct inode *in)
{
	int rc = meta_inode_get(t, ino, in);

	if (rc == 0 && in->a.type != META_REG)
		rc = -EINVAL;
	return rc;
}

/* Replace a chunk's records, unchanged since they were read as old[0..n),
 * by nw[0..nn) (the same bytes, partly in a fresh slice, partly still in
 * old slices); every old slice nw does not name gets an L record. */
struct rewrite_op {
	uint64_t ino;
	uint32_t chunk;
	const struct meta_slice *old, *nw;
	size_t n, nn;
};

static int
rewrite_txn(struct mtxn *t, void *arg)
{
	const struct rewrite_op *o = arg;
	const struct meta_slice *old = o->old, *nw = o->nw;
	size_t n = o->n, nn = o->nn;
	uint64_t ino = o->ino;
	uint32_t chunk = o->chunk;
	uint8_t rec[SLICE_REC], *buf;
	struct meta_key k;
	struct inode in;
	const uint8_t *v;
	size_t vlen;
	int rc;

	rc = reg_get(t, ino, &in);
	if (rc)
		return rc;
	meta_key_chunk(t->m, &k, ino, chunk);
	rc = meta_kv_get(t->kv, k.b, k.len, (const void **)&v, &vlen);
	if (rc == -ENOENT || (rc == 0 && vlen != n * SLICE_REC))
		return -EAGAIN;
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		meta_slice_encode(&old[i], rec);
		if (memcmp(rec, v + i * SLICE_REC, SLICE_REC) != 0)
			return -EAGAIN; /* written or compacted meanwhile */
	}
	rc = release_dropped(t, old, n, nw, nn);
	if (rc)
		return rc;
	t->d_stored += new_slice_bytes(nw, nn, old, n);
	buf = tl_malloc((nn ? nn : 1) * SLICE_REC);
	for (size_t i = 0; i < nn; i++)
		meta_slice_encode(&nw[i], buf + i * SLICE_REC);
	meta_key_chunk(t->m, &k, ino, chunk);
	rc = nn ? meta_kv_put(t->kv, k.b, k.len, buf, nn * SLICE_REC)
		: meta_kv_del(t->kv, k.b, k.len);
	free(buf);
	return rc;
}

int
meta_rewrite_chunk(struct meta *m, uint64_t ino, uint32_t chunk,
		   const struct meta_slice *old, size_t n,
		   const struct meta_slice *nw, size_t nn)
{
	struct rewrite_op o = {ino, chunk, old, nw, n, nn};

	for (size_t i = 0; i < nn; i++)
		if (nw[i].id == 0 ||
		    (uint64_t)nw[i].pos + nw[i].len > META_CHUNK_SIZE ||
		    (uint64_t)nw[i].off + nw[i].len > nw[i].size)
			return -EINVAL;
	return meta_txn_run(m, false, rewrite_txn, &o);
}

/* ---- reading and writing chunks ------------------------------------------ */

int
meta_read_chunk(struct meta *m, uint64_t ino, uint32_t chunk, uint32_t from,
		uint32_t to, struct meta_slice **out, size_t *n)
{
	struct meta_key k;
	struct inode in;
	struct mtxn t;
	const uint8_t *v;
	size_t vlen, cnt, u = 0;
	int rc;

	*out = NULL;
	*n = 0;
	rc = meta_txn_begin_inode(m, &t, ino, &in);
	if (rc)
		return rc;
	meta_key_chunk(m, &k, ino, chunk);
	rc = meta_kv_get(t.kv, k.b, k.len, (const void **)&v, &vlen);
	if (rc == -ENOENT) {
		rc = 0;
		goto out;
	}
	if (rc || vlen < SLICE_REC || from >= to)
		goto out;
	/* Only records over [from, to) matter to the reader: a long list
	 * costs one pass over two fields, not a copy. */
	cnt = vlen / SLICE_REC;
	for (size_t i = 0; i < cnt; i++) {
		const uint8_t *p = v + i * SLICE_REC;
		uint32_t pos = tl_get_be32(p + 20);

		if (pos >= to || (uint64_t)pos + tl_get_be32(p + 16) <= from)
			continue;
		if (*out == NULL)
			*out = tl_malloc((cnt - i) * sizeof(**out));
		meta_slice_decode(p, &(*out)[u++]);
	}
	*n = u;
out:
	return meta_txn_end(&t, rc);
}

static int
write_check(const struct meta_slice_write *w, size_t n, uint64_t *end)
{
	*end = 0;
	for (size_t i = 0; i < n; i++) {
		const struct meta_slice *s = &w[i].s;
		uint64_t e = (uint64_t)w[i].chunk * META_CHUNK_SIZE + s->pos +
			     s->len;

		if ((uint64_t)s->pos + s->len > META_CHUNK_SIZE ||
		    (s->id && (uint64_t)s->off + s->len > s->size))
			return -EINVAL;
		if (e > META_MAX_FILE_SIZE)
			return -EFBIG;
		*end = TL_MAX(*end, e);
	}
	return 0;
}

/* Append records w[i..j) (all of one chunk) to its value; *nrec
 * receives how many records the value holds then. */
static int
chunk_append(struct mtxn *t, uint64_t ino, const struct meta_slice_write *w,
	     size_t cnt, uint32_t *nrec)
{
	struct meta_key k;
	const void *v;
	size_t vlen = 0, n, sorted;
	uint8_t *buf;
	int rc;

	meta_key_chunk(t->m, &k, ino, w[0].chunk);
	rc = meta_kv_get(t->kv, k.b, k.len, &v, &vlen);
	if (rc == -ENOENT)
		vlen = 0;
	else if (rc)
		return rc;
	rc = 0;
	vlen -= vlen % SLICE_REC;
	buf = tl_malloc(vlen + cnt * SLICE_REC);
	if (vlen)
		memcpy(buf, v, vlen);
	for (size_t i = 0; i < cnt; i++)
		meta_slice_encode(&w[i].s, buf + vlen + i * SLICE_REC);
	n = vlen / SLICE_REC + cnt;
	{
		/* The slices this commit adds to the store: those the chunk
		 * did not name yet (the volume's stored bytes). */
		struct meta_slice *r = tl_malloc(n * sizeof(*r));

		for (size_t i = 0; i < n; i++)
			meta_slice_decode(buf + i * SLICE_REC, &r[i]);
		t->d_stored += new_slice_bytes(r + n - cnt, cnt, r, n - cnt);
		free(r);
	}
	sorted = chunk_sorted(buf, vlen / SLICE_REC);
	if (n - sorted >= COMPACT_TAIL && n - sorted >= sorted) {
		/* Room for the extents (at most 2n + 1 records). */
		buf = tl_realloc(buf, (2 * n + 1) * SLICE_REC);
		rc = chunk_compact(t, &buf, &n);
	}
	if (rc == 0)
		rc = meta_kv_put(t->kv, k.b, k.len, buf, n * SLICE_REC);
	*nrec = (uint32_t)TL_MIN(n, UINT32_MAX);
	free(buf);
	return rc;
}

static int
write_txn(struct mtxn *t, uint64_t ino, const struct meta_slice_write *w,
	  size_t n, uint64_t end, uint64_t mtime_ns, struct meta_attr *post,
	  uint32_t *records)
{
	struct inode in;
	int64_t d = 0;
	int rc;

	rc = reg_get(t, ino, &in);
	if (rc)
		return rc;
	if (end > in.a.size) {
		d = (int64_t)round4k(end) - (int64_t)round4k(in.a.size);
		rc = meta_capacity_check(t, d);
		if (rc == 0)
			rc = meta_size_account(t, &in,
					       (int64_t)(end - in.a.size));
		if (rc)
			return rc;
		in.a.size = end;
	}

	for (size_t i = 0, j; rc == 0 && i < n; i = j) {
		uint32_t nrec = 0;

		for (j = i + 1; j < n && w[j].chunk == w[i].chunk; j++)
			;
		rc = chunk_append(t, ino, w + i, j - i, &nrec);
		for (size_t x = i; records && x < j; x++)
			records[x] = nrec;
	}
	/* Overwrites count again, so the figure is capped by the size: exact
	 * for files written once (sparse ones included), never above what a
	 * dense file would use. */
	for (size_t i = 0; i < n; i++)
		if (w[i].s.id != 0)
			in.a.written += round4k(w[i].s.len);
	in.a.written = TL_MIN(in.a.written, round4k(in.a.size));
	if (rc == 0)
		rc = meta_usage_add(t, in.a.parent, d, 0);
	t->d_bytes += d;
	in.a.mtime_ns = in.a.ctime_ns = mtime_ns;
	if (rc == 0)
		rc = meta_inode_put(t, &in);
	if (rc == 0 && post)
		*post = in.a;
	return rc;
}

struct write_op {
	uint64_t ino, end, id, mtime_ns;
	const struct meta_slice_write *w;
	size_t n;
	const void *data;
	uint32_t len, *records;
	struct meta_attr *post;
};

static int
write_run(struct mtxn *t, void *arg)
{
	const struct write_op *o = arg;
	struct meta_key k;
	int rc;

	/* Quotas are enforced when the WRITE arrives
	 * (meta_quota_write_room): data acknowledged then is stored
	 * whatever the usage is now. */
	t->q_nocheck = true;
	rc = write_txn(t, o->ino, o->w, o->n, o->end, o->mtime_ns, o->post,
		       o->records);
	if (rc == 0 && o->data != NULL) {
		meta_key_slice(t->m, &k, 'I', o->id, o->len);
		rc = meta_kv_put(t->kv, k.b, k.len, o->data, o->len);
	}
	return rc;
}

/* Records and, for an inline slice (data not NULL), its bytes in one
 * transaction. */
static int
write_slices(struct meta *m, uint64_t ino, const struct meta_slice_write *w,
	     size_t n, uint64_t id, const void *data, uint32_t len,
	     uint64_t mtime_ns, struct meta_attr *post, uint32_t *records)
{
	struct write_op o = {.ino = ino,
			     .id = id,
			     .mtime_ns = mtime_ns,
			     .w = w,
			     .n = n,
			     .data = data,
			     .len = len,
			     .records = records,
			     .post = post};
	int rc;

	rc = write_check(w, n, &o.end);
	if (rc)
		return rc;
	return meta_txn_run(m, false, write_run, &o);
}

int
meta_write_slices(struct meta *m, uint64_t ino,
		  const struct meta_slice_write *w, size_t n, uint64_t mtime_ns,
		  struct meta_attr *post, uint32_t *records)
{
	for (size_t i = 0; i < n; i++)
		if (meta_slice_inline(w[i].s.id))
			return -EINVAL; /* its bytes: meta_write_inline */
	return write_slices(m, ino, w, n, 0, NULL, 0, mtime_ns, post, records);
}

int
meta_write_inline(struct meta *m, uint64_t ino,
		  const struct meta_slice_write *w, size_t n, uint64_t id,
		  const void *data, uint32_t len, uint64_t mtime_ns,
		  struct meta_attr *post, uint32_t *records)
{
	if (!meta_slice_inline(id) || len == 0 || len > META_INLINE_MAX ||
	    data == NULL)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (meta_slice_inline(w[i].s.id) &&
		    (w[i].s.id != id || w[i].s.size != len))
			return -EINVAL; /* another inline slice's bytes */
	return write_slices(m, ino, w, n, id, data, len, mtime_ns, post,
			    records);
}

bool
meta_inline_room(struct meta *m)
{
	struct meta_kv_lmdb_stats s;

	if (meta_kv_lmdb_stats(m->kv, &s) != 0 || s.map_bytes == 0)
		return true; /* not an LMDB engine of this process */
	return s.pages_used * s.page_size < s.map_bytes / 2;
}

int
meta_inline_read(struct meta *m, uint64_t id, uint32_t size, uint32_t off,
		 uint32_t n, void *buf)
{
	struct meta_key k;
	struct mtxn t;
	const void *v;
	size_t vlen;
	int rc;

	if (!meta_slice_inline(id) || (uint64_t)off + n > size)
		return -EINVAL;
	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	meta_key_slice(m, &k, 'I', id, size);
	rc = meta_kv_get(t.kv, k.b, k.len, &v, &vlen);
	if (rc == 0 && vlen != size)
		rc = -EIO;
	if (rc == 0)
		memcpy(buf, (const uint8_t *)v + off, n);
	return meta_txn_end(&t, rc);
}

/* ---- garbage collection -------------------------------------------------- */

/* Purge up to *budget keys of deleted inodes. */
static int
gc_purge(struct mtxn *t, size_t *budget)
{
	struct meta_kvlist dl = META_KVLIST_INIT(16);
	struct meta_kvlist l = META_KVLIST_INIT(0);
	struct meta_key s, e;
	const uint8_t *k, *v;
	size_t klen, vlen, off = 0, p = t->m->pfxlen;
	int rc;

	meta_key_tag(t->m, &s, 'D');
	meta_key_tag(t->m, &e, 'E');
	rc = meta_kvlist_scan(t->kv, &dl, s.b, s.len, e.b, e.len);
	while (rc == 0 && *budget > 0 &&
	       meta_kvlist_next(&dl, &off, &k, &klen, &v, &vlen)) {
		uint64_t ino, left;
		int64_t released;

		if (klen != p + 17)
			continue;
		ino = tl_get_be64(k + p + 1);
		left = tl_get_be64(k + p + 9);
		meta_key_ino(t->m, &s, ino, 0);
		meta_key_ino(t->m, &e, ino + 1, 0);
		l.max = *budget;
		rc = meta_kvlist_scan(t->kv, &l, s.b, s.len, e.b, e.len);
		released = t->d_pendbytes;
		if (rc == 0)
			rc = kvlist_purge(t, &l);
		released = t->d_pendbytes - released; /* now in R records */
		*budget -= l.n;
		if (rc == 0 && l.n < l.max) {
			/* Nothing of the inode is left. */
			rc = meta_kv_del(t->kv, k, klen);
			t->d_pending--;
			t->d_pendbytes -= (int64_t)left;
		} else if (rc == 0 && released > 0 && left > 0) {
			/* Purged in part: what its slices released counts
			 * in R from now on, so the D record counts that
			 * much less (meta.h, pending_bytes). */
			uint64_t now_left = left > (uint64_t)released
						    ? left - (uint64_t)released
						    : 0;

			rc = meta_kv_del(t->kv, k, klen);
			meta_key_deleted(t->m, &s, ino, now_left);
			if (rc == 0)
				rc = meta_kv_put(t->kv, s.b, s.len, v, vlen);
			t->d_pendbytes -= (int64_t)(left - now_left);
		}
	}
	meta_kvlist_free(&l);
	meta_kvlist_free(&dl);
	return rc;
}

/* Release up to *budget slices compaction dropped more than the grace
 * period ago. */
static int
gc_compacted(struct mtxn *t, size_t *budget)
{
	struct meta_kvlist l = META_KVLIST_INIT(*budget);
	uint64_t now = tl_now_ns(), grace = t->m->compact_grace_ns;
	const uint8_t *k, *v;
	size_t klen, vlen, off = 0, p = t->m->pfxlen;
	struct meta_key s, e;
	int rc;

	if (*budget == 0)
		return 0;
	meta_key_tag(t->m, &s, 'L');
	meta_key_compacted(t->m, &e, now > grace ? now - grace : 0, 0, 0);
	rc = meta_kvlist_scan(t->kv, &l, s.b, s.len, e.b, e.len);
	while (rc == 0 && meta_kvlist_next(&l, &off, &k, &klen, &v, &vlen)) {
		if (klen != p + 21)
			continue;
		rc = meta_slice_release(t, tl_get_be64(k + p + 9),
					tl_get_be32(k + p + 17));
		if (rc == 0)
			rc = meta_kv_del(t->kv, k, klen);
		t->d_pending--;
	}
	*budget -= l.n;
	meta_kvlist_free(&l);
	return rc;
}

struct gc_out {
	struct meta_slice_ref *out;
	size_t max, n, pfxlen;
};

static int
released_cb(void *arg, const void *key, size_t klen, const void *val,
	    size_t vlen)
{
	struct gc_out *g = arg;
	const uint8_t *k = key;

	if (klen != g->pfxlen + 13)
		return 0;
	g->out[g->n].id = tl_get_be64(k + g->pfxlen + 1);
	g->out[g->n].size = tl_get_be32(k + g->pfxlen + 9);
	return ++g->n >= g->max;
}

static int
gc_next_txn(struct mtxn *t, void *arg)
{
	struct gc_out *g = arg;
	struct meta_key s, e;
	size_t budget = META_GC_KEYS;
	int rc;

	g->n = 0;
	rc = gc_purge(t, &budget);
	if (rc == 0)
		rc = gc_compacted(t, &budget);
	meta_key_tag(t->m, &s, 'R');
	meta_key_tag(t->m, &e, 'S');
	if (rc == 0 && g->max > 0)
		rc = meta_kv_scan(t->kv, s.b, s.len, e.b, e.len, released_cb,
				  g);
	return rc;
}

int
meta_gc_next(struct meta *m, struct meta_slice_ref *out, size_t max, size_t *n)
{
	struct gc_out g = {out, max, 0, m->pfxlen};
	int rc;

	rc = meta_txn_run(m, false, gc_next_txn, &g);
	*n = rc == 0 ? g.n : 0;
	return rc;
}

struct release_op {
	const struct meta_slice_ref *r;
	size_t n;
};

static int
release_txn(struct mtxn *t, void *arg)
{
	const struct release_op *o = arg;
	const struct meta_slice_ref *r = o->r;
	struct meta_key k;
	const void *v;
	size_t vlen;
	int rc = 0;

	/* Losing this in a crash only makes gc delete the (already
	 * deleted, so missing: not an error) objects again. */
	t->lazy = true;
	for (size_t i = 0; rc == 0 && i < o->n; i++) {
		meta_key_slice(t->m, &k, 'R', r[i].id, r[i].size);
		rc = meta_kv_get(t->kv, k.b, k.len, &v, &vlen);
		if (rc == -ENOENT) {
			rc = 0; /* never queued, or already gone */
			continue;
		}
		if (rc == 0)
			rc = meta_kv_del(t->kv, k.b, k.len);
		t->d_pending--;
		/* its objects are gone from the store */
		t->d_pendbytes -= r[i].size;
		t->d_stored -= r[i].size;
	}
	return rc;
}

int
meta_gc_release(struct meta *m, const struct meta_slice_ref *r, size_t n)
{
	struct release_op o = {r, n};

	return meta_txn_run(m, false, release_txn, &o);
}
