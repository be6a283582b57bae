/*
 * cache_test.h - fixture of the block-cache tests: a real LMDB volume, a
 * file:// store and the product's fault wrapper around it, which counts
 * GETs and PUTs, can slow GETs down and can hold PUTs forever (an object
 * store that does not take uploads).
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
#include "objstore/objstore.h"
#include "t/unit/tap.h"

static char t_dir[64];
static char *t_murl, *t_url;
static struct meta *t_m;
static struct os_store *t_os;        /* fault:file://, what the cache uses */
static struct os_store *t_fs;        /* the file:// store inside (borrowed) */
static struct os_fault_stats t_base; /* counts at t_count_reset */
static const struct meta_cred t_root = {.uid = 0};

/* Count GETs and PUTs from here on. */
static inline void
t_count_reset(void)
{
	os_fault_stats(t_os, &t_base);
}

static inline struct os_fault_stats
t_counts(void)
{
	struct os_fault_stats st;

	os_fault_stats(t_os, &st);
	return st;
}

/* GETs, PUTs and bytes got since t_count_reset. */
static inline int
t_gets(void)
{
	return (int)(t_counts().calls[OS_OP_GET] - t_base.calls[OS_OP_GET]);
}

static inline int
t_puts(void)
{
	return (int)(t_counts().calls[OS_OP_PUT] - t_base.calls[OS_OP_PUT]);
}

static inline uint64_t
t_get_bytes(void)
{
	return t_counts().get_bytes - t_base.get_bytes;
}

/* Set the fault settings of t_os (objstore/fault.c), "" for none. */
static inline void
t_faults(const char *spec)
{
	char *err = NULL;

	CHECK_FATAL(os_fault_configure(t_os, spec, &err) == 0, "fault %s (%s)",
		    spec, err ? err : "");
}

/* An object store that does not take uploads: every PUT waits while on. */
static inline void
t_hold_puts(bool on)
{
	t_faults(on ? "ops=put,hold=1" : "");
}

/* A cache with o on the test volume and t_os. */
static inline struct cache *
t_cache(const struct cache_opts *o)
{
	struct cache *c = NULL;

	CHECK_FATAL(cache_open(t_m, t_os, o, &c) == 0, "cache_open");
	return c;
}

static inline struct cache_stats
t_stats(struct cache *c)
{
	struct cache_stats s;

	cache_stats(c, &s);
	return s;
}

/* Make the temporary dir and format a volume with block size bs and
 * capacity bytes (0: unlimited). */
static inline void
t_setup(uint32_t bs, uint64_t capacity)
{
	struct meta_format_opts o = {"vol", NULL, bs, 0, capacity, 0, true};
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
	CHECK_FATAL(os_fault_wrap(t_fs, "seed=1", &t_os, &err) == 0,
		    "fault wrapper");
}

static inline void
t_close(void)
{
	os_close(t_os); /* and t_fs inside */
	meta_close(t_m);
	t_os = t_fs = NULL;
	t_m = NULL;
}

static inline void
t_teardown(void)
{
	tap_rm_rf(t_dir);
	free(t_murl);
	free(t_url);
}

/* t_setup and t_open, for a test that does not fork; t_finish undoes
 * both. */
static inline void
t_start(uint32_t bs, uint64_t capacity)
{
	t_setup(bs, capacity);
	t_open();
}

static inline void
t_finish(void)
{
	t_close();
	t_teardown();
}

static inline uint64_t
t_new_file(const char *name)
{
	struct meta_new n = {.type = META_REG, .mode = 0644};
	struct meta_attr a;
	uint64_t ino = 0;
	bool existed;

	CHECK_FATAL(meta_create(t_m, &t_root, META_ROOT_INO, name, &n, &ino, &a,
				&existed, NULL, NULL) == 0,
		    "create %s", name);
	return ino;
}

static inline uint64_t
t_lookup(const char *name)
{
	struct meta_attr a;
	uint64_t ino = 0;

	CHECK_FATAL(meta_lookup(t_m, &t_root, META_ROOT_INO, name, &ino, &a) ==
			    0,
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

/* Fill data[0..len) (salt), write it to a new file name through c,
 * flushed; the file's inode. */
static inline uint64_t
t_file_with(struct cache *c, const char *name, uint8_t *data, size_t len,
	    unsigned salt)
{
	uint64_t ino = t_new_file(name);

	t_fill(data, len, 0, salt);
	CHECK_EQ(cache_write(c, ino, 0, data, len, true), 0, "write %s", name);
	return ino;
}

/* t_start(bs, 0), then file "f" of len bytes (salt) written through the
 * cache open() gives, closed again so that its blocks are in the object
 * store; *data (tl_malloc'd) receives its bytes.  The file's inode. */
static inline uint64_t
t_start_file(uint32_t bs, size_t len, unsigned salt,
	     struct cache *(*open)(void), uint8_t **data)
{
	struct cache *c;
	uint64_t ino;

	t_start(bs, 0);
	*data = tl_malloc(len);
	c = open();
	ino = t_file_with(c, "f", *data, len, salt);
	cache_close(c);
	return ino;
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
