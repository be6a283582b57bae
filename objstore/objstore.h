/*
 * objstore.h - the object-store interface.
 *
 * Objects are immutable byte strings named by keys ("vol/chunks/0/0/17_0_4096").
 * Backends: file:///dir (crash safe: write to a temporary name, fsync,
 * rename, fsync the directory; with os_defer_sync both syncs wait for
 * os_sync, see objstore/file.c), s3:// (objstore/s3.c), and stacked
 * wrappers (compression, encryption, rate limit, retry, fault injection)
 * which implement the same operations table around an inner store.
 *
 * All calls are thread safe and blocking; they return 0 or a negative
 * errno: -ENOENT (no such object), -EIO (backend failure), -ENOSPC (store
 * full), -EINVAL (bad key or URL), -ERANGE (range past the end), -EACCES
 * (the store refused the credentials; the cause is logged).
 *
 * URLs (see tessera(1), STORAGE URLS):
 *   file:///dir
 *   s3://BUCKET[/PREFIX][?endpoint=http://HOST:PORT&region=R&style=path]
 *     (all options in objstore/s3.c; credentials never in the URL)
 *   WRAPPER[(K=V,...)]:INNER-URL   a wrapper around any store, stackable:
 *     zstd[(level=N)]         compress each object (zstd)
 *     crypt(key_file=F)       AES-256-GCM, a random data key per object
 *                             wrapped by the 32-byte volume key in F
 *     ratelimit(up=B,down=B)  bytes/s limits (sizes like 10M; 0 = none)
 *     retry(attempts=N,base=D,cap=D)   retry -EIO with backoff + jitter
 *     fault(err=P,latency=D,fail_after=N,failures=N,
 *           ops=put|get|head|del|list|sync,enospc=1,seed=N,ctl=FILE)
 *                             inject failures, for tests (fault.c)
 *   e.g. "zstd:crypt(key_file=/etc/tessera/vol.key):s3://b?endpoint=..."
 *   (compress before encrypting: zstd must be outside crypt).
 *
 * Wrappers that transform the data (zstd, crypt) read the whole object for
 * any range GET and slice it: a stored object is only meaningful whole.
 */
#ifndef OBJSTORE_H
#define OBJSTORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct os_store;
struct os_stats;

/* Called once per listed key, in key order; return non-zero to stop the
 * listing early (os_list then returns that value). key is borrowed for the
 * duration of the call. */
typedef int (*os_list_cb)(void *arg, const char *key, uint64_t size);

/* What os_list_info reports of an object. */
struct os_obj_info {
	uint64_t size;     /* bytes, as os_head reports them */
	uint64_t mtime_ns; /* when the object was stored (objects are
			      immutable), ns since the epoch; 0: unknown */
};
/* As os_list_cb, with the object's details (borrowed for the call). */
typedef int (*os_list_info_cb)(void *arg, const char *key,
			       const struct os_obj_info *info);

/* Operations table: a backend or a wrapper fills one in. */
struct os_ops {
	const char *scheme; /* "file", "s3", ... */
	int (*put)(struct os_store *s, const char *key, const void *data,
		   size_t len);
	/* Read len bytes at off into buf; *got receives the number of bytes
	 * read (short only at the end of the object). */
	int (*get)(struct os_store *s, const char *key, uint64_t off,
		   size_t len, void *buf, size_t *got);
	int (*head)(struct os_store *s, const char *key, uint64_t *size);
	/* Deleting a missing object is not an error (returns 0). */
	int (*del)(struct os_store *s, const char *key);
	/* Keys starting with prefix, strictly after start_after (NULL: from
	 * the beginning), in order. */
	int (*list)(struct os_store *s, const char *prefix,
		    const char *start_after, os_list_cb cb, void *arg);
	void (*close)(struct os_store *s);
	/* Optional (NULL: a put is durable when it returns).  defer_sync:
	 * from now on a put may return before its name is durable, and
	 * sync makes every put that returned before the call durable.
	 * sync_failures: how many syncs failed so far (os_sync_mark).
	 * The first store of a stack with a sync operation answers all
	 * three for the stack (a wrapper with one passes them on itself,
	 * as fault does). */
	int (*defer_sync)(struct os_store *s);
	int (*sync)(struct os_store *s);
	uint64_t (*sync_failures)(struct os_store *s);
	/* Optional (NULL: os_list_info is -ENOTSUP): list as above, with
	 * each object's details. */
	int (*list_info)(struct os_store *s, const char *prefix,
			 const char *start_after, os_list_info_cb cb,
			 void *arg);
	/* Optional (NULL: os_open_range is -ENOTSUP): see os_open_range. */
	int (*open_range)(struct os_store *s, const char *key, uint64_t off,
			  size_t len, int *fd);
	/* Optional (NULL: the layer keeps no figures): fill in the figures
	 * this layer keeps whose bit is not set in out->have yet, and set
	 * the bits (os_stats). */
	void (*stats)(struct os_store *s, struct os_stats *out);
};

/* Every store starts with this header; backends embed it first. */
struct os_store {
	const struct os_ops *ops;
	char *url;   /* for messages; never contains credentials */
	bool rdonly; /* opened OS_OPEN_RDONLY: os_put and os_delete -EROFS */
	/* Objects stored, counted by the bottom store of a stack (file,
	 * s3): the PUTs S3 accepted, the objects renamed into place
	 * (os_stats: puts). */
	atomic_uint_fast64_t puts;
};

/* Open a store from a URL ("file:///var/lib/tessera/objects").  On error
 * *err (if non-NULL) receives a message the caller frees. */
int os_open(const char *url, struct os_store **out, char **err);
/* Flags of os_open_flags. */
#define OS_OPEN_RDONLY                                                         \
	0x1u /* for commands that only read: nothing is
			       created (a missing file:// directory is
			       -ENOENT, create_bucket is ignored) and
			       os_put and os_delete answer -EROFS */
int os_open_flags(const char *url, unsigned flags, struct os_store **out,
		  char **err);
/* The backend at the bottom of a stack of wrappers (s itself when it is
 * not a wrapper).  Borrowed. */
struct os_store *os_bottom(struct os_store *s);
void os_close(struct os_store *s);

int os_put(struct os_store *s, const char *key, const void *data, size_t len);
int os_get(struct os_store *s, const char *key, uint64_t off, size_t len,
	   void *buf, size_t *got);
int os_head(struct os_store *s, const char *key, uint64_t *size);
/* A descriptor open for reading on the file holding object key, which
 * has [off, off+len) in the kernel's page cache (its first and last byte
 * readable without waiting, see file.c): the bytes can go to a
 * socket with sendfile(2) instead of being read, without waiting for
 * the disk (a GET of len bytes, as wrappers count it).  The caller
 * closes it.  -ENOTSUP where objects are not local files (only the file
 * store and the pass-through wrappers have it), -EAGAIN when some of
 * the bytes are not cached (read them with os_get instead), -ENOENT,
 * -EIO when the object is shorter. */
int os_open_range(struct os_store *s, const char *key, uint64_t off, size_t len,
		  int *fd);
int os_delete(struct os_store *s, const char *key);
int os_list(struct os_store *s, const char *prefix, const char *start_after,
	    os_list_cb cb, void *arg);
/* os_list with each object's size and modification time (`tessera gc`
 * keeps objects younger than its grace period).  -ENOTSUP when the store
 * (or a wrapper of the stack) cannot report them. */
int os_list_info(struct os_store *s, const char *prefix,
		 const char *start_after, os_list_info_cb cb, void *arg);
/* Let the store behind s (through wrappers) return from puts before
 * they are durable: 0 when it will, and the caller then calls os_sync
 * before anything depends on a put's durability; -ENOTSUP when puts
 * stay durable on return (nothing to do). */
int os_defer_sync(struct os_store *s);
/* Make every put that returned before this call durable, data and name
 * (0 when puts were never deferred).  Until then a crash may leave a
 * deferred put's key missing or, on power loss, naming an incomplete
 * object: nothing may refer to it before os_sync returns 0.  On error
 * some of those puts may be lost (the file store deletes an object
 * whose data it could not sync); the caller must not rely on them. */
int os_sync(struct os_store *s);
/* A failed os_sync may lose any deferred put that returned before it,
 * whoever made the put, and a later os_sync that succeeds does not bring
 * it back: a caller whose puts were in another caller's failed sync
 * would otherwise refer to lost objects.  So a caller takes a mark
 * before its puts and syncs with os_sync_since, which fails (-EIO) also
 * when any sync of the store failed after the mark was taken; the
 * caller then stores its objects again (under a fresh mark).  A store
 * that never defers counts no failures: os_sync_since is os_sync. */
uint64_t os_sync_mark(struct os_store *s);
int os_sync_since(struct os_store *s, uint64_t mark);

/* What the store's layers count, gathered through the whole stack (for
 * metrics): each figure from the outermost layer that keeps it, and
 * have says which figures some layer keeps (the others are 0). */
#define OS_STATS_TRAFFIC 1u /* up_bytes, down_bytes, throttled_ns */
#define OS_STATS_RETRY   2u /* retries, failures */
#define OS_STATS_PUTS    4u /* puts: always kept */
struct os_stats {
	unsigned have;
	uint64_t puts;                 /* objects the bottom store stored */
	uint64_t up_bytes, down_bytes; /* moved through a ratelimit layer */
	uint64_t throttled_ns;         /* time callers slept for its limits */
	uint64_t retries;              /* extra attempts a retry layer made */
	uint64_t failures;             /* calls failed after its last attempt */
};
/* Fill *out (never fails; returns 0). */
int os_stats(struct os_store *s, struct os_stats *out);
/* The calls made to stores of this process through os_put, os_get (and
 * os_open_range), os_head, os_delete, os_list (and os_list_info) and
 * os_sync (those that reach a store that syncs), by
 * operation: one call is one request as its caller sees it (a retry
 * layer's attempts are inside it; wrappers call the layer below them
 * directly, so a call is counted once).  errors: calls that returned an
 * error other than -ENOENT (an object or prefix that is not there is an
 * answer).  lat[i]: calls that took at most os_op_bucket_s[i] seconds
 * (and more than the bucket before); lat[OS_OP_BUCKETS]: longer ones. */
enum os_op {
	OS_OP_PUT,
	OS_OP_GET,
	OS_OP_HEAD,
	OS_OP_DEL,
	OS_OP_LIST,
	OS_OP_SYNC,
	OS_OP_COUNT
};
#define OS_OP_BUCKETS 14
extern const double os_op_bucket_s[OS_OP_BUCKETS];
struct os_op_stats {
	uint64_t calls, errors, lat_sum_ns;
	uint64_t lat[OS_OP_BUCKETS + 1];
};
void os_op_stats(struct os_op_stats out[OS_OP_COUNT]);
/* "put", "get", "head", "delete", "list", "sync". */
const char *os_op_name(unsigned op);

/* Whether the stack's objects are files on this machine that
 * os_open_range can lend: a file store under nothing but pass-through
 * wrappers (ratelimit, retry), so a range GET costs what it reads. */
bool os_local(struct os_store *s);

/* ---- the volume marker (marker.c) -------------------------------------------
 *
 * A volume's objects are named NAME/...; `tessera format` writes the
 * marker NAME/tessera.volume naming the volume's uuid, so that a second
 * volume of the same name (another metadata engine, or a reformat) is
 * refused instead of overwriting the first one's blocks.  The marker
 * lives in the backend at the bottom of the stack (os_bottom), in plain
 * text, so it is read without the volume's wrappers or key; see
 * marker.c for the format. */
#define OS_MARKER_FILE "tessera.volume"
struct os_marker {
	char name[64];
	uint8_t uuid[16];
	char created[32]; /* "2026-12-07T13:36:41Z" */
	char meta[1024];  /* the metadata URL given at format: for people */
};
void os_marker_init(struct os_marker *mk, const char *name,
		    const uint8_t uuid[16], uint64_t ctime_ns,
		    const char *meta);
/* -ENOENT: no marker for name; -EBADMSG: an object there that is not a
 * marker; other errors of the store. */
int os_marker_read(struct os_store *s, const char *name, struct os_marker *mk);
int os_marker_write(struct os_store *s, const struct os_marker *mk);
int os_marker_delete(struct os_store *s, const char *name);
/* Whether the store holds objects of volume name besides its marker
 * (and probe objects of `tessera format`): 1 and the first key found in
 * *first (caller frees), 0 none, or a negative errno.  Lists at most
 * until the first one. */
int os_volume_objects(struct os_store *s, const char *name, char **first);
/* 8-4-4-4-12 hex. */
void os_uuid_format(const uint8_t u[16], char out[37]);

/* Backend constructors (used by os_open; exposed for tests). */
int os_file_open(const char *dir, struct os_store **out, char **err);
/* Start reading [off, off+len) of key into the page cache without
 * waiting: a hint (s must be the file store itself, see os_unwrap). */
int os_file_advise(struct os_store *s, const char *key, uint64_t off,
		   uint64_t len);
/* Write whole aligned blocks of at least 256 KiB with O_DIRECT (on) or
 * through the page cache (off, the default): see file.c.  -EINVAL when s
 * is not the file store itself (see os_unwrap). */
int os_file_direct(struct os_store *s, bool on);

/* ---- wrappers --------------------------------------------------------------
 * Each takes ownership of inner on success (closing the wrapper closes
 * it); on failure inner is left to the caller. */

/* The store of this scheme ("fault", "s3", ...) in the stack s, s itself
 * included; NULL if none.  Borrowed. */
struct os_store *os_unwrap(struct os_store *s, const char *scheme);

/* Fault injection (calls and injected are indexed by enum os_op); spec as in the URL form ("err=0.1,latency=5ms"),
 * see objstore/fault.c. */
int os_fault_wrap(struct os_store *inner, const char *spec,
		  struct os_store **out, char **err);
/* Replace the fault settings of a fault store at run time; counters are
 * kept, fail_after counts from now.  hold=1 is allowed here without
 * ctl: the selected operations wait until a later call lifts it. */
int os_fault_configure(struct os_store *fault, const char *spec, char **err);
struct os_fault_stats {
	uint64_t calls[OS_OP_COUNT];    /* operations seen */
	uint64_t injected[OS_OP_COUNT]; /* of which failed on purpose */
	uint64_t get_bytes;             /* bytes the GETs returned */
};
int os_fault_stats(struct os_store *fault, struct os_fault_stats *out);

/* Retry -EIO (only: -ENOENT, -EACCES, -ENOSPC... are answers, not
 * accidents) up to attempts tries in all, sleeping a random time up to
 * min(cap, base * 2^n) before retry n.  0 values take the defaults
 * (8 tries, 100 ms, 10 s). */
int os_retry_wrap(struct os_store *inner, unsigned attempts, uint64_t base_ms,
		  uint64_t cap_ms, struct os_store **out);
struct os_retry_stats {
	uint64_t retries;  /* extra attempts made */
	uint64_t failures; /* calls that failed after the last attempt */
};
int os_retry_stats(struct os_store *retry, struct os_retry_stats *out);

/* Token-bucket limits in bytes/s on data uploaded (put) and downloaded
 * (get); 0 = unlimited.  Bursts up to 100 ms worth of the rate. */
int os_ratelimit_wrap(struct os_store *inner, uint64_t up_bps,
		      uint64_t down_bps, struct os_store **out);
int os_ratelimit_set(struct os_store *rl, uint64_t up_bps, uint64_t down_bps);
struct os_ratelimit_stats {
	uint64_t up_bytes, down_bytes; /* moved through the wrapper */
	uint64_t throttled_ns;         /* time callers slept for the limit */
};
int os_ratelimit_stats(struct os_store *rl, struct os_ratelimit_stats *out);

/* zstd per object; level 0 = the zstd default (3). */
int os_zstd_wrap(struct os_store *inner, int level, struct os_store **out);

/* AES-256-GCM per object with a random data key wrapped by key. */
#define OS_CRYPT_KEY_LEN 32
int os_crypt_wrap(struct os_store *inner, const uint8_t *key,
		  struct os_store **out);
/* Read a volume key file: 32 raw bytes, or 64 hex digits and an optional
 * newline.  *err says what is wrong. */
int os_crypt_load_key(const char *path, uint8_t *key, char **err);

#endif /* OBJSTORE_H */
