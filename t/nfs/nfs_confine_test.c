/*
 * nfs_confine_test.c - a client stays inside its export, whatever the
 * handle:
 *   - an operator moves a tenant's directory out of the export: the
 *     tenant's old handles of it (and of what lies inside it) are STALE,
 *     for every procedure and as a second handle (RENAME, LINK); ".."
 *     from it does not climb to the volume and another tenant's files;
 *     moved back, they work again;
 *   - a file moved out: STALE; a file linked inside and outside stays
 *     reachable until its inside link goes; `ln a b; rm a` by the tenant
 *     keeps its handle valid;
 *   - an export re-pointed to another directory with the same fsid= and
 *     SIGHUP: the old handles are STALE; re-pointed to a directory that
 *     holds the old one: they lie inside and stay valid.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t/nfs/tharness.h"

static struct th_server srv;

static const char *exports_a =
	"/          127.0.0.1(rw,insecure,no_root_squash)\n"
	"/tenants/a 127.0.0.1(rw,insecure,no_root_squash)\n";

static struct th_fh
mkdir_in(struct th_conn *c, const struct th_fh *dir, const char *name)
{
	struct th_obj o;
	int st = th_mkdir(c, dir, name, NULL, &o);

	TH_REQUIRE(st == NFS3_OK, "MKDIR %s (%s)", name, th_stat_name(st));
	return o.fh;
}

static struct th_fh
file_in(struct th_conn *c, const struct th_fh *dir, const char *name,
	const char *text)
{
	struct th_obj o;
	int st = th_create(c, dir, name, GUARDED, NULL, NULL, &o);

	TH_REQUIRE(st == NFS3_OK, "CREATE %s (%s)", name, th_stat_name(st));
	st = th_write(c, &o.fh, 0, text, (uint32_t)strlen(text), FILE_SYNC,
		      NULL);
	TH_REQUIRE(st == NFS3_OK, "WRITE %s", name);
	return o.fh;
}

static struct th_fh
lookup(struct th_conn *c, const struct th_fh *dir, const char *name)
{
	struct th_obj o;
	int st = th_lookup(c, dir, name, &o);

	TH_REQUIRE(st == NFS3_OK, "LOOKUP %s (%s)", name, th_stat_name(st));
	return o.fh;
}

static bool
same(const struct th_fh *a, const struct th_fh *b)
{
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* The volume as the operator sees it (MOUNT "/"). */
static struct th_conn op;
static struct th_fh tenants, ta, tb, archive;

static void
setup(void)
{
	TH_REQUIRE(th_connect(&op, srv.port, "/", 0, 0) == 0, "MOUNT /");
	tenants = mkdir_in(&op, &op.root, "tenants");
	ta = mkdir_in(&op, &tenants, "a");
	tb = mkdir_in(&op, &tenants, "b");
	archive = mkdir_in(&op, &op.root, "archive");
	file_in(&op, &tb, "secret", "tenant b's secret");
	file_in(&op, &op.root, "volume-file", "the operator's");
	th_disconnect(&op);
}

/* MOUNT "/" as the operator (op) and "/tenants/a" as tenant a (ten). */
static void
mount_both(struct th_conn *ten)
{
	TH_REQUIRE(th_connect(&op, srv.port, "/", 0, 0) == 0, "MOUNT /");
	TH_REQUIRE(th_connect(ten, srv.port, "/tenants/a", 0, 0) == 0,
		   "MOUNT /tenants/a");
}

/* From dir, LOOKUP ".." up to depth times, then look for what a climb to
 * the volume would find: true if any step reached another tenant's
 * file. */
static bool
climb_reaches_b(struct th_conn *c, const struct th_fh *dir)
{
	struct th_fh cur = *dir;
	struct th_obj o, t, b, s;
	char buf[64];

	for (int i = 0; i < 4; i++) {
		if (th_lookup(c, &cur, "..", &o) != NFS3_OK)
			return false;
		cur = o.fh;
		if (th_lookup(c, &cur, "tenants", &t) == NFS3_OK &&
		    th_lookup(c, &t.fh, "b", &b) == NFS3_OK &&
		    th_lookup(c, &b.fh, "secret", &s) == NFS3_OK &&
		    th_read(c, &s.fh, 0, sizeof buf, buf, NULL, NULL) ==
			    NFS3_OK)
			return true;
	}
	return false;
}

static void
test_moved_out(void)
{
	struct th_conn ten;
	struct th_fh proj, sub, doc, loose, root_file;
	struct th_dirpage p;
	struct th_obj o;
	fattr3 a;
	char buf[64];
	uint32_t got;
	int st;

	mount_both(&ten);
	proj = mkdir_in(&ten, &ten.root, "proj");
	sub = mkdir_in(&ten, &proj, "sub");
	doc = file_in(&ten, &sub, "doc", "tenant a's doc");
	loose = file_in(&ten, &ten.root, "loose", "a file");
	root_file = file_in(&ten, &ten.root, "stays", "stays inside");

	st = th_lookup(&ten, &proj, "..", &o);
	TH_CHECK(st == NFS3_OK && same(&o.fh, &ten.root),
		 "LOOKUP .. of proj is the export root (%s)", th_stat_name(st));
	TH_CHECK(!climb_reaches_b(&ten, &sub),
		 "before the move, climbing .. "
		 "from proj/sub reaches no other tenant");

	/* The operator archives proj: out of the tenant's export. */
	st = th_rename(&op, &ta, "proj", &archive, "proj");
	TH_REQUIRE(st == NFS3_OK, "operator: RENAME /tenants/a/proj to "
				  "/archive/proj");
	TH_STAT(th_getattr(&ten, &proj, &a), NFS3ERR_STALE,
		"GETATTR of the moved directory");
	TH_STAT(th_getattr(&ten, &sub, &a), NFS3ERR_STALE,
		"GETATTR of a directory inside it");
	TH_STAT(th_getattr(&ten, &doc, &a), NFS3ERR_STALE,
		"GETATTR of a file inside it");
	TH_STAT(th_read(&ten, &doc, 0, sizeof buf, buf, &got, NULL),
		NFS3ERR_STALE, "READ of that file");
	TH_STAT(th_write(&ten, &doc, 0, "x", 1, FILE_SYNC, NULL), NFS3ERR_STALE,
		"WRITE of that file");
	TH_STAT(th_lookup(&ten, &proj, "..", &o), NFS3ERR_STALE,
		"LOOKUP .. of the moved directory");
	TH_STAT(th_lookup(&ten, &sub, "doc", &o), NFS3ERR_STALE,
		"LOOKUP in a directory inside it");
	TH_STAT(th_readdirplus(&ten, &proj, 0, NULL, 4096, 8192, &p),
		NFS3ERR_STALE, "READDIRPLUS of the moved directory");
	th_dirpage_free(&p);
	TH_STAT(th_create(&ten, &proj, "new", GUARDED, NULL, NULL, &o),
		NFS3ERR_STALE, "CREATE in it");
	TH_STAT(th_rename(&ten, &ten.root, "loose", &proj, "loose"),
		NFS3ERR_STALE, "RENAME into it (second handle)");
	TH_STAT(th_link(&ten, &loose, &proj, "loose", NULL), NFS3ERR_STALE,
		"LINK into it (second handle)");
	TH_CHECK(!climb_reaches_b(&ten, &sub),
		 "climbing .. from the moved "
		 "proj/sub reaches no other tenant's file");
	TH_STAT(th_getattr(&ten, &root_file, &a), NFS3_OK,
		"a file still inside is served");
	TH_STAT(th_getattr(&ten, &ten.root, &a), NFS3_OK,
		"the export root is served");
	st = th_lookup(&op, &archive, "proj", &o);
	TH_CHECK(st == NFS3_OK,
		 "the operator's export reaches the archived "
		 "directory (%s)",
		 th_stat_name(st));

	/* Back in: the same handles work again. */
	st = th_rename(&op, &archive, "proj", &ta, "proj");
	TH_REQUIRE(st == NFS3_OK, "operator: RENAME it back");
	st = th_read(&ten, &doc, 0, sizeof buf, buf, &got, NULL);
	TH_CHECK(st == NFS3_OK && got == 14 &&
			 memcmp(buf, "tenant a's doc", 14) == 0,
		 "moved back: the old handle of doc reads it (%s)",
		 th_stat_name(st));

	/* A file moved out by the operator. */
	loose = file_in(&ten, &ten.root, "loose2", "a file");
	st = th_rename(&op, &ta, "loose2", &archive, "loose2");
	TH_REQUIRE(st == NFS3_OK, "operator: RENAME a file out");
	TH_STAT(th_read(&ten, &loose, 0, sizeof buf, buf, &got, NULL),
		NFS3ERR_STALE, "READ of the file moved out");
	th_disconnect(&ten);
	th_disconnect(&op);
}

static void
test_links(void)
{
	struct th_conn ten;
	struct th_fh shared, secret, mine, first;
	char buf[64];
	uint32_t got;
	int st;

	mount_both(&ten);

	/* The operator links b's file into a: it lies inside too. */
	secret = lookup(&op, &tb, "secret");
	st = th_link(&op, &secret, &ta, "shared", NULL);
	TH_REQUIRE(st == NFS3_OK, "operator: LINK /tenants/b/secret as "
				  "/tenants/a/shared");
	st = th_link(&op, &secret, &archive, "secret-copy", NULL);
	TH_REQUIRE(st == NFS3_OK, "operator: LINK it into /archive too (its "
				  "last linked directory is outside a)");
	shared = lookup(&ten, &ten.root, "shared");
	st = th_read(&ten, &shared, 0, sizeof buf, buf, &got, NULL);
	TH_CHECK(st == NFS3_OK && got == 17,
		 "a file linked inside and "
		 "outside the export is read through its handle (%s)",
		 th_stat_name(st));
	st = th_remove(&op, &ta, "shared");
	TH_REQUIRE(st == NFS3_OK, "operator: REMOVE the inside link");
	TH_STAT(th_read(&ten, &shared, 0, sizeof buf, buf, &got, NULL),
		NFS3ERR_STALE, "its handle is STALE once no link lies inside");

	/* The tenant's own link dance. */
	first = file_in(&ten, &ten.root, "a", "link dance");
	st = th_link(&ten, &first, &ten.root, "b", NULL);
	TH_REQUIRE(st == NFS3_OK, "tenant: LINK a b");
	TH_REQUIRE(th_remove(&ten, &ten.root, "a") == NFS3_OK,
		   "tenant: REMOVE a");
	mine = lookup(&ten, &ten.root, "b");
	TH_CHECK(same(&mine, &first), "b has a's handle");
	st = th_read(&ten, &first, 0, sizeof buf, buf, &got, NULL);
	TH_CHECK(st == NFS3_OK && got == 10,
		 "ln a b; rm a: the handle still "
		 "reads (%s)",
		 th_stat_name(st));
	th_disconnect(&ten);
	th_disconnect(&op);
}

/* Send SIGHUP and wait until MOUNT of path answers want (the reload is
 * done); false if it never does. */
static bool
reload_until(const char *path, int want)
{
	struct th_conn c;
	struct th_fh fh;
	int st = -1;

	TH_REQUIRE(kill(srv.pid, SIGHUP) == 0, "SIGHUP to tesserad");
	for (uint64_t t0 = th_now_ms();
	     st != want && th_now_ms() - t0 < TH_STALL_MS; usleep(50000)) {
		if (th_connect(&c, srv.port, "/", 0, 0) == 0)
			st = th_mnt(&c, path, &fh);
		th_disconnect(&c);
	}
	return st == want;
}

static void
test_repointed(void)
{
	struct th_conn ten;
	struct th_fh f, d, broot;
	struct th_obj o;
	fattr3 a;
	int st;

	TH_REQUIRE(th_server_set_exports(&srv,
					 "/          127.0.0.1(rw,insecure,"
					 "no_root_squash)\n"
					 "/tenants/a 127.0.0.1(rw,insecure,"
					 "no_root_squash,fsid=77)\n") == 0 &&
			   th_server_restart(&srv, false) == 0,
		   "restart: /tenants/a with fsid=77");
	TH_REQUIRE(th_connect(&ten, srv.port, "/tenants/a", 0, 0) == 0,
		   "MOUNT /tenants/a");
	d = mkdir_in(&ten, &ten.root, "fsid-dir");
	f = file_in(&ten, &d, "f", "fsid file");

	/* Re-pointed to b, same fsid. */
	th_server_set_exports(&srv, "/          127.0.0.1(rw,insecure,"
				    "no_root_squash)\n"
				    "/tenants/b 127.0.0.1(rw,insecure,"
				    "no_root_squash,fsid=77)\n");
	TH_REQUIRE(reload_until("/tenants/b", MNT3_OK),
		   "SIGHUP: /tenants/b is exported with fsid=77");
	TH_STAT(th_getattr(&ten, &ten.root, &a), NFS3ERR_STALE,
		"the old export root's handle is STALE");
	TH_STAT(th_getattr(&ten, &f, &a), NFS3ERR_STALE,
		"a file's handle is STALE");
	TH_STAT(th_lookup(&ten, &d, "..", &o), NFS3ERR_STALE,
		"LOOKUP .. from an old directory handle is STALE");
	TH_STAT(th_lookup(&ten, &ten.root, "fsid-dir", &o), NFS3ERR_STALE,
		"LOOKUP in the old root is STALE");
	TH_REQUIRE(th_mnt(&ten, "/tenants/b", &broot) == MNT3_OK,
		   "MOUNT /tenants/b");
	TH_STAT(th_lookup(&ten, &broot, "secret", &o), NFS3_OK,
		"the re-pointed export serves its new directory");

	/* Re-pointed to the directory that holds the old one. */
	th_server_set_exports(&srv, "/          127.0.0.1(rw,insecure,"
				    "no_root_squash)\n"
				    "/tenants   127.0.0.1(rw,insecure,"
				    "no_root_squash,fsid=77)\n");
	TH_REQUIRE(reload_until("/tenants", MNT3_OK),
		   "SIGHUP: /tenants is exported with fsid=77");
	st = th_getattr(&ten, &f, &a);
	TH_STAT(st, NFS3_OK,
		"re-pointed to /tenants: the file lies inside "
		"and its handle works");
	TH_STAT(th_getattr(&ten, &broot, &a), NFS3_OK,
		"so does b's root, now a directory of the export");
	th_disconnect(&ten);
}

int
main(void)
{
	TH_REQUIRE(th_server_start(&srv, NULL, NULL) == 0, "tesserad started");
	setup();
	TH_REQUIRE(th_server_set_exports(&srv, exports_a) == 0 &&
			   th_server_restart(&srv, false) == 0,
		   "restart: / and /tenants/a exported");
	test_moved_out();
	test_links();
	test_repointed();
	th_server_stop(&srv, false);
	TH_CHECK(th_server_fsck(&srv) == 0, "fsck finds the volume clean");
	return th_done();
}
