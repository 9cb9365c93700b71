/* gemm_bench.c (built, not a test): kern_sgemm's speed on both backends, OpenBLAS (as
 * OPENBLAS_CORETYPE selects it; never changed here) and our AVX-512 kernel, on 2048^3 and on
 * the ViT-Ti GEMMs, at 1 thread and at `threads` threads. Multi-threaded runs split C's rows
 * (blocks of 24 rows for ours, 16 for OpenBLAS, as linear.c) over the kernels' pool, one
 * single-threaded kern_sgemm per slice, as the kernels do. Best of `reps` after a warm-up.
 * Usage: gemm_bench [threads (2)] [reps (5)] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kernels/gemm.h"
#include "kernels/kernels.h"

typedef struct {
    int ta, tb;
    int64_t M, N, K;
    const float *A, *B;
    float *C;
    float beta;
} job;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void rows(void *p, int64_t b, int64_t e, int part)
{
    job *j = p;
    int64_t a = kern_sgemm_backend() == KERN_GEMM_AVX512 ? 24 : 16;
    int64_t r0 = b * a, r1 = e * a < j->M ? e * a : j->M;
    int64_t lda = j->ta ? j->M : j->K, ldb = j->tb ? j->K : j->N;
    const float *A = j->ta ? j->A + r0 : j->A + r0 * lda;
    kern_sgemm(j->ta, j->tb, r1 - r0, j->N, j->K, 1.0f, A, lda, j->B, ldb, j->beta,
               j->C + r0 * j->N, j->N);
}

static double gflops(job *j, int reps)
{
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        double t0 = now();
        int64_t a = kern_sgemm_backend() == KERN_GEMM_AVX512 ? 24 : 16;
        kern_parallel_for((j->M + a - 1) / a, 1, rows, j);
        double t = now() - t0;
        best = r > 0 && t < best ? t : best;
    }
    return 2.0 * (double)j->M * (double)j->N * (double)j->K / best * 1e-9;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2, reps = argc > 2 ? atoi(argv[2]) : 5;
    static const struct {
        const char *name;
        int ta, tb;
        int64_t M, N, K;
        float beta;
    } shapes[] = {
        {"square 2048^3 (N.T)", 0, 1, 2048, 2048, 2048, 0.0f},
        {"fwd qkv 3152x576x192 (N.T)", 0, 1, 3152, 576, 192, 0.0f},
        {"fwd fc1 3152x768x192 (N.T)", 0, 1, 3152, 768, 192, 0.0f},
        {"fwd fc2 3152x192x768 (N.T)", 0, 1, 3152, 192, 768, 0.0f},
        {"dinp fc1 3152x192x768 (N.N)", 0, 0, 3152, 192, 768, 0.0f},
        {"dw fc1 768x192x3152 (T.N)", 1, 0, 768, 192, 3152, 1.0f},
        {"dw qkv 576x192x3152 (T.N)", 1, 0, 576, 192, 3152, 1.0f},
    };
    printf("kern_sgemm GFLOP/s (best of %d); OPENBLAS_CORETYPE=%s; avx512 %s\n", reps,
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset)",
           kern_sgemm_avx512_supported() ? "supported" : "not supported");
    printf("%-30s %10s %10s %10s %10s\n", "shape", "openblas 1", "avx512 1", "openblas N",
           "avx512 N");
    for (size_t s = 0; s < MPSL_COUNT(shapes); s++) {
        job j = {shapes[s].ta, shapes[s].tb, shapes[s].M, shapes[s].N, shapes[s].K,
                 NULL, NULL, NULL, shapes[s].beta};
        float *A = malloc((size_t)(j.M * j.K) * sizeof(float));
        float *B = malloc((size_t)(j.K * j.N) * sizeof(float));
        float *C = calloc((size_t)(j.M * j.N), sizeof(float));
        if (!A || !B || !C) {
            return 1;
        }
        for (int64_t i = 0; i < j.M * j.K; i++) {
            A[i] = (float)(i % 13) * 0.01f - 0.06f;
        }
        for (int64_t i = 0; i < j.K * j.N; i++) {
            B[i] = (float)(i % 7) * 0.01f - 0.03f;
        }
        j.A = A, j.B = B, j.C = C;
        double g[4];
        for (int t = 0; t < 2; t++) {
            kern_set_threads(t ? threads : 1);
            kern_sgemm_set_backend(KERN_GEMM_OPENBLAS);
            g[2 * t] = gflops(&j, reps);
            kern_sgemm_set_backend(KERN_GEMM_AVX512);
            g[2 * t + 1] = kern_sgemm_backend() == KERN_GEMM_AVX512 ? gflops(&j, reps) : 0.0;
        }
        printf("%-30s %10.1f %10.1f %10.1f %10.1f\n", shapes[s].name, g[0], g[1], g[2], g[3]);
        free(A), free(B), free(C);
    }
    return 0;
}
