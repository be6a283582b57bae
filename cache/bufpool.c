/*
 * bufpool.c - whole-block buffers.
 *
 * A fresh buffer costs a page fault per 4 KiB as it fills, which in a VM
 * costs more than the copy into it: 2.7 ms for a fresh 4 MiB block with
 * 4 KiB pages against 0.3 ms with two 2 MiB pages, and a fifth of a
 * sequential write's CPU went to faulting in, zeroing and unmapping
 * fresh write buffers.  So buffers of 2 MiB and more are mapped on a
 * 2 MiB boundary with transparent huge pages asked for, and a few
 * whole-block buffers are kept for reuse: a stream writing or reading
 * blocks frees one block and takes the next, and reuses a window's
 * worth of memory instead of new memory.  At most CACHE_BUFPOOL_KEEP
 * wait, outside the memory budgets.  All are page aligned, so the file
 * store and the disk cache write them with O_DIRECT.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>

#include "cache/bufpool-internal.h"
#include "lib/tl.h"

#define HUGE_SZ (2u << 20)

struct cache_bufpool {
	pthread_mutex_t mu; /* a leaf lock */
	uint32_t bs;
	uint8_t *kept[CACHE_BUFPOOL_KEEP];
	unsigned nkept;
};

struct cache_bufpool *
cache_bufpool_open(uint32_t block_size)
{
	struct cache_bufpool *bp = tl_calloc(1, sizeof(*bp));

	pthread_mutex_init(&bp->mu, NULL);
	bp->bs = block_size;
	return bp;
}

static void
buf_free(uint8_t *d, uint32_t len)
{
	if (len >= HUGE_SZ)
		tl_unmap_huge(d, len);
	else
		free(d);
}

void
cache_bufpool_close(struct cache_bufpool *bp)
{
	if (bp == NULL)
		return;
	while (bp->nkept > 0)
		buf_free(bp->kept[--bp->nkept], bp->bs);
	pthread_mutex_destroy(&bp->mu);
	free(bp);
}

uint8_t *
cache_buf_get(struct cache_bufpool *bp, uint32_t len)
{
	uint8_t *d = NULL;

	if (len == bp->bs) {
		pthread_mutex_lock(&bp->mu);
		if (bp->nkept > 0)
			d = bp->kept[--bp->nkept];
		pthread_mutex_unlock(&bp->mu);
	}
	if (d != NULL)
		return d;
	if (len >= HUGE_SZ)
		return tl_map_huge(len);
	if (posix_memalign((void **)&d, 4096, len ? len : 1) != 0)
		abort(); /* out of memory, as tl_malloc does */
	return d;
}

void
cache_buf_put(struct cache_bufpool *bp, uint8_t *d, uint32_t len)
{
	if (d == NULL)
		return;
	if (len == bp->bs) {
		pthread_mutex_lock(&bp->mu);
		if (bp->nkept < CACHE_BUFPOOL_KEEP) {
			bp->kept[bp->nkept++] = d;
			d = NULL;
		}
		pthread_mutex_unlock(&bp->mu);
	}
	if (d != NULL)
		buf_free(d, len);
}
