/* gemm_shared_b.c: one op(B) for all the row slices of a GEMM split over the kernel threads
 * (gemm.h, kern_gemm_b_prepare). Under train.precision: bf16 the native kernel converts
 * op(B) to bf16 pairs while packing it, and with each slice a separate kern_gemm call every
 * slice repeated that work: the forward pass's 8 slices each packed the whole weight, the
 * weight gradient's 4 slices each the layer's whole input (up to a third of those GEMMs'
 * time on ViT-Ti's shapes at 2 threads). Here op(B) is packed once, its units spread over the
 * pool, into a buffer of the calling thread, and every slice reads the same panels. The
 * panels and the order of the sums are the ones each slice would have packed itself, so the
 * result is the same bit for bit. In float32 nothing is packed ahead: kern_sgemm's packing is
 * a plain copy, and its slices keep calling kern_gemm. */
#include <stdlib.h>

#include "gemm.h"
#include "gemm_bf16.h"
#include "kernels.h"

/* Elements of op(B) per pack slice below which one thread packs it all: about what the pool
 * costs to wake (tiny batches' weights stay on the caller). */
#define SHARED_B_GRAIN_ELEMS (1 << 15)

/* The calling thread's panels: grown to the largest op(B) it prepared, kept for the next. */
static _Thread_local uint32_t *tl_panels;
static _Thread_local size_t tl_cap;

typedef struct {
    const kern_gemm_b *g;
    uint32_t *dst;
} pack_job;

static void pack_range(void *p, int64_t begin, int64_t end, int part)
{
    (void)part;
    const pack_job *j = p;
    kern_gemm_bf16_pack_b(j->dst, j->g->transB, j->g->K, j->g->N, j->g->B, j->g->ldb, begin,
                          end);
}

void kern_gemm_b_prepare(kern_gemm_b *g, int transB, int64_t K, int64_t N, const float *B,
                         int64_t ldb)
{
    *g = (kern_gemm_b){.transB = transB, .K = K, .N = N, .B = B, .ldb = ldb, .packed = NULL};
    if (!kern_precision_bf16() || K <= 0 || N <= 0) {
        return;
    }
    size_t bytes = kern_gemm_bf16_packed_b_bytes(K, N);
    if (tl_cap < bytes) {
        uint32_t *p = kern_alloc(bytes);
        if (!p) {
            return;   // the slices pack op(B) themselves, as without this file
        }
        free(tl_panels);
        tl_panels = p;
        tl_cap = bytes;
    }
    int64_t units = kern_gemm_bf16_pack_b_units(K, N);
    int64_t per_unit = (K * N + units - 1) / units;
    int64_t grain = SHARED_B_GRAIN_ELEMS / per_unit;
    pack_job job = {g, tl_panels};
    kern_parallel_for(units, grain > 0 ? grain : 1, pack_range, &job);
    g->packed = tl_panels;
}

void kern_gemm_b_rows(const kern_gemm_b *g, int transA, int64_t M, float alpha,
                      const float *A, int64_t lda, float beta, float *C, int64_t ldc)
{
    if (g->packed && kern_gemm_bf16_packed(transA, M, g->N, g->K, alpha, A, lda, g->packed,
                                           beta, C, ldc) == 0) {
        return;
    }
    kern_gemm(transA, g->transB, M, g->N, g->K, alpha, A, lda, g->B, g->ldb, beta, C, ldc);
}
