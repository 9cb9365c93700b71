/* gemm_avx512.c: our single-precision GEMM for CPUs with AVX-512F (gemm.h has the contract).
 * Goto/BLIS-style, written for row-major C with the vectors along N:
 *
 *   for jc over N in blocks of NC (768):
 *     for pc over K in blocks of KC (256):
 *       pack op(B)[pc:pc+kc, jc:jc+nc] into panels of NR columns, k-major (kc x NR each;
 *         KC x NC floats at most, 768 KB, for L2)
 *       for ic over M in blocks of MC (96) rows:
 *         (A transposed: pack the block's MR-row slivers, walking A's rows in order)
 *         for ir over the block in slivers of MR rows:
 *           (A not transposed: pack this sliver now, kc x MR k-major, 12 KB: stays in L1)
 *           for jr over the panels: micro-kernel C[ir:ir+MR, jc+jr:jc+jr+NR] (+)= sliver @ panel
 *
 * Micro-kernel: MR x NR = 12 x 32, an MR x NR tile of C in 24 zmm accumulators; each k step
 * loads 2 vectors of the B panel and broadcasts 12 values of the A sliver into 24 FMAs.
 * (Measured on Zen 5, one thread: 12x32 ~235-258 GFLOP/s on the model shapes, 14x32 about
 * the same, 8x48 and 6x64 slower; KC 192-384 and NC 384-768 within noise.)
 * Packing pads ragged slivers and panels with zeros, and the kernel stores only the mr x nr
 * part that exists (masked stores along N), so any M, N, K works. Transposed operands are
 * packed through 16x16 register transposes. alpha and beta are applied when the tile is
 * stored: beta only on the first K block (beta == 0 never reads C), later blocks add; each
 * element is summed over k in the same order wherever its tile falls.
 *
 * The packing buffers are per thread, allocated on first use and kept; a call whose buffers
 * cannot be allocated (out of memory) is handed to OpenBLAS, which needs none of ours.
 *
 * Only this file is compiled for AVX-512 (the pragma below); gemm.c calls into it only after
 * checking the CPU, so the rest of the library stays portable. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)

#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,fma")
#include <immintrin.h>

#include "gemm_avx512_common.h"

/* Register blocking: MR rows x GEMM_NV zmm vectors (NR = 16 * GEMM_NV columns). */
#ifndef GEMM_MR
#define GEMM_MR 12
#endif
#ifndef GEMM_NV
#define GEMM_NV 2
#endif
#define GEMM_NR (16 * GEMM_NV)
/* Cache blocking: KC (depth of a packed block), NC (columns of the packed B block; KC*NC
 * floats should fit in L2 beside the A sliver). NC is a multiple of NR. */
#ifndef GEMM_KC
#define GEMM_KC 256
#endif
#ifndef GEMM_NC
#define GEMM_NC 768
#endif
/* Rows of op(A) packed at once when A is transposed (its rows are then strided in memory, so
 * the block is packed row of A by row of A); a multiple of MR. Otherwise A is packed one MR
 * sliver at a time, just before its micro-kernel calls. */
#ifndef GEMM_MC
#define GEMM_MC 96
#endif

/* Per-thread packing buffers, grown on demand and kept (the pool's threads live as long as
 * the process). */
static _Thread_local void *tl_apack, *tl_bpack; /* gemm_scratch buffers */
static _Thread_local size_t tl_acap, tl_bcap;

/* dst[k*W + r] = src[r*ld + k] for r < rows (<= W), k < kc; rows..W-1 zero. */
static void pack_t(float *restrict dst, int W, const float *restrict src, int64_t ld,
                   int64_t rows, int64_t kc)
{
    for (int r0 = 0; r0 < W; r0 += 16) {
        int64_t nrow = rows - r0;
        __mmask16 wm = lanes(W - r0);
        if (nrow <= 0) {
            for (int64_t k = 0; k < kc; k++) {
                _mm512_mask_storeu_ps(dst + k * W + r0, wm, _mm512_setzero_ps());
            }
            continue;
        }
        for (int64_t k0 = 0; k0 < kc; k0 += 16) {
            int64_t nk = kc - k0 < 16 ? kc - k0 : 16;
            __mmask16 km = lanes(nk);
            __m512 r[16];
            for (int i = 0; i < 16; i++) {
                r[i] = i < nrow ? _mm512_maskz_loadu_ps(km, src + (r0 + i) * ld + k0)
                                : _mm512_setzero_ps();
            }
            transpose16(r);
            if (nk == 16) {
                for (int i = 0; i < 16; i++) {
                    _mm512_mask_storeu_ps(dst + (k0 + i) * W + r0, wm, r[i]);
                }
            } else {
                for (int i = 0; i < nk; i++) {
                    _mm512_mask_storeu_ps(dst + (k0 + i) * W + r0, wm, r[i]);
                }
            }
        }
    }
}

/* For each panel p < ceil(cols / W): dst[p*W*kc + k*W + j] = src[k*ld + p*W + j] for
 * p*W + j < cols, k < kc; zero beyond cols. Walks src row by row (sequential reads). */
static void pack_n_panels(float *restrict dst, int W, const float *restrict src, int64_t ld,
                          int64_t cols, int64_t kc)
{
    int64_t panels = (cols + W - 1) / W;
    for (int64_t k = 0; k < kc; k++) {
        const float *row = src + k * ld;
        for (int64_t p = 0; p < panels; p++) {
            float *d = dst + p * W * kc + k * W;
            int64_t left = cols - p * W;
            for (int c0 = 0; c0 < W; c0 += 16) {
                __m512 x = _mm512_maskz_loadu_ps(lanes(left - c0), row + p * W + c0);
                _mm512_mask_storeu_ps(d + c0, lanes(W - c0), x);
            }
        }
    }
}

/* C[0:mr, 0:nr] (ldc) = alpha * (ap @ bp) + (mode 0: nothing; 1: C; 2: beta * C), where ap is
 * kc x MR and bp kc x NR, both k-major. */
static void ukernel(int64_t kc, const float *restrict ap, const float *restrict bp,
                    float *restrict C, int64_t ldc, int64_t mr, int64_t nr, float alpha,
                    float beta, int mode)
{
    __m512 c[GEMM_MR][GEMM_NV];
#pragma GCC unroll 32
    for (int i = 0; i < GEMM_MR; i++) {
#pragma GCC unroll 8
        for (int v = 0; v < GEMM_NV; v++) {
            c[i][v] = _mm512_setzero_ps();
        }
    }
#pragma GCC unroll 2
    for (int64_t k = 0; k < kc; k++) {
        __m512 b[GEMM_NV];
#pragma GCC unroll 8
        for (int v = 0; v < GEMM_NV; v++) {
            b[v] = _mm512_load_ps(bp + k * GEMM_NR + 16 * v);
        }
#pragma GCC unroll 32
        for (int i = 0; i < GEMM_MR; i++) {
            __m512 a = _mm512_set1_ps(ap[k * GEMM_MR + i]);
#pragma GCC unroll 8
            for (int v = 0; v < GEMM_NV; v++) {
                c[i][v] = _mm512_fmadd_ps(a, b[v], c[i][v]);
            }
        }
    }
    __mmask16 m[GEMM_NV];
    for (int v = 0; v < GEMM_NV; v++) {
        m[v] = lanes(nr - 16 * v);
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 32
    for (int i = 0; i < GEMM_MR; i++) {
        if (i < mr) {
            store_tile_row(C + i * ldc, c[i], m, GEMM_NV, va, vb, mode);
        }
    }
}

/* C = beta * C (beta == 0: zeros, C not read), for K == 0 or alpha == 0. */
static void scale_c(int64_t M, int64_t N, float beta, float *C, int64_t ldc)
{
    for (int64_t i = 0; i < M; i++) {
        float *cr = C + i * ldc;
        if (beta == 0.0f) {
            memset(cr, 0, (size_t)N * sizeof(float));
        } else if (beta != 1.0f) {
            for (int64_t j = 0; j < N; j++) {
                cr[j] *= beta;
            }
        }
    }
}

void kern_sgemm_avx512(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                       float *C, int64_t ldc)
{
    if (M <= 0 || N <= 0) {
        return;
    }
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    int64_t nc_max = N < GEMM_NC ? N : GEMM_NC, kc_max = K < GEMM_KC ? K : GEMM_KC;
    int64_t panels_max = (nc_max + GEMM_NR - 1) / GEMM_NR;
    float *bp = gemm_scratch(&tl_bpack, &tl_bcap,
                             (size_t)(panels_max * GEMM_NR * kc_max) * sizeof(float));
    float *ap = gemm_scratch(&tl_apack, &tl_acap,
                             (size_t)(GEMM_MC * kc_max) * sizeof(float));
    if (!bp || !ap) {
        // no memory to pack into: OpenBLAS, which needs none of ours, does this call
        kern_sgemm_openblas(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    for (int64_t jc = 0; jc < N; jc += GEMM_NC) {
        int64_t nc = N - jc < GEMM_NC ? N - jc : GEMM_NC;
        for (int64_t pc = 0; pc < K; pc += GEMM_KC) {
            int64_t kc = K - pc < GEMM_KC ? K - pc : GEMM_KC;
            int mode = pc > 0 || beta == 1.0f ? 1 : beta == 0.0f ? 0 : 2;
            if (transB) {   // op(B)[k, j] = B[j*ldb + k]
                for (int64_t jr = 0; jr < nc; jr += GEMM_NR) {
                    int64_t nr = nc - jr < GEMM_NR ? nc - jr : GEMM_NR;
                    pack_t(bp + (jr / GEMM_NR) * GEMM_NR * kc, GEMM_NR,
                           B + (jc + jr) * ldb + pc, ldb, nr, kc);
                }
            } else {
                pack_n_panels(bp, GEMM_NR, B + pc * ldb + jc, ldb, nc, kc);
            }
            for (int64_t ic = 0; ic < M; ic += GEMM_MC) {
                int64_t mc = M - ic < GEMM_MC ? M - ic : GEMM_MC;
                if (transA) {   // op(A)[i, k] = A[k*lda + i]: the whole block, row by row
                    pack_n_panels(ap, GEMM_MR, A + pc * lda + ic, lda, mc, kc);
                }
                for (int64_t ir = 0; ir < mc; ir += GEMM_MR) {
                    int64_t mr = mc - ir < GEMM_MR ? mc - ir : GEMM_MR;
                    const float *sliver = ap + (ir / GEMM_MR) * GEMM_MR * kc;
                    if (!transA) {
                        pack_t(ap, GEMM_MR, A + (ic + ir) * lda + pc, lda, mr, kc);
                        sliver = ap;
                    }
                    float *crow = C + (ic + ir) * ldc + jc;
                    for (int64_t jr = 0; jr < nc; jr += GEMM_NR) {
                        int64_t nr = nc - jr < GEMM_NR ? nc - jr : GEMM_NR;
                        ukernel(kc, sliver, bp + (jr / GEMM_NR) * GEMM_NR * kc, crow + jr,
                                ldc, mr, nr, alpha, beta, mode);
                    }
                }
            }
        }
    }
}

#pragma GCC pop_options

#else /* not x86-64 GCC/clang: never called (kern_sgemm_avx512_supported() is 0) */

void kern_sgemm_avx512(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                       float *C, int64_t ldc)
{
    abort();
}

#endif
