/* SPDX-License-Identifier: MIT */
/*
 * The libuv peer of bench/fanout.c: JOBS runs of a command through
 * uv_spawn, at most PAR at once, stdout and stderr captured through
 * uv_pipe_t reads.
 *
 *   uv-fanout JOBS PAR [--hold-mib N] [--warm N] [--max-seconds S]
 *             -- CMD [ARG...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "bench.h"

struct job {
    uv_process_t proc;
    uv_pipe_t out, err;
    int open;        /* handles not closed yet */
    char *buf;
    size_t len, cap;
};

static char **cmd;
static uv_loop_t *loop;
static size_t todo, started, done;
static unsigned long long total_bytes;

static void start(struct job *j);

static void on_close(uv_handle_t *h)
{
    struct job *j = h->data;

    if (--j->open)
        return;
    total_bytes += j->len;
    done++;
    if (started < todo && !bench_late())
        start(j);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct job *j = h->data;

    (void)hint;
    if (j->cap - j->len < 4096) {
        j->cap = j->cap ? 2 * j->cap : 4096;
        j->buf = realloc(j->buf, j->cap);
    }
    *b = uv_buf_init(j->buf + j->len, (unsigned)(j->cap - j->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct job *j = s->data;

    (void)b;
    if (n > 0)
        j->len += (size_t)n;
    else if (n < 0)
        uv_close((uv_handle_t *)s, on_close);
}

static void on_exit_(uv_process_t *p, int64_t status, int sig)
{
    (void)status, (void)sig;
    uv_close((uv_handle_t *)p, on_close);
}

static void start(struct job *j)
{
    uv_stdio_container_t io[3];
    uv_process_options_t o;
    int r;

    memset(&o, 0, sizeof o);
    uv_pipe_init(loop, &j->out, 0);
    uv_pipe_init(loop, &j->err, 0);
    j->proc.data = j->out.data = j->err.data = j;
    j->open = 3;
    j->len = 0;
    io[0].flags = UV_IGNORE;
    io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    io[1].data.stream = (uv_stream_t *)&j->out;
    io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    io[2].data.stream = (uv_stream_t *)&j->err;
    o.file = cmd[0];
    o.args = cmd;
    o.exit_cb = on_exit_;
    o.stdio = io;
    o.stdio_count = 3;
    r = uv_spawn(loop, &j->proc, &o);
    if (r) {
        fprintf(stderr, "uv-fanout: uv_spawn: %s\n", uv_strerror(r));
        exit(1);
    }
    started++;
    uv_read_start((uv_stream_t *)&j->out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&j->err, on_alloc, on_read);
}

static void run(size_t n, unsigned par)
{
    struct job *jobs = calloc(par, sizeof *jobs);

    todo = n;
    started = done = 0;
    for (unsigned k = 0; k < par && started < n; k++)
        start(&jobs[k]);
    uv_run(loop, UV_RUN_DEFAULT);
    for (unsigned k = 0; k < par; k++)
        free(jobs[k].buf);
    free(jobs);
}

int main(int argc, char **argv)
{
    size_t n, warm = 0, hold = 0;
    unsigned par;
    int i;
    double t0, max_s = 0;

    if (argc < 4)
        goto usage;
    n = strtoul(argv[1], NULL, 0);
    par = (unsigned)strtoul(argv[2], NULL, 0);
    for (i = 3; i < argc && strcmp(argv[i], "--"); i++) {
        if (!strcmp(argv[i], "--hold-mib") && i + 1 < argc)
            hold = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--warm") && i + 1 < argc)
            warm = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--max-seconds") && i + 1 < argc)
            max_s = strtod(argv[++i], NULL);
        else
            goto usage;
    }
    if (i + 1 >= argc || !n || !par)
        goto usage;
    cmd = &argv[i + 1];
    if (par > n)
        par = (unsigned)n;
    loop = uv_default_loop();
    bench_hold(hold);
    if (warm)
        run(warm, par < warm ? par : (unsigned)warm);
    total_bytes = 0;
    t0 = bench_now();
    if (max_s > 0)
        bench_deadline = t0 + max_s;
    run(n, par);
    t0 = bench_now() - t0;
    bench_report("libuv", t0, done, total_bytes, uv_version_string());
    return 0;
usage:
    fprintf(stderr, "usage: uv-fanout JOBS PAR [--hold-mib N] [--warm N] "
                    "[--max-seconds S] -- CMD [ARG...]\n");
    return 2;
}
