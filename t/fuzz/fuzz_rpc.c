/*
 * fuzz_rpc - libFuzzer target: raw RPC records into the real
 * decode-and-dispatch path of tesserad (nfsd_dispatch, the function the
 * transport's workers call), on a real volume (LMDB and a file:// store
 * in a temporary directory made once in LLVMFuzzerInitialize).
 *
 * An input is one call message (the bytes of a record after record
 * marking), or, if it starts with "RM:", a record-marking stream: the
 * fragments are joined into records as the transport does (records over
 * the transport's limit end the stream) and each record is dispatched.
 *
 * File handles carry a MAC keyed by the volume's random secret and the
 * inode's random generation, so a stored corpus could never hold a valid
 * one.  Seeds therefore hold placeholders: 41 bytes starting "\xfeTFH",
 * then one byte choosing the object (0 root, 1 /f, 2 /d, 3 /s, 4 the
 * /ro export's root, 5 /ro/g; any other value: that inode number, for
 * stale and missing inodes) and one byte choosing the export (odd:
 * /ro).  Before dispatch every placeholder is replaced by a valid handle,
 * so mutations reach the handlers instead of stopping at BADHANDLE.
 *
 * The peer is 127.0.0.1 port 700 (a "secure" port), allowed by both
 * exports.  Replies are dropped; ASan/UBSan and libFuzzer's RSS and
 * malloc limits catch what goes wrong.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "nfsd/rpc-internal.h"
#include "objstore/objstore.h"

#define FH_MAGIC      "\xfeTFH"
#define MAX_RECORD    (4u << 20)
#define NOBJ	      6

static struct nfsd_ctx ctx;
static struct sockaddr_storage peer;
static uint64_t obj_ino[NOBJ];
static uint32_t root_export, ro_export;

static char *voldir;

static void
cleanup(void)
{
	char *cmd = tl_asprintf("rm -rf '%s'", voldir);

	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_rpc: could not remove %s\n", voldir);
	free(cmd);
}

static void
die(const char *what, int rc, char *err)
{
	fprintf(stderr, "fuzz_rpc: %s: %s (%d)\n", what, err ? err : "", rc);
	exit(1);
}

static uint64_t
mk(struct meta *m, uint64_t dir, const char *name, enum meta_type type)
{
	struct meta_cred root = {0, 0, 0, {0}};
	struct meta_new n;
	struct meta_attr a;
	uint64_t ino = 0;
	bool existed;
	int rc;

	memset(&n, 0, sizeof(n));
	n.type = type;
	n.mode = type == META_DIR ? 0777 : 0666;
	n.target = type == META_LNK ? "f" : NULL;
	rc = meta_create(m, &root, dir, name, &n, &ino, &a, &existed, NULL,
			 NULL);
	if (rc != 0)
		die(name, rc, NULL);
	return ino;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char dir[] = "/tmp/fuzz_rpc.XXXXXX";
	const char *base = getenv("FUZZ_RPC_DIR");
	static const char exports[] = "/ 127.0.0.1(rw,no_root_squash)\n"
				      "/ro 127.0.0.1(ro)\n";
	struct meta_format_opts fo;
	struct cache_opts co = {.buffer_limit = 16 << 20, .upload_threads = 2};
	struct meta *m = NULL;
	struct os_store *os = NULL;
	struct cache *c = NULL;
	struct nfsd_exports ex;
	char *url, *store, *err = NULL, *path;
	int rc;

	tl_log_set_level(getenv("FUZZ_RPC_DEBUG") ? TL_LOG_DEBUG : TL_LOG_ERR);
	if (base != NULL)
		path = tl_asprintf("%s/fuzz_rpc.XXXXXX", base);
	else
		path = tl_strdup(dir);
	if (mkdtemp(path) == NULL)
		die("mkdtemp", -1, path);
	url = tl_asprintf("lmdb://%s/meta?mapsize=1G", path);
	store = tl_asprintf("file://%s/obj", path);
	memset(&fo, 0, sizeof(fo));
	fo.name = "fuzz";
	fo.storage = store;
	rc = meta_format(url, &fo, &err);
	if (rc == 0)
		rc = meta_open(url, NULL, &m, &err);
	if (rc == 0)
		rc = os_open(store, &os, &err);
	if (rc == 0)
		rc = cache_open(m, os, &co, &c);
	if (rc != 0)
		die("volume", rc, err);
	obj_ino[0] = META_ROOT_INO;
	obj_ino[1] = mk(m, META_ROOT_INO, "f", META_REG);
	obj_ino[2] = mk(m, META_ROOT_INO, "d", META_DIR);
	obj_ino[3] = mk(m, META_ROOT_INO, "s", META_LNK);
	obj_ino[4] = mk(m, META_ROOT_INO, "ro", META_DIR);
	obj_ino[5] = mk(m, obj_ino[4], "g", META_REG);
	ctx.meta = m;
	ctx.cache = c;
	ctx.vol = meta_settings(m);
	ctx.drc = nfsd_drc_create(256, 256 << 10);
	rc = nfsd_exports_parse(exports, "fuzz", &ex, &err);
	if (rc != 0)
		die("exports", rc, err);
	nfsd_exports_resolve(m, &ex);
	root_export = nfsd_export_by_path(&ex, "/")->id;
	ro_export = nfsd_export_by_path(&ex, "/ro")->id;
	nfsd_exports_publish(&ctx, &ex);
	{
		struct sockaddr_in *sin = (struct sockaddr_in *)&peer;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(700);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	fprintf(stderr, "fuzz_rpc: volume in %s\n", path);
	voldir = path;
	atexit(cleanup);
	free(url);
	free(store);
	return 0;
}

/* Replace every handle placeholder in buf with a valid handle. */
static void
fill_handles(uint8_t *buf, size_t len)
{
	for (size_t i = 0; i + NFSD_FH_SIZE <= len; i++) {
		struct nfsd_fh h;
		struct meta_attr a;

		if (memcmp(buf + i, FH_MAGIC, 4) != 0)
			continue;
		h.ino = buf[i + 4] < NOBJ ? obj_ino[buf[i + 4]] : buf[i + 4];
		h.export_id = (buf[i + 5] & 1) ? ro_export : root_export;
		h.gen = meta_getattr(ctx.meta, h.ino, &a) == 0 ? a.gen : 1;
		nfsd_fh_encode(ctx.vol, &h, buf + i);
		i += NFSD_FH_SIZE - 1;
	}
}

static void
dispatch(uint8_t *msg, size_t len)
{
	struct tl_buf reply = TL_BUF_INIT;

	fill_handles(msg, len);
	nfsd_dispatch(&ctx, &peer, msg, len, &reply);
	tl_buf_free(&reply);
}

/* A record-marking stream, cut as rpc.c's conn_input does. */
static void
stream(const uint8_t *p, size_t len)
{
	struct tl_buf rec = TL_BUF_INIT;

	while (len >= 4) {
		uint32_t mark = tl_get_be32(p), frag = mark & 0x7fffffffu;

		p += 4;
		len -= 4;
		if (rec.len + frag > MAX_RECORD || frag > len)
			break; /* the transport closes the connection */
		tl_buf_append(&rec, p, frag);
		p += frag;
		len -= frag;
		if (mark & 0x80000000u) {
			dispatch(rec.data, rec.len);
			tl_buf_reset(&rec);
		}
	}
	tl_buf_free(&rec);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	if (size >= 3 && memcmp(data, "RM:", 3) == 0) {
		stream(data + 3, size - 3);
		return 0;
	}
	/* a copy of exactly size bytes, so ASan sees any overread */
	copy = tl_malloc(size > 0 ? size : 1);
	memcpy(copy, data, size);
	dispatch(copy, size);
	free(copy);
	return 0;
}
