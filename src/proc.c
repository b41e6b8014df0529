/* SPDX-License-Identifier: MIT */
/*
 * The child record: its state, its captured output, and the callbacks the
 * engines use to report on it.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

static void note_done(struct zmp__proc *p);

/* Reads grow with the buffer, from 16 KiB up to the 256 KiB pipe size:
 * small outputs stay small, big ones are read in large pieces (reads of
 * 64 KiB and more keep up with a plain read() loop). */
#define READ_MIN (16 * 1024)
#define READ_MAX (256 * 1024)

int zmp__proc_new(struct zmp__ctx *ctx, bool capture, struct zmp__proc **ret)
{
    /* 16-byte aligned: the io_uring engine keeps a tag in the low bits of
     * its address (malloc gives only 8 on some 32-bit systems). */
    struct zmp__proc *p = aligned_alloc(16, (sizeof *p + 15) & ~(size_t)15);
    int reg;

    if (!p)
        return -ENOMEM;
    reg = zmp__reg_reserve();
    if (reg < 0) {
        free(p);
        return reg;
    }
    memset(p, 0, sizeof *p);
    p->ctx = ctx;
    p->reg = reg;
    p->pid = -1;
    p->pidfd = -1;
    p->out.fd[0] = p->out.fd[1] = -1;
    p->eng.slot[0] = p->eng.slot[1] = p->eng.slot[2] = p->eng.slot[3] = -1;
    p->in.fd = -1;
    p->cg_fd = -1;
    zmp__timer_init(p);
    p->flags = capture ? ZMP__PROC_CAPTURE : 0;
    *ret = p;
    return 0;
}

/* On the context's list: from now on the engine and every call may see
 * it.  Locked. */
void zmp__proc_attach(struct zmp__proc *p)
{
    struct zmp__ctx *ctx = p->ctx;

    p->attached = true;
    p->prev = NULL;
    p->next = ctx->procs;
    if (ctx->procs)
        ctx->procs->prev = p;
    ctx->procs = p;
}

void zmp__proc_free(struct zmp__proc *p)
{
    struct zmp__ctx *ctx = p->ctx;
    int i;

    if (p->handle > 0)
        zmp__table_del(&ctx->table, p->handle);
    zmp__timer_set(p, 0);
    if (p->tmo.room)
        zmp__timer_unreserve(ctx);
    if (p->attached) {
        if (p->prev)
            p->prev->next = p->next;
        else
            ctx->procs = p->next;
        if (p->next)
            p->next->prev = p->prev;
    }
    zmp__reg_release(p->reg);
    for (i = 0; i < 2; i++) {
        if (p->out.fd[i] >= 0)  /* a fixed one went with the engine */
            close(p->out.fd[i]);
        zmp__buf_free(&p->out.buf[i]);
    }
    if (p->pidfd >= 0)
        close(p->pidfd);
    free(p->out.runs);
    free(p->tmo.seq);
    free(p->in.data);
    if (p->in.fd >= 0)
        close(p->in.fd);
    if (p->cg_path)
        zmp__cgroup_release(ctx, p->cg_path, p->cg_fd);
    free(p);
}

bool zmp__proc_done(const struct zmp__proc *p)
{
    return (p->flags & ZMP__PROC_EXITED) && p->out.fd[0] == -1 &&
           p->out.fd[1] == -1 && p->in.fd < 0 && !p->eng.inflight;
}

/*
 * Signal the child.  Through the pidfd the signal can only reach this
 * child, even if it has died and its pid was given to another process.
 * Signalling a child that already exited is not an error.
 */
int zmp__proc_signal(struct zmp__proc *p, int sig)
{
    /* A SIGKILL takes the job's whole cgroup, escaped descendants too. */
    if (sig == SIGKILL && p->cg_fd >= 0)
        zmp__cgroup_kill(p->cg_fd);
    /* Reaped: its pid may belong to another process by now; or not
     * started yet (a start in progress in another thread). */
    if ((p->flags & ZMP__PROC_EXITED) || p->pid <= 0)
        return 0;
    return zmp__pidref_signal(p->pidfd, p->pid, p->pgroup, sig);
}

/* Kill and reap a child that no engine watches yet (a start that failed
 * half-way): nothing else will ever wait for it. */
void zmp__proc_reap_now(struct zmp__proc *p)
{
    siginfo_t si;
    int r;

    zmp__proc_signal(p, SIGKILL);
    zmp__reg_clear(p->reg);
    r = zmp__pidref_wait(p->pidfd, p->pid, &si, WEXITED, &p->ru);
    zmp__proc_exited(p, r == 0 ? zmp__exit_code_from_siginfo(&si) : -SIGKILL);
}

/*
 * Collect the child's exit if it has happened, without blocking; seen:
 * the engine has seen it exit, unreaped (a WNOWAIT wait).
 * Returns 1 when it has (the proc is marked exited), 0 when not yet.
 */
static int collect(struct zmp__proc *p, bool seen)
{
    /* Without a pidfd, zmp_signal_all() signals by pid: the registry must
     * let go of the child before it is reaped, so look first (WNOWAIT),
     * unless the engine has.  A pidfd never reaches a recycled pid,
     * reaped or not. */
    bool peek = p->pidfd < 0 && !seen;
    siginfo_t si;
    int r, status;

    if (p->flags & ZMP__PROC_EXITED)
        return 1;
    if (p->pidfd < 0 && seen)
        zmp__reg_clear(p->reg);
    r = zmp__pidref_wait(p->pidfd, p->pid, &si, WEXITED | WNOHANG | (peek ? WNOWAIT : 0),
                         &p->ru);
    if (r == 0 && si.si_pid == 0)
        return 0;
    if (r == 0 && peek) {
        zmp__reg_clear(p->reg);
        r = zmp__pidref_wait(p->pidfd, p->pid, &si, WEXITED | WNOHANG, &p->ru);
    }
    if (r == 0 && si.si_pid != 0) {
        zmp__proc_exited(p, zmp__exit_code_from_siginfo(&si));
        return 1;
    }
    /* Someone else reaped our child: a wait(-1) elsewhere in the program,
     * or the kernel, with SIGCHLD set to SIG_IGN.  The pidfd may still
     * know how it ended (6.15+); else its status is gone. */
    if (zmp__pidref_exit_status(p->pidfd, &status) == 0) {
        zmp__proc_exited(p, WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
        return 1;
    }
    p->error = r < 0 ? r : -ECHILD;
    zmp__proc_exited(p, -SIGKILL);
    return 1;
}

int zmp__proc_collect(struct zmp__proc *p)
{
    return collect(p, false);
}

int zmp__proc_collect_exited(struct zmp__proc *p)
{
    return collect(p, true);
}

int zmp__exit_code_from_siginfo(const siginfo_t *si)
{
    if (si->si_code == CLD_EXITED)
        return si->si_status & 0xff;
    return -si->si_status;
}

/*
 * What the pipes held when the child exited is its output, however slowly
 * we get to read it (a loaded machine): a read after the exit restarts the
 * drain grace, until as much as both pipes hold has come, and never past
 * DRAIN_EXTEND graces from the exit.  More than that is a descendant
 * writing, and the grace runs out.
 */
#define DRAIN_EXTEND 10
#define DRAIN_BYTES_MAX (2 * ZMP__PIPE_SIZE)
#define DRAIN_TURNS 2

static void drain_progress(struct zmp__proc *p, size_t n)
{
    int64_t now;

    if (!(p->flags & ZMP__PROC_EXITED) || !p->tmo.timer)
        return;
    p->drain.bytes += n;
    now = zmp__now_ns();
    if (p->drain.bytes <= DRAIN_BYTES_MAX && now < p->drain.end) {
        p->drain.turn = 0;
        zmp__timer_set(p, now + p->drain.ns < p->drain.end ? now + p->drain.ns
                                                           : p->drain.end);
    }
}

/* The child is reaped: its pid is gone, so its pidfd has no further use. */
void zmp__proc_exited(struct zmp__proc *p, int exit_code)
{
    zmp__reg_clear(p->reg);
    p->flags |= ZMP__PROC_EXITED;
    p->exit_code = exit_code;
    if (p->pidfd >= 0) {
        close(p->pidfd);
        p->pidfd = -1;
    }
    /* With a timeout, pipes a descendant keeps open are read for a short
     * grace only (as Go's WaitDelay): the run's wall time stays bounded. */
    if (p->tmo.seq_len &&
        (p->out.fd[0] != -1 || p->out.fd[1] != -1 || p->in.fd >= 0)) {
        int64_t now = zmp__now_ns();

        zmp__timer_set(p, now + p->drain.ns);
        /* drain.ns is at most INT64_MAX / 4 (zmp__ms_to_ns): saturate. */
        p->drain.end = now + (p->drain.ns > INT64_MAX / 4 / DRAIN_EXTEND
                                  ? INT64_MAX / 4 : DRAIN_EXTEND * p->drain.ns);
        p->tmo.step = p->tmo.seq_len + 1;
    }
    note_done(p);
}

/*
 * A timer of p expired: the next step of the timeout's signal sequence,
 * SIGKILL after the last, and once the child is dead and reaped, the end
 * of the drain grace.
 */
void zmp__proc_fire_timer(struct zmp__proc *p, int64_t now)
{
    zmp__timer_set(p, 0);
    if (p->flags & ZMP__PROC_EXITED) {
        /* The grace ran out, perhaps only because we did not run (a
         * loaded machine): what was ready then may still wait in the
         * engine, and a read it re-armed reaches the kernel only on its
         * next run.  Call the pipes held only after two more runs of the
         * engine and a millisecond with nothing read. */
        if (now < p->drain.end && p->drain.bytes <= DRAIN_BYTES_MAX &&
            (!p->drain.turn || p->ctx->turns - p->drain.turn < DRAIN_TURNS)) {
            if (!p->drain.turn)
                p->drain.turn = p->ctx->turns ? p->ctx->turns : 1;
            zmp__timer_set(p, now + 1000000);
            return;
        }
        zmp__proc_drop_pipes(p);
        return;
    }
    p->info |= ZMP_TIMED_OUT;
    if (p->tmo.step < p->tmo.seq_len) {
        zmp__proc_signal(p, p->tmo.seq[p->tmo.step].signal);
        zmp__timer_set(p, now + zmp__ms_to_ns(p->tmo.seq[p->tmo.step].ms));
        p->tmo.step++;
        return;
    }
    zmp__proc_signal(p, SIGKILL);
}

/* Stop reading the pipes a descendant holds open.  The descendant is not
 * signalled: its group leader is reaped by now, and a pgid without a
 * living leader may have been handed to an unrelated group. */
void zmp__proc_drop_pipes(struct zmp__proc *p)
{
    int i;

    /* In its own cgroup, the holders can be killed safely: they are the
     * job's own, whatever group or session they moved to. */
    if (p->cg_fd >= 0)
        zmp__cgroup_kill(p->cg_fd);
    for (i = 0; i < 2; i++)
        if (p->out.fd[i] != -1) {
            p->info |= ZMP_PIPES_HELD;
            p->ctx->engine->drop_pipe(p->ctx, p, i);
        }
    if (p->in.fd >= 0) {
        p->info |= ZMP_PIPES_HELD;
        p->ctx->engine->drop_input(p->ctx, p);
    }
}

/* Remember when the job finished: exited, and its pipes and stdin closed. */
static void note_done(struct zmp__proc *p)
{
    if ((p->flags & ZMP__PROC_EXITED) && p->out.fd[0] == -1 &&
        p->out.fd[1] == -1 && p->in.fd < 0 && !p->end_ns) {
        p->end_ns = zmp__now_ns();
        zmp__timer_set(p, 0);
        p->ctx->ndone++;
    }
}

/* Stop keeping output after an error (out of memory): the child is killed,
 * and the rest of what it wrote is read and dropped, so it never blocks on
 * a full pipe and is reaped as usual. */
static void fail_capture(struct zmp__proc *p, int r)
{
    if (!p->error)
        p->error = r;
    p->flags |= ZMP__PROC_DISCARD;
    zmp__proc_signal(p, SIGKILL);
}

/*
 * With on_output, every read of a stream lands at the start of its own
 * area (an io_uring read is in flight while other streams' complete, so it
 * cannot share), handed to the callback when it completes and reused for
 * the next read, which is only asked for after the callback returned.  The
 * area grows from READ_MIN to READ_MAX while reads fill more than half of
 * it: a job's memory is at most READ_MAX a stream, whatever it writes.
 */
static int output_area(struct zmp__proc *p, int stream, char **ret_ptr,
                       size_t *ret_len)
{
    struct zmp__buf *b = &p->out.buf[stream];
    size_t want = p->out.area[stream] ? p->out.area[stream] : READ_MIN;
    char *d;

    if (b->cap < want) {
        d = realloc(b->data, want);
        if (!d)
            return -ENOMEM;
        b->data = d;
        b->cap = want;
    }
    p->out.area[stream] = want;
    *ret_ptr = b->data;
    *ret_len = want;
    if (p->out.cap && want > p->out.cap - p->out.sent[stream])
        *ret_len = p->out.cap - p->out.sent[stream];
    return 0;
}

void zmp__proc_read_area(struct zmp__proc *p, int stream, char **ret_ptr,
                         size_t *ret_len)
{
    struct zmp__buf *b = &p->out.buf[stream];
    size_t want, room;
    int r;

    p->out.dropping[stream] = true;
    if (p->out.fn) {
        if (!(p->flags & ZMP__PROC_DISCARD) &&
            (!p->out.cap || p->out.sent[stream] < p->out.cap)) {
            r = output_area(p, stream, ret_ptr, ret_len);
            if (r == 0) {
                p->out.dropping[stream] = false;
                return;
            }
            fail_capture(p, r);
        }
    } else if (!(p->flags & ZMP__PROC_DISCARD) &&
               (!p->out.cap || b->len < p->out.cap)) {
        want = b->len < READ_MIN ? READ_MIN : b->len > READ_MAX ? READ_MAX : b->len;
        if (p->out.cap && want > p->out.cap - b->len)
            want = p->out.cap - b->len;
        r = zmp__buf_reserve(b, want);
        if (r == 0) {
            room = b->cap - b->len - 1;
            *ret_ptr = b->data + b->len;
            *ret_len = p->out.cap && room > p->out.cap - b->len
                           ? p->out.cap - b->len
                           : room;
            p->out.dropping[stream] = false;
            return;
        }
        fail_capture(p, r);
    }
    *ret_ptr = p->ctx->scratch;
    *ret_len = ZMP__SCRATCH_SIZE;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Fault in the pages of a large new buffer in one call before it is
 * filled: a third less time than one fault per page as memcpy() touches
 * them (256 MiB: 0.14 s against 0.22 s here).  Best effort: a kernel
 * before 5.14 says EINVAL and the pages fault in as they are written. */
static void populate(char *p, size_t n)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t b = ((uintptr_t)p + n) & ~(page - 1);

    if (n >= ((size_t)1 << 20) && b > a)
        (void)madvise((void *)a, b - a, MADV_POPULATE_WRITE);
}

#define RUN_STREAM (1u << 31)
#define RUN_MAX    (RUN_STREAM - 1)

/* Record n more bytes of stream in arrival order, extending the last run
 * when it is of the same stream: one entry per switch between streams. */
static int note_run(struct zmp__proc *p, int stream, size_t n)
{
    uint32_t tag = stream == ZMP__ERR ? RUN_STREAM : 0, *last;
    size_t k;

    while (n > 0) {
        last = p->out.nruns ? &p->out.runs[p->out.nruns - 1] : NULL;
        if (last && (*last & RUN_STREAM) == tag && (*last & RUN_MAX) < RUN_MAX) {
            k = RUN_MAX - (*last & RUN_MAX);
            k = k < n ? k : n;
            *last += (uint32_t)k;
            n -= k;
            continue;
        }
        if (p->out.nruns == p->out.runs_cap) {
            size_t cap = p->out.runs_cap ? p->out.runs_cap * 2 : 16;
            uint32_t *a = realloc(p->out.runs, cap * sizeof *a);

            if (!a)
                return -ENOMEM;
            p->out.runs = a;
            p->out.runs_cap = cap;
        }
        p->out.runs[p->out.nruns++] = tag;
    }
    return 0;
}

/*
 * Hand the captured output over to res.  When only one stream has bytes,
 * `output` is that stream's buffer itself (zmp_result_free knows): a
 * child writing gigabytes to stdout alone costs no copy.  Otherwise the
 * runs replay the arrival order into a new buffer, unless ZMP_NO_MERGED
 * said `output` is not wanted (then it is NULL, whatever the streams).
 */
int zmp__proc_take_result(struct zmp__proc *p, zmp_result *res)
{
    size_t off[2] = { 0, 0 }, pos = 0, i, n;
    int s;

    res->out = zmp__buf_take(&p->out.buf[ZMP__OUT], &res->out_len);
    res->err = zmp__buf_take(&p->out.buf[ZMP__ERR], &res->err_len);
    if (!res->out || !res->err)
        goto fail;
    if (p->flags & ZMP__PROC_NO_MERGED)
        return 0;
    if (res->err_len == 0 || res->out_len == 0) {
        res->output = res->err_len ? res->err : res->out;
        res->output_len = res->out_len + res->err_len;
        return 0;
    }
    res->output_len = res->out_len + res->err_len;
    res->output = malloc(res->output_len + 1);
    if (!res->output)
        goto fail;
    populate(res->output, res->output_len);
    for (i = 0; i < p->out.nruns; i++) {
        s = p->out.runs[i] & RUN_STREAM ? ZMP__ERR : ZMP__OUT;
        n = p->out.runs[i] & RUN_MAX;
        memcpy(res->output + pos, (s == ZMP__ERR ? res->err : res->out) + off[s], n);
        off[s] += n;
        pos += n;
    }
    assert(pos == res->output_len);
    res->output[pos] = '\0';
    return 0;
fail:
    zmp_result_free(res);
    return -ENOMEM;
}

/*
 * Hand n bytes just read to on_output.  It runs with the context locked
 * (the engine's thread, in the middle of its turn): letting go of the lock
 * there would let other threads change what the engine is walking.  A
 * nonzero return ends the job as an out-of-memory capture does.
 */
static void deliver(struct zmp__proc *p, int stream, size_t n)
{
    int r;

    p->out.sent[stream] += n;
    if (n > p->out.area[stream] / 2 && p->out.area[stream] < READ_MAX)
        p->out.area[stream] *= 2;
    r = p->out.fn(p->out.fn_arg, stream == ZMP__OUT ? 1 : 2, p->out.buf[stream].data, n);
    if (r != 0)
        fail_capture(p, r < 0 ? r : -EIO);
}

/*
 * n bytes were read into the area last given for this stream; 0 is end of
 * file and a negative value a read error, after which the stream is closed.
 */
void zmp__proc_read_done(struct zmp__proc *p, int stream, ssize_t n)
{
    struct zmp__buf *b = &p->out.buf[stream];
    int r;

    if (n > 0) {
        drain_progress(p, (size_t)n);
        if (p->out.dropping[stream]) {
            if (p->out.cap && !(p->flags & ZMP__PROC_DISCARD))
                p->info |= ZMP_TRUNCATED;
            return;
        }
        if (p->out.fn) {
            /* A read of the other stream in flight when the callback said
             * stop lands here after it: not passed on. */
            if (!(p->flags & ZMP__PROC_DISCARD))
                deliver(p, stream, (size_t)n);
            return;
        }
        b->len += (size_t)n;
        if (p->flags & ZMP__PROC_NO_MERGED)
            return;
        r = note_run(p, stream, (size_t)n);
        if (r < 0)
            fail_capture(p, r);
        return;
    }
    /* A cancelled read is the drain grace ending, not an error. */
    if (n < 0 && n != -ECANCELED && !p->error)
        p->error = (int)n;
    p->ctx->engine->close_pipe(p->ctx, p, stream);
    p->out.fd[stream] = -1;
    note_done(p);
}

/*
 * n bytes of the input were sent.  n <= 0 ends the input: all of it went
 * (0), the child closed its stdin without reading everything (-EPIPE,
 * -ECONNRESET: not an error, as with a shell pipeline), or the engine
 * dropped it (-ECANCELED).
 */
void zmp__proc_input_done(struct zmp__proc *p, ssize_t n)
{
    if (n > 0) {
        p->in.off += (size_t)n;
        if (p->in.off < p->in.len)
            return;
    } else if (n < 0 && n != -EPIPE && n != -ECONNRESET && n != -ECANCELED &&
               !p->error) {
        p->error = (int)n;
    }
    close(p->in.fd);
    p->in.fd = -1;
    free(p->in.data);
    p->in.data = NULL;
    note_done(p);
}

/* Hand over what a finished job left: its result (the buffers move to
 * res) and its info.  Returns the job's error, or 0. */
int zmp__proc_take(struct zmp__proc *p, zmp_result *res, zmp_info *info)
{
    int r = p->error;

    /* Uncaptured, or handed to on_output: the exit code alone, the
     * buffers stay NULL. */
    if (r == 0 && res && (p->flags & ZMP__PROC_CAPTURE) && !p->out.fn)
        r = zmp__proc_take_result(p, res);
    if (r == 0 && res) {
        res->exit_code = p->exit_code;
        res->ok = p->exit_code == 0;
    }
    if (info) {
        info->flags = p->info;
        info->pid = p->pid;
        info->started = p->started;
        info->seconds = (double)((p->end_ns ? p->end_ns : zmp__now_ns()) -
                                 p->start_ns) / 1e9;
        info->user_cpu = (double)p->ru.ru_utime.tv_sec + (double)p->ru.ru_utime.tv_usec / 1e6;
        info->system_cpu = (double)p->ru.ru_stime.tv_sec + (double)p->ru.ru_stime.tv_usec / 1e6;
        info->max_rss_kb = p->ru.ru_maxrss;
    }
    return r;
}

/* zmp__proc_take(), then free the record. */
int zmp__proc_finish(struct zmp__proc *p, zmp_result *res, zmp_info *info)
{
    int r = zmp__proc_take(p, res, info);

    zmp__proc_free(p);
    return r;
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
