/* gemm_avx512_common.h (private to core/kernels): what the two AVX-512 GEMMs share,
 * gemm_avx512.c (float32) and gemm_bf16_avx512.c (bfloat16 inputs). Include it after the
 * file's own `#pragma GCC target` and <immintrin.h>: its functions compile for that target,
 * and only those files call them, after checking the CPU. */
#ifndef MPSL_GEMM_AVX512_COMMON_H
#define MPSL_GEMM_AVX512_COMMON_H

#include <stdint.h>
#include <stdlib.h>

#include "kernels.h"

#define KINL static inline __attribute__((always_inline))

/* *buf with room for `bytes` bytes (64-byte aligned, kern_alloc), grown if needed and kept;
 * NULL when it cannot grow (the buffer it had stays, for smaller calls). For the per-thread
 * packing buffers, which live as long as their thread. */
static inline void *gemm_scratch(void **buf, size_t *cap, size_t bytes)
{
    if (*cap < bytes) {
        void *p = kern_alloc(bytes);
        if (!p) {
            return NULL;
        }
        free(*buf);
        *buf = p;
        *cap = bytes;
    }
    return *buf;
}

/* The first n of 16 lanes (0 to 16). */
KINL __mmask16 lanes(int64_t n)
{
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* One row of a micro-kernel's tile, nv vectors of 16 accumulated in acc, stored into cr with
 * the masks m (the row's columns that exist): alpha * acc + (mode 0: nothing; 1: C; 2: beta *
 * C), C read only in modes 1 and 2. */
KINL void store_tile_row(float *cr, const __m512 *acc, const __mmask16 *m, int nv, __m512 va,
                         __m512 vb, int mode)
{
#pragma GCC unroll 8
    for (int v = 0; v < nv; v++) {
        __m512 x = _mm512_mul_ps(va, acc[v]);
        if (mode != 0) {
            __m512 old = _mm512_maskz_loadu_ps(m[v], cr + 16 * v);
            x = mode == 1 ? _mm512_add_ps(x, old) : _mm512_fmadd_ps(vb, old, x);
        }
        _mm512_mask_storeu_ps(cr + 16 * v, m[v], x);
    }
}

/* In place: r[i] lane j  <-  r[j] lane i (32-bit lanes). */
KINL void transpose16(__m512 r[16])
{
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // u[4g + c], 128-bit lane L: rows 4g..4g+3 of column 4L + c
    for (int g = 0; g < 4; g++) {
        u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xee);
        u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xee);
    }
    for (int c = 0; c < 4; c++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
        __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
        __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
        __m512 v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
        r[c] = _mm512_shuffle_f32x4(v0, v2, 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(v0, v2, 0xdd);
        r[4 + c] = _mm512_shuffle_f32x4(v1, v3, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(v1, v3, 0xdd);
    }
}

#endif
