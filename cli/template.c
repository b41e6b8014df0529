/* SPDX-License-Identifier: MIT */
#include "template.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One word with its placeholders replaced; *used tells whether "{}" was. */
static char *expand_word(const char *w, const char *input, const char *num,
                         bool *used)
{
    size_t len = 0, ni = strlen(input), nn = strlen(num);
    const char *s;
    char *out, *o;

    for (s = w; *s;) {
        if (!strncmp(s, "{}", 2)) {
            len += ni;
            s += 2;
        } else if (!strncmp(s, "{#}", 3)) {
            len += nn;
            s += 3;
        } else {
            len++;
            s++;
        }
    }
    out = o = malloc(len + 1);
    if (!out)
        return NULL;
    for (s = w; *s;) {
        if (!strncmp(s, "{}", 2)) {
            memcpy(o, input, ni);
            o += ni;
            s += 2;
            *used = true;
        } else if (!strncmp(s, "{#}", 3)) {
            memcpy(o, num, nn);
            o += nn;
            s += 3;
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    return out;
}

int template_expand(char *const *tmpl, size_t n, const char *input,
                    unsigned long seq, char ***ret_argv)
{
    char num[24], **argv;
    bool used = false;
    size_t i;

    if (n == 0)
        return -EINVAL;
    snprintf(num, sizeof num, "%lu", seq);
    argv = calloc(n + 2, sizeof *argv);
    if (!argv)
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        argv[i] = expand_word(tmpl[i], input, num, &used);
        if (!argv[i])
            goto fail;
    }
    if (!used) {
        argv[n] = strdup(input);
        if (!argv[n])
            goto fail;
    }
    *ret_argv = argv;
    return 0;
fail:
    template_free(argv);
    return -ENOMEM;
}

void template_free(char **argv)
{
    size_t i;

    for (i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}
