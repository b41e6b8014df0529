/* SPDX-License-Identifier: MIT */
/*
 * The reader of results files (what --resume and zmp merge read, which may
 * be torn or hand-edited): any bytes are read without a crash or a read
 * out of bounds, and json_string's output always reads back: as a member
 * of an object, the decoded string is the original bytes.
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "jsonread.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Any text: one value or not; look members up, decode strings. */
    char *copy = malloc(size ? size : 1), *buf = NULL, *dec = NULL;
    struct json_value v = json_text(memcpy(copy, data, size), size), m;
    size_t len = 0;
    uint64_t u;
    bool b;
    long n;
    FILE *f;

    if (json_member(&v, "type", &m) && m.kind == JSON_STRING &&
        json_string_decode(&m, &dec) >= 0)
        free(dec);
    if (json_member(&v, "seq", &m))
        (void)json_uint(&m, &u);
    if (json_member(&v, "ok", &m))
        (void)json_bool(&m, &b);
    free(copy);

    /* The bytes as a member: read back whole. */
    f = open_memstream(&buf, &len);
    assert(f);
    fputs("{\"a\":[1,{\"b\":null}],\"input\":", f);
    json_string(f, (const char *)data, size);
    fputs(",\"z\":true}", f);
    assert(fclose(f) == 0);
    v = json_text(buf, len);
    assert(v.kind == JSON_OBJECT);
    assert(json_member(&v, "input", &m) && m.kind == JSON_STRING);
    n = json_string_decode(&m, &dec);
    assert(n == (long)size && !memcmp(dec, data, size));
    assert(json_member(&v, "z", &m) && json_bool(&m, &b) && b);
    free(dec);
    free(buf);
    return 0;
}
