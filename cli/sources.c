/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "sources.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "input.h"

struct src {
    const struct source_spec *spec;
    struct input in;        /* SRC_FILE */
    int fd;                 /* SRC_FILE, or -1 */
    size_t next_arg;        /* SRC_ARGS: the next word to take */
    bool ended;             /* no more items (end of file, or -E) */
    char **vals;            /* every item, when read whole */
    size_t n, cap;
};

/* Sources linked together, moving as one in the combinations. */
struct group {
    size_t first, count;    /* its sources */
    size_t len;             /* its records */
};

struct sources {
    struct sources_config cfg;
    struct src *src;
    size_t nsrc;
    struct group *grp;
    size_t ngrp;
    size_t *pos;            /* each group's place in the combination */
    bool streaming;         /* source 0 alone in group 0, read as it comes */
    bool need0;             /* streaming: take the next item of source 0 */
    char *cur0;             /* streaming: source 0's current item */
    bool done;
    uint64_t total, handed; /* read_all: records in all, handed out */
    const char *failed;     /* the source a read failed on */
};

void values_free(char **v, size_t n)
{
    size_t i;

    for (i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static bool blank(const char *s)
{
    return s[strspn(s, " \t\n\r\v\f")] == '\0';
}

/*
 * The next item a source keeps: 1 with *ret pointing at it (valid until
 * the next call), 0 once it has ended, -EAGAIN, or a negative errno.
 */
static int take_item(struct sources *s, struct src *src, const char **ret)
{
    const char *item;
    int r;

    for (;;) {
        if (src->ended)
            return 0;
        if (src->spec->kind == SRC_ARGS) {
            if (src->next_arg >= src->spec->nargs) {
                src->ended = true;
                return 0;
            }
            item = src->spec->args[src->next_arg++];
        } else {
            r = input_next(&src->in, &item);
            if (r == 0)
                src->ended = true;
            if (r < 0 && r != -EAGAIN)
                s->failed = src->spec->path;
            if (r <= 0)
                return r;
        }
        if (s->cfg.eof && !strcmp(item, s->cfg.eof)) {
            src->ended = true;
            return 0;
        }
        if (s->cfg.skip_empty && blank(item))
            continue;
        *ret = item;
        return 1;
    }
}

/* Read a source to its end, waiting for it as needed. */
static int read_whole(struct sources *s, struct src *src)
{
    struct pollfd p = { .fd = src->fd, .events = POLLIN };
    const char *item;
    char **v;
    int r;

    for (;;) {
        r = take_item(s, src, &item);
        if (r == -EAGAIN) {
            if (poll(&p, 1, -1) < 0 && errno != EINTR)
                return -errno;
            continue;
        }
        if (r <= 0)
            return r;
        if (src->n == src->cap) {
            size_t cap = src->cap ? src->cap * 2 : 16;

            if (!(v = realloc(src->vals, cap * sizeof *v)))
                return -ENOMEM;
            src->vals = v;
            src->cap = cap;
        }
        if (!(src->vals[src->n] = strdup(item)))
            return -ENOMEM;
        src->n++;
    }
}

static int open_source(struct sources *s, struct src *src, char *err, size_t errlen)
{
    const struct source_spec *sp = src->spec;

    src->fd = -1;
    if (sp->kind == SRC_ARGS)
        return 0;
    if (!strcmp(sp->path, "-")) {
        if (s->cfg.stdin_closed) {
            snprintf(err, errlen, "cannot read standard input: %s", strerror(EBADF));
            return -EBADF;
        }
        src->fd = 0;
    } else if ((src->fd = open(sp->path, O_RDONLY | O_CLOEXEC)) < 0) {
        int e = errno;

        snprintf(err, errlen, "cannot read %s: %s", sp->path, strerror(e));
        return -e;
    }
    input_from_fd(&src->in, src->fd);
    if (s->cfg.delim)
        input_set_delim(&src->in, s->cfg.delim, s->cfg.delim_len);
    return 0;
}

/* Group the sources, and read whole the ones that are not streamed. */
static int arrange(struct sources *s, char *err, size_t errlen)
{
    uint64_t total = 1;
    size_t i, g, m;
    int r;

    if (!(s->grp = calloc(s->nsrc, sizeof *s->grp)) ||
        !(s->pos = calloc(s->nsrc, sizeof *s->pos)))
        return -ENOMEM;
    for (i = 0; i < s->nsrc; i++) {
        if (i > 0 && (s->cfg.link || s->src[i].spec->linked)) {
            s->grp[s->ngrp - 1].count++;
        } else {
            s->grp[s->ngrp].first = i;
            s->grp[s->ngrp++].count = 1;
        }
    }
    s->streaming = !s->cfg.read_all && s->grp[0].count == 1;
    s->need0 = s->streaming;
    for (g = s->streaming ? 1 : 0; g < s->ngrp; g++) {
        struct group *gr = &s->grp[g];

        for (m = gr->first; m < gr->first + gr->count; m++) {
            if ((r = read_whole(s, &s->src[m])) < 0) {
                snprintf(err, errlen, "cannot read %s: %s",
                         s->src[m].spec->kind == SRC_ARGS ? "arguments"
                         : strcmp(s->src[m].spec->path, "-") ? s->src[m].spec->path
                                                              : "standard input",
                         strerror(-r));
                return r;
            }
            /* --link wraps the shorter ones; :::+ stops at the shortest. */
            if (m == gr->first || (s->cfg.link ? s->src[m].n > gr->len
                                               : s->src[m].n < gr->len))
                gr->len = s->src[m].n;
            if (s->src[m].n == 0)
                s->done = true;  /* a combination with nothing is nothing */
        }
        total = gr->len && total > UINT64_MAX / gr->len ? UINT64_MAX : total * gr->len;
    }
    s->total = s->done ? 0 : total;
    return 0;
}

int sources_open(struct sources **ret, const struct source_spec *specs, size_t n,
                 const struct sources_config *cfg, char *err, size_t errlen)
{
    static const struct source_spec std_in = { .kind = SRC_FILE, .path = "-" };
    struct sources *s = calloc(1, sizeof *s);
    size_t i;
    int r = -ENOMEM;

    if (!s)
        return -ENOMEM;
    s->cfg = *cfg;
    if (n == 0) {
        specs = &std_in;
        n = 1;
    }
    if (!(s->src = calloc(n, sizeof *s->src)))
        goto fail;
    for (i = 0; i < n; i++) {
        s->src[i].spec = &specs[i];
        s->src[i].fd = -1;
    }
    s->nsrc = n;
    for (i = 0; i < n; i++) {
        if ((r = open_source(s, &s->src[i], err, errlen)) < 0)
            goto fail;
    }
    if ((r = arrange(s, err, errlen)) < 0)
        goto fail;
    *ret = s;
    return 0;
fail:
    if (r == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    sources_close(s);
    return r;
}

/* --- one record -------------------------------------------------------- */

struct vbuf {
    char **v;
    size_t n, cap;
};

static int add_value(struct vbuf *b, const char *s, size_t len, const struct sources *src)
{
    char **v;

    if (src->cfg.trim_left)
        while (len && strchr(" \t\n\r\v\f", *s)) {
            s++;
            len--;
        }
    if (src->cfg.trim_right)
        while (len && strchr(" \t\n\r\v\f", s[len - 1]))
            len--;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4;

        if (!(v = realloc(b->v, cap * sizeof *v)))
            return -ENOMEM;
        b->v = v;
        b->cap = cap;
    }
    if (!(b->v[b->n] = strndup(s, len)))
        return -ENOMEM;
    b->n++;
    return 0;
}

/* An item as values: its columns with --colsep, else itself. */
static int add_item(struct vbuf *b, const char *item, const struct sources *s)
{
    regmatch_t m;
    const char *p = item;
    int flags = 0, e;

    if (!s->cfg.colsep)
        return add_value(b, item, strlen(item), s);
    /* An empty match (a regex such as " *") splits nothing further. */
    while (*p && regexec(s->cfg.colsep, p, 1, &m, flags) == 0 && m.rm_eo > m.rm_so) {
        if ((e = add_value(b, p, (size_t)m.rm_so, s)) < 0)
            return e;
        p += m.rm_eo;
        flags = REG_NOTBOL;
    }
    return add_value(b, p, strlen(p), s);
}

/* The item of source m at place i of its group. */
static const char *item_at(const struct sources *s, size_t m, size_t i)
{
    const struct src *src = &s->src[m];

    if (s->streaming && m == 0)
        return s->cur0;
    return src->vals[s->cfg.link ? i % src->n : i];
}

/* Move to the next combination: the last group fastest. */
static void advance(struct sources *s)
{
    size_t g = s->ngrp, first = s->streaming ? 1 : 0;

    while (g > first) {
        g--;
        if (++s->pos[g] < s->grp[g].len)
            return;
        s->pos[g] = 0;
    }
    if (s->streaming)
        s->need0 = true;
    else
        s->done = true;
}

int sources_next(struct sources *s, char ***ret_vals, size_t *ret_n)
{
    struct vbuf b = { 0 };
    const char *item;
    size_t g, m;
    int r;

    if (s->done)
        return 0;
    if (s->need0) {
        r = take_item(s, &s->src[0], &item);
        if (r == 0)
            s->done = true;
        if (r <= 0)
            return r;
        free(s->cur0);
        if (!(s->cur0 = strdup(item)))
            return -ENOMEM;
        s->need0 = false;
    }
    for (g = 0; g < s->ngrp; g++) {
        for (m = s->grp[g].first; m < s->grp[g].first + s->grp[g].count; m++) {
            if ((r = add_item(&b, item_at(s, m, s->pos[g]), s)) < 0) {
                values_free(b.v, b.n);
                return r;
            }
        }
    }
    advance(s);
    s->handed++;
    *ret_vals = b.v;
    *ret_n = b.n;
    return 1;
}

int sources_wait_fd(const struct sources *s)
{
    return s->src[0].fd;
}

uint64_t sources_left(const struct sources *s)
{
    return s->total > s->handed ? s->total - s->handed : 0;
}

const char *sources_name(const struct sources *s)
{
    return !s->failed ? "arguments" : strcmp(s->failed, "-") ? s->failed : "standard input";
}

void sources_close(struct sources *s)
{
    size_t i;

    if (!s)
        return;
    for (i = 0; s->src && i < s->nsrc; i++) {
        struct src *src = &s->src[i];

        values_free(src->vals, src->n);
        if (src->spec && src->spec->kind == SRC_FILE)
            input_free(&src->in);
        if (src->fd > 0)
            close(src->fd);
    }
    free(s->src);
    free(s->grp);
    free(s->pos);
    free(s->cur0);
    free(s);
}
