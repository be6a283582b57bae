/*
 * kv_raft-internal.h - the raft:// engine's private pieces, shared by
 * kv_raft.c (transactions), kv_raft_wire.c (encodings, checksums, the
 * authenticated handshake and frames), kv_raft_node.c (the node: libraft,
 * the state machine, the leader's resolver, read-index), kv_raft_net.c
 * (connections: the libraft transport, the relay, peer messages, the
 * local control socket) and kv_raft_snap.c (replica copies, verify).
 * Nothing outside meta/ includes it.  The design is in doc/DESIGN.md,
 * "Replicated metadata (raft://)".
 */
#ifndef META_KV_RAFT_INTERNAL_H
#define META_KV_RAFT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/tl.h"
#include "meta/kv.h"

#define KVR_SUB "raft"

/* Keys the engine keeps in every replica, outside any volume (volume
 * keys start with a name, the registry with "\0V"). */
#define KVR_KEY_APPLIED "\0Rapplied" /* be64: last log index applied */
#define KVR_KEY_GROUP   "\0Rgroup"   /* 16 bytes: the group's id */
#define KVR_KEY_SESSION "\0Rs"       /* + origin u64: kv_raft_apply.c */
#define KVR_KEYLEN(k)   (sizeof(k) - 1)

/* Files of a node directory. */
#define KVR_IDENTITY "identity"
#define KVR_REPLICA  "replica"
#define KVR_LOG      "log"
#define KVR_CONTROL  "control.sock"

#define KVR_KEY_MAX    4096        /* longest key a transaction may write */
#define KVR_VAL_MAX    (16u << 20) /* longest value */
#define KVR_FRAME_MAX  (64u << 20) /* longest message */
#define KVR_SECRET_MIN 32          /* bytes of a cluster secret file */

/* ---- write operations and transaction records ---------------------------- */

enum meta_kvr_op { KVR_PUT = 1, KVR_DEL = 2, KVR_ADD = 3 };

/* A read range [start, end] (end inclusive) or [start, end) or [start,
 * +inf) (elen 0 and no KVR_R_END), recorded by gets and scans. */
#define KVR_R_INCL 1 /* end is inclusive (a get: start == end) */
#define KVR_R_OPEN 2 /* no upper bound */

/*
 * A transaction record, what a commit sends to the leader (all integers
 * big-endian):
 *   origin u64, seq u64, read index u64,
 *   ndeps u32, deps: seq u64 ...           (in-flight txns it read from)
 *   nreads u32, reads: flags u8, slen u16, start, elen u16, end ...
 *   nwrites u32, writes: op u8, klen u16, key, vlen u32, value ...
 * Writes are sorted by key, one per key.  An entry (one raft command) is
 *   magic u32, version u8, kind u8, crc32c u32 (of what follows), index
 *   u64 (its log index, checked when applied), then
 *   kind TXNS: ntxns u32, members: origin u64, seq u64, nwrites u32,
 *              writes ...
 *   kind VERIFY: a marker: id u64.
 */
#define KVR_ENTRY_MAGIC   0x54535245u /* "TSRE" */
#define KVR_ENTRY_VERSION 1
#define KVR_ENTRY_HDR     18
enum meta_kvr_entry_kind { KVR_E_TXNS = 1, KVR_E_VERIFY = 2 };

struct meta_kvr_rd { /* a decoded read range (pointers borrowed) */
	const uint8_t *s, *e;
	uint16_t slen, elen;
	uint8_t flags;
};

struct meta_kvr_wr { /* a decoded write (pointers borrowed) */
	const uint8_t *k, *v;
	uint16_t klen;
	uint32_t vlen;
	uint8_t op;
};

/* A cursor over encoded bytes: every get fails once past the end. */
struct meta_kvr_rdr {
	const uint8_t *p, *end;
	bool bad;
};

void meta_kvr_rdr_init(struct meta_kvr_rdr *r, const void *p, size_t len);
uint8_t meta_kvr_get8(struct meta_kvr_rdr *r);
uint16_t meta_kvr_get16(struct meta_kvr_rdr *r);
uint32_t meta_kvr_get32(struct meta_kvr_rdr *r);
uint64_t meta_kvr_get64(struct meta_kvr_rdr *r);
const uint8_t *meta_kvr_getn(struct meta_kvr_rdr *r, size_t n);
int meta_kvr_get_read(struct meta_kvr_rdr *r, struct meta_kvr_rd *rd);
int meta_kvr_get_write(struct meta_kvr_rdr *r, struct meta_kvr_wr *w);
void meta_kvr_put_write(struct tl_buf *b, uint8_t op, const void *k,
			size_t klen, const void *v, size_t vlen);

/* The header of a transaction record. */
struct meta_kvr_txnhdr {
	uint64_t origin, seq, index;
	uint32_t ndeps, nreads, nwrites;
	const uint8_t *deps, *reads, *writes; /* positions in the record */
	size_t reads_len, writes_len;
};
int meta_kvr_txn_parse(const void *p, size_t len, struct meta_kvr_txnhdr *h);

/* A transaction record shared by its pending commit and the transactions
 * of the same node that read its writes before it is applied (the
 * overlay, kv_raft.c).  Reference counted; writes found by key. */
struct meta_kvr_wset {
	atomic_uint refs;
	uint64_t seq;
	uint32_t nw;
	uint32_t *woff; /* offset of each write in rec, in key order */
	size_t len;
	uint8_t rec[];
};
struct meta_kvr_wset *meta_kvr_wset_new(const void *rec, size_t len);
struct meta_kvr_wset *meta_kvr_wset_ref(struct meta_kvr_wset *w);
void meta_kvr_wset_unref(struct meta_kvr_wset *w);
/* The write of key in w: 0 and *out, or -ENOENT. */
int meta_kvr_wset_find(const struct meta_kvr_wset *w, const void *k,
		       size_t klen, struct meta_kvr_wr *out);
/* Does w write a key in [s, e) (e NULL: no bound)? */
bool meta_kvr_wset_hits(const struct meta_kvr_wset *w, const void *s,
			size_t slen, const void *e, size_t elen);

/* Key order of kv.h: memcmp, a shorter prefix first. */
int meta_kvr_keycmp(const void *a, size_t alen, const void *b, size_t blen);
/* True if key lies in the range. */
bool meta_kvr_rd_has(const struct meta_kvr_rd *rd, const void *k, size_t klen);

uint32_t meta_kvr_crc32c(uint32_t crc, const void *p, size_t n);
void meta_kvr_entry_seal(struct tl_buf *b);          /* fill in the crc */
int meta_kvr_entry_check(const void *p, size_t len); /* 0 or -EIO */

/* ---- authentication and frames (kv_raft_wire.c) -------------------------- */

/*
 * Every peer connection starts with a handshake proving that both ends
 * hold the cluster secret K, then carries AES-256-GCM frames under keys
 * derived from K and both ends' fresh nonces:
 *   client: HELLO  "TSRP" ver u8, kind u8, group[16], id u64, nonce[32],
 *                  alen u16, address (the client's raft address)
 *   server: WELCOME "TSRP" ver u8, status u8, group[16], id u64, nonce[32],
 *                  mac[32] = HMAC(K, "server" | HELLO | WELCOME-without-mac)
 *   client: PROOF   mac[32] = HMAC(K, "client" | HELLO | WELCOME)
 * then frames: len u32 (of ciphertext), ciphertext, tag[16]; nonce =
 * 0u32 | counter u64 per direction; keys HMAC(K, "c2s"/"s2c" | nonces).
 * A wrong secret fails the MAC: the connection is closed and logged.  A
 * node of another group is refused the same way (status).
 */
#define KVR_HS_MAGIC    "TSRP"
#define KVR_HS_VERSION  1
#define KVR_HELLO_MIN   (4 + 1 + 1 + 16 + 8 + 32 + 2)
#define KVR_WELCOME_LEN (4 + 1 + 1 + 16 + 8 + 32 + 32)
#define KVR_PROOF_LEN   32
#define KVR_TAG         16

enum meta_kvr_chan { KVR_CH_RAFT = 1, KVR_CH_RPC = 2, KVR_CH_SNAP = 3 };
enum meta_kvr_hs_status { KVR_HS_OK = 0, KVR_HS_GROUP = 1, KVR_HS_BUSY = 2 };

struct meta_kvr_secret {
	uint8_t k[32];
};
int meta_kvr_secret_load(const char *path, struct meta_kvr_secret *s,
			 char **err);

struct meta_kvr_hello {
	uint8_t kind;
	uint8_t group[16];
	uint64_t id;
	uint8_t nonce[32];
	char addr[256];
};

/* One direction of a session. */
struct meta_kvr_aead {
	uint8_t key[32];
	uint64_t ctr;
	void *ctx; /* EVP_CIPHER_CTX */
};

struct meta_kvr_session {
	struct meta_kvr_aead tx, rx;
};

void meta_kvr_hello_encode(const struct meta_kvr_hello *h, struct tl_buf *out);
/* 0 and *used, -EAGAIN if more bytes are needed, -EPROTO if bad. */
int meta_kvr_hello_decode(const uint8_t *p, size_t len,
			  struct meta_kvr_hello *h, size_t *used);
void meta_kvr_welcome_encode(const struct meta_kvr_secret *s,
			     const uint8_t *hello, size_t hlen, uint8_t status,
			     const uint8_t group[16], uint64_t id,
			     const uint8_t nonce[32],
			     uint8_t out[KVR_WELCOME_LEN]);
/* Check the server's MAC: 0 or -EACCES. */
int meta_kvr_welcome_check(const struct meta_kvr_secret *s,
			   const uint8_t *hello, size_t hlen,
			   const uint8_t w[KVR_WELCOME_LEN]);
void meta_kvr_proof_make(const struct meta_kvr_secret *s, const uint8_t *hello,
			 size_t hlen, const uint8_t w[KVR_WELCOME_LEN],
			 uint8_t out[KVR_PROOF_LEN]);
int meta_kvr_proof_check(const struct meta_kvr_secret *s, const uint8_t *hello,
			 size_t hlen, const uint8_t w[KVR_WELCOME_LEN],
			 const uint8_t proof[KVR_PROOF_LEN]);
/* Derive the session keys; client says which side this end is. */
void meta_kvr_session_init(struct meta_kvr_session *ss,
			   const struct meta_kvr_secret *s,
			   const uint8_t cnonce[32], const uint8_t snonce[32],
			   bool client);
void meta_kvr_session_free(struct meta_kvr_session *ss);
/* Append one sealed frame of plaintext p to out. */
void meta_kvr_seal(struct meta_kvr_aead *a, const void *p, size_t len,
		   struct tl_buf *out);
/* Open the frame at the start of in: 0 and the plaintext appended to out
 * and *used set, -EAGAIN if incomplete, -EBADMSG if forged or corrupt,
 * -EMSGSIZE if too long. */
int meta_kvr_open(struct meta_kvr_aead *a, const uint8_t *in, size_t len,
		  struct tl_buf *out, size_t *used);

/* Blocking client side (snapshot fetch, tests): connect to address,
 * handshake, 0 and the socket or a negative errno; *err gets a message. */
int meta_kvr_dial(const char *address, const struct meta_kvr_secret *s,
		  uint8_t kind, const uint8_t group[16], uint64_t id,
		  const char *myaddr, uint8_t peer_group[16],
		  struct meta_kvr_session *ss, char **err);
int meta_kvr_send_frame(int fd, struct meta_kvr_session *ss, const void *p,
			size_t n);
/* Read one frame into out (reset first). */
int meta_kvr_recv_frame(int fd, struct meta_kvr_session *ss,
			struct tl_buf *out);

/* ---- the engine's backends ----------------------------------------------- */

struct meta_kvr_node;
struct meta_kvr_opts;

/* What a transaction learns from a commit. */
struct meta_kvr_result {
	uint64_t index; /* the entry that holds it (0: nothing written) */
};

/* The engine's handle: a node in this process or a client of the local
 * node through its control socket. */
struct meta_kvr_kv {
	struct meta_kv base;
	struct meta_kvr_node *node; /* node mode */
	int ctl;                    /* client mode: control socket */
	pthread_mutex_t ctl_lock;
	struct meta_kv *replica; /* reads (owned by the node in node mode) */
	bool rdonly;             /* META_KV_RDONLY: no write transaction */
};

/* Client mode (kv_raft.c). */
int meta_kvr_ctl_connect(const char *dir, char **err);
int meta_kvr_ctl_request(int fd, uint8_t type, const void *p, size_t len,
			 struct tl_buf *reply);
int meta_kvr_url_parse(const char *url, struct meta_kvr_opts *o, char **err);

/* Node API (kv_raft_node.c), callable from any thread but the node's. */
struct meta_kvr_opts {
	char *dir;
	uint64_t id;    /* 0: client mode */
	char *address;  /* this node's raft address (host:port) */
	char *listen;   /* bind address; NULL: address */
	char *peers;    /* "ID@HOST:PORT,..." initial members */
	char *secret;   /* cluster secret file */
	bool bootstrap; /* create the group (format, convert) */
	char *convert;  /* bootstrap from this LMDB directory */
	uint64_t mapsize;
	unsigned election_ms, heartbeat_ms;
	unsigned snapshot_threshold, snapshot_trailing;
	unsigned timeout_ms;  /* longest wait for a commit or a read */
	bool follower_leases; /* followers read without a round trip */
};
void meta_kvr_opts_free(struct meta_kvr_opts *o);

int meta_kvr_node_start(const struct meta_kvr_opts *o,
			struct meta_kvr_node **out, char **err);
void meta_kvr_node_stop(struct meta_kvr_node *n);
struct meta_kv *meta_kvr_node_replica(struct meta_kvr_node *n);
/* Hold the replica against a swap (restore) while a transaction reads. */
void meta_kvr_node_hold(struct meta_kvr_node *n);
void meta_kvr_node_release(struct meta_kvr_node *n);
/* Wait until this node has applied what the group had committed when the
 * call began (read-index). */
int meta_kvr_node_read_barrier(struct meta_kvr_node *n);
/* Commit a transaction record (its origin/seq already set): 0 once
 * applied here, -EAGAIN on conflict, -ETIMEDOUT, -EIO. */
int meta_kvr_node_commit(struct meta_kvr_node *n, const void *rec, size_t len,
			 struct meta_kvr_result *res);
uint64_t meta_kvr_node_incarnation(struct meta_kvr_node *n);

#endif /* META_KV_RAFT_INTERNAL_H */
