# Benchmarks (bench/README): the libnfs load generator is built with the
# rest when libnfs is there; nothing here runs under `make check`.
if HAVE_LIBNFS
noinst_PROGRAMS += bench/nfsload
bench_nfsload_SOURCES = bench/nfsload.c
bench_nfsload_CPPFLAGS = $(AM_CPPFLAGS) $(NFS_CFLAGS)
bench_nfsload_LDADD = $(NFS_LIBS)
endif
# tessera dump / load of a million files, and LMDB's growth meanwhile.
noinst_PROGRAMS += bench/dump_meta
bench_dump_meta_SOURCES = bench/dump_meta.c
bench_dump_meta_LDADD = meta/libmeta.a lib/libtl.a $(LMDB_LIBS)
# The metadata layer on raft:// beside LMDB, in one process.
noinst_PROGRAMS += bench/raft_meta
bench_raft_meta_SOURCES = bench/raft_meta.c
bench_raft_meta_LDADD = meta/libmeta.a lib/libtl.a $(LMDB_LIBS)
EXTRA_DIST += bench/README bench/run.sh bench/report.py \
	bench/ganesha.conf.in bench/profile.sh bench/readahead.sh bench/readahead_reader.c \
	bench/raft.sh bench/common.sh
