# tools: the tessera admin command.
bin_PROGRAMS += tessera
tessera_SOURCES = tools/tessera.c tools/fsck.c tools/gc.c
tessera_LDADD = $(TESSERA_LIBS)

# tessera gc end to end (runs the built tessera) and os_list_info.
check_PROGRAMS += t/unit/tools_gc_test t/unit/objstore_listinfo_test
TESTS += t/unit/tools_gc_test t/unit/objstore_listinfo_test
t_unit_tools_gc_test_SOURCES = t/unit/tools_gc_test.c t/unit/tap.h \
	t/unit/os_count.h
t_unit_tools_gc_test_CPPFLAGS = $(AM_CPPFLAGS) \
	-DTESSERA_BIN='"$(abs_top_builddir)/tessera$(EXEEXT)"'
t_unit_tools_gc_test_LDADD = $(TESSERA_LIBS)
EXTRA_t_unit_tools_gc_test_DEPENDENCIES = tessera$(EXEEXT)
t_unit_objstore_listinfo_test_SOURCES = t/unit/objstore_listinfo_test.c \
	t/unit/tap.h t/unit/os_count.h
t_unit_objstore_listinfo_test_LDADD = objstore/libobjstore.a lib/libtl.a
