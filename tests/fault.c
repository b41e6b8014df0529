/* SPDX-License-Identifier: MIT */
/*
 * Fault injection over the whole API (built with --enable-fault-injection).
 *
 * For each engine and each scenario, N = 1, 2, ...: the Nth fallible call
 * of the library (an allocation or a system call, see src/fault.h) fails,
 * the scenario runs, and then:
 *   - every call returned 0 with exactly the right result, or a negative
 *     errno (never -EINTR, a retry case; never an error without a fault);
 *   - after zmp_deinit(): no child left (running or zombie), no descriptor
 *     leaked, no heap byte leaked (mallinfo2; LSan too in a sanitizer
 *     build);
 *   - the library still works: a plain run gives the right output, on the
 *     same engine.
 * It stops at the first N that injects nothing: the scenario has no more
 * fallible calls.  A hang is caught by an alarm, which names the call
 * that was failed.
 *
 *   fault [-e ENGINE] [-s SCENARIO] [-b BURST] [-v]
 * BURST fails that many calls in a row from the Nth (default 1).
 */
#define _GNU_SOURCE
#include "config.h"

#define ZMP_FAULT_NO_WRAP
#include "fault.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zmp.h"
#include "fds.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/lsan_interface.h>
#define HAVE_LSAN 1
#endif
#endif

static char helper[PATH_MAX];
static const char *wrong;  /* the first wrong result seen, as file:line */
static int wrong_line;
static bool verbose;

#define CHECK(cond) \
    do { \
        if (!(cond) && !wrong) { \
            wrong = #cond; \
            wrong_line = __LINE__; \
        } \
    } while (0)

/* The first failure of a scenario: stop there, return it. */
#define TRY(expr) \
    do { \
        int r_ = (expr); \
        if (r_ < 0) \
            return r_; \
    } while (0)

static bool no_children(void)
{
    siginfo_t si;

    return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 &&
           errno == ECHILD;
}

static size_t heap_used(void)
{
    return mallinfo2().uordblks;
}

/* --- scenarios ------------------------------------------------------------ */

static bool result_is(const zmp_result *res, int code, const char *out,
                      const char *err)
{
    return res->exit_code == code && res->ok == (code == 0) && res->out &&
           res->err && !strcmp(res->out, out) && !strcmp(res->err, err) &&
           res->out_len == strlen(out) && res->err_len == strlen(err) &&
           res->output && res->output_len == res->out_len + res->err_len;
}

static int sc_run(void)
{
    const char *args[] = { "hello", "world", NULL };
    zmp_result res;

    TRY(zmp_run("echo", args, &res));
    CHECK(result_is(&res, 0, "hello world\n", ""));
    CHECK(res.output == res.out);
    zmp_result_free(&res);
    return 0;
}

/* Both streams, growing buffers, the merge in arrival order. */
static int sc_run_both(void)
{
    const char *args[] = { "300000", "200000", NULL };
    zmp_result res;
    size_t i, o = 0, e = 0;
    bool ok;

    TRY(zmp_run("flood", args, &res));
    ok = res.exit_code == 0 && res.out_len == 300000 && res.err_len == 200000 &&
         res.output_len == 500000;
    for (i = 0; ok && i < res.out_len; i++)
        ok = res.out[i] == (char)('a' + i % 26);
    for (i = 0; ok && i < res.err_len; i++)
        ok = res.err[i] == (char)('0' + i % 10);
    /* The merge holds each stream's bytes in order. */
    for (i = 0; ok && i < res.output_len; i++) {
        char c = res.output[i];
        if (c >= 'a' && c <= 'z')
            ok = c == (char)('a' + o++ % 26);
        else
            ok = c == (char)('0' + e++ % 10);
    }
    CHECK(ok);
    zmp_result_free(&res);
    return 0;
}

/* The helper takes -c for an unknown mode: a known exit and message. */
/* on_output: each stream's bytes complete and in order, nothing kept. */
struct sink {
    size_t len[3];
    bool bad;
};

static int sink_output(void *arg, int fd, const void *data, size_t len)
{
    struct sink *k = arg;
    const char *p = data;
    size_t i;

    for (i = 0; i < len; i++)
        k->bad |= p[i] != (fd == 1 ? (char)('a' + (k->len[1] + i) % 26)
                                   : (char)('0' + (k->len[2] + i) % 10));
    k->len[fd] += len;
    return 0;
}

static int sc_output(void)
{
    const char *argv[] = { "flood", "300000", "200000", NULL };
    struct sink k = { { 0 }, false };
    zmp_options o = { .argv = argv, .on_output = sink_output, .output_arg = &k };
    zmp_result res;

    TRY(zmp_run_opts(&o, &res, NULL));
    CHECK(res.exit_code == 0 && !res.out && !res.err && !res.output && !k.bad &&
          k.len[1] == 300000 && k.len[2] == 200000);
    zmp_result_free(&res);
    return 0;
}

static int sc_run_code(void)
{
    const char *args[] = { "x", NULL };
    zmp_result res;

    TRY(zmp_run_code("code", args, &res));
    CHECK(result_is(&res, 100, "", "helper: unknown mode '-c'\n"));
    zmp_result_free(&res);
    return 0;
}

static int sc_spawn_wait(void)
{
    const char *args[] = { "3", NULL };
    int h, code = -1;

    TRY(h = zmp_spawn("exit", args));
    CHECK(h > 0);
    TRY(zmp_wait(h, &code));
    CHECK(code == 3);
    return 0;
}

static int sc_spawn_poll_kill(void)
{
    const char *args[] = { "10000", NULL };
    int h, code = -1, r;

    TRY(h = zmp_spawn("sleep", args));
    TRY(r = zmp_poll(h, &code));
    CHECK(r == 0);
    TRY(zmp_kill(h));
    CHECK(zmp_poll(h, &code) == -ECHILD);
    return 0;
}

/* stdin fed through the engine, a cap, a timeout that does not expire. */
static int sc_opts_input(void)
{
    static char input[300000];
    const char *argv[] = { "stdin", NULL };
    zmp_options o = { .argv = argv, .input = input, .input_len = sizeof input,
                      .output_cap = 4, .timeout_ms = 20000 };
    zmp_result res;
    zmp_info info;

    TRY(zmp_run_opts(&o, &res, &info));
    CHECK(result_is(&res, 0, "3000", ""));
    CHECK(info.flags == ZMP_TRUNCATED);
    zmp_result_free(&res);
    return 0;
}

/* A timeout that expires: SIGTERM, which the helper dies of. */
static int sc_opts_timeout(void)
{
    const char *argv[] = { "sleep", "10000", NULL };
    const zmp_term_step seq[] = { { SIGTERM, 5000 } };
    zmp_options o = { .argv = argv, .timeout_ms = 20, .term_seq = seq,
                      .term_seq_len = 1 };
    zmp_result res;
    zmp_info info;

    TRY(zmp_run_opts(&o, &res, &info));
    /* A SIGTERM that could not be sent (an injected kill failure) is
     * followed by the SIGKILL at the end of the sequence. */
    CHECK(result_is(&res, -SIGTERM, "", "") || result_is(&res, -SIGKILL, "", ""));
    CHECK(info.flags == ZMP_TIMED_OUT);
    zmp_result_free(&res);
    return 0;
}

/* The child exits, a grandchild holds the pipes: the drain grace ends it. */
static int sc_opts_held(void)
{
    const char *argv[] = { "grandchild", "500", NULL };
    zmp_options o = { .argv = argv, .timeout_ms = 20000, .drain_ms = 20 };
    zmp_result res;
    zmp_info info;

    TRY(zmp_run_opts(&o, &res, &info));
    CHECK(result_is(&res, 0, "", ""));
    CHECK(info.flags == ZMP_PIPES_HELD);
    zmp_result_free(&res);
    return 0;
}

static int sc_start_collect(void)
{
    const char *a1[] = { "echo", "one", NULL }, *a2[] = { "echo", "two", NULL };
    zmp_options o1 = { .argv = a1 }, o2 = { .argv = a2 };
    zmp_result res;
    int h1, h2;

    TRY(h1 = zmp_start(&o1));
    TRY(h2 = zmp_start(&o2));
    TRY(zmp_collect(h2, &res, NULL));
    CHECK(result_is(&res, 0, "two\n", ""));
    zmp_result_free(&res);
    TRY(zmp_collect(h1, &res, NULL));
    CHECK(result_is(&res, 0, "one\n", ""));
    zmp_result_free(&res);
    return 0;
}

/* A job that could not run has its error and an empty result: the batch
 * itself still returns 0.  The first job error is the scenario's. */
static int sc_batch(void)
{
    enum { N = 6 };
    const char *argv[N][3];
    char words[N][8];
    zmp_options jobs[N];
    zmp_result res[N];
    zmp_info infos[N];
    int errs[N], i, r, first = 0;
    char want[16];

    for (i = 0; i < N; i++) {
        snprintf(words[i], sizeof words[i], "j%d", i);
        argv[i][0] = "echo";
        argv[i][1] = words[i];
        argv[i][2] = NULL;
        jobs[i] = (zmp_options){ .argv = argv[i] };
    }
    r = zmp_run_batch(jobs, N, 3, res, infos, errs, NULL, NULL);
    if (r < 0) {
        /* The engine failed: the jobs that finished before keep their
         * results, the others are empty; freeing all is always right. */
        for (i = 0; i < N; i++)
            zmp_result_free(&res[i]);
        return r;
    }
    for (i = 0; i < N; i++) {
        if (errs[i] < 0) {
            CHECK(!res[i].out && !res[i].err && !res[i].output);
            if (!first)
                first = errs[i];
            continue;
        }
        CHECK(errs[i] == 0);
        snprintf(want, sizeof want, "j%d\n", i);
        CHECK(result_is(&res[i], 0, want, ""));
        CHECK(infos[i].pid > 0);
        zmp_result_free(&res[i]);
    }
    return first;
}

static int sc_sleep(void)
{
    const char *args[] = { "5", NULL };
    int h, code = -1, r;

    TRY(h = zmp_spawn("exit", args));
    TRY(zmp_sleep(30));
    /* The child may take longer than that to exec and exit on a loaded
     * machine: sleep on until it has (the alarm bounds it). */
    while ((r = zmp_poll(h, &code)) == 0)
        TRY(zmp_sleep(5));
    TRY(r);
    CHECK(r == 1 && code == 5);
    code = -1;
    TRY(zmp_wait(h, &code));
    CHECK(code == 5);
    return 0;
}

static int sc_deinit_reuse(void)
{
    const char *x[] = { "x", NULL }, *y[] = { "y", NULL };
    zmp_result res;

    TRY(zmp_run("echo", x, &res));
    CHECK(result_is(&res, 0, "x\n", ""));
    zmp_result_free(&res);
    zmp_deinit();
    TRY(zmp_run("echo", y, &res));
    CHECK(result_is(&res, 0, "y\n", ""));
    zmp_result_free(&res);
    return 0;
}

/* The interpreter by a bare name, found in PATH (the test's directory is
 * put first in main), then the full path again. */
static int sc_interp_path(void)
{
    const char *args[] = { "p", NULL };
    zmp_result res;

    TRY(zmp_set_interpreter("helper"));
    TRY(zmp_run("echo", args, &res));
    CHECK(result_is(&res, 0, "p\n", ""));
    zmp_result_free(&res);
    TRY(zmp_set_interpreter(helper));
    return 0;
}

/* clean: the scenario holds no handle when a call fails, so no child of
 * it may be left behind, even before zmp_deinit(). */
static const struct scenario {
    const char *name;
    int (*fn)(void);
    bool clean;
} scenarios[] = {
    { "run", sc_run, true },
    { "run-both-streams", sc_run_both, true },
    { "output-callback", sc_output, true },
    { "run_code", sc_run_code, true },
    { "spawn-wait", sc_spawn_wait, false },
    { "spawn-poll-kill", sc_spawn_poll_kill, false },
    { "opts-input-cap", sc_opts_input, true },
    { "opts-timeout", sc_opts_timeout, true },
    { "opts-pipes-held", sc_opts_held, true },
    { "start-collect", sc_start_collect, false },
    { "batch", sc_batch, true },
    { "sleep", sc_sleep, false },
    { "deinit-reuse", sc_deinit_reuse, true },
    { "interp-path", sc_interp_path, true },
};

/* --- the loop ------------------------------------------------------------- */

static const char *cur_engine, *cur_scenario;
static unsigned long cur_n;

static void describe_hit(char *buf, size_t size)
{
    const char *name, *file;
    int line, err;

    if (zmp__fault_injected(&name, &file, &line, &err))
        snprintf(buf, size, "%s at %s:%d (%s)", name, file, line, strerrorname_np(err));
    else
        snprintf(buf, size, "nothing injected");
}

static void on_alarm(int sig)
{
    char what[256];

    (void)sig;
    describe_hit(what, sizeof what);
    dprintf(2, "HANG: engine %s, scenario %s, N=%lu: %s\n", cur_engine,
            cur_scenario, cur_n, what);
    _exit(1);
}

/* Distinct call sites that were failed, and how the library answered. */
struct site {
    const char *name, *file;
    int line;
    unsigned hits;
};
static struct site sites[512];
static size_t nsites;

static void note_site(void)
{
    const char *name, *file;
    int line, err;
    size_t i;

    if (!zmp__fault_injected(&name, &file, &line, &err))
        return;
    for (i = 0; i < nsites; i++)
        if (sites[i].line == line && !strcmp(sites[i].file, file))
            break;
    if (i == nsites) {
        if (nsites == sizeof sites / sizeof sites[0])
            return;
        sites[nsites++] = (struct site){ name, file, line, 0 };
    }
    sites[i].hits++;
}

static int base_fds;
static size_t base_heap;
static unsigned failures, errors_mapped;

static int fail(const char *what, int r)
{
    char hitbuf[256];

    describe_hit(hitbuf, sizeof hitbuf);
    printf("FAIL [%s] %s N=%lu: %s (returned %d %s; injected: %s)\n",
           cur_engine, cur_scenario, cur_n, what, r,
           r < 0 ? strerrorname_np(-r) : "", hitbuf);
    failures++;
    return -1;
}

/* What must hold after every run, faulted or not.  Returns 0 or -1. */
static int check_after(int r, bool injected, int injected_errno, bool clean)
{
    const char *x[] = { "ok", NULL };
    zmp_result res;
    int s, rc = 0;
    char buf[64];

    if (r > 0)
        rc = fail("positive return", r);
    if (r < 0 && !injected)
        rc = fail("error without an injected fault", r);
    if (r == -EINTR)
        rc = fail("EINTR reached the caller", r);
    if (wrong) {
        snprintf(buf, sizeof buf, "wrong result: line %d", wrong_line);
        rc = fail(buf, r);
        printf("    %s\n", wrong);
    }
    if (r < 0 && injected && r != -injected_errno) {
        errors_mapped++;
        if (verbose) {
            char hitbuf[256];
            describe_hit(hitbuf, sizeof hitbuf);
            printf("note [%s] %s N=%lu: %s returned as %s\n", cur_engine,
                   cur_scenario, cur_n, hitbuf, strerrorname_np(-r));
        }
    }
    /* A failed call must not leave its child behind (running, or a
     * zombie) until some later call happens to reap it. */
    if (clean && !no_children())
        rc = fail("a child left behind by a failed call", r);
    zmp_deinit();
    if (!no_children())
        rc = fail("children left after zmp_deinit", r);
    if (count_fds() != base_fds) {
        snprintf(buf, sizeof buf, "%d descriptors leaked", count_fds() - base_fds);
        rc = fail(buf, r);
    }
    if (strcmp(zmp_interpreter(), helper))  /* interp-path stopped half-way */
        zmp_set_interpreter(helper);
    s = zmp_run("echo", x, &res);
    if (s != 0 || !result_is(&res, 0, "ok\n", ""))
        rc = fail("the library does not work afterwards", s);
    zmp_result_free(&res);
    if (strcmp(zmp_backend(), cur_engine))
        rc = fail("the engine changed afterwards", 0);
    zmp_deinit();
    if (heap_used() != base_heap) {
        snprintf(buf, sizeof buf, "%zd heap bytes leaked",
                 (ssize_t)(heap_used() - base_heap));
        rc = fail(buf, r);
        base_heap = heap_used();
    }
#ifdef HAVE_LSAN
    if (__lsan_do_recoverable_leak_check())
        rc = fail("LSan found a leak", r);
#endif
    if (count_fds() != base_fds)
        rc = fail("descriptors leaked by the check run", 0);
    return rc;
}

/* Returns the number of injection points the scenario had. */
static unsigned long run_scenario(const struct scenario *sc, unsigned long burst)
{
    const char *name, *file;
    int r, line, err;
    bool injected;
    unsigned long n;

    cur_scenario = sc->name;
    for (n = 1;; n++) {
        cur_n = n;
        wrong = NULL;
        alarm(60);
        zmp__fault_arm(n, burst);
        r = sc->fn();
        zmp__fault_disarm();
        injected = zmp__fault_injected(&name, &file, &line, &err);
        if (verbose && injected)
            printf("  [%s] %s N=%lu: %s at %s:%d -> %d\n", cur_engine, sc->name,
                   n, name, file, line, r);
        note_site();
        check_after(r, injected, err, sc->clean);
        alarm(0);
        if (!injected)
            return n - 1;
    }
}

/*
 * The first calls of a fresh process, where the library makes what it
 * keeps for good (probes of kernel features, the engine): each failed in
 * turn in a new process, after which a run must work, on the same engine.
 * Returns the number of injection points.
 */
static unsigned long run_fresh(void)
{
    unsigned long n;
    int status;
    pid_t pid;

    cur_scenario = "fresh-process";
    zmp_deinit();
    for (n = 1;; n++) {
        cur_n = n;
        fflush(stdout);
        pid = fork();
        if (pid == 0) {
            char arg[32];

            /* exec: a fork would inherit what the parent has probed. */
            snprintf(arg, sizeof arg, "%lu", n);
            execl("/proc/self/exe", "fault", "-F", arg, "-e", cur_engine, (char *)NULL);
            _exit(5);
        }
        if (pid < 0 || waitpid(pid, &status, 0) < 0 || n > 10000) {
            fail("the fresh process cannot run", 0);
            return n;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 10)
            return n - 1;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail(WIFEXITED(status) && WEXITSTATUS(status) == 4
                     ? "the library does not work after a failed first call"
                     : "a failed first call", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
}

/* The child of run_fresh, in a new process: fail the nth call. */
static int fresh_child(unsigned long n)
{
    const char *x[] = { "x", NULL };
    zmp_result res;
    int r;

    {
        {
            zmp__fault_arm(n, 1);
            r = zmp_run("echo", x, &res);
            zmp__fault_disarm();
            if (r == 0 && !result_is(&res, 0, "x\n", ""))
                return 3;
            zmp_result_free(&res);
            if (zmp_run("echo", x, &res) != 0 || !result_is(&res, 0, "x\n", "") ||
                strcmp(zmp_backend(), cur_engine))
                return 4;
            zmp_result_free(&res);
            zmp_deinit();
            return zmp__fault_calls() >= n ? 0 : 10;
        }
    }
}

int main(int argc, char **argv)
{
    static const char *const all_engines[] = { "io_uring", "poll" };
    const char *only_engine = NULL, *only_scenario = NULL;
    unsigned long burst = 1, points, total = 0, runs = 0;
    char *slash, *path;
    ssize_t len;
    size_t e, i;
    int opt;

    unsigned long fresh = 0;

    while ((opt = getopt(argc, argv, "e:s:b:vF:")) != -1) {
        switch (opt) {
        case 'F': fresh = strtoul(optarg, NULL, 10); break;
        case 'e': only_engine = optarg; break;
        case 's': only_scenario = optarg; break;
        case 'b': burst = strtoul(optarg, NULL, 10); break;
        case 'v': verbose = true; break;
        default:
            fprintf(stderr, "usage: %s [-e ENGINE] [-s SCENARIO] [-b BURST] [-v]\n",
                    argv[0]);
            return 2;
        }
    }
#ifndef HAVE_LSAN
    /* mallinfo2 counts chunks parked in the thread cache as in use: without
     * the cache, the heap figure is exact.  Tunables are read at start. */
    if (!getenv("GLIBC_TUNABLES")) {
        setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0", 1);
        execv("/proc/self/exe", argv);
        return 2;
    }
#endif
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, on_alarm);
    len = readlink("/proc/self/exe", helper, sizeof helper - 1);
    if (len < 0)
        return 2;
    helper[len] = '\0';
    slash = strrchr(helper, '/');
    *slash = '\0';
    if (asprintf(&path, "PATH=%s:%s", helper, getenv("PATH") ? getenv("PATH") : "/bin") < 0)
        return 2;
    putenv(path);
    snprintf(slash, sizeof helper - (size_t)(slash - helper), "/helper");
    if (fresh) {
        cur_engine = only_engine ? only_engine : "io_uring";
        if (zmp_set_interpreter(helper) < 0 || zmp_set_backend(only_engine) < 0)
            return 2;
        return fresh_child(fresh);
    }
    /* stdout's buffer is made now, before any heap baseline. */
    printf("fault injection: every fallible call of the library, in turn\n");
    if (zmp_set_interpreter(helper) < 0)
        return 2;

    for (e = 0; e < sizeof all_engines / sizeof all_engines[0]; e++) {
        cur_engine = all_engines[e];
        if (only_engine && strcmp(only_engine, cur_engine))
            continue;
        zmp_deinit();
        if (zmp_set_backend(cur_engine) < 0 || strcmp(zmp_backend(), cur_engine)) {
            printf("SKIP [%s]: this engine cannot run here\n", cur_engine);
            if (only_engine)
                return 77;
            continue;
        }
        for (i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
            if (only_scenario && strcmp(only_scenario, scenarios[i].name))
                continue;
            /* A clean run first: lazily made state (stdio, the PATH
             * cache, the pidfd probe) is then part of the baseline. */
            zmp__fault_disarm();
            cur_scenario = scenarios[i].name;
            cur_n = 0;
            wrong = NULL;
            alarm(60);
            if (scenarios[i].fn() != 0 || wrong)
                fail("the scenario fails without faults", 0);
            alarm(0);
            zmp_deinit();
            base_fds = count_fds();
            base_heap = heap_used();
            points = run_scenario(&scenarios[i], burst);
            printf("[%s] %-18s %3lu injection points\n", cur_engine,
                   scenarios[i].name, points);
            total += points;
            runs += points + 1;
        }
        if (!only_scenario || !strcmp(only_scenario, "fresh-process")) {
            points = run_fresh();
            printf("[%s] %-18s %3lu injection points\n", cur_engine,
                   "fresh-process", points);
            total += points;
            runs += points + 1;
        }
        zmp_set_backend(NULL);
    }
    printf("\ncall sites failed at least once: %zu\n", nsites);
    for (i = 0; verbose && i < nsites; i++)
        printf("  %-32s %s:%d (%u)\n", sites[i].name, sites[i].file,
               sites[i].line, sites[i].hits);
    printf("fault [burst %lu]: %lu faulted runs (%lu runs), %u errors returned "
           "as another errno, %u failed\n",
           burst, total, runs, errors_mapped, failures);
    return failures ? 1 : 0;
}
