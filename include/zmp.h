/* SPDX-License-Identifier: MIT */
/*
 * zmp: a process runner for Linux, the engine behind ZPy's multiprocessing
 * module.  This is the whole public API.
 *
 * Conventions: every int-returning function returns a value >= 0 on success
 * and a negative errno value on failure; errno itself is never the channel.
 * Strings passed in are copied or only read during the call.
 *
 * Threads: every function is safe from any thread at any time, with no
 * lock of the caller's, and a blocking call blocks only its caller.  Any
 * thread may use any handle (start in one, wait, poll, kill or collect in
 * another); a kill ends another thread's wait on that handle at once.
 * zmp_run_opts() (zmp_run, zmp_run_code) runs on an engine of the calling
 * thread's own, so threads running at once never wait for one another.
 * zmp_deinit() with other calls inside kills every child and waits for
 * those calls to return.  zmp_signal_all is async-signal-safe too.  Other
 * threads are not disturbed by a spawn (see zmp(3), "Thread safety").
 *
 * fork(): the child of a fork forgets what it inherited (the parent's
 * children, pipes and ring) at its first call, and starts afresh.
 * Callbacks of a batch or stream may run single children and the engine;
 * a nested batch or stream is -EBUSY, zmp_deinit() is deferred (zmp(3)).
 * A job's on_output callback is different: it runs with the library's
 * lock held and must not call the library (zmp_options).
 */
#ifndef ZMP_H
#define ZMP_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define ZMP_EXTERN __attribute__((visibility("default")))
#else
#define ZMP_EXTERN
#endif

/*
 * The result of a captured run (zmp_run, zmp_run_code).
 *
 * ok         true when exit_code == 0.
 * exit_code  0..255 for a normal exit, -N when the child was killed by
 *            signal N.
 * out, err   everything the child wrote to stdout and stderr, NUL-terminated
 *            (the NUL is not counted in the length; the data may itself
 *            contain NUL bytes).
 * output     stdout and stderr together, as runs of each stream in the
 *            order zmp read them from their two pipes.  That is not
 *            always the order the child wrote them: whatever sat in both
 *            pipes when zmp got to read comes stdout first.  For the exact
 *            order, run with ZMP_MERGE_STDERR (zmp_run_opts): both streams
 *            then share one pipe, out holds everything and err is empty.
 *
 * Release the buffers with zmp_result_free(), never with free(): when only
 * one stream has bytes, output is that stream's buffer itself (no copy).
 * After a failed call (a negative return) the result is zeroed and holds
 * nothing to free.
 */
typedef struct zmp_result {
    bool   ok;
    int    exit_code;
    char  *out;    size_t out_len;
    char  *err;    size_t err_len;
    char  *output; size_t output_len;
} zmp_result;

/*
 * Run INTERPRETER SCRIPT ARGS... and wait for it, capturing stdout and
 * stderr completely.  args is a NULL-terminated array, or NULL for none.
 * The child's stdin is /dev/null; it gets the caller's environment and
 * working directory, an empty signal mask, and no descriptor but 0, 1 and
 * 2.  Caught signals, SIGPIPE, SIGXFSZ and SIGCHLD are at their default in
 * it; other signals the caller ignores stay ignored, as exec leaves them.
 *
 * Returns 0 when the child ran (whatever its exit status: a failing script
 * is res->ok == false, not an error of the call), or:
 *   -EINVAL   script or res is NULL, or script is empty
 *   -ENOENT   the interpreter was not found (not in PATH, or no such file)
 *   -EACCES   the interpreter is not executable
 *   -ENOEXEC, -ELOOP, -ENAMETOOLONG, -E2BIG ...   as reported by execve()
 *             in the child
 *   -EAGAIN   no more processes (RLIMIT_NPROC, pid_max)
 *   -EMFILE, -ENFILE   no descriptor left for the pipes
 *   -ENOMEM   out of memory (the child is killed and reaped)
 */
ZMP_EXTERN int zmp_run(const char *script, const char *const *args,
                       zmp_result *res);

/*
 * Like zmp_run(), but runs INTERPRETER -c CODE ARGS...
 */
ZMP_EXTERN int zmp_run_code(const char *code, const char *const *args,
                            zmp_result *res);

/*
 * Free the buffers of a result and zero it.  NULL and an already freed or
 * zeroed result are accepted.
 */
ZMP_EXTERN void zmp_result_free(zmp_result *res);

/*
 * Start INTERPRETER SCRIPT ARGS... in the background with stdin, stdout and
 * stderr inherited, and return at once.
 *
 * Returns a handle > 0 for zmp_wait(), zmp_poll() and zmp_kill(), or the
 * errors of zmp_run().  Handles come in sequence (1, 2, 3... to INT_MAX,
 * then from 1 again, skipping those held), across zmp_deinit() too: a
 * removed handle stays invalid (-ECHILD) until about two billion more
 * children have started.
 */
ZMP_EXTERN int zmp_spawn(const char *script, const char *const *args);

/*
 * Block until the child of handle exits, store its exit code (as in
 * zmp_result.exit_code) in *exit_code when exit_code is not NULL, and remove
 * the handle.  Signals do not interrupt the wait.
 *
 * Returns 0, or -ECHILD for an unknown or already removed handle, and also
 * when something else in the program reaped the child first (a wait(-1),
 * or SIGCHLD set to SIG_IGN) and the kernel kept no exit code for it (its
 * pidfd keeps one from Linux 6.15); the handle is removed then too.  For a zmp_start() job, a capture error (-ENOMEM) is
 * returned and the handle removed as well.  Any other negative errno means
 * the engine failed; the handle is kept.
 */
ZMP_EXTERN int zmp_wait(int handle, int *exit_code);

/*
 * Check, without blocking, whether the child of handle has exited.
 * Returns 1 and stores the exit code when it has, 0 while it runs, or
 * -ECHILD for an unknown handle or a child reaped by someone else (see
 * zmp_wait), or another negative errno if the engine failed.  It does not remove the handle: a later
 * zmp_wait() returns the same code and removes it.  On the io_uring engine
 * a poll makes no system call unless a request is waiting to be submitted.
 */
ZMP_EXTERN int zmp_poll(int handle, int *exit_code);

/*
 * Kill the child of handle with SIGKILL (through its pidfd, so a recycled
 * pid can never be hit; kernels before 5.3 have no pidfd and get kill(2) on
 * a pid that zmp has not reaped yet), reap it and remove the handle.  A
 * child that had already exited is only reaped and removed.
 * Returns 0, -ECHILD for an unknown handle, or another negative errno if
 * the signal could not be sent or the engine failed (the handle is kept).
 */
ZMP_EXTERN int zmp_kill(int handle);

/*
 * The number of CPUs this process may run on (its affinity mask), which
 * can be fewer than the machine has.  Always >= 1.
 */
ZMP_EXTERN int zmp_cpu_count(void);

/*
 * Sleep ms milliseconds on the engine's timer.  Signals do not cut the
 * sleep short.  Children that exit meanwhile are reaped, and their exit
 * codes kept for zmp_wait() and zmp_poll().
 * Returns 0, or a negative errno if the engine cannot be started.
 */
ZMP_EXTERN int zmp_sleep(unsigned long ms);

/*
 * Release everything the library holds: the engine (ring), pidfds, pipes,
 * memory.  Children still running from zmp_spawn() are killed with SIGKILL
 * and reaped, so nothing is left behind; every handle becomes invalid.
 * The library can be used again afterwards: it starts afresh on the next
 * call.  The settings made with zmp_set_interpreter and zmp_set_backend are
 * kept.  Calling it when nothing is held is harmless.
 */
ZMP_EXTERN void zmp_deinit(void);

/*
 * Set the interpreter used by zmp_run, zmp_run_code and zmp_spawn.  A path
 * with a slash is used as it is; a bare name is searched in PATH when a
 * child is started (empty PATH entries, which mean the current directory,
 * are skipped).  NULL restores the default: $ZMP_INTERPRETER if set and
 * not empty, else the one chosen at configure time (--with-interpreter,
 * "zpy" by default).
 * Returns 0, -EINVAL for an empty string, -ENOMEM.
 */
ZMP_EXTERN int zmp_set_interpreter(const char *path);

/*
 * The interpreter that the next child would be started with, as set
 * (before any PATH search).  Valid until the next zmp_set_interpreter(), or
 * until $ZMP_INTERPRETER changes when the name comes from there.
 */
ZMP_EXTERN const char *zmp_interpreter(void);

/*
 * The name of the engine in use: "io_uring" or "poll".  Starts the engine
 * if it is not running yet; "none" if no engine can start.
 */
ZMP_EXTERN const char *zmp_backend(void);

/*
 * Choose the engine: "io_uring", "poll", or "auto" (io_uring when the
 * kernel allows it, else poll).  NULL goes back to the default: what
 * $ZMP_BACKEND says (the same names), else "auto".  A forced engine that
 * cannot start makes the calls fail with its error (-EPERM, -ENOSYS, ...)
 * rather than switch silently.
 * Returns 0, -EINVAL for an unknown name, -EBUSY while children are held
 * (call zmp_deinit() first), or -ENOTSUP for an engine this build lacks.
 */
ZMP_EXTERN int zmp_set_backend(const char *name);

/*
 * Send sig to every child the library has started and not yet reaped:
 * zmp_spawn() and zmp_start() jobs and the jobs of running batches and
 * streams; a child started with ZMP_NEW_PGROUP gets it as a whole group,
 * and with SIGKILL a job with a cgroup loses its whole cgroup.  Signals
 * go through pidfds, so they never reach a recycled pid (kernels before
 * 5.3, without pidfds, signal by pid).  The children are then reaped as
 * usual by the call that waits for them.
 *
 * Async-signal-safe, and safe from any thread: it is meant to be called
 * from a signal handler, to pass Ctrl-C, a SIGTERM or a SIGTSTP on to the
 * jobs.  A child started or reaped by another thread at the same moment
 * may be missed or told in vain.  sig 0 only counts.
 * Returns how many children it was sent to, or -EINVAL for a bad signal
 * number.
 */
ZMP_EXTERN int zmp_signal_all(int sig);

/*
 * A message for a negative errno value returned by this library.
 */
ZMP_EXTERN const char *zmp_strerror(int err);

/*
 * The library's version, e.g. "0.1.0".
 */
ZMP_EXTERN const char *zmp_version(void);

/*
 * The version of this header, the one a program is compiled against
 * (zmp_version() names the library it runs with).  ZMP_VERSION_NUMBER is
 * (MAJOR << 16 | MINOR << 8 | PATCH), for tests such as
 * `#if ZMP_VERSION_NUMBER >= 0x000200`.  configure fails when these do not
 * say the version in configure.ac.
 */
#define ZMP_VERSION_MAJOR 0
#define ZMP_VERSION_MINOR 2
#define ZMP_VERSION_PATCH 0
#define ZMP_VERSION_NUMBER \
    ((ZMP_VERSION_MAJOR << 16) | (ZMP_VERSION_MINOR << 8) | ZMP_VERSION_PATCH)


/* ----------------------------------------------------------------------
 * Beyond the manual: one options form for every way of running a child,
 * captured jobs that run in the background, timeouts and output caps.
 * ---------------------------------------------------------------------- */

/* zmp_options.flags */
#define ZMP_ENV_REPLACE  (1u << 0)  /* env replaces the environment */
#define ZMP_NEW_PGROUP   (1u << 1)  /* the child leads a new process group;
                                       timeouts and zmp_kill signal it all
                                       while the leader lives (once it is
                                       reaped its pgid may be reused) */
#define ZMP_NO_CAPTURE   (1u << 2)  /* stdio inherited, nothing captured */
#define ZMP_MERGE_STDERR (1u << 3)  /* stdout and stderr share one pipe, as
                                       with `2>&1`: out (and output) holds
                                       both in the exact order written, err
                                       stays empty */
#define ZMP_DIE_WITH_PARENT (1u << 4)  /* the child gets SIGKILL when
                                       the thread that started it exits
                                       (PR_SET_PDEATHSIG), as when the
                                       caller dies, even by SIGKILL; only
                                       the child, not its group nor its
                                       descendants (zmp_options(3)) */
#define ZMP_STDIN_FD     (1u << 5)  /* the child's stdin is stdin_fd (a
                                       copy of it): a pipe the caller
                                       keeps feeding, a file; not with
                                       input (since 0.2.0) */
#define ZMP_NO_MERGED    (1u << 6)  /* no merged `output`: it is NULL and
                                       output_len 0; out and err as ever.
                                       Saves a copy of every byte when
                                       both streams have some (since
                                       0.2.0) */

/* One step of the sequence a timeout sends: signal, then wait ms. */
typedef struct zmp_term_step {
    int signal;
    unsigned long ms;
} zmp_term_step;

/*
 * Receives a job's output as it is read, instead of the result keeping it
 * (zmp_options.on_output): len > 0 bytes of data the child wrote to fd 1
 * (stdout; with ZMP_MERGE_STDERR, both streams) or fd 2 (stderr), valid
 * during the call only.  Return 0 to go on.  Anything else ends the job:
 * it is killed with SIGKILL (its process group with ZMP_NEW_PGROUP, its
 * cgroup with one), the rest of its output is read and dropped, the
 * callback is not called for it again, and the job ends with an error
 * (see zmp_options.on_output).
 */
typedef int (*zmp_output_fn)(void *arg, int fd, const void *data, size_t len);

/*
 * How to run a child.  Zero-initialize and set what you need.
 *
 * program     an executable to run with argv as its whole argument vector
 *             (argv[0] included); a bare name is searched in PATH like the
 *             interpreter.  NULL: run the interpreter, and argv holds what
 *             follows it ({ "script.zpy", "arg", NULL } or
 *             { "-c", "code", NULL }).
 * argv        NULL-terminated; must not be NULL or empty.
 * interpreter the interpreter for this child only (NULL: zmp_interpreter()).
 * env         "NAME=value" strings, NULL-terminated: added to (and
 *             overriding) the caller's environment, or, with
 *             ZMP_ENV_REPLACE, the whole environment.  NULL: inherited.
 * cwd         working directory of the child (NULL: the caller's).  A
 *             directory that cannot be entered fails the start with its
 *             errno (-ENOENT, -EACCES, -ENOTDIR).
 * input       bytes to feed on stdin, written through the engine while the
 *             output is read, so a child that reads slowly and writes a lot
 *             cannot deadlock; stdin then reaches end of file.  NULL with
 *             input_len 0: stdin is /dev/null.
 * timeout_ms  0 for none.  On expiry the child (its group with
 *             ZMP_NEW_PGROUP) gets the term_seq signals, each followed by
 *             its wait, then SIGKILL; the default sequence is SIGTERM, 2 s,
 *             SIGKILL.  Signals go through the pidfd.  Once the child is
 *             dead, pipes still held open by a descendant are read for a
 *             grace of drain_ms more (default 200 ms), then closed:
 *             a run with a timeout never hangs.
 * output_cap  0 for none; else each of stdout and stderr keeps at most
 *             this many bytes, the rest is read and dropped.
 * cgroup      a cgroup v2 directory the caller may create cgroups in (a
 *             delegated subtree), or NULL.  The child then starts in a new
 *             cgroup of its own under it (CLONE_INTO_CGROUP, 5.7+), and
 *             every process of that cgroup, including descendants that left
 *             the process group with setsid, is killed through cgroup.kill
 *             (5.14+) when the job times out, is killed, or finishes; the
 *             cgroup is then removed.  A cgroup that cannot be made fails
 *             the start with its errno; -EOPNOTSUPP without cgroup.kill.
 * on_output   NULL: the result keeps the output.  Else each piece of
 *             output is handed to on_output(output_arg, fd, data, len) as
 *             it is read, and kept nowhere: the result's out, err and
 *             output stay NULL with lengths 0, and memory stays flat
 *             however much the child writes.  output_cap still applies:
 *             each stream passes at most output_cap bytes to on_output,
 *             the rest is read and dropped (ZMP_TRUNCATED).
 *             It is called by the thread that runs the engine when the
 *             bytes are read: the caller's own in zmp_run_opts(), whichever
 *             thread waits in the library (zmp_collect, zmp_poll, zmp_wait,
 *             zmp_sleep...) for a zmp_start() job, the caller's thread for
 *             a batch or stream running one job at a time, and otherwise
 *             one of the library's worker threads (different jobs' calls
 *             may then run at once: guard shared state).  The calls for
 *             one job never overlap and come in the order the bytes were
 *             read, each stream's bytes complete and in order.  It runs
 *             with the library's lock held: it must not call any zmp
 *             function but zmp_signal_all() (which is lock-free), nor
 *             fork() (the library's atfork handler takes that lock), nor
 *             wait for another thread that may be calling zmp or forking;
 *             and
 *             while it blocks (a slow stdout), the other jobs of that
 *             thread's engine are not read and other calls on them wait:
 *             a child blocked on a full pipe is the backpressure.
 *             A nonzero return kills the job (zmp_output_fn); it then ends
 *             with that return's value as its error when negative, else
 *             -EIO: zmp_run_opts() and zmp_collect() return it, a batch
 *             or stream reports it as the job's err.  With
 *             ZMP_NO_CAPTURE, -EINVAL.  (Since 0.2.0.)
 */
typedef struct zmp_options {
    const char *program;
    const char *const *argv;
    const char *interpreter;
    const char *const *env;
    const char *cwd;
    const void *input;
    size_t input_len;
    unsigned long timeout_ms;
    const zmp_term_step *term_seq;
    size_t term_seq_len;
    unsigned long drain_ms;
    size_t output_cap;
    unsigned flags;
    const char *cgroup;
    zmp_output_fn on_output;
    void *output_arg;
    int stdin_fd;
} zmp_options;

/* zmp_info.flags */
#define ZMP_TIMED_OUT   (1u << 0)  /* the timeout expired; it was signalled */
#define ZMP_TRUNCATED   (1u << 1)  /* output past output_cap was dropped */
#define ZMP_PIPES_HELD  (1u << 2)  /* a descendant held the pipes open past
                                      the drain grace: output may be short */

/*
 * What happened to a job, beyond its result.  The resources are those of
 * the child and of the descendants it waited for (getrusage's
 * RUSAGE_SELF and RUSAGE_CHILDREN together, as wait4 reports them); all
 * zero when zmp could not reap the child itself (SIGCHLD ignored, or a
 * wait elsewhere in the program took it).
 */
typedef struct zmp_info {
    unsigned flags;
    int pid;
    double started;      /* when it started: seconds since the Epoch */
    double seconds;      /* from start to the last byte read and reaped */
    double user_cpu;     /* CPU seconds in user mode */
    double system_cpu;   /* CPU seconds in the kernel */
    long max_rss_kb;     /* peak resident set, KiB (the largest one of the
                            child and of each descendant waited for; at
                            least the caller's own peak when the child
                            started, whose memory it shared until exec) */
} zmp_info;

/*
 * Run a child as opts says and wait for it, capturing stdout and stderr
 * (unless ZMP_NO_CAPTURE: then res gets only ok and exit_code, its buffers
 * stay NULL).  info may be NULL.
 * Returns 0 or the errors of zmp_run(), plus -EINVAL for bad options
 * (argv NULL or empty, a term_seq_len without term_seq, an unknown flag).
 */
ZMP_EXTERN int zmp_run_opts(const zmp_options *opts, zmp_result *res,
                            zmp_info *info);

/*
 * Start a child as opts says and return a handle at once.  Its output is
 * captured in the background (unless ZMP_NO_CAPTURE); zmp_poll() says
 * whether it has finished (exited, and its output read to the end),
 * zmp_collect() takes the result, zmp_kill() ends it, and zmp_wait()
 * waits for its exit only and returns its exit code, dropping the output
 * (pipes a descendant still holds are not waited for).
 * Returns a handle > 0, or the errors of zmp_run_opts().
 */
ZMP_EXTERN int zmp_start(const zmp_options *opts);

/*
 * Wait for the job of handle to finish, take its result (and info, which
 * may be NULL) and remove the handle.
 * Returns 0, -ECHILD for an unknown handle, or the errors of zmp_run().
 */
ZMP_EXTERN int zmp_collect(int handle, zmp_result *res, zmp_info *info);

/*
 * Called as each job of a batch finishes (in the order they finish):
 * index is its place in the batch, err 0 or the job's error (then res is
 * NULL), res and info (NULL when the caller passed no infos) its outcome.
 * res is results[index]: the callback may consume it (zmp_result_free
 * leaves it zeroed), to keep memory flat over a long batch.  Return 0 to
 * go on, anything else to start no further job: those not started get
 * -ECANCELED, the ones running finish normally.
 */
typedef int (*zmp_progress_fn)(void *arg, size_t index, int err,
                               zmp_result *res, const zmp_info *info);

/*
 * Run n jobs, at most parallel at once (0: zmp_cpu_count()), all on the
 * one engine, and wait for them all.  results[i] (and infos[i], errors[i]
 * when those arrays are given) receive job i's outcome, in submission
 * order whatever the order of completion; progress (may be NULL) hears of
 * each as it finishes.  A job that cannot start has errors[i] < 0 and an
 * empty result; when the cause is a resource that running jobs hold
 * (-EMFILE, -ENFILE, -EAGAIN, -ENOMEM), the job waits for one of them to
 * finish and is tried again, and fails only when nothing is in flight.
 * Out of descriptors, the soft RLIMIT_NOFILE is raised to the hard limit
 * once; children still get the caller's limit (zmp_options(3)).
 * The progress callback may run single children and the engine
 * (zmp_run, zmp_wait, zmp_sleep...); zmp_deinit() from it kills every
 * child, and the batch tears down as it returns (zmp_run_batch(3)).
 * Returns 0 once every job is accounted for, -EINVAL for NULL arrays,
 * -EBUSY from a callback of another batch or stream, or a negative errno
 * if the engine fails (jobs still running are killed).
 */
ZMP_EXTERN int zmp_run_batch(const zmp_options *jobs, size_t n,
                             unsigned parallel, zmp_result *results,
                             zmp_info *infos, int *errors,
                             zmp_progress_fn progress, void *arg);

/* What a job source's next function returns (or a negative errno). */
#define ZMP_STREAM_END  0  /* no job now, nor ever */
#define ZMP_STREAM_JOB  1  /* *job is filled in */
#define ZMP_STREAM_WAIT 2  /* no job yet: ask again once *wait_fd is readable */

/*
 * A job source: fill *job with job number index (0, 1, 2... in order) and
 * return ZMP_STREAM_JOB, or ZMP_STREAM_END, or ZMP_STREAM_WAIT with
 * *wait_fd set to a descriptor to wait on (a pipe, a socket, a terminal:
 * it is asked again once that fd is readable or hung up, and may have to
 * say ZMP_STREAM_WAIT again), or a negative errno to start no more jobs.
 * What *job points to must stay valid until the job's done callback runs.
 */
typedef int (*zmp_next_fn)(void *arg, size_t index, zmp_options *job,
                           int *wait_fd);

/*
 * Run jobs as next hands them out, at most parallel at once
 * (0: zmp_cpu_count()), on the one engine, until next says
 * ZMP_STREAM_END (or fails, or done asks to stop) and every job started
 * has finished.  next is asked for a job only when a slot is free, so a
 * source may be endless; while it waits on its fd, running jobs keep
 * being read and their timeouts keep firing.
 * done (may be NULL) hears of each job as it finishes, in the order they
 * finish, as a batch's progress callback does, with these differences:
 * res belongs to the callback (it must zmp_result_free() it or keep it),
 * and info is NULL for a job that did not start.  Returning nonzero stops
 * the stream: next is not asked again, a job taken but not started is
 * reported with -ECANCELED, running jobs finish and are reported.
 * A job that cannot start for want of a resource running jobs hold is
 * retried as in zmp_run_batch().  Callbacks may run single children and
 * the engine (zmp_run, zmp_wait, zmp_sleep...); zmp_deinit() from one
 * kills every child, stops the stream and tears down as it returns.
 * Returns 0, next's negative errno if it failed, -EINVAL for a NULL next
 * or a bad return from it, -EBADF when the fd next named is not open,
 * -EBUSY from a callback of another stream or batch, or a negative errno
 * if the engine fails (jobs still running are killed).
 */
ZMP_EXTERN int zmp_run_stream(unsigned parallel, zmp_next_fn next,
                              zmp_progress_fn done, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* ZMP_H */
