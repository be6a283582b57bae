# tools: the tessera admin command.
bin_PROGRAMS += tessera
tessera_SOURCES = tools/tessera.c tools/tools-internal.h tools/volume.c \
	tools/destroy.c tools/fsck.c tools/gc.c tools/raft.c tools/quota.c \
	tools/info.c tools/warmup.c tools/top.c tools/trash.c tools/dump.c \
	tools/admin.c
tessera_CPPFLAGS = $(AM_CPPFLAGS) $(NFS_CFLAGS)
tessera_LDADD = $(TESSERA_LIBS) $(NFS_LIBS) $(CURL_LIBS) -lm

# Its tests: t/unit/tools.mk.
