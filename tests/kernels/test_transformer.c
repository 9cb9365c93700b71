/* test_transformer.c: the transformer kernels (layernorm, gelu, attention, add, bias_add,
 * strided patches, embedding, token_select, contrastive loss) and the kernel thread pool.
 * Each kernel is checked against its reference at awkward sizes, each backward against
 * central finite differences of the scalar loss sum(out * R) (in double), accumulation and
 * NULL-gradient semantics, hand-computed cases, independence from the thread count, and the
 * FLOP counts documented in kernels.h. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "grad_check.h"
#include "kernels/flops.h"
#include "kernels/kernels.h"
#include "util/util.h"

static mpsl_rng rng;

/* Central differences like CHECK_FD, on every entry when n <= 300, else on 300 entries drawn
 * at random (a fixed stride could keep hitting the same head or channel). Keeps the test
 * quick, also under valgrind. */
static int check_fd_some_(const char *file, int line, const char *what, loss_fn loss,
                          void *ctx, float *x, const float *g, int64_t n, float eps,
                          double rtol, double atol)
{
    const int64_t probes = 300;
    check_count++;
    for (int64_t p = 0; p < (n <= probes ? n : probes); p++) {
        int64_t i = n <= probes ? p : (int64_t)(mpsl_rng_u64(&rng) % (uint64_t)n);
        float keep = x[i];
        x[i] = keep + eps;
        double lp = loss(ctx);
        x[i] = keep - eps;
        double lm = loss(ctx);
        x[i] = keep;
        double fd = (lp - lm) / ((double)(keep + eps) - (double)(keep - eps));
        if (!close_enough(g[i], fd, rtol, atol)) {
            check_failures++;
            fprintf(stderr, "%s:%d: d loss / d %s[%lld] = %.7g, finite difference %.7g\n",
                    file, line, what, (long long)i, (double)g[i], fd);
            return 0;
        }
    }
    return 1;
}
#define CHECK_FD_SOME(what, loss, ctx, x, g, n, eps, rtol, atol) \
    check_fd_some_(__FILE__, __LINE__, what, loss, ctx, x, g, n, eps, rtol, atol)

static float *fnew(int64_t n)
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!p) {
        abort();
    }
    return p;
}

static float *fdup(const float *x, int64_t n)
{
    float *p = fnew(n);
    memcpy(p, x, (size_t)n * sizeof(float));
    return p;
}

static float *frand(int64_t n, float lo, float hi)
{
    float *p = fnew(n);
    fill_uniform(&rng, p, n, lo, hi);
    return p;
}

static double dot(const float *a, const float *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        s += (double)a[i] * (double)b[i];
    }
    return s;
}

/* Largest |a-b| / (|b| + rms(b)) over n values: how far two runs of a kernel differ,
 * relative to each value and, for values near zero, to the array's typical size. */
static double max_rel_diff(const float *a, const float *b, int64_t n)
{
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) {
        ss += (double)b[i] * (double)b[i];
    }
    double rms = sqrt(ss / (double)(n > 0 ? n : 1)), m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / (fabs((double)b[i]) + rms + 1e-30);
        m = d > m || isnan(d) ? d : m;
    }
    return m;
}

/* ------------------------------------------------------------------ thread pool */

typedef struct {
    atomic_int *hits;
    int64_t last_end[64];
    int bad;
} pf_ctx;

static void pf_mark(void *p, int64_t begin, int64_t end, int part)
{
    pf_ctx *c = p;
    if (part < 0 || part >= 64 || begin >= end) {
        c->bad = 1;
        return;
    }
    c->last_end[part] = end;
    for (int64_t i = begin; i < end; i++) {
        atomic_fetch_add(&c->hits[i], 1);
    }
}

static void test_parallel_for(void)
{
    const int64_t sizes[] = {1, 2, 3, 7, 64, 1000, 100001};
    const int64_t grains[] = {1, 3, 1000};
    for (int threads = 1; threads <= 5; threads++) {
        kern_set_threads(threads);
        CHECK(kern_threads() == threads);
        for (size_t s = 0; s < MPSL_COUNT(sizes); s++) {
            for (size_t g = 0; g < MPSL_COUNT(grains); g++) {
                int64_t n = sizes[s];
                pf_ctx c = {calloc((size_t)n, sizeof(atomic_int)), {0}, 0};
                kern_parallel_for(n, grains[g], pf_mark, &c);
                int once = 1;
                for (int64_t i = 0; i < n; i++) {
                    once &= atomic_load(&c.hits[i]) == 1;
                }
                CHECK(once && !c.bad);
                free(c.hits);
            }
        }
    }
    // n = 0 calls nothing
    pf_ctx c = {NULL, {0}, 0};
    kern_parallel_for(0, 1, pf_mark, &c);
    CHECK(!c.bad);
    // MPSL_THREADS sets the default; kern_set_threads(0) restores the default
    setenv("MPSL_THREADS", "3", 1);
    kern_set_threads(0);
    CHECK(kern_threads() == 3);
    unsetenv("MPSL_THREADS");
    kern_set_threads(0);
    CHECK(kern_threads() >= 1);
}

/* ------------------------------------------------------------------ layernorm */

typedef struct {
    int64_t N, C;
    float *inp, *w, *b, *out, *mean, *rstd, *R;
} ln_fd;

static double ln_loss(void *ctx)
{
    ln_fd *c = ctx;
    kern_layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C, 1e-5f);
    return dot(c->out, c->R, c->N * c->C);
}

static void test_layernorm(void)
{
    const struct {
        int64_t N, C;
    } cases[] = {{1, 1}, {1, 2}, {3, 17}, {17, 64}, {5, 192}, {33, 7}, {70, 130}, {3, 768}};
    for (size_t k = 0; k < MPSL_COUNT(cases); k++) {
        int64_t N = cases[k].N, C = cases[k].C;
        ln_fd c = {N, C, frand(N * C, -2, 3), frand(C, 0.5f, 1.5f), frand(C, -1, 1),
                   frand(N * C, -9, 9), fnew(N), fnew(N), frand(N * C, -1, 1)};
        float *out_ref = fnew(N * C), *mean_ref = fnew(N), *rstd_ref = fnew(N);
        double f[2] = {0, 0};
        flops_set_target(f);
        kern_layernorm_forward(c.out, c.mean, c.rstd, c.inp, c.w, c.b, N, C, 1e-5f);
        CHECK(f[MPSL_PASS_FORWARD] == 7.0 * (double)(N * C) && f[MPSL_PASS_BACKWARD] == 0);
        kern_layernorm_forward_ref(out_ref, mean_ref, rstd_ref, c.inp, c.w, c.b, N, C, 1e-5f);
        CHECK(f[MPSL_PASS_FORWARD] == 14.0 * (double)(N * C));
        CHECK_ARRAYS("layernorm out", c.out, out_ref, N * C, 1e-5, 2e-6);
        CHECK_ARRAYS("layernorm mean", c.mean, mean_ref, N, 1e-5, 1e-6);
        CHECK_ARRAYS("layernorm rstd", c.rstd, rstd_ref, N, 1e-5, 1e-6);

        // backward: every mask of present gradients; dw, db accumulate onto non-zero values
        for (int mask = 0; mask < 8; mask++) {
            float *dinp = frand(N * C, -9, 9), *dw = frand(C, -1, 1), *db = frand(C, -1, 1);
            float *dinp_r = fdup(dinp, N * C), *dw_r = fdup(dw, C), *db_r = fdup(db, C);
            float *dinp0 = fdup(dinp, N * C), *dw0 = fdup(dw, C), *db0 = fdup(db, C);
            f[0] = f[1] = 0;
            kern_layernorm_backward(mask & 1 ? dinp : NULL, mask & 2 ? dw : NULL,
                                    mask & 4 ? db : NULL, c.R, c.inp, c.w, c.mean, c.rstd, N, C);
            double want = (double)(N * C) * ((mask & 1 ? 10 : 0) + (mask & 2 ? 2 : 0) +
                                             (mask & 4 ? 1 : 0));
            CHECK(f[MPSL_PASS_BACKWARD] == want && f[MPSL_PASS_FORWARD] == 0);
            kern_layernorm_backward_ref(mask & 1 ? dinp_r : NULL, mask & 2 ? dw_r : NULL,
                                        mask & 4 ? db_r : NULL, c.R, c.inp, c.w, c.mean,
                                        c.rstd, N, C);
            CHECK(f[MPSL_PASS_BACKWARD] == 2 * want);
            // C = 1 has zero variance: rstd = 1/sqrt(eps) ~ 316 amplifies the rounding of
            // the (fused) dout*w - mean(dout*w), which is exactly 0 in the double reference
            CHECK_ARRAYS("layernorm dinp", dinp, dinp_r, N * C, 1e-4, C == 1 ? 1e-4 : 1e-5);
            CHECK_ARRAYS("layernorm dw", dw, dw_r, C, 1e-5, 1e-5 * (double)N);
            CHECK_ARRAYS("layernorm db", db, db_r, C, 1e-5, 1e-5 * (double)N);
            if (!(mask & 1)) {
                CHECK(memcmp(dinp, dinp0, (size_t)(N * C) * sizeof(float)) == 0);
            }
            if (!(mask & 2)) {
                CHECK(memcmp(dw, dw0, (size_t)C * sizeof(float)) == 0);
            }
            if (!(mask & 4)) {
                CHECK(memcmp(db, db0, (size_t)C * sizeof(float)) == 0);
            }
            free(dinp), free(dw), free(db), free(dinp_r), free(dw_r), free(db_r);
            free(dinp0), free(dw0), free(db0);
        }
        flops_set_target(NULL);

        if (N * C <= 2000) {
            float *dinp = fnew(N * C), *dw = fnew(C), *db = fnew(C);
            kern_layernorm_backward(dinp, dw, db, c.R, c.inp, c.w, c.mean, c.rstd, N, C);
            CHECK_FD_SOME("layernorm inp", ln_loss, &c, c.inp, dinp, N * C, 1e-2f, 1e-2, 1e-3);
            CHECK_FD("layernorm w", ln_loss, &c, c.w, dw, C, 1e-2f, 1e-2, 1e-3);
            CHECK_FD("layernorm b", ln_loss, &c, c.b, db, C, 1e-2f, 1e-2, 1e-3);
            free(dinp), free(dw), free(db);
        }
        free(c.inp), free(c.w), free(c.b), free(c.out), free(c.mean), free(c.rstd), free(c.R);
        free(out_ref), free(mean_ref), free(rstd_ref);
    }

    // PyTorch semantics by hand: x = (1, 2, 3, 6): mean 3, biased variance 3.5
    float x[4] = {1, 2, 3, 6}, w[4] = {1, 1, 1, 2}, b[4] = {0, 0, 0, 1}, y[4], m, r;
    kern_layernorm_forward(y, &m, &r, x, w, b, 1, 4, 0.5f);
    double rs = 1.0 / sqrt(3.5 + 0.5);
    float want[4] = {(float)(-2 * rs), (float)(-1 * rs), 0.0f, (float)(3 * rs * 2 + 1)};
    CHECK_ARRAYS("layernorm by hand", y, want, 4, 1e-6, 1e-7);
    CHECK_CLOSE(m, 3.0, 1e-7);
    CHECK_CLOSE(r, rs, 1e-7);
}

/* ------------------------------------------------------------------ gelu */

typedef struct {
    int64_t N;
    float *inp, *out, *R;
} gelu_fd;

static double gelu_loss(void *ctx)
{
    gelu_fd *c = ctx;
    kern_gelu_forward(c->out, c->inp, c->N);
    return dot(c->out, c->R, c->N);
}

static void test_gelu(void)
{
    const int64_t sizes[] = {1, 7, 8, 9, 17, 1000, 100003};
    for (size_t k = 0; k < MPSL_COUNT(sizes); k++) {
        int64_t N = sizes[k];
        gelu_fd c = {N, frand(N, -6, 6), fnew(N), frand(N, -1, 1)};
        float *ref = fnew(N), *d = fnew(N), *dref = fnew(N);
        double f[2] = {0, 0};
        flops_set_target(f);
        kern_gelu_forward(c.out, c.inp, N);
        kern_gelu_forward_ref(ref, c.inp, N);
        kern_gelu_backward(d, c.R, c.inp, N);
        kern_gelu_backward_ref(dref, c.R, c.inp, N);
        CHECK(f[MPSL_PASS_FORWARD] == 16.0 * (double)N && f[MPSL_PASS_BACKWARD] == 22.0 * N);
        flops_set_target(NULL);
        // the fast erf is PyTorch's approximation: absolute error ~2e-7 in Phi
        CHECK_ARRAYS("gelu forward", c.out, ref, N, 1e-6, 1e-6);
        CHECK_ARRAYS("gelu backward", d, dref, N, 1e-6, 2e-6);
        if (N <= 1000) {
            CHECK_FD_SOME("gelu inp", gelu_loss, &c, c.inp, d, N, 1e-2f, 1e-2, 1e-3);
        }
        // in place: out == inp, dinp == dout (c.out recomputed: the FD left it perturbed)
        kern_gelu_forward(c.out, c.inp, N);
        float *x = fdup(c.inp, N), *g = fdup(c.R, N);
        kern_gelu_backward(g, g, c.inp, N);
        kern_gelu_forward(x, x, N);
        CHECK_ARRAYS("gelu in place", x, c.out, N, 0, 0);
        CHECK_ARRAYS("gelu backward in place", g, d, N, 0, 0);
        free(c.inp), free(c.out), free(c.R), free(ref), free(d), free(dref), free(x), free(g);
    }
    // known values (torch.nn.GELU()(x) in float64, rounded)
    float x[7] = {0.0f, 1.0f, -1.0f, 3.0f, -3.0f, 10.0f, -10.0f};
    const float want[7] = {0.0f, 0.8413447460685429f, -0.15865525393145707f, 2.995950049964141f,
                           -0.004049950035859f, 10.0f, 0.0f};
    float y[7];
    kern_gelu_forward(y, x, 7);
    CHECK_ARRAYS("gelu values", y, want, 7, 1e-6, 2e-7);
    // NaN propagates
    float nan_in = NAN, nan_out = 0.0f;
    kern_gelu_forward(&nan_out, &nan_in, 1);
    CHECK(isnan(nan_out));
}

/* ------------------------------------------------------------------ attention */

typedef struct {
    int64_t B, T, D, H;
    float *qkv, *out, *att, *R;
} att_fd;

static double att_loss(void *ctx)
{
    att_fd *c = ctx;
    kern_attention_forward(c->out, c->att, c->qkv, c->B, c->T, c->D, c->H);
    return dot(c->out, c->R, c->B * c->T * c->D);
}

static const struct {
    int64_t B, T, D, H;
} att_cases[] = {{1, 1, 4, 1}, {2, 1, 12, 3}, {2, 17, 64, 4}, {1, 197, 192, 3}, {2, 5, 12, 3},
                 {3, 33, 12, 3}, {2, 50, 128, 4}, {1, 9, 8, 8}, {2, 33, 64, 4}};

static void test_attention(void)
{
    for (size_t k = 0; k < MPSL_COUNT(att_cases); k++) {
        int64_t B = att_cases[k].B, T = att_cases[k].T, D = att_cases[k].D, H = att_cases[k].H;
        int64_t nq = B * T * 3 * D, no = B * T * D, na = B * H * T * T;
        att_fd c = {B, T, D, H, frand(nq, -2, 2), frand(no, -9, 9), frand(na, -9, 9),
                    frand(no, -1, 1)};
        float *out_r = fnew(no), *att_r = fnew(na), *dqkv = frand(nq, -9, 9), *dqkv_r = fnew(nq);
        double f[2] = {0, 0};
        flops_set_target(f);
        kern_attention_forward(c.out, c.att, c.qkv, B, T, D, H);
        double scores = (double)(B * H * T * T);
        double fwd = 4.0 * scores * (double)(D / H) + 5.0 * scores;
        double bwd = 8.0 * scores * (double)(D / H) + 4.0 * scores;
        CHECK(f[MPSL_PASS_FORWARD] == fwd && f[MPSL_PASS_BACKWARD] == 0);
        kern_attention_forward_ref(out_r, att_r, c.qkv, B, T, D, H);
        CHECK(f[MPSL_PASS_FORWARD] == 2 * fwd);
        CHECK_ARRAYS("attention out", c.out, out_r, no, 1e-4, 1e-5);
        CHECK_ARRAYS("attention att", c.att, att_r, na, 1e-4, 1e-6);
        int rows_ok = 1;
        for (int64_t r = 0; r < B * H * T; r++) {
            double s = 0.0;
            for (int64_t j = 0; j < T; j++) {
                s += c.att[r * T + j];
            }
            rows_ok &= fabs(s - 1.0) < 1e-5;
        }
        CHECK(rows_ok);
        kern_attention_backward(dqkv, c.R, c.qkv, c.att, B, T, D, H);
        CHECK(f[MPSL_PASS_BACKWARD] == bwd);
        kern_attention_backward_ref(dqkv_r, c.R, c.qkv, att_r, B, T, D, H);
        CHECK(f[MPSL_PASS_BACKWARD] == 2 * bwd);
        CHECK_ARRAYS("attention dqkv", dqkv, dqkv_r, nq, 1e-4, 1e-5);
        // NULL dqkv: nothing done, nothing counted
        kern_attention_backward(NULL, c.R, c.qkv, c.att, B, T, D, H);
        CHECK(f[MPSL_PASS_BACKWARD] == 2 * bwd);
        flops_set_target(NULL);
        if (T <= 33) {
            CHECK_FD_SOME("attention qkv", att_loss, &c, c.qkv, dqkv, nq, 1e-2f, 1e-2, 1e-3);
        }
        free(c.qkv), free(c.out), free(c.att), free(c.R), free(out_r), free(att_r);
        free(dqkv), free(dqkv_r);
    }

    // layout by hand: B=1, T=2, D=2, H=2 (head width 1). Head 0 uses channel 0 of q, k, v;
    // head 1 channel 1. q.k scaled by 1/sqrt(1).
    float qkv[2 * 6] = {/* t0: q */ 1, 0, /* k */ 1, 0, /* v */ 10, 30,
                        /* t1: q */ 0, 2, /* k */ -1, 1, /* v */ 20, 40};
    float out[4], att[2 * 2 * 2];
    kern_attention_forward(out, att, qkv, 1, 2, 2, 2);
    // head 0: t0 scores (1*1, 1*-1) = (1,-1); t1 scores (0, 0)
    double p = 1.0 / (1.0 + exp(-2.0));
    // head 1: t0 scores (0*0, 0*1) = (0,0); t1 scores (2*0, 2*1) = (0, 2)
    double p1 = 1.0 / (1.0 + exp(2.0));
    float want_att[8] = {(float)p, (float)(1 - p), 0.5f, 0.5f, 0.5f, 0.5f, (float)p1,
                         (float)(1 - p1)};
    CHECK_ARRAYS("attention probabilities by hand", att, want_att, 8, 1e-6, 1e-7);
    float want_out[4] = {(float)(10 * p + 20 * (1 - p)), 35.0f, 15.0f,
                         (float)(30 * p1 + 40 * (1 - p1))};
    CHECK_ARRAYS("attention out by hand", out, want_out, 4, 1e-6, 1e-5);

    // stability: huge scores give exact probabilities, no inf or NaN
    float big[1 * 2 * 3] = {100, 100, 100, 100, 10, 10};
    float o2[2], a2[4];
    kern_attention_forward(o2, a2, big, 1, 2, 1, 1);
    // t0: scores (100*100, 100*10) -> (1, 0); t1 the same
    float want2[4] = {1.0f, 0.0f, 1.0f, 0.0f};
    CHECK_ARRAYS("attention large scores", a2, want2, 4, 0, 0);
    float q3[1 * 2 * 3] = {100, 100, 0, 100, -100, 0};
    kern_attention_forward(o2, a2, q3, 1, 2, 1, 1);
    // t0: scores (10000, -10000) -> (1, 0)
    CHECK(a2[0] == 1.0f && a2[1] == 0.0f && isfinite(o2[0]));
}

/* ------------------------------------------------------------------ add, bias_add */

typedef struct {
    int64_t B, M;
    float *inp, *bias, *out, *R;
} bias_fd;

static double bias_loss(void *ctx)
{
    bias_fd *c = ctx;
    kern_bias_add_forward(c->out, c->inp, c->bias, c->B, c->M);
    return dot(c->out, c->R, c->B * c->M);
}

static void test_add(void)
{
    const int64_t sizes[] = {1, 7, 8, 17, 100003};
    for (size_t k = 0; k < MPSL_COUNT(sizes); k++) {
        int64_t N = sizes[k];
        float *a = frand(N, -1, 1), *b = frand(N, -1, 1), *out = frand(N, -9, 9);
        float *want = fnew(N);
        for (int64_t i = 0; i < N; i++) {
            want[i] = a[i] + b[i];
        }
        double f[2] = {0, 0};
        flops_set_target(f);
        kern_add(out, a, b, N);
        CHECK(f[MPSL_PASS_FORWARD] == (double)N && f[MPSL_PASS_BACKWARD] == 0);
        flops_set_target(NULL);
        CHECK_ARRAYS("add", out, want, N, 0, 0);
        float *a2 = fdup(a, N), *b2 = fdup(b, N);
        kern_add(a2, a2, b, N);   // out aliases a
        kern_add(b2, a, b2, N);   // out aliases b
        CHECK_ARRAYS("add alias a", a2, want, N, 0, 0);
        CHECK_ARRAYS("add alias b", b2, want, N, 0, 0);
        free(a), free(b), free(out), free(want), free(a2), free(b2);
    }
}

static void test_bias_add(void)
{
    const struct {
        int64_t B, M;
    } cases[] = {{1, 1}, {3, 17}, {16, 197 * 12}, {2, 9}, {65, 3}, {4, 40000}, {1000, 33}};
    for (size_t k = 0; k < MPSL_COUNT(cases); k++) {
        int64_t B = cases[k].B, M = cases[k].M;
        bias_fd c = {B, M, frand(B * M, -1, 1), frand(M, -1, 1), frand(B * M, -9, 9),
                     frand(B * M, -1, 1)};
        float *want = fnew(B * M);
        for (int64_t i = 0; i < B * M; i++) {
            want[i] = c.inp[i] + c.bias[i % M];
        }
        double f[2] = {0, 0};
        flops_set_target(f);
        kern_bias_add_forward(c.out, c.inp, c.bias, B, M);
        CHECK_ARRAYS("bias_add", c.out, want, B * M, 0, 0);
        float *x = fdup(c.inp, B * M);
        kern_bias_add_forward(x, x, c.bias, B, M);   // in place
        CHECK_ARRAYS("bias_add in place", x, want, B * M, 0, 0);
        // backward accumulates onto existing values
        float *db = frand(M, -1, 1), *db_want = fnew(M);
        for (int64_t m = 0; m < M; m++) {
            double s = db[m];
            for (int64_t b = 0; b < B; b++) {
                s += c.R[b * M + m];
            }
            db_want[m] = (float)s;
        }
        kern_bias_add_backward(db, c.R, B, M);
        kern_bias_add_backward(NULL, c.R, B, M);
        CHECK(f[MPSL_PASS_FORWARD] == 2.0 * (double)(B * M) &&
              f[MPSL_PASS_BACKWARD] == (double)(B * M));
        flops_set_target(NULL);
        CHECK_ARRAYS("bias_add backward", db, db_want, M, 1e-5, 1e-5 * (double)B);
        if (B * M <= 2000) {
            float *dbias = fnew(M);
            kern_bias_add_backward(dbias, c.R, B, M);
            CHECK_FD("bias_add bias", bias_loss, &c, c.bias, dbias, M, 1e-2f, 1e-3, 1e-4);
            free(dbias);
        }
        free(c.inp), free(c.bias), free(c.out), free(c.R), free(want), free(x), free(db);
        free(db_want);
    }
}

/* ------------------------------------------------------------------ strided patches */

static void test_patch_strided(void)
{
    const struct {
        int64_t B, Cin, H, W, Ph, Pw, Sh, Sw;
    } cases[] = {{1, 1, 128, 100, 16, 16, 10, 10}, {2, 3, 7, 9, 3, 2, 2, 3},
                 {1, 2, 5, 5, 5, 5, 1, 1},       {2, 1, 6, 6, 2, 2, 2, 2},
                 {1, 1, 17, 4, 4, 4, 3, 1},      {3, 2, 9, 11, 1, 1, 1, 1},
                 {1, 1, 8, 8, 3, 3, 4, 4}};
    for (size_t k = 0; k < MPSL_COUNT(cases); k++) {
        int64_t B = cases[k].B, Cin = cases[k].Cin, H = cases[k].H, W = cases[k].W;
        int64_t Ph = cases[k].Ph, Pw = cases[k].Pw, Sh = cases[k].Sh, Sw = cases[k].Sw;
        int64_t nP = ((H - Ph) / Sh + 1) * ((W - Pw) / Sw + 1), K = Cin * Ph * Pw;
        float *img = frand(B * Cin * H * W, -1, 1), *out = fnew(B * nP * K);
        float *ref = fnew(B * nP * K);
        double f[2] = {0, 0};
        flops_set_target(f);
        kern_patch_gather_strided(out, img, B, Cin, H, W, Ph, Pw, Sh, Sw);
        kern_patch_gather_strided_ref(ref, img, B, Cin, H, W, Ph, Pw, Sh, Sw);
        flops_set_target(NULL);
        CHECK(f[0] == 0 && f[1] == 0);
        CHECK_ARRAYS("patch_gather_strided", out, ref, B * nP * K, 0, 0);
        if (Ph == Pw && Sh == Ph && Sw == Pw && H % Ph == 0 && W % Pw == 0) {
            float *plain = fnew(B * nP * K);
            kern_patch_gather(plain, img, B, Cin, H, W, Ph);
            CHECK_ARRAYS("patch_gather_strided = patch_gather", out, plain, B * nP * K, 0, 0);
            free(plain);
        }
        free(img), free(out), free(ref);
    }
    // overlapping patches by hand: H=3, W=4, 2x2 patches, stride (1, 2): 2x2 grid
    float img[12], out[4 * 4];
    for (int i = 0; i < 12; i++) {
        img[i] = (float)(10 * (i / 4) + i % 4);   // 10*y + x
    }
    kern_patch_gather_strided(out, img, 1, 1, 3, 4, 2, 2, 1, 2);
    const float want[16] = {0, 1, 10, 11, 2, 3, 12, 13, 10, 11, 20, 21, 12, 13, 22, 23};
    CHECK_ARRAYS("patch_gather_strided by hand", out, want, 16, 0, 0);
}

/* ------------------------------------------------------------------ embedding */

typedef struct {
    int64_t N, V, D;
    int32_t *ids;
    float *table, *out, *R;
} emb_fd;

static double emb_loss(void *ctx)
{
    emb_fd *c = ctx;
    kern_embedding_forward(c->out, c->ids, c->table, c->N, c->V, c->D);
    return dot(c->out, c->R, c->N * c->D);
}

static void test_embedding(void)
{
    const struct {
        int64_t N, V, D;
    } cases[] = {{1, 1, 1}, {7, 3, 5}, {17, 10, 33}, {64 * 32, 1000, 128}, {5, 2, 200}};
    for (size_t k = 0; k < MPSL_COUNT(cases); k++) {
        int64_t N = cases[k].N, V = cases[k].V, D = cases[k].D;
        emb_fd c = {N, V, D, calloc((size_t)N, sizeof(int32_t)), frand(V * D, -1, 1),
                    frand(N * D, -9, 9), frand(N * D, -1, 1)};
        for (int64_t n = 0; n < N; n++) {
            // repeated ids: V is small next to N in most cases
            c.ids[n] = (int32_t)(mpsl_rng_u64(&rng) % (uint64_t)V);
        }
        double f[2] = {0, 0};
        flops_set_target(f);
        kern_embedding_forward(c.out, c.ids, c.table, N, V, D);
        int ok = 1;
        for (int64_t n = 0; n < N; n++) {
            ok &= memcmp(c.out + n * D, c.table + c.ids[n] * D, (size_t)D * sizeof(float)) == 0;
        }
        CHECK(ok);
        float *dt = frand(V * D, -1, 1), *dt_r = fdup(dt, V * D);
        kern_embedding_backward(dt, c.R, c.ids, N, V, D);
        kern_embedding_backward(NULL, c.R, c.ids, N, V, D);
        CHECK(f[MPSL_PASS_FORWARD] == 0 && f[MPSL_PASS_BACKWARD] == (double)(N * D));
        kern_embedding_backward_ref(dt_r, c.R, c.ids, N, V, D);
        CHECK(f[MPSL_PASS_BACKWARD] == 2.0 * (double)(N * D));
        flops_set_target(NULL);
        CHECK_ARRAYS("embedding backward", dt, dt_r, V * D, 0, 0);
        if (N * D <= 2000) {
            float *g = fnew(V * D);
            kern_embedding_backward(g, c.R, c.ids, N, V, D);
            CHECK_FD_SOME("embedding table", emb_loss, &c, c.table, g, V * D, 1e-2f, 1e-3, 1e-4);
            free(g);
        }
        free(c.ids), free(c.table), free(c.out), free(c.R), free(dt), free(dt_r);
    }
    // repeated id by hand: ids (1, 1, 0), D = 1 -> dtable = (d2, d0 + d1)
    int32_t ids[3] = {1, 1, 0};
    float dout[3] = {1, 2, 4}, dtable[2] = {100, 200};
    kern_embedding_backward(dtable, dout, ids, 3, 2, 1);
    CHECK(dtable[0] == 104 && dtable[1] == 203);
}

/* ------------------------------------------------------------------ token_select */

typedef struct {
    int64_t B, T, D, t;
    float *inp, *out, *R;
} sel_fd;

static double sel_loss(void *ctx)
{
    sel_fd *c = ctx;
    kern_token_select_forward(c->out, c->inp, c->B, c->T, c->D, c->t);
    return dot(c->out, c->R, c->B * c->D);
}

static void test_token_select(void)
{
    const struct {
        int64_t B, T, D, t;
    } cases[] = {{1, 1, 1, 0}, {3, 17, 5, 0}, {2, 17, 3, 16}, {4, 9, 17, 4}};
    for (size_t k = 0; k < MPSL_COUNT(cases); k++) {
        int64_t B = cases[k].B, T = cases[k].T, D = cases[k].D, t = cases[k].t;
        sel_fd c = {B, T, D, t, frand(B * T * D, -1, 1), frand(B * D, -9, 9),
                    frand(B * D, -1, 1)};
        double f[2] = {0, 0};
        flops_set_target(f);
        kern_token_select_forward(c.out, c.inp, B, T, D, t);
        int ok = 1;
        for (int64_t b = 0; b < B; b++) {
            ok &= memcmp(c.out + b * D, c.inp + (b * T + t) * D, (size_t)D * sizeof(float)) == 0;
        }
        CHECK(ok);
        // accumulates on token t, leaves the others alone
        float *dinp = frand(B * T * D, -1, 1), *before = fdup(dinp, B * T * D);
        kern_token_select_backward(dinp, c.R, B, T, D, t);
        kern_token_select_backward(NULL, c.R, B, T, D, t);
        CHECK(f[MPSL_PASS_FORWARD] == 0 && f[MPSL_PASS_BACKWARD] == (double)(B * D));
        flops_set_target(NULL);
        ok = 1;
        for (int64_t b = 0; b < B; b++) {
            for (int64_t s = 0; s < T; s++) {
                for (int64_t d = 0; d < D; d++) {
                    int64_t i = (b * T + s) * D + d;
                    float want = s == t ? before[i] + c.R[b * D + d] : before[i];
                    ok &= dinp[i] == want;
                }
            }
        }
        CHECK(ok);
        for (int64_t i = 0; i < B * T * D; i++) {
            dinp[i] -= before[i];
        }
        CHECK_FD_SOME("token_select inp", sel_loss, &c, c.inp, dinp, B * T * D, 1e-2f, 1e-3, 1e-4);
        free(c.inp), free(c.out), free(c.R), free(dinp), free(before);
    }
}

/* ------------------------------------------------------------------ contrastive */

typedef struct {
    int64_t B, E;
    float *img, *txt;
} con_fd;

static double con_loss(void *ctx)
{
    con_fd *c = ctx;
    return kern_contrastive_loss(NULL, NULL, c->img, c->txt, c->B, c->E, 1.0f);
}

static void test_contrastive(void)
{
    const struct {
        int64_t B, E;
    } cases[] = {{1, 1}, {2, 3}, {5, 17}, {17, 8}, {64, 64}, {130, 33}};
    for (size_t k = 0; k < MPSL_COUNT(cases); k++) {
        int64_t B = cases[k].B, E = cases[k].E;
        con_fd c = {B, E, frand(B * E, -1, 1), frand(B * E, -1, 1)};
        float *di = frand(B * E, -9, 9), *dt = frand(B * E, -9, 9);
        float *di_r = fnew(B * E), *dt_r = fnew(B * E);
        double f[2] = {0, 0};
        flops_set_target(f);
        double loss = kern_contrastive_loss(di, dt, c.img, c.txt, B, E, 1.0f);
        double bb = (double)(B * B), bbe = bb * (double)E;
        CHECK(f[MPSL_PASS_FORWARD] == 2 * bbe + 6 * bb && f[MPSL_PASS_BACKWARD] == 4 * bbe + 2 * bb);
        double loss_r = kern_contrastive_loss_ref(di_r, dt_r, c.img, c.txt, B, E, 1.0f);
        CHECK(f[MPSL_PASS_FORWARD] == 2 * (2 * bbe + 6 * bb) &&
              f[MPSL_PASS_BACKWARD] == 2 * (4 * bbe + 2 * bb));
        // one gradient, or none: only its FLOPs
        f[0] = f[1] = 0;
        kern_contrastive_loss(NULL, dt, c.img, c.txt, B, E, 1.0f);
        CHECK(f[MPSL_PASS_BACKWARD] == 2 * bbe + 2 * bb);
        f[0] = f[1] = 0;
        kern_contrastive_loss_ref(di_r, NULL, c.img, c.txt, B, E, 1.0f);
        CHECK(f[MPSL_PASS_BACKWARD] == 2 * bbe + 2 * bb);
        f[0] = f[1] = 0;
        kern_contrastive_loss(NULL, NULL, c.img, c.txt, B, E, 1.0f);
        CHECK(f[MPSL_PASS_BACKWARD] == 0 && f[MPSL_PASS_FORWARD] == 2 * bbe + 6 * bb);
        flops_set_target(NULL);
        CHECK_CLOSE(loss, loss_r, 1e-6);
        CHECK_ARRAYS("contrastive dimg", di, di_r, B * E, 1e-4, 1e-6);
        CHECK_ARRAYS("contrastive dtxt", dt, dt_r, B * E, 1e-4, 1e-6);
        if (B * E <= 2000) {
            CHECK_FD("contrastive img", con_loss, &c, c.img, di, B * E, 1e-2f, 1e-2, 1e-4);
            CHECK_FD("contrastive txt", con_loss, &c, c.txt, dt, B * E, 1e-2f, 1e-2, 1e-4);
        }
        // scale multiplies the gradients only
        float *di2 = fnew(B * E);
        double loss2 = kern_contrastive_loss(di2, NULL, c.img, c.txt, B, E, 0.25f);
        CHECK(loss2 == loss);
        for (int64_t i = 0; i < B * E; i++) {
            di[i] *= 0.25f;
        }
        CHECK_ARRAYS("contrastive scale", di2, di, B * E, 1e-6, 1e-9);
        free(c.img), free(c.txt), free(di), free(dt), free(di_r), free(dt_r), free(di2);
    }

    // by hand, E=2: img = I, txt = ((2,0),(1,1)) -> S = ((2,1),(0,1)).
    // rows (image to text): log(1+e^-1) twice; columns: (2,0) label 0 -> log(1+e^-2),
    // (1,1) label 1 -> log 2.
    float img[4] = {1, 0, 0, 1}, txt[4] = {2, 0, 1, 1}, di[4], dt[4];
    double want = 0.5 * (2 * log(1 + exp(-1.0)) / 2 + (log(1 + exp(-2.0)) + log(2.0)) / 2);
    CHECK_CLOSE(kern_contrastive_loss(di, dt, img, txt, 2, 2, 1.0f), want, 1e-7);
    CHECK_CLOSE(kern_contrastive_loss_ref(NULL, NULL, img, txt, 2, 2, 1.0f), want, 1e-7);
    // dS = ((Prow - I) + (Pcol - I)) / (2B); dimg = dS txt, dtxt = dS^T img = dS^T
    double a = 1 / (1 + exp(-1.0)), b2 = 1 / (1 + exp(-2.0));
    double prow[4] = {a, 1 - a, 1 - a, a}, pcol[4] = {b2, 0.5, 1 - b2, 0.5};
    double ds[4];
    for (int i = 0; i < 4; i++) {
        double eye = (i == 0 || i == 3) ? 1.0 : 0.0;
        ds[i] = (prow[i] - eye + pcol[i] - eye) / 4.0;
    }
    float want_di[4] = {(float)(2 * ds[0] + ds[1]), (float)ds[1], (float)(2 * ds[2] + ds[3]),
                        (float)ds[3]};
    float want_dt[4] = {(float)ds[0], (float)ds[2], (float)ds[1], (float)ds[3]};
    CHECK_ARRAYS("contrastive dimg by hand", di, want_di, 4, 1e-6, 1e-7);
    CHECK_ARRAYS("contrastive dtxt by hand", dt, want_dt, 4, 1e-6, 1e-7);
    CHECK(kern_contrastive_loss(di, dt, img, txt, 0, 2, 1.0f) == 0.0);
    // large dot products stay finite
    float big_i[4] = {100, 0, 0, 100}, big_t[4] = {100, 0, 0, 100};
    CHECK(isfinite(kern_contrastive_loss(di, dt, big_i, big_t, 2, 2, 1.0f)));
}

/* ------------------------------------------------------------------ l2norm */

typedef struct {
    int64_t N, C;
    float *inp, *out, *rnorm, *R;
    float scale;
} l2_fd;

/* sum(out * R) with out = scale * inp / ||inp||, R a fixed random upstream gradient */
static double l2_loss(void *ctx)
{
    l2_fd *c = ctx;
    kern_l2norm_forward_ref(c->out, c->rnorm, c->inp, c->N, c->C, c->scale);
    double l = 0.0;
    for (int64_t i = 0; i < c->N * c->C; i++) {
        l += (double)c->out[i] * c->R[i];
    }
    return l;
}

static void test_l2norm(void)
{
    const struct {
        int64_t N, C;
        float scale;
    } cases[] = {{1, 1, 1.0f}, {3, 5, 2.5f}, {7, 33, 0.3f}, {40, 64, 10.0f}};
    for (size_t k = 0; k < MPSL_COUNT(cases); k++) {
        int64_t N = cases[k].N, C = cases[k].C, n = N * C;
        l2_fd c = {N, C, frand(n, -1, 1), fnew(n), fnew(N), frand(n, -1, 1), cases[k].scale};
        float *out = fnew(n), *rn = fnew(N), *dinp = frand(n, -9, 9), *dinp_r = fnew(n);
        float ds = 0.5f, ds_r = 0.5f;   // accumulates onto what is there
        double f[2] = {0, 0};
        flops_set_target(f);
        kern_l2norm_forward(out, rn, c.inp, N, C, c.scale);
        CHECK(f[MPSL_PASS_FORWARD] == 3.0 * (double)n);
        kern_l2norm_backward(dinp, &ds, c.R, c.inp, rn, N, C, c.scale);
        CHECK(f[MPSL_PASS_BACKWARD] == 5.0 * (double)n);
        f[0] = f[1] = 0;
        float dsn = 0.0f;
        kern_l2norm_backward(NULL, &dsn, c.R, c.inp, rn, N, C, c.scale);
        CHECK(f[MPSL_PASS_BACKWARD] == 2.0 * (double)n);
        flops_set_target(NULL);
        l2_loss(&c);   // the reference forward
        CHECK_ARRAYS("l2norm out", out, c.out, n, 1e-5, 1e-7);
        CHECK_ARRAYS("l2norm rnorm", rn, c.rnorm, N, 1e-5, 0);
        kern_l2norm_backward_ref(dinp_r, &ds_r, c.R, c.inp, rn, N, C, c.scale);
        CHECK_ARRAYS("l2norm dinp", dinp, dinp_r, n, 1e-4, 1e-6);
        CHECK_CLOSE(ds, ds_r, 1e-4 * (1.0 + fabs(ds_r)));
        CHECK_CLOSE(dsn + 0.5f, ds, 1e-6 * (1.0 + fabs(ds)));
        // every row has norm scale
        for (int64_t r = 0; r < N; r++) {
            double ss = 0.0;
            for (int64_t i = 0; i < C; i++) {
                ss += (double)out[r * C + i] * out[r * C + i];
            }
            CHECK_CLOSE(sqrt(ss), c.scale, 1e-5 * c.scale);
        }
        if (C > 1) {   // one element per row has no direction to vary: the gradient is 0
            CHECK_FD("l2norm inp", l2_loss, &c, c.inp, dinp, n, 1e-2f, 1e-2, 1e-3);
        }
        float dscale = ds - 0.5f;
        CHECK_FD("l2norm scale", l2_loss, &c, &c.scale, &dscale, 1, 1e-3f, 1e-3, 1e-5);
        // in place: dinp may alias dout
        float *g = fnew(n);
        memcpy(g, c.R, (size_t)n * sizeof(float));
        kern_l2norm_backward(g, NULL, g, c.inp, rn, N, C, c.scale);
        CHECK_ARRAYS("l2norm in place", g, dinp, n, 1e-6, 1e-9);
        free(c.inp), free(c.out), free(c.rnorm), free(c.R), free(out), free(rn), free(dinp);
        free(dinp_r), free(g);
    }
    // a zero row is divided by the floor 1e-12 (F.normalize's eps): zero out, and the norm,
    // clamped, passes no gradient: dinp = scale * dout / 1e-12
    float x[4] = {0, 0, 3, 4}, out[4], rn[2], dout[4] = {1e-12f, -2e-12f, 1, 0}, dinp[4], ds = 0;
    kern_l2norm_forward(out, rn, x, 2, 2, 2.0f);
    float want[4] = {0, 0, 1.2f, 1.6f};
    CHECK_ARRAYS("l2norm zero row", out, want, 4, 1e-6, 0);
    kern_l2norm_backward(dinp, &ds, dout, x, rn, 2, 2, 2.0f);
    // row 1: n = (0.6, 0.8), dinp = 2/5 * (dout - n (n . dout)) = 0.4 * (1 - 0.36, -0.48)
    float want_d[4] = {2.0f, -4.0f, 0.4f * 0.64f, 0.4f * -0.48f};
    CHECK_ARRAYS("l2norm zero row dinp", dinp, want_d, 4, 1e-5, 1e-7);
    kern_l2norm_backward_ref(dinp, NULL, dout, x, rn, 2, 2, 2.0f);
    CHECK_ARRAYS("l2norm zero row dinp (ref)", dinp, want_d, 4, 1e-5, 1e-7);
    CHECK_CLOSE(ds, 0.6, 1e-6);
}

/* ------------------------------------------------------------------ thread counts */

/* Every parallel kernel at ViT-like sizes gives the same results with 1, 2 and 3 threads, up
 * to float rounding: the elementwise, row and column kernels are bitwise identical, but
 * OpenBLAS's Haswell sgemm rounds a row differently at the last bit depending on where the
 * row falls in its blocking, so GEMM slices may differ by an ulp or so (~1e-6 relative). */
static void test_thread_independence(void)
{
    const int64_t B = 4, T = 197, D = 192, H = 3, N = B * T, C4 = 4 * D;
    float *x = frand(N * D, -2, 2), *w = frand(D, 0.5f, 1.5f), *b = frand(D, -1, 1);
    float *qkv = frand(N * 3 * D, -2, 2), *g = frand(N * C4, -1, 1), *wl = frand(C4 * D, -1, 1);
    float *bl = frand(C4, -1, 1), *pos = frand(T * D, -1, 1);
    int32_t *ids = calloc((size_t)N, sizeof(int32_t));
    for (int64_t n = 0; n < N; n++) {
        ids[n] = (int32_t)(mpsl_rng_u64(&rng) % 50);
    }
    enum { N_OUT = 16 };
    const int64_t sizes[N_OUT] = {N * D,  N,      N,      N * D,         D,
                                  D,      N * C4, N * C4, N * D,         B * H * T * T,
                                  N * 3 * D, N * C4, N * D, C4 * D, C4, 50 * D};
    float *res[3][N_OUT];
    const int threads[3] = {1, 2, 3};
    for (int r = 0; r < 3; r++) {
        kern_set_threads(threads[r]);
        float **o = res[r];
        for (int i = 0; i < N_OUT; i++) {
            o[i] = fnew(sizes[i]);
        }
        kern_layernorm_forward(o[0], o[1], o[2], x, w, b, N, D, 1e-6f);
        memcpy(o[4], w, (size_t)D * sizeof(float));
        memcpy(o[5], b, (size_t)D * sizeof(float));
        kern_layernorm_backward(o[3], o[4], o[5], g, x, w, o[1], o[2], N, D);
        kern_gelu_forward(o[6], g, N * C4);
        kern_gelu_backward(o[7], g, g, N * C4);
        kern_attention_forward(o[8], o[9], qkv, B, T, D, H);
        kern_attention_backward(o[10], g, qkv, o[9], B, T, D, H);
        // linear D -> 4D forward and backward (dinp, dw, db)
        kern_linear_forward(o[11], x, wl, bl, N, D, C4);
        kern_linear_backward(o[12], o[13], o[14], g, x, wl, N, D, C4);
        kern_bias_add_forward(o[8], o[8], pos, B, T * D);
        kern_add(o[0], o[0], o[8], N * D);
        kern_bias_add_backward(o[15], g, B, 50 * D);
        kern_embedding_backward(o[15], x, ids, N, 50, D);
    }
    const char *names[N_OUT] = {"ln out", "ln mean", "ln rstd", "ln dinp", "ln dw", "ln db",
                                "gelu", "gelu grad", "attention out", "att", "dqkv",
                                "linear out", "linear dinp", "linear dw", "linear db",
                                "embedding/bias grads"};
    for (int r = 1; r < 3; r++) {
        for (int i = 0; i < N_OUT; i++) {
            double d = max_rel_diff(res[r][i], res[0][i], sizes[i]);
            if (!(d <= 1e-5)) {
                fprintf(stderr, "%s with %d threads differs from 1 thread by %g\n", names[i],
                        threads[r], d);
            }
            CHECK(d <= 1e-5);
        }
    }
    for (int r = 0; r < 3; r++) {
        for (int i = 0; i < N_OUT; i++) {
            free(res[r][i]);
        }
    }
    kern_set_threads(0);
    free(x), free(w), free(b), free(qkv), free(g), free(wl), free(bl), free(pos), free(ids);
}

static void test_table_entries(void)
{
    const mpsl_kernels *k = kernels_table();
    CHECK(k->layernorm_forward == kern_layernorm_forward);
    CHECK(k->layernorm_backward == kern_layernorm_backward);
    CHECK(k->gelu_forward == kern_gelu_forward && k->gelu_backward == kern_gelu_backward);
    CHECK(k->attention_forward == kern_attention_forward);
    CHECK(k->attention_backward == kern_attention_backward);
    CHECK(k->add == kern_add && k->bias_add_forward == kern_bias_add_forward);
    CHECK(k->bias_add_backward == kern_bias_add_backward);
    CHECK(k->patch_gather_strided == kern_patch_gather_strided);
    CHECK(k->embedding_forward == kern_embedding_forward);
    CHECK(k->embedding_backward == kern_embedding_backward);
    CHECK(k->token_select_forward == kern_token_select_forward);
    CHECK(k->token_select_backward == kern_token_select_backward);
    CHECK(k->contrastive_loss == kern_contrastive_loss);
    CHECK(k->l2norm_forward == kern_l2norm_forward);
    CHECK(k->l2norm_backward == kern_l2norm_backward);
}

int main(void)
{
    mpsl_rng_seed(&rng, 4321);
    test_table_entries();
    test_parallel_for();
    test_layernorm();
    test_gelu();
    test_attention();
    test_add();
    test_bias_add();
    test_patch_strided();
    test_embedding();
    test_token_select();
    test_contrastive();
    test_l2norm();
    test_thread_independence();
    return check_exit();
}
