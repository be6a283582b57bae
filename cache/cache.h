/*
 * cache.h - the data path: buffered slice writers and slice readers.
 *
 * Writes are buffered per file in bounded memory and turned into slices
 * (immutable objects of up to block_size bytes each, named
 * "<volume>/chunks/<id/1000000>/<id/1000>/<id>_<block index>_<block len>")
 * that are stored in the object store before their slice records are
 * committed to metadata: a block is always stored before the metadata
 * that refers to it.  Reads build a chunk's view from its slice list
 * (later slices win, holes read as zeros).
 *
 * All calls are thread safe and return 0 or a negative errno.
 *
 * cache.c implements every call of this header on an open cache (and
 * cache_staging_scan).  The calls that need none live in the files that
 * own what they make or read: block names, cache_block_key and
 * cache_block_key_parse (blockkey.c); the chunk view, cache_view_build
 * (view.c); a volume's claim on its store, cache_store_* (volume.c).
 * Inside, every call goes down these layers (cache.c explains them;
 * t/unit/cache_layers_test.sh checks the drawing against the built
 * objects):
 *
 *   cache.c      -> * (the public calls: any file below)
 *   volume.c     -> blockkey.c
 *   gc.c         -> compact.c files.c blocks.c
 *   readahead.c  -> compact.c plan.c blocks.c
 *   flush.c      -> compact.c write.c files.c blocks.c
 *   compact.c    -> files.c plan.c blocks.c bufpool.c view.c
 *   write.c      -> files.c blocks.c bufpool.c
 *   files.c      -> (none)
 *   plan.c       -> blocks.c view.c
 *   blocks.c     -> writeback.c diskcache.c bufpool.c blockkey.c
 *   writeback.c  -> diskcache.c blockfile.c blockkey.c
 *   diskcache.c  -> blockfile.c
 *   blockfile.c  -> (none)
 *   bufpool.c    -> (none)
 *   blockkey.c   -> (none)
 *   view.c       -> (none)
 */
#ifndef CACHE_H
#define CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meta/meta.h"
#include "objstore/objstore.h"

struct cache;

struct cache_opts {
	uint64_t buffer_limit;   /* memory held by buffered unstable
				    writes (buffers that grow with what
				    was written, and their bookkeeping),
				    all files together, until committed;
				    writers flush or wait above it.
				    Beyond it: each write
				    in progress reserves 2 blocks + ~1 KiB
				    of slack, each upload in flight may
				    copy one block (unaligned slices) */
	unsigned upload_threads; /* parallel block uploads */
	bool gc;                 /* run the background deletion job */
	/* With a gate, the job runs its rounds only while gate(arg)
	 * answers true (tesserad: this gateway holds the volume's
	 * background-job lease); NULL: always. */
	bool (*bgjob_gate)(void *arg);
	void *bgjob_arg;
	/* Pace of the job: objects deleted and metadata transactions per
	 * second, a second's worth in a burst (0: no limit); changed at
	 * run time by cache_set_bgjob_rates. */
	uint64_t gc_delete_rate;
	uint64_t gc_txn_rate;
	/* Disk block cache (diskcache.c).  cache_dirs: directories joined
	 * by ':'; NULL or "" runs without a disk cache (and without
	 * writeback).  cache_size: bytes of cached blocks, all dirs
	 * together (0: 10 GiB).  cache_free_floor: percent of each dir's
	 * file system kept free (0: none). */
	const char *cache_dirs;
	uint64_t cache_size;
	unsigned cache_free_floor;
	/* Writeback (writeback.c): flushes return once blocks are fsynced
	 * in <first cache dir for the key>/staging; uploads follow in the
	 * background.  Staged blocks older than writeback_max_age_ms (0: 1
	 * hour) raise an alarm (log line and cache_stats). */
	bool writeback;
	uint64_t writeback_max_age_ms;
	/* Readahead (readahead.c): a sequential stream's window doubles from
	 * one block up to readahead_max bytes (0: no prefetch).  Prefetched
	 * and recently read blocks are kept in memory within
	 * readahead_budget bytes (0: only blocks being read).  A bare
	 * file:// store (no wrapper but ratelimit or retry) without
	 * cache_dirs is read directly into each reply instead: no
	 * prefetch, no blocks in memory (the page cache holds them).
	 * Disk-cache fills are written in the background (at most 64 MiB
	 * waiting; beyond that a block is not cached). */
	uint64_t readahead_max;
	uint64_t readahead_budget;
	unsigned download_threads; /* parallel block fetches (0: 16) */
	/* Data compaction (compact.c): a flush that leaves a chunk's record
	 * list at least this long queues the chunk (0: 128; UINT32_MAX:
	 * only reads queue chunks). */
	uint32_t compact_records;
	/* Blocks a flush stored but could not commit (the metadata
	 * failed) are stored again by the next flush when they are older
	 * than this (0: 10 minutes), since `tessera gc` may take them
	 * for leaks (write.c).  Tests set 1. */
	uint64_t restore_age_ms;
	/* store_wait_max: the longest a request waits for a flush (the
	 * object store not answering) before it gets -EAGAIN, the flush
	 * going on without it (0: as long as it takes).  Changed while
	 * running with cache_set_store_wait. */
	uint64_t store_wait_ms;
	/* Inline data (flush.c): a flush of a file no longer than this,
	 * whose buffered bytes all lie below it, stores them in the
	 * metadata commit instead of an object (meta_write_inline): no
	 * object, no object sync, no PUT.  0: never.  Capped by the block
	 * size and META_INLINE_MAX; ignored (0) on a store with an
	 * encryption wrapper, whose data must not lie in metadata in
	 * clear. */
	uint32_t inline_max;
};

/* Borrow m and os for the life of the cache.  Puts to os may become
 * durable only at os_sync from now on (os_defer_sync): the cache calls
 * os_sync before committing metadata that names them. */
int cache_open(struct meta *m, struct os_store *os, const struct cache_opts *o,
	       struct cache **out);
/* Flush everything buffered, stop background jobs, free.  What cannot
 * be stored is logged and dropped: the only data dropped while its file
 * exists (the next process answers with another write verifier). */
void cache_close(struct cache *c);

/* Buffer a write (UNSTABLE): it stays buffered until a flush commits it
 * or the file is removed (cache_forget), whatever fails meanwhile.
 * With stable, the file's buffered data, this write included, is stored
 * and committed before returning (FILE_SYNC / DATA_SYNC).  Flushes and
 * waits while the buffer limit is exceeded; -EAGAIN when the room could
 * not be made because another file's flush failed (the store fails:
 * retry later), or when a flush it needs (its own to make room, or the
 * stable write's) did not end within store_wait_max (the data stays
 * buffered: an unstable write is then accepted).  -EFBIG past
 * META_MAX_FILE_SIZE. */
int cache_write(struct cache *c, uint64_t ino, uint64_t off, const void *buf,
		size_t len, bool stable);

/* Make all buffered data of ino durable and committed (COMMIT).  -EIO if
 * the object store failed (a put, or a sync, this flush's or another's:
 * the data stays buffered and a later flush stores it again as needed);
 * -ENOSPC at capacity; -EAGAIN when the flush did not end within
 * store_wait_max (it goes on: the data is stored and committed once the
 * store answers, and a later cache_flush answers 0).  0 only once every
 * byte buffered when it was called is committed. */
int cache_flush(struct cache *c, uint64_t ino);
/* store_wait_max from now on (0: no bound). */
void cache_set_store_wait(struct cache *c, uint64_t ms);

/* Drop buffered data of ino (the file was removed). */
void cache_forget(struct cache *c, uint64_t ino);

/* Read up to len bytes at off.  size is the file's size as the caller
 * sees it (after cache_overlay_attr); reads stop there and *eof tells
 * whether the end of the file was reached.  -ENOENT: a block the read
 * planned with is not in the object store, because the file was removed
 * or truncated meanwhile and the deletion job deleted it (or, if the
 * file is unchanged, because it is lost): the caller looks at the file
 * again and reads again.  -EAGAIN: from a store not read in place, the
 * read took longer than store_wait_max (a GET that hangs); it goes on
 * without the caller, whose retry finds its blocks in memory. */
int cache_read(struct cache *c, uint64_t ino, uint64_t size, uint64_t off,
	       size_t len, void *buf, size_t *got, bool *eof);
/* cache_read into memory the call provides: *data is a malloc'd buffer
 * the caller frees when *ref comes back NULL; otherwise it points into
 * a block held in memory (no copy), valid until cache_read_done(*ref),
 * or, when the caller can send from a file (files) and the store is a
 * bare file:// store, it is NULL and *ref lends the range of the object
 * file holding the bytes (cache_ref_file).  *data is NULL when *got is
 * 0. */
int cache_read_ref(struct cache *c, uint64_t ino, uint64_t size, uint64_t off,
		   size_t len, bool files, void **data, void **ref, size_t *got,
		   bool *eof);
/* Release what cache_read_ref lent (NULL: nothing); any thread. */
void cache_read_done(void *ref);
/* Whether ref lends a file: the *got bytes are at *off in *fd (borrowed:
 * open until cache_read_done). */
bool cache_ref_file(const void *ref, int *fd, uint64_t *off);

/* Make attributes reflect buffered writes (size, mtime, ctime). */
void cache_overlay_attr(struct cache *c, struct meta_attr *a);

/* Data compaction of one chunk (compact.c; reads and flushes of
 * fragmented chunks queue it for the gc job, which calls this): its
 * visible bytes, but for big extents of mostly visible slices, if they
 * lie in at least CACHE_COMPACT_SEGS extents, are stored as one fresh
 * slice that replaces their records.  -EBUSY when the file has buffered
 * writes here, -EAGAIN when the chunk changed meanwhile (nothing changed
 * either way), -ENOENT when the file is gone. */
int cache_compact(struct cache *c, uint64_t ino, uint32_t chunk);

/* Change the pace of the background job (cache_opts gc_delete_rate,
 * gc_txn_rate) while it runs: tesserad's SIGHUP.  Nothing without a
 * job. */
void cache_set_bgjob_rates(struct cache *c, uint64_t delete_rate,
			   uint64_t txn_rate);

/* Chunks queued for compaction now (at most 16; only a gateway running
 * the job keeps a queue). */
unsigned cache_compact_queue_len(struct cache *c);

/* Bytes currently buffered (for metrics and tests). */
uint64_t cache_buffered(struct cache *c);

/* Figures for `tessera status` and metrics. */
struct cache_stats {
	/* writeback staging */
	uint64_t staged_blocks;
	uint64_t staged_bytes;
	uint64_t staged_oldest_s; /* age of the oldest staged block */
	uint64_t staged_overdue;  /* staged longer than writeback_max_age */
	uint64_t uploaded;        /* staged blocks uploaded since open */
	uint64_t upload_errors;   /* failed background uploads (retried) */
	/* disk cache */
	uint64_t disk_blocks, disk_bytes;
	uint64_t disk_hits, disk_misses;
	uint64_t disk_damaged; /* checksum or length errors: refetched */
	uint64_t disk_evicted;
	/* memory and object store */
	uint64_t mem_blocks, mem_bytes, mem_hits;
	uint64_t fetches, fetch_bytes; /* GETs issued (whole or range) */
	uint64_t prefetches;           /* blocks fetched by readahead */
	uint64_t compacted;            /* chunks rewritten by compaction */
	uint64_t compact_queued;       /* chunks queued for compaction */
	/* the background job: whether this cache runs one, its pace now */
	bool bgjob;
	uint64_t bgjob_delete_rate, bgjob_txn_rate;
};

/* Fill *out (never fails; returns 0). */
int cache_stats(struct cache *c, struct cache_stats *out);

/* Staging figures of cache_dirs ("/a:/b") read from the directories
 * directly (`tessera status --cache-dir`, no daemon needed): fills the
 * staged_* fields of *out and zeroes the others.  max_age_ms as in
 * cache_opts (0: 1 hour). */
int cache_staging_scan(const char *cache_dirs, uint64_t max_age_ms,
		       struct cache_stats *out);

/* Object key of block idx of slice id (len = that block's length), as
 * in the comment at the top (blockkey.c); buf of at least 256 bytes. */
void cache_block_key(char *buf, size_t buflen, const char *volume, uint64_t id,
		     uint32_t idx, uint32_t len);
/* The slice id, block index and block length of key: 0 when key is
 * exactly what cache_block_key makes for volume (NULL: for any volume),
 * -EINVAL when it is not a block key (of that volume). */
int cache_block_key_parse(const char *key, const char *volume, uint64_t *id,
			  uint32_t *idx, uint32_t *len);

/* One piece of a chunk's visible view: chunk bytes [pos, pos+len) are
 * bytes [off, off+len) of slice id (stored size size); id 0 reads as
 * zeros. */
struct cache_seg {
	uint64_t id;
	uint32_t size;
	uint32_t off;
	uint32_t pos;
	uint32_t len;
};

/* Build the view of chunk bytes [from, to) from the chunk's slice records
 * s[0..n) in write order (later records win; what no record covers is a
 * hole, id 0).  *out covers [from, to) without gaps, in position order;
 * caller frees.  Pure: exposed for the reader and its unit test. */
int cache_view_build(const struct meta_slice *s, size_t n, uint32_t from,
		     uint32_t to, struct cache_seg **out, size_t *nout);

/* ---- a volume's claim on its object store (volume.c) ----------------------
 *
 * NAME/ of a store belongs to the volume its marker names (objstore.h,
 * "the volume marker").  A store without a marker (a volume formatted
 * before markers existed, or the wrong store) is proved to be this
 * volume's by reading back a block the metadata references. */
enum cache_store_state {
	CACHE_STORE_OWNED,    /* the marker names this volume (its uuid) */
	CACHE_STORE_EMPTY,    /* no marker, no object under NAME/ */
	CACHE_STORE_UNMARKED, /* no marker, objects under NAME/ */
	CACHE_STORE_FOREIGN,  /* the marker names another volume */
};
struct cache_store_check {
	enum cache_store_state state;
	struct os_marker marker; /* OWNED, FOREIGN: the marker read */
	char *first;             /* UNMARKED: an object found */
};
/* Read the marker of m's volume in s and, without one, whether NAME/
 * holds objects.  0, or the store's error (-EBADMSG: NAME/tessera.volume
 * is not a marker).  Free c with cache_store_check_free. */
int cache_store_check(struct meta *m, struct os_store *s,
		      struct cache_store_check *c);
void cache_store_check_free(struct cache_store_check *c);
/* Read back through s, whole, the first block of up to 8 slices the
 * metadata references (meta_sample_slices), until one reads back with
 * its length: 0 then; 1 when the volume references no block (nothing to
 * prove); -ENOENT when none is in the store; or the error of the read
 * (-EIO: unreadable, such as another encryption key).  *key (caller
 * frees, may be NULL) names the block that read back or failed. */
int cache_store_probe(struct meta *m, struct os_store *s, char **key);
/* Write m's volume's marker in s (meta_url: recorded for people). */
int cache_store_mark(struct meta *m, struct os_store *s, const char *meta_url);
/* Why a store whose marker mk names another volume is refused (caller
 * frees). */
char *cache_store_foreign_msg(struct meta *m, const struct os_store *s,
			      const struct os_marker *mk);
/* What a gateway does at start: OWNED is served; FOREIGN is refused
 * (-EEXIST); without a marker, the store is marked as this volume's if
 * a referenced block reads back, or if it is empty and the volume
 * references none, and refused otherwise.  *err says why (caller
 * frees). */
int cache_store_claim(struct meta *m, struct os_store *s, const char *meta_url,
		      char **err);

#endif /* CACHE_H */
