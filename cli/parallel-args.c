/* SPDX-License-Identifier: MIT */
/*
 * The command line of `zmp parallel`: options, the command template and
 * the inputs after :::.  Apart from running anything, so it can be fuzzed.
 */
#define _GNU_SOURCE
#include "parallel.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: zmp parallel [OPTIONS] [--] [COMMAND [ARG...]] [::: INPUT... | :::: FILE...]...\n"
    "\n"
    "Runs COMMAND once per input, as GNU parallel does: for each line of\n"
    "standard input, or of each -a/:::: FILE, or each INPUT after :::; with\n"
    "several sources, for every combination of their inputs (:::+ and ::::+\n"
    "link a source to the one before).  Inputs are read as they come.\n"
    "Replacement strings: {} the input, {.} without extension, {/} basename,\n"
    "{//} dirname, {/.} basename without extension, {#} job number, {%} job\n"
    "slot, {N} {N.} {N/} {N//} {N/.} the Nth input of the job.  Without any,\n"
    "the inputs are added as last arguments.  No shell is involved: each\n"
    "word is one argument, unless --shell.  Without COMMAND, each input is a\n"
    "command line for /bin/sh.\n"
    "\n"
    "  -j, --jobs, -P N      at most N jobs at once (default: CPUs available);\n"
    "                        +N, -N: CPUs plus or minus N; N%: N% of CPUs;\n"
    "                        0: as many as the system allows\n"
    "  -k, --keep-order      print outputs in input order\n"
    "  -a, --arg-file FILE   an input source (again for more sources; - is\n"
    "                        standard input)\n"
    "  -0, --null            inputs end at NUL bytes, not newlines\n"
    "  -d, --delimiter D     inputs end at D (\\n \\t \\0 \\xHH \\\\ understood)\n"
    "  -E, --eof STR         an input equal to STR ends its source\n"
    "  -r, --no-run-if-empty skip blank inputs\n"
    "      --trim n|l|r|lr|rl  trim blanks from inputs (columns)\n"
    "  -C, --colsep REGEX    split each input into columns {1} {2}... at REGEX\n"
    "                        (POSIX extended; \\t \\s \\d understood)\n"
    "      --link            link all sources (shorter ones wrap around)\n"
    "  -n, --max-args N      at most N inputs per job\n"
    "  -N, --max-replace-args N  N inputs per job ({N} empty past the end)\n"
    "  -m                    as many inputs per job as fit, spread over the jobs\n"
    "  -X                    as -m, with a word holding {} repeated per input\n"
    "  -I STR                STR instead of {} for the input\n"
    "      --arg-sep SEP     SEP instead of :::\n"
    "      --arg-file-sep SEP  SEP instead of ::::\n"
    "      --shell           run the command line through /bin/sh -c, every\n"
    "                        input quoted for the shell\n"
    "      --dry-run         print the commands, run nothing\n"
    "      --timeout SECS    SIGTERM a job after SECS (or 1m30s...), SIGKILL 2 s\n"
    "                        later; N%: N% of the median runtime so far\n"
    "      --termseq SEQ     what a timeout or a stop sends: SIGNAL,MS,...\n"
    "      --delay SECS      at least SECS between two job starts\n"
    "      --retries N       try a failing job N times in all (0: until it\n"
    "                        succeeds); only the last try is printed\n"
    "      --joblog FILE     one line per job in GNU parallel's format\n"
    "      --group           print each job's output together (default)\n"
    "  -u, --ungroup         print output as it comes, jobs mixed\n"
    "      --line-buffer     print whole lines as they come (also --lb)\n"
    "      --tag             put the input and a TAB before each output line\n"
    "      --tagstring STR   put STR (replacement strings replaced) and a TAB\n"
    "                        before each output line\n"
    "      --buffer-size SIZE  output a waiting job keeps in memory, the rest\n"
    "                        going to a temporary file (default 8M)\n"
    "      --buffer-total SIZE the same for all jobs together (default 256M)\n"
    "      --tmpdir DIR      where those files go (default $TMPDIR, /tmp)\n"
    "      --pipe            cut stdin into blocks of whole records, each the\n"
    "                        stdin of one job\n"
    "      --block SIZE      --pipe's block size (default 1M; K, M, G: powers\n"
    "                        of 1024, k, m, g: of 1000)\n"
    "      --recend STR      where a record ends (default \\n)\n"
    "      --recstart STR    where a record starts\n"
    "      --round-robin     with --pipe: start at most -j jobs, and write each\n"
    "                        block to whichever of them is free to take it\n"
    "      --halt WHEN,WHAT=N  WHEN: never, soon (start no more jobs) or now\n"
    "                        (and stop the running ones); WHAT: fail, success\n"
    "                        or done; N: a count or a percentage (N%);\n"
    "                        0, 1, 2, -1, -2 as GNU parallel\n"
    "      --halt-on-error   --halt soon,fail=1\n"
    "      --results FILE    one JSON object per job in FILE\n"
    "      --output-cap N    keep at most N bytes of each stream per job\n"
    "      --cgroup DIR      run each job in a cgroup of its own under DIR (a\n"
    "                        delegated cgroup v2 directory); what is left of a\n"
    "                        job when it ends or times out is killed\n"
    "      --progress        a progress line on a terminal's stderr\n"
    "      --eta, --bar      ... with the time left, or a bar (the inputs are\n"
    "                        read first, to know how many jobs there are)\n"
    "      --memfree SIZE    start a job only while SIZE of memory is available;\n"
    "                        below half of it, end the youngest job (--termseq)\n"
    "      --shard K/N       run only the inputs numbered K+1, K+1+N, ... (one\n"
    "                        task of N); auto/N: K from the array index of\n"
    "                        Slurm, a Kubernetes Indexed Job or AWS Batch\n"
    "      --resume          with --results or --joblog: skip the inputs FILE\n"
    "                        already has a record of, append the new records\n"
    "      --resume-failed   as --resume, and run the failed ones again\n"
    "      --retry-failed    run the failed jobs of --joblog FILE again, with\n"
    "                        the commands it has (the command line's are ignored)\n"
    "      --will-cite, --no-notice  accepted and ignored, as GNU parallel's\n"
    "  -h, --help            this text\n"
    "      --version         zmp's version\n"
    "\n"
    "Long options are never abbreviated.  Exit status: 0 if every job\n"
    "succeeded, else the number of failed jobs (101: more than 100); with\n"
    "--halt, as GNU parallel; 255 for any other error (usage, input, output,\n"
    "--results).  On SIGINT, SIGTERM or SIGHUP the jobs get SIGTERM (then\n"
    "SIGKILL 350 ms later, or as --termseq says), are printed, and zmp dies\n"
    "of the signal.  See zmp(1) and `zmp merge --help'.\n";

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

    /* As GNU parallel: N% rounded up; none left (0%, -N with N CPUs or
     * more) is 0, an error. */
    switch (cfg->jobs_form) {
    case JOBS_DEFAULT: return cpus;
    case JOBS_EXACT:   return n ? (unsigned)n : UINT_MAX;
    case JOBS_MORE:    return cpus + (unsigned)n;
    case JOBS_FEWER:   return n < cpus ? cpus - (unsigned)n : 0;
    case JOBS_PERCENT: return (unsigned)(((unsigned long)cpus * n + 99) / 100);
    }
    return cpus;
}

/* --- the option parser ------------------------------------------------- */

/*
 * Options are matched whole: getopt_long takes any unambiguous prefix,
 * so that `--halt now,fail=1` once read as --halt-on-error and ran
 * "now,fail=1".  A prefix is refused with the option it may stand for.
 */
enum opt_id {
    O_JOBS = 1, O_KEEP, O_ARGFILE, O_NULL, O_DELIM, O_EOF, O_NOEMPTY, O_TRIM,
    O_COLSEP, O_LINK, O_MAXARGS, O_MAXREPL, O_M, O_X, O_REPLACE, O_ARGSEP,
    O_ARGFILESEP, O_SHELL, O_DRYRUN, O_TIMEOUT, O_HALT, O_HALTERR, O_RESULTS,
    O_OUTCAP, O_CGROUP, O_PROGRESS, O_SHARD, O_RESUME, O_RESUMEFAILED, O_IGNORED,
    O_HELP, O_VERSION, O_JOBLOG, O_RETRYFAILED, O_TERMSEQ, O_DELAY, O_PIPE, O_BLOCK,
    O_RECEND, O_RECSTART, O_GROUP, O_UNGROUP, O_LINEBUF, O_TAG, O_TAGSTRING,
    O_BUFSIZE, O_BUFTOTAL, O_TMPDIR, O_RETRIES, O_ETA, O_BAR, O_MEMFREE, O_ROUNDROBIN,
};

struct opt {
    const char *name;       /* long name, or NULL */
    char shrt;              /* short letter, or 0 */
    bool arg;               /* takes a value */
    enum opt_id id;
};

static const struct opt opts[] = {
    { "jobs", 'j', true, O_JOBS },
    { "max-procs", 'P', true, O_JOBS },
    { "maxprocs", 0, true, O_JOBS },
    { "keep-order", 'k', false, O_KEEP },
    { "keeporder", 0, false, O_KEEP },
    { "arg-file", 'a', true, O_ARGFILE },
    { "argfile", 0, true, O_ARGFILE },
    { "null", '0', false, O_NULL },
    { "delimiter", 'd', true, O_DELIM },
    { "eof", 'E', true, O_EOF },
    { "no-run-if-empty", 'r', false, O_NOEMPTY },
    { "norunifempty", 0, false, O_NOEMPTY },
    { "trim", 0, true, O_TRIM },
    { "colsep", 'C', true, O_COLSEP },
    { "col-sep", 0, true, O_COLSEP },
    { "link", 0, false, O_LINK },
    { "xapply", 0, false, O_LINK },
    { "max-args", 'n', true, O_MAXARGS },
    { "maxargs", 0, true, O_MAXARGS },
    { "max-replace-args", 'N', true, O_MAXREPL },
    { "maxreplaceargs", 0, true, O_MAXREPL },
    { NULL, 'm', false, O_M },
    { NULL, 'X', false, O_X },
    { NULL, 'I', true, O_REPLACE },
    { "arg-sep", 0, true, O_ARGSEP },
    { "argsep", 0, true, O_ARGSEP },
    { "arg-file-sep", 0, true, O_ARGFILESEP },
    { "argfilesep", 0, true, O_ARGFILESEP },
    { "shell", 0, false, O_SHELL },
    { "dry-run", 0, false, O_DRYRUN },
    { "dryrun", 0, false, O_DRYRUN },
    { "timeout", 0, true, O_TIMEOUT },
    { "halt", 0, true, O_HALT },
    { "halt-on-error", 0, false, O_HALTERR },
    { "results", 0, true, O_RESULTS },
    { "output-cap", 0, true, O_OUTCAP },
    { "cgroup", 0, true, O_CGROUP },
    { "progress", 0, false, O_PROGRESS },
    { "eta", 0, false, O_ETA },
    { "bar", 0, false, O_BAR },
    { "memfree", 0, true, O_MEMFREE },
    { "shard", 0, true, O_SHARD },
    { "resume", 0, false, O_RESUME },
    { "resume-failed", 0, false, O_RESUMEFAILED },
    { "retry-failed", 0, false, O_RETRYFAILED },
    { "joblog", 0, true, O_JOBLOG },
    { "retries", 0, true, O_RETRIES },
    { "termseq", 0, true, O_TERMSEQ },
    { "term-seq", 0, true, O_TERMSEQ },
    { "delay", 0, true, O_DELAY },
    { "pipe", 0, false, O_PIPE },
    { "spreadstdin", 0, false, O_PIPE },
    { "block", 0, true, O_BLOCK },
    { "block-size", 0, true, O_BLOCK },
    { "blocksize", 0, true, O_BLOCK },
    { "recend", 0, true, O_RECEND },
    { "group", 0, false, O_GROUP },
    { "ungroup", 'u', false, O_UNGROUP },
    { "line-buffer", 0, false, O_LINEBUF },
    { "linebuffer", 0, false, O_LINEBUF },
    { "lb", 0, false, O_LINEBUF },
    { "tag", 0, false, O_TAG },
    { "tagstring", 0, true, O_TAGSTRING },
    { "tag-string", 0, true, O_TAGSTRING },
    { "buffer-size", 0, true, O_BUFSIZE },
    { "buffer-total", 0, true, O_BUFTOTAL },
    { "tmpdir", 0, true, O_TMPDIR },
    { "tempdir", 0, true, O_TMPDIR },
    { "recstart", 0, true, O_RECSTART },
    { "round-robin", 0, false, O_ROUNDROBIN },
    { "roundrobin", 0, false, O_ROUNDROBIN },
    { "round", 0, false, O_ROUNDROBIN },
    { "will-cite", 0, false, O_IGNORED },
    { "willcite", 0, false, O_IGNORED },
    { "no-notice", 0, false, O_IGNORED },
    { "nonotice", 0, false, O_IGNORED },
    { "help", 'h', false, O_HELP },
    { "version", 0, false, O_VERSION },
};
#define NOPTS (sizeof opts / sizeof opts[0])

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("zmp parallel: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(zmp parallel --help for the options)\n", stderr);
    return EXIT_USAGE;
}

/* An unknown --NAME: say which options it begins, if any. */
static int unknown_long(const char *name, size_t len)
{
    char hint[256] = "";
    size_t i, n = 0;

    for (i = 0; i < NOPTS; i++) {
        if (opts[i].name && !strncmp(opts[i].name, name, len) && n < 4) {
            size_t at = strlen(hint);

            snprintf(hint + at, sizeof hint - at, "%s--%s", n ? ", " : "", opts[i].name);
            n++;
        }
    }
    fprintf(stderr, "zmp parallel: unknown option --%.*s", (int)len, name);
    if (n)
        fprintf(stderr, " (long options are never abbreviated: %s?)", hint);
    fputs("\n(zmp parallel --help for the options)\n", stderr);
    return EXIT_USAGE;
}

/* -d's delimiter: C escapes \n \t \r \0 \\ \xHH and \NNN (octal). */
static int parse_delim(const char *s, struct parallel_config *cfg)
{
    size_t n = 0;
    char *end;

    while (*s) {
        unsigned long c = (unsigned char)*s++;

        if (c == '\\' && *s) {
            switch (*s) {
            case 'n': c = '\n'; s++; break;
            case 't': c = '\t'; s++; break;
            case 'r': c = '\r'; s++; break;
            case '\\': c = '\\'; s++; break;
            case 'x':
                c = strtoul(s + 1, &end, 16);
                if (end == s + 1 || end > s + 3)
                    return -1;
                s = end;
                break;
            default:
                if (*s < '0' || *s > '7')
                    return -1;
                c = strtoul(s, &end, 8);
                if (end > s + 3 || c > 255)
                    return -1;
                s = end;
            }
        }
        if (n == sizeof cfg->delim)
            return -1;
        cfg->delim[n++] = (char)c;
    }
    if (n == 0)
        return -1;
    cfg->delim_len = n;
    return 0;
}

/* A size as GNU parallel writes it: a number with K, M, G, T, P (powers
 * of 1024; also Ki, ki...) or k, m, g, t, p (powers of 1000). */
static int parse_size(const char *s, unsigned long long *ret)
{
    static const char units[] = "kmgtp";
    const char *u;
    double v;
    char *end;

    v = strtod(s, &end);
    if (end == s || !(v >= 0))
        return -1;
    if (*end) {
        bool binary = (*end >= 'A' && *end <= 'Z') || end[1] == 'i';
        int k;

        if (!(u = strchr(units, *end | 0x20)) || (end[1] && (end[1] != 'i' || end[2])))
            return -1;
        for (k = 0; k <= u - units; k++)
            v *= binary ? 1024 : 1000;
    }
    if (v > 1e18)
        return -1;
    *ret = (unsigned long long)v;
    return 0;
}

/* A duration as GNU parallel writes it: seconds, or a sum of numbers
 * each with s, m, h or d (1h30m).  -1 when it is not one. */
static double parse_time(const char *s)
{
    double t = 0, v;
    char *end;

    v = strtod(s, &end);
    if (end == s || !(v >= 0))
        return -1;
    if (!*end)
        return v;
    for (;;) {
        switch (*end) {
        case 's': t += v; break;
        case 'm': t += v * 60; break;
        case 'h': t += v * 3600; break;
        case 'd': t += v * 86400; break;
        default: return -1;
        }
        s = end + 1;
        if (!*s)
            return t;
        v = strtod(s, &end);
        if (end == s || !(v >= 0))
            return -1;
    }
}

/* A signal by name (TERM, SIGTERM) or number. */
static int signal_number(const char *s, size_t len)
{
    static const struct { const char *name; int sig; } sigs[] = {
        { "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "KILL", SIGKILL },
        { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "PIPE", SIGPIPE },
        { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "CONT", SIGCONT },
        { "STOP", SIGSTOP }, { "TSTP", SIGTSTP },
    };
    unsigned long long n;
    size_t i;

    if (len > 3 && !strncmp(s, "SIG", 3)) {
        s += 3;
        len -= 3;
    }
    for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (strlen(sigs[i].name) == len && !strncmp(sigs[i].name, s, len))
            return sigs[i].sig;
    if (parse_count(s, len, 64, &n) == 0 && n > 0)
        return (int)n;
    return -1;
}

/* --termseq SIG,MS,SIG,MS...: GNU parallel's, the signals a job gets when
 * its timeout expires or the run stops, each followed by a wait in
 * milliseconds; the last wait may be left out.  SIGKILL follows the last
 * anyway. */
static int parse_termseq(const char *s, struct parallel_config *cfg)
{
    const char *p = s, *comma;
    unsigned long long ms;
    size_t n = 0, len;
    int sig;

    while (*p) {
        comma = strchr(p, ',');
        len = comma ? (size_t)(comma - p) : strlen(p);
        if (n == sizeof cfg->termseq / sizeof cfg->termseq[0] ||
            (sig = signal_number(p, len)) < 0)
            return -1;
        cfg->termseq[n].signal = sig;
        cfg->termseq[n].ms = 0;
        if (!comma) {
            n++;
            break;
        }
        p = comma + 1;
        comma = strchr(p, ',');
        len = comma ? (size_t)(comma - p) : strlen(p);
        if (parse_count(p, len, 86400000, &ms) < 0)
            return -1;
        cfg->termseq[n++].ms = (unsigned long)ms;
        if (!comma)
            break;
        p = comma + 1;
        if (!*p)
            return -1;
    }
    if (n == 0)
        return -1;
    cfg->ntermseq = n;
    return 0;
}

/* --halt: never, WHEN,WHAT=N[%], N%, or -2..2 (GNU parallel's forms). */
static int parse_halt(const char *s, struct parallel_config *cfg)
{
    static const char *const shorts[] = { "-2", "-1", "0", "1", "2" };
    static const char *const longs[] = { "now,success=1", "soon,success=1", "never",
                                         "soon,fail=1", "now,fail=1" };
    char buf[64], *what, *num;
    unsigned long long n;
    size_t i, len;

    for (i = 0; i < 5; i++)
        if (!strcmp(s, shorts[i]))
            s = longs[i];
    len = strlen(s);
    if (len > 1 && len < 10 && s[len - 1] == '%' && strspn(s, "0123456789") == len - 1) {
        snprintf(buf, sizeof buf, "soon,fail=%s", s);
        s = buf;
    }
    if (!strcmp(s, "never")) {
        cfg->halt_when = HALT_NEVER;
        return 0;
    }
    if (snprintf(buf, sizeof buf, "%s", s) >= (int)sizeof buf)
        return -1;
    if (!(what = strchr(buf, ',')) || !(num = strchr(what, '=')))
        return -1;
    *what++ = '\0';
    *num++ = '\0';
    if (!strcmp(buf, "soon"))
        cfg->halt_when = HALT_SOON;
    else if (!strcmp(buf, "now"))
        cfg->halt_when = HALT_NOW;
    else
        return -1;
    if (!strcmp(what, "fail"))
        cfg->halt_what = HALT_FAIL;
    else if (!strcmp(what, "success"))
        cfg->halt_what = HALT_SUCCESS;
    else if (!strcmp(what, "done"))
        cfg->halt_what = HALT_DONE;
    else
        return -1;
    len = strlen(num);
    cfg->halt_pct = len > 0 && num[len - 1] == '%';
    if (parse_count(num, len - cfg->halt_pct, 1000000000, &n) < 0 || n == 0 ||
        (cfg->halt_pct && n > 100))
        return -1;
    cfg->halt_n = (unsigned long)n;
    return 0;
}

static int add_source(struct parallel_config *cfg, struct source_spec sp)
{
    struct source_spec *v = realloc(cfg->srcs, (cfg->nsrcs + 1) * sizeof *v);

    if (!v) {
        fprintf(stderr, "zmp parallel: out of memory\n");
        return -1;
    }
    cfg->srcs = v;
    cfg->srcs[cfg->nsrcs++] = sp;
    return 0;
}

static int print_help(const char *text)
{
    /* A write error is an error, as for the jobs' output. */
    if (fputs(text, stdout) == EOF || fflush(stdout) != 0) {
        fprintf(stderr, "zmp parallel: cannot write standard output: %s\n",
                strerror(errno));
        return EXIT_USAGE;
    }
    return PARALLEL_HELP;
}

/* One option with its value (NULL when it takes none). */
static int apply(struct parallel_config *cfg, const struct opt *o, const char *v,
                 const char *shown)
{
    unsigned long long n;
    char *end;

    switch (o->id) {
    case O_JOBS:
        if (parse_jobs(v, cfg) < 0)
            return usage_error("bad %s: %s (want N, +N, -N or N%%)", shown, v);
        break;
    case O_KEEP: cfg->keep_order = true; break;
    case O_ARGFILE:
        if (add_source(cfg, (struct source_spec){ .kind = SRC_FILE, .path = v }) < 0)
            return EXIT_USAGE;
        break;
    case O_NULL: cfg->delim[0] = '\0'; cfg->delim_len = 1; break;
    case O_DELIM:
        if (parse_delim(v, cfg) < 0)
            return usage_error("bad %s: %s (want characters, \\n, \\t, \\0, \\xHH)",
                               shown, v);
        break;
    case O_EOF: cfg->eof = v; break;
    case O_NOEMPTY: cfg->skip_empty = true; break;
    case O_TRIM:
        if (strcmp(v, "n") && strcmp(v, "l") && strcmp(v, "r") && strcmp(v, "lr") &&
            strcmp(v, "rl"))
            return usage_error("bad %s: %s (want n, l, r, lr or rl)", shown, v);
        cfg->trim_set = true;
        cfg->trim_left = strchr(v, 'l') != NULL;
        cfg->trim_right = strchr(v, 'r') != NULL;
        break;
    case O_COLSEP: cfg->colsep = v; break;
    case O_LINK: cfg->link = true; break;
    case O_MAXARGS:
    case O_MAXREPL:
        /* -N 0, as GNU parallel: one job per input, given no value. */
        if (parse_count(v, strlen(v), 1000000, &n) < 0 || (n == 0 && o->id == O_MAXARGS))
            return usage_error("bad %s: %s (want a count from %d)", shown, v,
                               o->id == O_MAXARGS);
        cfg->max_args = (unsigned long)n;
        cfg->pad_args = o->id == O_MAXREPL;
        cfg->no_values = n == 0;
        break;
    case O_M: cfg->multi = MULTI_M; break;
    case O_X: cfg->multi = MULTI_X; break;
    case O_REPLACE:
        if (!*v)
            return usage_error("%s: the replacement string is empty", shown);
        cfg->replace = v;
        break;
    case O_ARGSEP:
    case O_ARGFILESEP:
        if (!*v)
            return usage_error("%s: the separator is empty", shown);
        *(o->id == O_ARGSEP ? &cfg->arg_sep : &cfg->arg_file_sep) = v;
        break;
    case O_SHELL: cfg->shell = true; break;
    case O_DRYRUN: cfg->dry_run = true; break;
    case O_TIMEOUT: {
        double t = strtod(v, &end);

        if (*end == '%' && end[1] == '\0' && t > 0 && t <= 1e9) {
            cfg->timeout_pct = t;
            cfg->timeout = 0;
            break;
        }
        t = parse_time(v);
        if (!(t > 0) || t > 1e9)
            return usage_error("bad %s: %s (want seconds, a time such as 1m30s, or N%% of "
                               "the median runtime, more than 0)", shown, v);
        cfg->timeout = t;
        cfg->timeout_pct = 0;
        break;
    }
    case O_DELAY:
        cfg->delay = parse_time(v);
        if (!(cfg->delay >= 0) || cfg->delay > 1e6)
            return usage_error("bad %s: %s (want seconds, or a time such as 1m30s)", shown, v);
        break;
    case O_JOBLOG: cfg->joblog = v; break;
    case O_RETRIES:
        if (parse_count(v, strlen(v), 1000000, &n) < 0)
            return usage_error("bad %s: %s (want a count)", shown, v);
        cfg->retries = n ? (unsigned long)n : ULONG_MAX;  /* 0: until it succeeds */
        break;
    case O_PIPE: cfg->pipe = true; break;
    case O_ROUNDROBIN: cfg->round_robin = true; break;
    case O_BLOCK:
        if (parse_size(v, &cfg->block) < 0 || cfg->block == 0 || cfg->block > (1ULL << 40))
            return usage_error("bad %s: %s (want bytes, with K, M, G, T: powers of 1024, k, m, g, t: of 1000)", shown, v);
        break;
    case O_RECEND: cfg->recend = v; break;
    case O_GROUP: cfg->output_mode = OUTPUT_GROUP; break;
    case O_UNGROUP: cfg->output_mode = OUTPUT_UNGROUP; break;
    case O_LINEBUF: cfg->output_mode = OUTPUT_LINES; break;
    case O_TAG: cfg->tag = true; break;
    case O_TAGSTRING: cfg->tagstring = v; break;
    case O_TMPDIR: cfg->tmpdir = v; break;
    case O_BUFSIZE:
    case O_BUFTOTAL: {
        unsigned long long *to = o->id == O_BUFSIZE ? &cfg->buffer_size : &cfg->buffer_total;

        if (parse_size(v, to) < 0 || *to == 0)
            return usage_error("bad %s: %s (want bytes, with K, M, G: powers of 1024, "
                               "k, m, g: of 1000)", shown, v);
        break;
    }
    case O_RECSTART: cfg->recstart = v; break;
    case O_RETRYFAILED: cfg->retry_failed = true; break;
    case O_TERMSEQ:
        if (parse_termseq(v, cfg) < 0)
            return usage_error("bad %s: %s (want SIGNAL,MS,SIGNAL,MS..., such as "
                               "TERM,200,TERM,100,KILL,25)", shown, v);
        break;
    case O_HALT:
        if (parse_halt(v, cfg) < 0)
            return usage_error("bad %s: %s (want never, or soon or now,fail, success or "
                               "done=N or N%%, or -2..2)", shown, v);
        break;
    case O_HALTERR:
        cfg->halt_when = HALT_SOON;
        cfg->halt_what = HALT_FAIL;
        cfg->halt_n = 1;
        cfg->halt_pct = false;
        break;
    case O_RESULTS: cfg->results = v; break;
    case O_OUTCAP:
        errno = 0;
        cfg->output_cap = strtoull(v, &end, 10);
        if (errno || *end || !*v || *v == '-')
            return usage_error("bad %s: %s (want bytes)", shown, v);
        break;
    case O_CGROUP: cfg->cgroup = v; break;
    case O_PROGRESS: cfg->progress = true; break;
    case O_ETA: cfg->eta = true; break;
    case O_BAR: cfg->bar = true; break;
    case O_MEMFREE:
        if (parse_size(v, &cfg->memfree) < 0 || cfg->memfree == 0)
            return usage_error("bad %s: %s (want bytes, with K, M, G: powers of 1024, "
                               "k, m, g: of 1000)", shown, v);
        break;
    case O_SHARD:
        if (parse_shard(v, cfg) < 0)
            return EXIT_ERROR;
        break;
    case O_RESUME: cfg->resume = true; break;
    case O_RESUMEFAILED: cfg->resume = cfg->resume_failed = true; break;
    case O_IGNORED: break;
    case O_HELP: return print_help(usage);
    case O_VERSION: return PARALLEL_VERSION;
    }
    return 0;
}

static const struct opt *halt_opt(void)
{
    size_t i;

    for (i = 0; opts[i].id != O_HALT; i++)
        ;
    return &opts[i];
}

static bool is_halt(const char *s)
{
    struct parallel_config probe = { 0 };

    return parse_halt(s, &probe) == 0;
}

static const struct opt *find_short(char c)
{
    size_t i;

    for (i = 0; i < NOPTS; i++)
        if (opts[i].shrt == c)
            return &opts[i];
    return NULL;
}

/* Which separator word s is: 1 :::, 2 :::+, 3 ::::, 4 ::::+, or 0. */
static int sep_kind(const char *s, const char *sep, const char *filesep)
{
    size_t a = strlen(sep), f = strlen(filesep);

    if (!strcmp(s, sep))
        return 1;
    if (!strncmp(s, sep, a) && !strcmp(s + a, "+"))
        return 2;
    if (!strcmp(s, filesep))
        return 3;
    if (!strncmp(s, filesep, f) && !strcmp(s + f, "+"))
        return 4;
    return 0;
}

/* The words after the options: COMMAND, then the sources. */
static int parse_rest(int argc, char **argv, int i, struct parallel_config *cfg,
                      const char *sep, const char *filesep)
{
    int k, kind;

    cfg->tmpl = argv + i;
    while (i < argc && !sep_kind(argv[i], sep, filesep))
        i++;
    cfg->ntmpl = (size_t)(argv + i - cfg->tmpl);
    while (i < argc) {
        kind = sep_kind(argv[i++], sep, filesep);
        for (k = i; k < argc && !sep_kind(argv[k], sep, filesep); k++)
            ;
        if (kind <= 2) {
            if (add_source(cfg, (struct source_spec){ .kind = SRC_ARGS,
                                                      .args = argv + i,
                                                      .nargs = (size_t)(k - i),
                                                      .linked = kind == 2 }) < 0)
                return EXIT_USAGE;
        } else {
            if (k == i)
                return usage_error("no FILE after %s%s", filesep, kind == 4 ? "+" : "");
            for (; i < k; i++) {
                if (add_source(cfg, (struct source_spec){ .kind = SRC_FILE,
                                                          .path = argv[i],
                                                          .linked = kind == 4 }) < 0)
                    return EXIT_USAGE;
            }
        }
        i = k;
    }
    return 0;
}

int parallel_parse(int argc, char **argv, struct parallel_config *cfg)
{
    const char *v, *eq;
    const struct opt *o;
    char shown[64];
    size_t i, len;
    int a, r;

    *cfg = (struct parallel_config){ .shard_n = 1, .arg_sep = ":::", .arg_file_sep = "::::" };
    for (a = 1; a < argc; a++) {
        const char *s = argv[a];

        if (!strcmp(s, "--")) {
            a++;
            break;
        }
        if (s[0] != '-' || !s[1])
            break;  /* COMMAND */
        if (s[1] == '-') {
            eq = strchr(s + 2, '=');
            len = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
            for (o = NULL, i = 0; i < NOPTS && !o; i++)
                if (opts[i].name && strlen(opts[i].name) == len &&
                    !strncmp(opts[i].name, s + 2, len))
                    o = &opts[i];
            if (!o) {
                r = unknown_long(s + 2, len);
                goto fail;
            }
            snprintf(shown, sizeof shown, "--%s", o->name);
            v = eq ? eq + 1 : NULL;
            /* GNU parallel's --halt-on-error takes --halt's value; zmp's
             * alone is soon,fail=1.  The next word is its value when it
             * is one. */
            if (o->id == O_HALTERR && (v || (a + 1 < argc && is_halt(argv[a + 1])))) {
                o = halt_opt();
                v = v ? v : argv[++a];
            }
            if (o->arg && !v) {
                if (a + 1 == argc) {
                    r = usage_error("%s needs a value", shown);
                    goto fail;
                }
                v = argv[++a];
            } else if (!o->arg && v) {
                r = usage_error("%s takes no value", shown);
                goto fail;
            }
            if ((r = apply(cfg, o, v, shown)))
                goto fail;
            continue;
        }
        /* Short options, bundled (-kj4); a value is the rest, or the
         * next word (-j -1 is "-1" jobs less). */
        for (s++; *s; s++) {
            if (!(o = find_short(*s))) {
                r = usage_error("unknown option -%c", *s);
                goto fail;
            }
            snprintf(shown, sizeof shown, "-%c", *s);
            v = NULL;
            if (o->arg) {
                if (s[1]) {
                    v = s + 1;
                } else if (a + 1 < argc) {
                    v = argv[++a];
                } else {
                    r = usage_error("%s needs a value", shown);
                    goto fail;
                }
            }
            if ((r = apply(cfg, o, v, shown)))
                goto fail;
            if (v)
                break;
        }
    }
    if ((r = parse_rest(argc, argv, a, cfg, cfg->arg_sep, cfg->arg_file_sep)))
        goto fail;
    if (cfg->resume && !cfg->results && !cfg->joblog) {
        r = usage_error("--resume and --resume-failed need --results FILE or --joblog FILE");
        goto fail;
    }
    if (cfg->pipe && cfg->nsrcs) {
        r = usage_error("--pipe reads standard input: no ::: or :::: or -a with it");
        goto fail;
    }
    if (cfg->pipe && (cfg->max_args || cfg->no_values || cfg->multi != MULTI_NONE ||
                      cfg->colsep)) {
        r = usage_error("-n, -N, -m, -X and --colsep are not built with --pipe "
                        "(GNU parallel's --pipe -N counts records per block)");
        goto fail;
    }
    if (cfg->pipe && cfg->halt_when != HALT_NEVER && cfg->halt_pct) {
        r = usage_error("--halt N%% does not go with --pipe: the number of jobs is not "
                        "known (as in GNU parallel)");
        goto fail;
    }
    if (cfg->round_robin && !cfg->pipe) {
        r = usage_error("--round-robin goes with --pipe");
        goto fail;
    }
    if (cfg->round_robin && cfg->retries) {
        r = usage_error("--retries cannot be combined with --round-robin (as in GNU parallel)");
        goto fail;
    }
    if (cfg->retry_failed && !cfg->joblog) {
        r = usage_error("--retry-failed needs --joblog FILE");
        goto fail;
    }
    return 0;
fail:
    parallel_config_free(cfg);
    return r;
}

void parallel_config_free(struct parallel_config *cfg)
{
    free(cfg->srcs);
    cfg->srcs = NULL;
    cfg->nsrcs = 0;
}
