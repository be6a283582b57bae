/*
 * fh.c - NFSv3 file handles.
 *
 * A handle names (volume, export, inode, generation) and carries a MAC
 * keyed by the volume's secret (layout in nfsd-internal.h).  No state is
 * needed to check a handle (MACs computed are remembered only to save
 * recomputing them): any gateway of the volume, before or after a
 * restart, verifies and decodes them the same way.  Because the
 * MAC covers the export id, a client cannot move a handle to another
 * export, and because inode numbers are never reused a handle of a
 * deleted file is simply stale (its inode, or its generation, is gone).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "nfsd/nfsd-internal.h"

#define FH_BODY 25 /* bytes covered by the MAC */
#define FH_MAC  (NFSD_FH_SIZE - FH_BODY)

/*
 * Every call checks or makes handles, so the MAC is on the hot path: the
 * one-shot HMAC() fetched the digest, allocated a context and hashed the
 * key for every handle, half of the gateway's user-space instructions
 * under a metadata load.  Each thread keeps one HMAC context keyed with
 * the volume's secret instead (rekeyed when the secret differs); a
 * reinit then only copies the keyed state.
 */
#define FH_KEY       sizeof(((struct meta_settings *)0)->secret)
#define FH_MEMO      1024 /* MACs remembered (a power of two) */
#define FH_MEMO_LOCK 32   /* locks over the slots */

struct fh_mac_ctx {
	EVP_MAC_CTX *ctx;
	uint8_t key[FH_KEY];
	bool keyed;
};

/* The MACs of the last handles made or checked, by any thread (a CREATE's
 * or LOOKUP's answer is the next calls' argument, often run elsewhere): a
 * MAC is a pure function of key and body, so a remembered one is as
 * good. */
struct fh_memo {
	uint8_t key[FH_KEY];
	uint8_t body[FH_BODY];
	uint8_t mac[FH_MAC];
	bool used;
};

static struct fh_memo fh_memo[FH_MEMO];
static pthread_mutex_t fh_memo_lock[FH_MEMO_LOCK];

static pthread_once_t fh_once = PTHREAD_ONCE_INIT;
static pthread_key_t fh_tls;
static EVP_MAC *fh_hmac; /* fetched once, for the process */

static void
fh_mac_ctx_free(void *p)
{
	struct fh_mac_ctx *m = p;

	EVP_MAC_CTX_free(m->ctx);
	free(m);
}

static void
fh_mac_init(void)
{
	for (size_t i = 0; i < FH_MEMO_LOCK; i++)
		pthread_mutex_init(&fh_memo_lock[i], NULL);
	if (pthread_key_create(&fh_tls, fh_mac_ctx_free) == 0)
		fh_hmac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
}

/* This thread's context keyed with vol's secret, NULL if OpenSSL fails. */
static struct fh_mac_ctx *
fh_mac_ctx(const struct meta_settings *vol)
{
	struct fh_mac_ctx *m;
	OSSL_PARAM params[2];

	if (fh_hmac == NULL)
		return NULL;
	m = pthread_getspecific(fh_tls);
	if (m == NULL) {
		m = tl_calloc(1, sizeof(*m));
		m->ctx = EVP_MAC_CTX_new(fh_hmac);
		if (m->ctx == NULL || pthread_setspecific(fh_tls, m) != 0) {
			fh_mac_ctx_free(m);
			return NULL;
		}
	}
	if (m->keyed && memcmp(m->key, vol->secret, sizeof(m->key)) == 0)
		return m;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	m->keyed = EVP_MAC_init(m->ctx, vol->secret, sizeof(vol->secret),
				params) != 0;
	memcpy(m->key, vol->secret, sizeof(m->key));
	return m->keyed ? m : NULL;
}

/* Copy the remembered MAC of body under vol's key into mac: true if
 * found. */
static bool
fh_memo_get(const struct meta_settings *vol, const uint8_t *body,
	    uint8_t mac[FH_MAC], size_t slot)
{
	struct fh_memo *e = &fh_memo[slot];
	pthread_mutex_t *l = &fh_memo_lock[slot % FH_MEMO_LOCK];
	bool hit;

	pthread_mutex_lock(l);
	hit = e->used && memcmp(e->body, body, FH_BODY) == 0 &&
	      memcmp(e->key, vol->secret, FH_KEY) == 0;
	if (hit)
		memcpy(mac, e->mac, FH_MAC);
	pthread_mutex_unlock(l);
	return hit;
}

static void
fh_memo_put(const struct meta_settings *vol, const uint8_t *body,
	    const uint8_t mac[FH_MAC], size_t slot)
{
	struct fh_memo *e = &fh_memo[slot];
	pthread_mutex_t *l = &fh_memo_lock[slot % FH_MEMO_LOCK];

	pthread_mutex_lock(l);
	memcpy(e->key, vol->secret, FH_KEY);
	memcpy(e->body, body, FH_BODY);
	memcpy(e->mac, mac, FH_MAC);
	e->used = true;
	pthread_mutex_unlock(l);
}

static void
fh_mac(const struct meta_settings *vol, const uint8_t *body,
       uint8_t mac[FH_MAC])
{
	/* inode and generation vary most: they pick the slot */
	size_t slot = (tl_get_be64(body + 13) ^ tl_get_be32(body + 21)) &
		      (FH_MEMO - 1);
	struct fh_mac_ctx *m;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	size_t len = 0;

	pthread_once(&fh_once, fh_mac_init);
	if (fh_memo_get(vol, body, mac, slot))
		return;
	m = fh_mac_ctx(vol);
	if (m != NULL && EVP_MAC_init(m->ctx, NULL, 0, NULL) &&
	    EVP_MAC_update(m->ctx, body, FH_BODY) &&
	    EVP_MAC_final(m->ctx, md, &len, sizeof(md)) && len >= FH_MAC) {
		memcpy(mac, md, FH_MAC);
		fh_memo_put(vol, body, mac, slot);
		return;
	}
	HMAC(EVP_sha256(), vol->secret, sizeof(vol->secret), body, FH_BODY, md,
	     &mdlen);
	memcpy(mac, md, FH_MAC);
}

void
nfsd_fh_encode(const struct meta_settings *vol, const struct nfsd_fh *fh,
	       uint8_t out[NFSD_FH_SIZE])
{
	out[0] = NFSD_FH_VERSION;
	memcpy(out + 1, vol->uuid, 8);
	tl_put_be32(out + 9, fh->export_id);
	tl_put_be64(out + 13, fh->ino);
	tl_put_be32(out + 21, fh->gen);
	fh_mac(vol, out, out + FH_BODY);
}

int
nfsd_fh_decode(const struct meta_settings *vol, const void *buf, size_t len,
	       struct nfsd_fh *out)
{
	const uint8_t *p = buf;
	uint8_t mac[FH_MAC];

	if (len != NFSD_FH_SIZE || p[0] != NFSD_FH_VERSION ||
	    memcmp(p + 1, vol->uuid, 8) != 0)
		return -EBADMSG;
	fh_mac(vol, p, mac);
	if (CRYPTO_memcmp(mac, p + FH_BODY, FH_MAC) != 0)
		return -EBADMSG;
	out->export_id = tl_get_be32(p + 9);
	out->ino = tl_get_be64(p + 13);
	out->gen = tl_get_be32(p + 21);
	return 0;
}

void
nfsd_fh_make(struct nfsd_call *c, uint64_t ino, uint32_t gen, nfs_fh3 *out)
{
	struct nfsd_fh fh = {c->exp->id, ino, gen};

	out->data.data_len = NFSD_FH_SIZE;
	out->data.data_val = tl_malloc(NFSD_FH_SIZE);
	nfsd_fh_encode(c->ctx->vol, &fh, (uint8_t *)out->data.data_val);
}

/* Attributes of ino if it lies inside exp: -ESTALE when the inode is
 * gone or lies outside the export (moved out of it, or the export now
 * names another directory).  The volume's root exported as "/" holds
 * everything: no check.  Buffered writes are folded in, so handlers see
 * the size a client expects. */
static int
fh_attr_inside(struct nfsd_ctx *ctx, const struct nfsd_export *exp,
	       uint64_t ino, struct meta_attr *attr)
{
	int rc;

	if (exp->root_ino == META_ROOT_INO)
		rc = meta_getattr(ctx->meta, ino, attr);
	else
		rc = meta_getattr_under(ctx->meta, exp->root_ino, ino, attr);
	if (rc == -EXDEV && tl_log_enabled(TL_LOG_INFO))
		tl_info("nfsd", "%s: inode %llu lies outside the export: stale",
			exp->path, (unsigned long long)ino);
	if (rc == -ENOENT || rc == -EXDEV)
		return -ESTALE;
	if (rc != 0)
		return rc;
	if (ctx->cache != NULL)
		cache_overlay_attr(ctx->cache, attr);
	return 0;
}

int
nfsd_fh_getattr(struct nfsd_ctx *ctx, const struct nfsd_export *exp,
		uint64_t ino, uint32_t gen, struct meta_attr *attr)
{
	int rc = fh_attr_inside(ctx, exp, ino, attr);

	if (rc == 0 && attr->gen != gen)
		return -ESTALE; /* the inode was replaced */
	return rc;
}

int
nfsd_fh_resolve(struct nfsd_call *c, const nfs_fh3 *fh, uint64_t *ino,
		struct meta_attr *attr)
{
	struct nfsd_fh h;
	struct meta_attr tmp;
	int rc;

	rc = nfsd_fh_decode(c->ctx->vol, fh->data.data_val, fh->data.data_len,
			    &h);
	if (rc != 0)
		return rc;
	if (c->exp == NULL || h.export_id != c->exp->id)
		return -EXDEV;
	rc = nfsd_fh_getattr(c->ctx, c->exp, h.ino, h.gen,
			     attr != NULL ? attr : &tmp);
	if (rc != 0)
		return rc;
	*ino = h.ino;
	return 0;
}

int
nfsd_fh_inside(struct nfsd_call *c, uint64_t ino, struct meta_attr *attr)
{
	if (c->exp == NULL)
		return -ESTALE;
	return fh_attr_inside(c->ctx, c->exp, ino, attr);
}
