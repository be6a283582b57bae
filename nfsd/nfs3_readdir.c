/*
 * nfs3_readdir.c - READDIR and READDIRPLUS (RFC 1813 sections 3.3.16-17).
 *
 * Cookies (doc/DESIGN.md, "Readdir"): every entry gets a cookie from a
 * per-directory counter when it is linked, "." is cookie 1 and ".." cookie
 * 2 (synthesised here), and a reply resumes with one ordered scan of the
 * entries whose cookie is greater than the client's.  Nothing is kept
 * between calls.  Because a cookie names the same position forever
 * (entries created later sort after it, removed ones just vanish), the
 * cookie verifier is constant zero and never checked, as knfsd does for
 * file systems with stable cookies; a cookie past the end simply yields
 * an empty list with eof.
 *
 * A reply is filled with exactly what fits in the client's count
 * (READDIR) or maxcount (READDIRPLUS), measured with the XDR sizes of
 * what is sent; TOOSMALL when not a single entry fits.  READDIRPLUS's
 * dircount is ignored, as knfsd ignores it: the Linux client sends
 * dircount = maxcount / 8 "to make it big enough", which by the RFC's
 * measure (the entry3 part of each entry) would cut its replies by about
 * 40% and cost that many more round trips on every `ls -l`.
 *
 * READDIRPLUS hands out what a LOOKUP of each name would: entries'
 * handles and attributes only to a caller who may search the directory
 * (x), as knfsd's lookup of each entry requires.  Reading it (r) without
 * search gives names and cookies only, "." and ".." included, as
 * READDIR does; a handle would otherwise open every file in a directory
 * whose mode says its contents are not reachable.
 */
#include <errno.h>
#include <stdlib.h>

#include "nfsd/nfs3-internal.h"

/* resok without entries: status, post_op_attr, cookieverf, the final
 * value_follows FALSE and eof. */
#define NFS3_XDR_RD_FIXED (4 + NFS3_XDR_POST_ATTR + 8 + 4 + 4)
/* post_op_fh3 of one of our handles. */
#define NFS3_XDR_POST_FH (4 + 4 + NFS3_XDR_PAD(NFSD_FH_SIZE))

struct nfs3_rd {
	struct nfsd_call *c;
	bool plus;
	bool attrs;  /* READDIRPLUS entries carry handles and attributes */
	size_t left; /* bytes of count / maxcount still free */
	size_t n;    /* entries so far */
	entry3 *head, **tail;
	entryplus3 *phead, **ptail;
};

/* Add one entry; 1 when it does not fit (the reply is full). */
static int
nfs3_rd_add(struct nfs3_rd *rd, const char *name, size_t namelen, uint64_t ino,
	    uint64_t cookie, const struct meta_attr *attr)
{
	size_t size = NFS3_XDR_ENTRY(namelen);
	entryplus3 *pe;
	entry3 *e;

	if (rd->plus) {
		size += attr != NULL ? NFS3_XDR_POST_ATTR + NFS3_XDR_POST_FH
				     : 4 + 4;
	}
	if (size > rd->left)
		return 1;
	rd->left -= size;
	rd->n++;
	if (!rd->plus) {
		e = tl_calloc(1, sizeof(*e));
		e->fileid = ino;
		e->name = tl_strndup(name, namelen);
		e->cookie = cookie;
		*rd->tail = e;
		rd->tail = &e->nextentry;
		return 0;
	}
	pe = tl_calloc(1, sizeof(*pe));
	pe->fileid = ino;
	pe->name = tl_strndup(name, namelen);
	pe->cookie = cookie;
	if (attr != NULL) {
		nfsd_nfs3_post_from(rd->c, attr, &pe->name_attributes);
		pe->name_handle.handle_follows = TRUE;
		nfsd_fh_make(rd->c, ino, attr->gen,
			     &pe->name_handle.post_op_fh3_u.handle);
	}
	*rd->ptail = pe;
	rd->ptail = &pe->nextentry;
	return 0;
}

static int
nfs3_rd_cb(void *arg, const char *name, size_t namelen, uint64_t ino,
	   uint64_t cookie, const struct meta_attr *attr)
{
	return nfs3_rd_add(arg, name, namelen, ino, cookie, attr);
}

/* "." (cookie 1) and ".." (cookie 2) when the client starts before them;
 * ".." of the export root is the root.  1 when the reply is full. */
static int
nfs3_rd_dots(struct nfs3_rd *rd, uint64_t cookie)
{
	struct nfsd_call *c = rd->c;
	struct meta_attr pattr, *pa = NULL;
	uint64_t parent = c->attr.parent;

	if (cookie < 1 &&
	    nfs3_rd_add(rd, ".", 1, c->ino, 1, rd->attrs ? &c->attr : NULL))
		return 1;
	if (cookie >= 2)
		return 0;
	if (nfs3_is_export_root(c, c->ino) || parent == 0) {
		parent = c->ino;
		pa = &c->attr;
	} else if (rd->attrs && nfsd_fh_inside(c, parent, &pattr) == 0) {
		pa = &pattr; /* moved out of the export since: no handle */
	}
	return nfs3_rd_add(rd, "..", 2, parent, 2, rd->attrs ? pa : NULL);
}

/* The common part: fill rd from cookie on; 0, or a negative errno
 * (-TL_ETOOSMALL when not one entry fits in count). */
static int
nfs3_rd_fill(struct nfs3_rd *rd, uint64_t cookie, size_t count, bool *eof)
{
	struct nfsd_call *c = rd->c;

	*eof = false;
	if (c->attr.type != META_DIR)
		return -ENOTDIR;
	count = TL_MIN(count, NFS3_IOMAX);
	if (count < NFS3_XDR_RD_FIXED)
		return -TL_ETOOSMALL;
	rd->left = count - NFS3_XDR_RD_FIXED;
	rd->attrs =
		rd->plus && meta_access(&c->attr, &c->cred, META_MAY_EXEC) != 0;
	if (nfs3_rd_dots(rd, cookie) == 0) {
		int err = meta_readdir(c->ctx->meta, &c->cred, c->ino,
				       TL_MAX(cookie, 2), rd->attrs, nfs3_rd_cb,
				       rd, eof);
		if (err < 0)
			return err;
	}
	if (rd->n == 0 && !*eof)
		return -TL_ETOOSMALL;
	return 0;
}

void
nfsd_nfs3_readdir(struct nfsd_call *c, void *args, void *res)
{
	READDIR3args *a = args;
	READDIR3res *r = res;
	READDIR3resok *ok = &r->READDIR3res_u.resok;
	struct nfs3_rd rd = {.c = c, .plus = false};
	bool eof;
	int err;

	rd.tail = &rd.head;
	err = nfs3_rd_fill(&rd, a->cookie, a->count, &eof);
	r->status = nfsd_errno_to_nfs3(err);
	/* dir_attributes is the first member of resok and resfail. */
	nfsd_nfs3_post_from(c, &c->attr, &ok->dir_attributes);
	if (err != 0) {
		nfsd_nfs3_entry3_free_list(rd.head);
		return;
	}
	memset(ok->cookieverf, 0, NFS3_COOKIEVERFSIZE);
	ok->reply.entries = rd.head;
	ok->reply.eof = eof;
}

void
nfsd_nfs3_readdirplus(struct nfsd_call *c, void *args, void *res)
{
	READDIRPLUS3args *a = args;
	READDIRPLUS3res *r = res;
	READDIRPLUS3resok *ok = &r->READDIRPLUS3res_u.resok;
	struct nfs3_rd rd = {.c = c, .plus = true};
	bool eof;
	int err;

	rd.ptail = &rd.phead;
	err = nfs3_rd_fill(&rd, a->cookie, a->maxcount, &eof);
	r->status = nfsd_errno_to_nfs3(err);
	nfsd_nfs3_post_from(c, &c->attr, &ok->dir_attributes);
	if (err != 0) {
		nfsd_nfs3_entryplus3_free_list(rd.phead);
		return;
	}
	memset(ok->cookieverf, 0, NFS3_COOKIEVERFSIZE);
	ok->reply.entries = rd.phead;
	ok->reply.eof = eof;
}
