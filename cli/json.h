/* SPDX-License-Identifier: MIT */
/* JSON output for the zmp command. */
#ifndef ZMP_CLI_JSON_H
#define ZMP_CLI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/*
 * Write data as a JSON string, quotes included.  Valid UTF-8 passes as it
 * is (control characters escaped); each byte that is not part of valid
 * UTF-8 is written as the escape \udcXX (XX its value), the
 * "surrogateescape" form: the result is always valid JSON, and lossless,
 * since well-formed UTF-8 never encodes U+DC80..U+DCFF.
 */
void json_string(FILE *f, const char *data, size_t len);

/*
 * The same string written in pieces: json_string_start(), then
 * json_string_piece() for each piece, then json_string_end().  A piece may
 * end in the middle of a UTF-8 sequence: its first bytes wait in st for
 * the next piece.
 */
struct json_pieces {
    unsigned char carry[4];
    size_t n;
};
void json_string_start(FILE *f, struct json_pieces *st);
void json_string_piece(FILE *f, struct json_pieces *st, const char *data, size_t len);
void json_string_end(FILE *f, struct json_pieces *st);

#endif
