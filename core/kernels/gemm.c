/* gemm.c: kern_sgemm, the dispatcher between our AVX-512 GEMM (gemm_avx512.c) and
 * OpenBLAS's cblas_sgemm (gemm.h has the contract and the MPSL_GEMM switch). This file is
 * compiled for the baseline ISA; it only calls the AVX-512 code after checking the CPU. */
#include "gemm.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t gemm_once = PTHREAD_ONCE_INIT;
static int avx512_ok;
static kern_gemm_backend env_backend;   /* from MPSL_GEMM / the default, never AUTO */
static atomic_int forced;               /* kern_sgemm_set_backend; AUTO: none */

static void gemm_init(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    avx512_ok = __builtin_cpu_supports("avx512f") != 0;
#else
    avx512_ok = 0;
#endif
    env_backend = avx512_ok ? KERN_GEMM_AVX512 : KERN_GEMM_OPENBLAS;
    const char *env = getenv("MPSL_GEMM");
    if (env && *env) {
        if (strcmp(env, "openblas") == 0) {
            env_backend = KERN_GEMM_OPENBLAS;
        } else if (strcmp(env, "avx512") == 0) {
            env_backend = avx512_ok ? KERN_GEMM_AVX512 : KERN_GEMM_OPENBLAS;
        } else {
            fprintf(stderr, "mpsl: MPSL_GEMM=%s not understood (openblas|avx512); using %s\n",
                    env, avx512_ok ? "avx512" : "openblas");
        }
    }
}

int kern_sgemm_avx512_supported(void)
{
    pthread_once(&gemm_once, gemm_init);
    return avx512_ok;
}

kern_gemm_backend kern_sgemm_backend(void)
{
    pthread_once(&gemm_once, gemm_init);
    kern_gemm_backend f = (kern_gemm_backend)atomic_load_explicit(&forced, memory_order_relaxed);
    if (f == KERN_GEMM_AUTO) {
        return env_backend;
    }
    return f == KERN_GEMM_AVX512 && !avx512_ok ? KERN_GEMM_OPENBLAS : f;
}

void kern_sgemm_set_backend(kern_gemm_backend b)
{
    atomic_store(&forced, (int)b);
}

void kern_sgemm(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
                const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                int64_t ldc)
{
    if (M <= 0 || N <= 0) {
        return;
    }
    // Ours at every size: measured as fast as OpenBLAS's Haswell kernel or faster from 1x1x1
    // up (single thread; 16x10x192 is the one case seen slower, 1.5 vs 1.2 us).
    if (kern_sgemm_backend() == KERN_GEMM_AVX512) {
        kern_sgemm_avx512(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    kern_sgemm_openblas(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void kern_sgemm_openblas(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
                         const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                         float *C, int64_t ldc)
{
    if (M <= 0 || N <= 0) {
        return;
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                transB ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N, (blasint)K, alpha,
                A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}
