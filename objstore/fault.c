/*
 * fault.c - a wrapper that makes any store fail on purpose, so tests can
 * show what the layers above do when the object store misbehaves.
 *
 * URL form: fault(err=0.1,latency=20ms,fail_after=100,ops=put|get,
 * enospc=1,seed=7):INNER.  All options are optional:
 *   err=P          each selected operation fails with probability P
 *   latency=D      each selected operation first sleeps D
 *   fail_after=N   the first N selected operations pass, all later fail
 *   ops=A|B        the operations concerned: put get head del list
 *                  (default all)
 *   enospc=1       fail with -ENOSPC (a full store) instead of -EIO
 *   seed=N         reproducible sequence of random failures
 * A failed put or del never reaches the inner store, so an injected
 * failure is never a half-done operation.
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

struct fault_conf {
	double err;
	uint64_t latency_ms;
	uint64_t fail_after; /* UINT64_MAX: never */
	unsigned ops;        /* bit per enum os_op */
	bool enospc;
};

struct fault_store {
	struct os_wrap w;
	pthread_mutex_t lock;
	struct fault_conf conf;
	uint64_t selected; /* selected operations since configured */
	uint64_t rng;
	struct os_fault_stats st;
};

static const char *const op_names[OS_OP_COUNT] = {"put", "get", "head",
						   "del", "list"};

static struct fault_store *
fault_of(struct os_store *s)
{
	return (struct fault_store *)s;
}

static int
parse_ops(const char *v, unsigned *out, char **err)
{
	const char *p = v;
	size_t n, i;

	*out = 0;
	while (*p != '\0') {
		n = strcspn(p, "|+");
		for (i = 0; i < OS_OP_COUNT; i++)
			if (strlen(op_names[i]) == n &&
			    strncmp(p, op_names[i], n) == 0)
				break;
		if (i == OS_OP_COUNT) {
			*err = tl_asprintf("fault: ops=%s: expected put, get, "
					   "head, del or list joined by '|'",
					   v);
			return -EINVAL;
		}
		*out |= 1U << i;
		p += n;
		if (*p != '\0')
			p++;
	}
	return 0;
}

static int
parse_spec(const char *spec, struct fault_conf *c, uint64_t *seed,
	   bool *have_seed, char **err)
{
	struct os_params p;
	const char *v;
	char *end;
	int rc;

	*c = (struct fault_conf){0, 0, UINT64_MAX, (1U << OS_OP_COUNT) - 1,
				 false};
	*have_seed = false;
	if ((rc = os_params_parse(spec, ',', false, &p, err)) < 0)
		return rc;
	v = os_params_get(&p, "err");
	if (v != NULL) {
		c->err = strtod(v, &end);
		if (*end != '\0' || end == v || !(c->err >= 0 && c->err <= 1)) {
			*err = tl_asprintf("fault: err=%s: expected a "
					   "probability from 0 to 1",
					   v);
			rc = -EINVAL;
			goto out;
		}
	}
	v = os_params_get(&p, "ops");
	if ((v != NULL && (rc = parse_ops(v, &c->ops, err)) < 0) ||
	    (rc = os_params_ms(&p, "latency", &c->latency_ms, err)) < 0 ||
	    (rc = os_params_u64(&p, "fail_after", 0, UINT64_MAX,
				&c->fail_after, err)) < 0 ||
	    (rc = os_params_bool(&p, "enospc", &c->enospc, err)) < 0)
		goto out;
	if (os_params_get(&p, "seed") != NULL) {
		*have_seed = true;
		if ((rc = os_params_u64(&p, "seed", 0, UINT64_MAX, seed, err)) <
		    0)
			goto out;
	}
	rc = os_params_check_used(&p, "fault", err);
out:
	os_params_free(&p);
	return rc;
}

/* xorshift64*: good enough to pick failures, reproducible by seed. */
static double
next_rand(struct fault_store *f)
{
	uint64_t x = f->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	f->rng = x;
	return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

/* Count the call and decide: 0 to pass it on, or the error to inject. */
static int
fault_check(struct fault_store *f, enum os_op op)
{
	uint64_t sleep_ms = 0;
	int rc = 0;

	pthread_mutex_lock(&f->lock);
	f->st.calls[op]++;
	if (f->conf.ops & (1U << op)) {
		sleep_ms = f->conf.latency_ms;
		f->selected++;
		if (f->selected > f->conf.fail_after ||
		    (f->conf.err > 0 && next_rand(f) < f->conf.err))
			rc = f->conf.enospc ? -ENOSPC : -EIO;
		if (rc < 0)
			f->st.injected[op]++;
	}
	pthread_mutex_unlock(&f->lock);
	if (sleep_ms > 0) {
		struct timespec ts = {(time_t)(sleep_ms / 1000),
				      (long)(sleep_ms % 1000) * 1000000L};

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	if (rc < 0)
		tl_debug("objstore", "%s: injected %s failure", f->w.base.url,
			 op_names[op]);
	return rc;
}

static int
fault_put(struct os_store *s, const char *key, const void *data, size_t len)
{
	struct fault_store *f = fault_of(s);
	int rc = fault_check(f, OS_OP_PUT);

	return rc < 0 ? rc : f->w.inner->ops->put(f->w.inner, key, data, len);
}

static int
fault_get(struct os_store *s, const char *key, uint64_t off, size_t len,
	  void *buf, size_t *got)
{
	struct fault_store *f = fault_of(s);
	int rc = fault_check(f, OS_OP_GET);

	*got = 0;
	return rc < 0 ? rc
		      : f->w.inner->ops->get(f->w.inner, key, off, len, buf,
					     got);
}

static int
fault_head(struct os_store *s, const char *key, uint64_t *size)
{
	struct fault_store *f = fault_of(s);
	int rc = fault_check(f, OS_OP_HEAD);

	return rc < 0 ? rc : f->w.inner->ops->head(f->w.inner, key, size);
}

static int
fault_del(struct os_store *s, const char *key)
{
	struct fault_store *f = fault_of(s);
	int rc = fault_check(f, OS_OP_DEL);

	return rc < 0 ? rc : f->w.inner->ops->del(f->w.inner, key);
}

static int
fault_list(struct os_store *s, const char *prefix, const char *start_after,
	   os_list_cb cb, void *arg)
{
	struct fault_store *f = fault_of(s);
	int rc = fault_check(f, OS_OP_LIST);

	return rc < 0 ? rc
		      : f->w.inner->ops->list(f->w.inner, prefix, start_after,
					      cb, arg);
}

static int
fault_list_info(struct os_store *s, const char *prefix,
		const char *start_after, os_list_info_cb cb, void *arg)
{
	struct fault_store *f = fault_of(s);
	int rc = fault_check(f, OS_OP_LIST);

	return rc < 0 ? rc
		      : os_list_info(f->w.inner, prefix, start_after, cb, arg);
}

static void
fault_close(struct os_store *s)
{
	struct fault_store *f = fault_of(s);

	os_close(f->w.inner);
	pthread_mutex_destroy(&f->lock);
	free(f->w.base.url);
	free(f);
}

static const struct os_ops fault_ops = {
	.scheme = "fault",
	.put = fault_put,
	.get = fault_get,
	.head = fault_head,
	.del = fault_del,
	.list = fault_list,
	.close = fault_close,
	.list_info = fault_list_info,
};

int
os_fault_open(struct os_store *inner, const char *params,
	      struct os_store **out, char **err)
{
	struct fault_store *f;
	struct fault_conf c;
	uint64_t seed = 0;
	bool have_seed;
	int rc;

	*out = NULL;
	if ((rc = parse_spec(params, &c, &seed, &have_seed, err)) < 0)
		return rc;
	f = tl_calloc(1, sizeof(*f));
	f->w.base.ops = &fault_ops;
	f->w.base.url = tl_asprintf("fault(%s):%s", params, inner->url);
	f->w.inner = inner;
	pthread_mutex_init(&f->lock, NULL);
	f->conf = c;
	f->rng = have_seed ? seed : tl_random_u64();
	f->rng = f->rng * 0x9E3779B97F4A7C15ULL + 1; /* never 0 */
	*out = &f->w.base;
	return 0;
}

int
os_fault_wrap(struct os_store *inner, const char *spec, struct os_store **out,
	      char **err)
{
	char *e = NULL;
	int rc = os_fault_open(inner, spec ? spec : "", out, &e);

	if (err != NULL)
		*err = e;
	else
		free(e);
	return rc;
}

int
os_fault_configure(struct os_store *s, const char *spec, char **err)
{
	struct fault_store *f;
	struct fault_conf c;
	uint64_t seed = 0;
	bool have_seed;
	char *e = NULL;
	int rc;

	s = os_unwrap(s, "fault");
	if (s == NULL)
		return -EINVAL;
	f = fault_of(s);
	rc = parse_spec(spec ? spec : "", &c, &seed, &have_seed, &e);
	if (rc == 0) {
		pthread_mutex_lock(&f->lock);
		f->conf = c;
		f->selected = 0;
		if (have_seed)
			f->rng = seed * 0x9E3779B97F4A7C15ULL + 1;
		pthread_mutex_unlock(&f->lock);
	}
	if (err != NULL)
		*err = e;
	else
		free(e);
	return rc;
}

int
os_fault_stats(struct os_store *s, struct os_fault_stats *out)
{
	struct fault_store *f;

	s = os_unwrap(s, "fault");
	if (s == NULL)
		return -EINVAL;
	f = fault_of(s);
	pthread_mutex_lock(&f->lock);
	*out = f->st;
	pthread_mutex_unlock(&f->lock);
	return 0;
}
