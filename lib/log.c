/*
 * log.c - one logging function with level and subsystem.
 *
 * Lines go to stderr ("2026-11-22T10:00:00.123Z notice nfsd: ..."), to a
 * file in the same format, or to syslog.  A single write(2) per line keeps
 * lines from different threads whole without a lock.  The file is
 * reopened by dup2 over the same descriptor, so a writer never sees it
 * closed.
 *
 * When stderr is systemd's journal (JOURNAL_STREAM names its device and
 * inode, as systemd sets it for a service's stdout/stderr), lines written
 * there are "<N>subsystem: ..." with N the syslog priority instead of a
 * timestamp and a level name: the journal stamps each line itself, and
 * the prefix gives it its priority, so `journalctl -p warning` works.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "lib/tl.h"

static enum tl_log_level log_level = TL_LOG_NOTICE;
static bool log_syslog;
static int log_fd = STDERR_FILENO; /* stderr, or the log file */
static char *log_path;             /* the log file, or NULL */
static bool log_tee;               /* a file's lines to stderr too */
static bool log_journal;           /* stderr is the journal */

static const char *const level_names[] = {
	[TL_LOG_ERR] = "err",       [TL_LOG_WARN] = "warn",
	[TL_LOG_NOTICE] = "notice", [TL_LOG_INFO] = "info",
	[TL_LOG_DEBUG] = "debug",
};

static const int level_prio[] = {
	[TL_LOG_ERR] = LOG_ERR,       [TL_LOG_WARN] = LOG_WARNING,
	[TL_LOG_NOTICE] = LOG_NOTICE, [TL_LOG_INFO] = LOG_INFO,
	[TL_LOG_DEBUG] = LOG_DEBUG,
};

/* Is stderr the stream JOURNAL_STREAM ("DEV:INODE") names? */
static bool
stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void
tl_log_init(enum tl_log_level level, bool use_syslog, const char *ident)
{
	log_journal = stderr_is_journal();
	log_level = level;
	log_syslog = use_syslog;
	if (use_syslog && log_path != NULL) {
		close(log_fd);
		log_fd = STDERR_FILENO;
		free(log_path);
		log_path = NULL;
	}
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

static int
open_log(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	return fd < 0 ? -errno : fd;
}

int
tl_log_open_file(const char *path, char **err)
{
	int fd = open_log(path);

	if (fd < 0) {
		if (err)
			*err = tl_asprintf("log file %s: %s", path,
					   strerror(-fd));
		return fd;
	}
	if (log_path != NULL) {
		dup2(fd, log_fd);
		close(fd);
	} else {
		log_fd = fd;
	}
	free(log_path);
	log_path = tl_strdup(path);
	log_syslog = false;
	return 0;
}

int
tl_log_reopen(void)
{
	int fd, rc;

	if (log_path == NULL)
		return 0;
	fd = open_log(log_path);
	if (fd < 0)
		return fd;
	rc = dup2(fd, log_fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

bool
tl_log_syslog_available(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	static const int types[] = {SOCK_DGRAM, SOCK_STREAM};
	bool ok = false;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", "/dev/log");
	for (size_t i = 0; i < TL_ARRAY_SIZE(types) && !ok; i++) {
		int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);

		if (fd < 0)
			continue;
		ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
	}
	return ok;
}

void
tl_log_tee_stderr(bool on)
{
	log_tee = on;
}

const char *
tl_log_where(void)
{
	if (log_syslog)
		return "syslog";
	return log_path ? log_path : "standard error";
}

void
tl_log_set_level(enum tl_log_level level)
{
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

enum tl_log_level
tl_log_get_level(void)
{
	return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

bool
tl_log_enabled(enum tl_log_level level)
{
	return level <= tl_log_get_level();
}

int
tl_log_parse_level(const char *s, enum tl_log_level *out)
{
	for (size_t i = 0; i < TL_ARRAY_SIZE(level_names); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum tl_log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "error") == 0) {
		*out = TL_LOG_ERR;
		return 0;
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = TL_LOG_WARN;
		return 0;
	}
	return -EINVAL;
}

void
tl_vlog(enum tl_log_level level, const char *subsys, const char *fmt,
	va_list ap)
{
	char msg[2048], line[2048 + 64];
	int saved = errno;
	size_t n = 0, jn = 0;

	if (!tl_log_enabled(level))
		return;
	n = (size_t)snprintf(msg, sizeof(msg), "%s: ", subsys);
	vsnprintf(msg + n, sizeof(msg) - n, fmt, ap);
	if (log_syslog) {
		syslog(level_prio[level], "%s", msg);
		errno = saved;
		return;
	}

	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %s\n",
			      ts.tv_nsec / 1000000, level_names[level], msg);
	if (n > sizeof(line) - 1)
		n = sizeof(line) - 1;
	line[n - 1] = '\n';
	if (log_journal && (log_fd == STDERR_FILENO || log_tee)) {
		char jline[sizeof(msg) + 8];

		jn = (size_t)snprintf(jline, sizeof(jline), "<%d>%s\n",
				      level_prio[level], msg);
		if (jn > sizeof(jline) - 1)
			jn = sizeof(jline) - 1;
		jline[jn - 1] = '\n';
		if (write(STDERR_FILENO, jline, jn) < 0) {
			/* Nowhere left to report it. */
		}
	} else if (log_tee && log_fd != STDERR_FILENO &&
		   write(STDERR_FILENO, line, n) < 0) {
		/* The terminal is gone: the file still has it. */
	}
	if ((log_fd != STDERR_FILENO || !log_journal) &&
	    write(log_fd, line, n) < 0) {
		/* Nowhere left to report a failing stderr. */
	}
	errno = saved;
}

void
tl_log(enum tl_log_level level, const char *subsys, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tl_vlog(level, subsys, fmt, ap);
	va_end(ap);
}
