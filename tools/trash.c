/*
 * trash.c - `tessera trash list|restore|purge`: what the volume's trash
 * holds (meta.h, "the trash"), putting entries back, releasing them
 * before their time.  Progress on a terminal for the long ones, a
 * summary at the end.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/tl.h"
#include "meta/meta.h"
#include "tools/tools-internal.h"

static const char trash_usage[] =
	"Usage: tessera trash list [--since TIME] [--volume NAME] META_URL\n"
	"       tessera trash restore [--to DIR] [--volume NAME] META_URL "
	"PATH...\n"
	"       tessera trash purge [--before TIME] [--volume NAME] "
	"META_URL\n"
	"\n"
	"With trash_days > 0 (tessera format --trash-days, tessera config\n"
	"--trash-days), a removed file moves into "
	"/.trash/HOUR/PARENT-INO-NAME\n"
	"of the volume, HOUR its UTC hour of removal (YYYY-MM-DD-HH), and\n"
	"the background job releases it trash_days later.\n"
	"\n"
	"  list              entries, oldest first: hour/name, size, when\n"
	"                    removed, where from (directory inode and name)\n"
	"  --since TIME      only those removed at or after TIME\n"
	"  restore PATH...   put entries back where they were removed from\n"
	"                    (PATH: HOUR/NAME, or /.trash/HOUR/NAME); refuses\n"
	"                    to overwrite an existing name\n"
	"  --to DIR          restore into DIR (a path of the volume) instead,\n"
	"                    under the original names\n"
	"  purge             release entries now (their data is deleted by\n"
	"                    the background job)\n"
	"  --before TIME     only those removed before TIME (default: all)\n"
	"\n"
	"TIME: seconds since the epoch, YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS]\n"
	"(UTC), or an age such as 2h or 3d (that long ago).\n";

/* TIME as above into ns since the epoch. */
static int
parse_time(const char *s, uint64_t *ns)
{
	static const char *const fmts[] = {"%Y-%m-%dT%H:%M:%S",
					   "%Y-%m-%dT%H:%M", "%Y-%m-%d"};
	uint64_t v, now = tl_now_ns();
	struct tm tm;
	char *end;

	for (size_t i = 0; i < TL_ARRAY_SIZE(fmts); i++) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, fmts[i], &tm);
		if (end != NULL && *end == '\0') {
			*ns = (uint64_t)timegm(&tm) * 1000000000ULL;
			return 0;
		}
	}
	if (tl_parse_u64(s, 0, UINT64_MAX / 1000000000ULL, &v) == 0) {
		*ns = v * 1000000000ULL;
		return 0;
	}
	if (tl_parse_duration_ms(s, &v) == 0 && v > 0) {
		v *= 1000000ULL;
		*ns = now > v ? now - v : 0;
		return 0;
	}
	return -EINVAL;
}

static void
fmt_time(uint64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000ULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

struct list_ctx {
	uint64_t n, bytes;
};

static int
list_cb(void *arg, const struct meta_trash_entry *e)
{
	struct list_ctx *l = arg;
	char when[32], sz[32];

	fmt_time(e->attr.ctime_ns, when, sizeof(when));
	printf("%s/%s  %s  removed %s UTC  from directory %" PRIu64
	       " as \"%s\"\n",
	       e->hour, e->name, tl_fmt_size(e->attr.size, sz, sizeof(sz)),
	       when, e->from, e->orig_name ? e->orig_name : "?");
	l->n++;
	l->bytes += e->attr.type == META_REG ? e->attr.size : 0;
	return 0;
}

static int
trash_list(struct meta *m, uint64_t since)
{
	struct list_ctx l = {0, 0};
	char sz[32];
	int rc;

	rc = meta_trash_list(m, since, list_cb, &l);
	if (rc) {
		fprintf(stderr, "tessera: trash list: %s\n", strerror(-rc));
		return 1;
	}
	printf("%" PRIu64 " entries, %s\n", l.n,
	       tl_fmt_size(l.bytes, sz, sizeof(sz)));
	return 0;
}

/* "HOUR/NAME" or "/.trash/HOUR/NAME" into hour and name. */
static int
split_path(const char *p, char *hour, size_t hlen, const char **name)
{
	const char *slash;

	if (strncmp(p, "/" META_TRASH_NAME "/", strlen(META_TRASH_NAME) + 2) ==
	    0)
		p += strlen(META_TRASH_NAME) + 2;
	else if (strncmp(p, META_TRASH_NAME "/", strlen(META_TRASH_NAME) + 1) ==
		 0)
		p += strlen(META_TRASH_NAME) + 1;
	slash = strchr(p, '/');
	if (slash == NULL || slash == p || slash[1] == '\0' ||
	    strchr(slash + 1, '/') != NULL || (size_t)(slash - p) >= hlen)
		return -EINVAL;
	memcpy(hour, p, (size_t)(slash - p));
	hour[slash - p] = '\0';
	*name = slash + 1;
	return 0;
}

static int
trash_restore(struct meta *m, const char *to, char **paths, int n)
{
	struct tessera_progress pr;
	uint64_t dir = 0, done = 0;
	int bad = 0, rc;

	if (to != NULL && (rc = meta_resolve(m, to, &dir)) != 0) {
		fprintf(stderr, "tessera: trash restore: --to %s: %s\n", to,
			strerror(-rc));
		return 1;
	}
	tessera_progress_init(&pr, STDERR_FILENO);
	for (int i = 0; i < n; i++) {
		char hour[META_NAME_MAX + 1];
		const char *name;
		uint64_t where;

		if (tessera_progress_due(&pr))
			fprintf(stderr, "restoring: %" PRIu64 " of %d", done,
				n);
		rc = split_path(paths[i], hour, sizeof(hour), &name);
		if (rc == 0)
			rc = meta_trash_restore(m, hour, name, dir, NULL,
						&where);
		if (rc == 0) {
			done++;
			continue;
		}
		tessera_progress_clear(&pr);
		bad++;
		if (rc == -EEXIST)
			fprintf(stderr,
				"tessera: trash restore: %s: the name "
				"exists where it would go: not overwritten "
				"(restore it elsewhere with --to DIR)\n",
				paths[i]);
		else if (rc == -ESTALE)
			fprintf(stderr,
				"tessera: trash restore: %s: the "
				"directory it was removed from is gone "
				"(restore it with --to DIR)\n",
				paths[i]);
		else if (rc == -EDQUOT)
			fprintf(stderr,
				"tessera: trash restore: %s: the "
				"quota of a directory it would go under has "
				"no room for it: nothing restored (free room, "
				"raise the quota with tessera quota set, or "
				"restore it elsewhere with --to DIR)\n",
				paths[i]);
		else if (rc == -EINVAL)
			fprintf(stderr,
				"tessera: trash restore: %s: not a "
				"trash entry (HOUR/NAME)\n",
				paths[i]);
		else
			fprintf(stderr, "tessera: trash restore: %s: %s\n",
				paths[i], strerror(-rc));
	}
	tessera_progress_clear(&pr);
	printf("restored %" PRIu64 " of %d\n", done, n);
	return bad ? 1 : 0;
}

static int
trash_purge(struct meta *m, uint64_t before)
{
	struct meta_trash_done d = {0, 0};
	struct tessera_progress pr;
	char sz[32];
	bool more = true;
	int rc = 0;

	tessera_progress_init(&pr, STDERR_FILENO);
	while (more && rc == 0) {
		rc = meta_trash_expire(m, before, 512, &d, &more);
		if (tessera_progress_due(&pr))
			fprintf(stderr, "purging: %" PRIu64 " files, %s",
				d.files, tl_fmt_size(d.bytes, sz, sizeof(sz)));
	}
	tessera_progress_clear(&pr);
	printf("purged %" PRIu64 " files, %s (their data is deleted by the "
	       "background job)\n",
	       d.files, tl_fmt_size(d.bytes, sz, sizeof(sz)));
	if (rc)
		fprintf(stderr, "tessera: trash purge: %s\n", strerror(-rc));
	return rc ? 1 : 0;
}

int
tessera_cmd_trash(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{"since", required_argument, NULL, 's'},
		{"before", required_argument, NULL, 'b'},
		{"to", required_argument, NULL, 't'},
		TESSERA_VOLUME_OPTION,
		{NULL, 0, NULL, 0},
	};
	const char *sub, *volume = NULL, *to = NULL, *since = NULL,
			 *before = NULL;
	uint64_t since_ns = 0, before_ns = UINT64_MAX;
	struct meta *m = NULL;
	int c, rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		fputs(trash_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? TESSERA_EXIT_USAGE : 0;
	}
	sub = argv[1];
	argc--;
	argv++;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(trash_usage, stdout);
			return 0;
		} else if (c == 's') {
			since = optarg;
		} else if (c == 'b') {
			before = optarg;
		} else if (c == 't') {
			to = optarg;
		} else if (c == TESSERA_OPT_VOLUME) {
			volume = optarg;
		} else {
			fputs(trash_usage, stderr);
			return TESSERA_EXIT_USAGE;
		}
	}
	if (since && parse_time(since, &since_ns))
		return tessera_usage_error(trash_usage, "bad --since '%s'",
					   since);
	if (before && parse_time(before, &before_ns))
		return tessera_usage_error(trash_usage, "bad --before '%s'",
					   before);
	if (strcmp(sub, "list") == 0 || strcmp(sub, "purge") == 0) {
		if (argc - optind != 1)
			return tessera_usage_error(
				trash_usage, "trash %s needs META_URL", sub);
	} else if (strcmp(sub, "restore") == 0) {
		if (argc - optind < 2)
			return tessera_usage_error(trash_usage,
						   "trash restore "
						   "needs META_URL and a PATH");
	} else {
		return tessera_usage_error(trash_usage,
					   "unknown trash command '%s'", sub);
	}
	if (tessera_open("trash", argv[optind], volume,
			 strcmp(sub, "list") == 0, &m))
		return 1;
	if (strcmp(sub, "list") == 0)
		rc = trash_list(m, since_ns);
	else if (strcmp(sub, "restore") == 0)
		rc = trash_restore(m, to, argv + optind + 1, argc - optind - 1);
	else
		rc = trash_purge(m, before_ns);
	meta_close(m);
	return rc;
}
