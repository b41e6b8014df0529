/* SPDX-License-Identifier: MIT */
/*
 * Stress: thousands of jobs through zmp_run_batch, each told by its argv
 * exactly what to write on stdout and stderr (a pattern from a seed, in
 * random chunks that interleave the two streams) and how to end (an exit
 * code, a signal, or hanging past its timeout); every result is checked
 * byte for byte against the same pattern recomputed here, with its exit
 * code, signal, ZMP_TIMED_OUT and ZMP_TRUNCATED.
 *
 *   stress [-n JOBS] [-j PARALLEL] [-t THREADS] [-s SEED] [-o JOB]
 *
 * With -t, THREADS threads share the jobs, each running batches of its
 * own at once (no lock of ours: the library is thread-safe).
 * The engine is the one $ZMP_BACKEND names.  The seed is printed first;
 * -s SEED repeats a run, and -o JOB runs only job JOB of it.  The child
 * is tests/stress-child, beside this program.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stress.h"
#include "zmp.h"

struct job {
    uint64_t seed;
    size_t len[2];
    size_t cap;
    int code;           /* expected exit_code: 0..255 or -signal */
    bool hang;
    char args[4][32];
    const char *argv[6];
};

static const int signals[] = { SIGHUP, SIGINT, SIGQUIT, SIGABRT, SIGKILL, SIGUSR1,
                               SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM };

static size_t pick_len(struct rng *r)
{
    switch (below(r, 3)) {
    case 0: return 0;
    case 1: return (size_t)below(r, 4097);
    default: return (size_t)below(r, MAX_OUT + 1);
    }
}

/* Everything about job j follows from the run's seed and j. */
static void make_job(struct job *jb, uint64_t run_seed, size_t j, const char *self)
{
    struct rng r = { splitmix(run_seed) ^ splitmix(j + 1) };
    uint64_t end = below(&r, 100);

    jb->seed = next(&r);
    jb->len[0] = pick_len(&r);
    jb->len[1] = pick_len(&r);
    jb->cap = below(&r, 10) == 0 ? (size_t)below(&r, 70000) + 1 : 0;
    jb->hang = false;
    if (end < 60) {
        jb->code = (int)below(&r, 256);
        snprintf(jb->args[3], sizeof jb->args[3], "exit:%d", jb->code);
    } else if (end < 85) {
        int sig = signals[below(&r, sizeof signals / sizeof *signals)];

        jb->code = -sig;
        snprintf(jb->args[3], sizeof jb->args[3], "signal:%d", sig);
    } else {
        /* Written at once (less than a pipe holds), then it hangs till
         * the timeout's SIGTERM. */
        jb->hang = true;
        jb->len[0] %= 16385;
        jb->len[1] %= 16385;
        jb->code = -SIGTERM;
        snprintf(jb->args[3], sizeof jb->args[3], "hang");
    }
    snprintf(jb->args[0], sizeof jb->args[0], "%llu", (unsigned long long)jb->seed);
    snprintf(jb->args[1], sizeof jb->args[1], "%zu", jb->len[0]);
    snprintf(jb->args[2], sizeof jb->args[2], "%zu", jb->len[1]);
    jb->argv[0] = self;
    jb->argv[1] = jb->args[0];
    jb->argv[2] = jb->args[1];
    jb->argv[3] = jb->args[2];
    jb->argv[4] = jb->args[3];
    jb->argv[5] = NULL;
}

struct run {
    struct job *jobs;
    size_t first;       /* index of jobs[0] in the run */
    uint64_t seed;
    size_t done, bad, timed_out, signalled, truncated, bytes;
    char *expect;
};

static void fail(struct run *rn, size_t i, const char *what)
{
    if (rn->bad++ < 20)
        fprintf(stderr, "job %zu FAILED: %s (reproduce: stress -s %llu -o %zu)\n",
                rn->first + i, what, (unsigned long long)rn->seed, rn->first + i);
}

static bool stream_ok(struct run *rn, const struct job *jb, int st,
                      const char *data, size_t len)
{
    size_t want = jb->cap && jb->len[st] > jb->cap ? jb->cap : jb->len[st];

    if (len != want || (len && !data) || (data && data[len] != '\0'))
        return false;
    pattern(jb->seed, st, 0, rn->expect, want);
    return !want || !memcmp(data, rn->expect, want);
}

/* Called as each job finishes: check it, and free its result at once so
 * memory stays flat. */
static int check(void *arg, size_t i, int err, zmp_result *res, const zmp_info *info)
{
    struct run *rn = arg;
    const struct job *jb = &rn->jobs[i];
    bool trunc = jb->cap && (jb->len[0] > jb->cap || jb->len[1] > jb->cap);
    char msg[160];

    rn->done++;
    if (err) {
        snprintf(msg, sizeof msg, "did not run: %s", zmp_strerror(err));
        fail(rn, i, msg);
        return 0;
    }
    if (res->exit_code != jb->code || res->ok != (jb->code == 0)) {
        snprintf(msg, sizeof msg, "exit_code %d, want %d", res->exit_code, jb->code);
        fail(rn, i, msg);
    }
    if (!!(info->flags & ZMP_TIMED_OUT) != jb->hang)
        fail(rn, i, jb->hang ? "not timed out" : "timed out");
    if (!!(info->flags & ZMP_TRUNCATED) != trunc)
        fail(rn, i, trunc ? "ZMP_TRUNCATED missing" : "ZMP_TRUNCATED set");
    if (info->flags & ZMP_PIPES_HELD)
        fail(rn, i, "ZMP_PIPES_HELD set");
    if (!stream_ok(rn, jb, 0, res->out, res->out_len)) {
        snprintf(msg, sizeof msg, "stdout differs (%zu bytes, want %zu of cap %zu)",
                 res->out_len, jb->len[0], jb->cap);
        fail(rn, i, msg);
    }
    if (!stream_ok(rn, jb, 1, res->err, res->err_len)) {
        snprintf(msg, sizeof msg, "stderr differs (%zu bytes, want %zu of cap %zu)",
                 res->err_len, jb->len[1], jb->cap);
        fail(rn, i, msg);
    }
    /* The merged stream holds both, and is one of them when the other is
     * empty. */
    if (res->output_len != res->out_len + res->err_len ||
        (res->out_len && !res->err_len && memcmp(res->output, res->out, res->out_len)) ||
        (res->err_len && !res->out_len && memcmp(res->output, res->err, res->err_len)))
        fail(rn, i, "merged output differs");
    rn->timed_out += jb->hang;
    rn->signalled += jb->code < 0;
    rn->truncated += trunc;
    rn->bytes += res->out_len + res->err_len;
    zmp_result_free(res);
    return 0;
}

/* One thread's share: batches first, first + threads * batch, ... */
struct share {
    struct run rn;
    pthread_t t;
    size_t n, only, batch, start, step;
    unsigned parallel;
    const char *self;
    int error;
};

static void *worker(void *arg)
{
    struct share *sh = arg;
    struct run *rn = &sh->rn;
    size_t i, m, batch = sh->batch, end = sh->only == SIZE_MAX ? sh->n : sh->only + 1;
    zmp_options *opts = calloc(batch, sizeof *opts);
    zmp_result *res = calloc(batch, sizeof *res);
    zmp_info *infos = calloc(batch, sizeof *infos);
    int *errs = calloc(batch, sizeof *errs), r;

    rn->jobs = calloc(batch, sizeof *rn->jobs);
    rn->expect = malloc(MAX_OUT);
    if (!opts || !res || !infos || !errs || !rn->jobs || !rn->expect) {
        sh->error = -ENOMEM;
        goto out;
    }
    for (rn->first = sh->start; rn->first < end; rn->first += sh->step) {
        m = sh->only == SIZE_MAX ? (end - rn->first < batch ? end - rn->first : batch) : 1;
        for (i = 0; i < m; i++) {
            struct job *jb = &rn->jobs[i];

            make_job(jb, rn->seed, rn->first + i, sh->self);
            opts[i] = (zmp_options){
                .program = sh->self,
                .argv = jb->argv,
                .output_cap = jb->cap,
                /* Hanging jobs end by their timeout; for the others it is
                 * far and must not fire. */
                .timeout_ms = jb->hang ? 200 + (unsigned long)(rn->first + i) % 300 : 120000,
                /* The default drain grace: what a dead child left in its
                 * pipes must come whole however loaded the parent is (the
                 * grace restarts with each read after the exit). */
            };
        }
        r = zmp_run_batch(opts, m, sh->parallel, res, infos, errs, check, rn);
        if (r < 0) {
            fprintf(stderr, "zmp_run_batch: %s\n", zmp_strerror(r));
            sh->error = r;
            break;
        }
    }
out:
    free(opts); free(res); free(infos); free(errs); free(rn->jobs); free(rn->expect);
    return NULL;
}

int main(int argc, char **argv)
{
    size_t n = 10000, only = SIZE_MAX, batch = 2000, done = 0, bad = 0, bytes = 0,
           signalled = 0, timed_out = 0, truncated = 0;
    unsigned parallel = 0, threads = 1, k;
    char self[PATH_MAX], *slash;
    uint64_t seed;
    struct share *sh;
    int c, error = 0;
    ssize_t len;
    struct timespec t0, t1;

    seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    while ((c = getopt(argc, argv, "n:j:s:o:t:")) != -1) {
        switch (c) {
        case 'n': n = strtoull(optarg, NULL, 0); break;
        case 'j': parallel = (unsigned)atoi(optarg); break;
        case 's': seed = strtoull(optarg, NULL, 0); break;
        case 'o': only = strtoull(optarg, NULL, 0); break;
        case 't': threads = (unsigned)atoi(optarg); break;
        default:
            fprintf(stderr, "usage: stress [-n JOBS] [-j PARALLEL] [-t THREADS] [-s SEED] [-o JOB]\n");
            return 2;
        }
    }
    if (!parallel)
        parallel = (unsigned)zmp_cpu_count() * 16;
    if (threads < 1 || only != SIZE_MAX)
        threads = 1;
    len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len < 0)
        return 2;
    self[len] = '\0';
    slash = strrchr(self, '/');
    snprintf(slash + 1, sizeof self - (size_t)(slash + 1 - self), "stress-child");
    alarm(1800);  /* a hang ends the run */
    printf("stress: seed %llu, %zu jobs, %u at once in each of %u threads, engine %s\n",
           (unsigned long long)seed, only == SIZE_MAX ? n : 1, parallel, threads,
           zmp_backend());
    fflush(stdout);

    /* In batches, so the job table stays small too; the threads take
     * turns over the batches, each with a batch of its own in flight. */
    if (threads > 1 && n / threads < batch)
        batch = n / threads ? n / threads : 1;
    sh = calloc(threads, sizeof *sh);
    if (!sh)
        return 2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (k = 0; k < threads; k++) {
        sh[k] = (struct share){ .n = n, .only = only, .batch = batch,
                                .start = (only == SIZE_MAX ? 0 : only) + k * batch,
                                .step = threads * batch, .parallel = parallel,
                                .self = self };
        sh[k].rn.seed = seed;
        if (threads == 1)
            worker(&sh[k]);
        else if (pthread_create(&sh[k].t, NULL, worker, &sh[k]) != 0)
            return 2;
    }
    for (k = 0; k < threads; k++) {
        if (threads > 1)
            pthread_join(sh[k].t, NULL);
        done += sh[k].rn.done;
        bad += sh[k].rn.bad;
        bytes += sh[k].rn.bytes;
        signalled += sh[k].rn.signalled;
        timed_out += sh[k].rn.timed_out;
        truncated += sh[k].rn.truncated;
        if (sh[k].error)
            error = sh[k].error;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    zmp_deinit();
    printf("stress [%s%s]: %zu jobs, %zu bytes checked, %zu signalled, %zu timed out, "
           "%zu truncated, %.1f s: %s\n",
           getenv("ZMP_BACKEND") ? getenv("ZMP_BACKEND") : "auto",
           threads > 1 ? ", threads" : "", done, bytes, signalled, timed_out, truncated,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
           bad || error ? "FAILED" : "ok");
    free(sh);
    return bad || error || done != (only == SIZE_MAX ? n : 1) ? 1 : 0;
}
