/* SPDX-License-Identifier: MIT */
/*
 * Starting a child, vfork-style.
 *
 * The child shares the parent's memory (CLONE_VM) on a private stack until
 * it calls execve, and the calling thread sleeps meanwhile (CLONE_VFORK):
 * nothing is copied, so the cost does not grow with the parent's size, and
 * no page tables are duplicated.  Other threads of the parent keep running,
 * so the child side touches no lock and no allocator: it only makes system
 * calls on data the parent prepared, each through syscall(2), never libc's
 * wrapper, which may be interposed (a sanitizer's interceptors, a preloaded
 * library) and wait on a lock that another thread of the parent holds, or
 * keep state that belongs to the sleeping parent thread.
 *
 * An exec failure travels back as the child's errno in the memory it
 * shares with us, read once CLONE_VFORK lets us go.  Where CLONE_VM is not
 * honoured (valgrind runs the child as a plain fork) the child's writes
 * never reach us: then a close-on-exec pipe carries it (an int, written
 * atomically) and end of file means exec happened.  The pipe is not read
 * otherwise: its end of file waits for every copy of the write end, and a
 * fork() by another thread while the child starts holds one for as long as
 * that copy lives.  Once a child has been seen writing to our memory, the
 * pipe is not even made.
 *
 * Methods, best first, each remembered once it fails with ENOSYS or EPERM
 * (seccomp profiles answer either):
 *   clone3(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)   5.3+, x86-64 only here
 *     with CLONE_CLEAR_SIGHAND (5.5) and CLONE_INTO_CGROUP (5.7), each
 *     dropped when the kernel refuses it
 *   clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)    5.2+ for the pidfd
 *   clone(CLONE_VM | CLONE_VFORK) + pidfd_open     pidfd_open 5.3+
 *   no pidfd at all (the poll engine then waits by pid)
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* As glibc's posix_spawn: room for lazy symbol binding, whose xsave area
 * is large on CPUs with AVX-512 or AMX. */
#define CHILD_STACK (32 * 1024)

/* Features found missing, so they are not tried on every spawn; read
 * and set by any thread that spawns, hence the relaxed atomics. */
static int no_clone3;
static int no_clear_sighand;
static int no_clone_pidfd;
static int no_pidfd_open;
static int no_close_range_cloexec;
static int no_close_range;
/* A child was seen writing to our memory: CLONE_VM is honoured, and the
 * exec-error pipe is no longer made (a pipe and three closes a spawn). */
static int vm_shared;

struct child_args {
    const struct zmp__spawn_args *a;
    uint64_t nofile[2];    /* the caller's own limit, to restore ... */
    bool set_nofile;       /* ... when zmp raised the soft limit */
    unsigned disabled;
    int errfd;   /* write end of the exec-error pipe, or -1 */
    pid_t parent;     /* our pid, for a->die_with_parent */
    bool in_cgroup;   /* clone3 started it in a->cgroup_fd already */
    bool cleared;     /* clone3 set the caught signals to default */
    int ran;     /* set by the child: we share its memory */
    int err;     /* the child's errno when exec failed, else 0 */
};

#define NO_SANITIZE __attribute__((no_sanitize("address", "undefined", "thread")))

/* Mark every descriptor >= 3 close-on-exec by walking /proc/self/fd, for
 * kernels before close_range (5.9).  getdents64 is a raw system call with a
 * buffer on this stack: no malloc in the child. */
NO_SANITIZE static int cloexec_walk(void)
{
    char buf[1024];
    long n, off;
    int dir, fd;

    dir = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/fd",
                       O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return -errno;
    while ((n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
        for (off = 0; off < n;) {
            struct { uint64_t ino; int64_t off; unsigned short reclen;
                     unsigned char type; char name[]; } *d = (void *)(buf + off);
            const char *s = d->name;
            fd = 0;
            if (*s >= '0' && *s <= '9') {
                while (*s >= '0' && *s <= '9')
                    fd = fd * 10 + (*s++ - '0');
                if (fd >= 3 && fd != dir)
                    syscall(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
            }
            off += d->reclen;
        }
    }
    syscall(SYS_close, dir);
    return n < 0 ? -errno : 0;
}

/* The kernel's own sigaction layout, used so that glibc's reserved signals
 * (its SIGCANCEL and SIGSETXID, which it refuses to let us change) are
 * reset too: their handlers must never run in the child. */
struct ksigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};

/* The hex mask after `key` in the text of /proc/self/status, or false. */
NO_SANITIZE static bool status_mask(const char *buf, size_t n, const char *key,
                                    uint64_t *ret)
{
    size_t i, k, klen;
    uint64_t m = 0;
    int d;

    /* No strlen or memcmp: a sanitizer intercepts them too. */
    for (klen = 0; key[klen]; klen++)
        ;
    for (i = 0; i + klen < n; i++) {
        if (i > 0 && buf[i - 1] != '\n')
            continue;
        for (k = 0; k < klen && buf[i + k] == key[k]; k++)
            ;
        if (k < klen)
            continue;
        for (k = i + klen; k < n && (buf[k] == ' ' || buf[k] == '\t'); k++)
            ;
        for (; k < n && buf[k] != '\n'; k++) {
            d = buf[k] >= 'a' ? buf[k] - 'a' + 10 : buf[k] - '0';
            if (d < 0 || d > 15)
                return false;
            m = m << 4 | (uint64_t)d;
        }
        if (k == n)
            return false;  /* cut off: the line did not end */
        *ret = m;
        return true;
    }
    return false;
}

/*
 * The signals the parent catches, from the text of /proc/self/status: a
 * few system calls instead of one rt_sigaction per signal (the kernel
 * formats the whole file, about 14 us here).  Needed only where clone3
 * could not clear them (CLONE_CLEAR_SIGHAND, 5.5).
 */
NO_SANITIZE static int read_caught(uint64_t *ret)
{
    char buf[4096];
    size_t n = 0;
    ssize_t r;
    /* Raw system calls: no sanitizer interceptor runs in the child. */
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/status",
                          O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    while (n < sizeof buf && (r = syscall(SYS_read, fd, buf + n, sizeof buf - n)) > 0)
        n += (size_t)r;
    syscall(SYS_close, fd);
    return status_mask(buf, n, "SigCgt:", ret) ? 0 : -EIO;
}

#define SIGBIT(s) ((uint64_t)1 << ((s) - 1))

/*
 * Signals the child gets back to default even when the caller ignores
 * them, as Python's restore_signals does: a program expects to die of
 * SIGPIPE on a closed pipe and of SIGXFSZ past its file size limit, and
 * one that inherits SIGCHLD ignored loses its own children's statuses.
 * Other ignored signals stay ignored, as exec and posix_spawn leave them,
 * so that nohup and a shell's background jobs keep working.
 */
#define RESET_ALWAYS (SIGBIT(SIGPIPE) | SIGBIT(SIGXFSZ) | SIGBIT(SIGCHLD))

/*
 * Caught signals to default, and those above; then an empty mask.  clone3
 * has cleared the caught ones in the kernel already (CLONE_CLEAR_SIGHAND);
 * otherwise the child finds them in /proc/self/status, or, without /proc,
 * asks for each.
 */
NO_SANITIZE static void reset_signals(const struct child_args *c)
{
    struct ksigaction dfl = { 0 }, cur;
    uint64_t empty = 0, todo = RESET_ALWAYS, caught;
    int sig;

    if (!c->cleared) {
        if (read_caught(&caught) == 0) {
            todo |= caught;
        } else {
            for (sig = 1; sig < 65; sig++)
                if (syscall(SYS_rt_sigaction, sig, NULL, &cur, sizeof(uint64_t)) == 0 &&
                    cur.handler != (void *)SIG_DFL && cur.handler != (void *)SIG_IGN)
                    todo |= SIGBIT(sig);
        }
    }
    /* Dispositions first, mask last: a signal pending since the parent
     * blocked everything is then delivered with its default action, never
     * to a handler of the parent running on the parent's memory. */
    for (sig = 1; sig < 65; sig++)
        if (todo & SIGBIT(sig) && sig != SIGKILL && sig != SIGSTOP)
            syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(uint64_t));
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty, NULL, sizeof(uint64_t));
}

NO_SANITIZE static int child_main(void *arg)
{
    struct child_args *c = arg;
    const struct zmp__spawn_args *a = c->a;
    int fd[3], i, err;

    __atomic_store_n(&c->ran, 1, __ATOMIC_RELAXED);
    /*
     * First, to keep the window short: the kernel sends the signal when
     * the thread that started us exits (the whole process dying, even by
     * SIGKILL, included).  A parent that died before the prctl left us to
     * init or a subreaper, which getppid() then names: nobody is waiting
     * for this child, so it goes.  While CLONE_VFORK holds the starting
     * thread, that thread cannot exit alone, only with its process.
     */
    if (a->die_with_parent) {
        if (syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0UL, 0UL, 0UL) < 0)
            goto fail;
        if (syscall(SYS_getppid) != c->parent) {
            errno = ESRCH;
            goto fail;
        }
    }
    /* The error pipe must not sit where stdio is about to go. */
    if (c->errfd >= 0 && c->errfd < 3) {
        i = (int)syscall(SYS_fcntl, c->errfd, F_DUPFD_CLOEXEC, 3);
        if (i < 0)
            goto fail;
        c->errfd = i;
    }

    /* Lift any source below 3 out of the way first, so installing one
     * cannot overwrite another, and so each source differs from its
     * target, as dup3 wants (it clears close-on-exec). */
    for (i = 0; i < 3; i++) {
        fd[i] = a->stdio[i];
        if (fd[i] >= 0 && fd[i] < 3) {
            fd[i] = (int)syscall(SYS_fcntl, fd[i], F_DUPFD_CLOEXEC, 3);
            if (fd[i] < 0)
                goto fail;
        }
    }
    for (i = 0; i < 3; i++)
        if (fd[i] >= 0 && syscall(SYS_dup3, fd[i], i, 0) < 0)
            goto fail;

    /* Only 0, 1 and 2 may survive exec.  The CLOEXEC form (5.11) only
     * flags the table; closing (5.9) walks and frees every descriptor,
     * which costs with a large table. */
    if (!(c->disabled & ZMP__F_CLOSE_RANGE)) {
        /* The child shares our memory: what it learns here is kept. */
        if (!__atomic_load_n(&no_close_range_cloexec, __ATOMIC_RELAXED)) {
            if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
                goto fds_done;
            __atomic_store_n(&no_close_range_cloexec, 1, __ATOMIC_RELAXED);
        }
        /* Closing must spare the error pipe (it is above 2 by now). */
        if (!__atomic_load_n(&no_close_range, __ATOMIC_RELAXED)) {
            if (c->errfd < 0 ? syscall(SYS_close_range, 3U, ~0U, 0U) == 0 :
                (c->errfd == 3 ||
                 syscall(SYS_close_range, 3U, (unsigned)c->errfd - 1, 0U) == 0) &&
                syscall(SYS_close_range, (unsigned)c->errfd + 1, ~0U, 0U) == 0)
                goto fds_done;
            __atomic_store_n(&no_close_range, 1, __ATOMIC_RELAXED);
        }
    }
    if (cloexec_walk() < 0) {
        /* No /proc either: flag each possible descriptor, the last resort
         * of kernels before 5.9. */
        uint64_t rl[2];
        int k, max = 65536;

        if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, rl) == 0 &&
            rl[0] < (uint64_t)max)
            max = (int)rl[0];
        for (k = 3; k < max; k++)
            syscall(SYS_fcntl, k, F_SETFD, FD_CLOEXEC);
    }
fds_done:
    if (a->cwd && syscall(SYS_chdir, a->cwd) < 0)
        goto fail;
    if (a->new_pgroup && syscall(SYS_setpgid, 0, 0) < 0)
        goto fail;
    /* clone() could not put us in the job's cgroup: move ourselves. */
    if (a->cgroup_fd >= 0 && !c->in_cgroup) {
        int cfd = (int)syscall(SYS_openat, a->cgroup_fd, "cgroup.procs",
                               O_WRONLY | O_CLOEXEC);

        if (cfd < 0 || syscall(SYS_write, cfd, "0", 1) != 1)
            goto fail;
        syscall(SYS_close, cfd);
    }
    /* zmp raised the soft limit for itself; the program gets the one its
     * caller had (a lower soft limit is always allowed). */
    if (c->set_nofile)
        (void)syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, c->nofile, NULL);
    reset_signals(c);
    syscall(SYS_execve, a->path, a->argv, a->envp);
fail:
    err = errno ? errno : EIO;
    __atomic_store_n(&c->err, err, __ATOMIC_RELAXED);
    while (c->errfd >= 0 && syscall(SYS_write, c->errfd, &err, sizeof err) < 0 &&
           errno == EINTR)
        ;
    syscall(SYS_exit_group, 127);
    return 127;
}

#if defined(__x86_64__)
/*
 * clone3 returns in the child on the new stack, where no C frame exists, so
 * the child's first instructions must be ours: call fn(arg) and exit with
 * its result.  fn and arg ride in callee-saved registers, which the child
 * inherits.
 */
NO_SANITIZE static long clone3_vfork(struct clone_args *ca,
                                     int (*fn)(void *), void *arg)
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
#else
/* Only x86-64 has the entry point above: elsewhere clone() is used. */
static long clone3_vfork(struct clone_args *ca, int (*fn)(void *), void *arg)
{
    (void)ca;
    (void)fn;
    (void)arg;
    return -ENOSYS;
}
#endif

/* Whether clone3 is to be asked to set the caught signals to default. */
static bool clear_sighand(const struct child_args *c)
{
    return !__atomic_load_n(&no_clone3, __ATOMIC_RELAXED) &&
           !(c->disabled & (ZMP__F_CLONE3 | ZMP__F_CLEAR_SIGHAND)) &&
           !__atomic_load_n(&no_clear_sighand, __ATOMIC_RELAXED);
}

bool zmp__have_pidfd(void)
{
    static int known = -1;  /* any thread may ask first: atomic */
    int fd, k = __atomic_load_n(&known, __ATOMIC_RELAXED);

    if (zmp__disabled() & ZMP__F_PIDFD)
        return false;
    if (k < 0) {
        fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
        if (fd >= 0)
            close(fd);
        /* Only a definite answer is kept: out of descriptors (EMFILE,
         * ENFILE) says nothing about the kernel, and the spawn that
         * follows meets the same shortage and reports it. */
        else if (errno != ENOSYS && errno != EPERM)
            return true;
        k = fd >= 0;
        __atomic_store_n(&known, k, __ATOMIC_RELAXED);
    }
    return k;
}

static void reap_failed(pid_t pid, int pidfd)
{
    siginfo_t si;

    /* The child has already exited: CLONE_VFORK returned after its exit. */
    (void)zmp__pidref_wait(pidfd, pid, &si, WEXITED, NULL);
    if (pidfd >= 0)
        close(pidfd);
}

int zmp__spawn(const struct zmp__spawn_args *a, pid_t *ret_pid, int *ret_pidfd)
{
    char stack[CHILD_STACK] __attribute__((aligned(64)));
    struct child_args c = { .a = a, .disabled = zmp__disabled() };
    /* CLONE_PIDFD came in 5.2, but a pidfd only polls from 5.3, the
     * release that brought pidfd_open: ask for one only where it works. */
    bool want_pidfd = !a->no_pidfd && zmp__have_pidfd();
    struct rlimit rl = { 0, 0 };
    sigset_t all, old;
    bool blocked = false;
    int pidfd = -1, saved_errno = errno, errpipe[2] = { -1, -1 }, err = 0;
    long pid = -ENOSYS;
    ssize_t n;

    if (!__atomic_load_n(&vm_shared, __ATOMIC_RELAXED) && pipe2(errpipe, O_CLOEXEC) < 0)
        return -errno;
    c.errfd = errpipe[1];
    c.parent = a->die_with_parent ? getpid() : 0;
    c.set_nofile = zmp__nofile_for_child(&rl);
    /* prlimit64's layout, whatever the width of rlim_t. */
    c.nofile[0] = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
    c.nofile[1] = rl.rlim_max == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_max;

    /* No handler of the parent may run in the child, on the parent's
     * memory.  Where clone3 clears them, the child has none from birth;
     * otherwise every signal stays blocked until the child has reset
     * them, and this thread blocks them across the clone. */
    sigfillset(&all);
    if (!clear_sighand(&c)) {
        pthread_sigmask(SIG_SETMASK, &all, &old);
        blocked = true;
    }

    if (!__atomic_load_n(&no_clone3, __ATOMIC_RELAXED) && !(c.disabled & ZMP__F_CLONE3)) {
        struct clone_args ca = {
            .flags = CLONE_VM | CLONE_VFORK | (want_pidfd ? CLONE_PIDFD : 0),
            .pidfd = (uintptr_t)&pidfd,
            .exit_signal = SIGCHLD,
            .stack = (uintptr_t)stack,
            .stack_size = sizeof stack,
        };

        /* The kernel sets the caught signals to default in the child. */
        if (clear_sighand(&c)) {
            ca.flags |= CLONE_CLEAR_SIGHAND;
            c.cleared = true;
        }
        /* Born in its cgroup (5.7): no window outside it. */
        if (a->cgroup_fd >= 0) {
            ca.flags |= CLONE_INTO_CGROUP;
            ca.cgroup = (uint64_t)a->cgroup_fd;
            c.in_cgroup = true;
        }
        pid = ZMP__FAULT("clone3", EAGAIN, clone3_vfork(&ca, child_main, &c));
        if (a->cgroup_fd >= 0 && (pid == -EINVAL || pid == -E2BIG)) {
            /* A kernel before 5.7: join the cgroup from the child. */
            ca.flags &= ~(uint64_t)CLONE_INTO_CGROUP;
            c.in_cgroup = false;
            pid = clone3_vfork(&ca, child_main, &c);
        }
        if (pid == -EINVAL && c.cleared) {
            /* Before 5.5: the child resets every signal itself. */
            ca.flags &= ~(uint64_t)CLONE_CLEAR_SIGHAND;
            c.cleared = false;
            if (!blocked) {
                pthread_sigmask(SIG_SETMASK, &all, &old);
                blocked = true;
            }
            pid = clone3_vfork(&ca, child_main, &c);
            if (pid != -EINVAL)
                __atomic_store_n(&no_clear_sighand, 1, __ATOMIC_RELAXED);
        }
        if (pid == -ENOSYS || pid == -EPERM)
            __atomic_store_n(&no_clone3, 1, __ATOMIC_RELAXED);
    }
    if (pid == -ENOSYS || pid == -EPERM) {
        int flags = CLONE_VM | CLONE_VFORK | SIGCHLD;

        /* clone() has no CLONE_INTO_CGROUP: the child joins by itself;
         * nor CLONE_CLEAR_SIGHAND: it resets every signal itself. */
        c.in_cgroup = false;
        c.cleared = false;
        if (!blocked) {
            pthread_sigmask(SIG_SETMASK, &all, &old);
            blocked = true;
        }

        if (want_pidfd && !__atomic_load_n(&no_clone_pidfd, __ATOMIC_RELAXED))
            flags |= CLONE_PIDFD;
        pid = clone(child_main, stack + sizeof stack, flags, &c, &pidfd);
        if (pid < 0)
            pid = -errno;
    }
    if (blocked)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (errpipe[1] >= 0)
        close(errpipe[1]);
    if (pid < 0) {
        if (errpipe[0] >= 0)
            close(errpipe[0]);
        errno = saved_errno;
        return (int)pid;
    }
    /* With CLONE_VFORK the child has exec'd or exited by now, and with
     * CLONE_VM its word is in c (see the top of this file); else the pipe
     * has it, or its end of file once the forked child has exec'd. */
    if (__atomic_load_n(&c.ran, __ATOMIC_ACQUIRE)) {
        err = __atomic_load_n(&c.err, __ATOMIC_RELAXED);
        __atomic_store_n(&vm_shared, 1, __ATOMIC_RELAXED);
    } else if (errpipe[0] >= 0) {
        do
            n = read(errpipe[0], &err, sizeof err);
        while (n < 0 && errno == EINTR);
        if (n != (ssize_t)sizeof err)
            err = 0;
    }
    if (errpipe[0] >= 0)
        close(errpipe[0]);

    /* Kernels before 5.2 ignore CLONE_PIDFD in clone(): no pidfd came. */
    if (want_pidfd && pidfd < 0) {
        __atomic_store_n(&no_clone_pidfd, 1, __ATOMIC_RELAXED);
        if (!__atomic_load_n(&no_pidfd_open, __ATOMIC_RELAXED)) {
            pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
            if (pidfd < 0 && errno == ENOSYS)
                __atomic_store_n(&no_pidfd_open, 1, __ATOMIC_RELAXED);
        }
    }
    if (err) {
        reap_failed((pid_t)pid, pidfd);
        errno = saved_errno;
        return -err;
    }
    /* A child of this process is ours until reaped, so pidfd_open cannot
     * name another process: the pid cannot be recycled before we wait. */
    *ret_pid = (pid_t)pid;
    *ret_pidfd = pidfd;
    errno = saved_errno;
    return 0;
}
