/* SPDX-License-Identifier: MIT */
/*
 * The handle table.  Handles are handed out in sequence, 1, 2, 3... up to
 * INT_MAX, then from 1 again, skipping any still held: a removed handle
 * names no other child until about two billion more have been started
 * (zmp_deinit() does not restart the count).  They map to children
 * through a hash table with linear probing, kept at most half full.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "internal.h"

static unsigned home(const struct zmp__table *t, int handle)
{
    /* Fibonacci hashing: handles in sequence spread over the table. */
    return ((unsigned)handle * 2654435769u) >> (32 - t->bits);
}

static struct zmp__slot *find(const struct zmp__table *t, int handle)
{
    unsigned i, mask = t->cap - 1;

    if (!t->cap || handle <= 0)
        return NULL;
    for (i = home(t, handle);; i = (i + 1) & mask) {
        if (t->slots[i].handle == handle)
            return &t->slots[i];
        if (!t->slots[i].handle)
            return NULL;
    }
}

static void put(struct zmp__table *t, int handle, struct zmp__proc *p)
{
    unsigned i, mask = t->cap - 1;

    for (i = home(t, handle); t->slots[i].handle; i = (i + 1) & mask)
        ;
    t->slots[i] = (struct zmp__slot){ handle, p };
}

static int grow(struct zmp__table *t)
{
    struct zmp__table old = *t;
    unsigned i;

    if (t->bits >= 30)
        return -EAGAIN;
    t->bits = t->bits ? t->bits + 1 : 6;
    t->cap = 1u << t->bits;
    t->slots = calloc(t->cap, sizeof *t->slots);
    if (!t->slots) {
        *t = old;
        return -ENOMEM;
    }
    for (i = 0; i < old.cap; i++)
        if (old.slots[i].handle)
            put(t, old.slots[i].handle, old.slots[i].p);
    free(old.slots);
    return 0;
}

int zmp__table_add(struct zmp__table *t, struct zmp__proc *p)
{
    int h, r;

    if ((t->used + 1) * 2 > t->cap && (r = grow(t)) < 0)
        return r;
    do {
        h = t->next > 0 ? t->next : 1;
        t->next = h == INT_MAX ? 1 : h + 1;
    } while (find(t, h));
    put(t, h, p);
    t->used++;
    return h;
}

struct zmp__proc *zmp__table_get(const struct zmp__table *t, int handle)
{
    struct zmp__slot *s = find(t, handle);

    return s ? s->p : NULL;
}

/* Remove, shifting back the entries that probed past the freed slot so
 * that every lookup still meets its entry before an empty slot. */
void zmp__table_del(struct zmp__table *t, int handle)
{
    struct zmp__slot *s = find(t, handle);
    unsigned i, j, k, mask = t->cap - 1;

    if (!s)
        return;
    i = (unsigned)(s - t->slots);
    t->slots[i].handle = 0;
    t->used--;
    for (j = (i + 1) & mask; t->slots[j].handle; j = (j + 1) & mask) {
        k = home(t, t->slots[j].handle);
        /* Leave the entry where it is when its home lies cyclically in
         * (i, j]: it is still reachable without crossing the hole. */
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
            continue;
        t->slots[i] = t->slots[j];
        t->slots[j].handle = 0;
        i = j;
    }
}

/* The count goes on, so handles from before a zmp_deinit() do not name
 * the children started after it. */
void zmp__table_free(struct zmp__table *t)
{
    int next = t->next;

    free(t->slots);
    *t = (struct zmp__table){ .next = next };
}
