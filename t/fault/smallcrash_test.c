/*
 * smallcrash_test - SIGKILL tesserad in the middle of many small files'
 * COMMITs and check every acknowledged file byte for byte.
 *
 * Four client processes (fork, a connection each) create files in
 * directories of their own as fast as they can: CREATE, WRITE UNSTABLE
 * (pieces of at most 32 KiB), COMMIT, of a size drawn from 1 byte to
 * 96 KiB, most of them small: with the default inline_max (64K) most
 * files keep their bytes in the metadata commit (meta.h, "inline data"),
 * the others in objects, and the commits of the four share LMDB's group
 * commit.  A file whose COMMIT was answered OK is appended to an
 * acknowledgement list (O_APPEND; the test's processes do not crash,
 * only the gateway).  After a random delay the gateway is SIGKILLed;
 * the clients see their connection die and stop.  With the gateway
 * down `tessera fsck` (objects too) must be clean; after the restart
 * every acknowledged file must have its size and every byte.  At the
 * end `tessera gc` reports no leaked object (objects of flushes the
 * kill cut short are younger than its grace: in flight, not leaked).
 *
 * Environment: SMALLCRASH_CYCLES (default 4), TH_SEED.
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t/nfs/tharness.h"

#define CLIENTS 4
#define FMAX    (96 * 1024)
#define PIECE   (32 * 1024)

static struct th_server srv;
static char ackpath[300];

static uint64_t
file_seed(int cycle, int w, int seq)
{
	return ((uint64_t)cycle << 40) ^ ((uint64_t)w << 32) ^ (uint64_t)seq ^
	       0x5eed;
}

/* Mostly small: half the files under 4 KiB, most under 64 KiB. */
static uint32_t
file_size(uint64_t *rng)
{
	uint32_t r = (uint32_t)(th_rand(rng) % 100);

	if (r < 50)
		return 1 + (uint32_t)(th_rand(rng) % 4096);
	if (r < 85)
		return 1 + (uint32_t)(th_rand(rng) % (64 * 1024));
	return 1 + (uint32_t)(th_rand(rng) % FMAX);
}

/* One client process: files c<cycle>-<seq> in directory w<w> until the
 * gateway dies.  Exits with _exit: the harness's exit hooks belong to
 * the parent. */
static void
client(int cycle, int w, uint64_t seed)
{
	static uint8_t buf[FMAX];
	struct th_conn c;
	struct th_obj d, o;
	uint64_t rng = seed | 1;
	char dname[16], name[32], line[64];
	int fd, seq;

	fd = open(ackpath, O_WRONLY | O_APPEND);
	if (fd < 0 || th_connect(&c, srv.port, "/", 0, 0) != 0)
		_exit(1);
	snprintf(dname, sizeof dname, "w%d", w);
	if (th_lookup(&c, &c.root, dname, &d) != NFS3_OK)
		_exit(1);
	for (seq = 0;; seq++) {
		sattr3 sa = th_sattr_mode(0644);
		uint32_t size = file_size(&rng), off;
		COMMIT3res cr;
		int n;

		snprintf(name, sizeof name, "c%d-%d", cycle, seq);
		th_fill(file_seed(cycle, w, seq), buf, size);
		if (th_create(&c, &d.fh, name, UNCHECKED, &sa, NULL, &o) !=
		    NFS3_OK)
			break;
		for (off = 0; off < size; off += PIECE)
			if (th_write(&c, &o.fh, off, buf + off,
				     (size - off < PIECE ? size - off : PIECE),
				     UNSTABLE, NULL) != NFS3_OK)
				goto out;
		if (th_commit(&c, &o.fh, 0, 0, &cr) != NFS3_OK)
			break;
		n = snprintf(line, sizeof line, "%d %d %d %u\n", cycle, w, seq,
			     size);
		if (write(fd, line, (size_t)n) != n)
			_exit(1);
	}
out:
	_exit(0);
}

/* Every acknowledged file of the list, byte for byte; how many. */
static long
verify(struct th_conn *c, long *bad)
{
	static uint8_t want[FMAX], got[FMAX];
	char line[128], dname[16], name[32];
	long n = 0;
	FILE *f = fopen(ackpath, "r");

	*bad = 0;
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL) {
		int cycle, w, seq;
		unsigned size, off = 0, got_n = 0;
		struct th_obj d, o;
		bool eof = false, ok;
		fattr3 a;

		if (sscanf(line, "%d %d %d %u", &cycle, &w, &seq, &size) != 4)
			continue;
		n++;
		snprintf(dname, sizeof dname, "w%d", w);
		snprintf(name, sizeof name, "c%d-%d", cycle, seq);
		th_fill(file_seed(cycle, w, seq), want, size);
		ok = th_lookup(c, &c->root, dname, &d) == NFS3_OK &&
		     th_lookup(c, &d.fh, name, &o) == NFS3_OK &&
		     th_getattr(c, &o.fh, &a) == NFS3_OK && a.size == size;
		while (ok && off < size) {
			ok = th_read(c, &o.fh, off, size - off, got + off,
				     &got_n, &eof) == NFS3_OK &&
			     got_n > 0;
			off += got_n;
		}
		if (!ok || memcmp(want, got, size) != 0) {
			if (*bad < 10)
				th_diag("%s/%s (%u bytes, acknowledged): %s",
					dname, name, size,
					ok ? "wrong bytes"
					   : "missing or short");
			++*bad;
		}
	}
	fclose(f);
	return n;
}

int
main(void)
{
	const char *e = getenv("SMALLCRASH_CYCLES");
	const char *s = getenv("TH_SEED");
	int cycles = e ? atoi(e) : 4;
	uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)getpid();
	uint64_t rng = seed | 1;
	long total = 0;
	struct th_conn c;
	pid_t kids[CLIENTS];
	int fd;

	printf("# seed %llu (TH_SEED=%llu repeats the draws), %d cycles\n",
	       (unsigned long long)seed, (unsigned long long)seed, cycles);
	TH_REQUIRE(th_server_start(&srv, NULL, NULL) == 0, "start tesserad");
	snprintf(ackpath, sizeof ackpath, "%s/acked", srv.dir);
	fd = open(ackpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	TH_REQUIRE(fd >= 0, "acknowledgement list");
	close(fd);
	TH_REQUIRE(th_connect(&c, srv.port, "/", 0, 0) == 0, "connect");
	for (int w = 0; w < CLIENTS; w++) {
		char name[16];
		struct th_obj o;

		snprintf(name, sizeof name, "w%d", w);
		TH_REQUIRE(th_mkdir(&c, &c.root, name, NULL, &o) == NFS3_OK,
			   "mkdir %s", name);
	}
	th_disconnect(&c);
	for (int cy = 1; cy <= cycles; cy++) {
		unsigned ms = 300 + (unsigned)(th_rand(&rng) % 1500);
		long n, bad;

		fflush(stdout);
		for (int w = 0; w < CLIENTS; w++) {
			kids[w] = fork();
			if (kids[w] == 0)
				client(cy, w, th_rand(&rng) + (uint64_t)w);
			if (kids[w] < 0)
				TH_REQUIRE(false, "fork");
		}
		usleep(ms * 1000);
		kill(srv.pid, SIGKILL);
		for (int w = 0; w < CLIENTS; w++)
			waitpid(kids[w], NULL, 0);
		th_server_stop(&srv, true);
		TH_CHECK(th_server_fsck(&srv) == 0,
			 "cycle %d (killed after "
			 "%u ms): fsck clean",
			 cy, ms);
		TH_REQUIRE(th_server_restart(&srv, true) == 0,
			   "cycle %d: restart", cy);
		TH_REQUIRE(th_connect(&c, srv.port, "/", 0, 0) == 0, "connect");
		n = verify(&c, &bad);
		th_disconnect(&c);
		TH_CHECK(n > total && bad == 0,
			 "cycle %d: all %ld "
			 "acknowledged files intact (%ld new, %ld bad)",
			 cy, n, n - total, bad);
		if (bad)
			break;
		total = n;
	}
	th_server_stop(&srv, false);
	TH_CHECK(th_server_fsck(&srv) == 0, "fsck clean at the end");
	{
		int st = th_tessera(&srv, "gc '%s'", srv.meta_url);
		long leaked = th_tool_figure(&srv, "leaked:");

		TH_CHECK(st == 0 && leaked == 0,
			 "tessera gc: no object "
			 "leaked (%ld)",
			 leaked);
	}
	th_server_destroy(&srv);
	return th_done();
}
