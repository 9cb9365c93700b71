/* gemm_bf16_avx512.c: kern_gemm_bf16's native path for CPUs with AVX512_BF16 (gemm_bf16.h
 * has the contract). The loops are gemm_avx512.c's (Goto/BLIS, vectors along N):
 *
 *   for jc over N in blocks of NC (768):
 *     for pc over K in blocks of KC (768, even):
 *       pack op(B)[pc:pc+kc, jc:jc+nc] as bf16 into panels of NR columns (1.1 MB at most)
 *       for ic over M in blocks of MC (96) rows:
 *         (A transposed: pack the block's MR-row slivers)
 *         for ir over the block in slivers of MR rows:
 *           (A not transposed: pack this sliver now, 18 KB: stays in L1)
 *           for jr over the panels: micro-kernel C[ir:ir+MR, jc+jr:jc+jr+NR] (+)= sliver @ panel
 *
 * vdpbf16ps (_mm512_dpbf16_ps) multiplies 32 bf16 pairs and adds each pair's two products
 * into one float32 lane, so everything is packed in pairs along K: a panel holds, for each
 * pair p and column j, one 32-bit word (bf16 op(B)[2p, j] low, op(B)[2p+1, j] high); a
 * sliver holds for each p and row i the word (op(A)[i, 2p], op(A)[i, 2p+1]), broadcast to
 * all lanes in the micro-kernel. An odd K is padded with a zero k (in the last block only:
 * KC is even). The rounding to bf16 (round to nearest even) happens while packing, by
 * vcvtne2ps2bf16. Ragged slivers and panels are padded with zeros, the kernel stores only
 * the mr x nr part (masked along N); alpha and beta are applied at the store, beta only on
 * the first K block (beta == 0 never reads C).
 *
 * Micro-kernel MR x NR = 12 x 32 (24 zmm accumulators; per pair: 2 loads, 12 broadcasts, 24
 * vdpbf16ps). Measured single-threaded on the 2-core Zen 5 VM (busy, so within ~5%): 14x32
 * the same, 8x48 and 6x64 slower on N = 64 (1.2-1.5x fp32 instead of 1.7-1.8x); KC 768 about
 * 4% faster than 512 or 384 on K = 768 and 3072 (fewer passes over C), NC 512 or KC 1024 /
 * NC 384 no better.
 * Packing buffers per thread, allocated on first use and kept; a call that cannot get them
 * runs on the portable path. Only this file is compiled for AVX512_BF16 (the pragma below). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_bf16.h"
#include "kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16,fma")
#include <immintrin.h>

#include "gemm_avx512_common.h"

#ifndef BF_MR
#define BF_MR 12
#endif
#ifndef BF_NV
#define BF_NV 2
#endif
#define BF_NR (16 * BF_NV)
/* KC counts k values (KC / 2 pairs); even, so pairs never straddle two blocks. */
#ifndef BF_KC
#define BF_KC 768
#endif
#ifndef BF_NC
#define BF_NC 768
#endif
#ifndef BF_MC
#define BF_MC 96
#endif
_Static_assert(BF_KC % 2 == 0 && BF_NC % BF_NR == 0,
               "K blocks hold whole pairs; N blocks hold whole panels (kern_gemm_bf16_packed)");

static _Thread_local void *tl_apack, *tl_bpack; /* gemm_scratch buffers */
static _Thread_local size_t tl_acap, tl_bcap;

/* Word j = bf16(lo[j]) | bf16(hi[j]) << 16: pairs from two rows of K. */
KINL __m512i pair_rows(__m512 lo, __m512 hi)
{
    static const uint16_t order[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                       8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    // halves 0..15 from lo, 16..31 from hi, then interleaved
    __m512i both = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
    return _mm512_permutexvar_epi16(_mm512_loadu_si512(order), both);
}

/* Word p = bf16(x[2p]) | bf16(x[2p+1]) << 16 for the 32 consecutive k values x0 (k 0..15),
 * x1 (k 16..31) of one row: the conversion already leaves them paired. */
KINL __m512 pair_along(__m512 x0, __m512 x1)
{
    return (__m512)_mm512_cvtne2ps_pbh(x1, x0);
}

/* Rows contiguous along K (A not transposed, B transposed): dst[p*W + r] = pair (src[r*ld +
 * 2p], src[r*ld + 2p+1]) for r < rows (<= W), 2p < kc, a missing k zero; rows..W-1 zero. */
static void pack_t(uint32_t *restrict dst, int W, const float *restrict src, int64_t ld,
                   int64_t rows, int64_t kc)
{
    int64_t kp = (kc + 1) / 2;
    for (int r0 = 0; r0 < W; r0 += 16) {
        int64_t nrow = rows - r0;
        __mmask16 wm = lanes(W - r0);
        if (nrow <= 0) {
            for (int64_t p = 0; p < kp; p++) {
                _mm512_mask_storeu_epi32(dst + p * W + r0, wm, _mm512_setzero_si512());
            }
            continue;
        }
        for (int64_t k0 = 0; k0 < kc; k0 += 32) {
            int64_t nk = kc - k0 < 32 ? kc - k0 : 32, np = (nk + 1) / 2;
            __mmask16 m0 = lanes(nk), m1 = lanes(nk - 16);
            __m512 r[16];
            for (int i = 0; i < 16; i++) {
                const float *s = src + (r0 + i) * ld + k0;
                r[i] = i < nrow ? pair_along(_mm512_maskz_loadu_ps(m0, s),
                                             _mm512_maskz_loadu_ps(m1, s + 16))
                                : _mm512_setzero_ps();
            }
            transpose16(r);
            for (int i = 0; i < np; i++) {
                _mm512_mask_storeu_ps(dst + (k0 / 2 + i) * W + r0, wm, r[i]);
            }
        }
    }
}

/* Rows along the other dimension (A transposed, B not): for each panel q < ceil(cols / W):
 * dst[q*W*kp + p*W + j] = pair (src[2p*ld + q*W + j], src[(2p+1)*ld + q*W + j]) for
 * q*W + j < cols, a missing k zero; zero beyond cols. Reads src two rows at a time. */
static void pack_n_panels(uint32_t *restrict dst, int W, const float *restrict src,
                          int64_t ld, int64_t cols, int64_t kc)
{
    int64_t panels = (cols + W - 1) / W, kp = (kc + 1) / 2;
    for (int64_t p = 0; p < kp; p++) {
        const float *r0 = src + 2 * p * ld, *r1 = r0 + ld;
        int odd = 2 * p + 1 == kc;   // no second row
        for (int64_t q = 0; q < panels; q++) {
            uint32_t *d = dst + q * W * kp + p * W;
            int64_t left = cols - q * W;
            for (int c0 = 0; c0 < W; c0 += 16) {
                __mmask16 m = lanes(left - c0);
                __m512 lo = _mm512_maskz_loadu_ps(m, r0 + q * W + c0);
                __m512 hi = odd ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, r1 + q * W + c0);
                _mm512_mask_storeu_epi32(d + c0, lanes(W - c0), pair_rows(lo, hi));
            }
        }
    }
}

/* C[0:mr, 0:nr] (ldc) = alpha * (ap @ bp) + (mode 0: nothing; 1: C; 2: beta * C), where ap is
 * kp x MR and bp kp x NR pair words, both pair-major. */
static void ukernel(int64_t kp, const uint32_t *restrict ap, const uint32_t *restrict bp,
                    float *restrict C, int64_t ldc, int64_t mr, int64_t nr, float alpha,
                    float beta, int mode)
{
    __m512 c[BF_MR][BF_NV];
#pragma GCC unroll 32
    for (int i = 0; i < BF_MR; i++) {
#pragma GCC unroll 8
        for (int v = 0; v < BF_NV; v++) {
            c[i][v] = _mm512_setzero_ps();
        }
    }
#pragma GCC unroll 2
    for (int64_t p = 0; p < kp; p++) {
        __m512bh b[BF_NV];
#pragma GCC unroll 8
        for (int v = 0; v < BF_NV; v++) {
            b[v] = (__m512bh)_mm512_load_si512(bp + p * BF_NR + 16 * v);
        }
#pragma GCC unroll 32
        for (int i = 0; i < BF_MR; i++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)ap[p * BF_MR + i]);
#pragma GCC unroll 8
            for (int v = 0; v < BF_NV; v++) {
                c[i][v] = _mm512_dpbf16_ps(c[i][v], a, b[v]);
            }
        }
    }
    __mmask16 m[BF_NV];
    for (int v = 0; v < BF_NV; v++) {
        m[v] = lanes(nr - 16 * v);
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 32
    for (int i = 0; i < BF_MR; i++) {
        if (i < mr) {
            store_tile_row(C + i * ldc, c[i], m, BF_NV, va, vb, mode);
        }
    }
}

void kern_bf16_round_avx512(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = lanes(n - i);
        __m512 w = pair_along(_mm512_maskz_loadu_ps(m, x + i), _mm512_setzero_ps());
        // words 0..7 hold elements 0..15 as bf16 halves; widen each back to float32
        __m256i h = _mm512_castsi512_si256((__m512i)w);
        __m512i f = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
        _mm512_mask_storeu_ps(y + i, m, (__m512)f);
    }
}

/* One K block of one N block: C[0:M, 0:nc] (ldc) = alpha * op(A)[0:M, 0:kc] @ panels + (mode,
 * beta) as in ukernel, where bp holds op(B)'s block as ceil(nc / NR) panels of kp pairs and A
 * points at the block's first k (column pc of A, or row pc when transposed). ap: room for
 * BF_MC * kp pair words. */
static void gemm_block(int transA, int64_t M, int64_t nc, int64_t kc, float alpha,
                       const float *A, int64_t lda, const uint32_t *bp, float beta, int mode,
                       float *C, int64_t ldc, uint32_t *ap)
{
    int64_t kp = (kc + 1) / 2;
    for (int64_t ic = 0; ic < M; ic += BF_MC) {
        int64_t mc = M - ic < BF_MC ? M - ic : BF_MC;
        if (transA) {   // op(A)[i, k] = A[k*lda + i]
            pack_n_panels(ap, BF_MR, A + ic, lda, mc, kc);
        }
        for (int64_t ir = 0; ir < mc; ir += BF_MR) {
            int64_t mr = mc - ir < BF_MR ? mc - ir : BF_MR;
            const uint32_t *sliver = ap + (ir / BF_MR) * BF_MR * kp;
            if (!transA) {
                pack_t(ap, BF_MR, A + (ic + ir) * lda, lda, mr, kc);
                sliver = ap;
            }
            float *crow = C + (ic + ir) * ldc;
            for (int64_t jr = 0; jr < nc; jr += BF_NR) {
                int64_t nr = nc - jr < BF_NR ? nc - jr : BF_NR;
                ukernel(kp, sliver, bp + (jr / BF_NR) * BF_NR * kp, crow + jr, ldc, mr, nr,
                        alpha, beta, mode);
            }
        }
    }
}

/* How the first K block treats C; later blocks add to it. */
static int store_mode(int64_t pc, float beta)
{
    return pc > 0 || beta == 1.0f ? 1 : beta == 0.0f ? 0 : 2;
}

/* op(B)[pc:pc+kc, j0:j0+nr] (nr <= NR) as one panel of (kc + 1) / 2 pair words. */
static void pack_panel(uint32_t *dst, int transB, const float *B, int64_t ldb, int64_t pc,
                       int64_t kc, int64_t j0, int64_t nr)
{
    if (transB) {   // op(B)[k, j] = B[j*ldb + k]
        pack_t(dst, BF_NR, B + j0 * ldb + pc, ldb, nr, kc);
    } else {
        pack_n_panels(dst, BF_NR, B + pc * ldb + j0, ldb, nr, kc);
    }
}

void kern_gemm_bf16_avx512(int transA, int transB, int64_t M, int64_t N, int64_t K,
                           float alpha, const float *A, int64_t lda, const float *B,
                           int64_t ldb, float beta, float *C, int64_t ldc)
{
    if (M <= 0 || N <= 0) {
        return;
    }
    if (K <= 0 || alpha == 0.0f) {   // C = beta * C: the portable path has it
        kern_gemm_bf16_portable(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int64_t nc_max = N < BF_NC ? N : BF_NC, kc_max = K < BF_KC ? K : BF_KC;
    int64_t panels_max = (nc_max + BF_NR - 1) / BF_NR, kp_max = (kc_max + 1) / 2;
    uint32_t *bp = gemm_scratch(&tl_bpack, &tl_bcap,
                                (size_t)(panels_max * BF_NR * kp_max) * sizeof(uint32_t));
    uint32_t *ap = gemm_scratch(&tl_apack, &tl_acap,
                                (size_t)(BF_MC * kp_max) * sizeof(uint32_t));
    if (!bp || !ap) {
        kern_gemm_bf16_portable(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    for (int64_t jc = 0; jc < N; jc += BF_NC) {
        int64_t nc = N - jc < BF_NC ? N - jc : BF_NC;
        for (int64_t pc = 0; pc < K; pc += BF_KC) {
            int64_t kc = K - pc < BF_KC ? K - pc : BF_KC, kp = (kc + 1) / 2;
            for (int64_t jr = 0; jr < nc; jr += BF_NR) {
                int64_t nr = nc - jr < BF_NR ? nc - jr : BF_NR;
                pack_panel(bp + (jr / BF_NR) * BF_NR * kp, transB, B, ldb, pc, kc, jc + jr, nr);
            }
            gemm_block(transA, M, nc, kc, alpha, transA ? A + pc * lda : A + pc, lda, bp, beta,
                       store_mode(pc, beta), C + jc, ldc, ap);
        }
    }
}

/* Packed op(B) for many calls (gemm_bf16.h): for each K block of BF_KC (the last shorter),
 * starting at pair word (pc / 2) * panels * NR, its ceil(N / NR) panels of that block's pairs,
 * the layout kern_gemm_bf16_avx512 packs one N block of at a time. A unit is one panel of
 * one K block. */
static int64_t panels_of(int64_t N) { return (N + BF_NR - 1) / BF_NR; }

size_t kern_gemm_bf16_packed_b_bytes(int64_t K, int64_t N)
{
    return (size_t)(panels_of(N) * BF_NR) * (size_t)((K + 1) / 2) * sizeof(uint32_t);
}

int64_t kern_gemm_bf16_pack_b_units(int64_t K, int64_t N)
{
    return (K + BF_KC - 1) / BF_KC * panels_of(N);
}

void kern_gemm_bf16_pack_b(uint32_t *dst, int transB, int64_t K, int64_t N, const float *B,
                           int64_t ldb, int64_t unit_begin, int64_t unit_end)
{
    int64_t panels = panels_of(N);
    for (int64_t u = unit_begin; u < unit_end; u++) {
        int64_t pc = u / panels * BF_KC, q = u % panels;
        int64_t kc = K - pc < BF_KC ? K - pc : BF_KC, kp = (kc + 1) / 2;
        int64_t nr = N - q * BF_NR < BF_NR ? N - q * BF_NR : BF_NR;
        pack_panel(dst + (pc / 2) * panels * BF_NR + q * BF_NR * kp, transB, B, ldb, pc, kc,
                   q * BF_NR, nr);
    }
}

int kern_gemm_bf16_packed(int transA, int64_t M, int64_t N, int64_t K, float alpha,
                          const float *A, int64_t lda, const uint32_t *packed, float beta,
                          float *C, int64_t ldc)
{
    if (M <= 0 || N <= 0 || K <= 0 || alpha == 0.0f) {
        return -1;   // kern_gemm_bf16_avx512's special cases: the caller has op(B) for them
    }
    int64_t kc_max = K < BF_KC ? K : BF_KC, panels = panels_of(N);
    uint32_t *ap = gemm_scratch(&tl_apack, &tl_acap,
                                (size_t)(BF_MC * ((kc_max + 1) / 2)) * sizeof(uint32_t));
    if (!ap) {
        return -1;
    }
    // the same blocks in the same order as kern_gemm_bf16_avx512: the same sums, bit for bit
    for (int64_t jc = 0; jc < N; jc += BF_NC) {
        int64_t nc = N - jc < BF_NC ? N - jc : BF_NC;
        for (int64_t pc = 0; pc < K; pc += BF_KC) {
            int64_t kc = K - pc < BF_KC ? K - pc : BF_KC, kp = (kc + 1) / 2;
            const uint32_t *bp = packed + (pc / 2) * panels * BF_NR + (jc / BF_NR) * BF_NR * kp;
            gemm_block(transA, M, nc, kc, alpha, transA ? A + pc * lda : A + pc, lda, bp, beta,
                       store_mode(pc, beta), C + jc, ldc, ap);
        }
    }
    return 0;
}

#pragma GCC pop_options

#else /* not x86-64 GCC/clang: never called (kern_gemm_bf16_supported() is 0) */

void kern_gemm_bf16_avx512(int transA, int transB, int64_t M, int64_t N, int64_t K,
                           float alpha, const float *A, int64_t lda, const float *B,
                           int64_t ldb, float beta, float *C, int64_t ldc)
{
    kern_gemm_bf16_portable(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void kern_bf16_round_avx512(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        y[i] = kern_bf16_round(x[i]);
    }
}

size_t kern_gemm_bf16_packed_b_bytes(int64_t K, int64_t N)
{
    (void)K, (void)N;
    return 0;
}

int64_t kern_gemm_bf16_pack_b_units(int64_t K, int64_t N)
{
    (void)K, (void)N;
    return 0;
}

void kern_gemm_bf16_pack_b(uint32_t *dst, int transB, int64_t K, int64_t N, const float *B,
                           int64_t ldb, int64_t unit_begin, int64_t unit_end)
{
    (void)dst, (void)transB, (void)K, (void)N, (void)B, (void)ldb, (void)unit_begin,
        (void)unit_end;
}

int kern_gemm_bf16_packed(int transA, int64_t M, int64_t N, int64_t K, float alpha,
                          const float *A, int64_t lda, const uint32_t *packed, float beta,
                          float *C, int64_t ldc)
{
    (void)transA, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda, (void)packed,
        (void)beta, (void)C, (void)ldc;
    return -1;
}

#endif
