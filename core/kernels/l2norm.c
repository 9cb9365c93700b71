/* l2norm.c: row-wise L2 normalisation times a scale, out = scale * x / max(||x||, 1e-12), as
 * torch.nn.functional.normalize(x, dim=-1) * scale. The retrieval head's cosine similarity
 * uses it (its rows are embeddings: a few hundred floats each, so plain loops, one thread).
 * The norm's clamp follows PyTorch: a row whose norm is below the floor is divided by the
 * floor, and the floor, a constant, passes no gradient through the norm. */
#include <assert.h>
#include <math.h>

#include "flops.h"
#include "kernels.h"

#define L2_EPS 1e-12

/* FLOPs per element (kernels.h): forward square-accumulate 2, * (scale * rnorm) 1 = 3;
 * backward: the row dot x . dout 2, then dinp = (scale * rnorm) * (dout - x * c) 3, where c
 * = rnorm^2 * dot per row. Per-row work (the square root, rnorm's products) is not counted. */
#define L2_FWD_FLOPS 3.0
#define L2_BWD_DOT_FLOPS 2.0
#define L2_BWD_DINP_FLOPS 3.0

void kern_l2norm_forward(float *out, float *rnorm, const float *inp, int64_t N, int64_t C,
                         float scale)
{
    // out (N,C), rnorm (N), inp (N,C)
    assert(N >= 0 && C > 0);
    for (int64_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float ss = 0.0f;
        for (int64_t i = 0; i < C; i++) {
            ss += x[i] * x[i];
        }
        float norm = sqrtf(ss);
        float r = 1.0f / (norm > (float)L2_EPS ? norm : (float)L2_EPS);
        rnorm[n] = r;
        float k = scale * r;
        for (int64_t i = 0; i < C; i++) {
            out[n * C + i] = k * x[i];
        }
    }
    flops_add(MPSL_PASS_FORWARD, L2_FWD_FLOPS * (double)N * (double)C);
}

/* With n = x * rnorm and out = scale * n: dinp = scale * rnorm * (dout - n (n . dout)) while
 * the norm is above the floor (else scale * rnorm * dout), dscale += sum n . dout. */
void kern_l2norm_backward(float *dinp, float *dscale, const float *dout, const float *inp,
                          const float *rnorm, int64_t N, int64_t C, float scale)
{
    // dinp (N,C) (may alias dout), dscale (1), dout (N,C), inp (N,C), rnorm (N)
    assert(N >= 0 && C > 0);
    if (!dinp && !dscale) {
        return;
    }
    float ds = 0.0f;
    for (int64_t n = 0; n < N; n++) {
        const float *x = inp + n * C, *g = dout + n * C;
        float r = rnorm[n], dot = 0.0f;
        for (int64_t i = 0; i < C; i++) {
            dot += x[i] * g[i];
        }
        ds += r * dot;
        if (dinp) {
            // rnorm is the forward's 1 / floor exactly when the norm was clamped: then the
            // norm passes no gradient
            float c = r != 1.0f / (float)L2_EPS ? r * r * dot : 0.0f, k = scale * r;
            float *dx = dinp + n * C;
            for (int64_t i = 0; i < C; i++) {
                dx[i] = k * (g[i] - x[i] * c);
            }
        }
    }
    if (dscale) {
        *dscale += ds;
    }
    flops_add(MPSL_PASS_BACKWARD, (L2_BWD_DOT_FLOPS + (dinp ? L2_BWD_DINP_FLOPS : 0.0)) *
                                      (double)N * (double)C);
}

void kern_l2norm_forward_ref(float *out, float *rnorm, const float *inp, int64_t N, int64_t C,
                             float scale)
{
    assert(N >= 0 && C > 0);
    for (int64_t n = 0; n < N; n++) {
        double ss = 0.0;
        for (int64_t i = 0; i < C; i++) {
            ss += (double)inp[n * C + i] * inp[n * C + i];
        }
        double norm = sqrt(ss);
        double r = 1.0 / (norm > L2_EPS ? norm : L2_EPS);
        rnorm[n] = (float)r;
        for (int64_t i = 0; i < C; i++) {
            out[n * C + i] = (float)((double)scale * inp[n * C + i] * r);
        }
    }
    flops_add(MPSL_PASS_FORWARD, L2_FWD_FLOPS * (double)N * (double)C);
}

/* The reference recomputes the norm in double rather than trusting the saved rnorm. */
void kern_l2norm_backward_ref(float *dinp, float *dscale, const float *dout, const float *inp,
                              const float *rnorm, int64_t N, int64_t C, float scale)
{
    (void)rnorm;
    assert(N >= 0 && C > 0);
    if (!dinp && !dscale) {
        return;
    }
    double ds = 0.0;
    for (int64_t n = 0; n < N; n++) {
        const float *x = inp + n * C, *g = dout + n * C;
        double ss = 0.0, dot = 0.0;
        for (int64_t i = 0; i < C; i++) {
            ss += (double)x[i] * x[i];
            dot += (double)x[i] * g[i];
        }
        double norm = sqrt(ss);
        int clamped = !(norm > L2_EPS);
        double r = 1.0 / (clamped ? L2_EPS : norm);
        ds += r * dot;
        for (int64_t i = 0; dinp && i < C; i++) {
            double through_norm = clamped ? 0.0 : (double)x[i] * r * r * dot;
            dinp[n * C + i] = (float)((double)scale * r * ((double)g[i] - through_norm));
        }
    }
    if (dscale) {
        *dscale += (float)ds;
    }
    flops_add(MPSL_PASS_BACKWARD, (L2_BWD_DOT_FLOPS + (dinp ? L2_BWD_DINP_FLOPS : 0.0)) *
                                      (double)N * (double)C);
}
