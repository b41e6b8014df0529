/* SPDX-License-Identifier: MIT */
/*
 * Reading JSON back: just enough for zmp's own records (--results lines),
 * which `zmp parallel --resume` and `zmp merge` read.  No tree is built:
 * a value is found by its key and handed out as a span of the text.
 */
#ifndef ZMP_CLI_JSONREAD_H
#define ZMP_CLI_JSONREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum json_kind { JSON_NONE, JSON_STRING, JSON_NUMBER, JSON_BOOL, JSON_NULL,
                 JSON_OBJECT, JSON_ARRAY };

/* A value: its kind and its text (a string's with its quotes). */
struct json_value {
    enum json_kind kind;
    const char *text;
    size_t len;
};

/* Whether s[0..n) is one JSON object and nothing else but blanks. */
bool json_is_object(const char *s, size_t n);

/*
 * The member `key` of the object obj (a JSON_OBJECT value, or a whole
 * text holding one): true and *ret, or false when it has none or obj is
 * not a well-formed object.
 */
bool json_member(const struct json_value *obj, const char *key,
                 struct json_value *ret);

/* A whole text as a value (kind JSON_OBJECT when it is one). */
struct json_value json_text(const char *s, size_t n);

/* A non-negative integer, at most UINT64_MAX: true and *ret. */
bool json_uint(const struct json_value *v, uint64_t *ret);
bool json_bool(const struct json_value *v, bool *ret);

/*
 * A string's bytes, its escapes undone: \udcXX (json_string's form of a
 * byte that is not UTF-8) gives the byte back.  Returns the length and a
 * NUL-terminated copy in *ret (free it), or -1 (not a string, malformed,
 * out of memory).
 */
long json_string_decode(const struct json_value *v, char **ret);

#endif
