/*
 * volume.c - format, open and close a volume; usage; id allocation.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta-internal.h"

#define DEFAULT_BLOCK_SIZE (4U << 20)
#define RANGE_DELETE_BATCH 10000

static void __attribute__((format(printf, 2, 3)))
set_err(char **err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || *err != NULL)
		return;
	va_start(ap, fmt);
	*err = tl_vasprintf(fmt, ap);
	va_end(ap);
}

bool
meta_volname_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > META_VOLNAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Split "?volume=NAME" off a metadata URL: *base is the URL without it
 * (what the engine parses), *vol the name or NULL.  Both caller-freed. */
static int
url_split_volume(const char *url, char **base, char **vol, char **err)
{
	const char *q = strchr(url, '?');
	struct tl_buf b = TL_BUF_INIT;
	char sep = '?';
	int rc = 0;

	*vol = NULL;
	tl_buf_append(&b, url, q ? (size_t)(q - url) : strlen(url));
	while (q && *q) {
		const char *opt = q + 1, *amp = strchr(opt, '&');
		size_t n = amp ? (size_t)(amp - opt) : strlen(opt);

		if (n >= 7 && strncmp(opt, "volume=", 7) == 0) {
			if (*vol != NULL || n == 7) {
				set_err(err, "%s: %s", url,
					*vol ? "volume= given twice"
					     : "volume= needs a name");
				rc = -EINVAL;
				break;
			}
			*vol = tl_strndup(opt + 7, n - 7);
		} else if (n > 0) {
			tl_buf_append(&b, &sep, 1);
			tl_buf_append(&b, opt, n);
			sep = '&';
		}
		q = amp;
	}
	tl_buf_append(&b, "", 1);
	if (rc == 0 && *vol != NULL && !meta_volname_ok(*vol)) {
		set_err(err,
			"bad volume name '%s' in %s: use 1 to 63 of "
			"A-Z a-z 0-9 _ -",
			*vol, url);
		rc = -EINVAL;
	}
	if (rc) {
		free(*vol);
		*vol = NULL;
		tl_buf_free(&b);
		return rc;
	}
	*base = (char *)b.data;
	return 0;
}

/* The volume named by the URL and by the caller, which must agree. */
int
meta_url_volume(const char *url, const char *volname, char **base, char **vol,
		char **err)
{
	int rc = url_split_volume(url, base, vol, err);

	if (rc)
		return rc;
	if (volname != NULL && *vol != NULL && strcmp(volname, *vol) != 0) {
		set_err(err,
			"volume '%s' named in the URL and '%s' given: "
			"name one",
			*vol, volname);
		free(*vol);
		free(*base);
		return -EINVAL;
	}
	if (volname != NULL && *vol == NULL)
		*vol = tl_strdup(volname);
	return 0;
}

static void
meta_init_prefix(struct meta *m, const char *name)
{
	size_t n = strlen(name);

	memcpy(m->pfx, name, n);
	m->pfx[n] = 0;
	m->pfxlen = n + 1;
}

int
meta_range_delete(struct meta_kv *kv, const void *start, size_t slen,
		  const void *end, size_t elen,
		  void (*progress)(void *arg, uint64_t keys), void *arg)
{
	struct meta_kvlist c = META_KVLIST_INIT(RANGE_DELETE_BATCH);
	struct meta_kv_txn *t;
	const uint8_t *k, *v;
	size_t klen, vlen, off;
	uint64_t done = 0;
	int rc;

	do {
		rc = meta_kv_begin(kv, false, &t);
		if (rc)
			break;
		rc = meta_kvlist_scan(t, &c, start, slen, end, elen);
		off = 0;
		while (rc == 0 &&
		       meta_kvlist_next(&c, &off, &k, &klen, &v, &vlen))
			rc = meta_kv_del(t, k, klen);
		if (rc) {
			meta_kv_abort(t);
			break;
		}
		rc = meta_kv_commit(t);
		done += c.n;
		if (rc == 0 && progress != NULL)
			progress(arg, done);
	} while (rc == 0 && meta_kvlist_full(&c));
	meta_kvlist_free(&c);
	return rc;
}

/* Delete every key of the volume m names: "<name>\0..." up to
 * "<name>\1", then its registry entry (last, so that an interrupted
 * delete can be run again). */
static int
volume_range_delete(struct meta *m, void (*progress)(void *arg, uint64_t keys),
		    void *arg)
{
	uint8_t end[META_VOLNAME_MAX + 1];
	struct meta_kv_txn *t;
	struct meta_key k;
	int rc;

	memcpy(end, m->pfx, m->pfxlen);
	end[m->pfxlen - 1] = 1; /* just past "<name>\0..." */
	rc = meta_range_delete(m->kv, m->pfx, m->pfxlen, end, m->pfxlen,
			       progress, arg);
	if (rc)
		return rc;
	rc = meta_kv_begin(m->kv, false, &t);
	if (rc)
		return rc;
	meta_key_registry(&k, (const char *)m->pfx);
	rc = meta_kv_del(t, k.b, k.len);
	if (rc) {
		meta_kv_abort(t);
		return rc;
	}
	return meta_kv_commit(t);
}

int
meta_destroy(struct meta *m, void (*progress)(void *arg, uint64_t keys),
	     void *arg)
{
	return volume_range_delete(m, progress, arg);
}

static int
format_write(struct meta *m, const struct meta_settings *s)
{
	uint8_t buf[2048];
	struct meta_key k;
	struct inode root;
	struct mtxn t;
	size_t n;
	int rc;

	rc = meta_txn_begin(m, &t, false);
	if (rc)
		return rc;
	meta_key_registry(&k, s->name);
	rc = meta_kv_put(t.kv, k.b, k.len, "", 0);
	n = meta_settings_encode(s, buf, sizeof(buf));
	meta_key_setting(m, &k);
	if (rc == 0)
		rc = n ? meta_kv_put(t.kv, k.b, k.len, buf, n) : -EINVAL;
	if (rc == 0)
		rc = meta_counter_set(&t, CNT_NEXT_INO, META_ROOT_INO + 1);
	if (rc == 0)
		rc = meta_counter_set(&t, CNT_NEXT_SLICE, 1);
	if (rc == 0)
		rc = meta_counter_set(&t, CNT_USED_BYTES, 0);
	if (rc == 0)
		rc = meta_counter_set(&t, CNT_USED_INODES, 1);
	if (rc == 0)
		rc = meta_counter_set(&t, CNT_PENDING, 0);
	if (rc == 0)
		rc = meta_usage_mark(&t); /* all at 0: exact */
	memset(&root, 0, sizeof(root));
	root.a.ino = META_ROOT_INO;
	root.a.gen = (uint32_t)tl_random_u64() | 1;
	root.a.type = META_DIR;
	root.a.mode = 0755;
	root.a.nlink = 2;
	root.a.atime_ns = root.a.mtime_ns = root.a.ctime_ns = s->ctime_ns;
	root.a.parent = META_ROOT_INO;
	root.next_cookie = 3;
	if (rc == 0)
		rc = meta_inode_put(&t, &root);
	return meta_txn_end(&t, rc);
}

static int
format_check(const struct meta_format_opts *o, struct meta_settings *s,
	     char **err)
{
	uint32_t bs = o->block_size ? o->block_size : DEFAULT_BLOCK_SIZE;

	if (!o->name || !meta_volname_ok(o->name)) {
		set_err(err,
			"bad volume name '%s': use 1 to 63 of "
			"A-Z a-z 0-9 _ -",
			o->name ? o->name : "");
		return -EINVAL;
	}
	if (bs < (64U << 10) || bs > (16U << 20) || (bs & (bs - 1))) {
		set_err(err, "bad block size: a power of two from 64K "
			     "to 16M");
		return -EINVAL;
	}
	if (!o->storage || !o->storage[0] ||
	    strlen(o->storage) >= sizeof(s->storage)) {
		set_err(err, "bad storage URL");
		return -EINVAL;
	}
	memset(s, 0, sizeof(*s));
	strcpy(s->name, o->name);
	strcpy(s->storage, o->storage);
	tl_random_bytes(s->uuid, sizeof(s->uuid));
	s->uuid[6] = (s->uuid[6] & 0x0f) | 0x40; /* RFC 4122 version 4 */
	s->uuid[8] = (s->uuid[8] & 0x3f) | 0x80;
	tl_random_bytes(s->secret, sizeof(s->secret));
	s->block_size = bs;
	s->trash_days = o->trash_days;
	s->capacity = o->capacity;
	s->max_inodes = o->max_inodes;
	s->ctime_ns = tl_now_ns();
	return 0;
}

int
meta_format(const char *url, const struct meta_format_opts *o, char **err)
{
	struct meta m;
	struct meta_kv_txn *t;
	struct meta_key k;
	char *base = NULL, *vol = NULL;
	const void *v;
	size_t vlen;
	int rc;

	if (err)
		*err = NULL;
	memset(&m, 0, sizeof(m));
	rc = format_check(o, &m.set, err);
	if (rc)
		return rc;
	rc = meta_url_volume(url, o->name, &base, &vol, err);
	if (rc)
		return rc;
	rc = meta_kv_open(base, &m.kv, err);
	if (rc)
		goto out;
	meta_init_prefix(&m, o->name);
	rc = meta_kv_begin(m.kv, true, &t);
	if (rc)
		goto out;
	meta_key_registry(&k, o->name);
	rc = meta_kv_get(t, k.b, k.len, &v, &vlen);
	meta_kv_abort(t);
	if (rc == 0 && !o->force) {
		set_err(err,
			"volume '%s' already exists in %s "
			"(use --force to replace it and lose its data)",
			o->name, base);
		rc = -EEXIST;
		goto out;
	}
	if (rc == 0)
		rc = volume_range_delete(&m, NULL, NULL);
	else if (rc == -ENOENT)
		rc = 0;
	if (rc == 0)
		rc = format_write(&m, &m.set);
	if (rc)
		set_err(err, "cannot write volume '%s': %s", o->name,
			strerror(-rc));
out:
	meta_kv_close(m.kv);
	free(base);
	free(vol);
	return rc;
}

#define FIND_VOL_NAMES 8

/* The volumes of an engine, from the registry: the first few names. */
struct find_vol {
	char names[FIND_VOL_NAMES][META_VOLNAME_MAX + 1];
	int n;
};

static int
find_vol_cb(void *arg, const void *key, size_t klen, const void *v, size_t vlen)
{
	struct find_vol *f = arg;

	(void)v;
	(void)vlen;
	if (f->n < FIND_VOL_NAMES && klen - 2 <= META_VOLNAME_MAX) {
		memcpy(f->names[f->n], (const uint8_t *)key + 2, klen - 2);
		f->names[f->n][klen - 2] = 0;
	}
	f->n++;
	return 0;
}

/* "several volumes" message: the names, and how to pick one. */
static void
several_err(char **err, const char *url, const struct find_vol *f)
{
	struct tl_buf b = TL_BUF_INIT;

	if (!err || *err)
		return;
	for (int i = 0; i < f->n && i < FIND_VOL_NAMES; i++) {
		tl_buf_append(&b, i ? ", " : "", i ? 2 : 0);
		tl_buf_append(&b, f->names[i], strlen(f->names[i]));
	}
	if (f->n > FIND_VOL_NAMES)
		tl_buf_append(&b, ", ...", 5);
	tl_buf_append(&b, "", 1);
	*err = tl_asprintf("%s holds %d volumes (%s): name one with "
			   "--volume NAME or %s?volume=NAME",
			   url, f->n, (char *)b.data, url);
	tl_buf_free(&b);
}

static int
open_settings(struct meta *m, const char *volname, char **err)
{
	struct find_vol f;
	struct meta_kv_txn *t;
	struct meta_key k;
	const void *v;
	size_t vlen;
	int rc;

	rc = meta_kv_begin(m->kv, true, &t);
	if (rc)
		return rc;
	if (!volname) {
		f.n = 0;
		rc = meta_kv_scan(t, "\0V", 2, "\0W", 2, find_vol_cb, &f);
		if (rc == 0 && f.n > 1) {
			several_err(err, m->kv->url, &f);
			rc = -EINVAL;
		} else if (rc == 0 && f.n == 0) {
			set_err(err, "no volume in %s (run tessera format)",
				m->kv->url);
			rc = -ENOENT;
		}
		volname = f.names[0];
	}
	if (rc == 0 && !meta_volname_ok(volname)) {
		set_err(err, "bad volume name '%s'", volname);
		rc = -EINVAL;
	}
	if (rc == 0) {
		meta_init_prefix(m, volname);
		meta_key_setting(m, &k);
		rc = meta_kv_get(t, k.b, k.len, &v, &vlen);
		if (rc == -ENOENT)
			set_err(err, "no volume '%s' in %s", volname,
				m->kv->url);
		else if (rc == 0)
			rc = meta_settings_decode(v, vlen, &m->set);
		if (rc == -EIO)
			set_err(err, "volume '%s': unreadable settings",
				volname);
	}
	meta_kv_abort(t);
	return rc;
}

int
meta_open(const char *url, const char *volname, struct meta **out, char **err)
{
	return meta_open_flags(url, volname, 0, out, err);
}

int
meta_open_flags(const char *url, const char *volname, unsigned flags,
		struct meta **out, char **err)
{
	struct meta *m = tl_calloc(1, sizeof(*m));
	char *base = NULL, *vol = NULL;
	int rc;

	if (err)
		*err = NULL;
	*out = NULL;
	rc = meta_url_volume(url, volname, &base, &vol, err);
	if (rc) {
		free(m);
		return rc;
	}
	rc = meta_kv_open_flags(base,
				flags & META_OPEN_RDONLY ? META_KV_RDONLY : 0,
				&m->kv, err);
	if (rc)
		goto out;
	rc = open_settings(m, vol, err);
	if (rc)
		goto out;
	m->compact_grace_ns = COMPACT_GRACE_S * 1000000000ULL;
	pthread_mutex_init(&m->lock, NULL);
	m->under = meta_under_new();
	*out = m;
out:
	if (rc) {
		meta_kv_close(m->kv);
		free(m);
	}
	free(base);
	free(vol);
	return rc;
}

void
meta_close(struct meta *m)
{
	if (!m)
		return;
	meta_kv_close(m->kv);
	pthread_mutex_destroy(&m->lock);
	meta_under_free(m->under);
	free(m);
}

void
meta_set_compact_grace(struct meta *m, uint64_t ns)
{
	m->compact_grace_ns = ns;
}

const struct meta_settings *
meta_settings(struct meta *m)
{
	return &m->set;
}

struct meta_kv *
meta_engine(struct meta *m)
{
	return m->kv;
}

int
meta_usage(struct meta *m, struct meta_usage *u)
{
	struct mtxn t;
	int rc;

	memset(u, 0, sizeof(*u));
	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	rc = meta_counter_get(&t, CNT_USED_BYTES, &u->used_bytes);
	if (rc == 0)
		rc = meta_counter_get(&t, CNT_USED_INODES, &u->used_inodes);
	if (rc == 0)
		rc = meta_counter_get(&t, CNT_PENDING, &u->pending_delete);
	if (rc == 0)
		rc = meta_counter_get(&t, CNT_LOGICAL, &u->logical_bytes);
	if (rc == 0)
		rc = meta_counter_get(&t, CNT_STORED, &u->stored_bytes);
	if (rc == 0)
		rc = meta_counter_get(&t, CNT_TRASH_BYTES, &u->trash_bytes);
	if (rc == 0)
		rc = meta_counter_get(&t, CNT_PENDING_BYTES, &u->pending_bytes);
	u->capacity = m->set.capacity;
	u->max_inodes = m->set.max_inodes;
	return meta_txn_end(&t, rc);
}

struct batch_op {
	const char *name;
	uint64_t v;
};

static int
batch_txn(struct mtxn *t, void *arg)
{
	struct batch_op *o = arg;
	int rc;

	rc = meta_counter_get(t, o->name, &o->v);
	if (rc == 0)
		rc = meta_counter_set(t, o->name, o->v + META_BATCH);
	return rc;
}

/* Reserve META_BATCH ids of counter name in a transaction of its own, so
 * ids handed out are on disk before anything uses them and never come
 * back after a restart.  Called with m->lock held and no transaction open
 * in this thread. */
static int
alloc_batch(struct meta *m, const char *name, uint64_t *next, uint64_t *end)
{
	struct batch_op o = {name, 0};
	int rc;

	rc = meta_txn_run(m, false, batch_txn, &o);
	if (rc == 0) {
		*next = o.v;
		*end = o.v + META_BATCH;
	}
	return rc;
}

static int
alloc_id(struct meta *m, const char *name, uint64_t *next, uint64_t *end,
	 uint64_t *id)
{
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	if (*next >= *end)
		rc = alloc_batch(m, name, next, end);
	if (rc == 0)
		*id = (*next)++;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int
meta_alloc_ino(struct meta *m, uint64_t *ino)
{
	return alloc_id(m, CNT_NEXT_INO, &m->ino_next, &m->ino_end, ino);
}

int
meta_new_slice_id(struct meta *m, uint64_t *id)
{
	return alloc_id(m, CNT_NEXT_SLICE, &m->slice_next, &m->slice_end, id);
}
