/*
 * The public functions, on one process-wide context.
 *
 * Thread safety: the functions share that context and are not safe to call
 * from several threads at once; a program that does must serialize them.
 * Serialized, any thread may carry on what another began (see
 * docs/design.md).  zmp_cpu_count, zmp_strerror and zmp_version are safe
 * anywhere.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static struct zmp__ctx global = { .devnull = -1 };

/* The context, after a fork() noticed: every entry point that touches
 * the engine or the children comes through here. */
static struct zmp__ctx *ctx_get(void)
{
    zmp__ctx_check_fork(&global);
    return &global;
}

static bool proc_done(const void *p)
{
    return zmp__proc_done(p);
}

static bool proc_exited(const void *p)
{
    return ((const struct zmp__proc *)p)->flags & ZMP__PROC_EXITED;
}

/* Done for its handle: a captured job when its output is read too. */
bool zmp__job_done(const void *proc)
{
    const struct zmp__proc *p = proc;

    return p->flags & ZMP__PROC_CAPTURE ? zmp__proc_done(p) : proc_exited(p);
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
    if (zmp__ctx_run_until(p->ctx, proc_done, p, ZMP__FOREVER) == 0)
        zmp__proc_free(p);
}

int zmp_run_opts(const zmp_options *opts, zmp_result *res, zmp_info *info)
{
    struct zmp__ctx *ctx = ctx_get();
    struct zmp__proc *p;
    int r;

    if (res)
        *res = (zmp_result){ 0 };
    if (info)
        *info = (zmp_info){ 0 };
    if (!res)
        return -EINVAL;
    r = zmp__launch(ctx, opts, &p);
    if (r < 0)
        return r;
    r = zmp__ctx_run_until(ctx, zmp__job_done, p, ZMP__FOREVER);
    if (r < 0) {
        /* The engine failed: do not leave the child behind. */
        zmp__proc_abandon(p);
        return r;
    }
    return zmp__proc_finish(p, res, info);
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

void zmp_result_free(zmp_result *res)
{
    if (!res)
        return;
    /* output may be out or err itself (one stream only): free it once. */
    if (res->output != res->out && res->output != res->err)
        free(res->output);
    free(res->out);
    free(res->err);
    *res = (zmp_result){ 0 };
}

int zmp_start(const zmp_options *opts)
{
    struct zmp__ctx *ctx = ctx_get();
    struct zmp__proc *p;
    int r;

    r = zmp__launch(ctx, opts, &p);
    if (r < 0)
        return r;
    r = zmp__table_add(&ctx->table, p);
    if (r < 0) {
        zmp__proc_abandon(p);
        return r;
    }
    p->handle = r;
    return r;
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

static struct zmp__proc *lookup(int handle)
{
    struct zmp__ctx *ctx = ctx_get();

    return ctx->engine ? zmp__table_get(&ctx->table, handle) : NULL;
}

int zmp_collect(int handle, zmp_result *res, zmp_info *info)
{
    struct zmp__proc *p = lookup(handle);
    int r;

    if (res)
        *res = (zmp_result){ 0 };
    if (info)
        *info = (zmp_info){ 0 };
    if (!p)
        return -ECHILD;
    r = zmp__ctx_run_until(&global, zmp__job_done, p, ZMP__FOREVER);
    if (r < 0)
        return r;
    return zmp__proc_finish(p, res, info);
}

/* Wait for the child's exit only: what a descendant may still write into
 * its pipes is dropped, not waited for. */
static int reap(struct zmp__proc *p)
{
    int r = zmp__ctx_run_until(&global, proc_exited, p, ZMP__FOREVER);

    if (r < 0)
        return r;
    zmp__proc_drop_pipes(p);
    return zmp__ctx_run_until(&global, proc_done, p, ZMP__FOREVER);
}

int zmp_wait(int handle, int *exit_code)
{
    struct zmp__proc *p = lookup(handle);
    int r;

    if (!p)
        return -ECHILD;
    r = reap(p);
    if (r < 0)
        return r;
    r = p->error;
    if (r == 0 && exit_code)
        *exit_code = p->exit_code;
    zmp__proc_free(p);
    return r;
}

int zmp_poll(int handle, int *exit_code)
{
    struct zmp__proc *p = lookup(handle);
    int r;

    if (!p)
        return -ECHILD;
    if (!zmp__job_done(p)) {
        /* Timeouts fire here too: a caller that only polls still gets
         * them. */
        zmp__ctx_fire_timers(&global, zmp__now_ns());
        r = global.engine->run(&global, ZMP__NOWAIT);
        if (r < 0 && r != -EINTR)
            return r;
        if (!zmp__job_done(p))
            return 0;
    }
    if (p->error)
        return p->error;
    if (exit_code)
        *exit_code = p->exit_code;
    return 1;
}

int zmp_kill(int handle)
{
    struct zmp__proc *p = lookup(handle);
    int r;

    if (!p)
        return -ECHILD;
    r = zmp__proc_signal(p, SIGKILL);
    if (r < 0)
        return r;
    r = reap(p);
    if (r < 0)
        return r;
    zmp__proc_free(p);
    return 0;
}

int zmp_run_batch(const zmp_options *jobs, size_t n, unsigned parallel,
                  zmp_result *results, zmp_info *infos, int *errors,
                  zmp_progress_fn progress, void *arg)
{
    return zmp__batch(ctx_get(), jobs, n, parallel, results, infos, errors,
                      progress, arg);
}

int zmp_run_stream(unsigned parallel, zmp_next_fn next, zmp_progress_fn done,
                   void *arg)
{
    return zmp__stream(ctx_get(), parallel, next, done, arg);
}

int zmp_cpu_count(void)
{
    cpu_set_t *set;
    size_t size;
    int n, ncpu;

    /* The mask can be larger than cpu_set_t's 1024 CPUs: grow until the
     * kernel takes it. */
    for (ncpu = 1024; ncpu <= (1 << 20); ncpu *= 2) {
        set = CPU_ALLOC(ncpu);
        if (!set)
            break;
        size = CPU_ALLOC_SIZE(ncpu);
        if (sched_getaffinity(0, size, set) == 0) {
            n = CPU_COUNT_S(size, set);
            CPU_FREE(set);
            return n > 0 ? n : 1;
        }
        CPU_FREE(set);
        if (errno != EINVAL)
            break;
    }
    n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

int zmp_sleep(unsigned long ms)
{
    int64_t deadline;
    int r;

    r = zmp__ctx_start(ctx_get());
    if (r < 0)
        return r;
    deadline = zmp__now_ns() + zmp__ms_to_ns(ms);
    r = zmp__ctx_run_until(&global, NULL, NULL, deadline);
    return r == -ETIME ? 0 : r;
}

void zmp_deinit(void)
{
    struct zmp__ctx *ctx = ctx_get();
    struct zmp__proc *p;

    if (!ctx->busy) {
        zmp__ctx_stop(ctx);
        return;
    }
    /* From a batch's or stream's callback: the stream is still using the
     * engine.  Kill every child now; the stream stops taking jobs, reports
     * the killed ones, and tears everything down as it returns. */
    ctx->deinit_pending = true;
    for (p = ctx->procs; p; p = p->next)
        zmp__proc_signal(p, SIGKILL);
}

int zmp_set_interpreter(const char *path)
{
    char *s = NULL;

    if (path && !*path)
        return -EINVAL;
    if (path && !(s = strdup(path)))
        return -ENOMEM;
    free(global.interp);
    global.interp = s;
    return 0;
}

const char *zmp_interpreter(void)
{
    return zmp__interp_name(&global);
}

const char *zmp_backend(void)
{
    struct zmp__ctx *ctx = ctx_get();

    if (zmp__ctx_start(ctx) < 0)
        return "none";
    return ctx->engine->name;
}

int zmp_set_backend(const char *name)
{
    static const char *const known[] = { "io_uring", "poll", "auto" };
    size_t i;

    if (name) {
        for (i = 0; i < sizeof known / sizeof known[0]; i++)
            if (!strcmp(name, known[i]))
                break;
        if (i == sizeof known / sizeof known[0])
            return -EINVAL;
#ifndef HAVE_URING
        if (i == 0)
            return -ENOTSUP;
#endif
        name = known[i];
    }
    if (ctx_get()->procs || global.busy)
        return -EBUSY;
    /* Restart on the next call, with the new choice. */
    zmp__ctx_stop(&global);
    global.forced = name;
    return 0;
}

const char *zmp_version(void)
{
    return PACKAGE_VERSION;
}
