/*
 * Fan-out: JOBS runs of a command, at most PAR at once, stdout and stderr
 * of each captured (kept until the job ends, then counted and dropped).
 * One method per run; bench/run.py alternates them.
 *
 *   fanout METHOD JOBS PAR [--hold-mib N] [--warm N] [--max-seconds S]
 *          [--min-jobs N] -- CMD [ARG...]
 *
 * METHOD
 *   zmp      zmp_run_batch (the engine: ZMP_BACKEND)
 *   floor    what the kernel allows, no library: clone3(CLONE_VM |
 *            CLONE_VFORK | CLONE_PIDFD) on a stack of its own, two pipes,
 *            epoll over pipes and pidfds, waitid(P_PIDFD)
 *   pspoll   the classic portable loop: posix_spawn, two pipes, poll(),
 *            waitpid once both pipes are at end of file
 *
 * --max-seconds: start no new job after S seconds, once --min-jobs are done
 * (the count reports the jobs done).  Prints one JSON line: seconds (of the timed part only),
 * count, bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "zmp.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

extern char **environ;

static char **cmd;
static unsigned long long total_bytes;
static size_t total_done, min_done;

/* Past the deadline, and enough jobs done for the rate to mean something. */
static int late(void)
{
    return total_done >= min_done && bench_late();
}

/* ---- zmp -------------------------------------------------------------- */

static int zmp_done(void *arg, size_t i, int err, zmp_result *res,
                    const zmp_info *info)
{
    (void)arg, (void)i, (void)info;
    if (err == -ECANCELED)
        return 1;
    if (err || !res->ok) {
        fprintf(stderr, "fanout: zmp job failed: %s\n", zmp_strerror(err));
        exit(1);
    }
    total_bytes += res->out_len + res->err_len;
    total_done++;
    zmp_result_free(res);
    return late();
}

static void run_zmp(size_t n, unsigned par)
{
    zmp_options *jobs = calloc(n, sizeof *jobs);
    zmp_result *res = calloc(n, sizeof *res);
    int r;

    for (size_t i = 0; i < n; i++) {
        jobs[i].program = cmd[0];
        jobs[i].argv = (const char *const *)cmd;
    }
    r = zmp_run_batch(jobs, n, par, res, NULL, NULL, zmp_done, NULL);
    if (r < 0) {
        fprintf(stderr, "fanout: zmp_run_batch: %s\n", zmp_strerror(r));
        exit(1);
    }
    free(jobs);
    free(res);
}

/* ---- the floor -------------------------------------------------------- */

struct slot {
    int out, err, pidfd, open;   /* open: how many of the three are left */
    uint32_t gen;                /* bumped at each start of the slot */
    char *buf;
    size_t len, cap;
};

static int child_out, child_err;

/* The child, on its own stack, sharing the parent's memory until execve:
 * raw system calls only, nothing that touches the parent's state. */
static int floor_child(void *arg)
{
    (void)arg;
    if (syscall(SYS_dup2, child_out, 1) < 0 || syscall(SYS_dup2, child_err, 2) < 0)
        return 127;
    syscall(SYS_execve, cmd[0], cmd, environ);
    return 127;
}

static char floor_stack[64 * 1024] __attribute__((aligned(16)));

static void floor_start(int ep, struct slot *s, size_t k)
{
    struct epoll_event ev = { .events = EPOLLIN };
    struct clone_args_ ca = { 0 };
    int o[2], e[2], pidfd = -1;
    long pid;

    if (pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0) {
        perror("fanout: pipe2");
        exit(1);
    }
    child_out = o[1];
    child_err = e[1];
    ca.flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD;
    ca.pidfd = (uintptr_t)&pidfd;
    ca.exit_signal = SIGCHLD;
    ca.stack = (uintptr_t)floor_stack;
    ca.stack_size = sizeof floor_stack;
    pid = clone3_vfork(&ca, floor_child, NULL);
    if (pid < 0) {
        fprintf(stderr, "fanout: clone3: %s\n", strerror((int)-pid));
        exit(1);
    }
    close(o[1]);
    close(e[1]);
    s->out = o[0];
    s->err = e[0];
    s->pidfd = pidfd;
    s->open = 3;
    s->len = 0;
    s->gen++;
    ev.data.u64 = (uint64_t)s->gen << 32 | k << 2 | 0;
    epoll_ctl(ep, EPOLL_CTL_ADD, o[0], &ev);
    ev.data.u64 = (uint64_t)s->gen << 32 | k << 2 | 1;
    epoll_ctl(ep, EPOLL_CTL_ADD, e[0], &ev);
    ev.data.u64 = (uint64_t)s->gen << 32 | k << 2 | 2;
    epoll_ctl(ep, EPOLL_CTL_ADD, pidfd, &ev);
}

static void run_floor(size_t n, unsigned par)
{
    struct slot *slots = calloc(par, sizeof *slots);
    struct epoll_event evs[256];
    size_t started = 0, done = 0, *freelist = calloc(par, sizeof *freelist), nfree = 0;
    int ep = epoll_create1(EPOLL_CLOEXEC);

    for (size_t k = 0; k < par; k++)
        freelist[nfree++] = par - 1 - k;
    while (done < started || (started < n && !late())) {
        while (started < n && nfree && !late()) {
            size_t k = freelist[--nfree];

            floor_start(ep, &slots[k], k);
            started++;
        }
        int m = epoll_wait(ep, evs, 256, -1);
        for (int j = 0; j < m; j++) {
            size_t k = (evs[j].data.u64 & 0xffffffffu) >> 2;
            int what = (int)(evs[j].data.u64 & 3);
            struct slot *s = &slots[k];

            /*
             * With CLONE_VFORK the parent resumes when the child drops the
             * shared memory, before exec closes the child's copy of the fd
             * table: a descriptor closed here meanwhile stays in the epoll
             * set, still firing, for a moment.  Its events carry an older
             * generation of the slot: skip them (no EPOLL_CTL_DEL needed).
             */
            if (evs[j].data.u64 >> 32 != s->gen)
                continue;
            if ((what == 0 && s->out < 0) || (what == 1 && s->err < 0) ||
                (what == 2 && s->pidfd < 0))
                continue;
            if (what == 2) {
                siginfo_t si;

                if (waitid((idtype_t)P_PIDFD, (id_t)s->pidfd, &si, WEXITED) < 0) {
                    perror("fanout: waitid");
                    exit(1);
                }
                close(s->pidfd);
                s->pidfd = -1;
                s->open--;
            } else {
                int fd = what ? s->err : s->out;
                ssize_t r;

                if (s->cap - s->len < 4096) {
                    s->cap = s->cap ? 2 * s->cap : 4096;
                    s->buf = realloc(s->buf, s->cap);
                }
                r = read(fd, s->buf + s->len, s->cap - s->len);
                if (r > 0) {
                    s->len += (size_t)r;
                    continue;
                }
                close(fd);
                *(what ? &s->err : &s->out) = -1;
                s->open--;
            }
            if (!s->open) {
                total_bytes += s->len;
                total_done++;
                freelist[nfree++] = k;
                done++;
            }
        }
    }
    close(ep);
    for (size_t k = 0; k < par; k++)
        free(slots[k].buf);
    free(slots);
    free(freelist);
}

/* ---- posix_spawn + poll ----------------------------------------------- */

struct pjob {
    pid_t pid;
    char *buf;
    size_t len, cap;
};

static void ps_start(struct pollfd *pf, struct pjob *j)
{
    posix_spawn_file_actions_t fa;
    int o[2], e[2];

    if (pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0) {
        perror("fanout: pipe2");
        exit(1);
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, o[1], 1);
    posix_spawn_file_actions_adddup2(&fa, e[1], 2);
    if (posix_spawn(&j->pid, cmd[0], &fa, NULL, cmd, environ) != 0) {
        perror("fanout: posix_spawn");
        exit(1);
    }
    posix_spawn_file_actions_destroy(&fa);
    close(o[1]);
    close(e[1]);
    pf[0] = (struct pollfd){ .fd = o[0], .events = POLLIN };
    pf[1] = (struct pollfd){ .fd = e[0], .events = POLLIN };
    j->len = 0;
}

static void run_pspoll(size_t n, unsigned par)
{
    struct pollfd *pf = calloc(2 * (size_t)par, sizeof *pf);
    struct pjob *jobs = calloc(par, sizeof *jobs);
    size_t started = 0, done = 0;

    for (size_t k = 0; k < par; k++)
        pf[2 * k].fd = pf[2 * k + 1].fd = -1;
    for (size_t k = 0; k < par && started < n; k++, started++)
        ps_start(&pf[2 * k], &jobs[k]);
    while (done < started) {
        if (poll(pf, 2 * (nfds_t)par, -1) < 0) {
            perror("fanout: poll");
            exit(1);
        }
        for (size_t i = 0; i < 2 * (size_t)par; i++) {
            struct pjob *j = &jobs[i / 2];
            ssize_t r;

            if (pf[i].fd < 0 || !pf[i].revents)
                continue;
            if (j->cap - j->len < 4096) {
                j->cap = j->cap ? 2 * j->cap : 4096;
                j->buf = realloc(j->buf, j->cap);
            }
            r = read(pf[i].fd, j->buf + j->len, j->cap - j->len);
            if (r > 0) {
                j->len += (size_t)r;
                continue;
            }
            close(pf[i].fd);
            pf[i].fd = -1;
            if (pf[i ^ 1].fd >= 0)
                continue;
            waitpid(j->pid, NULL, 0);
            total_bytes += j->len;
            total_done++;
            done++;
            if (started < n && !late()) {
                ps_start(&pf[i & ~(size_t)1], j);
                started++;
            }
        }
    }
    for (size_t k = 0; k < par; k++)
        free(jobs[k].buf);
    free(jobs);
    free(pf);
}

int main(int argc, char **argv)
{
    static const struct { const char *name; void (*fn)(size_t, unsigned); } m[] = {
        { "zmp", run_zmp }, { "floor", run_floor }, { "pspoll", run_pspoll },
    };
    size_t n, warm = 0, hold = 0;
    unsigned par;
    int i, k = -1;
    double t0, max_s = 0;

    if (argc < 5)
        goto usage;
    for (i = 0; i < (int)(sizeof m / sizeof m[0]); i++)
        if (!strcmp(argv[1], m[i].name))
            k = i;
    n = strtoul(argv[2], NULL, 0);
    par = (unsigned)strtoul(argv[3], NULL, 0);
    for (i = 4; i < argc && strcmp(argv[i], "--"); i++) {
        if (!strcmp(argv[i], "--hold-mib") && i + 1 < argc)
            hold = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--warm") && i + 1 < argc)
            warm = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--max-seconds") && i + 1 < argc)
            max_s = strtod(argv[++i], NULL);
        else if (!strcmp(argv[i], "--min-jobs") && i + 1 < argc)
            min_done = strtoul(argv[++i], NULL, 0);
        else
            goto usage;
    }
    if (k < 0 || i + 1 >= argc || !n || !par)
        goto usage;
    cmd = &argv[i + 1];
    if (par > n)
        par = (unsigned)n;
    bench_hold(hold);
    if (warm)
        m[k].fn(warm, par < warm ? par : (unsigned)warm);
    total_bytes = 0;
    total_done = 0;
    t0 = bench_now();
    if (max_s > 0)
        bench_deadline = t0 + max_s;
    m[k].fn(n, par);
    t0 = bench_now() - t0;
    bench_report(m[k].name, t0, total_done, total_bytes, k == 0 ? zmp_backend() : NULL);
    return 0;
usage:
    fprintf(stderr, "usage: fanout zmp|floor|pspoll JOBS PAR [--hold-mib N] "
                    "[--warm N] [--max-seconds S] [--min-jobs N] -- CMD [ARG...]\n");
    return 2;
}
