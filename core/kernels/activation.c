/* activation.c: elementwise activations. ReLU needs no faster twin: the loop vectorises. */
#include <assert.h>

#include "flops.h"
#include "kernels.h"

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
