/*
 * objstore.h - the object-store interface.
 *
 * Objects are immutable byte strings named by keys ("vol/chunks/0/0/17_0_4096").
 * Backends: file:///dir (crash safe: write to a temporary name, fsync,
 * rename, fsync the directory).  Later: s3://, and stacked wrappers
 * (compression, encryption, rate limit, fault injection) which implement
 * the same operations table around an inner store.
 *
 * All calls are thread safe and blocking; they return 0 or a negative
 * errno: -ENOENT (no such object), -EIO (backend failure), -ENOSPC (store
 * full), -EINVAL (bad key or URL), -ERANGE (range past the end).
 */
#ifndef OBJSTORE_H
#define OBJSTORE_H

#include <stddef.h>
#include <stdint.h>

struct os_store;

/* Called once per listed key, in key order; return non-zero to stop the
 * listing early (os_list then returns that value). key is borrowed for the
 * duration of the call. */
typedef int (*os_list_cb)(void *arg, const char *key, uint64_t size);

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
};

/* Every store starts with this header; backends embed it first. */
struct os_store {
	const struct os_ops *ops;
	char *url; /* for messages; never contains credentials */
};

/* Open a store from a URL ("file:///var/lib/tessera/objects").  On error
 * *err (if non-NULL) receives a message the caller frees. */
int os_open(const char *url, struct os_store **out, char **err);
void os_close(struct os_store *s);

int os_put(struct os_store *s, const char *key, const void *data, size_t len);
int os_get(struct os_store *s, const char *key, uint64_t off, size_t len,
	   void *buf, size_t *got);
int os_head(struct os_store *s, const char *key, uint64_t *size);
int os_delete(struct os_store *s, const char *key);
int os_list(struct os_store *s, const char *prefix, const char *start_after,
	    os_list_cb cb, void *arg);

/* Backend constructors (used by os_open; exposed for tests). */
int os_file_open(const char *dir, struct os_store **out, char **err);

#endif /* OBJSTORE_H */
