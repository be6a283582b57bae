/*
 * util.c - time, randomness, growable buffers and parsing helpers.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/tl.h"

uint64_t
tl_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t
tl_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int
tl_io_full(int fd, void *p, size_t n, int how)
{
	uint8_t *b = p;

	while (n > 0) {
		ssize_t r = how == TL_IO_READ    ? read(fd, b, n)
			    : how == TL_IO_WRITE ? write(fd, b, n)
						 : send(fd, b, n, MSG_NOSIGNAL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r == 0 ? -ECONNRESET : -errno;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

int
tl_fsync_dir_at(int dirfd, const char *path)
{
	int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

void
tl_deadline_ms(clockid_t clk, uint64_t ms, struct timespec *ts)
{
	clock_gettime(clk, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

void
tl_random_bytes(void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* The kernel's CSPRNG does not fail once seeded. */
			abort();
		}
		p += r;
		n -= (size_t)r;
	}
}

uint64_t
tl_random_u64(void)
{
	uint64_t v;
	tl_random_bytes(&v, sizeof(v));
	return v;
}

/* ---- tl_buf ------------------------------------------------------------- */

void
tl_buf_reserve(struct tl_buf *b, size_t extra)
{
	if (b->len + extra <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + extra)
		cap *= 2;
	b->data = tl_realloc(b->data, cap);
	b->cap = cap;
}

void
tl_buf_append(struct tl_buf *b, const void *p, size_t n)
{
	tl_buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

void
tl_buf_append_be32(struct tl_buf *b, uint32_t v)
{
	tl_buf_reserve(b, 4);
	tl_put_be32(b->data + b->len, v);
	b->len += 4;
}

void
tl_buf_append_be64(struct tl_buf *b, uint64_t v)
{
	tl_buf_reserve(b, 8);
	tl_put_be64(b->data + b->len, v);
	b->len += 8;
}

void
tl_buf_vprintf(struct tl_buf *b, const char *fmt, va_list ap)
{
	va_list aq;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n <= 0)
		return;
	tl_buf_reserve(b, (size_t)n + 1);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void
tl_buf_printf(struct tl_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tl_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void
tl_buf_reset(struct tl_buf *b)
{
	b->len = 0;
}

void
tl_buf_free(struct tl_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* ---- parsing ------------------------------------------------------------ */

/* The decimal number s starts with (a digit first: no sign, no space);
 * *end is what follows it. */
static int
leading_number(const char *s, unsigned long long *v, char **end)
{
	if (s == NULL || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, end, 10);
	return errno == ERANGE ? -ERANGE : 0;
}

int
tl_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;
	int rc = leading_number(s, &v, &end);

	if (rc != 0)
		return rc;
	if (*end != '\0')
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int
tl_parse_size(const char *s, uint64_t *out)
{
	static const struct {
		char c;
		unsigned shift;
	} units[] = {{'k', 10}, {'m', 20}, {'g', 30}, {'t', 40}, {'p', 50}};
	unsigned long long v;
	char *end;
	unsigned shift = 0;
	int rc = leading_number(s, &v, &end);

	if (rc != 0)
		return rc;
	for (size_t i = 0; i < TL_ARRAY_SIZE(units); i++) {
		if (tolower((unsigned char)*end) == units[i].c) {
			shift = units[i].shift;
			end++;
			break;
		}
	}
	/* Accept "4M", "4MB", "4MiB", "4096B" and "4096". */
	if (*end != '\0' && strcasecmp(end, "b") != 0 &&
	    !(shift && strcasecmp(end, "ib") == 0))
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

int
tl_parse_duration_ms(const char *s, uint64_t *out)
{
	unsigned long long v;
	uint64_t mul;
	char *end;
	int rc = leading_number(s, &v, &end);

	if (rc != 0)
		return rc;
	if (*end == '\0' || strcmp(end, "s") == 0)
		mul = 1000;
	else if (strcmp(end, "ms") == 0)
		mul = 1;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		mul = 60 * 1000;
	else if (strcmp(end, "h") == 0)
		mul = 3600 * 1000;
	else if (strcmp(end, "d") == 0)
		mul = 86400 * 1000;
	else
		return -EINVAL;
	if (v > UINT64_MAX / mul)
		return -ERANGE;
	*out = v * mul;
	return 0;
}

int
tl_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};

	for (size_t i = 0; i < TL_ARRAY_SIZE(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

char *
tl_fmt_size(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = {"B",   "KiB", "MiB", "GiB",
					    "TiB", "PiB", "EiB"};
	double d = (double)v;
	size_t u = 0;

	while (d >= 1024 && u + 1 < TL_ARRAY_SIZE(units)) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)v);
	else
		snprintf(buf, len, "%.1f %s", d, units[u]);
	return buf;
}
