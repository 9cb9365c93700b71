/* pool.c: mean over a range of tokens, as heads pool each modality's segment, and the
 * selection of one token (CLS pooling). */
#include <assert.h>
#include <string.h>

#include "flops.h"
#include "kernels.h"

void kern_meanpool_forward(float *out, const float *inp, int64_t B, int64_t T, int64_t D,
                           int64_t t0, int64_t len)
{
    // out (B,D), inp (B,T,D)
    assert(B >= 0 && D > 0 && len >= 1 && t0 >= 0 && t0 + len <= T);
    float inv = 1.0f / (float)len;
    for (int64_t b = 0; b < B; b++) {
        float *out_b = out + b * D;
        const float *inp_b = inp + (b * T + t0) * D;
        for (int64_t d = 0; d < D; d++) {
            out_b[d] = 0.0f;
        }
        for (int64_t t = 0; t < len; t++) {
            for (int64_t d = 0; d < D; d++) {
                out_b[d] += inp_b[t * D + d];
            }
        }
        for (int64_t d = 0; d < D; d++) {
            out_b[d] *= inv;
        }
    }
    flops_add(MPSL_PASS_FORWARD, (double)B * (double)len * (double)D);
}

void kern_meanpool_backward(float *dinp, const float *dout, int64_t B, int64_t T, int64_t D,
                            int64_t t0, int64_t len)
{
    // dinp (B,T,D) accumulated, dout (B,D)
    assert(B >= 0 && D > 0 && len >= 1 && t0 >= 0 && t0 + len <= T);
    float inv = 1.0f / (float)len;
    for (int64_t b = 0; b < B; b++) {
        const float *dout_b = dout + b * D;
        float *dinp_b = dinp + (b * T + t0) * D;
        for (int64_t t = 0; t < len; t++) {
            for (int64_t d = 0; d < D; d++) {
                dinp_b[t * D + d] += dout_b[d] * inv;
            }
        }
    }
    flops_add(MPSL_PASS_BACKWARD, (double)B * (double)len * (double)D);
}

void kern_token_select_forward(float *out, const float *inp, int64_t B, int64_t T, int64_t D,
                               int64_t t)
{
    // out (B,D), inp (B,T,D)
    assert(B >= 0 && D > 0 && t >= 0 && t < T);
    for (int64_t b = 0; b < B; b++) {
        memcpy(out + b * D, inp + (b * T + t) * D, (size_t)D * sizeof(float));
    }
}

void kern_token_select_backward(float *dinp, const float *dout, int64_t B, int64_t T,
                                int64_t D, int64_t t)
{
    // dinp (B,T,D) accumulated on token t, dout (B,D)
    assert(B >= 0 && D > 0 && t >= 0 && t < T);
    if (!dinp) {
        return;
    }
    for (int64_t b = 0; b < B; b++) {
        float *dst = dinp + (b * T + t) * D;
        const float *g = dout + b * D;
        for (int64_t d = 0; d < D; d++) {
            dst[d] += g[d];
        }
    }
    flops_add(MPSL_PASS_BACKWARD, (double)B * (double)D);
}
