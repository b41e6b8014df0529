/* SPDX-License-Identifier: MIT */
/*
 * The examples of the ZPy manual page, run as written with python3 as the
 * interpreter (its syntax runs them unchanged).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* python3 as the interpreter; false (the test is counted as skipped)
 * where it is not installed. */
static bool have_python(void)
{
    static int known = -1;
    zmp_result res;

    if (known < 0) {
        zmp_set_interpreter("python3");
        known = zmp_run_code("pass", NULL, &res) == 0 && res.ok;
        zmp_result_free(&res);
    }
    zmp_set_interpreter("python3");
    if (!known)
        test_skip("python3 is not installed");
    return known;
}

static void expect_output(const char *code, const char *output)
{
    zmp_result res;

    CU_ASSERT_EQUAL_FATAL(zmp_run_code(code, NULL, &res), 0);
    CU_ASSERT_TRUE(res.ok);
    CU_ASSERT_EQUAL(res.exit_code, 0);
    CU_ASSERT_STRING_EQUAL(res.output, output);
    CU_ASSERT_STRING_EQUAL(res.out, output);
    zmp_result_free(&res);
}

/* result = mp_run_code("print(2 + 3)"); result["output"] is "5\n" */
static void test_run_code_examples(void)
{
    if (!have_python())
        return;
    expect_output("print(2 + 3)", "5\n");
    expect_output("x = 10 * 10\nprint(x)", "100\n");
}

/* mp_run_code("x = 1 / 0"): ok is false, output holds the error. */
static void test_error_handling(void)
{
    zmp_result res;

    if (!have_python())
        return;
    CU_ASSERT_EQUAL_FATAL(zmp_run_code("x = 1 / 0", NULL, &res), 0);
    CU_ASSERT_FALSE(res.ok);
    CU_ASSERT_EQUAL(res.exit_code, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(res.output, "Traceback"));
    CU_ASSERT_PTR_NOT_NULL(strstr(res.output, "ZeroDivisionError"));
    CU_ASSERT_STRING_EQUAL(res.output, res.err);
    CU_ASSERT_EQUAL(res.out_len, 0);
    zmp_result_free(&res);
}

/* mp_run("process.zpy", ["arg1", "arg2"]) and the script runner example. */
static void test_run_script_with_args(void)
{
    char *worker = make_file("process.py",
                             "import sys\nprint('args:', sys.argv[1:])\n", 0644);
    char *failing = make_file("failing.py",
                              "import sys\nprint('bad input', file=sys.stderr)\nsys.exit(3)\n", 0644);
    const char *args[] = { "arg1", "arg2", NULL };
    zmp_result res;

    if (have_python()) {
        CU_ASSERT_EQUAL_FATAL(zmp_run(worker, args, &res), 0);
        CU_ASSERT_TRUE(res.ok);
        CU_ASSERT_STRING_EQUAL(res.output, "args: ['arg1', 'arg2']\n");
        zmp_result_free(&res);
        CU_ASSERT_EQUAL_FATAL(zmp_run(failing, NULL, &res), 0);
        CU_ASSERT_FALSE(res.ok);
        CU_ASSERT_EQUAL(res.exit_code, 3);
        CU_ASSERT_STRING_EQUAL(res.err, "bad input\n");
        zmp_result_free(&res);
    }
    free(worker);
    free(failing);
}

/* The parallel computation example: mp_spawn("-c", code) for i in 0..3,
 * then mp_wait on each. */
static void test_parallel_example(void)
{
    int handles[4], i, code;
    char src[64];

    if (!have_python())
        return;
    for (i = 0; i < 4; i++) {
        const char *args[] = { src, NULL };

        snprintf(src, sizeof src, "import sys; sys.exit(%d * 2)", i);
        handles[i] = zmp_spawn("-c", args);
        CU_ASSERT_TRUE_FATAL(handles[i] > 0);
    }
    for (i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(zmp_wait(handles[i], &code), 0);
        CU_ASSERT_EQUAL(code, i * 2);
    }
}

/* The background task example: spawn, work while sleeping, then wait;
 * and mp_kill of a long-running task. */
static void test_background_example(void)
{
    char *bg = make_file("background.py", "import time\ntime.sleep(0.3)\n", 0644);
    char *forever = make_file("long_running.py", "import time\ntime.sleep(60)\n", 0644);
    int h, i, code = -1;

    if (have_python()) {
        h = zmp_spawn(bg, NULL);
        CU_ASSERT_TRUE_FATAL(h > 0);
        for (i = 0; i < 10; i++)
            CU_ASSERT_EQUAL(zmp_sleep(10), 0);
        CU_ASSERT_EQUAL(zmp_wait(h, &code), 0);
        CU_ASSERT_EQUAL(code, 0);
        h = zmp_spawn(forever, NULL);
        CU_ASSERT_EQUAL(zmp_poll(h, NULL), 0);
        CU_ASSERT_EQUAL(zmp_kill(h), 0);
        CU_ASSERT_EQUAL(zmp_wait(h, NULL), -ECHILD);
    }
    free(bg);
    free(forever);
}

void add_manual_tests(void)
{
    CU_pSuite s = CU_add_suite("manual examples (python3)", suite_init, suite_clean);

    CU_add_test(s, "mp_run_code examples", test_run_code_examples);
    CU_add_test(s, "error handling", test_error_handling);
    CU_add_test(s, "mp_run with args, script runner", test_run_script_with_args);
    CU_add_test(s, "parallel computation", test_parallel_example);
    CU_add_test(s, "background task and kill", test_background_example);
    CU_add_test(s, "no leaks", test_no_leaks);
}
