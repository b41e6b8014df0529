/* SPDX-License-Identifier: MIT */
/*
 * Fan-out: JOBS runs of a command, at most PAR at once, stdout and stderr
 * of each captured (kept until the job ends, then counted and dropped).
 * One method per run; bench/run.py alternates them.
 *
 *   fanout METHOD JOBS PAR [--hold-mib N] [--warm N] [--max-seconds S]
 *          [--min-jobs N] [--threads N] -- CMD [ARG...]
 *
 * METHOD
 *   zmp      zmp_run_batch (the engine: ZMP_BACKEND)
 *   floor    what the kernel allows, no library: clone3(CLONE_VM |
 *            CLONE_VFORK | CLONE_PIDFD) on a stack of its own, two pipes,
 *            epoll over pipes and pidfds, waitid(P_PIDFD)
 *   floor-mt the same floor on --threads spawning threads (0, the default
 *            for this method: one per usable CPU; never more than PAR),
 *            each with its share of the PAR slots and its own epoll set
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
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "zmp.h"

extern char **environ;

static char **cmd;
/* Atomic for floor-mt's spawner threads (a cost of nanoseconds per job). */
static _Atomic unsigned long long total_bytes;
static atomic_size_t total_done;
static size_t min_done;

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

/* One spawning thread of the floor (floor: one; floor-mt: one per CPU). */
struct spawner {
    pthread_t tid;
    unsigned par;
    int child_out, child_err;    /* the pipe ends the next child takes */
    char *stack;                 /* the children's, one at a time */
};

/* Jobs handed out so far, over all spawners: each takes the next. */
static atomic_size_t claimed;
static size_t jobs_total;

static bool claim(void)
{
    if (late())
        return false;
    return atomic_fetch_add(&claimed, 1) < jobs_total;
}

/* The child, on its spawner's stack, sharing the parent's memory until
 * execve: raw system calls only, nothing that touches the parent's state. */
static int floor_child(void *arg)
{
    struct spawner *sp = arg;

    if (syscall(SYS_dup2, sp->child_out, 1) < 0 || syscall(SYS_dup2, sp->child_err, 2) < 0)
        return 127;
    syscall(SYS_execve, cmd[0], cmd, environ);
    return 127;
}

#define FLOOR_STACK (64 * 1024)

static void floor_start(struct spawner *sp, int ep, struct slot *s, size_t k)
{
    struct epoll_event ev = { .events = EPOLLIN };
    struct clone_args_ ca = { 0 };
    int o[2], e[2], pidfd = -1;
    long pid;

    if (pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0) {
        perror("fanout: pipe2");
        exit(1);
    }
    sp->child_out = o[1];
    sp->child_err = e[1];
    ca.flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD;
    ca.pidfd = (uintptr_t)&pidfd;
    ca.exit_signal = SIGCHLD;
    ca.stack = (uintptr_t)sp->stack;
    ca.stack_size = FLOOR_STACK;
    pid = clone3_vfork(&ca, floor_child, sp);
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

/* One spawner's loop: par slots, jobs claimed until none is left. */
static void *floor_loop(void *arg)
{
    struct spawner *sp = arg;
    unsigned par = sp->par;
    struct slot *slots = calloc(par, sizeof *slots);
    struct epoll_event evs[256];
    size_t started = 0, done = 0, *freelist = calloc(par, sizeof *freelist), nfree = 0;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    bool more = true;

    for (size_t k = 0; k < par; k++)
        freelist[nfree++] = par - 1 - k;
    while (done < started || more) {
        while (more && nfree) {
            size_t k;

            if (!(more = claim()))
                break;
            k = freelist[--nfree];
            floor_start(sp, ep, &slots[k], k);
            started++;
        }
        if (done == started)
            break;
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
    return NULL;
}

/*
 * nthreads spawners, each with its share of the par slots (a spawner per
 * CPU at most, each with one slot at least), taking jobs from one count.
 * Each spawner's children share the one fd table: a child copies the pipes
 * of the other spawners at clone and closes them at exec (O_CLOEXEC), as
 * they would in any threaded program.
 */
static void run_floor_threads(size_t n, unsigned par, unsigned nthreads)
{
    struct spawner *sp;

    if (nthreads > par)
        nthreads = par;
    sp = calloc(nthreads, sizeof *sp);
    jobs_total = n;
    atomic_store(&claimed, 0);
    for (unsigned t = 0; t < nthreads; t++) {
        sp[t].par = par / nthreads + (t < par % nthreads);
        if (posix_memalign((void **)&sp[t].stack, 64, FLOOR_STACK)) {
            perror("fanout: posix_memalign");
            exit(1);
        }
    }
    if (nthreads == 1) {
        floor_loop(&sp[0]);
    } else {
        for (unsigned t = 0; t < nthreads; t++)
            if (pthread_create(&sp[t].tid, NULL, floor_loop, &sp[t])) {
                fprintf(stderr, "fanout: pthread_create failed\n");
                exit(1);
            }
        for (unsigned t = 0; t < nthreads; t++)
            pthread_join(sp[t].tid, NULL);
    }
    for (unsigned t = 0; t < nthreads; t++)
        free(sp[t].stack);
    free(sp);
}

static unsigned floor_threads;

static void run_floor(size_t n, unsigned par)
{
    run_floor_threads(n, par, 1);
}

static void run_floor_mt(size_t n, unsigned par)
{
    run_floor_threads(n, par, floor_threads);
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
        { "floor-mt", run_floor_mt },
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
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            floor_threads = (unsigned)strtoul(argv[++i], NULL, 0);
        else
            goto usage;
    }
    if (k < 0 || i + 1 >= argc || !n || !par)
        goto usage;
    if (!floor_threads) {
        cpu_set_t cpus;

        floor_threads = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? (unsigned)CPU_COUNT(&cpus) : 1;
    }
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
    if (m[k].fn == run_floor_mt)
        fprintf(stderr, "fanout: floor-mt on %u spawner threads\n", floor_threads < par ? floor_threads : par);
    return 0;
usage:
    fprintf(stderr, "usage: fanout zmp|floor|floor-mt|pspoll JOBS PAR [--hold-mib N] "
                    "[--warm N] [--max-seconds S] [--min-jobs N] [--threads N] -- CMD [ARG...]\n");
    return 2;
}
