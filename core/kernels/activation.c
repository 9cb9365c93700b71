/* activation.c: elementwise activations. ReLU needs no faster twin: the loop vectorises.
 * GELU's fast version evaluates exp and erf on 8 lanes at a time (vecmath.h), or 16 on CPUs
 * with AVX-512F (vec_avx512.c; the same bits). */
#include <assert.h>
#include <math.h>

#include "flops.h"
#include "kernels.h"
#include "vec_avx512.h"
#include "vecmath.h"

/* FLOPs per element (kernels.h): forward x*x, *-0.5, exp, /sqrt2, erf, 1+, *0.5, *x;
 * backward the same Phi (x*x, *-0.5, exp, /sqrt2, erf, 1+, *0.5), then x*e, *1/sqrt(2pi),
 * +cdf, *dout. exp and erf count one each. */
#define GELU_FWD_FLOPS 8.0
#define GELU_BWD_FLOPS 11.0

void kern_relu_forward(float *out, const float *inp, int64_t N)
{
    // out (N), inp (N)
    assert(N >= 0);
    for (int64_t i = 0; i < N; i++) {
        out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
    }
    flops_add(MPSL_PASS_FORWARD, (double)N);
}

void kern_relu_backward(float *dinp, const float *dout, const float *inp, int64_t N)
{
    // dinp (N), dout (N), inp (N): the pre-activation input saved from forward
    assert(N >= 0);
    for (int64_t i = 0; i < N; i++) {
        dinp[i] = inp[i] > 0.0f ? dout[i] : 0.0f;
    }
    flops_add(MPSL_PASS_BACKWARD, (double)N);
}

/* ------------------------------------------------------------------ GELU */

/* Elements per thread below which splitting costs more than it saves. */
#define GELU_GRAIN 8192

typedef struct {
    float *out;
    const float *dout, *inp;
} gelu_ctx;

KERN_CLONES
static void gelu_fwd_range(void *p, int64_t begin, int64_t end, int part)
{
    gelu_ctx *c = p;
    if (kern_vec_avx512()) {
        kern_gelu_forward_avx512(c->out, c->inp, begin, end);
        return;
    }
    int64_t i = begin;
    for (; i + 8 <= end; i += 8) {
        v_store(c->out + i, v_gelu(v_load(c->inp + i)));
    }
    if (i < end) {
        v_store_part(c->out + i, v_gelu(v_load_part(c->inp + i, end - i, 0.0f)), end - i);
    }
}

KERN_CLONES
static void gelu_bwd_range(void *p, int64_t begin, int64_t end, int part)
{
    gelu_ctx *c = p;
    if (kern_vec_avx512()) {
        kern_gelu_backward_avx512(c->out, c->dout, c->inp, begin, end);
        return;
    }
    int64_t i = begin;
    for (; i + 8 <= end; i += 8) {
        v_store(c->out + i, v_load(c->dout + i) * v_gelu_grad(v_load(c->inp + i)));
    }
    if (i < end) {
        int64_t n = end - i;
        v8f g = v_gelu_grad(v_load_part(c->inp + i, n, 0.0f));
        v_store_part(c->out + i, v_load_part(c->dout + i, n, 0.0f) * g, n);
    }
}

void kern_gelu_forward(float *out, const float *inp, int64_t N)
{
    // out (N), inp (N)
    assert(N >= 0);
    gelu_ctx c = {out, NULL, inp};
    kern_parallel_for(N, GELU_GRAIN, gelu_fwd_range, &c);
    flops_add(MPSL_PASS_FORWARD, GELU_FWD_FLOPS * (double)N);
}

void kern_gelu_backward(float *dinp, const float *dout, const float *inp, int64_t N)
{
    // dinp (N), dout (N), inp (N): the input saved from forward
    assert(N >= 0);
    if (!dinp) {
        return;
    }
    gelu_ctx c = {dinp, dout, inp};
    kern_parallel_for(N, GELU_GRAIN, gelu_bwd_range, &c);
    flops_add(MPSL_PASS_BACKWARD, GELU_BWD_FLOPS * (double)N);
}

void kern_gelu_forward_ref(float *out, const float *inp, int64_t N)
{
    // out (N), inp (N)
    assert(N >= 0);
    for (int64_t i = 0; i < N; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
    }
    flops_add(MPSL_PASS_FORWARD, GELU_FWD_FLOPS * (double)N);
}

void kern_gelu_backward_ref(float *dinp, const float *dout, const float *inp, int64_t N)
{
    // dinp (N), dout (N), inp (N)
    assert(N >= 0);
    if (!dinp) {
        return;
    }
    for (int64_t i = 0; i < N; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + erff(x * (float)M_SQRT1_2));
        float pdf = expf(-0.5f * x * x) * 0.3989422804014327f;
        dinp[i] = dout[i] * (cdf + x * pdf);
    }
    flops_add(MPSL_PASS_BACKWARD, GELU_BWD_FLOPS * (double)N);
}
