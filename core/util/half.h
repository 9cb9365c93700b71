/* half.h: IEEE binary16 (f16) and bfloat16 (bf16) <-> float32, for safetensors weights,
 * prepared files with f16 storage, and plugins (h->half). Values travel as uint16_t bits. */
#ifndef MPSL_UTIL_HALF_H
#define MPSL_UTIL_HALF_H

#include <stdint.h>

/* Exact: every f16 and bf16 value is a float32 value (NaN payloads are kept). */
float mpsl_f16_to_f32(uint16_t h);
float mpsl_bf16_to_f32(uint16_t b);
/* Round to nearest, ties to even; too large -> infinity; NaN stays a (quiet) NaN. */
uint16_t mpsl_f32_to_f16(float x);
uint16_t mpsl_f32_to_bf16(float x);
/* The float32 bits u rounded to bfloat16 as mpsl_f32_to_bf16 rounds (ties to even; NaN made
 * quiet, so a payload only in the dropped bits cannot become infinity; a carry may reach
 * infinity, correctly): the bf16 in the high 16 bits, the low 16 zero, i.e. the float32 of
 * the rounded value. Branch-free, so loops over it vectorise (kern_gemm_bf16's rounding). */
static inline uint32_t mpsl_bf16_round_bits(uint32_t u)
{
    uint32_t r = (u & 0x7fffffffu) > 0x7f800000u ? u | 0x00400000u
                                                  : u + 0x7fffu + ((u >> 16) & 1u);
    return r & 0xffff0000u;
}
/* dst (n) from src (n). */
void mpsl_f16_to_f32_n(float *dst, const uint16_t *src, int64_t n);
void mpsl_bf16_to_f32_n(float *dst, const uint16_t *src, int64_t n);

#endif
