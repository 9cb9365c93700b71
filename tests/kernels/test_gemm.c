/* test_gemm.c: kern_sgemm (gemm.h) against a double-precision reference, on both backends
 * (our AVX-512 kernel when the CPU has it, and OpenBLAS): all four transpose combinations,
 * beta 0 / 1 / other, alpha 1 / other, leading dimensions larger than the matrices, random
 * sizes 1..67, the blocking edges (K across KC, N across NC), and the ViT-Ti shapes of linear
 * forward/backward and attention. beta == 0 must overwrite C without reading it (C starts as
 * NaN). Error: max over C of |C - ref| / (|alpha| sum_k |a_ik b_kj| + |beta c_ij|), which
 * must stay below 1e-5. Usage: test_gemm [small] ("small": skip the model shapes, for
 * valgrind). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "grad_check.h"
#include "kernels/gemm.h"
#include "kernels/kernels.h"
#include "util/util.h"

#define GEMM_TOL 1e-5

static mpsl_rng rng;

/* Runs one case on the current backend; rows of C are checked every `row_step` (plus the
 * last row). Returns the error. */
static double gemm_case(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                        float beta, int64_t pad, int64_t row_step)
{
    int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    int64_t arows = ta ? K : M, brows = tb ? N : K;
    float *A = test_floats(arows * lda), *B = test_floats(brows * ldb), *C = test_floats(M * ldc),
          *C0 = test_floats(M * ldc);
    fill_uniform(&rng, A, arows * lda, -1, 1);
    fill_uniform(&rng, B, brows * ldb, -1, 1);
    if (beta == 0.0f) {
        for (int64_t i = 0; i < M * ldc; i++) {
            C[i] = NAN;   // must not be read
        }
    } else {
        fill_uniform(&rng, C, M * ldc, -1, 1);
    }
    memcpy(C0, C, (size_t)(M * ldc) * sizeof(float));
    kern_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    double err = 0.0;
    int ok_pad = 1;
    for (int64_t i = 0; i < M; i += (i + row_step < M || i == M - 1) ? row_step : M - 1 - i) {
        for (int64_t j = 0; j < N; j++) {
            double s = 0.0, mag = 0.0;
            for (int64_t k = 0; k < K; k++) {
                double a = ta ? A[k * lda + i] : A[i * lda + k];
                double b = tb ? B[j * ldb + k] : B[k * ldb + j];
                s += a * b;
                mag += fabs(a * b);
            }
            double c0 = beta == 0.0f ? 0.0 : (double)C0[i * ldc + j];
            double ref = (double)alpha * s + (double)beta * c0;
            mag = fabs((double)alpha) * mag + fabs((double)beta * c0);
            double e = fabs((double)C[i * ldc + j] - ref) / (mag > 1e-30 ? mag : 1.0);
            if (!(e <= err)) {
                err = isnan(e) ? INFINITY : e;
            }
        }
        for (int64_t j = N; j < ldc; j++) {   // padding columns untouched
            float x = C[i * ldc + j], y = C0[i * ldc + j];
            ok_pad &= (isnan(x) && isnan(y)) || x == y;
        }
        if (i == M - 1) {
            break;
        }
    }
    if (!ok_pad) {
        err = INFINITY;
    }
    if (!(err <= GEMM_TOL)) {
        fprintf(stderr, "  backend %d: ta %d tb %d M %lld N %lld K %lld alpha %g beta %g pad %lld: "
                "error %g\n", (int)kern_sgemm_backend(), ta, tb, (long long)M, (long long)N,
                (long long)K, (double)alpha, (double)beta, (long long)pad, err);
    }
    free(A), free(B), free(C), free(C0);
    return err;
}

static void test_random_small(void)
{
    static const float betas[] = {0.0f, 1.0f, -0.5f};
    double worst = 0.0;
    for (int t = 0; t < 400; t++) {
        int ta = t & 1, tb = (t >> 1) & 1;
        int64_t M = 1 + (int64_t)(mpsl_rng_uniform(&rng) * 67);
        int64_t N = 1 + (int64_t)(mpsl_rng_uniform(&rng) * 67);
        int64_t K = 1 + (int64_t)(mpsl_rng_uniform(&rng) * 67);
        float alpha = (t >> 2) % 2 ? 1.0f : -0.7f;
        float beta = betas[(t >> 3) % 3];
        int64_t pad = (t >> 4) % 2 ? 3 : 0;
        double e = gemm_case(ta, tb, M, N, K, alpha, beta, pad, 1);
        worst = e > worst ? e : worst;
    }
    fprintf(stderr, "  random sizes 1..67: worst error %.3g\n", worst);
    CHECK(worst <= GEMM_TOL);
}

static void test_edges(void)
{
    // blocking edges: K across KC (256), N across NC (768) and the 32-column panels, M across
    // 12-row slivers; K == 1; alpha == 0 and K == 0 (C = beta C)
    static const int64_t cases[][3] = {
        {1, 1, 1}, {12, 32, 256}, {13, 33, 257}, {11, 31, 255}, {25, 800, 9}, {24, 769, 513},
        {1, 1000, 3}, {100, 1, 300}, {197, 197, 64}, {197, 64, 197}, {2, 17, 1},
    };
    double worst = 0.0;
    for (size_t c = 0; c < MPSL_COUNT(cases); c++) {
        for (int t = 0; t < 8; t++) {
            double e = gemm_case(t & 1, (t >> 1) & 1, cases[c][0], cases[c][1], cases[c][2],
                                 t & 4 ? 0.125f : 1.0f, t & 4 ? 1.0f : 0.0f, t & 2 ? 5 : 0, 1);
            worst = e > worst ? e : worst;
        }
    }
    fprintf(stderr, "  blocking edges: worst error %.3g\n", worst);
    CHECK(worst <= GEMM_TOL);

    // K == 0 and alpha == 0: C = beta * C, NaN-free with beta == 0
    float C[6] = {NAN, NAN, NAN, NAN, NAN, NAN}, A[6] = {1, 2, 3, 4, 5, 6};
    kern_sgemm(0, 0, 2, 3, 0, 1.0f, A, 1, A, 3, 0.0f, C, 3);
    for (int i = 0; i < 6; i++) {
        CHECK(C[i] == 0.0f);
    }
    for (int i = 0; i < 6; i++) {
        C[i] = (float)i;
    }
    kern_sgemm(0, 0, 2, 3, 2, 0.0f, A, 2, A, 3, 2.0f, C, 3);
    for (int i = 0; i < 6; i++) {
        CHECK(C[i] == 2.0f * (float)i);
    }
}

/* The ViT-Ti (B 16, T 197, D 192, MLP 768) GEMMs: linear forward (N.T), d input (N.N),
 * d weight (T.N, beta 1, K = 3152), attention's per-head products. Rows sampled. */
static void test_model_shapes(void)
{
    static const struct {
        int ta, tb;
        int64_t M, N, K;
        float alpha, beta;
    } cases[] = {
        {0, 1, 3152, 576, 192, 1.0f, 0.0f},  {0, 1, 3152, 768, 192, 1.0f, 1.0f},
        {0, 1, 3152, 192, 768, 1.0f, 0.0f},  {0, 0, 3152, 192, 768, 1.0f, 0.0f},
        {0, 0, 3152, 192, 576, 1.0f, 0.0f},  {1, 0, 576, 192, 3152, 1.0f, 1.0f},
        {1, 0, 192, 768, 3152, 1.0f, 1.0f},  {1, 0, 768, 192, 3152, 1.0f, 1.0f},
        {0, 1, 197, 197, 64, 0.125f, 0.0f},  {1, 0, 197, 64, 197, 0.125f, 0.0f},
    };
    double worst = 0.0;
    for (size_t c = 0; c < MPSL_COUNT(cases); c++) {
        double e = gemm_case(cases[c].ta, cases[c].tb, cases[c].M, cases[c].N, cases[c].K,
                             cases[c].alpha, cases[c].beta, 0, cases[c].M > 1000 ? 37 : 5);
        worst = e > worst ? e : worst;
    }
    fprintf(stderr, "  model shapes: worst error %.3g\n", worst);
    CHECK(worst <= GEMM_TOL);
}

int main(int argc, char **argv)
{
    int small = argc > 1 && strcmp(argv[1], "small") == 0;
    mpsl_rng_seed(&rng, 4321);
    static const kern_gemm_backend backends[] = {KERN_GEMM_AVX512, KERN_GEMM_OPENBLAS};
    for (size_t b = 0; b < MPSL_COUNT(backends); b++) {
        kern_sgemm_set_backend(backends[b]);
        if (kern_sgemm_backend() != backends[b]) {
            fprintf(stderr, "backend avx512: not supported by this CPU, skipped\n");
            continue;
        }
        fprintf(stderr, "backend %s:\n", b == 0 ? "avx512" : "openblas");
        test_random_small();
        test_edges();
        if (!small) {
            test_model_shapes();
        }
    }
    kern_sgemm_set_backend(KERN_GEMM_AUTO);
    return check_exit();
}
