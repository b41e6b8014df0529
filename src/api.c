/* SPDX-License-Identifier: MIT */
/*
 * The public functions: a thin layer over the one process-wide context.
 *
 * Every call enters the context (its lock, the fork check, the count of
 * calls inside) and leaves it; what it waits for, it waits for through
 * loop.c, where one thread drives the engine while the others sleep.  So
 * any thread may call anything at any time, and a blocking call blocks
 * only its caller.  See zmp(3), "Thread safety", and docs/design.md.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static struct zmp__ctx global = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
    .devnull = -1,
};

/* This thread's calls inside the library: more than one when a batch's
 * callback calls in. */
static __thread unsigned depth;

/*
 * Enter the context, locked.  While zmp_deinit() waits for the calls
 * inside to leave, new calls wait for it to finish, except those made
 * from inside a call (a callback), which the deinit is waiting for.
 */
static struct zmp__ctx *enter(void)
{
    struct zmp__ctx *ctx = &global;

    zmp__lock(ctx);
    zmp__ctx_check_fork(ctx);
    while (ctx->stopping && depth == 0)
        pthread_cond_wait(&ctx->cond, &ctx->lock);
    ctx->calls++;
    depth++;
    return ctx;
}

/* Leave: the last call out carries out a zmp_deinit() made from a
 * callback. */
static void leave(struct zmp__ctx *ctx)
{
    depth--;
    if (--ctx->calls == 0 && ctx->deinit_pending && !ctx->stopping) {
        /* As zmp_deinit() does: calls made meanwhile wait (the stop runs
         * the engine, which lets go of the lock while it blocks). */
        ctx->deinit_pending = false;
        ctx->stopping = true;
        zmp__ctx_stop(ctx);
        zmp__own_stop_all();
        ctx->stopping = false;
        pthread_cond_broadcast(&ctx->cond);
    }
    /* A zmp_deinit() waits for the calls to leave: tell it, even when it
     * is the thread blocked in the kernel. */
    if (ctx->stopping && ctx->engine)
        zmp__ctx_kick(ctx);
    else if (ctx->stopping)
        pthread_cond_broadcast(&ctx->cond);
    zmp__unlock(ctx);
}

static int leave_with(struct zmp__ctx *ctx, int r)
{
    leave(ctx);
    return r;
}

/*
 * A single run has no handle: it runs on the calling thread's own context
 * (own.c), where this thread alone drives the engine, and threads running
 * at once never wait for each other.  Where that context cannot start (no
 * descriptor left for its ring, say), the shared one serves.
 */
int zmp_run_opts(const zmp_options *opts, zmp_result *res, zmp_info *info)
{
    struct zmp__ctx *ctx, *own, *c;
    struct zmp__proc *p;
    int r;

    if (res)
        *res = (zmp_result){ 0 };
    if (info)
        *info = (zmp_info){ 0 };
    if (!res)
        return -EINVAL;
    ctx = enter();
    if ((own = zmp__own_get(ctx)))
        zmp__unlock(ctx);  /* own is locked instead */
    c = own ? own : ctx;
    zmp__unlock(c);
    r = zmp__launch(c, opts, &p);
    zmp__lock(c);
    if (r == 0) {
        if (own)
            zmp__own_started(p);
        r = zmp__ctx_run_until(c, zmp__job_done, p, ZMP__FOREVER);
        if (r < 0)
            zmp__proc_abandon(p);  /* the engine failed: leave no child */
        else
            r = zmp__proc_finish(p, res, info);
    }
    if (own) {
        zmp__unlock(own);
        zmp__lock(ctx);
    }
    return leave_with(ctx, r);
}

/* What follows the interpreter for zmp_run, zmp_run_code and zmp_spawn:
 * [flag] first args..., NULL-terminated, in a new array of pointers. */
static int script_argv(const char *flag, const char *first,
                       const char *const *args, const char ***ret)
{
    size_t n = 0, i = 0;
    const char **argv;

    if (!first || !*first)
        return -EINVAL;
    while (args && args[n])
        n++;
    argv = malloc((n + 3) * sizeof *argv);
    if (!argv)
        return -ENOMEM;
    if (flag)
        argv[i++] = flag;
    argv[i++] = first;
    if (n)
        memcpy(argv + i, args, n * sizeof *argv);
    argv[i + n] = NULL;
    *ret = argv;
    return 0;
}

static int run_simple(const char *flag, const char *first,
                      const char *const *args, zmp_result *res)
{
    zmp_options o = { 0 };
    const char **argv;
    int r;

    if (!res)
        return -EINVAL;
    *res = (zmp_result){ 0 };
    r = script_argv(flag, first, args, &argv);
    if (r < 0)
        return r;
    o.argv = argv;
    r = zmp_run_opts(&o, res, NULL);
    free(argv);
    return r;
}

int zmp_run(const char *script, const char *const *args, zmp_result *res)
{
    return run_simple(NULL, script, args, res);
}

int zmp_run_code(const char *code, const char *const *args, zmp_result *res)
{
    return run_simple("-c", code, args, res);
}

int zmp_start(const zmp_options *opts)
{
    struct zmp__ctx *ctx = enter();
    struct zmp__proc *p;
    int r;

    zmp__unlock(ctx);
    r = zmp__launch(ctx, opts, &p);
    zmp__lock(ctx);
    if (r < 0)
        return leave_with(ctx, r);
    r = zmp__table_add(&ctx->table, p);
    if (r < 0) {
        zmp__proc_abandon(p);
        return leave_with(ctx, r);
    }
    p->handle = r;
    return leave_with(ctx, r);
}

int zmp_spawn(const char *script, const char *const *args)
{
    zmp_options o = { .flags = ZMP_NO_CAPTURE };
    const char **argv;
    int r;

    r = script_argv(NULL, script, args, &argv);
    if (r < 0)
        return r;
    o.argv = argv;
    r = zmp_start(&o);
    free(argv);
    return r;
}

/*
 * The job of a handle, held for this call: several threads may wait on,
 * poll, kill or collect one handle at once.  The first to finish removes
 * the handle (a later call gets -ECHILD); the last lets the job go.
 */
static struct zmp__proc *hold(struct zmp__ctx *ctx, int handle)
{
    struct zmp__proc *p = ctx->engine ? zmp__table_get(&ctx->table, handle) : NULL;

    if (p)
        p->users++;
    return p;
}

/* Done with a held job; remove its handle when asked. */
static void release(struct zmp__proc *p, bool remove)
{
    struct zmp__ctx *ctx = p->ctx;

    if (remove && p->handle > 0) {
        zmp__table_del(&ctx->table, p->handle);
        p->handle = 0;
    }
    if (--p->users == 0 && p->handle == 0)
        zmp__proc_free(p);
}

int zmp_collect(int handle, zmp_result *res, zmp_info *info)
{
    struct zmp__ctx *ctx;
    struct zmp__proc *p;
    int r;

    if (res)
        *res = (zmp_result){ 0 };
    if (info)
        *info = (zmp_info){ 0 };
    ctx = enter();
    p = hold(ctx, handle);
    if (!p)
        return leave_with(ctx, -ECHILD);
    r = zmp__ctx_run_until(ctx, zmp__job_done, p, ZMP__FOREVER);
    if (r < 0) {
        release(p, false);
        return leave_with(ctx, r);
    }
    if (p->handle == 0) {  /* another thread took it meanwhile */
        release(p, false);
        return leave_with(ctx, -ECHILD);
    }
    /* Ours: the handle goes now; a thread still waiting on the job gets
     * its exit code, and the last one out frees it. */
    r = zmp__proc_take(p, res, info);
    release(p, true);
    return leave_with(ctx, r);
}

/* Wait for the child's exit only: what a descendant may still write into
 * its pipes is dropped, not waited for. */
static int reap(struct zmp__ctx *ctx, struct zmp__proc *p)
{
    int r = zmp__ctx_run_until(ctx, zmp__proc_exited_cond, p, ZMP__FOREVER);

    if (r < 0)
        return r;
    zmp__proc_drop_pipes(p);
    zmp__ctx_flush(ctx);
    return zmp__ctx_run_until(ctx, zmp__proc_done_cond, p, ZMP__FOREVER);
}

int zmp_wait(int handle, int *exit_code)
{
    struct zmp__ctx *ctx = enter();
    struct zmp__proc *p = hold(ctx, handle);
    int r;

    if (!p)
        return leave_with(ctx, -ECHILD);
    r = reap(ctx, p);
    if (r < 0) {
        release(p, false);
        return leave_with(ctx, r);
    }
    r = p->error;
    if (r == 0 && exit_code)
        *exit_code = p->exit_code;
    release(p, true);
    return leave_with(ctx, r);
}

int zmp_poll(int handle, int *exit_code)
{
    struct zmp__ctx *ctx = enter();
    struct zmp__proc *p = hold(ctx, handle);
    int r;

    if (!p)
        return leave_with(ctx, -ECHILD);
    if (!zmp__job_done(p)) {
        /* Timeouts fire here too: a caller that only polls still gets
         * them.  Another thread driving the engine handles it. */
        r = zmp__ctx_run_nowait(ctx);
        if (r < 0) {
            release(p, false);
            return leave_with(ctx, r);
        }
    }
    if (!zmp__job_done(p))
        r = 0;
    else if (p->error)
        r = p->error;
    else
        r = 1;
    if (r == 1 && exit_code)
        *exit_code = p->exit_code;
    release(p, false);
    return leave_with(ctx, r);
}

int zmp_kill(int handle)
{
    struct zmp__ctx *ctx = enter();
    struct zmp__proc *p = hold(ctx, handle);
    int r;

    if (!p)
        return leave_with(ctx, -ECHILD);
    r = zmp__proc_signal(p, SIGKILL);
    if (r == 0)
        r = reap(ctx, p);
    release(p, r == 0);
    return leave_with(ctx, r);
}

int zmp_run_batch(const zmp_options *jobs, size_t n, unsigned parallel,
                  zmp_result *results, zmp_info *infos, int *errors,
                  zmp_progress_fn progress, void *arg)
{
    struct zmp__ctx *ctx;

    /* From a callback: the library holds no state for nested batches. */
    if (depth > 0)
        return -EBUSY;
    ctx = enter();
    return leave_with(ctx, zmp__batch(ctx, jobs, n, parallel, results, infos,
                                      errors, progress, arg));
}

int zmp_run_stream(unsigned parallel, zmp_next_fn next, zmp_progress_fn done,
                   void *arg)
{
    struct zmp__ctx *ctx;

    if (depth > 0)
        return -EBUSY;
    ctx = enter();
    return leave_with(ctx, zmp__stream(ctx, parallel, next, done, arg));
}

/* A sleep ends early for a zmp_deinit(), which waits for it. */
static bool stopping(const void *arg)
{
    return ((const struct zmp__ctx *)arg)->stopping;
}

int zmp_sleep(unsigned long ms)
{
    struct zmp__ctx *ctx = enter();
    int64_t deadline;
    int r;

    r = zmp__ctx_start(ctx);
    if (r < 0)
        return leave_with(ctx, r);
    deadline = zmp__now_ns() + zmp__ms_to_ns(ms);
    r = zmp__ctx_run_until(ctx, stopping, ctx, deadline);
    return leave_with(ctx, r == -ETIME ? 0 : r);
}

static bool no_calls(const void *arg)
{
    return ((const struct zmp__ctx *)arg)->calls == 0;
}

/*
 * Kill every child, then, once no other call is inside (they return as
 * their children die), release everything.  Calls made meanwhile wait.
 * From a callback, the calls it runs in cannot leave first: the last of
 * them releases everything as it leaves.
 */
void zmp_deinit(void)
{
    struct zmp__ctx *ctx = &global;
    struct zmp__proc *p;

    zmp__lock(ctx);
    zmp__ctx_check_fork(ctx);
    if (!ctx->engine && !ctx->procs && ctx->calls == 0) {
        zmp__ctx_stop(ctx);  /* caches, /dev/null */
        zmp__own_stop_all();
        zmp__unlock(ctx);
        return;
    }
    /* Kill, and stop reading: a pipe a descendant keeps open must not
     * keep a call of another thread, and so this one, waiting. */
    for (p = ctx->procs; p; p = p->next) {
        zmp__proc_signal(p, SIGKILL);
        if (ctx->engine)
            zmp__proc_drop_pipes(p);
    }
    zmp__own_kill_all();
    if (depth > 0 || ctx->stopping) {
        ctx->deinit_pending = true;
        if (ctx->engine)
            zmp__ctx_kick(ctx);
        pthread_cond_broadcast(&ctx->cond);
        zmp__unlock(ctx);
        return;
    }
    ctx->stopping = true;
    if (ctx->engine) {
        zmp__ctx_kick(ctx);
        pthread_cond_broadcast(&ctx->cond);
        (void)zmp__ctx_run_until(ctx, no_calls, ctx, ZMP__FOREVER);
    }
    while (ctx->calls > 0)
        pthread_cond_wait(&ctx->cond, &ctx->lock);
    ctx->deinit_pending = false;
    zmp__ctx_stop(ctx);
    zmp__own_stop_all();
    ctx->stopping = false;
    pthread_cond_broadcast(&ctx->cond);
    zmp__unlock(ctx);
}

int zmp_set_interpreter(const char *path)
{
    struct zmp__ctx *ctx;
    char *s = NULL, *old;

    if (path && !*path)
        return -EINVAL;
    if (path && !(s = strdup(path)))
        return -ENOMEM;
    ctx = enter();
    old = ctx->interp;
    ctx->interp = s;
    leave(ctx);
    free(old);
    return 0;
}

const char *zmp_interpreter(void)
{
    struct zmp__ctx *ctx = enter();
    const char *s = zmp__interp_name(ctx);

    leave(ctx);
    return s;
}

const char *zmp_backend(void)
{
    struct zmp__ctx *ctx = enter();
    const char *name = zmp__ctx_start(ctx) < 0 ? "none" : ctx->engine->name;

    leave(ctx);
    return name;
}

int zmp_set_backend(const char *name)
{
    struct zmp__ctx *ctx;
    int r = 0;

    if (name && !(name = zmp__engine_name(name, &r)))
        return r;
    ctx = enter();
    /* Children, or other calls, are using the engine. */
    if (ctx->procs || ctx->calls > 1)
        return leave_with(ctx, -EBUSY);
    /* Restart on the next call, with the new choice. */
    zmp__ctx_stop(ctx);
    ctx->forced = name;
    return leave_with(ctx, 0);
}

const char *zmp_version(void)
{
    return PACKAGE_VERSION;
}
