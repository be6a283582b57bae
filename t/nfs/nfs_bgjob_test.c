/*
 * nfs_bgjob_test - the background jobs of a volume run on one gateway:
 * the holder of the lease in the volume's metadata (meta.h, "the
 * background-job lease"), as `tessera status` reports it.  Gateways on
 * one LMDB volume (several processes), session_timeout=3s so that a
 * killed holder goes stale soon:
 *   1. A and B serve the volume: exactly one holds the lease (A, which
 *      started first) and a file removed through B has its objects
 *      deleted (by A's job).
 *   2. A is killed (SIGKILL): B takes the lease over, and deletes the
 *      objects of a file removed through it.
 *   3. C starts with --no-bgjob and B is killed: once B's session is
 *      stale and C has renewed its own several times since, the lease
 *      still names B; C never takes it.
 *      A file removed through C stays pending delete (status says so,
 *      its blocks stay in the store), and the stall alarm goes up once
 *      that backlog has not shrunk for 3 lease periods: C's metric
 *      tessera_bgjob_stalled{reason="no_holder"} is 1, status says
 *      STALLED.
 *   4. D starts with --bgjob-only: it listens for no NFS (its session has
 *      no address) and takes the lease, and deletes that file's objects:
 *      status says nothing is pending delete, and the alarm clears (C's
 *      metrics, status).  D's pace comes from its tessera.conf
 *      (bgjob_delete_rate, bgjob_txn_rate, as its metrics show); the
 *      file rewritten and SIGHUP: the new pace is in force (metrics,
 *      log), and a file removed afterwards is deleted.
 *   5. D stops cleanly (SIGTERM): the lease record goes with its session.
 *   6. E serves NFS with the jobs on and takes the lease: 4 KiB appends
 *      FILE_SYNC to one file leave its chunk with 128 records and more,
 *      which queues it for compaction; while the file is written the job
 *      leaves it queued (a file written in the last 3 s waits): E's
 *      tessera_compaction_queued_chunks and status's "compaction:" line
 *      say 1.  Once the writes stop, the chunk is compacted and both say
 *      0.
 *   7. A holder that makes no progress: E restarted on the store behind
 *      the fault wrapper, every delete failing; a file removed through
 *      it is a backlog its job cannot shrink though it holds the lease:
 *      tessera_bgjob_stalled{reason="holder"} goes to 1 and status says
 *      the holder makes no progress.  Faults off: the job deletes, the
 *      alarm clears.
 * Waits are polls with a generous limit: what is asserted is each change
 * of state, never how long it took.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t/nfs/tharness.h"

#define POLL_LIMIT_MS (300 * 1000)

static struct th_server a, b, c, d, e;

/* What `tessera status` says of the lease and of one gateway. */
struct lease_view {
	int holder_pid;    /* 0: no lease recorded */
	bool holder_stale; /* the holder's session is stale */
	bool pid_listed;   /* the gateway asked about is listed */
	bool pid_stale;    /* ... and stale */
	char pid_line[1024];
};

static bool
read_status(const struct th_server *s, int pid, struct lease_view *v)
{
	char cmd[700], line[1024], tag[32];
	FILE *f;

	memset(v, 0, sizeof(*v));
	snprintf(cmd, sizeof cmd, "'%s/tessera' status '%s' 2>&1",
		 th_builddir(), s->meta_url);
	snprintf(tag, sizeof tag, ", pid %d,", pid);
	f = popen(cmd, "r");
	if (f == NULL)
		return false;
	while (fgets(line, sizeof line, f) != NULL) {
		const char *p;

		if (strncmp(line, "bgjob lease:", 12) == 0) {
			p = strstr(line, ", pid ");
			if (p != NULL)
				v->holder_pid = atoi(p + 6);
			v->holder_stale = strstr(line, "(stale") != NULL;
		} else if (pid > 0 && strstr(line, tag) != NULL) {
			v->pid_listed = true;
			v->pid_stale = strstr(line, ": stale,") != NULL;
			snprintf(v->pid_line, sizeof v->pid_line, "%s", line);
		}
	}
	return pclose(f) == 0;
}

/* Whether `tessera status` prints a line starting with what. */
static bool
status_has(const struct th_server *s, const char *what)
{
	char cmd[700], line[1024];
	bool found = false;
	FILE *f;

	snprintf(cmd, sizeof cmd, "'%s/tessera' status '%s' 2>&1",
		 th_builddir(), s->meta_url);
	f = popen(cmd, "r");
	if (f == NULL)
		return false;
	while (fgets(line, sizeof line, f) != NULL) {
		found |= strncmp(line, what, strlen(what)) == 0;
		if (strncmp(line, "pending", 7) == 0 && !found)
			th_diag("status: %s", line);
	}
	pclose(f);
	return found;
}

/* Poll status until the lease names pid with a live session. */
static bool
wait_holder(const struct th_server *s, int pid)
{
	struct lease_view v;
	uint64_t t0 = th_now_ms();

	while (th_now_ms() - t0 < POLL_LIMIT_MS) {
		if (read_status(s, 0, &v) && v.holder_pid == pid &&
		    !v.holder_stale)
			return true;
		usleep(200 * 1000);
	}
	th_diag("the lease names pid %d%s, not %d", v.holder_pid,
		v.holder_stale ? " (stale)" : "", pid);
	return false;
}

/* Write a 1 MiB file through s (FILE_SYNC: stored at once, one slice),
 * check its blocks reached the store, remove it. */
static void
write_remove(const struct th_server *s, const char *name)
{
	static uint8_t buf[1 << 20];
	struct th_conn cn;
	struct th_obj o;
	sattr3 sa = th_sattr_mode(0644);

	TH_REQUIRE(th_connect(&cn, s->port, "/", 0, 0) == 0,
		   "%s: connect to port %d", name, s->port);
	TH_REQUIRE(th_create(&cn, &cn.root, name, UNCHECKED, &sa, NULL, &o) ==
			   NFS3_OK,
		   "%s: create", name);
	th_fill(7, buf, sizeof buf);
	TH_REQUIRE(th_write(&cn, &o.fh, 0, buf, sizeof buf, FILE_SYNC, NULL) ==
			   NFS3_OK,
		   "%s: write 1 MiB", name);
	TH_CHECK(th_server_objects(s) > 0, "%s: its blocks are in the store",
		 name);
	TH_STAT(th_remove(&cn, &cn.root, name), NFS3_OK, "%s: remove", name);
	th_disconnect(&cn);
}

/* The stall alarm's series of the test volume (nfsd/metrics.c). */
#define STALLED(reason)                                                        \
	"tessera_bgjob_stalled{volume=\"tvol\",reason=\"" reason "\"}"
#define BACKLOG_ITEMS "tessera_bgjob_backlog_items{volume=\"tvol\"}"

/* Poll s's metric name until it is want. */
static bool
wait_metric(const struct th_server *s, const char *name, double want)
{
	uint64_t t0 = th_now_ms();
	double v = -1;

	while (th_now_ms() - t0 < POLL_LIMIT_MS) {
		if (th_server_metric(s, name, &v) == 0 && v == want)
			return true;
		usleep(200 * 1000);
	}
	th_diag("%s is %g, not %g", name, v, want);
	return false;
}

/* Poll `tessera status` until it prints a line starting with what. */
static bool
wait_status(const struct th_server *s, const char *what)
{
	uint64_t t0 = th_now_ms();

	while (th_now_ms() - t0 < POLL_LIMIT_MS) {
		if (status_has(s, what))
			return true;
		usleep(200 * 1000);
	}
	return false;
}

/* Whether `tessera status` says the holder has n chunks queued. */
static bool
status_queued(const struct th_server *s, unsigned n)
{
	char want[80];

	snprintf(want, sizeof want, "compaction:    %u chunks queued", n);
	return status_has(s, want);
}

/* 6: the holder s's compaction queue, seen through its metrics and
 * `tessera status`. */
static void
compaction_queue(const struct th_server *s)
{
	static uint8_t buf[4096];
	struct th_conn cn;
	struct th_obj o;
	sattr3 sa = th_sattr_mode(0644);
	bool metric = false, status = false;
	double v = -1;
	uint64_t t0;
	uint32_t i;

	TH_REQUIRE(th_connect(&cn, s->port, "/", 0, 0) == 0, "connect to E");
	TH_REQUIRE(th_create(&cn, &cn.root, "frag", UNCHECKED, &sa, NULL, &o) ==
			   NFS3_OK,
		   "create frag");
	th_fill(9, buf, sizeof buf);
	t0 = th_now_ms();
	/* Write on until both have been seen: a machine stalled for 3 s
	 * lets the job compact early, and the next 128 appends queue the
	 * chunk again. */
	for (i = 0; !(metric && status) && th_now_ms() - t0 < POLL_LIMIT_MS;
	     i++) {
		if (th_write(&cn, &o.fh, (uint64_t)i * sizeof buf, buf,
			     sizeof buf, FILE_SYNC, NULL) != NFS3_OK) {
			TH_CHECK(false, "append %u to frag", i);
			break;
		}
		if (i < 128 || i % 8 != 0)
			continue;
		if (!metric)
			metric = th_server_metric(s,
						  "tessera_compaction_"
						  "queued_chunks",
						  &v) == 0 &&
				 v == 1;
		else if (!status)
			status = status_queued(s, 1);
	}
	TH_CHECK(metric,
		 "E's metric: 1 chunk queued for compaction (%u "
		 "appends)",
		 i);
	TH_CHECK(status, "status: 1 chunk queued on the lease holder");
	th_disconnect(&cn);
	/* the round takes the chunk off the queue, then compacts it */
	t0 = th_now_ms();
	while (!(th_server_metric(s, "tessera_compacted_chunks_total", &v) ==
			 0 &&
		 v >= 1) &&
	       th_now_ms() - t0 < POLL_LIMIT_MS)
		usleep(200 * 1000);
	TH_CHECK(v >= 1, "writes stopped: E compacted the chunk");
	TH_CHECK(wait_metric(s, "tessera_compaction_queued_chunks", 0),
		 "the queue is empty");
	t0 = th_now_ms();
	while (!status_queued(s, 0) && th_now_ms() - t0 < POLL_LIMIT_MS)
		usleep(200 * 1000);
	TH_CHECK(status_queued(s, 0), "status: 0 chunks queued");
}

/* D's tessera.conf: its pace. */
static void
write_conf(const char *path, int delete_rate, int txn_rate)
{
	FILE *f = fopen(path, "w");

	TH_REQUIRE(f != NULL, "write %s", path);
	fprintf(f, "bgjob_delete_rate = %d\nbgjob_txn_rate = %d\n", delete_rate,
		txn_rate);
	fclose(f);
}

/* Poll until the store holds no block of the volume: some gateway's job
 * deleted them. */
static void
wait_deleted(const struct th_server *s, const char *name)
{
	uint64_t t0 = th_now_ms();

	while (th_server_objects(s) > 0 && th_now_ms() - t0 < POLL_LIMIT_MS)
		usleep(200 * 1000);
	TH_CHECK(th_server_objects(s) == 0, "%s: its blocks were deleted",
		 name);
}

int
main(void)
{
	const char *opts = "-o session_timeout=3s --metrics-listen off";
	struct lease_view v;
	double val = -1;
	char args[600], conf[300];
	uint64_t t0;
	int bpid, cpid;

	/* 1. A, then B. */
	TH_REQUIRE(th_server_start(&a, "--block-size 64K", NULL) == 0,
		   "A starts");
	th_server_set_args(&a, opts);
	TH_REQUIRE(th_server_restart(&a, false) == 0,
		   "A restarts with session_timeout=3s");
	TH_REQUIRE(wait_holder(&a, a.pid), "A holds the lease");
	TH_REQUIRE(th_server_join(&b, &a, opts, true) == 0,
		   "B starts on A's volume");
	/* it listens a moment before it records its session */
	t0 = th_now_ms();
	while (!(read_status(&a, b.pid, &v) && v.pid_listed) &&
	       th_now_ms() - t0 < POLL_LIMIT_MS)
		usleep(100 * 1000);
	TH_REQUIRE(v.pid_listed && !v.pid_stale,
		   "status lists B's live session");
	TH_CHECK(v.holder_pid == a.pid, "the lease still names A, not B");
	write_remove(&b, "f1");
	wait_deleted(&b, "f1");
	TH_CHECK(read_status(&a, 0, &v) && v.holder_pid == a.pid,
		 "A holds the lease throughout");
	TH_CHECK(th_server_log_count(&b, "holds the background-job lease") == 0,
		 "B never held it");

	/* 2. A killed: B takes over. */
	th_server_stop(&a, true);
	TH_CHECK(wait_holder(&a, b.pid), "B took the lease over from the "
					 "killed A");
	TH_CHECK(th_server_log_count(&b, "taking the background jobs over") ==
			 1,
		 "B says it took the jobs over");
	write_remove(&b, "f2");
	wait_deleted(&b, "f2");

	/* 3. C with --no-bgjob; B killed. */
	snprintf(args, sizeof args,
		 "%s --no-bgjob --metrics-listen "
		 "127.0.0.1:0",
		 opts);
	TH_REQUIRE(th_server_join(&c, &a, args, true) == 0,
		   "C starts with --no-bgjob");
	bpid = b.pid;
	cpid = c.pid;
	th_server_stop(&b, true);
	t0 = th_now_ms();
	while (th_now_ms() - t0 < POLL_LIMIT_MS &&
	       !(read_status(&a, bpid, &v) && v.pid_stale))
		usleep(200 * 1000);
	TH_REQUIRE(v.pid_stale, "B's session went stale");
	/* C renews every 500 ms (ttl/6), and would take a lease it wanted
	 * at the first renewal that finds B stale: give it several.  (A
	 * negative check needs a window; nothing here bounds a duration.) */
	usleep(2000 * 1000);
	TH_CHECK(read_status(&a, cpid, &v) && v.pid_listed && !v.pid_stale,
		 "C's session lives");
	TH_CHECK(v.holder_pid == bpid && v.holder_stale,
		 "the lease still names the stale B: C (--no-bgjob) did not "
		 "take it");
	TH_CHECK(th_server_log_count(&c, "bgjob is off") == 1,
		 "C says it runs no background job");
	/* Nobody runs the jobs: what C's remove releases stays queued. */
	write_remove(&c, "f3");
	usleep(1500 * 1000);
	TH_CHECK(th_server_objects(&c) > 0, "f3: no job deleted its blocks");
	TH_CHECK(status_has(&a, "pending delete: 1 (0 files, 0 B; 1 slices, "
				"1.0 MiB)"),
		 "status: the released slice is "
		 "pending delete");
	TH_CHECK(wait_metric(&c, STALLED("no_holder"), 1),
		 "C's alarm: the backlog stalled, no holder");
	TH_CHECK(wait_status(&a, "bgjob alarm:   STALLED: no gateway holds"),
		 "status: STALLED, no gateway holds the lease");
	if (th_server_metric(&c, BACKLOG_ITEMS, &val) != 0)
		val = -1;
	TH_CHECK(val == 1, "C: a backlog of 1 item (%g)", val);

	/* 4. D with --bgjob-only. */
	snprintf(conf, sizeof conf, "%s/d.conf", a.dir);
	write_conf(conf, 7, 50);
	snprintf(args, sizeof args,
		 "%s --bgjob-only -c %s --metrics-listen "
		 "127.0.0.1:0",
		 opts, conf);
	TH_REQUIRE(th_server_join(&d, &a, args, false) == 0,
		   "D starts with --bgjob-only");
	TH_CHECK(wait_holder(&a, d.pid), "D (--bgjob-only) took the lease");
	TH_CHECK(read_status(&a, d.pid, &v) &&
			 strstr(v.pid_line, " -, pid ") != NULL,
		 "D's session has no NFS address");
	TH_CHECK(th_server_log_count(&d, "on 127.0.0.1 port") == 0,
		 "D serves no NFS");
	wait_deleted(&c, "f3");
	TH_CHECK(status_has(&a, "pending delete: 0 (0 files, 0 B; 0 slices, "
				"0 B)"),
		 "status: nothing pending delete");
	TH_CHECK(wait_metric(&c, STALLED("no_holder"), 0) &&
			 wait_metric(&c, STALLED("holder"), 0),
		 "C's alarm cleared once D ran the jobs");
	TH_CHECK(wait_status(&a, "bgjob alarm:   none (backlog 0 items"),
		 "status: no alarm, no backlog");
	TH_CHECK(wait_metric(&d, "tessera_bgjob_delete_rate", 7) &&
			 wait_metric(&d, "tessera_bgjob_txn_rate", 50),
		 "D's pace from its tessera.conf");
	write_conf(conf, 3, 20);
	TH_REQUIRE(kill(d.pid, SIGHUP) == 0, "SIGHUP to D");
	TH_CHECK(wait_metric(&d, "tessera_bgjob_delete_rate", 3) &&
			 wait_metric(&d, "tessera_bgjob_txn_rate", 20),
		 "SIGHUP: D's new pace is in force");
	TH_CHECK(th_server_log_count(&d, "background jobs paced at 3 "
					 "deletions and 20 transactions") == 1,
		 "D logs the new pace");
	write_remove(&c, "f4");
	wait_deleted(&c, "f4");

	/* 5. D stops cleanly: the lease goes with it. */
	th_server_stop(&d, false);
	TH_CHECK(read_status(&a, 0, &v) && v.holder_pid == 0,
		 "a clean stop gives the lease up");

	/* 6. E, with NFS and the jobs: its compaction queue. */
	snprintf(args, sizeof args, "%s --metrics-listen 127.0.0.1:0", opts);
	TH_REQUIRE(th_server_join(&e, &a, args, true) == 0, "E starts");
	TH_CHECK(wait_holder(&a, e.pid), "E takes the lease");
	compaction_queue(&e);

	/* 7. The holder stalls: its deletes fail. */
	snprintf(conf, sizeof conf, "%s/fault.ctl", a.dir);
	th_store_faults(conf, "ops=del,err=1");
	th_server_stop(&c, false);
	th_server_stop(&e, false);
	TH_REQUIRE(th_tessera(&a, "config '%s' --storage 'fault(ctl=%s):%s'",
			      a.meta_url, conf, a.storage_url) == 0,
		   "the store behind the fault wrapper");
	TH_REQUIRE(th_server_restart(&e, false) == 0, "E restarts on it");
	TH_CHECK(wait_holder(&a, e.pid), "E holds the lease again");
	write_remove(&e, "f5");
	TH_CHECK(wait_metric(&e, STALLED("holder"), 1),
		 "E's alarm: the holder makes no progress");
	TH_CHECK(wait_status(&a, "bgjob alarm:   STALLED: the lease holder "
				 "makes no progress"),
		 "status says so");
	th_store_faults(conf, NULL);
	TH_CHECK(wait_metric(&e, STALLED("holder"), 0) &&
			 wait_metric(&e, BACKLOG_ITEMS, 0),
		 "faults off: the job deletes, the alarm clears");

	th_server_destroy(&e);
	th_server_destroy(&d);
	th_server_destroy(&c);
	th_server_destroy(&b);
	th_server_destroy(&a);
	return th_done();
}
