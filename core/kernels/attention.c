/* attention.c: multi-head self-attention between timm's qkv and proj layers. Each (sample,
 * head) pair is four small GEMMs reading q, k, v in place from the packed qkv (leading
 * dimension 3D) plus a row softmax; pairs are spread over the kernel threads, each calling
 * single-threaded kern_gemm (gemm.h: float32, or bf16 under train.precision; kernels.h
 * explains why). The softmax stays float32. The backward's GEMMs need a T x T scratch per
 * thread; without it, pairs take a direct path that needs none (the one the
 * reference uses). The row softmax and its backward run on 16 lanes on CPUs with AVX-512F
 * (vec_avx512.c), else on 8. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flops.h"
#include "gemm.h"
#include "kernels.h"
#include "vec_avx512.h"
#include "vecmath.h"

/* FLOPs (kernels.h): forward 2 GEMMs of 2*T*T*hs each plus softmax (max, subtract, exp, sum,
 * normalise) 5 per score; backward 4 GEMMs plus softmax backward (multiply-accumulate of
 * P*dP, subtract, multiply) 4 per score. The 1/sqrt(hs) scale rides in the GEMMs' alpha. */
#define ATT_SOFTMAX_FWD_FLOPS 5.0
#define ATT_SOFTMAX_BWD_FLOPS 4.0

static void attention_flops(mpsl_pass pass, int64_t B, int64_t T, int64_t D, int64_t H)
{
    double scores = (double)B * (double)H * (double)T * (double)T;
    double gemm = (pass == MPSL_PASS_FORWARD ? 4.0 : 8.0) * scores * (double)(D / H);
    double soft = pass == MPSL_PASS_FORWARD ? ATT_SOFTMAX_FWD_FLOPS : ATT_SOFTMAX_BWD_FLOPS;
    flops_add(pass, gemm + soft * scores);
}

/* In place: s (T) = softmax(s). */
KERN_CLONES
static void softmax_row(float *s, int64_t T)
{
    if (kern_vec_avx512()) {
        kern_softmax_row_avx512(s, T);
        return;
    }
    int64_t i = 0;
    v8f mv = V8(-INFINITY);
    for (; i + 8 <= T; i += 8) {
        mv = v_max(mv, v_load(s + i));
    }
    float m = v_hmax(mv);
    for (; i < T; i++) {
        m = s[i] > m ? s[i] : m;
    }
    v8f sum = V8(0.0f);
    for (i = 0; i + 8 <= T; i += 8) {
        v8f e = v_exp(v_load(s + i) - m);
        sum += e;
        v_store(s + i, e);
    }
    if (i < T) {
        // padding lanes hold -inf: exp gives 0
        v8f e = v_exp(v_load_part(s + i, T - i, -INFINITY) - m);
        sum += e;
        v_store_part(s + i, e, T - i);
    }
    float inv = 1.0f / v_hsum(sum);
    for (i = 0; i + 8 <= T; i += 8) {
        v_store(s + i, v_load(s + i) * inv);
    }
    for (; i < T; i++) {
        s[i] *= inv;
    }
}

/* In place: dp (T) = p * (dp - sum(p * dp)), the gradient through a row softmax. */
KERN_CLONES
static void softmax_backward_row(float *dp, const float *p, int64_t T)
{
    if (kern_vec_avx512()) {
        kern_softmax_backward_row_avx512(dp, p, T);
        return;
    }
    int64_t i = 0;
    v8f acc = V8(0.0f);
    for (; i + 8 <= T; i += 8) {
        acc += v_load(p + i) * v_load(dp + i);
    }
    float dot = v_hsum(acc);
    for (; i < T; i++) {
        dot += p[i] * dp[i];
    }
    for (i = 0; i + 8 <= T; i += 8) {
        v_store(dp + i, v_load(p + i) * (v_load(dp + i) - dot));
    }
    for (; i < T; i++) {
        dp[i] = p[i] * (dp[i] - dot);
    }
}

typedef struct {
    float *out, *att, *dqkv;
    const float *qkv, *dout, *catt;
    int64_t B, T, D, H;
} att_ctx;

static void att_fwd_range(void *p, int64_t begin, int64_t end, int part)
{
    att_ctx *c = p;
    int64_t T = c->T, D = c->D, H = c->H, hs = D / H;
    float scale = 1.0f / sqrtf((float)hs);
    for (int64_t bh = begin; bh < end; bh++) {
        int64_t b = bh / H, h = bh % H;
        const float *q = c->qkv + b * T * 3 * D + h * hs, *k = q + D, *v = q + 2 * D;
        float *s = c->att + bh * T * T;
        // s (T,T) = scale * q k^T, then row softmax, then out (T,hs; ld D) = s v
        kern_gemm(0, 1, T, T, hs, scale, q, 3 * D, k, 3 * D, 0.0f, s, T);
        for (int64_t t = 0; t < T; t++) {
            softmax_row(s + t * T, T);
        }
        kern_gemm(0, 0, T, hs, T, 1.0f, s, T, v, 3 * D, 0.0f, c->out + b * T * D + h * hs,
                   D);
    }
}

void kern_attention_forward(float *out, float *att, const float *qkv, int64_t B, int64_t T,
                            int64_t D, int64_t H)
{
    // out (B,T,D), att (B,H,T,T), qkv (B,T,3D)
    assert(B >= 0 && T > 0 && H > 0 && D > 0 && D % H == 0);
    att_ctx c = {.out = out, .att = att, .qkv = qkv, .B = B, .T = T, .D = D, .H = H};
    // a pair is 4*T*T*hs FLOPs; split when each thread gets about 1 MFLOP or more
    int64_t per_pair = 4 * T * T * (D / H) + 1, grain = (1 << 20) / per_pair;
    kern_parallel_for(B * H, grain > 0 ? grain : 1, att_fwd_range, &c);
    attention_flops(MPSL_PASS_FORWARD, B, T, D, H);
}

/* The backward of one (sample b, head h) pair without scratch memory, in double: for each
 * query row t, a first pass over the keys gives dv and the softmax backward's row sum
 * sum_s P[t,s] dP[t,s]; a second recomputes dP[t,s] = dO[t] . v[s] for dS and adds dS's share
 * to dq and dk. Twice the dP dot products of the GEMM path, no T x T matrix. Overwrites the
 * pair's columns of dqkv (no other pair writes them). */
static void att_bwd_pair_direct(float *dqkv, const float *dout, const float *qkv,
                                const float *att, int64_t b, int64_t h, int64_t T, int64_t D,
                                int64_t H)
{
    int64_t hs = D / H;
    double scale = 1.0 / sqrt((double)hs);
    for (int64_t t = 0; t < T; t++) {
        float *dq = dqkv + (b * T + t) * 3 * D + h * hs;
        memset(dq, 0, (size_t)hs * sizeof(float));
        memset(dq + D, 0, (size_t)hs * sizeof(float));
        memset(dq + 2 * D, 0, (size_t)hs * sizeof(float));
    }
    const float *a = att + (b * H + h) * T * T;
    for (int64_t t = 0; t < T; t++) {
        const float *g = dout + (b * T + t) * D + h * hs;
        // dP[t,s] = dO[t] . v[s];  dv[s] += P[t,s] dO[t];  dot = sum_s P[t,s] dP[t,s]
        double dot = 0.0;
        for (int64_t s = 0; s < T; s++) {
            const float *v = qkv + (b * T + s) * 3 * D + 2 * D + h * hs;
            float *dv = dqkv + (b * T + s) * 3 * D + 2 * D + h * hs;
            double dp = 0.0;
            for (int64_t i = 0; i < hs; i++) {
                dp += (double)g[i] * v[i];
                dv[i] += a[t * T + s] * g[i];
            }
            dot += dp * a[t * T + s];
        }
        // dS[t,s] = P[t,s] (dP[t,s] - dot);  dq[t] += scale dS k[s];  dk[s] += scale dS q[t]
        const float *q = qkv + (b * T + t) * 3 * D + h * hs;
        float *dq = dqkv + (b * T + t) * 3 * D + h * hs;
        for (int64_t s = 0; s < T; s++) {
            const float *v = qkv + (b * T + s) * 3 * D + 2 * D + h * hs;
            const float *k = qkv + (b * T + s) * 3 * D + D + h * hs;
            float *dk = dqkv + (b * T + s) * 3 * D + D + h * hs;
            double dp = 0.0;
            for (int64_t i = 0; i < hs; i++) {
                dp += (double)g[i] * v[i];
            }
            double w = scale * (a[t * T + s] * (dp - dot));
            for (int64_t i = 0; i < hs; i++) {
                dq[i] += (float)(w * k[i]);
                dk[i] += (float)(w * q[i]);
            }
        }
    }
}

static void att_bwd_range(void *p, int64_t begin, int64_t end, int part)
{
    att_ctx *c = p;
    int64_t T = c->T, D = c->D, H = c->H, hs = D / H;
    float scale = 1.0f / sqrtf((float)hs);
    float *ds = kern_alloc((size_t)(T * T) * sizeof(float));
    if (!ds) {
        // no scratch: the same gradient by the direct path (slower, no T x T matrix)
        for (int64_t bh = begin; bh < end; bh++) {
            att_bwd_pair_direct(c->dqkv, c->dout, c->qkv, c->catt, bh / H, bh % H, T, D, H);
        }
        return;
    }
    for (int64_t bh = begin; bh < end; bh++) {
        int64_t b = bh / H, h = bh % H;
        const float *q = c->qkv + b * T * 3 * D + h * hs, *k = q + D, *v = q + 2 * D;
        const float *pr = c->catt + bh * T * T, *dout = c->dout + b * T * D + h * hs;
        float *dq = c->dqkv + b * T * 3 * D + h * hs, *dk = dq + D, *dv = dq + 2 * D;
        // dP (T,T) = dO v^T;  dv (T,hs) = P^T dO
        kern_gemm(0, 1, T, T, hs, 1.0f, dout, D, v, 3 * D, 0.0f, ds, T);
        kern_gemm(1, 0, T, hs, T, 1.0f, pr, T, dout, D, 0.0f, dv, 3 * D);
        for (int64_t t = 0; t < T; t++) {
            softmax_backward_row(ds + t * T, pr + t * T, T);
        }
        // dq = scale * dS k;  dk = scale * dS^T q
        kern_gemm(0, 0, T, hs, T, scale, ds, T, k, 3 * D, 0.0f, dq, 3 * D);
        kern_gemm(1, 0, T, hs, T, scale, ds, T, q, 3 * D, 0.0f, dk, 3 * D);
    }
    free(ds);
}

void kern_attention_backward(float *dqkv, const float *dout, const float *qkv,
                             const float *att, int64_t B, int64_t T, int64_t D, int64_t H)
{
    // dqkv (B,T,3D), dout (B,T,D), qkv (B,T,3D), att (B,H,T,T)
    assert(B >= 0 && T > 0 && H > 0 && D > 0 && D % H == 0);
    if (!dqkv) {
        return;
    }
    att_ctx c = {.dqkv = dqkv, .dout = dout, .qkv = qkv, .catt = att, .B = B, .T = T, .D = D,
                 .H = H};
    int64_t per_pair = 8 * T * T * (D / H) + 1, grain = (1 << 20) / per_pair;
    kern_parallel_for(B * H, grain > 0 ? grain : 1, att_bwd_range, &c);
    attention_flops(MPSL_PASS_BACKWARD, B, T, D, H);
}

void kern_attention_forward_ref(float *out, float *att, const float *qkv, int64_t B,
                                int64_t T, int64_t D, int64_t H)
{
    // out (B,T,D), att (B,H,T,T), qkv (B,T,3D)
    assert(B >= 0 && T > 0 && H > 0 && D > 0 && D % H == 0);
    int64_t hs = D / H;
    double scale = 1.0 / sqrt((double)hs);
    for (int64_t b = 0; b < B; b++) {
        for (int64_t h = 0; h < H; h++) {
            float *a = att + (b * H + h) * T * T;
            for (int64_t t = 0; t < T; t++) {
                const float *q = qkv + (b * T + t) * 3 * D + h * hs;
                double m = -INFINITY;
                for (int64_t s = 0; s < T; s++) {
                    const float *k = qkv + (b * T + s) * 3 * D + D + h * hs;
                    double dot = 0.0;
                    for (int64_t i = 0; i < hs; i++) {
                        dot += (double)q[i] * k[i];
                    }
                    a[t * T + s] = (float)(dot * scale);
                    m = a[t * T + s] > m ? a[t * T + s] : m;
                }
                double sum = 0.0;
                for (int64_t s = 0; s < T; s++) {
                    sum += exp(a[t * T + s] - m);
                }
                for (int64_t s = 0; s < T; s++) {
                    a[t * T + s] = (float)(exp(a[t * T + s] - m) / sum);
                }
                float *o = out + (b * T + t) * D + h * hs;
                for (int64_t i = 0; i < hs; i++) {
                    double acc = 0.0;
                    for (int64_t s = 0; s < T; s++) {
                        acc += (double)a[t * T + s] * qkv[(b * T + s) * 3 * D + 2 * D + h * hs + i];
                    }
                    o[i] = (float)acc;
                }
            }
        }
    }
    attention_flops(MPSL_PASS_FORWARD, B, T, D, H);
}

void kern_attention_backward_ref(float *dqkv, const float *dout, const float *qkv,
                                 const float *att, int64_t B, int64_t T, int64_t D,
                                 int64_t H)
{
    // dqkv (B,T,3D), dout (B,T,D), qkv (B,T,3D), att (B,H,T,T)
    assert(B >= 0 && T > 0 && H > 0 && D > 0 && D % H == 0);
    if (!dqkv) {
        return;
    }
    for (int64_t b = 0; b < B; b++) {
        for (int64_t h = 0; h < H; h++) {
            att_bwd_pair_direct(dqkv, dout, qkv, att, b, h, T, D, H);
        }
    }
    attention_flops(MPSL_PASS_BACKWARD, B, T, D, H);
}
