/* SPDX-License-Identifier: MIT */
/*
 * Waiting: one thread at a time drives the engine, the others sleep.
 *
 * Any thread that must wait for something (a child's exit, its output,
 * a deadline) calls zmp__ctx_run_until() with the context locked.  If no
 * thread drives the engine, it becomes the leader: it fires the timers
 * that are due and runs the engine once, blocking in the kernel with the
 * lock released, so other threads can start children and look at theirs
 * meanwhile.  After each turn the leader wakes every sleeping thread
 * (followers), which look at their own condition; whichever needs the
 * engine next leads the next turn.  A follower never touches the engine,
 * so a thread blocks only for what it waits for.
 *
 * Threads that change what the engine watches while the leader is in the
 * kernel (a new child, a timer sooner than the leader's wake-up, a
 * cancelled read) kick it with zmp__ctx_kick(), so it looks again.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "internal.h"

bool zmp__proc_exited_cond(const void *p)
{
    return ((const struct zmp__proc *)p)->flags & ZMP__PROC_EXITED;
}

bool zmp__proc_done_cond(const void *p)
{
    return zmp__proc_done(p);
}

/* Done for its handle: a captured job when its output is read too. */
bool zmp__job_done(const void *proc)
{
    const struct zmp__proc *p = proc;

    return p->flags & ZMP__PROC_CAPTURE ? zmp__proc_done(p) : zmp__proc_exited_cond(p);
}

/* Sleep until the leader's next turn ends, or the deadline. */
static void follow(struct zmp__ctx *ctx, int64_t deadline)
{
    struct timespec ts;

    if (deadline == ZMP__FOREVER) {
        pthread_cond_wait(&ctx->cond, &ctx->lock);
        return;
    }
    ts.tv_sec = deadline / 1000000000;
    ts.tv_nsec = deadline % 1000000000;
    pthread_cond_clockwait(&ctx->cond, &ctx->lock, CLOCK_MONOTONIC, &ts);
}

/*
 * One turn of the engine as the leader: fire the timers that are due and
 * handle the events that are ready, blocking until one comes, or the
 * earliest timer, or deadline.  Returns the engine's count or -errno.
 */
static int lead(struct zmp__ctx *ctx, bool (*cond)(const void *arg),
                const void *arg, int64_t deadline)
{
    int64_t wake;
    int r;

    ctx->leading = true;
    wake = zmp__ctx_fire_timers(ctx, zmp__now_ns());
    if (ctx->ncg)
        zmp__cgroup_sweep(ctx, false);
    /* A timer may have done what we wait for (a drain grace ending). */
    if (cond && cond(arg))
        deadline = ZMP__NOWAIT;
    if (wake == ZMP__FOREVER || (deadline != ZMP__FOREVER && deadline < wake))
        wake = deadline;
    ctx->leader_wake = wake;
    r = ctx->engine->run(ctx, wake);
    ctx->turns++;
    ctx->leading = false;
    pthread_cond_broadcast(&ctx->cond);
    return r;
}

/*
 * Wait, with ctx locked, until cond(arg) holds (0) or the deadline passes
 * (-ETIME); -errno when the engine fails.  A NULL cond never holds: the
 * call then only ends at the deadline.  Children's timeouts fire on the
 * way, whoever is waited for.
 */
int zmp__ctx_run_until(struct zmp__ctx *ctx, bool (*cond)(const void *arg),
                       const void *arg, int64_t deadline)
{
    int r;

    for (;;) {
        if (cond && cond(arg))
            return 0;
        if (deadline != ZMP__FOREVER && zmp__now_ns() >= deadline)
            return -ETIME;
        if (ctx->leading) {
            follow(ctx, deadline);
            continue;
        }
        r = lead(ctx, cond, arg, deadline);
        if (r < 0 && r != -EINTR)
            return r;
    }
}

/*
 * Handle what is ready without blocking, if no other thread drives the
 * engine (it then handles it soon enough).  Returns the events handled.
 */
int zmp__ctx_run_nowait(struct zmp__ctx *ctx)
{
    int r;

    if (ctx->leading)
        return 0;
    r = lead(ctx, NULL, NULL, ZMP__NOWAIT);
    return r == -EINTR ? 0 : r;
}

/*
 * The every-ZMP__BURST-starts step of a batch's and a worker's start
 * loops: handle what is ready without blocking, and say whether a job
 * became done meanwhile (by ndone, not by the events handled: a timer
 * fired by the run, a drain grace, may end a job with no event).
 */
bool zmp__ctx_run_ready(struct zmp__ctx *ctx)
{
    uint64_t seen = ctx->ndone;

    zmp__ctx_run_nowait(ctx);
    return ctx->ndone != seen;
}

/* States changed outside the leader's turn (a new child, a killed one, a
 * call that left): the sleeping threads look at their conditions again,
 * and the leader, if it is blocked in the kernel, at what it watches. */
void zmp__ctx_kick(struct zmp__ctx *ctx)
{
    pthread_cond_broadcast(&ctx->cond);
    if (ctx->in_kernel)
        ctx->engine->wake(ctx, true);
}

/* New requests (a child to watch, a cancel) for a leader blocked in the
 * kernel: their completions wake it, they only need to reach the kernel;
 * and sleeping threads look again. */
void zmp__ctx_flush(struct zmp__ctx *ctx)
{
    pthread_cond_broadcast(&ctx->cond);
    if (ctx->in_kernel)
        ctx->engine->wake(ctx, false);
}

/*
 * A child nobody will ask for (its call failed): kill it, reap it through
 * the engine, which watches it, and free it.  When the engine fails again,
 * the child stays on the context's list for zmp_deinit(), and is reaped
 * by any later run of the engine meanwhile.
 */
void zmp__proc_abandon(struct zmp__proc *p)
{
    zmp__proc_signal(p, SIGKILL);
    zmp__proc_drop_pipes(p);
    zmp__ctx_flush(p->ctx);
    if (zmp__ctx_run_until(p->ctx, zmp__proc_done_cond, p, ZMP__FOREVER) == 0)
        zmp__proc_free(p);
}
