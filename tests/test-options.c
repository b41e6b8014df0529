/* SPDX-License-Identifier: MIT */
/* zmp_run_opts, zmp_start, zmp_collect: programs, env, cwd, caps,
 * timeouts, process groups, background jobs, jobs that die with their
 * parent. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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

/* ZMP_NO_MERGED: out and err whole, `output` NULL whatever the streams
 * held, in a run, a background job and a batch; freeing is as ever. */
static void check_unmerged(const zmp_result *res, size_t no, size_t ne)
{
    size_t i, bad = 0;

    CU_ASSERT_TRUE(res->ok);
    CU_ASSERT_PTR_NULL(res->output);
    CU_ASSERT_EQUAL(res->output_len, 0);
    CU_ASSERT_EQUAL_FATAL(res->out_len, no);
    CU_ASSERT_EQUAL_FATAL(res->err_len, ne);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res->out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res->err);
    for (i = 0; i < no; i++)
        bad += res->out[i] != (char)('a' + i % 26);
    for (i = 0; i < ne; i++)
        bad += res->err[i] != (char)('0' + i % 10);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(res->out[no], '\0');
    CU_ASSERT_EQUAL(res->err[ne], '\0');
}

static void test_no_merged(void)
{
    const char *both[] = { "flood", "300000", "200000", NULL };
    const char *one[] = { "flood", "70000", "0", NULL };
    const char *none[] = { "exit", "0", NULL };
    zmp_options o = { .argv = both, .flags = ZMP_NO_MERGED }, jobs[3];
    zmp_result res, rs[3];
    int errs[3], h;

    use_helper();
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, NULL), 0);
    check_unmerged(&res, 300000, 200000);
    zmp_result_free(&res);
    o.argv = one;
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, NULL), 0);
    check_unmerged(&res, 70000, 0);
    zmp_result_free(&res);
    o.argv = both;
    h = zmp_start(&o);
    CU_ASSERT_TRUE_FATAL(h > 0);
    CU_ASSERT_EQUAL_FATAL(zmp_collect(h, &res, NULL), 0);
    check_unmerged(&res, 300000, 200000);
    zmp_result_free(&res);
    jobs[0] = o;
    jobs[1] = o;
    jobs[1].argv = none;
    jobs[2] = o;
    jobs[2].flags = 0;  /* the merged output is per job */
    CU_ASSERT_EQUAL_FATAL(zmp_run_batch(jobs, 3, 3, rs, NULL, errs, NULL, NULL), 0);
    CU_ASSERT_TRUE(errs[0] == 0 && errs[1] == 0 && errs[2] == 0);
    check_unmerged(&rs[0], 300000, 200000);
    check_unmerged(&rs[1], 0, 0);
    CU_ASSERT_EQUAL(rs[2].output_len, 500000);
    CU_ASSERT_PTR_NOT_NULL(rs[2].output);
    for (h = 0; h < 3; h++)
        zmp_result_free(&rs[h]);
    CU_ASSERT_TRUE(no_children());
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
/* ZMP_STDIN_FD: the child reads a pipe the caller writes while it runs;
 * the caller's own end stays its own. */
static void test_stdin_fd(void)
{
    const char *cat[] = { "cat", NULL };
    zmp_options o = { .program = "cat", .argv = cat, .flags = ZMP_STDIN_FD };
    zmp_result res;
    int p[2], h, i, code;

    CU_ASSERT_EQUAL_FATAL(pipe2(p, O_CLOEXEC), 0);
    o.stdin_fd = p[0];
    h = zmp_start(&o);
    CU_ASSERT_FATAL(h > 0);
    close(p[0]);
    for (i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(write(p[1], "piece\n", 6), 6);
    CU_ASSERT_EQUAL(zmp_poll(h, &code), 0);  /* still reading: stdin is open */
    close(p[1]);
    CU_ASSERT_EQUAL_FATAL(zmp_collect(h, &res, NULL), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "piece\npiece\npiece\n");
    zmp_result_free(&res);
    /* Not with input; a negative fd. */
    o.input = "x";
    o.input_len = 1;
    CU_ASSERT_EQUAL(zmp_run_opts(&o, &res, NULL), -EINVAL);
    o.input = NULL;
    o.input_len = 0;
    o.stdin_fd = -1;
    CU_ASSERT_EQUAL(zmp_run_opts(&o, &res, NULL), -EBADF);
    /* fd 0 itself: a file there. */
    o.stdin_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    CU_ASSERT_FATAL(o.stdin_fd >= 0);
    {
        const char *wc[] = { "sh", "-c", "head -c 4 | od -An -c | tr -d ' \n'", NULL };

        o.program = "/bin/sh";
        o.argv = wc;
        CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, NULL), 0);
        CU_ASSERT_STRING_EQUAL(res.out, "177ELF");
        zmp_result_free(&res);
    }
    close(o.stdin_fd);
}

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

/* --- ZMP_DIE_WITH_PARENT ----------------------------------------------- */

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

#define PDEATH_JOBS 4

static int next_of_four(void *arg, size_t i, zmp_options *job, int *wait_fd)
{
    (void)wait_fd;
    if (i >= PDEATH_JOBS)
        return ZMP_STREAM_END;
    *job = *(const zmp_options *)arg;
    return ZMP_STREAM_JOB;
}

/*
 * `zmp-test --child-pdeath HOW`: start jobs that print their pid on our
 * stdout and sleep a minute, and wait to be killed.  HOW is "start" (one
 * job, zmp_start from this thread), "batch" or "stream" (four at once,
 * each leading a process group, started by worker threads where there
 * are two CPUs or more), with "+die" for ZMP_DIE_WITH_PARENT.
 */
int options_child_mode(const char *mode, const char *arg)
{
    const char *argv[] = { "helper", "pid", "60000", NULL };
    zmp_options o = { .program = helper_path(), .argv = argv, .flags = ZMP_NO_CAPTURE };
    zmp_options jobs[PDEATH_JOBS];
    zmp_result res[PDEATH_JOBS];
    size_t i;

    if (strcmp(mode, "pdeath"))
        return -1;
    if (!arg)
        return 2;
    if (strstr(arg, "+die"))
        o.flags |= ZMP_DIE_WITH_PARENT;
    if (!strncmp(arg, "start", 5)) {
        if (zmp_start(&o) < 0)
            return 3;
    } else if (!strncmp(arg, "batch", 5)) {
        o.flags |= ZMP_NEW_PGROUP;
        for (i = 0; i < PDEATH_JOBS; i++)
            jobs[i] = o;
        zmp_run_batch(jobs, PDEATH_JOBS, PDEATH_JOBS, res, NULL, NULL, NULL, NULL);
    } else if (!strncmp(arg, "stream", 6)) {
        o.flags |= ZMP_NEW_PGROUP;
        zmp_run_stream(PDEATH_JOBS, next_of_four, NULL, &o);
    } else {
        return 2;
    }
    for (;;)
        pause();
}

/*
 * Run `zmp-test --child-pdeath how`, read the pids of its n jobs, kill it
 * with SIGKILL, and return how many jobs are still alive ms milliseconds
 * later (at once when none is), or -1 when not all started.  The jobs
 * are then killed through pidfds and reaped: this process is their
 * subreaper meanwhile, so the orphans come back to it.
 */
static int survivors(const char *how, int n, int ms)
{
    struct pollfd pfd[PDEATH_JOBS];
    int pipefd[2], i, started, alive = 0, waited;
    char line[32];
    pid_t mid, pid[PDEATH_JOBS];
    siginfo_t si;
    FILE *f;

    CU_ASSERT_EQUAL_FATAL(prctl(PR_SET_CHILD_SUBREAPER, 1UL, 0UL, 0UL, 0UL), 0);
    CU_ASSERT_EQUAL_FATAL(pipe(pipefd), 0);
    mid = fork();
    CU_ASSERT_TRUE_FATAL(mid >= 0);
    if (mid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        close(pipefd[1]);
        execl(self_path(), self_path(), "--child-pdeath", how, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    f = fdopen(pipefd[0], "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (started = 0; started < n; started++) {
        if (!fgets(line, sizeof line, f) || (pid[started] = atoi(line)) <= 0)
            break;
        /* The job is the middle process's child, not reaped while that
         * lives: its pid cannot have been reused. */
        pfd[started].fd = (int)syscall(SYS_pidfd_open, pid[started], 0);
        pfd[started].events = POLLIN;
        CU_ASSERT_TRUE(pfd[started].fd >= 0);
    }
    fclose(f);
    kill(mid, SIGKILL);
    CU_ASSERT_EQUAL(waitpid(mid, NULL, 0), mid);
    CU_ASSERT_EQUAL(started, n);
    /* A pidfd is readable once its process has exited. */
    for (waited = 0; waited <= ms; waited += 10) {
        for (i = 0, alive = 0; i < started; i++)
            alive += pfd[i].fd >= 0 && poll(&pfd[i], 1, 0) == 0;
        if (alive == 0)
            break;
        usleep(10000);
    }
    for (i = 0; i < started; i++) {
        if (pfd[i].fd >= 0) {
            syscall(SYS_pidfd_send_signal, pfd[i].fd, SIGKILL, NULL, 0U);
            close(pfd[i].fd);
        }
        /* Ours now: reaped here, dead of SIGKILL from either side. */
        memset(&si, 0, sizeof si);
        CU_ASSERT_EQUAL(waitid(P_PID, (id_t)pid[i], &si, WEXITED), 0);
        CU_ASSERT_EQUAL(si.si_code, CLD_KILLED);
        CU_ASSERT_EQUAL(si.si_status, SIGKILL);
    }
    CU_ASSERT_EQUAL(prctl(PR_SET_CHILD_SUBREAPER, 0UL, 0UL, 0UL, 0UL), 0);
    return started == n ? alive : -1;
}

/* The caller killed by SIGKILL takes its jobs along, whichever thread
 * started them: this one (zmp_start) or a worker's (a batch or stream
 * with four at once).  Without the flag they outlive it. */
static void test_die_with_parent(void)
{
    int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);

    if (fd < 0) {
        test_skip("no pidfd_open (Linux 5.3)");
        return;
    }
    close(fd);
    CU_ASSERT_EQUAL(survivors("start+die", 1, 5000), 0);
    CU_ASSERT_EQUAL(survivors("batch+die", PDEATH_JOBS, 5000), 0);
    CU_ASSERT_EQUAL(survivors("stream+die", PDEATH_JOBS, 5000), 0);
    CU_ASSERT_EQUAL(survivors("start", 1, 200), 1);
    CU_ASSERT_EQUAL(survivors("stream", PDEATH_JOBS, 200), PDEATH_JOBS);
    CU_ASSERT_TRUE(no_children());
}

static void *start_job(void *arg)
{
    return (void *)(intptr_t)zmp_start(arg);
}

/* The signal follows the thread that started the job: one started by a
 * thread that then exits is killed, one without the flag runs on. */
static void test_die_with_thread(void)
{
    const char *argv[] = { "helper", "sleep", "60000", NULL };
    zmp_options o = { .program = helper_path(), .argv = argv,
                      .flags = ZMP_DIE_WITH_PARENT };
    pthread_t t;
    void *ret;
    int h, code = 0;

    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, start_job, &o), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_join(t, &ret), 0);
    h = (int)(intptr_t)ret;
    CU_ASSERT_TRUE_FATAL(h > 0);
    CU_ASSERT_EQUAL(zmp_wait(h, &code), 0);
    CU_ASSERT_EQUAL(code, -SIGKILL);
    o.flags = 0;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, start_job, &o), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_join(t, &ret), 0);
    h = (int)(intptr_t)ret;
    CU_ASSERT_TRUE_FATAL(h > 0);
    usleep(100000);
    CU_ASSERT_EQUAL(zmp_poll(h, &code), 0);
    CU_ASSERT_EQUAL(zmp_kill(h), 0);
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
    CU_add_test(s, "no merged output (ZMP_NO_MERGED)", test_no_merged);
    CU_add_test(s, "timeout", test_timeout);
    CU_add_test(s, "signal sequence to a process group", test_term_seq_group);
    CU_add_test(s, "pipes held by a grandchild", test_pipes_held);
    CU_add_test(s, "background captured jobs", test_background_jobs);
    CU_add_test(s, "stdin fed through the engine", test_input);
    CU_add_test(s, "stdin from the caller's descriptor", test_stdin_fd);
    CU_add_test(s, "timeouts fire for a polling caller", test_timeout_while_polling);
    CU_add_test(s, "huge durations saturate", test_huge_timeout);
    CU_add_test(s, "uncaptured run returns its code", test_no_capture_code);
    CU_add_test(s, "wait on a captured job", test_wait_captured_job);
    CU_add_test(s, "a cgroup per job", test_cgroup);
    CU_add_test(s, "jobs die with their parent", test_die_with_parent);
    CU_add_test(s, "jobs die with the thread that started them", test_die_with_thread);
    CU_add_test(s, "bad options", test_bad_options);
    CU_add_test(s, "no leaks", test_no_leaks);
}
