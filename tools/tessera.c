/*
 * tessera.c - the admin command: dispatch from the command table, and
 * what the commands share (opening a volume, --volume, progress lines).
 *
 * Exit status: 0 success, 1 error, 2 usage error.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	{"config", "META_URL --storage STORAGE_URL",
	 "change the storage URL", tessera_cmd_config},
};

static void
main_usage(FILE *f)
{
	fputs("Usage: tessera [--help] [--version] COMMAND [ARGS]\n\n"
	      "Commands:\n", f);
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
tessera_usage_error(const char *usage, const char *fmt, const char *arg)
{
	fprintf(stderr, "tessera: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", usage);
	return TESSERA_EXIT_USAGE;
}

int
tessera_open(const char *cmd, const char *url, const char *volume,
	     bool rdonly, struct meta **m)
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
tessera_progress_init(struct tessera_progress *p, int fd)
{
	p->fd = fd;
	p->tty = isatty(fd);
	p->last_ms = 0;
}

bool
tessera_progress_due(struct tessera_progress *p)
{
	uint64_t now = tl_now_ns() / 1000000;

	if (!p->tty || now - p->last_ms < 1000)
		return false;
	p->last_ms = now;
	fputc('\r', p->fd == 1 ? stdout : stderr);
	return true;
}

void
tessera_progress_clear(struct tessera_progress *p)
{
	FILE *f = p->fd == 1 ? stdout : stderr;

	if (p->tty && p->last_ms) {
		fprintf(f, "\r%-75s\r", "");
		fflush(f);
		p->last_ms = 0;
	}
}

int
main(int argc, char **argv)
{
	const char *cmd;

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
	for (size_t i = 0; i < TL_ARRAY_SIZE(commands); i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "tessera: unknown command '%s'\n", cmd);
	main_usage(stderr);
	return TESSERA_EXIT_USAGE;
}
