check_PROGRAMS += t/unit/lib_util_test
TESTS += t/unit/lib_util_test
t_unit_lib_util_test_SOURCES = t/unit/lib_util_test.c t/unit/tap.h
t_unit_lib_util_test_LDADD = lib/libtl.a

# The intrusive hash table every module's tables use.
check_PROGRAMS += t/unit/lib_htab_test
TESTS += t/unit/lib_htab_test
t_unit_lib_htab_test_SOURCES = t/unit/lib_htab_test.c t/unit/tap.h
t_unit_lib_htab_test_LDADD = lib/libtl.a
