/*
 * drc.c - the duplicate request cache.
 *
 * A client that lost a connection resends its outstanding calls with the
 * same xid.  For non-idempotent procedures (NFSD_PF_DRC: CREATE, REMOVE,
 * RENAME, ...) running the call twice turns a success into an error (the
 * second REMOVE finds nothing), so the reply of the first run is kept
 * and replayed.  Like knfsd's cache it is small, in memory and best
 * effort: a direct-mapped table keyed by a hash of the peer's address and
 * the whole call message (xid, credentials and arguments), entries older
 * than DRC_TTL_NS ignored, replies above DRC_MAX_REPLY not kept.  A copy
 * that arrives while the first is still running is dropped unanswered:
 * the client gets the first one's reply.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "nfsd/rpc-internal.h"

#define DRC_SLOTS     4096
#define DRC_MAX_REPLY 4096
#define DRC_TTL_NS    (120ULL * 1000000000)

enum { SLOT_FREE, SLOT_RUNNING, SLOT_DONE };

struct drc_slot {
	uint64_t key;
	uint64_t when_ns;
	int state;
	uint8_t *reply;
	size_t len;
};

static pthread_mutex_t drc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct drc_slot drc[DRC_SLOTS];

static uint64_t
fnv64(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static uint64_t
drc_key(const struct sockaddr_storage *peer, const uint8_t *msg, size_t len)
{
	uint64_t h = 14695981039346656037ULL;

	/* the address, not the port: a retransmit may use a new connection */
	if (peer->ss_family == AF_INET)
		h = fnv64(h, &((const struct sockaddr_in *)peer)->sin_addr, 4);
	else if (peer->ss_family == AF_INET6)
		h = fnv64(h, &((const struct sockaddr_in6 *)peer)->sin6_addr,
			  16);
	h = fnv64(h, msg, len);
	return h != 0 ? h : 1;
}

int
nfsd_drc_begin(const struct sockaddr_storage *peer, const uint8_t *msg,
	       size_t len, struct tl_buf *reply, uint64_t *key)
{
	uint64_t now = tl_mono_ns();
	struct drc_slot *s;
	int rc = NFSD_DRC_NEW;

	*key = drc_key(peer, msg, len);
	s = &drc[*key % DRC_SLOTS];
	pthread_mutex_lock(&drc_lock);
	if (s->key == *key && now - s->when_ns < DRC_TTL_NS &&
	    s->state != SLOT_FREE) {
		if (s->state == SLOT_RUNNING) {
			rc = NFSD_DRC_RUNNING;
		} else {
			tl_buf_reset(reply);
			tl_buf_append(reply, s->reply, s->len);
			rc = NFSD_DRC_REPLAY;
		}
		goto out;
	}
	free(s->reply);
	s->reply = NULL;
	s->len = 0;
	s->key = *key;
	s->when_ns = now;
	s->state = SLOT_RUNNING;
out:
	pthread_mutex_unlock(&drc_lock);
	return rc;
}

void
nfsd_drc_end(uint64_t key, const struct tl_buf *reply)
{
	struct drc_slot *s = &drc[key % DRC_SLOTS];

	pthread_mutex_lock(&drc_lock);
	if (s->key == key && s->state == SLOT_RUNNING) {
		if (reply->len > 0 && reply->len <= DRC_MAX_REPLY) {
			s->reply = tl_memdup(reply->data, reply->len);
			s->len = reply->len;
			s->state = SLOT_DONE;
		} else {
			s->state = SLOT_FREE;
		}
	}
	pthread_mutex_unlock(&drc_lock);
}

void
nfsd_drc_reset(void)
{
	pthread_mutex_lock(&drc_lock);
	for (size_t i = 0; i < DRC_SLOTS; i++) {
		free(drc[i].reply);
		memset(&drc[i], 0, sizeof(drc[i]));
	}
	pthread_mutex_unlock(&drc_lock);
}
