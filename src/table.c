/*
 * The handle table.  A handle packs a slot index with the slot's
 * generation, so a handle that was removed stays invalid when its slot is
 * reused, until the generation wraps (2048 reuses of the same slot; the
 * cursor spreads reuse over all free slots first).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "internal.h"

#define IDX_BITS 20
#define IDX_MAX  ((1u << IDX_BITS) - 2)  /* index + 1 must fit the field */
#define GEN_MASK 0x7ffu                  /* keeps handles below 2^31 */

int zmp__table_add(struct zmp__table *t, struct zmp__proc *p)
{
    unsigned i, cap;
    struct zmp__slot *s;

    if (t->used == t->cap) {
        if (t->cap > IDX_MAX)
            return -EAGAIN;
        cap = t->cap ? t->cap * 2 : 64;
        if (cap > IDX_MAX + 1)
            cap = IDX_MAX + 1;
        s = realloc(t->slots, cap * sizeof *s);
        if (!s)
            return -ENOMEM;
        for (i = t->cap; i < cap; i++)
            s[i] = (struct zmp__slot){ NULL, t->seed };
        t->cursor = t->cap;
        t->slots = s;
        t->cap = cap;
    }
    for (i = t->cursor;; i = (i + 1) % t->cap)
        if (!t->slots[i].p)
            break;
    t->slots[i].p = p;
    t->used++;
    if (t->slots[i].gen > t->max_gen)
        t->max_gen = t->slots[i].gen;
    t->cursor = (i + 1) % t->cap;
    return (int)((t->slots[i].gen << IDX_BITS) | (i + 1));
}

struct zmp__proc *zmp__table_get(const struct zmp__table *t, int handle)
{
    unsigned h, i;

    if (handle <= 0)
        return NULL;
    h = (unsigned)handle;
    i = (h & ((1u << IDX_BITS) - 1)) - 1;
    if (i >= t->cap || t->slots[i].gen != h >> IDX_BITS)
        return NULL;
    return t->slots[i].p;
}

void zmp__table_del(struct zmp__table *t, int handle)
{
    unsigned i = ((unsigned)handle & ((1u << IDX_BITS) - 1)) - 1;

    t->slots[i].p = NULL;
    t->slots[i].gen = (t->slots[i].gen + 1) & GEN_MASK;
    if (t->slots[i].gen > t->max_gen)
        t->max_gen = t->slots[i].gen;
    t->used--;
}

/* The seed moves past every generation handed out, so handles from before
 * a zmp_deinit() do not name the children started after it. */
void zmp__table_free(struct zmp__table *t)
{
    unsigned seed = (t->max_gen + 1) & GEN_MASK;

    free(t->slots);
    *t = (struct zmp__table){ .seed = seed, .max_gen = seed };
}
