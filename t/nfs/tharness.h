/*
 * tharness.h - protocol tests through libnfs against a real tesserad.
 *
 * Server side: th_server_start formats a fresh volume in a temporary
 * directory with `tessera format`, starts `tesserad` on a free loopback
 * port (NFS and MOUNT on one port, no rpcbind) and waits until it accepts
 * connections.  The daemon gets PR_SET_PDEATHSIG, and every started server
 * is killed and its directory removed at exit, so a failing or crashing
 * test leaves nothing behind.
 *
 * Client side: a th_conn is one libnfs raw RPC context (struct
 * rpc_context) carrying MOUNT and NFS calls on the same TCP connection.
 * The th_* procedure wrappers send one call, run the event loop until the
 * reply arrives and return the exact nfsstat3 of the reply (or -1 when the
 * RPC itself failed: disconnect, timeout, garbage), copying what the test
 * needs out of libnfs's reply memory, which is only valid inside the
 * callback.  Handles are plain byte strings (struct th_fh) so a test can
 * forge, truncate or replay them.
 *
 * Assertions: TH_CHECK prints "ok N - what" / "not ok N - what (file:line)"
 * (TAP-ish) and counts failures; th_done() prints the plan and returns the
 * exit status (0 all passed, 1 some failed).  TH_REQUIRE stops the test at
 * the first failure where going on would only cascade.
 *
 * Running one test by hand: `make t/nfs/nfs_io_test tesserad tessera &&
 * ./t/nfs/nfs_io_test` in the build directory.  Environment:
 * top_builddir (where tesserad and tessera are; default the configured
 * build dir), TH_KEEP=1 keeps the temporary directories (meta, objects,
 * tesserad.log), TH_TIMEOUT=seconds (watchdog: the test stops after
 * that long without a reply from the server; default 900), TH_SEED
 * (nfs_bigfile_test's data).
 *
 * Time: tests never assert how long something took (shared machines are
 * noisy, sanitizer builds several times slower).  The only clocks are
 * stall detectors: no reply for TH_STALL_MS, or the watchdog.
 */
#ifndef T_NFS_THARNESS_H
#define T_NFS_THARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#include "t/unit/tproc.h"

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-mount.h>
#include <nfsc/libnfs-raw-nfs.h>

/* A call (or a bulk run) that gets no reply for this long has stalled. */
#define TH_STALL_MS (T_STALL_S * 1000)

/* ---- assertions ----------------------------------------------------------- */

extern int th_failures;
void th_result(bool ok, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define TH_CHECK(cond, ...) th_result((cond), __FILE__, __LINE__, __VA_ARGS__)
#define TH_REQUIRE(cond, ...)                                                  \
	do {                                                                   \
		bool th_ok_ = (cond);                                          \
		th_result(th_ok_, __FILE__, __LINE__, __VA_ARGS__);            \
		if (!th_ok_)                                                   \
			th_bail();                                             \
	} while (0)
/* Check an nfsstat3 (or -1) against the expected one, printing both
 * by name on mismatch. */
#define TH_STAT(got, want, ...)                                                \
	th_stat_result((got), (want), __FILE__, __LINE__, __VA_ARGS__)
void th_stat_result(int got, int want, const char *file, int line,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
const char *th_stat_name(int st);
void th_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void th_bail(void);
_Noreturn void th_skip_all(const char *why);
int th_done(void);

/* ---- the server ----------------------------------------------------------- */

struct th_server {
	char dir[160]; /* temporary directory: meta/, obj/, logs */
	char meta_url[300];
	char storage_url[300];
	char exports_path[300]; /* "" when the default exports are used */
	int port;
	pid_t pid;
	int started;           /* restarts count too */
	char daemon_args[256]; /* extra tesserad options, space-separated
				  ("-o upload_limit=2M"); set with
				  th_server_set_args */
	bool peer;             /* joined another's volume (th_server_join) */
	bool no_nfs;           /* started with --bgjob-only */
	char logname[40];      /* its log in dir; "": tesserad.log */
};

/* Format a volume (format_args: extra `tessera format` options, may be
 * NULL, e.g. "--inodes 10") and start tesserad.  exports: the text of an
 * exports file or NULL for the daemon's default.  Returns 0 or -1 (with a
 * diagnostic and the daemon's log printed). */
int th_server_start(struct th_server *s, const char *format_args,
		    const char *exports);
/* Start another tesserad on the volume of of (a second gateway: same
 * metadata and store, its own port and log, tesserad-N.log in of's
 * directory), with extra options args (may be NULL).  nfs false: it is
 * started with --bgjob-only (add that to args) and counts as started
 * once its log says it runs the background jobs only.  Destroy it before
 * of, whose directory it shares. */
int th_server_join(struct th_server *s, const struct th_server *of,
		   const char *args, bool nfs);
/* Replace the exports file (text, or NULL for the default) used by the
 * next th_server_restart. */
int th_server_set_exports(struct th_server *s, const char *exports);
/* Extra tesserad options (space-separated, NULL for none) used by the
 * next th_server_restart. */
void th_server_set_args(struct th_server *s, const char *args);
/* Stop (SIGTERM, SIGKILL after 10 s; or SIGKILL at once when kill_hard:
 * a crash) and start again on the same port and volume.  Connections
 * die: reconnect with th_connect. */
int th_server_restart(struct th_server *s, bool kill_hard);
/* Stop the daemon.  kill_hard: SIGKILL instead of SIGTERM. */
void th_server_stop(struct th_server *s, bool kill_hard);
/* Stop and remove the directory. */
void th_server_destroy(struct th_server *s);
/* A memory figure of the daemon's /proc/PID/status in bytes ("RssAnon":
 * anonymous resident memory; "VmRSS": all of it), or 0 if unknown. */
uint64_t th_server_mem(const struct th_server *s, const char *field);
/* How many lines of the daemon's log (tesserad.log, all its runs)
 * contain what. */
int th_server_log_count(const struct th_server *s, const char *what);
/* The size of the daemon's log now: an offset for the next two. */
long th_server_log_size(const struct th_server *s);
/* The port of the last "metrics on" line after offset from in the log
 * at path (of s's log for the second); 0 if none (yet). */
int th_log_metrics_port(const char *path, long from);
int th_server_metrics_port(const struct th_server *s, long from);
/* The value of the sample whose name and labels are exactly series
 * ("tessera_drc_hits_total", "x{a=\"b\"}") in a /metrics text; -1 if
 * absent. */
double th_sample(const char *text, const char *series);
/* The value of metric name (with its labels, as printed: "x{a=\"b\"}")
 * in s's /metrics (started with --metrics-listen 127.0.0.1:0: the port
 * is read from its log): 0, 1 when the metric is absent, -1 when the
 * endpoint does not answer. */
/* One HTTP/1.0 request to 127.0.0.1:port (auth: an Authorization
 * header's value, or NULL); the status code (-1: no answer), and the
 * body (malloc'd, NUL-terminated) in *body when body is not NULL. */
int th_http(int port, const char *method, const char *path, const char *auth,
	    char **body);
int th_server_metric(const struct th_server *s, const char *name, double *v);
/* libnfs URL for the server, path e.g. "/" (static buffer). */
const char *th_server_url(const struct th_server *s, const char *path);
/* 127.0.0.1:port into *sin (a struct sockaddr_in). */
struct sockaddr_in;
void th_loopback(struct sockaddr_in *sin, int port);
/* Where tesserad and tessera are (top_builddir, or the configured one). */
const char *th_builddir(void);
/* Run `tessera fsck` on the server's volume, its output shown as
 * diagnostics when it fails; returns system()'s status (0: clean). */
int th_server_fsck(const struct th_server *s);
/* Move the stopped server's directory sub ("meta", "obj") onto a tmpfs
 * of mib MiB, with what it holds, plus a file of filler bytes (zeros)
 * whose removal frees that much space later; returns that file's path
 * (static).  Skips the whole test (77) where no tmpfs can be mounted
 * (not root).  Unmounted by th_tmpfs_unmount, or at exit. */
const char *th_server_tmpfs(const struct th_server *s, const char *sub,
			    unsigned mib, size_t filler);
void th_tmpfs_unmount(void);
/* The fault wrapper's settings (objstore/fault.c, ctl=FILE) from now
 * on: spec written to ctl atomically; NULL removes the file (no
 * faults, held operations let go).  Fails the test if it cannot. */
void th_store_faults(const char *ctl, const char *spec);
/* Stop s and put its volume's store behind the fault wrapper, with its
 * control file at <s->dir>/fault.ctl (into ctl, len bytes) and spec in
 * force (th_store_faults; NULL: none); the next th_server_restart
 * starts on it.  Fails the test if it cannot. */
void th_server_fault_store(struct th_server *s, const char *spec, char *ctl,
			   size_t len);
/* Run `tessera ARGS` (printf-formatted; quote as for sh); its output is
 * shown as diagnostics when it fails.  Returns system()'s status. */
int th_tessera(const struct th_server *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The number after what at the start of a line of the last th_tessera's
 * output (the last such line), or -1. */
long th_tool_figure(const struct th_server *s, const char *what);
/* Blocks of the volume in the server's file:// store. */
size_t th_server_objects(const struct th_server *s);

/* ---- the client ------------------------------------------------------------ */

#define TH_FH_MAX 128
struct th_fh {
	uint32_t len;
	uint8_t data[TH_FH_MAX];
};

struct th_conn {
	struct rpc_context *rpc;
	struct th_fh root; /* handle of the mounted export */
	int port;
	uint32_t uid, gid;
};

/* Connect to 127.0.0.1:port with AUTH_SYS uid/gid and MOUNT path.
 * Returns 0, or the MOUNT status (> 0) or -1; *c is usable for
 * th_disconnect in every case. */
int th_connect(struct th_conn *c, int port, const char *path, uint32_t uid,
	       uint32_t gid);
/* The same to host (an IPv4 address) instead of 127.0.0.1. */
int th_connect_host(struct th_conn *c, const char *host, int port,
		    const char *path, uint32_t uid, uint32_t gid);
void th_disconnect(struct th_conn *c);
/* How long a call waits for its reply before it fails (-1) and the
 * connection is dropped: TH_STALL_MS, or ms (0: back to TH_STALL_MS) for
 * every connection of the process; a test whose servers stop answering
 * on purpose shortens it. */
void th_set_stall_ms(unsigned ms);
/* Change the AUTH_SYS credentials of later calls. */
void th_set_cred(struct th_conn *c, uint32_t uid, uint32_t gid,
		 uint32_t ngroups, const uint32_t *groups);
/* Run the event loop once (up to timeout_ms); -1 if the connection died. */
int th_service(struct th_conn *c, int timeout_ms);
/* Wait until *done is set by a callback (60 s limit); 0 or -1. */
int th_wait(struct th_conn *c, int *done);

/* MOUNT3 MNT of path: 0 and *fh, or the mountstat3, or -1. */
int th_mnt(struct th_conn *c, const char *path, struct th_fh *fh);

/* A handle as a libnfs argument (points into fh; valid while fh is). */
nfs_fh3 th_fh3(const struct th_fh *fh);

/* Result of the procedures that produce an object (LOOKUP, CREATE, MKDIR,
 * SYMLINK, MKNOD). */
struct th_obj {
	bool fh_follows;
	struct th_fh fh;
	bool attr_follows;
	fattr3 attr;
	wcc_data dir_wcc;            /* CREATE/MKDIR/SYMLINK/MKNOD */
	post_op_attr dir_attributes; /* LOOKUP */
};

/* sattr3 helpers: start with th_sattr_none() and set fields. */
sattr3 th_sattr_none(void);
sattr3 th_sattr_mode(uint32_t mode);

int th_null(struct th_conn *c);
int th_getattr(struct th_conn *c, const struct th_fh *fh, fattr3 *out);
int th_setattr(struct th_conn *c, const struct th_fh *fh, const sattr3 *sa,
	       const nfstime3 *guard, SETATTR3res *out);
int th_lookup(struct th_conn *c, const struct th_fh *dir, const char *name,
	      struct th_obj *out);
int th_access(struct th_conn *c, const struct th_fh *fh, uint32_t want,
	      uint32_t *granted);
int th_readlink(struct th_conn *c, const struct th_fh *fh, char *buf,
		size_t bufsz);
/* READ into buf (count bytes at most); *got and *eof out (may be NULL). */
int th_read(struct th_conn *c, const struct th_fh *fh, uint64_t off,
	    uint32_t count, void *buf, uint32_t *got, bool *eof);
int th_write(struct th_conn *c, const struct th_fh *fh, uint64_t off,
	     const void *buf, uint32_t count, stable_how how, WRITE3res *out);
int th_create(struct th_conn *c, const struct th_fh *dir, const char *name,
	      createmode3 how, const sattr3 *sa, const uint8_t verf[8],
	      struct th_obj *out);
int th_mkdir(struct th_conn *c, const struct th_fh *dir, const char *name,
	     const sattr3 *sa, struct th_obj *out);
/* MKDIR, or CREATE GUARDED, that must succeed with a handle (a
 * TH_REQUIRE line): the new object's handle. */
struct th_fh th_mkdir_fh(struct th_conn *c, const struct th_fh *dir,
			 const char *name);
struct th_fh th_create_fh(struct th_conn *c, const struct th_fh *dir,
			  const char *name, const sattr3 *sa);
int th_symlink(struct th_conn *c, const struct th_fh *dir, const char *name,
	       const char *target, struct th_obj *out);
/* type NF3CHR/NF3BLK use major/minor; NF3SOCK/NF3FIFO ignore them. */
int th_mknod(struct th_conn *c, const struct th_fh *dir, const char *name,
	     ftype3 type, uint32_t mode, uint32_t major, uint32_t minor,
	     struct th_obj *out);
int th_remove(struct th_conn *c, const struct th_fh *dir, const char *name);
int th_rmdir(struct th_conn *c, const struct th_fh *dir, const char *name);
int th_rename(struct th_conn *c, const struct th_fh *sdir, const char *sname,
	      const struct th_fh *ddir, const char *dname);
int th_link(struct th_conn *c, const struct th_fh *fh, const struct th_fh *dir,
	    const char *name, LINK3res *out);
int th_fsstat(struct th_conn *c, const struct th_fh *fh, FSSTAT3res *out);
int th_fsinfo(struct th_conn *c, const struct th_fh *fh, FSINFO3res *out);
int th_pathconf(struct th_conn *c, const struct th_fh *fh, PATHCONF3res *out);
int th_commit(struct th_conn *c, const struct th_fh *fh, uint64_t off,
	      uint32_t count, COMMIT3res *out);

/* One READDIR / READDIRPLUS reply, entries copied. */
struct th_dirent {
	uint64_t fileid;
	char *name; /* owned by the th_dirpage */
	uint64_t cookie;
	bool attr_follows; /* READDIRPLUS */
	fattr3 attr;
	bool fh_follows;
	struct th_fh fh;
};
struct th_dirpage {
	bool eof;
	uint8_t verf[8];
	size_t n;
	struct th_dirent *v;
};
void th_dirpage_free(struct th_dirpage *p);
/* READDIR (plus = false: count is `count`) or READDIRPLUS (dircount,
 * maxcount). */
int th_readdir(struct th_conn *c, const struct th_fh *dir, uint64_t cookie,
	       const uint8_t verf[8], uint32_t count, struct th_dirpage *out);
int th_readdirplus(struct th_conn *c, const struct th_fh *dir, uint64_t cookie,
		   const uint8_t verf[8], uint32_t dircount, uint32_t maxcount,
		   struct th_dirpage *out);

/* Create files named prefix followed by i, zero-padded to width digits
 * (0: not padded), for i in [first, first+n) in dir with GUARDED CREATE,
 * up to depth calls in flight.  Returns 0, or the status of the first
 * failed call (-1 for an RPC failure); *failed (may be NULL) receives
 * the number of failed calls. */
int th_bulk_create(struct th_conn *c, const struct th_fh *dir,
		   const char *prefix, int width, uint64_t first, uint64_t n,
		   int depth, uint64_t *failed);

/* ---- small utilities ------------------------------------------------------ */

/* xorshift64* PRNG: reproducible data from a seed. */
uint64_t th_rand(uint64_t *state);
void th_fill(uint64_t seed, void *buf, size_t len);
uint64_t th_now_ms(void);
/* Write and check a whole file; helpers for the data tests. */
bool th_fattr_is(const fattr3 *a, ftype3 type);

#endif /* T_NFS_THARNESS_H */
