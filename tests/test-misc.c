/* SPDX-License-Identifier: MIT */
/* cpu_count, sleep, deinit, interpreter choice, engine choice, and the
 * child modes run by tests that need a fresh process. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_cpu_count(void)
{
    cpu_set_t set;
    int status;
    pid_t pid;

    CU_ASSERT_EQUAL_FATAL(sched_getaffinity(0, sizeof set, &set), 0);
    CU_ASSERT_EQUAL(zmp_cpu_count(), CPU_COUNT(&set));
    /* Restricted to one CPU, a process counts one, whatever the machine. */
    pid = fork();
    if (pid == 0) {
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        if (sched_setaffinity(0, sizeof set, &set) < 0)
            _exit(2);
        _exit(zmp_cpu_count() == 1 ? 0 : 1);
    }
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_sleep(void)
{
    int64_t t0 = now_ms();

    CU_ASSERT_EQUAL(zmp_sleep(150), 0);
    CU_ASSERT_TRUE(now_ms() - t0 >= 150);
    CU_ASSERT_TRUE(now_ms() - t0 < 2000);
    t0 = now_ms();
    CU_ASSERT_EQUAL(zmp_sleep(0), 0);
    CU_ASSERT_TRUE(now_ms() - t0 < 500);
}

static int storm_hits;  /* atomic: counted in a handler */
static int storm_stop;  /* atomic: read by the storm thread */

static void on_usr1(int sig)
{
    int saved = errno;

    (void)sig;
    __atomic_add_fetch(&storm_hits, 1, __ATOMIC_RELAXED);
    errno = saved;
}

static void *storm(void *arg)
{
    pthread_t target = *(pthread_t *)arg;

    while (!__atomic_load_n(&storm_stop, __ATOMIC_RELAXED)) {
        pthread_kill(target, SIGUSR1);
        usleep(500);
    }
    return NULL;
}

/* Signals every half millisecond: sleep and wait still take their time. */
static void test_signal_storm(void)
{
    struct sigaction sa = { .sa_handler = on_usr1 }, old;  /* no SA_RESTART */
    pthread_t self = pthread_self(), th;
    const char *args[] = { "200", NULL };
    int64_t t0;
    int h, code = -1;
    zmp_result res;

    sigaction(SIGUSR1, &sa, &old);
    __atomic_store_n(&storm_hits, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&storm_stop, 0, __ATOMIC_RELAXED);
    pthread_create(&th, NULL, storm, &self);
    t0 = now_ms();
    CU_ASSERT_EQUAL(zmp_sleep(200), 0);
    CU_ASSERT_TRUE(now_ms() - t0 >= 200);
    use_helper();
    h = zmp_spawn("sleep", args);
    CU_ASSERT_EQUAL(zmp_wait(h, &code), 0);
    CU_ASSERT_EQUAL(code, 0);
    CU_ASSERT_EQUAL(zmp_run("sleep", args, &res), 0);
    CU_ASSERT_EQUAL(res.exit_code, 0);
    zmp_result_free(&res);
    __atomic_store_n(&storm_stop, 1, __ATOMIC_RELAXED);
    pthread_join(th, NULL);
    sigaction(SIGUSR1, &old, NULL);
    CU_ASSERT_TRUE(__atomic_load_n(&storm_hits, __ATOMIC_RELAXED) > 20);
}

/* Children that exit during a sleep are reaped then, and remembered. */
static void test_sleep_reaps(void)
{
    const char *args[] = { "7", NULL };
    int h, code = -1;

    use_helper();
    h = zmp_spawn("exit", args);
    CU_ASSERT_TRUE_FATAL(h > 0);
    CU_ASSERT_EQUAL(zmp_sleep(300), 0);
    CU_ASSERT_TRUE(no_children());
    CU_ASSERT_EQUAL(zmp_poll(h, &code), 1);
    CU_ASSERT_EQUAL(code, 7);
    CU_ASSERT_EQUAL(zmp_wait(h, &code), 0);
}

static void test_deinit(void)
{
    const char *args[] = { "30000", NULL };
    zmp_result res;
    int h;

    use_helper();
    h = zmp_spawn("sleep", args);
    CU_ASSERT_TRUE_FATAL(h > 0);
    zmp_deinit();
    CU_ASSERT_TRUE(no_children());
    CU_ASSERT_EQUAL(zmp_wait(h, NULL), -ECHILD);
    CU_ASSERT_EQUAL(zmp_kill(h), -ECHILD);
    zmp_deinit();
    /* Usable again, and the old handle does not name the new child. */
    CU_ASSERT_EQUAL(zmp_set_interpreter(helper_path()), 0);
    h = zmp_spawn("sleep", args);
    CU_ASSERT_TRUE(h > 0);
    CU_ASSERT_EQUAL(zmp_run("echo", NULL, &res), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "\n");
    zmp_result_free(&res);
    zmp_deinit();
    CU_ASSERT_TRUE(no_children());
}

static void test_interpreter_choice(void)
{
    zmp_result res;

    CU_ASSERT_EQUAL(zmp_set_interpreter(NULL), 0);
    unsetenv("ZMP_INTERPRETER");
    CU_ASSERT_STRING_EQUAL(zmp_interpreter(), ZMP_DEFAULT_INTERPRETER);
    setenv("ZMP_INTERPRETER", "", 1);
    CU_ASSERT_STRING_EQUAL(zmp_interpreter(), ZMP_DEFAULT_INTERPRETER);
    setenv("ZMP_INTERPRETER", "/bin/sh", 1);
    CU_ASSERT_STRING_EQUAL(zmp_interpreter(), "/bin/sh");
    CU_ASSERT_EQUAL_FATAL(zmp_run_code("echo from-env", NULL, &res), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "from-env\n");
    zmp_result_free(&res);
    /* The call wins over the environment. */
    CU_ASSERT_EQUAL(zmp_set_interpreter(helper_path()), 0);
    CU_ASSERT_STRING_EQUAL(zmp_interpreter(), helper_path());
    CU_ASSERT_EQUAL(zmp_set_interpreter(NULL), 0);
    CU_ASSERT_STRING_EQUAL(zmp_interpreter(), "/bin/sh");
    unsetenv("ZMP_INTERPRETER");
}

/* A bare name is searched in PATH, never in the current directory through
 * an empty entry; "." in PATH is asked for, and honoured. */
static void test_path_search(void)
{
    char *fake = make_file("zmpfake-interp", "#!/bin/sh\necho fake\n", 0755);
    char *old_path = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    char cwd[4096];
    zmp_result res;

    CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof cwd));
    CU_ASSERT_EQUAL_FATAL(chdir(tmp_dir()), 0);
    CU_ASSERT_EQUAL(zmp_set_interpreter("zmpfake-interp"), 0);
    setenv("PATH", ":/usr/bin:/bin:", 1);
    CU_ASSERT_EQUAL(zmp_run("x", NULL, &res), -ENOENT);
    setenv("PATH", "/nonexistent:.", 1);
    CU_ASSERT_EQUAL_FATAL(zmp_run("x", NULL, &res), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "fake\n");
    zmp_result_free(&res);
    setenv("PATH", old_path, 1);
    CU_ASSERT_EQUAL(zmp_set_interpreter("sh"), 0);
    CU_ASSERT_EQUAL_FATAL(zmp_run_code("echo found", NULL, &res), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "found\n");
    zmp_result_free(&res);
    CU_ASSERT_EQUAL(chdir(cwd), 0);
    free(old_path);
    free(fake);
}

static void test_backend_choice(void)
{
    const char *env = getenv("ZMP_BACKEND");
    const char *args[] = { "20000", NULL };
    zmp_result res;
    int h;

    CU_ASSERT_STRING_EQUAL(zmp_backend(), env && *env ? env : zmp_backend());
    CU_ASSERT_EQUAL(zmp_set_backend("bogus"), -EINVAL);
    use_helper();
    h = zmp_spawn("sleep", args);
    CU_ASSERT_EQUAL(zmp_set_backend("poll"), -EBUSY);
    CU_ASSERT_EQUAL(zmp_kill(h), 0);
    CU_ASSERT_EQUAL(zmp_set_backend("poll"), 0);
    CU_ASSERT_STRING_EQUAL(zmp_backend(), "poll");
    CU_ASSERT_EQUAL_FATAL(zmp_run("echo", args, &res), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "20000\n");
    zmp_result_free(&res);
#ifdef HAVE_URING
    CU_ASSERT_EQUAL(zmp_set_backend("io_uring"), 0);
    /* The io_uring engine watches exits through pidfds. */
    if (getenv("ZMP_DISABLE") && strstr(getenv("ZMP_DISABLE"), "pidfd")) {
        CU_ASSERT_STRING_EQUAL(zmp_backend(), "none");
    } else {
        CU_ASSERT_STRING_EQUAL(zmp_backend(), "io_uring");
    }
#else
    CU_ASSERT_EQUAL(zmp_set_backend("io_uring"), -ENOTSUP);
#endif
    CU_ASSERT_EQUAL(zmp_set_backend(NULL), 0);
    if (env && *env) {
        CU_ASSERT_STRING_EQUAL(zmp_backend(), env);
    }
}

static void test_strings(void)
{
    CU_ASSERT_STRING_EQUAL(zmp_strerror(-ENOENT), "No such file or directory");
    CU_ASSERT_STRING_EQUAL(zmp_strerror(-ECHILD), "No child processes");
    CU_ASSERT_PTR_NOT_NULL(zmp_strerror(-99999));
    CU_ASSERT_STRING_EQUAL(zmp_version(), PACKAGE_VERSION);
}

/* A parent with 10,000 open descriptors: the pipes get numbers past
 * 10,000, which poll handles (select could not), and the child still sees
 * only 0, 1, 2. */
static void test_many_parent_fds(void)
{
    enum { N = 10000 };
    struct rlimit old, rl;
    int *fds = malloc(N * sizeof *fds), i, n = 0;
    zmp_result res;

    CU_ASSERT_PTR_NOT_NULL_FATAL(fds);
    getrlimit(RLIMIT_NOFILE, &old);
    rl = old;
    if (rl.rlim_cur < N + 100) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < N + 100) {
        test_skip("the RLIMIT_NOFILE hard limit is below 10,100");
        free(fds);
        return;
    }
    for (i = 0; i < N; i++) {
        fds[i] = open("/dev/null", O_RDONLY);  /* not close-on-exec */
        if (fds[i] < 0)
            break;
        n++;
    }
    CU_ASSERT_EQUAL(n, N);
    use_helper();
    zmp_deinit();
    CU_ASSERT_EQUAL_FATAL(zmp_run("fds", NULL, &res), 0);
    CU_ASSERT_STRING_EQUAL(res.out, "0 1 2\n");
    zmp_result_free(&res);
    for (i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
    zmp_deinit();
    setrlimit(RLIMIT_NOFILE, &old);
}

/* io_uring refused by a seccomp filter, as container runtimes do: the
 * automatic choice falls back to poll, a forced io_uring fails plainly. */
static void test_seccomp_fallback(void)
{
    zmp_result res;

    CU_ASSERT_EQUAL_FATAL(zmp_set_interpreter(self_path()), 0);
    CU_ASSERT_EQUAL_FATAL(zmp_run("--child-seccomp", NULL, &res), 0);
    CU_ASSERT_EQUAL(res.exit_code, 0);
#ifdef HAVE_URING
    CU_ASSERT_STRING_EQUAL(res.out, "auto: poll\nrun: 0 hi\nforced io_uring: -1\n");
#else
    CU_ASSERT_STRING_EQUAL(res.out, "auto: poll\nrun: 0 hi\nforced io_uring: -95\n");
#endif
    if (res.exit_code)
        fprintf(stderr, "%s", res.output);
    zmp_result_free(&res);
}

void add_misc_tests(void)
{
    CU_pSuite s = CU_add_suite("misc", suite_init, suite_clean);

    CU_add_test(s, "cpu_count follows affinity", test_cpu_count);
    CU_add_test(s, "sleep", test_sleep);
    CU_add_test(s, "signal storm during sleep and wait", test_signal_storm);
    CU_add_test(s, "sleep reaps children", test_sleep_reaps);
    CU_add_test(s, "deinit kills, reaps, restarts", test_deinit);
    CU_add_test(s, "interpreter: call, env, default", test_interpreter_choice);
    CU_add_test(s, "PATH search skips the cwd", test_path_search);
    CU_add_test(s, "engine choice", test_backend_choice);
    CU_add_test(s, "strerror and version", test_strings);
    CU_add_test(s, "parent with 10,000 open fds", test_many_parent_fds);
    CU_add_test(s, "seccomp refuses io_uring: fallback", test_seccomp_fallback);
    CU_add_test(s, "no leaks", test_no_leaks);
}

/* --- child modes ---------------------------------------------------------- */

static int deny_io_uring_setup(void)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { sizeof filter / sizeof filter[0], filter };

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
        return -errno;
    return 0;
}

int child_mode(const char *mode, const char *arg)
{
    const char *args[] = { "hi", NULL };
    zmp_result res;
    int r;

    if (!strcmp(mode, "seccomp")) {
        if (deny_io_uring_setup() < 0)
            return 10;
        unsetenv("ZMP_BACKEND");
        printf("auto: %s\n", zmp_backend());
        zmp_set_interpreter(helper_path());
        r = zmp_run("echo", args, &res);
        printf("run: %d %s", r, r == 0 ? res.out : "\n");
        zmp_result_free(&res);
        zmp_deinit();
        r = zmp_set_backend("io_uring");
        if (r == 0) {
            r = zmp_run("echo", args, &res);
            zmp_result_free(&res);
        }
        printf("forced io_uring: %d\n", r);
        zmp_deinit();
        return 0;
    }
    if (!strcmp(mode, "nproc")) {
        struct rlimit old, rl;

        /* Root is exempt from RLIMIT_NPROC: become nobody first. */
        if (getuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
            return 10;
        getrlimit(RLIMIT_NPROC, &old);
        rl = old;
        rl.rlim_cur = 0;
        if (setrlimit(RLIMIT_NPROC, &rl) < 0)
            return 11;
        zmp_set_interpreter("/bin/true");
        r = zmp_run("x", NULL, &res);
        printf("nproc: %d\n", r);
        zmp_result_free(&res);
        zmp_deinit();
        /* Give the limit back (sanitizer runtimes start threads at exit). */
        setrlimit(RLIMIT_NPROC, &old);
        return 0;
    }
    if (!strcmp(mode, "emfile")) {
        struct rlimit rl;
        const char *x[] = { "x", NULL };

        zmp_set_interpreter(helper_path());
        if (zmp_run("echo", NULL, &res) == 0)  /* engine up */
            zmp_result_free(&res);
        int fill[16], n = 0;

        /* The hard limit too, so zmp has nothing to raise; then the table
         * is filled up. */
        rl.rlim_cur = rl.rlim_max = (rlim_t)count_fds() + 16;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            return 11;
        while (n < 16 && (fill[n] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
            n++;
        r = zmp_run("echo", NULL, &res);
        printf("emfile: %d children: %s", r, no_children() ? "none" : "some");
        if (r == 0)
            zmp_result_free(&res);
        while (n > 0)
            close(fill[--n]);
        r = zmp_run("echo", x, &res);
        printf(" after: %d %s", r, r == 0 ? res.out : "\n");
        zmp_result_free(&res);
        zmp_deinit();
        return 0;
    }
    if (!strcmp(mode, "queue")) {
        enum { N = 60 };
        const char *argv[] = { "sleep", "30", NULL };
        zmp_options jobs[N];
        zmp_result rs[N];
        int errs[N], i, ok = 0;
        struct rlimit rl;

        zmp_set_interpreter(helper_path());
        for (i = 0; i < N; i++)
            jobs[i] = (zmp_options){ .argv = argv };
        if (zmp_run("echo", NULL, &res) == 0)  /* engine up */
            zmp_result_free(&res);
        rl.rlim_cur = rl.rlim_max = (rlim_t)count_fds() + 30;  /* ~8 jobs */
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            return 11;
        r = zmp_run_batch(jobs, N, 50, rs, NULL, errs, NULL, NULL);
        for (i = 0; i < N; i++) {
            ok += errs[i] == 0 && rs[i].ok;
            zmp_result_free(&rs[i]);
        }
        printf("queue: %d ok: %d\n", r, ok);
        zmp_deinit();
        return 0;
    }
    r = reliability_child_mode(mode, arg);
    if (r >= 0)
        return r;
    r = options_child_mode(mode, arg);
    if (r >= 0)
        return r;
    fprintf(stderr, "unknown child mode %s\n", mode);
    return 2;
}
