/* SPDX-License-Identifier: MIT */
/* Shared by the benchmark programs. */
#ifndef ZMP_BENCH_H
#define ZMP_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

/* What an older libc header may lack, for the floors' own spawns. */
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static inline double bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* The median of n values (sorts them). */
static inline double bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, bench_cmp);
    return v[n / 2];
}

/*
 * Hold mib MiB of touched anonymous memory for the life of the process,
 * in small pages (MADV_NOHUGEPAGE), as a big application would: what a
 * fork-based spawn has to copy the page tables of.
 */
static inline void bench_hold(size_t mib)
{
    size_t len = mib << 20;
    char *p;

    if (!mib)
        return;
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("bench: mmap");
        exit(1);
    }
    madvise(p, len, MADV_NOHUGEPAGE);
    /* MADV_POPULATE_WRITE (5.14+) faults it all in at once: page faults
     * are slow in this kind of VM.  Else touch each page. */
    if (madvise(p, len, 23) != 0)
        for (size_t i = 0; i < len; i += 4096)
            p[i] = 1;
}

/* Set by --max-seconds: start no new job past this time (0: none). */
static double bench_deadline;

static inline int bench_late(void)
{
    return bench_deadline > 0 && bench_now() > bench_deadline;
}

/* The one line each benchmark program prints, read by bench/run.py. */
static inline void bench_report(const char *method, double seconds, size_t count,
                                unsigned long long bytes, const char *engine)
{
    printf("{\"method\":\"%s\",\"seconds\":%.9f,\"count\":%zu,\"bytes\":%llu,"
           "\"engine\":\"%s\"}\n", method, seconds, count, bytes, engine ? engine : "");
    fflush(stdout);
}

/* The floors' clone3 (no library): the arguments as the kernel reads them. */
struct clone_args_ {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack,
        stack_size, tls, set_tid, set_tid_size, cgroup;
};

/* clone3 returns in the child on the new stack, where no C frame exists:
 * its first instructions must call fn and exit (as src/spawn.c does). */
static inline long clone3_vfork(struct clone_args_ *ca, int (*fn)(void *), void *arg)
{
    register long rax __asm__("rax") = SYS_clone3;
    register void *r12 __asm__("r12") = (void *)fn;
    register void *r13 __asm__("r13") = arg;

    __asm__ volatile(
        "syscall\n\t"
        "testq %%rax, %%rax\n\t"
        "jnz 1f\n\t"
        "xorl %%ebp, %%ebp\n\t"
        "movq %%r13, %%rdi\n\t"
        "callq *%%r12\n\t"
        "movl %%eax, %%edi\n\t"
        "movl $60, %%eax\n\t"
        "syscall\n\t"
        "hlt\n"
        "1:\n\t"
        : "+r"(rax)
        : "D"(ca), "S"(sizeof *ca), "r"(r12), "r"(r13)
        : "rcx", "r11", "memory", "cc");
    return rax;
}

#endif
