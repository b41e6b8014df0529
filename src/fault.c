/* SPDX-License-Identifier: MIT */
/*
 * Fault injection: the wrappers that src/fault.h redirects the library's
 * fallible calls to, and the counter that decides which call fails.
 * Built only with ./configure --enable-fault-injection.
 */
#include "config.h"

#ifdef HAVE_URING
#include <liburing.h>
#endif
#define ZMP_FAULT_NO_WRAP
#include "fault.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* The vfork-style child runs these wrappers too, on the parent's memory
 * and a small stack: no sanitizer instrumentation, and nothing written. */
#define CHILD_SAFE __attribute__((no_sanitize("address", "undefined")))

static unsigned long nth, burst = 1, calls;
static long owner;   /* the pid that counts; 0: nobody */
static struct {
    bool done;
    const char *name, *file;
    int line, err;
} hit;
static void (*trace)(const char *name, const char *file, int line);

void zmp__fault_arm(unsigned long n, unsigned long b)
{
    nth = n;
    burst = b ? b : 1;
    calls = 0;
    hit.done = false;
    owner = syscall(SYS_getpid);
}

void zmp__fault_disarm(void)
{
    nth = 0;
}

unsigned long zmp__fault_calls(void)
{
    return calls;
}

bool zmp__fault_injected(const char **ret_name, const char **ret_file,
                         int *ret_line, int *ret_errno)
{
    if (!hit.done)
        return false;
    *ret_name = hit.name;
    *ret_file = hit.file;
    *ret_line = hit.line;
    *ret_errno = hit.err;
    return true;
}

void zmp__fault_set_trace(void (*fn)(const char *, const char *, int))
{
    trace = fn;
    if (fn && !owner)
        owner = syscall(SYS_getpid);
}

/* $ZMP_FAULT_NTH=N fails the Nth call of the whole run, for programs
 * (the zmp command) that have no other way to ask. */
__attribute__((constructor)) static void from_env(void)
{
    const char *s = getenv("ZMP_FAULT_NTH"), *b = getenv("ZMP_FAULT_BURST");

    if (s && *s)
        zmp__fault_arm(strtoul(s, NULL, 10), b ? strtoul(b, NULL, 10) : 1);
}

CHILD_SAFE bool zmp__fault_fail(const char *name, const char *file, int line,
                                int err)
{
    /* Another pid: the vfork-style child, or a fork of the program. */
    if (!owner || syscall(SYS_getpid) != owner)
        return false;
    calls++;
    if (trace)
        trace(name, file, line);
    if (!nth || calls < nth || calls - nth >= burst)
        return false;
    if (!hit.done) {
        hit.done = true;
        hit.name = name;
        hit.file = file;
        hit.line = line;
        hit.err = err;
    }
    errno = err;
    return true;
}

#define FAIL(name, err) zmp__fault_fail(name, f, l, err)

void *zmp__fault_malloc(const char *f, int l, size_t n)
{
    return FAIL("malloc", ENOMEM) ? NULL : malloc(n);
}

void *zmp__fault_calloc(const char *f, int l, size_t n, size_t size)
{
    return FAIL("calloc", ENOMEM) ? NULL : calloc(n, size);
}

void *zmp__fault_realloc(const char *f, int l, void *p, size_t n)
{
    return FAIL("realloc", ENOMEM) ? NULL : realloc(p, n);
}

char *zmp__fault_strdup(const char *f, int l, const char *s)
{
    return FAIL("strdup", ENOMEM) ? NULL : strdup(s);
}

int zmp__fault_asprintf(const char *f, int l, char **ret, const char *fmt, ...)
{
    va_list ap;
    int r;

    if (FAIL("asprintf", ENOMEM))
        return -1;
    va_start(ap, fmt);
    r = vasprintf(ret, fmt, ap);
    va_end(ap);
    return r;
}

int zmp__fault_pipe2(const char *f, int l, int fds[2], int flags)
{
    return FAIL("pipe2", EMFILE) ? -1 : pipe2(fds, flags);
}

int zmp__fault_socketpair(const char *f, int l, int dom, int type, int proto,
                          int sv[2])
{
    return FAIL("socketpair", EMFILE) ? -1 : socketpair(dom, type, proto, sv);
}

CHILD_SAFE int zmp__fault_open(const char *f, int l, const char *path,
                               int flags, ...)
{
    va_list ap;
    int mode;

    va_start(ap, flags);
    mode = va_arg(ap, int);
    va_end(ap);
    return FAIL("open", EMFILE) ? -1 : open(path, flags, mode);
}

CHILD_SAFE int zmp__fault_openat(const char *f, int l, int dir,
                                 const char *path, int flags, ...)
{
    va_list ap;
    int mode;

    va_start(ap, flags);
    mode = va_arg(ap, int);
    va_end(ap);
    return FAIL("openat", EMFILE) ? -1 : openat(dir, path, flags, mode);
}

CHILD_SAFE int zmp__fault_fcntl(const char *f, int l, int fd, int cmd, ...)
{
    va_list ap;
    long arg;
    int err;

    va_start(ap, cmd);
    arg = va_arg(ap, long);
    va_end(ap);
    /* A pipe over the user's pipe budget; an out-of-descriptors dup. */
    err = cmd == F_SETPIPE_SZ ? EPERM : cmd == F_DUPFD_CLOEXEC ? EMFILE : EBADF;
    return FAIL("fcntl", err) ? -1 : fcntl(fd, cmd, arg);
}

ssize_t zmp__fault_read(const char *f, int l, int fd, void *buf, size_t n)
{
    return FAIL("read", EINTR) ? -1 : read(fd, buf, n);
}

ssize_t zmp__fault_send(const char *f, int l, int fd, const void *buf,
                        size_t n, int flags)
{
    return FAIL("send", ENOBUFS) ? -1 : send(fd, buf, n, flags);
}

int zmp__fault_waitid(const char *f, int l, idtype_t type, id_t id,
                      siginfo_t *si, int options)
{
    /* WNOHANG never sleeps, so it is never interrupted: nothing to
     * inject that the kernel could do. */
    if (!(options & WNOHANG) && FAIL("waitid", EINTR))
        return -1;
    return waitid(type, id, si, options);
}

pid_t zmp__fault_waitpid(const char *f, int l, pid_t pid, int *status,
                         int options)
{
    if (!(options & WNOHANG) && FAIL("waitpid", EINTR))
        return -1;
    return waitpid(pid, status, options);
}

int zmp__fault_ppoll(const char *f, int l, struct pollfd *fds, nfds_t n,
                     const struct timespec *ts, const sigset_t *mask)
{
    return FAIL("ppoll", ENOMEM) ? -1 : ppoll(fds, n, ts, mask);
}

int zmp__fault_kill(const char *f, int l, pid_t pid, int sig)
{
    return FAIL("kill", EPERM) ? -1 : kill(pid, sig);
}

int zmp__fault_clone(const char *f, int l, int (*fn)(void *), void *stack,
                     int flags, void *arg, ...)
{
    va_list ap;
    void *ptid;

    va_start(ap, arg);
    ptid = va_arg(ap, void *);
    va_end(ap);
    return FAIL("clone", EAGAIN) ? -1 : clone(fn, stack, flags, arg, ptid);
}

CHILD_SAFE long zmp__fault_syscall(const char *f, int l, long nr, ...)
{
    va_list ap;
    long a[6];
    int i;

    va_start(ap, nr);
    for (i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    /* Only the calls that can fail for want of a resource. */
    if (nr == SYS_pidfd_open && FAIL("pidfd_open", EMFILE))
        return -1;
    return syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

CHILD_SAFE int zmp__fault_setrlimit(const char *f, int l, int res,
                                    const struct rlimit *rl)
{
    return FAIL("setrlimit", EPERM) ? -1 : setrlimit(res, rl);
}

int zmp__fault_mkdir(const char *f, int l, const char *path, mode_t mode)
{
    return FAIL("mkdir", ENOSPC) ? -1 : mkdir(path, mode);
}

#ifdef HAVE_URING
/* liburing returns -errno and leaves errno alone. */
int zmp__fault_uring_init(const char *f, int l, unsigned entries,
                          struct io_uring *ring, struct io_uring_params *p)
{
    return FAIL("io_uring_queue_init_params", ENOMEM)
               ? -ENOMEM : io_uring_queue_init_params(entries, ring, p);
}

struct io_uring_probe *zmp__fault_uring_probe(const char *f, int l,
                                              struct io_uring *ring)
{
    return FAIL("io_uring_get_probe_ring", ENOMEM) ? NULL
                                                    : io_uring_get_probe_ring(ring);
}

/* A full submission queue. */
struct io_uring_sqe *zmp__fault_uring_sqe(const char *f, int l,
                                          struct io_uring *ring)
{
    return FAIL("io_uring_get_sqe", EBUSY) ? NULL : io_uring_get_sqe(ring);
}

/* The kernel short of memory for a request: nothing was consumed, the
 * entries stay queued for the next submit. */
int zmp__fault_uring_submit(const char *f, int l, struct io_uring *ring)
{
    return FAIL("io_uring_submit", EAGAIN) ? -EAGAIN : io_uring_submit(ring);
}

int zmp__fault_uring_submit_wait(const char *f, int l, struct io_uring *ring,
                                 unsigned n)
{
    return FAIL("io_uring_submit_and_wait", EINTR)
               ? -EINTR : io_uring_submit_and_wait(ring, n);
}

int zmp__fault_uring_sparse(const char *f, int l, struct io_uring *ring,
                            unsigned n)
{
    return FAIL("io_uring_register_files_sparse", ENOMEM)
               ? -ENOMEM : io_uring_register_files_sparse(ring, n);
}

int zmp__fault_uring_update(const char *f, int l, struct io_uring *ring,
                            unsigned off, const int *fds, unsigned n)
{
    return FAIL("io_uring_register_files_update", ENOMEM)
               ? -ENOMEM : io_uring_register_files_update(ring, off, fds, n);
}
#endif
