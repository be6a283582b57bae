/*
 * backup.c - the record of the volume's last metadata backup (meta.h,
 * "the last metadata backup").
 *
 * Record: key <vol>\0b (B is the background-job lease), value (version 1)
 *   u8 version, be64 snap_ns, be64 done_ns, be64 session, be64 bytes,
 *   be64 keys, u8 length + id, be64 claim_session, be64 claim_ns.
 * Fields are only ever appended; a reader ignores bytes past those it
 * knows.
 *
 * The claim is a small lease of its own: a gateway writes its session id
 * into the record before it dumps, and another gateway leaves the backup
 * to it while that session is live (its G record renewed within its
 * ttl).  One transaction reads and writes the record, so two gateways
 * that find a backup due at once cannot both claim it: one commits, the
 * other retries and finds the claim.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "meta/meta-internal.h"

#define BACKUP_VERSION 1
#define BACKUP_VMAX    (1 + 5 * 8 + 1 + META_BACKUP_ID_MAX + 2 * 8)

static size_t
backup_encode(const struct meta_backup *b, uint8_t *v)
{
	size_t n = strnlen(b->id, META_BACKUP_ID_MAX - 1);
	uint8_t *p = v;

	*p++ = BACKUP_VERSION;
	tl_put_be64(p, b->snap_ns);
	tl_put_be64(p + 8, b->done_ns);
	tl_put_be64(p + 16, b->session);
	tl_put_be64(p + 24, b->bytes);
	tl_put_be64(p + 32, b->keys);
	p += 40;
	*p++ = (uint8_t)n;
	memcpy(p, b->id, n);
	p += n;
	tl_put_be64(p, b->claim_session);
	tl_put_be64(p + 8, b->claim_ns);
	return (size_t)(p + 16 - v);
}

int
meta_backup_decode(const void *val, size_t len, struct meta_backup *b)
{
	const uint8_t *p = val;
	size_t n;

	memset(b, 0, sizeof(*b));
	if (len < 1 + 40 + 1 || p[0] != BACKUP_VERSION)
		return -EIO;
	b->snap_ns = tl_get_be64(p + 1);
	b->done_ns = tl_get_be64(p + 9);
	b->session = tl_get_be64(p + 17);
	b->bytes = tl_get_be64(p + 25);
	b->keys = tl_get_be64(p + 33);
	n = p[41];
	if (n >= META_BACKUP_ID_MAX || len < 42 + n + 16)
		return -EIO;
	memcpy(b->id, p + 42, n);
	b->id[n] = '\0';
	b->claim_session = tl_get_be64(p + 42 + n);
	b->claim_ns = tl_get_be64(p + 50 + n);
	return 0;
}

static int
record_get(struct mtxn *t, struct meta_backup *b)
{
	struct meta_key k;
	const void *v;
	size_t vlen;
	int rc;

	meta_key_tag(t->m, &k, 'b');
	rc = meta_kv_get(t->kv, k.b, k.len, &v, &vlen);
	if (rc == 0 && meta_backup_decode(v, vlen, b) != 0) {
		tl_warn(META_SUB, "the metadata backup record is unreadable; "
				  "writing a new one");
		rc = -ENOENT;
	}
	if (rc == -ENOENT)
		memset(b, 0, sizeof(*b));
	return rc;
}

static int
record_put(struct mtxn *t, const struct meta_backup *b)
{
	uint8_t v[BACKUP_VMAX];
	struct meta_key k;

	meta_key_tag(t->m, &k, 'b');
	return meta_kv_put(t->kv, k.b, k.len, v, backup_encode(b, v));
}

int
meta_backup_get(struct meta *m, struct meta_backup *b)
{
	struct mtxn t;
	int rc;

	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	rc = record_get(&t, b);
	return meta_txn_end(&t, rc);
}

/* Whether session id is live now (its record renewed within its ttl). */
static bool
session_is_live(struct mtxn *t, uint64_t id, uint64_t now_ns)
{
	struct meta_session s;

	return meta_session_get(t, id, &s) == 0 &&
	       meta_session_live(&s, now_ns);
}

/* One of claim, done and unclaim, as one transaction on the record. */
struct backup_op {
	uint64_t session;
	uint64_t interval_ns, now_ns; /* claim */
	uint64_t *next_ns;            /* claim, may be NULL */
	const struct meta_backup *nb; /* done */
};

static int
claim_txn(struct mtxn *t, void *arg)
{
	const struct backup_op *o = arg;
	struct meta_backup b;
	int rc;

	rc = record_get(t, &b);
	if (rc == -ENOENT)
		rc = 0;
	/* A snapshot time ahead of our clock by more than an
	 * interval is a clock that was wrong: do not wait for it. */
	if (rc == 0 && b.snap_ns != 0 &&
	    o->now_ns < b.snap_ns + o->interval_ns &&
	    b.snap_ns < o->now_ns + o->interval_ns) {
		if (o->next_ns != NULL)
			*o->next_ns = b.snap_ns + o->interval_ns;
		return -EALREADY;
	}
	if (rc == 0 && b.claim_session != 0 && b.claim_session != o->session &&
	    session_is_live(t, b.claim_session, o->now_ns))
		return -EBUSY;
	if (rc == 0) {
		b.claim_session = o->session;
		b.claim_ns = o->now_ns;
		rc = record_put(t, &b);
	}
	return rc;
}

int
meta_backup_claim(struct meta *m, uint64_t session, uint64_t interval_ns,
		  uint64_t now_ns, uint64_t *next_ns)
{
	struct backup_op o = {.session = session,
			      .interval_ns = interval_ns,
			      .now_ns = now_ns,
			      .next_ns = next_ns};

	return meta_txn_run(m, false, claim_txn, &o);
}

static int
done_txn(struct mtxn *t, void *arg)
{
	const struct backup_op *o = arg;
	struct meta_backup b;
	int rc;

	rc = record_get(t, &b);
	if (rc == -ENOENT || (rc == 0 && b.claim_session != o->session))
		return -ESTALE;
	if (rc)
		return rc;
	b = *o->nb;
	b.session = o->session;
	b.claim_session = 0;
	b.claim_ns = 0;
	return record_put(t, &b);
}

int
meta_backup_done(struct meta *m, uint64_t session, const struct meta_backup *nb)
{
	struct backup_op o = {.session = session, .nb = nb};

	return meta_txn_run(m, false, done_txn, &o);
}

static int
unclaim_txn(struct mtxn *t, void *arg)
{
	const struct backup_op *o = arg;
	struct meta_backup b;
	int rc;

	rc = record_get(t, &b);
	if (rc == -ENOENT)
		return 0;
	if (rc == 0 && b.claim_session == o->session) {
		b.claim_session = 0;
		b.claim_ns = 0;
		rc = record_put(t, &b);
	}
	return rc;
}

int
meta_backup_unclaim(struct meta *m, uint64_t session)
{
	struct backup_op o = {.session = session};

	return meta_txn_run(m, false, unclaim_txn, &o);
}
