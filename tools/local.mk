# tools: the tessera admin command.
bin_PROGRAMS += tessera
tessera_SOURCES = tools/tessera.c tools/fsck.c tools/gc.c
tessera_LDADD = $(TESSERA_LIBS)
