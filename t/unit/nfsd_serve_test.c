/*
 * nfsd_serve_test - the checks the dispatcher makes before a handler runs,
 * against a real volume (LMDB and file:// store in a temporary directory)
 * served on 127.0.0.1: MNT rules (no rule, secure port, missing export),
 * handle verification (tampered, truncated, unknown export, wrong
 * generation, missing inode, client not allowed, insecure port),
 * read-only exports, squashing of AUTH_NONE, and the duplicate request
 * cache replaying a retransmitted CREATE and REMOVE.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cache/cache.h"
#include "nfsd/mount3_prot.h"
#include "nfsd/nfsd.h"
#include "nfsd/rpc-internal.h"
#include "objstore/objstore.h"
#include "t/unit/nfsd_test.h"

static struct nfsd_server *srv;
static int fd;

static const char exports_text[] =
	"/     127.0.0.1(rw,insecure,no_root_squash)\n"
	"/ro   127.0.0.1(ro,insecure)\n"
	"/sec  127.0.0.1(rw)\n"
	"/deny 10.0.0.0/8(rw,insecure)\n"
	"/gone *(rw,insecure)\n";

static void *
serve(void *arg)
{
	nfsd_server_run(srv, false);
	return NULL;
}

/* Send a call (AUTH_SYS root, or AUTH_NONE) and decode the result with
 * xres into res; returns the accept status (or ~0 on transport error). */
static uint32_t
call(uint32_t xid, uint32_t prog, uint32_t proc, bool authsys, xdrproc_t xargs,
     void *args, xdrproc_t xres, void *res)
{
	char buf[8192];
	uint8_t hdr[4];
	uint32_t mark, stat;
	XDR x;
	u_int n;

	xdrmem_create(&x, buf + 4, sizeof(buf) - 4, XDR_ENCODE);
	{
		uint32_t w[] = {xid, 0, 2, prog, 3, proc};

		for (size_t i = 0; i < 6; i++)
			xdr_uint32_t(&x, &w[i]);
	}
	if (authsys) {
		uint32_t w[] = {AUTH_SYS, 24, 1, 1, 't' << 24, 0, 0, 0};

		for (size_t i = 0; i < 8; i++)
			xdr_uint32_t(&x, &w[i]);
	} else {
		uint32_t w[] = {AUTH_NONE, 0};

		xdr_uint32_t(&x, &w[0]);
		xdr_uint32_t(&x, &w[1]);
	}
	{
		uint32_t w[] = {AUTH_NONE, 0};

		xdr_uint32_t(&x, &w[0]);
		xdr_uint32_t(&x, &w[1]);
	}
	if (xargs != NULL)
		xargs(&x, args);
	n = xdr_getpos(&x);
	xdr_destroy(&x);
	tl_put_be32((uint8_t *)buf, 0x80000000u | n);
	if (!tio(fd, false, buf, n + 4) || !tio(fd, true, hdr, 4))
		return ~0u;
	mark = tl_get_be32(hdr) & 0x7fffffff;
	if (mark > sizeof(buf) || !tio(fd, true, buf, mark) || mark < 24)
		return ~0u;
	stat = tl_get_be32((uint8_t *)buf + 20);
	if (stat == SUCCESS && xres != NULL) {
		xdrmem_create(&x, buf + 24, mark - 24, XDR_DECODE);
		if (!xres(&x, res))
			stat = ~0u;
		xdr_destroy(&x);
	}
	return stat;
}

static int
mnt(const char *path, nfs_fh3 *fh)
{
	struct mnt3_dirpath_args a = {(char *)path};
	mountres3 r;
	int st;

	memset(&r, 0, sizeof(r));
	if (call(1, NFSD_PROG_MOUNT, MOUNTPROC3_MNT, true,
		 (xdrproc_t)xdr_mnt3_dirpath_args, &a, (xdrproc_t)xdr_mountres3,
		 &r) != SUCCESS)
		return -1;
	st = r.fhs_status;
	if (st == MNT3_OK && fh != NULL) {
		mountres3_ok *ok = &r.mountres3_u.mountinfo;

		fh->data.data_len = ok->fhandle.mnt3_fhandle_len;
		fh->data.data_val = tl_memdup(ok->fhandle.mnt3_fhandle_val,
					      ok->fhandle.mnt3_fhandle_len);
		CHECK(ok->auth_flavors.auth_flavors_len == 1 &&
			      ok->auth_flavors.auth_flavors_val[0] == AUTH_SYS,
		      "MNT %s offers AUTH_SYS", path);
	}
	xdr_free((xdrproc_t)xdr_mountres3, (char *)&r);
	return st;
}

static int
create(uint32_t xid, const nfs_fh3 *dir, const char *name, bool authsys)
{
	CREATE3args a;
	CREATE3res r;
	int st;

	memset(&a, 0, sizeof(a));
	a.where.dir = *dir;
	a.where.name = (char *)name;
	a.how.mode = GUARDED;
	memset(&r, 0, sizeof(r));
	if (call(xid, NFSD_PROG_NFS, NFSPROC3_CREATE, authsys,
		 (xdrproc_t)xdr_CREATE3args, &a, (xdrproc_t)xdr_CREATE3res,
		 &r) != SUCCESS)
		return -1;
	st = r.status;
	xdr_free((xdrproc_t)xdr_CREATE3res, (char *)&r);
	return st;
}

static int
remove_(uint32_t xid, const nfs_fh3 *dir, const char *name)
{
	REMOVE3args a;
	REMOVE3res r;
	int st;

	a.object.dir = *dir;
	a.object.name = (char *)name;
	memset(&r, 0, sizeof(r));
	if (call(xid, NFSD_PROG_NFS, NFSPROC3_REMOVE, true,
		 (xdrproc_t)xdr_REMOVE3args, &a, (xdrproc_t)xdr_REMOVE3res,
		 &r) != SUCCESS)
		return -1;
	st = r.status;
	xdr_free((xdrproc_t)xdr_REMOVE3res, (char *)&r);
	return st;
}

static void
test_handles(struct meta *m, const nfs_fh3 *root)
{
	const struct meta_settings *vol = meta_settings(m);
	struct nfsd_exports ex;
	struct nfsd_fh h;
	struct meta_attr a;
	uint8_t t[NFSD_FH_SIZE];
	char *err = NULL;

	CHECK_EQ(tgetattr(fd, root->data.data_val, root->data.data_len),
		 NFS3_OK, "GETATTR of the root handle");
	memcpy(t, root->data.data_val, sizeof(t));
	t[20] ^= 1;
	CHECK_EQ(tgetattr(fd, t, sizeof(t)), NFS3ERR_BADHANDLE,
		 "tampered handle: BADHANDLE");
	CHECK_EQ(tgetattr(fd, root->data.data_val, 20), NFS3ERR_BADHANDLE,
		 "truncated handle: BADHANDLE");
	CHECK_EQ(tgetattr(fd, t, 0), NFS3ERR_BADHANDLE,
		 "empty handle: BADHANDLE");

	/* handles with a valid MAC, made with the volume's secret */
	nfsd_exports_parse(exports_text, "t", &ex, &err);
	CHECK_FATAL(nfsd_fh_decode(vol, root->data.data_val,
				   root->data.data_len, &h) == 0,
		    "the MNT handle decodes");
	CHECK(meta_getattr(m, h.ino, &a) == 0 && h.ino == META_ROOT_INO &&
		      h.gen == a.gen,
	      "MNT / gives the root inode and its generation");
	h.export_id = 12345;
	nfsd_fh_encode(vol, &h, t);
	CHECK_EQ(tgetattr(fd, t, sizeof(t)), NFS3ERR_STALE,
		 "unknown export id: STALE");
	nfsd_fh_decode(vol, root->data.data_val, root->data.data_len, &h);
	h.gen ^= 1;
	nfsd_fh_encode(vol, &h, t);
	CHECK_EQ(tgetattr(fd, t, sizeof(t)), NFS3ERR_STALE,
		 "wrong generation: STALE");
	h.gen ^= 1;
	h.ino = 999999;
	nfsd_fh_encode(vol, &h, t);
	CHECK_EQ(tgetattr(fd, t, sizeof(t)), NFS3ERR_STALE,
		 "no such inode: STALE");
	h.ino = META_ROOT_INO;
	h.export_id = nfsd_export_by_path(&ex, "/deny")->id;
	nfsd_fh_encode(vol, &h, t);
	CHECK_EQ(tgetattr(fd, t, sizeof(t)), NFS3ERR_ACCES,
		 "export without a rule for this client: ACCES");
	h.export_id = nfsd_export_by_path(&ex, "/sec")->id;
	nfsd_fh_encode(vol, &h, t);
	CHECK_EQ(tgetattr(fd, t, sizeof(t)), NFS3ERR_PERM,
		 "secure export from port >= 1024: PERM");
	nfsd_exports_free(&ex);
}

static int
setup(const char *dir, struct meta **m, struct os_store **os, struct cache **c,
      char **expath)
{
	struct meta_format_opts fo;
	struct cache_opts co = {.buffer_limit = 64 << 20, .upload_threads = 2};
	struct meta_cred root = {.uid = 0};
	char *url = tl_asprintf("lmdb://%s/meta", dir);
	char *store = tl_asprintf("file://%s/obj", dir);
	const char *mk[] = {"ro", "sec", "deny"};
	char *err = NULL;
	FILE *f;
	int rc;

	memset(&fo, 0, sizeof(fo));
	fo.name = "t";
	fo.storage = store;
	rc = meta_format(url, &fo, &err);
	if (rc == 0)
		rc = meta_open(url, NULL, m, &err);
	if (rc == 0)
		rc = os_open(store, os, &err);
	if (rc == 0)
		rc = cache_open(*m, *os, &co, c);
	for (size_t i = 0; rc == 0 && i < TL_ARRAY_SIZE(mk); i++) {
		struct meta_new n;
		struct meta_attr a;
		uint64_t ino;
		bool existed;

		memset(&n, 0, sizeof(n));
		n.type = META_DIR;
		n.mode = 0777;
		rc = meta_create(*m, &root, META_ROOT_INO, mk[i], &n, &ino, &a,
				 &existed, NULL, NULL);
	}
	if (rc != 0)
		printf("# setup: %s (%d)\n", err ? err : "", rc);
	*expath = tl_asprintf("%s/exports", dir);
	f = fopen(*expath, "w");
	fputs(exports_text, f);
	fclose(f);
	free(err);
	free(url);
	free(store);
	return rc;
}

int
main(void)
{
	char dir[] = "/tmp/nfsd_serve_test.XXXXXX", *expath = NULL, *err = NULL;
	struct meta *m = NULL;
	struct os_store *os = NULL;
	struct cache *c = NULL;
	struct nfsd_config cfg;
	nfs_fh3 root = {{0, NULL}}, ro = {{0, NULL}};
	pthread_t t;
	char *cmd;
	int rc;

	CHECK_FATAL(mkdtemp(dir) != NULL, "temporary directory");
	CHECK_FATAL(setup(dir, &m, &os, &c, &expath) == 0, "volume set up");
	nfsd_config_defaults(&cfg);
	free(cfg.listen);
	cfg.listen = tl_strdup("127.0.0.1:0");
	free(cfg.exports);
	cfg.exports = tl_strdup(expath);
	cfg.workers = 4;
	rc = nfsd_server_create(&cfg, m, c, &srv, &err);
	CHECK_FATAL(rc == 0, "server starts (%s)", err ? err : "");
	pthread_create(&t, NULL, serve, NULL);
	fd = tdial(nfsd_server_port(srv));
	CHECK_FATAL(fd >= 0, "connect");

	CHECK_EQ(mnt("/", &root), MNT3_OK, "MNT / allowed");
	CHECK_EQ(root.data.data_len, NFSD_FH_SIZE, "41-byte handle");
	CHECK_EQ(mnt("/sec", NULL), MNT3ERR_ACCES,
		 "MNT secure export from "
		 "an unprivileged port: ACCES");
	CHECK_EQ(mnt("/deny", NULL), MNT3ERR_ACCES, "MNT without a rule");
	CHECK_EQ(mnt("/gone", NULL), MNT3ERR_NOENT,
		 "export of a missing directory was dropped");
	CHECK_EQ(mnt("/ro/..", NULL), MNT3ERR_NOENT, "MNT needs an exact path");
	CHECK_EQ(mnt("/ro", &ro), MNT3_OK, "MNT /ro");
	test_handles(m, &root);

	CHECK_EQ(create(100, &ro, "f", true), NFS3ERR_ROFS,
		 "CREATE on a read-only export: ROFS");
	CHECK_EQ(create(101, &root, "anon", false), NFS3ERR_ACCES,
		 "AUTH_NONE is anonymous: cannot write a root-owned 0755 dir");
	CHECK_EQ(create(102, &root, "f", true), NFS3_OK, "CREATE f");
	CHECK_EQ(create(102, &root, "f", true), NFS3_OK,
		 "retransmitted CREATE (same xid) replayed, not EXIST");
	CHECK_EQ(create(103, &root, "f", true), NFS3ERR_EXIST,
		 "a new CREATE (new xid) runs: EXIST");
	CHECK_EQ(remove_(104, &root, "f"), NFS3_OK, "REMOVE f");
	CHECK_EQ(remove_(104, &root, "f"), NFS3_OK,
		 "retransmitted REMOVE replayed, not NOENT");
	CHECK_EQ(remove_(105, &root, "f"), NFS3ERR_NOENT,
		 "a new REMOVE runs: NOENT");

	nfsd_server_stop(srv);
	pthread_join(t, NULL);
	nfsd_server_free(srv);
	close(fd);
	free(root.data.data_val);
	free(ro.data.data_val);
	cache_close(c);
	os_close(os);
	meta_close(m);
	nfsd_config_free(&cfg);
	free(expath);
	free(err);
	cmd = tl_asprintf("rm -rf %s", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	free(cmd);
	return tap_done();
}
