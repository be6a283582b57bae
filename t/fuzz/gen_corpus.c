/*
 * gen_corpus - write the seed corpora of the NFS fuzz targets, calls
 * encoded with the rpcgen XDR routines, file handles as placeholders
 * (t/fuzz/fuzz_vol.h: "\xfeTFH", object index, export parity):
 *
 *   gen_corpus rpc DIR        one call message for every NFSv3 and MOUNT
 *                             procedure (and variants: UNSTABLE and
 *                             FILE_SYNC writes, a write to the read-only
 *                             export, MOUNT v1 EXPORT), and an "RM:"
 *                             record-marking stream (fuzz_rpc);
 *   gen_corpus transport DIR  the same calls record-marked, and streams:
 *                             fragments, a pipeline, a 64 KiB WRITE, a
 *                             mark over the record limit, a record left
 *                             unfinished (fuzz_transport);
 *   gen_corpus mount DIR      MOUNT calls from several clients in
 *                             fuzz_mount's framing (client, length,
 *                             call).
 *
 * t/fuzz/corpus/exports and t/fuzz/corpus/s3xml are written by hand.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nfsd/mount3_prot.h"
#include "nfsd/rpc-internal.h"

enum { ROOT, F, D, S, RO, G };

enum { RPC, TRANSPORT, MOUNT };

static const char *outdir;
static int mode;
static char fhbuf[8][NFSD_FH_SIZE];
static int nfh;

/* A placeholder handle for object obj (export ro: the /ro export). */
static nfs_fh3
fh(int obj, bool ro)
{
	nfs_fh3 h;
	char *b = fhbuf[nfh++ % 8];

	memset(b, 0, NFSD_FH_SIZE);
	memcpy(b, "\xfeTFH", 4);
	b[4] = (char)obj;
	b[5] = ro ? 1 : 0;
	h.data.data_len = NFSD_FH_SIZE;
	h.data.data_val = b;
	return h;
}

static void
write_file(const char *name, const struct tl_buf *b)
{
	char *path = tl_asprintf("%s/%s", outdir, name);
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(b->data, 1, b->len, f) != b->len ||
	    fclose(f) != 0) {
		fprintf(stderr, "gen_corpus: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	free(path);
}

/* Append one call: for the transport a record (mark, then msg); for
 * fuzz_mount from client sel (2 bytes), its length (2), then msg. */
static void
frame(struct tl_buf *out, uint16_t sel, const struct tl_buf *msg)
{
	uint8_t h[4] = {(uint8_t)(sel >> 8), (uint8_t)sel,
			(uint8_t)(msg->len >> 8), (uint8_t)msg->len};

	if (mode == MOUNT)
		tl_buf_append(out, h, 4);
	else
		tl_buf_append_be32(out, 0x80000000u | (uint32_t)msg->len);
	tl_buf_append(out, msg->data, msg->len);
}

/* One call message as a seed, in the mode's form. */
static void
put(const char *name, const struct tl_buf *msg)
{
	struct tl_buf b = TL_BUF_INIT;

	if (mode == RPC) {
		write_file(name, msg);
		return;
	}
	frame(&b, 1, msg);
	write_file(name, &b);
	tl_buf_free(&b);
}

/* Call header with AUTH_SYS uid 0, then the arguments. */
static void
encode(struct tl_buf *b, uint32_t prog, uint32_t vers, uint32_t proc,
       xdrproc_t xargs, void *args)
{
	static uint32_t xid = 1;
	uint32_t w[] = {xid++, 0, 2,         prog, vers, proc, AUTH_SYS,  24,
			1,     1, 'f' << 24, 0,    0,    0,    AUTH_NONE, 0};
	size_t size = xargs != NULL ? xdr_sizeof(xargs, args) : 0;
	XDR x;

	tl_buf_reset(b);
	for (size_t i = 0; i < TL_ARRAY_SIZE(w); i++)
		tl_buf_append_be32(b, w[i]);
	if (xargs == NULL)
		return;
	tl_buf_reserve(b, size);
	xdrmem_create(&x, (char *)b->data + b->len, (u_int)size, XDR_ENCODE);
	if (!xargs(&x, args)) {
		fprintf(stderr, "gen_corpus: cannot encode proc %u\n", proc);
		exit(1);
	}
	b->len += xdr_getpos(&x);
	xdr_destroy(&x);
}

static void
nfs(const char *name, uint32_t proc, xdrproc_t xargs, void *args)
{
	struct tl_buf b = TL_BUF_INIT;

	encode(&b, NFSD_PROG_NFS, 3, proc, xargs, args);
	put(name, &b);
	tl_buf_free(&b);
}

static void
mnt(const char *name, uint32_t vers, uint32_t proc, const char *path)
{
	struct tl_buf b = TL_BUF_INIT;
	mnt3_dirpath_args a = {(char *)path};

	encode(&b, NFSD_PROG_MOUNT, vers, proc,
	       path ? (xdrproc_t)xdr_mnt3_dirpath_args : NULL, &a);
	put(name, &b);
	tl_buf_free(&b);
}

static diropargs3
dop(int dir, const char *name)
{
	diropargs3 d = {fh(dir, false), (char *)name};

	return d;
}

#define NFS(name, proc, type, ...)                                             \
	do {                                                                   \
		type a_ = __VA_ARGS__;                                         \
		nfs(name, proc, (xdrproc_t)xdr_##type, &a_);                   \
	} while (0)

static void
gen_nfs(void)
{
	static char data[] = "hello, fuzzer";
	sattr3 none, with_mode;

	memset(&none, 0, sizeof(none));
	with_mode = none;
	with_mode.mode.set_it = TRUE;
	with_mode.mode.set_mode3_u.mode = 0640;

	nfs("nfs-00-null", NFSPROC3_NULL, NULL, NULL);
	NFS("nfs-01-getattr", NFSPROC3_GETATTR, GETATTR3args, {fh(ROOT, 0)});
	NFS("nfs-02-setattr", NFSPROC3_SETATTR, SETATTR3args,
	    {fh(F, 0), with_mode, {0, {{0, 0}}}});
	NFS("nfs-03-lookup", NFSPROC3_LOOKUP, LOOKUP3args, {dop(ROOT, "f")});
	NFS("nfs-04-access", NFSPROC3_ACCESS, ACCESS3args, {fh(F, 0), 0x3f});
	NFS("nfs-05-readlink", NFSPROC3_READLINK, READLINK3args, {fh(S, 0)});
	NFS("nfs-06-read", NFSPROC3_READ, READ3args, {fh(F, 0), 0, 4096});
	NFS("nfs-07-write-unstable", NFSPROC3_WRITE, WRITE3args,
	    {fh(F, 0), 0, sizeof(data), UNSTABLE, {sizeof(data), data}});
	NFS("nfs-07-write-filesync", NFSPROC3_WRITE, WRITE3args,
	    {fh(F, 0), 100, sizeof(data), FILE_SYNC, {sizeof(data), data}});
	NFS("nfs-07-write-ro", NFSPROC3_WRITE, WRITE3args,
	    {fh(G, 1), 0, sizeof(data), FILE_SYNC, {sizeof(data), data}});
	{
		CREATE3args a;

		memset(&a, 0, sizeof(a));
		a.where = dop(ROOT, "n");
		a.how.mode = UNCHECKED;
		a.how.createhow3_u.obj_attributes = with_mode;
		nfs("nfs-08-create", NFSPROC3_CREATE,
		    (xdrproc_t)xdr_CREATE3args, &a);
		a.how.mode = EXCLUSIVE;
		memcpy(a.how.createhow3_u.verf, "verifier", 8);
		nfs("nfs-08-create-excl", NFSPROC3_CREATE,
		    (xdrproc_t)xdr_CREATE3args, &a);
	}
	NFS("nfs-09-mkdir", NFSPROC3_MKDIR, MKDIR3args,
	    {dop(ROOT, "nd"), with_mode});
	NFS("nfs-10-symlink", NFSPROC3_SYMLINK, SYMLINK3args,
	    {dop(ROOT, "ns"), {none, "f"}});
	{
		MKNOD3args a;

		memset(&a, 0, sizeof(a));
		a.where = dop(D, "fifo");
		a.what.type = NF3FIFO;
		a.what.mknoddata3_u.pipe_attributes = with_mode;
		nfs("nfs-11-mknod", NFSPROC3_MKNOD, (xdrproc_t)xdr_MKNOD3args,
		    &a);
	}
	NFS("nfs-12-remove", NFSPROC3_REMOVE, REMOVE3args, {dop(ROOT, "n")});
	NFS("nfs-13-rmdir", NFSPROC3_RMDIR, RMDIR3args, {dop(ROOT, "nd")});
	NFS("nfs-14-rename", NFSPROC3_RENAME, RENAME3args,
	    {dop(ROOT, "f"), dop(D, "f2")});
	NFS("nfs-15-link", NFSPROC3_LINK, LINK3args, {fh(F, 0), dop(D, "h")});
	NFS("nfs-16-readdir", NFSPROC3_READDIR, READDIR3args,
	    {fh(ROOT, 0), 0, {0}, 4096});
	NFS("nfs-17-readdirplus", NFSPROC3_READDIRPLUS, READDIRPLUS3args,
	    {fh(ROOT, 0), 0, {0}, 1024, 8192});
	NFS("nfs-18-fsstat", NFSPROC3_FSSTAT, FSSTAT3args, {fh(ROOT, 0)});
	NFS("nfs-19-fsinfo", NFSPROC3_FSINFO, FSINFO3args, {fh(ROOT, 0)});
	NFS("nfs-20-pathconf", NFSPROC3_PATHCONF, PATHCONF3args, {fh(ROOT, 0)});
	NFS("nfs-21-commit", NFSPROC3_COMMIT, COMMIT3args, {fh(F, 0), 0, 0});
}

static void
gen_mount(void)
{
	mnt("mnt-00-null", 3, MOUNTPROC3_NULL, NULL);
	mnt("mnt-01-mnt", 3, MOUNTPROC3_MNT, "/");
	mnt("mnt-01-mnt-ro", 3, MOUNTPROC3_MNT, "/ro");
	mnt("mnt-02-dump", 3, MOUNTPROC3_DUMP, NULL);
	mnt("mnt-03-umnt", 3, MOUNTPROC3_UMNT, "/");
	mnt("mnt-04-umntall", 3, MOUNTPROC3_UMNTALL, NULL);
	mnt("mnt-05-export", 3, MOUNTPROC3_EXPORT, NULL);
	mnt("mnt-05-export-v1", 1, MOUNTPROC3_EXPORT, NULL);
}

/* Append to b a GETATTR of the root as a record in two fragments, then
 * a NULL record; m is scratch. */
static void
getattr_split_null(struct tl_buf *b, struct tl_buf *m)
{
	GETATTR3args ga = {fh(ROOT, 0)};
	size_t half;

	encode(m, NFSD_PROG_NFS, 3, NFSPROC3_GETATTR,
	       (xdrproc_t)xdr_GETATTR3args, &ga);
	half = m->len / 2;
	tl_buf_append_be32(b, (uint32_t)half);
	tl_buf_append(b, m->data, half);
	tl_buf_append_be32(b, 0x80000000u | (uint32_t)(m->len - half));
	tl_buf_append(b, m->data + half, m->len - half);
	encode(m, NFSD_PROG_NFS, 3, NFSPROC3_NULL, NULL, NULL);
	frame(b, 0, m);
}

/* "RM:" and two records: GETATTR in two fragments, then NULL. */
static void
gen_stream(void)
{
	struct tl_buf b = TL_BUF_INIT, m = TL_BUF_INIT;

	tl_buf_append(&b, "RM:", 3);
	getattr_split_null(&b, &m);
	write_file("stream-getattr-null", &b);
	tl_buf_free(&b);
	tl_buf_free(&m);
}

/* Streams for the transport: what clients, good and bad, send. */
static void
gen_transport(void)
{
	static char data[65536];
	struct tl_buf b = TL_BUF_INIT, m = TL_BUF_INIT;
	WRITE3args wa = {
		fh(F, 0), 0, sizeof(data), UNSTABLE, {sizeof(data), data}};
	READDIRPLUS3args ra = {fh(ROOT, 0), 0, {0}, 1024, 65536};

	getattr_split_null(&b, &m);
	write_file("stream-fragments", &b);

	/* ten READDIRPLUS calls pipelined */
	tl_buf_reset(&b);
	encode(&m, NFSD_PROG_NFS, 3, NFSPROC3_READDIRPLUS,
	       (xdrproc_t)xdr_READDIRPLUS3args, &ra);
	for (int i = 0; i < 10; i++)
		frame(&b, 0, &m);
	write_file("stream-pipeline", &b);

	/* a 64 KiB WRITE, then COMMIT */
	tl_buf_reset(&b);
	memset(data, 'x', sizeof(data));
	encode(&m, NFSD_PROG_NFS, 3, NFSPROC3_WRITE, (xdrproc_t)xdr_WRITE3args,
	       &wa);
	frame(&b, 0, &m);
	{
		COMMIT3args ca = {fh(F, 0), 0, 0};

		encode(&m, NFSD_PROG_NFS, 3, NFSPROC3_COMMIT,
		       (xdrproc_t)xdr_COMMIT3args, &ca);
		frame(&b, 0, &m);
	}
	write_file("stream-write-commit", &b);

	/* a mark over max_record_size: the connection is closed */
	tl_buf_reset(&b);
	tl_buf_append_be32(&b, 0x80000000u | (2u << 20));
	tl_buf_append(&b, data, 1024);
	write_file("stream-oversized", &b);

	/* a NULL, then a record of 512 KiB announced and left unfinished */
	tl_buf_reset(&b);
	encode(&m, NFSD_PROG_NFS, 3, NFSPROC3_NULL, NULL, NULL);
	frame(&b, 0, &m);
	tl_buf_append_be32(&b, 0x80000000u | (512u << 10));
	tl_buf_append(&b, data, 4096);
	write_file("stream-unfinished", &b);

	/* an empty record, a non-last empty fragment, then NULL */
	tl_buf_reset(&b);
	tl_buf_append_be32(&b, 0x80000000u);
	tl_buf_append_be32(&b, 0);
	frame(&b, 0, &m);
	write_file("stream-empty-records", &b);
	tl_buf_free(&b);
	tl_buf_free(&m);
}

/* fuzz_mount: calls from several clients in a row. */
static void
gen_mount_sequences(void)
{
	struct tl_buf b = TL_BUF_INIT, m = TL_BUF_INIT;
	mnt3_dirpath_args root = {"/"}, ro = {"/ro"};

	for (uint16_t sel = 1; sel <= 40; sel++) {
		encode(&m, NFSD_PROG_MOUNT, 3, MOUNTPROC3_MNT,
		       (xdrproc_t)xdr_mnt3_dirpath_args, sel % 2 ? &root : &ro);
		frame(&b, sel % 8 == 0 ? (uint16_t)(0x8000 | sel) : sel, &m);
	}
	encode(&m, NFSD_PROG_MOUNT, 3, MOUNTPROC3_DUMP, NULL, NULL);
	frame(&b, 1, &m);
	write_file("seq-mnt-40-clients-dump", &b);
	tl_buf_reset(&b);
	encode(&m, NFSD_PROG_MOUNT, 3, MOUNTPROC3_UMNT,
	       (xdrproc_t)xdr_mnt3_dirpath_args, &root);
	frame(&b, 1, &m);
	encode(&m, NFSD_PROG_MOUNT, 3, MOUNTPROC3_UMNTALL, NULL, NULL);
	frame(&b, 0x8008, &m);
	encode(&m, NFSD_PROG_MOUNT, 1, MOUNTPROC3_DUMP, NULL, NULL);
	frame(&b, 2, &m);
	write_file("seq-umnt-umntall-dump-v1", &b);
	tl_buf_free(&b);
	tl_buf_free(&m);
}

int
main(int argc, char **argv)
{
	if (argc != 3 ||
	    (strcmp(argv[1], "rpc") != 0 && strcmp(argv[1], "transport") != 0 &&
	     strcmp(argv[1], "mount") != 0)) {
		fprintf(stderr, "usage: gen_corpus rpc|transport|mount DIR\n");
		return 2;
	}
	mode = strcmp(argv[1], "rpc") == 0         ? RPC
	       : strcmp(argv[1], "transport") == 0 ? TRANSPORT
						   : MOUNT;
	outdir = argv[2];
	if (mode != MOUNT)
		gen_nfs();
	gen_mount();
	if (mode == RPC)
		gen_stream();
	else if (mode == TRANSPORT)
		gen_transport();
	else
		gen_mount_sequences();
	return 0;
}
