/*
 * pool.c - a fixed pool of worker threads with a bounded job queue.
 *
 * Submitting to a full queue blocks the submitter: that is the
 * back-pressure that keeps a burst of work from growing memory without
 * bound.
 *
 * Wakeups.  Idle workers wait each on its own condition variable, on a
 * stack (last idle, first woken: its stack and caches are warm).  A
 * submit hands the job straight to the top idle worker and wakes that one
 * thread; only when none is idle does the job wait in the queue, which a
 * worker empties before it sleeps again.  So a job costs at most one
 * wakeup, and no worker wakes to find nothing to do, as all of them
 * could on one shared condition variable.
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

struct pool_worker {
	struct tl_pool *pool;
	pthread_t thread;
	pthread_cond_t wake;      /* job handed over, or stopping */
	struct pool_job *job;     /* handed over by a submit */
	struct pool_worker *next; /* on the idle stack */
};

struct tl_pool {
	pthread_mutex_t lock;
	pthread_cond_t nonfull;
	struct pool_job *head, *tail;
	unsigned queued;
	unsigned queue_max;
	bool stopping;
	struct pool_worker *idle; /* stack of waiting workers */
	unsigned nthreads;
	struct pool_worker *workers;
	char *name;
};

/* Next job for w (p->lock held): the one handed over, else the queue's
 * head; NULL if none. */
static struct pool_job *
pool_take(struct tl_pool *p, struct pool_worker *w)
{
	struct pool_job *j = w->job;

	if (j != NULL) {
		w->job = NULL;
		return j;
	}
	j = p->head;
	if (j == NULL)
		return NULL;
	p->head = j->next;
	if (p->head == NULL)
		p->tail = NULL;
	p->queued--;
	if (p->queue_max)
		pthread_cond_signal(&p->nonfull);
	return j;
}

static void *
pool_main(void *arg)
{
	struct pool_worker *w = arg;
	struct tl_pool *p = w->pool;
	struct pool_job *j;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		j = pool_take(p, w);
		if (j == NULL) {
			if (p->stopping)
				break; /* stopping and drained */
			w->next = p->idle;
			p->idle = w;
			/* A submit pops w before handing it a job; stopping
			 * leaves it on the stack, which nobody reads then. */
			while (w->job == NULL && !p->stopping)
				pthread_cond_wait(&w->wake, &p->lock);
			continue;
		}
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
	pthread_cond_init(&p->nonfull, NULL);
	p->queue_max = queue_max;
	p->name = tl_strdup(name);
	p->nthreads = nthreads ? nthreads : 1;
	p->workers = tl_calloc(p->nthreads, sizeof(*p->workers));
	pthread_attr_init(&attr);
	/* Workers run deep call chains (XDR, LMDB): give them room. */
	pthread_attr_setstacksize(&attr, 2u << 20);
	for (unsigned i = 0; i < p->nthreads; i++) {
		struct pool_worker *w = &p->workers[i];
		char tname[32];
		int rc;

		w->pool = p;
		pthread_cond_init(&w->wake, NULL);
		rc = pthread_create(&w->thread, &attr, pool_main, w);
		if (rc != 0) {
			tl_err("pool", "%s: cannot start thread: %s", name,
			       strerror(rc));
			abort();
		}
		snprintf(tname, sizeof(tname), "%.10s-%u", name, i % 1000);
		tname[15] = '\0'; /* the kernel's limit for thread names */
		pthread_setname_np(w->thread, tname);
	}
	pthread_attr_destroy(&attr);
	return p;
}

void
tl_pool_submit(struct tl_pool *p, tl_pool_fn fn, void *arg)
{
	struct pool_job *j = tl_malloc(sizeof(*j));
	struct pool_worker *w;

	j->next = NULL;
	j->fn = fn;
	j->arg = arg;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		w = p->idle;
		if (w != NULL) {
			p->idle = w->next;
			w->job = j;
			pthread_mutex_unlock(&p->lock);
			/* After the unlock, so the worker does not wake into
			 * a held mutex; w->job tells it the wakeup is real. */
			pthread_cond_signal(&w->wake);
			return;
		}
		if (!p->queue_max || p->queued < p->queue_max)
			break;
		pthread_cond_wait(&p->nonfull, &p->lock);
	}
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->queued++;
	pthread_mutex_unlock(&p->lock);
}

void
tl_pool_destroy(struct tl_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_cond_signal(&p->workers[i].wake);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++) {
		pthread_join(p->workers[i].thread, NULL);
		pthread_cond_destroy(&p->workers[i].wake);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->nonfull);
	free(p->workers);
	free(p->name);
	free(p);
}
