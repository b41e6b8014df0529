/* SPDX-License-Identifier: MIT */
/*
 * Every child alive, in a form a signal handler can read.
 *
 * zmp_signal_all() is meant for handlers (Ctrl-C in a program running
 * jobs), where no lock may be taken and the engine's lists, which the
 * interrupted code may be changing, cannot be walked.  So each child also
 * has an entry here: fixed-size chunks that are never moved or freed while
 * the process runs, whose fields are written with atomic stores, the pid
 * last when a child is added and first when it goes.  A handler reads the
 * entries below the high-water mark and skips those with no pid.
 *
 * Adding and removing entries happens in normal context, under a mutex.
 * An entry is cleared before its pidfd is closed, so a handler that
 * interrupts the thread owning the child never uses a closed pidfd.  A
 * handler running on another thread at that very moment can still read a
 * pidfd number just before it is closed and reused: the signal then fails
 * with EBADF, or reaches whatever pidfd took the number (a child zmp has
 * started since, in practice).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "internal.h"

#define CHUNK  1024u
#define CHUNKS 1024u  /* room for 1,048,576 children at once */

struct entry {
    int pid;    /* > 0 while the child can be signalled */
    int pidfd;
    int cgfd;
    int group;
};

static struct entry *chunks[CHUNKS];
static unsigned hwm;          /* entries [0, hwm) have been handed out */
static unsigned *free_idx;    /* released entries, for reuse */
static size_t nfree, free_cap;
static unsigned live;         /* entries handed out and not released */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static struct entry *entry(unsigned i)
{
    struct entry *c = __atomic_load_n(&chunks[i / CHUNK], __ATOMIC_ACQUIRE);

    return c ? &c[i % CHUNK] : NULL;
}

/* An entry for a child about to start, empty (no pid) until
 * zmp__reg_set().  Returns its index, or -ENOMEM / -EAGAIN. */
int zmp__reg_reserve(void)
{
    struct entry *c;
    unsigned i;
    int r;

    pthread_mutex_lock(&lock);
    if (nfree) {
        r = (int)free_idx[--nfree];
        __atomic_add_fetch(&live, 1, __ATOMIC_RELAXED);
        goto out;
    }
    i = __atomic_load_n(&hwm, __ATOMIC_RELAXED);
    if (i >= CHUNK * CHUNKS) {
        r = -EAGAIN;
        goto out;
    }
    if (!chunks[i / CHUNK]) {
        c = calloc(CHUNK, sizeof *c);
        if (!c) {
            r = -ENOMEM;
            goto out;
        }
        __atomic_store_n(&chunks[i / CHUNK], c, __ATOMIC_RELEASE);
    }
    /* Released entries go back to free_idx: make sure there is room
     * for every entry handed out, so a release never needs memory. */
    if (free_cap <= i) {
        size_t cap = free_cap ? free_cap * 2 : CHUNK;
        unsigned *a = realloc(free_idx, cap * sizeof *a);

        if (!a) {
            r = -ENOMEM;
            goto out;
        }
        free_idx = a;
        free_cap = cap;
    }
    /* After a fork the entry may still hold a pid of the parent's. */
    __atomic_store_n(&chunks[i / CHUNK][i % CHUNK].pid, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&hwm, i + 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&live, 1, __ATOMIC_RELAXED);
    r = (int)i;
out:
    pthread_mutex_unlock(&lock);
    return r;
}

/* The child of entry i started: from now on zmp_signal_all() reaches it. */
void zmp__reg_set(int i, pid_t pid, int pidfd, int cgfd, bool group)
{
    struct entry *e = entry((unsigned)i);

    __atomic_store_n(&e->pidfd, pidfd, __ATOMIC_RELAXED);
    __atomic_store_n(&e->cgfd, cgfd, __ATOMIC_RELAXED);
    __atomic_store_n(&e->group, group, __ATOMIC_RELAXED);
    __atomic_store_n(&e->pid, pid, __ATOMIC_RELEASE);
}

/* The child is reaped (or about to be), or its descriptors about to be
 * closed: zmp_signal_all() leaves it alone from now on. */
void zmp__reg_clear(int i)
{
    if (i >= 0)
        __atomic_store_n(&entry((unsigned)i)->pid, 0, __ATOMIC_RELEASE);
}

void zmp__reg_release(int i)
{
    if (i < 0)
        return;
    zmp__reg_clear(i);
    pthread_mutex_lock(&lock);
    free_idx[nfree++] = (unsigned)i;
    __atomic_sub_fetch(&live, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&lock);
}

/* How many children of this process zmp holds now, every context
 * together; a hint, read without the lock. */
unsigned zmp__reg_live(void)
{
    return __atomic_load_n(&live, __ATOMIC_RELAXED);
}

/* Around a fork(): the lock is held across it, so the child never copies
 * a half-grown free list. */
void zmp__reg_fork(bool before)
{
    if (before)
        pthread_mutex_lock(&lock);
    else
        pthread_mutex_unlock(&lock);
}

/* In the child of a fork(): the entries name the parent's children, which
 * this process must never signal.  Only this thread exists here, and it
 * holds the lock (zmp__reg_fork before the fork). */
void zmp__reg_forget(void)
{
    pthread_mutex_unlock(&lock);
    __atomic_store_n(&hwm, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&live, 0, __ATOMIC_RELAXED);
    nfree = 0;
}

int zmp_signal_all(int sig)
{
    unsigned i, end;
    struct entry *e;
    int pid, pidfd, cgfd, saved = errno, n = 0;
    bool group;

    if (sig < 0 || sig >= NSIG)
        return -EINVAL;
    end = __atomic_load_n(&hwm, __ATOMIC_ACQUIRE);
    for (i = 0; i < end; i++) {
        e = entry(i);
        if (!e || (pid = __atomic_load_n(&e->pid, __ATOMIC_ACQUIRE)) <= 0)
            continue;
        pidfd = __atomic_load_n(&e->pidfd, __ATOMIC_RELAXED);
        cgfd = __atomic_load_n(&e->cgfd, __ATOMIC_RELAXED);
        group = __atomic_load_n(&e->group, __ATOMIC_RELAXED);
        /* A job's cgroup holds its whole tree, escapees included. */
        if (sig == SIGKILL && cgfd >= 0)
            zmp__cgroup_kill(cgfd);
        if (sig == 0 || zmp__pidref_signal(pidfd, pid, group, sig) == 0)
            n++;
    }
    errno = saved;
    return n;
}
