/* SPDX-License-Identifier: MIT */
/* zmp_run_opts, zmp_start, zmp_collect: programs, env, cwd, caps,
 * timeouts, process groups, background jobs. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static void test_program(void)
{
    const char *argv[] = { "echo", "plain", "program", NULL };
    zmp_options o = { .program = "echo", .argv = argv };
    zmp_result res;
    zmp_info info;

    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, &info), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "plain program\n");
    CU_ASSERT_TRUE(res.ok);
    CU_ASSERT_EQUAL(info.flags, 0);
    CU_ASSERT_TRUE(info.pid > 0);
    CU_ASSERT_TRUE(info.seconds >= 0 && info.seconds < 30);
    zmp_result_free(&res);
    o.program = "/nonexistent/prog";
    CU_ASSERT_EQUAL(zmp_run_opts(&o, &res, NULL), -ENOENT);
}

/*
 * The resources a job used: CPU seconds and peak RSS, its own and those of
 * a child it waited for; the same through a batch (worker threads), and
 * through zmp_start/zmp_collect.  A quick job reports small figures.
 */
static void check_work(const zmp_info *info, double cpu, long kb)
{
    CU_ASSERT_TRUE(info->user_cpu + info->system_cpu >= cpu * 0.9);
    CU_ASSERT_TRUE(info->user_cpu >= cpu * 0.5);
    CU_ASSERT_TRUE(info->user_cpu + info->system_cpu < info->seconds + 0.05);
    CU_ASSERT_TRUE(info->max_rss_kb >= kb);
}

static void test_resources(void)
{
    enum { N = 4 };
    const char *own[] = { "work", "300", "64", NULL };
    const char *kid[] = { "work", "300", "64", "child", NULL };
    const char *quick[] = { "echo", "hi", NULL };
    zmp_options o = { .argv = own }, jobs[N];
    zmp_result res, batch[N];
    zmp_info info, infos[N];
    int h, i;

    use_helper();
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, &info), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "done\n");
    check_work(&info, 0.3, 64 * 1024);
    zmp_result_free(&res);

    o.argv = kid;
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, &info), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "done\n");
    check_work(&info, 0.3, 64 * 1024);
    zmp_result_free(&res);

    o.argv = quick;
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, &info), 0);
    CU_ASSERT_TRUE(info.user_cpu + info.system_cpu < 0.2);
    /* Not small: Linux counts the caller's own peak, whose memory the
     * child shared until exec (zmp_info(3)). */
    CU_ASSERT_TRUE(info.max_rss_kb > 0);
    zmp_result_free(&res);

    memset(jobs, 0, sizeof jobs);
    for (i = 0; i < N; i++)
        jobs[i].argv = i % 2 ? kid : own;
    CU_ASSERT_EQUAL_FATAL(zmp_run_batch(jobs, N, N, batch, infos, NULL, NULL, NULL), 0);
    for (i = 0; i < N; i++) {
        check_work(&infos[i], 0.3, 64 * 1024);
        zmp_result_free(&batch[i]);
    }

    o.argv = own;
    h = zmp_start(&o);
    CU_ASSERT_TRUE_FATAL(h > 0);
    CU_ASSERT_EQUAL_FATAL(zmp_collect(h, &res, &info), 0);
    check_work(&info, 0.3, 64 * 1024);
    zmp_result_free(&res);
}

/* The interpreter of one job, without touching the default. */
static void test_interpreter_per_job(void)
{
    const char *argv[] = { "-c", "echo \"$0\"", "zero", NULL };
    zmp_options o = { .interpreter = "/bin/sh", .argv = argv };
    zmp_result res;

    CU_ASSERT_EQUAL(zmp_set_interpreter("/nonexistent/zpy"), 0);
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, NULL), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "zero\n");
    zmp_result_free(&res);
    o.interpreter = NULL;
    CU_ASSERT_EQUAL(zmp_run_opts(&o, &res, NULL), -ENOENT);
}

static void test_env(void)
{
    const char *sh[] = { "sh", "-c", "echo \"$ZMP_T1|$ZMP_T2|${HOME:+home}\"", NULL };
    const char *env_add[] = { "ZMP_T1=one", "ZMP_T2=two", NULL };
    const char *envv[] = { "env", NULL };
    const char *env_only[] = { "ONLY=this", NULL };
    zmp_options o = { .program = "/bin/sh", .argv = sh, .env = env_add };
    zmp_result res;

    setenv("ZMP_T2", "caller", 1);
    setenv("HOME", "/root", 0);
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, NULL), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "one|two|home\n");  /* added, overridden, kept */
    zmp_result_free(&res);
    unsetenv("ZMP_T2");
    o = (zmp_options){ .program = "/usr/bin/env", .argv = envv, .env = env_only,
                       .flags = ZMP_ENV_REPLACE };
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, NULL), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "ONLY=this\n");
    zmp_result_free(&res);
}

static void test_cwd(void)
{
    const char *argv[] = { "pwd", NULL };
    zmp_options o = { .program = "/bin/pwd", .argv = argv, .cwd = tmp_dir() };
    char expect[4200];
    zmp_result res;

    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, NULL), 0);
    snprintf(expect, sizeof expect, "%s\n", tmp_dir());
    CU_ASSERT_STRING_EQUAL(res.out, expect);
    zmp_result_free(&res);
    o.cwd = "/nonexistent/dir";
    CU_ASSERT_EQUAL(zmp_run_opts(&o, &res, NULL), -ENOENT);
    CU_ASSERT_TRUE(no_children());
}

/* Past the cap, bytes are read and dropped: the child finishes, memory
 * stays bounded, the result says so. */
static void test_output_cap(void)
{
    const char *argv[] = { "flood", "10485760", "3000", NULL };
    zmp_options o = { .argv = argv, .output_cap = 1000 };
    size_t i, bad = 0;
    zmp_result res;
    zmp_info info;

    use_helper();
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, &info), 0);
    CU_ASSERT_TRUE(res.ok);
    CU_ASSERT_EQUAL(res.out_len, 1000);
    CU_ASSERT_EQUAL(res.err_len, 1000);
    CU_ASSERT_EQUAL(res.output_len, 2000);
    CU_ASSERT_TRUE(info.flags & ZMP_TRUNCATED);
    for (i = 0; i < res.out_len; i++)
        bad += res.out[i] != (char)('a' + i % 26);
    CU_ASSERT_EQUAL(bad, 0);
    zmp_result_free(&res);
    o.output_cap = 10485760;  /* exactly enough: nothing dropped */
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, &info), 0);
    CU_ASSERT_EQUAL(res.out_len, 10485760);
    CU_ASSERT_EQUAL(res.err_len, 3000);
    CU_ASSERT_FALSE(info.flags & ZMP_TRUNCATED);
    zmp_result_free(&res);
}

static void test_timeout(void)
{
    const char *argv[] = { "sleep", "20000", NULL };
    zmp_options o = { .argv = argv, .timeout_ms = 200 };
    zmp_result res;
    zmp_info info;

    use_helper();
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, &info), 0);
    CU_ASSERT_EQUAL(res.exit_code, -SIGTERM);
    CU_ASSERT_TRUE(info.flags & ZMP_TIMED_OUT);
    CU_ASSERT_TRUE(info.seconds >= 0.2 && info.seconds < 5);
    zmp_result_free(&res);
    /* A quick child is not affected. */
    argv[1] = "10";
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, &info), 0);
    CU_ASSERT_EQUAL(res.exit_code, 0);
    CU_ASSERT_EQUAL(info.flags, 0);
    zmp_result_free(&res);
}

/* A child that ignores SIGTERM, in its own group with a grandchild that
 * ignores it too: the sequence ends in SIGKILL for the whole group, and
 * every byte written before stays. */
static void test_term_seq_group(void)
{
    const char *argv[] = { "sh", "-c", "trap '' TERM; echo started; sleep 30 & wait", NULL };
    zmp_term_step seq[] = { { SIGTERM, 100 }, { SIGTERM, 100 } };
    zmp_options o = { .program = "/bin/sh", .argv = argv, .timeout_ms = 100,
                      .term_seq = seq, .term_seq_len = 2, .flags = ZMP_NEW_PGROUP };
    zmp_result res;
    zmp_info info;

    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, &info), 0);
    CU_ASSERT_EQUAL(res.exit_code, -SIGKILL);
    CU_ASSERT_STRING_EQUAL(res.out, "started\n");
    CU_ASSERT_TRUE(info.flags & ZMP_TIMED_OUT);
    CU_ASSERT_TRUE(info.seconds >= 0.3 && info.seconds < 5);
    zmp_result_free(&res);
    CU_ASSERT_TRUE(no_children());
}

/* The child exits at once, a grandchild keeps the pipes for 3 s: with a
 * timeout set, the run ends after the drain grace and says so. */
static void test_pipes_held(void)
{
    const char *argv[] = { "grandchild", "3000", NULL };
    zmp_options o = { .argv = argv, .timeout_ms = 10000, .drain_ms = 100 };
    zmp_result res;
    zmp_info info;

    use_helper();
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, &info), 0);
    CU_ASSERT_EQUAL(res.exit_code, 0);
    CU_ASSERT_TRUE(info.flags & ZMP_PIPES_HELD);
    CU_ASSERT_FALSE(info.flags & ZMP_TIMED_OUT);
    CU_ASSERT_TRUE(info.seconds < 2);
    zmp_result_free(&res);
}

/* Captured jobs in the background: start, keep working, poll, collect. */
static void test_background_jobs(void)
{
    const char *a1[] = { "echo", "first", NULL }, *a2[] = { "exit", "6", NULL };
    const char *a3[] = { "sleep", "30000", NULL };
    zmp_options o1 = { .argv = a1 }, o2 = { .argv = a2 }, o3 = { .argv = a3 };
    int h1, h2, h3, code = -1, r;
    zmp_result res;
    zmp_info info;

    use_helper();
    h1 = zmp_start(&o1);
    h2 = zmp_start(&o2);
    h3 = zmp_start(&o3);
    CU_ASSERT_TRUE_FATAL(h1 > 0 && h2 > 0 && h3 > 0);
    while ((r = zmp_poll(h1, &code)) == 0)
        CU_ASSERT_EQUAL(zmp_sleep(5), 0);
    CU_ASSERT_EQUAL(r, 1);
    CU_ASSERT_EQUAL(code, 0);
    CU_ASSERT_EQUAL(zmp_poll(h3, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(zmp_collect(h1, &res, &info), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "first\n");
    zmp_result_free(&res);
    CU_ASSERT_EQUAL(zmp_collect(h1, &res, NULL), -ECHILD);
    CU_ASSERT_EQUAL(zmp_wait(h2, &code), 0);  /* the code; output dropped */
    CU_ASSERT_EQUAL(code, 6);
    CU_ASSERT_EQUAL(zmp_kill(h3), 0);
    CU_ASSERT_EQUAL(zmp_collect(h3, &res, NULL), -ECHILD);
    CU_ASSERT_TRUE(no_children());
}

/* Bytes fed on stdin while the child writes them back: 32 MiB through cat
 * cannot deadlock, and come back exactly. */
static void test_input(void)
{
    const char *cat[] = { "cat", NULL };
    const char *head[] = { "sh", "-c", "sleep 0.2; head -c 5", NULL };
    const char *noread[] = { "exit", "0", NULL };
    size_t n = 32u << 20, i;
    char *data = malloc(n);
    zmp_options o = { .program = "cat", .argv = cat, .input = "hello\n", .input_len = 6 };
    zmp_result res;

    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, NULL), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "hello\n");
    zmp_result_free(&res);
    for (i = 0; i < n; i++)
        data[i] = (char)(i * 7 + i / 4099);
    o.input = data;
    o.input_len = n;
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(res.out_len, n);
    CU_ASSERT_EQUAL(memcmp(res.out, data, n), 0);
    zmp_result_free(&res);
    /* A child that reads 5 bytes late, then leaves: no error, no SIGPIPE. */
    o = (zmp_options){ .program = "/bin/sh", .argv = head, .input = data, .input_len = n };
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, NULL), 0);
    CU_ASSERT_EQUAL(res.out_len, 5);
    CU_ASSERT_EQUAL(memcmp(res.out, data, 5), 0);
    CU_ASSERT_TRUE(res.ok);
    zmp_result_free(&res);
    /* One that never reads it. */
    use_helper();
    o = (zmp_options){ .argv = noread, .input = data, .input_len = n };
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, NULL), 0);
    CU_ASSERT_TRUE(res.ok);
    zmp_result_free(&res);
    free(data);
}

/* A caller that only polls still gets its timeouts. */
static void test_timeout_while_polling(void)
{
    const char *argv[] = { "sleep", "20000", NULL };
    zmp_options o = { .argv = argv, .timeout_ms = 100 };
    int h, r, code = 0, loops = 0;
    zmp_info info;
    zmp_result res;

    use_helper();
    h = zmp_start(&o);
    CU_ASSERT_TRUE_FATAL(h > 0);
    while ((r = zmp_poll(h, &code)) == 0 && loops++ < 2000)
        usleep(2000);
    CU_ASSERT_EQUAL(r, 1);
    CU_ASSERT_EQUAL(code, -SIGTERM);
    CU_ASSERT_EQUAL(zmp_collect(h, &res, &info), 0);
    CU_ASSERT_TRUE(info.flags & ZMP_TIMED_OUT);
    CU_ASSERT_TRUE(info.seconds < 5);
    zmp_result_free(&res);
}

/* Huge durations saturate instead of wrapping into the past. */
static void test_huge_timeout(void)
{
    const char *argv[] = { "exit", "3", NULL };
    zmp_options o = { .argv = argv, .timeout_ms = (unsigned long)-1, .drain_ms = (unsigned long)-1 };
    zmp_result res;
    zmp_info info;

    use_helper();
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, &info), 0);
    CU_ASSERT_EQUAL(res.exit_code, 3);
    CU_ASSERT_FALSE(info.flags & ZMP_TIMED_OUT);
    zmp_result_free(&res);
}

/* Uncaptured: the exit code still comes back. */
static void test_no_capture_code(void)
{
    const char *argv[] = { "exit", "7", NULL };
    zmp_options o = { .argv = argv, .flags = ZMP_NO_CAPTURE };
    zmp_result res;

    use_helper();
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, NULL), 0);
    CU_ASSERT_EQUAL(res.exit_code, 7);
    CU_ASSERT_FALSE(res.ok);
    CU_ASSERT_PTR_NULL(res.out);
    zmp_result_free(&res);
}

/* zmp_wait on a captured job waits for the exit, not for a grandchild
 * that keeps the pipes. */
static void test_wait_captured_job(void)
{
    const char *argv[] = { "grandchild", "3000", NULL };
    zmp_options o = { .argv = argv };
    struct timespec t0, t1;
    int h, code = -1;

    use_helper();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    h = zmp_start(&o);
    CU_ASSERT_TRUE_FATAL(h > 0);
    CU_ASSERT_EQUAL(zmp_wait(h, &code), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CU_ASSERT_EQUAL(code, 0);
    CU_ASSERT_TRUE(t1.tv_sec - t0.tv_sec < 2);
}

/* Descendants that escape with setsid die with the job's cgroup, whose
 * directory is removed after; with a timeout, escaped pipe holders do not
 * keep the run waiting. */
static void test_cgroup(void)
{
    const char *esc[] = { "sh", "-c", "setsid sleep 30 </dev/null >/dev/null 2>&1 & echo $!", NULL };
    const char *hold[] = { "sh", "-c", "setsid sleep 30 & echo held", NULL };
    zmp_options o = { .program = "/bin/sh", .argv = esc };
    char *dir = test_cgroup_dir(), stat[64], buf[512], state = 0;
    zmp_result res;
    zmp_info info;
    int pid, i;
    FILE *f;

    if (!dir) {
        test_skip("no writable cgroup v2 hierarchy");
        return;
    }
    o.cgroup = dir;
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, NULL), 0);
    pid = atoi(res.out);
    zmp_result_free(&res);
    CU_ASSERT_TRUE_FATAL(pid > 0);
    /* Gone, or a zombie waiting for whoever adopted it. */
    snprintf(stat, sizeof stat, "/proc/%d/stat", pid);
    for (i = 0; i < 100; i++) {
        f = fopen(stat, "r");
        state = 'X';
        if (f && fgets(buf, sizeof buf, f) && strrchr(buf, ')'))
            state = strrchr(buf, ')')[2];
        if (f)
            fclose(f);
        if (state == 'X' || state == 'Z')
            break;
        usleep(10000);
    }
    CU_ASSERT_TRUE(state == 'X' || state == 'Z');
    o.argv = hold;
    o.timeout_ms = 5000;
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, &info), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "held\n");
    CU_ASSERT_TRUE(info.seconds < 3);
    zmp_result_free(&res);
    zmp_deinit();
    CU_ASSERT_EQUAL(rmdir(dir), 0);  /* the jobs' cgroups are gone */
    o.cgroup = "/nonexistent/cgroup";
    CU_ASSERT_EQUAL(zmp_run_opts(&o, &res, NULL), -ENOENT);
    free(dir);
}

static void test_bad_options(void)
{
    const char *empty[] = { NULL }, *argv[] = { "x", NULL };
    zmp_options o = { 0 };
    zmp_result res;

    CU_ASSERT_EQUAL(zmp_run_opts(NULL, &res, NULL), -EINVAL);
    CU_ASSERT_EQUAL(zmp_run_opts(&o, &res, NULL), -EINVAL);
    o.argv = empty;
    CU_ASSERT_EQUAL(zmp_run_opts(&o, &res, NULL), -EINVAL);
    CU_ASSERT_EQUAL(zmp_start(&o), -EINVAL);
    o.argv = argv;
    CU_ASSERT_EQUAL(zmp_run_opts(&o, NULL, NULL), -EINVAL);
    o.flags = 1u << 20;
    CU_ASSERT_EQUAL(zmp_run_opts(&o, &res, NULL), -EINVAL);
    o.flags = 0;
    o.term_seq_len = 2;
    CU_ASSERT_EQUAL(zmp_run_opts(&o, &res, NULL), -EINVAL);
    CU_ASSERT_EQUAL(zmp_collect(0, &res, NULL), -ECHILD);
    CU_ASSERT_TRUE(no_children());
}

void add_options_tests(void)
{
    CU_pSuite s = CU_add_suite("options and background jobs", suite_init, suite_clean);

    CU_add_test(s, "a program with its own argv", test_program);
    CU_add_test(s, "resources used", test_resources);
    CU_add_test(s, "interpreter per job", test_interpreter_per_job);
    CU_add_test(s, "environment added and replaced", test_env);
    CU_add_test(s, "working directory", test_cwd);
    CU_add_test(s, "output cap", test_output_cap);
    CU_add_test(s, "timeout", test_timeout);
    CU_add_test(s, "signal sequence to a process group", test_term_seq_group);
    CU_add_test(s, "pipes held by a grandchild", test_pipes_held);
    CU_add_test(s, "background captured jobs", test_background_jobs);
    CU_add_test(s, "stdin fed through the engine", test_input);
    CU_add_test(s, "timeouts fire for a polling caller", test_timeout_while_polling);
    CU_add_test(s, "huge durations saturate", test_huge_timeout);
    CU_add_test(s, "uncaptured run returns its code", test_no_capture_code);
    CU_add_test(s, "wait on a captured job", test_wait_captured_job);
    CU_add_test(s, "a cgroup per job", test_cgroup);
    CU_add_test(s, "bad options", test_bad_options);
    CU_add_test(s, "no leaks", test_no_leaks);
}
