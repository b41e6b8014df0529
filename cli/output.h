/* SPDX-License-Identifier: MIT */
/* The jobs' output of `zmp parallel` on its way to stdout and stderr. */
#ifndef ZMP_CLI_OUTPUT_H
#define ZMP_CLI_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>

enum output_mode {
    OUTPUT_GROUP,    /* a job's output together (--group, the default) */
    OUTPUT_LINES,    /* whole lines, of any job (--line-buffer) */
    OUTPUT_UNGROUP,  /* bytes out as they come (-u) */
};

#define OUTPUT_JOB_MEM_DEFAULT   (8ULL << 20)    /* --buffer-size */
#define OUTPUT_TOTAL_MEM_DEFAULT (256ULL << 20)  /* --buffer-total */

struct output_config {
    enum output_mode mode;
    bool keep_order;        /* -k: jobs printed in the order they were added */
    size_t job_mem;         /* bytes a waiting job keeps in memory (0: default) */
    size_t total_mem;       /* ... all waiting jobs together (0: default) */
    const char *tmpdir;     /* where spilled output goes (NULL: $TMPDIR, /tmp) */
    int fd[2];              /* where stdout and stderr go: normally 1 and 2 */
};

struct output;
struct output_job;

/* 0, or -ENOMEM. */
int output_new(const struct output_config *cfg, struct output **ret);
/* Frees what is left (jobs never ended: their output is dropped). */
void output_free(struct output *o);

/*
 * A new job, after those added before it (the order -k prints in).  Every
 * line of its output gets prefix in front (NULL or "": none; -u never).
 * With hold, nothing of it is printed until output_job_release(): its
 * output is kept whole and untagged, in memory and then in a temporary
 * file as any waiting output (for --results, which records it, and
 * --retries, which may drop it).  Returns 0 or -ENOMEM.
 */
int output_job_new(struct output *o, const char *prefix, bool hold, struct output_job **ret);

/*
 * A zmp_output_fn (arg: the output_job): len bytes the job wrote to fd 1
 * or 2.  They go out now, or wait in memory, then in a temporary file.
 * Any thread; never calls the library.  Returns 0, or the run's output
 * error (negative errno) once there is one, to have the job killed.
 */
int output_write(void *job, int fd, const void *data, size_t len);

/* Bytes of zmp's own about the job (a message), as if the job wrote them
 * to fd, but never tagged. */
void output_note(struct output_job *j, int fd, const char *text);

/* A held job: drop what it wrote so far (a try that will be run again). */
void output_job_drop(struct output_job *j);

/*
 * A held job: hand what it wrote to fd (1 or 2) so far to fn, in order and
 * in pieces, without using it up.  Every job's output_write() waits
 * meanwhile (a slow fn holds up the jobs, as a slow stdout does).  Returns 0, fn's nonzero return, or a
 * negative errno (a temporary file could not be read: also the run's
 * output error).
 */
int output_job_read(struct output_job *j, int fd, int (*fn)(void *arg, const char *data,
                                                           size_t len), void *arg);

/* A held job is held no more: what it kept goes on as if written now
 * (stdout's first, then stderr's), and what it writes from now on too. */
void output_job_release(struct output_job *j);

/* The job has ended: its output is complete.  What can be printed now is;
 * the job belongs to o from here on (freed once printed). */
void output_job_end(struct output_job *j);

/*
 * The first output error: 0, or a negative errno with *ret_what naming
 * what failed ("standard output", "standard error", or "a temporary file
 * in DIR"); *ret_fd is 1 or 2 for the standard streams, else -1.  From
 * then on nothing more is written.
 */
int output_error(struct output *o, const char **ret_what, int *ret_fd);


#endif
