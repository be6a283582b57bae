/*
 * kv_raft_snap.c - a node's identity, and copies of its replica.
 *
 * A libraft snapshot of a raft:// group is small: the replica is the
 * state, so a snapshot only records that the replica holds everything up
 * to a command index (after a sync, so that libraft may drop the log
 * behind it).  A node that must restore one (new, or so far behind that
 * the leader no longer has the entries) fetches a consistent copy of a
 * peer's replica that has applied at least that index: mdb_env_copyfd2
 * (compacted) streamed over an authenticated connection, SHA-256 checked
 * end to end, opened and checked (group, applied index) before it
 * replaces the node's replica.  Entries up to the copy's applied index
 * are then skipped, the later ones applied as usual.  A new node seeds
 * itself the same way before it starts libraft.
 *
 * The descriptor (libraft's snapshot data; libraft checksums its own
 * metadata file but not the data): magic "TSRS" u32, version u8 (2),
 * group id (16 bytes), applied index u64, CRC-32C u32 of what precedes.
 * One that fails the check is refused and nothing of it is applied.
 *
 * Directory of a node:
 *   identity      "tessera-raft 1\ngroup <32 hex>\nnode <id>\n", written
 *                 last when a node is made (bootstrap or seeding)
 *   replica/      the LMDB replica (replica.new/.old during a swap)
 *   log/          libraft's log, metadata and snapshots
 *   control.sock  the local tessera command's socket
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meta/kv_raft_node.h"

#define SNAP_MAGIC     0x54535253u /* "TSRS" */
#define SNAP_VERSION   2
#define SNAP_DESC_V1   (4 + 1 + 16 + 8)
#define SNAP_DESC_LEN  (SNAP_DESC_V1 + 4)
#define SNAP_CHUNK     (1u << 20)
#define FETCH_PATIENCE 6 /* times the node's timeout */

/* ---- identity ------------------------------------------------------------ */

int
meta_kvr_identity_load(const char *dir, uint8_t group[16], uint64_t *id)
{
	char *path = tl_asprintf("%s/%s", dir, KVR_IDENTITY), hex[40];
	unsigned long long nid;
	unsigned ver;
	FILE *f = fopen(path, "re");
	int rc = 0;

	free(path);
	if (f == NULL)
		return errno == ENOENT ? -ENOENT : -errno;
	if (fscanf(f, "tessera-raft %u\ngroup %32s\nnode %llu", &ver, hex,
		   &nid) != 3 ||
	    ver != 1 || strlen(hex) != 32 || nid == 0)
		rc = -EIO;
	for (int i = 0; rc == 0 && i < 16; i++) {
		unsigned b;

		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			rc = -EIO;
		group[i] = (uint8_t)b;
	}
	*id = nid;
	fclose(f);
	return rc;
}

int
meta_kvr_identity_save(const char *dir, const uint8_t group[16], uint64_t id)
{
	char *tmp = tl_asprintf("%s/%s.tmp", dir, KVR_IDENTITY);
	char *path = tl_asprintf("%s/%s", dir, KVR_IDENTITY);
	FILE *f = fopen(tmp, "we");
	int rc = 0;

	if (f == NULL) {
		rc = -errno;
		goto out;
	}
	fprintf(f, "tessera-raft 1\ngroup ");
	for (int i = 0; i < 16; i++)
		fprintf(f, "%02x", group[i]);
	fprintf(f, "\nnode %llu\n", (unsigned long long)id);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		rc = -errno;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc == 0)
		rc = tl_fsync_dir_at(AT_FDCWD, dir);
out:
	free(tmp);
	free(path);
	return rc;
}

int
meta_kvr_replica_create(const char *dir, const uint8_t group[16],
			uint64_t mapsize, char **err)
{
	struct meta_kv *kv;
	struct meta_kv_txn *t;
	uint8_t zero[8] = {0};
	int rc;

	rc = meta_kv_lmdb_open(dir, mapsize, 0, 0, &kv, err);
	if (rc)
		return rc;
	rc = meta_kv_begin(kv, false, &t);
	if (rc == 0) {
		rc = meta_kv_put(t, KVR_KEY_GROUP, KVR_KEYLEN(KVR_KEY_GROUP),
				 group, 16);
		if (rc == 0)
			rc = meta_kv_put(t, KVR_KEY_APPLIED,
					 KVR_KEYLEN(KVR_KEY_APPLIED), zero, 8);
		rc = rc ? (meta_kv_abort(t), rc) : meta_kv_commit(t);
	}
	meta_kv_close(kv);
	if (rc)
		*err = tl_asprintf("cannot write the replica in %s: %s", dir,
				   strerror(-rc));
	return rc;
}

int
meta_kvr_replica_convert(const char *dir, const uint8_t group[16],
			 uint64_t mapsize, const char *src, char **err)
{
	struct meta_kv *from = NULL;
	char *path = tl_asprintf("%s/data.mdb", dir);
	int fd = -1, rc;

	rc = meta_kv_lmdb_open(src, 0, 0, META_KV_RDONLY, &from, err);
	if (rc == 0 && mkdir(dir, 0700) < 0 && errno != EEXIST)
		rc = -errno;
	if (rc == 0) {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0)
			rc = -errno;
	}
	if (rc == 0)
		rc = meta_kv_lmdb_copyfd(from, fd);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (from)
		meta_kv_close(from);
	free(path);
	if (rc) {
		if (*err == NULL)
			*err = tl_asprintf("cannot copy %s into %s: %s", src,
					   dir, strerror(-rc));
		return rc;
	}
	/* the group's keys, at index 0, beside the volume's */
	return meta_kvr_replica_create(dir, group, mapsize, err);
}

/* ---- libraft's snapshot callbacks ---------------------------------------- */

int
meta_kvr_fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
		      unsigned *n_bufs)
{
	struct meta_kvr_node *n = fsm->data;
	uint8_t *d;
	int rc;

	/* Everything libraft applied is in the replica, on disk. */
	rc = meta_kvr_node_drain(n);
	if (rc == 0)
		rc = meta_kv_lmdb_sync(n->replica);
	if (rc) {
		tl_err(KVR_SUB, "snapshot: the replica cannot be synced: %s",
		       strerror(-rc));
		return RAFT_IOERR;
	}
	*bufs = raft_malloc(sizeof(**bufs));
	d = raft_malloc(SNAP_DESC_LEN);
	if (*bufs == NULL || d == NULL)
		abort();
	tl_put_be32(d, SNAP_MAGIC);
	d[4] = SNAP_VERSION;
	memcpy(d + 5, n->group, 16);
	tl_put_be64(d + 21, meta_kvr_node_applied(n));
	tl_put_be32(d + SNAP_DESC_V1, meta_kvr_crc32c(0, d, SNAP_DESC_V1));
	(*bufs)[0].base = d;
	(*bufs)[0].len = SNAP_DESC_LEN;
	*n_bufs = 1;
	n->snap_index = meta_kvr_node_applied(n);
	return 0;
}

static int
replica_reopen(struct meta_kvr_node *n, char **err)
{
	struct meta_kv_txn *t;
	const void *v;
	size_t vlen;
	uint64_t applied = 0;
	int rc;

	rc = meta_kv_lmdb_open(n->repdir, n->o.mapsize, META_KV_LMDB_RESIDENT,
			       0, &n->replica, err);
	if (rc)
		return rc;
	rc = meta_kv_begin(n->replica, true, &t);
	if (rc)
		return rc;
	if (meta_kv_get(t, KVR_KEY_APPLIED, KVR_KEYLEN(KVR_KEY_APPLIED), &v,
			&vlen) == 0 &&
	    vlen == 8)
		applied = tl_get_be64(v);
	meta_kv_abort(t);
	pthread_mutex_lock(&n->lock);
	n->applied = applied;
	pthread_cond_broadcast(&n->applied_cv);
	pthread_mutex_unlock(&n->lock);
	return 0;
}

static int
lookup_own(void *arg, uint64_t seq)
{
	struct meta_kvr_node *n = arg;

	return meta_kvr_session_lookup(n->replica, n->inc, seq);
}

int
meta_kvr_fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct meta_kvr_node *n = fsm->data;
	uint8_t d[SNAP_DESC_LEN];
	size_t len = buf->len;
	uint64_t index;
	uint8_t g[16];
	char *err = NULL;
	int rc;

	/* The buffer is ours once we return 0 (as we always do: a refusal
	 * fails the node instead). */
	memcpy(d, buf->base, len < sizeof(d) ? len : sizeof(d));
	raft_free(buf->base);
	buf->base = NULL;

	/* Version 1 (before the checksum) is still read: node directories
	 * written by it hold one. */
	if (len < SNAP_DESC_V1 || tl_get_be32(d) != SNAP_MAGIC ||
	    !((d[4] == SNAP_VERSION && len == SNAP_DESC_LEN) ||
	      (d[4] == 1 && len == SNAP_DESC_V1))) {
		tl_err(KVR_SUB,
		       "a snapshot that is not Tessera's (%zu bytes): "
		       "refused, nothing of it applied",
		       len);
		meta_kvr_node_fail(n, -EIO, false);
		return 0;
	}
	if (d[4] == SNAP_VERSION &&
	    tl_get_be32(d + SNAP_DESC_V1) !=
		    meta_kvr_crc32c(0, d, SNAP_DESC_V1)) {
		tl_err(KVR_SUB, "the snapshot is corrupt (checksum mismatch): "
				"refused, nothing of it applied");
		meta_kvr_node_fail(n, -EIO, false);
		return 0;
	}
	if (memcmp(d + 5, n->group, 16) != 0) {
		tl_err(KVR_SUB, "a snapshot of another group: refused");
		meta_kvr_node_fail(n, -EXDEV, false);
		return 0;
	}
	index = tl_get_be64(d + 21);
	n->snap_index = index;
	if (meta_kvr_node_applied(n) >= index)
		return 0; /* the replica already holds it */
	tl_notice(KVR_SUB,
		  "the replica (applied %llu) is behind the "
		  "snapshot at %llu: fetching a copy",
		  (unsigned long long)meta_kvr_node_applied(n),
		  (unsigned long long)index);
	rc = meta_kvr_node_drain(n);
	pthread_rwlock_wrlock(&n->swap);
	if (rc == 0) {
		meta_kv_close(n->replica);
		n->replica = NULL;
		rc = meta_kvr_replica_fetch(n, index, g, &err);
		/* the copy, or the old replica if there is none */
		{
			char *e2 = NULL;
			int rc2 = replica_reopen(n, &e2);

			if (rc2 && rc == 0) {
				rc = rc2;
				free(err);
				err = e2;
				e2 = NULL;
			}
			free(e2);
		}
	}
	pthread_rwlock_unlock(&n->swap);
	if (rc) {
		tl_err(KVR_SUB,
		       "cannot restore the snapshot at %llu: %s; "
		       "this node stops (started again, it tries again)",
		       (unsigned long long)index, err ? err : strerror(-rc));
		meta_kvr_node_fail(n, -EIO, true);
	} else {
		atomic_fetch_add(&n->st.snap_recv, 1);
		meta_kvr_node_replaced(n, lookup_own, n);
	}
	free(err);
	return 0;
}

/* ---- fetching a copy ----------------------------------------------------- */

struct cand {
	char addr[256];
};

/* Where copies may come from: the leader first, then the peers of the
 * configuration and of the options. */
static size_t
candidates(struct meta_kvr_node *n, struct cand *c, size_t max)
{
	size_t k = 0;
	char *peers, *tok, *save = NULL;

	if (n->leader_addr[0] && n->leader != n->o.id)
		snprintf(c[k++].addr, sizeof(c->addr), "%s", n->leader_addr);
	if (n->raft_inited)
		for (unsigned i = 0; i < n->raft.configuration.n && k < max;
		     i++) {
			const struct raft_server *s =
				&n->raft.configuration.servers[i];

			if (s->id != n->o.id)
				snprintf(c[k++].addr, sizeof(c->addr), "%s",
					 s->address);
		}
	peers = tl_strdup(n->o.peers ? n->o.peers : "");
	for (tok = strtok_r(peers, ",", &save); tok && k < max;
	     tok = strtok_r(NULL, ",", &save)) {
		char *at = strchr(tok, '@');
		uint64_t id = at ? strtoull(tok, NULL, 10) : 0;

		if (id == n->o.id || !at)
			continue;
		snprintf(c[k++].addr, sizeof(c->addr), "%s", at + 1);
	}
	free(peers);
	return k;
}

/* Receive one copy from addr into dir/data.mdb. */
static int
fetch_one(struct meta_kvr_node *n, const char *addr, const char *dir,
	  uint64_t min_index, uint64_t *bytes, char **err)
{
	struct meta_kvr_session ss;
	struct tl_buf f = TL_BUF_INIT;
	uint8_t req[9], pg[16], md[32];
	unsigned mdlen = 0;
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	char *path = tl_asprintf("%s/data.mdb", dir);
	int sock, fd = -1, rc;

	*bytes = 0;
	sock = meta_kvr_dial(addr, &n->secret, KVR_CH_SNAP, n->group, n->o.id,
			     n->o.address, pg, &ss, err);
	if (sock < 0) {
		free(path);
		EVP_MD_CTX_free(h);
		return sock;
	}
	req[0] = 'Q';
	tl_put_be64(req + 1, min_index);
	rc = meta_kvr_send_frame(sock, &ss, req, sizeof(req));
	if (rc == 0)
		rc = meta_kvr_recv_frame(sock, &ss, &f);
	if (rc == 0 && (f.len < 10 || f.data[0] != 'H'))
		rc = -EPROTO;
	if (rc == 0 && f.data[1] != 0) {
		*err = tl_asprintf("%s has not applied index %llu yet", addr,
				   (unsigned long long)min_index);
		rc = -EAGAIN;
	}
	if (rc == 0) {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0)
			rc = -errno;
	}
	if (rc == 0)
		EVP_DigestInit_ex(h, EVP_sha256(), NULL);
	while (rc == 0) {
		rc = meta_kvr_recv_frame(sock, &ss, &f);
		if (rc)
			break;
		if (f.len >= 1 && f.data[0] == 'D') {
			EVP_DigestUpdate(h, f.data + 1, f.len - 1);
			rc = tl_io_full(fd, f.data + 1, f.len - 1, TL_IO_WRITE);
			*bytes += f.len - 1;
			continue;
		}
		if (f.len == 1 + 8 + 32 && f.data[0] == 'E') {
			EVP_DigestFinal_ex(h, md, &mdlen);
			if (tl_get_be64(f.data + 1) != *bytes ||
			    memcmp(md, f.data + 9, 32) != 0) {
				*err = tl_asprintf("the copy from %s is "
						   "corrupt (checksum)",
						   addr);
				rc = -EIO;
			}
			break;
		}
		if (f.len >= 1 && f.data[0] == 'X') {
			*err = tl_asprintf("%s could not copy its replica",
					   addr);
			rc = -EIO;
			break;
		}
		rc = -EPROTO;
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (rc && *err == NULL)
		*err = tl_asprintf("copy from %s: %s", addr, strerror(-rc));
	close(sock);
	meta_kvr_session_free(&ss);
	tl_buf_free(&f);
	EVP_MD_CTX_free(h);
	free(path);
	return rc;
}

/* Open the received copy and check it is of the group and recent. */
static int
check_copy(struct meta_kvr_node *n, const char *dir, uint64_t min_index,
	   uint8_t group[16], char **err)
{
	struct meta_kv *kv;
	struct meta_kv_txn *t;
	const void *v;
	size_t vlen;
	uint64_t applied = 0;
	static const uint8_t zero[16];
	int rc;

	rc = meta_kv_lmdb_open(dir, n->o.mapsize, 0, 0, &kv, err);
	if (rc)
		return rc;
	rc = meta_kv_begin(kv, true, &t);
	if (rc == 0) {
		if (meta_kv_get(t, KVR_KEY_GROUP, KVR_KEYLEN(KVR_KEY_GROUP), &v,
				&vlen) == 0 &&
		    vlen == 16)
			memcpy(group, v, 16);
		else
			rc = -EIO;
		if (meta_kv_get(t, KVR_KEY_APPLIED, KVR_KEYLEN(KVR_KEY_APPLIED),
				&v, &vlen) == 0 &&
		    vlen == 8)
			applied = tl_get_be64(v);
		else
			rc = -EIO;
		meta_kv_abort(t);
	}
	meta_kv_close(kv);
	if (rc)
		*err = tl_asprintf("the copy is not a replica");
	else if (memcmp(n->group, zero, 16) != 0 &&
		 memcmp(group, n->group, 16) != 0) {
		*err = tl_asprintf("the copy belongs to another group");
		rc = -EXDEV;
	} else if (applied < min_index) {
		*err = tl_asprintf("the copy is at %llu, not %llu",
				   (unsigned long long)applied,
				   (unsigned long long)min_index);
		rc = -EAGAIN;
	}
	return rc;
}

static int
rm_tree(const char *path)
{
	char *cmd = tl_asprintf("rm -rf -- '%s'", path);
	int rc = system(cmd);

	free(cmd);
	return rc == 0 ? 0 : -EIO;
}

int
meta_kvr_replica_fetch(struct meta_kvr_node *n, uint64_t min_index,
		       uint8_t group_out[16], char **err)
{
	char *tmp = tl_asprintf("%s.new", n->repdir);
	char *old = tl_asprintf("%s.old", n->repdir);
	uint64_t dl = tl_mono_ns() +
		      FETCH_PATIENCE * (uint64_t)n->o.timeout_ms * 1000000ULL;
	uint64_t bytes;
	uint64_t t0 = tl_mono_ns();
	struct cand c[16];
	int rc = -EHOSTUNREACH;
	char *e = NULL;

	for (;;) {
		size_t k = candidates(n, c, TL_ARRAY_SIZE(c));

		for (size_t i = 0; i < k; i++) {
			free(e);
			e = NULL;
			rm_tree(tmp);
			if (mkdir(tmp, 0700) < 0) {
				rc = -errno;
				e = tl_asprintf("cannot create %s", tmp);
				break;
			}
			rc = fetch_one(n, c[i].addr, tmp, min_index, &bytes,
				       &e);
			if (rc == 0)
				rc = check_copy(n, tmp, min_index, group_out,
						&e);
			if (rc == 0) {
				tl_notice(KVR_SUB,
					  "copied the replica from %s: "
					  "%llu bytes in %.1f s",
					  c[i].addr, (unsigned long long)bytes,
					  (tl_mono_ns() - t0) / 1e9);
				break;
			}
			tl_warn(KVR_SUB, "no replica copy: %s", e);
		}
		if (rc == 0 || rc == -EXDEV || k == 0 || tl_mono_ns() > dl)
			break;
		usleep(500 * 1000);
	}
	if (rc == 0) {
		/* swap: replica -> .old, .new -> replica */
		rm_tree(old);
		if (rename(n->repdir, old) < 0 && errno != ENOENT)
			rc = -errno;
		if (rc == 0 && rename(tmp, n->repdir) < 0)
			rc = -errno;
		if (rc == 0)
			rc = tl_fsync_dir_at(AT_FDCWD, n->o.dir);
		rm_tree(old);
		if (rc)
			e = tl_asprintf("cannot put the copy in place: %s",
					strerror(-rc));
	}
	rm_tree(tmp);
	if (rc)
		*err = e ? e
			 : tl_asprintf("no peer to copy the replica from "
				       "(raft_peers)");
	else
		free(e);
	free(tmp);
	free(old);
	return rc;
}

/* ---- serving a copy ------------------------------------------------------ */

bool
meta_kvr_snap_begin(struct meta_kvr_node *n, int fd)
{
	bool ok;

	pthread_mutex_lock(&n->lock);
	ok = !n->stopping && n->snap_busy < TL_ARRAY_SIZE(n->snap_fds);
	if (ok)
		n->snap_fds[n->snap_busy++] = fd;
	pthread_mutex_unlock(&n->lock);
	return ok;
}

void
meta_kvr_snap_end(struct meta_kvr_node *n, int fd)
{
	pthread_mutex_lock(&n->lock);
	for (unsigned i = 0; i < n->snap_busy; i++)
		if (n->snap_fds[i] == fd) {
			n->snap_fds[i] = n->snap_fds[--n->snap_busy];
			break;
		}
	pthread_cond_broadcast(&n->snap_cv);
	pthread_mutex_unlock(&n->lock);
}

/* The node stops: cut the copies being sent and wait for their threads. */
void
meta_kvr_snap_stop(struct meta_kvr_node *n)
{
	pthread_mutex_lock(&n->lock);
	for (unsigned i = 0; i < n->snap_busy; i++)
		shutdown(n->snap_fds[i], SHUT_RDWR);
	while (n->snap_busy > 0)
		pthread_cond_wait(&n->snap_cv, &n->lock);
	pthread_mutex_unlock(&n->lock);
}

struct copier {
	struct meta_kv *kv;
	int fd;
	int rc;
};

static void *
copier_main(void *arg)
{
	struct copier *c = arg;
	sigset_t set;

	/* a reader that went away makes write fail (EPIPE), not kill us */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	c->rc = meta_kv_lmdb_copyfd(c->kv, c->fd);
	close(c->fd);
	return NULL;
}

void
meta_kvr_snap_serve(struct meta_kvr_node *n, int fd,
		    struct meta_kvr_session *ss, const uint8_t *req, size_t len)
{
	uint8_t h[10], e[41], *buf = NULL;
	uint64_t min, total = 0;
	struct copier cp;
	pthread_t th;
	EVP_MD_CTX *md = NULL;
	unsigned mdlen = 0;
	int p[2] = {-1, -1}, rc;
	bool held = false, started = false;

	if (len != 9 || req[0] != 'Q')
		goto out;
	min = tl_get_be64(req + 1);
	rc = meta_kvr_node_wait_applied(n, min, tl_mono_ns() + 5000000000ULL);
	h[0] = 'H';
	h[1] = rc == 0 ? 0 : 1;
	tl_put_be64(h + 2, meta_kvr_node_applied(n));
	if (meta_kvr_send_frame(fd, ss, h, sizeof(h)) || rc)
		goto out;
	if (pipe2(p, O_CLOEXEC) < 0)
		goto out;
	pthread_rwlock_rdlock(&n->swap);
	held = true;
	cp.kv = n->replica;
	cp.fd = p[1];
	cp.rc = 0;
	if (pthread_create(&th, NULL, copier_main, &cp) != 0) {
		close(p[1]);
		goto out;
	}
	started = true;
	md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	buf = tl_malloc(SNAP_CHUNK + 1);
	buf[0] = 'D';
	for (;;) {
		ssize_t r = read(p[0], buf + 1, SNAP_CHUNK);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		EVP_DigestUpdate(md, buf + 1, (size_t)r);
		total += (uint64_t)r;
		if (meta_kvr_send_frame(fd, ss, buf, (size_t)r + 1) != 0)
			break;
	}
	close(p[0]);
	p[0] = -1;
	pthread_join(th, NULL);
	started = false;
	if (cp.rc) {
		tl_err(KVR_SUB, "cannot copy the replica: %s",
		       strerror(-cp.rc));
		meta_kvr_send_frame(fd, ss, "X", 1);
		goto out;
	}
	EVP_DigestFinal_ex(md, e + 9, &mdlen);
	e[0] = 'E';
	tl_put_be64(e + 1, total);
	if (meta_kvr_send_frame(fd, ss, e, sizeof(e)) == 0) {
		atomic_fetch_add(&n->st.snap_sent, 1);
		tl_notice(KVR_SUB, "sent a copy of the replica (%llu bytes)",
			  (unsigned long long)total);
	}
out:
	if (p[0] >= 0)
		close(p[0]);
	if (started)
		pthread_join(th, NULL);
	if (held)
		pthread_rwlock_unlock(&n->swap);
	EVP_MD_CTX_free(md);
	free(buf);
}
