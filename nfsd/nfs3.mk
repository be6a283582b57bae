# NFSv3 (RFC 1813): procedure table, handlers and the iterative XDR of
# READDIR replies.  The protocol types come from nfsd/nfs3_prot.x via the
# rpcgen rules in nfsd/local.mk.
nfsd_libnfsd_a_SOURCES += nfsd/nfs3-internal.h nfsd/nfs3.c \
	nfsd/nfs3_data.c nfsd/nfs3_dir.c nfsd/nfs3_readdir.c nfsd/nfs3_xdr.c

check_PROGRAMS += t/unit/nfs3_xdr_test
TESTS += t/unit/nfs3_xdr_test
t_unit_nfs3_xdr_test_SOURCES = t/unit/nfs3_xdr_test.c
t_unit_nfs3_xdr_test_LDADD = $(TESSERA_LIBS)

check_PROGRAMS += t/unit/nfs3_handlers_test
TESTS += t/unit/nfs3_handlers_test
t_unit_nfs3_handlers_test_SOURCES = t/unit/nfs3_handlers_test.c
t_unit_nfs3_handlers_test_LDADD = $(TESSERA_LIBS)
