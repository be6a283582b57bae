/*
 * files-internal.h - the table of files with buffered writes, and the
 * buffer accounting (files.c).
 *
 * Below: nothing in cache/.  Above: write.c, flush.c, compact.c, cache.c.
 * Made by cache_files_open, freed by cache_files_close once no file is
 * left; every call is thread safe.
 *
 * Locking: the table's lock guards the table and the files' reference
 * counts; a file's mu guards the rest of it.  Order: the table's lock
 * before f->mu.  The buffer total's lock is a leaf (taken under f->mu
 * to wake writers waiting for room).
 */
#ifndef CACHE_FILES_INTERNAL_H
#define CACHE_FILES_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/tl.h"

struct builder;
struct pack;
struct cache_files;

/* A file with buffered writes: its fields belong to the files that
 * say so, all but the table's under mu. */
struct cfile {
	/* files.c: the table (under the table's lock) */
	struct tl_hnode hn; /* in the table, by ino */
	uint64_t ino;
	unsigned refs;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* uploads done, flush done */
	/* write.c: the slice builders and what they hold */
	struct builder *head, *tail; /* oldest first */
	uint64_t mtime_ns;           /* time of the last buffered write */
	uint64_t end;                /* end of the buffered bytes (0: none) */
	_Atomic uint64_t bytes;      /* allocated by the builders (in the
				   buffer total); read without mu */
	/* flush.c */
	struct pack *packs; /* of frozen builders, freed with them */
	bool flushing;      /* a flush or drop owns the frozen builders */
	uint64_t gen;       /* bumped when builders leave (committed,
			  dropped) */
	/* flush.c: bounded flushes (cache_file_flush_wait) */
	uint64_t fq_asked; /* tickets handed out */
	uint64_t fq_done;  /* tickets a finished flush answered */
	int fq_err;        /* that flush's result */
	bool fq_queued;    /* a flush job waits to start */
};

/* Buffered writes of all files together stay within limit bytes (see
 * cache.c: writers make room by flushing). */
struct cache_files *cache_files_open(uint64_t limit);
void cache_files_close(struct cache_files *ft);

/* A counted reference to ino's entry; NULL when absent and !create. */
struct cfile *cache_file_get(struct cache_files *ft, uint64_t ino, bool create);
/* Drop a reference; an unreferenced entry without builders (and not
 * being flushed) goes. */
void cache_file_put(struct cache_files *ft, struct cfile *f);
/* The file with the most buffered bytes (referenced), or NULL. */
struct cfile *cache_file_largest(struct cache_files *ft);
/* Any file (referenced), or NULL when the table is empty (close). */
struct cfile *cache_file_any(struct cache_files *ft);

/* ---- the buffer total -------------------------------------------------- */

/* Add len to the total if it fits within the limit (or nothing is
 * buffered): whether it did. */
bool cache_space_take(struct cache_files *ft, uint64_t len);
/* Wait up to ms for room for len; whether it fits now (not taken). */
bool cache_space_wait(struct cache_files *ft, uint64_t len, uint64_t ms);
/* Count n more bytes (beyond what was taken), or n fewer, waking the
 * writers that wait for room. */
void cache_space_add(struct cache_files *ft, uint64_t n);
void cache_space_release(struct cache_files *ft, uint64_t n);
uint64_t cache_space_used(struct cache_files *ft);

/* pthread_cond_timedwait for ms milliseconds from now. */
void cache_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t ms);

#endif /* CACHE_FILES_INTERNAL_H */
