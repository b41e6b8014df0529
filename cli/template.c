/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "template.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- parsing ----------------------------------------------------------- */

static int add_seg(struct tmpl_word *w, struct tmpl_seg s)
{
    struct tmpl_seg *p;

    /* Merge text runs: "a{b" is one segment, not three. */
    if (s.kind == SEG_TEXT && w->nsegs && w->segs[w->nsegs - 1].kind == SEG_TEXT &&
        w->segs[w->nsegs - 1].text + w->segs[w->nsegs - 1].len == s.text) {
        w->segs[w->nsegs - 1].len += s.len;
        return 0;
    }
    p = realloc(w->segs, (w->nsegs + 1) * sizeof *p);
    if (!p)
        return -ENOMEM;
    w->segs = p;
    w->segs[w->nsegs++] = s;
    return 0;
}

/* After "{" (and the digits of a position): a transform and "}".  Returns
 * the characters taken, or 0 when it is not one. */
static size_t transform_at(const char *s, enum tmpl_transform *tr)
{
    static const struct { const char *text; enum tmpl_transform tr; } forms[] = {
        { "}", TR_NONE }, { ".}", TR_NOEXT }, { "/}", TR_BASE },
        { "//}", TR_DIR }, { "/.}", TR_BASE_NOEXT },
    };
    size_t i, n;

    for (i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        n = strlen(forms[i].text);
        if (!strncmp(s, forms[i].text, n)) {
            *tr = forms[i].tr;
            return n;
        }
    }
    return 0;
}

/* GNU parallel's other replacement strings, which zmp does not have:
 * "{", digits, maybe "+", then only . / # % before "}" ({..}, {+/}, {##},
 * {3..}), and {=perl=}.  Such a word is refused rather than run with the
 * string left in.  After a "$" it is the shell's (${#0}, ${1%.*}). */
static size_t unknown_at(const char *w, const char *s)
{
    size_t n = strspn(s + 1, "0123456789");

    if (s > w && s[-1] == '$')
        return 0;
    n += s[1 + n] == '+';
    if (strspn(s + 1 + n, "./#%") > 0) {
        n += strspn(s + 1 + n, "./#%");
        if (s[1 + n] == '}')
            return n + 2;
    }
    if (s[1] == '=' && strstr(s + 2, "=}"))
        return (size_t)(strstr(s + 2, "=}") - s) + 2;
    return 0;
}

static int parse_word(struct template *t, struct tmpl_word *w, const char *s,
                      const char *replace, char *err, size_t errlen)
{
    size_t rlen = replace ? strlen(replace) : 0, n;
    struct tmpl_seg seg;
    const char *p = s;
    int e;

    while (*p) {
        seg = (struct tmpl_seg){ .kind = SEG_TEXT, .text = p, .len = 1 };
        if (replace && rlen && !strncmp(p, replace, rlen)) {
            seg = (struct tmpl_seg){ .kind = SEG_ALL, .len = rlen };
        } else if (*p == '{') {
            const char *d = p + 1;
            size_t digits = strspn(d, "0123456789");

            if (!strncmp(d, "#}", 2)) {
                seg = (struct tmpl_seg){ .kind = SEG_SEQ, .len = 3 };
            } else if (!strncmp(d, "%}", 2)) {
                seg = (struct tmpl_seg){ .kind = SEG_SLOT, .len = 3 };
            } else if ((n = transform_at(d + digits, &seg.tr)) &&
                       !(replace && digits == 0 && seg.tr == TR_NONE)) {
                if (digits == 0) {
                    seg.kind = SEG_ALL;
                } else {
                    char *end;
                    unsigned long pos = strtoul(d, &end, 10);

                    if (pos == 0 || digits > 9) {
                        snprintf(err, errlen, "bad replacement string %.*s: positions "
                                 "count from 1", (int)(digits + n + 1), p);
                        return -EINVAL;
                    }
                    seg.kind = SEG_POS;
                    seg.pos = pos;
                }
                seg.len = 1 + digits + n;
            } else if ((n = unknown_at(s, p))) {
                snprintf(err, errlen, "unknown replacement string %.*s (zmp has {} {.} "
                         "{/} {//} {/.} {#} {%%} and {N} {N.} {N/} {N//} {N/.})",
                         (int)(n > 60 ? 60 : n), p);
                return -EINVAL;
            }
        }
        if (seg.kind != SEG_TEXT) {
            t->any = true;
            w->has_all |= seg.kind == SEG_ALL;
            t->uses_slot |= seg.kind == SEG_SLOT;
            n = seg.len;
            seg.text = NULL;
            seg.len = 0;
        } else {
            n = 1;
        }
        if ((e = add_seg(w, seg)) < 0)
            return e;
        p += n;
    }
    return 0;
}

/*
 * --shell with -X: the context of {} is the blank-separated word of the
 * command line around it, as GNU parallel's shell sees it, not the whole
 * argument given (which may hold a whole command line): split w at its
 * blanks into *out, each part after the first keeping its blanks.
 */
static int split_at_blanks(const struct tmpl_word *w, struct tmpl_word **out,
                           size_t *nout)
{
    struct tmpl_word *v, cur = { 0 };
    size_t i, k, run;
    int e;

    for (i = 0; i < w->nsegs; i++) {
        const struct tmpl_seg *s = &w->segs[i];

        if (s->kind != SEG_TEXT) {
            if ((e = add_seg(&cur, *s)) < 0)
                goto fail;
            cur.has_all |= s->kind == SEG_ALL;
            continue;
        }
        for (k = 0; k < s->len;) {
            run = 0;
            while (k + run < s->len && (s->text[k + run] == ' ' || s->text[k + run] == '\t'))
                run++;
            if (run && cur.nsegs) {
                if (!(v = realloc(*out, (*nout + 1) * sizeof *v))) {
                    e = -ENOMEM;
                    goto fail;
                }
                *out = v;
                (*out)[(*nout)++] = cur;
                cur = (struct tmpl_word){ .sep = s->text + k, .seplen = run };
                k += run;
                continue;
            }
            k += run;
            for (run = 0; k + run < s->len && s->text[k + run] != ' ' &&
                          s->text[k + run] != '\t';
                 run++)
                ;
            if (run && (e = add_seg(&cur, (struct tmpl_seg){ .kind = SEG_TEXT,
                                                              .text = s->text + k,
                                                              .len = run })) < 0)
                goto fail;
            k += run;
        }
    }
    if (!(v = realloc(*out, (*nout + 1) * sizeof *v))) {
        e = -ENOMEM;
        goto fail;
    }
    *out = v;
    (*out)[(*nout)++] = cur;
    return 0;
fail:
    free(cur.segs);
    return e;
}

int template_parse(struct template *t, char *const *words, size_t n,
                   const char *replace, bool shell, bool context, char *err,
                   size_t errlen)
{
    size_t i;
    int e;

    *t = (struct template){ .shell = shell || n == 0, .context = context, .raw = n == 0 };
    if (n == 0)
        return 0;
    if (replace && !*replace) {
        snprintf(err, errlen, "-I: the replacement string is empty");
        return -EINVAL;
    }
    t->words = calloc(n, sizeof *t->words);
    if (!t->words)
        return -ENOMEM;
    t->n = n;
    for (i = 0; i < n; i++) {
        if ((e = parse_word(t, &t->words[i], words[i], replace, err, errlen)) < 0) {
            template_release(t);
            return e;
        }
    }
    if (shell && context) {
        struct tmpl_word *out = NULL;
        size_t nout = 0, first;

        for (i = 0; i < t->n; i++) {
            first = nout;
            if ((e = split_at_blanks(&t->words[i], &out, &nout)) < 0) {
                for (i = 0; i < nout; i++)
                    free(out[i].segs);
                free(out);
                template_release(t);
                return e;
            }
            out[first].sep = NULL;  /* one blank between given words */
        }
        template_release(t);
        t->words = out;
        t->n = nout;
    }
    return 0;
}

void template_release(struct template *t)
{
    size_t i;

    for (i = 0; t->words && i < t->n; i++)
        free(t->words[i].segs);
    free(t->words);
    t->words = NULL;
    t->n = 0;
}

/* --- values ------------------------------------------------------------ */

char *template_transform(const char *v, enum tmpl_transform tr)
{
    const char *base = strrchr(v, '/'), *dot;
    char *s, *d;

    switch (tr) {
    case TR_NONE:
        return strdup(v);
    case TR_DIR:
        /* dirname(1): "/x/" -> "/", "a/b/" -> "a", "f" and "" -> "." */
        if (!(s = strdup(v)))
            return NULL;
        d = strdup(dirname(s));
        free(s);
        return d;
    case TR_BASE:
        return strdup(base ? base + 1 : v);
    case TR_BASE_NOEXT:
        v = base ? base + 1 : v;
        /* fall through */
    case TR_NOEXT:
        /* The last dot with no slash after it, and what follows: ".bashrc"
         * -> "", "a." -> "a", "a.d/f" unchanged (as GNU parallel). */
        dot = strrchr(v, '.');
        if (dot && strchr(dot, '/'))
            dot = NULL;
        return strndup(v, dot ? (size_t)(dot - v) : strlen(v));
    }
    return NULL;
}

char *shell_quote(const char *s)
{
    size_t n = 2, i;
    char *q, *o;

    if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789-_.+/") == strlen(s))
        return strdup(s);
    for (i = 0; s[i]; i++)
        n += s[i] == '\'' ? 5 : 1;
    q = o = malloc(n + 1);
    if (!q)
        return NULL;
    /* 'it'"'"'s': close the quote, a double-quoted ', open again. */
    *o++ = '\'';
    for (i = 0; s[i]; i++) {
        if (s[i] == '\'') {
            memcpy(o, "'\"'\"'", 5);
            o += 5;
        } else {
            *o++ = s[i];
        }
    }
    *o++ = '\'';
    *o = '\0';
    /* As GNU parallel: no '' left at either end ("'"'"'a'", not
     * "''"'"'a'"), unless that is all there is. */
    n = (size_t)(o - q);
    if (n > 2 && !strncmp(q, "''", 2)) {
        memmove(q, q + 2, n - 1);
        n -= 2;
    }
    if (n > 2 && !strcmp(q + n - 2, "''"))
        q[n - 2] = '\0';
    return q;
}

/* --- expansion --------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    char *p;
    size_t cap;

    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (!(p = realloc(b->p, cap))) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* A value as it goes into the command: transformed, and quoted with
 * --shell. */
static void sb_value(struct sbuf *b, const char *v, enum tmpl_transform tr, bool quote)
{
    char *s = tr == TR_NONE ? (char *)v : template_transform(v, tr), *q;

    if (!s) {
        b->failed = true;
        return;
    }
    q = quote ? shell_quote(s) : s;
    if (!q)
        b->failed = true;
    else
        sb_add(b, q, strlen(q));
    if (q && q != s)
        free(q);
    if (s != v)
        free(s);
}

static void sb_number(struct sbuf *b, unsigned long long n)
{
    char num[24];

    sb_add(b, num, (size_t)snprintf(num, sizeof num, "%llu", n));
}

struct argvb {
    char **v;
    size_t n, cap, bytes;
    bool failed;
};

/* Take b's text as the next argv word. */
static void push(struct argvb *a, struct sbuf *b)
{
    char **v;

    if (b->failed || a->failed) {
        a->failed = true;
        free(b->p);
        *b = (struct sbuf){ 0 };
        return;
    }
    if (!b->p)
        sb_add(b, "", 0);
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;

        if (!(v = realloc(a->v, cap * sizeof *v))) {
            a->failed = true;
            free(b->p);
            *b = (struct sbuf){ 0 };
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    a->bytes += b->len + 1 + sizeof(char *);
    a->v[a->n++] = b->p;
    a->v[a->n] = NULL;
    *b = (struct sbuf){ 0 };
}

/*
 * One template word into b.  only: the value {} stands for in this
 * pass (-X), or -1 for all of them.  Without --shell, a{}b with the
 * values x, y gives the words "ax" and "yb" (split: each value break
 * starts the next argv word); with --shell, the text "a'x' 'y'b".
 */
static void expand_word(const struct template *t, const struct tmpl_word *w,
                        const struct job_values *jv, long only, struct sbuf *b,
                        struct argvb *a)
{
    const struct tmpl_seg *s;
    size_t i, k;

    for (i = 0; i < w->nsegs; i++) {
        s = &w->segs[i];
        switch (s->kind) {
        case SEG_TEXT:
            sb_add(b, s->text, s->len);
            break;
        case SEG_SEQ:
            sb_number(b, jv->seq);
            break;
        case SEG_SLOT:
            sb_number(b, jv->slot);
            break;
        case SEG_POS:
            if (s->pos <= jv->n)
                sb_value(b, jv->v[s->pos - 1], s->tr, t->shell);
            else if (t->shell)
                sb_add(b, "''", 2);
            break;
        case SEG_ALL:
            if (only >= 0) {
                sb_value(b, jv->v[only], s->tr, t->shell);
                break;
            }
            for (k = 0; k < jv->n; k++) {
                if (k > 0 && t->shell)
                    sb_add(b, " ", 1);
                else if (k > 0)
                    push(a, b);
                sb_value(b, jv->v[k], s->tr, t->shell);
            }
            break;
        }
    }
}

int template_expand(const struct template *t, const struct job_values *jv,
                    char ***ret_argv, size_t *ret_bytes)
{
    struct argvb a = { 0 };
    struct sbuf b = { 0 };
    size_t i, k, reps;

    if (t->shell) {
        static const char *const sh[] = { "/bin/sh", "-c" };

        for (i = 0; i < 2; i++) {
            sb_add(&b, sh[i], strlen(sh[i]));
            push(&a, &b);
        }
    }
    for (i = 0; i < t->n; i++) {
        const struct tmpl_word *w = &t->words[i];

        if (t->shell && w->sep)
            sb_add(&b, w->sep, w->seplen);
        else if (t->shell && i > 0)
            sb_add(&b, " ", 1);
        /* -X: the word once per value (once, empty, with none). */
        reps = t->context && w->has_all && jv->n > 1 ? jv->n : 1;
        for (k = 0; k < reps; k++) {
            if (k > 0 && t->shell)
                sb_add(&b, " ", 1);
            expand_word(t, w, jv, reps > 1 ? (long)k : -1, &b, &a);
            if (!t->shell)
                push(&a, &b);
        }
    }
    if (!t->any) {
        /* No replacement string: the values are more arguments. */
        for (k = 0; k < jv->n; k++) {
            if (t->shell) {
                if (k > 0 || t->n > 0)
                    sb_add(&b, " ", 1);
                sb_value(&b, jv->v[k], TR_NONE, !t->raw);
            } else {
                sb_add(&b, jv->v[k], strlen(jv->v[k]));
                push(&a, &b);
            }
        }
    }
    if (t->shell)
        push(&a, &b);
    if (a.failed || b.failed) {
        free(b.p);
        template_free(a.v);
        return -ENOMEM;
    }
    *ret_argv = a.v;
    if (ret_bytes)
        *ret_bytes = a.bytes;
    return 0;
}

void template_free(char **argv)
{
    size_t i;

    for (i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}
