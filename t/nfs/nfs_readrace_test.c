/*
 * nfs_readrace_test - a READ whose blocks go away while it fetches them
 * answers the truth, never NFS3ERR_IO.  A READ plans its pieces from the
 * chunk's slice records, then fetches the blocks; meanwhile another
 * client may remove the file or truncate it, which releases the slices,
 * and the deletion job deletes their objects.  The fetch then finds no
 * object.  That is no failure of the store: the READ answers what the
 * file now is (STALE for a removed file, the bytes or the end of file of
 * a truncated one), as a local file system would.
 *
 * The moment is made exact with the fault wrapper's hold=1
 * (objstore/fault.c): the READ's GET waits (FILE.held shows it) while
 * the test removes or truncates the file and waits for the deletion job
 * to delete the blocks, then the GET is let go.
 */
#include "config.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "t/nfs/tharness.h"

#define BS   (64 * 1024)
#define SIZE (4 * BS)

static struct th_server srv;
static struct th_conn ca, cb;
static char ctl[300], held[310];
static uint8_t data[SIZE];

/* The store's fault settings from now on (NULL: none). */
static void
faults(const char *spec)
{
	th_store_faults(ctl, spec);
}

/* Regular files under dir, recursively. */
static unsigned
count_files(const char *dir)
{
	char path[1024];
	struct dirent *e;
	struct stat st;
	unsigned n = 0;
	DIR *d = opendir(dir);

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (lstat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode))
			n += count_files(path);
		else if (S_ISREG(st.st_mode))
			n++;
	}
	closedir(d);
	return n;
}

static unsigned
objects(void)
{
	return count_files(srv.storage_url + strlen("file://"));
}

static bool
is_held(void)
{
	return access(held, F_OK) == 0;
}

static unsigned want_objects;

static bool
objects_gone(void)
{
	return objects() <= want_objects;
}

struct reader {
	struct th_fh fh;
	uint64_t off;
	uint32_t len, got;
	bool eof;
	uint8_t buf[BS];
	int st;
};

static void *
reader_main(void *arg)
{
	struct reader *r = arg;

	r->st = th_read(&ca, &r->fh, r->off, r->len, r->buf, &r->got, &r->eof);
	return NULL;
}

static struct th_fh
make_file(const char *name)
{
	struct th_fh fh = th_create_fh(&ca, &ca.root, name, NULL);

	for (uint32_t off = 0; off < SIZE; off += BS)
		TH_REQUIRE(th_write(&ca, &fh, off, data + off, BS, FILE_SYNC,
				    NULL) == NFS3_OK,
			   "write %s at %u", name, off);
	return fh;
}

/* Start a READ of [off, off+len) of fh on A; return once its GET is
 * held by the store. */
static void
read_held(struct reader *r, pthread_t *t, const struct th_fh *fh, uint64_t off,
	  uint32_t len)
{
	memset(r, 0, sizeof *r);
	r->fh = *fh;
	r->off = off;
	r->len = len;
	faults("hold=1,ops=get");
	TH_REQUIRE(pthread_create(t, NULL, reader_main, r) == 0, "reader");
	TH_REQUIRE(T_WAIT(is_held()), "the READ's GET is held");
}

/* Wait until the deletion job deleted n more objects, then let the held
 * GET go and wait for the READ's answer. */
static void
release_after_delete(struct reader *r, pthread_t t, unsigned before, unsigned n)
{
	bool gone;

	want_objects = before - n;
	gone = T_WAIT(objects_gone());
	TH_CHECK(gone,
		 "the deletion job deleted the %u blocks (%u objects "
		 "left of %u)",
		 n, objects(), before);
	faults(NULL);
	pthread_join(t, NULL);
	(void)r;
}

static void
test_removed(void)
{
	struct th_fh fh = make_file("removed");
	struct reader r;
	pthread_t t;
	unsigned before;

	th_disconnect(&ca);
	TH_REQUIRE(th_server_restart(&srv, false) == 0,
		   "restart (no block in memory)");
	TH_REQUIRE(th_connect(&ca, srv.port, "/", 0, 0) == 0, "connect A");
	TH_REQUIRE(th_connect(&cb, srv.port, "/", 0, 0) == 0, "connect B");
	before = objects();
	read_held(&r, &t, &fh, BS, BS);
	TH_REQUIRE(th_remove(&cb, &cb.root, "removed") == NFS3_OK,
		   "B removes the file while A's READ fetches");
	release_after_delete(&r, t, before, SIZE / BS);
	TH_CHECK(r.st == NFS3ERR_STALE || (r.st == NFS3_OK && r.got == BS &&
					   memcmp(r.buf, data + BS, BS) == 0),
		 "the READ answers STALE (or the bytes), not an I/O error "
		 "(%s)",
		 th_stat_name(r.st));
}

static void
test_truncated(void)
{
	struct th_fh fh = make_file("truncated");
	sattr3 sa = th_sattr_none();
	struct reader r;
	pthread_t t;
	unsigned before;

	th_disconnect(&ca);
	th_disconnect(&cb);
	TH_REQUIRE(th_server_restart(&srv, false) == 0,
		   "restart (no block in memory)");
	TH_REQUIRE(th_connect(&ca, srv.port, "/", 0, 0) == 0, "connect A");
	TH_REQUIRE(th_connect(&cb, srv.port, "/", 0, 0) == 0, "connect B");
	before = objects();
	read_held(&r, &t, &fh, 2 * BS, BS);
	sa.size.set_it = 1;
	sa.size.set_size3_u.size = 0;
	TH_REQUIRE(th_setattr(&cb, &fh, &sa, NULL, NULL) == NFS3_OK,
		   "B truncates the file to 0 while A's READ fetches");
	release_after_delete(&r, t, before, SIZE / BS);
	TH_CHECK(r.st == NFS3_OK && ((r.got == 0 && r.eof) ||
				     (r.got == BS &&
				      memcmp(r.buf, data + 2 * BS, BS) == 0)),
		 "the READ answers the end of file (or the old bytes), not "
		 "an I/O error (%s, %u bytes%s)",
		 th_stat_name(r.st), r.got, r.eof ? ", eof" : "");
}

int
main(void)
{
	th_fill(5, data, SIZE);
	TH_REQUIRE(th_server_start(&srv, "--block-size 64K", NULL) == 0,
		   "start tesserad");
	th_server_fault_store(&srv, NULL, ctl, sizeof ctl);
	snprintf(held, sizeof held, "%s.held", ctl);
	TH_REQUIRE(th_server_restart(&srv, false) == 0, "restart");
	TH_REQUIRE(th_connect(&ca, srv.port, "/", 0, 0) == 0, "connect A");

	test_removed();
	test_truncated();

	th_disconnect(&ca);
	th_disconnect(&cb);
	th_server_stop(&srv, false);
	TH_CHECK(th_server_fsck(&srv) == 0, "fsck clean");
	return th_done();
}
