/*
 * os_count.h - how many objects a store lists under a prefix, for the
 * unit tests that check what reached (or left) an object store.
 */
#ifndef T_OS_COUNT_H
#define T_OS_COUNT_H

#include "objstore/objstore.h"

static int
t_count_cb(void *arg, const char *key, uint64_t size)
{
	(void)key;
	(void)size;
	(*(int *)arg)++;
	return 0;
}

/* Add the objects under prefix to *n; returns os_list's result. */
static inline int
t_os_count(struct os_store *s, const char *prefix, int *n)
{
	return os_list(s, prefix, NULL, t_count_cb, n);
}

/* The objects under prefix (what could be listed). */
static inline int
t_nobjects(struct os_store *s, const char *prefix)
{
	int n = 0;

	t_os_count(s, prefix, &n);
	return n;
}

#endif
