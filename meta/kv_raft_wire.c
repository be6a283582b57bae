/*
 * kv_raft_wire.c - what the raft:// engine puts on the wire and in the
 * log: transaction records and entries (with a CRC-32C of their own, on
 * top of libraft's, so that a corrupt entry is never applied), the
 * handshake that authenticates peers with the cluster secret, and the
 * AES-256-GCM frames of an authenticated connection (OpenSSL).  Formats
 * are described in kv_raft-internal.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/sha.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meta/kv_raft-internal.h"

/* ---- reading encoded bytes ----------------------------------------------- */

void
meta_kvr_rdr_init(struct meta_kvr_rdr *r, const void *p, size_t len)
{
	r->p = p;
	r->end = r->p + len;
	r->bad = false;
}

const uint8_t *
meta_kvr_getn(struct meta_kvr_rdr *r, size_t n)
{
	const uint8_t *p = r->p;

	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = true;
		return NULL;
	}
	r->p += n;
	return p;
}

uint8_t
meta_kvr_get8(struct meta_kvr_rdr *r)
{
	const uint8_t *p = meta_kvr_getn(r, 1);

	return p ? p[0] : 0;
}

uint16_t
meta_kvr_get16(struct meta_kvr_rdr *r)
{
	const uint8_t *p = meta_kvr_getn(r, 2);

	return p ? tl_get_be16(p) : 0;
}

uint32_t
meta_kvr_get32(struct meta_kvr_rdr *r)
{
	const uint8_t *p = meta_kvr_getn(r, 4);

	return p ? tl_get_be32(p) : 0;
}

uint64_t
meta_kvr_get64(struct meta_kvr_rdr *r)
{
	const uint8_t *p = meta_kvr_getn(r, 8);

	return p ? tl_get_be64(p) : 0;
}

int
meta_kvr_get_read(struct meta_kvr_rdr *r, struct meta_kvr_rd *rd)
{
	rd->flags = meta_kvr_get8(r);
	rd->slen = meta_kvr_get16(r);
	rd->s = meta_kvr_getn(r, rd->slen);
	rd->elen = meta_kvr_get16(r);
	rd->e = meta_kvr_getn(r, rd->elen);
	return r->bad || rd->flags > (KVR_R_INCL | KVR_R_OPEN) ? -EPROTO : 0;
}

int
meta_kvr_get_write(struct meta_kvr_rdr *r, struct meta_kvr_wr *w)
{
	w->op = meta_kvr_get8(r);
	w->klen = meta_kvr_get16(r);
	w->k = meta_kvr_getn(r, w->klen);
	w->vlen = meta_kvr_get32(r);
	w->v = meta_kvr_getn(r, w->vlen);
	if (r->bad || w->op < KVR_PUT || w->op > KVR_ADD ||
	    w->vlen > KVR_VAL_MAX)
		return -EPROTO;
	if (w->op == KVR_ADD &&
	    (w->vlen == 0 || w->vlen % 8 || w->vlen > 8 * META_KV_ADD_MAX))
		return -EPROTO;
	return 0;
}

void
meta_kvr_put_write(struct tl_buf *b, uint8_t op, const void *k, size_t klen,
		   const void *v, size_t vlen)
{
	uint8_t h[3];

	h[0] = op;
	tl_put_be16(h + 1, (uint16_t)klen);
	tl_buf_append(b, h, 3);
	tl_buf_append(b, k, klen);
	tl_buf_append_be32(b, (uint32_t)vlen);
	tl_buf_append(b, v, vlen);
}

int
meta_kvr_txn_parse(const void *p, size_t len, struct meta_kvr_txnhdr *h)
{
	struct meta_kvr_rdr r;
	struct meta_kvr_rd rd;
	struct meta_kvr_wr w;
	const uint8_t *at;

	meta_kvr_rdr_init(&r, p, len);
	h->origin = meta_kvr_get64(&r);
	h->seq = meta_kvr_get64(&r);
	h->index = meta_kvr_get64(&r);
	h->ndeps = meta_kvr_get32(&r);
	if (h->ndeps > len / 8)
		return -EPROTO;
	h->deps = meta_kvr_getn(&r, 8 * (size_t)h->ndeps);
	h->nreads = meta_kvr_get32(&r);
	h->reads = r.p;
	for (uint32_t i = 0; i < h->nreads && !r.bad; i++)
		if (meta_kvr_get_read(&r, &rd))
			return -EPROTO;
	h->reads_len = (size_t)(r.p - h->reads);
	h->nwrites = meta_kvr_get32(&r);
	h->writes = at = r.p;
	for (uint32_t i = 0; i < h->nwrites && !r.bad; i++)
		if (meta_kvr_get_write(&r, &w))
			return -EPROTO;
	h->writes_len = (size_t)(r.p - at);
	return r.bad || r.p != r.end ? -EPROTO : 0;
}

int
meta_kvr_keycmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int c = memcmp(a, b, TL_MIN(alen, blen));

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

bool
meta_kvr_rd_has(const struct meta_kvr_rd *rd, const void *k, size_t klen)
{
	int c;

	if (meta_kvr_keycmp(k, klen, rd->s, rd->slen) < 0)
		return false;
	if (rd->flags & KVR_R_OPEN)
		return true;
	c = meta_kvr_keycmp(k, klen, rd->e, rd->elen);
	return (rd->flags & KVR_R_INCL) ? c <= 0 : c < 0;
}

/* ---- write sets ---------------------------------------------------------- */

struct meta_kvr_wset *
meta_kvr_wset_new(const void *rec, size_t len)
{
	struct meta_kvr_wset *w = tl_malloc(sizeof(*w) + len);
	struct meta_kvr_txnhdr h;
	struct meta_kvr_rdr r;
	struct meta_kvr_wr wr;

	atomic_init(&w->refs, 1);
	memcpy(w->rec, rec, len);
	w->len = len;
	w->nw = 0;
	w->woff = NULL;
	w->seq = len >= 16 ? tl_get_be64(w->rec + 8) : 0;
	if (meta_kvr_txn_parse(w->rec, len, &h) != 0)
		return w; /* refused by the leader anyway */
	w->woff = tl_malloc((h.nwrites + 1) * sizeof(*w->woff));
	meta_kvr_rdr_init(&r, h.writes, h.writes_len);
	for (uint32_t i = 0; i < h.nwrites; i++) {
		w->woff[i] = (uint32_t)(r.p - w->rec);
		meta_kvr_get_write(&r, &wr);
	}
	w->nw = h.nwrites;
	return w;
}

struct meta_kvr_wset *
meta_kvr_wset_ref(struct meta_kvr_wset *w)
{
	atomic_fetch_add(&w->refs, 1);
	return w;
}

void
meta_kvr_wset_unref(struct meta_kvr_wset *w)
{
	if (w && atomic_fetch_sub(&w->refs, 1) == 1) {
		free(w->woff);
		free(w);
	}
}

static void
wset_at(const struct meta_kvr_wset *w, uint32_t i, struct meta_kvr_wr *out)
{
	struct meta_kvr_rdr r;

	meta_kvr_rdr_init(&r, w->rec + w->woff[i], w->len - w->woff[i]);
	meta_kvr_get_write(&r, out);
}

/* First write whose key is >= k. */
static uint32_t
wset_lower(const struct meta_kvr_wset *w, const void *k, size_t klen)
{
	uint32_t lo = 0, hi = w->nw;
	struct meta_kvr_wr wr;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		wset_at(w, mid, &wr);
		if (meta_kvr_keycmp(wr.k, wr.klen, k, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int
meta_kvr_wset_find(const struct meta_kvr_wset *w, const void *k, size_t klen,
		   struct meta_kvr_wr *out)
{
	uint32_t i = wset_lower(w, k, klen);

	if (i >= w->nw)
		return -ENOENT;
	wset_at(w, i, out);
	return meta_kvr_keycmp(out->k, out->klen, k, klen) == 0 ? 0 : -ENOENT;
}

bool
meta_kvr_wset_hits(const struct meta_kvr_wset *w, const void *s, size_t slen,
		   const void *e, size_t elen)
{
	uint32_t i = wset_lower(w, s, slen);
	struct meta_kvr_wr wr;

	if (i >= w->nw)
		return false;
	if (e == NULL)
		return true;
	wset_at(w, i, &wr);
	return meta_kvr_keycmp(wr.k, wr.klen, e, elen) < 0;
}

/* ---- checksums ----------------------------------------------------------- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void
crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t
meta_kvr_crc32c(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *b = p;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (n--)
		crc = crc_table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

void
meta_kvr_entry_seal(struct tl_buf *b)
{
	tl_put_be32(b->data + 6, meta_kvr_crc32c(0, b->data + 10, b->len - 10));
}

int
meta_kvr_entry_check(const void *p, size_t len)
{
	const uint8_t *b = p;

	if (len < KVR_ENTRY_HDR || tl_get_be32(b) != KVR_ENTRY_MAGIC ||
	    b[4] != KVR_ENTRY_VERSION ||
	    tl_get_be32(b + 6) != meta_kvr_crc32c(0, b + 10, len - 10))
		return -EIO;
	return 0;
}

/* ---- the cluster secret -------------------------------------------------- */

int
meta_kvr_secret_load(const char *path, struct meta_kvr_secret *s, char **err)
{
	uint8_t buf[4096];
	struct stat st;
	ssize_t n;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		*err = tl_asprintf("cannot open cluster secret %s: %s", path,
				   strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & 077))
		tl_warn(KVR_SUB,
			"cluster secret %s is readable by others "
			"(chmod 600 it)",
			path);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < KVR_SECRET_MIN) {
		*err = tl_asprintf("cluster secret %s: %s (at least %d bytes "
				   "needed: tessera raft secret FILE makes "
				   "one)",
				   path, n < 0 ? strerror(errno) : "too short",
				   KVR_SECRET_MIN);
		return n < 0 ? -errno : -EINVAL;
	}
	/* Any length of random bytes or text: its SHA-256 is the key. */
	SHA256(buf, (size_t)n, s->k);
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

/* ---- handshake ----------------------------------------------------------- */

void
meta_kvr_hello_encode(const struct meta_kvr_hello *h, struct tl_buf *out)
{
	size_t alen = strnlen(h->addr, sizeof(h->addr) - 1);
	uint8_t hdr[6];

	memcpy(hdr, KVR_HS_MAGIC, 4);
	hdr[4] = KVR_HS_VERSION;
	hdr[5] = h->kind;
	tl_buf_append(out, hdr, 6);
	tl_buf_append(out, h->group, 16);
	tl_buf_append_be64(out, h->id);
	tl_buf_append(out, h->nonce, 32);
	tl_buf_append(out, (uint8_t[]){alen >> 8, alen & 0xff}, 2);
	tl_buf_append(out, h->addr, alen);
}

int
meta_kvr_hello_decode(const uint8_t *p, size_t len, struct meta_kvr_hello *h,
		      size_t *used)
{
	size_t alen;

	if (len >= 4 && memcmp(p, KVR_HS_MAGIC, 4) != 0)
		return -EPROTO;
	if (len < KVR_HELLO_MIN)
		return -EAGAIN;
	if (p[4] != KVR_HS_VERSION || p[5] < KVR_CH_RAFT || p[5] > KVR_CH_SNAP)
		return -EPROTO;
	alen = tl_get_be16(p + KVR_HELLO_MIN - 2);
	if (alen >= sizeof(h->addr))
		return -EPROTO;
	if (len < KVR_HELLO_MIN + alen)
		return -EAGAIN;
	h->kind = p[5];
	memcpy(h->group, p + 6, 16);
	h->id = tl_get_be64(p + 22);
	memcpy(h->nonce, p + 30, 32);
	memcpy(h->addr, p + KVR_HELLO_MIN, alen);
	h->addr[alen] = '\0';
	*used = KVR_HELLO_MIN + alen;
	return 0;
}

static void
hs_mac(const struct meta_kvr_secret *s, const char *label, const uint8_t *a,
       size_t alen, const uint8_t *b, size_t blen, uint8_t out[32])
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						 (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC *mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;
	size_t n = 0;

	if (c == NULL || !EVP_MAC_init(c, s->k, sizeof(s->k), params) ||
	    !EVP_MAC_update(c, (const uint8_t *)label, strlen(label)) ||
	    !EVP_MAC_update(c, a, alen) || !EVP_MAC_update(c, b, blen) ||
	    !EVP_MAC_final(c, out, &n, 32))
		abort(); /* only on out-of-memory */
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(mac);
}

void
meta_kvr_welcome_encode(const struct meta_kvr_secret *s, const uint8_t *hello,
			size_t hlen, uint8_t status, const uint8_t group[16],
			uint64_t id, const uint8_t nonce[32],
			uint8_t out[KVR_WELCOME_LEN])
{
	memcpy(out, KVR_HS_MAGIC, 4);
	out[4] = KVR_HS_VERSION;
	out[5] = status;
	memcpy(out + 6, group, 16);
	tl_put_be64(out + 22, id);
	memcpy(out + 30, nonce, 32);
	hs_mac(s, "server", hello, hlen, out, KVR_WELCOME_LEN - 32,
	       out + KVR_WELCOME_LEN - 32);
}

int
meta_kvr_welcome_check(const struct meta_kvr_secret *s, const uint8_t *hello,
		       size_t hlen, const uint8_t w[KVR_WELCOME_LEN])
{
	uint8_t mac[32];

	if (memcmp(w, KVR_HS_MAGIC, 4) != 0 || w[4] != KVR_HS_VERSION)
		return -EPROTO;
	hs_mac(s, "server", hello, hlen, w, KVR_WELCOME_LEN - 32, mac);
	return CRYPTO_memcmp(mac, w + KVR_WELCOME_LEN - 32, 32) ? -EACCES : 0;
}

void
meta_kvr_proof_make(const struct meta_kvr_secret *s, const uint8_t *hello,
		    size_t hlen, const uint8_t w[KVR_WELCOME_LEN],
		    uint8_t out[KVR_PROOF_LEN])
{
	hs_mac(s, "client", hello, hlen, w, KVR_WELCOME_LEN, out);
}

int
meta_kvr_proof_check(const struct meta_kvr_secret *s, const uint8_t *hello,
		     size_t hlen, const uint8_t w[KVR_WELCOME_LEN],
		     const uint8_t proof[KVR_PROOF_LEN])
{
	uint8_t mac[32];

	meta_kvr_proof_make(s, hello, hlen, w, mac);
	return CRYPTO_memcmp(mac, proof, 32) ? -EACCES : 0;
}

static void
aead_init(struct meta_kvr_aead *a, const struct meta_kvr_secret *s,
	  const char *label, const uint8_t cn[32], const uint8_t sn[32])
{
	hs_mac(s, label, cn, 32, sn, 32, a->key);
	a->ctr = 0;
	a->ctx = EVP_CIPHER_CTX_new();
	if (a->ctx == NULL)
		abort();
}

void
meta_kvr_session_init(struct meta_kvr_session *ss,
		      const struct meta_kvr_secret *s, const uint8_t cnonce[32],
		      const uint8_t snonce[32], bool client)
{
	aead_init(client ? &ss->tx : &ss->rx, s, "c2s", cnonce, snonce);
	aead_init(client ? &ss->rx : &ss->tx, s, "s2c", cnonce, snonce);
}

void
meta_kvr_session_free(struct meta_kvr_session *ss)
{
	EVP_CIPHER_CTX_free(ss->tx.ctx);
	EVP_CIPHER_CTX_free(ss->rx.ctx);
	OPENSSL_cleanse(ss, sizeof(*ss));
}

static void
aead_iv(struct meta_kvr_aead *a, uint8_t iv[12])
{
	memset(iv, 0, 4);
	tl_put_be64(iv + 4, a->ctr++);
}

void
meta_kvr_seal(struct meta_kvr_aead *a, const void *p, size_t len,
	      struct tl_buf *out)
{
	EVP_CIPHER_CTX *c = a->ctx;
	uint8_t iv[12], *dst;
	int n = 0, m = 0;

	aead_iv(a, iv);
	tl_buf_reserve(out, 4 + len + KVR_TAG);
	dst = out->data + out->len;
	tl_put_be32(dst, (uint32_t)len);
	if (EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, a->key, iv) != 1 ||
	    EVP_EncryptUpdate(c, NULL, &n, dst, 4) != 1 ||
	    EVP_EncryptUpdate(c, dst + 4, &n, p, (int)len) != 1 ||
	    EVP_EncryptFinal_ex(c, dst + 4 + n, &m) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, KVR_TAG,
				dst + 4 + len) != 1)
		abort(); /* only on out-of-memory */
	out->len += 4 + len + KVR_TAG;
}

int
meta_kvr_open(struct meta_kvr_aead *a, const uint8_t *in, size_t len,
	      struct tl_buf *out, size_t *used)
{
	EVP_CIPHER_CTX *c = a->ctx;
	uint8_t iv[12], *dst;
	size_t n;
	int k = 0, m = 0;

	if (len < 4)
		return -EAGAIN;
	n = tl_get_be32(in);
	if (n > KVR_FRAME_MAX)
		return -EMSGSIZE;
	if (len < 4 + n + KVR_TAG)
		return -EAGAIN;
	aead_iv(a, iv);
	tl_buf_reserve(out, n);
	dst = out->data + out->len;
	if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, a->key, iv) != 1 ||
	    EVP_DecryptUpdate(c, NULL, &k, in, 4) != 1 ||
	    EVP_DecryptUpdate(c, dst, &k, in + 4, (int)n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, KVR_TAG,
				(void *)(in + 4 + n)) != 1 ||
	    EVP_DecryptFinal_ex(c, dst + k, &m) != 1)
		return -EBADMSG;
	out->len += n;
	*used = 4 + n + KVR_TAG;
	return 0;
}

/* ---- blocking client ----------------------------------------------------- */

/* Split "host:port" (or "[v6]:port"). */
static int
split_addr(const char *a, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *c = strrchr(a, ':');
	size_t hl;

	if (c == NULL || strlen(c + 1) == 0 || strlen(c + 1) >= pcap)
		return -EINVAL;
	hl = (size_t)(c - a);
	if (hl >= 2 && a[0] == '[' && a[hl - 1] == ']') {
		a++;
		hl -= 2;
	}
	if (hl == 0 || hl >= hcap)
		return -EINVAL;
	memcpy(host, a, hl);
	host[hl] = '\0';
	strcpy(port, c + 1);
	return 0;
}

static int
tcp_connect(const char *address, char **err)
{
	struct addrinfo hints, *res, *ai;
	char host[256], port[16];
	int fd = -1, rc, one = 1;

	if (split_addr(address, host, sizeof(host), port, sizeof(port))) {
		*err = tl_asprintf("bad address '%s' (HOST:PORT)", address);
		return -EINVAL;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		*err = tl_asprintf("%s: %s", address, gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	rc = -ECONNREFUSED;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		rc = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		*err = tl_asprintf("cannot connect to %s: %s", address,
				   strerror(-rc));
		return rc;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int
meta_kvr_dial(const char *address, const struct meta_kvr_secret *s,
	      uint8_t kind, const uint8_t group[16], uint64_t id,
	      const char *myaddr, uint8_t peer_group[16],
	      struct meta_kvr_session *ss, char **err)
{
	struct tl_buf hello = TL_BUF_INIT;
	uint8_t w[KVR_WELCOME_LEN], proof[KVR_PROOF_LEN];
	struct meta_kvr_hello h;
	int fd, rc;

	fd = tcp_connect(address, err);
	if (fd < 0)
		return fd;
	memset(&h, 0, sizeof(h));
	h.kind = kind;
	memcpy(h.group, group, 16);
	h.id = id;
	tl_random_bytes(h.nonce, 32);
	snprintf(h.addr, sizeof(h.addr), "%s", myaddr ? myaddr : "");
	meta_kvr_hello_encode(&h, &hello);
	rc = tl_io_full(fd, hello.data, hello.len, TL_IO_SEND);
	if (rc == 0)
		rc = tl_io_full(fd, w, sizeof(w), TL_IO_READ);
	if (rc) {
		*err = tl_asprintf("%s: handshake: %s", address, strerror(-rc));
		goto fail;
	}
	rc = meta_kvr_welcome_check(s, hello.data, hello.len, w);
	if (rc) {
		*err = tl_asprintf("%s: authentication failed (not the "
				   "same cluster secret?)",
				   address);
		goto fail;
	}
	if (w[5] != KVR_HS_OK) {
		*err = tl_asprintf("%s refused the connection: %s", address,
				   w[5] == KVR_HS_GROUP ? "it belongs to "
							  "another group"
							: "busy");
		rc = w[5] == KVR_HS_GROUP ? -EXDEV : -EBUSY;
		goto fail;
	}
	meta_kvr_proof_make(s, hello.data, hello.len, w, proof);
	rc = tl_io_full(fd, proof, sizeof(proof), TL_IO_SEND);
	if (rc) {
		*err = tl_asprintf("%s: handshake: %s", address, strerror(-rc));
		goto fail;
	}
	if (peer_group)
		memcpy(peer_group, w + 6, 16);
	meta_kvr_session_init(ss, s, h.nonce, w + 30, true);
	tl_buf_free(&hello);
	return fd;
fail:
	tl_buf_free(&hello);
	close(fd);
	return rc;
}

int
meta_kvr_send_frame(int fd, struct meta_kvr_session *ss, const void *p,
		    size_t n)
{
	struct tl_buf b = TL_BUF_INIT;
	int rc;

	meta_kvr_seal(&ss->tx, p, n, &b);
	rc = tl_io_full(fd, b.data, b.len, TL_IO_SEND);
	tl_buf_free(&b);
	return rc;
}

int
meta_kvr_recv_frame(int fd, struct meta_kvr_session *ss, struct tl_buf *out)
{
	uint8_t hdr[4];
	uint8_t *in;
	size_t n, used;
	int rc;

	tl_buf_reset(out);
	rc = tl_io_full(fd, hdr, 4, TL_IO_READ);
	if (rc)
		return rc;
	n = tl_get_be32(hdr);
	if (n > KVR_FRAME_MAX)
		return -EMSGSIZE;
	in = tl_malloc(4 + n + KVR_TAG);
	memcpy(in, hdr, 4);
	rc = tl_io_full(fd, in + 4, n + KVR_TAG, TL_IO_READ);
	if (rc == 0)
		rc = meta_kvr_open(&ss->rx, in, 4 + n + KVR_TAG, out, &used);
	free(in);
	return rc;
}
