/* SPDX-License-Identifier: MIT */
/*
 * Threads calling zmp: THREADS threads, each running a no-libc child over
 * and over for --max-seconds, all started together.  One method and one
 * thread count per run (bench/run.py alternates them).
 *
 *   threads METHOD THREADS [--max-seconds S] [--warm N] [--serialize]
 *           -- CHILD [ARG...]
 *
 * METHOD
 *   run      zmp_run_opts of CHILD ARG..., stdout and stderr captured
 *   spawn    zmp_spawn + zmp_wait of CHILD echo hello (CHILD is set as the
 *            interpreter, as in bench/spawn), stdio inherited (/dev/null)
 *   hand     the captured run done by hand in each thread, no library:
 *            clone3(CLONE_VM | CLONE_VFORK) on the thread's own stack, two
 *            pipes, poll() until both are at end of file, waitid: what the
 *            kernel allows THREADS threads to reach
 *
 * --serialize takes one mutex around every zmp call: for a library that
 * is not yet safe to call from several threads at once.  The default is
 * no lock.  --warm N: each thread's runs before the clock starts (5).
 *
 * Prints one JSON line: seconds (from the common start to the last
 * thread's end), count (runs of all threads), bytes captured, and the
 * thread count.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "zmp.h"

extern char **environ;

static char **cmd;
static bool serialize;
static pthread_mutex_t zmp_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t ready, go;
static size_t warm = 5;

static void lock(void)
{
    if (serialize)
        pthread_mutex_lock(&zmp_lock);
}

static void unlock(void)
{
    if (serialize)
        pthread_mutex_unlock(&zmp_lock);
}

struct worker {
    pthread_t tid;
    size_t (*fn)(struct worker *, size_t);
    size_t count;
    unsigned long long bytes;
    /* hand: the child's stack and its pipe ends */
    char *stack;
    int child_out, child_err;
};

/* ---- zmp_run_opts ----------------------------------------------------- */

static size_t run_zmp(struct worker *w, size_t n)
{
    zmp_options o = { .program = cmd[0], .argv = (const char *const *)cmd };
    size_t i;

    for (i = 0; i < n && !bench_late(); i++) {
        zmp_result res;
        int r;

        lock();
        r = zmp_run_opts(&o, &res, NULL);
        unlock();
        if (r < 0 || !res.ok) {
            fprintf(stderr, "threads: zmp_run_opts: %s\n", r < 0 ? zmp_strerror(r) : "child failed");
            exit(1);
        }
        w->bytes += res.out_len + res.err_len;
        lock();
        zmp_result_free(&res);
        unlock();
    }
    return i;
}

/* ---- zmp_spawn + zmp_wait --------------------------------------------- */

static size_t run_spawn(struct worker *w, size_t n)
{
    /* The child is the "interpreter": CHILD echo hello, as bench/spawn. */
    const char *args[] = { "hello", NULL };
    size_t i;

    (void)w;
    for (i = 0; i < n && !bench_late(); i++) {
        int h, r, code = -1;

        lock();
        h = zmp_spawn("echo", args);
        unlock();
        if (h < 0) {
            fprintf(stderr, "threads: zmp_spawn: %s\n", zmp_strerror(h));
            exit(1);
        }
        lock();
        r = zmp_wait(h, &code);
        unlock();
        if (r < 0 || code != 0) {
            fprintf(stderr, "threads: zmp_wait: %s\n", r < 0 ? zmp_strerror(r) : "child failed");
            exit(1);
        }
    }
    return i;
}

/* ---- by hand ---------------------------------------------------------- */

/* The child, on its thread's stack, sharing the memory until execve: raw
 * system calls only. */
static int hand_child(void *arg)
{
    struct worker *w = arg;

    if (syscall(SYS_dup2, w->child_out, 1) < 0 || syscall(SYS_dup2, w->child_err, 2) < 0)
        return 127;
    syscall(SYS_execve, cmd[0], cmd, environ);
    return 127;
}

static size_t run_hand(struct worker *w, size_t n)
{
    size_t i, cap = 4096;
    char *buf = malloc(cap);

    for (i = 0; i < n && !bench_late(); i++) {
        struct clone_args_ ca = {
            .flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD, .exit_signal = SIGCHLD,
            .stack = (uintptr_t)w->stack, .stack_size = 64 * 1024,
        };
        struct pollfd pf[2];
        int o[2], e[2], pidfd = -1, open = 2;
        size_t len = 0;
        siginfo_t si;
        long pid;

        if (pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0) {
            perror("threads: pipe2");
            exit(1);
        }
        w->child_out = o[1];
        w->child_err = e[1];
        ca.pidfd = (uintptr_t)&pidfd;
        pid = clone3_vfork(&ca, hand_child, w);
        if (pid < 0) {
            fprintf(stderr, "threads: clone3: %s\n", strerror((int)-pid));
            exit(1);
        }
        close(o[1]);
        close(e[1]);
        pf[0] = (struct pollfd){ .fd = o[0], .events = POLLIN };
        pf[1] = (struct pollfd){ .fd = e[0], .events = POLLIN };
        while (open) {
            if (poll(pf, 2, -1) < 0 && errno != EINTR) {
                perror("threads: poll");
                exit(1);
            }
            for (int k = 0; k < 2; k++) {
                ssize_t r;

                if (pf[k].fd < 0 || !pf[k].revents)
                    continue;
                if (cap - len < 4096)
                    buf = realloc(buf, cap *= 2);
                r = read(pf[k].fd, buf + len, cap - len);
                if (r > 0) {
                    len += (size_t)r;
                    continue;
                }
                close(pf[k].fd);
                pf[k].fd = -1;
                open--;
            }
        }
        if (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0 || si.si_status != 0) {
            fprintf(stderr, "threads: waitid: child failed\n");
            exit(1);
        }
        close(pidfd);
        w->bytes += len;
    }
    free(buf);
    return i;
}

/* ---- the threads ------------------------------------------------------ */

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    w->fn(w, warm);
    w->bytes = 0;
    pthread_barrier_wait(&ready);
    /* main sets the deadline between the two barriers */
    pthread_barrier_wait(&go);
    w->count = w->fn(w, SIZE_MAX);
    return NULL;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        size_t (*fn)(struct worker *, size_t);
    } m[] = { { "run", run_zmp }, { "spawn", run_spawn }, { "hand", run_hand } };
    struct worker *ws;
    unsigned nt;
    int i, k = -1, fd = -1;
    double t0, max_s = 1;
    size_t count = 0;
    unsigned long long bytes = 0;

    if (argc < 4)
        goto usage;
    for (i = 0; i < (int)(sizeof m / sizeof m[0]); i++)
        if (!strcmp(argv[1], m[i].name))
            k = i;
    nt = (unsigned)strtoul(argv[2], NULL, 0);
    for (i = 3; i < argc && strcmp(argv[i], "--"); i++) {
        if (!strcmp(argv[i], "--max-seconds") && i + 1 < argc)
            max_s = strtod(argv[++i], NULL);
        else if (!strcmp(argv[i], "--warm") && i + 1 < argc)
            warm = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--serialize"))
            serialize = true;
        else
            goto usage;
    }
    if (k < 0 || i + 1 >= argc || !nt || nt > 1024 || max_s <= 0)
        goto usage;
    cmd = &argv[i + 1];
    if (m[k].fn == run_spawn) {
        zmp_set_interpreter(cmd[0]);
        /* The children's stdout goes away, ours stays for the report. */
        fd = dup(1);
        if (fd < 0 || dup2(open("/dev/null", O_WRONLY), 1) < 0)
            return 1;
    }
    ws = calloc(nt, sizeof *ws);
    if (pthread_barrier_init(&ready, NULL, nt + 1) || pthread_barrier_init(&go, NULL, nt + 1))
        return 1;
    for (unsigned t = 0; t < nt; t++) {
        ws[t].fn = m[k].fn;
        if (m[k].fn == run_hand && posix_memalign((void **)&ws[t].stack, 64, 64 * 1024))
            return 1;
        if (pthread_create(&ws[t].tid, NULL, worker_main, &ws[t])) {
            fprintf(stderr, "threads: pthread_create failed\n");
            return 1;
        }
    }
    pthread_barrier_wait(&ready);
    t0 = bench_now();
    bench_deadline = t0 + max_s;
    pthread_barrier_wait(&go);
    for (unsigned t = 0; t < nt; t++) {
        pthread_join(ws[t].tid, NULL);
        count += ws[t].count;
        bytes += ws[t].bytes;
        free(ws[t].stack);
    }
    t0 = bench_now() - t0;
    if (fd >= 0)
        dup2(fd, 1);
    printf("{\"method\":\"%s\",\"seconds\":%.9f,\"count\":%zu,\"bytes\":%llu,"
           "\"engine\":\"%s\",\"threads\":%u,\"serialize\":%s}\n",
           m[k].name, t0, count, bytes, m[k].fn == run_hand ? "" : zmp_backend(), nt,
           serialize && m[k].fn != run_hand ? "true" : "false");
    free(ws);
    return 0;
usage:
    fprintf(stderr, "usage: threads run|spawn|hand THREADS [--max-seconds S] [--warm N] "
                    "[--serialize] -- CHILD [ARG...]\n");
    return 2;
}
