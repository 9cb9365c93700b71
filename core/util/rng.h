/* rng.h: the seeded random generator of the host and of plugins (h->rng, whose stream type
 * mpsl_rng is defined in mpsl/plugin.h): xoshiro256** seeded through SplitMix64, so the same
 * seed gives the same numbers everywhere. Partitions, shuffles, initial weights and the
 * synthetic and av_fashion_mnist datasets all draw from it. */
#ifndef MPSL_UTIL_RNG_H
#define MPSL_UTIL_RNG_H

#include <stdint.h>

#include "mpsl/plugin.h"

void mpsl_rng_seed(mpsl_rng *r, uint64_t seed);
/* The stream of sample `index` of split `split` (0..255), use `stream` (0..255): see
 * mpsl_rng_api.seed_sample. */
void mpsl_rng_seed_sample(mpsl_rng *r, uint64_t seed, int split, int64_t index, int stream);
uint64_t mpsl_rng_u64(mpsl_rng *r);
double mpsl_rng_uniform(mpsl_rng *r);             /* [0,1) */
int64_t mpsl_rng_below(mpsl_rng *r, int64_t n);   /* [0,n), 0 when n <= 1 */
double mpsl_rng_normal(mpsl_rng *r);              /* N(0,1) */
float mpsl_rng_normal_f32(mpsl_rng *r);           /* N(0,1) in float arithmetic */
double mpsl_rng_gamma(mpsl_rng *r, double shape); /* Gamma(shape, 1), shape > 0 */
void mpsl_rng_shuffle(mpsl_rng *r, int64_t *a, int64_t n);
/* SplitMix64's output function: a well-mixed value of a key, for counter-based randomness. */
uint64_t mpsl_mix64(uint64_t key);

#endif
