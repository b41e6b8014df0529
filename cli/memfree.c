/* SPDX-License-Identifier: MIT */
/* --memfree of `zmp parallel`: see memfree.h. */
#define _GNU_SOURCE
#include "memfree.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef PIDFD_SIGNAL_PROCESS_GROUP
#define PIDFD_SIGNAL_PROCESS_GROUP (1u << 2)  /* Linux 6.9 */
#endif

#define TICK_MS        250   /* how often memory is looked at */
#define TICK_ENDING_MS 25    /* ... while a job is being ended */
#define FRESH_S        0.01  /* a MemAvailable read this recently is used again */

struct memfree {
    uint64_t size;
    const zmp_term_step *seq;
    size_t n;
    int tfd;
    uint64_t avail;             /* the last MemAvailable read */
    double read_at;             /* when, or 0 */
    /* The job being ended: its pidfd, pid, the step sent last, when the
     * next is due. */
    int pidfd;
    pid_t pid;
    size_t step;
    double due;
    pid_t *ended;               /* ended here, not yet seen to end */
    size_t nended, cap;
};

static double mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t memfree_available(void)
{
    unsigned long long kb;
    char line[256];
    uint64_t n = UINT64_MAX;
    FILE *f = fopen("/proc/meminfo", "re");

    if (!f)
        return n;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
            n = (uint64_t)kb * 1024;
            break;
        }
    fclose(f);
    return n;
}

static void set_tick(struct memfree *m, unsigned ms)
{
    struct itimerspec it = { .it_interval = { 0, (long)ms * 1000000 },
                             .it_value = { 0, (long)ms * 1000000 } };

    timerfd_settime(m->tfd, 0, &it, NULL);
}

int memfree_new(uint64_t size, const zmp_term_step *seq, size_t n, struct memfree **ret)
{
    struct memfree *m = calloc(1, sizeof *m);

    if (!m)
        return -ENOMEM;
    m->size = size;
    m->seq = seq;
    m->n = n;
    m->pidfd = -1;
    m->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (m->tfd < 0) {
        free(m);
        return -errno;
    }
    set_tick(m, TICK_MS);
    *ret = m;
    return 0;
}

void memfree_free(struct memfree *m)
{
    if (!m)
        return;
    if (m->pidfd >= 0)
        close(m->pidfd);
    close(m->tfd);
    free(m->ended);
    free(m);
}

int memfree_fd(const struct memfree *m)
{
    return m->tfd;
}

/* Whether pidfd's process is a child of zmp not reaped yet (true), and
 * then whether it still runs. */
static bool unreaped(int pidfd, bool *running)
{
    siginfo_t si = { 0 };

    if (syscall(SYS_waitid, P_PIDFD, pidfd, &si, WEXITED | WNOHANG | WNOWAIT, NULL) < 0)
        return false;
    *running = si.si_pid == 0;
    return true;
}

/* sig to the job's process group. */
static void send(struct memfree *m, int sig)
{
    bool running;

    if (syscall(SYS_pidfd_send_signal, m->pidfd, sig, NULL, PIDFD_SIGNAL_PROCESS_GROUP) == 0 ||
        errno != EINVAL)
        return;
    /* Before 6.9: by pgid, which cannot be another group's while its
     * leader is unreaped. */
    if (unreaped(m->pidfd, &running))
        kill(-m->pid, sig);
}

/* The start time of process pid, in clock ticks since boot, and its
 * process group; 0 unknown. */
static unsigned long long start_time(pid_t pid, pid_t *pgrp)
{
    char path[64], buf[1024], *p;
    unsigned long long t = 0;
    ssize_t n;
    FILE *f;
    int k;

    *pgrp = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "re")))
        return 0;
    n = (ssize_t)fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* Past the name, which may hold anything: field 3 on; pgrp is 5,
     * starttime 22. */
    if (!(p = strrchr(buf, ')')))
        return 0;
    p++;
    for (k = 3; k < 22 && p; k++) {
        p = strchr(p + 1, ' ');
        if (k == 4 && p)
            *pgrp = (pid_t)strtol(p + 1, NULL, 10);
    }
    if (p)
        t = strtoull(p + 1, NULL, 10);
    return t;
}

/* The youngest child of any of zmp's threads that leads a process group
 * (a job: one that has not yet left zmp's group is still starting): its
 * pid, or 0. */
static pid_t youngest_child(void)
{
    unsigned long long best = 0, t;
    pid_t pid = 0, pgrp;
    char path[300];
    struct dirent *e;
    DIR *d = opendir("/proc/self/task");
    FILE *f;
    int c;

    if (!d)
        return 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
        if (!(f = fopen(path, "re")))
            continue;
        while (fscanf(f, "%d", &c) == 1) {
            t = start_time(c, &pgrp);
            if (pgrp != c)
                continue;
            if (t > best || (t == best && c > pid)) {
                best = t;
                pid = c;
            }
        }
        fclose(f);
    }
    closedir(d);
    return pid;
}

/* Start ending the youngest job that still runs: true if there is one. */
static bool end_youngest(struct memfree *m, void (*say)(void *, const char *), void *arg)
{
    char line[256];
    bool running;
    pid_t *v, pgrp, pid = youngest_child();
    int fd;

    if (!pid || (fd = (int)syscall(SYS_pidfd_open, pid, 0)) < 0)
        return false;
    /* Ours still (so pid names it), and leading its own group. */
    if (!unreaped(fd, &running) || !running || (start_time(pid, &pgrp), pgrp != pid)) {
        close(fd);
        return false;
    }
    if (m->nended == m->cap) {
        if (!(v = realloc(m->ended, (m->cap ? m->cap * 2 : 8) * sizeof *v))) {
            close(fd);
            return false;
        }
        m->ended = v;
        m->cap = m->cap ? m->cap * 2 : 8;
    }
    m->ended[m->nended++] = pid;
    m->pidfd = fd;
    m->pid = pid;
    m->step = 0;
    if (say) {
        snprintf(line, sizeof line,
                 "zmp parallel: --memfree: %llu MiB of memory available, under half of "
                 "%llu MiB: ending the youngest job (pid %d)\n",
                 (unsigned long long)(m->avail >> 20), (unsigned long long)(m->size >> 20),
                 (int)pid);
        say(arg, line);
    }
    send(m, m->n ? m->seq[0].signal : SIGKILL);
    if (m->n && m->seq[0].signal != SIGKILL)
        send(m, SIGCONT);
    m->due = mono_now() + (m->n ? (double)m->seq[0].ms / 1000 : INFINITY);
    set_tick(m, TICK_ENDING_MS);
    return true;
}

/* The job being ended: gone (forgotten), or its next signal when due. */
static void go_on(struct memfree *m, double now)
{
    bool running;
    int sig;

    if (!unreaped(m->pidfd, &running) || !running) {
        close(m->pidfd);
        m->pidfd = -1;
        m->read_at = 0;  /* what it gave back counts at once */
        set_tick(m, TICK_MS);
        return;
    }
    if (now < m->due)
        return;
    m->step++;
    sig = m->step < m->n ? m->seq[m->step].signal : SIGKILL;
    send(m, sig);
    if (sig != SIGKILL)
        send(m, SIGCONT);
    m->due = m->step < m->n ? now + (double)m->seq[m->step].ms / 1000 : INFINITY;
}

bool memfree_check(struct memfree *m, void (*say)(void *, const char *), void *arg)
{
    double now = mono_now();
    uint64_t drain;

    while (read(m->tfd, &drain, sizeof drain) > 0)
        ;
    if (m->pidfd >= 0)
        go_on(m, now);
    if (now - m->read_at >= FRESH_S) {
        m->avail = memfree_available();
        m->read_at = now;
    }
    if (m->pidfd < 0 && m->avail < m->size / 2)
        end_youngest(m, say, arg);
    return m->avail < m->size;
}

bool memfree_ended(struct memfree *m, pid_t pid)
{
    size_t k;

    for (k = 0; k < m->nended; k++)
        if (m->ended[k] == pid) {
            m->ended[k] = m->ended[--m->nended];
            return true;
        }
    return false;
}
