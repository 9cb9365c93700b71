/* half.c: f16 and bf16 conversions by bit manipulation (see half.h), independent of the
 * compiler's _Float16 support and of the FPU's rounding mode. */
#include "util/half.h"

#include <string.h>

static uint32_t bits_of(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

float mpsl_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;
    if (exp == 0) {
        /* zero or subnormal: man * 2^-24, exact in float32 */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    if (exp == 31) {
        return float_of(sign | 0x7F800000u | (man << 13)); /* inf, or NaN keeping its payload */
    }
    return float_of(sign | ((exp - 15 + 127) << 23) | (man << 13));
}

uint16_t mpsl_f32_to_f16(float x)
{
    uint32_t f = bits_of(x);
    uint32_t sign = (f >> 16) & 0x8000u;
    uint32_t exp = (f >> 23) & 0xFFu;
    uint32_t man = f & 0x7FFFFFu;
    if (exp == 0xFFu) { /* inf, or NaN made quiet so that dropping payload bits keeps it NaN */
        return (uint16_t)(sign | 0x7C00u | (man ? 0x200u | (man >> 13) : 0));
    }
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 31) {
        return (uint16_t)(sign | 0x7C00u);
    }
    if (e <= 0) { /* a subnormal half, or zero */
        if (e < -10) {
            return (uint16_t)sign;
        }
        man |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1u))) {
            half++;
        }
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) {
        half++; /* may carry into the exponent, up to inf: correct */
    }
    return (uint16_t)half;
}

float mpsl_bf16_to_f32(uint16_t b) { return float_of((uint32_t)b << 16); }

uint16_t mpsl_f32_to_bf16(float x)
{
    return (uint16_t)(mpsl_bf16_round_bits(bits_of(x)) >> 16);
}

void mpsl_f16_to_f32_n(float *dst, const uint16_t *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        dst[i] = mpsl_f16_to_f32(src[i]);
    }
}

void mpsl_bf16_to_f32_n(float *dst, const uint16_t *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        dst[i] = mpsl_bf16_to_f32(src[i]);
    }
}
