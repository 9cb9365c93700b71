/* rng.c: per-sample random streams. Every random choice of sample i of a split comes from a
 * generator seeded by (seed, split, i, stream), so a sample is the same whether or not limits
 * cut the split, and whichever thread computes it. */
#include <math.h>

#include "avf.h"

static uint64_t avf_splitmix(uint64_t *st)
{
    uint64_t z = (*st += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void avf_rng_seed(avf_rng *r, uint64_t seed, int split, int64_t index, int stream)
{
    /* Mix the four keys through SplitMix64 one after the other (not XORed together, so that
     * (split, index) pairs cannot cancel out). */
    uint64_t st = seed;
    uint64_t k = avf_splitmix(&st);
    st = k ^ ((uint64_t)split << 56 ^ (uint64_t)stream << 48);
    k = avf_splitmix(&st);
    st = k ^ (uint64_t)index;
    for (int i = 0; i < 4; i++) {
        r->s[i] = avf_splitmix(&st);
    }
    r->has_spare = 0;
    r->spare = 0.0f;
}

static uint64_t avf_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t avf_rng_next(avf_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = avf_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = avf_rotl(s[3], 45);
    return result;
}

double avf_rng_uniform(avf_rng *r) { return (double)(avf_rng_next(r) >> 11) * 0x1.0p-53; }

int64_t avf_rng_below(avf_rng *r, int64_t n)
{
    /* n is small (at most a few thousand): the modulo bias of a 64-bit draw is negligible. */
    return n <= 1 ? 0 : (int64_t)(avf_rng_next(r) % (uint64_t)n);
}

float avf_rng_gauss(avf_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    /* Box-Muller in float: 1 - u keeps the logarithm finite. */
    float u = (float)((avf_rng_next(r) >> 40) * 0x1.0p-24);
    float v = (float)((avf_rng_next(r) >> 40) * 0x1.0p-24);
    float rad = sqrtf(-2.0f * logf(1.0f - u));
    float ang = 6.2831853071795864f * v;
    r->spare = rad * sinf(ang);
    r->has_spare = 1;
    return rad * cosf(ang);
}

uint64_t avf_hash64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t hash = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        hash ^= p[i];
        hash *= 0x100000001b3ull;
    }
    return hash;
}
