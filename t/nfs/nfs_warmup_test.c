/*
 * nfs_warmup_test - `tessera warmup` fills the gateway's disk cache: once
 * it ran, a cold gateway (restarted, nothing in memory) reads the tree
 * without fetching anything from the object store.
 *
 * The store sits behind the fault wrapper (objstore/fault.c) with a
 * control file: "err=1,ops=get" makes every GET fail.  With the disk
 * cache emptied, a READ then fails (the test would notice a fetch);
 * after warmup and a restart, every byte of every file reads back while
 * GETs fail, so none was fetched.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "t/nfs/tharness.h"

#define BS (64 * 1024)

static struct th_server srv;
static struct th_conn cn;
static char ctl[300];

static struct file {
	const char *dir; /* "" or "sub" */
	const char *name;
	uint32_t size;
	uint8_t *data;
} files[] = {
	{"", "top", 70 * 1024, NULL},
	{"sub", "big", 5 * BS + 123, NULL},
	{"sub", "small", 10 * 1024, NULL},
	{"sub/deeper", "leaf", BS, NULL},
};
#define NFILES (sizeof(files) / sizeof(files[0]))

/* The store's fault settings from now on (NULL: none). */
static void
faults(const char *spec)
{
	th_store_faults(ctl, spec);
}

/* The handle of path (components separated by '/') below the root. */
static int
walk(const char *path, struct th_fh *out)
{
	char buf[256], *save = NULL, *name;
	struct th_obj o;

	TH_REQUIRE(th_mnt(&cn, "/", out) == 0, "MNT /");
	snprintf(buf, sizeof buf, "%s", path);
	for (name = strtok_r(buf, "/", &save); name != NULL;
	     name = strtok_r(NULL, "/", &save)) {
		int st = th_lookup(&cn, out, name, &o);

		if (st != NFS3_OK)
			return st;
		*out = o.fh;
	}
	return NFS3_OK;
}

/* Read f whole; NFS3_OK when every byte is what was written. */
static int
read_back(const struct file *f)
{
	char path[256];
	uint8_t *buf = malloc(f->size + 1);
	struct th_fh fh;
	uint32_t off = 0, got;
	bool eof = false;
	int st;

	snprintf(path, sizeof path, "%s/%s", f->dir, f->name);
	st = walk(path, &fh);
	while (st == NFS3_OK && !eof && off <= f->size) {
		st = th_read(&cn, &fh, off, BS, buf + off, &got, &eof);
		if (st == NFS3_OK && got == 0 && !eof)
			st = -1;
		off += got;
		if (off > f->size)
			st = -1;
	}
	if (st == NFS3_OK && (off != f->size || memcmp(buf, f->data, off)))
		st = -1;
	free(buf);
	return st;
}

static void
make_tree(void)
{
	struct th_fh root, sub, deeper, fh;
	struct th_obj o;
	uint8_t verf[8] = {0};
	COMMIT3res cr;
	LINK3res lr;
	sattr3 dsa = th_sattr_mode(0755);

	TH_REQUIRE(th_mnt(&cn, "/", &root) == 0, "MNT /");
	TH_REQUIRE(th_mkdir(&cn, &root, "sub", &dsa, &o) == NFS3_OK, "mkdir");
	sub = o.fh;
	TH_REQUIRE(th_mkdir(&cn, &sub, "deeper", &dsa, &o) == NFS3_OK, "mkdir");
	deeper = o.fh;
	for (size_t i = 0; i < NFILES; i++) {
		struct file *f = &files[i];
		const struct th_fh *dir = f->dir[0] == '\0'     ? &root
					  : strchr(f->dir, '/') ? &deeper
								: &sub;
		sattr3 sa = th_sattr_mode(0644);

		f->data = malloc(f->size);
		th_fill(i + 1, f->data, f->size);
		TH_REQUIRE(th_create(&cn, dir, f->name, UNCHECKED, &sa, verf,
				     &o) == NFS3_OK,
			   "create %s", f->name);
		fh = o.fh;
		for (uint32_t off = 0; off < f->size; off += BS) {
			uint32_t n = f->size - off < BS ? f->size - off : BS;

			TH_REQUIRE(th_write(&cn, &fh, off, f->data + off, n,
					    UNSTABLE, NULL) == NFS3_OK,
				   "write %s", f->name);
		}
		TH_REQUIRE(th_commit(&cn, &fh, 0, 0, &cr) == NFS3_OK,
			   "commit %s", f->name);
		if (strcmp(f->name, "big") == 0)
			TH_REQUIRE(th_link(&cn, &fh, &root, "biglink", &lr) ==
					   NFS3_OK,
				   "hard link to big");
	}
}

/* Stop, empty the disk cache, start: nothing cached anywhere. */
static void
cold_restart(bool empty_disk_cache)
{
	char cmd[400];

	th_disconnect(&cn);
	th_server_stop(&srv, false);
	if (empty_disk_cache) {
		snprintf(cmd, sizeof cmd,
			 "rm -rf '%s/cache' && mkdir '%s/cache'", srv.dir,
			 srv.dir);
		TH_REQUIRE(system(cmd) == 0, "disk cache emptied");
	}
	TH_REQUIRE(th_server_restart(&srv, false) == 0, "tesserad started");
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0, "connect");
}

int
main(void)
{
	char args[400], url[600];
	int st;

	TH_REQUIRE(th_server_start(&srv, "--block-size 64K", NULL) == 0,
		   "start tesserad");
	th_server_fault_store(&srv, NULL, ctl, sizeof ctl);
	snprintf(args, sizeof args, "%s/cache", srv.dir);
	TH_REQUIRE(mkdir(args, 0700) == 0, "mkdir %s", args);
	snprintf(args, sizeof args, "-o cache_dirs=%s/cache -o cache_size=64M",
		 srv.dir);
	th_server_set_args(&srv, args);
	TH_REQUIRE(th_server_restart(&srv, false) == 0, "restart");
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0, "connect");
	make_tree();

	/* the check sees a fetch: cold, GETs failing, a READ fails */
	cold_restart(true);
	faults("err=1,ops=get");
	st = read_back(&files[1]);
	TH_CHECK(st != NFS3_OK,
		 "with an empty cache and GETs failing, READ fails (%s)",
		 th_stat_name(st));
	faults(NULL);

	/* usage errors change nothing */
	TH_CHECK(th_tessera(&srv, "warmup 2>/dev/null") >> 8 == 2,
		 "warmup without a URL: usage error");
	TH_CHECK(th_tessera(&srv, "warmup /mnt/x 2>/dev/null") >> 8 == 2,
		 "warmup of a path that is no nfs:// URL: usage error");
	TH_CHECK(th_tessera(&srv, "warmup --bwlimit x '%s' 2>/dev/null",
			    th_server_url(&srv, "/")) >>
				 8 ==
			 2,
		 "bad --bwlimit: usage error");
	TH_CHECK(th_tessera(&srv, "warmup '%s' /nothing-here 2>/dev/null",
			    th_server_url(&srv, "/")) >>
				 8 ==
			 1,
		 "a path that does not exist: an error");

	/* a sub-tree with a bandwidth limit, then everything */
	snprintf(url, sizeof url, "%s", th_server_url(&srv, "/"));
	TH_CHECK(th_tessera(&srv, "warmup --bwlimit 4M '%s' sub/deeper", url) ==
			 0,
		 "warmup of sub/deeper with --bwlimit");
	TH_CHECK(th_tessera(&srv, "warmup '%s'", url) == 0,
		 "warmup of the whole export");

	/* cold again, the disk cache kept: nothing is fetched */
	cold_restart(false);
	faults("err=1,ops=get");
	for (size_t i = 0; i < NFILES; i++) {
		st = read_back(&files[i]);
		TH_CHECK(st == NFS3_OK,
			 "%s/%s reads back whole with GETs failing (%s)",
			 files[i].dir, files[i].name, th_stat_name(st));
	}
	faults(NULL);

	th_disconnect(&cn);
	th_server_stop(&srv, false);
	TH_CHECK(th_server_fsck(&srv) == 0, "fsck clean");
	for (size_t i = 0; i < NFILES; i++)
		free(files[i].data);
	th_server_destroy(&srv);
	return th_done();
}
