/* How the real tesserad starts, and what it leaves on disk:
 *  - cache_dirs naming a directory that does not exist, a relative path
 *    (a daemon runs in /) or a file is an error at start, with the path
 *    in the message, and nothing is created (it used to be a mkdir -p,
 *    at / for a relative path);
 *  - log_file (and --log-file): lines go to the file, the start says
 *    where logs go, SIGHUP reopens the file (logrotate), a daemon's
 *    start-up error still reaches the terminal; a daemon without log_file
 *    and without a syslog socket logs to stderr (it used to lose every
 *    line to syslog(3) with nobody listening);
 *  - with umask 0: the file:// store's root, directories and objects
 *    (marker and blocks) are 0700 and 0600, an older store's 0755 root is
 *    closed, and the cache directory's blocks/ and staging/ and the files
 *    in them are 0700 and 0600 (objects used to be 0644 in 0755
 *    directories, readable by any local user). */
#include "config.h"

#include <dirent.h>
#include <sched.h>
#include <sys/mount.h>

#include "cache/cache.h"
#include "t/unit/tools_test.h"

#define BS (64u << 10)

static const struct meta_cred root_cred = {.uid = 0};
static char dir[64];
static char *murl, *log_path;
static pid_t daemon_pid;

static char *
path_of(const char *rel)
{
	return tl_asprintf("%s/%s", dir, rel);
}

static bool
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static unsigned
mode_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (unsigned)(st.st_mode & 07777) : 01000;
}

/* A tesserad that does not start: its exit status, its stderr in
 * tt_out-like text (caller frees). */
static int
fails(const char *args, char **err)
{
	struct tt_daemon d;
	int rc = tt_daemon_start(&d, log_path, args);

	if (rc == 0) {
		tt_daemon_stop(&d, SIGTERM);
		*err = tl_strdup("(it started)");
		return 0;
	}
	*err = tt_slurp(log_path);
	return WIFEXITED(d.status) ? WEXITSTATUS(d.status) : -1;
}

static void
test_cache_dirs(void)
{
	char *missing = path_of("nocache"), *file = path_of("afile");
	char *rel = tl_asprintf("tessera-relcache-%d", (int)getpid());
	char *rootrel = tl_asprintf("/%s", rel), *args, *err;
	FILE *f;

	args = tl_asprintf("--meta %s -o cache_dirs=%s", murl, missing);
	CHECK_EQ(fails(args, &err), 2, "a missing cache dir stops tesserad");
	CHECK(strstr(err, missing) && strstr(err, "No such file"),
	      "naming the directory and why");
	CHECK(!exists(missing), "and it is not created");
	free(args);
	free(err);

	args = tl_asprintf("--meta %s -o cache_dirs=%s", murl, rel);
	CHECK_EQ(fails(args, &err), 2, "a relative cache dir stops tesserad");
	CHECK(strstr(err, "not an absolute path") != NULL, "saying so");
	CHECK(!exists(rootrel), "nothing is made at /");
	free(args);
	free(err);

	f = fopen(file, "w");
	TT_MUST(f != NULL, "a file");
	fclose(f);
	args = tl_asprintf("--meta %s -o cache_dirs=%s", murl, file);
	CHECK_EQ(fails(args, &err), 2, "a file as cache dir stops tesserad");
	CHECK(strstr(err, "not a directory") != NULL, "saying so");
	free(args);
	free(err);
	if (exists(rootrel))
		rmdir(rootrel);
	free(rel);
	free(rootrel);
	free(missing);
	free(file);
}

/* Run tesserad as a daemon (no --foreground), stderr to errfile; 0
 * when the command returned 0 (the daemon listens). */
static int
daemon_run(const char *args, const char *errfile)
{
	char *cmd = tl_asprintf("%s --no-rpcbind --listen 127.0.0.1:0 "
				"--metrics-listen off --pidfile %s/pid %s "
				"</dev/null >/dev/null 2>'%s'",
				TESSERAD_BIN, dir, args, errfile);
	char *pidf = path_of("pid"), *pid;
	int rc = system(cmd);

	daemon_pid = 0;
	if (rc == 0) {
		pid = tt_slurp(pidf);
		daemon_pid = (pid_t)atoi(pid);
		free(pid);
	}
	free(cmd);
	free(pidf);
	return rc;
}

static void
daemon_kill(void)
{
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGTERM);
		T_WAIT(kill(daemon_pid, 0) != 0);
		daemon_pid = 0;
	}
}

/* Poll (no time asserted) until path says s. */
static bool
eventually_says(const char *path, const char *s)
{
	return T_WAIT(tt_file_says(path, s));
}

static void
test_log_file(void)
{
	char *lf = path_of("tesserad.log"),
	     *rotated = path_of("tesserad.log.1");
	char *errf = path_of("daemon.err"), *conf = path_of("tessera.conf");
	char *args;
	FILE *f;

	args = tl_asprintf("--meta %s --log-file %s", murl, lf);
	CHECK_EQ(daemon_run(args, errf), 0, "daemon with --log-file starts");
	free(args);
	CHECK(tt_file_says(lf, "volume \"v\" on 127.0.0.1 port") &&
		      tt_file_says(lf, "logs go to "),
	      "the log file has the start "
	      "and where logs go");
	CHECK(tt_file_says(errf, "logs go to ") && tt_file_says(errf, lf),
	      "the terminal is told where logs go");
	CHECK(rename(lf, rotated) == 0, "logrotate moves the file");
	kill(daemon_pid, SIGHUP);
	CHECK(eventually_says(lf, "reloaded"), "after SIGHUP, lines go to "
					       "a new file of that name");
	CHECK(!tt_file_says(rotated, "reloaded"), "not to the moved one");
	CHECK_EQ(mode_of(lf) & 077, 040, "the log file is 0640");
	daemon_kill();
	CHECK(tt_file_says(lf, "stopping"), "the stop is logged there too");
	unlink(lf);

	/* log_file from tessera.conf; a start-up error reaches the
	 * terminal as well as the file. */
	f = fopen(conf, "w");
	TT_MUST(f != NULL, "tessera.conf");
	fprintf(f, "log_file = %s\n", lf);
	fclose(f);
	args = tl_asprintf("--meta %s --volume nosuch -c %s", murl, conf);
	CHECK(daemon_run(args, errf) != 0, "a daemon that cannot open its "
					   "volume fails");
	CHECK(tt_file_says(errf, "no volume 'nosuch'"), "saying why on the "
							"terminal");
	CHECK(tt_file_says(lf, "no volume 'nosuch'"), "and in the log file");
	free(args);
	args = tl_asprintf("--meta %s --log-file %s/no/such/dir/log", murl,
			   dir);
	CHECK(daemon_run(args, errf) != 0 && tt_file_says(errf, "log file") &&
		      tt_file_says(errf, "No such"),
	      "an unwritable log file stops tesserad at once, saying why");
	free(args);
	free(lf);
	free(rotated);
	free(errf);
	free(conf);
}

/* Without log_file and without a syslog socket (hidden in a mount
 * namespace when this machine has one), a daemon logs to its stderr. */
static void
test_no_syslog(void)
{
	char *errf = path_of("nosyslog.err"), *args;
	pid_t pid;
	int st;

	fflush(stdout);
	pid = fork();
	TT_MUST(pid >= 0, "fork");
	if (pid == 0) {
		if (exists("/dev/log") &&
		    (unshare(CLONE_NEWNS) != 0 ||
		     mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
		     mount("/dev/null", "/dev/log", NULL, MS_BIND, NULL) != 0))
			_exit(77);
		args = tl_asprintf("--meta %s", murl);
		st = daemon_run(args, errf);
		free(args);
		if (st == 0) {
			kill(daemon_pid, SIGHUP);
			eventually_says(errf, "reloaded");
			daemon_kill();
		}
		_exit(st == 0 ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
		printf("# skipped: /dev/log exists and cannot be hidden "
		       "(not root?)\n");
		free(errf);
		return;
	}
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a daemon without a "
						     "syslog socket starts");
	CHECK(tt_file_says(errf, "no syslog socket"), "saying its logs go "
						      "to stderr");
	CHECK(tt_file_says(errf, "reloaded") && tt_file_says(errf, "stopping"),
	      "and lines logged after it detached reach stderr");
	free(errf);
}

/* Every directory and file under root: directories 0700, files 0600. */
static int
bad_modes(const char *root, int *nfiles)
{
	char *cmd = tl_asprintf("find '%s' -mindepth 1 \\( -type d ! -perm "
				"0700 \\) -o \\( -type f ! -perm 0600 \\) | "
				"wc -l; find '%s' -type f | wc -l",
				root, root);
	FILE *p = popen(cmd, "r");
	int bad = -1;

	TT_MUST(p != NULL, "popen find");
	if (fscanf(p, "%d %d", &bad, nfiles) != 2)
		bad = -1;
	pclose(p);
	free(cmd);
	return bad;
}

static void
test_modes(void)
{
	struct cache_opts co = {.buffer_limit = 16u << 20,
				.upload_threads = 2,
				.gc = false,
				.writeback = true};
	struct meta_new n = {.type = META_REG, .mode = 0600};
	char *store = path_of("obj2"), *cdir = path_of("cache"), *m2;
	char *err = NULL, *surl;
	uint8_t *buf = tl_calloc(1, 3 * BS);
	struct os_store *os;
	struct cache *c;
	struct meta *m;
	struct meta_attr a;
	uint64_t ino;
	size_t got = 0;
	bool existed, eof;
	int nf = 0;

	umask(0);
	TT_MUST(mkdir(store, 0755) == 0, "an older store's 0755 root");
	TT_MUST(mkdir(cdir, 0755) == 0, "the cache dir");
	m2 = tl_asprintf("lmdb://%s/meta2?mapsize=256M", dir);
	surl = tl_asprintf("file://%s", store);
	CHECK_EQ(tt_run("format '%s' '%s' v --block-size 64K", m2, surl), 0,
		 "format with umask 0");
	CHECK_EQ(mode_of(store), 0700, "the store's root is closed: 0700");

	/* Blocks written by the cache with writeback: staged, uploaded. */
	co.cache_dirs = cdir;
	TT_MUST(meta_open(m2, NULL, &m, &err) == 0, "open");
	TT_MUST(os_open(surl, &os, &err) == 0, "store");
	TT_MUST(cache_open(m, os, &co, &c) == 0, "cache_open");
	TT_MUST(meta_create(m, &root_cred, META_ROOT_INO, "secret", &n, &ino,
			    &a, &existed, NULL, NULL) == 0,
		"create");
	TT_MUST(cache_write(c, ino, 0, buf, 3 * BS, true) == 0, "write");
	CHECK_EQ(bad_modes(cdir, &nf), 0,
		 "staged blocks 0600 in 0700 "
		 "directories (%d files)",
		 nf);
	cache_close(c);
	/* Read back: the blocks land in the disk cache and stay. */
	co.writeback = false;
	TT_MUST(cache_open(m, os, &co, &c) == 0, "cache_open");
	TT_MUST(cache_read(c, ino, 3 * BS, 0, 3 * BS, buf, &got, &eof) == 0,
		"read");
	for (int i = 0; i < 600; i++) {
		struct cache_stats st;

		cache_stats(c, &st);
		if (st.disk_blocks >= 3)
			break;
		usleep(50000);
	}
	cache_close(c);
	os_close(os);
	meta_close(m);
	CHECK_EQ(bad_modes(cdir, &nf), 0,
		 "cached blocks 0600 in 0700 "
		 "directories (%d files)",
		 nf);
	CHECK(nf >= 3, "(the 3 blocks were cached)");
	CHECK_EQ(bad_modes(store, &nf), 0,
		 "the store: objects 0600, "
		 "directories 0700 (%d files)",
		 nf);
	CHECK(nf >= 4, "(3 blocks and the marker)");
	CHECK_EQ(mode_of(cdir) & 0777, 0755,
		 "the cache dir itself is the "
		 "operator's");
	free(buf);
	free(store);
	free(cdir);
	free(m2);
	free(surl);
	umask(022);
}

int
main(void)
{
	strcpy(dir, "/tmp/start-test-XXXXXX");
	CHECK_FATAL(mkdtemp(dir) != NULL, "mkdtemp");
	murl = tl_asprintf("lmdb://%s/meta?mapsize=256M", dir);
	log_path = path_of("foreground.log");
	atexit(daemon_kill);
	CHECK_FATAL(tt_run("format '%s' 'file://%s/obj' v", murl, dir) == 0,
		    "format");

	test_cache_dirs();
	test_log_file();
	test_no_syslog();
	test_modes();

	free(tt_out);
	free(murl);
	free(log_path);
	tap_rm_rf(dir);
	return tap_done();
}
