/*
 * kv_lmdb.c - the embedded LMDB engine (lmdb:///dir).
 *
 * One environment, one unnamed database.  MDB_NOTLS so that read-only
 * transactions are not tied to a thread's slot (workers of a pool may
 * share them); writers are serialised, so a commit never conflicts.
 * Durability: never MDB_NOSYNC; MDB_NOMETASYNC moves the second sync of a
 * commit out of LMDB's write lock (group_sync), and a commit still
 * returns only once it is on disk.  The map is large and sparse
 * (64 GiB unless ?mapsize= says otherwise); when it is full, or the disk
 * is, calls return -ENOSPC.
 *
 * Group commit.  A durable LMDB commit costs two syncs (data pages, then
 * the meta page), which would cap the gateway at a few hundred metadata
 * operations per second however many clients wait.  So write
 * transactions share one LMDB write transaction per batch.  The first
 * caller to find no batch open is its leader: it begins the batch's
 * transaction on its own thread and works in it directly (so a lone
 * client pays no thread hand-off and no nested transaction).  Callers
 * that arrive while a batch is open join it as LMDB *nested*
 * transactions, one at a time as LMDB writers always run, so an aborted
 * member leaves the batch as it was.  When the leader's own work is done
 * it waits until the members queued so far have joined and finished (at
 * most GROUP_MAX), closes the batch and commits it, durably, on its own
 * thread, which is what LMDB's write lock requires; every member waits
 * for that commit and gets its result.  Every operation is still atomic
 * and acknowledged only once it is on disk; a lone client waits for one
 * sync pair, as before, and many clients share one.  The leader's own
 * work cannot be undone without the batch, so its abort ends a batch
 * nobody has joined yet (members join only once it is done).
 *
 * A lazy commit (meta_kv_commit_lazy) returns once its batch is
 * committed in LMDB, without waiting for the sync; a batch of lazy
 * commits only is not synced at all (the next sync carries it).
 *
 * Wakeups are targeted: callers waiting for their turn are woken one at a
 * time (a single member can run at once), the leader alone waits for its
 * members, and a batch's members wait on the batch.
 *
 * Resident map.  Reads return pointers into LMDB's read-only shared map,
 * so every page a lookup or a scan touches stays mapped in the process:
 * listing a directory of a million entries leaves ~400 MiB of the map in
 * the gateway's RSS (page cache the kernel can drop, but counted by
 * anything that reads RSS, the OOM killer's score included).  With
 * ?resident=SIZE (META_KV_LMDB_RESIDENT by default, 0 = no limit) a
 * reader that has moved on to MAP_CHECK_PAGES new pages since its last
 * look reads the process's file-backed RSS (/proc/self/statm) and, above
 * SIZE, unmaps the whole used map with MADV_DONTNEED.  That is safe under
 * readers: the map is never written through (no MDB_WRITEMAP), so the
 * pages stay in the page cache and the next touch maps them again (a
 * minor fault) with the same bytes.  One reader walking a directory stays
 * within a few MiB of SIZE; many threads faulting at random at once can
 * outrun the one unmapping, so for them SIZE is a target, not a bound.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "lib/tl.h"
#include "meta/kv.h"

#define LMDB_DEFAULT_MAPSIZE (64ULL << 30)
#define LMDB_MAX_READERS     1024
#define GROUP_MAX            256 /* children per batch */
/* Distinct pages a thread reads between two looks at the RSS (a fault
 * maps more than the page: the kernel's fault-around, 64 KiB, or a large
 * folio of the page cache). */
#define MAP_CHECK_PAGES 16
/* Free bytes under which a file system counts as full (commit_errno). */
#define COMMIT_FULL_BYTES (256ULL << 10)

/* One batch of write transactions committed together. */
struct lmdb_batch {
	unsigned refs;        /* members waiting + the leader */
	bool committed;       /* committed in LMDB (visible) */
	bool done;            /* and durable, or failed */
	bool durable;         /* a member waits for the sync, not only lazy */
	int crc;              /* result of the LMDB commit */
	int rc;               /* result of commit and sync */
	pthread_cond_t cond;  /* done became true */
	pthread_cond_t ccond; /* committed became true (lazy members) */
};

struct lmdb_group {
	pthread_mutex_t lock;
	pthread_cond_t turn;    /* a caller may join or lead: one woken */
	pthread_cond_t lead_cv; /* the leader: a member finished / left */
	MDB_txn *parent;        /* the open batch, NULL if none */
	struct lmdb_batch *batch;
	bool opening;     /* a leader is beginning a batch */
	bool busy;        /* the leader or a member is running */
	unsigned members; /* transactions merged into the batch */
	unsigned queued;  /* callers waiting to join or lead */
	/* Durability of committed batches (see group_sync). */
	pthread_cond_t sync_cv; /* a sync pass ended */
	uint64_t written;       /* batches committed (meta page written) */
	uint64_t synced;        /* of those, known to be on disk */
	bool syncing;           /* a sync pass runs */
};

/* LMDB forbids opening one environment twice in a process (closing one
 * handle would drop the other's locks), so opens of the same directory
 * share one environment, reference counted. */
struct lmdb_env {
	struct lmdb_env *next;
	char *path; /* realpath of the directory */
	MDB_env *env;
	MDB_dbi dbi;
	unsigned refs;
	bool rdonly; /* opened MDB_RDONLY: no write transactions */
	struct lmdb_group g;
	/* Resident map (see the top of this file). */
	uint64_t resident; /* bytes of file-backed RSS; 0: no limit */
	int statm;         /* /proc/self/statm, -1 if unreadable */
	char *map;         /* the map's address */
	size_t mapsize, psize;
	uint64_t pagesize; /* the system's, for statm */
	atomic_bool dropping;
	atomic_uint_fast64_t drops;
	atomic_bool bulk; /* meta_kv_lmdb_bulk: no syncs, appends */
	/* Figures for meta_kv_lmdb_stats (under g.lock, read without it). */
	atomic_uint_fast64_t n_batches, n_syncs, n_lazy;
};

/* What this thread read from the map lately. */
static __thread uintptr_t map_last_page;
static __thread unsigned map_pages;

static pthread_mutex_t envs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lmdb_env *envs;
static const struct meta_kv_ops lmdb_ops;

struct lmdb_kv {
	struct meta_kv base;
	struct lmdb_env *e;
	MDB_env *env;
	MDB_dbi dbi;
	bool rdonly; /* this handle was opened META_KV_RDONLY */
};

struct lmdb_txn {
	struct meta_kv_txn base;
	MDB_txn *txn;
	bool rdonly;
	bool leader;              /* write: txn is the batch itself */
	bool lazy;                /* commit: do not wait for the sync */
	struct lmdb_batch *batch; /* write: the batch this one belongs to */
};

/* Map an LMDB return code onto a negative errno. */
static int
lmdb_errno(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
	case MDB_PAGE_FULL:
	case ENOSPC:
	case EDQUOT:
		return -ENOSPC;
	case MDB_BAD_VALSIZE:
		return -EINVAL;
	default:
		/* LMDB's own codes are negative; system errors positive. */
		return rc > 0 ? -rc : -EIO;
	}
}

static int
mkdir_p(const char *dir)
{
	char *p = tl_strdup(dir);
	int rc = 0;

	for (char *s = p + 1;; s++) {
		char c = *s;

		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			rc = -errno;
			break;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return rc;
}

/* ---- resident map --------------------------------------------------------- */

/* The process's file-backed resident bytes (statm's third field: file
 * and shared memory pages), 0 if unreadable. */
static uint64_t
file_rss(const struct lmdb_env *e)
{
	char buf[128];
	unsigned long long size, res, shared;
	ssize_t n = pread(e->statm, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu %llu", &size, &res, &shared) != 3)
		return 0;
	return (uint64_t)shared * e->pagesize;
}

/* Where LMDB mapped dir/data.mdb (mdb_env_info tells the address only
 * for MDB_FIXEDMAP): the mapping of that file's inode in
 * /proc/self/maps, named by its device or, where stat's device is not
 * the one maps shows (btrfs subvolumes, overlayfs), by its path.  dir
 * is a real path.  0 with *map set, or -ENOENT. */
static int
map_find(const char *dir, char **map, size_t *len)
{
	char *path = tl_asprintf("%s/data.mdb", dir), line[PATH_MAX + 128];
	unsigned long long lo, hi, off, ino;
	unsigned maj, mnr;
	struct stat st;
	FILE *f;
	int rc = -ENOENT, at;

	if (stat(path, &st) < 0 || !(f = fopen("/proc/self/maps", "re"))) {
		free(path);
		return -ENOENT;
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "%llx-%llx %*s %llx %x:%x %llu %n", &lo, &hi,
			   &off, &maj, &mnr, &ino, &at) != 6 ||
		    ino != (unsigned long long)st.st_ino || off != 0 ||
		    (makedev(maj, mnr) != st.st_dev &&
		     strcmp(line + at, path) != 0))
			continue;
		*map = (char *)(uintptr_t)lo;
		*len = (size_t)(hi - lo);
		rc = 0;
		break;
	}
	fclose(f);
	free(path);
	return rc;
}

/* Above the limit: unmap the used part of the map (one thread at a time;
 * the others go on reading, faulting pages back as they need them). */
static void
map_check(struct lmdb_env *e)
{
	MDB_envinfo info;

	if (file_rss(e) <= e->resident || atomic_exchange(&e->dropping, true))
		return;
	if (mdb_env_info(e->env, &info) == 0) {
		size_t used = ((size_t)info.me_last_pgno + 1) * e->psize;

		if (madvise(e->map, TL_MIN(used, e->mapsize), MADV_DONTNEED) ==
		    0)
			atomic_fetch_add(&e->drops, 1);
	}
	atomic_store(&e->dropping, false);
}

/* A read returned p: count the pages of the map this thread moves to. */
static inline void
map_touch(struct lmdb_env *e, const void *p)
{
	uintptr_t a = (uintptr_t)p, pg = a / 4096;

	if (e->resident == 0 || pg == map_last_page ||
	    a - (uintptr_t)e->map >= e->mapsize)
		return;
	map_last_page = pg;
	if (++map_pages < MAP_CHECK_PAGES)
		return;
	map_pages = 0;
	map_check(e);
}

uint64_t
meta_kv_lmdb_map_drops(struct meta_kv *kv)
{
	return atomic_load(&((struct lmdb_kv *)kv)->e->drops);
}

int
meta_kv_lmdb_stats(struct meta_kv *kv, struct meta_kv_lmdb_stats *s)
{
	struct lmdb_env *e;
	MDB_envinfo info;
	MDB_stat st;
	int rc;

	memset(s, 0, sizeof(*s));
	if (kv == NULL || kv->ops != &lmdb_ops)
		return -ENOTSUP;
	e = ((struct lmdb_kv *)kv)->e;
	s->batches = atomic_load(&e->n_batches);
	s->syncs = atomic_load(&e->n_syncs);
	s->lazy = atomic_load(&e->n_lazy);
	rc = mdb_env_info(e->env, &info);
	if (rc == 0)
		rc = mdb_env_stat(e->env, &st);
	if (rc != 0)
		return lmdb_errno(rc);
	s->map_bytes = info.me_mapsize;
	s->page_size = st.ms_psize;
	s->pages_used = (uint64_t)info.me_last_pgno + 1;
	s->branch_pages = st.ms_branch_pages;
	s->leaf_pages = st.ms_leaf_pages;
	s->overflow_pages = st.ms_overflow_pages;
	s->entries = st.ms_entries;
	s->depth = st.ms_depth;
	s->readers = info.me_numreaders;
	s->max_readers = info.me_maxreaders;
	return 0;
}

int
meta_kv_lmdb_sync(struct meta_kv *kv)
{
	return lmdb_errno(mdb_env_sync(((struct lmdb_kv *)kv)->env, 1));
}

int
meta_kv_lmdb_bulk(struct meta_kv *kv, bool on)
{
	struct lmdb_env *e;
	int rc;

	if (kv == NULL || kv->ops != &lmdb_ops)
		return -ENOTSUP;
	e = ((struct lmdb_kv *)kv)->e;
	if (on) {
		rc = mdb_env_set_flags(e->env, MDB_NOSYNC, 1);
		if (rc == 0)
			atomic_store(&e->bulk, true);
		return lmdb_errno(rc);
	}
	atomic_store(&e->bulk, false);
	rc = mdb_env_set_flags(e->env, MDB_NOSYNC, 0);
	if (rc == 0)
		rc = mdb_env_sync(e->env, 1);
	return lmdb_errno(rc);
}

/* A copy reads every page of the tree through the map, inside LMDB,
 * where map_touch does not see it: without a look at the RSS now and
 * then, copying an engine would leave all of it mapped in the process
 * (a 400 MiB engine, 400 MiB more RSS).  A thread looks every
 * COPY_WATCH_MS while the copy runs. */
#define COPY_WATCH_MS 20

struct copy_watch {
	struct lmdb_env *e;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
};

static void *
copy_watch_main(void *arg)
{
	struct copy_watch *w = arg;
	struct timespec ts;

	pthread_mutex_lock(&w->mu);
	while (!w->done) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += COPY_WATCH_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
		pthread_mutex_unlock(&w->mu);
		map_check(w->e);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int
meta_kv_lmdb_copyfd(struct meta_kv *kv, int fd)
{
	struct lmdb_env *e = ((struct lmdb_kv *)kv)->e;
	struct copy_watch w = {e, PTHREAD_MUTEX_INITIALIZER,
			       PTHREAD_COND_INITIALIZER, false};
	pthread_t th;
	bool watching = e->resident != 0 &&
			pthread_create(&th, NULL, copy_watch_main, &w) == 0;
	int rc;

	rc = lmdb_errno(mdb_env_copyfd2(e->env, fd, MDB_CP_COMPACT));
	if (watching) {
		pthread_mutex_lock(&w.mu);
		w.done = true;
		pthread_cond_signal(&w.cv);
		pthread_mutex_unlock(&w.mu);
		pthread_join(th, NULL);
		map_check(e);
	}
	return rc;
}

/* ---- group commit -------------------------------------------------------- */

/* A commit's error as an errno.  LMDB reports a write the disk cut
 * short as EIO; when the file system is full that is "no space": the
 * caller's NFS3ERR_NOSPC, which frees itself once space is freed. */
static int
commit_errno(struct lmdb_env *e, int rc)
{
	struct statvfs sv;

	if (rc == EIO && statvfs(e->path, &sv) == 0 &&
	    (uint64_t)sv.f_bavail * sv.f_frsize < COMMIT_FULL_BYTES)
		return -ENOSPC;
	return lmdb_errno(rc);
}

static struct lmdb_batch *
batch_new(void)
{
	struct lmdb_batch *b = tl_calloc(1, sizeof(*b));

	b->refs = 1;
	pthread_cond_init(&b->cond, NULL);
	pthread_cond_init(&b->ccond, NULL);
	return b;
}

static void
batch_unref(struct lmdb_batch *b)
{
	if (--b->refs > 0)
		return;
	pthread_cond_destroy(&b->cond);
	pthread_cond_destroy(&b->ccond);
	free(b);
}

static void
group_start(struct lmdb_env *e)
{
	struct lmdb_group *g = &e->g;

	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->turn, NULL);
	pthread_cond_init(&g->lead_cv, NULL);
	pthread_cond_init(&g->sync_cv, NULL);
}

static void
group_stop(struct lmdb_env *e)
{
	struct lmdb_group *g = &e->g;

	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->turn);
	pthread_cond_destroy(&g->lead_cv);
	pthread_cond_destroy(&g->sync_cv);
}

/* The running transaction ended (g->lock held): the next queued caller
 * goes, or, when none can join any more, the leader closes the batch
 * (waking it while a member still follows would only put it back to
 * sleep: two context switches per member). */
static void
group_release(struct lmdb_group *g)
{
	g->busy = false;
	if (g->queued > 0 && (g->parent == NULL || g->members < GROUP_MAX))
		pthread_cond_signal(&g->turn);
	else
		pthread_cond_signal(&g->lead_cv);
}

/* Become the leader of a new batch (g->lock held on entry and exit). */
static int
group_lead(struct lmdb_env *e, struct lmdb_txn *t)
{
	struct lmdb_group *g = &e->g;
	MDB_txn *p = NULL;
	int rc;

	g->opening = true;
	pthread_mutex_unlock(&g->lock);
	/* Waits on LMDB's write lock while the previous batch commits. */
	rc = mdb_txn_begin(e->env, NULL, 0, &p);
	pthread_mutex_lock(&g->lock);
	g->opening = false;
	if (rc) {
		tl_err("meta", "lmdb: begin: %s", mdb_strerror(rc));
		if (g->queued > 0)
			pthread_cond_signal(&g->turn); /* let one try again */
		return lmdb_errno(rc);
	}
	g->parent = p;
	g->batch = batch_new();
	g->busy = true;
	t->leader = true;
	t->txn = p;
	t->batch = g->batch;
	return 0;
}

/* Begin a write transaction: lead a new batch or join the open one. */
static int
group_begin(struct lmdb_env *e, struct lmdb_txn *t)
{
	struct lmdb_group *g = &e->g;
	int rc;

	pthread_mutex_lock(&g->lock);
	g->queued++;
	for (;;) {
		if (g->parent && !g->busy && g->members < GROUP_MAX)
			break;
		if (!g->parent && !g->opening) {
			g->queued--;
			rc = group_lead(e, t);
			pthread_mutex_unlock(&g->lock);
			return rc;
		}
		pthread_cond_wait(&g->turn, &g->lock);
	}
	g->queued--;
	g->busy = true;
	t->batch = g->batch;
	t->batch->refs++;
	rc = mdb_txn_begin(e->env, g->parent, 0, &t->txn);
	if (rc) {
		tl_err("meta", "lmdb: begin nested: %s", mdb_strerror(rc));
		batch_unref(t->batch);
		group_release(g);
	}
	pthread_mutex_unlock(&g->lock);
	return lmdb_errno(rc);
}

/* Wait until batch seq is on disk (g->lock held).  The environment runs
 * with MDB_NOMETASYNC: a commit writes its data pages, syncs them, then
 * writes the meta page that makes them current without syncing it, and
 * releases LMDB's write lock.  A sync pass (fdatasync) started after that
 * write makes the batch durable; it runs outside the write lock, so the
 * next batch builds and writes meanwhile, and one pass serves every batch
 * written before it started.  Integrity never depends on it: the data
 * pages are synced before any meta page names them (LMDB's contract for
 * MDB_NOMETASYNC); only acknowledgement waits for it. */
static int
group_sync(struct lmdb_env *e, uint64_t seq)
{
	struct lmdb_group *g = &e->g;
	uint64_t upto;
	int rc;

	while (g->synced < seq) {
		if (g->syncing) {
			pthread_cond_wait(&g->sync_cv, &g->lock);
			continue;
		}
		g->syncing = true;
		upto = g->written;
		pthread_mutex_unlock(&g->lock);
		rc = mdb_env_sync(e->env, 1);
		atomic_fetch_add(&e->n_syncs, 1);
		pthread_mutex_lock(&g->lock);
		g->syncing = false;
		pthread_cond_broadcast(&g->sync_cv);
		pthread_cond_signal(&g->lead_cv); /* an open batch may close */
		if (rc) {
			tl_err("meta", "lmdb: sync: %s", mdb_strerror(rc));
			return lmdb_errno(rc);
		}
		if (upto > g->synced)
			g->synced = upto;
	}
	return 0;
}

/* The leader: wait for the members queued now, close the batch, commit
 * it and tell the members.  Returns the commit's result. */
static int
group_close(struct lmdb_env *e, struct lmdb_txn *t)
{
	struct lmdb_group *g = &e->g;
	struct lmdb_batch *b = t->batch;
	MDB_txn *p = t->txn;
	MDB_envinfo info;
	size_t id;
	int rc;

	pthread_mutex_lock(&g->lock);
	g->members++;
	b->durable |= !t->lazy;
	group_release(g);
	/* While a sync pass runs, the batch stays open: committing now
	 * would need a pass of its own after that one anyway, and callers
	 * arriving meanwhile (other clients' creates and commits) join it
	 * and share its two syncs instead of paying their own.  A lone
	 * client never finds a pass running (it waited for its own). */
	while ((g->busy || g->queued > 0 || g->syncing) &&
	       g->members < GROUP_MAX)
		pthread_cond_wait(&g->lead_cv, &g->lock);
	while (g->busy) /* a full batch: its last member is still running */
		pthread_cond_wait(&g->lead_cv, &g->lock);
	g->parent = NULL;
	g->batch = NULL;
	g->members = 0;
	if (g->queued > 0)
		pthread_cond_signal(&g->turn); /* the next batch's leader */
	pthread_mutex_unlock(&g->lock);
	id = mdb_txn_id(p);
	rc = mdb_txn_commit(p);
	if (rc)
		tl_err("meta", "lmdb: commit: %s", mdb_strerror(rc));
	if (rc == 0)
		mdb_env_info(e->env, &info);
	pthread_mutex_lock(&g->lock);
	rc = commit_errno(e, rc);
	/* A batch that changed nothing wrote no meta page (LMDB skips the
	 * commit): it only waits for the batches before it. */
	if (rc == 0 && info.me_last_txnid >= id) {
		g->written++;
		atomic_fetch_add(&e->n_batches, 1);
	}
	b->crc = rc;
	b->committed = true;
	pthread_cond_broadcast(&b->ccond);
	if (rc == 0 && b->durable)
		rc = group_sync(e, g->written);
	b->rc = rc;
	b->done = true;
	pthread_cond_broadcast(&b->cond);
	batch_unref(b);
	pthread_mutex_unlock(&g->lock);
	return rc;
}

/* Merge the member into its batch and wait until the batch is durable. */
static int
group_commit(struct lmdb_env *e, struct lmdb_txn *t)
{
	struct lmdb_group *g = &e->g;
	struct lmdb_batch *b = t->batch;
	int rc;

	if (t->leader)
		return group_close(e, t);
	rc = mdb_txn_commit(t->txn);
	pthread_mutex_lock(&g->lock);
	if (rc == 0)
		g->members++;
	b->durable |= rc == 0 && !t->lazy;
	group_release(g);
	if (rc == 0 && t->lazy) {
		/* visible once the batch is committed; durable later */
		while (!b->committed)
			pthread_cond_wait(&b->ccond, &g->lock);
		rc = b->crc;
	} else if (rc == 0) {
		while (!b->done)
			pthread_cond_wait(&b->cond, &g->lock);
		rc = b->rc;
	} else {
		tl_err("meta", "lmdb: commit: %s", mdb_strerror(rc));
		rc = commit_errno(e, rc);
	}
	batch_unref(b);
	pthread_mutex_unlock(&g->lock);
	return rc;
}

static void
group_abort(struct lmdb_env *e, struct lmdb_txn *t)
{
	struct lmdb_group *g = &e->g;

	mdb_txn_abort(t->txn);
	pthread_mutex_lock(&g->lock);
	if (t->leader) {
		/* Nobody joined yet: the batch ends here. */
		g->parent = NULL;
		g->batch = NULL;
		g->members = 0;
	}
	batch_unref(t->batch);
	group_release(g);
	pthread_mutex_unlock(&g->lock);
}

static int
lmdb_begin(struct meta_kv *kv, bool rdonly, struct meta_kv_txn **out)
{
	struct lmdb_kv *l = (struct lmdb_kv *)kv;
	struct lmdb_txn *t = tl_calloc(1, sizeof(*t));
	int rc;

	if (!rdonly && l->rdonly) {
		free(t);
		return -EROFS;
	}
	if (!rdonly) {
		rc = group_begin(l->e, t);
		if (rc) {
			free(t);
			return rc;
		}
		t->base.kv = kv;
		*out = &t->base;
		return 0;
	}
	rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &t->txn);
	if (rc) {
		tl_err("meta", "lmdb: begin: %s", mdb_strerror(rc));
		free(t);
		return lmdb_errno(rc);
	}
	t->base.kv = kv;
	t->rdonly = rdonly;
	*out = &t->base;
	return 0;
}

static int
lmdb_get(struct meta_kv_txn *bt, const void *key, size_t klen, const void **val,
	 size_t *vlen)
{
	struct lmdb_txn *t = (struct lmdb_txn *)bt;
	struct lmdb_kv *l = (struct lmdb_kv *)bt->kv;
	MDB_val k = {klen, (void *)key}, v;
	int rc;

	rc = mdb_get(t->txn, l->dbi, &k, &v);
	if (rc)
		return lmdb_errno(rc);
	map_touch(l->e, v.mv_data);
	*val = v.mv_data;
	*vlen = v.mv_size;
	return 0;
}

static int
lmdb_put(struct meta_kv_txn *bt, const void *key, size_t klen, const void *val,
	 size_t vlen)
{
	struct lmdb_txn *t = (struct lmdb_txn *)bt;
	struct lmdb_kv *l = (struct lmdb_kv *)bt->kv;
	MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
	int rc;

	/* A bulk load's keys come in order: append while they sort after
	 * the last key (LMDB checks it), else an ordinary put. */
	rc = MDB_KEYEXIST;
	if (atomic_load_explicit(&l->e->bulk, memory_order_relaxed))
		rc = mdb_put(t->txn, l->dbi, &k, &v, MDB_APPEND);
	if (rc == MDB_KEYEXIST)
		rc = mdb_put(t->txn, l->dbi, &k, &v, 0);
	if (rc && rc != MDB_MAP_FULL && rc != MDB_TXN_FULL)
		tl_err("meta", "lmdb: put: %s", mdb_strerror(rc));
	return lmdb_errno(rc);
}

static int
lmdb_del(struct meta_kv_txn *bt, const void *key, size_t klen)
{
	struct lmdb_txn *t = (struct lmdb_txn *)bt;
	struct lmdb_kv *l = (struct lmdb_kv *)bt->kv;
	MDB_val k = {klen, (void *)key};
	int rc;

	rc = mdb_del(t->txn, l->dbi, &k, NULL);
	if (rc == MDB_NOTFOUND)
		return 0;
	return lmdb_errno(rc);
}

static int
lmdb_add(struct meta_kv_txn *bt, const void *key, size_t klen,
	 const int64_t *delta, unsigned n)
{
	struct lmdb_txn *t = (struct lmdb_txn *)bt;
	struct lmdb_kv *l = (struct lmdb_kv *)bt->kv;
	MDB_val k = {klen, (void *)key}, v;
	uint8_t sum[8 * META_KV_ADD_MAX];
	int rc;

	rc = mdb_get(t->txn, l->dbi, &k, &v);
	if (rc && rc != MDB_NOTFOUND)
		return lmdb_errno(rc);
	rc = meta_kv_add_sum(rc ? NULL : v.mv_data, rc ? 0 : v.mv_size, delta,
			     n, sum);
	if (rc < 0)
		return rc;
	if (rc == 1)
		return lmdb_del(bt, key, klen);
	return lmdb_put(bt, key, klen, sum, 8 * (size_t)n);
}

/* memcmp order with a shorter prefix first: LMDB's default order. */
static int
key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int c = memcmp(a, b, TL_MIN(alen, blen));

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int
lmdb_scan(struct meta_kv_txn *bt, const void *start, size_t slen,
	  const void *end, size_t elen, meta_kv_scan_cb cb, void *arg)
{
	struct lmdb_txn *t = (struct lmdb_txn *)bt;
	struct lmdb_kv *l = (struct lmdb_kv *)bt->kv;
	MDB_cursor *c;
	MDB_val k = {slen, (void *)start}, v;
	MDB_cursor_op op = MDB_SET_RANGE;
	int rc;

	rc = mdb_cursor_open(t->txn, l->dbi, &c);
	if (rc)
		return lmdb_errno(rc);
	if (slen == 0)
		op = MDB_FIRST;
	for (;;) {
		rc = mdb_cursor_get(c, &k, &v, op);
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			break;
		}
		if (rc) {
			rc = lmdb_errno(rc);
			break;
		}
		op = MDB_NEXT;
		map_touch(l->e, k.mv_data);
		map_touch(l->e, v.mv_data);
		if (end && key_cmp(k.mv_data, k.mv_size, end, elen) >= 0)
			break;
		rc = cb(arg, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
		if (rc) {
			rc = rc < 0 ? rc : 0;
			break;
		}
	}
	mdb_cursor_close(c);
	return rc;
}

static int
lmdb_commit(struct meta_kv_txn *bt)
{
	struct lmdb_txn *t = (struct lmdb_txn *)bt;
	int rc;

	if (t->rdonly) {
		mdb_txn_abort(t->txn);
		free(t);
		return 0;
	}
	rc = group_commit(((struct lmdb_kv *)bt->kv)->e, t);
	free(t);
	return rc;
}

static int
lmdb_commit_lazy(struct meta_kv_txn *bt)
{
	struct lmdb_env *e = ((struct lmdb_kv *)bt->kv)->e;
	bool rdonly = ((struct lmdb_txn *)bt)->rdonly;
	int rc;

	((struct lmdb_txn *)bt)->lazy = true;
	rc = lmdb_commit(bt);
	if (rc == 0 && !rdonly)
		atomic_fetch_add(&e->n_lazy, 1);
	return rc;
}

static void
lmdb_abort(struct meta_kv_txn *bt)
{
	struct lmdb_txn *t = (struct lmdb_txn *)bt;

	if (t->rdonly)
		mdb_txn_abort(t->txn);
	else
		group_abort(((struct lmdb_kv *)bt->kv)->e, t);
	free(t);
}

static void
lmdb_close(struct meta_kv *kv)
{
	struct lmdb_kv *l = (struct lmdb_kv *)kv;
	struct lmdb_env *e = l->e, **pp;

	pthread_mutex_lock(&envs_lock);
	if (--e->refs == 0) {
		for (pp = &envs; *pp != e; pp = &(*pp)->next)
			;
		*pp = e->next;
		group_stop(e);
		mdb_env_close(e->env);
		if (e->statm >= 0)
			close(e->statm);
		free(e->path);
		free(e);
	}
	pthread_mutex_unlock(&envs_lock);
	free(l);
}

/* A read-only transaction reads the snapshot of the last write
 * transaction committed when it began: its id. */
static uint64_t
lmdb_version(struct meta_kv_txn *bt)
{
	struct lmdb_txn *t = (struct lmdb_txn *)bt;

	return t->rdonly ? (uint64_t)mdb_txn_id(t->txn) : 0;
}

static const struct meta_kv_ops lmdb_ops = {
	.scheme = "lmdb",
	.begin = lmdb_begin,
	.get = lmdb_get,
	.put = lmdb_put,
	.del = lmdb_del,
	.add = lmdb_add,
	.scan = lmdb_scan,
	.commit = lmdb_commit,
	.commit_lazy = lmdb_commit_lazy,
	.abort = lmdb_abort,
	.close = lmdb_close,
	.version = lmdb_version,
	.copyfd = meta_kv_lmdb_copyfd,
};

static int
env_create(const char *dir, uint64_t mapsize, uint64_t resident, bool rdonly,
	   struct lmdb_env *e, char **err)
{
	MDB_stat st;
	MDB_txn *txn = NULL;
	int rc, dead;

	rc = mdb_env_create(&e->env);
	if (rc == 0)
		rc = mdb_env_set_mapsize(e->env, (size_t)mapsize);
	if (rc == 0)
		rc = mdb_env_set_maxreaders(e->env, LMDB_MAX_READERS);
	if (rc == 0)
		rc = mdb_env_open(e->env, dir,
				  MDB_NOTLS | MDB_NOMETASYNC |
					  (rdonly ? MDB_RDONLY : 0),
				  0600);
	if (rc == 0)
		rc = mdb_reader_check(e->env, &dead);
	if (rc == 0)
		rc = mdb_txn_begin(e->env, NULL, rdonly ? MDB_RDONLY : 0, &txn);
	if (rc == 0)
		rc = mdb_dbi_open(txn, NULL, 0, &e->dbi);
	if (rc == 0) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (rc == 0)
		rc = mdb_env_stat(e->env, &st);
	if (rc == 0) {
		e->rdonly = rdonly;
		e->psize = st.ms_psize;
		e->pagesize = (uint64_t)sysconf(_SC_PAGESIZE);
		e->statm = -1;
		if (resident && map_find(dir, &e->map, &e->mapsize) == 0)
			e->statm =
				open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
		else if (resident)
			tl_warn("meta",
				"lmdb: %s/data.mdb not found in "
				"/proc/self/maps: resident= not applied",
				dir);
		e->resident = e->statm >= 0 ? resident : 0;
		return 0;
	}
	if (err)
		*err = tl_asprintf("cannot open LMDB at %s: %s", dir,
				   mdb_strerror(rc));
	if (txn)
		mdb_txn_abort(txn);
	if (e->env)
		mdb_env_close(e->env);
	return lmdb_errno(rc);
}

int
meta_kv_lmdb_open(const char *dir, uint64_t mapsize, uint64_t resident,
		  unsigned flags, struct meta_kv **out, char **err)
{
	struct lmdb_kv *l = tl_calloc(1, sizeof(*l));
	bool rdonly = (flags & META_KV_RDONLY) != 0;
	char path[PATH_MAX], *data;
	struct lmdb_env *e;
	struct stat st;
	int rc;

	*out = NULL;
	if (mapsize == 0)
		mapsize = LMDB_DEFAULT_MAPSIZE;
	/* Read-only: nothing is created, not even the directory, so that a
	 * mistyped URL is an error rather than a new environment. */
	rc = rdonly ? 0 : mkdir_p(dir);
	if (rc == 0 && !realpath(dir, path))
		rc = -errno;
	if (rc) {
		if (err)
			*err = rdonly ? tl_asprintf("no LMDB environment at "
						    "%s: %s",
						    dir, strerror(-rc))
				      : tl_asprintf("cannot create %s: %s", dir,
						    strerror(-rc));
		free(l);
		return rc;
	}
	data = tl_asprintf("%s/data.mdb", path);
	if (rdonly && stat(data, &st) < 0) {
		rc = -errno;
		if (err)
			*err = tl_asprintf("no LMDB environment at %s (%s: "
					   "%s)",
					   dir, data, strerror(errno));
		free(data);
		free(l);
		return rc;
	}
	free(data);
	pthread_mutex_lock(&envs_lock);
	for (e = envs; e && strcmp(e->path, path) != 0; e = e->next)
		;
	if (e && e->rdonly && !rdonly) {
		/* LMDB allows one environment per file in a process. */
		if (err)
			*err = tl_asprintf("LMDB at %s is already open "
					   "read-only in this process",
					   dir);
		rc = -EBUSY;
	} else if (!e) {
		e = tl_calloc(1, sizeof(*e));
		rc = env_create(path, mapsize, resident, rdonly, e, err);
		if (rc == 0) {
			group_start(e);
			e->path = tl_strdup(path);
			e->next = envs;
			envs = e;
		} else {
			free(e);
		}
	}
	if (rc == 0) {
		e->refs++;
		l->e = e;
		l->env = e->env;
		l->dbi = e->dbi;
		l->rdonly = rdonly;
		l->base.ops = &lmdb_ops;
		*out = &l->base;
	} else {
		free(l);
	}
	pthread_mutex_unlock(&envs_lock);
	return rc;
}
