/* gemm_bf16.h (private to core/kernels, used by the tests and benchmarks too): GEMM with
 * bfloat16 inputs and float32 accumulation, the kernel layer of mixed-precision training.
 *
 *   C (M,N) = alpha * bf16(op(A)) (M,K) @ bf16(op(B)) (K,N) + beta * C, row-major,
 *
 * under kern_sgemm's contract (gemm.h: transA/transB, lda/ldb/ldc, beta == 0 never reads C),
 * except that A and B, float32 in memory, are rounded to bfloat16 (round to nearest, ties to
 * even; NaN stays NaN, a value past bf16's largest becomes infinity) while they are packed;
 * the products of two bf16 values are exact in float32 and are summed in float32. So the
 * result is the float32 GEMM of the rounded inputs, give or take float32 summation order;
 * against kern_sgemm of the original inputs each product is off by at most about 2 * 2^-8 of
 * its size (test_gemm_bf16.c). Single-threaded, like kern_sgemm: callers split the work.
 *
 * Paths, chosen once per process:
 *   native   (gemm_bf16_avx512.c) on CPUs with AVX-512F/BW/VL and AVX512_BF16 (vdpbf16ps):
 *            Goto-style, about twice kern_sgemm's speed (docs/architecture.md);
 *   portable (gemm_bf16.c) everywhere else: rounds the inputs into scratch and calls
 *            kern_sgemm. Same numerics class, no faster than kern_sgemm: it exists so that
 *            results and tests do not depend on the CPU, not for speed (train.precision:
 *            bf16 does not use it: without the instructions a run computes in float32).
 * MPSL_GEMM_BF16=portable forces the portable path (the tests use it to run the CI
 * machines' path here); kern_gemm_bf16_supported() then answers 0. */
#ifndef MPSL_KERN_GEMM_BF16_H
#define MPSL_KERN_GEMM_BF16_H

#include <stddef.h>
#include <stdint.h>

void kern_gemm_bf16(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
                    const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                    float *C, int64_t ldc);

/* 1 when kern_gemm_bf16 runs the native kernel: the CPU has AVX-512F/BW/VL and AVX512_BF16
 * (with the OS saving zmm state) and MPSL_GEMM_BF16 is not "portable"; else 0. */
int kern_gemm_bf16_supported(void);

/* x rounded to the nearest bfloat16, ties to even, returned as the float32 of the same
 * value (the low 16 bits zero). NaN stays NaN (made quiet, as the hardware does); a finite
 * value that rounds past bf16's largest (3.3895e38) becomes +-infinity. Subnormals are
 * rounded like any value here; the native kernel's instructions flush them to zero
 * (AVX512_BF16 ignores MXCSR and treats subnormals as zero), a difference below 2^-126. */
float kern_bf16_round(float x);

/* The two paths, same contract as kern_gemm_bf16 (tests and benchmarks call them directly).
 * The native one only when kern_gemm_bf16_supported() or the CPU has the instructions; a
 * thread that cannot get its packing buffers runs the call on the portable path. The
 * portable one computes element by element (slow, no memory) when it cannot get scratch. */
void kern_gemm_bf16_avx512(int transA, int transB, int64_t M, int64_t N, int64_t K,
                           float alpha, const float *A, int64_t lda, const float *B,
                           int64_t ldb, float beta, float *C, int64_t ldc);
void kern_gemm_bf16_portable(int transA, int transB, int64_t M, int64_t N, int64_t K,
                             float alpha, const float *A, int64_t lda, const float *B,
                             int64_t ldb, float beta, float *C, int64_t ldc);

/* op(B) packed once and shared by many calls of the native kernel: a GEMM whose rows of C
 * are split over threads packs the same op(B) in every slice otherwise, converting each
 * element to bf16 each time (gemm_shared_b.c uses these). Native path only: call them when
 * kern_gemm_bf16_supported().
 *   kern_gemm_bf16_packed_b_bytes: the packed size of op(B) (K, N);
 *   kern_gemm_bf16_pack_b: packs units [unit_begin, unit_end) of op(B) (K x N; B stored as
 *     for kern_gemm_bf16, transB, ldb) into dst (64-byte aligned, that size); the units,
 *     kern_gemm_bf16_pack_b_units of them, are disjoint parts that threads may pack at once;
 *   kern_gemm_bf16_packed: kern_gemm_bf16 with op(B) taken from the packed panels, bit for bit
 *     the same result; returns -1 without touching C when K <= 0, alpha == 0 or no packing
 *     buffer for A could be had (call kern_gemm_bf16 with B then), else 0. */
size_t kern_gemm_bf16_packed_b_bytes(int64_t K, int64_t N);
int64_t kern_gemm_bf16_pack_b_units(int64_t K, int64_t N);
void kern_gemm_bf16_pack_b(uint32_t *dst, int transB, int64_t K, int64_t N, const float *B,
                           int64_t ldb, int64_t unit_begin, int64_t unit_end);
int kern_gemm_bf16_packed(int transA, int64_t M, int64_t N, int64_t K, float alpha,
                          const float *A, int64_t lda, const uint32_t *packed, float beta,
                          float *C, int64_t ldc);

/* Whether the CPU itself has the instructions, whatever MPSL_GEMM_BF16 says. */
int kern_gemm_bf16_cpu_has(void);
/* y[i] = bf16 rounding of x[i] by the hardware (vcvtne2ps2bf16), as float32, for tests that
 * compare it with kern_bf16_round; only when kern_gemm_bf16_cpu_has(). */
void kern_bf16_round_avx512(const float *x, float *y, int64_t n);

#endif
