/*
 * limit.c - rate limits on metadata operations, per client address and
 * per export, kept apart for the procedures that read metadata and for
 * those that change it (nfsd_limit_class).  They keep one client, or a
 * fleet of them scanning one tree, from taking the metadata engine for
 * themselves.
 *
 * Each limit is a token bucket: rate tokens a second, at most burst of
 * them saved up.  A call takes one token from its client's bucket and
 * one from its export's, of its class.  A bucket may go into debt: a
 * call that finds no token reserves the next one and waits until it is
 * due, so a client over its rate is slowed to it; a call whose wait
 * would be longer than wait_max is not admitted at all (no token taken)
 * and is answered NFS3ERR_JUKEBOX at once, which NFSv3 clients retry
 * later (Linux after 5 s) without an error reaching the application.
 *
 * The transport (rpc.c) asks before it hands a call to a worker: a
 * waiting call holds no worker thread, only its place among its
 * connection's requests in flight (max_inflight_per_conn) and its
 * request memory, so the waits of one client cost the others nothing.
 *
 * The export is read from the call's first file handle, whose MAC is
 * checked here: a forged handle cannot spend another export's tokens.
 * A call whose handle does not decode, or whose client no rule of the
 * export admits, is not limited: it is refused before it reaches the
 * metadata.
 *
 * Memory: the export buckets are one per export id (bounded by
 * LIMIT_EXPORTS); the client buckets live in a table of at most
 * max_clients entries, the least recently used one reused for a new
 * address once it is full, so a host that sprays source addresses
 * cannot grow it (it only gets fresh buckets, which the export's limit
 * still bounds).
 *
 * Threads: nfsd_limit_admit runs on the loop thread; the settings and
 * the figures are read and changed from others (the admin endpoint, a
 * reload).  One mutex guards everything; it is held for a few hundred
 * nanoseconds per call.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "nfsd/addr-internal.h"
#include "nfsd/rpc-internal.h"

#define LIMIT_EXPORTS 4096

struct bucket {
	double tokens;
	uint64_t last_ns; /* 0: never used (full) */
};

struct client {
	int family;
	uint8_t addr[16];
	struct bucket b[NFSD_LIMIT_NCLASS];
	struct tl_hnode hn;      /* in clients, by hash_addr */
	TAILQ_ENTRY(client) lru; /* use order, most recent first */
};

struct export_lim {
	uint32_t id;
	char *path;
	struct bucket b[NFSD_LIMIT_NCLASS];
	uint64_t delayed[NFSD_LIMIT_NCLASS], refused[NFSD_LIMIT_NCLASS];
};

struct nfsd_limits {
	pthread_mutex_t lock;
	struct nfsd_limit_conf conf;
	size_t max_clients;
	struct tl_htab clients;
	size_t nclients;
	TAILQ_HEAD(client_lru, client) lru;
	struct export_lim *exp;
	size_t nexp, capexp;
	uint64_t evicted;
};

struct nfsd_limits *
nfsd_limits_create(const struct nfsd_limit_conf *conf, size_t max_clients)
{
	struct nfsd_limits *l = tl_calloc(1, sizeof(*l));

	pthread_mutex_init(&l->lock, NULL);
	l->conf = *conf;
	l->max_clients = max_clients > 0 ? max_clients : 1;
	/* sized for the clients it may hold, bounded: it grows past that */
	tl_htab_init(&l->clients, TL_MIN(l->max_clients, (size_t)1 << 20));
	TAILQ_INIT(&l->lru);
	return l;
}

void
nfsd_limits_free(struct nfsd_limits *l)
{
	struct client *c;

	if (l == NULL)
		return;
	while ((c = TAILQ_FIRST(&l->lru)) != NULL) {
		TAILQ_REMOVE(&l->lru, c, lru);
		free(c);
	}
	for (size_t i = 0; i < l->nexp; i++)
		free(l->exp[i].path);
	free(l->exp);
	tl_htab_fini(&l->clients);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

void
nfsd_limits_set(struct nfsd_limits *l, const struct nfsd_limit_conf *conf)
{
	pthread_mutex_lock(&l->lock);
	l->conf = *conf;
	pthread_mutex_unlock(&l->lock);
}

void
nfsd_limits_get(struct nfsd_limits *l, struct nfsd_limit_conf *conf)
{
	pthread_mutex_lock(&l->lock);
	*conf = l->conf;
	pthread_mutex_unlock(&l->lock);
}

int
nfsd_limit_class(uint32_t proc)
{
	switch (proc) {
	case NFSPROC3_GETATTR:
	case NFSPROC3_LOOKUP:
	case NFSPROC3_ACCESS:
	case NFSPROC3_READLINK:
	case NFSPROC3_READDIR:
	case NFSPROC3_READDIRPLUS:
	case NFSPROC3_FSSTAT:
	case NFSPROC3_FSINFO:
	case NFSPROC3_PATHCONF:
		return NFSD_LIMIT_READ;
	case NFSPROC3_SETATTR:
	case NFSPROC3_CREATE:
	case NFSPROC3_MKDIR:
	case NFSPROC3_SYMLINK:
	case NFSPROC3_MKNOD:
	case NFSPROC3_REMOVE:
	case NFSPROC3_RMDIR:
	case NFSPROC3_RENAME:
	case NFSPROC3_LINK:
		return NFSD_LIMIT_WRITE;
	default: /* NULL; READ, WRITE, COMMIT: the bandwidth limits' */
		return -1;
	}
}

/* ---- token buckets ---------------------------------------------------- */

static double
burst_of(uint64_t rate, uint64_t burst)
{
	return burst > 0 ? (double)burst : rate > 0 ? (double)rate : 1;
}

/* Refill b at now; the wait in ns for one more token (0: one is there). */
static uint64_t
bucket_wait(struct bucket *b, uint64_t rate, uint64_t burst, uint64_t now)
{
	double cap = burst_of(rate, burst);

	if (b->last_ns == 0) {
		b->tokens = cap;
	} else if (now > b->last_ns) {
		b->tokens += (double)(now - b->last_ns) * 1e-9 * (double)rate;
		if (b->tokens > cap)
			b->tokens = cap;
	}
	b->last_ns = now;
	if (b->tokens >= 1)
		return 0;
	return (uint64_t)((1 - b->tokens) / (double)rate * 1e9);
}

/* ---- the tables ------------------------------------------------------- */

static uint64_t
hash_addr(int family, const uint8_t addr[16])
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)family;

	for (int i = 0; i < 16; i++)
		h = (h ^ addr[i]) * 1099511628211ULL;
	return h ^ (h >> 29);
}

/* The buckets of the client at family/addr, made (or reused: the least
 * recently used) when it has none. */
static struct client *
client_get(struct nfsd_limits *l, int family, const uint8_t addr[16])
{
	uint64_t h = hash_addr(family, addr);
	struct client *c = NULL;
	struct tl_hnode *n;

	TL_HTAB_FOREACH_HASH(&l->clients, n, h)
	{
		struct client *x = TL_CONTAINER_OF(n, struct client, hn);

		if (x->family == family && memcmp(x->addr, addr, 16) == 0) {
			c = x;
			break;
		}
	}
	if (c != NULL) {
		TAILQ_REMOVE(&l->lru, c, lru);
		TAILQ_INSERT_HEAD(&l->lru, c, lru);
		return c;
	}
	if (l->nclients >= l->max_clients) {
		c = TAILQ_LAST(&l->lru, client_lru);
		TAILQ_REMOVE(&l->lru, c, lru);
		tl_htab_del(&l->clients, &c->hn);
		l->evicted++;
	} else {
		c = tl_malloc(sizeof(*c));
		l->nclients++;
	}
	memset(c, 0, sizeof(*c));
	c->family = family;
	memcpy(c->addr, addr, 16);
	tl_htab_add(&l->clients, &c->hn, h);
	TAILQ_INSERT_HEAD(&l->lru, c, lru);
	return c;
}

static struct export_lim *
export_get(struct nfsd_limits *l, const struct nfsd_export *exp)
{
	for (size_t i = 0; i < l->nexp; i++)
		if (l->exp[i].id == exp->id)
			return &l->exp[i];
	if (l->nexp >= LIMIT_EXPORTS)
		return NULL;
	if (l->nexp == l->capexp) {
		l->capexp = l->capexp ? l->capexp * 2 : 8;
		l->exp = tl_realloc(l->exp, l->capexp * sizeof(*l->exp));
	}
	memset(&l->exp[l->nexp], 0, sizeof(l->exp[0]));
	l->exp[l->nexp].id = exp->id;
	l->exp[l->nexp].path = tl_strdup(exp->path);
	return &l->exp[l->nexp++];
}

/* ---- admission -------------------------------------------------------- */

/* The procedure and the first file handle of an NFSv3 call; false if
 * msg is no such call (the dispatcher answers it). */
static bool
peek_call(const uint8_t *msg, size_t len, uint32_t *proc, const uint8_t **fh,
	  size_t *fhlen)
{
	uint64_t off = 24, n;

	if (len < 24 || tl_get_be32(msg + 4) != 0 /* CALL */ ||
	    tl_get_be32(msg + 8) != NFSD_RPC_VERS ||
	    tl_get_be32(msg + 12) != NFSD_PROG_NFS ||
	    tl_get_be32(msg + 16) != 3)
		return false;
	*proc = tl_get_be32(msg + 20);
	/* credentials, verifier: flavor, length, body */
	for (int i = 0; i < 2; i++) {
		if (off + 8 > len)
			return false;
		n = tl_get_be32(msg + off + 4);
		off += 8 + (n + 3) / 4 * 4;
	}
	if (off + 4 > len)
		return false;
	n = tl_get_be32(msg + off);
	off += 4;
	if (n > len || off + n > len)
		return false;
	*fh = msg + off;
	*fhlen = (size_t)n;
	return true;
}

int
nfsd_limit_admit(struct nfsd_limits *l, struct nfsd_ctx *ctx,
		 const struct sockaddr_storage *peer, const uint8_t *msg,
		 size_t len, uint64_t now_ns, uint64_t *delay_ns)
{
	const struct nfsd_limit_conf *k = &l->conf;
	const struct nfsd_exports *exports;
	const struct nfsd_export *exp;
	const struct nfsd_client_rule *rule;
	struct export_lim *e = NULL;
	struct client *c = NULL;
	const uint8_t *fhp;
	uint8_t addr[16] = {0};
	struct nfsd_fh fh;
	uint64_t wait = 0, w, crate;
	uint32_t proc;
	size_t fhlen;
	int cls, family, verdict = NFSD_LIMIT_PASS;

	*delay_ns = 0;
	if (ctx->vol == NULL || !peek_call(msg, len, &proc, &fhp, &fhlen))
		return NFSD_LIMIT_PASS;
	cls = nfsd_limit_class(proc);
	if (cls < 0)
		return NFSD_LIMIT_PASS;
	exports = nfsd_exports_get(ctx);
	pthread_mutex_lock(&l->lock);
	crate = k->client_rate[cls];
	if ((crate == 0 && k->export_rate[cls] == 0 && !exports->meta_rates) ||
	    nfsd_fh_decode(ctx->vol, fhp, fhlen, &fh) != 0) {
		nfsd_exports_put(exports);
		goto out;
	}
	exp = nfsd_export_by_id(exports, fh.export_id);
	rule = exp != NULL ? nfsd_export_match(exp, peer) : NULL;
	if (rule != NULL) {
		e = export_get(l, exp);
		if (rule->meta_rate_set[cls])
			crate = rule->meta_rate[cls];
	}
	nfsd_exports_put(exports);
	if (e == NULL)
		goto out;
	family = nfsd_peer_addr(peer, true, addr);
	if (crate > 0)
		c = client_get(l, family, addr);
	if (c != NULL) {
		w = bucket_wait(&c->b[cls], crate, k->client_burst[cls],
				now_ns);
		wait = TL_MAX(wait, w);
	}
	if (k->export_rate[cls] > 0) {
		w = bucket_wait(&e->b[cls], k->export_rate[cls],
				k->export_burst[cls], now_ns);
		wait = TL_MAX(wait, w);
	}
	if (wait > k->wait_max_ms * 1000000ULL) {
		e->refused[cls]++;
		verdict = NFSD_LIMIT_REFUSE;
		goto out;
	}
	if (c != NULL)
		c->b[cls].tokens -= 1;
	if (k->export_rate[cls] > 0)
		e->b[cls].tokens -= 1;
	if (wait > 0) {
		e->delayed[cls]++;
		verdict = NFSD_LIMIT_DELAY;
		*delay_ns = wait;
	}
out:
	pthread_mutex_unlock(&l->lock);
	return verdict;
}

void
nfsd_limits_stats(struct nfsd_limits *l, const struct nfsd_exports *cur,
		  void (*fn)(void *arg, const struct nfsd_limit_stats *st),
		  void *arg)
{
	struct nfsd_limit_stats st;
	size_t j;

	pthread_mutex_lock(&l->lock);
	for (size_t i = 0; i < l->nexp; i++) {
		st.path = l->exp[i].path;
		memcpy(st.delayed, l->exp[i].delayed, sizeof(st.delayed));
		memcpy(st.refused, l->exp[i].refused, sizeof(st.refused));
		fn(arg, &st);
	}
	/* the exports in force that had no limited call yet: zeros */
	memset(&st, 0, sizeof(st));
	for (size_t i = 0; cur != NULL && i < cur->n; i++) {
		for (j = 0; j < l->nexp; j++)
			if (l->exp[j].id == cur->v[i].id)
				break;
		if (j < l->nexp)
			continue;
		st.path = cur->v[i].path;
		fn(arg, &st);
	}
	pthread_mutex_unlock(&l->lock);
}

size_t
nfsd_limits_clients(struct nfsd_limits *l, uint64_t *evicted)
{
	size_t n;

	pthread_mutex_lock(&l->lock);
	n = l->nclients;
	if (evicted != NULL)
		*evicted = l->evicted;
	pthread_mutex_unlock(&l->lock);
	return n;
}
