/*
 * fs.c - permissions, attributes, lookup and setattr.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "meta/meta-internal.h"

unsigned
meta_access(const struct meta_attr *a, const struct meta_cred *c, unsigned want)
{
	unsigned bits;

	if (c->uid == 0) {
		/* root: read and write always, execute/search only where
		 * some x bit is set (directories are always searchable). */
		bits = META_MAY_READ | META_MAY_WRITE;
		if (a->type == META_DIR || (a->mode & 0111))
			bits |= META_MAY_EXEC;
		return want & bits;
	}
	if (c->uid == a->uid)
		bits = (a->mode >> 6) & 7;
	else if (meta_cred_in_group(c, a->gid))
		bits = (a->mode >> 3) & 7;
	else
		bits = a->mode & 7;
	return want & bits;
}

int
meta_getattr(struct meta *m, uint64_t ino, struct meta_attr *out)
{
	return meta_getattr_under(m, META_ROOT_INO, ino, out);
}

static int
lookup_txn(struct mtxn *t, const struct meta_cred *c, uint64_t dir,
	   const char *name, uint64_t *ino, struct meta_attr *attr)
{
	struct inode d, child;
	uint64_t cino;
	size_t len;
	int rc;

	rc = meta_inode_get(t, dir, &d);
	if (rc)
		return rc;
	if (d.a.type != META_DIR)
		return -ENOTDIR;
	if (c && !meta_access(&d.a, c, META_MAY_EXEC))
		return -EACCES;
	rc = meta_name_check(name, &len, false);
	if (rc)
		return rc;
	if (strcmp(name, ".") == 0)
		cino = dir;
	else if (strcmp(name, "..") == 0)
		cino = d.a.parent ? d.a.parent : META_ROOT_INO;
	else {
		rc = meta_dentry_get(t, dir, name, len, NULL, &cino, NULL);
		if (rc)
			return rc;
		if (meta_trash_hidden(t, c, dir, cino))
			return -ENOENT; /* the trash is root's */
	}
	if (attr) {
		rc = meta_inode_get(t, cino, &child);
		if (rc)
			return rc == -ENOENT ? -EIO : rc;
		*attr = child.a;
	}
	*ino = cino;
	return 0;
}

int
meta_lookup(struct meta *m, const struct meta_cred *c, uint64_t dir,
	    const char *name, uint64_t *ino, struct meta_attr *attr)
{
	struct mtxn t;
	int rc;

	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	rc = lookup_txn(&t, c, dir, name, ino, attr);
	return meta_txn_end(&t, rc);
}

int
meta_resolve(struct meta *m, const char *path, uint64_t *ino)
{
	char name[META_NAME_MAX + 1];
	uint64_t cur = META_ROOT_INO;
	struct mtxn t;
	int rc;

	if (path[0] != '/')
		return -EINVAL;
	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	for (const char *p = path; rc == 0 && *p;) {
		size_t n;

		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if (n == 0)
			break;
		if (n > META_NAME_MAX) {
			rc = -ENAMETOOLONG;
			break;
		}
		memcpy(name, p, n);
		name[n] = 0;
		p += n;
		rc = lookup_txn(&t, NULL, cur, name, &cur, NULL);
	}
	if (rc == 0)
		*ino = cur;
	return meta_txn_end(&t, rc);
}

int
meta_readlink(struct meta *m, uint64_t ino, char **target)
{
	struct meta_key k;
	struct inode in;
	struct mtxn t;
	const void *v;
	size_t vlen;
	int rc;

	rc = meta_txn_begin_inode(m, &t, ino, &in);
	if (rc)
		return rc;
	if (in.a.type != META_LNK)
		rc = -EINVAL;
	if (rc == 0) {
		meta_key_ino(m, &k, ino, 'S');
		rc = meta_kv_get(t.kv, k.b, k.len, &v, &vlen);
		if (rc == -ENOENT)
			rc = -EIO;
		if (rc == 0)
			*target = tl_strndup(v, vlen);
	}
	return meta_txn_end(&t, rc);
}

/* ---- setattr ------------------------------------------------------------- */

/* Ownership and permission rules of chmod, chown, truncate and utimes
 * (Linux setattr_prepare / knfsd). */
static int
setattr_check(const struct inode *in, const struct meta_cred *c,
	      const struct meta_setattr *s)
{
	const struct meta_attr *a = &in->a;
	bool root = c->uid == 0, owner = root || c->uid == a->uid;
	bool writable = meta_access(a, c, META_MAY_WRITE) != 0;

	/* A write by a non-owner who may write clears set-id bits: what
	 * it may do to the mode is exactly that. */
	if ((s->valid & META_SET_KILLPRIV) && !owner && !writable)
		return -EACCES;
	if (s->valid & META_SET_SIZE) {
		if (a->type == META_DIR)
			return -EISDIR;
		if (a->type != META_REG)
			return -EINVAL;
		if (s->size > META_MAX_FILE_SIZE)
			return -EFBIG;
		/* knfsd lets the owner truncate whatever the mode
		 * (NFSD_MAY_OWNER_OVERRIDE): NFS has no open file whose
		 * access was checked when it was opened. */
		if (!owner && !writable)
			return -EACCES;
	}
	/* chown_ok and chgrp_ok: naming the current owner or group is no
	 * exception for a caller who does not own the file (it would still
	 * drop the file's set-id bits and change its ctime). */
	if ((s->valid & META_SET_UID) && !root &&
	    !(c->uid == a->uid && s->uid == a->uid))
		return -EPERM;
	if ((s->valid & META_SET_GID) && !root &&
	    !(c->uid == a->uid &&
	      (s->gid == a->gid || meta_cred_in_group(c, s->gid))))
		return -EPERM;
	if ((s->valid & META_SET_MODE) && !owner)
		return -EPERM;
	if ((s->valid & (META_SET_ATIME | META_SET_MTIME)) && !owner)
		return -EPERM;
	if ((s->valid & (META_SET_ATIME_NOW | META_SET_MTIME_NOW)) && !owner &&
	    !writable)
		return -EACCES;
	return 0;
}

static int
setattr_size(struct mtxn *t, struct inode *in, uint64_t size)
{
	int64_t d = (int64_t)round4k(size) - (int64_t)round4k(in->a.size);
	int rc;

	rc = meta_capacity_check(t, d);
	if (rc == 0 && size < in->a.size)
		rc = meta_data_truncate(t, in->a.ino, in->a.size, size);
	if (rc == 0)
		rc = meta_usage_add(t, in->a.parent, d, 0);
	if (rc == 0)
		rc = meta_size_account(t, in,
				       (int64_t)size - (int64_t)in->a.size);
	t->d_bytes += d;
	in->a.size = size;
	in->a.written = TL_MIN(in->a.written, round4k(size));
	return rc;
}

static int
setattr_txn(struct mtxn *t, const struct meta_cred *c, uint64_t ino,
	    const struct meta_setattr *s, struct meta_pre_attr *pre,
	    struct meta_attr *post)
{
	struct inode in;
	struct meta_attr *a = &in.a;
	uint64_t now = tl_now_ns();
	uint32_t kill;
	bool changed = (s->valid & ~(META_SET_GUARD | META_SET_KILLPRIV)) != 0;
	int rc;

	rc = meta_inode_get(t, ino, &in);
	if (rc)
		return rc;
	meta_pre_attr_of(&in, pre);
	if ((s->valid & META_SET_GUARD) && s->guard_ctime_ns != a->ctime_ns)
		return -TL_ENOTSYNC;
	rc = setattr_check(&in, c, s);
	if (rc)
		return rc;
	/* A truncation, like a write, by anyone but root (do_truncate). */
	kill = (s->valid & (META_SET_SIZE | META_SET_KILLPRIV))
		       ? meta_kills_privs(a, c)
		       : 0;
	if (kill) {
		a->mode &= ~kill;
		changed = true;
	}
	if (s->valid & META_SET_SIZE) {
		rc = setattr_size(t, &in, s->size);
		if (rc)
			return rc;
		a->mtime_ns = now;
	}
	if ((s->valid & (META_SET_UID | META_SET_GID)) && a->type != META_DIR) {
		/* chown drops set-id bits, for root too (Linux); sgid
		 * without group x is a locking mark and stays. */
		a->mode &= ~(uint32_t)S_ISUID;
		if (a->mode & S_IXGRP)
			a->mode &= ~(uint32_t)S_ISGID;
	}
	if (s->valid & META_SET_UID)
		a->uid = s->uid;
	if (s->valid & META_SET_GID)
		a->gid = s->gid;
	if (s->valid & META_SET_MODE) {
		a->mode = s->mode & 07777;
		if (c->uid != 0 && !meta_cred_in_group(c, a->gid))
			a->mode &= ~(uint32_t)S_ISGID;
	}
	if (s->valid & META_SET_ATIME)
		a->atime_ns = s->atime_ns;
	if (s->valid & META_SET_ATIME_NOW)
		a->atime_ns = now;
	if (s->valid & META_SET_MTIME)
		a->mtime_ns = s->mtime_ns;
	if (s->valid & META_SET_MTIME_NOW)
		a->mtime_ns = now;
	if (changed) {
		a->ctime_ns = now;
		rc = meta_inode_put(t, &in);
	}
	if (rc == 0 && post)
		*post = in.a;
	return rc;
}

struct setattr_op {
	const struct meta_cred *c;
	uint64_t ino;
	const struct meta_setattr *s;
	struct meta_pre_attr *pre;
	struct meta_attr *post;
};

static int
setattr_run(struct mtxn *t, void *arg)
{
	const struct setattr_op *o = arg;

	t->lazy = o->c->async;
	return setattr_txn(t, o->c, o->ino, o->s, o->pre, o->post);
}

int
meta_setattr(struct meta *m, const struct meta_cred *c, uint64_t ino,
	     const struct meta_setattr *s, struct meta_pre_attr *pre,
	     struct meta_attr *post)
{
	struct setattr_op o = {c, ino, s, pre, post};

	return meta_txn_run(m, false, setattr_run, &o);
}
