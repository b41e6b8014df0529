/* SPDX-License-Identifier: MIT */
/*
 * A child named by its pidfd, or by its pid on kernels without pidfds
 * (before 5.3): signal it and wait for it, preferring the pidfd, which can
 * never name a recycled pid (systemd's pidref is the model).
 *
 * Everything here is async-signal-safe (plain system calls, relaxed
 * atomics): zmp_signal_all() runs it from signal handlers.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef PIDFD_SIGNAL_PROCESS_GROUP
#define PIDFD_SIGNAL_PROCESS_GROUP (1U << 2)
#endif

/* Kernel features found missing, so they are not tried again. */
static int no_pgroup_pidfd;  /* PIDFD_SIGNAL_PROCESS_GROUP (6.9) */
static int no_waitid_pidfd;  /* waitid(P_PIDFD) (5.4), a release after
                                pidfds themselves */

static int pidfd_signal(int pidfd, int sig, unsigned flags)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, flags);
}

/* The system call, whose fifth argument glibc's waitid() does not pass:
 * the resources of the child reaped, and of the children it reaped. */
static int sys_waitid(int type, int id, siginfo_t *si, int options, struct rusage *ru)
{
    return (int)syscall(SYS_waitid, type, id, si, options, ru);
}

/*
 * A pidfd opened now on pid, provided pid is still a child of ours (dead
 * or alive, but not reaped).  A child kept without a pidfd (ZMP__FEW_CHILDREN)
 * cannot be reaped by anyone but us unless the program reaps behind our
 * back (wait(-1), SIGCHLD ignored), and its pid could then name another
 * process: a pidfd names one process for good, and waitid() on it says
 * ECHILD unless that process is our child.
 * Returns the pidfd, -ESRCH when pid is gone or not our child, or another
 * -errno when the kernel cannot say (no pidfd_open, no descriptor left).
 */
static int open_child(pid_t pid)
{
    siginfo_t si;
    int fd, r, err;

    /* Known already where children exist: no probe in a handler. */
    if (!zmp__have_pidfd())
        return -ENOSYS;
    fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return -errno;
    do
        r = sys_waitid(P_PIDFD, fd, &si, WEXITED | WNOHANG | WNOWAIT, NULL);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return fd;
    err = errno;
    close(fd);
    return err == ECHILD ? -ESRCH : -err;
}

/* zmp__pidref_signal() with a pidfd, or none. */
static int send_signal(int pidfd, pid_t pid, bool group, int sig)
{
    if (pidfd >= 0 && group && !__atomic_load_n(&no_pgroup_pidfd, __ATOMIC_RELAXED)) {
        if (pidfd_signal(pidfd, sig, PIDFD_SIGNAL_PROCESS_GROUP) == 0 || errno == ESRCH)
            return 0;
        if (errno != EINVAL && errno != ENOSYS)
            return -errno;
        __atomic_store_n(&no_pgroup_pidfd, 1, __ATOMIC_RELAXED);
    }
    if (pidfd >= 0) {
        if (pidfd_signal(pidfd, group ? 0 : sig, 0) == 0) {
            if (!group)
                return 0;
        } else if (errno == ESRCH) {
            return 0;
        } else if (errno != ENOSYS) {
            return -errno;
        }
    }
    if (kill(group ? -pid : pid, sig) == 0 || errno == ESRCH)
        return 0;
    return -errno;
}

/*
 * Send sig to the child, or with group to its process group (it leads
 * one).  A child that has already died (ESRCH) is not an error.
 *
 * A group is signalled through the pidfd (6.9+); before that by
 * kill(-pgid), but only once the pidfd says the leader is not reaped yet:
 * while it is not, its pgid cannot have been handed to another group.
 * Without a pidfd of the caller's, one is opened for the signal and
 * checked to name our child (open_child); only where the kernel cannot
 * do that (before 5.4, or no descriptor left) does the caller vouch that
 * the pid is not reaped, and the signal goes by pid.
 */
int zmp__pidref_signal(int pidfd, pid_t pid, bool group, int sig)
{
    int own, r;

    if (pid <= 0)  /* never kill(0) or kill(-1): those are not a child */
        return -ESRCH;
    if (pidfd >= 0)
        return send_signal(pidfd, pid, group, sig);
    own = open_child(pid);
    if (own == -ESRCH)
        return 0;  /* gone, as a child that has died */
    r = send_signal(own, pid, group, sig);
    if (own >= 0)
        close(own);
    return r;
}

/*
 * waitid() on the child: through the pidfd where the kernel can, else by
 * pid (a child of ours that we have not reaped).  si is zeroed first, so
 * with WNOHANG si->si_pid == 0 means "not yet"; ru, when not NULL, gets
 * the child's resource usage (zeroes unless it was reaped now).  EINTR is
 * retried.  Returns 0 or -errno.
 */
int zmp__pidref_wait(int pidfd, pid_t pid, siginfo_t *si, int options, struct rusage *ru)
{
    int r;

    memset(si, 0, sizeof *si);
    if (ru)
        memset(ru, 0, sizeof *ru);
    if (pidfd >= 0 && !__atomic_load_n(&no_waitid_pidfd, __ATOMIC_RELAXED)) {
        do
            r = sys_waitid(P_PIDFD, pidfd, si, options, ru);
        while (r < 0 && errno == EINTR);
        if (r == 0)
            return 0;
        if (errno != EINVAL)
            return -errno;
        __atomic_store_n(&no_waitid_pidfd, 1, __ATOMIC_RELAXED);
    }
    do
        r = sys_waitid(P_PID, pid, si, options, ru);
    while (r < 0 && errno == EINTR);
    return r == 0 ? 0 : -errno;
}

/* PIDFD_GET_INFO (6.13) with PIDFD_INFO_EXIT (6.15): the first version of
 * the kernel's struct, which ends with the exit status. */
struct pidfd_info_v0 {
    uint64_t mask;
    uint64_t cgroupid;
    uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    int32_t exit_code;
};
#define ZMP_PIDFD_GET_INFO  _IOWR(0xFF, 11, struct pidfd_info_v0)
#define ZMP_PIDFD_INFO_EXIT (1ULL << 3)

/*
 * The wait status of a child that is gone although we never reaped it:
 * the kernel reaped it for us (SIGCHLD ignored, SA_NOCLDWAIT), or another
 * part of the program did.  The pidfd keeps it from 6.15 on.
 * Returns 0 with *ret_status set, or -errno (-ENOTTY, -EINVAL, -ESRCH on
 * older kernels or when the status is not known).
 */
int zmp__pidref_exit_status(int pidfd, int *ret_status)
{
    struct pidfd_info_v0 info = { .mask = ZMP_PIDFD_INFO_EXIT };

    if (pidfd < 0)
        return -EBADF;
    if (ioctl(pidfd, ZMP_PIDFD_GET_INFO, &info) < 0)
        return -errno;
    if (!(info.mask & ZMP_PIDFD_INFO_EXIT))
        return -ESRCH;
    *ret_status = info.exit_code;
    return 0;
}
