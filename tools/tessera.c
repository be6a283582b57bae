/*
 * tessera.c - the admin command: dispatch from the command table, and
 * what the commands share (opening a volume, --volume, progress lines).
 *
 * Exit status: 0 success, 1 error, 2 usage error.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/tl.h"
#include "meta/meta.h"
#include "tools/tools-internal.h"

/* One row per command: the usage line and the summary printed by
 * `tessera --help` come from here. */
struct tessera_cmd {
	const char *name;
	const char *args;    /* what follows the name in the synopsis */
	const char *summary; /* one line */
	int (*run)(int argc, char **argv);
};

static const struct tessera_cmd commands[] = {
	{"format", "META_URL STORAGE_URL NAME [OPTIONS]", "create a volume",
	 tessera_cmd_format},
	{"status", "[OPTIONS] META_URL", "show settings and usage",
	 tessera_cmd_status},
	{"fsck", "[--repair] [--no-objects] META_URL", "check the volume",
	 tessera_cmd_fsck},
	{"gc", "[--dry-run] [--grace DURATION] META_URL",
	 "delete leaked objects and the deletion queue", tessera_cmd_gc},
	{"info", "META_URL PATH",
	 "one inode: attributes, chunks and slices, directory usage",
	 tessera_cmd_info},
	{"summary", "[--depth N] META_URL PATH",
	 "usage of a tree, directory by directory", tessera_cmd_summary},
	{"quota", "set|get|list|check|delete META_URL [PATH] [OPTIONS]",
	 "directory quotas: limits on bytes and inodes of a tree",
	 tessera_cmd_quota},
	{"dump", "[--json] [--zstd] [--verify] META_URL [FILE|-]",
	 "write a consistent snapshot of the metadata; check one",
	 tessera_cmd_dump},
	{"load", "[--from-backup STORAGE_URL] META_URL [FILE|-]",
	 "restore metadata from a dump or a backup", tessera_cmd_load},
	{"config",
	 "META_URL [--storage STORAGE_URL] [--trash-days N] | "
	 "reload [--gateway ADDR]",
	 "change the storage URL or the trash days; make a running gateway "
	 "reload",
	 tessera_cmd_config},
	{"limit", "get [NAME] | set NAME VALUE [--gateway ADDR]",
	 "show or change a running gateway's rate and bandwidth limits",
	 tessera_cmd_limit},
	{"trash", "list|restore|purge [OPTIONS] META_URL [PATH...]",
	 "the trash: list, restore or release removed files",
	 tessera_cmd_trash},
	{"destroy", "[--yes] [--force] META_URL",
	 "remove a volume: its objects and its metadata", tessera_cmd_destroy},
	{"warmup", "[--bwlimit RATE] NFS_URL [PATH...]",
	 "fill a gateway's disk cache with the blocks of a tree",
	 tessera_cmd_warmup},
	{"top", "[--once] [--interval SECONDS] [ADDR:PORT|URL]",
	 "what a running gateway does, from its metrics, every second",
	 tessera_cmd_top},
	{"raft", "COMMAND [ARGS]",
	 "the raft group of this gateway: secret, status, add, remove, "
	 "transfer, verify, convert",
	 tessera_cmd_raft},
};

static void
main_usage(FILE *f)
{
	fputs("Usage: tessera [--help] [--version] [-c FILE] COMMAND [ARGS]\n"
	      "\n"
	      "  -c, --config FILE  tessera.conf, for the META_URL raft://\n"
	      "                     (default /etc/tessera/tessera.conf when\n"
	      "                     present)\n\n"
	      "Commands:\n",
	      f);
	for (size_t i = 0; i < TL_ARRAY_SIZE(commands); i++)
		fprintf(f, "  %s %s\n      %s\n", commands[i].name,
			commands[i].args, commands[i].summary);
	fputs("\nEvery command that opens a volume takes --volume NAME (or\n"
	      "META_URL?volume=NAME) to pick one of several volumes of one\n"
	      "metadata engine.\n"
	      "Run 'tessera COMMAND --help' for the options of a command.\n",
	      f);
}

int
tessera_usage_verror(const char *usage, const char *cmd, const char *fmt,
		     va_list ap)
{
	fprintf(stderr, "tessera: ");
	if (cmd != NULL)
		fprintf(stderr, "%s: ", cmd);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n%s", usage);
	return TESSERA_EXIT_USAGE;
}

int
tessera_usage_error(const char *usage, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = tessera_usage_verror(usage, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

int
tessera_open(const char *cmd, const char *url, const char *volume, bool rdonly,
	     struct meta **m)
{
	char *err = NULL;
	int rc;

	rc = meta_open_flags(url, volume, rdonly ? META_OPEN_RDONLY : 0, m,
			     &err);
	if (rc) {
		fprintf(stderr, "tessera: %s: %s\n", cmd,
			err ? err : strerror(-rc));
		free(err);
	}
	return rc;
}

void
tessera_session_describe(const struct meta_session *s, uint64_t now_ns,
			 char *buf, size_t len)
{
	time_t t = (time_t)(s->start_ns / 1000000000ULL);
	uint64_t ago = now_ns > s->heartbeat_ns
			       ? (now_ns - s->heartbeat_ns) / 1000000000ULL
			       : 0;
	char when[32];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	if (meta_session_live(s, now_ns))
		snprintf(buf, len,
			 "%s %s, pid %u, version %s, started %s, "
			 "heartbeat %" PRIu64 " s ago",
			 s->host, s->addr, s->pid, s->version, when, ago);
	else
		snprintf(buf, len,
			 "%s %s, pid %u, version %s, started %s: "
			 "stale, no heartbeat for %" PRIu64 " s (its ttl: %u "
			 "s); the gateway was killed or is stuck",
			 s->host, s->addr, s->pid, s->version, when, ago,
			 s->ttl_s);
}

struct gw_check {
	const char *cmd;
	bool force;
	uint64_t now;
	unsigned live;
};

static int
gw_check_cb(void *arg, const struct meta_session *s)
{
	struct gw_check *g = arg;
	char d[512];

	tessera_session_describe(s, g->now, d, sizeof(d));
	if (!meta_session_live(s, g->now)) {
		fprintf(stderr,
			"tessera: %s: ignoring a stale gateway "
			"session: %s\n",
			g->cmd, d);
		return 0;
	}
	g->live++;
	fprintf(stderr, "tessera: %s: %s: a gateway serves the volume: %s\n",
		g->cmd, g->force ? "warning" : "refused", d);
	return 0;
}

int
tessera_no_gateway(const char *cmd, struct meta *m, bool force)
{
	struct gw_check g = {cmd, force, tl_now_ns(), 0};
	int rc;

	rc = meta_session_list(m, gw_check_cb, &g);
	if (rc) {
		fprintf(stderr,
			"tessera: %s: cannot read the gateway "
			"sessions: %s\n",
			cmd, strerror(-rc));
		return rc;
	}
	if (g.live == 0)
		return 0;
	if (force) {
		fprintf(stderr,
			"tessera: %s: --force: going on although %u "
			"gateway(s) serve the volume; what they write "
			"meanwhile may be lost or undone\n",
			cmd, g.live);
		return 0;
	}
	fprintf(stderr,
		"tessera: %s: stop the gateway(s) first.  The "
		"session of a gateway that was killed expires once its "
		"heartbeat is older than its ttl (session_timeout, 60 s by "
		"default); --force runs anyway\n",
		cmd);
	return -EBUSY;
}

void
tessera_progress_init(struct tessera_progress *p, int fd)
{
	p->fd = fd;
	p->tty = isatty(fd);
	p->last_ms = tl_now_ns() / 1000000;
	p->shown = false;
}

bool
tessera_progress_due(struct tessera_progress *p)
{
	uint64_t now = tl_now_ns() / 1000000;

	if (!p->tty || now - p->last_ms < 1000)
		return false;
	p->last_ms = now;
	p->shown = true;
	fputc('\r', p->fd == 1 ? stdout : stderr);
	return true;
}

void
tessera_progress_clear(struct tessera_progress *p)
{
	FILE *f = p->fd == 1 ? stdout : stderr;

	if (p->shown) {
		fprintf(f, "\r%-75s\r", "");
		fflush(f);
		p->shown = false;
	}
}

int
main(int argc, char **argv)
{
	const char *cmd, *conf = NULL;
	char *mapped = NULL;
	int rc = -1;

	if (argc >= 3 &&
	    (strcmp(argv[1], "-c") == 0 || strcmp(argv[1], "--config") == 0)) {
		conf = argv[2];
		argv[2] = argv[0];
		argc -= 2;
		argv += 2;
	}
	if (argc < 2) {
		fprintf(stderr, "tessera: no command\n");
		main_usage(stderr);
		return TESSERA_EXIT_USAGE;
	}
	cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "help") == 0) {
		main_usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
		printf("tessera %s\n", PACKAGE_VERSION);
		return 0;
	}
	/* Warnings from the library go to stderr; the command prints the
	 * error itself. */
	tl_log_init(TL_LOG_WARN, false, "tessera");
	if (tessera_conf_load(conf) != 0)
		return 1;
	/* "raft://" alone: this gateway's node (tessera.conf raft_dir);
	 * format and raft read tessera.conf themselves */
	if (strcmp(cmd, "format") != 0 && strcmp(cmd, "raft") != 0)
		for (int i = 2; i < argc && mapped == NULL; i++)
			if (strncmp(argv[i], "raft://", 7) == 0 &&
			    (argv[i][7] == '\0' || argv[i][7] == '?'))
				argv[i] = mapped = tessera_meta_url(argv[i]);
	for (size_t i = 0; i < TL_ARRAY_SIZE(commands) && rc < 0; i++)
		if (strcmp(cmd, commands[i].name) == 0)
			rc = commands[i].run(argc - 1, argv + 1);
	if (rc < 0) {
		fprintf(stderr, "tessera: unknown command '%s'\n", cmd);
		main_usage(stderr);
		rc = TESSERA_EXIT_USAGE;
	}
	free(mapped);
	tessera_conf_free();
	return rc;
}
