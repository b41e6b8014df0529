/* SPDX-License-Identifier: MIT */
/*
 * Serial spawn and wait, no capture: one method per run (bench/run.py
 * alternates them), the children's stdout on /dev/null.
 *
 *   spawn METHOD COUNT [--hold-mib N] [--max-seconds S] -- CHILD
 *
 * METHOD: zmp (zmp_spawn + zmp_wait, the engine from ZMP_BACKEND), vfork
 * (+ execve + waitpid), clone3 (CLONE_VM | CLONE_VFORK on a stack of its
 * own), posix_spawn, fork.  The child runs as CHILD echo hello.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "zmp.h"

extern char **environ;

static const char *child;
static char *cargv[4];

/* One vfork per call: a loop around vfork would have its counter in a
 * register the child may clobber. */
static void vfork_once(void)
{
    pid_t pid = vfork();

    if (pid == 0) {
        execve(child, cargv, environ);
        _exit(127);
    }
    waitpid(pid, NULL, 0);
}

static size_t run_vfork(size_t n)
{
    size_t i;

    for (i = 0; i < n && !bench_late(); i++)
        vfork_once();
    return i;
}

static int clone_child(void *arg)
{
    (void)arg;
    syscall(SYS_execve, child, cargv, environ);
    return 127;
}

static char stack[64 * 1024] __attribute__((aligned(16)));

static size_t run_clone3(size_t n)
{
    size_t i;

    struct clone_args_ ca = {
        .flags = CLONE_VM | CLONE_VFORK, .exit_signal = SIGCHLD,
        .stack = (uintptr_t)stack, .stack_size = sizeof stack,
    };

    for (i = 0; i < n && !bench_late(); i++) {
        long pid = clone3_vfork(&ca, clone_child, NULL);

        if (pid < 0)
            exit(1);
        waitpid((pid_t)pid, NULL, 0);
    }
    return i;
}

static size_t run_posix_spawn(size_t n)
{
    size_t i;

    pid_t pid;

    for (i = 0; i < n && !bench_late(); i++) {
        if (posix_spawn(&pid, child, NULL, NULL, cargv, environ) != 0)
            exit(1);
        waitpid(pid, NULL, 0);
    }
    return i;
}

static size_t run_fork(size_t n)
{
    size_t i;

    for (i = 0; i < n && !bench_late(); i++) {
        pid_t pid = fork();

        if (pid == 0) {
            execve(child, cargv, environ);
            _exit(127);
        }
        if (pid < 0)
            exit(1);
        waitpid(pid, NULL, 0);
    }
    return i;
}

static size_t run_zmp(size_t n)
{
    size_t i;

    /* The child is the "interpreter": CHILD echo hello, as above. */
    const char *args[] = { "hello", NULL };

    for (i = 0; i < n && !bench_late(); i++) {
        int h = zmp_spawn("echo", args);

        if (h < 0 || zmp_wait(h, NULL) < 0)
            exit(1);
    }
    return i;
}

int main(int argc, char **argv)
{
    static const struct { const char *name; size_t (*fn)(size_t); } m[] = {
        { "zmp", run_zmp }, { "vfork", run_vfork }, { "clone3", run_clone3 },
        { "posix_spawn", run_posix_spawn }, { "fork", run_fork },
    };
    size_t n, hold = 0;
    int i, k = -1, fd;
    double t0, max_s = 0;

    if (argc < 5)
        goto usage;
    for (i = 0; i < (int)(sizeof m / sizeof m[0]); i++)
        if (!strcmp(argv[1], m[i].name))
            k = i;
    n = strtoul(argv[2], NULL, 0);
    for (i = 3; i < argc && strcmp(argv[i], "--"); i++) {
        if (!strcmp(argv[i], "--hold-mib") && i + 1 < argc)
            hold = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--max-seconds") && i + 1 < argc)
            max_s = strtod(argv[++i], NULL);
        else
            goto usage;
    }
    if (k < 0 || i + 1 >= argc || !n)
        goto usage;
    child = argv[i + 1];
    cargv[0] = (char *)child;
    cargv[1] = "echo";
    cargv[2] = "hello";
    zmp_set_interpreter(child);
    bench_hold(hold);
    /* The children's stdout goes away, ours stays for the report. */
    fd = dup(1);
    if (fd < 0 || dup2(open("/dev/null", O_WRONLY), 1) < 0)
        return 1;
    m[k].fn(n / 20 + 1 < 50 ? n / 20 + 1 : 50);   /* warm-up */
    t0 = bench_now();
    if (max_s > 0)
        bench_deadline = t0 + max_s;
    n = m[k].fn(n);
    t0 = bench_now() - t0;
    dup2(fd, 1);
    bench_report(m[k].name, t0, n, 0, k == 0 ? zmp_backend() : NULL);
    return 0;
usage:
    fprintf(stderr, "usage: spawn zmp|vfork|clone3|posix_spawn|fork COUNT "
                    "[--hold-mib N] [--max-seconds S] -- CHILD\n");
    return 2;
}
