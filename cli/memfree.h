/* SPDX-License-Identifier: MIT */
/*
 * --memfree of `zmp parallel`, as GNU parallel: no job starts while the
 * kernel's MemAvailable is below the size given, and while it is below
 * half of it, the youngest job (the one started last) is ended with
 * --termseq, one job at a time.  Such a job has failed (exit value -1 in
 * the joblog, as GNU's), so --retries runs it again once memory allows.
 *
 * The library names no job's process to its caller, so the youngest job is
 * found as the youngest child of zmp that leads a process group of its own
 * (/proc/self/task/N/children, the start times and groups in
 * /proc/PID/stat): a child still in zmp's group is between clone and exec,
 * and its group is zmp's.  It is signalled through a pidfd opened
 * while it is still zmp's child and not yet reaped, so never a recycled
 * pid: the signals go to its process group (it leads one), through the
 * pidfd on Linux 6.9+.  All of it runs on the stream's thread.
 */
#ifndef ZMP_CLI_MEMFREE_H
#define ZMP_CLI_MEMFREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "zmp.h"

struct memfree;

/*
 * size: the --memfree bytes; seq, n: the signals to end a job with, each
 * followed by its wait, then SIGKILL.  Returns 0, or a negative errno.
 */
int memfree_new(uint64_t size, const zmp_term_step *seq, size_t n, struct memfree **ret);
void memfree_free(struct memfree *m);

/* A descriptor that is readable a few times a second (read it to empty
 * it): when to call memfree_check() again. */
int memfree_fd(const struct memfree *m);

/*
 * Look at the memory and act: true when no job may start now.  Below
 * half the size, the youngest job is signalled (once its signals are
 * done and it is gone, the next one, if memory is still short); say
 * (may be NULL) hears a line of text about each job ended.
 */
bool memfree_check(struct memfree *m, void (*say)(void *arg, const char *line), void *arg);

/* Whether the job whose child was pid (it has ended) was ended here; it is
 * forgotten. */
bool memfree_ended(struct memfree *m, pid_t pid);

/* MemAvailable of /proc/meminfo, in bytes; UINT64_MAX when unknown. */
uint64_t memfree_available(void);

#endif
