/* SPDX-License-Identifier: MIT */
/*
 * The poll engine, for kernels and sandboxes without io_uring: one ppoll()
 * over every captured pipe and every child's pidfd (5.3+), children without
 * a pidfd (older kernels) checked with waitpid(WNOHANG) at least every
 * PID_TICK, and timers from the ppoll timeout.  poll has no FD_SETSIZE
 * limit, so descriptor numbers in the tens of thousands are fine.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define PID_TICK_NS (5 * 1000000)

enum { KIND_OUT = ZMP__OUT, KIND_ERR = ZMP__ERR, KIND_EXIT = 2, KIND_IN = 3 };

struct watch {
    struct zmp__proc *p;
    int kind;
};

struct pollst {
    struct pollfd *pfd;     /* the children's pipes and pidfds */
    struct watch *w;        /* who each pollfd is for */
    size_t n, cap;
    struct zmp__proc **bypid;  /* children without a pidfd */
    size_t npid, pidcap;
    /* What ppoll gets: a copy of pfd, the armed job sources' fds and the
     * wake eventfd, so it can block with the lock released while other
     * threads change pfd.  mods counts those changes: a result taken
     * across one is dropped (readiness is level-triggered: the next poll
     * sees it again). */
    struct pollfd *wait;
    unsigned *wait_src;        /* the watch slot of each source entry */
    uint32_t *wait_gen;        /* ... and the arming it was made for */
    size_t wait_cap;
    unsigned long mods;
    int wake_fd;
};

/* Room for one more pollfd. */
static int grow(struct pollst *st)
{
    if (st->n == st->cap) {
        size_t c = st->cap ? st->cap * 2 : 64;
        struct pollfd *pfd;
        struct watch *w;

        pfd = realloc(st->pfd, c * sizeof *pfd);
        if (!pfd)
            return -ENOMEM;
        st->pfd = pfd;
        w = realloc(st->w, c * sizeof *w);
        if (!w)
            return -ENOMEM;
        st->w = w;
        st->cap = c;
    }
    return 0;
}

static int add(struct pollst *st, struct zmp__proc *p, int kind, int fd,
               short events)
{
    int r = grow(st);

    if (r < 0)
        return r;
    st->pfd[st->n] = (struct pollfd){ .fd = fd, .events = events };
    st->w[st->n] = (struct watch){ p, kind };
    p->eng.slot[kind] = (int)st->n;
    st->n++;
    st->mods++;
    return 0;
}

/* Swap the last entry into slot i; callers walk the array downwards. */
static void del(struct pollst *st, size_t i)
{
    struct watch *w = &st->w[i];

    w->p->eng.slot[w->kind] = -1;
    st->n--;
    st->mods++;
    if (i != st->n) {
        st->pfd[i] = st->pfd[st->n];
        st->w[i] = st->w[st->n];
        st->w[i].p->eng.slot[st->w[i].kind] = (int)i;
    }
}

static int poll_init(struct zmp__ctx *ctx)
{
    struct pollst *st = calloc(1, sizeof *st);

    if (!st)
        return -ENOMEM;
    st->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (st->wake_fd < 0) {
        free(st);
        return -errno;
    }
    ctx->engine_state = st;
    return 0;
}

static void poll_fini(struct zmp__ctx *ctx)
{
    struct pollst *st = ctx->engine_state;

    if (!st)
        return;
    free(st->pfd);
    free(st->w);
    free(st->bypid);
    free(st->wait);
    free(st->wait_src);
    free(st->wait_gen);
    close(st->wake_fd);
    free(st);
    ctx->engine_state = NULL;
}

static int poll_watch_exit(struct zmp__ctx *ctx, struct zmp__proc *p)
{
    struct pollst *st = ctx->engine_state;

    if (p->pidfd >= 0)
        return add(st, p, KIND_EXIT, p->pidfd, POLLIN);
    if (st->npid == st->pidcap) {
        size_t c = st->pidcap ? st->pidcap * 2 : 64;
        struct zmp__proc **a = realloc(st->bypid, c * sizeof *a);

        if (!a)
            return -ENOMEM;
        st->bypid = a;
        st->pidcap = c;
    }
    p->eng.slot[KIND_EXIT] = (int)st->npid;
    st->bypid[st->npid++] = p;
    return 0;
}

static int poll_watch_pipe(struct zmp__ctx *ctx, struct zmp__proc *p, int stream)
{
    int fl = fcntl(p->out.fd[stream], F_GETFL);

    /* A read must never block the loop: readiness can be spurious. */
    if (fl < 0 || fcntl(p->out.fd[stream], F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return add(ctx->engine_state, p, stream, p->out.fd[stream], POLLIN);
}

static void on_pipe(struct pollst *st, size_t i)
{
    struct zmp__proc *p = st->w[i].p;
    int stream = st->w[i].kind;
    ssize_t n;
    size_t len;
    char *ptr;

    zmp__proc_read_area(p, stream, &ptr, &len);
    n = read(p->out.fd[stream], ptr, len);
    if (n > 0) {
        zmp__proc_read_done(p, stream, n);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    del(st, i);
    zmp__proc_read_done(p, stream, n < 0 ? -errno : 0);
}

/* Children without a pidfd: one waitpid(WNOHANG) each. */
static int check_bypid(struct pollst *st)
{
    size_t i;
    int n = 0;

    for (i = st->npid; i-- > 0;) {
        if (zmp__proc_collect(st->bypid[i]) == 0)
            continue;
        st->bypid[i]->eng.slot[KIND_EXIT] = -1;
        st->bypid[i] = st->bypid[--st->npid];
        if (i < st->npid)
            st->bypid[i]->eng.slot[KIND_EXIT] = (int)i;
        n++;
    }
    return n;
}

static void poll_close_pipe(struct zmp__ctx *ctx, struct zmp__proc *p, int stream)
{
    (void)ctx;
    close(p->out.fd[stream]);
}

static int poll_watch_input(struct zmp__ctx *ctx, struct zmp__proc *p)
{
    return add(ctx->engine_state, p, KIND_IN, p->in.fd, POLLOUT);
}

static void poll_drop_input(struct zmp__ctx *ctx, struct zmp__proc *p)
{
    struct pollst *st = ctx->engine_state;

    if (p->eng.slot[KIND_IN] >= 0)
        del(st, (size_t)p->eng.slot[KIND_IN]);
    zmp__proc_input_done(p, -ECANCELED);
}

/* Room in the child's stdin: send what fits, never blocking, never
 * raising SIGPIPE. */
static void on_input(struct pollst *st, size_t i)
{
    struct zmp__proc *p = st->w[i].p;
    ssize_t n;

    n = send(p->in.fd, p->in.data + p->in.off, p->in.len - p->in.off,
             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0 || (size_t)n + p->in.off >= p->in.len)
        del(st, i);
    zmp__proc_input_done(p, n < 0 ? -errno : n);
}

/* The set ppoll gets (see struct pollst); its size, or -ENOMEM. */
static int build_wait_set(struct zmp__ctx *ctx, struct pollst *st)
{
    size_t need = st->n + ctx->nwatches + 1, k = st->n, i;

    if (need > st->wait_cap) {
        struct pollfd *w = realloc(st->wait, need * sizeof *w);
        unsigned *ws;

        if (!w)
            return -ENOMEM;
        st->wait = w;
        ws = realloc(st->wait_src, need * sizeof *ws);
        if (!ws)
            return -ENOMEM;
        st->wait_src = ws;
        ws = realloc(st->wait_gen, need * sizeof *ws);
        if (!ws)
            return -ENOMEM;
        st->wait_gen = ws;
        st->wait_cap = need;
    }
    if (st->n)
        memcpy(st->wait, st->pfd, st->n * sizeof *st->pfd);
    for (i = 0; i < ctx->nwatches; i++)
        if (ctx->watches[i].armed) {
            st->wait_src[k] = (unsigned)i;
            st->wait_gen[k] = ctx->watches[i].gen;
            st->wait[k++] = (struct pollfd){ .fd = ctx->watches[i].fd, .events = POLLIN };
        }
    st->wait[k++] = (struct pollfd){ .fd = st->wake_fd, .events = POLLIN };
    return (int)k;
}

static int poll_run(struct zmp__ctx *ctx, int64_t deadline)
{
    struct pollst *st = ctx->engine_state;
    struct timespec ts, *tsp = NULL;
    int64_t wait = -1, now;
    unsigned long mods;
    uint64_t drain;
    int r, n, nset;
    size_t i, nchild;

    n = check_bypid(st);
    if (n > 0 || deadline == ZMP__NOWAIT) {
        wait = 0;
    } else if (deadline != ZMP__FOREVER) {
        now = zmp__now_ns();
        wait = deadline > now ? deadline - now : 0;
    }
    if (st->npid && (wait < 0 || wait > PID_TICK_NS))
        wait = PID_TICK_NS;
    if (wait >= 0) {
        ts.tv_sec = wait / 1000000000;
        ts.tv_nsec = wait % 1000000000;
        tsp = &ts;
    }
    nset = build_wait_set(ctx, st);
    if (nset < 0)
        return nset;
    mods = st->mods;
    nchild = st->n;  /* the children's entries in the set; st->n may move */
    if (wait != 0) {
        ctx->in_kernel = true;
        zmp__unlock(ctx);
    }
    r = ppoll(st->wait, (nfds_t)nset, tsp, NULL);
    if (wait != 0) {
        zmp__lock(ctx);
        ctx->in_kernel = false;
    }
    if (r < 0)
        return errno == EINTR ? n : -errno;
    if (st->wait[nset - 1].revents)
        while (read(st->wake_fd, &drain, sizeof drain) > 0)
            ;
    /* The sources' entries: each slot may have been freed or re-armed
     * meanwhile; a report for a slot no longer armed is dropped. */
    for (i = nchild; i < (size_t)nset - 1; i++) {
        struct zmp__watch *x;

        if (st->wait_src[i] >= ctx->nwatches)
            continue;
        x = &ctx->watches[st->wait_src[i]];

        /* The slot may have been freed and armed again for another fd. */
        if (!st->wait[i].revents || !x->armed || x->gen != st->wait_gen[i])
            continue;
        x->armed = false;
        x->ready = true;
        if (st->wait[i].revents & POLLNVAL)
            x->error = -EBADF;
        n++;
    }
    if (st->mods != mods)
        return n;  /* pfd changed under ppoll: look again next turn */
    for (i = st->n; i-- > 0;) {
        if (!st->wait[i].revents)
            continue;
        st->pfd[i].revents = st->wait[i].revents;
        n++;
        if (st->w[i].kind == KIND_EXIT) {
            struct zmp__proc *p = st->w[i].p;

            if (zmp__proc_collect(p))
                del(st, i);
        } else if (st->w[i].kind == KIND_IN) {
            on_input(st, i);
        } else if (st->pfd[i].revents & POLLNVAL) {
            struct zmp__proc *p = st->w[i].p;
            int stream = st->w[i].kind;

            del(st, i);
            zmp__proc_read_done(p, stream, -EBADF);
        } else {
            on_pipe(st, i);
        }
    }
    return n;
}

/* The leader blocks in ppoll() on a set made before: wake it to make a
 * new one (new pipes, sooner timers). */
static void poll_wake(struct zmp__ctx *ctx, bool force)
{
    struct pollst *st = ctx->engine_state;
    uint64_t one = 1;

    (void)force;  /* the set it polls is stale either way */
    (void)!write(st->wake_fd, &one, sizeof one);
}

static void poll_drop_pipe(struct zmp__ctx *ctx, struct zmp__proc *p, int stream)
{
    struct pollst *st = ctx->engine_state;

    if (p->eng.slot[stream] >= 0)
        del(st, (size_t)p->eng.slot[stream]);
    zmp__proc_read_done(p, stream, -ECANCELED);
}

/* A job source's fd rides in the wait set while armed. */
static int poll_watch_fd(struct zmp__ctx *ctx, unsigned w)
{
    ctx->watches[w].gen++;
    ctx->watches[w].armed = true;
    return 0;
}

static void poll_drop_fd(struct zmp__ctx *ctx, unsigned w)
{
    ctx->watches[w].armed = false;
}

const struct zmp__engine zmp__engine_poll = {
    .name = "poll",
    .init = poll_init,
    .fini = poll_fini,
    .forget = poll_fini,  /* only memory: nothing to leave alone */
    .watch_exit = poll_watch_exit,
    .watch_pipe = poll_watch_pipe,
    .drop_pipe = poll_drop_pipe,
    .close_pipe = poll_close_pipe,
    .watch_input = poll_watch_input,
    .drop_input = poll_drop_input,
    .watch_fd = poll_watch_fd,
    .drop_fd = poll_drop_fd,
    .run = poll_run,
    .wake = poll_wake,
};
