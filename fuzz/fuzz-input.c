/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
/*
 * The job-line reader of zmp parallel, fed through a pipe in pieces whose
 * sizes the fuzzer picks, with reads that find nothing in between: the
 * lines handed out are exactly the input split at newlines (a last line
 * without one included, each cut at its first NUL as a C string is), in
 * order, whatever the pieces.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "input.h"

/* Take every line ready now; returns the status that stopped it. */
static int drain(struct input *in, const uint8_t *text, size_t size, size_t *pos)
{
    const char *line;
    const uint8_t *nl;
    size_t len;
    int r;

    while ((r = input_next(in, &line)) == 1) {
        assert(*pos < size);
        nl = memchr(text + *pos, '\n', size - *pos);
        len = nl ? (size_t)(nl - (text + *pos)) : size - *pos;
        /* As a C string: up to the first NUL of the line. */
        assert(strlen(line) == strnlen((const char *)text + *pos, len));
        assert(memcmp(line, text + *pos, strlen(line)) == 0);
        *pos += len + (nl != NULL);
    }
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *text;
    size_t ntext, k, off = 0, pos = 0, piece;
    struct input in;
    int p[2], r;
    uint8_t seed;

    if (size < 1)
        return 0;
    seed = data[0];
    text = data + 1;
    ntext = size - 1;
    assert(pipe2(p, O_CLOEXEC) == 0);
    fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
    input_from_fd(&in, p[0]);
    /* Pieces of 1 to 64 bytes, or sometimes large, from the seed. */
    for (k = 0; off < ntext; k++) {
        piece = (size_t)((seed * (k + 7)) % 61) + 1;
        if ((seed + k) % 13 == 0)
            piece = 70000;
        if (piece > ntext - off)
            piece = ntext - off;
        assert(write(p[1], text + off, piece) == (ssize_t)piece);
        off += piece;
        r = drain(&in, text, ntext, &pos);
        assert(r == -EAGAIN);
    }
    close(p[1]);
    r = drain(&in, text, ntext, &pos);
    assert(r == 0 && pos == ntext);
    input_free(&in);
    close(p[0]);
    return 0;
}
