/*
 * alloc.c - allocation that never returns NULL.
 *
 * A gateway that runs out of memory cannot serve correctly; aborting
 * loudly beats limping on, and keeps every call site free of checks.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/mman.h>

#include "lib/tl.h"

static void __attribute__((noreturn)) oom(size_t n)
{
	char msg[96];
	int len = snprintf(msg, sizeof(msg),
			   "tessera: out of memory allocating %zu bytes\n", n);
	if (write(STDERR_FILENO, msg, (size_t)len) < 0) {
		/* aborting anyway */
	}
	abort();
}

void *
tl_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		oom(n);
	return p;
}

void *
tl_calloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (p == NULL)
		oom(nmemb * size);
	return p;
}

void *
tl_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		oom(n);
	return q;
}

char *
tl_strdup(const char *s)
{
	return tl_memdup(s, strlen(s) + 1);
}

char *
tl_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = tl_malloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void *
tl_memdup(const void *p, size_t n)
{
	void *q = tl_malloc(n);
	if (n)
		memcpy(q, p, n);
	return q;
}

char *
tl_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = tl_vasprintf(fmt, ap);
	va_end(ap);
	return s;
}

char *
tl_vasprintf(const char *fmt, va_list ap)
{
	char *s;

	if (vasprintf(&s, fmt, ap) < 0)
		oom(0);
	return s;
}

#define TL_HUGE_SZ (2u << 20)

static size_t
page_round(size_t len)
{
	return (len + 4095) & ~(size_t)4095;
}

void *
tl_map_huge(size_t len)
{
	size_t n = page_round(len), head, tail;
	uint8_t *raw, *d;

	raw = mmap(NULL, n + TL_HUGE_SZ, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		abort(); /* out of memory, as tl_malloc does */
	d = (uint8_t *)(((uintptr_t)raw + TL_HUGE_SZ - 1) &
			~(uintptr_t)(TL_HUGE_SZ - 1));
	head = (size_t)(d - raw);
	tail = TL_HUGE_SZ - head;
	if (head > 0)
		munmap(raw, head);
	if (tail > 0)
		munmap(d + n, tail);
#ifdef MADV_HUGEPAGE
	madvise(d, n, MADV_HUGEPAGE); /* a hint: fine if refused */
#endif
	return d;
}

void
tl_unmap_huge(void *p, size_t len)
{
	if (p != NULL)
		munmap(p, page_round(len));
}
