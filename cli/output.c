/* SPDX-License-Identifier: MIT */
/*
 * The jobs' output of `zmp parallel` on its way to stdout and stderr, in
 * bounded memory whatever the jobs print.
 *
 * The library hands each piece of a job's output to output_write() as it
 * reads it (zmp_options.on_output).  At any moment at most one job "has
 * the turn": its bytes go straight to the real descriptor.  The others'
 * bytes wait in a queue per job and stream: in memory up to a share per
 * job (--buffer-size) and in all (--buffer-total), then in an unlinked
 * temporary file (O_TMPFILE: nothing is left behind, even after a
 * kill -9).  When a job's turn comes, its queue is copied out in order
 * (sendfile from the file) and it streams live from then on.
 *
 * Who has the turn:
 *   -k            the oldest job not yet printed; when it ends, the next
 *                 one's queue goes out, and so on.
 *   --group       the first job to write while nobody has it, until it ends
 *                 (no other job's output is written meanwhile, so each
 *                 job's output stays together, as GNU parallel prints it
 *                 at the end).  Jobs that end meanwhile are printed whole
 *                 when it ends, in the order they ended; then the turn
 *                 goes to the oldest running job with bytes waiting.
 *   --line-buffer whole lines go out as they come, from any job; a job
 *                 takes the turn only while a line of its is written in
 *                 pieces (a line longer than its memory share, which
 *                 would not fit): other jobs' lines wait until it ends.
 *   -u            no turn: bytes go out as they come.
 * The turn covers stdout and stderr together, so that with 2>&1 one job's
 * output does not cut into another's.
 *
 * A held job (--results, --retries) never has the turn: all of its output
 * waits, untagged, until it is released; then it goes through the above
 * as if written at that moment.
 *
 * Threads: output_write() runs on the library's threads (worker threads
 * when several jobs run at once) and output_job_end() on the stream's.
 * One mutex guards everything here, and is held while writing to stdout,
 * stderr or a temporary file: a slow reader then holds up every job's
 * output, which is the backpressure wanted (the jobs block on full pipes).
 * Nothing here calls the library, so the library's own lock, held around
 * output_write(), is always taken before this one, never after.
 *
 * Errors: the first write error on stdout, stderr or a temporary file is
 * kept (output_error); from then on nothing is written, and output_write()
 * returns it so that the library kills each job that writes.
 */
#define _GNU_SOURCE
#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_MIN  (4 * 1024)
#define CHUNK_MAX  (64 * 1024)
#define STAGE_SIZE (128 * 1024)   /* tagged output gathered before it goes on */
#define COPY_SIZE  (64 * 1024)    /* the copy buffer when sendfile cannot */

/* A piece of waiting output: data[start, end) still to go. */
struct chunk {
    struct chunk *next;
    size_t start, end, cap;
    char data[];
};

/* One stream of one job, waiting: in chunks, then in a file.  Once the
 * file holds bytes, later ones go there too, behind them. */
struct queue {
    struct chunk *head, *tail;
    int fd;                 /* the spill file, or -1 */
    off_t rd, wr;           /* the file's bytes still to go: [rd, wr) */
    bool nl;                /* the last byte queued is a newline */
};

struct output_job {
    struct output *o;
    struct output_job *prev, *next;   /* every job not yet freed, in order */
    struct output_job *enext;         /* ended, waiting for the turn */
    struct output_job *wprev, *wnext; /* bytes waiting (--group, --lb) */
    unsigned long long seq;           /* the job's place in job order */
    bool waiting;                     /* in the list above */
    struct queue q[2];                /* stdout, stderr */
    size_t mem;                       /* bytes of chunks held */
    char *prefix;                     /* tag, or NULL */
    size_t prefix_len;
    bool bol[2];                      /* the next byte starts a line */
    bool open[2];                     /* with the turn: a line written in part */
    bool ended;
    bool hold;                        /* kept whole, untagged, until released */
};

struct output {
    pthread_mutex_t m;
    enum output_mode mode;
    bool keep_order;
    size_t job_mem, total_mem;
    size_t mem;                       /* every job's chunks */
    int fd[2];
    char *tmpdir;
    struct output_job *first, *last;
    struct output_job *ended, *ended_last;  /* --group: ended, in order */
    struct output_job *holder;        /* has the turn (not with -k, -u) */
    /* --group and --line-buffer: the jobs that queued bytes (while
     * another had the turn, or a line not finished yet), in job order, so
     * that passing the turn does not walk every running job (10,000 with
     * -j 10000) at each end. */
    struct output_job *wfirst, *wlast;
    unsigned long long seq;
    int error;
    int error_fd;
    char what[4200];
    char *stage;                      /* STAGE_SIZE, for tagging */
    size_t staged;
    char *copy;                       /* COPY_SIZE */
    char *replay;                     /* COPY_SIZE, for a released job's file */
};

static void fail(struct output *o, int c, int e)
{
    if (o->error)
        return;
    o->error = e;
    o->error_fd = c < 0 ? -1 : c + 1;
    if (c < 0)
        snprintf(o->what, sizeof o->what, "a temporary file in %s", o->tmpdir);
    else
        snprintf(o->what, sizeof o->what, "%s",
                 c == 0 ? "standard output" : "standard error");
}

/* A descriptor someone made non-blocking: wait until it takes more. */
static void wait_writable(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };

    (void)poll(&p, 1, -1);
}

/* Write to stream c (0 stdout, 1 stderr), all of it. */
static void emit(struct output *o, int c, const char *p, size_t n)
{
    ssize_t w;

    while (n > 0 && !o->error) {
        w = write(o->fd[c], p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno == EAGAIN) {
            wait_writable(o->fd[c]);
        } else if (w == 0 || errno != EINTR) {
            fail(o, c, w == 0 ? -EIO : -errno);
        }
    }
}

/* Bytes [off, end) of a spill file to stream c. */
static void copy_out(struct output *o, int c, int fd, off_t off, off_t end)
{
    bool plain = false;
    ssize_t n;

    while (off < end && !o->error) {
        size_t want = (size_t)(end - off) < (1u << 30) ? (size_t)(end - off) : (1u << 30);

        if (!plain) {
            n = sendfile(o->fd[c], fd, &off, want);
            if (n > 0)
                continue;
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN) {
                wait_writable(o->fd[c]);
                continue;
            }
            /* An O_APPEND file, or a descriptor sendfile cannot write to. */
            if (n < 0 && (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
                plain = true;
                continue;
            }
            fail(o, c, n < 0 ? -errno : -EIO);
            return;
        }
        n = pread(fd, o->copy, want < COPY_SIZE ? want : COPY_SIZE, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fail(o, -1, n < 0 ? -errno : -EIO);
            return;
        }
        emit(o, c, o->copy, (size_t)n);
        off += n;
    }
}

/* An unlinked file to spill to: O_TMPFILE, or where the file system has
 * none, a named one unlinked at once. */
static int open_spill(struct output *o)
{
    char path[4200];
    int fd;

    fd = open(o->tmpdir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd >= 0 ? fd : -errno;
    if (snprintf(path, sizeof path, "%s/zmp-output-XXXXXX", o->tmpdir) >= (int)sizeof path)
        return -ENAMETOOLONG;
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    unlink(path);
    return fd;
}

static bool queued(const struct queue *q)
{
    return q->head || q->wr > q->rd;
}

static void free_chunk(struct output_job *j, struct queue *q)
{
    struct chunk *k = q->head;

    q->head = k->next;
    if (!q->head)
        q->tail = NULL;
    j->mem -= k->cap;
    j->o->mem -= k->cap;
    free(k);
}

/* Everything job j has waiting on stream c goes out. */
static void flush_queue(struct output_job *j, int c)
{
    struct output *o = j->o;
    struct queue *q = &j->q[c];

    while (q->head) {
        emit(o, c, q->head->data + q->head->start, q->head->end - q->head->start);
        free_chunk(j, q);
    }
    if (q->wr > q->rd) {
        copy_out(o, c, q->fd, q->rd, q->wr);
        q->rd = q->wr = 0;
        /* Give the space back: a spill file may be large. */
        if (ftruncate(q->fd, 0) < 0 && !o->error)
            fail(o, -1, -errno);
    }
}

/* Of job j's waiting bytes on stream c, all of them in memory, those up to
 * the last newline go out: the rest is a line not finished yet. */
static void flush_lines(struct output_job *j, int c)
{
    struct queue *q = &j->q[c];
    struct chunk *k, *last = NULL;
    char *nl = NULL, *p;

    for (k = q->head; k; k = k->next)
        if ((p = memrchr(k->data + k->start, '\n', k->end - k->start))) {
            last = k;
            nl = p;
        }
    if (!last)
        return;
    while (q->head != last) {
        emit(j->o, c, q->head->data + q->head->start, q->head->end - q->head->start);
        free_chunk(j, q);
    }
    emit(j->o, c, last->data + last->start, (size_t)(nl + 1 - (last->data + last->start)));
    last->start = (size_t)(nl + 1 - last->data);
    if (last->start == last->end)
        free_chunk(j, q);
}

/* --group and --line-buffer: job j queues bytes; it joins the waiting
 * jobs in job order (from the end: the jobs that start waiting are mostly
 * the newest). */
static void wait_add(struct output_job *j)
{
    struct output *o = j->o;
    struct output_job *at = o->wlast;

    if (j->waiting)
        return;
    while (at && at->seq > j->seq)
        at = at->wprev;
    j->wprev = at;
    j->wnext = at ? at->wnext : o->wfirst;
    if (j->wnext)
        j->wnext->wprev = j;
    else
        o->wlast = j;
    if (at)
        at->wnext = j;
    else
        o->wfirst = j;
    j->waiting = true;
}

static void wait_del(struct output_job *j)
{
    struct output *o = j->o;

    if (!j->waiting)
        return;
    if (j->wprev)
        j->wprev->wnext = j->wnext;
    else
        o->wfirst = j->wnext;
    if (j->wnext)
        j->wnext->wprev = j->wprev;
    else
        o->wlast = j->wprev;
    j->wprev = j->wnext = NULL;
    j->waiting = false;
}

/* Queue n bytes of job j's stream c: in memory while its share and the
 * total allow, else in its spill file. */
static void enqueue(struct output_job *j, int c, const char *p, size_t n)
{
    struct output *o = j->o;
    struct queue *q = &j->q[c];
    struct chunk *k;
    size_t m, cap;
    ssize_t w;
    int fd;

    if (n == 0)
        return;
    if (!o->keep_order && o->mode != OUTPUT_UNGROUP && !j->hold)
        wait_add(j);
    q->nl = p[n - 1] == '\n';
    while (n > 0 && q->wr == q->rd) {
        k = q->tail;
        if (k && k->end < k->cap) {
            m = k->cap - k->end < n ? k->cap - k->end : n;
            memcpy(k->data + k->end, p, m);
            k->end += m;
            p += m;
            n -= m;
            continue;
        }
        /* Chunks grow with the queue: small outputs stay small. */
        cap = !k ? CHUNK_MIN : k->cap * 2 < CHUNK_MAX ? k->cap * 2 : CHUNK_MAX;
        while (cap < n && cap < CHUNK_MAX)
            cap *= 2;
        if (j->mem + cap > o->job_mem || o->mem + cap > o->total_mem)
            break;
        k = malloc(sizeof *k + cap);
        if (!k)
            break;  /* to the file */
        k->next = NULL;
        k->start = k->end = 0;
        k->cap = cap;
        if (q->tail)
            q->tail->next = k;
        else
            q->head = k;
        q->tail = k;
        j->mem += cap;
        o->mem += cap;
    }
    if (n == 0)
        return;
    if (q->fd < 0) {
        fd = open_spill(o);
        if (fd < 0) {
            fail(o, -1, fd);
            return;
        }
        q->fd = fd;
    }
    while (n > 0) {
        w = pwrite(q->fd, p, n, q->wr);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fail(o, -1, w < 0 ? -errno : -EIO);
            return;
        }
        q->wr += w;
        p += w;
        n -= (size_t)w;
    }
}

static void unlink_job(struct output_job *j)
{
    struct output *o = j->o;
    int c;

    wait_del(j);

    if (j->prev)
        j->prev->next = j->next;
    else
        o->first = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        o->last = j->prev;
    for (c = 0; c < 2; c++) {
        while (j->q[c].head)
            free_chunk(j, &j->q[c]);
        if (j->q[c].fd >= 0)
            close(j->q[c].fd);
    }
    free(j->prefix);
    free(j);
}

/* Job j takes the turn: what it has waiting goes out first. */
static void take(struct output_job *j)
{
    wait_del(j);
    j->o->holder = j;
    flush_queue(j, 0);
    flush_queue(j, 1);
}

/* --line-buffer, nobody has the turn: the jobs' finished lines go out, in
 * job order, and all of an ended job's output; a job whose waiting bytes
 * went to a file takes the turn when they end in the middle of a line. */
static void pass_lines(struct output *o)
{
    struct output_job *j, *next;
    int c;

    for (j = o->wfirst; j && !o->holder; j = next) {
        next = j->wnext;
        for (c = 0; c < 2 && !o->holder; c++) {
            if (!queued(&j->q[c]))
                continue;
            if (j->ended) {
                flush_queue(j, c);
            } else if (j->q[c].wr > j->q[c].rd) {
                j->open[c] = !j->q[c].nl;
                flush_queue(j, c);
                if (j->open[c])
                    o->holder = j;
            } else {
                flush_lines(j, c);
            }
        }
        if (o->holder != j && !queued(&j->q[0]) && !queued(&j->q[1])) {
            wait_del(j);
            if (j->ended)
                unlink_job(j);
        }
    }
}

/* --group, the turn is free: the jobs that ended meanwhile are printed
 * whole, in the order they ended; then the oldest running job with bytes
 * waiting takes the turn. */
static void pass_group(struct output *o)
{
    struct output_job *j;

    while ((j = o->ended)) {
        o->ended = j->enext;
        flush_queue(j, 0);
        flush_queue(j, 1);
        unlink_job(j);
    }
    o->ended_last = NULL;
    /* Those whose queue emptied since (a dropped job, or one that had the
     * turn) are passed over here. */
    while ((j = o->wfirst)) {
        wait_del(j);
        if (!j->ended && !j->hold && (queued(&j->q[0]) || queued(&j->q[1]))) {
            take(j);
            return;
        }
    }
}

/* n bytes of job j for stream c, tagged already. */
static void put(struct output_job *j, int c, const char *p, size_t n)
{
    struct output *o = j->o;
    const char *nl;

    if (o->error || n == 0)
        return;
    if (o->mode == OUTPUT_UNGROUP) {
        emit(o, c, p, n);
        return;
    }
    if (o->keep_order) {
        if (j == o->first)
            emit(o, c, p, n);
        else
            enqueue(j, c, p, n);
        return;
    }
    if (o->mode == OUTPUT_GROUP) {
        if (!o->holder)
            take(j);
        if (o->holder == j)
            emit(o, c, p, n);
        else
            enqueue(j, c, p, n);
        return;
    }
    /* --line-buffer */
    if (o->holder && o->holder != j) {
        enqueue(j, c, p, n);
        return;
    }
    if (o->holder == j) {
        flush_queue(j, c);
        emit(o, c, p, n);
        j->open[c] = p[n - 1] != '\n';
        if (!j->open[0] && !j->open[1]) {
            o->holder = NULL;
            pass_lines(o);
        }
        return;
    }
    nl = memrchr(p, '\n', n);
    if (nl) {
        flush_queue(j, c);
        emit(o, c, p, (size_t)(nl + 1 - p));
        n -= (size_t)(nl + 1 - p);
        p = nl + 1;
    }
    enqueue(j, c, p, n);
    /* A line too long for its memory share is written in pieces, and
     * nobody else's output comes in between until it ends. */
    if (j->q[c].wr > j->q[c].rd) {
        j->open[c] = true;
        o->holder = j;
        flush_queue(j, c);
    }
}

/* Tagged output gathers in the stage, and goes on in big pieces. */
static void stage(struct output_job *j, int c, const char *p, size_t n)
{
    struct output *o = j->o;

    if (o->staged + n > STAGE_SIZE) {
        put(j, c, o->stage, o->staged);
        o->staged = 0;
    }
    if (n > STAGE_SIZE) {
        put(j, c, p, n);
        return;
    }
    memcpy(o->stage + o->staged, p, n);
    o->staged += n;
}

static void put_tagged(struct output_job *j, int c, const char *p, size_t n)
{
    const char *end = p + n, *nl;
    size_t m;

    while (p < end) {
        if (j->bol[c])
            stage(j, c, j->prefix, j->prefix_len);
        nl = memchr(p, '\n', (size_t)(end - p));
        m = nl ? (size_t)(nl + 1 - p) : (size_t)(end - p);
        stage(j, c, p, m);
        j->bol[c] = nl != NULL;
        p += m;
    }
    put(j, c, j->o->stage, j->o->staged);
    j->o->staged = 0;
}

/* n bytes of job j for stream c, as it wrote them. */
static void write_job(struct output_job *j, int c, const char *p, size_t n)
{
    if (j->hold)
        enqueue(j, c, p, n);
    else if (j->prefix_len && j->o->mode != OUTPUT_UNGROUP)
        put_tagged(j, c, p, n);
    else
        put(j, c, p, n);
}

int output_write(void *arg, int fd, const void *data, size_t len)
{
    struct output_job *j = arg;
    struct output *o = j->o;
    int r;

    pthread_mutex_lock(&o->m);
    if (!o->error)
        write_job(j, fd == 2 ? 1 : 0, data, len);
    r = o->error;
    pthread_mutex_unlock(&o->m);
    return r;
}

void output_note(struct output_job *j, int fd, const char *text)
{
    struct output *o = j->o;
    size_t n = strlen(text);
    int c = fd == 2 ? 1 : 0;

    pthread_mutex_lock(&o->m);
    put(j, c, text, n);
    if (n)
        j->bol[c] = text[n - 1] == '\n';
    pthread_mutex_unlock(&o->m);
}

/* Drop what queue q holds. */
static void empty_queue(struct output_job *j, struct queue *q)
{
    while (q->head)
        free_chunk(j, q);
    if (q->wr > q->rd && ftruncate(q->fd, 0) < 0)
        fail(j->o, -1, -errno);
    q->rd = q->wr = 0;
    q->nl = false;
}

void output_job_drop(struct output_job *j)
{
    struct output *o = j->o;

    pthread_mutex_lock(&o->m);
    empty_queue(j, &j->q[0]);
    empty_queue(j, &j->q[1]);
    pthread_mutex_unlock(&o->m);
}

/* The bytes q's spill file holds, read into buf (COPY_SIZE) and handed
 * to fn piece by piece: 0, fn's nonzero return, or a read error (then
 * also the run's output error). */
static int read_spilled(struct output *o, const struct queue *q, char *buf,
                        int (*fn)(void *, const char *, size_t), void *arg)
{
    off_t off;
    ssize_t n;
    int r = 0;

    for (off = q->rd; off < q->wr && r == 0; off += n) {
        n = pread(q->fd, buf, (size_t)(q->wr - off) < COPY_SIZE ? (size_t)(q->wr - off)
                                                                : COPY_SIZE, off);
        if (n < 0 && errno == EINTR) {
            n = 0;
            continue;
        }
        if (n <= 0) {
            r = n < 0 ? -errno : -EIO;
            fail(o, -1, r);
            break;
        }
        r = fn(arg, buf, (size_t)n);
    }
    return r;
}

int output_job_read(struct output_job *j, int fd, int (*fn)(void *, const char *, size_t),
                    void *arg)
{
    struct output *o = j->o;
    struct queue *q = &j->q[fd == 2 ? 1 : 0];
    struct chunk *k;
    int r = 0;

    pthread_mutex_lock(&o->m);
    for (k = q->head; k && r == 0; k = k->next)
        r = fn(arg, k->data + k->start, k->end - k->start);
    if (r == 0)
        r = read_spilled(o, q, o->copy, fn, arg);
    pthread_mutex_unlock(&o->m);
    return r;
}

struct replaying {
    struct output_job *j;
    int c;
};

/* A piece of a released job's file, on its way: stop at an output error. */
static int replay_piece(void *arg, const char *data, size_t len)
{
    struct replaying *rp = arg;

    write_job(rp->j, rp->c, data, len);
    return rp->j->o->error;
}

/* A released job's kept bytes of stream c, in q, go the way of new ones. */
static void replay(struct output_job *j, int c, struct queue *q)
{
    struct output *o = j->o;
    struct replaying rp = { j, c };
    struct chunk *k;

    /* Each chunk leaves the job's count before its bytes go on, so that
     * they find the job's memory share free again. */
    while ((k = q->head)) {
        if (!(q->head = k->next))
            q->tail = NULL;
        j->mem -= k->cap;
        o->mem -= k->cap;
        write_job(j, c, k->data + k->start, k->end - k->start);
        free(k);
    }
    if (!o->error)
        (void)read_spilled(o, q, o->replay, replay_piece, &rp);
    if (q->fd >= 0)
        close(q->fd);
}

void output_job_release(struct output_job *j)
{
    struct output *o = j->o;
    struct queue kept[2];
    int c;

    pthread_mutex_lock(&o->m);
    if (j->hold) {
        j->hold = false;
        for (c = 0; c < 2; c++) {
            kept[c] = j->q[c];
            j->q[c] = (struct queue){ .fd = -1 };
        }
        for (c = 0; c < 2; c++)
            replay(j, c, &kept[c]);
    }
    pthread_mutex_unlock(&o->m);
}

void output_job_end(struct output_job *j)
{
    struct output *o = j->o;
    struct output_job *h;

    pthread_mutex_lock(&o->m);
    j->ended = true;
    if (o->mode == OUTPUT_UNGROUP) {
        unlink_job(j);
    } else if (o->keep_order) {
        /* The oldest ended: the next ones' turns, as far as they have
         * ended too; the first still running streams from now on. */
        while ((h = o->first) && h->ended) {
            unlink_job(h);
            if (o->first && !o->first->hold) {
                flush_queue(o->first, 0);
                flush_queue(o->first, 1);
            }
        }
    } else if (o->mode == OUTPUT_GROUP) {
        if (o->holder == j) {
            o->holder = NULL;
            unlink_job(j);
            pass_group(o);
        } else if (!o->holder) {
            flush_queue(j, 0);
            flush_queue(j, 1);
            unlink_job(j);
        } else {
            wait_del(j);
            j->enext = NULL;
            if (o->ended_last)
                o->ended_last->enext = j;
            else
                o->ended = j;
            o->ended_last = j;
        }
    } else if (!o->holder || o->holder == j) {
        /* --line-buffer: a last line without a newline goes out as it is. */
        flush_queue(j, 0);
        flush_queue(j, 1);
        o->holder = NULL;
        unlink_job(j);
        pass_lines(o);
    } else if (!queued(&j->q[0]) && !queued(&j->q[1])) {
        unlink_job(j);  /* nothing waits: pass_lines would not see it */
    }
    pthread_mutex_unlock(&o->m);
}

int output_job_new(struct output *o, const char *prefix, bool hold, struct output_job **ret)
{
    struct output_job *j = calloc(1, sizeof *j);

    if (!j)
        return -ENOMEM;
    j->o = o;
    j->hold = hold;
    j->q[0].fd = j->q[1].fd = -1;
    j->bol[0] = j->bol[1] = true;
    if (prefix && *prefix) {
        j->prefix = strdup(prefix);
        if (!j->prefix) {
            free(j);
            return -ENOMEM;
        }
        j->prefix_len = strlen(prefix);
    }
    pthread_mutex_lock(&o->m);
    j->seq = o->seq++;
    j->prev = o->last;
    if (o->last)
        o->last->next = j;
    else
        o->first = j;
    o->last = j;
    pthread_mutex_unlock(&o->m);
    *ret = j;
    return 0;
}

int output_error(struct output *o, const char **ret_what, int *ret_fd)
{
    int e;

    pthread_mutex_lock(&o->m);
    e = o->error;
    *ret_what = o->what;
    *ret_fd = o->error_fd;
    pthread_mutex_unlock(&o->m);
    return e;
}

int output_new(const struct output_config *cfg, struct output **ret)
{
    struct output *o = calloc(1, sizeof *o);
    const char *dir = cfg->tmpdir;

    if (!o)
        return -ENOMEM;
    if (!dir || !*dir)
        dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    o->tmpdir = strdup(dir);
    o->stage = malloc(STAGE_SIZE);
    o->copy = malloc(COPY_SIZE);
    o->replay = malloc(COPY_SIZE);
    if (!o->tmpdir || !o->stage || !o->copy || !o->replay) {
        free(o->tmpdir);
        free(o->stage);
        free(o->copy);
        free(o->replay);
        free(o);
        return -ENOMEM;
    }
    pthread_mutex_init(&o->m, NULL);
    o->mode = cfg->mode;
    o->keep_order = cfg->keep_order && cfg->mode != OUTPUT_UNGROUP;
    o->job_mem = cfg->job_mem ? cfg->job_mem : OUTPUT_JOB_MEM_DEFAULT;
    o->total_mem = cfg->total_mem ? cfg->total_mem : OUTPUT_TOTAL_MEM_DEFAULT;
    o->fd[0] = cfg->fd[0];
    o->fd[1] = cfg->fd[1];
    *ret = o;
    return 0;
}

void output_free(struct output *o)
{
    if (!o)
        return;
    while (o->first)
        unlink_job(o->first);
    pthread_mutex_destroy(&o->m);
    free(o->tmpdir);
    free(o->stage);
    free(o->copy);
    free(o->replay);
    free(o);
}
