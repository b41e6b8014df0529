/* SPDX-License-Identifier: MIT */
/*
 * zmp parallel: one job per input line (or per argument after :::), run
 * with at most N at once, each job's output printed together (output.c).
 */
#define _GNU_SOURCE
#include "parallel.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "input.h"
#include "json.h"
#include "output.h"
#include "results.h"
#include "template.h"
#include "zmp.h"

#define FAILED_MAX 101  /* as GNU parallel: 101 means more than 100 */

/*
 * Stopping.  A SIGINT, SIGTERM or SIGHUP, a closed stdout pipe, a write
 * error: zmp takes no more input and starts no job, signals the jobs
 * (they lead process groups of their own, so a signal meant for zmp does
 * not reach them by itself), prints and records them as they end, and
 * SIGKILLs what is left after a grace or at a second signal.  Then it dies
 * of the signal.  The jobs are told through the library's own record of
 * its children (zmp_signal_all: pidfds, never a recycled pid), which is
 * safe in a handler and from the stdout watcher's thread.
 */
#define GRACE_SECONDS 2

static atomic_int stopping;   /* no input taken, the jobs were signalled */
static atomic_int die_sig;    /* die of it at the end: INT, TERM, HUP, PIPE */
static int wake_fds[2] = { -1, -1 };  /* readable once stopping */

/* Async-signal-safe. */
static void stop_jobs(int sig)
{
    int saved = errno;

    if (atomic_exchange(&stopping, 1)) {
        zmp_signal_all(SIGKILL);  /* stopping already: no more grace */
        errno = saved;
        return;
    }
    zmp_signal_all(sig);
    zmp_signal_all(SIGCONT);      /* a stopped job could not act on it */
    if (wake_fds[1] >= 0)
        (void)!write(wake_fds[1], "", 1);
    alarm(GRACE_SECONDS);
    errno = saved;
}

/* Stop, and die of sig at the end, unless a signal came first. */
static void stop_and_die(int sig, int job_sig)
{
    int none = 0;

    atomic_compare_exchange_strong(&die_sig, &none, sig);
    if (!atomic_load(&stopping))
        stop_jobs(job_sig);
}

static void on_stop_signal(int sig)
{
    int none = 0;

    atomic_compare_exchange_strong(&die_sig, &none, sig);
    stop_jobs(sig);
}

static void on_alarm(int sig)
{
    (void)sig;
    zmp_signal_all(SIGKILL);
}

/*
 * Job control, as a shell does it: the jobs are in process groups of
 * their own, out of reach of the terminal's SIGTSTP, so zmp stops them
 * (SIGSTOP: they cannot refuse) before it stops itself, and continues
 * them when it is continued.  In an orphaned process group the kernel
 * drops the SIGTSTP zmp raises: zmp goes on, and so do its jobs.
 */
static void on_cont(int sig)
{
    int saved = errno;

    (void)sig;
    zmp_signal_all(SIGCONT);
    errno = saved;
}

static void on_tstp(int sig)
{
    struct sigaction dfl = { .sa_handler = SIG_DFL }, sa = { .sa_handler = on_tstp,
                                                             .sa_flags = SA_RESTART };
    sigset_t set, old;
    int saved = errno;

    zmp_signal_all(SIGSTOP);
    sigaction(sig, &dfl, NULL);
    raise(sig);  /* pending: blocked while this handler runs */
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(SIG_UNBLOCK, &set, &old);  /* stopped here */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    zmp_signal_all(SIGCONT);
    sigaction(sig, &sa, NULL);
    errno = saved;
}

void job_control_install(void)
{
    struct sigaction sa = { .sa_handler = on_tstp, .sa_flags = SA_RESTART };

    sigaction(SIGTSTP, &sa, NULL);
    sa.sa_handler = on_cont;
    sigaction(SIGCONT, &sa, NULL);
}

static void install_handlers(void)
{
    static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
    struct sigaction sa = { .sa_handler = on_stop_signal, .sa_flags = SA_RESTART };
    size_t i;

    for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    /* A closed stdout is seen as EPIPE (and by the watcher), so that the
     * jobs can be ended first; the jobs get default dispositions. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    job_control_install();
}

/*
 * `zmp parallel ... | head -1`: once head has exited, the next write would
 * say so, but that waits for the next job to finish, maybe hours away.
 * A pipe's writing end reports POLLERR (a socket POLLHUP) as soon as the
 * reader is gone: a thread waits for that, with every signal blocked.
 */
static void *watch_stdout(void *arg)
{
    struct pollfd p = { .fd = 1, .events = 0 };

    (void)arg;
    while (poll(&p, 1, -1) < 0)
        ;
    if (p.revents & (POLLERR | POLLHUP))
        stop_and_die(SIGPIPE, SIGTERM);
    return NULL;
}

static void start_stdout_watcher(void)
{
    pthread_attr_t attr;
    pthread_t t;
    sigset_t all, old;
    struct stat st;

    if (fstat(1, &st) < 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
        return;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        /* Without it, a closed pipe is still seen at the next write. */
        (void)!pthread_create(&t, &attr, watch_stdout, NULL);
        pthread_attr_destroy(&attr);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/*
 * What the source waits on: the input fd and the wake pipe, in one epoll
 * fd, so that a stop is seen while no line comes.  A regular file cannot
 * join (EPERM) but never makes a reader wait.  -1 without a wake pipe:
 * then the input fd alone.
 */
static int make_wait_fd(int input_fd)
{
    struct epoll_event ev = { .events = EPOLLIN };
    int ep;

    if (pipe2(wake_fds, O_CLOEXEC | O_NONBLOCK) < 0)
        return -1;
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        goto fail;
    ev.data.fd = wake_fds[0];
    if (epoll_ctl(ep, EPOLL_CTL_ADD, wake_fds[0], &ev) < 0)
        goto fail;
    ev.data.fd = input_fd;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, input_fd, &ev) < 0 && errno != EPERM)
        goto fail;
    return ep;
fail:
    if (ep >= 0)
        close(ep);
    close(wake_fds[0]);
    close(wake_fds[1]);
    wake_fds[0] = wake_fds[1] = -1;
    return -1;
}

/* One job, from the time its input is read until it is printed. */
struct job {
    uint64_t seq;           /* the input's number, from 1 ({#}) */
    char *input;            /* as read, for the record */
    char **argv;
    struct output_job *out; /* its output on the way out, until it ends */
    zmp_result res;
    zmp_info info;
    int err;
    bool done;
    bool cancelled;         /* never run: no output, no record */
    bool interrupted;       /* stopped, not failed: --resume runs it again */
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
    struct output *out;     /* where the jobs' output goes (output.c) */
    bool tag;               /* --tag: each output line after the input */
    char *tagstring;        /* --tagstring: ... after this, expanded */
    bool keep_order, progress, halt;
    FILE *results_file;
    const char *results_name;
    uint64_t shard_k, shard_n;  /* run the inputs i with i % n == k */
    uint64_t inputs;        /* inputs read, every shard's */
    bool input_ended;       /* ... all of them */
    bool halted;            /* --halt-on-error stopped the run */
    unsigned char *done_bits;  /* --resume: bit seq - 1 set, done already */
    uint64_t done_nbits, skipped;
    int wait_fd;            /* what the source waits on for input */
    size_t started, finished, failed, running;
    int read_error;         /* reading the inputs failed */
    /* Write errors, each reported once: of the jobs' output (stdout,
     * stderr, a spill file) and in the results file they stop the run;
     * of zmp's own messages on stderr they only make it fail. */
    bool out_error, results_error, err_error;
};

int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;

    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A message on stderr; a failure to write it makes the run fail. */
__attribute__((format(printf, 2, 3)))
static void say(struct run *r, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (n < 0)
        r->err_error = true;
}

/*
 * The first error writing the jobs' output (output.c): said once, and the
 * run stops, as GNU parallel does.  A closed pipe (`| head -1`) gets no
 * message, as a tool killed by SIGPIPE (which zmp then dies of, once the
 * jobs end).
 */
static void check_output(struct run *r)
{
    const char *what;
    int e, fd;

    if (r->out_error || !(e = output_error(r->out, &what, &fd)))
        return;
    r->out_error = true;
    if (e == -EPIPE && fd == 1) {
        stop_and_die(SIGPIPE, SIGTERM);
        return;
    }
    say(r, "zmp parallel: cannot write %s: %s\n", what, strerror(-e));
    if (!atomic_load(&stopping))
        stop_jobs(SIGTERM);
}

/* After each record: a record is either all there or missing. */
static void flush_results(struct run *r)
{
    if (r->results_error || (fflush(r->results_file) == 0 && !ferror(r->results_file)))
        return;
    r->results_error = true;
    say(r, "zmp parallel: cannot write %s: %s\n", r->results_name, strerror(errno));
    if (!atomic_load(&stopping))
        stop_jobs(SIGTERM);
}

static void write_result_json(struct run *r, size_t i, const struct job *j)
{
    const zmp_result *res = &j->res;
    const zmp_info *info = &j->info;
    FILE *f = r->results_file;
    size_t k;

    (void)i;
    fprintf(f, "{\"type\":\"job\",\"seq\":%llu,\"input\":", (unsigned long long)j->seq);
    json_string(f, j->input, strlen(j->input));
    fputs(",\"command\":[", f);
    for (k = 0; j->argv[k]; k++) {
        if (k)
            putc(',', f);
        json_string(f, j->argv[k], strlen(j->argv[k]));
    }
    fputs("],", f);
    if (j->err) {
        fputs("\"error\":", f);
        json_string(f, zmp_strerror(j->err), strlen(zmp_strerror(j->err)));
        fprintf(f, ",\"ok\":false,\"interrupted\":%s}\n",
                j->interrupted ? "true" : "false");
        return;
    }
    fprintf(f, "\"ok\":%s,\"exit_code\":%d,\"signal\":%d,"
               "\"timed_out\":%s,\"truncated\":%s,\"pipes_held\":%s,"
               "\"start\":%.6f,\"seconds\":%.6f,"
               "\"user_cpu\":%.6f,\"system_cpu\":%.6f,\"max_rss_kb\":%ld,\"stdout\":",
            res->ok ? "true" : "false",
            res->exit_code,
            res->exit_code < 0 ? -res->exit_code : 0,
            info->flags & ZMP_TIMED_OUT ? "true" : "false",
            info->flags & ZMP_TRUNCATED ? "true" : "false",
            info->flags & ZMP_PIPES_HELD ? "true" : "false",
            info->started, info->seconds, info->user_cpu, info->system_cpu,
            info->max_rss_kb);
    json_string(f, res->out, res->out_len);
    fputs(",\"stderr\":", f);
    json_string(f, res->err, res->err_len);
    fprintf(f, ",\"interrupted\":%s}\n", j->interrupted ? "true" : "false");
}

static struct job **slot(struct run *r, size_t i)
{
    return &r->win[i - r->base];
}

/*
 * A job has ended: what it failed with, as a line of its stderr (so that
 * with -k it comes in its place), and with --results, the output the
 * library kept, go to output.c, which prints the job when its turn comes.
 */
static void end_output(struct run *r, struct job *j)
{
    char msg[512];

    if (j->err && !j->cancelled) {
        if (!j->argv[0][0])
            snprintf(msg, sizeof msg, "zmp: job %llu: the program name is empty\n",
                     (unsigned long long)j->seq);
        else
            snprintf(msg, sizeof msg, "zmp: job %llu (%.300s): %s\n",
                     (unsigned long long)j->seq, j->argv[0], zmp_strerror(j->err));
        output_note(j->out, 2, msg);
    }
    if (r->results_file) {
        if (j->res.out_len)
            output_write(j->out, 1, j->res.out, j->res.out_len);
        if (j->res.err_len)
            output_write(j->out, 2, j->res.err, j->res.err_len);
    }
    output_job_end(j->out);
    j->out = NULL;
    check_output(r);
}

/* Record a finished job (--results) and free it. */
static void print_job(struct run *r, size_t i)
{
    struct job *j = *slot(r, i);

    if (r->results_file && !j->cancelled && !r->results_error) {
        write_result_json(r, i, j);
        flush_results(r);
    }
    zmp_result_free(&j->res);
    template_free(j->argv);
    free(j->input);
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
    say(r, "\r\033[K%zu done, %zu running, %zu failed", r->finished,
            r->running, r->failed);
}

/*
 * What goes in front of each line of a job's output: with --tag the
 * input, with --tagstring its string expanded as a one-word command
 * template would be ({} the input, {#} the job number), then a TAB, as
 * GNU parallel does.  NULL without either.  0 or -errno.
 */
static int tag_prefix(const struct run *r, const char *line, uint64_t seq, char **ret)
{
    char **v = NULL;
    int e;

    *ret = NULL;
    if (r->tagstring) {
        e = template_expand(&r->tagstring, 1, line, (unsigned long)seq, &v);
        if (e < 0)
            return e;
        line = v[0];
    } else if (!r->tag) {
        return 0;
    }
    e = asprintf(ret, "%s\t", line) < 0 ? -ENOMEM : 0;
    template_free(v);
    return e;
}

/* The job source: the next input, expanded into a job. */
static int next_job(void *arg, size_t i, zmp_options *o, int *wait_fd)
{
    struct run *r = arg;
    struct job **w, *j;
    const char *line;
    char *prefix = NULL;
    uint64_t seq;
    int e;

    (void)i;
    for (;;) {
        if (atomic_load(&stopping))
            return ZMP_STREAM_END;
        e = input_next(&r->in, &line);
        if (e == -EAGAIN) {
            *wait_fd = r->wait_fd;
            return ZMP_STREAM_WAIT;
        }
        if (e < 0)
            r->read_error = e;
        r->input_ended = e == 0;
        if (e <= 0)
            return e;
        seq = ++r->inputs;
        /* Another shard's, or run already (--resume). */
        if ((seq - 1) % r->shard_n != r->shard_k)
            continue;
        if (seq <= r->done_nbits && r->done_bits[(seq - 1) / 8] & 1u << (seq - 1) % 8) {
            r->skipped++;
            continue;
        }
        break;
    }
    if (r->nwin == r->wincap) {
        size_t cap = r->wincap ? r->wincap * 2 : 64;

        if (!(w = realloc(r->win, cap * sizeof *w)))
            return -ENOMEM;
        r->win = w;
        r->wincap = cap;
    }
    if (!(j = calloc(1, sizeof *j)))
        return -ENOMEM;
    j->seq = seq;
    if (!(j->input = strdup(line))) {
        free(j);
        return -ENOMEM;
    }
    e = template_expand(r->tmpl, r->ntmpl, line, (unsigned long)seq, &j->argv);
    if (e == 0 && (e = tag_prefix(r, line, seq, &prefix)) == 0) {
        e = output_job_new(r->out, prefix, &j->out);
        free(prefix);
    }
    if (e < 0) {
        template_free(j->argv);
        free(j->input);
        free(j);
        return e;
    }
    r->win[r->nwin++] = j;
    *o = r->opts;
    o->program = j->argv[0];
    o->argv = (const char *const *)j->argv;
    /* --results records the output: the library keeps it whole then. */
    if (!r->results_file) {
        o->on_output = output_write;
        o->output_arg = j->out;
    }
    r->started++;
    r->running++;
    draw_progress(r);
    return ZMP_STREAM_JOB;
}

/*
 * A job that died of a signal a stop sends (Ctrl-C, SIGTERM, SIGHUP,
 * SIGKILL), not sent by its own timeout, was most likely stopped from
 * outside: a scheduler's scancel or pod deletion signals every process of
 * the task at once, so the job can die and be reaped before zmp's own
 * handler has run.  It did not fail on its own merits: --resume runs it
 * again.
 */
static bool killed_from_outside(const zmp_result *res, const zmp_info *info)
{
    if (!res || (info && (info->flags & ZMP_TIMED_OUT)))
        return false;
    switch (-res->exit_code) {
    case SIGINT: case SIGTERM: case SIGHUP: case SIGKILL:
        return true;
    default:
        return false;
    }
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
    j->interrupted = failed && (atomic_load(&stopping) ||
                                killed_from_outside(res, info));
    r->finished += !cancelled;
    r->running--;
    r->failed += failed;
    r->halted |= r->halt && failed;
    if (r->progress)
        say(r, "\r\033[K");
    end_output(r, j);
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
    return (r->halt && failed) || atomic_load(&stopping);
}

/*
 * --cgroup DIR: try making a cgroup there now, so that a bad DIR is named
 * once, rather than every job failing with a bare errno after its program's
 * name.
 */
static int check_cgroup(const char *dir)
{
    struct statfs fs;
    char path[4096];
    int e = 0;

    if (statfs(dir, &fs) < 0)
        return -errno;
    if (fs.f_type != CGROUP2_SUPER_MAGIC)
        return -ENOTDIR;  /* said as "not a cgroup v2 directory" */
    if (snprintf(path, sizeof path, "%s/zmp-check-%ld", dir, (long)getpid()) >=
        (int)sizeof path)
        return -ENAMETOOLONG;
    if (mkdir(path, 0755) < 0)
        return -errno;
    /* cgroup.kill (Linux 5.14) is what ends a job's leftovers. */
    strcat(path, "/cgroup.kill");
    if (access(path, F_OK) < 0)
        e = errno == ENOENT ? -EOPNOTSUPP : -errno;
    path[strlen(path) - strlen("/cgroup.kill")] = '\0';
    rmdir(path);
    return e;
}

static double wall_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The template as the header records it: a JSON array, malloc'd. */
static char *command_json(const struct run *r, size_t *ret_len)
{
    char *buf = NULL;
    size_t len = 0, k;
    FILE *f = open_memstream(&buf, &len);

    if (!f)
        return NULL;
    putc('[', f);
    for (k = 0; k < r->ntmpl; k++) {
        if (k)
            putc(',', f);
        json_string(f, r->tmpl[k], strlen(r->tmpl[k]));
    }
    putc(']', f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    *ret_len = len;
    return buf;
}

static void write_header(struct run *r, const char *command)
{
    char host[256] = "";

    if (gethostname(host, sizeof host - 1) < 0)
        host[0] = '\0';
    fprintf(r->results_file, "{\"type\":\"header\",\"version\":\"%s\",\"command\":%s,"
                             "\"shard\":{\"k\":%llu,\"n\":%llu},\"host\":",
            zmp_version(), command, (unsigned long long)r->shard_k,
            (unsigned long long)r->shard_n);
    json_string(r->results_file, host, strlen(host));
    fprintf(r->results_file, ",\"start\":%.6f}\n", wall_now());
    flush_results(r);
}

/* Only a shard that ran every input it had to gets one: its absence tells
 * zmp merge that the shard was killed or stopped. */
static void write_summary(struct run *r)
{
    fprintf(r->results_file, "{\"type\":\"summary\",\"inputs\":%llu,\"jobs\":%zu,"
                             "\"failed\":%zu,\"skipped\":%llu,\"end\":%.6f}\n",
            (unsigned long long)r->inputs, r->finished, r->failed,
            (unsigned long long)r->skipped, wall_now());
    flush_results(r);
}

/* What --resume reads back from the results file. */
struct resume {
    struct run *r;
    const char *command;    /* ours, to compare with the header's */
    size_t command_len;
    bool failed_too;        /* --resume-failed */
    bool have_header;
};

static int resume_record(void *arg, const struct record *rec)
{
    struct resume *rs = arg;
    struct run *r = rs->r;
    unsigned char *bits;
    uint64_t n;

    if (rec->type == REC_HEADER) {
        if (rec->command.len != rs->command_len ||
            memcmp(rec->command.text, rs->command, rs->command_len)) {
            fprintf(stderr, "zmp parallel: --resume: %s was written by another command\n",
                    r->results_name);
            return -1;
        }
        if (rec->shard_k != r->shard_k || rec->shard_n != r->shard_n) {
            fprintf(stderr, "zmp parallel: --resume: %s is shard %llu/%llu, not %llu/%llu\n",
                    r->results_name, (unsigned long long)rec->shard_k,
                    (unsigned long long)rec->shard_n, (unsigned long long)r->shard_k,
                    (unsigned long long)r->shard_n);
            return -1;
        }
        rs->have_header = true;
        return 0;
    }
    if (rec->type != REC_JOB)
        return 0;
    if (!rs->have_header) {
        fprintf(stderr, "zmp parallel: --resume: %s does not start with a header\n",
                r->results_name);
        return -1;
    }
    if (rec->seq > r->done_nbits) {
        n = r->done_nbits ? r->done_nbits : 4096;
        while (n < rec->seq)
            n *= 2;
        if (!(bits = realloc(r->done_bits, n / 8))) {
            fprintf(stderr, "zmp parallel: --resume: out of memory\n");
            return -1;
        }
        memset(bits + r->done_nbits / 8, 0, (n - r->done_nbits) / 8);
        r->done_bits = bits;
        r->done_nbits = n;
    }
    /* The last record of a job wins; a job cut short by a stop (a
     * preempted task's SIGTERM) is not done. */
    if (rec->ok || (!rs->failed_too && !rec->interrupted))
        r->done_bits[(rec->seq - 1) / 8] |= (unsigned char)(1u << (rec->seq - 1) % 8);
    else
        r->done_bits[(rec->seq - 1) / 8] &= (unsigned char)~(1u << (rec->seq - 1) % 8);
    return 0;
}

/*
 * Open the results file: anew, or with --resume to append to what an
 * earlier run of the same command and shard left (a torn last line is
 * cut off), learning which jobs it ran.  0, or -1 after a message.
 */
static int open_results(struct run *r, const struct parallel_config *cfg)
{
    struct resume rs = { .r = r, .failed_too = cfg->resume_failed };
    char *command;
    size_t bad;
    off_t torn;
    int fd, e = -1;

    command = command_json(r, &rs.command_len);
    if (!command) {
        fprintf(stderr, "zmp parallel: out of memory\n");
        return -1;
    }
    rs.command = command;
    if (!cfg->resume) {
        r->results_file = fopen(cfg->results, "w");
    } else if ((fd = open(cfg->results, O_RDWR | O_CREAT | O_CLOEXEC, 0666)) >= 0 &&
               !(r->results_file = fdopen(fd, "r+"))) {
        close(fd);
    }
    if (!r->results_file) {
        fprintf(stderr, "zmp parallel: cannot write %s: %s\n", cfg->results,
                strerror(errno));
        goto out;
    }
    if (cfg->resume) {
        e = results_scan(r->results_file, resume_record, &rs, &torn, &bad);
        if (e == -EBADMSG)
            fprintf(stderr, "zmp parallel: --resume: %s: line %zu is not a zmp record\n",
                    cfg->results, bad);
        else if (e < -1)
            fprintf(stderr, "zmp parallel: --resume: cannot read %s: %s\n", cfg->results,
                    strerror(-e));
        if (e)
            goto out;
        e = -1;
        if (ftruncate(fileno(r->results_file), torn) < 0 ||
            fseeko(r->results_file, 0, SEEK_END) < 0) {
            fprintf(stderr, "zmp parallel: cannot write %s: %s\n", cfg->results,
                    strerror(errno));
            goto out;
        }
    }
    if (!rs.have_header)
        write_header(r, command);
    e = r->results_error ? -1 : 0;
out:
    free(command);
    return e;
}

int cmd_parallel(int argc, char **argv, bool stdin_closed)
{
    struct parallel_config cfg;
    struct output_config oc = { .fd = { 1, 2 } };
    struct run r = { .wait_fd = -1 };
    int status, e, sig, fd = -1;

    status = parallel_parse(argc, argv, &cfg);
    if (status)
        return status == PARALLEL_HELP ? 0 : status;
    status = EXIT_USAGE;
    r.tmpl = cfg.tmpl;
    r.ntmpl = cfg.ntmpl;
    r.keep_order = cfg.keep_order;
    r.shard_k = cfg.shard_k;
    r.shard_n = cfg.shard_n;
    r.halt = cfg.halt;
    r.progress = cfg.progress && isatty(2);
    r.opts.timeout_ms = (unsigned long)ceil(cfg.timeout * 1000);
    r.opts.output_cap = (size_t)cfg.output_cap;
    r.opts.cgroup = cfg.cgroup;
    r.opts.flags = ZMP_NEW_PGROUP;
    if (cfg.cgroup && (e = check_cgroup(cfg.cgroup)) < 0) {
        fprintf(stderr, "zmp parallel: --cgroup %s: cannot make a cgroup there: %s\n",
                cfg.cgroup,
                e == -EOPNOTSUPP ? "no cgroup.kill (Linux 5.14 or later is needed)"
                : e == -ENOTDIR  ? "not a cgroup v2 directory"
                                 : strerror(-e));
        return EXIT_USAGE;
    }
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
        /* main() put /dev/null there, so that nothing else takes fd 0:
         * reading it would quietly run no job. */
        if (stdin_closed) {
            fprintf(stderr, "zmp parallel: cannot read standard input: %s\n",
                    strerror(EBADF));
            return EXIT_USAGE;
        }
        input_from_fd(&r.in, 0);
    }
    oc.mode = cfg.output_mode;
    oc.keep_order = cfg.keep_order;
    oc.job_mem = (size_t)cfg.buffer_size;
    oc.total_mem = (size_t)cfg.buffer_total;
    oc.tmpdir = cfg.tmpdir;
    r.tag = cfg.tag;
    r.tagstring = cfg.tagstring;
    if (output_new(&oc, &r.out) < 0) {
        fprintf(stderr, "zmp parallel: out of memory\n");
        goto out;
    }
    r.results_name = cfg.results;
    if (cfg.results && open_results(&r, &cfg) < 0)
        goto out;
    if (r.in.fd >= 0)
        r.wait_fd = make_wait_fd(r.in.fd);
    if (r.wait_fd < 0)
        r.wait_fd = r.in.fd;
    install_handlers();
    start_stdout_watcher();
    e = zmp_run_stream(parallel_jobs(&cfg, (unsigned)zmp_cpu_count()), next_job,
                       on_done, &r);
    check_output(&r);
    if (r.progress)
        say(&r, "\n");
    if (r.read_error) {
        say(&r, "zmp parallel: cannot read %s: %s\n",
            cfg.arg_file ? cfg.arg_file : "standard input", zmp_strerror(r.read_error));
        goto out;
    }
    if (e < 0) {
        say(&r, "zmp parallel: %s\n", zmp_strerror(e));
        goto out;
    }
    if (r.results_file && r.input_ended && !r.halted && !atomic_load(&stopping) &&
        !r.results_error)
        write_summary(&r);
    if (r.out_error) {
        status = EXIT_ERROR;
        goto out;
    }
    if (r.results_error || r.err_error)
        goto out;
    status = r.failed > FAILED_MAX ? FAILED_MAX : (int)r.failed;
out:
    if (r.results_file && fclose(r.results_file) != 0 && !r.results_error) {
        say(&r, "zmp parallel: cannot write %s: %s\n", cfg.results, strerror(errno));
        status = EXIT_USAGE;
    }
    /* Left only when the engine failed: free what is left. */
    for (; r.nwin > 0; r.nwin--) {
        struct job *j = r.win[r.nwin - 1];

        if (j) {
            zmp_result_free(&j->res);
            template_free(j->argv);
            free(j->input);
            free(j);
        }
    }
    free(r.win);
    free(r.done_bits);
    input_free(&r.in);
    if (fd >= 0)
        close(fd);
    /* The library first: a job it still holds (the engine failed) may be
     * read on the way out, and its output is handed to r.out. */
    zmp_deinit();
    output_free(r.out);
    alarm(0);
    sig = atomic_load(&die_sig);
    if (sig) {
        /* Everything is written: now die of it, so that the caller (a
         * shell, make) knows zmp was interrupted. */
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        sigset_t set;

        sigaction(sig, &dfl, NULL);
        sigemptyset(&set);
        sigaddset(&set, sig);
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
        raise(sig);
        status = 128 + sig;
    }
    return status;
}
