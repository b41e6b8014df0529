/* SPDX-License-Identifier: MIT */
#include "json.h"

#include <string.h>

/* The length of a UTF-8 sequence that starts with byte c: 1 to 4, or 0
 * where c starts none. */
static size_t lead_len(unsigned c)
{
    return c < 0x80                ? 1
           : c >= 0xc2 && c <= 0xdf ? 2
           : c >= 0xe0 && c <= 0xef ? 3
           : c >= 0xf0 && c <= 0xf4 ? 4
                                    : 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = lead_len(s[0]), i;
    unsigned cp;

    if (len <= 1)
        return len;
    cp = s[0] & (0x7f >> len);
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return len;
}

/* s[0, n) starts a sequence that more bytes may make valid UTF-8. */
static bool cut_short(const unsigned char *s, size_t n)
{
    size_t len = lead_len(s[0]), i;

    if (len < 2 || n >= len)
        return false;
    for (i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return false;
    return true;
}

/* Write s[0, n) escaped, but for a sequence cut short at its end unless
 * last: returns how many bytes were written. */
static size_t put_chars(FILE *f, const unsigned char *s, size_t n, bool last)
{
    size_t i = 0, run, k;

    while (i < n) {
        unsigned c;

        /* What passes as it is goes out in one piece. */
        for (run = i; run < n; run += k) {
            c = s[run];
            if (c < 0x80) {
                if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
                    break;
                k = 1;
            } else if (!(k = utf8_len(s + run, n - run))) {
                break;
            }
        }
        if (run > i) {
            fwrite(s + i, 1, run - i, f);
            i = run;
            continue;
        }
        c = s[i];
        if (c >= 0x80) {
            if (!last && cut_short(s + i, n - i))
                break;
            fprintf(f, "\\udc%02x", c);
        } else if (c == '"' || c == '\\') {
            putc('\\', f);
            putc((int)c, f);
        } else if (c == '\n') {
            fputs("\\n", f);
        } else if (c == '\t') {
            fputs("\\t", f);
        } else if (c == '\r') {
            fputs("\\r", f);
        } else {
            fprintf(f, "\\u%04x", c);
        }
        i++;
    }
    return i;
}

void json_string(FILE *f, const char *data, size_t len)
{
    putc('"', f);
    put_chars(f, (const unsigned char *)data, len, true);
    putc('"', f);
}

void json_string_start(FILE *f, struct json_pieces *st)
{
    st->n = 0;
    putc('"', f);
}

void json_string_piece(FILE *f, struct json_pieces *st, const char *data, size_t len)
{
    const unsigned char *s = (const unsigned char *)data;
    size_t used;

    /* A sequence the last piece cut: completed (or found wrong) a byte at
     * a time. */
    while (st->n > 0 && len > 0) {
        st->carry[st->n++] = *s++;
        len--;
        used = put_chars(f, st->carry, st->n, false);
        memmove(st->carry, st->carry + used, st->n - used);
        st->n -= used;
    }
    if (st->n > 0)
        return;
    used = put_chars(f, s, len, false);
    memcpy(st->carry, s + used, len - used);
    st->n = len - used;
}

void json_string_end(FILE *f, struct json_pieces *st)
{
    put_chars(f, st->carry, st->n, true);
    st->n = 0;
    putc('"', f);
}
