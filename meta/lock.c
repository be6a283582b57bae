/*
 * lock.c - NFS locks in the volume's metadata (meta.h, "NFS locks"): the
 * byte-range locks and share reservations that nfsd's NLM server grants,
 * recorded so that every gateway of the volume sees them.
 *
 * Records (meta-internal.h has the keys):
 *   N<ino><owner id>   what one owner holds on one inode: its ranges, or
 *                      one share reservation
 *   M<client id>       a client: name, addresses, the gateway session
 *                      serving it, its NSM state, recovery epoch, grace
 *   n<client id><ino><owner id>   the index of a client's N records
 *                      (empty value), for FREE_ALL, reboots and recovery
 *   m<client id>       how many ranges and shares it holds (an add)
 *   C nlmlocks, C nlmreleases, C nsmstate   volume counters
 * An owner id is the first 16 bytes of SHA-256 over the kind (ranges or
 * share), client name, svid and owner handle, so a key stays short
 * whatever the client sends (names and handles up to 1 KiB); the record
 * holds them in full and is checked against them.
 *
 * N record: u8 version, u8 kind, be32 svid, be32 NSM state, be16 name
 * length + name, be16 handle length + handle, then for ranges be32 n and
 * n x {be64 start, be64 end, u8 exclusive, be32 epoch} sorted by start,
 * never overlapping, neighbours of equal kind and epoch merged; for a
 * share u8 mode, u8 access, be32 epoch.
 *
 * M record: u8 version, be64 session, be64 grace until (ns), be32 epoch,
 * be32 state, u8 flags (1: notified), be16 name length + name, u8 address
 * length + address, u8 local address length + address.
 *
 * A lock request reads every record of the inode (one scan), so two
 * gateways granting conflicting ranges at once conflict in the engine and
 * one of them retries and sees the other's.  The client record is read
 * too, and written only when something in it changes.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "meta/lock-internal.h"

/* ---- ids and keys -------------------------------------------------------- */

static void
owner_id(uint8_t kind, const struct meta_lock_owner *o, uint8_t id[LOCK_ID])
{
	size_t len = 1 + 2 + o->client_len + 4 + 2 + o->oh_len;
	uint8_t *b = tl_malloc(len), *p = b, md[SHA256_DIGEST_LENGTH];

	*p++ = kind;
	tl_put_be16(p, (uint16_t)o->client_len);
	memcpy(p + 2, o->client, o->client_len);
	p += 2 + o->client_len;
	tl_put_be32(p, kind == KIND_RANGES ? o->svid : 0);
	tl_put_be16(p + 4, (uint16_t)o->oh_len);
	if (o->oh_len > 0)
		memcpy(p + 6, o->oh, o->oh_len);
	SHA256(b, len, md);
	memcpy(id, md, LOCK_ID);
	free(b);
}

void
meta_lk_client_id(const char *name, size_t len, uint8_t id[LOCK_ID])
{
	uint8_t *b = tl_malloc(len + 7), md[SHA256_DIGEST_LENGTH];

	memcpy(b, "client", 7);
	memcpy(b + 7, name, len);
	SHA256(b, len + 7, md);
	memcpy(id, md, LOCK_ID);
	free(b);
}

/* N<ino>[<owner id>] */
void
meta_lk_key_lock(struct meta *m, struct meta_key *k, uint64_t ino,
		 const uint8_t *oid)
{
	meta_key_tag(m, k, 'N');
	tl_put_be64(k->b + k->len, ino);
	k->len += 8;
	if (oid != NULL) {
		memcpy(k->b + k->len, oid, LOCK_ID);
		k->len += LOCK_ID;
	}
}

/* tag M (client), m (count) or n (index, with ino and owner id when
 * oid is given) followed by the client id. */
void
meta_lk_key_client(struct meta *m, struct meta_key *k, char tag,
		   const uint8_t cid[LOCK_ID], uint64_t ino, const uint8_t *oid)
{
	meta_key_tag(m, k, tag);
	memcpy(k->b + k->len, cid, LOCK_ID);
	k->len += LOCK_ID;
	if (oid != NULL) {
		tl_put_be64(k->b + k->len, ino);
		memcpy(k->b + k->len + 8, oid, LOCK_ID);
		k->len += 8 + LOCK_ID;
	}
}

/* The first key past every key starting with k (k's last byte below
 * 0xff, which holds for every prefix built here: they end in a tag, an
 * inode number below 2^64-1 or a hash; a hash of 0xff is handled). */
void
meta_lk_key_after(const struct meta_key *k, struct meta_key *out)
{
	*out = *k;
	while (out->len > 0 && out->b[out->len - 1] == 0xff)
		out->len--;
	if (out->len > 0)
		out->b[out->len - 1]++;
}

/* ---- records ------------------------------------------------------------- */

void
meta_lk_rec_free(struct lrec *r)
{
	free(r->name);
	free(r->oh);
	free(r->r);
	memset(r, 0, sizeof(*r));
}

int
meta_lk_rec_decode(const void *val, size_t len, struct lrec *r)
{
	const uint8_t *p = val, *end = p + len;
	size_t nl, hl;

	memset(r, 0, sizeof(*r));
	if (len < 14 || p[0] != LOCK_VERSION ||
	    (p[1] != KIND_RANGES && p[1] != KIND_SHARE))
		return -EIO;
	r->kind = p[1];
	r->svid = tl_get_be32(p + 2);
	r->state = tl_get_be32(p + 6);
	p += 10;
	nl = tl_get_be16(p);
	if ((size_t)(end - p) < 2 + nl + 2)
		return -EIO;
	r->name = tl_memdup(p + 2, nl + 1);
	r->name[nl] = '\0';
	r->name_len = nl;
	p += 2 + nl;
	hl = tl_get_be16(p);
	if ((size_t)(end - p) < 2 + hl)
		goto bad;
	r->oh = tl_memdup(p + 2, hl + 1);
	r->oh_len = hl;
	p += 2 + hl;
	if (r->kind == KIND_SHARE) {
		if (end - p != 6)
			goto bad;
		r->mode = p[0];
		r->access = p[1];
		r->epoch = tl_get_be32(p + 2);
		r->n = 1;
		return 0;
	}
	if (end - p < 4)
		goto bad;
	r->n = tl_get_be32(p);
	p += 4;
	if ((size_t)(end - p) != r->n * RANGE_REC)
		goto bad;
	r->r = tl_calloc(r->n + 1, sizeof(*r->r));
	for (size_t i = 0; i < r->n; i++, p += RANGE_REC) {
		r->r[i].start = tl_get_be64(p);
		r->r[i].end = tl_get_be64(p + 8);
		r->r[i].exclusive = p[16] != 0;
		r->r[i].epoch = tl_get_be32(p + 17);
		if (r->r[i].start >= r->r[i].end ||
		    (i > 0 && r->r[i].start < r->r[i - 1].end))
			goto bad;
	}
	return 0;
bad:
	meta_lk_rec_free(r);
	return -EIO;
}

static void
rec_encode(const struct lrec *r, struct tl_buf *b)
{
	uint8_t h[10], e[RANGE_REC];

	tl_buf_reset(b);
	h[0] = LOCK_VERSION;
	h[1] = r->kind;
	tl_put_be32(h + 2, r->svid);
	tl_put_be32(h + 6, r->state);
	tl_buf_append(b, h, 10);
	tl_put_be16(h, (uint16_t)r->name_len);
	tl_buf_append(b, h, 2);
	tl_buf_append(b, r->name, r->name_len);
	tl_put_be16(h, (uint16_t)r->oh_len);
	tl_buf_append(b, h, 2);
	tl_buf_append(b, r->oh, r->oh_len);
	if (r->kind == KIND_SHARE) {
		e[0] = (uint8_t)r->mode;
		e[1] = (uint8_t)r->access;
		tl_put_be32(e + 2, r->epoch);
		tl_buf_append(b, e, 6);
		return;
	}
	tl_buf_append_be32(b, (uint32_t)r->n);
	for (size_t i = 0; i < r->n; i++) {
		tl_put_be64(e, r->r[i].start);
		tl_put_be64(e + 8, r->r[i].end);
		e[16] = r->r[i].exclusive;
		tl_put_be32(e + 17, r->r[i].epoch);
		tl_buf_append(b, e, RANGE_REC);
	}
}

/* A fresh record of o (no ranges). */
static void
rec_init(struct lrec *r, uint8_t kind, const struct meta_lock_owner *o,
	 uint32_t state)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->svid = kind == KIND_RANGES ? o->svid : 0;
	r->state = state;
	/* both are bytes of o->*_len, not strings: copy, then terminate */
	r->name = tl_malloc(o->client_len + 1);
	if (o->client_len > 0)
		memcpy(r->name, o->client, o->client_len);
	r->name[o->client_len] = '\0';
	r->name_len = o->client_len;
	r->oh = tl_malloc(o->oh_len + 1);
	if (o->oh_len > 0)
		memcpy(r->oh, o->oh, o->oh_len);
	r->oh[o->oh_len] = '\0';
	r->oh_len = o->oh_len;
}

static bool
rec_is(const struct lrec *r, uint8_t kind, const struct meta_lock_owner *o)
{
	return r->kind == kind && r->name_len == o->client_len &&
	       memcmp(r->name, o->client, o->client_len) == 0 &&
	       (kind == KIND_SHARE || r->svid == o->svid) &&
	       r->oh_len == o->oh_len &&
	       (o->oh_len == 0 || memcmp(r->oh, o->oh, o->oh_len) == 0);
}

/* ---- ranges -------------------------------------------------------------- */

static bool
overlap(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	return s1 < e2 && s2 < e1;
}

/* Remove [s, e) from r's ranges, splitting one that straddles an end;
 * true when anything was removed. */
static bool
ranges_cut(struct lrec *r, uint64_t s, uint64_t e)
{
	struct meta_lock_range *out = tl_calloc(r->n + 2, sizeof(*out));
	size_t k = 0;
	bool cut = false;

	for (size_t i = 0; i < r->n; i++) {
		struct meta_lock_range x = r->r[i];

		if (!overlap(x.start, x.end, s, e)) {
			out[k++] = x;
			continue;
		}
		cut = true;
		if (x.start < s) {
			out[k] = x;
			out[k++].end = s;
		}
		if (x.end > e) {
			out[k] = x;
			out[k++].start = e;
		}
	}
	free(r->r);
	r->r = out;
	r->n = k;
	return cut;
}

/* Add [s, e) (free in r: cut first) and merge the neighbours that touch
 * it and are of the same kind and epoch. */
static void
ranges_add(struct lrec *r, uint64_t s, uint64_t e, bool excl, uint32_t epoch)
{
	struct meta_lock_range *v = tl_realloc(r->r, (r->n + 2) * sizeof(*v));
	size_t i = 0, k = 0;

	while (i < r->n && v[i].start < s)
		i++;
	memmove(v + i + 1, v + i, (r->n - i) * sizeof(*v));
	v[i].start = s;
	v[i].end = e;
	v[i].exclusive = excl;
	v[i].epoch = epoch;
	r->n++;
	for (i = 0; i < r->n; i++) {
		if (k > 0 && v[k - 1].end == v[i].start &&
		    v[k - 1].exclusive == v[i].exclusive &&
		    v[k - 1].epoch == v[i].epoch) {
			v[k - 1].end = v[i].end;
			continue;
		}
		v[k++] = v[i];
	}
	r->n = k;
	r->r = v;
}

/* Whether r's ranges cover [s, e) whole, each of kind excl; *renew is
 * set when one of them is of an epoch other than epoch. */
static bool
ranges_cover(const struct lrec *r, uint64_t s, uint64_t e, bool excl,
	     uint32_t epoch, bool *renew)
{
	uint64_t pos = s;

	*renew = false;
	for (size_t i = 0; i < r->n && pos < e; i++) {
		if (r->r[i].end <= pos)
			continue;
		if (r->r[i].start > pos || r->r[i].exclusive != excl)
			return false;
		*renew |= r->r[i].epoch != epoch;
		pos = r->r[i].end;
	}
	return pos >= e;
}

/* An exclusive range of r in [s, e) that a shared request would
 * downgrade. */
static bool
ranges_downgrade(const struct lrec *r, uint64_t s, uint64_t e, bool excl)
{
	for (size_t i = 0; i < r->n && !excl; i++)
		if (r->r[i].exclusive &&
		    overlap(r->r[i].start, r->r[i].end, s, e))
			return true;
	return false;
}

/* ---- clients ------------------------------------------------------------- */

static void
copy_addr(char *dst, const char *src)
{
	size_t n = src != NULL ? strnlen(src, META_LOCK_ADDR_MAX - 1) : 0;

	memcpy(dst, src != NULL ? src : "", n);
	dst[n] = '\0';
}

static size_t
client_encode(const struct meta_lock_client *c, uint8_t *v)
{
	uint8_t *p = v;
	size_t al = strlen(c->addr), ll = strlen(c->local);

	*p++ = CLIENT_VERSION;
	tl_put_be64(p, c->session);
	tl_put_be64(p + 8, c->grace_until_ns);
	tl_put_be32(p + 16, c->epoch);
	tl_put_be32(p + 20, (uint32_t)c->state);
	p[24] = c->notified ? CLIENT_NOTIFIED : 0;
	tl_put_be16(p + 25, (uint16_t)c->name_len);
	p += 27;
	memcpy(p, c->name, c->name_len);
	p += c->name_len;
	*p++ = (uint8_t)al;
	memcpy(p, c->addr, al);
	p += al;
	*p++ = (uint8_t)ll;
	memcpy(p, c->local, ll);
	p += ll;
	return (size_t)(p - v);
}

#define CLIENT_VMAX (28 + META_LOCK_STR_MAX + 2 * META_LOCK_ADDR_MAX)

int
meta_lk_client_decode(const void *val, size_t len, struct meta_lock_client *c)
{
	const uint8_t *p = val, *end = p + len;
	size_t n;

	memset(c, 0, sizeof(*c));
	if (len < 30 || p[0] != CLIENT_VERSION)
		return -EIO;
	c->session = tl_get_be64(p + 1);
	c->grace_until_ns = tl_get_be64(p + 9);
	c->epoch = tl_get_be32(p + 17);
	c->state = (int32_t)tl_get_be32(p + 21);
	c->notified = (p[25] & CLIENT_NOTIFIED) != 0;
	n = tl_get_be16(p + 26);
	p += 28;
	if (n > META_LOCK_STR_MAX || (size_t)(end - p) < n + 1)
		return -EIO;
	memcpy(c->name, p, n);
	c->name[n] = '\0';
	c->name_len = n;
	p += n;
	for (int i = 0; i < 2; i++) {
		char *dst = i == 0 ? c->addr : c->local;

		if (p >= end)
			return -EIO;
		n = *p++;
		if (n >= META_LOCK_ADDR_MAX || (size_t)(end - p) < n)
			return -EIO;
		memcpy(dst, p, n);
		dst[n] = '\0';
		p += n;
	}
	return 0;
}

int
meta_lk_client_get(struct mtxn *t, const uint8_t cid[LOCK_ID],
		   struct meta_lock_client *c)
{
	struct meta_key k;
	const void *v;
	size_t vlen;
	int rc;

	meta_lk_key_client(t->m, &k, 'M', cid, 0, NULL);
	rc = meta_kv_get(t->kv, k.b, k.len, &v, &vlen);
	if (rc)
		return rc;
	rc = meta_lk_client_decode(v, vlen, c);
	if (rc)
		tl_err(META_SUB, "an unreadable NFS lock client record");
	return rc;
}

int
meta_lk_client_put(struct mtxn *t, const uint8_t cid[LOCK_ID],
		   const struct meta_lock_client *c)
{
	uint8_t v[CLIENT_VMAX];
	struct meta_key k;

	meta_lk_key_client(t->m, &k, 'M', cid, 0, NULL);
	return meta_kv_put(t->kv, k.b, k.len, v, client_encode(c, v));
}

/* The client record of o's client, created or brought up to date with
 * where (NULL: as it is). */
static int
client_touch(struct mtxn *t, const uint8_t cid[LOCK_ID],
	     const struct meta_lock_owner *o, const struct meta_lock_where *w,
	     struct meta_lock_client *c)
{
	struct meta_lock_client old;
	int rc = meta_lk_client_get(t, cid, c);

	if (rc == -ENOENT) {
		memset(c, 0, sizeof(*c));
		memcpy(c->name, o->client, o->client_len);
		c->name[o->client_len] = '\0';
		c->name_len = o->client_len;
	} else if (rc) {
		return rc;
	}
	old = *c;
	if (w != NULL) {
		c->session = w->session;
		c->state = w->state;
		copy_addr(c->addr, w->addr);
		copy_addr(c->local, w->local);
	}
	if (rc == 0 && old.session == c->session && old.state == c->state &&
	    strcmp(old.addr, c->addr) == 0 && strcmp(old.local, c->local) == 0)
		return 0;
	return meta_lk_client_put(t, cid, c);
}

/* Whether a range of epoch held by client c is unreclaimed. */
static bool
unreclaimed(const struct meta_lock_client *c, uint32_t epoch)
{
	return c->grace_until_ns != 0 && epoch < c->epoch;
}

/* ---- storing a record ---------------------------------------------------- */

static int
add_count(struct mtxn *t, const uint8_t cid[LOCK_ID], int64_t d)
{
	struct meta_key k;
	int rc;

	if (d == 0)
		return 0;
	meta_lk_key_client(t->m, &k, 'm', cid, 0, NULL);
	rc = meta_kv_add(t->kv, k.b, k.len, &d, 1);
	return rc ? rc : meta_counter_add(t, CNT_NLM_LOCKS, d);
}

/* Write r (or delete it when it holds nothing), with its index entry and
 * the counts; old: what the stored record counted for (0: none). */
int
meta_lk_rec_store(struct mtxn *t, uint64_t ino, const uint8_t oid[LOCK_ID],
		  const uint8_t cid[LOCK_ID], const struct lrec *r,
		  uint64_t old)
{
	uint64_t now = meta_lk_rec_count(r);
	struct meta_key k, ki;
	struct tl_buf b = TL_BUF_INIT;
	int rc;

	meta_lk_key_lock(t->m, &k, ino, oid);
	meta_lk_key_client(t->m, &ki, 'n', cid, ino, oid);
	if (now == 0) {
		rc = meta_kv_del(t->kv, k.b, k.len);
		if (rc == 0)
			rc = meta_kv_del(t->kv, ki.b, ki.len);
	} else {
		rec_encode(r, &b);
		rc = meta_kv_put(t->kv, k.b, k.len, b.data, b.len);
		if (rc == 0 && old == 0)
			rc = meta_kv_put(t->kv, ki.b, ki.len, "", 0);
		tl_buf_free(&b);
	}
	return rc ? rc : add_count(t, cid, (int64_t)now - (int64_t)old);
}

int
meta_lk_peek_count(struct mtxn *t, const uint8_t cid[LOCK_ID], uint64_t *n)
{
	struct meta_key k;
	const void *v;
	size_t vlen;
	int rc;

	meta_lk_key_client(t->m, &k, 'm', cid, 0, NULL);
	rc = meta_kv_peek(t->kv, k.b, k.len, &v, &vlen);
	*n = 0;
	if (rc == -ENOENT)
		return 0;
	if (rc == 0 && vlen != 8)
		rc = -EIO;
	if (rc == 0)
		*n = tl_get_be64(v);
	return rc;
}

/* -ENOLCK when growing by d would pass r's bounds. */
static int
check_bounds(struct mtxn *t, const uint8_t cid[LOCK_ID],
	     const struct meta_lock_req *r, int64_t d)
{
	uint64_t n;
	int rc;

	if (d <= 0)
		return 0;
	if (r->max_client > 0) {
		rc = meta_lk_peek_count(t, cid, &n);
		if (rc)
			return rc;
		if (n + (uint64_t)d > r->max_client)
			return -ENOLCK;
	}
	if (r->max_total > 0) {
		rc = meta_counter_peek(t, CNT_NLM_LOCKS, &n);
		if (rc)
			return rc;
		if (n + (uint64_t)d > r->max_total)
			return -ENOLCK;
	}
	return 0;
}

/* ---- the records of an inode --------------------------------------------- */

/* One conflict found by a scan: the holder, and its client and epoch
 * (to tell whether it is unreclaimed). */
struct conflict {
	struct meta_lock_holder h;
	uint8_t cid[LOCK_ID];
	uint32_t epoch;
};

struct iscan {
	struct meta *m;
	const uint8_t *oid; /* the requester */
	const struct meta_lock_req *req;
	uint8_t kind;    /* of the request */
	bool test_only;  /* keep not the requester's own */
	struct lrec own; /* the requester's record, if found */
	bool have_own;
	struct conflict c[LK_CONFLICTS];
	size_t nc;
	int rc;
};

static void
holder_of(const struct lrec *x, const struct meta_lock_range *rg,
	  struct meta_lock_holder *h)
{
	memset(h, 0, sizeof(*h));
	h->share = x->kind == KIND_SHARE;
	h->svid = x->svid;
	h->oh_len = TL_MIN(x->oh_len, sizeof(h->oh));
	memcpy(h->oh, x->oh, h->oh_len);
	if (rg != NULL) {
		h->exclusive = rg->exclusive;
		h->start = rg->start;
		h->end = rg->end;
	} else {
		h->mode = x->mode;
		h->access = x->access;
		h->end = META_LOCK_EOF;
	}
}

/* Record x's conflicts with the request, if any. */
static void
iscan_conflicts(struct iscan *s, const struct lrec *x)
{
	const struct meta_lock_req *r = s->req;
	struct conflict *c;

	if (s->nc == LK_CONFLICTS || x->kind != s->kind)
		return;
	if (x->kind == KIND_SHARE) {
		if (!((r->access & x->mode) || (r->mode & x->access)))
			return;
		c = &s->c[s->nc++];
		holder_of(x, NULL, &c->h);
		c->epoch = x->epoch;
		meta_lk_client_id((const char *)x->name, x->name_len, c->cid);
		return;
	}
	for (size_t i = 0; i < x->n && s->nc < LK_CONFLICTS; i++) {
		const struct meta_lock_range *g = &x->r[i];

		if (!overlap(g->start, g->end, r->start, r->end) ||
		    !(r->exclusive || g->exclusive))
			continue;
		c = &s->c[s->nc++];
		holder_of(x, g, &c->h);
		c->epoch = g->epoch;
		meta_lk_client_id((const char *)x->name, x->name_len, c->cid);
		/* one per owner: the next may be a live holder */
		break;
	}
}

static int
iscan_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct iscan *s = arg;
	size_t p = s->m->pfxlen + 1 + 8;
	struct lrec x;

	if (klen != p + LOCK_ID)
		return 0;
	if (meta_lk_rec_decode(val, vlen, &x) != 0) {
		tl_err(META_SUB, "an unreadable NFS lock record; ignored");
		return 0;
	}
	if (memcmp((const uint8_t *)key + p, s->oid, LOCK_ID) == 0) {
		if (!rec_is(&x, s->kind, &s->req->owner)) {
			meta_lk_rec_free(&x);
			s->rc = -EIO; /* two owners, one id: never seen */
			return 1;
		}
		if (!s->test_only) {
			s->own = x;
			s->have_own = true;
			return 0;
		}
	} else {
		iscan_conflicts(s, &x);
	}
	meta_lk_rec_free(&x);
	return 0;
}

/* Scan the records of ino for the request (s set up by the caller). */
static int
iscan_run(struct mtxn *t, uint64_t ino, struct iscan *s)
{
	struct meta_key k, e;
	int rc;

	meta_lk_key_lock(t->m, &k, ino, NULL);
	meta_lk_key_after(&k, &e);
	rc = meta_kv_scan(t->kv, k.b, k.len, e.b, e.len, iscan_cb, s);
	return rc ? rc : s->rc;
}

/* The conflicts found decide: 0 (none), or -EBUSY with the first holder
 * that is not unreclaimed, else the first (recovering). */
static int
iscan_verdict(struct mtxn *t, struct iscan *s, struct meta_lock_result *res)
{
	for (size_t i = 0; i < s->nc; i++) {
		struct meta_lock_client c;
		int rc = meta_lk_client_get(t, s->c[i].cid, &c);

		if (rc == -ENOENT ||
		    (rc == 0 && !unreclaimed(&c, s->c[i].epoch))) {
			res->holder = s->c[i].h;
			return -EBUSY;
		}
		if (rc)
			return rc;
	}
	if (s->nc == 0)
		return 0;
	res->holder = s->c[0].h;
	res->holder.recovering = true;
	return -EBUSY;
}

/* ---- requests ------------------------------------------------------------ */

static bool
owner_ok(const struct meta_lock_owner *o)
{
	return o->client_len <= META_LOCK_STR_MAX &&
	       o->oh_len <= META_LOCK_STR_MAX &&
	       (o->client != NULL || o->client_len == 0) &&
	       (o->oh != NULL || o->oh_len == 0);
}

/* One request on an owner's record of one inode: a lock or share to
 * grant (grant_txn) or to release (release_txn), run by meta_txn_run. */
struct lock_op {
	uint64_t ino;
	uint8_t kind;
	const struct meta_lock_owner *owner;
	const struct meta_lock_req *req; /* what to grant */
	uint64_t start, end;             /* ranges to release */
	uint8_t oid[LOCK_ID], cid[LOCK_ID];
	struct meta_lock_result *res;
};

static void
op_init(struct lock_op *op, uint8_t kind, uint64_t ino,
	const struct meta_lock_owner *o, struct meta_lock_result *res)
{
	memset(op, 0, sizeof(*op));
	op->ino = ino;
	op->kind = kind;
	op->owner = o;
	op->res = res;
	owner_id(kind, o, op->oid);
	meta_lk_client_id(o->client, o->client_len, op->cid);
	memset(res, 0, sizeof(*res));
}

/* Grant r's range in x, the owner's record, at epoch; false when x
 * holds it already (res->had) and nothing changes. */
static bool
ranges_grant(struct lrec *x, const struct meta_lock_req *r, uint32_t epoch,
	     struct meta_lock_result *res)
{
	bool renew;

	res->had =
		ranges_cover(x, r->start, r->end, r->exclusive, epoch, &renew);
	if (res->had && !renew)
		return false;
	res->released = ranges_downgrade(x, r->start, r->end, r->exclusive);
	ranges_cut(x, r->start, r->end);
	ranges_add(x, r->start, r->end, r->exclusive, epoch);
	return true;
}

/* Grant r's share reservation in x (held: x is a stored record); false
 * when x holds it already. */
static bool
share_grant(struct lrec *x, bool held, const struct meta_lock_req *r,
	    uint32_t epoch, struct meta_lock_result *res)
{
	res->had = held && x->mode == r->mode && x->access == r->access &&
		   x->epoch == epoch;
	if (res->had)
		return false;
	res->released =
		held && ((x->mode & ~r->mode) || (x->access & ~r->access));
	x->mode = r->mode;
	x->access = r->access;
	x->epoch = epoch;
	x->n = 1;
	return true;
}

static int
grant_txn(struct mtxn *t, void *arg)
{
	struct lock_op *op = arg;
	const struct meta_lock_req *r = op->req;
	struct iscan s = {
		.m = t->m, .oid = op->oid, .req = r, .kind = op->kind};
	struct meta_lock_client c;
	uint64_t old;
	bool change;
	int rc;

	memset(op->res, 0, sizeof(*op->res));
	rc = client_touch(t, op->cid, op->owner, r->where, &c);
	if (rc == 0)
		rc = iscan_run(t, op->ino, &s);
	if (rc == 0)
		rc = iscan_verdict(t, &s, op->res);
	if (rc)
		goto out;
	if (!s.have_own)
		rec_init(&s.own, op->kind, op->owner, 0);
	if (r->where != NULL)
		s.own.state = (uint32_t)r->where->state;
	old = meta_lk_rec_count(&s.own);
	change = op->kind == KIND_RANGES
			 ? ranges_grant(&s.own, r, c.epoch, op->res)
			 : share_grant(&s.own, s.have_own, r, c.epoch, op->res);
	if (!change)
		goto out;
	rc = check_bounds(t, op->cid, r,
			  (int64_t)meta_lk_rec_count(&s.own) - (int64_t)old);
	if (rc == 0)
		rc = meta_lk_rec_store(t, op->ino, op->oid, op->cid, &s.own,
				       old);
	if (rc == 0 && op->res->released)
		rc = meta_counter_add(t, CNT_NLM_RELEASES, 1);
out:
	meta_lk_rec_free(&s.own);
	return rc;
}

/* Get o's record of kind on ino into *x (-ENOENT: none). */
static int
own_get(struct mtxn *t, uint64_t ino, uint8_t kind,
	const struct meta_lock_owner *o, const uint8_t oid[LOCK_ID],
	struct lrec *x)
{
	struct meta_key k;
	const void *v;
	size_t vlen;
	int rc;

	meta_lk_key_lock(t->m, &k, ino, oid);
	rc = meta_kv_get(t->kv, k.b, k.len, &v, &vlen);
	if (rc)
		return rc;
	rc = meta_lk_rec_decode(v, vlen, x);
	if (rc == 0 && !rec_is(x, kind, o)) {
		meta_lk_rec_free(x);
		rc = -EIO;
	}
	return rc;
}

static int
release_txn(struct mtxn *t, void *arg)
{
	struct lock_op *op = arg;
	struct lrec x;
	uint64_t old;
	int rc;

	memset(op->res, 0, sizeof(*op->res));
	rc = own_get(t, op->ino, op->kind, op->owner, op->oid, &x);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	old = meta_lk_rec_count(&x);
	if (op->kind == KIND_RANGES) {
		op->res->released = ranges_cut(&x, op->start, op->end);
	} else {
		op->res->released = true;
		x.n = 0;
	}
	if (op->res->released)
		rc = meta_lk_rec_store(t, op->ino, op->oid, op->cid, &x, old);
	if (rc == 0 && op->res->released)
		rc = meta_counter_add(t, CNT_NLM_RELEASES, 1);
	meta_lk_rec_free(&x);
	return rc;
}

static int
grant(struct meta *m, uint8_t kind, uint64_t ino, const struct meta_lock_req *r,
      struct meta_lock_result *res)
{
	struct lock_op op;

	op_init(&op, kind, ino, &r->owner, res);
	op.req = r;
	return meta_txn_run(m, false, grant_txn, &op);
}

static int
release(struct meta *m, uint8_t kind, uint64_t ino,
	const struct meta_lock_owner *o, uint64_t start, uint64_t end,
	struct meta_lock_result *res)
{
	struct lock_op op;

	op_init(&op, kind, ino, o, res);
	op.start = start;
	op.end = end;
	return meta_txn_run(m, false, release_txn, &op);
}

/* ---- byte-range locks ---------------------------------------------------- */

int
meta_lock(struct meta *m, uint64_t ino, const struct meta_lock_req *r,
	  struct meta_lock_result *res)
{
	if (r->start >= r->end || !owner_ok(&r->owner))
		return -EINVAL;
	return grant(m, KIND_RANGES, ino, r, res);
}

static int
test_run(struct meta *m, uint64_t ino, const struct meta_lock_req *r,
	 uint8_t kind, struct meta_lock_result *res)
{
	struct iscan s = {.m = m, .req = r, .kind = kind, .test_only = true};
	uint8_t oid[LOCK_ID];
	struct mtxn t;
	int rc;

	memset(res, 0, sizeof(*res));
	if (!owner_ok(&r->owner) || (kind == KIND_RANGES && r->start >= r->end))
		return -EINVAL;
	owner_id(kind, &r->owner, oid);
	s.oid = oid;
	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	rc = iscan_run(&t, ino, &s);
	if (rc == 0)
		rc = iscan_verdict(&t, &s, res);
	meta_kv_abort(t.kv);
	return rc;
}

int
meta_lock_test(struct meta *m, uint64_t ino, const struct meta_lock_req *r,
	       struct meta_lock_result *res)
{
	return test_run(m, ino, r, KIND_RANGES, res);
}

int
meta_unlock(struct meta *m, uint64_t ino, const struct meta_lock_owner *o,
	    uint64_t start, uint64_t end, struct meta_lock_result *res)
{
	if (start >= end || !owner_ok(o))
		return -EINVAL;
	return release(m, KIND_RANGES, ino, o, start, end, res);
}

/* ---- share reservations -------------------------------------------------- */

int
meta_share(struct meta *m, uint64_t ino, const struct meta_lock_req *r,
	   struct meta_lock_result *res)
{
	if (!owner_ok(&r->owner) || r->mode > 3 || r->access > 3)
		return -EINVAL;
	return grant(m, KIND_SHARE, ino, r, res);
}

int
meta_unshare(struct meta *m, uint64_t ino, const struct meta_lock_owner *o,
	     struct meta_lock_result *res)
{
	if (!owner_ok(o))
		return -EINVAL;
	return release(m, KIND_SHARE, ino, o, 0, META_LOCK_EOF, res);
}
