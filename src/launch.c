/* SPDX-License-Identifier: MIT */
/*
 * Launching a child from options: what to execute, its argv and
 * environment, its pipes, and handing it to the engine.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define DRAIN_MS_DEFAULT 200

extern char **environ;

static const zmp_term_step default_seq[] = { { SIGTERM, 2000 } };

static size_t count(const char *const *v)
{
    size_t n = 0;

    while (v && v[n])
        n++;
    return n;
}

/* The interpreter (when there is one) followed by opts->argv. */
static int build_argv(const char *interp, const char *const *argv, char ***ret)
{
    size_t n = count(argv), i = 0;
    char **a = malloc((n + 2) * sizeof *a);

    if (!a)
        return -ENOMEM;
    if (interp)
        a[i++] = (char *)interp;
    memcpy(a + i, argv, n * sizeof *a);
    a[i + n] = NULL;
    *ret = a;
    return 0;
}

static size_t name_len(const char *entry)
{
    const char *eq = strchr(entry, '=');

    return eq ? (size_t)(eq - entry) : strlen(entry);
}

/* Order "NAME=value" entries by NAME alone. */
static int cmp_name(const char *a, const char *b)
{
    size_t la = name_len(a), lb = name_len(b);
    int c = memcmp(a, b, la < lb ? la : lb);

    return c ? c : (la > lb) - (la < lb);
}

/* env's entries, as indexes sorted by name and, for one name, by place. */
static int cmp_env_index(const void *x, const void *y, void *arg)
{
    const char *const *env = arg;
    size_t a = *(const size_t *)x, b = *(const size_t *)y;
    int c = cmp_name(env[a], env[b]);

    return c ? c : (a > b) - (a < b);
}

/* Is there an entry named like `entry` in the sorted index? */
static bool named_in(const char *entry, const char *const *env,
                     const size_t *sorted, size_t n)
{
    size_t lo = 0, hi = n, mid;
    int c;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = cmp_name(entry, env[sorted[mid]]);
        if (c == 0)
            return true;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return false;
}

/*
 * The caller's environment with env's entries added (overriding those of
 * the same name), or env alone.  Of several env entries with one name the
 * last wins.  O((n + m) log m): a sorted index of env, looked up for each
 * inherited entry.  Only pointers are copied: the strings need to live
 * until exec, which happens before zmp__spawn returns.
 */
static int build_env(const char *const *env, bool replace, char ***ret)
{
    size_t ne = count(env), nc = replace ? 0 : count((const char *const *)environ);
    size_t i, n = 0, *sorted;
    bool *shadowed;
    char **a;

    a = malloc((ne + nc + 1) * sizeof *a);
    sorted = malloc((ne ? ne : 1) * sizeof *sorted);
    shadowed = calloc(ne ? ne : 1, sizeof *shadowed);
    if (!a || !sorted || !shadowed) {
        free(a);
        free(sorted);
        free(shadowed);
        return -ENOMEM;
    }
    for (i = 0; i < ne; i++)
        sorted[i] = i;
    qsort_r(sorted, ne, sizeof *sorted, cmp_env_index, (void *)env);
    for (i = 0; i + 1 < ne; i++)
        if (cmp_name(env[sorted[i]], env[sorted[i + 1]]) == 0)
            shadowed[sorted[i]] = true;
    for (i = 0; i < nc; i++)
        if (!named_in(environ[i], env, sorted, ne))
            a[n++] = environ[i];
    for (i = 0; i < ne; i++)
        if (!shadowed[i])
            a[n++] = (char *)env[i];
    a[n] = NULL;
    free(sorted);
    free(shadowed);
    *ret = a;
    return 0;
}

static int make_pipe(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    /* Best effort: a user over its pipe budget keeps the default size. */
    (void)fcntl(fds[1], F_SETPIPE_SZ, ZMP__PIPE_SIZE);
    return 0;
}

static int check_opts(const zmp_options *o)
{
    size_t i;

    if (!o || !o->argv || !o->argv[0])
        return -EINVAL;
    if (!o->program && !*o->argv[0])
        return -EINVAL;
    if (o->program && !*o->program)
        return -EINVAL;
    if (o->interpreter && !*o->interpreter)
        return -EINVAL;
    if (o->cgroup && !*o->cgroup)
        return -EINVAL;
    if (o->term_seq_len && !o->term_seq)
        return -EINVAL;
    for (i = 0; i < o->term_seq_len; i++)
        if (o->term_seq[i].signal <= 0 || o->term_seq[i].signal >= NSIG)
            return -EINVAL;
    if (o->input_len && !o->input)
        return -EINVAL;
    if (o->input_len && (o->flags & ZMP_NO_CAPTURE))
        return -EINVAL;
    if (o->flags & ~(ZMP_ENV_REPLACE | ZMP_NEW_PGROUP | ZMP_NO_CAPTURE |
                     ZMP_MERGE_STDERR | ZMP_DIE_WITH_PARENT | ZMP_STDIN_FD |
                     ZMP_NO_MERGED))
        return -EINVAL;
    if ((o->flags & ZMP_STDIN_FD) && o->input_len)
        return -EINVAL;
    if ((o->flags & ZMP_STDIN_FD) && o->stdin_fd < 0)
        return -EBADF;
    if ((o->flags & ZMP_MERGE_STDERR) && (o->flags & ZMP_NO_CAPTURE))
        return -EINVAL;
    if (o->on_output && (o->flags & ZMP_NO_CAPTURE))
        return -EINVAL;
    return 0;
}

/* What the options say about time and size, kept on the proc (still
 * private to the starting thread). */
static int apply_limits(struct zmp__proc *p, const zmp_options *o)
{
    const zmp_term_step *seq = o->term_seq_len ? o->term_seq : default_seq;
    size_t n = o->term_seq_len ? o->term_seq_len : 1;

    p->out.cap = o->output_cap;
    p->out.fn = o->on_output;
    p->out.fn_arg = o->output_arg;
    p->pgroup = (o->flags & ZMP_NEW_PGROUP) != 0;
    if (o->flags & ZMP_NO_MERGED)
        p->flags |= ZMP__PROC_NO_MERGED;
    if (!o->timeout_ms)
        return 0;
    p->tmo.seq = malloc(n * sizeof *seq);
    if (!p->tmo.seq)
        return -ENOMEM;
    memcpy(p->tmo.seq, seq, n * sizeof *seq);
    p->tmo.seq_len = n;
    p->drain.ns = zmp__ms_to_ns(o->drain_ms ? o->drain_ms : DRAIN_MS_DEFAULT);
    p->tmo.at = p->start_ns + zmp__ms_to_ns(o->timeout_ms);
    return 0;
}

/* The descriptors of one start: for each of stdout, stderr and stdin, our
 * end and the child's, or -1. */
struct fds {
    int out[2], err[2], in[2];
};

static void close_fds(struct fds *f)
{
    int *all = &f->out[0];
    size_t i;

    for (i = 0; i < sizeof *f / sizeof *all; i++)
        if (all[i] >= 0) {
            close(all[i]);
            all[i] = -1;
        }
}

/*
 * The child's stdio: a pipe per captured stream (one for both with
 * ZMP_MERGE_STDERR, as `2>&1` does), and a socket for input.  stdio[] gets
 * the child's ends; f keeps them all until the spawn is over.
 */
static int open_stdio(int devnull, const zmp_options *o, struct fds *f, int stdio[3])
{
    int r;

    if (!(o->flags & ZMP_NO_CAPTURE)) {
        if ((r = make_pipe(f->out)) < 0)
            return r;
        stdio[0] = devnull;
        stdio[1] = f->out[1];
        stdio[2] = f->out[1];
        if (!(o->flags & ZMP_MERGE_STDERR)) {
            if ((r = make_pipe(f->err)) < 0)
                return r;
            stdio[2] = f->err[1];
        }
    }
    if (o->input_len) {
        /* A socket, not a pipe: send(MSG_NOSIGNAL) to a child that closed
         * its stdin fails with EPIPE instead of raising SIGPIPE in the
         * caller, which a library must never do. */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f->in) < 0)
            return -errno;
        (void)shutdown(f->in[1], SHUT_WR);
        (void)shutdown(f->in[0], SHUT_RD);
        stdio[0] = f->in[1];
    }
    if (o->flags & ZMP_STDIN_FD)
        stdio[0] = o->stdin_fd;  /* the child gets a copy, by dup3 */
    return 0;
}

/* The child runs: its ends are closed here, ours move to the proc. */
static void adopt_fds(struct zmp__proc *p, struct fds *f)
{
    p->out.fd[ZMP__OUT] = f->out[0];
    p->out.fd[ZMP__ERR] = f->err[0];
    p->in.fd = f->in[0];
    f->out[0] = f->err[0] = f->in[0] = -1;
    close_fds(f);
}

/* What the options ask of the child's record: its input, its limits, its
 * cgroup.  Unlocked: the record is still the starting thread's alone. */
static int fill_proc(struct zmp__proc *p, const zmp_options *o)
{
    struct timespec ts;
    int r;

    p->start_ns = zmp__now_ns();
    clock_gettime(CLOCK_REALTIME, &ts);
    p->started = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    if (o->input_len) {
        p->in.data = malloc(o->input_len);
        if (!p->in.data)
            return -ENOMEM;
        memcpy(p->in.data, o->input, o->input_len);
        p->in.len = o->input_len;
    }
    if ((r = apply_limits(p, o)) < 0)
        return r;
    if (o->cgroup && (r = zmp__cgroup_create(o->cgroup, &p->cg_path, &p->cg_fd)) < 0)
        return r;
    return 0;
}

/*
 * What a start needs from the context, taken under its lock: the engine
 * started, the program's path and the interpreter's name (copies, for
 * the unlocked part), /dev/null, and room in the timer heap for a
 * timeout, so that nothing can fail once the child runs.
 */
static int prepare(struct zmp__ctx *ctx, const zmp_options *o, struct zmp__proc *p,
                   char **ret_path, char **ret_interp, int *ret_devnull)
{
    const char *interp = NULL, *path;
    int r;

    r = zmp__ctx_start(ctx);
    if (r < 0)
        return r;
    if (!o->program)
        interp = o->interpreter ? o->interpreter : zmp__interp_name(ctx);
    r = zmp__resolve(ctx, o->program ? o->program : interp, &path);
    if (r < 0)
        return r;
    *ret_path = strdup(path);
    *ret_interp = interp ? strdup(interp) : NULL;
    if (!*ret_path || (interp && !*ret_interp))
        return -ENOMEM;
    *ret_devnull = ctx->devnull;
    if (o->timeout_ms) {
        r = zmp__timer_reserve(ctx);
        if (r < 0)
            return r;
        p->tmo.room = true;
    }
    return 0;
}

/*
 * Hand a started child to the engine.  Once its exit is watched, a
 * failure to watch a pipe or the input kills the child and leaves the
 * engine to finish it (the error is kept in p->error); before that, the
 * child is reaped here and the start fails.
 */
static int watch_child(struct zmp__ctx *ctx, struct zmp__proc *p)
{
    int r, i;

    r = ctx->engine->watch_exit(ctx, p);
    if (r < 0) {
        zmp__proc_reap_now(p);
        return r;
    }
    for (i = 0; i < 2; i++) {
        if (p->out.fd[i] < 0)
            continue;
        r = ctx->engine->watch_pipe(ctx, p, i);
        if (r < 0) {
            /* The engine may already hold the pipe (a fixed file). */
            ctx->engine->close_pipe(ctx, p, i);
            p->out.fd[i] = -1;
            if (!p->error)
                p->error = r;
            zmp__proc_signal(p, SIGKILL);
        }
    }
    if (p->in.fd >= 0) {
        r = ctx->engine->watch_input(ctx, p);
        if (r < 0) {
            zmp__proc_input_done(p, r);
            zmp__proc_signal(p, SIGKILL);
        }
    }
    return 0;
}

/* The child runs: make it the context's, locked. */
static int adopt(struct zmp__ctx *ctx, struct zmp__proc *p, struct fds *f)
{
    int r;

    zmp__proc_attach(p);
    zmp__reg_set(p->reg, p->pid, p->pidfd, p->cg_fd, p->pgroup);
    adopt_fds(p, f);
    if (p->tmo.at)
        zmp__timer_set(p, p->tmo.at);
    r = watch_child(ctx, p);
    if (r < 0)
        return r;
    /* Started while a zmp_deinit() kills everything (from another
     * thread): it goes too. */
    if (ctx->stopping || ctx->deinit_pending)
        zmp__proc_signal(p, SIGKILL);
    zmp__ctx_flush(ctx);
    return 0;
}

/*
 * Start a child.  Called unlocked: the context is locked only to take
 * what the start needs and to hand the child over, never during the
 * spawn itself, which puts this thread to sleep until the child has
 * exec'd: other threads start theirs meanwhile.
 */
static int launch(struct zmp__ctx *ctx, const zmp_options *o, struct zmp__proc **ret)
{
    struct zmp__spawn_args a = { .stdio = { -1, -1, -1 }, .cgroup_fd = -1 };
    struct fds f = { { -1, -1 }, { -1, -1 }, { -1, -1 } };
    char *path = NULL, *interp = NULL, **argv = NULL, **envp = NULL;
    struct zmp__proc *p = NULL;
    int r, devnull = -1;

    r = check_opts(o);
    if (r < 0)
        return r;
    r = zmp__proc_new(ctx, !(o->flags & ZMP_NO_CAPTURE), &p);
    if (r < 0)
        return r;
    zmp__lock(ctx);
    r = prepare(ctx, o, p, &path, &interp, &devnull);
    a.no_pidfd = ctx->pid_waits && zmp__reg_live() > ZMP__FEW_CHILDREN;
    zmp__unlock(ctx);
    if (r < 0)
        goto fail;
    if ((r = build_argv(interp, o->argv, &argv)) < 0)
        goto fail;
    if (o->env && (r = build_env(o->env, o->flags & ZMP_ENV_REPLACE, &envp)) < 0)
        goto fail;
    if ((r = open_stdio(devnull, o, &f, a.stdio)) < 0)
        goto fail;
    if ((r = fill_proc(p, o)) < 0)
        goto fail;
    a.path = path;
    a.argv = argv;
    a.envp = envp ? envp : environ;
    a.cwd = o->cwd;
    a.new_pgroup = p->pgroup;
    a.die_with_parent = (o->flags & ZMP_DIE_WITH_PARENT) != 0;
    a.cgroup_fd = p->cg_fd;
    r = zmp__spawn(&a, &p->pid, &p->pidfd);
    free(argv);
    free(envp);
    free(path);
    free(interp);
    argv = envp = NULL;
    path = interp = NULL;
    if (r < 0)
        goto fail;
    zmp__lock(ctx);
    r = adopt(ctx, p, &f);
    if (r < 0)
        zmp__proc_free(p);
    zmp__unlock(ctx);
    if (r < 0)
        return r;
    *ret = p;
    return 0;
fail:
    close_fds(&f);
    free(argv);
    free(envp);
    free(path);
    free(interp);
    zmp__lock(ctx);
    zmp__proc_free(p);
    zmp__unlock(ctx);
    return r;
}

/* Start a child as o says; called unlocked. */
int zmp__launch(struct zmp__ctx *ctx, const zmp_options *o, struct zmp__proc **ret)
{
    int r = launch(ctx, o, ret);

    if (r == -EMFILE && zmp__raise_nofile())
        r = launch(ctx, o, ret);
    return r;
}
