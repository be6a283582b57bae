/*
 * nfs_ratelimit_test.c - the gateway's bandwidth limits (upload_limit,
 * download_limit in tessera.conf) slow the object-store traffic of a real
 * tesserad, and SIGHUP lifts them on the running gateway.
 *
 * Only lower bounds on elapsed time are asserted: a limit guarantees that
 * data cannot move faster than the rate, while a loaded machine can only
 * make things slower, so the checks do not flake on shared machines.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t/nfs/tharness.h"

#define MiB  (1024ULL * 1024)
#define SIZE (4 * MiB)

static struct th_server srv;
static struct th_conn cn;

/* Write SIZE bytes with FILE_SYNC writes of 1 MiB; milliseconds taken. */
static uint64_t
write_file(const char *name, const uint8_t *data, struct th_fh *fh)
{
	struct th_obj o;
	uint64_t t0;
	int st = th_create(&cn, &cn.root, name, GUARDED, NULL, NULL, &o);

	TH_REQUIRE(st == NFS3_OK && o.fh_follows, "CREATE %s (%s)", name,
		   th_stat_name(st));
	*fh = o.fh;
	t0 = th_now_ms();
	for (uint64_t off = 0; off < SIZE; off += MiB) {
		st = th_write(&cn, fh, off, data + off, MiB, FILE_SYNC, NULL);
		TH_REQUIRE(st == NFS3_OK, "FILE_SYNC WRITE at %llu: %s",
			   (unsigned long long)off, th_stat_name(st));
	}
	return th_now_ms() - t0;
}

static bool
reads_back(const struct th_fh *fh, const uint8_t *want)
{
	static uint8_t buf[MiB];

	for (uint64_t off = 0; off < SIZE; off += MiB) {
		uint32_t got = 0;
		int st = th_read(&cn, fh, off, MiB, buf, &got, NULL);

		if (st != NFS3_OK || got != MiB ||
		    memcmp(buf, want + off, MiB) != 0)
			return false;
	}
	return true;
}

int
main(void)
{
	uint8_t *data = malloc(SIZE);
	struct th_fh fh;
	uint64_t ms;
	char conf[400];
	FILE *f;

	TH_REQUIRE(data != NULL, "memory");
	th_fill(7, data, SIZE);
	TH_REQUIRE(th_server_start(&srv, NULL, NULL) == 0, "tesserad started");

	/* 2 MiB/s both ways: 4 MiB cannot move in less than ~1.9 s (the
	 * token bucket allows a burst of 100 ms worth). */
	snprintf(conf, sizeof conf, "%s/tessera.conf", srv.dir);
	f = fopen(conf, "w");
	TH_REQUIRE(f != NULL, "write %s", conf);
	fprintf(f, "upload_limit = 2M\ndownload_limit = 2M\n");
	fclose(f);
	char args[420];
	snprintf(args, sizeof args, "-c %s", conf);
	th_server_set_args(&srv, args);
	TH_REQUIRE(th_server_restart(&srv, false) == 0,
		   "restarted with upload_limit = download_limit = 2M");
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0, "MOUNT /");

	ms = write_file("limited", data, &fh);
	th_diag("4 MiB stored in %llu ms at 2 MiB/s", (unsigned long long)ms);
	TH_CHECK(ms >= 1500,
		 "uploads are held to upload_limit "
		 "(4 MiB took %llu ms, at least 1500 expected)",
		 (unsigned long long)ms);

	/* A restart empties the gateway's memory, so reads come from the
	 * store, through the download limit. */
	TH_REQUIRE(th_server_restart(&srv, false) == 0, "restart");
	th_disconnect(&cn);
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0, "MOUNT /");
	struct th_obj o;
	TH_REQUIRE(th_lookup(&cn, &cn.root, "limited", &o) == NFS3_OK &&
			   o.fh_follows,
		   "LOOKUP limited");
	fh = o.fh;
	uint64_t t0 = th_now_ms();
	TH_CHECK(reads_back(&fh, data), "limited data reads back");
	ms = th_now_ms() - t0;
	th_diag("4 MiB read in %llu ms at 2 MiB/s", (unsigned long long)ms);
	TH_CHECK(ms >= 1500,
		 "downloads are held to download_limit "
		 "(took %llu ms, at least 1500 expected)",
		 (unsigned long long)ms);

	/* Lift the limits with SIGHUP: the gateway keeps running (same
	 * connection) and the data stays right. */
	f = fopen(conf, "w");
	TH_REQUIRE(f != NULL, "rewrite %s", conf);
	fprintf(f, "upload_limit = 0\ndownload_limit = 0\n");
	fclose(f);
	TH_REQUIRE(kill(srv.pid, SIGHUP) == 0, "SIGHUP");
	usleep(300 * 1000);
	ms = write_file("unlimited", data, &fh);
	th_diag("4 MiB stored in %llu ms without a limit",
		(unsigned long long)ms);
	TH_CHECK(th_null(&cn) == NFS3_OK, "the gateway still answers after "
					  "SIGHUP");
	TH_CHECK(reads_back(&fh, data), "unlimited data reads back");

	th_disconnect(&cn);
	th_server_destroy(&srv);
	free(data);
	return th_done();
}
