/*
 * nfs3_xdr_test.c - NFSv3 XDR round trips, the iterative READDIR entry
 * list codec (same bytes as rpcgen's, constant stack for 50,000 entries
 * on a 256 KiB thread), errno -> nfsstat3, name rules, sattr3 and fattr3
 * conversion.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nfsd/nfs3-internal.h"
#include "t/unit/tap.h"

/* Encode obj with proc into buf, return the length. */
static size_t
encode(xdrproc_t proc, void *obj, char *buf, size_t size)
{
	XDR x;
	size_t n;

	xdrmem_create(&x, buf, (u_int)size, XDR_ENCODE);
	REQUIRE(proc(&x, obj));
	n = xdr_getpos(&x);
	xdr_destroy(&x);
	return n;
}

static void
decode(xdrproc_t proc, void *obj, const char *buf, size_t len)
{
	XDR x;

	xdrmem_create(&x, (char *)buf, (u_int)len, XDR_DECODE);
	REQUIRE(proc(&x, obj));
	REQUIRE(xdr_getpos(&x) == len);
	xdr_destroy(&x);
}

static void
test_write_args(void)
{
	static char buf[8192];
	WRITE3args a, b;
	uint8_t fh[NFSD_FH_SIZE];
	char data[1000];
	size_t n;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(fh, 0xab, sizeof(fh));
	memset(data, 'x', sizeof(data));
	a.file.data.data_len = sizeof(fh);
	a.file.data.data_val = (char *)fh;
	a.offset = 1ULL << 40;
	a.count = sizeof(data);
	a.stable = DATA_SYNC;
	a.data.data_len = sizeof(data);
	a.data.data_val = data;
	n = encode((xdrproc_t)xdr_WRITE3args, &a, buf, sizeof(buf));
	/* fh (4 + 44) offset 8 count 4 stable 4 data (4 + 1000) */
	REQUIRE(n == 48 + 8 + 4 + 4 + 4 + 1000);
	decode((xdrproc_t)xdr_WRITE3args, &b, buf, n);
	REQUIRE(b.file.data.data_len == sizeof(fh));
	REQUIRE(memcmp(b.file.data.data_val, fh, sizeof(fh)) == 0);
	REQUIRE(b.offset == a.offset && b.count == a.count);
	REQUIRE(b.stable == DATA_SYNC);
	REQUIRE(b.data.data_len == sizeof(data));
	REQUIRE(memcmp(b.data.data_val, data, sizeof(data)) == 0);
	xdr_free((xdrproc_t)xdr_WRITE3args, (char *)&b);
}

static void
test_setattr_args(void)
{
	static char buf[1024];
	SETATTR3args a, b;
	struct meta_setattr s;
	char fh[8] = "handle!";

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.object.data.data_len = 8;
	a.object.data.data_val = fh;
	a.new_attributes.mode.set_it = TRUE;
	a.new_attributes.mode.set_mode3_u.mode = 0100755; /* type bits */
	a.new_attributes.size.set_it = TRUE;
	a.new_attributes.size.set_size3_u.size = 12345;
	a.new_attributes.atime.set_it = SET_TO_SERVER_TIME;
	a.new_attributes.mtime.set_it = SET_TO_CLIENT_TIME;
	a.new_attributes.mtime.set_mtime_u.mtime.seconds = 1700000000;
	a.new_attributes.mtime.set_mtime_u.mtime.nseconds = 5;
	a.guard.check = TRUE;
	a.guard.sattrguard3_u.obj_ctime.seconds = 7;
	decode((xdrproc_t)xdr_SETATTR3args, &b, buf,
	       encode((xdrproc_t)xdr_SETATTR3args, &a, buf, sizeof(buf)));
	REQUIRE(b.guard.check && b.guard.sattrguard3_u.obj_ctime.seconds == 7);
	REQUIRE(nfsd_nfs3_sattr(&b.new_attributes, &s) == 0);
	REQUIRE(s.valid == (META_SET_MODE | META_SET_SIZE | META_SET_ATIME_NOW |
			    META_SET_MTIME));
	REQUIRE(s.mode == 0755);
	REQUIRE(s.size == 12345);
	REQUIRE(s.mtime_ns == 1700000000ULL * 1000000000ULL + 5);
	xdr_free((xdrproc_t)xdr_SETATTR3args, (char *)&b);

	/* A client time with nseconds out of range is refused. */
	a.new_attributes.mtime.set_mtime_u.mtime.nseconds = 1000000000u;
	REQUIRE(nfsd_nfs3_sattr(&a.new_attributes, &s) == -EINVAL);
}

static void
test_create_args(void)
{
	static char buf[1024];
	CREATE3args a, b;
	char fh[4] = "abc";

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.where.dir.data.data_len = 4;
	a.where.dir.data.data_val = fh;
	a.where.name = "file.txt";
	a.how.mode = EXCLUSIVE;
	memcpy(a.how.createhow3_u.verf, "VERIFIER", 8);
	decode((xdrproc_t)xdr_CREATE3args, &b, buf,
	       encode((xdrproc_t)xdr_CREATE3args, &a, buf, sizeof(buf)));
	REQUIRE(strcmp(b.where.name, "file.txt") == 0);
	REQUIRE(b.how.mode == EXCLUSIVE);
	REQUIRE(memcmp(b.how.createhow3_u.verf, "VERIFIER", 8) == 0);
	xdr_free((xdrproc_t)xdr_CREATE3args, (char *)&b);
}

static void
test_read_res(void)
{
	static char buf[8192];
	READ3res a, b;
	char data[3] = "abc";
	size_t n;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.status = NFS3_OK;
	a.READ3res_u.resok.file_attributes.attributes_follow = TRUE;
	a.READ3res_u.resok.file_attributes.post_op_attr_u.attributes.size = 3;
	a.READ3res_u.resok.count = 3;
	a.READ3res_u.resok.eof = TRUE;
	a.READ3res_u.resok.data.data_len = 3;
	a.READ3res_u.resok.data.data_val = data;
	n = encode((xdrproc_t)xdr_READ3res, &a, buf, sizeof(buf));
	REQUIRE(n == 4 + NFS3_XDR_POST_ATTR + 4 + 4 + 4 + 4);
	decode((xdrproc_t)xdr_READ3res, &b, buf, n);
	REQUIRE(b.status == NFS3_OK && b.READ3res_u.resok.eof);
	REQUIRE(b.READ3res_u.resok.data.data_len == 3);
	REQUIRE(memcmp(b.READ3res_u.resok.data.data_val, "abc", 3) == 0);
	xdr_free((xdrproc_t)xdr_READ3res, (char *)&b);

	/* An error carries only the post-op attributes. */
	a.status = NFS3ERR_ACCES;
	a.READ3res_u.resfail.file_attributes.attributes_follow = FALSE;
	REQUIRE(encode((xdrproc_t)xdr_READ3res, &a, buf, sizeof(buf)) == 8);
}

/* ---- READDIR lists ------------------------------------------------------- */

static entry3 *
make_entries(size_t n)
{
	entry3 *head = NULL, **tail = &head;
	char name[32];

	for (size_t i = 0; i < n; i++) {
		entry3 *e = tl_calloc(1, sizeof(*e));

		snprintf(name, sizeof(name), "file-%zu", i);
		e->fileid = 100 + i;
		e->name = tl_strdup(name);
		e->cookie = 3 + i;
		*tail = e;
		tail = &e->nextentry;
	}
	return head;
}

static void
test_readdir_same_bytes(void)
{
	static char mine[65536], theirs[65536];
	READDIR3res r, d;
	size_t n1, n2, count = 0;

	memset(&r, 0, sizeof(r));
	memset(&d, 0, sizeof(d));
	r.status = NFS3_OK;
	r.READDIR3res_u.resok.reply.entries = make_entries(100);
	r.READDIR3res_u.resok.reply.eof = TRUE;
	n1 = encode((xdrproc_t)nfsd_nfs3_xdr_readdir_res, &r, mine,
		    sizeof(mine));
	n2 = encode((xdrproc_t)xdr_READDIR3res, &r, theirs, sizeof(theirs));
	REQUIRE(n1 == n2 && memcmp(mine, theirs, n1) == 0);

	/* The size accounting of the handler matches the encoder. */
	{
		size_t want = 4 + 4 + 8 + 4 + 4; /* no dir attributes */

		for (entry3 *e = r.READDIR3res_u.resok.reply.entries; e;
		     e = e->nextentry)
			want += NFS3_XDR_ENTRY(strlen(e->name));
		REQUIRE(n1 == want);
	}

	decode((xdrproc_t)nfsd_nfs3_xdr_readdir_res, &d, mine, n1);
	REQUIRE(d.status == NFS3_OK && d.READDIR3res_u.resok.reply.eof);
	for (entry3 *e = d.READDIR3res_u.resok.reply.entries; e;
	     e = e->nextentry, count++) {
		char name[32];

		snprintf(name, sizeof(name), "file-%zu", count);
		REQUIRE(strcmp(e->name, name) == 0);
		REQUIRE(e->fileid == 100 + count && e->cookie == 3 + count);
	}
	REQUIRE(count == 100);
	xdr_free((xdrproc_t)nfsd_nfs3_xdr_readdir_res, (char *)&d);
	xdr_free((xdrproc_t)nfsd_nfs3_xdr_readdir_res, (char *)&r);
	REQUIRE(r.READDIR3res_u.resok.reply.entries == NULL);
}

#define BIG_N 50000

struct big {
	char *buf;
	size_t size, len;
	size_t decoded;
};

/* Runs on a 256 KiB stack: build, encode, decode, free 50,000 entries. */
static void *
big_readdirplus(void *arg)
{
	struct big *b = arg;
	READDIRPLUS3res r, d;
	entryplus3 **tail;
	uint8_t fh[NFSD_FH_SIZE];

	memset(&r, 0, sizeof(r));
	memset(&d, 0, sizeof(d));
	memset(fh, 7, sizeof(fh));
	r.status = NFS3_OK;
	tail = &r.READDIRPLUS3res_u.resok.reply.entries;
	for (size_t i = 0; i < BIG_N; i++) {
		entryplus3 *e = tl_calloc(1, sizeof(*e));
		char name[32];

		snprintf(name, sizeof(name), "n%zu", i);
		e->fileid = i + 10;
		e->name = tl_strdup(name);
		e->cookie = i + 3;
		e->name_attributes.attributes_follow = TRUE;
		e->name_attributes.post_op_attr_u.attributes.fileid = i + 10;
		e->name_handle.handle_follows = TRUE;
		e->name_handle.post_op_fh3_u.handle.data.data_len = sizeof(fh);
		e->name_handle.post_op_fh3_u.handle.data.data_val =
			tl_memdup(fh, sizeof(fh));
		*tail = e;
		tail = &e->nextentry;
	}
	r.READDIRPLUS3res_u.resok.reply.eof = TRUE;
	b->len = encode((xdrproc_t)nfsd_nfs3_xdr_readdirplus_res, &r, b->buf,
			b->size);
	decode((xdrproc_t)nfsd_nfs3_xdr_readdirplus_res, &d, b->buf, b->len);
	for (entryplus3 *e = d.READDIRPLUS3res_u.resok.reply.entries; e;
	     e = e->nextentry) {
		REQUIRE(e->fileid == b->decoded + 10);
		REQUIRE(e->cookie == b->decoded + 3);
		REQUIRE(e->name_attributes.attributes_follow);
		REQUIRE(e->name_handle.handle_follows);
		REQUIRE(e->name_handle.post_op_fh3_u.handle.data.data_len ==
			NFSD_FH_SIZE);
		b->decoded++;
	}
	xdr_free((xdrproc_t)nfsd_nfs3_xdr_readdirplus_res, (char *)&d);
	xdr_free((xdrproc_t)nfsd_nfs3_xdr_readdirplus_res, (char *)&r);
	return NULL;
}

static void
test_readdirplus_big(void)
{
	struct big b = {.size = (size_t)BIG_N * 200};
	pthread_attr_t attr;
	pthread_t t;
	size_t per;

	b.buf = tl_malloc(b.size);
	REQUIRE(pthread_attr_init(&attr) == 0);
	REQUIRE(pthread_attr_setstacksize(&attr, 256 * 1024) == 0);
	REQUIRE(pthread_create(&t, &attr, big_readdirplus, &b) == 0);
	REQUIRE(pthread_join(t, NULL) == 0);
	pthread_attr_destroy(&attr);
	REQUIRE(b.decoded == BIG_N);
	/* Each entry: 4 + 8 + 4 + pad(name) + 8 + 88 + 4 + 4 + 44. */
	per = 0;
	for (size_t i = 0; i < BIG_N; i++) {
		char name[32];

		per += NFS3_XDR_ENTRY(snprintf(name, sizeof(name), "n%zu", i)) +
		       NFS3_XDR_POST_ATTR + 4 + 4 + NFS3_XDR_PAD(NFSD_FH_SIZE);
	}
	REQUIRE(b.len == 4 + 4 + 8 + per + 4 + 4);
	free(b.buf);
}

/* ---- errno and names ----------------------------------------------------- */

static void
test_errno(void)
{
	static const struct {
		int err;
		nfsstat3 st;
	} t[] = {
		{0, NFS3_OK},
		{-EPERM, NFS3ERR_PERM},
		{-ENOENT, NFS3ERR_NOENT},
		{-EIO, NFS3ERR_IO},
		{-EACCES, NFS3ERR_ACCES},
		{-EEXIST, NFS3ERR_EXIST},
		{-EXDEV, NFS3ERR_XDEV},
		{-ENOTDIR, NFS3ERR_NOTDIR},
		{-EISDIR, NFS3ERR_ISDIR},
		{-EINVAL, NFS3ERR_INVAL},
		{-EFBIG, NFS3ERR_FBIG},
		{-ENOSPC, NFS3ERR_NOSPC},
		{-EROFS, NFS3ERR_ROFS},
		{-EMLINK, NFS3ERR_MLINK},
		{-ENAMETOOLONG, NFS3ERR_NAMETOOLONG},
		{-ENOTEMPTY, NFS3ERR_NOTEMPTY},
		{-EDQUOT, NFS3ERR_DQUOT},
		{-ESTALE, NFS3ERR_STALE},
		{-EBADMSG, NFS3ERR_BADHANDLE},
		{-TL_ENOTSYNC, NFS3ERR_NOT_SYNC},
		{-ENOTSUP, NFS3ERR_NOTSUPP},
		{-EAGAIN, NFS3ERR_JUKEBOX},
		{-EBUSY, NFS3ERR_JUKEBOX},
		{-ENOMEM, NFS3ERR_IO},
		{-12345, NFS3ERR_IO},
	};

	for (size_t i = 0; i < TL_ARRAY_SIZE(t); i++)
		REQUIRE(nfsd_errno_to_nfs3(t[i].err) == t[i].st);
}

static void
test_names(void)
{
	char longname[META_NAME_MAX + 2];

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	REQUIRE(nfsd_nfs3_check_name(longname, NFS3_NAME_LOOKUP) ==
		NFS3ERR_NAMETOOLONG);
	longname[META_NAME_MAX] = '\0';
	REQUIRE(nfsd_nfs3_check_name(longname, NFS3_NAME_CREATE) == NFS3_OK);

	REQUIRE(nfsd_nfs3_check_name("", NFS3_NAME_LOOKUP) == NFS3ERR_ACCES);
	REQUIRE(nfsd_nfs3_check_name("", NFS3_NAME_CREATE) == NFS3ERR_PERM);
	REQUIRE(nfsd_nfs3_check_name("", NFS3_NAME_SYMLINK) == NFS3ERR_NOENT);
	REQUIRE(nfsd_nfs3_check_name("", NFS3_NAME_REMOVE) == NFS3ERR_ACCES);
	REQUIRE(nfsd_nfs3_check_name("", NFS3_NAME_RENAME) == NFS3ERR_PERM);
	REQUIRE(nfsd_nfs3_check_name("a/b", NFS3_NAME_LOOKUP) == NFS3ERR_ACCES);
	REQUIRE(nfsd_nfs3_check_name("a/b", NFS3_NAME_CREATE) == NFS3ERR_ACCES);
	REQUIRE(nfsd_nfs3_check_name("..", NFS3_NAME_LOOKUP) == NFS3_OK);
	REQUIRE(nfsd_nfs3_check_name(".", NFS3_NAME_CREATE) == NFS3ERR_EXIST);
	REQUIRE(nfsd_nfs3_check_name("..", NFS3_NAME_LINK) == NFS3ERR_EXIST);
	REQUIRE(nfsd_nfs3_check_name(".", NFS3_NAME_REMOVE) == NFS3ERR_ACCES);
	REQUIRE(nfsd_nfs3_check_name("..", NFS3_NAME_RENAME) == NFS3ERR_PERM);
	REQUIRE(nfsd_nfs3_check_name("...", NFS3_NAME_CREATE) == NFS3_OK);
}

static void
test_fattr(void)
{
	struct meta_settings vol = {.uuid = {1, 2, 3, 4, 5, 6, 7, 8, 9}};
	struct nfsd_ctx ctx = {.vol = &vol};
	struct nfsd_call c = {.ctx = &ctx};
	struct meta_attr a = {
		.ino = 42,
		.type = META_CHR,
		.mode = 04755,
		.nlink = 1,
		.uid = 10,
		.gid = 20,
		.size = 4097,
		.rdev_major = 8,
		.rdev_minor = 1,
		.atime_ns = 1500000000123456789ULL,
	};
	fattr3 f;

	nfsd_nfs3_fattr(&c, &a, &f);
	REQUIRE(f.type == NF3CHR && f.mode == 04755 && f.fileid == 42);
	REQUIRE(f.used == 8192 && f.size == 4097);
	REQUIRE(f.rdev.specdata1 == 8 && f.rdev.specdata2 == 1);
	REQUIRE(f.atime.seconds == 1500000000u &&
		f.atime.nseconds == 123456789u);
	REQUIRE(f.fsid != 0);
}

int
main(void)
{
	test_write_args();
	PASSED("WRITE3args round trip");
	test_setattr_args();
	PASSED("SETATTR3args round trip");
	test_create_args();
	PASSED("CREATE3args round trip");
	test_read_res();
	PASSED("READ3res round trip");
	test_readdir_same_bytes();
	PASSED("the READDIR entry list loop writes rpcgen's bytes");
	test_readdirplus_big();
	PASSED("50,000 READDIRPLUS entries on a 256 KiB stack");
	test_errno();
	PASSED("errno -> nfsstat3");
	test_names();
	PASSED("name rules");
	test_fattr();
	PASSED("fattr3 from meta attributes");
	CHECK(nfsd_nfs3_nprocs == 22, "22 NFSv3 procedures");
	CHECK(nfsd_nfs3_procs[NFSPROC3_COMMIT].handler != NULL &&
		      !(nfsd_nfs3_procs[NFSPROC3_COMMIT].flags &
			NFSD_PF_MODIFIES),
	      "COMMIT has a handler and is not flagged as modifying");
	CHECK(nfsd_nfs3_procs[NFSPROC3_WRITE].flags & NFSD_PF_MODIFIES,
	      "WRITE is flagged as modifying");
	CHECK(nfsd_nfs3_procs[NFSPROC3_RENAME].flags & NFSD_PF_DRC,
	      "RENAME goes through the duplicate request cache");
	return tap_done();
}
