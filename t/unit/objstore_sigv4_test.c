/*
 * objstore_sigv4_test.c - the S3 backend's SigV4 signer against AWS's
 * published examples (the aws-sig-v4-test-suite "get-vanilla" family and
 * the worked examples of the S3 "Signature Version 4" documentation), and
 * its ListObjectsV2 reader.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/tl.h"
#include "objstore/s3-internal.h"
#include "t/unit/tap.h"

/* aws-sig-v4-test-suite credentials and time */
#define SUITE_AK   "AKIDEXAMPLE"
#define SUITE_SK   "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_DATE "20150830T123600Z"
/* S3 documentation examples */
#define S3_AK   "AKIAIOSFODNN7EXAMPLE"
#define S3_SK   "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define S3_DATE "20130524T000000Z"
#define S3_HOST "examplebucket.s3.amazonaws.com"

static char *
sig_of(const char *auth)
{
	const char *p = strstr(auth, "Signature=");

	return tl_strdup(p ? p + 10 : "");
}

/* Sign in and check the signature is want; the test is named kind what. */
static void
check_sig(const struct os_s3_sign_in *in, const char *want, const char *kind,
	  const char *what)
{
	char *auth = os_s3_sign(in), *sig = sig_of(auth);

	CHECK(strcmp(sig, want) == 0, "%s%s: signature", kind, what);
	if (strcmp(sig, want) != 0)
		printf("#   got %s\n", auth);
	free(sig);
	free(auth);
}

static void
suite_case(const char *what, const char *path, const struct os_s3_kv *q,
	   size_t nq, const char *want)
{
	struct os_s3_kv h[] = {{"Host", "example.amazonaws.com"},
			       {"X-Amz-Date", SUITE_DATE}};
	char *query = os_s3_query(q, nq);
	struct os_s3_sign_in in = {"GET",      path,        query,
				   h,          2,           S3_EMPTY_SHA256,
				   SUITE_DATE, "us-east-1", "service",
				   SUITE_AK,   SUITE_SK};

	check_sig(&in, want, "", what);
	free(query);
}

static void
test_suite(void)
{
	struct os_s3_kv order[] = {{"Param2", "value2"}, {"Param1", "value1"}};
	struct os_s3_kv h[] = {{"Host", "example.amazonaws.com"},
			       {"X-Amz-Date", SUITE_DATE}};
	struct os_s3_sign_in in = {"GET",      "/",         "",
				   h,          2,           S3_EMPTY_SHA256,
				   SUITE_DATE, "us-east-1", "service",
				   SUITE_AK,   SUITE_SK};
	struct tl_buf b = TL_BUF_INIT;
	char *auth;

	suite_case("get-vanilla", "/", NULL, 0,
		   "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d"
		   "763fbf31");
	suite_case("get-vanilla-query-order-key-case", "/", order, 2,
		   "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec9"
		   "4cdf2500");
	/* get-utf8: the path is U+1234, encoded by the signer's encoder */
	os_s3_uri_encode(&b, "/\xe1\x88\xb4", true);
	tl_buf_append(&b, "", 1);
	CHECK(strcmp((char *)b.data, "/%E1%88%B4") == 0, "UTF-8 path encoded");
	suite_case("get-utf8", (char *)b.data, NULL, 0,
		   "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd031"
		   "41be5d85");
	tl_buf_free(&b);

	/* the whole header of get-vanilla */
	auth = os_s3_sign(&in);
	CHECK(strcmp(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/"
			   "us-east-1/service/aws4_request, SignedHeaders="
			   "host;x-amz-date, Signature=5fa00fa31553b73ebf194"
			   "2676e86291e8372ff2a2260956d9b8aae1d763fbf31") == 0,
	      "get-vanilla: Authorization header");
	free(auth);
}

static void
s3_case(const char *what, const char *method, const char *path,
	const struct os_s3_kv *q, size_t nq, const struct os_s3_kv *extra,
	size_t nextra, const char *payload_hash, const char *want)
{
	struct os_s3_kv h[8];
	char *query = os_s3_query(q, nq);
	size_t n = 0, i;
	struct os_s3_sign_in in;

	h[n++] = (struct os_s3_kv){"Host", S3_HOST};
	h[n++] = (struct os_s3_kv){"x-amz-date", S3_DATE};
	h[n++] = (struct os_s3_kv){"x-amz-content-sha256", payload_hash};
	for (i = 0; i < nextra; i++)
		h[n++] = extra[i];
	in = (struct os_s3_sign_in){method, path,         query,   h,
				    n,      payload_hash, S3_DATE, "us-east-1",
				    "s3",   S3_AK,        S3_SK};
	check_sig(&in, want, "S3 example ", what);
	free(query);
}

static void
test_s3_examples(void)
{
	struct os_s3_kv range[] = {{"Range", "bytes=0-9"}};
	struct os_s3_kv put[] = {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
				 {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
	struct os_s3_kv lifecycle[] = {{"lifecycle", ""}};
	struct os_s3_kv list[] = {{"prefix", "J"}, {"max-keys", "2"}};
	struct tl_buf b = TL_BUF_INIT;
	char body_hash[65], *q;

	s3_case("GET object with a range", "GET", "/test.txt", NULL, 0, range,
		1, S3_EMPTY_SHA256,
		"f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c603"
		"6bdb41");

	os_s3_sha256_hex("Welcome to Amazon S3.", 21, body_hash);
	CHECK(strcmp(body_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b"
				"4e99e42034a8b803f8b072") == 0,
	      "payload SHA-256 of the PUT example");
	os_s3_uri_encode(&b, "/test$file.text", true);
	tl_buf_append(&b, "", 1);
	CHECK(strcmp((char *)b.data, "/test%24file.text") == 0,
	      "'$' in a key is encoded");
	s3_case("PUT object", "PUT", (char *)b.data, NULL, 0, put, 2, body_hash,
		"98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ec"
		"e108bd");
	tl_buf_free(&b);

	s3_case("GET bucket lifecycle", "GET", "/", lifecycle, 1, NULL, 0,
		S3_EMPTY_SHA256,
		"fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136"
		"783543");
	s3_case("GET bucket (list objects)", "GET", "/", list, 2, NULL, 0,
		S3_EMPTY_SHA256,
		"34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef6"
		"9dc6f7");

	q = os_s3_query(list, 2);
	CHECK(strcmp(q, "max-keys=2&prefix=J") == 0, "query sorted: %s", q);
	free(q);
	{
		struct os_s3_kv odd[] = {{"continuation-token", "a+b/c="},
					 {"a", "x y"}};

		q = os_s3_query(odd, 2);
		CHECK(strcmp(q, "a=x%20y&continuation-token=a%2Bb%2Fc%3D") == 0,
		      "query values encoded: %s", q);
		free(q);
	}
}

struct listed {
	char keys[8][64];
	uint64_t sizes[8];
	int n;
};

static int
collect(void *arg, const char *key, uint64_t size)
{
	struct listed *l = arg;

	if (l->n < 8) {
		snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s", key);
		l->sizes[l->n] = size;
	}
	l->n++;
	return 0;
}

static void
test_list_xml(void)
{
	static const char page1[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/"
		"2006-03-01/\"><Name>b</Name><Prefix>v/</Prefix>"
		"<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
		"<IsTruncated>true</IsTruncated>"
		"<Contents><Key>v/a&amp;b&lt;c&gt;&quot;d&apos;</Key>"
		"<LastModified>x</LastModified><ETag>&quot;e&quot;</ETag>"
		"<Size>17</Size><StorageClass>STANDARD</StorageClass>"
		"</Contents>"
		"<Contents><Key>v/&#233;&#x4E2D;</Key><Size>0</Size>"
		"</Contents>"
		"<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/"
		"wm36Hy4vbOwM=</NextContinuationToken>"
		"</ListBucketResult>";
	static const char last[] =
		"<ListBucketResult><IsTruncated>false</IsTruncated>"
		"<Contents><Key>v/z</Key><Size>18446744073709551615</Size>"
		"</Contents></ListBucketResult>";
	static const char bad[] =
		"<ListBucketResult><IsTruncated>false</IsTruncated>"
		"<Contents><Key>v/&bogus;</Key><Size>1</Size></Contents>"
		"</ListBucketResult>";
	static const char err[] =
		"<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch"
		"</Code><Message>The request signature we calculated does "
		"not match</Message></Error>";
	struct listed l = {.n = 0};
	bool trunc;
	char *next, *code;
	int rc;

	rc = os_s3_parse_list(page1, sizeof(page1) - 1, collect, &l, &trunc,
			      &next);
	CHECK_EQ(rc, 0, "page parses");
	CHECK(trunc, "IsTruncated");
	CHECK(next && strcmp(next, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/"
				   "wm36Hy4vbOwM=") == 0,
	      "NextContinuationToken");
	free(next);
	CHECK_EQ(l.n, 2, "two keys");
	CHECK(strcmp(l.keys[0], "v/a&b<c>\"d'") == 0, "entities decoded: %s",
	      l.keys[0]);
	CHECK_EQ(l.sizes[0], 17, "size");
	CHECK(strcmp(l.keys[1], "v/\xc3\xa9\xe4\xb8\xad") == 0,
	      "character references decoded to UTF-8");

	l.n = 0;
	rc = os_s3_parse_list(last, sizeof(last) - 1, collect, &l, &trunc,
			      &next);
	CHECK(rc == 0 && !trunc && next == NULL && l.n == 1 &&
		      l.sizes[0] == UINT64_MAX,
	      "last page, 64-bit size");

	rc = os_s3_parse_list(bad, sizeof(bad) - 1, collect, &l, &trunc, &next);
	CHECK_EQ(rc, -EIO, "unknown entity refused");
	free(next);
	rc = os_s3_parse_list(err, sizeof(err) - 1, collect, &l, &trunc, &next);
	CHECK_EQ(rc, -EIO, "an error document is not a listing");
	free(next);
	code = os_s3_xml_text(err, sizeof(err) - 1, "Code");
	CHECK(code && strcmp(code, "SignatureDoesNotMatch") == 0,
	      "error Code read");
	free(code);
}

int
main(void)
{
	test_suite();
	test_s3_examples();
	test_list_xml();
	return tap_done();
}
