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

/* The caller's environment with env's entries added (overriding those of
 * the same name), or env alone.  Only pointers are copied: the strings
 * need to live until exec, which happens before zmp__spawn returns. */
static int build_env(const char *const *env, bool replace, char ***ret)
{
    size_t ne = count(env), nc = replace ? 0 : count((const char *const *)environ);
    size_t i, k, n = 0;
    char **a;

    a = malloc((ne + nc + 1) * sizeof *a);
    if (!a)
        return -ENOMEM;
    for (i = 0; i < nc; i++) {
        size_t len = name_len(environ[i]);
        for (k = 0; k < ne; k++)
            if (name_len(env[k]) == len && !strncmp(env[k], environ[i], len))
                break;
        if (k == ne)
            a[n++] = environ[i];
    }
    for (k = 0; k < ne; k++)
        a[n++] = (char *)env[k];
    a[n] = NULL;
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
    if (o->input_len && !o->input)
        return -EINVAL;
    if (o->input_len && (o->flags & ZMP_NO_CAPTURE))
        return -EINVAL;
    if (o->flags & ~(ZMP_ENV_REPLACE | ZMP_NEW_PGROUP | ZMP_NO_CAPTURE))
        return -EINVAL;
    return 0;
}

/* What the options say about time and size, kept on the proc. */
static int apply_limits(struct zmp__proc *p, const zmp_options *o)
{
    const zmp_term_step *seq = o->term_seq_len ? o->term_seq : default_seq;
    size_t n = o->term_seq_len ? o->term_seq_len : 1;
    int r;

    p->cap = o->output_cap;
    p->pgroup = (o->flags & ZMP_NEW_PGROUP) != 0;
    if (!o->timeout_ms)
        return 0;
    p->seq = malloc(n * sizeof *seq);
    if (!p->seq)
        return -ENOMEM;
    r = zmp__timer_reserve(p->ctx);
    if (r < 0)
        return r;
    memcpy(p->seq, seq, n * sizeof *seq);
    p->seq_len = n;  /* from now on, proc_free gives the room back */
    p->drain_ns = zmp__ms_to_ns(o->drain_ms ? o->drain_ms : DRAIN_MS_DEFAULT);
    zmp__timer_set(p, p->start_ns + zmp__ms_to_ns(o->timeout_ms));
    return 0;
}

static int launch(struct zmp__ctx *ctx, const zmp_options *o, struct zmp__proc **ret)
{
    struct zmp__spawn_args a = { .stdio = { -1, -1, -1 } };
    int out[2] = { -1, -1 }, err[2] = { -1, -1 }, in[2] = { -1, -1 };
    bool capture = !(o && (o->flags & ZMP_NO_CAPTURE));
    const char *interp = NULL, *path;
    struct zmp__proc *p = NULL;
    char **argv = NULL, **envp = NULL;
    int r, i;

    r = check_opts(o);
    if (r < 0)
        return r;
    r = zmp__ctx_start(ctx);
    if (r < 0)
        return r;
    if (!o->program)
        interp = o->interpreter ? o->interpreter : zmp__interp_name(ctx);
    r = zmp__resolve(ctx, o->program ? o->program : interp, &path);
    if (r < 0)
        return r;
    if ((r = build_argv(interp, o->argv, &argv)) < 0)
        goto fail;
    if (o->env && (r = build_env(o->env, o->flags & ZMP_ENV_REPLACE, &envp)) < 0)
        goto fail;
    if (capture) {
        if ((r = make_pipe(out)) < 0 || (r = make_pipe(err)) < 0)
            goto fail;
        a.stdio[0] = ctx->devnull;
        a.stdio[1] = out[1];
        a.stdio[2] = err[1];
    }
    if (o->input_len) {
        /* A socket, not a pipe: send(MSG_NOSIGNAL) to a child that closed
         * its stdin fails with EPIPE instead of raising SIGPIPE in the
         * caller, which a library must never do. */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0) {
            r = -errno;
            goto fail;
        }
        (void)shutdown(in[1], SHUT_WR);
        (void)shutdown(in[0], SHUT_RD);
        a.stdio[0] = in[1];
    }
    r = zmp__proc_new(ctx, capture, &p);
    if (r < 0)
        goto fail;
    p->start_ns = zmp__now_ns();
    {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        p->started = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    }
    if (o->input_len) {
        p->in_data = malloc(o->input_len);
        if (!p->in_data) {
            r = -ENOMEM;
            goto fail;
        }
        memcpy(p->in_data, o->input, o->input_len);
        p->in_len = o->input_len;
    }
    if ((r = apply_limits(p, o)) < 0)
        goto fail;
    a.path = path;
    a.argv = argv;
    a.envp = envp ? envp : environ;
    a.cwd = o->cwd;
    a.new_pgroup = p->pgroup;
    a.cgroup_fd = -1;
    if (o->cgroup) {
        r = zmp__cgroup_create(o->cgroup, &p->cg_path, &p->cg_fd);
        if (r < 0)
            goto fail;
        a.cgroup_fd = p->cg_fd;
    }
    r = zmp__spawn(&a, &p->pid, &p->pidfd);
    free(argv);
    free(envp);
    argv = envp = NULL;
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
    if (in[0] >= 0) {
        close(in[1]);
        p->in_fd = in[0];
        in[0] = in[1] = -1;
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
    if (p->in_fd >= 0) {
        r = ctx->engine->watch_input(ctx, p);
        if (r < 0) {
            zmp__proc_input_done(p, r);
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
        if (in[i] >= 0)
            close(in[i]);
    }
    free(argv);
    free(envp);
    if (p)
        zmp__proc_free(p);
    return r;
}

int zmp__launch(struct zmp__ctx *ctx, const zmp_options *o, struct zmp__proc **ret)
{
    int r = launch(ctx, o, ret);

    if (r == -EMFILE && zmp__raise_nofile())
        r = launch(ctx, o, ret);
    return r;
}
