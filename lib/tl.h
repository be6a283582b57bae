/*
 * tl.h - small shared pieces of Tessera: error codes, logging,
 * allocation (huge-page buffers too), time, randomness, big-endian
 * codecs, growable buffers, an intrusive hash table, a thread pool, the
 * configuration-table parser and the service manager's notifications
 * (sd_notify).
 *
 * What lives here is either used by two or more modules, or is the
 * process's plumbing rather than any module's business (the logger's
 * settings and sd_notify, which only tesserad's main calls; huge-page
 * mappings, which only cache/bufpool.c asks for); lib/ includes no
 * other module.  Every function either cannot fail (allocation aborts
 * on out-of-memory, like Redis' zmalloc) or returns 0 / a negative
 * errno.
 */
#ifndef TL_H
#define TL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#define TL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define TL_MIN(a, b)     ((a) < (b) ? (a) : (b))
#define TL_MAX(a, b)     ((a) > (b) ? (a) : (b))
/* The struct of type holding member at ptr. */
#define TL_CONTAINER_OF(ptr, type, member)                                     \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ---- error codes -----------------------------------------------------------
 *
 * Calls return 0 or a negative error: an errno value (-ENOENT, -EIO), or,
 * where no errno says it, one of Tessera's own codes below, returned
 * negated the same way.  They lie in one reserved range, far above every
 * errno value, so no errno is ever mistaken for one.  nfsd's
 * nfsd_errno_to_nfs3 is the one place that translates them all.
 */
#define TL_ERR_BASE  10000
#define TL_ENOTSYNC  (TL_ERR_BASE + 1) /* a guard's ctime does not match */
#define TL_ETOOSMALL (TL_ERR_BASE + 2) /* room for not one entry */

/* ---- logging ------------------------------------------------------------ */

enum tl_log_level {
	TL_LOG_ERR = 0,
	TL_LOG_WARN,
	TL_LOG_NOTICE,
	TL_LOG_INFO,
	TL_LOG_DEBUG,
};

/* Configure the logger.  Until called: level NOTICE, stderr.  With
 * use_syslog lines go to syslog (facility daemon) from now on; without,
 * to stderr, or to the file of tl_log_open_file if one is open. */
void tl_log_init(enum tl_log_level level, bool use_syslog, const char *ident);
/* Send lines to the file path (appended, created 0640) instead of stderr
 * or syslog; 0 or a negative errno (*err says why, caller frees). */
int tl_log_open_file(const char *path, char **err);
/* Open the log file again by its path (after logrotate moved it): lines
 * written meanwhile go to the old file or the new one, none is lost.
 * 0 when no file is in use. */
int tl_log_reopen(void);
/* Whether a syslog daemon listens on /dev/log: without one, syslog(3)
 * drops every line. */
bool tl_log_syslog_available(void);
/* Where lines go: "standard error", "syslog" or the file's path. */
const char *tl_log_where(void);
/* While on and lines go to a file, also write them to stderr (a daemon
 * starting: its errors must reach the terminal). */
void tl_log_tee_stderr(bool on);
void tl_log_set_level(enum tl_log_level level);
enum tl_log_level tl_log_get_level(void);
/* Parse "err", "warn", "notice", "info", "debug"; -EINVAL if unknown. */
int tl_log_parse_level(const char *s, enum tl_log_level *out);

/* One log line: "<time> <level> <subsys>: <message>".  Thread safe. */
void tl_log(enum tl_log_level level, const char *subsys, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void tl_vlog(enum tl_log_level level, const char *subsys, const char *fmt,
	     va_list ap) __attribute__((format(printf, 3, 0)));

/* True when a message at this level would be printed (skip expensive
 * formatting on the hot path). */
bool tl_log_enabled(enum tl_log_level level);

#define tl_err(sub, ...)    tl_log(TL_LOG_ERR, sub, __VA_ARGS__)
#define tl_warn(sub, ...)   tl_log(TL_LOG_WARN, sub, __VA_ARGS__)
#define tl_notice(sub, ...) tl_log(TL_LOG_NOTICE, sub, __VA_ARGS__)
#define tl_info(sub, ...)   tl_log(TL_LOG_INFO, sub, __VA_ARGS__)
#define tl_debug(sub, ...)                                                     \
	do {                                                                   \
		if (tl_log_enabled(TL_LOG_DEBUG))                              \
			tl_log(TL_LOG_DEBUG, sub, __VA_ARGS__);                \
	} while (0)

/* ---- allocation: never returns NULL, aborts on out-of-memory ------------ */

void *tl_malloc(size_t n);
void *tl_calloc(size_t nmemb, size_t size);
void *tl_realloc(void *p, size_t n);
/* len bytes (rounded up to whole pages) of zeroed anonymous memory on a
 * 2 MiB boundary, transparent huge pages asked for: a big buffer that
 * is faulted in two pages at a time instead of one per 4 KiB.  Aborts
 * when out of memory.  Free with tl_unmap_huge(p, len). */
void *tl_map_huge(size_t len);
void tl_unmap_huge(void *p, size_t len);
char *tl_strdup(const char *s);
char *tl_strndup(const char *s, size_t n);
void *tl_memdup(const void *p, size_t n);
/* printf into a freshly allocated string; caller frees. */
char *tl_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *tl_vasprintf(const char *fmt, va_list ap)
	__attribute__((format(printf, 1, 0)));

/* ---- time --------------------------------------------------------------- */

uint64_t tl_now_ns(void);  /* CLOCK_REALTIME, nanoseconds since the epoch */
uint64_t tl_mono_ns(void); /* CLOCK_MONOTONIC, nanoseconds */
/* The time of clock clk ms from now, for pthread_cond_timedwait. */
void tl_deadline_ms(clockid_t clk, uint64_t ms, struct timespec *ts);

/* ---- whole reads and writes --------------------------------------------- */

/* Read (TL_IO_READ), write (TL_IO_WRITE) or send on a socket without
 * SIGPIPE (TL_IO_SEND) all n bytes at p, again after EINTR: 0, or
 * -ECONNRESET when the other end closed before n bytes, or -errno. */
enum { TL_IO_READ, TL_IO_WRITE, TL_IO_SEND };
int tl_io_full(int fd, void *p, size_t n, int how);
/* fsync(2) the directory path (relative to dirfd, or AT_FDCWD): a new
 * or removed name in it is durable after.  0 or -errno. */
int tl_fsync_dir_at(int dirfd, const char *path);

/* ---- randomness --------------------------------------------------------- */

/* Fill buf with cryptographically strong random bytes (getrandom(2)). */
void tl_random_bytes(void *buf, size_t n);
uint64_t tl_random_u64(void);

/* ---- big-endian codecs (keys sort in numeric order) ---------------------- */

static inline void
tl_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static inline void
tl_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static inline void
tl_put_be64(uint8_t *p, uint64_t v)
{
	tl_put_be32(p, v >> 32);
	tl_put_be32(p + 4, (uint32_t)v);
}

static inline uint16_t
tl_get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
tl_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t
tl_get_be64(const uint8_t *p)
{
	return (uint64_t)tl_get_be32(p) << 32 | tl_get_be32(p + 4);
}

/* ---- growable byte buffer ------------------------------------------------ */

struct tl_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

#define TL_BUF_INIT                                                            \
	{                                                                      \
		NULL, 0, 0                                                     \
	}

void tl_buf_reserve(struct tl_buf *b, size_t extra);
void tl_buf_append(struct tl_buf *b, const void *p, size_t n);
void tl_buf_append_be32(struct tl_buf *b, uint32_t v);
void tl_buf_append_be64(struct tl_buf *b, uint64_t v);
/* Append printf-formatted text (no terminating NUL counted in len). */
void tl_buf_printf(struct tl_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void tl_buf_vprintf(struct tl_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
void tl_buf_reset(struct tl_buf *b); /* len = 0, keeps memory */
void tl_buf_free(struct tl_buf *b);

/* ---- thread pool --------------------------------------------------------- */

struct tl_pool;
typedef void (*tl_pool_fn)(void *arg);

/* Start nthreads workers; a submit blocks while queue_max jobs wait
 * (back-pressure), queue_max 0 means unbounded.  name is used in logs and
 * thread names. */
struct tl_pool *tl_pool_create(const char *name, unsigned nthreads,
			       unsigned queue_max);
void tl_pool_submit(struct tl_pool *p, tl_pool_fn fn, void *arg);
/* Wait for queued jobs to finish, stop the threads and free the pool. */
void tl_pool_destroy(struct tl_pool *p);

/* ---- parsing helpers ----------------------------------------------------- */

/* "4M", "64k", "1G", "123" (powers of 1024; suffix case-insensitive,
 * optional trailing "iB"/"B").  -EINVAL on garbage, -ERANGE on overflow. */
int tl_parse_size(const char *s, uint64_t *out);
/* Decimal unsigned integer within [min, max]. */
int tl_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* "30s", "5m", "2h", "1d", "250ms", plain seconds.  Result in ms. */
int tl_parse_duration_ms(const char *s, uint64_t *out);
/* yes/no/true/false/on/off/1/0 */
int tl_parse_bool(const char *s, bool *out);
/* Human readable size into buf ("1.5 GiB"). Returns buf. */
char *tl_fmt_size(uint64_t v, char *buf, size_t len);

/* ---- configuration table -------------------------------------------------
 *
 * Configuration is declared once as a table of options (name, type,
 * default, bounds, reloadable, help).  The same table parses tessera.conf
 * ("name = value" lines, '#' comments), feeds --help and is checked
 * against the man page by a test.
 */

enum tl_conf_type {
	TL_CONF_BOOL,
	TL_CONF_U64,      /* plain integer */
	TL_CONF_SIZE,     /* integer with K/M/G suffixes */
	TL_CONF_DURATION, /* milliseconds, with s/m/h/d suffixes */
	TL_CONF_STRING,
};

struct tl_conf_opt {
	const char *name;
	enum tl_conf_type type;
	const char *def; /* default as text, parsed like a file value */
	uint64_t min, max;
	bool reloadable;
	const char *help;
	size_t offset; /* offset of the field in the settings struct: bool,
			  uint64_t or char* (owned, freed by tl_conf_free) */
};

/* Set every option to its default. */
void tl_conf_defaults(const struct tl_conf_opt *opts, size_t n, void *dst);
/* Set one option from text; -ENOENT unknown name, -EINVAL/-ERANGE bad
 * value.  err (may be NULL) receives a message; caller frees. */
int tl_conf_set(const struct tl_conf_opt *opts, size_t n, void *dst,
		const char *name, const char *value, char **err);
/* Parse a file.  Errors name the file and line. */
int tl_conf_load(const struct tl_conf_opt *opts, size_t n, void *dst,
		 const char *path, char **err);
/* Free strings the table owns. */
void tl_conf_free(const struct tl_conf_opt *opts, size_t n, void *dst);

/* ---- intrusive hash table -------------------------------------------------
 *
 * The one hash table of the project: a struct to be found embeds a
 * struct tl_hnode, and the caller hashes the key and compares it (the
 * table knows only the 64-bit hash, kept in the node so growing never
 * calls back).  Chained; the bucket array doubles when the table holds
 * more nodes than buckets, and never shrinks.  No locking: the owner's
 * lock covers the table and every node in it.  Any hash will do (an
 * inode number, a counter): buckets are chosen from the high bits of
 * hash * 2^64/phi.
 *
 *	TL_HTAB_FOREACH_HASH(&t, n, h)
 *		if (TL_CONTAINER_OF(n, struct x, hn)->key == key)
 *			return ...;
 */

struct tl_hnode {
	struct tl_hnode *next;
	uint64_t hash;
};

struct tl_htab {
	struct tl_hnode **b;
	unsigned shift; /* 64 - log2(buckets) */
	size_t n;       /* nodes in the table */
};

/* An empty table sized for about hint nodes (it grows past them).  A
 * zeroed struct tl_htab is an empty table too, of the smallest size. */
void tl_htab_init(struct tl_htab *t, size_t hint);
/* Free the bucket array; the nodes are the caller's (empty it first or
 * walk it with tl_htab_first/tl_htab_next and free them). */
void tl_htab_fini(struct tl_htab *t);
/* Add n under hash; n must not be in a table.  Keys are not checked:
 * find first when a key may be there already. */
void tl_htab_add(struct tl_htab *t, struct tl_hnode *n, uint64_t hash);
/* Take n, which is in t, out of it. */
void tl_htab_del(struct tl_htab *t, struct tl_hnode *n);
/* The nodes added under hash, in no order: tl_htab_find gives the first
 * (NULL: none), tl_htab_find_next the next one with the same hash. */
struct tl_hnode *tl_htab_find(const struct tl_htab *t, uint64_t hash);
struct tl_hnode *tl_htab_find_next(const struct tl_hnode *n);
/* Every node, in no particular order: tl_htab_first, then
 * tl_htab_next(t, n) until NULL.  The node just returned may be deleted
 * once its successor was taken; nothing may be added meanwhile. */
struct tl_hnode *tl_htab_first(const struct tl_htab *t);
struct tl_hnode *tl_htab_next(const struct tl_htab *t,
			      const struct tl_hnode *n);

#define TL_HTAB_FOREACH_HASH(t, n, h)                                          \
	for ((n) = tl_htab_find((t), (h)); (n) != NULL;                        \
	     (n) = tl_htab_find_next(n))
#define TL_HTAB_FOREACH(t, n)                                                  \
	for ((n) = tl_htab_first(t); (n) != NULL; (n) = tl_htab_next((t), (n)))

/* ---- service manager notification (sd_notify(3) protocol) --------------- */

/* True when a service manager waits for notifications ($NOTIFY_SOCKET). */
bool tl_sd_managed(void);
/* Send STATE ("READY=1", "STATUS=...\nREADY=1", ...) to $NOTIFY_SOCKET.
 * 1 when sent, 0 when there is no service manager, or a negative errno. */
int tl_sd_notify(const char *state);
/* "RELOADING=1" with the MONOTONIC_USEC newer systemd versions want. */
int tl_sd_notify_reloading(void);

#endif /* TL_H */
