/* kernels.h: the float32 numeric kernels shared by core and plugins (plugins reach them
 * through mpsl_host.kernels = kernels_table()). Each fast kernel has a plain reference
 * version beside it (*_ref) that the tests compare against.
 *
 * Sizes: B batch, T tokens, D width, C classes, N rows, IC/OC input/output features,
 * P patch side. Arguments follow llm.c: outputs, inputs, weights, sizes.
 *
 * Gradients: backward functions ACCUMULATE (+=) into weight gradients (dw, db) and OVERWRITE
 * input gradients (dinp), except meanpool_backward, which accumulates into dinp as plugin.h
 * documents (so several pooled ranges can share one dinp). A NULL gradient pointer skips that
 * gradient and its FLOPs. Elementwise backward kernels allow dinp == dout (in place).
 *
 * FLOP convention (what flops_add receives; one multiply-add counts 2):
 *   linear_forward          2*N*IC*OC, plus N*OC when b is non-NULL          (forward)
 *   linear_backward         2*N*IC*OC for dinp, 2*N*IC*OC for dw, N*OC for db (backward)
 *   relu_forward/backward   N (one per element)                     (forward / backward)
 *   meanpool_forward        B*len*D (one add per element read)                 (forward)
 *   meanpool_backward       B*len*D (one add per element written)             (backward)
 *   cross_entropy           3*B*C forward (max, exp, sum per logit); plus B*C backward
 *                           when dlogits is non-NULL
 *   patch_gather            0 (pure data movement)
 * Reference versions count exactly as their fast versions do.
 */
#ifndef MPSL_KERNELS_H
#define MPSL_KERNELS_H

#include <stdint.h>

#include "mpsl/plugin.h"

/* The table handed to plugins (size = sizeof(mpsl_kernels)). Static, never freed. */
const mpsl_kernels *kernels_table(void);

/* out (N,OC) = inp (N,IC) @ w (OC,IC)^T + b (OC, or NULL). OpenBLAS sgemm. */
void kern_linear_forward(float *out, const float *inp, const float *w, const float *b,
                         int64_t N, int64_t IC, int64_t OC);
/* dinp (N,IC) = dout (N,OC) @ w;  dw (OC,IC) += dout^T @ inp;  db (OC) += sum_n dout.
 * Any of dinp, dw, db may be NULL. */
void kern_linear_backward(float *dinp, float *dw, float *db, const float *dout,
                          const float *inp, const float *w, int64_t N, int64_t IC,
                          int64_t OC);
/* Triple-loop versions of the two above (same contract, same FLOP counts). */
void kern_linear_forward_ref(float *out, const float *inp, const float *w, const float *b,
                             int64_t N, int64_t IC, int64_t OC);
void kern_linear_backward_ref(float *dinp, float *dw, float *db, const float *dout,
                              const float *inp, const float *w, int64_t N, int64_t IC,
                              int64_t OC);

/* out (N) = max(inp, 0);  dinp (N) = dout * (inp > 0). out == inp and dinp == dout allowed. */
void kern_relu_forward(float *out, const float *inp, int64_t N);
void kern_relu_backward(float *dinp, const float *dout, const float *inp, int64_t N);

/* out (B,D) = mean of inp (B,T,D) over tokens [t0, t0+len); len >= 1, t0+len <= T. */
void kern_meanpool_forward(float *out, const float *inp, int64_t B, int64_t T, int64_t D,
                           int64_t t0, int64_t len);
/* dinp (B,T,D) += dout (B,D) / len on tokens [t0, t0+len); other tokens untouched. */
void kern_meanpool_backward(float *dinp, const float *dout, int64_t B, int64_t T, int64_t D,
                            int64_t t0, int64_t len);

/* Softmax cross-entropy of logits (B,C) against labels (B) in [0,C) (asserted). Returns the
 * mean loss over the batch (computed stably: max subtracted, sums in double). dlogits (B,C),
 * if non-NULL, receives scale * d(mean loss)/dlogits = scale * (softmax - onehot) / B.
 * *correct (may be NULL) receives the number of rows whose argmax (first on ties) is the
 * label. B == 0 returns 0. */
double kern_cross_entropy(float *dlogits, const float *logits, const int32_t *labels,
                          int64_t B, int64_t C, float scale, int64_t *correct);

/* out (B, nP, Cin*P*P) from img (B,Cin,H,W), nP = (H/P)*(W/P), patches row-major, features
 * in (c, py, px) order as a stride-P convolution's weight. H and W must be multiples of P. */
void kern_patch_gather(float *out, const float *img, int64_t B, int64_t Cin, int64_t H,
                       int64_t W, int64_t P);
void kern_patch_gather_ref(float *out, const float *img, int64_t B, int64_t Cin, int64_t H,
                           int64_t W, int64_t P);

#endif
