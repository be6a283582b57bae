/*
 * blockkey.c - the object names of blocks, made and parsed in one place.
 *
 *   <volume>/chunks/<id / 1000000>/<id / 1000>/<id>_<block index>_<block len>
 *
 * The two directory levels keep listings and file:// directories small;
 * the length in the name lets a reader (and writeback's staging scan)
 * know a block's size without asking the store.  `tessera gc` and
 * `tessera fsck` read volumes through these two calls, so a key they
 * take for a block is exactly one the data path made.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cache/cache.h"

void
cache_block_key(char *buf, size_t buflen, const char *volume, uint64_t id,
		uint32_t idx, uint32_t len)
{
	snprintf(buf, buflen, "%s/chunks/%llu/%llu/%llu_%u_%u", volume,
		 (unsigned long long)(id / 1000000),
		 (unsigned long long)(id / 1000), (unsigned long long)id, idx,
		 len);
}

/* A decimal number at *p (at least one digit, at most max), *p moved
 * past it. */
static bool
number(const char **p, uint64_t max, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (max - (uint64_t)(*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*out = v;
	return true;
}

int
cache_block_key_parse(const char *key, const char *volume, uint64_t *id,
		      uint32_t *idx, uint32_t *len)
{
	char vol[META_VOLNAME_MAX + 1], again[256];
	const char *p = strchr(key, '/');
	uint64_t dir, i, x, n;
	size_t vl;

	if (p == NULL || p == key || (size_t)(p - key) > META_VOLNAME_MAX)
		return -EINVAL;
	vl = (size_t)(p - key);
	memcpy(vol, key, vl);
	vol[vl] = '\0';
	if (volume != NULL && strcmp(volume, vol) != 0)
		return -EINVAL;
	p++;
	if (strncmp(p, "chunks/", 7) != 0)
		return -EINVAL;
	p += 7;
	if (!number(&p, UINT64_MAX, &dir) || *p++ != '/' ||
	    !number(&p, UINT64_MAX, &dir) || *p++ != '/' ||
	    !number(&p, UINT64_MAX, &i) || *p++ != '_' ||
	    !number(&p, UINT32_MAX, &x) || *p++ != '_' ||
	    !number(&p, UINT32_MAX, &n) || *p != '\0')
		return -EINVAL;
	/* Exactly the name cache_block_key makes: the right directories,
	 * no leading zeros. */
	cache_block_key(again, sizeof(again), vol, i, (uint32_t)x, (uint32_t)n);
	if (strcmp(again, key) != 0)
		return -EINVAL;
	*id = i;
	*idx = (uint32_t)x;
	*len = (uint32_t)n;
	return 0;
}
