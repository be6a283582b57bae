/*
 * dump_json.c - a volume's metadata as readable JSON (tessera dump
 * --json; doc/DUMP.md, "JSON").
 *
 * One object: the header's fields, "records", an array with one object
 * per key in key order (one per line, so grep and diff work), and a
 * "summary".  Each record says its "type" and its decoded fields; a key
 * this file does not know, or a value it cannot decode, is shown as
 * "key_hex" and "value_hex", so nothing of the volume is left out.
 * Names and symlink targets are JSON strings when they are valid UTF-8,
 * otherwise "name_hex" / "target_hex".  Times are integers in ns since
 * the epoch; modes are octal strings.  The per-volume handle key of the
 * settings is not shown: JSON is for reading, `tessera load` reads the
 * binary form only.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "meta/lock-internal.h"
#include "meta/meta-internal.h"

#define JSON_FLUSH (64u << 10)

struct dump_json {
	meta_dump_write_fn w;
	void *arg;
	struct meta_dump_stats *st;
	struct tl_buf b;
	bool first;
	int rc;
};

struct dump_json *
meta_dump_json_new(meta_dump_write_fn w, void *arg, struct meta_dump_stats *st)
{
	struct dump_json *j = tl_calloc(1, sizeof(*j));

	j->w = w;
	j->arg = arg;
	j->st = st;
	j->first = true;
	return j;
}

void
meta_dump_json_free(struct dump_json *j)
{
	tl_buf_free(&j->b);
	free(j);
}

static int
flush(struct dump_json *j)
{
	if (j->rc == 0 && j->b.len > 0)
		j->rc = j->w(j->arg, j->b.data, j->b.len);
	j->st->stream_bytes += j->b.len;
	tl_buf_reset(&j->b);
	return j->rc;
}

static void __attribute__((format(printf, 2, 3)))
out(struct dump_json *j, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tl_buf_vprintf(&j->b, fmt, ap);
	va_end(ap);
}

static void
hex(struct dump_json *j, const uint8_t *p, size_t n)
{
	static const char d[] = "0123456789abcdef";

	tl_buf_reserve(&j->b, 2 * n + 2);
	j->b.data[j->b.len++] = '"';
	for (size_t i = 0; i < n; i++) {
		j->b.data[j->b.len++] = (uint8_t)d[p[i] >> 4];
		j->b.data[j->b.len++] = (uint8_t)d[p[i] & 15];
	}
	j->b.data[j->b.len++] = '"';
}

/* Valid UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF). */
static bool
utf8_ok(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = p[i];
		size_t len;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if ((len == 3 &&
		     (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		i += len;
	}
	return true;
}

/* "field": "text", or "field_hex": "..." when p is not UTF-8. */
static void
text(struct dump_json *j, const char *field, const uint8_t *p, size_t n)
{
	if (!utf8_ok(p, n)) {
		out(j, ", \"%s_hex\": ", field);
		hex(j, p, n);
		return;
	}
	out(j, ", \"%s\": \"", field);
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];

		if (c == '"' || c == '\\')
			out(j, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			out(j, "\\u%04x", c);
		else
			tl_buf_append(&j->b, &c, 1);
	}
	out(j, "\"");
}

static void
u64(struct dump_json *j, const char *field, uint64_t v)
{
	out(j, ", \"%s\": %llu", field, (unsigned long long)v);
}

static const char *
kind(uint8_t t)
{
	static const char *const names[] = {
		[META_REG] = "file",    [META_DIR] = "directory",
		[META_BLK] = "block",   [META_CHR] = "char",
		[META_LNK] = "symlink", [META_SOCK] = "socket",
		[META_FIFO] = "fifo",
	};

	return t < TL_ARRAY_SIZE(names) && names[t] ? names[t] : "unknown";
}

static void
uuid(struct dump_json *j, const uint8_t u[16])
{
	out(j, ", \"uuid\": \"");
	for (int i = 0; i < 16; i++)
		out(j, "%s%02x",
		    i == 4 || i == 6 || i == 8 || i == 10 ? "-" : "", u[i]);
	out(j, "\"");
}

/* ---- records --------------------------------------------------------------
 * Each returns false when the value does not decode (the record is then
 * shown raw). */

static bool
r_settings(struct dump_json *j, const uint8_t *v, size_t vl)
{
	struct meta_settings s;

	if (meta_settings_decode(v, vl, &s) != 0)
		return false;
	out(j, "\"type\": \"settings\"");
	text(j, "name", (const uint8_t *)s.name, strlen(s.name));
	uuid(j, s.uuid);
	u64(j, "block_size", s.block_size);
	u64(j, "trash_days", s.trash_days);
	u64(j, "capacity", s.capacity);
	u64(j, "max_inodes", s.max_inodes);
	u64(j, "ctime_ns", s.ctime_ns);
	text(j, "storage", (const uint8_t *)s.storage, strlen(s.storage));
	out(j, ", \"secret\": \"(not shown)\"");
	return true;
}

static bool
r_inode(struct dump_json *j, uint64_t ino, const uint8_t *v, size_t vl)
{
	struct inode in;
	const struct meta_attr *a = &in.a;

	if (vl < INODE_VLEN_V1 || v[0] != 1)
		return false; /* inode_decode would log */
	meta_inode_decode(v, vl, ino, &in);
	out(j, "\"type\": \"inode\"");
	u64(j, "ino", ino);
	out(j, ", \"kind\": \"%s\", \"mode\": \"%04o\"", kind(a->type),
	    a->mode);
	u64(j, "nlink", a->nlink);
	u64(j, "uid", a->uid);
	u64(j, "gid", a->gid);
	u64(j, "size", a->size);
	if (a->type == META_REG)
		u64(j, "written", a->written);
	if (a->type == META_BLK || a->type == META_CHR)
		out(j, ", \"rdev\": [%u, %u]", a->rdev_major, a->rdev_minor);
	u64(j, "atime_ns", a->atime_ns);
	u64(j, "mtime_ns", a->mtime_ns);
	u64(j, "ctime_ns", a->ctime_ns);
	u64(j, "parent", a->parent);
	u64(j, "generation", a->gen);
	if (a->type == META_DIR)
		u64(j, "next_cookie", in.next_cookie);
	if (in.has_verf) {
		out(j, ", \"create_verifier\": ");
		hex(j, in.verf, 8);
	}
	return true;
}

static bool
r_ino(struct dump_json *j, const uint8_t *k, size_t kl, const uint8_t *v,
      size_t vl)
{
	uint64_t ino = tl_get_be64(k + 1);
	const uint8_t *rest = k + 10;
	size_t rl = kl - 10;

	switch (k[9]) {
	case 'I':
		return rl == 0 && r_inode(j, ino, v, vl);
	case 'D':
		if (vl != 17)
			return false;
		out(j, "\"type\": \"entry\"");
		u64(j, "dir", ino);
		text(j, "name", rest, rl);
		out(j, ", \"kind\": \"%s\"", kind(v[0]));
		u64(j, "ino", tl_get_be64(v + 1));
		u64(j, "cookie", tl_get_be64(v + 9));
		return true;
	case 'O':
		if (rl != 8 || vl < 9)
			return false;
		out(j, "\"type\": \"index\"");
		u64(j, "dir", ino);
		u64(j, "cookie", tl_get_be64(rest));
		u64(j, "ino", tl_get_be64(v));
		out(j, ", \"kind\": \"%s\"", kind(v[8]));
		text(j, "name", v + 9, vl - 9);
		return true;
	case 'C':
		if (rl != 4 || vl % SLICE_REC != 0)
			return false;
		out(j, "\"type\": \"chunk\"");
		u64(j, "ino", ino);
		u64(j, "chunk", tl_get_be32(rest));
		out(j, ", \"slices\": [");
		for (size_t i = 0; i < vl / SLICE_REC; i++) {
			struct meta_slice s;

			meta_slice_decode(v + i * SLICE_REC, &s);
			out(j,
			    "%s{\"id\": %llu, \"size\": %u, \"off\": %u, "
			    "\"len\": %u, \"pos\": %u}",
			    i ? ", " : "", (unsigned long long)s.id, s.size,
			    s.off, s.len, s.pos);
		}
		out(j, "]");
		return true;
	case 'S':
		if (rl != 0)
			return false;
		out(j, "\"type\": \"symlink\"");
		u64(j, "ino", ino);
		text(j, "target", v, vl);
		return true;
	case 'L':
		if (rl != 8 || vl != 4)
			return false;
		out(j, "\"type\": \"links\"");
		u64(j, "ino", ino);
		u64(j, "dir", tl_get_be64(rest));
		u64(j, "count", tl_get_be32(v));
		return true;
	default:
		return false;
	}
}

static bool
r_session(struct dump_json *j, const uint8_t *k, const uint8_t *v, size_t vl)
{
	struct meta_session s;

	if (meta_session_decode(tl_get_be64(k + 1), v, vl, &s) != 0)
		return false;
	out(j, "\"type\": \"session\", \"id\": \"%016llx\"",
	    (unsigned long long)s.id);
	text(j, "host", (const uint8_t *)s.host, strlen(s.host));
	text(j, "addr", (const uint8_t *)s.addr, strlen(s.addr));
	text(j, "version", (const uint8_t *)s.version, strlen(s.version));
	u64(j, "pid", s.pid);
	u64(j, "start_ns", s.start_ns);
	u64(j, "heartbeat_ns", s.heartbeat_ns);
	u64(j, "seq", s.seq);
	u64(j, "ttl_s", s.ttl_s);
	return true;
}

static bool
r_backup(struct dump_json *j, const uint8_t *v, size_t vl)
{
	struct meta_backup b;

	if (meta_backup_decode(v, vl, &b) != 0)
		return false;
	out(j, "\"type\": \"backup\"");
	u64(j, "snap_ns", b.snap_ns);
	u64(j, "done_ns", b.done_ns);
	out(j, ", \"session\": \"%016llx\"", (unsigned long long)b.session);
	u64(j, "bytes", b.bytes);
	u64(j, "keys", b.keys);
	text(j, "id", (const uint8_t *)b.id, strlen(b.id));
	out(j, ", \"claim_session\": \"%016llx\"",
	    (unsigned long long)b.claim_session);
	u64(j, "claim_ns", b.claim_ns);
	return true;
}

/* A slice key (K, R): id be64, size be32. */
static bool
r_slice(struct dump_json *j, const char *type, const uint8_t *k, size_t kl,
	const uint8_t *v, size_t vl)
{
	if (kl != 13)
		return false;
	out(j, "\"type\": \"%s\"", type);
	u64(j, "slice", tl_get_be64(k + 1));
	u64(j, "size", tl_get_be32(k + 9));
	if (k[0] == 'K') {
		if (vl != 8)
			return false;
		u64(j, "count", tl_get_be64(v));
	}
	return true;
}

/* ---- NFS locks (lock.c has the layouts) ---------------------------------- */

static void
field_hex(struct dump_json *j, const char *field, const uint8_t *p, size_t n)
{
	out(j, ", \"%s\": ", field);
	hex(j, p, n);
}

/* N<ino><owner id>: one owner's ranges, or its share reservation. */
static bool
r_lock(struct dump_json *j, const uint8_t *k, size_t kl, const uint8_t *v,
       size_t vl)
{
	struct lrec r;

	if (kl != 1 + 8 + LOCK_ID || meta_lk_rec_decode(v, vl, &r) != 0)
		return false;
	out(j, "\"type\": \"lock\"");
	u64(j, "ino", tl_get_be64(k + 1));
	field_hex(j, "owner_id", k + 9, LOCK_ID);
	out(j, ", \"kind\": \"%s\"", r.kind == KIND_SHARE ? "share" : "ranges");
	text(j, "client", r.name, r.name_len);
	u64(j, "svid", r.svid);
	field_hex(j, "owner", r.oh, r.oh_len);
	u64(j, "nsm_state", r.state);
	if (r.kind == KIND_SHARE) {
		u64(j, "mode", r.mode);
		u64(j, "access", r.access);
		u64(j, "epoch", r.epoch);
	} else {
		out(j, ", \"ranges\": [");
		for (size_t i = 0; i < r.n; i++) {
			/* end is exclusive; UINT64_MAX: to the end of file */
			out(j,
			    "%s{\"start\": %llu, \"end\": %llu, "
			    "\"exclusive\": %s, \"epoch\": %u}",
			    i ? ", " : "", (unsigned long long)r.r[i].start,
			    (unsigned long long)r.r[i].end,
			    r.r[i].exclusive ? "true" : "false", r.r[i].epoch);
		}
		out(j, "]");
	}
	meta_lk_rec_free(&r);
	return true;
}

/* M<client id>: an NFS lock client. */
static bool
r_lock_client(struct dump_json *j, const uint8_t *k, size_t kl,
	      const uint8_t *v, size_t vl)
{
	struct meta_lock_client *c;
	bool ok = false;

	if (kl != 1 + LOCK_ID)
		return false;
	c = tl_malloc(sizeof(*c));
	if (meta_lk_client_decode(v, vl, c) == 0) {
		out(j, "\"type\": \"lock_client\"");
		field_hex(j, "client_id", k + 1, LOCK_ID);
		text(j, "name", (const uint8_t *)c->name, c->name_len);
		text(j, "addr", (const uint8_t *)c->addr, strlen(c->addr));
		text(j, "local_addr", (const uint8_t *)c->local,
		     strlen(c->local));
		out(j, ", \"session\": \"%016llx\"",
		    (unsigned long long)c->session);
		u64(j, "epoch", c->epoch);
		out(j, ", \"nsm_state\": %d", c->state);
		u64(j, "grace_until_ns", c->grace_until_ns);
		out(j, ", \"notified\": %s", c->notified ? "true" : "false");
		ok = true;
	}
	free(c);
	return ok;
}

/* n<client id><ino><owner id>: the index of a client's locks; m<client
 * id>: how many ranges and shares it holds. */
static bool
r_lock_index(struct dump_json *j, const uint8_t *k, size_t kl, const uint8_t *v,
	     size_t vl)
{
	if (k[0] == 'n') {
		if (kl != 1 + LOCK_ID + 8 + LOCK_ID || vl != 0)
			return false;
		out(j, "\"type\": \"lock_index\"");
		field_hex(j, "client_id", k + 1, LOCK_ID);
		u64(j, "ino", tl_get_be64(k + 1 + LOCK_ID));
		field_hex(j, "owner_id", k + 1 + LOCK_ID + 8, LOCK_ID);
		return true;
	}
	if (kl != 1 + LOCK_ID || vl != 8)
		return false;
	out(j, "\"type\": \"lock_count\"");
	field_hex(j, "client_id", k + 1, LOCK_ID);
	u64(j, "held", tl_get_be64(v));
	return true;
}

static bool
record(struct dump_json *j, const uint8_t *k, size_t kl, const uint8_t *v,
       size_t vl)
{
	if (kl == 7 && memcmp(k, "setting", 7) == 0)
		return r_settings(j, v, vl);
	switch (k[0]) {
	case 'C':
		if (vl != 8)
			return false;
		out(j, "\"type\": \"counter\"");
		text(j, "name", k + 1, kl - 1);
		u64(j, "value", tl_get_be64(v));
		return true;
	case 'A':
		return kl >= 10 && r_ino(j, k, kl, v, vl);
	case 'K':
		return r_slice(j, "refcount", k, kl, v, vl);
	case 'R':
		return r_slice(j, "released", k, kl, v, vl);
	case 'I': /* an inline slice's bytes (data.c) */
		if (kl != 13)
			return false;
		out(j, "\"type\": \"inline\"");
		u64(j, "slice", tl_get_be64(k + 1));
		u64(j, "size", tl_get_be32(k + 9));
		out(j, ", \"data_hex\": ");
		hex(j, v, vl);
		return true;
	case 'D':
		if (kl != 17 || vl != 8)
			return false;
		out(j, "\"type\": \"deleted\"");
		u64(j, "ino", tl_get_be64(k + 1));
		u64(j, "size", tl_get_be64(k + 9));
		u64(j, "time_ns", tl_get_be64(v));
		return true;
	case 'L':
		if (kl != 21)
			return false;
		out(j, "\"type\": \"compacted\"");
		u64(j, "time_ns", tl_get_be64(k + 1));
		u64(j, "slice", tl_get_be64(k + 9));
		u64(j, "size", tl_get_be32(k + 17));
		return true;
	case 'U':
		if (kl != 9 || vl != 16)
			return false;
		out(j, "\"type\": \"usage\"");
		u64(j, "dir", tl_get_be64(k + 1));
		u64(j, "bytes", tl_get_be64(v));
		u64(j, "inodes", tl_get_be64(v + 8));
		return true;
	case 'Q': /* directory quotas (quota.c) */
		if (kl != 10 || !(vl == 16 || (vl == 17 && k[9] == 'L')))
			return false;
		if (k[9] == 'B') {
			out(j, "\"type\": \"quota_figures\"");
			u64(j, "dir", tl_get_be64(k + 1));
			u64(j, "logical_bytes", tl_get_be64(v));
			u64(j, "trash_bytes", tl_get_be64(v + 8));
			return true;
		}
		if (k[9] != 'L' && k[9] != 'U')
			return false;
		out(j, "\"type\": \"%s\"",
		    k[9] == 'L' ? "quota_limit" : "quota_usage");
		u64(j, "dir", tl_get_be64(k + 1));
		u64(j, "bytes", tl_get_be64(v));
		u64(j, "inodes", tl_get_be64(v + 8));
		if (vl == 17)
			u64(j, "figures_kept", v[16] & 1);
		return true;
	case 'T': /* quotas a file in the trash was removed from under */
		if (kl != 9 || vl % 8)
			return false;
		out(j, "\"type\": \"trash_origin\"");
		u64(j, "ino", tl_get_be64(k + 1));
		out(j, ", \"quotas\": [");
		for (size_t i = 0; i < vl; i += 8)
			out(j, "%s%llu", i ? ", " : "",
			    (unsigned long long)tl_get_be64(v + i));
		out(j, "]");
		return true;
	case 'G':
		return kl == 9 && r_session(j, k, v, vl);
	case 'B': /* the background-job lease (session.c) */
		if (kl != 1 || vl < 17 || v[0] != 1)
			return false;
		out(j, "\"type\": \"lease\"");
		out(j, ", \"holder\": \"%016llx\"",
		    (unsigned long long)tl_get_be64(v + 1));
		u64(j, "since_ns", tl_get_be64(v + 9));
		return true;
	case 'b':
		return kl == 1 && r_backup(j, v, vl);
	case 'N':
		return r_lock(j, k, kl, v, vl);
	case 'M':
		return r_lock_client(j, k, kl, v, vl);
	case 'n':
	case 'm':
		return r_lock_index(j, k, kl, v, vl);
	case 'X': /* NFS bytes not billed yet (billing.c) */
		if (kl < 2 || vl != 16)
			return false;
		out(j, "\"type\": \"io\"");
		text(j, "export", k + 1, kl - 1);
		u64(j, "read", tl_get_be64(v));
		u64(j, "written", tl_get_be64(v + 8));
		return true;
	case 'Y': /* the end of the last billed period (billing.c) */
		if (kl != 1 || vl != 8)
			return false;
		out(j, "\"type\": \"billed\"");
		u64(j, "time_ns", tl_get_be64(v));
		return true;
	default:
		return false;
	}
}

int
meta_dump_json_key(struct dump_json *j, const uint8_t *k, size_t kl,
		   const uint8_t *v, size_t vl)
{
	size_t mark;

	out(j, "%s\n{", j->first ? "" : ",");
	j->first = false;
	mark = j->b.len;
	if (kl == 0 || !record(j, k, kl, v, vl)) {
		j->b.len = mark; /* what a failed decoder wrote */
		out(j, "\"type\": \"other\", \"key_hex\": ");
		hex(j, k, kl);
		out(j, ", \"value_hex\": ");
		hex(j, v, vl);
	}
	out(j, "}");
	return j->b.len >= JSON_FLUSH ? flush(j) : j->rc;
}

int
meta_dump_json_begin(struct dump_json *j, const struct meta_dump_info *in)
{
	time_t t = (time_t)(in->created_ns / 1000000000ULL);
	char when[32];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	out(j, "{\"format\": \"tessera-dump-json\", \"version\": 1");
	text(j, "volume", (const uint8_t *)in->volume, strlen(in->volume));
	uuid(j, in->uuid);
	u64(j, "snapshot_ns", in->created_ns);
	out(j, ", \"snapshot_time\": \"%s\"", when);
	out(j, ", \"engine\": \"%s\"", in->engine);
	u64(j, "engine_version", in->version);
	out(j, ", \"from_copy\": %s", in->copy ? "true" : "false");
	text(j, "tessera", (const uint8_t *)in->tessera, strlen(in->tessera));
	out(j, ",\n\"records\": [");
	return j->rc;
}

int
meta_dump_json_end(struct dump_json *j)
{
	const struct meta_dump_stats *s = j->st;

	out(j,
	    "\n],\n\"summary\": {\"keys\": %llu, \"bytes\": %llu, "
	    "\"inodes\": %llu, \"directories\": %llu, \"entries\": %llu, "
	    "\"chunks\": %llu, \"sessions\": %llu}}\n",
	    (unsigned long long)s->keys, (unsigned long long)s->kv_bytes,
	    (unsigned long long)s->inodes, (unsigned long long)s->dirs,
	    (unsigned long long)s->dentries, (unsigned long long)s->chunks,
	    (unsigned long long)s->sessions);
	return flush(j);
}
