/*
 * bgwatch.c - the background jobs' stall alarm (meta.h, "the stall
 * alarm"): whether the backlog the jobs can work on has stopped
 * shrinking.
 *
 * The backlog counted is what a job could do now: removed files whose
 * keys wait to be purged (D), released slices whose objects wait to be
 * deleted (R), slices compaction dropped whose grace period is over (L
 * older than the grace), and files of the trash past their retention
 * (whole hours of the trash that ended before the retention: an hour
 * directory's usage record says how many files it holds).  Slices still
 * in their grace and trash files not due are no backlog: nothing may
 * release them yet.
 *
 * Record <vol>\0W, version 1: u8 version, be64 sample_ns, be64 backlog,
 * be64 progress_ns, be64 period_ns.  Every gateway samples once per
 * lease period (its session_timeout) from its heartbeat thread, and
 * writes the record when the last sample is older than half a period,
 * so a volume gets about one write per period whatever the number of
 * gateways.  progress_ns is the time of the last sample at which the
 * backlog was zero or lower than at the sample before; a sample that
 * follows none within META_STALL_PERIODS periods (no gateway ran) starts
 * afresh.  Stalled: backlog above zero and no progress for
 * META_STALL_PERIODS periods.  Cost of a sample: one read of the D and
 * R ranges, of the L records past the grace and of the trash's hours.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "meta/meta-internal.h"

#define WATCH_VERSION 1
#define WATCH_VLEN    (1 + 4 * 8)

struct count_scan {
	size_t klen;     /* keys of this length count */
	uint64_t before; /* L: only keys whose time is below (0: any) */
	size_t p;
	uint64_t n;
};

static int
count_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct count_scan *c = arg;

	(void)val;
	(void)vlen;
	if (klen != c->klen)
		return 0;
	if (c->before != 0 &&
	    tl_get_be64((const uint8_t *)key + c->p + 1) >= c->before)
		return 1; /* L keys go by time: the rest are younger */
	c->n++;
	return 0;
}

static int
count_tag(struct mtxn *t, char tag, size_t klen, uint64_t before, uint64_t *n)
{
	struct count_scan c = {t->m->pfxlen + klen, before, t->m->pfxlen, 0};
	struct meta_key s, e;
	int rc;

	meta_key_tag(t->m, &s, tag);
	meta_key_tag(t->m, &e, (char)(tag + 1));
	rc = meta_kv_scan(t->kv, s.b, s.len, e.b, e.len, count_cb, &c);
	if (rc == 0)
		*n += c.n;
	return rc;
}

int
meta_bgjob_backlog(struct meta *m, uint64_t *items)
{
	uint64_t now = tl_now_ns(), grace = m->compact_grace_ns, due = 0;
	struct mtxn t;
	int rc;

	*items = 0;
	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	rc = count_tag(&t, 'D', 17, 0, items);
	if (rc == 0)
		rc = count_tag(&t, 'R', 13, 0, items);
	if (rc == 0)
		rc = count_tag(&t, 'L', 21, now > grace ? now - grace : 1,
			       items);
	if (rc == 0)
		rc = meta_trash_due(&t, now, &due);
	*items += due;
	rc = meta_txn_end(&t, rc);
	if (rc)
		*items = 0;
	return rc;
}

static int
watch_read(struct mtxn *t, struct meta_bgwatch *w)
{
	struct meta_key k;
	const uint8_t *p;
	const void *v;
	size_t vlen;
	int rc;

	memset(w, 0, sizeof(*w));
	meta_key_tag(t->m, &k, 'W');
	rc = meta_kv_get(t->kv, k.b, k.len, &v, &vlen);
	if (rc)
		return rc;
	p = v;
	if (vlen < WATCH_VLEN || p[0] != WATCH_VERSION)
		return -ENOENT; /* unreadable: as if none (rewritten) */
	w->sample_ns = tl_get_be64(p + 1);
	w->backlog = tl_get_be64(p + 9);
	w->progress_ns = tl_get_be64(p + 17);
	w->period_ns = tl_get_be64(p + 25);
	return 0;
}

struct sample_op {
	uint64_t items, period_ns;
};

static int
sample_txn(struct mtxn *t, void *arg)
{
	const struct sample_op *o = arg;
	uint64_t now = tl_now_ns();
	struct meta_bgwatch w;
	uint8_t v[WATCH_VLEN];
	struct meta_key k;
	int rc;

	t->lazy = true; /* a sample lost to a crash costs nothing */
	rc = watch_read(t, &w);
	if (rc == 0 && now >= w.sample_ns &&
	    now - w.sample_ns < o->period_ns / 2)
		return 0; /* sampled by another */
	if (rc == 0 || rc == -ENOENT) {
		bool fresh =
			rc == -ENOENT || now < w.sample_ns ||
			now - w.sample_ns > META_STALL_PERIODS * o->period_ns;

		if (fresh || o->items == 0 || o->items < w.backlog)
			w.progress_ns = now;
		v[0] = WATCH_VERSION;
		tl_put_be64(v + 1, now);
		tl_put_be64(v + 9, o->items);
		tl_put_be64(v + 17, w.progress_ns);
		tl_put_be64(v + 25, o->period_ns);
		meta_key_tag(t->m, &k, 'W');
		rc = meta_kv_put(t->kv, k.b, k.len, v, sizeof(v));
	}
	return rc;
}

int
meta_bgwatch_sample(struct meta *m, uint64_t period_ns)
{
	struct sample_op o = {0, period_ns};
	int rc;

	rc = meta_bgjob_backlog(m, &o.items);
	if (rc)
		return rc;
	return meta_txn_run(m, false, sample_txn, &o);
}

int
meta_bgjob_stall(struct meta *m, struct meta_stall *st)
{
	struct meta_session h;
	struct meta_lease l;
	struct mtxn t;
	int rc;

	memset(st, 0, sizeof(*st));
	st->now_ns = tl_now_ns();
	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	rc = watch_read(&t, &st->w);
	st->sampled = rc == 0;
	if (rc == -ENOENT)
		rc = 0;
	if (rc == 0) {
		rc = meta_lease_read(&t, &l);
		if (rc == 0)
			rc = meta_session_get(&t, l.holder, &h);
		if (rc == 0)
			st->holder_live = meta_session_live(&h, st->now_ns);
		if (rc == -ENOENT)
			rc = 0;
	}
	rc = meta_txn_end(&t, rc);
	if (rc)
		return rc;
	if (st->sampled && st->w.backlog > 0 &&
	    st->now_ns > st->w.progress_ns) {
		st->flat_ns = st->now_ns - st->w.progress_ns;
		if (st->flat_ns >= META_STALL_PERIODS * st->w.period_ns)
			st->reason = st->holder_live ? META_STALL_HOLDER
						     : META_STALL_NO_HOLDER;
	}
	return 0;
}
