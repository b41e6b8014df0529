/* SPDX-License-Identifier: MIT */
/*
 * The io_uring engine: one ring multiplexes every child's exit (WAITID on
 * its pidfd, 6.7+, or a poll on the pidfd before that), every captured
 * pipe (single-shot reads straight into the result buffers) and the timer.
 * Requests queue in the SQ ring and go to the kernel together, once per
 * turn of the loop.
 *
 * Completions are not deferred (no COOP/DEFER_TASKRUN): the kernel posts
 * them while we run in user space, so zmp_poll() can see an exit by reading
 * the CQ ring, without a system call.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <liburing.h>

#include "compat/waitid.h"
#include "internal.h"

#define SQ_ENTRIES 256
#define WAKE_TRIES 1000
#define CQ_ENTRIES 4096

/* user_data: a proc pointer (malloc'd, so 16-byte aligned) with a tag in
 * the low bits, or a generation (timer, source fd) or a fixed-file slot
 * shifted past the tag. */
enum { TAG_WAIT, TAG_READ_OUT, TAG_READ_ERR, TAG_POLL, TAG_SEND, TAG_TIMER, TAG_IGNORE,
       TAG_CLOSE, TAG_FD };
#define TAG_BITS 4
#define TAG_MASK ((1u << TAG_BITS) - 1)

struct uring {
    struct io_uring ring;
    struct zmp__ctx *ctx;
    bool has_waitid;
    bool closing;      /* in fini: complete requests, never re-arm them */
    bool timer_armed;
    int64_t timer_deadline;
    uint64_t timer_gen;
    struct __kernel_timespec ts;
    /* Pipe read ends live in the ring's fixed-file table, outside the fd
     * table, once the process has FIXED_FROM children or more: a parent
     * with thousands of children in flight keeps a small fd table, so
     * every spawn stays cheap (clone copies the table, exec scans it) and
     * the fd limit is not the ceiling.  Below that, registering costs
     * more (a system call a pipe) than the descriptors do.  A stack of
     * free slots; when it is empty, pipes stay regular descriptors. */
    unsigned *free_slots;
    unsigned nfree;
};

#define MAX_FIXED 65536
#define FIXED_FROM ZMP__FEW_CHILDREN

static inline uint64_t ud_proc(struct zmp__proc *p, unsigned tag)
{
    return (uint64_t)(uintptr_t)p | tag;
}

/* An SQE, flushing the queue to the kernel when it is full. */
static struct io_uring_sqe *get_sqe(struct uring *u)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

    if (!sqe && io_uring_submit(&u->ring) >= 0)
        sqe = io_uring_get_sqe(&u->ring);
    return sqe;
}

/*
 * A sparse fixed-file table (5.19+) as large as the hard fd limit allows
 * (at most MAX_FIXED).  Its size is checked against the soft limit only
 * when it is registered, so the soft limit is lifted for that moment and
 * put back at once (liburing would otherwise raise it for good).  Without
 * the table, pipes simply stay regular descriptors.
 */
static pthread_mutex_t rlimit_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Rings are set up and torn down by several threads (the workers of
 * streams, workers.c), and a ring's memory is mapped where an earlier
 * ring of another thread was unmapped.  liburing maps and unmaps with raw
 * system calls, which order nothing for the C memory model, nor for
 * ThreadSanitizer: this lock puts each unmapping before the next mapping,
 * as the kernel does.
 */
static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;

/* Both locks above are leaves; held across a fork (zmp__engine.fork), so
 * that a ring set up or torn down by another thread at that moment (a
 * worker, a thread exiting, src/own.c) leaves neither held in the child. */
static void uring_fork(enum zmp__fork_phase phase)
{
    if (phase == ZMP__FORK_BEFORE) {
        pthread_mutex_lock(&rlimit_lock);
        pthread_mutex_lock(&map_lock);
    } else {
        pthread_mutex_unlock(&map_lock);
        pthread_mutex_unlock(&rlimit_lock);
    }
}

static int ring_map(struct io_uring *ring, struct io_uring_params *params)
{
    int r;

    pthread_mutex_lock(&map_lock);
    r = io_uring_queue_init_params(SQ_ENTRIES, ring, params);
    pthread_mutex_unlock(&map_lock);
    return r;
}

static void ring_unmap(struct io_uring *ring)
{
    pthread_mutex_lock(&map_lock);
    io_uring_queue_exit(ring);
    pthread_mutex_unlock(&map_lock);
}

static void setup_fixed(struct uring *u)
{
    struct rlimit old, rl;
    unsigned n, i;
    bool lifted = false;

    if (zmp__disabled() & ZMP__F_FIXED)
        return;
    /* Workers start their engines at once: one changes the limit at a
     * time, or one would take another's raised limit for the old one. */
    pthread_mutex_lock(&rlimit_lock);
    if (getrlimit(RLIMIT_NOFILE, &old) < 0)
        goto out;
    n = old.rlim_max > MAX_FIXED ? MAX_FIXED : (unsigned)old.rlim_max;
    if (u->ctx->fixed_max && n > u->ctx->fixed_max)
        n = u->ctx->fixed_max;
    if (n < 64)
        goto out;
    if (old.rlim_cur < n) {
        rl = old;
        rl.rlim_cur = n;
        lifted = setrlimit(RLIMIT_NOFILE, &rl) == 0;
        if (!lifted)
            n = (unsigned)old.rlim_cur;
    }
    u->free_slots = malloc(n * sizeof *u->free_slots);
    if (u->free_slots && io_uring_register_files_sparse(&u->ring, n) == 0) {
        for (i = 0; i < n; i++)
            u->free_slots[i] = n - 1 - i;
        u->nfree = n;
    } else {
        free(u->free_slots);
        u->free_slots = NULL;
    }
    if (lifted || getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur != old.rlim_cur)
        setrlimit(RLIMIT_NOFILE, &old);
out:
    pthread_mutex_unlock(&rlimit_lock);
}

/* Move a pipe into a fixed slot and close its descriptor. */
static void make_fixed(struct uring *u, struct zmp__proc *p, int stream)
{
    unsigned slot;

    if (!u->nfree || zmp__reg_live() < FIXED_FROM)
        return;
    slot = u->free_slots[--u->nfree];
    if (io_uring_register_files_update(&u->ring, slot, &p->out.fd[stream], 1) != 1) {
        u->free_slots[u->nfree++] = slot;
        return;
    }
    close(p->out.fd[stream]);
    p->out.fd[stream] = ZMP__FD_FIXED;
    p->eng.slot[stream] = (int)slot;
}

static int uring_init(struct zmp__ctx *ctx)
{
    struct io_uring_params params = {
        .flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP,
        .cq_entries = CQ_ENTRIES,
    };
    struct io_uring_probe *probe;
    struct uring *u;
    int r;

    u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    u->ctx = ctx;
    r = ring_map(&u->ring, &params);
    if (r < 0) {
        free(u);
        return r;
    }
    probe = NULL;
    /* Exits are watched through pidfds: without them (before 5.3) the
     * poll engine, which can wait by pid, is the one to use. */
    if (!zmp__have_pidfd()) {
        r = -ENOSYS;
        goto fail;
    }
    /* The probe (5.6+) answers once which opcodes this kernel has. */
    probe = io_uring_get_probe_ring(&u->ring);
    if (!probe || !io_uring_opcode_supported(probe, IORING_OP_READ) ||
        !io_uring_opcode_supported(probe, IORING_OP_POLL_ADD) ||
        !io_uring_opcode_supported(probe, IORING_OP_TIMEOUT) ||
        !io_uring_opcode_supported(probe, IORING_OP_ASYNC_CANCEL) ||
        !io_uring_opcode_supported(probe, IORING_OP_SEND)) {
        r = -ENOSYS;
        goto fail;
    }
    u->has_waitid = io_uring_opcode_supported(probe, IORING_OP_WAITID) &&
                    !(zmp__disabled() & ZMP__F_WAITID);
    ctx->pid_waits = u->has_waitid;
    io_uring_free_probe(probe);
    setup_fixed(u);
    ctx->engine_state = u;
    return 0;
fail:
    if (probe)
        io_uring_free_probe(probe);
    ring_unmap(&u->ring);
    free(u->free_slots);
    free(u);
    return r;
}

static int queue_exit_watch(struct uring *u, struct zmp__proc *p)
{
    struct io_uring_sqe *sqe = get_sqe(u);

    if (!sqe)
        return -EBUSY;
    if (u->has_waitid) {
        /* The kernel fills p->eng.si once the child has exited, and
         * leaves it unreaped: the ring's wait reports no resource usage,
         * which the reaping waitid() in on_exit_cqe gets.  A child with
         * no pidfd (ZMP__FEW_CHILDREN) is waited for by pid: unreaped,
         * it is ours and its pid cannot be reused. */
        bool by_fd = p->pidfd >= 0;

        io_uring_prep_waitid(sqe, (idtype_t)(by_fd ? P_PIDFD : P_PID),
                             (id_t)(by_fd ? p->pidfd : p->pid), &p->eng.si, WEXITED | WNOWAIT, 0);
        io_uring_sqe_set_data64(sqe, ud_proc(p, TAG_WAIT));
    } else {
        /* A pidfd polls readable once the child has exited (5.3+). */
        io_uring_prep_poll_add(sqe, p->pidfd, POLLIN);
        io_uring_sqe_set_data64(sqe, ud_proc(p, TAG_POLL));
    }
    p->eng.inflight++;
    return 0;
}

static int uring_watch_exit(struct zmp__ctx *ctx, struct zmp__proc *p)
{
    return queue_exit_watch(ctx->engine_state, p);
}

static int queue_read(struct uring *u, struct zmp__proc *p, int stream)
{
    struct io_uring_sqe *sqe = get_sqe(u);
    size_t len;
    char *ptr;

    if (!sqe)
        return -EBUSY;
    zmp__proc_read_area(p, stream, &ptr, &len);
    if (len > (1u << 30))
        len = 1u << 30;
    /* Offset -1: the file's own position, as pipes have none (5.6+). */
    if (p->out.fd[stream] == ZMP__FD_FIXED) {
        io_uring_prep_read(sqe, p->eng.slot[stream], ptr, (unsigned)len,
                           (uint64_t)-1);
        sqe->flags |= IOSQE_FIXED_FILE;
    } else {
        io_uring_prep_read(sqe, p->out.fd[stream], ptr, (unsigned)len,
                           (uint64_t)-1);
    }
    io_uring_sqe_set_data64(sqe, ud_proc(p, stream == ZMP__OUT ? TAG_READ_OUT
                                                               : TAG_READ_ERR));
    p->eng.inflight++;
    return 0;
}

static int uring_watch_pipe(struct zmp__ctx *ctx, struct zmp__proc *p, int stream)
{
    make_fixed(ctx->engine_state, p, stream);
    return queue_read(ctx->engine_state, p, stream);
}

/* A fixed slot is closed by a request, and free again once it completes:
 * given out earlier, a later registration could land before the close. */
static void uring_close_pipe(struct zmp__ctx *ctx, struct zmp__proc *p, int stream)
{
    struct uring *u = ctx->engine_state;
    unsigned slot = (unsigned)p->eng.slot[stream];
    struct io_uring_sqe *sqe;
    int none = -1;

    if (p->out.fd[stream] != ZMP__FD_FIXED) {
        close(p->out.fd[stream]);
        return;
    }
    p->eng.slot[stream] = -1;
    sqe = get_sqe(u);
    if (sqe) {
        io_uring_prep_close_direct(sqe, slot);
        io_uring_sqe_set_data64(sqe, ((uint64_t)slot << TAG_BITS) | TAG_CLOSE);
        return;
    }
    if (io_uring_register_files_update(&u->ring, slot, &none, 1) == 1)
        u->free_slots[u->nfree++] = slot;
}

static int queue_send(struct uring *u, struct zmp__proc *p)
{
    struct io_uring_sqe *sqe = get_sqe(u);
    size_t len = p->in.len - p->in.off;

    if (!sqe)
        return -EBUSY;
    if (len > (1u << 30))
        len = 1u << 30;
    io_uring_prep_send(sqe, p->in.fd, p->in.data + p->in.off, len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud_proc(p, TAG_SEND));
    p->eng.inflight++;
    return 0;
}

static int uring_watch_input(struct zmp__ctx *ctx, struct zmp__proc *p)
{
    return queue_send(ctx->engine_state, p);
}

static void on_send_cqe(struct uring *u, struct zmp__proc *p, int res)
{
    int r;

    if (res == -ECANCELED && !u->closing && !p->in.cancelled)
        res = -EAGAIN;  /* as in on_read_cqe */
    if (res != -EINTR && res != -EAGAIN) {
        zmp__proc_input_done(p, res > 0 ? res : res == 0 ? -EPIPE : res);
        if (p->in.fd < 0)
            return;
    }
    r = u->closing || p->in.cancelled ? -ECANCELED : queue_send(u, p);
    if (r < 0)
        zmp__proc_input_done(p, r);
}

static void uring_drop_input(struct zmp__ctx *ctx, struct zmp__proc *p)
{
    struct uring *u = ctx->engine_state;
    struct io_uring_sqe *sqe = get_sqe(u);

    p->in.cancelled = true;
    if (!sqe)
        return;
    io_uring_prep_cancel64(sqe, ud_proc(p, TAG_SEND), 0);
    io_uring_sqe_set_data64(sqe, TAG_IGNORE);
}

/* The pidfd polled readable: collect the exit, or watch again. */
static void pidfd_ready(struct uring *u, struct zmp__proc *p)
{
    if (zmp__proc_collect(p) != 0)
        return;
    if (u->closing || queue_exit_watch(u, p) < 0) {
        p->error = -EBUSY;
        zmp__proc_reap_now(p);
    }
}

static void on_exit_cqe(struct uring *u, struct zmp__proc *p, int res)
{
    if (res == 0) {
        /* Exited: reap it, with its resource usage. */
        if (!zmp__proc_collect_exited(p))
            zmp__proc_exited(p, zmp__exit_code_from_siginfo(&p->eng.si));
        return;
    }
    if ((res == -EINTR || res == -EAGAIN) && !u->closing) {
        if (queue_exit_watch(u, p) == 0)
            return;
        res = -EBUSY;
    }
    if (res == -ECANCELED && u->closing)
        return;
    /* io_uring ties a request to the thread that submitted it.  Once that
     * thread has exited, a WAITID completes where it can neither write
     * p->eng.si (-EFAULT) nor see the child as its own (-ECHILD), the child
     * left unreaped, and polls and reads are cancelled.  The thread running
     * the engine now collects the exit by itself (a real -ECHILD, a child
     * reaped behind our back, is found there too), or watches again. */
    if (res == -EFAULT || res == -ECANCELED || res == -ECHILD) {
        pidfd_ready(u, p);
        return;
    }
    p->error = res;
    zmp__proc_reap_now(p);
}

static void on_read_cqe(struct uring *u, struct zmp__proc *p, int stream, int res)
{
    int r;

    /* Cancelled with the thread that submitted it (see on_exit_cqe), not
     * by us: read again, from this thread. */
    if (res == -ECANCELED && !u->closing && !p->out.cancelled[stream])
        res = -EAGAIN;
    if (res != -EINTR && res != -EAGAIN) {
        zmp__proc_read_done(p, stream, res);
        if (res <= 0)
            return;
    }
    r = u->closing || p->out.cancelled[stream] ? -ECANCELED
                                               : queue_read(u, p, stream);
    if (r < 0)
        zmp__proc_read_done(p, stream, r);
}

/* A job source's fd: user_data holds its watch slot and the generation
 * of the arming, so a report of an arming since dropped is ignored. */
static uint64_t ud_fd(unsigned w, uint32_t gen)
{
    return ((uint64_t)w << 32) | ((uint64_t)(gen & 0xfffffff) << TAG_BITS) | TAG_FD;
}

static void on_fd_cqe(struct zmp__ctx *ctx, uint64_t ud, int res)
{
    unsigned w = (unsigned)(ud >> 32);
    struct zmp__watch *x;

    if (w >= ctx->nwatches)
        return;
    x = &ctx->watches[w];
    if (!x->armed || ud != ud_fd(w, x->gen))
        return;  /* dropped (drop_fd bumps gen): stale */
    x->armed = false;
    x->ready = true;
    /* Still armed, yet cancelled: not by us, but with the thread that
     * submitted it, which exited.  Call it ready: the source is asked
     * again, and names its fd again if it has nothing. */
    if (res < 0 && res != -ECANCELED)
        x->error = res;
}

static void on_cqe(struct uring *u, const struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    unsigned tag = ud & TAG_MASK;
    struct zmp__proc *p = (struct zmp__proc *)(uintptr_t)(ud & ~(uint64_t)TAG_MASK);

    switch (tag) {
    case TAG_TIMER:
        if (ud >> TAG_BITS == u->timer_gen)
            u->timer_armed = false;
        return;
    case TAG_IGNORE:
        return;
    case TAG_FD:
        on_fd_cqe(u->ctx, ud, cqe->res);
        return;
    case TAG_CLOSE:
        u->free_slots[u->nfree++] = (unsigned)(ud >> TAG_BITS);
        return;
    }
    p->eng.inflight--;
    switch (tag) {
    case TAG_WAIT:
        on_exit_cqe(u, p, cqe->res);
        break;
    case TAG_POLL:
        /* Cancelled by fini, or with its submitting thread: then look. */
        if (cqe->res == -ECANCELED && u->closing)
            break;
        pidfd_ready(u, p);
        break;
    case TAG_READ_OUT:
        on_read_cqe(u, p, ZMP__OUT, cqe->res);
        break;
    case TAG_READ_ERR:
        on_read_cqe(u, p, ZMP__ERR, cqe->res);
        break;
    case TAG_SEND:
        on_send_cqe(u, p, cqe->res);
        break;
    }
}

static int reap_cqes(struct uring *u)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;

    io_uring_for_each_cqe(&u->ring, head, cqe) {
        on_cqe(u, cqe);
        n++;
    }
    io_uring_cq_advance(&u->ring, n);
    return (int)n;
}

/* One absolute CLOCK_MONOTONIC timer on the ring, re-armed only when the
 * deadline changes; a replaced timer is removed, and the completion of a
 * stale one is recognised by its generation and ignored. */
static int arm_timer(struct uring *u, int64_t deadline)
{
    struct io_uring_sqe *sqe;

    if (u->timer_armed && u->timer_deadline == deadline)
        return 0;
    if (u->timer_armed) {
        sqe = get_sqe(u);
        if (!sqe)
            return -EBUSY;
        io_uring_prep_timeout_remove(sqe, (u->timer_gen << TAG_BITS) | TAG_TIMER, 0);
        io_uring_sqe_set_data64(sqe, TAG_IGNORE);
        u->timer_armed = false;
    }
    sqe = get_sqe(u);
    if (!sqe)
        return -EBUSY;
    u->timer_gen++;
    u->ts.tv_sec = deadline / 1000000000;
    u->ts.tv_nsec = deadline % 1000000000;
    io_uring_prep_timeout(sqe, &u->ts, 0, IORING_TIMEOUT_ABS);
    io_uring_sqe_set_data64(sqe, (u->timer_gen << TAG_BITS) | TAG_TIMER);
    u->timer_armed = true;
    u->timer_deadline = deadline;
    return 0;
}

/*
 * Hand what is queued to the kernel's side of the ring, without entering
 * the kernel: the tail moves under the lock, so no other thread is filling
 * an entry at that moment, and any io_uring_enter() then submits them.
 * Returns how many wait there.  (liburing 2.3 keeps its own flush private.)
 */
static unsigned flush_sq(struct uring *u)
{
    struct io_uring_sq *sq = &u->ring.sq;
    unsigned tail = sq->sqe_tail;

    if (sq->sqe_head != tail) {
        sq->sqe_head = tail;
        io_uring_smp_store_release(sq->ktail, tail);
    }
    return tail - io_uring_smp_load_acquire(sq->khead);
}

static int uring_run(struct zmp__ctx *ctx, int64_t deadline)
{
    struct uring *u = ctx->engine_state;
    unsigned queued;
    int r, n;

    if (deadline > 0) {
        r = arm_timer(u, deadline);
        if (r < 0)
            return r;
    }
    n = reap_cqes(u);
    if (n == 0 && deadline != ZMP__NOWAIT) {
        /* Submit and wait in one system call, with the lock released:
         * other threads queue and submit their requests meanwhile (under
         * the lock; the kernel takes its own for submissions), and only
         * this thread reaps.  Fewer submitted than asked (another thread
         * took some) returns without waiting: the caller comes back. */
        queued = flush_sq(u);
        ctx->in_kernel = true;
        zmp__unlock(ctx);
        r = io_uring_enter(u->ring.ring_fd, queued, 1, IORING_ENTER_GETEVENTS, NULL);
        zmp__lock(ctx);
        ctx->in_kernel = false;
        if (r < 0 && r != -EINTR && r != -ETIME && r != -EAGAIN && r != -EBUSY)
            return r;
        n = reap_cqes(u);
    } else if (n == 0 && io_uring_cq_has_overflow(&u->ring)) {
        /* Completions the CQ ring had no room for wait in the kernel. */
        io_uring_get_events(&u->ring);
        n = reap_cqes(u);
    }
    /* What the handlers queued (reads, re-armed waits) goes in now, so it
     * is in flight while the caller does other things; unless the caller
     * is a worker, which runs the engine again once it has handed over
     * what ended: one system call then does both. */
    if (io_uring_sq_ready(&u->ring) && !ctx->lazy_submit) {
        r = io_uring_submit(&u->ring);
        if (r < 0 && r != -EINTR)
            return r;
    }
    return n;
}

/*
 * The leader waits in io_uring_enter() for a completion.  What other
 * threads queued is submitted here, and its completions will wake it; a
 * timer due sooner than it waits for is armed in its place (it re-arms
 * its own when it wakes).
 */
static void uring_wake(struct zmp__ctx *ctx, bool force)
{
    struct uring *u = ctx->engine_state;
    int64_t next = ctx->ntimers ? ctx->timers[0]->tmo.timer : ZMP__FOREVER;
    struct io_uring_sqe *sqe;
    int r, tries;

    for (tries = 0; force && tries < WAKE_TRIES; tries++) {
        if ((sqe = get_sqe(u))) {
            io_uring_prep_nop(sqe);
            io_uring_sqe_set_data64(sqe, TAG_IGNORE);
            break;
        }
        sched_yield();
    }
    if (next != ZMP__FOREVER &&
        (ctx->leader_wake == ZMP__FOREVER || next < ctx->leader_wake) &&
        arm_timer(u, next) == 0)
        ctx->leader_wake = next;
    /* A wake that does not reach the kernel is a thread asleep for
     * good: a submission refused for want of memory (EAGAIN) or while
     * completions overflow (EBUSY) is tried again. */
    for (tries = 0; io_uring_sq_ready(&u->ring) && tries < WAKE_TRIES; tries++) {
        r = io_uring_submit(&u->ring);
        if (r >= 0 || (r != -EAGAIN && r != -EBUSY && r != -EINTR))
            break;
        sched_yield();
    }
}

/* Cancel what is still in flight and wait for it, so the kernel writes no
 * more into buffers about to be freed, then tear the ring down. */
static void uring_fini(struct zmp__ctx *ctx)
{
    struct uring *u = ctx->engine_state;
    struct io_uring_sqe *sqe;
    struct zmp__proc *p;
    bool busy;
    int tag, r;

    if (!u)
        return;
    u->closing = true;
    for (p = ctx->procs; p; p = p->next) {
        for (tag = TAG_WAIT; p->eng.inflight && tag <= TAG_SEND; tag++) {
            sqe = get_sqe(u);
            if (!sqe)
                break;
            io_uring_prep_cancel64(sqe, ud_proc(p, (unsigned)tag), 0);
            io_uring_sqe_set_data64(sqe, TAG_IGNORE);
        }
    }
    do {
        busy = false;
        for (p = ctx->procs; p; p = p->next)
            if (p->eng.inflight)
                busy = true;
        if (busy) {
            r = io_uring_submit_and_wait(&u->ring, 1);
            if (r < 0 && r != -EINTR)
                break;
        }
        reap_cqes(u);
    } while (busy);
    ring_unmap(&u->ring);
    free(u->free_slots);
    free(u);
    ctx->engine_state = NULL;
}

/* In the child of a fork, the ring's memory is shared with the parent,
 * which still runs it: unmap this process's view and close its
 * descriptor, reading and submitting nothing.  The parent's requests and
 * fixed files stay the parent's. */
static void uring_forget(struct zmp__ctx *ctx)
{
    struct uring *u = ctx->engine_state;

    if (!u)
        return;
    ring_unmap(&u->ring);
    free(u->free_slots);
    free(u);
    ctx->engine_state = NULL;
}

/* Cancel the read in flight.  It completes with -ECANCELED, or with data
 * if it won the race; either way `out.cancelled` keeps it from being re-armed,
 * and the stream is closed. */
static void uring_drop_pipe(struct zmp__ctx *ctx, struct zmp__proc *p, int stream)
{
    struct uring *u = ctx->engine_state;
    struct io_uring_sqe *sqe = get_sqe(u);

    p->out.cancelled[stream] = true;
    if (!sqe)
        return;
    io_uring_prep_cancel64(sqe, ud_proc(p, stream == ZMP__OUT ? TAG_READ_OUT
                                                                : TAG_READ_ERR), 0);
    io_uring_sqe_set_data64(sqe, TAG_IGNORE);
}

/* A job source's fd: one poll, reported once. */
static int uring_watch_fd(struct zmp__ctx *ctx, unsigned w)
{
    struct uring *u = ctx->engine_state;
    struct io_uring_sqe *sqe = get_sqe(u);
    struct zmp__watch *x = &ctx->watches[w];

    if (!sqe)
        return -EBUSY;
    x->gen++;
    io_uring_prep_poll_add(sqe, x->fd, POLLIN);
    io_uring_sqe_set_data64(sqe, ud_fd(w, x->gen));
    x->armed = true;
    return 0;
}

static void uring_drop_fd(struct zmp__ctx *ctx, unsigned w)
{
    struct uring *u = ctx->engine_state;
    struct io_uring_sqe *sqe = get_sqe(u);
    struct zmp__watch *x = &ctx->watches[w];

    if (sqe) {
        io_uring_prep_poll_remove(sqe, ud_fd(w, x->gen));
        io_uring_sqe_set_data64(sqe, TAG_IGNORE);
    }
    x->armed = false;  /* whatever comes back now is ignored */
    x->gen++;
}

const struct zmp__engine zmp__engine_uring = {
    .name = "io_uring",
    .init = uring_init,
    .fini = uring_fini,
    .forget = uring_forget,
    .watch_exit = uring_watch_exit,
    .watch_pipe = uring_watch_pipe,
    .drop_pipe = uring_drop_pipe,
    .close_pipe = uring_close_pipe,
    .watch_input = uring_watch_input,
    .drop_input = uring_drop_input,
    .watch_fd = uring_watch_fd,
    .drop_fd = uring_drop_fd,
    .run = uring_run,
    .wake = uring_wake,
    .fork = uring_fork,
};
