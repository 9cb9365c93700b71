/* rng.c: xoshiro256** seeded through SplitMix64 (see rng.h). The per-sample seeding and the
 * float normal are the ones av_fashion_mnist's prepared files were generated with: changing
 * either changes every such file, so they are fixed. */
#include "util/rng.h"

#include <math.h>

#define GOLDEN_GAMMA 0x9E3779B97F4A7C15ull /* SplitMix64's increment */

uint64_t mpsl_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t splitmix64(uint64_t *x)
{
    *x += GOLDEN_GAMMA;
    return mpsl_mix64(*x);
}

void mpsl_rng_seed(mpsl_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        r->s[i] = splitmix64(&x);
    }
    r->spare = 0.0;
    r->spare_f32 = 0.0f;
    r->has_spare = 0;
    r->has_spare_f32 = 0;
}

void mpsl_rng_seed_sample(mpsl_rng *r, uint64_t seed, int split, int64_t index, int stream)
{
    /* The keys go through SplitMix64 one after the other rather than being XORed together,
     * so that no two (split, index) pairs can cancel out into the same stream. */
    uint64_t x = seed;
    uint64_t k = splitmix64(&x);
    x = k ^ ((uint64_t)(split & 0xFF) << 56 ^ (uint64_t)(stream & 0xFF) << 48);
    k = splitmix64(&x);
    mpsl_rng_seed(r, k ^ (uint64_t)index);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t mpsl_rng_u64(mpsl_rng *r)
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

double mpsl_rng_uniform(mpsl_rng *r) { return (double)(mpsl_rng_u64(r) >> 11) * 0x1.0p-53; }

int64_t mpsl_rng_below(mpsl_rng *r, int64_t n)
{
    /* Plain modulo: its bias (at most n / 2^64) is far below anything a dataset could show. */
    return n <= 1 ? 0 : (int64_t)(mpsl_rng_u64(r) % (uint64_t)n);
}

double mpsl_rng_normal(mpsl_rng *r)
{
    /* Box-Muller gives two independent values per pair of uniforms; keep the second.
     * 1 - u keeps the logarithm's argument in (0, 1]. */
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1 = 1.0 - mpsl_rng_uniform(r);
    double u2 = mpsl_rng_uniform(r);
    double radius = sqrt(-2.0 * log(u1));
    r->spare = radius * sin(2.0 * M_PI * u2);
    r->has_spare = 1;
    return radius * cos(2.0 * M_PI * u2);
}

float mpsl_rng_normal_f32(mpsl_rng *r)
{
    if (r->has_spare_f32) {
        r->has_spare_f32 = 0;
        return r->spare_f32;
    }
    /* Box-Muller in float on 24-bit uniforms (exact in float); 1 - u keeps the log finite. */
    float u = (float)((mpsl_rng_u64(r) >> 40) * 0x1.0p-24);
    float v = (float)((mpsl_rng_u64(r) >> 40) * 0x1.0p-24);
    float radius = sqrtf(-2.0f * logf(1.0f - u));
    float angle = 6.2831853071795864f * v;
    r->spare_f32 = radius * sinf(angle);
    r->has_spare_f32 = 1;
    return radius * cosf(angle);
}

double mpsl_rng_gamma(mpsl_rng *r, double shape)
{
    /* Marsaglia and Tsang; shapes below 1 use the boost Gamma(a) = Gamma(a+1) * U^(1/a). */
    if (shape < 1.0) {
        double u = 1.0 - mpsl_rng_uniform(r);
        return mpsl_rng_gamma(r, shape + 1.0) * pow(u, 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0;
    double c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = mpsl_rng_normal(r);
        double v = 1.0 + c * x;
        if (v <= 0.0) {
            continue;
        }
        v = v * v * v;
        double u = 1.0 - mpsl_rng_uniform(r);
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v)) {
            return d * v;
        }
    }
}

void mpsl_rng_shuffle(mpsl_rng *r, int64_t *a, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(mpsl_rng_u64(r) % (uint64_t)(i + 1));
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}
