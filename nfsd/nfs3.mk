# NFSv3 procedure handlers (filled in by the nfs3 module).
nfsd_libnfsd_a_SOURCES += nfsd/nfs3.c
