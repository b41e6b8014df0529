/* SPDX-License-Identifier: MIT */
/*
 * The test runner: every suite, on the engine chosen by $ZMP_BACKEND (the
 * make check scripts run it once per engine).  Also the program behind a
 * few child modes, run by tests that need a fresh process.
 *
 *   zmp-test                  every suite
 *   zmp-test SUITE            one suite, by its name as --list prints it
 *   zmp-test SUITE TEST       one test of that suite
 *   zmp-test --list           the suites and their tests, one a line
 *
 * Exit status: 0 when every test run passed, 1 when one failed, 2 for a
 * usage or set-up error, 77 (skipped, as automake counts it) when the
 * engine forced by $ZMP_BACKEND cannot start here: a kernel or sandbox
 * without io_uring is a skip, never a pass nor a fail.
 */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define EXIT_SKIP 77

static void usage(FILE *f)
{
    fprintf(f, "usage: zmp-test [SUITE [TEST]]\n"
               "       zmp-test --list\n"
               "Runs every suite, one suite or one test, on the engine "
               "$ZMP_BACKEND names.\n");
}

static void list_tests(void)
{
    CU_pSuite s;
    CU_pTest t;

    for (s = CU_get_registry()->pSuite; s; s = s->pNext)
        for (t = s->pTest; t; t = t->pNext)
            printf("%s\t%s\n", s->pName, t->pName);
}

/* The tests of one suite (or all), or only those $ZMP_TEST_SKIP left out. */
static unsigned count_tests(CU_pSuite only, bool inactive)
{
    CU_pSuite s;
    CU_pTest t;
    unsigned n = 0;

    for (s = CU_get_registry()->pSuite; s; s = s->pNext)
        for (t = s->pTest; t && (!only || s == only); t = t->pNext)
            n += !inactive || !t->fActive;
    return n;
}

/* The engine name with what $ZMP_DISABLE turns off, for the closing line. */
static void closing_line(const char *engine, unsigned passed, unsigned failed,
                         unsigned skipped)
{
    const char *off = getenv("ZMP_DISABLE");

    printf("\nzmp-test [%s%s%s]: %u passed, %u failed", engine,
           off && *off ? " without " : "", off ? off : "", passed, failed);
    if (skipped)
        printf(", %u skipped", skipped);
    printf("\n");
}

int main(int argc, char **argv)
{
    CU_pSuite suite = NULL;
    CU_pTest test = NULL;
    unsigned run, failed, skipped, left_out;
    const char *engine, *forced;
    char want[32];
    int r;

    if (argc > 1 && !strncmp(argv[1], "--child-", 8))
        return child_mode(argv[1] + 8, argc > 2 ? argv[2] : NULL);
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    if (argc > 3 || (argc > 1 && argv[1][0] == '-' && strcmp(argv[1], "--list"))) {
        usage(stderr);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    add_run_tests();
    add_spawn_tests();
    add_misc_tests();
    add_manual_tests();
    add_options_tests();
    add_output_tests();
    add_batch_tests();
    add_stream_tests();
    add_hostile_tests();
    add_threads_tests();
    add_reliability_tests();
    if (argc > 1 && !strcmp(argv[1], "--list")) {
        list_tests();
        CU_cleanup_registry();
        return 0;
    }
    if (argc > 1) {
        suite = CU_get_suite(argv[1]);
        if (!suite) {
            fprintf(stderr, "zmp-test: no suite named '%s' (see --list)\n",
                    argv[1]);
            CU_cleanup_registry();
            return 2;
        }
    }
    if (argc > 2) {
        test = CU_get_test(suite, argv[2]);
        if (!test) {
            fprintf(stderr, "zmp-test: suite '%s' has no test named '%s' (see --list)\n",
                    argv[1], argv[2]);
            CU_cleanup_registry();
            return 2;
        }
    }
    /* The library this runs with is the one just built (configure checks
     * the header against configure.ac; this, the library against both). */
    snprintf(want, sizeof want, "%d.%d.%d", ZMP_VERSION_MAJOR,
             ZMP_VERSION_MINOR, ZMP_VERSION_PATCH);
    if (strcmp(zmp_version(), want) != 0 ||
        ZMP_VERSION_NUMBER != (ZMP_VERSION_MAJOR << 16 |
                               ZMP_VERSION_MINOR << 8 | ZMP_VERSION_PATCH)) {
        fprintf(stderr, "zmp-test: zmp.h says %s, the library %s\n", want,
                zmp_version());
        CU_cleanup_registry();
        return 2;
    }
    if (skip_tests() < 0) {
        CU_cleanup_registry();
        return 2;
    }

    /* zmp_sleep(0) starts the engine, and says why it could not.  Only
     * io_uring can be missing at run time (an old kernel, a seccomp
     * profile, kernel.io_uring_disabled): anything else is an error. */
    r = zmp_sleep(0);
    forced = getenv("ZMP_BACKEND");
    if (r < 0) {
        bool skip = forced && !strcmp(forced, "io_uring");

        fprintf(skip ? stdout : stderr, "%sengine %s cannot start here: %s\n",
                skip ? "SKIP: " : "zmp-test: ",
                forced && *forced ? forced : "auto", zmp_strerror(r));
        if (skip)
            closing_line(forced, 0, 0, test ? 1 : count_tests(suite, false));
        CU_cleanup_registry();
        return skip ? EXIT_SKIP : 2;
    }
    engine = zmp_backend();
    printf("engine in use: %s\n", engine);
    zmp_deinit();

    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (test)
        CU_basic_run_test(suite, test);
    else if (suite)
        CU_basic_run_suite(suite);
    else
        CU_basic_run_tests();
    run = CU_get_number_of_tests_run();
    failed = CU_get_number_of_tests_failed();
    /* A test that skips itself (test_skip) ran, and did not fail. */
    skipped = tests_skipped();
    if (skipped > run - failed)
        skipped = run - failed;
    left_out = test ? !test->fActive : count_tests(suite, true);
    closing_line(engine, run - failed - skipped, failed, skipped + left_out);
    failed += CU_get_number_of_suites_failed();
    r = CU_get_error();
    CU_cleanup_registry();
    return failed || r ? 1 : 0;
}
