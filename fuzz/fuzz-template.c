/* SPDX-License-Identifier: MIT */
/*
 * template_expand against a plain reference: the input is split at NUL
 * bytes into template words, the last piece being the input line; every
 * word is expanded left to right ("{}" -> input, "{#}" -> job number),
 * and the input is appended when no word held "{}".
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"

/* The reference: builds into a fixed buffer, one character at a time. */
static char *expand_ref(const char *w, const char *input, const char *num,
                        bool *used)
{
    size_t cap = strlen(w) * (strlen(input) + strlen(num) + 1) + 1, n = 0;
    char *o = malloc(cap);

    assert(o);
    while (*w) {
        if (w[0] == '{' && w[1] == '}') {
            strcpy(o + n, input);
            n += strlen(input);
            w += 2;
            *used = true;
        } else if (w[0] == '{' && w[1] == '#' && w[2] == '}') {
            strcpy(o + n, num);
            n += strlen(num);
            w += 3;
        } else {
            o[n++] = *w++;
        }
    }
    o[n] = '\0';
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *words[64], **argv, num[32], *ref;
    unsigned long seq;
    size_t n = 0, i, off = 0;
    bool used = false;
    int r;

    assert(buf);
    if (size < 2) {
        free(buf);
        return 0;
    }
    seq = data[0] * 257ul + data[1];
    memcpy(buf, data + 2, size - 2);
    buf[size - 2] = '\0';
    /* Words at NUL bytes; the last piece is the input line. */
    while (n < 64) {
        words[n++] = buf + off;
        off += strlen(buf + off) + 1;
        if (off >= size - 1)
            break;
    }
    if (n < 2) {
        assert(template_expand(words, 0, words[0], seq, &argv) == -EINVAL);
        free(buf);
        return 0;
    }
    r = template_expand(words, n - 1, words[n - 1], seq, &argv);
    assert(r == 0);
    snprintf(num, sizeof num, "%lu", seq);
    for (i = 0; i < n - 1; i++) {
        ref = expand_ref(words[i], words[n - 1], num, &used);
        assert(argv[i] && strcmp(argv[i], ref) == 0);
        free(ref);
    }
    if (used) {
        assert(argv[n - 1] == NULL);
    } else {
        assert(argv[n - 1] && strcmp(argv[n - 1], words[n - 1]) == 0);
        assert(argv[n] == NULL);
    }
    template_free(argv);
    free(buf);
    return 0;
}
