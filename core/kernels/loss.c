/* loss.c: softmax cross-entropy, the loss every strategy computes on logits. */
#include <assert.h>
#include <math.h>

#include "flops.h"
#include "kernels.h"

double kern_cross_entropy(float *dlogits, const float *logits, const int32_t *labels,
                          int64_t B, int64_t C, float scale, int64_t *correct)
{
    // dlogits (B,C) or NULL, logits (B,C), labels (B)
    assert(B >= 0 && C > 0);
    double loss = 0.0;
    int64_t hits = 0;
    for (int64_t b = 0; b < B; b++) {
        const float *z = logits + b * C;
        int32_t y = labels[b];
        if (y < 0 || y >= C) {
            // a label outside [0,C): z[y] is not read, the loss and this row's gradient are NaN
            kern_error(MPSL_ERR_INVALID, "cross_entropy: sample %lld has label %d, outside "
                       "0..%lld", (long long)b, (int)y, (long long)(C - 1));
            loss = NAN;
            if (dlogits) {
                for (int64_t c = 0; c < C; c++) {
                    dlogits[b * C + c] = NAN;
                }
            }
            continue;
        }
        int64_t arg = 0;
        float zmax = z[0];
        for (int64_t c = 1; c < C; c++) {
            if (z[c] > zmax) {
                zmax = z[c];
                arg = c;
            }
        }
        hits += arg == y;
        double sum = 0.0;
        for (int64_t c = 0; c < C; c++) {
            sum += exp((double)z[c] - (double)zmax);
        }
        // -log softmax_y = log(sum) - (z_y - zmax)
        loss += log(sum) - ((double)z[y] - (double)zmax);
        if (dlogits) {
            double k = (double)scale / (double)B;
            float *dz = dlogits + b * C;
            for (int64_t c = 0; c < C; c++) {
                double p = exp((double)z[c] - (double)zmax) / sum;
                dz[c] = (float)(k * (p - (c == y ? 1.0 : 0.0)));
            }
        }
    }
    flops_add(MPSL_PASS_FORWARD, 3.0 * (double)B * (double)C);
    if (dlogits) {
        flops_add(MPSL_PASS_BACKWARD, (double)B * (double)C);
    }
    if (correct) {
        *correct = hits;
    }
    return B > 0 ? loss / (double)B : 0.0;
}
