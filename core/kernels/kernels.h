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
 *   layernorm_forward       7*N*C (sum, subtract, square, accumulate, *rstd, *w, +b)
 *   layernorm_backward      10*N*C for dinp (normalise 2, dout*w 1, the two row sums 3,
 *                           combine 4), 2*N*C for dw, N*C for db (backward)
 *   gelu_forward            8*N (x*x, *-1/2, exp, /sqrt2, erf, +1, *1/2, *x; exp, erf = 1)
 *   gelu_backward           11*N (the same Phi 7, x*exp, *1/sqrt(2pi), +Phi, *dout)
 *   attention_forward       4*B*H*T*T*(D/H) for q k^T and P v, plus 5*B*H*T*T for the
 *                           softmax (max, subtract, exp, sum, normalise); the 1/sqrt(D/H)
 *                           scale rides in the GEMM and is not counted
 *   attention_backward      8*B*H*T*T*(D/H) for dP, dv, dq, dk, plus 4*B*H*T*T for the
 *                           softmax backward (P*dP multiply-accumulate, subtract, multiply)
 *   add                     N                                                  (forward)
 *   bias_add_forward        B*M; bias_add_backward B*M               (forward / backward)
 *   patch_gather_strided    0
 *   embedding_forward       0; embedding_backward N*D                         (backward)
 *   token_select_forward    0; token_select_backward B*D                      (backward)
 *   contrastive_loss        forward 2*B*B*E (similarities) + 6*B*B (each direction's
 *                           softmax cross-entropy 3*B*B, as cross_entropy); backward, when
 *                           dimg or dtxt is non-NULL, 2*B*B (B*B per direction) plus
 *                           2*B*B*E for each of dimg, dtxt requested
 *   l2norm_forward          3*N*C (square-accumulate, * scale/norm)              (forward)
 *   l2norm_backward         2*N*C (row dots x . dout, also giving dscale) plus 3*N*C when
 *                           dinp is non-NULL (* x, subtract, * scale/norm)      (backward)
 * Reference versions count exactly as their fast versions do. Kernels whose gradient pointer
 * is NULL (attention, gelu, bias_add, embedding, token_select) do nothing and count nothing.
 *
 * GEMM DISPATCH. Every GEMM of the kernels (linear, attention) goes through kern_sgemm
 * (gemm.h): our AVX-512 GEMM (gemm_avx512.c: 12x32 micro-kernel, KC 256, NC 768, MC 96)
 * on CPUs with AVX-512F, OpenBLAS's cblas_sgemm elsewhere or with MPSL_GEMM=openblas
 * (MPSL_GEMM=avx512 asks for ours). OPENBLAS_CORETYPE is left as the environment sets it
 * (Haswell here). tests/kernels/gemm_bench on the 2-core Zen 5 VM, idle, GFLOP/s, 1 thread /
 * 2 threads (pool slices, one kern_sgemm each); single-thread figures vary by ~10% between
 * runs on this VM (ours 215-258 on these shapes):
 *                                   OpenBLAS (Haswell)    ours (AVX-512)
 *   2048^3 (N.T)                    128 / 248             226 / 431
 *   fwd qkv 3152x576x192 (N.T)      126 / 249             244 / 484
 *   fwd fc1 3152x768x192 (N.T)      125 / 247             234 / 474
 *   fwd fc2 3152x192x768 (N.T)      120 / 243             217 / 466
 *   dinp fc1 3152x192x768 (N.N)     120 / 243             215 / 453
 *   dw fc1 768x192x3152 (T.N)       120 / 234             218 / 425
 *   dw qkv 576x192x3152 (T.N)       121 / 202             217 / 414
 *   attention 197x197x64 (N.T)      114 (1 thread)        206-214
 * (OpenBLAS's own AVX-512 SkylakeX kernel, for comparison only: ~466 at 2 threads on 2048^3.)
 * Per ViT-Ti step (bench_vit --profile): linear 452 -> ~265 ms, attention 98 -> ~65 ms; the
 * step 585 -> 366 ms (bench/run.sh, docs/benchmarks.md). dw's GEMMs use at most 2 slices per
 * thread (linear.c), since each slice repacks the operand that is not split.
 *
 * THREADING. Measured on this project's 2-core AMD EPYC (Zen 5) VM, OpenBLAS 0.3.21 pthread
 * build, OPENBLAS_CORETYPE=Haswell, best of several runs on a machine shared with other
 * builds (bench/kernels_micro.c), before the AVX-512 GEMM (MPSL_GEMM=openblas):
 *   sgemm peak, one thread (1024^3)                  ~125 GFLOP/s
 *   linear fwd+bwd, 4 ViT-Ti shapes (N=3152)        67.4 ms 1 thread; 2 threads: 37.4 ms
 *                                                    with the pool, 40.4 ms with OpenBLAS's
 *                                                    own 2 threads on whole GEMMs
 *   linear fwd 3152x192->576, 1 thread               125 GFLOP/s (raw cblas_sgemm: 126)
 *   linear fwd, 2 threads                            up to 226-238 GFLOP/s
 *   attention B16 T197 D192 H3                       fwd 6.0 ms / bwd 9.7-10.3 ms on 1 thread;
 *                                                    fwd 3.0 ms on 2 threads
 *   attention B64 T50 D128 H4 (1 thread)             fwd 1.7 ms / bwd 1.9-2.0 ms
 *   gelu 3152x768 (1 thread)                         fwd 1.4 ms / bwd 1.6 ms (libm erff: 6.8)
 *   layernorm 3152x192 (1 thread)                    fwd 0.15 ms / bwd 0.22 ms
 * With the second core busy with another process, a region degrades to about the one-thread
 * time (the caller claims the slices the worker does not get to), but a worker preempted in
 * the middle of a slice delays the region's end: on a fully loaded machine one thread can be
 * faster (MPSL_THREADS=1).
 * The kernels run on their own small pool (parallel.c): kern_threads() threads, the caller
 * included, persistent workers that spin ~0.1 ms after a job and then sleep on a condition
 * variable, so no environment variable is needed and an idle process uses no CPU. Threads
 * claim slices of each job dynamically, so a worker that does not get a core costs nothing but
 * its absence. OpenBLAS is set to ONE thread (openblas_set_num_threads(1)
 * when the pool starts): every GEMM is split by the pool into row slices (linear: rows of the
 * output, dw over its longer side; attention: (sample, head) pairs), each a single-threaded
 * kern_sgemm (ours is always single-threaded; it keeps its packing buffers per thread).
 * Two pools spinning on 2 cores (OpenBLAS's workers spin for a while after each call)
 * would fight each other; one pool cannot. Any code in the process that calls cblas directly
 * therefore gets single-threaded BLAS once the kernels have run.
 * Results do not depend on the thread count, except that OpenBLAS's Haswell sgemm rounds a
 * row differently depending on where it falls in its blocking: GEMM outputs differ between
 * thread counts by about an ulp (~1e-6 relative). Ours sums each element over k in the same
 * order wherever its row falls, so its results do not depend on the slicing; the two backends
 * differ from each other by about an ulp. Reductions (bias, LayerNorm and embedding
 * gradients) are split over columns and sum rows in order, so they are bitwise identical.
 */
#ifndef MPSL_KERNELS_H
#define MPSL_KERNELS_H

#include <stdint.h>

#include "mpsl/plugin.h"

/* The table handed to plugins (size = sizeof(mpsl_kernels)). Static, never freed. */
const mpsl_kernels *kernels_table(void);
/* The same kernels, each call timed into its kind (table_profiled.c, MPSL_PROFILE). */
const mpsl_kernels *kernels_table_profiled(void);

/* ------------------------------------------------------------------ kernel errors
 *
 * Kernels return nothing (or a loss), and release builds strip assert(), so a kernel that
 * cannot do its work never crashes, never writes out of bounds and never skips quietly:
 * - scratch memory it cannot allocate: attention_backward and the AVX-512 GEMM fall back to
 *   paths that need none (same results up to rounding); contrastive_loss cannot, and fails;
 * - an input out of range (an embedding id outside [0,V), a label outside [0,C)): the row is
 *   not read or written where it would be out of bounds, and the kernel fails.
 * A kernel that fails writes NaN where it could not compute (outputs, input gradients; a
 * loss returns NaN) and records why with kern_error. The host takes the error after every
 * module call (core/train/model.c), so the call fails with the kernel's message; callers
 * that run kernels themselves (tests, benchmarks) take it with kern_error_take.
 * Size arguments (negative counts, D % H != 0) are the caller's contract and stay assert()s. */

/* Records the first error since the last kern_error_take (later ones are dropped until it is
 * taken): status an mpsl_status (MPSL_ERR_NOMEM, MPSL_ERR_INVALID), the message printf-style,
 * naming the kernel. Any thread may call it. */
void kern_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The recorded status (MPSL_OK when none) and its message into msg (size bytes; may be
 * NULL); clears it. */
int kern_error_take(char *msg, size_t size);
/* Scratch memory for kernels: 64-byte aligned, not zeroed, free() it; NULL on failure. */
void *kern_alloc(size_t bytes);
/* Tests: on != 0 makes every kern_alloc fail until called again with 0. */
void kern_test_fail_alloc(int on);
/* How many kern_alloc calls have failed in this process (forced or not). */
long kern_alloc_failures(void);

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

/* Softmax cross-entropy of logits (B,C) against labels (B) in [0,C) (a label outside fails:
 * KERNEL ERRORS, NaN loss and NaN dlogits row). Returns the
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

/* ------------------------------------------------------------------ threads */

/* Threads the kernels use (the caller's thread included): MPSL_THREADS if set to an integer
 * >= 1, else the CPUs this process may run on. kern_set_threads(n) overrides it (n <= 0
 * restores the default); call it between kernels, not during one. */
int kern_threads(void);
void kern_set_threads(int n);

/* Runs fn(ctx, begin, end, part) over contiguous slices of [0, n): slice `part` is
 * [n*part/S, n*(part+1)/S) with S <= 4*kern_threads() slices of at least `grain` items each
 * (one slice, in the calling thread, when n < 2*grain or one thread is set). The threads,
 * the caller's included, claim slices in order as they come free, so which thread runs a slice
 * varies but the slices do not. Returns when all are done. Nested calls, and calls while
 * another thread's region runs, run serially in the caller as one slice. */
typedef void (*kern_range_fn)(void *ctx, int64_t begin, int64_t end, int part);
void kern_parallel_for(int64_t n, int64_t grain, kern_range_fn fn, void *ctx);

/* ------------------------------------------------------------------ transformer kernels */

/* LayerNorm over the last dimension as torch.nn.LayerNorm: biased variance, eps inside the
 * square root. out (N,C), mean (N), rstd (N) saved for backward, inp (N,C), w, b (C). */
void kern_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                            const float *w, const float *b, int64_t N, int64_t C, float eps);
/* dinp (N,C) written; dw, db (C) accumulated; any of the three may be NULL. */
void kern_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                             const float *inp, const float *w, const float *mean,
                             const float *rstd, int64_t N, int64_t C);
void kern_layernorm_forward_ref(float *out, float *mean, float *rstd, const float *inp,
                                const float *w, const float *b, int64_t N, int64_t C,
                                float eps);
void kern_layernorm_backward_ref(float *dinp, float *dw, float *db, const float *dout,
                                 const float *inp, const float *w, const float *mean,
                                 const float *rstd, int64_t N, int64_t C);

/* Exact (erf) GELU as torch.nn.GELU(): out (N) = x * Phi(x). The fast version evaluates erf
 * with the same rational approximation as PyTorch's vectorised CPU kernel (absolute error
 * below 2e-7); the reference calls erff. dinp (N) = dout * (Phi(x) + x * phi(x)).
 * out == inp and dinp == dout allowed. */
void kern_gelu_forward(float *out, const float *inp, int64_t N);
void kern_gelu_backward(float *dinp, const float *dout, const float *inp, int64_t N);
void kern_gelu_forward_ref(float *out, const float *inp, int64_t N);
void kern_gelu_backward_ref(float *dinp, const float *dout, const float *inp, int64_t N);

/* Multi-head self-attention without mask, as timm's Attention between qkv and proj:
 * qkv (B,T,3D) = reshape(B,T,3,H,D/H), out (B,T,D) heads concatenated, att (B,H,T,T) the
 * softmax probabilities of (q k^T) / sqrt(D/H). dqkv (B,T,3D) written (NULL: nothing). */
void kern_attention_forward(float *out, float *att, const float *qkv, int64_t B, int64_t T,
                            int64_t D, int64_t H);
void kern_attention_backward(float *dqkv, const float *dout, const float *qkv,
                             const float *att, int64_t B, int64_t T, int64_t D, int64_t H);
void kern_attention_forward_ref(float *out, float *att, const float *qkv, int64_t B,
                                int64_t T, int64_t D, int64_t H);
void kern_attention_backward_ref(float *dqkv, const float *dout, const float *qkv,
                                 const float *att, int64_t B, int64_t T, int64_t D,
                                 int64_t H);

/* out (N) = a + b (out may alias a or b). */
void kern_add(float *out, const float *a, const float *b, int64_t N);
/* out (B,M) = inp (B,M) + bias (M), out may alias inp; dbias (M) += sum over B of dout
 * (B,M) (dbias NULL: nothing). */
void kern_bias_add_forward(float *out, const float *inp, const float *bias, int64_t B,
                           int64_t M);
void kern_bias_add_backward(float *dbias, const float *dout, int64_t B, int64_t M);

/* Strided (possibly overlapping) patches: out (B, nH*nW, Cin*Ph*Pw) from img (B,Cin,H,W),
 * nH = (H-Ph)/Sh + 1, nW = (W-Pw)/Sw + 1 (Ph <= H, Pw <= W), features in (c, py, px) order. */
void kern_patch_gather_strided(float *out, const float *img, int64_t B, int64_t Cin,
                               int64_t H, int64_t W, int64_t Ph, int64_t Pw, int64_t Sh,
                               int64_t Sw);
void kern_patch_gather_strided_ref(float *out, const float *img, int64_t B, int64_t Cin,
                                   int64_t H, int64_t W, int64_t Ph, int64_t Pw, int64_t Sh,
                                   int64_t Sw);

/* out (N,D) = table (V,D) rows ids (N); dtable (V,D) += scatter of dout (N,D) (repeated ids
 * accumulate; dtable NULL: nothing). An id outside [0,V) fails (KERNEL ERRORS): its out row
 * is NaN, its dout row is not scattered. */
void kern_embedding_forward(float *out, const int32_t *ids, const float *table, int64_t N,
                            int64_t V, int64_t D);
void kern_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int64_t N,
                             int64_t V, int64_t D);
void kern_embedding_backward_ref(float *dtable, const float *dout, const int32_t *ids,
                                 int64_t N, int64_t V, int64_t D);

/* out (B,D) = inp (B,T,D)[:, t, :];  dinp (B,T,D)[:, t, :] += dout (B,D), other tokens
 * untouched (like meanpool_backward). */
void kern_token_select_forward(float *out, const float *inp, int64_t B, int64_t T, int64_t D,
                               int64_t t);
void kern_token_select_backward(float *dinp, const float *dout, int64_t B, int64_t T,
                                int64_t D, int64_t t);

/* Symmetric contrastive loss: S = img (B,E) @ txt (B,E)^T of raw dot products, loss =
 * (CE(S, diag) + CE(S^T, diag)) / 2 with CE the mean cross-entropy (softmax in double, max
 * subtracted). dimg, dtxt (B,E) (either may be NULL) are written with scale * gradient.
 * Returns the loss; B == 0 returns 0. Needs (B,B) scratch: without it, fails (KERNEL ERRORS:
 * NaN loss and gradients). */
double kern_contrastive_loss(float *dimg, float *dtxt, const float *img, const float *txt,
                             int64_t B, int64_t E, float scale);
double kern_contrastive_loss_ref(float *dimg, float *dtxt, const float *img, const float *txt,
                                 int64_t B, int64_t E, float scale);

/* Row-wise L2 normalisation times scale, F.normalize(inp, dim=-1) * scale: out (N,C) = scale *
 * inp / max(||row||, 1e-12), rnorm (N) = 1 / that denominator, saved for backward. Backward
 * writes dinp (N,C) (may alias dout; NULL skips it) and accumulates into *dscale (may be
 * NULL) sum(dout * inp * rnorm), the gradient of the scale. The reference backward recomputes
 * the norms in double. */
void kern_l2norm_forward(float *out, float *rnorm, const float *inp, int64_t N, int64_t C,
                         float scale);
void kern_l2norm_backward(float *dinp, float *dscale, const float *dout, const float *inp,
                          const float *rnorm, int64_t N, int64_t C, float scale);
void kern_l2norm_forward_ref(float *out, float *rnorm, const float *inp, int64_t N, int64_t C,
                             float scale);
void kern_l2norm_backward_ref(float *dinp, float *dscale, const float *dout, const float *inp,
                              const float *rnorm, int64_t N, int64_t C, float scale);

#endif
