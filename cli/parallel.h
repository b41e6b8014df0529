/* SPDX-License-Identifier: MIT */
#ifndef ZMP_CLI_PARALLEL_H
#define ZMP_CLI_PARALLEL_H

#include <stdbool.h>
#include <stddef.h>

#include "output.h"
#include "sources.h"
#include "zmp.h"

/* Exit statuses, as GNU parallel's: 0, 1-100 failed jobs, 101 more. */
#define EXIT_USAGE 255   /* bad usage, input, output or engine: any error */
#define EXIT_ERROR 255
#define PARALLEL_HELP (-1)
#define PARALLEL_VERSION (-2)

/* How -j reads: N, +N, -N, N% (see parallel_jobs). */
enum jobs_form { JOBS_DEFAULT, JOBS_EXACT, JOBS_MORE, JOBS_FEWER, JOBS_PERCENT };

/* --halt WHEN,WHAT=N[%] (GNU parallel's grammar). */
enum halt_when { HALT_NEVER, HALT_SOON, HALT_NOW };
enum halt_what { HALT_FAIL, HALT_SUCCESS, HALT_DONE };

/* How many values a job takes. */
enum multi { MULTI_NONE, MULTI_M, MULTI_X };

/* What the command line of `zmp parallel` asks for. */
struct parallel_config {
    unsigned long jobs;        /* the N of -j, at most 1000000 */
    enum jobs_form jobs_form;
    bool keep_order, progress, dry_run, shell;
    bool eta, bar;             /* --eta, --bar: progress with a total */
    const char *results, *cgroup;
    double timeout;            /* seconds, 0: none */
    double timeout_pct;        /* --timeout N%: of the median runtime */
    double delay;              /* --delay: seconds between job starts */
    const char *joblog;        /* --joblog FILE */
    unsigned long retries;     /* --retries N: tries in all (0: not given) */
    unsigned long long memfree;   /* --memfree: bytes MemAvailable must have */
    bool pipe;                 /* --pipe: stdin in blocks, to the jobs' stdin */
    bool round_robin;          /* --round-robin: blocks to running jobs */
    unsigned long long block;  /* --block, bytes */
    const char *recend, *recstart;
    bool retry_failed;         /* --retry-failed: the joblog's failed jobs */
    zmp_term_step termseq[8];  /* --termseq, parsed */
    size_t ntermseq;
    unsigned long long output_cap;
    char **tmpl;               /* COMMAND [ARG...]; none: the inputs are
                                  the commands (run by /bin/sh -c) */
    size_t ntmpl;
    struct source_spec *srcs;  /* -a files, then ::: and :::: sources
                                  (malloc'd; none: standard input) */
    size_t nsrcs;
    /* How inputs are read and cut (sources.h). */
    char delim[64];            /* -0, -d (escapes decoded) */
    size_t delim_len;          /* 0: newline */
    const char *eof;           /* -E */
    bool skip_empty, trim_left, trim_right, link;
    bool trim_set;             /* --trim given (else lr with --colsep) */
    const char *colsep;        /* --colsep REGEX, as given */
    /* What a job gets. */
    unsigned long max_args;    /* -n/-N: at most this many records; 0: 1 */
    bool pad_args;             /* -N: {N} beyond the records is empty */
    bool no_values;            /* -N 0: one job per input, given no value */
    enum multi multi;          /* -m, -X */
    const char *replace;       /* -I STR */
    const char *arg_sep, *arg_file_sep;   /* ::: and ::::, or --arg-sep's */
    /* --halt */
    enum halt_when halt_when;
    enum halt_what halt_what;
    unsigned long halt_n;      /* jobs, or percent of them when halt_pct */
    bool halt_pct;
    unsigned long long shard_k, shard_n;  /* --shard K/N; 0/1 without */
    bool resume, resume_failed;
    /* How the jobs' output is printed (output.c). */
    enum output_mode output_mode;      /* --group, --line-buffer, -u */
    bool tag;                          /* --tag */
    const char *tagstring;             /* --tagstring STR, or NULL */
    unsigned long long buffer_size;    /* --buffer-size, 0: the default */
    unsigned long long buffer_total;   /* --buffer-total, 0: the default */
    const char *tmpdir;                /* --tmpdir DIR, or NULL */
};

/*
 * Parse `zmp parallel`'s arguments (argv[0] is "parallel"): 0, or
 * EXIT_USAGE after a message on stderr (also when --help's text cannot be
 * written), PARALLEL_HELP after the usage text on stdout, or
 * PARALLEL_VERSION for --version (the caller prints it).
 * cfg points into argv; free it with parallel_config_free.
 */
int parallel_parse(int argc, char **argv, struct parallel_config *cfg);
void parallel_config_free(struct parallel_config *cfg);

/* How many jobs at once -j asks for, given the CPU count: UINT_MAX for
 * -j 0, no limit but the system's; 0 when none is left (-j 0%, -j -N
 * with N CPUs or more), an error. */
unsigned parallel_jobs(const struct parallel_config *cfg, unsigned cpus);

/* `zmp parallel ...`: argv[0] is "parallel"; stdin_closed: fd 0 was
 * closed when zmp started (main() filled it).  Returns the exit status, or
 * dies of the signal that stopped it. */
int cmd_parallel(int argc, char **argv, bool stdin_closed);

/* write(2) all of buf, again after EINTR: 0 or -errno. */
int write_all(int fd, const void *buf, size_t n);

/* Pass SIGTSTP and SIGCONT on to every child, as a shell does for its
 * jobs: the children are stopped with SIGSTOP before zmp stops. */
void job_control_install(void);

#endif
