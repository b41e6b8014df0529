/*
 * zmp parallel: one job per input line (or per argument after :::), run
 * with at most N at once, each job's output printed whole.
 */
#define _GNU_SOURCE
#include "parallel.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "template.h"
#include "zmp.h"

#define EXIT_USAGE 2
#define FAILED_MAX 101  /* as GNU parallel: 101 means more than 100 */

static const char usage[] =
    "usage: zmp parallel [OPTIONS] [--] COMMAND [ARG...] [::: INPUT...]\n"
    "\n"
    "Runs COMMAND once per input: each line of standard input (or of\n"
    "--arg-file), or each INPUT after :::.  In COMMAND and its ARGs, {} is\n"
    "the input and {#} the job number; without {}, the input is added as a\n"
    "last argument.  No shell is involved.\n"
    "\n"
    "  -j, --jobs N          at most N jobs at once (default: CPUs available)\n"
    "  -k, --keep-order      print outputs in input order\n"
    "  -a, --arg-file FILE   read inputs from FILE\n"
    "      --timeout SECS    SIGTERM a job after SECS, SIGKILL 2 s later\n"
    "      --halt-on-error   start no new job after one fails\n"
    "      --results FILE    one JSON object per job in FILE\n"
    "      --output-cap N    keep at most N bytes of each stream per job\n"
    "      --cgroup DIR      run each job in a cgroup of its own under DIR (a\n"
    "                        delegated cgroup v2 directory); what is left of a\n"
    "                        job when it ends or times out is killed\n"
    "      --progress        a progress line on a terminal's stderr\n"
    "  -h, --help            this text\n"
    "\n"
    "Exit status: the number of failed jobs (101: more than 100), 2 for bad\n"
    "usage.\n";

struct run {
    size_t n;
    char ***argv;           /* each job's argv */
    zmp_result *results;
    int *done;              /* keep-order: finished, waiting to be printed */
    int *errs;
    zmp_info *infos;
    size_t next_print;
    bool keep_order, progress;
    FILE *results_file;
    size_t finished, failed;
};

static void write_result_json(struct run *r, size_t i, int err)
{
    const zmp_result *res = &r->results[i];
    const zmp_info *info = &r->infos[i];
    FILE *f = r->results_file;
    size_t k;

    fprintf(f, "{\"seq\":%zu,\"command\":[", i + 1);
    for (k = 0; r->argv[i][k]; k++) {
        if (k)
            putc(',', f);
        json_string(f, r->argv[i][k], strlen(r->argv[i][k]));
    }
    fputs("],", f);
    if (err) {
        fputs("\"error\":", f);
        json_string(f, zmp_strerror(err), strlen(zmp_strerror(err)));
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

/* Print a finished job whole: its stdout, then its stderr. */
static void print_job(struct run *r, size_t i)
{
    zmp_result *res = &r->results[i];

    if (r->errs[i])
        fprintf(stderr, "zmp: job %zu (%s): %s\n", i + 1, r->argv[i][0],
                zmp_strerror(r->errs[i]));
    fwrite(res->out, 1, res->out_len, stdout);
    fflush(stdout);
    fwrite(res->err, 1, res->err_len, stderr);
    fflush(stderr);
    if (r->results_file)
        write_result_json(r, i, r->errs[i]);
    zmp_result_free(res);
}

static int on_done(void *arg, size_t i, int err, zmp_result *res,
                   const zmp_info *info)
{
    struct run *r = arg;
    /* A job stopped by its timeout failed, whatever status it left. */
    bool failed = err != 0 || !res->ok || (info && (info->flags & ZMP_TIMED_OUT));

    r->errs[i] = err;
    r->finished++;
    r->failed += failed;
    if (r->progress)
        fputs("\r\033[K", stderr);
    if (!r->keep_order) {
        print_job(r, i);
    } else {
        r->done[i] = 1;
        while (r->next_print < r->n && r->done[r->next_print])
            print_job(r, r->next_print++);
    }
    if (r->progress)
        fprintf(stderr, "%zu/%zu done, %zu failed", r->finished, r->n, r->failed);
    return 0;
}

static int on_done_halt(void *arg, size_t i, int err, zmp_result *res,
                        const zmp_info *info)
{
    bool failed = err != 0 || !res->ok || (info && (info->flags & ZMP_TIMED_OUT));

    on_done(arg, i, err, res, info);
    return failed;
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

/* Every line of f, without its newline, as a new array of strings. */
static int read_lines(FILE *f, char ***ret, size_t *ret_n)
{
    char *line = NULL, **v = NULL, **nv;
    size_t cap = 0, n = 0, lcap = 0;
    ssize_t len;

    errno = 0;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            nv = realloc(v, cap * sizeof *v);
            if (!nv)
                goto nomem;
            v = nv;
        }
        if (!(v[n] = strdup(line)))
            goto nomem;
        n++;
    }
    free(line);
    if (ferror(f))
        return errno ? -errno : -EIO;
    *ret = v;
    *ret_n = n;
    return 0;
nomem:
    free(line);
    while (n > 0)
        free(v[--n]);
    free(v);
    return -ENOMEM;
}

int cmd_parallel(int argc, char **argv)
{
    static const struct option opts[] = {
        { "jobs", required_argument, NULL, 'j' },
        { "keep-order", no_argument, NULL, 'k' },
        { "arg-file", required_argument, NULL, 'a' },
        { "timeout", required_argument, NULL, 't' },
        { "halt-on-error", no_argument, NULL, 'H' },
        { "results", required_argument, NULL, 'r' },
        { "output-cap", required_argument, NULL, 'c' },
        { "progress", no_argument, NULL, 'p' },
        { "cgroup", required_argument, NULL, 'g' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *arg_file = NULL, *results_path = NULL, *cgroup = NULL;
    unsigned long jobs_max = 0;
    unsigned long long cap = 0;
    double timeout = 0;
    bool halt = false;
    struct run r = { 0 };
    char **inputs = NULL, **tmpl, *end;
    size_t ntmpl, ninputs = 0, i;
    zmp_options *jobs = NULL;
    int c, status = EXIT_USAGE, e;
    FILE *in;

    optind = 1;
    argv[0] = (char *)"zmp parallel";  /* how getopt names us in messages */
    while ((c = getopt_long(argc, argv, "+j:ka:h", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            errno = 0;
            jobs_max = strtoul(optarg, &end, 10);
            if (errno || *end || !*optarg || jobs_max > 1000000) {
                fprintf(stderr, "zmp parallel: bad --jobs: %s\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'k': r.keep_order = true; break;
        case 'a': arg_file = optarg; break;
        case 'H': halt = true; break;
        case 'r': results_path = optarg; break;
        case 'p': r.progress = isatty(2); break;
        case 'g': cgroup = optarg; break;
        case 't':
            timeout = strtod(optarg, &end);
            if (*end || !*optarg || !(timeout > 0) || timeout > 1e9) {
                fprintf(stderr, "zmp parallel: bad --timeout: %s\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'c':
            errno = 0;
            cap = strtoull(optarg, &end, 10);
            if (errno || *end || !*optarg || *optarg == '-') {
                fprintf(stderr, "zmp parallel: bad --output-cap: %s\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return EXIT_USAGE;
        }
    }
    tmpl = argv + optind;
    for (ntmpl = 0; optind + (int)ntmpl < argc && strcmp(tmpl[ntmpl], ":::"); ntmpl++)
        ;
    if (ntmpl == 0) {
        fprintf(stderr, "zmp parallel: missing COMMAND\n%s", usage);
        return EXIT_USAGE;
    }
    if (optind + (int)ntmpl < argc) {
        /* ::: INPUT... */
        if (arg_file) {
            fprintf(stderr, "zmp parallel: both ::: and --arg-file given\n");
            return EXIT_USAGE;
        }
        ninputs = (size_t)(argc - optind) - ntmpl - 1;
        if (ninputs == 0) {
            fprintf(stderr, "zmp parallel: no input after :::\n");
            return EXIT_USAGE;
        }
        inputs = malloc(ninputs * sizeof *inputs);
        if (!inputs)
            return EXIT_USAGE;
        for (i = 0; i < ninputs; i++)
            if (!(inputs[i] = strdup(tmpl[ntmpl + 1 + i])))
                return EXIT_USAGE;
    } else {
        in = arg_file ? fopen(arg_file, "r") : stdin;
        if (!in) {
            fprintf(stderr, "zmp parallel: cannot read %s: %s\n", arg_file,
                    strerror(errno));
            return EXIT_USAGE;
        }
        e = read_lines(in, &inputs, &ninputs);
        if (in != stdin)
            fclose(in);
        if (e < 0) {
            fprintf(stderr, "zmp parallel: cannot read %s: %s\n",
                    arg_file ? arg_file : "standard input", zmp_strerror(e));
            return EXIT_USAGE;
        }
    }
    if (results_path && !(r.results_file = fopen(results_path, "w"))) {
        fprintf(stderr, "zmp parallel: cannot write %s: %s\n", results_path,
                strerror(errno));
        goto out;
    }
    r.n = ninputs;
    r.argv = calloc(ninputs + 1, sizeof *r.argv);
    r.results = calloc(ninputs + 1, sizeof *r.results);
    r.infos = calloc(ninputs + 1, sizeof *r.infos);
    r.errs = calloc(ninputs + 1, sizeof *r.errs);
    r.done = calloc(ninputs + 1, sizeof *r.done);
    jobs = calloc(ninputs + 1, sizeof *jobs);
    if (!r.argv || !r.results || !r.infos || !r.errs || !r.done || !jobs) {
        fprintf(stderr, "zmp parallel: out of memory\n");
        goto out;
    }
    for (i = 0; i < ninputs; i++) {
        if (template_expand(tmpl, ntmpl, inputs[i], i + 1, &r.argv[i]) < 0) {
            fprintf(stderr, "zmp parallel: out of memory\n");
            goto out;
        }
        jobs[i].program = r.argv[i][0];
        jobs[i].argv = (const char *const *)r.argv[i];
        jobs[i].timeout_ms = (unsigned long)ceil(timeout * 1000);
        jobs[i].output_cap = (size_t)cap;
        jobs[i].cgroup = cgroup;
        jobs[i].flags = ZMP_NEW_PGROUP;
    }
    forward_signals();
    e = zmp_run_batch(jobs, ninputs, (unsigned)jobs_max, r.results, r.infos,
                      r.errs, halt ? on_done_halt : on_done, &r);
    if (r.progress)
        fputs("\n", stderr);
    if (e < 0) {
        fprintf(stderr, "zmp parallel: %s\n", zmp_strerror(e));
        goto out;
    }
    /* Jobs never started after --halt-on-error count as failed too. */
    for (i = 0; i < ninputs; i++)
        if (r.errs[i] == -ECANCELED)
            r.failed++;
    status = r.failed > FAILED_MAX ? FAILED_MAX : (int)r.failed;
out:
    if (r.results_file && fclose(r.results_file) != 0) {
        fprintf(stderr, "zmp parallel: writing %s: %s\n", results_path, strerror(errno));
        status = EXIT_USAGE;
    }
    for (i = 0; i < ninputs; i++) {
        free(inputs[i]);
        if (r.argv)
            template_free(r.argv[i]);
        if (r.results)
            zmp_result_free(&r.results[i]);
    }
    free(inputs);
    free(r.argv);
    free(r.results);
    free(r.infos);
    free(r.errs);
    free(r.done);
    free(jobs);
    zmp_deinit();
    return status;
}
