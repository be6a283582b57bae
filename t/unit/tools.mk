# Unit tests of tools/ (the tessera command) and of how tesserad starts:
# the real tessera and tesserad binaries on real LMDB and file:// stores
# (t/unit/tools_test.h runs them, from the paths in t/testpaths.h):
# tessera gc end to end, read-only commands create nothing, volumes
# named in a metadata engine that holds several, gateway sessions,
# volume markers, destroy, summaries; how tesserad starts (cache_dirs,
# log_file, file modes).  A test is a name in the list (t/local.mk).
TOOLS_BIN_TESTS = t/unit/tools_gc_test t/unit/tools_readonly_test \
	t/unit/tools_volnames_test t/unit/tools_session_test \
	t/unit/tools_marker_test t/unit/tools_destroy_test \
	t/unit/tesserad_start_test t/unit/tools_summary_test
check_PROGRAMS += $(TOOLS_BIN_TESTS)
TESTS += $(TOOLS_BIN_TESTS)
EXTRA_DIST += t/unit/tools_test.h
TOOLS_BIN_LOGS = $(TOOLS_BIN_TESTS:=.log)
$(TOOLS_BIN_LOGS): tessera$(EXEEXT) tesserad$(EXEEXT)
