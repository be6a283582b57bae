/*
 * objstore_wrap_test.c - the stacked wrappers on a real file:// store:
 * zstd and crypt round trips, ranges, tamper and wrong-key detection, the
 * fault wrapper's knobs, counters, control file and sync failures
 * (os_sync_mark), retry over injected faults and the rate limiter's
 * accounting.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/tl.h"
#include "objstore/objstore.h"
#include "t/unit/tap.h"

static char dir[64];

static void
fill(uint8_t *p, size_t n, unsigned seed, bool compressible)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = compressible ? (uint8_t)("tessera "[(i + seed) % 8])
				    : (uint8_t)((i * 2654435761u + seed) >> 13);
}

/* Round trips of whole objects and ranges through a stack. */
static void
roundtrip(const char *url, const char *what)
{
	static const size_t sizes[] = {0, 1, 4096, 1 << 20};
	struct os_store *s;
	uint8_t *in, *out;
	char *err = NULL, key[64];
	size_t i, got;
	uint64_t size;
	int rc;

	rc = os_open(url, &s, &err);
	CHECK_FATAL(rc == 0, "%s: open (%s)", what, err ? err : "");
	in = tl_malloc(1 << 20);
	out = tl_malloc((1 << 20) + 10);
	for (i = 0; i < TL_ARRAY_SIZE(sizes); i++) {
		bool comp = i % 2 == 0;

		snprintf(key, sizeof(key), "rt/%s/%zu", what, sizes[i]);
		fill(in, sizes[i], (unsigned)i, comp);
		CHECK_EQ(os_put(s, key, in, sizes[i]), 0, "%s: put %zu", what,
			 sizes[i]);
		rc = os_get(s, key, 0, sizes[i] + 10, out, &got);
		CHECK(rc == 0 && got == sizes[i] &&
			      memcmp(in, out, sizes[i]) == 0,
		      "%s: get %zu back", what, sizes[i]);
		rc = os_head(s, key, &size);
		CHECK(rc == 0 && size == sizes[i], "%s: head %zu", what,
		      sizes[i]);
		if (sizes[i] >= 4096) {
			rc = os_get(s, key, 1000, 2000, out, &got);
			CHECK(rc == 0 && got == 2000 &&
				      memcmp(in + 1000, out, 2000) == 0,
			      "%s: range inside", what);
			rc = os_get(s, key, sizes[i] - 5, 100, out, &got);
			CHECK(rc == 0 && got == 5, "%s: range at the end",
			      what);
		}
		rc = os_get(s, key, sizes[i], 10, out, &got);
		CHECK(rc == 0 && got == 0, "%s: read at the end is empty",
		      what);
		CHECK_EQ(os_get(s, key, sizes[i] + 1, 10, out, &got), -ERANGE,
			 "%s: read past the end", what);
	}
	CHECK_EQ(os_get(s, "rt/missing", 0, 10, out, &got), -ENOENT,
		 "%s: missing object", what);
	CHECK_EQ(os_delete(s, "rt/missing"), 0, "%s: delete missing", what);
	free(in);
	free(out);
	os_close(s);
}

static char *
stored_path(const char *key)
{
	return tl_asprintf("%s/%s", dir, key);
}

static void
flip_byte(const char *key, long at)
{
	char *p = stored_path(key);
	int fd = open(p, O_RDWR);
	uint8_t b;

	CHECK_FATAL(fd >= 0, "open stored object %s", p);
	if (at < 0)
		at += lseek(fd, 0, SEEK_END);
	CHECK_FATAL(pread(fd, &b, 1, at) == 1, "read byte");
	b ^= 0x40;
	CHECK_FATAL(pwrite(fd, &b, 1, at) == 1, "write byte");
	close(fd);
	free(p);
}

static void
test_crypt(void)
{
	char *keyfile = tl_asprintf("%s/vol.key", dir);
	char *keyfile2 = tl_asprintf("%s/other.key", dir);
	char *url, *url2, *err = NULL;
	struct os_store *s, *s2, *plain;
	uint8_t data[5000], out[6000];
	size_t got;
	FILE *f;

	f = fopen(keyfile, "w");
	fprintf(f, "000102030405060708090a0b0c0d0e0f"
		   "101112131415161718191a1b1c1d1e1f\n");
	fclose(f);
	f = fopen(keyfile2, "w");
	fwrite("0123456789abcdef0123456789abcdef", 1, 32, f);
	fclose(f);
	chmod(keyfile, 0600);
	chmod(keyfile2, 0600);

	url = tl_asprintf("crypt(key_file=%s):file://%s", keyfile, dir);
	url2 = tl_asprintf("crypt(key_file=%s):file://%s", keyfile2, dir);
	roundtrip(url, "crypt");

	CHECK_FATAL(os_open(url, &s, &err) == 0, "crypt open");
	CHECK_FATAL(os_open(url2, &s2, &err) == 0, "crypt open, other key");
	CHECK_FATAL(os_file_open(dir, &plain, &err) == 0, "plain open");
	fill(data, sizeof(data), 7, true);
	CHECK_EQ(os_put(s, "c/obj", data, sizeof(data)), 0, "put");
	CHECK(os_get(plain, "c/obj", 0, sizeof(out), out, &got) == 0 &&
		      got == sizeof(data) + 96 &&
		      memmem(out, got, "tessera", 7) == NULL,
	      "stored form is 96 bytes longer and holds no plaintext");
	CHECK_EQ(os_get(s2, "c/obj", 0, sizeof(out), out, &got), -EIO,
		 "wrong volume key -> EIO");

	/* the same ciphertext under another key name */
	CHECK_EQ(os_get(plain, "c/obj", 0, sizeof(out), out, &got), 0,
		 "read stored");
	CHECK_EQ(os_put(plain, "c/moved", out, got), 0, "copy stored");
	CHECK_EQ(os_get(s, "c/moved", 0, sizeof(out), out, &got), -EIO,
		 "object moved to another key -> EIO");

	flip_byte("c/obj", -1);
	CHECK_EQ(os_get(s, "c/obj", 0, sizeof(out), out, &got), -EIO,
		 "flipped byte in the data -> EIO");
	CHECK_EQ(os_put(s, "c/obj2", data, sizeof(data)), 0, "put 2");
	flip_byte("c/obj2", 30);
	CHECK_EQ(os_get(s, "c/obj2", 0, 10, out, &got), -EIO,
		 "flipped byte in the wrapped key -> EIO (range get)");
	CHECK_EQ(os_put(plain, "c/short", "TENC", 4), 0, "put short");
	CHECK_EQ(os_get(s, "c/short", 0, 10, out, &got), -EIO,
		 "truncated object -> EIO");
	os_close(plain);
	os_close(s2);
	os_close(s);

	/* key file errors */
	f = fopen(keyfile2, "w");
	fputs("not a key\n", f);
	fclose(f);
	CHECK(os_open(url2, &s, &err) == -EINVAL && err &&
		      strstr(err, "32 bytes") != NULL,
	      "bad key file refused: %s", err ? err : "");
	free(err);
	err = NULL;
	CHECK_EQ(os_open("crypt:file:///tmp", &s, &err), -EINVAL,
		 "crypt without key_file refused");
	free(err);
	free(url);
	free(url2);
	free(keyfile);
	free(keyfile2);
}

static void
test_zstd(void)
{
	char *url = tl_asprintf("zstd:file://%s", dir), *err = NULL;
	struct os_store *s, *plain;
	static uint8_t data[1 << 16], out[1 << 17];
	size_t got;

	roundtrip(url, "zstd");
	CHECK_FATAL(os_open(url, &s, &err) == 0, "zstd open");
	CHECK_FATAL(os_file_open(dir, &plain, &err) == 0, "plain open");
	fill(data, sizeof(data), 1, true);
	CHECK_EQ(os_put(s, "z/obj", data, sizeof(data)), 0, "put");
	CHECK(os_get(plain, "z/obj", 0, sizeof(out), out, &got) == 0 &&
		      got < sizeof(data) / 10,
	      "compressible data stored compressed (%zu bytes)", got);
	flip_byte("z/obj", 20);
	CHECK_EQ(os_get(s, "z/obj", 0, 100, out, &got), -EIO,
		 "corrupt frame -> EIO");
	CHECK_EQ(os_put(plain, "z/foreign", "hello", 5), 0, "put foreign");
	CHECK_EQ(os_get(s, "z/foreign", 0, 5, out, &got), -EIO,
		 "object without header -> EIO");
	os_close(plain);
	os_close(s);
	free(url);

	/* compress, then encrypt */
	{
		char *kf = tl_asprintf("%s/vol.key", dir);

		url = tl_asprintf("zstd(level=5):crypt(key_file=%s):file://%s",
				  kf, dir);
		roundtrip(url, "zstd+crypt");
		free(url);
		free(kf);
	}
}

static void
test_fault(void)
{
	char *url = tl_asprintf("fault(ops=put,fail_after=3):file://%s", dir);
	struct os_fault_stats st, st0;
	struct os_retry_stats rs;
	struct os_store *s, *r;
	char *err = NULL, buf[8];
	size_t got;
	int i, fails;

	CHECK_FATAL(os_open(url, &s, &err) == 0, "fault open");
	for (i = 0; i < 5; i++)
		CHECK_EQ(os_put(s, "f/a", "x", 1), i < 3 ? 0 : -EIO,
			 "put %d with fail_after=3", i);
	CHECK_EQ(os_get(s, "f/a", 0, 1, buf, &got), 0, "get not selected");
	CHECK_EQ(os_fault_stats(s, &st), 0, "stats");
	CHECK(st.calls[OS_OP_PUT] == 5 && st.injected[OS_OP_PUT] == 2 &&
		      st.calls[OS_OP_GET] == 1 && st.injected[OS_OP_GET] == 0,
	      "stats count calls and injected failures");

	CHECK_EQ(os_fault_configure(s, "err=1,enospc=1", &err), 0,
		 "reconfigure");
	CHECK_EQ(os_head(s, "f/a", &(uint64_t){0}), -ENOSPC, "enospc injected");
	CHECK_EQ(os_fault_configure(s, "err=0.5,seed=42", &err), 0, "err=0.5");
	for (i = 0, fails = 0; i < 1000; i++)
		fails += os_get(s, "f/a", 0, 1, buf, &got) < 0;
	CHECK(fails > 350 && fails < 650, "about half fail (%d/1000)", fails);
	CHECK_EQ(os_fault_configure(s, "err=2", &err), -EINVAL,
		 "probability > 1 refused");
	free(err);
	err = NULL;
	CHECK_EQ(os_fault_configure(s, "ops=put|nope", &err), -EINVAL,
		 "unknown op refused");
	free(err);
	err = NULL;

	/* retry over faults: every call gets through */
	CHECK_EQ(os_fault_configure(s, "err=0.3,seed=7", &err), 0, "err=0.3");
	CHECK_EQ(os_fault_stats(s, &st0), 0, "stats before");
	CHECK_EQ(os_retry_wrap(s, 20, 1, 2, &r), 0, "retry wrap");
	for (i = 0, fails = 0; i < 200; i++)
		fails += os_put(r, "f/b", "y", 1) != 0 ||
			 os_get(r, "f/b", 0, 1, buf, &got) != 0 || got != 1;
	CHECK_EQ(fails, 0, "no failure reaches the caller through retry");
	CHECK_EQ(os_retry_stats(r, &rs), 0, "retry stats");
	CHECK(rs.retries > 50 && rs.failures == 0, "retries made: %llu",
	      (unsigned long long)rs.retries);
	CHECK_EQ(os_fault_stats(r, &st), 0, "fault stats through the stack");
	CHECK(st.injected[OS_OP_PUT] - st0.injected[OS_OP_PUT] +
			      st.injected[OS_OP_GET] -
			      st0.injected[OS_OP_GET] ==
		      rs.retries,
	      "every injected failure was retried");
	CHECK_EQ(os_get(r, "f/none", 0, 1, buf, &got), -ENOENT,
		 "ENOENT is an answer, not retried");
	CHECK_EQ(os_fault_configure(r, "err=1", &err), 0, "always fail");
	CHECK_EQ(os_put(r, "f/c", "z", 1), -EIO, "EIO after the attempts");
	CHECK_EQ(os_retry_stats(r, &rs), 0, "retry stats");
	CHECK_EQ(rs.failures, 1, "one final failure");
	os_close(r);
	free(url);

	CHECK(os_open("fault(bogus=1):file:///tmp", &s, &err) == -EINVAL &&
		      err && strstr(err, "bogus"),
	      "unknown fault option named: %s", err ? err : "");
	free(err);
	err = NULL;
	url = tl_asprintf("retry(attempts=3,base=1ms):fault(err=1,"
			  "ops=get):file://%s",
			  dir);
	CHECK_FATAL(os_open(url, &s, &err) == 0, "stack from a URL");
	CHECK(os_unwrap(s, "fault") && os_unwrap(s, "file") &&
		      !os_unwrap(s, "zstd"),
	      "os_unwrap walks the stack");
	CHECK_EQ(os_get(s, "f/a", 0, 1, buf, &got), -EIO, "get fails");
	CHECK_EQ(os_fault_stats(s, &st), 0, "stats");
	CHECK_EQ(st.calls[OS_OP_GET], 3, "three attempts");
	os_close(s);
	free(url);
}

static void
test_ratelimit(void)
{
	char *url = tl_asprintf("ratelimit(up=1M,down=2M):file://%s", dir);
	struct os_ratelimit_stats st;
	static uint8_t data[256 << 10];
	struct os_store *s;
	char *err = NULL;
	size_t got;
	int i;

	CHECK_FATAL(os_open(url, &s, &err) == 0, "ratelimit open");
	for (i = 0; i < 4; i++)
		CHECK_EQ(os_put(s, "r/a", data, sizeof(data)), 0, "put");
	CHECK_EQ(os_get(s, "r/a", 0, sizeof(data), data, &got), 0, "get");
	CHECK_EQ(os_ratelimit_stats(s, &st), 0, "stats");
	CHECK(st.up_bytes == 4 * sizeof(data) && st.down_bytes == sizeof(data),
	      "bytes counted");
	CHECK(st.throttled_ns > 0, "callers were throttled");
	CHECK_EQ(os_ratelimit_set(s, 0, 0), 0, "unlimited at run time");
	for (i = 0; i < 8; i++)
		CHECK_EQ(os_put(s, "r/a", data, sizeof(data)), 0, "put");
	CHECK_EQ(os_ratelimit_stats(s, &st), 0, "stats");
	CHECK_EQ(st.up_bytes, 12 * sizeof(data), "bytes counted");
	{
		struct os_stats all;

		CHECK_EQ(os_put(s, "bad//key", data, 1), -EINVAL,
			 "a bad key is refused");
		os_stats(s, &all);
		CHECK((all.have & OS_STATS_PUTS) && all.puts == 12,
		      "the bottom store counted 12 objects stored, not the "
		      "refused one (%llu)",
		      (unsigned long long)all.puts);
	}
	os_close(s);
	free(url);
}

/* Write the fault wrapper's control file as a test would: to a
 * temporary name, then renamed over it. */
static void
write_ctl(const char *path, const char *text)
{
	char *tmp = tl_asprintf("%s.tmp", path);
	FILE *f = fopen(tmp, "w");

	CHECK_FATAL(f != NULL && fputs(text, f) >= 0 && fclose(f) == 0 &&
			    rename(tmp, path) == 0,
		    "write %s", path);
	free(tmp);
}

/* failures=N caps the failures; ctl=FILE changes the settings of a
 * store in use; an injected sync failure loses the puts since the last
 * sync and is counted by os_sync_mark, for every caller. */
static void
test_fault_ctl_sync(void)
{
	char *ctl = tl_asprintf("%s/fault.ctl", dir), buf[4];
	char *url = tl_asprintf("fault(ctl=%s):file://%s/fsync", ctl, dir);
	struct os_store *s;
	uint64_t mark, size;
	size_t got;
	char *err = NULL;
	int i;

	CHECK_FATAL(os_open(url, &s, &err) == 0, "fault with ctl: open");
	CHECK_EQ(os_put(s, "c/a", "a", 1), 0, "no ctl file: URL settings");
	write_ctl(ctl, "ops=put\nerr=1 failures=2\n");
	for (i = 0; i < 4; i++)
		CHECK_EQ(os_put(s, "c/b", "b", 1), i < 2 ? -EIO : 0,
			 "put %d after the ctl file says failures=2", i);
	write_ctl(ctl, "ops=get,fail_after=1");
	CHECK_EQ(os_get(s, "c/a", 0, 1, buf, &got), 0, "ctl changed: get 1");
	CHECK_EQ(os_get(s, "c/a", 0, 1, buf, &got), -EIO, "get 2 fails");
	write_ctl(ctl, "ops=nope");
	CHECK_EQ(os_get(s, "c/a", 0, 1, buf, &got), -EIO,
		 "a ctl file that does not parse changes nothing");
	CHECK_EQ(unlink(ctl), 0, "remove the ctl file");
	CHECK_EQ(os_get(s, "c/a", 0, 1, buf, &got), 0,
		 "without it, the URL's settings again");

	CHECK_EQ(os_defer_sync(s), 0, "the file store defers, through it");
	CHECK_EQ(os_sync(s), 0, "sync");
	mark = os_sync_mark(s);
	CHECK_EQ(os_put(s, "c/lost1", "x", 1), 0, "put");
	CHECK_EQ(os_put(s, "c/lost2", "y", 1), 0, "put");
	write_ctl(ctl, "ops=sync,err=1,failures=1");
	CHECK_EQ(os_sync(s), -EIO, "injected sync failure");
	CHECK(os_head(s, "c/lost1", &size) == -ENOENT &&
		      os_head(s, "c/lost2", &size) == -ENOENT &&
		      os_head(s, "c/a", &size) == 0,
	      "it lost the puts since the last sync, and only those");
	CHECK(os_sync_mark(s) != mark, "os_sync_mark counts it");
	CHECK_EQ(os_sync(s), 0, "the next sync succeeds (failures=1)");
	CHECK_EQ(os_sync_since(s, mark), -EIO,
		 "os_sync_since a mark from before the failure fails");
	mark = os_sync_mark(s);
	CHECK_EQ(os_put(s, "c/kept", "z", 1), 0, "put after it");
	CHECK_EQ(os_sync_since(s, mark), 0, "os_sync_since a fresh mark");
	CHECK_EQ(os_head(s, "c/kept", &size), 0, "and the put is there");
	os_close(s);
	unlink(ctl);
	free(url);
	free(ctl);
}

static int
rm_cb(void *arg, const char *key, uint64_t size)
{
	(void)size;
	os_delete(arg, key);
	return 0;
}

int
main(void)
{
	struct os_store *s;
	char *err = NULL;

	snprintf(dir, sizeof(dir), "/tmp/objstore_wrap.XXXXXX");
	CHECK_FATAL(mkdtemp(dir) != NULL, "mkdtemp");
	test_crypt();
	test_zstd();
	test_fault();
	test_fault_ctl_sync();
	test_ratelimit();
	if (os_file_open(dir, &s, &err) == 0) {
		os_list(s, "", NULL, rm_cb, s);
		os_close(s);
	}
	{
		char *cmd = tl_asprintf("rm -rf %s", dir);

		if (system(cmd) != 0)
			printf("# could not remove %s\n", dir);
		free(cmd);
	}
	return tap_done();
}
