/* Gateway sessions, through the real tesserad and tessera binaries on a
 * real LMDB: a serving gateway is listed by `tessera status` (address,
 * pid, version, heartbeat) and renews its heartbeat; `fsck --repair`
 * refuses to run beside it and writes nothing (it used to repair under
 * a live gateway), `--force` repairs with a warning; a clean stop
 * removes the session; a SIGKILLed gateway's session goes stale after
 * session_timeout, then repair runs, and the next gateway removes the
 * stale record.  In process: a gateway that starts while fsck reads the
 * volume makes the repair refuse (-EBUSY) and write nothing. */
#include "config.h"

#include "meta/kv.h"
#include "meta/meta.h"
#include "t/unit/tools_test.h"

static char dir[64];
static char *murl, *log_path;

/* Corrupt the volume's used-inodes counter, a problem repair fixes. */
static void
break_counter(void)
{
	static const char key[] = "vol\0Cusedinodes";
	struct meta_kv_txn *t;
	struct meta_kv *kv;
	char *url = tl_asprintf("lmdb://%s/meta?mapsize=256M", dir),
	     *err = NULL;
	uint8_t v[8];

	TT_MUST(meta_kv_open(url, &kv, &err) == 0, "kv open");
	tl_put_be64(v, 999);
	TT_MUST(meta_kv_begin(kv, false, &t) == 0 &&
			meta_kv_put(t, key, sizeof(key) - 1, v, 8) == 0 &&
			meta_kv_commit(t) == 0,
		"used inodes set to 999");
	meta_kv_close(kv);
	free(url);
}

static uint64_t
used_inodes(void)
{
	struct meta_usage u = {0};
	struct meta *m;
	char *err = NULL;

	TT_MUST(meta_open(murl, NULL, &m, &err) == 0, "open");
	TT_MUST(meta_usage(m, &u) == 0, "usage");
	meta_close(m);
	return u.used_inodes;
}

struct seen {
	unsigned n, live;
	uint64_t seq, id;
	uint32_t pid;
};

static int
seen_cb(void *arg, const struct meta_session *s)
{
	struct seen *w = arg;

	w->n++;
	w->live += meta_session_live(s, tl_now_ns());
	w->seq = s->seq;
	w->id = s->id;
	w->pid = s->pid;
	return 0;
}

static struct seen
sessions(void)
{
	struct seen w = {0, 0, 0, 0, 0};
	struct meta *m;
	char *err = NULL;

	TT_MUST(meta_open(murl, NULL, &m, &err) == 0, "open");
	TT_MUST(meta_session_list(m, seen_cb, &w) == 0, "list sessions");
	meta_close(m);
	return w;
}

static void
start(struct tt_daemon *d)
{
	char *args = tl_asprintf("--meta %s -o session_timeout=3s", murl);

	CHECK_FATAL(tt_daemon_start(d, log_path, args) == 0, "tesserad starts");
	free(args);
}

/* The heartbeat goes on: seq grows (polled, no time asserted). */
static void
test_heartbeat(void)
{
	struct seen a = sessions(), b;
	int i;

	for (i = 0; i < 600; i++) {
		b = sessions();
		if (b.seq > a.seq)
			break;
		usleep(100000);
	}
	CHECK(b.seq > a.seq && b.id == a.id,
	      "the gateway renews its "
	      "heartbeat (seq %llu -> %llu)",
	      (unsigned long long)a.seq, (unsigned long long)b.seq);
}

/* A gateway that starts (and even stops again) after fsck read the
 * volume and before it repairs makes the repair refuse: the first
 * problem reported (the counter, found after the read) starts one. */
static struct meta *race_m;
static bool race_done;

static void
race_problem(void *arg, enum meta_fsck_cat c, const char *msg)
{
	struct meta_session_keeper *k = NULL;

	(void)arg;
	(void)c;
	(void)msg;
	if (race_done)
		return;
	race_done = true;
	CHECK(meta_session_start(race_m, "127.0.0.1:1", "test", 3, &k) == 0,
	      "a gateway session starts during the check");
	meta_session_stop(k);
}

static void
test_race(void)
{
	struct meta_fsck_opts o = {true, NULL, race_problem, NULL, NULL, false};
	struct meta_session_keeper *k = NULL;
	struct meta_fsck_report r;
	char *err = NULL;

	break_counter();
	CHECK_FATAL(meta_open(murl, NULL, &race_m, &err) == 0, "open");
	CHECK_EQ(meta_fsck(race_m, &o, &r), -EBUSY,
		 "repair after a "
		 "gateway started during the check: -EBUSY");
	CHECK(race_done, "(the session was started during the check)");
	CHECK_EQ(used_inodes(), 999, "nothing was repaired");
	CHECK(meta_session_start(race_m, "127.0.0.1:1", "test", 3, &k) == 0,
	      "a session starts");
	o.problem = NULL;
	CHECK_EQ(meta_fsck(race_m, &o, &r), -EBUSY,
		 "repair beside a live "
		 "session: -EBUSY");
	o.gateways_ok = true;
	CHECK_EQ(meta_fsck(race_m, &o, &r), 0,
		 "with gateways_ok it "
		 "repairs");
	meta_session_stop(k);
	meta_close(race_m);
	CHECK_EQ(used_inodes(), 1, "repaired");
}

int
main(void)
{
	struct tt_daemon d;
	struct seen w;
	char *pid;

	strcpy(dir, "/tmp/session-test-XXXXXX");
	CHECK_FATAL(mkdtemp(dir) != NULL, "mkdtemp");
	murl = tl_asprintf("lmdb://%s/meta?mapsize=256M", dir);
	log_path = tl_asprintf("%s/tesserad.log", dir);
	CHECK_FATAL(tt_run("format '%s' 'file://%s/obj' vol", murl, dir) == 0,
		    "format");
	CHECK_EQ(tt_run("status '%s'", murl), 0, "status");
	CHECK(tt_said("gateways:\n  none"), "no gateway listed before one "
					    "starts");

	start(&d);
	pid = tl_asprintf("pid %d, version %s", (int)d.pid, PACKAGE_VERSION);
	CHECK_EQ(tt_run("status '%s'", murl), 0, "status");
	CHECK(tt_said(pid) && tt_said("heartbeat") && tt_said("127.0.0.1:"),
	      "status lists the gateway: address, pid, version, heartbeat");
	free(pid);
	test_heartbeat();

	break_counter();
	CHECK_EQ(tt_run("fsck --repair '%s'", murl), 1,
		 "fsck --repair "
		 "beside a live gateway fails");
	CHECK(tt_said("a gateway serves the volume") && tt_said("--force"),
	      "it names the gateway and --force");
	CHECK_EQ(used_inodes(), 999, "and repaired nothing");
	CHECK_EQ(tt_run("fsck '%s'", murl), 1,
		 "fsck without --repair "
		 "runs beside it (and finds the problem)");
	CHECK(!tt_said("refused"), "without refusing");
	CHECK_EQ(tt_run("fsck --repair --force '%s'", murl), 1,
		 "fsck --repair --force runs (problems found)");
	CHECK(tt_said("warning") && tt_said("repaired"),
	      "with a warning, and repairs");
	CHECK_EQ(used_inodes(), 1, "the counter is repaired");

	tt_daemon_stop(&d, SIGTERM);
	w = sessions();
	CHECK_EQ(w.n, 0, "a clean stop removes the session");

	start(&d);
	tt_daemon_stop(&d, SIGKILL);
	w = sessions();
	CHECK_EQ(w.n, 1, "a killed gateway's session stays");
	break_counter();
	/* Live until its heartbeat is older than 3 s: poll, do not time. */
	T_WAIT(sessions().live == 0);
	CHECK_EQ(sessions().live, 0, "it goes stale");
	CHECK_EQ(tt_run("status '%s'", murl), 0, "status");
	CHECK(tt_said("stale, no heartbeat for"), "status says it is stale");
	CHECK_EQ(tt_run("fsck --repair '%s'", murl), 1,
		 "fsck --repair runs past a stale session");
	CHECK(tt_said("ignoring a stale gateway session") &&
		      !tt_said("refused"),
	      "saying it ignores the stale session");
	CHECK_EQ(used_inodes(), 1, "and repairs");

	start(&d);
	CHECK(tt_file_says(log_path, "removing the stale session"),
	      "the next gateway removes the stale session");
	w = sessions();
	CHECK(w.n == 1 && w.pid == (uint32_t)d.pid, "only its own is left");
	tt_daemon_stop(&d, SIGTERM);

	test_race();

	free(tt_out);
	free(murl);
	free(log_path);
	tap_rm_rf(dir);
	return tap_done();
}
