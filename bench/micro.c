/* SPDX-License-Identifier: MIT */
/*
 * Micro-benchmarks of the engine in use (ZMP_BACKEND):
 *  - zmp_poll on a running child: ns per call, and how many of the calls
 *    made a system call (counted with syscall user dispatch, 5.11+: each
 *    system call of a watched call traps, is counted, and is then made on
 *    its behalf);
 *  - zmp_sleep(1) and zmp_sleep(10): overshoot past the deadline, median
 *    and 99th percentile, in microseconds.
 *
 *   micro CHILD POLLS SLEEPS
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "bench.h"
#include "zmp.h"

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#endif
#define SUD_ALLOW 0
#define SUD_BLOCK 1

static volatile char selector = SUD_ALLOW;
static volatile long trapped;

/* A system call made while the selector says BLOCK lands here instead: count
 * it, let the rest of the call through, and make this one ourselves. */
static void on_sigsys(int sig, siginfo_t *si, void *uc_)
{
    ucontext_t *uc = uc_;
    greg_t *g = uc->uc_mcontext.gregs;
    long r;

    (void)sig;
    selector = SUD_ALLOW;
    trapped++;
    r = syscall(si->si_syscall, g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10],
                g[REG_R8], g[REG_R9]);
    g[REG_RAX] = r == -1 ? -errno : r;
}

static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, bench_cmp);
    return v[(size_t)(p * (double)(n - 1))];
}

int main(int argc, char **argv)
{
    const char *args[] = { "5000", "x", NULL };
    struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
    long polls, sleeps, with_syscall = 0, i;
    double t0, ns, *ov1, *ov10;
    int h, r, sud;

    if (argc != 4) {
        fprintf(stderr, "usage: micro CHILD POLLS SLEEPS\n");
        return 2;
    }
    polls = atol(argv[2]);
    sleeps = atol(argv[3]);
    zmp_set_interpreter(argv[1]);
    h = zmp_spawn("sleep", args);
    if (h < 0) {
        fprintf(stderr, "micro: zmp_spawn: %s\n", zmp_strerror(h));
        return 1;
    }
    for (i = 0; i < 1000; i++)
        zmp_poll(h, NULL);
    t0 = bench_now();
    for (i = 0; i < polls; i++)
        if ((r = zmp_poll(h, NULL)) != 0)
            return 1;
    ns = (bench_now() - t0) / (double)polls * 1e9;

    sigaction(SIGSYS, &sa, NULL);
    sud = prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, 0, 0, &selector);
    if (sud == 0) {
        for (i = 0; i < 1000; i++) {
            long before = trapped;

            selector = SUD_BLOCK;
            r = zmp_poll(h, NULL);
            selector = SUD_ALLOW;
            with_syscall += trapped != before;
        }
        prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
    }
    zmp_kill(h);

    ov1 = calloc((size_t)sleeps, sizeof *ov1);
    ov10 = calloc((size_t)sleeps, sizeof *ov10);
    for (i = 0; i < sleeps; i++) {
        t0 = bench_now();
        zmp_sleep(1);
        ov1[i] = (bench_now() - t0 - 0.001) * 1e6;
        t0 = bench_now();
        zmp_sleep(10);
        ov10[i] = (bench_now() - t0 - 0.010) * 1e6;
    }
    printf("{\"engine\":\"%s\",\"poll_ns\":%.1f,\"poll_calls_with_syscall\":%ld,"
           "\"poll_calls_checked\":%d,\"sleep1_us_median\":%.1f,\"sleep1_us_p99\":%.1f,"
           "\"sleep10_us_median\":%.1f,\"sleep10_us_p99\":%.1f}\n",
           zmp_backend(), ns, sud == 0 ? with_syscall : -1L, sud == 0 ? 1000 : 0,
           pct(ov1, (size_t)sleeps, 0.5), pct(ov1, (size_t)sleeps, 0.99),
           pct(ov10, (size_t)sleeps, 0.5), pct(ov10, (size_t)sleeps, 0.99));
    return 0;
}
