/*
 * nfs_trash_test - the trash (meta.h, "the trash") through a real
 * client and tesserad, on a volume formatted with --trash-days 1:
 *   1. REMOVE of a file moves it into /.trash/HOUR/1-INO-a: root sees
 *      /.trash in READDIR of the root and reads the file back there,
 *      byte for byte; uid 1000 sees no .trash and cannot look it up;
 *      nothing can be created, removed or renamed in the trash, and
 *      /.trash itself cannot be renamed or removed.  Its blocks stay.
 *   2. A RENAME over a file moves the replaced file into the trash.
 *      Directories are not trashed: RMDIR of an empty one leaves nothing.
 *   3. `tessera trash restore` puts the removed file back under its name
 *      with its data; a second restore over the name is refused, and
 *      `tessera trash list` lists what is left.
 *   3b. The trash and a directory quota (/q, 512 KiB): a file removed
 *      from /q no longer counts in /q's quota, but its bytes stay in
 *      the volume's used bytes and its blocks in the store; with /q
 *      full, restoring it there is refused with a message naming the
 *      quota and changes nothing (it stays in the trash, /q's usage and
 *      listing are the same); with room made, it is restored and counts
 *      again.
 *   4. Expiry: tesserad restarted with test_trash_retention=1s releases
 *      the trash by its background job; the replaced file's blocks are
 *      deleted and status shows an empty trash (hour directories go once
 *      their hour is over).
 *   5. trash_days 0 (`tessera config --trash-days 0`): a removed file is
 *      released at once (its blocks deleted, nothing in the trash).
 * fsck finds the volume clean at the end.  Waits are polls with a
 * generous limit; nothing asserts a duration.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t/nfs/tharness.h"

#define POLL_LIMIT_MS (300 * 1000)
#define SIZE          (256 * 1024)

static struct th_server srv;

/* A file of SIZE bytes named name in dir. */
static void
put_in(struct th_conn *c, const struct th_fh *dir, const char *name,
       uint64_t seed, struct th_obj *o)
{
	static uint8_t buf[SIZE];
	sattr3 sa = th_sattr_mode(0644);

	TH_REQUIRE(th_create(c, dir, name, UNCHECKED, &sa, NULL, o) == NFS3_OK,
		   "create %s", name);
	th_fill(seed, buf, sizeof buf);
	TH_REQUIRE(th_write(c, &o->fh, 0, buf, sizeof buf, FILE_SYNC, NULL) ==
			   NFS3_OK,
		   "write %s", name);
}

static bool
same_data(struct th_conn *c, const struct th_fh *fh, uint64_t seed)
{
	static uint8_t want[SIZE], got[SIZE];
	uint32_t n = 0, off = 0;
	bool eof = false;

	th_fill(seed, want, sizeof want);
	while (off < SIZE) {
		if (th_read(c, fh, off, SIZE - off, got + off, &n, &eof) !=
			    NFS3_OK ||
		    n == 0)
			return false;
		off += n;
	}
	return memcmp(want, got, SIZE) == 0;
}

/* The names in a directory (one READDIR page is enough here), joined by
 * spaces into buf. */
static int
list_dir(struct th_conn *c, const struct th_fh *dir, char *buf, size_t len)
{
	struct th_dirpage p;
	uint8_t verf[8] = {0};
	int st;

	buf[0] = '\0';
	st = th_readdir(c, dir, 0, verf, 32768, &p);
	if (st != NFS3_OK)
		return st;
	for (size_t i = 0; i < p.n; i++) {
		if (strcmp(p.v[i].name, ".") == 0 ||
		    strcmp(p.v[i].name, "..") == 0)
			continue;
		strncat(buf, p.v[i].name, len - strlen(buf) - 2);
		strcat(buf, " ");
	}
	th_dirpage_free(&p);
	return NFS3_OK;
}

/* The only hour directory of the trash, looked up as root. */
static bool
hour_dir(struct th_conn *c, struct th_fh *trash, struct th_fh *hour,
	 char *hname, size_t len)
{
	struct th_obj o;
	char names[4096];

	if (th_lookup(c, &c->root, ".trash", &o) != NFS3_OK)
		return false;
	*trash = o.fh;
	if (list_dir(c, trash, names, sizeof names) != NFS3_OK ||
	    strchr(names, ' ') == NULL)
		return false;
	*strchr(names, ' ') = '\0';
	if (strlen(names) >= len)
		return false;
	memcpy(hname, names, strlen(names) + 1);
	if (th_lookup(c, trash, hname, &o) != NFS3_OK)
		return false;
	*hour = o.fh;
	return true;
}

/* `tessera quota get /q`: bytes used, or -1. */
static long long
q_used(void)
{
	char fn[400], line[256];
	long long b = -1;
	FILE *f;

	if (th_tessera(&srv, "quota get '%s' /q", srv.meta_url) != 0)
		return -1;
	snprintf(fn, sizeof fn, "%s/tool.out", srv.dir);
	f = fopen(fn, "r");
	while (f != NULL && fgets(line, sizeof line, f))
		if (sscanf(line, "  bytes: %lld", &b) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return b;
}

/* The figure after what ("used bytes:", "trash:") in `tessera status`,
 * or -1. */
static long
status_figure(const char *what)
{
	if (th_tessera(&srv, "status '%s'", srv.meta_url) != 0)
		return -1;
	return th_tool_figure(&srv, what);
}

/* Whether the tool's last output (tool.out) holds what. */
static bool
tool_said(const char *what)
{
	char fn[400], line[1024];
	bool found = false;
	FILE *f;

	snprintf(fn, sizeof fn, "%s/tool.out", srv.dir);
	f = fopen(fn, "r");
	while (f != NULL && !found && fgets(line, sizeof line, f))
		found = strstr(line, what) != NULL;
	if (f != NULL)
		fclose(f);
	return found;
}

/* The hour directory of the trash that holds ename (an hour may have
 * begun since the first removal): its name into hname, its handle. */
static bool
find_entry(struct th_conn *c, const char *ename, char *hname, size_t len,
	   struct th_fh *hour)
{
	struct th_obj t, h, o;
	char names[4096], *save = NULL;

	if (th_lookup(c, &c->root, ".trash", &t) != NFS3_OK ||
	    list_dir(c, &t.fh, names, sizeof names) != NFS3_OK)
		return false;
	for (char *w = strtok_r(names, " ", &save); w != NULL;
	     w = strtok_r(NULL, " ", &save))
		if (th_lookup(c, &t.fh, w, &h) == NFS3_OK &&
		    th_lookup(c, &h.fh, ename, &o) == NFS3_OK &&
		    strlen(w) < len) {
			memcpy(hname, w, strlen(w) + 1);
			*hour = h.fh;
			return true;
		}
	return false;
}

/* 3b: the trash never counts in a quota; restore into a full one. */
static void
trash_and_quota(struct th_conn *root)
{
	struct th_obj q, big, f1, f2, o;
	char ename[128], names[4096], hname[64];
	struct th_fh hour;
	long long used;
	size_t before;

	TH_REQUIRE(th_mkdir(root, &root->root, "q", NULL, &q) == NFS3_OK,
		   "mkdir q");
	TH_REQUIRE(th_tessera(&srv, "quota set '%s' /q --bytes %d",
			      srv.meta_url, 2 * SIZE) == 0,
		   "tessera quota set /q --bytes 512K");
	put_in(root, &q.fh, "big", 11, &big);
	TH_CHECK(q_used() == SIZE, "/q uses big's 256 KiB");
	used = status_figure("used bytes:");
	before = th_server_objects(&srv);
	TH_STAT(th_remove(root, &q.fh, "big"), NFS3_OK, "remove q/big");
	TH_CHECK(q_used() == 0, "big in the trash: /q uses nothing");
	TH_CHECK(status_figure("used bytes:") == used,
		 "the volume's used bytes keep big's "
		 "(%lld)",
		 used);
	TH_CHECK(th_server_objects(&srv) == before,
		 "big's blocks stay in the store");

	put_in(root, &q.fh, "f1", 12, &f1);
	put_in(root, &q.fh, "f2", 13, &f2);
	TH_CHECK(q_used() == 2 * SIZE, "/q is full: 512 KiB of 512 KiB");
	snprintf(ename, sizeof ename, "%llu-%llu-big",
		 (unsigned long long)q.attr.fileid,
		 (unsigned long long)big.attr.fileid);
	TH_REQUIRE(find_entry(root, ename, hname, sizeof hname, &hour),
		   "big is in the trash (%s)", ename);
	TH_CHECK(th_tessera(&srv, "trash restore '%s' '%s/%s'", srv.meta_url,
			    hname, ename) != 0,
		 "restoring big into the full /q is refused");
	TH_CHECK(tool_said("quota of a directory it would go under has no "
			   "room"),
		 "... with a message naming the quota");
	TH_CHECK(th_lookup(root, &hour, ename, &o) == NFS3_OK &&
			 same_data(root, &o.fh, 11),
		 "big is still in the trash, data intact");
	TH_CHECK(list_dir(root, &q.fh, names, sizeof names) == NFS3_OK &&
			 strcmp(names, "f1 f2 ") == 0,
		 "/q holds f1 and f2 only (%s)", names);
	TH_CHECK(q_used() == 2 * SIZE, "/q's usage did not change");

	TH_STAT(th_remove(root, &q.fh, "f2"), NFS3_OK, "remove q/f2");
	TH_CHECK(th_tessera(&srv, "trash restore '%s' '%s/%s'", srv.meta_url,
			    hname, ename) == 0,
		 "with room made, big is restored into /q");
	TH_CHECK(th_lookup(root, &q.fh, "big", &o) == NFS3_OK &&
			 o.attr.fileid == big.attr.fileid &&
			 same_data(root, &o.fh, 11),
		 "q/big is back with its inode and data");
	TH_CHECK(q_used() == 2 * SIZE, "/q counts big again");
}

int
main(void)
{
	struct th_conn root, user;
	struct th_fh trash, hour;
	struct th_obj a, b, c, o, d;
	char hname[64], names[4096], ename[128];
	uint64_t t0;
	size_t before;

	TH_REQUIRE(th_server_start(&srv, "--block-size 64K --trash-days 1",
				   NULL) == 0,
		   "tesserad on a volume with "
		   "trash_days 1");
	TH_REQUIRE(th_connect(&root, srv.port, "/", 0, 0) == 0, "root "
								"connects");
	TH_REQUIRE(th_connect(&user, srv.port, "/", 1000, 1000) == 0,
		   "uid 1000 connects");

	/* 1. REMOVE into the trash. */
	put_in(&root, &root.root, "a", 1, &a);
	before = th_server_objects(&srv);
	TH_STAT(th_remove(&root, &root.root, "a"), NFS3_OK, "remove a");
	TH_CHECK(th_server_objects(&srv) == before,
		 "a's blocks stay in the store");
	TH_REQUIRE(list_dir(&root, &root.root, names, sizeof names) ==
				   NFS3_OK &&
			   strstr(names, ".trash ") != NULL,
		   "root lists /.trash (%s)", names);
	TH_CHECK(list_dir(&user, &user.root, names, sizeof names) == NFS3_OK &&
			 strstr(names, ".trash") == NULL,
		 "uid 1000 does not (%s)", names);
	TH_STAT(th_lookup(&user, &user.root, ".trash", &o), NFS3ERR_NOENT,
		"uid 1000 cannot look /.trash up");
	TH_REQUIRE(hour_dir(&root, &trash, &hour, hname, sizeof hname),
		   "/.trash holds one hour directory (%s)", hname);
	snprintf(ename, sizeof ename, "1-%llu-a",
		 (unsigned long long)a.attr.fileid);
	TH_REQUIRE(th_lookup(&root, &hour, ename, &o) == NFS3_OK,
		   "the hour directory holds %s", ename);
	TH_CHECK(same_data(&root, &o.fh, 1), "its data reads back");
	{
		sattr3 sa = th_sattr_mode(0644);

		TH_STAT(th_create(&root, &hour, "x", UNCHECKED, &sa, NULL, &d),
			NFS3ERR_PERM, "no create in the trash");
	}
	TH_STAT(th_remove(&root, &hour, ename), NFS3ERR_PERM,
		"no remove in the trash");
	TH_STAT(th_rename(&root, &hour, ename, &root.root, "back"),
		NFS3ERR_PERM, "no rename out of the trash");
	TH_STAT(th_rename(&root, &root.root, ".trash", &root.root, "t2"),
		NFS3ERR_PERM, "no rename of /.trash");
	TH_STAT(th_rmdir(&root, &trash, hname), NFS3ERR_PERM,
		"no rmdir in the trash");

	/* 2. RENAME over b; directories are not trashed. */
	put_in(&root, &root.root, "b", 2, &b);
	put_in(&root, &root.root, "c", 3, &c);
	TH_STAT(th_rename(&root, &root.root, "c", &root.root, "b"), NFS3_OK,
		"rename c over b");
	snprintf(ename, sizeof ename, "1-%llu-b",
		 (unsigned long long)b.attr.fileid);
	TH_CHECK(th_lookup(&root, &hour, ename, &o) == NFS3_OK &&
			 same_data(&root, &o.fh, 2),
		 "the replaced b is in the trash, data intact");
	TH_REQUIRE(th_mkdir(&root, &root.root, "dir", NULL, &d) == NFS3_OK,
		   "mkdir dir");
	TH_STAT(th_rmdir(&root, &root.root, "dir"), NFS3_OK, "rmdir dir");
	TH_CHECK(list_dir(&root, &hour, names, sizeof names) == NFS3_OK &&
			 strstr(names, "-dir") == NULL,
		 "no directory in the trash (%s)", names);

	/* 3. restore a, refuse to overwrite. */
	TH_CHECK(th_tessera(&srv, "trash list '%s'", srv.meta_url) == 0,
		 "tessera trash list");
	snprintf(ename, sizeof ename, "1-%llu-a",
		 (unsigned long long)a.attr.fileid);
	TH_CHECK(th_tessera(&srv, "trash restore '%s' '/.trash/%s/%s'",
			    srv.meta_url, hname, ename) == 0,
		 "tessera trash restore a");
	TH_CHECK(th_lookup(&root, &root.root, "a", &o) == NFS3_OK &&
			 o.attr.fileid == a.attr.fileid &&
			 same_data(&root, &o.fh, 1),
		 "a is back with its inode and data");
	snprintf(ename, sizeof ename, "1-%llu-b",
		 (unsigned long long)b.attr.fileid);
	TH_CHECK(th_tessera(&srv, "trash restore '%s' '%s/%s' 2>/dev/null",
			    srv.meta_url, hname, ename) != 0,
		 "restoring b over the existing b is refused");
	TH_CHECK(th_lookup(&root, &root.root, "b", &o) == NFS3_OK &&
			 o.attr.fileid == c.attr.fileid,
		 "b is still the renamed c");
	TH_CHECK(status_figure("trash:") == 1, "status: one file in "
					       "the trash");
	trash_and_quota(&root);

	/* 4. Expiry by the background job. */
	th_disconnect(&root);
	th_disconnect(&user);
	th_server_set_args(&srv, "-o test_trash_retention=1s");
	TH_REQUIRE(th_server_restart(&srv, false) == 0,
		   "tesserad restarts with test_trash_retention=1s");
	TH_REQUIRE(th_connect(&root, srv.port, "/", 0, 0) == 0, "reconnect");
	before = th_server_objects(&srv);
	t0 = th_now_ms();
	while (status_figure("trash:") != 0 && th_now_ms() - t0 < POLL_LIMIT_MS)
		usleep(200 * 1000);
	TH_CHECK(status_figure("trash:") == 0, "the job emptied the "
					       "trash");
	while (th_server_objects(&srv) >= before &&
	       th_now_ms() - t0 < POLL_LIMIT_MS)
		usleep(200 * 1000);
	TH_CHECK(th_server_objects(&srv) < before,
		 "the replaced b's blocks were deleted");

	/* 5. trash_days 0: released at once. */
	TH_CHECK(th_tessera(&srv, "config --trash-days 0 '%s'", srv.meta_url) ==
			 0,
		 "tessera config --trash-days 0");
	put_in(&root, &root.root, "e", 5, &o);
	before = th_server_objects(&srv);
	TH_STAT(th_remove(&root, &root.root, "e"), NFS3_OK, "remove e");
	t0 = th_now_ms();
	while (th_server_objects(&srv) >= before &&
	       th_now_ms() - t0 < POLL_LIMIT_MS)
		usleep(200 * 1000);
	TH_CHECK(th_server_objects(&srv) < before,
		 "e's blocks were deleted at once");
	TH_CHECK(status_figure("trash:") == 0, "nothing in the trash");

	th_disconnect(&root);
	TH_CHECK(th_server_fsck(&srv) == 0, "fsck: clean");
	th_server_destroy(&srv);
	return th_done();
}
