# nfsd: RPC transport, XDR, NFSv3, MOUNTv3, exports, handles, tesserad.
#
# XDR: the protocol types come from .x files (nfsd/nfs3_prot.x, written
# from RFC 1813, and nfsd/mount3_prot.x) through rpcgen, so the wire format
# is declared once in the RFC's own language and the encoders are libtirpc's
# well-tested xdr_* primitives; hot paths that rpcgen serves badly (long
# READDIR entry lists) get hand-written routines in nfsd/nfs3*.c.
noinst_LIBRARIES += nfsd/libnfsd.a
sbin_PROGRAMS += tesserad

RPCGEN_X = nfsd/nfs3_prot.x nfsd/mount3_prot.x nfsd/nlm4_prot.x \
	nfsd/nsm_prot.x
EXTRA_DIST += $(RPCGEN_X)
nfsd_gen = nfsd/nfs3_prot.h nfsd/nfs3_prot_xdr.c nfsd/mount3_prot.h \
	nfsd/mount3_prot_xdr.c nfsd/nlm4_prot.h nfsd/nlm4_prot_xdr.c \
	nfsd/nsm_prot.h nfsd/nsm_prot_xdr.c
BUILT_SOURCES += $(nfsd_gen)
# BUILT_SOURCES only works for `make all/check/install`; `make tesserad`
# alone needs the generated headers named as prerequisites.
$(nfsd_libnfsd_a_OBJECTS) $(tesserad_OBJECTS): nfsd/nfs3_prot.h \
	nfsd/mount3_prot.h nfsd/nlm4_prot.h nfsd/nsm_prot.h
CLEANFILES += $(nfsd_gen)

nfsd/%_prot.h: $(srcdir)/nfsd/%_prot.x
	$(AM_V_GEN)$(MKDIR_P) nfsd && rm -f $@ && \
	  (cd $(srcdir) && $(RPCGEN) -h nfsd/$*_prot.x) > $@.tmp && mv $@.tmp $@
# The sed below is part of the recipe: a change to it (this file) must
# regenerate, or an incremental build keeps unbounded decoders.
nfsd/%_prot_xdr.c: $(srcdir)/nfsd/%_prot.x $(srcdir)/nfsd/local.mk
	$(AM_V_GEN)$(MKDIR_P) nfsd && rm -f $@ && \
	  (cd $(srcdir) && $(RPCGEN) -c nfsd/$*_prot.x) | \
	  sed -e 's|xdr_string (xdrs, objp, ~0)|nfsd_xdr_name (xdrs, objp)|' \
	    -e 's|xdr_bytes (\(.*\), ~0)|nfsd_xdr_bytes (\1, ~0)|' \
	  > $@.tmp && mv $@.tmp $@

# rpcgen output is not -Wextra clean (unused variables); compiled apart.
# Its unbounded strings and opaques go through nfsd/xdr_bound.c (the sed
# above), which is part of the same library.
noinst_LIBRARIES += nfsd/libxdrgen.a
nfsd_libxdrgen_a_SOURCES = nfsd/xdr-bound.h nfsd/xdr_bound.c
nodist_nfsd_libxdrgen_a_SOURCES = nfsd/nfs3_prot_xdr.c nfsd/mount3_prot_xdr.c \
	nfsd/nlm4_prot_xdr.c nfsd/nsm_prot_xdr.c
nfsd_libxdrgen_a_CFLAGS = -std=gnu11 $(SAN_CFLAGS) -pthread -w \
	-include $(srcdir)/nfsd/xdr-bound.h

nfsd_libnfsd_a_SOURCES = nfsd/nfsd.h nfsd/nfsd-internal.h nfsd/rpc-internal.h \
	nfsd/server-internal.h nfsd/server.c \
	nfsd/rpc.c nfsd/dispatch.c nfsd/limit.c nfsd/drc.c nfsd/fh.c nfsd/exports.c nfsd/mount3.c \
	nfsd/addr-internal.h nfsd/addr.c nfsd/counters-internal.h nfsd/counters.c \
	nfsd/nfs3_status.h \
	nfsd/config.c nfsd/metrics-internal.h nfsd/metrics.c \
	nfsd/nlm-internal.h nfsd/nlm4.c nfsd/lockd.c nfsd/callback.c \
	nfsd/udp.c nfsd/backup.c nfsd/billing.c
nodist_nfsd_libnfsd_a_SOURCES = nfsd/nfs3_prot.h nfsd/mount3_prot.h \
	nfsd/nlm4_prot.h nfsd/nsm_prot.h

include nfsd/nfs3.mk

tesserad_SOURCES = nfsd/main.c
tesserad_LDADD = $(TESSERA_LIBS)

dist_man_MANS += man/tesserad.8 man/tessera.conf.5
