/*
 * nfs_inline_test - small files' bytes inside the metadata commit
 * (tessera.conf(5) inline_max; meta.h, "inline data"), through a real
 * client and tesserad with inline_max=16K, block size 64K, trash on:
 *   1. CREATE + WRITE (UNSTABLE) + COMMIT of 5,000 bytes stores no
 *      object; the bytes read back, also after a SIGKILL of the gateway;
 *      FSSTAT's used bytes grow by the file's 4 KiB-rounded size (usage
 *      counts inline bytes like any data).
 *   2. A FILE_SYNC write into the inline file: still no object, the
 *      new bytes read back over the old.
 *   3. Grown past inline_max (40 KiB, COMMIT): objects appear; every
 *      byte reads back (the inline bytes the new slice does not cover
 *      included).  Shrunk back (SETATTR size 3,000) and written again
 *      below inline_max: reads back as the truncate and the write say.
 *   4. Truncate to 0 and rewrite; hard link: the bytes read through the
 *      second name once the first is removed; RENAME over an inline
 *      file; REMOVE with the trash on (the file readable in /.trash)
 *      and with trash_days 0 (released at once).
 *   5. `tessera fsck` finds the volume clean and `tessera gc` reports
 *      no leaked object; the JSON dump shows inline records.
 *   6. On a volume whose store encrypts (--encrypt-key-file) a small
 *      file's COMMIT stores an object: no clear text in the metadata.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t/nfs/tharness.h"

#define KiB        1024u
#define INLINE_MAX (16 * KiB)
#define BIG        (40 * KiB)

static struct th_server srv;
/* Whether the file reads back as want[0..len) and is len bytes long. */
static bool
reads_as(struct th_conn *c, const struct th_fh *fh, const uint8_t *want,
	 uint32_t len)
{
	static uint8_t got[BIG + KiB];
	uint32_t n = 0, off = 0;
	bool eof = false;
	fattr3 a;

	if (th_getattr(c, fh, &a) != NFS3_OK || a.size != len)
		return false;
	while (off < len) {
		if (th_read(c, fh, off, len - off, got + off, &n, &eof) !=
			    NFS3_OK ||
		    n == 0)
			return false;
		off += n;
	}
	return memcmp(want, got, len) == 0;
}

static void
make_file(struct th_conn *c, const char *name, const uint8_t *buf, uint32_t len,
	  struct th_obj *o)
{
	sattr3 sa = th_sattr_mode(0644);
	COMMIT3res cr;

	TH_REQUIRE(th_create(c, &c->root, name, UNCHECKED, &sa, NULL, o) ==
			   NFS3_OK,
		   "create %s", name);
	TH_REQUIRE(th_write(c, &o->fh, 0, buf, len, UNSTABLE, NULL) == NFS3_OK,
		   "write %s", name);
	TH_REQUIRE(th_commit(c, &o->fh, 0, 0, &cr) == NFS3_OK, "commit %s",
		   name);
}

static uint64_t
used_bytes(struct th_conn *c)
{
	FSSTAT3res fs;

	if (th_fsstat(c, &c->root, &fs) != NFS3_OK)
		return 0;
	return fs.FSSTAT3res_u.resok.tbytes - fs.FSSTAT3res_u.resok.fbytes;
}

static bool
file_has(const char *path, const char *what)
{
	char cmd[700];

	snprintf(cmd, sizeof cmd, "grep -q '%s' '%s'", what, path);
	return system(cmd) == 0;
}

/* The file name-like entry in the only hour directory of /.trash. */
static bool
trashed(struct th_conn *c, const char *ename, struct th_fh *out)
{
	struct th_dirpage p;
	uint8_t verf[8] = {0};
	struct th_obj t, h, o;
	bool ok = false;

	if (th_lookup(c, &c->root, ".trash", &t) != NFS3_OK ||
	    th_readdir(c, &t.fh, 0, verf, 32768, &p) != NFS3_OK)
		return false;
	for (size_t i = 0; i < p.n && !ok; i++) {
		if (p.v[i].name[0] == '.')
			continue;
		ok = th_lookup(c, &t.fh, p.v[i].name, &h) == NFS3_OK &&
		     th_lookup(c, &h.fh, ename, &o) == NFS3_OK;
	}
	th_dirpage_free(&p);
	if (ok)
		*out = o.fh;
	return ok;
}

int
main(void)
{
	static uint8_t a[BIG], b[BIG], d[BIG];
	struct th_conn c;
	struct th_obj fa, fb, fc, fd, fe, o;
	struct th_fh tfh;
	sattr3 sa;
	char ename[128];
	uint64_t u0, u1;
	size_t objs;
	COMMIT3res cr;

	TH_REQUIRE(th_server_start(&srv, "--block-size 64K --trash-days 1",
				   NULL) == 0,
		   "tesserad");
	th_server_set_args(&srv, "-o inline_max=16K");
	TH_REQUIRE(th_server_restart(&srv, false) == 0, "restarted with "
							"inline_max 16K");
	TH_REQUIRE(th_connect(&c, srv.port, "/", 0, 0) == 0, "connect");

	/* 1. create, write, commit: no object */
	th_fill(1, a, sizeof a);
	u0 = used_bytes(&c);
	make_file(&c, "a", a, 5000, &fa);
	u1 = used_bytes(&c);
	TH_CHECK(th_server_objects(&srv) == 0,
		 "a 5,000-byte file committed stores no "
		 "object (%zu)",
		 th_server_objects(&srv));
	TH_CHECK(reads_as(&c, &fa.fh, a, 5000), "its bytes read back");
	TH_CHECK(u1 - u0 == 8192, "used bytes grow by 8 KiB (%llu)",
		 (unsigned long long)(u1 - u0));
	th_disconnect(&c);
	TH_REQUIRE(th_server_restart(&srv, true) == 0, "tesserad SIGKILLed "
						       "and restarted");
	TH_REQUIRE(th_connect(&c, srv.port, "/", 0, 0) == 0, "reconnect");
	TH_CHECK(reads_as(&c, &fa.fh, a, 5000), "the committed inline file "
						"survives SIGKILL");

	/* 2. a write into it, FILE_SYNC */
	th_fill(2, b, sizeof b);
	TH_STAT(th_write(&c, &fa.fh, 1000, b, 100, FILE_SYNC, NULL), NFS3_OK,
		"FILE_SYNC write of 100 bytes at 1,000");
	memcpy(a + 1000, b, 100);
	TH_CHECK(th_server_objects(&srv) == 0, "still no object");
	TH_CHECK(reads_as(&c, &fa.fh, a, 5000), "the new bytes read back over "
						"the old");

	/* 3. grow past inline_max, then shrink back */
	th_fill(3, b, sizeof b);
	memcpy(a + 4000, b, BIG - 4000);
	TH_STAT(th_write(&c, &fa.fh, 4000, b, BIG - 4000, UNSTABLE, NULL),
		NFS3_OK, "write up to 40 KiB");
	TH_STAT(th_commit(&c, &fa.fh, 0, 0, &cr), NFS3_OK, "commit");
	objs = th_server_objects(&srv);
	TH_CHECK(objs > 0, "past inline_max the data goes to objects (%zu)",
		 objs);
	TH_CHECK(reads_as(&c, &fa.fh, a, BIG), "every byte reads back, the "
					       "first 4,000 still inline");
	sa = th_sattr_none();
	sa.size.set_it = TRUE;
	sa.size.set_size3_u.size = 3000;
	TH_STAT(th_setattr(&c, &fa.fh, &sa, NULL, NULL), NFS3_OK,
		"SETATTR size 3,000");
	TH_CHECK(reads_as(&c, &fa.fh, a, 3000), "shrunk: reads back");
	th_fill(4, b, sizeof b);
	TH_STAT(th_write(&c, &fa.fh, 3000, b, 1000, FILE_SYNC, NULL), NFS3_OK,
		"write 1,000 bytes at 3,000");
	memcpy(a + 3000, b, 1000);
	TH_CHECK(reads_as(&c, &fa.fh, a, 4000), "and reads back");
	TH_CHECK(th_server_objects(&srv) == objs,
		 "that write went inline again");

	/* 4. truncate to 0, links, rename over, remove */
	sa.size.set_size3_u.size = 0;
	TH_STAT(th_setattr(&c, &fa.fh, &sa, NULL, NULL), NFS3_OK,
		"SETATTR size 0");
	th_fill(5, a, sizeof a);
	TH_STAT(th_write(&c, &fa.fh, 0, a, 700, FILE_SYNC, NULL), NFS3_OK,
		"rewrite 700 bytes");
	TH_CHECK(reads_as(&c, &fa.fh, a, 700), "truncated and rewritten: "
					       "reads back");

	th_fill(6, b, sizeof b);
	make_file(&c, "b", b, 9000, &fb);
	TH_STAT(th_link(&c, &fb.fh, &c.root, "b2", NULL), NFS3_OK,
		"LINK b2 to b");
	TH_STAT(th_remove(&c, &c.root, "b"), NFS3_OK, "REMOVE b");
	TH_REQUIRE(th_lookup(&c, &c.root, "b2", &o) == NFS3_OK, "lookup b2");
	TH_CHECK(reads_as(&c, &o.fh, b, 9000), "b's bytes read through b2");

	th_fill(7, d, sizeof d);
	make_file(&c, "c", d, 12000, &fc);
	make_file(&c, "d", a, 100, &fd);
	TH_STAT(th_rename(&c, &c.root, "c", &c.root, "d"), NFS3_OK,
		"RENAME c over d");
	TH_REQUIRE(th_lookup(&c, &c.root, "d", &o) == NFS3_OK, "lookup d");
	TH_CHECK(reads_as(&c, &o.fh, d, 12000), "d holds c's bytes");

	make_file(&c, "e", d, 3333, &fe);
	TH_STAT(th_remove(&c, &c.root, "e"), NFS3_OK, "REMOVE e (trash on)");
	snprintf(ename, sizeof ename, "1-%llu-e",
		 (unsigned long long)fe.attr.fileid);
	TH_REQUIRE(trashed(&c, ename, &tfh), "e is in the trash as %s", ename);
	TH_CHECK(reads_as(&c, &tfh, d, 3333), "and reads back there");

	TH_CHECK(th_tessera(&srv, "config --trash-days 0 '%s'", srv.meta_url) ==
			 0,
		 "trash_days 0");
	th_disconnect(&c);
	TH_REQUIRE(th_server_restart(&srv, false) == 0, "tesserad restarted");
	TH_REQUIRE(th_connect(&c, srv.port, "/", 0, 0) == 0, "reconnect");
	TH_STAT(th_remove(&c, &c.root, "b2"), NFS3_OK,
		"REMOVE b2 (trash "
		"off): released at once");
	TH_STAT(th_lookup(&c, &c.root, "b2", &o), NFS3ERR_NOENT, "b2 is gone");

	/* 5. fsck, gc, dump */
	th_disconnect(&c);
	th_server_stop(&srv, false);
	TH_CHECK(th_server_fsck(&srv) == 0, "fsck finds the volume clean");
	TH_CHECK(th_tessera(&srv, "gc --grace 0 '%s'", srv.meta_url) == 0,
		 "tessera gc runs");
	TH_CHECK(th_tool_figure(&srv, "leaked:") == 0,
		 "gc: no object leaked (%ld)", th_tool_figure(&srv, "leaked:"));
	{
		char path[300];

		snprintf(path, sizeof path, "%s/dump.json", srv.dir);
		TH_CHECK(th_tessera(&srv, "dump --json '%s' '%s'", srv.meta_url,
				    path) == 0 &&
				 file_has(path, "\"type\": \"inline\""),
			 "the JSON dump shows inline records");
	}
	th_server_destroy(&srv);

	/* 6. an encrypted volume stores no clear text in metadata */
	{
		char cmd[600], fmt[400];

		memset(&srv, 0, sizeof srv);
		snprintf(cmd, sizeof cmd,
			 "umask 077; head -c 32 /dev/urandom > "
			 "/tmp/tessera-inline-key.%d",
			 (int)getpid());
		TH_REQUIRE(system(cmd) == 0, "a key file");
		snprintf(fmt, sizeof fmt,
			 "--encrypt-key-file /tmp/tessera-inline-key.%d",
			 (int)getpid());
		TH_REQUIRE(th_server_start(&srv, fmt, NULL) == 0,
			   "tesserad on an encrypted volume");
		th_server_set_args(&srv, "-o inline_max=16K");
		TH_REQUIRE(th_server_restart(&srv, false) == 0,
			   "restarted "
			   "with inline_max 16K");
		TH_REQUIRE(th_connect(&c, srv.port, "/", 0, 0) == 0, "connect");
		make_file(&c, "x", a, 5000, &o);
		TH_CHECK(th_server_objects(&srv) == 1,
			 "a small file's COMMIT stores "
			 "one (encrypted) object (%zu)",
			 th_server_objects(&srv));
		TH_CHECK(reads_as(&c, &o.fh, a, 5000), "and reads back");
		th_disconnect(&c);
		th_server_destroy(&srv);
		snprintf(cmd, sizeof cmd, "rm -f /tmp/tessera-inline-key.%d",
			 (int)getpid());
		if (system(cmd) != 0)
			th_diag("cannot remove the key file");
	}
	return th_done();
}
