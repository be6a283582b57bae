/* lib: parsing helpers, buffers, thread pool and the configuration table. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/tl.h"
#include "t/unit/tap.h"

static void
test_parse_size(void)
{
	uint64_t v = 0;

	CHECK(tl_parse_size("4M", &v) == 0 && v == 4u << 20, "4M is 4 MiB");
	CHECK(tl_parse_size("64k", &v) == 0 && v == 65536, "64k");
	CHECK(tl_parse_size("1GiB", &v) == 0 && v == 1u << 30, "1GiB");
	CHECK(tl_parse_size("2GB", &v) == 0 && v == 2ull << 30, "2GB");
	CHECK(tl_parse_size("123", &v) == 0 && v == 123, "plain bytes");
	CHECK(tl_parse_size("123B", &v) == 0 && v == 123, "bytes with B");
	CHECK(tl_parse_size("", &v) == -EINVAL, "empty refused");
	CHECK(tl_parse_size("4X", &v) == -EINVAL, "unknown suffix refused");
	CHECK(tl_parse_size("-1", &v) == -EINVAL, "negative refused");
	CHECK(tl_parse_size("99999999999P", &v) == -ERANGE, "overflow");
}

static void
test_parse_misc(void)
{
	uint64_t v = 0;
	bool b = false;

	CHECK(tl_parse_u64("42", 1, 100, &v) == 0 && v == 42, "u64 in range");
	CHECK(tl_parse_u64("0", 1, 100, &v) == -ERANGE, "u64 below min");
	CHECK(tl_parse_u64("4x", 0, 100, &v) == -EINVAL, "u64 garbage");
	CHECK(tl_parse_duration_ms("30s", &v) == 0 && v == 30000, "30s");
	CHECK(tl_parse_duration_ms("250ms", &v) == 0 && v == 250, "250ms");
	CHECK(tl_parse_duration_ms("2h", &v) == 0 && v == 7200000, "2h");
	CHECK(tl_parse_duration_ms("5", &v) == 0 && v == 5000, "bare secs");
	CHECK(tl_parse_duration_ms("5y", &v) == -EINVAL, "bad unit");
	CHECK(tl_parse_bool("on", &b) == 0 && b, "on");
	CHECK(tl_parse_bool("No", &b) == 0 && !b, "No");
	CHECK(tl_parse_bool("maybe", &b) == -EINVAL, "maybe refused");
}

struct settings {
	bool flag;
	uint64_t workers;
	uint64_t limit;
	uint64_t idle;
	char *listen;
};

static const struct tl_conf_opt opts[] = {
	{"flag", TL_CONF_BOOL, "no", 0, 0, true, "a flag",
	 offsetof(struct settings, flag)},
	{"workers", TL_CONF_U64, "8", 1, 1024, false, "threads",
	 offsetof(struct settings, workers)},
	{"limit", TL_CONF_SIZE, "256M", 0, 0, true, "bytes",
	 offsetof(struct settings, limit)},
	{"idle", TL_CONF_DURATION, "5m", 0, 0, true, "timeout",
	 offsetof(struct settings, idle)},
	{"listen", TL_CONF_STRING, "0.0.0.0:2049", 0, 0, false, "address",
	 offsetof(struct settings, listen)},
};

static void
test_conf(void)
{
	struct settings s;
	char path[] = "/tmp/tl-conf-XXXXXX";
	char *err = NULL;
	int fd;

	tl_conf_defaults(opts, TL_ARRAY_SIZE(opts), &s);
	CHECK(!s.flag && s.workers == 8 && s.limit == 256u << 20 &&
		      s.idle == 300000 && strcmp(s.listen, "0.0.0.0:2049") == 0,
	      "defaults applied");

	fd = mkstemp(path);
	CHECK_FATAL(fd >= 0, "temp file");
	const char good[] = "# comment\n\nflag = yes\nworkers=16 # trailing\n"
			    "listen = 127.0.0.1:2050\n";
	CHECK_FATAL(write(fd, good, sizeof(good) - 1) > 0, "write conf");
	close(fd);
	CHECK(tl_conf_load(opts, TL_ARRAY_SIZE(opts), &s, path, &err) == 0,
	      "valid file loads");
	CHECK(s.flag && s.workers == 16 &&
		      strcmp(s.listen, "127.0.0.1:2050") == 0,
	      "file values applied");

	CHECK(tl_conf_set(opts, TL_ARRAY_SIZE(opts), &s, "workers", "0",
			  &err) == -ERANGE,
	      "out of range refused");
	CHECK(err && strstr(err, "out of range"), "range message: %s",
	      err ? err : "(none)");
	free(err);
	err = NULL;
	CHECK(s.workers == 16, "refused value leaves setting unchanged");
	CHECK(tl_conf_set(opts, TL_ARRAY_SIZE(opts), &s, "nope", "1", &err) ==
		      -ENOENT,
	      "unknown option refused");
	free(err);
	err = NULL;

	fd = open(path, O_WRONLY | O_TRUNC);
	const char bad[] = "flag = yes\nworkers\n";
	CHECK_FATAL(write(fd, bad, sizeof(bad) - 1) > 0, "write bad conf");
	close(fd);
	CHECK(tl_conf_load(opts, TL_ARRAY_SIZE(opts), &s, path, &err) ==
		      -EINVAL,
	      "line without '=' refused");
	CHECK(err && strstr(err, ":2:"), "error names the line: %s",
	      err ? err : "(none)");
	free(err);
	unlink(path);
	tl_conf_free(opts, TL_ARRAY_SIZE(opts), &s);
}

static void
add_one(void *arg)
{
	__atomic_add_fetch((int *)arg, 1, __ATOMIC_SEQ_CST);
}

static void
test_pool(void)
{
	int counter = 0;
	struct tl_pool *p = tl_pool_create("test", 4, 8);

	for (int i = 0; i < 1000; i++)
		tl_pool_submit(p, add_one, &counter);
	tl_pool_destroy(p);
	CHECK_EQ(counter, 1000, "pool ran every job before destroy returned");
}

static void
test_buf(void)
{
	struct tl_buf b = TL_BUF_INIT;

	for (int i = 0; i < 1000; i++)
		tl_buf_append_be32(&b, (uint32_t)i);
	CHECK_EQ(b.len, 4000, "buffer grows");
	CHECK_EQ(tl_get_be32(b.data + 4 * 999), 999, "big-endian round trip");
	tl_buf_append_be64(&b, 0x0102030405060708ull);
	CHECK(b.data[4000] == 1 && b.data[4007] == 8, "be64 byte order");
	tl_buf_free(&b);
}

/* Whole reads and writes through a pipe and a socket pair, larger than
 * the pipe's buffer (so they take several calls); the end of the other
 * side is -ECONNRESET, a closed socket's peer no SIGPIPE. */
static void
test_io_full(void)
{
	enum { N = 1 << 20 };
	uint8_t *a = malloc(N), *b = malloc(N);
	int pfd[2], sv[2], st = 0;
	pid_t pid;

	for (size_t i = 0; i < N; i++)
		a[i] = (uint8_t)(i * 31 + 7);
	CHECK(pipe(pfd) == 0 && socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0,
	      "a pipe and a socket pair");
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		close(sv[0]);
		_exit(tl_io_full(pfd[1], a, N, TL_IO_WRITE) == 0 &&
				      tl_io_full(sv[1], a, N, TL_IO_SEND) == 0
			      ? 0
			      : 1);
	}
	close(pfd[1]);
	close(sv[1]);
	CHECK(tl_io_full(pfd[0], b, N, TL_IO_READ) == 0 && memcmp(a, b, N) == 0,
	      "1 MiB written whole through a pipe, read whole");
	memset(b, 0, N);
	CHECK(tl_io_full(sv[0], b, N, TL_IO_READ) == 0 && memcmp(a, b, N) == 0,
	      "1 MiB sent whole through a socket, read whole");
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the writer saw no error");
	CHECK_EQ(tl_io_full(pfd[0], b, 1, TL_IO_READ), -ECONNRESET,
		 "a read past the writer's end: -ECONNRESET");
	CHECK_EQ(tl_io_full(sv[0], a, 1, TL_IO_SEND), -EPIPE,
		 "a send to a closed peer: -EPIPE, no SIGPIPE");
	close(pfd[0]);
	close(sv[0]);
	free(a);
	free(b);
	CHECK_EQ(tl_fsync_dir_at(AT_FDCWD, "."), 0,
		 "tl_fsync_dir_at of a directory");
	CHECK_EQ(tl_fsync_dir_at(AT_FDCWD, "no-such-dir"), -ENOENT,
		 "tl_fsync_dir_at of none: -ENOENT");
}

int
main(void)
{
	test_parse_size();
	test_parse_misc();
	test_conf();
	test_pool();
	test_buf();
	test_io_full();
	return tap_done();
}
