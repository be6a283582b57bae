/*
 * trash.c - the trash of a volume (meta.h, "the trash").
 *
 * With trash_days > 0, a non-directory whose last link goes (REMOVE, a
 * RENAME over it) is not released: it is linked, in the same
 * transaction, into /.trash/<hour>/<parent>-<ino>-<name>, where hour is
 * the UTC hour it was removed in (YYYY-MM-DD-HH), parent the directory
 * it was removed from and name its name there (cut to fit 255 bytes).
 * Its ctime is the time of removal.  The trash and its hour directories
 * are ordinary directories (mode 0555, root's), so fsck, usage and
 * READDIR treat them as any other; what makes them the trash is the
 * counter CNT_TRASH_INO naming the trash directory, written when it is
 * created.  Nothing of a client may change them (meta_trash_guard:
 * -EPERM for creates, removes, renames and links in them, and for a
 * rename of /.trash itself), only root sees /.trash (lookup and READDIR
 * of the root hide it from everyone else), and the volume's used bytes
 * and inodes keep counting what is in the trash until it is released.
 *
 * The trash directory and the hour directories are created in a
 * transaction of their own (meta_trash_prepare): a removal that finds
 * what it needs missing fails with -ENOSR, and meta_txn_run prepares
 * them and runs it again.  So the removal never writes the root or a parent
 * it did not read itself, and takes no inode number inside a
 * transaction.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "meta/meta-internal.h"

#define TRASH_MODE 0555
#define HOUR_NS    (3600ULL * 1000000000ULL)

int
meta_trash_ino(struct mtxn *t, uint64_t *ino)
{
	int rc;

	*ino = atomic_load(&t->m->trash_ino);
	if (*ino != 0)
		return 0;
	rc = meta_counter_get(t, CNT_TRASH_INO, ino);
	if (rc == 0 && *ino != 0)
		atomic_store(&t->m->trash_ino, *ino); /* never changes */
	return rc;
}

int
meta_trash_guard(struct mtxn *t, const struct inode *d)
{
	uint64_t trash;
	int rc;

	rc = meta_trash_ino(t, &trash);
	if (rc || trash == 0)
		return rc;
	return d->a.ino == trash || d->a.parent == trash ? -EPERM : 0;
}

bool
meta_trash_hidden(struct mtxn *t, const struct meta_cred *c, uint64_t dir,
		  uint64_t ino)
{
	uint64_t trash;

	if (c == NULL || c->uid == 0 || dir != META_ROOT_INO)
		return false;
	return meta_trash_ino(t, &trash) == 0 && trash != 0 && ino == trash;
}

/* How long removed files stay: the test override, or trash_days of the
 * settings as stored now (`tessera config --trash-days` applies without
 * a restart).  0: no trash. */
static int
retention(struct mtxn *t, uint64_t *ns)
{
	struct meta_settings s;
	struct meta_key k;
	const void *v;
	size_t vlen;
	int rc;

	if (t->m->trash_retention_ns != 0) {
		*ns = t->m->trash_retention_ns;
		return 0;
	}
	meta_key_setting(t->m, &k);
	rc = meta_kv_get(t->kv, k.b, k.len, &v, &vlen);
	if (rc == 0)
		rc = meta_settings_decode(v, vlen, &s);
	if (rc == 0)
		*ns = (uint64_t)s.trash_days * 86400ULL * 1000000000ULL;
	return rc;
}

/* A new directory of the trash, ino, named name in d (written by the
 * caller). */
static int
trash_mkdir(struct mtxn *t, struct inode *d, const char *name, uint64_t ino,
	    uint64_t now, struct inode *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	out->a.ino = ino;
	out->a.gen = (uint32_t)tl_random_u64() | 1;
	out->a.type = META_DIR;
	out->a.mode = TRASH_MODE;
	out->a.nlink = 2;
	out->a.atime_ns = out->a.mtime_ns = out->a.ctime_ns = now;
	out->a.parent = d->a.ino;
	out->next_cookie = 3;
	rc = meta_dentry_add(t, d, name, strlen(name), META_DIR, ino);
	if (rc == 0)
		rc = meta_inode_put(t, out);
	d->a.nlink++;
	d->a.mtime_ns = d->a.ctime_ns = now;
	if (rc == 0)
		rc = meta_usage_add(t, d->a.ino, 0, 1);
	t->d_inodes++;
	return rc;
}

/* The trash directory, created as newino if missing (-EEXIST: the root
 * holds a .trash that is not it). */
static int
trash_root(struct mtxn *t, uint64_t now, uint64_t newino, struct inode *out)
{
	struct inode root;
	uint64_t ino, cino;
	int rc;

	rc = meta_trash_ino(t, &ino);
	if (rc == 0 && ino != 0)
		return meta_inode_get(t, ino, out);
	if (rc)
		return rc;
	rc = meta_dentry_get(t, META_ROOT_INO, META_TRASH_NAME,
			     strlen(META_TRASH_NAME), NULL, &cino, NULL);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	ino = newino;
	rc = meta_inode_get(t, META_ROOT_INO, &root);
	if (rc == 0)
		rc = trash_mkdir(t, &root, META_TRASH_NAME, ino, now, out);
	if (rc == 0)
		rc = meta_inode_put(t, &root);
	if (rc == 0)
		rc = meta_counter_set(t, CNT_TRASH_INO, ino);
	return rc;
}

void
meta_trash_hour_name(uint64_t ns, char *buf, size_t len)
{
	time_t s = (time_t)(ns / 1000000000ULL);
	struct tm tm;

	gmtime_r(&s, &tm);
	strftime(buf, len, "%Y-%m-%d-%H", &tm);
}

/* The hour directory of now, created as newino if missing (newino 0:
 * -ENOSR instead). */
static int
trash_hour(struct mtxn *t, struct inode *trash, uint64_t now, uint64_t newino,
	   struct inode *out)
{
	char name[32];
	uint64_t ino;
	int rc;

	meta_trash_hour_name(now, name, sizeof(name));
	rc = meta_dentry_get(t, trash->a.ino, name, strlen(name), NULL, &ino,
			     NULL);
	if (rc == 0)
		return meta_inode_get(t, ino, out);
	if (rc != -ENOENT)
		return rc;
	if (newino == 0)
		return -ENOSR;
	rc = trash_mkdir(t, trash, name, newino, now, out);
	if (rc == 0)
		rc = meta_inode_put(t, trash);
	return rc;
}

static int
prepare_txn(struct mtxn *t, void *arg)
{
	const uint64_t *ino = arg;
	uint64_t now = tl_now_ns();
	struct inode trash, hour;
	int rc;

	rc = trash_root(t, now, ino[0], &trash);
	if (rc == 0)
		rc = trash_hour(t, &trash, now, ino[1], &hour);
	return rc;
}

int
meta_trash_prepare(struct meta *m)
{
	uint64_t ino[2];
	int rc;

	rc = meta_alloc_ino(m, &ino[0]);
	if (rc == 0)
		rc = meta_alloc_ino(m, &ino[1]);
	if (rc)
		return rc;
	return meta_txn_run(m, false, prepare_txn, ino);
}

int
meta_trash_put(struct mtxn *t, uint64_t from, const char *name, size_t len,
	       struct inode *v, uint64_t now, bool *trashed)
{
	int64_t bytes = v->a.type == META_REG ? (int64_t)round4k(v->a.size) : 0;
	struct inode trash, hour;
	char tname[META_NAME_MAX + 1];
	uint64_t keep, tino;
	int n, rc;

	*trashed = false;
	if (v->a.type == META_DIR)
		return 0;
	rc = retention(t, &keep);
	if (rc || keep == 0)
		return rc;
	rc = meta_trash_ino(t, &tino);
	if (rc == 0 && tino == 0) {
		uint64_t cino;

		rc = meta_dentry_get(t, META_ROOT_INO, META_TRASH_NAME,
				     strlen(META_TRASH_NAME), NULL, &cino,
				     NULL);
		if (rc == 0) {
			tl_warn(META_SUB,
				"the volume root holds a /%s that "
				"is not the trash: removed files are released "
				"at once",
				META_TRASH_NAME);
			return 0;
		}
		return rc == -ENOENT ? -ENOSR : rc; /* meta_trash_prepare */
	}
	if (rc == 0)
		rc = meta_inode_get(t, tino, &trash);
	if (rc == 0)
		rc = trash_hour(t, &trash, now, 0, &hour);
	if (rc)
		return rc;
	n = snprintf(tname, sizeof(tname), "%" PRIu64 "-%" PRIu64 "-", from,
		     v->a.ino);
	if ((size_t)n + len > META_NAME_MAX)
		len = META_NAME_MAX - (size_t)n;
	memcpy(tname + n, name, len);
	tname[n + len] = '\0';
	rc = meta_dentry_add(t, &hour, tname, (size_t)n + len, v->a.type,
			     v->a.ino);
	hour.a.mtime_ns = hour.a.ctime_ns = now;
	if (rc == 0)
		rc = meta_inode_put(t, &hour);
	if (rc == 0 && v->a.parent)
		rc = meta_usage_add(t, v->a.parent, -bytes, -1);
	if (rc == 0)
		rc = meta_usage_add(t, hour.a.ino, bytes, 1);
	if (rc == 0)
		rc = meta_quota_trash_put(t, v);
	if (v->a.type == META_REG) { /* from the logical bytes to the trash's */
		t->d_logical -= (int64_t)v->a.size;
		t->d_trash += (int64_t)v->a.size;
	}
	if (rc == 0)
		rc = meta_links_clear(t, v->a.ino);
	v->a.nlink = 1;
	v->a.parent = hour.a.ino;
	v->a.ctime_ns = now;
	if (rc == 0)
		rc = meta_inode_put(t, v);
	*trashed = rc == 0;
	return rc;
}

/* ---- listing, restoring, releasing ---------------------------------------- */

/* Up to max entries of directory dir after cookie `after`, in cookie
 * order: its readdir index records, read back with dlist_next. */
static int
dlist_read(struct mtxn *t, uint64_t dir, uint64_t after, size_t max,
	   struct meta_kvlist *l)
{
	struct meta_key s, e;

	l->max = max;
	meta_key_order(t->m, &s, dir, after + 1);
	meta_key_ino(t->m, &e, dir, 'P');
	return meta_kvlist_scan(t->kv, l, s.b, s.len, e.b, e.len);
}

/* The next entry of l at *off: inode, cookie and name (META_NAME_MAX + 1
 * bytes); false at the end. */
static bool
dlist_next(const struct meta_kvlist *l, size_t *off, uint64_t *ino,
	   uint64_t *cookie, char *name)
{
	const uint8_t *k, *v;
	size_t klen, vlen;

	while (meta_kvlist_next(l, off, &k, &klen, &v, &vlen)) {
		if (vlen < 10 || vlen - 9 > META_NAME_MAX)
			continue; /* ino 8, type 1, a name */
		*ino = tl_get_be64(v);
		*cookie = tl_get_be64(k + klen - 8);
		memcpy(name, v + 9, vlen - 9);
		name[vlen - 9] = '\0';
		return true;
	}
	return false;
}

/* "<parent>-<ino>-<name>": parent, and name's offset. */
static bool
parse_entry(const char *s, uint64_t *parent, const char **name)
{
	char *end;

	*parent = strtoull(s, &end, 10);
	if (end == s || *end != '-')
		return false;
	s = end + 1;
	(void)strtoull(s, &end, 10);
	if (end == s || *end != '-' || end[1] == '\0')
		return false;
	*name = end + 1;
	return true;
}

int
meta_trash_list(struct meta *m, uint64_t since_ns, meta_trash_cb cb, void *arg)
{
	struct meta_kvlist hours = META_KVLIST_INIT(0),
			   ents = META_KVLIST_INIT(0);
	char hname[META_NAME_MAX + 1], ename[META_NAME_MAX + 1], since[32];
	uint64_t trash, hino, hck = 2, eino, eck;
	size_t hoff;
	struct mtxn t;
	int rc;

	meta_trash_hour_name(since_ns, since, sizeof(since));
	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	rc = meta_trash_ino(&t, &trash);
	if (rc || trash == 0)
		goto out;
	/* Hours in cookie order are hours in time order (created as
	 * time goes), entries as they were removed. */
	do {
		rc = dlist_read(&t, trash, hck, 64, &hours);
		hoff = 0;
		while (rc == 0 &&
		       dlist_next(&hours, &hoff, &hino, &hck, hname)) {
			if (since_ns && strcmp(hname, since) < 0)
				continue;
			eck = 2;
			do {
				size_t eoff = 0;

				rc = dlist_read(&t, hino, eck, 256, &ents);
				while (rc == 0 &&
				       dlist_next(&ents, &eoff, &eino, &eck,
						  ename)) {
					struct meta_trash_entry e;
					struct inode in;
					const char *on;

					memset(&e, 0, sizeof(e));
					rc = meta_inode_get(&t, eino, &in);
					if (rc == -ENOENT) {
						rc = 0;
						continue;
					}
					if (rc)
						break;
					if (since_ns &&
					    in.a.ctime_ns < since_ns)
						continue;
					e.hour = hname;
					e.name = ename;
					e.attr = in.a;
					if (parse_entry(ename, &e.from, &on))
						e.orig_name = on;
					rc = cb(arg, &e);
				}
			} while (rc == 0 && meta_kvlist_full(&ents));
		}
	} while (rc == 0 && meta_kvlist_full(&hours));
	if (rc > 0)
		rc = 0;
out:
	meta_kvlist_free(&hours);
	meta_kvlist_free(&ents);
	return meta_txn_end(&t, rc);
}

/* The entry hour/name of the trash: its inode, dentry cookie and hour
 * directory. */
static int
entry_get(struct mtxn *t, const char *hour, const char *name, struct inode *hd,
	  struct inode *in, uint64_t *cookie)
{
	uint64_t trash, hino, ino;
	int rc;

	rc = meta_trash_ino(t, &trash);
	if (rc == 0 && trash == 0)
		rc = -ENOENT;
	if (rc == 0)
		rc = meta_dentry_get(t, trash, hour, strlen(hour), NULL, &hino,
				     NULL);
	if (rc == 0)
		rc = meta_inode_get(t, hino, hd);
	if (rc == 0)
		rc = meta_dentry_get(t, hino, name, strlen(name), NULL, &ino,
				     cookie);
	if (rc == 0)
		rc = meta_inode_get(t, ino, in);
	return rc;
}

struct restore_op {
	const char *hour, *name, *to_name;
	uint64_t to, dir;
};

static int
restore_txn(struct mtxn *t, void *arg)
{
	struct restore_op *o = arg;
	const char *name = o->name, *to_name = o->to_name;
	uint64_t to = o->to;
	int64_t bytes;
	struct inode hd, in, d;
	uint64_t cookie, from, cino;
	const char *on;
	size_t len;
	int rc;

	rc = entry_get(t, o->hour, name, &hd, &in, &cookie);
	if (rc)
		return rc;
	if (!parse_entry(name, &from, &on))
		return -EINVAL;
	if (to == 0)
		to = from;
	if (to_name == NULL)
		to_name = on;
	rc = meta_name_check(to_name, &len, true);
	if (rc)
		return rc;
	rc = meta_inode_get(t, to, &d);
	if (rc)
		return rc == -ENOENT ? -ESTALE : rc; /* its directory went */
	if (d.a.type != META_DIR)
		return -ENOTDIR;
	rc = meta_trash_guard(t, &d);
	if (rc)
		return rc;
	rc = meta_dentry_get(t, to, to_name, len, NULL, &cino, NULL);
	if (rc == 0)
		return -EEXIST; /* never overwrites */
	if (rc != -ENOENT)
		return rc;
	bytes = in.a.type == META_REG ? (int64_t)round4k(in.a.size) : 0;
	rc = meta_dentry_del(t, hd.a.ino, name, strlen(name), cookie);
	if (rc == 0)
		rc = meta_dentry_add(t, &d, to_name, len, in.a.type, in.a.ino);
	if (rc == 0)
		rc = meta_usage_add(t, hd.a.ino, -bytes, -1);
	if (rc == 0)
		rc = meta_usage_add(t, to, bytes, 1);
	if (rc == 0)
		rc = meta_quota_trash_charge(t, in.a.ino, -(int64_t)in.a.size,
					     true);
	if (rc == 0 && in.a.type == META_REG)
		rc = meta_quota_logical(t, to, (int64_t)in.a.size);
	if (in.a.type == META_REG) {
		t->d_trash -= (int64_t)in.a.size;
		t->d_logical += (int64_t)in.a.size;
	}
	in.a.parent = to;
	in.a.ctime_ns = d.a.mtime_ns = d.a.ctime_ns = tl_now_ns();
	if (rc == 0)
		rc = meta_inode_put(t, &in);
	if (rc == 0)
		rc = meta_inode_put(t, &d);
	o->dir = to;
	return rc;
}

int
meta_trash_restore(struct meta *m, const char *hour, const char *name,
		   uint64_t to, const char *to_name, uint64_t *dir)
{
	struct restore_op o = {hour, name, to_name, to, 0};
	int rc;

	rc = meta_txn_run(m, false, restore_txn, &o);
	if (rc == 0 && dir)
		*dir = o.dir;
	return rc;
}

/* Release entry (ino, cookie, name) of hour directory hd. */
static int
release_entry(struct mtxn *t, struct inode *hd, uint64_t ino, uint64_t cookie,
	      const char *name, struct meta_trash_done *done)
{
	struct inode in;
	int64_t bytes;
	int rc;

	rc = meta_inode_get(t, ino, &in);
	if (rc == -ENOENT) /* only its name was left: drop it */
		return meta_dentry_del(t, hd->a.ino, name, strlen(name),
				       cookie);
	if (rc)
		return rc;
	bytes = in.a.type == META_REG ? (int64_t)round4k(in.a.size) : 0;
	rc = meta_dentry_del(t, hd->a.ino, name, strlen(name), cookie);
	if (rc == 0)
		rc = meta_usage_add(t, hd->a.ino, -bytes, -1);
	if (rc == 0) /* its size leaves the trash bytes there */
		rc = meta_inode_drop(t, &in);
	if (rc == 0)
		rc = meta_quota_trash_charge(t, in.a.ino, 0, true);
	t->d_inodes--;
	t->d_bytes -= bytes;
	done->files++;
	done->bytes += in.a.type == META_REG ? in.a.size : 0;
	return rc;
}

/* Remove the empty hour directory hd (named name in trash). */
static int
release_hour(struct mtxn *t, struct inode *trash, struct inode *hd,
	     const char *name, uint64_t cookie)
{
	int rc;

	rc = meta_dir_empty(t, hd->a.ino);
	if (rc)
		return rc == -ENOTEMPTY ? 0 : rc;
	rc = meta_dentry_del(t, trash->a.ino, name, strlen(name), cookie);
	if (rc == 0)
		rc = meta_inode_drop(t, hd);
	if (rc == 0)
		rc = meta_usage_add(t, trash->a.ino, 0, -1);
	trash->a.nlink--;
	t->d_inodes--;
	if (rc == 0)
		rc = meta_inode_put(t, trash);
	return rc;
}

/* Start of the hour named name (YYYY-MM-DD-HH, UTC), in ns; 0 if it is
 * not such a name. */
static uint64_t
hour_start(const char *name)
{
	struct tm tm;
	char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(name, "%Y-%m-%d-%H", &tm);
	if (end == NULL || *end != '\0')
		return 0;
	return (uint64_t)timegm(&tm) * 1000000000ULL;
}

/* One transaction: release up to max entries removed before before_ns
 * (their ctime), in hour order, and the hour directories left empty
 * whose hour ended before it.  *more: entries are left to look at. */
struct expire_op {
	uint64_t before_ns;
	size_t max;
	struct meta_trash_done done;
	bool *more;
};

static int
expire_txn(struct mtxn *t, void *arg)
{
	struct expire_op *o = arg;
	uint64_t before_ns = o->before_ns;
	struct meta_trash_done *done = &o->done;
	bool *more = o->more;
	struct meta_kvlist hours = META_KVLIST_INIT(0),
			   ents = META_KVLIST_INIT(0);
	char hname[META_NAME_MAX + 1], ename[META_NAME_MAX + 1];
	uint64_t trashino, hino, hck, eino, eck;
	struct inode trash, hd;
	size_t hoff, eoff, left = o->max;
	bool stop = false;
	int rc;

	memset(done, 0, sizeof(*done));
	*more = false;
	rc = meta_trash_ino(t, &trashino);
	if (rc || trashino == 0)
		return rc;
	rc = meta_inode_get(t, trashino, &trash);
	if (rc == 0)
		rc = dlist_read(t, trashino, 2, 16, &hours);
	hoff = 0;
	while (rc == 0 && !stop &&
	       dlist_next(&hours, &hoff, &hino, &hck, hname)) {
		uint64_t h0 = hour_start(hname);

		if (h0 != 0 && h0 >= before_ns) {
			stop = true; /* this hour and later ones are younger */
			break;
		}
		rc = meta_inode_get(t, hino, &hd);
		if (rc)
			break;
		rc = dlist_read(t, hino, 2, left + 1, &ents);
		eoff = 0;
		while (rc == 0 &&
		       dlist_next(&ents, &eoff, &eino, &eck, ename)) {
			struct inode in;

			if (left == 0) {
				*more = true;
				stop = true;
				break;
			}
			rc = meta_inode_get(t, eino, &in);
			if (rc == 0 && in.a.ctime_ns >= before_ns) {
				stop = true; /* removed later: later ones too */
				break;
			}
			if (rc == 0 || rc == -ENOENT)
				rc = release_entry(t, &hd, eino, eck, ename,
						   done);
			left--;
		}
		if (rc == 0 && !stop && h0 + HOUR_NS <= before_ns)
			rc = release_hour(t, &trash, &hd, hname, hck);
	}
	if (rc == 0 && !stop && meta_kvlist_full(&hours))
		*more = true;
	meta_kvlist_free(&hours);
	meta_kvlist_free(&ents);
	return rc;
}

int
meta_trash_expire(struct meta *m, uint64_t before_ns, size_t max,
		  struct meta_trash_done *done, bool *more)
{
	struct expire_op o = {.before_ns = before_ns, .max = max, .more = more};
	int rc;

	rc = meta_txn_run(m, false, expire_txn, &o);
	if (rc == 0 && done) {
		done->files += o.done.files;
		done->bytes += o.done.bytes;
	}
	return rc;
}

int
meta_trash_expire_due(struct meta *m, size_t max, struct meta_trash_done *done,
		      bool *more)
{
	uint64_t keep, now = tl_now_ns();
	struct mtxn t;
	int rc;

	*more = false;
	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	rc = retention(&t, &keep);
	rc = meta_txn_end(&t, rc);
	if (rc)
		return rc;
	/* trash_days 0 (set after files were trashed): they go now */
	return meta_trash_expire(m, now > keep ? now - keep : 0, max, done,
				 more);
}

void
meta_set_trash_retention(struct meta *m, uint64_t ns)
{
	m->trash_retention_ns = ns;
}

static int
days_txn(struct mtxn *t, void *arg)
{
	const uint32_t *days = arg;
	struct meta_settings s;
	uint8_t v[2048];
	struct meta_key k;
	const void *cur;
	size_t vlen;
	int rc;

	meta_key_setting(t->m, &k);
	rc = meta_kv_get(t->kv, k.b, k.len, &cur, &vlen);
	if (rc == 0)
		rc = meta_settings_decode(cur, vlen, &s);
	if (rc == 0) {
		s.trash_days = *days;
		vlen = meta_settings_encode(&s, v, sizeof(v));
		rc = vlen == 0 ? -EINVAL
			       : meta_kv_put(t->kv, k.b, k.len, v, vlen);
	}
	return rc;
}

int
meta_set_trash_days(struct meta *m, uint32_t days)
{
	int rc;

	rc = meta_txn_run(m, false, days_txn, &days);
	if (rc == 0)
		m->set.trash_days = days;
	return rc;
}

/* fn(t, ino, name, arg) for each hour directory of the trash (inode
 * trash) in cookie order, until one returns non-zero (the result). */
static int
hours_walk(struct mtxn *t, uint64_t trash,
	   int (*fn)(struct mtxn *t, uint64_t hino, const char *hname,
		     void *arg),
	   void *arg)
{
	struct meta_kvlist hours = META_KVLIST_INIT(0);
	char hname[META_NAME_MAX + 1];
	uint64_t hino, hck = 2;
	size_t off;
	int rc;

	do {
		rc = dlist_read(t, trash, hck, 256, &hours);
		off = 0;
		while (rc == 0 && dlist_next(&hours, &off, &hino, &hck, hname))
			rc = fn(t, hino, hname, arg);
	} while (rc == 0 && meta_kvlist_full(&hours));
	meta_kvlist_free(&hours);
	return rc;
}

struct hours_sum {
	uint64_t files, bytes;
	uint64_t keep,
		cutoff; /* keep 0: all hours, else those over by cutoff */
};

static int
sum_cb(struct mtxn *t, uint64_t hino, const char *hname, void *arg)
{
	struct hours_sum *h = arg;
	uint64_t h0 = hour_start(hname), b, n;
	int rc;

	if (h->keep != 0 && (h0 == 0 || h0 + HOUR_NS > h->cutoff))
		return 0;
	rc = meta_usage_get(t, hino, &b, &n);
	h->files += n;
	h->bytes += b;
	return rc;
}

/* Files and bytes in the trash's hours (usage records); with due, only
 * in those whose hour ended more than the retention before now. */
static int
trash_sum(struct mtxn *t, bool due, uint64_t now, uint64_t *files,
	  uint64_t *bytes)
{
	struct hours_sum h = {0, 0, 0, 0};
	uint64_t trash;
	int rc;

	*files = *bytes = 0;
	rc = meta_trash_ino(t, &trash);
	if (rc || trash == 0)
		return rc;
	if (due) {
		rc = retention(t, &h.keep);
		if (rc)
			return rc;
		h.cutoff = now > h.keep ? now - h.keep : 0;
	}
	rc = hours_walk(t, trash, sum_cb, &h);
	*files = h.files;
	*bytes = h.bytes;
	return rc;
}

int
meta_trash_usage(struct mtxn *t, uint64_t *files, uint64_t *bytes)
{
	return trash_sum(t, false, 0, files, bytes);
}

static int
cmp_ino(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct ino_vec {
	uint64_t *v;
	size_t n, cap;
};

static int
collect_cb(struct mtxn *t, uint64_t hino, const char *hname, void *arg)
{
	struct ino_vec *iv = arg;

	(void)t;
	(void)hname;
	if (iv->n == iv->cap) {
		iv->cap = iv->cap ? 2 * iv->cap : 64;
		iv->v = tl_realloc(iv->v, iv->cap * sizeof(*iv->v));
	}
	iv->v[iv->n++] = hino;
	return 0;
}

int
meta_trash_hours(struct mtxn *t, uint64_t **inos, size_t *n)
{
	struct ino_vec iv = {NULL, 0, 0};
	uint64_t trash;
	int rc;

	*inos = NULL;
	*n = 0;
	rc = meta_trash_ino(t, &trash);
	if (rc || trash == 0)
		return rc;
	rc = hours_walk(t, trash, collect_cb, &iv);
	if (rc) {
		free(iv.v);
		return rc;
	}
	if (iv.n > 1)
		qsort(iv.v, iv.n, sizeof(*iv.v), cmp_ino);
	*inos = iv.v;
	*n = iv.n;
	return 0;
}

int
meta_trash_due(struct mtxn *t, uint64_t now, uint64_t *files)
{
	uint64_t bytes;

	return trash_sum(t, true, now, files, &bytes);
}

/* Whether directory parent is one of the trash's hours. */
static int
is_hour(struct mtxn *t, uint64_t parent, bool *hour)
{
	struct meta_key k;
	struct inode d;
	uint64_t trash;
	const void *v;
	size_t vlen;
	int rc;

	*hour = false;
	rc = meta_trash_ino(t, &trash);
	if (rc || trash == 0 || parent == 0 || parent == trash)
		return rc;
	/* Only a directory's rename changes its parent, and the trash's
	 * hours are never renamed: a peek, no conflict. */
	meta_key_ino(t->m, &k, parent, 'I');
	rc = meta_kv_peek(t->kv, k.b, k.len, &v, &vlen);
	if (rc == 0)
		rc = meta_inode_decode(v, vlen, parent, &d);
	*hour = rc == 0 && d.a.parent == trash;
	return rc == -ENOENT ? 0 : rc;
}

int
meta_trash_holds(struct mtxn *t, const struct inode *in)
{
	bool hour;
	int rc;

	rc = is_hour(t, in->a.parent, &hour);
	return rc ? rc : hour ? -EPERM : 0;
}

int
meta_size_account(struct mtxn *t, const struct inode *in, int64_t delta)
{
	bool hour;
	int rc;

	if (delta == 0)
		return 0;
	rc = is_hour(t, in->a.parent, &hour);
	if (rc)
		return rc;
	if (hour) {
		t->d_trash += delta;
		return meta_quota_trash_charge(t, in->a.ino, delta, false);
	}
	t->d_logical += delta;
	return meta_quota_logical(t, in->a.parent, delta);
}
