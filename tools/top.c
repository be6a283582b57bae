/*
 * top.c - tessera top: a terminal view of a running gateway, from its
 * metrics endpoint (GET /metrics, nfsd/metrics.c), redrawn every
 * interval: operations per second and mean latency by NFS procedure,
 * (every procedure called since the gateway started, busiest first),
 * NFS throughput, connected clients, cache hit ratio, object-store
 * requests, metadata transactions, and the writeback and deletion
 * backlogs.  Rates are differences between two scrapes.
 *
 * libcurl (already linked for the S3 store) fetches the page; the text
 * format is parsed here: a sample is "name{labels} value" per line.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "lib/tl.h"
#include "tools/tools-internal.h"

static const char top_usage[] =
	"Usage: tessera top [--once] [--interval SECONDS] [ADDR:PORT|URL]\n"
	"\n"
	"Show what a running gateway does, from its metrics endpoint\n"
	"(metrics_listen; default 127.0.0.1:9049), refreshed every interval.\n"
	"\n"
	"  --once             print one view (two scrapes an interval apart)\n"
	"                     and exit; also what happens when standard\n"
	"                     output is not a terminal\n"
	"  --interval SECONDS time between views (default 1, 0.1 to 3600)\n"
	"  -h, --help         this text\n";

/* One scrape: every sample line, split. */
struct sample {
	char *name;   /* metric name */
	char *labels; /* what was between the braces, "" if none */
	double v;
};
struct scrape {
	struct sample *s;
	size_t n, cap;
	double t; /* when, seconds (monotonic) */
};

static void
scrape_free(struct scrape *sc)
{
	for (size_t i = 0; i < sc->n; i++) {
		free(sc->s[i].name);
		free(sc->s[i].labels);
	}
	free(sc->s);
	memset(sc, 0, sizeof(*sc));
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	tl_buf_append(arg, p, size * n);
	return size * n;
}

static void
parse(struct scrape *sc, char *text)
{
	for (char *line = strtok(text, "\n"); line != NULL;
	     line = strtok(NULL, "\n")) {
		char *sp, *br, *end;
		struct sample s;

		if (line[0] == '#' || (sp = strrchr(line, ' ')) == NULL)
			continue;
		*sp = '\0';
		s.v = strtod(sp + 1, &end);
		if (end == sp + 1)
			continue;
		br = strchr(line, '{');
		if (br != NULL) {
			char *cl = strrchr(br, '}');

			if (cl == NULL)
				continue;
			*br = '\0';
			*cl = '\0';
			s.labels = tl_strdup(br + 1);
		} else {
			s.labels = tl_strdup("");
		}
		s.name = tl_strdup(line);
		if (sc->n == sc->cap)
			sc->s = tl_realloc(
				sc->s, sizeof(*sc->s) *
					       (sc->cap = sc->cap ? 2 * sc->cap
								  : 512));
		sc->s[sc->n++] = s;
	}
}

/* GET url into *sc; 0 or -1 with a message printed. */
static int
fetch(CURL *c, const char *url, struct scrape *sc)
{
	struct tl_buf b = TL_BUF_INIT;
	long code = 0;
	CURLcode rc;

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (rc != CURLE_OK || code != 200) {
		fprintf(stderr, "tessera: top: %s: %s\n", url,
			rc != CURLE_OK ? curl_easy_strerror(rc)
				       : "the answer is not 200 OK");
		tl_buf_free(&b);
		return -1;
	}
	tl_buf_append(&b, "", 1);
	sc->t = (double)tl_mono_ns() / 1e9;
	parse(sc, (char *)b.data);
	tl_buf_free(&b);
	return 0;
}

/* The sum of the samples of name whose labels contain every
 * ';'-separated label of want (NULL: all); NAN when there is none. */
static double
sum(const struct scrape *sc, const char *name, const char *want)
{
	double v = 0;
	bool any = false;

	for (size_t i = 0; i < sc->n; i++) {
		const struct sample *s = &sc->s[i];
		bool ok = strcmp(s->name, name) == 0;

		if (ok && want != NULL) {
			char w[256], *save = NULL;

			snprintf(w, sizeof(w), "%s", want);
			for (char *t = strtok_r(w, ";", &save); t && ok;
			     t = strtok_r(NULL, ";", &save))
				ok = strstr(s->labels, t) != NULL;
		}
		if (ok) {
			v += s->v;
			any = true;
		}
	}
	return any ? v : NAN;
}

/* (b - a) / seconds between them, 0 when unknown or when the counter
 * went back (the gateway restarted). */
static double
rate(const struct scrape *a, const struct scrape *b, const char *name,
     const char *want)
{
	double x = sum(a, name, want), y = sum(b, name, want);

	if (isnan(x)) /* a series appears once it has something to say */
		x = 0;
	if (isnan(y) || b->t <= a->t || y < x)
		return 0;
	return (y - x) / (b->t - a->t);
}

static const char *
human(double v, char *buf, size_t len)
{
	static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	unsigned i = 0;

	if (isnan(v))
		return "-";
	while (v >= 1024 && i + 1 < TL_ARRAY_SIZE(u)) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%.0f %s", v, u[i]);
	else
		snprintf(buf, len, "%.1f %s", v, u[i]);
	return buf;
}

static const char *
ms(double s, char *buf, size_t len)
{
	if (isnan(s))
		return "-";
	snprintf(buf, len, s < 0.01 ? "%.3f ms" : "%.1f ms", s * 1000);
	return buf;
}

/* The procedures shown: NFS v3's, then the lock manager's (NLM v4, and
 * NSM's NOTIFY), labelled with their program. */
static const struct {
	const char *prog, *proc, *label;
} procs[] = {
	{"nfs", "getattr", "getattr"},
	{"nfs", "setattr", "setattr"},
	{"nfs", "lookup", "lookup"},
	{"nfs", "access", "access"},
	{"nfs", "readlink", "readlink"},
	{"nfs", "read", "read"},
	{"nfs", "write", "write"},
	{"nfs", "create", "create"},
	{"nfs", "mkdir", "mkdir"},
	{"nfs", "symlink", "symlink"},
	{"nfs", "mknod", "mknod"},
	{"nfs", "remove", "remove"},
	{"nfs", "rmdir", "rmdir"},
	{"nfs", "rename", "rename"},
	{"nfs", "link", "link"},
	{"nfs", "readdir", "readdir"},
	{"nfs", "readdirplus", "readdirplus"},
	{"nfs", "fsstat", "fsstat"},
	{"nfs", "fsinfo", "fsinfo"},
	{"nfs", "pathconf", "pathconf"},
	{"nfs", "commit", "commit"},
	{"nlm", "test", "nlm test"},
	{"nlm", "lock", "nlm lock"},
	{"nlm", "cancel", "nlm cancel"},
	{"nlm", "unlock", "nlm unlock"},
	{"nlm", "test_msg", "nlm test_msg"},
	{"nlm", "lock_msg", "nlm lock_msg"},
	{"nlm", "cancel_msg", "nlm cancel_msg"},
	{"nlm", "unlock_msg", "nlm unlock_msg"},
	{"nlm", "share", "nlm share"},
	{"nlm", "unshare", "nlm unshare"},
	{"nlm", "nm_lock", "nlm nm_lock"},
	{"nlm", "free_all", "nlm free_all"},
	{"nsm", "notify", "nsm notify"},
};

struct row {
	const char *proc;
	double ops, lat, calls;
};

static int
row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	if (x->ops != y->ops)
		return x->ops < y->ops ? 1 : -1;
	if (x->calls != y->calls)
		return x->calls < y->calls ? 1 : -1;
	return strcmp(x->proc, y->proc);
}

static void
view(FILE *f, const char *where, const struct scrape *a, const struct scrape *b)
{
	struct row rows[TL_ARRAY_SIZE(procs)];
	char h1[32], h2[32], h3[32], w[96];
	double hits, miss, dh, dm, total = 0, locks = 0, start, up;
	const char *vol = "?";

	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->s[i].name, "tessera_metadata_up") == 0 &&
		    strncmp(b->s[i].labels, "volume=\"", 8) == 0)
			vol = b->s[i].labels + 8;
	start = sum(b, "tessera_start_time_seconds", NULL);
	up = isnan(start) ? 0 : (double)time(NULL) - start;
	fprintf(f,
		"tessera top  %s  volume %.*s  up %.0fh%02.0fm  every %.1f s\n",
		where, (int)strcspn(vol, "\""), vol, floor(up / 3600),
		floor(fmod(up, 3600) / 60), b->t - a->t);
	for (size_t i = 0; i < TL_ARRAY_SIZE(procs); i++) {
		snprintf(w, sizeof(w), "program=\"%s\";procedure=\"%s\"",
			 procs[i].prog, procs[i].proc);
		rows[i].proc = procs[i].label;
		rows[i].ops = rate(a, b, "tessera_rpc_calls_total", w);
		rows[i].calls = sum(b, "tessera_rpc_calls_total", w);
		if (strcmp(procs[i].prog, "nfs") == 0)
			total += rows[i].ops;
		else
			locks += rows[i].ops;
		{
			double c = rate(
				a, b, "tessera_rpc_call_duration_seconds_count",
				w);
			double s = rate(a, b,
					"tessera_rpc_call_duration_seconds_sum",
					w);

			rows[i].lat = c > 0 ? s / c : NAN;
		}
	}
	fprintf(f,
		"clients %.0f   NFS %.0f ops/s   locks %.0f ops/s   in "
		"%s/s   out %s/s\n",
		sum(b, "tessera_connections_open", NULL), total, locks,
		human(rate(a, b, "tessera_rpc_received_bytes_total", NULL), h1,
		      sizeof(h1)),
		human(rate(a, b, "tessera_rpc_sent_bytes_total", NULL), h2,
		      sizeof(h2)));
	hits = sum(b, "tessera_cache_hits_total", NULL);
	miss = sum(b, "tessera_cache_misses_total", NULL);
	dh = rate(a, b, "tessera_cache_hits_total", NULL);
	dm = rate(a, b, "tessera_cache_misses_total", NULL);
	if (dh + dm > 0)
		fprintf(f, "cache   hit %.1f%% now", 100 * dh / (dh + dm));
	else
		fprintf(f, "cache   hit -");
	if (!isnan(hits) && !isnan(miss) && hits + miss > 0)
		fprintf(f, " (%.1f%% since start)", 100 * hits / (hits + miss));
	fprintf(f, "   disk %s of %s\n",
		human(sum(b, "tessera_cache_used_bytes", NULL), h1, sizeof(h1)),
		human(sum(b, "tessera_cache_limit_bytes", NULL), h2,
		      sizeof(h2)));
	fprintf(f,
		"store   get %.0f/s  put %.0f/s  delete %.0f/s  list "
		"%.0f/s  errors %.0f/s   fetched %s/s\n",
		rate(a, b, "tessera_objstore_requests_total",
		     "operation=\"get\""),
		rate(a, b, "tessera_objstore_requests_total",
		     "operation=\"put\""),
		rate(a, b, "tessera_objstore_requests_total",
		     "operation=\"delete\""),
		rate(a, b, "tessera_objstore_requests_total",
		     "operation=\"list\""),
		rate(a, b, "tessera_objstore_request_errors_total", NULL),
		human(rate(a, b, "tessera_objstore_fetch_bytes_total", NULL),
		      h1, sizeof(h1)));
	fprintf(f, "meta    read %.0f/s  write %.0f/s  conflicts %.0f/s\n",
		rate(a, b, "tessera_metadata_transactions_total",
		     "kind=\"read\""),
		rate(a, b, "tessera_metadata_transactions_total",
		     "kind=\"write\""),
		rate(a, b, "tessera_metadata_transaction_conflicts_total",
		     NULL));
	fprintf(f,
		"backlog writeback %s staged (oldest %.0f s)%s   "
		"buffered %s   pending delete %.0f\n",
		human(sum(b, "tessera_writeback_staged_bytes", NULL), h1,
		      sizeof(h1)),
		sum(b, "tessera_writeback_oldest_age_seconds", NULL),
		sum(b, "tessera_writeback_alarm", NULL) > 0 ? " ALARM" : "",
		human(sum(b, "tessera_buffered_write_bytes", NULL), h2,
		      sizeof(h2)),
		sum(b, "tessera_volume_pending_delete", NULL));
	qsort(rows, TL_ARRAY_SIZE(rows), sizeof(rows[0]), row_cmp);
	/* the procedures clients use, busiest first */
	fprintf(f, "\n%-14s %10s %12s %14s\n", "PROCEDURE", "OPS/S", "MEAN LAT",
		"SINCE START");
	for (size_t i = 0; i < TL_ARRAY_SIZE(rows); i++) {
		if (rows[i].ops <= 0 && !(rows[i].calls > 0))
			break;
		fprintf(f, "%-14s %10.1f %12s %14.0f\n", rows[i].proc,
			rows[i].ops, ms(rows[i].lat, h3, sizeof(h3)),
			rows[i].calls);
	}
	fflush(f);
}

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int
tessera_cmd_top(int argc, char **argv)
{
	static const struct option opts[] = {
		{"once", no_argument, NULL, 'o'},
		{"interval", required_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct scrape a = {0}, b = {0};
	const char *where = "127.0.0.1:9049";
	double interval = 1;
	bool once = false, tty = isatty(1);
	char *url, *end;
	CURL *c;
	int ch, rc = 1;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			fputs(top_usage, stdout);
			return 0;
		case 'o':
			once = true;
			break;
		case 'i':
			interval = strtod(optarg, &end);
			if (end != optarg && *end == '\0' && interval >= 0.1 &&
			    interval <= 3600)
				break;
			return tessera_usage_error(
				top_usage, "bad --interval '%s'", optarg);
		default:
			fputs(top_usage, stderr);
			return TESSERA_EXIT_USAGE;
		}
	}
	if (optind + 1 < argc)
		return tessera_usage_error(top_usage, "extra argument '%s'",
					   argv[optind + 1]);
	if (optind < argc)
		where = argv[optind];
	if (strncmp(where, "http://", 7) == 0 ||
	    strncmp(where, "https://", 8) == 0)
		url = tl_strdup(where);
	else
		url = tl_asprintf("http://%s/metrics", where);
	if (!tty)
		once = true;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	c = curl_easy_init();
	if (c == NULL) {
		fprintf(stderr, "tessera: top: cannot start libcurl\n");
		goto out;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (fetch(c, url, &a) != 0)
		goto out;
	while (!stop) {
		struct timespec ts = {(time_t)interval,
				      (long)(fmod(interval, 1) * 1e9)};

		nanosleep(&ts, NULL);
		if (stop)
			break;
		if (fetch(c, url, &b) != 0)
			goto out;
		if (!once)
			fputs("\033[H\033[2J", stdout);
		view(stdout, where, &a, &b);
		scrape_free(&a);
		a = b;
		memset(&b, 0, sizeof(b));
		if (once)
			break;
	}
	rc = 0;
out:
	scrape_free(&a);
	scrape_free(&b);
	if (c != NULL)
		curl_easy_cleanup(c);
	curl_global_cleanup();
	free(url);
	return rc;
}
