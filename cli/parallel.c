/* SPDX-License-Identifier: MIT */
/*
 * zmp parallel: one job per input (or combination of inputs), run with at
 * most N at once, each job's output printed together (output.c).
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
#include <limits.h>
#include <regex.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "joblog.h"
#include "feed.h"
#include "json.h"
#include "memfree.h"
#include "pipe.h"
#include "results.h"
#include "sources.h"
#include "template.h"
#include "zmp.h"

#define FAILED_MAX 101  /* as GNU parallel: 101 means more than 100 */

/*
 * Stopping.  A SIGINT, SIGTERM or SIGHUP, a closed stdout pipe, a write
 * error, --halt now: zmp takes no more input and starts no job, and ends
 * the jobs as GNU parallel does on SIGINT and SIGTERM: its --termseq, by
 * default SIGTERM to each job's process group (the jobs lead groups of
 * their own, so a signal meant for zmp does not reach them by itself),
 * again after 200 ms and after 100 ms more, then SIGKILL after 50 ms more;
 * a second signal SIGKILLs at once.  Unlike GNU parallel, zmp prints and
 * records the jobs as they end, and then dies of the signal.  The jobs
 * are told through the library's own record of its children
 * (zmp_signal_all: pidfds, never a recycled pid), which is safe in a
 * handler and from the stdout watcher's thread; the steps are timed by
 * SIGALRM (setitimer).
 */
static const zmp_term_step gnu_stop_seq[] = {
    { SIGTERM, 200 }, { SIGTERM, 100 }, { SIGTERM, 50 }, { SIGKILL, 0 },
};
/* The sequence: GNU's default, or --termseq (set before the handlers). */
static const zmp_term_step *stop_seq = gnu_stop_seq;
static int stop_steps = (int)(sizeof gnu_stop_seq / sizeof gnu_stop_seq[0]);
static bool stop_seq_given;

static atomic_int stopping;   /* no input taken, the jobs were signalled */
static atomic_int stop_step;  /* the step of stop_seq the timer sends next */
static atomic_int die_sig;    /* die of it at the end: INT, TERM, HUP, PIPE */
static int wake_fds[2] = { -1, -1 };  /* readable once stopping */

/* Send sig to the jobs and time step `next`; past the last, SIGKILL what
 * is left, so that a stop always ends.  Async-signal-safe. */
static void stop_send(int sig, unsigned long ms, int next)
{
    struct itimerval it = { { 0, 0 }, { 0, 0 } };

    zmp_signal_all(sig);
    if (sig == SIGKILL)
        return;
    zmp_signal_all(SIGCONT);      /* a stopped job could not act on it */
    atomic_store(&stop_step, next);
    it.it_value.tv_sec = (time_t)(ms / 1000);
    it.it_value.tv_usec = (suseconds_t)(ms % 1000 * 1000);
    if (ms == 0)
        it.it_value.tv_usec = 1;  /* 0 would disarm the timer */
    setitimer(ITIMER_REAL, &it, NULL);
}

/* Start the stop sequence, with sig as its first signal unless --termseq
 * names one (every caller gives SIGTERM, which GNU parallel sends
 * whatever stopped it); stopping already, SIGKILL at once.
 * Async-signal-safe. */
static void stop_jobs(int sig)
{
    int saved = errno;

    if (atomic_exchange(&stopping, 1)) {
        zmp_signal_all(SIGKILL);  /* a second signal: no more grace */
        errno = saved;
        return;
    }
    if (wake_fds[1] >= 0)
        (void)!write(wake_fds[1], "", 1);
    stop_send(stop_seq_given ? stop_seq[0].signal : sig, stop_seq[0].ms, 1);
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
    stop_jobs(SIGTERM);
}

/* The next step of the stop sequence is due. */
static void on_alarm(int sig)
{
    int saved = errno, i = atomic_load(&stop_step);

    (void)sig;
    if (i < stop_steps)
        stop_send(stop_seq[i].signal, stop_seq[i].ms, i + 1);
    else
        zmp_signal_all(SIGKILL);
    errno = saved;
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

    /* One handler of the stop at a time: none runs inside another. */
    for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&sa.sa_mask, sigs[i]);
    sigaddset(&sa.sa_mask, SIGALRM);
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
    if (input_fd >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, input_fd, &ev) < 0 && errno != EPERM)
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
    char *input;            /* its values joined by blanks, for the record */
    char **argv;
    unsigned slot;          /* {%}: from 1, while it runs */
    char *block;            /* --pipe: its stdin */
    size_t block_len;       /* ... its size (--round-robin: bytes given) */
    bool fed;               /* --round-robin: stdin is feed_fd, fed by feed.c */
    uint64_t received_in;   /* ... bytes the feeder wrote it */
    int feed_fd;
    unsigned feed_slot;
    struct output_job *out; /* its output on the way out, until it ends */
    size_t idx;             /* its place in the window (the stream's index) */
    unsigned long tries;    /* tries again so far (--retries: N in all) */
    struct job *retry_next; /* in the queue of jobs to try again */
    char *tag;              /* --tagstring, expanded (until out is made) */
    uint64_t received;      /* bytes of output it wrote (--joblog) */
    zmp_result res;
    zmp_info info;
    int err;
    bool done;
    bool cancelled;         /* never run: no output, no record */
    bool interrupted;       /* stopped, not failed: --resume runs it again */
    bool mem_ended;         /* ended by --memfree: failed, exit value -1 */
};

struct run {
    /* The jobs from the oldest one not printed yet, by number:
     * win[i - base] is job i, NULL once printed and freed.  A job's record
     * lives from its input to its printing; behind a long-running job,
     * the window keeps one pointer for each job since. */
    struct job **win;
    size_t base, nwin, wincap;
    struct sources *src;
    struct piper pipe;      /* --pipe */
    bool piping;
    struct feed *feed;      /* --pipe --round-robin */
    struct template tmpl;
    const struct parallel_config *cfg;
    unsigned parallel;      /* jobs at once */
    size_t arg_limit;       /* bytes a job's argv may take (-m, -X) */
    /* Records read, not yet in a job (-n, -N, -m, -X take several). */
    struct pending { char **v; size_t n; uint64_t seq; } *pend;
    size_t npend, pendcap;
    uint64_t jobs_made;     /* jobs of several records made */
    struct job *retry_head, *retry_tail;  /* --retries: to run again, first */
    size_t per_job;         /* -m, -X: records a job takes, at most */
    uint64_t total_jobs;    /* --halt N%, --eta, --bar: every job, known
                               before the first */
    double run_start;       /* --eta: when the first job was handed out */
    /* {%}: free slots, last freed first; slots above next_slot unused. */
    unsigned *free_slots;
    size_t nfree, freecap;
    unsigned next_slot;
    bool uses_slot;         /* {%} in the command or --tagstring */
    bool gated;             /* a job only when a slot is free (see next_job) */
    bool too_long;          /* a command line exec would refuse: an error */
    int slot_fd;            /* readable when a slot is freed (gated) */
    struct memfree *memfree;
    int mem_ep;             /* --memfree: slot_fd and memfree's tick */
    struct job *parked;     /* --memfree: taken, to start once memory allows */
    FILE *joblog;           /* --joblog */
    bool joblog_error;
    uint64_t *seq_map;      /* --retry-failed: the joblog's seq of input i */
    size_t nseq_map;
    double last_start;      /* --delay: when the last job was handed out */
    int delay_fd;           /* --delay: a timer, readable when one may start */
    double runtimes[1001];  /* --timeout N%: the last successful runtimes */
    size_t nruntimes, runtime_at;
    zmp_options opts;       /* what every job shares */
    struct output *out;     /* where the jobs' output goes (output.c) */
    bool tag;               /* --tag: each output line after the values */
    struct template tagtmpl;   /* --tagstring, parsed */
    bool have_tagtmpl;
    bool keep_order, progress;
    FILE *results_file;
    const char *results_name;
    struct json_pieces results_str;  /* the output being written into it */
    uint64_t shard_k, shard_n;  /* run the inputs i with i % n == k */
    uint64_t inputs;        /* inputs read, every shard's */
    bool input_ended;       /* ... all of them */
    bool halted;            /* --halt stopped the run */
    int halt_status;        /* ... and this is the exit status */
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

/* --dry-run's lines: a write error stops it, as for the jobs' output. */
static void write_stdout(struct run *r, const char *p, size_t n)
{
    int e;

    if (r->out_error || n == 0)
        return;
    e = write_all(1, p, n);
    if (e == 0)
        return;
    r->out_error = true;
    if (e == -EPIPE) {
        stop_and_die(SIGPIPE, SIGTERM);
        return;
    }
    say(r, "zmp parallel: cannot write standard output: %s\n", strerror(-e));
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

    if (r->out_error || !r->out || !(e = output_error(r->out, &what, &fd)))
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

/* One piece of a job's kept output, into the record being written. */
static int result_piece(void *arg, const char *data, size_t len)
{
    struct run *r = arg;

    json_string_piece(r->results_file, &r->results_str, data, len);
    return 0;
}

/* The output the job kept on fd (1 or 2), as a JSON string. */
static void result_output(struct run *r, const struct job *j, int fd)
{
    json_string_start(r->results_file, &r->results_str);
    output_job_read(j->out, fd, result_piece, r);
    json_string_end(r->results_file, &r->results_str);
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
    result_output(r, j, 1);
    fputs(",\"stderr\":", f);
    result_output(r, j, 2);
    fprintf(f, ",\"interrupted\":%s}\n", j->interrupted ? "true" : "false");
}

static struct job **slot(struct run *r, size_t i)
{
    return &r->win[i - r->base];
}

/* The command of a job as a shell would read it (--dry-run, --joblog):
 * malloc'd, or NULL. */
static char *command_line(const struct run *r, char **argv)
{
    char *buf = NULL, *q;
    size_t len = 0, k;
    FILE *f;

    if (r->tmpl.shell)
        return strdup(argv[2]);
    if (!(f = open_memstream(&buf, &len)))
        return NULL;
    for (k = 0; argv[k]; k++) {
        if (!(q = shell_quote(argv[k])))
            break;
        fprintf(f, "%s%s", k ? " " : "", q);
        free(q);
    }
    if (fclose(f) != 0 || argv[k]) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* The job's line in --joblog, as GNU parallel writes it. */
static void write_joblog(struct run *r, const struct job *j)
{
    struct timespec now;
    struct joblog_line l = { .seq = j->seq, .start = j->info.started,
                             .runtime = j->info.seconds, .send = j->block_len,
                             .receive = j->received };
    char *cmd;
    int e;

    if (l.start == 0) {  /* never started: when it was tried */
        clock_gettime(CLOCK_REALTIME, &now);
        l.start = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    }
    if (j->err) {
        l.exitval = j->err == -ENOENT ? 127 : 126;
    } else if (((j->info.flags & ZMP_TIMED_OUT) && j->res.exit_code < 0) || j->mem_ended) {
        l.exitval = -1;  /* as GNU parallel: killed by its timeout or --memfree */
        l.signal = j->res.exit_code < 0 ? -j->res.exit_code : 0;
    } else if (j->res.exit_code < 0) {
        l.signal = -j->res.exit_code;
    } else {
        l.exitval = j->res.exit_code;
    }
    if (!(cmd = command_line(r, j->argv))) {
        e = -ENOMEM;
    } else {
        l.command = cmd;
        e = joblog_write(r->joblog, &l);
        free(cmd);
    }
    if (e < 0) {
        r->joblog_error = true;
        say(r, "zmp parallel: cannot write %s: %s\n", r->cfg->joblog, strerror(-e));
        if (!atomic_load(&stopping))
            stop_jobs(SIGTERM);
    }
}

/*
 * A job is done: its output, held until now with --results or --retries,
 * and what it failed with, as a line of its stderr (so that with -k it
 * comes in its place), go on to output.c, which prints the job when its
 * turn comes.
 */
static void end_output(struct run *r, struct job *j)
{
    char msg[512];

    output_job_release(j->out);
    if (j->err && !j->cancelled) {
        if (!j->argv[0][0])
            snprintf(msg, sizeof msg, "zmp: job %llu: the program name is empty\n",
                     (unsigned long long)j->seq);
        else
            snprintf(msg, sizeof msg, "zmp: job %llu (%.300s): %s%s\n",
                     (unsigned long long)j->seq, j->argv[0], zmp_strerror(j->err),
                     j->err == -ENOENT && !r->tmpl.shell && strpbrk(j->argv[0], " \t;|&<>$")
                         ? " (a command line with blanks or shell syntax needs --shell)"
                         : "");
        output_note(j->out, 2, msg);
    }
    output_job_end(j->out);
    j->out = NULL;
    check_output(r);
}

static void free_job(struct job *j)
{
    if (j->fed)
        close(j->feed_fd);
    zmp_result_free(&j->res);
    template_free(j->argv);
    free(j->input);
    free(j->block);
    free(j->tag);
    free(j);
}

/* Record a finished job (--results, --joblog), print it and free it. */
static void print_job(struct run *r, size_t i)
{
    struct job *j = *slot(r, i);

    if (r->results_file && !j->cancelled && !r->results_error) {
        write_result_json(r, i, j);
        flush_results(r);
    }
    if (r->joblog && !j->cancelled && !r->joblog_error)
        write_joblog(r, j);
    end_output(r, j);
    free_job(j);
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

static double mono_now(void);

/*
 * The progress line on a terminal's stderr: --progress counts; --eta and
 * --bar (the inputs read first, so that the total is known) add the
 * estimated time left, from the mean time between job ends so far, and a
 * bar.
 */
static void draw_progress(struct run *r)
{
    char eta[32] = "", bar[48] = "";
    double pct, left;
    size_t fill, k;

    if (!r->progress)
        return;
    if ((r->cfg->eta || r->cfg->bar) && r->total_jobs) {
        pct = (double)r->finished * 100 / (double)r->total_jobs;
        if (r->finished > 0 && r->finished < r->total_jobs) {
            left = (mono_now() - r->run_start) / (double)r->finished *
                   (double)(r->total_jobs - r->finished);
            snprintf(eta, sizeof eta, ", ETA %.0fs", left);
        }
        if (r->cfg->bar) {
            fill = (size_t)(pct / 100 * 30);
            bar[0] = '[';
            for (k = 0; k < 30; k++)
                bar[1 + k] = k < fill ? '#' : ' ';
            snprintf(bar + 31, sizeof bar - 31, "] %3.0f%% ", pct);
        }
        say(r, "\r\033[K%s%zu of %llu done, %zu running, %zu failed%s", bar, r->finished,
            (unsigned long long)r->total_jobs, r->running, r->failed, eta);
        return;
    }
    say(r, "\r\033[K%zu done, %zu running, %zu failed", r->finished,
            r->running, r->failed);
}

/* One more record read into the pending ones: 1, 0 at the end, -EAGAIN,
 * or a negative errno.  Other shards' inputs and those --resume finds
 * done are skipped here, each counted once. */
static int read_record(struct run *r)
{
    struct pending *p;
    char **v;
    size_t n;
    uint64_t seq;
    int e;

    for (;;) {
        e = sources_next(r->src, &v, &n);
        if (e <= 0)
            return e;
        seq = ++r->inputs;
        if ((seq - 1) % r->shard_n != r->shard_k ||
            (seq <= r->done_nbits && r->done_bits[(seq - 1) / 8] & 1u << (seq - 1) % 8)) {
            r->skipped += (seq - 1) % r->shard_n == r->shard_k;
            values_free(v, n);
            continue;
        }
        if (r->npend == r->pendcap) {
            size_t cap = r->pendcap ? r->pendcap * 2 : 16;

            if (!(p = realloc(r->pend, cap * sizeof *p))) {
                values_free(v, n);
                return -ENOMEM;
            }
            r->pend = p;
            r->pendcap = cap;
        }
        r->pend[r->npend++] = (struct pending){ v, n, seq };
        return 1;
    }
}

/* How many records the next job wants: -n/-N's count, or with -m and -X
 * the rest spread evenly over the job slots (as GNU parallel), or 1. */
static size_t records_wanted(struct run *r)
{
    uint64_t left, per;

    if (r->cfg->multi == MULTI_NONE)
        return r->cfg->max_args ? r->cfg->max_args : 1;
    if (r->per_job)
        return r->per_job;
    left = sources_left(r->src);
    per = (left + r->parallel - 1) / r->parallel;
    if (r->cfg->max_args && per > r->cfg->max_args)
        per = r->cfg->max_args;
    r->per_job = per > 1000000 ? 1000000 : per ? (size_t)per : 1;
    return r->per_job;
}

/* The job of the first k pending records: its values and argv. */
/* words joined by blanks, malloc'd in *ret: 0 or -ENOMEM. */
static int join_words(char **words, char **ret)
{
    size_t len = 1, i;
    char *s;

    for (i = 0; words[i]; i++)
        len += strlen(words[i]) + 1;
    if (!(s = malloc(len)))
        return -ENOMEM;
    s[0] = '\0';
    for (len = 0, i = 0; words[i]; i++) {
        if (i)
            s[len++] = ' ';
        strcpy(s + len, words[i]);
        len += strlen(words[i]);
    }
    *ret = s;
    return 0;
}

static int make_job(struct run *r, size_t k, struct job *j, size_t *ret_bytes)
{
    struct job_values jv = { .seq = j->seq, .slot = j->slot };
    size_t n = 0, i, len = 0;
    char **v, **tag = NULL;
    int e;

    for (i = 0; i < k; i++)
        n += r->pend[i].n;
    if (!(v = malloc((n ? n : 1) * sizeof *v)))
        return -ENOMEM;
    for (n = 0, i = 0; i < k; i++) {
        memcpy(v + n, r->pend[i].v, r->pend[i].n * sizeof *v);
        n += r->pend[i].n;
    }
    jv.v = v;
    jv.n = r->cfg->no_values ? 0 : n;
    e = template_expand(&r->tmpl, &jv, &j->argv, ret_bytes);
    if (e == 0 && r->have_tagtmpl) {
        /* --tagstring: its words, as a command's would be, joined by
         * blanks. */
        jv.n = n;
        e = template_expand(&r->tagtmpl, &jv, &tag, NULL);
        if (e == 0)
            e = join_words(tag, &j->tag);
        template_free(tag);
    }
    for (i = 0; e == 0 && i < n; i++)
        len += strlen(v[i]) + 1;
    if (e == 0 && !(j->input = malloc(len + 1)))
        e = -ENOMEM;
    if (e == 0) {
        /* The values, joined by blanks: --results' input, --tag's tag. */
        j->input[0] = '\0';
        for (len = 0, i = 0; i < n; i++) {
            size_t l = strlen(v[i]);

            if (i)
                j->input[len++] = ' ';
            memcpy(j->input + len, v[i], l + 1);
            len += l;
        }
    }
    if (e < 0) {
        template_free(j->argv);
        j->argv = NULL;
        free(j->tag);
        j->tag = NULL;
    }
    free(v);
    return e;
}

/* {%}: the last slot freed, or a new one. */
static unsigned take_slot(struct run *r)
{
    return r->nfree ? r->free_slots[--r->nfree] : ++r->next_slot;
}

static void give_slot(struct run *r, unsigned slot)
{
    unsigned *v;

    if (!slot)
        return;
    if (r->nfree == r->freecap) {
        size_t cap = r->freecap ? r->freecap * 2 : 64;

        if (!(v = realloc(r->free_slots, cap * sizeof *v)))
            return;  /* that number is not used again */
        r->free_slots = v;
        r->freecap = cap;
    }
    r->free_slots[r->nfree++] = slot;
}

/* A job ended: a gated source may hand out the next. */
static void slot_freed(struct run *r)
{
    uint64_t one = 1;

    if (r->slot_fd >= 0)
        (void)!write(r->slot_fd, &one, sizeof one);
}

/*
 * The next job, shaped from the inputs: 1 and *ret, 0 at the end, -EAGAIN
 * (wait on the source's fd), or a negative errno.
 */
/* Linux's limit on one word of an exec (MAX_ARG_STRLEN), with its NUL. */
#define MAX_ARG_STRLEN (32 * 4096)

static size_t longest_word(char **argv)
{
    size_t n = 0, k;

    for (k = 0; argv[k]; k++)
        if (strlen(argv[k]) > n)
            n = strlen(argv[k]);
    return n;
}

/*
 * A job whose input comes on its stdin (a --pipe block, a pipe the
 * feeder fills), j as the caller filled it in: its number, its slot, its
 * command.  Returns 1 with *ret set, or a negative errno with j freed
 * and its slot given back (what the caller gave j is the caller's to
 * undo).
 */
static int stdin_job(struct run *r, struct job *j, struct job **ret)
{
    int e;

    j->seq = ++r->jobs_made;
    if (r->uses_slot)
        j->slot = take_slot(r);
    if ((e = make_job(r, 0, j, NULL)) < 0) {
        give_slot(r, j->slot);
        free(j);
        return e;
    }
    *ret = j;
    return 1;
}

/* --pipe: the next block of stdin, as a job with no values. */
static int take_block_job(struct run *r, struct job **ret)
{
    struct job *j;
    size_t len;
    char *block;
    int e;

    e = piper_next(&r->pipe, &block, &len);
    if (e == 0)
        r->input_ended = true;
    if (e <= 0)
        return e;
    if (!(j = calloc(1, sizeof *j))) {
        free(block);
        return -ENOMEM;
    }
    j->block = block;
    j->block_len = len;
    if ((e = stdin_job(r, j, ret)) < 0)
        free(block);
    return e;
}

/* --round-robin: a job the feeder asks for, its stdin a pipe it feeds. */
static int take_fed_job(struct run *r, struct job **ret)
{
    struct job *j;
    uint64_t sent;
    unsigned slot;
    int e, fd;

    e = feed_take(r->feed, &fd, &slot);
    if (e == 0)
        r->input_ended = true;
    if (e <= 0)
        return e;
    if (!(j = calloc(1, sizeof *j))) {
        close(fd);
        return -ENOMEM;
    }
    j->fed = true;
    j->feed_fd = fd;
    j->feed_slot = slot;
    if ((e = stdin_job(r, j, ret)) < 0) {
        feed_job_ended(r->feed, slot, &sent);
        close(fd);
    }
    return e;
}

static int take_job(struct run *r, struct job **ret)
{
    size_t want = records_wanted(r), k, bytes, i;
    struct job *j;
    int e = 1;

    if (r->feed)
        return take_fed_job(r, ret);
    if (r->piping)
        return take_block_job(r, ret);
    while (r->npend < want && (e = read_record(r)) == 1)
        ;
    if (e == 0)
        r->input_ended = true;
    if (e < 0)
        return e;  /* -EAGAIN too: a job waits for all its records */
    if (r->npend == 0)
        return 0;
    if (!(j = calloc(1, sizeof *j)))
        return -ENOMEM;
    /* The input's number: what --results, --resume and --shard count.
     * A job of several records counts jobs instead. */
    j->seq = want == 1 ? r->pend[0].seq : ++r->jobs_made;
    if (r->seq_map && j->seq <= r->nseq_map)
        j->seq = r->seq_map[j->seq - 1];
    if (r->uses_slot)
        j->slot = take_slot(r);
    k = want < r->npend ? want : r->npend;
    for (;;) {
        if ((e = make_job(r, k, j, &bytes)) < 0)
            break;
        /* -m, -X: as many as fit under the system's limits. */
        if (r->cfg->multi == MULTI_NONE || bytes <= r->arg_limit || k == 1)
            break;
        template_free(j->argv);
        free(j->input);
        free(j->tag);
        j->argv = NULL;
        j->input = NULL;
        j->tag = NULL;
        k = k >= 4 ? k / 4 * 3 : k - 1;
    }
    if (e == 0 && (bytes > r->arg_limit || longest_word(j->argv) >= MAX_ARG_STRLEN)) {
        /* As GNU parallel: an error, not a job that fails to start. */
        say(r, "zmp parallel: command line too long for exec (%zu bytes, a word of %zu; "
            "the limits are %zu and %d) at input %llu\n", bytes, longest_word(j->argv),
            r->arg_limit, MAX_ARG_STRLEN - 1, (unsigned long long)j->seq);
        template_free(j->argv);
        free(j->input);
        free(j->tag);
        r->too_long = true;
        e = -E2BIG;
    }
    if (e < 0) {
        give_slot(r, j->slot);
        free(j);
        return e;
    }
    for (i = 0; i < k; i++)
        values_free(r->pend[i].v, r->pend[i].n);
    memmove(r->pend, r->pend + k, (r->npend - k) * sizeof *r->pend);
    r->npend -= k;
    *ret = j;
    return 1;
}

static double mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --delay: seconds until the next job may start (the timer armed for
 * then), or 0. */
static double delay_left(struct run *r)
{
    double left = r->last_start + r->cfg->delay - mono_now();
    struct itimerspec it = { 0 };

    if (r->last_start == 0 || left <= 0)
        return 0;
    it.it_value.tv_sec = (time_t)left;
    it.it_value.tv_nsec = (long)((left - (double)(time_t)left) * 1e9) + 1;
    timerfd_settime(r->delay_fd, 0, &it, NULL);
    return left;
}

/* --memfree: its state, and what next_job waits on while it must look at
 * memory again: a slot freed, memfree's tick, or input (wait_fd). */
static int open_memfree(struct run *r, uint64_t size)
{
    struct epoll_event ev = { .events = EPOLLIN };
    int e;

    if ((e = memfree_new(size, stop_seq, (size_t)stop_steps, &r->memfree)) < 0)
        return e;
    if ((r->mem_ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return -errno;
    ev.data.fd = r->slot_fd;
    if (epoll_ctl(r->mem_ep, EPOLL_CTL_ADD, r->slot_fd, &ev) < 0)
        return -errno;
    ev.data.fd = memfree_fd(r->memfree);
    if (epoll_ctl(r->mem_ep, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0)
        return -errno;
    /* Input awaited: memory is still looked at meanwhile. */
    ev.data.fd = r->wait_fd;
    if (r->wait_fd >= 0 && epoll_ctl(r->mem_ep, EPOLL_CTL_ADD, r->wait_fd, &ev) < 0 &&
        errno != EPERM)  /* a regular file: never waited for */
        return -errno;
    return 0;
}

/* A line of memfree's, said. */
static void say_line(void *arg, const char *line)
{
    say(arg, "%s", line);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* --timeout N%: N% of the median runtime of the jobs that succeeded (the
 * last 1001), as GNU parallel; none before the first.  In ms, 0: none. */
static unsigned long timeout_pct_ms(struct run *r)
{
    double v[1001], median;

    if (r->nruntimes == 0)
        return 0;
    memcpy(v, r->runtimes, r->nruntimes * sizeof *v);
    qsort(v, r->nruntimes, sizeof *v, cmp_double);
    median = v[(r->nruntimes - 1) / 2];
    return (unsigned long)ceil(median * r->cfg->timeout_pct / 100 * 1000) + 1;
}

/* A job's output on its way to output.c, counted for --joblog.  On the
 * engine's thread (a worker's), never two at once for one job. */
static int count_output(void *arg, int fd, const void *data, size_t len)
{
    struct job *j = arg;

    j->received += len;
    return output_write(j->out, fd, data, len);
}

/* What goes in front of each line of a job's output: with --tag its
 * values, with --tagstring that string with them, then a TAB, as GNU
 * parallel does.  Then the job's place in output.c. */
static int start_output(struct run *r, struct job *j)
{
    char *prefix = NULL;
    int e;

    if ((r->tag || j->tag) && asprintf(&prefix, "%s\t", j->tag ? j->tag : j->input) < 0)
        return -ENOMEM;
    e = output_job_new(r->out, prefix, r->results_file || r->cfg->retries, &j->out);
    free(prefix);
    free(j->tag);
    j->tag = NULL;
    return e;
}

/* --memfree: ask again when a slot frees or memfree's tick comes. */
static int wait_memory(struct run *r, int *wait_fd)
{
    uint64_t drain;

    while (read(r->slot_fd, &drain, sizeof drain) > 0)
        ;
    *wait_fd = r->mem_ep;
    return ZMP_STREAM_WAIT;
}

/* The job source of the stream. */
static int next_job(void *arg, size_t i, zmp_options *o, int *wait_fd)
{
    struct run *r = arg;
    struct job **w, *j;
    uint64_t drain;
    bool mem_short;
    int e;

    (void)i;
    if (atomic_load(&stopping))
        return ZMP_STREAM_END;
    /* --memfree: memory is looked at whenever the engine asks, which it
     * does again a few times a second while jobs run (mem_ep): a job may
     * have to be ended, or may start now. */
    mem_short = r->memfree && memfree_check(r->memfree, say_line, r);
    if (r->memfree && r->gated && r->running >= r->parallel)
        return wait_memory(r, wait_fd);
    if (r->gated && r->running >= r->parallel) {
        /* The engine asks ahead of a free slot, to keep its workers busy;
         * {%}, --delay and --timeout N% need the job to start as it is
         * handed out, so their jobs are handed out as slots free. */
        while (read(r->slot_fd, &drain, sizeof drain) > 0)
            ;
        *wait_fd = r->slot_fd;
        return ZMP_STREAM_WAIT;
    }
    if (r->delay_fd >= 0 && delay_left(r) > 0) {
        while (read(r->delay_fd, &drain, sizeof drain) > 0)
            ;
        *wait_fd = r->delay_fd;
        return ZMP_STREAM_WAIT;
    }
    if (r->nwin == r->wincap) {
        size_t cap = r->wincap ? r->wincap * 2 : 64;

        if (!(w = realloc(r->win, cap * sizeof *w)))
            return -ENOMEM;
        r->win = w;
        r->wincap = cap;
    }
    if (mem_short && (r->retry_head || r->parked))
        return wait_memory(r, wait_fd);
    if ((j = r->retry_head)) {
        /* A job to try again goes first, at a place of its own.  The
         * last try's output goes only now: a stop before this prints and
         * records the job with it. */
        if (!(r->retry_head = j->retry_next))
            r->retry_tail = NULL;
        output_job_drop(j->out);
        j->received = 0;
        r->win[r->nwin++] = j;
        goto hand_out;
    }
    if ((j = r->parked)) {
        r->parked = NULL;
        e = 1;
    } else {
        e = take_job(r, &j);
    }
    if (e == -EAGAIN) {
        /* With --memfree, mem_ep holds wait_fd too. */
        *wait_fd = r->memfree ? r->mem_ep : r->wait_fd;
        return ZMP_STREAM_WAIT;
    }
    if (e == 0 && r->running > 0 && r->memfree)
        return wait_memory(r, wait_fd);  /* one may still have to end */
    if (e == 0 && r->running > 0 && r->cfg->retries) {
        /* No more input, but a running job may fail and be tried
         * again: ask again when one ends. */
        while (read(r->slot_fd, &drain, sizeof drain) > 0)
            ;
        *wait_fd = r->slot_fd;
        return ZMP_STREAM_WAIT;
    }
    if (e > 0 && mem_short) {
        /* Taken (so the end of input is known), started once memory
         * allows. */
        r->parked = j;
        return wait_memory(r, wait_fd);
    }
    if (e <= 0) {
        if (e < 0 && e != -ENOMEM && e != -E2BIG)
            r->read_error = e;
        return e;
    }
    if ((e = start_output(r, j)) < 0) {
        free_job(j);
        return e;
    }
    j->idx = r->base + r->nwin;
    r->win[r->nwin++] = j;
hand_out:
    *o = r->opts;
    o->program = j->argv[0];
    o->argv = (const char *const *)j->argv;
    o->input = j->block;
    o->input_len = j->block_len;
    if (j->fed) {
        o->flags |= ZMP_STDIN_FD;
        o->stdin_fd = j->feed_fd;
    }
    o->on_output = count_output;
    o->output_arg = j;
    if (r->cfg->timeout_pct > 0)
        o->timeout_ms = timeout_pct_ms(r);
    if (r->delay_fd >= 0)
        r->last_start = mono_now();
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

/* A job's status as a shell gives it: its exit code, 128 + a signal,
 * 127 for a program not found, 126 for one that could not start. */
static int job_status(const struct job *j)
{
    if (j->err)
        return j->err == -ENOENT ? 127 : 126;
    if (j->res.exit_code < 0)
        return 128 - j->res.exit_code;
    return j->res.exit_code;
}

/*
 * --halt, after each job, as GNU parallel: once N jobs (or N% of them)
 * failed, succeeded or finished, start no more (soon) or also stop the
 * running ones (now).  The exit status: with fail or done, the number of
 * failed jobs (their percentage with N%), or the job's own status when N
 * is 1; 0 with success.  True when the run is to stop.
 */
static bool check_halt(struct run *r, const struct job *j, bool failed)
{
    const struct parallel_config *c = r->cfg;
    size_t count;
    double limit;

    if (r->halted)
        return true;
    if (c->halt_when == HALT_NEVER)
        return false;
    count = c->halt_what == HALT_FAIL      ? r->failed
            : c->halt_what == HALT_SUCCESS ? r->finished - r->failed
                                           : r->finished;
    if ((c->halt_what == HALT_FAIL && !failed) || (c->halt_what == HALT_SUCCESS && failed))
        return false;
    /* With N%: of every job, all inputs having been read first. */
    limit = c->halt_pct ? (double)r->total_jobs * (double)c->halt_n / 100 : (double)c->halt_n;
    if ((double)count < limit)
        return false;
    r->halted = true;
    if (c->halt_what == HALT_SUCCESS)
        r->halt_status = 0;
    else if (c->halt_pct)
        r->halt_status = (int)ceil((double)r->failed * 100 / (double)(r->total_jobs ? r->total_jobs : 1));
    else if (c->halt_n == 1)
        r->halt_status = job_status(j);
    else
        r->halt_status = r->failed > FAILED_MAX ? FAILED_MAX : (int)r->failed;
    say(r, "zmp parallel: this job %s: %s\n",
        failed ? "failed" : c->halt_what == HALT_SUCCESS ? "succeeded" : "finished",
        j->input);
    if (c->halt_when == HALT_NOW && r->running > 0 && !atomic_load(&stopping))
        stop_jobs(SIGTERM);
    else if (r->running > 0)
        say(r, "zmp parallel: starting no more jobs, waiting for %zu to finish\n",
            r->running);
    return true;
}

/* A job's outcome is final: counted, checked against --halt, printed (in
 * its turn, with -k) and recorded. */
static void finish_job(struct run *r, struct job *j, size_t i, bool failed, bool cancelled)
{
    j->cancelled = cancelled;
    j->done = true;
    j->interrupted = failed && !j->mem_ended &&
                     (atomic_load(&stopping) ||
                      killed_from_outside(&j->res, j->info.pid ? &j->info : NULL));
    r->finished += !cancelled;
    r->failed += failed;
    if (!failed && !cancelled && j->info.pid && r->cfg->timeout_pct > 0) {
        r->runtimes[r->runtime_at] = j->info.seconds;
        r->runtime_at = (r->runtime_at + 1) % 1001;
        r->nruntimes += r->nruntimes < 1001;
    }
    if (!cancelled)
        check_halt(r, j, failed);
    if (r->progress)
        say(r, "\r\033[K");
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

    if (j->fed && j->idx == i) {
        /* Its pipe is closed by the feeder; the bytes it got, for the
         * joblog's Send. */
        feed_job_ended(r->feed, j->feed_slot, &j->received_in);
        j->block_len = (size_t)j->received_in;
    }
    /* A try again of a job holds a place of its own in the window; the
     * job lives on at its first place. */
    if (j->idx != i) {
        *slot(r, i) = NULL;
        i = j->idx;
    }
    r->running--;
    slot_freed(r);
    /* This try's outcome replaces the one before (kept while the job
     * waited to run again, in case the run stopped meanwhile). */
    zmp_result_free(&j->res);
    j->err = err;
    if (res)
        j->res = *res;
    if (info)
        j->info = *info;
    /* Ended by --memfree: failed, whatever status it left. */
    j->mem_ended = r->memfree && info && memfree_ended(r->memfree, info->pid);
    failed = failed || j->mem_ended;
    /* --retries: a failed job runs again, its output dropped (as GNU
     * parallel prints only the last try), unless the run is stopping.
     * It keeps its {%} slot, which its argv names. */
    if (failed && j->tries + 1 < r->cfg->retries && !atomic_load(&stopping) && !r->halted) {
        j->tries++;
        j->retry_next = NULL;
        if (r->retry_tail)
            r->retry_tail->retry_next = j;
        else
            r->retry_head = j;
        r->retry_tail = j;
        slide(r);
        return 0;
    }
    give_slot(r, j->slot);
    finish_job(r, j, i, failed, cancelled);
    return r->halted || atomic_load(&stopping);
}

/* After a stop or a halt, the jobs still waiting to run again end with
 * their last try: printed and recorded, failed. */
static void finish_retries(struct run *r)
{
    struct job *j;

    while ((j = r->retry_head)) {
        r->retry_head = j->retry_next;
        give_slot(r, j->slot);
        finish_job(r, j, j->idx, true, false);
    }
    r->retry_tail = NULL;
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
    for (k = 0; k < r->cfg->ntmpl; k++) {
        if (k)
            putc(',', f);
        json_string(f, r->cfg->tmpl[k], strlen(r->cfg->tmpl[k]));
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

/* Room in done_bits for seq: 0, or -1 after a message. */
static int grow_done_bits(struct run *r, uint64_t seq)
{
    unsigned char *bits;
    uint64_t n;

    if (seq <= r->done_nbits)
        return 0;
    n = r->done_nbits ? r->done_nbits : 4096;
    while (n < seq)
        n *= 2;
    if (!(bits = realloc(r->done_bits, n / 8))) {
        fprintf(stderr, "zmp parallel: --resume: out of memory\n");
        return -1;
    }
    memset(bits + r->done_nbits / 8, 0, (n - r->done_nbits) / 8);
    r->done_bits = bits;
    r->done_nbits = n;
    return 0;
}

static void mark_done(struct run *r, uint64_t seq, bool done)
{
    if (done)
        r->done_bits[(seq - 1) / 8] |= (unsigned char)(1u << (seq - 1) % 8);
    else
        r->done_bits[(seq - 1) / 8] &= (unsigned char)~(1u << (seq - 1) % 8);
}

static int resume_record(void *arg, const struct record *rec)
{
    struct resume *rs = arg;
    struct run *r = rs->r;

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
    if (grow_done_bits(r, rec->seq) < 0)
        return -1;
    /* The last record of a job wins; a job cut short by a stop (a
     * preempted task's SIGTERM) is not done. */
    mark_done(r, rec->seq, rec->ok || (!rs->failed_too && !rec->interrupted));
    return 0;
}

/* --resume with --joblog, as GNU parallel: a seq with a line is done;
 * with --resume-failed, only when its last line says it succeeded. */
struct joblog_resume {
    struct run *r;
    bool failed_too;
};

static int joblog_resume_line(void *arg, const struct joblog_line *l)
{
    struct joblog_resume *jr = arg;

    if (grow_done_bits(jr->r, l->seq) < 0)
        return -ENOMEM;
    mark_done(jr->r, l->seq, !jr->failed_too || (l->exitval == 0 && l->signal == 0));
    return 0;
}

/* --retry-failed: the joblog's failed jobs, by seq, last line winning. */
struct retry_list {
    char **cmds;            /* index seq - 1; NULL: none, or succeeded */
    size_t n;
};

static int retry_line(void *arg, const struct joblog_line *l)
{
    struct retry_list *rl = arg;
    char **v;

    if (l->seq > rl->n) {
        size_t n = rl->n ? rl->n : 64;

        while (n < l->seq)
            n *= 2;
        if (!(v = realloc(rl->cmds, n * sizeof *v)))
            return -ENOMEM;
        memset(v + rl->n, 0, (n - rl->n) * sizeof *v);
        rl->cmds = v;
        rl->n = n;
    }
    free(rl->cmds[l->seq - 1]);
    rl->cmds[l->seq - 1] = NULL;
    if ((l->exitval != 0 || l->signal != 0) && !(rl->cmds[l->seq - 1] = strdup(l->command)))
        return -ENOMEM;
    return 0;
}

/*
 * --retry-failed: the failed jobs' commands become the inputs of a run
 * without COMMAND (each one a command line for /bin/sh, as GNU parallel
 * runs them), keeping their seqs.  0, or -1 after a message.
 */
static int load_retries(struct run *r, struct parallel_config *cfg, char ***ret_cmds,
                        size_t *ret_n)
{
    struct retry_list rl = { 0 };
    size_t bad = 0, i, k = 0;
    int e;

    e = joblog_read(cfg->joblog, retry_line, &rl, &bad);
    if (e == -EBADMSG)
        fprintf(stderr, "zmp parallel: --retry-failed: %s: line %zu is not a joblog line\n",
                cfg->joblog, bad);
    else if (e < 0)
        fprintf(stderr, "zmp parallel: --retry-failed: cannot read %s: %s\n", cfg->joblog,
                strerror(-e));
    if (e == 0 && !(r->seq_map = calloc(rl.n ? rl.n : 1, sizeof *r->seq_map)))
        e = -ENOMEM;
    for (i = 0; i < rl.n; i++) {
        if (e == 0 && rl.cmds[i]) {
            rl.cmds[k] = rl.cmds[i];
            r->seq_map[k++] = i + 1;
        } else if (e != 0) {
            free(rl.cmds[i]);
        }
    }
    if (e < 0) {
        free(rl.cmds);
        if (e == -ENOMEM)
            fprintf(stderr, "zmp parallel: out of memory\n");
        return -1;
    }
    r->nseq_map = k;
    *ret_cmds = rl.cmds;
    *ret_n = k;
    cfg->ntmpl = 0;
    cfg->nsrcs = 0;
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

/* The bytes a job's argv may take: the system's limit, less the
 * environment and a margin; one word at most (MAX_ARG_STRLEN) with
 * --shell, whose command line is one word. */
static size_t arg_limit(bool shell)
{
    extern char **environ;
    long max = sysconf(_SC_ARG_MAX);
    size_t env = 0, limit;
    char **e;

    for (e = environ; *e; e++)
        env += strlen(*e) + 1 + sizeof *e;
    if (max <= 0)
        max = 131072;
    limit = (size_t)max > env + 8192 ? (size_t)max - env - 8192 : 4096;
    if (shell && limit > 131072 - 1)
        limit = 131072 - 1 + 3 * sizeof(char *) + sizeof "/bin/sh" + sizeof "-c";
    return limit;
}

/* The jobs this run will make, when the inputs were read whole (--halt
 * N%, --eta, --bar): this shard's, less those --resume finds done. */
static uint64_t count_jobs(const struct run *r)
{
    uint64_t left = sources_left(r->src), n = 0, seq, per;

    for (seq = 1; seq <= left; seq++) {
        if ((seq - 1) % r->shard_n != r->shard_k)
            continue;
        if (seq <= r->done_nbits && r->done_bits[(seq - 1) / 8] & 1u << (seq - 1) % 8)
            continue;
        n++;
    }
    /* -m, -X: spread over the slots (more when the limits split them). */
    per = r->cfg->multi != MULTI_NONE ? (n + r->parallel - 1) / r->parallel
          : r->cfg->max_args          ? r->cfg->max_args
                                      : 1;
    return per ? (n + per - 1) / per : 0;
}

/* --dry-run: each command as a shell would read it, on stdout. */
static int dry_run(struct run *r)
{
    struct pollfd p = { .fd = r->piping ? r->pipe.fd : sources_wait_fd(r->src),
                        .events = POLLIN };
    struct job *j;
    char *q;
    int e;

    while ((e = take_job(r, &j)) != 0) {
        if (e == -EAGAIN) {
            poll(&p, 1, -1);
            continue;
        }
        if (e < 0)
            return e;
        r->started++;
        if (!(q = command_line(r, j->argv))) {
            free_job(j);
            return -ENOMEM;
        }
        write_stdout(r, q, strlen(q));
        free(q);
        write_stdout(r, "\n", 1);
        give_slot(r, j->slot);
        free_job(j);
    }
    return 0;
}

/*
 * --colsep's regex: POSIX extended, with Perl's \t \n \s \S \d \D (and, in
 * a bracket, \X as X and \s \d as classes).  0, or a regcomp error
 * (REG_BADPAT for \S or \D in a bracket, which POSIX cannot say).
 */
static int compile_colsep(const char *re, regex_t *rx)
{
    char *buf = malloc(strlen(re) * 12 + 1), *o = buf;
    bool in_bracket = false;
    const char *start = NULL;
    int e;

    if (!buf)
        return REG_ESPACE;
    for (; *re; re++) {
        if (!in_bracket && *re == '[') {
            in_bracket = true;
            *o++ = *re;
            /* A ']' first (after a '^') is a member, not the end. */
            if (re[1] == '^')
                *o++ = *++re;
            start = re + 1;
            continue;
        }
        if (in_bracket && *re == ']' && re != start) {
            in_bracket = false;
            *o++ = *re;
            continue;
        }
        if (*re != '\\' || !re[1]) {
            *o++ = *re;
            continue;
        }
        re++;
        switch (*re) {
        case 't': *o++ = '\t'; break;
        case 'n': *o++ = '\n'; break;
        case 's': o = stpcpy(o, in_bracket ? "[:space:]" : "[[:space:]]"); break;
        case 'd': o = stpcpy(o, in_bracket ? "0-9" : "[0-9]"); break;
        case 'S':
        case 'D':
            if (in_bracket) {
                free(buf);
                return REG_BADPAT;
            }
            o = stpcpy(o, *re == 'S' ? "[^[:space:]]" : "[^0-9]");
            break;
        default:
            if (!in_bracket)
                *o++ = '\\';
            *o++ = *re;
        }
    }
    *o = '\0';
    e = regcomp(rx, buf, REG_EXTENDED);
    free(buf);
    return e;
}

/* --joblog FILE: anew, or appended to with --resume (learning what ran)
 * and --retry-failed.  0, or -1 after a message. */
static int open_joblog(struct run *r, const struct parallel_config *cfg)
{
    struct joblog_resume jr = { .r = r, .failed_too = cfg->resume_failed };
    size_t bad = 0;

    r->joblog = joblog_open(cfg->joblog, cfg->resume || cfg->retry_failed,
                            cfg->resume ? joblog_resume_line : NULL, &jr, &bad);
    if (r->joblog)
        return 0;
    if (errno == EBADMSG)
        fprintf(stderr, "zmp parallel: --resume: %s: line %zu is not a joblog line\n",
                cfg->joblog, bad);
    else if (errno == ESPIPE && !strcmp(cfg->joblog, "-"))
        fprintf(stderr, "zmp parallel: --joblog -: standard output cannot be read back "
                "(--resume, --resume-failed, --retry-failed need a file)\n");
    else
        fprintf(stderr, "zmp parallel: cannot write %s: %s\n", cfg->joblog,
                strerror(errno));
    return -1;
}

int cmd_parallel(int argc, char **argv, bool stdin_closed)
{
    struct parallel_config cfg;
    struct sources_config scfg = { 0 };
    struct run r = { .wait_fd = -1, .slot_fd = -1, .delay_fd = -1, .mem_ep = -1 };
    struct output_config oc = { .fd = { 1, 2 } };
    struct source_spec retry_src = { .kind = SRC_ARGS };
    char **retry_cmds = NULL;
    size_t retry_n = 0;
    regex_t colsep;
    bool have_colsep = false;
    char err[512];
    int status, e, sig;

    status = parallel_parse(argc, argv, &cfg);
    if (status == PARALLEL_VERSION) {
        parallel_config_free(&cfg);
        if (printf("zmp parallel %s\n", zmp_version()) < 0 || fflush(stdout) != 0) {
            fprintf(stderr, "zmp parallel: cannot write standard output: %s\n",
                    strerror(errno));
            return EXIT_USAGE;
        }
        return 0;
    }
    if (status)
        return status == PARALLEL_HELP ? 0 : status;
    status = EXIT_ERROR;
    r.cfg = &cfg;
    r.keep_order = cfg.keep_order;
    r.shard_k = cfg.shard_k;
    r.shard_n = cfg.shard_n;
    r.progress = (cfg.progress || cfg.eta || cfg.bar) && isatty(2);
    r.parallel = parallel_jobs(&cfg, (unsigned)zmp_cpu_count());
    if (r.parallel == 0) {
        fprintf(stderr, "zmp parallel: -j leaves no job slot with %d CPUs: cannot run any "
                "job\n", zmp_cpu_count());
        goto out;
    }
    r.opts.timeout_ms = (unsigned long)ceil(cfg.timeout * 1000);
    r.opts.output_cap = (size_t)cfg.output_cap;
    r.opts.cgroup = cfg.cgroup;
    /* Jobs' stdout and stderr are kept apart: no merged copy. */
    r.opts.flags = ZMP_NEW_PGROUP | ZMP_DIE_WITH_PARENT | ZMP_NO_MERGED;
    if (cfg.ntermseq) {
        r.opts.term_seq = cfg.termseq;
        r.opts.term_seq_len = cfg.ntermseq;
        /* A stop sends it too, as GNU parallel's does. */
        stop_seq = cfg.termseq;
        stop_steps = (int)cfg.ntermseq;
        stop_seq_given = true;
    }
    if (cfg.retry_failed && load_retries(&r, &cfg, &retry_cmds, &retry_n) < 0)
        goto out;
    if (cfg.resume && (cfg.max_args > 1 || cfg.multi != MULTI_NONE)) {
        fprintf(stderr, "zmp parallel: --resume takes one input per job (not with -n, -N, "
                "-m or -X)\n");
        goto out;
    }
    if (template_parse(&r.tmpl, cfg.tmpl, cfg.ntmpl, cfg.replace, cfg.shell,
                       cfg.multi == MULTI_X, err, sizeof err) < 0) {
        fprintf(stderr, "zmp parallel: %s\n", err);
        goto out;
    }
    r.arg_limit = arg_limit(r.tmpl.shell);
    if (cfg.tagstring) {
        char *const words[] = { (char *)cfg.tagstring };

        if (template_parse(&r.tagtmpl, words, 1, cfg.replace, false, false, err,
                           sizeof err) < 0) {
            fprintf(stderr, "zmp parallel: --tagstring: %s\n", err);
            goto out;
        }
        r.tagtmpl.any = true;  /* a tag is never appended the values */
        r.have_tagtmpl = true;
    }
    r.tag = cfg.tag;
    r.uses_slot = r.tmpl.uses_slot || (r.have_tagtmpl && r.tagtmpl.uses_slot);
    if (cfg.colsep) {
        if ((e = compile_colsep(cfg.colsep, &colsep)) != 0) {
            regerror(e, &colsep, err, sizeof err);
            fprintf(stderr, "zmp parallel: bad --colsep %s: %s\n", cfg.colsep, err);
            goto out;
        }
        have_colsep = true;
        scfg.colsep = &colsep;
    }
    if (cfg.cgroup && (e = check_cgroup(cfg.cgroup)) < 0) {
        fprintf(stderr, "zmp parallel: --cgroup %s: cannot make a cgroup there: %s\n",
                cfg.cgroup,
                e == -EOPNOTSUPP ? "no cgroup.kill (Linux 5.14 or later is needed)"
                : e == -ENOTDIR  ? "not a cgroup v2 directory"
                                 : strerror(-e));
        goto out;
    }
    scfg.delim = cfg.delim_len ? cfg.delim : NULL;
    scfg.delim_len = cfg.delim_len;
    scfg.eof = cfg.eof;
    scfg.skip_empty = cfg.skip_empty;
    /* As GNU parallel, --colsep trims its columns unless --trim says. */
    scfg.trim_left = cfg.trim_set ? cfg.trim_left : cfg.colsep != NULL;
    scfg.trim_right = cfg.trim_set ? cfg.trim_right : cfg.colsep != NULL;
    scfg.link = cfg.link;
    scfg.read_all = cfg.multi != MULTI_NONE || (cfg.halt_when != HALT_NEVER && cfg.halt_pct) ||
                    cfg.eta || cfg.bar;
    /* main() put /dev/null on a closed fd 0, so that nothing else takes
     * it: reading it would quietly run no job. */
    scfg.stdin_closed = stdin_closed;
    retry_src.args = retry_cmds;
    retry_src.nargs = retry_n;
    if (cfg.pipe) {
        if (stdin_closed) {
            fprintf(stderr, "zmp parallel: cannot read standard input: %s\n",
                    strerror(EBADF));
            goto out;
        }
        if (piper_init(&r.pipe, 0, cfg.block ? (size_t)cfg.block : 1 << 20, cfg.recend,
                       cfg.recstart) < 0) {
            fprintf(stderr, "zmp parallel: --recend and --recstart: too long\n");
            goto out;
        }
        r.piping = true;
    } else if (sources_open(&r.src, cfg.retry_failed ? &retry_src : cfg.srcs,
                     cfg.retry_failed ? 1 : cfg.nsrcs, &scfg, err, sizeof err) < 0) {
        fprintf(stderr, "zmp parallel: %s\n", err);
        goto out;
    }

    if (cfg.dry_run) {
        e = dry_run(&r);
        if (e < 0 && e != -E2BIG)  /* (too long: said already) */
            say(&r, "zmp parallel: cannot read %s: %s\n",
                r.piping ? "standard input" : sources_name(r.src), zmp_strerror(e));
        status = e < 0 || r.out_error || r.err_error ? EXIT_ERROR : 0;
        goto out;
    }
    oc.mode = cfg.output_mode;
    oc.keep_order = cfg.keep_order;
    oc.job_mem = (size_t)cfg.buffer_size;
    oc.total_mem = (size_t)cfg.buffer_total;
    oc.tmpdir = cfg.tmpdir;
    if (output_new(&oc, &r.out) < 0) {
        fprintf(stderr, "zmp parallel: out of memory\n");
        goto out;
    }
    r.results_name = cfg.results;
    if (cfg.results && open_results(&r, &cfg) < 0)
        goto out;
    if (cfg.joblog && open_joblog(&r, &cfg) < 0)
        goto out;
    if (!r.piping)
        r.total_jobs = count_jobs(&r);
    if (cfg.delay > 0 && (r.delay_fd = timerfd_create(CLOCK_MONOTONIC,
                                                      TFD_CLOEXEC | TFD_NONBLOCK)) < 0) {
        fprintf(stderr, "zmp parallel: %s\n", strerror(errno));
        goto out;
    }
    e = r.piping ? r.pipe.fd : sources_wait_fd(r.src);
    if (cfg.round_robin && r.piping)
        e = -1;  /* the feeder's ready_fd joins below */
    if (e >= 0 || cfg.round_robin)
        r.wait_fd = make_wait_fd(e);
    if (r.wait_fd < 0)
        r.wait_fd = e;
    if (cfg.round_robin && r.piping) {
        struct epoll_event ev = { .events = EPOLLIN };

        if (r.wait_fd < 0 ||
            (e = feed_start(&r.feed, &r.pipe, r.parallel, wake_fds[0])) < 0 ||
            (ev.data.fd = feed_ready_fd(r.feed),
             epoll_ctl(r.wait_fd, EPOLL_CTL_ADD, feed_ready_fd(r.feed), &ev) < 0)) {
            fprintf(stderr, "zmp parallel: --round-robin: %s\n",
                    strerror(r.wait_fd < 0 ? errno : e < 0 ? -e : errno));
            goto out;
        }
    }
    r.gated = (r.uses_slot || cfg.delay > 0 || cfg.timeout_pct > 0 || cfg.memfree) &&
              r.parallel != UINT_MAX;
    if ((r.gated || cfg.retries || cfg.memfree) &&
        (r.slot_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        fprintf(stderr, "zmp parallel: %s\n", strerror(errno));
        goto out;
    }
    if (cfg.memfree && (e = open_memfree(&r, cfg.memfree)) < 0) {
        fprintf(stderr, "zmp parallel: --memfree: %s\n", strerror(-e));
        goto out;
    }
    install_handlers();
    start_stdout_watcher();
    r.run_start = mono_now();
    /* --memfree looks at memory whenever the engine asks for a job, which
     * it does only with a slot free (or ahead of one, with worker
     * threads): one slot more than are handed out (next_job hands out
     * only r.parallel) keeps it asking. */
    e = zmp_run_stream(r.memfree && r.parallel < UINT_MAX ? r.parallel + 1 : r.parallel,
                       next_job, on_done, &r);
    finish_retries(&r);
    check_output(&r);
    if (r.progress)
        say(&r, "\n");
    if (r.read_error) {
        say(&r, "zmp parallel: cannot read %s: %s\n",
            r.piping ? "standard input" : sources_name(r.src), zmp_strerror(r.read_error));
        goto out;
    }
    if (e < 0 && !r.too_long) {
        say(&r, "zmp parallel: %s\n", zmp_strerror(e));
        goto out;
    }
    if (r.results_file && r.input_ended && !r.halted && !atomic_load(&stopping) &&
        !r.results_error)
        write_summary(&r);
    if (r.out_error || r.results_error || r.err_error || r.joblog_error || r.too_long)
        goto out;
    /* With --halt N%, GNU parallel's status is the percentage of the
     * jobs that failed, halted or not. */
    status = r.halted ? r.halt_status
             : cfg.halt_when != HALT_NEVER && cfg.halt_pct
                 ? (int)ceil((double)r.failed * 100 / (double)(r.started ? r.started : 1))
             : r.failed > FAILED_MAX ? FAILED_MAX
                                     : (int)r.failed;
out:
    if (r.results_file && fclose(r.results_file) != 0 && !r.results_error) {
        say(&r, "zmp parallel: cannot write %s: %s\n", cfg.results, strerror(errno));
        status = EXIT_ERROR;
    }
    /* Left only when the engine failed: free what is left. */
    for (; r.nwin > 0; r.nwin--) {
        struct job *j = r.win[r.nwin - 1];

        /* Only at its own place: a try again's place names it too. */
        if (j && j->idx == r.base + r.nwin - 1)
            free_job(j);
    }
    if (r.joblog && fclose(r.joblog) != 0 && !r.joblog_error) {
        say(&r, "zmp parallel: cannot write %s: %s\n", cfg.joblog, strerror(errno));
        status = EXIT_ERROR;
    }
    if (r.delay_fd >= 0)
        close(r.delay_fd);
    values_free(retry_cmds, retry_n);
    free(r.seq_map);
    for (; r.npend > 0; r.npend--)
        values_free(r.pend[r.npend - 1].v, r.pend[r.npend - 1].n);
    free(r.pend);
    free(r.free_slots);
    free(r.win);
    free(r.done_bits);
    sources_close(r.src);
    piper_free(&r.pipe);
    template_release(&r.tmpl);
    if (r.have_tagtmpl)
        template_release(&r.tagtmpl);
    if (have_colsep)
        regfree(&colsep);
    if (r.slot_fd >= 0)
        close(r.slot_fd);
    if (r.mem_ep >= 0)
        close(r.mem_ep);
    if (r.parked)
        free_job(r.parked);
    memfree_free(r.memfree);
    parallel_config_free(&cfg);
    /* The library first: a job it still holds (the engine failed) may be
     * read on the way out, and its output is handed to r.out. */
    zmp_deinit();
    feed_free(r.feed);
    output_free(r.out);
    setitimer(ITIMER_REAL, &(struct itimerval){ { 0, 0 }, { 0, 0 } }, NULL);
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
