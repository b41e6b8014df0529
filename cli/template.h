/* SPDX-License-Identifier: MIT */
/*
 * Command templates of `zmp parallel`: the words of COMMAND with GNU
 * parallel's replacement strings, parsed once, expanded once per job.
 *
 *   {}    every input value of the job     {.}   ... without its extension
 *   {/}   ... its basename                 {//}  ... its dirname
 *   {/.}  ... basename without extension   {#}   the job's number (from 1)
 *   {%}   the job slot (1 to -j)           {N}   the Nth value only, also
 *                                                {N.} {N/} {N//} {N/.}
 *
 * -I STR replaces the string "{}" (the others stay).  When the command
 * holds no replacement string at all, the values are appended as more
 * arguments.
 *
 * Without a shell (the default) each template word gives argv words:
 * a value is always one whole argument, never split at blanks; a job of
 * several values (several sources, --colsep, -N, -m) makes {} several
 * arguments, text before it going to the first and text after it to the
 * last, as GNU parallel's shell would split them; with -X (context) the
 * word is repeated for each value instead.  With --shell the words are
 * joined by blanks into one command line for /bin/sh -c, every value
 * quoted for the shell, so that no input can run as code.
 */
#ifndef ZMP_CLI_TEMPLATE_H
#define ZMP_CLI_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

enum tmpl_transform { TR_NONE, TR_NOEXT, TR_BASE, TR_DIR, TR_BASE_NOEXT };
enum tmpl_seg_kind { SEG_TEXT, SEG_ALL, SEG_POS, SEG_SEQ, SEG_SLOT };

struct tmpl_seg {
    enum tmpl_seg_kind kind;
    enum tmpl_transform tr;
    size_t pos;             /* SEG_POS: from 1 */
    const char *text;       /* SEG_TEXT: points into the word */
    size_t len;
};

struct tmpl_word {
    struct tmpl_seg *segs;
    size_t nsegs;
    bool has_all;           /* holds {} (or its -I string) */
    const char *sep;        /* --shell: the blanks before it (NULL: one
                               blank, none before the first word) */
    size_t seplen;
};

struct template {
    struct tmpl_word *words;
    size_t n;
    bool any;               /* a replacement string somewhere: no append */
    bool shell;             /* --shell: /bin/sh -c "joined words" */
    bool context;           /* -X: a word with {} repeated per value */
    bool raw;               /* no COMMAND: the values are the command line,
                               unquoted (for /bin/sh -c) */
    bool uses_slot;         /* {%} somewhere */
};

/* What one job fills the template with. */
struct job_values {
    char *const *v;         /* the values, in order */
    size_t n;
    unsigned long long seq; /* {#} */
    unsigned slot;          /* {%} */
};

/*
 * Parse words[0..n-1] (they must outlive t).  replace: -I's string, or
 * NULL for "{}".  n 0 makes the template that runs each job's values as
 * a command line, with /bin/sh -c.  Returns 0, -ENOMEM, or -EINVAL with
 * a message in err (an unknown replacement string such as {..}, {+/} or
 * {=perl=}, a position 0).
 */
int template_parse(struct template *t, char *const *words, size_t n,
                   const char *replace, bool shell, bool context, char *err,
                   size_t errlen);
void template_release(struct template *t);

/*
 * The NULL-terminated argv of one job (with --shell: /bin/sh -c LINE),
 * malloc'd, free with template_free.  *ret_bytes (may be NULL) gets the
 * bytes the words take on an exec's stack (each word and its pointer).
 * Returns 0 or -ENOMEM.
 */
int template_expand(const struct template *t, const struct job_values *jv,
                    char ***ret_argv, size_t *ret_bytes);
void template_free(char **argv);

/* s quoted for a POSIX shell as GNU parallel quotes it: unchanged when it
 * is only letters, digits and -_.+/, else in single quotes ('' when
 * empty).  malloc'd, or NULL. */
char *shell_quote(const char *s);

/* The text of a transform of value v, malloc'd, or NULL. */
char *template_transform(const char *v, enum tmpl_transform tr);

#endif
