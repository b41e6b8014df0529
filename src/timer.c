/* SPDX-License-Identifier: MIT */
/*
 * Children's timers (timeout steps, drain graces): a binary min-heap of
 * the children whose timer is armed, so finding the next deadline is O(1)
 * and arming one O(log n), however many children are in flight.
 *
 * Room is reserved when a child with a timeout is launched
 * (zmp__timer_reserve), so arming a timer later never fails.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "internal.h"

#define NOT_IN_HEAP ((size_t)-1)

static bool before(const struct zmp__proc *a, const struct zmp__proc *b)
{
    return a->tmo.timer < b->tmo.timer;
}

static void put(struct zmp__ctx *ctx, size_t i, struct zmp__proc *p)
{
    ctx->timers[i] = p;
    p->tmo.heap_idx = i;
}

static void sift_up(struct zmp__ctx *ctx, size_t i)
{
    struct zmp__proc *p = ctx->timers[i];

    while (i > 0 && before(p, ctx->timers[(i - 1) / 2])) {
        put(ctx, i, ctx->timers[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    put(ctx, i, p);
}

static void sift_down(struct zmp__ctx *ctx, size_t i)
{
    struct zmp__proc *p = ctx->timers[i];
    size_t c;

    for (;;) {
        c = 2 * i + 1;
        if (c >= ctx->ntimers)
            break;
        if (c + 1 < ctx->ntimers && before(ctx->timers[c + 1], ctx->timers[c]))
            c++;
        if (!before(ctx->timers[c], p))
            break;
        put(ctx, i, ctx->timers[c]);
        i = c;
    }
    put(ctx, i, p);
}

void zmp__timer_init(struct zmp__proc *p)
{
    p->tmo.timer = 0;
    p->tmo.heap_idx = NOT_IN_HEAP;
}

int zmp__timer_reserve(struct zmp__ctx *ctx)
{
    struct zmp__proc **t;
    size_t cap;

    if (ctx->ntimed < ctx->timers_cap) {
        ctx->ntimed++;
        return 0;
    }
    cap = ctx->timers_cap ? ctx->timers_cap * 2 : 64;
    t = realloc(ctx->timers, cap * sizeof *t);
    if (!t)
        return -ENOMEM;
    ctx->timers = t;
    ctx->timers_cap = cap;
    ctx->ntimed++;
    return 0;
}

void zmp__timer_unreserve(struct zmp__ctx *ctx)
{
    ctx->ntimed--;
}

void zmp__timer_set(struct zmp__proc *p, int64_t when)
{
    struct zmp__ctx *ctx = p->ctx;
    size_t i = p->tmo.heap_idx;

    if (i == NOT_IN_HEAP) {
        if (!when)
            return;
        p->tmo.timer = when;
        put(ctx, ctx->ntimers++, p);
        sift_up(ctx, p->tmo.heap_idx);
        return;
    }
    if (!when) {
        /* Out of the heap: the last entry fills the hole. */
        p->tmo.timer = 0;
        p->tmo.heap_idx = NOT_IN_HEAP;
        if (i == --ctx->ntimers)
            return;
        put(ctx, i, ctx->timers[ctx->ntimers]);
        sift_up(ctx, i);
        sift_down(ctx, ctx->timers[i]->tmo.heap_idx);
        return;
    }
    p->tmo.timer = when;
    sift_up(ctx, i);
    sift_down(ctx, p->tmo.heap_idx);
}

/*
 * Fire the timers that are due; return the earliest one still pending, or
 * ZMP__FOREVER.  A timer's step may arm it again, later: it goes back
 * into the heap and is looked at again only once due.
 */
int64_t zmp__ctx_fire_timers(struct zmp__ctx *ctx, int64_t now)
{
    struct zmp__proc *p;

    while (ctx->ntimers && ctx->timers[0]->tmo.timer <= now) {
        p = ctx->timers[0];
        zmp__proc_fire_timer(p, now);  /* takes it out of the heap */
    }
    return ctx->ntimers ? ctx->timers[0]->tmo.timer : ZMP__FOREVER;
}
