/*
 * dump.c - `tessera dump` and `tessera load`: a volume's metadata to a
 * file or a pipe and back, checking a dump, and restoring from the
 * backups gateways write into the object store (meta.h "metadata dump
 * and load", nfsd.h "metadata backups"; the format is doc/DUMP.md's).
 *
 * A dump to FILE is written to a temporary name beside it and renamed
 * when complete: FILE is either the whole dump or untouched.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/tl.h"
#include "meta/meta.h"
#include "nfsd/nfsd.h"
#include "objstore/objstore.h"
#include "tools/tools-internal.h"

#define DUMP_ZSTD_DEFAULT 1
#define IO_CHUNK          (256u << 10)

static const char dump_usage[] =
	"Usage: tessera dump [--json] [--zstd[=LEVEL]] [--direct]\n"
	"                    [--tmpdir DIR] [--volume NAME] META_URL "
	"[FILE|-]\n"
	"       tessera dump --verify [FILE|-]\n"
	"       tessera dump --verify --from-backup STORAGE_URL --volume "
	"NAME\n"
	"                    [--backup ID]\n"
	"\n"
	"Write a consistent snapshot of the volume's metadata to FILE\n"
	"(standard output without FILE, or with -), while gateways go on\n"
	"serving it.  The snapshot is a compacted copy of the metadata\n"
	"engine made in TMPDIR and read from there, so the live engine is\n"
	"held only while the copy is made.  The dump is binary, versioned,\n"
	"with a checksum per record and one at the end (doc/DUMP.md);\n"
	"'tessera load' restores it.  Memory does not grow with the\n"
	"volume.\n"
	"\n"
	"Options:\n"
	"  --json          readable JSON instead (load reads the binary\n"
	"                  form only; the volume's handle key is not shown)\n"
	"  --zstd[=LEVEL]  compress (1 to 19, default 1); also when FILE\n"
	"                  ends in .zst\n"
	"  --direct        read the live engine in one read transaction, no\n"
	"                  copy: needs no temporary space, but LMDB cannot\n"
	"                  reuse the pages written while the dump runs\n"
	"  --tmpdir DIR    where the copy goes (default $TMPDIR or\n"
	"                  /var/tmp); it needs the engine's compacted size\n"
	"  --verify        check a dump (every checksum, the key order, the\n"
	"                  counts) without loading it\n"
	"  --from-backup STORAGE_URL\n"
	"                  with --verify: a backup in the volume's object\n"
	"                  store (the volume's full storage URL)\n"
	"  --backup ID     which backup (default: the newest complete one)\n"
	"  --volume NAME   the volume, when META_URL holds several\n"
	"  -h, --help      show this help\n";

static const char load_usage[] =
	"Usage: tessera load [--force] [--volume NAME] META_URL [FILE|-]\n"
	"       tessera load --from-backup STORAGE_URL --volume NAME "
	"[--backup ID]\n"
	"                    [--force] META_URL\n"
	"       tessera load --list --from-backup STORAGE_URL --volume "
	"NAME\n"
	"\n"
	"Restore a volume's metadata from a dump (FILE, standard input\n"
	"without FILE or with -; plain or zstd) or from a backup a gateway\n"
	"wrote into the object store, into the metadata engine at META_URL,\n"
	"key for key.  The engine must not hold the volume (other volumes\n"
	"may be there).  The dump is checked as it is read; if it turns out\n"
	"truncated or corrupt, what was written is removed again.  Records\n"
	"of the gateways that served the volume when the dump was taken are\n"
	"not loaded.\n"
	"\n"
	"Options:\n"
	"  --from-backup STORAGE_URL\n"
	"                  load a backup from the volume's object store (the\n"
	"                  volume's full storage URL, wrappers included)\n"
	"  --backup ID     which backup (default: the newest complete one)\n"
	"  --list          with --from-backup: list the backups and exit\n"
	"  --force         clear what an interrupted load left (keys of the\n"
	"                  volume without a registered volume); a volume\n"
	"                  that exists is never replaced\n"
	"  --volume NAME   the dump must be of this volume\n"
	"  -h, --help      show this help\n";

enum {
	OPT_JSON = 0x200,
	OPT_ZSTD,
	OPT_DIRECT,
	OPT_TMPDIR,
	OPT_VERIFY,
	OPT_FROM_BACKUP,
	OPT_BACKUP,
	OPT_LIST
};

struct ui {
	struct tessera_progress pr;
	const char *verb;
	uint64_t t0;
};

static void
on_progress(void *arg, const struct meta_dump_stats *s)
{
	struct ui *u = arg;
	char h[32];

	if (tessera_progress_due(&u->pr)) {
		fprintf(stderr,
			"%s: %" PRIu64 " keys (%" PRIu64 " inodes), %s "
			"  ",
			u->verb, s->keys, s->inodes,
			tl_fmt_size(s->kv_bytes, h, sizeof(h)));
		fflush(stderr);
	}
}

static void
ui_init(struct ui *u, const char *verb)
{
	tessera_progress_init(&u->pr, 2);
	u->verb = verb;
	u->t0 = tl_mono_ns();
}

static double
ui_seconds(const struct ui *u)
{
	return (double)(tl_mono_ns() - u->t0) / 1e9;
}

static void
print_counts(FILE *f, const struct meta_dump_stats *s)
{
	char h[32];

	fprintf(f,
		"%" PRIu64 " keys (%" PRIu64 " inodes, %" PRIu64
		" directories, %" PRIu64 " entries, %" PRIu64 " chunks), %s",
		s->keys, s->inodes, s->dirs, s->dentries, s->chunks,
		tl_fmt_size(s->kv_bytes, h, sizeof(h)));
}

/* ---- files and pipes ----------------------------------------------------- */

struct fd_io {
	int fd;
};

static int
fd_write(void *arg, const void *buf, size_t n)
{
	struct fd_io *io = arg;

	return tl_io_full(io->fd, (void *)buf, n, TL_IO_WRITE);
}

static int
fd_read(void *arg, void *buf, size_t cap, size_t *got)
{
	struct fd_io *io = arg;
	ssize_t r;

	do
		r = read(io->fd, buf, TL_MIN(cap, IO_CHUNK));
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	*got = (size_t)r;
	return 0;
}

static bool
is_stdio(const char *file)
{
	return file == NULL || strcmp(file, "-") == 0;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A temporary file beside path, for a rename once it is complete. */
static int
open_beside(const char *path, char **tmp)
{
	int fd;

	*tmp = tl_asprintf("%s.tmp.XXXXXX", path);
	fd = mkstemp(*tmp);
	if (fd < 0) {
		fd = -errno;
		free(*tmp);
		*tmp = NULL;
	}
	return fd;
}

/* Make path's new name durable: sync its directory. */
static int
sync_dir_of(const char *path)
{
	char *copy = tl_strdup(path);
	int rc = tl_fsync_dir_at(AT_FDCWD, dirname(copy));

	free(copy);
	return rc;
}

/* ---- tessera dump -------------------------------------------------------- */

struct dump_args {
	bool json, direct, verify;
	int zstd; /* -1: not given */
	const char *tmpdir, *volume, *from_backup, *backup;
	const char *url, *file;
};

static void
dump_summary(FILE *f, const struct dump_args *a,
	     const struct meta_dump_info *in, const struct meta_dump_stats *s,
	     double secs)
{
	char h[32];

	fprintf(f, "dumped volume %s to %s: ", in->volume,
		is_stdio(a->file) ? "standard output" : a->file);
	print_counts(f, s);
	fprintf(f, "; %s written%s in %.2f s\n",
		tl_fmt_size(s->stream_bytes, h, sizeof(h)),
		a->json    ? " as JSON"
		: in->zstd ? " (zstd)"
			   : "",
		secs);
	if (s->snapshot_bytes)
		fprintf(f,
			"read from a copy of the metadata engine (%s, "
			"removed)\n",
			tl_fmt_size(s->snapshot_bytes, h, sizeof(h)));
	else
		fprintf(f, "read from the live engine in one read "
			   "transaction\n");
}

static int
run_dump(const struct dump_args *a)
{
	struct meta_dump_opts o = {
		.json = a->json,
		.zstd_level = a->zstd > 0 ? a->zstd : 0,
		.direct = a->direct,
		.tmpdir = a->tmpdir,
		.progress = on_progress,
	};
	struct meta_dump_stats st;
	struct meta_dump_info in;
	struct fd_io io = {STDOUT_FILENO};
	struct meta *m = NULL;
	struct ui u;
	char *tmp = NULL, *err = NULL;
	int rc;

	if (!a->json && is_stdio(a->file) && isatty(STDOUT_FILENO)) {
		fprintf(stderr,
			"tessera: dump: the binary dump is not for a "
			"terminal: give FILE, redirect it, or use --json\n");
		return TESSERA_EXIT_USAGE;
	}
	if (o.zstd_level == 0 && a->zstd < 0 && !a->json && a->file &&
	    ends_with(a->file, ".zst"))
		o.zstd_level = DUMP_ZSTD_DEFAULT;
	if (tessera_open("dump", a->url, a->volume, true, &m))
		return 1;
	if (!is_stdio(a->file)) {
		io.fd = open_beside(a->file, &tmp);
		if (io.fd < 0) {
			fprintf(stderr,
				"tessera: dump: cannot create a file "
				"beside %s: %s\n",
				a->file, strerror(-io.fd));
			meta_close(m);
			return 1;
		}
	}
	ui_init(&u, "dumping");
	o.arg = &u;
	rc = meta_dump(m, &o, fd_write, &io, &in, &st, &err);
	tessera_progress_clear(&u.pr);
	if (rc == 0 && tmp != NULL) {
		if (fsync(io.fd) < 0 || rename(tmp, a->file) < 0)
			rc = -errno;
		else
			rc = sync_dir_of(a->file);
		if (rc)
			err = tl_asprintf("%s: %s", a->file, strerror(-rc));
	}
	if (tmp != NULL) {
		close(io.fd);
		if (rc)
			unlink(tmp);
	}
	if (rc)
		fprintf(stderr, "tessera: dump: %s\n",
			err ? err : strerror(-rc));
	else
		dump_summary(is_stdio(a->file) ? stderr : stdout, a, &in, &st,
			     ui_seconds(&u));
	free(err);
	free(tmp);
	meta_close(m);
	return rc ? 1 : 0;
}

/* A backup in the store, opened for reading: the store and the reader
 * the caller closes. */
static int
open_backup(const char *cmd, const char *url, const char *volume,
	    const char *id, struct os_store **os, struct nfsd_backup_reader **r)
{
	char *err = NULL;
	int rc;

	*r = NULL;
	rc = os_open_flags(url, OS_OPEN_RDONLY, os, &err);
	if (rc) {
		fprintf(stderr, "tessera: %s: cannot open storage %s: %s\n",
			cmd, url, err ? err : strerror(-rc));
		free(err);
		return rc;
	}
	rc = nfsd_backup_open(*os, volume, id, r, &err);
	if (rc) {
		fprintf(stderr, "tessera: %s: %s\n", cmd, err);
		free(err);
		os_close(*os);
		*os = NULL;
	}
	return rc;
}

/* Where verify and load read a dump: a file, standard input, or a
 * backup in the object store; what names it in messages. */
struct dump_source {
	struct fd_io io;
	struct os_store *os;
	struct nfsd_backup_reader *br;
	meta_dump_read_fn read;
	void *arg;
	char *label;
	const char *what;
};

/* Open file (NULL or "-": standard input) or, with from, the backup id
 * (NULL: the newest) of volume in the store at from; the backup is
 * named with its volume when with_volume.  Prints "tessera CMD: why"
 * and returns non-zero on failure. */
static int
source_open(struct dump_source *src, const char *cmd, const char *file,
	    const char *from, const char *volume, const char *id,
	    bool with_volume)
{
	memset(src, 0, sizeof(*src));
	src->io.fd = STDIN_FILENO;
	src->read = fd_read;
	src->arg = &src->io;
	src->what = is_stdio(file) ? "standard input" : file;
	if (from != NULL) {
		if (open_backup(cmd, from, volume, id, &src->os, &src->br))
			return 1;
		src->read = nfsd_backup_read;
		src->arg = src->br;
		src->label =
			with_volume
				? tl_asprintf("backup %s of volume %s",
					      nfsd_backup_reader_id(src->br),
					      volume)
				: tl_asprintf("backup %s",
					      nfsd_backup_reader_id(src->br));
		src->what = src->label;
	} else if (!is_stdio(file)) {
		src->io.fd = open(file, O_RDONLY | O_CLOEXEC);
		if (src->io.fd < 0) {
			fprintf(stderr, "tessera: %s: %s: %s\n", cmd, file,
				strerror(errno));
			return 1;
		}
	}
	return 0;
}

static void
source_close(struct dump_source *src)
{
	if (src->io.fd > 2)
		close(src->io.fd);
	nfsd_backup_close(src->br);
	if (src->os)
		os_close(src->os);
	free(src->label);
}

static void
print_info(const char *what, const struct meta_dump_info *in)
{
	time_t t = (time_t)(in->created_ns / 1000000000ULL);
	char when[64], u[37];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	os_uuid_format(in->uuid, u);
	printf("%s: a dump of volume %s (uuid %s), snapshot of %s, from %s "
	       "%s by tessera %s, format %u%s\n",
	       what, in->volume, u, when, in->copy ? "a copy of" : "the live",
	       in->engine, in->tessera, in->format, in->zstd ? ", zstd" : "");
}

static int
run_verify(const struct dump_args *a)
{
	struct meta_dump_opts o = {.progress = on_progress};
	struct meta_dump_stats st;
	struct meta_dump_info in;
	struct dump_source src;
	char *err = NULL;
	struct ui u;
	int rc;

	if (source_open(&src, "dump", a->file, a->from_backup, a->volume,
			a->backup, true))
		return 1;
	ui_init(&u, "verifying");
	o.arg = &u;
	rc = meta_dump_verify(src.read, src.arg, &o, &in, &st, &err);
	tessera_progress_clear(&u.pr);
	if (rc) {
		fprintf(stderr, "tessera: dump: %s: %s%s\n", src.what,
			err ? err : strerror(-rc),
			rc == -EBADMSG ? "; the dump is refused" : "");
	} else {
		print_info(src.what, &in);
		printf("verified ");
		print_counts(stdout, &st);
		printf(", %" PRIu64 " records, every checksum right, in %.2f "
		       "s\n",
		       st.records, ui_seconds(&u));
	}
	source_close(&src);
	free(err);
	return rc ? 1 : 0;
}

int
tessera_cmd_dump(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{"json", no_argument, NULL, OPT_JSON},
		{"zstd", optional_argument, NULL, OPT_ZSTD},
		{"direct", no_argument, NULL, OPT_DIRECT},
		{"tmpdir", required_argument, NULL, OPT_TMPDIR},
		{"verify", no_argument, NULL, OPT_VERIFY},
		{"from-backup", required_argument, NULL, OPT_FROM_BACKUP},
		{"backup", required_argument, NULL, OPT_BACKUP},
		TESSERA_VOLUME_OPTION,
		{NULL, 0, NULL, 0},
	};
	struct dump_args a;
	uint64_t level;
	int c, left;

	memset(&a, 0, sizeof(a));
	a.zstd = -1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(dump_usage, stdout);
			return 0;
		case OPT_JSON:
			a.json = true;
			break;
		case OPT_ZSTD:
			level = DUMP_ZSTD_DEFAULT;
			if (optarg && tl_parse_u64(optarg, 1, 19, &level) != 0)
				return tessera_usage_error(
					dump_usage,
					"--zstd=%s: a level from "
					"1 to 19",
					optarg);
			a.zstd = (int)level;
			break;
		case OPT_DIRECT:
			a.direct = true;
			break;
		case OPT_TMPDIR:
			a.tmpdir = optarg;
			break;
		case OPT_VERIFY:
			a.verify = true;
			break;
		case OPT_FROM_BACKUP:
			a.from_backup = optarg;
			break;
		case OPT_BACKUP:
			a.backup = optarg;
			break;
		case TESSERA_OPT_VOLUME:
			a.volume = optarg;
			break;
		default:
			fputs(dump_usage, stderr);
			return TESSERA_EXIT_USAGE;
		}
	}
	left = argc - optind;
	if (a.verify) {
		if (a.json || a.direct || a.zstd >= 0 || a.tmpdir)
			return tessera_usage_error(dump_usage,
						   "--verify "
						   "takes no dump options");
		if (a.from_backup != NULL && (left != 0 || a.volume == NULL))
			return tessera_usage_error(
				dump_usage,
				"--verify "
				"--from-backup needs --volume NAME and no "
				"FILE");
		if (a.from_backup == NULL && (left > 1 || a.backup))
			return tessera_usage_error(dump_usage,
						   "--verify "
						   "takes one FILE");
		a.file = left == 1 ? argv[optind] : NULL;
		return run_verify(&a);
	}
	if (a.from_backup || a.backup)
		return tessera_usage_error(dump_usage,
					   "--from-backup and "
					   "--backup go with --verify");
	if (a.json && a.zstd >= 0)
		return tessera_usage_error(dump_usage, "--json is not "
						       "compressed");
	if (left < 1 || left > 2)
		return tessera_usage_error(dump_usage, "dump needs META_URL "
						       "[FILE]");
	a.url = argv[optind];
	a.file = left == 2 ? argv[optind + 1] : NULL;
	return run_dump(&a);
}

/* ---- tessera load -------------------------------------------------------- */

static int
list_backups(const char *url, const char *volume)
{
	struct nfsd_backup_entry *v = NULL;
	struct os_store *os = NULL;
	size_t n = 0;
	char *err = NULL, h[32];
	int rc;

	rc = os_open_flags(url, OS_OPEN_RDONLY, &os, &err);
	if (rc) {
		fprintf(stderr, "tessera: load: cannot open storage %s: %s\n",
			url, err ? err : strerror(-rc));
		free(err);
		return 1;
	}
	rc = nfsd_backup_list(os, volume, &v, &n);
	if (rc)
		fprintf(stderr,
			"tessera: load: cannot list %s/%s/ in %s: "
			"%s\n",
			volume, NFSD_BACKUP_DIR, url, strerror(-rc));
	for (size_t i = 0; i < n; i++)
		printf("%s  %s  %" PRIu64 " part(s)%s\n", v[i].id,
		       tl_fmt_size(v[i].bytes, h, sizeof(h)), v[i].parts,
		       v[i].complete ? "" : "  incomplete (no index)");
	if (rc == 0 && n == 0)
		printf("no backups of volume %s in %s\n", volume, url);
	free(v);
	os_close(os);
	return rc ? 1 : 0;
}

int
tessera_cmd_load(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{"force", no_argument, NULL, TESSERA_OPT_FORCE},
		{"from-backup", required_argument, NULL, OPT_FROM_BACKUP},
		{"backup", required_argument, NULL, OPT_BACKUP},
		{"list", no_argument, NULL, OPT_LIST},
		TESSERA_VOLUME_OPTION,
		{NULL, 0, NULL, 0},
	};
	struct meta_load_opts o = {.progress = on_progress};
	const char *from = NULL, *id = NULL, *url, *file;
	struct meta_dump_stats st;
	struct meta_dump_info in;
	struct dump_source src;
	bool list = false;
	char *err = NULL;
	struct ui u;
	int c, left, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(load_usage, stdout);
			return 0;
		case TESSERA_OPT_FORCE:
			o.force = true;
			break;
		case OPT_FROM_BACKUP:
			from = optarg;
			break;
		case OPT_BACKUP:
			id = optarg;
			break;
		case OPT_LIST:
			list = true;
			break;
		case TESSERA_OPT_VOLUME:
			o.volume = optarg;
			break;
		default:
			fputs(load_usage, stderr);
			return TESSERA_EXIT_USAGE;
		}
	}
	left = argc - optind;
	if ((list || id) && from == NULL)
		return tessera_usage_error(load_usage, "--list and --backup go "
						       "with --from-backup");
	if (from != NULL && o.volume == NULL)
		return tessera_usage_error(load_usage, "--from-backup needs "
						       "--volume NAME");
	if (list)
		return left == 0 ? list_backups(from, o.volume)
				 : tessera_usage_error(load_usage,
						       "--list "
						       "takes no META_URL");
	if (left < 1 || left > (from ? 1 : 2))
		return tessera_usage_error(
			load_usage, from ? "load --from-backup needs META_URL"
					 : "load needs META_URL [FILE]");
	url = argv[optind];
	file = left == 2 ? argv[optind + 1] : NULL;
	if (source_open(&src, "load", file, from, o.volume, id, false))
		return 1;
	ui_init(&u, "loading");
	o.arg = &u;
	rc = meta_load(url, &o, src.read, src.arg, &in, &st, &err);
	tessera_progress_clear(&u.pr);
	if (rc == -EBADMSG) {
		fprintf(stderr,
			"tessera: load: %s: %s; the dump is refused "
			"and nothing was loaded\n",
			src.what, err ? err : strerror(-rc));
	} else if (rc) {
		fprintf(stderr, "tessera: load: %s\n",
			err ? err : strerror(-rc));
	} else {
		printf("loaded volume %s from %s into %s: ", in.volume,
		       src.what, url);
		st.keys -= st.sessions; /* not loaded */
		print_counts(stdout, &st);
		printf(", in %.2f s\n", ui_seconds(&u));
		if (st.sessions)
			printf("%" PRIu64 " gateway session record(s) of the "
			       "dump's time not loaded\n",
			       st.sessions);
	}
	source_close(&src);
	free(err);
	return rc ? 1 : 0;
}
