/* gemm.h (private to core/kernels, used by the tests and benchmarks too): single-precision
 * GEMM with runtime dispatch between our AVX-512 kernel (gemm_avx512.c) and OpenBLAS.
 *
 *   C (M,N) = alpha * op(A) (M,K) @ op(B) (K,N) + beta * C, row-major, as
 *   cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, ...).
 *
 * op(A) = A (M,K; lda >= K) or A^T with A stored (K,M; lda >= M); likewise B. beta == 0
 * overwrites C without reading it (NaN in C does not propagate), as BLAS does.
 * Single-threaded: callers split the work over the pool (kern_parallel_for), one kern_sgemm
 * per slice.
 *
 * Backend: chosen once per process, from the environment variable MPSL_GEMM if set
 * ("avx512": our kernel when the CPU has AVX-512F, else OpenBLAS; "openblas": always
 * OpenBLAS), otherwise the default: our kernel on AVX-512F CPUs, OpenBLAS elsewhere.
 * kern_sgemm_set_backend overrides it (the tests run both). Our kernel is used at every size:
 * on the 2-core Zen 5 VM it was as fast as OpenBLAS's Haswell sgemm or faster from 1x1x1 up,
 * and 1.8-2x faster on the model's shapes (kernels.h, THREADING). OPENBLAS_CORETYPE is
 * never touched. The two backends round differently (about an ulp). */
#ifndef MPSL_KERN_GEMM_H
#define MPSL_KERN_GEMM_H

#include <stdint.h>

typedef enum {
    KERN_GEMM_AUTO = 0,     /* MPSL_GEMM or the default */
    KERN_GEMM_OPENBLAS = 1, /* cblas_sgemm */
    KERN_GEMM_AVX512 = 2,   /* ours (falls back to OpenBLAS on CPUs without AVX-512F) */
} kern_gemm_backend;

void kern_sgemm(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
                const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                int64_t ldc);

/* The backend kern_sgemm uses now (never AUTO). */
kern_gemm_backend kern_sgemm_backend(void);
/* Overrides MPSL_GEMM for the process (AUTO: back to MPSL_GEMM / the default). Call it
 * between kernels, not during one. */
void kern_sgemm_set_backend(kern_gemm_backend b);
/* Whether this CPU runs the AVX-512 kernel (AVX-512F and the OS saves zmm state). */
int kern_sgemm_avx512_supported(void);

/* The AVX-512 kernel itself (gemm_avx512.c), same contract as kern_sgemm; only call it when
 * kern_sgemm_avx512_supported(). Its packing buffers are allocated per thread on first use
 * (kern_alloc); a thread that cannot get them runs the call on OpenBLAS instead. */
void kern_sgemm_avx512(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                       float *C, int64_t ldc);
/* The GEMM of the linear layers and attention: kern_sgemm, or kern_gemm_bf16 (bfloat16
 * inputs, float32 accumulation) after kern_set_precision_bf16(1) on a CPU that runs it
 * natively (precision.c). kern_set_precision_bf16 returns whether bf16 is now on (0 on a CPU
 * without AVX512_BF16, which keeps float32); set it between kernels, not during one. */
void kern_gemm(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
               const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
               int64_t ldc);
int kern_set_precision_bf16(int on);
int kern_precision_bf16(void);

/* A GEMM whose rows of C are split over the kernel threads, all slices with the same op(B)
 * (gemm_shared_b.c): kern_gemm_b_prepare, on the thread that then runs kern_parallel_for,
 * readies op(B) (K x N, stored as for kern_gemm) once for every slice: under bf16 it packs it
 * in parallel into a buffer of that thread (kept and reused; one prepared op(B) per thread at a
 * time), in float32 it only records it. kern_gemm_b_rows then computes one slice, C (M x N) =
 * alpha * op(A) @ op(B) + beta * C, bit for bit what kern_gemm would. B must not change in
 * between. */
typedef struct {
    int transB;
    int64_t K, N, ldb;
    const float *B;
    const uint32_t *packed; /* bf16 panels of op(B), or NULL: each slice calls kern_gemm */
} kern_gemm_b;
void kern_gemm_b_prepare(kern_gemm_b *g, int transB, int64_t K, int64_t N, const float *B,
                         int64_t ldb);
void kern_gemm_b_rows(const kern_gemm_b *g, int transA, int64_t M, float alpha,
                      const float *A, int64_t lda, float beta, float *C, int64_t ldc);

/* OpenBLAS's cblas_sgemm under the same contract (the other backend, and the AVX-512
 * kernel's fallback). */
void kern_sgemm_openblas(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
                         const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                         float *C, int64_t ldc);

#endif
