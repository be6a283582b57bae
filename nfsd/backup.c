/*
 * backup.c - metadata backups in the volume's object store: writing one,
 * listing, pruning and reading them back, and the gateway's scheduled
 * backups (nfsd.h, "metadata backups in the object store").
 *
 * A backup streams: meta_dump writes the zstd-compressed dump into a
 * buffer of one part, each full part is stored as an object, so memory
 * is one part plus zstd's window whatever the size of the volume.  The
 * dump reads a copy of the engine (meta_kv_snapshot), so the live LMDB
 * map is pinned only while the copy is made, not while parts go up to
 * a slow or rate-limited store, and client traffic never waits for it.
 *
 * Durability: the store may defer the sync of puts (os_defer_sync, the
 * file store under the cache); the index is written only once every part
 * is durable (os_sync_since), then synced itself, and only then is the
 * backup recorded in metadata (meta_backup_done).
 *
 * The index, plain text (a person may read it):
 *   tessera-backup 1
 *   volume NAME
 *   uuid 8-4-4-4-12
 *   snapshot_ns N
 *   part_size N
 *   parts N
 *   bytes N
 *   keys N
 * Readers need parts, part_size and bytes; lines they do not know are
 * ignored.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nfsd/nfsd.h"
#include "objstore/objstore.h"

#define BACKUP_SUB   "backup"
#define INDEX_NAME   "index"
#define INDEX_MAX    4096
#define RETRY_MAX_MS (5ULL * 60 * 1000) /* after a failure */
#define POLL_MAX_MS  (60ULL * 1000)     /* look again at least this often */

static char *
backup_prefix(const char *volume, const char *id)
{
	return tl_asprintf("%s/%s/%s/", volume, NFSD_BACKUP_DIR, id);
}

static void
make_id(uint64_t ns, char id[META_BACKUP_ID_MAX])
{
	time_t t = (time_t)(ns / 1000000000ULL);
	struct tm tm;
	char s[32];

	gmtime_r(&t, &tm);
	strftime(s, sizeof(s), "%Y%m%dT%H%M%S", &tm);
	snprintf(id, META_BACKUP_ID_MAX, "%s.%03uZ", s,
		 (unsigned)(ns / 1000000 % 1000));
}

/* ---- writing ------------------------------------------------------------- */

struct part_sink {
	struct os_store *os;
	char *prefix;
	uint8_t *buf;
	size_t len, cap;
	uint64_t parts, bytes;
};

static int
part_put(struct part_sink *p)
{
	char *key = tl_asprintf("%s%08" PRIu64, p->prefix, p->parts);
	int rc = os_put(p->os, key, p->buf, p->len);

	free(key);
	if (rc == 0) {
		p->parts++;
		p->bytes += p->len;
		p->len = 0;
	}
	return rc;
}

static int
part_write(void *arg, const void *buf, size_t n)
{
	struct part_sink *p = arg;
	const uint8_t *b = buf;
	int rc;

	while (n > 0) {
		size_t c = TL_MIN(n, p->cap - p->len);

		memcpy(p->buf + p->len, b, c);
		p->len += c;
		b += c;
		n -= c;
		if (p->len == p->cap && (rc = part_put(p)) != 0)
			return rc;
	}
	return 0;
}

struct del_ctx {
	struct os_store *os;
	int rc;
};

static int
del_cb(void *arg, const char *key, uint64_t size)
{
	struct del_ctx *d = arg;
	int rc = os_delete(d->os, key);

	(void)size;
	if (rc && d->rc == 0)
		d->rc = rc;
	return 0;
}

/* Delete every object of the backup at prefix, its index first (a
 * backup half deleted is incomplete, never complete with parts
 * missing). */
static int
delete_prefix(struct os_store *os, const char *prefix)
{
	struct del_ctx d = {os, 0};
	char *index = tl_asprintf("%s%s", prefix, INDEX_NAME);
	int rc = os_delete(os, index);

	free(index);
	if (rc)
		return rc;
	rc = os_list(os, prefix, NULL, del_cb, &d);
	return rc ? rc : d.rc;
}

static int
write_index(struct os_store *os, const char *prefix, const struct meta *m,
	    const struct meta_dump_info *in, const struct part_sink *p,
	    uint32_t part_size, uint64_t keys)
{
	char *key = tl_asprintf("%s%s", prefix, INDEX_NAME), u[37], *text;
	int rc;

	os_uuid_format(in->uuid, u);
	text = tl_asprintf("tessera-backup 1\nvolume %s\nuuid %s\n"
			   "snapshot_ns %" PRIu64 "\npart_size %u\n"
			   "parts %" PRIu64 "\nbytes %" PRIu64 "\n"
			   "keys %" PRIu64 "\n",
			   in->volume, u, in->created_ns, part_size, p->parts,
			   p->bytes, keys);
	rc = os_put(os, key, text, strlen(text));
	(void)m;
	free(text);
	free(key);
	return rc;
}

int
nfsd_backup_write(struct meta *m, struct os_store *os,
		  const struct nfsd_backup_opts *o, struct meta_backup *b,
		  struct meta_dump_stats *st, char **err)
{
	const char *volume = meta_settings(m)->name;
	struct meta_dump_opts dopts = {
		.zstd_level = NFSD_BACKUP_ZSTD_LEVEL,
		.tmpdir = o->tmpdir,
	};
	struct meta_dump_info in;
	struct part_sink p;
	uint64_t mark;
	char *e = NULL;
	int rc;

	*err = NULL;
	memset(b, 0, sizeof(*b));
	memset(&p, 0, sizeof(p));
	make_id(tl_now_ns(), b->id);
	p.os = os;
	p.prefix = backup_prefix(volume, b->id);
	p.cap = o->part_size ? o->part_size : NFSD_BACKUP_PART;
	p.buf = tl_malloc(p.cap);
	mark = os_sync_mark(os);
	rc = meta_dump(m, &dopts, part_write, &p, &in, st, &e);
	if (rc == 0 && p.len > 0)
		rc = part_put(&p);
	if (rc == 0)
		rc = os_sync_since(os, mark);
	if (rc == 0)
		rc = write_index(os, p.prefix, m, &in, &p, (uint32_t)p.cap,
				 st->keys);
	if (rc == 0)
		rc = os_sync_since(os, mark);
	if (rc) {
		*err = e ? e
			 : tl_asprintf("cannot store backup %s%s: %s", p.prefix,
				       "", strerror(-rc));
		e = NULL;
		delete_prefix(os, p.prefix);
	} else {
		b->snap_ns = in.created_ns;
		b->done_ns = tl_now_ns();
		b->bytes = p.bytes;
		b->keys = st->keys;
	}
	free(e);
	free(p.buf);
	free(p.prefix);
	return rc;
}

/* ---- listing and pruning ------------------------------------------------- */

struct lister {
	size_t plen; /* of "NAME/meta-backup/" */
	struct nfsd_backup_entry *v;
	size_t n, cap;
};

static int
list_cb(void *arg, const char *key, uint64_t size)
{
	struct lister *l = arg;
	const char *id = key + l->plen, *slash = strchr(id, '/');
	struct nfsd_backup_entry *e;
	size_t idlen;

	if (slash == NULL || (idlen = (size_t)(slash - id)) == 0 ||
	    idlen >= META_BACKUP_ID_MAX)
		return 0; /* not a backup's object: none of ours */
	e = l->n ? &l->v[l->n - 1] : NULL;
	if (e == NULL || strlen(e->id) != idlen ||
	    memcmp(e->id, id, idlen) != 0) {
		if (l->n == l->cap) {
			l->cap = l->cap ? 2 * l->cap : 16;
			l->v = tl_realloc(l->v, l->cap * sizeof(*l->v));
		}
		e = &l->v[l->n++];
		memset(e, 0, sizeof(*e));
		memcpy(e->id, id, idlen);
	}
	if (strcmp(slash + 1, INDEX_NAME) == 0) {
		e->complete = true;
	} else {
		e->parts++;
		e->bytes += size;
	}
	return 0;
}

int
nfsd_backup_list(struct os_store *os, const char *volume,
		 struct nfsd_backup_entry **out, size_t *n)
{
	char *prefix = tl_asprintf("%s/%s/", volume, NFSD_BACKUP_DIR);
	struct lister l = {strlen(prefix), NULL, 0, 0};
	int rc = os_list(os, prefix, NULL, list_cb, &l);

	free(prefix);
	if (rc) {
		free(l.v);
		l.v = NULL;
		l.n = 0;
	}
	*out = l.v;
	*n = l.n;
	return rc;
}

int
nfsd_backup_prune(struct os_store *os, const char *volume, unsigned keep,
		  unsigned *deleted)
{
	struct nfsd_backup_entry *v;
	size_t n, complete = 0, newest = SIZE_MAX, seen = 0;
	unsigned del = 0;
	int rc, first = 0;

	if (deleted)
		*deleted = 0;
	rc = nfsd_backup_list(os, volume, &v, &n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++)
		if (v[i].complete) {
			complete++;
			newest = i;
		}
	for (size_t i = 0; i < n; i++) {
		bool drop;
		char *prefix;

		if (v[i].complete)
			drop = complete - seen++ > keep;
		else
			drop = newest != SIZE_MAX && i < newest;
		if (!drop)
			continue;
		prefix = backup_prefix(volume, v[i].id);
		rc = delete_prefix(os, prefix);
		free(prefix);
		if (rc && first == 0)
			first = rc;
		del += rc == 0;
	}
	free(v);
	if (deleted)
		*deleted = del;
	return first;
}

/* ---- reading back -------------------------------------------------------- */

struct nfsd_backup_reader {
	struct os_store *os;
	char *prefix;
	char id[META_BACKUP_ID_MAX];
	uint64_t parts, part_size, bytes;
	uint64_t next; /* the next part to fetch */
	uint8_t *buf;
	size_t len, pos;
	uint64_t done; /* bytes handed out */
};

static int
read_index(struct nfsd_backup_reader *r, char **err)
{
	char *key = tl_asprintf("%s%s", r->prefix, INDEX_NAME), *line, *save;
	char text[INDEX_MAX + 1];
	unsigned long long v;
	size_t got = 0;
	int rc, seen = 0;

	rc = os_get(r->os, key, 0, INDEX_MAX, text, &got);
	free(key);
	if (rc) {
		*err = tl_asprintf("backup %s: cannot read its index: %s",
				   r->id, strerror(-rc));
		return rc;
	}
	text[got] = '\0';
	if (strncmp(text, "tessera-backup 1\n", 17) != 0)
		seen = -1;
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "parts %llu", &v) == 1) {
			r->parts = v;
			seen |= 1;
		} else if (sscanf(line, "part_size %llu", &v) == 1) {
			r->part_size = v;
			seen |= 2;
		} else if (sscanf(line, "bytes %llu", &v) == 1) {
			r->bytes = v;
			seen |= 4;
		}
	}
	if (seen != 7 || r->part_size == 0 || r->part_size > (256u << 20)) {
		*err = tl_asprintf("backup %s: its index is not one this "
				   "tessera reads",
				   r->id);
		return -EBADMSG;
	}
	return 0;
}

int
nfsd_backup_open(struct os_store *os, const char *volume, const char *id,
		 struct nfsd_backup_reader **out, char **err)
{
	struct nfsd_backup_reader *r;
	struct nfsd_backup_entry *v = NULL;
	size_t n = 0, i;
	int rc;

	*out = NULL;
	*err = NULL;
	rc = nfsd_backup_list(os, volume, &v, &n);
	if (rc) {
		*err = tl_asprintf("cannot list the backups of volume '%s' "
				   "in %s: %s",
				   volume, os->url, strerror(-rc));
		return rc;
	}
	for (i = n; i-- > 0;)
		if (id == NULL ? v[i].complete : strcmp(v[i].id, id) == 0)
			break;
	if (i == SIZE_MAX || !v[i].complete) {
		*err = id == NULL ? tl_asprintf("no complete backup of volume "
						"'%s' in %s",
						volume, os->url)
		       : i == SIZE_MAX ? tl_asprintf("no backup %s of volume "
						     "'%s' in %s",
						     id, volume, os->url)
				       : tl_asprintf("backup %s of volume '%s' "
						     "is incomplete (no index)",
						     id, volume);
		free(v);
		return -ENOENT;
	}
	r = tl_calloc(1, sizeof(*r));
	r->os = os;
	snprintf(r->id, sizeof(r->id), "%s", v[i].id);
	r->prefix = backup_prefix(volume, r->id);
	free(v);
	rc = read_index(r, err);
	if (rc) {
		nfsd_backup_close(r);
		return rc;
	}
	r->buf = tl_malloc(r->part_size);
	*out = r;
	return 0;
}

const char *
nfsd_backup_reader_id(const struct nfsd_backup_reader *r)
{
	return r->id;
}

int
nfsd_backup_read(void *arg, void *buf, size_t cap, size_t *got)
{
	struct nfsd_backup_reader *r = arg;
	char *key;
	int rc;

	*got = 0;
	if (r->pos == r->len) {
		if (r->next == r->parts)
			return 0; /* the end; meta_dump checks it is one */
		key = tl_asprintf("%s%08" PRIu64, r->prefix, r->next);
		rc = os_get(r->os, key, 0, r->part_size, r->buf, &r->len);
		free(key);
		if (rc == -ENOENT)
			tl_err(BACKUP_SUB,
			       "backup %s: part %" PRIu64 " of %" PRIu64
			       " is missing",
			       r->id, r->next, r->parts);
		if (rc)
			return rc == -ENOENT ? -EIO : rc;
		r->next++;
		r->pos = 0;
	}
	*got = TL_MIN(cap, r->len - r->pos);
	memcpy(buf, r->buf + r->pos, *got);
	r->pos += *got;
	r->done += *got;
	return 0;
}

void
nfsd_backup_close(struct nfsd_backup_reader *r)
{
	if (r == NULL)
		return;
	free(r->prefix);
	free(r->buf);
	free(r);
}

/* ---- the scheduled job ----------------------------------------------------- */

struct nfsd_backup_job {
	struct meta *m;
	struct os_store *os;
	uint64_t session;
	struct nfsd_backup_opts o;
	char *tmpdir;
	uint64_t start_ns;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	uint64_t written, failed, last_ms;
};

/* One backup, claimed first; how long to wait before looking again. */
static uint64_t
backup_once(struct nfsd_backup_job *j)
{
	uint64_t interval_ns = j->o.interval_ms * 1000000ULL, now = tl_now_ns();
	uint64_t next = 0, t0;
	struct meta_dump_stats st;
	struct meta_backup b;
	unsigned pruned = 0;
	char *err = NULL, h[32];
	int rc;

	/* the holder of the background-job lease writes the backups */
	if (j->o.gate != NULL && !j->o.gate(j->o.gate_arg))
		return TL_MIN(j->o.interval_ms, POLL_MAX_MS);
	/* A volume never backed up gets its first backup an interval after
	 * the gateway started, not at once: starting a gateway (or a test)
	 * is no reason for a backup. */
	if (now < j->start_ns + interval_ns &&
	    (meta_backup_get(j->m, &b) == -ENOENT || b.snap_ns == 0))
		return (j->start_ns + interval_ns - now) / 1000000 + 1;
	/* Only the lease holder gets here; the claim keeps two holders
	 * apart while the lease changes hands. */
	rc = meta_backup_claim(j->m, j->session, interval_ns, now, &next);
	if (rc == -EALREADY)
		return next > now ? (next - now) / 1000000 : 0;
	if (rc == -EBUSY) {
		tl_debug(BACKUP_SUB, "another gateway is writing the backup");
		return j->o.interval_ms;
	}
	if (rc) {
		tl_warn(BACKUP_SUB, "cannot claim the metadata backup: %s",
			strerror(-rc));
		return TL_MIN(j->o.interval_ms, RETRY_MAX_MS);
	}
	t0 = tl_mono_ns();
	rc = nfsd_backup_write(j->m, j->os, &j->o, &b, &st, &err);
	if (rc == 0) {
		rc = meta_backup_done(j->m, j->session, &b);
		if (rc == -ESTALE) {
			char *prefix =
				backup_prefix(meta_settings(j->m)->name, b.id);

			err = tl_strdup("another gateway took the backup over "
					"meanwhile; this one is deleted");
			delete_prefix(j->os, prefix);
			free(prefix);
		} else if (rc) {
			err = tl_asprintf("cannot record it: %s",
					  strerror(-rc));
		}
	}
	pthread_mutex_lock(&j->mu);
	j->last_ms = (tl_mono_ns() - t0) / 1000000;
	if (rc)
		j->failed++;
	else
		j->written++;
	pthread_mutex_unlock(&j->mu);
	if (rc) {
		tl_err(BACKUP_SUB, "metadata backup failed: %s", err);
		free(err);
		if (rc != -ESTALE)
			meta_backup_unclaim(j->m, j->session);
		return TL_MIN(j->o.interval_ms, RETRY_MAX_MS);
	}
	rc = nfsd_backup_prune(j->os, meta_settings(j->m)->name, j->o.keep,
			       &pruned);
	if (rc)
		tl_warn(BACKUP_SUB, "cannot delete old backups: %s",
			strerror(-rc));
	tl_notice(BACKUP_SUB,
		  "metadata backup written: %s, %" PRIu64 " keys, "
		  "%s in %" PRIu64 " ms; %u old one(s) deleted",
		  b.id, b.keys, tl_fmt_size(b.bytes, h, sizeof(h)), j->last_ms,
		  pruned);
	return j->o.interval_ms;
}

static void *
job_main(void *arg)
{
	struct nfsd_backup_job *j = arg;
	uint64_t wait_ms = TL_MIN(j->o.interval_ms, POLL_MAX_MS);
	struct timespec ts;

	pthread_mutex_lock(&j->mu);
	while (!j->stop) {
		wait_ms = TL_MIN(wait_ms, POLL_MAX_MS);
		tl_deadline_ms(CLOCK_MONOTONIC, wait_ms, &ts);
		while (!j->stop &&
		       pthread_cond_timedwait(&j->cv, &j->mu, &ts) == 0)
			;
		if (j->stop)
			break;
		pthread_mutex_unlock(&j->mu);
		wait_ms = backup_once(j);
		pthread_mutex_lock(&j->mu);
	}
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

int
nfsd_backup_start(struct meta *m, struct os_store *os, uint64_t session,
		  const struct nfsd_backup_opts *o,
		  struct nfsd_backup_job **out)
{
	struct nfsd_backup_job *j = tl_calloc(1, sizeof(*j));
	pthread_condattr_t ca;
	int rc;

	j->m = m;
	j->os = os;
	j->session = session;
	j->o = *o;
	if (o->tmpdir != NULL && o->tmpdir[0] != '\0')
		j->tmpdir = tl_strdup(o->tmpdir);
	j->o.tmpdir = j->tmpdir;
	if (j->o.keep == 0)
		j->o.keep = 1;
	j->start_ns = tl_now_ns();
	pthread_mutex_init(&j->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = j;
	if (o->interval_ms == 0)
		return 0; /* figures only: backups are off */
	rc = -pthread_create(&j->thread, NULL, job_main, j);
	if (rc) {
		j->o.interval_ms = 0;
		nfsd_backup_stop(j);
		*out = NULL;
		return rc;
	}
	return 0;
}

void
nfsd_backup_stop(struct nfsd_backup_job *j)
{
	if (j == NULL)
		return;
	if (j->o.interval_ms != 0) {
		pthread_mutex_lock(&j->mu);
		j->stop = true;
		pthread_cond_signal(&j->cv);
		pthread_mutex_unlock(&j->mu);
		pthread_join(j->thread, NULL);
	}
	pthread_cond_destroy(&j->cv);
	pthread_mutex_destroy(&j->mu);
	free(j->tmpdir);
	free(j);
}

void
nfsd_backup_stats(struct nfsd_backup_job *j, struct nfsd_backup_stats *s)
{
	pthread_mutex_lock(&j->mu);
	s->interval_ms = j->o.interval_ms;
	s->written = j->written;
	s->failed = j->failed;
	s->last_ms = j->last_ms;
	pthread_mutex_unlock(&j->mu);
}
