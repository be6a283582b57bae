/*
 * blockfile.c - the block file: one block on local disk, checksummed,
 * the format the disk cache (diskcache.c) and the writeback staging area
 * (writeback.c) share.
 *
 * Block file layout (all integers big-endian):
 *   0  u32 magic "TSB1" or "TSB2"
 *   4  u32 data length
 *   8  u16 key length, u16 reserved (0)
 *  12  u32 CRC32C of bytes 0..12, the key and the piece CRCs
 *  16  key (key length bytes, the object key, no NUL)
 *      u32 CRC32C of every 64 KiB piece of the data
 *      (TSB2 only: zeros up to the next multiple of 4096)
 *      data
 * TSB2 puts the data on a 4 KiB boundary so that a page-aligned block
 * whose length is a multiple of 4 KiB is written with O_DIRECT, straight
 * from the fetched buffer: no copy into the page cache, which on a small
 * machine cost as much CPU as serving the block.  Other blocks, and file
 * systems that refuse O_DIRECT, get TSB1 by write(2).  Both are read.
 * The file's size must be exactly what the header implies, every piece
 * read is checked against its CRC, and the key must be the one asked for:
 * a torn, truncated, bit-flipped or hash-colliding file is a miss (and is
 * deleted), never data.  Piece CRCs let a small read of a cached block
 * check only the 64 KiB pieces it touches.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cache/blockfile-internal.h"
#include "lib/tl.h"

#define BF_MAGIC  0x54534231u /* "TSB1" */
#define BF_MAGIC2 0x54534232u /* "TSB2": data 4 KiB aligned */
#define BF_ALIGN  4096u
#define BF_HDR    16u
#define BF_PIECE  (64u << 10)

/* ---- CRC32C (Castagnoli) -------------------------------------------------- */

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static bool crc_hw;

static void
crc_init(void)
{
	uint32_t i, j, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_tab[0][i] = c;
	}
	for (i = 0; i < 256; i++)
		for (j = 1; j < 8; j++)
			crc_tab[j][i] = (crc_tab[j - 1][i] >> 8) ^
					crc_tab[0][crc_tab[j - 1][i] & 0xff];
#if defined(__x86_64__)
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
crc_sse42(uint32_t crc, const uint8_t *p, size_t n)
{
	uint64_t c = crc, v;

	for (; n >= 8; n -= 8, p += 8) {
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	for (; n > 0; n--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}
#endif

/* Slicing-by-8 for machines without the instruction. */
static uint32_t
crc_soft(uint32_t c, const uint8_t *p, size_t n)
{
	uint32_t lo, hi;

	for (; n >= 8; n -= 8, p += 8) {
		lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
			  (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
		hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 |
		     (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
		c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
		    crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^
		    crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
		    crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
	}
	for (; n > 0; n--)
		c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xff];
	return c;
}

uint32_t
cache_crc32c(uint32_t crc, const void *buf, size_t n)
{
	pthread_once(&crc_once, crc_init);
	crc = ~crc;
#if defined(__x86_64__)
	if (crc_hw)
		return ~crc_sse42(crc, buf, n);
#endif
	return ~crc_soft(crc, buf, n);
}

/* The CRC32C of each BF_PIECE piece of data into crc[].  The hardware
 * instruction has a latency of three cycles and a throughput of one, so
 * three independent pieces are summed together: three times the speed
 * of one piece after another, which matters when every fetched block is
 * checksummed on its way into the cache. */
#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static void
crc3_sse42(const uint8_t *a, const uint8_t *b, const uint8_t *c, size_t n,
	   uint32_t *out)
{
	uint64_t x = 0xffffffffu, y = 0xffffffffu, z = 0xffffffffu, u, v, w;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&u, a + i, 8);
		memcpy(&v, b + i, 8);
		memcpy(&w, c + i, 8);
		x = __builtin_ia32_crc32di(x, u);
		y = __builtin_ia32_crc32di(y, v);
		z = __builtin_ia32_crc32di(z, w);
	}
	out[0] = ~crc_sse42((uint32_t)x, a + i, n - i);
	out[1] = ~crc_sse42((uint32_t)y, b + i, n - i);
	out[2] = ~crc_sse42((uint32_t)z, c + i, n - i);
}
#endif

static void
piece_crcs(const uint8_t *data, uint32_t len, uint32_t *crc)
{
	uint32_t np = (len + BF_PIECE - 1) / BF_PIECE, full = len / BF_PIECE;
	uint32_t i = 0;

	pthread_once(&crc_once, crc_init);
#if defined(__x86_64__)
	if (crc_hw)
		for (; i + 3 <= full; i += 3)
			crc3_sse42(data + (size_t)i * BF_PIECE,
				   data + (size_t)(i + 1) * BF_PIECE,
				   data + (size_t)(i + 2) * BF_PIECE, BF_PIECE,
				   crc + i);
#endif
	for (; i < np; i++)
		crc[i] = cache_crc32c(0, data + (size_t)i * BF_PIECE,
				      TL_MIN(BF_PIECE, len - i * BF_PIECE));
}

/* ---- block files ---------------------------------------------------------- */

uint64_t
cache_key_hash(const char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *key; key++)
		h = (h ^ (uint8_t)*key) * 0x100000001b3ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static uint32_t
npieces(uint32_t len)
{
	return (len + BF_PIECE - 1) / BF_PIECE;
}

/* Bytes before the data. */
static size_t
head_len(uint32_t magic, size_t keylen, uint32_t len)
{
	size_t hl = BF_HDR + keylen + 4 * (size_t)npieces(len);

	return magic == BF_MAGIC2 ? (hl + BF_ALIGN - 1) / BF_ALIGN * BF_ALIGN
				  : hl;
}

/* TSB2 and O_DIRECT for data that allows it. */
static bool
direct_ok(const uint8_t *data, uint32_t len)
{
	return len > 0 && len % BF_ALIGN == 0 &&
	       (uintptr_t)data % BF_ALIGN == 0;
}

uint64_t
cache_blockfile_size(const char *key, const uint8_t *data, uint32_t len)
{
	return head_len(direct_ok(data, len) ? BF_MAGIC2 : BF_MAGIC,
			strlen(key), len) +
	       len;
}

/* Write the whole file to fd: O_DIRECT when the caller opened it so,
 * falling back to write(2) once if the file system refuses it. */
static int
write_all(int fd, const struct iovec *iov, size_t total)
{
	ssize_t w = writev(fd, iov, 2);
	int fl;

	if (w < 0 && errno == EINVAL && (fl = fcntl(fd, F_GETFL)) >= 0 &&
	    (fl & O_DIRECT) && fcntl(fd, F_SETFL, fl & ~O_DIRECT) == 0 &&
	    lseek(fd, 0, SEEK_SET) == 0)
		w = writev(fd, iov, 2);
	if (w < 0)
		return -errno;
	return (size_t)w == total ? 0 : -ENOSPC;
}

int
cache_blockfile_write(const char *path, const char *key, const uint8_t *data,
		      uint32_t len, bool sync)
{
	bool direct = direct_ok(data, len);
	uint32_t magic = direct ? BF_MAGIC2 : BF_MAGIC;
	size_t kl = strlen(key), np = npieces(len);
	size_t hl = head_len(magic, kl, len), hc = BF_HDR + kl + 4 * np;
	uint8_t *h;
	char *tmp = tl_asprintf("%s.tmp", path);
	struct iovec iov[2];
	uint32_t *crc = tl_malloc((np + 1) * sizeof(*crc));
	size_t i;
	int fd = -1, r = 0;

	if (direct) {
		if (posix_memalign((void **)&h, BF_ALIGN, hl) != 0)
			abort(); /* out of memory, as tl_malloc does */
		memset(h, 0, hl);
	} else {
		h = tl_malloc(hl);
	}
	iov[0] = (struct iovec){h, hl};
	iov[1] = (struct iovec){(void *)data, len};
	tl_put_be32(h, magic);
	tl_put_be32(h + 4, len);
	tl_put_be16(h + 8, (uint16_t)kl);
	tl_put_be16(h + 10, 0);
	memcpy(h + BF_HDR, key, kl);
	piece_crcs(data, len, crc);
	for (i = 0; i < np; i++)
		tl_put_be32(h + BF_HDR + kl + 4 * i, crc[i]);
	free(crc);
	tl_put_be32(h + 12, cache_crc32c(cache_crc32c(0, h, 12), h + BF_HDR,
					 hc - BF_HDR));
	fd = open(tmp,
		  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
			  (direct ? O_DIRECT : 0),
		  0600);
	if (fd < 0 && direct && errno == EINVAL) /* tmpfs, ... */
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = write_all(fd, iov, hl + len);
	if (r < 0)
		goto out;
	if (sync && fsync(fd) < 0) {
		r = -errno;
		goto out;
	}
	if (rename(tmp, path) < 0)
		r = -errno;
out:
	if (fd >= 0)
		close(fd);
	if (r < 0)
		unlink(tmp);
	free(tmp);
	free(h);
	return r;
}

/* Bytes [off, off+n) of the block data at file offset hl, whole pieces,
 * into buf, checked against the big-endian piece CRCs at want. */
static int
read_checked(int fd, size_t hl, const uint8_t *want, uint32_t off, uint32_t n,
	     uint8_t *buf)
{
	uint32_t np = (n + BF_PIECE - 1) / BF_PIECE, i;
	uint32_t *crc;
	size_t done = 0;
	ssize_t got;
	int r = 0;

	while (done < n) {
		got = pread(fd, buf + done, n - done, (off_t)(hl + off + done));
		if (got <= 0)
			return -EBADMSG; /* shorter than its header says */
		done += (size_t)got;
	}
	crc = tl_malloc(np * sizeof(*crc));
	piece_crcs(buf, n, crc);
	for (i = 0; i < np && r == 0; i++)
		if (crc[i] != tl_get_be32(want + 4 * i))
			r = -EBADMSG;
	free(crc);
	return r;
}

/* Read and check bytes [off, off+n) of the block in path, which must hold
 * key (NULL: any key) and a block of exactly want bytes (0: any; *blen
 * receives the length).  -ENOENT: no file; -EBADMSG: damaged. */
int
cache_blockfile_read(const char *path, const char *key, uint32_t want,
		     uint32_t off, uint32_t n, uint8_t *buf, uint32_t *blen)
{
	uint8_t small[4096], *h = small, *piece = NULL;
	size_t kl = key ? strlen(key) : 0, hl, hc;
	uint32_t len, magic, p0, p1, i, ps, pl;
	struct stat st;
	ssize_t got;
	int fd, r = -EBADMSG;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || pread(fd, small, BF_HDR, 0) != BF_HDR)
		goto out;
	len = tl_get_be32(small + 4);
	magic = tl_get_be32(small);
	if ((magic != BF_MAGIC && magic != BF_MAGIC2) ||
	    (want && len != want) || (key && tl_get_be16(small + 8) != kl) ||
	    (uint64_t)off + n > len)
		goto out;
	kl = tl_get_be16(small + 8);
	hc = BF_HDR + kl + 4ull * npieces(len);
	hl = head_len(magic, kl, len);
	if ((uint64_t)st.st_size != hl + len)
		goto out; /* truncated or grown */
	if (hc > sizeof(small))
		h = tl_malloc(hc);
	if (pread(fd, h, hc, 0) != (ssize_t)hc)
		goto out;
	if (tl_get_be32(h + 12) !=
	    cache_crc32c(cache_crc32c(0, h, 12), h + BF_HDR, hc - BF_HDR))
		goto out;
	if (key && memcmp(h + BF_HDR, key, kl) != 0)
		goto out;
	if (blen)
		*blen = len;
	if (n == 0) {
		r = 0;
		goto out;
	}
	p0 = off / BF_PIECE;
	p1 = (off + n - 1) / BF_PIECE;
	if (off % BF_PIECE == 0 &&
	    ((off + n) % BF_PIECE == 0 || off + n == len)) {
		/* Whole pieces (a whole block): one read, then the checks. */
		r = read_checked(fd, hl, h + BF_HDR + kl + 4 * p0, off, n, buf);
		goto out;
	}
	/* Read whole pieces so each can be checked; the caller's buffer
	 * takes them directly when the range is piece aligned. */
	for (i = p0; i <= p1; i++) {
		uint8_t *dst;

		ps = i * BF_PIECE;
		pl = TL_MIN(BF_PIECE, len - ps);
		if (ps >= off && ps + pl <= off + n) {
			dst = buf + (ps - off);
		} else {
			if (piece == NULL)
				piece = tl_malloc(BF_PIECE);
			dst = piece;
		}
		got = pread(fd, dst, pl, (off_t)(hl + ps));
		if (got != (ssize_t)pl)
			goto out;
		if (cache_crc32c(0, dst, pl) !=
		    tl_get_be32(h + BF_HDR + kl + 4 * i))
			goto out;
		if (dst == piece) {
			uint32_t s = TL_MAX(ps, off),
				 e = TL_MIN(ps + pl, off + n);

			memcpy(buf + (s - off), piece + (s - ps), e - s);
		}
	}
	r = 0;
out:
	if (h != small)
		free(h);
	free(piece);
	close(fd);
	return r;
}
