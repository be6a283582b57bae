/*
 * nfsd_mount_xdr_test - MOUNT v3 types from mount3_prot.x encode to the
 * bytes RFC 1813 appendix I prescribes and decode back; the server's
 * mount list keeps one entry per client and path, renews it on MNT,
 * forgets it after NFSD_MOUNTS_TTL_NS and holds at most NFSD_MOUNTS_MAX
 * (DUMP over TCP is in nfsd_hostile_test).
 */
#include "config.h"

#include <string.h>

#include "nfsd/mount3_prot.h"
#include "nfsd/rpc-internal.h"
#include "lib/tl.h"
#include "t/unit/tap.h"

static void
test_mount_list(void)
{
	const uint64_t t0 = 1000, ttl = NFSD_MOUNTS_TTL_NS;
	char host[32];

	nfsd_mnt3_reset();
	nfsd_mounts_add("10.0.0.1", "/a", t0);
	nfsd_mounts_add("10.0.0.1", "/b", t0);
	nfsd_mounts_add("10.0.0.2", "/a", t0);
	nfsd_mounts_add("10.0.0.1", "/a", t0 + 1);
	CHECK_EQ(nfsd_mounts_count(t0 + 1), 3, "one entry per client and path");
	nfsd_mounts_add("10.0.0.2", "/a", t0 + ttl / 2);
	CHECK_EQ(nfsd_mounts_count(t0 + ttl + 1), 1,
		 "entries not renewed within the TTL are forgotten");
	CHECK_EQ(nfsd_mounts_count(t0 + ttl / 2 + ttl), 0,
		 "the renewed one a TTL after its last MNT");
	for (unsigned i = 0; i < NFSD_MOUNTS_MAX + 10; i++) {
		snprintf(host, sizeof(host), "10.1.%u.%u", i / 256, i % 256);
		nfsd_mounts_add(host, "/", t0 + i);
	}
	CHECK_EQ(nfsd_mounts_count(t0 + NFSD_MOUNTS_MAX + 10), NFSD_MOUNTS_MAX,
		 "at most NFSD_MOUNTS_MAX entries");
	nfsd_mounts_del("10.1.0.9", "/");
	CHECK_EQ(nfsd_mounts_count(t0 + NFSD_MOUNTS_MAX + 10), NFSD_MOUNTS_MAX,
		 "the oldest were the ones dropped");
	nfsd_mounts_del("10.1.0.10", NULL);
	CHECK_EQ(nfsd_mounts_count(t0 + NFSD_MOUNTS_MAX + 10),
		 NFSD_MOUNTS_MAX - 1, "UMNTALL removes a client's entries");
	nfsd_mnt3_reset();
}

int
main(void)
{
	char buf[512], fh[41];
	int flavors[1] = {AUTH_SYS};
	mountres3 in, out;
	struct groupnode g2 = {"10.0.0.0/8", NULL}, g1 = {"*", &g2};
	struct exportnode e = {"/data", &g1, NULL};
	struct mnt3_export_res ex = {&e}, ex2;
	struct mountbody mb = {"10.0.0.5", "/data", NULL};
	struct mnt3_dump_res du = {&mb}, du2;
	XDR x;
	u_int n;

	memset(fh, 0xab, sizeof(fh));
	memset(&in, 0, sizeof(in));
	in.fhs_status = MNT3_OK;
	in.mountres3_u.mountinfo.fhandle.mnt3_fhandle_len = sizeof(fh);
	in.mountres3_u.mountinfo.fhandle.mnt3_fhandle_val = fh;
	in.mountres3_u.mountinfo.auth_flavors.auth_flavors_len = 1;
	in.mountres3_u.mountinfo.auth_flavors.auth_flavors_val = flavors;
	xdrmem_create(&x, buf, sizeof(buf), XDR_ENCODE);
	CHECK_FATAL(xdr_mountres3(&x, &in), "mountres3 encodes");
	n = xdr_getpos(&x);
	CHECK_EQ(n, 4 + 4 + 44 + 4 + 4, "status, fh len, 41+3 pad, flavors");
	CHECK(tl_get_be32((uint8_t *)buf) == 0 &&
		      tl_get_be32((uint8_t *)buf + 4) == 41 &&
		      buf[8 + 41] == 0 &&
		      tl_get_be32((uint8_t *)buf + 52) == 1 &&
		      tl_get_be32((uint8_t *)buf + 56) == AUTH_SYS,
	      "wire layout");
	xdr_destroy(&x);
	memset(&out, 0, sizeof(out));
	xdrmem_create(&x, buf, n, XDR_DECODE);
	CHECK(xdr_mountres3(&x, &out) && out.fhs_status == MNT3_OK &&
		      memcmp(out.mountres3_u.mountinfo.fhandle.mnt3_fhandle_val,
			     fh, sizeof(fh)) == 0,
	      "mountres3 round trip");
	xdr_free((xdrproc_t)xdr_mountres3, (char *)&out);
	xdr_destroy(&x);

	in.fhs_status = MNT3ERR_ACCES;
	xdrmem_create(&x, buf, sizeof(buf), XDR_ENCODE);
	CHECK(xdr_mountres3(&x, &in) && xdr_getpos(&x) == 4,
	      "an error mountres3 is the status alone");
	xdr_destroy(&x);

	xdrmem_create(&x, buf, sizeof(buf), XDR_ENCODE);
	CHECK_FATAL(xdr_mnt3_export_res(&x, &ex), "export list encodes");
	n = xdr_getpos(&x);
	/* follows, dir, follows, "*", follows, "10.0.0.0/8", end, end */
	CHECK_EQ(n, 4 + 4 + 8 + 4 + 4 + 4 + 4 + 4 + 12 + 4 + 4,
		 "export list size");
	xdr_destroy(&x);
	memset(&ex2, 0, sizeof(ex2));
	xdrmem_create(&x, buf, n, XDR_DECODE);
	CHECK(xdr_mnt3_export_res(&x, &ex2) && ex2.list &&
		      strcmp(ex2.list->ex_dir, "/data") == 0 &&
		      strcmp(ex2.list->ex_groups->gr_next->gr_name,
			     "10.0.0.0/8") == 0 &&
		      ex2.list->ex_next == NULL,
	      "export list round trip");
	xdr_free((xdrproc_t)xdr_mnt3_export_res, (char *)&ex2);
	xdr_destroy(&x);

	xdrmem_create(&x, buf, sizeof(buf), XDR_ENCODE);
	CHECK_FATAL(xdr_mnt3_dump_res(&x, &du), "mount list encodes");
	n = xdr_getpos(&x);
	xdr_destroy(&x);
	memset(&du2, 0, sizeof(du2));
	xdrmem_create(&x, buf, n, XDR_DECODE);
	CHECK(xdr_mnt3_dump_res(&x, &du2) && du2.list &&
		      strcmp(du2.list->ml_hostname, "10.0.0.5") == 0 &&
		      strcmp(du2.list->ml_directory, "/data") == 0,
	      "mount list round trip");
	xdr_free((xdrproc_t)xdr_mnt3_dump_res, (char *)&du2);
	xdr_destroy(&x);
	test_mount_list();
	return tap_done();
}
