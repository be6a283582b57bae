/*
 * meta.h - the file-system metadata layer of Tessera.
 *
 * A volume's metadata lives in an ordered transactional key-value engine
 * (meta/kv.h; lmdb:///dir is the embedded default) under the schema of
 * doc/DESIGN.md: attributes, directory entries with readdir cookies, chunk
 * slice lists, counters, usage.  Every operation here runs in one engine
 * transaction, so it is atomic and durable when it returns 0.
 *
 * Errors: 0 or a negative errno.  -ENOENT (no such name / inode gone),
 * -EEXIST, -ENOTDIR, -EISDIR, -ENOTEMPTY, -ENAMETOOLONG, -EINVAL, -EACCES
 * (permission bits), -EPERM (ownership rules), -ENOSPC (capacity or inode
 * limit), -EFBIG, -EMLINK, -EIO (engine failure), -TL_ENOTSYNC (SETATTR
 * guard mismatch; lib/tl.h), -EDQUOT (a directory quota, see quota.c
 * below), -EXDEV (only a rename of a big tree across quotas).
 *
 * Permissions are checked here, inside the transaction, against the
 * caller's credentials (already squashed by nfsd), like a local POSIX
 * file system: uid 0 bypasses read/write bits and needs one x bit to
 * execute/search; the sticky bit restricts removal and rename.
 */
#ifndef META_H
#define META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/tl.h"

#define META_ROOT_INO      1ULL
#define META_CHUNK_SIZE    (64ULL << 20) /* 64 MiB chunks */
#define META_NAME_MAX      255
#define META_PATH_MAX      4096
#define META_MAX_FILE_SIZE (1ULL << 50) /* 1 PiB: larger offsets -EFBIG */
#define META_NGROUPS_MAX   16
#define META_VOLNAME_MAX   63

/* File types.  The numbers are stored in inode records, directory
 * entries and the readdir index: part of the schema, never renumbered. */
enum meta_type {
	META_REG = 1,
	META_DIR = 2,
	META_BLK = 3,
	META_CHR = 4,
	META_LNK = 5,
	META_SOCK = 6,
	META_FIFO = 7,
};

struct meta_cred {
	uint32_t uid, gid;
	uint32_t ngroups;
	uint32_t groups[META_NGROUPS_MAX];
	/* The caller's operations that change the namespace or attributes
	 * (create, unlink, rmdir, link, rename, setattr) return once their
	 * commit is written, without waiting for the disk (the export
	 * option async; meta_kv_commit_lazy).  A later durable commit, or
	 * the next sync, makes them durable, in order. */
	bool async;
};

struct meta_attr {
	uint64_t ino;
	uint32_t gen;  /* generation, random at creation */
	uint8_t type;  /* enum meta_type */
	uint32_t mode; /* permission bits and suid/sgid/sticky (07777) */
	uint32_t nlink;
	uint32_t uid, gid;
	uint64_t size;    /* bytes; for symlinks the target length */
	uint64_t written; /* regular files: bytes of data stored, at most
				size rounded up to 4 KiB (holes are not
				stored): the figure behind st_blocks / du */
	uint32_t rdev_major, rdev_minor;
	uint64_t atime_ns, mtime_ns, ctime_ns;
	uint64_t parent; /* directory: its parent; others: last linked dir */
};

/* What an operation found before it changed an inode: its size and
 * times (clients compare them with what they cached). */
struct meta_pre_attr {
	uint64_t size;
	uint64_t mtime_ns, ctime_ns;
};

struct meta_settings {
	char name[META_VOLNAME_MAX + 1];
	uint8_t uuid[16];
	uint8_t secret[32];  /* per-volume MAC key for file handles */
	uint32_t block_size; /* bytes, power of two, 64 KiB .. 16 MiB */
	uint32_t trash_days;
	uint64_t capacity;   /* bytes, 0 = unlimited */
	uint64_t max_inodes; /* 0 = unlimited */
	uint64_t ctime_ns;   /* when formatted */
	char storage[1024];  /* object store URL */
};

struct meta_format_opts {
	const char *name;
	const char *storage;
	uint32_t block_size;
	uint32_t trash_days;
	uint64_t capacity;
	uint64_t max_inodes;
	bool force; /* replace an existing volume of that name */
};

struct meta;

/* Create a volume: settings, counters, the root directory (inode 1, mode
 * 0755, owned by root).  -EEXIST if a volume exists and !force (force
 * deletes its metadata first; its objects are the caller's business).
 * err (may be NULL) receives a message; caller frees.  A "volume=NAME"
 * option in url (below) must name o->name. */
int meta_format(const char *url, const struct meta_format_opts *o, char **err);

/* Open the volume at url.  The volume is named by volname or by a
 * "volume=NAME" option of the URL ("lmdb:///d?volume=v", combined with
 * the engine's own options as "?mapsize=1G&volume=v"), which must agree
 * when both are given; neither: the engine must hold exactly one volume
 * (-EINVAL with the names found when it holds several, -ENOENT when
 * none).  *err as above. */
int meta_open(const char *url, const char *volname, struct meta **out,
	      char **err);

/* Delete every key of m's volume, in transactions of 10,000 keys
 * (progress, may be NULL, after each with the keys deleted so far), its
 * registry entry last: an interrupted delete can be run again with the
 * volume still named.  m may only be closed afterwards. */
int meta_destroy(struct meta *m, void (*progress)(void *arg, uint64_t keys),
		 void *arg);

/* Flags of meta_open_flags. */
#define META_OPEN_RDONLY                                                       \
	0x1u /* create and write nothing (read-only
				 commands): a missing engine is -ENOENT,
				 any write -EROFS */
int meta_open_flags(const char *url, const char *volname, unsigned flags,
		    struct meta **out, char **err);
void meta_close(struct meta *m);
/* Borrowed until meta_close. */
const struct meta_settings *meta_settings(struct meta *m);
/* The volume's engine (meta/kv.h), for its own figures (metrics of a
 * raft:// node).  Borrowed until meta_close. */
struct meta_kv *meta_engine(struct meta *m);

/* The metadata transactions of this process (meta_txn_begin to its end),
 * by kind (0: read-only, 1: read-write): how many ended (committed or
 * not) and how long they took (lat[i]: at most meta_txn_bucket_s[i]
 * seconds and more than the bucket before; lat[META_TXN_BUCKETS]:
 * longer).
 * conflicts: commits that conflicted with another transaction (-EAGAIN,
 * raft:// only: LMDB serialises writers); retries: attempts made again
 * after one (a conflict that exhausted its retries is a failure). */
#define META_TXN_BUCKETS 12
extern const double meta_txn_bucket_s[META_TXN_BUCKETS];
struct meta_txn_stats {
	uint64_t count[2], lat_sum_ns[2];
	uint64_t lat[2][META_TXN_BUCKETS + 1];
	uint64_t conflicts, retries;
};
void meta_txn_stats(struct meta_txn_stats *out);

/* Usage for FSSTAT and `tessera status`. */
struct meta_usage {
	uint64_t used_bytes; /* sum of 4 KiB-rounded sizes of regular files */
	uint64_t used_inodes;
	uint64_t capacity;       /* 0 = unlimited */
	uint64_t max_inodes;     /* 0 = unlimited */
	uint64_t pending_delete; /* files and slices waiting for gc */
	/* Volume usage for reconciling bills (counters kept in the
	 * transactions that change them; `tessera fsck` recomputes them):
	 * logical_bytes: sizes of the regular files outside the trash,
	 *   exact (hard links count once);
	 * stored_bytes: bytes of every slice whose objects are in the
	 *   object store (referenced, in their grace period, or released
	 *   and not deleted yet): uncompressed slice lengths, so before
	 *   the zstd and crypt wrappers; inline slices (no object) not counted;
	 * trash_bytes: sizes of the regular files in the trash, exact;
	 * pending_bytes: released slices waiting for the deletion job
	 *   (R, by slice length) plus removed files whose keys wait to be
	 *   purged (D, by size; a file purged in several steps counts
	 *   its size less the bytes its purge released so far, never
	 *   below 0, so no byte counts twice), the same figures as
	 *   meta_backlog's slice_bytes + file_bytes. */
	uint64_t logical_bytes;
	uint64_t stored_bytes;
	uint64_t trash_bytes;
	uint64_t pending_bytes;
};
int meta_usage(struct meta *m, struct meta_usage *u);

/* The four byte counters above (logical, stored, trash, pending) of a
 * volume formatted before they existed count only the changes since;
 * a marker says they are exact (set at format, by fsck --repair when
 * it rewrites them, and by meta_usage_recount).  The gateway holding
 * the background-job lease recounts them once when the marker is
 * missing (recount.c): one snapshot read, paced through pace(arg, keys
 * read so far), called at the first key and every 4096 keys (false:
 * stop, -ECANCELED), then one write transaction that corrects each
 * counter by what the snapshot showed and sets the marker (-EALREADY,
 * nothing changed, if another gateway set it first). */
#define META_RECOUNT_N 4 /* logical, stored, trash, pending bytes */
struct meta_recount {
	uint64_t keys;                /* keys read */
	uint64_t was[META_RECOUNT_N]; /* the counters in the snapshot */
	uint64_t now[META_RECOUNT_N]; /* the figures counted there */
};
typedef bool (*meta_recount_pace)(void *arg, uint64_t keys);
int meta_usage_marked(struct meta *m, bool *valid);
int meta_usage_recount(struct meta *m, meta_recount_pace pace, void *arg,
		       struct meta_recount *out);

/* ---- billing (billing.c) ---------------------------------------------------
 *
 * Bytes read and written through NFS, per export (by its path), summed
 * over every gateway of the volume: each gateway adds its own counts
 * (meta_io_add, commutative: gateways never conflict), and the gateway
 * that writes the billing lines takes the sums since the last lines
 * (meta_billing_take: subtracted in the same transaction that records
 * the time of the lines, so a period is billed once). */
#define META_IO_PATH_MAX 1024
struct meta_io {
	char path[META_IO_PATH_MAX + 1]; /* the export's path */
	uint64_t read, written;          /* bytes */
};
/* Add v[0..n) (lazily committed: bookkeeping). */
int meta_io_add(struct meta *m, const struct meta_io *v, size_t n);
/* What no billing line has counted yet (*out caller-freed), and the
 * time of the last lines (0: never; may be NULL). */
int meta_io_list(struct meta *m, struct meta_io **out, size_t *n,
		 uint64_t *last_ns);
/* The lines of the period ending at now_ns: *out (caller frees) the
 * counts since the last lines, taken off the volume's records, and
 * *last_ns the end of the previous period (0: none), replaced by now_ns.
 * -EALREADY (nothing changed) when lines at or after now_ns exist. */
int meta_billing_take(struct meta *m, uint64_t now_ns, struct meta_io **out,
		      size_t *n, uint64_t *last_ns);

/* The background jobs' backlog (backlog.c): the queues read whole, in
 * one read transaction; the cost grows with the backlog, not with the
 * volume.  "Pending delete" is the one name of the deletion backlog in
 * `tessera status`, `tessera gc` and the metrics. */
struct meta_backlog {
	uint64_t items;       /* the pending-delete counter: files, slices
				 and slices in grace (meta_usage) */
	uint64_t files;       /* removed files whose data waits (D) */
	uint64_t file_bytes;  /* their sizes (less what a purge begun
				 released: meta_usage) */
	uint64_t slices;      /* released slices whose objects wait (R) */
	uint64_t slice_bytes; /* their stored sizes */
	uint64_t grace;       /* slices compaction dropped, in their grace
				 period (L) */
	uint64_t grace_bytes;
	uint64_t grace_oldest_ns; /* when the oldest was dropped; 0: none */
	uint64_t grace_ns;        /* the grace period of this volume */
	uint64_t trash_files;     /* files in the trash (usage of its hours) */
	uint64_t trash_bytes;     /* their sizes, 4 KiB-rounded */
};
int meta_backlog(struct meta *m, struct meta_backlog *b);

/* ---- the trash (trash.c) ---------------------------------------------------
 *
 * With trash_days > 0 (the volume's settings, read at each removal, so
 * `tessera config --trash-days` applies at once), a non-directory whose
 * last link goes (REMOVE, a RENAME over it) moves into
 * /.trash/<hour>/<parent>-<ino>-<name> in the same transaction instead
 * of being released: hour is the UTC hour of the removal
 * (YYYY-MM-DD-HH), parent the directory it was removed from, name its
 * name there (cut to fit 255 bytes), and its ctime the time of removal.
 * Directories are not trashed (their files are, as they are removed).
 * The trash is read-only (-EPERM for any create, remove, rename or link
 * in it, or a rename or removal of /.trash), visible to root only
 * (lookup and READDIR of the root hide it from everyone else), and what
 * it holds still counts in the volume's used bytes and inodes.  The
 * background job releases entries older than trash_days
 * (meta_trash_expire_due); a file whose inode is in the trash keeps its
 * handle valid.
 */
#define META_TRASH_NAME ".trash"

struct meta_trash_entry {
	const char *hour;      /* its hour directory, YYYY-MM-DD-HH */
	const char *name;      /* its name there */
	uint64_t from;         /* the directory it was removed from */
	const char *orig_name; /* its name there (NULL: unparsable) */
	struct meta_attr attr; /* ctime: when it was removed */
};
/* Called for each entry, oldest hour first; entry borrowed for the call.
 * Non-zero stops the listing (returned if negative). */
typedef int (*meta_trash_cb)(void *arg, const struct meta_trash_entry *e);
/* Entries removed at or after since_ns (0: all), in one read
 * transaction. */
int meta_trash_list(struct meta *m, uint64_t since_ns, meta_trash_cb cb,
		    void *arg);
/* Move entry hour/name back: into directory to under to_name, or, for
 * 0 and NULL, where it was removed from under its old name.  -EEXIST
 * when that name exists (never overwrites), -ESTALE when the directory
 * it came from is gone (give another), -ENOENT when there is no such
 * entry.  *dir (may be NULL) receives the directory it went to. */
int meta_trash_restore(struct meta *m, const char *hour, const char *name,
		       uint64_t to, const char *to_name, uint64_t *dir);
struct meta_trash_done {
	uint64_t files; /* entries released */
	uint64_t bytes; /* their sizes */
};
/* One transaction: release up to max entries removed before before_ns,
 * oldest first, and the hour directories left empty whose hour ended
 * before it; done (may be NULL) accumulates what went, *more says
 * whether entries are left to look at (call again). */
int meta_trash_expire(struct meta *m, uint64_t before_ns, size_t max,
		      struct meta_trash_done *done, bool *more);
/* meta_trash_expire of what is older than the retention (trash_days,
 * or the test override); with trash_days 0 everything in the trash. */
int meta_trash_expire_due(struct meta *m, size_t max,
			  struct meta_trash_done *done, bool *more);
/* Tests (test_trash_retention): entries are released this long after
 * their removal instead of trash_days (0: trash_days).  Does not turn
 * the trash on. */
void meta_set_trash_retention(struct meta *m, uint64_t ns);
/* `tessera config --trash-days`: store the volume's trash_days (applies
 * to the next removal, on every gateway). */
int meta_set_trash_days(struct meta *m, uint32_t days);
/* Name of the hour directory of time ns (buf of at least 32 bytes). */
void meta_trash_hour_name(uint64_t ns, char *buf, size_t len);

/* ---- permission helper (pure) -------------------------------------------- */

#define META_MAY_READ  4
#define META_MAY_WRITE 2
#define META_MAY_EXEC  1
/* Returns the subset of want (META_MAY_*) that cred may do on attr. */
unsigned meta_access(const struct meta_attr *a, const struct meta_cred *c,
		     unsigned want);

/* ---- attributes and names ------------------------------------------------ */

int meta_getattr(struct meta *m, uint64_t ino, struct meta_attr *out);

/* meta_getattr, but only for an inode that lies under directory root
 * (root itself included): -EXDEV (and *out untouched) for one outside.
 * A directory lies under root when root is one of its ancestors; a file
 * when the directory it was last linked into does, or, with several
 * links, any directory holding one of them (the first 256 are tried).
 * Answered from a cache of directories found under a root (in memory,
 * shared by all callers), which every change of a directory's parent
 * empties through a counter in the volume's metadata, also when the
 * change came from another gateway: a check costs one more get and a
 * cache lookup.  root META_ROOT_INO is meta_getattr. */
int meta_getattr_under(struct meta *m, uint64_t root, uint64_t ino,
		       struct meta_attr *out);

/* Look up name in dir (needs search permission on dir).  "." is dir, ".."
 * its parent (the root's parent is the root). */
int meta_lookup(struct meta *m, const struct meta_cred *c, uint64_t dir,
		const char *name, uint64_t *ino, struct meta_attr *attr);

/* Resolve an absolute path in the volume ("/", "/a/b") as root. */
int meta_resolve(struct meta *m, const char *path, uint64_t *ino);

int meta_readlink(struct meta *m, uint64_t ino,
		  char **target); /* caller frees */

#define META_SET_MODE      (1u << 0)
#define META_SET_UID       (1u << 1)
#define META_SET_GID       (1u << 2)
#define META_SET_SIZE      (1u << 3)
#define META_SET_ATIME     (1u << 4) /* to atime_ns */
#define META_SET_ATIME_NOW (1u << 5)
#define META_SET_MTIME     (1u << 6)
#define META_SET_MTIME_NOW (1u << 7)
#define META_SET_GUARD     (1u << 8) /* fail -TL_ENOTSYNC unless ctime matches */
/* What a WRITE by the caller does to the mode (Linux file_remove_privs):
 * see meta_kills_privs.  Needs what a write needs, ownership or write
 * permission; changes nothing (not even ctime) when there is nothing to
 * clear. */
#define META_SET_KILLPRIV (1u << 9)

/* The set-id bits a write or truncation by c clears from a regular file:
 * set-user-ID, and set-group-ID when group-execute is set (without it
 * the bit marks mandatory locking, not privilege).  Root (CAP_FSETID)
 * clears nothing.  0 when there is nothing to clear, which is what every
 * ordinary write sees: callers test this before paying for a
 * transaction. */
static inline uint32_t
meta_kills_privs(const struct meta_attr *a, const struct meta_cred *c)
{
	uint32_t kill = 0;

	if (c->uid == 0 || a->type != META_REG)
		return 0;
	if (a->mode & 04000)
		kill |= 04000;
	if ((a->mode & 02010) == 02010)
		kill |= 02000;
	return kill;
}

struct meta_setattr {
	uint32_t valid;
	uint32_t mode, uid, gid;
	uint64_t size;
	uint64_t atime_ns, mtime_ns;
	uint64_t guard_ctime_ns;
};

/* Apply s to ino.  Size changes truncate or extend (a shrink releases the
 * chunks past the end; data past the new end reads as zeros if the file is
 * extended again).  pre/post may be NULL.
 *
 * The rules are Linux's (setattr_prepare, chown_ok, chgrp_ok): only root
 * sets uid, even to its current value, but the owner may "set" its own
 * uid; the group is set by root, or by the owner to its current group or
 * one of the caller's groups (-EPERM otherwise); mode and explicit times
 * by the owner; size and times "now" by the owner or a writer.  A size
 * change by anyone but root drops set-id bits as a write does
 * (meta_kills_privs); a change of owner or group drops them for every
 * caller, root included (chown(2)). */
int meta_setattr(struct meta *m, const struct meta_cred *c, uint64_t ino,
		 const struct meta_setattr *s, struct meta_pre_attr *pre,
		 struct meta_attr *post);

/* ---- creating and removing ----------------------------------------------- */

enum meta_create_how {
	META_GUARDED = 0,   /* -EEXIST if the name exists */
	META_UNCHECKED = 1, /* an existing regular file is returned as is */
	META_EXCLUSIVE = 2, /* verifier stored; same verifier -> success */
};

struct meta_new {
	uint8_t type;      /* enum meta_type */
	uint32_t mode;     /* 07777 bits (no umask applied here) */
	uint32_t uid, gid; /* owner; gid is replaced by the directory's
				   when the directory has S_ISGID */
	uint32_t rdev_major, rdev_minor;
	const char *target; /* META_LNK: the symlink target */
	enum meta_create_how how;
	uint8_t verf[8]; /* META_EXCLUSIVE */
};

/* Create name in dir.  On success *ino and *attr describe the new (or, for
 * UNCHECKED/EXCLUSIVE retransmit, existing) inode and *existed tells
 * which.  dir_pre/dir_post (may be NULL) receive the directory's attributes
 * before and after. */
int meta_create(struct meta *m, const struct meta_cred *c, uint64_t dir,
		const char *name, const struct meta_new *n, uint64_t *ino,
		struct meta_attr *attr, bool *existed,
		struct meta_pre_attr *dir_pre, struct meta_attr *dir_post);

/* Remove a non-directory name (-EISDIR for a directory).  When the last
 * link goes the inode's data is queued for deletion (see meta_gc_*). */
int meta_unlink(struct meta *m, const struct meta_cred *c, uint64_t dir,
		const char *name, struct meta_pre_attr *dir_pre,
		struct meta_attr *dir_post);

/* Remove an empty directory: -ENOTDIR, -ENOTEMPTY, -EINVAL for ".",
 * -ENOTEMPTY for "..". */
int meta_rmdir(struct meta *m, const struct meta_cred *c, uint64_t dir,
	       const char *name, struct meta_pre_attr *dir_pre,
	       struct meta_attr *dir_post);

/* Rename with POSIX semantics: replaces a file or an empty directory,
 * -EINVAL when moving a directory into its own subtree, -ENOTDIR /
 * -EISDIR / -ENOTEMPTY / -EEXIST as rename(2).  Same name = no-op. */
int meta_rename(struct meta *m, const struct meta_cred *c, uint64_t sdir,
		const char *sname, uint64_t ddir, const char *dname,
		struct meta_pre_attr *spre, struct meta_attr *spost,
		struct meta_pre_attr *dpre, struct meta_attr *dpost);

/* Hard link ino as dir/name; -EISDIR... (directories cannot be linked:
 * -EPERM like Linux), -EMLINK past 65000 links. */
int meta_link(struct meta *m, const struct meta_cred *c, uint64_t ino,
	      uint64_t dir, const char *name, struct meta_attr *attr,
	      struct meta_pre_attr *dir_pre, struct meta_attr *dir_post);

/* ---- readdir --------------------------------------------------------------
 *
 * Every entry gets a cookie when it is linked (a per-directory counter);
 * cookies 1 and 2 are reserved for "." and "..", which the caller
 * synthesises, so entries start at 3.  meta_readdir scans entries with
 * cookie > after in cookie order with one ordered scan and no state kept
 * between calls.  cb returns non-zero to stop (reply full); *eof is true
 * when the scan reached the end of the directory.  attr is NULL unless
 * plus; name and attr are borrowed for the call.
 */
typedef int (*meta_readdir_cb)(void *arg, const char *name, size_t namelen,
			       uint64_t ino, uint64_t cookie,
			       const struct meta_attr *attr);
int meta_readdir(struct meta *m, const struct meta_cred *c, uint64_t dir,
		 uint64_t after, bool plus, meta_readdir_cb cb, void *arg,
		 bool *eof);

/* ---- file data: chunks and slices ---------------------------------------- */

/* One slice record of a chunk: bytes [off, off+len) of slice id (whose
 * stored size is size) appear at position pos of the chunk.  id 0 is a
 * hole (reads as zeros), written by truncate. */
struct meta_slice {
	uint64_t id;
	uint32_t size;
	uint32_t off;
	uint32_t len;
	uint32_t pos;
};

/* The chunk's slice records that overlap [from, to) (offsets in the
 * chunk), in write order (later ones win): what a read of that range
 * needs.  *out is NULL and *n 0 when there are none.  Caller frees *out.
 *
 * Compaction: a write whose chunk has as many records out of position
 * order as in order (and at least COMPACT_TAIL) rewrites the list as
 * what a reader sees, in position order, so a chunk written over and over
 * keeps a bounded list.  Slices no record names any more are released
 * after a grace period (meta_set_compact_grace), so reads that planned
 * with the old list still find their objects. */
int meta_read_chunk(struct meta *m, uint64_t ino, uint32_t chunk, uint32_t from,
		    uint32_t to, struct meta_slice **out, size_t *n);

/* Data compaction: replace the records of a chunk, read (whole, with
 * meta_read_chunk) as old[0..n), by nw[0..nn), records showing the same
 * visible bytes: of fresh slices, already stored, or of old slices kept.
 * -EAGAIN (nothing changed) when the chunk was written, truncated or
 * compacted since; -ENOENT when the file is gone.  The old slices nw no
 * longer names are released after the grace period, like those
 * compaction of the list drops.  mtime and
 * ctime do not change: the file's contents did not. */
int meta_rewrite_chunk(struct meta *m, uint64_t ino, uint32_t chunk,
		       const struct meta_slice *old, size_t n,
		       const struct meta_slice *nw, size_t nn);

/* Allocate a fresh slice id (never reused; allocated in batches). */
int meta_new_slice_id(struct meta *m, uint64_t *id);

struct meta_slice_write {
	uint32_t chunk;
	struct meta_slice s;
};

/* Append n slice records (already stored in the object store) to ino in
 * one transaction: size = max(size, end of the last byte written), mtime
 * and ctime = mtime_ns, usage counters updated; -ENOSPC past capacity,
 * -ENOENT if the inode is gone (the caller then releases the slices with
 * meta_gc_release).  post may be NULL.  records, when not NULL, has room
 * for n: records[i] receives how many records w[i].chunk holds after the
 * write (after compaction of its list, if it ran): what triggers data
 * compaction (cache/compact.c). */
int meta_write_slices(struct meta *m, uint64_t ino,
		      const struct meta_slice_write *w, size_t n,
		      uint64_t mtime_ns, struct meta_attr *post,
		      uint32_t *records);

/* ---- inline data ------------------------------------------------------------
 *
 * A small file's bytes may live in metadata instead of the object store:
 * an inline slice is a slice like any other (its records, reference
 * count, release and compaction are a slice's), whose id carries
 * META_SLICE_INLINE and whose bytes are the value of one key,
 * <vol>\0I<id><size>, written in the same transaction as its records and
 * deleted in the transaction that releases it (no R record: there is no
 * object to delete).  Its size is at most META_INLINE_MAX. */
#define META_SLICE_INLINE ((uint64_t)1 << 63)
#define META_INLINE_MAX   (1u << 20)

static inline bool
meta_slice_inline(uint64_t id)
{
	return (id & META_SLICE_INLINE) != 0;
}

/* meta_write_slices, with the bytes of the inline slice id (META_SLICE_
 * INLINE set; the records w name it, with size len) stored in the same
 * transaction: durable together, with no object.  data is borrowed for
 * the call.  -EINVAL for an id without the flag or len 0 or past
 * META_INLINE_MAX. */
int meta_write_inline(struct meta *m, uint64_t ino,
		      const struct meta_slice_write *w, size_t n, uint64_t id,
		      const void *data, uint32_t len, uint64_t mtime_ns,
		      struct meta_attr *post, uint32_t *records);
/* Whether inline data may still grow the metadata: false once an LMDB
 * engine's map is half used (pages ever used, free ones included), so
 * the other half stays for the metadata proper (a full map refuses
 * every operation).  Other engines: true. */
bool meta_inline_room(struct meta *m);
/* Bytes [off, off + n) of inline slice id (of size bytes) into buf:
 * -ENOENT when it is gone (released since the read planned), -EIO when
 * the stored value is not size bytes long. */
int meta_inline_read(struct meta *m, uint64_t id, uint32_t size, uint32_t off,
		     uint32_t n, void *buf);

/* ---- deletion of data ------------------------------------------------------
 *
 * Removed files (nlink 0) and truncated chunks leave slices whose
 * reference count dropped to zero.  meta_gc_next purges a bounded amount
 * of deleted inodes (keys), releases slices compaction dropped longer
 * than the grace period ago, and returns up to max released slices; the
 * caller deletes their objects, then calls meta_gc_release to forget them.
 * Both are safe to call from one background thread while the volume is in
 * use.
 */
struct meta_slice_ref {
	uint64_t id;
	uint32_t size;
};
int meta_gc_next(struct meta *m, struct meta_slice_ref *out, size_t max,
		 size_t *n);
int meta_gc_release(struct meta *m, const struct meta_slice_ref *r, size_t n);
/* How long slices dropped by compaction wait before meta_gc_next releases
 * them: five minutes (reads that planned with the old records finish
 * within it; the trash has nothing to do with it).  Tests set
 * 0. */
void meta_set_compact_grace(struct meta *m, uint64_t ns);

/* ---- directory quotas (quota.c) -------------------------------------------
 *
 * A quota limits the bytes and inodes of the tree below a directory (the
 * directory itself counts in its parent's).  Bytes are the sizes of the
 * regular files rounded up to 4 KiB, holes included: a sparse file counts
 * by its size.  A file with several links counts once, in the directory
 * it was last linked into.  CREATE, MKDIR, SYMLINK, MKNOD, LINK, RENAME
 * and a SETATTR that grows a file fail with -EDQUOT, changing nothing,
 * when they would take any quota above them past a limit; a WRITE is
 * checked when it arrives (meta_quota_write_room).  Usage is kept with
 * commutative adds at every change, so reading it costs one get.
 */
#define META_QUOTA_MOVE_MAX                                                    \
	100000 /* entries a directory rename across
				      quotas may carry; more: -EXDEV */
struct meta_quota {
	uint64_t ino;
	uint64_t max_bytes, max_inodes;   /* 0: no limit */
	uint64_t used_bytes, used_inodes; /* as recorded */
	/* The billing figures of the tree (quota.c): logical bytes (exact
	 * sizes of the files its usage counts, none in the trash) and trash
	 * bytes (sizes of the files in the trash removed from under it).
	 * !has_figures: a quota from before they were kept, both 0 until
	 * meta_quota_check repairs it. */
	bool has_figures;
	uint64_t logical_bytes, trash_bytes;
};

/* Set the limits of directory q->ino (q->used_* ignored).  A new quota
 * counts its tree's usage from the inodes in the same transaction
 * (progress, may be NULL, every few thousand entries); an existing one
 * keeps its usage.  *out: the quota as set.  -ENOTDIR, -ENOENT, -EMLINK
 * (64 quotas nested). */
int meta_quota_set(struct meta *m, const struct meta_quota *q,
		   void (*progress)(void *arg, uint64_t entries), void *arg,
		   struct meta_quota *out);
/* -ENOENT when ino has no quota. */
int meta_quota_get(struct meta *m, uint64_t ino, struct meta_quota *q);
int meta_quota_delete(struct meta *m, uint64_t ino);
/* Each quota of the volume in inode order; q is borrowed for the call;
 * non-zero from cb stops (returned when negative). */
typedef int (*meta_quota_cb)(void *arg, const struct meta_quota *q);
int meta_quota_list(struct meta *m, meta_quota_cb cb, void *arg);
/* The directories that carry a quota, in inode order: *inos (caller
 * frees; NULL when none), *n. */
int meta_quota_inos(struct meta *m, uint64_t **inos, size_t *n);

struct meta_quota_fix {
	struct meta_quota q;                   /* as recorded before */
	uint64_t actual_bytes, actual_inodes;  /* counted from the inodes */
	uint64_t actual_logical, actual_trash; /* and the T records */
	uint64_t entries;                      /* entries looked at */
	bool drift;                            /* recorded != counted */
	bool repaired;                         /* and the record rewritten */
};
/* Count the usage and figures of ino's tree from its inodes (and the
 * trash's records of where files came from), in one transaction (a
 * write transaction with repair, which then rewrites what drifted, and
 * starts keeping the figures of a quota that kept none).  -ENOENT when
 * ino has no quota. */
int meta_quota_check(struct meta *m, uint64_t ino, bool repair,
		     void (*progress)(void *arg, uint64_t entries), void *arg,
		     struct meta_quota_fix *fix);
/* The absolute path of ino in the volume ("/" for the root) into buf
 * (len bytes): through its parent pointers, scanning each parent's
 * entries for its name (for listings, not for hot paths).  A file with
 * several links gets the one in its parent.  -ENOENT when it has none,
 * -ENAMETOOLONG when buf is too small. */
int meta_path(struct meta *m, uint64_t ino, char *buf, size_t len);
/* Whether a WRITE up to byte end of file ino fits the quotas above it,
 * against the usage committed so far: 0 or -EDQUOT.  Without quotas on
 * the volume, one read. */
int meta_quota_write_room(struct meta *m, uint64_t ino, uint64_t end);

/* ---- usage and storage of one inode (usage.c) -------------------------- */

/* A directory's own usage record: the inodes whose parent it is and
 * the 4 KiB-rounded bytes of the regular files among them (not of the
 * tree below: sum it over the subdirectories, as `tessera summary`
 * does).  One get.  -ENOTDIR. */
int meta_dir_usage(struct meta *m, uint64_t dir, uint64_t *bytes,
		   uint64_t *inodes);

struct meta_subdir {
	uint64_t ino;
	uint64_t cookie; /* readdir cookie: resume after it */
	char name[META_NAME_MAX + 1];
};
/* Up to max subdirectories of dir whose cookie is above after, in
 * cookie order, in one read transaction (a scan of the readdir index,
 * which carries types: no inode is read); *eof when the directory has
 * no more.  Memory: out. */
int meta_subdirs(struct meta *m, uint64_t dir, uint64_t after,
		 struct meta_subdir *out, size_t max, size_t *n, bool *eof);

/* Each chunk of file ino that has records, in chunk order: its index
 * and its slice records in write order (borrowed for the call; id 0 is
 * a hole).  Non-zero from cb stops (returned when negative). */
typedef int (*meta_chunk_cb)(void *arg, uint32_t chunk,
			     const struct meta_slice *s, size_t n);
int meta_file_chunks(struct meta *m, uint64_t ino, meta_chunk_cb cb, void *arg);

/* ---- consistency check (fsck.c) -------------------------------------------
 *
 * meta_fsck reads the whole volume in one read transaction and checks the
 * invariants the operations above keep: every dentry names a live inode of
 * its type, link counts (directories: 2 + subdirectories), the readdir
 * index, directory usage and volume counters, slice reference counts, the
 * pending-deletion records, and (through opts->slice_check, so meta never
 * knows the object store) that every referenced slice's blocks exist.
 * Memory grows with the number of inodes and slices.  Then each quota's
 * usage and billing figures are counted again (meta_quota_check, a
 * transaction per quota, repairing with opts->repair: found and
 * repaired count them under META_FSCK_USAGE).
 *
 * With opts->repair it then fixes, in one write transaction, what follows
 * from the metadata itself without guessing: counters (nlink, parent,
 * usage, volume, refcounts), dentries naming missing inodes, dentry types,
 * the readdir index, and pending-deletion records of live data.  It never
 * invents data: orphan inodes, leaked slices and missing blocks are only
 * reported.  Repair with no gateway running on the volume (see
 * gateways_ok).
 */
enum meta_fsck_cat {
	META_FSCK_BAD_RECORD, /* undecodable key or value */
	META_FSCK_DANGLING,   /* dentry naming a missing inode */
	META_FSCK_TYPE,       /* dentry type differs from the inode's */
	META_FSCK_NLINK,      /* nlink differs from the dentries counted */
	META_FSCK_ORPHAN,     /* inode no dentry names (not the root) */
	META_FSCK_PARENT,     /* parent pointer names no directory of it */
	META_FSCK_INDEX,      /* readdir index O<cookie> vs dentries */
	META_FSCK_USAGE,      /* directory usage U<dir> */
	META_FSCK_COUNTERS,   /* volume used bytes / inodes / pending */
	META_FSCK_REFCOUNT,   /* K<slice> vs references in chunks */
	META_FSCK_PENDING,    /* deletion records of live data */
	META_FSCK_LEAK,       /* data of no inode, slices of nothing */
	META_FSCK_BLOCKS,     /* blocks missing or of the wrong size */
	META_FSCK_NCAT
};

struct meta_fsck_opts {
	bool repair;
	/* Check the blocks of slice id (stored size bytes); return the
	 * number of blocks missing or of the wrong size (>= 0), or a
	 * negative errno to stop the check.  NULL: objects not checked. */
	int (*slice_check)(void *arg, uint64_t id, uint32_t size);
	/* One problem in plain language (borrowed for the call); at most
	 * 20 per category, the counts say how many in all.  May be NULL. */
	void (*problem)(void *arg, enum meta_fsck_cat cat, const char *msg);
	/* Called every few thousand items: phase name and items done. */
	void (*progress)(void *arg, const char *phase, uint64_t done);
	void *arg;
	/* Repair even if a gateway serves the volume (--force).  Otherwise
	 * the repair is refused (-EBUSY, nothing written) when a gateway
	 * session is live when it would write, or one started since the
	 * check began. */
	bool gateways_ok;
};

struct meta_fsck_report {
	uint64_t found[META_FSCK_NCAT];
	uint64_t repaired[META_FSCK_NCAT];
	uint64_t inodes, dirs, dentries, slices, chunks;
	uint64_t problems; /* sum of found[] */
};

/* Returns 0 when the check ran (problems or not: see r), or a negative
 * errno when it could not (engine error, slice_check error). */
int meta_fsck(struct meta *m, const struct meta_fsck_opts *o,
	      struct meta_fsck_report *r);
/* "dangling dentries" ... (static string). */
const char *meta_fsck_cat_name(enum meta_fsck_cat c);

/* ---- whole-volume slice scans (scan.c), for `tessera gc` ---------------- */

/* Distinct slice ids in ascending order; 8 bytes per id. */
struct meta_slice_set {
	uint64_t *ids; /* owned: meta_slice_set_free */
	size_t n;
};

/* What metadata says of the volume's slices, each a set of distinct
 * ids: live (a chunk record of a file that exists names it, outside the
 * trash), trash (a chunk record of a file in the trash names it: it is
 * kept until the file expires or is purged), removed (a
 * chunk record of a removed file whose records are not purged yet:
 * pending deletion), grace (compaction dropped it less than the grace
 * period ago: an L record), queued (released, its objects wait for the
 * deletion job: an R record).  A slice may be in several. */
struct meta_slice_sets {
	struct meta_slice_set live, removed, grace, queued, trash;
};
/* Fill *s in one read transaction; progress (may be NULL) is called
 * every few thousand chunks.  Memory: 8 bytes per distinct slice and
 * set, plus the slices of one file.  On error the sets are empty. */
int meta_scan_slices(struct meta *m, struct meta_slice_sets *s,
		     void (*progress)(void *arg, uint64_t chunks), void *arg);
void meta_slice_sets_free(struct meta_slice_sets *s);
bool meta_slice_set_has(const struct meta_slice_set *s, uint64_t id);
void meta_slice_set_free(struct meta_slice_set *s);

/* Up to max slices that chunk records reference (not holes), from the
 * first inodes that have any, in one read transaction: what `tessera`
 * and tesserad read back to tell that an object store holds this
 * volume's data.  *n 0: the first million inodes reference no slice.
 * Cost: two seeks per inode looked at. */
int meta_sample_slices(struct meta *m, struct meta_slice_ref *out, size_t max,
		       size_t *n);

/* The slice-id counter: every id handed out so far (by any gateway,
 * batches included) is below *next. */
int meta_slice_counter(struct meta *m, uint64_t *next);

/* Replace the object store URL of the volume's settings (`tessera config
 * --storage`); takes effect when a gateway next opens the volume. */
int meta_set_storage(struct meta *m, const char *url);

/* ---- gateway sessions (session.c) -----------------------------------------
 *
 * A gateway serving a volume records a session under G<id> (doc/DESIGN.md,
 * "Schema"): a random 64-bit id chosen at start, its host, listen address,
 * pid, version, start time and last heartbeat (wall clock, ns since the
 * epoch), a heartbeat count and the ttl it promises.  A thread renews
 * the heartbeat every ttl/6 with one small transaction (committed
 * lazily: a heartbeat lost to a crash costs nothing), and
 * meta_session_stop removes the record on a clean shutdown.  A session
 * whose heartbeat is older than its ttl is stale (its gateway was killed,
 * or has stalled that long); a gateway that starts removes stale
 * sessions.  Commands that must not run beside a gateway (fsck --repair,
 * destroy) refuse while a live session exists.  Staleness compares the
 * writer's wall clock with the reader's: the clocks of the machines
 * involved must agree within a small part of the ttl (NTP).  A reader
 * that cannot trust clocks can watch seq instead: unchanged for ttl
 * seconds of its own means the gateway stopped renewing.
 *
 * The background-job lease (below) builds on these records: it names a
 * session id, and a lease whose holder's session is stale or gone is
 * taken over.
 */
#define META_SESSION_STR         64
#define META_SESSION_TTL_MIN     3 /* seconds */
#define META_SESSION_TTL_DEFAULT 60

struct meta_session {
	uint64_t id;
	uint64_t start_ns;     /* when the gateway started serving */
	uint64_t heartbeat_ns; /* last renewal */
	uint64_t seq;          /* renewals so far */
	uint32_t ttl_s;        /* stale when the heartbeat is older */
	uint32_t pid;
	char host[META_SESSION_STR];    /* gethostname() */
	char addr[META_SESSION_STR];    /* NFS listen address, ADDR:PORT */
	char version[META_SESSION_STR]; /* tesserad's PACKAGE_VERSION */
	uint32_t compact_queued;        /* chunks queued for compaction there */
};

/* Whether s renewed its heartbeat within its ttl, at now_ns. */
bool meta_session_live(const struct meta_session *s, uint64_t now_ns);

/* Called for each session in id order; s is borrowed for the call.
 * Non-zero stops the listing (returned if negative). */
typedef int (*meta_session_cb)(void *arg, const struct meta_session *s);
/* Every session record of the volume, live or stale.  Read-only. */
int meta_session_list(struct meta *m, meta_session_cb cb, void *arg);

/* The session counter: bumped by every session start, so that a
 * command can tell whether a gateway started since it read it. */
int meta_session_epoch(struct meta *m, uint64_t *epoch);

struct meta_session_keeper;
/* Record this process's session (addr: the NFS listen address; ttl_s at
 * least META_SESSION_TTL_MIN), removing stale sessions of the volume,
 * and start the heartbeat thread.  meta_session_stop stops it and
 * removes the record; m must outlive the keeper. */
int meta_session_start(struct meta *m, const char *addr, const char *version,
		       uint32_t ttl_s, struct meta_session_keeper **out);
void meta_session_stop(struct meta_session_keeper *k);
uint64_t meta_session_id(const struct meta_session_keeper *k);

/* The background-job lease (record B): deletion of released data, trash
 * expiry, compaction and the slice grace period run on one gateway of a
 * volume, the one whose session the lease names.  A keeper that wants
 * it takes it, in a heartbeat's transaction, when no lease is recorded
 * or its holder's session is gone or stale; it keeps it as long as its
 * own session lives, and meta_session_stop gives it up.  So a killed
 * holder is replaced after its session ttl (and at most a heartbeat
 * period more), a stopped one at the next heartbeat of another. */
struct meta_lease {
	uint64_t holder;   /* session id */
	uint64_t since_ns; /* when it took the lease (wall clock) */
};
/* Ask for the lease (or give up wanting it: it is then released at the
 * keeper's stop, or taken by another when this session goes); a
 * heartbeat follows at once. */
void meta_session_want_lease(struct meta_session_keeper *k, bool want);
/* Whether this gateway may run the background jobs now: it wants the
 * lease and its last heartbeat that committed, less than half the ttl
 * ago, found it holding the lease. */
bool meta_session_lease_held(struct meta_session_keeper *k);
/* Before each heartbeat, probe(arg, s) fills in what the record carries
 * of the gateway's jobs (compact_queued); probe must not block.  NULL:
 * nothing (zero). */
void meta_session_set_probe(struct meta_session_keeper *k,
			    void (*probe)(void *arg, struct meta_session *s),
			    void *arg);
/* The lease record: 0, or -ENOENT when no gateway holds it. */
int meta_lease_get(struct meta *m, struct meta_lease *l);

/* ---- the stall alarm of the background jobs (bgwatch.c) ----------------
 *
 * The backlog the jobs can work on now (meta_bgjob_backlog: removed files
 * not purged, released slices, compacted slices past their grace, trash
 * files past their retention by whole hours) is sampled by every gateway
 * once per lease period (its session_timeout) and recorded in the volume
 * (<vol>\0W), with the time of the last sample at which it was zero or
 * had shrunk.  The jobs are stalled when the backlog is above zero and
 * has not shrunk for META_STALL_PERIODS lease periods; the reason is
 * that no gateway with a live session holds the lease (every gateway
 * runs with --no-bgjob, or none runs), or that the holder makes no
 * progress (deletes failing, a job stuck). */
#define META_STALL_PERIODS 3
struct meta_bgwatch {
	uint64_t sample_ns;   /* the last sample (wall clock) */
	uint64_t backlog;     /* items then */
	uint64_t progress_ns; /* last sample at which it was 0 or lower */
	uint64_t period_ns;   /* the lease period of the sampling gateway */
};
enum meta_stall_reason {
	META_STALL_NONE,
	META_STALL_NO_HOLDER, /* no live gateway holds the lease */
	META_STALL_HOLDER,    /* the holder does not shrink the backlog */
};
struct meta_stall {
	bool sampled; /* a sample exists (w is valid) */
	struct meta_bgwatch w;
	bool holder_live; /* a gateway with a live session holds it */
	uint64_t now_ns;
	uint64_t flat_ns; /* how long the backlog has not shrunk */
	enum meta_stall_reason reason;
};
/* Items of the backlog the jobs can work on now (one read transaction). */
int meta_bgjob_backlog(struct meta *m, uint64_t *items);
/* Sample the backlog and record it, unless another gateway did less than
 * half of period_ns ago (tesserad's heartbeat thread, once a period). */
int meta_bgwatch_sample(struct meta *m, uint64_t period_ns);
/* The alarm as the record and the lease say now (reads only). */
int meta_bgjob_stall(struct meta *m, struct meta_stall *st);

/* ---- NFS locks (lock.c) ---------------------------------------------------
 *
 * The byte-range locks and share reservations NFS clients take through
 * NLM (nfsd/nlm*.c), kept in the volume's metadata: every gateway of the
 * volume sees the same locks, so a lock taken through one gateway
 * conflicts with a lock taken through another, and locks outlive a
 * gateway's restart or failover.  Each call is one transaction (retried
 * on conflicts like every call of this layer), so two gateways racing
 * for one range cannot both win.
 *
 * An owner is the client (NLM's caller_name), the svid and the owner
 * handle: ranges of one owner never conflict with each other, a new lock
 * replaces what the owner held in its range (POSIX: upgrade, downgrade,
 * split), and ranges of equal kind that touch merge.  Ranges are
 * [start, end) with end META_LOCK_EOF meaning "to the end of the file,
 * however long it grows".  Shared ranges conflict with exclusive ones of
 * other owners; share reservations (SHARE, an owner is client and
 * handle) conflict when one's access meets the other's deny mode.
 *
 * Recovery.  A client has a record saying which gateway session serves
 * it, its addresses and its NSM state.  When that gateway is gone (a
 * restart, a failover), another one adopts the client (meta_lock_adopt):
 * a new recovery epoch begins and the client is in grace until a given
 * time.  Its ranges from before the epoch are "unreclaimed": they still
 * conflict (other owners are told to wait, holder.recovering), and a
 * lock request with reclaim set renews them.  When the grace ends
 * (meta_lock_recover), or earlier once nothing is left to reclaim, the
 * unreclaimed ranges are dropped if the client was told to reclaim
 * (meta_lock_notified), and kept otherwise: a client that could not be
 * told still believes it holds them.
 *
 * Bounds: a request that would make its client hold more than
 * max_client ranges and shares, or the volume more than max_total, gets
 * -ENOLCK (the totals are read without taking part in conflict
 * detection, so concurrent requests on several gateways may pass a
 * bound by as many as run at once).
 */
#define META_LOCK_STR_MAX                                                      \
	1024                  /* client name, owner handle: NLM's
				  LM_MAXSTRLEN and MAXNETOBJ_SZ */
#define META_LOCK_ADDR_MAX 64 /* an address as text */
#define META_LOCK_EOF      UINT64_MAX

struct meta_lock_owner {
	const char *client; /* NLM caller_name, client_len bytes */
	size_t client_len;
	uint32_t svid;  /* byte-range locks only */
	const void *oh; /* owner handle, oh_len bytes */
	size_t oh_len;
};

/* Where a client was seen, recorded with its locks: for the callbacks
 * that grant blocked locks and for the notification after a restart. */
struct meta_lock_where {
	const char *addr;  /* the client's address, as text */
	const char *local; /* the gateway's address the client reached */
	uint64_t session;  /* the gateway session serving the client */
	int32_t state;     /* the client's NSM state */
};

struct meta_lock_req {
	struct meta_lock_owner owner;
	uint64_t start, end; /* byte-range locks: [start, end) */
	bool exclusive;
	bool reclaim;          /* renews an unreclaimed lock (and takes it
				  like any other request otherwise) */
	uint32_t mode, access; /* shares: deny mode and access, bits
				  1 read, 2 write */
	const struct meta_lock_where *where; /* NULL: record unchanged */
	uint64_t max_client;                 /* bounds, 0: none */
	uint64_t max_total;
};

/* What keeps a request from being granted. */
struct meta_lock_holder {
	bool exclusive;
	bool share;      /* a share reservation (mode, access) */
	bool recovering; /* unreclaimed, its client in grace */
	uint32_t svid;
	uint64_t start, end;
	uint32_t mode, access;
	size_t oh_len;
	uint8_t oh[META_LOCK_STR_MAX];
};

struct meta_lock_result {
	struct meta_lock_holder holder; /* -EBUSY: the first conflict */
	bool released; /* some range was released or downgraded: others'
			  blocked requests may now succeed */
	bool had;      /* the owner held the whole range already, as asked
			  (a retransmission, or a blocked request that was
			  granted meanwhile) */
};

/* Lock r's range of ino for r's owner.  0: granted; -EBUSY: another
 * owner's range conflicts (res->holder); -ENOLCK: a bound; -EINVAL:
 * empty range; -EIO etc. */
int meta_lock(struct meta *m, uint64_t ino, const struct meta_lock_req *r,
	      struct meta_lock_result *res);
/* Whether r's range (r->exclusive) could be locked by r's owner: 0 or
 * -EBUSY with res->holder.  Read-only; where and bounds are ignored. */
int meta_lock_test(struct meta *m, uint64_t ino, const struct meta_lock_req *r,
		   struct meta_lock_result *res);
/* Release [start, end) of what o holds on ino; 0 also when it held
 * nothing there (res->released says whether it did). */
int meta_unlock(struct meta *m, uint64_t ino, const struct meta_lock_owner *o,
		uint64_t start, uint64_t end, struct meta_lock_result *res);
/* Share reservations: r->mode and r->access (svid ignored).  A new
 * share of the same owner replaces the old one.  -EBUSY on conflict. */
int meta_share(struct meta *m, uint64_t ino, const struct meta_lock_req *r,
	       struct meta_lock_result *res);
int meta_unshare(struct meta *m, uint64_t ino, const struct meta_lock_owner *o,
		 struct meta_lock_result *res);

/* Called for each inode where a client-wide call released something. */
typedef void (*meta_lock_released_cb)(void *arg, uint64_t ino);
/* Drop the locks and shares of a client (NLM FREE_ALL, or its NSM
 * reporting a restart): those taken under an NSM state other than
 * keep_state, or all of them when keep_state < 0.  In transactions of
 * a few hundred records; *n (may be NULL) counts the records dropped. */
int meta_lock_drop(struct meta *m, const char *client, size_t len,
		   int64_t keep_state, meta_lock_released_cb cb, void *arg,
		   uint64_t *n);

/* A client as recorded. */
struct meta_lock_client {
	char name[META_LOCK_STR_MAX + 1];
	size_t name_len;
	char addr[META_LOCK_ADDR_MAX], local[META_LOCK_ADDR_MAX];
	uint64_t session;
	int32_t state;
	uint32_t epoch;          /* recovery epoch */
	uint64_t grace_until_ns; /* wall clock; 0: not in grace */
	bool notified;           /* told to reclaim in this epoch */
	uint64_t held;           /* ranges and shares it holds */
};
typedef int (*meta_lock_client_cb)(void *arg, const struct meta_lock_client *c);
/* Every client record, in no useful order; non-zero from cb stops
 * (returned when negative).  Read-only. */
int meta_lock_clients(struct meta *m, meta_lock_client_cb cb, void *arg);
/* Move client from gateway session from to session to, beginning a new
 * recovery epoch with grace until grace_until_ns.  -ESTALE when its
 * record no longer names from (another gateway adopted it, or it moved);
 * -ENOENT when it holds nothing (its record is removed). */
int meta_lock_adopt(struct meta *m, const char *client, size_t len,
		    uint64_t from, uint64_t to, uint64_t grace_until_ns,
		    uint32_t *epoch);
/* The client acknowledged being told to reclaim in epoch. */
int meta_lock_notified(struct meta *m, const char *client, size_t len,
		       uint32_t epoch);
/* Settle the grace of client at now_ns: *left receives how many of its
 * ranges and shares are still unreclaimed; none left, or now_ns past its
 * grace, ends the grace (dropping the unreclaimed ones if it was
 * notified, reported through cb; *dropped may be NULL).  A client not in
 * grace: *left 0, nothing done. */
int meta_lock_recover(struct meta *m, const char *client, size_t len,
		      uint64_t now_ns, uint64_t *left, meta_lock_released_cb cb,
		      void *arg, uint64_t *dropped);

/* Remove the records of clients that hold nothing and are not in
 * grace; *removed (may be NULL) counts them. */
int meta_lock_tidy(struct meta *m, uint64_t *removed);

/* The volume's release counter: bumped by every call that released or
 * downgraded a range, on any gateway.  Gateways with blocked requests
 * read it to learn that a range may have come free elsewhere. */
int meta_lock_releases(struct meta *m, uint64_t *n);
/* Ranges and shares held on the volume, all clients. */
int meta_lock_total(struct meta *m, uint64_t *n);
/* A new NSM state for a gateway of the volume that starts: odd, larger
 * than any handed out before. */
int meta_lock_nsm_state(struct meta *m, int32_t *state);

struct meta_lock_range {
	uint64_t start, end;
	bool exclusive;
	uint32_t epoch;
};
/* One owner's record on an inode, as stored (for listings and tests). */
struct meta_lock_info {
	uint64_t ino;
	bool share;
	const char *client; /* borrowed for the call, not NUL-terminated */
	size_t client_len;
	uint32_t svid;
	const uint8_t *oh;
	size_t oh_len;
	int32_t state;
	size_t nranges;
	const struct meta_lock_range *ranges;
	uint32_t mode, access, epoch; /* shares */
};
typedef int (*meta_lock_info_cb)(void *arg, const struct meta_lock_info *l);
/* Every record on ino (ino 0: on every inode), in inode order. */
int meta_lock_list(struct meta *m, uint64_t ino, meta_lock_info_cb cb,
		   void *arg);
/* ---- metadata dump and load (dump.c, doc/DUMP.md) --------------------------
 *
 * A dump is a volume's key range (every key that starts with its name
 * and a NUL, DESIGN.md's schema) and its registry entry, as one stream of
 * checksummed records: the format is doc/DUMP.md's, versioned, zstd
 * compressed or not.  meta_dump reads one consistent snapshot while
 * gateways go on writing; meta_load writes a volume back key for key.
 * Memory of all three calls is bounded by the largest record (a value),
 * whatever the size of the volume.
 */

/* Where the bytes of a dump go, and where they come from (*got 0: the
 * end).  0 or a negative errno, which stops the call. */
typedef int (*meta_dump_write_fn)(void *arg, const void *buf, size_t len);
typedef int (*meta_dump_read_fn)(void *arg, void *buf, size_t cap, size_t *got);

struct meta_dump_stats {
	uint64_t records;      /* records, header and end included */
	uint64_t keys;         /* key records */
	uint64_t kv_bytes;     /* bytes of their keys and values */
	uint64_t stream_bytes; /* bytes written or read (compressed when
				  the stream is) */
	uint64_t inodes, dirs, dentries, chunks;
	uint64_t sessions;       /* G records (load: dropped) */
	uint64_t snapshot_bytes; /* the engine copy dumped from; 0: none */
};

/* What a dump says about itself (its header). */
struct meta_dump_info {
	char volume[META_VOLNAME_MAX + 1];
	uint8_t uuid[16];
	uint64_t created_ns; /* when the snapshot was taken */
	uint64_t version;    /* the engine's id of that state, 0 unknown */
	char engine[16];     /* "lmdb", "raft" */
	char tessera[32];    /* version of the tessera that wrote it */
	bool copy;           /* read from a copy, not the live engine */
	bool zstd;           /* the stream was compressed */
	unsigned format;     /* format version */
};

struct meta_dump_opts {
	bool json;      /* readable JSON instead of the binary form
				  (only meta_dump; nothing loads it) */
	int zstd_level; /* binary: compress at this level (1..19),
				  0: not compressed */
	/* Read the live engine in one read transaction instead of a copy
	 * (meta_kv_snapshot): needs no temporary space, but the read
	 * transaction lasts as long as the dump, and LMDB's map grows by
	 * what is written meanwhile. */
	bool direct;
	const char *tmpdir; /* for the copy; NULL: $TMPDIR or /var/tmp */
	/* Called every few thousand keys (may be NULL). */
	void (*progress)(void *arg, const struct meta_dump_stats *s);
	void *arg;
};

/* Dump m's volume to w.  *st (may be NULL) and *info (may be NULL)
 * receive what was written.  *err (may be NULL) says what failed; caller
 * frees. */
int meta_dump(struct meta *m, const struct meta_dump_opts *o,
	      meta_dump_write_fn w, void *warg, struct meta_dump_info *info,
	      struct meta_dump_stats *st, char **err);

/* Read a dump through (plain or zstd) and check every record's checksum,
 * the key order, the counts and the checksum at the end, without loading
 * it.  -EBADMSG (*err names the record it failed at and its byte offset
 * in the uncompressed stream) for a dump that is truncated, corrupt or
 * not a dump; other errors are read's.  o: only progress is used (may be
 * NULL). */
int meta_dump_verify(meta_dump_read_fn r, void *rarg,
		     const struct meta_dump_opts *o,
		     struct meta_dump_info *info, struct meta_dump_stats *st,
		     char **err);

struct meta_load_opts {
	const char *volume; /* the dump must be of this volume (NULL:
				  any; META_URL?volume= says it too) */
	/* Clear what an interrupted load left (keys of the volume without
	 * its registry entry) and load; a registered volume is never
	 * replaced. */
	bool force;
	void (*progress)(void *arg, const struct meta_dump_stats *s);
	void *arg;
	uint32_t batch_keys; /* keys per transaction at most (0: 20,000;
				  a batch also ends at 4 MiB) */
};

/* Load a dump into the engine at url, which must not hold the volume:
 * -EEXIST when it is registered there, or when keys of its range are
 * there without a registry entry (an interrupted load; see force).
 * Other volumes of the engine are left alone.  Keys are written in
 * transactions of a few MiB as they are read, and the registry entry,
 * which makes the volume exist, in the last one, only once the end
 * record has been checked; a dump found corrupt or truncated (-EBADMSG,
 * as meta_dump_verify) or any other failure removes again what was
 * written.  Gateway sessions (G records) are not loaded: the gateways
 * that ran when the dump was taken do not run on the loaded copy. */
int meta_load(const char *url, const struct meta_load_opts *o,
	      meta_dump_read_fn r, void *rarg, struct meta_dump_info *info,
	      struct meta_dump_stats *st, char **err);

/* ---- the last metadata backup (backup.c) ----------------------------------
 *
 * Gateways write scheduled backups (dumps) of the volume into its object
 * store (nfsd/backup.c); the record <vol>\0b says when the last one was
 * taken, by whom, and where, and which gateway is writing the next one.
 * The holder of the background-job lease writes them; the claim below
 * keeps two gateways from writing the same backup while the lease
 * changes hands (an old holder that has not noticed yet).
 */
#define META_BACKUP_ID_MAX 48
struct meta_backup {
	uint64_t snap_ns; /* when the last backup's snapshot was taken
				  (0: no backup yet) */
	uint64_t done_ns; /* when it was complete in the store */
	uint64_t session; /* the gateway session that wrote it */
	uint64_t bytes;   /* its size in the store */
	uint64_t keys;    /* key records */
	char id[META_BACKUP_ID_MAX]; /* its name in the store */
	uint64_t claim_session;      /* a backup being written (0: none) */
	uint64_t claim_ns;           /* since */
};

/* The record; -ENOENT when no gateway ever claimed a backup. */
int meta_backup_get(struct meta *m, struct meta_backup *b);
/* Claim the next backup for session at now_ns: 0 when claimed;
 * -EALREADY when the last backup's snapshot is younger than interval_ns
 * (*next_ns, may be NULL, receives when it is due); -EBUSY when another
 * session that is live claimed it.  A claim of a stale session is taken
 * over. */
int meta_backup_claim(struct meta *m, uint64_t session, uint64_t interval_ns,
		      uint64_t now_ns, uint64_t *next_ns);
/* Record the backup session wrote (b's snap_ns .. id) and drop its
 * claim: -ESTALE (nothing written) when another session took the claim
 * over meanwhile. */
int meta_backup_done(struct meta *m, uint64_t session,
		     const struct meta_backup *b);
/* Drop session's claim (its backup failed); no error if it has none. */
int meta_backup_unclaim(struct meta *m, uint64_t session);

#endif /* META_H */
