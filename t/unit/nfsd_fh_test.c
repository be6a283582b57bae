/*
 * nfsd_fh_test - file handles: round trip, the layout's fixed fields,
 * and rejection (-EBADMSG) of every tampered byte, of truncated and
 * over-long handles, of another volume's handles and of a handle made
 * with another secret.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "nfsd/nfsd-internal.h"
#include "t/unit/tap.h"

static void
volume(struct meta_settings *v, uint8_t seed)
{
	memset(v, 0, sizeof(*v));
	for (int i = 0; i < 16; i++)
		v->uuid[i] = (uint8_t)(seed + i);
	for (int i = 0; i < 32; i++)
		v->secret[i] = (uint8_t)(seed * 3 + i);
}

int
main(void)
{
	struct meta_settings vol, other;
	struct nfsd_fh in = {0x01020304, 0x1122334455667788ULL, 0xdeadbeef};
	struct nfsd_fh out;
	uint8_t fh[NFSD_FH_SIZE], t[NFSD_FH_SIZE + 1];
	int bad = 0;

	volume(&vol, 1);
	nfsd_fh_encode(&vol, &in, fh);
	CHECK(fh[0] == NFSD_FH_VERSION, "version byte first");
	CHECK(memcmp(fh + 1, vol.uuid, 8) == 0, "volume id at 1");
	CHECK(tl_get_be32(fh + 9) == in.export_id &&
		      tl_get_be64(fh + 13) == in.ino &&
		      tl_get_be32(fh + 21) == in.gen,
	      "export, inode, generation big-endian at 9, 13, 21");
	memset(&out, 0, sizeof(out));
	CHECK(nfsd_fh_decode(&vol, fh, sizeof(fh), &out) == 0 &&
		      out.export_id == in.export_id && out.ino == in.ino &&
		      out.gen == in.gen,
	      "round trip");
	CHECK(NFSD_FH_SIZE <= 64, "fits NFS3_FHSIZE");

	for (size_t i = 0; i < sizeof(fh); i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(t, fh, sizeof(fh));
			t[i] ^= (uint8_t)(1 << bit);
			if (nfsd_fh_decode(&vol, t, sizeof(fh), &out) !=
			    -EBADMSG)
				bad++;
		}
	}
	CHECK_EQ(bad, 0, "every single-bit change is rejected");
	CHECK(nfsd_fh_decode(&vol, fh, sizeof(fh) - 1, &out) == -EBADMSG,
	      "truncated handle rejected");
	CHECK(nfsd_fh_decode(&vol, fh, 0, &out) == -EBADMSG,
	      "empty handle rejected");
	memcpy(t, fh, sizeof(fh));
	t[sizeof(fh)] = 0;
	CHECK(nfsd_fh_decode(&vol, t, sizeof(t), &out) == -EBADMSG,
	      "over-long handle rejected");

	volume(&other, 9);
	CHECK(nfsd_fh_decode(&other, fh, sizeof(fh), &out) == -EBADMSG,
	      "another volume's handle rejected");
	memcpy(other.uuid, vol.uuid, sizeof(vol.uuid));
	CHECK(nfsd_fh_decode(&other, fh, sizeof(fh), &out) == -EBADMSG,
	      "same volume id, another secret: rejected");
	nfsd_fh_encode(&other, &in, t);
	CHECK(memcmp(t + 25, fh + 25, 16) != 0, "the MAC depends on the key");
	return tap_done();
}
