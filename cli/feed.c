/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "feed.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define SLOTS_MAX 1024

/* One job's pipe.  wfd, block, len, off belong to the thread; ended and
 * sent are shared (under m). */
struct slot {
    int wfd;                /* the pipe's write end, or -1 */
    bool live;              /* a job was asked for on it and has not ended */
    bool ended;             /* its job ended: close, drop, free the slot */
    char *block;            /* being written, or NULL */
    size_t len, off;
    uint64_t sent;
};

struct queued {
    int rfd;
    unsigned slot;
};

struct feed {
    pthread_t thread;
    bool started;
    pthread_mutex_t m;
    struct piper p;
    struct slot *slot;
    unsigned nslots, rr;
    int ready_efd, wake_efd, stop_fd;
    struct queued *q;       /* jobs to start, in order */
    size_t qn, qcap;
    bool finished, quit;
    int error;
    char *held;             /* a block read, waiting for a job to take it */
    size_t held_len;
};

static void ring(int efd)
{
    uint64_t one = 1;

    (void)!write(efd, &one, sizeof one);
}

static void drain(int efd)
{
    uint64_t n;

    while (read(efd, &n, sizeof n) > 0)
        ;
}

static void drop(struct slot *s)
{
    if (s->wfd >= 0)
        close(s->wfd);
    s->wfd = -1;
    free(s->block);
    s->block = NULL;
}

/* A new job on a free slot, the held block its first: 0, or -errno. */
static int new_job(struct feed *f, unsigned k)
{
    struct slot *s = &f->slot[k];
    struct queued *q;
    int p[2];

    if (f->qn == f->qcap) {
        size_t cap = f->qcap ? f->qcap * 2 : 8;

        if (!(q = realloc(f->q, cap * sizeof *q)))
            return -ENOMEM;
        f->q = q;
        f->qcap = cap;
    }
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    if (fcntl(p[1], F_SETFL, O_NONBLOCK) < 0) {
        int e = -errno;

        close(p[0]);
        close(p[1]);
        return e;
    }
    pthread_mutex_lock(&f->m);
    *s = (struct slot){ .wfd = p[1], .live = true };
    f->q[f->qn++] = (struct queued){ p[0], k };
    pthread_mutex_unlock(&f->m);
    ring(f->ready_efd);
    return 0;
}

/* Give the held block to a new job while fewer than slots run (so the
 * first blocks start that many, as GNU parallel), else to a live job
 * free to take it, round robin: true when it found one. */
static bool place(struct feed *f, int *err)
{
    unsigned i, k;

    for (k = 0; k < f->nslots && f->slot[k].live; k++)
        ;
    if (k < f->nslots) {
        if ((*err = new_job(f, k)) < 0)
            return false;
    } else {
        for (i = 0; i < f->nslots; i++) {
            k = (f->rr + i) % f->nslots;
            if (f->slot[k].wfd >= 0 && !f->slot[k].block)
                break;
        }
        if (i == f->nslots)
            return false;
    }
    f->slot[k].block = f->held;
    f->slot[k].len = f->held_len;
    f->slot[k].off = 0;
    f->held = NULL;
    f->rr = k + 1;
    return true;
}

/* Write what the pipes take now. */
static void write_some(struct feed *f)
{
    struct slot *s;
    unsigned k;
    ssize_t w;

    for (k = 0; k < f->nslots; k++) {
        s = &f->slot[k];
        while (s->block && s->wfd >= 0) {
            w = write(s->wfd, s->block + s->off, s->len - s->off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && errno == EAGAIN)
                break;
            if (w < 0) {
                /* EPIPE: the job closed its stdin; the rest is its loss,
                 * as with any reader that leaves. */
                drop(s);
                break;
            }
            pthread_mutex_lock(&f->m);
            s->sent += (uint64_t)w;
            pthread_mutex_unlock(&f->m);
            s->off += (size_t)w;
            if (s->off == s->len) {
                free(s->block);
                s->block = NULL;
            }
        }
    }
}

static void *run(void *arg)
{
    struct feed *f = arg;
    struct pollfd pfd[SLOTS_MAX + 3];
    bool eof = false, busy;
    unsigned k, n;
    int e = 0, r;

    for (;;) {
        pthread_mutex_lock(&f->m);
        for (k = 0; k < f->nslots; k++) {
            if (f->slot[k].ended) {
                drop(&f->slot[k]);
                f->slot[k].ended = f->slot[k].live = false;
            }
        }
        if (f->quit)
            e = e ? e : -ECANCELED;
        pthread_mutex_unlock(&f->m);
        if (e)
            break;
        write_some(f);
        if (!f->held && !eof) {
            r = piper_next(&f->p, &f->held, &f->held_len);
            if (r == 0)
                eof = true;
            if (r < 0 && r != -EAGAIN)
                e = r;
            if (e)
                break;
        }
        if (f->held && place(f, &e))
            continue;  /* write it at once */
        if (e)
            break;
        busy = f->held != NULL;
        for (k = 0; k < f->nslots; k++)
            busy |= f->slot[k].block != NULL;
        if (eof && !busy)
            break;
        n = 0;
        pfd[n++] = (struct pollfd){ .fd = f->wake_efd, .events = POLLIN };
        if (f->stop_fd >= 0)
            pfd[n++] = (struct pollfd){ .fd = f->stop_fd, .events = POLLIN };
        if (!f->held && !eof)
            pfd[n++] = (struct pollfd){ .fd = f->p.fd, .events = POLLIN };
        for (k = 0; k < f->nslots; k++)
            if (f->slot[k].block && f->slot[k].wfd >= 0)
                pfd[n++] = (struct pollfd){ .fd = f->slot[k].wfd, .events = POLLOUT };
        if (poll(pfd, n, -1) < 0 && errno != EINTR) {
            e = -errno;
            break;
        }
        drain(f->wake_efd);
        if (f->stop_fd >= 0 && (pfd[1].revents & POLLIN)) {
            e = -ECANCELED;
            break;
        }
    }
    /* The end of stdin (or a stop): every job sees end of file. */
    pthread_mutex_lock(&f->m);
    for (k = 0; k < f->nslots; k++)
        drop(&f->slot[k]);
    free(f->held);
    f->held = NULL;
    f->finished = true;
    f->error = e == -ECANCELED ? 0 : e;
    pthread_mutex_unlock(&f->m);
    ring(f->ready_efd);
    return NULL;
}

int feed_start(struct feed **ret, struct piper *p, unsigned slots, int stop_fd)
{
    struct feed *f = calloc(1, sizeof *f);
    sigset_t all, old;
    unsigned k;
    int e;

    if (!f)
        return -ENOMEM;
    f->p = *p;
    *p = (struct piper){ .fd = -1 };
    f->nslots = slots < 1 ? 1 : slots > SLOTS_MAX ? SLOTS_MAX : slots;
    f->stop_fd = stop_fd;
    f->ready_efd = f->wake_efd = -1;
    pthread_mutex_init(&f->m, NULL);
    if (!(f->slot = calloc(f->nslots, sizeof *f->slot)) ||
        (f->ready_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
        (f->wake_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        e = f->slot ? -errno : -ENOMEM;
        goto fail;
    }
    for (k = 0; k < f->nslots; k++)
        f->slot[k].wfd = -1;
    /* Signals go to the other threads: block them all here. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    e = -pthread_create(&f->thread, NULL, run, f);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e)
        goto fail;
    f->started = true;
    *ret = f;
    return 0;
fail:
    *p = f->p;
    f->p = (struct piper){ .fd = -1 };
    feed_free(f);
    return e;
}

int feed_ready_fd(const struct feed *f)
{
    return f->ready_efd;
}

int feed_take(struct feed *f, int *ret_fd, unsigned *ret_slot)
{
    int r;

    drain(f->ready_efd);
    pthread_mutex_lock(&f->m);
    if (f->qn) {
        *ret_fd = f->q[0].rfd;
        *ret_slot = f->q[0].slot;
        memmove(f->q, f->q + 1, (f->qn - 1) * sizeof *f->q);
        f->qn--;
        r = 1;
    } else {
        r = f->finished ? f->error : -EAGAIN;
    }
    pthread_mutex_unlock(&f->m);
    return r;
}

void feed_job_ended(struct feed *f, unsigned slot, uint64_t *ret_sent)
{
    pthread_mutex_lock(&f->m);
    *ret_sent = f->slot[slot].sent;
    f->slot[slot].ended = true;
    pthread_mutex_unlock(&f->m);
    ring(f->wake_efd);
}

void feed_free(struct feed *f)
{
    size_t i;

    if (!f)
        return;
    if (f->started) {
        pthread_mutex_lock(&f->m);
        f->quit = true;
        pthread_mutex_unlock(&f->m);
        ring(f->wake_efd);
        pthread_join(f->thread, NULL);
    }
    for (i = 0; i < f->qn; i++)
        close(f->q[i].rfd);
    free(f->q);
    free(f->slot);
    free(f->held);
    piper_free(&f->p);
    if (f->ready_efd >= 0)
        close(f->ready_efd);
    if (f->wake_efd >= 0)
        close(f->wake_efd);
    pthread_mutex_destroy(&f->m);
    free(f);
}
