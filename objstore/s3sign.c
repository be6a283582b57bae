/*
 * s3sign.c - AWS Signature Version 4 and the small XML reader of the S3
 * backend.  No I/O here, so the unit test can check both against AWS's
 * published examples.
 *
 * SigV4 in short: the canonical request (method, encoded path, sorted
 * query, lower-case sorted headers with trimmed values, the list of signed
 * header names and the payload hash) is hashed; the string to sign names
 * the algorithm, time, scope (date/region/service/aws4_request) and that
 * hash; the signing key is an HMAC chain of "AWS4"+secret over the scope
 * parts; the signature is the hex HMAC of the string to sign.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "lib/tl.h"
#include "objstore/s3-internal.h"

static const char hexd[] = "0123456789abcdef";

static void
hex(const uint8_t *in, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hexd[in[i] >> 4];
		out[2 * i + 1] = hexd[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void
os_s3_sha256_hex(const void *data, size_t len, char out[65])
{
	uint8_t md[SHA256_DIGEST_LENGTH];

	SHA256(data, len, md);
	hex(md, sizeof(md), out);
}

static void
hmac(const void *key, size_t klen, const void *msg, size_t mlen,
     uint8_t out[32])
{
	unsigned int olen = 32;
	uint8_t md[32];

	/* out may be the key itself (the signing key chain) */
	HMAC(EVP_sha256(), key, (int)klen, msg, mlen, md, &olen);
	memcpy(out, md, sizeof(md));
	explicit_bzero(md, sizeof(md));
}

void
os_s3_uri_encode(struct tl_buf *b, const char *s, bool keep_slash)
{
	const unsigned char *p;
	char esc[3];

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' ||
		    *p == '~' || (*p == '/' && keep_slash)) {
			tl_buf_append(b, p, 1);
			continue;
		}
		esc[0] = '%';
		esc[1] = "0123456789ABCDEF"[*p >> 4];
		esc[2] = "0123456789ABCDEF"[*p & 15];
		tl_buf_append(b, esc, 3);
	}
}

static char *
buf_str(struct tl_buf *b)
{
	tl_buf_append(b, "", 1);
	return (char *)b->data;
}

struct enc_kv {
	char *name;
	char *value;
};

static int
enc_kv_cmp(const void *a, const void *b)
{
	const struct enc_kv *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

char *
os_s3_query(const struct os_s3_kv *kv, size_t n)
{
	struct enc_kv *e = tl_calloc(n ? n : 1, sizeof(*e));
	struct tl_buf b = TL_BUF_INIT, t = TL_BUF_INIT;
	size_t i;

	for (i = 0; i < n; i++) {
		tl_buf_reset(&t);
		os_s3_uri_encode(&t, kv[i].name, false);
		e[i].name = tl_strndup((char *)t.data, t.len);
		tl_buf_reset(&t);
		os_s3_uri_encode(&t, kv[i].value ? kv[i].value : "", false);
		e[i].value = tl_strndup((char *)t.data, t.len);
	}
	qsort(e, n, sizeof(*e), enc_kv_cmp);
	for (i = 0; i < n; i++) {
		if (i > 0)
			tl_buf_append(&b, "&", 1);
		tl_buf_append(&b, e[i].name, strlen(e[i].name));
		tl_buf_append(&b, "=", 1);
		tl_buf_append(&b, e[i].value, strlen(e[i].value));
		free(e[i].name);
		free(e[i].value);
	}
	free(e);
	tl_buf_free(&t);
	return buf_str(&b);
}

/* Lower-cased name and trimmed value with inner runs of spaces folded. */
static void
canon_header(const struct os_s3_kv *h, struct enc_kv *out)
{
	struct tl_buf b = TL_BUF_INIT;
	const char *v = h->value;
	size_t i, n = strlen(h->name);
	bool space = false;

	out->name = tl_strdup(h->name);
	for (i = 0; i < n; i++)
		out->name[i] = (char)tolower((unsigned char)out->name[i]);
	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v != '\0'; v++) {
		if (*v == ' ' || *v == '\t') {
			space = true;
			continue;
		}
		if (space && b.len > 0)
			tl_buf_append(&b, " ", 1);
		space = false;
		tl_buf_append(&b, v, 1);
	}
	out->value = buf_str(&b);
}

char *
os_s3_sign(const struct os_s3_sign_in *in)
{
	struct enc_kv *h = tl_calloc(in->nhdrs ? in->nhdrs : 1, sizeof(*h));
	struct tl_buf creq = TL_BUF_INIT, names = TL_BUF_INIT;
	char creq_hash[65], date[9], sig[65], *sts, *key, *auth;
	uint8_t k[32];
	size_t i;

	for (i = 0; i < in->nhdrs; i++)
		canon_header(&in->hdrs[i], &h[i]);
	qsort(h, in->nhdrs, sizeof(*h), enc_kv_cmp);
	for (i = 0; i < in->nhdrs; i++) {
		if (i > 0)
			tl_buf_append(&names, ";", 1);
		tl_buf_append(&names, h[i].name, strlen(h[i].name));
	}
	buf_str(&names);

	tl_buf_append(&creq, in->method, strlen(in->method));
	tl_buf_append(&creq, "\n", 1);
	tl_buf_append(&creq, in->path, strlen(in->path));
	tl_buf_append(&creq, "\n", 1);
	tl_buf_append(&creq, in->query, strlen(in->query));
	tl_buf_append(&creq, "\n", 1);
	for (i = 0; i < in->nhdrs; i++) {
		tl_buf_append(&creq, h[i].name, strlen(h[i].name));
		tl_buf_append(&creq, ":", 1);
		tl_buf_append(&creq, h[i].value, strlen(h[i].value));
		tl_buf_append(&creq, "\n", 1);
		free(h[i].name);
		free(h[i].value);
	}
	free(h);
	tl_buf_append(&creq, "\n", 1);
	tl_buf_append(&creq, names.data, names.len - 1);
	tl_buf_append(&creq, "\n", 1);
	tl_buf_append(&creq, in->payload_hash, strlen(in->payload_hash));
	os_s3_sha256_hex(creq.data, creq.len, creq_hash);
	tl_buf_free(&creq);

	memcpy(date, in->amz_date, 8);
	date[8] = '\0';
	sts = tl_asprintf("AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s",
			  in->amz_date, date, in->region, in->service,
			  creq_hash);
	key = tl_asprintf("AWS4%s", in->secret_key);
	hmac(key, strlen(key), date, 8, k);
	explicit_bzero(key, strlen(key));
	free(key);
	hmac(k, 32, in->region, strlen(in->region), k);
	hmac(k, 32, in->service, strlen(in->service), k);
	hmac(k, 32, "aws4_request", 12, k);
	hmac(k, 32, sts, strlen(sts), k);
	hex(k, 32, sig);
	explicit_bzero(k, sizeof(k));
	free(sts);
	auth = tl_asprintf("AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/"
			   "aws4_request, SignedHeaders=%s, Signature=%s",
			   in->access_key, date, in->region, in->service,
			   (char *)names.data, sig);
	tl_buf_free(&names);
	return auth;
}

/* ---- XML ---------------------------------------------------------------- */

/* Append the UTF-8 encoding of code point c. */
static void
put_utf8(struct tl_buf *b, unsigned long c)
{
	uint8_t u[4];
	size_t n;

	if (c < 0x80) {
		u[0] = (uint8_t)c;
		n = 1;
	} else if (c < 0x800) {
		u[0] = (uint8_t)(0xc0 | c >> 6);
		u[1] = (uint8_t)(0x80 | (c & 0x3f));
		n = 2;
	} else if (c < 0x10000) {
		u[0] = (uint8_t)(0xe0 | c >> 12);
		u[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
		u[2] = (uint8_t)(0x80 | (c & 0x3f));
		n = 3;
	} else {
		u[0] = (uint8_t)(0xf0 | c >> 18);
		u[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3f));
		u[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
		u[3] = (uint8_t)(0x80 | (c & 0x3f));
		n = 4;
	}
	tl_buf_append(b, u, n);
}

/* Decode the five predefined entities and character references; NULL on
 * a malformed reference. */
static char *
xml_unescape(const char *s, size_t n)
{
	static const struct {
		const char *name;
		char c;
	} ent[] = {{"amp", '&'},
		   {"lt", '<'},
		   {"gt", '>'},
		   {"quot", '"'},
		   {"apos", '\''}};
	struct tl_buf b = TL_BUF_INIT;
	const char *end = s + n, *semi;
	unsigned long c;
	char *num_end;
	size_t i, len;

	while (s < end) {
		if (*s != '&') {
			tl_buf_append(&b, s++, 1);
			continue;
		}
		semi = memchr(s, ';', (size_t)(end - s));
		if (semi == NULL)
			goto bad;
		len = (size_t)(semi - s - 1);
		if (len >= 2 && s[1] == '#') {
			errno = 0;
			if (s[2] == 'x' || s[2] == 'X')
				c = strtoul(s + 3, &num_end, 16);
			else
				c = strtoul(s + 2, &num_end, 10);
			if (num_end != semi || errno != 0 || c == 0 ||
			    c > 0x10ffff)
				goto bad;
			put_utf8(&b, c);
		} else {
			for (i = 0; i < TL_ARRAY_SIZE(ent); i++)
				if (strlen(ent[i].name) == len &&
				    memcmp(s + 1, ent[i].name, len) == 0)
					break;
			if (i == TL_ARRAY_SIZE(ent))
				goto bad;
			tl_buf_append(&b, &ent[i].c, 1);
		}
		s = semi + 1;
	}
	return buf_str(&b);
bad:
	tl_buf_free(&b);
	return NULL;
}

static const char *
memfind(const char *h, size_t hlen, const char *needle)
{
	size_t n = strlen(needle);

	return memmem(h, hlen, needle, n);
}

/* Locate <tag>text</tag> in [xml, xml+len): *text and *tlen, returns the
 * position after the closing tag or NULL. */
static const char *
xml_find(const char *xml, size_t len, const char *tag, const char **text,
	 size_t *tlen)
{
	char open[64], close[64];
	const char *a, *b;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	a = memfind(xml, len, open);
	if (a == NULL)
		return NULL;
	a += strlen(open);
	b = memfind(a, len - (size_t)(a - xml), close);
	if (b == NULL)
		return NULL;
	*text = a;
	*tlen = (size_t)(b - a);
	return b + strlen(close);
}

char *
os_s3_xml_text(const char *xml, size_t len, const char *tag)
{
	const char *t;
	size_t n;

	if (xml == NULL || xml_find(xml, len, tag, &t, &n) == NULL)
		return NULL;
	return xml_unescape(t, n);
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's
 * days_from_civil), so no time-zone state is involved. */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool
digits(const char *s, int n, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return true;
}

int
os_s3_parse_time(const char *s, uint64_t *ns)
{
	unsigned y, mo, d, h, mi, sec, oh = 0, om = 0;
	uint64_t frac = 0, scale = 100000000;
	int64_t t;
	int sign = 0;

	if (strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' ||
	    !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d) ||
	    s[10] != 'T' || !digits(s + 11, 2, &h) || s[13] != ':' ||
	    !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
		return -EINVAL;
	s += 19;
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++) {
			frac += (uint64_t)(*s - '0') * scale;
			scale /= 10;
		}
	}
	if (*s == '+' || *s == '-') {
		sign = *s == '+' ? 1 : -1;
		if (!digits(s + 1, 2, &oh) || s[3] != ':' ||
		    !digits(s + 4, 2, &om) || s[6] != '\0')
			return -EINVAL;
	} else if (strcmp(s, "Z") != 0) {
		return -EINVAL;
	}
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || sec > 60 || oh > 23 || om > 59)
		return -EINVAL;
	t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	t -= sign * (int64_t)(oh * 3600 + om * 60);
	if (t < 0)
		return -EINVAL;
	*ns = (uint64_t)t * 1000000000ULL + frac;
	return 0;
}

int
os_s3_parse_list_info(const char *xml, size_t len,
		      int (*cb)(void *arg, const char *key, uint64_t size,
				uint64_t mtime_ns),
		      void *arg, bool *truncated, char **next)
{
	const char *p = xml, *end = xml + len, *c, *t, *after;
	size_t clen, tlen;
	uint64_t size, mtime;
	char *key, *v, num[32];
	int r;

	*truncated = false;
	*next = NULL;
	if (memfind(xml, len, "<ListBucketResult") == NULL)
		return -EIO;
	v = os_s3_xml_text(xml, len, "IsTruncated");
	*truncated = v != NULL && strcmp(v, "true") == 0;
	free(v);
	*next = os_s3_xml_text(xml, len, "NextContinuationToken");
	if (*truncated && *next == NULL)
		return -EIO;
	while ((after = xml_find(p, (size_t)(end - p), "Contents", &c,
				 &clen)) != NULL) {
		p = after;
		if (xml_find(c, clen, "Size", &t, &tlen) == NULL || tlen == 0 ||
		    tlen >= sizeof(num))
			return -EIO;
		memcpy(num, t, tlen);
		num[tlen] = '\0';
		if (tl_parse_u64(num, 0, UINT64_MAX, &size) < 0)
			return -EIO;
		/* Absent or odd: unknown (0), which gc treats as too young. */
		v = os_s3_xml_text(c, clen, "LastModified");
		if (v == NULL || os_s3_parse_time(v, &mtime) < 0)
			mtime = 0;
		free(v);
		key = os_s3_xml_text(c, clen, "Key");
		if (key == NULL)
			return -EIO;
		r = cb(arg, key, size, mtime);
		free(key);
		if (r != 0)
			return r;
	}
	return 0;
}

struct plain_list {
	int (*cb)(void *arg, const char *key, uint64_t size);
	void *arg;
};

static int
plain_one(void *arg, const char *key, uint64_t size, uint64_t mtime_ns)
{
	struct plain_list *pl = arg;

	(void)mtime_ns;
	return pl->cb(pl->arg, key, size);
}

int
os_s3_parse_list(const char *xml, size_t len,
		 int (*cb)(void *arg, const char *key, uint64_t size),
		 void *arg, bool *truncated, char **next)
{
	struct plain_list pl = {cb, arg};

	return os_s3_parse_list_info(xml, len, plain_one, &pl, truncated, next);
}
