/*
 * Serial spawn and wait, no capture: zmp_spawn + zmp_wait against raw
 * vfork + execve + waitpid, and posix_spawn + waitpid, alternating in one
 * run.  Prints spawns per second (median of the rounds) and ratios.
 *
 *   spawn CHILD COUNT ROUNDS
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "zmp.h"

extern char **environ;

static const char *child;

/* One vfork per call: a loop around vfork would have its counter in a
 * register the child may clobber. */
static void vfork_once(char *const *argv)
{
    pid_t pid = vfork();

    if (pid == 0) {
        execve(child, argv, environ);
        _exit(127);
    }
    waitpid(pid, NULL, 0);
}

static void run_vfork(int n)
{
    char *argv[] = { (char *)child, "echo", "hello", NULL };

    for (int i = 0; i < n; i++)
        vfork_once(argv);
}

static void run_posix_spawn(int n)
{
    char *argv[] = { (char *)child, "echo", "hello", NULL };
    pid_t pid;

    for (int i = 0; i < n; i++) {
        if (posix_spawn(&pid, child, NULL, NULL, argv, environ) != 0)
            exit(1);
        waitpid(pid, NULL, 0);
    }
}

static void run_zmp(int n)
{
    /* The child is the "interpreter": CHILD echo hello, as above. */
    const char *args[] = { "hello", NULL };

    for (int i = 0; i < n; i++) {
        int h = zmp_spawn("echo", args);
        if (h < 0 || zmp_wait(h, NULL) < 0)
            exit(1);
    }
}

int main(int argc, char **argv)
{
    static const struct { const char *name; void (*fn)(int); } m[] = {
        { "vfork+execve", run_vfork },
        { "posix_spawn", run_posix_spawn },
        { "zmp_spawn+wait", run_zmp },
    };
    enum { M = sizeof m / sizeof m[0] };
    int n, rounds, i, k;
    double rate[M][64], med[M];

    if (argc < 4) {
        fprintf(stderr, "usage: spawn CHILD COUNT ROUNDS\n");
        return 2;
    }
    child = argv[1];
    n = atoi(argv[2]);
    rounds = atoi(argv[3]);
    if (rounds > 64)
        rounds = 64;
    zmp_set_interpreter(child);
    /* stdout of the children: away, so the terminal does not set the pace. */
    if (!freopen("/dev/null", "w", stdout))
        return 1;
    for (k = 0; k < rounds; k++)
        for (i = 0; i < M; i++) {
            double t0 = bench_now();
            m[i].fn(n);
            rate[i][k] = n / (bench_now() - t0);
        }
    for (i = 0; i < M; i++)
        med[i] = bench_median(rate[i], (size_t)rounds);
    for (i = 0; i < M; i++)
        fprintf(stderr, "%-16s %8.0f spawns/s  (x%.2f of vfork)  [%s]\n", m[i].name,
                med[i], med[i] / med[0], zmp_backend());
    return 0;
}
