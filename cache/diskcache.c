/*
 * diskcache.c - the block cache on local disk, and the block file format
 * it shares with the writeback staging area.
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
 *
 * Cached blocks live in <dir>/blocks/<hh>/<16 hex digits of the key's
 * 64-bit hash>; a block goes to dir number hash % ndirs.  Files are
 * written to a temporary name and renamed, without fsync: a file a crash
 * damaged fails its checks and is refetched.
 *
 * The in-memory index is a dense array of {hash, file size, last access
 * tick} with a chained hash over it.  It is rebuilt at open by readdir
 * and fstatat only (nothing is read or checksummed), which takes well
 * under a second for 100,000 blocks.  Eviction is sampled LRU (as Redis
 * does it): of CACHE_SAMPLE random entries the least recently used goes,
 * which keeps hot blocks at O(1) cost per eviction.  It runs when a put
 * would pass the size limit, and when a directory's file system has less
 * free space than the floor (then only that directory's blocks go, and
 * the put is skipped if room cannot be made).
 *
 * Fills are written by one thread of their own (dcache_fill): a reader
 * that fetched a block hands it over and goes on serving, instead of
 * checksumming and writing 4 MiB on the request or prefetch path.  At
 * most DC_FILL_MAX bytes wait; past that a block is not cached (the
 * cache is best effort, and a reader must never wait for it).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cache/cache-internal.h"

#define BF_MAGIC 0x54534231u  /* "TSB1" */
#define BF_MAGIC2 0x54534232u /* "TSB2": data 4 KiB aligned */
#define BF_ALIGN 4096u
#define BF_HDR 16u
#define BF_PIECE (64u << 10)
#define DC_SUBDIRS 256
#define DC_SAMPLE 5
#define DC_DEFAULT_SIZE (10ULL << 30)
#define DC_FILL_MAX (64ULL << 20)

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
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
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
	    (want && len != want) ||
	    (key && tl_get_be16(small + 8) != kl) ||
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
			uint32_t s = TL_MAX(ps, off), e = TL_MIN(ps + pl, off + n);

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

/* ---- the index ------------------------------------------------------------ */

struct dent {
	uint64_t h;
	uint64_t tick;
	uint32_t size; /* file bytes */
	uint32_t next; /* chain, UINT32_MAX ends */
	uint32_t dir;
};

struct dcdir {
	char *path;
	uint64_t files; /* bytes of this dir's cached files */
};

struct dcache {
	struct dcdir *dirs;
	unsigned ndirs;
	uint64_t limit;
	unsigned floor_pct;

	pthread_mutex_t mu;
	struct dent *e;
	uint32_t n, cap;
	uint32_t *bucket;
	uint32_t nbucket; /* power of two */
	uint64_t bytes, tick, rng;

	_Atomic uint64_t hits, misses, damaged, evicted;

	/* fills waiting for the fill thread (fill_mu) */
	pthread_mutex_t fill_mu;
	pthread_cond_t fill_cv;
	struct dfill *fill_head, *fill_tail;
	uint64_t fill_bytes;
	uint64_t fill_queued, fill_done; /* fills handed over, finished */
	bool fill_on, fill_stop;
	pthread_t fill;
};

struct dfill {
	struct dfill *next;
	char *key;
	const uint8_t *data;
	uint32_t len;
	uint64_t tick; /* when it was read: its place in LRU order */
	void (*done)(void *arg);
	void *arg;
};

#define NIL UINT32_MAX

static uint32_t
bidx(struct dcache *d, uint64_t h)
{
	return (uint32_t)(h >> 20) & (d->nbucket - 1);
}

static uint32_t
ix_find(struct dcache *d, uint64_t h)
{
	uint32_t i;

	for (i = d->bucket[bidx(d, h)]; i != NIL; i = d->e[i].next)
		if (d->e[i].h == h)
			return i;
	return NIL;
}

static void
ix_rehash(struct dcache *d)
{
	uint32_t i, b;

	free(d->bucket);
	d->nbucket = d->nbucket ? d->nbucket * 2 : 1024;
	d->bucket = tl_malloc(d->nbucket * sizeof(*d->bucket));
	memset(d->bucket, 0xff, d->nbucket * sizeof(*d->bucket));
	for (i = 0; i < d->n; i++) {
		b = bidx(d, d->e[i].h);
		d->e[i].next = d->bucket[b];
		d->bucket[b] = i;
	}
}

static void
ix_add(struct dcache *d, uint64_t h, uint32_t size, uint32_t dir,
       uint64_t tick)
{
	uint32_t b, i = ix_find(d, h);

	if (i != NIL) { /* replaced file */
		d->bytes -= d->e[i].size;
		d->dirs[d->e[i].dir].files -= d->e[i].size;
		d->e[i].size = size;
		d->e[i].tick = tick;
		goto add;
	}
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 1024;
		d->e = tl_realloc(d->e, d->cap * sizeof(*d->e));
	}
	if (d->n >= d->nbucket)
		ix_rehash(d);
	i = d->n++;
	b = bidx(d, h);
	d->e[i] = (struct dent){h, tick, size, d->bucket[b], dir};
	d->bucket[b] = i;
add:
	d->bytes += size;
	d->dirs[dir].files += size;
}

/* Unlink entry i from its chain (the slot stays). */
static void
ix_unchain(struct dcache *d, uint32_t i)
{
	uint32_t *pp = &d->bucket[bidx(d, d->e[i].h)];

	while (*pp != i)
		pp = &d->e[*pp].next;
	*pp = d->e[i].next;
}

static void
ix_remove(struct dcache *d, uint32_t i)
{
	uint32_t last = d->n - 1, *pp;

	d->bytes -= d->e[i].size;
	d->dirs[d->e[i].dir].files -= d->e[i].size;
	ix_unchain(d, i);
	if (i != last) {
		/* Move the last entry into slot i. */
		pp = &d->bucket[bidx(d, d->e[last].h)];
		while (*pp != last)
			pp = &d->e[*pp].next;
		*pp = i;
		d->e[i] = d->e[last];
	}
	d->n--;
}

static void
block_path(struct dcache *d, uint32_t dir, uint64_t h, char *buf, size_t n)
{
	snprintf(buf, n, "%s/blocks/%02x/%016" PRIx64, d->dirs[dir].path,
		 (unsigned)(h >> 56), h);
}

static uint64_t
rng_next(struct dcache *d)
{
	d->rng ^= d->rng << 13;
	d->rng ^= d->rng >> 7;
	d->rng ^= d->rng << 17;
	return d->rng;
}

/* Evict one sampled entry (of dir, or any dir when dir < 0); its path is
 * written to path for the caller to unlink outside the lock.  False when
 * nothing could be picked. */
static bool
evict_one(struct dcache *d, int dir, char *path, size_t n)
{
	uint32_t i, k, lim, best = NIL;
	bool small;

	if (d->n == 0)
		return false;
	/* A small cache is scanned whole: exact LRU. */
	small = d->n <= DC_SAMPLE * 8;
	lim = small ? d->n : DC_SAMPLE * (dir < 0 ? 1 : 8);
	for (k = 0; k < lim; k++) {
		i = small ? k : (uint32_t)(rng_next(d) % d->n);
		if (dir >= 0 && d->e[i].dir != (uint32_t)dir)
			continue;
		if (best == NIL || d->e[i].tick < d->e[best].tick)
			best = i;
	}
	if (best == NIL)
		return false;
	block_path(d, d->e[best].dir, d->e[best].h, path, n);
	ix_remove(d, best);
	atomic_fetch_add(&d->evicted, 1);
	return true;
}

static bool
below_floor(struct dcache *d, uint32_t dir, uint64_t need)
{
	struct statvfs sv;

	if (d->floor_pct == 0 || statvfs(d->dirs[dir].path, &sv) < 0)
		return false;
	return (unsigned __int128)(sv.f_bavail * sv.f_frsize - TL_MIN(
			   need, sv.f_bavail * sv.f_frsize)) * 100 <
	       (unsigned __int128)sv.f_blocks * sv.f_frsize * d->floor_pct;
}

/* ---- open, scan, close ---------------------------------------------------- */

/* A directory of the cache's own, inside a cache directory that
 * exists: 0700, as the blocks it holds are file data. */
static int
mkdir_own(const char *path)
{
	return mkdir(path, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

/* The operator makes the cache directory itself: a missing one is a
 * mistyped setting (or an unmounted disk), never something to create,
 * least of all relative to / where a daemon runs. */
static int
cache_dir_check(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) < 0) {
		tl_err("cache", "cache directory %s: %s (create it, mode "
		       "0700, owned by the user tesserad runs as)", dir,
		       strerror(errno));
		return -ENOENT;
	}
	if (!S_ISDIR(st.st_mode)) {
		tl_err("cache", "cache directory %s is not a directory", dir);
		return -ENOTDIR;
	}
	return 0;
}

/* Index one subdirectory's files: readdir and fstatat only. */
static void
scan_sub(struct dcache *d, uint32_t dir, const char *sub)
{
	struct dirent *de;
	struct stat st;
	uint64_t h;
	char *end;
	DIR *dp = opendir(sub);

	if (dp == NULL)
		return;
	while ((de = readdir(dp)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (strlen(de->d_name) != 16) {
			/* A temporary file a crash left behind. */
			unlinkat(dirfd(dp), de->d_name, 0);
			continue;
		}
		h = strtoull(de->d_name, &end, 16);
		if (*end != '\0' ||
		    fstatat(dirfd(dp), de->d_name, &st, 0) < 0 ||
		    !S_ISREG(st.st_mode) || st.st_size > UINT32_MAX)
			continue;
		/* Older files first in LRU order: use their mtime. */
		ix_add(d, h, (uint32_t)st.st_size, dir,
		       (uint64_t)st.st_mtime);
	}
	closedir(dp);
}

int
dcache_open(const char *dirs, uint64_t size, unsigned floor_pct,
	    struct dcache **out)
{
	struct dcache *d;
	char *list, *tok, *save = NULL, path[4096];
	unsigned i, k;
	int r = 0;

	*out = NULL;
	if (dirs == NULL || dirs[0] == '\0')
		return 0;
	d = tl_calloc(1, sizeof(*d));
	pthread_mutex_init(&d->mu, NULL);
	pthread_mutex_init(&d->fill_mu, NULL);
	pthread_cond_init(&d->fill_cv, NULL);
	d->limit = size ? size : DC_DEFAULT_SIZE;
	d->floor_pct = TL_MIN(floor_pct, 99u);
	d->rng = tl_random_u64() | 1;
	ix_rehash(d);
	list = tl_strdup(dirs);
	for (tok = strtok_r(list, ":", &save); tok;
	     tok = strtok_r(NULL, ":", &save)) {
		d->dirs = tl_realloc(d->dirs, (d->ndirs + 1) * sizeof(*d->dirs));
		d->dirs[d->ndirs++] = (struct dcdir){tl_strdup(tok), 0};
	}
	free(list);
	if (d->ndirs == 0)
		goto out;
	for (i = 0; i < d->ndirs && r == 0; i++) {
		r = cache_dir_check(d->dirs[i].path);
		if (r < 0)
			break;
		snprintf(path, sizeof(path), "%s/blocks", d->dirs[i].path);
		r = mkdir_own(path);
		for (k = 0; k < DC_SUBDIRS && r == 0; k++) {
			snprintf(path, sizeof(path), "%s/blocks/%02x",
				 d->dirs[i].path, k);
			r = mkdir_own(path);
			if (r == 0)
				scan_sub(d, i, path);
		}
		if (r == 0) {
			snprintf(path, sizeof(path), "%s/staging",
				 d->dirs[i].path);
			r = mkdir_own(path);
		}
		if (r < 0)
			tl_err("cache", "cache directory %s: %s",
			       d->dirs[i].path, strerror(-r));
	}
	/* Ticks of scanned entries are mtimes; new accesses come after. */
	d->tick = (uint64_t)(tl_now_ns() / 1000000000ULL) + 1;
	if (d->n > 0)
		tl_info("cache", "disk cache: %u blocks, %llu bytes found",
			d->n, (unsigned long long)d->bytes);
out:
	if (r < 0 || d->ndirs == 0) {
		dcache_close(d);
		return r < 0 ? r : -EINVAL;
	}
	*out = d;
	return 0;
}

static void fill_stop(struct dcache *d);

void
dcache_close(struct dcache *d)
{
	unsigned i;

	if (d == NULL)
		return;
	fill_stop(d);
	for (i = 0; i < d->ndirs; i++)
		free(d->dirs[i].path);
	free(d->dirs);
	free(d->e);
	free(d->bucket);
	pthread_mutex_destroy(&d->mu);
	pthread_mutex_destroy(&d->fill_mu);
	pthread_cond_destroy(&d->fill_cv);
	free(d);
}

unsigned
dcache_ndirs(struct dcache *d)
{
	return d->ndirs;
}

const char *
dcache_dir(struct dcache *d, unsigned i)
{
	return d->dirs[i].path;
}

unsigned
dcache_dir_of(struct dcache *d, const char *key)
{
	return (unsigned)(cache_key_hash(key) % d->ndirs);
}

/* ---- get and put ---------------------------------------------------------- */

static void
forget(struct dcache *d, uint64_t h, const char *path)
{
	uint32_t i;

	pthread_mutex_lock(&d->mu);
	i = ix_find(d, h);
	if (i != NIL)
		ix_remove(d, i);
	pthread_mutex_unlock(&d->mu);
	unlink(path);
}

int
dcache_get(struct dcache *d, const char *key, uint32_t blen, uint32_t off,
	   uint32_t n, uint8_t *buf)
{
	uint64_t h = cache_key_hash(key);
	uint32_t i, dir = 0;
	char path[4096];
	int r;

	pthread_mutex_lock(&d->mu);
	i = ix_find(d, h);
	if (i != NIL) {
		d->e[i].tick = ++d->tick;
		dir = d->e[i].dir;
	}
	pthread_mutex_unlock(&d->mu);
	if (i == NIL) {
		atomic_fetch_add(&d->misses, 1);
		return -ENOENT;
	}
	block_path(d, dir, h, path, sizeof(path));
	r = cache_blockfile_read(path, key, blen, off, n, buf, NULL);
	if (r == 0) {
		atomic_fetch_add(&d->hits, 1);
		return 0;
	}
	if (r == -EBADMSG) {
		atomic_fetch_add(&d->damaged, 1);
		tl_warn("cache", "damaged cache file %s (block %s) "
				 "deleted; refetching",
			path, key);
	}
	/* Anything but a clean hit is a miss: the file goes (a hash
	 * collision included: the newer block takes the place). */
	forget(d, h, path);
	atomic_fetch_add(&d->misses, 1);
	return -ENOENT;
}

/* Make room for a file of size bytes in dir; false if the floor cannot
 * be kept. */
static bool
make_room(struct dcache *d, uint32_t dir, uint64_t size)
{
	char path[4096];
	unsigned guard;
	bool ok = true;

	for (;;) {
		pthread_mutex_lock(&d->mu);
		ok = d->bytes + size <= d->limit || d->n == 0;
		if (ok || !evict_one(d, -1, path, sizeof(path))) {
			pthread_mutex_unlock(&d->mu);
			break;
		}
		pthread_mutex_unlock(&d->mu);
		unlink(path);
	}
	if (size > d->limit)
		return false;
	for (guard = 0; below_floor(d, dir, size); guard++) {
		pthread_mutex_lock(&d->mu);
		ok = guard < 64 && evict_one(d, (int)dir, path, sizeof(path));
		pthread_mutex_unlock(&d->mu);
		if (!ok)
			return false;
		unlink(path);
	}
	return true;
}

/* Cache a block read at tick (0: now). */
static void
put_at(struct dcache *d, const char *key, const uint8_t *data, uint32_t len,
       uint64_t tick)
{
	uint64_t h = cache_key_hash(key), size;
	uint32_t dir = (uint32_t)(h % d->ndirs), i;
	char path[4096];

	size = cache_blockfile_size(key, data, len);

	pthread_mutex_lock(&d->mu);
	if ((i = ix_find(d, h)) != NIL) {
		/* Cached already (by an earlier fill of a reader that missed
		 * before it was written): this one was read too. */
		d->e[i].tick = TL_MAX(d->e[i].tick, tick ? tick : ++d->tick);
		pthread_mutex_unlock(&d->mu);
		return;
	}
	pthread_mutex_unlock(&d->mu);
	if (!make_room(d, dir, size))
		return;
	block_path(d, dir, h, path, sizeof(path));
	if (cache_blockfile_write(path, key, data, len, false) < 0)
		return; /* the cache is best effort */
	pthread_mutex_lock(&d->mu);
	ix_add(d, h, (uint32_t)size, dir, tick ? tick : ++d->tick);
	pthread_mutex_unlock(&d->mu);
}

void
dcache_put(struct dcache *d, const char *key, const uint8_t *data,
	   uint32_t len)
{
	put_at(d, key, data, len, 0);
}

/* ---- fills off the read path --------------------------------------------- */

static void *
fill_main(void *arg)
{
	struct dcache *d = arg;
	struct dfill *f;

	pthread_mutex_lock(&d->fill_mu);
	for (;;) {
		while (d->fill_head == NULL && !d->fill_stop)
			pthread_cond_wait(&d->fill_cv, &d->fill_mu);
		f = d->fill_head;
		if (f == NULL)
			break; /* stopping, and everything is written */
		d->fill_head = f->next;
		if (d->fill_head == NULL)
			d->fill_tail = NULL;
		pthread_mutex_unlock(&d->fill_mu);
		put_at(d, f->key, f->data, f->len, f->tick);
		f->done(f->arg);
		pthread_mutex_lock(&d->fill_mu);
		d->fill_bytes -= f->len;
		d->fill_done++;
		pthread_cond_broadcast(&d->fill_cv);
		free(f->key);
		free(f);
	}
	pthread_mutex_unlock(&d->fill_mu);
	return NULL;
}

/* Write what waits, then stop the thread (at close). */
static void
fill_stop(struct dcache *d)
{
	pthread_mutex_lock(&d->fill_mu);
	d->fill_stop = true;
	pthread_cond_broadcast(&d->fill_cv);
	pthread_mutex_unlock(&d->fill_mu);
	if (d->fill_on)
		pthread_join(d->fill, NULL);
	d->fill_on = false;
}

bool
dcache_fill(struct dcache *d, const char *key, const uint8_t *data,
	    uint32_t len, void (*done)(void *arg), void *arg)
{
	struct dfill *f;
	bool ok = false;

	pthread_mutex_lock(&d->fill_mu);
	if (d->fill_stop || d->fill_bytes + len > DC_FILL_MAX)
		goto out;
	if (!d->fill_on) {
		if (pthread_create(&d->fill, NULL, fill_main, d) != 0)
			goto out;
		d->fill_on = true;
	}
	f = tl_malloc(sizeof(*f));
	*f = (struct dfill){NULL, tl_strdup(key), data, len, 0, done, arg};
	pthread_mutex_lock(&d->mu); /* a leaf under fill_mu */
	f->tick = ++d->tick;
	pthread_mutex_unlock(&d->mu);
	if (d->fill_tail)
		d->fill_tail->next = f;
	else
		d->fill_head = f;
	d->fill_tail = f;
	d->fill_bytes += len;
	d->fill_queued++;
	pthread_cond_broadcast(&d->fill_cv);
	ok = true;
out:
	pthread_mutex_unlock(&d->fill_mu);
	return ok;
}

int
dcache_adopt(struct dcache *d, const char *from, const char *key)
{
	uint64_t h = cache_key_hash(key);
	uint32_t dir = (uint32_t)(h % d->ndirs);
	char path[4096];
	struct stat st;

	if (stat(from, &st) < 0)
		return -errno;
	if (!make_room(d, dir, (uint64_t)st.st_size))
		return -ENOSPC;
	block_path(d, dir, h, path, sizeof(path));
	if (rename(from, path) < 0)
		return -errno;
	pthread_mutex_lock(&d->mu);
	ix_add(d, h, (uint32_t)st.st_size, dir, ++d->tick);
	pthread_mutex_unlock(&d->mu);
	return 0;
}

void
dcache_stats(struct dcache *d, struct cache_stats *s)
{
	uint64_t upto;

	/* Count the fills handed over before this call as done: callers
	 * (status, tests) see what the reads they made have cached.  Later
	 * fills are not waited for, so a busy cache cannot hold this up
	 * for longer than DC_FILL_MAX bytes take to write. */
	pthread_mutex_lock(&d->fill_mu);
	upto = d->fill_queued;
	while (d->fill_done < upto)
		pthread_cond_wait(&d->fill_cv, &d->fill_mu);
	pthread_mutex_unlock(&d->fill_mu);
	pthread_mutex_lock(&d->mu);
	s->disk_blocks = d->n;
	s->disk_bytes = d->bytes;
	pthread_mutex_unlock(&d->mu);
	s->disk_hits = atomic_load(&d->hits);
	s->disk_misses = atomic_load(&d->misses);
	s->disk_damaged = atomic_load(&d->damaged);
	s->disk_evicted = atomic_load(&d->evicted);
}
