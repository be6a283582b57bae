/* Two volumes of one name on one object store used to corrupt each
 * other (a second `tessera format` with a new metadata URL was accepted,
 * slice ids collided, a file of the first came back with the second's
 * bytes).  Through the real tessera and tesserad binaries, on LMDB and
 * file:// stores, with files written by the real cache:
 *   format writes the marker NAME/tessera.volume naming the volume's
 *   uuid, and refuses a store holding another volume's marker or
 *   objects of the name; config refuses a store whose marker names
 *   another volume, and one from which no referenced block reads back
 *   (the wrong crypt key), unless --force; tesserad refuses to start on
 *   another volume's store, saying whose it is; gc refuses to delete
 *   "leaks" there; a store without a marker (a volume formatted before
 *   markers) is marked when a referenced block reads back, refused
 *   otherwise; format --force replaces a volume (never beside a
 *   gateway); the first volume's file reads back intact throughout. */
#include "config.h"

#include "cache/cache.h"
#include "t/unit/tools_test.h"

#define BS (64u << 10)

static const struct meta_cred root_cred = {.uid = 0};
static char dir[64];
static char *m1, *m2, *s1, *s2, *log_path;

static void
fill(uint8_t *p, size_t n, unsigned salt)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + salt + (i >> 9));
}

/* Write /name (len bytes of pattern salt) into the volume of murl. */
static void
write_file(const char *murl, const char *name, size_t len, unsigned salt)
{
	struct cache_opts co = {
		.buffer_limit = 16u << 20, .upload_threads = 2, .gc = false};
	struct meta_new n = {.type = META_REG, .mode = 0644};
	uint8_t *buf = tl_malloc(len);
	struct os_store *os = NULL;
	struct cache *c = NULL;
	struct meta *m = NULL;
	struct meta_attr a;
	uint64_t ino = 0;
	char *err = NULL;
	bool existed;

	TT_MUST(meta_open(murl, NULL, &m, &err) == 0, "open %s", murl);
	TT_MUST(os_open(meta_settings(m)->storage, &os, &err) == 0,
		"open store");
	TT_MUST(cache_open(m, os, &co, &c) == 0, "cache_open");
	TT_MUST(meta_create(m, &root_cred, META_ROOT_INO, name, &n, &ino, &a,
			    &existed, NULL, NULL) == 0,
		"create %s", name);
	fill(buf, len, salt);
	TT_MUST(cache_write(c, ino, 0, buf, len, false) == 0 &&
			cache_flush(c, ino) == 0,
		"write %s", name);
	cache_close(c);
	os_close(os);
	meta_close(m);
	free(buf);
}

/* Whether /name of murl's volume reads back as pattern salt. */
static bool
reads_back(const char *murl, const char *name, size_t len, unsigned salt)
{
	struct cache_opts co = {
		.buffer_limit = 16u << 20, .upload_threads = 2, .gc = false};
	uint8_t *want = tl_malloc(len), *got = tl_malloc(len);
	struct os_store *os = NULL;
	struct cache *c = NULL;
	struct meta *m = NULL;
	char *err = NULL, *path = tl_asprintf("/%s", name);
	uint64_t ino;
	size_t n = 0;
	bool eof, ok;

	TT_MUST(meta_open(murl, NULL, &m, &err) == 0, "open %s", murl);
	TT_MUST(os_open(meta_settings(m)->storage, &os, &err) == 0,
		"open store");
	TT_MUST(cache_open(m, os, &co, &c) == 0, "cache_open");
	fill(want, len, salt);
	ok = meta_resolve(m, path, &ino) == 0 &&
	     cache_read(c, ino, len, 0, len, got, &n, &eof) == 0 && n == len &&
	     memcmp(want, got, len) == 0;
	cache_close(c);
	os_close(os);
	meta_close(m);
	free(want);
	free(got);
	free(path);
	return ok;
}

static void
set_storage(const char *murl, const char *url)
{
	struct meta *m = NULL;
	char *err = NULL;

	TT_MUST(meta_open(murl, NULL, &m, &err) == 0, "open %s", murl);
	TT_MUST(meta_set_storage(m, url) == 0, "set storage");
	meta_close(m);
}

static char *
marker_path(const char *store_dir)
{
	return tl_asprintf("%s/%s/v/" OS_MARKER_FILE, dir, store_dir);
}

/* The uuid `tessera status` shows for murl. */
static char *
status_uuid(const char *murl)
{
	const char *p;

	TT_MUST(tt_run("status '%s'", murl) == 0, "status");
	p = strstr(tt_out, "uuid:");
	TT_MUST(p != NULL, "uuid in status");
	p += strspn(p + 5, " ") + 5;
	return tl_strndup(p, 36);
}

static bool
starts(const char *murl)
{
	struct tt_daemon d;
	char *args = tl_asprintf("--meta %s", murl);
	int rc = tt_daemon_start(&d, log_path, args);

	free(args);
	tt_daemon_stop(&d, SIGTERM);
	if (rc != 0)
		tt_show_log(log_path);
	return rc == 0;
}

int
main(void)
{
	char *mk, *text, *uuid1, *uuid2, *cmd;
	struct tt_daemon d;

	strcpy(dir, "/tmp/marker-test-XXXXXX");
	CHECK_FATAL(mkdtemp(dir) != NULL, "mkdtemp");
	m1 = tl_asprintf("lmdb://%s/meta1?mapsize=256M", dir);
	m2 = tl_asprintf("lmdb://%s/meta2?mapsize=256M", dir);
	s1 = tl_asprintf("file://%s/obj1", dir);
	s2 = tl_asprintf("file://%s/obj2", dir);
	log_path = tl_asprintf("%s/tesserad.log", dir);

	/* The first volume, its marker, a file. */
	CHECK_EQ(tt_run("format '%s' '%s' v --block-size 64K", m1, s1), 0,
		 "format v on obj1");
	mk = marker_path("obj1");
	text = tt_slurp(mk);
	uuid1 = status_uuid(m1);
	CHECK(strstr(text, "tessera-volume 1\nname v\nuuid ") == text &&
		      strstr(text, uuid1) != NULL && strstr(text, m1) != NULL,
	      "format wrote the marker: name, uuid %s, metadata URL", uuid1);
	free(text);
	write_file(m1, "first", 3 * BS + 100, 1);
	CHECK(reads_back(m1, "first", 3 * BS + 100, 1), "v's file reads");

	/* A second volume of that name on the same store: refused. */
	CHECK_EQ(tt_run("format '%s' '%s' v --block-size 64K", m2, s1), 1,
		 "format of a second volume v on obj1 is refused");
	CHECK(tt_said("already holds volume \"v\"") && tt_said(uuid1),
	      "naming the volume the store holds");
	CHECK_EQ(tt_run("status '%s'", m2), 1, "and created no volume");

	/* The second volume on a store of its own, its file's slice ids
	 * the same as the first's. */
	CHECK_EQ(tt_run("format '%s' '%s' v --block-size 64K", m2, s2), 0,
		 "format v on obj2 with meta2");
	uuid2 = status_uuid(m2);
	write_file(m2, "second", 5000, 2);
	CHECK_EQ(tt_run("config '%s' --storage '%s'", m2, s1), 1,
		 "config of meta2's v to obj1 is refused");
	CHECK(tt_said("belongs to another volume") && tt_said(uuid1),
	      "naming the owner");
	CHECK_EQ(tt_run("config --force '%s' --storage '%s'", m2, s1), 1,
		 "even with --force");
	CHECK(tt_said(uuid2) && tt_said("storage:") == false,
	      "meta2 still records its own store");

	/* As if formatted before markers: meta2 recorded with obj1. */
	set_storage(m2, s1);
	CHECK(!starts(m2), "tesserad refuses to serve meta2's v from obj1");
	CHECK(tt_file_says(log_path, "belongs to another volume named \"v\"") &&
		      tt_file_says(log_path, uuid1),
	      "and says whose the store is");
	CHECK_EQ(tt_run("gc --delete --grace 0 '%s'", m2), 1,
		 "gc of meta2 "
		 "on obj1 "
		 "is refused");
	CHECK(tt_said("belongs to another volume"), "saying why");
	CHECK_EQ(tt_run("fsck '%s'", m2), 1, "fsck of meta2 on obj1 fails");
	CHECK(reads_back(m1, "first", 3 * BS + 100, 1),
	      "the first volume's file is intact");
	CHECK(starts(m1), "tesserad serves v from obj1 with meta1");

	/* No marker (formatted before markers existed). */
	CHECK(unlink(mk) == 0, "remove obj1's marker");
	CHECK(!starts(m2), "meta2's v (none of whose blocks is in obj1) is "
			   "refused an unmarked obj1");
	CHECK(tt_file_says(log_path, "has no volume marker and does not "
				     "hold this volume's data"),
	      "saying why");
	CHECK(access(mk, F_OK) != 0, "and obj1 stays unmarked");
	CHECK_EQ(tt_run("gc --delete --grace 0 '%s'", m2), 1,
		 "gc of meta2's "
		 "v on "
		 "the unmarked obj1 is refused");
	CHECK(tt_said("does not hold this volume's data"), "saying why");
	CHECK_EQ(tt_run("gc --dry-run '%s'", m1), 0,
		 "gc --dry-run of "
		 "meta1's v runs");
	CHECK(tt_said("no volume marker") && access(mk, F_OK) != 0,
	      "warning of the missing marker, writing none");
	CHECK(starts(m1), "meta1's v, whose block reads back, is served");
	CHECK(tt_file_says(log_path, "had no volume marker"),
	      "saying it marks the store");
	text = tt_slurp(mk);
	CHECK(strstr(text, uuid1) != NULL, "obj1's marker names v of meta1 "
					   "again");
	free(text);
	CHECK(unlink(mk) == 0, "remove obj1's marker again");
	CHECK_EQ(tt_run("gc --delete '%s'", m1), 0,
		 "gc --delete of meta1's "
		 "v marks the store "
		 "and runs");
	CHECK(access(mk, F_OK) == 0, "the marker is back");
	CHECK(reads_back(m1, "first", 3 * BS + 100, 1),
	      "the first volume's file is intact");

	/* config reads back a referenced block through the new URL. */
	set_storage(m2, s2);
	cmd = tl_asprintf("%s/key", dir);
	text = tl_asprintf("head -c 32 /dev/urandom > '%s'", cmd);
	TT_MUST(system(text) == 0, "key file");
	free(text);
	CHECK_EQ(tt_run("config '%s' --storage 'crypt(key_file=%s):%s'", m2,
			cmd, s2),
		 1,
		 "config through a wrong crypt key is "
		 "refused");
	CHECK(tt_said("does not read back"), "the block did not read back");
	CHECK_EQ(tt_run("config '%s' --storage 'retry:%s'", m2, s2), 0,
		 "config through a retry wrapper");
	CHECK(tt_said("read back"), "after reading back a block");
	free(cmd);
	CHECK(reads_back(m2, "second", 5000, 2),
	      "the second volume's file reads");

	/* format --force: never beside a gateway; replaces the volume. */
	cmd = tl_asprintf("--meta %s", m1);
	CHECK_FATAL(tt_daemon_start(&d, log_path, cmd) == 0, "serve meta1");
	CHECK_EQ(tt_run("format --force '%s' '%s' v", m1, s1), 1,
		 "format --force beside a gateway is refused");
	CHECK(tt_said("a gateway serves the volume"), "saying why");
	tt_daemon_stop(&d, SIGTERM);
	CHECK(reads_back(m1, "first", 3 * BS + 100, 1), "the file is there");
	CHECK_EQ(tt_run("format --force '%s' '%s' v", m1, s1), 0,
		 "format --force replaces v");
	CHECK(tt_said("destroyed volume v: 4 objects"),
	      "its 4 blocks (and marker) deleted first");
	free(uuid1);
	uuid1 = status_uuid(m1);
	text = tt_slurp(mk);
	CHECK(strstr(text, uuid1) != NULL, "the marker names the new v");
	free(text);
	CHECK(starts(m1), "and the new v is served");
	free(cmd);

	free(uuid1);
	free(uuid2);
	free(mk);
	free(tt_out);
	tap_rm_rf(dir);
	free(m1);
	free(m2);
	free(s1);
	free(s2);
	free(log_path);
	return tap_done();
}
