/*
 * raft_meta.c - the metadata layer on raft:// beside LMDB, in one
 * process: creates in one shared directory and in a directory per
 * thread, at 1 and 4 threads, then a GETATTR storm, on
 *   lmdb        one LMDB (the reference),
 *   raft1       a one-node group,
 *   raft3-lead  a three-node group (nodes in this process, loopback
 *               ports), through the leader,
 *   raft3-foll  the same group through a follower.
 * Prints figures and the ratio to lmdb; asserts nothing.  The nodes of
 * the group run in this process and share its two cores with the load:
 * the end-to-end figures through tesserad are bench/raft.sh's.
 *
 * Usage: raft_meta [FILES_PER_THREAD] [STORM_SECONDS]
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/tl.h"
#include "meta/kv.h"
#include "meta/meta.h"
#include "t/unit/free_port.h"

static const struct meta_cred root = {.uid = 0};
static char topdir[64];
static char *secret;
static int ports[3];
static unsigned files = 2000, storm_s = 5;

static char *
node_url(const char *cfg, int i, int n, bool boot)
{
	char peers[256] = "";

	for (int k = 1; k <= n; k++)
		snprintf(peers + strlen(peers), sizeof(peers) - strlen(peers),
			 "%s%d@127.0.0.1:%d", k > 1 ? "," : "", k,
			 ports[k - 1]);
	return tl_asprintf("raft://%s/%s/n%d?id=%d&address=127.0.0.1:%d&"
			   "peers=%s&secret=%s%s",
			   topdir, cfg, i, i, ports[i - 1], peers, secret,
			   boot ? "&bootstrap=1" : "");
}

struct work {
	struct meta *m;
	uint64_t dir;
	unsigned id, n;
	uint64_t *inos;
	unsigned ninos;
	int errors;
	uint64_t ops;
	volatile bool *stop;
};

static void *
create_run(void *arg)
{
	struct work *w = arg;
	struct meta_new nw;

	memset(&nw, 0, sizeof(nw));
	nw.type = META_REG;
	nw.mode = 0644;
	nw.how = META_GUARDED;
	for (unsigned i = 0; i < w->n; i++) {
		char name[32];
		uint64_t ino;

		snprintf(name, sizeof(name), "f%u-%u", w->id, i);
		if (meta_create(w->m, &root, w->dir, name, &nw, &ino, NULL,
				NULL, NULL, NULL) != 0)
			w->errors++;
	}
	return NULL;
}

static void *
storm_run(void *arg)
{
	struct work *w = arg;
	struct meta_attr a;

	while (!*w->stop) {
		uint64_t ino = w->inos[tl_random_u64() % w->ninos];

		if (meta_getattr(w->m, ino, &a) != 0)
			w->errors++;
		w->ops++;
	}
	return NULL;
}

static uint64_t
mkdir_in(struct meta *m, uint64_t dir, const char *name)
{
	struct meta_new nw;
	uint64_t ino = 0;

	memset(&nw, 0, sizeof(nw));
	nw.type = META_DIR;
	nw.mode = 0755;
	nw.how = META_GUARDED;
	meta_create(m, &root, dir, name, &nw, &ino, NULL, NULL, NULL, NULL);
	return ino;
}

/* Files created per second by t threads, in one directory or in one
 * directory per thread. */
static double
creates(struct meta *m, unsigned t, bool shared, const char *tag)
{
	struct work w[8];
	pthread_t th[8];
	uint64_t d = shared ? mkdir_in(m, META_ROOT_INO, tag) : 0, t0;
	int errors = 0;

	for (unsigned i = 0; i < t; i++) {
		char name[64];

		memset(&w[i], 0, sizeof(w[i]));
		w[i].m = m;
		w[i].id = i;
		w[i].n = files;
		snprintf(name, sizeof(name), "%s-%u", tag, i);
		w[i].dir = shared ? d : mkdir_in(m, META_ROOT_INO, name);
	}
	t0 = tl_mono_ns();
	for (unsigned i = 0; i < t; i++)
		pthread_create(&th[i], NULL, create_run, &w[i]);
	for (unsigned i = 0; i < t; i++) {
		pthread_join(th[i], NULL);
		errors += w[i].errors;
	}
	if (errors)
		printf("# %s: %d creates failed\n", tag, errors);
	return (double)t * files / ((tl_mono_ns() - t0) / 1e9);
}

static double
storm(struct meta *m, unsigned t)
{
	uint64_t inos[512], ino, t0, ops = 0;
	volatile bool stop = false;
	struct work w[8];
	pthread_t th[8];
	unsigned n = 0;

	for (unsigned i = 0; i < 512 && i < files; i++) {
		char name[32];
		uint64_t dir;

		if (meta_resolve(m, "/c1-0", &dir) != 0)
			break;
		snprintf(name, sizeof(name), "f0-%u", i);
		if (meta_lookup(m, &root, dir, name, &ino, NULL) == 0)
			inos[n++] = ino;
	}
	if (n == 0)
		return 0;
	for (unsigned i = 0; i < t; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].m = m;
		w[i].inos = inos;
		w[i].ninos = n;
		w[i].stop = &stop;
		pthread_create(&th[i], NULL, storm_run, &w[i]);
	}
	t0 = tl_mono_ns();
	sleep(storm_s);
	stop = true;
	for (unsigned i = 0; i < t; i++) {
		pthread_join(th[i], NULL);
		ops += w[i].ops;
	}
	return ops / ((tl_mono_ns() - t0) / 1e9);
}

struct result {
	const char *name;
	double c1, c4, s1, s4, g4;
};

static int
run(const char *cfg, const char *url, struct result *r)
{
	struct meta_format_opts o = {"bench", "file:///tmp/unused", 0, 0, 0, 0,
				     true};
	struct meta *m = NULL;
	char *err = NULL;
	int rc;

	rc = meta_format(url, &o, &err);
	if (rc == 0)
		rc = meta_open(url, "bench", &m, &err);
	if (rc) {
		printf("# %s: %s\n", cfg, err ? err : strerror(-rc));
		free(err);
		return rc;
	}
	r->name = cfg;
	r->c1 = creates(m, 1, false, "c1");
	r->c4 = creates(m, 4, false, "c4");
	r->s1 = creates(m, 1, true, "s1");
	r->s4 = creates(m, 4, true, "s4");
	r->g4 = storm(m, 4);
	printf("R raft_meta %s creates_1t %.0f\n", cfg, r->c1);
	printf("R raft_meta %s creates_4t_own_dirs %.0f\n", cfg, r->c4);
	printf("R raft_meta %s creates_1t_one_dir %.0f\n", cfg, r->s1);
	printf("R raft_meta %s creates_4t_one_dir %.0f\n", cfg, r->s4);
	printf("R raft_meta %s getattr_4t %.0f\n", cfg, r->g4);
	fflush(stdout);
	meta_close(m);
	return 0;
}

int
main(int argc, char **argv)
{
	struct result res[4];
	struct meta_kv *others[3] = {NULL, NULL, NULL};
	char *url, *err = NULL, *cmd;
	int nres = 0;
	FILE *f;

	if (argc > 1)
		files = (unsigned)atoi(argv[1]);
	if (argc > 2)
		storm_s = (unsigned)atoi(argv[2]);
	tl_log_set_level(TL_LOG_ERR);
	strcpy(topdir, "/var/tmp/raft-meta-XXXXXX");
	if (!mkdtemp(topdir)) {
		perror("mkdtemp");
		return 1;
	}
	secret = tl_asprintf("%s/secret", topdir);
	f = fopen(secret, "w");
	fputs("the secret of the raft metadata benchmark\n", f);
	fclose(f);
	chmod(secret, 0600);
	for (int i = 0; i < 3; i++)
		ports[i] = rt_free_port();

	url = tl_asprintf("lmdb://%s/lmdb", topdir);
	if (run("lmdb", url, &res[nres]) == 0)
		nres++;
	free(url);

	url = node_url("raft1", 1, 1, true);
	if (run("raft1", url, &res[nres]) == 0)
		nres++;
	free(url);

	/* three nodes: 2 and 3 join node 1; the volume is made through 1 */
	for (int i = 0; i < 3; i++)
		ports[i] = rt_free_port();
	url = node_url("raft3", 1, 3, true);
	if (meta_kv_open(url, &others[0], &err) == 0) {
		for (int i = 2; i <= 3; i++) {
			char *u = node_url("raft3", i, 3, false), addr[64];

			snprintf(addr, sizeof(addr), "127.0.0.1:%d",
				 ports[i - 1]);
			if (meta_kv_open(u, &others[i - 1], &err) != 0 ||
			    meta_kv_raft_change(others[0], META_KV_RAFT_ADD,
						(uint64_t)i, addr, NULL) != 0)
				printf("# node %d cannot join\n", i);
			free(u);
		}
		if (run("raft3-lead", url, &res[nres]) == 0)
			nres++;
		free(url);
		url = node_url("raft3", 2, 3, false);
		if (run("raft3-foll", url, &res[nres]) == 0)
			nres++;
	}
	free(url);
	for (int i = 0; i < 3; i++)
		if (others[i])
			meta_kv_close(others[i]);

	printf("\n%-11s %10s %10s %10s %10s %10s\n", "engine", "create 1t",
	       "create 4t", "1 dir 1t", "1 dir 4t", "getattr 4t");
	for (int i = 0; i < nres; i++)
		printf("%-11s %10.0f %10.0f %10.0f %10.0f %10.0f\n",
		       res[i].name, res[i].c1, res[i].c4, res[i].s1, res[i].s4,
		       res[i].g4);
	printf("ratio to lmdb (creates at 4 threads: own dirs, one dir; "
	       "getattr):\n");
	for (int i = 1; i < nres; i++)
		printf("%-11s %.2f %.2f %.2f\n", res[i].name,
		       res[i].c4 / res[0].c4, res[i].s4 / res[0].s4,
		       res[i].g4 / res[0].g4);
	cmd = tl_asprintf("rm -rf '%s'", topdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", topdir);
	free(cmd);
	free(secret);
	free(err);
	return 0;
}
