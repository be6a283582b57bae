/*
 * nfs3-internal.h - pieces shared by the NFSv3 procedure handlers
 * (nfsd/nfs3*.c): attribute conversion, wcc data, sattr3, name rules and
 * the hand-written XDR routines of the READDIR entry lists.
 *
 * Nothing outside nfsd/nfs3*.c and its unit tests includes this file.
 */
#ifndef NFSD_NFS3_INTERNAL_H
#define NFSD_NFS3_INTERNAL_H

#include "nfsd/nfsd-internal.h"

#define NFS3_SUBSYS "nfs3"

/* rtmax = wtmax = the largest READ/WRITE/READDIR reply we build. */
#define NFS3_IOMAX (1u << 20)
/* meta allows up to 65000 links (-EMLINK past that; doc/DESIGN.md). */
#define NFS3_LINK_MAX 65000

/* ---- attributes (nfs3.c) ------------------------------------------------- */

/* meta's file type (enum meta_type) as ftype3, and back (0: none). */
ftype3 nfsd_nfs3_ftype(uint8_t type);
uint8_t nfsd_nfs3_meta_type(ftype3 type);

void nfsd_nfs3_time(uint64_t ns, nfstime3 *out);
uint64_t nfsd_nfs3_time_ns(const nfstime3 *t);

/* fattr3 of a (which the caller already overlaid with buffered writes). */
void nfsd_nfs3_fattr(const struct nfsd_call *c, const struct meta_attr *a,
		     fattr3 *out);
/* Overlay buffered writes of a regular file (a is modified). */
void nfsd_nfs3_overlay(const struct nfsd_call *c, struct meta_attr *a);
/* post_op_attr from a copy of a, overlaid. */
void nfsd_nfs3_post_from(const struct nfsd_call *c, const struct meta_attr *a,
			 post_op_attr *out);
/* post_op_attr of ino, fetched now; no attributes if that fails. */
void nfsd_nfs3_post_ino(const struct nfsd_call *c, uint64_t ino,
			post_op_attr *out);
/* wcc_data: pre (may be NULL: no pre-op attributes), post (may be NULL:
 * fetched from ino). */
void nfsd_nfs3_wcc(const struct nfsd_call *c, uint64_t ino,
		   const struct meta_pre_attr *pre,
		   const struct meta_attr *post, wcc_data *out);
/* The pre-op wcc of an inode's current attributes a. */
void nfsd_nfs3_wcc_of(const struct meta_attr *a, struct meta_pre_attr *out);

/* sattr3 -> struct meta_setattr (valid flags); -EINVAL for a bad time. */
int nfsd_nfs3_sattr(const sattr3 *in, struct meta_setattr *out);

/* ---- names from the wire (nfs3.c) ---------------------------------------- */

enum nfs3_nameop {
	NFS3_NAME_LOOKUP,
	NFS3_NAME_CREATE, /* CREATE, MKDIR, MKNOD */
	NFS3_NAME_SYMLINK,
	NFS3_NAME_LINK,
	NFS3_NAME_REMOVE, /* REMOVE, RMDIR */
	NFS3_NAME_RENAME,
};

/* NFS3_OK if name may be used for op; else the status knfsd answers. */
nfsstat3 nfsd_nfs3_check_name(const char *name, enum nfs3_nameop op);

/* Is ino the root of the call's export (where ".." stays)? */
static inline bool
nfs3_is_export_root(const struct nfsd_call *c, uint64_t ino)
{
	return c->exp != NULL && ino == c->exp->root_ino;
}

/* ---- handlers (nfs3_data.c, nfs3_dir.c, nfs3_readdir.c) ------------------ */

#define NFS3_HANDLER(name)                                                     \
	void nfsd_nfs3_##name(struct nfsd_call *c, void *args, void *res)

NFS3_HANDLER(null);
NFS3_HANDLER(getattr);
NFS3_HANDLER(setattr);
NFS3_HANDLER(lookup);
NFS3_HANDLER(access);
NFS3_HANDLER(readlink);
NFS3_HANDLER(read);
NFS3_HANDLER(write);
NFS3_HANDLER(create);
NFS3_HANDLER(mkdir);
NFS3_HANDLER(symlink);
NFS3_HANDLER(mknod);
NFS3_HANDLER(remove);
NFS3_HANDLER(rmdir);
NFS3_HANDLER(rename);
NFS3_HANDLER(link);
NFS3_HANDLER(readdir);
NFS3_HANDLER(readdirplus);
NFS3_HANDLER(fsstat);
NFS3_HANDLER(fsinfo);
NFS3_HANDLER(pathconf);
NFS3_HANDLER(commit);

/* ---- XDR of the READDIR results (nfs3_xdr.c) -----------------------------
 *
 * Drop-in replacements for rpcgen's xdr_READDIR3res / xdr_READDIRPLUS3res
 * that walk the entry list in a loop for XDR_ENCODE, XDR_DECODE and
 * XDR_FREE, so a reply of tens of thousands of entries needs constant
 * stack.  The procedure table uses these.
 */
bool_t nfsd_nfs3_xdr_readdir_res(XDR *xdrs, READDIR3res *objp);
/* WRITE3args decoded without copying the data (nfs3_xdr.c). */
bool_t nfsd_nfs3_xdr_write_args_inplace(XDR *xdrs, WRITE3args *objp);
bool_t nfsd_nfs3_xdr_readdirplus_res(XDR *xdrs, READDIRPLUS3res *objp);
/* Free a whole entry list (names, handles, entries), iteratively. */
void nfsd_nfs3_entry3_free_list(entry3 *e);
void nfsd_nfs3_entryplus3_free_list(entryplus3 *e);

/* XDR sizes used to fill a reply exactly up to the client's count. */
#define NFS3_XDR_PAD(n)    (((size_t)(n) + 3) & ~(size_t)3)
#define NFS3_XDR_FATTR     84                   /* fattr3 */
#define NFS3_XDR_POST_ATTR (4 + NFS3_XDR_FATTR) /* post_op_attr, present */
/* entry3 with its value_follows word. */
#define NFS3_XDR_ENTRY(namelen) (4 + 8 + 4 + NFS3_XDR_PAD(namelen) + 8)

#endif /* NFSD_NFS3_INTERNAL_H */
