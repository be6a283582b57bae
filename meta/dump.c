/*
 * dump.c - a volume's metadata as one stream of checksummed records, and
 * back (meta.h, "metadata dump and load"; the format is doc/DUMP.md's).
 *
 *   stream  = magic "TESSDUMP", then records: H, K..., V, E
 *   record  = type u8, length be32, body, CRC-32 (zlib's and IEEE
 *             802.3's, of type, length and body) be32
 *   H body  = format be16, volume (u8 length + bytes), uuid 16, snapshot
 *             time be64 (ns), engine version be64, engine (u8 + bytes),
 *             tessera version (u8 + bytes), flags u8 (1: from a copy);
 *             a reader ignores bytes it does not know at the end
 *   K body  = key length be16, key without the "<volume>\0" prefix, value
 *   V body  = the value of the registry key "\0V<volume>"
 *   E body  = records before it be64, K records be64, key and value bytes
 *             be64, SHA-256 of every byte before the E record
 * The whole stream may be one zstd stream; readers tell by its magic.
 *
 * Keys come in ascending order, so a reader checks the order as it goes
 * and a loader writes them as an LMDB tree likes best.  Memory: a writer
 * holds a 256 KiB buffer (and zstd's window); a reader the largest record
 * it met.  Nothing grows with the volume.
 */
#include "config.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>
#include <zstd.h>

#include "meta/kv_raft-internal.h"
#include "meta/meta-internal.h"

#define DUMP_MAGIC     "TESSDUMP"
#define DUMP_MAGIC_LEN 8
/* 2: the volume may hold inline data (I keys, meta.h): a reader of 1
 * would load them into a gateway that cannot read them. */
#define DUMP_VERSION       2
#define DUMP_RECORD_MAX    (64u << 20)
#define DUMP_HDR           5
#define DUMP_OUTBUF        (256u << 10)
#define DUMP_INBUF         (128u << 10)
#define DUMP_PROGRESS_KEYS 4096
#define DUMP_FLAG_COPY     1
#define LOAD_BATCH_BYTES   (4u << 20)
#define LOAD_BATCH_KEYS    20000

static const uint8_t zstd_magic[4] = {0x28, 0xb5, 0x2f, 0xfd};

/* The CRC-32 of zlib and IEEE 802.3 (Python's zlib.crc32), computed by
 * libdeflate: 5 to 15 times zlib 1.2's speed on records of 16 to 256
 * bytes, which is what a dump is made of. */
static uint32_t
crc_of(const void *p, size_t n)
{
	return libdeflate_crc32(0, p, n);
}

static void
set_err(char **err, char *msg)
{
	if (err != NULL && *err == NULL)
		*err = msg;
	else
		free(msg);
}

/* Count what a key record is, for the summary (key without the volume
 * prefix). */
static void
count_key(struct meta_dump_stats *st, const uint8_t *k, size_t kl,
	  const uint8_t *v, size_t vl)
{
	st->keys++;
	st->kv_bytes += kl + vl;
	if (kl >= 10 && k[0] == 'A') {
		if (kl == 10 && k[9] == 'I') {
			st->inodes++;
			st->dirs += vl > 1 && v[1] == META_DIR;
		} else if (k[9] == 'D') {
			st->dentries++;
		} else if (k[9] == 'C') {
			st->chunks++;
		}
	} else if (kl == 9 && k[0] == 'G') {
		st->sessions++;
	}
}

/* ---- writing -------------------------------------------------------------- */

struct dwriter {
	meta_dump_write_fn w;
	void *arg;
	ZSTD_CCtx *z;
	struct tl_buf buf; /* bytes not passed on yet */
	size_t hashed;     /* of buf, in the SHA-256 already */
	uint8_t *zout;
	size_t zcap;
	EVP_MD_CTX *sha;
	bool hash; /* bytes go into the SHA-256 */
	struct meta_dump_stats *st;
	int rc; /* the first error (sticky) */
};

static int
dw_init(struct dwriter *d, meta_dump_write_fn w, void *arg, int level,
	struct meta_dump_stats *st)
{
	memset(d, 0, sizeof(*d));
	d->w = w;
	d->arg = arg;
	d->st = st;
	d->hash = true;
	d->sha = EVP_MD_CTX_new();
	if (d->sha == NULL || !EVP_DigestInit_ex(d->sha, EVP_sha256(), NULL))
		return -ENOMEM;
	tl_buf_reserve(&d->buf, DUMP_OUTBUF);
	if (level > 0) {
		d->z = ZSTD_createCCtx();
		if (d->z == NULL)
			return -ENOMEM;
		ZSTD_CCtx_setParameter(d->z, ZSTD_c_compressionLevel, level);
		ZSTD_CCtx_setParameter(d->z, ZSTD_c_checksumFlag, 1);
		d->zcap = ZSTD_CStreamOutSize();
		d->zout = tl_malloc(d->zcap);
	}
	return 0;
}

static void
dw_free(struct dwriter *d)
{
	EVP_MD_CTX_free(d->sha);
	ZSTD_freeCCtx(d->z);
	free(d->zout);
	tl_buf_free(&d->buf);
}

/* What the buffer holds that the SHA-256 has not seen yet. */
static void
dw_hash(struct dwriter *d)
{
	if (d->hash && d->buf.len > d->hashed)
		EVP_DigestUpdate(d->sha, d->buf.data + d->hashed,
				 d->buf.len - d->hashed);
	d->hashed = d->buf.len;
}

static int
dw_out(struct dwriter *d, const void *p, size_t n)
{
	int rc = n ? d->w(d->arg, p, n) : 0;

	d->st->stream_bytes += n;
	return rc;
}

/* Pass the buffer on (compressed); end: finish the zstd stream. */
static int
dw_flush(struct dwriter *d, bool end)
{
	ZSTD_inBuffer in = {d->buf.data, d->buf.len, 0};
	size_t left;
	int rc = d->rc;

	dw_hash(d);
	if (rc == 0 && d->z == NULL)
		rc = dw_out(d, d->buf.data, d->buf.len);
	while (rc == 0 && d->z != NULL) {
		ZSTD_outBuffer out = {d->zout, d->zcap, 0};

		left = ZSTD_compressStream2(d->z, &out, &in,
					    end ? ZSTD_e_end : ZSTD_e_continue);
		if (ZSTD_isError(left)) {
			tl_err(META_SUB, "dump: zstd: %s",
			       ZSTD_getErrorName(left));
			rc = -EIO;
			break;
		}
		rc = dw_out(d, d->zout, out.pos);
		if (end ? left == 0 : in.pos == in.size)
			break;
	}
	tl_buf_reset(&d->buf);
	d->hashed = 0;
	d->rc = rc;
	return rc;
}

static int
dw_bytes(struct dwriter *d, const void *p, size_t n)
{
	if (d->rc)
		return d->rc;
	tl_buf_append(&d->buf, p, n);
	if (d->buf.len >= DUMP_OUTBUF)
		return dw_flush(d, false);
	return 0;
}

/* One record whose body is a then b (either may be empty), built in
 * place: one CRC over it, and the SHA-256 of the buffer at flush time
 * (a call per small piece would cost more than the hashing). */
static int
dw_record(struct dwriter *d, uint8_t type, const void *a, size_t alen,
	  const void *b, size_t blen)
{
	size_t n = alen + blen;
	uint8_t *r;

	if (d->rc)
		return d->rc;
	if (n > DUMP_RECORD_MAX) {
		tl_err(META_SUB,
		       "dump: a record of %zu bytes: longer than "
		       "the format allows",
		       n);
		return d->rc = -EFBIG;
	}
	tl_buf_reserve(&d->buf, DUMP_HDR + n + 4);
	r = d->buf.data + d->buf.len;
	r[0] = type;
	tl_put_be32(r + 1, (uint32_t)n);
	if (alen)
		memcpy(r + DUMP_HDR, a, alen);
	if (blen)
		memcpy(r + DUMP_HDR + alen, b, blen);
	tl_put_be32(r + DUMP_HDR + n, crc_of(r, DUMP_HDR + n));
	d->buf.len += DUMP_HDR + n + 4;
	d->st->records++;
	if (d->buf.len >= DUMP_OUTBUF)
		return dw_flush(d, false);
	return 0;
}

static void
put_str8(struct tl_buf *b, const char *s)
{
	uint8_t n = (uint8_t)TL_MIN(strlen(s), 255);

	tl_buf_append(b, &n, 1);
	tl_buf_append(b, s, n);
}

static int
dw_header(struct dwriter *d, const struct meta_dump_info *in)
{
	struct tl_buf b = TL_BUF_INIT;
	uint8_t v[2], f = in->copy ? DUMP_FLAG_COPY : 0;
	int rc;

	dw_bytes(d, DUMP_MAGIC, DUMP_MAGIC_LEN);
	tl_put_be16(v, DUMP_VERSION);
	tl_buf_append(&b, v, 2);
	put_str8(&b, in->volume);
	tl_buf_append(&b, in->uuid, 16);
	tl_buf_append_be64(&b, in->created_ns);
	tl_buf_append_be64(&b, in->version);
	put_str8(&b, in->engine);
	put_str8(&b, in->tessera);
	tl_buf_append(&b, &f, 1);
	rc = dw_record(d, 'H', b.data, b.len, NULL, 0);
	tl_buf_free(&b);
	return rc;
}

static int
dw_key(struct dwriter *d, const uint8_t *k, size_t kl, const void *v, size_t vl)
{
	uint8_t h[2 + META_KEY_MAX];

	if (kl > META_KEY_MAX)
		return d->rc = -EINVAL;
	tl_put_be16(h, (uint16_t)kl);
	memcpy(h + 2, k, kl);
	return dw_record(d, 'K', h, 2 + kl, v, vl);
}

/* The end record, and the end of the stream. */
static int
dw_end(struct dwriter *d)
{
	uint8_t e[24 + 32];
	unsigned len = 0;

	tl_put_be64(e, d->st->records);
	tl_put_be64(e + 8, d->st->keys);
	tl_put_be64(e + 16, d->st->kv_bytes);
	dw_hash(d);
	EVP_DigestFinal_ex(d->sha, e + 24, &len);
	d->hash = false;
	dw_record(d, 'E', e, sizeof(e), NULL, 0);
	return dw_flush(d, true);
}

/* ---- dumping ------------------------------------------------------------- */

struct dump_ctx {
	const struct meta_dump_opts *o;
	size_t pfxlen;
	struct dwriter w;
	struct dump_json *j;
	struct meta_dump_stats *st;
};

static int
dump_key_cb(void *arg, const void *key, size_t klen, const void *val,
	    size_t vlen)
{
	struct dump_ctx *c = arg;
	const uint8_t *k = (const uint8_t *)key + c->pfxlen;
	size_t kl = klen - c->pfxlen;
	int rc;

	rc = c->j ? meta_dump_json_key(c->j, k, kl, val, vlen)
		  : dw_key(&c->w, k, kl, val, vlen);
	count_key(c->st, k, kl, val, vlen);
	if (c->o->progress && c->st->keys % DUMP_PROGRESS_KEYS == 0)
		c->o->progress(c->o->arg, c->st);
	return rc;
}

/* What the snapshot says of itself: the volume's uuid, the engine's
 * version of this state (a raft replica's applied index, an LMDB read
 * transaction's id; 0 for an LMDB copy, which starts its own count). */
static int
dump_info(struct meta *m, struct meta_kv_txn *t, bool copy,
	  struct meta_dump_info *in, char **err)
{
	struct meta_settings s;
	struct meta_key k;
	const void *v;
	size_t vl;
	int rc;

	meta_key_setting(m, &k);
	rc = meta_kv_get(t, k.b, k.len, &v, &vl);
	if (rc == 0)
		rc = meta_settings_decode(v, vl, &s);
	if (rc) {
		set_err(err,
			tl_asprintf("volume '%s': %s", m->set.name,
				    rc == -ENOENT ? "gone (destroyed "
						    "meanwhile?)"
						  : "unreadable settings"));
		return rc == -ENOENT ? rc : -EIO;
	}
	memcpy(in->uuid, s.uuid, 16);
	snprintf(in->volume, sizeof(in->volume), "%s", m->set.name);
	snprintf(in->engine, sizeof(in->engine), "%s", m->kv->ops->scheme);
	snprintf(in->tessera, sizeof(in->tessera), "%s", PACKAGE_VERSION);
	in->copy = copy;
	in->format = DUMP_VERSION;
	if (strcmp(in->engine, "raft") == 0 &&
	    meta_kv_get(t, KVR_KEY_APPLIED, KVR_KEYLEN(KVR_KEY_APPLIED), &v,
			&vl) == 0 &&
	    vl == 8)
		in->version = tl_get_be64(v);
	else if (!copy)
		in->version = meta_kv_version(t);
	return 0;
}

int
meta_dump(struct meta *m, const struct meta_dump_opts *o, meta_dump_write_fn w,
	  void *warg, struct meta_dump_info *info, struct meta_dump_stats *stp,
	  char **err)
{
	struct meta_dump_stats st0;
	struct meta_dump_info in0;
	struct dump_ctx c;
	struct meta_kv *snap = NULL, *kv = m->kv;
	struct meta_kv_txn *t = NULL;
	uint8_t end[META_VOLNAME_MAX + 1];
	struct meta_key k;
	const void *v;
	size_t vl;
	int rc;

	if (err)
		*err = NULL;
	memset(&c, 0, sizeof(c));
	c.o = o;
	c.st = stp ? stp : &st0;
	memset(c.st, 0, sizeof(*c.st));
	if (info == NULL)
		info = &in0;
	memset(info, 0, sizeof(*info));
	c.pfxlen = m->pfxlen;
	info->created_ns = tl_now_ns();
	if (!o->direct) {
		rc = meta_kv_snapshot(m->kv, o->tmpdir, &snap,
				      &c.st->snapshot_bytes, err);
		if (rc)
			return rc;
		kv = snap;
	}
	rc = meta_kv_begin(kv, true, &t);
	if (rc == 0)
		rc = dump_info(m, t, !o->direct, info, err);
	if (rc)
		goto out;
	info->zstd = !o->json && o->zstd_level > 0;
	rc = dw_init(&c.w, w, warg, o->json ? 0 : o->zstd_level, c.st);
	if (rc == 0 && o->json) {
		c.j = meta_dump_json_new(w, warg, c.st);
		rc = meta_dump_json_begin(c.j, info);
	} else if (rc == 0) {
		rc = dw_header(&c.w, info);
	}
	memcpy(end, m->pfx, m->pfxlen);
	end[m->pfxlen - 1] = 1;
	if (rc == 0)
		rc = meta_kv_scan(t, m->pfx, m->pfxlen, end, m->pfxlen,
				  dump_key_cb, &c);
	meta_key_registry(&k, m->set.name);
	if (rc == 0)
		rc = meta_kv_get(t, k.b, k.len, &v, &vl);
	if (rc == -ENOENT)
		set_err(err, tl_asprintf("volume '%s' is not registered in "
					 "the snapshot (destroyed meanwhile?)",
					 m->set.name));
	if (rc == 0 && c.j != NULL) {
		rc = meta_dump_json_end(c.j);
	} else if (rc == 0) {
		rc = dw_record(&c.w, 'V', v, vl, NULL, 0);
		if (rc == 0)
			rc = dw_end(&c.w);
	}
	if (rc == 0 && o->progress)
		o->progress(o->arg, c.st);
	if (rc)
		set_err(err, tl_asprintf("cannot dump volume '%s': %s",
					 m->set.name, strerror(-rc)));
out:
	if (c.j)
		meta_dump_json_free(c.j);
	dw_free(&c.w);
	meta_kv_abort(t);
	meta_kv_close(snap);
	return rc;
}

/* ---- reading ------------------------------------------------------------- */

struct dreader {
	meta_dump_read_fn r;
	void *arg;
	ZSTD_DCtx *z;
	uint8_t *in; /* what read gave */
	size_t in_len, in_pos;
	bool in_eof;
	uint8_t *out; /* zstd: what it decompressed */
	size_t out_len, out_pos;
	size_t zret;      /* 0: at the end of a zstd frame */
	const char *zerr; /* what zstd found wrong */
	uint64_t offset;  /* bytes of the (uncompressed) stream read */
	struct meta_dump_stats *st;
};

static int
dr_raw(struct dreader *d)
{
	size_t got = 0;
	int rc;

	d->in_pos = d->in_len = 0;
	if (d->in_eof)
		return 0;
	rc = d->r(d->arg, d->in, DUMP_INBUF, &got);
	if (rc)
		return rc;
	d->in_len = got;
	d->in_eof = got == 0;
	d->st->stream_bytes += got;
	return 0;
}

/* More bytes in out (zstd) or in (plain); 0 with nothing new at the
 * end of the input. */
static int
dr_fill(struct dreader *d)
{
	int rc;

	if (d->z == NULL)
		return d->in_pos == d->in_len ? dr_raw(d) : 0;
	d->out_pos = d->out_len = 0;
	for (;;) {
		ZSTD_inBuffer ib = {d->in, d->in_len, d->in_pos};
		ZSTD_outBuffer ob = {d->out, DUMP_INBUF, 0};

		if (d->in_pos == d->in_len) {
			rc = dr_raw(d);
			if (rc)
				return rc;
			ib.size = d->in_len;
			ib.pos = 0;
			if (d->in_eof && d->zret == 0)
				return 0;
		}
		d->zret = ZSTD_decompressStream(d->z, &ob, &ib);
		d->in_pos = ib.pos;
		if (ZSTD_isError(d->zret)) {
			d->zerr = ZSTD_getErrorName(d->zret);
			return -EBADMSG;
		}
		d->out_len = ob.pos;
		if (ob.pos > 0 || (d->in_eof && d->in_pos == d->in_len))
			return 0;
	}
}

/* Up to n bytes; fewer only at the end of the stream. */
static int
dr_read(struct dreader *d, void *buf, size_t n, size_t *got)
{
	uint8_t *p = buf;
	int rc;

	*got = 0;
	while (*got < n) {
		uint8_t *src = d->z ? d->out : d->in;
		size_t *pos = d->z ? &d->out_pos : &d->in_pos;
		size_t len = d->z ? d->out_len : d->in_len, c;

		if (*pos == len) {
			rc = dr_fill(d);
			if (rc)
				return rc;
			len = d->z ? d->out_len : d->in_len;
			if (*pos == len)
				break;
		}
		c = TL_MIN(n - *got, len - *pos);
		memcpy(p + *got, src + *pos, c);
		*pos += c;
		*got += c;
	}
	d->offset += *got;
	return 0;
}

/* ---- parsing ------------------------------------------------------------- */

struct parser {
	struct dreader d;
	struct meta_dump_info *info;
	struct meta_dump_stats *st;
	EVP_MD_CTX *sha;
	uint64_t recno; /* records read */
	uint64_t at;    /* offset of the record being read */
	/* records read and not yet in the SHA-256, back to back: one
	 * digest call per 64 KiB rather than per record */
	struct tl_buf raw;
	const uint8_t *body; /* of the record just read, in raw */
	size_t blen;
	struct tl_buf last; /* the previous key */
	bool have_key, have_v, done;
	/* the record just read */
	uint8_t type;
	const uint8_t *key, *val;
	size_t klen, vlen;
	char **err;
};

static int __attribute__((format(printf, 2, 3)))
bad(struct parser *p, const char *fmt, ...)
{
	char *what, *msg;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&what, fmt, ap) < 0)
		abort();
	va_end(ap);
	msg = tl_asprintf("record %llu at byte %llu: %s",
			  (unsigned long long)p->recno + 1,
			  (unsigned long long)p->at, what);
	free(what);
	set_err(p->err, msg);
	return -EBADMSG;
}

/* A read error: the decompressor's is about the data. */
static int
read_failed(struct parser *p, int rc)
{
	if (rc == -EBADMSG && p->d.zerr != NULL)
		return bad(p, "the compressed stream is corrupt (zstd: %s)",
			   p->d.zerr);
	set_err(p->err, tl_asprintf("cannot read the dump: %s", strerror(-rc)));
	return rc;
}

static void
parser_free(struct parser *p)
{
	EVP_MD_CTX_free(p->sha);
	ZSTD_freeDCtx(p->d.z);
	free(p->d.in);
	free(p->d.out);
	tl_buf_free(&p->raw);
	tl_buf_free(&p->last);
}

static const char *
get_str8(const uint8_t **q, const uint8_t *end, char *out, size_t cap)
{
	size_t n;

	if (*q >= end)
		return NULL;
	n = **q;
	if ((size_t)(end - *q) < 1 + n || n >= cap)
		return NULL;
	memcpy(out, *q + 1, n);
	out[n] = '\0';
	*q += 1 + n;
	return out;
}

static int
parse_header(struct parser *p)
{
	const uint8_t *q = p->body, *end = q + p->blen;
	struct meta_dump_info *in = p->info;
	unsigned ver;

	if (p->type != 'H')
		return bad(p, "the first record is not the header");
	if (p->blen < 2)
		return bad(p, "header too short");
	ver = tl_get_be16(q);
	q += 2;
	if (ver > DUMP_VERSION || ver == 0)
		return bad(p,
			   "format version %u; this tessera reads version "
			   "%u",
			   ver, DUMP_VERSION);
	in->format = ver;
	if (!get_str8(&q, end, in->volume, sizeof(in->volume)) ||
	    !meta_volname_ok(in->volume) || end - q < 16 + 16)
		return bad(p, "header: bad volume name");
	memcpy(in->uuid, q, 16);
	in->created_ns = tl_get_be64(q + 16);
	in->version = tl_get_be64(q + 24);
	q += 32;
	if (!get_str8(&q, end, in->engine, sizeof(in->engine)) ||
	    !get_str8(&q, end, in->tessera, sizeof(in->tessera)) || q >= end)
		return bad(p, "header too short");
	in->copy = (*q & DUMP_FLAG_COPY) != 0;
	/* later versions may add fields here: ignored */
	return 0;
}

/* Key records: ascending, before V. */
static int
parse_key(struct parser *p)
{
	const uint8_t *b = p->body;
	size_t kl;
	int c;

	if (p->have_v)
		return bad(p, "a key after the registry record");
	if (p->blen < 2 || (kl = tl_get_be16(b)) == 0 || kl > p->blen - 2)
		return bad(p, "bad key length");
	p->key = b + 2;
	p->klen = kl;
	p->val = b + 2 + kl;
	p->vlen = p->blen - 2 - kl;
	if (p->have_key) {
		c = memcmp(p->last.data, p->key, TL_MIN(p->last.len, kl));
		if (c > 0 || (c == 0 && p->last.len >= kl))
			return bad(p, "keys out of order");
	}
	tl_buf_reset(&p->last);
	tl_buf_append(&p->last, p->key, kl);
	p->have_key = true;
	count_key(p->st, p->key, kl, p->val, p->vlen);
	return 0;
}

static int
parse_end(struct parser *p, const uint8_t sha[32])
{
	const uint8_t *b = p->body;
	uint8_t extra;
	size_t got;
	int rc;

	if (!p->have_v)
		return bad(p, "the end record comes before the registry "
			      "record");
	if (p->blen < 24 + 32)
		return bad(p, "end record too short");
	if (tl_get_be64(b) != p->recno || tl_get_be64(b + 8) != p->st->keys ||
	    tl_get_be64(b + 16) != p->st->kv_bytes)
		return bad(p,
			   "the end record counts %llu records, %llu keys, "
			   "%llu bytes; the dump has %llu, %llu, %llu",
			   (unsigned long long)tl_get_be64(b),
			   (unsigned long long)tl_get_be64(b + 8),
			   (unsigned long long)tl_get_be64(b + 16),
			   (unsigned long long)p->recno,
			   (unsigned long long)p->st->keys,
			   (unsigned long long)p->st->kv_bytes);
	if (memcmp(b + 24, sha, 32) != 0)
		return bad(p, "SHA-256 of the dump differs from the one its "
			      "end record holds");
	rc = dr_read(&p->d, &extra, 1, &got);
	if (rc)
		return read_failed(p, rc);
	if (got != 0)
		return bad(p, "bytes follow the end record");
	if (p->d.z != NULL && p->d.zret != 0)
		return bad(p, "the compressed stream does not end with the "
			      "end record");
	p->done = true;
	return 0;
}

#define RAW_HASH (64u << 10)

/* The next record into p (type, key/val for K, body for V): 0, or an
 * error.  After E, p->done. */
static int
parse_next(struct parser *p)
{
	uint8_t sha[32], *r;
	unsigned len = 0;
	size_t got, at;
	uint32_t n;
	uint32_t crc;
	int rc;

	if (p->raw.len >= RAW_HASH) {
		EVP_DigestUpdate(p->sha, p->raw.data, p->raw.len);
		tl_buf_reset(&p->raw);
	}
	at = p->raw.len;
	p->at = p->d.offset;
	tl_buf_reserve(&p->raw, DUMP_HDR);
	rc = dr_read(&p->d, p->raw.data + at, DUMP_HDR, &got);
	if (rc)
		return read_failed(p, rc);
	if (got == 0) {
		set_err(p->err, tl_asprintf("the dump ends after record %llu "
					    "at byte %llu, without its end "
					    "record: truncated",
					    (unsigned long long)p->recno,
					    (unsigned long long)p->at));
		return -EBADMSG;
	}
	if (got < DUMP_HDR)
		return bad(p, "the dump ends inside the record: truncated");
	p->type = p->raw.data[at];
	n = tl_get_be32(p->raw.data + at + 1);
	if (n > DUMP_RECORD_MAX)
		return bad(p,
			   "length %u is beyond the format's limit: "
			   "corrupt",
			   n);
	tl_buf_reserve(&p->raw, DUMP_HDR + (size_t)n + 4);
	r = p->raw.data + at;
	rc = dr_read(&p->d, r + DUMP_HDR, (size_t)n + 4, &got);
	if (rc)
		return read_failed(p, rc);
	if (got < (size_t)n + 4)
		return bad(p, "the dump ends inside the record: truncated");
	crc = crc_of(r, DUMP_HDR + (size_t)n);
	if (crc != tl_get_be32(r + DUMP_HDR + n))
		return bad(p,
			   "checksum mismatch (stored %08x, computed %08x): "
			   "corrupt",
			   tl_get_be32(r + DUMP_HDR + n), (unsigned)crc);
	p->body = r + DUMP_HDR;
	p->blen = n;
	if (p->type == 'E') {
		EVP_DigestUpdate(p->sha, p->raw.data, at);
		EVP_DigestFinal_ex(p->sha, sha, &len);
	} else {
		p->raw.len = at + DUMP_HDR + n + 4;
	}
	if (p->recno == 0)
		rc = parse_header(p);
	else if (p->type == 'K')
		rc = parse_key(p);
	else if (p->type == 'V' && !p->have_v)
		p->have_v = true;
	else if (p->type == 'E')
		rc = parse_end(p, sha);
	else
		rc = bad(p,
			 p->type == 'H' || p->type == 'V'
				 ? "a second '%c' record"
				 : "unknown record type 0x%02x",
			 p->type);
	p->recno++;
	p->st->records = p->recno;
	return rc;
}

/* Start reading: the magic (through zstd if the stream is compressed),
 * then the header record. */
static int
parser_open(struct parser *p, meta_dump_read_fn r, void *arg,
	    struct meta_dump_info *info, struct meta_dump_stats *st, char **err)
{
	uint8_t m[DUMP_MAGIC_LEN];
	size_t got;
	int rc;

	memset(p, 0, sizeof(*p));
	p->info = info;
	p->st = st;
	p->err = err;
	memset(info, 0, sizeof(*info));
	memset(st, 0, sizeof(*st));
	p->d.r = r;
	p->d.arg = arg;
	p->d.st = st;
	p->d.in = tl_malloc(DUMP_INBUF);
	p->sha = EVP_MD_CTX_new();
	if (p->sha == NULL || !EVP_DigestInit_ex(p->sha, EVP_sha256(), NULL))
		return -ENOMEM;
	rc = dr_raw(&p->d);
	/* a read may give fewer than four bytes at a time (a pipe) */
	while (rc == 0 && !p->d.in_eof && p->d.in_len < 4) {
		size_t more = 0;

		rc = r(arg, p->d.in + p->d.in_len, DUMP_INBUF - p->d.in_len,
		       &more);
		p->d.in_len += more;
		st->stream_bytes += more;
		p->d.in_eof = more == 0;
	}
	if (rc)
		return read_failed(p, rc);
	if (p->d.in_len >= 4 && memcmp(p->d.in, zstd_magic, 4) == 0) {
		p->d.z = ZSTD_createDCtx();
		p->d.out = tl_malloc(DUMP_INBUF);
		if (p->d.z == NULL)
			return -ENOMEM;
		info->zstd = true;
	}
	rc = dr_read(&p->d, m, sizeof(m), &got);
	if (rc)
		return read_failed(p, rc);
	if (got < sizeof(m) && p->d.z != NULL && p->d.zret != 0)
		return bad(p, "the compressed stream ends early: truncated");
	if (got < sizeof(m) || memcmp(m, DUMP_MAGIC, sizeof(m)) != 0) {
		set_err(err,
			tl_asprintf("not a Tessera metadata dump (it "
				    "does not start with %s%s)",
				    DUMP_MAGIC,
				    info->zstd ? " once decompressed" : ""));
		return -EBADMSG;
	}
	tl_buf_append(&p->raw, m, sizeof(m));
	rc = parse_next(p);
	if (rc == 0)
		info->zstd = p->d.z != NULL;
	return rc;
}

int
meta_dump_verify(meta_dump_read_fn r, void *rarg,
		 const struct meta_dump_opts *o, struct meta_dump_info *info,
		 struct meta_dump_stats *stp, char **err)
{
	struct meta_dump_stats st0;
	struct meta_dump_info in0;
	struct parser p;
	int rc;

	if (err)
		*err = NULL;
	rc = parser_open(&p, r, rarg, info ? info : &in0, stp ? stp : &st0,
			 err);
	while (rc == 0 && !p.done) {
		rc = parse_next(&p);
		if (rc == 0 && o && o->progress &&
		    p.st->keys % DUMP_PROGRESS_KEYS == 0)
			o->progress(o->arg, p.st);
	}
	if (rc == 0 && o && o->progress)
		o->progress(o->arg, p.st);
	parser_free(&p);
	return rc;
}

/* ---- loading ------------------------------------------------------------- */

struct loader {
	struct meta_kv *kv;
	struct meta_kv_txn *t;
	bool bulk; /* meta_kv_lmdb_bulk is on */
	uint8_t pfx[META_VOLNAME_MAX + 1 + META_KEY_MAX];
	size_t pfxlen;
	size_t batch_bytes, batch_keys;
	uint64_t written; /* keys committed */
};

static int
load_put(struct loader *l, const uint8_t *k, size_t kl, const void *v,
	 size_t vl)
{
	int rc;

	if (l->pfxlen + kl > sizeof(l->pfx))
		return -EINVAL;
	if (l->t == NULL) {
		rc = meta_kv_begin(l->kv, false, &l->t);
		if (rc)
			return rc;
	}
	memcpy(l->pfx + l->pfxlen, k, kl);
	rc = meta_kv_put(l->t, l->pfx, l->pfxlen + kl, v, vl);
	l->batch_bytes += kl + vl;
	l->batch_keys++;
	return rc;
}

static int
load_commit(struct loader *l)
{
	int rc = 0;

	if (l->t != NULL)
		rc = l->bulk ? meta_kv_commit_lazy(l->t) : meta_kv_commit(l->t);

	l->t = NULL;
	if (rc == 0)
		l->written += l->batch_keys;
	l->batch_bytes = l->batch_keys = 0;
	return rc;
}

static int
count_one(void *arg, const void *k, size_t kl, const void *v, size_t vl)
{
	(*(size_t *)arg)++;
	return 1;
}

/* The engine must not hold the volume (see meta_load). */
static int
load_check(struct loader *l, const char *url, const char *name, bool force,
	   char **err)
{
	struct meta_kv_txn *t;
	struct meta_key reg;
	uint8_t end[META_VOLNAME_MAX + 1];
	const void *v;
	size_t vl, n = 0;
	int rc;

	meta_key_registry(&reg, name);
	memcpy(end, l->pfx, l->pfxlen);
	end[l->pfxlen - 1] = 1;
	rc = meta_kv_begin(l->kv, true, &t);
	if (rc)
		return rc;
	rc = meta_kv_get(t, reg.b, reg.len, &v, &vl);
	if (rc == 0) {
		set_err(err, tl_asprintf("%s already holds volume '%s': "
					 "load restores into an engine "
					 "without it (tessera destroy removes "
					 "a volume)",
					 url, name));
		rc = -EEXIST;
	} else if (rc == -ENOENT) {
		rc = meta_kv_scan(t, l->pfx, l->pfxlen, end, l->pfxlen,
				  count_one, &n);
	}
	meta_kv_abort(t);
	if (rc || n == 0)
		return rc;
	if (!force) {
		set_err(err, tl_asprintf("%s holds keys of volume '%s' but no "
					 "volume of that name: what an "
					 "interrupted load leaves.  --force "
					 "clears them and loads",
					 url, name));
		return -EEXIST;
	}
	return meta_range_delete(l->kv, l->pfx, l->pfxlen, end, l->pfxlen, NULL,
				 NULL);
}

/* Whether the engine holds no key at all (not even another volume's):
 * then the load may go without syncs until its end (bulk_start). */
static bool
engine_empty(struct loader *l)
{
	struct meta_kv_txn *t;
	size_t n = 0;

	if (meta_kv_begin(l->kv, true, &t) != 0)
		return false;
	if (meta_kv_scan(t, "", 0, NULL, 0, count_one, &n) != 0)
		n = 1;
	meta_kv_abort(t);
	return n == 0;
}

/* Into an empty LMDB engine, the load's commits do not sync (one sync
 * at the end, bulk_end, before the registry entry makes the volume
 * exist) and its keys, which come in order, are appended: nothing but
 * the load is in the engine, and a load that a crash of the machine
 * interrupts is run again into a wiped engine (tessera(1)).  Elsewhere
 * (raft://, an engine with other volumes) every batch is durable. */
static void
bulk_start(struct loader *l)
{
	if (engine_empty(l) && meta_kv_lmdb_bulk(l->kv, true) == 0)
		l->bulk = true;
}

static int
bulk_end(struct loader *l)
{
	if (!l->bulk)
		return 0;
	l->bulk = false;
	return meta_kv_lmdb_bulk(l->kv, false);
}

/* Undo a load that failed: remove every key of the volume written. */
static void
load_undo(struct loader *l, char **err)
{
	uint8_t end[META_VOLNAME_MAX + 1];
	int rc;

	if (l->t != NULL)
		meta_kv_abort(l->t);
	l->t = NULL;
	if (l->written == 0)
		return;
	memcpy(end, l->pfx, l->pfxlen);
	end[l->pfxlen - 1] = 1;
	rc = meta_range_delete(l->kv, l->pfx, l->pfxlen, end, l->pfxlen, NULL,
			       NULL);
	if (rc && err != NULL && *err != NULL) {
		char *m = tl_asprintf("%s; and the %llu keys already written "
				      "could not be removed (%s): load "
				      "--force clears them",
				      *err, (unsigned long long)l->written,
				      strerror(-rc));

		free(*err);
		*err = m;
	}
}

int
meta_load(const char *url, const struct meta_load_opts *o, meta_dump_read_fn r,
	  void *rarg, struct meta_dump_info *info, struct meta_dump_stats *stp,
	  char **err)
{
	struct meta_dump_stats st0;
	struct meta_dump_info in0;
	struct loader l;
	struct parser p;
	struct tl_buf regval = TL_BUF_INIT;
	struct meta_key reg;
	char *base = NULL, *vol = NULL;
	int rc;

	if (err)
		*err = NULL;
	memset(&l, 0, sizeof(l));
	rc = meta_url_volume(url, o->volume, &base, &vol, err);
	if (rc)
		return rc;
	rc = parser_open(&p, r, rarg, info ? info : &in0, stp ? stp : &st0,
			 err);
	if (rc)
		goto out;
	if (vol != NULL && strcmp(vol, p.info->volume) != 0) {
		set_err(err, tl_asprintf("the dump holds volume '%s', not "
					 "'%s'",
					 p.info->volume, vol));
		rc = -EINVAL;
		goto out;
	}
	rc = meta_kv_open(base, &l.kv, err);
	if (rc)
		goto out;
	l.pfxlen = strlen(p.info->volume) + 1;
	memcpy(l.pfx, p.info->volume, l.pfxlen);
	rc = load_check(&l, base, p.info->volume, o->force, err);
	if (rc == 0)
		bulk_start(&l);
	while (rc == 0) {
		rc = parse_next(&p);
		if (rc || p.type == 'E')
			break;
		if (p.type == 'V') {
			/* written with the last keys, once E is checked */
			tl_buf_append(&regval, p.body, p.blen);
			continue;
		}
		/* the gateways of the dump's time do not run here */
		if (p.klen == 9 && p.key[0] == 'G')
			continue;
		rc = load_put(&l, p.key, p.klen, p.val, p.vlen);
		if (rc == 0 &&
		    (l.batch_bytes >= LOAD_BATCH_BYTES ||
		     l.batch_keys >=
			     (o->batch_keys ? o->batch_keys : LOAD_BATCH_KEYS)))
			rc = load_commit(&l);
		if (rc == 0 && o->progress &&
		    p.st->keys % DUMP_PROGRESS_KEYS == 0)
			o->progress(o->arg, p.st);
		if (rc)
			set_err(err, tl_asprintf("cannot write into %s: %s",
						 base, strerror(-rc)));
	}
	if (rc == 0) {
		/* the keys durable (one sync, after a bulk load) */
		rc = load_commit(&l);
		if (rc == 0)
			rc = bulk_end(&l);
		if (rc)
			set_err(err, tl_asprintf("cannot write into %s: %s",
						 base, strerror(-rc)));
	}
	if (rc == 0) {
		/* the registry entry makes the volume exist: last, once
		 * every other key is durable */
		meta_key_registry(&reg, p.info->volume);
		if (l.t == NULL)
			rc = meta_kv_begin(l.kv, false, &l.t);
		if (rc == 0)
			rc = meta_kv_put(l.t, reg.b, reg.len,
					 regval.data ? (void *)regval.data : "",
					 regval.len);
		if (rc == 0)
			rc = load_commit(&l);
		if (rc)
			set_err(err, tl_asprintf("cannot write into %s: %s",
						 base, strerror(-rc)));
	}
	if (rc) {
		if (l.t != NULL)
			meta_kv_abort(l.t);
		l.t = NULL;
		bulk_end(&l);
		load_undo(&l, err);
	} else if (o->progress)
		o->progress(o->arg, p.st);
out:
	parser_free(&p);
	tl_buf_free(&regval);
	meta_kv_close(l.kv);
	free(base);
	free(vol);
	return rc;
}
