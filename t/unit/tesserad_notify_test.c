/* The real tesserad under a service manager that this test plays: a
 * datagram socket named by NOTIFY_SOCKET, as systemd's Type=notify
 * gives it.
 *  - without --foreground, it does not fork: READY=1 comes from the
 *    process that was started (the kernel's credentials on the
 *    datagram say which), with a STATUS= naming the volume, once it
 *    serves; the metadata URL comes from the configuration file
 *    (option meta), as tesserad@.service runs it;
 *  - SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1, also when
 *    the new configuration has errors (serving goes on);
 *  - SIGTERM: STOPPING=1, then a clean exit;
 *  - an abstract socket ("@name") works too;
 *  - with stderr the journal's stream (JOURNAL_STREAM), log lines carry
 *    their syslog priority ("<5>tesserad: ...") and no timestamp of
 *    their own;
 *  - with no metadata URL at all it stops at once, saying why. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/tl.h"
#include "t/notify_recv.h"
#include "t/testpaths.h"
#include "t/unit/tap.h"

/* A hang guard, not a measure: a daemon that never notifies fails the
 * test instead of hanging it. */
#define GUARD_MS (120 * 1000)

static char dir[64];

struct mgr {
	int fd;
	char addr[108]; /* as NOTIFY_SOCKET says it */
};

static void
mgr_open(struct mgr *m, bool abstract)
{
	struct sockaddr_un sa;
	socklen_t len;
	int on = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (abstract) {
		snprintf(m->addr, sizeof(m->addr), "@tessera-notify-test-%d",
			 (int)getpid());
		memcpy(sa.sun_path + 1, m->addr + 1, strlen(m->addr) - 1);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				  strlen(m->addr));
	} else {
		snprintf(m->addr, sizeof(m->addr), "%s/notify", dir);
		strcpy(sa.sun_path, m->addr);
		len = sizeof(sa);
	}
	m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK_FATAL(m->fd >= 0, "notify socket");
	CHECK_FATAL(bind(m->fd, (struct sockaddr *)&sa, len) == 0, "bind %s",
		    m->addr);
	setsockopt(m->fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on));
}

/* The next datagram into buf, its sender's pid in *pid; false when the
 * daemon exits first or nothing comes within the guard. */
static bool
mgr_recv(struct mgr *m, pid_t daemon, char *buf, size_t size, pid_t *pid)
{
	struct pollfd p = {m->fd, POLLIN, 0};
	int waited = 0, st;

	while (poll(&p, 1, 200) == 0) {
		if (waitpid(daemon, &st, WNOHANG) == daemon) {
			printf("# tesserad exited (status %d) before "
			       "notifying\n",
			       st);
			return false;
		}
		if ((waited += 200) >= GUARD_MS)
			return false;
	}
	if (notify_recv(m->fd, buf, size, 0, pid) < 0)
		return false;
	printf("# notified: ");
	for (const char *c = buf; *c != '\0'; c++)
		fputs(*c == '\n' ? " | " : (char[]){*c, '\0'}, stdout);
	printf("\n");
	return true;
}

/* Start tesserad with NOTIFY_SOCKET=addr and these arguments (no
 * --foreground), stderr to dir/log. */
static bool journal; /* give start's daemon JOURNAL_STREAM */

static pid_t
start(const char *addr, const char *const *args)
{
	const char *argv[16] = {TESSERAD_BIN};
	size_t n = 1;
	pid_t pid;

	for (; *args != NULL && n < TL_ARRAY_SIZE(argv) - 1; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	pid = fork();
	if (pid == 0) {
		char *log = tl_asprintf("%s/log", dir);
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		struct stat st;

		if (fd >= 0)
			dup2(fd, 2);
		if (journal && fstat(2, &st) == 0) {
			char *js = tl_asprintf("%llu:%llu",
					       (unsigned long long)st.st_dev,
					       (unsigned long long)st.st_ino);

			setenv("JOURNAL_STREAM", js, 1);
		} else {
			unsetenv("JOURNAL_STREAM");
		}
		setenv("NOTIFY_SOCKET", addr, 1);
		execv(TESSERAD_BIN, (char **)argv);
		_exit(127);
	}
	return pid;
}

static void
write_conf(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK_FATAL(f != NULL && fputs(text, f) >= 0 && fclose(f) == 0,
		    "write %s", path);
}

static bool
has(const char *msg, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = msg; (p = strstr(p, line)) != NULL; p++)
		if ((p == msg || p[-1] == '\n') &&
		    (p[n] == '\0' || p[n] == '\n' || line[n - 1] == '='))
			return true;
	return false;
}

static void
test_lifecycle(const char *meta)
{
	char *conf = tl_asprintf("%s/vol.conf", dir), *text, msg[4096];
	const char *args[] = {"-c", conf, NULL};
	struct mgr m;
	pid_t pid, from;
	int st;

	text = tl_asprintf("meta = %s\nlisten = 127.0.0.1:0\n"
			   "rpcbind = no\nmetrics_listen = off\n",
			   meta);
	write_conf(conf, text);
	mgr_open(&m, false);
	pid = start(m.addr, args);
	CHECK_FATAL(mgr_recv(&m, pid, msg, sizeof(msg), &from),
		    "a notification once started");
	CHECK(has(msg, "READY=1"), "READY=1");
	CHECK(strstr(msg, "STATUS=serving volume \"notifyvol\" on "
			  "127.0.0.1 port ") != NULL,
	      "STATUS names the volume and the address");
	CHECK_EQ(from, pid, "sent by the process started: it did not fork");
	CHECK_EQ(waitpid(pid, &st, WNOHANG), 0, "which runs on");

	kill(pid, SIGHUP);
	CHECK(mgr_recv(&m, pid, msg, sizeof(msg), &from) &&
		      has(msg, "RELOADING=1") && has(msg, "MONOTONIC_USEC="),
	      "SIGHUP: RELOADING=1 with MONOTONIC_USEC");
	CHECK(mgr_recv(&m, pid, msg, sizeof(msg), &from) && has(msg, "READY=1"),
	      "then READY=1 once reloaded");

	write_conf(conf, "meta = x\nno_such_option = 1\n");
	kill(pid, SIGHUP);
	CHECK(mgr_recv(&m, pid, msg, sizeof(msg), &from) &&
		      has(msg, "RELOADING=1"),
	      "a reload of a broken configuration: RELOADING=1");
	CHECK(mgr_recv(&m, pid, msg, sizeof(msg), &from) && has(msg, "READY=1"),
	      "then READY=1: it serves on with the old settings");
	CHECK_EQ(waitpid(pid, &st, WNOHANG), 0, "still running");

	kill(pid, SIGTERM);
	CHECK(mgr_recv(&m, pid, msg, sizeof(msg), &from) &&
		      has(msg, "STOPPING=1"),
	      "SIGTERM: STOPPING=1");
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
		      WEXITSTATUS(st) == 0,
	      "then exits 0");
	close(m.fd);
	unlink(m.addr);
	free(text);
	free(conf);
}

static void
test_abstract(const char *meta)
{
	const char *args[] = {"--meta",       meta,
			      "--listen",     "127.0.0.1:0",
			      "--no-rpcbind", "--metrics-listen",
			      "off",          NULL};
	char msg[4096], *log = tl_asprintf("%s/log", dir), buf[8192] = "";
	struct mgr m;
	pid_t pid, from;
	FILE *f;
	int st;

	mgr_open(&m, true);
	journal = true;
	pid = start(m.addr, args);
	journal = false;
	CHECK(mgr_recv(&m, pid, msg, sizeof(msg), &from) &&
		      has(msg, "READY=1") && from == pid,
	      "abstract socket %s: READY=1 from the started process", m.addr);
	kill(pid, SIGTERM);
	CHECK(mgr_recv(&m, pid, msg, sizeof(msg), &from) &&
		      has(msg, "STOPPING=1"),
	      "and STOPPING=1");
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
		      WEXITSTATUS(st) == 0,
	      "exit 0");
	close(m.fd);
	f = fopen(log, "r");
	if (f != NULL) {
		buf[fread(buf, 1, sizeof(buf) - 1, f)] = '\0';
		fclose(f);
	}
	CHECK(strncmp(buf, "<5>", 3) == 0 &&
		      strstr(buf, "\n<5>tesserad: tesserad " PACKAGE_VERSION
				  ": volume \"notifyvol\"") != NULL,
	      "stderr is the journal: lines begin <5>, the notice priority");
	CHECK(strstr(buf, "Z notice ") == NULL,
	      "and carry no timestamp or level name of their own");
	free(log);
}

static void
test_no_meta(void)
{
	char *conf = tl_asprintf("%s/empty.conf", dir);
	char *log = tl_asprintf("%s/log", dir), buf[4096] = "";
	const char *args[] = {"-c", conf, NULL};
	pid_t pid;
	FILE *f;
	int st;

	write_conf(conf, "# nothing\n");
	pid = start("@tessera-notify-unused", args);
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
		      WEXITSTATUS(st) == 2,
	      "no metadata URL: exit 2");
	f = fopen(log, "r");
	if (f != NULL) {
		buf[fread(buf, 1, sizeof(buf) - 1, f)] = '\0';
		fclose(f);
	}
	CHECK(strstr(buf, "no metadata URL: give --meta URL or set meta "
			  "in") != NULL,
	      "saying so");
	free(conf);
	free(log);
}

int
main(void)
{
	char *meta, *cmd;

	strcpy(dir, "/tmp/tessera-notify-XXXXXX");
	CHECK_FATAL(mkdtemp(dir) != NULL, "temporary directory");
	meta = tl_asprintf("lmdb://%s/meta", dir);
	cmd = tl_asprintf("%s format %s file://%s/objects notifyvol "
			  ">/dev/null",
			  TESSERA_BIN, meta, dir);
	CHECK_FATAL(system(cmd) == 0, "tessera format");
	test_lifecycle(meta);
	test_abstract(meta);
	test_no_meta();
	free(cmd);
	tap_rm_rf(dir);
	free(meta);
	return tap_done();
}
