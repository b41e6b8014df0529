/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char self[PATH_MAX];
static char helper[PATH_MAX];
static char tmp[PATH_MAX];
static int baseline_fds = -1;

const char *self_path(void)
{
    if (!self[0]) {
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n < 0)
            abort();
        self[n] = '\0';
    }
    return self;
}

const char *helper_path(void)
{
    if (!helper[0]) {
        char *slash;

        snprintf(helper, sizeof helper, "%s", self_path());
        slash = strrchr(helper, '/');
        snprintf(slash + 1, sizeof helper - (size_t)(slash + 1 - helper), "helper");
    }
    return helper;
}

void use_helper(void)
{
    CU_ASSERT_EQUAL_FATAL(zmp_set_interpreter(helper_path()), 0);
}

static void remove_tmp(void)
{
    char cmd[PATH_MAX + 16];

    if (tmp[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmp);
    }
}

const char *tmp_dir(void)
{
    if (!tmp[0]) {
        const char *base = getenv("TMPDIR");

        snprintf(tmp, sizeof tmp, "%s/zmp-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmp))
            abort();
        atexit(remove_tmp);
    }
    return tmp;
}

char *make_file(const char *name, const char *text, int mode)
{
    char *path;
    FILE *f;

    if (asprintf(&path, "%s/%s", tmp_dir(), name) < 0)
        abort();
    f = fopen(path, "w");
    if (!f)
        abort();
    fputs(text, f);
    fclose(f);
    chmod(path, (mode_t)mode);
    return path;
}

bool no_children(void)
{
    siginfo_t si;

    return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 &&
           errno == ECHILD;
}

int suite_init(void)
{
    /* A hung test ends the run with SIGALRM instead of hanging CI. */
    alarm(300);
    zmp_deinit();
    baseline_fds = count_fds();
    return 0;
}

int suite_clean(void)
{
    alarm(0);
    zmp_set_interpreter(NULL);
    return 0;
}

void test_no_leaks(void)
{
    zmp_deinit();
    CU_ASSERT_TRUE(no_children());
    CU_ASSERT_EQUAL(count_fds(), baseline_fds);
}
