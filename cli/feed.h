/* SPDX-License-Identifier: MIT */
/*
 * --pipe --round-robin of `zmp parallel`: a thread cuts stdin into blocks
 * (pipe.c) and writes each whole block to one of at most `slots` running
 * jobs, whichever is free to take it, through a pipe that is the job's
 * stdin (ZMP_STDIN_FD).  A job is asked for only when a block has no job
 * free to take it and fewer than `slots` jobs run, so a short input starts
 * fewer jobs, as with GNU parallel.  At the end of stdin the pipes are
 * closed and the jobs see end of file.
 *
 * Between the feeder thread and the stream's thread: the pipes of jobs to
 * start wait in a queue (feed_take), ready_fd is readable when there is
 * one or when no more will come; feed_job_ended tells the feeder a job is
 * gone (its pipe is then closed and the rest of its block dropped).
 */
#ifndef ZMP_CLI_FEED_H
#define ZMP_CLI_FEED_H

#include <stdbool.h>
#include <stdint.h>

#include "pipe.h"

struct feed;

/* Start the thread over p (which it owns from now on; fd 0 is read),
 * with at most slots jobs; stop_fd (or -1) readable means stop.  0 or a
 * negative errno. */
int feed_start(struct feed **ret, struct piper *p, unsigned slots, int stop_fd);

/* What the stream's source waits on. */
int feed_ready_fd(const struct feed *f);

/*
 * A job to start: 1 with *ret_fd the read end of its pipe (the caller's:
 * close it once the job has ended) and *ret_slot its number; 0 when no
 * more jobs will be needed; -EAGAIN when none is ready yet (wait for
 * feed_ready_fd); or the feeder's negative errno (a failed read of stdin,
 * out of memory).
 */
int feed_take(struct feed *f, int *ret_fd, unsigned *ret_slot);

/* The job of slot has ended; *ret_sent gets the bytes it was given. */
void feed_job_ended(struct feed *f, unsigned slot, uint64_t *ret_sent);

/* Stop and join the thread, close everything. */
void feed_free(struct feed *f);

#endif
