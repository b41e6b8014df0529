/* SPDX-License-Identifier: MIT */
/*
 * Threads: the contract of docs/design.md ("Thread safety") and nothing
 * more.  Any thread may call any function at any time with no lock of its
 * own: a blocking call blocks only its caller, any thread may carry on
 * what another began (a handle, a batch, a stream), zmp_deinit() from one
 * thread while others are inside ends their calls, a fork() beside
 * threads inside zmp leaves the child a library it can use, and threads
 * that do not call zmp are never disturbed by a spawn, whatever locks
 * they hold and whether they fork or exec themselves.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "fds.h"

extern char **environ;

static pthread_mutex_t zmp_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile int stop_flag;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Byte i of the helper's floods (tests/helper.c). */
static bool flood_ok(const zmp_result *r, size_t nout, size_t nerr)
{
    size_t i;

    if (r->out_len != nout || r->err_len != nerr)
        return false;
    for (i = 0; i < nout; i++)
        if (r->out[i] != (char)('a' + i % 26))
            return false;
    for (i = 0; i < nerr; i++)
        if (r->err[i] != (char)('0' + i % 10))
            return false;
    return true;
}

/* ---- several threads, each call behind the caller's mutex ------------- */

enum { SER_THREADS = 4, SER_ROUNDS = 24 };

struct ser { int id; int bad; int rounds; bool unlocked; };

static void *serialized_worker(void *arg)
{
    struct ser *s = arg;
    char word[32], want[40];
    int k, h = 0, code;

    for (k = 0; k < s->rounds; k++) {
        const char *argv[] = { helper_path(), "echo", word, NULL };
        const char *fargv[] = { helper_path(), "flood", "70000", "50000", NULL };
        zmp_options o = { .program = helper_path(), .argv = argv };
        zmp_options jobs[3];
        zmp_result res, bres[3];
        int errs[3], i;

        snprintf(word, sizeof word, "t%d-%d", s->id, k);
        snprintf(want, sizeof want, "%s\n", word);
        if (!s->unlocked)
            pthread_mutex_lock(&zmp_lock);
        switch (k % 4) {
        case 0:  /* a whole run in one call */
            if (zmp_run_opts(&o, &res, NULL) != 0 || !res.out || strcmp(res.out, want))
                s->bad++;
            zmp_result_free(&res);
            break;
        case 1:  /* started now, collected in a later turn (below) */
            o.argv = fargv;
            h = zmp_start(&o);
            if (h <= 0)
                s->bad++;
            break;
        case 2:
            if (zmp_collect(h, &res, NULL) != 0 || !flood_ok(&res, 70000, 50000))
                s->bad++;
            zmp_result_free(&res);
            break;
        case 3:  /* a batch */
            for (i = 0; i < 3; i++)
                jobs[i] = (zmp_options){ .program = helper_path(), .argv = argv };
            if (zmp_run_batch(jobs, 3, 2, bres, NULL, errs, NULL, NULL) != 0)
                s->bad++;
            for (i = 0; i < 3; i++) {
                if (errs[i] || !bres[i].out || strcmp(bres[i].out, want))
                    s->bad++;
                zmp_result_free(&bres[i]);
            }
            /* and a plain spawn, waited for */
            h = zmp_spawn("exit", (const char *[]){ "7", NULL });
            if (h <= 0 || zmp_wait(h, &code) != 0 || code != 7)
                s->bad++;
            break;
        }
        if (!s->unlocked)
            pthread_mutex_unlock(&zmp_lock);
    }
    return NULL;
}

static void run_workers(bool unlocked, int rounds)
{
    pthread_t t[SER_THREADS];
    struct ser s[SER_THREADS];
    int i, bad = 0;

    use_helper();
    for (i = 0; i < SER_THREADS; i++) {
        s[i] = (struct ser){ .id = i, .rounds = rounds, .unlocked = unlocked };
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, serialized_worker, &s[i]), 0);
    }
    for (i = 0; i < SER_THREADS; i++) {
        pthread_join(t[i], NULL);
        bad += s[i].bad;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_serialized(void)
{
    run_workers(false, SER_ROUNDS);
}

/* The same from 4 threads with no lock of ours: 300 rounds each of runs,
 * background jobs collected later, batches and spawns, every byte and
 * exit code checked. */
static void test_unlocked(void)
{
    run_workers(true, 300);
}

/* ---- what a thread began, another finishes, after the first is gone --- */

struct starter { int flood, late, plain, input; };

static void *starter_thread(void *arg)
{
    struct starter *st = arg;
    const char *fargv[] = { helper_path(), "flood", "1048576", "524288", NULL };
    const char *largv[] = { helper_path(), "sleep", "300", "late", NULL };
    zmp_options f = { .program = helper_path(), .argv = fargv };
    zmp_options l = { .program = helper_path(), .argv = largv };
    /* stdin read only after a while: the send is in flight meanwhile */
    const char *iargv[] = { "sh", "-c", "sleep 0.3; exec \"$0\" stdin", helper_path(), NULL };
    static char data[1 << 20];
    zmp_options in = { .program = "/bin/sh", .argv = iargv, .input = data,
                       .input_len = sizeof data };

    st->flood = zmp_start(&f);
    st->late = zmp_start(&l);
    st->plain = zmp_spawn("exit", (const char *[]){ "5", NULL });
    st->input = zmp_start(&in);
    /* Run the engine here, so that this thread submits the requests that
     * watch the jobs (io_uring ties a request to the task that submitted
     * it) and some are still in flight when it exits. */
    zmp_sleep(50);
    return NULL;
}

static void test_handoff(void)
{
    struct starter st;
    pthread_t t;
    zmp_result res;
    int code;

    use_helper();
    /* The engine is started by the thread that then exits. */
    zmp_deinit();
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, starter_thread, &st), 0);
    pthread_join(t, NULL);
    CU_ASSERT_FATAL(st.flood > 0 && st.late > 0 && st.plain > 0 && st.input > 0);
    CU_ASSERT_EQUAL(zmp_collect(st.flood, &res, NULL), 0);
    CU_ASSERT_TRUE(flood_ok(&res, 1048576, 524288));
    zmp_result_free(&res);
    CU_ASSERT_EQUAL(zmp_collect(st.late, &res, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res.out);
    CU_ASSERT_STRING_EQUAL(res.out, "late\n");
    zmp_result_free(&res);
    CU_ASSERT_EQUAL(zmp_wait(st.plain, &code), 0);
    CU_ASSERT_EQUAL(code, 5);
    CU_ASSERT_EQUAL(zmp_collect(st.input, &res, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res.out);
    CU_ASSERT_STRING_EQUAL(res.out, "1048576\n");
    zmp_result_free(&res);
}

/* ---- spawning while other threads hold locks -------------------------- */

/* Allocates and frees without pause: the malloc arena lock is taken and
 * released all the time, and held at any instant by chance. */
static void *malloc_churn(void *arg)
{
    unsigned seed = 1;
    void *keep[64] = { 0 };
    size_t i;

    (void)arg;
    while (!__atomic_load_n(&stop_flag, __ATOMIC_RELAXED)) {
        i = (size_t)rand_r(&seed) % 64;
        free(keep[i]);
        keep[i] = malloc((size_t)rand_r(&seed) % 100000 + 1);
    }
    for (i = 0; i < 64; i++)
        free(keep[i]);
    return NULL;
}

static pthread_mutex_t held_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t held_barrier;

/* Takes the stdio locks and a mutex, and keeps them until told to stop. */
static void *lock_holder(void *arg)
{
    (void)arg;
    flockfile(stdout);
    flockfile(stderr);
    pthread_mutex_lock(&held_mutex);
    pthread_barrier_wait(&held_barrier);
    while (!__atomic_load_n(&stop_flag, __ATOMIC_RELAXED))
        usleep(1000);
    pthread_mutex_unlock(&held_mutex);
    funlockfile(stderr);
    funlockfile(stdout);
    return NULL;
}

/* The child between clone and exec runs on the caller's memory while the
 * other threads go on: it must take none of their locks.  Were it to, the
 * spawn would hang here (and the alarm end the run). */
static void test_locks_held(void)
{
    enum { N = 150 };
    pthread_t churn[2], holder;
    char want[16];
    int i, bad = 0, code;

    use_helper();
    stop_flag = 0;
    pthread_barrier_init(&held_barrier, NULL, 2);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&holder, NULL, lock_holder, NULL), 0);
    pthread_barrier_wait(&held_barrier);
    for (i = 0; i < 2; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&churn[i], NULL, malloc_churn, NULL), 0);
    for (i = 0; i < N; i++) {
        const char *argv[] = { helper_path(), "echo", want, NULL };
        zmp_options o = { .program = helper_path(), .argv = argv };
        zmp_result res;
        int h;

        snprintf(want, sizeof want, "%d", i);
        if (i % 3 == 2) {  /* uncaptured too */
            h = zmp_spawn("exit", (const char *[]){ want, NULL });
            bad += h <= 0 || zmp_wait(h, &code) != 0 || code != i % 256;
            continue;
        }
        if (zmp_run_opts(&o, &res, NULL) != 0 || !res.out ||
            strncmp(res.out, want, strlen(want)) || res.out[strlen(want)] != '\n')
            bad++;
        zmp_result_free(&res);
    }
    __atomic_store_n(&stop_flag, 1, __ATOMIC_RELAXED);
    for (i = 0; i < 2; i++)
        pthread_join(churn[i], NULL);
    pthread_join(holder, NULL);
    pthread_barrier_destroy(&held_barrier);
    CU_ASSERT_EQUAL(bad, 0);
}

/* ---- spawning while other threads fork and exec ----------------------- */

struct forker { int mode; int runs, bad; };

/* mode 0: posix_spawn and waitpid (by pid: a wait(-1) would take zmp's
 * children, as documented); mode 1: fork, and the child exits after a
 * while without exec, holding whatever descriptors it inherited. */
static void *forker_thread(void *arg)
{
    struct forker *f = arg;
    char *const argv[] = { "true", NULL };
    pid_t pid;
    int st;

    while (!__atomic_load_n(&stop_flag, __ATOMIC_RELAXED)) {
        if (f->mode == 0) {
            if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ) != 0) {
                f->bad++;
                continue;
            }
        } else {
            pid = fork();
            if (pid == 0) {
                usleep(150 * 1000);
                _exit(0);
            }
            if (pid < 0) {
                f->bad++;
                continue;
            }
        }
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
            f->bad++;
        f->runs++;
    }
    return NULL;
}

static void test_others_fork(void)
{
    enum { N = 60 };
    struct forker f[2] = { { .mode = 0 }, { .mode = 1 } };
    pthread_t t[2];
    double t0, slowest = 0;
    char want[16];
    int i, bad = 0, code;

    use_helper();
    stop_flag = 0;
    for (i = 0; i < 2; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, forker_thread, &f[i]), 0);
    for (i = 0; i < N; i++) {
        const char *argv[] = { helper_path(), "echo", want, NULL };
        zmp_options o = { .program = helper_path(), .argv = argv };
        zmp_result res;
        int h;

        snprintf(want, sizeof want, "%d", i);
        /* Uncaptured: nothing to wait for but the start itself, which
         * must not wait for a forked copy of the caller to go away. */
        t0 = now();
        h = zmp_spawn("exit", (const char *[]){ want, NULL });
        if (now() - t0 > slowest)
            slowest = now() - t0;
        bad += h <= 0 || zmp_wait(h, &code) != 0 || code != i;
        /* Captured: a forked copy may hold the pipes for its 150 ms
         * (every runner built on pipes waits for it); the bytes are exact. */
        if (zmp_run_opts(&o, &res, NULL) != 0 || !res.out ||
            strncmp(res.out, want, strlen(want)) || res.out[strlen(want)] != '\n')
            bad++;
        zmp_result_free(&res);
    }
    __atomic_store_n(&stop_flag, 1, __ATOMIC_RELAXED);
    for (i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        CU_ASSERT_EQUAL(f[i].bad, 0);
        CU_ASSERT_TRUE(f[i].runs > 0);
    }
    CU_ASSERT_EQUAL(bad, 0);
    if (slowest >= 0.1)
        printf("\n  slowest zmp_spawn: %.3f s\n", slowest);
    CU_ASSERT_TRUE(slowest < 0.1);
}

/* ---- no lock of the caller's: one call blocks only its own thread ----- */

static double elapsed_since(double t0)
{
    return now() - t0;
}

struct waiter { int handle; int r; int code; double done_at; };

static void *wait_thread(void *arg)
{
    struct waiter *w = arg;

    w->r = zmp_wait(w->handle, &w->code);
    w->done_at = now();
    return NULL;
}

/* Quick runs in one thread finish while another sits in zmp_wait on a
 * child that takes 3 s. */
static void test_wait_beside_runs(void)
{
    struct waiter w = { .code = 99 };
    const char *word[] = { "quick", NULL };
    double t0 = now(), quick_end;
    pthread_t t;
    zmp_result res;
    int i, ok = 0;

    use_helper();
    w.handle = zmp_spawn("sleep", (const char *[]){ "3000", NULL });
    CU_ASSERT_TRUE_FATAL(w.handle > 0);
    pthread_create(&t, NULL, wait_thread, &w);
    usleep(50000);
    for (i = 0; i < 20; i++) {
        ok += zmp_run("echo", word, &res) == 0 && !strcmp(res.out, "quick\n");
        zmp_result_free(&res);
    }
    quick_end = elapsed_since(t0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(ok, 20);
    CU_ASSERT_TRUE(quick_end < 2.5);            /* not behind the wait */
    CU_ASSERT_TRUE(w.done_at - t0 >= 2.9);      /* the wait blocked */
    CU_ASSERT_EQUAL(w.r, 0);
    CU_ASSERT_EQUAL(w.code, 0);
}

/* zmp_kill in one thread ends another's zmp_wait at once; both agree. */
static void test_kill_while_waiting(void)
{
    struct waiter w = { .code = 99 };
    double t0;
    pthread_t t;

    use_helper();
    w.handle = zmp_spawn("sleep", (const char *[]){ "30000", NULL });
    CU_ASSERT_TRUE_FATAL(w.handle > 0);
    pthread_create(&t, NULL, wait_thread, &w);
    usleep(100000);
    t0 = now();
    CU_ASSERT_EQUAL(zmp_kill(w.handle), 0);
    pthread_join(t, NULL);
    CU_ASSERT_TRUE(w.done_at - t0 < 5.0);
    CU_ASSERT_EQUAL(w.r, 0);
    CU_ASSERT_EQUAL(w.code, -SIGKILL);
    CU_ASSERT_EQUAL(zmp_wait(w.handle, NULL), -ECHILD);
}

struct poller { int handle; int last; int code; };

static void *poll_thread(void *arg)
{
    struct poller *p = arg;

    p->code = 99;
    do {
        p->last = zmp_poll(p->handle, &p->code);
        usleep(1000);
    } while (p->last == 0);
    return NULL;
}

/* A poll and a wait on one handle from two threads: the poll sees the
 * same code, or the handle already gone. */
static void test_poll_and_wait(void)
{
    int round, agree = 0;

    use_helper();
    for (round = 0; round < 20; round++) {
        struct waiter w = { .code = 99 };
        struct poller p;
        pthread_t a, b;

        w.handle = zmp_spawn("exit", (const char *[]){ "6", NULL });
        CU_ASSERT_TRUE_FATAL(w.handle > 0);
        p.handle = w.handle;
        pthread_create(&b, NULL, poll_thread, &p);
        pthread_create(&a, NULL, wait_thread, &w);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        agree += w.r == 0 && w.code == 6 &&
                 ((p.last == 1 && p.code == 6) || p.last == -ECHILD);
    }
    CU_ASSERT_EQUAL(agree, 20);
}

struct batcher { int id; int bad; };

static void *batch_thread(void *arg)
{
    enum { N = 40 };
    struct batcher *b = arg;
    char words[N][16];
    const char *argv[N][4];
    zmp_options jobs[N];
    zmp_result res[N];
    int errs[N], i;

    for (i = 0; i < N; i++) {
        snprintf(words[i], sizeof words[i], "b%d-%d", b->id, i);
        argv[i][0] = helper_path();
        argv[i][1] = "echo";
        argv[i][2] = words[i];
        argv[i][3] = NULL;
        jobs[i] = (zmp_options){ .program = helper_path(), .argv = argv[i] };
    }
    if (zmp_run_batch(jobs, N, 4, res, NULL, errs, NULL, NULL) != 0)
        b->bad++;
    for (i = 0; i < N; i++) {
        char want[24];

        snprintf(want, sizeof want, "%.15s\n", words[i]);
        if (errs[i] || !res[i].out || strcmp(res[i].out, want))
            b->bad++;
        zmp_result_free(&res[i]);
    }
    return NULL;
}

static void *sleep_thread(void *arg)
{
    int *bad = arg;
    double t0 = now();

    *bad = zmp_sleep(300) != 0 || elapsed_since(t0) < 0.29;
    return NULL;
}

/* Two batches at once from two threads, and zmp_sleep beside them. */
static void test_two_batches(void)
{
    struct batcher b[2] = { { .id = 0 }, { .id = 1 } };
    pthread_t t[3];
    int sbad = 1;

    pthread_create(&t[0], NULL, batch_thread, &b[0]);
    pthread_create(&t[1], NULL, batch_thread, &b[1]);
    pthread_create(&t[2], NULL, sleep_thread, &sbad);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    pthread_join(t[2], NULL);
    CU_ASSERT_EQUAL(b[0].bad + b[1].bad, 0);
    CU_ASSERT_EQUAL(sbad, 0);
}

static void *deinit_thread(void *arg)
{
    (void)arg;
    usleep(200000);
    zmp_deinit();
    return NULL;
}

/* zmp_deinit from one thread while others wait and run batches: their
 * calls end (their children killed), none crashes, and the library
 * works afterwards. */
static void test_deinit_beside_calls(void)
{
    struct waiter w = { .code = 99 };
    const char *slow[] = { "helper", "sleep", "30000", NULL };
    zmp_options jobs[4];
    zmp_result res[4];
    int errs[4], i, killed = 0;
    pthread_t a, d;

    use_helper();
    w.handle = zmp_spawn("sleep", (const char *[]){ "30000", NULL });
    CU_ASSERT_TRUE_FATAL(w.handle > 0);
    for (i = 0; i < 4; i++)
        jobs[i] = (zmp_options){ .program = helper_path(), .argv = slow };
    pthread_create(&a, NULL, wait_thread, &w);
    pthread_create(&d, NULL, deinit_thread, NULL);
    CU_ASSERT_EQUAL(zmp_run_batch(jobs, 4, 4, res, NULL, errs, NULL, NULL), 0);
    pthread_join(a, NULL);
    pthread_join(d, NULL);
    for (i = 0; i < 4; i++) {
        killed += errs[i] == 0 && res[i].exit_code == -SIGKILL;
        zmp_result_free(&res[i]);
    }
    CU_ASSERT_EQUAL(killed, 4);
    CU_ASSERT_EQUAL(w.r, 0);
    CU_ASSERT_EQUAL(w.code, -SIGKILL);
    CU_ASSERT_TRUE(no_children());
    CU_ASSERT_EQUAL(zmp_run("exit", (const char *[]){ "0", NULL }, &res[0]), 0);
    zmp_result_free(&res[0]);
}

struct runner {
    const char *what, *arg;
    int r, code;
};

static void *run_thread(void *arg)
{
    struct runner *u = arg;
    zmp_result res;

    u->r = zmp_run(u->what, (const char *[]){ u->arg, NULL }, &res);
    u->code = res.exit_code;
    zmp_result_free(&res);
    return NULL;
}

/* A run goes on its thread's own engine: what that engine holds goes
 * when the thread exits, and a zmp_deinit from another thread still ends
 * the run at once. */
static void test_own_engine(void)
{
    struct runner u = { "exit", "3", -1, -1 };
    pthread_t t;
    struct timespec t0, t1;
    int before;

    use_helper();
    before = count_fds();
    pthread_create(&t, NULL, run_thread, &u);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(u.r, 0);
    CU_ASSERT_EQUAL(u.code, 3);
    CU_ASSERT_EQUAL(count_fds(), before);  /* its ring and /dev/null went */
    u = (struct runner){ "sleep", "30000", -1, -1 };
    pthread_create(&t, NULL, run_thread, &u);
    usleep(300 * 1000);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    zmp_deinit();
    pthread_join(t, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CU_ASSERT_EQUAL(u.r, 0);
    CU_ASSERT_EQUAL(u.code, -SIGKILL);
    CU_ASSERT_TRUE(t1.tv_sec - t0.tv_sec < 10);
    CU_ASSERT_TRUE(no_children());
}

struct parked {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool ran, go;
};

/* Runs once, then stays alive (its engine with it) until told to go. */
static void *run_then_park(void *arg)
{
    struct parked *k = arg;
    zmp_result res;

    if (zmp_run("exit", (const char *[]){ "0", NULL }, &res) == 0)
        zmp_result_free(&res);
    pthread_mutex_lock(&k->m);
    k->ran = true;
    pthread_cond_broadcast(&k->c);
    while (!k->go)
        pthread_cond_wait(&k->c, &k->m);
    pthread_mutex_unlock(&k->m);
    return NULL;
}

/* A fork's child lets go of its copies of other threads' engines at its
 * first call (their descriptors are the parent's), and runs on its own. */
static void test_fork_beside_thread_engines(void)
{
    struct parked k = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false };
    zmp_result res;
    pthread_t t;
    pid_t pid;
    int st, before;

    use_helper();
    CU_ASSERT_EQUAL(zmp_run("exit", (const char *[]){ "0", NULL }, &res), 0);
    zmp_result_free(&res);
    pthread_create(&t, NULL, run_then_park, &k);
    pthread_mutex_lock(&k.m);
    while (!k.ran)
        pthread_cond_wait(&k.c, &k.m);
    pthread_mutex_unlock(&k.m);
    before = count_fds();
    pid = fork();
    CU_ASSERT_TRUE_FATAL(pid >= 0);
    if (pid == 0) {
        int bad = zmp_run("exit", (const char *[]){ "4", NULL }, &res) != 0 ||
                  res.exit_code != 4;

        zmp_result_free(&res);
        bad |= (count_fds() >= before) << 1;  /* the thread's engine let go */
        zmp_deinit();
        _exit(bad);
    }
    CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
    CU_ASSERT_TRUE(WIFEXITED(st));
    CU_ASSERT_EQUAL(WEXITSTATUS(st), 0);
    pthread_mutex_lock(&k.m);
    k.go = true;
    pthread_cond_broadcast(&k.c);
    pthread_mutex_unlock(&k.m);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(zmp_run("exit", (const char *[]){ "5", NULL }, &res), 0);
    CU_ASSERT_EQUAL(res.exit_code, 5);
    zmp_result_free(&res);
}

static int once_failed;

static void *run_once(void *arg)
{
    zmp_result res;

    (void)arg;
    if (zmp_run("exit", (const char *[]){ "0", NULL }, &res) == 0 && res.exit_code == 0)
        zmp_result_free(&res);
    else
        __atomic_add_fetch(&once_failed, 1, __ATOMIC_RELAXED);
    return NULL;
}

/* Threads that each run once and exit, one after another: their engines
 * (rings) are set up and torn down all the time. */
static void *come_and_go(void *arg)
{
    bool *stop = arg;
    pthread_t t;

    while (!__atomic_load_n(stop, __ATOMIC_ACQUIRE)) {
        if (pthread_create(&t, NULL, run_once, NULL) == 0)
            pthread_join(t, NULL);
    }
    return NULL;
}

/* A fork while other threads set up and tear down their engines: the
 * child inherits none of the engine's locks held, and runs.  A child stuck
 * on one is ended by its alarm, and the forks stop there.  The child says
 * how its run went by exec'ing sh to exit with it: what other threads
 * were allocating at the fork is theirs, and a leak check at the child's
 * exit (valgrind) would count it. */
static void test_fork_while_engines_come_and_go(void)
{
    bool stop = false;
    struct rlimit old, rl;
    pthread_t t[2];
    zmp_result res;
    pid_t pid;
    int i, st, pfd[2], nt = 0, stuck = 0, bad = 0, forked = 0;
    char c;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* The sanitizers' own allocators (GCC 12's) are not fork-safe while
     * other threads allocate: a child that forked while another thread
     * was in malloc hangs in its first malloc of that size (gdb on one:
     * futex wait on a size class's lock in SizeClassAllocator64, from
     * zmp__buf_reserve).  glibc's malloc is locked across fork(). */
    test_skip("a sanitizer's allocator hangs a fork beside allocating threads");
    return;
#endif
    use_helper();
    once_failed = 0;
    /* After a raise of the fd limit, every spawn takes the lock that
     * gives children the caller's limit back: raise it first (a run that
     * meets EMFILE), then fork beside those spawns. */
    getrlimit(RLIMIT_NOFILE, &old);
    rl = old;
    rl.rlim_cur = (rlim_t)count_fds() + 2;
    if (rl.rlim_cur + 64 <= rl.rlim_max && setrlimit(RLIMIT_NOFILE, &rl) == 0) {
        CU_ASSERT_EQUAL(zmp_run("exit", (const char *[]){ "0", NULL }, &res), 0);
        zmp_result_free(&res);
        /* (Raised, except under valgrind, which keeps the limit.) */
    }
    for (i = 0; i < 2; i++)
        if (pthread_create(&t[nt], NULL, come_and_go, &stop) == 0)
            nt++;
    CU_ASSERT_EQUAL(nt, 2);
    for (i = 0; i < 60 && nt == 2 && !stuck; i++) {
        usleep(2000);
        /* Opened just before the fork, maybe under a number another
         * thread's context has just closed: the child's forgetting of
         * that context must not close it. */
        if (pipe2(pfd, O_CLOEXEC) < 0)
            break;
        pid = fork();
        if (pid < 0) {
            close(pfd[0]);
            close(pfd[1]);
            break;
        }
        if (pid == 0) {
            bool ok;

            alarm(10);
            ok = zmp_run("exit", (const char *[]){ "4", NULL }, &res) == 0 && res.exit_code == 4;
            ok = write(pfd[1], "k", 1) == 1 && ok;
            execl("/bin/sh", "sh", "-c", ok ? "exit 0" : "exit 1", (char *)NULL);
            _exit(1);
        }
        close(pfd[1]);
        forked++;
        if (waitpid(pid, &st, 0) != pid)
            bad++;
        else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
            stuck++;
        else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
        else if (read(pfd[0], &c, 1) != 1 || c != 'k')
            bad++;
        close(pfd[0]);
    }
    __atomic_store_n(&stop, true, __ATOMIC_RELEASE);
    for (i = 0; i < nt; i++)
        pthread_join(t[i], NULL);
    setrlimit(RLIMIT_NOFILE, &old);
    CU_ASSERT_EQUAL(forked, 60);
    CU_ASSERT_EQUAL(stuck, 0);
    CU_ASSERT_EQUAL(bad, 0);
    /* The threads' runs set their engines up for real. */
    CU_ASSERT_EQUAL(__atomic_load_n(&once_failed, __ATOMIC_RELAXED), 0);
}

void add_threads_tests(void)
{
    CU_pSuite s = CU_add_suite("threads", suite_init, suite_clean);

    CU_add_test(s, "serialized calls from 4 threads", test_serialized);
    CU_add_test(s, "started in a thread that exits, finished in another", test_handoff);
    CU_add_test(s, "spawning while other threads hold locks", test_locks_held);
    CU_add_test(s, "spawning while other threads fork and exec", test_others_fork);
    CU_add_test(s, "4 threads, no lock, 300 rounds each", test_unlocked);
    CU_add_test(s, "quick runs beside a long wait", test_wait_beside_runs);
    CU_add_test(s, "kill in one thread ends a wait in another", test_kill_while_waiting);
    CU_add_test(s, "poll and wait on one handle", test_poll_and_wait);
    CU_add_test(s, "two batches and a sleep at once", test_two_batches);
    CU_add_test(s, "deinit while other threads are inside", test_deinit_beside_calls);
    CU_add_test(s, "runs on the thread's own engine", test_own_engine);
    CU_add_test(s, "fork beside other threads' engines", test_fork_beside_thread_engines);
    CU_add_test(s, "fork while engines come and go", test_fork_while_engines_come_and_go);
    CU_add_test(s, "no leaks", test_no_leaks);
}
