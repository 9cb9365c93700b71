/* linear.c: fully connected layer, out = inp @ w^T + b, through kern_gemm (gemm.h: our
 * AVX-512 GEMM or OpenBLAS in float32, or bf16 under train.precision), with a triple-loop
 * reference beside it. Weights are (OC,IC) as in PyTorch's nn.Linear. Each GEMM is split into row (or column) slices over the kernel
 * threads, each slice one single-threaded sgemm (kernels.h explains why). */
#include <assert.h>
#include <string.h>

#include "flops.h"
#include "gemm.h"
#include "kernels.h"
#include "vecmath.h"

/* FLOPs of GEMM work per thread below which splitting costs more than it saves. 2^21: a
 * FedAvg client's batch-1 step of the quickstart's model (34 tokens, width 64) split its
 * linear layers in two at 2^19, and the hand-off to the second thread cost more than the
 * half it took: 1000 clients' epoch 6.5 s on 2 threads against 5.4 s on 1; at 2^21 those
 * layers run on the calling thread, 5.5 s on 2 threads (2-core Zen 5 VM). Where the split
 * happens does not change any result's bits (rows and dw's rows are independent). */
#define LINEAR_GRAIN_FLOPS (1 << 21)
/* Slices start at multiples of this many rows (columns): a multiple of the GEMM's register
 * blocking along M (OpenBLAS Haswell 16, ours 12), so that slices other than the last have
 * no ragged micro-kernel edge. Ours uses 24 rather than 48 so that the small sides of dw
 * (OC = 576: 24 blocks) divide evenly into the pool's 8 slices. */
static int64_t linear_align(void) { return kern_sgemm_backend() == KERN_GEMM_AVX512 ? 24 : 16; }

typedef struct {
    float *out, *db;   // out: out, dinp or dw
    const float *inp, *w, *b, *dout;
    int64_t N, IC, OC;
    kern_gemm_b gb;    // op(B) of the slices' GEMM, readied once for all of them
} linear_ctx;

/* Blocks [begin, end) of linear_align() rows, clipped to n: rows [*r0, *r1). */
static void block_rows(int64_t begin, int64_t end, int64_t n, int64_t *r0, int64_t *r1)
{
    int64_t a = linear_align();
    *r0 = begin * a;
    *r1 = end * a < n ? end * a : n;
}

static int64_t n_blocks(int64_t n) { return (n + linear_align() - 1) / linear_align(); }

/* Blocks per thread so that each gets at least LINEAR_GRAIN_FLOPS of a GEMM with `row` FLOPs
 * per row. */
static int64_t blocks_grain(double row)
{
    double g = (double)LINEAR_GRAIN_FLOPS / ((row > 1.0 ? row : 1.0) * (double)linear_align());
    return g < 1.0 ? 1 : (int64_t)g;
}

/* dw's GEMMs have K = N (all tokens), and every slice packs the whole of the operand that is
 * not split (N x IC of inp, or OC x N of dout), so they use fewer, larger slices: at most
 * LINEAR_DW_SLICES_PER_THREAD per thread instead of the pool's 4 (on the 2-core VM, 2 was
 * as fast as 1 or 4 within the run-to-run noise of a step, ~3%; 2 keeps some balancing when
 * another process takes a core). */
#ifndef LINEAR_DW_SLICES_PER_THREAD
#define LINEAR_DW_SLICES_PER_THREAD 2
#endif
static int64_t dw_grain(int64_t blocks, double row)
{
    int64_t g = blocks / ((int64_t)kern_threads() * LINEAR_DW_SLICES_PER_THREAD);
    int64_t min = blocks_grain(row);
    return g > min ? g : min;
}

/* rows of out = inp @ w^T + b */
static void linear_fwd_range(void *p, int64_t bb, int64_t be, int part)
{
    linear_ctx *c = p;
    int64_t IC = c->IC, OC = c->OC, begin, end;
    block_rows(bb, be, c->N, &begin, &end);
    float beta = 0.0f;
    if (c->b) {
        for (int64_t n = begin; n < end; n++) {
            memcpy(c->out + n * OC, c->b, (size_t)OC * sizeof(float));
        }
        beta = 1.0f;
    }
    kern_gemm_b_rows(&c->gb, 0, end - begin, 1.0f, c->inp + begin * IC, IC, beta,
                     c->out + begin * OC, OC);
}

void kern_linear_forward(float *out, const float *inp, const float *w, const float *b,
                         int64_t N, int64_t IC, int64_t OC)
{
    // out (N,OC), inp (N,IC), w (OC,IC), b (OC)
    assert(N >= 0 && IC > 0 && OC > 0);
    if (N > 0) {
        linear_ctx c = {out, NULL, inp, w, b, NULL, N, IC, OC, {0}};
        kern_gemm_b_prepare(&c.gb, 1, IC, OC, w, IC);   // w^T
        kern_parallel_for(n_blocks(N), blocks_grain(2.0 * (double)IC * (double)OC),
                          linear_fwd_range, &c);
    }
    if (b) {
        flops_add(MPSL_PASS_FORWARD, (double)N * (double)OC);
    }
    flops_add(MPSL_PASS_FORWARD, 2.0 * (double)N * (double)IC * (double)OC);
}

/* rows of dinp = dout @ w */
static void linear_dinp_range(void *p, int64_t bb, int64_t be, int part)
{
    linear_ctx *c = p;
    int64_t IC = c->IC, OC = c->OC, begin, end;
    block_rows(bb, be, c->N, &begin, &end);
    kern_gemm_b_rows(&c->gb, 0, end - begin, 1.0f, c->dout + begin * OC, OC, 0.0f,
                     c->out + begin * IC, IC);
}

/* rows of dw += dout^T @ inp, and of db += column sums of dout */
static void linear_dw_rows(void *p, int64_t bb, int64_t be, int part)
{
    linear_ctx *c = p;
    int64_t N = c->N, IC = c->IC, OC = c->OC, begin, end;
    block_rows(bb, be, OC, &begin, &end);
    float *dw = c->out, *db = c->db;
    if (dw) {
        kern_gemm_b_rows(&c->gb, 1, end - begin, 1.0f, c->dout + begin, OC, 1.0f,
                         dw + begin * IC, IC);
    }
    if (db) {
        kern_colsum_acc(db, c->dout, N, OC, begin, end);
    }
}

/* columns of dw += dout^T @ inp (when IC is the wider side) */
static void linear_dw_cols(void *p, int64_t bb, int64_t be, int part)
{
    linear_ctx *c = p;
    int64_t N = c->N, IC = c->IC, OC = c->OC, begin, end;
    block_rows(bb, be, IC, &begin, &end);
    kern_gemm(1, 0, OC, end - begin, N, 1.0f, c->dout, OC, c->inp + begin, IC, 1.0f,
               c->out + begin, IC);
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
            linear_ctx c = {dinp, NULL, NULL, w, NULL, dout, N, IC, OC, {0}};
            kern_gemm_b_prepare(&c.gb, 0, OC, IC, w, IC);
            kern_parallel_for(n_blocks(N), blocks_grain(2.0 * (double)IC * (double)OC),
                              linear_dinp_range, &c);
        }
        flops_add(MPSL_PASS_BACKWARD, mm);
    }
    if ((dw || db) && N > 0) {
        // split dw over its longer side, or under bf16 over its rows with inp packed once for
        // all slices (gemm_shared_b.c); db rides along with rows or gets its own pass
        if (!dw || OC >= IC || kern_precision_bf16()) {
            linear_ctx c = {dw, db, inp, NULL, NULL, dout, N, IC, OC, {0}};
            if (dw) {
                kern_gemm_b_prepare(&c.gb, 0, N, IC, inp, IC);
            }
            double row = dw ? 2.0 * (double)N * (double)IC : (double)N;
            kern_parallel_for(n_blocks(OC), dw_grain(n_blocks(OC), row), linear_dw_rows, &c);
        } else {
            linear_ctx c = {dw, NULL, inp, NULL, NULL, dout, N, IC, OC, {0}};
            kern_parallel_for(n_blocks(IC), dw_grain(n_blocks(IC), 2.0 * (double)N * (double)OC),
                              linear_dw_cols, &c);
            if (db) {
                kern_colsum_acc(db, dout, N, OC, 0, OC);
            }
        }
    }
    if (dw) {
        flops_add(MPSL_PASS_BACKWARD, mm);
    }
    if (db) {
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
