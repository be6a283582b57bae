/*
 * raft.c - tessera's side of raft:// groups: the META_URL "raft://"
 * (the node of tessera.conf), and `tessera raft` (secret, status, add,
 * remove, transfer, verify, convert).
 *
 * The tessera command runs on a gateway of the group: it reads this
 * node's replica and sends its commits and membership changes through
 * the node's control socket (raft_dir/control.sock), so tesserad must
 * run there.  Two commands found a group instead, without a running node:
 * `tessera format raft://` on a machine whose raft_dir is empty, and
 * `tessera raft convert` of an lmdb:// volume; both make a group of this
 * one node, which then grows with `tessera raft add`.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/tl.h"
#include "meta/kv.h"
#include "meta/meta.h"
#include "nfsd/nfsd.h"
#include "tools/tools-internal.h"

#define DEFAULT_CONF "/etc/tessera/tessera.conf"

static struct nfsd_config conf;
static bool conf_loaded;

/* tessera.conf for the raft_* options: -c FILE, else the default file if
 * there is one, else the built-in defaults. */
int
tessera_conf_load(const char *path)
{
	char *err = NULL;
	int rc = 0;

	nfsd_config_defaults(&conf);
	conf_loaded = true;
	if (path == NULL && access(DEFAULT_CONF, R_OK) == 0)
		path = DEFAULT_CONF;
	if (path)
		rc = tl_conf_load(nfsd_conf_opts, nfsd_conf_nopts, &conf, path,
				  &err);
	if (rc) {
		fprintf(stderr, "tessera: %s\n", err);
		free(err);
	}
	return rc;
}

const struct nfsd_config *
tessera_conf(void)
{
	if (!conf_loaded) {
		nfsd_config_defaults(&conf);
		conf_loaded = true;
	}
	return &conf;
}

void
tessera_conf_free(void)
{
	if (conf_loaded)
		nfsd_config_free(&conf);
	conf_loaded = false;
}

/* "raft://" alone names this machine's node (raft_dir): the URL of a
 * client of it.  Other URLs are kept.  Caller frees. */
char *
tessera_meta_url(const char *url)
{
	char *err = NULL, *u;

	if (strncmp(url, "raft://", 7) != 0 ||
	    (url[7] != '\0' && url[7] != '?'))
		return tl_strdup(url);
	u = nfsd_raft_url(&conf, url, false, false, &err);
	if (u == NULL) {
		fprintf(stderr, "tessera: %s\n", err);
		free(err);
		return tl_strdup(url);
	}
	return u;
}

/* The node directory of a raft URL, or NULL. */
static char *
raft_dir_of(const char *url)
{
	const char *d = url + 7, *q;

	if (strncmp(url, "raft://", 7) != 0)
		return NULL;
	if (*d == '\0')
		return tl_strdup(conf.raft_dir);
	q = strchr(d, '?');
	return q ? tl_strndup(d, (size_t)(q - d)) : tl_strdup(d);
}

/* The URL `tessera format` writes through: a raft:// node directory with
 * no identity yet founds a group of this one node (the node runs in
 * this process while the volume is written); else the running node. */
char *
tessera_format_url(const char *url, bool *founding)
{
	char *dir = raft_dir_of(url), *id, *u, *err = NULL;

	*founding = false;
	if (dir == NULL)
		return tl_strdup(url);
	id = tl_asprintf("%s/identity", dir);
	*founding = access(id, F_OK) != 0;
	free(id);
	free(dir);
	if (strchr(url, '?') && !strstr(url, "?volume="))
		return tl_strdup(url); /* a full node URL: as given */
	u = nfsd_raft_url(&conf, url, *founding, *founding, &err);
	if (u == NULL) {
		fprintf(stderr, "tessera: format: %s\n", err);
		free(err);
	}
	return u;
}

/* ---- tessera raft -------------------------------------------------------- */

static const char raft_usage[] =
	"Usage: tessera [-c FILE] raft COMMAND [ARGS]\n"
	"\n"
	"Operate the raft group this gateway belongs to (tessera.conf:\n"
	"raft_* options; META_URL defaults to raft://, this node).\n"
	"\n"
	"Commands:\n"
	"  secret FILE               write a new cluster secret (32 random\n"
	"                            bytes, mode 0600) for raft_secret_file\n"
	"  status [META_URL]         every node: role, state, term, commit\n"
	"                            and applied index, lag, log size\n"
	"  add ID HOST:PORT          add a running node (a standby until it\n"
	"                            caught up, then a voter)\n"
	"  remove ID                 remove a node from the group\n"
	"  transfer [ID]             hand leadership to node ID (default:\n"
	"                            the most up-to-date voter)\n"
	"  verify [META_URL]         check that every replica holds the same\n"
	"                            content at the same log index\n"
	"  convert LMDB_URL          make an lmdb:// volume the replica of a\n"
	"                            new group of this one node (copied; the\n"
	"                            lmdb:// directory is left as it was)\n";

static int __attribute__((format(printf, 1, 2))) usage_err(const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = tessera_usage_verror(raft_usage, "raft", fmt, ap);
	va_end(ap);
	return rc;
}

static int
open_engine(const char *arg, struct meta_kv **kv)
{
	char *url = tessera_meta_url(arg ? arg : "raft://"), *err = NULL;
	int rc;

	rc = meta_kv_open(url, kv, &err);
	if (rc) {
		fprintf(stderr, "tessera: raft: %s\n",
			err ? err : strerror(-rc));
		free(err);
	}
	free(url);
	return rc;
}

static int
raft_secret(int argc, char **argv)
{
	uint8_t key[32];
	char hex[65];
	int fd;

	if (argc != 2)
		return usage_err("secret needs FILE");
	fd = open(argv[1], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "tessera: raft secret: %s: %s%s\n", argv[1],
			strerror(errno),
			errno == EEXIST ? " (it is kept: remove it first to "
					  "make another)"
					: "");
		return 1;
	}
	tl_random_bytes(key, sizeof(key));
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	hex[64] = '\n';
	if (write(fd, hex, 65) != 65 || fsync(fd) != 0) {
		fprintf(stderr, "tessera: raft secret: %s: %s\n", argv[1],
			strerror(errno));
		close(fd);
		return 1;
	}
	close(fd);
	printf("wrote a cluster secret to %s: copy it to every node of the "
	       "group (raft_secret_file), readable by the gateway only\n",
	       argv[1]);
	return 0;
}

static int
raft_status(int argc, char **argv)
{
	struct meta_kv_raft_node *nodes;
	struct meta_kv *kv;
	uint64_t commit = 0;
	size_t n;
	int rc;

	if (argc > 2)
		return usage_err("status takes one META_URL");
	if (open_engine(argc == 2 ? argv[1] : NULL, &kv))
		return 1;
	rc = meta_kv_raft_status(kv, &nodes, &n);
	meta_kv_close(kv);
	if (rc) {
		fprintf(stderr, "tessera: raft status: %s\n", strerror(-rc));
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(nodes[i].state, "leader") == 0)
			commit = nodes[i].commit;
	printf("%-4s %-21s %-8s %-9s %6s %10s %10s %8s %10s\n", "id", "address",
	       "role", "state", "term", "commit", "applied", "lag", "log");
	for (size_t i = 0; i < n; i++) {
		const struct meta_kv_raft_node *x = &nodes[i];
		char lag[24], sz[32];

		if (commit)
			snprintf(lag, sizeof(lag), "%" PRIu64,
				 commit > x->applied ? commit - x->applied : 0);
		else
			snprintf(lag, sizeof(lag), "?");
		printf("%-4" PRIu64 " %-21s %-8s %-9s %6" PRIu64 " %10" PRIu64
		       " %10" PRIu64 " %8s %10s\n",
		       x->id, x->address, x->role, x->state, x->term, x->commit,
		       x->applied, lag,
		       tl_fmt_size(x->log_bytes, sz, sizeof(sz)));
	}
	if (commit == 0)
		printf("no leader answered: the group has no majority, or this "
		       "node is cut off\n");
	free(nodes);
	return 0;
}

static int
raft_change(int op, int argc, char **argv)
{
	struct meta_kv *kv;
	uint64_t id = 0;
	const char *addr = NULL;
	char *msg = NULL;
	int rc, want = op == META_KV_RAFT_ADD ? 3 : 2;

	if ((op == META_KV_RAFT_TRANSFER && argc > 2) ||
	    (op != META_KV_RAFT_TRANSFER && argc != want))
		return usage_err("%s: wrong arguments", argv[0]);
	if (argc >= 2 && tl_parse_u64(argv[1], 1, 1ULL << 62, &id))
		return usage_err("bad node id '%s'", argv[1]);
	if (op == META_KV_RAFT_ADD)
		addr = argv[2];
	if (open_engine(NULL, &kv))
		return 1;
	rc = meta_kv_raft_change(kv, op, id, addr, &msg);
	meta_kv_close(kv);
	if (rc) {
		fprintf(stderr, "tessera: raft %s: %s%s%s\n", argv[0],
			strerror(-rc), msg ? ": " : "", msg ? msg : "");
		free(msg);
		return 1;
	}
	printf("%s: %s\n", argv[0], msg ? msg : "done");
	free(msg);
	return 0;
}

static int
raft_verify(int argc, char **argv)
{
	struct meta_kv_raft_verify *v;
	struct meta_kv *kv;
	size_t n, same = 0;
	int rc;

	if (argc > 2)
		return usage_err("verify takes one META_URL");
	if (open_engine(argc == 2 ? argv[1] : NULL, &kv))
		return 1;
	printf("verifying: every node hashes its replica at one log "
	       "index...\n");
	fflush(stdout);
	rc = meta_kv_raft_verify(kv, &v, &n);
	meta_kv_close(kv);
	if (rc) {
		fprintf(stderr, "tessera: raft verify: %s\n", strerror(-rc));
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		printf("node %-4" PRIu64 " index %-10" PRIu64 " ", v[i].id,
		       v[i].index);
		if (v[i].rc) {
			printf("no answer (%s)\n", strerror(-v[i].rc));
			continue;
		}
		for (int k = 0; k < 8; k++)
			printf("%02x", v[i].sha256[k]);
		printf("... %" PRIu64 " keys\n", v[i].keys);
		same += memcmp(v[i].sha256, v[0].sha256, 32) == 0 &&
			v[0].rc == 0;
	}
	if (n > 0 && same == n) {
		printf("all %zu replicas are identical\n", n);
		free(v);
		return 0;
	}
	printf("the replicas DIFFER or did not all answer (%zu of %zu "
	       "match the first)\n",
	       same, n);
	free(v);
	return 1;
}

static int
raft_convert(int argc, char **argv)
{
	char *err = NULL, *url, *dir;
	int rc;

	if (argc != 2 || strncmp(argv[1], "lmdb:///", 8) != 0)
		return usage_err("convert needs an lmdb:///DIR volume");
	url = nfsd_raft_url(&conf, "raft://", true, true, &err);
	if (url == NULL) {
		fprintf(stderr, "tessera: raft convert: %s\n", err);
		free(err);
		return 1;
	}
	dir = raft_dir_of(url);
	printf("copying %s into %s/replica and founding a group of node "
	       "%" PRIu64 "...\n",
	       argv[1], dir, conf.raft_id);
	fflush(stdout);
	rc = meta_kv_raft_convert(argv[1], url, &err);
	if (rc)
		fprintf(stderr, "tessera: raft convert: %s\n",
			err ? err : strerror(-rc));
	else
		printf("done: start tesserad with --meta raft://, then add the "
		       "other nodes with tessera raft add\n");
	free(err);
	free(url);
	free(dir);
	return rc ? 1 : 0;
}

int
tessera_cmd_raft(int argc, char **argv)
{
	const char *sub;

	if (argc < 2)
		return usage_err("no command");
	sub = argv[1];
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help") ||
	    !strcmp(sub, "help")) {
		fputs(raft_usage, stdout);
		return 0;
	}
	argc--;
	argv++;
	if (!strcmp(sub, "secret"))
		return raft_secret(argc, argv);
	if (!strcmp(sub, "status"))
		return raft_status(argc, argv);
	if (!strcmp(sub, "add"))
		return raft_change(META_KV_RAFT_ADD, argc, argv);
	if (!strcmp(sub, "remove"))
		return raft_change(META_KV_RAFT_REMOVE, argc, argv);
	if (!strcmp(sub, "transfer"))
		return raft_change(META_KV_RAFT_TRANSFER, argc, argv);
	if (!strcmp(sub, "verify"))
		return raft_verify(argc, argv);
	if (!strcmp(sub, "convert"))
		return raft_convert(argc, argv);
	return usage_err("unknown command '%s'", sub);
}
