/* SPDX-License-Identifier: MIT */
/* zmp_spawn, zmp_wait, zmp_poll, zmp_kill and handles. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int spawn_helper(const char *mode, const char *arg)
{
    const char *args[] = { arg, NULL };

    use_helper();
    return zmp_spawn(mode, arg ? args : NULL);
}

static void test_spawn_wait(void)
{
    int h = spawn_helper("exit", "5"), code = -1;

    CU_ASSERT_TRUE_FATAL(h > 0);
    CU_ASSERT_EQUAL(zmp_wait(h, &code), 0);
    CU_ASSERT_EQUAL(code, 5);
    CU_ASSERT_EQUAL(zmp_wait(h, &code), -ECHILD);
    CU_ASSERT_TRUE(no_children());
    h = spawn_helper("exit", "0");
    CU_ASSERT_EQUAL(zmp_wait(h, NULL), 0);
}

static void test_spawn_signal_exit(void)
{
    int h = spawn_helper("kill", "15"), code = 0;

    CU_ASSERT_EQUAL(zmp_wait(h, &code), 0);
    CU_ASSERT_EQUAL(code, -15);
}

/* poll does not block, does not consume, and agrees with wait. */
static void test_poll(void)
{
    int h = spawn_helper("sleep", "300"), code = -1, r, polls = 0;
    double t0 = now_s();

    CU_ASSERT_TRUE_FATAL(h > 0);
    CU_ASSERT_EQUAL(zmp_poll(h, &code), 0);
    CU_ASSERT_EQUAL(code, -1);
    while ((r = zmp_poll(h, &code)) == 0) {
        polls++;
        usleep(5000);
    }
    CU_ASSERT_EQUAL(r, 1);
    CU_ASSERT_EQUAL(code, 0);
    CU_ASSERT_TRUE(polls > 5);
    CU_ASSERT_TRUE(now_s() - t0 >= 0.29);
    /* Finished and reaped, yet the handle stays until wait. */
    CU_ASSERT_TRUE(no_children());
    code = -1;
    CU_ASSERT_EQUAL(zmp_poll(h, &code), 1);
    CU_ASSERT_EQUAL(code, 0);
    h = spawn_helper("exit", "9");
    while (zmp_poll(h, &code) == 0)
        usleep(1000);
    CU_ASSERT_EQUAL(code, 9);
    code = -1;
    CU_ASSERT_EQUAL(zmp_wait(h, &code), 0);
    CU_ASSERT_EQUAL(code, 9);
    CU_ASSERT_EQUAL(zmp_poll(h, &code), -ECHILD);
}

static void test_kill(void)
{
    int h = spawn_helper("sleep", "20000");
    double t0 = now_s();

    CU_ASSERT_TRUE_FATAL(h > 0);
    CU_ASSERT_EQUAL(zmp_kill(h), 0);
    CU_ASSERT_TRUE(now_s() - t0 < 5);
    CU_ASSERT_TRUE(no_children());
    CU_ASSERT_EQUAL(zmp_kill(h), -ECHILD);
    CU_ASSERT_EQUAL(zmp_wait(h, NULL), -ECHILD);
    CU_ASSERT_EQUAL(zmp_poll(h, NULL), -ECHILD);
}

/* Killing a child that already exited reaps it and removes the handle. */
static void test_kill_exited(void)
{
    int h = spawn_helper("exit", "3"), code;

    while (zmp_poll(h, &code) == 0)
        usleep(1000);
    CU_ASSERT_EQUAL(zmp_kill(h), 0);
    CU_ASSERT_EQUAL(zmp_wait(h, NULL), -ECHILD);
    /* And one that exited but was not yet noticed. */
    h = spawn_helper("exit", "3");
    usleep(100000);
    CU_ASSERT_EQUAL(zmp_kill(h), 0);
    CU_ASSERT_TRUE(no_children());
}

static void test_bad_handles(void)
{
    int h, code = 77;

    CU_ASSERT_EQUAL(zmp_wait(0, &code), -ECHILD);
    CU_ASSERT_EQUAL(zmp_wait(-1, &code), -ECHILD);
    CU_ASSERT_EQUAL(zmp_wait(123456, &code), -ECHILD);
    CU_ASSERT_EQUAL(zmp_poll(0, &code), -ECHILD);
    CU_ASSERT_EQUAL(zmp_poll(987654321, &code), -ECHILD);
    CU_ASSERT_EQUAL(zmp_kill(0), -ECHILD);
    CU_ASSERT_EQUAL(zmp_kill(-5), -ECHILD);
    CU_ASSERT_EQUAL(code, 77);
    /* A removed handle stays invalid when its slot is reused. */
    h = spawn_helper("exit", "1");
    CU_ASSERT_EQUAL(zmp_wait(h, NULL), 0);
    for (int i = 0; i < 100; i++) {
        int h2 = spawn_helper("exit", "2");
        CU_ASSERT_NOT_EQUAL(h2, h);
        CU_ASSERT_EQUAL(zmp_poll(h, NULL), -ECHILD);
        CU_ASSERT_EQUAL(zmp_wait(h2, &code), 0);
        CU_ASSERT_EQUAL(code, 2);
    }
}

static void test_spawn_errors(void)
{
    CU_ASSERT_EQUAL(zmp_spawn(NULL, NULL), -EINVAL);
    CU_ASSERT_EQUAL(zmp_spawn("", NULL), -EINVAL);
    CU_ASSERT_EQUAL(zmp_set_interpreter("/nonexistent/zpy"), 0);
    CU_ASSERT_EQUAL(zmp_spawn("x", NULL), -ENOENT);
    CU_ASSERT_TRUE(no_children());
}

/* stdout is inherited, not captured. */
static void test_spawn_inherits_stdout(void)
{
    char *path = make_file("inherit.out", "", 0644);
    const char *args[] = { "inherited", NULL };
    int fd = open(path, O_WRONLY | O_TRUNC), saved, h;
    char buf[64] = { 0 };
    FILE *f;

    fflush(stdout);
    saved = dup(1);
    dup2(fd, 1);
    close(fd);
    use_helper();
    h = zmp_spawn("echo", args);
    dup2(saved, 1);
    close(saved);
    CU_ASSERT_TRUE_FATAL(h > 0);
    CU_ASSERT_EQUAL(zmp_wait(h, NULL), 0);
    f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NOT_NULL(fgets(buf, sizeof buf, f));
    fclose(f);
    CU_ASSERT_STRING_EQUAL(buf, "inherited\n");
    free(path);
}

/* Many children at once, waited for in an order unlike their exits. */
static void test_many(void)
{
    enum { N = 200 };
    int h[N], code, i;
    char arg[16];

    for (i = 0; i < N; i++) {
        snprintf(arg, sizeof arg, "%d", i % 256);
        h[i] = spawn_helper("exit", arg);
        CU_ASSERT_TRUE_FATAL(h[i] > 0);
    }
    for (i = N - 1; i >= 0; i--) {
        CU_ASSERT_EQUAL(zmp_wait(h[i], &code), 0);
        CU_ASSERT_EQUAL(code, i % 256);
    }
    CU_ASSERT_TRUE(no_children());
}

/* A run while spawned children come and go. */
static void test_run_while_spawned(void)
{
    int h1 = spawn_helper("sleep", "50"), h2 = spawn_helper("sleep", "2000"), code;
    const char *args[] = { "x", NULL };
    zmp_result res;

    CU_ASSERT_EQUAL_FATAL(zmp_run("echo", args, &res), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "x\n");
    zmp_result_free(&res);
    CU_ASSERT_EQUAL(zmp_wait(h1, &code), 0);
    CU_ASSERT_EQUAL(code, 0);
    CU_ASSERT_EQUAL(zmp_kill(h2), 0);
    CU_ASSERT_TRUE(no_children());
}

/* Handles from before zmp_deinit never name the children started after. */
static void test_stale_after_deinit(void)
{
    int old[70], h, i;

    for (i = 0; i < 64; i++)
        CU_ASSERT_EQUAL(zmp_wait(spawn_helper("exit", "0"), NULL), 0);
    for (i = 0; i < 70; i++)
        old[i] = spawn_helper("sleep", "20000");
    zmp_deinit();
    for (i = 0; i < 70; i++) {
        h = spawn_helper("sleep", "20000");
        CU_ASSERT_TRUE_FATAL(h > 0);
        for (int k = 0; k < 70; k++)
            CU_ASSERT_NOT_EQUAL(h, old[k]);
        CU_ASSERT_EQUAL(zmp_poll(old[i], NULL), -ECHILD);
    }
    zmp_deinit();
    CU_ASSERT_TRUE(no_children());
}

/* Another part of the program reaps our child (a wait(-1)): the pidfd
 * still tells how it ended (6.15+), else wait says the code is gone
 * instead of inventing one. */
static void test_reaped_elsewhere(void)
{
    int h = spawn_helper("exit", "4"), status, code = 99, r;

    CU_ASSERT_TRUE_FATAL(h > 0);
    CU_ASSERT_TRUE(waitpid(-1, &status, 0) > 0);
    r = zmp_wait(h, &code);
    if (r == 0) {
        CU_ASSERT_EQUAL(code, 4);
        CU_ASSERT_TRUE(kernel_keeps_exit_status());
    } else {
        CU_ASSERT_EQUAL(r, -ECHILD);
        CU_ASSERT_EQUAL(code, 99);
        CU_ASSERT_FALSE(kernel_keeps_exit_status());
    }
    CU_ASSERT_EQUAL(zmp_wait(h, &code), -ECHILD);
}

void add_spawn_tests(void)
{
    CU_pSuite s = CU_add_suite("spawn", suite_init, suite_clean);

    CU_add_test(s, "spawn and wait", test_spawn_wait);
    CU_add_test(s, "exit by signal", test_spawn_signal_exit);
    CU_add_test(s, "poll", test_poll);
    CU_add_test(s, "kill", test_kill);
    CU_add_test(s, "kill an exited child", test_kill_exited);
    CU_add_test(s, "bad handles", test_bad_handles);
    CU_add_test(s, "spawn errors", test_spawn_errors);
    CU_add_test(s, "stdout inherited", test_spawn_inherits_stdout);
    CU_add_test(s, "200 children", test_many);
    CU_add_test(s, "run while children are spawned", test_run_while_spawned);
    CU_add_test(s, "handles do not survive deinit", test_stale_after_deinit);
    CU_add_test(s, "child reaped by someone else", test_reaped_elsewhere);
    CU_add_test(s, "no leaks", test_no_leaks);
}
