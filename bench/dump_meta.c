/*
 * dump_meta.c - `tessera dump` and `tessera load` on a volume of a million
 * files: time and peak RSS of each, beside JuiceFS's published figures
 * for its binary dump, and how much LMDB's map grows when clients write
 * during a slow dump, read from a copy (the default) or from the live
 * engine (--direct).  Prints figures; asserts nothing (bench/README).
 *
 * The volume is built in this process through meta_create and
 * meta_write_slices (no NFS), on tmpfs (--build DIR, /dev/shm: commits
 * sync nothing there), in directories of --per-dir files, each file with
 * one 4 KiB slice unless --no-data; then copied (LMDB's compacted copy)
 * to --dir on disk, where everything is measured with the real tessera
 * binary (TESSERA=path, default ./tessera), each run a child whose peak
 * RSS wait4 reports.  The page cache is warm (the machine is shared: it
 * is not dropped).
 *
 * Growth: a writer thread creates files (one durable commit each, with a
 * slice) in the volume while `tessera dump ... -` writes to a pipe that
 * this process reads at --slow MB/s, the pace of a remote or
 * rate-limited destination; data.mdb is measured before and after, for
 * no dump (the writer alone, as long), a dump from a copy, and a dump
 * with --direct.
 *
 * Usage: dump_meta [--files N] [--per-dir N] [--no-data] [--dir DIR]
 *                  [--build DIR] [--slow MB/s] [--keep] [--reuse]
 * --keep leaves DIR; --reuse measures the volume a --keep run left there
 * (grown by its growth runs) instead of building one.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/tl.h"
#include "meta/kv.h"
#include "meta/meta.h"

/* JuiceFS's published figures for its binary dump of a 1,000,000-file
 * volume on Redis (docs, "metadata dump and load", v1.3). */
#define JFS_DUMP_S 3.45
#define JFS_LOAD_S 1.32

static const struct meta_cred root = {.uid = 0};
static uint64_t nfiles = 1000000, per_dir = 10000;
static bool with_data = true, keep, reuse;
static const char *dir = "/var/tmp/tessera-dump-bench";
static const char *build = "/dev/shm/tessera-dump-bench";
static const char *tessera = "./tessera";
static double slow_mbs = 16;

static double
secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

static void
die(const char *what, int rc, const char *err)
{
	fprintf(stderr, "dump_meta: %s: %s\n", what, err ? err : strerror(-rc));
	exit(1);
}

/* ---- building the volume ------------------------------------------------- */

struct builder {
	struct meta *m;
	uint64_t from, to; /* files [from, to) */
	atomic_uint_fast64_t *done;
};

static int
new_file(struct meta *m, uint64_t dir_ino, const char *name)
{
	struct meta_new n;
	struct meta_slice_write w;
	uint64_t ino, id;
	int rc;

	memset(&n, 0, sizeof(n));
	n.type = META_REG;
	n.mode = 0644;
	n.how = META_GUARDED;
	rc = meta_create(m, &root, dir_ino, name, &n, &ino, NULL, NULL, NULL,
			 NULL);
	if (rc || !with_data)
		return rc;
	rc = meta_new_slice_id(m, &id);
	if (rc)
		return rc;
	memset(&w, 0, sizeof(w));
	w.s.id = id;
	w.s.size = w.s.len = 4096;
	return meta_write_slices(m, ino, &w, 1, tl_now_ns(), NULL, NULL);
}

static uint64_t
dir_of(struct meta *m, uint64_t i)
{
	char name[32];
	uint64_t ino;
	struct meta_new n;
	int rc;

	snprintf(name, sizeof(name), "d%05llu",
		 (unsigned long long)(i / per_dir));
	rc = meta_lookup(m, &root, META_ROOT_INO, name, &ino, NULL);
	if (rc == -ENOENT) {
		memset(&n, 0, sizeof(n));
		n.type = META_DIR;
		n.mode = 0755;
		n.how = META_GUARDED;
		rc = meta_create(m, &root, META_ROOT_INO, name, &n, &ino, NULL,
				 NULL, NULL, NULL);
		if (rc == -EEXIST)
			rc = meta_lookup(m, &root, META_ROOT_INO, name, &ino,
					 NULL);
	}
	if (rc)
		die("directory", rc, NULL);
	return ino;
}

static void *
builder_main(void *arg)
{
	struct builder *b = arg;
	uint64_t d = 0, dino = 0;
	char name[32];

	for (uint64_t i = b->from; i < b->to; i++) {
		int rc;

		if (dino == 0 || i / per_dir != d) {
			d = i / per_dir;
			dino = dir_of(b->m, i);
		}
		snprintf(name, sizeof(name), "f%08llu", (unsigned long long)i);
		rc = new_file(b->m, dino, name);
		if (rc)
			die("create", rc, NULL);
		atomic_fetch_add(b->done, 1);
	}
	return NULL;
}

static void
build_volume(const char *url)
{
	struct meta_format_opts fo = {
		"bench", "file:///var/tmp/unused", 0, 0, 0, 0, true};
	atomic_uint_fast64_t done = 0;
	struct builder b[2];
	pthread_t th[2];
	struct meta *m;
	char *err = NULL;
	uint64_t t0 = tl_mono_ns(), last = 0;
	int rc;

	rc = meta_format(url, &fo, &err);
	if (rc)
		die("format", rc, err);
	rc = meta_open(url, "bench", &m, &err);
	if (rc)
		die("open", rc, err);
	for (int i = 0; i < 2; i++) {
		/* halves on directory boundaries */
		uint64_t half = (nfiles / per_dir + 1) / 2 * per_dir;

		b[i].m = m;
		b[i].from = i ? TL_MIN(half, nfiles) : 0;
		b[i].to = i ? nfiles : TL_MIN(half, nfiles);
		b[i].done = &done;
		pthread_create(&th[i], NULL, builder_main, &b[i]);
	}
	while (atomic_load(&done) < nfiles) {
		sleep(1);
		if (tl_mono_ns() - last > 10000000000ULL) {
			last = tl_mono_ns();
			printf("# building: %llu of %llu files, %.0f s\n",
			       (unsigned long long)atomic_load(&done),
			       (unsigned long long)nfiles, secs(last - t0));
			fflush(stdout);
		}
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	meta_close(m);
	printf("# built %llu files in %.1f s\n", (unsigned long long)nfiles,
	       secs(tl_mono_ns() - t0));
}

/* LMDB's compacted copy of the built volume, on disk. */
static void
copy_to_disk(const char *from_url, const char *to_dir)
{
	struct meta_kv *kv;
	char *err = NULL, *path;
	int fd, rc;

	rc = meta_kv_open(from_url, &kv, &err);
	if (rc)
		die("open the build", rc, err);
	mkdir(to_dir, 0700);
	path = tl_asprintf("%s/data.mdb", to_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		die(path, -errno, NULL);
	rc = meta_kv_copyfd(kv, fd);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	meta_kv_close(kv);
	if (rc)
		die("copy", rc, NULL);
	free(path);
}

/* ---- running tessera ------------------------------------------------------- */

struct run {
	double s;   /* wall clock */
	double cpu; /* user + system */
	long rss_kib;
	int status;
};

/* Run tessera with args (split on spaces), stdout to /dev/null, or with
 * slow to a pipe this process reads at slow_mbs. */
static struct run
run_tessera(const char *args, bool slow)
{
	char *copy = tl_strdup(args), *save = NULL, *argv[16];
	int argc = 0, p[2] = {-1, -1};
	struct rusage ru;
	struct run r = {0, 0, 0, -1};
	uint64_t t0 = tl_mono_ns();
	pid_t pid;

	argv[argc++] = (char *)tessera;
	for (char *w = strtok_r(copy, " ", &save); w && argc < 15;
	     w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	argv[argc] = NULL;
	if (slow && pipe(p) < 0)
		die("pipe", -errno, NULL);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(slow ? p[1] : null, 1);
		if (slow) {
			close(p[0]);
			close(p[1]);
		}
		execv(tessera, argv);
		_exit(127);
	}
	if (slow) {
		static char buf[1 << 16];
		uint64_t got = 0, start = tl_mono_ns();
		ssize_t n;

		close(p[1]);
		while ((n = read(p[0], buf, sizeof(buf))) > 0) {
			double due;

			got += (uint64_t)n;
			due = (double)got / (slow_mbs * 1e6);
			while (secs(tl_mono_ns() - start) < due)
				usleep(2000);
		}
		close(p[0]);
	}
	wait4(pid, &r.status, 0, &ru);
	r.s = secs(tl_mono_ns() - t0);
	r.rss_kib = ru.ru_maxrss;
	r.cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		(double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	free(copy);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
		fprintf(stderr, "dump_meta: tessera %s: status 0x%x\n", args,
			r.status);
	return r;
}

static uint64_t
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void
print_run(const char *what, struct run r, uint64_t bytes)
{
	char h[32];

	printf("R dump_meta %-22s %7.2f s  cpu %6.2f s  peak RSS %6.1f MiB",
	       what, r.s, r.cpu, (double)r.rss_kib / 1024);
	if (bytes)
		printf("  %s", tl_fmt_size(bytes, h, sizeof(h)));
	printf("\n");
	fflush(stdout);
}

/* ---- map growth under write load -------------------------------------------- */

struct writer {
	struct meta *m;
	uint64_t dir;
	atomic_bool stop;
	uint64_t files;
};

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	char name[32];

	while (!atomic_load(&w->stop)) {
		snprintf(name, sizeof(name), "g%08llu",
			 (unsigned long long)w->files);
		if (new_file(w->m, w->dir, name) != 0)
			break;
		w->files++;
	}
	return NULL;
}

/* The writer alone for secs_alone (args NULL), or during `tessera
 * args`: data.mdb's growth and the files written. */
static double
growth(const char *label, const char *url, const char *data, const char *args,
       double secs_alone)
{
	struct writer w;
	struct meta_new n;
	struct run r = {0, 0, 0, 0};
	pthread_t th;
	uint64_t before, after;
	char *err = NULL, dname[32], h[32];
	int rc;

	memset(&w, 0, sizeof(w));
	rc = meta_open(url, "bench", &w.m, &err);
	if (rc)
		die("open", rc, err);
	memset(&n, 0, sizeof(n));
	n.type = META_DIR;
	n.mode = 0755;
	snprintf(dname, sizeof(dname), "growth-%s", label);
	rc = meta_create(w.m, &root, META_ROOT_INO, dname, &n, &w.dir, NULL,
			 NULL, NULL, NULL);
	if (rc)
		die("mkdir", rc, NULL);
	before = file_size(data);
	pthread_create(&th, NULL, writer_main, &w);
	if (args)
		r = run_tessera(args, true);
	else
		usleep((useconds_t)(secs_alone * 1e6));
	atomic_store(&w.stop, true);
	pthread_join(th, NULL);
	after = file_size(data);
	meta_close(w.m);
	printf("R dump_meta growth-%-15s %7.2f s  %7llu files written  "
	       "data.mdb +%s\n",
	       label, args ? r.s : secs_alone, (unsigned long long)w.files,
	       tl_fmt_size(after > before ? after - before : 0, h, sizeof(h)));
	fflush(stdout);
	return args ? r.s : secs_alone;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"files", required_argument, NULL, 'n'},
		{"per-dir", required_argument, NULL, 'p'},
		{"no-data", no_argument, NULL, 'D'},
		{"dir", required_argument, NULL, 'd'},
		{"build", required_argument, NULL, 'b'},
		{"slow", required_argument, NULL, 's'},
		{"keep", no_argument, NULL, 'k'},
		{"reuse", no_argument, NULL, 'r'},
		{NULL, 0, NULL, 0},
	};
	char *burl, *mdir, *url, *lurl, *dump, *zdump, *cmd, *data, h[32];
	struct run r;
	double direct_s;
	int c;

	if (getenv("TESSERA"))
		tessera = getenv("TESSERA");
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'n':
			nfiles = strtoull(optarg, NULL, 10);
			break;
		case 'p':
			per_dir = strtoull(optarg, NULL, 10);
			break;
		case 'D':
			with_data = false;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'b':
			build = optarg;
			break;
		case 's':
			slow_mbs = strtod(optarg, NULL);
			break;
		case 'k':
			keep = true;
			break;
		case 'r':
			reuse = keep = true;
			break;
		default:
			fprintf(stderr, "usage: see bench/dump_meta.c\n");
			return 2;
		}
	}
	if (per_dir == 0 || nfiles == 0 || slow_mbs <= 0 ||
	    access(tessera, X_OK) != 0) {
		fprintf(stderr, "dump_meta: bad options, or no %s (TESSERA=)\n",
			tessera);
		return 2;
	}
	tl_log_init(TL_LOG_WARN, false, "dump_meta");
	cmd = reuse ? tl_asprintf("rm -rf '%s/loaded' '%s/loaded2'", dir, dir)
		    : tl_asprintf("rm -rf '%s' '%s' && mkdir -p '%s' '%s'", dir,
				  build, dir, build);
	if (system(cmd) != 0)
		die("prepare", -EIO, cmd);
	free(cmd);
	burl = tl_asprintf("lmdb://%s/meta", build);
	mdir = tl_asprintf("%s/meta", dir);
	url = tl_asprintf("lmdb://%s", mdir);
	lurl = tl_asprintf("lmdb://%s/loaded", dir);
	dump = tl_asprintf("%s/dump.bin", dir);
	zdump = tl_asprintf("%s/dump.zst", dir);
	data = tl_asprintf("%s/data.mdb", mdir);
	printf("# %llu files in directories of %llu, %s; tessera %s; "
	       "measured in %s\n",
	       (unsigned long long)nfiles, (unsigned long long)per_dir,
	       with_data ? "one 4 KiB slice each" : "empty", tessera, dir);
	if (!reuse) {
		build_volume(burl);
		copy_to_disk(burl, mdir);
		cmd = tl_asprintf("rm -rf '%s'", build);
		if (system(cmd) != 0)
			fprintf(stderr, "dump_meta: cannot remove %s\n", build);
		free(cmd);
	}
	printf("# the volume's LMDB on disk (compacted): %s\n",
	       tl_fmt_size(file_size(data), h, sizeof(h)));

	cmd = tl_asprintf("dump --tmpdir %s %s %s", dir, url, dump);
	r = run_tessera(cmd, false);
	print_run("dump", r, file_size(dump));
	printf("R dump_meta dump-vs-juicefs        %.2f (JuiceFS binary dump, "
	       "Redis, 1M files: %.2f s; ratio Tessera/JuiceFS)\n",
	       r.s / JFS_DUMP_S * (1e6 / (double)nfiles), JFS_DUMP_S);
	free(cmd);
	cmd = tl_asprintf("dump --direct %s %s", url, dump);
	r = run_tessera(cmd, false);
	direct_s = r.s;
	print_run("dump --direct", r, file_size(dump));
	free(cmd);
	cmd = tl_asprintf("dump --zstd --tmpdir %s %s %s", dir, url, zdump);
	print_run("dump --zstd", run_tessera(cmd, false), file_size(zdump));
	free(cmd);
	cmd = tl_asprintf("dump --verify %s", dump);
	print_run("dump --verify", run_tessera(cmd, false), 0);
	free(cmd);
	cmd = tl_asprintf("load %s %s", lurl, dump);
	r = run_tessera(cmd, false);
	print_run("load", r, 0);
	printf("R dump_meta load-vs-juicefs        %.2f (JuiceFS binary load, "
	       "Redis, 1M files: %.2f s; ratio Tessera/JuiceFS)\n",
	       r.s / JFS_LOAD_S * (1e6 / (double)nfiles), JFS_LOAD_S);
	free(cmd);
	cmd = tl_asprintf("load lmdb://%s/loaded2 %s", dir, zdump);
	print_run("load (zstd)", run_tessera(cmd, false), 0);
	free(cmd);
	printf("# (ratios scaled to 1M files when --files differs; the dump "
	       "from a copy includes making the copy: --direct took %.2f s)\n",
	       direct_s);

	printf("# map growth while a client creates files (a durable commit "
	       "each) during a dump read at %.0f MB/s\n",
	       slow_mbs);
	cmd = tl_asprintf("dump --tmpdir %s %s -", dir, url);
	growth("copy", url, data, cmd, 0);
	free(cmd);
	cmd = tl_asprintf("dump --direct %s -", url);
	direct_s = growth("direct", url, data, cmd, 0);
	free(cmd);
	growth("none", url, data, NULL, direct_s);
	if (!keep) {
		cmd = tl_asprintf("rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "dump_meta: cannot remove %s\n", dir);
		free(cmd);
	}
	free(burl);
	free(mdir);
	free(url);
	free(lurl);
	free(dump);
	free(zdump);
	free(data);
	return 0;
}
