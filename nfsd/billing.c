/*
 * billing.c - the billing figures (nfsd.h, "billing figures"; the format
 * is documented in tessera(1), BILLING).
 *
 * One thread per gateway.  Every flush period (10 s, or a quarter of
 * the interval if that is shorter) it adds the bytes this gateway's
 * clients read and wrote through each export since its last flush
 * (counters.c, nfsd_m_exports) to the volume's metadata
 * (meta_io_add), so that the counts of every gateway meet there.  At
 * the first wake after a multiple of billing_interval (UTC), if this
 * gateway holds the background-job lease and has a billing_dir (or
 * later, when it takes the lease over after a multiple that got no
 * lines: bill_due), it flushes once more,
 * takes the counts of the period off the metadata in the transaction
 * that records the period's end (meta_billing_take: a period is billed
 * once, even when the lease moves), reads the usage figures and writes
 * the lines: one for the volume, one per export (this gateway's, and
 * any other gateway's that counted bytes), one per directory with a
 * quota.  Directories of billing_dirs without a quota get one with no
 * limits first, so that their usage is kept incrementally (quota.c).
 *
 * The lines go to billing_dir/billing-YYYY-MM-DD.jsonl (the UTC day of
 * the period's end), opened with O_APPEND for each batch and fsynced
 * before it is closed.  The counts are taken before the lines are
 * written, so a crash in between loses that period's NFS bytes rather
 * than billing them twice; a failed write logs the lines instead.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nfsd/counters-internal.h"
#include "nfsd/nfsd.h"

#define BILL_SUB     "billing"
#define FLUSH_MAX_MS 10000
#define FLUSH_MIN_MS 250

enum scope { SC_VOLUME, SC_EXPORT, SC_DIR };
static const char *const scope_names[] = {"volume", "export", "dir"};

/* The figures of a line; NONE: not kept for this scope (null). */
#define NONE UINT64_MAX
enum fig {
	F_LOGICAL,
	F_USED,
	F_STORED,
	F_INODES,
	F_TRASH,
	F_PENDING,
	F_READ,
	F_WRITTEN,
	F_COUNT
};
static const struct {
	const char *json, *help;
} figs[F_COUNT] = {
	{"logical_bytes", "Sizes of the regular files outside the trash "
			  "(of the tree, for exports and directories)."},
	{"used_bytes", "Sizes of the regular files rounded up to 4 KiB each, "
		       "as quotas count them."},
	{"stored_bytes", "Bytes of the slices in the object store, before "
			 "compression (volume)."},
	{"inodes", "Inodes in use."},
	{"trash_bytes", "Sizes of the regular files in the trash (removed "
			"from under the directory, for exports and "
			"directories)."},
	{"pending_bytes", "Bytes waiting for the deletion job (volume)."},
	{"read_bytes", "Bytes read through NFS in the period, all gateways."},
	{"written_bytes", "Bytes written through NFS in the period, all "
			  "gateways."},
};

struct line {
	enum scope scope;
	char *path; /* exports and directories */
	uint64_t f[F_COUNT];
};

struct nfsd_billing {
	struct meta *m;
	char *dir, *dirs;
	uint64_t interval_ms, flush_ms;
	bool (*gate)(void *arg);
	void *gate_arg;
	struct nfsd_server *srv;
	pthread_t thread;
	bool running;
	pthread_mutex_t mu; /* stop, and the lines below */
	pthread_cond_t cv;
	bool stop;
	/* options of a reload, not yet taken by the thread (under mu) */
	bool reconf;
	char *new_dir, *new_dirs;
	uint64_t new_interval_ms;
	/* the last tick whose lines are known to exist (thread only) */
	uint64_t done_tick;
	uint64_t seen_tick; /* the last tick passed at the last wake */
	/* this gateway's counts already added to metadata (thread only) */
	uint64_t flushed_read[NFSD_M_EXPORTS], flushed_written[NFSD_M_EXPORTS];
	/* the last lines, for /metrics */
	struct line *lines;
	size_t nlines;
	uint64_t lines_unix, lines_period;
};

void
nfsd_billing_file_name(uint64_t unix_s, char *buf, size_t len)
{
	time_t t = (time_t)unix_s;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "billing-%Y-%m-%d.jsonl", &tm);
}

static void
lines_free(struct line *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

static struct line *
line_add(struct line **v, size_t *n, enum scope sc, const char *path)
{
	struct line *l;

	*v = tl_realloc(*v, (*n + 1) * sizeof(**v));
	l = &(*v)[(*n)++];
	l->scope = sc;
	l->path = path ? tl_strdup(path) : NULL;
	for (int i = 0; i < F_COUNT; i++)
		l->f[i] = NONE;
	return l;
}

/* ---- this gateway's counts into metadata -------------------------------- */

static void
flush(struct nfsd_billing *b)
{
	size_t n, k = 0;
	const struct nfsd_m_export *e = nfsd_m_exports(&n);
	struct meta_io *v;
	uint64_t rd[NFSD_M_EXPORTS], wr[NFSD_M_EXPORTS];
	int rc;

	if (n == 0)
		return;
	v = tl_calloc(n, sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		rd[i] = atomic_load_explicit(&e[i].read, memory_order_relaxed);
		wr[i] = atomic_load_explicit(&e[i].written,
					     memory_order_relaxed);
		if (rd[i] == b->flushed_read[i] &&
		    wr[i] == b->flushed_written[i])
			continue;
		snprintf(v[k].path, sizeof(v[k].path), "%s", e[i].path);
		v[k].read = rd[i] - b->flushed_read[i];
		v[k++].written = wr[i] - b->flushed_written[i];
	}
	rc = k ? meta_io_add(b->m, v, k) : 0;
	if (rc == 0) {
		memcpy(b->flushed_read, rd, n * sizeof(rd[0]));
		memcpy(b->flushed_written, wr, n * sizeof(wr[0]));
	} else {
		tl_warn(BILL_SUB,
			"cannot add this gateway's NFS byte counts "
			"to the metadata (kept for the next try): %s",
			strerror(-rc));
	}
	free(v);
}

/* ---- the lines ------------------------------------------------------------ */

/* A quota's figures; stored and pending bytes are the volume's only
 * (tessera(1), BILLING). */
static void
quota_figures(const struct meta_quota *q, struct line *l)
{
	l->f[F_USED] = q->used_bytes;
	l->f[F_INODES] = q->used_inodes;
	if (q->has_figures) {
		l->f[F_LOGICAL] = q->logical_bytes;
		l->f[F_TRASH] = q->trash_bytes;
	}
}

/* The usage of the tree below path: its quota's figures, or the
 * volume's for "/".  Nothing when neither is kept. */
static void
tree_figures(struct nfsd_billing *b, const char *path,
	     const struct meta_usage *u, struct line *l)
{
	struct meta_quota q;
	uint64_t ino;

	if (strcmp(path, "/") == 0) {
		l->f[F_LOGICAL] = u->logical_bytes;
		l->f[F_USED] = u->used_bytes;
		l->f[F_STORED] = u->stored_bytes;
		l->f[F_INODES] = u->used_inodes;
		l->f[F_TRASH] = u->trash_bytes;
		l->f[F_PENDING] = u->pending_bytes;
		return;
	}
	if (meta_resolve(b->m, path, &ino) == 0 &&
	    meta_quota_get(b->m, ino, &q) == 0)
		quota_figures(&q, l);
}

/* Directories of billing_dirs without a quota get one without limits. */
static void
track_dirs(struct nfsd_billing *b)
{
	char *list, *save = NULL;

	if (b->dirs == NULL || b->dirs[0] == '\0')
		return;
	list = tl_strdup(b->dirs);
	for (char *p = strtok_r(list, ":", &save); p != NULL;
	     p = strtok_r(NULL, ":", &save)) {
		struct meta_quota q, out;
		uint64_t ino;
		int rc;

		rc = meta_resolve(b->m, p, &ino);
		if (rc == 0)
			rc = meta_quota_get(b->m, ino, &q);
		if (rc == -ENOENT && meta_resolve(b->m, p, &ino) == 0) {
			memset(&q, 0, sizeof(q));
			q.ino = ino;
			rc = meta_quota_set(b->m, &q, NULL, NULL, &out);
			if (rc == 0)
				tl_notice(BILL_SUB,
					  "billing_dirs: %s gets a "
					  "quota without limits, so that its "
					  "usage is kept",
					  p);
		}
		if (rc != 0)
			tl_warn(BILL_SUB, "billing_dirs: %s: %s", p,
				rc == -ENOENT ? "no such directory"
					      : strerror(-rc));
	}
	free(list);
}

struct dir_ctx {
	struct nfsd_billing *b;
	struct line **v;
	size_t *n;
};

static int
quota_cb(void *arg, const struct meta_quota *q)
{
	struct dir_ctx *d = arg;
	char path[4096];
	struct line *l;

	if (meta_path(d->b->m, q->ino, path, sizeof(path)) != 0)
		return 0; /* going, or out of reach: no line */
	l = line_add(d->v, d->n, SC_DIR, path);
	quota_figures(q, l);
	return 0;
}

static int
cmp_path(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
json_str(struct tl_buf *o, const char *s)
{
	tl_buf_append(o, "\"", 1);
	for (; *s; s++) {
		char esc[8];
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			tl_buf_append(o, esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			tl_buf_append(o, esc, 6);
		} else {
			tl_buf_append(o, s, 1);
		}
	}
	tl_buf_append(o, "\"", 1);
}

static void
json_line(struct tl_buf *o, const char *volume, uint64_t unix_s,
	  uint64_t period, const struct line *l)
{
	char buf[128], when[32];
	time_t t = (time_t)unix_s;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(buf, sizeof(buf),
		 "{\"time\":\"%s\",\"unix\":%" PRIu64
		 ",\"period_seconds\":%" PRIu64 ",\"volume\":",
		 when, unix_s, period);
	tl_buf_append(o, buf, strlen(buf));
	json_str(o, volume);
	snprintf(buf, sizeof(buf),
		 ",\"scope\":\"%s\",\"path\":", scope_names[l->scope]);
	tl_buf_append(o, buf, strlen(buf));
	if (l->path)
		json_str(o, l->path);
	else
		tl_buf_append(o, "null", 4);
	for (int i = 0; i < F_COUNT; i++) {
		if (l->f[i] == NONE)
			snprintf(buf, sizeof(buf), ",\"%s\":null",
				 figs[i].json);
		else
			snprintf(buf, sizeof(buf), ",\"%s\":%" PRIu64,
				 figs[i].json, l->f[i]);
		tl_buf_append(o, buf, strlen(buf));
	}
	tl_buf_append(o, "}\n", 2);
}

/* Append text to the day's file and sync it. */
static int
write_lines(const char *dir, uint64_t unix_s, const struct tl_buf *text)
{
	char name[64], *path;
	size_t off = 0;
	int fd, rc = 0;

	nfsd_billing_file_name(unix_s, name, sizeof(name));
	path = tl_asprintf("%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0)
		rc = -errno;
	while (rc == 0 && off < text->len) {
		ssize_t w = write(fd, text->data + off, text->len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			rc = -errno;
		else
			off += (size_t)w;
	}
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (fd >= 0 && close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc != 0)
		tl_err(BILL_SUB, "%s: %s", path, strerror(-rc));
	free(path);
	return rc;
}

/* The lines of the period ending at tick_ns: 0 when they were written
 * (or logged when the file could not be), or when another gateway wrote
 * them (-EALREADY from meta_billing_take); -errno when the figures
 * could not be read (tried again at the next wake). */
static int
bill(struct nfsd_billing *b, uint64_t tick_ns)
{
	const char *volume = meta_settings(b->m)->name;
	struct line *v = NULL;
	size_t n = 0, nio = 0, nexp = 0;
	struct meta_io *io = NULL;
	struct dir_ctx dc = {b, &v, &n};
	struct tl_buf text = TL_BUF_INIT;
	char **paths = NULL;
	struct meta_usage u;
	uint64_t last = 0, rd = 0, wr = 0, unix_s = tick_ns / 1000000000ULL;
	uint64_t period;
	struct line *vl;
	int rc;

	flush(b);
	track_dirs(b);
	rc = meta_billing_take(b->m, tick_ns, &io, &nio, &last);
	if (rc == -EALREADY)
		return 0;
	if (rc == 0)
		rc = meta_usage(b->m, &u);
	if (rc != 0) {
		tl_err(BILL_SUB, "no billing lines at %" PRIu64 ": %s", unix_s,
		       strerror(-rc));
		free(io);
		return rc;
	}
	/* the first lines of a volume cover one interval */
	period = (last != 0 && last < tick_ns ? tick_ns - last
					      : b->interval_ms * 1000000ULL) /
		 1000000000ULL;
	vl = line_add(&v, &n, SC_VOLUME, NULL);
	tree_figures(b, "/", &u, vl);
	/* exports: this gateway's, and any path another gateway counted */
	if (b->srv != NULL)
		paths = nfsd_server_export_paths(b->srv, &nexp);
	paths = tl_realloc(paths, (nexp + nio + 1) * sizeof(*paths));
	for (size_t i = 0; i < nio; i++)
		paths[nexp++] = tl_strdup(io[i].path);
	qsort(paths, nexp, sizeof(*paths), cmp_path);
	for (size_t i = 0; i < nexp; i++) {
		struct line *l;

		if (i > 0 && strcmp(paths[i], paths[i - 1]) == 0)
			continue;
		l = line_add(&v, &n, SC_EXPORT, paths[i]);
		tree_figures(b, paths[i], &u, l);
		l->f[F_READ] = l->f[F_WRITTEN] = 0;
		for (size_t j = 0; j < nio; j++)
			if (strcmp(io[j].path, paths[i]) == 0) {
				l->f[F_READ] += io[j].read;
				l->f[F_WRITTEN] += io[j].written;
			}
	}
	for (size_t j = 0; j < nio; j++) {
		rd += io[j].read;
		wr += io[j].written;
	}
	v[0].f[F_READ] = rd; /* v may have moved: not vl */
	v[0].f[F_WRITTEN] = wr;
	if (meta_quota_list(b->m, quota_cb, &dc) != 0)
		tl_warn(BILL_SUB, "cannot list the quotas: no directory lines");
	for (size_t i = 0; i < n; i++)
		json_line(&text, volume, unix_s, period, &v[i]);
	if (write_lines(b->dir, unix_s, &text) != 0)
		tl_err(BILL_SUB, "the lines not written: %.*s", (int)text.len,
		       (const char *)text.data);
	pthread_mutex_lock(&b->mu);
	lines_free(b->lines, b->nlines);
	b->lines = v;
	b->nlines = n;
	b->lines_unix = unix_s;
	b->lines_period = period;
	pthread_mutex_unlock(&b->mu);
	for (size_t i = 0; i < nexp; i++)
		free(paths[i]);
	free(paths);
	free(io);
	tl_buf_free(&text);
	return 0;
}

/* The last multiple of the interval at or before now (ns since the
 * epoch). */
static uint64_t
last_tick(uint64_t iv_ms, uint64_t now)
{
	uint64_t iv = iv_ms * 1000000ULL;

	return now / iv * iv;
}

/* At each wake: the lines of the last tick passed, if this gateway
 * holds the lease and no line of that tick is known to exist.  A
 * gateway that takes the lease over after a tick nobody billed (the
 * holder was killed a moment before it) writes that tick's lines late;
 * meta_billing_take answers -EALREADY when another gateway wrote them. */
static void
bill_due(struct nfsd_billing *b, uint64_t now)
{
	uint64_t tick = last_tick(b->interval_ms, now), seen = b->seen_tick;

	b->seen_tick = tick;
	if (tick <= b->done_tick || b->dir == NULL ||
	    (b->gate != NULL && !b->gate(b->gate_arg)))
		return;
	/* the tick had passed at the last wake: not the holder then */
	if (tick <= seen)
		tl_notice(BILL_SUB,
			  "the lines of the period ending at unix "
			  "time %" PRIu64 " are due since then: this gateway "
			  "writes them late if no other did (it did not hold "
			  "the background-job lease at that time)",
			  (uint64_t)(tick / 1000000000ULL));
	if (bill(b, tick) == 0)
		b->done_tick = tick;
}

static char *
opt_str(const char *s)
{
	return s != NULL && s[0] != '\0' ? tl_strdup(s) : NULL;
}

static bool
str_differ(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") != 0;
}

static void
set_interval(struct nfsd_billing *b, uint64_t interval_ms)
{
	b->interval_ms = interval_ms ? interval_ms : 3600000;
	b->flush_ms =
		TL_MAX(TL_MIN(FLUSH_MAX_MS, b->interval_ms / 4), FLUSH_MIN_MS);
}

/* The options of a reload (nfsd_billing_set), in the thread, under
 * b->mu.  A new interval starts at the next multiple of it: its first
 * lines reach back to the last ones. */
static void
take_options(struct nfsd_billing *b)
{
	uint64_t now = tl_now_ns();

	b->reconf = false;
	if (str_differ(b->dir, b->new_dir))
		tl_notice(BILL_SUB, "reload: billing lines %s%s%s",
			  b->new_dir ? "into "
				     : "no longer written "
				       "(billing_dir is empty)",
			  b->new_dir ? b->new_dir : "",
			  b->new_dir ? " (while this gateway holds the "
				       "background-job lease)"
				     : "");
	free(b->dir);
	b->dir = b->new_dir;
	b->new_dir = NULL;
	if (str_differ(b->dirs, b->new_dirs))
		tl_notice(BILL_SUB, "reload: billing_dirs %s",
			  b->new_dirs ? b->new_dirs : "empty");
	free(b->dirs);
	b->dirs = b->new_dirs;
	b->new_dirs = NULL;
	if (b->new_interval_ms != b->interval_ms) {
		tl_notice(BILL_SUB,
			  "reload: billing lines every %" PRIu64
			  " s (were every %" PRIu64 " s)",
			  b->new_interval_ms / 1000, b->interval_ms / 1000);
		set_interval(b, b->new_interval_ms);
		b->done_tick =
			TL_MAX(b->done_tick, last_tick(b->interval_ms, now));
		b->seen_tick = last_tick(b->interval_ms, now);
	}
}

void
nfsd_billing_set(struct nfsd_billing *b, const struct nfsd_billing_opts *o)
{
	pthread_mutex_lock(&b->mu);
	free(b->new_dir);
	free(b->new_dirs);
	b->new_dir = opt_str(o->dir);
	b->new_dirs = opt_str(o->dirs);
	b->new_interval_ms = o->interval_ms ? o->interval_ms : 3600000;
	b->reconf = true;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

static void *
billing_main(void *arg)
{
	struct nfsd_billing *b = arg;
	struct timespec ts;

	pthread_mutex_lock(&b->mu);
	while (!b->stop) {
		uint64_t now = tl_now_ns(), wait_ms = b->flush_ms;
		uint64_t tick = last_tick(b->interval_ms, now) +
				b->interval_ms * 1000000ULL;

		wait_ms = TL_MIN(wait_ms, (tick - now) / 1000000 + 1);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(wait_ms / 1000);
		ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!b->stop && !b->reconf &&
		       pthread_cond_timedwait(&b->cv, &b->mu, &ts) == 0)
			;
		if (b->stop)
			break;
		if (b->reconf)
			take_options(b);
		pthread_mutex_unlock(&b->mu);
		bill_due(b, tl_now_ns());
		flush(b);
		pthread_mutex_lock(&b->mu);
	}
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

/* A volume never billed has its first lines at the first tick after
 * this start, not at the tick before it; otherwise a tick passed while
 * no gateway held the lease gets its lines at the first wake. */
static uint64_t
first_done(struct meta *m, uint64_t iv_ms)
{
	struct meta_io *io = NULL;
	uint64_t last = 0;
	size_t n;

	if (meta_io_list(m, &io, &n, &last) != 0)
		last = 0;
	free(io);
	return last == 0 ? last_tick(iv_ms, tl_now_ns()) : 0;
}

int
nfsd_billing_start(struct meta *m, const struct nfsd_billing_opts *o,
		   struct nfsd_billing **out)
{
	struct nfsd_billing *b = tl_calloc(1, sizeof(*b));
	pthread_condattr_t ca;
	int rc;

	b->m = m;
	b->dir = opt_str(o->dir);
	b->dirs = opt_str(o->dirs);
	set_interval(b, o->interval_ms);
	b->gate = o->gate;
	b->gate_arg = o->gate_arg;
	b->srv = o->srv;
	b->done_tick = first_done(m, b->interval_ms);
	b->seen_tick = last_tick(b->interval_ms, tl_now_ns());
	pthread_mutex_init(&b->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->cv, &ca);
	pthread_condattr_destroy(&ca);
	rc = -pthread_create(&b->thread, NULL, billing_main, b);
	b->running = rc == 0;
	if (rc != 0) {
		nfsd_billing_stop(b);
		return rc;
	}
	if (b->dir != NULL)
		tl_notice(BILL_SUB,
			  "billing lines every %" PRIu64 " s into "
			  "%s (while this gateway holds the background-job "
			  "lease)",
			  b->interval_ms / 1000, b->dir);
	*out = b;
	return 0;
}

void
nfsd_billing_stop(struct nfsd_billing *b)
{
	if (b == NULL)
		return;
	if (b->running) {
		pthread_mutex_lock(&b->mu);
		b->stop = true;
		pthread_cond_signal(&b->cv);
		pthread_mutex_unlock(&b->mu);
		pthread_join(b->thread, NULL);
		flush(b); /* what the clients moved since the last flush */
	}
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	lines_free(b->lines, b->nlines);
	free(b->dir);
	free(b->dirs);
	free(b->new_dir);
	free(b->new_dirs);
	free(b);
}

/* ---- /metrics ------------------------------------------------------------- */

static void
label_str(struct tl_buf *o, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			tl_buf_append(o, "\\", 1);
		if (*s == '\n')
			tl_buf_append(o, "\\n", 2);
		else
			tl_buf_append(o, s, 1);
	}
}

static void
text(struct tl_buf *o, const char *s)
{
	tl_buf_append(o, s, strlen(s));
}

void
nfsd_billing_metrics(struct nfsd_billing *b, struct tl_buf *o)
{
	const char *volume = meta_settings(b->m)->name;
	size_t n;
	const struct nfsd_m_export *e = nfsd_m_exports(&n);
	char buf[400];

	if (n > 0) {
		static const char *const nm[2] = {
			"tessera_export_read_bytes_total",
			"tessera_export_written_bytes_total"};

		for (int k = 0; k < 2; k++) {
			snprintf(buf, sizeof(buf),
				 "# HELP %s Bytes %s "
				 "through NFS by this gateway, per export.\n"
				 "# TYPE %s counter\n",
				 nm[k], k ? "written" : "read", nm[k]);
			text(o, buf);
			for (size_t i = 0; i < n; i++) {
				text(o, nm[k]);
				text(o, "{export=\"");
				label_str(o, e[i].path);
				snprintf(buf, sizeof(buf), "\"} %" PRIu64 "\n",
					 atomic_load_explicit(
						 k ? &e[i].written : &e[i].read,
						 memory_order_relaxed));
				text(o, buf);
			}
		}
	}
	pthread_mutex_lock(&b->mu);
	if (b->nlines == 0) {
		pthread_mutex_unlock(&b->mu);
		return;
	}
	snprintf(buf, sizeof(buf),
		 "# HELP tessera_billing_time_seconds End "
		 "of the period of the last billing lines (unix time).\n"
		 "# TYPE tessera_billing_time_seconds gauge\n"
		 "tessera_billing_time_seconds{volume=\"%s\"} %" PRIu64 "\n",
		 volume, b->lines_unix);
	text(o, buf);
	for (int f = 0; f < F_COUNT; f++) {
		snprintf(buf, sizeof(buf), "# HELP tessera_billing_%s ",
			 figs[f].json);
		text(o, buf);
		text(o, figs[f].help);
		snprintf(buf, sizeof(buf),
			 "\n# TYPE tessera_billing_%s gauge\n", figs[f].json);
		text(o, buf);
		for (size_t i = 0; i < b->nlines; i++) {
			const struct line *l = &b->lines[i];

			if (l->f[f] == NONE)
				continue;
			snprintf(buf, sizeof(buf),
				 "tessera_billing_%s{volume=\"%s\"",
				 figs[f].json, volume);
			text(o, buf);
			if (l->scope != SC_VOLUME) {
				text(o, l->scope == SC_EXPORT ? ",export=\""
							      : ",dir=\"");
				label_str(o, l->path);
				text(o, "\"");
			}
			snprintf(buf, sizeof(buf), "} %" PRIu64 "\n", l->f[f]);
			text(o, buf);
		}
	}
	pthread_mutex_unlock(&b->mu);
}
