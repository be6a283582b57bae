noinst_LIBRARIES += lib/libtl.a
lib_libtl_a_SOURCES = lib/tl.h lib/log.c lib/alloc.c lib/util.c lib/pool.c \
	lib/conf.c lib/sdnotify.c lib/htab.c
