/* precision.c: the matrix products of the linear layers and of attention (forward and
 * backward) in float32, or with train.precision: bf16 in bfloat16 with float32 accumulation
 * (gemm_bf16.h), PyTorch's CPU autocast split: everything else (LayerNorm, softmax, GELU,
 * losses, reductions, optimizer state, the weights themselves) stays float32. One switch per
 * process, set by the run before its roles start and left alone while kernels run. */
#include "gemm.h"
#include "gemm_bf16.h"
#include "kernels.h"

static int bf16_on;

int kern_set_precision_bf16(int on)
{
    bf16_on = on && kern_gemm_bf16_supported();
    return bf16_on;
}

int kern_precision_bf16(void) { return bf16_on; }

void kern_gemm(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
               const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
               int64_t ldc)
{
    if (bf16_on) {
        kern_gemm_bf16(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    } else {
        kern_sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    }
}
