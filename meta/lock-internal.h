/*
 * lock-internal.h - what the two halves of the NFS lock table share:
 * lock.c (ids, keys, the N and M records, byte-range locks and shares)
 * and lock_client.c (a client's locks as a whole: FREE_ALL and reboots,
 * recovery after a gateway is gone, counters, listings).  The layout of
 * the records is described in lock.c.  Nothing outside meta/ includes
 * this file.
 */
#ifndef META_LOCK_INTERNAL_H
#define META_LOCK_INTERNAL_H

#include "meta/meta-internal.h"

#define LOCK_VERSION    1
#define CLIENT_VERSION  1
#define KIND_RANGES     1
#define KIND_SHARE      2
#define RANGE_REC       21 /* start 8, end 8, exclusive 1, epoch 4 */
#define CLIENT_NOTIFIED 0x1
#define LK_BATCH        256 /* records per transaction of client-wide calls */
#define LK_CONFLICTS    4   /* conflicting records classified per request */

#define LOCK_ID 16 /* bytes of an owner or client id */

#define CNT_NLM_LOCKS    "nlmlocks"
#define CNT_NLM_RELEASES "nlmreleases"
#define CNT_NSM_STATE    "nsmstate"

/* A decoded N record; owns its memory (meta_lk_rec_free). */
struct lrec {
	uint8_t kind;
	uint32_t svid;
	uint32_t state;
	uint8_t *name, *oh;
	size_t name_len, oh_len;
	struct meta_lock_range *r;    /* kind ranges */
	size_t n;                     /* ranges; a share: 1, or 0 (none) */
	uint32_t mode, access, epoch; /* kind share */
};

/* Ranges and shares a record counts for. */
static inline uint64_t
meta_lk_rec_count(const struct lrec *r)
{
	return r->n;
}

/* ids and keys */
void meta_lk_client_id(const char *name, size_t len, uint8_t id[LOCK_ID]);
/* N<ino>[<owner id>] (oid NULL: the inode's prefix) */
void meta_lk_key_lock(struct meta *m, struct meta_key *k, uint64_t ino,
		      const uint8_t *oid);
/* tag M (client), m (count) or n (index; with ino and owner id when oid
 * is given) and the client id */
void meta_lk_key_client(struct meta *m, struct meta_key *k, char tag,
			const uint8_t cid[LOCK_ID], uint64_t ino,
			const uint8_t *oid);
/* the first key past every key that starts with k */
void meta_lk_key_after(const struct meta_key *k, struct meta_key *out);

/* records */
void meta_lk_rec_free(struct lrec *r);
int meta_lk_rec_decode(const void *val, size_t len, struct lrec *r);
/* Write r (delete it when it holds nothing) with its index entry and
 * the counts; old: what the stored record counted for (0: none). */
int meta_lk_rec_store(struct mtxn *t, uint64_t ino, const uint8_t oid[LOCK_ID],
		      const uint8_t cid[LOCK_ID], const struct lrec *r,
		      uint64_t old);

/* clients */
int meta_lk_client_decode(const void *val, size_t len,
			  struct meta_lock_client *c);
int meta_lk_client_get(struct mtxn *t, const uint8_t cid[LOCK_ID],
		       struct meta_lock_client *c);
int meta_lk_client_put(struct mtxn *t, const uint8_t cid[LOCK_ID],
		       const struct meta_lock_client *c);
/* What the client holds, read without conflict detection. */
int meta_lk_peek_count(struct mtxn *t, const uint8_t cid[LOCK_ID], uint64_t *n);

#endif /* META_LOCK_INTERNAL_H */
