/* A small seeded random generator for training (xoshiro256** seeded
 * through splitmix64), with uniform and normal draws. The same seed gives
 * the same stream on every machine. */
#ifndef ROJ_TRAIN_TRNG_H
#define ROJ_TRAIN_TRNG_H

#include <math.h>
#include <stdint.h>

typedef struct trng {
    uint64_t s[4];
} trng;

static inline uint64_t trng_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline void trng_seed(trng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = trng_splitmix(&seed);
}

static inline uint64_t trng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t trng_next(trng *r)
{
    uint64_t *s = r->s;
    const uint64_t out = trng_rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = trng_rotl(s[3], 45);
    return out;
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double trng_uniform(trng *r)
{
    return (double)(trng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [0, n), n > 0 (rejection: no modulo bias). */
static inline uint64_t trng_below(trng *r, uint64_t n)
{
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do
        v = trng_next(r);
    while (v >= limit);
    return v % n;
}

/* Standard normal draw (Box-Muller; one value per call). */
static inline float trng_normal(trng *r)
{
    double u1 = trng_uniform(r), u2 = trng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

#endif
