/*
 * raft_fault_test - three (or five) tesserad on one raft:// volume, a
 * client per gateway sending creates, synchronous writes, renames and
 * removes, while the test breaks the group, cycle after cycle:
 *
 *   kill-leader     SIGKILL of the leader, restarted afterwards
 *   kill-follower   SIGKILL of a follower, restarted afterwards
 *   kill-two        SIGKILL of two of five (five nodes only)
 *   stop-leader     SIGSTOP of the leader; the others elect another;
 *                   SIGCONT: it must step down, and what it had not
 *                   committed vanishes
 *   cut-follower    a follower's veth link down (network namespaces),
 *   cut-leader      the leader's; then up again
 *
 * Each fault lasts until the clients on the other gateways made
 * progress (a number of acknowledged operations, not a time).  Then the
 * group heals and, with the clients paused:
 *   - every operation a client had acknowledged is there, read through
 *     another gateway than its own (names, inode numbers, every byte
 *     written FILE_SYNC); an operation whose answer was lost may or may
 *     not have happened, but never halfway (a renamed inode is under one
 *     name, exactly);
 *   - `tessera raft verify`: every replica hashes the same at one index;
 *   - `tessera fsck` through every node: clean.
 *
 * The group is founded the way an existing volume becomes replicated:
 * node 1 first serves an lmdb:// volume, files are written through it,
 * it is stopped, `tessera raft convert` makes the LMDB file the replica
 * of a group of one, and `tessera raft add` grows it to three (or five)
 * without a dump; `raft status` shows them all voters, the files read
 * back through every gateway (and again at the end), `raft verify` and
 * `fsck` are clean.
 *
 * Before the cycles, intruders: garbage sent to a node's raft port, and
 * a tesserad with another cluster secret asking the group for a replica;
 * both are refused and logged, and the group goes on.
 *
 * After the cycles, three cycles of corruption: a follower is killed,
 * bytes of its last closed log segment (then, on another follower, of
 * its newest snapshot) are flipped, and it is started again: it must
 * refuse to start, saying the log (the snapshot) is corrupt, while the
 * clients of the other gateways go on.  Then one byte of a committed
 * entry's body in a closed segment, with libraft's own batch checksum
 * computed again, so that libraft loads the log and only the entry's
 * CRC-32C (sealed by the leader) tells: the node must say "log entry N
 * is corrupt", apply nothing and stop (exit status 3), and answer no
 * NFS request.  Each time the operator's repair
 * ("Corrupt data" in tesserad(8)) follows: `tessera raft remove`, the
 * node's directory emptied, the node started and `tessera raft
 * add`-ed; then the same checks as after every cycle.
 * RAFT_FAULT_CORRUPT=0 leaves them out; a list (segment,snapshot,entry)
 * picks some.
 *
 * A client whose gateway fails (no answer, NFS3ERR_JUKEBOX) marks the
 * operation in flight unknown and goes on through the next gateway: file
 * handles are valid on every gateway.
 *
 * Network namespaces (root, iproute2): each gateway in its own, on a
 * bridge; names start with "tsr" and a number of this run, and are
 * removed at exit.  Without them (not root), the cut-* cycles are left
 * out and the gateways share the loopback address.
 *
 * Environment: RAFT_FAULT_CYCLES (default 12: each fault twice),
 * RAFT_FAULT_NODES (3 or 5), RAFT_FAULT_NETNS=0 (no namespaces),
 * TH_KEEP=1 (keep the directory), TH_SEED.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/tl.h"
#include "meta/kv.h"
#include "t/nfs/tharness.h"

#define MAXN     5
#define NNAMES   16
#define FMAX     (64 * 1024)
#define WMAX     (8 * 1024)
#define PROGRESS 100 /* acknowledged operations a fault lasts for */

enum { ABSENT, PRESENT, UNKNOWN };

/* ---- the group ---------------------------------------------------------- */

struct node {
	pid_t pid;
	char addr[32]; /* where clients and peers reach it */
	int nfs_port, raft_port;
	char conf[256];
	char dir[256];
	bool up, stopped, cut;
};

static struct {
	char dir[128];
	char secret[192];
	int n;
	bool netns;
	unsigned id; /* of this run: names of namespaces and links */
	struct node nd[MAXN + 2]; /* [MAXN + 1]: the intruder */
} g;

static char *sh_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static char *
sh_out(const char *fmt, ...)
{
	char cmd[2048], buf[4096];
	struct tl_buf b = TL_BUF_INIT;
	va_list ap;
	FILE *f;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	f = popen(cmd, "r");
	while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		tl_buf_append(&b, buf, n);
	if (f)
		pclose(f);
	tl_buf_append(&b, "", 1);
	return (char *)b.data;
}

static const char *
tessera_bin(void)
{
	static char p[512];

	snprintf(p, sizeof(p), "%s/tessera", th_builddir());
	return p;
}

/* The prefix of namespace i's command ("" without namespaces). */
static const char *
in_ns(int i)
{
	static char buf[MAXN + 1][64];

	if (!g.netns)
		return "";
	snprintf(buf[i], sizeof(buf[i]), "ip netns exec tsr%un%d ", g.id, i);
	return buf[i];
}

static void
net_down(void)
{
	if (!g.netns)
		return;
	for (int i = 1; i <= g.n; i++)
		sh("ip netns del tsr%un%d 2>/dev/null", g.id, i);
	sh("ip link del tsr%ub 2>/dev/null", g.id);
}

static bool
net_up(void)
{
	unsigned sub = 100 + g.id % 150;

	if (sh("ip link add tsr%ub type bridge 2>/dev/null", g.id) != 0)
		return false;
	sh("ip addr add 10.213.%u.254/24 dev tsr%ub", sub, g.id);
	sh("ip link set tsr%ub up", g.id);
	for (int i = 1; i <= g.n; i++) {
		if (sh("ip netns add tsr%un%d", g.id, i) != 0 ||
		    sh("ip link add tsr%ua%d type veth peer name tsr%uc%d",
		       g.id, i, g.id, i) != 0 ||
		    sh("ip link set tsr%uc%d netns tsr%un%d", g.id, i, g.id,
		       i) != 0 ||
		    sh("ip link set tsr%ua%d master tsr%ub up", g.id, i,
		       g.id) != 0 ||
		    sh("ip netns exec tsr%un%d ip addr add 10.213.%u.%d/24 dev "
		       "tsr%uc%d",
		       g.id, i, sub, i, g.id, i) != 0 ||
		    sh("ip netns exec tsr%un%d ip link set tsr%uc%d up", g.id,
		       i, g.id, i) != 0 ||
		    sh("ip netns exec tsr%un%d ip link set lo up", g.id, i) !=
			    0)
			return false;
		snprintf(g.nd[i].addr, sizeof(g.nd[i].addr), "10.213.%u.%d",
			 sub, i);
	}
	return true;
}

static void
cut(int i, bool down)
{
	sh("ip link set tsr%ua%d %s", g.id, i, down ? "down" : "up");
	g.nd[i].cut = down;
}

static void write_conf_secret(int i, const char *secret);

static void
write_conf(int i)
{
	write_conf_secret(i, g.secret);
}

static void
write_conf_secret(int i, const char *secret)
{
	struct tl_buf peers = TL_BUF_INIT;
	FILE *f;

	for (int k = 1; k <= g.n; k++) {
		char p[64];

		snprintf(p, sizeof(p), "%s%d@%s:%d", k > 1 ? "," : "", k,
			 g.nd[k].addr, g.nd[k].raft_port);
		tl_buf_append(&peers, p, strlen(p));
	}
	tl_buf_append(&peers, "", 1);
	/* g.dir is copied out: the nodes live in the same object g, and
	 * GCC's -Wrestrict (with ASan) cannot tell the fields apart. */
	char top[sizeof(g.dir)];
	memcpy(top, g.dir, sizeof(top));
	snprintf(g.nd[i].conf, sizeof(g.nd[i].conf), "%s/n%d.conf", top, i);
	snprintf(g.nd[i].dir, sizeof(g.nd[i].dir), "%s/n%d", top, i);
	f = fopen(g.nd[i].conf, "w");
	TH_REQUIRE(f != NULL, "write %s", g.nd[i].conf);
	fprintf(f,
		"raft_id = %d\nraft_dir = %s\nraft_address = %s:%d\n"
		"raft_peers = %s\nraft_secret_file = %s\n"
		"raft_election_timeout = 500ms\nraft_heartbeat = 50ms\n"
		"raft_timeout = 4s\nraft_snapshot_entries = 256\n"
		"raft_snapshot_trailing = 64\nlisten = %s:%d\n"
		"metrics_listen = off\nrpcbind = no\n"
		"session_timeout = 30s\nexports = %s/exports\n",
		i, g.nd[i].dir, g.nd[i].addr, g.nd[i].raft_port,
		(char *)peers.data, secret, g.nd[i].addr, g.nd[i].nfs_port,
		g.dir);
	fclose(f);
	tl_buf_free(&peers);
}

/* What node i serves: raft://, or (before the conversion, node 1) the
 * lmdb:// volume. */
static const char *node_meta = "raft://";

static void
start_node(int i)
{
	char log[300], bin[512];
	pid_t pid;

	snprintf(log, sizeof(log), "%s/n%d.log", g.dir, i);
	snprintf(bin, sizeof(bin), "%s/tesserad", th_builddir());
	pid = t_fork_logged(log);
	if (pid == 0) {
		if (g.netns) {
			char ns[32];

			snprintf(ns, sizeof(ns), "tsr%un%d", g.id, i);
			execlp("ip", "ip", "netns", "exec", ns, bin, "-c",
			       g.nd[i].conf, "--meta", node_meta, "-f",
			       (char *)NULL);
		} else {
			execl(bin, bin, "-c", g.nd[i].conf, "--meta", node_meta,
			      "-f", (char *)NULL);
		}
		_exit(127);
	}
	TH_REQUIRE(pid > 0, "fork");
	g.nd[i].pid = pid;
	g.nd[i].up = true;
	g.nd[i].stopped = false;
}

static void
kill_node(int i, int sig)
{
	if (g.nd[i].pid <= 0)
		return;
	kill(g.nd[i].pid, sig);
	if (sig == SIGKILL || sig == SIGTERM) {
		waitpid(g.nd[i].pid, NULL, 0);
		g.nd[i].pid = 0;
		g.nd[i].up = false;
	}
}

static void
cleanup(void)
{
	for (int i = 1; i <= g.n; i++)
		if (g.nd[i].pid > 0) {
			kill(g.nd[i].pid, SIGCONT);
			kill_node(i, SIGKILL);
		}
	net_down();
	if (g.dir[0] && !getenv("TH_KEEP"))
		sh("rm -rf '%s'", g.dir);
	else if (g.dir[0])
		th_diag("kept %s", g.dir);
}

/* The status as node i sees it, through its control socket. */
static bool
status_of(int i, struct meta_kv_raft_node **nodes, size_t *n)
{
	char *url = tl_asprintf("raft://%s", g.nd[i].dir), *err = NULL;
	struct meta_kv *kv;
	bool ok = false;

	if (meta_kv_open(url, &kv, &err) == 0) {
		ok = meta_kv_raft_status(kv, nodes, n) == 0;
		meta_kv_close(kv);
	}
	free(err);
	free(url);
	return ok;
}

/* The leader, as a running, reachable node says (0: none yet), and its
 * term. */
static int
leader_term(uint64_t *term)
{
	for (int i = 1; i <= g.n; i++) {
		struct meta_kv_raft_node *nodes;
		size_t n;
		int l = 0;

		if (!g.nd[i].up || g.nd[i].stopped || g.nd[i].cut ||
		    !status_of(i, &nodes, &n))
			continue;
		for (size_t k = 0; k < n; k++)
			if (strcmp(nodes[k].state, "leader") == 0) {
				l = (int)nodes[k].id;
				if (term)
					*term = nodes[k].term;
			}
		free(nodes);
		if (l && g.nd[l].up && !g.nd[l].stopped && !g.nd[l].cut)
			return l;
	}
	return 0;
}

static int
leader(void)
{
	return leader_term(NULL);
}

/* The term node i is in, as it says itself (0: no answer). */
static uint64_t
term_of(int i)
{
	struct meta_kv_raft_node *nodes;
	size_t n;
	uint64_t t = 0;

	if (status_of(i, &nodes, &n)) {
		if (n > 0 && nodes[0].id == (uint64_t)i)
			t = nodes[0].term;
		free(nodes);
	}
	return t;
}

static int
wait_leader(void)
{
	for (int tries = 0; tries < 600; tries++) {
		int l = leader();

		if (l)
			return l;
		usleep(50000);
	}
	return 0;
}

/* ---- the clients --------------------------------------------------------- */

struct cfile {
	uint64_t fileid;
	struct th_fh fh;
	uint64_t size;
	bool size_known;
	uint8_t data[FMAX];
	uint8_t known[FMAX];
	/* bytes of a write whose answer was lost: a stalled gateway may
	 * still carry it out later, after the client went on through
	 * another one (as any NFS server that stalls would), so they stay
	 * unknown until the next check, later writes or not */
	uint8_t pending[FMAX];
};

struct client {
	int id;
	pthread_t thread;
	struct th_conn cn;
	int gw; /* the gateway it talks to now */
	struct th_fh dirfh;
	int state[NNAMES];
	struct cfile *f[NNAMES];
	uint64_t rng;
	uint64_t acked, unknown, switches;
	bool connected;
};

static struct client cl[MAXN];
static int ncl;
static pthread_mutex_t cl_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cl_cv = PTHREAD_COND_INITIALIZER;
static bool paused, quit;
static int npaused;
static uint64_t total_acked;

static uint32_t
rnd(struct client *c, uint32_t n)
{
	return (uint32_t)(th_rand(&c->rng) % n);
}

/* Connect to the next gateway that runs (not the one that failed). */
static void
client_switch(struct client *c)
{
	th_disconnect(&c->cn);
	c->connected = false;
	for (int tries = 0; tries < 2 * g.n; tries++) {
		c->gw = c->gw % g.n + 1;
		if (!g.nd[c->gw].up || g.nd[c->gw].stopped || g.nd[c->gw].cut)
			continue;
		if (th_connect_host(&c->cn, g.nd[c->gw].addr,
				    g.nd[c->gw].nfs_port, "/", 0, 0) == 0) {
			c->connected = true;
			c->switches++;
			return;
		}
		th_disconnect(&c->cn);
	}
}

static void
acked(struct client *c)
{
	c->acked++;
	pthread_mutex_lock(&cl_lock);
	total_acked++;
	pthread_cond_broadcast(&cl_cv);
	pthread_mutex_unlock(&cl_lock);
}

/* An answer that decides nothing: the operation may or may not have
 * happened (no answer, or JUKEBOX: the commit's outcome was unknown). */
static bool
lost(int st)
{
	return st < 0 || st == NFS3ERR_JUKEBOX;
}

static void
name_of(int n, char *b)
{
	sprintf(b, "f%02d", n);
}

static void
one_op(struct client *c)
{
	int n = (int)rnd(c, NNAMES), r = (int)rnd(c, 100), st;
	char name[16], dname[16];

	name_of(n, name);
	if (c->state[n] == UNKNOWN)
		return; /* decided at the next check */
	if (c->state[n] == ABSENT) {
		struct th_obj o;

		st = th_create(&c->cn, &c->dirfh, name, GUARDED,
			       (sattr3[]){th_sattr_mode(0644)}, NULL, &o);
		if (lost(st)) {
			c->state[n] = UNKNOWN;
			c->unknown++;
			client_switch(c);
			return;
		}
		if (st != NFS3_OK || !o.fh_follows || !o.attr_follows) {
			th_diag("client %d: create %s: %s", c->id, name,
				th_stat_name(st));
			c->state[n] = UNKNOWN;
			return;
		}
		c->f[n] = tl_calloc(1, sizeof(*c->f[n]));
		c->f[n]->fh = o.fh;
		c->f[n]->fileid = o.attr.fileid;
		c->f[n]->size_known = true;
		c->state[n] = PRESENT;
		acked(c);
		return;
	}
	if (r < 55) { /* a FILE_SYNC write */
		struct cfile *f = c->f[n];
		uint64_t off = rnd(c, FMAX - 1);
		uint32_t len = 1 + rnd(c, WMAX);
		uint8_t buf[WMAX];

		if (off + len > FMAX)
			len = (uint32_t)(FMAX - off);
		th_fill(th_rand(&c->rng), buf, len);
		st = th_write(&c->cn, &f->fh, off, buf, len, FILE_SYNC, NULL);
		if (lost(st)) {
			memset(f->known + off, 0, len);
			memset(f->pending + off, 1, len);
			f->size_known = false;
			c->unknown++;
			client_switch(c);
			return;
		}
		if (st != NFS3_OK) {
			th_diag("client %d: write: %s", c->id,
				th_stat_name(st));
			return;
		}
		memcpy(f->data + off, buf, len);
		for (uint32_t i = 0; i < len; i++)
			f->known[off + i] = !f->pending[off + i];
		if (off + len > f->size)
			f->size = off + len;
		acked(c);
		return;
	}
	if (r < 85) { /* rename over another name of this client */
		int m = (int)rnd(c, NNAMES);

		if (m == n || c->state[m] == UNKNOWN)
			return;
		name_of(m, dname);
		st = th_rename(&c->cn, &c->dirfh, name, &c->dirfh, dname);
		if (lost(st)) {
			c->state[n] = c->state[m] = UNKNOWN;
			c->unknown++;
			client_switch(c);
			return;
		}
		if (st != NFS3_OK) {
			th_diag("client %d: rename: %s", c->id,
				th_stat_name(st));
			return;
		}
		free(c->f[m]);
		c->f[m] = c->f[n];
		c->f[n] = NULL;
		c->state[m] = PRESENT;
		c->state[n] = ABSENT;
		acked(c);
		return;
	}
	st = th_remove(&c->cn, &c->dirfh, name);
	if (lost(st)) {
		c->state[n] = UNKNOWN;
		c->unknown++;
		client_switch(c);
		return;
	}
	if (st != NFS3_OK) {
		th_diag("client %d: remove: %s", c->id, th_stat_name(st));
		return;
	}
	free(c->f[n]);
	c->f[n] = NULL;
	c->state[n] = ABSENT;
	acked(c);
}

static void *
client_main(void *arg)
{
	struct client *c = arg;

	for (;;) {
		pthread_mutex_lock(&cl_lock);
		while (paused && !quit) {
			npaused++;
			pthread_cond_broadcast(&cl_cv);
			while (paused && !quit)
				pthread_cond_wait(&cl_cv, &cl_lock);
			npaused--;
		}
		pthread_mutex_unlock(&cl_lock);
		if (quit)
			break;
		if (!c->connected) {
			client_switch(c);
			if (!c->connected) {
				usleep(100000);
				continue;
			}
		}
		one_op(c);
	}
	return NULL;
}

static void
pause_clients(bool p)
{
	pthread_mutex_lock(&cl_lock);
	paused = p;
	pthread_cond_broadcast(&cl_cv);
	while (p && npaused < ncl)
		pthread_cond_wait(&cl_cv, &cl_lock);
	pthread_mutex_unlock(&cl_lock);
}

/* Wait until the clients acknowledged `more` operations (a count, not a
 * time: a stall of two minutes fails). */
static bool
wait_progress(uint64_t more)
{
	uint64_t want;
	int loops = 0;

	pthread_mutex_lock(&cl_lock);
	want = total_acked + more;
	while (total_acked < want && loops++ < 120) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&cl_cv, &cl_lock, &ts);
	}
	pthread_mutex_unlock(&cl_lock);
	return total_acked >= want;
}

/* ---- checking ---------------------------------------------------------- */

static int64_t
read_all(struct th_conn *cn, const struct th_fh *fh, uint8_t *buf)
{
	uint64_t off = 0;

	for (;;) {
		uint32_t got = 0;
		bool eof = false;
		int st = th_read(cn, fh, off, 32768, buf + off, &got, &eof);

		if (st != NFS3_OK)
			return -1;
		off += got;
		if (eof || got == 0 || off >= FMAX)
			return (int64_t)off;
	}
}

/* Check client c's model through a gateway other than its own, and take
 * what the server holds for what the model did not know. */
static void
check_client(struct client *c, int cycle)
{
	struct th_conn cn;
	uint8_t *buf = tl_malloc(FMAX);
	int gw = c->gw % g.n + 1, bad = 0, where = 0;

	for (int tries = 0; tries < g.n && !where; tries++, gw = gw % g.n + 1)
		if (g.nd[gw].up && !g.nd[gw].stopped && !g.nd[gw].cut &&
		    th_connect_host(&cn, g.nd[gw].addr, g.nd[gw].nfs_port, "/",
				    0, 0) == 0)
			where = gw;
		else
			th_disconnect(&cn);
	TH_REQUIRE(where, "cycle %d: a gateway to check client %d through",
		   cycle, c->id);
	for (int n = 0; n < NNAMES; n++) {
		struct th_obj o;
		char name[16];
		int st;

		name_of(n, name);
		st = th_lookup(&cn, &c->dirfh, name, &o);
		if (c->state[n] == ABSENT && st != NFS3ERR_NOENT) {
			th_diag("client %d: %s should be absent: %s", c->id,
				name, th_stat_name(st));
			bad++;
		}
		if (c->state[n] == PRESENT) {
			struct cfile *f = c->f[n];
			int64_t sz;

			if (st != NFS3_OK || o.attr.fileid != f->fileid) {
				th_diag("client %d: %s (inode %llu) lost: %s",
					c->id, name,
					(unsigned long long)f->fileid,
					th_stat_name(st));
				bad++;
				continue;
			}
			sz = read_all(&cn, &f->fh, buf);
			for (int64_t i = 0; sz >= 0 && i < (int64_t)f->size;
			     i++)
				if (f->known[i] &&
				    (i >= sz || buf[i] != f->data[i])) {
					th_diag("client %d: %s byte %lld "
						"differs",
						c->id, name, (long long)i);
					bad++;
					break;
				}
		}
		/* what the server holds is now what the model knows */
		free(c->f[n]);
		c->f[n] = NULL;
		c->state[n] = st == NFS3_OK ? PRESENT : ABSENT;
		if (st == NFS3_OK) {
			int64_t sz = read_all(&cn, &o.fh, buf);

			c->f[n] = tl_calloc(1, sizeof(*c->f[n]));
			c->f[n]->fh = o.fh;
			c->f[n]->fileid = o.attr.fileid;
			c->f[n]->size = sz > 0 ? (uint64_t)sz : 0;
			c->f[n]->size_known = true;
			memcpy(c->f[n]->data, buf, c->f[n]->size);
			memset(c->f[n]->known, 1, c->f[n]->size);
		}
	}
	/* no inode under two names: a rename is all or nothing */
	for (int a = 0; a < NNAMES; a++)
		for (int b = a + 1; b < NNAMES; b++)
			if (c->f[a] && c->f[b] &&
			    c->f[a]->fileid == c->f[b]->fileid) {
				th_diag("client %d: inode %llu under two names",
					c->id,
					(unsigned long long)c->f[a]->fileid);
				bad++;
			}
	TH_CHECK(bad == 0,
		 "cycle %d: client %d's acknowledged operations "
		 "are all there, through gateway %d (%llu acknowledged, %llu "
		 "unknown so far)",
		 cycle, c->id, where, (unsigned long long)c->acked,
		 (unsigned long long)c->unknown);
	th_disconnect(&cn);
	free(buf);
}

static void
check_group(int cycle)
{
	int rc;

	/* verify waits for every node to hash its replica at one index */
	rc = sh("%s -c %s raft verify > %s/verify.out 2>&1", tessera_bin(),
		g.nd[wait_leader()].conf, g.dir);
	if (rc != 0)
		sh("sed 's/^/#   /' %s/verify.out", g.dir);
	TH_CHECK(rc == 0,
		 "cycle %d: tessera raft verify: the replicas are "
		 "identical",
		 cycle);
	for (int i = 1; i <= g.n; i++) {
		rc = sh("%s -c %s fsck raft:// > %s/fsck%d.out 2>&1",
			tessera_bin(), g.nd[i].conf, g.dir, i);
		if (rc != 0)
			sh("tail -20 %s/fsck%d.out | sed 's/^/#   /'", g.dir,
			   i);
		TH_CHECK(rc == 0,
			 "cycle %d: tessera fsck through node %d: "
			 "clean",
			 cycle, i);
	}
}

/* Every node runs and follows the leader, within a few entries. */
static bool
wait_healthy(void)
{
	for (int tries = 0; tries < 600; tries++) {
		struct meta_kv_raft_node *nodes;
		size_t n;
		int l = wait_leader();
		bool ok = false;

		if (l && status_of(l, &nodes, &n)) {
			uint64_t commit = nodes[0].commit;
			size_t good = 0;

			for (size_t k = 0; k < n; k++)
				good += strcmp(nodes[k].role, "voter") == 0 &&
					nodes[k].applied + 64 >= commit;
			ok = (int)good == g.n && (int)n == g.n;
			free(nodes);
		}
		if (ok)
			return true;
		usleep(100000);
	}
	return false;
}

/* After the healing (the repair) of cycle k: every node back, the
 * clients going on; with them paused, every client's acknowledged
 * operations there, the replicas identical, fsck clean. */
static void
check_healed(int k, const char *what)
{
	TH_CHECK(wait_healthy(), "cycle %d: every node back and caught up", k);
	TH_CHECK(wait_progress(PROGRESS / 2),
		 "cycle %d: the clients go on "
		 "after the %s",
		 k, what);
	pause_clients(true);
	for (int i = 0; i < ncl; i++)
		check_client(&cl[i], k);
	check_group(k);
	pause_clients(false);
}

/* ---- the cycles ---------------------------------------------------------- */

static uint64_t t_start;

enum fault {
	F_KILL_LEADER,
	F_KILL_FOLLOWER,
	F_KILL_TWO,
	F_STOP_LEADER,
	F_CUT_FOLLOWER,
	F_CUT_LEADER,
	F_N
};
static const char *const fault_name[] = {"kill-leader",  "kill-follower",
					 "kill-two",     "stop-leader",
					 "cut-follower", "cut-leader"};

static void
cycle(int k, enum fault f)
{
	uint64_t term = 0;
	int l = 0, o;

	for (int tries = 0; tries < 600 && !l; tries++)
		if (!(l = leader_term(&term)))
			usleep(50000);

	TH_REQUIRE(l > 0, "cycle %d: a leader", k);
	o = l % g.n + 1;
	th_diag("cycle %d: %s (leader %d), %.1f s", k, fault_name[f], l,
		(double)(th_now_ms() - t_start) / 1000);
	switch (f) {
	case F_KILL_LEADER:
		kill_node(l, SIGKILL);
		break;
	case F_KILL_FOLLOWER:
		kill_node(o, SIGKILL);
		break;
	case F_KILL_TWO:
		kill_node(l, SIGKILL);
		kill_node(o, SIGKILL);
		break;
	case F_STOP_LEADER:
		kill_node(l, SIGSTOP);
		g.nd[l].stopped = true;
		break;
	case F_CUT_FOLLOWER:
		cut(o, true);
		break;
	case F_CUT_LEADER:
		cut(l, true);
		break;
	default:
		break;
	}
	TH_CHECK(wait_progress(PROGRESS),
		 "cycle %d: %s: the clients of the "
		 "other gateways go on",
		 k, fault_name[f]);
	/* heal */
	for (int i = 1; i <= g.n; i++) {
		if (g.nd[i].stopped) {
			kill(g.nd[i].pid, SIGCONT);
			g.nd[i].stopped = false;
		}
		if (g.nd[i].cut)
			cut(i, false);
		if (!g.nd[i].up)
			start_node(i);
	}
	if (f == F_STOP_LEADER) {
		/* the others elected a leader in a later term: once resumed,
		 * node l learns of it and no longer leads term `term` (it may
		 * be elected again later, in a new term) */
		uint64_t t = 0;

		for (int tries = 0; tries < 100; tries++) {
			t = term_of(l);
			if (t > term)
				break;
			usleep(100000);
		}
		TH_CHECK(t > term,
			 "cycle %d: the stopped leader %d resumed "
			 "and left term %llu (now in %llu)",
			 k, l, (unsigned long long)term, (unsigned long long)t);
	}
	check_healed(k, "healing");
}

/* ---- peers that are not of the group --------------------------------------- */

static long file_size(const char *path);

/* Whether node i wrote what since its log had off bytes. */
static bool
log_has(int i, long off, const char *what)
{
	char *log = sh_out("tail -c +%ld %s/n%d.log", off + 1, g.dir, i);
	bool yes = strstr(log, what) != NULL;

	free(log);
	return yes;
}

static long
log_size(int i)
{
	char path[300];

	snprintf(path, sizeof(path), "%s/n%d.log", g.dir, i);
	return file_size(path) < 0 ? 0 : file_size(path);
}

/* Garbage sent to node 1's raft port, then a tesserad with another
 * secret asking the group for a replica: both refused, and logged; the
 * group goes on. */
static void
intruders(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct timeval tv = {.tv_sec = 60};
	int x = MAXN + 1, fd, st = 0;
	long off = log_size(1), offs[MAXN + 1];
	uint8_t junk[512];
	ssize_t r;
	bool seen;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sa.sin_port = htons((uint16_t)g.nd[1].raft_port);
	inet_pton(AF_INET, g.nd[1].addr, &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	TH_REQUIRE(fd >= 0 &&
			   connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
		   "connect to node 1's raft port");
	th_fill(12345, junk, sizeof(junk));
	junk[0] = 'G'; /* whatever the fill: not a hello */
	TH_CHECK(write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk),
		 "garbage sent to node 1's raft port");
	while ((r = read(fd, junk, sizeof(junk))) > 0)
		;
	TH_CHECK(r == 0, "node 1 closes the connection");
	close(fd);
	seen = false;
	for (int tries = 0; tries < 300 && !seen; tries++)
		if (!(seen = log_has(1, off, "is not a Tessera node")))
			usleep(100000);
	TH_CHECK(seen, "and logs it");

	/* another secret: node 6, outside the group's namespaces */
	char bad[300], bin[512], log[300];

	snprintf(bad, sizeof(bad), "%s/other.key", g.dir);
	TH_REQUIRE(sh("%s raft secret %s >/dev/null", tessera_bin(), bad) == 0,
		   "tessera raft secret (another one)");
	/* with namespaces, the bridge's address (the root namespace) */
	snprintf(g.nd[x].addr, sizeof(g.nd[x].addr), "%s",
		 g.netns ? g.nd[1].addr : "127.0.0.1");
	if (g.netns)
		strcpy(strrchr(g.nd[x].addr, '.'), ".254");
	/* the free end of this run's block of NFS ports (main) */
	g.nd[x].nfs_port = 24000 + (int)(g.id % 1000) * 10 + 8;
	g.nd[x].raft_port = g.nd[x].nfs_port + 1;
	write_conf_secret(x, bad);
	for (int i = 1; i <= g.n; i++)
		offs[i] = log_size(i);
	snprintf(log, sizeof(log), "%s/n%d.log", g.dir, x);
	snprintf(bin, sizeof(bin), "%s/tesserad", th_builddir());
	g.nd[x].pid = fork();
	if (g.nd[x].pid == 0) {
		int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (lfd >= 0) {
			dup2(lfd, 1);
			dup2(lfd, 2);
		}
		execl(bin, bin, "-c", g.nd[x].conf, "--meta", "raft://", "-f",
		      (char *)NULL);
		_exit(127);
	}
	TH_REQUIRE(g.nd[x].pid > 0, "fork");
	seen = false;
	for (int tries = 0; tries < 300 && !seen; tries++) {
		for (int i = 1; i <= g.n && !seen; i++)
			seen = log_has(i, offs[i],
				       "without proving the "
				       "cluster secret");
		if (!seen)
			usleep(100000);
	}
	TH_CHECK(seen, "a node with another secret is refused by the group, "
		       "and logged");
	kill(g.nd[x].pid, SIGKILL);
	waitpid(g.nd[x].pid, &st, 0);
	g.nd[x].pid = 0;
	TH_CHECK(wait_healthy(), "the group is whole");
	TH_CHECK(wait_progress(PROGRESS / 2), "the clients go on");
}

/* ---- a volume that was lmdb:// ------------------------------------------ */

#define NPRE 8 /* files written before the conversion */

static uint32_t
pre_len(int k)
{
	return (uint32_t)(k * 7919 % FMAX) + 1;
}

/* Connect to gateway i, waiting while it opens its volume. */
static bool
connect_gw(struct th_conn *cn, int i)
{
	for (int tries = 0; tries < 300; tries++) {
		if (th_connect_host(cn, g.nd[i].addr, g.nd[i].nfs_port, "/", 0,
				    0) == 0)
			return true;
		th_disconnect(cn);
		usleep(100000);
	}
	return false;
}

/* Node 1 serves a new lmdb:// volume; files written through NFS
 * (FILE_SYNC); node 1 stopped; `tessera raft convert`: its replica is
 * the LMDB file, in a group of one (the other nodes are added by main,
 * as after a `format raft://`). */
static void
lmdb_convert(void)
{
	char url[300];
	struct th_conn cn = {0};
	struct th_obj d, o;
	uint8_t *buf = tl_malloc(FMAX);
	char *out;
	int rc;

	snprintf(url, sizeof(url), "lmdb://%s/lmdb", g.dir);
	sh("mkdir -p %s/obj", g.dir);
	rc = sh("%s format %s file://%s/obj vol > %s/format.out 2>&1",
		tessera_bin(), url, g.dir, g.dir);
	if (rc)
		sh("sed 's/^/#   /' %s/format.out", g.dir);
	TH_REQUIRE(rc == 0, "tessera format lmdb://");
	node_meta = url;
	start_node(1);
	TH_REQUIRE(connect_gw(&cn, 1), "a client of node 1 (lmdb://)");
	TH_REQUIRE(th_mkdir(&cn, &cn.root, "pre", NULL, &d) == NFS3_OK &&
			   d.fh_follows,
		   "mkdir pre");
	for (int k = 0; k < NPRE; k++) {
		char name[16];

		sprintf(name, "p%d", k);
		th_fill((uint64_t)k + 77, buf, pre_len(k));
		rc = th_create(&cn, &d.fh, name, GUARDED,
			       (sattr3[]){th_sattr_mode(0644)}, NULL, &o);
		if (rc == NFS3_OK)
			rc = th_write(&cn, &o.fh, 0, buf, pre_len(k), FILE_SYNC,
				      NULL);
		TH_REQUIRE(rc == NFS3_OK,
			   "pre/%s: %u bytes written through "
			   "the lmdb:// gateway",
			   name, pre_len(k));
	}
	th_disconnect(&cn);
	free(buf);
	kill_node(1, SIGTERM);
	node_meta = "raft://";
	out = sh_out("%s%s -c %s raft convert %s 2>&1", in_ns(1), tessera_bin(),
		     g.nd[1].conf, url);
	TH_REQUIRE(strstr(out, "done") != NULL,
		   "tessera raft convert %s "
		   "(%s)",
		   url, out);
	free(out);
}

/* The files written before the conversion, read through every gateway. */
static void
check_pre(const char *when)
{
	uint8_t *buf = tl_malloc(FMAX), *want = tl_malloc(FMAX);

	for (int i = 1; i <= g.n; i++) {
		struct th_conn cn = {0};
		struct th_obj d, o;
		int bad = 0;

		if (!connect_gw(&cn, i)) {
			TH_CHECK(false, "%s: connect to gateway %d", when, i);
			continue;
		}
		if (th_lookup(&cn, &cn.root, "pre", &d) != NFS3_OK)
			bad = NPRE;
		for (int k = 0; k < NPRE && !bad; k++) {
			char name[16];

			sprintf(name, "p%d", k);
			th_fill((uint64_t)k + 77, want, pre_len(k));
			if (th_lookup(&cn, &d.fh, name, &o) != NFS3_OK ||
			    read_all(&cn, &o.fh, buf) != (int64_t)pre_len(k) ||
			    memcmp(buf, want, pre_len(k)) != 0)
				bad++;
		}
		TH_CHECK(bad == 0,
			 "%s: the %d files written on lmdb:// read "
			 "back whole through gateway %d",
			 when, NPRE, i);
		th_disconnect(&cn);
	}
	free(buf);
	free(want);
}

/* ---- corruption ---------------------------------------------------------- */

/* Wait for node i's process to end (it must, on its own); its exit
 * status, or -1 if it still runs after a minute. */
static int
wait_exit(int i)
{
	for (int tries = 0; tries < 600; tries++) {
		int st;

		if (waitpid(g.nd[i].pid, &st, WNOHANG) == g.nd[i].pid) {
			g.nd[i].pid = 0;
			g.nd[i].up = false;
			return WIFEXITED(st) ? WEXITSTATUS(st)
					     : 128 + WTERMSIG(st);
		}
		usleep(100000);
	}
	return -1;
}

/* The newest file of node i's log directory whose name matches the
 * extended regular expression re ("" if none). */
static char *
newest(int i, const char *re)
{
	char *out = sh_out("ls %s/log | grep -E '%s' | sort -t- -k2,2n -k3,3n "
			   "| tail -1",
			   g.nd[i].dir, re);

	out[strcspn(out, "\n")] = '\0';
	return out;
}

/* Flip len bytes of file at offset (within the file). */
static bool
flip(const char *path, long off, int len)
{
	FILE *f = fopen(path, "r+");
	uint8_t b[64];
	bool ok = false;

	if (f == NULL)
		return false;
	if (fseek(f, off, SEEK_SET) == 0 &&
	    fread(b, 1, (size_t)len, f) == (size_t)len) {
		for (int k = 0; k < len; k++)
			b[k] ^= 0x5a;
		ok = fseek(f, off, SEEK_SET) == 0 &&
		     fwrite(b, 1, (size_t)len, f) == (size_t)len;
	}
	ok = fclose(f) == 0 && ok;
	return ok;
}

static long
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* The operator's repair of node i ("Corrupt data" in tesserad(8)): out
 * of the group, its directory emptied, back in as a new node; then the
 * checks of every cycle. */
static void
replace_node(int k, int i)
{
	char *out;
	int l = wait_leader();

	TH_REQUIRE(l > 0 && l != i, "cycle %d: a leader", k);
	out = sh_out("%s -c %s raft remove %d 2>&1", tessera_bin(),
		     g.nd[l].conf, i);
	TH_CHECK(strstr(out, "done") != NULL,
		 "cycle %d: tessera raft remove "
		 "%d (%s)",
		 k, i, out);
	free(out);
	sh("rm -rf '%s'", g.nd[i].dir);
	start_node(i);
	for (int tries = 0; tries < 100; tries++) {
		out = sh_out("%s -c %s raft add %d %s:%d 2>&1", tessera_bin(),
			     g.nd[wait_leader()].conf, i, g.nd[i].addr,
			     g.nd[i].raft_port);
		if (strstr(out, "done") != NULL)
			break;
		free(out);
		out = NULL;
		usleep(100000); /* the new node may still be seeding */
	}
	TH_CHECK(out != NULL,
		 "cycle %d: tessera raft add %d: the node joins "
		 "again",
		 k, i);
	free(out);
	check_healed(k, "repair");
}

/* libraft's checksum of its log batches (CRC-32, MSB first, polynomial
 * 0x04c11db7, no inversion: byteCrc32 in its src/byte.c). */
static uint32_t
libraft_crc(const uint8_t *p, size_t n)
{
	uint32_t crc = 0;

	while (n--) {
		crc ^= (uint32_t)*p++ << 24;
		for (int k = 0; k < 8; k++)
			crc = crc & 0x80000000u ? (crc << 1) ^ 0x04c11db7u
						: crc << 1;
	}
	return crc;
}

static uint64_t
le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int k = 7; k >= 0; k--)
		v = v << 8 | p[k];
	return v;
}

static void
put_le32(uint8_t *p, uint32_t v)
{
	for (int k = 0; k < 4; k++)
		p[k] = (uint8_t)(v >> (8 * k));
}

/* In node i's closed segment name (libraft 0.22's format: u64 format
 * version 1, then batches: crc32 of the header, crc32 of the data, the
 * header: u64 n, n times term u64, type u8, 3 unused, length u32, all
 * little-endian; then the n payloads, each a multiple of 8 bytes), the
 * last command entry of Tessera (magic "TSRE") whose index is in (lo,
 * hi]: one byte of its body flipped, the batch's data checksum computed
 * again, so that libraft loads the segment and only Tessera's own
 * checksum can tell.  Its index, or 0 if the segment has none. */
static uint64_t
corrupt_entry(int i, const char *name, uint64_t lo, uint64_t hi)
{
	char path[512];
	unsigned long long first, last;
	uint8_t *b;
	size_t len;
	FILE *f;
	size_t off = 8, hit = 0, hit_batch = 0, hit_data = 0, hit_dlen = 0;
	uint64_t idx, found = 0;

	if (sscanf(name, "%llu-%llu", &first, &last) != 2)
		return 0;
	snprintf(path, sizeof(path), "%s/log/%s", g.nd[i].dir, name);
	if ((f = fopen(path, "r+")) == NULL)
		return 0;
	len = (size_t)file_size(path);
	b = tl_malloc(len + 1);
	if (fread(b, 1, len, f) != len || len < 8 || le64(b) != 1)
		goto out;
	idx = first;
	while (off + 16 <= len) {
		uint64_t n = le64(b + off + 8);
		size_t hdr = off + 16, data = hdr + 16 * n, p = data;

		if (n == 0 || data > len)
			break;
		for (uint64_t e = 0; e < n; e++, idx++) {
			const uint8_t *h = b + hdr + 16 * e;
			size_t elen = (size_t)h[12] | (size_t)h[13] << 8 |
				      (size_t)h[14] << 16 | (size_t)h[15] << 24;

			if (p + elen > len)
				goto out;
			if (h[8] == 1 /* RAFT_COMMAND */ && idx > lo &&
			    idx <= hi && elen > 18 &&
			    memcmp(b + p, "TSRE", 4) == 0) {
				found = idx;
				hit = p + 18; /* the first byte of the body */
				hit_batch = off;
				hit_data = data;
			}
			p += elen;
		}
		if (found && hit_batch == off)
			hit_dlen = p - data;
		off = p;
	}
	if (found) {
		b[hit] ^= 0x5a;
		put_le32(b + hit_batch + 4,
			 libraft_crc(b + hit_data, hit_dlen));
		if (fseek(f, 0, SEEK_SET) != 0 || fwrite(b, 1, len, f) != len)
			found = 0;
	}
out:
	if (fclose(f) != 0)
		found = 0;
	free(b);
	return found;
}

/* The index of node i's newest snapshot (0: none). */
static uint64_t
snapshot_index(int i)
{
	char *name = newest(i, "^snapshot-[0-9-]+$");
	unsigned long long term, index = 0;

	if (sscanf(name, "snapshot-%llu-%llu", &term, &index) != 2)
		index = 0;
	free(name);
	return index;
}

/* The applied index of node i as the leader reports it (-1: unknown). */
static int64_t
applied_of(int i, uint64_t *commit)
{
	struct meta_kv_raft_node *nodes;
	size_t n;
	int64_t a = -1;
	int l = wait_leader();

	if (l <= 0 || !status_of(l, &nodes, &n))
		return -1;
	for (size_t k = 0; k < n; k++)
		if (nodes[k].id == (uint64_t)i &&
		    strcmp(nodes[k].state, "unavailable") != 0)
			a = (int64_t)nodes[k].applied;
	if (commit && n > 0)
		*commit = nodes[0].commit;
	free(nodes);
	return a;
}

/* A command entry in a stopped follower's log made corrupt in a way
 * libraft cannot see (its batch checksum recomputed): the node starts,
 * finds the entry's own checksum wrong when it comes to apply it,
 * applies nothing from then on and answers no NFS request; the others
 * serve.  Then the operator's repair. */
static void
corrupt_entry_cycle(int k)
{
	int l = wait_leader(), o;
	uint64_t index = 0, commit = 0;
	int64_t a0, a1;
	char what[64], *log, path[300];
	long size;
	int st;

	TH_REQUIRE(l > 0, "cycle %d: a leader", k);
	o = (l + 2) % g.n + 1;
	if (o == l)
		o = o % g.n + 1;
	th_diag("cycle %d: corrupt a log entry of node %d (leader %d), %.1f s",
		k, o, l, (double)(th_now_ms() - t_start) / 1000);
	/* the entry must be committed, and above the node's snapshot (so
	 * that it is applied again from the log at the next start) */
	for (int tries = 0; tries < 20 && !index; tries++) {
		char *name;

		/* the clients wait, so that the leader's log does not move
		 * past the node's (it would send a replica copy instead of
		 * the entries, and the node would not apply its own) */
		pause_clients(true);
		kill_node(o, SIGKILL);
		applied_of(l, &commit);
		name = newest(o, "^[0-9]+-[0-9]+$");
		if (name[0])
			index = corrupt_entry(o, name, snapshot_index(o),
					      commit);
		free(name);
		if (index)
			break;
		/* a start closes the open segments, and the entries above
		 * the node's snapshot are in them: kill it again as soon as
		 * it is back.  (Waiting for client progress here let the
		 * gateways' own entries, under ASan's slowness, pass the
		 * next snapshot, which then covered the closed segment at
		 * every try.) */
		pause_clients(false);
		start_node(o);
		TH_CHECK(wait_healthy(), "cycle %d: node %d back", k, o);
	}
	TH_REQUIRE(index > 0,
		   "cycle %d: a committed command entry of node "
		   "%d, in a closed segment, above its snapshot: one byte "
		   "flipped, libraft's checksum recomputed",
		   k, o);
	th_diag("cycle %d: entry %llu of node %d corrupted (its snapshot at "
		"%llu, the commit at %llu)",
		k, (unsigned long long)index, o,
		(unsigned long long)snapshot_index(o),
		(unsigned long long)commit);
	snprintf(path, sizeof(path), "%s/n%d.log", g.dir, o);
	size = file_size(path);
	start_node(o);
	snprintf(what, sizeof(what), "log entry %llu is corrupt",
		 (unsigned long long)index);
	log = NULL;
	for (int tries = 0; tries < 600; tries++) {
		free(log);
		log = sh_out("tail -c +%ld %s", size + 1, path);
		if (strstr(log, what) || waitpid(g.nd[o].pid, NULL, WNOHANG))
			break;
		usleep(100000);
	}
	pause_clients(false);
	TH_CHECK(!strstr(log, "refuses to start"),
		 "cycle %d: libraft loaded "
		 "the segment (its checksums hold)",
		 k);
	TH_CHECK(strstr(log, what) != NULL && strstr(log, "not applied"),
		 "cycle %d: node %d refuses to apply entry %llu, and says "
		 "why",
		 k, o, (unsigned long long)index);
	if (!strstr(log, what))
		th_diag("%s", log);
	free(log);
	/* it applies nothing more, serves nothing; the others go on.  The
	 * process ends (exit status 3, meta_kvr_node_fail), whether found
	 * while tesserad starts or later; a node still running is checked
	 * to apply nothing. */
	a0 = applied_of(o, NULL);
	TH_CHECK(wait_progress(PROGRESS),
		 "cycle %d: the clients of the "
		 "other gateways go on",
		 k);
	if (waitpid(g.nd[o].pid, &st, WNOHANG) == g.nd[o].pid) {
		g.nd[o].pid = 0;
		g.nd[o].up = false;
		TH_CHECK(!WIFEXITED(st) || WEXITSTATUS(st) != 0,
			 "cycle %d: node %d stopped (it was starting)", k, o);
	} else {
		a1 = applied_of(o, &commit);
		TH_CHECK(a0 == a1 && a1 >= 0 && (uint64_t)a1 < commit,
			 "cycle %d: node %d applies nothing from then on "
			 "(applied %lld, then %lld; the group's commit %llu)",
			 k, o, (long long)a0, (long long)a1,
			 (unsigned long long)commit);
	}
	{
		struct th_conn cn = {0};
		fattr3 at;
		int rc = th_connect_host(&cn, g.nd[o].addr, g.nd[o].nfs_port,
					 "/", 0, 0);

		if (rc == 0)
			rc = th_getattr(&cn, &cn.root, &at);
		th_disconnect(&cn);
		TH_CHECK(rc != 0,
			 "cycle %d: node %d answers no NFS request "
			 "with data (%d)",
			 k, o, rc);
	}
	kill_node(o, SIGKILL); /* the operator stops it */
	replace_node(k, o);
}

enum corruption { C_SEGMENT, C_SNAPSHOT };

static void
corrupt_cycle(int k, enum corruption c)
{
	const char *what =
		c == C_SEGMENT ? "a closed log segment" : "the newest snapshot";
	char path[512], *name, *log;
	int l = wait_leader(), o, rc;
	long size;

	TH_REQUIRE(l > 0, "cycle %d: a leader", k);
	/* a follower, not the one the last cycle replaced (its log is new) */
	o = (l + (c == C_SEGMENT ? 0 : 1)) % g.n + 1;
	if (o == l)
		o = o % g.n + 1;
	th_diag("cycle %d: corrupt %s of node %d (leader %d), %.1f s", k, what,
		o, l, (double)(th_now_ms() - t_start) / 1000);
	if (c == C_SEGMENT) {
		/* a start closes the open segments (a snapshot may delete
		 * the closed ones again): one is then loaded whole at the
		 * next start */
		kill_node(o, SIGKILL);
		name = newest(o, "^[0-9]+-[0-9]+$");
		for (int tries = 0; tries < 10 && !name[0]; tries++) {
			free(name);
			start_node(o);
			TH_CHECK(wait_healthy(), "cycle %d: node %d back", k,
				 o);
			kill_node(o, SIGKILL);
			name = newest(o, "^[0-9]+-[0-9]+$");
		}
	} else {
		/* libraft takes a snapshot every raft_snapshot_entries */
		name = newest(o, "^snapshot-[0-9-]+$");
		for (int tries = 0; tries < 20 && !name[0]; tries++) {
			free(name);
			wait_progress(PROGRESS);
			name = newest(o, "^snapshot-[0-9-]+$");
		}
	}
	kill_node(o, SIGKILL);
	TH_REQUIRE(name[0], "cycle %d: node %d has %s", k, o, what);
	snprintf(path, sizeof(path), "%s/log/%s", g.nd[o].dir, name);
	size = file_size(path);
	/* a segment: 8 bytes in its middle (headers and data are all under
	 * libraft's checksums); the snapshot: the last byte of its index */
	TH_REQUIRE(size > (c == C_SEGMENT ? 64 : 16),
		   "cycle %d: %s is %ld "
		   "bytes",
		   k, path, size);
	TH_REQUIRE(c == C_SEGMENT ? flip(path, size / 2, 8)
				  : flip(path, size - 5, 1),
		   "cycle %d: flip bytes of %s", k, path);
	free(name);
	snprintf(path, sizeof(path), "%s/n%d.log", g.dir, o);
	size = file_size(path);
	start_node(o);
	rc = wait_exit(o);
	TH_CHECK(rc > 0 && rc < 128,
		 "cycle %d: node %d refuses to start on "
		 "%s (exit status %d)",
		 k, o, what, rc);
	if (rc == -1)
		kill_node(o, SIGKILL);
	/* what it wrote in this start */
	log = sh_out("tail -c +%ld %s", size + 1, path);
	TH_CHECK(strstr(log, "refuses to start") != NULL &&
			 strstr(log, c == C_SEGMENT ? "log" : "snapshot") !=
				 NULL,
		 "cycle %d: and says why", k);
	if (!strstr(log, "refuses to start"))
		th_diag("%s", log);
	free(log);
	TH_CHECK(wait_progress(PROGRESS),
		 "cycle %d: the clients of the other "
		 "gateways go on",
		 k);
	replace_node(k, o);
}

static void
on_signal(int sig)
{
	(void)sig;
	exit(1); /* atexit cleans up */
}

int
main(void)
{
	const char *e;
	int cycles = 12, rc;
	char *out;

	e = getenv("RAFT_FAULT_CYCLES");
	if (e)
		cycles = atoi(e);
	e = getenv("RAFT_FAULT_NODES");
	g.n = e && atoi(e) == 5 ? 5 : 3;
	g.id = (unsigned)getpid() % 10000;
	strcpy(g.dir, "/tmp/raft-fault-XXXXXX");
	TH_REQUIRE(mkdtemp(g.dir) != NULL, "mkdtemp");
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	tl_log_set_level(TL_LOG_ERR);
	th_set_stall_ms(10000); /* a stopped or cut gateway: try another */
	t_start = th_now_ms();
	g.netns = getuid() == 0 &&
		  !(getenv("RAFT_FAULT_NETNS") &&
		    strcmp(getenv("RAFT_FAULT_NETNS"), "0") == 0);
	if (g.netns && !net_up()) {
		th_diag("no network namespaces here: gateways on loopback, "
			"without the cut-* cycles");
		net_down();
		g.netns = false;
	}
	for (int i = 1; i <= g.n; i++) {
		if (!g.netns) {
			snprintf(g.nd[i].addr, sizeof(g.nd[i].addr),
				 "127.0.0.1");
			g.nd[i].nfs_port = 24000 + (int)(g.id % 1000) * 10 + i;
			g.nd[i].raft_port = 25000 + (int)(g.id % 1000) * 10 + i;
		} else {
			g.nd[i].nfs_port = 2049;
			g.nd[i].raft_port = 7070;
		}
	}
	snprintf(g.secret, sizeof(g.secret), "%s/raft.key", g.dir);
	TH_REQUIRE(sh("%s raft secret %s >/dev/null", tessera_bin(),
		      g.secret) == 0,
		   "tessera raft secret");
	sh("echo '/ 127.0.0.1(rw,insecure,no_root_squash) "
	   "10.213.0.0/16(rw,insecure,no_root_squash)' > %s/exports",
	   g.dir);
	for (int i = 1; i <= g.n; i++)
		write_conf(i);
	lmdb_convert();
	for (int i = 1; i <= g.n; i++)
		start_node(i);
	TH_REQUIRE(wait_leader() == 1, "node 1 leads");
	for (int i = 2; i <= g.n; i++) {
		out = sh_out("%s -c %s raft add %d %s:%d 2>&1", tessera_bin(),
			     g.nd[1].conf, i, g.nd[i].addr, g.nd[i].raft_port);
		TH_REQUIRE(strstr(out, "done") != NULL, "node %d joins (%s)", i,
			   out);
		free(out);
	}
	TH_REQUIRE(wait_healthy(), "%d nodes up", g.n);
	out = sh_out("%s -c %s raft status 2>&1", tessera_bin(), g.nd[1].conf);
	{
		int voters = 0;

		for (char *p = out; (p = strstr(p, "voter")); p++)
			voters++;
		TH_CHECK(strstr(out, "leader") && voters == g.n,
			 "tessera raft status: a leader, %d voters", g.n);
		sh("%s -c %s raft status 2>&1 | sed 's/^/#   /'", tessera_bin(),
		   g.nd[1].conf);
	}
	free(out);
	check_pre("after the conversion");
	check_group(0);

	/* one client per gateway, each in its own directory */
	ncl = g.n;
	for (int i = 0; i < ncl; i++) {
		struct client *c = &cl[i];
		struct th_obj o;
		char d[16];

		c->id = i;
		c->gw = i + 1;
		c->rng = (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ULL ^
			 (getenv("TH_SEED") ? strtoull(getenv("TH_SEED"), 0, 10)
					    : 1);
		/* a node that joined may still be opening its volume */
		for (int tries = 0;; tries++) {
			rc = th_connect_host(&c->cn, g.nd[c->gw].addr,
					     g.nd[c->gw].nfs_port, "/", 0, 0);
			if (rc == 0 || tries == 300)
				break;
			th_disconnect(&c->cn);
			usleep(100000);
		}
		TH_REQUIRE(rc == 0, "client %d connects to gateway %d", i,
			   c->gw);
		c->connected = true;
		sprintf(d, "c%d", i);
		TH_REQUIRE(th_mkdir(&c->cn, &c->cn.root, d, NULL, &o) ==
					   NFS3_OK &&
				   o.fh_follows,
			   "mkdir %s", d);
		c->dirfh = o.fh;
	}
	for (int i = 0; i < ncl; i++)
		pthread_create(&cl[i].thread, NULL, client_main, &cl[i]);
	TH_CHECK(wait_progress(PROGRESS), "the clients run");
	intruders();

	for (int k = 1; k <= cycles; k++) {
		enum fault f;

		do
			f = (enum fault)((k - 1) % F_N);
		while (0);
		if (f == F_KILL_TWO && g.n < 5)
			f = F_KILL_LEADER;
		if ((f == F_CUT_FOLLOWER || f == F_CUT_LEADER) && !g.netns)
			f = f == F_CUT_LEADER ? F_KILL_LEADER : F_KILL_FOLLOWER;
		cycle(k, f);
	}
	e = getenv("RAFT_FAULT_CORRUPT");
	if (!e || strcmp(e, "1") == 0)
		e = "segment,snapshot,entry";
	if (strstr(e, "segment"))
		corrupt_cycle(++cycles, C_SEGMENT);
	if (strstr(e, "snapshot"))
		corrupt_cycle(++cycles, C_SNAPSHOT);
	if (strstr(e, "entry"))
		corrupt_entry_cycle(++cycles);
	pthread_mutex_lock(&cl_lock);
	quit = true;
	pthread_cond_broadcast(&cl_cv);
	pthread_mutex_unlock(&cl_lock);
	for (int i = 0; i < ncl; i++) {
		pthread_join(cl[i].thread, NULL);
		th_disconnect(&cl[i].cn);
		th_diag("client %d: %llu acknowledged, %llu unknown, %llu "
			"gateway switches",
			i, (unsigned long long)cl[i].acked,
			(unsigned long long)cl[i].unknown,
			(unsigned long long)cl[i].switches);
		for (int n = 0; n < NNAMES; n++)
			free(cl[i].f[n]);
	}
	check_pre("at the end");
	return th_done();
}
