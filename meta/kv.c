/*
 * kv.c - engine selection by URL and the thin dispatch wrappers.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/tl.h"
#include "meta/kv.h"

/* Parse "?mapsize=64G&resident=48M" style options of an lmdb URL. */
static int
lmdb_url(const char *rest, char **dir, uint64_t *mapsize, uint64_t *resident,
	 char **err)
{
	const char *q = strchr(rest, '?');
	char *d = q ? tl_strndup(rest, (size_t)(q - rest)) : tl_strdup(rest);
	int rc = 0;

	*mapsize = 0;
	*resident = META_KV_LMDB_RESIDENT;
	if (d[0] != '/') {
		if (err)
			*err = tl_asprintf("lmdb URL needs an absolute path: "
					   "lmdb:///dir");
		rc = -EINVAL;
		goto out;
	}
	while (q && *q) {
		const char *opt = q + 1;
		const char *amp = strchr(opt, '&');
		size_t olen = amp ? (size_t)(amp - opt) : strlen(opt);
		char *o = tl_strndup(opt, olen);

		if (strncmp(o, "mapsize=", 8) == 0) {
			rc = tl_parse_size(o + 8, mapsize);
			if (rc == 0 && *mapsize < (1ULL << 20))
				rc = -EINVAL;
		} else if (strncmp(o, "resident=", 9) == 0) {
			/* 0: no limit; else at least 1 MiB */
			rc = tl_parse_size(o + 9, resident);
			if (rc == 0 && *resident != 0 &&
			    *resident < (1ULL << 20))
				rc = -EINVAL;
		} else {
			rc = -EINVAL;
		}
		if (rc && err)
			*err = tl_asprintf("bad lmdb URL option '%s'", o);
		free(o);
		if (rc)
			goto out;
		q = amp;
	}
out:
	if (rc)
		free(d);
	else
		*dir = d;
	return rc;
}

int
meta_kv_open(const char *url, struct meta_kv **out, char **err)
{
	return meta_kv_open_flags(url, 0, out, err);
}

int
meta_kv_open_flags(const char *url, unsigned flags, struct meta_kv **out,
		   char **err)
{
	char *dir = NULL;
	uint64_t mapsize, resident;
	int rc;

	*out = NULL;
	if (strncmp(url, "lmdb://", 7) == 0) {
		rc = lmdb_url(url + 7, &dir, &mapsize, &resident, err);
		if (rc)
			return rc;
		rc = meta_kv_lmdb_open(dir, mapsize, resident, flags, out, err);
		free(dir);
		if (rc == 0)
			(*out)->url = tl_strdup(url);
		return rc;
	}
	if (strncmp(url, "raft://", 7) == 0) {
		rc = meta_kv_raft_open(url, flags, out, err);
		if (rc == 0)
			(*out)->url = tl_strdup(url);
		return rc;
	}
	if (err)
		*err = tl_asprintf("unsupported metadata URL '%s' "
				   "(expected lmdb:///dir or raft:///dir)",
				   url);
	return -EINVAL;
}

void
meta_kv_close(struct meta_kv *kv)
{
	char *url;

	if (!kv)
		return;
	url = kv->url;
	kv->ops->close(kv);
	free(url);
}

int
meta_kv_begin(struct meta_kv *kv, bool rdonly, struct meta_kv_txn **out)
{
	return kv->ops->begin(kv, rdonly, out);
}

int
meta_kv_get(struct meta_kv_txn *t, const void *key, size_t klen,
	    const void **val, size_t *vlen)
{
	return t->kv->ops->get(t, key, klen, val, vlen);
}

int
meta_kv_put(struct meta_kv_txn *t, const void *key, size_t klen,
	    const void *val, size_t vlen)
{
	return t->kv->ops->put(t, key, klen, val, vlen);
}

int
meta_kv_del(struct meta_kv_txn *t, const void *key, size_t klen)
{
	return t->kv->ops->del(t, key, klen);
}

int
meta_kv_add(struct meta_kv_txn *t, const void *key, size_t klen,
	    const int64_t *delta, unsigned n)
{
	if (n == 0 || n > META_KV_ADD_MAX)
		return -EINVAL;
	return t->kv->ops->add(t, key, klen, delta, n);
}

int
meta_kv_add_sum(const void *old, size_t oldlen, const int64_t *delta,
		unsigned n, uint8_t *out)
{
	bool zero = true;

	if (old && oldlen != 8 * (size_t)n)
		return -EIO;
	for (unsigned i = 0; i < n; i++) {
		uint64_t v =
			old ? tl_get_be64((const uint8_t *)old + 8 * i) : 0;

		v += (uint64_t)delta[i];
		tl_put_be64(out + 8 * i, v);
		zero &= v == 0;
	}
	return zero;
}

int
meta_kv_peek(struct meta_kv_txn *t, const void *key, size_t klen,
	     const void **val, size_t *vlen)
{
	if (t->kv->ops->peek == NULL)
		return t->kv->ops->get(t, key, klen, val, vlen);
	return t->kv->ops->peek(t, key, klen, val, vlen);
}

uint64_t
meta_kv_version(struct meta_kv_txn *t)
{
	return t->kv->ops->version != NULL ? t->kv->ops->version(t) : 0;
}

int
meta_kv_scan(struct meta_kv_txn *t, const void *start, size_t slen,
	     const void *end, size_t elen, meta_kv_scan_cb cb, void *arg)
{
	return t->kv->ops->scan(t, start, slen, end, elen, cb, arg);
}

int
meta_kv_commit(struct meta_kv_txn *t)
{
	return t->kv->ops->commit(t);
}

int
meta_kv_commit_lazy(struct meta_kv_txn *t)
{
	if (t->kv->ops->commit_lazy == NULL)
		return t->kv->ops->commit(t);
	return t->kv->ops->commit_lazy(t);
}

int
meta_kv_copyfd(struct meta_kv *kv, int fd)
{
	if (kv->ops->copyfd == NULL)
		return -ENOTSUP;
	return kv->ops->copyfd(kv, fd);
}

void
meta_kv_abort(struct meta_kv_txn *t)
{
	if (t)
		t->kv->ops->abort(t);
}
