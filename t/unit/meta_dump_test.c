/*
 * meta_dump_test.c - meta_dump / meta_dump_verify / meta_load on real
 * LMDB engines (meta.h, "metadata dump and load"; doc/DUMP.md):
 *
 *  - a volume with every kind of inode (a file of many slices in two
 *    chunks, hard links, a symlink, character and block devices, a fifo,
 *    a socket, directories, a directory of 1,000 entries, a name that is
 *    not UTF-8, a removed file waiting for gc), a live gateway session
 *    and a backup record, dumped from a copy of the engine, loads into
 *    another engine (which holds another volume) identical key for key
 *    but for the session, and the loaded volume is fsck clean;
 *  - the same from the live engine (--direct) and zstd compressed;
 *  - load refuses an engine that holds the volume, and one that holds
 *    keys of it without a registered volume unless forced;
 *  - a byte changed in any record, or a dump cut anywhere, is refused by
 *    verify and by load with the number of the record it failed at, and
 *    load leaves nothing of the volume behind;
 *  - the JSON form is valid JSON (python3 -m json.tool), shows a name
 *    that is not UTF-8 in hex, and decodes every record, NFS locks (a
 *    range, a share, their client, index and count) included;
 *  - the backup record's claim: one gateway at a time, none before the
 *    interval, a stale claim is taken over.
 * TESSERA_TEST_META=raft (t/unit/meta_on_raft.sh) dumps from a one-node
 * raft:// group instead (the replica's copy) and loads into LMDB.
 */
#include "config.h"

#include "meta/kv.h"
#include "t/unit/meta_test.h"

#define BIG_DIR 1000

static struct fixture fx;

/* ---- building the volume -------------------------------------------------- */

static uint64_t
mknode(struct meta *m, uint64_t dir, const char *name, uint8_t type,
       uint32_t major, uint32_t minor)
{
	struct meta_new n = new_of(type, 0640, &root_cred);
	uint64_t ino = 0;
	int rc;

	n.rdev_major = major;
	n.rdev_minor = minor;
	n.target = type == META_LNK ? "../some/where \"quoted\"" : NULL;
	rc = meta_create(m, &root_cred, dir, name, &n, &ino, NULL, NULL, NULL,
			 NULL);
	CHECK_FATAL(rc == 0, "create %s (%d)", name, rc);
	return ino;
}

/* n slices written one after the other into ino, across chunks. */
static void
write_slices(struct meta *m, uint64_t ino, unsigned n, uint64_t step)
{
	for (unsigned i = 0; i < n; i++) {
		struct meta_slice_write w;
		uint64_t off = (uint64_t)i * step, id;

		CHECK_FATAL(meta_new_slice_id(m, &id) == 0, "slice id");
		memset(&w, 0, sizeof(w));
		w.chunk = (uint32_t)(off / META_CHUNK_SIZE);
		w.s.id = id;
		w.s.size = 65536;
		w.s.len = 65536;
		w.s.pos = (uint32_t)(off % META_CHUNK_SIZE);
		CHECK_FATAL(meta_write_slices(m, ino, &w, 1, tl_now_ns(), NULL,
					      NULL) == 0,
			    "write slice %u", i);
	}
}

static void
build(struct meta *m)
{
	uint64_t d1, sub, big, f1, gone;
	struct meta_attr a;
	char name[64];

	struct meta_quota q, qo;

	d1 = mknode(m, META_ROOT_INO, "d1", META_DIR, 0, 0);
	memset(&q, 0, sizeof(q));
	q.ino = d1;
	q.max_bytes = 1ULL << 40;
	q.max_inodes = 1000000;
	CHECK_FATAL(meta_quota_set(m, &q, NULL, NULL, &qo) == 0,
		    "a quota on d1");
	sub = mknode(m, d1, "sub", META_DIR, 0, 0);
	f1 = mknode(m, META_ROOT_INO, "f1", META_REG, 0, 0);
	write_slices(m, f1, 48, 3 << 20); /* 48 slices, chunks 0 to 2 */
	CHECK_FATAL(meta_link(m, &root_cred, f1, d1, "link1", &a, NULL, NULL) ==
			    0,
		    "hard link");
	CHECK_FATAL(
		meta_link(m, &root_cred, f1, sub, "link2", &a, NULL, NULL) == 0,
		"second hard link");
	{
		/* NFS locks: a range and a share, so a client record, its
		 * index and its count */
		struct meta_lock_where w = {"10.0.0.7", "10.0.0.1", 0, 3};
		struct meta_lock_req r;
		struct meta_lock_result res;

		memset(&r, 0, sizeof(r));
		r.owner.client = "client7";
		r.owner.client_len = 7;
		r.owner.svid = 42;
		r.owner.oh = "\x01\x02owner";
		r.owner.oh_len = 7;
		r.start = 100;
		r.end = META_LOCK_EOF;
		r.exclusive = true;
		r.where = &w;
		CHECK_FATAL(meta_lock(m, f1, &r, &res) == 0, "a lock on f1");
		r.mode = 0;
		r.access = 1;
		CHECK_FATAL(meta_share(m, f1, &r, &res) == 0, "a share on f1");
	}
	mknode(m, d1, "sym", META_LNK, 0, 0);
	mknode(m, d1, "tty", META_CHR, 4, 64);
	mknode(m, d1, "disk", META_BLK, 8, 1);
	mknode(m, sub, "pipe", META_FIFO, 0, 0);
	mknode(m, sub, "sock", META_SOCK, 0, 0);
	mknode(m, sub, "caf\xe9 \"q\"\\\n", META_REG, 0, 0); /* Latin-1 */
	gone = mk(m, &root_cred, sub, "gone", META_REG, 0644, NULL);
	write_slices(m, gone, 3, 1 << 20);
	CHECK_FATAL(meta_unlink(m, &root_cred, sub, "gone", NULL, NULL) == 0,
		    "remove a file with data");
	big = mknode(m, META_ROOT_INO, "big", META_DIR, 0, 0);
	for (int i = 0, rc = 0; i < BIG_DIR && rc == 0; i++) {
		snprintf(name, sizeof(name), "entry-%05d", i);
		if (mk(m, &root_cred, big, name, META_REG, 0644, &rc) == 0)
			CHECK_FATAL(rc == 0, "create %s (%d)", name, rc);
	}
}

/* ---- engines ----------------------------------------------------------------- */

struct mem {
	struct tl_buf b;
	size_t pos;
	size_t chunk; /* read at most this much at a time (0: all) */
};

static int
mem_write(void *arg, const void *p, size_t n)
{
	tl_buf_append(&((struct mem *)arg)->b, p, n);
	return 0;
}

static int
mem_read(void *arg, void *p, size_t cap, size_t *got)
{
	struct mem *m = arg;
	size_t n = TL_MIN(cap, m->b.len - m->pos);

	if (m->chunk)
		n = TL_MIN(n, m->chunk);
	if (n) /* an empty dump has no buffer at all */
		memcpy(p, m->b.data + m->pos, n);
	m->pos += n;
	*got = n;
	return 0;
}

/* A reader of the first len bytes of src, byte at flips changed
 * (flip == SIZE_MAX: none). */
static struct mem
mem_of(const struct tl_buf *src, size_t len, size_t flip)
{
	struct mem m = {TL_BUF_INIT, 0, 7}; /* odd reads: no alignment luck */

	tl_buf_append(&m.b, src->data, len);
	if (flip < len)
		m.b.data[flip] ^= 0x5a;
	return m;
}

struct keys {
	struct tl_buf b; /* be16 klen, key, be32 vlen, value ... */
	size_t n;
	bool skip_sessions;
	size_t pfxlen;
};

static int
keys_cb(void *arg, const void *k, size_t kl, const void *v, size_t vl)
{
	struct keys *ks = arg;
	uint8_t h[4];

	if (ks->skip_sessions && kl == ks->pfxlen + 9 &&
	    ((const uint8_t *)k)[ks->pfxlen] == 'G')
		return 0;
	tl_put_be16(h, (uint16_t)kl);
	tl_buf_append(&ks->b, h, 2);
	tl_buf_append(&ks->b, k, kl);
	tl_put_be32(h, (uint32_t)vl);
	tl_buf_append(&ks->b, h, 4);
	tl_buf_append(&ks->b, v, vl);
	ks->n++;
	return 0;
}

/* Every key of volume "test" (and its registry key) in url. */
static void
keys_of(const char *url, bool skip_sessions, struct keys *ks)
{
	struct meta_kv *kv;
	struct meta_kv_txn *t;
	char *err = NULL;

	memset(ks, 0, sizeof(*ks));
	ks->skip_sessions = skip_sessions;
	ks->pfxlen = 5;
	CHECK_FATAL(meta_kv_open(url, &kv, &err) == 0, "open %s (%s)", url,
		    err ? err : "");
	CHECK_FATAL(meta_kv_begin(kv, true, &t) == 0, "read transaction");
	CHECK_FATAL(meta_kv_scan(t, "test\0", 5, "test\1", 5, keys_cb, ks) ==
				    0 &&
			    meta_kv_scan(t, "\0Vtest", 6, "\0Vtest\0", 7,
					 keys_cb, ks) == 0,
		    "scan %s", url);
	meta_kv_abort(t);
	meta_kv_close(kv);
}

static bool
same_keys(const struct keys *a, const struct keys *b)
{
	return a->n == b->n && a->b.len == b->b.len &&
	       memcmp(a->b.data, b->b.data, a->b.len) == 0;
}

static size_t
count_keys(const char *url)
{
	struct keys ks;
	size_t n;

	keys_of(url, false, &ks);
	n = ks.n;
	tl_buf_free(&ks.b);
	return n;
}

static bool
fsck_clean(const char *url)
{
	struct meta_fsck_opts o;
	struct meta_fsck_report r;
	struct meta *m;
	char *err = NULL;
	bool ok;

	memset(&o, 0, sizeof(o));
	if (meta_open(url, "test", &m, &err) != 0) {
		printf("# open %s: %s\n", url, err ? err : "");
		free(err);
		return false;
	}
	ok = meta_fsck(m, &o, &r) == 0 && r.problems == 0;
	if (!ok)
		printf("# fsck of %s: %llu problems\n", url,
		       (unsigned long long)r.problems);
	meta_close(m);
	return ok;
}

static char *
engine(const char *name)
{
	return tl_asprintf("lmdb://%s/%s?mapsize=256M", fx.dir, name);
}

/* Record offsets of a binary (uncompressed) dump: off[i] is where
 * record i + 1 starts. */
static size_t
record_offsets(const struct tl_buf *d, size_t *off, size_t max)
{
	size_t n = 0, p = 8;

	while (p + 5 <= d->len && n < max) {
		off[n++] = p;
		p += 5 + tl_get_be32(d->data + p + 1) + 4;
	}
	return n;
}

/* ---- the checks -------------------------------------------------------------- */

static void
check_round_trip(struct meta *m, const struct tl_buf *dump,
		 const struct meta_dump_stats *st)
{
	struct meta_format_opts other = {
		"other", "file:///tmp/other", 0, 0, 0, 0, false};
	struct meta_load_opts lo = {NULL, false, NULL, NULL, 0};
	struct meta_dump_stats ls;
	struct meta_dump_info in;
	struct keys a, b;
	char *url = engine("loaded"), *err = NULL;
	struct mem r = mem_of(dump, dump->len, SIZE_MAX);
	int rc;

	(void)m;
	CHECK_FATAL(meta_format(url, &other, &err) == 0,
		    "another volume "
		    "in the target engine");
	rc = meta_load(url, &lo, mem_read, &r, &in, &ls, &err);
	CHECK(rc == 0, "load into an engine holding another volume (%s)",
	      err ? err : "");
	free(err);
	err = NULL;
	CHECK_EQ(ls.keys, st->keys, "load read every key record");
	CHECK_EQ(ls.sessions, 1, "the gateway session record is not loaded");
	CHECK(strcmp(in.volume, "test") == 0, "the header names the volume");
	keys_of(fx.url, true, &a);
	keys_of(url, false, &b);
	CHECK(a.n > BIG_DIR * 2, "the volume has %zu keys", a.n);
	CHECK(same_keys(&a, &b),
	      "loaded volume identical key for key (%zu "
	      "and %zu keys)",
	      a.n, b.n);
	CHECK(fsck_clean(url), "loaded volume is fsck clean");
	tl_buf_free(&a.b);
	tl_buf_free(&b.b);
	{
		struct meta *o = NULL;

		CHECK(meta_open(url, "other", &o, &err) == 0,
		      "the other volume is still there");
		meta_close(o);
		free(err);
		err = NULL;
	}
	/* again: the engine holds the volume now */
	r.pos = 0;
	rc = meta_load(url, &lo, mem_read, &r, NULL, NULL, &err);
	CHECK(rc == -EEXIST && err && strstr(err, "already holds"),
	      "load refuses an engine that holds the volume (%s)",
	      err ? err : "");
	free(err);
	tl_buf_free(&r.b);
	free(url);
}

static void
check_leftovers(const struct tl_buf *dump)
{
	struct meta_load_opts lo = {"test", false, NULL, NULL, 0};
	struct meta_kv *kv;
	struct meta_kv_txn *t;
	struct mem r = mem_of(dump, dump->len, SIZE_MAX);
	char *url = engine("leftover"), *err = NULL;
	int rc;

	/* what an interrupted load leaves: keys, no registry entry */
	CHECK_FATAL(meta_kv_open(url, &kv, NULL) == 0 &&
			    meta_kv_begin(kv, false, &t) == 0 &&
			    meta_kv_put(t, "test\0Cnextinode", 15,
					"\0\0\0\0\0\0\0\2", 8) == 0 &&
			    meta_kv_commit(t) == 0,
		    "a key of the volume, unregistered");
	meta_kv_close(kv);
	rc = meta_load(url, &lo, mem_read, &r, NULL, NULL, &err);
	CHECK(rc == -EEXIST && err && strstr(err, "--force"),
	      "load refuses keys an interrupted load left (%s)",
	      err ? err : "");
	free(err);
	err = NULL;
	r.pos = 0;
	lo.force = true;
	rc = meta_load(url, &lo, mem_read, &r, NULL, NULL, &err);
	CHECK(rc == 0 && fsck_clean(url), "--force clears them and loads (%s)",
	      err ? err : "");
	free(err);
	err = NULL;
	r.pos = 0;
	lo.volume = "another";
	free(url);
	url = engine("named");
	rc = meta_load(url, &lo, mem_read, &r, NULL, NULL, &err);
	CHECK(rc == -EINVAL && err && strstr(err, "not 'another'"),
	      "a dump of another volume than the one named is refused (%s)",
	      err ? err : "");
	free(err);
	tl_buf_free(&r.b);
	free(url);
}

/* Damage at byte at (or cut there when cut): verify and load refuse it,
 * naming record want (0: any), and the target holds nothing after. */
static void
check_refused(const struct tl_buf *dump, size_t at, bool cut, size_t want,
	      const char *label)
{
	/* small batches: the damage is found after some are committed */
	struct meta_load_opts lo = {NULL, false, NULL, NULL, 500};
	struct mem r = mem_of(dump, cut ? at : dump->len, cut ? SIZE_MAX : at);
	char *url = engine("refused"), *err = NULL, rec[48];
	int rc;

	snprintf(rec, sizeof(rec), "record %zu ", want);
	rc = meta_dump_verify(mem_read, &r, NULL, NULL, NULL, &err);
	CHECK(rc == -EBADMSG && err &&
		      (want == 0 || strncmp(err, rec, strlen(rec)) == 0),
	      "verify refuses %s: %s", label, err ? err : "accepted");
	free(err);
	err = NULL;
	r.pos = 0;
	rc = meta_load(url, &lo, mem_read, &r, NULL, NULL, &err);
	CHECK(rc == -EBADMSG && count_keys(url) == 0,
	      "load refuses %s and leaves nothing: %s", label,
	      err ? err : "accepted");
	free(err);
	tl_buf_free(&r.b);
	free(url);
}

static void
check_damage(const struct tl_buf *dump)
{
	size_t off[1 << 14], n = record_offsets(dump, off, TL_ARRAY_SIZE(off));
	size_t picks[] = {0, 1, 2, n / 3, n / 2, n - 3, n - 2, n - 1};
	char label[96];

	CHECK_FATAL(n > 100 && n < TL_ARRAY_SIZE(off), "%zu records", n);
	for (size_t i = 0; i < TL_ARRAY_SIZE(picks); i++) {
		size_t k = picks[i],
		       len = (k + 1 < n ? off[k + 1] : dump->len) - off[k];

		/* the body's middle, and the checksum's last byte */
		snprintf(label, sizeof(label), "a byte changed in record %zu",
			 k + 1);
		check_refused(dump, off[k] + len / 2, false, k + 1, label);
		snprintf(label, sizeof(label),
			 "a checksum changed in record "
			 "%zu",
			 k + 1);
		check_refused(dump, off[k] + len - 1, false, k + 1, label);
		snprintf(label, sizeof(label), "a dump cut inside record %zu",
			 k + 1);
		check_refused(dump, off[k] + len - 2, true, k + 1, label);
	}
	check_refused(dump, 3, false, 0, "a changed magic");
	check_refused(dump, 0, true, 0, "an empty dump");
	check_refused(dump, off[n - 1], true, 0,
		      "a dump cut before its end record");
	{
		struct mem r = mem_of(dump, dump->len, SIZE_MAX);
		char *err = NULL;

		tl_buf_append(&r.b, "x", 1);
		CHECK(meta_dump_verify(mem_read, &r, NULL, NULL, NULL, &err) ==
				      -EBADMSG &&
			      err && strstr(err, "follow"),
		      "bytes after the end record are refused (%s)",
		      err ? err : "accepted");
		free(err);
		tl_buf_free(&r.b);
	}
}

static int
dump_to(struct meta *m, const struct meta_dump_opts *o, struct tl_buf *out,
	struct meta_dump_stats *st)
{
	struct mem w = {TL_BUF_INIT, 0, 0};
	char *err = NULL;
	int rc = meta_dump(m, o, mem_write, &w, NULL, st, &err);

	if (rc)
		printf("# meta_dump: %s\n", err ? err : strerror(-rc));
	free(err);
	*out = w.b;
	return rc;
}

static void
check_forms(struct meta *m, const struct meta_dump_stats *st0)
{
	struct meta_dump_opts o = {false, 0, true, fx.dir, NULL, NULL};
	struct meta_load_opts lo = {NULL, false, NULL, NULL, 0};
	struct meta_dump_stats st;
	struct meta_dump_info in;
	struct tl_buf d;
	struct keys a, b;
	char *url, *err = NULL, *path, *cmd, *json;
	FILE *f;

	/* the live engine, one read transaction */
	CHECK(dump_to(m, &o, &d, &st) == 0 && st.keys == st0->keys &&
		      st.snapshot_bytes == 0,
	      "dump of the live engine (--direct)");
	tl_buf_free(&d);

	/* zstd */
	o.direct = false;
	o.zstd_level = 3;
	CHECK(dump_to(m, &o, &d, &st) == 0, "zstd dump");
	{
		struct mem r = mem_of(&d, d.len, SIZE_MAX);

		CHECK(meta_dump_verify(mem_read, &r, NULL, &in, NULL, &err) ==
				      0 &&
			      in.zstd,
		      "zstd dump verifies (%s)", err ? err : "");
		free(err);
		err = NULL;
		r.pos = 0;
		url = engine("zstd");
		CHECK(meta_load(url, &lo, mem_read, &r, NULL, NULL, &err) == 0,
		      "zstd dump loads (%s)", err ? err : "");
		free(err);
		err = NULL;
		keys_of(fx.url, true, &a);
		keys_of(url, false, &b);
		CHECK(same_keys(&a, &b), "identical key for key from zstd");
		tl_buf_free(&a.b);
		tl_buf_free(&b.b);
		free(url);
		tl_buf_free(&r.b);
	}
	check_refused(&d, d.len / 2, true, 0, "a zstd dump cut in half");
	check_refused(&d, d.len / 2, false, 0,
		      "a zstd dump with a byte "
		      "changed");
	tl_buf_free(&d);

	/* JSON */
	o.zstd_level = 0;
	o.json = true;
	CHECK(dump_to(m, &o, &d, &st) == 0, "JSON dump");
	path = tl_asprintf("%s/dump.json", fx.dir);
	f = fopen(path, "w");
	CHECK_FATAL(f && fwrite(d.data, 1, d.len, f) == d.len && fclose(f) == 0,
		    "write %s", path);
	cmd = tl_asprintf("python3 -m json.tool '%s' >/dev/null", path);
	CHECK(system(cmd) == 0, "python3 -m json.tool accepts the JSON dump");
	json = tl_strndup((char *)d.data, d.len);
	CHECK(strstr(json, "\"name_hex\": \"636166e9") != NULL,
	      "a name that is not UTF-8 is shown in hex");
	CHECK(strstr(json, "\"type\": \"chunk\"") != NULL &&
		      strstr(json, "\"type\": \"session\"") != NULL &&
		      strstr(json, "\"type\": \"backup\"") != NULL &&
		      strstr(json, "\"type\": \"quota_limit\"") != NULL &&
		      strstr(json, "\"type\": \"quota_usage\"") != NULL &&
		      strstr(json, "\"rdev\": [4, 64]") != NULL &&
		      strstr(json, "\"kind\": \"fifo\"") != NULL,
	      "JSON decodes chunks, sessions, the backup record, quotas, "
	      "devices");
	CHECK(strstr(json, "\"type\": \"lock\"") != NULL &&
		      strstr(json,
			     "\"kind\": \"ranges\", \"client\": \"client7\", "
			     "\"svid\": 42, \"owner\": \"01026f776e6572\"") !=
			      NULL &&
		      strstr(json,
			     "\"ranges\": [{\"start\": 100, \"end\": "
			     "18446744073709551615, \"exclusive\": true") !=
			      NULL &&
		      strstr(json, "\"kind\": \"share\"") != NULL &&
		      strstr(json, "\"mode\": 0, \"access\": 1") != NULL &&
		      strstr(json, "\"type\": \"lock_client\"") != NULL &&
		      strstr(json,
			     "\"name\": \"client7\", \"addr\": \"10.0.0.7\", "
			     "\"local_addr\": \"10.0.0.1\"") != NULL &&
		      strstr(json, "\"type\": \"lock_index\"") != NULL &&
		      strstr(json, "\"type\": \"lock_count\"") != NULL &&
		      strstr(json, "\"held\": 2") != NULL,
	      "JSON decodes the NFS lock records: ranges, share, client, "
	      "index and count");
	CHECK(strstr(json, "\"type\": \"other\"") == NULL,
	      "every record of the volume is decoded");
	free(json);
	free(cmd);
	free(path);
	tl_buf_free(&d);
}

static void
check_claims(struct meta *m, uint64_t live)
{
	uint64_t h = 3600ULL * 1000000000, now = tl_now_ns(), next = 0;
	uint64_t dead = 0x5eed;
	struct meta_backup b, got;

	memset(&b, 0, sizeof(b));
	CHECK(meta_backup_claim(m, live, h, now, NULL) == 0,
	      "a live gateway claims the first backup");
	CHECK(meta_backup_claim(m, dead, h, now, NULL) == -EBUSY,
	      "another gateway leaves it to the live claimant");
	b.snap_ns = now;
	b.bytes = 1234;
	b.keys = 56;
	strcpy(b.id, "20261207T133641.123Z");
	CHECK(meta_backup_done(m, dead, &b) == -ESTALE,
	      "a gateway without the claim cannot record a backup");
	CHECK(meta_backup_done(m, live, &b) == 0, "the claimant records it");
	CHECK(meta_backup_get(m, &got) == 0 && got.snap_ns == now &&
		      got.session == live && got.claim_session == 0 &&
		      strcmp(got.id, b.id) == 0,
	      "the record says what was written");
	CHECK(meta_backup_claim(m, dead, h, now + h / 2, &next) == -EALREADY &&
		      next == now + h,
	      "no backup is due before the interval");
	CHECK(meta_backup_claim(m, dead, h, now + h, NULL) == 0,
	      "one is due after it");
	CHECK(meta_backup_claim(m, live, h, now + h, NULL) == 0,
	      "the claim of a session without a live record is taken over");
	CHECK(meta_backup_unclaim(m, live) == 0 &&
		      meta_backup_get(m, &got) == 0 && got.claim_session == 0,
	      "a failed backup drops its claim");
	/* leave a claim in the dump */
	CHECK(meta_backup_claim(m, live, h, now + h, NULL) == 0, "claim");
}

int
main(void)
{
	struct meta_dump_opts o = {false, 0, false, NULL, NULL, NULL};
	struct meta_session_keeper *gw = NULL;
	struct meta_dump_stats st;
	struct meta_dump_info in;
	struct tl_buf d;
	struct meta *m;
	char *err = NULL;

	fixture_init(&fx);
	m = fixture_volume(&fx, 0, 0);
	build(m);
	CHECK_FATAL(meta_session_start(m, "127.0.0.1:2049", "test", 60, &gw) ==
			    0,
		    "a gateway session");
	check_claims(m, meta_session_id(gw));
	CHECK(fsck_clean(fx.url), "the volume is fsck clean");

	o.tmpdir = fx.dir;
	CHECK_FATAL(dump_to(m, &o, &d, &st) == 0, "dump from a copy");
	CHECK(st.snapshot_bytes > 0, "read from a copy of %llu bytes",
	      (unsigned long long)st.snapshot_bytes);
	CHECK(st.inodes == BIG_DIR + 11 && st.dirs == 4 &&
		      st.dentries == BIG_DIR + 12 && st.chunks == 3 &&
		      st.sessions == 1,
	      "counts: %llu inodes, %llu dirs, %llu entries, "
	      "%llu chunks",
	      (unsigned long long)st.inodes, (unsigned long long)st.dirs,
	      (unsigned long long)st.dentries, (unsigned long long)st.chunks);
	{
		struct mem r = mem_of(&d, d.len, SIZE_MAX);
		struct meta_dump_stats vs;

		CHECK(meta_dump_verify(mem_read, &r, NULL, &in, &vs, &err) ==
				      0 &&
			      vs.keys == st.keys && !in.zstd && in.copy,
		      "the dump verifies (%s)", err ? err : "");
		free(err);
		tl_buf_free(&r.b);
	}
	check_forms(m, &st);
	meta_session_stop(gw);
	/* the session record goes with the gateway; the dump keeps it */
	check_round_trip(m, &d, &st);
	check_leftovers(&d);
	check_damage(&d);
	tl_buf_free(&d);
	meta_close(m);
	fixture_done(&fx);
	return tap_done();
}
