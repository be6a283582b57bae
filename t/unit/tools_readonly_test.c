/* Commands that only read create nothing: `tessera status`, `fsck`
 * without --repair and `gc --dry-run`, run by the real binary on a
 * mistyped metadata URL (a path that does not exist, the object store's
 * own directory) fail with a clear message and leave no file or
 * directory behind (they used to create an LMDB environment there);
 * on a real volume they succeed and leave its directories exactly as
 * they were, even when the recorded storage URL names a directory that
 * does not exist. */
#include "config.h"

#include "meta/meta.h"
#include "t/unit/tools_test.h"

static char dir[64];

/* Every path under dir with its type and mode, sorted: what a command
 * must not change. */
static char *
tree(void)
{
	struct tl_buf b = TL_BUF_INIT;
	char chunk[4096], *cmd;
	size_t n;
	FILE *p;

	cmd = tl_asprintf("find '%s' -printf '%%y %%m %%p\\n' | sort", dir);
	p = popen(cmd, "r");
	if (p == NULL) {
		printf("Bail out! popen find\n");
		exit(1);
	}
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		tl_buf_append(&b, chunk, n);
	tl_buf_append(&b, "", 1);
	pclose(p);
	free(cmd);
	return (char *)b.data;
}

static bool
exists(const char *rel)
{
	char *path = tl_asprintf("%s/%s", dir, rel);
	struct stat st;
	bool yes = lstat(path, &st) == 0;

	free(path);
	return yes;
}

/* A read-only command on a URL that names no environment. */
static void
mistyped(const char *cmd, const char *rel)
{
	char *before = tree(), *after;

	CHECK_EQ(tt_run("%s 'lmdb://%s/%s'", cmd, dir, rel), 1,
		 "%s of lmdb://.../%s fails", cmd, rel);
	CHECK(tt_said("no LMDB environment at"),
	      "%s says there is no LMDB environment there", cmd);
	after = tree();
	CHECK(strcmp(before, after) == 0,
	      "%s of lmdb://.../%s created "
	      "nothing",
	      cmd, rel);
	free(before);
	free(after);
}

static void
clean_volume(const char *cmd, const char *murl)
{
	char *before = tree(), *after;

	CHECK_EQ(tt_run("%s '%s'", cmd, murl), 0, "%s of the volume runs", cmd);
	after = tree();
	CHECK(strcmp(before, after) == 0,
	      "%s changed no file or directory of the volume", cmd);
	if (strcmp(before, after) != 0)
		printf("# before:\n%s# after:\n%s", before, after);
	free(before);
	free(after);
}

int
main(void)
{
	char *murl, *surl, *err = NULL, *cmd;
	struct meta *m;

	strcpy(dir, "/tmp/ro-test-XXXXXX");
	CHECK_FATAL(mkdtemp(dir) != NULL, "mkdtemp");
	murl = tl_asprintf("lmdb://%s/meta?mapsize=256M", dir);
	surl = tl_asprintf("file://%s/obj", dir);
	CHECK_FATAL(tt_run("format '%s' '%s' vol --block-size 64K", murl,
			   surl) == 0,
		    "format");

	mistyped("status", "typo/meta");
	CHECK(!exists("typo"), "status made no directory for the typo");
	mistyped("status", "obj");
	CHECK(!exists("obj/data.mdb") && !exists("obj/lock.mdb"),
	      "status of the object store's directory made no LMDB files "
	      "in it");
	mistyped("fsck", "typo");
	mistyped("fsck --no-objects", "obj");
	mistyped("gc --dry-run", "typo");
	mistyped("gc --dry-run", "obj");
	CHECK(!exists("typo"), "no directory for the typo after all");

	clean_volume("status", murl);
	clean_volume("fsck", murl);
	clean_volume("gc --dry-run", murl);

	/* The recorded store is missing: the read-only commands report it
	 * and do not create it. */
	CHECK_FATAL(meta_open(murl, NULL, &m, &err) == 0, "open");
	cmd = tl_asprintf("file://%s/moved", dir);
	CHECK_FATAL(meta_set_storage(m, cmd) == 0, "storage -> moved");
	meta_close(m);
	free(cmd);
	CHECK_EQ(tt_run("fsck '%s'", murl), 1,
		 "fsck of a missing store "
		 "fails");
	CHECK(tt_said("cannot open storage"), "and says why");
	CHECK_EQ(tt_run("gc --dry-run '%s'", murl), 1,
		 "gc --dry-run of a missing store fails");
	CHECK(!exists("moved"), "neither created the store's directory");

	free(tt_out);
	free(murl);
	free(surl);
	tap_rm_rf(dir);
	return tap_done();
}
