/* SPDX-License-Identifier: MIT */
/* JSON output for the zmp command. */
#ifndef ZMP_CLI_JSON_H
#define ZMP_CLI_JSON_H

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

#endif
