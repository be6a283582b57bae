/*
 * writeback-internal.h - blocks staged durably on local disk and
 * uploaded in the background (writeback.c).
 *
 * Below: diskcache.c (the staging dirs are its dirs; an uploaded block
 * moves into it), blockfile.c, blockkey.c, the object store.  Above:
 * blocks.c, which stages through it when writeback is on.  Made by
 * cache_wb_open, freed by cache_wb_close; every call is thread safe.
 */
#ifndef CACHE_WRITEBACK_INTERNAL_H
#define CACHE_WRITEBACK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "objstore/objstore.h"

struct cache_disk;
struct cache_stats;
struct cache_wb;

/* Stage in dc's directories (borrowed, as os, for the life of the
 * writeback), upload on threads workers into os (os_defer: its puts are
 * durable only after os_sync).  Staged blocks a previous run left are
 * queued for upload at once; older than max_age_ms (0: 1 hour) they
 * raise the alarm.  -EINVAL without dc. */
int cache_wb_open(struct os_store *os, bool os_defer, struct cache_disk *dc,
		  uint64_t max_age_ms, unsigned threads, struct cache_wb **out);
/* Stop uploading and free (NULL: nothing); staged files stay on disk
 * for the next start. */
void cache_wb_close(struct cache_wb *w);

/* Write the block to staging (fsynced) and queue its upload.  data is
 * borrowed for the call. */
int cache_wb_stage(struct cache_wb *w, const char *key, const void *data,
		   uint32_t len);
/* Make staged files durable (fsync the staging dirs) before a commit
 * (NULL: nothing to do).  Syncs take turns, and a failed one is counted
 * (cache_wb_failures) before the next begins: after a failed fsync the
 * kernel may report success to the next caller although the name was
 * not written. */
int cache_wb_sync(struct cache_wb *w);
uint64_t cache_wb_failures(struct cache_wb *w);
/* Bytes of a staged block; -ENOENT when key is not staged. */
int cache_wb_read(struct cache_wb *w, const char *key, uint32_t blen,
		  uint32_t off, uint32_t n, uint8_t *buf);
/* The block is released: never upload it (or delete it after). */
void cache_wb_cancel(struct cache_wb *w, const char *key);
/* The staged_*, uploaded and upload_errors fields of *s. */
void cache_wb_stats(struct cache_wb *w, struct cache_stats *s);
/* cache_staging_scan (cache.h): the staging dirs read directly. */
int cache_wb_scan(const char *cache_dirs, uint64_t max_age_ms,
		  struct cache_stats *out);

#endif /* CACHE_WRITEBACK_INTERNAL_H */
