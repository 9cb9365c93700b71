/* test_gemm_bf16.c: kern_gemm_bf16 (gemm_bf16.h), both paths (native when the CPU has
 * AVX512_BF16, portable always) and the dispatcher, checked two ways on every case:
 *  - against a double-precision GEMM of the bf16-rounded inputs (kern_bf16_round): error /
 *    (|alpha| sum_k |a'_ik b'_kj| + |beta c_ij|) <= 1e-5, float32 summation's error as in
 *    test_gemm.c. This is what shows "bf16 inputs, float32 accumulation": a kernel that did
 *    not round, or rounded the products or the sums to bf16, is off by ~2^-9 here;
 *  - against kern_sgemm of the original inputs: error / (|alpha| sum_k |a_ik b_kj| +
 *    |beta c_ij|) <= 2^-7 + 2^-16 + 2e-5. Why: RNE to bf16 (8 significant bits) moves each
 *    input by at most 2^-8 of itself (u = 2^-8 relative, half an ulp of a 7-bit fraction),
 *    so a product by at most (1 + u)^2 - 1 = 2u + u^2 of itself, the sum by that much of
 *    sum |a b|; 2e-5 covers the two float32 summations.
 * Cases: all four transpose combinations, random sizes 1..70, K odd and 1, the blocking edges
 * of both paths, leading dimensions larger than the matrices, alpha != 1, beta 0 (C starts
 * as NaN and must not be read), 1 and other; the padding columns of C must stay untouched;
 * the model's shapes (500 x 17 tokens at width 64/192; 768 x 3072); the portable path without
 * scratch memory. And the rounding helper:
 * ties to even, NaN, infinities, overflow to infinity, and the hardware's rounding.
 * On a CPU without AVX512_BF16 the native checks print "SKIP native bf16: ..." and the rest
 * runs. Usage: test_gemm_bf16 [small] ("small": skip the model shapes, for valgrind). */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "grad_check.h"
#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "kernels/kernels.h"
#include "util/util.h"

#define TOL_BF16_INPUTS 1e-5
#define TOL_FP32_INPUTS (0x1p-7 + 0x1p-16 + 2e-5)

typedef enum { PATH_NATIVE, PATH_PORTABLE, PATH_DISPATCH } path;
static const char *const path_names[] = {"native", "portable", "kern_gemm_bf16"};

static mpsl_rng rng;

static uint32_t bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float from_bits(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static void run(path p, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                int64_t ldc)
{
    if (p == PATH_NATIVE) {
        kern_gemm_bf16_avx512(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    } else if (p == PATH_PORTABLE) {
        kern_gemm_bf16_portable(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    } else {
        kern_gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    }
}

typedef struct {
    double bf16_inputs, fp32_inputs;   // worst errors of the two checks
} errs;

static void worst(errs *w, errs e)
{
    w->bf16_inputs = e.bf16_inputs > w->bf16_inputs ? e.bf16_inputs : w->bf16_inputs;
    w->fp32_inputs = e.fp32_inputs > w->fp32_inputs ? e.fp32_inputs : w->fp32_inputs;
}

static void max_err(double *err, double e)
{
    if (!(e <= *err)) {
        *err = isnan(e) ? INFINITY : e;
    }
}

/* One case on path p; rows of C checked every `row_step` (plus the last row). */
static errs gemm_case(path p, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                      float beta, int64_t pad, int64_t row_step)
{
    int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    int64_t arows = ta ? K : M, brows = tb ? N : K;
    float *A = test_floats(arows * lda), *B = test_floats(brows * ldb), *C = test_floats(M * ldc),
          *C0 = test_floats(M * ldc), *C32 = test_floats(M * ldc);
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
    memcpy(C32, C, (size_t)(M * ldc) * sizeof(float));
    run(p, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    kern_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C32, ldc);
    errs e = {0.0, 0.0};
    int ok_pad = 1;
    for (int64_t i = 0; i < M; i += (i + row_step < M || i == M - 1) ? row_step : M - 1 - i) {
        for (int64_t j = 0; j < N; j++) {
            double s = 0.0, mag = 0.0, mag32 = 0.0;
            for (int64_t k = 0; k < K; k++) {
                float a = ta ? A[k * lda + i] : A[i * lda + k];
                float b = tb ? B[j * ldb + k] : B[k * ldb + j];
                double ab = (double)kern_bf16_round(a) * (double)kern_bf16_round(b);
                s += ab;
                mag += fabs(ab);
                mag32 += fabs((double)a * (double)b);
            }
            double c0 = beta == 0.0f ? 0.0 : (double)C0[i * ldc + j];
            double ref = (double)alpha * s + (double)beta * c0, c = C[i * ldc + j];
            double bc = fabs((double)beta * c0);
            mag = fabs((double)alpha) * mag + bc;
            mag32 = fabs((double)alpha) * mag32 + bc;
            max_err(&e.bf16_inputs, fabs(c - ref) / (mag > 1e-30 ? mag : 1.0));
            max_err(&e.fp32_inputs,
                    fabs(c - (double)C32[i * ldc + j]) / (mag32 > 1e-30 ? mag32 : 1.0));
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
        e.bf16_inputs = e.fp32_inputs = INFINITY;
    }
    if (!(e.bf16_inputs <= TOL_BF16_INPUTS && e.fp32_inputs <= TOL_FP32_INPUTS)) {
        fprintf(stderr, "  %s: ta %d tb %d M %lld N %lld K %lld alpha %g beta %g pad %lld: "
                "error vs bf16 inputs %g, vs fp32 sgemm %g\n", path_names[p], ta, tb,
                (long long)M, (long long)N, (long long)K, (double)alpha, (double)beta,
                (long long)pad, e.bf16_inputs, e.fp32_inputs);
    }
    free(A), free(B), free(C), free(C0), free(C32);
    return e;
}

static void report(const char *what, errs w)
{
    fprintf(stderr, "  %s: worst error vs bf16 inputs %.3g (tol %.0e), vs fp32 sgemm %.3g "
            "(tol %.3g)\n", what, w.bf16_inputs, TOL_BF16_INPUTS, w.fp32_inputs,
            TOL_FP32_INPUTS);
    CHECK(w.bf16_inputs <= TOL_BF16_INPUTS);
    CHECK(w.fp32_inputs <= TOL_FP32_INPUTS);
}

static void test_random_small(path p)
{
    static const float betas[] = {0.0f, 1.0f, -0.5f};
    errs w = {0.0, 0.0};
    for (int t = 0; t < 400; t++) {
        int ta = t & 1, tb = (t >> 1) & 1;
        int64_t M = 1 + (int64_t)(mpsl_rng_uniform(&rng) * 70);
        int64_t N = 1 + (int64_t)(mpsl_rng_uniform(&rng) * 70);
        int64_t K = 1 + (int64_t)(mpsl_rng_uniform(&rng) * 70);
        float alpha = (t >> 2) % 2 ? 1.0f : -0.7f;
        float beta = betas[(t >> 3) % 3];
        int64_t pad = (t >> 4) % 2 ? 3 : 0;
        worst(&w, gemm_case(p, ta, tb, M, N, K, alpha, beta, pad, 1));
    }
    report("random sizes 1..70", w);
}

static void test_edges(path p)
{
    // native: MR 12, NR 32, MC 96, KC 768 (k values), NC 768; portable: K blocks of 256, M
    // blocks of 1024; odd K (a zero-padded last pair), K == 1
    static const int64_t cases[][3] = {
        {1, 1, 1},     {1, 1, 2},      {12, 32, 768}, {13, 33, 769},  {11, 31, 767},
        {25, 800, 9},  {24, 769, 1537}, {97, 65, 3},  {1, 1000, 3},   {100, 1, 513},
        {197, 197, 64}, {197, 64, 197}, {2, 17, 1},   {1030, 5, 257}, {96, 96, 255},
    };
    errs w = {0.0, 0.0};
    for (size_t c = 0; c < MPSL_COUNT(cases); c++) {
        for (int t = 0; t < 8; t++) {
            float alpha = t & 4 ? 0.125f : 1.0f, beta = t & 4 ? 1.0f : t & 1 ? -2.0f : 0.0f;
            worst(&w, gemm_case(p, t & 1, (t >> 1) & 1, cases[c][0], cases[c][1], cases[c][2],
                                alpha, beta, t & 2 ? 5 : 0, 1));
        }
    }
    report("blocking edges", w);

    // K == 0 and alpha == 0: C = beta * C, NaN-free with beta == 0
    float C[6] = {NAN, NAN, NAN, NAN, NAN, NAN}, A[6] = {1, 2, 3, 4, 5, 6};
    run(p, 0, 0, 2, 3, 0, 1.0f, A, 1, A, 3, 0.0f, C, 3);
    for (int i = 0; i < 6; i++) {
        CHECK(C[i] == 0.0f);
    }
    for (int i = 0; i < 6; i++) {
        C[i] = (float)i;
    }
    run(p, 0, 0, 2, 3, 2, 0.0f, A, 2, A, 3, 2.0f, C, 3);
    for (int i = 0; i < 6; i++) {
        CHECK(C[i] == 2.0f * (float)i);
    }
}

/* The model's GEMMs: 500 images x 17 tokens at widths 64 and 192 (forward N.T, input
 * gradient N.N, weight gradient T.N with beta 1), and the ViT-B widths 768 x 3072. Rows
 * sampled. */
static void test_model_shapes(path p)
{
    static const struct {
        int ta, tb;
        int64_t M, N, K;
        float alpha, beta;
    } cases[] = {
        {0, 1, 8500, 192, 64, 1.0f, 0.0f},  {0, 0, 8500, 64, 192, 1.0f, 0.0f},
        {1, 0, 192, 64, 8500, 1.0f, 1.0f},  {0, 1, 1024, 3072, 768, 1.0f, 0.0f},
        {0, 1, 1024, 768, 3072, 1.0f, 0.0f}, {1, 0, 768, 3072, 1024, 1.0f, 1.0f},
    };
    errs w = {0.0, 0.0};
    for (size_t c = 0; c < MPSL_COUNT(cases); c++) {
        worst(&w, gemm_case(p, cases[c].ta, cases[c].tb, cases[c].M, cases[c].N, cases[c].K,
                            cases[c].alpha, cases[c].beta, 0, cases[c].M > 1000 ? 97 : 41));
    }
    report("model shapes", w);
}

/* No scratch memory: the portable path computes element by element (the native path hands
 * such calls to it, too), same numerics. */
static void test_no_memory(void)
{
    long failures = kern_alloc_failures();
    kern_test_fail_alloc(1);
    errs w = {0.0, 0.0};
    for (int t = 0; t < 8; t++) {
        worst(&w, gemm_case(PATH_PORTABLE, t & 1, (t >> 1) & 1, 13 + t, 33, 17 + 2 * t,
                            t & 4 ? 0.5f : 1.0f, t & 4 ? 0.0f : 1.0f, 2, 1));
    }
    kern_test_fail_alloc(0);
    CHECK(kern_alloc_failures() > failures);
    report("portable without scratch memory", w);
}

static void test_round(void)
{
    static const uint32_t cases[][2] = {
        {0x3f800000u, 0x3f800000u},   // 1
        {0x3f808000u, 0x3f800000u},   // 1 + 2^-8: tie, to the even 1
        {0x3f818000u, 0x3f820000u},   // 1 + 3 2^-8: tie, to the even 1 + 2^-6
        {0x3f808001u, 0x3f810000u},   // just above the tie: up
        {0x3f807fffu, 0x3f800000u},   // just below: down
        {0xbf818000u, 0xbf820000u},   // negative tie
        {0x00000000u, 0x00000000u},   {0x80000000u, 0x80000000u},   // zeros keep their sign
        {0x7f800000u, 0x7f800000u},   {0xff800000u, 0xff800000u},   // infinities
        {0x7f7fffffu, 0x7f800000u},   {0xff7fffffu, 0xff800000u},   // FLT_MAX -> infinity
        {0x7f7f8000u, 0x7f800000u},   // tie above bf16's largest, odd: to infinity
        {0x7f7f7fffu, 0x7f7f0000u},   // bf16's largest stays
        {0x00018000u, 0x00020000u},   // subnormal tie, odd: up
    };
    for (size_t c = 0; c < MPSL_COUNT(cases); c++) {
        uint32_t got = bits(kern_bf16_round(from_bits(cases[c][0])));
        if (got != cases[c][1]) {
            fprintf(stderr, "  round 0x%08x: got 0x%08x, want 0x%08x\n", cases[c][0], got,
                    cases[c][1]);
        }
        CHECK(got == cases[c][1]);
    }
    // NaN stays NaN (a payload only in the low bits must not become infinity), sign kept
    static const uint32_t nans[] = {0x7f800001u, 0x7fc00000u, 0xffc00000u, 0x7fffffffu,
                                    0xff800001u, 0x7f80ffffu};
    for (size_t c = 0; c < MPSL_COUNT(nans); c++) {
        float r = kern_bf16_round(from_bits(nans[c]));
        CHECK(isnan(r));
        CHECK((bits(r) >> 31) == (nans[c] >> 31));
        CHECK((bits(r) & 0xffffu) == 0);
    }
    CHECK(kern_bf16_round(FLT_MAX) == INFINITY);
    CHECK(kern_bf16_round(-3.4e38f) == -INFINITY);

    // the hardware's rounding (vcvtne2ps2bf16) against the helper on random bit patterns
    if (!kern_gemm_bf16_cpu_has()) {
        fprintf(stderr, "  SKIP native bf16 rounding: CPU lacks avx512_bf16\n");
        return;
    }
    enum { NR = 1 << 18 };
    float *x = test_floats(NR), *y = test_floats(NR);
    for (int i = 0; i < NR; i++) {
        uint32_t u = (uint32_t)(mpsl_rng_uniform(&rng) * 4294967296.0);
        x[i] = from_bits(i < (int)MPSL_COUNT(cases) ? cases[i][0] : u);
    }
    kern_bf16_round_avx512(x, y, NR);
    long differ = 0, subnormal_differ = 0;
    for (int i = 0; i < NR; i++) {
        float h = kern_bf16_round(x[i]);
        int same = isnan(h) ? isnan(y[i]) != 0 : bits(h) == bits(y[i]);
        if (!same && fpclassify(x[i]) == FP_SUBNORMAL && y[i] == 0.0f) {
            subnormal_differ++;   // flushed by the hardware (gemm_bf16.h)
        } else if (!same) {
            if (differ++ < 5) {
                fprintf(stderr, "  hardware rounds 0x%08x to 0x%08x, helper to 0x%08x\n",
                        bits(x[i]), bits(y[i]), bits(h));
            }
        }
    }
    fprintf(stderr, "  hardware rounding vs helper on %d patterns: %ld differ (%ld subnormals "
            "flushed to zero by the hardware)\n", NR, differ, subnormal_differ);
    CHECK(differ == 0);
    free(x), free(y);
}

int main(int argc, char **argv)
{
    int small = argc > 1 && strcmp(argv[1], "small") == 0;
    mpsl_rng_seed(&rng, 9876);
    fprintf(stderr, "rounding:\n");
    test_round();
    static const path paths[] = {PATH_NATIVE, PATH_PORTABLE, PATH_DISPATCH};
    fprintf(stderr, "kern_gemm_bf16 uses the %s path (MPSL_GEMM_BF16=%s)\n",
            kern_gemm_bf16_supported() ? "native" : "portable",
            getenv("MPSL_GEMM_BF16") ? getenv("MPSL_GEMM_BF16") : "(unset)");
    for (size_t i = 0; i < MPSL_COUNT(paths); i++) {
        path p = paths[i];
        if (p == PATH_NATIVE && !kern_gemm_bf16_supported()) {
            fprintf(stderr, "SKIP native bf16: %s\n", kern_gemm_bf16_cpu_has()
                                                          ? "MPSL_GEMM_BF16=portable"
                                                          : "CPU lacks avx512_bf16");
            continue;
        }
        fprintf(stderr, "%s:\n", path_names[p]);
        test_random_small(p);
        if (p == PATH_DISPATCH) {
            continue;   // the same code as one of the two above
        }
        test_edges(p);
        if (p == PATH_PORTABLE) {
            test_no_memory();
        }
        if (!small) {
            test_model_shapes(p);
        }
    }
    return check_exit();
}
