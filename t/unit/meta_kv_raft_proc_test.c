/*
 * meta_kv_raft_proc_test.c - a raft:// group of three node processes on
 * loopback ports, each writing through its own node, while the test
 * SIGKILLs the leader, then a follower, and restarts them; snapshots
 * every few entries, so a node that comes back behind the leader's log
 * restores a replica copy.  Afterwards every acknowledged write is
 * present, the counter every transaction added to equals the number of
 * writes present (each applied once), and the replicas are identical.
 * The test process itself reaches the nodes as the tessera command does:
 * through their control sockets (client mode).
 *
 * The same program is the node process: meta_kv_raft_proc_test node URL
 * ACKFILE [idle].
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "t/unit/raft_test.h"

#define N     3
#define EXTRA "snapshot=64&trailing=16"

static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void
on_alarm(int sig)
{
	static const char msg[] = "Bail out! no progress in 600 s\n";

	(void)sig;
	if (write(1, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	_exit(1);
}

/* A node process: open the node, then (unless idle) write p<id>-<i> and
 * add 1 to "ctr" in each transaction, appending the key to ackfile once
 * the commit returned.  Keys carry a random run id: a restarted node
 * process writes new ones. */
static int
node_main(const char *url, const char *ackfile, bool idle)
{
	struct meta_kv *kv;
	char *err = NULL;
	int id, fd, rc;
	const char *p = strstr(url, "id=");
	unsigned run = (unsigned)(tl_random_u64() % 100000);

	signal(SIGTERM, on_term);
	id = p ? atoi(p + 3) : 0;
	tl_log_set_level(getenv("RT_DEBUG") ? TL_LOG_DEBUG : TL_LOG_INFO);
	rc = meta_kv_open(url, &kv, &err);
	if (rc) {
		fprintf(stderr, "node %d: %s\n", id, err ? err : "");
		return 2;
	}
	fd = open(ackfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
	for (int i = 0; !stop && !idle; i++) {
		struct meta_kv_txn *t;
		char k[32], line[32];
		int64_t one = 1;
		int tries = 0;

		do {
			rc = meta_kv_begin(kv, false, &t);
			if (rc)
				break;
			snprintf(k, sizeof(k), "p%d-%05u-%05d", id, run, i);
			rc = meta_kv_put(t, k, strlen(k), "v", 1);
			if (rc == 0)
				rc = meta_kv_add(t, "ctr", 3, &one, 1);
			if (rc)
				meta_kv_abort(t);
			else
				rc = meta_kv_commit(t);
		} while (rc == -EAGAIN && ++tries < 100 && !stop);
		if (rc == 0) {
			snprintf(line, sizeof(line), "%s\n", k);
			if (write(fd, line, strlen(line)) < 0)
				break;
		}
		usleep(rc == 0 ? 2000 : 50000);
	}
	while (idle && !stop)
		pause();
	close(fd);
	meta_kv_close(kv);
	return 0;
}

struct proc {
	pid_t pid;
	char *url;
	char *ack;
	int gen;
};

static struct rt t;
static struct proc pr[N + 1];
static const char *self;

static void
spawn(int i, bool bootstrap, bool idle)
{
	char *ack = tl_asprintf("%s/ack%d.%d", t.dir, i, pr[i].gen++);
	pid_t pid;

	free(pr[i].url);
	pr[i].url = rt_url(&t, i, N, bootstrap ? EXTRA "&bootstrap=1" : EXTRA);
	free(pr[i].ack);
	pr[i].ack = ack;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		/* a node never outlives the test */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* the node's log next to its directory */
		char *log = tl_asprintf("%s/node%d.log", t.dir, i);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 2);
			close(fd);
		}
		execl(self, self, "node", pr[i].url, ack, idle ? "idle" : NULL,
		      (char *)NULL);
		_exit(127);
	}
	CHECK_FATAL(pid > 0, "fork");
	pr[i].pid = pid;
}

static int
reap(int i, int sig)
{
	int st = 0;

	if (pr[i].pid <= 0)
		return 0;
	kill(pr[i].pid, sig);
	waitpid(pr[i].pid, &st, 0);
	pr[i].pid = 0;
	return st;
}

/* A client of node i (its control socket), waiting for the node to be
 * up (bounded by a number of tries). */
static struct meta_kv *
client(int i)
{
	char *url = tl_asprintf("raft://%s/n%d", t.dir, i);
	struct meta_kv *kv = NULL;

	for (int tries = 0; tries < 500 && kv == NULL; tries++) {
		char *err = NULL;

		if (meta_kv_open(url, &kv, &err) != 0)
			usleep(20000);
		free(err);
	}
	free(url);
	return kv;
}

/* Node i's own status record through its control socket. */
static bool
status_of(int i, struct meta_kv_raft_node *out)
{
	struct meta_kv *c = client(i);
	struct meta_kv_raft_node *nodes;
	size_t nn;
	bool ok = false;

	if (c && meta_kv_raft_status(c, &nodes, &nn) == 0) {
		ok = nn > 0;
		if (ok)
			*out = nodes[0];
		free(nodes);
	}
	if (c)
		meta_kv_close(c);
	return ok;
}

/* Wait until node i (running) has applied beyond index + by: the others
 * wrote that much while a node was down (a number of entries, not a
 * time; bounded by a number of looks). */
static bool
wait_progress(int i, uint64_t index, uint64_t by)
{
	struct meta_kv_raft_node s;

	for (int tries = 0; tries < 600; tries++) {
		if (status_of(i, &s) && s.applied >= index + by)
			return true;
		usleep(20000);
	}
	return false;
}

static int
leader(void)
{
	for (int tries = 0; tries < 300; tries++) {
		for (int i = 1; i <= N; i++) {
			struct meta_kv *c;
			uint64_t l;

			if (pr[i].pid <= 0 || (c = client(i)) == NULL)
				continue;
			l = rt_leader(c);
			meta_kv_close(c);
			if (l && pr[l].pid > 0)
				return (int)l;
		}
		usleep(50000);
	}
	return 0;
}

/* Every acknowledged key of node i's ack files is present through kv. */
static int
missing_acks(struct meta_kv *kv, int i)
{
	int missing = 0;

	for (int g = 0; g < pr[i].gen; g++) {
		char *path = tl_asprintf("%s/ack%d.%d", t.dir, i, g);
		FILE *f = fopen(path, "r");
		char k[32];

		while (f && fscanf(f, "%31s", k) == 1) {
			char buf[8];

			if (rt_get(kv, k, buf, sizeof(buf)) != 0)
				missing++;
		}
		if (f)
			fclose(f);
		free(path);
	}
	return missing;
}

struct tally {
	struct tl_buf dump;
	uint64_t pkeys, ctr;
};

static int
tally_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct tally *ta = arg;

	tl_buf_append(&ta->dump, k, klen);
	tl_buf_append(&ta->dump, "=", 1);
	tl_buf_append(&ta->dump, v, vlen);
	if (klen > 1 && ((const char *)k)[0] == 'p')
		ta->pkeys++;
	if (klen == 3 && !memcmp(k, "ctr", 3) && vlen == 8)
		ta->ctr = tl_get_be64(v);
	return 0;
}

static void
tally(struct meta_kv *kv, struct tally *ta)
{
	struct meta_kv_txn *tx;

	tl_buf_reset(&ta->dump);
	ta->pkeys = ta->ctr = 0;
	if (meta_kv_begin(kv, true, &tx) == 0) {
		meta_kv_scan(tx, "", 0, NULL, 0, tally_cb, ta);
		meta_kv_abort(tx);
	}
}

int
main(int argc, char **argv)
{
	struct meta_kv_raft_node st;
	struct meta_kv *c;
	char *msg = NULL;
	int l, f, rc;

	if (argc >= 4 && strcmp(argv[1], "node") == 0)
		return node_main(argv[2], argv[3],
				 argc > 4 && !strcmp(argv[4], "idle"));
	self = argv[0];
	/* a hang is a failure (the nodes die with the test), not a stuck
	 * test run: the bound is on progress, far above any normal run */
	signal(SIGALRM, on_alarm);
	alarm(600);
	tl_log_set_level(TL_LOG_ERR);
	rt_init(&t, N);

	spawn(1, true, false);
	c = client(1);
	CHECK_FATAL(c != NULL, "node 1 runs (its control socket answers)");
	for (int i = 2; i <= N; i++) {
		char addr[64];

		spawn(i, false, false);
		snprintf(addr, sizeof(addr), "127.0.0.1:%d", t.port[i - 1]);
		/* the node must have copied its replica and listen first */
		meta_kv_close(client(i));
		rc = meta_kv_raft_change(c, META_KV_RAFT_ADD, (uint64_t)i, addr,
					 &msg);
		CHECK_EQ(rc, 0,
			 "node %d joins through node 1's control socket "
			 "(%s)",
			 i, msg ? msg : "");
		free(msg);
		msg = NULL;
	}
	meta_kv_close(c);
	usleep(500000); /* let the writers write */

	l = leader();
	CHECK(l > 0, "a leader: node %d", l);
	CHECK(status_of(l, &st), "node %d's status", l);
	CHECK(WIFSIGNALED(reap(l, SIGKILL)), "SIGKILL of the leader");
	CHECK(leader() > 0 && leader() != l, "another node leads");
	/* the others write on; their log moves past the snapshots */
	CHECK(wait_progress(l % N + 1, st.applied, 300),
	      "writes go on without node %d", l);
	spawn(l, false, false);
	CHECK(wait_progress(l, st.applied, 300),
	      "node %d comes back and "
	      "catches up",
	      l);
	CHECK(status_of(l, &st) && st.snapshots_received > 0,
	      "node %d restored a copy of a replica (%llu)", l,
	      (unsigned long long)st.snapshots_received);

	f = leader() % N + 1;
	CHECK(status_of(f, &st), "node %d's status", f);
	CHECK(WIFSIGNALED(reap(f, SIGKILL)), "SIGKILL of follower %d", f);
	CHECK(wait_progress(f % N + 1, st.applied, 200),
	      "writes go on without node %d", f);
	spawn(f, false, false);
	CHECK(wait_progress(f, st.applied, 200),
	      "node %d comes back and "
	      "catches up",
	      f);

	/* stop the writers cleanly (all at once: a node left alone would
	 * wait for a quorum), then look at every replica */
	for (int i = 1; i <= N; i++)
		kill(pr[i].pid, SIGTERM);
	for (int i = 1; i <= N; i++)
		CHECK(WIFEXITED(reap(i, SIGTERM)), "node %d stops on SIGTERM",
		      i);
	for (int i = 1; i <= N; i++)
		spawn(i, false, true);
	{
		struct tally ta[N + 1];
		bool same = true;

		for (int i = 1; i <= N; i++) {
			struct meta_kv_raft_node *nodes;
			size_t nn;

			memset(&ta[i], 0, sizeof(ta[i]));
			c = client(i);
			CHECK_FATAL(c != NULL, "client of node %d", i);
			for (int j = 1; j <= N; j++)
				CHECK_EQ(missing_acks(c, j), 0,
					 "every write node %d acknowledged is "
					 "read through node %d",
					 j, i);
			tally(c, &ta[i]);
			CHECK(ta[i].ctr == ta[i].pkeys && ta[i].pkeys > 0,
			      "node %d: the counter (%llu) counts the writes "
			      "(%llu): each applied once",
			      i, (unsigned long long)ta[i].ctr,
			      (unsigned long long)ta[i].pkeys);
			if (meta_kv_raft_status(c, &nodes, &nn) == 0) {
				printf("# node %d: applied %llu, snapshot "
				       "%llu, log %llu bytes\n",
				       i, (unsigned long long)nodes[0].applied,
				       (unsigned long long)nodes[0].snapshot,
				       (unsigned long long)nodes[0].log_bytes);
				free(nodes);
			}
			meta_kv_close(c);
			if (i > 1)
				same &= ta[i].dump.len == ta[1].dump.len &&
					!memcmp(ta[i].dump.data,
						ta[1].dump.data,
						ta[1].dump.len);
		}
		CHECK(same, "the replicas are identical");
		for (int i = 1; i <= N; i++)
			tl_buf_free(&ta[i].dump);
	}
	for (int i = 1; i <= N; i++) {
		reap(i, SIGTERM);
		free(pr[i].url);
		free(pr[i].ack);
	}
	rt_done(&t);
	return tap_done();
}
