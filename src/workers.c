/* SPDX-License-Identifier: MIT */
/*
 * Workers: threads that run a stream's jobs on every CPU, each on an
 * engine of its own.
 *
 * A vfork-style spawn puts its thread to sleep until the child has
 * exec'd, so one thread starts one child at a time, however many CPUs
 * there are.  A stream with room for several jobs at once therefore hands
 * them to worker threads, one per CPU it may use.  Each worker owns a
 * private context (struct zmp__ctx: its own lock, engine, ring and
 * children) and does everything for the jobs it takes: start, capture,
 * timeouts, reaping, and the finished result.  Nothing of a job crosses
 * threads but the job on the way in and its result on the way out, so
 * the workers never wait for each other or for the stream's thread.
 *
 * The stream's thread (batch.c) keeps what must stay in the caller's
 * thread: it asks the source, queues the jobs, and reports the results.
 * Both sides meet in one small structure guarded by its own mutex, never
 * held across anything that blocks.  Each side tells the other only when
 * that one sleeps (an atomic flag each), through the sleeper's context
 * (zmp__ctx_kick: a condition variable, and the engine's wake when it is
 * blocked in the kernel).
 *
 * Lock order: a context's lock, then w->m, which is taken last and never
 * held while taking anything else.  No thread holds two contexts' locks:
 * a side that must wake the other lets go of its own context first.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct item {
    zmp_options job;
    size_t index;
};

/* A finished job, for the stream to report. */
struct outcome {
    size_t index;
    int err;              /* 0, or the start failed (no result, no info) */
    bool has_info;
    bool failed;          /* start error, non-zero exit, signal, timeout */
    zmp_result res;
    zmp_info info;
};

/* A FIFO of fixed-size entries: [head, head + n) modulo cap. */
struct fifo {
    char *a;
    size_t size, head, n, cap;
};

struct worker {
    struct zmp__workers *w;
    struct zmp__ctx ctx;      /* private: only this thread runs its engine */
    pthread_t thread;
    bool inited;              /* ctx's lock and names are set up */
    bool started;             /* the thread runs (join it) */
    bool taking;              /* its engine started: it takes jobs (w->m) */
    /* This thread's own, under ctx.lock: */
    struct zmp__proc **run;   /* its jobs in flight */
    size_t *index;
    size_t nrun, cap;
    uint64_t seen;            /* ctx.ndone when last looked */
    /* nrun is written by this thread only, atomically: the stream reads
     * it to see who has room. */
    bool killed;              /* its jobs were sent SIGKILL */
    bool tell;                /* the stream must hear of an end (wake it
                                 once this thread's ctx is unlocked) */
    int64_t untold;           /* when the oldest end not yet told to the
                                 stream was handed over, or 0 */
    int idle;                 /* atomic: waiting for an event */
};

struct zmp__workers {
    struct zmp__ctx *main;    /* the stream's */
    pthread_mutex_t m;        /* guards everything below */
    pthread_cond_t ready;     /* a worker finished starting up */
    struct fifo queue;        /* jobs to start */
    struct fifo done;         /* finished jobs, for the stream */
    size_t taken;             /* taken by workers, not in done yet */
    int full;                 /* atomic: taken has reached parallel */
    size_t running;           /* ... of which started and running */
    int share;                /* atomic: jobs at once per worker */
    unsigned up;              /* workers that reported their start-up */
    int queued;               /* atomic: queue.n, read without m */
    int ndone;                /* atomic: done.n, read without m */
    int paused;               /* atomic: out of a resource, wait for an end */
    int held;                 /* atomic: failed jobs the stream has not
                                 reported yet: nothing starts meanwhile */
    int stop;                 /* atomic: take nothing more */
    int kill;                 /* atomic: SIGKILL what runs */
    int quit;                 /* atomic: leave once nothing runs */
    int error;                /* atomic: an engine failed (-errno) */
    int stream_idle;          /* atomic: the stream waits for news */
    size_t parallel;          /* jobs at once in all (w->m) */
    unsigned ahead;           /* jobs queued beyond parallel: one a worker */
    unsigned n;
    struct worker *workers;
};

static int load(const int *v) { return __atomic_load_n(v, __ATOMIC_SEQ_CST); }
static void store(int *v, int x) { __atomic_store_n(v, x, __ATOMIC_SEQ_CST); }

/* Room for `need` entries; 0 or -ENOMEM. */
static int fifo_reserve(struct fifo *f, size_t need)
{
    size_t cap, i;
    char *a;

    if (need <= f->cap)
        return 0;
    cap = f->cap ? f->cap * 2 : 16;
    if (cap < need)
        cap = need;
    a = malloc(cap * f->size);
    if (!a)
        return -ENOMEM;
    for (i = 0; i < f->n; i++)
        memcpy(a + i * f->size, f->a + ((f->head + i) % f->cap) * f->size, f->size);
    free(f->a);
    f->a = a;
    f->head = 0;
    f->cap = cap;
    return 0;
}

/* Room must have been reserved. */
static void fifo_push(struct fifo *f, const void *e, bool front)
{
    size_t at;

    if (front) {
        f->head = (f->head + f->cap - 1) % f->cap;
        at = f->head;
    } else {
        at = (f->head + f->n) % f->cap;
    }
    memcpy(f->a + at * f->size, e, f->size);
    f->n++;
}

static bool fifo_pop(struct fifo *f, void *e)
{
    if (!f->n)
        return false;
    memcpy(e, f->a + f->head * f->size, f->size);
    f->head = (f->head + 1) % f->cap;
    f->n--;
    return true;
}

/* Tell a sleeping side to look again, through its context. */
static void wake_ctx(struct zmp__ctx *ctx)
{
    zmp__lock(ctx);
    zmp__ctx_kick(ctx);
    zmp__unlock(ctx);
}

static void wake_stream(struct zmp__workers *w)
{
    if (load(&w->stream_idle))
        wake_ctx(w->main);
}

/* A worker sleeps that should look again: any, or with all false, one
 * with room for a job. */
static bool asleep(const struct worker *k, bool all)
{
    const struct zmp__workers *w = k->w;

    return k->started && load(&k->idle) &&
           (all || __atomic_load_n(&k->nrun, __ATOMIC_RELAXED) < (size_t)load(&w->share));
}

/* Wake the workers that sleep (see asleep).  Called with no context
 * locked. */
static void wake_workers(struct zmp__workers *w, bool all)
{
    unsigned i;

    for (i = 0; i < w->n; i++)
        if (asleep(&w->workers[i], all))
            wake_ctx(&w->workers[i].ctx);
}

/* The same from the stream's thread, which holds its own ctx's lock: let
 * go of it meanwhile, as every stream does around its callbacks. */
static void wake_workers_from_stream(struct zmp__workers *w, bool all)
{
    unsigned i;

    for (i = 0; i < w->n; i++)
        if (asleep(&w->workers[i], all))
            break;
    if (i == w->n)
        return;  /* nobody to wake: keep the lock */
    zmp__unlock(w->main);
    wake_workers(w, all);
    zmp__lock(w->main);
}

/* --- the worker's side ------------------------------------------------ */

/* The longest an end waits to be told to the stream in a group: its
 * callback, its output in zmp parallel, its record. */
#define TELL_WITHIN (2 * 1000000LL)

static void set_nrun(struct worker *k, size_t n)
{
    __atomic_store_n(&k->nrun, n, __ATOMIC_RELAXED);
}

/* A job to start, when this worker has room and nothing holds it back. */
static bool take(struct worker *k, struct item *it)
{
    struct zmp__workers *w = k->w;
    bool got = false;

    if (k->nrun >= (size_t)load(&w->share) || load(&w->stop) || load(&w->paused) ||
        load(&w->held) || !load(&w->queued) || load(&w->full))
        return false;
    pthread_mutex_lock(&w->m);
    if (!load(&w->stop) && !load(&w->paused) && !load(&w->held) && w->taken < w->parallel &&
        fifo_pop(&w->queue, it)) {
        store(&w->queued, (int)w->queue.n);
        w->taken++;
        store(&w->full, w->taken >= w->parallel);
        got = true;
    }
    pthread_mutex_unlock(&w->m);
    return got;
}

/* Hand a finished job to the stream (room was reserved when queued). */
static void give(struct worker *k, const struct outcome *o, bool was_running)
{
    struct zmp__workers *w = k->w;
    bool tell;

    pthread_mutex_lock(&w->m);
    fifo_push(&w->done, o, false);
    w->taken--;
    store(&w->full, 0);
    if (was_running) {
        w->running--;
        /* A job ended: what was held back for a resource may start. */
        store(&w->paused, 0);
    }
    store(&w->ndone, (int)w->done.n);
    /*
     * The stream hears of the end at once when the queue runs low, or
     * nothing else runs (then nothing else would wake it); otherwise the
     * ends are told in a group, a few jobs later, saving the stream a
     * wake-up per job while the workers still have jobs to take.
     */
    tell = w->queue.n <= w->ahead / 2 || w->taken == 0 || o->failed;
    /*
     * A failure is told at once, and holds the queue until the stream
     * has reported it: its callback may stop the stream on it (as
     * --halt-on-error does), and then no job may have started after it.
     */
    if (o->failed)
        store(&w->held, load(&w->held) + 1);
    pthread_mutex_unlock(&w->m);
    k->tell |= tell;
    if (!k->untold)
        k->untold = zmp__now_ns();
}

/* Wake the stream if an end must be told: with this worker's ctx locked,
 * which is let go of meanwhile (one context's lock at a time). */
static void tell_stream(struct worker *k)
{
    /* An end is never kept from the stream longer than TELL_WITHIN:
     * while long jobs fill every place, the queue does not run low. */
    if (k->untold && zmp__now_ns() - k->untold >= TELL_WITHIN)
        k->tell = true;
    if (!k->tell)
        return;
    k->tell = false;
    k->untold = 0;
    zmp__unlock(&k->ctx);
    wake_stream(k->w);
    zmp__lock(&k->ctx);
}

/*
 * Out of a resource (descriptors, processes, memory) while other jobs
 * run, which give theirs back as they end: put the job back at the front
 * of the queue and hold the queue until one ends.  False when nothing
 * runs that could give back: the start fails for real.
 */
static bool hold_back(struct worker *k, const struct item *it)
{
    struct zmp__workers *w = k->w;
    bool held = false;

    pthread_mutex_lock(&w->m);
    if (w->running > 0) {
        fifo_push(&w->queue, it, true);  /* its place was taken from it */
        store(&w->queued, (int)w->queue.n);
        w->taken--;
        store(&w->full, 0);
        store(&w->paused, 1);
        held = true;
    }
    pthread_mutex_unlock(&w->m);
    return held;
}

/* Room for one more job in flight; 0 or -ENOMEM. */
static int grow(struct worker *k)
{
    size_t cap = k->cap ? k->cap * 2 : 16;
    struct zmp__proc **run;
    size_t *index;

    if (k->nrun < k->cap)
        return 0;
    run = realloc(k->run, cap * sizeof *run);
    if (!run)
        return -ENOMEM;
    k->run = run;
    index = realloc(k->index, cap * sizeof *index);
    if (!index)
        return -ENOMEM;
    k->index = index;
    k->cap = cap;
    return 0;
}

static void finish_jobs(struct worker *k);

/*
 * Start the jobs this worker may take.  Every ZMP__BURST starts, what is
 * ready is handled and what ended is handed over, before more start:
 * started all at once, a share of 512 short jobs ends all at once too,
 * and each worker then reaps hundreds of exited children and their pipes
 * from cold memory (from 128 alive on, the children also go to the
 * slower path without descriptors, ZMP__FEW_CHILDREN).  Measured with a
 * no-libc child at 1,024 in flight: 0.83 of the rate at 64 before, 0.96
 * after (poll: 0.53, 0.94).
 */
static void start_jobs(struct worker *k)
{
    struct zmp__workers *w = k->w;
    struct outcome o;
    struct zmp__proc *p;
    struct item it;
    unsigned burst = 0;
    int r;

    for (;;) {
        if (++burst % ZMP__BURST == 0 && zmp__ctx_run_ready(&k->ctx))
            finish_jobs(k);
        r = grow(k);
        if (!take(k, &it))
            return;
        if (r < 0) {
            /* No room to keep it: a resource, as for a start. */
            if (hold_back(k, &it))
                return;
            o = (struct outcome){ .index = it.index, .err = r, .failed = true };
            give(k, &o, false);
            continue;
        }
        zmp__unlock(&k->ctx);
        r = zmp__launch(&k->ctx, &it.job, &p);
        zmp__lock(&k->ctx);
        if (r == 0) {
            if (load(&w->kill))
                zmp__proc_signal(p, SIGKILL);
            k->run[k->nrun] = p;
            k->index[k->nrun] = it.index;
            set_nrun(k, k->nrun + 1);
            pthread_mutex_lock(&w->m);
            w->running++;
            pthread_mutex_unlock(&w->m);
            continue;
        }
        if (zmp__launch_transient(r) && hold_back(k, &it))
            return;
        o = (struct outcome){ .index = it.index, .err = r, .failed = true };
        give(k, &o, false);
    }
}

/* Hand over every job of this worker that is done. */
static void finish_jobs(struct worker *k)
{
    struct outcome o;
    size_t j;

    for (j = 0; j < k->nrun;) {
        if (!zmp__job_done(k->run[j])) {
            j++;
            continue;
        }
        o = (struct outcome){ .index = k->index[j], .has_info = true };
        o.err = zmp__proc_finish(k->run[j], &o.res, &o.info);
        o.failed = o.err < 0 || !o.res.ok || (o.info.flags & ZMP_TIMED_OUT);
        set_nrun(k, k->nrun - 1);
        k->run[j] = k->run[k->nrun];
        k->index[j] = k->index[k->nrun];
        give(k, &o, true);
    }
}

static bool worker_wake(const void *arg)
{
    const struct worker *k = arg;
    const struct zmp__workers *w = k->w;

    /* Each holds until this thread acts on it, or it would spin (a
     * place in the share, but every job the stream allows taken: the
     * worker whose job ends takes the next). */
    return k->ctx.ndone != k->seen || (load(&w->quit) && k->nrun == 0) ||
           (load(&w->kill) && !k->killed) ||
           (k->nrun < (size_t)load(&w->share) && load(&w->queued) && !load(&w->paused) &&
            !load(&w->held) && !load(&w->stop) && !load(&w->full));
}

/* The engine failed: kill what runs, report it with the error, and take
 * no more jobs (the stream sees w->error and ends). */
static void fail(struct worker *k, int err)
{
    struct outcome o;

    store(&k->w->error, err);
    while (k->nrun > 0) {
        set_nrun(k, k->nrun - 1);
        o = (struct outcome){ .index = k->index[k->nrun], .err = err, .failed = true };
        zmp__proc_abandon(k->run[k->nrun]);
        give(k, &o, true);
    }
}

static void *worker_main(void *arg)
{
    struct worker *k = arg;
    struct zmp__workers *w = k->w;
    struct zmp__ctx *c = &k->ctx;
    size_t j;
    int r;

    zmp__lock(c);
    r = zmp__ctx_start(c);
    pthread_mutex_lock(&w->m);
    w->up++;
    k->taking = r == 0;
    pthread_cond_broadcast(&w->ready);
    pthread_mutex_unlock(&w->m);
    while (r == 0) {
        /* Ends first: the places they free are taken in the same turn. */
        finish_jobs(k);
        start_jobs(k);
        tell_stream(k);
        if (load(&w->kill) && !k->killed) {
            for (j = 0; j < k->nrun; j++)
                zmp__proc_signal(k->run[j], SIGKILL);
            k->killed = true;
        }
        /* Never with a job of ours running: the kernel kills a child
         * started with ZMP_DIE_WITH_PARENT when the thread that started
         * it exits (after an engine failure, fail() has killed them). */
        if (load(&w->quit) && k->nrun == 0)
            break;
        k->seen = c->ndone;
        store(&k->idle, 1);
        r = zmp__ctx_run_until(c, worker_wake, k,
                               k->untold ? k->untold + TELL_WITHIN : ZMP__FOREVER);
        store(&k->idle, 0);
        if (r == -ETIME)
            r = 0;
        if (r < 0) {
            fail(k, r);
            break;
        }
    }
    /* Nothing of ours runs: let go of the engine from its own thread. */
    zmp__ctx_stop(c);
    zmp__unlock(c);
    if (k->tell)
        wake_stream(w);
    return NULL;
}

/* --- the stream's side ------------------------------------------------ */

static int worker_ctx_init(struct zmp__ctx *c, const struct zmp__ctx *main,
                           unsigned parallel, unsigned n)
{
    unsigned long long share;

    memset(c, 0, sizeof *c);
    c->devnull = -1;
    c->forced = main->engine->name;  /* the same engine as the caller's */
    /* Taken now: a zmp_set_interpreter() meanwhile frees the old name. */
    c->interp = strdup(zmp__interp_name(main));
    if (!c->interp)
        return -ENOMEM;
    /* A fixed-file table for twice its share of the jobs (two pipes
     * each), not the default of up to 64 Ki entries a ring: many CPUs
     * make many rings.  Twice: workers do not split the jobs evenly, and
     * a slot is free again only once its close has completed.  Past it,
     * pipes stay plain descriptors, and every spawn pays for them (with
     * one share only, 10,000 at once on 2 CPUs left 1,800 pipes in the
     * fd table and ran at 0.6 of the rate at 64). */
    share = ((unsigned long long)parallel + n - 1) / n;
    c->fixed_max = share > 16384 ? 65536 : (unsigned)(4 * share + 64);
    /* Its thread runs its engine again as soon as its jobs are started
     * or handed over. */
    c->lazy_submit = true;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    return 0;
}

/*
 * Workers for a stream that runs up to `parallel` jobs at once: one per
 * CPU the process may use, none when that would be one (the stream then
 * starts its jobs itself).  Called with ctx->lock held and ctx's engine
 * started.  Returns 0 with *ret NULL or the workers, or -errno.
 */
int zmp__workers_new(struct zmp__ctx *ctx, unsigned parallel, struct zmp__workers **ret)
{
    unsigned n = (unsigned)zmp_cpu_count(), i, started = 0;
    unsigned long long share;
    struct zmp__workers *w;
    struct worker *k;
    sigset_t all, old;

    *ret = NULL;
    if (n > parallel)
        n = parallel;
    if (n < 2)
        return 0;
    w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->workers = calloc(n, sizeof *w->workers);
    if (!w->workers) {
        free(w);
        return -ENOMEM;
    }
    w->main = ctx;
    w->parallel = parallel;
    w->queue.size = sizeof(struct item);
    w->done.size = sizeof(struct outcome);
    store(&w->share, 0);  /* nothing is taken before the count is known */
    pthread_mutex_init(&w->m, NULL);
    pthread_cond_init(&w->ready, NULL);
    w->n = n;
    /* Workers are born blocking every signal but SIGCHLD: the process's
     * signals, and their handlers, go to the caller's threads.  SIGCHLD
     * stays open: a child's end would otherwise interrupt a caller's
     * thread each time, as a signal blocked by the thread that started
     * the child is never discarded at once, even when ignored. */
    sigfillset(&all);
    sigdelset(&all, SIGCHLD);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (i = 0; i < n; i++) {
        k = &w->workers[i];
        k->w = w;
        if (worker_ctx_init(&k->ctx, ctx, parallel, n) < 0)
            break;
        k->inited = true;
        if (pthread_create(&k->thread, NULL, worker_main, k) != 0)
            break;
        k->started = true;
        started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    /* Wait for each to start its engine: one that could not is left out
     * (it has left already). */
    pthread_mutex_lock(&w->m);
    while (w->up < started)
        pthread_cond_wait(&w->ready, &w->m);
    for (i = 0, started = 0; i < n; i++)
        started += w->workers[i].taking;
    /* Spread the jobs over the workers that take them. */
    share = started ? ((unsigned long long)parallel + started - 1) / started : 0;
    store(&w->share, share > INT_MAX ? INT_MAX : (int)share);
    w->ahead = 4 * started;
    pthread_mutex_unlock(&w->m);
    if (started == 0) {
        zmp__workers_free(w);
        return 0;
    }
    *ret = w;
    return 0;
}

/* Queue a job; 0 or -ENOMEM.  Room for its outcome is made now, so a
 * worker never fails to hand it back. */
int zmp__workers_push(struct zmp__workers *w, const zmp_options *job, size_t index)
{
    struct item it = { .job = *job, .index = index };
    int r;

    pthread_mutex_lock(&w->m);
    r = fifo_reserve(&w->done, w->done.n + w->queue.n + w->taken + 1);
    if (r == 0)
        r = fifo_reserve(&w->queue, w->queue.n + w->taken + 1);
    if (r == 0) {
        fifo_push(&w->queue, &it, false);
        store(&w->queued, (int)w->queue.n);
    }
    pthread_mutex_unlock(&w->m);
    return r;
}

/* After pushing jobs: wake the workers with room that sleep.  Called with
 * the stream's ctx locked (let go of meanwhile). */
void zmp__workers_wake(struct zmp__workers *w)
{
    wake_workers_from_stream(w, false);
}

/* A finished job: its index, and err < 0 (never started) or its result
 * and info, which the caller now owns.  False when none is waiting. */
bool zmp__workers_pop(struct zmp__workers *w, size_t *ret_index, int *ret_err,
                      zmp_result *ret_res, zmp_info *ret_info, bool *ret_has_info,
                      bool *ret_held)
{
    struct outcome o;
    bool got;

    if (!load(&w->ndone))
        return false;
    pthread_mutex_lock(&w->m);
    got = fifo_pop(&w->done, &o);
    store(&w->ndone, (int)w->done.n);
    pthread_mutex_unlock(&w->m);
    if (!got)
        return false;
    *ret_index = o.index;
    *ret_err = o.err;
    *ret_res = o.res;
    *ret_info = o.info;
    *ret_has_info = o.has_info;
    *ret_held = o.failed;
    return true;
}

/* A failed job that held the queue was reported (and the stream stopped
 * if its callback asked): the workers may take jobs again. */
void zmp__workers_unhold(struct zmp__workers *w)
{
    int left;

    pthread_mutex_lock(&w->m);
    left = load(&w->held) - 1;
    store(&w->held, left);
    pthread_mutex_unlock(&w->m);
    if (left == 0)
        wake_workers_from_stream(w, false);
}

/* Jobs queued, with a worker, or finished and not popped. */
size_t zmp__workers_busy(struct zmp__workers *w)
{
    size_t n;

    pthread_mutex_lock(&w->m);
    n = w->queue.n + w->taken + w->done.n;
    pthread_mutex_unlock(&w->m);
    return n;
}

/*
 * How many jobs the stream may queue beyond `parallel`: one a worker, so
 * that a worker whose job ends takes the next at once, without waiting
 * for the stream's thread to report the end and ask the source.  The
 * workers still run at most `parallel` at once.
 */
unsigned zmp__workers_ahead(const struct zmp__workers *w)
{
    return w->ahead;
}

/* Something to pop, or an engine failed. */
bool zmp__workers_ready(const struct zmp__workers *w)
{
    return load(&w->ndone) || load(&w->error);
}

/* An engine's failure (-errno), or 0. */
int zmp__workers_error(const struct zmp__workers *w)
{
    return load(&w->error);
}

/* The stream is about to wait for news (or is back). */
void zmp__workers_idle(struct zmp__workers *w, bool idle)
{
    store(&w->stream_idle, idle);
}

/* Start nothing more: what the workers have not taken stays queued for
 * zmp__workers_unqueue(); with kill, SIGKILL what runs too. */
void zmp__workers_stop(struct zmp__workers *w, bool kill)
{
    store(&w->stop, 1);
    if (kill && !load(&w->kill)) {
        store(&w->kill, 1);
        wake_workers_from_stream(w, true);
    }
}

/* Take a job back off the queue, never started; false when none. */
bool zmp__workers_unqueue(struct zmp__workers *w, size_t *ret_index)
{
    struct item it;
    bool got;

    pthread_mutex_lock(&w->m);
    got = fifo_pop(&w->queue, &it);
    store(&w->queued, (int)w->queue.n);
    pthread_mutex_unlock(&w->m);
    if (got)
        *ret_index = it.index;
    return got;
}

/*
 * Stop the threads and free.  Called with the stream's ctx->lock held,
 * which it lets go of while the workers finish: normally nothing runs by
 * then; after an engine failure what still runs is killed, and results
 * nobody popped are freed.
 */
void zmp__workers_free(struct zmp__workers *w)
{
    struct outcome o;
    struct worker *k;
    unsigned i;

    if (!w)
        return;
    store(&w->stop, 1);
    store(&w->kill, 1);
    store(&w->quit, 1);
    zmp__unlock(w->main);
    wake_workers(w, true);
    for (i = 0; i < w->n; i++)
        if (w->workers[i].started)
            pthread_join(w->workers[i].thread, NULL);
    zmp__lock(w->main);
    while (fifo_pop(&w->done, &o))
        zmp_result_free(&o.res);
    for (i = 0; i < w->n; i++) {
        k = &w->workers[i];
        if (k->inited) {
            free(k->ctx.interp);
            pthread_mutex_destroy(&k->ctx.lock);
            pthread_cond_destroy(&k->ctx.cond);
        }
        free(k->run);
        free(k->index);
    }
    pthread_mutex_destroy(&w->m);
    pthread_cond_destroy(&w->ready);
    free(w->queue.a);
    free(w->done.a);
    free(w->workers);
    free(w);
}
