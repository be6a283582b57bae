/*
 * nfs3.c - the NFSv3 procedure table, the errno -> nfsstat3 translation,
 * attribute helpers shared by all handlers, and the procedures about the
 * object or file system as a whole: NULL, GETATTR, SETATTR, ACCESS,
 * FSSTAT, FSINFO, PATHCONF (RFC 1813 section 3.3).
 *
 * The dispatcher has verified the handle that begins every argument
 * struct before a handler runs: c->ino and c->attr describe it, c->cred is
 * the squashed caller, and read-only exports never reach the handlers of
 * NFSD_PF_MODIFIES procedures.  Handlers fill the result (status first)
 * and allocate with tl_malloc; the dispatcher xdr_frees it after sending.
 */
#include <errno.h>

#include "nfsd/nfs3-internal.h"

/* ---- errno -> nfsstat3 --------------------------------------------------- */

nfsstat3
nfsd_errno_to_nfs3(int err)
{
	switch (err) {
	case 0:
		return NFS3_OK;
	case -EPERM:
		return NFS3ERR_PERM;
	case -ENOENT:
		return NFS3ERR_NOENT;
	case -EIO:
		return NFS3ERR_IO;
	case -ENXIO:
		return NFS3ERR_NXIO;
	case -EACCES:
		return NFS3ERR_ACCES;
	case -EEXIST:
		return NFS3ERR_EXIST;
	case -EXDEV:
		return NFS3ERR_XDEV;
	case -ENODEV:
		return NFS3ERR_NODEV;
	case -ENOTDIR:
		return NFS3ERR_NOTDIR;
	case -EISDIR:
		return NFS3ERR_ISDIR;
	case -EINVAL:
		return NFS3ERR_INVAL;
	case -EFBIG:
		return NFS3ERR_FBIG;
	case -ENOSPC:
		return NFS3ERR_NOSPC;
	case -EROFS:
		return NFS3ERR_ROFS;
	case -EMLINK:
		return NFS3ERR_MLINK;
	case -ENAMETOOLONG:
		return NFS3ERR_NAMETOOLONG;
	case -ENOTEMPTY:
		return NFS3ERR_NOTEMPTY;
	case -EDQUOT:
		return NFS3ERR_DQUOT;
	case -ESTALE:
		return NFS3ERR_STALE;
	case -EBADMSG:
		return NFS3ERR_BADHANDLE;
	case -TL_ENOTSYNC:
		return NFS3ERR_NOT_SYNC;
	case -TL_ETOOSMALL:
		return NFS3ERR_TOOSMALL;
	case -ENOTSUP:
		return NFS3ERR_NOTSUPP;
	/* A slow or busy backend: the client retries later (JUKEBOX)
	 * instead of a worker blocking for minutes. */
	case -EAGAIN:
	case -EBUSY:
	case -ETIMEDOUT:
		return NFS3ERR_JUKEBOX;
	default:
		tl_debug(NFS3_SUBSYS, "unexpected error %d, answering IO", err);
		return NFS3ERR_IO;
	}
}

/* ---- attributes ---------------------------------------------------------- */

/* The one mapping between meta's file types and NFS's ftype3. */
static const struct {
	uint8_t meta;
	ftype3 nfs;
} nfs3_types[] = {
	{META_REG, NF3REG},   {META_DIR, NF3DIR}, {META_BLK, NF3BLK},
	{META_CHR, NF3CHR},   {META_LNK, NF3LNK}, {META_SOCK, NF3SOCK},
	{META_FIFO, NF3FIFO},
};

ftype3
nfsd_nfs3_ftype(uint8_t type)
{
	for (size_t i = 0; i < TL_ARRAY_SIZE(nfs3_types); i++)
		if (nfs3_types[i].meta == type)
			return nfs3_types[i].nfs;
	return (ftype3)0; /* no such type: no inode has it */
}

uint8_t
nfsd_nfs3_meta_type(ftype3 type)
{
	for (size_t i = 0; i < TL_ARRAY_SIZE(nfs3_types); i++)
		if (nfs3_types[i].nfs == type)
			return nfs3_types[i].meta;
	return 0;
}

void
nfsd_nfs3_time(uint64_t ns, nfstime3 *out)
{
	out->seconds = (uint32_t)(ns / 1000000000ULL);
	out->nseconds = (uint32_t)(ns % 1000000000ULL);
}

uint64_t
nfsd_nfs3_time_ns(const nfstime3 *t)
{
	return (uint64_t)t->seconds * 1000000000ULL + t->nseconds;
}

void
nfsd_nfs3_fattr(const struct nfsd_call *c, const struct meta_attr *a,
		fattr3 *out)
{
	const uint8_t *uuid = c->ctx->vol->uuid;

	memset(out, 0, sizeof(*out));
	out->type = nfsd_nfs3_ftype(a->type);
	/* fattr3.mode carries no file type bits, only 07777. */
	out->mode = a->mode & 07777;
	out->nlink = a->nlink;
	out->uid = a->uid;
	out->gid = a->gid;
	out->size = a->size;
	/* Regular files: the data actually stored, so holes of sparse files
	 * cost nothing (du); others: their size in 4 KiB units. */
	out->used =
		a->type == META_REG ? a->written : (a->size + 4095) & ~4095ULL;
	out->rdev.specdata1 = a->rdev_major;
	out->rdev.specdata2 = a->rdev_minor;
	/* One volume is one file system to the client, whichever gateway
	 * or export it came through. */
	out->fsid = tl_get_be64(uuid) ^ tl_get_be64(uuid + 8);
	out->fileid = a->ino;
	nfsd_nfs3_time(a->atime_ns, &out->atime);
	nfsd_nfs3_time(a->mtime_ns, &out->mtime);
	nfsd_nfs3_time(a->ctime_ns, &out->ctime);
}

void
nfsd_nfs3_overlay(const struct nfsd_call *c, struct meta_attr *a)
{
	if (a->type == META_REG && c->ctx->cache != NULL)
		cache_overlay_attr(c->ctx->cache, a);
}

void
nfsd_nfs3_post_from(const struct nfsd_call *c, const struct meta_attr *a,
		    post_op_attr *out)
{
	struct meta_attr t = *a;

	nfsd_nfs3_overlay(c, &t);
	out->attributes_follow = TRUE;
	nfsd_nfs3_fattr(c, &t, &out->post_op_attr_u.attributes);
}

void
nfsd_nfs3_post_ino(const struct nfsd_call *c, uint64_t ino, post_op_attr *out)
{
	struct meta_attr a;

	if (meta_getattr(c->ctx->meta, ino, &a) != 0) {
		out->attributes_follow = FALSE;
		return;
	}
	nfsd_nfs3_post_from(c, &a, out);
}

void
nfsd_nfs3_wcc_of(const struct meta_attr *a, struct meta_pre_attr *out)
{
	out->size = a->size;
	out->mtime_ns = a->mtime_ns;
	out->ctime_ns = a->ctime_ns;
}

void
nfsd_nfs3_wcc(const struct nfsd_call *c, uint64_t ino,
	      const struct meta_pre_attr *pre, const struct meta_attr *post,
	      wcc_data *out)
{
	if (pre != NULL) {
		wcc_attr *w = &out->before.pre_op_attr_u.attributes;

		out->before.attributes_follow = TRUE;
		w->size = pre->size;
		nfsd_nfs3_time(pre->mtime_ns, &w->mtime);
		nfsd_nfs3_time(pre->ctime_ns, &w->ctime);
	} else {
		out->before.attributes_follow = FALSE;
	}
	if (post != NULL)
		nfsd_nfs3_post_from(c, post, &out->after);
	else
		nfsd_nfs3_post_ino(c, ino, &out->after);
}

/* One time of a sattr3 (how, and the client's time t): the server's
 * time sets the bit now, the client's the bit set and *ns. */
static int
sattr_time(time_how how, const nfstime3 *t, uint32_t now, uint32_t set,
	   uint64_t *ns, uint32_t *valid)
{
	switch (how) {
	case DONT_CHANGE:
		return 0;
	case SET_TO_SERVER_TIME:
		*valid |= now;
		return 0;
	case SET_TO_CLIENT_TIME:
		if (t->nseconds >= 1000000000u)
			return -EINVAL;
		*valid |= set;
		*ns = nfsd_nfs3_time_ns(t);
		return 0;
	default:
		return -EINVAL;
	}
}

int
nfsd_nfs3_sattr(const sattr3 *in, struct meta_setattr *out)
{
	memset(out, 0, sizeof(*out));
	if (in->mode.set_it) {
		out->valid |= META_SET_MODE;
		out->mode = in->mode.set_mode3_u.mode & 07777;
	}
	if (in->uid.set_it) {
		out->valid |= META_SET_UID;
		out->uid = in->uid.set_uid3_u.uid;
	}
	if (in->gid.set_it) {
		out->valid |= META_SET_GID;
		out->gid = in->gid.set_gid3_u.gid;
	}
	if (in->size.set_it) {
		out->valid |= META_SET_SIZE;
		out->size = in->size.set_size3_u.size;
	}
	if (sattr_time(in->atime.set_it, &in->atime.set_atime_u.atime,
		       META_SET_ATIME_NOW, META_SET_ATIME, &out->atime_ns,
		       &out->valid) != 0 ||
	    sattr_time(in->mtime.set_it, &in->mtime.set_mtime_u.mtime,
		       META_SET_MTIME_NOW, META_SET_MTIME, &out->mtime_ns,
		       &out->valid) != 0)
		return -EINVAL;
	return 0;
}

/* ---- names ------------------------------------------------------------------
 *
 * Like Linux knfsd (fs/nfsd/vfs.c), checked in this order:
 *  - too long (> 255 bytes): NAMETOOLONG everywhere;
 *  - empty: LOOKUP and REMOVE/RMDIR ACCES (lookup_one_len and nfsd_unlink),
 *    CREATE/MKDIR/MKNOD, LINK and RENAME PERM (nfsd_create, nfsd_link,
 *    nfsd_rename), SYMLINK NOENT (nfsd_symlink);
 *  - containing '/': ACCES (lookup_one_len refuses it; knfsd's decoder
 *    would answer GARBAGE_ARGS, which a handler cannot);
 *  - "." or "..": meaningful for LOOKUP; EXIST for the creating calls
 *    (nfsd_create, nfsd_symlink, nfsd_link), ACCES for REMOVE/RMDIR
 *    (nfsd_unlink), PERM for RENAME (nfsd_rename).
 */
nfsstat3
nfsd_nfs3_check_name(const char *name, enum nfs3_nameop op)
{
	size_t len = name != NULL ? strlen(name) : 0;

	if (len > META_NAME_MAX)
		return NFS3ERR_NAMETOOLONG;
	if (len == 0) {
		switch (op) {
		case NFS3_NAME_LOOKUP:
		case NFS3_NAME_REMOVE:
			return NFS3ERR_ACCES;
		case NFS3_NAME_SYMLINK:
			return NFS3ERR_NOENT;
		default:
			return NFS3ERR_PERM;
		}
	}
	if (memchr(name, '/', len) != NULL)
		return NFS3ERR_ACCES;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		switch (op) {
		case NFS3_NAME_LOOKUP:
			return NFS3_OK;
		case NFS3_NAME_REMOVE:
			return NFS3ERR_ACCES;
		case NFS3_NAME_RENAME:
			return NFS3ERR_PERM;
		default:
			return NFS3ERR_EXIST;
		}
	}
	return NFS3_OK;
}

/* ---- NULL, GETATTR, SETATTR, ACCESS -------------------------------------- */

void
nfsd_nfs3_null(struct nfsd_call *c, void *args, void *res)
{
}

void
nfsd_nfs3_getattr(struct nfsd_call *c, void *args, void *res)
{
	GETATTR3res *r = res;
	struct meta_attr a = c->attr;

	nfsd_nfs3_overlay(c, &a);
	r->status = NFS3_OK;
	nfsd_nfs3_fattr(c, &a, &r->GETATTR3res_u.resok.obj_attributes);
}

void
nfsd_nfs3_setattr(struct nfsd_call *c, void *args, void *res)
{
	SETATTR3args *a = args;
	SETATTR3res *r = res;
	struct meta_setattr s;
	struct meta_pre_attr pre, mpre;
	struct meta_attr post, cur = c->attr;
	int err;

	nfsd_nfs3_overlay(c, &cur);
	nfsd_nfs3_wcc_of(&cur, &pre);
	err = nfsd_nfs3_sattr(&a->new_attributes, &s);
	if (err != 0)
		goto out;
	if (a->guard.check) {
		s.valid |= META_SET_GUARD;
		s.guard_ctime_ns =
			nfsd_nfs3_time_ns(&a->guard.sattrguard3_u.obj_ctime);
	}
	/* Buffered writes must land before a size change (or they would
	 * resurrect truncated bytes), before explicit times (or the flush
	 * would overwrite them, as after `cp -p`) and before a ctime guard
	 * (the client compared against the overlaid ctime). */
	if (c->attr.type == META_REG &&
	    (s.valid &
	     (META_SET_SIZE | META_SET_GUARD | META_SET_ATIME |
	      META_SET_ATIME_NOW | META_SET_MTIME | META_SET_MTIME_NOW)) != 0) {
		err = cache_flush(c->ctx->cache, c->ino);
		if (err != 0)
			goto out;
	}
	err = meta_setattr(c->ctx->meta, &c->cred, c->ino, &s, &mpre, &post);
	if (err == 0)
		pre = mpre;
out:
	r->status = nfsd_errno_to_nfs3(err);
	/* wcc is the same member in resok and resfail. */
	nfsd_nfs3_wcc(c, c->ino, &pre, err == 0 ? &post : NULL,
		      &r->SETATTR3res_u.resok.obj_wcc);
}

/*
 * ACCESS as knfsd (nfsd_access) maps it: directories LOOKUP = search (x),
 * MODIFY/EXTEND/DELETE = write; regular files EXECUTE = x, MODIFY/EXTEND
 * = write (DELETE depends on the directory, not the file: not granted);
 * other types READ, MODIFY, EXTEND.  Only asked-for bits are answered and
 * a read-only export never grants a change.
 */
void
nfsd_nfs3_access(struct nfsd_call *c, void *args, void *res)
{
	ACCESS3args *a = args;
	ACCESS3res *r = res;
	unsigned may, want = a->access, got = 0;

	may = meta_access(&c->attr, &c->cred,
			  META_MAY_READ | META_MAY_WRITE | META_MAY_EXEC);
	if (may & META_MAY_READ)
		got |= ACCESS3_READ;
	if (may & META_MAY_WRITE) {
		got |= ACCESS3_MODIFY | ACCESS3_EXTEND;
		if (c->attr.type == META_DIR)
			got |= ACCESS3_DELETE;
	}
	if (may & META_MAY_EXEC) {
		if (c->attr.type == META_DIR)
			got |= ACCESS3_LOOKUP;
		else if (c->attr.type == META_REG)
			got |= ACCESS3_EXECUTE;
	}
	if (c->rdonly)
		got &= ~(unsigned)(ACCESS3_MODIFY | ACCESS3_EXTEND |
				   ACCESS3_DELETE);
	r->status = NFS3_OK;
	r->ACCESS3res_u.resok.access = got & want;
	nfsd_nfs3_post_from(c, &c->attr, &r->ACCESS3res_u.resok.obj_attributes);
}

/* ---- FSSTAT, FSINFO, PATHCONF -------------------------------------------- */

/* What an unlimited volume reports as free: the object store has no
 * meaningful size, and df must show something; 1 PiB and 2^32 files are
 * large enough never to stop a client from writing. */
#define NFS3_UNLIMITED_BYTES (1ULL << 50)
#define NFS3_UNLIMITED_FILES (1ULL << 32)

/* Total, free and available of one dimension (bytes or files) with
 * limit (0: none, then what is used plus unlimited) and used. */
static void
nfs3_fsstat_space(uint64_t limit, uint64_t used, uint64_t unlimited,
		  size3 *total, size3 *unused, size3 *avail)
{
	if (limit != 0) {
		*total = limit;
		*unused = limit > used ? limit - used : 0;
	} else {
		*total = used + unlimited;
		*unused = unlimited;
	}
	*avail = *unused;
}

/* An export whose root carries a quota shows the quota as its size and
 * free space (df on the client shows the tenant's limit); a dimension
 * the quota leaves unlimited keeps the volume's figures. */
static void
nfs3_fsstat_quota(struct nfsd_call *c, FSSTAT3resok *ok)
{
	struct meta_quota q;

	if (!c->exp || c->exp->root_ino == 0 ||
	    meta_quota_get(c->ctx->meta, c->exp->root_ino, &q) != 0)
		return;
	if (q.max_bytes != 0)
		nfs3_fsstat_space(q.max_bytes, q.used_bytes, 0, &ok->tbytes,
				  &ok->fbytes, &ok->abytes);
	if (q.max_inodes != 0)
		nfs3_fsstat_space(q.max_inodes, q.used_inodes, 0, &ok->tfiles,
				  &ok->ffiles, &ok->afiles);
}

void
nfsd_nfs3_fsstat(struct nfsd_call *c, void *args, void *res)
{
	FSSTAT3res *r = res;
	FSSTAT3resok *ok = &r->FSSTAT3res_u.resok;
	struct meta_usage u;
	int err;

	err = meta_usage(c->ctx->meta, &u);
	r->status = nfsd_errno_to_nfs3(err);
	/* obj_attributes is the first member in resok and resfail. */
	nfsd_nfs3_post_from(c, &c->attr, &ok->obj_attributes);
	if (err != 0)
		return;
	nfs3_fsstat_space(u.capacity, u.used_bytes, NFS3_UNLIMITED_BYTES,
			  &ok->tbytes, &ok->fbytes, &ok->abytes);
	nfs3_fsstat_space(u.max_inodes, u.used_inodes, NFS3_UNLIMITED_FILES,
			  &ok->tfiles, &ok->ffiles, &ok->afiles);
	nfs3_fsstat_quota(c, ok);
	/* Other gateways change the volume at any time. */
	ok->invarsec = 0;
}

void
nfsd_nfs3_fsinfo(struct nfsd_call *c, void *args, void *res)
{
	FSINFO3res *r = res;
	FSINFO3resok *ok = &r->FSINFO3res_u.resok;

	r->status = NFS3_OK;
	nfsd_nfs3_post_from(c, &c->attr, &ok->obj_attributes);
	ok->rtmax = NFS3_IOMAX;
	ok->rtpref = NFS3_IOMAX;
	ok->rtmult = 4096;
	ok->wtmax = NFS3_IOMAX;
	ok->wtpref = NFS3_IOMAX;
	ok->wtmult = 4096;
	ok->dtpref = 64 * 1024;
	ok->maxfilesize = META_MAX_FILE_SIZE;
	ok->time_delta.seconds = 0;
	ok->time_delta.nseconds = 1;
	ok->properties =
		FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME;
}

void
nfsd_nfs3_pathconf(struct nfsd_call *c, void *args, void *res)
{
	PATHCONF3res *r = res;
	PATHCONF3resok *ok = &r->PATHCONF3res_u.resok;

	r->status = NFS3_OK;
	nfsd_nfs3_post_from(c, &c->attr, &ok->obj_attributes);
	ok->linkmax = NFS3_LINK_MAX;
	ok->name_max = META_NAME_MAX;
	ok->no_trunc = TRUE;
	ok->chown_restricted = TRUE;
	ok->case_insensitive = FALSE;
	ok->case_preserving = TRUE;
}

/* ---- the procedure table ------------------------------------------------- */

/* xdr_void has no parameters; a cast to xdrproc_t would be flagged. */
static bool_t
nfs3_xdr_void(XDR *xdrs, void *p)
{
	return TRUE;
}

#define P(num, nm, fn, argt, rest, xres, fl)                                   \
	[num] = {.name = nm,                                                   \
		 .xdr_args = (xdrproc_t)xdr_##argt,                            \
		 .args_size = sizeof(argt),                                    \
		 .xdr_res = (xdrproc_t)(xres),                                 \
		 .res_size = sizeof(rest),                                     \
		 .handler = nfsd_nfs3_##fn,                                    \
		 .flags = (fl)}

#define FH     NFSD_PF_FH
#define MOD    (NFSD_PF_FH | NFSD_PF_MODIFIES)
#define MODDRC (NFSD_PF_FH | NFSD_PF_MODIFIES | NFSD_PF_DRC)

const struct nfsd_proc nfsd_nfs3_procs[] = {
	[NFSPROC3_NULL] = {.name = "NULL",
			   .xdr_args = (xdrproc_t)nfs3_xdr_void,
			   .args_size = 0,
			   .xdr_res = (xdrproc_t)nfs3_xdr_void,
			   .res_size = 0,
			   .handler = nfsd_nfs3_null,
			   .flags = 0},
	P(NFSPROC3_GETATTR, "GETATTR", getattr, GETATTR3args, GETATTR3res,
	  xdr_GETATTR3res, FH),
	P(NFSPROC3_SETATTR, "SETATTR", setattr, SETATTR3args, SETATTR3res,
	  xdr_SETATTR3res, MODDRC),
	P(NFSPROC3_LOOKUP, "LOOKUP", lookup, LOOKUP3args, LOOKUP3res,
	  xdr_LOOKUP3res, FH),
	P(NFSPROC3_ACCESS, "ACCESS", access, ACCESS3args, ACCESS3res,
	  xdr_ACCESS3res, FH),
	P(NFSPROC3_READLINK, "READLINK", readlink, READLINK3args, READLINK3res,
	  xdr_READLINK3res, FH),
	P(NFSPROC3_READ, "READ", read, READ3args, READ3res, xdr_READ3res, FH),
	[NFSPROC3_WRITE] = {.name = "WRITE",
			    .xdr_args =
				    (xdrproc_t)nfsd_nfs3_xdr_write_args_inplace,
			    .args_size = sizeof(WRITE3args),
			    .xdr_res = (xdrproc_t)xdr_WRITE3res,
			    .res_size = sizeof(WRITE3res),
			    .handler = nfsd_nfs3_write,
			    .flags = MOD},
	P(NFSPROC3_CREATE, "CREATE", create, CREATE3args, CREATE3res,
	  xdr_CREATE3res, MODDRC),
	P(NFSPROC3_MKDIR, "MKDIR", mkdir, MKDIR3args, MKDIR3res, xdr_MKDIR3res,
	  MODDRC),
	P(NFSPROC3_SYMLINK, "SYMLINK", symlink, SYMLINK3args, SYMLINK3res,
	  xdr_SYMLINK3res, MODDRC),
	P(NFSPROC3_MKNOD, "MKNOD", mknod, MKNOD3args, MKNOD3res, xdr_MKNOD3res,
	  MODDRC),
	P(NFSPROC3_REMOVE, "REMOVE", remove, REMOVE3args, REMOVE3res,
	  xdr_REMOVE3res, MODDRC),
	P(NFSPROC3_RMDIR, "RMDIR", rmdir, RMDIR3args, RMDIR3res, xdr_RMDIR3res,
	  MODDRC),
	P(NFSPROC3_RENAME, "RENAME", rename, RENAME3args, RENAME3res,
	  xdr_RENAME3res, MODDRC),
	P(NFSPROC3_LINK, "LINK", link, LINK3args, LINK3res, xdr_LINK3res,
	  MODDRC),
	P(NFSPROC3_READDIR, "READDIR", readdir, READDIR3args, READDIR3res,
	  nfsd_nfs3_xdr_readdir_res, FH),
	P(NFSPROC3_READDIRPLUS, "READDIRPLUS", readdirplus, READDIRPLUS3args,
	  READDIRPLUS3res, nfsd_nfs3_xdr_readdirplus_res, FH),
	P(NFSPROC3_FSSTAT, "FSSTAT", fsstat, FSSTAT3args, FSSTAT3res,
	  xdr_FSSTAT3res, FH),
	P(NFSPROC3_FSINFO, "FSINFO", fsinfo, FSINFO3args, FSINFO3res,
	  xdr_FSINFO3res, FH),
	P(NFSPROC3_PATHCONF, "PATHCONF", pathconf, PATHCONF3args, PATHCONF3res,
	  xdr_PATHCONF3res, FH),
	/* COMMIT changes nothing a read-only export protects: it only makes
     * earlier WRITEs durable, so it is not NFSD_PF_MODIFIES. */
	P(NFSPROC3_COMMIT, "COMMIT", commit, COMMIT3args, COMMIT3res,
	  xdr_COMMIT3res, FH),
};

const size_t nfsd_nfs3_nprocs = TL_ARRAY_SIZE(nfsd_nfs3_procs);
