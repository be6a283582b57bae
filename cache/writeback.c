/*
 * writeback.c - blocks staged durably on local disk, uploaded in the
 * background.
 *
 * With writeback on, storing a block (cache_blocks_put) writes it as a
 * block file (blockfile.c's format, checksummed) to
 * <cache dir>/staging/<object key with '%' and '/' escaped as %25, %2F>
 * and fsyncs it; before the flush commits the slices that refer to it,
 * cache_wb_sync fsyncs the staging directories.  So COMMIT returns once
 * data and names are durable locally, and the name alone says which
 * object a staged file is.  The cache dir is the one the disk cache would
 * use for the key, so after the upload the file is renamed into the cache
 * (same file system) and serves later reads from there.
 *
 * Every staged file is in a table {key, state} and an upload job is
 * queued for it on a pool of `threads` workers (bounded concurrency).
 * Readers look in the table first, so a staged block serves reads until
 * it is uploaded.  A failed upload is retried by the monitor thread with
 * exponential backoff (1 s doubling to 5 minutes).  At open every staged
 * file found by scanning is queued again: nothing staged is stranded by a
 * crash or a restart.  Staged files are not in the disk cache's index, so
 * eviction never touches them.
 *
 * Deletion versus upload: when a block is released (gc, or a flush whose
 * file vanished) cache_wb_cancel removes the staged file at once, and an
 * upload in flight deletes the object again when its PUT returns.  A
 * released block therefore never comes back: not from a late PUT, and
 * not from a staged file found after a restart.  (A block staged by a
 * flush that crashed before its commit is uploaded after the restart and
 * is a leaked object for `tessera gc` to find, as an upload that crashed
 * before its commit is without writeback.)
 *
 * Alarm: the monitor checks once a second; when staged blocks are older
 * than max_age it logs a warning (at most once a minute) and
 * cache_stats reports them in staged_overdue.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/blockfile-internal.h"
#include "cache/cache.h"
#include "cache/diskcache-internal.h"
#include "cache/writeback-internal.h"
#include "lib/tl.h"

#define WB_DEFAULT_MAX_AGE_MS (3600ULL * 1000)
#define WB_RETRY_MIN_NS       (1000ULL * 1000000)
#define WB_RETRY_MAX_NS       (300ULL * 1000000000)
#define WB_ALARM_EVERY_NS     (60ULL * 1000000000)

enum { WB_QUEUED, WB_UPLOADING, WB_FAILED };

struct wbent {
	struct tl_hnode hn; /* in cache_wb.tab, by cache_key_hash */
	char *key;
	uint32_t len;
	unsigned dir;
	uint64_t staged_ns; /* wall clock */
	uint64_t retry_at;  /* monotonic, when WB_FAILED */
	unsigned fails;
	uint8_t state;
	bool cancel;
};

struct cache_wb {
	struct os_store *os;
	bool os_defer;         /* puts durable only after os_sync */
	struct cache_disk *dc; /* staged blocks move into it */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct tl_htab tab; /* staged blocks (tab.n of them) */
	uint64_t bytes;
	unsigned ndirs;
	char **sdir; /* <cache dir>/staging */
	int *dfd;
	uint64_t gen_staged, gen_synced;
	pthread_mutex_t smu;         /* cache_wb_sync: one at a time */
	_Atomic uint64_t sync_fails; /* failed cache_wb_sync calls */
	struct tl_pool *pool;
	pthread_t mon;
	bool stop;
	uint64_t max_age_ns, last_alarm;
	_Atomic uint64_t uploaded, errors;
};

/* ---- names ----------------------------------------------------------------- */

static char *
escape_key(const char *key)
{
	struct tl_buf b = TL_BUF_INIT;

	for (; *key; key++) {
		if (*key == '/')
			tl_buf_append(&b, "%2F", 3);
		else if (*key == '%')
			tl_buf_append(&b, "%25", 3);
		else
			tl_buf_append(&b, key, 1);
	}
	tl_buf_append(&b, "", 1);
	return (char *)b.data;
}

/* NULL when name is not an escaped key. */
static char *
unescape_name(const char *name)
{
	char *k = tl_malloc(strlen(name) + 1), *o = k;

	for (; *name; name++) {
		if (*name != '%') {
			*o++ = *name;
		} else if (strncmp(name, "%2F", 3) == 0) {
			*o++ = '/';
			name += 2;
		} else if (strncmp(name, "%25", 3) == 0) {
			*o++ = '%';
			name += 2;
		} else {
			free(k);
			return NULL;
		}
	}
	*o = '\0';
	return k;
}

/* Block length from the key (blockkey.c); 0 when name is no block key. */
static uint32_t
key_len(const char *key)
{
	uint32_t idx, len;
	uint64_t id;

	if (cache_block_key_parse(key, NULL, &id, &idx, &len) < 0)
		return 0;
	return len;
}

static char *
staged_path(struct cache_wb *w, unsigned dir, const char *key)
{
	char *e = escape_key(key), *p;

	p = tl_asprintf("%s/%s", w->sdir[dir], e);
	free(e);
	return p;
}

/* ---- the table ------------------------------------------------------------- */

static struct wbent *
wbent_of(struct tl_hnode *n)
{
	return n != NULL ? TL_CONTAINER_OF(n, struct wbent, hn) : NULL;
}

static struct wbent *
wfind(struct cache_wb *w, const char *key)
{
	struct tl_hnode *n;

	TL_HTAB_FOREACH_HASH(&w->tab, n, cache_key_hash(key))
	if (strcmp(wbent_of(n)->key, key) == 0)
		return wbent_of(n);
	return NULL;
}

static struct wbent *
wadd(struct cache_wb *w, const char *key, uint32_t len, unsigned dir,
     uint64_t staged_ns)
{
	struct wbent *e = tl_calloc(1, sizeof(*e));

	e->key = tl_strdup(key);
	e->len = len;
	e->dir = dir;
	e->staged_ns = staged_ns;
	e->state = WB_QUEUED;
	tl_htab_add(&w->tab, &e->hn, cache_key_hash(key));
	w->bytes += len;
	return e;
}

static void
wremove(struct cache_wb *w, struct wbent *e)
{
	tl_htab_del(&w->tab, &e->hn);
	w->bytes -= e->len;
}

static void
wfree(struct wbent *e)
{
	free(e->key);
	free(e);
}

/* ---- uploads ----------------------------------------------------------- */

struct wbjob {
	struct cache_wb *w;
	char key[];
};

static void upload_fn(void *arg);

static void
submit(struct cache_wb *w, const char *key)
{
	size_t n = strlen(key) + 1;
	struct wbjob *j = tl_malloc(sizeof(*j) + n);

	j->w = w;
	memcpy(j->key, key, n);
	tl_pool_submit(w->pool, upload_fn, j);
}

static void
upload_failed(struct cache_wb *w, struct wbent *e)
{
	uint64_t d = WB_RETRY_MIN_NS << TL_MIN(e->fails, 16u);

	e->fails++;
	e->state = WB_FAILED;
	e->retry_at = tl_mono_ns() + TL_MIN(d, WB_RETRY_MAX_NS);
	atomic_fetch_add(&w->errors, 1);
}

/* Finish an upload: the file moves into the cache, or goes. */
static void
upload_done(struct cache_wb *w, struct wbent *e, const char *path)
{
	bool cancel;

	pthread_mutex_lock(&w->mu);
	cancel = e->cancel; /* a cancelled entry left the table already */
	if (!cancel)
		wremove(w, e);
	pthread_mutex_unlock(&w->mu);
	if (cancel) {
		/* Released while the PUT was in flight: take it back. */
		os_delete(w->os, e->key);
	} else if (cache_disk_adopt(w->dc, path, e->key) < 0) {
		unlink(path);
	}
	atomic_fetch_add(&w->uploaded, 1);
	wfree(e);
}

static void
upload_fn(void *arg)
{
	struct wbjob *j = arg;
	struct cache_wb *w = j->w;
	struct wbent *e;
	uint8_t *buf = NULL;
	char *path = NULL;
	uint64_t mark;
	uint32_t len;
	int r;

	pthread_mutex_lock(&w->mu);
	e = wfind(w, j->key);
	if (e == NULL || e->state != WB_QUEUED || w->stop) {
		pthread_mutex_unlock(&w->mu);
		goto out;
	}
	e->state = WB_UPLOADING;
	len = e->len;
	path = staged_path(w, e->dir, e->key);
	pthread_mutex_unlock(&w->mu);

	buf = tl_malloc(len);
	r = cache_blockfile_read(path, e->key, len, 0, len, buf, NULL);
	if (r < 0) {
		pthread_mutex_lock(&w->mu);
		if (!e->cancel)
			/* The only copy is damaged: nothing can bring it
			 * back, so say which object is lost. */
			tl_err("cache",
			       "staged block %s is damaged (%s); "
			       "its data is lost",
			       path, strerror(-r));
		if (!e->cancel)
			wremove(w, e);
		pthread_mutex_unlock(&w->mu);
		unlink(path);
		wfree(e);
		atomic_fetch_add(&w->errors, 1);
		goto out;
	}
	/* The staged copy goes next: the stored one must be durable, and
	 * not lost to anyone's failed sync meanwhile (os_sync_since). */
	mark = os_sync_mark(w->os);
	r = os_put(w->os, e->key, buf, len);
	if (r == 0 && w->os_defer)
		r = os_sync_since(w->os, mark);
	if (r == 0) {
		upload_done(w, e, path);
		goto out;
	}
	tl_debug("cache", "upload of staged %s failed: %s", e->key,
		 strerror(-r));
	pthread_mutex_lock(&w->mu);
	if (e->cancel) {
		pthread_mutex_unlock(&w->mu);
		wfree(e);
		goto out;
	}
	upload_failed(w, e);
	pthread_mutex_unlock(&w->mu);
out:
	free(buf);
	free(path);
	free(j);
}

/* ---- monitor: retries and the age alarm ---------------------------------- */

static void
monitor_round(struct cache_wb *w)
{
	uint64_t now = tl_mono_ns(), wall = tl_now_ns(), overdue = 0;
	uint64_t oldest = UINT64_MAX;
	char **keys = NULL;
	size_t nk = 0, ck = 0, i;
	struct tl_hnode *n;
	struct wbent *e;

	pthread_mutex_lock(&w->mu);
	TL_HTAB_FOREACH(&w->tab, n)
	{
		e = wbent_of(n);
		oldest = TL_MIN(oldest, e->staged_ns);
		if (wall > e->staged_ns && wall - e->staged_ns > w->max_age_ns)
			overdue++;
		if (e->state != WB_FAILED || e->retry_at > now)
			continue;
		e->state = WB_QUEUED;
		if (nk == ck) {
			ck = ck ? ck * 2 : 16;
			keys = tl_realloc(keys, ck * sizeof(*keys));
		}
		keys[nk++] = tl_strdup(e->key);
	}
	if (overdue > 0 &&
	    (w->last_alarm == 0 || now - w->last_alarm >= WB_ALARM_EVERY_NS)) {
		w->last_alarm = now;
		tl_warn("cache",
			"writeback: %llu staged blocks older than "
			"%llu ms (oldest %llu s); uploads are failing "
			"or too slow",
			(unsigned long long)overdue,
			(unsigned long long)(w->max_age_ns / 1000000ULL),
			(unsigned long long)((wall - oldest) / 1000000000ULL));
	}
	pthread_mutex_unlock(&w->mu);
	for (i = 0; i < nk; i++) {
		submit(w, keys[i]);
		free(keys[i]);
	}
	free(keys);
}

static void *
monitor_main(void *arg)
{
	struct cache_wb *w = arg;
	struct timespec ts;

	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		pthread_mutex_unlock(&w->mu);
		monitor_round(w);
		pthread_mutex_lock(&w->mu);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		if (!w->stop)
			pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* ---- scanning ------------------------------------------------------------- */

typedef void (*scan_cb)(void *arg, unsigned dir, const char *key, uint32_t len,
			uint64_t mtime_ns);

/* Call cb for every staged block of dir; temporary files a crash left
 * are removed when remove_tmp. */
static void
scan_staging(const char *sdir, unsigned dir, bool remove_tmp, scan_cb cb,
	     void *arg)
{
	struct dirent *de;
	struct stat st;
	uint32_t len;
	size_t nl;
	char *key;
	DIR *dp = opendir(sdir);

	if (dp == NULL)
		return;
	while ((de = readdir(dp)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		nl = strlen(de->d_name);
		if (nl > 4 && strcmp(de->d_name + nl - 4, ".tmp") == 0) {
			if (remove_tmp)
				unlinkat(dirfd(dp), de->d_name, 0);
			continue;
		}
		key = unescape_name(de->d_name);
		len = key != NULL ? key_len(key) : 0;
		if (len > 0 && fstatat(dirfd(dp), de->d_name, &st, 0) == 0)
			cb(arg, dir, key, len,
			   (uint64_t)st.st_mtim.tv_sec * 1000000000ULL +
				   (uint64_t)st.st_mtim.tv_nsec);
		free(key);
	}
	closedir(dp);
}

static void
found_cb(void *arg, unsigned dir, const char *key, uint32_t len,
	 uint64_t mtime_ns)
{
	struct cache_wb *w = arg;

	if (wfind(w, key) == NULL)
		wadd(w, key, len, dir, mtime_ns);
}

/* ---- open and close ------------------------------------------------------- */

int
cache_wb_open(struct os_store *os, bool os_defer, struct cache_disk *dc,
	      uint64_t max_age_ms, unsigned threads, struct cache_wb **out)
{
	struct cache_wb *w;
	struct tl_hnode *n;
	char **keys;
	unsigned i;
	size_t b, nk = 0;

	*out = NULL;
	if (dc == NULL) {
		tl_err("cache", "writeback needs a cache directory");
		return -EINVAL;
	}
	w = tl_calloc(1, sizeof(*w));
	w->os = os;
	w->os_defer = os_defer;
	w->dc = dc;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	pthread_mutex_init(&w->smu, NULL);
	atomic_init(&w->sync_fails, 0);
	w->max_age_ns =
		(max_age_ms ? max_age_ms : WB_DEFAULT_MAX_AGE_MS) * 1000000ULL;
	w->ndirs = cache_disk_ndirs(dc);
	w->sdir = tl_calloc(w->ndirs, sizeof(*w->sdir));
	w->dfd = tl_calloc(w->ndirs, sizeof(*w->dfd));
	for (i = 0; i < w->ndirs; i++) {
		w->sdir[i] = tl_asprintf("%s/staging", cache_disk_dir(dc, i));
		w->dfd[i] =
			open(w->sdir[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (w->dfd[i] < 0)
			tl_warn("cache", "%s: %s", w->sdir[i], strerror(errno));
		scan_staging(w->sdir[i], i, true, found_cb, w);
	}
	if (w->tab.n > 0)
		tl_notice("cache",
			  "writeback: %llu staged blocks (%llu bytes) "
			  "found; uploading them",
			  (unsigned long long)w->tab.n,
			  (unsigned long long)w->bytes);
	w->pool = tl_pool_create("wb-upload", threads ? threads : 8, 0);
	/* Uploads start while keys are still submitted: collect first. */
	keys = tl_calloc(w->tab.n + 1, sizeof(*keys));
	TL_HTAB_FOREACH(&w->tab, n)
	keys[nk++] = tl_strdup(wbent_of(n)->key);
	for (b = 0; b < nk; b++) {
		submit(w, keys[b]);
		free(keys[b]);
	}
	free(keys);
	if (pthread_create(&w->mon, NULL, monitor_main, w) != 0) {
		cache_wb_close(w);
		return -EAGAIN;
	}
	*out = w;
	return 0;
}

/* Staged files stay on disk for the next start; only memory goes. */
void
cache_wb_close(struct cache_wb *w)
{
	struct tl_hnode *n, *next;
	unsigned i;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (w->mon)
		pthread_join(w->mon, NULL);
	tl_pool_destroy(w->pool);
	for (n = tl_htab_first(&w->tab); n != NULL; n = next) {
		next = tl_htab_next(&w->tab, n);
		wfree(wbent_of(n));
	}
	for (i = 0; i < w->ndirs; i++) {
		free(w->sdir[i]);
		if (w->dfd[i] >= 0)
			close(w->dfd[i]);
	}
	free(w->sdir);
	free(w->dfd);
	tl_htab_fini(&w->tab);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->smu);
	free(w);
}

/* ---- the calls of the data path ------------------------------------------ */

int
cache_wb_stage(struct cache_wb *w, const char *key, const void *data,
	       uint32_t len)
{
	unsigned dir = cache_disk_dir_of(w->dc, key);
	char *path = staged_path(w, dir, key);
	bool fresh = false;
	int r;

	r = cache_blockfile_write(path, key, data, len, true);
	free(path);
	if (r < 0) {
		tl_warn("cache", "staging %s: %s; uploading directly", key,
			strerror(-r));
		return r;
	}
	pthread_mutex_lock(&w->mu);
	if (wfind(w, key) == NULL) {
		wadd(w, key, len, dir, tl_now_ns());
		fresh = true;
	}
	w->gen_staged++;
	pthread_mutex_unlock(&w->mu);
	if (fresh)
		submit(w, key);
	return 0;
}

int
cache_wb_sync(struct cache_wb *w)
{
	uint64_t g;
	unsigned i;
	int r = 0;

	if (w == NULL)
		return 0;
	pthread_mutex_lock(&w->smu);
	pthread_mutex_lock(&w->mu);
	g = w->gen_staged;
	pthread_mutex_unlock(&w->mu);
	if (g <= w->gen_synced)
		goto out;
	for (i = 0; i < w->ndirs; i++)
		if (w->dfd[i] >= 0 && fsync(w->dfd[i]) < 0)
			r = -EIO;
	if (r == 0) {
		pthread_mutex_lock(&w->mu);
		w->gen_synced = TL_MAX(w->gen_synced, g);
		pthread_mutex_unlock(&w->mu);
	} else {
		atomic_fetch_add(&w->sync_fails, 1);
	}
out:
	pthread_mutex_unlock(&w->smu);
	return r;
}

uint64_t
cache_wb_failures(struct cache_wb *w)
{
	return w != NULL ? atomic_load(&w->sync_fails) : 0;
}

int
cache_wb_read(struct cache_wb *w, const char *key, uint32_t blen, uint32_t off,
	      uint32_t n, uint8_t *buf)
{
	struct wbent *e;
	char *path;
	int r;

	pthread_mutex_lock(&w->mu);
	e = wfind(w, key);
	path = e ? staged_path(w, e->dir, key) : NULL;
	pthread_mutex_unlock(&w->mu);
	if (path == NULL)
		return -ENOENT;
	r = cache_blockfile_read(path, key, blen, off, n, buf, NULL);
	free(path);
	/* Uploaded and moved meanwhile, or damaged: the caller looks in
	 * the disk cache and the object store next. */
	return r < 0 ? -ENOENT : 0;
}

void
cache_wb_cancel(struct cache_wb *w, const char *key)
{
	struct wbent *e;
	char *path;

	pthread_mutex_lock(&w->mu);
	e = wfind(w, key);
	if (e == NULL) {
		pthread_mutex_unlock(&w->mu);
		return;
	}
	path = staged_path(w, e->dir, key);
	wremove(w, e);
	if (e->state == WB_UPLOADING) {
		/* The uploader owns it now and deletes the object after its
		 * PUT returns. */
		e->cancel = true;
		e = NULL;
	}
	/* Gone from disk now, so a restart cannot upload it again. */
	unlink(path);
	pthread_mutex_unlock(&w->mu);
	free(path);
	if (e != NULL)
		wfree(e);
}

void
cache_wb_stats(struct cache_wb *w, struct cache_stats *s)
{
	uint64_t wall = tl_now_ns(), oldest = UINT64_MAX;
	struct wbent *e;
	struct tl_hnode *n;

	pthread_mutex_lock(&w->mu);
	s->staged_blocks = w->tab.n;
	s->staged_bytes = w->bytes;
	TL_HTAB_FOREACH(&w->tab, n)
	{
		e = wbent_of(n);
		oldest = TL_MIN(oldest, e->staged_ns);
		if (wall > e->staged_ns && wall - e->staged_ns > w->max_age_ns)
			s->staged_overdue++;
	}
	pthread_mutex_unlock(&w->mu);
	if (oldest != UINT64_MAX && wall > oldest)
		s->staged_oldest_s = (wall - oldest) / 1000000000ULL;
	s->uploaded = atomic_load(&w->uploaded);
	s->upload_errors = atomic_load(&w->errors);
}

/* ---- status without a daemon ---------------------------------------------- */

struct scan_acc {
	struct cache_stats *s;
	uint64_t now, oldest, max_age_ns;
};

static void
acc_cb(void *arg, unsigned dir, const char *key, uint32_t len,
       uint64_t mtime_ns)
{
	struct scan_acc *a = arg;

	(void)dir;
	(void)key;
	a->s->staged_blocks++;
	a->s->staged_bytes += len;
	a->oldest = TL_MIN(a->oldest, mtime_ns);
	if (a->now > mtime_ns && a->now - mtime_ns > a->max_age_ns)
		a->s->staged_overdue++;
}

int
cache_wb_scan(const char *cache_dirs, uint64_t max_age_ms,
	      struct cache_stats *out)
{
	struct scan_acc a = {out, tl_now_ns(), UINT64_MAX, 0};
	char *list, *tok, *save = NULL, *sdir;

	memset(out, 0, sizeof(*out));
	a.max_age_ns =
		(max_age_ms ? max_age_ms : WB_DEFAULT_MAX_AGE_MS) * 1000000ULL;
	if (cache_dirs == NULL)
		return 0;
	list = tl_strdup(cache_dirs);
	for (tok = strtok_r(list, ":", &save); tok;
	     tok = strtok_r(NULL, ":", &save)) {
		sdir = tl_asprintf("%s/staging", tok);
		scan_staging(sdir, 0, false, acc_cb, &a);
		free(sdir);
	}
	free(list);
	if (a.oldest != UINT64_MAX && a.now > a.oldest)
		out->staged_oldest_s = (a.now - a.oldest) / 1000000000ULL;
	return 0;
}
