/* cache: block object names - what cache_block_key makes,
 * cache_block_key_parse takes back exactly, and nothing else. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "cache/cache.h"
#include "t/unit/tap.h"

static void
round_trip(const char *vol, uint64_t id, uint32_t idx, uint32_t len)
{
	char key[256];
	uint64_t i = 0;
	uint32_t x = 0, n = 0;

	cache_block_key(key, sizeof(key), vol, id, idx, len);
	CHECK(cache_block_key_parse(key, vol, &i, &x, &n) == 0 && i == id &&
		      x == idx && n == len,
	      "%s parses back to its slice, index and length", key);
	CHECK(cache_block_key_parse(key, NULL, &i, &x, &n) == 0 && i == id,
	      "%s parses for any volume", key);
	CHECK_EQ(cache_block_key_parse(key, "other", &i, &x, &n), -EINVAL,
		 "%s is not a key of another volume", key);
}

int
main(void)
{
	static const char *const bad[] = {
		"",
		"vol",
		"/chunks/0/0/7_0_4096",          /* no volume */
		"vol/chunks/0/0/7_0_4096x",      /* trailing bytes */
		"vol/chunks/0/0/07_0_4096",      /* leading zero */
		"vol/chunks/0/1/7_0_4096",       /* wrong directory */
		"vol/chunks/1/0/7_0_4096",       /* wrong directory */
		"vol/chunks/0/0/7_0",            /* no length */
		"vol/chunks/0/0/7_0_4294967296", /* length past 32 bits */
		"vol/chunks/0/0/7_-1_4096",
		"vol/blocks/0/0/7_0_4096",
		"vol/chunks/0/0/18446744073709551616_0_1", /* id past 64 bits */
	};
	uint64_t id;
	uint32_t idx, len;
	size_t i;

	round_trip("vol", 7, 0, 4096);
	round_trip("vol", 1234567890123ULL, 15, 4194304);
	round_trip("v-1.2_x", UINT64_MAX, UINT32_MAX, UINT32_MAX);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(cache_block_key_parse(bad[i], NULL, &id, &idx, &len),
			 -EINVAL, "\"%s\" is no block key", bad[i]);
	return tap_done();
}
