/* SPDX-License-Identifier: MIT */
/*
 * zmp_run_stream: jobs pulled as slots free up, from a source that may
 * have to wait on an fd, while running jobs are served and time out.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define MAX_JOBS 64

/* A source reading lines from a pipe without blocking. */
struct src {
    int fd;
    char buf[4096];
    size_t len;
    bool eof;
    int waits;                     /* ZMP_STREAM_WAIT answers */
    char lines[MAX_JOBS][32];      /* each job's line (its argv points here) */
    const char *argv[MAX_JOBS][3];
    size_t taken, reported;
    char out[MAX_JOBS][32];        /* what each job printed */
    int err[MAX_JOBS];
    unsigned flags[MAX_JOBS];
    int ack;                       /* written to as job 0 is reported */
    unsigned long timeout0;        /* job 0's timeout, or 0 */
};

static int pipe_next(void *arg, size_t i, zmp_options *job, int *wait_fd)
{
    struct src *s = arg;
    char *nl;
    ssize_t n;

    for (;;) {
        nl = memchr(s->buf, '\n', s->len);
        if (nl || (s->eof && s->len)) {
            size_t l = nl ? (size_t)(nl - s->buf) : s->len;

            CU_ASSERT_FATAL(i < MAX_JOBS && l < sizeof s->lines[i]);
            memcpy(s->lines[i], s->buf, l);
            s->lines[i][l] = '\0';
            s->len -= nl ? l + 1 : l;
            memmove(s->buf, s->buf + (nl ? l + 1 : l), s->len);
            s->argv[i][0] = i == 0 && s->timeout0 ? "sleep" : "echo";
            s->argv[i][1] = i == 0 && s->timeout0 ? "10000" : s->lines[i];
            s->argv[i][2] = NULL;
            job->argv = s->argv[i];
            job->timeout_ms = i == 0 ? s->timeout0 : 0;
            s->taken++;
            return ZMP_STREAM_JOB;
        }
        if (s->eof)
            return ZMP_STREAM_END;
        n = read(s->fd, s->buf + s->len, sizeof s->buf - s->len);
        if (n < 0 && errno == EAGAIN) {
            s->waits++;
            *wait_fd = s->fd;
            return ZMP_STREAM_WAIT;
        }
        if (n < 0)
            return -errno;
        s->eof = n == 0;
        s->len += (size_t)n;
    }
}

static int record(void *arg, size_t i, int err, zmp_result *res,
                  const zmp_info *info)
{
    struct src *s = arg;

    s->reported++;
    s->err[i] = err;
    if (res)
        snprintf(s->out[i], sizeof s->out[i], "%s", res->out ? res->out : "");
    if (info)
        s->flags[i] = info->flags;
    zmp_result_free(res);
    if (i == 0 && s->ack >= 0)
        CU_ASSERT_EQUAL(write(s->ack, "k", 1), 1);
    return 0;
}

/*
 * A producer process: writes `first`, waits (at most 10 s) for a byte on
 * ack, then writes `then` (or "late" if none came) and ends.
 */
static pid_t producer(int wfd, int ackfd, const char *first, const char *then)
{
    pid_t pid = fork();
    struct pollfd pfd = { .fd = ackfd, .events = POLLIN };

    if (pid != 0)
        return pid;
    if (write(wfd, first, strlen(first)) < 0)
        _exit(1);
    if (poll(&pfd, 1, 10000) != 1)
        then = "late\n";
    if (write(wfd, then, strlen(then)) < 0)
        _exit(1);
    _exit(0);
}

/* Run a stream fed by a producer; job 0 is reported before `then` is
 * written, or the producer says "late". */
static void run_fed(struct src *s, const char *first, const char *then)
{
    int data[2], ack[2], st;
    pid_t pid;

    CU_ASSERT_EQUAL_FATAL(pipe2(data, O_CLOEXEC), 0);
    CU_ASSERT_EQUAL_FATAL(pipe2(ack, O_CLOEXEC), 0);
    pid = producer(data[1], ack[0], first, then);
    CU_ASSERT_FATAL(pid > 0);
    close(data[1]);
    close(ack[0]);
    CU_ASSERT_EQUAL(fcntl(data[0], F_SETFL, O_NONBLOCK), 0);
    s->fd = data[0];
    s->ack = ack[1];
    CU_ASSERT_EQUAL(zmp_run_stream(2, pipe_next, record, s), 0);
    close(data[0]);
    close(ack[1]);
    CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
    CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Jobs start as their lines arrive: job 0 ends before line 2 is written. */
static void test_streams(void)
{
    struct src *s = calloc(1, sizeof *s);
    size_t i;

    use_helper();
    run_fed(s, "a\n", "b\nc\nd");  /* the last line has no newline */
    CU_ASSERT_EQUAL(s->taken, 4);
    CU_ASSERT_EQUAL(s->reported, 4);
    CU_ASSERT_TRUE(s->waits >= 1);
    for (i = 0; i < 4; i++) {
        char want[8];

        snprintf(want, sizeof want, "%c\n", (int)('a' + i));
        CU_ASSERT_EQUAL(s->err[i], 0);
        CU_ASSERT_STRING_EQUAL(s->out[i], want);
    }
    free(s);
}

/* A timeout fires while the source waits: job 0 times out and is reported
 * before the next line can come. */
static void test_timeout_while_waiting(void)
{
    struct src *s = calloc(1, sizeof *s);

    use_helper();
    s->timeout0 = 150;
    run_fed(s, "x\n", "y\n");
    CU_ASSERT_EQUAL(s->taken, 2);
    CU_ASSERT_EQUAL(s->err[0], 0);
    CU_ASSERT_TRUE(s->flags[0] & ZMP_TIMED_OUT);
    CU_ASSERT_STRING_EQUAL(s->out[1], "y\n");  /* not "late" */
    free(s);
}

/* An endless source, and errors of the source and of jobs. */
struct endless {
    const char *argv[3];
    size_t taken, reported, fail_at, stop_after;
    int answer;           /* what to return at fail_at */
    int *errs;            /* per index, for the first 64 */
    bool info_null_on_error;
};

static int endless_next(void *arg, size_t i, zmp_options *job, int *wait_fd)
{
    struct endless *e = arg;

    if (i == e->fail_at) {
        *wait_fd = -1;
        return e->answer;
    }
    job->argv = e->argv;
    job->program = i == 1 && e->errs ? "/nonexistent/prog" : NULL;
    e->taken++;
    return ZMP_STREAM_JOB;
}

static int endless_done(void *arg, size_t i, int err, zmp_result *res,
                        const zmp_info *info)
{
    struct endless *e = arg;

    e->reported++;
    if (e->errs && i < 64) {
        e->errs[i] = err;
        if (err && info)
            e->info_null_on_error = false;
    }
    zmp_result_free(res);
    return e->stop_after && e->reported >= e->stop_after;
}

static void test_source_ends_and_errors(void)
{
    struct endless e = { .argv = { "echo", "x", NULL }, .fail_at = (size_t)-1 };
    int errs[64];

    use_helper();
    /* Stopped by its done callback: every job taken is reported once. */
    e.stop_after = 20;
    CU_ASSERT_EQUAL(zmp_run_stream(3, endless_next, endless_done, &e), 0);
    /* At most the 3 running and the jobs queued ahead for the workers
     * (4 each, one worker per CPU up to 3) come after the stop, and
     * those never started are reported cancelled. */
    CU_ASSERT_TRUE(e.reported >= 20 &&
                   e.reported <= 20 + 3 + 4 * (size_t)(zmp_cpu_count() < 3 ? zmp_cpu_count() : 3));
    CU_ASSERT_EQUAL(e.taken, e.reported);

    /* The source fails at job 5: jobs 0-4 still finish, the error returns;
     * job 1 could not start and says why, without an info. */
    e = (struct endless){ .argv = { "echo", "x", NULL }, .fail_at = 5,
                          .answer = -EIO, .errs = errs,
                          .info_null_on_error = true };
    CU_ASSERT_EQUAL(zmp_run_stream(2, endless_next, endless_done, &e), -EIO);
    CU_ASSERT_EQUAL(e.reported, 5);
    CU_ASSERT_EQUAL(errs[0], 0);
    CU_ASSERT_EQUAL(errs[1], -ENOENT);
    CU_ASSERT_TRUE(e.info_null_on_error);

    /* Bad answers from the source. */
    e = (struct endless){ .argv = { "echo", "x", NULL }, .fail_at = 2, .answer = 7 };
    CU_ASSERT_EQUAL(zmp_run_stream(2, endless_next, endless_done, &e), -EINVAL);
    CU_ASSERT_EQUAL(e.reported, 2);
    e = (struct endless){ .argv = { "echo", "x", NULL }, .fail_at = 0,
                          .answer = ZMP_STREAM_WAIT };
    CU_ASSERT_EQUAL(zmp_run_stream(2, endless_next, endless_done, &e), -EINVAL);
    CU_ASSERT_EQUAL(zmp_run_stream(2, NULL, endless_done, &e), -EINVAL);

    /* No done callback: results are freed by the stream (no leak). */
    e = (struct endless){ .argv = { "echo", "x", NULL }, .fail_at = 10 ,
                          .answer = ZMP_STREAM_END };
    CU_ASSERT_EQUAL(zmp_run_stream(4, endless_next, NULL, &e), 0);
    CU_ASSERT_EQUAL(e.taken, 10);
    CU_ASSERT_TRUE(no_children());
}

/* A stream stopped by its done callback while it starts jobs. */
struct stopper {
    size_t reported, stop_after;
    double stopped_at;     /* CLOCK_REALTIME seconds, as zmp_info.started */
    int started_after;     /* jobs that started after the stop */
};

static double realtime_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int stopper_next(void *arg, size_t i, zmp_options *job, int *wait_fd)
{
    static const char *const argv[] = { "echo", "x", NULL };

    (void)arg;
    (void)i;
    (void)wait_fd;
    job->argv = argv;
    return ZMP_STREAM_JOB;
}

static int stopper_done(void *arg, size_t i, int err, zmp_result *res, const zmp_info *info)
{
    struct stopper *t = arg;

    (void)i;
    t->reported++;
    if (t->stopped_at > 0 && err == 0 && info && info->started > t->stopped_at)
        t->started_after++;
    zmp_result_free(res);
    if (t->stopped_at == 0 && t->reported >= t->stop_after) {
        t->stopped_at = realtime_now();
        return 1;
    }
    return 0;
}

/* On one CPU the stream's own thread starts the jobs, and collects what
 * ended every few starts: a stop asked for there starts nothing more.
 * (In a child process: the CPU count is the process's.) */
static void test_stop_while_starting(void)
{
    cpu_set_t set;
    pid_t pid;
    int st;

    use_helper();
    pid = fork();
    CU_ASSERT_TRUE_FATAL(pid >= 0);
    if (pid == 0) {
        int round, bad = 0;

        alarm(60);
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        if (sched_setaffinity(0, sizeof set, &set) < 0 || zmp_cpu_count() != 1)
            _exit(2);
        for (round = 0; round < 20 && !bad; round++) {
            struct stopper t = { .stop_after = 1 + (size_t)round % 4 };

            if (zmp_run_stream(64, stopper_next, stopper_done, &t) != 0)
                bad = 3;
            else if (t.started_after)
                bad = 4;
        }
        zmp_deinit();
        _exit(bad);
    }
    CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
    CU_ASSERT_TRUE(WIFEXITED(st));
    CU_ASSERT_EQUAL(WEXITSTATUS(st), 0);
}

/* A source that waits with nothing in flight, on an fd that then hangs up:
 * asked again, it reads the end of file. */
static void test_wait_with_nothing_running(void)
{
    struct src *s = calloc(1, sizeof *s);
    int data[2], ack[2];
    pid_t pid;

    use_helper();
    CU_ASSERT_EQUAL_FATAL(pipe2(data, O_CLOEXEC), 0);
    CU_ASSERT_EQUAL_FATAL(pipe2(ack, O_CLOEXEC), 0);
    pid = fork();
    if (pid == 0) {
        usleep(100000);
        _exit(0);  /* closes data[1]: a hang-up, no data */
    }
    close(data[1]);
    CU_ASSERT_EQUAL(fcntl(data[0], F_SETFL, O_NONBLOCK), 0);
    s->fd = data[0];
    s->ack = -1;
    CU_ASSERT_EQUAL(zmp_run_stream(0, pipe_next, record, s), 0);
    CU_ASSERT_EQUAL(s->taken, 0);
    CU_ASSERT_TRUE(s->waits >= 1);
    CU_ASSERT_EQUAL(waitpid(pid, NULL, 0), pid);
    close(data[0]);
    close(ack[0]);
    close(ack[1]);
    free(s);
}

void add_stream_tests(void)
{
    CU_pSuite s = CU_add_suite("stream", suite_init, suite_clean);

    CU_add_test(s, "jobs start as lines arrive", test_streams);
    CU_add_test(s, "timeouts fire while the source waits", test_timeout_while_waiting);
    CU_add_test(s, "source ends, fails, answers badly", test_source_ends_and_errors);
    CU_add_test(s, "waiting with nothing in flight", test_wait_with_nothing_running);
    CU_add_test(s, "stopped while starting, on one CPU", test_stop_while_starting);
    CU_add_test(s, "no leaks", test_no_leaks);
}
