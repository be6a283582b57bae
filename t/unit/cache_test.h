/*
 * cache_test.h - fixture of the block-cache tests: a real LMDB volume, a
 * file:// store and a wrapper around it that counts GETs and PUTs, can
 * slow GETs down and can hold PUTs forever (an object store that does
 * not take uploads).
 */
#ifndef T_CACHE_TEST_H
#define T_CACHE_TEST_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache.h"
#include "lib/tl.h"
#include "t/unit/tap.h"

struct count_store {
	struct os_store base;
	struct os_store *inner;
	atomic_int gets, puts;
	_Atomic uint64_t get_bytes;
	atomic_int get_delay_ms;
	atomic_bool hold_puts;
};

static int
cs_put(struct os_store *s, const char *key, const void *d, size_t len)
{
	struct count_store *f = (struct count_store *)s;

	while (atomic_load(&f->hold_puts))
		usleep(10000);
	atomic_fetch_add(&f->puts, 1);
	return os_put(f->inner, key, d, len);
}

static int
cs_get(struct os_store *s, const char *key, uint64_t off, size_t len,
       void *buf, size_t *got)
{
	struct count_store *f = (struct count_store *)s;
	int ms = atomic_load(&f->get_delay_ms);

	if (ms > 0)
		usleep((useconds_t)ms * 1000);
	atomic_fetch_add(&f->gets, 1);
	atomic_fetch_add(&f->get_bytes, len);
	return os_get(f->inner, key, off, len, buf, got);
}

static int
cs_head(struct os_store *s, const char *key, uint64_t *size)
{
	return os_head(((struct count_store *)s)->inner, key, size);
}

static int
cs_del(struct os_store *s, const char *key)
{
	return os_delete(((struct count_store *)s)->inner, key);
}

static int
cs_list(struct os_store *s, const char *prefix, const char *after,
	os_list_cb cb, void *arg)
{
	return os_list(((struct count_store *)s)->inner, prefix, after, cb,
		       arg);
}

static void
cs_close(struct os_store *s)
{
	(void)s;
}

static const struct os_ops count_ops = {
	.scheme = "count",
	.put = cs_put,
	.get = cs_get,
	.head = cs_head,
	.del = cs_del,
	.list = cs_list,
	.close = cs_close,
};

static char t_dir[64];
static char *t_murl, *t_url;
static struct meta *t_m;
static struct os_store *t_fs;
static struct count_store t_cs;
static const struct meta_cred t_root = {.uid = 0};

static inline void
cs_reset(void)
{
	atomic_store(&t_cs.gets, 0);
	atomic_store(&t_cs.puts, 0);
	atomic_store(&t_cs.get_bytes, 0);
}

/* Make the temporary dir and format a volume with block size bs. */
static inline void
t_setup(uint32_t bs)
{
	struct meta_format_opts o = {"vol", NULL, bs, 0, 0, 0, true};
	char *err = NULL;

	strcpy(t_dir, "/tmp/cache-test-XXXXXX");
	CHECK_FATAL(mkdtemp(t_dir) != NULL, "mkdtemp");
	t_murl = tl_asprintf("lmdb://%s/db?mapsize=256M", t_dir);
	t_url = tl_asprintf("file://%s/objects", t_dir);
	o.storage = t_url;
	CHECK_FATAL(meta_format(t_murl, &o, &err) == 0, "format (%s)",
		    err ? err : "");
}

/* Open the volume and the stores (after any fork). */
static inline void
t_open(void)
{
	char *err = NULL;

	CHECK_FATAL(meta_open(t_murl, NULL, &t_m, &err) == 0, "open (%s)",
		    err ? err : "");
	CHECK_FATAL(os_open(t_url, &t_fs, &err) == 0, "object store");
	t_cs.base.ops = &count_ops;
	t_cs.base.url = t_url;
	t_cs.inner = t_fs;
}

static inline void
t_close(void)
{
	os_close(t_fs);
	meta_close(t_m);
	t_fs = NULL;
	t_m = NULL;
}

static inline void
t_teardown(void)
{
	char *cmd = tl_asprintf("rm -rf '%s'", t_dir);

	if (system(cmd) != 0)
		printf("# cannot remove %s\n", t_dir);
	free(cmd);
	free(t_murl);
	free(t_url);
}

static inline uint64_t
t_new_file(const char *name)
{
	struct meta_new n = {.type = META_REG, .mode = 0644};
	struct meta_attr a;
	uint64_t ino = 0;
	bool existed;

	CHECK_FATAL(meta_create(t_m, &t_root, META_ROOT_INO, name, &n, &ino,
				&a, &existed, NULL, NULL) == 0,
		    "create %s", name);
	return ino;
}

static inline uint64_t
t_lookup(const char *name)
{
	struct meta_attr a;
	uint64_t ino = 0;

	CHECK_FATAL(meta_lookup(t_m, &t_root, META_ROOT_INO, name, &ino,
				&a) == 0,
		    "lookup %s", name);
	return ino;
}

static inline void
t_fill(uint8_t *p, size_t n, uint64_t off, unsigned salt)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)((off + i) * 31 + salt + ((off + i) >> 13));
}

static inline uint64_t
t_size(struct cache *c, uint64_t ino)
{
	struct meta_attr a;

	/* No CHECK: readers call this from several threads. */
	if (meta_getattr(t_m, ino, &a) != 0)
		return 0;
	cache_overlay_attr(c, &a);
	return a.size;
}

/* Read [off, off+len) and compare with want. */
static inline bool
t_read_eq(struct cache *c, uint64_t ino, uint64_t off, size_t len,
	  const uint8_t *want)
{
	uint8_t *buf = tl_malloc(len);
	size_t got = 0;
	bool eof, ok;
	int r;

	r = cache_read(c, ino, t_size(c, ino), off, len, buf, &got, &eof);
	ok = r == 0 && got == len && memcmp(buf, want, len) == 0;
	if (!ok)
		printf("#   read %llu+%zu: r=%d got=%zu\n",
		       (unsigned long long)off, len, r, got);
	free(buf);
	return ok;
}

#endif
