/* SPDX-License-Identifier: MIT */
/*
 * zmp merge FILE...: do the --results files of a sharded run belong
 * together, is every shard there and complete, and does every input have
 * a job?  The last record of an input wins (a resumed shard runs a
 * failed job again).
 */
#define _GNU_SOURCE
#include "merge.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "results.h"

static const char usage[] =
    "usage: zmp merge [--json] [--failed] FILE...\n"
    "\n"
    "Checks the --results files of the shards of one run (zmp parallel\n"
    "--shard K/N): same command and N, every shard 0..N-1 there once and\n"
    "complete (its summary line written), every input run exactly once.\n"
    "Prints a summary.\n"
    "\n"
    "      --json    the summary as one JSON object\n"
    "      --failed  print the input of each failed job, one per line\n"
    "                (for zmp parallel -a), and no summary\n"
    "  -h, --help    this text\n"
    "\n"
    "Exit status: 0 complete and every job succeeded; 1 complete, some jobs\n"
    "failed; 2 incomplete (a shard missing or not finished, inputs without\n"
    "a job); 255 usage, files that cannot be read or do not belong\n"
    "together, or output that cannot be written.\n";

enum { NONE, OK, FAILED };

/* What is known of input number seq: entries[seq - 1]. */
struct entry {
    unsigned char state;
    char *input;      /* a failed job's input, for --failed */
    size_t input_len;
};

struct shard {
    const char *file; /* that holds it, or NULL */
    bool complete;    /* has a summary */
    uint64_t inputs;  /* from the summary */
};

struct merge {
    const char *file; /* being read */
    char *command;    /* the first header's template, as written */
    size_t command_len;
    uint64_t n;       /* shards in the run */
    uint64_t k;       /* of the file being read */
    bool have_header;
    struct shard *shards;
    struct entry *e;
    uint64_t ne;      /* entries held (the highest seq seen) */
    uint64_t inputs;  /* from the summaries, once one is read */
    bool have_inputs;
    int error;
};

__attribute__((format(printf, 2, 3)))
static int fail(struct merge *m, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "zmp merge: %s: ", m->file);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return -1;
}

static int on_header(struct merge *m, const struct record *rec)
{
    if (m->have_header)
        return 0;  /* a resumed shard's file may hold another: the same */
    m->have_header = true;
    if (!m->command) {
        m->command = strndup(rec->command.text, rec->command.len);
        if (!m->command)
            return fail(m, "out of memory");
        m->command_len = rec->command.len;
        m->n = rec->shard_n;
        m->shards = calloc(m->n, sizeof *m->shards);
        if (!m->shards)
            return fail(m, "out of memory");
    } else if (rec->command.len != m->command_len ||
               memcmp(rec->command.text, m->command, m->command_len)) {
        return fail(m, "another command than the first file's");
    } else if (rec->shard_n != m->n) {
        return fail(m, "shards of another run (N = %llu)", (unsigned long long)rec->shard_n);
    }
    m->k = rec->shard_k;
    if (m->shards[m->k].file) {
        fprintf(stderr, "zmp merge: shard %llu is in both %s and %s\n",
                (unsigned long long)m->k, m->shards[m->k].file, m->file);
        return -1;
    }
    m->shards[m->k].file = m->file;
    return 0;
}

static int on_job(struct merge *m, const struct record *rec)
{
    struct entry *e;
    char *input = NULL;
    long len = 0;

    if ((rec->seq - 1) % m->n != m->k)
        return fail(m, "job %llu does not belong to shard %llu", (unsigned long long)rec->seq,
                    (unsigned long long)m->k);
    if (rec->seq > m->ne) {
        uint64_t ne = m->ne ? m->ne : 1024;

        while (ne < rec->seq)
            ne *= 2;
        if (ne > SIZE_MAX / sizeof *e || !(e = realloc(m->e, ne * sizeof *e)))
            return fail(m, "out of memory");
        memset(e + m->ne, 0, (ne - m->ne) * sizeof *e);
        m->e = e;
        m->ne = ne;
    }
    e = &m->e[rec->seq - 1];
    if (!rec->ok && (len = json_string_decode(&rec->input, &input)) < 0)
        return fail(m, "line %zu: bad input string", rec->line);
    free(e->input);
    e->state = rec->ok ? OK : FAILED;
    e->input = input;
    e->input_len = (size_t)len;
    return 0;
}

static int on_record(void *arg, const struct record *rec)
{
    struct merge *m = arg;

    if (rec->type != REC_HEADER && !m->have_header)
        return fail(m, "not a zmp results file (no header first)");
    switch (rec->type) {
    case REC_HEADER:
        return on_header(m, rec);
    case REC_JOB:
        return on_job(m, rec);
    case REC_SUMMARY:
        if (m->have_inputs && rec->inputs != m->inputs)
            return fail(m, "the shards saw different inputs (%llu here, %llu before)",
                        (unsigned long long)rec->inputs, (unsigned long long)m->inputs);
        m->inputs = rec->inputs;
        m->have_inputs = true;
        m->shards[m->k].complete = true;
        m->shards[m->k].inputs = rec->inputs;
        return 0;
    }
    return 0;
}

static int read_file(struct merge *m, const char *path)
{
    FILE *f = fopen(path, "r");
    off_t torn;
    size_t bad;
    int r;

    m->file = path;
    m->have_header = false;
    if (!f) {
        fprintf(stderr, "zmp merge: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    r = results_scan(f, on_record, m, &torn, &bad);
    fclose(f);
    if (r == -EBADMSG)
        return fail(m, "line %zu is not a zmp record", bad);
    if (r < 0 && r != -1)
        return fail(m, "%s", strerror(-r));
    if (r == 0 && !m->have_header) {
        /* Killed before its header was written: its shard is missing. */
        if (torn == 0) {
            fprintf(stderr, "zmp merge: %s: empty (its run was killed at once?)\n", path);
            return 0;
        }
        return fail(m, "not a zmp results file (no header)");
    }
    return r;
}

static void print_json_list(const struct merge *m, bool want_missing)
{
    bool first = true;
    uint64_t k;

    putchar('[');
    for (k = 0; k < m->n; k++) {
        bool missing = !m->shards[k].file;

        if (want_missing ? !missing : missing || m->shards[k].complete)
            continue;
        printf("%s%llu", first ? "" : ",", (unsigned long long)k);
        first = false;
    }
    putchar(']');
}

int cmd_merge(int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "failed", no_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct merge m = { 0 };
    bool json = false, failed_only = false, complete;
    uint64_t k, seq, total, ok = 0, failed = 0, missing = 0, nmissing_shards = 0,
             nincomplete = 0;
    int c, i, status = MERGE_ERROR;

    optind = 0;
    argv[0] = (char *)"zmp merge";
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = true; break;
        case 'f': failed_only = true; break;
        case 'h':
            if (fputs(usage, stdout) == EOF || fflush(stdout) != 0) {
                fprintf(stderr, "zmp merge: cannot write standard output: %s\n",
                        strerror(errno));
                return MERGE_ERROR;
            }
            return 0;
        default: fputs(usage, stderr); return MERGE_ERROR;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "zmp merge: no FILE given\n%s", usage);
        return MERGE_ERROR;
    }
    for (i = optind; i < argc; i++)
        if (read_file(&m, argv[i]) < 0)
            goto out;
    for (k = 0; k < m.n; k++) {
        nmissing_shards += !m.shards[k].file;
        nincomplete += m.shards[k].file && !m.shards[k].complete;
    }
    /* Without a summary, the inputs in all are not known: those with a
     * job are counted, and the run is incomplete anyway. */
    total = m.inputs;
    if (!m.have_inputs)
        for (seq = 1; seq <= m.ne; seq++)
            if (m.e[seq - 1].state)
                total = seq;
    for (seq = 1; seq <= total; seq++) {
        unsigned char st = seq <= m.ne ? m.e[seq - 1].state : NONE;

        ok += st == OK;
        failed += st == FAILED;
        missing += st == NONE;
    }
    if (m.have_inputs && m.ne > total)
        for (seq = total + 1; seq <= m.ne; seq++)
            if (m.e[seq - 1].state) {
                fprintf(stderr, "zmp merge: job %llu is past the %llu inputs the "
                        "summaries count\n", (unsigned long long)seq,
                        (unsigned long long)total);
                goto out;
            }
    complete = !nmissing_shards && !nincomplete && !missing && m.have_inputs;
    if (failed_only) {
        for (seq = 1; seq <= total && seq <= m.ne; seq++)
            if (m.e[seq - 1].state == FAILED) {
                fwrite(m.e[seq - 1].input, 1, m.e[seq - 1].input_len, stdout);
                putchar('\n');
            }
    } else if (json) {
        printf("{\"complete\":%s,\"shards\":%llu,\"inputs\":%llu,\"ran\":%llu,"
               "\"ok\":%llu,\"failed\":%llu,\"missing_inputs\":%llu,\"missing_shards\":",
               complete ? "true" : "false", (unsigned long long)m.n,
               (unsigned long long)total, (unsigned long long)(ok + failed),
               (unsigned long long)ok, (unsigned long long)failed,
               (unsigned long long)missing);
        print_json_list(&m, true);
        fputs(",\"incomplete_shards\":", stdout);
        print_json_list(&m, false);
        fputs(",\"command\":", stdout);
        fwrite(m.command, 1, m.command_len, stdout);
        fputs("}\n", stdout);
    } else {
        printf("%s: %llu shard%s, %llu inputs%s: %llu ran, %llu ok, %llu failed\n",
               complete ? "complete" : "incomplete", (unsigned long long)m.n,
               m.n == 1 ? "" : "s", (unsigned long long)total,
               m.have_inputs ? "" : " or more", (unsigned long long)(ok + failed),
               (unsigned long long)ok, (unsigned long long)failed);
        for (k = 0; k < m.n; k++) {
            if (!m.shards[k].file)
                printf("shard %llu: missing (no file)\n", (unsigned long long)k);
            else if (!m.shards[k].complete)
                printf("shard %llu: not finished (no summary: killed, or still "
                       "running): %s\n", (unsigned long long)k, m.shards[k].file);
        }
        if (missing)
            printf("inputs without a job: %llu\n", (unsigned long long)missing);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "zmp merge: cannot write standard output: %s\n", strerror(errno));
        goto out;
    }
    status = !complete ? MERGE_INCOMPLETE : failed ? MERGE_FAILED : 0;
out:
    for (seq = 0; seq < m.ne; seq++)
        free(m.e[seq].input);
    free(m.e);
    free(m.shards);
    free(m.command);
    return status;
}
