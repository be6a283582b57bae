/*
 * meta_schema_test.c - the engine interface (LMDB), value codecs, the
 * key order the schema relies on, volume format/open rules and
 * persistence across close and reopen.
 */
#include "config.h"

#include <pthread.h>

#include "meta/kv.h"
#include "meta/meta-internal.h"
#include "t/unit/meta_test.h"

struct seen {
	char keys[16][16];
	int n;
};

static int
seen_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct seen *s = arg;

	if (s->n < 16 && klen < 16) {
		memcpy(s->keys[s->n], key, klen);
		s->keys[s->n][klen] = 0;
	}
	return ++s->n >= 16;
}

static void
test_kv(struct fixture *f)
{
	struct meta_kv *kv;
	struct meta_kv_txn *t;
	struct seen s;
	const void *v;
	size_t vlen;
	char *err = NULL, *url;

	url = tl_asprintf("lmdb://%s/kv?mapsize=16M", f->dir);
	CHECK_FATAL(meta_kv_open(url, &kv, &err) == 0, "kv open");
	CHECK_EQ(meta_kv_begin(kv, false, &t), 0, "begin");
	meta_kv_put(t, "b", 1, "2", 1);
	meta_kv_put(t, "a", 1, "1", 1);
	meta_kv_put(t, "ab", 2, "3", 1);
	meta_kv_put(t, "c", 1, "4", 1);
	CHECK_EQ(meta_kv_get(t, "ab", 2, &v, &vlen), 0, "get own write");
	CHECK(vlen == 1 && memcmp(v, "3", 1) == 0, "value");
	CHECK_EQ(meta_kv_commit(t), 0, "commit");

	CHECK_EQ(meta_kv_begin(kv, false, &t), 0, "begin");
	meta_kv_put(t, "z", 1, "9", 1);
	CHECK_EQ(meta_kv_del(t, "a", 1), 0, "delete");
	CHECK_EQ(meta_kv_del(t, "nope", 4), 0, "delete missing is fine");
	meta_kv_abort(t);

	CHECK_EQ(meta_kv_begin(kv, true, &t), 0, "read txn");
	CHECK_EQ(meta_kv_get(t, "z", 1, &v, &vlen), -ENOENT,
		 "aborted put is gone");
	CHECK_EQ(meta_kv_get(t, "a", 1, &v, &vlen), 0,
		 "aborted delete left the key");
	memset(&s, 0, sizeof(s));
	CHECK_EQ(meta_kv_scan(t, "a", 1, "c", 1, seen_cb, &s), 0, "scan");
	CHECK(s.n == 3 && strcmp(s.keys[0], "a") == 0 &&
		      strcmp(s.keys[1], "ab") == 0 &&
		      strcmp(s.keys[2], "b") == 0,
	      "scan is ordered and the end is exclusive");
	memset(&s, 0, sizeof(s));
	CHECK_EQ(meta_kv_scan(t, "aa", 2, NULL, 0, seen_cb, &s), 0,
		 "open-ended scan");
	CHECK(s.n == 3 && strcmp(s.keys[0], "ab") == 0, "starts at >= start");
	meta_kv_abort(t);
	meta_kv_close(kv);

	/* durable: a fresh open sees the commit */
	CHECK_FATAL(meta_kv_open(url, &kv, &err) == 0, "kv reopen");
	meta_kv_begin(kv, true, &t);
	CHECK_EQ(meta_kv_get(t, "c", 1, &v, &vlen), 0, "committed key kept");
	meta_kv_abort(t);
	meta_kv_close(kv);

	CHECK_EQ(meta_kv_open("lmdb://relative", &kv, &err), -EINVAL,
		 "relative lmdb path -> EINVAL");
	free(err);
	err = NULL;
	CHECK_EQ(meta_kv_open("etcd://x", &kv, &err), -EINVAL,
		 "unknown scheme -> EINVAL");
	free(err);
	err = NULL;
	CHECK_EQ(meta_kv_open("lmdb:///tmp/x?bogus=1", &kv, &err), -EINVAL,
		 "unknown option -> EINVAL");
	free(err);
	free(url);
}

static void
test_codecs(void)
{
	struct inode in, out;
	uint8_t buf[INODE_VLEN], sb[2048];
	struct meta_settings s, s2;
	struct meta_slice sl = {0x0102030405060708ULL, 7, 8, 9, 10}, sl2;
	uint8_t rec[SLICE_REC];
	size_t n;

	memset(&in, 0, sizeof(in));
	in.a.ino = 42;
	in.a.gen = 0xdeadbeef;
	in.a.type = META_REG;
	in.a.mode = 04755;
	in.a.nlink = 3;
	in.a.uid = 1;
	in.a.gid = 2;
	in.a.size = 1ULL << 40;
	in.a.rdev_major = 8;
	in.a.rdev_minor = 1;
	in.a.atime_ns = 11;
	in.a.mtime_ns = 12;
	in.a.ctime_ns = 13;
	in.a.parent = 7;
	in.next_cookie = 99;
	in.has_verf = true;
	memcpy(in.verf, "12345678", 8);
	meta_inode_encode(&in, buf);
	CHECK_EQ(meta_inode_decode(buf, sizeof(buf), 42, &out), 0,
		 "inode decode");
	CHECK(memcmp(&in.a, &out.a, sizeof(in.a)) == 0 &&
		      out.next_cookie == 99 && out.has_verf &&
		      memcmp(out.verf, "12345678", 8) == 0,
	      "inode round trip");
	CHECK_EQ(meta_inode_decode(buf, 10, 42, &out), -EIO,
		 "short inode -> EIO");
	CHECK(buf[18] == 0x00 && buf[20] == 0x01, "size is big-endian");

	memset(&s, 0, sizeof(s));
	strcpy(s.name, "vol");
	strcpy(s.storage, "file:///x");
	s.block_size = 1 << 22;
	s.capacity = 5;
	s.max_inodes = 6;
	s.trash_days = 2;
	s.ctime_ns = 77;
	s.uuid[0] = 9;
	s.secret[31] = 8;
	n = meta_settings_encode(&s, sb, sizeof(sb));
	CHECK(n > 0, "settings encode");
	CHECK_EQ(meta_settings_decode(sb, n, &s2), 0, "settings decode");
	CHECK(memcmp(&s, &s2, sizeof(s)) == 0, "settings round trip");
	CHECK_EQ(meta_settings_decode(sb, n - 3, &s2), -EIO,
		 "truncated -> EIO");

	meta_slice_encode(&sl, rec);
	meta_slice_decode(rec, &sl2);
	CHECK(memcmp(&sl, &sl2, sizeof(sl)) == 0, "slice round trip");
}

static void
test_keys(void)
{
	struct meta m;
	struct meta_key a, b;

	memset(&m, 0, sizeof(m));
	memcpy(m.pfx, "v", 2);
	m.pfxlen = 2;
	meta_key_order(&m, &a, 5, 255);
	meta_key_order(&m, &b, 5, 256);
	CHECK(memcmp(a.b, b.b, a.len) < 0, "cookies sort numerically");
	meta_key_ino(&m, &a, 255, 'I');
	meta_key_ino(&m, &b, 256, 'D');
	CHECK(memcmp(a.b, b.b, a.len) < 0, "inodes sort numerically");
	meta_key_ino(&m, &a, 5, 'O');
	CHECK(a.len == 2 + 1 + 8 + 1 && a.b[0] == 'v' && a.b[1] == 0 &&
		      a.b[2] == 'A',
	      "key is volume name, NUL, tag");
	meta_key_registry(&a, "v");
	CHECK(a.b[0] == 0 && a.b[1] == 'V', "registry outside volumes");
}

static void
test_volumes(struct fixture *f)
{
	struct meta_format_opts o = {"one", "file:///tmp/o", 0, 0, 0, 0, false};
	struct meta *m;
	char *err = NULL;

	CHECK_EQ(meta_open(f->url, NULL, &m, &err), -ENOENT,
		 "open an empty engine -> ENOENT");
	CHECK(err != NULL, "with a message");
	free(err);
	CHECK_EQ(meta_format(f->url, &o, NULL), 0, "format one");
	CHECK_EQ(meta_format(f->url, &o, &err), -EEXIST,
		 "format again -> EEXIST");
	CHECK(err && strstr(err, "--force"), "message names --force");
	free(err);
	o.name = "bad name";
	CHECK_EQ(meta_format(f->url, &o, NULL), -EINVAL, "bad name");
	o.name = "two";
	o.block_size = 3 << 20;
	CHECK_EQ(meta_format(f->url, &o, NULL), -EINVAL, "bad block size");
	o.block_size = 64 << 10;
	CHECK_EQ(meta_open(f->url, NULL, &m, NULL), 0, "open the only one");
	CHECK(strcmp(meta_settings(m)->name, "one") == 0 &&
		      meta_settings(m)->block_size == 4 << 20,
	      "default block size 4M");
	meta_close(m);
	CHECK_EQ(meta_format(f->url, &o, NULL), 0, "format two");
	CHECK_EQ(meta_open(f->url, NULL, &m, &err), -EINVAL,
		 "two volumes need a name");
	free(err);
	CHECK_EQ(meta_open(f->url, "two", &m, NULL), 0, "open two by name");
	CHECK_EQ(meta_settings(m)->block_size, 64 << 10, "two's block size");
	mk(m, &root_cred, 1, "only-in-two", META_REG, 0644, NULL);
	meta_close(m);
	CHECK_EQ(meta_open(f->url, "one", &m, NULL), 0, "open one by name");
	{
		uint64_t ino;

		CHECK_EQ(meta_lookup(m, &root_cred, 1, "only-in-two", &ino,
				     NULL),
			 -ENOENT, "volumes are separate");
	}
	meta_close(m);
	o.force = true;
	o.name = "one";
	CHECK_EQ(meta_format(f->url, &o, NULL), 0, "format --force");
}

static void
test_persistence(struct fixture *f)
{
	struct meta *m = fixture_volume(f, 0, 0);
	struct meta_slice_write w = {0, {0, 4096, 0, 4096, 0}};
	uint64_t d, fi, id1, id2, ino;
	struct meta_attr a;
	struct meta_usage u;

	d = mk(m, &root_cred, 1, "keep", META_DIR, 0750, NULL);
	fi = mk(m, &root_cred, d, "f", META_REG, 0600, NULL);
	meta_new_slice_id(m, &id1);
	w.s.id = id1;
	CHECK_EQ(meta_write_slices(m, fi, &w, 1, 5, NULL, NULL), 0, "write");
	meta_close(m);
	CHECK_EQ(meta_open(f->url, "test", &m, NULL), 0, "reopen");
	CHECK_EQ(meta_resolve(m, "/keep/f", &ino), 0, "path survives");
	CHECK_EQ(ino, fi, "same inode");
	meta_getattr(m, fi, &a);
	CHECK(a.size == 4096 && a.mode == 0600 && a.mtime_ns == 5,
	      "attributes survive");
	meta_usage(m, &u);
	CHECK(u.used_bytes == 4096 && u.used_inodes == 3, "usage survives");
	ino = mk(m, &root_cred, 1, "new", META_REG, 0644, NULL);
	CHECK(ino > fi, "inode numbers continue after reopen");
	meta_new_slice_id(m, &id2);
	CHECK(id2 > id1, "slice ids continue after reopen");
	meta_close(m);
}

struct worker {
	struct meta *m;
	uint64_t dir;
	int failed;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	char name[32];
	int rc;

	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		mk(w->m, &root_cred, w->dir, name, META_REG, 0644, &rc);
		w->failed += rc != 0;
	}
	return NULL;
}

/* Two handles on one engine in one process share the environment, and
 * creates from several threads all land with exact counters. */
static void
test_threads(struct fixture *f)
{
	struct meta *m, *m2;
	struct worker w[4];
	pthread_t th[4];
	struct meta_usage u0, u;
	char name[8];
	int failed = 0;

	CHECK_FATAL(meta_open(f->url, "test", &m, NULL) == 0, "open");
	CHECK_EQ(meta_open(f->url, "test", &m2, NULL), 0, "open it twice");
	meta_usage(m, &u0);
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		w[i].m = i % 2 ? m2 : m;
		w[i].dir = mk(m, &root_cred, 1, name, META_DIR, 0755, NULL);
		w[i].failed = 0;
		pthread_create(&th[i], NULL, worker_run, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		failed += w[i].failed;
	}
	CHECK_EQ(failed, 0, "800 creates from 4 threads");
	meta_close(m2);
	CHECK_EQ(meta_usage(m, &u), 0,
		 "first handle works after the second "
		 "closed");
	CHECK_EQ(u.used_inodes - u0.used_inodes, 804, "inode count exact");
	meta_close(m);
}

int
main(void)
{
	struct fixture f;

	fixture_init(&f);
	test_kv(&f);
	test_codecs();
	test_keys();
	test_volumes(&f);
	test_persistence(&f);
	test_threads(&f);
	fixture_done(&f);
	return tap_done();
}
