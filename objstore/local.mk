# objstore: the object-store interface, URL dispatch and the backends.
noinst_LIBRARIES += objstore/libobjstore.a
objstore_libobjstore_a_SOURCES = objstore/objstore.h \
	objstore/objstore-internal.h objstore/objstore.c objstore/file.c
