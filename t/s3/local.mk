# S3 integration tests against a throwaway Ceph radosgw (real SigV4
# checks).  t/s3/s3-test.sh starts radosgw with t/s3/radosgw.sh (installing
# it if it can; exit 77 = skipped when it cannot), runs s3_backend_test
# and an end-to-end tessera format + tesserad + nfs-cp on an s3:// volume.
check_PROGRAMS += t/s3/s3_backend_test
t_s3_s3_backend_test_SOURCES = t/s3/s3_backend_test.c t/unit/tap.h
t_s3_s3_backend_test_LDADD = objstore/libobjstore.a lib/libtl.a
TESTS += t/s3/s3-test.sh
dist_check_SCRIPTS += t/s3/s3-test.sh t/s3/radosgw.sh
