/* SPDX-License-Identifier: MIT */
/*
 * The --results file of `zmp parallel`: JSON lines, each with a "type".
 *   header   first: version, command (the template), shard {k, n}, host,
 *            start
 *   job      one per job run: seq (the input's number, from 1), input,
 *            the outcome, stdout and stderr
 *   summary  last, only when the shard ran to the end: inputs (seen in
 *            all, every shard's), jobs, failed, end
 * Each record is written whole and flushed, so after a crash the file
 * ends with whole records and at most one torn line, which readers skip.
 */
#ifndef ZMP_CLI_RESULTS_H
#define ZMP_CLI_RESULTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "jsonread.h"

enum record_type { REC_HEADER, REC_JOB, REC_SUMMARY };

/* One record, as read back; the spans point into the line. */
struct record {
    enum record_type type;
    size_t line;                /* from 1 */
    /* header */
    struct json_value command;  /* the template, as written */
    uint64_t shard_k, shard_n;
    /* job */
    uint64_t seq;
    bool ok;
    bool interrupted;           /* failed because zmp was stopping */
    struct json_value input;
    /* summary */
    uint64_t inputs;
};

/*
 * Read f from its start, calling fn for each record (stop when fn
 * returns nonzero: that is returned).  A last line that is torn (no
 * newline, or not a whole record) is skipped, and *ret_torn says where it
 * starts (else the file's length).  Returns 0, -errno, or -EBADMSG when a
 * line before the last is not a record (*ret_bad: its number).
 */
int results_scan(FILE *f, int (*fn)(void *arg, const struct record *rec),
                 void *arg, off_t *ret_torn, size_t *ret_bad);

#endif
