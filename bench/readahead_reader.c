/*
 * readahead_reader.c - the two sides of bench/readahead.sh.
 *
 *   readahead_reader write NFS_URL SIZE
 *       create the file of NFS_URL (nfs://host/dir/file?...) with SIZE
 *       bytes of non-zero data in 1 MiB writes, then COMMIT
 *   readahead_reader nfs NFS_URL DEPTH RSIZE
 *       read the file sequentially through the gateway with DEPTH READs
 *       of RSIZE bytes in flight (libnfs async API), as a kernel client
 *       with readahead would
 *   readahead_reader raw STORAGE_URL PREFIX THREADS
 *       GET every object under PREFIX whole with THREADS threads, straight
 *       from the object store (objstore library)
 * Each read mode prints "<bytes> <seconds> <MB/s>".
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nfsc/libnfs.h>

#include "lib/tl.h"
#include "objstore/objstore.h"

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "readahead_reader: %s: %s\n", what,
		detail ? detail : "");
	exit(1);
}

static void
report(uint64_t bytes, uint64_t t0)
{
	double s = (double)(tl_mono_ns() - t0) / 1e9;

	printf("%llu %.3f %.1f\n", (unsigned long long)bytes, s,
	       (double)bytes / s / 1e6);
}

static struct nfs_context *
nfs_connect(const char *u, struct nfs_url **url)
{
	struct nfs_context *nfs = nfs_init_context();

	if (nfs == NULL)
		die("nfs_init_context", NULL);
	*url = nfs_parse_url_full(nfs, u);
	if (*url == NULL)
		die("url", nfs_get_error(nfs));
	/* nfs://host/file gives an empty export path: the root. */
	if (nfs_mount(nfs, (*url)->server,
		      (*url)->path[0] ? (*url)->path : "/") != 0)
		die("mount", nfs_get_error(nfs));
	return nfs;
}

static int
do_write(const char *u, uint64_t size)
{
	struct nfs_url *url;
	struct nfs_context *nfs = nfs_connect(u, &url);
	struct nfsfh *fh;
	uint8_t *buf = tl_malloc(1 << 20);
	uint64_t off;
	size_t i, n;

	for (i = 0; i < (1u << 20); i++)
		buf[i] = (uint8_t)(i * 31 + 7);
	if (nfs_creat(nfs, url->file, 0644, &fh) != 0)
		die("create", nfs_get_error(nfs));
	for (off = 0; off < size; off += n) {
		n = (size_t)TL_MIN((uint64_t)1 << 20, size - off);
		buf[0] = (uint8_t)(off >> 20); /* every block differs */
		if (nfs_pwrite(nfs, fh, off, n, buf) != (int)n)
			die("write", nfs_get_error(nfs));
	}
	if (nfs_fsync(nfs, fh) != 0)
		die("commit", nfs_get_error(nfs));
	nfs_close(nfs, fh);
	nfs_destroy_url(url);
	nfs_destroy_context(nfs);
	free(buf);
	return 0;
}

struct rd {
	uint64_t size, next, done, bytes;
	unsigned inflight;
	uint32_t rsize;
	struct nfsfh *fh;
	bool failed;
};

static void read_cb(int err, struct nfs_context *nfs, void *data, void *p);

static void
issue(struct nfs_context *nfs, struct rd *r)
{
	uint64_t n;

	while (r->next < r->size) {
		n = TL_MIN(r->rsize, r->size - r->next);
		if (nfs_pread_async(nfs, r->fh, r->next, n, read_cb, r) != 0)
			die("pread_async", nfs_get_error(nfs));
		r->next += n;
		r->inflight++;
		return;
	}
}

static void
read_cb(int err, struct nfs_context *nfs, void *data, void *p)
{
	struct rd *r = p;

	(void)data;
	r->inflight--;
	if (err < 0) {
		r->failed = true;
		return;
	}
	r->bytes += (uint64_t)err;
	issue(nfs, r);
}

static int
do_nfs(const char *u, unsigned depth, uint32_t rsize)
{
	struct nfs_url *url;
	struct nfs_context *nfs = nfs_connect(u, &url);
	struct nfs_stat_64 st;
	struct rd r = {0};
	struct pollfd pfd;
	uint64_t t0;
	unsigned i;

	if (nfs_stat64(nfs, url->file, &st) != 0)
		die("stat", nfs_get_error(nfs));
	if (nfs_open(nfs, url->file, O_RDONLY, &r.fh) != 0)
		die("open", nfs_get_error(nfs));
	r.size = st.nfs_size;
	r.rsize = rsize;
	t0 = tl_mono_ns();
	for (i = 0; i < depth; i++)
		issue(nfs, &r);
	while (r.inflight > 0 && !r.failed) {
		pfd.fd = nfs_get_fd(nfs);
		pfd.events = (short)nfs_which_events(nfs);
		if (poll(&pfd, 1, -1) < 0)
			die("poll", strerror(errno));
		if (nfs_service(nfs, pfd.revents) < 0)
			die("service", nfs_get_error(nfs));
	}
	if (r.failed || r.bytes != r.size)
		die("read", "short or failed");
	report(r.bytes, t0);
	nfs_close(nfs, r.fh);
	nfs_destroy_url(url);
	nfs_destroy_context(nfs);
	return 0;
}

struct raw {
	struct os_store *os;
	char **keys;
	uint64_t *sizes;
	size_t n, cap;
	atomic_size_t next;
	_Atomic uint64_t bytes;
	atomic_bool failed;
};

static int
list_cb(void *arg, const char *key, uint64_t size)
{
	struct raw *r = arg;

	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 256;
		r->keys = tl_realloc(r->keys, r->cap * sizeof(*r->keys));
		r->sizes = tl_realloc(r->sizes, r->cap * sizeof(*r->sizes));
	}
	r->keys[r->n] = tl_strdup(key);
	r->sizes[r->n++] = size;
	return 0;
}

static void *
raw_main(void *arg)
{
	struct raw *r = arg;
	uint8_t *buf = NULL;
	size_t cap = 0, i, got;

	while ((i = atomic_fetch_add(&r->next, 1)) < r->n) {
		if (r->sizes[i] > cap) {
			cap = r->sizes[i];
			buf = tl_realloc(buf, cap);
		}
		if (os_get(r->os, r->keys[i], 0, r->sizes[i], buf, &got) != 0 ||
		    got != r->sizes[i])
			atomic_store(&r->failed, true);
		atomic_fetch_add(&r->bytes, got);
	}
	free(buf);
	return NULL;
}

static int
do_raw(const char *surl, const char *prefix, unsigned threads)
{
	struct raw r = {0};
	pthread_t th[256];
	char *err = NULL;
	uint64_t t0;
	unsigned i;

	if (os_open(surl, &r.os, &err) != 0)
		die("object store", err);
	if (os_list(r.os, prefix, NULL, list_cb, &r) != 0)
		die("list", prefix);
	threads = TL_MIN(threads, 256u);
	t0 = tl_mono_ns();
	for (i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, raw_main, &r);
	for (i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	if (atomic_load(&r.failed))
		die("get", "failed");
	report(atomic_load(&r.bytes), t0);
	for (i = 0; i < r.n; i++)
		free(r.keys[i]);
	free(r.keys);
	free(r.sizes);
	os_close(r.os);
	return 0;
}

int
main(int argc, char **argv)
{
	uint64_t v, w;

	if (argc == 4 && strcmp(argv[1], "write") == 0 &&
	    tl_parse_size(argv[3], &v) == 0)
		return do_write(argv[2], v);
	if (argc == 5 && strcmp(argv[1], "nfs") == 0 &&
	    tl_parse_u64(argv[3], 1, 1024, &v) == 0 &&
	    tl_parse_size(argv[4], &w) == 0 && w > 0 && w <= (4u << 20))
		return do_nfs(argv[2], (unsigned)v, (uint32_t)w);
	if (argc == 5 && strcmp(argv[1], "raw") == 0 &&
	    tl_parse_u64(argv[4], 1, 256, &v) == 0)
		return do_raw(argv[2], argv[3], (unsigned)v);
	fprintf(stderr, "usage: readahead_reader write NFS_URL SIZE\n"
			"       readahead_reader nfs NFS_URL DEPTH RSIZE\n"
			"       readahead_reader raw STORAGE_URL PREFIX "
			"THREADS\n");
	return 2;
}
