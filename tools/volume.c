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
	"see STORAGE URLS in tessera(1)).\n"
	"\n"
	"Options:\n"
	"  --block-size SIZE  object block size, a power of two from 64K to\n"
	"                     16M (default 4M)\n"
	"  --trash-days N     days removed files stay in the trash\n"
	"                     (default 1)\n"
	"  --capacity BYTES   volume capacity, K/M/G/T suffixes (default\n"
	"                     unlimited)\n"
	"  --inodes N         maximum number of inodes (default unlimited)\n"
	"  --force            replace an existing volume of that name\n"
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
storage_check(const char *url, const char *name)
{
	struct os_store *s = NULL;
	char *err = NULL, *key;
	int rc;

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
					"see the message above)" : "");
	free(key);
	os_close(s);
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
				err ? err : "the key file path may not "
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
	struct meta_format_opts o = {NULL, NULL, 4U << 20, 1, 0, 0, false};
	const char *keyfile = NULL;
	bool zstd = false;
	char *err = NULL, *storage = NULL;
	uint64_t v;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (tl_parse_size(optarg, &v) || v < (64 << 10) ||
			    v > (16 << 20) || (v & (v - 1)))
				return tessera_usage_error(format_usage,
						   "bad --block-size '%s': a "
						   "power of two from 64K to "
						   "16M", optarg);
			o.block_size = (uint32_t)v;
			break;
		case 't':
			if (tl_parse_u64(optarg, 0, 36500, &v))
				return tessera_usage_error(format_usage,
						   "bad --trash-days '%s'",
						   optarg);
			o.trash_days = (uint32_t)v;
			break;
		case 'c':
			if (tl_parse_size(optarg, &o.capacity))
				return tessera_usage_error(format_usage,
						   "bad --capacity '%s'",
						   optarg);
			break;
		case 'i':
			if (tl_parse_u64(optarg, 0, UINT64_MAX, &o.max_inodes))
				return tessera_usage_error(format_usage,
						   "bad --inodes '%s'", optarg);
			break;
		case 'f':
			o.force = true;
			break;
		case 'z':
			if (strcmp(optarg, "zstd") != 0)
				return tessera_usage_error(format_usage,
						   "bad --compress '%s': only "
						   "zstd", optarg);
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
		return tessera_usage_error(format_usage, "format needs META_URL, "
				   "STORAGE_URL and NAME%s", "");
	o.name = argv[optind + 2];
	if (!name_ok(o.name))
		return tessera_usage_error(format_usage, "bad volume name '%s': 1 to "
				   "63 of A-Z a-z 0-9 _ -", o.name);
	rc = storage_url(argv[optind + 1], zstd, keyfile, &storage);
	if (rc)
		return 1;
	o.storage = storage;
	if (storage_check(o.storage, o.name)) {
		free(storage);
		return 1;
	}
	rc = meta_format(argv[optind], &o, &err);
	if (rc) {
		fprintf(stderr, "tessera: format: %s\n",
			err ? err : strerror(-rc));
		free(err);
		free(storage);
		return 1;
	}
	printf("formatted volume %s (metadata %s, storage %s)\n", o.name,
	       argv[optind], o.storage);
	free(storage);
	return 0;
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
	printf("%-14s %" PRIu64 "\n", "pending gc:", u->pending_delete);
}

struct gw_list {
	uint64_t now;
	unsigned live, stale;
};

static int
gw_list_cb(void *arg, const struct meta_session *s)
{
	struct gw_list *g = arg;
	char d[512];

	tessera_session_describe(s, g->now, d, sizeof(d));
	printf("  %s\n", d);
	if (meta_session_live(s, g->now))
		g->live++;
	else
		g->stale++;
	return 0;
}

/* The gateway sessions recorded in the volume (meta.h). */
static int
print_gateways(struct meta *m)
{
	struct gw_list g = {tl_now_ns(), 0, 0};
	int rc;

	printf("gateways:\n");
	rc = meta_session_list(m, gw_list_cb, &g);
	if (rc == 0 && g.live + g.stale == 0)
		printf("  none\n");
	return rc;
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
		return tessera_usage_error(status_usage, "status needs META_URL%s", "");
	if (tessera_open("status", argv[optind], volume, true, &m))
		return 1;
	rc = meta_usage(m, &u);
	if (rc == 0)
		print_status(meta_settings(m), &u);
	if (rc == 0)
		rc = print_gateways(m);
	if (rc == 0 && cdirs != NULL)
		print_staging(cdirs);
	if (rc != 0)
		fprintf(stderr, "tessera: status: %s\n", strerror(-rc));
	meta_close(m);
	return rc ? 1 : 0;
}

static const char config_usage[] =
	"Usage: tessera config [--volume NAME] META_URL --storage STORAGE_URL\n"
	"\n"
	"Change the object store URL recorded in the volume's settings, for\n"
	"example to add or remove a wrapper (retry, fault, ratelimit) around\n"
	"the same data.  tesserad reads it at start.\n"
	"\n"
	"Options:\n"
	"  --storage URL  the new storage URL (see STORAGE URLS in\n"
	"                 tessera(1)); the data must be the same\n"
	"  --volume NAME  the volume, when META_URL holds several\n"
	"  -h, --help     show this help\n";

int
tessera_cmd_config(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{"storage", required_argument, NULL, 's'},
		TESSERA_VOLUME_OPTION,
		{NULL, 0, NULL, 0},
	};
	const char *storage = NULL, *volume = NULL;
	struct os_store *os = NULL;
	struct meta *m = NULL;
	char *err = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(config_usage, stdout);
			return 0;
		}
		if (c == 's') {
			storage = optarg;
			continue;
		}
		if (c == TESSERA_OPT_VOLUME) {
			volume = optarg;
			continue;
		}
		fputs(config_usage, stderr);
		return TESSERA_EXIT_USAGE;
	}
	if (argc - optind != 1 || !storage) {
		fprintf(stderr, "tessera: config needs META_URL and "
			"--storage\n%s", config_usage);
		return TESSERA_EXIT_USAGE;
	}
	/* Refuse a URL that does not open: the daemon could not start. */
	rc = os_open(storage, &os, &err);
	if (rc) {
		fprintf(stderr, "tessera: config: cannot open storage %s: "
			"%s\n", storage, err ? err : strerror(-rc));
		free(err);
		return 1;
	}
	os_close(os);
	if (tessera_open("config", argv[optind], volume, false, &m))
		return 1;
	rc = meta_set_storage(m, storage);
	if (rc)
		fprintf(stderr, "tessera: config: %s\n", strerror(-rc));
	else
		printf("storage: %s\n", storage);
	meta_close(m);
	return rc ? 1 : 0;
}
