/*
 * kv_raft_node.h - the state of a raft:// node, shared by the files that
 * make it (kv_raft_node.c, kv_raft_leader.c, kv_raft_net.c,
 * kv_raft_snap.c).  Private to meta/.
 *
 * Threads of a node:
 *   the raft thread runs a libuv loop: libraft (raft_uv: its log on disk,
 *     its messages through our transport), the peer connections, the
 *     leader's resolver and read-index rounds.  Only it touches the
 *     fields marked [raft].
 *   the applier writes committed entries into the LMDB replica, many
 *     entries per LMDB transaction, and wakes the transactions waiting
 *     for them.
 *   callers (NFS workers, control-socket threads) begin, read and commit
 *     transactions; they wait on n->lock's condition variables.
 * Fields marked [lock] are guarded by n->lock.
 */
#ifndef META_KV_RAFT_NODE_H
#define META_KV_RAFT_NODE_H

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "meta/kv_raft-internal.h"

struct meta_kvr_net;
struct meta_kvr_leader;
struct meta_kvr_lease;
struct meta_kvr_admin;
struct meta_kvr_ctl;

/* A local transaction waiting for its commit. */
enum pend_state {
	P_QUEUED = 0, /* not sent yet (no leader known) */
	P_SENT,       /* sent to the leader, no answer yet */
	P_ACCEPTED,   /* in the entry at index: applied there or lost */
	P_UNCERTAIN,  /* sent, answer lost: decided once applied reaches
			   index (a fence made sure it cannot join later) */
	P_WAIT,       /* conflict: -EAGAIN once applied reaches index */
	P_DONE,
};

struct pend {
	struct pend *next;
	uint64_t seq;
	struct meta_kvr_wset *ws; /* the transaction record (a reference) */
	enum pend_state state;
	uint64_t peer; /* the leader it went to */
	uint64_t index;
	uint64_t deadline_ns;
	int rc; /* result once P_DONE */
	uint64_t result_index;
	pthread_cond_t cv;
	bool waiting; /* a caller waits for it */
};

/* A read-index request shared by the transactions that began together. */
struct rtick {
	uint64_t id;
	bool sent; /* [lock] on its way */
	bool got;  /* [lock] ri known */
	int rc;
	uint64_t ri;
	unsigned refs;
	uint64_t peer; /* [raft] the leader asked */
	uint64_t deadline_ns;
};

/* One committed command, queued for the applier. */
struct aitem {
	struct aitem *next;
	uint64_t index;
	size_t len;
	uint8_t data[];
};

/* A verify marker's hash on this node. */
struct meta_kvr_verify {
	uint64_t id, index, keys;
	uint8_t sha256[32];
	int state; /* 0 none, 1 hashing, 2 done */
	int rc;
	pthread_t thread;
	bool joinable;
};

struct meta_kvr_stats {
	atomic_uint_fast64_t elections, snap_sent, snap_recv, applied_entries;
	atomic_uint_fast64_t leader_changes;
	/* what the raft thread last saw, for other threads */
	atomic_uint_fast64_t term, leader, state, commit, last_index, voter;
	atomic_uint_fast64_t conflicts, commits, reads, lease_reads;
	/* apply latency: commit of the entry to LMDB, per batch */
	atomic_uint_fast64_t lat_bucket[12], lat_sum_us, lat_count;
};

struct meta_kvr_node {
	struct meta_kvr_opts o;
	struct meta_kvr_secret secret;
	uint8_t group[16];
	uint64_t inc; /* origin id of this process */
	atomic_uint_fast64_t seq;
	char *repdir, *logdir;

	/* the replica: every transaction holds swap shared while it reads */
	struct meta_kv *replica;
	pthread_rwlock_t swap;

	pthread_mutex_t lock;
	pthread_cond_t applied_cv; /* applied moved, or a tick answered */
	uint64_t applied;          /* [lock] replica's applied index */
	int failed;                /* [lock] fatal: every call fails */
	bool stopping;             /* [lock] */
	struct pend *pends;        /* [lock] oldest first */
	struct pend **pend_tail;   /* [lock] */
	struct rtick *rt_open;     /* [lock] gathering transactions */
#define RT_INFLIGHT 4
	struct rtick *rt_sent[RT_INFLIGHT]; /* [lock] being answered */
	uint64_t rt_next;                   /* [lock] */

	/* the applier */
	pthread_t applier;
	pthread_cond_t aq_cv;   /* work queued, or stopping */
	pthread_cond_t aq_idle; /* the queue drained */
	struct aitem *aq_head, **aq_tail;
	bool aq_busy;     /* [lock] a batch is being applied */
	uint64_t aq_last; /* [lock] last index queued */

	/* the raft thread */
	pthread_t thread;
	uv_loop_t loop;
	uv_async_t kick; /* something for the raft thread */
	uv_async_t stop_async;
	uv_check_t check; /* end of a loop turn: flush the batch */
	uv_timer_t timer; /* deadlines, retries */
	struct raft raft;
	struct raft_io io;
	struct raft_fsm fsm;
	/* libraft's receive callback, and the InstallSnapshot messages
	 * held back while this node takes a snapshot (hold_install) */
	int (*io_start)(struct raft_io *, unsigned, raft_io_tick_cb,
			raft_io_recv_cb);
	raft_io_recv_cb io_recv;
#define KVR_HELD 4
	struct raft_message held[KVR_HELD]; /* [raft] oldest first */
	char held_addr[KVR_HELD][256];      /* [raft] their senders */
	unsigned nheld;                     /* [raft] */
	struct meta_kvr_net *net;
	bool closing; /* [raft] */
	bool raft_inited;
	unsigned short state;             /* [raft] last seen raft state */
	uint64_t term, leader;            /* [raft] last seen */
	char leader_addr[256];            /* [raft] */
	uint64_t cmd_seen;                /* [raft] last command index applied
					 by libraft (queued to the applier) */
	atomic_uint_fast64_t cmd_applied; /* the same, for other threads */
	/* the leader's lease: reads need no round trip until then
	 * (monotonic ns; 0: none).  Written by the raft thread. */
	atomic_uint_fast64_t lease_until;
	/* follower leases (kv_raft_lease.c): this follower's lease (mono
	 * ns, 0 none) and the index to apply before using it; when a read
	 * barrier last ran; the release index: answers and snapshots wait
	 * until it reaches their index */
	atomic_uint_fast64_t flease_until, flease_need, read_demand_ns;
	atomic_uint_fast64_t flease_term; /* the term it was granted in */
	uint64_t rel;                     /* [lock] */
	struct meta_kvr_lease *ls;        /* [raft] */
	bool member;                      /* [lock] in the configuration */
	bool running;                     /* [lock] started: a failure now ends
					the process (meta_kvr_node_fail) */
	uint64_t snap_index;        /* [raft] last snapshot taken/restored */
	struct meta_kvr_leader *ld; /* [raft] resolver when leader */
	bool fence_needed;          /* [raft] sent txns lost their leader */
	uint64_t fence_upto;        /* [raft] highest seq sent */

	struct meta_kvr_admin *adm;
	struct meta_kvr_ctl *ctl;
	bool applier_gone;                /* [lock] */
	struct meta_kvr_verify verify[4]; /* [lock] the last markers */
	unsigned verify_next;             /* [lock] */
	int snap_fds[8];        /* [lock] sockets of copies being sent */
	unsigned snap_busy;     /* [lock] */
	pthread_cond_t snap_cv; /* snap_busy fell */

	struct meta_kvr_stats st;
};

/* kv_raft_node.c */
void meta_kvr_node_kick(struct meta_kvr_node *n);
uint64_t meta_kvr_node_next_seq(struct meta_kvr_node *n);
/* Messages from peers (raft thread): conn identifies the connection to
 * answer on, peer the sending node (0: unknown). */
void meta_kvr_node_recv(struct meta_kvr_node *n, uint64_t conn, uint64_t peer,
			const uint8_t *m, size_t len);
void meta_kvr_node_peer_down(struct meta_kvr_node *n, uint64_t peer);
/* A read-index or commit answer for this node's own requests. */
void meta_kvr_node_read_answer(struct meta_kvr_node *n, uint64_t id, int rc,
			       uint64_t ri);
void meta_kvr_node_commit_answer(struct meta_kvr_node *n, uint64_t seq,
				 int status, uint64_t index, uint64_t peer);
uint64_t meta_kvr_node_applied(struct meta_kvr_node *n);
/* The replica cannot go on: every waiting call fails with rc and, once
 * the node runs, the process exits (1 if retry: a restart may succeed;
 * 3 if not); while it starts, its open reports the failure. */
void meta_kvr_node_fail(struct meta_kvr_node *n, int rc, bool retry);
/* Wait until the applier applied all it was given (raft thread). */
int meta_kvr_node_drain(struct meta_kvr_node *n);
int meta_kvr_node_wait_applied(struct meta_kvr_node *n, uint64_t index,
			       uint64_t deadline_ns);

/* The applier (kv_raft_apply.c). */
struct meta_kvr_done {
	uint64_t seq, index;
};
void *meta_kvr_applier_main(void *arg);
/* idle: the applier has nothing more queued from this turn. */
void meta_kvr_node_batch_done(struct meta_kvr_node *n, int rc, uint64_t last,
			      const struct meta_kvr_done *ds, size_t nds,
			      bool idle);
void meta_kvr_verify_stop(struct meta_kvr_node *n);
void meta_kvr_node_replaced(struct meta_kvr_node *n,
			    int (*lookup)(void *, uint64_t), void *arg);
/* Was seq of this process applied in the replica kv?  1, 0, -1 unknown. */
int meta_kvr_session_lookup(struct meta_kv *kv, uint64_t origin, uint64_t seq);
/* The same in the read transaction t. */
int meta_kvr_session_applied(struct meta_kv_txn *t, uint64_t origin,
			     uint64_t seq);
/* For a write transaction: the records of this node's commits not yet
 * applied (oldest first; references the caller drops) and a snapshot of
 * the replica taken with them. */
int meta_kvr_node_overlay(struct meta_kvr_node *n, struct meta_kv_txn **snap,
			  struct meta_kvr_wset ***ws, size_t *count);

int meta_kvr_node_stats(struct meta_kvr_node *n, struct meta_kv_raft_stats *s);
/* Bytes of the regular files of dir. */
uint64_t meta_kvr_dir_bytes(const char *dir);

/* Commit answers. */
enum {
	KVR_ACCEPTED = 0,
	KVR_CONFLICT = 1,
	KVR_NOTLEADER = 2,
	KVR_FENCED = 3,
	KVR_FAILED = 4
};

/* kv_raft_leader.c: the resolver, read-index rounds, carrier entries.
 * All on the raft thread. */
void meta_kvr_leader_begin(struct meta_kvr_node *n);
void meta_kvr_leader_end(struct meta_kvr_node *n);
bool meta_kvr_leader_ready(struct meta_kvr_node *n);
/* A commit from origin (conn 0: this node). */
void meta_kvr_leader_commit(struct meta_kvr_node *n, uint64_t conn,
			    const uint8_t *rec, size_t len);
void meta_kvr_leader_fence(struct meta_kvr_node *n, uint64_t conn,
			   uint64_t origin, uint64_t maxseq);
/* A read-index request (conn 0: this node's ticket id). */
void meta_kvr_leader_read(struct meta_kvr_node *n, uint64_t conn, uint64_t peer,
			  uint64_t id, uint64_t term);
void meta_kvr_leader_confirm_ack(struct meta_kvr_node *n, uint64_t peer,
				 uint64_t term, uint64_t round, bool ok);
void meta_kvr_leader_flush(struct meta_kvr_node *n);
/* Append a verify marker: its log index, 0 if not the leader (ready). */
uint64_t meta_kvr_leader_marker(struct meta_kvr_node *n, uint64_t id);
void meta_kvr_leader_tick(struct meta_kvr_node *n);
/* Fence answers to this node's own (conn 0) fence. */
void meta_kvr_node_fence_answer(struct meta_kvr_node *n, int status,
				uint64_t upto, const uint8_t *list,
				uint32_t count);

/* Message types between nodes (first byte of a frame). */
enum {
	M_COMMIT = 'C',
	M_COMMIT_R = 'c',
	M_FENCE = 'F',
	M_FENCE_R = 'f',
	M_READ = 'R',
	M_READ_R = 'r',
	M_CONFIRM = 'K',
	M_CONFIRM_R = 'k',
	M_STATUS = 'S',
	M_STATUS_R = 's',
	M_ADMIN = 'A',
	M_ADMIN_R = 'a',
	M_VERIFY = 'V',
	M_VERIFY_R = 'v',
	M_HASH = 'H',
	M_HASH_R = 'h',
	M_LEASE = 'L',
	M_LEASE_R = 'l',
	M_APPLIED = 'P',
	M_RELEASE = 'E',
};
int meta_kvr_admin_verify(struct meta_kvr_node *n, struct tl_buf *out);

/* The time left of the leader's lease, in ns (0: none, or not ready). */
uint64_t meta_kvr_leader_lease_left(struct meta_kvr_node *n);

/* kv_raft_lease.c: follower leases. */
void meta_kvr_lease_init(struct meta_kvr_node *n);
void meta_kvr_lease_free(struct meta_kvr_node *n);
/* Any thread: does this follower hold a lease (need: the index to have
 * applied first)?  Wait until the release index reaches index. */
bool meta_kvr_lease_read(struct meta_kvr_node *n, uint64_t *need);
int meta_kvr_node_visible(struct meta_kvr_node *n, uint64_t index,
			  uint64_t deadline_ns);
/* Raft thread: a follower's requests and reports; the leader's release
 * indexes at the end of each loop turn; messages (0 if handled). */
void meta_kvr_lease_pump(struct meta_kvr_node *n);
void meta_kvr_lease_leader_turn(struct meta_kvr_node *n);
void meta_kvr_lease_leader_end(struct meta_kvr_node *n);
/* Before a transfer: grant nothing more; true once every lease ended. */
bool meta_kvr_lease_quiet(struct meta_kvr_node *n);
void meta_kvr_lease_grants(struct meta_kvr_node *n, bool on);
int meta_kvr_lease_recv(struct meta_kvr_node *n, uint64_t conn, uint64_t peer,
			uint8_t type, struct meta_kvr_rdr *r);

/* kv_raft_net.c (raft thread unless said otherwise) */
int meta_kvr_net_init(struct meta_kvr_node *n, struct raft_uv_transport **t,
		      char **err);
/* Send to peer id at addr, connecting if needed (messages queue while it
 * connects; dropped, with meta_kvr_node_peer_down, if it fails).  -ENOTCONN
 * if the peer was unreachable a moment ago (nothing sent). */
int meta_kvr_net_send(struct meta_kvr_node *n, uint64_t id, const char *addr,
		      const void *m, size_t len);
void meta_kvr_net_reply(struct meta_kvr_node *n, uint64_t conn, const void *m,
			size_t len);
/* Close every connection and the listener; cb when done. */
void meta_kvr_net_close(struct meta_kvr_node *n);
void meta_kvr_net_free(struct meta_kvr_node *n);
/* Any thread: start/stop the control socket's threads. */
int meta_kvr_ctl_start(struct meta_kvr_node *n, char **err);
void meta_kvr_ctl_stop(struct meta_kvr_node *n);

/* kv_raft_admin.c */
void meta_kvr_admin_init(struct meta_kvr_node *n);
void meta_kvr_admin_free(struct meta_kvr_node *n);
void meta_kvr_admin_pump(struct meta_kvr_node *n); /* raft thread */
void meta_kvr_admin_peer_down(struct meta_kvr_node *n, uint64_t peer);
int meta_kvr_admin_recv(struct meta_kvr_node *n, uint64_t conn, uint8_t type,
			struct meta_kvr_rdr *r);
/* Any thread but the raft thread: status records of every node that
 * answered (meta_kvr_admin_self's layout), or a membership change. */
int meta_kvr_admin_status(struct meta_kvr_node *n, struct tl_buf *out);
int meta_kvr_admin_change(struct meta_kvr_node *n, uint8_t op, uint64_t id,
			  const char *addr, struct tl_buf *msg);
void meta_kvr_admin_self(struct meta_kvr_node *n, struct tl_buf *b);

/* kv_raft_snap.c */
/* A copy to serve on fd: false if too many run (or the node stops). */
bool meta_kvr_snap_begin(struct meta_kvr_node *n, int fd);
void meta_kvr_snap_end(struct meta_kvr_node *n, int fd);
void meta_kvr_snap_stop(struct meta_kvr_node *n);
int meta_kvr_identity_load(const char *dir, uint8_t group[16], uint64_t *id);
int meta_kvr_identity_save(const char *dir, const uint8_t group[16],
			   uint64_t id);
/* Create a fresh replica with the group's keys at index 0. */
int meta_kvr_replica_create(const char *dir, const uint8_t group[16],
			    uint64_t mapsize, char **err);
/* A replica copied from an LMDB volume at src (convert). */
int meta_kvr_replica_convert(const char *dir, const uint8_t group[16],
			     uint64_t mapsize, const char *src, char **err);
/* Fetch a copy of the replica from a peer that has applied at least
 * min_index into dir/replica.new, check it, and swap it in (the replica
 * must be closed). */
int meta_kvr_replica_fetch(struct meta_kvr_node *n, uint64_t min_index,
			   uint8_t group_out[16], char **err);
/* Serve a copy to a peer (on a thread of its own; the caller closes fd). */
void meta_kvr_snap_serve(struct meta_kvr_node *n, int fd,
			 struct meta_kvr_session *ss, const uint8_t *req,
			 size_t len);
/* libraft's snapshot callbacks (raft thread). */
int meta_kvr_fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
			  unsigned *n_bufs);
int meta_kvr_fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf);

#endif /* META_KV_RAFT_NODE_H */
