/* SPDX-License-Identifier: MIT */
/*
 * json_string: whatever the bytes, the output is one valid JSON string
 * (only valid UTF-8, no raw control characters, well-formed escapes), and
 * decoding it, \udcXX escapes back to bytes, gives the input back.
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static unsigned hex4(const char *s)
{
    unsigned v = 0;
    int i;

    for (i = 0; i < 4; i++) {
        char c = s[i];

        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            abort();  /* not a hex digit: invalid JSON */
    }
    return v;
}

static size_t put_utf8(unsigned char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Length of a valid UTF-8 sequence at s, or 0 (an independent check). */
static size_t valid_utf8(const unsigned char *s, size_t n)
{
    size_t len, i;
    unsigned cp, min;

    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0) {
        len = 2; cp = s[0] & 0x1fu; min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3; cp = s[0] & 0x0fu; min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4; cp = s[0] & 0x07u; min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *out = NULL;
    size_t outlen = 0, i, k, n = 0;
    unsigned char *back;
    unsigned cp, lo;
    FILE *f = open_memstream(&out, &outlen);

    assert(f);
    json_string(f, (const char *)data, size);
    assert(fclose(f) == 0);
    back = malloc(size + 1);
    assert(back);
    assert(outlen >= 2 && out[0] == '"' && out[outlen - 1] == '"');
    for (i = 1; i < outlen - 1;) {
        unsigned char c = (unsigned char)out[i];

        assert(c >= 0x20 && c != '"');
        if (c != '\\') {
            k = valid_utf8((const unsigned char *)out + i, outlen - 1 - i);
            assert(k > 0);
            assert(n + k <= size);
            memcpy(back + n, out + i, k);
            n += k;
            i += k;
            continue;
        }
        assert(i + 1 < outlen - 1);
        switch (out[i + 1]) {
        case '"': case '\\': case '/':
            back[n++] = (unsigned char)out[i + 1];
            i += 2;
            continue;
        case 'b': back[n++] = '\b'; i += 2; continue;
        case 'f': back[n++] = '\f'; i += 2; continue;
        case 'n': back[n++] = '\n'; i += 2; continue;
        case 'r': back[n++] = '\r'; i += 2; continue;
        case 't': back[n++] = '\t'; i += 2; continue;
        case 'u': break;
        default: abort();
        }
        assert(i + 6 <= outlen - 1);
        cp = hex4(out + i + 2);
        i += 6;
        if (cp >= 0xdc80 && cp <= 0xdcff) {
            back[n++] = (unsigned char)(cp - 0xdc00);  /* a raw byte */
            continue;
        }
        if (cp >= 0xd800 && cp <= 0xdbff) {
            assert(i + 6 <= outlen - 1 && out[i] == '\\' && out[i + 1] == 'u');
            lo = hex4(out + i + 2);
            assert(lo >= 0xdc00 && lo <= 0xdfff);
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            i += 6;
        }
        assert(!(cp >= 0xdc00 && cp <= 0xdfff));  /* lone low surrogate */
        assert(n + 4 <= size + 4);
        n += put_utf8(back + n, cp);
    }
    assert(n == size && memcmp(back, data, size) == 0);
    free(back);
    free(out);
    return 0;
}
