/*
 * fault.c - a wrapper that makes any store fail on purpose, so tests can
 * show what the layers above do when the object store misbehaves.  A
 * test facility: nothing in production should be stacked on it.
 *
 * URL form: fault(err=0.1,latency=20ms,fail_after=100,failures=1,
 * ops=put|get,enospc=1,seed=7,ctl=/path):INNER.  All options are
 * optional:
 *   err=P          each selected operation fails with probability P
 *   latency=D      each selected operation first sleeps D
 *   fail_after=N   the first N selected operations pass, all later fail
 *   failures=N     at most N failures are injected, then all pass
 *   ops=A|B        the operations concerned: put get head del list sync
 *                  (default all)
 *   enospc=1       fail with -ENOSPC (a full store) instead of -EIO
 *   hold=1         each selected operation waits, before it goes on (or
 *                  fails), until the settings in force no longer hold;
 *                  while one waits, the file FILE.held exists.  In the
 *                  URL only with ctl (nothing else could release it);
 *                  os_fault_configure may set it too, and its next call
 *                  releases.  So a test can stop a READ's GET after the
 *                  READ planned its blocks, change the file meanwhile,
 *                  and let it go; or hold a cache's uploads.
 *   seed=N         reproducible sequence of random failures
 *   ctl=FILE       the settings in force are read from FILE (the same
 *                  options, but ctl, separated by ',' or white space)
 *                  whenever its text changes, read at every operation;
 *                  while FILE does not exist, the URL's settings are.  So a
 *                  test can make a running tesserad's store fail at a
 *                  moment it chooses: write FILE (to a temporary name,
 *                  then rename), act, remove FILE.  A FILE that does not
 *                  parse is logged and changes nothing.
 * Every (re)configuration, by ctl or os_fault_configure, counts
 * fail_after and failures afresh.
 *
 * A failed put or del never reaches the inner store, so an injected
 * failure is never a half-done operation.  An injected sync failure is
 * the worst os_sync allows (objstore.h): every put that returned since
 * the previous sync is deleted from the inner store, as the file store
 * unlinks objects it could not sync, and the failure is counted for
 * os_sync_mark before any of them goes.  (Only while the inner store
 * defers syncs: the keys of those puts are kept until the next sync.)
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/tl.h"
#include "objstore/objstore-internal.h"
#include "objstore/objstore.h"

struct fault_conf {
	double err;
	uint64_t latency_ms;
	uint64_t fail_after; /* UINT64_MAX: never */
	uint64_t failures;   /* most failures to inject; UINT64_MAX: all */
	unsigned ops;        /* bit per enum os_op */
	bool enospc;
	bool hold; /* selected operations wait (ctl or configure) */
};

struct fault_store {
	struct os_wrap w;
	pthread_mutex_t lock; /* guards everything below */
	struct fault_conf conf;
	struct fault_conf url_conf; /* the URL's, in force without ctl */
	uint64_t selected;          /* selected operations since configured */
	uint64_t injected;          /* failures injected since configured */
	uint64_t rng;
	struct os_fault_stats st;
	char *ctl;      /* ctl=FILE, or NULL */
	char *ctl_text; /* FILE as last read; NULL: absent */
	bool deferred;  /* the inner store defers syncs */
	char **keys;    /* puts since the last sync, when deferred */
	size_t nkeys, ckeys;
	uint64_t sync_failed; /* injected sync failures (os_sync_mark) */
};

/* Longest control file read (the rest is ignored). */
#define CTL_MAX 512

static const char *const op_names[OS_OP_COUNT] = {"put", "get",  "head",
						  "del", "list", "sync"};

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
					   "head, del, list or sync joined by "
					   "'|'",
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

/* Parse spec into *c; with ctl not NULL, ctl= is allowed and *ctl
 * receives its value (caller frees; NULL when absent). */
static int
parse_spec(const char *spec, struct fault_conf *c, uint64_t *seed,
	   bool *have_seed, char **ctl, char **err)
{
	struct os_params p;
	const char *v;
	char *end;
	int rc;

	*c = (struct fault_conf){
		0,     0,    UINT64_MAX, UINT64_MAX, (1U << OS_OP_COUNT) - 1,
		false, false};
	*have_seed = false;
	if ((rc = os_params_parse(spec, ',', false, &p, err)) < 0)
		return rc;
	if (ctl != NULL && (v = os_params_get(&p, "ctl")) != NULL) {
		if (*v != '/') {
			*err = tl_asprintf("fault: ctl=%s: expected an "
					   "absolute path",
					   v);
			rc = -EINVAL;
			goto out;
		}
		*ctl = tl_strdup(v);
	}
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
	    (rc = os_params_u64(&p, "fail_after", 0, UINT64_MAX, &c->fail_after,
				err)) < 0 ||
	    (rc = os_params_u64(&p, "failures", 0, UINT64_MAX, &c->failures,
				err)) < 0 ||
	    (rc = os_params_bool(&p, "enospc", &c->enospc, err)) < 0 ||
	    (rc = os_params_bool(&p, "hold", &c->hold, err)) < 0)
		goto out;
	if (c->hold && ctl != NULL && *ctl == NULL) {
		*err = tl_asprintf("fault: hold=1 needs ctl=FILE, which "
				   "releases what it holds");
		rc = -EINVAL;
		goto out;
	}
	if (os_params_get(&p, "seed") != NULL) {
		*have_seed = true;
		if ((rc = os_params_u64(&p, "seed", 0, UINT64_MAX, seed, err)) <
		    0)
			goto out;
	}
	rc = os_params_check_used(&p, "fault", err);
out:
	if (rc < 0 && ctl != NULL) {
		free(*ctl);
		*ctl = NULL;
	}
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

/* Settings in force from now on (f->lock held). */
static void
set_conf(struct fault_store *f, const struct fault_conf *c, bool have_seed,
	 uint64_t seed)
{
	f->conf = *c;
	f->selected = 0;
	f->injected = 0;
	if (have_seed)
		f->rng = seed * 0x9E3779B97F4A7C15ULL + 1;
}

/* Take the settings of the ctl file if its text changed since last
 * read (f->lock held).  The text is compared, not the file's times: two
 * writes within the file system's time granularity look alike. */
static void
ctl_check(struct fault_store *f)
{
	struct fault_conf c;
	char buf[CTL_MAX], *err = NULL;
	uint64_t seed = 0;
	bool have_seed;
	ssize_t n = -1;
	int fd;

	fd = open(f->ctl, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if (f->ctl_text != NULL) { /* removed: the URL's again */
			free(f->ctl_text);
			f->ctl_text = NULL;
			set_conf(f, &f->url_conf, false, 0);
		}
		return;
	}
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	if (n < 0) {
		tl_warn("objstore", "fault: %s: %s; settings unchanged", f->ctl,
			strerror(errno));
		return;
	}
	buf[n] = '\0';
	if (f->ctl_text != NULL && strcmp(buf, f->ctl_text) == 0)
		return;
	free(f->ctl_text);
	f->ctl_text = tl_strdup(buf);
	for (char *q = buf; *q != '\0'; q++) /* lines, spaces: as ',' */
		if (*q == '\n' || *q == ' ' || *q == '\t' || *q == '\r')
			*q = ',';
	while (n > 0 && buf[n - 1] == ',')
		buf[--n] = '\0';
	if (parse_spec(buf, &c, &seed, &have_seed, NULL, &err) < 0) {
		tl_warn("objstore", "fault: %s: %s; settings unchanged", f->ctl,
			err);
		free(err);
		return;
	}
	tl_notice("objstore", "fault: settings from %s: %s", f->ctl,
		  buf + strspn(buf, ","));
	set_conf(f, &c, have_seed, seed);
}

/* Count the call and decide (f->lock held): 0 to pass it on, or the
 * error to inject; *sleep_ms receives the latency to add, *hold whether
 * the call waits for the settings to release it. */
static int
decide(struct fault_store *f, enum os_op op, uint64_t *sleep_ms, bool *hold)
{
	int rc = 0;

	if (f->ctl != NULL)
		ctl_check(f);
	*sleep_ms = 0;
	*hold = false;
	f->st.calls[op]++;
	if (f->conf.ops & (1U << op)) {
		*sleep_ms = f->conf.latency_ms;
		*hold = f->conf.hold;
		f->selected++;
		if ((f->selected > f->conf.fail_after ||
		     (f->conf.err > 0 && next_rand(f) < f->conf.err)) &&
		    f->injected < f->conf.failures)
			rc = f->conf.enospc ? -ENOSPC : -EIO;
		if (rc < 0) {
			f->injected++;
			f->st.injected[op]++;
		}
	}
	return rc;
}

static void
sleep_for(uint64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000),
			      (long)(ms % 1000) * 1000000L};

	while (ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* hold=1: wait until the settings in force (the ctl file's, or
 * os_fault_configure's) no longer hold, with FILE.held present meanwhile
 * when there is a ctl file (created by every waiter, removed by each as
 * it goes: all waiters are released together). */
static void
hold_wait(struct fault_store *f)
{
	char *held = f->ctl ? tl_asprintf("%s.held", f->ctl) : NULL;
	bool hold = true;
	int fd;

	if (held != NULL &&
	    (fd = open(held, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) >= 0)
		close(fd);
	while (hold) {
		sleep_for(10);
		pthread_mutex_lock(&f->lock);
		if (f->ctl != NULL)
			ctl_check(f);
		hold = f->conf.hold;
		pthread_mutex_unlock(&f->lock);
	}
	if (held != NULL)
		(void)unlink(held);
	free(held);
}

/* Count the call and decide: 0 to pass it on, or the error to inject. */
static int
fault_check(struct fault_store *f, enum os_op op)
{
	uint64_t sleep_ms;
	bool hold;
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = decide(f, op, &sleep_ms, &hold);
	pthread_mutex_unlock(&f->lock);
	if (hold)
		hold_wait(f);
	sleep_for(sleep_ms);
	if (rc < 0)
		tl_debug("objstore", "%s: injected %s failure", f->w.base.url,
			 op_names[op]);
	return rc;
}

/* Forget the keys of the puts since the last sync (f->lock held). */
static void
keys_clear(struct fault_store *f)
{
	for (size_t i = 0; i < f->nkeys; i++)
		free(f->keys[i]);
	f->nkeys = 0;
}

static int
fault_put(struct os_store *s, const char *key, const void *data, size_t len)
{
	struct fault_store *f = fault_of(s);
	int rc = fault_check(f, OS_OP_PUT);

	if (rc == 0)
		rc = f->w.inner->ops->put(f->w.inner, key, data, len);
	pthread_mutex_lock(&f->lock);
	if (rc == 0 && f->deferred) {
		if (f->nkeys == f->ckeys) {
			f->ckeys = f->ckeys ? 2 * f->ckeys : 16;
			f->keys = tl_realloc(f->keys,
					     f->ckeys * sizeof(*f->keys));
		}
		f->keys[f->nkeys++] = tl_strdup(key);
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

static int
fault_get(struct os_store *s, const char *key, uint64_t off, size_t len,
	  void *buf, size_t *got)
{
	struct fault_store *f = fault_of(s);
	int rc = fault_check(f, OS_OP_GET);

	*got = 0;
	if (rc < 0)
		return rc;
	rc = f->w.inner->ops->get(f->w.inner, key, off, len, buf, got);
	pthread_mutex_lock(&f->lock);
	f->st.get_bytes += *got;
	pthread_mutex_unlock(&f->lock);
	return rc;
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
fault_list_info(struct os_store *s, const char *prefix, const char *start_after,
		os_list_info_cb cb, void *arg)
{
	struct fault_store *f = fault_of(s);
	int rc = fault_check(f, OS_OP_LIST);

	return rc < 0 ? rc
		      : os_list_info(f->w.inner, prefix, start_after, cb, arg);
}

static int
fault_defer_sync(struct os_store *s)
{
	struct fault_store *f = fault_of(s);
	int rc = os_defer_sync(f->w.inner);

	pthread_mutex_lock(&f->lock);
	f->deferred = rc == 0;
	pthread_mutex_unlock(&f->lock);
	return rc;
}

/* An injected failure loses every put since the last sync: counted
 * first, and deleted with the lock held, so that a put made again
 * after the count is never deleted by this failure. */
static int
fault_sync(struct os_store *s)
{
	struct fault_store *f = fault_of(s);
	uint64_t sleep_ms;
	bool hold;
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = decide(f, OS_OP_SYNC, &sleep_ms, &hold);
	if (hold) {
		pthread_mutex_unlock(&f->lock);
		hold_wait(f);
		pthread_mutex_lock(&f->lock);
	}
	if (rc < 0) {
		f->sync_failed++;
		for (size_t i = 0; i < f->nkeys; i++)
			f->w.inner->ops->del(f->w.inner, f->keys[i]);
		tl_debug("objstore",
			 "%s: injected sync failure: %zu puts "
			 "lost",
			 f->w.base.url, f->nkeys);
	}
	keys_clear(f);
	pthread_mutex_unlock(&f->lock);
	sleep_for(sleep_ms);
	return rc < 0 ? rc : os_sync(f->w.inner);
}

static uint64_t
fault_sync_failures(struct os_store *s)
{
	struct fault_store *f = fault_of(s);
	uint64_t n;

	pthread_mutex_lock(&f->lock);
	n = f->sync_failed + os_sync_mark(f->w.inner);
	pthread_mutex_unlock(&f->lock);
	return n;
}

static void
fault_close(struct os_store *s)
{
	struct fault_store *f = fault_of(s);

	os_close(f->w.inner);
	keys_clear(f);
	free(f->keys);
	free(f->ctl);
	free(f->ctl_text);
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
	.defer_sync = fault_defer_sync,
	.sync = fault_sync,
	.sync_failures = fault_sync_failures,
	.list_info = fault_list_info,
};

int
os_fault_open(struct os_store *inner, const char *params, struct os_store **out,
	      char **err)
{
	struct fault_store *f;
	struct fault_conf c;
	uint64_t seed = 0;
	char *ctl = NULL;
	bool have_seed;
	int rc;

	*out = NULL;
	if ((rc = parse_spec(params, &c, &seed, &have_seed, &ctl, err)) < 0)
		return rc;
	f = tl_calloc(1, sizeof(*f));
	f->w.base.ops = &fault_ops;
	f->w.base.url = tl_asprintf("fault(%s):%s", params, inner->url);
	f->w.inner = inner;
	pthread_mutex_init(&f->lock, NULL);
	f->conf = c;
	f->url_conf = c;
	f->ctl = ctl;
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
	rc = parse_spec(spec ? spec : "", &c, &seed, &have_seed, NULL, &e);
	if (rc == 0) {
		pthread_mutex_lock(&f->lock);
		set_conf(f, &c, have_seed, seed);
		f->url_conf = c;
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
