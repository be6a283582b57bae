/*
 * kv.h - the metadata engine interface: an ordered, transactional
 * key-value store.
 *
 * This is the shape LMDB, a Raft-replicated LMDB, etcd and TiKV all offer,
 * so the file-system layer (meta.h) is written once against it.  Engines
 * are chosen by URL:
 *
 *   lmdb:///path[?mapsize=64G]   embedded LMDB; the directory is created
 *                                if missing (unless META_KV_RDONLY).
 *                                Every commit is durable (fsync), never
 *                                MDB_NOSYNC.
 *   raft:///dir[?options]        LMDB replicated by Raft over the nodes of
 *                                a group (kv_raft.c); a commit returns
 *                                once a majority has it in its log.
 *
 * Keys and values are byte strings compared with memcmp order (shorter
 * prefix first).  All calls return 0 or a negative errno:
 *   -ENOENT  get: no such key
 *   -EAGAIN  commit: the transaction conflicted with another one and was
 *            discarded; the caller retries from the start
 *   -ENOSPC  the engine is full (map size or disk)
 *   -EIO     engine failure
 *
 * A transaction belongs to one thread at a time; a write transaction must
 * be committed or aborted by the thread that began it (LMDB's rule).
 * Read-only transactions may be used from any thread (MDB_NOTLS) and many
 * run concurrently with one writer.  A transaction that failed (any call
 * returned an error other than -ENOENT from get) must still be ended with
 * meta_kv_abort.
 */
#ifndef META_KV_H
#define META_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct meta_kv;
struct meta_kv_txn;

/* Scan callback: key and value are borrowed for the duration of the call
 * (do not update the transaction from inside it).  Return 0 to go on,
 * anything else to stop: meta_kv_scan then returns that value if it is
 * negative, 0 otherwise. */
typedef int (*meta_kv_scan_cb)(void *arg, const void *key, size_t klen,
			       const void *val, size_t vlen);

/* Operations table: every engine fills one in. */
struct meta_kv_ops {
	const char *scheme;
	int (*begin)(struct meta_kv *kv, bool rdonly, struct meta_kv_txn **out);
	int (*get)(struct meta_kv_txn *t, const void *key, size_t klen,
		   const void **val, size_t *vlen);
	int (*put)(struct meta_kv_txn *t, const void *key, size_t klen,
		   const void *val, size_t vlen);
	int (*del)(struct meta_kv_txn *t, const void *key, size_t klen);
	int (*add)(struct meta_kv_txn *t, const void *key, size_t klen,
		   const int64_t *delta, unsigned n);
	/* NULL: get */
	int (*peek)(struct meta_kv_txn *t, const void *key, size_t klen,
		    const void **val, size_t *vlen);
	int (*scan)(struct meta_kv_txn *t, const void *start, size_t slen,
		    const void *end, size_t elen, meta_kv_scan_cb cb,
		    void *arg);
	int (*commit)(struct meta_kv_txn *t);
	int (*commit_lazy)(struct meta_kv_txn *t); /* NULL: commit */
	void (*abort)(struct meta_kv_txn *t);
	void (*close)(struct meta_kv *kv);
	uint64_t (*version)(struct meta_kv_txn *t); /* NULL: always 0 */
	/* NULL: meta_kv_copyfd is -ENOTSUP */
	int (*copyfd)(struct meta_kv *kv, int fd);
};

/* Every engine starts with this header. */
struct meta_kv {
	const struct meta_kv_ops *ops;
	char *url;
};

/* Every engine's transaction starts with this header. */
struct meta_kv_txn {
	struct meta_kv *kv;
};

/* Open the engine named by url.  *err (may be NULL) receives a message on
 * failure; caller frees. */
int meta_kv_open(const char *url, struct meta_kv **out, char **err);

/* Flags of meta_kv_open_flags. */
#define META_KV_RDONLY                                                         \
	0x1u /* create nothing, write nothing: a missing
			       environment is -ENOENT, a write transaction
			       -EROFS (LMDB: MDB_RDONLY) */
/* meta_kv_open with flags (meta_kv_open is flags 0). */
int meta_kv_open_flags(const char *url, unsigned flags, struct meta_kv **out,
		       char **err);
void meta_kv_close(struct meta_kv *kv);

/* Begin a transaction.  Ended by exactly one of commit or abort, which
 * free it. */
int meta_kv_begin(struct meta_kv *kv, bool rdonly, struct meta_kv_txn **out);

/* *val is borrowed until the next update in this transaction or its end,
 * whichever comes first. */
int meta_kv_get(struct meta_kv_txn *t, const void *key, size_t klen,
		const void **val, size_t *vlen);
int meta_kv_put(struct meta_kv_txn *t, const void *key, size_t klen,
		const void *val, size_t vlen);
/* Deleting a missing key is not an error. */
int meta_kv_del(struct meta_kv_txn *t, const void *key, size_t klen);

/* Add delta[i] to the i-th big-endian 64-bit field of the value at key
 * (n fields, 1 <= n <= META_KV_ADD_MAX; a missing key counts as n zero
 * fields), modulo 2^64; a sum of all zeros deletes the key.  For counters
 * that many transactions bump (a volume's used bytes, a directory's
 * usage): an add does not read the value, so two transactions adding to
 * one key do not conflict; the engine applies it at commit (the raft
 * engine on every node, in log order).  A get of the key in the same
 * transaction sees the sum, and counts as a read.  -EIO if the stored
 * value is not 8n bytes long. */
#define META_KV_ADD_MAX 4
int meta_kv_add(struct meta_kv_txn *t, const void *key, size_t klen,
		const int64_t *delta, unsigned n);

/* Read like meta_kv_get, but the read takes no part in conflict
 * detection: the transaction commits even if another one changed the key
 * after it was read.  For soft limits checked against a hot counter (the
 * volume's capacity and inode limit), where a value a few operations old
 * is acceptable and a conflict with every concurrent create is not. */
int meta_kv_peek(struct meta_kv_txn *t, const void *key, size_t klen,
		 const void **val, size_t *vlen);

/* Which state of the store a read-only transaction reads: two read-only
 * transactions of one engine with the same non-zero version see the same
 * contents (LMDB: the id of the last write transaction committed when it
 * began).  0 when the engine cannot tell, and for write transactions.
 * Lets a caller reuse what it derived from an earlier snapshot without
 * reading it again (meta_getattr_under's directory-move counter). */
uint64_t meta_kv_version(struct meta_kv_txn *t);

/* Call cb for every key k with start <= k < end, in order.  end NULL (or
 * elen 0 with end NULL) means no upper bound.  Stops when cb returns
 * non-zero, so the work is bounded by what the caller consumes. */
int meta_kv_scan(struct meta_kv_txn *t, const void *start, size_t slen,
		 const void *end, size_t elen, meta_kv_scan_cb cb, void *arg);

/* Commit (durable when it returns 0) or discard.  Both free t, also when
 * commit fails. */
int meta_kv_commit(struct meta_kv_txn *t);
void meta_kv_abort(struct meta_kv_txn *t);

/* Commit atomically but possibly return before it is durable: a crash may
 * lose the whole transaction (never part of it), and the next durable
 * commit carries it to disk.  For bookkeeping that is simply redone when
 * lost (gc forgetting objects it already deleted), so that it costs no
 * sync of its own.  Engines without a cheaper way commit durably.  Frees
 * t, also when it fails. */
int meta_kv_commit_lazy(struct meta_kv_txn *t);

/* Write a consistent, compacted copy of the whole store, as an LMDB data
 * file (data.mdb), to fd (a file or a pipe), from one read transaction
 * that lasts as long as the copy: LMDB's mdb_env_copyfd2 with
 * MDB_CP_COMPACT.  raft://: of this node's replica, once it has applied
 * everything the group had committed when the call began (the copy a
 * Raft snapshot sends to a node that is behind).  -ENOTSUP for engines
 * that cannot. */
int meta_kv_copyfd(struct meta_kv *kv, int fd);

/* A snapshot of the whole store that pins nothing of it once made: the
 * copy of meta_kv_copyfd written to a file in tmpdir (NULL: $TMPDIR, or
 * /var/tmp), opened read-only as an lmdb engine, and unlinked at once,
 * so it holds disk space (the store's compacted size) only while open and
 * leaves nothing behind a crash but a half-written copy during the copy
 * itself (named tessera-snapshot.*).  *bytes (may be NULL) receives the
 * copy's size.  *err (may be NULL) says what failed; caller frees. */
int meta_kv_snapshot(struct meta_kv *kv, const char *tmpdir,
		     struct meta_kv **out, uint64_t *bytes, char **err);

/* ---- raft:// groups (the raft engine only: -ENOTSUP on the others) ---- */

/* One node as it describes itself. */
struct meta_kv_raft_node {
	uint64_t id;
	char state[16]; /* leader, follower, candidate, unavailable */
	char role[16];  /* voter, standby, spare, none */
	char address[256];
	uint64_t term, leader;
	uint64_t commit, last_index; /* its log: committed, last entry */
	uint64_t applied;            /* applied to its replica */
	uint64_t snapshot;           /* index of its last snapshot */
	uint64_t log_bytes;          /* size of its log files */
	uint64_t snapshots_sent, snapshots_received; /* replica copies */
};

/* Every node of the group that answered within a second (this one
 * first); *nodes is the caller's to free. */
int meta_kv_raft_status(struct meta_kv *kv, struct meta_kv_raft_node **nodes,
			size_t *count);

/* Membership and leadership, one node at a time, on the leader: add a
 * running node (a standby until it caught up, then a voter), remove one,
 * or transfer leadership (id 0: to the most up-to-date voter).  *msg (may
 * be NULL) receives what the leader said; caller frees. */
enum {
	META_KV_RAFT_ADD = 1,
	META_KV_RAFT_REMOVE = 2,
	META_KV_RAFT_TRANSFER = 3
};
int meta_kv_raft_change(struct meta_kv *kv, int op, uint64_t id,
			const char *address, char **msg);

/* This node's figures (a node of this process; -ENOTSUP otherwise). */
#define META_KV_RAFT_LAT_BUCKETS 12 /* <= 100us * 2^i, the last: more */
struct meta_kv_raft_stats {
	uint64_t id, term, leader;
	int state; /* 0 unavailable, 1 follower, 2 candidate,
				    3 leader */
	bool voter;
	uint64_t commit, last_index, applied;
	uint64_t log_bytes;
	uint64_t leader_changes, elections_won;
	uint64_t snapshots_sent, snapshots_received;
	uint64_t commits, conflicts, reads, lease_reads;
	/* applying committed entries to the replica, per LMDB batch */
	uint64_t apply_count[META_KV_RAFT_LAT_BUCKETS];
	uint64_t apply_sum_us, apply_batches;
};
int meta_kv_raft_stats(struct meta_kv *kv, struct meta_kv_raft_stats *s);
/* The LMDB figures of this node's replica (meta_kv_lmdb_stats: map,
 * pages, tree; its batches are the applier's); -ENOTSUP but for a node
 * of this process. */
struct meta_kv_lmdb_stats;
int meta_kv_raft_lmdb_stats(struct meta_kv *kv, struct meta_kv_lmdb_stats *s);

/* Verify: the leader appends a marker to the log; every node, when it
 * applies the marker, hashes its whole replica (SHA-256 of every key and
 * value in order) as it stands at that index.  One result per node of the
 * configuration (this one first); *v is the caller's to free. */
struct meta_kv_raft_verify {
	uint64_t id, index; /* node, and the marker's log index */
	uint8_t sha256[32];
	uint64_t keys;
	int rc; /* 0, or why the node did not answer */
};
int meta_kv_raft_verify(struct meta_kv *kv, struct meta_kv_raft_verify **v,
			size_t *count);

/* Make the LMDB volume at lmdb_url (left as it is) the replica of a new
 * group whose only node is node_url (a node URL with bootstrap=1 whose
 * directory is not a node yet); tesserad then serves it. */
int meta_kv_raft_convert(const char *lmdb_url, const char *node_url,
			 char **err);

/* For engines: the value an add leaves, from the stored value (old NULL:
 * missing).  Writes 8n bytes to out; returns 1 when all fields are zero
 * (the key is to be deleted), 0 otherwise, -EIO when oldlen != 8n. */
int meta_kv_add_sum(const void *old, size_t oldlen, const int64_t *delta,
		    unsigned n, uint8_t *out);

/* Engine constructors (used by meta_kv_open; exposed for tests).
 * raft: see kv_raft.c for the URL; flags: META_KV_*.  META_KV_RDONLY is
 * for a group's directory (client mode): it reaches the running node and
 * reads its replica, creates nothing, and a write transaction is -EROFS;
 * a node URL (id=) cannot be opened read-only (-EINVAL): a node writes. */
int meta_kv_raft_open(const char *url, unsigned flags, struct meta_kv **out,
		      char **err);
/*
 * lmdb: dir is a directory path, mapsize 0 = default (64 GiB); resident:
 * file-backed RSS above which the map is unmapped (kv_lmdb.c), 0 = no
 * limit.  The first open of a directory sets both.  flags: META_KV_*.
 * A process opens an environment once and shares it: a read-write open
 * of one already open read-only is -EBUSY. */
#define META_KV_LMDB_RESIDENT (48ULL << 20)
int meta_kv_lmdb_open(const char *dir, uint64_t mapsize, uint64_t resident,
		      unsigned flags, struct meta_kv **out, char **err);
/* How many times the map was unmapped to keep under resident. */
uint64_t meta_kv_lmdb_map_drops(struct meta_kv *kv);
/* Durability figures of an lmdb:// engine (-ENOTSUP for another one):
 * batches: write transactions committed (each syncs its data pages);
 * syncs: syncs that acknowledged durable commits (one serves every batch
 * written before it started); lazy: commits that did not wait for one
 * (meta_kv_commit_lazy: async exports, session renewals, gc).
 * The map: its size, the pages in use (up to the last page ever
 * written: the file's high-water mark, free pages inside it included),
 * the tree's pages by kind, its entries and depth, and the reader slots
 * (used: the lock table's high-water mark). */
struct meta_kv_lmdb_stats {
	uint64_t batches, syncs, lazy;
	uint64_t map_bytes, page_size, pages_used;
	uint64_t branch_pages, leaf_pages, overflow_pages, entries, depth;
	uint64_t readers, max_readers;
};
int meta_kv_lmdb_stats(struct meta_kv *kv, struct meta_kv_lmdb_stats *s);
/* Flush what lazy commits left in the page cache to disk. */
int meta_kv_lmdb_sync(struct meta_kv *kv);
/* Bulk loading (meta_load into an engine that holds no key at all):
 * with on, commits no longer sync (MDB_NOSYNC) and a put whose key sorts
 * after every key of the tree appends (MDB_APPEND: pages filled whole,
 * no search); commit the load's transactions with meta_kv_commit_lazy.
 * Off syncs everything to disk and restores durable commits: 0 only
 * once the load's keys are durable.  A crash of the machine meanwhile
 * may leave the engine's file damaged: it is wiped and the load run
 * again.  -ENOTSUP for another engine (raft://: loads the ordinary
 * way). */
int meta_kv_lmdb_bulk(struct meta_kv *kv, bool on);
/* Write a consistent, compacted copy of the whole environment (a
 * data.mdb file) to fd (a pipe or a file), from one read transaction. */
int meta_kv_lmdb_copyfd(struct meta_kv *kv, int fd);

#endif /* META_KV_H */
