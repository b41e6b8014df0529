/* SPDX-License-Identifier: MIT */
/* zmp_run, zmp_run_code, zmp_result_free: capture, exit codes, errors. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common.h"

static void run_ok(const char *mode, const char *const *args, zmp_result *res)
{
    use_helper();
    CU_ASSERT_EQUAL_FATAL(zmp_run(mode, args, res), 0);
}

static void test_echo(void)
{
    const char *args[] = { "hello", "world", NULL };
    zmp_result res;

    run_ok("echo", args, &res);
    CU_ASSERT_TRUE(res.ok);
    CU_ASSERT_EQUAL(res.exit_code, 0);
    CU_ASSERT_STRING_EQUAL(res.out, "hello world\n");
    CU_ASSERT_EQUAL(res.out_len, 12);
    CU_ASSERT_STRING_EQUAL(res.err, "");
    CU_ASSERT_EQUAL(res.err_len, 0);
    CU_ASSERT_STRING_EQUAL(res.output, "hello world\n");
    CU_ASSERT_EQUAL(res.output_len, 12);
    zmp_result_free(&res);
    CU_ASSERT_PTR_NULL(res.out);
    zmp_result_free(&res);  /* twice is harmless */
    zmp_result_free(NULL);
}

static void test_no_args(void)
{
    zmp_result res;

    run_ok("echo", NULL, &res);
    CU_ASSERT_STRING_EQUAL(res.out, "\n");
    zmp_result_free(&res);
}

static void test_exit_code(void)
{
    const char *a3[] = { "3", NULL }, *a255[] = { "255", NULL };
    zmp_result res;

    run_ok("exit", a3, &res);
    CU_ASSERT_FALSE(res.ok);
    CU_ASSERT_EQUAL(res.exit_code, 3);
    zmp_result_free(&res);
    run_ok("exit", a255, &res);
    CU_ASSERT_EQUAL(res.exit_code, 255);
    zmp_result_free(&res);
}

static void test_killed_by_signal(void)
{
    const char *a9[] = { "9", NULL }, *a15[] = { "15", NULL };
    zmp_result res;

    run_ok("kill", a9, &res);
    CU_ASSERT_FALSE(res.ok);
    CU_ASSERT_EQUAL(res.exit_code, -9);
    zmp_result_free(&res);
    run_ok("kill", a15, &res);
    CU_ASSERT_EQUAL(res.exit_code, -15);
    zmp_result_free(&res);
}

static void check_pattern(const char *data, size_t n, int base, int mod)
{
    size_t i, bad = 0;

    for (i = 0; i < n; i++)
        if (data[i] != (char)(base + i % (size_t)mod))
            bad++;
    CU_ASSERT_EQUAL(bad, 0);
}

/* 64 MiB on each stream at once: no deadlock, every byte in place. */
static void test_large_both_streams(void)
{
    const char *args[] = { "67108864", "67108864", NULL };
    size_t n = 67108864, i, o = 0, e = 0, bad = 0;
    zmp_result res;

    run_ok("flood", args, &res);
    CU_ASSERT_TRUE(res.ok);
    CU_ASSERT_EQUAL_FATAL(res.out_len, n);
    CU_ASSERT_EQUAL_FATAL(res.err_len, n);
    CU_ASSERT_EQUAL_FATAL(res.output_len, 2 * n);
    check_pattern(res.out, n, 'a', 26);
    check_pattern(res.err, n, '0', 10);
    CU_ASSERT_EQUAL(res.out[n], '\0');
    /* The merged stream holds both, each in its own order. */
    for (i = 0; i < res.output_len; i++) {
        char c = res.output[i];
        if (c >= 'a' && c <= 'z') {
            if (c != (char)('a' + o++ % 26))
                bad++;
        } else if (c != (char)('0' + e++ % 10)) {
            bad++;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(o, n);
    CU_ASSERT_EQUAL(e, n);
    zmp_result_free(&res);
}

/* Bytes written 40 ms apart appear in output in the order written. */
static void test_merged_order(void)
{
    const char *args[] = { "3", "40", NULL };
    zmp_result res;

    run_ok("interleave", args, &res);
    CU_ASSERT_STRING_EQUAL(res.out, "o0\no1\no2\n");
    CU_ASSERT_STRING_EQUAL(res.err, "e0\ne1\ne2\n");
    CU_ASSERT_STRING_EQUAL(res.output, "o0\ne0\no1\ne1\no2\ne2\n");
    zmp_result_free(&res);
}

/* Only 0, 1, 2 reach the child, even descriptors opened without
 * O_CLOEXEC, and stdin is /dev/null. */
static void test_only_stdio_fds(void)
{
    int leak = open("/dev/null", O_RDONLY);
    int high = fcntl(leak, F_DUPFD, 900);
    zmp_result res;

    CU_ASSERT_TRUE_FATAL(leak >= 0 && high >= 0);
    run_ok("fds", NULL, &res);
    CU_ASSERT_STRING_EQUAL(res.out, "0 1 2\n");
    zmp_result_free(&res);
    run_ok("stdin", NULL, &res);
    CU_ASSERT_STRING_EQUAL(res.out, "0\n");
    zmp_result_free(&res);
    close(leak);
    close(high);
}

/* A parent with stdin, stdout and stderr closed: the pipes may then land on
 * 0..2 themselves, and must still reach the right places. */
static void test_parent_stdio_closed(void)
{
    const char *args[] = { "x", NULL };
    int saved[3], i;
    zmp_result res;

    use_helper();
    fflush(stdout);
    for (i = 0; i < 3; i++) {
        saved[i] = fcntl(i, F_DUPFD_CLOEXEC, 10);
        close(i);
    }
    zmp_deinit();  /* so /dev/null and the pipes are opened afresh */
    i = zmp_run("echo", args, &res);
    zmp_deinit();  /* its descriptors sit on 0..2, about to be restored */
    for (int k = 0; k < 3; k++) {
        dup2(saved[k], k);
        close(saved[k]);
    }
    CU_ASSERT_EQUAL_FATAL(i, 0);
    CU_ASSERT_STRING_EQUAL(res.out, "x\n");
    CU_ASSERT_STRING_EQUAL(res.err, "");
    zmp_result_free(&res);
}

static void on_signal(int sig)
{
    (void)sig;
}

/* This process's ignored signals, from /proc/self/status, or 0. */
static unsigned long long own_ignored(void)
{
    char line[256];
    unsigned long long m = 0;
    FILE *f = fopen("/proc/self/status", "r");

    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "SigIgn: %llx", &m) == 1)
            break;
    if (f)
        fclose(f);
    return m;
}

#define BIT(s) (1ULL << ((s) - 1))
/* glibc's own signals (SIGCANCEL, SIGSETXID): ignored if inherited so,
 * until glibc installs its handlers (starting threads may), after which
 * they are caught, and at default in children. */
#define GLIBC_SIGS (BIT(32) | BIT(33))

/* The SigIgn mask in a child's "sigs" output, glibc's own left out; or
 * ~0 when it is missing. */
static unsigned long long child_ignored(const char *out)
{
    const char *s = out ? strstr(out, "SigIgn:") : NULL;
    unsigned long long m;

    if (!s || sscanf(s, "SigIgn: %llx", &m) != 1)
        return ~0ULL;
    return m & ~GLIBC_SIGS;
}

/* In the child: caught signals (one of whose handlers must never run
 * there) and SIGPIPE, SIGXFSZ and SIGCHLD at their default, other ignored
 * signals still ignored (nohup: the test itself may run with SIGHUP, or a
 * background job's SIGINT and SIGQUIT, ignored), and an empty mask.  Once
 * alone, and in a batch run by worker threads. */
static void test_signals_reset(void)
{
    enum { N = 6 };
    struct sigaction sa = { .sa_handler = SIG_IGN }, caught = { .sa_handler = on_signal };
    struct sigaction old_usr2, old_pipe, old_usr1, old_winch, old_hup, old_chld;
    const char *argv[] = { "sigs", NULL };
    zmp_options jobs[N];
    zmp_result res, batch[N];
    sigset_t set, old_mask;
    unsigned long long ign;
    size_t i;
    int r;

    use_helper();
    memset(jobs, 0, sizeof jobs);
    for (i = 0; i < N; i++)
        jobs[i].argv = argv;
    sigaction(SIGUSR2, &sa, &old_usr2);
    sigaction(SIGPIPE, &sa, &old_pipe);
    sigaction(SIGHUP, &sa, &old_hup);
    sigaction(SIGCHLD, &caught, &old_chld);
    sigaction(SIGUSR1, &caught, &old_usr1);
    sigaction(SIGWINCH, &caught, &old_winch);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &old_mask);
    ign = own_ignored() & ~(BIT(SIGPIPE) | BIT(SIGXFSZ) | BIT(SIGCHLD) | GLIBC_SIGS);
    CU_ASSERT_EQUAL(ign & (BIT(SIGHUP) | BIT(SIGUSR2) | BIT(SIGPIPE)),
                    BIT(SIGHUP) | BIT(SIGUSR2));
    run_ok("sigs", NULL, &res);
    r = zmp_run_batch(jobs, N, N, batch, NULL, NULL, NULL, NULL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    sigaction(SIGUSR2, &old_usr2, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    sigaction(SIGCHLD, &old_chld, NULL);
    sigaction(SIGUSR1, &old_usr1, NULL);
    sigaction(SIGWINCH, &old_winch, NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(res.out, "SigBlk:\t0000000000000000\n"));
    CU_ASSERT_EQUAL(child_ignored(res.out), ign);
    CU_ASSERT_PTR_NOT_NULL(strstr(res.out, "SigCgt:\t0000000000000000\n"));
    zmp_result_free(&res);
    CU_ASSERT_EQUAL_FATAL(r, 0);
    for (i = 0; i < N; i++) {
        CU_ASSERT_TRUE(batch[i].ok);
        CU_ASSERT_PTR_NOT_NULL(strstr(batch[i].out, "SigBlk:\t0000000000000000\n"));
        CU_ASSERT_EQUAL(child_ignored(batch[i].out), ign);
        CU_ASSERT_PTR_NOT_NULL(strstr(batch[i].out, "SigCgt:\t0000000000000000\n"));
        zmp_result_free(&batch[i]);
    }
}

static void test_run_code_sh(void)
{
    const char *args[] = { "one", "two", NULL };
    zmp_result res;

    CU_ASSERT_EQUAL_FATAL(zmp_set_interpreter("/bin/sh"), 0);
    CU_ASSERT_EQUAL_FATAL(zmp_run_code("echo \"$0|$1\"; echo oops >&2; exit 4",
                                       args, &res), 0);
    CU_ASSERT_FALSE(res.ok);
    CU_ASSERT_EQUAL(res.exit_code, 4);
    CU_ASSERT_STRING_EQUAL(res.out, "one|two\n");
    CU_ASSERT_STRING_EQUAL(res.err, "oops\n");
    zmp_result_free(&res);
}

/* A script that fails is a result, not an error of the call. */
static void test_failing_script(void)
{
    char *script = make_file("fail.sh", "echo partial\necho 'it broke' >&2\nexit 7\n", 0644);
    zmp_result res;

    CU_ASSERT_EQUAL_FATAL(zmp_set_interpreter("sh"), 0);
    CU_ASSERT_EQUAL_FATAL(zmp_run(script, NULL, &res), 0);
    CU_ASSERT_EQUAL(res.exit_code, 7);
    CU_ASSERT_STRING_EQUAL(res.out, "partial\n");
    CU_ASSERT_STRING_EQUAL(res.err, "it broke\n");
    zmp_result_free(&res);
    /* A script that does not exist: the interpreter says so, exit != 0. */
    CU_ASSERT_EQUAL_FATAL(zmp_run("/nonexistent/script.sh", NULL, &res), 0);
    CU_ASSERT_FALSE(res.ok);
    CU_ASSERT_TRUE(res.err_len > 0);
    zmp_result_free(&res);
    free(script);
}

static void test_bad_arguments(void)
{
    zmp_result res = { .ok = true, .exit_code = 99 };

    use_helper();
    CU_ASSERT_EQUAL(zmp_run(NULL, NULL, &res), -EINVAL);
    CU_ASSERT_EQUAL(zmp_run("", NULL, &res), -EINVAL);
    CU_ASSERT_EQUAL(zmp_run("echo", NULL, NULL), -EINVAL);
    CU_ASSERT_EQUAL(zmp_run_code(NULL, NULL, &res), -EINVAL);
    CU_ASSERT_EQUAL(zmp_run_code("", NULL, &res), -EINVAL);
    CU_ASSERT_EQUAL(zmp_set_interpreter(""), -EINVAL);
}

/* Exec failures come back from the child with their real errno. */
static void test_interpreter_errors(void)
{
    char *noexec = make_file("noexec", "#!/bin/sh\necho no\n", 0644);
    char *garbage = make_file("garbage", "\x7f" "ELF not really\n", 0755);
    zmp_result res = { .ok = true };

    CU_ASSERT_EQUAL(zmp_set_interpreter("/nonexistent/zpy"), 0);
    CU_ASSERT_EQUAL(zmp_run("x", NULL, &res), -ENOENT);
    CU_ASSERT_PTR_NULL(res.out);
    CU_ASSERT_FALSE(res.ok);
    CU_ASSERT_EQUAL(zmp_set_interpreter(noexec), 0);
    CU_ASSERT_EQUAL(zmp_run("x", NULL, &res), -EACCES);
    CU_ASSERT_EQUAL(zmp_set_interpreter(tmp_dir()), 0);
    CU_ASSERT_EQUAL(zmp_run("x", NULL, &res), -EACCES);
    CU_ASSERT_EQUAL(zmp_set_interpreter(garbage), 0);
    CU_ASSERT_EQUAL(zmp_run("x", NULL, &res), -ENOEXEC);
    CU_ASSERT_EQUAL(zmp_set_interpreter("no-such-interpreter-zmp"), 0);
    CU_ASSERT_EQUAL(zmp_run("x", NULL, &res), -ENOENT);
    CU_ASSERT_EQUAL(zmp_run_code("x", NULL, &res), -ENOENT);
    CU_ASSERT_TRUE(no_children());
    free(noexec);
    free(garbage);
}

/* Out of descriptors for good (the hard limit too, so zmp cannot raise
 * the soft one): -EMFILE, no leak, and it works again after.  In a fresh
 * process (child mode "emfile"), as a lowered hard limit cannot always be
 * raised again. */
static void test_emfile(void)
{
    zmp_result res;

    CU_ASSERT_EQUAL_FATAL(zmp_set_interpreter(self_path()), 0);
    CU_ASSERT_EQUAL_FATAL(zmp_run("--child-emfile", NULL, &res), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "emfile: -24 children: none after: 0 x\n");
    if (res.exit_code)
        fprintf(stderr, "%s", res.err);
    zmp_result_free(&res);
}

/* Out of processes: -EAGAIN from clone, reported as such.  Run in a fresh
 * process (see child_mode "nproc") that drops to an unprivileged user,
 * since root is exempt from RLIMIT_NPROC. */
static void test_eagain(void)
{
    const char *args[] = { "--child-nproc", NULL };
    zmp_result res;

    CU_ASSERT_EQUAL_FATAL(zmp_set_interpreter(self_path()), 0);
    CU_ASSERT_EQUAL_FATAL(zmp_run(args[0], NULL, &res), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "nproc: -11\n");
    CU_ASSERT_EQUAL(res.exit_code, 0);
    if (res.exit_code)
        fprintf(stderr, "%s", res.err);
    zmp_result_free(&res);
}

void add_run_tests(void)
{
    CU_pSuite s = CU_add_suite("run", suite_init, suite_clean);

    CU_add_test(s, "echo and result_free", test_echo);
    CU_add_test(s, "no arguments", test_no_args);
    CU_add_test(s, "exit codes", test_exit_code);
    CU_add_test(s, "killed by a signal is -N", test_killed_by_signal);
    CU_add_test(s, "64 MiB on both streams", test_large_both_streams);
    CU_add_test(s, "merged output in arrival order", test_merged_order);
    CU_add_test(s, "child sees only fds 0 1 2", test_only_stdio_fds);
    CU_add_test(s, "parent with 0 1 2 closed", test_parent_stdio_closed);
    CU_add_test(s, "signals reset in the child", test_signals_reset);
    CU_add_test(s, "run_code with sh and args", test_run_code_sh);
    CU_add_test(s, "failing and missing scripts", test_failing_script);
    CU_add_test(s, "bad arguments", test_bad_arguments);
    CU_add_test(s, "interpreter errors from exec", test_interpreter_errors);
    CU_add_test(s, "EMFILE", test_emfile);
    CU_add_test(s, "EAGAIN from RLIMIT_NPROC", test_eagain);
    CU_add_test(s, "no leaks", test_no_leaks);
}
