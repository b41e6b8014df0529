/* SPDX-License-Identifier: MIT */
/*
 * Command templates and shell quoting.  The input (after two bytes of
 * flags and the job number) is split at NUL bytes into template words and
 * values, at the first empty piece.  Checked:
 *  - template_parse accepts or refuses (-EINVAL with a message), never
 *    crashes; template_expand then always succeeds;
 *  - without a replacement string and without a shell, argv is the words
 *    then the values, each whole;
 *  - with --shell, argv is /bin/sh -c LINE;
 *  - shell_quote's output, read back as a POSIX shell reads one word
 *    (single quotes, "'" and plain characters), is the input again.
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"

/* One shell word of quoted text back to what it stands for, or NULL
 * when it holds anything but quoted parts and safe plain characters. */
static char *unquote(const char *q)
{
    char *out = malloc(strlen(q) + 1), *o = out;

    assert(out);
    while (*q) {
        if (*q == '\'') {
            const char *end = strchr(q + 1, '\'');

            assert(end);
            memcpy(o, q + 1, (size_t)(end - q - 1));
            o += end - q - 1;
            q = end + 1;
        } else if (!strncmp(q, "\"'\"", 3)) {
            *o++ = '\'';
            q += 3;
        } else {
            assert(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                          "0123456789-_.+/", *q));
            *o++ = *q++;
        }
    }
    *o = '\0';
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf, *pieces[64], **argv, err[256], *q, *back;
    size_t n = 0, nwords = 0, off = 0, i;
    struct template t;
    struct job_values jv;
    bool shell, context, plain = true;
    int r;

    if (size < 3)
        return 0;
    shell = data[0] & 1;
    context = data[0] & 2;
    jv.seq = data[1];
    jv.slot = data[1] % 7 + 1;
    buf = malloc(size - 1);
    assert(buf);
    memcpy(buf, data + 2, size - 2);
    buf[size - 2] = '\0';
    while (n < 64 && off <= size - 2) {
        pieces[n++] = buf + off;
        off += strlen(buf + off) + 1;
    }
    for (i = 0; i < n; i++) {
        if (!*pieces[i])
            break;
        nwords++;
        plain &= strchr(pieces[i], '{') == NULL;
    }
    jv.v = nwords < n ? pieces + nwords + 1 : pieces + n;
    jv.n = nwords < n ? n - nwords - 1 : 0;

    q = shell_quote(pieces[0]);
    assert(q);
    back = unquote(q);
    assert(strcmp(back, pieces[0]) == 0);
    free(back);
    free(q);

    r = template_parse(&t, pieces, nwords, NULL, shell, context, err, sizeof err);
    assert(r == 0 || (r == -EINVAL && err[0]));
    if (r == 0) {
        assert(template_expand(&t, &jv, &argv, NULL) == 0);
        if (shell || nwords == 0) {
            assert(!strcmp(argv[0], "/bin/sh") && !strcmp(argv[1], "-c") && argv[2] &&
                   !argv[3]);
        } else if (plain) {
            for (i = 0; i < nwords; i++)
                assert(!strcmp(argv[i], pieces[i]));
            for (i = 0; i < jv.n; i++)
                assert(!strcmp(argv[nwords + i], jv.v[i]));
            assert(argv[nwords + jv.n] == NULL);
        }
        template_free(argv);
        template_release(&t);
    }
    free(buf);
    return 0;
}
