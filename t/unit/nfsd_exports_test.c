/*
 * nfsd_exports_test - the exports file: syntax, options, errors naming
 * the line, client matching (first match wins, CIDR, IPv4-mapped IPv6,
 * "*"), lookups by id and path, and the built-in default.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nfsd/nfsd-internal.h"
#include "t/unit/tap.h"

static struct sockaddr_storage
addr(const char *a, unsigned port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(a, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, a, &s6->sin6_addr);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		inet_pton(AF_INET, a, &s4->sin_addr);
	}
	return ss;
}

static const char *
match(const struct nfsd_export *e, const char *a)
{
	struct sockaddr_storage ss = addr(a, 700);
	const struct nfsd_client_rule *r = nfsd_export_match(e, &ss);

	return r != NULL ? r->pattern : "(none)";
}

static void
test_parse_and_match(void)
{
	static const char text[] =
		"# tenants\n"
		"/       127.0.0.1(rw,no_root_squash,insecure)\n"
		"/data// 10.1.2.3(rw) 10.0.0.0/8(ro,all_squash,anonuid=7,"
		"anongid=8) \\\n"
		"        fd00::/8(rw)   *(ro)  # the rest\n"
		"\n"
		"/pub -rw,insecure,async *  192.168.0.0/16(ro,sync,"
		"no_subtree_check) localhost\n"
		"/fixed 127.0.0.1(fsid=42)\n";
	struct nfsd_exports ex;
	struct nfsd_export *d, *pub;
	const struct nfsd_client_rule *r;
	char *err = NULL;
	int rc;

	rc = nfsd_exports_parse(text, "exports", &ex, &err);
	CHECK_FATAL(rc == 0, "a valid exports file parses (%s)",
		    err ? err : "");
	CHECK_EQ(ex.n, 4, "four exports");
	CHECK(strcmp(ex.v[0].path, "/") == 0, "root export");
	d = nfsd_export_by_path(&ex, "/data");
	CHECK_FATAL(d != NULL, "path normalised: /data// is /data");
	CHECK(nfsd_export_by_path(&ex, "/data/") == d,
	      "lookup by path normalises too");
	CHECK_EQ(d->nrules, 4, "continuation line joins the rules");
	CHECK(strcmp(match(d, "10.1.2.3"), "10.1.2.3") == 0,
	      "first match wins over the wider CIDR");
	CHECK(strcmp(match(d, "10.200.0.1"), "10.0.0.0/8") == 0, "CIDR /8");
	CHECK(strcmp(match(d, "::ffff:10.9.9.9"), "10.0.0.0/8") == 0,
	      "IPv4-mapped IPv6 peer matches an IPv4 rule");
	CHECK(strcmp(match(d, "fd12::1"), "fd00::/8") == 0, "IPv6 CIDR");
	CHECK(strcmp(match(d, "192.0.2.1"), "*") == 0, "* matches the rest");
	r = &d->rules[1];
	CHECK(!r->rw && r->squash == NFSD_SQUASH_ALL && r->anonuid == 7 &&
		      r->anongid == 8 && r->secure,
	      "ro, all_squash, anonuid/anongid, secure by default");
	r = &d->rules[0];
	CHECK(r->rw && r->squash == NFSD_SQUASH_ROOT,
	      "root_squash is the default");
	CHECK(!ex.v[0].rules[0].secure &&
		      ex.v[0].rules[0].squash == NFSD_SQUASH_NONE,
	      "insecure and no_root_squash");
	pub = nfsd_export_by_path(&ex, "/pub");
	CHECK_FATAL(pub != NULL && pub->nrules == 3, "/pub has 3 rules");
	CHECK(pub->rules[0].rw && !pub->rules[0].secure && pub->rules[0].async,
	      "-opts are the line's defaults (async among them)");
	CHECK(!pub->rules[1].rw && !pub->rules[1].secure &&
		      !pub->rules[1].async,
	      "per-client options override the defaults (sync)");
	CHECK(pub->rules[2].async, "async: the line's default");
	CHECK(!d->rules[0].async && !ex.v[0].rules[0].async,
	      "sync is the default");
	CHECK(pub->rules[2].host != NULL, "a host name rule");
	CHECK(nfsd_export_by_path(&ex, "/fixed")->id == 42, "fsid=42");
	CHECK(nfsd_export_by_id(&ex, 42) == nfsd_export_by_path(&ex, "/fixed"),
	      "lookup by id");
	CHECK(nfsd_export_by_id(&ex, 43) == NULL, "unknown id");
	CHECK(d->id != pub->id && d->id != 0, "default ids differ by path");
	CHECK(strcmp(match(&ex.v[4 - 1], "127.0.0.2"), "(none)") == 0,
	      "no rule matches: NULL");
	nfsd_exports_free(&ex);
	free(err);
}

static void
test_ids_stable(void)
{
	struct nfsd_exports a, b;
	char *err = NULL;

	nfsd_exports_parse("/x *\n/y *\n", "f", &a, &err);
	nfsd_exports_parse("/y 10.0.0.1\n/x 10.0.0.2(rw)\n", "f", &b, &err);
	CHECK(nfsd_export_by_path(&a, "/x")->id ==
		      nfsd_export_by_path(&b, "/x")->id,
	      "an export's default id depends on its path only");
	nfsd_exports_free(&a);
	nfsd_exports_free(&b);
}

static void
bad(const char *text, const char *want)
{
	struct nfsd_exports ex;
	char *err = NULL;
	int rc = nfsd_exports_parse(text, "ex", &ex, &err);

	CHECK(rc == -EINVAL && err != NULL && strstr(err, want) != NULL,
	      "rejected with \"%s\": %s", want, err ? err : "(no message)");
	CHECK(ex.n == 0 && ex.v == NULL, "nothing left after an error");
	free(err);
}

static void
test_errors(void)
{
	bad("relative *\n", "ex:1: bad export path");
	bad("/a *\n/b *(rw,bogus)\n", "ex:2: unknown or bad option");
	bad("# c\n/a\n", "ex:2: export /a names no clients");
	bad("/a *\n/a/ 10.0.0.1\n", "exported twice");
	bad("/a *(fsid=3)\n/b *(fsid=3)\n", "already used");
	bad("/a 10.0.0.0/33\n", "bad prefix");
	bad("/a *.example.com\n", "unsupported client");
	bad("/a @netgroup\n", "unsupported client");
	bad("/a 1.2.3.4(rw\n", "missing ')'");
	bad("/a/../b *\n", "bad export path");
	bad("/a \\\n\\\n x(anonuid=x)\n", "ex:1: unknown or bad option");
	bad("/a *\n\n/b *(fsid=1) 1.1.1.1(fsid=2)\n", "ex:3: conflicting");
}

static void
test_default(void)
{
	struct nfsd_exports ex;
	const struct nfsd_export *e;

	nfsd_exports_default(&ex);
	CHECK_FATAL(ex.n == 1, "one default export");
	e = &ex.v[0];
	CHECK(strcmp(e->path, "/") == 0, "default export is /");
	CHECK(strcmp(match(e, "127.0.0.1"), "127.0.0.1") == 0 &&
		      strcmp(match(e, "::1"), "::1") == 0,
	      "loopback allowed");
	CHECK(strcmp(match(e, "10.0.0.1"), "(none)") == 0,
	      "nothing else allowed");
	CHECK(e->rules[0].rw && !e->rules[0].secure &&
		      e->rules[0].squash == NFSD_SQUASH_NONE,
	      "rw, insecure, no_root_squash");
	nfsd_exports_free(&ex);
}

int
main(void)
{
	test_parse_and_match();
	test_ids_stable();
	test_errors();
	test_default();
	return tap_done();
}
