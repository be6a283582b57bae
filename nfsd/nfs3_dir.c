/*
 * nfs3_dir.c - the NFSv3 procedures on names in a directory: LOOKUP,
 * CREATE, MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR, RENAME, LINK (RFC 1813
 * sections 3.3.3 and 3.3.8-3.3.15).
 *
 * Names are checked first with the rules knfsd applies (nfsd_nfs3_check_name);
 * meta checks permissions inside its transaction.  New objects belong to
 * the caller; sattr3 fields that meta_create does not take (owner, size,
 * times) are applied afterwards with meta_setattr, under meta's rules
 * (only root gives a file away), as knfsd does with nfsd_create_setattr.
 */
#include <errno.h>

#include "nfsd/nfs3-internal.h"

/* wcc of the call's directory when the operation failed before meta
 * produced wcc data: pre-op is what dispatch fetched. */
static void
nfs3_dir_wcc_fail(struct nfsd_call *c, wcc_data *out)
{
	struct meta_pre_attr pre;

	nfsd_nfs3_wcc_of(&c->attr, &pre);
	nfsd_nfs3_wcc(c, c->ino, &pre, NULL, out);
}

/* The file's data may be dropped from the cache when ino lost its last
 * link (looked up before a REMOVE or overwriting RENAME). */
static void
nfs3_forget_if_gone(struct nfsd_call *c, uint64_t ino)
{
	struct meta_attr a;
	int err;

	if (ino == 0)
		return;
	err = meta_getattr(c->ctx->meta, ino, &a);
	if (err == -ENOENT || (err == 0 && a.nlink == 0))
		cache_forget(c->ctx->cache, ino);
}

/* Inode currently named dir/name, 0 if none or on any error. */
static uint64_t
nfs3_peek(struct nfsd_call *c, uint64_t dir, const char *name)
{
	struct meta_attr a;
	uint64_t ino = 0;

	if (meta_lookup(c->ctx->meta, &c->cred, dir, name, &ino, &a) != 0)
		return 0;
	return a.type == META_REG ? ino : 0;
}

/* ---- LOOKUP -------------------------------------------------------------- */

void
nfsd_nfs3_lookup(struct nfsd_call *c, void *args, void *res)
{
	LOOKUP3args *a = args;
	LOOKUP3res *r = res;
	LOOKUP3resok *ok = &r->LOOKUP3res_u.resok;
	const char *name = a->what.name;
	struct meta_attr attr;
	uint64_t ino;
	int err;

	r->status = nfsd_nfs3_check_name(name, NFS3_NAME_LOOKUP);
	if (r->status != NFS3_OK)
		goto fail;
	/* A client never climbs out of its export: ".." of the export root
	 * is the root itself (still subject to the search permission). */
	if (strcmp(name, "..") == 0 && nfs3_is_export_root(c, c->ino))
		name = ".";
	err = meta_lookup(c->ctx->meta, &c->cred, c->ino, name, &ino, &attr);
	/* The directory lay inside the export when the call came; if it
	 * was moved out since, its parent is not ours to show. */
	if (err == 0 && strcmp(name, "..") == 0 && ino != c->ino)
		err = nfsd_fh_inside(c, ino, &attr);
	r->status = nfsd_errno_to_nfs3(err);
	if (err != 0)
		goto fail;
	nfsd_fh_make(c, ino, attr.gen, &ok->object);
	nfsd_nfs3_post_from(c, &attr, &ok->obj_attributes);
	nfsd_nfs3_post_from(c, &c->attr, &ok->dir_attributes);
	return;
fail:
	nfsd_nfs3_post_from(c, &c->attr,
			    &r->LOOKUP3res_u.resfail.dir_attributes);
}

/* ---- creating: CREATE, MKDIR, SYMLINK, MKNOD ----------------------------- */

/* Where the result of a creating procedure goes: the four resok structs
 * share this layout, resfail has only the directory's wcc. */
struct nfs3_made {
	nfsstat3 *status;
	post_op_fh3 *obj;
	post_op_attr *obj_attributes;
	wcc_data *dir_wcc;
	wcc_data *fail_wcc;
};

/* Apply what meta_create did not: owner when it differs from the
 * creator, size, times.  For an existing file that UNCHECKED CREATE
 * returns, only the size counts (knfsd: truncation, nothing else). */
static int
nfs3_after_create(struct nfsd_call *c, uint64_t ino, bool existed,
		  const struct meta_setattr *s, struct meta_attr *attr)
{
	struct meta_setattr rest = *s;
	int err;

	rest.valid &= ~META_SET_MODE;
	if (existed)
		rest.valid &= META_SET_SIZE;
	if ((rest.valid & META_SET_UID) && rest.uid == attr->uid)
		rest.valid &= ~META_SET_UID;
	if ((rest.valid & META_SET_GID) && rest.gid == attr->gid)
		rest.valid &= ~META_SET_GID;
	if ((rest.valid & META_SET_SIZE) && rest.size == attr->size && !existed)
		rest.valid &= ~META_SET_SIZE;
	if (rest.valid == 0)
		return 0;
	if (existed && attr->type == META_REG) {
		/* Buffered writes must not land after the truncation. */
		err = cache_flush(c->ctx->cache, ino);
		if (err != 0)
			return err;
	}
	return meta_setattr(c->ctx->meta, &c->cred, ino, &rest, NULL, attr);
}

/* Create name in the call's directory from n (mode already chosen) and
 * the sattr3 s (NULL: none), fill the result; unless the arguments were
 * found wrong (err, -errno), which is the answer then. */
static void
nfs3_make(struct nfsd_call *c, int err, const char *name, enum nfs3_nameop op,
	  struct meta_new *n, const struct meta_setattr *s,
	  const struct nfs3_made *out)
{
	struct meta_setattr none = {0};
	struct meta_attr attr, dpost;
	struct meta_pre_attr dpre;
	uint64_t ino;
	bool existed = false;

	*out->status = err != 0 ? nfsd_errno_to_nfs3(err)
				: nfsd_nfs3_check_name(name, op);
	if (*out->status != NFS3_OK)
		goto fail;
	if (s == NULL)
		s = &none;
	n->uid = c->cred.uid;
	n->gid = c->cred.gid;
	err = meta_create(c->ctx->meta, &c->cred, c->ino, name, n, &ino, &attr,
			  &existed, &dpre, &dpost);
	if (err == 0 && !(n->how == META_EXCLUSIVE && existed))
		err = nfs3_after_create(c, ino, existed, s, &attr);
	*out->status = nfsd_errno_to_nfs3(err);
	if (err != 0)
		goto fail;
	out->obj->handle_follows = TRUE;
	nfsd_fh_make(c, ino, attr.gen, &out->obj->post_op_fh3_u.handle);
	nfsd_nfs3_post_from(c, &attr, out->obj_attributes);
	nfsd_nfs3_wcc(c, c->ino, &dpre, &dpost, out->dir_wcc);
	return;
fail:
	nfs3_dir_wcc_fail(c, out->fail_wcc);
}

#define NFS3_MADE(r, U)                                                        \
	{                                                                      \
		.status = &(r)->status, .obj = &(r)->U.resok.obj,              \
		.obj_attributes = &(r)->U.resok.obj_attributes,                \
		.dir_wcc = &(r)->U.resok.dir_wcc,                              \
		.fail_wcc = &(r)->U.resfail.dir_wcc                            \
	}

/*
 * Modes when the client sends none: RFC 1813 leaves them to the server.
 * 0644 for files and devices, 0755 for directories, 0777 for symlinks
 * (whose mode nothing checks).  EXCLUSIVE CREATE carries no attributes;
 * the client follows with a SETATTR, until then the file is 0600, its
 * owner's only.
 */
static int
nfs3_sattr_mode(const sattr3 *in, uint32_t dflt, struct meta_setattr *s,
		struct meta_new *n)
{
	int err = nfsd_nfs3_sattr(in, s);

	n->mode = (s->valid & META_SET_MODE) ? s->mode : dflt;
	return err;
}

void
nfsd_nfs3_create(struct nfsd_call *c, void *args, void *res)
{
	CREATE3args *a = args;
	CREATE3res *r = res;
	struct nfs3_made out = NFS3_MADE(r, CREATE3res_u);
	struct meta_new n = {.type = META_REG};
	struct meta_setattr s = {0};
	int err = 0;

	switch (a->how.mode) {
	case UNCHECKED:
	case GUARDED:
		n.how = a->how.mode == UNCHECKED ? META_UNCHECKED
						 : META_GUARDED;
		err = nfs3_sattr_mode(&a->how.createhow3_u.obj_attributes, 0644,
				      &s, &n);
		break;
	case EXCLUSIVE:
		/* meta stores the verifier with the inode: a retransmit
		 * with the same verifier finds the file and succeeds. */
		n.how = META_EXCLUSIVE;
		n.mode = 0600;
		memcpy(n.verf, a->how.createhow3_u.verf, sizeof(n.verf));
		break;
	default:
		err = -EINVAL;
	}
	nfs3_make(c, err, a->where.name, NFS3_NAME_CREATE, &n, &s, &out);
}

void
nfsd_nfs3_mkdir(struct nfsd_call *c, void *args, void *res)
{
	MKDIR3args *a = args;
	MKDIR3res *r = res;
	struct nfs3_made out = NFS3_MADE(r, MKDIR3res_u);
	struct meta_new n = {.type = META_DIR, .how = META_GUARDED};
	struct meta_setattr s;
	int err;

	err = nfs3_sattr_mode(&a->attributes, 0755, &s, &n);
	nfs3_make(c, err, a->where.name, NFS3_NAME_CREATE, &n, &s, &out);
}

void
nfsd_nfs3_symlink(struct nfsd_call *c, void *args, void *res)
{
	SYMLINK3args *a = args;
	SYMLINK3res *r = res;
	struct nfs3_made out = NFS3_MADE(r, SYMLINK3res_u);
	struct meta_new n = {.type = META_LNK, .how = META_GUARDED};
	const char *target = a->symlink.symlink_data;
	struct meta_setattr s;
	int err;

	err = nfs3_sattr_mode(&a->symlink.symlink_attributes, 0777, &s, &n);
	/* knfsd (nfsd_symlink): an empty target is NOENT like symlink(2);
	 * a target longer than PATH_MAX is NAMETOOLONG. */
	if (err == 0 && (target == NULL || target[0] == '\0'))
		err = -ENOENT;
	else if (err == 0 && strlen(target) >= META_PATH_MAX)
		err = -ENAMETOOLONG;
	n.target = target;
	nfs3_make(c, err, a->where.name, NFS3_NAME_SYMLINK, &n, &s, &out);
}

void
nfsd_nfs3_mknod(struct nfsd_call *c, void *args, void *res)
{
	MKNOD3args *a = args;
	MKNOD3res *r = res;
	struct nfs3_made out = NFS3_MADE(r, MKNOD3res_u);
	mknoddata3 *w = &a->what;
	struct meta_new n = {.type = nfsd_nfs3_meta_type(w->type),
			     .how = META_GUARDED};
	struct meta_setattr s;
	int err;

	switch (w->type) {
	case NF3CHR:
	case NF3BLK:
		/* Devices need CAP_MKNOD on Linux: root only. */
		if (c->cred.uid != 0) {
			err = -EPERM;
			break;
		}
		err = nfs3_sattr_mode(&w->mknoddata3_u.device.dev_attributes,
				      0644, &s, &n);
		n.rdev_major = w->mknoddata3_u.device.spec.specdata1;
		n.rdev_minor = w->mknoddata3_u.device.spec.specdata2;
		break;
	case NF3SOCK:
	case NF3FIFO:
		err = nfs3_sattr_mode(&w->mknoddata3_u.pipe_attributes, 0644,
				      &s, &n);
		break;
	default:
		/* REG, DIR and LNK have their own procedures. */
		r->status = NFS3ERR_BADTYPE;
		nfs3_dir_wcc_fail(c, out.fail_wcc);
		return;
	}
	nfs3_make(c, err, a->where.name, NFS3_NAME_CREATE, &n, &s, &out);
}

/* ---- removing: REMOVE, RMDIR --------------------------------------------- */

/* Remove name from the call's directory: a directory (RMDIR) or
 * anything else (REMOVE, which forgets the file's cached state when that
 * was its last link); wcc is the result's dir_wcc (resok and resfail
 * both hold just that). */
static nfsstat3
nfs3_remove_name(struct nfsd_call *c, const char *name, bool dir, wcc_data *wcc)
{
	struct meta_attr dpost;
	struct meta_pre_attr dpre;
	uint64_t victim = 0;
	nfsstat3 status;
	int err;

	status = nfsd_nfs3_check_name(name, NFS3_NAME_REMOVE);
	if (status != NFS3_OK)
		goto fail;
	if (!dir)
		victim = nfs3_peek(c, c->ino, name);
	err = dir ? meta_rmdir(c->ctx->meta, &c->cred, c->ino, name, &dpre,
			       &dpost)
		  : meta_unlink(c->ctx->meta, &c->cred, c->ino, name, &dpre,
				&dpost);
	status = nfsd_errno_to_nfs3(err);
	if (err != 0)
		goto fail;
	if (!dir)
		nfs3_forget_if_gone(c, victim);
	nfsd_nfs3_wcc(c, c->ino, &dpre, &dpost, wcc);
	return NFS3_OK;
fail:
	nfs3_dir_wcc_fail(c, wcc);
	return status;
}

void
nfsd_nfs3_remove(struct nfsd_call *c, void *args, void *res)
{
	REMOVE3res *r = res;

	r->status = nfs3_remove_name(c, ((REMOVE3args *)args)->object.name,
				     false, &r->REMOVE3res_u.resok.dir_wcc);
}

void
nfsd_nfs3_rmdir(struct nfsd_call *c, void *args, void *res)
{
	RMDIR3res *r = res;

	r->status = nfs3_remove_name(c, ((RMDIR3args *)args)->object.name, true,
				     &r->RMDIR3res_u.resok.dir_wcc);
}

/* ---- RENAME, LINK -------------------------------------------------------- */

/* The wcc_data of a failed call's second directory: its attributes as
 * resolved (have: the handle was resolved to dir, attr), else none. */
static void
nfs3_other_dir_wcc_fail(struct nfsd_call *c, bool have, uint64_t dir,
			const struct meta_attr *attr, wcc_data *out)
{
	struct meta_pre_attr pre;

	if (have) {
		nfsd_nfs3_wcc_of(attr, &pre);
		nfsd_nfs3_wcc(c, dir, &pre, NULL, out);
	} else {
		out->before.attributes_follow = FALSE;
		out->after.attributes_follow = FALSE;
	}
}

void
nfsd_nfs3_rename(struct nfsd_call *c, void *args, void *res)
{
	RENAME3args *a = args;
	RENAME3res *r = res;
	/* resok and resfail have the same members. */
	RENAME3resok *ok = &r->RENAME3res_u.resok;
	struct meta_attr tattr, spost, dpost;
	struct meta_pre_attr spre, dpre;
	uint64_t tdir = 0, victim;
	bool have_t = false;
	int err;

	r->status = nfsd_nfs3_check_name(a->from.name, NFS3_NAME_RENAME);
	if (r->status == NFS3_OK)
		r->status = nfsd_nfs3_check_name(a->to.name, NFS3_NAME_RENAME);
	if (r->status != NFS3_OK)
		goto fail;
	err = nfsd_fh_resolve(c, &a->to.dir, &tdir, &tattr);
	if (err == 0)
		have_t = true;
	if (err == 0 && tattr.type != META_DIR)
		err = -ENOTDIR;
	if (err != 0)
		goto fail_err;
	victim = nfs3_peek(c, tdir, a->to.name);
	err = meta_rename(c->ctx->meta, &c->cred, c->ino, a->from.name, tdir,
			  a->to.name, &spre, &spost, &dpre, &dpost);
	if (err != 0)
		goto fail_err;
	r->status = NFS3_OK;
	nfs3_forget_if_gone(c, victim);
	nfsd_nfs3_wcc(c, c->ino, &spre, &spost, &ok->fromdir_wcc);
	nfsd_nfs3_wcc(c, tdir, &dpre, &dpost, &ok->todir_wcc);
	return;
fail_err:
	r->status = nfsd_errno_to_nfs3(err);
fail:
	nfs3_dir_wcc_fail(c, &ok->fromdir_wcc);
	nfs3_other_dir_wcc_fail(c, have_t, tdir, &tattr, &ok->todir_wcc);
}

void
nfsd_nfs3_link(struct nfsd_call *c, void *args, void *res)
{
	LINK3args *a = args;
	LINK3res *r = res;
	/* resok and resfail have the same members. */
	LINK3resok *ok = &r->LINK3res_u.resok;
	struct meta_attr dattr, attr, dpost;
	struct meta_pre_attr dpre;
	uint64_t dir = 0;
	bool have_d = false;
	int err;

	r->status = nfsd_nfs3_check_name(a->link.name, NFS3_NAME_LINK);
	if (r->status != NFS3_OK)
		goto fail;
	err = nfsd_fh_resolve(c, &a->link.dir, &dir, &dattr);
	if (err == 0)
		have_d = true;
	if (err == 0 && dattr.type != META_DIR)
		err = -ENOTDIR;
	if (err == 0)
		err = meta_link(c->ctx->meta, &c->cred, c->ino, dir,
				a->link.name, &attr, &dpre, &dpost);
	r->status = nfsd_errno_to_nfs3(err);
	if (err != 0)
		goto fail;
	nfsd_nfs3_post_from(c, &attr, &ok->file_attributes);
	nfsd_nfs3_wcc(c, dir, &dpre, &dpost, &ok->linkdir_wcc);
	return;
fail:
	nfsd_nfs3_post_from(c, &c->attr, &ok->file_attributes);
	nfs3_other_dir_wcc_fail(c, have_d, dir, &dattr, &ok->linkdir_wcc);
}
