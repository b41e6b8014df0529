/* SPDX-License-Identifier: MIT */
/*
 * The floor for many thousands of jobs in flight: start COUNT children at
 * once, each by posix_spawn (vfork-style in glibc), with no capture (they
 * write to this program's stdout themselves), then reap them all.
 *
 *   inflight COUNT -- PROGRAM ARGS...
 *
 * Every "{}" in ARGS is replaced by the job's number, 1..COUNT, as
 * `zmp parallel` does.  PROGRAM is run as given (an absolute path).
 * Exits 0 when every child exited 0.  bench/run.py times the whole run
 * (W11), alternated with `zmp parallel -j COUNT` on the same jobs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

/* s with each "{}" replaced by n, in a new string. */
static char *subst(const char *s, long n)
{
    char num[24], *out, *o;
    const char *p;
    size_t k = 0, len;

    snprintf(num, sizeof num, "%ld", n);
    for (p = s; (p = strstr(p, "{}")); p += 2)
        k++;
    len = strlen(s) + k * strlen(num) + 1;
    if (!(out = malloc(len)))
        return NULL;
    for (o = out; *s;) {
        if (s[0] == '{' && s[1] == '}') {
            o = stpcpy(o, num);
            s += 2;
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    return out;
}

int main(int argc, char **argv)
{
    long n, i, reaped = 0, bad = 0;
    int a, first, st, r;
    char **cargv;
    pid_t pid;

    if (argc < 4 || strcmp(argv[2], "--") || (n = strtol(argv[1], NULL, 10)) <= 0) {
        fprintf(stderr, "usage: inflight COUNT -- PROGRAM ARGS...\n");
        return 2;
    }
    first = 3;
    cargv = calloc((size_t)(argc - first + 1), sizeof *cargv);
    if (!cargv)
        return 1;
    for (i = 1; i <= n; i++) {
        for (a = first; a < argc; a++)
            if (!(cargv[a - first] = subst(argv[a], i)))
                return 1;
        r = posix_spawn(&pid, cargv[0], NULL, NULL, cargv, environ);
        for (a = first; a < argc; a++)
            free(cargv[a - first]);
        if (r != 0) {
            fprintf(stderr, "inflight: job %ld: %s\n", i, strerror(r));
            bad++;
            break;
        }
    }
    while (wait(&st) > 0) {
        reaped++;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
    }
    free(cargv);
    if (bad)
        fprintf(stderr, "inflight: %ld of %ld jobs failed\n", bad, reaped);
    return bad ? 1 : 0;
}
