/* SPDX-License-Identifier: MIT */
/*
 * The context: which engine runs, starting and stopping it, the job
 * sources' watch slots, and what a fork() leaves behind.  Everything
 * here is called with ctx->lock held.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* Tried in order; the first whose init succeeds runs. */
static const struct zmp__engine *const engines[] = {
#ifdef HAVE_URING
    &zmp__engine_uring,
#endif
    &zmp__engine_poll,
    NULL,
};

static int engine_by_name(const char *name, const struct zmp__engine **ret)
{
    size_t i;

    for (i = 0; engines[i]; i++)
        if (!strcmp(engines[i]->name, name)) {
            *ret = engines[i];
            return 0;
        }
    /* A known engine left out of this build is not the same as a typo. */
    return !strcmp(name, "io_uring") ? -ENOTSUP : -EINVAL;
}

/* The name an engine choice may use, as stored (a constant string), or
 * NULL with -EINVAL (unknown) or -ENOTSUP (left out of this build) in
 * *ret_err.  "auto" is a name too. */
const char *zmp__engine_name(const char *name, int *ret_err)
{
    const struct zmp__engine *e;

    if (!strcmp(name, "auto"))
        return "auto";
    *ret_err = engine_by_name(name, &e);
    return *ret_err == 0 ? e->name : NULL;
}

/* The engine name asked for: zmp_set_backend() first, then $ZMP_BACKEND.
 * "auto" and the empty string mean the first engine that starts. */
static const char *wanted_engine(const struct zmp__ctx *ctx)
{
    const char *s = ctx->forced ? ctx->forced : getenv("ZMP_BACKEND");

    if (!s || !*s || !strcmp(s, "auto"))
        return NULL;
    return s;
}

/*
 * fork() copies the context, but not what it stands for: the children
 * are the parent's, and the io_uring ring is shared memory that both
 * processes would reap from.  The child of a fork notices (a counter
 * bumped by an atfork handler, read without a system call) and forgets
 * everything it inherited before its first use of the library.  Around
 * the fork the context's lock is held, so the child never inherits it
 * held by a thread that did not come along, nor a half-changed context.
 */
static unsigned fork_gen;
static struct zmp__ctx *fork_ctx;  /* the context to hold across fork() */
static struct zmp__ctx *held_ctx;  /* ... held by the thread that forks */
/* What a layer above holds across fork() (own.c: every thread's own
 * context), called just after the shared lock is taken and just before it
 * is let go of: that is the order zmp_deinit() takes them in. */
static void (*fork_hook)(enum zmp__fork_phase);
static void (*held_hook)(enum zmp__fork_phase);

void zmp__ctx_on_fork(void (*hook)(enum zmp__fork_phase phase))
{
    __atomic_store_n(&fork_hook, hook, __ATOMIC_RELEASE);
}

/* The engines' process-wide locks (zmp__engine.fork). */
static void engines_fork(enum zmp__fork_phase phase)
{
    size_t i;

    for (i = 0; engines[i]; i++)
        if (engines[i]->fork)
            engines[i]->fork(phase);
}

static void before_fork(void)
{
    struct zmp__ctx *ctx = __atomic_load_n(&fork_ctx, __ATOMIC_ACQUIRE);

    if (ctx)
        zmp__lock(ctx);
    held_ctx = ctx;
    held_hook = ctx ? __atomic_load_n(&fork_hook, __ATOMIC_ACQUIRE) : NULL;
    if (held_hook)
        held_hook(ZMP__FORK_BEFORE);
    zmp__reg_fork(true);
    zmp__nofile_fork(true);
    engines_fork(ZMP__FORK_BEFORE);
}

static void after_fork_parent(void)
{
    engines_fork(ZMP__FORK_PARENT);
    zmp__nofile_fork(false);
    zmp__reg_fork(false);
    if (held_hook)
        held_hook(ZMP__FORK_PARENT);
    if (held_ctx)
        zmp__unlock(held_ctx);
}

/* The forking thread took the locks and is the one thread here: it lets
 * go of them.  Threads that waited on the condition did not come along. */
static void after_fork_child(void)
{
    __atomic_add_fetch(&fork_gen, 1, __ATOMIC_RELAXED);
    engines_fork(ZMP__FORK_CHILD);
    zmp__nofile_fork(false);
    zmp__reg_forget();
    if (held_hook)
        held_hook(ZMP__FORK_CHILD);
    if (held_ctx) {
        pthread_cond_init(&held_ctx->cond, NULL);
        zmp__unlock(held_ctx);
    }
}

static void watch_forks(void)
{
    (void)pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

void zmp__ctx_check_fork(struct zmp__ctx *ctx)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    unsigned gen;

    /* From the first call on, whatever it is: the lock is held around a
     * fork from then on. */
    if (!__atomic_load_n(&fork_ctx, __ATOMIC_ACQUIRE))
        __atomic_store_n(&fork_ctx, ctx, __ATOMIC_RELEASE);  /* the library's one */
    pthread_once(&once, watch_forks);
    gen = __atomic_load_n(&fork_gen, __ATOMIC_RELAXED);
    if (gen == ctx->fork_gen)
        return;
    ctx->fork_gen = gen;
    zmp__ctx_forget(ctx);
}

/*
 * In the child of a fork: let go of the parent's children, pipes and ring
 * without a signal, a wait, a cancel or an rmdir, which would all act on
 * the parent's behalf.  Memory is freed and descriptors closed (they are
 * this process's copies).
 */
void zmp__ctx_forget(struct zmp__ctx *ctx)
{
    struct zmp__proc *p;
    size_t i;

    while ((p = ctx->procs)) {
        p->reg = -1;           /* the registry was emptied at the fork */
        p->eng.inflight = 0;
        if (p->cg_path) {      /* the parent's cgroup: leave it be */
            close(p->cg_fd);
            free(p->cg_path);
            p->cg_path = NULL;
            p->cg_fd = -1;
        }
        zmp__proc_free(p);
    }
    if (ctx->engine)
        ctx->engine->forget(ctx);
    ctx->engine = NULL;
    for (i = 0; i < ctx->ncg; i++)
        free(ctx->cg[i]);
    free(ctx->cg);
    ctx->cg = NULL;
    ctx->ncg = ctx->cg_cap = 0;
    free(ctx->watches);
    ctx->watches = NULL;
    ctx->nwatches = 0;
    /* Threads of the parent that were inside the library did not come
     * along: none of their calls is in progress here. */
    ctx->leading = ctx->in_kernel = ctx->stopping = ctx->deinit_pending = false;
    ctx->calls = 0;
    zmp__ctx_stop(ctx);
}

int zmp__ctx_start(struct zmp__ctx *ctx)
{
    const struct zmp__engine *e;
    const char *want;
    size_t i;
    int r = -ENOSYS;

    if (ctx->engine)
        return 0;
    if (!ctx->scratch) {
        ctx->scratch = malloc(ZMP__SCRATCH_SIZE);
        if (!ctx->scratch)
            return -ENOMEM;
    }
    if (ctx->devnull < 0) {
        ctx->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (ctx->devnull < 0)
            return -errno;
    }
    ctx->pid_waits = false;  /* until an engine says it can */
    want = wanted_engine(ctx);
    if (want) {
        r = engine_by_name(want, &e);
        if (r < 0)
            return r;
        r = e->init(ctx);
        if (r < 0)
            return r;
        ctx->engine = e;
        return 0;
    }
    for (i = 0; engines[i]; i++) {
        r = engines[i]->init(ctx);
        if (r == 0) {
            ctx->engine = engines[i];
            return 0;
        }
    }
    return r;
}

/*
 * Kill and reap every child, then let the engine go.  Children are waited
 * for through the engine, which is already watching them; their pipes are
 * not waited for, since a grandchild may hold them open: the engine's fini
 * cancels those reads.
 */
void zmp__ctx_stop(struct zmp__ctx *ctx)
{
    struct zmp__proc *p, *next;
    int r;

    if (ctx->engine) {
        for (p = ctx->procs; p; p = p->next)
            zmp__proc_signal(p, SIGKILL);
        for (p = ctx->procs; p; p = p->next) {
            r = zmp__ctx_run_until(ctx, zmp__proc_exited_cond, p, ZMP__FOREVER);
            if (r < 0)
                break;
        }
        ctx->engine->fini(ctx);
        ctx->engine = NULL;
    }
    free(ctx->watches);
    ctx->watches = NULL;
    ctx->nwatches = 0;
    for (p = ctx->procs; p; p = next) {
        next = p->next;
        /* A run that failed above leaves a child unreaped: reap it here. */
        if (!(p->flags & ZMP__PROC_EXITED) && p->pid > 0)
            zmp__proc_reap_now(p);
        p->eng.inflight = 0;
        zmp__proc_free(p);
    }
    zmp__table_free(&ctx->table);
    free(ctx->timers);
    ctx->timers = NULL;
    ctx->ntimers = ctx->timers_cap = ctx->ntimed = 0;
    zmp__cgroup_sweep(ctx, true);
    if (ctx->devnull >= 0)
        close(ctx->devnull);
    ctx->devnull = -1;
    free(ctx->scratch);
    ctx->scratch = NULL;
    free(ctx->resolved_name);
    free(ctx->resolved_pathenv);
    free(ctx->resolved_path);
    ctx->resolved_name = ctx->resolved_pathenv = ctx->resolved_path = NULL;
}

/* A watch slot for a job source's fd (not armed yet), or -ENOMEM. */
int zmp__watch_new(struct zmp__ctx *ctx, int fd)
{
    struct zmp__watch *a;
    size_t i;

    for (i = 0; i < ctx->nwatches; i++)
        if (ctx->watches[i].fd < 0)
            break;
    if (i == ctx->nwatches) {
        a = realloc(ctx->watches, (i + 1) * sizeof *a);
        if (!a)
            return -ENOMEM;
        ctx->watches = a;
        ctx->nwatches = i + 1;
        ctx->watches[i].gen = 0;
    }
    ctx->watches[i].fd = fd;
    ctx->watches[i].armed = ctx->watches[i].ready = false;
    ctx->watches[i].error = 0;
    return (int)i;
}

void zmp__watch_free(struct zmp__ctx *ctx, unsigned w)
{
    if (ctx->watches[w].armed)
        ctx->engine->drop_fd(ctx, w);
    ctx->watches[w].armed = false;
    ctx->watches[w].fd = -1;
}
