/* SPDX-License-Identifier: MIT */
/* The inputs of `zmp parallel`: arguments after :::, or lines of a file
 * read as they come, never blocking. */
#ifndef ZMP_CLI_INPUT_H
#define ZMP_CLI_INPUT_H

#include <stdbool.h>
#include <stddef.h>

struct input {
    int fd;               /* lines come from here, or -1 */
    char *const *args;    /* ... or from these */
    size_t nargs, next;
    char *buf;            /* bytes read, not yet handed out */
    size_t off, len, cap;
    size_t scanned;       /* bytes after off known to hold no delimiter */
    const char *delim;    /* what ends an input: "\n" unless set */
    size_t delim_len;
    bool eof;
};

void input_from_args(struct input *in, char *const *args, size_t n);
void input_from_fd(struct input *in, int fd);

/* Inputs from the fd end at these n bytes (-0, -d) instead of a newline;
 * d must outlive in. */
void input_set_delim(struct input *in, const char *d, size_t n);

/*
 * The next input, without its delimiter (a last one without it counts):
 * returns 1 with *ret pointing at it (valid until the next call), 0 at
 * the end, -EAGAIN when no whole line is there yet (wait for in->fd to be
 * readable, then call again), or a negative errno from read().
 */
int input_next(struct input *in, const char **ret);

void input_free(struct input *in);

/*
 * Reading a descriptor the caller never lets block (stdin of `zmp
 * parallel`, which the engine watches): input_ready() says whether a
 * read would return at once (0) or not (-EAGAIN; a signal counts as not
 * yet), or fails (-errno); input_read() then reads once, returning the
 * bytes read (0 at end of file), -EAGAIN, or -errno.
 */
int input_ready(int fd);
long input_read(int fd, char *buf, size_t len);

#endif
