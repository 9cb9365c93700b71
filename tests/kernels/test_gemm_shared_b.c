/* test_gemm_shared_b.c: op(B) packed once for all row slices of a GEMM (gemm.h,
 * kern_gemm_b_prepare / kern_gemm_b_rows; gemm_bf16.h, kern_gemm_bf16_pack_b /
 * kern_gemm_bf16_packed) gives bit for bit what each slice's own kern_gemm gives:
 *  - the native bf16 kernel from packed panels against kern_gemm_bf16_avx512: the four
 *    transpose layouts, odd K, several K blocks (K > 768) and N blocks (N > 768), leading
 *    dimensions past the matrices, alpha/beta variants; the units packed in any order;
 *  - kern_gemm_b_rows over uneven row slices against one kern_gemm call, in float32 and in
 *    bf16 (where prepare packs), and when prepare cannot get its buffer (the slices pack);
 *  - the linear layer under bf16 on 1, 2 and 3 threads: forward, d input, d weight and d bias
 *    identical, and the weight gradient equal to one whole-matrix kern_gemm_bf16 (the split
 *    over threads and the shared panels change no bit).
 * Bit-for-bit comparisons are within this one process and binary. On a CPU without
 * AVX512_BF16 the bf16 checks print "SKIP" and the float32 ones run. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "grad_check.h"
#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "kernels/kernels.h"
#include "util/util.h"

static mpsl_rng rng;

static float *frand(int64_t n)
{
    float *p = test_floats(n);
    fill_uniform(&rng, p, n, -1, 1);
    return p;
}

static int same_bits(const float *a, const float *b, int64_t n)
{
    return memcmp(a, b, (size_t)n * sizeof(float)) == 0;
}

/* The native kernel from packed panels (units packed back to front in two calls) against
 * the kernel that packs per call. */
static void packed_case(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, float beta,
                        int64_t pad)
{
    int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    float *A = frand((ta ? K : M) * lda), *B = frand((tb ? N : K) * ldb);
    float *C1 = frand(M * ldc), *C2 = test_floats(M * ldc);
    memcpy(C2, C1, (size_t)(M * ldc) * sizeof(float));
    uint32_t *panels = kern_alloc(kern_gemm_bf16_packed_b_bytes(K, N));
    CHECK(panels != NULL);
    int64_t units = kern_gemm_bf16_pack_b_units(K, N), half = units / 2;
    kern_gemm_bf16_pack_b(panels, tb, K, N, B, ldb, half, units);
    kern_gemm_bf16_pack_b(panels, tb, K, N, B, ldb, 0, half);
    kern_gemm_bf16_avx512(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C1, ldc);
    CHECK(kern_gemm_bf16_packed(ta, M, N, K, alpha, A, lda, panels, beta, C2, ldc) == 0);
    if (!same_bits(C1, C2, M * ldc)) {
        fprintf(stderr, "packed != per-call: ta %d tb %d M %ld N %ld K %ld\n", ta, tb, (long)M,
                (long)N, (long)K);
        CHECK(0);
    }
    free(A), free(B), free(C1), free(C2), free(panels);
}

static void test_packed(void)
{
    static const int64_t sizes[][3] = {{1, 1, 1},     {13, 31, 7},   {12, 32, 2},  {97, 65, 191},
                                       {25, 800, 33}, {40, 96, 1537}, {30, 70, 769}, {5, 1600, 9}};
    int cases = 0;
    for (int ta = 0; ta < 2; ta++) {
        for (int tb = 0; tb < 2; tb++) {
            for (size_t s = 0; s < MPSL_COUNT(sizes); s++) {
                packed_case(ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], 1.0f, 0.0f, 0);
                packed_case(ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], 0.5f, 1.0f, 3);
                packed_case(ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], 1.5f, -0.25f, 1);
                cases += 3;
            }
        }
    }
    // K <= 0 or alpha == 0: declined, C untouched (the caller runs kern_gemm_bf16 with B)
    float a = 1.0f, c = 7.0f;
    uint32_t w = 0;
    CHECK(kern_gemm_bf16_packed(0, 1, 1, 0, 1.0f, &a, 1, &w, 0.0f, &c, 1) == -1 && c == 7.0f);
    CHECK(kern_gemm_bf16_packed(0, 1, 1, 1, 0.0f, &a, 1, &w, 0.0f, &c, 1) == -1 && c == 7.0f);
    fprintf(stderr, "  packed panels: %d cases bit for bit\n", cases);
}

/* kern_gemm_b_rows over slices [0, 5), [5, 29), [29, M) against one kern_gemm. */
static void rows_case(int ta, int tb, int64_t M, int64_t N, int64_t K)
{
    int64_t lda = ta ? M : K, ldb = tb ? K : N;
    float *A = frand((ta ? K : M) * lda), *B = frand((tb ? N : K) * ldb);
    float *C1 = frand(M * N), *C2 = test_floats(M * N);
    memcpy(C2, C1, (size_t)(M * N) * sizeof(float));
    kern_gemm(ta, tb, M, N, K, 0.75f, A, lda, B, ldb, 1.0f, C1, N);
    kern_gemm_b g;
    kern_gemm_b_prepare(&g, tb, K, N, B, ldb);
    CHECK((g.packed != NULL) == (kern_precision_bf16() && !kern_alloc_failures()));
    const int64_t cut[] = {0, 5, 29, M};
    for (int s = 0; s < 3; s++) {
        int64_t r0 = cut[s], r1 = cut[s + 1];
        kern_gemm_b_rows(&g, ta, r1 - r0, 0.75f, ta ? A + r0 : A + r0 * lda, lda, 1.0f,
                         C2 + r0 * N, N);
    }
    CHECK(same_bits(C1, C2, M * N));
    free(A), free(B), free(C1), free(C2);
}

static void test_rows(const char *what)
{
    for (int ta = 0; ta < 2; ta++) {
        for (int tb = 0; tb < 2; tb++) {
            rows_case(ta, tb, 61, 100, 900);
            rows_case(ta, tb, 40, 33, 17);
        }
    }
    fprintf(stderr, "  row slices with a shared op(B), %s: 8 cases bit for bit\n", what);
}

typedef struct {
    float *out, *dinp, *dw, *db;
} linear_result;

static linear_result linear_run(int threads, const float *inp, const float *w, const float *b,
                                const float *dout, int64_t N, int64_t IC, int64_t OC)
{
    kern_set_threads(threads);
    linear_result r = {test_floats(N * OC), test_floats(N * IC), test_floats(OC * IC), test_floats(OC)};
    memset(r.dw, 0, (size_t)(OC * IC) * sizeof(float));
    memset(r.db, 0, (size_t)OC * sizeof(float));
    kern_linear_forward(r.out, inp, w, b, N, IC, OC);
    kern_linear_backward(r.dinp, r.dw, r.db, dout, inp, w, N, IC, OC);
    kern_set_threads(0);
    return r;
}

static void test_linear_threads(void)
{
    // ViT-Ti's qkv and fc2 widths on 400 tokens: rows split (OC >= IC) and the wide input
    static const int64_t shapes[][2] = {{192, 576}, {768, 192}};
    for (size_t s = 0; s < MPSL_COUNT(shapes); s++) {
        int64_t N = 400, IC = shapes[s][0], OC = shapes[s][1];
        float *inp = frand(N * IC), *w = frand(OC * IC), *b = frand(OC), *dout = frand(N * OC);
        linear_result one = linear_run(1, inp, w, b, dout, N, IC, OC);
        for (int t = 2; t <= 3; t++) {
            linear_result r = linear_run(t, inp, w, b, dout, N, IC, OC);
            CHECK(same_bits(one.out, r.out, N * OC));
            CHECK(same_bits(one.dinp, r.dinp, N * IC));
            CHECK(same_bits(one.dw, r.dw, OC * IC));
            CHECK(same_bits(one.db, r.db, OC));
            free(r.out), free(r.dinp), free(r.dw), free(r.db);
        }
        float *dw = test_floats(OC * IC);
        memset(dw, 0, (size_t)(OC * IC) * sizeof(float));
        kern_gemm_bf16(1, 0, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dw, IC);
        CHECK(same_bits(one.dw, dw, OC * IC));
        free(dw), free(one.out), free(one.dinp), free(one.dw), free(one.db);
        free(inp), free(w), free(b), free(dout);
    }
    fprintf(stderr, "  bf16 linear layer on 1, 2 and 3 threads: bit for bit\n");
}

int main(void)
{
    mpsl_rng_seed(&rng, 4242);
    fprintf(stderr, "float32:\n");
    test_rows("float32");
    if (!kern_gemm_bf16_supported()) {
        fprintf(stderr, "SKIP bf16: %s\n",
                kern_gemm_bf16_cpu_has() ? "MPSL_GEMM_BF16=portable" : "CPU lacks avx512_bf16");
        return check_exit();
    }
    fprintf(stderr, "bf16:\n");
    test_packed();
    CHECK(kern_set_precision_bf16(1) == 1);
    test_rows("bf16");
    float *big = frand(2048 * 1024);   // more than any earlier prepare: the buffer must grow
    kern_test_fail_alloc(1);           // and cannot: every slice packs op(B) itself
    kern_gemm_b g;
    kern_gemm_b_prepare(&g, 0, 2048, 1024, big, 1024);
    CHECK(g.packed == NULL && g.B == big);
    kern_test_fail_alloc(0);
    free(big);
    test_linear_threads();
    kern_set_precision_bf16(0);
    return check_exit();
}
