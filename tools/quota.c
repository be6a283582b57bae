/*
 * quota.c - `tessera quota set|get|list|check|delete`: directory quotas
 * (meta/quota.c says what they count and when they refuse).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/tl.h"
#include "meta/meta.h"
#include "tools/tools-internal.h"

static const char quota_usage[] =
	"Usage: tessera quota set [--bytes N] [--inodes N] META_URL PATH\n"
	"       tessera quota get META_URL PATH\n"
	"       tessera quota list META_URL\n"
	"       tessera quota check [--dry-run] META_URL [PATH]\n"
	"       tessera quota delete META_URL PATH\n"
	"\n"
	"Directory quotas: the bytes and inodes of the tree below PATH (a\n"
	"directory of the volume, absolute).  Bytes are file sizes rounded\n"
	"up to 4 KiB, holes included (a sparse file counts by its size); an\n"
	"inode counts once, in the directory it was last linked into.  An\n"
	"NFS operation that would pass a limit of any quota above it fails\n"
	"with NFS3ERR_DQUOT (\"Disk quota exceeded\") and changes nothing.\n"
	"\n"
	"  set     create a quota (counting the tree's usage) or change its\n"
	"          limits; a limit not given stays as it was (none for a new\n"
	"          quota); 0 removes a limit\n"
	"  get     limits and usage of one quota\n"
	"  list    every quota of the volume\n"
	"  check   count the usage of one quota's tree (or every quota's)\n"
	"          from the inodes and repair the recorded usage if it\n"
	"          drifted (--dry-run: only report); exit 1 on drift\n"
	"  delete  remove a quota\n"
	"\n"
	"Options:\n"
	"  --bytes N      byte limit, K/M/G/T suffixes (powers of 1024)\n"
	"  --inodes N     inode limit\n"
	"  --dry-run      check only: repair nothing\n"
	"  --volume NAME  the volume, when META_URL holds several\n"
	"  -h, --help     show this help\n";

struct quota_args {
	const char *volume;
	bool set_bytes, set_inodes, dry_run;
	uint64_t bytes, inodes;
	const char *url, *path;
};

static void
limit_str(uint64_t v, char *buf, size_t len)
{
	if (v == 0)
		snprintf(buf, len, "unlimited");
	else
		snprintf(buf, len, "%" PRIu64, v);
}

static void
print_quota(struct meta *m, const struct meta_quota *q)
{
	char path[META_PATH_MAX], lb[32], li[32], hu[32], hl[32];

	if (meta_path(m, q->ino, path, sizeof(path)) != 0)
		snprintf(path, sizeof(path), "(inode %" PRIu64 ")", q->ino);
	limit_str(q->max_bytes, lb, sizeof(lb));
	limit_str(q->max_inodes, li, sizeof(li));
	tl_fmt_size(q->used_bytes, hu, sizeof(hu));
	if (q->max_bytes)
		tl_fmt_size(q->max_bytes, hl, sizeof(hl));
	else
		snprintf(hl, sizeof(hl), "unlimited");
	printf("%s\n  inode:  %" PRIu64 "\n"
	       "  bytes:  %" PRIu64 " used of %s (%s of %s)\n"
	       "  inodes: %" PRIu64 " used of %s\n",
	       path, q->ino, q->used_bytes, lb, hu, hl, q->used_inodes, li);
	if (q->has_figures)
		printf("  logical bytes: %" PRIu64 ", trash bytes: %" PRIu64
		       "\n",
		       q->logical_bytes, q->trash_bytes);
	else
		printf("  logical and trash bytes: not kept (a quota from an "
		       "older version: tessera quota check counts them)\n");
}

static int
list_cb(void *arg, const struct meta_quota *q)
{
	print_quota(arg, q);
	return 0;
}

struct check_ui {
	struct tessera_progress p;
	const char *path;
};

static void
check_progress(void *arg, uint64_t entries)
{
	struct check_ui *u = arg;

	if (tessera_progress_due(&u->p)) {
		fprintf(stdout, "checking %s: %" PRIu64 " entries", u->path,
			entries);
		fflush(stdout);
	}
}

/* Check one quota; 1 when it drifted, 0 clean, negative errno. */
static int
check_one(struct meta *m, uint64_t ino, bool repair)
{
	char path[META_PATH_MAX];
	struct check_ui u = {.path = path};
	struct meta_quota_fix f;
	int rc;

	if (meta_path(m, ino, path, sizeof(path)) != 0)
		snprintf(path, sizeof(path), "(inode %" PRIu64 ")", ino);
	tessera_progress_init(&u.p, STDOUT_FILENO);
	rc = meta_quota_check(m, ino, repair, check_progress, &u, &f);
	tessera_progress_clear(&u.p);
	if (rc) {
		fprintf(stderr, "tessera: quota check: %s: %s\n", path,
			strerror(-rc));
		return rc;
	}
	if (!f.drift) {
		printf("%s: %" PRIu64 " bytes, %" PRIu64 " inodes, %" PRIu64
		       " logical bytes, %" PRIu64 " trash bytes "
		       "(%" PRIu64 " entries checked): ok\n",
		       path, f.actual_bytes, f.actual_inodes, f.actual_logical,
		       f.actual_trash, f.entries);
		return 0;
	}
	if (f.q.has_figures)
		printf("%s: recorded %" PRIu64 " bytes, %" PRIu64
		       " inodes, %" PRIu64 " logical, %" PRIu64 " trash; ",
		       path, f.q.used_bytes, f.q.used_inodes, f.q.logical_bytes,
		       f.q.trash_bytes);
	else
		printf("%s: recorded %" PRIu64 " bytes, %" PRIu64 " inodes, "
		       "logical and trash bytes not kept; ",
		       path, f.q.used_bytes, f.q.used_inodes);
	printf("counted %" PRIu64 " bytes, %" PRIu64 " inodes, %" PRIu64
	       " logical, %" PRIu64 " trash: %s\n",
	       f.actual_bytes, f.actual_inodes, f.actual_logical,
	       f.actual_trash, f.repaired ? "repaired" : "not repaired");
	return 1;
}

static int
quota_check_cmd(struct meta *m, const struct quota_args *a, uint64_t ino)
{
	uint64_t *v = NULL;
	size_t n = 0;
	int rc, drift = 0;

	if (a->path) {
		rc = check_one(m, ino, !a->dry_run);
		return rc < 0 ? 1 : rc;
	}
	rc = meta_quota_inos(m, &v, &n);
	if (rc)
		fprintf(stderr, "tessera: quota check: %s\n", strerror(-rc));
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = check_one(m, v[i], !a->dry_run);
		drift += rc == 1;
		if (rc == 1 || rc == -ENOENT)
			rc = 0; /* deleted meanwhile: nothing to check */
	}
	if (rc == 0)
		printf("%zu quotas checked, %d drifted%s\n", n, drift,
		       drift && !a->dry_run ? " (repaired)" : "");
	free(v);
	return rc ? 1 : drift ? 1 : 0;
}

static int
quota_set_cmd(struct meta *m, const struct quota_args *a, uint64_t ino)
{
	struct meta_quota q = {.ino = ino}, out;
	struct check_ui u = {.path = a->path};
	int rc;

	rc = meta_quota_get(m, ino, &q);
	if (rc && rc != -ENOENT)
		goto fail;
	if (rc == -ENOENT && !a->set_bytes && !a->set_inodes) {
		fprintf(stderr,
			"tessera: quota set: %s has no quota: give "
			"--bytes or --inodes\n",
			a->path);
		return TESSERA_EXIT_USAGE;
	}
	q.ino = ino;
	if (a->set_bytes)
		q.max_bytes = a->bytes;
	if (a->set_inodes)
		q.max_inodes = a->inodes;
	tessera_progress_init(&u.p, STDOUT_FILENO);
	rc = meta_quota_set(m, &q, check_progress, &u, &out);
	tessera_progress_clear(&u.p);
	if (rc)
		goto fail;
	print_quota(m, &out);
	return 0;
fail:
	fprintf(stderr, "tessera: quota set: %s: %s\n", a->path,
		rc == -EMLINK ? "64 nested quotas" : strerror(-rc));
	return 1;
}

static int
quota_run(struct meta *m, const char *verb, const struct quota_args *a)
{
	struct meta_quota q;
	uint64_t ino = 0;
	int rc = 0;

	if (a->path) {
		rc = meta_resolve(m, a->path, &ino);
		if (rc) {
			fprintf(stderr, "tessera: quota %s: %s: %s\n", verb,
				a->path, strerror(-rc));
			return 1;
		}
	}
	if (strcmp(verb, "set") == 0)
		return quota_set_cmd(m, a, ino);
	if (strcmp(verb, "check") == 0)
		return quota_check_cmd(m, a, ino);
	if (strcmp(verb, "list") == 0)
		rc = meta_quota_list(m, list_cb, m);
	else if (strcmp(verb, "get") == 0 &&
		 (rc = meta_quota_get(m, ino, &q)) == 0)
		print_quota(m, &q);
	else if (strcmp(verb, "delete") == 0 &&
		 (rc = meta_quota_delete(m, ino)) == 0)
		printf("%s: quota deleted\n", a->path);
	if (rc == -ENOENT && a->path)
		fprintf(stderr, "tessera: quota %s: %s has no quota\n", verb,
			a->path);
	else if (rc)
		fprintf(stderr, "tessera: quota %s: %s\n", verb, strerror(-rc));
	return rc ? 1 : 0;
}

int
tessera_cmd_quota(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{"bytes", required_argument, NULL, 'b'},
		{"inodes", required_argument, NULL, 'i'},
		{"dry-run", no_argument, NULL, 'n'},
		TESSERA_VOLUME_OPTION,
		{NULL, 0, NULL, 0},
	};
	static const char *const verbs[] = {"set", "get", "list", "check",
					    "delete"};
	struct quota_args a = {0};
	const char *verb;
	struct meta *m;
	bool rdonly, want_path, known = false;
	int c, rc, nargs;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(quota_usage, stdout);
			return 0;
		case 'b':
			if (tl_parse_size(optarg, &a.bytes))
				return tessera_usage_error(quota_usage,
							   "bad --bytes '%s'",
							   optarg);
			a.set_bytes = true;
			break;
		case 'i':
			if (tl_parse_u64(optarg, 0, UINT64_MAX, &a.inodes))
				return tessera_usage_error(quota_usage,
							   "bad --inodes '%s'",
							   optarg);
			a.set_inodes = true;
			break;
		case 'n':
			a.dry_run = true;
			break;
		case TESSERA_OPT_VOLUME:
			a.volume = optarg;
			break;
		default:
			fputs(quota_usage, stderr);
			return TESSERA_EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return tessera_usage_error(quota_usage, "quota needs a %s",
					   "command");
	verb = argv[optind++];
	for (size_t i = 0; i < TL_ARRAY_SIZE(verbs); i++)
		known |= strcmp(verb, verbs[i]) == 0;
	if (!known)
		return tessera_usage_error(quota_usage,
					   "unknown quota command '%s'", verb);
	if ((a.set_bytes || a.set_inodes) && strcmp(verb, "set") != 0)
		return tessera_usage_error(quota_usage,
					   "--bytes and --inodes "
					   "go with set, not %s",
					   verb);
	if (a.dry_run && strcmp(verb, "check") != 0)
		return tessera_usage_error(quota_usage,
					   "--dry-run goes with "
					   "check, not %s",
					   verb);
	nargs = argc - optind;
	want_path = strcmp(verb, "list") != 0;
	if (nargs < 1 || nargs > 2 || (nargs == 2 && !want_path) ||
	    (nargs == 1 && want_path && strcmp(verb, "check") != 0))
		return tessera_usage_error(quota_usage,
					   "quota %s: wrong "
					   "arguments",
					   verb);
	a.url = argv[optind];
	a.path = nargs == 2 ? argv[optind + 1] : NULL;
	if (a.path && a.path[0] != '/')
		return tessera_usage_error(quota_usage,
					   "PATH must be "
					   "absolute: '%s'",
					   a.path);
	rdonly = strcmp(verb, "get") == 0 || strcmp(verb, "list") == 0 ||
		 (strcmp(verb, "check") == 0 && a.dry_run);
	if (tessera_open("quota", a.url, a.volume, rdonly, &m))
		return 1;
	rc = quota_run(m, verb, &a);
	meta_close(m);
	return rc;
}
