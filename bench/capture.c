/*
 * Capture throughput: a child writes N bytes to stdout (the test helper's
 * flood, 64 KiB writes); zmp_run captures them, against the floor of a
 * plain read() loop on a pipe of the same size (256 KiB), child started
 * with posix_spawn.  Prints GB/s for each and the ratio.
 *
 *   capture HELPER BYTES REPEAT
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "zmp.h"

extern char **environ;

/* The floor: read everything into one growing buffer, as a capturing
 * runner must keep it. */
static double floor_once(const char *helper, const char *bytes)
{
    char *argv[] = { (char *)helper, "flood", (char *)bytes, "0", NULL };
    posix_spawn_file_actions_t fa;
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    int p[2], status;
    double t0 = bench_now();
    ssize_t n;
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) < 0)
        exit(1);
    fcntl(p[1], F_SETPIPE_SZ, 256 * 1024);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    if (posix_spawn(&pid, helper, &fa, NULL, argv, environ) != 0)
        exit(1);
    close(p[1]);
    for (;;) {
        if (cap - len < 256 * 1024) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        n = read(p[0], buf + len, cap - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(p[0]);
    waitpid(pid, &status, 0);
    t0 = bench_now() - t0;
    if (len != strtoull(bytes, NULL, 0))
        exit(2);
    free(buf);
    posix_spawn_file_actions_destroy(&fa);
    return t0;
}

static double zmp_once(const char *bytes)
{
    const char *args[] = { bytes, "0", NULL };
    double t0 = bench_now();
    zmp_result res;

    if (zmp_run("flood", args, &res) != 0 || res.out_len != strtoull(bytes, NULL, 0))
        exit(3);
    t0 = bench_now() - t0;
    zmp_result_free(&res);
    return t0;
}

int main(int argc, char **argv)
{
    int reps = argc > 3 ? atoi(argv[3]) : 5, i;
    double *f, *z, gb, fm, zm;

    if (argc < 3) {
        fprintf(stderr, "usage: capture HELPER BYTES [REPEAT]\n");
        return 2;
    }
    f = calloc((size_t)reps, sizeof *f);
    z = calloc((size_t)reps, sizeof *z);
    zmp_set_interpreter(argv[1]);
    gb = (double)strtoull(argv[2], NULL, 0) / 1e9;
    for (i = 0; i < reps; i++) {  /* alternate, so drift hits both */
        f[i] = floor_once(argv[1], argv[2]);
        z[i] = zmp_once(argv[2]);
    }
    fm = bench_median(f, (size_t)reps);
    zm = bench_median(z, (size_t)reps);
    printf("capture %s bytes, %d runs, engine %s: read() floor %.2f GB/s, zmp %.2f GB/s, ratio %.2f\n",
           argv[2], reps, zmp_backend(), gb / fm, gb / zm, fm / zm);
    return 0;
}
