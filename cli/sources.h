/* SPDX-License-Identifier: MIT */
/*
 * The input sources of `zmp parallel` and how their values combine, as
 * GNU parallel does it: the words after each :::, the lines (or -0/-d
 * items) of each :::: file and -a file, or standard input when there is
 * no source.  Every combination of one value from each source is one
 * record, the first source's value changing slowest; sources joined by
 * :::+ or ::::+ are linked instead (value i with value i, as long as the
 * shortest), and --link links them all (the shorter ones wrapping
 * around).  Each value may be split at --colsep into columns, trimmed
 * (--trim), skipped when blank (-r); an item equal to -E's string ends
 * its source.
 *
 * The first source is read as it comes when it is alone in its group, so
 * `tail -f log | zmp parallel ...` starts jobs at once; the others are
 * read whole first (every value of theirs is needed for each of its).
 */
#ifndef ZMP_CLI_SOURCES_H
#define ZMP_CLI_SOURCES_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum source_kind { SRC_ARGS, SRC_FILE };

struct source_spec {
    enum source_kind kind;
    char *const *args;      /* SRC_ARGS: the words after ::: */
    size_t nargs;
    const char *path;       /* SRC_FILE: "-" for standard input */
    bool linked;            /* :::+ or ::::+: linked to the source before */
};

struct sources_config {
    const char *delim;      /* what ends an item of a file (NULL: "\n") */
    size_t delim_len;
    const char *eof;        /* -E: an item equal to it ends its source */
    bool skip_empty;        /* -r: blank items are dropped */
    bool trim_left, trim_right;
    const regex_t *colsep;  /* split each item into columns */
    bool link;              /* --link: every source linked, wrapping */
    bool read_all;          /* read everything first (-m, -X) */
    bool stdin_closed;      /* fd 0 was closed when zmp started */
};

struct sources;

/*
 * Open the sources (specs and what they point to must outlive them).
 * Returns 0, -ENOMEM, or a negative errno with a message in err (a
 * file that cannot be opened or read, a closed standard input).
 */
int sources_open(struct sources **ret, const struct source_spec *specs, size_t n,
                 const struct sources_config *cfg, char *err, size_t errlen);

/*
 * The next record: 1 with *ret_vals its values (malloc'd, as is each
 * one: free with values_free) and *ret_n their count; 0 at the end;
 * -EAGAIN when the first source has no whole item yet (wait for
 * sources_wait_fd() to be readable); or a negative errno from a read.
 */
int sources_next(struct sources *s, char ***ret_vals, size_t *ret_n);

/* The fd to wait on after -EAGAIN. */
int sources_wait_fd(const struct sources *s);

/* With read_all: the records not handed out yet. */
uint64_t sources_left(const struct sources *s);

/* Which source failed to read, for the message after an error. */
const char *sources_name(const struct sources *s);

void sources_close(struct sources *s);
void values_free(char **v, size_t n);

#endif
