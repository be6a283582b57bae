/*
 * exports.c - the exports file: which directories of the volume are
 * exported, to which clients, with which options.
 *
 * Syntax (a subset of exports(5) that knfsd users know):
 *
 *	# comment
 *	/path  client(opts) client(opts) ...
 *	/path  -defaultopts client client(opts) \
 *	       client(opts)
 *
 * Clients: "*", an IP address, a CIDR (10.0.0.0/8, fd00::/8) or a host
 * name.  Host names are resolved when the exports are loaded and again
 * by the server's control thread every NFSD_HOST_REFRESH_MS
 * (nfsd_exports_resolve_hosts), never while a request is matched: a
 * slow resolver would otherwise stall every client of the event loop.
 * The first rule that matches the peer wins.  Options: rw, ro (default),
 * root_squash (default), no_root_squash, all_squash, no_all_squash,
 * anonuid=N, anongid=N (default 65534), secure (default: source port
 * below 1024), insecure, fsid=N (the export id in file handles; default
 * a hash of the path, so handles survive reordering the file), sync
 * (default) and async (metadata operations answered before their commit
 * is on disk: meta_cred.async; tesserad(8) EXPORTS), meta_read_rate=N
 * and meta_write_rate=N (metadata operations per second of each client
 * the rule admits, instead of client_meta_*_rate: limit.c).  knfsd's
 * subtree_check, no_subtree_check, wdelay and no_wdelay are accepted and
 * ignored.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nfsd/addr-internal.h"
#include "nfsd/nfsd-internal.h"

#define ANON_ID 65534

struct parse {
	const char *fname;
	unsigned line;
	char **err;
};

static int __attribute__((format(printf, 2, 3)))
perr(struct parse *p, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = tl_vasprintf(fmt, ap);
	va_end(ap);

	if (p->err != NULL)
		*p->err = tl_asprintf("%s:%u: %s", p->fname, p->line, msg);
	free(msg);
	return -EINVAL;
}

/* FNV-1a: stable across versions and machines, so default export ids in
 * handles never change. */
static uint32_t
path_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (uint8_t)*s;
		h *= 16777619u;
	}
	return h;
}

/* Canonical absolute path: single slashes, no trailing slash, no "." or
 * ".." components.  Caller frees *out. */
static int
norm_path(const char *in, char **out)
{
	char *buf = tl_malloc(strlen(in) + 2);
	size_t o = 0;
	const char *s = in;

	if (*s != '/')
		goto bad;
	while (*s != '\0') {
		const char *e;
		size_t n;

		while (*s == '/')
			s++;
		if (*s == '\0')
			break;
		e = strchr(s, '/');
		n = e != NULL ? (size_t)(e - s) : strlen(s);
		if ((n == 1 && s[0] == '.') ||
		    (n == 2 && s[0] == '.' && s[1] == '.') || n > META_NAME_MAX)
			goto bad;
		buf[o++] = '/';
		memcpy(buf + o, s, n);
		o += n;
		s += n;
	}
	if (o == 0)
		buf[o++] = '/';
	buf[o] = '\0';
	*out = buf;
	return 0;
bad:
	free(buf);
	return -EINVAL;
}

static void
rule_defaults(struct nfsd_client_rule *r)
{
	memset(r, 0, sizeof(*r));
	r->rw = false;
	r->squash = NFSD_SQUASH_ROOT;
	r->anonuid = ANON_ID;
	r->anongid = ANON_ID;
	r->secure = true;
}

/* Apply a comma-separated option list to r; fsid goes to *fsid. */
static int
parse_opts(struct parse *p, const char *opts, struct nfsd_client_rule *r,
	   int64_t *fsid)
{
	static const char *const ignored[] = {
		"subtree_check", "no_subtree_check", "wdelay", "no_wdelay"};
	char *copy = tl_strdup(opts), *save = NULL, *o;
	int rc = 0;

	for (o = strtok_r(copy, ",", &save); o != NULL;
	     o = strtok_r(NULL, ",", &save)) {
		uint64_t v;
		size_t i;

		if (strcmp(o, "rw") == 0)
			r->rw = true;
		else if (strcmp(o, "ro") == 0)
			r->rw = false;
		else if (strcmp(o, "root_squash") == 0 ||
			 strcmp(o, "no_root_squash") == 0) {
			/* all_squash covers root too, in either order */
			if (r->squash != NFSD_SQUASH_ALL)
				r->squash = o[0] == 'n' ? NFSD_SQUASH_NONE
							: NFSD_SQUASH_ROOT;
		} else if (strcmp(o, "all_squash") == 0)
			r->squash = NFSD_SQUASH_ALL;
		else if (strcmp(o, "no_all_squash") == 0) {
			if (r->squash == NFSD_SQUASH_ALL)
				r->squash = NFSD_SQUASH_ROOT;
		} else if (strcmp(o, "secure") == 0)
			r->secure = true;
		else if (strcmp(o, "insecure") == 0)
			r->secure = false;
		else if (strcmp(o, "sync") == 0)
			r->async = false;
		else if (strcmp(o, "async") == 0)
			r->async = true;
		else if (strncmp(o, "anonuid=", 8) == 0 &&
			 tl_parse_u64(o + 8, 0, UINT32_MAX, &v) == 0)
			r->anonuid = (uint32_t)v;
		else if (strncmp(o, "anongid=", 8) == 0 &&
			 tl_parse_u64(o + 8, 0, UINT32_MAX, &v) == 0)
			r->anongid = (uint32_t)v;
		else if (strncmp(o, "meta_read_rate=", 15) == 0 &&
			 tl_parse_u64(o + 15, 0, 100000000, &v) == 0) {
			r->meta_rate[0] = v;
			r->meta_rate_set[0] = true;
		} else if (strncmp(o, "meta_write_rate=", 16) == 0 &&
			   tl_parse_u64(o + 16, 0, 100000000, &v) == 0) {
			r->meta_rate[1] = v;
			r->meta_rate_set[1] = true;
		} else if (strncmp(o, "fsid=", 5) == 0 &&
			   tl_parse_u64(o + 5, 0, UINT32_MAX, &v) == 0) {
			if (*fsid >= 0 && *fsid != (int64_t)v) {
				rc = perr(p, "conflicting fsid=%s", o + 5);
				goto out;
			}
			*fsid = (int64_t)v;
		} else {
			for (i = 0; i < TL_ARRAY_SIZE(ignored); i++)
				if (strcmp(o, ignored[i]) == 0)
					break;
			if (i == TL_ARRAY_SIZE(ignored)) {
				rc = perr(p, "unknown or bad option \"%s\"", o);
				goto out;
			}
		}
	}
out:
	free(copy);
	return rc;
}

/* Client pattern: "*", address, CIDR or host name. */
static int
parse_client(struct parse *p, const char *pat, struct nfsd_client_rule *r)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(pat, '/');
	unsigned max;
	uint64_t prefix = 0;
	size_t n = slash != NULL ? (size_t)(slash - pat) : strlen(pat);

	r->pattern = tl_strdup(pat);
	if (strcmp(pat, "*") == 0)
		return 0;
	if (n < sizeof(buf)) {
		memcpy(buf, pat, n);
		buf[n] = '\0';
		if (inet_pton(AF_INET, buf, r->addr) == 1)
			r->family = AF_INET;
		else if (inet_pton(AF_INET6, buf, r->addr) == 1)
			r->family = AF_INET6;
	}
	if (r->family == 0) {
		if (slash != NULL || strchr(pat, '*') != NULL ||
		    strchr(pat, '?') != NULL || pat[0] == '@')
			return perr(p, "unsupported client \"%s\"", pat);
		for (const char *c = pat; *c != '\0'; c++)
			if (!isalnum((unsigned char)*c) && *c != '-' &&
			    *c != '.' && *c != '_')
				return perr(p, "bad client \"%s\"", pat);
		r->host = tl_strdup(pat);
		return 0;
	}
	max = r->family == AF_INET ? 32 : 128;
	if (slash == NULL)
		r->prefix = max;
	else if (tl_parse_u64(slash + 1, 0, max, &prefix) == 0)
		r->prefix = (unsigned)prefix;
	else
		return perr(p, "bad prefix length in \"%s\"", pat);
	return 0;
}

static void
export_free(struct nfsd_export *e)
{
	for (size_t i = 0; i < e->nrules; i++) {
		free(e->rules[i].pattern);
		free(e->rules[i].host);
		free(e->rules[i].addrs);
	}
	free(e->rules);
	free(e->path);
}

/* One logical line, already split into whitespace-separated tokens. */
static int
parse_line(struct parse *p, char **tok, size_t ntok, struct nfsd_exports *out)
{
	struct nfsd_export e;
	struct nfsd_client_rule def;
	int64_t fsid = -1;
	size_t i = 1;
	int rc;

	memset(&e, 0, sizeof(e));
	rule_defaults(&def);
	if (norm_path(tok[0], &e.path) != 0)
		return perr(p, "bad export path \"%s\"", tok[0]);
	if (i < ntok && tok[i][0] == '-') {
		rc = parse_opts(p, tok[i] + 1, &def, &fsid);
		if (rc != 0)
			goto out;
		i++;
	}
	if (i == ntok) {
		rc = perr(p, "export %s names no clients", e.path);
		goto out;
	}
	for (; i < ntok; i++) {
		struct nfsd_client_rule *r;
		char *paren = strchr(tok[i], '('), *pat;

		e.rules = tl_realloc(e.rules, (e.nrules + 1) * sizeof(*r));
		r = &e.rules[e.nrules++];
		*r = def;
		if (paren == tok[i])
			/* "/ 10.0.0.0/8 (rw)": exportfs warns too */
			tl_warn("exports",
				"%s:%u: no client before \"%s\" (a space "
				"before the options?): %s is exported to "
				"every host with these options; write "
				"\"*%s\" if that is meant",
				p->fname, p->line, tok[i], e.path, tok[i]);
		pat = paren != NULL ? tl_strndup(tok[i], paren - tok[i])
				    : tl_strdup(tok[i]);
		rc = parse_client(p, pat[0] != '\0' ? pat : "*", r);
		free(pat);
		if (rc != 0)
			goto out;
		if (paren != NULL) {
			size_t l = strlen(paren);
			char *o;

			if (paren[l - 1] != ')') {
				rc = perr(p, "missing ')' in \"%s\"", tok[i]);
				goto out;
			}
			o = tl_strndup(paren + 1, l - 2);
			rc = parse_opts(p, o, r, &fsid);
			free(o);
			if (rc != 0)
				goto out;
		}
	}
	e.id = fsid >= 0 ? (uint32_t)fsid : path_hash(e.path);
	for (i = 0; i < out->n; i++) {
		if (strcmp(out->v[i].path, e.path) == 0) {
			rc = perr(p, "%s exported twice", e.path);
			goto out;
		}
		if (out->v[i].id == e.id) {
			rc = perr(p, "export id of %s already used (set fsid=)",
				  e.path);
			goto out;
		}
	}
	out->v = tl_realloc(out->v, (out->n + 1) * sizeof(e));
	out->v[out->n++] = e;
	return 0;
out:
	export_free(&e);
	return rc;
}

/* Split line in place into tokens; '#' starts a comment. */
static size_t
tokenize(char *line, char ***tok)
{
	size_t n = 0;
	char *s = line, *hash = strchr(line, '#');

	if (hash != NULL)
		*hash = '\0';
	*tok = NULL;
	for (;;) {
		while (isspace((unsigned char)*s))
			s++;
		if (*s == '\0')
			break;
		*tok = tl_realloc(*tok, (n + 1) * sizeof(char *));
		(*tok)[n++] = s;
		while (*s != '\0' && !isspace((unsigned char)*s))
			s++;
		if (*s != '\0')
			*s++ = '\0';
	}
	return n;
}

int
nfsd_exports_parse(const char *text, const char *fname,
		   struct nfsd_exports *out, char **err)
{
	struct parse p = {fname != NULL ? fname : "exports", 0, err};
	const char *s = text;
	struct tl_buf line = TL_BUF_INIT;
	unsigned next_line = 1;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	while (*s != '\0') {
		char **tok;
		size_t ntok;

		/* Gather one logical line: '\' before a newline continues. */
		tl_buf_reset(&line);
		p.line = next_line;
		for (;;) {
			const char *nl = strchr(s, '\n');
			size_t n = nl != NULL ? (size_t)(nl - s) : strlen(s);

			next_line++;
			if (n > 0 && s[n - 1] == '\\') {
				tl_buf_append(&line, s, n - 1);
				tl_buf_append(&line, " ", 1);
				s += nl != NULL ? n + 1 : n;
				if (nl != NULL)
					continue;
			} else {
				tl_buf_append(&line, s, n);
				s += nl != NULL ? n + 1 : n;
			}
			break;
		}
		tl_buf_append(&line, "", 1);
		ntok = tokenize((char *)line.data, &tok);
		if (ntok > 0)
			rc = parse_line(&p, tok, ntok, out);
		free(tok);
		if (rc != 0)
			break;
	}
	tl_buf_free(&line);
	if (rc != 0)
		nfsd_exports_free(out);
	for (size_t i = 0; rc == 0 && i < out->n; i++)
		for (size_t j = 0; j < out->v[i].nrules; j++)
			out->meta_rates |=
				out->v[i].rules[j].meta_rate_set[0] ||
				out->v[i].rules[j].meta_rate_set[1];
	return rc;
}

void
nfsd_exports_default(struct nfsd_exports *out)
{
	static const char *const loop[] = {"127.0.0.1", "::1"};
	struct nfsd_export *e;

	out->n = 1;
	out->meta_rates = false;
	out->v = tl_calloc(1, sizeof(*e));
	e = &out->v[0];
	e->path = tl_strdup("/");
	e->id = path_hash("/");
	e->nrules = TL_ARRAY_SIZE(loop);
	e->rules = tl_calloc(e->nrules, sizeof(*e->rules));
	for (size_t i = 0; i < e->nrules; i++) {
		struct nfsd_client_rule *r = &e->rules[i];

		rule_defaults(r);
		r->pattern = tl_strdup(loop[i]);
		r->family = i == 0 ? AF_INET : AF_INET6;
		r->prefix = i == 0 ? 32 : 128;
		inet_pton(r->family, loop[i], r->addr);
		r->rw = true;
		r->squash = NFSD_SQUASH_NONE;
		r->secure = false;
	}
}

void
nfsd_exports_free(struct nfsd_exports *e)
{
	for (size_t i = 0; i < e->n; i++)
		export_free(&e->v[i]);
	free(e->v);
	e->v = NULL;
	e->n = 0;
}

static bool
prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[whole] ^ b[whole]) & (0xff << (8 - rest))) == 0;
}

/* Whether a host rule's addresses (at its last resolution) hold addr. */
static bool
host_has(const struct nfsd_client_rule *r, int fam, const uint8_t *addr)
{
	for (size_t i = 0; i < r->naddrs; i++)
		if (r->addrs[i].family == fam &&
		    memcmp(r->addrs[i].addr, addr, fam == AF_INET ? 4 : 16) ==
			    0)
			return true;
	return false;
}

const struct nfsd_client_rule *
nfsd_export_match(const struct nfsd_export *exp,
		  const struct sockaddr_storage *peer)
{
	uint8_t addr[16] = {0};
	int fam = nfsd_peer_addr(peer, true, addr);

	for (size_t i = 0; i < exp->nrules; i++) {
		const struct nfsd_client_rule *r = &exp->rules[i];

		if (r->family == 0 && r->host == NULL)
			return r;
		if (fam == 0)
			continue;
		if (r->family == fam && prefix_eq(r->addr, addr, r->prefix))
			return r;
		if (r->host != NULL && host_has(r, fam, addr))
			return r;
	}
	return NULL;
}

void
nfsd_rule_format(const struct nfsd_client_rule *r, struct tl_buf *out)
{
	static const char *const squash[] = {
		[NFSD_SQUASH_ROOT] = "root_squash",
		[NFSD_SQUASH_NONE] = "no_root_squash",
		[NFSD_SQUASH_ALL] = "all_squash",
	};
	char *s = tl_asprintf(
		"%s(%s,%s,anonuid=%u,anongid=%u,%s,%s)", r->pattern,
		r->rw ? "rw" : "ro", squash[r->squash], r->anonuid, r->anongid,
		r->secure ? "secure" : "insecure", r->async ? "async" : "sync");

	tl_buf_append(out, s, strlen(s));
	free(s);
	/* inside the parentheses, only when set */
	for (int k = 0; k < 2; k++) {
		if (!r->meta_rate_set[k])
			continue;
		out->len--; /* the ')' */
		s = tl_asprintf(",meta_%s_rate=%llu)", k ? "write" : "read",
				(unsigned long long)r->meta_rate[k]);
		tl_buf_append(out, s, strlen(s));
		free(s);
	}
}

struct nfsd_export *
nfsd_export_by_id(const struct nfsd_exports *e, uint32_t id)
{
	for (size_t i = 0; i < e->n; i++)
		if (e->v[i].id == id)
			return &e->v[i];
	return NULL;
}

struct nfsd_export *
nfsd_export_by_path(const struct nfsd_exports *e, const char *path)
{
	char *norm;
	struct nfsd_export *found = NULL;

	if (norm_path(path, &norm) != 0)
		return NULL;
	for (size_t i = 0; i < e->n && found == NULL; i++)
		if (strcmp(e->v[i].path, norm) == 0)
			found = &e->v[i];
	free(norm);
	return found;
}

/* ---- host names ---------------------------------------------------------- */

static int
addr_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct nfsd_addr));
}

/* The addresses of host (IPv4-mapped ones as IPv4, duplicates dropped)
 * into *out; 0, or the getaddrinfo error (*out NULL). */
static int
host_lookup(const char *host, struct nfsd_addr **out, size_t *n)
{
	struct addrinfo hints, *res = NULL, *ai;
	int rc;

	*out = NULL;
	*n = 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0)
		return rc;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		struct sockaddr_storage ss;
		struct nfsd_addr a;
		size_t i;

		memset(&ss, 0, sizeof(ss));
		memset(&a, 0, sizeof(a));
		memcpy(&ss, ai->ai_addr, TL_MIN(ai->ai_addrlen, sizeof(ss)));
		a.family = nfsd_peer_addr(&ss, true, a.addr);
		if (a.family == 0)
			continue;
		for (i = 0; i < *n; i++)
			if (memcmp(&(*out)[i], &a, sizeof(a)) == 0)
				break;
		if (i < *n)
			continue;
		*out = tl_realloc(*out, (*n + 1) * sizeof(a));
		(*out)[(*n)++] = a;
	}
	freeaddrinfo(res);
	/* in a stable order: a resolver that rotates its answers changes
	 * nothing */
	if (*n > 1)
		qsort(*out, *n, sizeof(**out), addr_cmp);
	return 0;
}

/* The rule of prev for the same export path and host, or NULL. */
static const struct nfsd_client_rule *
prev_rule(const struct nfsd_exports *prev, const char *path, const char *host)
{
	const struct nfsd_export *x =
		prev != NULL ? nfsd_export_by_path(prev, path) : NULL;

	for (size_t i = 0; x != NULL && i < x->nrules; i++)
		if (x->rules[i].host != NULL &&
		    strcmp(x->rules[i].host, host) == 0)
			return &x->rules[i];
	return NULL;
}

static bool
addrs_eq(const struct nfsd_client_rule *a, const struct nfsd_client_rule *b)
{
	return a->naddrs == b->naddrs &&
	       (a->naddrs == 0 ||
		memcmp(a->addrs, b->addrs, a->naddrs * sizeof(*a->addrs)) == 0);
}

/* "10.0.0.1 fd00::1" (caller frees). */
static char *
addrs_str(const struct nfsd_client_rule *r)
{
	struct tl_buf b = TL_BUF_INIT;
	char one[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < r->naddrs; i++) {
		if (inet_ntop(r->addrs[i].family, r->addrs[i].addr, one,
			      sizeof(one)) == NULL)
			continue;
		if (b.len > 0)
			tl_buf_append(&b, " ", 1);
		tl_buf_append(&b, one, strlen(one));
	}
	if (b.len == 0)
		tl_buf_append(&b, "(none)", 6);
	tl_buf_append(&b, "", 1);
	return (char *)b.data;
}

size_t
nfsd_exports_resolve_hosts(struct nfsd_exports *e,
			   const struct nfsd_exports *prev)
{
	size_t changed = 0;

	for (size_t i = 0; i < e->n; i++) {
		for (size_t j = 0; j < e->v[i].nrules; j++) {
			struct nfsd_client_rule *r = &e->v[i].rules[j];
			const struct nfsd_client_rule *old;
			struct nfsd_addr *a;
			size_t n;
			char *str;
			int rc;

			if (r->host == NULL)
				continue;
			old = prev_rule(prev, e->v[i].path, r->host);
			rc = host_lookup(r->host, &a, &n);
			if (rc != 0 && old != NULL && old->naddrs > 0) {
				tl_notice("exports",
					  "%s: host %s does not resolve now "
					  "(%s); keeping its addresses",
					  e->v[i].path, r->host,
					  gai_strerror(rc));
				a = tl_memdup(old->addrs,
					      old->naddrs * sizeof(*a));
				n = old->naddrs;
			} else if (rc != 0) {
				tl_warn("exports",
					"%s: host %s does not resolve (%s): "
					"its rule matches no client until it "
					"does",
					e->v[i].path, r->host,
					gai_strerror(rc));
			}
			free(r->addrs);
			r->addrs = a;
			r->naddrs = n;
			if (old != NULL && addrs_eq(r, old))
				continue;
			changed++;
			str = addrs_str(r);
			tl_info("exports", "%s: host %s is %s", e->v[i].path,
				r->host, str);
			free(str);
		}
	}
	return changed;
}

bool
nfsd_exports_have_hosts(const struct nfsd_exports *e)
{
	for (size_t i = 0; i < e->n; i++)
		for (size_t j = 0; j < e->v[i].nrules; j++)
			if (e->v[i].rules[j].host != NULL)
				return true;
	return false;
}

void
nfsd_exports_copy(const struct nfsd_exports *src, struct nfsd_exports *dst)
{
	dst->n = src->n;
	dst->meta_rates = src->meta_rates;
	dst->v = tl_calloc(src->n > 0 ? src->n : 1, sizeof(*dst->v));
	for (size_t i = 0; i < src->n; i++) {
		const struct nfsd_export *s = &src->v[i];
		struct nfsd_export *d = &dst->v[i];

		*d = *s;
		d->path = tl_strdup(s->path);
		d->rules = tl_calloc(s->nrules > 0 ? s->nrules : 1,
				     sizeof(*d->rules));
		for (size_t j = 0; j < s->nrules; j++) {
			const struct nfsd_client_rule *sr = &s->rules[j];
			struct nfsd_client_rule *dr = &d->rules[j];

			*dr = *sr;
			dr->pattern = tl_strdup(sr->pattern);
			dr->host =
				sr->host != NULL ? tl_strdup(sr->host) : NULL;
			dr->addrs =
				sr->naddrs > 0
					? tl_memdup(sr->addrs,
						    sr->naddrs *
							    sizeof(*sr->addrs))
					: NULL;
		}
	}
}

void
nfsd_exports_resolve(struct meta *m, struct nfsd_exports *e)
{
	size_t keep = 0;

	for (size_t i = 0; i < e->n; i++) {
		struct nfsd_export *x = &e->v[i];
		struct meta_attr a;
		int rc = 0;

		if (m != NULL) {
			rc = meta_resolve(m, x->path, &x->root_ino);
			if (rc == 0)
				rc = meta_getattr(m, x->root_ino, &a);
			if (rc == 0 && a.type != META_DIR)
				rc = -ENOTDIR;
		}
		if (rc != 0) {
			tl_err("exports", "%s: %s; not exported", x->path,
			       strerror(-rc));
			export_free(x);
			continue;
		}
		e->v[keep++] = *x;
	}
	e->n = keep;
}
