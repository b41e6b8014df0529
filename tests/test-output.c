/* SPDX-License-Identifier: MIT */
/* zmp_options.on_output: output handed over as it is read, through every
 * way of running a job (one run, zmp_start, a batch and a stream on worker
 * threads), with the cap, the merged streams, and a callback that says
 * stop. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

/* What the callback saw of one job.  The helper's flood writes byte i of
 * stdout as 'a' + i % 26 and of stderr as '0' + i % 10: each byte is
 * checked as it comes, so megabytes need no copy. */
struct sink {
    size_t len[3];        /* by fd */
    size_t bad[3];        /* bytes not as the pattern says */
    size_t calls;
    size_t stop_after;    /* return `answer` at this call (1-based), or 0 */
    int answer;
    atomic_int inside;    /* calls running now: never more than one */
    bool overlapped;
    bool merged;          /* fd 1 carries both streams: no pattern check */
    pthread_t thread;     /* the thread of the last call */
};

static int on_output(void *arg, int fd, const void *data, size_t len)
{
    struct sink *s = arg;
    const char *p = data;
    size_t i, off;

    if (atomic_fetch_add(&s->inside, 1) != 0)
        s->overlapped = true;
    s->thread = pthread_self();
    s->calls++;
    CU_ASSERT_TRUE(len > 0);
    CU_ASSERT_TRUE(fd == 1 || fd == 2);
    if (fd == 1 || fd == 2) {
        off = s->len[fd];
        if (!s->merged)
            for (i = 0; i < len; i++)
                s->bad[fd] += p[i] != (fd == 1 ? (char)('a' + (off + i) % 26)
                                               : (char)('0' + (off + i) % 10));
        s->len[fd] += len;
    }
    /* A little time in here, so a second call at once would be seen. */
    if (s->calls % 64 == 1)
        usleep(100);
    atomic_fetch_sub(&s->inside, 1);
    return s->stop_after && s->calls == s->stop_after ? s->answer : 0;
}

static void check_sink(const struct sink *s, size_t out, size_t err)
{
    CU_ASSERT_EQUAL(s->len[1], out);
    CU_ASSERT_EQUAL(s->len[2], err);
    CU_ASSERT_EQUAL(s->bad[1], 0);
    CU_ASSERT_EQUAL(s->bad[2], 0);
    CU_ASSERT_FALSE(s->overlapped);
}

static void check_empty_result(const zmp_result *res)
{
    CU_ASSERT_PTR_NULL(res->out);
    CU_ASSERT_PTR_NULL(res->err);
    CU_ASSERT_PTR_NULL(res->output);
    CU_ASSERT_EQUAL(res->out_len + res->err_len + res->output_len, 0);
}

/* 5 MiB + 123 and 1 MiB + 45: not whole reads. */
#define OUT_BYTES 5243003
#define ERR_BYTES 1048621

static const char *const flood_argv[] = { "flood", "5243003", "1048621", NULL };

/* Megabytes on both streams, each complete and in order, in the caller's
 * thread; nothing kept in the result. */
static void test_run_opts(void)
{
    struct sink s = { 0 };
    zmp_options o = { .argv = flood_argv, .on_output = on_output, .output_arg = &s };
    zmp_result res;
    zmp_info info;

    use_helper();
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, &info), 0);
    CU_ASSERT_TRUE(res.ok);
    CU_ASSERT_EQUAL(res.exit_code, 0);
    check_empty_result(&res);
    check_sink(&s, OUT_BYTES, ERR_BYTES);
    CU_ASSERT_TRUE(pthread_equal(s.thread, pthread_self()));
    CU_ASSERT_FALSE(info.flags & ZMP_TRUNCATED);
    zmp_result_free(&res);
}

/* Both streams on one pipe: everything comes as fd 1. */
static void test_merged(void)
{
    struct sink s = { .merged = true };
    zmp_options o = { .argv = flood_argv, .on_output = on_output, .output_arg = &s,
                      .flags = ZMP_MERGE_STDERR };
    zmp_result res;

    use_helper();
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, NULL), 0);
    CU_ASSERT_TRUE(res.ok);
    check_empty_result(&res);
    CU_ASSERT_EQUAL(s.len[1], OUT_BYTES + ERR_BYTES);
    CU_ASSERT_EQUAL(s.len[2], 0);
    zmp_result_free(&res);
}

/* The cap counts what the callback gets, per stream. */
static void test_cap(void)
{
    struct sink s = { 0 };
    zmp_options o = { .argv = flood_argv, .on_output = on_output, .output_arg = &s,
                      .output_cap = 100001 };
    zmp_result res;
    zmp_info info;

    use_helper();
    CU_ASSERT_EQUAL_FATAL(zmp_run_opts(&o, &res, &info), 0);
    CU_ASSERT_TRUE(res.ok);
    check_sink(&s, 100001, 100001);
    CU_ASSERT_TRUE(info.flags & ZMP_TRUNCATED);
    zmp_result_free(&res);
}

/* A nonzero return kills the job (here one that would write a terabyte)
 * and is its error: a negative one as it is, another as -EIO.  The
 * callback hears nothing more of it. */
static void test_stop(void)
{
    const char *argv[] = { "flood", "1099511627776", "0", NULL };
    struct sink s = { .stop_after = 3, .answer = -EPIPE };
    zmp_options o = { .argv = argv, .on_output = on_output, .output_arg = &s,
                      .flags = ZMP_NEW_PGROUP };
    zmp_result res;
    int h;

    use_helper();
    CU_ASSERT_EQUAL(zmp_run_opts(&o, &res, NULL), -EPIPE);
    CU_ASSERT_EQUAL(s.calls, 3);
    check_empty_result(&res);

    s = (struct sink){ .stop_after = 1, .answer = 7 };
    h = zmp_start(&o);
    CU_ASSERT_FATAL(h > 0);
    CU_ASSERT_EQUAL(zmp_collect(h, &res, NULL), -EIO);
    CU_ASSERT_EQUAL(s.calls, 1);
    CU_ASSERT_TRUE(no_children());
}

/* With ZMP_NEW_PGROUP the whole group is killed: a grandchild holding the
 * pipes does not keep the job alive for its minute. */
static void test_stop_group(void)
{
    const char *argv[] = { "sh", "-c", "\"$0\" sleep 60000 & exec \"$0\" flood 1099511627776 0",
                           helper_path(), NULL };
    struct sink s = { .stop_after = 1, .answer = -EPIPE };
    zmp_options o = { .program = "sh", .argv = argv, .on_output = on_output,
                      .output_arg = &s, .flags = ZMP_NEW_PGROUP };
    struct timespec t0, t1;
    zmp_result res;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT_EQUAL(zmp_run_opts(&o, &res, NULL), -EPIPE);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CU_ASSERT_TRUE(t1.tv_sec - t0.tv_sec < 20);
    CU_ASSERT_EQUAL(s.calls, 1);
}

/* zmp_start: the thread waiting in the library makes the calls. */
static void test_start_collect(void)
{
    struct sink s[3];
    zmp_options o = { .argv = flood_argv, .on_output = on_output };
    zmp_result res;
    zmp_info info;
    int h[3], i;

    use_helper();
    memset(s, 0, sizeof s);
    for (i = 0; i < 3; i++) {
        o.output_arg = &s[i];
        h[i] = zmp_start(&o);
        CU_ASSERT_FATAL(h[i] > 0);
    }
    for (i = 2; i >= 0; i--) {
        CU_ASSERT_EQUAL_FATAL(zmp_collect(h[i], &res, &info), 0);
        CU_ASSERT_TRUE(res.ok);
        check_empty_result(&res);
        check_sink(&s[i], OUT_BYTES, ERR_BYTES);
        zmp_result_free(&res);
    }
}

/* A batch and a stream at parallel 4: the jobs run on worker threads,
 * several callbacks at once, each job's own calls one at a time. */
#define NJOBS 8

static void test_batch(void)
{
    struct sink s[NJOBS];
    zmp_options jobs[NJOBS];
    zmp_result res[NJOBS];
    int errs[NJOBS], i;

    use_helper();
    memset(s, 0, sizeof s);
    memset(jobs, 0, sizeof jobs);
    for (i = 0; i < NJOBS; i++) {
        jobs[i].argv = flood_argv;
        jobs[i].on_output = on_output;
        jobs[i].output_arg = &s[i];
    }
    /* The last job stops itself. */
    s[NJOBS - 1].stop_after = 2;
    s[NJOBS - 1].answer = -ENOSPC;
    CU_ASSERT_EQUAL_FATAL(zmp_run_batch(jobs, NJOBS, 4, res, NULL, errs, NULL, NULL), 0);
    for (i = 0; i < NJOBS - 1; i++) {
        CU_ASSERT_EQUAL(errs[i], 0);
        CU_ASSERT_TRUE(res[i].ok);
        check_empty_result(&res[i]);
        check_sink(&s[i], OUT_BYTES, ERR_BYTES);
        zmp_result_free(&res[i]);
    }
    CU_ASSERT_EQUAL(errs[NJOBS - 1], -ENOSPC);
    CU_ASSERT_EQUAL(s[NJOBS - 1].calls, 2);
    zmp_result_free(&res[NJOBS - 1]);
}

struct src {
    struct sink s[NJOBS];
    int err[NJOBS];
    bool ok[NJOBS];
    size_t taken;
};

static int src_next(void *arg, size_t i, zmp_options *job, int *wait_fd)
{
    struct src *x = arg;

    (void)wait_fd;
    if (i == NJOBS)
        return ZMP_STREAM_END;
    job->argv = flood_argv;
    job->on_output = on_output;
    job->output_arg = &x->s[i];
    x->taken++;
    return ZMP_STREAM_JOB;
}

static int src_done(void *arg, size_t i, int err, zmp_result *res, const zmp_info *info)
{
    struct src *x = arg;

    (void)info;
    x->err[i] = err;
    if (res) {
        x->ok[i] = res->ok;
        check_empty_result(res);
        zmp_result_free(res);
    }
    return 0;
}

static void test_stream(void)
{
    struct src *x = calloc(1, sizeof *x);
    int i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    use_helper();
    CU_ASSERT_EQUAL_FATAL(zmp_run_stream(4, src_next, src_done, x), 0);
    CU_ASSERT_EQUAL(x->taken, NJOBS);
    for (i = 0; i < NJOBS; i++) {
        CU_ASSERT_EQUAL(x->err[i], 0);
        CU_ASSERT_TRUE(x->ok[i]);
        check_sink(&x->s[i], OUT_BYTES, ERR_BYTES);
    }
    free(x);
}

static void test_bad(void)
{
    struct sink s = { 0 };
    zmp_options o = { .argv = flood_argv, .on_output = on_output, .output_arg = &s,
                      .flags = ZMP_NO_CAPTURE };
    zmp_result res;

    use_helper();
    CU_ASSERT_EQUAL(zmp_run_opts(&o, &res, NULL), -EINVAL);
    CU_ASSERT_EQUAL(zmp_start(&o), -EINVAL);
    CU_ASSERT_EQUAL(s.calls, 0);
}

void add_output_tests(void)
{
    CU_pSuite s = CU_add_suite("output callback", suite_init, suite_clean);

    CU_add_test(s, "both streams complete and in order", test_run_opts);
    CU_add_test(s, "merged streams", test_merged);
    CU_add_test(s, "output cap", test_cap);
    CU_add_test(s, "a nonzero return kills the job", test_stop);
    CU_add_test(s, "... and its process group", test_stop_group);
    CU_add_test(s, "zmp_start and zmp_collect", test_start_collect);
    CU_add_test(s, "a batch on worker threads", test_batch);
    CU_add_test(s, "a stream on worker threads", test_stream);
    CU_add_test(s, "bad options", test_bad);
    CU_add_test(s, "no leaks", test_no_leaks);
}
