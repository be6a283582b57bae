/*
 * tools_test.h - running the real `tessera` and `tesserad` binaries from
 * a test: a command's exit status and output, a daemon started in the
 * foreground on a free loopback port with its log in a file, and
 * stopped by SIGTERM or SIGKILL.  TESSERA_BIN and TESSERAD_BIN are the
 * paths of the built binaries (t/testpaths.h, made by configure).
 *
 * The daemon gets PR_SET_PDEATHSIG, so a test that dies leaves no
 * daemon behind.
 */
#ifndef T_UNIT_TOOLS_TEST_H
#define T_UNIT_TOOLS_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/tl.h"
#include "t/testpaths.h"
#include "t/unit/tap.h"

/* A step the test needs but does not check: stop if it fails, say
 * nothing if it works. */
#define TT_MUST(cond, ...)                                                     \
	do {                                                                   \
		if (!(cond)) {                                                 \
			printf("Bail out! ");                                  \
			printf(__VA_ARGS__);                                   \
			printf(" (%s:%d)\n", __FILE__, __LINE__);              \
			exit(1);                                               \
		}                                                              \
	} while (0)

/* Output of the last tt_run (stdout and stderr together). */
static char *tt_out;

/* Run `tessera ARGS` (printf-style, passed to sh -c) with stdin from
 * /dev/null; its exit status (-1 if it died of a signal).  The output is
 * in tt_out and shown as TAP comments.  $TESSERA_WRAP (e.g. "valgrind
 * -q --leak-check=full --error-exitcode=9") runs it under a checker. */
static int __attribute__((format(printf, 1, 2), unused))
tt_run(const char *fmt, ...)
{
	struct tl_buf b = TL_BUF_INIT;
	char chunk[4096], *args, *cmd;
	va_list ap;
	size_t n;
	FILE *p;
	int st;

	va_start(ap, fmt);
	if (vasprintf(&args, fmt, ap) < 0)
		abort();
	va_end(ap);
	cmd = tl_asprintf("%s %s %s </dev/null 2>&1",
			  getenv("TESSERA_WRAP") ? getenv("TESSERA_WRAP") : "",
			  TESSERA_BIN, args);
	p = popen(cmd, "r");
	if (p == NULL) {
		printf("Bail out! popen %s\n", cmd);
		exit(1);
	}
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		tl_buf_append(&b, chunk, n);
	tl_buf_append(&b, "", 1);
	st = pclose(p);
	printf("# $ tessera %s\n", args);
	for (char *l = (char *)b.data, *e; *l; l = e + 1) {
		e = strchr(l, '\n');
		if (e == NULL)
			e = l + strlen(l) - 1;
		printf("#   %.*s\n", (int)(e - l), l);
	}
	free(tt_out);
	tt_out = (char *)b.data;
	free(cmd);
	free(args);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Whether the last tt_run said s. */
static bool __attribute__((unused)) tt_said(const char *s)
{
	return tt_out != NULL && strstr(tt_out, s) != NULL;
}

static char *__attribute__((unused)) tt_slurp(const char *path)
{
	struct tl_buf b = TL_BUF_INIT;
	char chunk[4096];
	size_t n;
	FILE *f = fopen(path, "r");

	if (f != NULL) {
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			tl_buf_append(&b, chunk, n);
		fclose(f);
	}
	tl_buf_append(&b, "", 1);
	return (char *)b.data;
}

static bool __attribute__((unused))
tt_file_says(const char *path, const char *s)
{
	char *t = tt_slurp(path);
	bool yes = strstr(t, s) != NULL;

	free(t);
	return yes;
}

/* A tesserad run in the foreground. */
struct tt_daemon {
	pid_t pid;
	int status; /* wait status once it exited */
	char log[256];
};

/* Start `tesserad --foreground --no-rpcbind --listen 127.0.0.1:0
 * --metrics-listen off ARGS` (ARGS split on spaces) with stdout and
 * stderr written to log (emptied first).  Returns once the log says it
 * serves (0) or the daemon exited (-1, its wait status in d->status); gives up after
 * 60 s (-1). */
static int __attribute__((unused))
tt_daemon_start(struct tt_daemon *d, const char *log, const char *args)
{
	char *copy = tl_strdup(args), *save = NULL;
	const char *argv[48];
	bool exited = false;
	int argc = 0, fd;

	memset(d, 0, sizeof(*d));
	snprintf(d->log, sizeof(d->log), "%s", log);
	argv[argc++] = TESSERAD_BIN;
	argv[argc++] = "--foreground";
	argv[argc++] = "--no-rpcbind";
	argv[argc++] = "--listen";
	argv[argc++] = "127.0.0.1:0";
	argv[argc++] = "--metrics-listen";
	argv[argc++] = "off";
	for (char *w = strtok_r(copy, " ", &save); w && argc < 46;
	     w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	argv[argc] = NULL;
	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0)
		close(fd);
	fflush(stdout);
	d->pid = t_fork_logged(log);
	if (d->pid < 0) {
		printf("Bail out! fork: %s\n", strerror(errno));
		exit(1);
	}
	if (d->pid == 0) {
		execv(TESSERAD_BIN, (char **)argv);
		_exit(127);
	}
	free(copy);
	/* until it listens or exits; only a hung start is a failure */
	if (T_WAIT((exited = waitpid(d->pid, &d->status, WNOHANG) == d->pid) ||
		   tt_file_says(log, " port "))) {
		if (exited) {
			d->pid = 0;
			return -1;
		}
		return 0;
	}
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &d->status, 0);
	d->pid = 0;
	return -1;
}

/* Send sig and wait for the daemon to exit; its wait status. */
static int __attribute__((unused)) tt_daemon_stop(struct tt_daemon *d, int sig)
{
	if (d->pid <= 0)
		return d->status;
	kill(d->pid, sig);
	waitpid(d->pid, &d->status, 0);
	d->pid = 0;
	return d->status;
}

/* Show a daemon's log as TAP comments. */
static void __attribute__((unused)) tt_show_log(const char *path)
{
	char *t = tt_slurp(path);

	for (char *l = t, *e; *l; l = e + 1) {
		e = strchr(l, '\n');
		if (e == NULL)
			e = l + strlen(l) - 1;
		printf("#   | %.*s\n", (int)(e - l), l);
	}
	free(t);
}

#endif /* T_UNIT_TOOLS_TEST_H */
