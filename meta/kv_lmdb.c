/*
 * kv_lmdb.c - the embedded LMDB engine (lmdb:///dir).
 *
 * One environment, one unnamed database.  MDB_NOTLS so that read-only
 * transactions are not tied to a thread's slot (workers of a pool may
 * share them); writers are serialised by LMDB itself, so a commit never
 * conflicts.  Durability: MDB_NOSYNC and MDB_NOMETASYNC are deliberately
 * not used, so a commit returns only once it is on disk.  The map is
 * large and sparse (64 GiB unless ?mapsize= says otherwise); when it is
 * full, or the disk is, calls return -ENOSPC.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/tl.h"
#include "meta/kv.h"

#define LMDB_DEFAULT_MAPSIZE (64ULL << 30)
#define LMDB_MAX_READERS 1024

/* LMDB forbids opening one environment twice in a process (closing one
 * handle would drop the other's locks), so opens of the same directory
 * share one environment, reference counted. */
struct lmdb_env {
	struct lmdb_env *next;
	char *path;          /* realpath of the directory */
	MDB_env *env;
	MDB_dbi dbi;
	unsigned refs;
};

static pthread_mutex_t envs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lmdb_env *envs;

struct lmdb_kv {
	struct meta_kv base;
	struct lmdb_env *e;
	MDB_env *env;
	MDB_dbi dbi;
};

struct lmdb_txn {
	struct meta_kv_txn base;
	MDB_txn *txn;
	bool rdonly;
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

static int
lmdb_begin(struct meta_kv *kv, bool rdonly, struct meta_kv_txn **out)
{
	struct lmdb_kv *l = (struct lmdb_kv *)kv;
	struct lmdb_txn *t = tl_calloc(1, sizeof(*t));
	int rc;

	rc = mdb_txn_begin(l->env, NULL, rdonly ? MDB_RDONLY : 0, &t->txn);
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
lmdb_get(struct meta_kv_txn *bt, const void *key, size_t klen,
	 const void **val, size_t *vlen)
{
	struct lmdb_txn *t = (struct lmdb_txn *)bt;
	struct lmdb_kv *l = (struct lmdb_kv *)bt->kv;
	MDB_val k = {klen, (void *)key}, v;
	int rc;

	rc = mdb_get(t->txn, l->dbi, &k, &v);
	if (rc)
		return lmdb_errno(rc);
	*val = v.mv_data;
	*vlen = v.mv_size;
	return 0;
}

static int
lmdb_put(struct meta_kv_txn *bt, const void *key, size_t klen,
	 const void *val, size_t vlen)
{
	struct lmdb_txn *t = (struct lmdb_txn *)bt;
	struct lmdb_kv *l = (struct lmdb_kv *)bt->kv;
	MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
	int rc;

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
	rc = mdb_txn_commit(t->txn);
	if (rc)
		tl_err("meta", "lmdb: commit: %s", mdb_strerror(rc));
	free(t);
	return lmdb_errno(rc);
}

static void
lmdb_abort(struct meta_kv_txn *bt)
{
	struct lmdb_txn *t = (struct lmdb_txn *)bt;

	mdb_txn_abort(t->txn);
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
		mdb_env_close(e->env);
		free(e->path);
		free(e);
	}
	pthread_mutex_unlock(&envs_lock);
	free(l);
}

static const struct meta_kv_ops lmdb_ops = {
	.scheme = "lmdb",
	.begin = lmdb_begin,
	.get = lmdb_get,
	.put = lmdb_put,
	.del = lmdb_del,
	.scan = lmdb_scan,
	.commit = lmdb_commit,
	.abort = lmdb_abort,
	.close = lmdb_close,
};

static int
env_create(const char *dir, uint64_t mapsize, struct lmdb_env *e,
	   char **err)
{
	MDB_txn *txn = NULL;
	int rc, dead;

	rc = mdb_env_create(&e->env);
	if (rc == 0)
		rc = mdb_env_set_mapsize(e->env, (size_t)mapsize);
	if (rc == 0)
		rc = mdb_env_set_maxreaders(e->env, LMDB_MAX_READERS);
	if (rc == 0)
		rc = mdb_env_open(e->env, dir, MDB_NOTLS, 0600);
	if (rc == 0)
		rc = mdb_reader_check(e->env, &dead);
	if (rc == 0)
		rc = mdb_txn_begin(e->env, NULL, 0, &txn);
	if (rc == 0)
		rc = mdb_dbi_open(txn, NULL, 0, &e->dbi);
	if (rc == 0) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (rc == 0)
		return 0;
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
meta_kv_lmdb_open(const char *dir, uint64_t mapsize, struct meta_kv **out,
		  char **err)
{
	struct lmdb_kv *l = tl_calloc(1, sizeof(*l));
	char path[PATH_MAX];
	struct lmdb_env *e;
	int rc;

	*out = NULL;
	if (mapsize == 0)
		mapsize = LMDB_DEFAULT_MAPSIZE;
	rc = mkdir_p(dir);
	if (rc == 0 && !realpath(dir, path))
		rc = -errno;
	if (rc) {
		if (err)
			*err = tl_asprintf("cannot create %s: %s", dir,
					   strerror(-rc));
		free(l);
		return rc;
	}
	pthread_mutex_lock(&envs_lock);
	for (e = envs; e && strcmp(e->path, path) != 0; e = e->next)
		;
	if (!e) {
		e = tl_calloc(1, sizeof(*e));
		rc = env_create(path, mapsize, e, err);
		if (rc == 0) {
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
		l->base.ops = &lmdb_ops;
		*out = &l->base;
	} else {
		free(l);
	}
	pthread_mutex_unlock(&envs_lock);
	return rc;
}
