/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "joblog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char header[] =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";

/* One job line of n bytes (its newline removed) into l: 0, or -1 when it
 * is not one.  l->command points into line: a NUL in it (GNU parallel
 * writes a newline of a command as one) is a newline again. */
static int parse_line(char *line, size_t n, struct joblog_line *l)
{
    char *f[9], *p = line, *end, *lim = line + n;
    size_t i;

    for (i = 0; i < 8; i++) {
        if (!(end = memchr(p, '\t', (size_t)(lim - p))))
            return -1;
        *end = '\0';
        f[i] = p;
        p = end + 1;
    }
    f[8] = p;
    for (end = p; end < lim; end++)
        if (*end == '\0')
            *end = '\n';
    *lim = '\0';
    for (i = 0; i < 8; i++)
        if (strlen(f[i]) == 0 && i != 1)
            return -1;
    errno = 0;
    l->seq = strtoull(f[0], &end, 10);
    if (*end || !l->seq)
        return -1;
    l->start = strtod(f[2], &end);
    if (*end)
        return -1;
    l->runtime = strtod(f[3], &end);
    if (*end)
        return -1;
    l->send = strtoull(f[4], &end, 10);
    if (*end)
        return -1;
    l->receive = strtoull(f[5], &end, 10);
    if (*end)
        return -1;
    l->exitval = (int)strtol(f[6], &end, 10);
    if (*end)
        return -1;
    l->signal = (int)strtol(f[7], &end, 10);
    if (*end || errno)
        return -1;
    l->command = f[8];
    return 0;
}

/* Every job line of f to fn; a torn last line (no newline: a crash while
 * it was written) is ignored, *good_end (may be NULL) set to where it
 * begins.  0, -errno, or -EBADMSG. */
static int scan(FILE *f, joblog_fn fn, void *arg, size_t *bad_line, off_t *good_end)
{
    struct joblog_line l;
    char *line = NULL;
    size_t cap = 0, no = 0;
    ssize_t n;
    off_t at = 0;
    int r = 0;

    errno = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        no++;
        if (line[n - 1] != '\n')
            break;
        at += n;
        line[n - 1] = '\0';
        if (no == 1 && !strncmp(line, header, sizeof header - 2))
            continue;
        if (parse_line(line, (size_t)n - 1, &l) < 0) {
            *bad_line = no;
            r = -EBADMSG;
            break;
        }
        if (fn && (r = fn(arg, &l)) != 0)
            break;
    }
    if (!r && ferror(f))
        r = errno ? -errno : -EIO;
    if (good_end)
        *good_end = at;
    free(line);
    return r;
}

int joblog_read(const char *path, joblog_fn fn, void *arg, size_t *bad_line)
{
    FILE *f = fopen(path, "re");
    int r;

    if (!f)
        return -errno;
    r = scan(f, fn, arg, bad_line, NULL);
    fclose(f);
    return r;
}

FILE *joblog_open(const char *path, bool append, joblog_fn fn, void *arg,
                  size_t *bad_line)
{
    bool out = !strcmp(path, "-");  /* standard output: written, never read */
    off_t end = 0;
    FILE *f;
    int fd, r;

    if (out && append) {
        errno = ESPIPE;
        return NULL;
    }
    fd = out ? fcntl(1, F_DUPFD_CLOEXEC, 3)
             : open(path, O_RDWR | O_CREAT | O_CLOEXEC | (append ? 0 : O_TRUNC), 0666);
    if (fd < 0)
        return NULL;
    if (!(f = fdopen(fd, out ? "w" : "r+"))) {
        close(fd);
        return NULL;
    }
    if (append && (r = scan(f, fn, arg, bad_line, &end)) != 0) {
        fclose(f);
        errno = r < 0 ? -r : EINVAL;
        return NULL;
    }
    /* A torn last line is cut off, not continued. */
    if ((append && ftruncate(fd, end) < 0) || (!out && fseeko(f, 0, SEEK_END) < 0) ||
        ((out || ftello(f) == 0) && (fputs(header, f) == EOF || fflush(f) != 0))) {
        r = errno;
        fclose(f);
        errno = r;
        return NULL;
    }
    return f;
}

int joblog_write(FILE *f, const struct joblog_line *l)
{
    const char *c;

    if (fprintf(f, "%llu\t:\t%.3f\t%10.3f\t%llu\t%llu\t%d\t%d\t",
                (unsigned long long)l->seq, l->start, l->runtime,
                (unsigned long long)l->send, (unsigned long long)l->receive,
                l->exitval, l->signal) < 0)
        return errno ? -errno : -EIO;
    /* One line per job, whatever the command holds: a newline in it
     * (inside quotes) is written as a NUL, as GNU parallel writes it,
     * and read back as a newline. */
    for (c = l->command; *c; c++) {
        if (putc(*c == '\n' ? '\0' : *c, f) == EOF)
            return errno ? -errno : -EIO;
    }
    if (putc('\n', f) == EOF || fflush(f) != 0)
        return errno ? -errno : -EIO;
    return 0;
}
