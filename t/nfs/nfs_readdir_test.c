/*
 * nfs_readdir_test.c - READDIR and READDIRPLUS: cookie streaming with small
 * counts returns every name exactly once, resuming from a cookie is
 * repeatable, READDIRPLUS attributes and handles match LOOKUP, a
 * 20,000-entry directory lists fully, entries created during a listing
 * appear in it, TOOSMALL and NOTDIR.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t/nfs/tharness.h"

static struct th_server srv;
static struct th_conn cn;

/* Which of names fmt(0..n-1) were seen, and how often. */
struct seen {
	uint64_t n;
	uint8_t *count;
	uint64_t other; /* names outside the expected set */
	uint64_t dots;  /* "." and ".." */
	uint64_t pages;
	bool cookie_order_ok;
	bool plus_ok; /* READDIRPLUS: attributes and handle present */
};

static void
seen_init(struct seen *s, uint64_t n)
{
	memset(s, 0, sizeof *s);
	s->n = n;
	s->count = calloc(n ? n : 1, 1);
	s->cookie_order_ok = true;
	s->plus_ok = true;
}

static void
seen_add(struct seen *s, const struct th_dirent *e, bool plus)
{
	unsigned long long i;
	char tail;

	if (strcmp(e->name, ".") == 0 || strcmp(e->name, "..") == 0) {
		s->dots++;
		return;
	}
	if (sscanf(e->name, "f%llu%c", &i, &tail) == 1 && i < s->n) {
		if (s->count[i] < 255)
			s->count[i]++;
	} else
		s->other++;
	if (plus &&
	    (!e->attr_follows || !e->fh_follows || e->attr.fileid != e->fileid))
		s->plus_ok = false;
}

/* List dir completely starting at cookie 0.  Returns the final status.
 * between (may be NULL) is called after the first page. */
static int
list_all(const struct th_fh *dir, bool plus, uint32_t count, struct seen *s,
	 void (*between)(void))
{
	struct th_dirpage p;
	uint64_t cookie = 0, last = 0;
	uint8_t verf[8] = {0};
	int st;

	for (;;) {
		if (plus)
			st = th_readdirplus(&cn, dir, cookie, verf, count / 2,
					    count, &p);
		else
			st = th_readdir(&cn, dir, cookie, verf, count, &p);
		if (st != NFS3_OK)
			return st;
		s->pages++;
		for (size_t i = 0; i < p.n; i++) {
			seen_add(s, &p.v[i], plus);
			if (p.v[i].cookie <= last && last != 0)
				s->cookie_order_ok = false;
			last = p.v[i].cookie;
		}
		if (p.n == 0 && !p.eof) {
			th_diag("a page with no entries and no eof");
			th_dirpage_free(&p);
			return -2;
		}
		cookie = p.n ? p.v[p.n - 1].cookie : cookie;
		memcpy(verf, p.verf, 8);
		bool eof = p.eof;

		th_dirpage_free(&p);
		if (eof)
			return NFS3_OK;
		if (between && s->pages == 1)
			between();
		if (s->pages > 1000000)
			return -3;
	}
}

static uint64_t
seen_missing(const struct seen *s, uint64_t *dups)
{
	uint64_t miss = 0;

	*dups = 0;
	for (uint64_t i = 0; i < s->n; i++) {
		if (s->count[i] == 0)
			miss++;
		else if (s->count[i] > 1)
			(*dups)++;
	}
	return miss;
}

static void
check_listing(const char *what, const struct th_fh *dir, bool plus,
	      uint32_t count, uint64_t n)
{
	struct seen s;
	uint64_t miss, dups;
	int st;

	seen_init(&s, n);
	st = list_all(dir, plus, count, &s, NULL);
	TH_STAT(st, NFS3_OK, "%s: listing completes", what);
	miss = seen_missing(&s, &dups);
	TH_CHECK(miss == 0 && dups == 0 && s.other == 0,
		 "%s: every one of %llu names exactly once (%llu missing, "
		 "%llu duplicated, %llu unexpected, %llu pages)",
		 what, (unsigned long long)n, (unsigned long long)miss,
		 (unsigned long long)dups, (unsigned long long)s.other,
		 (unsigned long long)s.pages);
	TH_CHECK(s.cookie_order_ok, "%s: cookies increase", what);
	if (plus)
		TH_CHECK(s.plus_ok,
			 "%s: every entry has attributes and a "
			 "handle, fileids agree",
			 what);
	free(s.count);
}

static void
test_small(void)
{
	struct th_fh d = th_mkdir_fh(&cn, &cn.root, "small");
	struct th_dirpage p, q;
	struct th_obj o;
	uint64_t failed;
	uint8_t verf[8] = {0};
	int st;

	st = th_bulk_create(&cn, &d, "f", 0, 0, 500, 16, &failed);
	TH_STAT(st, NFS3_OK, "create 500 files");

	st = th_readdir(&cn, &d, 0, verf, 8192, &p);
	TH_STAT(st, NFS3_OK, "READDIR of an empty cookie");
	th_dirpage_free(&p);

	check_listing("READDIR count 512", &d, false, 512, 500);
	check_listing("READDIR count 1024", &d, false, 1024, 500);
	check_listing("READDIR count 65536", &d, false, 65536, 500);
	check_listing("READDIRPLUS maxcount 1024", &d, true, 1024, 500);
	check_listing("READDIRPLUS maxcount 4096", &d, true, 4096, 500);
	check_listing("READDIRPLUS maxcount 32768", &d, true, 32768, 500);

	/* Resuming from the same cookie twice gives the same page. */
	st = th_readdir(&cn, &d, 0, verf, 1024, &p);
	TH_REQUIRE(st == NFS3_OK && p.n > 2 && !p.eof,
		   "READDIR first page of 1024 bytes (%zu entries)", p.n);
	{
		uint64_t ck = p.v[p.n / 2].cookie;
		bool same;

		st = th_readdir(&cn, &d, ck, p.verf, 1024, &q);
		th_dirpage_free(&p);
		TH_STAT(st, NFS3_OK, "READDIR from a middle cookie");
		st = th_readdir(&cn, &d, ck, q.verf, 1024, &p);
		same = st == NFS3_OK && p.n == q.n && p.n > 0;
		for (size_t i = 0; same && i < p.n; i++)
			same = strcmp(p.v[i].name, q.v[i].name) == 0 &&
			       p.v[i].cookie == q.v[i].cookie;
		TH_CHECK(same, "the same cookie gives the same page again");
		th_dirpage_free(&p);
		th_dirpage_free(&q);
	}

	/* READDIRPLUS handle and attributes agree with LOOKUP. */
	st = th_readdirplus(&cn, &d, 0, verf, 4096, 8192, &p);
	TH_REQUIRE(st == NFS3_OK && p.n > 0, "READDIRPLUS first page");
	{
		bool ok = true;

		for (size_t i = 0; i < p.n && ok; i++) {
			if (p.v[i].name[0] == '.')
				continue;
			st = th_lookup(&cn, &d, p.v[i].name, &o);
			ok = st == NFS3_OK && p.v[i].fh_follows &&
			     o.fh.len == p.v[i].fh.len &&
			     memcmp(o.fh.data, p.v[i].fh.data, o.fh.len) == 0 &&
			     o.attr.fileid == p.v[i].attr.fileid &&
			     p.v[i].attr.type == NF3REG &&
			     (p.v[i].attr.mode & 07777) == 0644;
			if (!ok)
				th_diag("entry %s disagrees with LOOKUP",
					p.v[i].name);
		}
		TH_CHECK(ok, "READDIRPLUS handles and attributes match LOOKUP");
	}
	th_dirpage_free(&p);

	st = th_readdir(&cn, &d, 0, verf, 10, &p);
	TH_STAT(st, NFS3ERR_TOOSMALL, "READDIR with count 10");
	th_dirpage_free(&p);
	st = th_readdirplus(&cn, &d, 0, verf, 10, 20, &p);
	TH_STAT(st, NFS3ERR_TOOSMALL, "READDIRPLUS with maxcount 20");
	th_dirpage_free(&p);
	{
		struct th_obj f;

		th_create(&cn, &d, "plain", GUARDED, NULL, NULL, &f);
		st = th_readdir(&cn, &f.fh, 0, verf, 4096, &p);
		TH_STAT(st, NFS3ERR_NOTDIR, "READDIR of a regular file");
		th_dirpage_free(&p);
		st = th_readdirplus(&cn, &f.fh, 0, verf, 4096, 8192, &p);
		TH_STAT(st, NFS3ERR_NOTDIR, "READDIRPLUS of a regular file");
		th_dirpage_free(&p);
	}

	/* Empty directory: eof at once, only dots if any. */
	{
		struct th_fh e = th_mkdir_fh(&cn, &cn.root, "empty");
		bool only_dots = true;

		st = th_readdir(&cn, &e, 0, verf, 4096, &p);
		for (size_t i = 0; i < p.n; i++)
			if (strcmp(p.v[i].name, ".") &&
			    strcmp(p.v[i].name, ".."))
				only_dots = false;
		TH_CHECK(st == NFS3_OK && p.eof && only_dots,
			 "empty directory: eof, nothing but dots (%zu)", p.n);
		th_dirpage_free(&p);
	}
}

static struct th_fh growdir;

static void
add_during_listing(void)
{
	uint64_t failed;
	int st = th_bulk_create(&cn, &growdir, "f", 0, 300, 50, 8, &failed);

	TH_STAT(st, NFS3_OK, "create 50 files in the middle of a listing");
}

static void
test_growing(void)
{
	struct seen s;
	uint64_t failed, miss, dups;
	int st;

	growdir = th_mkdir_fh(&cn, &cn.root, "grow");
	st = th_bulk_create(&cn, &growdir, "f", 0, 0, 300, 16, &failed);
	TH_STAT(st, NFS3_OK, "create 300 files");
	seen_init(&s, 350);
	st = list_all(&growdir, false, 1024, &s, add_during_listing);
	TH_STAT(st, NFS3_OK, "READDIR listing while files are created");
	miss = seen_missing(&s, &dups);
	TH_CHECK(miss == 0 && dups == 0,
		 "all 300 old and 50 new names appear exactly once (%llu "
		 "missing, %llu duplicated)",
		 (unsigned long long)miss, (unsigned long long)dups);
	free(s.count);
}

static void
test_large(void)
{
	struct th_fh d = th_mkdir_fh(&cn, &cn.root, "large");
	uint64_t failed, t0 = th_now_ms();
	int st;

	st = th_bulk_create(&cn, &d, "f", 0, 0, 20000, 64, &failed);
	TH_STAT(st, NFS3_OK, "create 20,000 files (%llu failed, %llu ms)",
		(unsigned long long)failed,
		(unsigned long long)(th_now_ms() - t0));
	check_listing("20,000 entries, READDIR count 4096", &d, false, 4096,
		      20000);
	check_listing("20,000 entries, READDIRPLUS maxcount 65536", &d, true,
		      65536, 20000);
}

int
main(void)
{
	TH_REQUIRE(th_server_start(&srv, NULL, NULL) == 0, "tesserad started");
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0,
		   "MOUNT / as root");
	test_small();
	test_growing();
	test_large();
	th_disconnect(&cn);
	return th_done();
}
