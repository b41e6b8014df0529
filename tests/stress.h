/* SPDX-License-Identifier: MIT */
/*
 * What a stress job writes, shared by the stress program and its child:
 * byte k of stream st (0 stdout, 1 stderr) of the job with a given seed.
 */
#ifndef ZMP_TEST_STRESS_H
#define ZMP_TEST_STRESS_H

#include <stddef.h>
#include <stdint.h>

#define MAX_OUT (256 * 1024)

static inline uint64_t splitmix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* A small generator for the choices; the bytes come from pattern(). */
struct rng { uint64_t s; };

static inline uint64_t next(struct rng *r)
{
    return splitmix(r->s++);
}

static inline uint64_t below(struct rng *r, uint64_t n)
{
    return n ? next(r) % n : 0;
}

/* Bytes [from, from + n) of stream st of the job with this seed. */
static inline void pattern(uint64_t seed, int st, size_t from, char *buf, size_t n)
{
    uint64_t base = splitmix(seed ^ (st ? 0x5555555555555555ULL : 0));
    size_t i = 0, k = from;

    while (i < n) {
        uint64_t w = splitmix(base + k / 8);
        size_t off = k % 8;

        for (; off < 8 && i < n; off++, i++, k++)
            buf[i] = (char)(w >> (off * 8));
    }
}

#endif
