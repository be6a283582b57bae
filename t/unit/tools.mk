# Unit tests of tools/ (the tessera command) and of how tesserad starts.
# tessera gc end to end (runs the built tessera).
check_PROGRAMS += t/unit/tools_gc_test
TESTS += t/unit/tools_gc_test
t_unit_tools_gc_test_SOURCES = t/unit/tools_gc_test.c t/unit/tap.h \
	t/unit/os_count.h
t_unit_tools_gc_test_CPPFLAGS = $(AM_CPPFLAGS) \
	-DTESSERA_BIN='"$(abs_top_builddir)/tessera$(EXEEXT)"'
t_unit_tools_gc_test_LDADD = $(TESSERA_LIBS)
EXTRA_t_unit_tools_gc_test_DEPENDENCIES = tessera$(EXEEXT)

# The real tessera and tesserad binaries on real LMDB and file:// stores
# (t/unit/tools_test.h runs them): read-only commands create nothing,
# volumes named in a metadata engine that holds several, gateway sessions,
# volume markers, destroy; how tesserad starts (cache_dirs, log_file,
# file modes).
TOOLS_BIN_TESTS = t/unit/tools_readonly_test t/unit/tools_volnames_test \
	t/unit/tools_session_test t/unit/tools_marker_test \
	t/unit/tools_destroy_test t/unit/tesserad_start_test \
	t/unit/tools_summary_test
check_PROGRAMS += $(TOOLS_BIN_TESTS)
TESTS += $(TOOLS_BIN_TESTS)
TOOLS_BIN_CPPFLAGS = $(AM_CPPFLAGS) \
	-DTESSERA_BIN='"$(abs_top_builddir)/tessera$(EXEEXT)"' \
	-DTESSERAD_BIN='"$(abs_top_builddir)/tesserad$(EXEEXT)"'
t_unit_tools_readonly_test_SOURCES = t/unit/tools_readonly_test.c \
	t/unit/tools_test.h t/unit/tap.h
t_unit_tools_readonly_test_CPPFLAGS = $(TOOLS_BIN_CPPFLAGS)
t_unit_tools_readonly_test_LDADD = $(TESSERA_LIBS)
t_unit_tools_volnames_test_SOURCES = t/unit/tools_volnames_test.c \
	t/unit/tools_test.h t/unit/tap.h
t_unit_tools_volnames_test_CPPFLAGS = $(TOOLS_BIN_CPPFLAGS)
t_unit_tools_volnames_test_LDADD = $(TESSERA_LIBS)
t_unit_tools_session_test_SOURCES = t/unit/tools_session_test.c \
	t/unit/tools_test.h t/unit/tap.h
t_unit_tools_session_test_CPPFLAGS = $(TOOLS_BIN_CPPFLAGS)
t_unit_tools_session_test_LDADD = $(TESSERA_LIBS) -lpthread
t_unit_tools_marker_test_SOURCES = t/unit/tools_marker_test.c \
	t/unit/tools_test.h t/unit/tap.h
t_unit_tools_marker_test_CPPFLAGS = $(TOOLS_BIN_CPPFLAGS)
t_unit_tools_marker_test_LDADD = $(TESSERA_LIBS) -lpthread
t_unit_tools_destroy_test_SOURCES = t/unit/tools_destroy_test.c \
	t/unit/tools_test.h t/unit/tap.h
t_unit_tools_destroy_test_CPPFLAGS = $(TOOLS_BIN_CPPFLAGS)
t_unit_tools_destroy_test_LDADD = $(TESSERA_LIBS) -lpthread
t_unit_tesserad_start_test_SOURCES = t/unit/tesserad_start_test.c \
	t/unit/tools_test.h t/unit/tap.h
t_unit_tesserad_start_test_CPPFLAGS = $(TOOLS_BIN_CPPFLAGS)
t_unit_tesserad_start_test_LDADD = $(TESSERA_LIBS) -lpthread
t_unit_tools_summary_test_SOURCES = t/unit/tools_summary_test.c \
	t/unit/tools_test.h t/unit/tap.h
t_unit_tools_summary_test_CPPFLAGS = $(TOOLS_BIN_CPPFLAGS)
t_unit_tools_summary_test_LDADD = $(TESSERA_LIBS)
t/unit/tools_summary_test.log \
t/unit/tools_readonly_test.log t/unit/tools_volnames_test.log \
	t/unit/tools_session_test.log t/unit/tools_marker_test.log \
	t/unit/tools_destroy_test.log t/unit/tesserad_start_test.log: \
	tessera$(EXEEXT) tesserad$(EXEEXT)
