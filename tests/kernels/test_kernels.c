/* test_kernels.c: every kernel against its reference version at awkward sizes, every
 * backward against central finite differences, and the FLOP counts of the documented
 * convention (kernels.h). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "grad_check.h"
#include "kernels/flops.h"
#include "kernels/kernels.h"
#include "util/util.h"

static mpsl_rng rng;

static float *fnew(int64_t n)
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!p) {
        abort();
    }
    return p;
}

/* ------------------------------------------------------------------ linear */

typedef struct {
    int64_t N, IC, OC;
} linear_case;

static const linear_case linear_cases[] = {
    {1, 1, 1}, {3, 17, 5}, {17, 3, 65}, {65, 17, 3}, {2, 65, 17}, {1, 64, 10}, {33, 49, 64},
};

static void test_linear_vs_ref(void)
{
    for (size_t k = 0; k < MPSL_COUNT(linear_cases); k++) {
        linear_case c = linear_cases[k];
        int64_t N = c.N, IC = c.IC, OC = c.OC;
        float *inp = fnew(N * IC), *w = fnew(OC * IC), *b = fnew(OC), *dout = fnew(N * OC);
        float *out = fnew(N * OC), *out_ref = fnew(N * OC);
        fill_uniform(&rng, inp, N * IC, -1, 1);
        fill_uniform(&rng, w, OC * IC, -1, 1);
        fill_uniform(&rng, b, OC, -1, 1);
        fill_uniform(&rng, dout, N * OC, -1, 1);
        double tol = 1e-5 * (double)(IC > OC ? IC : OC);

        for (int with_bias = 0; with_bias < 2; with_bias++) {
            fill_uniform(&rng, out, N * OC, -9, 9);   // must be overwritten
            kern_linear_forward(out, inp, w, with_bias ? b : NULL, N, IC, OC);
            kern_linear_forward_ref(out_ref, inp, w, with_bias ? b : NULL, N, IC, OC);
            CHECK_ARRAYS("linear_forward", out, out_ref, N * OC, 1e-5, tol);
        }

        // every combination of present/absent gradients; dw, db start non-zero (accumulate)
        for (int mask = 0; mask < 8; mask++) {
            float *dinp = fnew(N * IC), *dinp_ref = fnew(N * IC);
            float *dw = fnew(OC * IC), *dw_ref = fnew(OC * IC);
            float *db = fnew(OC), *db_ref = fnew(OC);
            fill_uniform(&rng, dinp, N * IC, -9, 9);
            memcpy(dinp_ref, dinp, (size_t)(N * IC) * sizeof(float));
            float *dinp_before = fnew(N * IC);
            memcpy(dinp_before, dinp, (size_t)(N * IC) * sizeof(float));
            fill_uniform(&rng, dw, OC * IC, -1, 1);
            memcpy(dw_ref, dw, (size_t)(OC * IC) * sizeof(float));
            float *dw_before = fnew(OC * IC);
            memcpy(dw_before, dw, (size_t)(OC * IC) * sizeof(float));
            fill_uniform(&rng, db, OC, -1, 1);
            memcpy(db_ref, db, (size_t)OC * sizeof(float));
            float *db_before = fnew(OC);
            memcpy(db_before, db, (size_t)OC * sizeof(float));

            kern_linear_backward(mask & 1 ? dinp : NULL, mask & 2 ? dw : NULL,
                                 mask & 4 ? db : NULL, dout, inp, w, N, IC, OC);
            kern_linear_backward_ref(mask & 1 ? dinp_ref : NULL, mask & 2 ? dw_ref : NULL,
                                     mask & 4 ? db_ref : NULL, dout, inp, w, N, IC, OC);
            CHECK_ARRAYS("linear_backward dinp", dinp, dinp_ref, N * IC, 1e-5, tol);
            CHECK_ARRAYS("linear_backward dw", dw, dw_ref, OC * IC, 1e-5, 1e-5 * (double)N);
            CHECK_ARRAYS("linear_backward db", db, db_ref, OC, 1e-5, 1e-5 * (double)N);
            if (!(mask & 1)) {
                CHECK(memcmp(dinp, dinp_before, (size_t)(N * IC) * sizeof(float)) == 0);
            }
            if (!(mask & 2)) {
                CHECK(memcmp(dw, dw_before, (size_t)(OC * IC) * sizeof(float)) == 0);
            }
            if (!(mask & 4)) {
                CHECK(memcmp(db, db_before, (size_t)OC * sizeof(float)) == 0);
            }
            free(dinp), free(dinp_ref), free(dinp_before);
            free(dw), free(dw_ref), free(dw_before);
            free(db), free(db_ref), free(db_before);
        }
        free(inp), free(w), free(b), free(dout), free(out), free(out_ref);
    }

    // N = 0: nothing to do, nothing written, no crash
    float one = 1.0f, o = 7.0f, dw = 0.0f;
    kern_linear_forward(&o, &one, &one, &one, 0, 1, 1);
    kern_linear_backward(&o, &dw, &dw, &one, &one, &one, 0, 1, 1);
    CHECK(o == 7.0f && dw == 0.0f);
}

/* Scalar loss sum(out * G) for finite differences of any forward. */
typedef struct {
    int64_t N, IC, OC;
    float *inp, *w, *b, *out, *G;
} linear_fd;

static double linear_loss(void *ctx)
{
    linear_fd *c = ctx;
    kern_linear_forward(c->out, c->inp, c->w, c->b, c->N, c->IC, c->OC);
    double s = 0.0;
    for (int64_t i = 0; i < c->N * c->OC; i++) {
        s += (double)c->out[i] * (double)c->G[i];
    }
    return s;
}

static void test_linear_fd(void)
{
    const linear_case cases[] = {{1, 1, 1}, {3, 5, 4}, {4, 3, 17}};
    for (size_t k = 0; k < MPSL_COUNT(cases); k++) {
        linear_fd c = {cases[k].N, cases[k].IC, cases[k].OC, 0, 0, 0, 0, 0};
        c.inp = fnew(c.N * c.IC), c.w = fnew(c.OC * c.IC), c.b = fnew(c.OC);
        c.out = fnew(c.N * c.OC), c.G = fnew(c.N * c.OC);
        fill_uniform(&rng, c.inp, c.N * c.IC, -1, 1);
        fill_uniform(&rng, c.w, c.OC * c.IC, -1, 1);
        fill_uniform(&rng, c.b, c.OC, -1, 1);
        fill_uniform(&rng, c.G, c.N * c.OC, -1, 1);
        float *dinp = fnew(c.N * c.IC), *dw = fnew(c.OC * c.IC), *db = fnew(c.OC);
        kern_linear_backward(dinp, dw, db, c.G, c.inp, c.w, c.N, c.IC, c.OC);
        CHECK_FD("linear inp", linear_loss, &c, c.inp, dinp, c.N * c.IC, 1e-2f, 1e-3, 1e-4);
        CHECK_FD("linear w", linear_loss, &c, c.w, dw, c.OC * c.IC, 1e-2f, 1e-3, 1e-4);
        CHECK_FD("linear b", linear_loss, &c, c.b, db, c.OC, 1e-2f, 1e-3, 1e-4);
        free(c.inp), free(c.w), free(c.b), free(c.out), free(c.G), free(dinp), free(dw), free(db);
    }
}

static void test_linear_flops(void)
{
    const int64_t N = 5, IC = 7, OC = 3;
    float *inp = fnew(N * IC), *w = fnew(OC * IC), *b = fnew(OC), *out = fnew(N * OC);
    float *dinp = fnew(N * IC), *dw = fnew(OC * IC), *db = fnew(OC);
    double mm = 2.0 * N * IC * OC;
    for (int ref = 0; ref < 2; ref++) {
        void (*fwd)(float *, const float *, const float *, const float *, int64_t, int64_t,
                    int64_t) = ref ? kern_linear_forward_ref : kern_linear_forward;
        void (*bwd)(float *, float *, float *, const float *, const float *, const float *,
                    int64_t, int64_t, int64_t) =
            ref ? kern_linear_backward_ref : kern_linear_backward;
        double f[2] = {0, 0};
        flops_set_target(f);
        fwd(out, inp, w, NULL, N, IC, OC);
        CHECK(f[MPSL_PASS_FORWARD] == mm && f[MPSL_PASS_BACKWARD] == 0);
        fwd(out, inp, w, b, N, IC, OC);
        CHECK(f[MPSL_PASS_FORWARD] == 2 * mm + N * OC);
        const struct {
            int mask;
            double want;
        } bw[] = {{7, 2 * mm + N * OC}, {6, mm + N * OC}, {1, mm}, {2, mm}, {4, N * OC},
                  {0, 0}};
        for (size_t k = 0; k < MPSL_COUNT(bw); k++) {
            f[0] = f[1] = 0;
            bwd(bw[k].mask & 1 ? dinp : NULL, bw[k].mask & 2 ? dw : NULL,
                bw[k].mask & 4 ? db : NULL, out, inp, w, N, IC, OC);
            CHECK(f[MPSL_PASS_BACKWARD] == bw[k].want && f[MPSL_PASS_FORWARD] == 0);
        }
        flops_set_target(NULL);
        fwd(out, inp, w, b, N, IC, OC);   // no target: nothing counted, no crash
        CHECK(f[MPSL_PASS_FORWARD] == 0);
    }
    free(inp), free(w), free(b), free(out), free(dinp), free(dw), free(db);
}

/* ------------------------------------------------------------------ relu */

typedef struct {
    int64_t N;
    float *inp, *out, *G;
} relu_fd;

static double relu_loss(void *ctx)
{
    relu_fd *c = ctx;
    kern_relu_forward(c->out, c->inp, c->N);
    double s = 0.0;
    for (int64_t i = 0; i < c->N; i++) {
        s += (double)c->out[i] * (double)c->G[i];
    }
    return s;
}

static void test_relu(void)
{
    const int64_t sizes[] = {1, 3, 17, 65};
    for (size_t k = 0; k < MPSL_COUNT(sizes); k++) {
        relu_fd c = {sizes[k], fnew(sizes[k]), fnew(sizes[k]), fnew(sizes[k])};
        int64_t N = c.N;
        fill_away_from_zero(&rng, c.inp, N, 0.05f, 2.0f);
        fill_uniform(&rng, c.G, N, -1, 1);
        double f[2] = {0, 0};
        flops_set_target(f);
        kern_relu_forward(c.out, c.inp, N);
        int ok = 1;
        for (int64_t i = 0; i < N; i++) {
            ok &= c.out[i] == (c.inp[i] > 0 ? c.inp[i] : 0.0f);
        }
        CHECK(ok);
        float *dinp = fnew(N);
        kern_relu_backward(dinp, c.G, c.inp, N);
        CHECK(f[MPSL_PASS_FORWARD] == (double)N && f[MPSL_PASS_BACKWARD] == (double)N);
        flops_set_target(NULL);
        CHECK_FD("relu inp", relu_loss, &c, c.inp, dinp, N, 1e-3f, 1e-3, 1e-4);
        // in place: dinp == dout
        float *g2 = fnew(N);
        memcpy(g2, c.G, (size_t)N * sizeof(float));
        kern_relu_backward(g2, g2, c.inp, N);
        CHECK_ARRAYS("relu in place", g2, dinp, N, 0, 0);
        free(c.inp), free(c.out), free(c.G), free(dinp), free(g2);
    }
}

/* ------------------------------------------------------------------ meanpool */

typedef struct {
    int64_t B, T, D, t0, len;
    float *inp, *out, *G;
} pool_fd;

static double pool_loss(void *ctx)
{
    pool_fd *c = ctx;
    kern_meanpool_forward(c->out, c->inp, c->B, c->T, c->D, c->t0, c->len);
    double s = 0.0;
    for (int64_t i = 0; i < c->B * c->D; i++) {
        s += (double)c->out[i] * (double)c->G[i];
    }
    return s;
}

static void test_meanpool(void)
{
    const struct {
        int64_t B, T, D, t0, len;
    } cases[] = {{1, 1, 1, 0, 1}, {3, 17, 5, 1, 16}, {2, 17, 3, 4, 1}, {1, 65, 3, 0, 65},
                 {4, 9, 17, 3, 5}};
    for (size_t k = 0; k < MPSL_COUNT(cases); k++) {
        pool_fd c = {cases[k].B, cases[k].T, cases[k].D, cases[k].t0, cases[k].len, 0, 0, 0};
        int64_t B = c.B, T = c.T, D = c.D;
        c.inp = fnew(B * T * D), c.out = fnew(B * D), c.G = fnew(B * D);
        fill_uniform(&rng, c.inp, B * T * D, -1, 1);
        fill_uniform(&rng, c.G, B * D, -1, 1);
        fill_uniform(&rng, c.out, B * D, -9, 9);
        double f[2] = {0, 0};
        flops_set_target(f);
        kern_meanpool_forward(c.out, c.inp, B, T, D, c.t0, c.len);
        // reference: the plain definition in double
        float *want = fnew(B * D);
        for (int64_t b = 0; b < B; b++) {
            for (int64_t d = 0; d < D; d++) {
                double s = 0.0;
                for (int64_t t = c.t0; t < c.t0 + c.len; t++) {
                    s += c.inp[(b * T + t) * D + d];
                }
                want[b * D + d] = (float)(s / (double)c.len);
            }
        }
        CHECK_ARRAYS("meanpool_forward", c.out, want, B * D, 1e-5, 1e-6);
        // backward accumulates: start from ones, tokens outside the range stay one
        float *dinp = fnew(B * T * D);
        for (int64_t i = 0; i < B * T * D; i++) {
            dinp[i] = 1.0f;
        }
        kern_meanpool_backward(dinp, c.G, B, T, D, c.t0, c.len);
        double expect = (double)(B * c.len * D);
        CHECK(f[MPSL_PASS_FORWARD] == expect && f[MPSL_PASS_BACKWARD] == expect);
        flops_set_target(NULL);
        for (int64_t i = 0; i < B * T * D; i++) {
            dinp[i] -= 1.0f;
        }
        CHECK_FD("meanpool inp", pool_loss, &c, c.inp, dinp, B * T * D, 1e-2f, 1e-3, 1e-5);
        free(c.inp), free(c.out), free(c.G), free(want), free(dinp);
    }
}

/* ------------------------------------------------------------------ cross-entropy */

typedef struct {
    int64_t B, C;
    float *logits;
    int32_t *labels;
} ce_fd;

static double ce_loss(void *ctx)
{
    ce_fd *c = ctx;
    return kern_cross_entropy(NULL, c->logits, c->labels, c->B, c->C, 1.0f, NULL);
}

/* Naive double precision definition (no max subtraction: only used on moderate logits). */
static double ce_naive(const float *z, const int32_t *y, int64_t B, int64_t C)
{
    double loss = 0.0;
    for (int64_t b = 0; b < B; b++) {
        double s = 0.0;
        for (int64_t c = 0; c < C; c++) {
            s += exp((double)z[b * C + c]);
        }
        loss += -((double)z[b * C + y[b]] - log(s));
    }
    return loss / (double)B;
}

static void test_cross_entropy(void)
{
    const struct {
        int64_t B, C;
    } cases[] = {{1, 1}, {1, 2}, {3, 17}, {17, 3}, {65, 10}, {2, 65}};
    for (size_t k = 0; k < MPSL_COUNT(cases); k++) {
        ce_fd c = {cases[k].B, cases[k].C, fnew(cases[k].B * cases[k].C), NULL};
        int64_t B = c.B, C = c.C;
        c.labels = calloc((size_t)B, sizeof(int32_t));
        fill_uniform(&rng, c.logits, B * C, -3, 3);
        int64_t want_hits = 0;
        for (int64_t b = 0; b < B; b++) {
            c.labels[b] = (int32_t)(mpsl_rng_u64(&rng) % (uint64_t)C);
            int64_t arg = 0;
            for (int64_t j = 1; j < C; j++) {
                if (c.logits[b * C + j] > c.logits[b * C + arg]) {
                    arg = j;
                }
            }
            want_hits += arg == c.labels[b];
        }
        float *dl = fnew(B * C), *dl2 = fnew(B * C);
        int64_t hits = -1;
        double f[2] = {0, 0};
        flops_set_target(f);
        double loss = kern_cross_entropy(dl, c.logits, c.labels, B, C, 1.0f, &hits);
        CHECK(f[MPSL_PASS_FORWARD] == 3.0 * B * C && f[MPSL_PASS_BACKWARD] == (double)(B * C));
        flops_set_target(NULL);
        CHECK_CLOSE(loss, ce_naive(c.logits, c.labels, B, C), 1e-9);
        CHECK(hits == want_hits);
        CHECK_FD("cross_entropy logits", ce_loss, &c, c.logits, dl, B * C, 1e-3f, 1e-2, 1e-5);
        // scale multiplies the gradient and nothing else
        double loss2 = kern_cross_entropy(dl2, c.logits, c.labels, B, C, 0.25f, NULL);
        CHECK(loss2 == loss);
        for (int64_t i = 0; i < B * C; i++) {
            dl[i] *= 0.25f;
        }
        CHECK_ARRAYS("cross_entropy scale", dl2, dl, B * C, 1e-6, 1e-9);
        free(c.logits), free(c.labels), free(dl), free(dl2);
    }

    // stability: huge logits give the same loss as shifted small ones
    float big[2 * 3] = {1000.0f, 1001.0f, 999.0f, -1000.0f, -1001.0f, -999.0f};
    float small[2 * 3] = {1.0f, 2.0f, 0.0f, 1.0f, 0.0f, 2.0f};
    int32_t y[2] = {1, 0};
    float dbig[6], dsmall[6];
    int64_t hits = -1;
    double lbig = kern_cross_entropy(dbig, big, y, 2, 3, 1.0f, &hits);
    double lsmall = kern_cross_entropy(dsmall, small, y, 2, 3, 1.0f, NULL);
    CHECK(isfinite(lbig));
    CHECK_CLOSE(lbig, lsmall, 1e-9);
    CHECK_CLOSE(lsmall, ce_naive(small, y, 2, 3), 1e-12);
    CHECK_ARRAYS("cross_entropy stable grad", dbig, dsmall, 6, 1e-6, 1e-9);
    CHECK(hits == 1);
    // gradient rows sum to zero; B = 0 returns 0
    CHECK_CLOSE(dsmall[0] + dsmall[1] + dsmall[2], 0.0, 1e-7);
    CHECK(kern_cross_entropy(NULL, small, y, 0, 3, 1.0f, &hits) == 0.0 && hits == 0);
}

/* ------------------------------------------------------------------ patches */

static void test_patch_gather(void)
{
    const struct {
        int64_t B, Cin, H, W, P;
    } cases[] = {{1, 1, 28, 28, 7}, {2, 3, 6, 9, 3}, {3, 2, 4, 4, 1}, {1, 1, 17, 17, 17},
                 {2, 1, 4, 4, 4}, {1, 3, 34, 51, 17}, {2, 2, 28, 28, 4}};
    for (size_t k = 0; k < MPSL_COUNT(cases); k++) {
        int64_t B = cases[k].B, Cin = cases[k].Cin, H = cases[k].H, W = cases[k].W;
        int64_t P = cases[k].P, nP = (H / P) * (W / P), K = Cin * P * P;
        float *img = fnew(B * Cin * H * W), *out = fnew(B * nP * K), *ref = fnew(B * nP * K);
        fill_uniform(&rng, img, B * Cin * H * W, -1, 1);
        double f[2] = {0, 0};
        flops_set_target(f);
        kern_patch_gather(out, img, B, Cin, H, W, P);
        kern_patch_gather_ref(ref, img, B, Cin, H, W, P);
        flops_set_target(NULL);
        CHECK(f[0] == 0 && f[1] == 0);
        CHECK_ARRAYS("patch_gather", out, ref, B * nP * K, 0, 0);
        free(img), free(out), free(ref);
    }

    // explicit layout: pixel value encodes (b, c, y, x); check (c, py, px) feature order
    const int64_t B = 2, Cin = 2, H = 4, W = 6, P = 2, GW = 3, K = Cin * P * P;
    float img[2 * 2 * 4 * 6], out[2 * 6 * 8];
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < Cin; c++)
            for (int64_t yy = 0; yy < H; yy++)
                for (int64_t xx = 0; xx < W; xx++)
                    img[((b * Cin + c) * H + yy) * W + xx] =
                        (float)(1000 * b + 100 * c + 10 * yy + xx);
    kern_patch_gather(out, img, B, Cin, H, W, P);
    // sample 1, patch 4 = grid row 1, column 1 -> pixels y 2..3, x 2..3
    const float *p = out + (1 * 6 + 4) * K;
    const float want[8] = {1022, 1023, 1032, 1033, 1122, 1123, 1132, 1133};
    CHECK_ARRAYS("patch_gather layout", p, want, 8, 0, 0);
    (void)GW;
}

/* ------------------------------------------------------------------ table */

static void test_table(void)
{
    const mpsl_kernels *k = kernels_table();
    CHECK(k && k->size == sizeof(mpsl_kernels));
    CHECK(k->linear_forward == kern_linear_forward);
    CHECK(k->linear_backward == kern_linear_backward);
    CHECK(k->relu_forward && k->relu_backward && k->meanpool_forward);
    CHECK(k->meanpool_backward && k->cross_entropy && k->patch_gather);
}

int main(void)
{
    mpsl_rng_seed(&rng, 1234);
    test_table();
    test_linear_vs_ref();
    test_linear_fd();
    test_linear_flops();
    test_relu();
    test_meanpool();
    test_cross_entropy();
    test_patch_gather();
    return check_exit();
}
