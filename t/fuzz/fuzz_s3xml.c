/*
 * fuzz_s3xml - libFuzzer target: the S3 backend's XML parsing
 * (objstore/s3-internal.h) on any bytes, as a store's reply would bring
 * them: a ListObjectsV2 page (os_s3_parse_list_info and os_s3_parse_list), an
 * error's Code and Message and a multipart upload's UploadId
 * (os_s3_xml_text, entities decoded), a LastModified time (os_s3_parse_time).
 * The reply is handed over as exactly its bytes, not NUL-terminated, as
 * the backend does, so ASan sees any read past it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lib/tl.h"
#include "objstore/s3-internal.h"
#include "t/fuzz/fuzz_target.h"

static int
one(void *arg, const char *key, uint64_t size, uint64_t mtime_ns)
{
	size_t *n = arg;

	*n += strlen(key) + (size_t)(size & 1) + (size_t)(mtime_ns & 1);
	return 0;
}

static int
plain(void *arg, const char *key, uint64_t size)
{
	return one(arg, key, size, 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const tags[] = {"Code", "Message", "UploadId", "Key",
					   "ETag"};
	char *xml = tl_malloc(size > 0 ? size : 1), *next = NULL, *z;
	size_t n = 0;
	bool truncated;
	uint64_t ns;

	memcpy(xml, data, size);
	os_s3_parse_list_info(xml, size, one, &n, &truncated, &next);
	free(next);
	next = NULL;
	os_s3_parse_list(xml, size, plain, &n, &truncated, &next);
	free(next);
	for (size_t i = 0; i < sizeof(tags) / sizeof(*tags); i++)
		free(os_s3_xml_text(xml, size, tags[i]));
	z = tl_malloc(size + 1);
	memcpy(z, data, size);
	z[size] = '\0';
	os_s3_parse_time(z, &ns);
	free(z);
	free(xml);
	return 0;
}
