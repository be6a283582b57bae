/* lib: the intrusive hash table (tl_htab): finds what was added, keeps
 * colliding hashes apart, grows without losing a node, walks every node
 * once and lets the walker delete behind itself. */
#include "config.h"

#include <stdlib.h>

#include "lib/tl.h"
#include "t/unit/tap.h"

#define N 100000

struct item {
	struct tl_hnode hn;
	uint64_t key;
	bool seen;
};

static struct item *
find(struct tl_htab *t, uint64_t key, uint64_t hash)
{
	struct tl_hnode *n;

	TL_HTAB_FOREACH_HASH(t, n, hash)
	{
		struct item *it = TL_CONTAINER_OF(n, struct item, hn);

		if (it->key == key)
			return it;
	}
	return NULL;
}

static void
test_add_find_grow(void)
{
	struct item *it = tl_calloc(N, sizeof(*it));
	struct tl_htab t;
	size_t i, found = 0, gone = 0;

	tl_htab_init(&t, 0);
	for (i = 0; i < N; i++) {
		it[i].key = i;
		tl_htab_add(&t, &it[i].hn, i); /* a counter as the hash */
	}
	CHECK_EQ(t.n, N, "%d nodes in the table", N);
	CHECK((size_t)1 << (64 - t.shift) >= N,
	      "the buckets grew to at least one a node");
	for (i = 0; i < N; i++)
		found += find(&t, i, i) == &it[i];
	CHECK_EQ(found, N, "every node found by its hash after growing");
	CHECK(find(&t, N, N) == NULL, "a key never added is not found");
	for (i = 0; i < N; i += 2)
		tl_htab_del(&t, &it[i].hn);
	for (i = 0; i < N; i++)
		gone += find(&t, i, i) == NULL;
	CHECK_EQ(gone, N / 2, "deleted nodes are gone");
	CHECK(find(&t, 1, 1) == &it[1] && find(&t, N - 1, N - 1) == &it[N - 1],
	      "the others stay");
	CHECK_EQ(t.n, N / 2, "the count follows deletions");
	tl_htab_fini(&t);
	free(it);
}

static void
test_collisions(void)
{
	struct item it[64];
	struct tl_htab t;
	struct tl_hnode *n;
	size_t i, same = 0, ok = 0;

	memset(it, 0, sizeof(it));
	tl_htab_init(&t, 4);
	for (i = 0; i < 64; i++) {
		it[i].key = i;
		/* two hashes for 64 keys: long chains, and grows under them */
		tl_htab_add(&t, &it[i].hn, i % 2 ? 7 : 0x7000000000000007ULL);
	}
	for (i = 0; i < 64; i++)
		ok += find(&t, i, i % 2 ? 7 : 0x7000000000000007ULL) == &it[i];
	CHECK_EQ(ok, 64, "keys sharing a hash are told apart by the caller");
	TL_HTAB_FOREACH_HASH(&t, n, 7)
	same += n->hash == 7;
	CHECK_EQ(same, 32, "a hash's walk yields exactly its 32 nodes");
	CHECK(find(&t, 1, 0x7000000000000007ULL) == NULL,
	      "a key is not found under another hash");
	tl_htab_del(&t, &it[31].hn);
	CHECK(find(&t, 31, 7) == NULL && find(&t, 33, 7) == &it[33],
	      "deleting from the middle of a chain keeps the rest");
	tl_htab_fini(&t);
}

static void
test_walk(void)
{
	struct tl_htab t;
	struct tl_hnode *n, *next;
	struct item *it;
	size_t i, seen = 0, twice = 0, freed = 0;

	tl_htab_init(&t, 16);
	CHECK(tl_htab_first(&t) == NULL, "an empty table walks nothing");
	for (i = 0; i < 1000; i++) {
		it = tl_calloc(1, sizeof(*it));
		it->key = i;
		tl_htab_add(&t, &it->hn, tl_random_u64());
	}
	TL_HTAB_FOREACH(&t, n)
	{
		it = TL_CONTAINER_OF(n, struct item, hn);
		twice += it->seen;
		it->seen = true;
		seen++;
	}
	CHECK(seen == 1000 && twice == 0, "the walk visits each node once");
	for (n = tl_htab_first(&t); n != NULL; n = next) {
		next = tl_htab_next(&t, n);
		tl_htab_del(&t, n);
		free(TL_CONTAINER_OF(n, struct item, hn));
		freed++;
	}
	CHECK(freed == 1000 && t.n == 0 && tl_htab_first(&t) == NULL,
	      "a walk may delete each node behind it: the table empties");
	tl_htab_fini(&t);
}

int
main(void)
{
	test_add_find_grow();
	test_collisions();
	test_walk();
	return tap_done();
}
