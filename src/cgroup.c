/* SPDX-License-Identifier: MIT */
/*
 * A cgroup v2 per job, for killing whole trees: everything in it dies by
 * one write to cgroup.kill (5.14+), including descendants that left the
 * job's process group with setsid.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* A new cgroup under parent, named after this process and a counter. */
int zmp__cgroup_create(const char *parent, char **ret_path, int *ret_fd)
{
    static unsigned long seq;
    char *path;
    int fd, r;

    if (asprintf(&path, "%s/zmp-%d-%lu", parent, (int)getpid(),
                 __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED)) < 0)
        return -ENOMEM;
    if (mkdir(path, 0755) < 0) {
        r = -errno;
        free(path);
        return r;
    }
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || faccessat(fd, "cgroup.kill", W_OK, 0) < 0) {
        /* Not cgroup v2, or a kernel before 5.14: no way to kill a tree. */
        r = fd < 0 ? -errno : errno == ENOENT ? -EOPNOTSUPP : -errno;
        if (fd >= 0)
            close(fd);
        rmdir(path);
        free(path);
        return r;
    }
    *ret_path = path;
    *ret_fd = fd;
    return 0;
}

/* SIGKILL to every process in the cgroup, at once. */
void zmp__cgroup_kill(int dirfd)
{
    int fd = openat(dirfd, "cgroup.kill", O_WRONLY | O_CLOEXEC);

    if (fd < 0)
        return;
    while (write(fd, "1", 1) < 0 && errno == EINTR)
        ;
    close(fd);
}

/* Remove the cgroups whose last processes have gone; with wait, give them
 * up to a second (they were killed, their exit is a matter of moments). */
void zmp__cgroup_sweep(struct zmp__ctx *ctx, bool wait)
{
    struct timespec tick = { 0, 10 * 1000000 };
    size_t i, k;
    int tries;

    for (tries = wait ? 100 : 1; tries > 0 && ctx->ncg; tries--) {
        for (i = k = 0; i < ctx->ncg; i++) {
            if (rmdir(ctx->cg[i]) == 0 || errno != EBUSY)
                free(ctx->cg[i]);
            else
                ctx->cg[k++] = ctx->cg[i];
        }
        ctx->ncg = k;
        if (k && tries > 1)
            nanosleep(&tick, NULL);
    }
    if (ctx->ncg == 0) {
        free(ctx->cg);
        ctx->cg = NULL;
        ctx->cg_cap = 0;
    }
}

/* The job is over: kill what is left of its cgroup and remove it, now or,
 * while killed processes are still exiting, at a later sweep. */
void zmp__cgroup_release(struct zmp__ctx *ctx, char *path, int dirfd)
{
    char **a;

    zmp__cgroup_kill(dirfd);
    close(dirfd);
    if (rmdir(path) == 0 || errno != EBUSY) {
        free(path);
        return;
    }
    if (ctx->ncg == ctx->cg_cap) {
        size_t cap = ctx->cg_cap ? ctx->cg_cap * 2 : 8;

        a = realloc(ctx->cg, cap * sizeof *a);
        if (!a) {
            free(path);  /* left behind: empty, harmless */
            return;
        }
        ctx->cg = a;
        ctx->cg_cap = cap;
    }
    ctx->cg[ctx->ncg++] = path;
}
