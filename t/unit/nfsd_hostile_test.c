/*
 * nfsd_hostile_test - malformed and hostile NFS input against a real
 * server and volume, each answered as knfsd would and leaving the volume
 * unchanged (the transport-level cases: oversized records, unfinished
 * and trickling records, PROG_UNAVAIL, PROG_MISMATCH, PROC_UNAVAIL,
 * GARBAGE_ARGS and AUTH_ERROR are in nfsd_rpc_test):
 *   handles short, long, forged, of another volume -> BADHANDLE,
 *   of a deleted file -> STALE;
 *   names empty, with '/', with a NUL, "." and "..", 256 bytes ->
 *   PERM/ACCES/GARBAGE_ARGS/EXIST/NAMETOOLONG (nfsd_nfs3_check_name);
 *   a 4 GiB name announced in a small call -> GARBAGE_ARGS, no 4 GiB
 *   allocation;
 *   READ and WRITE counts over 1 MiB -> clipped to rtmax/wtmax;
 *   WRITE and SETATTR past the largest file size -> FBIG;
 *   WRITE on a read-only export -> ROFS;
 *   200 connections each holding a partial 3 MiB record: memory stays
 *   bounded and the server keeps answering;
 *   MNT from 5,000 client addresses: DUMP lists the bounded mount list
 *   and the server keeps answering.
 */
#include "config.h"

#include "t/unit/nfsd_test.h"

static struct tsrv T;
static nfs_fh3 root, ro, file;
static int fd;

static int
create(const char *name, nfs_fh3 *out)
{
	CREATE3args a;
	CREATE3res r;
	static uint32_t xid = 1000;
	int st;

	memset(&a, 0, sizeof(a));
	a.where.dir = root;
	a.where.name = (char *)name;
	a.how.mode = GUARDED;
	memset(&r, 0, sizeof(r));
	st = tnfs(fd, xid++, NFSPROC3_CREATE, (xdrproc_t)xdr_CREATE3args, &a,
		  (xdrproc_t)xdr_CREATE3res, &r);
	if (st == NFS3_OK && out != NULL)
		tfh_copy(out, &r.CREATE3res_u.resok.obj.post_op_fh3_u.handle);
	xdr_free((xdrproc_t)xdr_CREATE3res, (char *)&r);
	return st;
}

static int
remove_(const char *name, uint32_t proc)
{
	REMOVE3args a;
	REMOVE3res r;
	static uint32_t xid = 2000;
	int st;

	a.object.dir = root;
	a.object.name = (char *)name;
	memset(&r, 0, sizeof(r));
	st = tnfs(fd, xid++, proc, (xdrproc_t)xdr_REMOVE3args, &a,
		  (xdrproc_t)xdr_REMOVE3res, &r);
	xdr_free((xdrproc_t)xdr_REMOVE3res, (char *)&r);
	return st;
}

static void
test_handles(void)
{
	uint8_t t[64];
	struct meta_settings other = *meta_settings(T.m);
	struct nfsd_fh h;
	nfs_fh3 gone = {{0, NULL}};

	memcpy(t, root.data.data_val, NFSD_FH_SIZE);
	CHECK_EQ(tgetattr(fd, t, 20), NFS3ERR_BADHANDLE,
		 "short handle: BADHANDLE");
	memset(t + NFSD_FH_SIZE, 0, sizeof(t) - NFSD_FH_SIZE);
	CHECK_EQ(tgetattr(fd, t, 64), NFS3ERR_BADHANDLE,
		 "long handle: BADHANDLE");
	t[13 + 7] ^= 0x10; /* another inode, MAC not recomputed */
	CHECK_EQ(tgetattr(fd, t, NFSD_FH_SIZE), NFS3ERR_BADHANDLE,
		 "forged inode number: BADHANDLE");
	nfsd_fh_decode(meta_settings(T.m), root.data.data_val,
		       root.data.data_len, &h);
	other.uuid[0] ^= 1;
	other.secret[0] ^= 1;
	nfsd_fh_encode(&other, &h, t);
	CHECK_EQ(tgetattr(fd, t, NFSD_FH_SIZE), NFS3ERR_BADHANDLE,
		 "handle of another volume: BADHANDLE");
	CHECK_EQ(create("gone", &gone), NFS3_OK, "CREATE gone");
	CHECK_EQ(remove_("gone", NFSPROC3_REMOVE), NFS3_OK, "REMOVE gone");
	CHECK_EQ(tgetattr(fd, gone.data.data_val, gone.data.data_len),
		 NFS3ERR_STALE, "handle of a deleted file: STALE");
	free(gone.data.data_val);
}

/* A CREATE whose name is "a?b" with the ? byte replaced by NUL on the
 * wire. */
static uint32_t
create_nul(void)
{
	CREATE3args a;
	struct tl_buf b = TL_BUF_INIT;
	uint32_t st;

	memset(&a, 0, sizeof(a));
	a.where.dir = root;
	a.where.name = "a?b";
	a.how.mode = GUARDED;
	tcall_encode(&b, 3000, NFSD_PROG_NFS, 3, NFSPROC3_CREATE,
		     (xdrproc_t)xdr_CREATE3args, &a);
	for (size_t i = 0; i + 3 <= b.len; i++)
		if (memcmp(b.data + i, "a?b", 3) == 0)
			b.data[i + 1] = 0;
	st = tcall(fd, &b, NULL, NULL, NULL);
	tl_buf_free(&b);
	return st;
}

/* A LOOKUP announcing a name of 0xfffffff0 bytes in a 100-byte call. */
static uint32_t
lookup_huge(void)
{
	LOOKUP3args a;
	struct tl_buf b = TL_BUF_INIT;
	uint32_t st;

	a.what.dir = root;
	a.what.name = "x";
	tcall_encode(&b, 3001, NFSD_PROG_NFS, 3, NFSPROC3_LOOKUP,
		     (xdrproc_t)xdr_LOOKUP3args, &a);
	tl_put_be32(b.data + b.len - 8, 0xfffffff0u); /* length, "x\0\0\0" */
	st = tcall(fd, &b, NULL, NULL, NULL);
	tl_buf_free(&b);
	return st;
}

static void
test_names(void)
{
	char longname[257];
	RENAME3args ra;
	RENAME3res rr;

	memset(longname, 'n', 256);
	longname[256] = '\0';
	CHECK_EQ(create("", NULL), NFS3ERR_PERM, "CREATE \"\": PERM");
	CHECK_EQ(create("a/b", NULL), NFS3ERR_ACCES, "CREATE a/b: ACCES");
	CHECK_EQ(create(".", NULL), NFS3ERR_EXIST, "CREATE .: EXIST");
	CHECK_EQ(create("..", NULL), NFS3ERR_EXIST, "CREATE ..: EXIST");
	CHECK_EQ(create(longname, NULL), NFS3ERR_NAMETOOLONG,
		 "CREATE of a 256-byte name: NAMETOOLONG");
	CHECK_EQ(remove_("", NFSPROC3_REMOVE), NFS3ERR_ACCES,
		 "REMOVE \"\": ACCES");
	CHECK_EQ(remove_(".", NFSPROC3_RMDIR), NFS3ERR_ACCES, "RMDIR .: ACCES");
	CHECK_EQ(remove_("..", NFSPROC3_REMOVE), NFS3ERR_ACCES,
		 "REMOVE ..: ACCES");
	CHECK_EQ(create_nul(), GARBAGE_ARGS, "a name with a NUL: GARBAGE_ARGS");
	CHECK_EQ(lookup_huge(), GARBAGE_ARGS,
		 "a 4 GiB name in a small call: GARBAGE_ARGS");
	ra.from.dir = root;
	ra.from.name = "file";
	ra.to.dir = root;
	ra.to.name = "..";
	memset(&rr, 0, sizeof(rr));
	CHECK_EQ(tnfs(fd, 3002, NFSPROC3_RENAME, (xdrproc_t)xdr_RENAME3args,
		      &ra, (xdrproc_t)xdr_RENAME3res, &rr),
		 NFS3ERR_PERM, "RENAME to ..: PERM");
	xdr_free((xdrproc_t)xdr_RENAME3res, (char *)&rr);
}

static int
write_(const nfs_fh3 *fh, uint64_t off, size_t len, uint32_t *count)
{
	WRITE3args a;
	WRITE3res r;
	int st;

	memset(&a, 0, sizeof(a));
	a.file = *fh;
	a.offset = off;
	a.count = (count3)len;
	a.stable = FILE_SYNC;
	a.data.data_len = (u_int)len;
	a.data.data_val = calloc(1, len + 1);
	memset(&r, 0, sizeof(r));
	st = tnfs(fd, 4000, NFSPROC3_WRITE, (xdrproc_t)xdr_WRITE3args, &a,
		  (xdrproc_t)xdr_WRITE3res, &r);
	if (st == NFS3_OK && count != NULL)
		*count = r.WRITE3res_u.resok.count;
	xdr_free((xdrproc_t)xdr_WRITE3res, (char *)&r);
	free(a.data.data_val);
	return st;
}

static void
test_io(void)
{
	READ3args ra = {file, 0, 4u << 20};
	READ3res rr;
	SETATTR3args sa;
	SETATTR3res sr;
	uint32_t count = 0;
	nfs_fh3 rofile = ro;

	CHECK_EQ(write_(&file, 0, 3u << 19, &count), NFS3_OK,
		 "WRITE of 1.5 MiB");
	CHECK_EQ(count, 1u << 20, "clipped to wtmax (1 MiB)");
	memset(&rr, 0, sizeof(rr));
	CHECK_EQ(tnfs(fd, 4001, NFSPROC3_READ, (xdrproc_t)xdr_READ3args, &ra,
		      (xdrproc_t)xdr_READ3res, &rr),
		 NFS3_OK, "READ of 4 MiB");
	CHECK_EQ(rr.READ3res_u.resok.count, 1u << 20,
		 "clipped to rtmax (1 MiB)");
	xdr_free((xdrproc_t)xdr_READ3res, (char *)&rr);
	CHECK_EQ(write_(&file, 1ULL << 60, 10, NULL), NFS3ERR_FBIG,
		 "WRITE at 2^60: FBIG");
	CHECK_EQ(write_(&file, META_MAX_FILE_SIZE - 5, 10, NULL), NFS3ERR_FBIG,
		 "WRITE across the largest file size: FBIG");
	memset(&sa, 0, sizeof(sa));
	sa.object = file;
	sa.new_attributes.size.set_it = TRUE;
	sa.new_attributes.size.set_size3_u.size = 1ULL << 60;
	memset(&sr, 0, sizeof(sr));
	CHECK_EQ(tnfs(fd, 4002, NFSPROC3_SETATTR, (xdrproc_t)xdr_SETATTR3args,
		      &sa, (xdrproc_t)xdr_SETATTR3res, &sr),
		 NFS3ERR_FBIG, "SETATTR size 2^60: FBIG");
	xdr_free((xdrproc_t)xdr_SETATTR3res, (char *)&sr);
	CHECK_EQ(write_(&rofile, 0, 10, NULL), NFS3ERR_ROFS,
		 "WRITE on a read-only export: ROFS");
}

static long
rss_kib(void)
{
	long pages = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld %ld", &pages, &res) != 2)
		res = 0;
	fclose(f);
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void
test_partial_records(void)
{
	enum { N = 200, PART = 256 << 10 };
	static int fds[N];
	uint8_t *junk = calloc(1, PART), hdr[4];
	long before = rss_kib(), after;
	struct tl_buf r = TL_BUF_INIT, b = TL_BUF_INIT;
	int opened = 0, probe;

	tl_put_be32(hdr, 0x80000000u | (3u << 20));
	for (int i = 0; i < N; i++) {
		fds[i] = tdial(T.port);
		if (fds[i] < 0)
			continue;
		opened++;
		tio(fds[i], false, hdr, 4);
		tio(fds[i], false, junk, PART);
	}
	probe = tdial(T.port);
	tcall_encode(&b, 5000, NFSD_PROG_NFS, 3, NFSPROC3_NULL, NULL, NULL);
	CHECK(probe >= 0 && tcall(probe, &b, NULL, NULL, NULL) == SUCCESS,
	      "with %d connections holding partial records the server "
	      "still answers",
	      opened);
	after = rss_kib();
	CHECK(after - before < 256 * 1024,
	      "memory growth %ld KiB for %d x 256 KiB partial records",
	      after - before, opened);
	for (int i = 0; i < N; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	close(probe);
	free(junk);
	tl_buf_free(&r);
	tl_buf_free(&b);
}

/* Connect to the server from 127.a.b.c (all of 127/8 is loopback). */
static int
dial_as(unsigned a, unsigned b, unsigned c)
{
	return tdial_from_addr(T.port, 127u << 24 | a << 16 | b << 8 | c, 0);
}

/* DUMP on fd, decoded item by item (no recursion): the number of
 * entries, the first one's host and path, and whether a (host, path)
 * pair came twice; -1 if the call failed. */
static long
dump(char *first, size_t len, bool *dup)
{
	struct tl_buf b = TL_BUF_INIT, r = TL_BUF_INIT;
	char(*seen)[64] = calloc(NFSD_MOUNTS_MAX + 1, 64);
	bool_t follows = FALSE;
	long n = -1;
	XDR x;

	*dup = false;
	first[0] = '\0';
	tcall_encode(&b, 77, NFSD_PROG_MOUNT, 3, MOUNTPROC3_DUMP, NULL, NULL);
	if (tcall(fd, &b, &r, NULL, NULL) != SUCCESS)
		goto out;
	xdrmem_create(&x, (char *)r.data + 24, (u_int)r.len - 24, XDR_DECODE);
	for (n = 0; xdr_bool(&x, &follows) && follows; n++) {
		char host[256], dir[1025], *h = host, *d = dir;

		if (!xdr_string(&x, &h, 255) || !xdr_string(&x, &d, 1024)) {
			n = -1;
			break;
		}
		if (n == 0)
			snprintf(first, len, "%.60s:%.60s", host, dir);
		if (n <= NFSD_MOUNTS_MAX) {
			snprintf(seen[n], 64, "%.30s:%.30s", host, dir);
			for (long i = 0; i < n && !*dup; i++)
				*dup = strcmp(seen[i], seen[n]) == 0;
		}
	}
	xdr_destroy(&x);
out:
	free(seen);
	tl_buf_free(&b);
	tl_buf_free(&r);
	return n;
}

/*
 * MNT from more client addresses than the mount list keeps: each MNT is
 * answered, DUMP lists at most NFSD_MOUNTS_MAX entries, most recent
 * first, one per client and path, and the server keeps answering.  (The
 * old list grew without bound and DUMP encoded it recursively on a
 * worker's stack: 20,000 entries overflowed it.)
 */
static void
test_mount_list(void)
{
	enum { N = NFSD_MOUNTS_MAX + 904 };
	char first[128], want[128];
	nfs_fh3 h = {{0, NULL}};
	int ok = 0, s;
	long n;
	bool dup;

	for (unsigned i = 0; i < N; i++) {
		s = dial_as(1 + i / 65536, i / 256 % 256, i % 256);
		if (s >= 0 && tmnt(s, "/", &h) == MNT3_OK)
			ok++;
		free(h.data.data_val);
		h.data.data_val = NULL;
		if (s >= 0)
			close(s);
	}
	CHECK_EQ(ok, N, "MNT from %d client addresses", N);
	/* the last address mounts again, and another path too */
	s = dial_as(1 + (N - 1) / 65536, (N - 1) / 256 % 256, (N - 1) % 256);
	CHECK(s >= 0 && tmnt(s, "/", &h) == MNT3_OK, "the same MNT again");
	free(h.data.data_val);
	h.data.data_val = NULL;
	CHECK(s >= 0 && tmnt(s, "/ro", &h) == MNT3_OK, "and MNT /ro");
	free(h.data.data_val);
	if (s >= 0)
		close(s);
	n = dump(first, sizeof(first), &dup);
	snprintf(want, sizeof(want), "127.%u.%u.%u:/ro", 1 + (N - 1) / 65536,
		 (N - 1) / 256 % 256, (N - 1) % 256);
	CHECK(n == NFSD_MOUNTS_MAX, "DUMP lists %ld entries: the list keeps %d",
	      n, NFSD_MOUNTS_MAX);
	CHECK(strcmp(first, want) == 0, "most recent first (%s)", first);
	CHECK(!dup, "one entry per client and path");
	CHECK(tgetattr(fd, root.data.data_val, root.data.data_len) == NFS3_OK,
	      "the server still answers");
}

int
main(void)
{
	struct meta_usage u0, u1;
	char *err = NULL;

	tsrv_start_exports(&T, "/ 127.0.0.1(rw,insecure,no_root_squash) "
			       "127.0.0.0/8(ro,insecure)\n"
			       "/ro 127.0.0.0/8(ro,insecure)\n");
	tsrv_make(&T, tsrv_make(&T, META_ROOT_INO, "ro", true), "g", false);
	CHECK_FATAL(nfsd_server_reload(T.srv, &err) == 0, "reload exports");
	fd = tdial(T.port);
	CHECK_FATAL(tmnt(fd, "/", &root) == MNT3_OK, "MNT /");
	CHECK_FATAL(tmnt(fd, "/ro", &ro) == MNT3_OK, "MNT /ro");
	{
		LOOKUP3args la = {{ro, "g"}};
		LOOKUP3res lr;

		memset(&lr, 0, sizeof(lr));
		CHECK_FATAL(tnfs(fd, 9, NFSPROC3_LOOKUP,
				 (xdrproc_t)xdr_LOOKUP3args, &la,
				 (xdrproc_t)xdr_LOOKUP3res, &lr) == NFS3_OK,
			    "LOOKUP /ro/g");
		free(ro.data.data_val);
		tfh_copy(&ro, &lr.LOOKUP3res_u.resok.object);
		xdr_free((xdrproc_t)xdr_LOOKUP3res, (char *)&lr);
	}
	CHECK_FATAL(create("file", &file) == NFS3_OK, "CREATE file");

	meta_usage(T.m, &u0);
	test_handles();
	test_names();
	meta_usage(T.m, &u1);
	CHECK(u0.used_inodes == u1.used_inodes,
	      "the refused calls left the volume unchanged (%llu inodes)",
	      (unsigned long long)u1.used_inodes);
	test_io();
	test_partial_records();
	test_mount_list();
	meta_usage(T.m, &u1);
	CHECK_EQ(u1.used_inodes, u0.used_inodes,
		 "no inode was created by hostile input");

	close(fd);
	free(root.data.data_val);
	free(ro.data.data_val);
	free(file.data.data_val);
	free(err);
	tsrv_stop(&T);
	return tap_done();
}
