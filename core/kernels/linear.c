/* linear.c: fully connected layer, out = inp @ w^T + b, through OpenBLAS sgemm, with a
 * triple-loop reference beside it. Weights are (OC,IC) as in PyTorch's nn.Linear. */
#include <assert.h>
#include <cblas.h>
#include <string.h>

#include "flops.h"
#include "kernels.h"

void kern_linear_forward(float *out, const float *inp, const float *w, const float *b,
                         int64_t N, int64_t IC, int64_t OC)
{
    // out (N,OC), inp (N,IC), w (OC,IC), b (OC)
    assert(N >= 0 && IC > 0 && OC > 0);
    if (N == 0) {
        return;
    }
    float beta = 0.0f;
    if (b) {
        for (int64_t n = 0; n < N; n++) {
            memcpy(out + n * OC, b, (size_t)OC * sizeof(float));
        }
        beta = 1.0f;
        flops_add(MPSL_PASS_FORWARD, (double)N * (double)OC);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)N, (blasint)OC, (blasint)IC,
                1.0f, inp, (blasint)IC, w, (blasint)IC, beta, out, (blasint)OC);
    flops_add(MPSL_PASS_FORWARD, 2.0 * (double)N * (double)IC * (double)OC);
}

void kern_linear_backward(float *dinp, float *dw, float *db, const float *dout,
                          const float *inp, const float *w, int64_t N, int64_t IC,
                          int64_t OC)
{
    // dinp (N,IC), dw (OC,IC), db (OC), dout (N,OC), inp (N,IC), w (OC,IC)
    assert(N >= 0 && IC > 0 && OC > 0);
    double mm = 2.0 * (double)N * (double)IC * (double)OC;
    if (dinp) {
        if (N > 0) {
            // dinp = dout @ w
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)N, (blasint)IC,
                        (blasint)OC, 1.0f, dout, (blasint)OC, w, (blasint)IC, 0.0f, dinp,
                        (blasint)IC);
        }
        flops_add(MPSL_PASS_BACKWARD, mm);
    }
    if (dw) {
        if (N > 0) {
            // dw += dout^T @ inp
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)OC, (blasint)IC,
                        (blasint)N, 1.0f, dout, (blasint)OC, inp, (blasint)IC, 1.0f, dw,
                        (blasint)IC);
        }
        flops_add(MPSL_PASS_BACKWARD, mm);
    }
    if (db) {
        for (int64_t n = 0; n < N; n++) {
            const float *dout_n = dout + n * OC;
            for (int64_t o = 0; o < OC; o++) {
                db[o] += dout_n[o];
            }
        }
        flops_add(MPSL_PASS_BACKWARD, (double)N * (double)OC);
    }
}

void kern_linear_forward_ref(float *out, const float *inp, const float *w, const float *b,
                             int64_t N, int64_t IC, int64_t OC)
{
    // out (N,OC), inp (N,IC), w (OC,IC), b (OC)
    assert(N >= 0 && IC > 0 && OC > 0);
    for (int64_t n = 0; n < N; n++) {
        const float *inp_n = inp + n * IC;
        for (int64_t o = 0; o < OC; o++) {
            const float *w_o = w + o * IC;
            float acc = b ? b[o] : 0.0f;
            for (int64_t i = 0; i < IC; i++) {
                acc += inp_n[i] * w_o[i];
            }
            out[n * OC + o] = acc;
        }
    }
    flops_add(MPSL_PASS_FORWARD, 2.0 * (double)N * (double)IC * (double)OC);
    if (b) {
        flops_add(MPSL_PASS_FORWARD, (double)N * (double)OC);
    }
}

void kern_linear_backward_ref(float *dinp, float *dw, float *db, const float *dout,
                              const float *inp, const float *w, int64_t N, int64_t IC,
                              int64_t OC)
{
    // dinp (N,IC), dw (OC,IC), db (OC), dout (N,OC), inp (N,IC), w (OC,IC)
    assert(N >= 0 && IC > 0 && OC > 0);
    double mm = 2.0 * (double)N * (double)IC * (double)OC;
    if (dinp) {
        for (int64_t n = 0; n < N; n++) {
            for (int64_t i = 0; i < IC; i++) {
                float acc = 0.0f;
                for (int64_t o = 0; o < OC; o++) {
                    acc += dout[n * OC + o] * w[o * IC + i];
                }
                dinp[n * IC + i] = acc;
            }
        }
        flops_add(MPSL_PASS_BACKWARD, mm);
    }
    if (dw) {
        for (int64_t o = 0; o < OC; o++) {
            for (int64_t i = 0; i < IC; i++) {
                float acc = 0.0f;
                for (int64_t n = 0; n < N; n++) {
                    acc += dout[n * OC + o] * inp[n * IC + i];
                }
                dw[o * IC + i] += acc;
            }
        }
        flops_add(MPSL_PASS_BACKWARD, mm);
    }
    if (db) {
        for (int64_t o = 0; o < OC; o++) {
            float acc = 0.0f;
            for (int64_t n = 0; n < N; n++) {
                acc += dout[n * OC + o];
            }
            db[o] += acc;
        }
        flops_add(MPSL_PASS_BACKWARD, (double)N * (double)OC);
    }
}
