/*
 * drc.c - the duplicate request cache.
 *
 * A client that lost a connection resends its outstanding calls with the
 * same xid, on a new connection from the same source port (the Linux
 * client binds its old port again, as knfsd's cache expects).  For
 * non-idempotent procedures (NFSD_PF_DRC: CREATE, MKDIR, SYMLINK, MKNOD,
 * REMOVE, RMDIR, RENAME, LINK, SETATTR) running the call twice turns a
 * success into an error (the second REMOVE finds nothing), so the reply
 * of the first run is kept and replayed.
 *
 * Like knfsd's cache it is in memory and best effort.  An entry is keyed
 * by the client's address and port, xid, program, version, procedure and
 * a 64-bit checksum of the credentials and arguments, so a different
 * call that happens to reuse an xid is not answered with another call's
 * reply, nor is a call from another port (another client behind the
 * same address, or an unprivileged process on the client's host).  The
 * dispatcher consults the cache only after the call passed its export,
 * client and secure-port checks.  Entries live in a hash table and on an LRU list;
 * the cache holds at most max_entries entries and max_bytes bytes
 * (entries and replies); the least recently used entry goes first.
 * Entries older than DRC_TTL_NS are ignored, replies above DRC_MAX_REPLY
 * (no reply of a DRC procedure is that big) are not kept.  A copy that
 * arrives while the first is still running is dropped unanswered: the
 * client gets the first one's reply.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "nfsd/addr-internal.h"
#include "nfsd/nfsd.h"
#include "nfsd/rpc-internal.h"

#define DRC_MAX_REPLY 4096
#define DRC_TTL_NS    (120ULL * 1000000000)

enum { ENT_RUNNING, ENT_DONE };

struct drc_ent {
	struct nfsd_drc_key key;
	uint64_t when_ns;
	int state;
	uint8_t *reply;
	size_t len;
	struct tl_hnode hn;       /* in the table, by key_hash */
	TAILQ_ENTRY(drc_ent) lru; /* most recent first */
};

struct nfsd_drc {
	pthread_mutex_t lock;
	size_t max_entries, max_bytes;
	struct tl_htab tab;
	TAILQ_HEAD(drc_lru, drc_ent) lru;
	struct nfsd_drc_stats st; /* entries and bytes kept current */
};

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

void
nfsd_drc_make_key(const struct sockaddr_storage *peer, uint32_t xid,
		  uint32_t prog, uint32_t vers, uint32_t proc, const void *body,
		  size_t len, struct nfsd_drc_key *k)
{
	memset(k, 0, sizeof(*k));
	k->family = peer->ss_family;
	/* the address and the port, as knfsd keys its cache: a client that
	 * reconnects to retransmit binds its old port again (the Linux
	 * client does), and a call from another port never gets a reply
	 * meant for this one */
	k->port = nfsd_peer_port(peer);
	(void)nfsd_peer_addr(peer, false, k->addr);
	k->xid = xid;
	k->prog = prog;
	k->vers = vers;
	k->proc = proc;
	k->csum = fnv64(14695981039346656037ULL, body, len);
}

static uint64_t
key_hash(const struct nfsd_drc_key *k)
{
	return fnv64(k->csum, k, offsetof(struct nfsd_drc_key, csum));
}

static bool
key_eq(const struct nfsd_drc_key *a, const struct nfsd_drc_key *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

static size_t
ent_bytes(const struct drc_ent *e)
{
	return sizeof(*e) + e->len;
}

struct nfsd_drc *
nfsd_drc_create(size_t max_entries, size_t max_bytes)
{
	struct nfsd_drc *d = tl_calloc(1, sizeof(*d));

	pthread_mutex_init(&d->lock, NULL);
	TAILQ_INIT(&d->lru);
	d->max_entries = max_entries > 0 ? max_entries : 1;
	d->max_bytes = max_bytes;
	/* sized for the entries it may hold, bounded: it grows past that */
	tl_htab_init(&d->tab, TL_MIN(d->max_entries, (size_t)1 << 20));
	return d;
}

/* Unlink e from its chain and the LRU and free it (under lock). */
static void
ent_drop(struct nfsd_drc *d, struct drc_ent *e)
{
	tl_htab_del(&d->tab, &e->hn);
	TAILQ_REMOVE(&d->lru, e, lru);
	d->st.entries--;
	d->st.bytes -= ent_bytes(e);
	free(e->reply);
	free(e);
}

static struct drc_ent *
ent_find(struct nfsd_drc *d, const struct nfsd_drc_key *k)
{
	struct tl_hnode *n;

	TL_HTAB_FOREACH_HASH(&d->tab, n, key_hash(k))
	{
		struct drc_ent *e = TL_CONTAINER_OF(n, struct drc_ent, hn);

		if (key_eq(&e->key, k))
			return e;
	}
	return NULL;
}

/* Evict least recently used entries until extra more bytes and one more
 * entry fit (under lock). */
static void
make_room(struct nfsd_drc *d, size_t extra)
{
	while (!TAILQ_EMPTY(&d->lru) && (d->st.entries + 1 > d->max_entries ||
					 d->st.bytes + extra > d->max_bytes)) {
		ent_drop(d, TAILQ_LAST(&d->lru, drc_lru));
		d->st.evictions++;
	}
}

int
nfsd_drc_begin(struct nfsd_drc *d, const struct nfsd_drc_key *k,
	       struct tl_buf *reply)
{
	uint64_t now = tl_mono_ns();
	struct drc_ent *e;
	int rc = NFSD_DRC_NEW;

	pthread_mutex_lock(&d->lock);
	e = ent_find(d, k);
	if (e != NULL && now - e->when_ns < DRC_TTL_NS) {
		TAILQ_REMOVE(&d->lru, e, lru);
		TAILQ_INSERT_HEAD(&d->lru, e, lru);
		if (e->state == ENT_RUNNING) {
			d->st.inprogress++;
			rc = NFSD_DRC_RUNNING;
		} else {
			tl_buf_reset(reply);
			tl_buf_append(reply, e->reply, e->len);
			d->st.hits++;
			rc = NFSD_DRC_REPLAY;
		}
		goto out;
	}
	if (e != NULL) {
		ent_drop(d, e); /* too old to trust */
		d->st.expired++;
	}
	d->st.misses++;
	make_room(d, sizeof(*e));
	if (sizeof(*e) > d->max_bytes)
		goto out; /* a cache too small for anything: never kept */
	e = tl_calloc(1, sizeof(*e));
	e->key = *k;
	e->when_ns = now;
	e->state = ENT_RUNNING;
	tl_htab_add(&d->tab, &e->hn, key_hash(k));
	TAILQ_INSERT_HEAD(&d->lru, e, lru);
	d->st.entries++;
	d->st.bytes += ent_bytes(e);
out:
	pthread_mutex_unlock(&d->lock);
	return rc;
}

void
nfsd_drc_end(struct nfsd_drc *d, const struct nfsd_drc_key *k,
	     const struct tl_buf *reply)
{
	struct drc_ent *e;

	pthread_mutex_lock(&d->lock);
	e = ent_find(d, k);
	if (e == NULL || e->state != ENT_RUNNING)
		goto out; /* evicted while the call ran */
	if (reply->len == 0 || reply->len > DRC_MAX_REPLY ||
	    sizeof(*e) + reply->len > d->max_bytes) {
		ent_drop(d, e);
		d->st.uncached++;
		goto out;
	}
	/* take e out of the accounting while making room, so it cannot
	 * evict itself */
	TAILQ_REMOVE(&d->lru, e, lru);
	d->st.bytes -= ent_bytes(e);
	d->st.entries--;
	make_room(d, sizeof(*e) + reply->len);
	e->reply = tl_memdup(reply->data, reply->len);
	e->len = reply->len;
	e->state = ENT_DONE;
	TAILQ_INSERT_HEAD(&d->lru, e, lru);
	d->st.entries++;
	d->st.bytes += ent_bytes(e);
out:
	pthread_mutex_unlock(&d->lock);
}

void
nfsd_drc_stats(struct nfsd_drc *d, struct nfsd_drc_stats *out)
{
	pthread_mutex_lock(&d->lock);
	*out = d->st;
	pthread_mutex_unlock(&d->lock);
}

void
nfsd_drc_free(struct nfsd_drc *d)
{
	if (d == NULL)
		return;
	while (!TAILQ_EMPTY(&d->lru))
		ent_drop(d, TAILQ_FIRST(&d->lru));
	tl_htab_fini(&d->tab);
	pthread_mutex_destroy(&d->lock);
	free(d);
}
