/*
 * zmp parallel: one job per input line (or per argument after :::), run
 * with at most N at once, each job's output printed whole.
 */
#define _GNU_SOURCE
#include "parallel.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "input.h"
#include "json.h"
#include "template.h"
#include "zmp.h"

#define FAILED_MAX 101  /* as GNU parallel: 101 means more than 100 */


/* One job, from the time its input is read until it is printed. */
struct job {
    char **argv;
    zmp_result res;
    zmp_info info;
    int err;
    bool done;
    bool cancelled;         /* never run: no output, no record */
};

struct run {
    /* The jobs from the oldest one not printed yet, by number:
     * win[i - base] is job i, NULL once printed and freed.  A job's record
     * lives from its input to its printing; behind a long-running job,
     * the window keeps one pointer for each job since. */
    struct job **win;
    size_t base, nwin, wincap;
    struct input in;
    char *const *tmpl;
    size_t ntmpl;
    zmp_options opts;       /* what every job shares */
    bool keep_order, progress, halt;
    FILE *results_file;
    size_t started, finished, failed, running;
    int read_error;         /* reading the inputs failed */
};

static void write_result_json(struct run *r, size_t i, const struct job *j)
{
    const zmp_result *res = &j->res;
    const zmp_info *info = &j->info;
    FILE *f = r->results_file;
    size_t k;

    fprintf(f, "{\"seq\":%zu,\"command\":[", i + 1);
    for (k = 0; j->argv[k]; k++) {
        if (k)
            putc(',', f);
        json_string(f, j->argv[k], strlen(j->argv[k]));
    }
    fputs("],", f);
    if (j->err) {
        fputs("\"error\":", f);
        json_string(f, zmp_strerror(j->err), strlen(zmp_strerror(j->err)));
        fputs(",\"ok\":false}\n", f);
        return;
    }
    fprintf(f, "\"ok\":%s,\"exit_code\":%d,\"signal\":%d,"
               "\"timed_out\":%s,\"truncated\":%s,\"pipes_held\":%s,"
               "\"start\":%.6f,\"seconds\":%.6f,\"stdout\":",
            res->ok ? "true" : "false",
            res->exit_code,
            res->exit_code < 0 ? -res->exit_code : 0,
            info->flags & ZMP_TIMED_OUT ? "true" : "false",
            info->flags & ZMP_TRUNCATED ? "true" : "false",
            info->flags & ZMP_PIPES_HELD ? "true" : "false",
            info->started, info->seconds);
    json_string(f, res->out, res->out_len);
    fputs(",\"stderr\":", f);
    json_string(f, res->err, res->err_len);
    fputs("}\n", f);
}

static struct job **slot(struct run *r, size_t i)
{
    return &r->win[i - r->base];
}

/* Print a finished job whole: its stdout, then its stderr; free it. */
static void print_job(struct run *r, size_t i)
{
    struct job *j = *slot(r, i);

    if (j->err && !j->cancelled)
        fprintf(stderr, "zmp: job %zu (%s): %s\n", i + 1, j->argv[0],
                zmp_strerror(j->err));
    fwrite(j->res.out, 1, j->res.out_len, stdout);
    fflush(stdout);
    fwrite(j->res.err, 1, j->res.err_len, stderr);
    fflush(stderr);
    if (r->results_file && !j->cancelled)
        write_result_json(r, i, j);
    zmp_result_free(&j->res);
    template_free(j->argv);
    free(j);
    *slot(r, i) = NULL;
}

/* Drop the printed jobs at the front of the window. */
static void slide(struct run *r)
{
    size_t k = 0;

    while (k < r->nwin && !r->win[k])
        k++;
    if (k == 0)
        return;
    memmove(r->win, r->win + k, (r->nwin - k) * sizeof *r->win);
    r->nwin -= k;
    r->base += k;
}

static void draw_progress(struct run *r)
{
    if (!r->progress)
        return;
    fprintf(stderr, "\r\033[K%zu done, %zu running, %zu failed", r->finished,
            r->running, r->failed);
}

/* The job source: the next input, expanded into a job. */
static int next_job(void *arg, size_t i, zmp_options *o, int *wait_fd)
{
    struct run *r = arg;
    struct job **w, *j;
    const char *line;
    int e;

    e = input_next(&r->in, &line);
    if (e == -EAGAIN) {
        *wait_fd = r->in.fd;
        return ZMP_STREAM_WAIT;
    }
    if (e < 0)
        r->read_error = e;
    if (e <= 0)
        return e;
    if (r->nwin == r->wincap) {
        size_t cap = r->wincap ? r->wincap * 2 : 64;

        if (!(w = realloc(r->win, cap * sizeof *w)))
            return -ENOMEM;
        r->win = w;
        r->wincap = cap;
    }
    if (!(j = calloc(1, sizeof *j)))
        return -ENOMEM;
    e = template_expand(r->tmpl, r->ntmpl, line, i + 1, &j->argv);
    if (e < 0) {
        free(j);
        return e;
    }
    r->win[r->nwin++] = j;
    *o = r->opts;
    o->program = j->argv[0];
    o->argv = (const char *const *)j->argv;
    r->started++;
    r->running++;
    draw_progress(r);
    return ZMP_STREAM_JOB;
}

static int on_done(void *arg, size_t i, int err, zmp_result *res,
                   const zmp_info *info)
{
    struct run *r = arg;
    struct job *j = *slot(r, i);
    /* Read, held back for want of a resource, then cancelled by
     * --halt-on-error: never run, like the inputs never read. */
    bool cancelled = err == -ECANCELED && !info;
    /* A job stopped by its timeout failed, whatever status it left. */
    bool failed = !cancelled &&
                  (err != 0 || !res->ok || (info && (info->flags & ZMP_TIMED_OUT)));

    j->err = err;
    j->cancelled = cancelled;
    if (res)
        j->res = *res;
    if (info)
        j->info = *info;
    j->done = true;
    r->finished += !cancelled;
    r->running--;
    r->failed += failed;
    if (r->progress)
        fputs("\r\033[K", stderr);
    if (!r->keep_order) {
        print_job(r, i);
    } else {
        while (r->nwin && r->win[0] && r->win[0]->done) {
            print_job(r, r->base);
            slide(r);
        }
    }
    slide(r);
    draw_progress(r);
    return r->halt && failed;
}

/*
 * Jobs lead process groups of their own (a timeout, or a kill, takes the
 * whole tree), so a signal meant for zmp (Ctrl-C, a kill, a closed stdout)
 * does not reach them by itself: zmp passes it on to every child's group,
 * then dies of it.  The children are read from /proc with plain system
 * calls, which is safe in a handler.
 */
static char children_path[64];

static void forward_signal(int sig)
{
    char buf[512];
    long pid = 0;
    ssize_t n, i;
    int fd, saved = errno;

    fd = open(children_path, O_RDONLY | O_CLOEXEC);
    while (fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0) {
        for (i = 0; i < n; i++) {
            if (buf[i] >= '0' && buf[i] <= '9') {
                pid = pid * 10 + (buf[i] - '0');
                continue;
            }
            if (pid > 0 && kill((pid_t)-pid, sig) < 0)
                kill((pid_t)pid, sig);
            pid = 0;
        }
    }
    if (pid > 0 && kill((pid_t)-pid, sig) < 0)
        kill((pid_t)pid, sig);
    if (fd >= 0)
        close(fd);
    signal(sig, SIG_DFL);
    raise(sig);
    errno = saved;
}

static void forward_signals(void)
{
    static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE };
    struct sigaction sa = { .sa_handler = forward_signal };
    size_t i;

    snprintf(children_path, sizeof children_path, "/proc/self/task/%ld/children",
             (long)gettid());
    for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
}

int cmd_parallel(int argc, char **argv)
{
    struct parallel_config cfg;
    struct run r = { 0 };
    int status, e, fd = -1;

    status = parallel_parse(argc, argv, &cfg);
    if (status)
        return status == PARALLEL_HELP ? 0 : status;
    status = EXIT_USAGE;
    r.tmpl = cfg.tmpl;
    r.ntmpl = cfg.ntmpl;
    r.keep_order = cfg.keep_order;
    r.halt = cfg.halt;
    r.progress = cfg.progress && isatty(2);
    r.opts.timeout_ms = (unsigned long)ceil(cfg.timeout * 1000);
    r.opts.output_cap = (size_t)cfg.output_cap;
    r.opts.cgroup = cfg.cgroup;
    r.opts.flags = ZMP_NEW_PGROUP;
    if (cfg.have_args) {
        input_from_args(&r.in, cfg.args, cfg.nargs);
    } else if (cfg.arg_file) {
        fd = open(cfg.arg_file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "zmp parallel: cannot read %s: %s\n", cfg.arg_file,
                    strerror(errno));
            return EXIT_USAGE;
        }
        input_from_fd(&r.in, fd);
    } else {
        /* A closed stdin would be taken by the next descriptor opened
         * (the library's own): say so rather than read that. */
        if (fcntl(0, F_GETFD) < 0) {
            fprintf(stderr, "zmp parallel: cannot read standard input: %s\n",
                    strerror(errno));
            return EXIT_USAGE;
        }
        input_from_fd(&r.in, 0);
    }
    if (cfg.results && !(r.results_file = fopen(cfg.results, "w"))) {
        fprintf(stderr, "zmp parallel: cannot write %s: %s\n", cfg.results,
                strerror(errno));
        goto out;
    }
    forward_signals();
    e = zmp_run_stream((unsigned)cfg.jobs, next_job, on_done, &r);
    if (r.progress)
        fputs("\n", stderr);
    if (r.read_error) {
        fprintf(stderr, "zmp parallel: cannot read %s: %s\n",
                cfg.arg_file ? cfg.arg_file : "standard input",
                zmp_strerror(r.read_error));
        goto out;
    }
    if (e < 0) {
        fprintf(stderr, "zmp parallel: %s\n", zmp_strerror(e));
        goto out;
    }
    status = r.failed > FAILED_MAX ? FAILED_MAX : (int)r.failed;
out:
    if (r.results_file && fclose(r.results_file) != 0) {
        fprintf(stderr, "zmp parallel: writing %s: %s\n", cfg.results, strerror(errno));
        status = EXIT_USAGE;
    }
    /* Left only when the engine failed: free what is left. */
    for (; r.nwin > 0; r.nwin--) {
        struct job *j = r.win[r.nwin - 1];

        if (j) {
            zmp_result_free(&j->res);
            template_free(j->argv);
            free(j);
        }
    }
    free(r.win);
    input_free(&r.in);
    if (fd >= 0)
        close(fd);
    zmp_deinit();
    return status;
}
