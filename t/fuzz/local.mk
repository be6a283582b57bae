# Fuzzing of the RPC decode-and-dispatch path (t/fuzz/fuzz_rpc.c).
#
# The libFuzzer binary is built only by t/fuzz/run-fuzz.sh, in its own
# clang build directory (make t/fuzz/fuzz_rpc FUZZ_LDFLAGS=
# -fsanitize=fuzzer); the normal build replays the seed corpus and the
# regression inputs through the same target with a plain main
# (t/fuzz/fuzz_replay), so every input that once crashed stays a test.
EXTRA_PROGRAMS = t/fuzz/fuzz_rpc
t_fuzz_fuzz_rpc_SOURCES = t/fuzz/fuzz_rpc.c
t_fuzz_fuzz_rpc_LDADD = $(TESSERA_LIBS)
t_fuzz_fuzz_rpc_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)

check_PROGRAMS += t/fuzz/fuzz_replay t/fuzz/gen_corpus
TESTS += t/fuzz/fuzz_replay
t_fuzz_fuzz_replay_SOURCES = t/fuzz/fuzz_rpc.c t/fuzz/fuzz_main.c
t_fuzz_fuzz_replay_LDADD = $(TESSERA_LIBS)
t_fuzz_gen_corpus_SOURCES = t/fuzz/gen_corpus.c
t_fuzz_gen_corpus_LDADD = $(TESSERA_LIBS)

EXTRA_DIST += t/fuzz/corpus t/fuzz/regressions
dist_check_SCRIPTS += t/fuzz/run-fuzz.sh
