/* SPDX-License-Identifier: MIT */
/*
 * Breaks found by adversarial testing, each kept fixed: signalling every
 * job from a handler, fork() in the caller, teardown from a callback,
 * fd limits, huge environments, handle reuse, a closed source fd, the
 * exact arrival order of both streams, bad timeout signals, and kernels
 * without clone3 or waitid(P_PIDFD).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static const char *sleep_long[] = { "30000", NULL };

/* Is pid gone (or a zombie nobody of ours will reap), within 5 s? */
static bool gone(pid_t pid)
{
    char path[64], buf[512], *p;
    int i, fd;
    ssize_t n;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    for (i = 0; i < 500; i++) {
        fd = open(path, O_RDONLY);
        if (fd < 0)
            return true;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        buf[n > 0 ? n : 0] = '\0';
        p = strrchr(buf, ')');
        if (p && p[1] && p[2] == 'Z')
            return true;
        usleep(10000);
    }
    return false;
}

/* zmp_signal_all reaches every kind of child: spawned, started, and a
 * process group with a grandchild in it. */
static void test_signal_all(void)
{
    const char *tree[] = { "sh", "-c", "sleep 30 & echo $!; wait", NULL };
    zmp_options o = { .program = "/bin/sh", .argv = tree, .flags = ZMP_NEW_PGROUP };
    int h[3], g, code, i;
    zmp_result res;

    use_helper();
    for (i = 0; i < 3; i++) {
        h[i] = zmp_spawn("sleep", sleep_long);
        CU_ASSERT_TRUE_FATAL(h[i] > 0);
    }
    g = zmp_start(&o);
    CU_ASSERT_TRUE_FATAL(g > 0);
    usleep(200000);  /* the shell starts its sleep */
    CU_ASSERT_EQUAL(zmp_signal_all(0), 4);
    CU_ASSERT_EQUAL(zmp_signal_all(-1), -EINVAL);
    CU_ASSERT_EQUAL(zmp_signal_all(NSIG), -EINVAL);
    CU_ASSERT_EQUAL(zmp_signal_all(SIGTERM), 4);
    for (i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(zmp_wait(h[i], &code), 0);
        CU_ASSERT_EQUAL(code, -SIGTERM);
    }
    CU_ASSERT_EQUAL_FATAL(zmp_collect(g, &res, NULL), 0);
    CU_ASSERT_EQUAL(res.exit_code, -SIGTERM);
    CU_ASSERT_TRUE(res.out_len > 0 && gone((pid_t)atoi(res.out)));  /* the grandchild */
    zmp_result_free(&res);
    CU_ASSERT_EQUAL(zmp_signal_all(0), 0);
}

static void on_usr1(int sig)
{
    (void)sig;
    zmp_signal_all(SIGKILL);
}

static void *send_usr1(void *arg)
{
    usleep(300000);
    kill(getpid(), SIGUSR1);
    return arg;
}

/* From a signal handler, in the middle of a batch: every job dies at
 * once and is reported. */
static void test_signal_all_from_handler(void)
{
    enum { N = 8 };
    struct sigaction sa = { .sa_handler = on_usr1 }, old;
    zmp_options jobs[N];
    zmp_result res[N];
    int errs[N], i, killed = 0;
    const char *args[] = { "helper", "sleep", "30000", NULL };
    pthread_t t;

    for (i = 0; i < N; i++)
        jobs[i] = (zmp_options){ .program = helper_path(), .argv = args };
    sigaction(SIGUSR1, &sa, &old);
    pthread_create(&t, NULL, send_usr1, NULL);
    CU_ASSERT_EQUAL(zmp_run_batch(jobs, N, N, res, NULL, errs, NULL, NULL), 0);
    pthread_join(t, NULL);
    sigaction(SIGUSR1, &old, NULL);
    for (i = 0; i < N; i++) {
        killed += errs[i] == 0 && res[i].exit_code == -SIGKILL;
        zmp_result_free(&res[i]);
    }
    CU_ASSERT_EQUAL(killed, N);
}

/* fork() with jobs running: the child uses zmp on its own (its deinit,
 * its runs) and the parent's jobs, ring and output are untouched. */
static void test_fork(void)
{
    const char *x[] = { "x", NULL };
    zmp_options o = { .argv = NULL };
    const char *argv[] = { "helper", "sleep", "500", "done", NULL };
    int h, c, code, i, st;
    zmp_result res;
    pid_t pid;

    use_helper();
    h = zmp_spawn("sleep", sleep_long);
    CU_ASSERT_TRUE_FATAL(h > 0);
    o.program = helper_path();
    o.argv = argv;
    c = zmp_start(&o);
    CU_ASSERT_TRUE_FATAL(c > 0);
    for (i = 0; i < 2; i++) {
        pid = fork();
        CU_ASSERT_TRUE_FATAL(pid >= 0);
        if (pid == 0) {
            /* First child: deinit alone; second: a run, then deinit. */
            int bad = 0;

            if (i == 1) {
                bad |= zmp_poll(h, &code) != -ECHILD;
                bad |= zmp_run("echo", x, &res) != 0 ||
                       strcmp(res.out, "x\n") != 0;
                zmp_result_free(&res);
            }
            zmp_deinit();
            _exit(bad);
        }
        CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
        CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    CU_ASSERT_EQUAL(zmp_poll(h, &code), 0);  /* still running */
    CU_ASSERT_EQUAL_FATAL(zmp_collect(c, &res, NULL), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "done\n");
    zmp_result_free(&res);
    CU_ASSERT_EQUAL(zmp_kill(h), 0);
}

struct deinit_cb {
    int calls, killed, nested, backend;
};

/* Jobs that never started because the batch stopped are not reported to
 * the callback: with worker threads, some may still be queued. */

static int deinit_first(void *arg, size_t index, int err, zmp_result *res,
                        const zmp_info *info)
{
    struct deinit_cb *d = arg;
    zmp_options one = { .program = "/bin/true", .argv = (const char *[]){ "true", NULL } };
    zmp_result r1;

    (void)index;
    (void)info;
    if (err == 0 && res->exit_code == -SIGKILL)
        d->killed++;
    if (d->calls++ == 0) {
        d->nested = zmp_run_batch(&one, 1, 1, &r1, NULL, NULL, NULL, NULL);
        d->backend = zmp_set_backend("auto");
        zmp_deinit();
    }
    return 0;
}

/* zmp_deinit() from a callback kills the jobs and tears down after the
 * batch; a nested batch and zmp_set_backend are -EBUSY. */
static void test_deinit_in_callback(void)
{
    enum { N = 6 };
    const char *quick[] = { "helper", "exit", "0", NULL },
               *slow[] = { "helper", "sleep", "30000", NULL };
    struct deinit_cb d = { 0 };
    zmp_options jobs[N];
    zmp_result res[N];
    int errs[N], i, cancelled = 0;

    for (i = 0; i < N; i++)
        jobs[i] = (zmp_options){ .program = helper_path(), .argv = i ? slow : quick };

    CU_ASSERT_EQUAL(zmp_run_batch(jobs, N, N, res, NULL, errs, deinit_first, &d), 0);
    for (i = 0; i < N; i++)
        cancelled += errs[i] == -ECANCELED;
    CU_ASSERT_EQUAL(d.calls, N - cancelled);
    CU_ASSERT_EQUAL(d.killed + cancelled, N - 1);
    CU_ASSERT_EQUAL(d.nested, -EBUSY);
    CU_ASSERT_EQUAL(d.backend, -EBUSY);
    for (i = 0; i < N; i++)
        zmp_result_free(&res[i]);
    CU_ASSERT_TRUE(no_children());
    use_helper();
    CU_ASSERT_EQUAL(zmp_run("exit", (const char *[]){ "0", NULL }, &res[0]), 0);
    zmp_result_free(&res[0]);
}

/* --- zmp_deinit() and nested calls from a stream's callbacks ---------- */

enum { STREAM_JOBS = 64 };

struct stream_cb {
    bool from_source;             /* zmp_deinit() in the source, else in done */
    size_t at;                    /* ... when it is asked for job `at` */
    const char *engine;           /* zmp_backend() before the stream */
    bool deinited, calls_ok;
    size_t taken, asked_after;    /* jobs given; source calls after the deinit */
    int reported[STREAM_JOBS];    /* reports of each job */
    size_t ran, killed, cancelled, other;
    int nested_stream, nested_batch;
};

static int no_jobs(void *arg, size_t index, zmp_options *job, int *wait_fd)
{
    (void)arg;
    (void)index;
    (void)job;
    (void)wait_fd;
    return ZMP_STREAM_END;
}

/* What else a callback may call: the interpreter's setting, a run of
 * code, and the getters, which answer as outside. */
static bool other_calls_work(const struct stream_cb *d)
{
    char version[32];
    zmp_result r;
    bool ok;

    snprintf(version, sizeof version, "%d.%d.%d", ZMP_VERSION_MAJOR, ZMP_VERSION_MINOR,
             ZMP_VERSION_PATCH);
    ok = zmp_set_interpreter("sh") == 0 && !strcmp(zmp_interpreter(), "sh") &&
         zmp_run_code("echo \"$0\"; exit 3", (const char *[]){ "x", NULL }, &r) == 0 &&
         r.exit_code == 3 && r.out && !strcmp(r.out, "x\n") &&
         !strcmp(zmp_backend(), d->engine) && !strcmp(zmp_version(), version) &&
         zmp_cpu_count() >= 1;
    zmp_result_free(&r);
    return ok;
}

/*
 * Job 0 exits 1 at once, the others sleep until killed.  (A failure is
 * reported at once; with worker threads, a success may be told to the
 * stream only with the next ends, here the sleepers' own.)
 */
static int deinit_source(void *arg, size_t index, zmp_options *job, int *wait_fd)
{
    static const char *quick[] = { "helper", "exit", "1", NULL },
                      *slow[] = { "helper", "sleep", "30000", NULL };
    struct stream_cb *d = arg;
    zmp_options one = { .program = "/bin/true", .argv = (const char *[]){ "true", NULL } };
    zmp_result r1 = { 0 };

    (void)wait_fd;
    if (d->deinited)
        d->asked_after++;
    if (index == 0) {
        d->nested_stream = zmp_run_stream(1, no_jobs, NULL, NULL);
        d->nested_batch = zmp_run_batch(&one, 1, 1, &r1, NULL, NULL, NULL, NULL);
        zmp_result_free(&r1);
    }
    if (index >= STREAM_JOBS)
        return ZMP_STREAM_END;
    if (d->from_source && index == d->at) {
        d->calls_ok = other_calls_work(d);
        zmp_deinit();
        d->deinited = true;
    }
    *job = (zmp_options){ .program = helper_path(), .argv = index ? slow : quick };
    d->taken++;
    return ZMP_STREAM_JOB;
}

static int deinit_done(void *arg, size_t index, int err, zmp_result *res,
                       const zmp_info *info)
{
    struct stream_cb *d = arg;

    (void)info;
    if (index < STREAM_JOBS)
        d->reported[index]++;
    if (err == -ECANCELED && !res)
        d->cancelled++;
    else if (err == 0 && index == 0 && res->exit_code == 1)
        d->ran++;
    else if (err == 0 && res->exit_code == -SIGKILL)
        d->killed++;
    else
        d->other++;
    zmp_result_free(res);
    if (!d->from_source && !d->deinited) {
        d->calls_ok = other_calls_work(d);
        zmp_deinit();
        d->deinited = true;
    }
    return 0;
}

/*
 * zmp_deinit() from a stream's done callback (at the first report) or
 * from its source (asked for job `parallel`): the stream stops and
 * returns 0, every job taken is reported once (run, killed or cancelled),
 * no child is left, and the library works after.  Nested streams and
 * batches from the source are -EBUSY.
 */
static void stream_deinit(unsigned parallel, bool from_source)
{
    struct stream_cb d = { .from_source = from_source, .at = parallel,
                           .nested_stream = 1, .nested_batch = 1 };
    struct timespec t0, t1;
    zmp_result res;
    size_t i;

    d.engine = zmp_backend();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT_EQUAL(zmp_run_stream(parallel, deinit_source, deinit_done, &d), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CU_ASSERT_TRUE(t1.tv_sec - t0.tv_sec < 20);  /* the sleepers were killed */
    CU_ASSERT_TRUE(d.deinited);
    CU_ASSERT_TRUE(d.calls_ok);
    CU_ASSERT_EQUAL(d.nested_stream, -EBUSY);
    CU_ASSERT_EQUAL(d.nested_batch, -EBUSY);
    /* Not asked again, not even for the jobs queued ahead for workers. */
    CU_ASSERT_EQUAL(d.asked_after, 0);
    for (i = 0; i < STREAM_JOBS; i++)
        CU_ASSERT_EQUAL(d.reported[i], i < d.taken);
    CU_ASSERT_EQUAL(d.other, 0);
    CU_ASSERT_EQUAL(d.ran + d.killed + d.cancelled, d.taken);
    /* Job 0 ended before the deinit, except when the source, asked
     * ahead for the worker threads, got there first. */
    CU_ASSERT_TRUE(from_source && parallel > 1 ? d.ran <= 1 : d.ran == 1);
    CU_ASSERT_TRUE(no_children());
    use_helper();
    CU_ASSERT_EQUAL(zmp_run("exit", (const char *[]){ "0", NULL }, &res), 0);
    CU_ASSERT_EQUAL(res.exit_code, 0);
    zmp_result_free(&res);
}

static void test_stream_deinit_in_done_1(void)
{
    stream_deinit(1, false);
}

static void test_stream_deinit_in_done_4(void)
{
    stream_deinit(4, false);
}

static void test_stream_deinit_in_source_1(void)
{
    stream_deinit(1, true);
}

static void test_stream_deinit_in_source_4(void)
{
    stream_deinit(4, true);
}

/* What `ulimit -Sn` says in a child started now. */
static long child_nofile(void)
{
    const char *argv[] = { "sh", "-c", "ulimit -Sn", NULL };
    zmp_options o = { .program = "/bin/sh", .argv = argv };
    zmp_result res;
    long n = -1;

    if (zmp_run_opts(&o, &res, NULL) == 0 && res.out)
        n = atol(res.out);
    zmp_result_free(&res);
    return n;
}

/* After zmp raised the soft fd limit for itself, children get the limit
 * the caller has when they start: the one from before the raise, or the
 * one the caller set since. */
static void test_nofile_follows_caller(void)
{
    struct rlimit old, rl;
    int fds[64], n = 0, fd;

    getrlimit(RLIMIT_NOFILE, &old);
    zmp_deinit();
    CU_ASSERT_STRING_NOT_EQUAL(zmp_backend(), "none");
    rl = old;
    rl.rlim_cur = (rlim_t)count_fds() + 8;
    if (rl.rlim_cur + 200 > rl.rlim_max) {
        test_skip("the hard RLIMIT_NOFILE is too low to raise into");
        return;
    }
    setrlimit(RLIMIT_NOFILE, &rl);
    while (n < 64 && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
        fds[n++] = fd;
    CU_ASSERT_EQUAL(child_nofile(), (long)rl.rlim_cur);  /* after a raise */
    while (n > 0)
        close(fds[--n]);
    rl.rlim_cur += 50;
    setrlimit(RLIMIT_NOFILE, &rl);
    CU_ASSERT_EQUAL(child_nofile(), (long)rl.rlim_cur);  /* set since */
    setrlimit(RLIMIT_NOFILE, &old);
    CU_ASSERT_EQUAL(child_nofile(), (long)old.rlim_cur);
    zmp_deinit();
}

/* 40,000 entries over 40,000 inherited (the merge was quadratic: 10 s),
 * overrides and duplicates resolved as documented (the last wins). */
static void test_big_env(void)
{
    enum { N = 40000 };
    extern char **environ;
    char **saved = environ, **inh = calloc(N + 2, sizeof *inh);
    const char **env = calloc(N + 3, sizeof *env);
    const char *argv[] = { "sh", "-c", "echo \"$ZI_0 $ZI_39999 $ZI_20001 $ZE_0 $ZD\"", NULL };
    zmp_options o = { .program = "/bin/sh", .argv = argv };
    zmp_result res;
    int i, k = 0;

    CU_ASSERT_TRUE_FATAL(inh && env);
    for (i = 0; i < N; i++)
        if (asprintf(&inh[i], "ZI_%d=inherited", i) < 0)
            inh[i] = NULL;
    inh[N] = (char *)"PATH=/usr/bin:/bin";
    for (i = 0; i < N; i += 2)
        if (asprintf((char **)&env[k++], "ZI_%d=over", i) < 0)
            env[k - 1] = NULL;
    for (i = 0; i < N / 2 - 2; i++)
        if (asprintf((char **)&env[k++], "ZE_%d=new", i) < 0)
            env[k - 1] = NULL;
    env[k++] = "ZD=first";
    env[k++] = "ZD=last";
    o.env = env;
    environ = inh;
    CU_ASSERT_EQUAL(zmp_run_opts(&o, &res, NULL), 0);
    environ = saved;
    CU_ASSERT_STRING_EQUAL(res.out, "over inherited inherited new last\n");
    zmp_result_free(&res);
    for (i = 0; i < N; i++)
        free(inh[i]);
    for (i = 0; i < k - 2; i++)
        free((char *)env[i]);
    free(inh);
    free(env);
}

/* With 63 handles held, thousands of starts never hand out a handle seen
 * before (it was reused after 2,048). */
static void test_handles_not_reused(void)
{
    enum { HELD = 63, CYCLES = 3000 };
    int held[HELD], h, first = 0, last = 0, i, code, fresh = 0;

    use_helper();
    for (i = 0; i < HELD; i++) {
        held[i] = zmp_spawn("sleep", sleep_long);
        CU_ASSERT_TRUE_FATAL(held[i] > 0);
    }
    for (i = 0; i < CYCLES; i++) {
        h = zmp_spawn("exit", (const char *[]){ "0", NULL });
        CU_ASSERT_TRUE_FATAL(h > 0);
        if (!first)
            first = h;
        fresh += h > last;
        last = h;
        CU_ASSERT_EQUAL(zmp_wait(h, &code), 0);
    }
    CU_ASSERT_EQUAL(fresh, CYCLES);
    CU_ASSERT_EQUAL(zmp_poll(first, &code), -ECHILD);
    CU_ASSERT_EQUAL(zmp_signal_all(SIGKILL), HELD);
    for (i = 0; i < HELD; i++)
        CU_ASSERT_EQUAL(zmp_wait(held[i], &code), 0);
}

static int closed_fd_source(void *arg, size_t index, zmp_options *job, int *wait_fd)
{
    int *asked = arg;

    (void)index;
    (void)job;
    (*asked)++;
    *wait_fd = asked[1];
    return ZMP_STREAM_WAIT;
}

/* A source that names a closed descriptor fails the stream at once. */
static void test_stream_closed_fd(void)
{
    int asked[2] = { 0, -1 };

    asked[1] = dup(0);
    close(asked[1]);
    CU_ASSERT_EQUAL(zmp_run_stream(2, closed_fd_source, NULL, asked), -EBADF);
    CU_ASSERT_EQUAL(asked[0], 1);
}

/* ZMP_MERGE_STDERR: one pipe, the exact order written, err empty. */
static void test_merge_stderr(void)
{
    zmp_options o = { .program = helper_path(), .flags = ZMP_MERGE_STDERR };
    const char *hargv[] = { "helper", "interleave", "50", "0", NULL };
    char want[1024];
    size_t n = 0;
    zmp_result res;
    int i;

    o.argv = hargv;
    for (i = 0; i < 50; i++)
        n += (size_t)snprintf(want + n, sizeof want - n, "o%d\ne%d\n", i, i);
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, NULL), 0);
    CU_ASSERT_STRING_EQUAL(res.out, want);
    CU_ASSERT_EQUAL(res.err_len, 0);
    CU_ASSERT_TRUE(res.output == res.out && res.output_len == n);
    zmp_result_free(&res);
    o.flags |= ZMP_NO_CAPTURE;
    CU_ASSERT_EQUAL(zmp_run_opts(&o, &res, NULL), -EINVAL);
}

/* A timeout step with no such signal is refused, not skipped. */
static void test_bad_term_signal(void)
{
    const char *argv[] = { "true", NULL };
    zmp_term_step bad[] = { { 999, 10 } }, zero[] = { { 0, 10 } },
                  good[] = { { SIGTERM, 10 } };
    zmp_options o = { .program = "/bin/true", .argv = argv, .timeout_ms = 10000,
                      .term_seq_len = 1 };
    zmp_result res;

    o.term_seq = bad;
    CU_ASSERT_EQUAL(zmp_run_opts(&o, &res, NULL), -EINVAL);
    o.term_seq = zero;
    CU_ASSERT_EQUAL(zmp_run_opts(&o, &res, NULL), -EINVAL);
    o.term_seq = good;
    CU_ASSERT_EQUAL(zmp_run_opts(&o, &res, NULL), 0);
    zmp_result_free(&res);
}

/* A kernel without clone3 and without waitid(P_PIDFD), made by a seccomp
 * filter (child mode "oldkernel"): a cgroup job still starts inside its
 * cgroup, failed starts and kills leave no zombie. */
static void test_old_kernel(void)
{
    char *dir = test_cgroup_dir(), *arg[] = { dir, NULL };
    zmp_result res;

    CU_ASSERT_EQUAL_FATAL(zmp_set_interpreter(self_path()), 0);
    CU_ASSERT_EQUAL_FATAL(zmp_run("--child-oldkernel", (const char *const *)arg, &res), 0);
    CU_ASSERT_EQUAL(res.exit_code, 0);
    CU_ASSERT_STRING_EQUAL(res.out, dir ? "cgroup: own\nmissing: -2\nrun: 0 hi\n"
                                          "kill: 0\nchildren: none\n"
                                        : "missing: -2\nrun: 0 hi\n"
                                          "kill: 0\nchildren: none\n");
    if (res.exit_code)
        fprintf(stderr, "%s", res.output);
    zmp_result_free(&res);
    if (dir) {
        CU_ASSERT_EQUAL(rmdir(dir), 0);
        free(dir);
    }
}

/*
 * Hundreds of children alive at once.  On io_uring with its WAITID and
 * fixed files, a child started while 128 others live holds no descriptor
 * in the parent (no pidfd, its pipes in the ring's table): the table grows
 * by at most 3 for each of the first 128.  Kills, timeouts and
 * zmp_signal_all() reach every child, those without a pidfd as well, a
 * quick run meanwhile is as ever, and every code comes back.
 */
static void test_many_alive(void)
{
    const char *slp[] = { "sleep", "60000", NULL }, *echo[] = { "echo", "hi", NULL };
    const char *off = getenv("ZMP_DISABLE");
    bool lean = !strcmp(zmp_backend(), "io_uring") && !(off && *off);
    int n = lean ? 600 : 200, *h = calloc((size_t)n, sizeof *h), base = count_fds(), i, k = 0;
    zmp_options o = { .argv = slp };
    zmp_result res;
    zmp_info info;

    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    use_helper();
    for (i = 0; i < n; i++) {
        o.timeout_ms = i >= n - 2 ? 300 : 0;  /* the last two time out */
        h[i] = zmp_start(&o);
        CU_ASSERT_TRUE_FATAL(h[i] > 0);
    }
    if (lean)
        CU_ASSERT_TRUE(count_fds() - base <= 3 * 128 + 8);
    CU_ASSERT_EQUAL(zmp_run("echo", echo + 1, &res), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "hi\n");
    zmp_result_free(&res);
    /* Started last: no pidfd of its own on io_uring. */
    CU_ASSERT_EQUAL(zmp_kill(h[n - 3]), 0);
    CU_ASSERT_EQUAL(zmp_collect(h[n - 3], &res, NULL), -ECHILD);
    for (i = n - 2; i < n; i++) {
        CU_ASSERT_EQUAL_FATAL(zmp_collect(h[i], &res, &info), 0);
        CU_ASSERT_TRUE(info.flags & ZMP_TIMED_OUT);
        CU_ASSERT_EQUAL(res.exit_code, -SIGTERM);
        zmp_result_free(&res);
    }
    CU_ASSERT_EQUAL(zmp_signal_all(SIGKILL), n - 3);
    for (i = 0; i < n - 3; i++) {
        CU_ASSERT_EQUAL_FATAL(zmp_collect(h[i], &res, NULL), 0);
        k += res.exit_code == -SIGKILL;
        zmp_result_free(&res);
    }
    CU_ASSERT_EQUAL(k, n - 3);
    CU_ASSERT_TRUE(no_children());
    CU_ASSERT_EQUAL(count_fds(), base);
    free(h);
}

/* Does a pidfd keep the exit status of a child reaped by someone else
 * (PIDFD_INFO_EXIT, 6.15), and does zmp use pidfds in this run? */
bool kernel_keeps_exit_status(void)
{
    struct utsname u;
    int major = 0, minor = 0;
    const char *off = getenv("ZMP_DISABLE");

    if (off && strstr(off, "pidfd"))
        return false;
    if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
        return false;
    return major > 6 || (major == 6 && minor >= 15);
}

/* SIGCHLD ignored: the kernel reaps the children itself.  Their output
 * is kept, and their exit codes too where the pidfd knows them; else the
 * call says the code is lost (-ECHILD). */
static void test_sigchld_ignored(void)
{
    struct sigaction ign = { .sa_handler = SIG_IGN }, old;
    const char *args[] = { "hi", NULL };
    zmp_result res;
    int r, h, code = 99;

    use_helper();
    sigaction(SIGCHLD, &ign, &old);
    r = zmp_run("echo", args, &res);
    if (kernel_keeps_exit_status()) {
        CU_ASSERT_EQUAL(r, 0);
        CU_ASSERT_STRING_EQUAL(res.out, "hi\n");
        CU_ASSERT_EQUAL(res.exit_code, 0);
    } else {
        CU_ASSERT_EQUAL(r, -ECHILD);
    }
    zmp_result_free(&res);
    h = zmp_spawn("exit", (const char *[]){ "7", NULL });
    CU_ASSERT_TRUE_FATAL(h > 0);
    r = zmp_wait(h, &code);
    CU_ASSERT_TRUE(kernel_keeps_exit_status() ? r == 0 && code == 7
                                              : r == -ECHILD && code == 99);
    sigaction(SIGCHLD, &old, NULL);
}

/* More jobs at once than descriptors allow (2,000 under a hard limit of
 * 1,024, in a fresh process: child mode "fdlimit"): they queue, all run. */
static void test_fd_limit_queue(void)
{
    zmp_result res;

    CU_ASSERT_EQUAL_FATAL(zmp_set_interpreter(self_path()), 0);
    CU_ASSERT_EQUAL_FATAL(zmp_run("--child-fdlimit", NULL, &res), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "fdlimit: 0 ok: 2000\n");
    if (res.exit_code)
        fprintf(stderr, "%s", res.output);
    zmp_result_free(&res);
}

static int fd_limit_mode(void)
{
    enum { N = 2000 };
    const char *argv[] = { "true", NULL };
    struct rlimit rl = { 1024, 1024 };
    static zmp_options jobs[N];
    static zmp_result rs[N];
    static int errs[N];
    int i, r, ok = 0;

    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 10;
    for (i = 0; i < N; i++)
        jobs[i] = (zmp_options){ .program = "/bin/true", .argv = argv };
    r = zmp_run_batch(jobs, N, N, rs, NULL, errs, NULL, NULL);
    for (i = 0; i < N; i++) {
        ok += errs[i] == 0 && rs[i].ok;
        zmp_result_free(&rs[i]);
    }
    printf("fdlimit: %d ok: %d\n", r, ok);
    zmp_deinit();
    return 0;
}

static int deny_old_kernel_calls(void)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_waitid, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 3 /* P_PIDFD */, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EINVAL & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { sizeof filter / sizeof filter[0], filter };

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

int reliability_child_mode(const char *mode, const char *arg)
{
    const char *hi[] = { "hi", NULL }, *cg[] = { "sh", "-c", "cat /proc/self/cgroup", NULL };
    zmp_options o = { .program = "/bin/sh", .argv = cg };
    zmp_result res;
    int r, h;

    if (!strcmp(mode, "fdlimit"))
        return fd_limit_mode();
    if (strcmp(mode, "oldkernel"))
        return -1;
    if (deny_old_kernel_calls() < 0)
        return 10;
    if (arg) {
        o.cgroup = arg;
        r = zmp_run_opts(&o, &res, NULL);
        printf("cgroup: %s\n", r == 0 && strstr(res.out, "/zmp-") ? "own" : "outside");
        if (r == 0 && !strstr(res.out, "/zmp-"))
            fprintf(stderr, "%s", res.out);
        zmp_result_free(&res);
    }
    zmp_set_interpreter(helper_path());
    o = (zmp_options){ .program = "/nonexistent/x", .argv = hi };
    printf("missing: %d\n", zmp_run_opts(&o, &res, NULL));
    r = zmp_run("echo", hi, &res);
    printf("run: %d %s", r, r == 0 ? res.out : "\n");
    zmp_result_free(&res);
    h = zmp_spawn("sleep", sleep_long);
    printf("kill: %d\n", h > 0 ? zmp_kill(h) : h);
    zmp_deinit();
    printf("children: %s\n", no_children() ? "none" : "some");
    return 0;
}

/* A writable cgroup v2 directory for a test, made fresh, or NULL: under
 * this process's own cgroup where that is writable (a delegated subtree),
 * else at the root of the first cgroup2 mount that lets us (the hybrid
 * layout mounts it at /sys/fs/cgroup/unified), found in mountinfo. */
char *test_cgroup_dir(void)
{
    char line[4096], own[4096] = "", mnt[2048], *path = NULL, *sep;
    FILE *f = fopen("/proc/self/cgroup", "r");
    int pass;

    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "0::", 3)) {
            snprintf(own, sizeof own, "%s", line + 3);
            own[strcspn(own, "\n")] = '\0';
        }
    if (f)
        fclose(f);
    for (pass = 0; pass < 2 && !path; pass++) {
        f = fopen("/proc/self/mountinfo", "r");
        while (f && !path && fgets(line, sizeof line, f)) {
            sep = strstr(line, " - ");
            if (!sep || strncmp(sep, " - cgroup2 ", 11) ||
                sscanf(line, "%*s %*s %*s %*s %2047s", mnt) != 1)
                continue;
            if (asprintf(&path, "%s%s/zmp-test-%d", mnt, pass == 0 ? own : "",
                         (int)getpid()) < 0)
                path = NULL;
            if (path && mkdir(path, 0755) != 0) {
                free(path);
                path = NULL;
            }
        }
        if (f)
            fclose(f);
    }
    return path;
}

void add_reliability_tests(void)
{
    CU_pSuite s = CU_add_suite("reliability", suite_init, suite_clean);

    CU_add_test(s, "signal every job", test_signal_all);
    CU_add_test(s, "signal every job from a handler", test_signal_all_from_handler);
    CU_add_test(s, "fork with jobs running", test_fork);
    CU_add_test(s, "deinit from a callback", test_deinit_in_callback);
    CU_add_test(s, "deinit from a stream's done, 1 at a time", test_stream_deinit_in_done_1);
    CU_add_test(s, "deinit from a stream's done, 4 at once", test_stream_deinit_in_done_4);
    CU_add_test(s, "deinit from a stream's source, 1 at a time",
                test_stream_deinit_in_source_1);
    CU_add_test(s, "deinit from a stream's source, 4 at once", test_stream_deinit_in_source_4);
    CU_add_test(s, "children get the caller's fd limit", test_nofile_follows_caller);
    CU_add_test(s, "40,000 env entries over 40,000", test_big_env);
    CU_add_test(s, "handles not reused", test_handles_not_reused);
    CU_add_test(s, "source names a closed fd", test_stream_closed_fd);
    CU_add_test(s, "both streams on one pipe", test_merge_stderr);
    CU_add_test(s, "bad timeout signal", test_bad_term_signal);
    CU_add_test(s, "no clone3, no waitid(P_PIDFD)", test_old_kernel);
    CU_add_test(s, "SIGCHLD ignored", test_sigchld_ignored);
    CU_add_test(s, "hundreds alive: no descriptor each, all reached", test_many_alive);
    CU_add_test(s, "2,000 at once under 1,024 fds", test_fd_limit_queue);
    CU_add_test(s, "no leaks", test_no_leaks);
}
