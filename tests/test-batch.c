/* SPDX-License-Identifier: MIT */
/* zmp_run_batch: order, progress, errors, limits, queueing on EMFILE. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common.h"

struct seen {
    size_t calls;
    unsigned char *hit;
};

static int on_progress(void *arg, size_t index, int err, zmp_result *res,
                       const zmp_info *info)
{
    struct seen *s = arg;

    (void)info;
    s->calls++;
    s->hit[index]++;
    if (err == 0 && !res)
        s->hit[index] = 100;  /* must never happen: flagged below */
    return 0;
}

/* Stop after the first failure; count the reports before and after. */
struct stop {
    size_t calls, after; /* reports in all, and after the stop */
    size_t stopped_at;   /* index of the job whose report stopped it */
    bool stopped;
};

static int stop_on_failure(void *arg, size_t index, int err, zmp_result *res,
                           const zmp_info *info)
{
    struct stop *st = arg;

    (void)info;
    st->calls++;
    if (st->stopped) {
        st->after++;
        return 0;
    }
    if (err != 0 || !res->ok) {
        st->stopped = true;
        st->stopped_at = index;
        return 1;
    }
    return 0;
}

/*
 * What the contract says, whatever the timing: jobs start in order, so
 * the jobs that ran are a prefix, job 3 among them; once the callback
 * asks to stop, nothing more starts, so the only reports after it are of
 * jobs already in flight (at most parallel - 1 = 1); each job that ran is
 * reported once, and every other one is -ECANCELED with an empty result.
 * How many ran depends on the scheduler (a slow job 3 lets later ones
 * finish first), so it is not asserted.
 */
static void test_stop(void)
{
    enum { N = 50, PARALLEL = 2 };
    const char *ok[] = { "exit", "0", NULL }, *bad[] = { "exit", "1", NULL };
    zmp_options jobs[N];
    zmp_result res[N];
    struct stop st = { 0 };
    int errs[N], i, r, ran = 0, prefix = 1, empty = 1;

    use_helper();
    for (i = 0; i < N; i++)
        jobs[i] = (zmp_options){ .argv = i == 3 ? bad : ok };
    r = zmp_run_batch(jobs, N, PARALLEL, res, NULL, errs, stop_on_failure, &st);
    CU_ASSERT_EQUAL_FATAL(r, 0);
    CU_ASSERT_TRUE(st.stopped);
    CU_ASSERT_EQUAL(st.stopped_at, 3);
    CU_ASSERT_EQUAL(res[3].exit_code, 1);
    for (i = 0; i < N; i++) {
        if (errs[i] == 0)
            ran++;
        else if (errs[i] != -ECANCELED)
            prefix = 0;
        if (errs[i] == 0 && i > 0 && errs[i - 1] != 0)
            prefix = 0;
        if (errs[i] != 0 && (res[i].out || res[i].exit_code))
            empty = 0;
        zmp_result_free(&res[i]);
    }
    CU_ASSERT_TRUE(prefix);
    CU_ASSERT_TRUE(empty);
    CU_ASSERT_TRUE(ran >= 4);
    CU_ASSERT_EQUAL((size_t)ran, st.calls);
    CU_ASSERT_TRUE(st.after <= PARALLEL - 1);
    CU_ASSERT_EQUAL(res[3].exit_code, 0);  /* freed: zeroed */
    CU_ASSERT_TRUE(no_children());
}

/* 300 jobs, 8 at once: results in submission order, each reported once. */
static void test_order_and_progress(void)
{
    enum { N = 300 };
    zmp_options *jobs = calloc(N, sizeof *jobs);
    const char *(*argv)[4] = calloc(N, sizeof *argv);
    char (*arg)[16] = calloc(N, sizeof *arg);
    zmp_result *res = calloc(N, sizeof *res);
    zmp_info *info = calloc(N, sizeof *info);
    int *errs = calloc(N, sizeof *errs);
    struct seen s = { 0, calloc(N, 1) };
    char expect[32];
    size_t i, bad = 0;

    use_helper();
    for (i = 0; i < N; i++) {
        snprintf(arg[i], sizeof arg[i], "%zu", i);
        argv[i][0] = "echo";
        argv[i][1] = arg[i];
        argv[i][2] = NULL;
        jobs[i].argv = argv[i];
    }
    /* One that cannot start, one that fails, one that times out. */
    jobs[7].program = "/nonexistent/prog";
    argv[11][0] = "exit";
    argv[11][1] = "9";
    argv[13][0] = "sleep";
    argv[13][1] = "20000";
    jobs[13].timeout_ms = 100;
    CU_ASSERT_EQUAL_FATAL(zmp_run_batch(jobs, N, 8, res, info, errs, on_progress, &s), 0);
    CU_ASSERT_EQUAL(s.calls, N);
    for (i = 0; i < N; i++) {
        if (s.hit[i] != 1)
            bad++;
        if (i == 7 || i == 11 || i == 13)
            continue;
        snprintf(expect, sizeof expect, "%zu\n", i);
        if (errs[i] != 0 || !res[i].out || strcmp(res[i].out, expect) != 0)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(errs[7], -ENOENT);
    CU_ASSERT_PTR_NULL(res[7].out);
    CU_ASSERT_EQUAL(errs[11], 0);
    CU_ASSERT_EQUAL(res[11].exit_code, 9);
    CU_ASSERT_EQUAL(res[13].exit_code, -15);
    CU_ASSERT_TRUE(info[13].flags & ZMP_TIMED_OUT);
    for (i = 0; i < N; i++)
        zmp_result_free(&res[i]);
    CU_ASSERT_TRUE(no_children());
    free(jobs); free(argv); free(arg); free(res); free(info); free(errs); free(s.hit);
}

/* 1,000 jobs, 64 at once, each writing its own sizes to both streams:
 * every byte checked. */
static void test_many_both_streams(void)
{
    enum { N = 1000 };
    zmp_options *jobs = calloc(N, sizeof *jobs);
    const char *(*argv)[5] = calloc(N, sizeof *argv);
    char (*sz)[2][16] = calloc(N, sizeof *sz);
    zmp_result *res = calloc(N, sizeof *res);
    size_t i, k, bad = 0;

    use_helper();
    for (i = 0; i < N; i++) {
        snprintf(sz[i][0], 16, "%zu", (i * 7919) % 200000);
        snprintf(sz[i][1], 16, "%zu", (i * 104729) % 50000);
        argv[i][0] = "flood";
        argv[i][1] = sz[i][0];
        argv[i][2] = sz[i][1];
        jobs[i].argv = argv[i];
    }
    CU_ASSERT_EQUAL_FATAL(zmp_run_batch(jobs, N, 64, res, NULL, NULL, NULL, NULL), 0);
    for (i = 0; i < N; i++) {
        size_t no = strtoul(sz[i][0], NULL, 10), ne = strtoul(sz[i][1], NULL, 10);

        if (!res[i].out || res[i].out_len != no || res[i].err_len != ne ||
            res[i].output_len != no + ne || !res[i].ok) {
            bad++;
            continue;
        }
        for (k = 0; k < no; k++)
            bad += res[i].out[k] != (char)('a' + k % 26);
        for (k = 0; k < ne; k++)
            bad += res[i].err[k] != (char)('0' + k % 10);
        zmp_result_free(&res[i]);
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(jobs); free(argv); free(sz); free(res);
}

/* Short of descriptors under a soft limit: zmp raises it to the hard
 * limit, runs everything at once, and gives each child the caller's own
 * soft limit back. */
static void test_raise_nofile(void)
{
    enum { N = 40 };
    const char *argv[] = { "sh", "-c", "sleep 0.3; ulimit -n", NULL };
    struct rlimit old, rl;
    zmp_options jobs[N];
    zmp_result res[N];
    int errs[N], i, ok = 0;
    char want[32];

    getrlimit(RLIMIT_NOFILE, &old);
    zmp_deinit();
    rl = old;
    rl.rlim_cur = (rlim_t)count_fds() + 20;  /* room for ~4 jobs */
    if (rl.rlim_cur + 200 > rl.rlim_max) {
        test_skip("the hard RLIMIT_NOFILE is too low to raise into");
        return;
    }
    setrlimit(RLIMIT_NOFILE, &rl);
    snprintf(want, sizeof want, "%lu\n", (unsigned long)rl.rlim_cur);
    for (i = 0; i < N; i++)
        jobs[i] = (zmp_options){ .program = "/bin/sh", .argv = argv };
    i = zmp_run_batch(jobs, N, N, res, NULL, errs, NULL, NULL);
    getrlimit(RLIMIT_NOFILE, &rl);
    CU_ASSERT_EQUAL(rl.rlim_cur, old.rlim_max);  /* raised for zmp */
    setrlimit(RLIMIT_NOFILE, &old);
    CU_ASSERT_EQUAL_FATAL(i, 0);
    for (i = 0; i < N; i++) {
        ok += errs[i] == 0 && res[i].out && !strcmp(res[i].out, want);
        zmp_result_free(&res[i]);
    }
    CU_ASSERT_EQUAL(ok, N);
}

/* Too few descriptors for the jobs asked to run at once (the hard limit
 * too, so nothing can be raised): they queue until others finish, and all
 * succeed.  In a fresh process (child mode "queue"): a lowered hard limit
 * cannot always be raised again. */
static void test_queue_on_emfile(void)
{
    zmp_result res;

    CU_ASSERT_EQUAL_FATAL(zmp_set_interpreter(self_path()), 0);
    CU_ASSERT_EQUAL_FATAL(zmp_run("--child-queue", NULL, &res), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "queue: 0 ok: 60\n");
    if (res.exit_code)
        fprintf(stderr, "%s", res.err);
    zmp_result_free(&res);
    CU_ASSERT_EQUAL(zmp_run_batch(NULL, 3, 1, &res, NULL, NULL, NULL, NULL), -EINVAL);
    CU_ASSERT_EQUAL(zmp_run_batch(NULL, 0, 1, NULL, NULL, NULL, NULL, NULL), 0);
}

static int stop_now(void *arg, size_t index, int err, zmp_result *res,
                    const zmp_info *info)
{
    (void)arg; (void)index; (void)err; (void)res; (void)info;
    return 1;
}

/* A callback that runs the engine itself (zmp_sleep): jobs finishing
 * meanwhile are still collected, the batch does not hang. */
static int sleepy(void *arg, size_t index, int err, zmp_result *res,
                  const zmp_info *info)
{
    (void)index; (void)err; (void)res; (void)info;
    (*(int *)arg)++;
    zmp_sleep(30);
    return 0;
}

static void test_callback_edge_cases(void)
{
    const char *argv[] = { "echo", "x", NULL };
    zmp_options jobs[6];
    zmp_result res[6];
    int errs[6], calls = 0, i;

    use_helper();
    for (i = 0; i < 6; i++)
        jobs[i] = (zmp_options){ .argv = argv };
    jobs[0].program = "/nonexistent/prog";
    CU_ASSERT_EQUAL_FATAL(zmp_run_batch(jobs, 6, 1, res, NULL, errs, stop_now, NULL), 0);
    CU_ASSERT_EQUAL(errs[0], -ENOENT);
    for (i = 1; i < 6; i++)
        CU_ASSERT_EQUAL(errs[i], -ECANCELED);
    jobs[0].program = NULL;
    CU_ASSERT_EQUAL_FATAL(zmp_run_batch(jobs, 6, 6, res, NULL, errs, sleepy, &calls), 0);
    CU_ASSERT_EQUAL(calls, 6);
    for (i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(errs[i], 0);
        CU_ASSERT_STRING_EQUAL(res[i].out ? res[i].out : "", "x\n");
        zmp_result_free(&res[i]);
    }
}

/* Many timers at once, armed and cleared in mixed order: the sleepers
 * time out, the others finish first and their timers go away. */
static void test_many_timeouts(void)
{
    enum { N = 120 };
    const char *sleeper[] = { "sleep", "20000", NULL }, *quick[] = { "exit", "0", NULL };
    zmp_options jobs[N];
    zmp_result res[N];
    zmp_info info[N];
    int errs[N], i;

    use_helper();
    for (i = 0; i < N; i++)
        jobs[i] = (zmp_options){ .argv = i % 3 ? quick : sleeper,
                                 .timeout_ms = (i % 3 ? 30000 : 100) +
                                               (unsigned long)(i * 37 % 400) };
    CU_ASSERT_EQUAL_FATAL(zmp_run_batch(jobs, N, N, res, info, errs, NULL, NULL), 0);
    for (i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(errs[i], 0);
        if (i % 3) {
            CU_ASSERT_FALSE(info[i].flags & ZMP_TIMED_OUT);
            CU_ASSERT_EQUAL(res[i].exit_code, 0);
        } else {
            CU_ASSERT_TRUE(info[i].flags & ZMP_TIMED_OUT);
            CU_ASSERT_EQUAL(res[i].exit_code, -SIGTERM);
        }
        zmp_result_free(&res[i]);
    }
}

void add_batch_tests(void)
{
    CU_pSuite s = CU_add_suite("batch", suite_init, suite_clean);

    CU_add_test(s, "order, progress, errors", test_order_and_progress);
    CU_add_test(s, "1,000 jobs, both streams, every byte", test_many_both_streams);
    CU_add_test(s, "soft fd limit raised, restored in children", test_raise_nofile);
    CU_add_test(s, "queued on EMFILE", test_queue_on_emfile);
    CU_add_test(s, "progress stops the batch", test_stop);
    CU_add_test(s, "many timeouts at once", test_many_timeouts);
    CU_add_test(s, "callback stops at once, or runs the engine", test_callback_edge_cases);
    CU_add_test(s, "no leaks", test_no_leaks);
}
