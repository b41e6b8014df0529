/* SPDX-License-Identifier: MIT */
/*
 * Growable byte buffers for captured output.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Make room for at least `room` more bytes plus a NUL.  Capacity doubles,
 * so appending n bytes in pieces costs O(n) copies overall. */
int zmp__buf_reserve(struct zmp__buf *b, size_t room)
{
    size_t need, cap;
    char *d;

    if (room > SIZE_MAX - 1 - b->len)
        return -ENOMEM;
    need = b->len + room + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    d = realloc(b->data, cap);
    if (!d)
        return -ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

int zmp__buf_append(struct zmp__buf *b, const void *data, size_t n)
{
    int r = zmp__buf_reserve(b, n);

    if (r < 0)
        return r;
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return 0;
}

/* Hand the bytes over, NUL-terminated (an empty buffer becomes ""), and
 * leave the buffer empty.  NULL only when even one byte cannot be had. */
char *zmp__buf_take(struct zmp__buf *b, size_t *ret_len)
{
    char *d;

    if (zmp__buf_reserve(b, 0) < 0)
        return NULL;
    d = b->data;
    d[b->len] = '\0';
    *ret_len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

void zmp__buf_free(struct zmp__buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
