# Benchmarks (bench/README): the libnfs load generator is built with the
# rest when libnfs is there; nothing here runs under `make check`.
if HAVE_LIBNFS
noinst_PROGRAMS += bench/nfsload
bench_nfsload_SOURCES = bench/nfsload.c
bench_nfsload_CPPFLAGS = $(AM_CPPFLAGS) $(NFS_CFLAGS)
bench_nfsload_LDADD = $(NFS_LIBS)
endif
EXTRA_DIST += bench/README bench/run.sh bench/report.py \
	bench/ganesha.conf.in bench/profile.sh bench/readahead.sh bench/readahead_reader.c
