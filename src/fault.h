/* SPDX-License-Identifier: MIT */
/*
 * Fault injection, for test builds only (./configure --enable-fault-injection
 * defines ZMP_FAULT_INJECTION).
 *
 * In that build every allocation and every system call of the library that
 * can fail goes through a wrapper in src/fault.c that counts the calls and
 * makes the Nth one fail with a plausible errno (ENOMEM for allocations,
 * EMFILE for calls that make a descriptor, EAGAIN for clone, EINTR where
 * the library must retry).  The redirection is done here, by macros, so the
 * library's own files stay as they are; in a normal build this header
 * defines ZMP__FAULT() as its expression and nothing else.
 *
 * Only the process that armed the counter is counted: the vfork-style
 * child of src/spawn.c shares the parent's memory and runs the same
 * wrappers, but it passes straight through them (it is another pid), so
 * it never fails by injection and never touches the counter.
 */
#ifndef ZMP_FAULT_H
#define ZMP_FAULT_H

#ifdef ZMP_FAULT_INJECTION

#include <stdbool.h>
#include <stddef.h>

/* Fail calls nth .. nth+burst-1 counted from now (nth 0: count only).
 * $ZMP_FAULT_NTH (and $ZMP_FAULT_BURST) arm it at start-up. */
void zmp__fault_arm(unsigned long nth, unsigned long burst);
/* Stop failing; the count is kept. */
void zmp__fault_disarm(void);
/* Calls counted since the last arm. */
unsigned long zmp__fault_calls(void);
/* Where the first injected failure since the last arm happened: false
 * when none was injected. */
bool zmp__fault_injected(const char **ret_name, const char **ret_file,
                         int *ret_line, int *ret_errno);
/* Called for every counted call (NULL: none), to list the call sites. */
void zmp__fault_set_trace(void (*fn)(const char *name, const char *file,
                                     int line));

/* True when this call is to fail: errno is then set to err. */
bool zmp__fault_fail(const char *name, const char *file, int line, int err);

/* A call the macros below cannot reach: (expr), or -err when injected. */
#define ZMP__FAULT(name, err, expr) \
    (zmp__fault_fail(name, __FILE__, __LINE__, err) ? -(err) : (expr))

/* Everything a redirected call may be declared in comes first, so no
 * declaration after this point is rewritten. */
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ZMP__AT __FILE__, __LINE__
void *zmp__fault_malloc(const char *f, int l, size_t n);
void *zmp__fault_calloc(const char *f, int l, size_t n, size_t size);
void *zmp__fault_realloc(const char *f, int l, void *p, size_t n);
char *zmp__fault_strdup(const char *f, int l, const char *s);
int zmp__fault_asprintf(const char *f, int l, char **ret, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int zmp__fault_pipe2(const char *f, int l, int fds[2], int flags);
int zmp__fault_socketpair(const char *f, int l, int dom, int type, int proto,
                          int sv[2]);
int zmp__fault_open(const char *f, int l, const char *path, int flags, ...);
int zmp__fault_openat(const char *f, int l, int dir, const char *path,
                      int flags, ...);
int zmp__fault_fcntl(const char *f, int l, int fd, int cmd, ...);
ssize_t zmp__fault_read(const char *f, int l, int fd, void *buf, size_t n);
ssize_t zmp__fault_send(const char *f, int l, int fd, const void *buf,
                        size_t n, int flags);
int zmp__fault_waitid(const char *f, int l, idtype_t type, id_t id,
                      siginfo_t *si, int options);
pid_t zmp__fault_waitpid(const char *f, int l, pid_t pid, int *status,
                         int options);
int zmp__fault_ppoll(const char *f, int l, struct pollfd *fds, nfds_t n,
                     const struct timespec *ts, const sigset_t *mask);
int zmp__fault_kill(const char *f, int l, pid_t pid, int sig);
int zmp__fault_clone(const char *f, int l, int (*fn)(void *), void *stack,
                     int flags, void *arg, ...);
long zmp__fault_syscall(const char *f, int l, long nr, ...);
int zmp__fault_setrlimit(const char *f, int l, int res, const struct rlimit *rl);
int zmp__fault_mkdir(const char *f, int l, const char *path, mode_t mode);

/* The io_uring engine's calls; liburing.h comes before internal.h there. */
#ifdef LIB_URING_H
int zmp__fault_uring_init(const char *f, int l, unsigned entries,
                          struct io_uring *ring, struct io_uring_params *p);
struct io_uring_probe *zmp__fault_uring_probe(const char *f, int l,
                                              struct io_uring *ring);
struct io_uring_sqe *zmp__fault_uring_sqe(const char *f, int l,
                                          struct io_uring *ring);
int zmp__fault_uring_submit(const char *f, int l, struct io_uring *ring);
int zmp__fault_uring_submit_wait(const char *f, int l, struct io_uring *ring,
                                 unsigned n);
int zmp__fault_uring_sparse(const char *f, int l, struct io_uring *ring,
                            unsigned n);
int zmp__fault_uring_update(const char *f, int l, struct io_uring *ring,
                            unsigned off, const int *fds, unsigned n);
#endif

#ifndef ZMP_FAULT_NO_WRAP

#define malloc(n)            zmp__fault_malloc(ZMP__AT, n)
#define calloc(n, s)         zmp__fault_calloc(ZMP__AT, n, s)
#define realloc(p, n)        zmp__fault_realloc(ZMP__AT, p, n)
#define strdup(s)            zmp__fault_strdup(ZMP__AT, s)
#define asprintf(...)        zmp__fault_asprintf(ZMP__AT, __VA_ARGS__)
#define pipe2(fds, fl)       zmp__fault_pipe2(ZMP__AT, fds, fl)
#define socketpair(d, t, p, sv) zmp__fault_socketpair(ZMP__AT, d, t, p, sv)
/* A trailing 0 gives the optional argument a value when it is absent. */
#define open(...)            zmp__fault_open(ZMP__AT, __VA_ARGS__, 0)
#define openat(...)          zmp__fault_openat(ZMP__AT, __VA_ARGS__, 0)
#define fcntl(...)           zmp__fault_fcntl(ZMP__AT, __VA_ARGS__, 0L)
#define read(fd, b, n)       zmp__fault_read(ZMP__AT, fd, b, n)
#define send(fd, b, n, fl)   zmp__fault_send(ZMP__AT, fd, b, n, fl)
#define waitid(t, id, si, o) zmp__fault_waitid(ZMP__AT, t, id, si, o)
#define waitpid(p, st, o)    zmp__fault_waitpid(ZMP__AT, p, st, o)
#define ppoll(fds, n, ts, m) zmp__fault_ppoll(ZMP__AT, fds, n, ts, m)
#define kill(p, s)           zmp__fault_kill(ZMP__AT, p, s)
#define clone(...)           zmp__fault_clone(ZMP__AT, __VA_ARGS__)
#define syscall(...)         zmp__fault_syscall(ZMP__AT, __VA_ARGS__, 0L, 0L, 0L, 0L, 0L, 0L)
#define setrlimit(r, rl)     zmp__fault_setrlimit(ZMP__AT, r, rl)
#define mkdir(p, m)          zmp__fault_mkdir(ZMP__AT, p, m)

#ifdef LIB_URING_H
#define io_uring_queue_init_params(e, r, p) zmp__fault_uring_init(ZMP__AT, e, r, p)
#define io_uring_get_probe_ring(r)       zmp__fault_uring_probe(ZMP__AT, r)
#define io_uring_get_sqe(r)              zmp__fault_uring_sqe(ZMP__AT, r)
#define io_uring_submit(r)               zmp__fault_uring_submit(ZMP__AT, r)
#define io_uring_submit_and_wait(r, n)   zmp__fault_uring_submit_wait(ZMP__AT, r, n)
#define io_uring_register_files_sparse(r, n) zmp__fault_uring_sparse(ZMP__AT, r, n)
#define io_uring_register_files_update(r, o, f, n) \
    zmp__fault_uring_update(ZMP__AT, r, o, f, n)
#endif

#endif /* ZMP_FAULT_NO_WRAP */

#else /* !ZMP_FAULT_INJECTION */

#define ZMP__FAULT(name, err, expr) (expr)

#endif

#endif
