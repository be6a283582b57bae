/*
 * htab.c - the intrusive hash table of tl.h.
 *
 * Why not a Debian library: GLib's GHashTable allocates an entry per
 * insertion and hashes through callbacks, and uthash's handle is 56
 * bytes of macros; the block, file, writeback and reply tables sit on
 * the data path under their owners' locks, and a 16-byte node that the
 * owner embeds costs no allocation and no indirect call.
 */
#include "config.h"

#include <stdlib.h>

#include "lib/tl.h"

#define TL_HTAB_MIN_SHIFT 4 /* 16 buckets */

static size_t
bucket(const struct tl_htab *t, uint64_t hash)
{
	return (size_t)((hash * 0x9E3779B97F4A7C15ULL) >> t->shift);
}

static size_t
nbuckets(const struct tl_htab *t)
{
	return (size_t)1 << (64 - t->shift);
}

void
tl_htab_init(struct tl_htab *t, size_t hint)
{
	unsigned bits = TL_HTAB_MIN_SHIFT;

	while (bits < 40 && ((size_t)1 << bits) < hint)
		bits++;
	t->shift = 64 - bits;
	t->n = 0;
	t->b = tl_calloc(nbuckets(t), sizeof(*t->b));
}

void
tl_htab_fini(struct tl_htab *t)
{
	free(t->b);
	t->b = NULL;
	t->n = 0;
}

static void
grow(struct tl_htab *t)
{
	struct tl_hnode **old = t->b, *n, *next;
	size_t i, nold = nbuckets(t);

	t->shift--;
	t->b = tl_calloc(nbuckets(t), sizeof(*t->b));
	for (i = 0; i < nold; i++)
		for (n = old[i]; n != NULL; n = next) {
			size_t j = bucket(t, n->hash);

			next = n->next;
			n->next = t->b[j];
			t->b[j] = n;
		}
	free(old);
}

void
tl_htab_add(struct tl_htab *t, struct tl_hnode *n, uint64_t hash)
{
	size_t i;

	if (t->b == NULL)
		tl_htab_init(t, 0);
	else if (t->n >= nbuckets(t) && t->shift > 24)
		grow(t);
	i = bucket(t, hash);
	n->hash = hash;
	n->next = t->b[i];
	t->b[i] = n;
	t->n++;
}

void
tl_htab_del(struct tl_htab *t, struct tl_hnode *n)
{
	struct tl_hnode **pp = &t->b[bucket(t, n->hash)];

	while (*pp != n)
		pp = &(*pp)->next;
	*pp = n->next;
	n->next = NULL;
	t->n--;
}

static struct tl_hnode *
same_hash(struct tl_hnode *n, uint64_t hash)
{
	while (n != NULL && n->hash != hash)
		n = n->next;
	return n;
}

struct tl_hnode *
tl_htab_find(const struct tl_htab *t, uint64_t hash)
{
	if (t->b == NULL)
		return NULL;
	return same_hash(t->b[bucket(t, hash)], hash);
}

struct tl_hnode *
tl_htab_find_next(const struct tl_hnode *n)
{
	return same_hash(n->next, n->hash);
}

static struct tl_hnode *
from_bucket(const struct tl_htab *t, size_t i)
{
	for (; i < nbuckets(t); i++)
		if (t->b[i] != NULL)
			return t->b[i];
	return NULL;
}

struct tl_hnode *
tl_htab_first(const struct tl_htab *t)
{
	return t->b != NULL ? from_bucket(t, 0) : NULL;
}

struct tl_hnode *
tl_htab_next(const struct tl_htab *t, const struct tl_hnode *n)
{
	if (n->next != NULL)
		return n->next;
	return from_bucket(t, bucket(t, n->hash) + 1);
}
