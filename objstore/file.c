/*
 * file.c - the file:///dir object store.
 *
 * A key is a relative path under dir; its '/' separated components become
 * subdirectories, created on demand (and never removed: a concurrent put
 * could be about to rename into one).
 *
 * Objects hold the bytes of files of any mode, so they are created 0600
 * in directories created 0700 (whatever the umask), and an open for
 * writing takes group and other access off the root itself (a store of
 * an older version, made 0755, is closed that way as a whole).
 *
 * Crash safety: a put writes the object under a unique temporary name in
 * dir/.tmp, fdatasyncs it, renames it over the final name and fsyncs the
 * final directory (and any directory it had to create, in its parent).
 * After a crash a key either names a complete object or does not exist.
 *
 * With os_defer_sync both syncs move to os_sync, the barrier a caller
 * passes before anything refers to the objects: a put writes, starts the
 * kernel's writeback of the temporary (sync_file_range WRITE, which does
 * not wait; with os_file_direct whole aligned blocks are written with
 * O_DIRECT instead, see DIO_MIN), renames it and keeps its descriptor;
 * os_sync then fdatasyncs every object put since the last sync (by then
 * mostly on disk already), and only after them fsyncs every directory
 * renamed into, once each.  So a 64 MiB flush pays no disk wait per 4 MiB block
 * and the disk writes while the client still sends, as a local file
 * system does before COMMIT.  The price: until os_sync returns, a power
 * loss may leave a key naming an incomplete object; nothing refers to it
 * yet (its slice is committed after the barrier) and gc removes it.  An
 * object whose fdatasync fails is unlinked and the sync answers -EIO, so
 * a key never stays behind naming data the disk could not keep.  At most
 * PEND_MAX waiting objects keep their descriptor; further ones are
 * closed and remembered by key, and the pass that syncs them is
 * necessarily a syncfs (below).  A pass with SYNCFS_MIN or more objects
 * and directories makes one syncfs(2) of the store's file system
 * instead (falling back to the per-object syncs if it reports an error;
 * an object remembered by key then cannot be checked on its own, since
 * a descriptor opened after a writeback error does not report it, and
 * is unlinked: the sync answers -EIO).  Concurrent syncs share passes
 * (group commit); a sync returns only after a pass that began after its
 * call, so every object put and every directory dirtied before it is
 * synced.  An object unlinked by a failed pass may have been put by
 * another caller, whose own later pass succeeds: failed passes are
 * counted (os_sync_mark) so that caller learns it (os_sync_since).
 *
 * Leftover temporaries are removed by a later open once they are an hour
 * old (a younger one may belong to another process using the same dir).
 * The top-level name ".tmp" is therefore not a valid key here.
 *
 * Listing walks the tree in key order: entries of one directory are
 * sorted by name with a '/' appended to subdirectories, which is exactly
 * the byte order of the keys below them.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lib/tl.h"
#include "objstore/objstore-internal.h"
#include "objstore/objstore.h"

#define TMP_DIR ".tmp"
/* Objects are file data of any mode (a 0600 NFS file's bytes among
 * them): only the gateway's user may read them. */
#define STORE_FILE_MODE 0600
#define STORE_DIR_MODE  0700
#define TMP_MAX_AGE_S   3600
/* Objects waiting for os_sync that keep their descriptor: four 64 MiB
 * flushes' worth of 4 MiB blocks, few enough beside the connections
 * under the usual 1024 descriptors.  (A put beyond them used to
 * fdatasync itself: a flush of random 4 KiB writes made one journal
 * commit per object.) */
#define PEND_MAX 64
/* A pass with at least this many objects and directories to sync makes
 * one syncfs of the store's file system instead: fewer journal commits
 * than an fdatasync per object and an fsync per directory, at the price
 * of also writing whatever else is dirty on that file system. */
#define SYNCFS_MIN 4
/* A deferred put of at least this much starts its writeback at once
 * (sync_file_range); smaller ones wait for the barrier. */
#define SFR_MIN (64u << 10)

/* With os_file_direct on, objects at least this big, with address and
 * length multiples of DIO_ALIGN (whole write-buffer blocks are), are
 * written with O_DIRECT: the disk reads them from the caller's buffer,
 * with no copy into the page cache (half the CPU of a sequential write
 * through a buffered write) and no dirty pages left for a later sync to
 * write out.  The price: the page cache does not keep what was just
 * written, so reading it back goes to the disk (a buffered write leaves
 * it cached, as a local file system does).  Off by default. */
#define DIO_ALIGN 4096
#define DIO_MIN   (256u << 10)

struct pend {
	int fd;    /* the object, written, renamed, not yet synced; -1:
		      closed (beyond PEND_MAX), synced by syncfs only */
	char *key; /* to unlink it if its data cannot be synced */
};

static const struct os_ops file_ops;

struct file_store {
	struct os_store base; /* first: the store handle */
	char *dir;
	int dirfd;
	atomic_uint_fast64_t seq; /* temporary names: prefix-seq */
	char tmp_prefix[32];      /* pid and a random number */
	atomic_bool defer;        /* directory fsyncs wait for os_sync */
	atomic_bool direct;       /* os_file_direct: O_DIRECT wanted */
	atomic_bool no_direct;    /* O_DIRECT refused here: write buffered */
	pthread_mutex_t dmu;      /* guards the fields below */
	pthread_cond_t scv;       /* a sync pass finished */
	char **dirty;             /* directories renamed into, not synced */
	size_t ndirty, cdirty;
	struct pend *pend; /* objects put, data not synced */
	size_t npend, cpend;
	size_t nreserved;       /* puts that will add to pend */
	uint64_t started, done; /* sync passes begun, finished */
	bool busy;              /* a pass is running */
	int last_err;           /* of the last finished pass */
	/* Passes that failed (os_sync_mark): counted before the pass is
	 * marked done, so a sync that returns after it sees the count. */
	atomic_uint_fast64_t failures;
};

static struct file_store *
fs_of(struct os_store *s)
{
	return (struct file_store *)s;
}

/* Translate a system error; the cause of an -EIO is logged here because
 * the caller only sees the translated code. */
static int
fs_error(struct file_store *fs, const char *what, const char *key, int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
		return -ENOSPC;
	case ENOENT:
	case ENOTDIR:
		return -ENOENT;
	default:
		tl_warn("objstore", "%s: %s %s: %s", fs->base.url, what, key,
			strerror(e));
		return -EIO;
	}
}

static bool
fs_key_reserved(const char *key)
{
	return strncmp(key, TMP_DIR, sizeof(TMP_DIR) - 1) == 0 &&
	       (key[sizeof(TMP_DIR) - 1] == '/' ||
		key[sizeof(TMP_DIR) - 1] == '\0');
}

/* fsync the directory holding key ("." for a top-level key). */
static int
fsync_parent(int dirfd, const char *key)
{
	const char *slash = strrchr(key, '/');
	char *parent;
	int r;

	if (slash == NULL)
		return tl_fsync_dir_at(dirfd, ".");
	parent = tl_strndup(key, (size_t)(slash - key));
	r = tl_fsync_dir_at(dirfd, parent);
	free(parent);
	return r;
}

/* Create the directories above key; each new one is made durable in its
 * parent so the object renamed into it survives a crash. */
static int
make_parents(int dirfd, const char *key)
{
	char *path = tl_strdup(key);
	char *p;
	int r = 0;

	for (p = strchr(path, '/'); p != NULL; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdirat(dirfd, path, STORE_DIR_MODE) == 0) {
			r = fsync_parent(dirfd, path);
		} else if (errno != EEXIST) {
			r = -errno;
		}
		*p = '/';
		if (r < 0)
			break;
	}
	free(path);
	return r;
}

/* Buffered writes go in pieces of at most this much: the page cache
 * sizes its folios after the write, and a write of 2 MiB or more asks
 * for PMD-sized ones, which on a VM whose free memory the host has
 * taken back cost ~10x per byte (4 MiB objects into new files: 270-530
 * MB/s in 2 or 4 MiB writes, 4.1-5.0 GB/s in 1 MiB writes, same
 * machine, same minute).  O_DIRECT writes go whole. */
#define WRITE_PIECE (1u << 20)

static int
write_all(int fd, const void *data, size_t len, bool direct)
{
	const uint8_t *p = data;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p,
			  direct || len < WRITE_PIECE ? len : WRITE_PIECE);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Note that directory dir[0..n) needs an fsync before os_sync returns. */
static void
add_dirty(struct file_store *fs, const char *dir, size_t n)
{
	size_t i;

	pthread_mutex_lock(&fs->dmu);
	for (i = 0; i < fs->ndirty; i++)
		if (strlen(fs->dirty[i]) == n &&
		    memcmp(fs->dirty[i], dir, n) == 0)
			goto out;
	if (fs->ndirty == fs->cdirty) {
		fs->cdirty = fs->cdirty ? fs->cdirty * 2 : 8;
		fs->dirty =
			tl_realloc(fs->dirty, fs->cdirty * sizeof(*fs->dirty));
	}
	fs->dirty[fs->ndirty++] = tl_strndup(dir, n);
out:
	pthread_mutex_unlock(&fs->dmu);
}

static void
mark_dirty(struct file_store *fs, const char *key)
{
	const char *slash = strrchr(key, '/');

	if (slash == NULL)
		add_dirty(fs, ".", 1);
	else
		add_dirty(fs, key, (size_t)(slash - key));
}

/* Take a slot for an object that keeps its descriptor until os_sync;
 * false when PEND_MAX have one already (the put then closes it). */
static bool
pend_reserve(struct file_store *fs)
{
	bool ok;

	pthread_mutex_lock(&fs->dmu);
	ok = fs->npend + fs->nreserved < PEND_MAX;
	if (ok)
		fs->nreserved++;
	pthread_mutex_unlock(&fs->dmu);
	return ok;
}

/* Note an object os_sync must sync: with its descriptor fd in the slot
 * reserved, or by key alone (fd -1, not reserved).  key NULL: give the
 * reserved slot back unused. */
static void
pend_add(struct file_store *fs, bool reserved, int fd, const char *key)
{
	pthread_mutex_lock(&fs->dmu);
	if (reserved)
		fs->nreserved--;
	if (key != NULL) {
		if (fs->npend == fs->cpend) {
			fs->cpend = fs->cpend ? fs->cpend * 2 : 16;
			fs->pend = tl_realloc(fs->pend,
					      fs->cpend * sizeof(*fs->pend));
		}
		fs->pend[fs->npend++] = (struct pend){fd, tl_strdup(key)};
	}
	pthread_mutex_unlock(&fs->dmu);
}

/* fdatasync the objects of v (and close them); an object that cannot be
 * synced is unlinked, so its key does not name lost data. */
static int
sync_objects(struct file_store *fs, struct pend *v, size_t n)
{
	size_t i;
	int r = 0, e;

	for (i = 0; i < n; i++) {
		if (v[i].fd < 0 || fdatasync(v[i].fd) < 0) {
			e = v[i].fd < 0 ? EIO : errno;
			unlinkat(fs->dirfd, v[i].key, 0);
			if (r == 0)
				r = fs_error(fs, "fdatasync", v[i].key, e);
			if (r != -EIO && r != -ENOSPC)
				r = -EIO;
		}
		if (v[i].fd >= 0)
			close(v[i].fd);
		free(v[i].key);
	}
	free(v);
	return r;
}

static int
file_defer_sync(struct os_store *s)
{
	atomic_store(&fs_of(s)->defer, true);
	return 0;
}

/* One pass: fdatasync the objects and then fsync the directories taken
 * from the lists, with dmu held on entry and exit (released while
 * syncing).  A directory that could not be synced goes back on the list
 * for the next pass; an object cannot (after a failed fdatasync the
 * kernel forgets the error), so it is unlinked instead. */
static void
sync_pass(struct file_store *fs)
{
	char **v = fs->dirty;
	size_t n = fs->ndirty, i, k;
	struct pend *pv = fs->pend;
	size_t np = fs->npend;
	int r, e;

	fs->busy = true;
	fs->started++;
	fs->dirty = NULL;
	fs->ndirty = fs->cdirty = 0;
	fs->pend = NULL;
	fs->npend = fs->cpend = 0;
	pthread_mutex_unlock(&fs->dmu);
	if (np + n >= SYNCFS_MIN && syncfs(fs->dirfd) == 0) {
		/* Every object and every directory on disk in one journal
		 * commit: a flush of many small slices (random writes) made
		 * one fdatasync each.  Writeback errors since the last
		 * syncfs fail it, and the per-object path below then finds
		 * the objects concerned. */
		for (i = 0; i < np; i++) {
			if (pv[i].fd >= 0)
				close(pv[i].fd);
			free(pv[i].key);
		}
		free(pv);
		for (i = 0; i < n; i++)
			free(v[i]);
		free(v);
		pthread_mutex_lock(&fs->dmu);
		fs->busy = false;
		fs->done = fs->started;
		fs->last_err = 0;
		pthread_cond_broadcast(&fs->scv);
		return;
	}
	/* Data first: a name made durable must name durable bytes. */
	r = sync_objects(fs, pv, np);
	for (i = 0; i < n; i++) {
		e = tl_fsync_dir_at(fs->dirfd, v[i]);
		if (e < 0) {
			if (r == 0)
				r = fs_error(fs, "fsync dir", v[i], -e);
			break;
		}
		free(v[i]);
	}
	for (k = i; k < n; k++) {
		add_dirty(fs, v[k], strlen(v[k]));
		free(v[k]);
	}
	free(v);
	pthread_mutex_lock(&fs->dmu);
	if (r < 0)
		atomic_fetch_add(&fs->failures, 1);
	fs->busy = false;
	fs->done = fs->started;
	fs->last_err = r;
	pthread_cond_broadcast(&fs->scv);
}

static uint64_t
file_sync_failures(struct os_store *s)
{
	return atomic_load(&fs_of(s)->failures);
}

/* Group commit: the caller needs a pass that begins after its call; all
 * callers waiting meanwhile share the next one.  A failed directory is
 * retried by every later pass, so the last pass's result answers for
 * the earlier ones too. */
static int
file_sync(struct os_store *s)
{
	struct file_store *fs = fs_of(s);
	uint64_t need;
	int r;

	pthread_mutex_lock(&fs->dmu);
	if (!fs->busy && fs->ndirty == 0 && fs->npend == 0) {
		pthread_mutex_unlock(&fs->dmu);
		return 0;
	}
	need = fs->started + 1;
	while (fs->done < need) {
		if (fs->busy)
			pthread_cond_wait(&fs->scv, &fs->dmu);
		else
			sync_pass(fs);
	}
	r = fs->last_err;
	pthread_mutex_unlock(&fs->dmu);
	return r;
}

/* Rename the temporary tmp to key, creating the directories above key
 * when missing (most puts land in an existing directory: the rename is
 * tried first). */
static int
rename_in(struct file_store *fs, const char *tmp, const char *key)
{
	int r;

	if (renameat(fs->dirfd, tmp, fs->dirfd, key) == 0)
		return 0;
	r = -errno;
	if (r != -ENOENT)
		return r;
	r = make_parents(fs->dirfd, key);
	if (r < 0)
		return r;
	if (renameat(fs->dirfd, tmp, fs->dirfd, key) < 0)
		return -errno;
	return 0;
}

/* Create the temporary tmp and write data into it, with O_DIRECT when
 * the buffer allows and the file system takes it (else buffered); *fd
 * receives the open file, *direct whether the page cache was bypassed. */
static int
write_tmp(struct file_store *fs, const char *tmp, const void *data, size_t len,
	  int *fd, bool *direct)
{
	int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, r;

	*direct = atomic_load(&fs->direct) && !atomic_load(&fs->no_direct) &&
		  len >= DIO_MIN && len % DIO_ALIGN == 0 &&
		  (uintptr_t)data % DIO_ALIGN == 0;
	*fd = openat(fs->dirfd, tmp, flags | (*direct ? O_DIRECT : 0),
		     STORE_FILE_MODE);
	if (*fd < 0 && *direct && errno == EINVAL) {
		atomic_store(&fs->no_direct, true);
		*direct = false;
		*fd = openat(fs->dirfd, tmp, flags, STORE_FILE_MODE);
	}
	if (*fd < 0)
		return -errno;
	r = write_all(*fd, data, len, *direct);
	if (r == -EINVAL && *direct) {
		/* Alignment this file system does not take: buffered. */
		atomic_store(&fs->no_direct, true);
		*direct = false;
		if (fcntl(*fd, F_SETFL, 0) < 0 || ftruncate(*fd, 0) < 0 ||
		    lseek(*fd, 0, SEEK_SET) < 0)
			return -errno;
		r = write_all(*fd, data, len, false);
	}
	return r;
}

static int
file_put(struct os_store *s, const char *key, const void *data, size_t len)
{
	struct file_store *fs = fs_of(s);
	bool defer = atomic_load(&fs->defer), keep = false, direct;
	char tmp[64];
	int fd, r;

	if (fs_key_reserved(key))
		return -EINVAL;
	snprintf(tmp, sizeof(tmp), TMP_DIR "/%s-%llu", fs->tmp_prefix,
		 (unsigned long long)atomic_fetch_add(&fs->seq, 1));
	r = write_tmp(fs, tmp, data, len, &fd, &direct);
	if (fd < 0)
		return fs_error(fs, "create", tmp, -r);
	if (r < 0) {
		/* nothing */
	} else if (defer) {
		keep = pend_reserve(fs);
		/* Start the writeback of a big object now, so that os_sync
		 * finds it done or under way; failures show at the sync.
		 * (Direct data is on the disk already: the size and the
		 * block map wait for the sync.)  Small ones are left to the
		 * barrier, which writes them in one batch. */
		if (!direct && len >= SFR_MIN)
			(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	} else if (fdatasync(fd) < 0) {
		/* A new file: fdatasync also writes the size needed to
		 * read it. */
		r = -errno;
	}
	if (r == 0)
		r = rename_in(fs, tmp, key);
	if (r < 0) {
		if (keep)
			pend_add(fs, true, -1, NULL);
		close(fd);
		unlinkat(fs->dirfd, tmp, 0);
		return fs_error(fs, "put", key, -r);
	}
	atomic_fetch_add(&fs->base.puts, 1);
	if (defer) {
		if (!keep)
			close(fd); /* its data waits for the syncfs */
		pend_add(fs, keep, keep ? fd : -1, key);
		mark_dirty(fs, key);
		return 0;
	}
	if (close(fd) < 0) /* after fdatasync: not a data loss */
		tl_debug("objstore", "close %s: %s", key, strerror(errno));
	r = fsync_parent(fs->dirfd, key);
	if (r < 0)
		return fs_error(fs, "fsync dir of", key, -r);
	return 0;
}

/* Whether bytes [off, off+len) of fd can be read without waiting for
 * the disk: the first and the last byte are (RWF_NOWAIT fails on a page
 * not cached or still being read).  Pages between are taken to be: a
 * sequential reader's readahead brings them in order. */
static bool
cached(int fd, uint64_t off, size_t len)
{
	char b;
	struct iovec v = {&b, 1};

	return preadv2(fd, &v, 1, (off_t)off, RWF_NOWAIT) == 1 &&
	       preadv2(fd, &v, 1, (off_t)(off + len - 1), RWF_NOWAIT) == 1;
}

/* Open object key for reading: *fd and its size; -ENOENT when no
 * object has that key (a directory is none). */
static int
open_object(struct file_store *fs, const char *key, int *fd, uint64_t *size)
{
	struct stat st;
	int r;

	if (fs_key_reserved(key))
		return -ENOENT;
	*fd = openat(fs->dirfd, key, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return errno == EISDIR ? -ENOENT
				       : fs_error(fs, "open", key, errno);
	if (fstat(*fd, &st) < 0)
		r = fs_error(fs, "stat", key, errno);
	else if (!S_ISREG(st.st_mode))
		r = -ENOENT;
	else
		r = 0;
	if (r < 0) {
		close(*fd);
		*fd = -1;
		return r;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

static int
file_open_range(struct os_store *s, const char *key, uint64_t off, size_t len,
		int *out)
{
	uint64_t size;
	int fd, r;

	r = open_object(fs_of(s), key, &fd, &size);
	if (r < 0)
		return r;
	if (size < off + len) {
		close(fd);
		return -EIO;
	}
	if (len > 0 && !cached(fd, off, len)) {
		close(fd);
		return -EAGAIN;
	}
	*out = fd;
	return 0;
}

static int
file_get(struct os_store *s, const char *key, uint64_t off, size_t len,
	 void *buf, size_t *got)
{
	struct file_store *fs = fs_of(s);
	uint64_t size;
	size_t done = 0;
	ssize_t n;
	int fd, r;

	*got = 0;
	r = open_object(fs, key, &fd, &size);
	if (r < 0)
		return r;
	if (off > size) {
		r = -ERANGE;
		goto out;
	}
	while (done < len) {
		n = pread(fd, (uint8_t *)buf + done, len - done,
			  (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = fs_error(fs, "read", key, errno);
			goto out;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
out:
	close(fd);
	return r;
}

/* A stream read one object at a time on fresh descriptors gets no kernel
 * readahead across objects (nor much within one): ask for the coming
 * range now, without waiting (the kernel queues the disk reads). */
int
os_file_advise(struct os_store *s, const char *key, uint64_t off, uint64_t len)
{
	struct file_store *fs = fs_of(s);
	int fd, r;

	if (!os_key_valid(key) || fs_key_reserved(key))
		return -EINVAL;
	fd = openat(fs->dirfd, key, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = -posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_WILLNEED);
	close(fd);
	return r;
}

int
os_file_direct(struct os_store *s, bool on)
{
	if (s == NULL || s->ops != &file_ops)
		return -EINVAL;
	atomic_store(&fs_of(s)->direct, on);
	return 0;
}

static int
file_head(struct os_store *s, const char *key, uint64_t *size)
{
	struct file_store *fs = fs_of(s);
	struct stat st;

	if (fs_key_reserved(key))
		return -ENOENT;
	if (fstatat(fs->dirfd, key, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return fs_error(fs, "stat", key, errno);
	if (!S_ISREG(st.st_mode))
		return -ENOENT;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int
file_del(struct os_store *s, const char *key)
{
	struct file_store *fs = fs_of(s);

	if (fs_key_reserved(key))
		return -EINVAL;
	if (unlinkat(fs->dirfd, key, 0) < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR)
			return 0;
		return fs_error(fs, "delete", key, errno);
	}
	return 0;
}

/* ---- listing ------------------------------------------------------------ */

struct lister {
	struct file_store *fs;
	const char *prefix;
	size_t plen;
	const char *start_after;
	os_list_cb cb;
	void *arg;
	os_list_info_cb icb; /* set by file_list_info instead of cb */
};

struct lent {
	char *key; /* full key; directories end with '/' */
	bool dir;
};

static int
lent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct lent *)a)->key,
		      ((const struct lent *)b)->key);
}

/* Could a key at or below this entry match the prefix and come after
 * start_after? */
static bool
lent_wanted(const struct lister *l, const struct lent *e)
{
	size_t n = strlen(e->key);

	if (e->dir) {
		if (strncmp(e->key, l->prefix, TL_MIN(n, l->plen)) != 0)
			return false;
		/* The whole subtree sorts before start_after unless
		 * start_after itself lies inside it. */
		if (l->start_after != NULL &&
		    strcmp(e->key, l->start_after) < 0 &&
		    strncmp(l->start_after, e->key, n) != 0)
			return false;
		return true;
	}
	if (strncmp(e->key, l->prefix, l->plen) != 0)
		return false;
	return l->start_after == NULL || strcmp(e->key, l->start_after) > 0;
}

/* Read the entries of directory fd (key prefix path) sorted in key order.
 * Takes ownership of fd. */
static int
read_dir(struct lister *l, int fd, const char *path, struct lent **out,
	 size_t *nout)
{
	struct lent *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	struct stat st;
	DIR *d;
	bool dir;

	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (path[0] == '\0' && strcmp(de->d_name, TMP_DIR) == 0)
			continue;
		if (de->d_type == DT_DIR) {
			dir = true;
		} else if (de->d_type == DT_REG) {
			dir = false;
		} else {
			if (fstatat(dirfd(d), de->d_name, &st,
				    AT_SYMLINK_NOFOLLOW) < 0)
				continue; /* raced with a delete */
			if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
				continue;
			dir = S_ISDIR(st.st_mode);
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = tl_realloc(v, cap * sizeof(*v));
		}
		v[n].key =
			tl_asprintf("%s%s%s", path, de->d_name, dir ? "/" : "");
		v[n].dir = dir;
		n++;
	}
	closedir(d);
	if (n > 1)
		qsort(v, n, sizeof(*v), lent_cmp);
	*out = v;
	*nout = n;
	return 0;
}

static int
walk(struct lister *l, int parent, const char *rel, const char *path)
{
	struct lent *v = NULL;
	size_t n = 0, i;
	const char *name;
	struct stat st;
	int fd, r;

	fd = openat(parent, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	r = dup(fd);
	if (r < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = read_dir(l, r, path, &v, &n);
	if (r < 0) {
		close(fd);
		return r;
	}
	for (i = 0; i < n && r == 0; i++) {
		if (!lent_wanted(l, &v[i]))
			continue;
		name = v[i].key + strlen(path);
		if (v[i].dir) {
			char *sub = tl_strndup(name, strlen(name) - 1);

			r = walk(l, fd, sub, v[i].key);
			free(sub);
			continue;
		}
		if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* deleted meanwhile */
		if (l->icb != NULL) {
			struct os_obj_info oi = {
				(uint64_t)st.st_size,
				(uint64_t)st.st_mtim.tv_sec * 1000000000ULL +
					(uint64_t)st.st_mtim.tv_nsec};

			r = l->icb(l->arg, v[i].key, &oi);
		} else {
			r = l->cb(l->arg, v[i].key, (uint64_t)st.st_size);
		}
	}
	close(fd);
	for (i = 0; i < n; i++)
		free(v[i].key);
	free(v);
	return r;
}

static int
list_start(struct lister *l)
{
	const char *slash = strrchr(l->prefix, '/');
	char *dirpart, *rel;
	int r;

	/* Start in the deepest directory the prefix names completely. */
	if (slash == NULL)
		return walk(l, l->fs->dirfd, ".", "");
	dirpart = tl_strndup(l->prefix, (size_t)(slash - l->prefix) + 1);
	rel = tl_strndup(l->prefix, (size_t)(slash - l->prefix));
	r = fs_key_reserved(rel) ? 0 : walk(l, l->fs->dirfd, rel, dirpart);
	free(rel);
	free(dirpart);
	return r;
}

static int
file_list(struct os_store *s, const char *prefix, const char *start_after,
	  os_list_cb cb, void *arg)
{
	struct lister l = {fs_of(s), prefix, strlen(prefix), start_after, cb,
			   arg,      NULL};

	return list_start(&l);
}

/* The mtime is the last write of the temporary file a put renames into
 * place: about when the object was stored. */
static int
file_list_info(struct os_store *s, const char *prefix, const char *start_after,
	       os_list_info_cb cb, void *arg)
{
	struct lister l = {fs_of(s), prefix, strlen(prefix), start_after, NULL,
			   arg,      cb};

	return list_start(&l);
}

static void
file_close(struct os_store *s)
{
	struct file_store *fs = fs_of(s);
	size_t i;

	/* Puts never synced were never promised durable. */
	for (i = 0; i < fs->npend; i++) {
		close(fs->pend[i].fd);
		free(fs->pend[i].key);
	}
	free(fs->pend);
	for (i = 0; i < fs->ndirty; i++)
		free(fs->dirty[i]);
	free(fs->dirty);
	pthread_mutex_destroy(&fs->dmu);
	pthread_cond_destroy(&fs->scv);
	close(fs->dirfd);
	free(fs->dir);
	free(fs->base.url);
	free(fs);
}

static const struct os_ops file_ops = {
	.scheme = "file",
	.put = file_put,
	.get = file_get,
	.head = file_head,
	.del = file_del,
	.list = file_list,
	.close = file_close,
	.defer_sync = file_defer_sync,
	.sync = file_sync,
	.sync_failures = file_sync_failures,
	.list_info = file_list_info,
	.open_range = file_open_range,
};

/* Remove temporaries left by a crash, once they are surely abandoned. */
static void
clean_tmp(int root)
{
	struct dirent *de;
	struct stat st;
	time_t now = time(NULL);
	DIR *d;
	int fd;

	fd = openat(root, TMP_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
			    0 &&
		    st.st_mtime + TMP_MAX_AGE_S < now)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

/* The root of a store made by an older version (0755) or by hand: no
 * access for others, which also closes every directory below it. */
static void
private_root(int fd, const char *dir)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || (st.st_mode & 077) == 0)
		return;
	if (fchmod(fd, st.st_mode & 0700) == 0)
		tl_notice("objstore",
			  "file store %s: mode %03o -> %03o (its "
			  "objects are file data of any mode)",
			  dir, (unsigned)(st.st_mode & 0777),
			  (unsigned)(st.st_mode & 0700));
	else
		tl_warn("objstore",
			"file store %s is readable by other users "
			"(mode %03o) and cannot be changed: %s",
			dir, (unsigned)(st.st_mode & 0777), strerror(errno));
}

static int
mkdir_p(const char *dir)
{
	char *path = tl_strdup(dir);
	char *p;
	int r = 0;

	for (p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(path, STORE_DIR_MODE) < 0 && errno != EEXIST) {
			r = -errno;
			break;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	free(path);
	return r;
}

int
os_file_open(const char *dir, struct os_store **out, char **err)
{
	return os_file_open_flags(dir, 0, out, err);
}

int
os_file_open_flags(const char *dir, unsigned flags, struct os_store **out,
		   char **err)
{
	bool rdonly = (flags & OS_OPEN_RDONLY) != 0;
	struct file_store *fs;
	int fd, r;

	*out = NULL;
	if (dir[0] == '\0') {
		if (err)
			*err = tl_strdup("file store: empty directory");
		return -EINVAL;
	}
	/* Read-only: create nothing, remove nothing (not even old
	 * temporaries, which may be another process's). */
	r = rdonly ? 0 : mkdir_p(dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if (err)
			*err = tl_asprintf("file store %s: %s", dir,
					   strerror(errno));
		return r;
	}
	if (!rdonly)
		private_root(fd, dir);
	if (!rdonly && mkdirat(fd, TMP_DIR, STORE_DIR_MODE) < 0 &&
	    errno != EEXIST) {
		r = -errno;
		if (err)
			*err = tl_asprintf("file store %s: mkdir " TMP_DIR
					   ": %s",
					   dir, strerror(-r));
		close(fd);
		return r;
	}
	if (!rdonly)
		clean_tmp(fd);
	fs = tl_calloc(1, sizeof(*fs));
	pthread_mutex_init(&fs->dmu, NULL);
	pthread_cond_init(&fs->scv, NULL);
	fs->base.ops = &file_ops;
	fs->base.url = tl_asprintf("file://%s", dir);
	fs->dir = tl_strdup(dir);
	fs->dirfd = fd;
	atomic_init(&fs->seq, 0);
	atomic_init(&fs->failures, 0);
	snprintf(fs->tmp_prefix, sizeof(fs->tmp_prefix), "%ld-%08x",
		 (long)getpid(), (unsigned)tl_random_u64());
	*out = &fs->base;
	return 0;
}
