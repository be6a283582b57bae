/*
 * s3-internal.h - the AWS Signature Version 4 signer and the ListObjectsV2
 * parser of the S3 backend, exposed for unit tests.
 */
#ifndef OBJSTORE_S3_INTERNAL_H
#define OBJSTORE_S3_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/tl.h"

#define S3_EMPTY_SHA256                                                        \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* A header or query parameter. */
struct os_s3_kv {
	const char *name;
	const char *value;
};

struct os_s3_sign_in {
	const char *method;          /* "GET" */
	const char *path;            /* canonical URI: already URI-encoded */
	const char *query;           /* canonical query (os_s3_query) or "" */
	const struct os_s3_kv *hdrs; /* every header to sign, host included */
	size_t nhdrs;
	const char *payload_hash; /* lower-case hex, or "UNSIGNED-PAYLOAD" */
	const char *amz_date;     /* "20130524T000000Z" */
	const char *region;
	const char *service; /* "s3" */
	const char *access_key;
	const char *secret_key;
};

/* The Authorization header value ("AWS4-HMAC-SHA256 Credential=...,
 * SignedHeaders=..., Signature=<64 hex>"); caller frees. */
char *os_s3_sign(const struct os_s3_sign_in *in);

/* Append s URI-encoded the SigV4 way: every byte but A-Z a-z 0-9 - . _ ~
 * becomes %XX (upper-case hex); '/' is kept when keep_slash. */
void os_s3_uri_encode(struct tl_buf *b, const char *s, bool keep_slash);

/* The canonical query string of n parameters: names and values encoded,
 * sorted by name then value, "a=1&b=" (a bare name gets '=').  Also what
 * is sent, so the two cannot differ.  Caller frees. */
char *os_s3_query(const struct os_s3_kv *kv, size_t n);

/* Lower-case hex SHA-256 of data into out[65]. */
void os_s3_sha256_hex(const void *data, size_t len, char out[65]);

/* One page of a ListObjectsV2 reply.  cb gets each key (entities decoded)
 * and size; *truncated and *next (caller frees; NULL when absent) tell
 * whether and how to continue.  -EIO on a reply that does not parse. */
int os_s3_parse_list(const char *xml, size_t len,
		     int (*cb)(void *arg, const char *key, uint64_t size),
		     void *arg, bool *truncated, char **next);

/* os_s3_parse_list with each object's LastModified in ns since the epoch
 * (0 when absent or unreadable). */
int os_s3_parse_list_info(const char *xml, size_t len,
			  int (*cb)(void *arg, const char *key, uint64_t size,
				    uint64_t mtime_ns),
			  void *arg, bool *truncated, char **next);

/* An ISO 8601 time as S3 writes it ("2009-10-12T17:50:30.000Z"; an
 * offset "+02:00" instead of Z is accepted) in ns since the epoch.
 * -EINVAL if it does not parse or is before 1970. */
int os_s3_parse_time(const char *s, uint64_t *ns);

/* Text of the first <tag>...</tag> in xml, entities decoded; NULL if
 * absent.  Caller frees. */
char *os_s3_xml_text(const char *xml, size_t len, const char *tag);

#endif /* OBJSTORE_S3_INTERNAL_H */
