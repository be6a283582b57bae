/*
 * volume.c - the life of a volume: `tessera format`, `status` and
 * `config`.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "lib/tl.h"
#include "meta/meta.h"
#include "objstore/objstore.h"
#include "tools/tools-internal.h"

static const char format_usage[] =
	"Usage: tessera format META_URL STORAGE_URL NAME [OPTIONS]\n"
	"\n"
	"Create volume NAME with its metadata at META_URL (lmdb:///dir) and\n"
	"its data in STORAGE_URL (file:///dir, s3://BUCKET?endpoint=...;\n"
	"see STORAGE URLS in tessera(1)).  The store must hold nothing of a\n"
	"volume named NAME (its objects are NAME/...); format writes the\n"
	"marker NAME/tessera.volume there, naming the new volume.\n"
	"\n"
	"Options:\n"
	"  --block-size SIZE  object block size, a power of two from 64K to\n"
	"                     16M (default 4M)\n"
	"  --trash-days N     days removed files stay in the trash\n"
	"                     (default 1)\n"
	"  --capacity BYTES   volume capacity, K/M/G/T suffixes (default\n"
	"                     unlimited)\n"
	"  --inodes N         maximum number of inodes (default unlimited)\n"
	"  --force            replace a volume of that name in META_URL:\n"
	"                     destroy it first (objects and metadata, as\n"
	"                     'tessera destroy'; never beside a gateway)\n"
	"  --compress zstd    compress each block with zstd\n"
	"  --encrypt-key-file FILE\n"
	"                     encrypt each block (AES-256-GCM) under the\n"
	"                     32-byte volume key in FILE; the daemon reads\n"
	"                     FILE at start, so keep it (and a backup)\n"
	"  -h, --help         show this help\n";

static const char status_usage[] =
	"Usage: tessera status [--cache-dir DIRS] [--volume NAME] META_URL\n"
	"\n"
	"Show the settings and usage of the volume at META_URL, and the\n"
	"gateways serving it (live or stale sessions).  Reads only:\n"
	"creates and changes nothing.\n"
	"\n"
	"Options:\n"
	"  --volume NAME     the volume, when META_URL holds several\n"
	"  --cache-dir DIRS  also show the writeback staging of these\n"
	"                    cache directories (cache_dirs, ':' separated):\n"
	"                    staged blocks, bytes, oldest age\n"
	"  -h, --help        show this help\n";

static bool
name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > META_VOLNAME_MAX)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789_-") == n;
}

/* Open the object store and check it takes a write and a delete. */
static int
storage_check(const char *url, const char *name, struct os_store **out)
{
	struct os_store *s = NULL;
	char *err = NULL, *key;
	int rc;

	*out = NULL;
	rc = os_open(url, &s, &err);
	if (rc) {
		fprintf(stderr, "tessera: cannot open storage %s: %s\n", url,
			err ? err : strerror(-rc));
		free(err);
		return rc;
	}
	key = tl_asprintf("%s/.probe-%016" PRIx64, name, tl_random_u64());
	rc = os_put(s, key, "tessera", 7);
	if (rc == 0)
		rc = os_delete(s, key);
	if (rc)
		fprintf(stderr, "tessera: storage %s is not writable: %s%s\n",
			url, strerror(-rc),
			rc == -EACCES ? " (the store refused the credentials; "
					"see the message above)"
				      : "");
	free(key);
	if (rc)
		os_close(s);
	else
		*out = s;
	return rc;
}

/* The store must hold nothing of a volume of this name: no marker (of
 * another volume, or of one this metadata lost), no object. */
static int
storage_free(struct os_store *s, const char *url, const char *name)
{
	struct os_marker mk;
	char uuid[37], *first = NULL;
	int rc;

	rc = os_marker_read(s, name, &mk);
	if (rc == 0) {
		os_uuid_format(mk.uuid, uuid);
		fprintf(stderr,
			"tessera: format: storage %s already holds "
			"volume \"%s\" (uuid %s, formatted %s with metadata "
			"%s).  Two volumes of one name in one store overwrite "
			"each other's data: use another store or prefix, or "
			"another name, or remove that volume first (tessera "
			"destroy with its metadata URL)\n",
			url, mk.name, uuid, mk.created,
			mk.meta[0] ? mk.meta : "?");
		return -EEXIST;
	}
	if (rc == -EBADMSG) {
		fprintf(stderr,
			"tessera: format: storage %s: %s/" OS_MARKER_FILE
			" exists but is not a volume marker\n",
			url, name);
		return rc;
	}
	if (rc == -ENOENT)
		rc = os_volume_objects(s, name, &first);
	if (rc == 1) {
		fprintf(stderr,
			"tessera: format: storage %s already holds "
			"objects of a volume named \"%s\" (%s, no volume "
			"marker: formatted before markers existed?).  Use "
			"another store or prefix, or another name, or remove "
			"that volume first (tessera destroy with its metadata "
			"URL)\n",
			url, name, first);
		free(first);
		return -EEXIST;
	}
	if (rc < 0)
		fprintf(stderr, "tessera: format: storage %s: %s\n", url,
			strerror(-rc));
	return rc;
}

/* --force: a volume of this name in the metadata is destroyed first,
 * as `tessera destroy --yes` would (never beside a gateway). */
static int
replace_volume(const char *meta_url, const char *name)
{
	struct meta *m = NULL;
	char *err = NULL;
	int rc;

	rc = meta_open(meta_url, name, &m, &err);
	if (rc && rc != -ENOENT)
		fprintf(stderr, "tessera: format: %s\n",
			err ? err : strerror(-rc));
	free(err);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	rc = tessera_no_gateway("format", m, false);
	if (rc == 0) {
		printf("replacing volume %s: destroying it first\n", name);
		rc = tessera_destroy_volume(m, false, 8);
	}
	meta_close(m);
	return rc;
}

/* The new volume's marker in its store. */
static int
mark_store(const char *meta_url, const char *name, struct os_store *s)
{
	struct meta *m = NULL;
	int rc;

	rc = tessera_open("format", meta_url, name, false, &m);
	if (rc)
		return rc;
	rc = cache_store_mark(m, s, meta_url);
	if (rc)
		fprintf(stderr,
			"tessera: format: cannot write the volume "
			"marker in %s: %s (tesserad writes it when it "
			"starts)\n",
			s->url, strerror(-rc));
	meta_close(m);
	return rc;
}

/* The stored storage URL: the wrappers chosen by the options around the
 * given URL, compression outside encryption (encrypted data does not
 * compress).  The key file is checked now and recorded by absolute path,
 * so tesserad finds it whatever its working directory. */
static int
storage_url(const char *url, bool zstd, const char *keyfile, char **out)
{
	uint8_t key[OS_CRYPT_KEY_LEN];
	char *err = NULL, *abs = NULL;
	int rc;

	*out = NULL;
	if (keyfile != NULL) {
		rc = os_crypt_load_key(keyfile, key, &err);
		memset(key, 0, sizeof(key));
		abs = realpath(keyfile, NULL);
		if (rc || abs == NULL || strpbrk(abs, "(),") != NULL) {
			fprintf(stderr, "tessera: %s\n",
				err ? err
				    : "the key file path may not "
				      "contain '(', ')' or ','");
			free(err);
			free(abs);
			return -EINVAL;
		}
	}
	*out = tl_asprintf("%s%s%s%s%s", zstd ? "zstd:" : "",
			   abs ? "crypt(key_file=" : "", abs ? abs : "",
			   abs ? "):" : "", url);
	free(abs);
	return 0;
}

int
tessera_cmd_format(int argc, char **argv)
{
	static const struct option opts[] = {
		{"block-size", required_argument, NULL, 'b'},
		{"trash-days", required_argument, NULL, 't'},
		{"capacity", required_argument, NULL, 'c'},
		{"inodes", required_argument, NULL, 'i'},
		{"force", no_argument, NULL, 'f'},
		{"compress", required_argument, NULL, 'z'},
		{"encrypt-key-file", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct meta_format_opts o = {NULL, NULL, 4U << 20, 0, 0, 0, false};
	const char *keyfile = NULL;
	struct os_store *s = NULL;
	bool zstd = false, founding = false;
	char *err = NULL, *storage = NULL, *url = NULL;
	uint64_t v;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (tl_parse_size(optarg, &v) || v < (64 << 10) ||
			    v > (16 << 20) || (v & (v - 1)))
				return tessera_usage_error(
					format_usage,
					"bad --block-size '%s': a "
					"power of two from 64K to "
					"16M",
					optarg);
			o.block_size = (uint32_t)v;
			break;
		case 't':
			if (tl_parse_u64(optarg, 0, 36500, &v))
				return tessera_usage_error(
					format_usage, "bad --trash-days '%s'",
					optarg);
			o.trash_days = (uint32_t)v;
			break;
		case 'c':
			if (tl_parse_size(optarg, &o.capacity))
				return tessera_usage_error(
					format_usage, "bad --capacity '%s'",
					optarg);
			break;
		case 'i':
			if (tl_parse_u64(optarg, 0, UINT64_MAX, &o.max_inodes))
				return tessera_usage_error(format_usage,
							   "bad --inodes '%s'",
							   optarg);
			break;
		case 'f':
			o.force = true;
			break;
		case 'z':
			if (strcmp(optarg, "zstd") != 0)
				return tessera_usage_error(
					format_usage,
					"bad --compress '%s': only "
					"zstd",
					optarg);
			zstd = true;
			break;
		case 'k':
			keyfile = optarg;
			break;
		case 'h':
			fputs(format_usage, stdout);
			return 0;
		default:
			fputs(format_usage, stderr);
			return TESSERA_EXIT_USAGE;
		}
	}
	if (argc - optind != 3)
		return tessera_usage_error(format_usage,
					   "format needs META_URL, "
					   "STORAGE_URL and NAME");
	o.name = argv[optind + 2];
	if (!name_ok(o.name))
		return tessera_usage_error(format_usage,
					   "bad volume name '%s': 1 to "
					   "63 of A-Z a-z 0-9 _ -",
					   o.name);
	/* raft://: the node of tessera.conf; an empty raft_dir founds a
	 * group of this one node (the node runs in this command) */
	url = tessera_format_url(argv[optind], &founding);
	if (url == NULL)
		return 1;
	rc = storage_url(argv[optind + 1], zstd, keyfile, &storage);
	if (rc) {
		free(url);
		return 1;
	}
	o.storage = storage;
	rc = storage_check(o.storage, o.name, &s);
	if (rc == 0 && o.force && !founding)
		rc = replace_volume(url, o.name);
	if (rc == 0)
		rc = storage_free(s, o.storage, o.name);
	if (rc == 0 && founding)
		printf("founding a raft group of this one node (grow it with "
		       "tessera raft add)\n");
	if (rc == 0) {
		rc = meta_format(url, &o, &err);
		if (rc)
			fprintf(stderr, "tessera: format: %s\n",
				err ? err : strerror(-rc));
		free(err);
	}
	if (rc == 0)
		rc = mark_store(url, o.name, s);
	if (rc == 0)
		printf("formatted volume %s (metadata %s, storage %s)\n",
		       o.name, argv[optind], o.storage);
	if (s)
		os_close(s);
	free(storage);
	free(url);
	return rc ? 1 : 0;
}

static void
print_uuid(const uint8_t u[16])
{
	for (int i = 0; i < 16; i++)
		printf("%02x%s", u[i],
		       i == 3 || i == 5 || i == 7 || i == 9 ? "-" : "");
}

static void
print_limit(const char *what, uint64_t v, bool bytes)
{
	char h[32];

	if (v == 0)
		printf("%-14s unlimited\n", what);
	else if (bytes)
		printf("%-14s %" PRIu64 " (%s)\n", what, v,
		       tl_fmt_size(v, h, sizeof(h)));
	else
		printf("%-14s %" PRIu64 "\n", what, v);
}

/* The background jobs' backlog (meta_backlog). */
static void
print_backlog(const struct meta_backlog *b)
{
	uint64_t now = tl_now_ns();
	char h1[32], h2[32];

	printf("%-15s %" PRIu64 " (%" PRIu64 " files, %s; %" PRIu64
	       " slices, %s)\n",
	       "pending delete:", b->items, b->files,
	       tl_fmt_size(b->file_bytes, h1, sizeof(h1)), b->slices,
	       tl_fmt_size(b->slice_bytes, h2, sizeof(h2)));
	printf("%-15s %" PRIu64 " slices, %s", "in grace:", b->grace,
	       tl_fmt_size(b->grace_bytes, h1, sizeof(h1)));
	if (b->grace > 0)
		printf(", oldest dropped %" PRIu64 " s ago",
		       now > b->grace_oldest_ns ? (now - b->grace_oldest_ns) /
							  UINT64_C(1000000000)
						: 0);
	printf(" (released %" PRIu64 " s after compaction dropped them)\n",
	       b->grace_ns / UINT64_C(1000000000));
	printf("%-15s %" PRIu64 " files, %s\n", "trash:", b->trash_files,
	       tl_fmt_size(b->trash_bytes, h1, sizeof(h1)));
}

static void
print_status(const struct meta_settings *s, const struct meta_usage *u)
{
	time_t t = (time_t)(s->ctime_ns / 1000000000ULL);
	char h[32], when[64];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	printf("%-14s %s\n", "name:", s->name);
	printf("%-14s ", "uuid:");
	print_uuid(s->uuid);
	printf("\n%-14s %s\n", "storage:", s->storage);
	printf("%-14s %" PRIu32 " (%s)\n", "block size:", s->block_size,
	       tl_fmt_size(s->block_size, h, sizeof(h)));
	printf("%-14s %" PRIu32 "\n", "trash days:", s->trash_days);
	print_limit("capacity:", s->capacity, true);
	print_limit("inode limit:", s->max_inodes, false);
	printf("%-14s %s\n", "created:", when);
	printf("%-14s %" PRIu64 " (%s)\n", "used bytes:", u->used_bytes,
	       tl_fmt_size(u->used_bytes, h, sizeof(h)));
	printf("%-14s %" PRIu64 "\n", "used inodes:", u->used_inodes);
	/* exact figures for billing (meta.h, struct meta_usage) */
	printf("%-14s %" PRIu64 " (%s; files outside the trash)\n",
	       "logical bytes:", u->logical_bytes,
	       tl_fmt_size(u->logical_bytes, h, sizeof(h)));
	printf("%-14s %" PRIu64 " (%s; slices in the object store)\n",
	       "stored bytes:", u->stored_bytes,
	       tl_fmt_size(u->stored_bytes, h, sizeof(h)));
	printf("%-14s %" PRIu64 " (%s; files in the trash)\n",
	       "trash bytes:", u->trash_bytes,
	       tl_fmt_size(u->trash_bytes, h, sizeof(h)));
	printf("%-14s %" PRIu64 " (%s; waiting for the deletion job)\n",
	       "pending bytes:", u->pending_bytes,
	       tl_fmt_size(u->pending_bytes, h, sizeof(h)));
}

struct gw_list {
	uint64_t now;
	unsigned live, stale;
	struct meta_lease lease; /* holder 0: none */
	struct meta_session holder;
	bool found, holder_live;
};

static int
gw_list_cb(void *arg, const struct meta_session *s)
{
	struct gw_list *g = arg;
	bool holds = g->lease.holder != 0 && s->id == g->lease.holder;
	char d[512];

	tessera_session_describe(s, g->now, d, sizeof(d));
	printf("  %s%s\n", d, holds ? " [bgjob lease]" : "");
	if (holds) {
		g->found = true;
		g->holder = *s;
		g->holder_live = meta_session_live(s, g->now);
	}
	if (meta_session_live(s, g->now))
		g->live++;
	else
		g->stale++;
	return 0;
}

/* Who runs the background jobs (meta.h, the background-job lease). */
static void
print_lease(const struct gw_list *g)
{
	time_t t = (time_t)(g->lease.since_ns / 1000000000ULL);
	char when[64];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	if (g->lease.holder == 0)
		printf("bgjob lease:   none (no gateway runs the background "
		       "jobs: is every gateway started with --no-bgjob?)\n");
	else if (!g->found)
		printf("bgjob lease:   gateway session %016" PRIx64 ", gone: "
		       "another gateway takes the jobs over\n",
		       g->lease.holder);
	else
		printf("bgjob lease:   %s %s, pid %u, since %s%s\n",
		       g->holder.host, g->holder.addr, g->holder.pid, when,
		       g->holder_live ? ""
				      : " (stale: another gateway takes "
					"the jobs over)");
	if (g->found)
		printf("%-14s %" PRIu32 " chunks queued on the lease holder "
		       "(at its last heartbeat)\n",
		       "compaction:", g->holder.compact_queued);
	else
		printf("%-14s no queue (no gateway holds the lease)\n",
		       "compaction:");
}

/* The gateway sessions recorded in the volume (meta.h), and the holder
 * of the background-job lease. */
static int
print_gateways(struct meta *m)
{
	struct gw_list g;
	int rc;

	memset(&g, 0, sizeof(g));
	g.now = tl_now_ns();
	rc = meta_lease_get(m, &g.lease);
	if (rc == -ENOENT)
		rc = 0;
	printf("gateways:\n");
	if (rc == 0)
		rc = meta_session_list(m, gw_list_cb, &g);
	if (rc == 0 && g.live + g.stale == 0)
		printf("  none\n");
	if (rc == 0)
		print_lease(&g);
	return rc;
}

/* The stall alarm (meta.h, meta_bgjob_stall). */
static int
print_stall(struct meta *m)
{
	struct meta_stall st;
	uint64_t age, flat;
	int rc = meta_bgjob_stall(m, &st);

	if (rc)
		return rc;
	if (!st.sampled) {
		printf("%-14s none (no gateway has sampled the backlog "
		       "yet)\n",
		       "bgjob alarm:");
		return 0;
	}
	age = st.now_ns > st.w.sample_ns
		      ? (st.now_ns - st.w.sample_ns) / 1000000000
		      : 0;
	flat = st.flat_ns / 1000000000;
	if (st.reason == META_STALL_NONE)
		printf("%-14s none (backlog %" PRIu64
		       " items%s, sampled %" PRIu64 " s ago)\n",
		       "bgjob alarm:", st.w.backlog,
		       st.w.backlog == 0                    ? ""
		       : st.w.progress_ns == st.w.sample_ns ? ", shrinking"
							    : ", not shrinking",
		       age);
	else
		printf("%-14s STALLED: %s; the backlog of %" PRIu64 " items "
		       "has not shrunk for %" PRIu64 " s (sampled %" PRIu64
		       " s ago)\n",
		       "bgjob alarm:",
		       st.reason == META_STALL_NO_HOLDER
			       ? "no gateway holds the background-job lease "
				 "(all run with --no-bgjob, or none runs)"
			       : "the lease holder makes no progress (failing "
				 "deletes? its log says)",
		       st.w.backlog, flat, age);
	return 0;
}

/* The volume's newest metadata backup, from its record (meta.h). */
static int
print_backup(struct meta *m)
{
	struct meta_backup b;
	uint64_t now = tl_now_ns();
	time_t t;
	struct tm tm;
	char when[64], h[32];
	int rc = meta_backup_get(m, &b);

	if (rc == -ENOENT || (rc == 0 && b.snap_ns == 0)) {
		printf("%-14s none (tesserad writes one every "
		       "backup_interval)\n",
		       "last backup:");
		return 0;
	}
	if (rc)
		return rc;
	t = (time_t)(b.snap_ns / 1000000000ULL);
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	printf("%-14s %s (%" PRIu64 " s ago), %s, %" PRIu64 " keys, in the "
	       "store as %s/meta-backup/%s/\n",
	       "last backup:", when,
	       now > b.snap_ns ? (now - b.snap_ns) / 1000000000 : 0,
	       tl_fmt_size(b.bytes, h, sizeof(h)), b.keys,
	       meta_settings(m)->name, b.id);
	if (b.claim_session != 0)
		printf("%-14s being written by gateway session %016" PRIx64
		       " since %" PRIu64 " s\n",
		       "next backup:", b.claim_session,
		       now > b.claim_ns ? (now - b.claim_ns) / 1000000000 : 0);
	return 0;
}

/* Read from the staging directories themselves: works whether or not
 * tesserad runs (and however it died). */
static void
print_staging(const char *dirs)
{
	struct cache_stats s;
	char b[32];

	cache_staging_scan(dirs, 0, &s);
	printf("staged:        %llu blocks, %s, oldest %llu s",
	       (unsigned long long)s.staged_blocks,
	       tl_fmt_size(s.staged_bytes, b, sizeof(b)),
	       (unsigned long long)s.staged_oldest_s);
	if (s.staged_overdue > 0)
		printf(" (%llu older than 1h: uploads are failing?)",
		       (unsigned long long)s.staged_overdue);
	printf("\n");
}

int
tessera_cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{"cache-dir", required_argument, NULL, 'C'},
		TESSERA_VOLUME_OPTION,
		{NULL, 0, NULL, 0},
	};
	struct meta_usage u;
	struct meta_backlog bl;
	struct meta *m = NULL;
	const char *cdirs = NULL, *volume = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(status_usage, stdout);
			return 0;
		}
		if (c == 'C') {
			cdirs = optarg;
			continue;
		}
		if (c == TESSERA_OPT_VOLUME) {
			volume = optarg;
			continue;
		}
		fputs(status_usage, stderr);
		return TESSERA_EXIT_USAGE;
	}
	if (argc - optind != 1)
		return tessera_usage_error(status_usage,
					   "status needs META_URL");
	if (tessera_open("status", argv[optind], volume, true, &m))
		return 1;
	rc = meta_usage(m, &u);
	if (rc == 0)
		print_status(meta_settings(m), &u);
	if (rc == 0)
		rc = meta_backlog(m, &bl);
	if (rc == 0)
		print_backlog(&bl);
	if (rc == 0)
		rc = print_backup(m);
	if (rc == 0)
		rc = print_gateways(m);
	if (rc == 0)
		rc = print_stall(m);
	if (rc == 0 && cdirs != NULL)
		print_staging(cdirs);
	if (rc != 0)
		fprintf(stderr, "tessera: status: %s\n", strerror(-rc));
	meta_close(m);
	return rc ? 1 : 0;
}

static const char config_usage[] =
	"Usage: tessera config [--force] [--volume NAME] META_URL\n"
	"                      [--storage STORAGE_URL] [--trash-days N]\n"
	"       tessera config reload [--gateway ADDR:PORT] [--token-file "
	"FILE]\n"
	"\n"
	"reload: make a running gateway read tessera.conf and its exports\n"
	"again, as SIGHUP does (its admin endpoint; tessera limit --help).\n"
	"\n"
	"--trash-days N: days removed files stay in the volume's trash\n"
	"(/.trash, `tessera trash`); 0 releases them at once.  Every gateway\n"
	"applies it from the next removal; what the trash holds is released\n"
	"by the background job once older than the new value.\n"
	"\n"
	"Change the object store URL recorded in the volume's settings, for\n"
	"example to add or remove a wrapper (retry, fault, ratelimit) around\n"
	"the same data, or after moving the data.  tesserad reads it at\n"
	"start.  The new store must be this volume's: a store whose volume\n"
	"marker names another volume is refused, and a block the metadata\n"
	"references must read back from it (through its wrappers: the key\n"
	"and compression must be right).  A store without a marker gets\n"
	"this volume's.\n"
	"\n"
	"Options:\n"
	"  --storage URL  the new storage URL (see STORAGE URLS in\n"
	"                 tessera(1)); the data must be the same\n"
	"  --trash-days N days removed files are kept (0 to 36500)\n"
	"  --force        switch (and mark the store) even when no\n"
	"                 referenced block reads back from it\n"
	"  --volume NAME  the volume, when META_URL holds several\n"
	"  -h, --help     show this help\n";

/* tessera config --trash-days alone. */
static int
config_trash_days(const char *url, const char *volume, uint32_t days)
{
	struct meta *m = NULL;
	int rc;

	if (tessera_open("config", url, volume, false, &m))
		return 1;
	rc = meta_set_trash_days(m, days);
	if (rc)
		fprintf(stderr, "tessera: config: %s\n", strerror(-rc));
	else
		printf("trash days: %" PRIu32 "%s\n", days,
		       days ? "" : " (removed files are released at once)");
	meta_close(m);
	return rc ? 1 : 0;
}

/* Whether the volume may use store s: 0 yes (the store marked as its
 * own if it was not), or non-zero with the reason printed. */
static int
config_check(struct meta *m, struct os_store *s, const char *meta_url,
	     bool force)
{
	struct cache_store_check c;
	char *key = NULL, *msg;
	int rc, probe;

	rc = cache_store_check(m, s, &c);
	if (rc) {
		fprintf(stderr,
			"tessera: config: storage %s: cannot read "
			"the volume marker: %s\n",
			s->url,
			rc == -EBADMSG ? "not a volume marker" : strerror(-rc));
		return rc;
	}
	if (c.state == CACHE_STORE_FOREIGN) {
		msg = cache_store_foreign_msg(m, s, &c.marker);
		fprintf(stderr, "tessera: config: refused: %s\n", msg);
		free(msg);
		cache_store_check_free(&c);
		return -EEXIST;
	}
	probe = cache_store_probe(m, s, &key);
	if (probe == 0) {
		printf("block %s read back from %s\n", key, s->url);
	} else if (probe == 1 && c.state == CACHE_STORE_UNMARKED) {
		fprintf(stderr,
			"tessera: config: %s: storage %s has no "
			"volume marker and holds objects of a volume named "
			"\"%s\" (%s), while this volume references none\n",
			force ? "warning" : "refused", s->url,
			meta_settings(m)->name, c.first);
		rc = force ? 0 : -EEXIST;
	} else if (probe < 0) {
		fprintf(stderr,
			"tessera: config: %s: block %s does not read "
			"back from %s: %s (the wrong store, or wrong "
			"wrappers: key file, compression)\n",
			force ? "warning" : "refused", key ? key : "?", s->url,
			probe == -ENOENT ? "missing" : strerror(-probe));
		rc = force ? 0 : probe;
	}
	if (rc) /* refused, without --force */
		fprintf(stderr, "tessera: config: nothing changed; --force "
				"switches anyway\n");
	else if (c.state != CACHE_STORE_OWNED) {
		rc = cache_store_mark(m, s, meta_url);
		if (rc)
			fprintf(stderr,
				"tessera: config: cannot write the "
				"volume marker in %s: %s\n",
				s->url, strerror(-rc));
	}
	free(key);
	cache_store_check_free(&c);
	return rc;
}

int
tessera_cmd_config(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{"storage", required_argument, NULL, 's'},
		{"trash-days", required_argument, NULL, 't'},
		{"force", no_argument, NULL, TESSERA_OPT_FORCE},
		TESSERA_VOLUME_OPTION,
		{NULL, 0, NULL, 0},
	};
	const char *storage = NULL, *volume = NULL;
	struct os_store *os = NULL;
	struct meta *m = NULL;
	bool force = false, days_set = false;
	uint64_t days = 0;
	char *err = NULL;
	int c, rc;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "reload") == 0)
			return tessera_cmd_config_reload(argc, argv);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(config_usage, stdout);
			return 0;
		}
		if (c == 's') {
			storage = optarg;
			continue;
		}
		if (c == 't') {
			if (tl_parse_u64(optarg, 0, 36500, &days))
				return tessera_usage_error(config_usage,
							   "bad --trash-days "
							   "'%s'",
							   optarg);
			days_set = true;
			continue;
		}
		if (c == TESSERA_OPT_FORCE) {
			force = true;
			continue;
		}
		if (c == TESSERA_OPT_VOLUME) {
			volume = optarg;
			continue;
		}
		fputs(config_usage, stderr);
		return TESSERA_EXIT_USAGE;
	}
	if (argc - optind != 1 || (!storage && !days_set)) {
		fprintf(stderr,
			"tessera: config needs META_URL and "
			"--storage or --trash-days\n%s",
			config_usage);
		return TESSERA_EXIT_USAGE;
	}
	if (!storage)
		return config_trash_days(argv[optind], volume, (uint32_t)days);
	/* Refuse a URL that does not open: the daemon could not start. */
	rc = os_open(storage, &os, &err);
	if (rc) {
		fprintf(stderr,
			"tessera: config: cannot open storage %s: "
			"%s\n",
			storage, err ? err : strerror(-rc));
		free(err);
		return 1;
	}
	if (tessera_open("config", argv[optind], volume, false, &m)) {
		os_close(os);
		return 1;
	}
	rc = config_check(m, os, argv[optind], force);
	if (rc == 0) {
		rc = meta_set_storage(m, storage);
		if (rc)
			fprintf(stderr, "tessera: config: %s\n", strerror(-rc));
		else
			printf("storage: %s\n", storage);
	}
	if (rc == 0 && days_set) {
		rc = meta_set_trash_days(m, (uint32_t)days);
		if (rc)
			fprintf(stderr, "tessera: config: %s\n", strerror(-rc));
		else
			printf("trash days: %" PRIu64 "\n", days);
	}
	os_close(os);
	meta_close(m);
	return rc ? 1 : 0;
}
