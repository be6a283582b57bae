/*
 * meta_kv_resident_test.c - lmdb ?resident=: one reader walking a
 * metadata set far bigger than the limit (a directory listing) keeps the
 * process's file-backed RSS within a few MiB of the limit, as the map is
 * unmapped behind it; readers on other threads, reading at random while
 * the map is unmapped under them, read the right bytes; with resident=0
 * the same walk leaves the whole set mapped (so the measure does see the
 * map).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/tl.h"
#include "meta/kv.h"
#include "t/unit/tap.h"

#define KEYS        300000u /* 120-byte values: ~55 MiB of leaf pages */
#define VLEN        120
#define PER_TXN     20000u
#define LIMIT_ABOVE (8u << 20) /* the limit, above the RSS at the start */
#define SLACK       (8u << 20) /* overshoot between two looks */
#define READERS     2

/* File-backed resident bytes of this process (statm's third field). */
static uint64_t
file_rss(void)
{
	unsigned long long size, res, shared = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (f == NULL)
		return 0;
	if (fscanf(f, "%llu %llu %llu", &size, &res, &shared) != 3)
		shared = 0;
	fclose(f);
	return shared * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void
key_of(char *k, unsigned i)
{
	snprintf(k, 16, "k%08u", i);
}

static void
value_of(unsigned char *v, unsigned i)
{
	for (unsigned j = 0; j < VLEN; j++)
		v[j] = (unsigned char)(i * 31u + j);
}

struct scan {
	uint64_t peak;
	unsigned n, bad;
};

static int
scan_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct scan *s = arg;
	unsigned char want[VLEN];
	unsigned i;

	if (klen != 9 || sscanf((const char *)key + 1, "%8u", &i) != 1 ||
	    vlen != VLEN) {
		s->bad++;
		return 0;
	}
	value_of(want, i);
	if (memcmp(val, want, VLEN) != 0)
		s->bad++;
	if (++s->n % 1000 == 0) {
		uint64_t r = file_rss();

		if (r > s->peak)
			s->peak = r;
	}
	return 0;
}

/* Scan every key; returns the peak file RSS seen. */
static uint64_t
scan_all(struct meta_kv *kv, unsigned *n, unsigned *bad)
{
	struct meta_kv_txn *t;
	struct scan s = {file_rss(), 0, 0};

	if (meta_kv_begin(kv, true, &t) != 0) {
		*bad = 1;
		return 0;
	}
	if (meta_kv_scan(t, "k", 1, "l", 1, scan_cb, &s) != 0)
		s.bad++;
	meta_kv_abort(t);
	*n = s.n;
	*bad = s.bad;
	return s.peak;
}

struct reader {
	struct meta_kv *kv;
	unsigned seed, gets, bad;
};

/* Point reads at random keys, checking the bytes, while another thread's
 * scan unmaps the map under them. */
static void *
reader_run(void *arg)
{
	struct reader *r = arg;
	unsigned char want[VLEN];
	struct meta_kv_txn *t;
	const void *v;
	size_t vlen;
	char k[16];

	if (meta_kv_begin(r->kv, true, &t) != 0) {
		r->bad++;
		return NULL;
	}
	for (unsigned j = 0; j < 50000; j++) {
		unsigned i = (unsigned)rand_r(&r->seed) % KEYS;

		key_of(k, i);
		value_of(want, i);
		if (meta_kv_get(t, k, strlen(k), &v, &vlen) != 0 ||
		    vlen != VLEN || memcmp(v, want, VLEN) != 0)
			r->bad++;
		r->gets++;
	}
	meta_kv_abort(t);
	return NULL;
}

static void
test_url(const char *dir)
{
	static const char *bad[] = {"resident=512k", "resident=x",
				    "resident=", "resident=1M&bogus=1"};
	struct meta_kv *kv;
	char *err, *url;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		url = tl_asprintf("lmdb://%s/u?%s", dir, bad[i]);
		CHECK_EQ(meta_kv_open(url, &kv, &err), -EINVAL, "%s refused",
			 bad[i]);
		CHECK(err != NULL && strstr(err, "bad lmdb URL option"),
		      "with a message (%s)", err ? err : "none");
		free(err);
		free(url);
	}
	err = NULL;
	url = tl_asprintf("lmdb://%s/u?mapsize=16M&resident=0", dir);
	CHECK_EQ(meta_kv_open(url, &kv, &err), 0, "resident=0 taken (%s)",
		 err ? err : "");
	if (kv)
		meta_kv_close(kv);
	free(err);
	free(url);
}

int
main(void)
{
	char dir[] = "/tmp/meta-kv-resident-XXXXXX";
	unsigned char val[VLEN];
	struct reader rd[READERS];
	pthread_t th[READERS];
	struct meta_kv *kv;
	struct meta_kv_txn *t;
	uint64_t base, peak, limit, drops;
	unsigned n, bad, rbad = 0;
	char *err = NULL, *url, *cmd, k[16];
	int rc = 0;

	CHECK_FATAL(mkdtemp(dir) != NULL, "mkdtemp");
	test_url(dir);
	CHECK_FATAL(file_rss() > 0, "/proc/self/statm is readable");

	/* The data, written with no limit. */
	url = tl_asprintf("lmdb://%s/db?mapsize=1G&resident=0", dir);
	CHECK_FATAL(meta_kv_open(url, &kv, &err) == 0, "open (%s)",
		    err ? err : "");
	free(url);
	for (unsigned i = 0; i < KEYS && rc == 0; i++) {
		if (i % PER_TXN == 0 && (rc = meta_kv_begin(kv, false, &t)))
			break;
		key_of(k, i);
		value_of(val, i);
		rc = meta_kv_put(t, k, strlen(k), val, VLEN);
		if (rc == 0 && (i + 1) % PER_TXN == 0)
			rc = meta_kv_commit(t);
	}
	CHECK_FATAL(rc == 0, "%u keys written", KEYS);
	meta_kv_close(kv);

	/* With a limit 8 MiB above where we stand: one reader. */
	base = file_rss();
	limit = base + LIMIT_ABOVE;
	url = tl_asprintf("lmdb://%s/db?mapsize=1G&resident=%llu", dir,
			  (unsigned long long)limit);
	CHECK_FATAL(meta_kv_open(url, &kv, &err) == 0, "open (%s)",
		    err ? err : "");
	free(url);
	peak = scan_all(kv, &n, &bad);
	CHECK_EQ(n, KEYS, "the walk saw every key");
	CHECK_EQ(bad, 0, "every value read right");
	printf("# file RSS: start %llu KiB, limit %llu KiB, peak %llu KiB, "
	       "map dropped %llu times\n",
	       (unsigned long long)(base >> 10),
	       (unsigned long long)(limit >> 10),
	       (unsigned long long)(peak >> 10),
	       (unsigned long long)meta_kv_lmdb_map_drops(kv));
	CHECK(meta_kv_lmdb_map_drops(kv) > 0, "the map was unmapped");
	CHECK(peak <= limit + SLACK,
	      "peak file RSS %llu KiB within the "
	      "limit + %u MiB",
	      (unsigned long long)(peak >> 10), SLACK >> 20);

	/* Random readers while the walk unmaps under them: right bytes. */
	drops = meta_kv_lmdb_map_drops(kv);
	for (unsigned i = 0; i < READERS; i++) {
		rd[i] = (struct reader){kv, 7u + i, 0, 0};
		pthread_create(&th[i], NULL, reader_run, &rd[i]);
	}
	(void)scan_all(kv, &n, &bad);
	for (unsigned i = 0; i < READERS; i++) {
		pthread_join(th[i], NULL);
		rbad += rd[i].bad;
	}
	CHECK_EQ(n, KEYS, "with %d readers: the walk saw every key", READERS);
	CHECK_EQ(bad, 0,
		 "with %d readers: every value read right by the "
		 "walk",
		 READERS);
	CHECK_EQ(rbad, 0, "every value read right by %d concurrent readers",
		 READERS);
	CHECK(meta_kv_lmdb_map_drops(kv) > drops, "the map was unmapped "
						  "under them");
	meta_kv_close(kv);

	/* Without: the whole set stays mapped, which the measure sees. */
	base = file_rss();
	url = tl_asprintf("lmdb://%s/db?mapsize=1G&resident=0", dir);
	CHECK_FATAL(meta_kv_open(url, &kv, &err) == 0, "open (%s)",
		    err ? err : "");
	free(url);
	peak = scan_all(kv, &n, &bad);
	CHECK_EQ(bad, 0, "every value read right");
	CHECK_EQ(meta_kv_lmdb_map_drops(kv), 0,
		 "resident=0: never "
		 "unmapped");
	CHECK(peak >= base + (32u << 20),
	      "resident=0: the map stays "
	      "(file RSS %llu -> %llu KiB)",
	      (unsigned long long)(base >> 10),
	      (unsigned long long)(peak >> 10));
	meta_kv_close(kv);

	cmd = tl_asprintf("rm -rf '%s'", dir);
	CHECK(system(cmd) == 0, "remove %s", dir);
	free(cmd);
	return tap_done();
}
