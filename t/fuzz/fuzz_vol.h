/*
 * fuzz_vol.h - what the NFS fuzz targets share (t/fuzz/fuzz_vol.c): a
 * real volume (LMDB and a file:// store in a temporary directory made
 * once, removed at exit) with a few objects, and the file-handle
 * placeholders of the seed corpora.
 *
 * File handles carry a MAC keyed by the volume's random secret and the
 * inode's random generation, so a stored corpus could never hold a valid
 * one.  Seeds therefore hold placeholders: 41 bytes starting "\xfeTFH",
 * then one byte choosing the object (0 root, 1 /f, 2 /d, 3 /s, 4 the
 * /ro export's root, 5 /ro/g; any other value: that inode number, for
 * stale and missing inodes) and one byte choosing the export (odd:
 * /ro).  fuzz_fill_handles replaces every placeholder by a valid handle,
 * so mutations reach the handlers instead of stopping at BADHANDLE.
 */
#ifndef T_FUZZ_FUZZ_VOL_H
#define T_FUZZ_FUZZ_VOL_H

#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"
#include "meta/meta.h"
#include "nfsd/rpc-internal.h"
#include "objstore/objstore.h"

#define FUZZ_FH_MAGIC "\xfeTFH"
#define FUZZ_NOBJ     6

struct fuzz_vol {
	char *dir; /* the temporary directory */
	struct meta *meta;
	struct os_store *os;
	struct cache *cache;
	uint64_t obj_ino[FUZZ_NOBJ];
	uint32_t root_export, ro_export; /* ids of "/" and "/ro" */
};

extern struct fuzz_vol fuzz_vol;

/* Make the volume (under $FUZZ_RPC_DIR if set, else /tmp) and quiet
 * the log (FUZZ_RPC_DEBUG=1: debug).  Once; exits on failure. */
void fuzz_vol_init(const char *name);
/* Publish exports (exports(5) text over "/" and "/ro") into ctx over
 * the volume, with a small duplicate request cache. */
void fuzz_vol_ctx(struct nfsd_ctx *ctx, const char *exports);
/* The path of a file in the volume's directory holding text (freed by
 * the caller). */
char *fuzz_vol_file(const char *name, const char *text);
/* Replace every handle placeholder in buf by a valid handle. */
void fuzz_fill_handles(uint8_t *buf, size_t len);
/* Exit with a message (setup failures only). */
_Noreturn void fuzz_die(const char *what, int rc, const char *err);

#endif
