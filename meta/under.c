/*
 * under.c - does an inode lie under a directory (an export's root)?
 *
 * nfsd asks it for every file handle of an export that is not the
 * volume's root, so the answer must not cost a walk up the tree each
 * time.  A directory's ancestry changes only when it gets another parent
 * (a rename into another directory, or fsck repairing its parent), and
 * every such change bumps the volume's dirmoves counter in the same
 * transaction.  So "directory d lies under root r", found in a snapshot
 * where the counter reads g, holds in every snapshot where it still
 * reads g, on this gateway or any other of the volume: the cache keeps
 * (r, d, g) triples, and a check reads g in the same read transaction as
 * the inode it checks (or takes it from the last check, when the engine
 * says the snapshot is the same: meta_kv_version).  A rename of a directory makes every entry old;
 * the next checks walk again (one get per level) and fill it anew.
 *
 * A directory lies under r when r is one of its ancestors (or itself).
 * A file lies under r when the directory it was last linked into does
 * (its parent), or, when it has several links, when any directory
 * holding one of them does (its link records; the first UNDER_LINKS in
 * inode order are tried).  Only positive answers are kept: an inode
 * outside costs a walk each time it is asked about.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta-internal.h"

#define UNDER_SLOTS 8192 /* cached (root, dir, generation); power of two */
#define UNDER_LOCKS 64
#define UNDER_PATH  64     /* directories of one walk that are cached */
#define UNDER_DEPTH 100000 /* deeper is a cycle: corrupt metadata */
#define UNDER_LINKS 256    /* link records tried for a file */

struct under_slot {
	uint64_t root, dir, gen;
};

struct meta_under {
	struct under_slot slot[UNDER_SLOTS];
	pthread_mutex_t lock[UNDER_LOCKS];
	/* dirmoves as read in the snapshot of version ver (meta_kv_version):
	 * a read-only workload reads the counter once, not per request. */
	pthread_mutex_t gen_lock;
	uint64_t gen_ver, gen;
};

struct meta_under *
meta_under_new(void)
{
	struct meta_under *u = tl_calloc(1, sizeof(*u));

	for (size_t i = 0; i < UNDER_LOCKS; i++)
		pthread_mutex_init(&u->lock[i], NULL);
	pthread_mutex_init(&u->gen_lock, NULL);
	return u;
}

void
meta_under_free(struct meta_under *u)
{
	if (u == NULL)
		return;
	for (size_t i = 0; i < UNDER_LOCKS; i++)
		pthread_mutex_destroy(&u->lock[i]);
	pthread_mutex_destroy(&u->gen_lock);
	free(u);
}

static size_t
under_hash(uint64_t root, uint64_t dir)
{
	uint64_t x = dir * 0x9e3779b97f4a7c15ULL ^ root;

	x ^= x >> 29;
	return (size_t)x & (UNDER_SLOTS - 1);
}

static bool
under_cached(struct meta_under *u, uint64_t root, uint64_t dir, uint64_t gen)
{
	size_t i = under_hash(root, dir);
	pthread_mutex_t *l = &u->lock[i % UNDER_LOCKS];
	bool hit;

	pthread_mutex_lock(l);
	hit = u->slot[i].root == root && u->slot[i].dir == dir &&
	      u->slot[i].gen == gen;
	pthread_mutex_unlock(l);
	return hit;
}

static void
under_remember(struct meta_under *u, uint64_t root, uint64_t dir, uint64_t gen)
{
	size_t i = under_hash(root, dir);
	pthread_mutex_t *l = &u->lock[i % UNDER_LOCKS];

	pthread_mutex_lock(l);
	u->slot[i] = (struct under_slot){root, dir, gen};
	pthread_mutex_unlock(l);
}

/* 0 if directory dir lies under root, -EXDEV if not, or an engine
 * error.  Walks dir's parents in t's snapshot, whose dirmoves is gen. */
static int
dir_under(struct mtxn *t, uint64_t root, uint64_t dir, uint64_t gen)
{
	struct meta_under *u = t->m->under;
	uint64_t path[UNDER_PATH];
	struct inode d;
	size_t n = 0;
	int rc, depth = 0;

	for (uint64_t cur = dir; cur != root;) {
		if (under_cached(u, root, cur, gen))
			break;
		if (cur == META_ROOT_INO || cur == 0)
			return -EXDEV;
		if (++depth > UNDER_DEPTH)
			return -EIO;
		rc = meta_inode_get(t, cur, &d);
		if (rc == -ENOENT)
			return -EXDEV; /* removed while we look */
		if (rc)
			return rc;
		if (d.a.type != META_DIR)
			return -EIO;
		if (n < UNDER_PATH)
			path[n++] = cur;
		cur = d.a.parent;
	}
	for (size_t i = 0; i < n; i++)
		under_remember(u, root, path[i], gen);
	return 0;
}

/* 0 if one of the directories holding links of a file lies under root. */
static int
links_under(struct mtxn *t, uint64_t root, uint64_t ino, uint64_t gen)
{
	uint64_t dirs[UNDER_LINKS];
	size_t n;
	int rc;

	rc = meta_links_list(t, ino, dirs, UNDER_LINKS, &n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = dir_under(t, root, dirs[i], gen);
		if (rc == 0)
			return 0;
		if (rc == -EXDEV)
			rc = 0;
	}
	return rc != 0 ? rc : -EXDEV;
}

/* The dirmoves counter in t's snapshot. */
static int
dirmoves(struct mtxn *t, uint64_t *gen)
{
	struct meta_under *u = t->m->under;
	uint64_t ver = meta_kv_version(t->kv);
	bool hit = false;
	int rc;

	if (ver != 0) {
		pthread_mutex_lock(&u->gen_lock);
		hit = u->gen_ver == ver;
		*gen = u->gen;
		pthread_mutex_unlock(&u->gen_lock);
	}
	if (hit)
		return 0;
	rc = meta_counter_get(t, CNT_DIR_MOVES, gen);
	if (rc == 0 && ver != 0) {
		pthread_mutex_lock(&u->gen_lock);
		u->gen_ver = ver;
		u->gen = *gen;
		pthread_mutex_unlock(&u->gen_lock);
	}
	return rc;
}

static int
inode_under(struct mtxn *t, uint64_t root, const struct inode *in)
{
	uint64_t gen;
	int rc;

	rc = dirmoves(t, &gen);
	if (rc)
		return rc;
	if (in->a.type == META_DIR)
		return dir_under(t, root, in->a.ino, gen);
	rc = in->a.parent != 0 ? dir_under(t, root, in->a.parent, gen) : -EXDEV;
	if (rc == -EXDEV && in->a.nlink > 1)
		rc = links_under(t, root, in->a.ino, gen);
	return rc;
}

int
meta_getattr_under(struct meta *m, uint64_t root, uint64_t ino,
		   struct meta_attr *out)
{
	struct inode in;
	struct mtxn t;
	int rc;

	rc = meta_txn_begin_inode(m, &t, ino, &in);
	if (rc)
		return rc;
	if (ino != root && root != META_ROOT_INO)
		rc = inode_under(&t, root, &in);
	if (rc == 0)
		*out = in.a;
	return meta_txn_end(&t, rc);
}
