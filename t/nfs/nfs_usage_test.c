/*
 * nfs_usage_test.c - the volume's usage counters (meta.h, struct
 * meta_usage; the tessera_volume_* gauges) stay exact:
 *
 * 1. pending_bytes while the purge of a large removed file runs.  A
 *    sparse file with one byte in each of 600 chunks has more keys than
 *    one step of the deletion job purges (512), so its purge takes
 *    several transactions; the job is paced at 5 transactions a second
 *    and the store refuses every delete (the fault wrapper), so the
 *    released slices stay pending.  Polled all along, the figure is
 *    only ever 0 (before the remove), the file's size (until the purge
 *    ends: the slices released count in place of as much of the size)
 *    or the 600 bytes of its slices (after); never a slice counted on
 *    top of the size.  fsck finds the counter right.
 *
 * 2. A volume whose counters are not marked exact (formatted before
 *    they existed) gets them recounted online by the gateway holding
 *    the background-job lease (meta.h, meta_usage_recount).  Files
 *    written through NFS, one removed into the trash; the gateway
 *    stopped, the byte counters and their marker deleted from the LMDB
 *    file (mdb_dump, the records filtered out, mdb_load: what a volume
 *    formatted before them looks like); the gateway started again logs
 *    that it recounts, then the figures, and its gauges show the exact
 *    logical, stored, trash and pending bytes; fsck agrees.  A restart
 *    does not recount again.
 *
 * The polls wait for a state or a log line, never for a time to pass.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t/nfs/tharness.h"

#define NCHUNKS       600u
#define CHUNK         (64ULL << 20)
#define PENDING_BYTES "tessera_volume_pending_delete_bytes{volume=\"tvol\"}"
#define A_SIZE        100000u
#define B_SIZE        50000u
#define DONE          "they are exact from now on"
/* counter names in hex */
#define LOGICAL "6c6f676963616c6279746573"
#define STORED  "73746f7265646279746573"
#define TRASH   "74726173686279746573"
#define PENDING "70656e64696e676279746573"
#define VALID   "757361676576616c6964"

static uint8_t data[A_SIZE];

static void
mkfile(struct th_conn *cn, const char *name, uint32_t size)
{
	sattr3 sa = th_sattr_mode(0644);
	struct th_obj o;

	TH_REQUIRE(th_create(cn, &cn->root, name, GUARDED, &sa, NULL, &o) ==
				   0 &&
			   o.fh_follows,
		   "create %s", name);
	TH_REQUIRE(th_write(cn, &o.fh, 0, data, size, FILE_SYNC, NULL) == 0,
		   "write %u bytes to %s", size, name);
}

static void
gauge(const struct th_server *s, const char *name, double want)
{
	char series[200];
	double v = -1;

	snprintf(series, sizeof series, "tessera_volume_%s{volume=\"tvol\"}",
		 name);
	TH_CHECK(th_server_metric(s, series, &v) == 0 && v == want,
		 "%s: %.0f (%.0f)", name, want, v);
}

/* 1. */
static void
pending(void)
{
	const unsigned long long size = (NCHUNKS - 1) * CHUNK + 1;
	struct th_server s;
	struct th_conn cn;
	struct th_obj o;
	sattr3 sa = th_sattr_mode(0644);
	char ctl[300];
	double v = -1, worst = 0;
	size_t samples = 0, mid = 0, bad = 0;
	uint8_t byte = 0x5a;

	TH_REQUIRE(th_server_start(&s, "--block-size 64K", NULL) == 0,
		   "1: start tesserad");
	th_server_fault_store(&s, "ops=del err=1", ctl, sizeof ctl);
	th_server_set_args(&s, "-o inline_max=0 -o bgjob_txn_rate=5 "
			       "--metrics-listen 127.0.0.1:0");
	TH_REQUIRE(th_server_restart(&s, false) == 0, "restart");
	TH_REQUIRE(th_connect(&cn, s.port, "/", 0, 0) == 0, "connect");
	TH_REQUIRE(th_create(&cn, &cn.root, "sparse", GUARDED, &sa, NULL, &o) ==
				   0 &&
			   o.fh_follows,
		   "create sparse");
	for (unsigned i = 0; i < NCHUNKS; i++)
		if (th_write(&cn, &o.fh, i * CHUNK, &byte, 1, FILE_SYNC,
			     NULL) != 0) {
			TH_CHECK(false, "write 1 byte in chunk %u", i);
			break;
		}
	TH_REQUIRE(th_server_metric(&s, PENDING_BYTES, &v) == 0 && v == 0,
		   "nothing pending before the remove (%g)", v);
	TH_STAT(th_remove(&cn, &cn.root, "sparse"), 0, "remove sparse");
	for (int i = 0; i < TH_STALL_MS / 20 && v != NCHUNKS; i++) {
		if (th_server_metric(&s, PENDING_BYTES, &v) != 0)
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
	TH_CHECK(bad == 0,
		 "pending bytes only ever 0, %llu or %u (%zu "
		 "samples otherwise, up to %.0f)",
		 size, NCHUNKS, bad, worst);
	TH_CHECK(v == NCHUNKS,
		 "the purge over: the %u bytes of its slices "
		 "are pending (%g)",
		 NCHUNKS, v);
	th_disconnect(&cn);
	th_server_stop(&s, false);
	TH_CHECK(th_server_fsck(&s) == 0, "fsck: the counters agree");
	th_server_destroy(&s);
}

/* 2. */
static void
recount(void)
{
	struct th_server s;
	struct th_conn cn;
	char cmd[2000];

	th_fill(3, data, sizeof data);
	TH_REQUIRE(th_server_start(&s, "--block-size 64K --trash-days 1",
				   NULL) == 0,
		   "2: start tesserad");
	th_server_set_args(&s, "-o inline_max=0 --metrics-listen 127.0.0.1:0");
	TH_REQUIRE(th_server_restart(&s, false) == 0, "restart");
	TH_REQUIRE(th_connect(&cn, s.port, "/", 0, 0) == 0, "connect");
	mkfile(&cn, "a", A_SIZE);
	mkfile(&cn, "b", B_SIZE);
	TH_STAT(th_remove(&cn, &cn.root, "b"), 0, "remove b: into the trash");
	th_disconnect(&cn);
	th_server_stop(&s, false);
	TH_CHECK(th_server_log_count(&s, "recounting") == 0,
		 "a new volume's counters need no recount");

	/* The counters and the marker out of the LMDB file: mdb_dump's
	 * hex lines, key and value, without the pairs of the keys
	 * "tvol\0C" + logicalbytes, storedbytes, trashbytes, pendingbytes
	 * or usagevalid. */
	snprintf(cmd, sizeof cmd,
		 "set -e; cd '%s'; mdb_dump meta > meta.txt; "
		 "awk '/^db_pagesize=/ { next } "
		 "/^HEADER=END/ { print; body = 1; next } "
		 "!body || /^DATA=END/ { print; next } "
		 "n++ %% 2 == 0 { key = $0; next } "
		 "key !~ /^ 74766f6c0043(%s|%s|%s|%s|%s)$/ { print key; print "
		 "}' "
		 "meta.txt > kept.txt; "
		 "grep -q '^ 74766f6c0043%s$' meta.txt; "
		 "! grep -q '^ 74766f6c0043\\(%s\\|%s\\)$' kept.txt; "
		 "rm -rf meta2; mkdir meta2; mdb_load -f kept.txt meta2; "
		 "rm -rf meta; mv meta2 meta",
		 s.dir, LOGICAL, STORED, TRASH, PENDING, VALID, VALID, LOGICAL,
		 VALID);
	TH_REQUIRE(system(cmd) == 0, "the counter records deleted (a "
				     "counter at 0 has none)");

	TH_REQUIRE(th_server_restart(&s, false) == 0, "start again");
	for (int i = 0;
	     i < TH_STALL_MS / 100 && th_server_log_count(&s, DONE) == 0; i++)
		usleep(100000);
	TH_CHECK(th_server_log_count(&s, "are not marked exact") == 1,
		 "the gateway says it recounts");
	TH_REQUIRE(th_server_log_count(&s, DONE) == 1, "it recounted");
	TH_CHECK(th_server_log_count(&s, "recounted: logical bytes 100000 "
					 "(the counter said 0") == 1,
		 "it logs the figures");
	gauge(&s, "logical_bytes", A_SIZE);
	gauge(&s, "stored_bytes", A_SIZE + B_SIZE);
	gauge(&s, "trash_logical_bytes", B_SIZE);
	gauge(&s, "pending_delete_bytes", 0);

	TH_REQUIRE(th_server_restart(&s, false) == 0, "restart");
	TH_REQUIRE(th_connect(&cn, s.port, "/", 0, 0) == 0, "connect");
	th_disconnect(&cn);
	TH_CHECK(th_server_log_count(&s, "are not marked exact") == 1,
		 "the marker holds: no second recount");
	th_server_stop(&s, false);
	TH_CHECK(th_server_fsck(&s) == 0, "fsck: the counters are exact");
	th_server_destroy(&s);
}

int
main(void)
{
	pending();
	recount();
	return th_done();
}
