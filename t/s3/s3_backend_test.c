/*
 * s3_backend_test.c - the s3:// backend against a real S3 server (Ceph
 * radosgw, started by t/s3/s3-test.sh), which verifies every signature.
 *
 * Environment: S3_ENDPOINT (default http://127.0.0.1:7480), S3_ACCESS_KEY
 * and S3_SECRET_KEY (default TESSERAKEY / TESSERASECRET).  Exit 77 (skip)
 * when nothing answers at the endpoint.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/tl.h"
#include "objstore/objstore.h"
#include "t/unit/tap.h"

static const char *endpoint, *ak, *sk;
static char tmpdir[64], bucket[64], *creds, *base_url;

static const char *
env_or(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : def;
}

static char *
write_file(const char *name, const char *text)
{
	char *p = tl_asprintf("%s/%s", tmpdir, name);
	FILE *f = fopen(p, "w");

	CHECK_FATAL(f != NULL, "create %s", p);
	fputs(text, f);
	fclose(f);
	chmod(p, 0600);
	return p;
}

/* Collect what the library logs to stderr between start and stop. */
static int saved_fd = -1;
static char *cap_path;

static void
capture_start(void)
{
	int fd;

	cap_path = tl_asprintf("%s/stderr", tmpdir);
	fd = open(cap_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	saved_fd = dup(2);
	dup2(fd, 2);
	close(fd);
}

static char *
capture_stop(void)
{
	struct tl_buf b = TL_BUF_INIT;
	char chunk[4096];
	ssize_t n;
	int fd;

	dup2(saved_fd, 2);
	close(saved_fd);
	fd = open(cap_path, O_RDONLY);
	while (fd >= 0 && (n = read(fd, chunk, sizeof(chunk))) > 0)
		tl_buf_append(&b, chunk, (size_t)n);
	if (fd >= 0)
		close(fd);
	tl_buf_append(&b, "", 1);
	free(cap_path);
	fputs((char *)b.data, stderr); /* still shown in the test log */
	return (char *)b.data;
}

static struct os_store *
open_url(const char *url)
{
	struct os_store *s = NULL;
	char *err = NULL;
	int rc = os_open(url, &s, &err);

	CHECK(rc == 0, "open %s (%s)", url, err ? err : "ok");
	free(err);
	return s;
}

static void
test_basic(struct os_store *s)
{
	static const char *odd = "odd/a b+c&d=e%f~\xc3\xa9$'(x)";
	uint8_t *big = tl_malloc(5 << 20), *out = tl_malloc(5 << 20);
	uint64_t size = 0;
	size_t i, got;

	CHECK_EQ(os_put(s, "k/one", "hello world", 11), 0, "put");
	CHECK(os_get(s, "k/one", 0, 100, out, &got) == 0 && got == 11 &&
		      memcmp(out, "hello world", 11) == 0,
	      "get whole (short read at the end)");
	CHECK(os_get(s, "k/one", 6, 3, out, &got) == 0 && got == 3 &&
		      memcmp(out, "wor", 3) == 0,
	      "range get");
	CHECK(os_get(s, "k/one", 11, 5, out, &got) == 0 && got == 0,
	      "get at the end is empty");
	CHECK_EQ(os_get(s, "k/one", 12, 5, out, &got), -ERANGE,
		 "get past the end -> ERANGE");
	CHECK(os_head(s, "k/one", &size) == 0 && size == 11, "head size");
	CHECK_EQ(os_head(s, "k/none", &size), -ENOENT, "head missing");
	CHECK_EQ(os_get(s, "k/none", 0, 1, out, &got), -ENOENT, "get missing");
	CHECK_EQ(os_put(s, "k/empty", "", 0), 0, "put empty");
	CHECK(os_get(s, "k/empty", 0, 10, out, &got) == 0 && got == 0,
	      "get empty");
	CHECK(os_head(s, "k/empty", &size) == 0 && size == 0, "head empty");

	CHECK_EQ(os_put(s, odd, "odd", 3), 0, "put odd key");
	CHECK(os_get(s, odd, 0, 3, out, &got) == 0 && got == 3, "get odd key");

	for (i = 0; i < (5u << 20); i++)
		big[i] = (uint8_t)(i * 7 + i / 4096);
	CHECK_EQ(os_put(s, "k/big", big, 5 << 20), 0, "put 5 MiB");
	CHECK(os_get(s, "k/big", 0, 5 << 20, out, &got) == 0 &&
		      got == (5u << 20) && memcmp(big, out, 5 << 20) == 0,
	      "get 5 MiB");
	CHECK(os_get(s, "k/big", 3 << 20, 4096, out, &got) == 0 &&
		      got == 4096 && memcmp(big + (3 << 20), out, 4096) == 0,
	      "range get in the middle");

	CHECK_EQ(os_delete(s, "k/one"), 0, "delete");
	CHECK_EQ(os_head(s, "k/one", &size), -ENOENT, "deleted");
	CHECK_EQ(os_delete(s, "k/one"), 0, "delete missing is fine");
	free(big);
	free(out);
}

struct listed {
	int n;
	char last[256];
	bool ordered;
	bool saw_odd;
};

static int
collect(void *arg, const char *key, uint64_t size)
{
	struct listed *l = arg;

	(void)size;
	if (l->n > 0 && strcmp(l->last, key) >= 0)
		l->ordered = false;
	if (strstr(key, "b+c&d=e") != NULL)
		l->saw_odd = true;
	snprintf(l->last, sizeof(l->last), "%s", key);
	l->n++;
	return 0;
}

static int
stop_at_5(void *arg, const char *key, uint64_t size)
{
	int *n = arg;

	(void)key;
	(void)size;
	return ++*n == 5 ? 42 : 0;
}

static void
test_list(struct os_store *s)
{
	struct listed l = {0, "", true, false};
	char key[64];
	int i, n = 0;

	/* list_page=7 in the URL: 45 keys take 7 pages */
	for (i = 0; i < 45; i++) {
		snprintf(key, sizeof(key), "many/%03d", i);
		if (os_put(s, key, key, strlen(key)) != 0)
			break;
	}
	CHECK_EQ(i, 45, "45 puts");
	CHECK_EQ(os_list(s, "many/", NULL, collect, &l), 0, "list");
	CHECK(l.n == 45 && l.ordered && strcmp(l.last, "many/044") == 0,
	      "45 keys in order across pages (%d)", l.n);
	l = (struct listed){0, "", true, false};
	CHECK_EQ(os_list(s, "many/", "many/039", collect, &l), 0, "list after");
	CHECK_EQ(l.n, 5, "start_after");
	CHECK_EQ(os_list(s, "many/", NULL, stop_at_5, &n), 42,
		 "callback stops the listing");
	l = (struct listed){0, "", true, false};
	CHECK_EQ(os_list(s, "", NULL, collect, &l), 0, "list all");
	CHECK(l.saw_odd, "escaped key comes back decoded");
	l = (struct listed){0, "", true, false};
	CHECK_EQ(os_list(s, "nothing/", NULL, collect, &l), 0, "empty list");
	CHECK_EQ(l.n, 0, "nothing");
}

static void
test_refusals(void)
{
	char *bad = write_file("bad-creds", "");
	struct os_store *s;
	char *url, *log, *err = NULL;
	int rc;

	free(bad);
	bad = tl_asprintf("%s\nWRONG-%s\n", ak, sk);
	free(bad);
	bad = write_file("bad-creds", "access_key = TESSERAKEY\n"
				      "secret_key = not-the-secret-XYZ\n");
	url = tl_asprintf("s3://%s?endpoint=%s&credentials=%s&attempts=2",
			  bucket, endpoint, bad);
	s = open_url(url);
	if (s != NULL) {
		capture_start();
		rc = os_put(s, "k/x", "x", 1);
		log = capture_stop();
		CHECK_EQ(rc, -EACCES, "wrong secret -> EACCES");
		CHECK(strstr(log, "SignatureDoesNotMatch") != NULL &&
			      strstr(log, "secret access key is wrong"),
		      "the log says why");
		CHECK(strstr(log, "not-the-secret") == NULL,
		      "the secret is not logged");
		free(log);
		os_close(s);
	}
	free(url);

	url = tl_asprintf("s3://tessera-no-such-bucket-%d?endpoint=%s&"
			  "credentials=%s",
			  (int)getpid(), endpoint, creds);
	s = open_url(url);
	if (s != NULL) {
		capture_start();
		rc = os_put(s, "k/x", "x", 1);
		log = capture_stop();
		CHECK(rc == -EIO || rc == -ENOENT, "missing bucket fails (%d)",
		      rc);
		CHECK(strstr(log, "NoSuchBucket") != NULL,
		      "the log names NoSuchBucket");
		free(log);
		os_close(s);
	}
	free(url);

	CHECK(os_open("s3://b?endpoint=http://x&secret_key=abc", &s, &err) ==
			      -EINVAL &&
		      err && strstr(err, "not accepted in the URL"),
	      "credentials in the URL refused: %s", err ? err : "");
	free(err);
	err = NULL;
	CHECK(os_open("s3://b?endpoint=http://x&credentials=/nonexistent", &s,
		      &err) < 0 &&
		      err && strstr(err, "/nonexistent"),
	      "missing credentials file named: %s", err ? err : "");
	free(err);
	err = NULL;
	url = tl_asprintf("s3://b?endpoint=http://x&credentials=%s&"
			  "unsigned_payload=1",
			  creds);
	CHECK_EQ(os_open(url, &s, &err), -EINVAL,
		 "UNSIGNED-PAYLOAD refused over http");
	free(err);
	err = NULL;
	free(url);
	url = tl_asprintf("s3://b?endpoint=http://x&credentials=%s&colour=1",
			  creds);
	CHECK_EQ(os_open(url, &s, &err), -EINVAL, "unknown option refused");
	free(err);
	free(url);
	err = NULL;

	/* nothing listening: connection errors are retried, then EIO */
	url = tl_asprintf("s3://%s?endpoint=http://127.0.0.1:1&credentials=%s"
			  "&attempts=3&retry_base=1ms",
			  bucket, creds);
	s = open_url(url);
	if (s != NULL) {
		CHECK_EQ(os_put(s, "k/x", "x", 1), -EIO,
			 "unreachable endpoint -> EIO");
		os_close(s);
	}
	free(url);
	free(bad);
}

static void
test_fault_retry(void)
{
	char *url = tl_asprintf("retry(attempts=12,base=1ms,cap=4ms):"
				"fault(err=0.3,seed=11):%s",
				base_url);
	struct os_fault_stats st;
	struct os_retry_stats rs;
	struct os_store *s = open_url(url);
	char key[32], buf[32];
	int i, bad = 0;
	size_t got;

	if (s == NULL)
		goto out;
	for (i = 0; i < 30; i++) {
		snprintf(key, sizeof(key), "retry/%d", i);
		bad += os_put(s, key, key, strlen(key)) != 0;
		bad += os_get(s, key, 0, sizeof(buf), buf, &got) != 0 ||
		       got != strlen(key) || memcmp(buf, key, got) != 0;
	}
	CHECK_EQ(bad, 0, "every operation succeeds through injected faults");
	CHECK(os_fault_stats(s, &st) == 0 && os_retry_stats(s, &rs) == 0 &&
		      st.injected[OS_OP_PUT] + st.injected[OS_OP_GET] ==
			      rs.retries &&
		      rs.retries > 5,
	      "faults were injected and retried (%llu)",
	      (unsigned long long)rs.retries);
	os_close(s);
out:
	free(url);
}

static void
test_stacked(void)
{
	char *kf = write_file("vol.key", "00112233445566778899aabbccddeeff"
					 "00112233445566778899aabbccddeeff\n");
	char *url = tl_asprintf("zstd:crypt(key_file=%s):%s", kf, base_url);
	struct os_store *s = open_url(url), *raw = open_url(base_url);
	static uint8_t data[1 << 20], out[1 << 20];
	size_t got;

	if (s == NULL || raw == NULL)
		goto out;
	memset(data, 'a', sizeof(data));
	memcpy(data + 1000, "secret words", 12);
	CHECK_EQ(os_put(s, "enc/a", data, sizeof(data)), 0, "put zstd+crypt");
	CHECK(os_get(s, "enc/a", 0, sizeof(out), out, &got) == 0 &&
		      got == sizeof(data) && memcmp(out, data, got) == 0,
	      "get zstd+crypt");
	CHECK(os_get(s, "enc/a", 1000, 12, out, &got) == 0 && got == 12 &&
		      memcmp(out, "secret words", 12) == 0,
	      "range zstd+crypt");
	CHECK(os_get(raw, "enc/a", 0, sizeof(out), out, &got) == 0 &&
		      got < 4096 && memmem(out, got, "secret", 6) == NULL,
	      "stored small and unreadable (%zu bytes)", got);
out:
	os_close(s);
	os_close(raw);
	free(url);
	free(kf);
}

struct par {
	struct os_store *s;
	int id, bad;
};

static void *
par_run(void *arg)
{
	struct par *p = arg;
	char key[32], buf[64];
	size_t got;
	int i;

	for (i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "par/%d/%d", p->id, i);
		p->bad += os_put(p->s, key, key, strlen(key)) != 0;
		p->bad += os_get(p->s, key, 0, sizeof(buf), buf, &got) != 0 ||
			  got != strlen(key);
	}
	return NULL;
}

static void
test_parallel(void)
{
	char *url = tl_asprintf("%s&max_requests=3", base_url);
	struct os_store *s = open_url(url);
	struct par p[8];
	pthread_t t[8];
	int i, bad = 0;

	if (s == NULL)
		goto out;
	for (i = 0; i < 8; i++) {
		p[i] = (struct par){s, i, 0};
		pthread_create(&t[i], NULL, par_run, &p[i]);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		bad += p[i].bad;
	}
	CHECK_EQ(bad, 0, "8 threads over 3 connections");
	os_close(s);
out:
	free(url);
}

static int
del_cb(void *arg, const char *key, uint64_t size)
{
	(void)size;
	return os_delete(arg, key);
}

int
main(void)
{
	struct os_store *s;
	char *text, *err = NULL, *cmd;
	int rc;

	endpoint = env_or("S3_ENDPOINT", "http://127.0.0.1:7480");
	ak = env_or("S3_ACCESS_KEY", "TESSERAKEY");
	sk = env_or("S3_SECRET_KEY", "TESSERASECRET");
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/s3_backend.XXXXXX");
	CHECK_FATAL(mkdtemp(tmpdir) != NULL, "mkdtemp");
	text = tl_asprintf("%s\n%s\n", ak, sk);
	creds = write_file("creds", text);
	free(text);
	snprintf(bucket, sizeof(bucket), "tessera-t%d", (int)getpid());
	base_url = tl_asprintf("s3://%s/pfx?endpoint=%s&credentials=%s&"
			       "list_page=7&retry_base=10ms",
			       bucket, endpoint, creds);
	text = tl_asprintf("%s&create_bucket=1&attempts=2", base_url);
	rc = os_open(text, &s, &err);
	free(text);
	if (rc < 0) {
		printf("1..0 # SKIP no S3 server at %s (%s)\n", endpoint,
		       err ? err : "");
		free(err);
		return 77;
	}
	test_basic(s);
	test_list(s);
	test_refusals();
	test_fault_retry();
	test_stacked();
	test_parallel();
	CHECK_EQ(os_list(s, "", NULL, del_cb, s), 0, "clean up");
	os_close(s);
	free(base_url);
	free(creds);
	cmd = tl_asprintf("rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmpdir);
	free(cmd);
	return tap_done();
}
