/*
 * admin.c - tessera limit get|set and tessera config reload: requests to
 * a running gateway's admin endpoint (nfsd/metrics.c: /admin/limit,
 * /admin/reload on the metrics_listen address), authenticated by the
 * token of admin_token_file ("Authorization: Bearer TOKEN").
 *
 * The gateway's address and the token file come from tessera.conf (-c,
 * or /etc/tessera/tessera.conf) unless --gateway and --token-file say
 * otherwise.  libcurl (already linked for the S3 store and tessera top)
 * speaks HTTP.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "lib/tl.h"
#include "nfsd/nfsd.h"
#include "tools/tools-internal.h"

static const char limit_usage[] =
	"Usage: tessera limit get [NAME] [OPTIONS]\n"
	"       tessera limit set NAME VALUE [OPTIONS]\n"
	"\n"
	"Show or change the limits of a running gateway without a restart\n"
	"(until its next reload or restart, which read tessera.conf again):\n"
	"client_meta_read_rate, client_meta_write_rate, "
	"export_meta_read_rate,\n"
	"export_meta_write_rate (operations/s) and their _burst,\n"
	"limit_wait_max, store_wait_max, upload_limit, download_limit\n"
	"(bytes/s); 0: no limit.\n"
	"\n"
	"  --gateway ADDR:PORT|URL  the gateway's metrics_listen (default: "
	"from\n"
	"                           tessera.conf, else 127.0.0.1:9049)\n"
	"  --token-file FILE        its admin_token_file (default: from\n"
	"                           tessera.conf, else "
	"/etc/tessera/admin.token)\n"
	"  -h, --help               this text\n";

static const char reload_usage[] =
	"Usage: tessera config reload [--gateway ADDR:PORT|URL] "
	"[--token-file FILE]\n"
	"\n"
	"Make a running gateway read tessera.conf and its exports again, as\n"
	"SIGHUP does, and say how it went.\n";

enum { OPT_GATEWAY = 256, OPT_TOKEN };

struct admin_target {
	const char *gateway;
	const char *token_file;
};

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	tl_buf_append(arg, p, size * n);
	return size * n;
}

/* The token of file, white space around it removed; NULL (message
 * printed) if it cannot be read. */
static char *
read_token(const char *file)
{
	char buf[1024];
	size_t b = 0, e;
	ssize_t n;
	int fd = open(file, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "tessera: admin token %s: %s%s\n", file,
			strerror(errno),
			errno == EACCES ? " (run as the gateway's user or "
					  "root)"
					: "");
		return NULL;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		fprintf(stderr, "tessera: admin token %s: %s\n", file,
			n < 0 ? strerror(errno) : "empty");
		return NULL;
	}
	e = (size_t)n;
	while (b < e && strchr(" \t\r\n", buf[b]) != NULL)
		b++;
	while (e > b && strchr(" \t\r\n", buf[e - 1]) != NULL)
		e--;
	return tl_strndup(buf + b, e - b);
}

/* method "GET" or "POST" (body) to path of the gateway; the reply's
 * body printed (to stdout on success, stderr otherwise).  0, or 1. */
static int
admin_call(const struct admin_target *t, const char *method, const char *path,
	   const char *body, struct tl_buf *reply)
{
	const struct nfsd_config *conf = tessera_conf();
	const char *gw = t->gateway, *tf = t->token_file;
	struct curl_slist *hdr = NULL;
	struct tl_buf out = TL_BUF_INIT;
	char *token, *auth, *url, *host = NULL;
	long code = 0;
	CURL *c;
	CURLcode rc;
	int ret = 1;

	if (tf == NULL)
		tf = conf->admin_token_file[0] ? conf->admin_token_file
					       : "/etc/tessera/admin.token";
	if (gw == NULL) {
		gw = conf->metrics_listen;
		if (strcmp(gw, "off") == 0 || gw[0] == '\0') {
			fprintf(stderr, "tessera: metrics_listen is off in "
					"tessera.conf: no admin endpoint; give "
					"--gateway\n");
			return 1;
		}
		/* a gateway listening on every address answers here */
		if (strncmp(gw, "0.0.0.0:", 8) == 0 || strncmp(gw, ":", 1) == 0)
			gw = host = tl_asprintf("127.0.0.1:%s",
						strrchr(gw, ':') + 1);
		else if (strncmp(gw, "[::]:", 5) == 0)
			gw = host = tl_asprintf("[::1]:%s", gw + 5);
	}
	token = read_token(tf);
	if (token == NULL) {
		free(host);
		return 1;
	}
	if (strncmp(gw, "http://", 7) == 0 || strncmp(gw, "https://", 8) == 0)
		url = tl_asprintf("%s%s", gw, path);
	else
		url = tl_asprintf("http://%s%s", gw, path);
	auth = tl_asprintf("Authorization: Bearer %s", token);
	memset(token, 0, strlen(token));
	free(token);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	c = curl_easy_init();
	if (c == NULL) {
		fprintf(stderr, "tessera: cannot start libcurl\n");
		goto out;
	}
	hdr = curl_slist_append(hdr, auth);
	hdr = curl_slist_append(hdr, "Content-Type: text/plain");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
	}
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		fprintf(stderr,
			"tessera: %s: %s (is a gateway running with "
			"metrics_listen there?)\n",
			url, curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	tl_buf_append(&out, "", 1);
	if (code == 200) {
		ret = 0;
		if (reply != NULL)
			tl_buf_append(reply, out.data, out.len);
		else
			fputs((char *)out.data, stdout);
	} else {
		fprintf(stderr, "tessera: %s: HTTP %ld: %s", url, code,
			(char *)out.data);
		if (code == 401)
			fprintf(stderr,
				"tessera: the token is the contents of "
				"the gateway's admin_token_file (here: %s)\n",
				tf);
	}
out:
	if (c != NULL)
		curl_easy_cleanup(c);
	curl_slist_free_all(hdr);
	curl_global_cleanup();
	memset(auth, 0, strlen(auth));
	free(auth);
	free(url);
	free(host);
	tl_buf_free(&out);
	return ret;
}

/* --gateway, --token-file and -h; optind left at the first operand.
 * -1: go on; else the exit status. */
static int
admin_opts(int argc, char **argv, const char *usage, struct admin_target *t)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{"gateway", required_argument, NULL, OPT_GATEWAY},
		{"token-file", required_argument, NULL, OPT_TOKEN},
		{NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage, stdout);
			return 0;
		case OPT_GATEWAY:
			t->gateway = optarg;
			break;
		case OPT_TOKEN:
			t->token_file = optarg;
			break;
		default:
			fputs(usage, stderr);
			return TESSERA_EXIT_USAGE;
		}
	}
	return -1;
}

int
tessera_cmd_limit(int argc, char **argv)
{
	struct admin_target t = {NULL, NULL};
	struct tl_buf reply = TL_BUF_INIT;
	const char *sub;
	char *body;
	int rc;

	rc = admin_opts(argc, argv, limit_usage, &t);
	if (rc >= 0)
		return rc;
	if (optind >= argc)
		return tessera_usage_error(limit_usage, "%s",
					   "get or set, and what");
	sub = argv[optind];
	if (strcmp(sub, "get") == 0) {
		if (optind + 2 < argc)
			return tessera_usage_error(limit_usage,
						   "extra argument '%s'",
						   argv[optind + 2]);
		if (optind + 1 == argc)
			return admin_call(&t, "GET", "/admin/limit", NULL,
					  NULL);
		rc = admin_call(&t, "GET", "/admin/limit", NULL, &reply);
		if (rc == 0) {
			const char *name = argv[optind + 1];
			size_t n = strlen(name);
			char *line = (char *)reply.data, *save = NULL;

			rc = 1;
			for (line = strtok_r(line, "\n", &save); line != NULL;
			     line = strtok_r(NULL, "\n", &save))
				if (strncmp(line, name, n) == 0 &&
				    line[n] == ' ') {
					printf("%s\n", line + n + 1);
					rc = 0;
					break;
				}
			if (rc != 0)
				fprintf(stderr,
					"tessera: limit: no limit "
					"named '%s' (tessera limit get lists "
					"them)\n",
					name);
		}
		tl_buf_free(&reply);
		return rc;
	}
	if (strcmp(sub, "set") == 0) {
		if (optind + 3 != argc)
			return tessera_usage_error(limit_usage, "%s",
						   "set takes NAME VALUE");
		if (strchr(argv[optind + 1], '=') != NULL ||
		    strpbrk(argv[optind + 2], "&\r\n") != NULL)
			return tessera_usage_error(limit_usage,
						   "bad NAME or VALUE '%s'",
						   argv[optind + 1]);
		body = tl_asprintf("%s=%s", argv[optind + 1], argv[optind + 2]);
		rc = admin_call(&t, "POST", "/admin/limit", body, NULL);
		free(body);
		return rc;
	}
	return tessera_usage_error(limit_usage, "unknown subcommand '%s'", sub);
}

int
tessera_cmd_config_reload(int argc, char **argv)
{
	struct admin_target t = {NULL, NULL};
	int rc;

	rc = admin_opts(argc, argv, reload_usage, &t);
	if (rc >= 0)
		return rc;
	if (optind + 1 != argc || strcmp(argv[optind], "reload") != 0)
		return tessera_usage_error(reload_usage, "%s",
					   "usage: tessera config reload");
	return admin_call(&t, "POST", "/admin/reload", "", NULL);
}
