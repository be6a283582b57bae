/*
 * nfsd_test.h - a real tesserad in the test process (LMDB and a file://
 * store in a temporary directory, the server on 127.0.0.1 in a thread)
 * and a raw RPC client: calls encoded with the rpcgen routines, sent as
 * one record on any connection, replies read back whole.
 */
#ifndef T_NFSD_TEST_H
#define T_NFSD_TEST_H

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "nfsd/mount3_prot.h"
#include "nfsd/nfsd.h"
#include "nfsd/rpc-internal.h"
#include "objstore/objstore.h"
#include "t/unit/tap.h"

struct tsrv {
	char dir[64];
	/* set before tsrv_start: a fault: wrapper spec around the store
	 * (then fault is that wrapper, for os_fault_configure), and whether
	 * the server handles SIGHUP/SIGTERM/SIGINT itself */
	const char *fault_spec;
	bool signals;
	struct meta *m;
	struct os_store *os, *fault;
	struct cache *c;
	struct nfsd_server *srv;
	pthread_t thr;
	unsigned port;
	char exports[32]; /* tsrv_start_exports's file, or "" */
};

static inline void *
tsrv_run(void *arg)
{
	struct tsrv *t = arg;

	nfsd_server_run(t->srv, t->signals);
	return NULL;
}

/* Format a volume and serve it with cfg (listen and the volume are
 * filled in here; exports: cfg's, or the default "/" for 127.0.0.1). */
static inline void
tsrv_start(struct tsrv *t, struct nfsd_config *cfg)
{
	struct meta_format_opts fo;
	struct cache_opts co = {.buffer_limit = 64 << 20, .upload_threads = 2};
	char *url, *store, *err = NULL;
	int rc;

	snprintf(t->dir, sizeof(t->dir), "/tmp/nfsd_test.XXXXXX");
	CHECK_FATAL(mkdtemp(t->dir) != NULL, "temporary directory");
	/* a small map: valgrind cannot reserve the default 64 GiB */
	url = tl_asprintf("lmdb://%s/meta?mapsize=1G", t->dir);
	store = tl_asprintf("file://%s/obj", t->dir);
	memset(&fo, 0, sizeof(fo));
	fo.name = "t";
	fo.storage = store;
	rc = meta_format(url, &fo, &err);
	if (rc == 0)
		rc = meta_open(url, NULL, &t->m, &err);
	if (rc == 0)
		rc = os_open(store, &t->os, &err);
	if (rc == 0 && t->fault_spec != NULL) {
		rc = os_fault_wrap(t->os, t->fault_spec, &t->fault, &err);
		if (rc == 0)
			t->os = t->fault;
	}
	if (rc == 0)
		rc = cache_open(t->m, t->os, &co, &t->c);
	CHECK_FATAL(rc == 0, "volume set up (%s)", err ? err : "");
	free(err);
	err = NULL;
	free(cfg->listen);
	cfg->listen = tl_strdup("127.0.0.1:0");
	rc = nfsd_server_create(cfg, t->m, t->c, &t->srv, &err);
	CHECK_FATAL(rc == 0, "server starts (%s)", err ? err : "");
	t->port = nfsd_server_port(t->srv);
	pthread_create(&t->thr, NULL, tsrv_run, t);
	free(err);
	free(url);
	free(store);
}

/* Serve with 4 workers and the exports given as text (in a temporary
 * file, removed by tsrv_stop). */
static inline void
tsrv_start_exports(struct tsrv *t, const char *exports)
{
	struct nfsd_config cfg;
	int fd;

	strcpy(t->exports, "/tmp/tsrv_exports.XXXXXX");
	fd = mkstemp(t->exports);
	CHECK_FATAL(fd >= 0, "exports file");
	CHECK_FATAL(write(fd, exports, strlen(exports)) ==
			    (ssize_t)strlen(exports),
		    "exports written");
	close(fd);
	nfsd_config_defaults(&cfg);
	cfg.workers = 4;
	free(cfg.exports);
	cfg.exports = tl_strdup(t->exports);
	tsrv_start(t, &cfg);
	nfsd_config_free(&cfg);
}

/* Make a directory (mode 0777) or a file (0666) name in dir of the
 * served volume; its inode. */
static inline uint64_t
tsrv_make(struct tsrv *t, uint64_t dir, const char *name, bool is_dir)
{
	static const struct meta_cred root = {.uid = 0};
	struct meta_new n = {.type = is_dir ? META_DIR : META_REG,
			     .mode = is_dir ? 0777 : 0666};
	struct meta_attr a;
	uint64_t ino = 0;
	bool existed;

	CHECK_FATAL(meta_create(t->m, &root, dir, name, &n, &ino, &a, &existed,
				NULL, NULL) == 0,
		    "create %s", name);
	return ino;
}

static inline void
tsrv_stop(struct tsrv *t)
{
	char *cmd;

	if (t->exports[0] != '\0')
		unlink(t->exports);

	nfsd_server_stop(t->srv);
	pthread_join(t->thr, NULL);
	nfsd_server_free(t->srv);
	cache_close(t->c);
	os_close(t->os);
	meta_close(t->m);
	cmd = tl_asprintf("rm -rf %s", t->dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", t->dir);
	free(cmd);
}

static inline int
tdial(unsigned port)
{
	struct sockaddr_in sa;
	struct timeval tv = {20, 0};
	int s = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(s);
		return -1;
	}
	return s;
}

/* Connect to 127.0.0.1:port from src:local (src in host order, any
 * address of 127/8; local 0 for any port, a privileged one needs root);
 * -1 with errno if the address cannot be bound or the connection fails. */
static inline int
tdial_from_addr(unsigned port, uint32_t src, unsigned local)
{
	struct sockaddr_in sa;
	struct timeval tv = {20, 0};
	int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(local);
	sa.sin_addr.s_addr = htonl(src);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		goto fail;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		goto fail;
	return s;
fail:
	close(s);
	return -1;
}

/* Connect from 127.0.0.1:local (a privileged port needs root); -1 with
 * errno if that port cannot be bound or the connection fails. */
static inline int
tdial_from(unsigned port, unsigned local)
{
	return tdial_from_addr(port, INADDR_LOOPBACK, local);
}

/* Connect from a port of our choosing below the ephemeral range (so no
 * other connection is given it meanwhile and a test can connect from it
 * again); *local receives it.  -1 if none could be bound. */
static inline int
tdial_own_port(unsigned port, unsigned *local)
{
	static unsigned seed;

	if (seed == 0)
		seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	for (int i = 0; i < 200; i++) {
		unsigned p = 10000 + (unsigned)(rand_r(&seed) % 20000);
		int fd = tdial_from(port, p);

		if (fd >= 0) {
			*local = p;
			return fd;
		}
	}
	return -1;
}

/* The local port of a connected socket. */
static inline unsigned
tlocal_port(int fd)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
		return 0;
	return ntohs(sa.sin_port);
}

/* Close with a reset (SO_LINGER 0): no TIME_WAIT, so the local port can
 * be bound again at once, as a client that reconnects does. */
static inline void
tclose_reset(int fd)
{
	struct linger lg = {1, 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static inline bool
tio(int fd, bool rd, void *p, size_t n)
{
	uint8_t *b = p;

	while (n > 0) {
		ssize_t r = rd ? read(fd, b, n) : write(fd, b, n);

		if (r <= 0)
			return false;
		b += r;
		n -= (size_t)r;
	}
	return true;
}

/* A record-marked call: AUTH_SYS uid/gid 0 ("t"), then args. */
static inline void
tcall_encode(struct tl_buf *b, uint32_t xid, uint32_t prog, uint32_t vers,
	     uint32_t proc, xdrproc_t xargs, void *args)
{
	uint32_t w[] = {0,    xid,      0,  2,         prog, vers,
			proc, AUTH_SYS, 24, 1,         1,    't' << 24,
			0,    0,        0,  AUTH_NONE, 0};
	XDR x;
	size_t size = xargs != NULL ? xdr_sizeof(xargs, args) : 0;

	tl_buf_reset(b);
	for (size_t i = 0; i < TL_ARRAY_SIZE(w); i++)
		tl_buf_append_be32(b, w[i]);
	tl_buf_reserve(b, size);
	if (xargs != NULL) {
		xdrmem_create(&x, (char *)b->data + b->len, (u_int)size,
			      XDR_ENCODE);
		xargs(&x, args);
		b->len += xdr_getpos(&x);
		xdr_destroy(&x);
	}
	tl_put_be32(b->data, 0x80000000u | (uint32_t)(b->len - 4));
}

/* One reply record (fragments joined, marks removed); false on EOF. */
static inline bool
trecv(int fd, struct tl_buf *r)
{
	uint8_t hdr[4];
	uint32_t mark;

	tl_buf_reset(r);
	do {
		if (!tio(fd, true, hdr, 4))
			return false;
		mark = tl_get_be32(hdr);
		tl_buf_reserve(r, mark & 0x7fffffff);
		if (!tio(fd, true, r->data + r->len, mark & 0x7fffffff))
			return false;
		r->len += mark & 0x7fffffff;
	} while (!(mark & 0x80000000u));
	return true;
}

/* Send call and receive its reply (raw record body in raw, may be NULL);
 * decode the result into res with xres.  Returns the accept status, or
 * ~0 on a transport or decode error. */
static inline uint32_t
tcall(int fd, const struct tl_buf *call, struct tl_buf *raw, xdrproc_t xres,
      void *res)
{
	struct tl_buf r = TL_BUF_INIT;
	uint32_t stat = ~0u;
	XDR x;

	if (!tio(fd, false, call->data, call->len) || !trecv(fd, &r) ||
	    r.len < 24)
		goto out;
	stat = tl_get_be32(r.data + 20);
	if (stat == SUCCESS && xres != NULL) {
		xdrmem_create(&x, (char *)r.data + 24, (u_int)r.len - 24,
			      XDR_DECODE);
		if (!xres(&x, res))
			stat = ~0u;
		xdr_destroy(&x);
	}
	if (raw != NULL) {
		tl_buf_reset(raw);
		tl_buf_append(raw, r.data, r.len);
	}
out:
	tl_buf_free(&r);
	return stat;
}

/* NFSv3 call on fd with a fresh record; status word of the result (the
 * first word of every NFSv3 result), or -1. */
static inline int
tnfs(int fd, uint32_t xid, uint32_t proc, xdrproc_t xargs, void *args,
     xdrproc_t xres, void *res)
{
	struct tl_buf b = TL_BUF_INIT;
	uint32_t st;

	tcall_encode(&b, xid, NFSD_PROG_NFS, 3, proc, xargs, args);
	st = tcall(fd, &b, NULL, xres, res);
	tl_buf_free(&b);
	if (st != SUCCESS)
		return -1;
	return (int)*(nfsstat3 *)res;
}

/* GETATTR of the handle h[0..len) (any bytes) on fd: its status or -1. */
static inline int
tgetattr(int fd, const void *h, size_t len)
{
	GETATTR3args a;
	GETATTR3res r;
	int st;

	a.object.data.data_len = (u_int)len;
	a.object.data.data_val = (char *)h;
	memset(&r, 0, sizeof(r));
	st = tnfs(fd, 2, NFSPROC3_GETATTR, (xdrproc_t)xdr_GETATTR3args, &a,
		  (xdrproc_t)xdr_GETATTR3res, &r);
	xdr_free((xdrproc_t)xdr_GETATTR3res, (char *)&r);
	return st;
}

/* MNT path into fh (data malloc'd); the mount status or -1. */
static inline int
tmnt(int fd, const char *path, nfs_fh3 *fh)
{
	struct mnt3_dirpath_args a = {(char *)path};
	struct tl_buf b = TL_BUF_INIT;
	mountres3 r;
	int st = -1;

	memset(&r, 0, sizeof(r));
	tcall_encode(&b, 1, NFSD_PROG_MOUNT, 3, MOUNTPROC3_MNT,
		     (xdrproc_t)xdr_mnt3_dirpath_args, &a);
	if (tcall(fd, &b, NULL, (xdrproc_t)xdr_mountres3, &r) == SUCCESS) {
		st = r.fhs_status;
		if (st == MNT3_OK) {
			mountres3_ok *ok = &r.mountres3_u.mountinfo;

			fh->data.data_len = ok->fhandle.mnt3_fhandle_len;
			fh->data.data_val =
				tl_memdup(ok->fhandle.mnt3_fhandle_val,
					  ok->fhandle.mnt3_fhandle_len);
		}
	}
	xdr_free((xdrproc_t)xdr_mountres3, (char *)&r);
	tl_buf_free(&b);
	return st;
}

/* Copy a handle (for keeping one out of a result freed later). */
static inline void
tfh_copy(nfs_fh3 *dst, const nfs_fh3 *src)
{
	dst->data.data_len = src->data.data_len;
	dst->data.data_val = tl_memdup(src->data.data_val, src->data.data_len);
}

#endif
