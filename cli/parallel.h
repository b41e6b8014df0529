/* SPDX-License-Identifier: MIT */
#ifndef ZMP_CLI_PARALLEL_H
#define ZMP_CLI_PARALLEL_H

#include <stdbool.h>
#include <stddef.h>

#include "output.h"

#define EXIT_USAGE 2
#define EXIT_ERROR 255   /* GNU's "other error": a --shard that cannot be worked
                            out, the jobs' output that cannot be written */
#define PARALLEL_HELP (-1)

/* How -j reads: N, +N, -N, N% (see parallel_jobs). */
enum jobs_form { JOBS_DEFAULT, JOBS_EXACT, JOBS_MORE, JOBS_FEWER, JOBS_PERCENT };

/* What the command line of `zmp parallel` asks for. */
struct parallel_config {
    unsigned long jobs;        /* the N of -j, at most 1000000 */
    enum jobs_form jobs_form;
    bool keep_order, halt, progress;
    const char *arg_file, *results, *cgroup;
    double timeout;            /* seconds, 0: none */
    unsigned long long output_cap;
    char **tmpl;               /* COMMAND [ARG...] */
    size_t ntmpl;
    char **args;               /* INPUT... after :::, when have_args */
    size_t nargs;
    bool have_args;
    unsigned long long shard_k, shard_n;  /* --shard K/N; 0/1 without */
    bool resume, resume_failed;
    /* How the jobs' output is printed (output.c). */
    enum output_mode output_mode;      /* --group, --line-buffer, -u */
    bool tag;                          /* --tag */
    char *tagstring;                   /* --tagstring STR, or NULL */
    unsigned long long buffer_size;    /* --buffer-size, 0: the default */
    unsigned long long buffer_total;   /* --buffer-total, 0: the default */
    const char *tmpdir;                /* --tmpdir DIR, or NULL */
};

/*
 * Parse `zmp parallel`'s arguments (argv[0] is "parallel"): 0, or
 * EXIT_USAGE after a message on stderr (also when --help's text cannot be
 * written), or PARALLEL_HELP after the usage text on stdout.  cfg points
 * into argv.
 */
int parallel_parse(int argc, char **argv, struct parallel_config *cfg);

/* How many jobs at once -j asks for, given the CPU count: at least 1;
 * UINT_MAX for -j 0, no limit but the system's. */
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
