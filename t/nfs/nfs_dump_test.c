/*
 * nfs_dump_test.c - `tessera dump` and `tessera load` with a real
 * tesserad, real LMDB and a file:// store, end to end:
 *
 *  - a volume written through NFS with every kind of inode (a file of
 *    many slices, one across the 64 MiB chunk boundary, a small file
 *    whose bytes are inline in the metadata, hard links, a
 *    symlink, character and block devices, a fifo, a socket,
 *    directories, a directory of 2,000 entries) is dumped by the tessera
 *    binary while a client keeps writing files (dumps are repeated until
 *    writes overlapped one), loaded into a new engine, and the loaded
 *    volume is identical key for key to the dump (a dump of it has the
 *    same key records but the gateway's session), fsck clean (objects
 *    included), and a tesserad serving it reads back every byte and
 *    every attribute through NFS;
 *  - `dump --verify` accepts the dump; `--json` is valid JSON
 *    (python3 -m json.tool);
 *  - scheduled backups (backup_interval=1s, backup_keep=2) appear in the
 *    store while clients write, are pruned to two, their age is a metric
 *    and `tessera status` names the last one; the newest verifies and
 *    restores (`load --from-backup`) to the volume as it was, key for key
 *    but the session, the lease, the backup record and the NFS byte
 *    counts (billing), fsck clean.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t/nfs/tharness.h"

#define KiB         1024u
#define MiB         (1024u * 1024u)
#define CHUNK       (64ull * MiB)
#define BIG_DIR     2000
#define MULTI_LEN   (1 * MiB)
#define SLICE       (64 * KiB)
#define SPAN_OFF    (CHUNK - 32 * KiB)
#define WRITER_LEN  (128 * KiB)
#define SMALL_LEN   5000
#define BACKUP_LINE "metadata backup written"

static struct th_server srv;
static struct th_conn cn;
static uint8_t multi[MULTI_LEN], span[SLICE], wbuf[WRITER_LEN];

/* ---- helpers ----------------------------------------------------------------- */

/* A step the test needs but does not check: silent unless it fails. */
#define MUST(cond, ...)                                                        \
	do {                                                                   \
		if (!(cond))                                                   \
			TH_REQUIRE(false, __VA_ARGS__);                        \
	} while (0)

static struct th_fh
must_create(const struct th_fh *dir, const char *name)
{
	struct th_obj o;
	int st = th_create(&cn, dir, name, GUARDED, NULL, NULL, &o);

	MUST(st == NFS3_OK && o.fh_follows, "CREATE %s (%s)", name,
	     th_stat_name(st));
	return o.fh;
}

static struct th_fh
must_mkdir(const struct th_fh *dir, const char *name)
{
	sattr3 sa = th_sattr_mode(0755);
	struct th_obj o;
	int st = th_mkdir(&cn, dir, name, &sa, &o);

	MUST(st == NFS3_OK && o.fh_follows, "MKDIR %s (%s)", name,
	     th_stat_name(st));
	return o.fh;
}

static void
must_write(const struct th_fh *fh, uint64_t off, const void *p, uint32_t n)
{
	int st = th_write(&cn, fh, off, p, n, FILE_SYNC, NULL);

	MUST(st == NFS3_OK, "WRITE %u bytes at %llu (%s)", n,
	     (unsigned long long)off, th_stat_name(st));
}

/* Look a path up from the root, one name at a time. */
static int
walk(const char *path, struct th_fh *out, fattr3 *attr)
{
	char copy[256], *save = NULL;
	struct th_fh fh = cn.root;
	struct th_obj o;
	int st;

	snprintf(copy, sizeof copy, "%s", path);
	for (char *n = strtok_r(copy, "/", &save); n != NULL;
	     n = strtok_r(NULL, "/", &save)) {
		st = th_lookup(&cn, &fh, n, &o);
		if (st != NFS3_OK)
			return st;
		fh = o.fh;
	}
	*out = fh;
	return attr ? th_getattr(&cn, &fh, attr) : NFS3_OK;
}

/* Every byte of [0, len) of path equals want (NULL: zeros), read in
 * pieces of 1 MiB. */
static bool
reads_back(const char *path, uint64_t off, const uint8_t *want, uint64_t len)
{
	static uint8_t buf[MiB];
	struct th_fh fh;
	uint64_t done = 0;

	if (walk(path, &fh, NULL) != NFS3_OK)
		return false;
	while (done < len) {
		uint32_t n = len - done > MiB ? MiB : (uint32_t)(len - done);
		uint32_t got = 0;
		int st = th_read(&cn, &fh, off + done, n, buf, &got, NULL);

		if (st != NFS3_OK || got == 0) {
			th_diag("%s: READ at %llu: %s", path,
				(unsigned long long)(off + done),
				th_stat_name(st));
			return false;
		}
		for (uint32_t i = 0; i < got; i++)
			if (buf[i] != (want ? want[done + i] : 0)) {
				th_diag("%s: byte %llu differs", path,
					(unsigned long long)(off + done + i));
				return false;
			}
		done += got;
	}
	return true;
}

static char *
path_in(const char *name)
{
	static char p[4][400];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof p[i], "%s/%s", srv.dir, name);
	return p[i];
}

static char *
slurp(const char *path, size_t *len)
{
	char *b = NULL;
	long n;
	FILE *f = fopen(path, "r");

	*len = 0;
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc((size_t)n + 1);
	if (b && fread(b, 1, (size_t)n, f) == (size_t)n) {
		b[n] = '\0';
		*len = (size_t)n;
	}
	fclose(f);
	return b;
}

/* The key records of a binary dump, in order, skipping the keys whose
 * first byte is in skip: a buffer of (be32 body length, body)... */
static char *
key_records(const char *path, const char *skip, size_t *out_len, size_t *nkeys)
{
	size_t len, p = 8, o = 0;
	char *d = slurp(path, &len), *out;

	*out_len = *nkeys = 0;
	if (d == NULL || len < 8 || memcmp(d, "TESSDUMP", 8) != 0) {
		free(d);
		return NULL;
	}
	out = malloc(len);
	while (p + 5 <= len) {
		const uint8_t *r = (const uint8_t *)d + p;
		uint32_t n =
			(uint32_t)r[1] << 24 | r[2] << 16 | r[3] << 8 | r[4];

		if (r[0] == 'K' && n >= 3 && strchr(skip, r[7]) == NULL) {
			memcpy(out + o, r + 1, 4 + n);
			o += 4 + n;
			(*nkeys)++;
		}
		p += 5 + n + 4;
	}
	free(d);
	*out_len = o;
	return out;
}

static bool
same_key_records(const char *a, const char *b, const char *skip)
{
	size_t la, lb, na, nb;
	char *ra = key_records(a, skip, &la, &na);
	char *rb = key_records(b, skip, &lb, &nb);
	bool same = ra && rb && la == lb && memcmp(ra, rb, la) == 0;

	th_diag("%s: %zu keys, %s: %zu keys", a, na, b, nb);
	free(ra);
	free(rb);
	return same && na > BIG_DIR;
}

/* ---- the volume --------------------------------------------------------------- */

static void
populate(void)
{
	struct th_fh d1, sub, big, f, sp;
	struct th_obj o;
	LINK3res lr;
	int st;

	th_fill(1, multi, sizeof multi);
	th_fill(2, span, sizeof span);
	d1 = must_mkdir(&cn.root, "d1");
	sub = must_mkdir(&d1, "sub");
	f = must_create(&d1, "multi");
	/* 16 slices written out of order, then 4 overwrites */
	for (unsigned i = 0; i < MULTI_LEN / SLICE; i++) {
		unsigned k = (i * 7) % (MULTI_LEN / SLICE);

		must_write(&f, (uint64_t)k * SLICE, multi + k * SLICE, SLICE);
	}
	for (unsigned i = 0; i < 4; i++) {
		uint64_t off = (uint64_t)i * 200 * KiB + 3 * KiB;

		multi[off] ^= 0xff;
		must_write(&f, off, multi + off, 17 * KiB);
	}
	/* a small file: its bytes in the metadata (inline_max) */
	{
		struct th_fh sm = must_create(&d1, "small");

		must_write(&sm, 0, span, SMALL_LEN);
	}
	sp = must_create(&cn.root, "span");
	must_write(&sp, SPAN_OFF, span, SLICE); /* across the chunk edge */
	st = th_link(&cn, &f, &sub, "hard1", &lr);
	TH_REQUIRE(st == NFS3_OK, "LINK (%s)", th_stat_name(st));
	st = th_link(&cn, &f, &cn.root, "hard2", &lr);
	TH_REQUIRE(st == NFS3_OK, "LINK (%s)", th_stat_name(st));
	st = th_symlink(&cn, &cn.root, "sym", "d1/multi", &o);
	TH_REQUIRE(st == NFS3_OK, "SYMLINK (%s)", th_stat_name(st));
	st = th_mknod(&cn, &d1, "chr", NF3CHR, 0620, 4, 64, &o);
	TH_REQUIRE(st == NFS3_OK, "MKNOD chr (%s)", th_stat_name(st));
	st = th_mknod(&cn, &d1, "blk", NF3BLK, 0660, 8, 1, &o);
	TH_REQUIRE(st == NFS3_OK, "MKNOD blk (%s)", th_stat_name(st));
	st = th_mknod(&cn, &sub, "fifo", NF3FIFO, 0600, 0, 0, &o);
	TH_REQUIRE(st == NFS3_OK, "MKNOD fifo (%s)", th_stat_name(st));
	st = th_mknod(&cn, &sub, "sock", NF3SOCK, 0600, 0, 0, &o);
	TH_REQUIRE(st == NFS3_OK, "MKNOD sock (%s)", th_stat_name(st));
	big = must_mkdir(&cn.root, "big");
	st = th_bulk_create(&cn, &big, "entry-", 5, 0, BIG_DIR, 32, NULL);
	TH_REQUIRE(st == NFS3_OK, "%d CREATEs (%s)", BIG_DIR, th_stat_name(st));
	must_mkdir(&cn.root, "w");
}

/* Start `tessera dump META FILE` without waiting. */
static pid_t
dump_start(const char *meta, const char *file)
{
	char cmd[1200];
	pid_t pid;

	snprintf(cmd, sizeof cmd,
		 "exec '%s/tessera' dump '%s' '%s' "
		 ">'%s' 2>&1",
		 th_builddir(), meta, file, path_in("dump.out"));
	pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Dump while a client writes files into w/ (one FILE_SYNC WRITE each):
 * again until writes completed while a dump ran and the gateway wrote a
 * scheduled backup meanwhile.  Returns the number of
 * files written; *settled receives how many were written before the
 * last dump (the one in file) began. */
static unsigned
dump_while_writing(const char *file, unsigned *settled)
{
	struct th_fh w, f;
	unsigned files = 0, during = 0;
	char name[32], out[400];

	/* path_in's buffers rotate: keep the name */
	snprintf(out, sizeof out, "%s", file);
	file = out;
	TH_REQUIRE(walk("w", &w, NULL) == NFS3_OK, "LOOKUP w");
	th_fill(3, wbuf, sizeof wbuf);
	/* until writes overlapped dumps, and a scheduled backup too */
	for (int round = 0;
	     round < 400 && (during < 5 || round < 2 ||
			     th_server_log_count(&srv, BACKUP_LINE) == 0);
	     round++) {
		pid_t pid;
		int status = 0;

		*settled = files;
		pid = dump_start(srv.meta_url, file);
		MUST(pid > 0, "fork the dump");
		for (;;) {
			pid_t done = waitpid(pid, &status, WNOHANG);

			snprintf(name, sizeof name, "file-%05u", files);
			f = must_create(&w, name);
			must_write(&f, 0, wbuf, WRITER_LEN);
			files++;
			if (done == pid)
				break;
			during++;
		}
		MUST(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		     "tessera dump while a client writes (round %d)", round);
	}
	TH_CHECK(during >= 5, "%u files written while a dump ran, %u in all",
		 during, files);
	return files;
}

static void
check_served(unsigned writers, unsigned settled)
{
	fattr3 a;
	struct th_fh fh, big;
	struct th_dirpage pg;
	uint64_t cookie = 0, entries = 0;
	uint8_t verf[8] = {0};
	char target[64], name[64];
	unsigned whole = 0;
	bool eof = false;

	TH_CHECK(reads_back("d1/multi", 0, multi, MULTI_LEN),
		 "a file of many slices reads back every byte");
	TH_CHECK(walk("d1/sub/hard1", &fh, &a) == NFS3_OK && a.nlink == 3 &&
			 a.size == MULTI_LEN &&
			 reads_back("hard2", 0, multi, MULTI_LEN),
		 "hard links: nlink 3, same data");
	TH_CHECK(walk("span", &fh, &a) == NFS3_OK &&
			 a.size == SPAN_OFF + SLICE &&
			 reads_back("span", 0, NULL, SPAN_OFF) &&
			 reads_back("span", SPAN_OFF, span, SLICE),
		 "a sparse file across the chunk edge reads back every byte");
	TH_CHECK(walk("d1/small", &fh, &a) == NFS3_OK && a.size == SMALL_LEN &&
			 reads_back("d1/small", 0, span, SMALL_LEN),
		 "a small file (its bytes inline) reads back every byte");
	TH_CHECK(walk("sym", &fh, &a) == NFS3_OK && a.type == NF3LNK &&
			 th_readlink(&cn, &fh, target, sizeof target) ==
				 NFS3_OK &&
			 strcmp(target, "d1/multi") == 0,
		 "symlink and its target");
	TH_CHECK(walk("d1/chr", &fh, &a) == NFS3_OK && a.type == NF3CHR &&
			 a.rdev.specdata1 == 4 && a.rdev.specdata2 == 64 &&
			 (a.mode & 07777) == 0620,
		 "character device 4:64");
	TH_CHECK(walk("d1/blk", &fh, &a) == NFS3_OK && a.type == NF3BLK &&
			 a.rdev.specdata1 == 8 && a.rdev.specdata2 == 1,
		 "block device 8:1");
	TH_CHECK(walk("d1/sub/fifo", &fh, &a) == NFS3_OK && a.type == NF3FIFO,
		 "fifo");
	TH_CHECK(walk("d1/sub/sock", &fh, &a) == NFS3_OK && a.type == NF3SOCK,
		 "socket");
	TH_REQUIRE(walk("big", &big, &a) == NFS3_OK && a.type == NF3DIR,
		   "LOOKUP big");
	while (!eof) {
		int st = th_readdir(&cn, &big, cookie, verf, 32768, &pg);

		if (st != NFS3_OK)
			break;
		for (size_t i = 0; i < pg.n; i++) {
			entries += strncmp(pg.v[i].name, "entry-", 6) == 0;
			cookie = pg.v[i].cookie;
		}
		memcpy(verf, pg.verf, 8);
		eof = pg.eof;
		th_dirpage_free(&pg);
	}
	TH_CHECK(eof && entries == BIG_DIR,
		 "a directory of %llu entries "
		 "lists whole",
		 (unsigned long long)entries);
	/* files written before the dump: whole; while it ran: absent,
	 * empty, or whole (each was one WRITE), never anything else */
	for (unsigned i = 0; i < writers; i++) {
		snprintf(name, sizeof name, "w/file-%05u", i);
		if (i >= settled &&
		    (walk(name, &fh, &a) != NFS3_OK || a.size == 0))
			continue;
		if (walk(name, &fh, &a) != NFS3_OK) {
			th_diag("%s is missing", name);
			break;
		}
		if (a.size != WRITER_LEN ||
		    !reads_back(name, 0, wbuf, WRITER_LEN)) {
			th_diag("%s: %llu bytes, not whole", name,
				(unsigned long long)a.size);
			break;
		}
		whole++;
	}
	TH_CHECK(whole >= settled && settled > 0,
		 "the %u files written "
		 "before the dump and %u of the %u written while it ran are in "
		 "the loaded volume, each whole",
		 settled, whole - settled, writers - settled);
}

/* ---- scheduled backups ----------------------------------------------------- */

/* Complete and incomplete backups `tessera load --list` shows. */
static int
count_backups(bool *incomplete)
{
	char *out, *save = NULL;
	size_t len;
	int n = 0;

	*incomplete = false;
	if (th_tessera(&srv, "load --list --from-backup '%s' --volume tvol",
		       srv.storage_url) != 0)
		return -1;
	out = slurp(path_in("tool.out"), &len);
	for (char *l = strtok_r(out, "\n", &save); l != NULL;
	     l = strtok_r(NULL, "\n", &save)) {
		th_diag("%s", l);
		if (strstr(l, "incomplete"))
			*incomplete = true;
		else if (strncmp(l, "20", 2) == 0)
			n++;
	}
	free(out);
	return n;
}

static bool
metrics_say(const char *what)
{
	char cmd[1200], line[512];
	int port = 0;
	bool yes = false;
	FILE *f = fopen(path_in("tesserad.log"), "r");

	while (f && fgets(line, sizeof line, f)) {
		char *p = strstr(line, "metrics on http://127.0.0.1:");

		if (p)
			port = atoi(p + strlen("metrics on http://127.0.0.1:"));
	}
	if (f)
		fclose(f);
	if (port == 0)
		return false;
	snprintf(cmd, sizeof cmd, "curl -sf http://127.0.0.1:%d/metrics", port);
	f = popen(cmd, "r");
	while (f && fgets(line, sizeof line, f))
		yes |= strstr(line, what) == line;
	if (f)
		pclose(f);
	return yes;
}

int
main(void)
{
	char *meta1, *meta2, *meta3;
	unsigned writers, settled = 0;
	int backups;
	bool incomplete;
	size_t len;
	char *json;

	if (th_server_start(&srv, NULL, NULL) != 0)
		th_bail();
	/* backups every second, two kept, metrics on a port of its own */
	th_server_set_args(&srv, "-o backup_interval=1s -o backup_keep=2 "
				 "--metrics-listen 127.0.0.1:0");
	TH_REQUIRE(th_server_restart(&srv, false) == 0, "restart with backups");
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0, "mount");
	populate();
	meta1 = strdup(srv.meta_url);
	writers = dump_while_writing(path_in("d1.bin"), &settled);
	backups = th_server_log_count(&srv, BACKUP_LINE);

	TH_CHECK(th_tessera(&srv, "dump --verify '%s'", path_in("d1.bin")) == 0,
		 "dump --verify accepts the dump");
	TH_CHECK(th_tessera(&srv, "dump --json '%s' '%s'", srv.meta_url,
			    path_in("d1.json")) == 0,
		 "dump --json while the gateway serves");
	json = slurp(path_in("d1.json"), &len);
	TH_CHECK(json && strstr(json, "\"type\": \"chunk\""), "JSON of chunks");
	TH_CHECK(json && strstr(json, "\"type\": \"inline\""),
		 "JSON of inline bytes");
	free(json);
	{
		char cmd[600];

		snprintf(cmd, sizeof cmd,
			 "python3 -m json.tool '%s' "
			 ">/dev/null",
			 path_in("d1.json"));
		TH_CHECK(system(cmd) == 0, "python3 -m json.tool accepts it");
	}

	/* load it into a new engine */
	meta2 = strdup(path_in("meta2"));
	{
		char url[500];

		snprintf(url, sizeof url, "lmdb://%s", meta2);
		free(meta2);
		meta2 = strdup(url);
	}
	TH_CHECK(th_tessera(&srv, "load '%s' '%s'", meta2, path_in("d1.bin")) ==
			 0,
		 "tessera load into an empty engine");
	TH_CHECK(th_tessera(&srv, "load '%s' '%s'", meta2, path_in("d1.bin")) !=
			 0,
		 "a second load into it is refused");
	TH_CHECK(th_tessera(&srv, "dump '%s' '%s'", meta2, path_in("d2.bin")) ==
			 0,
		 "dump of the loaded volume");
	TH_CHECK(same_key_records(path_in("d1.bin"), path_in("d2.bin"), "G"),
		 "the loaded volume is identical key for key (sessions aside)");
	TH_CHECK(th_tessera(&srv, "fsck '%s'", meta2) == 0,
		 "the loaded volume is fsck clean, objects included");

	/* scheduled backups: two more since the writes stopped, so that
	 * the newest was taken after them (a stall detector, no timing) */
	for (uint64_t t0 = th_now_ms(); th_now_ms() - t0 < TH_STALL_MS;) {
		if (th_server_log_count(&srv, BACKUP_LINE) >= backups + 2)
			break;
		usleep(200000);
	}
	TH_CHECK(th_server_log_count(&srv, BACKUP_LINE) >= backups + 2 &&
			 backups >= 1,
		 "the gateway wrote backups while clients "
		 "wrote (%d) and after",
		 backups);
	TH_CHECK(metrics_say("tessera_meta_backup_age_seconds "),
		 "the newest backup's age is a metric");
	TH_CHECK(metrics_say("tessera_meta_backups_total{result=\"written\"}"),
		 "and the backups written");
	TH_CHECK(th_tessera(&srv, "status '%s'", srv.meta_url) == 0 &&
			 (json = slurp(path_in("tool.out"), &len)) != NULL &&
			 strstr(json, "last backup:") &&
			 strstr(json, "meta-backup/"),
		 "tessera status names the last backup");
	free(json);

	/* the original gateway stops (a backup in progress completes) */
	th_disconnect(&cn);
	th_server_stop(&srv, false);
	TH_CHECK(count_backups(&incomplete) == 2 && !incomplete,
		 "the store holds the two newest backups, complete");
	TH_CHECK(th_tessera(&srv,
			    "dump --verify --from-backup '%s' --volume "
			    "tvol",
			    srv.storage_url) == 0,
		 "the newest backup verifies");
	meta3 = strdup(meta2);
	meta3[strlen(meta3) - 1] = '3';
	TH_CHECK(th_tessera(&srv, "load --from-backup '%s' --volume tvol '%s'",
			    srv.storage_url, meta3) == 0,
		 "tessera load --from-backup");
	TH_CHECK(th_tessera(&srv, "fsck '%s'", meta3) == 0,
		 "the restored volume is fsck clean");
	TH_CHECK(th_tessera(&srv, "dump '%s' '%s'", meta1,
			    path_in("d1b.bin")) == 0 &&
			 th_tessera(&srv, "dump '%s' '%s'", meta3,
				    path_in("d3.bin")) == 0 &&
			 /* X: the NFS bytes the gateway counted, added to the
		  * volume as it stopped, after the last backup */
			 same_key_records(path_in("d1b.bin"), path_in("d3.bin"),
					  "GBbX"),
		 "the restored volume is the volume as it was, key for key "
		 "(sessions, the background-job lease, the backup record and "
		 "the NFS byte counts aside)");

	/* a gateway serves the loaded copy: every byte through NFS */
	th_server_set_args(&srv, NULL);
	snprintf(srv.meta_url, sizeof srv.meta_url, "%s", meta2);
	TH_REQUIRE(th_server_restart(&srv, false) == 0,
		   "tesserad on the loaded volume");
	TH_REQUIRE(th_connect(&cn, srv.port, "/", 0, 0) == 0, "mount");
	check_served(writers, settled);
	th_disconnect(&cn);
	free(meta1);
	free(meta2);
	free(meta3);
	th_server_destroy(&srv);
	return th_done();
}
