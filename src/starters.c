/* SPDX-License-Identifier: MIT */
/*
 * Starters: threads that start a stream's jobs, so one caller uses every
 * CPU.  A vfork-style spawn puts its thread to sleep until the child has
 * exec'd; from one thread, jobs start one exec at a time, however many
 * CPUs there are.  A stream with room for several jobs at once hands its
 * jobs to a few starter threads (one per CPU), which launch them in
 * parallel and hand the children back; the stream's own thread keeps
 * asking the source, reporting, and driving the engine.
 *
 * Everything here is called, and runs, with ctx->lock held; a starter
 * lets go of it only around zmp__launch(), which locks for itself.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct item {
    zmp_options job;
    size_t index;
    struct zmp__proc *p;
    int err;
};

/* A ring of items: [head, head + n) modulo cap. */
struct ring {
    struct item *a;
    size_t head, n, cap;
};

struct zmp__starters {
    struct zmp__ctx *ctx;
    pthread_t *threads;
    unsigned nthreads;
    pthread_cond_t cond;      /* a job queued, or quit */
    struct ring queue;        /* jobs to start */
    struct ring done;         /* started (or failed), for the stream */
    size_t launching;         /* being started now */
    bool paused;              /* out of a resource: wait for a job to end */
    bool quit;
};

/* Room for `need` items in all; 0 or -ENOMEM. */
static int ring_reserve(struct ring *r, size_t need)
{
    size_t cap, i;
    struct item *a;

    if (need <= r->cap)
        return 0;
    cap = r->cap ? r->cap * 2 : 16;
    if (cap < need)
        cap = need;
    a = malloc(cap * sizeof *a);
    if (!a)
        return -ENOMEM;
    for (i = 0; i < r->n; i++)
        a[i] = r->a[(r->head + i) % r->cap];
    free(r->a);
    r->a = a;
    r->head = 0;
    r->cap = cap;
    return 0;
}

static int ring_push(struct ring *r, const struct item *it, bool front)
{
    int e = ring_reserve(r, r->n + 1);

    if (e < 0)
        return e;
    if (front) {
        r->head = (r->head + r->cap - 1) % r->cap;
        r->a[r->head] = *it;
    } else {
        r->a[(r->head + r->n) % r->cap] = *it;
    }
    r->n++;
    return 0;
}

static bool ring_pop(struct ring *r, struct item *it)
{
    if (!r->n)
        return false;
    *it = r->a[r->head];
    r->head = (r->head + 1) % r->cap;
    r->n--;
    return true;
}

struct launching {
    struct zmp__starters *st;
    struct item *it;
};

/* The child is the context's: hand it to the stream in the same breath,
 * before the engine can report its end (the stream would miss it). */
static void hand_over(void *arg, struct zmp__proc *p)
{
    struct launching *l = arg;

    l->it->p = p;
    l->it->err = 0;
    l->st->launching--;
    /* The done ring had room reserved when the job was queued. */
    (void)ring_push(&l->st->done, l->it, false);
    pthread_cond_broadcast(&l->st->ctx->cond);
}

static void *starter(void *arg)
{
    struct zmp__starters *st = arg;
    struct zmp__ctx *ctx = st->ctx;
    struct launching l = { st, NULL };
    struct item it;
    int r;

    zmp__lock(ctx);
    for (;;) {
        while (!st->quit && (st->paused || !st->queue.n))
            pthread_cond_wait(&st->cond, &ctx->lock);
        if (st->quit)
            break;
        ring_pop(&st->queue, &it);
        st->launching++;
        l.it = &it;
        zmp__unlock(ctx);
        r = zmp__launch_cb(ctx, &it.job, &it.p, hand_over, &l);
        zmp__lock(ctx);
        if (r < 0) {
            it.err = r;
            st->launching--;
            (void)ring_push(&st->done, &it, false);
            /* No event of the engine comes of a failed start: wake the
             * stream even when it is the thread blocked on the engine. */
            zmp__ctx_kick(ctx);
        }
    }
    zmp__unlock(ctx);
    return NULL;
}

/*
 * Starter threads for a stream that runs up to `parallel` jobs at once:
 * one per CPU, none when that would be one (the stream then starts its
 * jobs itself).  Returns 0 with *ret NULL or the starters, or -errno.
 */
int zmp__starters_new(struct zmp__ctx *ctx, unsigned parallel,
                      struct zmp__starters **ret)
{
    unsigned n = (unsigned)zmp_cpu_count(), i;
    struct zmp__starters *st;

    *ret = NULL;
    if (n > parallel)
        n = parallel;
    if (n < 2)
        return 0;
    st = calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    st->ctx = ctx;
    st->threads = calloc(n, sizeof *st->threads);
    if (!st->threads || pthread_cond_init(&st->cond, NULL) != 0) {
        free(st->threads);
        free(st);
        return -ENOMEM;
    }
    for (i = 0; i < n; i++)
        if (pthread_create(&st->threads[i], NULL, starter, st) != 0)
            break;
    st->nthreads = i;
    if (i == 0) {
        /* No thread to be had: the stream starts its jobs itself. */
        pthread_cond_destroy(&st->cond);
        free(st->threads);
        free(st);
        return 0;
    }
    *ret = st;
    return 0;
}

/* Queue a job to start (at the front: a retry); 0 or -ENOMEM.  Room for
 * its outcome is made now, so a starter never fails to hand it back. */
int zmp__starters_push(struct zmp__starters *st, const zmp_options *job,
                       size_t index, bool front)
{
    struct item it = { .job = *job, .index = index };
    int r;

    r = ring_reserve(&st->done, st->done.n + st->queue.n + st->launching + 1);
    if (r < 0)
        return r;
    r = ring_push(&st->queue, &it, front);
    if (r == 0)
        pthread_cond_signal(&st->cond);
    return r;
}

/* The next job started (p) or failed to (err < 0); false when none. */
bool zmp__starters_pop(struct zmp__starters *st, struct zmp__proc **ret_p,
                       int *ret_err, size_t *ret_index, zmp_options *ret_job)
{
    struct item it;

    if (!ring_pop(&st->done, &it))
        return false;
    *ret_p = it.err < 0 ? NULL : it.p;
    *ret_err = it.err;
    *ret_index = it.index;
    *ret_job = it.job;
    return true;
}

/* Jobs queued, being started, or started and not popped yet. */
size_t zmp__starters_busy(const struct zmp__starters *st)
{
    return st->queue.n + st->launching + st->done.n;
}

/* Jobs being started, or started and not popped yet. */
size_t zmp__starters_running(const struct zmp__starters *st)
{
    return st->launching + st->done.n;
}

bool zmp__starters_ready(const struct zmp__starters *st)
{
    return st->done.n > 0;
}

/* Hold the queue (out of a resource) or let it go again. */
void zmp__starters_pause(struct zmp__starters *st, bool pause)
{
    st->paused = pause;
    if (!pause)
        pthread_cond_broadcast(&st->cond);
}

bool zmp__starters_paused(const struct zmp__starters *st)
{
    return st->paused;
}

/* Take a job back off the queue, never started; false when none. */
bool zmp__starters_unqueue(struct zmp__starters *st, size_t *ret_index)
{
    struct item it;

    if (!ring_pop(&st->queue, &it))
        return false;
    *ret_index = it.index;
    return true;
}

/* Stop the threads (a start in progress finishes first) and free; a child
 * started and not popped is killed and reaped: nobody asked for it. */
void zmp__starters_free(struct zmp__starters *st)
{
    struct zmp__ctx *ctx;
    struct item it;
    unsigned i;

    if (!st)
        return;
    ctx = st->ctx;
    st->quit = true;
    pthread_cond_broadcast(&st->cond);
    zmp__unlock(ctx);
    for (i = 0; i < st->nthreads; i++)
        pthread_join(st->threads[i], NULL);
    zmp__lock(ctx);
    while (ring_pop(&st->done, &it))
        if (it.err >= 0)
            zmp__proc_abandon(it.p);
    pthread_cond_destroy(&st->cond);
    free(st->queue.a);
    free(st->done.a);
    free(st->threads);
    free(st);
}
