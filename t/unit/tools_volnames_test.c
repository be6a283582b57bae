/* Several volumes in one metadata engine: every command of the real
 * `tessera` binary, and tesserad, picks one by --volume NAME or by
 * META_URL?volume=NAME (tesserad also by the tessera.conf option
 * `volume`); naming none says which volumes there are and how to name
 * one (it used to say "holds several volumes: name one" with no way to
 * do so); two different names, or a name the engine does not hold, are
 * errors; a command on one volume leaves the other alone. */
#include "config.h"

#include "t/unit/tools_test.h"

static char dir[64];
static char *murl;

/* `tessera status ARGS` names volume want. */
static void
status_names(const char *args, const char *want)
{
	char *line = tl_asprintf("name:          %s\n", want);

	CHECK_EQ(tt_run("status %s", args), 0, "status %s runs", args);
	CHECK(tt_said(line), "status %s shows volume %s", args, want);
	free(line);
}

/* tesserad with args serves volume want. */
static void
serves(const char *args, const char *want)
{
	struct tt_daemon d;
	char *log = tl_asprintf("%s/d.log", dir);
	char *line = tl_asprintf("volume \"%s\" on", want);

	unlink(log);
	CHECK(tt_daemon_start(&d, log, args) == 0, "tesserad %s starts", args);
	CHECK(tt_file_says(log, line), "tesserad %s serves volume %s", args,
	      want);
	if (!tt_file_says(log, line))
		tt_show_log(log);
	tt_daemon_stop(&d, SIGTERM);
	free(line);
	free(log);
}

static void
test_tesserad(void)
{
	struct tt_daemon d;
	char *log = tl_asprintf("%s/d.log", dir);
	char *conf = tl_asprintf("%s/tessera.conf", dir);
	char *args;
	FILE *f;

	args = tl_asprintf("--meta %s", murl);
	CHECK(tt_daemon_start(&d, log, args) == -1 && WIFEXITED(d.status) &&
		      WEXITSTATUS(d.status) != 0,
	      "tesserad naming no volume exits");
	CHECK(tt_file_says(log, "holds 2 volumes (alpha, beta)") &&
		      tt_file_says(log, "--volume NAME"),
	      "and says which volumes there are and how to name one");
	free(args);

	args = tl_asprintf("--meta %s --volume beta", murl);
	serves(args, "beta");
	free(args);
	args = tl_asprintf("--meta %s?volume=alpha", murl);
	serves(args, "alpha");
	free(args);
	args = tl_asprintf("--meta %s -o volume=alpha", murl);
	serves(args, "alpha");
	free(args);
	f = fopen(conf, "w");
	CHECK_FATAL(f != NULL, "write tessera.conf");
	fprintf(f, "# the volume to serve\nvolume = beta\n");
	fclose(f);
	args = tl_asprintf("--meta %s -c %s", murl, conf);
	serves(args, "beta");
	free(args);

	unlink(log);
	args = tl_asprintf("--meta %s?volume=alpha --volume beta", murl);
	CHECK(tt_daemon_start(&d, log, args) == -1,
	      "tesserad given two different names exits");
	CHECK(tt_file_says(log, "name one"), "and says so");
	free(args);
	free(conf);
	free(log);
}

int
main(void)
{
	char *cmd;

	strcpy(dir, "/tmp/volnames-test-XXXXXX");
	CHECK_FATAL(mkdtemp(dir) != NULL, "mkdtemp");
	murl = tl_asprintf("lmdb://%s/meta", dir);
	CHECK_FATAL(tt_run("format '%s' 'file://%s/obj-a' alpha", murl, dir) ==
			    0,
		    "format alpha");
	CHECK_FATAL(tt_run("format '%s' 'file://%s/obj-b' beta "
			   "--capacity 1G",
			   murl, dir) == 0,
		    "format beta");

	/* Naming none: the names and how to name one. */
	CHECK_EQ(tt_run("status '%s'", murl), 1,
		 "status naming no volume "
		 "fails");
	CHECK(tt_said("holds 2 volumes (alpha, beta)"),
	      "and lists the volumes");
	CHECK(tt_said("--volume NAME") && tt_said("?volume=NAME"),
	      "and says how to name one");

	cmd = tl_asprintf("--volume beta '%s'", murl);
	status_names(cmd, "beta");
	CHECK(tt_said("1073741824"), "beta's capacity shown");
	free(cmd);
	cmd = tl_asprintf("'%s?volume=alpha'", murl);
	status_names(cmd, "alpha");
	CHECK(tt_said("unlimited"), "alpha's unlimited capacity shown");
	free(cmd);
	cmd = tl_asprintf("'%s?mapsize=1G&volume=beta'", murl);
	status_names(cmd, "beta");
	free(cmd);

	CHECK_EQ(tt_run("status --volume alpha '%s?volume=beta'", murl), 1,
		 "two different names: an error");
	CHECK(tt_said("name one"), "that says to name one");
	CHECK_EQ(tt_run("status --volume gamma '%s'", murl), 1,
		 "a volume the engine lacks: an error");
	CHECK(tt_said("no volume 'gamma'"), "that names it");
	CHECK_EQ(tt_run("status '%s?volume=a/b'", murl), 1,
		 "a bad name in the URL: an error");
	CHECK_EQ(tt_run("format '%s?volume=gamma' 'file://%s/obj-c' delta",
			murl, dir),
		 1,
		 "format with two different names "
		 "fails");
	CHECK_EQ(tt_run("fsck '%s'", murl), 1, "fsck naming none fails");
	CHECK(tt_said("--volume NAME"), "fsck says how to name one");

	CHECK_EQ(tt_run("fsck --volume beta '%s'", murl), 0,
		 "fsck --volume beta");
	CHECK(tt_said("checking volume beta"), "checks beta");
	CHECK_EQ(tt_run("fsck '%s?volume=alpha'", murl), 0,
		 "fsck of META_URL?volume=alpha");
	CHECK(tt_said("checking volume alpha"), "checks alpha");
	CHECK_EQ(tt_run("fsck --repair --volume alpha '%s'", murl), 0,
		 "fsck --repair --volume alpha");
	CHECK_EQ(tt_run("gc --dry-run --volume beta '%s'", murl), 0,
		 "gc --dry-run --volume beta");
	CHECK(tt_said("gc of volume beta"), "collects beta");
	CHECK_EQ(tt_run("gc '%s?volume=alpha'", murl), 0,
		 "gc of META_URL?volume=alpha");
	CHECK(tt_said("gc of volume alpha"), "collects alpha");

	CHECK_EQ(tt_run("config --volume beta '%s' --storage "
			"'retry:file://%s/obj-b'",
			murl, dir),
		 0, "config --volume beta");
	cmd = tl_asprintf("--volume beta '%s'", murl);
	status_names(cmd, "beta");
	CHECK(tt_said("retry:file://"), "beta's storage changed");
	free(cmd);
	cmd = tl_asprintf("--volume alpha '%s'", murl);
	status_names(cmd, "alpha");
	CHECK(!tt_said("retry:"), "alpha's storage did not");
	free(cmd);

	test_tesserad();

	free(tt_out);
	free(murl);
	tap_rm_rf(dir);
	return tap_done();
}
