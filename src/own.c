/* SPDX-License-Identifier: MIT */
/*
 * Each thread's own context for single blocking runs (zmp_run_opts and
 * what calls it: zmp_run, zmp_run_code).
 *
 * On the one shared context, a thread waiting for its run sleeps while
 * another drives the engine, and is woken by it when its child ends:
 * every run of a second thread crossed threads (measured: 3.7 futex calls
 * a run with 2 threads, against 0.4 with one).  A run has no handle that
 * another thread could wait on, so nothing needs it on the shared
 * context: here each thread has a private context, as a stream's workers
 * do (its own lock, engine, ring), on which it is the only leader.
 *
 * What still reaches these children from outside: zmp_signal_all (the
 * registry holds every child), and zmp_deinit, which kills them through
 * zmp__own_kill_all and, once no call is inside, lets each context's
 * engine go (zmp__own_stop_all).  A context is freed when its thread
 * exits.  After a fork(), the child keeps only the forking thread's
 * context, which forgets what it inherited on its next use, as the shared
 * one does.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct own {
    struct zmp__ctx ctx;
    struct own *prev, *next;   /* every thread's, in `all` */
};

static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static struct own *all;
/* In the child of a fork: the other threads' contexts, to forget (as the
 * shared one forgets) at the next call, which holds the shared lock. */
static struct own *orphans;
static pthread_key_t key;
static bool have_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static __thread struct own *mine;
/* A zmp_deinit() is killing: a run that starts a child meanwhile kills it
 * itself (zmp__own_started), so that none is missed. */
static int killing;

static void unlist(struct own *o)
{
    if (o->prev)
        o->prev->next = o->next;
    else if (all == o)
        all = o->next;
    if (o->next)
        o->next->prev = o->prev;
    o->prev = o->next = NULL;
}

/* The thread exits: nothing of its context runs (its calls have all
 * returned). */
static void thread_gone(void *arg)
{
    struct own *o = arg;

    pthread_mutex_lock(&all_lock);
    unlist(o);
    pthread_mutex_unlock(&all_lock);
    zmp__lock(&o->ctx);
    zmp__ctx_check_fork(&o->ctx);  /* a fork's copy: forgotten, not stopped */
    zmp__ctx_stop(&o->ctx);
    zmp__unlock(&o->ctx);
    free(o->ctx.interp);
    pthread_mutex_destroy(&o->ctx.lock);
    pthread_cond_destroy(&o->ctx.cond);
    free(o);
    mine = NULL;
}

/*
 * Around a fork() (ctx.c calls this with the shared context's lock held,
 * the order zmp_deinit() takes them in): every thread's context is locked
 * across it, so the child copies none half-changed (a descriptor closed
 * but still named in its record would be closed again by the child,
 * whatever the program had opened under that number meanwhile).  Their
 * threads hold them only between steps, never while they sleep in the
 * kernel; a job's on_output callback runs with it held, which is why that
 * callback must not fork() nor wait for a thread that may (zmp_options).
 * A thread that is exiting has left the list first: its context is not
 * copied as an orphan, only leaked in the child.
 *
 * In the child only this thread came along: only its context is left to
 * list; the others are orphans, forgotten at the next call.
 */
static void own_fork(enum zmp__fork_phase phase)
{
    struct own *o, *next;

    switch (phase) {
    case ZMP__FORK_BEFORE:
        pthread_mutex_lock(&all_lock);
        for (o = all; o; o = o->next)
            zmp__lock(&o->ctx);
        break;
    case ZMP__FORK_PARENT:
        for (o = all; o; o = o->next)
            zmp__unlock(&o->ctx);
        pthread_mutex_unlock(&all_lock);
        break;
    case ZMP__FORK_CHILD:
        for (o = all; o; o = next) {
            next = o->next;
            zmp__unlock(&o->ctx);
            if (o != mine) {
                o->next = orphans;
                orphans = o;
            }
        }
        all = mine;
        if (mine) {
            mine->prev = mine->next = NULL;
            pthread_cond_init(&mine->ctx.cond, NULL);
        }
        pthread_mutex_unlock(&all_lock);  /* this thread's, from BEFORE */
        /* A deinit's, in the parent. */
        __atomic_store_n(&killing, 0, __ATOMIC_RELAXED);
        break;
    }
}

/* The other threads' contexts a fork copied: their children, pipes and
 * rings are the parent's.  Whole (their locks were held across the fork)
 * and nobody's now.  Called with the shared lock held. */
static void forget_orphans(void)
{
    struct own *o;

    while ((o = orphans)) {
        orphans = o->next;
        zmp__ctx_forget(&o->ctx);
        free(o->ctx.interp);
        free(o);
    }
}

static void make_key(void)
{
    have_key = pthread_key_create(&key, thread_gone) == 0;
    zmp__ctx_on_fork(own_fork);
}

/* The interpreter named on the shared context, copied when it changed. */
static int same_interp(struct zmp__ctx *c, const struct zmp__ctx *main)
{
    char *s;

    if (!main->interp) {
        free(c->interp);
        c->interp = NULL;
        return 0;
    }
    if (c->interp && !strcmp(c->interp, main->interp))
        return 0;
    if (!(s = strdup(main->interp)))
        return -ENOMEM;
    free(c->interp);
    c->interp = s;
    return 0;
}

struct zmp__ctx *zmp__own_get(struct zmp__ctx *main)
{
    struct zmp__ctx *c;
    struct own *o;
    int r;

    if (!main->engine && zmp__ctx_start(main) < 0)
        return NULL;
    pthread_once(&key_once, make_key);
    forget_orphans();
    if (!have_key)
        return NULL;  /* no way to free it at thread exit: the shared one */
    if (!(o = mine)) {
        if (!(o = calloc(1, sizeof *o)))
            return NULL;
        c = &o->ctx;
        c->devnull = -1;
        c->fixed_max = 64;  /* one job at a time: a few pipes */
        pthread_mutex_init(&c->lock, NULL);
        pthread_cond_init(&c->cond, NULL);
        if (pthread_setspecific(key, o) != 0) {
            pthread_mutex_destroy(&c->lock);
            pthread_cond_destroy(&c->cond);
            free(o);
            return NULL;
        }
        mine = o;
        pthread_mutex_lock(&all_lock);
        o->next = all;
        if (all)
            all->prev = o;
        all = o;
        pthread_mutex_unlock(&all_lock);
    }
    c = &o->ctx;
    zmp__lock(c);
    zmp__ctx_check_fork(c);
    /* The shared context's engine, whatever zmp_set_backend() chose. */
    if (c->engine && c->engine != main->engine)
        zmp__ctx_stop(c);
    c->forced = main->engine->name;
    r = same_interp(c, main);
    if (r == 0)
        r = zmp__ctx_start(c);
    if (r < 0) {
        zmp__unlock(c);
        return NULL;
    }
    return c;  /* locked */
}

void zmp__own_started(struct zmp__proc *p)
{
    if (__atomic_load_n(&killing, __ATOMIC_ACQUIRE))
        zmp__proc_signal(p, SIGKILL);
}

void zmp__own_kill_all(void)
{
    struct zmp__proc *p;
    struct own *o;

    __atomic_store_n(&killing, 1, __ATOMIC_RELEASE);
    pthread_mutex_lock(&all_lock);
    for (o = all; o; o = o->next) {
        zmp__lock(&o->ctx);
        zmp__ctx_check_fork(&o->ctx);
        for (p = o->ctx.procs; p; p = p->next) {
            zmp__proc_signal(p, SIGKILL);
            if (o->ctx.engine)
                zmp__proc_drop_pipes(p);
        }
        if (o->ctx.engine && o->ctx.procs)
            zmp__ctx_kick(&o->ctx);
        zmp__unlock(&o->ctx);
    }
    pthread_mutex_unlock(&all_lock);
}

void zmp__own_stop_all(void)
{
    struct own *o;

    __atomic_store_n(&killing, 0, __ATOMIC_RELEASE);
    forget_orphans();
    pthread_mutex_lock(&all_lock);
    for (o = all; o; o = o->next) {
        zmp__lock(&o->ctx);
        zmp__ctx_check_fork(&o->ctx);
        zmp__ctx_stop(&o->ctx);
        zmp__unlock(&o->ctx);
    }
    pthread_mutex_unlock(&all_lock);
}
