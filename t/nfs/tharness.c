/*
 * tharness.c - see tharness.h.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nfsd/nfs3_status.h"
#include "t/nfs/tharness.h"

#ifndef TH_BUILDDIR
#define TH_BUILDDIR "."
#endif

/* ---- assertions ----------------------------------------------------------- */

int th_failures;
static int th_count;

void
th_diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("# ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
}

void
th_result(bool ok, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	th_count++;
	printf("%s %d - ", ok ? "ok" : "not ok", th_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (!ok) {
		printf(" (%s:%d)", file, line);
		th_failures++;
	}
	printf("\n");
	fflush(stdout);
}

#define TH_STAT_NAME(s) {s, #s},
static const struct {
	int st;
	const char *name;
} th_stat_names[] = {{-1, "RPC-FAILURE"}, NFSD_NFS3_STATUSES(TH_STAT_NAME)};
#undef TH_STAT_NAME

const char *
th_stat_name(int st)
{
	static char buf[32];

	for (size_t i = 0; i < sizeof th_stat_names / sizeof *th_stat_names;
	     i++)
		if (th_stat_names[i].st == st)
			return th_stat_names[i].name;
	snprintf(buf, sizeof buf, "status %d", st);
	return buf;
}

void
th_stat_result(int got, int want, const char *file, int line, const char *fmt,
	       ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (got == want)
		th_result(true, file, line, "%s: %s", what, th_stat_name(got));
	else {
		char g[32];

		snprintf(g, sizeof g, "%s", th_stat_name(got));
		th_result(false, file, line, "%s: expected %s, got %s", what,
			  th_stat_name(want), g);
	}
}

static void th_cleanup_all(void);

_Noreturn void
th_bail(void)
{
	printf("Bail out! stopping after a failed requirement\n");
	fflush(stdout);
	th_cleanup_all();
	exit(1);
}

_Noreturn void
th_skip_all(const char *why)
{
	printf("1..0 # SKIP %s\n", why);
	fflush(stdout);
	th_cleanup_all();
	exit(77);
}

int
th_done(void)
{
	printf("1..%d\n", th_count);
	if (th_failures)
		printf("# %d of %d checks failed\n", th_failures, th_count);
	printf("%d passed, %d failed\n", th_count - th_failures, th_failures);
	fflush(stdout);
	th_cleanup_all();
	return th_failures ? 1 : 0;
}

/* ---- the server ----------------------------------------------------------- */

#define TH_MAX_SERVERS 8
static struct th_server *th_servers[TH_MAX_SERVERS];
static bool th_hooks_installed;

const char *
th_builddir(void)
{
	const char *d = getenv("top_builddir");

	return d && *d ? d : TH_BUILDDIR;
}

int
th_server_fsck(const struct th_server *s)
{
	return th_tessera(s, "fsck %s", s->meta_url);
}

int
th_tessera(const struct th_server *s, const char *fmt, ...)
{
	char args[1500], cmd[2400];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof cmd, "%s/tessera %s > %s/tool.out 2>&1",
		 th_builddir(), args, s->dir);
	st = system(cmd);
	if (st != 0) {
		th_diag("`tessera %s` failed (%d):", args, st);
		snprintf(cmd, sizeof cmd, "sed 's/^/#   /' %s/tool.out",
			 s->dir);
		if (system(cmd) != 0)
			th_diag("cannot show its output");
	}
	return st;
}

struct th_fh
th_mkdir_fh(struct th_conn *c, const struct th_fh *dir, const char *name)
{
	struct th_obj o;
	int st = th_mkdir(c, dir, name, NULL, &o);

	TH_REQUIRE(st == NFS3_OK && o.fh_follows, "MKDIR %s (%s)", name,
		   th_stat_name(st));
	return o.fh;
}

struct th_fh
th_create_fh(struct th_conn *c, const struct th_fh *dir, const char *name,
	     const sattr3 *sa)
{
	struct th_obj o;
	int st = th_create(c, dir, name, GUARDED, sa, NULL, &o);

	TH_REQUIRE(st == NFS3_OK && o.fh_follows, "CREATE %s (%s)", name,
		   th_stat_name(st));
	return o.fh;
}

static size_t th_nobjects;

static int
th_count_cb(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)path;
	(void)st;
	(void)f;
	th_nobjects += type == FTW_F;
	return 0;
}

size_t
th_server_objects(const struct th_server *s)
{
	char dir[300];

	snprintf(dir, sizeof dir, "%s/obj/tvol/chunks", s->dir);
	th_nobjects = 0;
	nftw(dir, th_count_cb, 16, FTW_PHYS);
	return th_nobjects;
}

long
th_tool_figure(const struct th_server *s, const char *what)
{
	char path[300], line[1024];
	long n = -1;
	FILE *f;

	snprintf(path, sizeof path, "%s/tool.out", s->dir);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, what, strlen(what)) == 0)
			n = strtol(line + strlen(what), NULL, 10);
	fclose(f);
	return n;
}

static char th_tmpfs_dir[400];

void
th_tmpfs_unmount(void)
{
	if (th_tmpfs_dir[0] && umount2(th_tmpfs_dir, MNT_DETACH) == 0)
		th_tmpfs_dir[0] = '\0';
}

const char *
th_server_tmpfs(const struct th_server *s, const char *sub, unsigned mib,
		size_t filler)
{
	static char path[450];
	static const char zeros[64 << 10];
	char cmd[1400], opt[32];
	int fd;

	snprintf(th_tmpfs_dir, sizeof th_tmpfs_dir, "%s/%s", s->dir, sub);
	snprintf(cmd, sizeof cmd, "mv %s %s.orig && mkdir %s", th_tmpfs_dir,
		 th_tmpfs_dir, th_tmpfs_dir);
	TH_REQUIRE(system(cmd) == 0, "move %s aside", sub);
	snprintf(opt, sizeof opt, "size=%um", mib);
	if (mount("tmpfs", th_tmpfs_dir, "tmpfs", 0, opt) != 0) {
		th_diag("mount tmpfs: %s", strerror(errno));
		th_tmpfs_dir[0] = '\0';
		th_skip_all("cannot mount a tmpfs here");
	}
	atexit(th_tmpfs_unmount);
	snprintf(cmd, sizeof cmd, "cp -a %s.orig/. %s/", th_tmpfs_dir,
		 th_tmpfs_dir);
	TH_REQUIRE(system(cmd) == 0, "%s on a %u MiB tmpfs", sub, mib);
	snprintf(path, sizeof path, "%s/filler", th_tmpfs_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	TH_REQUIRE(fd >= 0, "create %s", path);
	for (size_t left = filler, n; left > 0; left -= n) {
		n = left < sizeof zeros ? left : sizeof zeros;
		TH_REQUIRE(write(fd, zeros, n) == (ssize_t)n,
			   "%zu bytes of filler", filler);
	}
	close(fd);
	return path;
}

static void
th_rm_rf(const char *dir)
{
	pid_t pid;

	if (!dir[0] || getenv("TH_KEEP"))
		return;
	pid = fork();
	if (pid == 0) {
		execlp("rm", "rm", "-rf", dir, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

static void
th_cleanup_all(void)
{
	for (int i = 0; i < TH_MAX_SERVERS; i++)
		if (th_servers[i]) {
			th_server_destroy(th_servers[i]);
			th_servers[i] = NULL;
		}
}

static void
th_on_signal(int sig)
{
	/* Only async-signal-safe calls: kill, waitpid, fork/exec in rm. */
	static const char msg[] = "not ok - watchdog or signal: test killed\n";

	if (write(1, msg, sizeof msg - 1) < 0) {
		/* nothing to do */
	}
	for (int i = 0; i < TH_MAX_SERVERS; i++)
		if (th_servers[i] && th_servers[i]->pid > 0) {
			kill(th_servers[i]->pid, SIGKILL);
			waitpid(th_servers[i]->pid, NULL, 0);
			th_rm_rf(th_servers[i]->dir);
		}
	_exit(sig == SIGALRM ? 1 : 128 + sig);
}

/* The watchdog: SIGALRM after th_watchdog_s seconds without a reply
 * from the server (th_progress re-arms it), so a hung server cannot hang
 * `make check`, and a slow machine (an ASan build on 2 busy cores) that
 * still makes progress is never stopped by it. */
static unsigned th_watchdog_s = 900;

static void
th_progress(void)
{
	if (th_hooks_installed)
		alarm(th_watchdog_s);
}

static void
th_install_hooks(void)
{
	const char *t = getenv("TH_TIMEOUT");
	struct sigaction sa;

	if (th_hooks_installed)
		return;
	th_hooks_installed = true;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = th_on_signal;
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (t && atoi(t) > 0)
		th_watchdog_s = (unsigned)atoi(t);
	alarm(th_watchdog_s);
}

void
th_loopback(struct sockaddr_in *sin, int port)
{
	memset(sin, 0, sizeof *sin);
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin->sin_port = htons((uint16_t)port);
}

/* The lowest port the kernel hands out to outgoing connections. */
static int
ephemeral_low(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	int lo = 32768, hi;

	if (f != NULL) {
		if (fscanf(f, "%d %d", &lo, &hi) != 2)
			lo = 32768;
		fclose(f);
	}
	return lo;
}

/* A port to serve on: random, below the ephemeral range (an outgoing
 * connection may take a port of that range whenever the server is down,
 * as it is between a kill and a restart), and free now. */
static int
th_free_port(void)
{
	static unsigned seed;
	int lo = 10000, span = ephemeral_low() - lo;

	if (seed == 0)
		seed = (unsigned)getpid() ^ (unsigned)th_now_ms();
	if (span < 1000)
		span = 1000;
	for (int i = 0; i < 200; i++) {
		struct sockaddr_in sin;
		int fd, port = lo + (int)(rand_r(&seed) % (unsigned)span), ok;

		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			return -1;
		th_loopback(&sin, port);
		ok = bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
		close(fd);
		if (ok)
			return port;
	}
	return -1;
}

/* The daemon's log: tesserad.log, or the name of a joined server's. */
static void
th_log_path(const struct th_server *s, char *path, size_t size)
{
	snprintf(path, size, "%s/%s", s->dir,
		 s->logname[0] ? s->logname : "tesserad.log");
}

/* Whether the server's log has a line containing what. */
static bool
th_log_says(const struct th_server *s, const char *what)
{
	char path[400], line[1024];
	bool found = false;
	FILE *f;

	th_log_path(s, path, sizeof path);
	f = fopen(path, "r");
	while (f != NULL && !found && fgets(line, sizeof line, f))
		found = strstr(line, what) != NULL;
	if (f != NULL)
		fclose(f);
	return found;
}

int
th_server_log_count(const struct th_server *s, const char *what)
{
	char path[400], line[2048];
	int n = 0;
	FILE *f;

	th_log_path(s, path, sizeof path);
	f = fopen(path, "r");
	while (f != NULL && fgets(line, sizeof line, f))
		n += strstr(line, what) != NULL;
	if (f != NULL)
		fclose(f);
	return n;
}

int
th_log_metrics_port(const char *path, long from)
{
	static const char tag[] = "metrics on http://127.0.0.1:";
	char line[2048];
	int port = 0;
	FILE *f;

	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	fseek(f, from, SEEK_SET);
	while (fgets(line, sizeof line, f)) {
		char *p = strstr(line, tag);

		if (p != NULL)
			port = atoi(p + sizeof(tag) - 1);
	}
	fclose(f);
	return port;
}

int
th_server_metrics_port(const struct th_server *s, long from)
{
	char path[400];

	th_log_path(s, path, sizeof path);
	return th_log_metrics_port(path, from);
}

long
th_server_log_size(const struct th_server *s)
{
	char path[400];
	struct stat st;

	th_log_path(s, path, sizeof path);
	return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* The sample line of series in a /metrics text, at its value; NULL if
 * absent. */
static const char *
th_sample_at(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *s = text; s != NULL && *s != '\0';) {
		if (strncmp(s, series, n) == 0 && s[n] == ' ')
			return s + n + 1;
		s = strchr(s, '\n');
		if (s != NULL)
			s++;
	}
	return NULL;
}

double
th_sample(const char *text, const char *series)
{
	const char *v = th_sample_at(text, series);

	return v != NULL ? strtod(v, NULL) : -1;
}

int
th_http(int port, const char *method, const char *path, const char *auth,
	char **body)
{
	struct sockaddr_in sin;
	char req[1024], *buf = NULL, *p;
	size_t len = 0, cap = 0;
	int fd, code = -1;
	ssize_t n;

	if (body != NULL)
		*body = NULL;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	th_loopback(&sin, port);
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0)
		goto out;
	snprintf(req, sizeof req,
		 "%s %s HTTP/1.0\r\nHost: localhost\r\n%s%s%s"
		 "Content-Length: 0\r\n\r\n",
		 method, path, auth ? "Authorization: " : "", auth ? auth : "",
		 auth ? "\r\n" : "");
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		goto out;
	for (;;) {
		if (len + 4097 > cap) {
			cap = cap ? 2 * cap : 65536;
			p = realloc(buf, cap);
			if (p == NULL)
				goto out;
			buf = p;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (buf == NULL)
		goto out;
	buf[len] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1)
		code = -1;
	p = strstr(buf, "\r\n\r\n");
	if (body != NULL && p != NULL)
		*body = strdup(p + 4);
out:
	free(buf);
	close(fd);
	return code;
}

int
th_server_metric(const struct th_server *s, const char *name, double *v)
{
	char *body = NULL;
	const char *at;
	int port = th_server_metrics_port(s, 0), rc = 1;

	if (port <= 0 || th_http(port, "GET", "/metrics", NULL, &body) < 0 ||
	    body == NULL) {
		free(body);
		return -1;
	}
	at = th_sample_at(body, name);
	if (at != NULL) {
		*v = strtod(at, NULL);
		rc = 0;
	}
	free(body);
	return rc;
}

static void
th_print_log(const struct th_server *s)
{
	char path[400], line[1024];
	FILE *f;
	int n = 0;

	th_log_path(s, path, sizeof path);
	f = fopen(path, "r");
	if (!f)
		return;
	th_diag("---- %s (last lines) ----", path);
	/* Print at most the last ~60 lines: count first. */
	while (fgets(line, sizeof line, f))
		n++;
	rewind(f);
	for (int i = 0; fgets(line, sizeof line, f); i++)
		if (i >= n - 60)
			printf("#   %s", line);
	fclose(f);
	fflush(stdout);
}

static int
th_port_open(int port)
{
	struct sockaddr_in sin;
	int fd, rc;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return 0;
	th_loopback(&sin, port);
	rc = connect(fd, (struct sockaddr *)&sin, sizeof sin);
	close(fd);
	return rc == 0;
}

#define TL_ARRAY_SIZE_TH(a) (sizeof(a) / sizeof((a)[0]))

void
th_server_set_args(struct th_server *s, const char *args)
{
	snprintf(s->daemon_args, sizeof s->daemon_args, "%s", args ? args : "");
}

static int
th_spawn(struct th_server *s)
{
	char bin[512], meta[320], listen[64], log[400], extra[256];
	const char *argv[40];
	int argc = 0;
	pid_t pid;
	uint64_t t0;

	snprintf(bin, sizeof bin, "%s/tesserad", th_builddir());
	snprintf(meta, sizeof meta, "%s", s->meta_url);
	snprintf(listen, sizeof listen, "127.0.0.1:%d", s->port);
	th_log_path(s, log, sizeof log);
	argv[argc++] = bin;
	argv[argc++] = "--meta";
	argv[argc++] = meta;
	if (!s->no_nfs) {
		argv[argc++] = "--listen";
		argv[argc++] = listen;
	}
	argv[argc++] = "--foreground";
	argv[argc++] = "--no-rpcbind";
	if (s->exports_path[0]) {
		argv[argc++] = "--exports";
		argv[argc++] = s->exports_path;
	}
	/* Tests run side by side: none takes the default metrics port
	 * unless it asks for an endpoint. */
	if (strstr(s->daemon_args, "metrics") == NULL) {
		argv[argc++] = "--metrics-listen";
		argv[argc++] = "off";
	}
	snprintf(extra, sizeof extra, "%s", s->daemon_args);
	for (char *save = NULL, *w = strtok_r(extra, " ", &save);
	     w != NULL && argc < (int)TL_ARRAY_SIZE_TH(argv) - 1;
	     w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	argv[argc] = NULL;

	pid = t_fork_logged(log);
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execv(bin, (char **)argv);
		fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	s->pid = pid;
	s->started++;
	/* Until it listens, or dies; only a daemon hung at start-up (no
	 * port after TH_STALL_MS) is a failure, never a slow start. */
	t0 = th_now_ms();
	while (th_now_ms() - t0 < TH_STALL_MS) {
		int st;

		if (waitpid(pid, &st, WNOHANG) == pid) {
			s->pid = 0;
			th_diag("tesserad exited early (status 0x%x)", st);
			th_print_log(s);
			return -1;
		}
		if (s->no_nfs ? th_log_says(s, "background jobs only")
			      : th_port_open(s->port))
			return 0;
		usleep(20000);
	}
	th_diag("tesserad did not listen on port %d within %d s", s->port,
		TH_STALL_MS / 1000);
	th_print_log(s);
	th_server_stop(s, true);
	return -1;
}

int
th_server_set_exports(struct th_server *s, const char *exports)
{
	FILE *f;

	if (!exports) {
		s->exports_path[0] = 0;
		return 0;
	}
	snprintf(s->exports_path, sizeof s->exports_path, "%s/exports", s->dir);
	f = fopen(s->exports_path, "w");
	if (!f)
		return -1;
	fputs(exports, f);
	fclose(f);
	return 0;
}

/* A free place in th_servers, or -1. */
static int
th_free_slot(void)
{
	for (int i = 0; i < TH_MAX_SERVERS; i++)
		if (!th_servers[i])
			return i;
	return -1;
}

/* Spawn s on a free port.  Another test may take the port between the
 * check and the bind: then, if retry, another port (three tries). */
static int
th_spawn_on_free_port(struct th_server *s, bool retry)
{
	int rc;

	for (int tries = 0;; tries++) {
		s->port = th_free_port();
		if (s->port < 0)
			return -1;
		rc = th_spawn(s);
		if (rc == 0 || !retry || tries == 2 ||
		    !th_log_says(s, "in use"))
			return rc;
		th_diag("port %d was taken; trying another", s->port);
	}
}

int
th_server_start(struct th_server *s, const char *format_args,
		const char *exports)
{
	const char *tmp = getenv("TMPDIR");
	char cmd[2048], tmpl[128];
	int rc, slot;

	th_install_hooks();
	memset(s, 0, sizeof *s);
	slot = th_free_slot();
	if (slot < 0)
		return -1;
	if (!tmp || strlen(tmp) > 100)
		tmp = "/tmp";
	snprintf(tmpl, sizeof tmpl, "%s/th-nfs-XXXXXX", tmp);
	if (!mkdtemp(tmpl)) {
		th_diag("mkdtemp: %s", strerror(errno));
		return -1;
	}
	snprintf(s->dir, sizeof s->dir, "%s", tmpl);
	th_servers[slot] = s;
	snprintf(s->meta_url, sizeof s->meta_url, "lmdb://%s/meta", s->dir);
	snprintf(s->storage_url, sizeof s->storage_url, "file://%s/obj",
		 s->dir);
	snprintf(cmd, sizeof cmd,
		 "'%s/tessera' format '%s' '%s' tvol %s >'%s/format.log' 2>&1",
		 th_builddir(), s->meta_url, s->storage_url,
		 format_args ? format_args : "", s->dir);
	rc = system(cmd);
	if (rc != 0) {
		char line[512];
		FILE *f;

		th_diag("`tessera format` failed (%d): %s", rc, cmd);
		snprintf(cmd, sizeof cmd, "%s/format.log", s->dir);
		f = fopen(cmd, "r");
		while (f && fgets(line, sizeof line, f))
			printf("#   %s", line);
		if (f)
			fclose(f);
		return -1;
	}
	if (th_server_set_exports(s, exports) < 0)
		return -1;
	return th_spawn_on_free_port(s, true);
}

int
th_server_join(struct th_server *s, const struct th_server *of,
	       const char *args, bool nfs)
{
	int slot;

	memset(s, 0, sizeof *s);
	slot = th_free_slot();
	if (slot < 0)
		return -1;
	th_servers[slot] = s;
	s->peer = true;
	s->no_nfs = !nfs;
	snprintf(s->dir, sizeof s->dir, "%s", of->dir);
	snprintf(s->meta_url, sizeof s->meta_url, "%s", of->meta_url);
	snprintf(s->storage_url, sizeof s->storage_url, "%s", of->storage_url);
	snprintf(s->exports_path, sizeof s->exports_path, "%s",
		 of->exports_path);
	snprintf(s->logname, sizeof s->logname, "tesserad-%d.log", slot);
	th_server_set_args(s, args);
	return th_spawn_on_free_port(s, nfs);
}

void
th_server_stop(struct th_server *s, bool kill_hard)
{
	uint64_t t0;
	int st;

	if (s->pid <= 0)
		return;
	kill(s->pid, kill_hard ? SIGKILL : SIGTERM);
	t0 = th_now_ms();
	while (waitpid(s->pid, &st, WNOHANG) != s->pid) {
		/* a clean stop may flush for long on a loaded machine:
		 * only a daemon that hangs is killed */
		if (th_now_ms() - t0 > TH_STALL_MS) {
			th_diag("tesserad %d ignored SIGTERM for %d s; "
				"killing it",
				(int)s->pid, TH_STALL_MS / 1000);
			kill(s->pid, SIGKILL);
			waitpid(s->pid, &st, 0);
			break;
		}
		usleep(10000);
	}
	if (!kill_hard && WIFSIGNALED(st) && WTERMSIG(st) != SIGTERM)
		th_diag("tesserad died of signal %d", WTERMSIG(st));
	s->pid = 0;
}

int
th_server_restart(struct th_server *s, bool kill_hard)
{
	th_server_stop(s, kill_hard);
	return th_spawn(s);
}

void
th_server_destroy(struct th_server *s)
{
	th_server_stop(s, false);
	/* A failed test shows what the daemon said before its directory
	 * goes: a crash or a closed connection is explained there. */
	if (th_failures)
		th_print_log(s);
	if (!s->peer)
		th_rm_rf(s->dir);
	for (int i = 0; i < TH_MAX_SERVERS; i++)
		if (th_servers[i] == s)
			th_servers[i] = NULL;
	s->dir[0] = 0;
}

uint64_t
th_server_mem(const struct th_server *s, const char *field)
{
	char path[64], line[256];
	size_t n = strlen(field);
	unsigned long long kb = 0;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)s->pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, field, n) == 0 && line[n] == ':' &&
		    sscanf(line + n + 1, "%llu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb * 1024;
}

const char *
th_server_url(const struct th_server *s, const char *path)
{
	static char buf[512];

	snprintf(buf, sizeof buf,
		 "nfs://127.0.0.1%s?version=3&nfsport=%d&mountport=%d", path,
		 s->port, s->port);
	return buf;
}

/* ---- the client: one call at a time ---------------------------------------- */

struct th_call {
	int done;
	int rpc_status;
	int nfs_status;
	void (*copy)(void *res, void *arg);
	void *arg;
};

static void
th_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct th_call *k = priv;

	th_progress();
	k->rpc_status = status;
	if (status == RPC_STATUS_SUCCESS) {
		/* Every NFSv3 and MOUNTv3 result begins with its status. */
		k->nfs_status = data ? *(int *)data : 0; /* NULL: no data */
		if (k->copy)
			k->copy(data, k->arg);
	} else {
		th_diag("RPC failed: status %d: %s", status,
			status == RPC_STATUS_ERROR && data ? (char *)data
							   : "-");
		k->nfs_status = -1;
	}
	k->done = 1;
}

int
th_service(struct th_conn *c, int timeout_ms)
{
	struct pollfd p;
	int n;

	p.fd = rpc_get_fd(c->rpc);
	p.events = rpc_which_events(c->rpc);
	p.revents = 0;
	n = poll(&p, 1, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -1;
	if (rpc_service(c->rpc, n ? p.revents : 0) < 0) {
		th_diag("rpc_service: %s", rpc_get_error(c->rpc));
		return -1;
	}
	return 0;
}

/* Exported by libnfs 4.0 but missing from its raw header.  A test
 * notices a dead server and reconnects itself: libnfs's own reconnection
 * of a raw context, after the server was killed, ends in a crash inside
 * rpc_destroy_context under ASan. */
extern void rpc_set_autoreconnect(struct rpc_context *rpc, int num_retries);

/* After a failure the connection is dropped at once, while the callers'
 * call records (on their stacks) are still alive: libnfs fails pending
 * calls when its context is destroyed, and doing that later, from
 * th_disconnect, would write into stack frames long gone.  The fresh
 * context left in place is never connected, so further calls on this
 * connection fail quickly until the test reconnects. */
static void
th_drop(struct th_conn *c)
{
	rpc_destroy_context(c->rpc);
	c->rpc = rpc_init_context();
	if (c->rpc == NULL)
		abort();
	rpc_set_autoreconnect(c->rpc, 0);
}

static unsigned th_stall_ms = TH_STALL_MS;

void
th_set_stall_ms(unsigned ms)
{
	th_stall_ms = ms ? ms : TH_STALL_MS;
}

int
th_wait(struct th_conn *c, int *done)
{
	uint64_t t0 = th_now_ms();

	while (!*done) {
		if (th_now_ms() - t0 > th_stall_ms) {
			th_diag("no reply within %u s", th_stall_ms / 1000);
			th_drop(c);
			return *done ? 0 : -1;
		}
		if (th_service(c, 100) < 0) {
			th_drop(c);
			return *done ? 0 : -1;
		}
	}
	return 0;
}

static int
th_finish(struct th_conn *c, struct th_call *k, int send_rc)
{
	if (send_rc != 0) {
		th_diag("could not send the call: %s", rpc_get_error(c->rpc));
		return -1;
	}
	if (th_wait(c, &k->done) < 0)
		return -1;
	return k->rpc_status == RPC_STATUS_SUCCESS ? k->nfs_status : -1;
}

static void
th_connect_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct th_call *k = priv;

	th_progress();
	k->rpc_status = status;
	if (status != RPC_STATUS_SUCCESS)
		th_diag("connect failed: %s", data ? (char *)data : "-");
	k->done = 1;
}

static void
th_copy_mnt(void *res, void *arg)
{
	mountres3 *r = res;
	struct th_fh *fh = arg;

	if (r->fhs_status != MNT3_OK)
		return;
	fh->len = r->mountres3_u.mountinfo.fhandle.fhandle3_len;
	if (fh->len > TH_FH_MAX)
		fh->len = TH_FH_MAX;
	memcpy(fh->data, r->mountres3_u.mountinfo.fhandle.fhandle3_val,
	       fh->len);
}

int
th_mnt(struct th_conn *c, const char *path, struct th_fh *fh)
{
	struct th_call k = {.copy = th_copy_mnt, .arg = fh};

	memset(fh, 0, sizeof *fh);
	return th_finish(c, &k,
			 rpc_mount3_mnt_async(c->rpc, th_cb, (char *)path, &k));
}

void
th_set_cred(struct th_conn *c, uint32_t uid, uint32_t gid, uint32_t ngroups,
	    const uint32_t *groups)
{
	c->uid = uid;
	c->gid = gid;
	rpc_set_auth(c->rpc,
		     libnfs_authunix_create("tharness", uid, gid, ngroups,
					    (uint32_t *)groups));
}

int
th_connect(struct th_conn *c, int port, const char *path, uint32_t uid,
	   uint32_t gid)
{
	return th_connect_host(c, "127.0.0.1", port, path, uid, gid);
}

int
th_connect_host(struct th_conn *c, const char *host, int port, const char *path,
		uint32_t uid, uint32_t gid)
{
	struct th_call k = {0};
	int rc;

	memset(c, 0, sizeof *c);
	c->port = port;
	c->rpc = rpc_init_context();
	if (!c->rpc)
		return -1;
	rpc_set_autoreconnect(c->rpc, 0);
	th_set_cred(c, uid, gid, 0, NULL);
	rc = rpc_connect_port_async(c->rpc, host, port, NFS_PROGRAM, NFS_V3,
				    th_connect_cb, &k);
	if (rc != 0) {
		th_diag("rpc_connect_port_async: %s", rpc_get_error(c->rpc));
		return -1;
	}
	if (th_wait(c, &k.done) < 0 || k.rpc_status != RPC_STATUS_SUCCESS)
		return -1;
	if (!path)
		return 0;
	return th_mnt(c, path, &c->root);
}

void
th_disconnect(struct th_conn *c)
{
	if (c->rpc)
		rpc_destroy_context(c->rpc);
	c->rpc = NULL;
}

/* ---- procedure wrappers ----------------------------------------------------- */

nfs_fh3
th_fh3(const struct th_fh *fh)
{
	nfs_fh3 f;

	f.data.data_len = fh->len;
	f.data.data_val = (char *)fh->data;
	return f;
}

/* The (directory, name) pair of a call. */
static diropargs3
th_dirop(const struct th_fh *dir, const char *name)
{
	diropargs3 d = {th_fh3(dir), (char *)name};

	return d;
}

/* libnfs 4.0 decodes READDIR entry lists into its own allocator's memory
 * at 4-byte aligned addresses; reading them is fine on the platforms we
 * run on, and the misalignment is libnfs's, not the server's. */
#define TH_LIBNFS_ALIGN __attribute__((no_sanitize("alignment")))

static void TH_LIBNFS_ALIGN
th_fh_from(struct th_fh *dst, const nfs_fh3 *src)
{
	dst->len = src->data.data_len;
	if (dst->len > TH_FH_MAX)
		dst->len = TH_FH_MAX;
	memcpy(dst->data, src->data.data_val, dst->len);
}

sattr3
th_sattr_none(void)
{
	sattr3 s;

	memset(&s, 0, sizeof s);
	s.atime.set_it = DONT_CHANGE;
	s.mtime.set_it = DONT_CHANGE;
	return s;
}

sattr3
th_sattr_mode(uint32_t mode)
{
	sattr3 s = th_sattr_none();

	s.mode.set_it = 1;
	s.mode.set_mode3_u.mode = mode;
	return s;
}

/* Flat results (no pointers inside) are copied whole. */
struct th_flat {
	void *dst;
	size_t size;
};

static void
th_copy_flat(void *res, void *arg)
{
	struct th_flat *f = arg;

	if (f->dst)
		memcpy(f->dst, res, f->size);
}

#define TH_FLAT_CALL(c, fn, args, out)                                         \
	({                                                                     \
		struct th_flat fl_ = {(out), sizeof *(out)};                   \
		struct th_call k_ = {.copy = th_copy_flat, .arg = &fl_};       \
		th_finish((c), &k_, fn((c)->rpc, th_cb, (args), &k_));         \
	})

int
th_null(struct th_conn *c)
{
	struct th_call k = {0};

	return th_finish(c, &k, rpc_nfs3_null_async(c->rpc, th_cb, &k));
}

static void
th_copy_getattr(void *res, void *arg)
{
	GETATTR3res *r = res;

	if (r->status == NFS3_OK && arg)
		*(fattr3 *)arg = r->GETATTR3res_u.resok.obj_attributes;
}

int
th_getattr(struct th_conn *c, const struct th_fh *fh, fattr3 *out)
{
	GETATTR3args a = {.object = th_fh3(fh)};
	struct th_call k = {.copy = th_copy_getattr, .arg = out};

	return th_finish(c, &k, rpc_nfs3_getattr_async(c->rpc, th_cb, &a, &k));
}

int
th_setattr(struct th_conn *c, const struct th_fh *fh, const sattr3 *sa,
	   const nfstime3 *guard, SETATTR3res *out)
{
	SETATTR3args a;
	SETATTR3res tmp;

	memset(&a, 0, sizeof a);
	a.object = th_fh3(fh);
	a.new_attributes = *sa;
	if (guard) {
		a.guard.check = 1;
		a.guard.sattrguard3_u.obj_ctime = *guard;
	}
	return TH_FLAT_CALL(c, rpc_nfs3_setattr_async, &a, out ? out : &tmp);
}

static void
th_copy_obj_post(struct th_obj *o, const post_op_fh3 *fh,
		 const post_op_attr *attr)
{
	o->fh_follows = fh->handle_follows;
	if (fh->handle_follows)
		th_fh_from(&o->fh, &fh->post_op_fh3_u.handle);
	o->attr_follows = attr->attributes_follow;
	if (attr->attributes_follow)
		o->attr = attr->post_op_attr_u.attributes;
}

static void
th_copy_lookup(void *res, void *arg)
{
	LOOKUP3res *r = res;
	LOOKUP3resok *ok = &r->LOOKUP3res_u.resok;
	struct th_obj *o = arg;
	post_op_fh3 fh = {.handle_follows = 1};

	if (r->status == NFS3_OK) {
		fh.post_op_fh3_u.handle = ok->object;
		th_copy_obj_post(o, &fh, &ok->obj_attributes);
		o->dir_attributes = ok->dir_attributes;
	} else {
		o->dir_attributes = r->LOOKUP3res_u.resfail.dir_attributes;
	}
}

int
th_lookup(struct th_conn *c, const struct th_fh *dir, const char *name,
	  struct th_obj *out)
{
	struct th_obj tmp;
	LOOKUP3args a;
	struct th_call k = {.copy = th_copy_lookup, .arg = out ? out : &tmp};

	memset(k.arg, 0, sizeof tmp);
	a.what = th_dirop(dir, name);
	return th_finish(c, &k, rpc_nfs3_lookup_async(c->rpc, th_cb, &a, &k));
}

static void
th_copy_access(void *res, void *arg)
{
	ACCESS3res *r = res;

	if (r->status == NFS3_OK && arg)
		*(uint32_t *)arg = r->ACCESS3res_u.resok.access;
}

int
th_access(struct th_conn *c, const struct th_fh *fh, uint32_t want,
	  uint32_t *granted)
{
	ACCESS3args a = {.object = th_fh3(fh), .access = want};
	struct th_call k = {.copy = th_copy_access, .arg = granted};

	return th_finish(c, &k, rpc_nfs3_access_async(c->rpc, th_cb, &a, &k));
}

struct th_strbuf {
	char *buf;
	size_t size;
};

static void
th_copy_readlink(void *res, void *arg)
{
	READLINK3res *r = res;
	struct th_strbuf *b = arg;

	if (r->status == NFS3_OK && b->buf)
		snprintf(b->buf, b->size, "%s", r->READLINK3res_u.resok.data);
}

int
th_readlink(struct th_conn *c, const struct th_fh *fh, char *buf, size_t bufsz)
{
	READLINK3args a = {.symlink = th_fh3(fh)};
	struct th_strbuf b = {buf, bufsz};
	struct th_call k = {.copy = th_copy_readlink, .arg = &b};

	if (buf && bufsz)
		buf[0] = 0;
	return th_finish(c, &k, rpc_nfs3_readlink_async(c->rpc, th_cb, &a, &k));
}

struct th_readout {
	void *buf;
	uint32_t max;
	uint32_t got;
	bool eof;
};

static void
th_copy_read(void *res, void *arg)
{
	READ3res *r = res;
	struct th_readout *o = arg;
	uint32_t n;

	if (r->status != NFS3_OK)
		return;
	n = r->READ3res_u.resok.data.data_len;
	if (n != r->READ3res_u.resok.count)
		th_diag("READ: count %u but %u data bytes",
			r->READ3res_u.resok.count, n);
	if (n > o->max) {
		th_diag("READ: server returned %u bytes, asked for %u", n,
			o->max);
		n = o->max;
	}
	memcpy(o->buf, r->READ3res_u.resok.data.data_val, n);
	o->got = n;
	o->eof = r->READ3res_u.resok.eof;
}

int
th_read(struct th_conn *c, const struct th_fh *fh, uint64_t off, uint32_t count,
	void *buf, uint32_t *got, bool *eof)
{
	READ3args a = {.file = th_fh3(fh), .offset = off, .count = count};
	struct th_readout o = {buf, count, 0, false};
	struct th_call k = {.copy = th_copy_read, .arg = &o};
	int rc;

	rc = th_finish(c, &k, rpc_nfs3_read_async(c->rpc, th_cb, &a, &k));
	if (got)
		*got = o.got;
	if (eof)
		*eof = o.eof;
	return rc;
}

int
th_write(struct th_conn *c, const struct th_fh *fh, uint64_t off,
	 const void *buf, uint32_t count, stable_how how, WRITE3res *out)
{
	WRITE3args a;
	WRITE3res tmp;

	memset(&a, 0, sizeof a);
	a.file = th_fh3(fh);
	a.offset = off;
	a.count = count;
	a.stable = how;
	a.data.data_len = count;
	a.data.data_val = (char *)buf;
	return TH_FLAT_CALL(c, rpc_nfs3_write_async, &a, out ? out : &tmp);
}

/* CREATE, MKDIR, SYMLINK and MKNOD results share one layout. */
static void
th_copy_made(void *res, void *arg)
{
	CREATE3res *r = res;
	struct th_obj *o = arg;

	if (r->status != NFS3_OK) {
		o->dir_wcc = r->CREATE3res_u.resfail.dir_wcc;
		return;
	}
	th_copy_obj_post(o, &r->CREATE3res_u.resok.obj,
			 &r->CREATE3res_u.resok.obj_attributes);
	o->dir_wcc = r->CREATE3res_u.resok.dir_wcc;
}

_Static_assert(sizeof(CREATE3resok) == sizeof(MKDIR3resok) &&
		       sizeof(CREATE3resok) == sizeof(SYMLINK3resok) &&
		       sizeof(CREATE3resok) == sizeof(MKNOD3resok),
	       "CREATE/MKDIR/SYMLINK/MKNOD results share a layout");

#define TH_MADE_CALL(c, fn, args, out)                                         \
	({                                                                     \
		struct th_obj tmp_;                                            \
		struct th_call k_ = {.copy = th_copy_made,                     \
				     .arg = (out) ? (out) : &tmp_};            \
		memset(k_.arg, 0, sizeof tmp_);                                \
		th_finish((c), &k_, fn((c)->rpc, th_cb, (args), &k_));         \
	})

int
th_create(struct th_conn *c, const struct th_fh *dir, const char *name,
	  createmode3 how, const sattr3 *sa, const uint8_t verf[8],
	  struct th_obj *out)
{
	CREATE3args a = {.where = th_dirop(dir, name), .how.mode = how};

	if (how == EXCLUSIVE)
		memcpy(a.how.createhow3_u.verf, verf, 8);
	else
		a.how.createhow3_u.obj_attributes =
			sa ? *sa : th_sattr_mode(0644);
	return TH_MADE_CALL(c, rpc_nfs3_create_async, &a, out);
}

int
th_mkdir(struct th_conn *c, const struct th_fh *dir, const char *name,
	 const sattr3 *sa, struct th_obj *out)
{
	MKDIR3args a = {.where = th_dirop(dir, name),
			.attributes = sa ? *sa : th_sattr_mode(0755)};

	return TH_MADE_CALL(c, rpc_nfs3_mkdir_async, &a, out);
}

int
th_symlink(struct th_conn *c, const struct th_fh *dir, const char *name,
	   const char *target, struct th_obj *out)
{
	SYMLINK3args a = {.where = th_dirop(dir, name),
			  .symlink.symlink_attributes = th_sattr_mode(0777),
			  .symlink.symlink_data = (char *)target};

	return TH_MADE_CALL(c, rpc_nfs3_symlink_async, &a, out);
}

int
th_mknod(struct th_conn *c, const struct th_fh *dir, const char *name,
	 ftype3 type, uint32_t mode, uint32_t major, uint32_t minor,
	 struct th_obj *out)
{
	MKNOD3args a = {.where = th_dirop(dir, name), .what.type = type};

	switch (type) {
	case NF3CHR:
	case NF3BLK:
		a.what.mknoddata3_u.chr_device.dev_attributes =
			th_sattr_mode(mode);
		a.what.mknoddata3_u.chr_device.spec.specdata1 = major;
		a.what.mknoddata3_u.chr_device.spec.specdata2 = minor;
		break;
	default:
		a.what.mknoddata3_u.sock_attributes = th_sattr_mode(mode);
		break;
	}
	return TH_MADE_CALL(c, rpc_nfs3_mknod_async, &a, out);
}

int
th_remove(struct th_conn *c, const struct th_fh *dir, const char *name)
{
	REMOVE3args a = {.object = th_dirop(dir, name)};
	REMOVE3res r;

	return TH_FLAT_CALL(c, rpc_nfs3_remove_async, &a, &r);
}

int
th_rmdir(struct th_conn *c, const struct th_fh *dir, const char *name)
{
	RMDIR3args a = {.object = th_dirop(dir, name)};
	RMDIR3res r;

	return TH_FLAT_CALL(c, rpc_nfs3_rmdir_async, &a, &r);
}

int
th_rename(struct th_conn *c, const struct th_fh *sdir, const char *sname,
	  const struct th_fh *ddir, const char *dname)
{
	RENAME3args a = {.from = th_dirop(sdir, sname),
			 .to = th_dirop(ddir, dname)};
	RENAME3res r;

	return TH_FLAT_CALL(c, rpc_nfs3_rename_async, &a, &r);
}

int
th_link(struct th_conn *c, const struct th_fh *fh, const struct th_fh *dir,
	const char *name, LINK3res *out)
{
	LINK3args a = {.file = th_fh3(fh), .link = th_dirop(dir, name)};
	LINK3res tmp;

	return TH_FLAT_CALL(c, rpc_nfs3_link_async, &a, out ? out : &tmp);
}

int
th_fsstat(struct th_conn *c, const struct th_fh *fh, FSSTAT3res *out)
{
	FSSTAT3args a = {.fsroot = th_fh3(fh)};

	return TH_FLAT_CALL(c, rpc_nfs3_fsstat_async, &a, out);
}

int
th_fsinfo(struct th_conn *c, const struct th_fh *fh, FSINFO3res *out)
{
	FSINFO3args a = {.fsroot = th_fh3(fh)};

	return TH_FLAT_CALL(c, rpc_nfs3_fsinfo_async, &a, out);
}

int
th_pathconf(struct th_conn *c, const struct th_fh *fh, PATHCONF3res *out)
{
	PATHCONF3args a = {.object = th_fh3(fh)};

	return TH_FLAT_CALL(c, rpc_nfs3_pathconf_async, &a, out);
}

int
th_commit(struct th_conn *c, const struct th_fh *fh, uint64_t off,
	  uint32_t count, COMMIT3res *out)
{
	COMMIT3args a = {.file = th_fh3(fh), .offset = off, .count = count};
	COMMIT3res tmp;

	return TH_FLAT_CALL(c, rpc_nfs3_commit_async, &a, out ? out : &tmp);
}

/* ---- READDIR / READDIRPLUS ------------------------------------------------- */

void
th_dirpage_free(struct th_dirpage *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].name);
	free(p->v);
	memset(p, 0, sizeof *p);
}

static struct th_dirent *
th_dirpage_add(struct th_dirpage *p, uint64_t fileid, const char *name,
	       uint64_t cookie)
{
	struct th_dirent *e;

	p->v = realloc(p->v, (p->n + 1) * sizeof *p->v);
	if (!p->v)
		abort();
	e = &p->v[p->n++];
	memset(e, 0, sizeof *e);
	e->fileid = fileid;
	e->name = strdup(name);
	e->cookie = cookie;
	return e;
}

static void TH_LIBNFS_ALIGN
th_copy_readdir(void *res, void *arg)
{
	READDIR3res *r = res;
	struct th_dirpage *p = arg;

	if (r->status != NFS3_OK)
		return;
	memcpy(p->verf, r->READDIR3res_u.resok.cookieverf, 8);
	p->eof = r->READDIR3res_u.resok.reply.eof;
	for (entry3 *e = r->READDIR3res_u.resok.reply.entries; e;
	     e = e->nextentry)
		th_dirpage_add(p, e->fileid, e->name, e->cookie);
}

static void TH_LIBNFS_ALIGN
th_copy_readdirplus(void *res, void *arg)
{
	READDIRPLUS3res *r = res;
	struct th_dirpage *p = arg;
	struct th_dirent *d;

	if (r->status != NFS3_OK)
		return;
	memcpy(p->verf, r->READDIRPLUS3res_u.resok.cookieverf, 8);
	p->eof = r->READDIRPLUS3res_u.resok.reply.eof;
	for (entryplus3 *e = r->READDIRPLUS3res_u.resok.reply.entries; e;
	     e = e->nextentry) {
		d = th_dirpage_add(p, e->fileid, e->name, e->cookie);
		d->attr_follows = e->name_attributes.attributes_follow;
		if (d->attr_follows)
			d->attr = e->name_attributes.post_op_attr_u.attributes;
		d->fh_follows = e->name_handle.handle_follows;
		if (d->fh_follows)
			th_fh_from(&d->fh,
				   &e->name_handle.post_op_fh3_u.handle);
	}
}

int
th_readdir(struct th_conn *c, const struct th_fh *dir, uint64_t cookie,
	   const uint8_t verf[8], uint32_t count, struct th_dirpage *out)
{
	READDIR3args a = {.dir = th_fh3(dir), .cookie = cookie, .count = count};
	struct th_call k = {.copy = th_copy_readdir, .arg = out};

	memset(out, 0, sizeof *out);
	if (verf)
		memcpy(a.cookieverf, verf, 8);
	return th_finish(c, &k, rpc_nfs3_readdir_async(c->rpc, th_cb, &a, &k));
}

int
th_readdirplus(struct th_conn *c, const struct th_fh *dir, uint64_t cookie,
	       const uint8_t verf[8], uint32_t dircount, uint32_t maxcount,
	       struct th_dirpage *out)
{
	READDIRPLUS3args a = {.dir = th_fh3(dir),
			      .cookie = cookie,
			      .dircount = dircount,
			      .maxcount = maxcount};
	struct th_call k = {.copy = th_copy_readdirplus, .arg = out};

	memset(out, 0, sizeof *out);
	if (verf)
		memcpy(a.cookieverf, verf, 8);
	return th_finish(c, &k,
			 rpc_nfs3_readdirplus_async(c->rpc, th_cb, &a, &k));
}

/* ---- many calls in flight --------------------------------------------------- */

struct th_bulk {
	int inflight;
	uint64_t failed;
	int first_err;
	uint64_t last_ms; /* when the last reply came */
};

static void
th_bulk_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct th_bulk *b = priv;
	int st = status == RPC_STATUS_SUCCESS ? *(int *)data : -1;

	th_progress();
	b->last_ms = th_now_ms();
	b->inflight--;
	if (st != NFS3_OK) {
		if (!b->failed)
			b->first_err = st;
		b->failed++;
	}
}

int
th_bulk_create(struct th_conn *c, const struct th_fh *dir, const char *prefix,
	       int width, uint64_t first, uint64_t n, int depth,
	       uint64_t *failed)
{
	struct th_bulk b = {.last_ms = th_now_ms()};
	uint64_t i = 0;
	char name[256];
	CREATE3args a;

	while (i < n || b.inflight > 0) {
		while (i < n && b.inflight < depth) {
			memset(&a, 0, sizeof a);
			a.where.dir = th_fh3(dir);
			snprintf(name, sizeof name, "%s%0*llu", prefix, width,
				 (unsigned long long)(first + i));
			a.where.name = name;
			a.how.mode = GUARDED;
			a.how.createhow3_u.obj_attributes = th_sattr_mode(0644);
			/* libnfs encodes the arguments right here. */
			if (rpc_nfs3_create_async(c->rpc, th_bulk_cb, &a, &b) !=
			    0) {
				th_diag("bulk CREATE: %s",
					rpc_get_error(c->rpc));
				return -1;
			}
			b.inflight++;
			i++;
		}
		/* No limit on the whole run, only on a stall. */
		if (th_service(c, 1000) < 0 ||
		    th_now_ms() - b.last_ms > TH_STALL_MS) {
			th_diag("bulk CREATE: connection lost, or no reply "
				"for %d s",
				TH_STALL_MS / 1000);
			return -1;
		}
	}
	if (failed)
		*failed = b.failed;
	return b.failed ? b.first_err : 0;
}

/* ---- utilities ---------------------------------------------------------- */

uint64_t
th_rand(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ULL;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

void
th_fill(uint64_t seed, void *buf, size_t len)
{
	uint8_t *p = buf;
	uint64_t st = seed * 0x9e3779b97f4a7c15ULL + 1, v;

	while (len >= 8) {
		v = th_rand(&st);
		memcpy(p, &v, 8);
		p += 8;
		len -= 8;
	}
	v = th_rand(&st);
	memcpy(p, &v, len);
}

uint64_t
th_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
th_fattr_is(const fattr3 *a, ftype3 type)
{
	return a->type == type;
}

void
th_store_faults(const char *ctl, const char *spec)
{
	char tmp[PATH_MAX];
	FILE *f;

	if (spec == NULL) {
		TH_REQUIRE(unlink(ctl) == 0, "store faults off");
		return;
	}
	snprintf(tmp, sizeof tmp, "%s.tmp", ctl);
	f = fopen(tmp, "w");
	TH_REQUIRE(f != NULL && fputs(spec, f) >= 0 && fclose(f) == 0 &&
			   rename(tmp, ctl) == 0,
		   "store faults: %s", spec);
}

void
th_server_fault_store(struct th_server *s, const char *spec, char *ctl,
		      size_t len)
{
	snprintf(ctl, len, "%s/fault.ctl", s->dir);
	th_server_stop(s, false);
	TH_REQUIRE(th_tessera(s, "config %s --storage 'fault(ctl=%s):%s'",
			      s->meta_url, ctl, s->storage_url) == 0,
		   "storage behind the fault wrapper");
	if (spec != NULL)
		th_store_faults(ctl, spec);
}
