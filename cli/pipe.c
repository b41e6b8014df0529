/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "pipe.h"
#include "input.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_MAX (1 << 20)

int piper_init(struct piper *p, int fd, size_t block, const char *recend,
               const char *recstart)
{
    *p = (struct piper){ .fd = fd, .block = block ? block : 1 };
    if (recend && *recend) {
        p->recend = recend;
        p->recend_len = strlen(recend);
    }
    if (recstart && *recstart) {
        p->recstart = recstart;
        p->recstart_len = strlen(recstart);
    }
    if (!p->recend && !p->recstart) {
        p->recend = "\n";
        p->recend_len = 1;
    }
    if (p->recend_len + p->recstart_len >= sizeof p->pat)
        return -EINVAL;
    if (p->recend)
        memcpy(p->pat, p->recend, p->recend_len);
    if (p->recstart)
        memcpy(p->pat + p->recend_len, p->recstart, p->recstart_len);
    p->pat_len = p->recend_len + p->recstart_len;
    return 0;
}

/* The last place i <= n where a block may end (after a record end, before
 * a record start, or between both; the record start may reach past n,
 * up to avail), or 0 for none. */
static size_t last_cut(const struct piper *p, const char *buf, size_t n, size_t avail)
{
    size_t e = p->recend_len, s = p->recstart_len, i;

    if (n == 0)
        return 0;
    if (e == 1 && !s) {
        const char *nl = memrchr(buf, p->recend[0], n);

        return nl ? (size_t)(nl - buf) + 1 : 0;
    }
    for (i = n; i > 0; i--) {
        /* A cut at i: recend just before, recstart just after. */
        if (e && (i < e || memcmp(buf + i - e, p->recend, e)))
            continue;
        if (s && (i + s > avail || memcmp(buf + i, p->recstart, s)))
            continue;
        return i;
    }
    return 0;
}

/* The first place after from where a block may end, or 0; what was
 * searched before is not searched again (a long record arriving in
 * pieces is scanned once). */
static size_t first_cut(struct piper *p, size_t from)
{
    size_t at = p->scanned > from ? p->scanned : from, back = p->recend_len;
    const char *m;

    /* A cut at i means the pattern at i - recend_len. */
    at = at >= back ? at - back + 1 : 0;
    while (at + p->pat_len <= p->len &&
           (m = memmem(p->buf + at, p->len - at, p->pat, p->pat_len))) {
        size_t cut = (size_t)(m - p->buf) + back;

        if (cut > from)
            return cut;
        at = (size_t)(m - p->buf) + 1;
    }
    p->scanned = p->len >= p->pat_len ? p->len - p->pat_len + back : from;
    return 0;
}

/* One read when it cannot block: 0 (read, or end of file), -EAGAIN. */
static int fill(struct piper *p, size_t want)
{
    long n;
    char *b;
    int r;

    if ((r = input_ready(p->fd)) < 0)
        return r;
    if (want > READ_MAX)
        want = READ_MAX;
    if (want < 65536)
        want = 65536;
    if (p->cap - p->len < want) {
        size_t cap = p->cap ? p->cap : want;

        while (cap - p->len < want)
            cap *= 2;
        if (!(b = realloc(p->buf, cap)))
            return -ENOMEM;
        p->buf = b;
        p->cap = cap;
    }
    n = input_read(p->fd, p->buf + p->len, want);
    if (n < 0)
        return (int)n;
    if (n == 0)
        p->eof = true;
    p->len += (size_t)n;
    return 0;
}

int piper_next(struct piper *p, char **ret, size_t *ret_len)
{
    /* A record start at the block's end is seen only with its bytes. */
    size_t need = p->block + (p->recstart_len ? p->recstart_len - 1 : 0), cut;
    char *out;
    int r;

    for (;;) {
        cut = 0;
        if (p->len >= need || (p->eof && p->len >= p->block)) {
            /* The block is searched once; then only what comes after. */
            if (!p->no_cut_in_block) {
                cut = last_cut(p, p->buf, p->block, p->len);
                p->no_cut_in_block = cut == 0;
            }
            /* A record longer than the block: the block is that record. */
            if (!cut && p->len > p->block)
                cut = first_cut(p, p->block);
        }
        if (!cut && p->eof)
            cut = p->len;
        if (cut)
            break;
        if (p->eof)
            return 0;
        r = fill(p, need > p->len ? need - p->len : p->block);
        if (r < 0)
            return r;
    }
    if (!(out = malloc(cut)))
        return -ENOMEM;
    memcpy(out, p->buf, cut);
    memmove(p->buf, p->buf + cut, p->len - cut);
    p->len -= cut;
    p->scanned = 0;
    p->no_cut_in_block = false;
    *ret = out;
    *ret_len = cut;
    return 1;
}

void piper_free(struct piper *p)
{
    free(p->buf);
    p->buf = NULL;
}
