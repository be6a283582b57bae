/*
 * quota.c - directory quotas: limits on the bytes and inodes of a tree.
 *
 * A quota'd directory Q has two records:
 *
 *   <vol>\0Q<ino be64>L   limits: bytes be64, inodes be64 (0: none)
 *   <vol>\0Q<ino be64>U   usage of the tree below Q: bytes be64,
 *                         inodes be64, kept with commutative adds
 *
 * and the counter C"quotas" says how many quotas the volume has, so that
 * a volume without any pays one read per transaction for them.
 *
 * What a tree uses is what the U<dir> records of its directories say
 * (dir.c): every inode counts once, in the directory that is its
 * `parent` (a file with several links counts where it was last linked),
 * and a regular file counts its size rounded up to 4 KiB, holes included
 * (a sparse file counts by its size, not by the slices it has stored:
 * what a tenant can read back is what it is billed and limited for, and
 * the figure does not change when compaction or an overwrite changes
 * what is stored).  The quota'd directory itself is not counted in its
 * own quota; it counts in its parent's.
 *
 * Every change of a U<dir> record (meta_usage_add) is charged to the
 * quotas of dir and of its ancestors, gathered per transaction; at
 * commit a transaction whose net charge to some quota is positive and
 * would take it past a limit fails with -EDQUOT and changes nothing.
 * Moves inside one quota net out; an operation that frees space is
 * never refused, even over a limit that was lowered under the usage.
 * Limits are read as part of the transaction (a change of a limit
 * conflicts with operations charging it); usage is read with
 * meta_kv_peek, so that operations in one tree do not conflict with each
 * other: on a raft:// volume, operations running at once on several
 * gateways may pass a limit by as many as run at once, as the volume's
 * capacity check does.  Ancestors are found through the directories'
 * parent pointers, read with meta_kv_peek too: only a rename of a
 * directory changes them, and it bumps the dirmoves counter, which
 * charging reads as part of the transaction.
 *
 * A directory renamed from one set of quotas into another takes its
 * tree's usage along: the tree is summed from its U<dir> records in the
 * rename's transaction, at most META_QUOTA_MOVE_MAX entries, beyond
 * which the rename answers -EXDEV (as XFS and ext4 do for renames across
 * project quotas; mv then copies).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta-internal.h"

#define CNT_QUOTAS      "quotas"
#define QUOTA_DEPTH_MAX 100000 /* deeper: a cycle, corrupt metadata */
#define QUOTA_PROGRESS  4096   /* entries between progress calls */
#define QUOTA_NEST_MAX  64     /* quotas above a directory, at most */

#define L_FIGURES 0x01 /* L flags: the B record is kept */

struct meta_quota_delta {
	uint64_t ino;
	uint64_t max_bytes, max_inodes;
	bool figures;
	int64_t bytes, inodes, logical, trash;
};

/* A quota's limits record. */
struct qlim {
	uint64_t bytes, inodes; /* 0: no limit */
	bool figures;           /* B kept */
};

static void
key_quota(struct meta *m, struct meta_key *k, uint64_t ino, char what)
{
	meta_key_tag(m, k, 'Q');
	tl_put_be64(k->b + k->len, ino);
	k->b[k->len + 8] = (uint8_t)what;
	k->len += 9;
}

static void
key_origin(struct meta *m, struct meta_key *k, uint64_t ino)
{
	meta_key_tag(m, k, 'T');
	tl_put_be64(k->b + k->len, ino);
	k->len += 8;
}

static bool
limits_decode(const uint8_t *v, size_t vlen, struct qlim *l)
{
	if (vlen != 16 && vlen != 17)
		return false;
	l->bytes = tl_get_be64(v);
	l->inodes = tl_get_be64(v + 8);
	l->figures = vlen == 17 && (v[16] & L_FIGURES);
	return true;
}

static int
limits_put(struct mtxn *t, uint64_t ino, const struct qlim *l)
{
	struct meta_key k;
	uint8_t v[17];

	tl_put_be64(v, l->bytes);
	tl_put_be64(v + 8, l->inodes);
	v[16] = l->figures ? L_FIGURES : 0;
	key_quota(t->m, &k, ino, 'L');
	return meta_kv_put(t->kv, k.b, k.len, v, sizeof(v));
}

/* The limits of ino: 0 and *has, or 0 and !*has when it has none. */
static int
limits_get(struct mtxn *t, uint64_t ino, bool *has, struct qlim *l)
{
	struct meta_key k;
	const uint8_t *v;
	size_t vlen;
	int rc;

	key_quota(t->m, &k, ino, 'L');
	rc = meta_kv_get(t->kv, k.b, k.len, (const void **)&v, &vlen);
	*has = false;
	memset(l, 0, sizeof(*l));
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	if (!limits_decode(v, vlen, l))
		return -EIO;
	*has = true;
	return 0;
}

static int
figures_read(struct mtxn *t, uint64_t ino, uint64_t *logical, uint64_t *trash)
{
	struct meta_key k;

	key_quota(t->m, &k, ino, 'B');
	return meta_pair_get(t, &k, false, logical, trash);
}

static int
used_read(struct mtxn *t, uint64_t ino, bool peek, uint64_t *bytes,
	  uint64_t *inodes)
{
	struct meta_key k;

	key_quota(t->m, &k, ino, 'U');
	return meta_pair_get(t, &k, peek, bytes, inodes);
}

/* Q<ino><what> := (x, y); zeros delete it. */
static int
pair_put(struct mtxn *t, uint64_t ino, char what, uint64_t x, uint64_t y)
{
	struct meta_key k;
	uint8_t v[16];

	key_quota(t->m, &k, ino, what);
	if (x == 0 && y == 0)
		return meta_kv_del(t->kv, k.b, k.len);
	tl_put_be64(v, x);
	tl_put_be64(v + 8, y);
	return meta_kv_put(t->kv, k.b, k.len, v, 16);
}

/* Whether the volume has quotas at all (read once per transaction). */
static int
quotas_active(struct mtxn *t, bool *active)
{
	uint64_t n = 0, moves;
	int rc = 0;

	if (t->q_state == 0) {
		rc = meta_counter_get(t, CNT_QUOTAS, &n);
		/* Ancestry is read with peeks below; a directory moved
		 * meanwhile must make this transaction conflict. */
		if (rc == 0 && n > 0)
			rc = meta_counter_get(t, CNT_DIR_MOVES, &moves);
		if (rc)
			return rc;
		t->q_state = n > 0 ? 2 : 1;
	}
	*active = t->q_state == 2;
	return 0;
}

/* A quota comes or goes: a read and a put, not a commutative add, so
 * that a transaction that read the count before (and charged nothing)
 * conflicts with this one on every engine and runs again. */
static int
quotas_count(struct mtxn *t, int delta)
{
	uint64_t n;
	int rc;

	rc = meta_counter_get(t, CNT_QUOTAS, &n);
	if (rc == 0)
		rc = meta_counter_set(t, CNT_QUOTAS, n + (uint64_t)delta);
	return rc;
}

static int
parent_peek(struct mtxn *t, uint64_t ino, uint64_t *parent)
{
	struct meta_key k;
	struct inode in;
	const void *v;
	size_t vlen;
	int rc;

	meta_key_ino(t->m, &k, ino, 'I');
	rc = meta_kv_peek(t->kv, k.b, k.len, &v, &vlen);
	if (rc == 0)
		rc = meta_inode_decode(v, vlen, ino, &in);
	if (rc)
		return rc == -ENOENT ? -EIO : rc;
	*parent = in.a.parent;
	return 0;
}

typedef int (*quota_walk_cb)(struct mtxn *t, void *arg, uint64_t ino,
			     const struct qlim *l);

/* cb for dir and each of its ancestors that carries a quota. */
static int
quota_walk(struct mtxn *t, uint64_t dir, quota_walk_cb cb, void *arg)
{
	uint64_t cur = dir;
	struct qlim l;
	bool has;
	int rc, depth = 0;

	while (cur != 0) {
		if (++depth > QUOTA_DEPTH_MAX)
			return -EIO;
		rc = limits_get(t, cur, &has, &l);
		if (rc == 0 && has)
			rc = cb(t, arg, cur, &l);
		if (rc || cur == META_ROOT_INO)
			return rc;
		rc = parent_peek(t, cur, &cur);
		if (rc)
			return rc;
	}
	return 0;
}

struct charge {
	int64_t bytes, inodes, logical, trash;
};

static int
charge_cb(struct mtxn *t, void *arg, uint64_t ino, const struct qlim *l)
{
	const struct charge *c = arg;
	struct meta_quota_delta *d = NULL;

	for (size_t i = 0; i < t->nqd; i++)
		if (t->qd[i].ino == ino)
			d = &t->qd[i];
	if (!d) {
		if (t->nqd == t->capqd) {
			t->capqd = t->capqd ? 2 * t->capqd : 8;
			t->qd = tl_realloc(t->qd, t->capqd * sizeof(*t->qd));
		}
		d = &t->qd[t->nqd++];
		memset(d, 0, sizeof(*d));
		d->ino = ino;
	}
	d->max_bytes = l->bytes;
	d->max_inodes = l->inodes;
	d->figures = l->figures;
	d->bytes += c->bytes;
	d->inodes += c->inodes;
	d->logical += c->logical;
	d->trash += c->trash;
	return 0;
}

static int
charge_walk(struct mtxn *t, uint64_t dir, struct charge *c)
{
	bool active;
	int rc;

	if (dir == 0)
		return 0;
	rc = quotas_active(t, &active);
	if (rc || !active)
		return rc;
	return quota_walk(t, dir, charge_cb, c);
}

int
meta_quota_charge(struct mtxn *t, uint64_t dir, int64_t bytes, int64_t inodes)
{
	struct charge c = {bytes, inodes, 0, 0};

	return bytes == 0 && inodes == 0 ? 0 : charge_walk(t, dir, &c);
}

int
meta_quota_logical(struct mtxn *t, uint64_t dir, int64_t delta)
{
	struct charge c = {0, 0, delta, 0};

	return delta == 0 ? 0 : charge_walk(t, dir, &c);
}

int
meta_quota_file_move(struct mtxn *t, uint64_t from, uint64_t to, uint64_t size)
{
	int rc;

	rc = meta_quota_logical(t, from, -(int64_t)size);
	return rc ? rc : meta_quota_logical(t, to, (int64_t)size);
}

int
meta_quota_commit(struct mtxn *t)
{
	struct meta_key k;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < t->nqd; i++) {
		const struct meta_quota_delta *d = &t->qd[i];
		uint64_t ub, ui;

		if (t->q_nocheck || (d->bytes <= 0 && d->inodes <= 0))
			continue;
		rc = used_read(t, d->ino, true, &ub, &ui);
		if (rc)
			break;
		if (d->bytes > 0 && d->max_bytes &&
		    ub + (uint64_t)d->bytes > d->max_bytes)
			rc = -EDQUOT;
		if (d->inodes > 0 && d->max_inodes &&
		    ui + (uint64_t)d->inodes > d->max_inodes)
			rc = -EDQUOT;
	}
	for (size_t i = 0; rc == 0 && i < t->nqd; i++) {
		const struct meta_quota_delta *d = &t->qd[i];
		int64_t u[2] = {d->bytes, d->inodes};
		int64_t f[2] = {d->logical, d->trash};

		if (u[0] != 0 || u[1] != 0) {
			key_quota(t->m, &k, d->ino, 'U');
			rc = meta_kv_add(t->kv, k.b, k.len, u, 2);
		}
		if (rc == 0 && d->figures && (f[0] != 0 || f[1] != 0)) {
			key_quota(t->m, &k, d->ino, 'B');
			rc = meta_kv_add(t->kv, k.b, k.len, f, 2);
		}
	}
	return rc;
}

void
meta_quota_txn_free(struct mtxn *t)
{
	free(t->qd);
	t->qd = NULL;
	t->nqd = t->capqd = 0;
}

/* ---- files in the trash ----------------------------------------------------
 */

struct origin {
	uint8_t v[QUOTA_NEST_MAX * 8]; /* the T record */
	size_t n;
	struct charge c;
};

static int
origin_cb(struct mtxn *t, void *arg, uint64_t ino, const struct qlim *l)
{
	struct origin *o = arg;

	if (o->n == QUOTA_NEST_MAX)
		return -EMLINK; /* refused by set */
	tl_put_be64(o->v + 8 * o->n++, ino);
	return charge_cb(t, &o->c, ino, l);
}

int
meta_quota_trash_put(struct mtxn *t, const struct inode *v)
{
	struct origin o = {.n = 0};
	struct meta_key k;
	bool active;
	int rc;

	if (v->a.type != META_REG || v->a.parent == 0)
		return 0;
	rc = quotas_active(t, &active);
	if (rc || !active)
		return rc;
	o.c.logical = -(int64_t)v->a.size;
	o.c.trash = (int64_t)v->a.size;
	rc = quota_walk(t, v->a.parent, origin_cb, &o);
	if (rc || o.n == 0)
		return rc;
	key_origin(t->m, &k, v->a.ino);
	return meta_kv_put(t->kv, k.b, k.len, o.v, 8 * o.n);
}

int
meta_quota_trash_charge(struct mtxn *t, uint64_t ino, int64_t delta, bool drop)
{
	struct charge c = {0, 0, 0, delta};
	uint64_t q[QUOTA_NEST_MAX];
	struct meta_key k;
	const uint8_t *v;
	size_t vlen, n;
	int rc;

	key_origin(t->m, &k, ino);
	rc = meta_kv_get(t->kv, k.b, k.len, (const void **)&v, &vlen);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	n = vlen / 8;
	if (vlen % 8 || n > QUOTA_NEST_MAX)
		return -EIO;
	for (size_t i = 0; i < n; i++)
		q[i] = tl_get_be64(v + 8 * i);
	for (size_t i = 0; rc == 0 && delta != 0 && i < n; i++) {
		struct qlim l;
		bool has;

		/* a quota deleted since: nothing to charge */
		rc = limits_get(t, q[i], &has, &l);
		if (rc == 0 && has)
			rc = charge_cb(t, &c, q[i], &l);
	}
	if (rc == 0 && drop)
		rc = meta_kv_del(t->kv, k.b, k.len);
	return rc;
}

struct trash_sum {
	struct mtxn *t;
	uint64_t ino, bytes;
};

/* T<file>: the file's size when the record names s->ino. */
static int
trash_sum_cb(void *arg, const void *key, size_t klen, const void *val,
	     size_t vlen)
{
	const uint8_t *file = (const uint8_t *)key + klen - 8;
	struct trash_sum *s = arg;
	struct inode in;
	int rc = vlen % 8 ? -EIO : 0;

	for (size_t i = 0; rc == 0 && i < vlen; i += 8) {
		if (tl_get_be64((const uint8_t *)val + i) != s->ino)
			continue;
		rc = meta_inode_get(s->t, tl_get_be64(file), &in);
		if (rc == -ENOENT)
			return 0; /* released: its T record goes too */
		if (rc)
			return rc;
		if (in.a.type == META_REG)
			s->bytes += in.a.size;
		return 0;
	}
	return rc;
}

/* The trash bytes of quota ino, from the T records. */
static int
trash_sum(struct mtxn *t, uint64_t ino, uint64_t *bytes)
{
	struct trash_sum s = {t, ino, 0};
	int rc = meta_tag_scan(t, 'T', trash_sum_cb, &s);

	*bytes = s.bytes;
	return rc;
}

/* ---- what a tree uses ------------------------------------------------------
 */

struct tree {
	struct mtxn *t;
	uint64_t max_entries; /* 0: no bound; passed: -EXDEV */
	uint64_t entries;
	uint64_t bytes, inodes, logical;
	uint64_t trash;  /* the trash directory, 0: none */
	bool dir_trash;  /* the one being listed is a trash hour */
	uint64_t *queue; /* directories still to list */
	size_t head, n, cap;
	uint64_t dir; /* the one being listed */
	void (*progress)(void *arg, uint64_t entries);
	void *arg;
};

static void
tree_push(struct tree *w, uint64_t ino)
{
	if (w->head > 0 && w->n == w->cap) {
		memmove(w->queue, w->queue + w->head,
			(w->n - w->head) * sizeof(*w->queue));
		w->n -= w->head;
		w->head = 0;
	}
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 64;
		w->queue = tl_realloc(w->queue, w->cap * sizeof(*w->queue));
	}
	w->queue[w->n++] = ino;
}

static int
tree_entry_cb(void *arg, const void *key, size_t klen, const void *val,
	      size_t vlen)
{
	struct tree *w = arg;
	const uint8_t *v = val;
	struct inode in;
	uint64_t ino;
	int rc;

	(void)key;
	(void)klen;
	if (vlen < 10)
		return -EIO;
	ino = tl_get_be64(v);
	w->entries++;
	if (w->max_entries && w->entries > w->max_entries)
		return -EXDEV;
	if (w->progress && w->entries % QUOTA_PROGRESS == 0)
		w->progress(w->arg, w->entries);
	rc = meta_inode_get(w->t, ino, &in);
	if (rc)
		return rc == -ENOENT ? -EIO : rc;
	if (in.a.parent == w->dir) {
		w->inodes++;
		if (in.a.type == META_REG) {
			w->bytes += round4k(in.a.size);
			if (!w->dir_trash)
				w->logical += in.a.size;
		}
	}
	if (v[8] == META_DIR)
		tree_push(w, ino);
	return 0;
}

/* Count the usage of the tree below root from its inodes (root's entries
 * and theirs, down to the bottom; root itself not counted). */
static int
tree_usage(struct tree *w, uint64_t root)
{
	struct meta_key s, e;
	struct inode d;
	int rc;

	rc = meta_trash_ino(w->t, &w->trash);
	if (rc == 0)
		tree_push(w, root);
	while (rc == 0 && w->head < w->n) {
		w->dir = w->queue[w->head++];
		w->dir_trash = false;
		if (w->trash != 0 && w->dir != w->trash) {
			rc = meta_inode_get(w->t, w->dir, &d);
			w->dir_trash = rc == 0 && d.a.parent == w->trash;
		}
		meta_key_ino(w->t->m, &s, w->dir, 'O');
		meta_key_ino(w->t->m, &e, w->dir, 'P');
		if (rc == 0)
			rc = meta_kv_scan(w->t->kv, s.b, s.len, e.b, e.len,
					  tree_entry_cb, w);
	}
	free(w->queue);
	w->queue = NULL;
	return rc;
}

/* ---- rename of a directory -------------------------------------------------
 */

struct qlist {
	uint64_t ino[QUOTA_NEST_MAX];
	size_t n;
};

static int
list_cb(struct mtxn *t, void *arg, uint64_t ino, const struct qlim *l)
{
	struct qlist *q = arg;

	(void)t;
	(void)l;
	if (q->n == TL_ARRAY_SIZE(q->ino))
		return -EMLINK; /* 64 nested quotas: refused by set */
	q->ino[q->n++] = ino;
	return 0;
}

int
meta_quota_move_dir(struct mtxn *t, uint64_t ino, uint64_t from, uint64_t to)
{
	struct tree w = {.t = t, .max_entries = META_QUOTA_MOVE_MAX};
	struct qlist a = {.n = 0}, b = {.n = 0};
	struct charge c;
	bool active;
	int rc;

	rc = quotas_active(t, &active);
	if (rc || !active || from == to)
		return rc;
	rc = quota_walk(t, from, list_cb, &a);
	if (rc == 0)
		rc = quota_walk(t, to, list_cb, &b);
	if (rc)
		return rc;
	if (a.n == b.n && memcmp(a.ino, b.ino, a.n * sizeof(a.ino[0])) == 0)
		return 0; /* the same quotas above: nothing moves */
	rc = tree_usage(&w, ino);
	c = (struct charge){-(int64_t)w.bytes, -(int64_t)w.inodes,
			    -(int64_t)w.logical, 0};
	if (rc == 0)
		rc = charge_walk(t, from, &c);
	c = (struct charge){(int64_t)w.bytes, (int64_t)w.inodes,
			    (int64_t)w.logical, 0};
	if (rc == 0)
		rc = charge_walk(t, to, &c);
	return rc;
}

int
meta_quota_drop(struct mtxn *t, uint64_t ino)
{
	struct meta_key k;
	struct qlim l;
	bool has, active;
	int rc;

	rc = quotas_active(t, &active);
	if (rc || !active)
		return rc;
	rc = limits_get(t, ino, &has, &l);
	if (rc || !has)
		return rc;
	key_quota(t->m, &k, ino, 'L');
	rc = meta_kv_del(t->kv, k.b, k.len);
	key_quota(t->m, &k, ino, 'U');
	if (rc == 0)
		rc = meta_kv_del(t->kv, k.b, k.len);
	key_quota(t->m, &k, ino, 'B');
	if (rc == 0)
		rc = meta_kv_del(t->kv, k.b, k.len);
	if (rc == 0)
		rc = quotas_count(t, -1);
	return rc;
}

/* ---- the public calls ------------------------------------------------------
 */

static int
dir_check(struct mtxn *t, uint64_t ino)
{
	struct inode in;
	int rc;

	rc = meta_inode_get(t, ino, &in);
	if (rc == 0 && in.a.type != META_DIR)
		rc = -ENOTDIR;
	return rc;
}

/* Quotas nested in quotas: refuse a 64th level. */
static int
nesting_check(struct mtxn *t, uint64_t ino)
{
	struct qlist l = {.n = 0};
	int rc;

	rc = quota_walk(t, ino, list_cb, &l);
	if (rc == 0 && l.n >= TL_ARRAY_SIZE(l.ino) - 1)
		rc = -EMLINK;
	return rc;
}

static int get_txn(struct mtxn *t, uint64_t ino, struct meta_quota *q);

/* The arguments of set, delete and check, for their transactions. */
struct quota_op {
	uint64_t ino;
	const struct meta_quota *q; /* set */
	struct meta_quota *out;     /* set */
	bool repair;                /* check */
	struct meta_quota_fix *fix; /* check */
	void (*progress)(void *arg, uint64_t entries);
	void *arg;
};

/* What ino's tree uses, counted from the inodes and the T records. */
static int
count_txn(struct mtxn *t, const struct quota_op *o, struct tree *w,
	  uint64_t *trash)
{
	int rc;

	*w = (struct tree){.t = t, .progress = o->progress, .arg = o->arg};
	rc = tree_usage(w, o->ino);
	if (rc == 0)
		rc = trash_sum(t, o->ino, trash);
	return rc;
}

static int
set_txn(struct mtxn *t, void *arg)
{
	const struct quota_op *o = arg;
	const struct meta_quota *q = o->q;
	struct meta_quota *out = o->out;
	struct qlim l = {q->max_bytes, q->max_inodes, true}, old;
	struct tree w;
	uint64_t trash = 0;
	bool has;
	int rc;

	rc = dir_check(t, q->ino);
	if (rc == 0)
		rc = limits_get(t, q->ino, &has, &old);
	if (rc)
		return rc;
	if (has) { /* its usage and figures stay as they are */
		l.figures = old.figures;
		rc = limits_put(t, q->ino, &l);
		if (rc == 0)
			rc = get_txn(t, q->ino, out);
		return rc;
	}
	rc = nesting_check(t, q->ino);
	if (rc == 0)
		rc = count_txn(t, o, &w, &trash);
	if (rc == 0)
		rc = pair_put(t, q->ino, 'U', w.bytes, w.inodes);
	if (rc == 0)
		rc = pair_put(t, q->ino, 'B', w.logical, trash);
	if (rc == 0)
		rc = quotas_count(t, 1);
	if (rc == 0)
		rc = limits_put(t, q->ino, &l);
	if (rc == 0)
		rc = get_txn(t, q->ino, out);
	return rc;
}

int
meta_quota_set(struct meta *m, const struct meta_quota *q,
	       void (*progress)(void *arg, uint64_t entries), void *arg,
	       struct meta_quota *out)
{
	struct quota_op o = {.ino = q->ino,
			     .q = q,
			     .out = out,
			     .progress = progress,
			     .arg = arg};

	return meta_txn_run(m, false, set_txn, &o);
}

static int
get_txn(struct mtxn *t, uint64_t ino, struct meta_quota *q)
{
	struct qlim l;
	bool has;
	int rc;

	memset(q, 0, sizeof(*q));
	q->ino = ino;
	rc = limits_get(t, ino, &has, &l);
	if (rc == 0 && !has)
		rc = -ENOENT;
	if (rc)
		return rc;
	q->max_bytes = l.bytes;
	q->max_inodes = l.inodes;
	q->has_figures = l.figures;
	rc = used_read(t, ino, false, &q->used_bytes, &q->used_inodes);
	if (rc == 0 && l.figures)
		rc = figures_read(t, ino, &q->logical_bytes, &q->trash_bytes);
	return rc;
}

int
meta_quota_get(struct meta *m, uint64_t ino, struct meta_quota *q)
{
	struct mtxn t;
	bool active;
	int rc;

	memset(q, 0, sizeof(*q));
	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	/* FSSTAT asks for every export: one read on a volume without. */
	rc = quotas_active(&t, &active);
	if (rc == 0)
		rc = active ? get_txn(&t, ino, q) : -ENOENT;
	return meta_txn_end(&t, rc);
}

static int
delete_txn(struct mtxn *t, void *arg)
{
	const struct quota_op *o = arg;
	struct qlim l;
	bool has;
	int rc;

	rc = limits_get(t, o->ino, &has, &l);
	if (rc == 0 && !has)
		rc = -ENOENT;
	if (rc == 0)
		rc = meta_quota_drop(t, o->ino);
	return rc;
}

int
meta_quota_delete(struct meta *m, uint64_t ino)
{
	struct quota_op o = {.ino = ino};

	return meta_txn_run(m, false, delete_txn, &o);
}

struct list_ctx {
	struct meta_quota q;
	bool have;  /* q.ino's records are being read */
	bool limit; /* and it has an L record */
	meta_quota_cb cb;
	void *arg;
	size_t pfxlen;
};

static int
list_flush(struct list_ctx *l)
{
	int rc = 0;

	if (l->have && l->limit) {
		if (!l->q.has_figures)
			l->q.logical_bytes = l->q.trash_bytes = 0;
		rc = l->cb(l->arg, &l->q);
	}
	l->have = l->limit = false;
	return rc;
}

static int
list_scan_cb(void *arg, const void *key, size_t klen, const void *val,
	     size_t vlen)
{
	struct list_ctx *l = arg;
	const uint8_t *k = (const uint8_t *)key + l->pfxlen;
	const uint8_t *v = val;
	struct qlim lim;
	uint64_t ino;
	int rc = 0;

	if (klen != l->pfxlen + 10)
		return 0;
	ino = tl_get_be64(k + 1);
	if (l->have && l->q.ino != ino)
		rc = list_flush(l);
	if (rc)
		return rc;
	if (!l->have) {
		memset(&l->q, 0, sizeof(l->q));
		l->q.ino = ino;
		l->have = true;
	}
	if (k[9] == 'L' && limits_decode(v, vlen, &lim)) {
		l->q.max_bytes = lim.bytes;
		l->q.max_inodes = lim.inodes;
		l->q.has_figures = lim.figures;
		l->limit = true;
	} else if (k[9] == 'U' && vlen == 16) {
		l->q.used_bytes = tl_get_be64(v);
		l->q.used_inodes = tl_get_be64(v + 8);
	} else if (k[9] == 'B' && vlen == 16) {
		l->q.logical_bytes = tl_get_be64(v);
		l->q.trash_bytes = tl_get_be64(v + 8);
	}
	return 0;
}

int
meta_quota_list(struct meta *m, meta_quota_cb cb, void *arg)
{
	struct list_ctx l = {.cb = cb, .arg = arg, .pfxlen = m->pfxlen};
	struct meta_key s, e;
	struct mtxn t;
	int rc;

	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	meta_key_tag(m, &s, 'Q');
	meta_key_tag(m, &e, 'R');
	rc = meta_kv_scan(t.kv, s.b, s.len, e.b, e.len, list_scan_cb, &l);
	if (rc == 0)
		rc = list_flush(&l);
	if (rc > 0)
		rc = 0;
	return meta_txn_end(&t, rc);
}

struct inos {
	uint64_t *v;
	size_t n, cap;
};

static int
inos_cb(void *arg, const struct meta_quota *q)
{
	struct inos *l = arg;

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->v = tl_realloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = q->ino;
	return 0;
}

int
meta_quota_inos(struct meta *m, uint64_t **inos, size_t *n)
{
	struct inos l = {NULL, 0, 0};
	int rc;

	rc = meta_quota_list(m, inos_cb, &l);
	if (rc) {
		free(l.v);
		l.v = NULL;
		l.n = 0;
	}
	*inos = l.v;
	*n = l.n;
	return rc;
}

static int
check_txn(struct mtxn *t, void *arg)
{
	const struct quota_op *o = arg;
	struct meta_quota_fix *fix = o->fix;
	struct qlim l;
	struct tree w;
	uint64_t trash;
	int rc;

	memset(fix, 0, sizeof(*fix));
	rc = get_txn(t, o->ino, &fix->q);
	if (rc == 0)
		rc = count_txn(t, o, &w, &trash);
	if (rc)
		return rc;
	fix->actual_bytes = w.bytes;
	fix->actual_inodes = w.inodes;
	fix->actual_logical = w.logical;
	fix->actual_trash = trash;
	fix->entries = w.entries;
	fix->drift = w.bytes != fix->q.used_bytes ||
		     w.inodes != fix->q.used_inodes || !fix->q.has_figures ||
		     w.logical != fix->q.logical_bytes ||
		     trash != fix->q.trash_bytes;
	if (!fix->drift || !o->repair)
		return 0;
	rc = pair_put(t, o->ino, 'U', w.bytes, w.inodes);
	if (rc == 0)
		rc = pair_put(t, o->ino, 'B', w.logical, trash);
	l = (struct qlim){fix->q.max_bytes, fix->q.max_inodes, true};
	if (rc == 0 && !fix->q.has_figures)
		rc = limits_put(t, o->ino, &l);
	return rc;
}

int
meta_quota_check(struct meta *m, uint64_t ino, bool repair,
		 void (*progress)(void *arg, uint64_t entries), void *arg,
		 struct meta_quota_fix *fix)
{
	struct quota_op o = {.ino = ino,
			     .repair = repair,
			     .fix = fix,
			     .progress = progress,
			     .arg = arg};
	int rc;

	memset(fix, 0, sizeof(*fix));
	rc = meta_txn_run(m, !repair, check_txn, &o);
	fix->repaired = rc == 0 && repair && fix->drift;
	return rc;
}

struct room {
	int64_t bytes, inodes;
};

static int
room_cb(struct mtxn *t, void *arg, uint64_t ino, const struct qlim *l)
{
	const struct room *r = arg;
	uint64_t ub, ui;
	int rc;

	rc = used_read(t, ino, true, &ub, &ui);
	if (rc)
		return rc;
	if (r->bytes > 0 && l->bytes && ub + (uint64_t)r->bytes > l->bytes)
		return -EDQUOT;
	if (r->inodes > 0 && l->inodes && ui + (uint64_t)r->inodes > l->inodes)
		return -EDQUOT;
	return 0;
}

int
meta_quota_write_room(struct meta *m, uint64_t ino, uint64_t end)
{
	struct room r = {0, 0};
	struct inode in;
	struct mtxn t;
	bool active;
	int rc;

	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	rc = quotas_active(&t, &active);
	if (rc == 0 && active)
		rc = meta_inode_get(&t, ino, &in);
	if (rc == 0 && active && end > in.a.size) {
		r.bytes = (int64_t)(round4k(end) - round4k(in.a.size));
		rc = quota_walk(&t, in.a.parent, room_cb, &r);
	}
	return meta_txn_end(&t, rc);
}

/* ---- the path of a directory -----------------------------------------------
 */

struct name_find {
	uint64_t ino;
	size_t off; /* where names start in a dentry key */
	char name[META_NAME_MAX + 1];
	bool found;
};

static int
name_find_cb(void *arg, const void *key, size_t klen, const void *val,
	     size_t vlen)
{
	struct name_find *f = arg;

	if (vlen < 17 || klen <= f->off ||
	    tl_get_be64((const uint8_t *)val + 1) != f->ino)
		return 0;
	memcpy(f->name, (const uint8_t *)key + f->off, klen - f->off);
	f->name[klen - f->off] = 0;
	f->found = true;
	return 1;
}

static int
path_txn(struct mtxn *t, uint64_t ino, char *buf, size_t len)
{
	struct meta_key s, e;
	struct inode in;
	size_t pos = len - 1;
	int rc, depth = 0;

	buf[pos] = 0;
	for (uint64_t cur = ino; cur != META_ROOT_INO;) {
		struct name_find f = {.ino = cur};
		size_t n;

		if (++depth > QUOTA_DEPTH_MAX)
			return -EIO;
		rc = meta_inode_get(t, cur, &in);
		if (rc)
			return rc;
		if (in.a.parent == 0)
			return -ENOENT;
		meta_key_ino(t->m, &s, in.a.parent, 'D');
		meta_key_ino(t->m, &e, in.a.parent, 'E');
		f.off = s.len;
		rc = meta_kv_scan(t->kv, s.b, s.len, e.b, e.len, name_find_cb,
				  &f);
		if (rc)
			return rc;
		if (!f.found)
			return -ENOENT;
		n = strlen(f.name);
		if (n + 1 > pos)
			return -ENAMETOOLONG;
		pos -= n;
		memcpy(buf + pos, f.name, n);
		buf[--pos] = '/';
		cur = in.a.parent;
	}
	if (pos == len - 1)
		buf[--pos] = '/';
	memmove(buf, buf + pos, len - pos);
	return 0;
}

int
meta_path(struct meta *m, uint64_t ino, char *buf, size_t len)
{
	struct mtxn t;
	int rc;

	if (len < 2)
		return -ENAMETOOLONG;
	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	rc = path_txn(&t, ino, buf, len);
	return meta_txn_end(&t, rc);
}
