/* SPDX-License-Identifier: MIT */
/*
 * Inputs of `zmp parallel`, read as they come: a job starts as soon as its
 * line is there, so `tail -f log | zmp parallel ...` works as with xargs.
 * A read is made only when poll() says it will not block, so the fd (a
 * pipe, a terminal, a file) never needs O_NONBLOCK, which would change it
 * for everyone sharing it.
 */
#define _GNU_SOURCE
#include "input.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_SIZE 65536

void input_from_args(struct input *in, char *const *args, size_t n)
{
    *in = (struct input){ .fd = -1, .args = args, .nargs = n };
}

void input_from_fd(struct input *in, int fd)
{
    *in = (struct input){ .fd = fd, .delim = "\n", .delim_len = 1 };
}

void input_set_delim(struct input *in, const char *d, size_t n)
{
    in->delim = d;
    in->delim_len = n;
}

/* Room for READ_SIZE more bytes and a NUL, dropping what was handed out. */
static int make_room(struct input *in)
{
    size_t cap;
    char *b;

    if (in->off) {
        memmove(in->buf, in->buf + in->off, in->len - in->off);
        in->len -= in->off;
        in->off = 0;
    }
    if (in->cap - in->len > READ_SIZE)
        return 0;
    cap = in->cap ? in->cap * 2 : 2 * READ_SIZE;
    b = realloc(in->buf, cap);
    if (!b)
        return -ENOMEM;
    in->buf = b;
    in->cap = cap;
    return 0;
}

int input_ready(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    int r = poll(&pfd, 1, 0);

    if (r < 0)
        return errno == EINTR ? -EAGAIN : -errno;
    return r == 0 ? -EAGAIN : 0;
}

long input_read(int fd, char *buf, size_t len)
{
    ssize_t n;

    do
        n = read(fd, buf, len);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return (long)n;
}

/* One read, when it cannot block: 0 (read, or end of file), -EAGAIN. */
static int fill(struct input *in)
{
    long n;
    int r;

    if ((r = input_ready(in->fd)) < 0 || (r = make_room(in)) < 0)
        return r;
    n = input_read(in->fd, in->buf + in->len, READ_SIZE);
    if (n < 0)
        return (int)n;
    if (n == 0)
        in->eof = true;
    in->len += (size_t)n;
    return 0;
}

int input_next(struct input *in, const char **ret)
{
    char *start, *nl;
    size_t avail;
    int r;

    if (in->fd < 0) {
        if (in->next >= in->nargs)
            return 0;
        *ret = in->args[in->next++];
        return 1;
    }
    for (;;) {
        start = in->buf ? in->buf + in->off : NULL;
        /* Only what came since the last look: a long line arriving in
         * pieces is scanned once. */
        avail = in->len - in->off;
        nl = NULL;
        if (avail > in->scanned && in->delim_len == 1)
            nl = memchr(start + in->scanned, in->delim[0], avail - in->scanned);
        else if (avail > in->scanned)
            nl = memmem(start + in->scanned, avail - in->scanned, in->delim, in->delim_len);
        if (nl) {
            *nl = '\0';
            in->off = (size_t)(nl - in->buf) + in->delim_len;
            in->scanned = 0;
            *ret = start;
            return 1;
        }
        if (in->eof) {
            if (in->len == in->off)
                return 0;  /* (also when nothing was ever read: buf NULL) */
            in->buf[in->len] = '\0';  /* make_room left space for it */
            in->off = in->len;
            in->scanned = 0;
            *ret = start;
            return 1;
        }
        /* A delimiter of several bytes may have begun at the end. */
        in->scanned = avail >= in->delim_len ? avail - (in->delim_len - 1) : 0;
        r = fill(in);
        if (r < 0)
            return r;
    }
}

void input_free(struct input *in)
{
    free(in->buf);
    in->buf = NULL;
}
