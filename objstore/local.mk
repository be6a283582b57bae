# objstore: the object-store interface, URL dispatch, the backends (file,
# s3) and the stacked wrappers (fault, retry, ratelimit, zstd, crypt).
noinst_LIBRARIES += objstore/libobjstore.a
objstore_libobjstore_a_SOURCES = objstore/objstore.h \
	objstore/objstore-internal.h objstore/objstore.c objstore/file.c \
	objstore/s3-internal.h objstore/s3sign.c objstore/s3.c \
	objstore/fault.c objstore/retry.c objstore/ratelimit.c \
	objstore/zstd.c objstore/crypt.c objstore/marker.c
objstore_libobjstore_a_CPPFLAGS = $(AM_CPPFLAGS) $(CURL_CFLAGS) \
	$(ZSTD_CFLAGS)
