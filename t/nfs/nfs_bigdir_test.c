/*
 * nfs_bigdir_test.c - 200,000 entries in one directory (created with 64
 * CREATE calls in flight), then READDIRPLUS of the whole directory with
 * a client-typical maxcount while the daemon's memory is sampled (20,000
 * in the sanitizer build, which checks the listing but not the memory).
 *
 * Memory from /proc/PID/status, two figures.  RssAnon, the daemon's
 * anonymous resident memory (heap, stacks, anonymous maps): a server that
 * builds the listing in memory, or caches per-listing state, shows up
 * there.  VmRSS, everything resident, which also counts the pages of
 * LMDB's data file the listing read through its map (page cache, but in
 * the process's RSS until unmapped; the metadata URL's resident= limit,
 * 48 MiB by default, keeps them bounded).  The assertions: the peak of
 * each during the listing exceeds its value before by at most 64 MiB.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t/nfs/tharness.h"

/* TH_BIGDIR_ENTRIES overrides the count.  The sanitizer build lists
 * 20,000 entries: it creates about 300 a second on a 2-core machine, and
 * it does not assert the memory bounds (below), which are what needs the
 * 200,000 of the plain build. */
#ifdef TESSERA_SANITIZERS
static uint64_t NENTRIES = 20000;
#else
static uint64_t NENTRIES = 200000;
#endif
#define LIMIT (64ULL << 20)

static struct th_server srv;
static struct th_conn cn;

/* One memory figure of the daemon (a /proc/PID/status field): its
 * latest value and the highest seen. */
struct mem {
	const char *field;
	uint64_t now, peak;
};

static void
mem_sample(struct mem *m)
{
	m->now = th_server_mem(&srv, m->field);
	if (m->now > m->peak)
		m->peak = m->now;
}

int
main(void)
{
	struct th_obj o;
	struct th_fh dir;
	struct th_dirpage p;
	uint8_t verf[8] = {0};
	uint8_t *seen;
	uint64_t failed, t0, cookie = 0, pages = 0, total = 0, dups = 0;
	uint64_t missing = 0, other = 0, rss0, vm0;
	struct mem anon = {"RssAnon", 0, 0}, all = {"VmRSS", 0, 0};
	bool eof = false;
	int st;

	if (getenv("TH_BIGDIR_ENTRIES"))
		NENTRIES = strtoull(getenv("TH_BIGDIR_ENTRIES"), NULL, 0);
	seen = calloc(NENTRIES ? NENTRIES : 1, 1);

	TH_REQUIRE(th_server_start(&srv, NULL, NULL) == 0, "tesserad started");
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0,
		   "MOUNT / as root");
	st = th_mkdir(&cn, &cn.root, "huge", NULL, &o);
	TH_REQUIRE(st == NFS3_OK, "MKDIR huge");
	dir = o.fh;
	t0 = th_now_ms();
	st = th_bulk_create(&cn, &dir, "entry-", 8, 0, NENTRIES, 64, &failed);
	TH_REQUIRE(st == NFS3_OK,
		   "%llu CREATEs (%llu failed, first %s; "
		   "%llu ms)",
		   (unsigned long long)NENTRIES, (unsigned long long)failed,
		   th_stat_name(st), (unsigned long long)(th_now_ms() - t0));

	mem_sample(&anon);
	mem_sample(&all);
	rss0 = anon.now;
	vm0 = all.now;
	th_diag("before the listing: RssAnon %llu KiB, VmRSS %llu KiB",
		(unsigned long long)(rss0 >> 10),
		(unsigned long long)(vm0 >> 10));
	t0 = th_now_ms();
	while (!eof) {
		st = th_readdirplus(&cn, &dir, cookie, verf, 16384, 65536, &p);
		if (st != NFS3_OK)
			break;
		for (size_t i = 0; i < p.n; i++) {
			unsigned long long k;
			char tail;

			if (sscanf(p.v[i].name, "entry-%llu%c", &k, &tail) ==
				    1 &&
			    k < NENTRIES) {
				if (seen[k])
					dups++;
				seen[k] = 1;
			} else if (strcmp(p.v[i].name, ".") &&
				   strcmp(p.v[i].name, ".."))
				other++;
		}
		total += p.n;
		if (p.n)
			cookie = p.v[p.n - 1].cookie;
		memcpy(verf, p.verf, 8);
		eof = p.eof;
		if (p.n == 0 && !eof) {
			th_diag("empty page without eof");
			th_dirpage_free(&p);
			break;
		}
		th_dirpage_free(&p);
		if (++pages % 25 == 0) {
			mem_sample(&anon);
			mem_sample(&all);
		}
	}
	mem_sample(&anon);
	mem_sample(&all);
	TH_STAT(st, NFS3_OK,
		"READDIRPLUS of %llu entries (%llu pages, "
		"%llu ms)",
		(unsigned long long)NENTRIES, (unsigned long long)pages,
		(unsigned long long)(th_now_ms() - t0));
	for (uint64_t i = 0; i < NENTRIES; i++)
		missing += !seen[i];
	TH_CHECK(eof && missing == 0 && dups == 0 && other == 0,
		 "every entry exactly once (%llu missing, %llu duplicated, "
		 "%llu unexpected, %llu returned)",
		 (unsigned long long)missing, (unsigned long long)dups,
		 (unsigned long long)other, (unsigned long long)total);
	th_diag("RssAnon: before %llu KiB, peak %llu KiB, after %llu KiB",
		(unsigned long long)(rss0 >> 10),
		(unsigned long long)(anon.peak >> 10),
		(unsigned long long)(anon.now >> 10));
	th_diag("VmRSS: before %llu KiB, peak %llu KiB, after %llu KiB",
		(unsigned long long)(vm0 >> 10),
		(unsigned long long)(all.peak >> 10),
		(unsigned long long)(all.now >> 10));
	TH_CHECK(rss0 > 0 && vm0 > 0, "RssAnon and VmRSS could be read");
#ifdef TESSERA_SANITIZERS
	/* ASan keeps freed memory in its quarantine (256 MiB by default),
	 * so the daemon's RssAnon says nothing about its own use: the bound
	 * is asserted by the plain build. */
	th_diag("sanitizer build: memory bounds not asserted (grew %lld "
		"KiB)",
		(long long)(anon.peak - rss0) / 1024);
#else
	TH_CHECK(anon.peak <= rss0 + LIMIT,
		 "server anonymous memory grew by at most 64 MiB during the "
		 "listing (grew %lld KiB)",
		 (long long)(anon.peak - rss0) / 1024);
	TH_CHECK(all.peak <= vm0 + LIMIT,
		 "server resident memory (VmRSS, the metadata map included) "
		 "grew by at most 64 MiB during the listing (grew %lld KiB)",
		 (long long)(all.peak - vm0) / 1024);
#endif
	th_disconnect(&cn);
	free(seen);
	return th_done();
}
