# Fuzzing (t/fuzz): five libFuzzer targets, each with its seed corpus in
# t/fuzz/corpus/TARGET and the inputs that once crashed it in
# t/fuzz/regressions/TARGET:
#   rpc        the RPC decode-and-dispatch path (nfsd_dispatch)
#   transport  bytes on a TCP connection to a real server (rpc.c)
#   mount      MOUNT calls from many clients against a full mount list
#   exports    the exports file parser
#   s3xml      the S3 backend's XML parsing
#
# The libFuzzer binaries (t/fuzz/fuzz_TARGET) are built only by
# t/fuzz/run-fuzz.sh, in its own clang build directory (make
# t/fuzz/fuzz_TARGET FUZZ_LDFLAGS=-fsanitize=fuzzer); the normal build
# replays each corpus and its regressions through the same target with
# a plain main (t/fuzz/replay_TARGET), so every input that once crashed
# stays a test.  t/fuzz/gen_corpus writes the rpc, transport and mount
# corpora; the exports and s3xml ones are written by hand.
FUZZ_VOL = t/fuzz/fuzz_vol.c t/fuzz/fuzz_vol.h
EXTRA_DIST += t/fuzz/fuzz_target.h

EXTRA_PROGRAMS = t/fuzz/fuzz_rpc t/fuzz/fuzz_transport t/fuzz/fuzz_mount \
	t/fuzz/fuzz_exports t/fuzz/fuzz_s3xml
t_fuzz_fuzz_rpc_SOURCES = t/fuzz/fuzz_rpc.c $(FUZZ_VOL)
t_fuzz_fuzz_rpc_LDADD = $(TESSERA_LIBS)
t_fuzz_fuzz_rpc_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
t_fuzz_fuzz_transport_SOURCES = t/fuzz/fuzz_transport.c $(FUZZ_VOL)
t_fuzz_fuzz_transport_LDADD = $(TESSERA_LIBS)
t_fuzz_fuzz_transport_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
t_fuzz_fuzz_mount_SOURCES = t/fuzz/fuzz_mount.c $(FUZZ_VOL)
t_fuzz_fuzz_mount_LDADD = $(TESSERA_LIBS)
t_fuzz_fuzz_mount_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
t_fuzz_fuzz_exports_SOURCES = t/fuzz/fuzz_exports.c
t_fuzz_fuzz_exports_LDADD = $(TESSERA_LIBS)
t_fuzz_fuzz_exports_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
t_fuzz_fuzz_s3xml_SOURCES = t/fuzz/fuzz_s3xml.c
t_fuzz_fuzz_s3xml_LDADD = $(TESSERA_LIBS)
t_fuzz_fuzz_s3xml_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)

FUZZ_REPLAYS = t/fuzz/replay_rpc t/fuzz/replay_transport \
	t/fuzz/replay_mount t/fuzz/replay_exports t/fuzz/replay_s3xml
check_PROGRAMS += $(FUZZ_REPLAYS) t/fuzz/gen_corpus
TESTS += $(FUZZ_REPLAYS)
t_fuzz_replay_rpc_SOURCES = t/fuzz/fuzz_rpc.c t/fuzz/fuzz_main.c $(FUZZ_VOL)
t_fuzz_replay_rpc_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_TARGET='"rpc"'
t_fuzz_replay_rpc_LDADD = $(TESSERA_LIBS)
t_fuzz_replay_transport_SOURCES = t/fuzz/fuzz_transport.c \
	t/fuzz/fuzz_main.c $(FUZZ_VOL)
t_fuzz_replay_transport_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_TARGET='"transport"'
t_fuzz_replay_transport_LDADD = $(TESSERA_LIBS)
t_fuzz_replay_mount_SOURCES = t/fuzz/fuzz_mount.c t/fuzz/fuzz_main.c \
	$(FUZZ_VOL)
t_fuzz_replay_mount_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_TARGET='"mount"'
t_fuzz_replay_mount_LDADD = $(TESSERA_LIBS)
t_fuzz_replay_exports_SOURCES = t/fuzz/fuzz_exports.c t/fuzz/fuzz_main.c
t_fuzz_replay_exports_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_TARGET='"exports"'
t_fuzz_replay_exports_LDADD = $(TESSERA_LIBS)
t_fuzz_replay_s3xml_SOURCES = t/fuzz/fuzz_s3xml.c t/fuzz/fuzz_main.c
t_fuzz_replay_s3xml_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_TARGET='"s3xml"'
t_fuzz_replay_s3xml_LDADD = $(TESSERA_LIBS)
t_fuzz_gen_corpus_SOURCES = t/fuzz/gen_corpus.c
t_fuzz_gen_corpus_LDADD = $(TESSERA_LIBS)

EXTRA_DIST += t/fuzz/corpus t/fuzz/regressions
dist_check_SCRIPTS += t/fuzz/run-fuzz.sh
