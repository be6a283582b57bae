/*
 * usage.c - reading what directories use and how files are stored, for
 * `tessera info` and `tessera summary`: a directory's own usage record
 * (U<dir>, dir.c), its subdirectories a page at a time from the readdir
 * index (which carries each entry's type, so no inode is read), and a
 * file's chunk records.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta-internal.h"

int
meta_dir_usage(struct meta *m, uint64_t dir, uint64_t *bytes, uint64_t *inodes)
{
	struct inode in;
	struct mtxn t;
	int rc;

	*bytes = *inodes = 0;
	rc = meta_txn_begin_inode(m, &t, dir, &in);
	if (rc)
		return rc;
	if (in.a.type != META_DIR)
		rc = -ENOTDIR;
	if (rc == 0)
		rc = meta_usage_get(&t, dir, bytes, inodes);
	return meta_txn_end(&t, rc);
}

struct subdirs {
	struct meta_subdir *out;
	size_t max, n;
	bool stopped;
};

static int
subdirs_cb(void *arg, const void *key, size_t klen, const void *val,
	   size_t vlen)
{
	struct subdirs *s = arg;
	const uint8_t *v = val;
	struct meta_subdir *d;

	if (vlen < 10 || vlen - 9 > META_NAME_MAX)
		return -EIO;
	if (v[8] != META_DIR)
		return 0;
	if (s->n == s->max) {
		s->stopped = true;
		return 1;
	}
	d = &s->out[s->n++];
	d->ino = tl_get_be64(v);
	d->cookie = tl_get_be64((const uint8_t *)key + klen - 8);
	memcpy(d->name, v + 9, vlen - 9);
	d->name[vlen - 9] = 0;
	return 0;
}

int
meta_subdirs(struct meta *m, uint64_t dir, uint64_t after,
	     struct meta_subdir *out, size_t max, size_t *n, bool *eof)
{
	struct subdirs s = {out, max, 0, false};
	struct meta_key b, e;
	struct mtxn t;
	int rc;

	*n = 0;
	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	meta_key_order(m, &b, dir, after < 3 ? 3 : after + 1);
	meta_key_ino(m, &e, dir, 'P');
	if (after != UINT64_MAX)
		rc = meta_kv_scan(t.kv, b.b, b.len, e.b, e.len, subdirs_cb, &s);
	*n = s.n;
	if (eof)
		*eof = !s.stopped;
	return meta_txn_end(&t, rc);
}

struct chunks {
	size_t pfx; /* key length up to the chunk index */
	meta_chunk_cb cb;
	void *arg;
	struct meta_slice *v;
	size_t cap;
};

static int
chunks_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct chunks *c = arg;
	size_t n = vlen / SLICE_REC;

	if (klen != c->pfx + 4 || vlen % SLICE_REC)
		return -EIO;
	if (n > c->cap) {
		c->cap = n;
		c->v = tl_realloc(c->v, n * sizeof(*c->v));
	}
	for (size_t i = 0; i < n; i++)
		meta_slice_decode((const uint8_t *)val + i * SLICE_REC,
				  &c->v[i]);
	return c->cb(c->arg, tl_get_be32((const uint8_t *)key + c->pfx), c->v,
		     n);
}

int
meta_file_chunks(struct meta *m, uint64_t ino, meta_chunk_cb cb, void *arg)
{
	struct chunks c = {0, cb, arg, NULL, 0};
	struct meta_key b, e;
	struct mtxn t;
	int rc;

	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	meta_key_ino(m, &b, ino, 'C');
	meta_key_ino(m, &e, ino, 'D');
	c.pfx = b.len;
	rc = meta_kv_scan(t.kv, b.b, b.len, e.b, e.len, chunks_cb, &c);
	free(c.v);
	if (rc > 0)
		rc = 0;
	return meta_txn_end(&t, rc);
}
