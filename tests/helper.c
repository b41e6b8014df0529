/* SPDX-License-Identifier: MIT */
/*
 * The child program of the tests: one binary with modes, so every test
 * asks for exactly the behaviour it checks.  Used as the "interpreter":
 * zmp_run("MODE", args) runs `helper MODE ARGS...`.
 *
 *   echo ARGS...          print ARGS joined by spaces, and a newline
 *   exit N                exit with status N
 *   kill SIG              die by signal SIG
 *   sleep MS [WORD]       sleep MS milliseconds, print WORD if given, exit 0
 *   pid MS                print its pid, then sleep MS milliseconds, exit 0
 *   flood OUT ERR [BLOCK] write OUT bytes to stdout and ERR bytes to stderr,
 *                         interleaved in pieces of BLOCK bytes (64 KiB, the
 *                         most; patterns below)
 *   interleave N MS       write "oI\n" to stdout and "eI\n" to stderr,
 *                         I = 0..N-1, MS milliseconds apart
 *   fds                   list the open descriptors, e.g. "0 1 2\n"
 *   sigs                  print the SigBlk/SigIgn/SigCgt masks
 *   stdin                 read stdin to its end, print the byte count
 *   grandchild MS         leave a grandchild holding stdout and stderr for
 *                         MS milliseconds, and exit 0 at once
 *   closeout MS           print "before", close stdout, sleep MS ms, then
 *                         print "after" on stderr and exit 0
 *   dieafter N            write N bytes of the stdout flood, then die by
 *                         SIGKILL
 *   work MS MIB [child]   spend MS ms of CPU time in user mode and touch
 *                         MIB MiB, or, with "child", have a child it waits
 *                         for do it; print "done"
 *   fill C N [nl]         write N bytes of character C in 1 MiB writes (the
 *                         last one a newline with "nl")
 *   lines WORD N          write N lines "WORD-I-abcdefghij", each in three
 *                         writes, so that other writers can come between
 *   runs                  read stdin to its end, print the byte count, then
 *                         each run of one byte repeated, as BYTE COUNT (the
 *                         byte's number unless a letter or digit): whether
 *                         every byte of the fill jobs came, and whose
 *                         output was cut into by whose
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) < 0)
        ;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Byte i of the stdout flood is out_byte(i), of the stderr flood err_byte(i);
 * the tests check every byte against these. */
static char out_byte(size_t i) { return (char)('a' + i % 26); }
static char err_byte(size_t i) { return (char)('0' + i % 10); }

static int flood(size_t nout, size_t nerr, size_t block)
{
    static char ob[65536 + 26], eb[65536 + 10];
    size_t o = 0, e = 0, i, k;

    for (i = 0; i < sizeof ob; i++)
        ob[i] = out_byte(i);
    for (i = 0; i < sizeof eb; i++)
        eb[i] = err_byte(i);
    while (o < nout || e < nerr) {
        if (o < nout) {
            k = nout - o < block ? nout - o : block;
            if (write_all(1, ob + o % 26, k) < 0)
                return 3;
            o += k;
        }
        if (e < nerr) {
            k = nerr - e < block ? nerr - e : block;
            if (write_all(2, eb + e % 10, k) < 0)
                return 3;
            e += k;
        }
    }
    return 0;
}

static int list_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int fds[1024], n = 0, i, j, t;

    if (!d)
        return 3;
    while ((de = readdir(d)) && n < 1024) {
        if (de->d_name[0] == '.')
            continue;
        t = atoi(de->d_name);
        if (t != dirfd(d))
            fds[n++] = t;
    }
    closedir(d);
    for (i = 0; i < n; i++)
        for (j = i + 1; j < n; j++)
            if (fds[j] < fds[i]) {
                t = fds[i];
                fds[i] = fds[j];
                fds[j] = t;
            }
    for (i = 0; i < n; i++)
        printf("%s%d", i ? " " : "", fds[i]);
    printf("\n");
    return 0;
}

static int print_sigs(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];

    if (!f)
        return 3;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "SigBlk:", 7) || !strncmp(line, "SigIgn:", 7) ||
            !strncmp(line, "SigCgt:", 7))
            fputs(line, stdout);
    fclose(f);
    return 0;
}

/* MS ms of this process's CPU time, mostly in user mode, and MIB MiB
 * written (so resident). */
static void work(long ms, long mib)
{
    struct timespec t;
    volatile unsigned long x = 0;
    size_t len = (size_t)mib << 20, i;
    char *m = len ? malloc(len) : NULL;
    double end;

    for (i = 0; m && i < len; i += 4096)
        m[i] = 1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    end = (double)t.tv_sec + (double)t.tv_nsec / 1e9 + (double)ms / 1e3;
    do {
        for (i = 0; i < 100000; i++)
            x += i;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    } while ((double)t.tv_sec + (double)t.tv_nsec / 1e9 < end);
    free(m);
}

static int fill(char c, unsigned long long n, bool nl)
{
    static char b[1 << 20];
    size_t k;

    memset(b, c, sizeof b);
    while (n > 0) {
        k = n < sizeof b ? (size_t)n : sizeof b;
        if (nl && k == n)
            b[k - 1] = '\n';
        if (write_all(1, b, k) < 0)
            return 3;
        n -= k;
    }
    return 0;
}

static int lines(const char *word, long n)
{
    char b[256];
    long i;
    int k;

    for (i = 0; i < n; i++) {
        k = snprintf(b, sizeof b, "%.200s-%ld-", word, i);
        if (write_all(1, b, (size_t)k) < 0 || write_all(1, "abcdefghij", 10) < 0 ||
            write_all(1, "\n", 1) < 0)
            return 3;
    }
    return 0;
}

static int runs(void)
{
    static unsigned char b[1 << 20];
    static struct { int c; unsigned long long len; } r[4096];
    unsigned long long total = 0;
    size_t nr = 0, k;
    ssize_t n, i, j;

    while ((n = read(0, b, sizeof b)) != 0) {
        if (n < 0)
            return 3;
        total += (unsigned long long)n;
        for (i = 0; i < n; i = j) {
            /* Mostly one byte all along: memcmp of the buffer with itself
             * one byte on says so at memory speed. */
            if (!memcmp(b + i, b + i + 1, (size_t)(n - i - 1)))
                j = n;
            else
                for (j = i; j < n && b[j] == b[i]; j++)
                    ;
            if (nr && r[nr - 1].c == b[i]) {
                r[nr - 1].len += (unsigned long long)(j - i);
            } else if (nr < sizeof r / sizeof r[0]) {
                r[nr].c = b[i];
                r[nr++].len = (unsigned long long)(j - i);
            } else {
                return 4;
            }
        }
    }
    printf("%llu", total);
    for (k = 0; k < nr; k++)
        printf(isalnum(r[k].c) ? " %c%llu" : " %d%llu", r[k].c, r[k].len);
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    char buf[65536];
    ssize_t n;
    long total = 0;
    int i;

    if (!strcmp(mode, "echo")) {
        for (i = 2; i < argc; i++)
            printf("%s%s", i > 2 ? " " : "", argv[i]);
        printf("\n");
        return 0;
    }
    if (!strcmp(mode, "exit") && argc > 2)
        return atoi(argv[2]);
    if (!strcmp(mode, "kill") && argc > 2) {
        signal(atoi(argv[2]), SIG_DFL);
        raise(atoi(argv[2]));
        return 3;
    }
    if (!strcmp(mode, "sleep") && argc > 2) {
        sleep_ms(atol(argv[2]));
        if (argc > 3)
            printf("%s\n", argv[3]);
        return 0;
    }
    if (!strcmp(mode, "pid") && argc > 2) {
        printf("%d\n", (int)getpid());
        fflush(stdout);
        sleep_ms(atol(argv[2]));
        return 0;
    }
    if (!strcmp(mode, "flood") && argc > 3) {
        size_t block = argc > 4 ? strtoull(argv[4], NULL, 0) : 65536;

        if (block < 1 || block > 65536)
            return 2;
        return flood(strtoull(argv[2], NULL, 0), strtoull(argv[3], NULL, 0), block);
    }
    if (!strcmp(mode, "interleave") && argc > 3) {
        for (i = 0; i < atoi(argv[2]); i++) {
            n = snprintf(buf, sizeof buf, "o%d\n", i);
            write_all(1, buf, (size_t)n);
            sleep_ms(atol(argv[3]));
            n = snprintf(buf, sizeof buf, "e%d\n", i);
            write_all(2, buf, (size_t)n);
            sleep_ms(atol(argv[3]));
        }
        return 0;
    }
    if (!strcmp(mode, "fds"))
        return list_fds();
    if (!strcmp(mode, "fill") && argc > 3)
        return fill(argv[2][0], strtoull(argv[3], NULL, 0), argc > 4 && !strcmp(argv[4], "nl"));
    if (!strcmp(mode, "runs"))
        return runs();
    if (!strcmp(mode, "lines") && argc > 3)
        return lines(argv[2], atol(argv[3]));
    if (!strcmp(mode, "work") && argc > 3) {
        if (argc > 4 && !strcmp(argv[4], "child")) {
            pid_t pid = fork();
            int st;

            if (pid == 0) {
                work(atol(argv[2]), atol(argv[3]));
                _exit(0);
            }
            if (pid < 0 || waitpid(pid, &st, 0) != pid)
                return 1;
        } else {
            work(atol(argv[2]), atol(argv[3]));
        }
        printf("done\n");
        return 0;
    }
    if (!strcmp(mode, "sigs"))
        return print_sigs();
    if (!strcmp(mode, "stdin")) {
        while ((n = read(0, buf, sizeof buf)) > 0)
            total += n;
        printf("%ld\n", n < 0 ? -1 : total);
        return 0;
    }
    if (!strcmp(mode, "grandchild") && argc > 2) {
        if (fork() == 0) {
            sleep_ms(atol(argv[2]));
            _exit(0);
        }
        return 0;
    }
    if (!strcmp(mode, "closeout") && argc > 2) {
        printf("before\n");
        fflush(stdout);
        close(1);
        sleep_ms(atol(argv[2]));
        fprintf(stderr, "after\n");
        return 0;
    }
    if (!strcmp(mode, "dieafter") && argc > 2) {
        flood(strtoull(argv[2], NULL, 0), 0, 65536);
        signal(SIGKILL, SIG_DFL);
        raise(SIGKILL);
        return 3;
    }
    fprintf(stderr, "helper: unknown mode '%s'\n", mode);
    return 100;
}
