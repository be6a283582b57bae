/*
 * nfs3_handlers_test.c - the NFSv3 handlers called directly on a real
 * volume (LMDB in a temporary directory, file:// object store, the real
 * cache): READDIR and READDIRPLUS replies fit the client's count exactly
 * (no more, and the next entry would not have fitted), every entry is
 * listed once across pages, TOOSMALL and cookies past the end; WRITE,
 * READ, COMMIT and a truncating SETATTR through the handlers; name rules
 * and REMOVE.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nfsd/nfs3-internal.h"
#include "t/unit/tap.h"

#define NFILES 300

static unsigned pages_done; /* listings that went to the end */

static struct nfsd_ctx ctx;
static struct nfsd_export exp_root = {.id = 7, .path = "/", .root_ino = 1};

static void
call_init(struct nfsd_call *c, uint64_t ino)
{
	memset(c, 0, sizeof(*c));
	c->ctx = &ctx;
	c->exp = &exp_root;
	c->ino = ino;
	REQUIRE(meta_getattr(ctx.meta, ino, &c->attr) == 0);
	cache_overlay_attr(ctx.cache, &c->attr);
}

/* Run handler proc on args; res must be xdr_freed by the caller. */
static void
run(uint32_t proc, uint64_t ino, void *args, void *res)
{
	const struct nfsd_proc *p = &nfsd_nfs3_procs[proc];
	struct nfsd_call c;

	call_init(&c, ino);
	memset(res, 0, p->res_size);
	p->handler(&c, args, res);
}

static void
release(uint32_t proc, void *res)
{
	xdr_free(nfsd_nfs3_procs[proc].xdr_res, res);
}

/* Run handler proc on args, check the status of its result (every
 * result begins with it) is want, and release the result. */
static void
run_status(uint32_t proc, uint64_t ino, void *args, nfsstat3 want)
{
	void *res = malloc(nfsd_nfs3_procs[proc].res_size);

	REQUIRE(res != NULL);
	run(proc, ino, args, res);
	REQUIRE(*(nfsstat3 *)res == want);
	release(proc, res);
	free(res);
}

static size_t
xsize(uint32_t proc, void *res)
{
	return xdr_sizeof(nfsd_nfs3_procs[proc].xdr_res, res);
}

static void
names(void)
{
	CREATE3args a = {0};
	CREATE3res r;

	a.where.name = "a/b";
	a.how.mode = GUARDED;
	run(NFSPROC3_CREATE, 1, &a, &r);
	REQUIRE(r.status == NFS3ERR_ACCES);
	REQUIRE(r.CREATE3res_u.resfail.dir_wcc.after.attributes_follow);
	release(NFSPROC3_CREATE, &r);
	a.where.name = "..";
	run_status(NFSPROC3_CREATE, 1, &a, NFS3ERR_EXIST);
}

static void
make_files(void)
{
	char name[200];

	for (int i = 0; i < NFILES; i++) {
		CREATE3args a = {0};
		CREATE3res r;

		/* Names of every length modulo 4 and some long ones. */
		snprintf(
			name, sizeof(name), "f%d-%.*s", i, i % 97,
			"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		a.where.name = name;
		a.how.mode = GUARDED;
		a.how.createhow3_u.obj_attributes.mode.set_it = TRUE;
		a.how.createhow3_u.obj_attributes.mode.set_mode3_u.mode = 0640;
		run(NFSPROC3_CREATE, 1, &a, &r);
		REQUIRE(r.status == NFS3_OK);
		REQUIRE(r.CREATE3res_u.resok.obj.handle_follows);
		REQUIRE(r.CREATE3res_u.resok.obj_attributes.post_op_attr_u
				.attributes.mode == 0640);
		release(NFSPROC3_CREATE, &r);
	}
}

/* XDR size of the entry after `after` in a full listing. */
struct full {
	size_t n;
	uint64_t cookie[NFILES + 2];
	size_t namelen[NFILES + 2];
};

static void
full_listing(struct full *f)
{
	READDIR3args a = {.cookie = 0, .count = NFS3_IOMAX};
	READDIR3res r;

	run(NFSPROC3_READDIR, 1, &a, &r);
	REQUIRE(r.status == NFS3_OK && r.READDIR3res_u.resok.reply.eof);
	f->n = 0;
	for (entry3 *e = r.READDIR3res_u.resok.reply.entries; e;
	     e = e->nextentry) {
		REQUIRE(f->n < NFILES + 2);
		f->cookie[f->n] = e->cookie;
		f->namelen[f->n] = strlen(e->name);
		f->n++;
	}
	REQUIRE(f->n == NFILES + 2);
	REQUIRE(f->cookie[0] == 1 && f->cookie[1] == 2);
	release(NFSPROC3_READDIR, &r);
}

static size_t
next_size(const struct full *f, uint64_t cookie, bool plus)
{
	for (size_t i = 0; i < f->n; i++) {
		if (f->cookie[i] <= cookie)
			continue;
		return NFS3_XDR_ENTRY(f->namelen[i]) +
		       (plus ? NFS3_XDR_POST_ATTR + 8 +
					NFS3_XDR_PAD(NFSD_FH_SIZE)
			     : 0);
	}
	return 0;
}

static void
readdir_pages(const struct full *f, bool plus, uint32_t count)
{
	uint32_t proc = plus ? NFSPROC3_READDIRPLUS : NFSPROC3_READDIR;
	uint64_t cookie = 0;
	size_t seen = 0;
	bool eof = false;

	while (!eof) {
		READDIR3args a = {.cookie = cookie, .count = count};
		READDIRPLUS3args pa = {.cookie = cookie, .maxcount = count};
		union {
			READDIR3res r;
			READDIRPLUS3res p;
		} u;
		size_t size, n = 0;

		run(proc, 1, plus ? (void *)&pa : (void *)&a, &u);
		if (u.r.status == NFS3ERR_TOOSMALL) {
			/* Only when the next entry alone does not fit
			 * (status, dir attributes, verifier, list end, eof
			 * take 108 bytes). */
			REQUIRE(108 + next_size(f, cookie, plus) > count);
			release(proc, &u);
			return;
		}
		REQUIRE(u.r.status == NFS3_OK);
		size = xsize(proc, &u);
		REQUIRE(size <= count);
		if (plus) {
			eof = u.p.READDIRPLUS3res_u.resok.reply.eof;
			for (entryplus3 *e =
				     u.p.READDIRPLUS3res_u.resok.reply.entries;
			     e; e = e->nextentry, n++) {
				REQUIRE(e->cookie == f->cookie[seen + n]);
				REQUIRE(e->name_attributes.attributes_follow);
				REQUIRE(e->name_handle.handle_follows);
				cookie = e->cookie;
			}
		} else {
			eof = u.r.READDIR3res_u.resok.reply.eof;
			for (entry3 *e = u.r.READDIR3res_u.resok.reply.entries;
			     e; e = e->nextentry, n++) {
				REQUIRE(e->cookie == f->cookie[seen + n]);
				cookie = e->cookie;
			}
		}
		REQUIRE(n > 0 || eof);
		seen += n;
		/* Exactly what fits: the next entry would not have. */
		if (!eof)
			REQUIRE(size + next_size(f, cookie, plus) > count);
		release(proc, &u);
	}
	REQUIRE(seen == f->n);
	pages_done++;
}

static void
readdir_edges(void)
{
	READDIR3args a = {.cookie = 0, .count = 100};
	READDIR3res r;

	run_status(NFSPROC3_READDIR, 1, &a, NFS3ERR_TOOSMALL);
	a.cookie = 1ULL << 40;
	a.count = 4096;
	run(NFSPROC3_READDIR, 1, &a, &r);
	REQUIRE(r.status == NFS3_OK && r.READDIR3res_u.resok.reply.eof);
	REQUIRE(r.READDIR3res_u.resok.reply.entries == NULL);
	release(NFSPROC3_READDIR, &r);
}

static uint64_t
lookup(const char *name)
{
	LOOKUP3args a = {.what.name = (char *)name};
	LOOKUP3res r;
	uint64_t ino;

	run(NFSPROC3_LOOKUP, 1, &a, &r);
	if (r.status != NFS3_OK) {
		release(NFSPROC3_LOOKUP, &r);
		return 0;
	}
	ino = r.LOOKUP3res_u.resok.obj_attributes.post_op_attr_u.attributes
		      .fileid;
	release(NFSPROC3_LOOKUP, &r);
	return ino;
}

static void
io(void)
{
	static char data[100000], back[100000];
	uint64_t ino = lookup("f1-x");
	WRITE3args w = {0};
	WRITE3res wr;
	READ3args ra = {0};
	READ3res rr;
	COMMIT3args ca = {0};
	COMMIT3res cr;
	SETATTR3args sa = {0};
	SETATTR3res sr;

	REQUIRE(ino != 0);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7);
	w.offset = 10;
	w.count = sizeof(data);
	w.stable = UNSTABLE;
	w.data.data_len = sizeof(data);
	w.data.data_val = data;
	run(NFSPROC3_WRITE, ino, &w, &wr);
	REQUIRE(wr.status == NFS3_OK);
	REQUIRE(wr.WRITE3res_u.resok.count == sizeof(data));
	REQUIRE(wr.WRITE3res_u.resok.committed == UNSTABLE);
	REQUIRE(wr.WRITE3res_u.resok.file_wcc.after.post_op_attr_u.attributes
			.size == 10 + sizeof(data));
	release(NFSPROC3_WRITE, &wr);

	ra.offset = 10;
	ra.count = sizeof(back) + 50;
	run(NFSPROC3_READ, ino, &ra, &rr);
	REQUIRE(rr.status == NFS3_OK && rr.READ3res_u.resok.eof);
	REQUIRE(rr.READ3res_u.resok.count == sizeof(data));
	REQUIRE(memcmp(rr.READ3res_u.resok.data.data_val, data, sizeof(data)) ==
		0);
	release(NFSPROC3_READ, &rr);

	run(NFSPROC3_COMMIT, ino, &ca, &cr);
	REQUIRE(cr.status == NFS3_OK);
	REQUIRE(memcmp(cr.COMMIT3res_u.resok.verf, ctx.write_verf, 8) == 0);
	release(NFSPROC3_COMMIT, &cr);
	REQUIRE(cache_buffered(ctx.cache) == 0);

	/* Truncate to 20 bytes, then read past the end: 0 bytes, eof. */
	sa.new_attributes.size.set_it = TRUE;
	sa.new_attributes.size.set_size3_u.size = 20;
	run(NFSPROC3_SETATTR, ino, &sa, &sr);
	REQUIRE(sr.status == NFS3_OK);
	REQUIRE(sr.SETATTR3res_u.resok.obj_wcc.after.post_op_attr_u.attributes
			.size == 20);
	release(NFSPROC3_SETATTR, &sr);
	ra.offset = 20;
	ra.count = 10;
	run(NFSPROC3_READ, ino, &ra, &rr);
	REQUIRE(rr.status == NFS3_OK && rr.READ3res_u.resok.eof &&
		rr.READ3res_u.resok.count == 0);
	release(NFSPROC3_READ, &rr);

	/* Writing past the maximum file size is FBIG. */
	w.offset = META_MAX_FILE_SIZE - 10;
	run_status(NFSPROC3_WRITE, ino, &w, NFS3ERR_FBIG);

	/* READ of a directory is ISDIR. */
	run_status(NFSPROC3_READ, 1, &ra, NFS3ERR_ISDIR);
}

static void
remove_one(void)
{
	REMOVE3args a = {.object.name = "f2-xx"};
	REMOVE3res r;

	run(NFSPROC3_REMOVE, 1, &a, &r);
	REQUIRE(r.status == NFS3_OK);
	REQUIRE(r.REMOVE3res_u.resok.dir_wcc.before.attributes_follow);
	release(NFSPROC3_REMOVE, &r);
	REQUIRE(lookup("f2-xx") == 0);
	run_status(NFSPROC3_REMOVE, 1, &a, NFS3ERR_NOENT);
	a.object.name = ".";
	run_status(NFSPROC3_REMOVE, 1, &a, NFS3ERR_ACCES);
}

static void
create_modes(void)
{
	static char data[5000];
	CREATE3args a = {0};
	CREATE3res r;
	WRITE3args w = {0};
	COMMIT3args ca = {0};
	uint64_t ino, ino2;
	struct meta_attr attr;

	/* EXCLUSIVE: the same verifier again finds the same file. */
	a.where.name = "excl";
	a.how.mode = EXCLUSIVE;
	memcpy(a.how.createhow3_u.verf, "12345678", 8);
	run_status(NFSPROC3_CREATE, 1, &a, NFS3_OK);
	ino = lookup("excl");
	run(NFSPROC3_CREATE, 1, &a, &r);
	REQUIRE(r.status == NFS3_OK);
	REQUIRE(r.CREATE3res_u.resok.obj_attributes.post_op_attr_u.attributes
			.fileid == ino);
	release(NFSPROC3_CREATE, &r);
	memcpy(a.how.createhow3_u.verf, "other!!!", 8);
	run_status(NFSPROC3_CREATE, 1, &a, NFS3ERR_EXIST);

	/* UNCHECKED with size 0 over a file with buffered writes truncates
	 * it, and the buffered bytes do not come back after a COMMIT. */
	memset(data, 'd', sizeof(data));
	w.count = sizeof(data);
	w.stable = UNSTABLE;
	w.data.data_len = sizeof(data);
	w.data.data_val = data;
	run_status(NFSPROC3_WRITE, ino, &w, NFS3_OK);
	memset(&a, 0, sizeof(a));
	a.where.name = "excl";
	a.how.mode = UNCHECKED;
	a.how.createhow3_u.obj_attributes.size.set_it = TRUE;
	a.how.createhow3_u.obj_attributes.size.set_size3_u.size = 0;
	run(NFSPROC3_CREATE, 1, &a, &r);
	REQUIRE(r.status == NFS3_OK);
	REQUIRE(r.CREATE3res_u.resok.obj_attributes.post_op_attr_u.attributes
			.size == 0);
	ino2 = r.CREATE3res_u.resok.obj_attributes.post_op_attr_u.attributes
		       .fileid;
	REQUIRE(ino2 == ino);
	release(NFSPROC3_CREATE, &r);
	run_status(NFSPROC3_COMMIT, ino, &ca, NFS3_OK);
	REQUIRE(meta_getattr(ctx.meta, ino, &attr) == 0 && attr.size == 0);

	/* GUARDED over it is EXIST. */
	a.how.mode = GUARDED;
	run_status(NFSPROC3_CREATE, 1, &a, NFS3ERR_EXIST);
}

int
main(void)
{
	char tmpl[] = "/tmp/nfs3-handlers-XXXXXX", *dir, *err = NULL;
	char murl[256], surl[256], cmd[300];
	struct meta_format_opts fo = {.name = "vol", .block_size = 1 << 20};
	struct cache_opts co = {.buffer_limit = 64 << 20, .upload_threads = 2};
	struct os_store *os;
	struct full f;

	dir = mkdtemp(tmpl);
	REQUIRE(dir != NULL);
	snprintf(murl, sizeof(murl), "lmdb://%s/meta", dir);
	snprintf(surl, sizeof(surl), "file://%s/obj", dir);
	fo.storage = surl;
	REQUIRE(meta_format(murl, &fo, &err) == 0);
	REQUIRE(meta_open(murl, NULL, &ctx.meta, &err) == 0);
	REQUIRE(os_open(surl, &os, &err) == 0);
	REQUIRE(cache_open(ctx.meta, os, &co, &ctx.cache) == 0);
	ctx.vol = meta_settings(ctx.meta);
	memcpy(ctx.write_verf, "verifier", 8);

	names();
	PASSED("CREATE of \"a/b\" is ACCES, of \"..\" EXIST, with dir wcc");
	make_files();
	full_listing(&f);
	PASSED("READDIR lists %d entries at once, cookies 1 and 2 first",
	       NFILES + 2);
	for (uint32_t count = 150; count < 3000; count += 97) {
		readdir_pages(&f, false, count);
		readdir_pages(&f, true, count);
	}
	REQUIRE(pages_done > 20);
	readdir_pages(&f, true, 64 * 1024);
	PASSED("READDIR and READDIRPLUS pages fill the count exactly and "
	       "list every entry once");
	readdir_edges();
	PASSED("TOOSMALL, and a cookie past the end lists nothing");
	io();
	PASSED("WRITE, READ, COMMIT and a truncating SETATTR");
	remove_one();
	PASSED("REMOVE: the name goes, again NOENT, \".\" ACCES");
	create_modes();
	PASSED("CREATE EXCLUSIVE retransmitted finds its file; UNCHECKED "
	       "size 0 truncates buffered writes; GUARDED is EXIST");

	cache_close(ctx.cache);
	os_close(os);
	meta_close(ctx.meta);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	REQUIRE(system(cmd) == 0);
	return tap_done();
}
