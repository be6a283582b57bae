/*
 * nfs_pending_test.c - pending_bytes (meta.h, struct meta_usage; the
 * tessera_volume_pending_delete_bytes gauge) is exact while the purge of
 * a large removed file runs.  A sparse file with one byte in each of 600
 * chunks has more keys than one step of the deletion job purges (512),
 * so its purge takes several transactions; the job is paced at 2
 * transactions a second and the store refuses every delete (the fault
 * wrapper), so the released slices stay pending.  Polled all along, the
 * figure is only ever 0 (before the remove), the file's size (until
 * the purge ends: the slices released count in place of as much of the
 * size) or the 600 bytes of its slices (after); never a slice counted
 * on top of the size.  fsck finds the counter right.
 * The polls wait for a state, never for a time to pass.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "t/nfs/tharness.h"

#define NCHUNKS 600u
#define CHUNK (64ULL << 20)
#define PENDING "tessera_volume_pending_delete_bytes{volume=\"tvol\"}"

int
main(void)
{
	const unsigned long long size = (NCHUNKS - 1) * CHUNK + 1;
	struct th_server s;
	struct th_conn cn;
	struct th_obj o;
	sattr3 sa = th_sattr_mode(0644);
	char ctl[300], args[600];
	double v = -1, worst = 0;
	size_t samples = 0, mid = 0, bad = 0;
	uint8_t byte = 0x5a;

	TH_REQUIRE(th_server_start(&s, "--block-size 64K", NULL) == 0,
		   "start tesserad");
	snprintf(ctl, sizeof ctl, "%s/fault.ctl", s.dir);
	th_server_stop(&s, false);
	TH_REQUIRE(th_tessera(&s, "config %s --storage 'fault(ctl=%s):%s'",
			      s.meta_url, ctl, s.storage_url) == 0,
		   "storage behind the fault wrapper");
	th_store_faults(ctl, "ops=del err=1");
	snprintf(args, sizeof args, "-o inline_max=0 -o bgjob_txn_rate=2 "
		 "--metrics-listen 127.0.0.1:0");
	th_server_set_args(&s, args);
	TH_REQUIRE(th_server_restart(&s, false) == 0, "restart");
	TH_REQUIRE(th_connect(&cn, s.port, "/", 0, 0) == 0, "connect");
	TH_REQUIRE(th_create(&cn, &cn.root, "sparse", GUARDED, &sa, NULL,
			     &o) == 0 && o.fh_follows, "create sparse");
	for (unsigned i = 0; i < NCHUNKS; i++)
		if (th_write(&cn, &o.fh, i * CHUNK, &byte, 1, FILE_SYNC,
			     NULL) != 0) {
			TH_CHECK(false, "write 1 byte in chunk %u", i);
			break;
		}
	TH_REQUIRE(th_server_metric(&s, PENDING, &v) == 0 && v == 0,
		   "nothing pending before the remove (%g)", v);
	TH_STAT(th_remove(&cn, &cn.root, "sparse"), 0, "remove sparse");
	for (int i = 0; i < TH_STALL_MS / 20 && v != NCHUNKS; i++) {
		if (th_server_metric(&s, PENDING, &v) != 0)
			continue;
		samples++;
		if (v != 0 && v != (double)size && v != NCHUNKS) {
			bad++;
			if (v > worst)
				worst = v;
		}
		mid += v == (double)size;
		usleep(20000);
	}
	th_diag("%zu samples, %zu of them while the file was being purged",
		samples, mid);
	TH_CHECK(bad == 0, "pending bytes only ever 0, %llu or %u (%zu "
		 "samples otherwise, up to %.0f)", size, NCHUNKS, bad, worst);
	TH_CHECK(v == NCHUNKS, "the purge over: the %u bytes of its slices "
		 "are pending (%g)", NCHUNKS, v);
	th_disconnect(&cn);
	th_server_stop(&s, false);
	TH_CHECK(th_server_fsck(&s) == 0, "fsck: the counters agree");
	th_server_destroy(&s);
	return th_done();
}
