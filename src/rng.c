/*
 * rng.c -- the per-model random generator: xoshiro256** (Blackman and
 * Vigna), its state seeded from one 64-bit value through splitmix64.
 * Same seed, same stream, on every platform.
 */
#include "internal.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void hlr__rng_seed(hlr_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t hlr__rng_next(hlr_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float hlr__rng_uniform(hlr_rng *r) { return (float)(hlr__rng_next(r) >> 40) * (1.0f / 16777216.0f); }

uint64_t hlr__rng_below(hlr_rng *r, uint64_t n)
{
    /* Rejection sampling: draw until the value falls below the largest
     * multiple of n, so every residue is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = hlr__rng_next(r);
    while (x >= limit);
    return x % n;
}

double hlr__rng_normal(hlr_rng *r)
{
    /* Box-Muller; u1 in (0, 1] so the log is finite. */
    double u1 = ((double)(hlr__rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(hlr__rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
