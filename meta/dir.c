/*
 * dir.c - names: create, link, unlink, rmdir, rename and readdir.
 *
 * Each operation is one write transaction.  Directory nlink is 2 plus the
 * number of subdirectories.  U<dir> counts, for each directory, the
 * inodes whose `parent` it is and their 4 KiB-rounded bytes.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "meta/meta-internal.h"

static bool
is_dot(const char *name)
{
	return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

/* dir must be a directory the caller may modify (w and x). */
static int
dir_writable(const struct inode *d, const struct meta_cred *c)
{
	if (d->a.type != META_DIR)
		return -ENOTDIR;
	if (meta_access(&d->a, c, META_MAY_WRITE | META_MAY_EXEC) !=
	    (META_MAY_WRITE | META_MAY_EXEC))
		return -EACCES;
	return 0;
}

/* Read dir, which a transaction of c's is to change, into d: its
 * attributes before the change into pre and, until the change sets them
 * anew, into post (when asked). */
static int
dir_read(struct mtxn *t, const struct meta_cred *c, uint64_t dir,
	 struct inode *d, struct meta_pre_attr *pre, struct meta_attr *post)
{
	int rc;

	t->lazy = c->async;
	rc = meta_inode_get(t, dir, d);
	if (rc)
		return rc;
	meta_pre_attr_of(d, pre);
	if (post)
		*post = d->a;
	return 0;
}

/* dir_writable, and neither the trash nor a directory in it. */
static int
dir_changeable(struct mtxn *t, const struct inode *d, const struct meta_cred *c)
{
	int rc = dir_writable(d, c);

	return rc ? rc : meta_trash_guard(t, d);
}

/* dir_read, then dir_changeable. */
static int
dir_open(struct mtxn *t, const struct meta_cred *c, uint64_t dir,
	 struct inode *d, struct meta_pre_attr *pre, struct meta_attr *post)
{
	int rc = dir_read(t, c, dir, d, pre, post);

	return rc ? rc : dir_changeable(t, d, c);
}

/* Sticky directories: only the owner of the entry or of the directory
 * (or root) may remove or rename it. */
static int
sticky_check(const struct inode *d, const struct inode *victim,
	     const struct meta_cred *c)
{
	if (!(d->a.mode & S_ISVTX) || c->uid == 0 || c->uid == d->a.uid ||
	    c->uid == victim->a.uid)
		return 0;
	return -EPERM;
}

static void
dir_touch(struct inode *d, uint64_t now)
{
	d->a.mtime_ns = d->a.ctime_ns = now;
}

/* ---- create -------------------------------------------------------------- */

/* An existing name met by a create: UNCHECKED returns a regular file as
 * is, EXCLUSIVE succeeds when the stored verifier matches (a retransmit). */
static int
create_existing(struct mtxn *t, const struct meta_new *n, uint64_t cino,
		uint64_t *ino, struct meta_attr *attr, bool *existed)
{
	struct inode in;
	int rc;

	if (n->how == META_GUARDED || n->type != META_REG)
		return -EEXIST;
	rc = meta_inode_get(t, cino, &in);
	if (rc)
		return rc == -ENOENT ? -EIO : rc;
	if (in.a.type != META_REG)
		return -EEXIST;
	if (n->how == META_EXCLUSIVE &&
	    (!in.has_verf || memcmp(in.verf, n->verf, 8) != 0))
		return -EEXIST;
	*ino = cino;
	if (attr)
		*attr = in.a;
	if (existed)
		*existed = true;
	return 0;
}

static int
inode_limit_check(struct mtxn *t)
{
	uint64_t used;
	int rc;

	if (t->m->set.max_inodes == 0)
		return 0;
	rc = meta_counter_peek(t, CNT_USED_INODES, &used);
	if (rc)
		return rc;
	return used + (uint64_t)t->d_inodes + 1 > t->m->set.max_inodes ? -ENOSPC
								       : 0;
}

static void
new_inode(struct inode *in, const struct inode *d, const struct meta_new *n,
	  uint64_t ino, uint64_t now)
{
	struct meta_attr *a = &in->a;

	memset(in, 0, sizeof(*in));
	a->ino = ino;
	a->gen = (uint32_t)tl_random_u64() | 1;
	a->type = n->type;
	a->mode = n->mode & 07777;
	a->uid = n->uid;
	a->gid = n->gid;
	if (d->a.mode & S_ISGID) {
		/* BSD group semantics on S_ISGID directories; subdirectories
		 * inherit the bit. */
		a->gid = d->a.gid;
		if (n->type == META_DIR)
			a->mode |= S_ISGID;
	}
	a->nlink = n->type == META_DIR ? 2 : 1;
	a->rdev_major = n->rdev_major;
	a->rdev_minor = n->rdev_minor;
	a->atime_ns = a->mtime_ns = a->ctime_ns = now;
	a->parent = d->a.ino;
	if (n->type == META_DIR)
		in->next_cookie = 3;
	if (n->type == META_LNK)
		a->size = strlen(n->target);
	if (n->how == META_EXCLUSIVE) {
		in->has_verf = true;
		memcpy(in->verf, n->verf, 8);
	}
}

struct create_op {
	const struct meta_cred *c;
	uint64_t dir, newino, *ino;
	const char *name;
	size_t len;
	const struct meta_new *n;
	struct meta_attr *attr;
	bool *existed;
	struct meta_pre_attr *dir_pre;
	struct meta_attr *dir_post;
};

static int
create_txn(struct mtxn *t, void *arg)
{
	const struct create_op *o = arg;
	const struct meta_new *n = o->n;
	struct inode d, in;
	struct meta_key k;
	uint64_t cino, now = tl_now_ns();
	int rc;

	rc = dir_open(t, o->c, o->dir, &d, o->dir_pre, o->dir_post);
	if (rc)
		return rc;
	if (is_dot(o->name))
		return -EEXIST;
	rc = meta_dentry_get(t, o->dir, o->name, o->len, NULL, &cino, NULL);
	if (rc == 0)
		return create_existing(t, n, cino, o->ino, o->attr, o->existed);
	if (rc != -ENOENT)
		return rc;
	if (n->type == META_DIR && d.a.nlink >= META_LINK_MAX)
		return -EMLINK;
	rc = inode_limit_check(t);
	if (rc)
		return rc;
	new_inode(&in, &d, n, o->newino, now);
	if (n->type != META_DIR && o->c->uid != 0 && (in.a.mode & S_ISGID) &&
	    (in.a.mode & S_IXGRP) && !meta_cred_in_group(o->c, in.a.gid))
		in.a.mode &= ~(uint32_t)S_ISGID;
	rc = meta_dentry_add(t, &d, o->name, o->len, n->type, o->newino);
	if (rc == 0 && n->type == META_LNK) {
		meta_key_ino(t->m, &k, o->newino, 'S');
		rc = meta_kv_put(t->kv, k.b, k.len, n->target, in.a.size);
	}
	if (rc == 0)
		rc = meta_inode_put(t, &in);
	if (n->type == META_DIR)
		d.a.nlink++;
	dir_touch(&d, now);
	if (rc == 0)
		rc = meta_inode_put(t, &d);
	if (rc == 0)
		rc = meta_usage_add(t, o->dir, 0, 1);
	t->d_inodes++;
	if (rc)
		return rc;
	*o->ino = o->newino;
	if (o->attr)
		*o->attr = in.a;
	if (o->existed)
		*o->existed = false;
	if (o->dir_post)
		*o->dir_post = d.a;
	return 0;
}

int
meta_create(struct meta *m, const struct meta_cred *c, uint64_t dir,
	    const char *name, const struct meta_new *n, uint64_t *ino,
	    struct meta_attr *attr, bool *existed,
	    struct meta_pre_attr *dir_pre, struct meta_attr *dir_post)
{
	struct create_op o = {.c = c,
			      .dir = dir,
			      .ino = ino,
			      .name = name,
			      .n = n,
			      .attr = attr,
			      .existed = existed,
			      .dir_pre = dir_pre,
			      .dir_post = dir_post};
	int rc;

	rc = meta_name_check(name, &o.len, true);
	if (rc)
		return rc;
	if (n->type < META_REG || n->type > META_FIFO)
		return -EINVAL;
	if (n->type == META_LNK &&
	    (!n->target || !n->target[0] || strlen(n->target) >= META_PATH_MAX))
		return n->target && n->target[0] ? -ENAMETOOLONG : -EINVAL;
	rc = meta_alloc_ino(m, &o.newino);
	if (rc)
		return rc;
	return meta_txn_run(m, false, create_txn, &o);
}

static int
any_cb(void *arg, const void *key, size_t klen, const void *v, size_t vlen)
{
	*(bool *)arg = true;
	return 1;
}

/* 0 if dir has no entries, -ENOTEMPTY if it has. */
int
meta_dir_empty(struct mtxn *t, uint64_t dir)
{
	struct meta_key s, e;
	bool any = false;
	int rc;

	/* Empty means nothing in its readdir index: one cursor step. */
	meta_key_ino(t->m, &s, dir, 'O');
	meta_key_ino(t->m, &e, dir, 'P');
	rc = meta_kv_scan(t->kv, s.b, s.len, e.b, e.len, any_cb, &any);
	if (rc)
		return rc;
	return any ? -ENOTEMPTY : 0;
}

/* ---- remove -------------------------------------------------------------- */

/* -EPERM when ino, an entry of the root, is the trash directory. */
static int
trash_itself(struct mtxn *t, uint64_t ino)
{
	uint64_t trash;
	int rc;

	rc = meta_trash_ino(t, &trash);
	return rc ? rc : (trash != 0 && ino == trash ? -EPERM : 0);
}

/* v, not a directory, lost its link in d and keeps v->a.nlink links:
 * count it in the link records, and when its parent holds no other link
 * (or was never known) make a directory that holds one its parent, its
 * usage moving along. */
static int
unlink_keep(struct mtxn *t, struct inode *d, struct inode *v, int64_t bytes)
{
	uint64_t other = 0;
	uint32_t left;
	size_t n;
	int rc;

	rc = meta_links_add(t, v->a.ino, d->a.ino, -1, &left);
	if (rc == 0 &&
	    ((v->a.parent == d->a.ino && left == 0) || v->a.parent == 0)) {
		rc = meta_links_list(t, v->a.ino, &other, 1, &n);
		if (n == 0)
			other = 0; /* an older volume's file: unknown */
		if (rc == 0)
			rc = meta_usage_add(t, v->a.parent, -bytes, -1);
		if (rc == 0)
			rc = meta_usage_add(t, other, bytes, 1);
		if (rc == 0 && v->a.type == META_REG)
			rc = meta_quota_file_move(t, v->a.parent, other,
						  v->a.size);
		v->a.parent = other;
	}
	if (rc == 0 && v->a.nlink == 1)
		rc = meta_links_clear(t, v->a.ino);
	return rc;
}

/* Take one link of victim away (it was named name in d); drop the inode
 * when it was the last, or move it into the trash when there is one.
 * Directories: d loses a subdirectory link. */
static int
unlink_inode(struct mtxn *t, struct inode *d, struct inode *victim,
	     const char *name, size_t len, uint64_t now)
{
	int64_t bytes = victim->a.type == META_REG
				? (int64_t)round4k(victim->a.size)
				: 0;
	bool trashed = false;
	int rc = 0;

	if (victim->a.type == META_DIR) {
		d->a.nlink--;
		victim->a.nlink = 0;
	} else if (victim->a.nlink > 0) {
		victim->a.nlink--;
	}
	if (victim->a.nlink == 0) {
		rc = meta_trash_put(t, d->a.ino, name, len, victim, now,
				    &trashed);
		if (rc || trashed)
			return rc;
		if (victim->a.parent)
			rc = meta_usage_add(t, victim->a.parent, -bytes, -1);
		if (rc == 0)
			rc = meta_inode_drop(t, victim);
		t->d_inodes--;
		t->d_bytes -= bytes;
		return rc;
	}
	rc = unlink_keep(t, d, victim, bytes);
	victim->a.ctime_ns = now;
	if (rc == 0)
		rc = meta_inode_put(t, victim);
	return rc;
}

/* Shared by unlink and rmdir: want_dir selects which one. */
struct remove_op {
	const struct meta_cred *c;
	uint64_t dir;
	const char *name;
	size_t len;
	bool want_dir;
	struct meta_pre_attr *dir_pre;
	struct meta_attr *dir_post;
};

static int
remove_txn(struct mtxn *t, void *arg)
{
	const struct remove_op *o = arg;
	struct inode d, v;
	uint64_t cino, cookie, now = tl_now_ns();
	int rc;

	rc = dir_open(t, o->c, o->dir, &d, o->dir_pre, o->dir_post);
	if (rc)
		return rc;
	rc = meta_dentry_get(t, o->dir, o->name, o->len, NULL, &cino, &cookie);
	if (rc)
		return rc;
	if (o->want_dir && o->dir == META_ROOT_INO &&
	    (rc = trash_itself(t, cino)) != 0)
		return rc;
	rc = meta_inode_get(t, cino, &v);
	if (rc)
		return rc == -ENOENT ? -EIO : rc;
	if (o->want_dir && v.a.type != META_DIR)
		return -ENOTDIR;
	if (!o->want_dir && v.a.type == META_DIR)
		return -EISDIR;
	if (o->want_dir) {
		rc = meta_dir_empty(t, cino);
		if (rc)
			return rc;
	}
	rc = sticky_check(&d, &v, o->c);
	if (rc)
		return rc;
	rc = meta_dentry_del(t, o->dir, o->name, o->len, cookie);
	if (rc == 0)
		rc = unlink_inode(t, &d, &v, o->name, o->len, now);
	dir_touch(&d, now);
	if (rc == 0)
		rc = meta_inode_put(t, &d);
	if (rc == 0 && o->dir_post)
		*o->dir_post = d.a;
	return rc;
}

static int
remove_name(struct meta *m, const struct meta_cred *c, uint64_t dir,
	    const char *name, bool want_dir, struct meta_pre_attr *dir_pre,
	    struct meta_attr *dir_post)
{
	struct remove_op o = {c, dir, name, 0, want_dir, dir_pre, dir_post};
	int rc;

	rc = meta_name_check(name, &o.len, false);
	if (rc)
		return rc;
	if (is_dot(name) && !want_dir)
		return -EISDIR;
	if (is_dot(name)) /* rmdir: "." is invalid, ".." never empty */
		return strcmp(name, ".") == 0 ? -EINVAL : -ENOTEMPTY;
	return meta_txn_run(m, false, remove_txn, &o);
}

int
meta_unlink(struct meta *m, const struct meta_cred *c, uint64_t dir,
	    const char *name, struct meta_pre_attr *dir_pre,
	    struct meta_attr *dir_post)
{
	return remove_name(m, c, dir, name, false, dir_pre, dir_post);
}

int
meta_rmdir(struct meta *m, const struct meta_cred *c, uint64_t dir,
	   const char *name, struct meta_pre_attr *dir_pre,
	   struct meta_attr *dir_post)
{
	return remove_name(m, c, dir, name, true, dir_pre, dir_post);
}

/* ---- link ---------------------------------------------------------------- */

/* Make dir the inode's `parent` (its last linked directory), moving its
 * share of directory usage along. */
static int
reparent(struct mtxn *t, struct inode *in, uint64_t dir)
{
	int64_t b = in->a.type == META_REG ? (int64_t)round4k(in->a.size) : 0;
	int rc = 0;

	if (in->a.parent == dir)
		return 0;
	if (in->a.parent)
		rc = meta_usage_add(t, in->a.parent, -b, -1);
	if (rc == 0)
		rc = meta_usage_add(t, dir, b, 1);
	if (rc == 0 && in->a.type == META_REG)
		rc = meta_quota_file_move(t, in->a.parent, dir, in->a.size);
	in->a.parent = dir;
	return rc;
}

struct link_op {
	const struct meta_cred *c;
	uint64_t ino, dir;
	const char *name;
	size_t len;
	struct meta_attr *attr;
	struct meta_pre_attr *dir_pre;
	struct meta_attr *dir_post;
};

static int
link_txn(struct mtxn *t, void *arg)
{
	const struct link_op *o = arg;
	const char *name = o->name;
	uint64_t ino = o->ino, dir = o->dir;
	struct meta_attr *dir_post = o->dir_post;
	struct inode d, in;
	uint64_t cino, now = tl_now_ns();
	int rc;

	rc = dir_read(t, o->c, dir, &d, o->dir_pre, dir_post);
	if (rc)
		return rc;
	rc = meta_inode_get(t, ino, &in);
	if (rc)
		return rc;
	if (in.a.type == META_DIR)
		return -EPERM;
	rc = dir_changeable(t, &d, o->c);
	if (rc == 0) /* a link out would leave it to the trash's expiry */
		rc = meta_trash_holds(t, &in);
	if (rc)
		return rc;
	if (is_dot(name))
		return -EEXIST;
	rc = meta_dentry_get(t, dir, name, o->len, NULL, &cino, NULL);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	if (in.a.nlink >= META_LINK_MAX)
		return -EMLINK;
	rc = meta_dentry_add(t, &d, name, o->len, in.a.type, ino);
	/* From two links on, every directory holding some is recorded. */
	if (rc == 0 && in.a.nlink == 1)
		rc = meta_links_add(t, ino, in.a.parent, 1, NULL);
	if (rc == 0)
		rc = meta_links_add(t, ino, dir, 1, NULL);
	if (rc == 0)
		rc = reparent(t, &in, dir);
	in.a.nlink++;
	in.a.ctime_ns = now;
	if (rc == 0)
		rc = meta_inode_put(t, &in);
	dir_touch(&d, now);
	if (rc == 0)
		rc = meta_inode_put(t, &d);
	if (rc)
		return rc;
	if (o->attr)
		*o->attr = in.a;
	if (dir_post)
		*dir_post = d.a;
	return 0;
}

int
meta_link(struct meta *m, const struct meta_cred *c, uint64_t ino, uint64_t dir,
	  const char *name, struct meta_attr *attr,
	  struct meta_pre_attr *dir_pre, struct meta_attr *dir_post)
{
	struct link_op o = {c, ino, dir, name, 0, attr, dir_pre, dir_post};
	int rc;

	rc = meta_name_check(name, &o.len, true);
	if (rc)
		return rc;
	return meta_txn_run(m, false, link_txn, &o);
}

/* ---- rename -------------------------------------------------------------- */

struct rename_args {
	const struct meta_cred *c;
	uint64_t sdir, ddir;
	const char *sname, *dname;
	size_t slen, dlen;
	struct meta_pre_attr *spre, *dpre;
	struct meta_attr *spost, *dpost;
};

/* -EINVAL when dir is ino or lies below it (walks dir's parents). */
static int
subtree_check(struct mtxn *t, uint64_t ino, uint64_t dir)
{
	struct inode p;
	int rc, depth = 0;

	for (uint64_t cur = dir;; cur = p.a.parent) {
		if (cur == ino)
			return -EINVAL;
		if (cur == META_ROOT_INO || cur == 0)
			return 0;
		if (++depth > 100000)
			return -EIO; /* a cycle: corrupt metadata */
		rc = meta_inode_get(t, cur, &p);
		if (rc)
			return rc == -ENOENT ? -EIO : rc;
	}
}

/* May src replace the existing dst? */
static int
rename_target_check(struct mtxn *t, const struct inode *src,
		    const struct inode *dd, const struct inode *dst,
		    const struct meta_cred *c)
{
	int rc;

	if (src->a.type == META_DIR && dst->a.type != META_DIR)
		return -ENOTDIR;
	if (src->a.type != META_DIR && dst->a.type == META_DIR)
		return -EISDIR;
	if (dst->a.type == META_DIR) {
		rc = meta_dir_empty(t, dst->a.ino);
		if (rc)
			return rc;
	}
	return sticky_check(dd, dst, c);
}

static int
rename_checks(struct mtxn *t, const struct rename_args *r, struct inode *sd,
	      struct inode *dd, struct inode *src, struct inode *dst,
	      bool have_dst)
{
	int rc;

	rc = sticky_check(sd, src, r->c);
	if (rc)
		return rc;
	if (have_dst) {
		rc = rename_target_check(t, src, dd, dst, r->c);
		if (rc)
			return rc;
	}
	if (src->a.type != META_DIR || r->sdir == r->ddir)
		return 0;
	rc = subtree_check(t, src->a.ino, r->ddir);
	if (rc)
		return rc;
	/* Moving a directory rewrites its "..": needs write on it. */
	if (!meta_access(&src->a, r->c, META_MAY_WRITE))
		return -EACCES;
	if (!have_dst && dd->a.nlink >= META_LINK_MAX)
		return -EMLINK;
	return 0;
}

static int
rename_apply(struct mtxn *t, const struct rename_args *r, struct inode *sd,
	     struct inode *dd, struct inode *src, struct inode *dst,
	     bool have_dst, uint64_t scookie, uint64_t dcookie)
{
	uint64_t now = tl_now_ns();
	int rc;

	rc = meta_dentry_del(t, r->sdir, r->sname, r->slen, scookie);
	if (rc == 0 && have_dst) {
		rc = meta_dentry_del(t, r->ddir, r->dname, r->dlen, dcookie);
		if (rc == 0)
			rc = unlink_inode(t, dd, dst, r->dname, r->dlen, now);
	}
	if (rc == 0)
		rc = meta_dentry_add(t, dd, r->dname, r->dlen, src->a.type,
				     src->a.ino);
	if (rc == 0 && src->a.type == META_DIR && r->sdir != r->ddir) {
		sd->a.nlink--;
		dd->a.nlink++;
		/* Its ancestry changed: what meta_getattr_under cached
		 * about every directory is to be checked again. */
		rc = meta_counter_add(t, CNT_DIR_MOVES, 1);
		/* Its tree's usage moves between quotas. */
		if (rc == 0)
			rc = meta_quota_move_dir(t, src->a.ino, r->sdir,
						 r->ddir);
	} else if (rc == 0 && src->a.nlink > 1 && r->sdir != r->ddir) {
		rc = meta_links_add(t, src->a.ino, r->sdir, -1, NULL);
		if (rc == 0)
			rc = meta_links_add(t, src->a.ino, r->ddir, 1, NULL);
	}
	if (rc == 0)
		rc = reparent(t, src, r->ddir);
	src->a.ctime_ns = now;
	if (rc == 0)
		rc = meta_inode_put(t, src);
	dir_touch(sd, now);
	dir_touch(dd, now);
	if (rc == 0)
		rc = meta_inode_put(t, sd);
	if (rc == 0 && dd != sd)
		rc = meta_inode_put(t, dd);
	return rc;
}

static int
rename_txn(struct mtxn *t, void *arg)
{
	const struct rename_args *r = arg;
	struct inode sd, ddbuf, *dd = &sd, src, dst;
	uint64_t sino, scookie, dino, dcookie = 0;
	bool have_dst;
	int rc;

	t->lazy = r->c->async;
	rc = meta_inode_get(t, r->sdir, &sd);
	if (rc)
		return rc;
	meta_pre_attr_of(&sd, r->spre);
	if (r->sdir != r->ddir) {
		dd = &ddbuf;
		rc = meta_inode_get(t, r->ddir, dd);
		if (rc)
			return rc;
	}
	meta_pre_attr_of(dd, r->dpre);
	rc = dir_writable(&sd, r->c);
	if (rc == 0)
		rc = dir_writable(dd, r->c);
	if (rc == 0)
		rc = meta_trash_guard(t, &sd);
	if (rc == 0)
		rc = meta_trash_guard(t, dd);
	if (rc == 0)
		rc = meta_dentry_get(t, r->sdir, r->sname, r->slen, NULL, &sino,
				     &scookie);
	if (rc == 0)
		rc = meta_inode_get(t, sino, &src);
	if (rc)
		goto out;
	rc = meta_dentry_get(t, r->ddir, r->dname, r->dlen, NULL, &dino,
			     &dcookie);
	if (rc && rc != -ENOENT)
		goto out;
	have_dst = rc == 0;
	rc = 0;
	if (have_dst && dino == sino)
		goto out; /* the same inode: rename(2) does nothing */
	if (r->sdir == META_ROOT_INO)
		rc = trash_itself(t, sino);
	if (rc == 0 && have_dst && r->ddir == META_ROOT_INO)
		rc = trash_itself(t, dino);
	if (rc)
		goto out;
	if (have_dst) {
		rc = meta_inode_get(t, dino, &dst);
		if (rc)
			goto out;
	}
	rc = rename_checks(t, r, &sd, dd, &src, &dst, have_dst);
	if (rc == 0)
		rc = rename_apply(t, r, &sd, dd, &src, &dst, have_dst, scookie,
				  dcookie);
out:
	if (r->spost)
		*r->spost = sd.a;
	if (r->dpost)
		*r->dpost = dd->a;
	return rc;
}

int
meta_rename(struct meta *m, const struct meta_cred *c, uint64_t sdir,
	    const char *sname, uint64_t ddir, const char *dname,
	    struct meta_pre_attr *spre, struct meta_attr *spost,
	    struct meta_pre_attr *dpre, struct meta_attr *dpost)
{
	struct rename_args r = {c, sdir, ddir, sname, dname, 0,
				0, spre, dpre, spost, dpost};
	int rc;

	rc = meta_name_check(sname, &r.slen, false);
	if (rc == 0)
		rc = meta_name_check(dname, &r.dlen, true);
	if (rc)
		return rc;
	if (is_dot(sname) || is_dot(dname))
		return -EINVAL;
	return meta_txn_run(m, false, rename_txn, &r);
}

/* ---- readdir ------------------------------------------------------------- */

struct readdir_ctx {
	struct mtxn *t;
	bool plus, stopped;
	meta_readdir_cb cb;
	void *arg;
	uint64_t hide; /* the trash, listing the root for someone not root */
};

static int
readdir_cb(void *arg, const void *key, size_t klen, const void *val,
	   size_t vlen)
{
	struct readdir_ctx *r = arg;
	const uint8_t *v = val;
	char name[META_NAME_MAX + 1];
	struct inode in;
	uint64_t ino, cookie = tl_get_be64((const uint8_t *)key + klen - 8);
	size_t nlen;
	int rc;

	if (vlen < 10 || vlen - 9 > META_NAME_MAX)
		return -EIO;
	ino = tl_get_be64(v);
	if (ino == r->hide)
		return 0;
	nlen = vlen - 9;
	memcpy(name, v + 9, nlen);
	name[nlen] = 0;
	if (r->plus) {
		rc = meta_inode_get(r->t, ino, &in);
		if (rc)
			return rc == -ENOENT ? -EIO : rc;
	}
	if (r->cb(r->arg, name, nlen, ino, cookie, r->plus ? &in.a : NULL)) {
		r->stopped = true;
		return 1;
	}
	return 0;
}

int
meta_readdir(struct meta *m, const struct meta_cred *c, uint64_t dir,
	     uint64_t after, bool plus, meta_readdir_cb cb, void *arg,
	     bool *eof)
{
	struct readdir_ctx r = {NULL, plus, false, cb, arg, 0};
	struct meta_key s, e;
	struct inode d;
	struct mtxn t;
	int rc;

	rc = meta_txn_begin_inode(m, &t, dir, &d);
	if (rc)
		return rc;
	r.t = &t;
	if (d.a.type != META_DIR)
		rc = -ENOTDIR;
	if (rc == 0 && !meta_access(&d.a, c, META_MAY_READ))
		rc = -EACCES;
	if (rc == 0 && dir == META_ROOT_INO && c != NULL && c->uid != 0)
		rc = meta_trash_ino(&t, &r.hide);
	if (rc == 0 && after >= d.next_cookie - 1 && after > 2) {
		/* Past the last cookie ever given: nothing to list (also
		 * keeps after + 1 from wrapping). */
		r.stopped = false;
	} else if (rc == 0) {
		/* Cookies are the index order: resume right after. */
		meta_key_order(m, &s, dir, after < 2 ? 3 : after + 1);
		meta_key_ino(m, &e, dir, 'P');
		rc = meta_kv_scan(t.kv, s.b, s.len, e.b, e.len, readdir_cb, &r);
	}
	if (rc == 0 && eof)
		*eof = !r.stopped;
	return meta_txn_end(&t, rc);
}
