/* SPDX-License-Identifier: MIT */
/*
 * The command line of `zmp parallel`: options, the command template and
 * the inputs after :::.  Apart from running anything, so it can be fuzzed.
 */
#define _GNU_SOURCE
#include "parallel.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: zmp parallel [OPTIONS] [--] COMMAND [ARG...] [::: INPUT...]\n"
    "\n"
    "Runs COMMAND once per input: each line of standard input (or of\n"
    "--arg-file), read as it comes, or each INPUT after :::.  In COMMAND\n"
    "and its ARGs, {} is the input and {#} the job number; without {}, the\n"
    "input is added as a last argument.  No shell is involved.\n"
    "\n"
    "  -j, --jobs N          at most N jobs at once (default: CPUs available);\n"
    "                        +N, -N: CPUs plus or minus N; N%: N% of CPUs;\n"
    "                        0: as many as the system allows\n"
    "  -k, --keep-order      print outputs in input order\n"
    "      --group           print each job's output together (default)\n"
    "  -u, --ungroup         print output as it comes, jobs mixed\n"
    "      --line-buffer     print whole lines as they come (also --lb)\n"
    "      --tag             put the input and a TAB before each output line\n"
    "      --tagstring STR   put STR ({} the input, {#} the job number) and a\n"
    "                        TAB before each output line\n"
    "      --buffer-size SIZE  output a waiting job keeps in memory, the rest\n"
    "                        going to a temporary file (default 8M)\n"
    "      --buffer-total SIZE the same for all jobs together (default 256M);\n"
    "                        SIZE in bytes, or with K, M, G\n"
    "      --tmpdir DIR      where those files go (default $TMPDIR, /tmp)\n"
    "  -a, --arg-file FILE   read inputs from FILE\n"
    "      --timeout SECS    SIGTERM a job after SECS, SIGKILL 2 s later\n"
    "      --halt-on-error   start no new job after one fails\n"
    "      --results FILE    one JSON object per job in FILE\n"
    "      --output-cap N    keep at most N bytes of each stream per job\n"
    "      --cgroup DIR      run each job in a cgroup of its own under DIR (a\n"
    "                        delegated cgroup v2 directory); what is left of a\n"
    "                        job when it ends or times out is killed\n"
    "      --progress        a progress line on a terminal's stderr\n"
    "      --shard K/N       run only the inputs numbered K+1, K+1+N, ... (one\n"
    "                        task of N); auto/N: K from the array index of\n"
    "                        Slurm, a Kubernetes Indexed Job or AWS Batch\n"
    "      --resume          with --results: skip the inputs FILE already has\n"
    "                        a record of, append the new records\n"
    "      --resume-failed   as --resume, and run the failed ones again\n"
    "  -h, --help            this text\n"
    "\n"
    "Exit status: the number of failed jobs (101: more than 100), 2 for bad\n"
    "usage or an error (input or --results that cannot be read or written),\n"
    "255 for output that cannot be written or a --shard that cannot be\n"
    "worked out.  On SIGINT,\n"
    "SIGTERM or SIGHUP the jobs get the signal (SIGKILL 2 s later), are\n"
    "printed, and zmp dies of it.  See zmp(1) and `zmp merge --help'.\n";

/* Long options without a letter: codes past any character. */
enum {
    OPT_GROUP = 0x100, OPT_LINE_BUFFER, OPT_TAG, OPT_TAGSTRING, OPT_BUFFER_SIZE,
    OPT_BUFFER_TOTAL, OPT_TMPDIR,
};

/* -j as GNU parallel reads it: N, +N and -N (the CPU count plus or
 * minus N), N% (of the CPU count).  Digits only: no blank, no second
 * sign, which strtoul would let through. */
static int parse_jobs(const char *s, struct parallel_config *cfg)
{
    size_t len = strlen(s), digits;
    unsigned long n = 0;

    cfg->jobs_form = JOBS_EXACT;
    if (*s == '+' || *s == '-') {
        cfg->jobs_form = *s == '+' ? JOBS_MORE : JOBS_FEWER;
        s++;
        len--;
    }
    if (len > 0 && s[len - 1] == '%' && cfg->jobs_form == JOBS_EXACT) {
        cfg->jobs_form = JOBS_PERCENT;
        len--;
    }
    digits = strspn(s, "0123456789");
    if (len == 0 || digits != len)
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        n = n * 10 + (unsigned long)(*s - '0');
        if (n > 1000000)
            return -1;
    }
    cfg->jobs = n;
    return 0;
}

/* A count of decimal digits only, at most max: 0, or -1. */
static int parse_count(const char *s, size_t len, unsigned long long max,
                       unsigned long long *ret)
{
    unsigned long long n = 0;
    size_t i;

    if (len == 0)
        return -1;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        n = n * 10 + (unsigned long long)(s[i] - '0');
        if (n > max)
            return -1;
    }
    *ret = n;
    return 0;
}

#define SHARDS_MAX 1000000000ULL
#define TASK_ID_MAX 1000000000000ULL  /* far above Slurm's MaxArraySize; no overflow */

/* The array index the cluster scheduler gave this task: 0 and *ret, or -1
 * after a message. */
/*
 * Slurm numbers array tasks as the user wrote --array (0-9, 1-10, or
 * only 3 when one task is resubmitted), so the shard is the task id
 * modulo n: the same task id is always the same shard.  An array that
 * spans more ids than there are shards would give two tasks one shard.
 */
static int shard_from_slurm(const char *s, unsigned long long n, unsigned long long *ret)
{
    const char *lo = getenv("SLURM_ARRAY_TASK_MIN"), *hi = getenv("SLURM_ARRAY_TASK_MAX");
    unsigned long long id, min = 0, max = 0;

    if (parse_count(s, strlen(s), TASK_ID_MAX, &id) < 0 ||
        (lo && parse_count(lo, strlen(lo), TASK_ID_MAX, &min) < 0) ||
        (hi && parse_count(hi, strlen(hi), TASK_ID_MAX, &max) < 0)) {
        fprintf(stderr, "zmp parallel: --shard auto: bad SLURM_ARRAY_TASK_ID=%s, "
                "SLURM_ARRAY_TASK_MIN=%s or SLURM_ARRAY_TASK_MAX=%s\n",
                s, lo ? lo : "", hi ? hi : "");
        return -1;
    }
    if (lo && hi && max >= min && max - min >= n) {
        fprintf(stderr, "zmp parallel: --shard auto/%llu: the Slurm array spans task ids "
                "%llu-%llu, more than %llu shards (give --array as many ids as shards)\n",
                n, min, max, n);
        return -1;
    }
    *ret = id % n;
    return 0;
}

/* K for --shard auto/n, from the array index in the environment. */
static int shard_from_env(unsigned long long n, unsigned long long *ret)
{
    static const char *const vars[] = { "JOB_COMPLETION_INDEX",
                                        "AWS_BATCH_JOB_ARRAY_INDEX" };
    const char *s;
    size_t i;

    if ((s = getenv("SLURM_ARRAY_TASK_ID")))
        return shard_from_slurm(s, n, ret);
    for (i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        if (!(s = getenv(vars[i])))
            continue;
        if (parse_count(s, strlen(s), SHARDS_MAX, ret) < 0) {
            fprintf(stderr, "zmp parallel: --shard auto: bad %s=%s\n", vars[i], s);
            return -1;
        }
        return 0;
    }
    fprintf(stderr, "zmp parallel: --shard auto: no array index in the environment "
            "(SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX)\n");
    return -1;
}

/* --shard K/N or auto/N: 0, or -1 after a message. */
static int parse_shard(const char *s, struct parallel_config *cfg)
{
    const char *slash = strchr(s, '/');

    if (!slash || parse_count(slash + 1, strlen(slash + 1), SHARDS_MAX, &cfg->shard_n) < 0 ||
        cfg->shard_n == 0 ||
        (((size_t)(slash - s) != 4 || strncmp(s, "auto", 4)) &&
         parse_count(s, (size_t)(slash - s), SHARDS_MAX, &cfg->shard_k) < 0)) {
        fprintf(stderr, "zmp parallel: bad --shard: %s (want K/N or auto/N, 0 <= K < N)\n",
                s);
        return -1;
    }
    if (!strncmp(s, "auto/", 5) && shard_from_env(cfg->shard_n, &cfg->shard_k) < 0)
        return -1;
    if (cfg->shard_k >= cfg->shard_n) {
        fprintf(stderr, "zmp parallel: --shard %s: shard %llu of %llu does not exist "
                "(0 <= K < N)\n", s, cfg->shard_k, cfg->shard_n);
        return -1;
    }
    return 0;
}

unsigned parallel_jobs(const struct parallel_config *cfg, unsigned cpus)
{
    unsigned long n = cfg->jobs;

    switch (cfg->jobs_form) {
    case JOBS_DEFAULT: return cpus;
    case JOBS_EXACT:   return n ? (unsigned)n : UINT_MAX;
    case JOBS_MORE:    return cpus + (unsigned)n;
    case JOBS_FEWER:   return n < cpus ? cpus - (unsigned)n : 1;
    case JOBS_PERCENT: n = (unsigned long)cpus * n / 100; return n ? (unsigned)n : 1;
    }
    return cpus;
}

int parallel_parse(int argc, char **argv, struct parallel_config *cfg)
{
    static const struct option opts[] = {
        { "jobs", required_argument, NULL, 'j' },
        { "keep-order", no_argument, NULL, 'k' },
        { "arg-file", required_argument, NULL, 'a' },
        { "timeout", required_argument, NULL, 't' },
        { "halt-on-error", no_argument, NULL, 'H' },
        { "results", required_argument, NULL, 'r' },
        { "output-cap", required_argument, NULL, 'c' },
        { "progress", no_argument, NULL, 'p' },
        { "cgroup", required_argument, NULL, 'g' },
        { "shard", required_argument, NULL, 'S' },
        { "resume", no_argument, NULL, 'R' },
        { "resume-failed", no_argument, NULL, 'F' },
        { "help", no_argument, NULL, 'h' },
        /* How the output is printed (output.c). */
        { "group", no_argument, NULL, OPT_GROUP },
        { "ungroup", no_argument, NULL, 'u' },
        { "line-buffer", no_argument, NULL, OPT_LINE_BUFFER },
        { "lb", no_argument, NULL, OPT_LINE_BUFFER },
        { "tag", no_argument, NULL, OPT_TAG },
        { "tagstring", required_argument, NULL, OPT_TAGSTRING },
        { "buffer-size", required_argument, NULL, OPT_BUFFER_SIZE },
        { "buffer-total", required_argument, NULL, OPT_BUFFER_TOTAL },
        { "tmpdir", required_argument, NULL, OPT_TMPDIR },
        { NULL, 0, NULL, 0 },
    };
    char *end;
    int c, n;

    *cfg = (struct parallel_config){ .shard_n = 1 };
    optind = 0;  /* 0, not 1: glibc's getopt then forgets any earlier argv */
    opterr = 1;
    argv[0] = (char *)"zmp parallel";  /* how getopt names us in messages */
    while ((c = getopt_long(argc, argv, "+j:ka:hu", opts, NULL)) != -1) {
        switch (c) {
        case OPT_GROUP: cfg->output_mode = OUTPUT_GROUP; break;
        case 'u': cfg->output_mode = OUTPUT_UNGROUP; break;
        case OPT_LINE_BUFFER: cfg->output_mode = OUTPUT_LINES; break;
        case OPT_TAG: cfg->tag = true; break;
        case OPT_TAGSTRING: cfg->tagstring = optarg; break;
        case OPT_TMPDIR: cfg->tmpdir = optarg; break;
        case OPT_BUFFER_SIZE:
        case OPT_BUFFER_TOTAL:
            if (output_parse_size(optarg, c == OPT_BUFFER_SIZE ? &cfg->buffer_size
                                                               : &cfg->buffer_total) < 0 ||
                !*optarg || (c == OPT_BUFFER_SIZE ? cfg->buffer_size : cfg->buffer_total) == 0) {
                fprintf(stderr, "zmp parallel: bad --%s: %s (want N, NK, NM or NG)\n",
                        c == OPT_BUFFER_SIZE ? "buffer-size" : "buffer-total", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'j':
            if (parse_jobs(optarg, cfg) < 0) {
                fprintf(stderr, "zmp parallel: bad --jobs: %s (want N, +N, -N or N%%)\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'k': cfg->keep_order = true; break;
        case 'a': cfg->arg_file = optarg; break;
        case 'H': cfg->halt = true; break;
        case 'r': cfg->results = optarg; break;
        case 'p': cfg->progress = true; break;
        case 'g': cfg->cgroup = optarg; break;
        case 'S':
            if (parse_shard(optarg, cfg) < 0)
                return EXIT_ERROR;
            break;
        case 'R': cfg->resume = true; break;
        case 'F': cfg->resume = cfg->resume_failed = true; break;
        case 't':
            cfg->timeout = strtod(optarg, &end);
            if (*end || !*optarg || !(cfg->timeout > 0) || cfg->timeout > 1e9) {
                fprintf(stderr, "zmp parallel: bad --timeout: %s\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'c':
            errno = 0;
            cfg->output_cap = strtoull(optarg, &end, 10);
            if (errno || *end || !*optarg || *optarg == '-') {
                fprintf(stderr, "zmp parallel: bad --output-cap: %s\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'h':
            /* A write error is an error, as for the jobs' output. */
            if (fputs(usage, stdout) == EOF || fflush(stdout) != 0) {
                fprintf(stderr, "zmp parallel: cannot write standard output: %s\n",
                        strerror(errno));
                return EXIT_USAGE;
            }
            return PARALLEL_HELP;
        default:
            fputs(usage, stderr);
            return EXIT_USAGE;
        }
    }
    if (cfg->resume && !cfg->results) {
        fprintf(stderr, "zmp parallel: --resume needs --results FILE\n");
        return EXIT_USAGE;
    }
    cfg->tmpl = argv + optind;
    n = argc - optind;
    for (cfg->ntmpl = 0; (int)cfg->ntmpl < n && strcmp(cfg->tmpl[cfg->ntmpl], ":::");
         cfg->ntmpl++)
        ;
    if (cfg->ntmpl == 0) {
        fprintf(stderr, "zmp parallel: missing COMMAND\n%s", usage);
        return EXIT_USAGE;
    }
    if ((int)cfg->ntmpl < n) {
        /* ::: INPUT... */
        if (cfg->arg_file) {
            fprintf(stderr, "zmp parallel: both ::: and --arg-file given\n");
            return EXIT_USAGE;
        }
        cfg->args = cfg->tmpl + cfg->ntmpl + 1;
        cfg->nargs = (size_t)n - cfg->ntmpl - 1;
        cfg->have_args = true;
        if (cfg->nargs == 0) {
            fprintf(stderr, "zmp parallel: no input after :::\n");
            return EXIT_USAGE;
        }
    }
    return 0;
}
