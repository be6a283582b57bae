/*
 * xdr_bound.c - the variable-length XDR items of the NFSv3 arguments
 * (names, symlink paths, WRITE data) decoded with a bound.
 *
 * rpcgen declares filename3, nfspath3 and opaque data<> without a maximum
 * (~0), and libtirpc's xdr_string and xdr_bytes allocate the announced
 * length before they check that the stream holds that many bytes: a
 * 40-byte call announcing a 4 GiB name would make the server allocate
 * 4 GiB.  The generated code calls these instead (a sed in
 * nfsd/local.mk): while the dispatcher decodes a call, nfsd_xdr_limit is
 * the length of the call message, which no item in it can exceed.
 *
 * Names and paths with a NUL byte do not decode either (GARBAGE_ARGS, as
 * knfsd answers): C strings would silently cut them short, so "a\0b"
 * would name "a".
 */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include <rpc/rpc.h>

#include "nfsd/xdr-bound.h"

__thread u_int nfsd_xdr_limit;

static u_int
bound(void)
{
	return nfsd_xdr_limit != 0 ? nfsd_xdr_limit : ~0u;
}

bool_t
nfsd_xdr_name(XDR *xdrs, char **objp)
{
	u_int pos = 0, size = 0;
	bool peeked = false;

	if (xdrs->x_op == XDR_DECODE) {
		pos = xdr_getpos(xdrs);
		peeked = xdr_u_int(xdrs, &size) && xdr_setpos(xdrs, pos);
	}
	if (!xdr_string(xdrs, objp, bound()))
		return FALSE;
	if (peeked && *objp != NULL && memchr(*objp, '\0', size) != NULL)
		return FALSE;
	return TRUE;
}

bool_t
nfsd_xdr_bytes(XDR *xdrs, char **objp, u_int *len, u_int maxsize)
{
	return xdr_bytes(xdrs, objp, len,
			 maxsize < bound() ? maxsize : bound());
}
