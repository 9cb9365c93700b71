/* layernorm.c: LayerNorm over the last dimension, as torch.nn.LayerNorm (biased variance, eps
 * inside the square root). Forward and the input gradient run parallel over rows; the weight
 * and bias gradients parallel over blocks of 8 columns, each summing all rows in order, so
 * that no result depends on the thread count. */
#include <assert.h>
#include <math.h>

#include "flops.h"
#include "kernels.h"
#include "vecmath.h"

/* FLOPs per element (kernels.h): forward sum, subtract, square, accumulate, * rstd, * w,
 * + b = 7; backward dinp: normalise (2), dout * w, two row sums (3), combine (4) = 10; dw:
 * multiply-accumulate 2; db: 1. Per-row work (divisions, the square root) is not counted. */
#define LN_FWD_FLOPS 7.0
#define LN_BWD_DINP_FLOPS 10.0
#define LN_BWD_DW_FLOPS 2.0
#define LN_BWD_DB_FLOPS 1.0

/* Values per thread below which splitting costs more than it saves. */
#define LN_GRAIN 8192

typedef struct {
    float *out, *mean, *rstd, *dinp, *dw, *db;
    const float *inp, *w, *b, *dout;
    const float *cmean, *crstd;
    int64_t N, C;
    float eps;
} ln_ctx;

KERN_CLONES
static void ln_fwd_range(void *p, int64_t begin, int64_t end, int part)
{
    ln_ctx *c = p;
    int64_t C = c->C;
    for (int64_t n = begin; n < end; n++) {
        const float *x = c->inp + n * C;
        float *y = c->out + n * C;
        v8f s = V8(0.0f);
        int64_t i = 0;
        for (; i + 8 <= C; i += 8) {
            s += v_load(x + i);
        }
        float sum = v_hsum(s);
        for (; i < C; i++) {
            sum += x[i];
        }
        float m = sum / (float)C;
        v8f q = V8(0.0f);
        for (i = 0; i + 8 <= C; i += 8) {
            v8f d = v_load(x + i) - m;
            q += d * d;
        }
        float var = v_hsum(q);
        for (; i < C; i++) {
            float d = x[i] - m;
            var += d * d;
        }
        var /= (float)C;
        float r = 1.0f / sqrtf(var + c->eps);
        for (i = 0; i + 8 <= C; i += 8) {
            v8f norm = (v_load(x + i) - m) * r;
            v_store(y + i, norm * v_load(c->w + i) + v_load(c->b + i));
        }
        for (; i < C; i++) {
            y[i] = (x[i] - m) * r * c->w[i] + c->b[i];
        }
        if (c->mean) {
            c->mean[n] = m;
        }
        if (c->rstd) {
            c->rstd[n] = r;
        }
    }
}

void kern_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                            const float *w, const float *b, int64_t N, int64_t C, float eps)
{
    // out (N,C), mean (N), rstd (N), inp (N,C), w (C), b (C)
    assert(N >= 0 && C > 0);
    ln_ctx c = {.out = out, .mean = mean, .rstd = rstd, .inp = inp, .w = w, .b = b, .N = N,
                .C = C, .eps = eps};
    int64_t grain = LN_GRAIN / C;
    kern_parallel_for(N, grain > 0 ? grain : 1, ln_fwd_range, &c);
    flops_add(MPSL_PASS_FORWARD, LN_FWD_FLOPS * (double)N * (double)C);
}

/* dinp = rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)), dnorm = dout * w */
KERN_CLONES
static void ln_bwd_dinp_range(void *p, int64_t begin, int64_t end, int part)
{
    ln_ctx *c = p;
    int64_t C = c->C;
    const float *w = c->w;
    for (int64_t n = begin; n < end; n++) {
        const float *x = c->inp + n * C, *g = c->dout + n * C;
        float *dx = c->dinp + n * C;
        float m = c->cmean[n], r = c->crstd[n];
        v8f s1 = V8(0.0f), s2 = V8(0.0f);
        int64_t i = 0;
        for (; i + 8 <= C; i += 8) {
            v8f dn = v_load(g + i) * v_load(w + i);
            s1 += dn;
            s2 += dn * ((v_load(x + i) - m) * r);
        }
        float sum1 = v_hsum(s1), sum2 = v_hsum(s2);
        for (; i < C; i++) {
            float dn = g[i] * w[i];
            sum1 += dn;
            sum2 += dn * ((x[i] - m) * r);
        }
        float k1 = sum1 / (float)C, k2 = sum2 / (float)C;
        for (i = 0; i + 8 <= C; i += 8) {
            v8f dn = v_load(g + i) * v_load(w + i);
            v8f norm = (v_load(x + i) - m) * r;
            v_store(dx + i, (dn - k1 - norm * k2) * r);
        }
        for (; i < C; i++) {
            float dn = g[i] * w[i];
            float norm = (x[i] - m) * r;
            dx[i] = (dn - k1 - norm * k2) * r;
        }
    }
}

/* dw[c] += sum_n dout * norm, db[c] += sum_n dout for columns [8*begin, 8*end) */
KERN_CLONES
static void ln_bwd_dw_range(void *p, int64_t begin, int64_t end, int part)
{
    ln_ctx *c = p;
    int64_t C = c->C, c1 = 8 * end < C ? 8 * end : C;
    for (int64_t j = 8 * begin; j < c1; j += 8) {
        int64_t len = c1 - j < 8 ? c1 - j : 8;
        v8f aw = V8(0.0f), ab = V8(0.0f);
        for (int64_t n = 0; n < c->N; n++) {
            const float *x = c->inp + n * C + j, *g = c->dout + n * C + j;
            v8f gv = len == 8 ? v_load(g) : v_load_part(g, len, 0.0f);
            v8f xv = len == 8 ? v_load(x) : v_load_part(x, len, 0.0f);
            aw += gv * ((xv - c->cmean[n]) * c->crstd[n]);
            ab += gv;
        }
        if (c->dw) {
            v_store_part(c->dw + j, (len == 8 ? v_load(c->dw + j) : v_load_part(c->dw + j, len,
                                                                                0.0f)) + aw,
                         len);
        }
        if (c->db) {
            v_store_part(c->db + j, (len == 8 ? v_load(c->db + j) : v_load_part(c->db + j, len,
                                                                                0.0f)) + ab,
                         len);
        }
    }
}

void kern_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                             const float *inp, const float *w, const float *mean,
                             const float *rstd, int64_t N, int64_t C)
{
    // dinp (N,C), dw (C), db (C), dout (N,C), inp (N,C), w (C), mean (N), rstd (N)
    assert(N >= 0 && C > 0);
    ln_ctx c = {.dinp = dinp, .dw = dw, .db = db, .inp = inp, .w = w, .dout = dout,
                .cmean = mean, .crstd = rstd, .N = N, .C = C};
    if (dinp) {
        int64_t grain = LN_GRAIN / C;
        kern_parallel_for(N, grain > 0 ? grain : 1, ln_bwd_dinp_range, &c);
        flops_add(MPSL_PASS_BACKWARD, LN_BWD_DINP_FLOPS * (double)N * (double)C);
    }
    if (dw || db) {
        int64_t grain = LN_GRAIN / (8 * (N > 0 ? N : 1));
        kern_parallel_for((C + 7) / 8, grain > 0 ? grain : 1, ln_bwd_dw_range, &c);
    }
    if (dw) {
        flops_add(MPSL_PASS_BACKWARD, LN_BWD_DW_FLOPS * (double)N * (double)C);
    }
    if (db) {
        flops_add(MPSL_PASS_BACKWARD, LN_BWD_DB_FLOPS * (double)N * (double)C);
    }
}

void kern_layernorm_forward_ref(float *out, float *mean, float *rstd, const float *inp,
                                const float *w, const float *b, int64_t N, int64_t C,
                                float eps)
{
    // out (N,C), mean (N), rstd (N), inp (N,C), w (C), b (C)
    assert(N >= 0 && C > 0);
    for (int64_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        double s = 0.0;
        for (int64_t i = 0; i < C; i++) {
            s += x[i];
        }
        double m = s / (double)C, v = 0.0;
        for (int64_t i = 0; i < C; i++) {
            v += (x[i] - m) * (x[i] - m);
        }
        v /= (double)C;
        double r = 1.0 / sqrt(v + (double)eps);
        for (int64_t i = 0; i < C; i++) {
            out[n * C + i] = (float)((x[i] - m) * r * w[i] + b[i]);
        }
        if (mean) {
            mean[n] = (float)m;
        }
        if (rstd) {
            rstd[n] = (float)r;
        }
    }
    flops_add(MPSL_PASS_FORWARD, LN_FWD_FLOPS * (double)N * (double)C);
}

void kern_layernorm_backward_ref(float *dinp, float *dw, float *db, const float *dout,
                                 const float *inp, const float *w, const float *mean,
                                 const float *rstd, int64_t N, int64_t C)
{
    // dinp (N,C), dw (C), db (C), dout (N,C), inp (N,C), w (C), mean (N), rstd (N)
    assert(N >= 0 && C > 0);
    for (int64_t n = 0; n < N; n++) {
        const float *x = inp + n * C, *g = dout + n * C;
        double m = mean[n], r = rstd[n], s1 = 0.0, s2 = 0.0;
        for (int64_t i = 0; i < C; i++) {
            double norm = (x[i] - m) * r;
            s1 += (double)g[i] * w[i];
            s2 += (double)g[i] * w[i] * norm;
            if (dw) {
                dw[i] += (float)(g[i] * norm);
            }
            if (db) {
                db[i] += g[i];
            }
        }
        if (dinp) {
            for (int64_t i = 0; i < C; i++) {
                double norm = (x[i] - m) * r;
                dinp[n * C + i] =
                    (float)(r * ((double)g[i] * w[i] - s1 / (double)C - norm * s2 / (double)C));
            }
        }
    }
    if (dinp) {
        flops_add(MPSL_PASS_BACKWARD, LN_BWD_DINP_FLOPS * (double)N * (double)C);
    }
    if (dw) {
        flops_add(MPSL_PASS_BACKWARD, LN_BWD_DW_FLOPS * (double)N * (double)C);
    }
    if (db) {
        flops_add(MPSL_PASS_BACKWARD, LN_BWD_DB_FLOPS * (double)N * (double)C);
    }
}
