/*
 * objstore.c - URL dispatch and the os_* calls, which check keys once for
 * every backend and then go through the store's operations table.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/tl.h"
#include "objstore/objstore-internal.h"
#include "objstore/objstore.h"

bool
os_key_valid(const char *key)
{
	const char *p, *comp;
	size_t n;

	if (key == NULL || key[0] == '\0' || key[0] == '/')
		return false;
	for (p = key; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	for (comp = key;; comp += n + 1) {
		n = strcspn(comp, "/");
		if (n == 0)
			return false; /* "a//b" or a trailing '/' */
		if ((n == 1 && comp[0] == '.') ||
		    (n == 2 && comp[0] == '.' && comp[1] == '.'))
			return false;
		if (comp[n] == '\0')
			return true;
	}
}

/* A list prefix may be empty and its last component may be partial; the
 * components followed by '/' are opened as directories, so they obey the
 * key rules. */
static bool
prefix_valid(const char *prefix)
{
	const char *comp;
	size_t n;

	if (prefix == NULL)
		return true;
	if (prefix[0] == '/')
		return false;
	for (comp = prefix; *comp != '\0'; comp += n + 1) {
		n = strcspn(comp, "/");
		if (comp[n] == '\0')
			break;
		if (n == 0 || (n == 1 && comp[0] == '.') ||
		    (n == 2 && comp[0] == '.' && comp[1] == '.'))
			return false;
	}
	for (comp = prefix; *comp != '\0'; comp++)
		if ((unsigned char)*comp < 0x20)
			return false;
	return true;
}

/* Wrappers in URL form: NAME[(PARAMS)]:INNER. */
struct wrapper {
	const char *name;
	int (*open)(struct os_store *inner, const char *params,
		    struct os_store **out, char **err);
};

static const struct wrapper wrappers[] = {
	{"fault", os_fault_open},         {"retry", os_retry_open},
	{"ratelimit", os_ratelimit_open}, {"zstd", os_zstd_open},
	{"crypt", os_crypt_open},
};

static int
open_url(const char *url, unsigned flags, unsigned depth, struct os_store **out,
	 char **err)
{
	const struct wrapper *w;
	const char *p, *close;
	struct os_store *inner;
	char *params = NULL;
	size_t i, n;
	int rc;

	if (depth > 8) {
		*err = tl_strdup("object store URL: too many wrappers");
		return -EINVAL;
	}
	if (strncmp(url, "file://", 7) == 0) {
		if (url[7] == '\0') {
			*err = tl_strdup("file:// URL without a path");
			return -EINVAL;
		}
		return os_file_open_flags(url + 7, flags, out, err);
	}
	if (strncmp(url, "s3://", 5) == 0)
		return os_s3_open(url, flags, out, err);
	for (i = 0; i < TL_ARRAY_SIZE(wrappers); i++) {
		w = &wrappers[i];
		n = strlen(w->name);
		if (strncmp(url, w->name, n) == 0 &&
		    (url[n] == ':' || url[n] == '('))
			break;
	}
	if (i == TL_ARRAY_SIZE(wrappers)) {
		*err = tl_asprintf("unsupported object store URL '%s' "
				   "(expected file:///path, s3://bucket or "
				   "a wrapper such as zstd:URL)",
				   url);
		return -EINVAL;
	}
	p = url + n;
	if (*p == '(') {
		close = strchr(p, ')');
		if (close == NULL) {
			*err = tl_asprintf("%s: missing ')'", w->name);
			return -EINVAL;
		}
		params = tl_strndup(p + 1, (size_t)(close - p - 1));
		p = close + 1;
	}
	if (*p != ':') {
		*err = tl_asprintf("%s: expected ':' and the inner store URL",
				   w->name);
		free(params);
		return -EINVAL;
	}
	rc = open_url(p + 1, flags, depth + 1, &inner, err);
	if (rc == 0) {
		rc = w->open(inner, params ? params : "", out, err);
		if (rc < 0)
			os_close(inner);
	}
	free(params);
	return rc;
}

int
os_open(const char *url, struct os_store **out, char **err)
{
	return os_open_flags(url, 0, out, err);
}

int
os_open_flags(const char *url, unsigned flags, struct os_store **out,
	      char **err)
{
	char *e = NULL;
	int rc;

	*out = NULL;
	rc = open_url(url, flags, 0, out, &e);
	if (rc == 0)
		(*out)->rdonly = (flags & OS_OPEN_RDONLY) != 0;
	if (rc < 0 && e == NULL)
		e = tl_asprintf("%s: %s", url, strerror(-rc));
	if (err != NULL)
		*err = e;
	else
		free(e);
	return rc;
}

struct os_store *
os_unwrap(struct os_store *s, const char *scheme)
{
	while (s != NULL) {
		if (strcmp(s->ops->scheme, scheme) == 0)
			return s;
		if (!os_is_wrapper(s))
			return NULL;
		s = ((struct os_wrap *)s)->inner;
	}
	return NULL;
}

int
os_stats(struct os_store *s, struct os_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (; s != NULL; s = ((struct os_wrap *)s)->inner) {
		if (s->ops->stats != NULL)
			s->ops->stats(s, out);
		if (!os_is_wrapper(s)) {
			out->puts = atomic_load(&s->puts);
			out->have |= OS_STATS_PUTS;
			break;
		}
	}
	return 0;
}

/* Every layer lends ranges (the wrappers that have open_range pass it
 * on and cost what they read), down to the file store. */
bool
os_local(struct os_store *s)
{
	for (; s != NULL; s = ((struct os_wrap *)s)->inner) {
		if (s->ops->open_range == NULL)
			return false;
		if (!os_is_wrapper(s))
			return strcmp(s->ops->scheme, "file") == 0;
	}
	return false;
}

bool
os_is_wrapper(const struct os_store *s)
{
	size_t i;

	for (i = 0; i < TL_ARRAY_SIZE(wrappers); i++)
		if (strcmp(s->ops->scheme, wrappers[i].name) == 0)
			return true;
	return false;
}

void
os_backoff_sleep(unsigned attempt, uint64_t base_ms, uint64_t cap_ms)
{
	uint64_t max = base_ms, ms;
	struct timespec ts;

	while (attempt-- > 0 && max < cap_ms)
		max *= 2;
	max = TL_MIN(max, cap_ms);
	if (max == 0)
		return;
	ms = tl_random_u64() % (max + 1);
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- URL options ------------------------------------------------------ */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static char *
pct_decode(const char *s, size_t n)
{
	char *out = tl_malloc(n + 1), *o = out;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
		    hexval(s[i + 2]) >= 0) {
			*o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

int
os_params_parse(const char *s, char sep, bool pct, struct os_params *out,
		char **err)
{
	const char *p = s, *end, *eq;
	struct os_param *v;
	size_t n;

	out->v = NULL;
	out->n = 0;
	while (*p != '\0') {
		end = strchr(p, sep);
		if (end == NULL)
			end = p + strlen(p);
		if (end == p) {
			p = *end ? end + 1 : end;
			continue;
		}
		eq = memchr(p, '=', (size_t)(end - p));
		n = eq ? (size_t)(eq - p) : (size_t)(end - p);
		if (n == 0) {
			*err = tl_asprintf("empty option name in '%s'", s);
			os_params_free(out);
			return -EINVAL;
		}
		out->v = tl_realloc(out->v, (out->n + 1) * sizeof(*out->v));
		v = &out->v[out->n++];
		v->name = pct ? pct_decode(p, n) : tl_strndup(p, n);
		if (eq == NULL)
			v->value = tl_strdup("");
		else if (pct)
			v->value = pct_decode(eq + 1, (size_t)(end - eq - 1));
		else
			v->value = tl_strndup(eq + 1, (size_t)(end - eq - 1));
		v->used = false;
		p = *end ? end + 1 : end;
	}
	return 0;
}

const char *
os_params_get(struct os_params *p, const char *name)
{
	const char *val = NULL;
	size_t i;

	for (i = 0; i < p->n; i++)
		if (strcmp(p->v[i].name, name) == 0) {
			p->v[i].used = true;
			val = p->v[i].value; /* the last one wins */
		}
	return val;
}

int
os_params_u64(struct os_params *p, const char *name, uint64_t min, uint64_t max,
	      uint64_t *out, char **err)
{
	const char *v = os_params_get(p, name);

	if (v == NULL)
		return 0;
	if (tl_parse_u64(v, min, max, out) < 0) {
		*err = tl_asprintf("option %s=%s: expected a number from "
				   "%llu to %llu",
				   name, v, (unsigned long long)min,
				   (unsigned long long)max);
		return -EINVAL;
	}
	return 0;
}

int
os_params_bool(struct os_params *p, const char *name, bool *out, char **err)
{
	const char *v = os_params_get(p, name);

	if (v == NULL)
		return 0;
	if (v[0] == '\0') {
		*out = true;
		return 0;
	}
	if (tl_parse_bool(v, out) < 0) {
		*err = tl_asprintf("option %s=%s: expected 0 or 1", name, v);
		return -EINVAL;
	}
	return 0;
}

int
os_params_ms(struct os_params *p, const char *name, uint64_t *out, char **err)
{
	const char *v = os_params_get(p, name);

	if (v == NULL)
		return 0;
	if (tl_parse_duration_ms(v, out) < 0) {
		*err = tl_asprintf("option %s=%s: expected a duration "
				   "(250ms, 10s)",
				   name, v);
		return -EINVAL;
	}
	return 0;
}

int
os_params_check_used(const struct os_params *p, const char *what, char **err)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (!p->v[i].used) {
			*err = tl_asprintf("%s: unknown option '%s'", what,
					   p->v[i].name);
			return -EINVAL;
		}
	return 0;
}

void
os_params_free(struct os_params *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		free(p->v[i].name);
		if (p->v[i].value != NULL)
			explicit_bzero(p->v[i].value, strlen(p->v[i].value));
		free(p->v[i].value);
	}
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

void
os_close(struct os_store *s)
{
	if (s != NULL)
		s->ops->close(s);
}

/* ---- per-operation figures (os_op_stats) -------------------------------- */

const double os_op_bucket_s[OS_OP_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
	0.25,  0.5,    1,     2.5,  5,     10,   30,
};

static struct {
	_Atomic uint64_t calls, errors, lat_sum_ns;
	_Atomic uint64_t lat[OS_OP_BUCKETS + 1];
} op_st[OS_OP_COUNT];

static const char *const op_names[OS_OP_COUNT] = {
	[OS_OP_PUT] = "put",    [OS_OP_GET] = "get",   [OS_OP_HEAD] = "head",
	[OS_OP_DEL] = "delete", [OS_OP_LIST] = "list", [OS_OP_SYNC] = "sync",
};

const char *
os_op_name(unsigned op)
{
	return op < OS_OP_COUNT ? op_names[op] : "other";
}

/* Count a call of op that began at t0 (tl_mono_ns) and returned rc;
 * returns rc. */
static int
op_done(unsigned op, uint64_t t0, int rc)
{
	uint64_t ns = tl_mono_ns() - t0;
	unsigned i = 0;

	while (i < OS_OP_BUCKETS && (double)ns > os_op_bucket_s[i] * 1e9)
		i++;
	atomic_fetch_add_explicit(&op_st[op].calls, 1, memory_order_relaxed);
	if (rc < 0 && rc != -ENOENT)
		atomic_fetch_add_explicit(&op_st[op].errors, 1,
					  memory_order_relaxed);
	atomic_fetch_add_explicit(&op_st[op].lat_sum_ns, ns,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&op_st[op].lat[i], 1, memory_order_relaxed);
	return rc;
}

/* The call expression, counted as one call of op (a statement expression:
 * the clock is read before the call). */
#define OP_CALL(op, call)                                                      \
	({                                                                     \
		uint64_t t0_ = tl_mono_ns();                                   \
		op_done(op, t0_, (call));                                      \
	})

void
os_op_stats(struct os_op_stats out[OS_OP_COUNT])
{
	for (unsigned op = 0; op < OS_OP_COUNT; op++) {
		out[op].calls = atomic_load_explicit(&op_st[op].calls,
						     memory_order_relaxed);
		out[op].errors = atomic_load_explicit(&op_st[op].errors,
						      memory_order_relaxed);
		out[op].lat_sum_ns = atomic_load_explicit(&op_st[op].lat_sum_ns,
							  memory_order_relaxed);
		for (unsigned i = 0; i <= OS_OP_BUCKETS; i++)
			out[op].lat[i] = atomic_load_explicit(
				&op_st[op].lat[i], memory_order_relaxed);
	}
}

int
os_put(struct os_store *s, const char *key, const void *data, size_t len)
{
	if (!os_key_valid(key))
		return -EINVAL;
	if (s->rdonly)
		return -EROFS;
	return OP_CALL(OS_OP_PUT, s->ops->put(s, key, data, len));
}

struct os_store *
os_bottom(struct os_store *s)
{
	while (os_is_wrapper(s))
		s = ((struct os_wrap *)s)->inner;
	return s;
}

/* The store of the stack s that answers for durability: the first one
 * with a sync operation (the bottom store, or a wrapper such as fault
 * that passes it on itself); NULL when none has one. */
static struct os_store *
os_syncer(struct os_store *s)
{
	for (;;) {
		if (s->ops->sync != NULL)
			return s;
		if (!os_is_wrapper(s))
			return NULL;
		s = ((struct os_wrap *)s)->inner;
	}
}

int
os_defer_sync(struct os_store *s)
{
	s = os_syncer(s);
	if (s == NULL || s->ops->defer_sync == NULL)
		return -ENOTSUP;
	return s->ops->defer_sync(s);
}

int
os_sync(struct os_store *s)
{
	s = os_syncer(s);
	return s != NULL ? OP_CALL(OS_OP_SYNC, s->ops->sync(s)) : 0;
}

uint64_t
os_sync_mark(struct os_store *s)
{
	s = os_syncer(s);
	return s != NULL && s->ops->sync_failures != NULL
		       ? s->ops->sync_failures(s)
		       : 0;
}

int
os_sync_since(struct os_store *s, uint64_t mark)
{
	int r = os_sync(s);

	if (r == 0 && os_sync_mark(s) != mark)
		r = -EIO;
	return r;
}

int
os_get(struct os_store *s, const char *key, uint64_t off, size_t len, void *buf,
       size_t *got)
{
	*got = 0;
	if (!os_key_valid(key))
		return -EINVAL;
	return OP_CALL(OS_OP_GET, s->ops->get(s, key, off, len, buf, got));
}

int
os_open_range(struct os_store *s, const char *key, uint64_t off, size_t len,
	      int *fd)
{
	*fd = -1;
	if (!os_key_valid(key))
		return -EINVAL;
	if (s->ops->open_range == NULL)
		return -ENOTSUP;
	return OP_CALL(OS_OP_GET, s->ops->open_range(s, key, off, len, fd));
}

int
os_head(struct os_store *s, const char *key, uint64_t *size)
{
	if (!os_key_valid(key))
		return -EINVAL;
	return OP_CALL(OS_OP_HEAD, s->ops->head(s, key, size));
}

int
os_delete(struct os_store *s, const char *key)
{
	if (!os_key_valid(key))
		return -EINVAL;
	if (s->rdonly)
		return -EROFS;
	return OP_CALL(OS_OP_DEL, s->ops->del(s, key));
}

int
os_list(struct os_store *s, const char *prefix, const char *start_after,
	os_list_cb cb, void *arg)
{
	if (!prefix_valid(prefix))
		return -EINVAL;
	return OP_CALL(OS_OP_LIST, s->ops->list(s, prefix ? prefix : "",
						start_after, cb, arg));
}

int
os_list_info(struct os_store *s, const char *prefix, const char *start_after,
	     os_list_info_cb cb, void *arg)
{
	if (!prefix_valid(prefix))
		return -EINVAL;
	if (s->ops->list_info == NULL)
		return -ENOTSUP;
	return OP_CALL(OS_OP_LIST, s->ops->list_info(s, prefix ? prefix : "",
						     start_after, cb, arg));
}
/* ---- whole-object reads for the transforming wrappers ------------------ */

int
os_get_whole(struct os_store *s, const char *key, size_t hint, uint8_t **data,
	     size_t *len)
{
	size_t cap = hint + 1, got = 0;
	uint8_t *buf = NULL;
	uint64_t size;
	int rc, tries;

	*data = NULL;
	*len = 0;
	for (tries = 0; tries < 3; tries++) {
		buf = tl_realloc(buf, cap);
		rc = s->ops->get(s, key, 0, cap, buf, &got);
		if (rc < 0)
			goto fail;
		if (got < cap) {
			*data = buf;
			*len = got;
			return 0;
		}
		/* bigger than the guess: ask its size, read it exactly */
		rc = s->ops->head(s, key, &size);
		if (rc < 0)
			goto fail;
		if (size >= OS_OBJECT_MAX) {
			tl_err("objstore",
			       "%s: object %s is too large "
			       "(%llu bytes)",
			       s->url, key, (unsigned long long)size);
			rc = -EIO;
			goto fail;
		}
		cap = (size_t)size + 1;
	}
	rc = -EIO; /* the object keeps changing size: not one of ours */
fail:
	free(buf);
	return rc;
}
