/*
 * fsck.c - check (and repair what is certain of) a volume's metadata.
 *
 * Two ordered scans in one read transaction:
 *   pass 1 reads every record but the directory entries: inodes, chunks
 *          (slice references), link records, K refcounts, R released
 *          slices, L slices dropped by compaction, D deleted files, U
 *          usage, C counters;
 *   pass 2 walks the dentries and the readdir index of one directory at
 *          a time (A<dir>D... sorts before A<dir>O...), counting links,
 *          per directory for files that have several.
 * Then the counts are compared with what is stored.  Repairs are
 * gathered in memory and applied in one write transaction at the end, so
 * an interrupted repair changes nothing.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta-internal.h"

#define FSCK_MSG_MAX  20   /* messages per category */
#define FSCK_PROGRESS 4096 /* items between progress calls */

/* ---- hash tables keyed by u64 ------------------------------------------- */

struct fino {
	uint64_t ino; /* 0: empty slot */
	uint64_t size, parent, next_cookie;
	uint64_t u_bytes, u_inodes; /* computed usage (directories) */
	uint64_t s_bytes, s_inodes; /* stored usage */
	uint64_t named_in;          /* a directory naming it */
	uint64_t first_in;          /* the first directory naming it */
	uint32_t nlink, links, subdirs;
	uint8_t type;
	bool have, deleted, chunks, has_u, parent_ok, dirty;
};

/* A link record A<ino>L<dir> as stored, and the links counted. */
struct flink {
	uint64_t ino; /* 0: empty slot */
	uint64_t dir;
	uint32_t stored, counted;
	bool have, bad, fix;
};

struct fslice {
	uint64_t id; /* 0: empty slot */
	uint32_t size;
	uint32_t refs;
	uint64_t k, owner;
	bool has_k, released;
	bool has_inline;     /* an I record: inline bytes */
	uint64_t inline_len; /* its length */
};

struct itab {
	struct fino *v;
	size_t cap, n;
};

struct stab {
	struct fslice *v;
	size_t cap, n;
};

struct ltab {
	struct flink *v;
	size_t cap, n;
};

static size_t
hash64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x;
}

static struct fino *
itab_get(struct itab *t, uint64_t ino, bool add)
{
	if (add && (t->n + 1) * 2 > t->cap) {
		struct itab nt = {NULL, t->cap ? t->cap * 2 : 1024, 0};

		nt.v = tl_calloc(nt.cap, sizeof(*nt.v));
		for (size_t i = 0; i < t->cap; i++)
			if (t->v[i].ino)
				*itab_get(&nt, t->v[i].ino, true) = t->v[i];
		free(t->v);
		*t = nt;
	}
	if (t->cap == 0)
		return NULL;
	for (size_t i = hash64(ino) & (t->cap - 1);;
	     i = (i + 1) & (t->cap - 1)) {
		if (t->v[i].ino == ino)
			return &t->v[i];
		if (t->v[i].ino == 0) {
			if (!add)
				return NULL;
			t->v[i].ino = ino;
			t->n++;
			return &t->v[i];
		}
	}
}

static struct fslice *
stab_get(struct stab *t, uint64_t id, uint32_t size, bool add)
{
	size_t h = hash64(id ^ ((uint64_t)size << 40));

	if (add && (t->n + 1) * 2 > t->cap) {
		struct stab nt = {NULL, t->cap ? t->cap * 2 : 1024, 0};

		nt.v = tl_calloc(nt.cap, sizeof(*nt.v));
		for (size_t i = 0; i < t->cap; i++)
			if (t->v[i].id)
				*stab_get(&nt, t->v[i].id, t->v[i].size, true) =
					t->v[i];
		free(t->v);
		*t = nt;
		h = hash64(id ^ ((uint64_t)size << 40));
	}
	if (t->cap == 0)
		return NULL;
	for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		struct fslice *s = &t->v[i];

		if (s->id == id && s->size == size)
			return s;
		if (s->id == 0) {
			if (!add)
				return NULL;
			s->id = id;
			s->size = size;
			t->n++;
			return s;
		}
	}
}

static struct flink *
ltab_get(struct ltab *t, uint64_t ino, uint64_t dir)
{
	if ((t->n + 1) * 2 > t->cap) {
		struct ltab nt = {NULL, t->cap ? t->cap * 2 : 256, 0};

		nt.v = tl_calloc(nt.cap, sizeof(*nt.v));
		for (size_t i = 0; i < t->cap; i++)
			if (t->v[i].ino)
				*ltab_get(&nt, t->v[i].ino, t->v[i].dir) =
					t->v[i];
		free(t->v);
		*t = nt;
	}
	for (size_t i = hash64(ino ^ hash64(dir)) & (t->cap - 1);;
	     i = (i + 1) & (t->cap - 1)) {
		struct flink *l = &t->v[i];

		if (l->ino == ino && l->dir == dir)
			return l;
		if (l->ino == 0) {
			l->ino = ino;
			l->dir = dir;
			t->n++;
			return l;
		}
	}
}

/* ---- the run ------------------------------------------------------------- */

/* A repair action: put (vlen may be 0) or delete of one key. */
struct action {
	bool del;
	size_t klen, vlen;
	uint8_t *kv; /* key then value */
};

struct fsck {
	struct meta *m;
	const struct meta_fsck_opts *o;
	struct meta_fsck_report *r;
	struct itab inodes;
	struct stab slices;
	struct ltab links;
	bool dir_moved; /* a directory's parent is repaired */
	uint64_t c_bytes, c_inodes, c_pending; /* stored counters */
	/* the billing counters as stored (c_*) and counted (n_*) */
	uint64_t c_logical, c_stored, c_trash, c_pendbytes, trash_ino;
	uint64_t n_logical, n_stored, n_trash, n_pendbytes;
	bool fix_billing;
	uint64_t epoch; /* CNT_SESSIONS at the check */
	uint64_t n_deleted, n_released, n_compacted;
	uint64_t items;
	struct action *act;
	size_t nact, capact;
	/* pass 2: the directory being walked */
	struct fino *dir;
	uint64_t dir_ino;
	struct dent *dents;
	size_t ndents, capdents;
	uint64_t *ocookies; /* O keys seen in the directory */
	size_t nocook, capocook;
	bool dir_index_bad;
};

struct dent {
	char name[META_NAME_MAX + 1];
	uint64_t ino, cookie;
	uint8_t type, stored_type;
	bool dangling, o_seen;
};

static const char *const cat_names[META_FSCK_NCAT] = {
	"undecodable records",
	"dentries naming a missing inode",
	"dentries with the wrong file type",
	"inodes with a wrong link count",
	"inodes no directory names (orphans)",
	"inodes with a wrong parent pointer",
	"readdir index entries out of step",
	"directories with wrong usage figures",
	"volume counters that differ",
	"slices with a wrong reference count",
	"deletion records of data still in use",
	"leaked data (no inode refers to it)",
	"slices with missing or wrong-size blocks",
};

const char *
meta_fsck_cat_name(enum meta_fsck_cat c)
{
	return (unsigned)c < META_FSCK_NCAT ? cat_names[c] : "?";
}

static void __attribute__((format(printf, 3, 4)))
problem(struct fsck *f, enum meta_fsck_cat c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	f->r->problems++;
	if (f->r->found[c]++ >= FSCK_MSG_MAX || !f->o->problem)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	f->o->problem(f->o->arg, c, buf);
}

static void
tick(struct fsck *f, const char *phase)
{
	if (++f->items % FSCK_PROGRESS == 0 && f->o->progress)
		f->o->progress(f->o->arg, phase, f->items);
}

static void
act_add(struct fsck *f, bool del, const void *k, size_t klen, const void *v,
	size_t vlen)
{
	struct action *a;

	if (!f->o->repair)
		return;
	if (f->nact == f->capact) {
		f->capact = f->capact ? f->capact * 2 : 64;
		f->act = tl_realloc(f->act, f->capact * sizeof(*f->act));
	}
	a = &f->act[f->nact++];
	a->del = del;
	a->klen = klen;
	a->vlen = vlen;
	a->kv = tl_malloc(klen + vlen + 1);
	memcpy(a->kv, k, klen);
	if (vlen)
		memcpy(a->kv + klen, v, vlen);
}

/* ---- pass 1 -------------------------------------------------------------- */

static int
cmp_idsize(const void *a, const void *b)
{
	const uint8_t *x = a, *y = b;

	return memcmp(x, y, 12); /* id be64, size be32: numeric order */
}

static void
p1_chunk(struct fsck *f, uint64_t ino, const uint8_t *v, size_t vlen)
{
	size_t n = vlen / SLICE_REC;
	struct fino *in = itab_get(&f->inodes, ino, true);
	uint8_t *ids = tl_malloc((n ? n : 1) * 12);
	size_t u = 0;

	in->chunks = true;
	f->r->chunks++;
	if (vlen % SLICE_REC)
		problem(f, META_FSCK_BAD_RECORD,
			"inode %" PRIu64 ": chunk "
			"record of %zu bytes (not a multiple of %d)",
			ino, vlen, SLICE_REC);
	for (size_t i = 0; i < n; i++)
		if (tl_get_be64(v + i * SLICE_REC) != 0)
			memcpy(ids + 12 * u++, v + i * SLICE_REC, 12);
	/* A slice recorded twice in one chunk is one reference (see
	 * chunk_release). */
	qsort(ids, u, 12, cmp_idsize);
	for (size_t i = 0; i < u; i++) {
		struct fslice *sl;

		if (i > 0 && memcmp(ids + 12 * (i - 1), ids + 12 * i, 12) == 0)
			continue;
		sl = stab_get(&f->slices, tl_get_be64(ids + 12 * i),
			      tl_get_be32(ids + 12 * i + 8), true);
		if (sl->refs++ == 0)
			sl->owner = ino;
	}
	free(ids);
}

static int
p1_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct fsck *f = arg;
	const uint8_t *k = key, *v = val;
	size_t p = f->m->pfxlen;
	struct fslice *sl;
	struct fino *in;
	struct inode node;

	tick(f, "reading records");
	if (klen <= p)
		return 0;
	switch (k[p]) {
	case 'A':
		if (klen < p + 10)
			break;
		if (k[p + 9] == 'I' && klen == p + 10) {
			uint64_t ino = tl_get_be64(k + p + 1);

			if (meta_inode_decode(v, vlen, ino, &node)) {
				problem(f, META_FSCK_BAD_RECORD,
					"inode %" PRIu64
					": undecodable attributes",
					ino);
				break;
			}
			in = itab_get(&f->inodes, ino, true);
			in->have = true;
			in->type = node.a.type;
			in->nlink = node.a.nlink;
			in->size = node.a.size;
			in->parent = node.a.parent;
			in->next_cookie = node.next_cookie;
			f->r->inodes++;
			f->r->dirs += node.a.type == META_DIR;
		} else if (k[p + 9] == 'C' && klen == p + 14) {
			p1_chunk(f, tl_get_be64(k + p + 1), v, vlen);
		} else if (k[p + 9] == 'L' && klen == p + 18) {
			struct flink *l =
				ltab_get(&f->links, tl_get_be64(k + p + 1),
					 tl_get_be64(k + p + 10));

			l->have = true;
			l->bad = vlen != 4;
			l->stored = vlen == 4 ? tl_get_be32(v) : 0;
		}
		break;
	case 'K':
	case 'R':
		if (klen != p + 13)
			break;
		sl = stab_get(&f->slices, tl_get_be64(k + p + 1),
			      tl_get_be32(k + p + 9), true);
		if (k[p] == 'R') {
			sl->released = true;
			f->n_released++;
		} else if (vlen == 8) {
			sl->has_k = true;
			sl->k = tl_get_be64(v);
		} else {
			problem(f, META_FSCK_BAD_RECORD,
				"slice %" PRIu64 ": refcount of %zu bytes",
				sl->id, vlen);
		}
		break;
	case 'I':
		/* An inline slice's bytes (data.c). */
		if (klen != p + 13)
			break;
		sl = stab_get(&f->slices, tl_get_be64(k + p + 1),
			      tl_get_be32(k + p + 9), true);
		sl->has_inline = true;
		sl->inline_len = vlen;
		break;
	case 'L':
		/* Dropped by compaction, released after the grace period:
		 * a reference until then. */
		if (klen != p + 21)
			break;
		sl = stab_get(&f->slices, tl_get_be64(k + p + 9),
			      tl_get_be32(k + p + 17), true);
		sl->refs++;
		f->n_compacted++;
		break;
	case 'D':
		if (klen != p + 17)
			break;
		itab_get(&f->inodes, tl_get_be64(k + p + 1), true)->deleted =
			true;
		f->n_deleted++;
		f->n_pendbytes += tl_get_be64(k + p + 9);
		break;
	case 'U':
		if (klen != p + 9 || vlen != 16)
			break;
		in = itab_get(&f->inodes, tl_get_be64(k + p + 1), true);
		in->has_u = true;
		in->s_bytes = tl_get_be64(v);
		in->s_inodes = tl_get_be64(v + 8);
		break;
	case 'C':
		if (vlen != 8)
			break;
#define IS_CNT(n)                                                              \
	(klen == p + 1 + strlen(n) && !memcmp(k + p + 1, n, strlen(n)))
		if (IS_CNT(CNT_USED_BYTES))
			f->c_bytes = tl_get_be64(v);
		else if (IS_CNT(CNT_USED_INODES))
			f->c_inodes = tl_get_be64(v);
		else if (IS_CNT(CNT_PENDING))
			f->c_pending = tl_get_be64(v);
		else if (IS_CNT(CNT_LOGICAL))
			f->c_logical = tl_get_be64(v);
		else if (IS_CNT(CNT_STORED))
			f->c_stored = tl_get_be64(v);
		else if (IS_CNT(CNT_TRASH_BYTES))
			f->c_trash = tl_get_be64(v);
		else if (IS_CNT(CNT_PENDING_BYTES))
			f->c_pendbytes = tl_get_be64(v);
		else if (IS_CNT(CNT_TRASH_INO))
			f->trash_ino = tl_get_be64(v);
#undef IS_CNT
		break;
	}
	return 0;
}

/* ---- pass 2: one directory at a time ------------------------------------- */

static const char *
type_name(uint8_t t)
{
	static const char *const n[] = {
		"?",           "file",    "directory", "block device",
		"char device", "symlink", "socket",    "fifo"};

	return t < 8 ? n[t] : "?";
}

static void
o_value(const struct dent *d, uint8_t *v, size_t *vlen)
{
	size_t len = strlen(d->name);

	tl_put_be64(v, d->ino);
	v[8] = d->type;
	memcpy(v + 9, d->name, len);
	*vlen = 9 + len;
}

/* Rebuild the readdir index of the directory just walked: drop every O
 * key seen, write one per live dentry, giving a fresh cookie to a dentry
 * whose cookie another one already uses. */
static void
dir_reindex(struct fsck *f)
{
	uint8_t v[17 + META_NAME_MAX];
	struct meta_key k;
	size_t vlen;

	for (size_t i = 0; i < f->nocook; i++) {
		meta_key_order(f->m, &k, f->dir_ino, f->ocookies[i]);
		act_add(f, true, k.b, k.len, NULL, 0);
	}
	for (size_t i = 0; i < f->ndents; i++) {
		struct dent *d = &f->dents[i];
		bool dup = d->cookie < 3;

		if (d->dangling)
			continue;
		for (size_t j = 0; j < i && !dup; j++)
			dup = !f->dents[j].dangling &&
			      f->dents[j].cookie == d->cookie;
		if (dup && f->dir) {
			d->cookie = TL_MAX(f->dir->next_cookie, 3);
			f->dir->next_cookie = d->cookie + 1;
			f->dir->dirty = true;
			v[0] = d->type;
			tl_put_be64(v + 1, d->ino);
			tl_put_be64(v + 9, d->cookie);
			meta_key_dentry(f->m, &k, f->dir_ino, d->name,
					strlen(d->name));
			act_add(f, false, k.b, k.len, v, 17);
		}
		o_value(d, v, &vlen);
		meta_key_order(f->m, &k, f->dir_ino, d->cookie);
		act_add(f, false, k.b, k.len, v, vlen);
	}
}

static void
dir_finish(struct fsck *f)
{
	if (f->dir_ino == 0)
		return;
	for (size_t i = 0; i < f->ndents; i++) {
		struct dent *d = &f->dents[i];

		if (d->dangling || d->o_seen)
			continue;
		problem(f, META_FSCK_INDEX,
			"directory %" PRIu64 ": entry "
			"'%s' is missing from the readdir index",
			f->dir_ino, d->name);
		f->dir_index_bad = true;
	}
	for (size_t i = 0; i < f->ndents && f->dir; i++)
		if (!f->dents[i].dangling &&
		    f->dents[i].cookie >= f->dir->next_cookie) {
			problem(f, META_FSCK_INDEX,
				"directory %" PRIu64
				": entry '%s' has cookie %" PRIu64 " but the "
				"next cookie is %" PRIu64,
				f->dir_ino, f->dents[i].name,
				f->dents[i].cookie, f->dir->next_cookie);
			f->dir->next_cookie = f->dents[i].cookie + 1;
			f->dir->dirty = true;
		}
	if (f->dir_index_bad)
		dir_reindex(f);
	f->dir_ino = 0;
	f->dir = NULL;
	f->ndents = f->nocook = 0;
	f->dir_index_bad = false;
}

static void
p2_dentry(struct fsck *f, const uint8_t *k, size_t klen, const uint8_t *v,
	  size_t vlen)
{
	size_t p = f->m->pfxlen, nlen = klen - p - 10;
	struct fino *c;
	struct dent *d;

	if (vlen < 17 || nlen == 0 || nlen > META_NAME_MAX) {
		problem(f, META_FSCK_BAD_RECORD,
			"directory %" PRIu64 ": undecodable entry", f->dir_ino);
		return;
	}
	if (f->ndents == f->capdents) {
		f->capdents = f->capdents ? f->capdents * 2 : 64;
		f->dents =
			tl_realloc(f->dents, f->capdents * sizeof(*f->dents));
	}
	d = &f->dents[f->ndents++];
	memset(d, 0, sizeof(*d));
	memcpy(d->name, k + p + 10, nlen);
	d->type = d->stored_type = v[0];
	d->ino = tl_get_be64(v + 1);
	d->cookie = tl_get_be64(v + 9);
	f->r->dentries++;
	if (!f->dir || !f->dir->have || f->dir->type != META_DIR)
		problem(f, META_FSCK_LEAK,
			"entry '%s' lies in %" PRIu64
			", which is not a live directory",
			d->name, f->dir_ino);
	c = itab_get(&f->inodes, d->ino, false);
	if (!c || !c->have) {
		problem(f, META_FSCK_DANGLING,
			"directory %" PRIu64 ": entry "
			"'%s' names inode %" PRIu64 ", which does not exist",
			f->dir_ino, d->name, d->ino);
		d->dangling = true;
		act_add(f, true, k, klen, NULL, 0);
		return;
	}
	if (c->type != d->type) {
		uint8_t nv[17];

		problem(f, META_FSCK_TYPE,
			"directory %" PRIu64 ": entry '%s' "
			"says %s but inode %" PRIu64 " is a %s",
			f->dir_ino, d->name, type_name(d->type), d->ino,
			type_name(c->type));
		d->type = c->type;
		memcpy(nv, v, 17);
		nv[0] = c->type;
		act_add(f, false, k, klen, nv, 17);
		f->dir_index_bad = true; /* the O value carries the type */
	}
	c->links++;
	c->named_in = f->dir_ino;
	if (c->type != META_DIR) {
		/* Per directory, from the second link on. */
		if (c->links == 1)
			c->first_in = f->dir_ino;
		else if (c->links == 2)
			ltab_get(&f->links, c->ino, c->first_in)->counted++;
		if (c->links >= 2)
			ltab_get(&f->links, c->ino, f->dir_ino)->counted++;
	}
	if (c->parent == f->dir_ino)
		c->parent_ok = true;
	if (c->type == META_DIR && f->dir)
		f->dir->subdirs++;
}

static void
p2_order(struct fsck *f, const uint8_t *k, size_t klen, const uint8_t *v,
	 size_t vlen)
{
	size_t p = f->m->pfxlen;
	uint64_t cookie;

	if (klen != p + 18)
		return;
	cookie = tl_get_be64(k + p + 10);
	if (f->nocook == f->capocook) {
		f->capocook = f->capocook ? f->capocook * 2 : 64;
		f->ocookies =
			tl_realloc(f->ocookies, f->capocook * sizeof(uint64_t));
	}
	f->ocookies[f->nocook++] = cookie;
	for (size_t i = 0; i < f->ndents; i++) {
		struct dent *d = &f->dents[i];
		size_t nl = strlen(d->name);

		if (d->cookie != cookie)
			continue;
		if (d->dangling) {
			f->dir_index_bad = true; /* goes with its dentry */
			return;
		}
		if (d->o_seen || vlen != 9 + nl || tl_get_be64(v) != d->ino ||
		    v[8] != d->stored_type || memcmp(v + 9, d->name, nl) != 0)
			continue;
		d->o_seen = true;
		return;
	}
	problem(f, META_FSCK_INDEX,
		"directory %" PRIu64 ": readdir index "
		"entry %" PRIu64 " matches no entry",
		f->dir_ino, cookie);
	f->dir_index_bad = true;
}

static int
p2_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct fsck *f = arg;
	const uint8_t *k = key;
	size_t p = f->m->pfxlen;
	uint64_t ino;

	if (klen < p + 10 || k[p] != 'A' ||
	    (k[p + 9] != 'D' && k[p + 9] != 'O'))
		return 0;
	tick(f, "checking directories");
	ino = tl_get_be64(k + p + 1);
	if (ino != f->dir_ino) {
		dir_finish(f);
		f->dir_ino = ino;
		f->dir = itab_get(&f->inodes, ino, false);
	}
	if (k[p + 9] == 'D')
		p2_dentry(f, k, klen, val, vlen);
	else
		p2_order(f, k, klen, val, vlen);
	return 0;
}

/* ---- the checks after the scans ------------------------------------------ */

static void
check_links(struct fsck *f, struct fino *in)
{
	uint32_t want;

	if (!in->have)
		return;
	if (in->ino != META_ROOT_INO && in->links == 0) {
		problem(f, META_FSCK_ORPHAN,
			"inode %" PRIu64 " (%s, %" PRIu64
			" bytes) is named by no directory",
			in->ino, type_name(in->type), in->size);
		return; /* nothing certain to repair */
	}
	want = in->type == META_DIR ? 2 + in->subdirs : in->links;
	if (in->type == META_DIR && in->ino != META_ROOT_INO && in->links > 1)
		problem(f, META_FSCK_BAD_RECORD,
			"directory %" PRIu64 " is named "
			"by %u entries",
			in->ino, in->links);
	if (in->nlink != want) {
		problem(f, META_FSCK_NLINK,
			"inode %" PRIu64 " (%s) has nlink "
			"%u, counted %u",
			in->ino, type_name(in->type), in->nlink, want);
		in->nlink = want;
		in->dirty = true;
	}
	if (in->ino == META_ROOT_INO) {
		if (in->parent != META_ROOT_INO) {
			problem(f, META_FSCK_PARENT,
				"the root's parent is "
				"%" PRIu64,
				in->parent);
			in->parent = META_ROOT_INO;
			in->dirty = true;
		}
		return;
	}
	/* The parent names it; for a file of several links, one of the
	 * directories holding them (older volumes left 0, "unknown", when
	 * the link in the parent went: exports then refuse the file). */
	if (!in->parent_ok) {
		if (in->parent == 0)
			problem(f, META_FSCK_PARENT,
				"inode %" PRIu64 " has "
				"no parent directory recorded",
				in->ino);
		else
			problem(f, META_FSCK_PARENT,
				"inode %" PRIu64 " has "
				"parent %" PRIu64 ", which does not name it",
				in->ino, in->parent);
		in->parent = in->named_in;
		in->dirty = true;
		if (in->type == META_DIR)
			f->dir_moved = true;
	}
}

/* Link records: for a file of two links or more, one per directory
 * holding some, with their number; none for anything else. */
static void
check_link_records(struct fsck *f)
{
	struct ltab *t = &f->links;

	for (size_t i = 0; i < t->cap; i++) {
		struct flink *l = &t->v[i];
		struct fino *in;
		uint32_t want;

		if (!l->ino)
			continue;
		in = itab_get(&f->inodes, l->ino, false);
		want = in && in->have && in->type != META_DIR && in->links >= 2
			       ? l->counted
			       : 0;
		if (l->have ? !l->bad && l->stored == want : want == 0)
			continue;
		problem(f, META_FSCK_NLINK,
			"inode %" PRIu64 ": the link "
			"record of directory %" PRIu64 " says %u, counted %u",
			l->ino, l->dir, l->have ? l->stored : 0, want);
		l->fix = true;
		l->counted = want;
	}
}

/* Usage and volume counters, from the (possibly repaired) parents. */
static void
check_usage(struct fsck *f)
{
	uint64_t bytes = 0, inodes = 0;
	uint64_t pending = f->n_deleted + f->n_released + f->n_compacted;
	struct itab *t = &f->inodes;

	for (size_t i = 0; i < t->cap; i++) {
		struct fino *in = &t->v[i], *d;
		uint64_t b;

		if (!in->ino || !in->have)
			continue;
		b = in->type == META_REG ? round4k(in->size) : 0;
		bytes += b;
		inodes++;
		if (in->type == META_REG) {
			d = f->trash_ino ? itab_get(t, in->parent, false)
					 : NULL;
			if (d && d->have && d->parent == f->trash_ino &&
			    d->ino != f->trash_ino)
				f->n_trash += in->size;
			else
				f->n_logical += in->size;
		}
		if (in->ino == META_ROOT_INO || in->parent == 0)
			continue;
		d = itab_get(t, in->parent, false);
		if (d) {
			d->u_bytes += b;
			d->u_inodes++;
		}
	}
	for (size_t i = 0; i < t->cap; i++) {
		struct fino *in = &t->v[i];

		if (!in->ino || (!in->has_u && !in->u_inodes))
			continue;
		if (in->s_bytes == in->u_bytes && in->s_inodes == in->u_inodes)
			continue;
		problem(f, META_FSCK_USAGE,
			"directory %" PRIu64 ": usage says "
			"%" PRIu64 " bytes in %" PRIu64
			" inodes, counted %" PRIu64 " in %" PRIu64,
			in->ino, in->s_bytes, in->s_inodes, in->u_bytes,
			in->u_inodes);
		in->has_u = true; /* rewritten at repair */
		in->s_inodes = UINT64_MAX;
	}
	if (f->c_bytes != bytes || f->c_inodes != inodes ||
	    f->c_pending != pending) {
		problem(f, META_FSCK_COUNTERS,
			"volume counters say %" PRIu64 " bytes, %" PRIu64
			" inodes, %" PRIu64 " pending; "
			"counted %" PRIu64 ", %" PRIu64 ", %" PRIu64,
			f->c_bytes, f->c_inodes, f->c_pending, bytes, inodes,
			pending);
		f->c_bytes = bytes;
		f->c_inodes = inodes;
		f->c_pending = UINT64_MAX; /* marks "rewrite" */
	}
}

/* The billing counters (meta_usage): after check_slices, which counts
 * the stored bytes. */
static void
check_billing(struct fsck *f)
{
	if (f->c_logical == f->n_logical && f->c_stored == f->n_stored &&
	    f->c_trash == f->n_trash && f->c_pendbytes == f->n_pendbytes)
		return;
	problem(f, META_FSCK_COUNTERS,
		"usage counters say %" PRIu64 " logical, %" PRIu64
		" stored, %" PRIu64 " trash, %" PRIu64
		" pending bytes; counted %" PRIu64 ", %" PRIu64 ", %" PRIu64
		", %" PRIu64,
		f->c_logical, f->c_stored, f->c_trash, f->c_pendbytes,
		f->n_logical, f->n_stored, f->n_trash, f->n_pendbytes);
	f->fix_billing = true;
}

/* Every quota's usage and billing figures counted again from the
 * inodes (meta_quota_check: a transaction each, after the volume's
 * check; with repair, what drifted is rewritten there). */
static int
check_quotas(struct fsck *f)
{
	struct meta_quota_fix x;
	uint64_t *v;
	size_t n;
	int rc;

	rc = meta_quota_inos(f->m, &v, &n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = meta_quota_check(f->m, v[i], f->o->repair, NULL, NULL, &x);
		if (rc == -ENOENT) {
			rc = 0; /* deleted meanwhile */
			continue;
		}
		tick(f, "quotas");
		if (rc || !x.drift)
			continue;
		problem(f, META_FSCK_USAGE,
			"quota of directory %" PRIu64 ": usage says %" PRIu64
			" bytes in %" PRIu64 " inodes, %s%" PRIu64
			" logical and %" PRIu64 " trash bytes; counted %" PRIu64
			" in %" PRIu64 ", %" PRIu64 " and %" PRIu64,
			v[i], x.q.used_bytes, x.q.used_inodes,
			x.q.has_figures ? "" : "(not kept) ", x.q.logical_bytes,
			x.q.trash_bytes, x.actual_bytes, x.actual_inodes,
			x.actual_logical, x.actual_trash);
	}
	free(v);
	return rc;
}

static int
check_slices(struct fsck *f)
{
	struct stab *t = &f->slices;
	int rc = 0;

	for (size_t i = 0; i < t->cap && rc == 0; i++) {
		struct fslice *s = &t->v[i];
		uint64_t want;

		if (!s->id)
			continue;
		if ((s->refs || s->released) && !meta_slice_inline(s->id))
			f->n_stored += s->size; /* inline ones: no object */
		if (s->released)
			f->n_pendbytes += s->size;
		if (s->refs && s->released) {
			problem(f, META_FSCK_PENDING,
				"slice %" PRIu64 " is "
				"queued for deletion but inode %" PRIu64
				" still uses it",
				s->id, s->owner);
		}
		if (!s->refs) {
			if (s->has_k && !s->released)
				problem(f, META_FSCK_LEAK,
					"slice %" PRIu64
					" has a reference count but no chunk "
					"uses it",
					s->id);
			if (s->has_inline)
				problem(f, META_FSCK_LEAK,
					"inline slice %" PRIu64 ": %" PRIu64
					" bytes that no "
					"chunk uses",
					s->id & ~META_SLICE_INLINE,
					s->inline_len);
			continue;
		}
		f->r->slices++;
		want = s->has_k ? s->k : 1;
		if (want != s->refs) {
			problem(f, META_FSCK_REFCOUNT,
				"slice %" PRIu64 " has "
				"reference count %" PRIu64 ", used by %u "
				"chunks",
				s->id, want, s->refs);
			s->has_k = s->refs > 1;
			s->k = UINT64_MAX; /* marks "rewrite" */
		}
		if (meta_slice_inline(s->id) || s->has_inline) {
			/* Its bytes are here, not in the object store. */
			if (!meta_slice_inline(s->id) || !s->has_inline ||
			    s->inline_len != s->size)
				problem(f, META_FSCK_BLOCKS,
					"inline slice %" PRIu64
					" (%u bytes, inode %" PRIu64 "): %s",
					s->id & ~META_SLICE_INLINE, s->size,
					s->owner,
					!s->has_inline ? "its bytes are missing"
					: !meta_slice_inline(s->id)
						? "bytes stored for a plain "
						  "slice"
						: "stored bytes of the wrong "
						  "length");
			continue;
		}
		if (f->o->slice_check) {
			tick(f, "checking objects");
			rc = f->o->slice_check(f->o->arg, s->id, s->size);
			if (rc > 0)
				problem(f, META_FSCK_BLOCKS,
					"slice %" PRIu64
					" (%u bytes, inode %" PRIu64 "): %d "
					"block(s) missing or of the wrong size",
					s->id, s->size, s->owner, rc);
			rc = rc > 0 ? 0 : rc;
		}
	}
	return rc;
}

static void
check_inodes(struct fsck *f)
{
	struct itab *t = &f->inodes;

	for (size_t i = 0; i < t->cap; i++) {
		struct fino *in = &t->v[i];

		if (!in->ino)
			continue;
		check_links(f, in);
		if (in->have && in->deleted) {
			problem(f, META_FSCK_PENDING,
				"inode %" PRIu64 " is "
				"live but queued for deletion",
				in->ino);
		}
		if (!in->have && in->chunks && !in->deleted)
			problem(f, META_FSCK_LEAK,
				"inode %" PRIu64 " does not "
				"exist but its data is still recorded",
				in->ino);
	}
	check_link_records(f);
	check_usage(f);
}

/* ---- repair -------------------------------------------------------------- */

static int
repair_inodes(struct fsck *f, struct mtxn *t)
{
	struct meta_key k;
	int rc = 0;

	for (size_t i = 0; i < f->inodes.cap && rc == 0; i++) {
		struct fino *in = &f->inodes.v[i];
		struct inode node;
		uint8_t v[16];

		if (!in->ino)
			continue;
		if (in->have && in->dirty) {
			rc = meta_inode_get(t, in->ino, &node);
			node.a.nlink = in->nlink;
			node.a.parent = in->parent;
			node.next_cookie =
				TL_MAX(node.next_cookie, in->next_cookie);
			if (rc == 0)
				rc = meta_inode_put(t, &node);
		}
		if (rc == 0 && in->has_u && in->s_inodes == UINT64_MAX) {
			meta_key_usage(f->m, &k, in->ino);
			tl_put_be64(v, in->u_bytes);
			tl_put_be64(v + 8, in->u_inodes);
			rc = in->u_inodes || in->u_bytes
				     ? meta_kv_put(t->kv, k.b, k.len, v, 16)
				     : meta_kv_del(t->kv, k.b, k.len);
		}
	}
	return rc;
}

static int
repair_links(struct fsck *f, struct mtxn *t)
{
	struct meta_key k;
	uint8_t v[4];
	int rc = 0;

	for (size_t i = 0; i < f->links.cap && rc == 0; i++) {
		struct flink *l = &f->links.v[i];

		if (!l->ino || !l->fix)
			continue;
		meta_key_link(f->m, &k, l->ino, l->dir);
		tl_put_be32(v, l->counted);
		rc = l->counted ? meta_kv_put(t->kv, k.b, k.len, v, 4)
				: meta_kv_del(t->kv, k.b, k.len);
	}
	return rc;
}

/* D records of live inodes, R records of used slices, refcounts. */
static int
repair_deleted_cb(void *arg, const void *key, size_t klen, const void *val,
		  size_t vlen)
{
	struct fsck *f = arg;
	const uint8_t *k = key;
	size_t p = f->m->pfxlen;
	struct fino *in;

	(void)val;
	(void)vlen;
	if (klen != p + 17)
		return 0;
	in = itab_get(&f->inodes, tl_get_be64(k + p + 1), false);
	if (in && in->have) {
		act_add(f, true, k, klen, NULL, 0);
		f->n_deleted--;
		f->n_pendbytes -= tl_get_be64(k + p + 9);
		f->c_pending = UINT64_MAX;
		f->fix_billing = true;
	}
	return 0;
}

static int
repair_slices(struct fsck *f, struct mtxn *t)
{
	struct meta_key k;
	int rc = 0;

	for (size_t i = 0; i < f->slices.cap && rc == 0; i++) {
		struct fslice *s = &f->slices.v[i];
		uint8_t v[8];

		if (!s->id || !s->refs)
			continue;
		if (s->released) {
			meta_key_slice(f->m, &k, 'R', s->id, s->size);
			rc = meta_kv_del(t->kv, k.b, k.len);
			f->n_released--;
			f->n_pendbytes -= s->size; /* still stored: in use */
			f->c_pending = UINT64_MAX;
			f->fix_billing = true;
		}
		if (rc == 0 && s->k == UINT64_MAX) {
			meta_key_slice(f->m, &k, 'K', s->id, s->size);
			tl_put_be64(v, s->refs);
			rc = s->refs > 1 ? meta_kv_put(t->kv, k.b, k.len, v, 8)
					 : meta_kv_del(t->kv, k.b, k.len);
		}
	}
	return rc;
}

static int
repair(struct fsck *f)
{
	struct meta_key s, e;
	struct mtxn t;
	int rc;

	rc = meta_txn_begin(f->m, &t, false);
	if (rc)
		return rc;
	if (!f->o->gateways_ok) {
		rc = meta_session_quiet(&t, f->epoch);
		if (rc)
			return meta_txn_end(&t, rc);
	}
	meta_key_tag(f->m, &s, 'D');
	meta_key_tag(f->m, &e, 'E');
	rc = meta_kv_scan(t.kv, s.b, s.len, e.b, e.len, repair_deleted_cb, f);
	for (size_t i = 0; rc == 0 && i < f->nact; i++) {
		struct action *a = &f->act[i];

		rc = a->del ? meta_kv_del(t.kv, a->kv, a->klen)
			    : meta_kv_put(t.kv, a->kv, a->klen, a->kv + a->klen,
					  a->vlen);
	}
	if (rc == 0)
		rc = repair_inodes(f, &t);
	if (rc == 0)
		rc = repair_links(f, &t);
	if (rc == 0)
		rc = repair_slices(f, &t);
	/* meta_getattr_under's caches hold directories by ancestry */
	if (rc == 0 && f->dir_moved)
		rc = meta_counter_add(&t, CNT_DIR_MOVES, 1);
	if (rc == 0 && f->c_pending == UINT64_MAX) {
		rc = meta_counter_set(&t, CNT_USED_BYTES, f->c_bytes);
		if (rc == 0)
			rc = meta_counter_set(&t, CNT_USED_INODES, f->c_inodes);
		if (rc == 0)
			rc = meta_counter_set(&t, CNT_PENDING,
					      f->n_deleted + f->n_released +
						      f->n_compacted);
	}
	if (rc == 0 && f->fix_billing) {
		rc = meta_counter_set(&t, CNT_LOGICAL, f->n_logical);
		if (rc == 0)
			rc = meta_counter_set(&t, CNT_STORED, f->n_stored);
		if (rc == 0)
			rc = meta_counter_set(&t, CNT_TRASH_BYTES, f->n_trash);
		if (rc == 0)
			rc = meta_counter_set(&t, CNT_PENDING_BYTES,
					      f->n_pendbytes);
		if (rc == 0)
			rc = meta_usage_mark(&t);
	}
	return meta_txn_end(&t, rc);
}

/* ---- entry point --------------------------------------------------------- */

static int
scan_volume(struct fsck *f, struct mtxn *t, meta_kv_scan_cb cb)
{
	uint8_t end[META_VOLNAME_MAX + 1];

	memcpy(end, f->m->pfx, f->m->pfxlen);
	end[f->m->pfxlen - 1] = 1; /* just past "<name>\0..." */
	return meta_kv_scan(t->kv, f->m->pfx, f->m->pfxlen, end, f->m->pfxlen,
			    cb, f);
}

int
meta_fsck(struct meta *m, const struct meta_fsck_opts *o,
	  struct meta_fsck_report *r)
{
	struct fsck f;
	struct mtxn t;
	int rc;

	memset(r, 0, sizeof(*r));
	memset(&f, 0, sizeof(f));
	f.m = m;
	f.o = o;
	f.r = r;
	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	rc = meta_counter_get(&t, CNT_SESSIONS, &f.epoch);
	if (rc == 0)
		rc = scan_volume(&f, &t, p1_cb);
	if (rc == 0)
		rc = scan_volume(&f, &t, p2_cb);
	dir_finish(&f);
	rc = meta_txn_end(&t, rc);
	if (rc == 0) {
		struct fino *root = itab_get(&f.inodes, META_ROOT_INO, false);

		if (!root || !root->have || root->type != META_DIR)
			problem(&f, META_FSCK_ORPHAN,
				"the root directory is "
				"missing");
		check_inodes(&f);
		rc = check_slices(&f);
		if (rc == 0)
			check_billing(&f);
		if (rc == 0)
			rc = check_quotas(&f);
	}
	if (rc == 0 && o->repair && r->problems) {
		static const enum meta_fsck_cat fixable[] = {
			META_FSCK_DANGLING, META_FSCK_TYPE,
			META_FSCK_NLINK,    META_FSCK_PARENT,
			META_FSCK_INDEX,    META_FSCK_USAGE,
			META_FSCK_COUNTERS, META_FSCK_REFCOUNT,
			META_FSCK_PENDING};

		rc = repair(&f);
		for (size_t i = 0; rc == 0 && i < TL_ARRAY_SIZE(fixable); i++)
			r->repaired[fixable[i]] = r->found[fixable[i]];
	}
	for (size_t i = 0; i < f.nact; i++)
		free(f.act[i].kv);
	free(f.act);
	free(f.dents);
	free(f.ocookies);
	free(f.inodes.v);
	free(f.slices.v);
	free(f.links.v);
	return rc;
}

int
meta_set_storage(struct meta *m, const char *url)
{
	uint8_t buf[2048];
	struct meta_key k;
	struct mtxn t;
	size_t n;
	int rc;

	if (!url[0] || strlen(url) >= sizeof(m->set.storage))
		return -EINVAL;
	rc = meta_txn_begin(m, &t, false);
	if (rc)
		return rc;
	strcpy(m->set.storage, url);
	n = meta_settings_encode(&m->set, buf, sizeof(buf));
	meta_key_setting(m, &k);
	rc = n ? meta_kv_put(t.kv, k.b, k.len, buf, n) : -EINVAL;
	return meta_txn_end(&t, rc);
}
