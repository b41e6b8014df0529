/* SPDX-License-Identifier: MIT */
/* Shared test utilities. */
#ifndef ZMP_TEST_COMMON_H
#define ZMP_TEST_COMMON_H

#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <stddef.h>

#include "fds.h"
#include "zmp.h"

/* Path of the helper program (tests/helper beside this binary). */
const char *helper_path(void);
/* Make the helper the interpreter: zmp_run("MODE", args) runs it. */
void use_helper(void);
/* A temporary directory for this run, removed at exit. */
const char *tmp_dir(void);
/* Write text to a new file in tmp_dir() with the given mode; returns its path. */
char *make_file(const char *name, const char *text, int mode);
/* True when this process has no child at all, running or zombie. */
bool no_children(void);
/* Path of this test program, for tests that re-run it in a mode. */
const char *self_path(void);

/* Suite set-up: an alarm against hangs, and the fd count to compare at the
 * end.  Every suite ends with test_no_leaks. */
int suite_init(void);
int suite_clean(void);
void test_no_leaks(void);

/* Suites, one per file. */
void add_run_tests(void);
void add_spawn_tests(void);
void add_misc_tests(void);
void add_manual_tests(void);
void add_options_tests(void);
void add_output_tests(void);
void add_batch_tests(void);
void add_stream_tests(void);
void add_hostile_tests(void);
void add_threads_tests(void);
void add_reliability_tests(void);

/* A new writable cgroup v2 directory (test-reliability.c), or NULL. */
char *test_cgroup_dir(void);
/* Does the kernel keep a reaped child's exit status for zmp (6.15+)? */
bool kernel_keeps_exit_status(void);
/* Child modes of test-reliability.c; -1 for a mode it does not know. */
int reliability_child_mode(const char *mode, const char *arg);
/* Child modes of test-options.c; -1 for a mode it does not know. */
int options_child_mode(const char *mode, const char *arg);

/* Leave out the tests named in $ZMP_TEST_SKIP (skip.c); -1 for a name that
 * matches none. */
int skip_tests(void);
/* A test that finds what it needs missing calls this and returns: it is
 * reported, and counted as skipped in the closing line, not as passed. */
void test_skip(const char *why);
/* How many tests called test_skip. */
unsigned tests_skipped(void);

/* Modes of this program run as a child by some tests (see main.c). */
int child_mode(const char *mode, const char *arg);

#endif
