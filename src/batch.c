/* SPDX-License-Identifier: MIT */
/*
 * Streams of jobs: pulled from the caller as slots free up, at most
 * `parallel` at once, all on the one engine.  A source with no job ready
 * names an fd; the engine watches it with the children, so timers and
 * pipes keep being served while the source waits.  A batch (an array of
 * jobs) is the simplest source.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct stream {
    struct zmp__ctx *ctx;
    zmp_next_fn next;
    zmp_progress_fn done;
    void *arg;
    unsigned parallel;
    struct zmp__proc **run;   /* the jobs in flight */
    size_t *index;            /* their places in the stream */
    size_t nrun, cap;
    uint64_t seen;            /* ctx->ndone when last looked */
    size_t count;             /* jobs taken from the source */
    zmp_options job;          /* taken, not started yet (when have_job) */
    bool have_job;
    bool ended;               /* the source said END, failed, or we stop */
    bool stopped;             /* ... we stop: queued jobs never start */
    int watch;                /* our slot in ctx->watches, or -1 */
    struct zmp__workers *wk;  /* threads that run the jobs, or NULL */
    bool tried;               /* ... and it was decided which */
    bool killed;              /* the workers were told to kill their jobs */
    bool waiting;             /* the engine watches the source's fd */
    int error;                /* the source's error */
};

/*
 * The stream runs with ctx->lock held, and lets go of it for the source,
 * the callbacks and each start (zmp__launch locks for itself): the
 * caller's code may call the library, and other threads go on meanwhile.
 */
static bool something_happened(const void *arg)
{
    const struct stream *s = arg;
    const struct zmp__ctx *ctx = s->ctx;

    return ctx->ndone != s->seen ||
           ((ctx->stopping || ctx->deinit_pending) &&
            (!s->ended || (s->wk && !s->killed))) ||
           (s->wk && zmp__workers_ready(s->wk)) ||
           (s->waiting && ctx->watches[s->watch].ready);
}

/* Tell the caller (unlocked) about job i; true when it asks to stop. */
static bool report(struct stream *s, size_t i, int err, zmp_result *res,
                   const zmp_info *info)
{
    int stop;

    if (!s->done) {
        zmp_result_free(res);
        return false;
    }
    zmp__unlock(s->ctx);
    stop = s->done(s->arg, i, err, res, info);
    zmp__lock(s->ctx);
    return stop != 0;
}

static void stop_source(struct stream *s)
{
    s->ended = true;
    s->stopped = true;
    if (s->wk)
        zmp__workers_stop(s->wk, false);
    if (s->waiting)
        s->ctx->engine->drop_fd(s->ctx, (unsigned)s->watch);
    s->waiting = false;
}

/* Have the engine watch the source's fd; 0 or -errno. */
static int watch_source(struct stream *s, int fd)
{
    struct zmp__ctx *ctx = s->ctx;
    int r;

    /* A descriptor that is not open fails now, not in a busy loop. */
    if (fcntl(fd, F_GETFD) < 0)
        return -errno;
    if (s->watch < 0) {
        r = zmp__watch_new(ctx, fd);
        if (r < 0)
            return r;
        s->watch = r;
    }
    ctx->watches[s->watch] = (struct zmp__watch){ .fd = fd, .gen = ctx->watches[s->watch].gen };
    r = ctx->engine->watch_fd(ctx, (unsigned)s->watch);
    if (r == 0) {
        s->waiting = true;
        zmp__ctx_flush(ctx);
    }
    return r;
}

/* Ask the source for a job; false when there is none to start now. */
static bool take_job(struct stream *s)
{
    struct zmp__watch *x;
    int fd = -1, r;

    if (s->ended)
        return false;  /* a job held back is then reported cancelled */
    /* A zmp_deinit() meanwhile (from the source itself, or the done
     * callback): the source is not asked again. */
    if (s->ctx->deinit_pending || s->ctx->stopping)
        return false;
    if (s->have_job)
        return true;
    if (s->waiting) {
        x = &s->ctx->watches[s->watch];
        if (!x->ready)
            return false;
        s->waiting = false;
        if (x->error) {
            /* The fd could not be watched (closed): asking again would
             * spin. */
            s->error = x->error;
            s->ended = true;
            return false;
        }
    }
    s->job = (zmp_options){ 0 };
    zmp__unlock(s->ctx);
    r = s->next(s->arg, s->count, &s->job, &fd);
    zmp__lock(s->ctx);
    if (r == ZMP_STREAM_JOB) {
        s->have_job = true;
        s->count++;
        return true;
    }
    if (r == ZMP_STREAM_WAIT && fd >= 0) {
        r = watch_source(s, fd);
        if (r == 0)
            return false;
    } else if (r == ZMP_STREAM_WAIT || (r > 0 && r != ZMP_STREAM_END)) {
        r = -EINVAL;
    }
    if (r < 0)
        s->error = r;
    s->ended = true;
    return false;
}

/* Room in s->run for `need` jobs in flight (never more than parallel). */
static int reserve_run(struct stream *s, size_t need)
{
    struct zmp__proc **run;
    size_t *index, cap;

    if (need <= s->cap)
        return 0;
    cap = s->cap ? s->cap * 2 : 16;
    if (cap < need)
        cap = need;
    if (cap > s->parallel)
        cap = s->parallel;
    run = realloc(s->run, cap * sizeof *run);
    if (!run)
        return -ENOMEM;
    s->run = run;
    index = realloc(s->index, cap * sizeof *index);
    if (!index)
        return -ENOMEM;
    s->index = index;
    s->cap = cap;
    return 0;
}

static int room(struct stream *s)
{
    return reserve_run(s, s->nrun + 1);
}

static size_t collect_jobs(struct stream *s);

/* Start jobs while there are slots and the source has jobs.  Every
 * ZMP__BURST starts, what ended meanwhile is collected (workers.c's
 * start_jobs says why). */
static int start_jobs(struct stream *s)
{
    struct zmp__proc *p;
    unsigned burst = 0;
    int r;

    for (;;) {
        /* Before taking: a callback that stops the stream (or calls
         * zmp_deinit) leaves no job taken to start. */
        if (++burst % ZMP__BURST == 0 && zmp__ctx_run_ready(s->ctx))
            collect_jobs(s);
        if (s->nrun >= s->parallel || !take_job(s))
            break;
        r = room(s);
        if (r < 0)
            return r;
        zmp__unlock(s->ctx);
        r = zmp__launch(s->ctx, &s->job, &p);
        zmp__lock(s->ctx);
        if (r < 0 && zmp__launch_transient(r) && s->nrun > 0)
            return 0;  /* tried again once a job in flight gives back */
        s->have_job = false;
        if (r < 0) {
            if (report(s, s->count - 1, r, NULL, NULL))
                stop_source(s);
            continue;
        }
        s->run[s->nrun] = p;
        s->index[s->nrun++] = s->count - 1;
    }
    return 0;
}

/*
 * With workers: queue jobs for them while there is room.  They start,
 * watch and finish the jobs on engines of their own, and hand back each
 * job's outcome.
 */
static int queue_jobs(struct stream *s)
{
    size_t limit = (size_t)s->parallel + zmp__workers_ahead(s->wk);
    bool pushed = false;
    int r;

    while (zmp__workers_busy(s->wk) < limit && take_job(s)) {
        r = zmp__workers_push(s->wk, &s->job, s->count - 1);
        if (r < 0)
            return r;
        s->have_job = false;
        pushed = true;
    }
    if (pushed)
        zmp__workers_wake(s->wk);
    return 0;
}

/* Report what the workers finished. */
static void absorb(struct stream *s)
{
    zmp_result res;
    zmp_info info;
    bool has_info;
    size_t i;
    int err;

    bool held;

    while (zmp__workers_pop(s->wk, &i, &err, &res, &info, &has_info, &held)) {
        if (report(s, i, err, has_info && err == 0 ? &res : NULL, has_info ? &info : NULL))
            stop_source(s);
        if (held)
            zmp__workers_unhold(s->wk);
    }
}

/* Jobs taken and not reported yet: running, or with the workers. */
static size_t in_flight(struct stream *s)
{
    return s->nrun + (s->wk ? zmp__workers_busy(s->wk) : 0);
}

/* Report every finished job, keeping the others; how many there were. */
static size_t collect_jobs(struct stream *s)
{
    zmp_result res;
    zmp_info info;
    size_t k, i, n = 0;
    int r;

    for (k = 0; k < s->nrun;) {
        if (!zmp__job_done(s->run[k])) {
            k++;
            continue;
        }
        i = s->index[k];
        res = (zmp_result){ 0 };
        r = zmp__proc_finish(s->run[k], &res, &info);
        s->nrun--;
        s->run[k] = s->run[s->nrun];
        s->index[k] = s->index[s->nrun];
        n++;
        if (report(s, i, r, r == 0 ? &res : NULL, &info))
            stop_source(s);
    }
    return n;
}

/* Run a stream; called with ctx->lock held, and returns with it held. */
int zmp__stream(struct zmp__ctx *ctx, unsigned parallel, zmp_next_fn next,
                zmp_progress_fn done, void *arg)
{
    struct stream s = { .ctx = ctx, .next = next, .done = done, .arg = arg,
                        .watch = -1 };
    size_t k;
    int r;

    if (!next)
        return -EINVAL;
    s.parallel = parallel ? parallel : (unsigned)zmp_cpu_count();
    r = zmp__ctx_start(ctx);
    if (r < 0)
        return r;
    for (;;) {
        /* zmp_deinit() was called: its jobs are being killed; take no
         * more, and report them as they die. */
        if (ctx->deinit_pending || ctx->stopping) {
            if (!s.ended)
                stop_source(&s);
            /* Even after the source's end: what is still queued for the
             * workers never starts (reported cancelled below). */
            s.stopped = true;
            /* The workers' children are theirs to kill. */
            if (s.wk && !s.killed) {
                zmp__workers_stop(s.wk, true);
                s.killed = true;
            }
        }
        /* Workers come with the first job (a stream that never has one
         * starts no thread), unless one at a time is all it runs. */
        if (!s.tried && s.parallel > 1 && take_job(&s)) {
            s.tried = true;
            r = zmp__workers_new(ctx, s.parallel, &s.wk);
            if (r < 0)
                goto out;
        }
        if (s.wk) {
            r = zmp__workers_error(s.wk);
            if (r < 0)
                goto out;
            r = queue_jobs(&s);
            if (r < 0)
                goto out;
            absorb(&s);
            /* Stopped: what the workers have not taken never runs. */
            while (s.stopped && zmp__workers_unqueue(s.wk, &k))
                report(&s, k, -ECANCELED, NULL, NULL);
        } else {
            r = start_jobs(&s);
            if (r < 0)
                goto out;
        }
        if (s.ended && s.have_job) {
            /* Taken but never started: the caller asked to stop. */
            s.have_job = false;
            report(&s, s.count - 1, -ECANCELED, NULL, NULL);
        }
        if (s.ended && !s.have_job && in_flight(&s) == 0)
            break;
        /* A callback may itself run the engine (zmp_sleep...), and other
         * threads do: completions move ndone past `seen`, so the wait
         * below returns at once for them. */
        s.seen = ctx->ndone;
        if (collect_jobs(&s))
            continue;
        if (in_flight(&s) == 0 && !s.waiting)
            continue;  /* a job to start, or the end */
        if (s.wk) {
            /* Told by the workers only while this thread waits. */
            zmp__workers_idle(s.wk, true);
            r = zmp__ctx_run_until(ctx, something_happened, &s, ZMP__FOREVER);
            zmp__workers_idle(s.wk, false);
        } else {
            r = zmp__ctx_run_until(ctx, something_happened, &s, ZMP__FOREVER);
        }
        if (r < 0)
            goto out;
    }
    r = s.error;
out:
    if (s.wk) {
        /* Only an error leaves jobs here: what was not taken never runs,
         * what runs is killed. */
        while (zmp__workers_unqueue(s.wk, &k))
            ;
        zmp__workers_free(s.wk);
        s.wk = NULL;
    }
    /* Only an engine failure leaves jobs here: do not leave them running. */
    for (k = 0; k < s.nrun; k++)
        zmp__proc_abandon(s.run[k]);
    if (s.watch >= 0)
        zmp__watch_free(ctx, (unsigned)s.watch);
    free(s.run);
    free(s.index);
    return r;
}

/* --- a batch: a stream whose source is an array ------------------------ */

struct batch {
    const zmp_options *jobs;
    size_t n;
    zmp_result *results;
    zmp_info *infos;
    int *errors;
    zmp_progress_fn progress;
    void *arg;
};

static int batch_next(void *arg, size_t i, zmp_options *job, int *wait_fd)
{
    const struct batch *b = arg;

    (void)wait_fd;
    if (i >= b->n)
        return ZMP_STREAM_END;
    *job = b->jobs[i];
    return ZMP_STREAM_JOB;
}

static int batch_done(void *arg, size_t i, int err, zmp_result *res,
                      const zmp_info *info)
{
    const struct batch *b = arg;

    if (b->errors)
        b->errors[i] = err;
    /* Held back, then cancelled by a stop: as the jobs never taken, it is
     * not reported. */
    if (err == -ECANCELED && !res && !info)
        return 0;
    if (res)
        b->results[i] = *res;
    if (info && b->infos)
        b->infos[i] = *info;
    return b->progress &&
           b->progress(b->arg, i, err, res ? &b->results[i] : NULL,
                       b->infos ? &b->infos[i] : NULL) != 0;
}

int zmp__batch(struct zmp__ctx *ctx, const zmp_options *jobs, size_t n,
               unsigned parallel, zmp_result *results, zmp_info *infos,
               int *errors, zmp_progress_fn progress, void *arg)
{
    struct batch b = { jobs, n, results, infos, errors, progress, arg };
    size_t i;
    int r;

    if ((!jobs || !results) && n)
        return -EINVAL;
    for (i = 0; i < n; i++) {
        results[i] = (zmp_result){ 0 };
        if (infos)
            infos[i] = (zmp_info){ 0 };
        /* What never starts (the callback stopped the batch) stays so. */
        if (errors)
            errors[i] = -ECANCELED;
    }
    if (!parallel)
        parallel = (unsigned)zmp_cpu_count();
    if (parallel > n)
        parallel = n ? (unsigned)n : 1;
    r = zmp__stream(ctx, parallel, batch_next, batch_done, &b);
    if (r < 0)
        return r;
    return 0;
}
