/*
 * nfs3_xdr.c - XDR of READDIR3res and READDIRPLUS3res with loops.
 *
 * rpcgen turns "entry3 *nextentry" into xdr_pointer -> xdr_entry3 ->
 * xdr_pointer ..., one level of recursion (a few hundred bytes of stack)
 * per entry, for encoding, decoding and xdr_free alike.  A 1 MiB READDIR
 * reply holds some 30,000 entries, far more than a worker thread's stack
 * allows.  These routines produce the same bytes (an optional-data chain:
 * TRUE entry TRUE entry ... FALSE) walking the list iteratively.  Entries
 * are allocated with calloc (decode) or tl_malloc (handlers) and released
 * with free, like libtirpc's mem_alloc/mem_free.
 */
#include <stdlib.h>

#include "nfsd/nfs3-internal.h"

void
nfsd_nfs3_entry3_free_list(entry3 *e)
{
	while (e != NULL) {
		entry3 *next = e->nextentry;

		free(e->name);
		free(e);
		e = next;
	}
}

void
nfsd_nfs3_entryplus3_free_list(entryplus3 *e)
{
	while (e != NULL) {
		entryplus3 *next = e->nextentry;

		free(e->name);
		xdr_free((xdrproc_t)xdr_post_op_fh3, (char *)&e->name_handle);
		free(e);
		e = next;
	}
}

static bool_t
nfs3_xdr_entry3_fields(XDR *xdrs, entry3 *e)
{
	return xdr_fileid3(xdrs, &e->fileid) && xdr_filename3(xdrs, &e->name) &&
	       xdr_cookie3(xdrs, &e->cookie);
}

static bool_t
nfs3_xdr_entryplus3_fields(XDR *xdrs, entryplus3 *e)
{
	return xdr_fileid3(xdrs, &e->fileid) && xdr_filename3(xdrs, &e->name) &&
	       xdr_cookie3(xdrs, &e->cookie) &&
	       xdr_post_op_attr(xdrs, &e->name_attributes) &&
	       xdr_post_op_fh3(xdrs, &e->name_handle);
}

/* The list walk is the same for both entry types but for the field
 * routine, the struct size and where nextentry lives: a macro keeps the
 * two copies from drifting apart. */
#define NFS3_XDR_LIST(xdrs, headp, type, fields, freelist)                     \
	do {                                                                   \
		type *e_, **tail_;                                             \
		bool_t more_;                                                  \
                                                                               \
		switch ((xdrs)->x_op) {                                        \
		case XDR_FREE:                                                 \
			freelist(*(headp));                                    \
			*(headp) = NULL;                                       \
			return TRUE;                                           \
		case XDR_ENCODE:                                               \
			for (e_ = *(headp); e_ != NULL; e_ = e_->nextentry) {  \
				more_ = TRUE;                                  \
				if (!xdr_bool(xdrs, &more_) ||                 \
				    !fields(xdrs, e_))                         \
					return FALSE;                          \
			}                                                      \
			more_ = FALSE;                                         \
			return xdr_bool(xdrs, &more_);                         \
		case XDR_DECODE:                                               \
			tail_ = (headp);                                       \
			while (*tail_ != NULL)                                 \
				tail_ = &(*tail_)->nextentry;                  \
			for (;;) {                                             \
				if (!xdr_bool(xdrs, &more_))                   \
					return FALSE;                          \
				if (!more_)                                    \
					return TRUE;                           \
				e_ = calloc(1, sizeof(*e_));                   \
				if (e_ == NULL)                                \
					return FALSE;                          \
				*tail_ = e_;                                   \
				tail_ = &e_->nextentry;                        \
				if (!fields(xdrs, e_))                         \
					return FALSE;                          \
			}                                                      \
		}                                                              \
		return FALSE;                                                  \
	} while (0)

static bool_t
nfs3_xdr_entry3_list(XDR *xdrs, entry3 **head)
{
	NFS3_XDR_LIST(xdrs, head, entry3, nfs3_xdr_entry3_fields,
		      nfsd_nfs3_entry3_free_list);
}

static bool_t
nfs3_xdr_entryplus3_list(XDR *xdrs, entryplus3 **head)
{
	NFS3_XDR_LIST(xdrs, head, entryplus3, nfs3_xdr_entryplus3_fields,
		      nfsd_nfs3_entryplus3_free_list);
}

bool_t
nfsd_nfs3_xdr_readdir_res(XDR *xdrs, READDIR3res *objp)
{
	READDIR3resok *ok = &objp->READDIR3res_u.resok;

	if (!xdr_nfsstat3(xdrs, &objp->status))
		return FALSE;
	if (objp->status != NFS3_OK)
		return xdr_READDIR3resfail(xdrs, &objp->READDIR3res_u.resfail);
	return xdr_post_op_attr(xdrs, &ok->dir_attributes) &&
	       xdr_cookieverf3(xdrs, ok->cookieverf) &&
	       nfs3_xdr_entry3_list(xdrs, &ok->reply.entries) &&
	       xdr_bool(xdrs, &ok->reply.eof);
}

bool_t
nfsd_nfs3_xdr_readdirplus_res(XDR *xdrs, READDIRPLUS3res *objp)
{
	READDIRPLUS3resok *ok = &objp->READDIRPLUS3res_u.resok;

	if (!xdr_nfsstat3(xdrs, &objp->status))
		return FALSE;
	if (objp->status != NFS3_OK)
		return xdr_READDIRPLUS3resfail(
			xdrs, &objp->READDIRPLUS3res_u.resfail);
	return xdr_post_op_attr(xdrs, &ok->dir_attributes) &&
	       xdr_cookieverf3(xdrs, ok->cookieverf) &&
	       nfs3_xdr_entryplus3_list(xdrs, &ok->reply.entries) &&
	       xdr_bool(xdrs, &ok->reply.eof);
}

/*
 * WRITE arguments with the data left in the call message: data_val
 * points into the decode buffer (the dispatcher keeps the message until
 * the handler returns), which saves copying up to 1 MiB per WRITE.
 * Freeing releases the file handle only.  Only for xdrmem streams.
 */
bool_t
nfsd_nfs3_xdr_write_args_inplace(XDR *xdrs, WRITE3args *objp)
{
	u_int len;
	char *p;

	if (xdrs->x_op == XDR_FREE) {
		objp->data.data_val = NULL;
		objp->data.data_len = 0;
		return xdr_nfs_fh3(xdrs, &objp->file);
	}
	if (xdrs->x_op != XDR_DECODE)
		return xdr_WRITE3args(xdrs, objp);
	if (!xdr_nfs_fh3(xdrs, &objp->file) ||
	    !xdr_offset3(xdrs, &objp->offset) ||
	    !xdr_count3(xdrs, &objp->count) ||
	    !xdr_stable_how(xdrs, &objp->stable) || !xdr_u_int(xdrs, &len))
		return FALSE;
	/* the padding must be there too, as xdr_opaque wants it */
	if (len > (u_int)INT32_MAX - 3)
		return FALSE;
	p = (char *)xdr_inline(xdrs, (int)((len + 3) & ~3u));
	if (p == NULL)
		return FALSE;
	objp->data.data_val = p;
	objp->data.data_len = len;
	return TRUE;
}
