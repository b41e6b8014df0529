/* SPDX-License-Identifier: MIT */
/*
 * The child of the stress program (tests/stress.c), told by its argv what
 * to do: stress-child SEED OUT ERR END writes OUT bytes of the seed's
 * pattern to stdout and ERR bytes to stderr, in chunks of 1 byte to 64 KiB
 * on streams picked at random, then ends as END says: exit:N, signal:N, or
 * hang (until a signal).  Uninstrumented, like tests/helper: a sanitizer
 * runtime would change what it reports, and slow its start.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "stress.h"

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static char buf[65536];
    uint64_t seed;
    size_t len[2], done[2] = { 0, 0 }, k;
    struct rng r;
    int st;

    if (argc != 5)
        return 120;
    seed = strtoull(argv[1], NULL, 0);
    len[0] = strtoull(argv[2], NULL, 0);
    len[1] = strtoull(argv[3], NULL, 0);
    /* Chunks of 1 byte to 64 KiB, each on a stream picked at random. */
    r.s = seed ^ 0xc0ffee;
    while (done[0] < len[0] || done[1] < len[1]) {
        st = done[0] == len[0] ? 1 : done[1] == len[1] ? 0 : (int)below(&r, 2);
        k = 1 + below(&r, sizeof buf);
        if (k > len[st] - done[st])
            k = len[st] - done[st];
        pattern(seed, st, done[st], buf, k);
        if (write_all(st + 1, buf, k) < 0)
            return 121;
        done[st] += k;
    }
    if (!strncmp(argv[4], "exit:", 5))
        return atoi(argv[4] + 5);
    if (!strncmp(argv[4], "signal:", 7)) {
        int sig = atoi(argv[4] + 7);

        prctl(PR_SET_DUMPABLE, 0);  /* no core file, whatever the signal */
        signal(sig, SIG_DFL);
        raise(sig);
        return 122;
    }
    if (!strcmp(argv[4], "hang")) {
        for (;;)
            pause();
    }
    return 123;
}

