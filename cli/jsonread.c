/* SPDX-License-Identifier: MIT */
#include "jsonread.h"

#include <stdlib.h>
#include <string.h>

#define DEPTH_MAX 64

static const char *skip_blank(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
        s++;
    return s;
}

static int hex4(const char *s)
{
    int v = 0, i, d;

    for (i = 0; i < 4; i++) {
        char c = s[i];

        d = c >= '0' && c <= '9' ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* Past the string starting at s (on its quote), or NULL. */
static const char *skip_string(const char *s, const char *end)
{
    for (s++; s < end; s++) {
        if (*s == '"')
            return s + 1;
        if ((unsigned char)*s < 0x20)
            return NULL;
        if (*s != '\\')
            continue;
        if (++s >= end)
            return NULL;
        if (*s == 'u') {
            if (end - s < 5 || hex4(s + 1) < 0)
                return NULL;
            s += 4;
        } else if (!strchr("\"\\/bfnrt", *s)) {
            return NULL;
        }
    }
    return NULL;
}

static const char *skip_number(const char *s, const char *end)
{
    const char *start;

    if (s < end && *s == '-')
        s++;
    start = s;
    while (s < end && *s >= '0' && *s <= '9')
        s++;
    if (s == start || (*start == '0' && s - start > 1))
        return NULL;
    if (s < end && *s == '.') {
        start = ++s;
        while (s < end && *s >= '0' && *s <= '9')
            s++;
        if (s == start)
            return NULL;
    }
    if (s < end && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < end && (*s == '+' || *s == '-'))
            s++;
        start = s;
        while (s < end && *s >= '0' && *s <= '9')
            s++;
        if (s == start)
            return NULL;
    }
    return s;
}

static const char *skip_word(const char *s, const char *end, const char *w)
{
    size_t n = strlen(w);

    return (size_t)(end - s) >= n && !memcmp(s, w, n) ? s + n : NULL;
}

/* Past one value at s (blanks skipped first), with *v set; or NULL. */
static const char *skip_value(const char *s, const char *end, int depth,
                              struct json_value *v)
{
    const char *start;
    char close;

    s = skip_blank(s, end);
    start = s;
    if (s >= end || depth > DEPTH_MAX)
        return NULL;
    switch (*s) {
    case '"':
        v->kind = JSON_STRING;
        s = skip_string(s, end);
        break;
    case 't':
        v->kind = JSON_BOOL;
        s = skip_word(s, end, "true");
        break;
    case 'f':
        v->kind = JSON_BOOL;
        s = skip_word(s, end, "false");
        break;
    case 'n':
        v->kind = JSON_NULL;
        s = skip_word(s, end, "null");
        break;
    case '{':
    case '[':
        v->kind = *s == '{' ? JSON_OBJECT : JSON_ARRAY;
        close = *s == '{' ? '}' : ']';
        s = skip_blank(s + 1, end);
        if (s < end && *s == close) {
            s++;
            break;
        }
        for (;;) {
            struct json_value item;

            if (close == '}') {
                s = skip_blank(s, end);
                if (s >= end || *s != '"' || !(s = skip_string(s, end)))
                    return NULL;
                s = skip_blank(s, end);
                if (s >= end || *s++ != ':')
                    return NULL;
            }
            if (!(s = skip_value(s, end, depth + 1, &item)))
                return NULL;
            s = skip_blank(s, end);
            if (s < end && *s == ',') {
                s++;
                continue;
            }
            if (s < end && *s == close) {
                s++;
                break;
            }
            return NULL;
        }
        break;
    default:
        v->kind = JSON_NUMBER;
        s = skip_number(s, end);
        break;
    }
    if (!s)
        return NULL;
    v->text = start;
    v->len = (size_t)(s - start);
    return s;
}

struct json_value json_text(const char *s, size_t n)
{
    struct json_value v = { JSON_NONE, s, n };
    const char *end = s + n, *p;

    p = skip_value(s, end, 0, &v);
    if (!p || skip_blank(p, end) != end)
        return (struct json_value){ JSON_NONE, s, n };
    return v;
}

bool json_is_object(const char *s, size_t n)
{
    return json_text(s, n).kind == JSON_OBJECT;
}

/* Whether the string value at s (quotes included) spells key exactly;
 * keys here are plain ASCII, written without escapes. */
static bool key_is(const char *s, size_t len, const char *key)
{
    size_t n = strlen(key);

    return len == n + 2 && !memcmp(s + 1, key, n);
}

bool json_member(const struct json_value *obj, const char *key,
                 struct json_value *ret)
{
    const char *s, *end, *k;
    struct json_value v;

    if (obj->kind != JSON_OBJECT)
        return false;
    s = obj->text + 1;
    end = obj->text + obj->len - 1;
    for (;;) {
        s = skip_blank(s, end);
        if (s >= end || *s != '"')
            return false;
        k = s;
        if (!(s = skip_string(s, end)))
            return false;
        if (key_is(k, (size_t)(s - k), key)) {
            s = skip_blank(s, end);
            return s < end && *s == ':' && skip_value(s + 1, end, 1, ret);
        }
        s = skip_blank(s, end);
        if (s >= end || *s++ != ':' || !(s = skip_value(s, end, 1, &v)))
            return false;
        s = skip_blank(s, end);
        if (s >= end || *s++ != ',')
            return false;
    }
}

bool json_uint(const struct json_value *v, uint64_t *ret)
{
    uint64_t n = 0;
    size_t i;

    if (v->kind != JSON_NUMBER || !v->len)
        return false;
    for (i = 0; i < v->len; i++) {
        unsigned d = (unsigned)(v->text[i] - '0');

        if (d > 9 || n > (UINT64_MAX - d) / 10)
            return false;
        n = n * 10 + d;
    }
    *ret = n;
    return true;
}

bool json_bool(const struct json_value *v, bool *ret)
{
    if (v->kind != JSON_BOOL)
        return false;
    *ret = v->text[0] == 't';
    return true;
}

/* Append code point cp as UTF-8. */
static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xc0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *o++ = (char)(0xf0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3f));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    return o;
}

long json_string_decode(const struct json_value *v, char **ret)
{
    const char *s, *end;
    char *out, *o;
    int u, lo;

    if (v->kind != JSON_STRING || v->len < 2)
        return -1;
    s = v->text + 1;
    end = v->text + v->len - 1;
    /* Escapes only shrink: the text's length is enough. */
    if (!(out = malloc(v->len)))
        return -1;
    for (o = out; s < end; s++) {
        if (*s != '\\') {
            *o++ = *s;
            continue;
        }
        switch (*++s) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u':
            u = hex4(s + 1);
            s += 4;
            if (u >= 0xdc80 && u <= 0xdcff) {
                *o++ = (char)(u & 0xff);  /* a byte that was not UTF-8 */
            } else if (u >= 0xd800 && u <= 0xdbff && end - s >= 7 && s[1] == '\\' &&
                       s[2] == 'u' && (lo = hex4(s + 3)) >= 0xdc00 && lo <= 0xdfff) {
                o = put_utf8(o, 0x10000 + ((unsigned)(u - 0xd800) << 10) +
                                    (unsigned)(lo - 0xdc00));
                s += 6;
            } else if (u >= 0xd800 && u <= 0xdfff) {
                free(out);
                return -1;  /* a lone surrogate zmp never writes */
            } else {
                o = put_utf8(o, (unsigned)u);
            }
            break;
        default: *o++ = *s; break;  /* \" \\ \/ */
        }
    }
    *o = '\0';
    *ret = out;
    return (long)(o - out);
}
