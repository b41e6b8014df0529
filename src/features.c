/* SPDX-License-Identifier: MIT */
/*
 * Run-time knobs and clocks.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/*
 * $ZMP_DISABLE lists kernel features to treat as missing, comma separated
 * (waitid, clone3, close_range, pidfd, fixed_files, clear_sighand).  It exists so the degraded paths,
 * which old kernels and sandboxes take, are tested on a kernel that has
 * everything.  Read once: the answer must not change under a running engine.
 */
unsigned zmp__disabled(void)
{
    static const struct { const char *name; unsigned bit; } names[] = {
        { "waitid", ZMP__F_WAITID },
        { "clone3", ZMP__F_CLONE3 },
        { "close_range", ZMP__F_CLOSE_RANGE },
        { "pidfd", ZMP__F_PIDFD },
        { "fixed_files", ZMP__F_FIXED },
        { "clear_sighand", ZMP__F_CLEAR_SIGHAND },
    };
    static int known;
    static unsigned mask;
    const char *s, *end;
    size_t i, n;

    if (__atomic_load_n(&known, __ATOMIC_ACQUIRE))
        return __atomic_load_n(&mask, __ATOMIC_RELAXED);
    s = getenv("ZMP_DISABLE");
    unsigned m = 0;
    while (s && *s) {
        end = strchr(s, ',');
        n = end ? (size_t)(end - s) : strlen(s);
        for (i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strlen(names[i].name) == n && !strncmp(s, names[i].name, n))
                m |= names[i].bit;
        s = end ? end + 1 : NULL;
    }
    /* Two threads may get here at once: both store the same answer. */
    __atomic_store_n(&mask, m, __ATOMIC_RELAXED);
    __atomic_store_n(&known, 1, __ATOMIC_RELEASE);
    return m;
}

/* A duration in ms as ns, saturated far past any real wait (~146 years),
 * so that now + the result cannot overflow. */
int64_t zmp__ms_to_ns(unsigned long ms)
{
    const int64_t max = INT64_MAX / 4;

    return ms > (unsigned long)(max / 1000000) ? max : (int64_t)ms * 1000000;
}

/*
 * Out of descriptors: raise the soft RLIMIT_NOFILE to the hard limit (as
 * Go's runtime does), so that thousands of captured children fit.  Only
 * on demand: a program that never runs out keeps its limit, and a
 * select()-based host is not handed descriptors past FD_SETSIZE for
 * nothing.  Children get the caller's limit back before exec.
 * Returns true when the limit went up.
 */
static pthread_mutex_t nofile_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rlimit nofile_orig;  /* the caller's, from before the raise */
static rlim_t nofile_set;          /* the soft limit the raise set */
static int nofile_raised;

bool zmp__raise_nofile(void)
{
    struct rlimit rl;
    bool up = false;

    pthread_mutex_lock(&nofile_lock);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        /* Raised before, and the caller has lowered it since: what it
         * set is its limit now. */
        if (!nofile_raised || rl.rlim_cur != nofile_set)
            nofile_orig = rl;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
            nofile_set = rl.rlim_cur;
            __atomic_store_n(&nofile_raised, 1, __ATOMIC_RELEASE);
            up = true;
        }
    }
    pthread_mutex_unlock(&nofile_lock);
    return up;
}

/* Around a fork() (ctx.c): every spawn takes the lock once a raise
 * happened, so the child of a fork must not inherit it held. */
void zmp__nofile_fork(bool before)
{
    if (before)
        pthread_mutex_lock(&nofile_lock);
    else
        pthread_mutex_unlock(&nofile_lock);
}

/*
 * The RLIMIT_NOFILE a child must be given, as the caller's limit is when
 * the child starts: false when it inherits the right one (nothing was
 * raised, or the caller has set its own limit since), else true with the
 * limit from before the raise in *ret.
 */
bool zmp__nofile_for_child(struct rlimit *ret)
{
    struct rlimit now;
    bool give = false;

    if (!__atomic_load_n(&nofile_raised, __ATOMIC_ACQUIRE))
        return false;
    pthread_mutex_lock(&nofile_lock);
    if (nofile_raised) {
        if (getrlimit(RLIMIT_NOFILE, &now) == 0 &&
            (now.rlim_cur != nofile_set || now.rlim_max != nofile_orig.rlim_max)) {
            /* The caller set a limit of its own after the raise: that is
             * what its children get, and a later shortage raises anew. */
            __atomic_store_n(&nofile_raised, 0, __ATOMIC_RELEASE);
        } else {
            *ret = nofile_orig;
            give = true;
        }
    }
    pthread_mutex_unlock(&nofile_lock);
    return give;
}

int64_t zmp__now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The CPUs this process may run on (its affinity mask). */
int zmp_cpu_count(void)
{
    cpu_set_t *set;
    size_t size;
    int n, ncpu;

    /* The mask can be larger than cpu_set_t's 1024 CPUs: grow until the
     * kernel takes it. */
    for (ncpu = 1024; ncpu <= (1 << 20); ncpu *= 2) {
        set = CPU_ALLOC(ncpu);
        if (!set)
            break;
        size = CPU_ALLOC_SIZE(ncpu);
        if (sched_getaffinity(0, size, set) == 0) {
            n = CPU_COUNT_S(size, set);
            CPU_FREE(set);
            return n > 0 ? n : 1;
        }
        CPU_FREE(set);
        if (errno != EINVAL)
            break;
    }
    n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}
