/*
 * fuzz_vol.c - see fuzz_vol.h.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t/fuzz/fuzz_vol.h"

struct fuzz_vol fuzz_vol;

void
fuzz_die(const char *what, int rc, const char *err)
{
	fprintf(stderr, "fuzz: %s: %s (%d)\n", what, err ? err : "", rc);
	exit(1);
}

static void
cleanup(void)
{
	char *cmd = tl_asprintf("rm -rf '%s'", fuzz_vol.dir);

	if (system(cmd) != 0)
		fprintf(stderr, "fuzz: could not remove %s\n", fuzz_vol.dir);
	free(cmd);
}

static uint64_t
mk(uint64_t dir, const char *name, enum meta_type type)
{
	struct meta_cred root = {.uid = 0};
	struct meta_new n;
	struct meta_attr a;
	uint64_t ino = 0;
	bool existed;
	int rc;

	memset(&n, 0, sizeof(n));
	n.type = type;
	n.mode = type == META_DIR ? 0777 : 0666;
	n.target = type == META_LNK ? "f" : NULL;
	rc = meta_create(fuzz_vol.meta, &root, dir, name, &n, &ino, &a,
			 &existed, NULL, NULL);
	if (rc != 0)
		fuzz_die(name, rc, NULL);
	return ino;
}

void
fuzz_vol_init(const char *name)
{
	const char *base = getenv("FUZZ_RPC_DIR");
	struct meta_format_opts fo;
	struct cache_opts co = {.buffer_limit = 16 << 20, .upload_threads = 2};
	struct nfsd_exports ex;
	char *url, *store, *err = NULL;
	uint64_t *o = fuzz_vol.obj_ino;
	int rc;

	if (fuzz_vol.meta != NULL)
		return;
	tl_log_set_level(getenv("FUZZ_RPC_DEBUG") ? TL_LOG_DEBUG : TL_LOG_ERR);
	fuzz_vol.dir = tl_asprintf("%s/fuzz_%s.XXXXXX",
				   base != NULL ? base : "/tmp", name);
	if (mkdtemp(fuzz_vol.dir) == NULL)
		fuzz_die("mkdtemp", -1, fuzz_vol.dir);
	atexit(cleanup);
	url = tl_asprintf("lmdb://%s/meta?mapsize=1G", fuzz_vol.dir);
	store = tl_asprintf("file://%s/obj", fuzz_vol.dir);
	memset(&fo, 0, sizeof(fo));
	fo.name = "fuzz";
	fo.storage = store;
	rc = meta_format(url, &fo, &err);
	if (rc == 0)
		rc = meta_open(url, NULL, &fuzz_vol.meta, &err);
	if (rc == 0)
		rc = os_open(store, &fuzz_vol.os, &err);
	if (rc == 0)
		rc = cache_open(fuzz_vol.meta, fuzz_vol.os, &co,
				&fuzz_vol.cache);
	if (rc != 0)
		fuzz_die("volume", rc, err);
	o[0] = META_ROOT_INO;
	o[1] = mk(META_ROOT_INO, "f", META_REG);
	o[2] = mk(META_ROOT_INO, "d", META_DIR);
	o[3] = mk(META_ROOT_INO, "s", META_LNK);
	o[4] = mk(META_ROOT_INO, "ro", META_DIR);
	o[5] = mk(o[4], "g", META_REG);
	/* export ids are hashes of the paths, whatever the rules */
	rc = nfsd_exports_parse("/ *\n/ro *\n", "fuzz", &ex, &err);
	if (rc != 0)
		fuzz_die("exports", rc, err);
	fuzz_vol.root_export = nfsd_export_by_path(&ex, "/")->id;
	fuzz_vol.ro_export = nfsd_export_by_path(&ex, "/ro")->id;
	nfsd_exports_free(&ex);
	fprintf(stderr, "fuzz_%s: volume in %s\n", name, fuzz_vol.dir);
	free(url);
	free(store);
}

void
fuzz_vol_ctx(struct nfsd_ctx *ctx, const char *exports)
{
	struct nfsd_exports ex;
	char *err = NULL;
	int rc;

	ctx->meta = fuzz_vol.meta;
	ctx->cache = fuzz_vol.cache;
	ctx->vol = meta_settings(fuzz_vol.meta);
	ctx->drc = nfsd_drc_create(256, 256 << 10);
	rc = nfsd_exports_parse(exports, "fuzz", &ex, &err);
	if (rc != 0)
		fuzz_die("exports", rc, err);
	nfsd_exports_resolve(fuzz_vol.meta, &ex);
	nfsd_exports_publish(ctx, &ex);
}

char *
fuzz_vol_file(const char *name, const char *text)
{
	char *path = tl_asprintf("%s/%s", fuzz_vol.dir, name);
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		fuzz_die(path, -1, "cannot write");
	return path;
}

void
fuzz_fill_handles(uint8_t *buf, size_t len)
{
	const struct meta_settings *vol = meta_settings(fuzz_vol.meta);

	for (size_t i = 0; i + NFSD_FH_SIZE <= len; i++) {
		struct nfsd_fh h;
		struct meta_attr a;
		uint8_t obj;

		if (memcmp(buf + i, FUZZ_FH_MAGIC, 4) != 0)
			continue;
		obj = buf[i + 4];
		h.ino = obj < FUZZ_NOBJ ? fuzz_vol.obj_ino[obj] : obj;
		h.export_id = (buf[i + 5] & 1) ? fuzz_vol.ro_export
					       : fuzz_vol.root_export;
		h.gen = meta_getattr(fuzz_vol.meta, h.ino, &a) == 0 ? a.gen : 1;
		nfsd_fh_encode(vol, &h, buf + i);
		i += NFSD_FH_SIZE - 1;
	}
}
