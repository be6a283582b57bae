/*
 * pool.c - a fixed pool of worker threads with a bounded job queue.
 *
 * Submitting to a full queue blocks the submitter: that is the
 * back-pressure that keeps a burst of work from growing memory without
 * bound.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/tl.h"

struct pool_job {
	struct pool_job *next;
	tl_pool_fn fn;
	void *arg;
};

struct tl_pool {
	pthread_mutex_t lock;
	pthread_cond_t nonempty;
	pthread_cond_t nonfull;
	struct pool_job *head, *tail;
	unsigned queued;
	unsigned queue_max;
	bool stopping;
	unsigned nthreads;
	pthread_t *threads;
	char *name;
};

static void *
pool_main(void *arg)
{
	struct tl_pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->head == NULL && !p->stopping)
			pthread_cond_wait(&p->nonempty, &p->lock);
		struct pool_job *j = p->head;
		if (j == NULL)
			break; /* stopping and drained */
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		p->queued--;
		pthread_cond_signal(&p->nonfull);
		pthread_mutex_unlock(&p->lock);
		j->fn(j->arg);
		free(j);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct tl_pool *
tl_pool_create(const char *name, unsigned nthreads, unsigned queue_max)
{
	struct tl_pool *p = tl_calloc(1, sizeof(*p));
	pthread_attr_t attr;

	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->nonempty, NULL);
	pthread_cond_init(&p->nonfull, NULL);
	p->queue_max = queue_max;
	p->name = tl_strdup(name);
	p->nthreads = nthreads ? nthreads : 1;
	p->threads = tl_calloc(p->nthreads, sizeof(pthread_t));
	pthread_attr_init(&attr);
	/* Workers run deep call chains (XDR, LMDB): give them room. */
	pthread_attr_setstacksize(&attr, 2u << 20);
	for (unsigned i = 0; i < p->nthreads; i++) {
		int rc = pthread_create(&p->threads[i], &attr, pool_main, p);
		if (rc != 0) {
			tl_err("pool", "%s: cannot start thread: %s", name,
			       strerror(rc));
			abort();
		}
		char tname[32];
		snprintf(tname, sizeof(tname), "%.10s-%u", name, i % 1000);
		tname[15] = '\0'; /* the kernel's limit for thread names */
		pthread_setname_np(p->threads[i], tname);
	}
	pthread_attr_destroy(&attr);
	return p;
}

void
tl_pool_submit(struct tl_pool *p, tl_pool_fn fn, void *arg)
{
	struct pool_job *j = tl_malloc(sizeof(*j));

	j->next = NULL;
	j->fn = fn;
	j->arg = arg;
	pthread_mutex_lock(&p->lock);
	while (p->queue_max && p->queued >= p->queue_max)
		pthread_cond_wait(&p->nonfull, &p->lock);
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->queued++;
	pthread_cond_signal(&p->nonempty);
	pthread_mutex_unlock(&p->lock);
}

void
tl_pool_destroy(struct tl_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->nonempty);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->nonempty);
	pthread_cond_destroy(&p->nonfull);
	free(p->threads);
	free(p->name);
	free(p);
}
