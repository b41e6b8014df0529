/*
 * The test runner: every suite, on the engine chosen by $ZMP_BACKEND (the
 * make check scripts run it once per engine).  Also the program behind a
 * few child modes, run by tests that need a fresh process.
 */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

int main(int argc, char **argv)
{
    unsigned run, failed;
    const char *engine;

    if (argc > 1 && !strncmp(argv[1], "--child-", 8))
        return child_mode(argv[1] + 8, argc > 2 ? argv[2] : NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    add_run_tests();
    add_spawn_tests();
    add_misc_tests();
    add_manual_tests();
    add_options_tests();
    add_batch_tests();
    add_stream_tests();
    add_hostile_tests();
    add_threads_tests();
    add_reliability_tests();
    if (skip_tests() < 0)
        return 2;
    engine = zmp_backend();
    printf("engine in use: %s\n", engine);
    zmp_deinit();
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    run = CU_get_number_of_tests_run();
    failed = CU_get_number_of_tests_failed();
    printf("\nzmp-test [%s%s%s]: %u passed, %u failed\n", engine,
           getenv("ZMP_DISABLE") && *getenv("ZMP_DISABLE") ? " without " : "",
           getenv("ZMP_DISABLE") ? getenv("ZMP_DISABLE") : "", run - failed, failed);
    CU_cleanup_registry();
    return failed || CU_get_error() ? 1 : 0;
}
