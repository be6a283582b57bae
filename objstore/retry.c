/*
 * retry.c - a wrapper that retries failed operations of any store with
 * exponential backoff and full jitter.
 *
 * URL form: retry(attempts=8,base=100ms,cap=10s):INNER.
 *
 * Only -EIO is retried: it is what a backend returns for an accident (a
 * reset connection, a failing disk, an injected fault), while -ENOENT,
 * -EACCES, -ENOSPC, -EINVAL and -ERANGE are answers that another try
 * would only repeat.  Every operation is idempotent (objects are
 * immutable, a delete of a missing object succeeds), so a retry after a
 * put that did land is harmless.  The s3 backend retries its HTTP
 * requests itself; this wrapper is for the file backend and for tests
 * with the fault wrapper.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lib/tl.h"
#include "objstore/objstore-internal.h"
#include "objstore/objstore.h"

struct retry_store {
	struct os_wrap w;
	unsigned attempts;
	uint64_t base_ms, cap_ms;
	atomic_uint_fast64_t retries, failures;
};

static struct retry_store *
retry_of(struct os_store *s)
{
	return (struct retry_store *)s;
}

/* Run OP until it succeeds, fails for good, or the attempts run out. */
#define RETRY(rs, what, key, op)                                               \
	do {                                                                   \
		unsigned n_;                                                   \
		for (n_ = 0;; n_++) {                                          \
			rc = (op);                                             \
			if (rc != -EIO)                                        \
				break;                                         \
			if (n_ + 1 >= (rs)->attempts) {                        \
				atomic_fetch_add(&(rs)->failures, 1);          \
				tl_warn("objstore",                            \
					"%s: %s %s: failed %u "                \
					"times, giving up",                    \
					(rs)->w.base.url, what, key, n_ + 1);  \
				break;                                         \
			}                                                      \
			atomic_fetch_add(&(rs)->retries, 1);                   \
			os_backoff_sleep(n_, (rs)->base_ms, (rs)->cap_ms);     \
		}                                                              \
	} while (0)

static int
retry_put(struct os_store *s, const char *key, const void *data, size_t len)
{
	struct retry_store *r = retry_of(s);
	struct os_store *in = r->w.inner;
	int rc;

	RETRY(r, "put", key, in->ops->put(in, key, data, len));
	return rc;
}

static int
retry_get(struct os_store *s, const char *key, uint64_t off, size_t len,
	  void *buf, size_t *got)
{
	struct retry_store *r = retry_of(s);
	struct os_store *in = r->w.inner;
	int rc;

	RETRY(r, "get", key, in->ops->get(in, key, off, len, buf, got));
	return rc;
}

static int
retry_head(struct os_store *s, const char *key, uint64_t *size)
{
	struct retry_store *r = retry_of(s);
	struct os_store *in = r->w.inner;
	int rc;

	RETRY(r, "head", key, in->ops->head(in, key, size));
	return rc;
}

static int
retry_del(struct os_store *s, const char *key)
{
	struct retry_store *r = retry_of(s);
	struct os_store *in = r->w.inner;
	int rc;

	RETRY(r, "del", key, in->ops->del(in, key));
	return rc;
}

/* A listing is retried only when it failed before the first key was
 * delivered: restarting after some keys would repeat them. */
struct list_ctx {
	os_list_cb cb;
	void *arg;
	bool any;
	os_list_info_cb icb; /* retry_list_info's, instead of cb */
};

static int
list_one(void *arg, const char *key, uint64_t size)
{
	struct list_ctx *l = arg;

	l->any = true;
	return l->cb(l->arg, key, size);
}

static int
list_info_one(void *arg, const char *key, const struct os_obj_info *info)
{
	struct list_ctx *l = arg;

	l->any = true;
	return l->icb(l->arg, key, info);
}

/* The listing of l (os_list or os_list_info), retried as said above. */
static int
retry_list_ctx(struct os_store *s, const char *prefix, const char *start_after,
	       struct list_ctx *l)
{
	struct retry_store *r = retry_of(s);
	struct os_store *in = r->w.inner;
	unsigned n;
	int rc;

	for (n = 0;; n++) {
		if (l->icb != NULL)
			rc = os_list_info(in, prefix, start_after,
					  list_info_one, l);
		else
			rc = in->ops->list(in, prefix, start_after, list_one,
					   l);
		if (rc != -EIO || l->any)
			break;
		if (n + 1 >= r->attempts) {
			atomic_fetch_add(&r->failures, 1);
			tl_warn("objstore",
				"%s: list %s: failed %u times, "
				"giving up",
				r->w.base.url, prefix, n + 1);
			break;
		}
		atomic_fetch_add(&r->retries, 1);
		os_backoff_sleep(n, r->base_ms, r->cap_ms);
	}
	return rc;
}

static int
retry_list(struct os_store *s, const char *prefix, const char *start_after,
	   os_list_cb cb, void *arg)
{
	struct list_ctx l = {cb, arg, false, NULL};

	return retry_list_ctx(s, prefix, start_after, &l);
}

static int
retry_list_info(struct os_store *s, const char *prefix, const char *start_after,
		os_list_info_cb cb, void *arg)
{
	struct list_ctx l = {NULL, arg, false, cb};

	return retry_list_ctx(s, prefix, start_after, &l);
}

/* Not retried: a failure sends the caller to os_get, which is. */
static int
retry_open_range(struct os_store *s, const char *key, uint64_t off, size_t len,
		 int *fd)
{
	return os_open_range(retry_of(s)->w.inner, key, off, len, fd);
}

static void
retry_close(struct os_store *s)
{
	struct retry_store *r = retry_of(s);

	os_close(r->w.inner);
	free(r->w.base.url);
	free(r);
}

static void
retry_stats(struct os_store *s, struct os_stats *out)
{
	struct retry_store *r = retry_of(s);

	if (out->have & OS_STATS_RETRY)
		return;
	out->have |= OS_STATS_RETRY;
	out->retries = atomic_load(&r->retries);
	out->failures = atomic_load(&r->failures);
}

static const struct os_ops retry_ops = {
	.scheme = "retry",
	.put = retry_put,
	.get = retry_get,
	.head = retry_head,
	.del = retry_del,
	.list = retry_list,
	.close = retry_close,
	.list_info = retry_list_info,
	.open_range = retry_open_range,
	.stats = retry_stats,
};

int
os_retry_wrap(struct os_store *inner, unsigned attempts, uint64_t base_ms,
	      uint64_t cap_ms, struct os_store **out)
{
	struct retry_store *r = tl_calloc(1, sizeof(*r));

	r->w.base.ops = &retry_ops;
	r->w.inner = inner;
	r->attempts = attempts ? attempts : 8;
	r->base_ms = base_ms ? base_ms : 100;
	r->cap_ms = cap_ms ? cap_ms : 10000;
	r->w.base.url = tl_asprintf("retry(attempts=%u,base=%llums,cap=%llums)"
				    ":%s",
				    r->attempts, (unsigned long long)r->base_ms,
				    (unsigned long long)r->cap_ms, inner->url);
	*out = &r->w.base;
	return 0;
}

int
os_retry_open(struct os_store *inner, const char *params, struct os_store **out,
	      char **err)
{
	uint64_t attempts = 0, base = 0, cap = 0;
	struct os_params p;
	int rc;

	if ((rc = os_params_parse(params, ',', false, &p, err)) < 0)
		return rc;
	if ((rc = os_params_u64(&p, "attempts", 1, 1000, &attempts, err)) < 0 ||
	    (rc = os_params_ms(&p, "base", &base, err)) < 0 ||
	    (rc = os_params_ms(&p, "cap", &cap, err)) < 0 ||
	    (rc = os_params_check_used(&p, "retry", err)) < 0)
		goto out;
	rc = os_retry_wrap(inner, (unsigned)attempts, base, cap, out);
out:
	os_params_free(&p);
	return rc;
}

int
os_retry_stats(struct os_store *s, struct os_retry_stats *out)
{
	struct os_stats st = {0};

	s = os_unwrap(s, "retry");
	if (s == NULL)
		return -EINVAL;
	retry_stats(s, &st);
	out->retries = st.retries;
	out->failures = st.failures;
	return 0;
}
