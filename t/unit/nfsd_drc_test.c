/*
 * nfsd_drc_test - the duplicate request cache through a real server: a
 * CREATE, MKDIR, SYMLINK, LINK, RENAME, SETATTR (guarded by ctime) and
 * REMOVE whose reply was lost are resent with the same xid on a NEW
 * connection from the same source port (as the Linux client reconnects)
 * and get the original reply, byte for byte, where running them again
 * would fail (EXIST, NOENT, NOT_SYNC); the hit counter counts them.  A
 * new xid, or the same xid with other arguments, runs the call.  On a
 * "secure" export the same bytes replayed from an unprivileged port get
 * PERM, and from another privileged port run again (EXIST): the cache
 * is keyed by address and port and consulted after the access checks.
 * A small cache stays within drc_entries and drc_size, evicting the
 * least recently used entry, and an evicted call runs again.
 */
#include "config.h"

#include "t/unit/nfsd_test.h"

static struct tsrv T;
static nfs_fh3 root;

/* Send call on a fresh connection, read and "lose" the reply (close),
 * then resend the same bytes on another new connection: the replayed
 * reply must equal the first.  Returns the replayed result's status. */
static int
lost_reply(const char *what, uint32_t xid, uint32_t proc, xdrproc_t xargs,
	   void *args, xdrproc_t xres, void *res)
{
	struct tl_buf call = TL_BUF_INIT, r1 = TL_BUF_INIT, r2 = TL_BUF_INIT;
	unsigned local = 0;
	int fd = tdial_own_port(T.port, &local), st;
	uint32_t a;

	tcall_encode(&call, xid, NFSD_PROG_NFS, 3, proc, xargs, args);
	a = tcall(fd, &call, &r1, NULL, NULL);
	tclose_reset(fd); /* the client never saw the reply */
	CHECK(a == SUCCESS && r1.len >= 28 && tl_get_be32(r1.data + 24) == 0,
	      "%s: first call succeeds", what);
	fd = tdial_from(T.port, local);
	a = tcall(fd, &call, &r2, xres, res);
	tclose_reset(fd);
	CHECK(a == SUCCESS && r1.len == r2.len &&
		      memcmp(r1.data, r2.data, r1.len) == 0,
	      "%s: resent on a new connection, the same reply comes back",
	      what);
	st = a == SUCCESS ? (int)*(nfsstat3 *)res : -1;
	tl_buf_free(&call);
	tl_buf_free(&r1);
	tl_buf_free(&r2);
	return st;
}

static void
dirop(diropargs3 *d, const nfs_fh3 *dir, const char *name)
{
	d->dir = *dir;
	d->name = (char *)name;
}

static void
test_replays(void)
{
	CREATE3args ca;
	CREATE3res cr;
	MKDIR3args ma;
	MKDIR3res mr;
	SYMLINK3args sa;
	SYMLINK3res sr;
	LINK3args la;
	LINK3res lr;
	RENAME3args ra;
	RENAME3res rr;
	SETATTR3args ta;
	SETATTR3res tr;
	REMOVE3args xa;
	REMOVE3res xr;
	nfs_fh3 file = {{0, NULL}}, dir = {{0, NULL}};
	nfstime3 ctime = {0, 0};
	struct nfsd_drc_stats st0, st1;
	int fd = tdial(T.port);

	nfsd_server_drc_stats(T.srv, &st0);

	memset(&ca, 0, sizeof(ca));
	dirop(&ca.where, &root, "file");
	ca.how.mode = GUARDED;
	memset(&cr, 0, sizeof(cr));
	CHECK_EQ(lost_reply("CREATE", 100, NFSPROC3_CREATE,
			    (xdrproc_t)xdr_CREATE3args, &ca,
			    (xdrproc_t)xdr_CREATE3res, &cr),
		 NFS3_OK, "CREATE replayed, not EXIST");
	if (cr.status == NFS3_OK && cr.CREATE3res_u.resok.obj.handle_follows) {
		tfh_copy(&file,
			 &cr.CREATE3res_u.resok.obj.post_op_fh3_u.handle);
		ctime = cr.CREATE3res_u.resok.obj_attributes.post_op_attr_u
				.attributes.ctime;
	}
	xdr_free((xdrproc_t)xdr_CREATE3res, (char *)&cr);
	CHECK_FATAL(file.data.data_len > 0, "CREATE gave a handle");
	memset(&cr, 0, sizeof(cr));
	CHECK_EQ(tnfs(fd, 101, NFSPROC3_CREATE, (xdrproc_t)xdr_CREATE3args, &ca,
		      (xdrproc_t)xdr_CREATE3res, &cr),
		 NFS3ERR_EXIST, "the same CREATE with a new xid runs: EXIST");
	xdr_free((xdrproc_t)xdr_CREATE3res, (char *)&cr);

	memset(&ma, 0, sizeof(ma));
	dirop(&ma.where, &root, "dir");
	memset(&mr, 0, sizeof(mr));
	CHECK_EQ(lost_reply("MKDIR", 110, NFSPROC3_MKDIR,
			    (xdrproc_t)xdr_MKDIR3args, &ma,
			    (xdrproc_t)xdr_MKDIR3res, &mr),
		 NFS3_OK, "MKDIR replayed, not EXIST");
	if (mr.status == NFS3_OK && mr.MKDIR3res_u.resok.obj.handle_follows)
		tfh_copy(&dir, &mr.MKDIR3res_u.resok.obj.post_op_fh3_u.handle);
	xdr_free((xdrproc_t)xdr_MKDIR3res, (char *)&mr);
	CHECK_FATAL(dir.data.data_len > 0, "MKDIR gave a handle");

	memset(&sa, 0, sizeof(sa));
	dirop(&sa.where, &root, "sym");
	sa.symlink.symlink_data = "file";
	memset(&sr, 0, sizeof(sr));
	CHECK_EQ(lost_reply("SYMLINK", 120, NFSPROC3_SYMLINK,
			    (xdrproc_t)xdr_SYMLINK3args, &sa,
			    (xdrproc_t)xdr_SYMLINK3res, &sr),
		 NFS3_OK, "SYMLINK replayed, not EXIST");
	xdr_free((xdrproc_t)xdr_SYMLINK3res, (char *)&sr);

	memset(&la, 0, sizeof(la));
	la.file = file;
	dirop(&la.link, &root, "link");
	memset(&lr, 0, sizeof(lr));
	CHECK_EQ(lost_reply("LINK", 130, NFSPROC3_LINK,
			    (xdrproc_t)xdr_LINK3args, &la,
			    (xdrproc_t)xdr_LINK3res, &lr),
		 NFS3_OK, "LINK replayed, not EXIST");
	xdr_free((xdrproc_t)xdr_LINK3res, (char *)&lr);

	memset(&ra, 0, sizeof(ra));
	dirop(&ra.from, &root, "link");
	dirop(&ra.to, &dir, "moved");
	memset(&rr, 0, sizeof(rr));
	CHECK_EQ(lost_reply("RENAME", 140, NFSPROC3_RENAME,
			    (xdrproc_t)xdr_RENAME3args, &ra,
			    (xdrproc_t)xdr_RENAME3res, &rr),
		 NFS3_OK, "RENAME replayed, not NOENT");
	xdr_free((xdrproc_t)xdr_RENAME3res, (char *)&rr);

	/* LINK changed the ctime */
	{
		GETATTR3args ga = {file};
		GETATTR3res gr;

		memset(&gr, 0, sizeof(gr));
		if (tnfs(fd, 149, NFSPROC3_GETATTR, (xdrproc_t)xdr_GETATTR3args,
			 &ga, (xdrproc_t)xdr_GETATTR3res, &gr) == NFS3_OK)
			ctime = gr.GETATTR3res_u.resok.obj_attributes.ctime;
		xdr_free((xdrproc_t)xdr_GETATTR3res, (char *)&gr);
	}
	memset(&ta, 0, sizeof(ta));
	ta.object = file;
	ta.new_attributes.mode.set_it = TRUE;
	ta.new_attributes.mode.set_mode3_u.mode = 0600;
	ta.guard.check = TRUE; /* a second run sees the new ctime */
	ta.guard.sattrguard3_u.obj_ctime = ctime;
	memset(&tr, 0, sizeof(tr));
	CHECK_EQ(lost_reply("SETATTR", 150, NFSPROC3_SETATTR,
			    (xdrproc_t)xdr_SETATTR3args, &ta,
			    (xdrproc_t)xdr_SETATTR3res, &tr),
		 NFS3_OK, "guarded SETATTR replayed, not NOT_SYNC");
	xdr_free((xdrproc_t)xdr_SETATTR3res, (char *)&tr);
	memset(&tr, 0, sizeof(tr));
	CHECK_EQ(tnfs(fd, 151, NFSPROC3_SETATTR, (xdrproc_t)xdr_SETATTR3args,
		      &ta, (xdrproc_t)xdr_SETATTR3res, &tr),
		 NFS3ERR_NOT_SYNC, "run again with a new xid: NOT_SYNC");
	xdr_free((xdrproc_t)xdr_SETATTR3res, (char *)&tr);

	memset(&xa, 0, sizeof(xa));
	dirop(&xa.object, &root, "sym");
	memset(&xr, 0, sizeof(xr));
	CHECK_EQ(lost_reply("REMOVE", 160, NFSPROC3_REMOVE,
			    (xdrproc_t)xdr_REMOVE3args, &xa,
			    (xdrproc_t)xdr_REMOVE3res, &xr),
		 NFS3_OK, "REMOVE replayed, not NOENT");
	xdr_free((xdrproc_t)xdr_REMOVE3res, (char *)&xr);
	/* same xid, other arguments: a different call, it runs */
	dirop(&xa.object, &root, "nothing-here");
	memset(&xr, 0, sizeof(xr));
	CHECK_EQ(tnfs(fd, 160, NFSPROC3_REMOVE, (xdrproc_t)xdr_REMOVE3args, &xa,
		      (xdrproc_t)xdr_REMOVE3res, &xr),
		 NFS3ERR_NOENT, "same xid, other name: not replayed");
	xdr_free((xdrproc_t)xdr_REMOVE3res, (char *)&xr);

	nfsd_server_drc_stats(T.srv, &st1);
	CHECK_EQ(st1.hits - st0.hits, 7, "seven replays counted as hits");
	CHECK_EQ(st1.misses - st0.misses, 10, "ten calls run");
	CHECK(st1.entries == 10 && st1.bytes > 10 * 100,
	      "ten entries cached (%llu bytes)", (unsigned long long)st1.bytes);
	close(fd);
	free(file.data.data_val);
	free(dir.data.data_val);
}

/* A privileged local port that can be bound and connected from, or
 * -1 (not root). */
static int
dial_privileged(unsigned *local)
{
	for (unsigned p = 1023; p > 600; p--) {
		int fd = tdial_from(T.port, p);

		if (fd >= 0) {
			*local = p;
			return fd;
		}
		if (errno == EACCES || errno == EPERM)
			break;
	}
	return -1;
}

/*
 * A CREATE on a secure export from a privileged port, its reply lost;
 * the very same bytes then come from an unprivileged port (another
 * user's process on the client), from another privileged port, and from
 * the first port again.  Only the last is the client retransmitting.
 */
static void
test_replay_source(void)
{
	struct tl_buf call = TL_BUF_INIT, r1 = TL_BUF_INIT, r2 = TL_BUF_INIT;
	CREATE3args ca;
	CREATE3res cr;
	nfs_fh3 sec = {{0, NULL}};
	unsigned p1 = 0, p2 = 0;
	int fd = dial_privileged(&p1), fd2;

	if (fd < 0) {
		SKIP(4, "cannot bind a privileged port (not root)");
		return;
	}
	CHECK_FATAL(tmnt(fd, "/sec", &sec) == MNT3_OK, "MNT /sec from port %u",
		    p1);
	memset(&ca, 0, sizeof(ca));
	ca.how.mode = GUARDED;
	dirop(&ca.where, &sec, "only-once");
	tcall_encode(&call, 700, NFSD_PROG_NFS, 3, NFSPROC3_CREATE,
		     (xdrproc_t)xdr_CREATE3args, &ca);
	CHECK(tcall(fd, &call, &r1, NULL, NULL) == SUCCESS && r1.len >= 28 &&
		      tl_get_be32(r1.data + 24) == NFS3_OK,
	      "CREATE on the secure export from port %u", p1);
	tclose_reset(fd);

	fd = tdial(T.port);
	memset(&cr, 0, sizeof(cr));
	CHECK(tcall(fd, &call, &r2, (xdrproc_t)xdr_CREATE3res, &cr) ==
			      SUCCESS &&
		      cr.status == NFS3ERR_PERM,
	      "the same call from unprivileged port %u: PERM, not the saved "
	      "reply (%d)",
	      tlocal_port(fd), (int)cr.status);
	xdr_free((xdrproc_t)xdr_CREATE3res, (char *)&cr);
	close(fd);

	fd2 = dial_privileged(&p2);
	while (fd2 >= 0 && p2 == p1) {
		tclose_reset(fd2);
		fd2 = tdial_from(T.port, --p2);
	}
	memset(&cr, 0, sizeof(cr));
	CHECK(fd2 >= 0 &&
		      tcall(fd2, &call, &r2, (xdrproc_t)xdr_CREATE3res, &cr) ==
			      SUCCESS &&
		      cr.status == NFS3ERR_EXIST,
	      "from another privileged port (%u) it runs again: EXIST (%d)", p2,
	      (int)cr.status);
	xdr_free((xdrproc_t)xdr_CREATE3res, (char *)&cr);
	if (fd2 >= 0)
		tclose_reset(fd2);

	fd = tdial_from(T.port, p1);
	CHECK(fd >= 0 && tcall(fd, &call, &r2, NULL, NULL) == SUCCESS &&
		      r1.len == r2.len && memcmp(r1.data, r2.data, r1.len) == 0,
	      "from port %u again: the saved reply", p1);
	if (fd >= 0)
		tclose_reset(fd);
	free(sec.data.data_val);
	tl_buf_free(&call);
	tl_buf_free(&r1);
	tl_buf_free(&r2);
}

/* drc_entries 4, drc_size 4K: twenty CREATEs leave at most four entries
 * and 4K; the first one was evicted, so resending it runs it: EXIST. */
static void
test_bounds(void)
{
	struct nfsd_config cfg;
	struct nfsd_drc_stats st;
	CREATE3args ca;
	CREATE3res cr;
	char name[32];
	int fd, ok = 0;

	tsrv_stop(&T);
	free(root.data.data_val);
	nfsd_config_defaults(&cfg);
	cfg.workers = 2;
	cfg.drc_entries = 4;
	cfg.drc_size = 4096;
	tsrv_start(&T, &cfg);
	nfsd_config_free(&cfg);
	fd = tdial(T.port);
	CHECK_FATAL(tmnt(fd, "/", &root) == MNT3_OK, "MNT / (small cache)");
	memset(&ca, 0, sizeof(ca));
	ca.how.mode = GUARDED;
	for (uint32_t i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "f%u", i);
		dirop(&ca.where, &root, name);
		memset(&cr, 0, sizeof(cr));
		ok += tnfs(fd, 500 + i, NFSPROC3_CREATE,
			   (xdrproc_t)xdr_CREATE3args, &ca,
			   (xdrproc_t)xdr_CREATE3res, &cr) == NFS3_OK;
		xdr_free((xdrproc_t)xdr_CREATE3res, (char *)&cr);
		nfsd_server_drc_stats(T.srv, &st);
		if (st.entries > 4 || st.bytes > 4096)
			break;
	}
	CHECK_EQ(ok, 20, "twenty CREATEs");
	CHECK(st.entries <= 4 && st.bytes <= 4096,
	      "the cache stays within 4 entries and 4096 bytes (%llu, %llu)",
	      (unsigned long long)st.entries, (unsigned long long)st.bytes);
	CHECK(st.evictions >= 16, "older entries evicted (%llu)",
	      (unsigned long long)st.evictions);
	dirop(&ca.where, &root, "f0");
	memset(&cr, 0, sizeof(cr));
	CHECK_EQ(tnfs(fd, 500, NFSPROC3_CREATE, (xdrproc_t)xdr_CREATE3args, &ca,
		      (xdrproc_t)xdr_CREATE3res, &cr),
		 NFS3ERR_EXIST, "an evicted call runs again");
	xdr_free((xdrproc_t)xdr_CREATE3res, (char *)&cr);
	dirop(&ca.where, &root, "f19");
	memset(&cr, 0, sizeof(cr));
	CHECK_EQ(tnfs(fd, 519, NFSPROC3_CREATE, (xdrproc_t)xdr_CREATE3args, &ca,
		      (xdrproc_t)xdr_CREATE3res, &cr),
		 NFS3_OK, "the most recent one is still replayed");
	xdr_free((xdrproc_t)xdr_CREATE3res, (char *)&cr);
	close(fd);
}

int
main(void)
{
	char *err = NULL;
	int fd;

	tsrv_start_exports(&T, "/ 127.0.0.1(rw,insecure,no_root_squash)\n"
			       "/sec 127.0.0.1(rw,no_root_squash)\n");
	tsrv_make(&T, META_ROOT_INO, "sec", true);
	CHECK_FATAL(nfsd_server_reload(T.srv, &err) == 0, "reload exports");
	fd = tdial(T.port);
	CHECK_FATAL(fd >= 0 && tmnt(fd, "/", &root) == MNT3_OK, "MNT /");
	close(fd);
	test_replays();
	test_replay_source();
	test_bounds();
	tsrv_stop(&T);
	free(root.data.data_val);
	free(err);
	return tap_done();
}
