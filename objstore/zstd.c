/*
 * zstd.c - per-object zstd compression around any store.
 *
 * URL form: zstd[(level=N)]:INNER (level 1..19, default 3).
 *
 * Stored object format (all integers big-endian):
 *   0  4  magic "TZST"
 *   4  1  version (1)
 *   5  1  flags: bit 0 = stored raw (the data did not compress)
 *   6  2  reserved, zero
 *   8  8  length of the original data
 *   16 .. one zstd frame (or the raw data)
 * Anything else - wrong magic, unknown version or flags, a frame that does
 * not decode to exactly the recorded length - is -EIO with a log line
 * naming the object; corrupt data is never returned.
 *
 * A range get decompresses the whole object and copies the range out.
 * head reads the 16-byte header; list reports the stored sizes.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "lib/tl.h"
#include "objstore/objstore-internal.h"
#include "objstore/objstore.h"

#define ZHDR     16
#define FLAG_RAW 1

struct zstd_store {
	struct os_wrap w;
	int level;
};

static struct zstd_store *
z_of(struct os_store *s)
{
	return (struct zstd_store *)s;
}

static int
z_put(struct os_store *s, const char *key, const void *data, size_t len)
{
	struct zstd_store *z = z_of(s);
	size_t bound = ZSTD_compressBound(len), n;
	uint8_t *out = tl_malloc(ZHDR + TL_MAX(bound, len));
	int rc;

	n = ZSTD_compress(out + ZHDR, bound, data, len, z->level);
	memcpy(out, "TZST\1\0\0\0", 8);
	if (ZSTD_isError(n) || n >= len) {
		out[5] = FLAG_RAW;
		if (len > 0)
			memcpy(out + ZHDR, data, len);
		n = len;
	}
	tl_put_be64(out + 8, len);
	rc = z->w.inner->ops->put(z->w.inner, key, out, ZHDR + n);
	free(out);
	return rc;
}

static int
z_bad(struct zstd_store *z, const char *key, const char *why)
{
	tl_err("objstore", "%s: object %s is corrupt: %s", z->w.base.url, key,
	       why);
	return -EIO;
}

/* Check the header of a stored object; *orig gets the original length. */
static int
z_header(struct zstd_store *z, const char *key, const uint8_t *p, size_t n,
	 uint64_t *orig)
{
	if (n < ZHDR || memcmp(p, "TZST", 4) != 0)
		return z_bad(z, key, "no zstd object header");
	if (p[4] != 1 || (p[5] & ~FLAG_RAW) != 0 || p[6] != 0 || p[7] != 0)
		return z_bad(z, key, "unknown format version or flags");
	*orig = tl_get_be64(p + 8);
	if (*orig >= OS_OBJECT_MAX)
		return z_bad(z, key, "impossible length");
	return 0;
}

static int
z_get(struct os_store *s, const char *key, uint64_t off, size_t len, void *buf,
      size_t *got)
{
	struct zstd_store *z = z_of(s);
	uint8_t *raw = NULL, *plain = NULL;
	const uint8_t *data;
	uint64_t orig;
	size_t n, dn;
	int rc;

	*got = 0;
	rc = os_get_whole(z->w.inner, key, ZHDR + off + len, &raw, &n);
	if (rc < 0)
		return rc;
	if ((rc = z_header(z, key, raw, n, &orig)) < 0)
		goto out;
	if (raw[5] & FLAG_RAW) {
		if (n - ZHDR != orig) {
			rc = z_bad(z, key, "truncated");
			goto out;
		}
		data = raw + ZHDR;
	} else {
		plain = tl_malloc(orig ? orig : 1);
		dn = ZSTD_decompress(plain, orig, raw + ZHDR, n - ZHDR);
		if (ZSTD_isError(dn) || dn != orig) {
			rc = z_bad(z, key,
				   ZSTD_isError(dn) ? ZSTD_getErrorName(dn)
						    : "wrong length");
			goto out;
		}
		data = plain;
	}
	if (off > orig) {
		rc = -ERANGE;
		goto out;
	}
	*got = (size_t)TL_MIN((uint64_t)len, orig - off);
	if (*got > 0)
		memcpy(buf, data + off, *got);
out:
	free(raw);
	free(plain);
	return rc;
}

static int
z_head(struct os_store *s, const char *key, uint64_t *size)
{
	struct zstd_store *z = z_of(s);
	struct os_store *in = z->w.inner;
	uint8_t h[ZHDR];
	size_t got;
	int rc;

	rc = in->ops->get(in, key, 0, ZHDR, h, &got);
	if (rc == -ERANGE)
		rc = z_bad(z, key, "empty object");
	if (rc < 0)
		return rc;
	return z_header(z, key, h, got, size);
}

static int
z_del(struct os_store *s, const char *key)
{
	struct zstd_store *z = z_of(s);

	return z->w.inner->ops->del(z->w.inner, key);
}

static int
z_list(struct os_store *s, const char *prefix, const char *start_after,
       os_list_cb cb, void *arg)
{
	struct zstd_store *z = z_of(s);

	return z->w.inner->ops->list(z->w.inner, prefix, start_after, cb, arg);
}

/* Sizes are the stored (compressed) ones, as z_list reports them. */
static int
z_list_info(struct os_store *s, const char *prefix, const char *start_after,
	    os_list_info_cb cb, void *arg)
{
	return os_list_info(z_of(s)->w.inner, prefix, start_after, cb, arg);
}

static void
z_close(struct os_store *s)
{
	struct zstd_store *z = z_of(s);

	os_close(z->w.inner);
	free(z->w.base.url);
	free(z);
}

static const struct os_ops zstd_ops = {
	.scheme = "zstd",
	.put = z_put,
	.get = z_get,
	.head = z_head,
	.del = z_del,
	.list = z_list,
	.close = z_close,
	.list_info = z_list_info,
};

int
os_zstd_wrap(struct os_store *inner, int level, struct os_store **out)
{
	struct zstd_store *z = tl_calloc(1, sizeof(*z));

	z->w.base.ops = &zstd_ops;
	z->w.inner = inner;
	z->level = level > 0 ? level : 3;
	z->w.base.url = tl_asprintf("zstd:%s", inner->url);
	*out = &z->w.base;
	return 0;
}

int
os_zstd_open(struct os_store *inner, const char *params, struct os_store **out,
	     char **err)
{
	uint64_t level = 3;
	struct os_params p;
	int rc;

	if ((rc = os_params_parse(params, ',', false, &p, err)) < 0)
		return rc;
	if ((rc = os_params_u64(&p, "level", 1, 19, &level, err)) == 0 &&
	    (rc = os_params_check_used(&p, "zstd", err)) == 0)
		rc = os_zstd_wrap(inner, (int)level, out);
	os_params_free(&p);
	return rc;
}
