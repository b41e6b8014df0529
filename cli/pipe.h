/* SPDX-License-Identifier: MIT */
/*
 * --pipe of `zmp parallel`: standard input cut into blocks of whole
 * records, each the stdin of one job.  As GNU parallel: a block is what
 * fits in --block bytes, cut after the last record end (--recend,
 * default "\n") in it, or before the last record start (--recstart),
 * or at the last place where the two meet when both are given; a record
 * longer than a block makes a longer block.  Read as it comes, never
 * blocking (poll first), like the line inputs.
 */
#ifndef ZMP_CLI_PIPE_H
#define ZMP_CLI_PIPE_H

#include <stdbool.h>
#include <stddef.h>

struct piper {
    int fd;
    size_t block;
    const char *recend, *recstart;  /* NULL or "": not used */
    size_t recend_len, recstart_len;
    char pat[256];          /* recend then recstart: where a cut goes */
    size_t pat_len;
    char *buf;
    size_t len, cap;
    size_t scanned;         /* past the block, known to hold no cut */
    bool no_cut_in_block;   /* the first block's bytes hold none */
    bool eof;
};

/* 0, or -EINVAL when recend and recstart are longer than 255 bytes. */
int piper_init(struct piper *p, int fd, size_t block, const char *recend,
               const char *recstart);

/*
 * The next block: 1 with *ret (malloc'd, the caller's) and *ret_len; 0 at
 * the end; -EAGAIN when no whole block is there yet (wait for p->fd); or
 * a negative errno.
 */
int piper_next(struct piper *p, char **ret, size_t *ret_len);

void piper_free(struct piper *p);

#endif
