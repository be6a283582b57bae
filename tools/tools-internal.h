/*
 * tools-internal.h - what the commands of `tessera` share: the command
 * table's entry points, the --volume option, opening a volume, progress
 * lines on a terminal.
 *
 * Every command is a function int cmd(argc, argv) (argv[0] is the
 * command's name, getopt style) returning the exit status: 0 success,
 * 1 error (printed on stderr as "tessera: CMD: ..."), 2 bad usage
 * (TESSERA_EXIT_USAGE).  The table in tessera.c lists them.
 */
#ifndef TOOLS_INTERNAL_H
#define TOOLS_INTERNAL_H

#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct meta;
struct meta_session;

#define TESSERA_EXIT_USAGE 2

/* getopt_long entry of --volume NAME, accepted by every command that
 * opens a volume; the value comes back as TESSERA_OPT_VOLUME. */
#define TESSERA_OPT_VOLUME 0x100
#define TESSERA_VOLUME_OPTION                                                  \
	{                                                                      \
		"volume", required_argument, NULL, TESSERA_OPT_VOLUME          \
	}
/* --force of the commands that take it. */
#define TESSERA_OPT_FORCE 0x101

/* The commands (tools/volume.c, fsck.c, gc.c, destroy.c). */
int tessera_cmd_format(int argc, char **argv);
int tessera_cmd_status(int argc, char **argv);
int tessera_cmd_config(int argc, char **argv);
int tessera_cmd_fsck(int argc, char **argv);
int tessera_cmd_gc(int argc, char **argv);
int tessera_cmd_destroy(int argc, char **argv);
/* tools/trash.c */
int tessera_cmd_trash(int argc, char **argv);
/* tools/quota.c */
int tessera_cmd_quota(int argc, char **argv);
/* tools/info.c */
int tessera_cmd_info(int argc, char **argv);
int tessera_cmd_summary(int argc, char **argv);
/* tools/warmup.c: fill a gateway's disk cache through NFS */
int tessera_cmd_warmup(int argc, char **argv);
/* tools/top.c: a terminal view of a gateway's metrics */
int tessera_cmd_top(int argc, char **argv);
/* tools/dump.c */
int tessera_cmd_dump(int argc, char **argv);
int tessera_cmd_load(int argc, char **argv);
/* tools/raft.c: tessera raft, and the META_URL raft:// */
int tessera_cmd_raft(int argc, char **argv);
/* tessera.conf (path NULL: the default one if present): the raft_*
 * options say which node "raft://" is. */
int tessera_conf_load(const char *path);
void tessera_conf_free(void);
/* The tessera.conf loaded (the defaults when none was). */
struct nfsd_config;
const struct nfsd_config *tessera_conf(void);
/* tools/admin.c: a running gateway's admin endpoint */
int tessera_cmd_limit(int argc, char **argv);
/* tessera config reload (tessera_cmd_config passes it on) */
int tessera_cmd_config_reload(int argc, char **argv);
/* "raft://" alone names this machine's node: a client URL of it
 * (caller frees); other URLs are copied. */
char *tessera_meta_url(const char *url);
/* The URL format writes through: a node URL founding a group when the
 * node directory is empty (*founding), else a client URL.  NULL (and a
 * message printed) when tessera.conf lacks what founding needs. */
char *tessera_format_url(const char *url, bool *founding);

/* Remove m's volume: its objects, when its store is provably its own
 * (marker, or a referenced block read back), then its metadata; with
 * force the metadata goes even when the store cannot be touched.  The
 * caller checked the gateways.  Prints progress, errors and a summary;
 * 0 or a negative errno.  m may only be closed afterwards. */
int tessera_destroy_volume(struct meta *m, bool force, unsigned jobs);

/* Print "tessera: <fmt formatted>" and the usage on stderr; returns
 * TESSERA_EXIT_USAGE.  The v form puts "CMD: " after "tessera: " when
 * cmd is not NULL (for commands with subcommands). */
int tessera_usage_error(const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int tessera_usage_verror(const char *usage, const char *cmd, const char *fmt,
			 va_list ap) __attribute__((format(printf, 3, 0)));

/* Open the volume of url, named by volume (--volume, may be NULL) or by
 * the URL's ?volume=.  rdonly: the command only reads, so nothing may be
 * created or written (a mistyped URL is an error, not a new
 * environment).  On failure prints "tessera CMD: why" and returns
 * non-zero. */
int tessera_open(const char *cmd, const char *url, const char *volume,
		 bool rdonly, struct meta **m);

/* One line about a gateway session: host, address, pid, version, start
 * time and heartbeat age, or why it is stale. */
void tessera_session_describe(const struct meta_session *s, uint64_t now_ns,
			      char *buf, size_t len);

/* Commands that must not run beside a gateway (fsck --repair, destroy):
 * 0 when no live gateway session is recorded in m's volume (stale ones
 * are mentioned on stderr), or with force (a warning then); otherwise
 * prints the gateways and how to proceed, and returns -EBUSY. */
int tessera_no_gateway(const char *cmd, struct meta *m, bool force);

/* A progress line on a terminal: the first after a second, then at
 * most one a second, overwritten in place, cleared before anything else
 * is printed. */
struct tessera_progress {
	bool tty;         /* the stream is a terminal */
	bool shown;       /* a line is drawn */
	int fd;           /* 1 or 2 */
	uint64_t last_ms; /* when the line was last drawn (or started) */
};
void tessera_progress_init(struct tessera_progress *p, int fd);
/* True when a new line is due (the caller prints it, no newline, to
 * the stream after this returns; "\r" is already written). */
bool tessera_progress_due(struct tessera_progress *p);
void tessera_progress_clear(struct tessera_progress *p);

#endif /* TOOLS_INTERNAL_H */
