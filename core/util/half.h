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
/* dst (n) from src (n). */
void mpsl_f16_to_f32_n(float *dst, const uint16_t *src, int64_t n);
void mpsl_bf16_to_f32_n(float *dst, const uint16_t *src, int64_t n);

#endif
