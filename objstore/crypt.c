/*
 * crypt.c - per-object AES-256-GCM encryption around any store.
 *
 * URL form: crypt(key_file=/etc/tessera/VOLUME.key):INNER.  The key file
 * holds the 32-byte volume key (raw, or 64 hex digits); only its path is
 * in the URL, so the key itself is never stored in the volume settings.
 *
 * Every object gets a fresh random 256-bit data key, which encrypts the
 * data and is itself encrypted ("wrapped") with the volume key.  Stored
 * object format (96-byte header, then the ciphertext, as long as the
 * plaintext):
 *   0  4  magic "TENC"
 *   4  1  version (1)
 *   5  1  flags (0)
 *   6  2  reserved, zero
 *   8  12 nonce of the key wrap
 *   20 32 data key, AES-256-GCM under the volume key, AAD = bytes 0..7
 *   52 16 GCM tag of the key wrap
 *   68 12 nonce of the data
 *   80 16 GCM tag of the data, AAD = bytes 0..7 followed by the object key
 * Binding the object key into the data's AAD means an object copied or
 * renamed to another key fails to decrypt just like a modified one.  A
 * wrong volume key fails the wrap tag; a flipped bit anywhere fails one of
 * the tags: both are -EIO with a log line naming the object, never data.
 *
 * A range get decrypts the whole object and copies the range out; head
 * and list report the plaintext size (stored size - 96).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "lib/tl.h"
#include "objstore/objstore-internal.h"
#include "objstore/objstore.h"

#define CHDR   96
#define KEYLEN OS_CRYPT_KEY_LEN
#define NONCE  12
#define TAG    16

struct crypt_store {
	struct os_wrap w;
	uint8_t key[KEYLEN];
};

static struct crypt_store *
c_of(struct os_store *s)
{
	return (struct crypt_store *)s;
}

/* AES-256-GCM in one call; seal when enc, else open (returns -EBADMSG on
 * an authentication failure). */
static int
gcm(bool enc, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad1,
    size_t aad1_len, const char *aad2, const uint8_t *in, size_t n,
    uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	size_t done = 0, step;
	int l, ok;

	if (ctx == NULL)
		abort();
	ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce,
			       enc ? 1 : 0);
	ok = ok && EVP_CipherUpdate(ctx, NULL, &l, aad1, (int)aad1_len);
	if (aad2 != NULL)
		ok = ok &&
		     EVP_CipherUpdate(ctx, NULL, &l, (const uint8_t *)aad2,
				      (int)strlen(aad2));
	while (ok && done < n) {
		step = TL_MIN(n - done, (size_t)1 << 30);
		ok = EVP_CipherUpdate(ctx, out + done, &l, in + done,
				      (int)step);
		done += step;
	}
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG, tag);
	ok = ok && EVP_CipherFinal_ex(ctx, out + done, &l) > 0;
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG, tag);
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -EBADMSG;
}

static int
c_put(struct os_store *s, const char *key, const void *data, size_t len)
{
	struct crypt_store *c = c_of(s);
	uint8_t *out = tl_malloc(CHDR + len), dk[KEYLEN];
	int rc;

	memcpy(out, "TENC\1\0\0\0", 8);
	tl_random_bytes(dk, sizeof(dk));
	tl_random_bytes(out + 8, NONCE);
	tl_random_bytes(out + 68, NONCE);
	rc = gcm(true, c->key, out + 8, out, 8, NULL, dk, KEYLEN, out + 20,
		 out + 52);
	if (rc == 0)
		rc = gcm(true, dk, out + 68, out, 8, key, data, len, out + CHDR,
			 out + 80);
	explicit_bzero(dk, sizeof(dk));
	if (rc < 0) {
		tl_err("objstore", "%s: cannot encrypt %s", s->url, key);
		rc = -EIO;
	} else {
		rc = c->w.inner->ops->put(c->w.inner, key, out, CHDR + len);
	}
	free(out);
	return rc;
}

static int
c_bad(struct crypt_store *c, const char *key, const char *why)
{
	tl_err("objstore", "%s: object %s: %s", c->w.base.url, key, why);
	return -EIO;
}

static int
c_get(struct os_store *s, const char *key, uint64_t off, size_t len, void *buf,
      size_t *got)
{
	struct crypt_store *c = c_of(s);
	uint8_t *raw = NULL, *plain = NULL, dk[KEYLEN];
	size_t n, plen;
	int rc;

	*got = 0;
	rc = os_get_whole(c->w.inner, key, CHDR + off + len, &raw, &n);
	if (rc < 0)
		return rc;
	if (n < CHDR || memcmp(raw, "TENC", 4) != 0) {
		rc = c_bad(c, key, "not an encrypted object (no header)");
		goto out;
	}
	if (raw[4] != 1 || raw[5] != 0 || raw[6] != 0 || raw[7] != 0) {
		rc = c_bad(c, key, "unknown encryption format version");
		goto out;
	}
	if (gcm(false, c->key, raw + 8, raw, 8, NULL, raw + 20, KEYLEN, dk,
		raw + 52) < 0) {
		rc = c_bad(c, key,
			   "cannot unwrap its data key: wrong volume "
			   "key, or the object was tampered with");
		goto out;
	}
	plen = n - CHDR;
	plain = tl_malloc(plen ? plen : 1);
	rc = gcm(false, dk, raw + 68, raw, 8, key, raw + CHDR, plen, plain,
		 raw + 80);
	explicit_bzero(dk, sizeof(dk));
	if (rc < 0) {
		rc = c_bad(c, key,
			   "authentication failed: the object is "
			   "corrupt or was tampered with");
		goto out;
	}
	if (off > plen) {
		rc = -ERANGE;
		goto out;
	}
	*got = (size_t)TL_MIN((uint64_t)len, plen - off);
	if (*got > 0)
		memcpy(buf, plain + off, *got);
out:
	if (plain != NULL)
		explicit_bzero(plain, n - CHDR);
	free(plain);
	free(raw);
	return rc;
}

static int
c_head(struct os_store *s, const char *key, uint64_t *size)
{
	struct crypt_store *c = c_of(s);
	uint64_t n;
	int rc = c->w.inner->ops->head(c->w.inner, key, &n);

	if (rc < 0)
		return rc;
	if (n < CHDR)
		return c_bad(c, key, "too short to be an encrypted object");
	*size = n - CHDR;
	return 0;
}

static int
c_del(struct os_store *s, const char *key)
{
	struct crypt_store *c = c_of(s);

	return c->w.inner->ops->del(c->w.inner, key);
}

struct list_ctx {
	os_list_cb cb;
	void *arg;
	os_list_info_cb icb;
};

static int
list_one(void *arg, const char *key, uint64_t size)
{
	struct list_ctx *l = arg;

	return l->cb(l->arg, key, size >= CHDR ? size - CHDR : 0);
}

static int
c_list(struct os_store *s, const char *prefix, const char *start_after,
       os_list_cb cb, void *arg)
{
	struct crypt_store *c = c_of(s);
	struct list_ctx l = {cb, arg, NULL};

	return c->w.inner->ops->list(c->w.inner, prefix, start_after, list_one,
				     &l);
}

static int
list_info_one(void *arg, const char *key, const struct os_obj_info *info)
{
	struct list_ctx *l = arg;
	struct os_obj_info oi = *info;

	oi.size = oi.size >= CHDR ? oi.size - CHDR : 0;
	return l->icb(l->arg, key, &oi);
}

static int
c_list_info(struct os_store *s, const char *prefix, const char *start_after,
	    os_list_info_cb cb, void *arg)
{
	struct list_ctx l = {NULL, arg, cb};

	return os_list_info(c_of(s)->w.inner, prefix, start_after,
			    list_info_one, &l);
}

static void
c_close(struct os_store *s)
{
	struct crypt_store *c = c_of(s);

	os_close(c->w.inner);
	explicit_bzero(c->key, sizeof(c->key));
	free(c->w.base.url);
	free(c);
}

static const struct os_ops crypt_ops = {
	.scheme = "crypt",
	.put = c_put,
	.get = c_get,
	.head = c_head,
	.del = c_del,
	.list = c_list,
	.close = c_close,
	.list_info = c_list_info,
};

static int
crypt_new(struct os_store *inner, const uint8_t *key, const char *url,
	  struct os_store **out)
{
	struct crypt_store *c = tl_calloc(1, sizeof(*c));

	c->w.base.ops = &crypt_ops;
	c->w.inner = inner;
	memcpy(c->key, key, KEYLEN);
	c->w.base.url = tl_strdup(url);
	*out = &c->w.base;
	return 0;
}

int
os_crypt_wrap(struct os_store *inner, const uint8_t *key, struct os_store **out)
{
	char *url = tl_asprintf("crypt:%s", inner->url);
	int rc = crypt_new(inner, key, url, out);

	free(url);
	return rc;
}

static int
unhex(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int
os_crypt_load_key(const char *path, uint8_t *key, char **err)
{
	uint8_t buf[130];
	struct stat st;
	ssize_t n;
	size_t i;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		*err = tl_asprintf("key file %s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & 0077) != 0)
		tl_warn("objstore",
			"key file %s is readable by other users "
			"(chmod 600 it)",
			path);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	while (n > KEYLEN &&
	       (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	if (n == KEYLEN) {
		memcpy(key, buf, KEYLEN);
	} else if (n == 2 * KEYLEN) {
		for (i = 0; i < KEYLEN; i++) {
			int hi = unhex((char)buf[2 * i]);
			int lo = unhex((char)buf[2 * i + 1]);

			if (hi < 0 || lo < 0)
				break;
			key[i] = (uint8_t)(hi << 4 | lo);
		}
		if (i < KEYLEN)
			rc = -EINVAL;
	} else {
		rc = -EINVAL;
	}
	explicit_bzero(buf, sizeof(buf));
	if (rc < 0)
		*err = tl_asprintf("key file %s: expected 32 bytes or 64 hex "
				   "digits (make one with: head -c 32 "
				   "/dev/urandom > FILE)",
				   path);
	return rc;
}

int
os_crypt_open(struct os_store *inner, const char *params, struct os_store **out,
	      char **err)
{
	uint8_t key[KEYLEN];
	struct os_params p;
	const char *file;
	char *url;
	int rc;

	if ((rc = os_params_parse(params, ',', false, &p, err)) < 0)
		return rc;
	file = os_params_get(&p, "key_file");
	if (file == NULL || file[0] == '\0') {
		*err = tl_strdup("crypt: key_file=PATH is required");
		rc = -EINVAL;
		goto out;
	}
	if ((rc = os_params_check_used(&p, "crypt", err)) < 0 ||
	    (rc = os_crypt_load_key(file, key, err)) < 0)
		goto out;
	url = tl_asprintf("crypt(key_file=%s):%s", file, inner->url);
	rc = crypt_new(inner, key, url, out);
	free(url);
	explicit_bzero(key, sizeof(key));
out:
	os_params_free(&p);
	return rc;
}
