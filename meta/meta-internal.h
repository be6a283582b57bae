/*
 * meta-internal.h - shared pieces of the file-system layer: the open
 * volume, key layout, value codecs and transaction helpers.
 *
 * Key layout (doc/DESIGN.md, "Schema"): every key of a volume starts with the
 * volume name and a NUL byte, so volumes share an engine and a volume is
 * one key range.  Integers are big-endian so byte order is numeric order.
 *
 *   <vol>\0setting                  settings (meta_settings_encode)
 *   <vol>\0C<name>                  counter, be64
 *   <vol>\0A<ino>I                  attributes (INODE_VLEN bytes)
 *   <vol>\0A<ino>D<name>            dentry: type u8, ino be64, cookie be64
 *   <vol>\0A<ino>O<cookie>          readdir index: ino be64, type u8, name
 *   <vol>\0A<ino>C<chunk be32>      slice records, SLICE_REC bytes each
 *   <vol>\0A<ino>S                  symlink target
 *   <vol>\0A<ino>L<dir be64>        link record: how many of the links of
 *                                   a non-directory with nlink >= 2 lie in
 *                                   dir (be32); none at nlink 1
 *   <vol>\0K<id be64><size be32>    slice refcount be64 (absent = 1)
 *   <vol>\0D<ino be64><size be64>   deleted file awaiting gc: time be64; size
 *                                   less what its purge released so far
 *   <vol>\0R<id be64><size be32>    released slice: objects to delete
 *   <vol>\0I<id be64><size be32>    an inline slice's bytes (size of them;
 *                                   id has META_SLICE_INLINE, meta.h)
 *   <vol>\0L<time be64><id be64><size be32>
 *                                   slice compaction dropped from its chunk
 *                                   at time (ns): released after the grace
 *   <vol>\0U<ino>                   dir usage: bytes be64, inodes be64
 *   <vol>\0Q<ino be64>L             quota limits: bytes be64, inodes be64
 *   <vol>\0Q<ino be64>U             quota usage: bytes be64, inodes be64
 *   <vol>\0G<id be64>               gateway session (session.c)
 *   <vol>\0B                       background-job lease (session.c)
 *   <vol>\0N<ino be64><owner id 16> NFS locks of one owner (lock.c)
 *   <vol>\0M<client id 16>          an NFS lock client (lock.c)
 *   <vol>\0n<client id><ino><owner id>  index of a client's N records
 *   <vol>\0m<client id 16>          ranges and shares it holds, be64
 *   <vol>\0b                        the last metadata backup (backup.c)
 *   <vol>\0X<export path>           NFS bytes not billed yet: read be64,
 *                                   written be64 (billing.c)
 *   <vol>\0Y                        end of the last billed period be64
 *   \0V<vol>                        registry of volumes (empty value)
 *
 * The registry key starts with NUL, which no volume name does, so it can
 * never fall inside a volume's range.
 */
#ifndef META_INTERNAL_H
#define META_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/tl.h"
#include "meta/kv.h"
#include "meta/meta.h"

#define META_SUB         "meta"
#define META_KEY_MAX     (META_VOLNAME_MAX + 2 + 1 + 8 + 1 + META_NAME_MAX + 16)
#define META_TXN_RETRIES 16
#define META_BATCH       1024 /* ids reserved per counter transaction */
#define META_LINK_MAX    65000
#define META_GC_KEYS     512 /* keys purged per meta_gc_next call */
#define SLICE_REC        24  /* id 8, size 4, off 4, len 4, pos 4 */
#define COMPACT_TAIL     64  /* records out of order before compaction */
#define COMPACT_GRACE_S  300 /* L records wait this long */
#define INODE_VLEN       95
#define INODE_VLEN_V1    87 /* before the written-bytes field */

/* Counters. */
#define CNT_NEXT_INO    "nextinode"
#define CNT_NEXT_SLICE  "nextslice"
#define CNT_USED_BYTES  "usedbytes"
#define CNT_USED_INODES "usedinodes"
#define CNT_PENDING     "pendingdelete"
#define CNT_SESSIONS    "sessions" /* gateway sessions ever started */
/* Bumped by every change of a directory's parent (a rename to another
 * directory, fsck's repair): what meta_getattr_under's cache keys on. */
#define CNT_DIR_MOVES "dirmoves"
/* The trash directory's inode (trash.c); absent until a file is
 * trashed. */
#define CNT_TRASH_INO "trashino"
/* Volume usage for billing (meta.h, struct meta_usage): exact sizes of
 * files outside and inside the trash, slice bytes in the store, bytes
 * waiting for the deletion job. */
#define CNT_LOGICAL       "logicalbytes"
#define CNT_STORED        "storedbytes"
#define CNT_TRASH_BYTES   "trashbytes"
#define CNT_PENDING_BYTES "pendingbytes"
/* 1: the four above are exact (recount.c); absent: a volume formatted
 * before them, whose counters count only the changes since. */
#define CNT_USAGE_VALID "usagevalid"

struct meta_under; /* under.c */

struct meta {
	struct meta_kv *kv;
	struct meta_settings set;
	uint8_t pfx[META_VOLNAME_MAX + 1];
	size_t pfxlen;        /* name + NUL */
	pthread_mutex_t lock; /* the id batches below */
	uint64_t ino_next, ino_end;
	uint64_t slice_next, slice_end;
	uint64_t compact_grace_ns;   /* how long L records wait */
	_Atomic uint64_t trash_ino;  /* the trash directory, 0: not known
					yet (trash.c) */
	uint64_t trash_retention_ns; /* tests: instead of trash_days */
	struct meta_under *under;    /* meta_getattr_under's cache */
};

struct meta_key {
	uint8_t b[META_KEY_MAX];
	size_t len;
};

/* An inode as stored: public attributes plus what only meta needs. */
struct inode {
	struct meta_attr a;
	uint64_t next_cookie; /* directories: next entry cookie */
	bool has_verf;        /* EXCLUSIVE create verifier stored */
	uint8_t verf[8];
};

/* A transaction of the FS layer.  Counter deltas are gathered and written
 * once at commit (meta_txn_end). */
struct mtxn {
	struct meta *m;
	struct meta_kv_txn *kv;
	bool rdonly;
	bool lazy; /* commit with meta_kv_commit_lazy */
	int64_t d_bytes, d_inodes, d_pending;
	/* the usage counters of billing (CNT_LOGICAL...) */
	int64_t d_logical, d_stored, d_trash, d_pendbytes;
	/* Quotas (quota.c): 0 not looked at yet, 1 the volume has none,
	 * 2 it has some; the net charge to each quota touched. */
	int q_state;
	bool q_nocheck; /* charge, never refuse (flushes) */
	struct meta_quota_delta *qd;
	size_t nqd, capqd;
	uint64_t start_ns; /* tl_mono_ns at begin (meta_txn_stats) */
};

/* ---- keys (schema.c) ---- */
void meta_key_setting(struct meta *m, struct meta_key *k);
void meta_key_counter(struct meta *m, struct meta_key *k, const char *name);
void meta_key_ino(struct meta *m, struct meta_key *k, uint64_t ino, char tag);
void meta_key_dentry(struct meta *m, struct meta_key *k, uint64_t dir,
		     const char *name, size_t len);
void meta_key_order(struct meta *m, struct meta_key *k, uint64_t dir,
		    uint64_t cookie);
void meta_key_chunk(struct meta *m, struct meta_key *k, uint64_t ino,
		    uint32_t chunk);
void meta_key_slice(struct meta *m, struct meta_key *k, char tag, uint64_t id,
		    uint32_t size);
void meta_key_deleted(struct meta *m, struct meta_key *k, uint64_t ino,
		      uint64_t size);
void meta_key_usage(struct meta *m, struct meta_key *k, uint64_t ino);
void meta_key_compacted(struct meta *m, struct meta_key *k, uint64_t time_ns,
			uint64_t id, uint32_t size);
void meta_key_link(struct meta *m, struct meta_key *k, uint64_t ino,
		   uint64_t dir);
void meta_key_tag(struct meta *m, struct meta_key *k, char tag);
void meta_key_registry(struct meta_key *k, const char *name);
void meta_key_session(struct meta *m, struct meta_key *k, uint64_t id);

/* ---- codecs (schema.c) ---- */
void meta_inode_encode(const struct inode *in, uint8_t out[INODE_VLEN]);
int meta_inode_decode(const void *v, size_t len, uint64_t ino,
		      struct inode *in);
size_t meta_settings_encode(const struct meta_settings *s, uint8_t *out,
			    size_t cap);
int meta_settings_decode(const void *v, size_t len, struct meta_settings *s);
void meta_slice_encode(const struct meta_slice *s, uint8_t out[SLICE_REC]);
void meta_slice_decode(const uint8_t in[SLICE_REC], struct meta_slice *s);

static inline uint64_t
round4k(uint64_t v)
{
	return (v + 4095) & ~4095ULL;
}

/* ---- transactions (schema.c) ---- */
int meta_txn_begin(struct meta *m, struct mtxn *t, bool rdonly);
/* Commit if rc == 0 (applying counter deltas), abort otherwise; returns
 * the final result. */
int meta_txn_end(struct mtxn *t, int rc);
/* True when rc asks for another attempt (*tries counts them). */
bool meta_txn_retry(int rc, int *tries);
/* Run fn(t, arg) in a transaction of m (read-only when rdonly), and
 * again from the start while the engine asks for another attempt
 * (meta_txn_retry): fn sets anew, on each attempt, whatever it returns
 * through arg, and sets t->lazy or t->q_nocheck itself when it wants
 * them.  fn returning -ENOSR (meta_trash_put: the trash or its hour's
 * directory is missing) has meta_txn_run create them in a transaction
 * of their own (meta_trash_prepare) and count one more attempt.  fn's
 * result, or the commit's. */
int meta_txn_run(struct meta *m, bool rdonly,
		 int (*fn)(struct mtxn *t, void *arg), void *arg);
/* Begin a read-only transaction of m in t and read ino's inode in it
 * into in.  On failure t is ended already. */
int meta_txn_begin_inode(struct meta *m, struct mtxn *t, uint64_t ino,
			 struct inode *in);

/* Key/value pairs of a bounded scan, copied so that the caller may
 * change the range while it walks them (delete them, say).  Start with
 * META_KVLIST_INIT(max); free with meta_kvlist_free. */
struct meta_kvlist {
	struct tl_buf b; /* be16 klen, key, be32 vlen, value; repeated */
	size_t n, max;   /* pairs held, most a scan collects */
};
#define META_KVLIST_INIT(max)                                                  \
	{                                                                      \
		TL_BUF_INIT, 0, (max)                                          \
	}
/* Replace what l holds with the first l->max pairs of [start, end) in
 * t (end NULL: no bound).  0 or a negative errno. */
int meta_kvlist_scan(struct meta_kv_txn *t, struct meta_kvlist *l,
		     const void *start, size_t slen, const void *end,
		     size_t elen);
/* The pair at *off (start at 0), which then moves past it; false at
 * the end.  k and v point into l, valid until its next scan. */
bool meta_kvlist_next(const struct meta_kvlist *l, size_t *off,
		      const uint8_t **k, size_t *klen, const uint8_t **v,
		      size_t *vlen);
/* The last scan stopped at l->max: the range may hold more. */
static inline bool
meta_kvlist_full(const struct meta_kvlist *l)
{
	return l->n >= l->max;
}
void meta_kvlist_free(struct meta_kvlist *l);

int meta_inode_get(struct mtxn *t, uint64_t ino, struct inode *in);
int meta_inode_put(struct mtxn *t, const struct inode *in);
int meta_dentry_get(struct mtxn *t, uint64_t dir, const char *name, size_t len,
		    uint8_t *type, uint64_t *ino, uint64_t *cookie);
/* Link name -> ino in dir with a fresh cookie from dir->next_cookie
 * (caller writes dir afterwards). */
int meta_dentry_add(struct mtxn *t, struct inode *dir, const char *name,
		    size_t len, uint8_t type, uint64_t ino);
int meta_dentry_del(struct mtxn *t, uint64_t dir, const char *name, size_t len,
		    uint64_t cookie);
int meta_counter_get(struct mtxn *t, const char *name, uint64_t *v);
/* Read without taking part in conflict detection (meta_kv_peek): for the
 * soft limits on hot counters. */
int meta_counter_peek(struct mtxn *t, const char *name, uint64_t *v);
int meta_counter_set(struct mtxn *t, const char *name, uint64_t v);
/* Order of slice references: by id, then size (data.c). */
int meta_slice_ref_cmp(const void *a, const void *b);
/* The distinct slices (holes left out) of a chunk value v, sorted, into
 * out (room for vlen / SLICE_REC); how many (data.c).  A slice may be
 * recorded more than once in its chunk: it holds one reference. */
size_t meta_chunk_refs(const uint8_t *v, size_t vlen,
		       struct meta_slice_ref *out);
/* Mark the usage counters exact (recount.c). */
int meta_usage_mark(struct mtxn *t);
/* Commutative (meta_kv_add): no read, no conflict between transactions. */
int meta_counter_add(struct mtxn *t, const char *name, int64_t d);
int meta_usage_add(struct mtxn *t, uint64_t dir, int64_t bytes, int64_t inodes);
/* meta_kv_scan of every key of the volume whose kind is tag. */
int meta_tag_scan(struct mtxn *t, char tag, meta_kv_scan_cb cb, void *arg);
/* A record of two be64 (usage, quota records): zeros when absent, -EIO
 * when not 16 bytes; read with meta_kv_peek with peek. */
int meta_pair_get(struct mtxn *t, const struct meta_key *k, bool peek,
		  uint64_t *a, uint64_t *b);
int meta_usage_get(struct mtxn *t, uint64_t dir, uint64_t *bytes,
		   uint64_t *inodes);

/* ---- link records (schema.c) ----
 * A non-directory with several links records, for each directory that
 * holds some, how many (A<ino>L<dir>), so that when the link in its
 * `parent` goes another directory holding one becomes the parent, and so
 * that meta_getattr_under can tell whether any of its links lies inside
 * a subtree.  Files with one link have no records: their parent says it
 * all. */
/* Add delta to the count of dir (0: nothing); a record reaching 0 goes.
 * *count (may be NULL) receives the new count. */
int meta_links_add(struct mtxn *t, uint64_t ino, uint64_t dir, int delta,
		   uint32_t *count);
/* Up to max directories holding links of ino, in inode order. */
int meta_links_list(struct mtxn *t, uint64_t ino, uint64_t *dirs, size_t max,
		    size_t *n);
int meta_links_clear(struct mtxn *t, uint64_t ino);

/* ---- helpers shared by fs.c / dir.c / data.c ---- */
bool meta_cred_in_group(const struct meta_cred *c, uint32_t gid);
int meta_name_check(const char *name, size_t *len, bool creating);
void meta_pre_attr_of(const struct inode *in, struct meta_pre_attr *w);
/* -ENOSPC if adding bytes (4 KiB rounded) would pass the capacity. */
int meta_capacity_check(struct mtxn *t, int64_t bytes);
int meta_alloc_ino(struct meta *m, uint64_t *ino);

/* under.c */
struct meta_under *meta_under_new(void);
void meta_under_free(struct meta_under *u);
/* session.c: -EBUSY when a gateway session is live or one started
 * since the session counter read epoch (meta_session_epoch). */
int meta_session_quiet(struct mtxn *t, uint64_t epoch);
/* The session record G<id>: -ENOENT when there is none or it is not
 * one this version reads (as good as gone: its gateway is older or
 * newer, and its lease taken as free). */
int meta_session_get(struct mtxn *t, uint64_t id, struct meta_session *s);
/* Decode a G record's value (dump_json.c). */
int meta_session_decode(uint64_t id, const void *val, size_t len,
			struct meta_session *s);
/* The background-job lease record, or -ENOENT (session.c). */
int meta_lease_read(struct mtxn *t, struct meta_lease *l);

/* dump_json.c: a dump as JSON (meta_dump with json), written to w in
 * pieces of up to 64 KiB; keys without the volume prefix. */
struct dump_json;
struct dump_json *meta_dump_json_new(meta_dump_write_fn w, void *arg,
				     struct meta_dump_stats *st);
int meta_dump_json_begin(struct dump_json *j, const struct meta_dump_info *in);
int meta_dump_json_key(struct dump_json *j, const uint8_t *k, size_t kl,
		       const uint8_t *v, size_t vl);
int meta_dump_json_end(struct dump_json *j);
void meta_dump_json_free(struct dump_json *j);

/* backup.c: the B record's value (dump_json.c); -EIO if unreadable. */
int meta_backup_decode(const void *val, size_t len, struct meta_backup *b);

/* volume.c */
/* The volume named by url's ?volume= and by volname (may be NULL), which
 * must agree: *base is the URL without the option, *vol the name or
 * NULL (both caller-freed). */
int meta_url_volume(const char *url, const char *volname, char **base,
		    char **vol, char **err);
bool meta_volname_ok(const char *s);
/* Delete every key of [start, end) in transactions of bounded size;
 * progress (may be NULL) after each with the keys deleted so far. */
int meta_range_delete(struct meta_kv *kv, const void *start, size_t slen,
		      const void *end, size_t elen,
		      void (*progress)(void *arg, uint64_t keys), void *arg);

/* quota.c */
struct meta_quota_delta;
/* Charge a change of dir's usage (U<dir>) to the quotas of dir and its
 * ancestors; meta_usage_add calls it. */
int meta_quota_charge(struct mtxn *t, uint64_t dir, int64_t bytes,
		      int64_t inodes);
/* The logical bytes of the tree changed by delta below dir (a file's
 * size outside the trash, a file moving between directories). */
int meta_quota_logical(struct mtxn *t, uint64_t dir, int64_t delta);
/* A regular file of size bytes gets directory to as its parent instead
 * of from (its U<dir> share moves with meta_usage_add). */
int meta_quota_file_move(struct mtxn *t, uint64_t from, uint64_t to,
			 uint64_t size);
/* Regular file v goes into the trash from its parent: its size leaves
 * the logical bytes of the quotas above and enters their trash bytes,
 * and they are recorded with it (T<ino>). */
int meta_quota_trash_put(struct mtxn *t, const struct inode *v);
/* Charge delta to the trash bytes of the quotas T<ino> names (those
 * still there); with drop the record goes (restored or released). */
int meta_quota_trash_charge(struct mtxn *t, uint64_t ino, int64_t delta,
			    bool drop);
/* At commit (meta_txn_end): -EDQUOT when a positive net charge passes
 * a limit (unless q_nocheck), else the usage adds. */
int meta_quota_commit(struct mtxn *t);
void meta_quota_txn_free(struct mtxn *t);
/* Directory ino moves from directory from to directory to: its tree's
 * usage moves between the quotas above them.  -EXDEV past
 * META_QUOTA_MOVE_MAX entries. */
int meta_quota_move_dir(struct mtxn *t, uint64_t ino, uint64_t from,
			uint64_t to);
/* Directory ino goes: its quota (if any) with it. */
int meta_quota_drop(struct mtxn *t, uint64_t ino);

/* dir.c */
int meta_dir_empty(struct mtxn *t, uint64_t dir);

/* trash.c */
/* The trash directory's inode (0: none yet). */
int meta_trash_ino(struct mtxn *t, uint64_t *ino);
/* -EPERM when d is the trash or one of its hour directories: nothing
 * may be created, removed, renamed or linked there. */
int meta_trash_guard(struct mtxn *t, const struct inode *d);
/* -EPERM when non-directory in is in the trash (its parent an hour
 * directory): it leaves by restore or expiry only, never by a link. */
int meta_trash_holds(struct mtxn *t, const struct inode *in);
/* Whether ino, an entry of dir, is the trash and c may not see it (not
 * root, dir the volume root; c NULL is root). */
bool meta_trash_hidden(struct mtxn *t, const struct meta_cred *c, uint64_t dir,
		       uint64_t ino);
/* v (not a directory) lost its last link, name (len bytes) in directory
 * from: with a trash, link it into the trash instead (*trashed; v is
 * written); otherwise *trashed false and nothing done.  -ENOSR: the
 * trash or the hour's directory is missing; meta_txn_run then ends
 * the transaction, calls meta_trash_prepare and runs it again. */
int meta_trash_put(struct mtxn *t, uint64_t from, const char *name, size_t len,
		   struct inode *v, uint64_t now, bool *trashed);
/* Files and bytes (4 KiB-rounded) in the trash, from the usage records
 * of its hour directories. */
int meta_trash_usage(struct mtxn *t, uint64_t *files, uint64_t *bytes);
/* The inodes of the trash's hour directories, ascending (a file is in
 * the trash when its one link is in one of them): *inos (caller frees)
 * and *n, both empty when the volume has no trash.  Cost: one entry per
 * hour the trash holds. */
int meta_trash_hours(struct mtxn *t, uint64_t **inos, size_t *n);
/* Files of the trash past their retention at now, counted by whole
 * hours (an hour directory whose hour ended before now - retention;
 * with trash_days 0, every file): what the background job may release
 * now.  Cost: one usage record per hour the trash holds. */
int meta_trash_due(struct mtxn *t, uint64_t now, uint64_t *files);
/* Create the trash and the current hour's directory, in a transaction
 * of their own, if missing. */
int meta_trash_prepare(struct meta *m);
/* Regular file in changed size by delta bytes (in->a.size the size
 * before): counted in the trash's bytes when its parent is one of the
 * trash's hour directories, in the logical bytes otherwise, of the
 * volume and of the quotas charged (quota.c). */
int meta_size_account(struct mtxn *t, const struct inode *in, int64_t delta);

/* data.c */
int meta_data_truncate(struct mtxn *t, uint64_t ino, uint64_t oldsize,
		       uint64_t newsize);
int meta_slice_release(struct mtxn *t, uint64_t id, uint32_t size);
/* The inode's last link went: queue its data for gc and forget it. */
int meta_inode_drop(struct mtxn *t, const struct inode *in);

#endif /* META_INTERNAL_H */
