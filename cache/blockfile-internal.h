/*
 * blockfile-internal.h - block files (blockfile.c): one block on local
 * disk, checksummed; the disk cache and writeback staging store blocks
 * in them.  Calls nothing else in cache/.
 */
#ifndef CACHE_BLOCKFILE_INTERNAL_H
#define CACHE_BLOCKFILE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CRC32C (Castagnoli) of buf continuing crc (0 to start). */
uint32_t cache_crc32c(uint32_t crc, const void *buf, size_t n);
/* A 64-bit hash of an object key (file names, table slots). */
uint64_t cache_key_hash(const char *key);
/* Bytes of the file cache_blockfile_write makes of this block. */
uint64_t cache_blockfile_size(const char *key, const uint8_t *data,
			      uint32_t len);
/* Write block key (data, len) to path, by way of path.tmp and a rename;
 * fsynced first with sync.  data must stay valid during the call. */
int cache_blockfile_write(const char *path, const char *key,
			  const uint8_t *data, uint32_t len, bool sync);
/* Read and check bytes [off, off+n) of the block in path, which must hold
 * key (NULL: any key) and a block of exactly want bytes (0: any; *blen,
 * unless NULL, receives the length).  -ENOENT: no file; -EBADMSG:
 * damaged. */
int cache_blockfile_read(const char *path, const char *key, uint32_t want,
			 uint32_t off, uint32_t n, uint8_t *buf,
			 uint32_t *blen);

#endif /* CACHE_BLOCKFILE_INTERNAL_H */
