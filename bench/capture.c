/* SPDX-License-Identifier: MIT */
/*
 * Capture throughput: a child writes BYTES, all of it kept in memory by
 * the parent.  One method per run (bench/run.py alternates them).
 *
 *   capture METHOD WRITER BYTES HELPER [TIMES]
 *
 * TIMES (1 unless given) runs one after the other, timed together: a
 * small size still makes a run of a second.
 * WRITER: head (head -c BYTES /dev/zero), flood (HELPER flood BYTES 0:
 * 64 KiB writes), small (the same in 4 KiB writes), split (HELPER flood
 * BYTES/2 BYTES/2: both streams, alternating 64 KiB writes).
 * METHOD: zmp (zmp_run_opts, engine from ZMP_BACKEND: out, err and the
 * merged output); nomerge (the same with ZMP_NO_MERGED: out and err, as
 * the floors keep them); read (the floor:
 * posix_spawn, then a plain read() loop on one 256 KiB pipe, or poll() on
 * two for split); pspoll (posix_spawn, poll() on two 256 KiB pipes
 * whatever the writer, as a portable runner does).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "zmp.h"

extern char **environ;

#define PIPE_SIZE (256 * 1024)

struct sink {
    char *buf;
    size_t len, cap;
};

/* Read once into s; 0 at end of file. */
static ssize_t take(int fd, struct sink *s)
{
    ssize_t r;

    if (s->cap - s->len < PIPE_SIZE) {
        s->cap = s->cap ? 2 * s->cap : 1 << 20;
        s->buf = realloc(s->buf, s->cap);
        if (!s->buf)
            exit(1);
    }
    r = read(fd, s->buf + s->len, s->cap - s->len);
    if (r < 0) {
        perror("capture: read");
        exit(1);
    }
    s->len += (size_t)r;
    return r;
}

static unsigned long long run_posix(char **argv, bool two, bool use_poll)
{
    posix_spawn_file_actions_t fa;
    struct sink s[2] = { { 0 } };
    struct pollfd pf[2];
    int o[2], e[2] = { -1, -1 };
    pid_t pid;

    if (pipe2(o, O_CLOEXEC) < 0 || (two && pipe2(e, O_CLOEXEC) < 0))
        exit(1);
    fcntl(o[1], F_SETPIPE_SZ, PIPE_SIZE);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, o[1], 1);
    if (two) {
        fcntl(e[1], F_SETPIPE_SZ, PIPE_SIZE);
        posix_spawn_file_actions_adddup2(&fa, e[1], 2);
    }
    if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0)
        exit(1);
    posix_spawn_file_actions_destroy(&fa);
    close(o[1]);
    if (two)
        close(e[1]);
    if (!use_poll) {
        while (take(o[0], &s[0]) > 0)
            ;
        close(o[0]);
    } else {
        pf[0] = (struct pollfd){ .fd = o[0], .events = POLLIN };
        pf[1] = (struct pollfd){ .fd = two ? e[0] : -1, .events = POLLIN };
        while (pf[0].fd >= 0 || pf[1].fd >= 0) {
            if (poll(pf, 2, -1) < 0)
                exit(1);
            for (int i = 0; i < 2; i++)
                if (pf[i].fd >= 0 && pf[i].revents && take(pf[i].fd, &s[i]) == 0) {
                    close(pf[i].fd);
                    pf[i].fd = -1;
                }
        }
    }
    waitpid(pid, NULL, 0);
    free(s[0].buf);
    free(s[1].buf);
    return s[0].len + s[1].len;
}

static unsigned long long run_zmp(char **argv, unsigned flags)
{
    zmp_options o = { .program = argv[0], .argv = (const char *const *)argv, .flags = flags };
    unsigned long long n;
    zmp_result res;
    int r = zmp_run_opts(&o, &res, NULL);

    if (r < 0 || !res.ok) {
        fprintf(stderr, "capture: zmp_run_opts: %s\n", zmp_strerror(r));
        exit(1);
    }
    n = res.out_len + res.err_len;
    if (!(flags & ZMP_NO_MERGED) && res.output_len != n) {
        fprintf(stderr, "capture: merged output of %zu bytes, not %llu\n", res.output_len, n);
        exit(1);
    }
    zmp_result_free(&res);
    return n;
}

int main(int argc, char **argv)
{
    char *cargv[6], half[32], bytes[64];
    unsigned long long want, got = 0, i, times = argc > 5 ? strtoull(argv[5], NULL, 0) : 1;
    const char *method, *writer;
    bool two, zmp;
    double t0;

    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: capture zmp|nomerge|read|pspoll head|flood|small|split BYTES "
                        "HELPER [TIMES]\n");
        return 2;
    }
    method = argv[1];
    writer = argv[2];
    want = strtoull(argv[3], NULL, 0);
    snprintf(half, sizeof half, "%llu", want / 2);
    snprintf(bytes, sizeof bytes, "-c%llu", want);
    two = !strcmp(writer, "split");
    if (!two && strcmp(writer, "head") && strcmp(writer, "flood") && strcmp(writer, "small")) {
        fprintf(stderr, "capture: unknown writer %s\n", writer);
        return 2;
    }
    if (!strcmp(writer, "head")) {
        cargv[0] = "/usr/bin/head", cargv[1] = bytes, cargv[2] = "/dev/zero";
        cargv[3] = NULL;
    } else {
        cargv[0] = argv[4], cargv[1] = "flood";
        cargv[2] = two ? half : argv[3], cargv[3] = two ? half : "0";
        cargv[4] = !strcmp(writer, "small") ? "4096" : NULL;
        cargv[5] = NULL;
        if (two)
            want = want / 2 * 2;
    }
    zmp = !strcmp(method, "zmp") || !strcmp(method, "nomerge");
    if (!zmp && strcmp(method, "read") && strcmp(method, "pspoll")) {
        fprintf(stderr, "capture: unknown method %s\n", method);
        return 2;
    }
    if (times < 1) {
        fprintf(stderr, "capture: TIMES must be 1 or more\n");
        return 2;
    }
    if (zmp)
        run_zmp((char *[]){ "/bin/true", NULL }, 0);   /* start the engine */
    t0 = bench_now();
    for (i = 0; i < times; i++) {
        unsigned long long n;

        if (zmp)
            n = run_zmp(cargv, strcmp(method, "zmp") ? ZMP_NO_MERGED : 0);
        else
            n = run_posix(cargv, two, two || !strcmp(method, "pspoll"));
        if (n != want) {
            fprintf(stderr, "capture: %llu bytes of %llu\n", n, want);
            return 1;
        }
        got += n;
    }
    t0 = bench_now() - t0;
    bench_report(method, t0, (size_t)times, got, zmp ? zmp_backend() : NULL);
    return 0;
}
