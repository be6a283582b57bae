/*
 * log.c - one logging function with level and subsystem.
 *
 * Lines go to stderr ("2026-11-22T10:00:00.123Z notice nfsd: ...") or to
 * syslog.  A single write(2) per line keeps lines from different threads
 * whole without a lock.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "lib/tl.h"

static enum tl_log_level log_level = TL_LOG_NOTICE;
static bool log_syslog;

static const char *const level_names[] = {
	[TL_LOG_ERR] = "err",	    [TL_LOG_WARN] = "warn",
	[TL_LOG_NOTICE] = "notice", [TL_LOG_INFO] = "info",
	[TL_LOG_DEBUG] = "debug",
};

static const int level_prio[] = {
	[TL_LOG_ERR] = LOG_ERR,	      [TL_LOG_WARN] = LOG_WARNING,
	[TL_LOG_NOTICE] = LOG_NOTICE, [TL_LOG_INFO] = LOG_INFO,
	[TL_LOG_DEBUG] = LOG_DEBUG,
};

void
tl_log_init(enum tl_log_level level, bool use_syslog, const char *ident)
{
	log_level = level;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
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
	char line[2048];
	int saved = errno;
	size_t n = 0;

	if (!tl_log_enabled(level))
		return;
	if (log_syslog) {
		n = (size_t)snprintf(line, sizeof(line), "%s: ", subsys);
		vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		syslog(level_prio[level], "%s", line);
		errno = saved;
		return;
	}

	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %s: ",
			      ts.tv_nsec / 1000000, level_names[level], subsys);
	int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += (size_t)m;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0) {
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
