/* gemm_bf16_bench.c (built, not a test): kern_gemm_bf16 against our float32 kern_sgemm
 * (the AVX-512 backend where the CPU has it), one thread, on the model's GEMMs: N.T as
 * linear forward (C (M,N) = A (M,K) @ B (N,K)^T), 2048^3 and the ViT-B widths; then the
 * backward pass's layouts for ViT-Ti's linear layers (B 16, T 197: 3152 token rows): N.N as
 * d input (C = dY (M,K) @ W (K,N)) and T.N as d weight (C = dY^T @ X, K = the tokens). The two
 * kernels alternate within each repetition, so a busy machine slows both alike; best of
 * `reps` after a warm-up. Usage: gemm_bf16_bench [reps (3)] [max M (98500)] — a smaller max
 * M caps the 500 x 197-row shapes. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "kernels/kernels.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 3;
    int64_t max_m = argc > 2 ? atoll(argv[2]) : 500 * 197;
    static const struct {
        int64_t M, N, K;
        int transA, transB;
    } shapes[] = {
        {8704, 192, 64, 0, 1},     {8704, 64, 192, 0, 1},     {8704, 256, 64, 0, 1},
        {8704, 64, 256, 0, 1},     {2048, 2048, 2048, 0, 1},  {500 * 197, 768, 768, 0, 1},
        {500 * 197, 3072, 768, 0, 1}, {500 * 197, 768, 3072, 0, 1},
        {3152, 192, 576, 0, 0},    {3152, 192, 768, 0, 0},    {3152, 768, 192, 0, 0},
        {576, 192, 3152, 1, 0},    {768, 192, 3152, 1, 0},    {192, 768, 3152, 1, 0},
        {192, 192, 3152, 1, 0},
    };
    kern_sgemm_set_backend(KERN_GEMM_AVX512);
    printf("GFLOP/s, 1 thread, best of %d; kern_sgemm backend %s; kern_gemm_bf16 path %s\n",
           reps, kern_sgemm_backend() == KERN_GEMM_AVX512 ? "avx512" : "openblas",
           kern_gemm_bf16_supported() ? "native" : "portable");
    printf("%-26s %10s %10s %7s\n", "M x N x K (layout)", "fp32", "bf16", "ratio");
    for (size_t s = 0; s < MPSL_COUNT(shapes); s++) {
        int64_t M = shapes[s].M == 500 * 197 && max_m < shapes[s].M ? max_m : shapes[s].M,
                N = shapes[s].N, K = shapes[s].K;
        int ta = shapes[s].transA, tb = shapes[s].transB;
        /* leading dimensions of the stored (not the operated) matrices */
        int64_t lda = ta ? M : K, ldb = tb ? K : N;
        float *A = malloc((size_t)(M * K) * sizeof(float));
        float *B = malloc((size_t)(N * K) * sizeof(float));
        float *C = malloc((size_t)(M * N) * sizeof(float));
        if (!A || !B || !C) {
            return 1;
        }
        for (int64_t i = 0; i < M * K; i++) {
            A[i] = (float)(i % 13) * 0.01f - 0.06f;
        }
        for (int64_t i = 0; i < N * K; i++) {
            B[i] = (float)(i % 7) * 0.01f - 0.03f;
        }
        double best[2] = {1e30, 1e30};
        for (int r = 0; r <= reps; r++) {
            for (int bf = 0; bf < 2; bf++) {
                double t0 = now();
                if (bf) {
                    kern_gemm_bf16(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
                } else {
                    kern_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
                }
                double t = now() - t0;
                best[bf] = r > 0 && t < best[bf] ? t : best[bf];   // r == 0: warm-up
            }
        }
        double flop = 2.0 * (double)M * (double)N * (double)K * 1e-9;
        char name[64];
        snprintf(name, sizeof name, "%lldx%lldx%lld (%c.%c)", (long long)M, (long long)N,
                 (long long)K, ta ? 'T' : 'N', tb ? 'T' : 'N');
        printf("%-26s %10.1f %10.1f %7.2f\n", name, flop / best[0], flop / best[1],
               best[0] / best[1]);
        fflush(stdout);
        free(A), free(B), free(C);
    }
    kern_sgemm_set_backend(KERN_GEMM_AUTO);
    return 0;
}
