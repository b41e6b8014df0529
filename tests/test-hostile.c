/* SPDX-License-Identifier: MIT */
/*
 * Real hostile conditions, beyond what test-run (EMFILE, RLIMIT_NPROC),
 * test-options (a grandchild holding the pipes under a timeout) and
 * test-misc (a thread's signal storm over sleep, spawn+wait and run)
 * cover: a child killed mid-write, a child that closes its stdout and
 * runs on, and a storm of signals from another process over every
 * blocking call at once: batches, stdin feeding, collect.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Byte i of the helper's stdout flood. */
static bool flood_prefix(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (s[i] != (char)('a' + i % 26))
            return false;
    return true;
}

/* The child dies by SIGKILL after 3 MiB: every byte it wrote is there. */
static void test_killed_mid_write_self(void)
{
    const char *args[] = { "3145728", NULL };
    zmp_result res;

    use_helper();
    CU_ASSERT_EQUAL_FATAL(zmp_run("dieafter", args, &res), 0);
    CU_ASSERT_EQUAL(res.exit_code, -SIGKILL);
    CU_ASSERT_FALSE(res.ok);
    CU_ASSERT_EQUAL(res.out_len, 3145728);
    CU_ASSERT_TRUE(flood_prefix(res.out, res.out_len));
    CU_ASSERT_EQUAL(res.err_len, 0);
    zmp_result_free(&res);
}

/* Killed from outside in the middle of an endless write: what was read is
 * an exact prefix of what it wrote. */
static void test_killed_mid_write_timeout(void)
{
    const char *argv[] = { "flood", "1099511627776", "0", NULL };
    const zmp_term_step seq[] = { { SIGKILL, 0 } };
    zmp_options o = { .argv = argv, .timeout_ms = 150, .term_seq = seq,
                      .term_seq_len = 1 };
    zmp_result res;
    zmp_info info;

    use_helper();
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, &info), 0);
    CU_ASSERT_EQUAL(res.exit_code, -SIGKILL);
    CU_ASSERT_TRUE(info.flags & ZMP_TIMED_OUT);
    CU_ASSERT_TRUE(res.out_len > 0);
    CU_ASSERT_TRUE(flood_prefix(res.out, res.out_len));
    zmp_result_free(&res);
}

/* stdout closed early, the child runs on and writes to stderr: the run
 * waits for the exit, not for stdout's end of file. */
static void test_stdout_closed_early(void)
{
    const char *args[] = { "300", NULL };
    const char *argv[] = { "closeout", "300", NULL };
    zmp_options o = { .argv = argv };
    zmp_result res;
    int64_t t0;
    int h, r, code = -1;

    use_helper();
    t0 = now_ms();
    CU_ASSERT_EQUAL_FATAL(zmp_run("closeout", args, &res), 0);
    CU_ASSERT_TRUE(now_ms() - t0 >= 300);
    CU_ASSERT_EQUAL(res.exit_code, 0);
    CU_ASSERT_STRING_EQUAL(res.out, "before\n");
    CU_ASSERT_STRING_EQUAL(res.err, "after\n");
    CU_ASSERT_STRING_EQUAL(res.output, "before\nafter\n");
    zmp_result_free(&res);

    /* In the background: not done while it runs with stdout closed. */
    h = zmp_start(&o);
    CU_ASSERT_FATAL(h > 0);
    CU_ASSERT_EQUAL(zmp_sleep(100), 0);
    CU_ASSERT_EQUAL(zmp_poll(h, &code), 0);
    CU_ASSERT_EQUAL(zmp_collect(h, &res, NULL), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "before\n");
    CU_ASSERT_STRING_EQUAL(res.err, "after\n");
    zmp_result_free(&res);
    r = zmp_poll(h, &code);
    CU_ASSERT_EQUAL(r, -ECHILD);
}

static int hits;  /* atomic: the handler may run on any thread */

static void on_usr1(int sig)
{
    int saved = errno;

    (void)sig;
    __atomic_add_fetch(&hits, 1, __ATOMIC_RELAXED);
    errno = saved;
}

/* Another process sends SIGUSR1 to the whole process every 200 us: any
 * thread may take it, and a handler without SA_RESTART makes every
 * blocking call of the library fail with EINTR, again and again. */
static pid_t start_storm(void)
{
    pid_t parent = getpid(), pid = fork();
    struct timespec tick = { 0, 200000 };

    if (pid == 0) {
        for (;;) {
            if (kill(parent, SIGUSR1) < 0)
                _exit(0);
            nanosleep(&tick, NULL);
        }
    }
    return pid;
}

static void stop_storm(pid_t pid)
{
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

static void test_process_storm(void)
{
    enum { NJOBS = 8, INPUT = 1 << 20 };
    struct sigaction sa = { .sa_handler = on_usr1 }, old;  /* no SA_RESTART */
    const char *argv[NJOBS][4], *in_argv[] = { "stdin", NULL };
    const char *fl_argv[] = { "flood", "4194304", "2097152", NULL };
    const char *sl[] = { "100", NULL };
    char words[NJOBS][8], want[32];
    zmp_options jobs[NJOBS], in = { .argv = in_argv }, fl = { .argv = fl_argv };
    zmp_result rs[NJOBS], res;
    int errs[NJOBS], i, h, code = -1;
    char *data = malloc(INPUT);
    int64_t t0;
    pid_t storm;

    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    memset(data, 'x', INPUT);
    in.input = data;
    in.input_len = INPUT;
    for (i = 0; i < NJOBS; i++) {
        snprintf(words[i], sizeof words[i], "w%d", i);
        argv[i][0] = "sleep";
        argv[i][1] = "50";
        argv[i][2] = words[i];
        argv[i][3] = NULL;
        jobs[i] = (zmp_options){ .argv = argv[i] };
    }
    use_helper();
    sigaction(SIGUSR1, &sa, &old);
    __atomic_store_n(&hits, 0, __ATOMIC_RELAXED);
    storm = start_storm();
    CU_ASSERT_FATAL(storm > 0);

    CU_ASSERT_EQUAL(zmp_run_batch(jobs, NJOBS, 4, rs, NULL, errs, NULL, NULL), 0);
    for (i = 0; i < NJOBS; i++) {
        snprintf(want, sizeof want, "w%d\n", i);
        CU_ASSERT_EQUAL(errs[i], 0);
        CU_ASSERT_STRING_EQUAL(rs[i].out ? rs[i].out : "", want);
        zmp_result_free(&rs[i]);
    }
    CU_ASSERT_EQUAL(zmp_run_opts(&in, &res, NULL), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "1048576\n");
    zmp_result_free(&res);
    h = zmp_start(&fl);
    CU_ASSERT_FATAL(h > 0);
    CU_ASSERT_EQUAL(zmp_collect(h, &res, NULL), 0);
    CU_ASSERT_EQUAL(res.out_len, 4194304);
    CU_ASSERT_EQUAL(res.err_len, 2097152);
    CU_ASSERT_EQUAL(res.output_len, 6291456);
    CU_ASSERT_TRUE(flood_prefix(res.out, res.out_len));
    zmp_result_free(&res);
    t0 = now_ms();
    CU_ASSERT_EQUAL(zmp_sleep(100), 0);
    CU_ASSERT_TRUE(now_ms() - t0 >= 100);
    h = zmp_spawn("sleep", sl);
    CU_ASSERT_FATAL(h > 0);
    CU_ASSERT_EQUAL(zmp_wait(h, &code), 0);
    CU_ASSERT_EQUAL(code, 0);

    stop_storm(storm);
    sigaction(SIGUSR1, &old, NULL);
    free(data);
    CU_ASSERT_TRUE(__atomic_load_n(&hits, __ATOMIC_RELAXED) > 50);
}

void add_hostile_tests(void)
{
    CU_pSuite s = CU_add_suite("hostile", suite_init, suite_clean);

    CU_add_test(s, "killed mid-write by itself", test_killed_mid_write_self);
    CU_add_test(s, "killed mid-write by a timeout", test_killed_mid_write_timeout);
    CU_add_test(s, "stdout closed, child runs on", test_stdout_closed_early);
    CU_add_test(s, "signal storm from another process", test_process_storm);
    CU_add_test(s, "no leaks", test_no_leaks);
}
