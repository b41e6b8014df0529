/* SPDX-License-Identifier: MIT */
/*
 * --joblog FILE of `zmp parallel`, in GNU parallel's format, so that
 * scripts written for it read ours: a header line, then one line per job,
 * tab-separated:
 *
 *   Seq Host Starttime JobRuntime Send Receive Exitval Signal Command
 *
 * Host is ":" (this machine), Starttime seconds since the Epoch with
 * 3 decimals, JobRuntime seconds as %10.3f, Send the bytes given on
 * stdin, Receive the bytes of output, Exitval the exit code (-1 after a
 * timeout; 0 when killed by a signal), Signal the signal that killed it,
 * Command the command as a shell would read it (a newline in it written as
 * a NUL, as GNU parallel does).  Each line is written whole and flushed.
 */
#ifndef ZMP_CLI_JOBLOG_H
#define ZMP_CLI_JOBLOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct joblog_line {
    uint64_t seq;
    double start, runtime;
    uint64_t send, receive;
    int exitval, signal;
    const char *command;
};

/* Called for each job line read back: the last line of a seq wins. */
typedef int (*joblog_fn)(void *arg, const struct joblog_line *l);

/*
 * Open path for writing: truncated, or with append (--resume...) first
 * read (each job line to fn, which may be NULL) and then appended to,
 * a header written when the file is new or empty.  Path "-" is standard
 * output (a copy of fd 1), the header first, as GNU parallel does; it
 * cannot be appended to (ESPIPE).  Returns the stream, or NULL with errno
 * set (EBADMSG: a line that is not a joblog line, its number in
 * *bad_line).
 */
FILE *joblog_open(const char *path, bool append, joblog_fn fn, void *arg,
                  size_t *bad_line);

/* One line, flushed: 0 or -errno. */
int joblog_write(FILE *f, const struct joblog_line *l);

/* Read path's job lines only (--retry-failed): 0, or -errno (-EBADMSG
 * with *bad_line). */
int joblog_read(const char *path, joblog_fn fn, void *arg, size_t *bad_line);

#endif
