/* `tessera destroy`, through the real binaries on LMDB and a file://
 * store shared by two volumes of one metadata engine (v and w, objects
 * under v/ and w/): it asks for the volume's name on a terminal and
 * refuses without --yes elsewhere; it refuses while a gateway serves
 * the volume; it deletes v's objects, its marker and its metadata, and
 * nothing of w, which still reads back and is then the engine's only
 * volume; it never deletes the objects of a store whose marker names
 * another volume (--force removes the metadata only); a store without
 * a marker is emptied only when a referenced block reads back. */
#include "config.h"

#include "cache/cache.h"
#include "t/unit/tools_test.h"

#define BS (64u << 10)

static const struct meta_cred root_cred = {.uid = 0};
static char dir[64];
static char *murl, *surl, *log_path;

static void
fill(uint8_t *p, size_t n, unsigned salt)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 13 + salt + (i >> 10));
}

/* Open volume vol of url with its store and a cache; *m etc. out. */
static void
open_vol(const char *url, const char *vol, struct meta **m,
	 struct os_store **os, struct cache **c)
{
	struct cache_opts co = {
		.buffer_limit = 16u << 20, .upload_threads = 2, .gc = false};
	char *err = NULL;

	TT_MUST(meta_open(url, vol, m, &err) == 0, "open %s", vol);
	TT_MUST(os_open(meta_settings(*m)->storage, os, &err) == 0,
		"open store");
	TT_MUST(cache_open(*m, *os, &co, c) == 0, "cache_open");
}

static void
close_vol(struct meta *m, struct os_store *os, struct cache *c)
{
	cache_close(c);
	os_close(os);
	meta_close(m);
}

static void
write_file(const char *url, const char *vol, size_t len, unsigned salt)
{
	struct meta_new n = {.type = META_REG, .mode = 0644};
	uint8_t *buf = tl_malloc(len);
	struct os_store *os;
	struct cache *c;
	struct meta *m;
	struct meta_attr a;
	uint64_t ino = 0;
	bool existed;

	open_vol(url, vol, &m, &os, &c);
	TT_MUST(meta_create(m, &root_cred, META_ROOT_INO, "f", &n, &ino, &a,
			    &existed, NULL, NULL) == 0,
		"create");
	fill(buf, len, salt);
	TT_MUST(cache_write(c, ino, 0, buf, len, false) == 0 &&
			cache_flush(c, ino) == 0,
		"write");
	close_vol(m, os, c);
	free(buf);
}

static bool
reads_back(const char *url, const char *vol, size_t len, unsigned salt)
{
	uint8_t *want = tl_malloc(len), *got = tl_malloc(len);
	struct os_store *os;
	struct cache *c;
	struct meta *m;
	uint64_t ino;
	size_t n = 0;
	bool eof, ok;

	open_vol(url, vol, &m, &os, &c);
	fill(want, len, salt);
	ok = meta_resolve(m, "/f", &ino) == 0 &&
	     cache_read(c, ino, len, 0, len, got, &n, &eof) == 0 && n == len &&
	     memcmp(want, got, len) == 0;
	close_vol(m, os, c);
	free(want);
	free(got);
	return ok;
}

/* Files under dir/obj/sub. */
static int
nfiles(const char *sub)
{
	char *cmd = tl_asprintf("find '%s/obj/%s' -type f 2>/dev/null | "
				"wc -l",
				dir, sub);
	FILE *p = popen(cmd, "r");
	int n = -1;

	TT_MUST(p != NULL, "popen");
	if (fscanf(p, "%d", &n) != 1)
		n = -1;
	pclose(p);
	free(cmd);
	return n;
}

static void
test_foreign_and_unmarked(void)
{
	char *m2 = tl_asprintf("lmdb://%s/meta2?mapsize=256M", dir), *mk;
	struct meta *m;
	char *err = NULL;
	int before;

	/* meta2's w recorded with the store whose w/ is meta's w. */
	CHECK_EQ(tt_run("format '%s' 'file://%s/obj2' w --block-size 64K", m2,
			dir),
		 0, "format w in meta2 on obj2");
	TT_MUST(meta_open(m2, NULL, &m, &err) == 0, "open meta2");
	TT_MUST(meta_set_storage(m, surl) == 0, "point it at obj");
	meta_close(m);
	before = nfiles("w");
	CHECK_EQ(tt_run("destroy --yes '%s'", m2), 1,
		 "destroy of a volume whose store is another's is refused");
	CHECK(tt_said("belongs to another volume"), "saying why");
	CHECK_EQ(tt_run("destroy --yes --force '%s'", m2), 0,
		 "with --force it removes the metadata");
	CHECK(tt_said("was left as it is"), "and says the store was left");
	CHECK_EQ(nfiles("w"), before,
		 "the other volume's objects are all "
		 "there");
	CHECK_EQ(tt_run("status '%s'", m2), 1, "meta2 holds no volume");
	CHECK(reads_back(murl, "w", 2 * BS + 5, 2), "w still reads back");

	/* No marker: emptied when a referenced block reads back. */
	mk = tl_asprintf("%s/obj/w/" OS_MARKER_FILE, dir);
	CHECK(unlink(mk) == 0, "remove w's marker");
	CHECK_EQ(tt_run("destroy --yes '%s'", murl), 0,
		 "destroy of w from its unmarked store");
	CHECK_EQ(nfiles("w"), 0, "deleted w's objects (a block read back)");
	free(mk);
	free(m2);
}

int
main(void)
{
	struct tt_daemon d;
	char *cmd;

	strcpy(dir, "/tmp/destroy-test-XXXXXX");
	CHECK_FATAL(mkdtemp(dir) != NULL, "mkdtemp");
	murl = tl_asprintf("lmdb://%s/meta?mapsize=256M", dir);
	surl = tl_asprintf("file://%s/obj", dir);
	log_path = tl_asprintf("%s/tesserad.log", dir);
	CHECK_FATAL(tt_run("format '%s' '%s' v --block-size 64K", murl, surl) ==
			    0,
		    "format v");
	CHECK_FATAL(tt_run("format '%s' '%s' w --block-size 64K", murl, surl) ==
			    0,
		    "format w in the same engine and store");
	write_file(murl, "v", 3 * BS + 1, 1);
	write_file(murl, "w", 2 * BS + 5, 2);
	CHECK_EQ(nfiles("v"), 5, "v: 4 blocks and a marker");

	CHECK_EQ(tt_run("destroy --volume v '%s'", murl), 1,
		 "destroy without --yes, not on a terminal, is refused");
	CHECK(tt_said("--yes"), "saying --yes is needed");
	CHECK_EQ(tt_run("destroy --yes '%s'", murl), 1,
		 "destroy naming no volume of two is refused");
	cmd = tl_asprintf("printf 'x\\n' | script -qec \"%s destroy --volume "
			  "v '%s'\" /dev/null >/dev/null 2>&1",
			  TESSERA_BIN, murl);
	CHECK(system(cmd) != 0, "on a terminal, a wrong name answered: "
				"refused");
	free(cmd);
	CHECK(reads_back(murl, "v", 3 * BS + 1, 1), "v is intact");

	cmd = tl_asprintf("--meta %s --volume v", murl);
	CHECK_FATAL(tt_daemon_start(&d, log_path, cmd) == 0, "serve v");
	CHECK_EQ(tt_run("destroy --yes --volume v '%s'", murl), 1,
		 "destroy beside a gateway is refused");
	CHECK(tt_said("a gateway serves the volume"), "saying why");
	tt_daemon_stop(&d, SIGTERM);
	free(cmd);
	CHECK(reads_back(murl, "v", 3 * BS + 1, 1), "v is intact");

	cmd = tl_asprintf("printf 'v\\n' | script -qec \"%s destroy --volume "
			  "v '%s'\" /dev/null >'%s/out' 2>&1",
			  TESSERA_BIN, murl, dir);
	CHECK(system(cmd) == 0, "on a terminal, the name typed back: "
				"destroyed");
	free(cmd);
	cmd = tl_asprintf("%s/out", dir);
	CHECK(tt_file_says(cmd, "Type the volume's name") &&
		      tt_file_says(cmd, "destroyed volume v: 4 objects"),
	      "it asked, then said what it deleted");
	free(cmd);
	CHECK_EQ(nfiles("v"), 0, "no object of v is left, marker included");
	CHECK_EQ(tt_run("status --volume v '%s'", murl), 1,
		 "v's metadata "
		 "is gone");
	CHECK_EQ(nfiles("w"), 4, "w's 3 blocks and marker are there");
	CHECK(reads_back(murl, "w", 2 * BS + 5, 2), "w reads back");
	CHECK_EQ(tt_run("status '%s'", murl), 0,
		 "w is now the engine's "
		 "only volume: no name needed");
	CHECK(tt_said("name:          w"), "status shows w");
	CHECK_EQ(tt_run("fsck '%s'", murl), 0, "w is clean");

	test_foreign_and_unmarked();

	free(tt_out);
	tap_rm_rf(dir);
	free(murl);
	free(surl);
	free(log_path);
	return tap_done();
}
