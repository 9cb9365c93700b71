/* test_kernel_errors.c: kernels that cannot do their work (kernels.h, KERNEL ERRORS) neither
 * crash nor write out of bounds nor skip quietly, in debug and release builds alike:
 * - an embedding id or a cross-entropy label out of range: NaN where it could not compute,
 *   nothing written outside the buffers (guard zones around them), the error recorded;
 * - scratch memory that cannot be allocated (kern_test_fail_alloc): attention's backward and
 *   the AVX-512 GEMM fall back to paths that need none and give the same numbers, the
 *   contrastive loss fails with NaN and the error recorded; the references need no scratch
 *   where they can do without (attention).
 * Run under scripts/test.sh --sanitize, AddressSanitizer also catches any read out of
 * bounds. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "grad_check.h"
#include "kernels/gemm.h"
#include "kernels/kernels.h"
#include "util/util.h"

static mpsl_rng rng;

static float *frand(int64_t n, float lo, float hi)
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!p) {
        abort();
    }
    fill_uniform(&rng, p, n, lo, hi);
    return p;
}

static int all_nan(const float *x, int64_t n)
{
    int ok = 1;
    for (int64_t i = 0; i < n; i++) {
        ok &= isnan(x[i]) != 0;
    }
    return ok;
}

static int all_finite(const float *x, int64_t n)
{
    int ok = 1;
    for (int64_t i = 0; i < n; i++) {
        ok &= isfinite(x[i]) != 0;
    }
    return ok;
}

/* The recorded kernel error must be `status` with `needle` in its message; it is cleared. */
#define CHECK_KERNEL_ERROR(status, needle)                                               \
    do {                                                                                 \
        char msg_[256];                                                                  \
        int st_ = kern_error_take(msg_, sizeof msg_);                                    \
        CHECK(st_ == (status));                                                          \
        CHECK_CONTAINS(msg_, needle);                                                    \
    } while (0)

/* ------------------------------------------------------------------ guarded buffers */

/* n floats with G guard floats either side, all filled with a pattern; g_ok says whether the
 * guards still hold it. */
enum { G = 64 };
#define GUARD_VALUE 12345.0f

static float *guarded(int64_t n, float **base)
{
    float *b = malloc((size_t)(n + 2 * G) * sizeof(float));
    if (!b) {
        abort();
    }
    for (int64_t i = 0; i < n + 2 * G; i++) {
        b[i] = GUARD_VALUE;
    }
    *base = b;
    return b + G;
}

static int g_ok(const float *base, int64_t n)
{
    int ok = 1;
    for (int64_t i = 0; i < G; i++) {
        ok &= base[i] == GUARD_VALUE && base[G + n + i] == GUARD_VALUE;
    }
    return ok;
}

/* ------------------------------------------------------------------ error record */

static void test_error_record(void)
{
    CHECK(kern_error_take(NULL, 0) == MPSL_OK);
    kern_error(MPSL_ERR_INVALID, "first %d", 1);
    kern_error(MPSL_ERR_NOMEM, "second");
    char msg[64];
    CHECK(kern_error_take(msg, sizeof msg) == MPSL_ERR_INVALID);
    CHECK(strcmp(msg, "first 1") == 0);
    CHECK(kern_error_take(msg, sizeof msg) == MPSL_OK && msg[0] == '\0');
}

/* ------------------------------------------------------------------ embedding */

static void test_embedding_bad_ids(void)
{
    const int64_t V = 5, D = 37, N = 6;
    // rows 1, 2 and 5 point outside the table, on both sides and far
    const int32_t ids[6] = {0, 5, -1, 4, 2, 2147483647};
    float *tb_base, *out_base, *dt_base, *dr_base;
    float *table = guarded(V * D, &tb_base), *out = guarded(N * D, &out_base);
    fill_uniform(&rng, table, V * D, -1, 1);
    fill_uniform(&rng, out, N * D, -1, 1);
    kern_embedding_forward(out, ids, table, N, V, D);
    CHECK(g_ok(out_base, N * D) && g_ok(tb_base, V * D));
    int rows_ok = 1;
    for (int64_t n = 0; n < N; n++) {
        int bad = ids[n] < 0 || ids[n] >= V;
        rows_ok &= bad ? all_nan(out + n * D, D)
                       : memcmp(out + n * D, table + ids[n] * D, (size_t)D * sizeof(float)) == 0;
    }
    CHECK(rows_ok);
    // one of the bad rows is named (the threads may meet them in any order)
    CHECK_KERNEL_ERROR(MPSL_ERR_INVALID, "embedding_forward: id ");
    CHECK_KERNEL_ERROR(MPSL_OK, "");

    // backward: the valid rows' gradients land, nothing is written for the others
    float *dout = frand(N * D, -1, 1);
    float *dt = guarded(V * D, &dt_base), *dr = guarded(V * D, &dr_base);
    memset(dt, 0, (size_t)(V * D) * sizeof(float));
    memset(dr, 0, (size_t)(V * D) * sizeof(float));
    for (int fast = 1; fast >= 0; fast--) {
        float *g = fast ? dt : dr;
        if (fast) {
            kern_embedding_backward(g, dout, ids, N, V, D);
        } else {
            kern_embedding_backward_ref(g, dout, ids, N, V, D);
        }
        CHECK(g_ok(fast ? dt_base : dr_base, V * D));
        int ok = 1;
        for (int64_t v = 0; v < V; v++) {
            for (int64_t d = 0; d < D; d++) {
                float want = 0.0f;
                for (int64_t n = 0; n < N; n++) {
                    want += ids[n] == v ? dout[n * D + d] : 0.0f;
                }
                ok &= g[v * D + d] == want;
            }
        }
        CHECK(ok);
        CHECK_KERNEL_ERROR(MPSL_ERR_INVALID, fast ? "embedding_backward: id "
                                                  : "embedding_backward_ref: id 5 at row 1 is "
                                                    "outside the vocabulary 0..4");
    }
    // valid ids record nothing
    const int32_t good[3] = {4, 0, 4};
    kern_embedding_forward(out, good, table, 3, V, D);
    kern_embedding_backward(dt, dout, good, 3, V, D);
    CHECK(kern_error_take(NULL, 0) == MPSL_OK);
    free(tb_base), free(out_base), free(dt_base), free(dr_base), free(dout);
}

/* ------------------------------------------------------------------ cross-entropy */

static void test_cross_entropy_bad_label(void)
{
    const int64_t B = 4, C = 3;
    float *lg_base, *dl_base;
    float *logits = guarded(B * C, &lg_base), *dl = guarded(B * C, &dl_base);
    fill_uniform(&rng, logits, B * C, -2, 2);
    const int32_t labels[4] = {1, 3, -1, 0};
    int64_t correct = -1;
    double loss = kern_cross_entropy(dl, logits, labels, B, C, 1.0f, &correct);
    CHECK(isnan(loss));
    CHECK(g_ok(dl_base, B * C));
    CHECK(all_finite(dl, C) && all_nan(dl + C, 2 * C) && all_finite(dl + 3 * C, C));
    CHECK(correct >= 0 && correct <= 2);
    CHECK_KERNEL_ERROR(MPSL_ERR_INVALID, "cross_entropy: sample 1 has label 3, outside 0..2");
    CHECK(kern_error_take(NULL, 0) == MPSL_OK);   // sample 2's error did not replace it
    // valid labels: a finite loss, nothing recorded
    const int32_t ok_labels[4] = {1, 2, 0, 0};
    CHECK(isfinite(kern_cross_entropy(dl, logits, ok_labels, B, C, 1.0f, NULL)));
    CHECK(kern_error_take(NULL, 0) == MPSL_OK);
    free(lg_base), free(dl_base);
}

/* ------------------------------------------------------------------ attention */

static void test_attention_without_scratch(void)
{
    const struct {
        int64_t B, T, D, H;
    } cases[] = {{2, 37, 24, 3}, {1, 5, 8, 1}, {3, 64, 64, 4}};
    for (size_t k = 0; k < MPSL_COUNT(cases); k++) {
        int64_t B = cases[k].B, T = cases[k].T, D = cases[k].D, H = cases[k].H;
        int64_t nq = B * T * 3 * D, no = B * T * D, na = B * H * T * T;
        float *qkv = frand(nq, -2, 2), *out = frand(no, -1, 1), *att = frand(na, -1, 1);
        float *dout = frand(no, -1, 1), *want = frand(nq, -9, 9), *ref = frand(nq, -9, 9);
        float *got = frand(nq, -9, 9);
        kern_attention_forward(out, att, qkv, B, T, D, H);
        kern_attention_backward(want, dout, qkv, att, B, T, D, H);   // with scratch
        for (int threads = 1; threads <= 2; threads++) {
            kern_set_threads(threads);
            long failed = kern_alloc_failures();
            kern_test_fail_alloc(1);
            fill_uniform(&rng, got, nq, -9, 9);   // must be overwritten
            kern_attention_backward(got, dout, qkv, att, B, T, D, H);
            kern_attention_backward_ref(ref, dout, qkv, att, B, T, D, H);
            kern_test_fail_alloc(0);
            CHECK(kern_alloc_failures() > failed);   // the fallback did run
            CHECK(kern_error_take(NULL, 0) == MPSL_OK);   // and it is no error
            CHECK_ARRAYS("attention backward without scratch", got, want, nq, 1e-4, 1e-5);
            CHECK_ARRAYS("attention backward reference without scratch", ref, want, nq, 1e-4,
                         1e-5);
        }
        kern_set_threads(0);
        free(qkv), free(out), free(att), free(dout), free(want), free(ref), free(got);
    }
}

/* ------------------------------------------------------------------ contrastive */

static void test_contrastive_without_scratch(void)
{
    const int64_t B = 9, E = 5;
    float *img = frand(B * E, -1, 1), *txt = frand(B * E, -1, 1);
    float *di = frand(B * E, -1, 1), *dt = frand(B * E, -1, 1);
    for (int ref = 0; ref < 2; ref++) {
        for (int grads = 0; grads < 2; grads++) {
            kern_test_fail_alloc(1);
            double loss = ref ? kern_contrastive_loss_ref(grads ? di : NULL, grads ? dt : NULL,
                                                          img, txt, B, E, 1.0f)
                              : kern_contrastive_loss(grads ? di : NULL, grads ? dt : NULL, img,
                                                      txt, B, E, 1.0f);
            kern_test_fail_alloc(0);
            CHECK(isnan(loss));
            if (grads) {
                CHECK(all_nan(di, B * E) && all_nan(dt, B * E));
            }
            CHECK_KERNEL_ERROR(MPSL_ERR_NOMEM, ref ? "contrastive_loss_ref: out of memory for "
                                                     "the 9 x 9 similarity matrix"
                                                   : "contrastive_loss: out of memory for the "
                                                     "9 x 9 similarity matrix");
        }
    }
    // with memory again: finite, nothing recorded
    CHECK(isfinite(kern_contrastive_loss(di, dt, img, txt, B, E, 1.0f)));
    CHECK(all_finite(di, B * E) && all_finite(dt, B * E));
    CHECK(kern_error_take(NULL, 0) == MPSL_OK);
    free(img), free(txt), free(di), free(dt);
}

/* ------------------------------------------------------------------ AVX-512 GEMM */

typedef struct {
    int transA, transB;
    int64_t M, N, K;
    const float *A, *B;
    float *C;
    long failures_before, failures_after;
} gemm_job;

static void *gemm_thread(void *p)
{
    gemm_job *j = p;
    // a new thread has no packing buffers yet: the GEMM must allocate them, and cannot
    j->failures_before = kern_alloc_failures();
    kern_test_fail_alloc(1);
    kern_sgemm_avx512(j->transA, j->transB, j->M, j->N, j->K, 0.5f, j->A,
                      j->transA ? j->M : j->K, j->B, j->transB ? j->K : j->N, 2.0f, j->C, j->N);
    kern_test_fail_alloc(0);
    j->failures_after = kern_alloc_failures();
    return NULL;
}

/* C = 0.5 op(A) op(B) + 2 C in double, to compare with. */
static void gemm_want(const gemm_job *j, const float *C0, float *want)
{
    for (int64_t i = 0; i < j->M; i++) {
        for (int64_t n = 0; n < j->N; n++) {
            double s = 0.0;
            for (int64_t k = 0; k < j->K; k++) {
                double a = j->transA ? j->A[k * j->M + i] : j->A[i * j->K + k];
                double b = j->transB ? j->B[n * j->K + k] : j->B[k * j->N + n];
                s += a * b;
            }
            want[i * j->N + n] = (float)(0.5 * s + 2.0 * C0[i * j->N + n]);
        }
    }
}

static void test_gemm_without_scratch(void)
{
    if (!kern_sgemm_avx512_supported()) {
        fprintf(stderr, "note: no AVX-512F on this CPU: the AVX-512 GEMM's fallback is not "
                        "exercised\n");
        return;
    }
    for (int t = 0; t < 4; t++) {
        // K past one KC block (256) and N past one NC block (768): every loop runs
        gemm_job j = {t & 1, t >> 1, 29, 800, 300, NULL, NULL, NULL, 0, 0};
        float *A = frand(j.M * j.K, -1, 1), *B = frand(j.K * j.N, -1, 1);
        float *C = frand(j.M * j.N, -1, 1), *C0 = malloc((size_t)(j.M * j.N) * sizeof(float));
        float *want = malloc((size_t)(j.M * j.N) * sizeof(float));
        memcpy(C0, C, (size_t)(j.M * j.N) * sizeof(float));
        j.A = A, j.B = B, j.C = C;
        gemm_want(&j, C0, want);
        pthread_t th;
        CHECK(pthread_create(&th, NULL, gemm_thread, &j) == 0);
        pthread_join(th, NULL);
        CHECK(j.failures_after > j.failures_before);
        CHECK_ARRAYS("AVX-512 GEMM without packing buffers", C, want, j.M * j.N, 1e-5, 1e-5);
        free(A), free(B), free(C), free(C0), free(want);
    }
    // this thread: buffers that cannot grow are kept, and smaller calls still use them
    float a[4] = {1, 2, 3, 4}, b[4] = {1, 0, 0, 1}, c[4];
    kern_sgemm_avx512(0, 0, 2, 2, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2);   // allocates
    gemm_job big = {0, 0, 40, 900, 400, NULL, NULL, NULL, 0, 0};
    float *A = frand(big.M * big.K, -1, 1), *B = frand(big.K * big.N, -1, 1);
    float *C = frand(big.M * big.N, -1, 1), *C0 = malloc((size_t)(big.M * big.N) * sizeof(float));
    float *want = malloc((size_t)(big.M * big.N) * sizeof(float));
    memcpy(C0, C, (size_t)(big.M * big.N) * sizeof(float));
    big.A = A, big.B = B, big.C = C;
    gemm_want(&big, C0, want);
    gemm_thread(&big);   // on this thread: the buffers must grow, and cannot
    CHECK(big.failures_after > big.failures_before);
    CHECK_ARRAYS("AVX-512 GEMM whose buffers cannot grow", C, want, big.M * big.N, 1e-5, 1e-5);
    kern_test_fail_alloc(1);
    kern_sgemm_avx512(0, 0, 2, 2, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2);
    kern_test_fail_alloc(0);
    CHECK(c[0] == 1 && c[1] == 2 && c[2] == 3 && c[3] == 4);
    free(A), free(B), free(C), free(C0), free(want);
}

int main(void)
{
    mpsl_rng_seed(&rng, 97);
    test_error_record();
    test_embedding_bad_ids();
    test_cross_entropy_bad_label();
    test_attention_without_scratch();
    test_contrastive_without_scratch();
    test_gemm_without_scratch();
    return check_exit();
}
