/* test_vec_avx512.c: the 16-lane AVX-512 loops (vec_avx512.c) against the 8-lane code they
 * stand in for and against double-precision references:
 *  - GELU forward and backward, bit for bit the 8-lane kernels (MPSL_VEC=avx2 is set before
 *    the first kernel call, so kern_gelu_* run the 8-lane loops here), on every length 0..70
 *    (the 16-lane tail), a long run, and NaN, +-inf, +-100, zero, a subnormal;
 *  - the row softmax and its backward against a double-precision computation: within 1e-5
 *    relative (the exp approximation reaches about 2e-6 on probabilities near e^-60; a
 *    wrong lane or tail is off by far more), rows summing to 1, lengths
 *    1..70 and 197, with -inf entries (exp 0) and logits up to 60 apart.
 * On a CPU without AVX-512F it prints "SKIP" and passes: nothing here runs there. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "grad_check.h"
#include "kernels/gemm.h"
#include "kernels/kernels.h"
#include "kernels/vec_avx512.h"
#include "util/util.h"

static mpsl_rng rng;

static void test_gelu(void)
{
    static const float special[] = {NAN, INFINITY, -INFINITY, 100.0f, -100.0f, 0.0f, -0.0f,
                                    1e-40f, 9.5f, -9.5f};
    int lengths = 0;
    for (int64_t N = 0; N <= 1000; N = N < 70 ? N + 1 : 1000) {
        float *x = test_floats(N + 3), *d = test_floats(N + 3);
        float *a = test_floats(N + 3), *b = test_floats(N + 3), *ga = test_floats(N + 3), *gb = test_floats(N + 3);
        fill_uniform(&rng, x, N, -7, 7);
        fill_uniform(&rng, d, N, -1, 1);
        for (int64_t i = 0; i < N && i < (int64_t)MPSL_COUNT(special); i++) {
            x[(i * 7) % N] = special[i];
        }
        // guards past the end must stay untouched by the masked tail
        for (int64_t i = N; i < N + 3; i++) {
            a[i] = b[i] = ga[i] = gb[i] = 42.0f;
        }
        kern_gelu_forward(a, x, N);
        kern_gelu_forward_avx512(b, x, 0, N);
        kern_gelu_backward(ga, d, x, N);
        kern_gelu_backward_avx512(gb, d, x, 0, N);
        CHECK(memcmp(a, b, (size_t)(N + 3) * sizeof(float)) == 0);
        CHECK(memcmp(ga, gb, (size_t)(N + 3) * sizeof(float)) == 0);
        free(x), free(d), free(a), free(b), free(ga), free(gb);
        lengths++;
        if (N == 1000) {
            break;
        }
    }
    fprintf(stderr, "  GELU forward and backward, 16 lanes = 8 lanes bit for bit: %d lengths\n",
            lengths);
}

/* Worst relative error of the 16-lane softmax (and backward) of one row against double. */
static void softmax_case(int64_t T, double *worst_fwd, double *worst_bwd)
{
    float *s = test_floats(T + 1), *p = test_floats(T + 1), *dp = test_floats(T + 1);
    double *ref = malloc((size_t)T * sizeof(double));
    fill_uniform(&rng, s, T, -30, 30);
    fill_uniform(&rng, dp, T, -1, 1);
    if (T > 3) {
        s[T / 2] = -INFINITY;   // a masked-out entry: probability 0
    }
    s[T] = p[T] = dp[T] = 42.0f;
    double m = -INFINITY, sum = 0.0;
    for (int64_t i = 0; i < T; i++) {
        m = s[i] > m ? s[i] : m;
    }
    for (int64_t i = 0; i < T; i++) {
        ref[i] = exp((double)s[i] - m);
        sum += ref[i];
    }
    memcpy(p, s, (size_t)T * sizeof(float));
    kern_softmax_row_avx512(p, T);
    double total = 0.0;
    for (int64_t i = 0; i < T; i++) {
        ref[i] /= sum;
        double e = fabs(p[i] - ref[i]) / (ref[i] > 1e-30 ? ref[i] : 1.0);
        *worst_fwd = e > *worst_fwd ? e : *worst_fwd;
        total += p[i];
    }
    CHECK(fabs(total - 1.0) < 1e-5 && p[T] == 42.0f);
    // backward: dS = P * (dP - sum(P * dP)), from the float32 P just computed
    double dot = 0.0;
    for (int64_t i = 0; i < T; i++) {
        dot += (double)p[i] * dp[i];
    }
    float *g = test_floats(T + 1);
    memcpy(g, dp, (size_t)(T + 1) * sizeof(float));
    kern_softmax_backward_row_avx512(g, p, T);
    for (int64_t i = 0; i < T; i++) {
        double want = p[i] * (dp[i] - dot);
        double e = fabs(g[i] - want) / (fabs(p[i]) * (fabs(dp[i]) + fabs(dot)) + 1e-30);
        *worst_bwd = e > *worst_bwd ? e : *worst_bwd;
    }
    CHECK(g[T] == 42.0f);
    free(s), free(p), free(dp), free(g), free(ref);
}

static void test_softmax(void)
{
    double fwd = 0.0, bwd = 0.0;
    for (int64_t T = 1; T <= 70; T++) {
        softmax_case(T, &fwd, &bwd);
    }
    softmax_case(197, &fwd, &bwd);
    fprintf(stderr, "  softmax rows 1..70 and 197: worst relative error %.2g, backward %.2g\n",
            fwd, bwd);
    CHECK(fwd < 1e-5);
    CHECK(bwd < 1e-5);
}

int main(void)
{
    setenv("MPSL_VEC", "avx2", 1);   // kern_gelu_* keep the 8-lane loops in this process
    mpsl_rng_seed(&rng, 777);
    if (!kern_sgemm_avx512_supported()) {
        fprintf(stderr, "SKIP: CPU lacks AVX-512F\n");
        return check_exit();
    }
    CHECK(kern_vec_avx512() == 0);   // MPSL_VEC=avx2 was honoured
    test_gelu();
    test_softmax();
    return check_exit();
}
