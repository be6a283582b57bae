/*
 * xdr-bound.h - bounded decoding of the unbounded items of the NFSv3
 * XDR (xdr_bound.c); used by the rpcgen output and by the dispatcher.
 */
#ifndef NFSD_XDR_BOUND_H
#define NFSD_XDR_BOUND_H

#include <rpc/rpc.h>

/* Largest length a string or opaque may announce while decoding in this
 * thread; 0: no limit.  The dispatcher sets it around argument
 * decoding. */
extern __thread u_int nfsd_xdr_limit;

/* xdr_string with the limit; decoding fails on a NUL inside the name. */
bool_t nfsd_xdr_name(XDR *xdrs, char **objp);
/* xdr_bytes with maxsize lowered to the limit. */
bool_t nfsd_xdr_bytes(XDR *xdrs, char **objp, u_int *len, u_int maxsize);

#endif /* NFSD_XDR_BOUND_H */
