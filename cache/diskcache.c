/*
 * diskcache.c - the block cache on local disk.
 *
 * Each cached block is a block file (blockfile.c: checksummed, so a
 * damaged file is a miss, never data).  Cached blocks live in
 * <dir>/blocks/<hh>/<16 hex digits of the key's 64-bit hash>; a block
 * goes to dir number hash % ndirs.  Files are
 * written to a temporary name and renamed, without fsync: a file a crash
 * damaged fails its checks and is refetched.
 *
 * The in-memory index is a dense array of {hash, file size, last access
 * tick} with a chained hash over it (32-bit links inside the array: 32
 * bytes an entry, and sampled eviction picks array slots at random;
 * lib's tl_htab, a node per entry, would double that for a cache of
 * millions of blocks).  It is rebuilt at open by readdir
 * and fstatat only (nothing is read or checksummed), which takes well
 * under a second for 100,000 blocks.  Eviction is sampled LRU (as Redis
 * does it): of DC_SAMPLE random entries the least recently used goes,
 * which keeps hot blocks at O(1) cost per eviction.  It runs when a put
 * would pass the size limit, and when a directory's file system has less
 * free space than the floor (then only that directory's blocks go, and
 * the put is skipped if room cannot be made).
 *
 * Fills are written by one thread of their own (cache_disk_fill): a
 * reader that fetched a block hands it over and goes on serving, instead of
 * checksumming and writing 4 MiB on the request or prefetch path.  At
 * most DC_FILL_MAX bytes wait; past that a block is not cached (the
 * cache is best effort, and a reader must never wait for it).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cache/blockfile-internal.h"
#include "cache/cache.h"
#include "cache/diskcache-internal.h"
#include "lib/tl.h"

#define DC_SUBDIRS      256
#define DC_SAMPLE       5
#define DC_DEFAULT_SIZE (10ULL << 30)
#define DC_FILL_MAX     (64ULL << 20)

/* ---- the index ------------------------------------------------------------ */

struct dent {
	uint64_t h;
	uint64_t tick;
	uint32_t size; /* file bytes */
	uint32_t next; /* chain, UINT32_MAX ends */
	uint32_t dir;
};

struct dcdir {
	char *path;
	uint64_t files; /* bytes of this dir's cached files */
};

struct cache_disk {
	struct dcdir *dirs;
	unsigned ndirs;
	uint64_t limit;
	unsigned floor_pct;

	pthread_mutex_t mu;
	struct dent *e;
	uint32_t n, cap;
	uint32_t *bucket;
	uint32_t nbucket; /* power of two */
	uint64_t bytes, tick, rng;

	_Atomic uint64_t hits, misses, damaged, evicted;

	/* fills waiting for the fill thread (fill_mu) */
	pthread_mutex_t fill_mu;
	pthread_cond_t fill_cv;
	struct dfill *fill_head, *fill_tail;
	uint64_t fill_bytes;
	uint64_t fill_queued, fill_done; /* fills handed over, finished */
	bool fill_on, fill_stop;
	pthread_t fill;
};

struct dfill {
	struct dfill *next;
	char *key;
	const uint8_t *data;
	uint32_t len;
	uint64_t tick; /* when it was read: its place in LRU order */
	void (*done)(void *arg);
	void *arg;
};

#define NIL UINT32_MAX

static uint32_t
bidx(struct cache_disk *d, uint64_t h)
{
	return (uint32_t)(h >> 20) & (d->nbucket - 1);
}

static uint32_t
ix_find(struct cache_disk *d, uint64_t h)
{
	uint32_t i;

	for (i = d->bucket[bidx(d, h)]; i != NIL; i = d->e[i].next)
		if (d->e[i].h == h)
			return i;
	return NIL;
}

static void
ix_rehash(struct cache_disk *d)
{
	uint32_t i, b;

	free(d->bucket);
	d->nbucket = d->nbucket ? d->nbucket * 2 : 1024;
	d->bucket = tl_malloc(d->nbucket * sizeof(*d->bucket));
	memset(d->bucket, 0xff, d->nbucket * sizeof(*d->bucket));
	for (i = 0; i < d->n; i++) {
		b = bidx(d, d->e[i].h);
		d->e[i].next = d->bucket[b];
		d->bucket[b] = i;
	}
}

static void
ix_add(struct cache_disk *d, uint64_t h, uint32_t size, uint32_t dir,
       uint64_t tick)
{
	uint32_t b, i = ix_find(d, h);

	if (i != NIL) { /* replaced file */
		d->bytes -= d->e[i].size;
		d->dirs[d->e[i].dir].files -= d->e[i].size;
		d->e[i].size = size;
		d->e[i].tick = tick;
		goto add;
	}
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 1024;
		d->e = tl_realloc(d->e, d->cap * sizeof(*d->e));
	}
	if (d->n >= d->nbucket)
		ix_rehash(d);
	i = d->n++;
	b = bidx(d, h);
	d->e[i] = (struct dent){h, tick, size, d->bucket[b], dir};
	d->bucket[b] = i;
add:
	d->bytes += size;
	d->dirs[dir].files += size;
}

/* Unlink entry i from its chain (the slot stays). */
static void
ix_unchain(struct cache_disk *d, uint32_t i)
{
	uint32_t *pp = &d->bucket[bidx(d, d->e[i].h)];

	while (*pp != i)
		pp = &d->e[*pp].next;
	*pp = d->e[i].next;
}

static void
ix_remove(struct cache_disk *d, uint32_t i)
{
	uint32_t last = d->n - 1, *pp;

	d->bytes -= d->e[i].size;
	d->dirs[d->e[i].dir].files -= d->e[i].size;
	ix_unchain(d, i);
	if (i != last) {
		/* Move the last entry into slot i. */
		pp = &d->bucket[bidx(d, d->e[last].h)];
		while (*pp != last)
			pp = &d->e[*pp].next;
		*pp = i;
		d->e[i] = d->e[last];
	}
	d->n--;
}

static void
block_path(struct cache_disk *d, uint32_t dir, uint64_t h, char *buf, size_t n)
{
	snprintf(buf, n, "%s/blocks/%02x/%016" PRIx64, d->dirs[dir].path,
		 (unsigned)(h >> 56), h);
}

static uint64_t
rng_next(struct cache_disk *d)
{
	d->rng ^= d->rng << 13;
	d->rng ^= d->rng >> 7;
	d->rng ^= d->rng << 17;
	return d->rng;
}

/* Evict one sampled entry (of dir, or any dir when dir < 0); its path is
 * written to path for the caller to unlink outside the lock.  False when
 * nothing could be picked. */
static bool
evict_one(struct cache_disk *d, int dir, char *path, size_t n)
{
	uint32_t i, k, lim, best = NIL;
	bool small;

	if (d->n == 0)
		return false;
	/* A small cache is scanned whole: exact LRU. */
	small = d->n <= DC_SAMPLE * 8;
	lim = small ? d->n : DC_SAMPLE * (dir < 0 ? 1 : 8);
	for (k = 0; k < lim; k++) {
		i = small ? k : (uint32_t)(rng_next(d) % d->n);
		if (dir >= 0 && d->e[i].dir != (uint32_t)dir)
			continue;
		if (best == NIL || d->e[i].tick < d->e[best].tick)
			best = i;
	}
	if (best == NIL)
		return false;
	block_path(d, d->e[best].dir, d->e[best].h, path, n);
	ix_remove(d, best);
	atomic_fetch_add(&d->evicted, 1);
	return true;
}

static bool
below_floor(struct cache_disk *d, uint32_t dir, uint64_t need)
{
	struct statvfs sv;

	if (d->floor_pct == 0 || statvfs(d->dirs[dir].path, &sv) < 0)
		return false;
	return (unsigned __int128)(sv.f_bavail * sv.f_frsize -
				   TL_MIN(need, sv.f_bavail * sv.f_frsize)) *
		       100 <
	       (unsigned __int128)sv.f_blocks * sv.f_frsize * d->floor_pct;
}

/* ---- open, scan, close ---------------------------------------------------- */

/* A directory of the cache's own, inside a cache directory that
 * exists: 0700, as the blocks it holds are file data. */
static int
mkdir_own(const char *path)
{
	return mkdir(path, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

/* The operator makes the cache directory itself: a missing one is a
 * mistyped setting (or an unmounted disk), never something to create,
 * least of all relative to / where a daemon runs. */
static int
cache_dir_check(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) < 0) {
		tl_err("cache",
		       "cache directory %s: %s (create it, mode "
		       "0700, owned by the user tesserad runs as)",
		       dir, strerror(errno));
		return -ENOENT;
	}
	if (!S_ISDIR(st.st_mode)) {
		tl_err("cache", "cache directory %s is not a directory", dir);
		return -ENOTDIR;
	}
	return 0;
}

/* Index one subdirectory's files: readdir and fstatat only. */
static void
scan_sub(struct cache_disk *d, uint32_t dir, const char *sub)
{
	struct dirent *de;
	struct stat st;
	uint64_t h;
	char *end;
	DIR *dp = opendir(sub);

	if (dp == NULL)
		return;
	while ((de = readdir(dp)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (strlen(de->d_name) != 16) {
			/* A temporary file a crash left behind. */
			unlinkat(dirfd(dp), de->d_name, 0);
			continue;
		}
		h = strtoull(de->d_name, &end, 16);
		if (*end != '\0' ||
		    fstatat(dirfd(dp), de->d_name, &st, 0) < 0 ||
		    !S_ISREG(st.st_mode) || st.st_size > UINT32_MAX)
			continue;
		/* Older files first in LRU order: use their mtime. */
		ix_add(d, h, (uint32_t)st.st_size, dir, (uint64_t)st.st_mtime);
	}
	closedir(dp);
}

int
cache_disk_open(const char *dirs, uint64_t size, unsigned floor_pct,
		struct cache_disk **out)
{
	struct cache_disk *d;
	char *list, *tok, *save = NULL, path[4096];
	unsigned i, k;
	int r = 0;

	*out = NULL;
	if (dirs == NULL || dirs[0] == '\0')
		return 0;
	d = tl_calloc(1, sizeof(*d));
	pthread_mutex_init(&d->mu, NULL);
	pthread_mutex_init(&d->fill_mu, NULL);
	pthread_cond_init(&d->fill_cv, NULL);
	d->limit = size ? size : DC_DEFAULT_SIZE;
	d->floor_pct = TL_MIN(floor_pct, 99u);
	d->rng = tl_random_u64() | 1;
	ix_rehash(d);
	list = tl_strdup(dirs);
	for (tok = strtok_r(list, ":", &save); tok;
	     tok = strtok_r(NULL, ":", &save)) {
		d->dirs =
			tl_realloc(d->dirs, (d->ndirs + 1) * sizeof(*d->dirs));
		d->dirs[d->ndirs++] = (struct dcdir){tl_strdup(tok), 0};
	}
	free(list);
	if (d->ndirs == 0)
		goto out;
	for (i = 0; i < d->ndirs && r == 0; i++) {
		r = cache_dir_check(d->dirs[i].path);
		if (r < 0)
			break;
		snprintf(path, sizeof(path), "%s/blocks", d->dirs[i].path);
		r = mkdir_own(path);
		for (k = 0; k < DC_SUBDIRS && r == 0; k++) {
			snprintf(path, sizeof(path), "%s/blocks/%02x",
				 d->dirs[i].path, k);
			r = mkdir_own(path);
			if (r == 0)
				scan_sub(d, i, path);
		}
		if (r == 0) {
			snprintf(path, sizeof(path), "%s/staging",
				 d->dirs[i].path);
			r = mkdir_own(path);
		}
		if (r < 0)
			tl_err("cache", "cache directory %s: %s",
			       d->dirs[i].path, strerror(-r));
	}
	/* Ticks of scanned entries are mtimes; new accesses come after. */
	d->tick = (uint64_t)(tl_now_ns() / 1000000000ULL) + 1;
	if (d->n > 0)
		tl_info("cache", "disk cache: %u blocks, %llu bytes found",
			d->n, (unsigned long long)d->bytes);
out:
	if (r < 0 || d->ndirs == 0) {
		cache_disk_close(d);
		return r < 0 ? r : -EINVAL;
	}
	*out = d;
	return 0;
}

static void fill_stop(struct cache_disk *d);

void
cache_disk_close(struct cache_disk *d)
{
	unsigned i;

	if (d == NULL)
		return;
	fill_stop(d);
	for (i = 0; i < d->ndirs; i++)
		free(d->dirs[i].path);
	free(d->dirs);
	free(d->e);
	free(d->bucket);
	pthread_mutex_destroy(&d->mu);
	pthread_mutex_destroy(&d->fill_mu);
	pthread_cond_destroy(&d->fill_cv);
	free(d);
}

unsigned
cache_disk_ndirs(struct cache_disk *d)
{
	return d->ndirs;
}

const char *
cache_disk_dir(struct cache_disk *d, unsigned i)
{
	return d->dirs[i].path;
}

unsigned
cache_disk_dir_of(struct cache_disk *d, const char *key)
{
	return (unsigned)(cache_key_hash(key) % d->ndirs);
}

/* ---- get and put ---------------------------------------------------------- */

static void
forget(struct cache_disk *d, uint64_t h, const char *path)
{
	uint32_t i;

	pthread_mutex_lock(&d->mu);
	i = ix_find(d, h);
	if (i != NIL)
		ix_remove(d, i);
	pthread_mutex_unlock(&d->mu);
	unlink(path);
}

int
cache_disk_get(struct cache_disk *d, const char *key, uint32_t blen,
	       uint32_t off, uint32_t n, uint8_t *buf)
{
	uint64_t h = cache_key_hash(key);
	uint32_t i, dir = 0;
	char path[4096];
	int r;

	pthread_mutex_lock(&d->mu);
	i = ix_find(d, h);
	if (i != NIL) {
		d->e[i].tick = ++d->tick;
		dir = d->e[i].dir;
	}
	pthread_mutex_unlock(&d->mu);
	if (i == NIL) {
		atomic_fetch_add(&d->misses, 1);
		return -ENOENT;
	}
	block_path(d, dir, h, path, sizeof(path));
	r = cache_blockfile_read(path, key, blen, off, n, buf, NULL);
	if (r == 0) {
		atomic_fetch_add(&d->hits, 1);
		return 0;
	}
	if (r == -EBADMSG) {
		atomic_fetch_add(&d->damaged, 1);
		tl_warn("cache",
			"damaged cache file %s (block %s) "
			"deleted; refetching",
			path, key);
	}
	/* Anything but a clean hit is a miss: the file goes (a hash
	 * collision included: the newer block takes the place). */
	forget(d, h, path);
	atomic_fetch_add(&d->misses, 1);
	return -ENOENT;
}

/* Make room for a file of size bytes in dir; false if the floor cannot
 * be kept. */
static bool
make_room(struct cache_disk *d, uint32_t dir, uint64_t size)
{
	char path[4096];
	unsigned guard;
	bool ok = true;

	for (;;) {
		pthread_mutex_lock(&d->mu);
		ok = d->bytes + size <= d->limit || d->n == 0;
		if (ok || !evict_one(d, -1, path, sizeof(path))) {
			pthread_mutex_unlock(&d->mu);
			break;
		}
		pthread_mutex_unlock(&d->mu);
		unlink(path);
	}
	if (size > d->limit)
		return false;
	for (guard = 0; below_floor(d, dir, size); guard++) {
		pthread_mutex_lock(&d->mu);
		ok = guard < 64 && evict_one(d, (int)dir, path, sizeof(path));
		pthread_mutex_unlock(&d->mu);
		if (!ok)
			return false;
		unlink(path);
	}
	return true;
}

/* Cache a block read at tick (0: now). */
static void
put_at(struct cache_disk *d, const char *key, const uint8_t *data, uint32_t len,
       uint64_t tick)
{
	uint64_t h = cache_key_hash(key), size;
	uint32_t dir = (uint32_t)(h % d->ndirs), i;
	char path[4096];

	size = cache_blockfile_size(key, data, len);

	pthread_mutex_lock(&d->mu);
	if ((i = ix_find(d, h)) != NIL) {
		/* Cached already (by an earlier fill of a reader that missed
		 * before it was written): this one was read too. */
		d->e[i].tick = TL_MAX(d->e[i].tick, tick ? tick : ++d->tick);
		pthread_mutex_unlock(&d->mu);
		return;
	}
	pthread_mutex_unlock(&d->mu);
	if (!make_room(d, dir, size))
		return;
	block_path(d, dir, h, path, sizeof(path));
	if (cache_blockfile_write(path, key, data, len, false) < 0)
		return; /* the cache is best effort */
	pthread_mutex_lock(&d->mu);
	ix_add(d, h, (uint32_t)size, dir, tick ? tick : ++d->tick);
	pthread_mutex_unlock(&d->mu);
}

/* ---- fills off the read path --------------------------------------------- */

static void *
fill_main(void *arg)
{
	struct cache_disk *d = arg;
	struct dfill *f;

	pthread_mutex_lock(&d->fill_mu);
	for (;;) {
		while (d->fill_head == NULL && !d->fill_stop)
			pthread_cond_wait(&d->fill_cv, &d->fill_mu);
		f = d->fill_head;
		if (f == NULL)
			break; /* stopping, and everything is written */
		d->fill_head = f->next;
		if (d->fill_head == NULL)
			d->fill_tail = NULL;
		pthread_mutex_unlock(&d->fill_mu);
		put_at(d, f->key, f->data, f->len, f->tick);
		f->done(f->arg);
		pthread_mutex_lock(&d->fill_mu);
		d->fill_bytes -= f->len;
		d->fill_done++;
		pthread_cond_broadcast(&d->fill_cv);
		free(f->key);
		free(f);
	}
	pthread_mutex_unlock(&d->fill_mu);
	return NULL;
}

/* Write what waits, then stop the thread (at close). */
static void
fill_stop(struct cache_disk *d)
{
	pthread_mutex_lock(&d->fill_mu);
	d->fill_stop = true;
	pthread_cond_broadcast(&d->fill_cv);
	pthread_mutex_unlock(&d->fill_mu);
	if (d->fill_on)
		pthread_join(d->fill, NULL);
	d->fill_on = false;
}

bool
cache_disk_fill(struct cache_disk *d, const char *key, const uint8_t *data,
		uint32_t len, void (*done)(void *arg), void *arg)
{
	struct dfill *f;
	bool ok = false;

	pthread_mutex_lock(&d->fill_mu);
	if (d->fill_stop || d->fill_bytes + len > DC_FILL_MAX)
		goto out;
	if (!d->fill_on) {
		if (pthread_create(&d->fill, NULL, fill_main, d) != 0)
			goto out;
		d->fill_on = true;
	}
	f = tl_malloc(sizeof(*f));
	*f = (struct dfill){NULL, tl_strdup(key), data, len, 0, done, arg};
	pthread_mutex_lock(&d->mu); /* a leaf under fill_mu */
	f->tick = ++d->tick;
	pthread_mutex_unlock(&d->mu);
	if (d->fill_tail)
		d->fill_tail->next = f;
	else
		d->fill_head = f;
	d->fill_tail = f;
	d->fill_bytes += len;
	d->fill_queued++;
	pthread_cond_broadcast(&d->fill_cv);
	ok = true;
out:
	pthread_mutex_unlock(&d->fill_mu);
	return ok;
}

int
cache_disk_adopt(struct cache_disk *d, const char *from, const char *key)
{
	uint64_t h = cache_key_hash(key);
	uint32_t dir = (uint32_t)(h % d->ndirs);
	char path[4096];
	struct stat st;

	if (stat(from, &st) < 0)
		return -errno;
	if (!make_room(d, dir, (uint64_t)st.st_size))
		return -ENOSPC;
	block_path(d, dir, h, path, sizeof(path));
	if (rename(from, path) < 0)
		return -errno;
	pthread_mutex_lock(&d->mu);
	ix_add(d, h, (uint32_t)st.st_size, dir, ++d->tick);
	pthread_mutex_unlock(&d->mu);
	return 0;
}

void
cache_disk_stats(struct cache_disk *d, struct cache_stats *s)
{
	uint64_t upto;

	/* Count the fills handed over before this call as done: callers
	 * (status, tests) see what the reads they made have cached.  Later
	 * fills are not waited for, so a busy cache cannot hold this up
	 * for longer than DC_FILL_MAX bytes take to write. */
	pthread_mutex_lock(&d->fill_mu);
	upto = d->fill_queued;
	while (d->fill_done < upto)
		pthread_cond_wait(&d->fill_cv, &d->fill_mu);
	pthread_mutex_unlock(&d->fill_mu);
	pthread_mutex_lock(&d->mu);
	s->disk_blocks = d->n;
	s->disk_bytes = d->bytes;
	pthread_mutex_unlock(&d->mu);
	s->disk_hits = atomic_load(&d->hits);
	s->disk_misses = atomic_load(&d->misses);
	s->disk_damaged = atomic_load(&d->damaged);
	s->disk_evicted = atomic_load(&d->evicted);
}
