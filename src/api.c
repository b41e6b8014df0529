/*
 * The public functions, on one process-wide context.
 *
 * Thread safety: the functions share that context and are not safe to call
 * from several threads at once; a program that does must serialize them.
 * zmp_cpu_count, zmp_strerror and zmp_version are safe anywhere.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* A 256 KiB pipe keeps big writers moving without the cost 1 MiB pipes
 * put on small ones, and within an unprivileged user's pipe budget. */
#define PIPE_SIZE (256 * 1024)

extern char **environ;

static struct zmp__ctx global = { .devnull = -1 };

static int build_argv(const char *interp, const char *flag, const char *first,
                      const char *const *args, char ***ret)
{
    size_t n = 0, i = 0;
    char **argv;

    while (args && args[n])
        n++;
    argv = malloc((n + 4) * sizeof *argv);
    if (!argv)
        return -ENOMEM;
    argv[i++] = (char *)interp;
    if (flag)
        argv[i++] = (char *)flag;
    argv[i++] = (char *)first;
    for (size_t k = 0; k < n; k++)
        argv[i++] = (char *)args[k];
    argv[i] = NULL;
    *ret = argv;
    return 0;
}

static int make_pipe(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    /* Best effort: a user over its pipe budget keeps the default size. */
    (void)fcntl(fds[1], F_SETPIPE_SZ, PIPE_SIZE);
    return 0;
}

/*
 * Start INTERPRETER [FLAG] FIRST ARGS... as a new child of ctx, watched by
 * the engine; with capture, stdout and stderr go to pipes that the engine
 * reads and stdin is /dev/null.
 */
static int start(struct zmp__ctx *ctx, const char *flag, const char *first,
                 const char *const *args, bool capture, struct zmp__proc **ret)
{
    struct zmp__spawn_args a = { .stdio = { -1, -1, -1 } };
    int out[2] = { -1, -1 }, err[2] = { -1, -1 };
    const char *name, *path;
    struct zmp__proc *p = NULL;
    char **argv = NULL;
    int r, i;

    if (!first || !*first)
        return -EINVAL;
    r = zmp__ctx_start(ctx);
    if (r < 0)
        return r;
    r = zmp__interp_resolve(ctx, &name, &path);
    if (r < 0)
        return r;
    r = build_argv(name, flag, first, args, &argv);
    if (r < 0)
        return r;
    if (capture) {
        if ((r = make_pipe(out)) < 0 || (r = make_pipe(err)) < 0)
            goto fail;
        a.stdio[0] = ctx->devnull;
        a.stdio[1] = out[1];
        a.stdio[2] = err[1];
    }
    r = zmp__proc_new(ctx, capture, &p);
    if (r < 0)
        goto fail;
    a.path = path;
    a.argv = argv;
    a.envp = environ;
    r = zmp__spawn(&a, &p->pid, &p->pidfd);
    free(argv);
    argv = NULL;
    if (r < 0)
        goto fail;
    if (capture) {
        close(out[1]);
        close(err[1]);
        out[1] = err[1] = -1;
        p->fd[ZMP__OUT] = out[0];
        p->fd[ZMP__ERR] = err[0];
        out[0] = err[0] = -1;
    }
    r = ctx->engine->watch_exit(ctx, p);
    if (r < 0) {
        /* Nothing watches the child: reap it ourselves before failing. */
        zmp__proc_reap_now(p);
        goto fail;
    }
    for (i = 0; capture && i < 2; i++) {
        r = ctx->engine->watch_pipe(ctx, p, i);
        if (r < 0) {
            /* The exit is watched: kill, and let the loop finish it. */
            close(p->fd[i]);
            p->fd[i] = -1;
            if (!p->error)
                p->error = r;
            zmp__proc_signal(p, SIGKILL);
        }
    }
    *ret = p;
    return 0;
fail:
    for (i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (err[i] >= 0)
            close(err[i]);
    }
    free(argv);
    if (p)
        zmp__proc_free(p);
    return r;
}

static bool proc_done(const struct zmp__proc *p)
{
    return zmp__proc_done(p);
}

static bool proc_exited(const struct zmp__proc *p)
{
    return p->flags & ZMP__PROC_EXITED;
}

static int run_captured(const char *flag, const char *first,
                        const char *const *args, zmp_result *res)
{
    struct zmp__ctx *ctx = &global;
    struct zmp__proc *p;
    int r;

    if (!res)
        return -EINVAL;
    *res = (zmp_result){ 0 };
    r = start(ctx, flag, first, args, true, &p);
    if (r < 0)
        return r;
    r = zmp__ctx_run_until(ctx, proc_done, p, ZMP__FOREVER);
    if (r < 0) {
        /* The engine broke down: do not leave the child behind. */
        zmp__proc_signal(p, SIGKILL);
        return r;
    }
    r = p->error;
    if (r == 0)
        r = zmp__proc_take_result(p, res);
    if (r == 0) {
        res->exit_code = p->exit_code;
        res->ok = p->exit_code == 0;
    }
    zmp__proc_free(p);
    if (r < 0)
        *res = (zmp_result){ 0 };
    return r;
}

int zmp_run(const char *script, const char *const *args, zmp_result *res)
{
    return run_captured(NULL, script, args, res);
}

int zmp_run_code(const char *code, const char *const *args, zmp_result *res)
{
    return run_captured("-c", code, args, res);
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

int zmp_spawn(const char *script, const char *const *args)
{
    struct zmp__ctx *ctx = &global;
    struct zmp__proc *p;
    int r;

    r = start(ctx, NULL, script, args, false, &p);
    if (r < 0)
        return r;
    r = zmp__table_add(&ctx->table, p);
    if (r < 0) {
        /* The engine watches it: kill, and reap through the engine. */
        zmp__proc_signal(p, SIGKILL);
        if (zmp__ctx_run_until(ctx, proc_exited, p, ZMP__FOREVER) == 0)
            zmp__proc_free(p);
        return r;
    }
    p->handle = r;
    return r;
}

static struct zmp__proc *lookup(int handle)
{
    return global.engine ? zmp__table_get(&global.table, handle) : NULL;
}

int zmp_wait(int handle, int *exit_code)
{
    struct zmp__proc *p = lookup(handle);
    int r;

    if (!p)
        return -ECHILD;
    r = zmp__ctx_run_until(&global, proc_exited, p, ZMP__FOREVER);
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
    if (!(p->flags & ZMP__PROC_EXITED)) {
        r = global.engine->run(&global, ZMP__NOWAIT);
        if (r < 0 && r != -EINTR)
            return r;
        if (!(p->flags & ZMP__PROC_EXITED))
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
    r = zmp__ctx_run_until(&global, proc_exited, p, ZMP__FOREVER);
    if (r < 0)
        return r;
    zmp__proc_free(p);
    return 0;
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

    r = zmp__ctx_start(&global);
    if (r < 0)
        return r;
    if (ms > (unsigned long)(INT64_MAX / 2000000))
        ms = INT64_MAX / 2000000;
    deadline = zmp__now_ns() + (int64_t)ms * 1000000;
    r = zmp__ctx_run_until(&global, NULL, NULL, deadline);
    return r == -ETIME ? 0 : r;
}

void zmp_deinit(void)
{
    zmp__ctx_stop(&global);
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
    const char *name = NULL, *path;

    /* Resolving may fail (not in PATH); the name is known regardless. */
    (void)zmp__interp_resolve(&global, &name, &path);
    return name;
}

const char *zmp_backend(void)
{
    if (zmp__ctx_start(&global) < 0)
        return "none";
    return global.engine->name;
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
    if (global.procs)
        return -EBUSY;
    /* Restart on the next call, with the new choice. */
    zmp__ctx_stop(&global);
    global.forced = name;
    return 0;
}

const char *zmp_strerror(int err)
{
#ifdef HAVE_STRERRORDESC_NP
    /* glibc 2.32+: a constant string, safe from any thread. */
    const char *s = strerrordesc_np(err < 0 ? -err : err);

    return s ? s : "Unknown error";
#else
    return strerror(err < 0 ? -err : err);
#endif
}

const char *zmp_version(void)
{
    return PACKAGE_VERSION;
}
