/*
 * objstore-internal.h - pieces shared by the object-store backends and
 * wrappers.
 */
#ifndef OBJSTORE_INTERNAL_H
#define OBJSTORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "objstore/objstore.h"

/* A key is non-empty, relative, has no empty, "." or ".." component and
 * no control characters, so no backend can be led outside its namespace. */
bool os_key_valid(const char *key);

/* Options of a URL: "a=1&b=2" (an s3 query, percent-decoded) or "a=1,b=2"
 * (wrapper parameters, taken literally).  Each get marks the option used,
 * so a misspelt option is reported instead of silently ignored. */
struct os_param {
	char *name;
	char *value; /* "" for a bare name */
	bool used;
};

struct os_params {
	struct os_param *v;
	size_t n;
};

int os_params_parse(const char *s, char sep, bool pct_decode,
		    struct os_params *out, char **err);
const char *os_params_get(struct os_params *p, const char *name);
/* Option value parsers: absent leaves *out alone and returns 0. */
int os_params_u64(struct os_params *p, const char *name, uint64_t min,
		  uint64_t max, uint64_t *out, char **err);
int os_params_bool(struct os_params *p, const char *name, bool *out,
		   char **err);
int os_params_ms(struct os_params *p, const char *name, uint64_t *out,
		 char **err);
/* -EINVAL with a message naming the first unused option. */
int os_params_check_used(const struct os_params *p, const char *what,
			 char **err);
void os_params_free(struct os_params *p);

/* Every wrapper starts with this, so a stack can be walked (os_unwrap). */
struct os_wrap {
	struct os_store base;
	struct os_store *inner; /* owned: closed with the wrapper */
};

bool os_is_wrapper(const struct os_store *s);

/* Sleep for a random time in [0, min(cap, base * 2^attempt)] ms: the "full
 * jitter" backoff, which spreads retries of many clients apart. */
void os_backoff_sleep(unsigned attempt, uint64_t base_ms, uint64_t cap_ms);

/* Largest object the transforming wrappers read whole (blocks are at
 * most 16 MiB). */
#define OS_OBJECT_MAX (1ULL << 30)

/* Read a whole object of the store s (not through os_get: s is a
 * wrapper's inner store) into *data (caller frees), guessing it is at
 * most hint bytes (a wrong guess costs a HEAD and a second GET). */
int os_get_whole(struct os_store *s, const char *key, size_t hint,
		 uint8_t **data, size_t *len);

/* Backend and wrapper constructors behind os_open; err is never NULL.
 * A wrapper takes inner only on success. */
int os_s3_open(const char *url, unsigned flags, struct os_store **out,
	       char **err);
/* os_file_open with OS_OPEN_* flags. */
int os_file_open_flags(const char *dir, unsigned flags, struct os_store **out,
		       char **err);
int os_fault_open(struct os_store *inner, const char *params,
		  struct os_store **out, char **err);
int os_retry_open(struct os_store *inner, const char *params,
		  struct os_store **out, char **err);
int os_ratelimit_open(struct os_store *inner, const char *params,
		      struct os_store **out, char **err);
int os_zstd_open(struct os_store *inner, const char *params,
		 struct os_store **out, char **err);
int os_crypt_open(struct os_store *inner, const char *params,
		  struct os_store **out, char **err);

#endif /* OBJSTORE_INTERNAL_H */
