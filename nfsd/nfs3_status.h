/*
 * nfs3_status.h - the nfsstat3 values of RFC 1813 (section 2.6), in
 * protocol order, as one X-macro list.  The daemon's counters and
 * metrics (nfsd/counters.c, nfsd/metrics.c) and the protocol tests'
 * harness (t/nfs/tharness.c) all name statuses from it, each with the
 * constants of its own header (the daemon's XDR, libnfs's), which spell
 * them alike; so this file declares nothing and includes nothing, and
 * the tests may include it.
 *
 *   #define ENTRY(s) {s, #s},
 *   static const struct { uint32_t st; const char *name; } v[] = {
 *           NFSD_NFS3_STATUSES(ENTRY)
 *   };
 */
#ifndef NFSD_NFS3_STATUS_H
#define NFSD_NFS3_STATUS_H

#define NFSD_NFS3_STATUSES(X)                                                  \
	X(NFS3_OK)                                                             \
	X(NFS3ERR_PERM)                                                        \
	X(NFS3ERR_NOENT)                                                       \
	X(NFS3ERR_IO)                                                          \
	X(NFS3ERR_NXIO)                                                        \
	X(NFS3ERR_ACCES)                                                       \
	X(NFS3ERR_EXIST)                                                       \
	X(NFS3ERR_XDEV)                                                        \
	X(NFS3ERR_NODEV)                                                       \
	X(NFS3ERR_NOTDIR)                                                      \
	X(NFS3ERR_ISDIR)                                                       \
	X(NFS3ERR_INVAL)                                                       \
	X(NFS3ERR_FBIG)                                                        \
	X(NFS3ERR_NOSPC)                                                       \
	X(NFS3ERR_ROFS)                                                        \
	X(NFS3ERR_MLINK)                                                       \
	X(NFS3ERR_NAMETOOLONG)                                                 \
	X(NFS3ERR_NOTEMPTY)                                                    \
	X(NFS3ERR_DQUOT)                                                       \
	X(NFS3ERR_STALE)                                                       \
	X(NFS3ERR_REMOTE)                                                      \
	X(NFS3ERR_BADHANDLE)                                                   \
	X(NFS3ERR_NOT_SYNC)                                                    \
	X(NFS3ERR_BAD_COOKIE)                                                  \
	X(NFS3ERR_NOTSUPP)                                                     \
	X(NFS3ERR_TOOSMALL)                                                    \
	X(NFS3ERR_SERVERFAULT)                                                 \
	X(NFS3ERR_BADTYPE)                                                     \
	X(NFS3ERR_JUKEBOX)

#endif /* NFSD_NFS3_STATUS_H */
