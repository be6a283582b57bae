/*
 * s3.c - the s3:// object store (AWS S3 and compatible servers such as
 * Ceph radosgw and MinIO), over libcurl with SigV4 signing.
 *
 * URL: s3://BUCKET[/PREFIX][?OPTION=VALUE&...]; options:
 *   endpoint=http[s]://HOST[:PORT]  server (default
 *                            https://s3.REGION.amazonaws.com)
 *   region=R                 signing region (default us-east-1)
 *   style=path|virtual       bucket in the path or in the host name
 *                            (default: virtual for AWS, path when an
 *                            endpoint is given)
 *   credentials=FILE         "ACCESS_KEY\nSECRET\n" or key = value lines
 *                            (access_key, secret_key, session_token; the
 *                            aws_ spellings of ~/.aws/credentials too)
 *   insecure=1               do not verify the HTTPS certificate (warned)
 *   unsigned_payload=1       send UNSIGNED-PAYLOAD instead of hashing each
 *                            upload (HTTPS only: TLS protects the body)
 *   create_bucket=1          create the bucket at open if it is missing
 *   max_requests=N           requests in flight at once (default 32)
 *   attempts=N               tries per request (default 8)
 *   retry_base=D, retry_cap=D  backoff (default 100ms, 10s)
 *   timeout=D                whole-request limit (default 120s)
 *   list_page=N              keys per ListObjectsV2 page (default 1000)
 *
 * Credentials are never accepted in the URL (it is stored in the volume
 * settings and printed by `tessera status`): they come from the
 * credentials= file when one is named, else from AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.  The secret is never
 * logged.
 *
 * Requests: PUT object, GET (with Range), HEAD, DELETE, ListObjectsV2 with
 * continuation tokens.  Connections are reused: a request takes a curl
 * handle from a free list (curl_easy_reset keeps its live connection) and
 * at most max_requests run at once, the rest wait.
 *
 * Errors: connection failures, timeouts, resets, HTTP 5xx, 429 and
 * SlowDown/RequestTimeout are retried with exponential backoff and full
 * jitter.  403 (SignatureDoesNotMatch, InvalidAccessKeyId, AccessDenied,
 * RequestTimeTooSkewed) -> -EACCES and NoSuchBucket -> -EIO at once, with
 * S3's Code and Message in the log; 404 on an object -> -ENOENT;
 * QuotaExceeded -> -ENOSPC.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <curl/curl.h>

#include "lib/tl.h"
#include "objstore/objstore-internal.h"
#include "objstore/objstore.h"
#include "objstore/s3-internal.h"

#define ERRBODY_MAX 65536

struct s3_store {
	struct os_store base;
	char *endpoint; /* "http://host:port": scheme and authority */
	char *host;     /* Host header */
	char *bucket;
	char *prefix; /* "" or ends with '/' */
	char *region;
	bool https, path_style, insecure, unsigned_payload;
	char *access_key, *secret_key, *session_token;
	uint64_t max_requests, attempts, base_ms, cap_ms, timeout_ms;
	uint64_t list_page;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t active;
	CURL **idle;
	size_t nidle;
};

/* One request and its response. */
struct s3_req {
	const char *method;
	const char *key;   /* object key below the prefix; NULL: bucket */
	const char *query; /* canonical query, "" for none */
	const void *body;  /* PUT payload */
	size_t body_len, body_pos;
	uint64_t range_off; /* GET: bytes [off, off+len) when range_len */
	size_t range_len;
	uint8_t *sink; /* GET: data goes here, at most range_len */
	size_t sink_len;
	uint64_t skip; /* bytes to drop (200 to a Range request) */
	bool in_body;
	long status;
	uint64_t content_length;
	bool have_length;
	struct tl_buf resp; /* error bodies, list replies */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void
curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static struct s3_store *
s3_of(struct os_store *s)
{
	return (struct s3_store *)s;
}

/* ---- connection handles ---------------------------------------------- */

static CURL *
handle_get(struct s3_store *s)
{
	CURL *h = NULL;

	pthread_mutex_lock(&s->lock);
	while (s->active >= s->max_requests)
		pthread_cond_wait(&s->cond, &s->lock);
	s->active++;
	if (s->nidle > 0)
		h = s->idle[--s->nidle];
	pthread_mutex_unlock(&s->lock);
	if (h == NULL)
		h = curl_easy_init();
	if (h == NULL)
		abort(); /* out of memory, like tl_malloc */
	return h;
}

/* A handle whose transfer failed at the connection level is dropped, so
 * its connection is not reused. */
static void
handle_put(struct s3_store *s, CURL *h, bool keep)
{
	pthread_mutex_lock(&s->lock);
	s->active--;
	if (keep && s->nidle < s->max_requests) {
		s->idle[s->nidle++] = h;
		h = NULL;
	}
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (h != NULL)
		curl_easy_cleanup(h);
}

/* ---- curl callbacks ---------------------------------------------------- */

static size_t
on_header(char *data, size_t size, size_t n, void *arg)
{
	struct s3_req *r = arg;
	size_t len = size * n;
	char line[128];
	uint64_t v;

	if (len >= sizeof(line))
		return len;
	memcpy(line, data, len);
	line[len] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (strncmp(line, "HTTP/", 5) == 0) {
		/* a new response (after 100 Continue or a retry) */
		r->status = strtol(strchr(line, ' ') ? strchr(line, ' ') : "0",
				   NULL, 10);
		r->have_length = false;
	} else if (strncasecmp(line, "content-length:", 15) == 0) {
		char *p = line + 15;

		while (*p == ' ')
			p++;
		if (tl_parse_u64(p, 0, UINT64_MAX, &v) == 0) {
			r->content_length = v;
			r->have_length = true;
		}
	}
	return len;
}

static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	struct s3_req *r = arg;
	size_t len = size * n, take;

	if (!r->in_body) {
		r->in_body = true;
		if (r->status == 200 && r->range_len > 0)
			r->skip = r->range_off; /* server ignored Range */
	}
	if (r->sink == NULL || r->status < 200 || r->status > 299) {
		if (r->resp.len + len <= ERRBODY_MAX || r->sink == NULL)
			tl_buf_append(&r->resp, data, len);
		return len;
	}
	if (r->skip > 0) {
		take = (size_t)TL_MIN((uint64_t)len, r->skip);
		r->skip -= take;
		data += take;
		len -= take;
	}
	take = TL_MIN(len, r->range_len - r->sink_len);
	memcpy(r->sink + r->sink_len, data, take);
	r->sink_len += take;
	return size * n;
}

static size_t
on_read(char *dst, size_t size, size_t n, void *arg)
{
	struct s3_req *r = arg;
	size_t take = TL_MIN(size * n, r->body_len - r->body_pos);

	memcpy(dst, (const uint8_t *)r->body + r->body_pos, take);
	r->body_pos += take;
	return take;
}

static int
on_seek(void *arg, curl_off_t off, int origin)
{
	struct s3_req *r = arg;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > r->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	r->body_pos = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

/* ---- one request --------------------------------------------------------- */

static void
amz_now(char out[17])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* The encoded path: "/bucket/prefix+key" (path style) or "/prefix+key". */
static char *
req_path(struct s3_store *s, const char *key)
{
	struct tl_buf b = TL_BUF_INIT;

	tl_buf_append(&b, "/", 1);
	if (s->path_style) {
		os_s3_uri_encode(&b, s->bucket, false);
		if (key != NULL)
			tl_buf_append(&b, "/", 1);
	}
	if (key != NULL) {
		os_s3_uri_encode(&b, s->prefix, true);
		os_s3_uri_encode(&b, key, true);
	}
	tl_buf_append(&b, "", 1);
	return (char *)b.data;
}

static struct curl_slist *
req_sign(struct s3_store *s, struct s3_req *r, const char *path)
{
	char date[17], hash[65], range[64], *auth, *line;
	struct os_s3_kv h[5];
	struct curl_slist *l = NULL;
	struct os_s3_sign_in in;
	size_t n = 0, i;

	amz_now(date);
	if (r->body == NULL)
		strcpy(hash, S3_EMPTY_SHA256);
	else if (s->unsigned_payload)
		strcpy(hash, "UNSIGNED-PAYLOAD");
	else
		os_s3_sha256_hex(r->body, r->body_len, hash);
	h[n++] = (struct os_s3_kv){"host", s->host};
	if (r->range_len > 0) {
		snprintf(range, sizeof(range), "bytes=%llu-%llu",
			 (unsigned long long)r->range_off,
			 (unsigned long long)(r->range_off + r->range_len - 1));
		h[n++] = (struct os_s3_kv){"range", range};
	}
	h[n++] = (struct os_s3_kv){"x-amz-content-sha256", hash};
	h[n++] = (struct os_s3_kv){"x-amz-date", date};
	if (s->session_token != NULL)
		h[n++] = (struct os_s3_kv){"x-amz-security-token",
					   s->session_token};
	in = (struct os_s3_sign_in){
		r->method, path,          r->query,     h,
		n,         hash,          date,         s->region,
		"s3",      s->access_key, s->secret_key};
	auth = os_s3_sign(&in);
	for (i = 0; i < n; i++) {
		line = tl_asprintf("%s: %s", h[i].name, h[i].value);
		l = curl_slist_append(l, line);
		free(line);
	}
	line = tl_asprintf("Authorization: %s", auth);
	l = curl_slist_append(l, line);
	free(line);
	free(auth);
	/* no "Expect: 100-continue" round trip, no form content type */
	l = curl_slist_append(l, "Expect:");
	l = curl_slist_append(l, "Content-Type:");
	return l;
}

static void
req_setup(struct s3_store *s, CURL *h, struct s3_req *r, const char *url,
	  struct curl_slist *hdrs)
{
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	if (s->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (strcmp(r->method, "GET") == 0) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(r->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(r->method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, r);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, r);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)r->body_len);
	} else {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
	}
}

static bool
curl_transient(CURLcode c)
{
	switch (c) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

/* Map an HTTP error to an errno, logging what an operator needs; sets
 * *retry for the ones worth another attempt. */
static int
http_error(struct s3_store *s, struct s3_req *r, bool *retry, bool last)
{
	const char *body = (const char *)r->resp.data;
	char *code = os_s3_xml_text(body, r->resp.len, "Code");
	char *msg = os_s3_xml_text(body, r->resp.len, "Message");
	const char *c = code ? code : "", *hint = "";
	const char *what = r->key ? r->key : "(bucket)";
	int rc = -EIO;

	*retry = false;
	if (r->status >= 500 || r->status == 429 ||
	    strcmp(c, "SlowDown") == 0 || strcmp(c, "RequestTimeout") == 0) {
		*retry = true;
		if (!last)
			goto out;
	} else if (r->status == 404 && strcmp(c, "NoSuchBucket") != 0) {
		rc = -ENOENT;
		goto out;
	} else if (strcmp(c, "NoSuchBucket") == 0) {
		hint = " (create the bucket, or fix the bucket name)";
	} else if (strcmp(c, "QuotaExceeded") == 0) {
		rc = -ENOSPC;
	} else if (r->status == 403) {
		rc = -EACCES;
		if (strcmp(c, "SignatureDoesNotMatch") == 0)
			hint = " (the secret access key is wrong)";
		else if (strcmp(c, "InvalidAccessKeyId") == 0)
			hint = " (the access key id is unknown to the server)";
		else if (strcmp(c, "RequestTimeTooSkewed") == 0)
			hint = " (the clock of this host is wrong)";
		else
			hint = " (the credentials lack permission)";
	}
	tl_err("objstore", "%s: %s %s: HTTP %ld %s: %s%s%s", s->base.url,
	       r->method, what, r->status, c[0] ? c : "(no error code)",
	       msg ? msg : "", hint, *retry ? " (giving up)" : "");
out:
	free(code);
	free(msg);
	return rc;
}

static int
req_once(struct s3_store *s, struct s3_req *r, bool *retry, bool last)
{
	char *path = req_path(s, r->key), *url;
	struct curl_slist *hdrs = req_sign(s, r, path);
	CURL *h = handle_get(s);
	CURLcode c;
	int rc;

	url = tl_asprintf("%s%s%s%s", s->endpoint, path, r->query[0] ? "?" : "",
			  r->query);
	curl_easy_reset(h);
	req_setup(s, h, r, url, hdrs);
	r->status = 0;
	r->in_body = false;
	r->skip = 0;
	r->body_pos = 0;
	r->sink_len = 0;
	r->have_length = false;
	tl_buf_reset(&r->resp);
	c = curl_easy_perform(h);
	handle_put(s, h, c == CURLE_OK);
	if (c != CURLE_OK) {
		*retry = curl_transient(c);
		if (!*retry || last)
			tl_err("objstore", "%s: %s %s: %s%s", s->base.url,
			       r->method, r->key ? r->key : "(bucket)",
			       curl_easy_strerror(c),
			       *retry ? " (giving up)" : "");
		rc = -EIO;
	} else if (r->status >= 200 && r->status <= 299) {
		*retry = false;
		rc = 0;
	} else if (r->status == 416) {
		*retry = false;
		rc = -ERANGE;
	} else {
		rc = http_error(s, r, retry, last);
	}
	curl_slist_free_all(hdrs);
	free(url);
	free(path);
	return rc;
}

static int
req_do(struct s3_store *s, struct s3_req *r)
{
	unsigned attempt;
	bool retry;
	int rc;

	if (r->query == NULL)
		r->query = "";
	for (attempt = 0;; attempt++) {
		bool last = attempt + 1 >= s->attempts;

		rc = req_once(s, r, &retry, last);
		if (rc == 0 || !retry || last)
			break;
		tl_debug("objstore", "%s: %s %s: retrying (HTTP %ld)",
			 s->base.url, r->method, r->key ? r->key : "(bucket)",
			 r->status);
		os_backoff_sleep(attempt, s->base_ms, s->cap_ms);
	}
	return rc;
}

/* ---- operations ---------------------------------------------------------- */

static int
s3_put(struct os_store *st, const char *key, const void *data, size_t len)
{
	struct s3_req r = {
		.method = "PUT", .key = key, .body = data, .body_len = len};
	int rc;

	if (data == NULL)
		r.body = "";
	rc = req_do(s3_of(st), &r);
	tl_buf_free(&r.resp);
	if (rc == 0)
		atomic_fetch_add(&st->puts, 1);
	return rc;
}

static int
s3_head(struct os_store *st, const char *key, uint64_t *size)
{
	struct s3_req r = {.method = "HEAD", .key = key};
	int rc = req_do(s3_of(st), &r);

	if (rc == 0) {
		if (!r.have_length)
			rc = -EIO;
		else
			*size = r.content_length;
	}
	tl_buf_free(&r.resp);
	return rc;
}

static int
s3_get(struct os_store *st, const char *key, uint64_t off, size_t len,
       void *buf, size_t *got)
{
	struct s3_req r = {.method = "GET",
			   .key = key,
			   .range_off = off,
			   .range_len = len,
			   .sink = buf};
	uint64_t size = 0;
	int rc;

	*got = 0;
	if (len == 0) {
		/* a zero-length Range cannot be expressed */
		rc = s3_head(st, key, &size);
		return rc < 0 ? rc : off > size ? -ERANGE : 0;
	}
	rc = req_do(s3_of(st), &r);
	if (rc == -ERANGE) {
		/* 416: off is at or past the end; at the end reads nothing */
		rc = s3_head(st, key, &size);
		if (rc == 0 && off != size)
			rc = -ERANGE;
	} else if (rc == 0) {
		*got = r.sink_len;
	}
	tl_buf_free(&r.resp);
	return rc;
}

static int
s3_del(struct os_store *st, const char *key)
{
	struct s3_req r = {.method = "DELETE", .key = key};
	int rc = req_do(s3_of(st), &r);

	tl_buf_free(&r.resp);
	return rc == -ENOENT ? 0 : rc;
}

struct list_ctx {
	struct s3_store *s;
	os_list_cb cb;
	void *arg;
	char *last;          /* full key of the last entry, for the next page */
	os_list_info_cb icb; /* s3_list_info's, instead of cb */
};

static int
list_one(void *arg, const char *key, uint64_t size, uint64_t mtime_ns)
{
	struct list_ctx *l = arg;
	size_t plen = strlen(l->s->prefix);
	struct os_obj_info oi = {size, mtime_ns};

	if (strncmp(key, l->s->prefix, plen) != 0)
		return 0; /* not ours: cannot happen with the prefix filter */
	free(l->last);
	l->last = tl_strdup(key);
	if (l->icb != NULL)
		return l->icb(l->arg, key + plen, &oi);
	return l->cb(l->arg, key + plen, size);
}

/* ListObjectsV2 page by page into l's callback. */
static int
list_pages(struct s3_store *s, const char *prefix, const char *start_after,
	   struct list_ctx *l)
{
	char *full = tl_asprintf("%s%s", s->prefix, prefix), *after = NULL;
	char *token = NULL, *next, *q, page[24];
	struct os_s3_kv kv[5];
	bool truncated;
	size_t n;
	int rc;

	if (start_after != NULL)
		after = tl_asprintf("%s%s", s->prefix, start_after);
	snprintf(page, sizeof(page), "%llu", (unsigned long long)s->list_page);
	do {
		struct s3_req r = {.method = "GET"};

		n = 0;
		kv[n++] = (struct os_s3_kv){"list-type", "2"};
		kv[n++] = (struct os_s3_kv){"max-keys", page};
		kv[n++] = (struct os_s3_kv){"prefix", full};
		if (token != NULL)
			kv[n++] =
				(struct os_s3_kv){"continuation-token", token};
		else if (after != NULL)
			kv[n++] = (struct os_s3_kv){"start-after", after};
		q = os_s3_query(kv, n);
		r.query = q;
		rc = req_do(s, &r);
		free(token);
		token = NULL;
		if (rc == 0) {
			rc = os_s3_parse_list_info((char *)r.resp.data,
						   r.resp.len, list_one, l,
						   &truncated, &next);
			token = next;
			if (rc == -EIO)
				tl_err("objstore",
				       "%s: unreadable "
				       "ListObjectsV2 reply",
				       s->base.url);
		}
		free(q);
		tl_buf_free(&r.resp);
	} while (rc == 0 && truncated);
	free(token);
	free(l->last);
	l->last = NULL;
	free(full);
	free(after);
	return rc;
}

static int
s3_list(struct os_store *st, const char *prefix, const char *start_after,
	os_list_cb cb, void *arg)
{
	struct list_ctx l = {s3_of(st), cb, arg, NULL, NULL};

	return list_pages(l.s, prefix, start_after, &l);
}

static int
s3_list_info(struct os_store *st, const char *prefix, const char *start_after,
	     os_list_info_cb cb, void *arg)
{
	struct list_ctx l = {s3_of(st), NULL, arg, NULL, cb};

	return list_pages(l.s, prefix, start_after, &l);
}

static void
s3_close(struct os_store *st)
{
	struct s3_store *s = s3_of(st);
	size_t i;

	for (i = 0; i < s->nidle; i++)
		curl_easy_cleanup(s->idle[i]);
	free(s->idle);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	if (s->secret_key != NULL)
		explicit_bzero(s->secret_key, strlen(s->secret_key));
	if (s->session_token != NULL)
		explicit_bzero(s->session_token, strlen(s->session_token));
	free(s->secret_key);
	free(s->session_token);
	free(s->access_key);
	free(s->endpoint);
	free(s->host);
	free(s->bucket);
	free(s->prefix);
	free(s->region);
	free(s->base.url);
	free(s);
}

static const struct os_ops s3_ops = {
	.scheme = "s3",
	.put = s3_put,
	.get = s3_get,
	.head = s3_head,
	.del = s3_del,
	.list = s3_list,
	.close = s3_close,
	.list_info = s3_list_info,
};

/* ---- opening ------------------------------------------------------------- */

static char *
trim(char *p)
{
	char *e;

	while (*p == ' ' || *p == '\t')
		p++;
	e = p + strlen(p);
	while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
			 e[-1] == '\n'))
		*--e = '\0';
	return p;
}

/* Read a credentials file: two lines (access key, secret) or key = value
 * lines; "[profile]" headers and '#' comments are skipped. */
static int
load_credentials(struct s3_store *s, const char *path, char **err)
{
	char line[1024], *p, *eq, *plain[2] = {NULL, NULL};
	struct stat st;
	size_t nplain = 0;
	FILE *f;
	int rc = 0;

	f = fopen(path, "re");
	if (f == NULL) {
		rc = -errno;
		*err = tl_asprintf("credentials file %s: %s", path,
				   strerror(errno));
		return rc;
	}
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 0077) != 0)
		tl_warn("objstore",
			"credentials file %s is readable by "
			"other users (chmod 600 it)",
			path);
	while (fgets(line, sizeof(line), f) != NULL) {
		p = trim(line);
		if (*p == '\0' || *p == '#' || *p == '[')
			continue;
		eq = strchr(p, '=');
		if (eq == NULL) {
			if (nplain < 2)
				plain[nplain] = tl_strdup(p);
			nplain++;
			continue;
		}
		*eq = '\0';
		p = trim(p);
		eq = trim(eq + 1);
		if (strcmp(p, "access_key") == 0 ||
		    strcmp(p, "aws_access_key_id") == 0) {
			free(s->access_key);
			s->access_key = tl_strdup(eq);
		} else if (strcmp(p, "secret_key") == 0 ||
			   strcmp(p, "aws_secret_access_key") == 0) {
			free(s->secret_key);
			s->secret_key = tl_strdup(eq);
		} else if (strcmp(p, "session_token") == 0 ||
			   strcmp(p, "aws_session_token") == 0) {
			free(s->session_token);
			s->session_token = tl_strdup(eq);
		}
	}
	explicit_bzero(line, sizeof(line));
	fclose(f);
	if (nplain == 2 && s->access_key == NULL && s->secret_key == NULL) {
		s->access_key = plain[0];
		s->secret_key = plain[1];
		plain[0] = plain[1] = NULL;
	}
	if (plain[1] != NULL)
		explicit_bzero(plain[1], strlen(plain[1]));
	free(plain[0]);
	free(plain[1]);
	if (s->access_key == NULL || s->secret_key == NULL) {
		*err = tl_asprintf("credentials file %s: expected an access "
				   "key and a secret key (two lines, or "
				   "access_key = and secret_key = lines)",
				   path);
		rc = -EINVAL;
	}
	return rc;
}

static int
find_credentials(struct s3_store *s, const char *file, char **err)
{
	const char *ak = getenv("AWS_ACCESS_KEY_ID");
	const char *sk = getenv("AWS_SECRET_ACCESS_KEY");
	const char *tok = getenv("AWS_SESSION_TOKEN");

	/* A file named for this volume is more specific than the process
	 * environment, so it wins. */
	if (file != NULL)
		return load_credentials(s, file, err);
	if (ak != NULL && ak[0] != '\0' && sk != NULL && sk[0] != '\0') {
		s->access_key = tl_strdup(ak);
		s->secret_key = tl_strdup(sk);
		if (tok != NULL && tok[0] != '\0')
			s->session_token = tl_strdup(tok);
		return 0;
	}
	*err = tl_strdup("no S3 credentials: set AWS_ACCESS_KEY_ID and "
			 "AWS_SECRET_ACCESS_KEY, or add "
			 "&credentials=/path/to/file to the URL");
	return -EINVAL;
}

/* endpoint=scheme://host[:port] (a trailing '/' is allowed, a path is
 * not). */
static int
set_endpoint(struct s3_store *s, const char *ep, char **err)
{
	const char *auth;
	size_t n;

	if (strncmp(ep, "http://", 7) == 0)
		auth = ep + 7;
	else if (strncmp(ep, "https://", 8) == 0)
		auth = ep + 8;
	else
		goto bad;
	s->https = auth - ep == 8;
	n = strcspn(auth, "/?#");
	if (n == 0 || (auth[n] != '\0' && strcmp(auth + n, "/") != 0) ||
	    memchr(auth, '@', n) != NULL)
		goto bad;
	s->host = tl_strndup(auth, n);
	s->endpoint = tl_strndup(ep, (size_t)(auth - ep) + n);
	return 0;
bad:
	*err = tl_asprintf("s3: bad endpoint '%s' (expected "
			   "http[s]://HOST[:PORT])",
			   ep);
	return -EINVAL;
}

static int
parse_options(struct s3_store *s, struct os_params *p, char **err)
{
	static const char *const forbidden[] = {"access_key",
						"secret_key",
						"secret",
						"aws_access_key_id",
						"aws_secret_access_key",
						"session_token",
						"password"};
	const char *ep, *style, *creds;
	bool path_style = false;
	size_t i;
	int rc;

	for (i = 0; i < TL_ARRAY_SIZE(forbidden); i++)
		if (os_params_get(p, forbidden[i]) != NULL) {
			*err = tl_asprintf("s3: credentials are not accepted "
					   "in the URL ('%s'), which is "
					   "stored and printed; use the "
					   "environment or &credentials=FILE",
					   forbidden[i]);
			return -EINVAL;
		}
	s->region = tl_strdup(os_params_get(p, "region")
				      ? os_params_get(p, "region")
				      : "us-east-1");
	s->max_requests = 32;
	s->attempts = 8;
	s->base_ms = 100;
	s->cap_ms = 10000;
	s->timeout_ms = 120000;
	s->list_page = 1000;
	if ((rc = os_params_bool(p, "insecure", &s->insecure, err)) < 0 ||
	    (rc = os_params_bool(p, "unsigned_payload", &s->unsigned_payload,
				 err)) < 0 ||
	    (rc = os_params_u64(p, "max_requests", 1, 4096, &s->max_requests,
				err)) < 0 ||
	    (rc = os_params_u64(p, "attempts", 1, 100, &s->attempts, err)) <
		    0 ||
	    (rc = os_params_ms(p, "retry_base", &s->base_ms, err)) < 0 ||
	    (rc = os_params_ms(p, "retry_cap", &s->cap_ms, err)) < 0 ||
	    (rc = os_params_ms(p, "timeout", &s->timeout_ms, err)) < 0 ||
	    (rc = os_params_u64(p, "list_page", 1, 1000, &s->list_page, err)) <
		    0)
		return rc;
	ep = os_params_get(p, "endpoint");
	if (ep != NULL) {
		if ((rc = set_endpoint(s, ep, err)) < 0)
			return rc;
		path_style = true;
	} else {
		s->https = true;
		s->host = tl_asprintf("s3.%s.amazonaws.com", s->region);
		s->endpoint = tl_asprintf("https://%s", s->host);
	}
	style = os_params_get(p, "style");
	if (style != NULL && strcmp(style, "path") == 0) {
		path_style = true;
	} else if (style != NULL && strcmp(style, "virtual") == 0) {
		path_style = false;
	} else if (style != NULL) {
		*err = tl_asprintf("s3: style=%s: expected path or virtual",
				   style);
		return -EINVAL;
	}
	s->path_style = path_style;
	if (s->unsigned_payload && !s->https) {
		*err = tl_strdup("s3: unsigned_payload=1 needs an https "
				 "endpoint (over http nothing would protect "
				 "the data)");
		return -EINVAL;
	}
	creds = os_params_get(p, "credentials");
	if ((rc = find_credentials(s, creds, err)) < 0)
		return rc;
	return os_params_check_used(p, "s3", err);
}

/* Virtual style moves the bucket into the host name. */
static void
apply_style(struct s3_store *s)
{
	const char *scheme = s->https ? "https://" : "http://";
	char *host;

	if (s->path_style)
		return;
	host = tl_asprintf("%s.%s", s->bucket, s->host);
	free(s->host);
	free(s->endpoint);
	s->host = host;
	s->endpoint = tl_asprintf("%s%s", scheme, host);
}

static int
create_bucket(struct s3_store *s)
{
	struct s3_req r = {.method = "PUT"};
	char *body = NULL, *code;
	int rc;

	if (strcmp(s->region, "us-east-1") != 0)
		body = tl_asprintf("<CreateBucketConfiguration xmlns=\"http://"
				   "s3.amazonaws.com/doc/2006-03-01/\">"
				   "<LocationConstraint>%s</LocationConstraint>"
				   "</CreateBucketConfiguration>",
				   s->region);
	r.body = body ? body : "";
	r.body_len = body ? strlen(body) : 0;
	/* 409 BucketAlreadyOwnedByYou is success; req_do logs other errors */
	rc = req_do(s, &r);
	code = os_s3_xml_text((char *)r.resp.data, r.resp.len, "Code");
	if (rc < 0 && code != NULL &&
	    strcmp(code, "BucketAlreadyOwnedByYou") == 0)
		rc = 0;
	free(code);
	free(body);
	tl_buf_free(&r.resp);
	return rc;
}

int
os_s3_open(const char *url, unsigned flags, struct os_store **out, char **err)
{
	struct s3_store *s = tl_calloc(1, sizeof(*s));
	struct os_params p = {NULL, 0};
	const char *rest = url + 5, *q = strchr(rest, '?');
	size_t blen;
	bool mk = false;
	int rc;

	*out = NULL;
	pthread_once(&curl_once, curl_init_once);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->base.ops = &s3_ops;
	s->base.url = tl_strdup(url);
	if (q == NULL)
		q = rest + strlen(rest);
	blen = strcspn(rest, "/?");
	s->bucket = tl_strndup(rest, blen);
	s->prefix = tl_strndup(rest + blen + (rest[blen] == '/'),
			       (size_t)(q - rest) - blen - (rest[blen] == '/'));
	if (blen == 0 || blen > 63) {
		*err = tl_asprintf("s3: bad bucket name in '%s'", url);
		rc = -EINVAL;
		goto fail;
	}
	if (s->prefix[0] != '\0' && s->prefix[strlen(s->prefix) - 1] != '/') {
		char *pp = tl_asprintf("%s/", s->prefix);

		free(s->prefix);
		s->prefix = pp;
	}
	if (*q == '?' && (rc = os_params_parse(q + 1, '&', true, &p, err)) < 0)
		goto fail;
	if ((rc = os_params_bool(&p, "create_bucket", &mk, err)) < 0 ||
	    (rc = parse_options(s, &p, err)) < 0)
		goto fail;
	apply_style(s);
	s->idle = tl_calloc(s->max_requests, sizeof(*s->idle));
	if (s->insecure)
		tl_warn("objstore",
			"%s: HTTPS certificate verification is "
			"off (insecure=1)",
			url);
	if (mk && !(flags & OS_OPEN_RDONLY) && (rc = create_bucket(s)) < 0) {
		*err = tl_asprintf("s3: cannot create bucket %s (%s; see the "
				   "log)",
				   s->bucket, strerror(-rc));
		goto fail;
	}
	os_params_free(&p);
	*out = &s->base;
	return 0;
fail:
	os_params_free(&p);
	s3_close(&s->base);
	return rc;
}
