/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "results.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool member_uint(const struct json_value *o, const char *key, uint64_t *ret)
{
    struct json_value v;

    return json_member(o, key, &v) && json_uint(&v, ret);
}

/* Parse one line into rec: true when it is a record of a known type. */
static bool parse(const char *s, size_t n, struct record *rec)
{
    struct json_value o = json_text(s, n), v, shard;

    if (o.kind != JSON_OBJECT || !json_member(&o, "type", &v) || v.kind != JSON_STRING)
        return false;
    if (v.len == 8 && !memcmp(v.text, "\"header\"", 8)) {
        rec->type = REC_HEADER;
        return json_member(&o, "command", &rec->command) &&
               rec->command.kind == JSON_ARRAY && json_member(&o, "shard", &shard) &&
               member_uint(&shard, "k", &rec->shard_k) &&
               member_uint(&shard, "n", &rec->shard_n) && rec->shard_n > 0 &&
               rec->shard_k < rec->shard_n;
    }
    if (v.len == 5 && !memcmp(v.text, "\"job\"", 5)) {
        rec->type = REC_JOB;
        rec->interrupted = json_member(&o, "interrupted", &v) && v.kind == JSON_BOOL &&
                           v.text[0] == 't';
        return member_uint(&o, "seq", &rec->seq) && rec->seq > 0 &&
               json_member(&o, "ok", &v) && json_bool(&v, &rec->ok) &&
               json_member(&o, "input", &rec->input) && rec->input.kind == JSON_STRING;
    }
    if (v.len == 9 && !memcmp(v.text, "\"summary\"", 9)) {
        rec->type = REC_SUMMARY;
        return member_uint(&o, "inputs", &rec->inputs);
    }
    return false;
}

int results_scan(FILE *f, int (*fn)(void *arg, const struct record *rec),
                 void *arg, off_t *ret_torn, size_t *ret_bad)
{
    char *line = NULL;
    size_t cap = 0, no = 0;
    ssize_t n;
    off_t at = 0;
    struct record rec;
    int r = 0;

    *ret_torn = 0;
    *ret_bad = 0;
    if (fseeko(f, 0, SEEK_SET) < 0)
        return -errno;
    errno = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        bool whole = line[n - 1] == '\n';

        no++;
        rec = (struct record){ .line = no };
        if (!whole || !parse(line, (size_t)n - 1, &rec)) {
            /* Torn only if it is the last line. */
            if (!whole || getc(f) == EOF) {
                if (ferror(f))
                    break;
                *ret_torn = at;
                free(line);
                return 0;
            }
            *ret_bad = no;
            free(line);
            return -EBADMSG;
        }
        at += n;
        r = fn(arg, &rec);
        if (r)
            break;
    }
    if (!r && ferror(f))
        r = errno ? -errno : -EIO;
    free(line);
    if (!r)
        *ret_torn = at;
    return r;
}
