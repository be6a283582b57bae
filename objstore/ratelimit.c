/*
 * ratelimit.c - upload and download bandwidth limits around any store.
 *
 * URL form: ratelimit(up=10M,down=50M):INNER (bytes per second, sizes
 * with K/M/G suffixes; 0 or absent = unlimited).  os_ratelimit_set changes
 * the limits at run time (tessera.conf reload).
 *
 * Each direction is a token bucket kept as a virtual clock: a transfer of
 * n bytes moves "next" forward by n/rate seconds and its caller sleeps
 * until then, less the burst allowance of 100 ms, so an idle period lets
 * at most 100 ms worth of bytes through at once.  Uploads pay before the
 * put; downloads pay after the get for the bytes actually received.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/tl.h"
#include "objstore/objstore-internal.h"
#include "objstore/objstore.h"

#define BURST_NS 100000000ULL

struct bucket {
	uint64_t rate; /* bytes/s, 0 = unlimited */
	uint64_t next; /* monotonic ns when the bucket is next empty */
	uint64_t bytes;
};

struct rl_store {
	struct os_wrap w;
	pthread_mutex_t lock;
	struct bucket up, down;
	uint64_t throttled_ns;
};

static struct rl_store *
rl_of(struct os_store *s)
{
	return (struct rl_store *)s;
}

static void
take(struct rl_store *r, struct bucket *b, uint64_t n)
{
	uint64_t now, start, wait = 0;
	struct timespec ts;

	pthread_mutex_lock(&r->lock);
	b->bytes += n;
	if (b->rate > 0) {
		now = tl_mono_ns();
		start = TL_MAX(b->next, now > BURST_NS ? now - BURST_NS : 0);
		/* n * 1e9 / rate without overflow for n up to ~18 EB */
		b->next = start + n / b->rate * 1000000000ULL +
			  n % b->rate * 1000000000ULL / b->rate;
		if (b->next > now + BURST_NS)
			wait = b->next - now - BURST_NS;
		r->throttled_ns += wait;
	}
	pthread_mutex_unlock(&r->lock);
	if (wait == 0)
		return;
	ts.tv_sec = (time_t)(wait / 1000000000ULL);
	ts.tv_nsec = (long)(wait % 1000000000ULL);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int
rl_put(struct os_store *s, const char *key, const void *data, size_t len)
{
	struct rl_store *r = rl_of(s);

	take(r, &r->up, len);
	return r->w.inner->ops->put(r->w.inner, key, data, len);
}

static int
rl_get(struct os_store *s, const char *key, uint64_t off, size_t len, void *buf,
       size_t *got)
{
	struct rl_store *r = rl_of(s);
	int rc = r->w.inner->ops->get(r->w.inner, key, off, len, buf, got);

	if (rc == 0)
		take(r, &r->down, *got);
	return rc;
}

static int
rl_open_range(struct os_store *s, const char *key, uint64_t off, size_t len,
	      int *fd)
{
	struct rl_store *r = rl_of(s);
	int rc = os_open_range(r->w.inner, key, off, len, fd);

	if (rc == 0)
		take(r, &r->down, len); /* what sendfile will move */
	return rc;
}

static int
rl_head(struct os_store *s, const char *key, uint64_t *size)
{
	struct rl_store *r = rl_of(s);

	return r->w.inner->ops->head(r->w.inner, key, size);
}

static int
rl_del(struct os_store *s, const char *key)
{
	struct rl_store *r = rl_of(s);

	return r->w.inner->ops->del(r->w.inner, key);
}

static int
rl_list(struct os_store *s, const char *prefix, const char *start_after,
	os_list_cb cb, void *arg)
{
	struct rl_store *r = rl_of(s);

	return r->w.inner->ops->list(r->w.inner, prefix, start_after, cb, arg);
}

static int
rl_list_info(struct os_store *s, const char *prefix, const char *start_after,
	     os_list_info_cb cb, void *arg)
{
	return os_list_info(rl_of(s)->w.inner, prefix, start_after, cb, arg);
}

static void
rl_close(struct os_store *s)
{
	struct rl_store *r = rl_of(s);

	os_close(r->w.inner);
	pthread_mutex_destroy(&r->lock);
	free(r->w.base.url);
	free(r);
}

static void
rl_stats(struct os_store *s, struct os_stats *out)
{
	struct rl_store *r = rl_of(s);

	if (out->have & OS_STATS_TRAFFIC)
		return;
	out->have |= OS_STATS_TRAFFIC;
	pthread_mutex_lock(&r->lock);
	out->up_bytes = r->up.bytes;
	out->down_bytes = r->down.bytes;
	out->throttled_ns = r->throttled_ns;
	pthread_mutex_unlock(&r->lock);
}

static const struct os_ops rl_ops = {
	.scheme = "ratelimit",
	.put = rl_put,
	.get = rl_get,
	.head = rl_head,
	.del = rl_del,
	.list = rl_list,
	.close = rl_close,
	.list_info = rl_list_info,
	.open_range = rl_open_range,
	.stats = rl_stats,
};

int
os_ratelimit_wrap(struct os_store *inner, uint64_t up_bps, uint64_t down_bps,
		  struct os_store **out)
{
	struct rl_store *r = tl_calloc(1, sizeof(*r));

	r->w.base.ops = &rl_ops;
	r->w.inner = inner;
	r->w.base.url = tl_asprintf("ratelimit:%s", inner->url);
	pthread_mutex_init(&r->lock, NULL);
	r->up.rate = up_bps;
	r->down.rate = down_bps;
	*out = &r->w.base;
	return 0;
}

int
os_ratelimit_open(struct os_store *inner, const char *params,
		  struct os_store **out, char **err)
{
	uint64_t up = 0, down = 0;
	struct os_params p;
	const char *v;
	int rc;

	if ((rc = os_params_parse(params, ',', false, &p, err)) < 0)
		return rc;
	if ((v = os_params_get(&p, "up")) != NULL &&
	    tl_parse_size(v, &up) < 0) {
		*err = tl_asprintf("ratelimit: up=%s: expected bytes/s", v);
		rc = -EINVAL;
	} else if ((v = os_params_get(&p, "down")) != NULL &&
		   tl_parse_size(v, &down) < 0) {
		*err = tl_asprintf("ratelimit: down=%s: expected bytes/s", v);
		rc = -EINVAL;
	} else {
		rc = os_params_check_used(&p, "ratelimit", err);
	}
	os_params_free(&p);
	if (rc == 0)
		rc = os_ratelimit_wrap(inner, up, down, out);
	return rc;
}

int
os_ratelimit_set(struct os_store *s, uint64_t up_bps, uint64_t down_bps)
{
	struct rl_store *r;

	s = os_unwrap(s, "ratelimit");
	if (s == NULL)
		return -EINVAL;
	r = rl_of(s);
	pthread_mutex_lock(&r->lock);
	r->up.rate = up_bps;
	r->down.rate = down_bps;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

int
os_ratelimit_stats(struct os_store *s, struct os_ratelimit_stats *out)
{
	struct os_stats st = {0};

	s = os_unwrap(s, "ratelimit");
	if (s == NULL)
		return -EINVAL;
	rl_stats(s, &st);
	out->up_bytes = st.up_bytes;
	out->down_bytes = st.down_bytes;
	out->throttled_ns = st.throttled_ns;
	return 0;
}
