/* embedding.c: token embedding lookup (text tokenizers). The gradient scatter runs parallel
 * over blocks of columns, so repeated ids accumulate without races and in input order. An id
 * outside [0,V) is never followed (kernels.h, KERNEL ERRORS). */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "flops.h"
#include "kernels.h"

typedef struct {
    float *out;
    const float *src;
    const int32_t *ids;
    int64_t N, V, D;
} emb_ctx;

/* Records an id outside [0,V) at row n (kernels.h, KERNEL ERRORS). */
static void bad_id(const char *kernel, int64_t n, int32_t id, int64_t V)
{
    kern_error(MPSL_ERR_INVALID, "%s: id %d at row %lld is outside the vocabulary 0..%lld",
               kernel, (int)id, (long long)n, (long long)(V - 1));
}

static void emb_fwd_range(void *p, int64_t begin, int64_t end, int part)
{
    emb_ctx *c = p;
    for (int64_t n = begin; n < end; n++) {
        int32_t id = c->ids[n];
        if (id < 0 || id >= c->V) {
            bad_id("embedding_forward", n, id, c->V);
            for (int64_t d = 0; d < c->D; d++) {
                c->out[n * c->D + d] = NAN;
            }
            continue;
        }
        memcpy(c->out + n * c->D, c->src + (int64_t)id * c->D, (size_t)c->D * sizeof(float));
    }
}

void kern_embedding_forward(float *out, const int32_t *ids, const float *table, int64_t N,
                            int64_t V, int64_t D)
{
    // out (N,D), ids (N), table (V,D)
    assert(N >= 0 && V > 0 && D > 0);
    emb_ctx c = {out, table, ids, N, V, D};
    int64_t grain = 16384 / D;
    kern_parallel_for(N, grain > 0 ? grain : 1, emb_fwd_range, &c);
}

/* columns [16*begin, 16*end) of every row */
static void emb_bwd_range(void *p, int64_t begin, int64_t end, int part)
{
    emb_ctx *c = p;
    int64_t D = c->D, d0 = 16 * begin, d1 = 16 * end < D ? 16 * end : D;
    for (int64_t n = 0; n < c->N; n++) {
        int32_t id = c->ids[n];
        if (id < 0 || id >= c->V) {
            if (begin == 0) {   // once, not once per block of columns
                bad_id("embedding_backward", n, id, c->V);
            }
            continue;
        }
        float *dst = c->out + (int64_t)id * D;
        const float *g = c->src + n * D;
        for (int64_t d = d0; d < d1; d++) {
            dst[d] += g[d];
        }
    }
}

void kern_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int64_t N,
                             int64_t V, int64_t D)
{
    // dtable (V,D) accumulated, dout (N,D), ids (N)
    assert(N >= 0 && V > 0 && D > 0);
    if (!dtable) {
        return;
    }
    emb_ctx c = {dtable, dout, ids, N, V, D};
    int64_t grain = 16384 / (16 * (N > 0 ? N : 1));
    kern_parallel_for((D + 15) / 16, grain > 0 ? grain : 1, emb_bwd_range, &c);
    flops_add(MPSL_PASS_BACKWARD, (double)N * (double)D);
}

void kern_embedding_backward_ref(float *dtable, const float *dout, const int32_t *ids,
                                 int64_t N, int64_t V, int64_t D)
{
    // dtable (V,D) accumulated, dout (N,D), ids (N)
    assert(N >= 0 && V > 0 && D > 0);
    if (!dtable) {
        return;
    }
    for (int64_t n = 0; n < N; n++) {
        if (ids[n] < 0 || ids[n] >= V) {
            bad_id("embedding_backward_ref", n, ids[n], V);
            continue;
        }
        for (int64_t d = 0; d < D; d++) {
            dtable[(int64_t)ids[n] * D + d] += dout[n * D + d];
        }
    }
    flops_add(MPSL_PASS_BACKWARD, (double)N * (double)D);
}
