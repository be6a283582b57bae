/*
 * crash_client - kill tesserad with SIGKILL at random moments of a mixed
 * workload, restart it and check that nothing acknowledged was lost.
 *
 * The client keeps a model of a small tree (3 directories, 12 file names
 * and 3 subdirectory names in each) and runs random operations on it:
 * CREATE, WRITE UNSTABLE, COMMIT, WRITE FILE_SYNC, SETATTR size, RENAME,
 * LINK, REMOVE, MKDIR, RMDIR.  A killer thread SIGKILLs the daemon after
 * a random delay.  What the model may rely on after a crash:
 *   - bytes written FILE_SYNC, or UNSTABLE and then covered by a COMMIT
 *     reply, read back exactly ("known" bytes); other bytes may be old or
 *     new;
 *   - every name operation that got its reply is there; the one in flight
 *     when the daemon died may or may not have happened ("unknown").
 * Every acknowledged operation is appended to a journal file (fsynced)
 * before the next one starts, for the post-mortem of a failure.
 *
 * After each kill, with the daemon down: `tessera fsck` (objects too)
 * must be clean.  After the restart every name and every known byte is
 * checked, then the model adopts what the server holds.  At the end: an
 * UNSTABLE write, a crash, and COMMIT returns another verifier (so a
 * client resends), after which the resent data is stable.
 *
 * Usage: crash_client [--cycles N] [--seed S] [--journal FILE]
 * Environment: CRASH_CYCLES (default 30), TH_SEED.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "t/nfs/tharness.h"

#define NDIRS    3
#define NNAMES   12
#define NSUB     3
#define FMAX     (128 * 1024) /* file size bound */
#define WMAX     (16 * 1024)  /* write size bound */
#define MAXFILES 1024

enum { ABSENT, PRESENT, UNKNOWN };

struct file {
	bool used;
	uint64_t fileid;
	struct th_fh fh;
	uint64_t size;
	bool size_known;     /* no unstable write pending */
	uint8_t data[FMAX];  /* what a read returns now */
	uint8_t known[FMAX]; /* 1: survives a crash */
	bool pending;        /* unstable writes since the last COMMIT */
};

struct slot {
	int state;
	int file; /* PRESENT: index in files[] */
};

static struct th_server srv;
static struct th_conn cn;
static struct th_fh dirfh[NDIRS];
static struct slot slots[NDIRS][NNAMES];
static int subs[NDIRS][NSUB];
static struct file *files;
static uint64_t rng;
static int journal_fd = -1;
static uint64_t n_ops, n_acked;

/* Operation results are printed only when wrong (hundreds per cycle). */
#define OP_STAT(st, ...)                                                       \
	do {                                                                   \
		if ((st) != NFS3_OK)                                           \
			TH_STAT((st), NFS3_OK, __VA_ARGS__);                   \
	} while (0)

static void __attribute__((format(printf, 1, 2))) journal(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	n_acked++;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	line[n++] = '\n';
	if (write(journal_fd, line, (size_t)n) != n ||
	    fdatasync(journal_fd) != 0)
		th_bail();
}

static uint32_t
rnd(uint32_t n)
{
	return (uint32_t)(th_rand(&rng) % n);
}

static int
new_file(void)
{
	for (int i = 0; i < MAXFILES; i++)
		if (!files[i].used) {
			memset(&files[i], 0, sizeof(files[i]));
			files[i].used = true;
			files[i].size_known = true;
			return i;
		}
	th_diag("out of file slots");
	th_bail();
}

/* Drop files no name refers to. */
static void
gc_files(void)
{
	bool ref[MAXFILES] = {false};

	for (int d = 0; d < NDIRS; d++)
		for (int n = 0; n < NNAMES; n++)
			if (slots[d][n].state == PRESENT)
				ref[slots[d][n].file] = true;
	for (int i = 0; i < MAXFILES; i++)
		if (!ref[i])
			files[i].used = false;
}

static void
name_of(int n, char *buf)
{
	sprintf(buf, "f%02d", n);
}

/* ---- the workload: one random operation --------------------------------- */

/* Returns false when the RPC failed (the daemon died). */
static bool
op_write(struct file *f, int fi, bool sync)
{
	uint64_t off = rnd(FMAX - 1);
	uint32_t len = 1 + rnd(WMAX);
	uint8_t buf[WMAX];
	int st;

	if (off + len > FMAX)
		len = (uint32_t)(FMAX - off);
	th_fill(th_rand(&rng), buf, len);
	st = th_write(&cn, &f->fh, off, buf, len, sync ? FILE_SYNC : UNSTABLE,
		      NULL);
	if (st < 0) {
		/* In flight: the range may hold old or new bytes. */
		memset(f->known + off, 0, len);
		f->size_known = false;
		return false;
	}
	OP_STAT(st, "write %s", sync ? "FILE_SYNC" : "UNSTABLE");
	memcpy(f->data + off, buf, len);
	memset(f->known + off, sync ? 1 : 0, len);
	if (off + len > f->size) {
		f->size = off + len;
		if (!sync)
			f->size_known = false;
	}
	if (!sync)
		f->pending = true;
	journal("write %d %s off=%llu len=%u", fi, sync ? "sync" : "unstable",
		(unsigned long long)off, len);
	return true;
}

static bool
op_commit(struct file *f, int fi)
{
	int st = th_commit(&cn, &f->fh, 0, 0, NULL);

	if (st < 0)
		return false;
	OP_STAT(st, "commit");
	/* Everything written so far is stable: what reads return now. */
	memset(f->known, 1, f->size);
	f->size_known = true;
	f->pending = false;
	journal("commit %d", fi);
	return true;
}

static bool
op_truncate(struct file *f, int fi)
{
	sattr3 sa = th_sattr_none();
	uint64_t size = rnd(FMAX);
	int st;

	sa.size.set_it = 1;
	sa.size.set_size3_u.size = size;
	st = th_setattr(&cn, &f->fh, &sa, NULL, NULL);
	if (st < 0) {
		memset(f->known, 0, FMAX);
		f->size_known = false;
		return false;
	}
	OP_STAT(st, "truncate");
	if (size > f->size) {
		memset(f->data + f->size, 0, size - f->size);
		memset(f->known + f->size, 1, size - f->size);
	}
	memset(f->data + size, 0, FMAX - size);
	memset(f->known + size, 0, FMAX - size);
	f->size = size;
	f->size_known = true;
	journal("truncate %d size=%llu", fi, (unsigned long long)size);
	return true;
}

static bool
op_name(int d, int n)
{
	struct slot *s = &slots[d][n];
	char name[16], dname[16];
	int st;

	name_of(n, name);
	if (s->state == ABSENT) {
		struct th_obj o;
		int fi;

		st = th_create(&cn, &dirfh[d], name, GUARDED,
			       (sattr3[]){th_sattr_mode(0644)}, NULL, &o);
		if (st < 0)
			return s->state = UNKNOWN, false;
		OP_STAT(st, "create d%d/%s", d, name);
		if (st != NFS3_OK || !o.fh_follows || !o.attr_follows)
			return true;
		fi = new_file();
		files[fi].fh = o.fh;
		files[fi].fileid = o.attr.fileid;
		s->state = PRESENT;
		s->file = fi;
		journal("create d%d/%s -> %d", d, name, fi);
		return true;
	}
	switch (rnd(3)) {
	case 0: /* remove */
		st = th_remove(&cn, &dirfh[d], name);
		if (st < 0)
			return s->state = UNKNOWN, false;
		OP_STAT(st, "remove d%d/%s", d, name);
		s->state = ABSENT;
		journal("remove d%d/%s", d, name);
		return true;
	case 1: { /* rename over any other slot */
		int dd = (int)rnd(NDIRS), dn = (int)rnd(NNAMES);
		struct slot *t = &slots[dd][dn];

		if (t == s || (t->state == PRESENT && t->file == s->file))
			return true; /* same inode: rename(2) does nothing */
		name_of(dn, dname);
		st = th_rename(&cn, &dirfh[d], name, &dirfh[dd], dname);
		if (st < 0) {
			s->state = t->state = UNKNOWN;
			return false;
		}
		OP_STAT(st, "rename d%d/%s d%d/%s", d, name, dd, dname);
		*t = *s;
		s->state = ABSENT;
		journal("rename d%d/%s d%d/%s", d, name, dd, dname);
		return true;
	}
	default: { /* link into an empty slot */
		int dd = (int)rnd(NDIRS), dn = (int)rnd(NNAMES);
		struct slot *t = &slots[dd][dn];

		if (t->state != ABSENT)
			return true;
		name_of(dn, dname);
		st = th_link(&cn, &files[s->file].fh, &dirfh[dd], dname, NULL);
		if (st < 0)
			return t->state = UNKNOWN, false;
		OP_STAT(st, "link d%d/%s d%d/%s", d, name, dd, dname);
		t->state = PRESENT;
		t->file = s->file;
		journal("link d%d/%s d%d/%s", d, name, dd, dname);
		return true;
	}
	}
}

static bool
op_subdir(int d, int n)
{
	char name[16];
	struct th_obj o;
	int st;

	sprintf(name, "x%d", n);
	if (subs[d][n] == ABSENT) {
		st = th_mkdir(&cn, &dirfh[d], name, NULL, &o);
		if (st < 0)
			return subs[d][n] = UNKNOWN, false;
		OP_STAT(st, "mkdir d%d/%s", d, name);
		subs[d][n] = PRESENT;
		journal("mkdir d%d/%s", d, name);
		return true;
	}
	st = th_rmdir(&cn, &dirfh[d], name);
	if (st < 0)
		return subs[d][n] = UNKNOWN, false;
	OP_STAT(st, "rmdir d%d/%s", d, name);
	subs[d][n] = ABSENT;
	journal("rmdir d%d/%s", d, name);
	return true;
}

static bool
one_op(void)
{
	int d = (int)rnd(NDIRS), n = (int)rnd(NNAMES), r = (int)rnd(100);
	struct slot *s = &slots[d][n];
	bool ok;

	n_ops++;
	if (r < 10)
		return op_subdir(d, (int)rnd(NSUB));
	if (s->state != PRESENT || r < 30) {
		ok = op_name(d, n);
		gc_files();
		return ok;
	}
	if (r < 55)
		return op_write(&files[s->file], s->file, false);
	if (r < 70)
		return op_write(&files[s->file], s->file, true);
	if (r < 90)
		return op_commit(&files[s->file], s->file);
	return op_truncate(&files[s->file], s->file);
}

/* ---- killing, checking ---------------------------------------------------- */

static void *
killer(void *arg)
{
	unsigned ms = *(unsigned *)arg;
	pid_t pid = srv.pid;

	usleep(ms * 1000);
	if (pid > 0)
		kill(pid, SIGKILL);
	return NULL;
}

static void
run_fsck(int cycle)
{
	TH_CHECK(th_server_fsck(&srv) == 0,
		 "cycle %d: tessera fsck clean after the crash", cycle);
}

static void
connect_all(void)
{
	struct th_obj o;
	char name[8];

	th_disconnect(&cn);
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0, "connect");
	for (int d = 0; d < NDIRS; d++) {
		sprintf(name, "d%d", d);
		TH_REQUIRE(th_lookup(&cn, &cn.root, name, &o) == NFS3_OK,
			   "lookup %s", name);
		dirfh[d] = o.fh;
	}
}

/* Read a whole file back into buf; returns the size or -1. */
static int64_t
read_all(const struct th_fh *fh, uint8_t *buf)
{
	fattr3 a;
	uint64_t off = 0;

	if (th_getattr(&cn, fh, &a) != NFS3_OK || a.size > FMAX)
		return -1;
	while (off < a.size) {
		uint32_t got = 0;
		bool eof = false;

		if (th_read(&cn, fh, off, 65536, buf + off, &got, &eof) !=
		    NFS3_OK)
			return -1;
		off += got;
		if (eof || got == 0)
			break;
	}
	return off == a.size ? (int64_t)a.size : -1;
}

static int
find_file(uint64_t fileid)
{
	for (int i = 0; i < MAXFILES; i++)
		if (files[i].used && files[i].fileid == fileid)
			return i;
	return -1;
}

/* Names: certain ones must be as the model says; unknown ones adopt. */
static bool
verify_names(int cycle)
{
	bool ok = true;
	char name[16];
	struct th_obj o;

	for (int d = 0; d < NDIRS; d++) {
		for (int n = 0; n < NNAMES; n++) {
			struct slot *s = &slots[d][n];
			int st, fi;

			name_of(n, name);
			st = th_lookup(&cn, &dirfh[d], name, &o);
			if (st != NFS3_OK && st != NFS3ERR_NOENT) {
				TH_STAT(st, NFS3_OK, "lookup d%d/%s", d, name);
				return false;
			}
			if (s->state == UNKNOWN) {
				s->state = st == NFS3_OK ? PRESENT : ABSENT;
				if (st != NFS3_OK)
					continue;
				fi = find_file(o.attr.fileid);
				if (fi < 0) {
					fi = new_file();
					files[fi].fileid = o.attr.fileid;
					files[fi].fh = o.fh;
					files[fi].size_known = false;
				}
				s->file = fi;
				continue;
			}
			if ((s->state == PRESENT) != (st == NFS3_OK) ||
			    (st == NFS3_OK &&
			     files[s->file].fileid != o.attr.fileid)) {
				th_diag("cycle %d: d%d/%s is %s, expected %s",
					cycle, d, name,
					st == NFS3_OK ? "there" : "missing",
					s->state == PRESENT ? "there"
							    : "missing");
				ok = false;
			}
		}
		for (int n = 0; n < NSUB; n++) {
			int st;

			sprintf(name, "x%d", n);
			st = th_lookup(&cn, &dirfh[d], name, &o);
			if (subs[d][n] == UNKNOWN)
				subs[d][n] = st == NFS3_OK ? PRESENT : ABSENT;
			else if ((subs[d][n] == PRESENT) != (st == NFS3_OK)) {
				th_diag("cycle %d: d%d/%s wrong", cycle, d,
					name);
				ok = false;
			}
		}
	}
	gc_files();
	return ok;
}

static bool
verify_data(int cycle)
{
	static uint8_t buf[FMAX];
	bool ok = true;

	for (int i = 0; i < MAXFILES; i++) {
		struct file *f = &files[i];
		int64_t size;

		if (!f->used)
			continue;
		size = read_all(&f->fh, buf);
		if (size < 0) {
			th_diag("cycle %d: file %d unreadable", cycle, i);
			ok = false;
			continue;
		}
		if (f->size_known && (uint64_t)size != f->size) {
			th_diag("cycle %d: file %d size %lld, expected %llu",
				cycle, i, (long long)size,
				(unsigned long long)f->size);
			ok = false;
		}
		for (uint64_t b = 0; b < FMAX; b++) {
			uint8_t got = b < (uint64_t)size ? buf[b] : 0;

			if (f->known[b] && (b < (uint64_t)size || f->data[b]) &&
			    got != f->data[b]) {
				th_diag("cycle %d: file %d byte %llu is %u, "
					"acknowledged %u",
					cycle, i, (unsigned long long)b, got,
					f->data[b]);
				ok = false;
				break;
			}
		}
		/* Adopt what the server holds: it is all stable now. */
		memset(f->data, 0, FMAX);
		memcpy(f->data, buf, (size_t)size);
		memset(f->known, 0, FMAX);
		memset(f->known, 1, (size_t)size);
		f->size = (uint64_t)size;
		f->size_known = true;
		f->pending = false;
	}
	return ok;
}

/* ---- the verifier after a restart ----------------------------------------- */

static void
test_verifier(void)
{
	static uint8_t data[65536];
	WRITE3res w;
	COMMIT3res c;
	struct th_obj o;
	uint8_t v1[8];
	uint8_t buf[65536];
	int64_t size;

	th_fill(7, data, sizeof data);
	TH_REQUIRE(th_create(&cn, &cn.root, "verf", UNCHECKED,
			     (sattr3[]){th_sattr_mode(0644)}, NULL,
			     &o) == NFS3_OK,
		   "create verf");
	TH_STAT(th_write(&cn, &o.fh, 0, data, sizeof data, UNSTABLE, &w),
		NFS3_OK, "UNSTABLE write before the crash");
	memcpy(v1, w.WRITE3res_u.resok.verf, 8);
	TH_REQUIRE(th_server_restart(&srv, true) == 0, "restart (SIGKILL)");
	connect_all();
	TH_STAT(th_commit(&cn, &o.fh, 0, 0, &c), NFS3_OK, "COMMIT after it");
	TH_CHECK(memcmp(c.COMMIT3res_u.resok.verf, v1, 8) != 0,
		 "COMMIT after a restart returns a new verifier");
	/* The client resends, as RFC 1813 says, and commits again. */
	TH_STAT(th_write(&cn, &o.fh, 0, data, sizeof data, UNSTABLE, &w),
		NFS3_OK, "resent UNSTABLE write");
	TH_STAT(th_commit(&cn, &o.fh, 0, 0, &c), NFS3_OK, "COMMIT again");
	TH_CHECK(memcmp(c.COMMIT3res_u.resok.verf, w.WRITE3res_u.resok.verf,
			8) == 0,
		 "verifier stable within one run");
	TH_REQUIRE(th_server_restart(&srv, true) == 0, "restart (SIGKILL)");
	connect_all();
	size = read_all(&o.fh, buf);
	TH_CHECK(size == (int64_t)sizeof data &&
			 memcmp(buf, data, sizeof data) == 0,
		 "resent and committed data survives the next crash");
}

int
main(int argc, char **argv)
{
	const char *e = getenv("CRASH_CYCLES"), *jpath = NULL;
	int cycles = e ? atoi(e) : 30;
	uint64_t seed = getenv("TH_SEED") ? strtoull(getenv("TH_SEED"), 0, 0)
					  : (uint64_t)time(NULL);
	char jbuf[400];
	int bad = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--cycles") && i + 1 < argc)
			cycles = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--journal") && i + 1 < argc)
			jpath = argv[++i];
	}
	rng = seed | 1;
	printf("# seed %llu (TH_SEED=%llu repeats the workload), %d cycles\n",
	       (unsigned long long)seed, (unsigned long long)seed, cycles);
	files = calloc(MAXFILES, sizeof(*files));
	TH_REQUIRE(files != NULL, "memory");
	TH_REQUIRE(th_server_start(&srv, NULL, NULL) == 0, "start tesserad");
	if (!jpath) {
		snprintf(jbuf, sizeof jbuf, "%s/journal", srv.dir);
		jpath = jbuf;
	}
	journal_fd = open(jpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	TH_REQUIRE(journal_fd >= 0, "journal %s", jpath);
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0, "connect");
	for (int d = 0; d < NDIRS; d++) {
		char name[8];
		struct th_obj o;

		sprintf(name, "d%d", d);
		TH_REQUIRE(th_mkdir(&cn, &cn.root, name, NULL, &o) == NFS3_OK,
			   "mkdir %s", name);
	}
	connect_all();
	for (int c = 1; c <= cycles; c++) {
		unsigned ms = 30 + rnd(1000);
		pthread_t t;
		uint64_t t0 = th_now_ms();

		journal("cycle %d kill after %u ms", c, ms);
		pthread_create(&t, NULL, killer, &ms);
		while (one_op())
			if (th_now_ms() - t0 > TH_STALL_MS) {
				th_diag("daemon not killed in %d s",
					TH_STALL_MS / 1000);
				th_bail();
			}
		pthread_join(t, NULL);
		th_server_stop(&srv, true);
		run_fsck(c);
		TH_REQUIRE(th_server_restart(&srv, true) == 0,
			   "cycle %d: restart", c);
		connect_all();
		bad += !verify_names(c);
		bad += !verify_data(c);
		if (bad) {
			th_diag("journal: %s (TH_KEEP=1 keeps it)", jpath);
			TH_CHECK(false, "cycle %d: acknowledged state intact",
				 c);
			break;
		}
	}
	TH_CHECK(bad == 0,
		 "%d crash cycles: every acknowledged byte and "
		 "name survived (%llu operations, %llu acknowledged)",
		 cycles, (unsigned long long)n_ops,
		 (unsigned long long)n_acked);
	test_verifier();
	th_disconnect(&cn);
	th_server_stop(&srv, true);
	run_fsck(cycles + 1);
	close(journal_fd);
	return th_done();
}
