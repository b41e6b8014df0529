/* SPDX-License-Identifier: MIT */
/*
 * Private declarations shared by the library's files: the context, the
 * child record, the engine interface and the zmp__ helpers.
 */
#ifndef ZMP_INTERNAL_H
#define ZMP_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "zmp.h"

/* The size asked for the pipes of captured streams: 256 KiB keeps big
 * writers moving without the cost 1 MiB pipes put on small ones, and stays
 * within an unprivileged user's pipe budget. */
#define ZMP__PIPE_SIZE (256 * 1024)

/* A stream held by the engine outside the fd table: open, but no fd. */
#define ZMP__FD_FIXED (-2)

#define ZMP__OUT 0
#define ZMP__ERR 1

/* Engine run deadlines: absolute CLOCK_MONOTONIC nanoseconds, or these. */
#define ZMP__FOREVER ((int64_t)-1)
#define ZMP__NOWAIT  ((int64_t)0)

/* Kernel features that can be switched off by hand ($ZMP_DISABLE), to test
 * the degraded paths on a kernel that has everything. */
#define ZMP__F_WAITID      (1u << 0)  /* IORING_OP_WAITID (6.7) */
#define ZMP__F_CLONE3      (1u << 1)  /* clone3 (5.3) */
#define ZMP__F_CLOSE_RANGE (1u << 2)  /* close_range (5.9, CLOEXEC 5.11) */
#define ZMP__F_PIDFD       (1u << 3)  /* CLONE_PIDFD (5.2), pidfd_open (5.3) */
#define ZMP__F_FIXED       (1u << 4)  /* io_uring sparse fixed files (5.19) */
#define ZMP__F_CLEAR_SIGHAND (1u << 5) /* clone3's CLONE_CLEAR_SIGHAND (5.5) */

/* A growable byte buffer, always with room for a trailing NUL. */
struct zmp__buf {
    char  *data;
    size_t len;
    size_t cap;
};

/* Proc flags. */
#define ZMP__PROC_CAPTURE (1u << 0)  /* stdout and stderr go to our pipes */
#define ZMP__PROC_EXITED  (1u << 1)  /* reaped; exit_code is valid */
#define ZMP__PROC_DISCARD (1u << 2)  /* read and drop further output */
#define ZMP__PROC_NO_MERGED (1u << 3) /* ZMP_NO_MERGED: no runs, no `output` */

struct zmp__ctx;

/* One child: its identity and state first, then one group per concern,
 * each saying which files own it. */
struct zmp__proc {
    struct zmp__ctx *ctx;
    struct zmp__proc *prev, *next;  /* the context's list of children */
    pid_t pid;
    int pidfd;             /* -1 without pidfd support, and once reaped */
    unsigned flags;
    int handle;            /* > 0 while the handle table holds it */
    int reg;               /* its entry in the registry (registry.c) */
    bool attached;         /* on ctx->procs (once started) */
    unsigned users;        /* calls waiting on it by its handle */
    bool pgroup;           /* leads its own process group */
    char *cg_path;         /* its own cgroup, or NULL */
    int cg_fd;

    /* What is reported: the result and zmp_info (zmp__proc_take). */
    int exit_code;         /* 0..255 or -signal, once EXITED */
    int error;             /* first error met while capturing, or 0 */
    unsigned info;         /* ZMP_TIMED_OUT, ZMP_TRUNCATED, ZMP_PIPES_HELD */
    int64_t start_ns;
    double started;        /* CLOCK_REALTIME at start, for reports */
    int64_t end_ns;        /* when it became done */
    struct rusage ru;      /* from the wait that reaped it, else zeroes */

    /* Captured stdout and stderr, indexed by ZMP__OUT and ZMP__ERR
     * (proc.c; the engines read and close fd). */
    struct {
        int fd[2];             /* read ends of stdout and stderr, -1 once
                                  closed, ZMP__FD_FIXED while the engine
                                  holds it in its own table (an io_uring
                                  fixed file) */
        struct zmp__buf buf[2];
        size_t cap;            /* output cap per stream, or 0 */
        /* zmp_options.on_output: buf[] is then only the area each read
         * lands in, handed to fn as it completes (proc.c). */
        zmp_output_fn fn;
        void *fn_arg;
        size_t sent[2];        /* bytes handed to fn, for the cap */
        size_t area[2];        /* the read area's size, grown with reads */
        bool dropping[2];      /* the read in flight goes to the scratch area */
        bool cancelled[2];     /* drop_pipe asked: no further read */
        /* The order of arrival, as runs of one stream: bit 31 is the
         * stream, the rest the run's length.  `output` is built from it
         * at the end, and only when both streams have bytes. */
        uint32_t *runs;
        size_t nruns, runs_cap;
    } out;

    /* What is fed to its stdin (launch.c fills it, the engines send it,
     * proc.c ends it). */
    struct {
        int fd;                /* our end of the stdin socket, -1 once closed */
        char *data;            /* what to feed, a copy */
        size_t len, off;
        bool cancelled;        /* drop_input asked: no further send */
    } in;

    /* The timeout and the timer that steps it and ends the drain grace
     * (launch.c sets it up, proc.c fires it, timer.c keeps the heap). */
    struct {
        int64_t at;            /* when the timeout fires, or 0 */
        zmp_term_step *seq;    /* the timeout's signals, when there is one */
        size_t seq_len, step;
        int64_t timer;         /* next timeout step (monotonic ns), or 0;
                                  set through zmp__timer_set() only */
        size_t heap_idx;       /* its place in ctx->timers while armed */
        bool room;             /* room is reserved in the timer heap */
    } tmo;

    /* The drain grace: reading on after the exit, while a descendant
     * holds the pipes (proc.c). */
    struct {
        int64_t ns;            /* grace for pipes held open after the exit */
        int64_t end;           /* the grace is never extended past this */
        size_t bytes;          /* bytes read since the exit */
        uint64_t turn;         /* the engine's turn when the grace first ran
                                  out (then two more turns), or 0 */
    } drain;

    /* The engine's own bookkeeping (engine-uring.c, engine-poll.c). */
    struct {
        unsigned inflight;     /* engine requests still pointing at this proc */
        int slot[4];           /* engine bookkeeping, one per watched object */
        siginfo_t si;          /* filled in by an io_uring WAITID request */
    } eng;
};

/*
 * The engine interface.  An engine watches children and pipes and reports
 * through zmp__proc_exited(), zmp__proc_read_area() and
 * zmp__proc_read_done(); it knows nothing of handles, results or
 * interpreters.
 */
enum zmp__fork_phase { ZMP__FORK_BEFORE, ZMP__FORK_PARENT, ZMP__FORK_CHILD };

struct zmp__engine {
    const char *name;
    /* 0, or -errno when this engine cannot run here (the next is tried). */
    int  (*init)(struct zmp__ctx *ctx);
    /* Drop every request still pending and release the engine's state. */
    void (*fini)(struct zmp__ctx *ctx);
    /* In the child of a fork: release this process's copy of the state
     * without touching what the parent still uses (no cancel, no reap). */
    void (*forget)(struct zmp__ctx *ctx);
    /* Report the exit of p, which has p->pid and maybe p->pidfd. */
    int  (*watch_exit)(struct zmp__ctx *ctx, struct zmp__proc *p);
    /* Read p->out.fd[stream] until end of file. */
    int  (*watch_pipe)(struct zmp__ctx *ctx, struct zmp__proc *p, int stream);
    /* Close a stream at its end (regular fd or the engine's own). */
    void (*close_pipe)(struct zmp__ctx *ctx, struct zmp__proc *p, int stream);
    /* Stop reading p->out.fd[stream]: the engine ends with
     * zmp__proc_read_done(p, stream, -ECANCELED), now or in a later run. */
    void (*drop_pipe)(struct zmp__ctx *ctx, struct zmp__proc *p, int stream);
    /* Watch ctx->watches[w].fd (not a child's) until it is readable or
     * hung up, once: then set its ready (and error, when the fd cannot be
     * watched).  drop_fd forgets it; a late report is harmless. */
    int  (*watch_fd)(struct zmp__ctx *ctx, unsigned w);
    void (*drop_fd)(struct zmp__ctx *ctx, unsigned w);
    /* Send p->in.data to p->in.fd; ends with zmp__proc_input_done(p, n <= 0). */
    int  (*watch_input)(struct zmp__ctx *ctx, struct zmp__proc *p);
    /* Stop sending: the engine ends with zmp__proc_input_done(p, -ECANCELED). */
    void (*drop_input)(struct zmp__ctx *ctx, struct zmp__proc *p);
    /*
     * Handle the events that are ready.  When none is, block until one is
     * or until deadline (ZMP__FOREVER, ZMP__NOWAIT, or absolute monotonic
     * ns), with ctx->lock released and ctx->in_kernel set while blocked.
     * Returns the number of events handled, or -errno; -EINTR is not an
     * error (the caller loops).  Only the leader runs it (loop.c).
     */
    int  (*run)(struct zmp__ctx *ctx, int64_t deadline);
    /* The thread blocked in run() must see what changed: new requests,
     * a timer now due sooner than it waits for; with force, make it
     * return even when nothing the engine watches changed. */
    void (*wake)(struct zmp__ctx *ctx, bool force);
    /* Around a fork() (ctx.c's atfork handlers, with the shared context
     * locked): take the engine's process-wide locks before, let go of
     * them after, in the parent and in the child, so that the child never
     * inherits one held by a thread that did not come along.  NULL when
     * the engine has none.  Those locks must be leaves: no other lock is
     * taken while one is held. */
    void (*fork)(enum zmp__fork_phase phase);
};

extern const struct zmp__engine zmp__engine_uring;
extern const struct zmp__engine zmp__engine_poll;

/* Handles: numbers in sequence, mapped to children by a hash table. */
struct zmp__table {
    struct zmp__slot { int handle; struct zmp__proc *p; } *slots;  /* 0: empty */
    unsigned cap;     /* 1 << bits, or 0 */
    unsigned bits;
    unsigned used;
    int next;         /* the next handle to hand out */
};

/* A job source's descriptor, watched for one stream. */
struct zmp__watch {
    int fd;                   /* -1: the slot is free */
    bool armed;               /* the engine watches it */
    bool ready;               /* it became readable or hung up ... */
    int error;                /* ... or cannot be watched: -errno */
    uint32_t gen;             /* of the arming: late reports are ignored */
};

/*
 * The context.  Everything in it, and in the procs on its list, is
 * guarded by `lock`; the engine runs with it held, except while blocked
 * in the kernel (loop.c).
 */
struct zmp__ctx {
    pthread_mutex_t lock;
    pthread_cond_t cond;      /* the leader's turn ended, or states moved */
    bool leading;             /* a thread drives the engine (loop.c) */
    bool in_kernel;           /* ... and is blocked in the kernel */
    int64_t leader_wake;      /* the deadline it blocks until */
    uint64_t turns;           /* engine runs so far (loop.c) */
    unsigned calls;           /* public calls inside now, all threads */
    bool stopping;            /* zmp_deinit() waits for the calls to leave */
    const struct zmp__engine *engine;  /* NULL until started */
    bool pid_waits;           /* the engine can watch an exit by pid
                                 (io_uring's WAITID): a child started
                                 while ZMP__FEW_CHILDREN others live
                                 gets no pidfd (launch.c) */
    const char *forced;       /* engine name asked for, or NULL for auto */
    void *engine_state;
    int devnull;              /* O_RDONLY /dev/null for captured stdin */
    struct zmp__proc *procs;  /* every child not yet freed */
    struct zmp__table table;
    uint64_t ndone;           /* children that became done, ever */
    struct zmp__proc **timers; /* min-heap of the children's armed timers */
    size_t ntimers, timers_cap;
    size_t ntimed;            /* children with a timeout: room reserved */
    struct zmp__watch *watches; /* job sources' fds, one slot per stream */
    size_t nwatches;
    bool deinit_pending;      /* zmp_deinit() from a callback: tear down
                                 when the last call leaves */
    unsigned fork_gen;        /* the fork count this context belongs to */
    char **cg;                /* job cgroups still to remove */
    size_t ncg, cg_cap;
    char *scratch;            /* where discarded output is read */
    char *interp;             /* set by zmp_set_interpreter, or NULL */
    char *resolved_name;      /* cache of the last PATH search: */
    char *resolved_pathenv;
    char *resolved_path;
    unsigned fixed_max;       /* the engine's fixed-file table at most, or
                                 0 for its default (a worker's: workers.c) */
    /* A worker's (workers.c), set before its thread starts: */
    bool lazy_submit;         /* its thread runs the engine again soon:
                                 requests may wait for that run */
};

#define ZMP__SCRATCH_SIZE (64 * 1024)

/* Children alive (in the whole process) up to which each new one holds
 * regular descriptors in the parent (its pipes' read ends, a pidfd).
 * From there on, where the engine can do without them (io_uring: fixed
 * files, WAITID by pid), it holds none: descriptors per child would make
 * every spawn slower, as clone copies the parent's descriptor table and
 * exec walks it, O(open descriptors) each. */
#define ZMP__FEW_CHILDREN 128

/* Starts in a row by a stream's thread or a worker before it handles what
 * is ready (src/workers.c, start_jobs). */
#define ZMP__BURST 16

/* features.c */
unsigned zmp__disabled(void);
int64_t zmp__now_ns(void);
int64_t zmp__ms_to_ns(unsigned long ms);
bool zmp__raise_nofile(void);
bool zmp__nofile_for_child(struct rlimit *ret);
void zmp__nofile_fork(bool before);

/* buf.c */
int  zmp__buf_reserve(struct zmp__buf *b, size_t room);
int  zmp__buf_append(struct zmp__buf *b, const void *data, size_t n);
char *zmp__buf_take(struct zmp__buf *b, size_t *ret_len);
void zmp__buf_free(struct zmp__buf *b);

/* table.c */
int  zmp__table_add(struct zmp__table *t, struct zmp__proc *p);
struct zmp__proc *zmp__table_get(const struct zmp__table *t, int handle);
void zmp__table_del(struct zmp__table *t, int handle);
void zmp__table_free(struct zmp__table *t);

/* spawn.c: start a child, vfork-style.  Every stdio entry is a descriptor
 * to install as 0, 1, 2, or -1 to inherit the parent's. */
struct zmp__spawn_args {
    const char *path;
    char *const *argv;
    char *const *envp;
    const char *cwd;       /* NULL: stay where the parent is */
    bool new_pgroup;       /* setpgid(0, 0) in the child */
    bool die_with_parent;  /* PR_SET_PDEATHSIG(SIGKILL) in the child */
    int cgroup_fd;         /* start in this cgroup v2 directory, or -1 */
    bool no_pidfd;         /* make no pidfd: the engine waits by pid */
    int stdio[3];
};
int zmp__spawn(const struct zmp__spawn_args *a, pid_t *ret_pid, int *ret_pidfd);
bool zmp__have_pidfd(void);

/* pidref.c: a child by pidfd, or by pid without one; async-signal-safe. */
int  zmp__pidref_signal(int pidfd, pid_t pid, bool group, int sig);
int  zmp__pidref_wait(int pidfd, pid_t pid, siginfo_t *si, int options, struct rusage *ru);
int  zmp__pidref_exit_status(int pidfd, int *ret_status);

/* registry.c: the live children, as zmp_signal_all() reads them. */
int  zmp__reg_reserve(void);
void zmp__reg_set(int i, pid_t pid, int pidfd, int cgfd, bool group);
void zmp__reg_clear(int i);
void zmp__reg_release(int i);
unsigned zmp__reg_live(void);
void zmp__reg_forget(void);
void zmp__reg_fork(bool before);

/* cgroup.c */
int  zmp__cgroup_create(const char *parent, char **ret_path, int *ret_fd);
void zmp__cgroup_kill(int dirfd);
void zmp__cgroup_release(struct zmp__ctx *ctx, char *path, int dirfd);
void zmp__cgroup_sweep(struct zmp__ctx *ctx, bool wait);

/* launch.c */
int zmp__launch(struct zmp__ctx *ctx, const zmp_options *o, struct zmp__proc **ret);

/* A start that failed for want of a resource that running jobs give back
 * as they end (descriptors, processes, memory): a stream waits for one to
 * end and tries again, rather than failing the job. */
static inline bool zmp__launch_transient(int r)
{
    return r == -EMFILE || r == -ENFILE || r == -EAGAIN || r == -ENOMEM;
}

/* proc.c: the child record, and what engines call back. */
int  zmp__proc_new(struct zmp__ctx *ctx, bool capture, struct zmp__proc **ret);
void zmp__proc_attach(struct zmp__proc *p);
void zmp__proc_free(struct zmp__proc *p);
bool zmp__proc_done(const struct zmp__proc *p);
int  zmp__proc_signal(struct zmp__proc *p, int sig);
void zmp__proc_reap_now(struct zmp__proc *p);
void zmp__proc_exited(struct zmp__proc *p, int exit_code);
int  zmp__proc_collect(struct zmp__proc *p);
/* The same once the engine has seen the exit (the child is unreaped). */
int  zmp__proc_collect_exited(struct zmp__proc *p);
int  zmp__exit_code_from_siginfo(const siginfo_t *si);
void zmp__proc_read_area(struct zmp__proc *p, int stream, char **ret_ptr,
                         size_t *ret_len);
void zmp__proc_read_done(struct zmp__proc *p, int stream, ssize_t n);
void zmp__proc_input_done(struct zmp__proc *p, ssize_t n);
int  zmp__proc_take_result(struct zmp__proc *p, zmp_result *res);
int  zmp__proc_take(struct zmp__proc *p, zmp_result *res, zmp_info *info);
int  zmp__proc_finish(struct zmp__proc *p, zmp_result *res, zmp_info *info);
void zmp__proc_fire_timer(struct zmp__proc *p, int64_t now);
void zmp__proc_drop_pipes(struct zmp__proc *p);

/* ctx.c: engine choice, start and stop, fork.  Called with ctx->lock. */
int  zmp__ctx_start(struct zmp__ctx *ctx);
void zmp__ctx_stop(struct zmp__ctx *ctx);
void zmp__ctx_check_fork(struct zmp__ctx *ctx);
void zmp__ctx_on_fork(void (*hook)(enum zmp__fork_phase phase));
const char *zmp__engine_name(const char *name, int *ret_err);
void zmp__ctx_forget(struct zmp__ctx *ctx);
int  zmp__watch_new(struct zmp__ctx *ctx, int fd);
void zmp__watch_free(struct zmp__ctx *ctx, unsigned w);

/* loop.c: waiting, one leader at a time.  Called with ctx->lock. */
int  zmp__ctx_run_until(struct zmp__ctx *ctx, bool (*cond)(const void *arg),
                        const void *arg, int64_t deadline);
int  zmp__ctx_run_nowait(struct zmp__ctx *ctx);
bool zmp__ctx_run_ready(struct zmp__ctx *ctx);
void zmp__ctx_kick(struct zmp__ctx *ctx);
void zmp__ctx_flush(struct zmp__ctx *ctx);
bool zmp__job_done(const void *proc);
bool zmp__proc_exited_cond(const void *proc);
bool zmp__proc_done_cond(const void *proc);
void zmp__proc_abandon(struct zmp__proc *p);

static inline void zmp__lock(struct zmp__ctx *ctx)
{
    pthread_mutex_lock(&ctx->lock);
}

static inline void zmp__unlock(struct zmp__ctx *ctx)
{
    pthread_mutex_unlock(&ctx->lock);
}

/* timer.c: the children's timers, a heap. */
void zmp__timer_init(struct zmp__proc *p);
int  zmp__timer_reserve(struct zmp__ctx *ctx);
void zmp__timer_unreserve(struct zmp__ctx *ctx);
void zmp__timer_set(struct zmp__proc *p, int64_t when);
int64_t zmp__ctx_fire_timers(struct zmp__ctx *ctx, int64_t now);

/* workers.c: threads that run a stream's jobs on every CPU, each with an
 * engine of its own. */
struct zmp__workers;
int  zmp__workers_new(struct zmp__ctx *ctx, unsigned parallel, struct zmp__workers **ret);
int  zmp__workers_push(struct zmp__workers *w, const zmp_options *job, size_t index);
void zmp__workers_wake(struct zmp__workers *w);
bool zmp__workers_pop(struct zmp__workers *w, size_t *ret_index, int *ret_err,
                      zmp_result *ret_res, zmp_info *ret_info, bool *ret_has_info,
                      bool *ret_held);
void zmp__workers_unhold(struct zmp__workers *w);
size_t zmp__workers_busy(struct zmp__workers *w);
unsigned zmp__workers_ahead(const struct zmp__workers *w);
bool zmp__workers_ready(const struct zmp__workers *w);
int  zmp__workers_error(const struct zmp__workers *w);
void zmp__workers_idle(struct zmp__workers *w, bool idle);
void zmp__workers_stop(struct zmp__workers *w, bool kill);
bool zmp__workers_unqueue(struct zmp__workers *w, size_t *ret_index);
void zmp__workers_free(struct zmp__workers *w);

/* batch.c */
int zmp__stream(struct zmp__ctx *ctx, unsigned parallel, zmp_next_fn next,
                zmp_progress_fn done, void *arg);
int zmp__batch(struct zmp__ctx *ctx, const zmp_options *jobs, size_t n,
               unsigned parallel, zmp_result *results, zmp_info *infos,
               int *errors, zmp_progress_fn progress, void *arg);

/* own.c: each thread's own context for single blocking runs.  _get
 * returns it locked and started (main's lock held), or NULL when it
 * cannot start: the run then goes on main. */
struct zmp__ctx *zmp__own_get(struct zmp__ctx *main);
void zmp__own_started(struct zmp__proc *p);
void zmp__own_kill_all(void);
void zmp__own_stop_all(void);

/* interp.c */
const char *zmp__interp_name(const struct zmp__ctx *ctx);
int zmp__resolve(struct zmp__ctx *ctx, const char *name, const char **ret_path);

/* Last: in a fault-injection build it redirects the fallible calls. */
#include "fault.h"

#endif
