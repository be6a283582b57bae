/*
 * schema.c - key layout, value codecs and transaction helpers of the
 * file-system layer (layout in meta-internal.h).
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "meta/meta-internal.h"

/* ---- keys ---------------------------------------------------------------- */

static uint8_t *
key_start(struct meta *m, struct meta_key *k)
{
	memcpy(k->b, m->pfx, m->pfxlen);
	return k->b + m->pfxlen;
}

void
meta_key_setting(struct meta *m, struct meta_key *k)
{
	uint8_t *p = key_start(m, k);

	memcpy(p, "setting", 7);
	k->len = m->pfxlen + 7;
}

void
meta_key_counter(struct meta *m, struct meta_key *k, const char *name)
{
	uint8_t *p = key_start(m, k);
	size_t n = strlen(name);

	*p++ = 'C';
	memcpy(p, name, n);
	k->len = m->pfxlen + 1 + n;
}

/* A<ino><tag>; tag 0 gives the bare A<ino> prefix. */
void
meta_key_ino(struct meta *m, struct meta_key *k, uint64_t ino, char tag)
{
	uint8_t *p = key_start(m, k);

	*p++ = 'A';
	tl_put_be64(p, ino);
	p += 8;
	if (tag)
		*p++ = (uint8_t)tag;
	k->len = (size_t)(p - k->b);
}

void
meta_key_dentry(struct meta *m, struct meta_key *k, uint64_t dir,
		const char *name, size_t len)
{
	meta_key_ino(m, k, dir, 'D');
	memcpy(k->b + k->len, name, len);
	k->len += len;
}

void
meta_key_order(struct meta *m, struct meta_key *k, uint64_t dir,
	       uint64_t cookie)
{
	meta_key_ino(m, k, dir, 'O');
	tl_put_be64(k->b + k->len, cookie);
	k->len += 8;
}

void
meta_key_chunk(struct meta *m, struct meta_key *k, uint64_t ino, uint32_t chunk)
{
	meta_key_ino(m, k, ino, 'C');
	tl_put_be32(k->b + k->len, chunk);
	k->len += 4;
}

/* K (refcount) or R (released) keys of a slice. */
void
meta_key_slice(struct meta *m, struct meta_key *k, char tag, uint64_t id,
	       uint32_t size)
{
	uint8_t *p = key_start(m, k);

	*p++ = (uint8_t)tag;
	tl_put_be64(p, id);
	tl_put_be32(p + 8, size);
	k->len = m->pfxlen + 13;
}

void
meta_key_deleted(struct meta *m, struct meta_key *k, uint64_t ino,
		 uint64_t size)
{
	uint8_t *p = key_start(m, k);

	*p++ = 'D';
	tl_put_be64(p, ino);
	tl_put_be64(p + 8, size);
	k->len = m->pfxlen + 17;
}

void
meta_key_compacted(struct meta *m, struct meta_key *k, uint64_t time_ns,
		   uint64_t id, uint32_t size)
{
	uint8_t *p = key_start(m, k);

	*p++ = 'L';
	tl_put_be64(p, time_ns);
	tl_put_be64(p + 8, id);
	tl_put_be32(p + 16, size);
	k->len = m->pfxlen + 21;
}

void
meta_key_usage(struct meta *m, struct meta_key *k, uint64_t ino)
{
	uint8_t *p = key_start(m, k);

	*p++ = 'U';
	tl_put_be64(p, ino);
	k->len = m->pfxlen + 9;
}

void
meta_key_link(struct meta *m, struct meta_key *k, uint64_t ino, uint64_t dir)
{
	meta_key_ino(m, k, ino, 'L');
	tl_put_be64(k->b + k->len, dir);
	k->len += 8;
}

/* The first key of a one-letter section (D, R, K...). */
void
meta_key_tag(struct meta *m, struct meta_key *k, char tag)
{
	uint8_t *p = key_start(m, k);

	*p = (uint8_t)tag;
	k->len = m->pfxlen + 1;
}

void
meta_key_session(struct meta *m, struct meta_key *k, uint64_t id)
{
	uint8_t *p = key_start(m, k);

	*p++ = 'G';
	tl_put_be64(p, id);
	k->len = m->pfxlen + 9;
}

void
meta_key_registry(struct meta_key *k, const char *name)
{
	size_t n = strlen(name);

	k->b[0] = 0;
	k->b[1] = 'V';
	memcpy(k->b + 2, name, n);
	k->len = 2 + n;
}

/* ---- codecs -------------------------------------------------------------- */

#define INODE_VERSION 1

void
meta_inode_encode(const struct inode *in, uint8_t p[INODE_VLEN])
{
	const struct meta_attr *a = &in->a;

	p[0] = INODE_VERSION;
	p[1] = a->type;
	tl_put_be32(p + 2, a->mode);
	tl_put_be32(p + 6, a->nlink);
	tl_put_be32(p + 10, a->uid);
	tl_put_be32(p + 14, a->gid);
	tl_put_be64(p + 18, a->size);
	tl_put_be32(p + 26, a->rdev_major);
	tl_put_be32(p + 30, a->rdev_minor);
	tl_put_be64(p + 34, a->atime_ns);
	tl_put_be64(p + 42, a->mtime_ns);
	tl_put_be64(p + 50, a->ctime_ns);
	tl_put_be64(p + 58, a->parent);
	tl_put_be32(p + 66, a->gen);
	tl_put_be64(p + 70, in->next_cookie);
	p[78] = in->has_verf;
	memcpy(p + 79, in->verf, 8);
	tl_put_be64(p + 87, a->written);
}

int
meta_inode_decode(const void *v, size_t len, uint64_t ino, struct inode *in)
{
	const uint8_t *p = v;
	struct meta_attr *a = &in->a;

	if (len < INODE_VLEN_V1 || p[0] != INODE_VERSION) {
		tl_err(META_SUB, "inode %llu: bad attribute record",
		       (unsigned long long)ino);
		return -EIO;
	}
	memset(in, 0, sizeof(*in));
	a->ino = ino;
	a->type = p[1];
	a->mode = tl_get_be32(p + 2);
	a->nlink = tl_get_be32(p + 6);
	a->uid = tl_get_be32(p + 10);
	a->gid = tl_get_be32(p + 14);
	a->size = tl_get_be64(p + 18);
	a->rdev_major = tl_get_be32(p + 26);
	a->rdev_minor = tl_get_be32(p + 30);
	a->atime_ns = tl_get_be64(p + 34);
	a->mtime_ns = tl_get_be64(p + 42);
	a->ctime_ns = tl_get_be64(p + 50);
	a->parent = tl_get_be64(p + 58);
	a->gen = tl_get_be32(p + 66);
	in->next_cookie = tl_get_be64(p + 70);
	in->has_verf = p[78] != 0;
	memcpy(in->verf, p + 79, 8);
	/* Records written before the field existed count as fully stored. */
	a->written = len >= INODE_VLEN ? tl_get_be64(p + 87)
				       : (a->size + 4095) & ~4095ULL;
	return 0;
}

#define SETTINGS_VERSION 1

/* version u8, name (u8 len), uuid 16, secret 32, block size be32, trash
 * days be32, capacity be64, inode limit be64, ctime be64, storage (be16
 * len). */
size_t
meta_settings_encode(const struct meta_settings *s, uint8_t *out, size_t cap)
{
	size_t nl = strlen(s->name), sl = strlen(s->storage);
	uint8_t *p = out;

	if (cap < 1 + 1 + nl + 16 + 32 + 4 + 4 + 8 + 8 + 8 + 2 + sl)
		return 0;
	*p++ = SETTINGS_VERSION;
	*p++ = (uint8_t)nl;
	memcpy(p, s->name, nl);
	p += nl;
	memcpy(p, s->uuid, 16);
	p += 16;
	memcpy(p, s->secret, 32);
	p += 32;
	tl_put_be32(p, s->block_size);
	tl_put_be32(p + 4, s->trash_days);
	tl_put_be64(p + 8, s->capacity);
	tl_put_be64(p + 16, s->max_inodes);
	tl_put_be64(p + 24, s->ctime_ns);
	tl_put_be16(p + 32, (uint16_t)sl);
	p += 34;
	memcpy(p, s->storage, sl);
	p += sl;
	return (size_t)(p - out);
}

int
meta_settings_decode(const void *v, size_t len, struct meta_settings *s)
{
	const uint8_t *p = v, *end = p + len;
	size_t nl, sl;

	memset(s, 0, sizeof(*s));
	if (len < 2 || p[0] != SETTINGS_VERSION)
		return -EIO;
	nl = p[1];
	p += 2;
	if (nl > META_VOLNAME_MAX || (size_t)(end - p) < nl + 16 + 32 + 34)
		return -EIO;
	memcpy(s->name, p, nl);
	p += nl;
	memcpy(s->uuid, p, 16);
	p += 16;
	memcpy(s->secret, p, 32);
	p += 32;
	s->block_size = tl_get_be32(p);
	s->trash_days = tl_get_be32(p + 4);
	s->capacity = tl_get_be64(p + 8);
	s->max_inodes = tl_get_be64(p + 16);
	s->ctime_ns = tl_get_be64(p + 24);
	sl = tl_get_be16(p + 32);
	p += 34;
	if (sl >= sizeof(s->storage) || (size_t)(end - p) < sl)
		return -EIO;
	memcpy(s->storage, p, sl);
	return 0;
}

void
meta_slice_encode(const struct meta_slice *s, uint8_t p[SLICE_REC])
{
	tl_put_be64(p, s->id);
	tl_put_be32(p + 8, s->size);
	tl_put_be32(p + 12, s->off);
	tl_put_be32(p + 16, s->len);
	tl_put_be32(p + 20, s->pos);
}

void
meta_slice_decode(const uint8_t p[SLICE_REC], struct meta_slice *s)
{
	s->id = tl_get_be64(p);
	s->size = tl_get_be32(p + 8);
	s->off = tl_get_be32(p + 12);
	s->len = tl_get_be32(p + 16);
	s->pos = tl_get_be32(p + 20);
}

/* ---- transactions -------------------------------------------------------- */

int
meta_txn_begin(struct meta *m, struct mtxn *t, bool rdonly)
{
	memset(t, 0, sizeof(*t));
	t->m = m;
	t->rdonly = rdonly;
	t->start_ns = tl_mono_ns();
	return meta_kv_begin(m->kv, rdonly, &t->kv);
}

/* ---- transaction figures (meta_txn_stats) ---- */

const double meta_txn_bucket_s[META_TXN_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01,   0.025,   0.05,   0.1,   0.25,   1,
};

static struct {
	_Atomic uint64_t count[2], lat_sum_ns[2];
	_Atomic uint64_t lat[2][META_TXN_BUCKETS + 1];
	_Atomic uint64_t conflicts, retries;
} txn_st;

#define TXN_ADD(field, v)                                                      \
	atomic_fetch_add_explicit(&txn_st.field, (v), memory_order_relaxed)
#define TXN_GET(field) atomic_load_explicit(&txn_st.field, memory_order_relaxed)

static int
txn_count(const struct mtxn *t, int rc)
{
	uint64_t ns = tl_mono_ns() - t->start_ns;
	unsigned k = !t->rdonly, i = 0;

	while (i < META_TXN_BUCKETS && (double)ns > meta_txn_bucket_s[i] * 1e9)
		i++;
	TXN_ADD(count[k], 1);
	TXN_ADD(lat_sum_ns[k], ns);
	TXN_ADD(lat[k][i], 1);
	if (rc == -EAGAIN)
		TXN_ADD(conflicts, 1);
	return rc;
}

void
meta_txn_stats(struct meta_txn_stats *out)
{
	for (unsigned k = 0; k < 2; k++) {
		out->count[k] = TXN_GET(count[k]);
		out->lat_sum_ns[k] = TXN_GET(lat_sum_ns[k]);
		for (unsigned i = 0; i <= META_TXN_BUCKETS; i++)
			out->lat[k][i] = TXN_GET(lat[k][i]);
	}
	out->conflicts = TXN_GET(conflicts);
	out->retries = TXN_GET(retries);
}

/* Counters many transactions bump are commutative adds, so concurrent
 * transactions do not conflict on them (kv.h, meta_kv_add). */
int
meta_counter_add(struct mtxn *t, const char *name, int64_t d)
{
	struct meta_key k;

	if (d == 0)
		return 0;
	meta_key_counter(t->m, &k, name);
	return meta_kv_add(t->kv, k.b, k.len, &d, 1);
}

int
meta_txn_end(struct mtxn *t, int rc)
{
	if (rc == 0 && !t->rdonly) {
		rc = meta_counter_add(t, CNT_USED_BYTES, t->d_bytes);
		if (rc == 0)
			rc = meta_counter_add(t, CNT_USED_INODES, t->d_inodes);
		if (rc == 0)
			rc = meta_counter_add(t, CNT_PENDING, t->d_pending);
		if (rc == 0)
			rc = meta_counter_add(t, CNT_LOGICAL, t->d_logical);
		if (rc == 0)
			rc = meta_counter_add(t, CNT_STORED, t->d_stored);
		if (rc == 0)
			rc = meta_counter_add(t, CNT_TRASH_BYTES, t->d_trash);
		if (rc == 0)
			rc = meta_counter_add(t, CNT_PENDING_BYTES,
					      t->d_pendbytes);
		if (rc == 0)
			rc = meta_quota_commit(t);
	}
	meta_quota_txn_free(t);
	if (rc == 0)
		return txn_count(t, t->lazy ? meta_kv_commit_lazy(t->kv)
					    : meta_kv_commit(t->kv));
	meta_kv_abort(t->kv);
	return txn_count(t, rc);
}

/* Before the third and later tries of a conflicting transaction, wait
 * a random time below a bound that doubles from 250 us to 16 ms: on
 * raft:// a commit takes a round trip, and transactions that collide
 * in one directory (many creates) retried at once collide again until
 * their tries run out (NFS3ERR_JUKEBOX: 15 of 2,000 creates of 4
 * clients in one directory).  At most about 120 ms in all. */
static void
retry_backoff(int tries)
{
	static _Thread_local uint64_t x;
	unsigned shift = (unsigned)TL_MIN(tries - 2, 6);

	if (tries < 2)
		return;
	if (x == 0)
		x = tl_now_ns() | 1;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	usleep((useconds_t)(x % (250u << shift)));
}

bool
meta_txn_retry(int rc, int *tries)
{
	if (rc != -EAGAIN || ++*tries >= META_TXN_RETRIES)
		return false;
	TXN_ADD(retries, 1);
	retry_backoff(*tries);
	return true;
}

int
meta_txn_run(struct meta *m, bool rdonly, int (*fn)(struct mtxn *t, void *arg),
	     void *arg)
{
	struct mtxn t;
	int rc, tries = 0;

	do {
		rc = meta_txn_begin(m, &t, rdonly);
		if (rc)
			return rc;
		rc = meta_txn_end(&t, fn(&t, arg));
		if (rc == -ENOSR) { /* meta_trash_put: ready the trash */
			rc = meta_trash_prepare(m);
			if (rc == 0)
				rc = -EAGAIN;
		}
	} while (meta_txn_retry(rc, &tries));
	return rc;
}

int
meta_txn_begin_inode(struct meta *m, struct mtxn *t, uint64_t ino,
		     struct inode *in)
{
	int rc = meta_txn_begin(m, t, true);

	if (rc)
		return rc;
	rc = meta_inode_get(t, ino, in);
	return rc ? meta_txn_end(t, rc) : 0;
}

/* ---- collected scans ------------------------------------------------------ */

static int
kvlist_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct meta_kvlist *l = arg;
	uint8_t h[4];

	tl_put_be16(h, (uint16_t)klen);
	tl_buf_append(&l->b, h, 2);
	tl_buf_append(&l->b, key, klen);
	tl_put_be32(h, (uint32_t)vlen);
	tl_buf_append(&l->b, h, 4);
	tl_buf_append(&l->b, val, vlen);
	return ++l->n >= l->max;
}

int
meta_kvlist_scan(struct meta_kv_txn *t, struct meta_kvlist *l,
		 const void *start, size_t slen, const void *end, size_t elen)
{
	l->n = 0;
	tl_buf_reset(&l->b);
	return meta_kv_scan(t, start, slen, end, elen, kvlist_cb, l);
}

bool
meta_kvlist_next(const struct meta_kvlist *l, size_t *off, const uint8_t **k,
		 size_t *klen, const uint8_t **v, size_t *vlen)
{
	const uint8_t *p;

	if (*off >= l->b.len)
		return false; /* also an empty list, whose data is NULL */
	p = l->b.data + *off;
	*klen = tl_get_be16(p);
	*k = p + 2;
	*vlen = tl_get_be32(p + 2 + *klen);
	*v = p + 6 + *klen;
	*off += 6 + *klen + *vlen;
	return true;
}

void
meta_kvlist_free(struct meta_kvlist *l)
{
	tl_buf_free(&l->b);
}

int
meta_inode_get(struct mtxn *t, uint64_t ino, struct inode *in)
{
	struct meta_key k;
	const void *v;
	size_t vlen;
	int rc;

	meta_key_ino(t->m, &k, ino, 'I');
	rc = meta_kv_get(t->kv, k.b, k.len, &v, &vlen);
	if (rc)
		return rc;
	return meta_inode_decode(v, vlen, ino, in);
}

int
meta_inode_put(struct mtxn *t, const struct inode *in)
{
	struct meta_key k;
	uint8_t v[INODE_VLEN];

	meta_key_ino(t->m, &k, in->a.ino, 'I');
	meta_inode_encode(in, v);
	return meta_kv_put(t->kv, k.b, k.len, v, sizeof(v));
}

int
meta_dentry_get(struct mtxn *t, uint64_t dir, const char *name, size_t len,
		uint8_t *type, uint64_t *ino, uint64_t *cookie)
{
	struct meta_key k;
	const uint8_t *v;
	size_t vlen;
	int rc;

	meta_key_dentry(t->m, &k, dir, name, len);
	rc = meta_kv_get(t->kv, k.b, k.len, (const void **)&v, &vlen);
	if (rc)
		return rc;
	if (vlen < 17)
		return -EIO;
	if (type)
		*type = v[0];
	*ino = tl_get_be64(v + 1);
	if (cookie)
		*cookie = tl_get_be64(v + 9);
	return 0;
}

int
meta_dentry_add(struct mtxn *t, struct inode *dir, const char *name, size_t len,
		uint8_t type, uint64_t ino)
{
	uint8_t v[17 + META_NAME_MAX];
	struct meta_key k;
	uint64_t cookie;
	int rc;

	if (dir->next_cookie < 3)
		dir->next_cookie = 3;
	cookie = dir->next_cookie++;
	v[0] = type;
	tl_put_be64(v + 1, ino);
	tl_put_be64(v + 9, cookie);
	meta_key_dentry(t->m, &k, dir->a.ino, name, len);
	rc = meta_kv_put(t->kv, k.b, k.len, v, 17);
	if (rc)
		return rc;
	/* The readdir index carries ino and type too, so a READDIR page
	 * is one scan without a get per entry. */
	tl_put_be64(v, ino);
	v[8] = type;
	memcpy(v + 9, name, len);
	meta_key_order(t->m, &k, dir->a.ino, cookie);
	return meta_kv_put(t->kv, k.b, k.len, v, 9 + len);
}

int
meta_dentry_del(struct mtxn *t, uint64_t dir, const char *name, size_t len,
		uint64_t cookie)
{
	struct meta_key k;
	int rc;

	meta_key_dentry(t->m, &k, dir, name, len);
	rc = meta_kv_del(t->kv, k.b, k.len);
	if (rc)
		return rc;
	meta_key_order(t->m, &k, dir, cookie);
	return meta_kv_del(t->kv, k.b, k.len);
}

static int
counter_read(struct mtxn *t, const char *name, uint64_t *v, bool peek)
{
	struct meta_key k;
	const void *val;
	size_t vlen;
	int rc;

	meta_key_counter(t->m, &k, name);
	rc = peek ? meta_kv_peek(t->kv, k.b, k.len, &val, &vlen)
		  : meta_kv_get(t->kv, k.b, k.len, &val, &vlen);
	if (rc == -ENOENT) {
		*v = 0;
		return 0;
	}
	if (rc)
		return rc;
	if (vlen != 8)
		return -EIO;
	*v = tl_get_be64(val);
	return 0;
}

int
meta_counter_get(struct mtxn *t, const char *name, uint64_t *v)
{
	return counter_read(t, name, v, false);
}

int
meta_counter_peek(struct mtxn *t, const char *name, uint64_t *v)
{
	return counter_read(t, name, v, true);
}

int
meta_counter_set(struct mtxn *t, const char *name, uint64_t v)
{
	struct meta_key k;
	uint8_t b[8];

	meta_key_counter(t->m, &k, name);
	tl_put_be64(b, v);
	return meta_kv_put(t->kv, k.b, k.len, b, 8);
}

int
meta_pair_get(struct mtxn *t, const struct meta_key *k, bool peek, uint64_t *a,
	      uint64_t *b)
{
	const uint8_t *v;
	size_t vlen;
	int rc;

	rc = peek ? meta_kv_peek(t->kv, k->b, k->len, (const void **)&v, &vlen)
		  : meta_kv_get(t->kv, k->b, k->len, (const void **)&v, &vlen);
	*a = *b = 0;
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	if (vlen != 16)
		return -EIO;
	*a = tl_get_be64(v);
	*b = tl_get_be64(v + 8);
	return 0;
}

int
meta_tag_scan(struct mtxn *t, char tag, meta_kv_scan_cb cb, void *arg)
{
	struct meta_key s, e;

	meta_key_tag(t->m, &s, tag);
	meta_key_tag(t->m, &e, (char)(tag + 1));
	return meta_kv_scan(t->kv, s.b, s.len, e.b, e.len, cb, arg);
}

int
meta_usage_get(struct mtxn *t, uint64_t dir, uint64_t *bytes, uint64_t *inodes)
{
	struct meta_key k;

	meta_key_usage(t->m, &k, dir);
	return meta_pair_get(t, &k, false, bytes, inodes);
}

int
meta_usage_add(struct mtxn *t, uint64_t dir, int64_t bytes, int64_t inodes)
{
	int64_t d[2] = {bytes, inodes};
	struct meta_key k;

	int rc;

	if (dir == 0 || (bytes == 0 && inodes == 0))
		return 0; /* 0: parent unknown (see unlink_inode) */
	meta_key_usage(t->m, &k, dir);
	rc = meta_kv_add(t->kv, k.b, k.len, d, 2);
	if (rc == 0)
		rc = meta_quota_charge(t, dir, bytes, inodes);
	return rc;
}

/* ---- link records ---------------------------------------------------------- */

int
meta_links_add(struct mtxn *t, uint64_t ino, uint64_t dir, int delta,
	       uint32_t *count)
{
	struct meta_key k;
	const void *v;
	size_t vlen;
	int64_t n = 0;
	uint8_t b[4];
	int rc;

	if (count)
		*count = 0;
	if (dir == 0)
		return 0;
	meta_key_link(t->m, &k, ino, dir);
	rc = meta_kv_get(t->kv, k.b, k.len, &v, &vlen);
	if (rc == 0 && vlen == 4)
		n = tl_get_be32(v);
	else if (rc != 0 && rc != -ENOENT)
		return rc;
	n += delta;
	if (n <= 0) /* a link no record counted: an older volume's */
		return rc == 0 ? meta_kv_del(t->kv, k.b, k.len) : 0;
	if (count)
		*count = (uint32_t)n;
	tl_put_be32(b, (uint32_t)n);
	return meta_kv_put(t->kv, k.b, k.len, b, 4);
}

struct links_scan {
	uint64_t *dirs;
	size_t max, n;
};

static int
links_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct links_scan *l = arg;

	if (klen < 8)
		return -EIO;
	l->dirs[l->n++] = tl_get_be64((const uint8_t *)key + klen - 8);
	return l->n == l->max;
}

int
meta_links_list(struct mtxn *t, uint64_t ino, uint64_t *dirs, size_t max,
		size_t *n)
{
	struct links_scan l = {dirs, max, 0};
	struct meta_key s, e;
	int rc = 0;

	*n = 0;
	if (max == 0)
		return 0;
	meta_key_ino(t->m, &s, ino, 'L');
	meta_key_ino(t->m, &e, ino, 'M');
	rc = meta_kv_scan(t->kv, s.b, s.len, e.b, e.len, links_cb, &l);
	*n = l.n;
	return rc;
}

int
meta_links_clear(struct mtxn *t, uint64_t ino)
{
	uint64_t dirs[16];
	struct meta_key k;
	size_t n;
	int rc;

	do {
		rc = meta_links_list(t, ino, dirs, TL_ARRAY_SIZE(dirs), &n);
		for (size_t i = 0; rc == 0 && i < n; i++) {
			meta_key_link(t->m, &k, ino, dirs[i]);
			rc = meta_kv_del(t->kv, k.b, k.len);
		}
	} while (rc == 0 && n == TL_ARRAY_SIZE(dirs));
	return rc;
}

/* ---- small shared helpers ------------------------------------------------ */

bool
meta_cred_in_group(const struct meta_cred *c, uint32_t gid)
{
	if (c->gid == gid)
		return true;
	for (uint32_t i = 0; i < c->ngroups && i < META_NGROUPS_MAX; i++)
		if (c->groups[i] == gid)
			return true;
	return false;
}

int
meta_name_check(const char *name, size_t *len, bool creating)
{
	size_t n = strnlen(name, META_NAME_MAX + 1);

	if (n == 0)
		return creating ? -EINVAL : -ENOENT;
	if (n > META_NAME_MAX)
		return -ENAMETOOLONG;
	if (memchr(name, '/', n))
		return -EINVAL;
	*len = n;
	return 0;
}

void
meta_pre_attr_of(const struct inode *in, struct meta_pre_attr *w)
{
	if (!w)
		return;
	w->size = in->a.size;
	w->mtime_ns = in->a.mtime_ns;
	w->ctime_ns = in->a.ctime_ns;
}

int
meta_capacity_check(struct mtxn *t, int64_t bytes)
{
	uint64_t used;
	int rc;

	if (bytes <= 0 || t->m->set.capacity == 0)
		return 0;
	rc = meta_counter_peek(t, CNT_USED_BYTES, &used);
	if (rc)
		return rc;
	used += (uint64_t)t->d_bytes;
	if (used + (uint64_t)bytes > t->m->set.capacity)
		return -ENOSPC;
	return 0;
}
