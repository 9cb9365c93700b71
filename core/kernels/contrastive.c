/* contrastive.c: the symmetric contrastive loss of the retrieval task (MPSL paper): raw dot
 * products S = img @ txt^T, no normalisation, no temperature; image-to-text and text-to-image
 * cross-entropy against the diagonal, averaged. Both versions need (B,B) scratch; without it
 * they fail (kernels.h, KERNEL ERRORS). */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flops.h"
#include "kernels.h"

/* FLOPs (kernels.h): the similarity GEMM 2*B*B*E (counted by the linear kernels in the fast
 * version), each direction's softmax cross-entropy 3*B*B forward and B*B backward (as
 * cross_entropy), and 2*B*B*E per requested input gradient. */

/* Softmax cross-entropy of each row (transposed: of each column) of S (B,B) against the
 * diagonal, in double. Adds k * (softmax - onehot) to g (B,B) (same orientation as S) when g
 * is non-NULL; returns the summed loss. */
static double ce_diag(const float *S, int64_t B, int transposed, double *g, double k)
{
    double loss = 0.0;
    for (int64_t i = 0; i < B; i++) {
        // row i of S, or column i when transposed
        int64_t step = transposed ? B : 1, base = transposed ? i : i * B;
        double m = -INFINITY;
        for (int64_t j = 0; j < B; j++) {
            double z = S[base + j * step];
            m = z > m ? z : m;
        }
        double sum = 0.0;
        for (int64_t j = 0; j < B; j++) {
            sum += exp((double)S[base + j * step] - m);
        }
        loss += log(sum) - ((double)S[base + i * step] - m);
        if (g) {
            for (int64_t j = 0; j < B; j++) {
                double p = exp((double)S[base + j * step] - m) / sum;
                g[base + j * step] += k * (p - (j == i ? 1.0 : 0.0));
            }
        }
    }
    return loss;
}

/* Without its scratch the loss cannot be computed (kernels.h, KERNEL ERRORS): NaN gradients
 * and loss, the error recorded. Frees what was allocated. */
static double no_scratch(const char *kernel, float *dimg, float *dtxt, int64_t B, int64_t E,
                         float *S, double *g)
{
    free(S);
    free(g);
    kern_error(MPSL_ERR_NOMEM, "%s: out of memory for the %lld x %lld similarity matrix",
               kernel, (long long)B, (long long)B);
    for (int64_t i = 0; i < B * E; i++) {
        if (dimg) {
            dimg[i] = NAN;
        }
        if (dtxt) {
            dtxt[i] = NAN;
        }
    }
    return NAN;
}

double kern_contrastive_loss(float *dimg, float *dtxt, const float *img, const float *txt,
                             int64_t B, int64_t E, float scale)
{
    // dimg (B,E), dtxt (B,E), img (B,E), txt (B,E)
    assert(B >= 0 && E > 0);
    if (B == 0) {
        return 0.0;
    }
    float *S = kern_alloc((size_t)(B * B) * sizeof(float));
    double *g = (dimg || dtxt) ? kern_alloc((size_t)(B * B) * sizeof(double)) : NULL;
    if (!S || (!g && (dimg || dtxt))) {
        return no_scratch("contrastive_loss", dimg, dtxt, B, E, S, g);
    }
    if (g) {
        memset(g, 0, (size_t)(B * B) * sizeof(double));
    }
    // S (B,B) = img txt^T: a linear layer with weights txt (counts 2*B*B*E)
    kern_linear_forward(S, img, txt, NULL, B, E, B);
    double k = 0.5 * (double)scale / (double)B;
    double loss = 0.5 * (ce_diag(S, B, 0, g, k) + ce_diag(S, B, 1, g, k)) / (double)B;
    flops_add(MPSL_PASS_FORWARD, 6.0 * (double)B * (double)B);
    if (g) {
        for (int64_t i = 0; i < B * B; i++) {
            S[i] = (float)g[i];   // S now holds dS
        }
        flops_add(MPSL_PASS_BACKWARD, 2.0 * (double)B * (double)B);
        // dimg = dS txt, dtxt = dS^T img: the backward of that linear layer
        if (dtxt) {
            memset(dtxt, 0, (size_t)(B * E) * sizeof(float));
        }
        kern_linear_backward(dimg, dtxt, NULL, S, img, txt, B, E, B);
    }
    free(S);
    free(g);
    return loss;
}

double kern_contrastive_loss_ref(float *dimg, float *dtxt, const float *img, const float *txt,
                                 int64_t B, int64_t E, float scale)
{
    // dimg (B,E), dtxt (B,E), img (B,E), txt (B,E)
    assert(B >= 0 && E > 0);
    if (B == 0) {
        return 0.0;
    }
    float *S = kern_alloc((size_t)(B * B) * sizeof(float));
    double *g = kern_alloc((size_t)(B * B) * sizeof(double));
    if (!S || !g) {
        return no_scratch("contrastive_loss_ref", dimg, dtxt, B, E, S, g);
    }
    memset(g, 0, (size_t)(B * B) * sizeof(double));
    for (int64_t i = 0; i < B; i++) {
        for (int64_t j = 0; j < B; j++) {
            double dot = 0.0;
            for (int64_t e = 0; e < E; e++) {
                dot += (double)img[i * E + e] * txt[j * E + e];
            }
            S[i * B + j] = (float)dot;
        }
    }
    double k = 0.5 * (double)scale / (double)B;
    double loss = 0.5 * (ce_diag(S, B, 0, g, k) + ce_diag(S, B, 1, g, k)) / (double)B;
    flops_add(MPSL_PASS_FORWARD, 2.0 * (double)B * (double)B * (double)E +
                                     6.0 * (double)B * (double)B);
    if (dimg || dtxt) {
        flops_add(MPSL_PASS_BACKWARD, 2.0 * (double)B * (double)B);
    }
    for (int64_t i = 0; i < B; i++) {
        for (int64_t e = 0; e < E; e++) {
            double ai = 0.0, at = 0.0;
            for (int64_t j = 0; j < B; j++) {
                ai += g[i * B + j] * txt[j * E + e];   // dimg[i] = sum_j dS[i,j] txt[j]
                at += g[j * B + i] * img[j * E + e];   // dtxt[i] = sum_j dS[j,i] img[j]
            }
            if (dimg) {
                dimg[i * E + e] = (float)ai;
            }
            if (dtxt) {
                dtxt[i * E + e] = (float)at;
            }
        }
    }
    if (dimg) {
        flops_add(MPSL_PASS_BACKWARD, 2.0 * (double)B * (double)B * (double)E);
    }
    if (dtxt) {
        flops_add(MPSL_PASS_BACKWARD, 2.0 * (double)B * (double)B * (double)E);
    }
    free(S);
    free(g);
    return loss;
}
