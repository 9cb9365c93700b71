/* gemm_bf16.c: kern_gemm_bf16's dispatcher, the bf16 rounding helper and the portable path
 * (gemm_bf16.h has the contract). Compiled for the baseline ISA; the native kernel
 * (gemm_bf16_avx512.c) is only called after checking the CPU. */
#include "gemm_bf16.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "kernels.h"
#include "util/half.h"

static pthread_once_t bf16_once = PTHREAD_ONCE_INIT;
static int cpu_has, use_native;

static void bf16_init(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    // GCC 12's names; each also checks that the OS saves the zmm/opmask state (XCR0)
    cpu_has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
              __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
#else
    cpu_has = 0;
#endif
    const char *env = getenv("MPSL_GEMM_BF16");
    use_native = cpu_has && !(env && strcmp(env, "portable") == 0);
}

int kern_gemm_bf16_cpu_has(void)
{
    pthread_once(&bf16_once, bf16_init);
    return cpu_has;
}

int kern_gemm_bf16_supported(void)
{
    pthread_once(&bf16_once, bf16_init);
    return use_native;
}

float kern_bf16_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u = mpsl_bf16_round_bits(u);
    memcpy(&x, &u, sizeof x);
    return x;
}

void kern_gemm_bf16(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
                    const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                    float *C, int64_t ldc)
{
    if (kern_gemm_bf16_supported()) {
        kern_gemm_bf16_avx512(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    } else {
        kern_gemm_bf16_portable(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    }
}

/* Element by element, no memory: the portable path's last resort. The products of two bf16
 * values are exact in float32, so only the sum rounds, as in the kernels. */
static void gemm_bf16_scalar(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                             const float *A, int64_t lda, const float *B, int64_t ldb,
                             float beta, float *C, int64_t ldc)
{
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < N; j++) {
            float s = 0.0f;
            for (int64_t k = 0; k < K; k++) {
                float a = kern_bf16_round(ta ? A[k * lda + i] : A[i * lda + k]);
                float b = kern_bf16_round(tb ? B[j * ldb + k] : B[k * ldb + j]);
                s += a * b;
            }
            float *c = C + i * ldc + j;
            *c = beta == 0.0f ? alpha * s : alpha * s + beta * *c;
        }
    }
}

/* dst (rows, cols; ld cols) = bf16 rounding of src (rows, cols; ld). */
static void round_block(float *restrict dst, const float *restrict src, int64_t ld,
                        int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *s = src + r * ld;
        float *d = dst + r * cols;
        for (int64_t c = 0; c < cols; c++) {
            uint32_t u;
            memcpy(&u, s + c, sizeof u);
            u = mpsl_bf16_round_bits(u);
            memcpy(d + c, &u, sizeof u);
        }
    }
}

/* Blocks of K (and of M) rounded into scratch, each block one kern_sgemm adding into C:
 * scratch stays small (PK * (N + PM) floats) whatever M is. */
enum { PK = 256, PM = 1024 };

void kern_gemm_bf16_portable(int transA, int transB, int64_t M, int64_t N, int64_t K,
                             float alpha, const float *A, int64_t lda, const float *B,
                             int64_t ldb, float beta, float *C, int64_t ldc)
{
    if (M <= 0 || N <= 0) {
        return;
    }
    if (K <= 0 || alpha == 0.0f) {   // C = beta * C, which kern_sgemm does without A, B
        kern_sgemm(transA, transB, M, N, 0, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int64_t kb_max = K < PK ? K : PK, mb_max = M < PM ? M : PM;
    float *bs = kern_alloc((size_t)(kb_max * N) * sizeof(float));
    float *as = kern_alloc((size_t)(kb_max * mb_max) * sizeof(float));
    if (!bs || !as) {
        free(bs), free(as);
        gemm_bf16_scalar(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    for (int64_t pc = 0; pc < K; pc += PK) {
        int64_t kb = K - pc < PK ? K - pc : PK;
        float bt = pc == 0 ? beta : 1.0f;
        // op(B)[pc:pc+kb, :], stored as B is: (kb, N) or, transposed, (N, kb)
        if (transB) {
            round_block(bs, B + pc, ldb, N, kb);
        } else {
            round_block(bs, B + pc * ldb, ldb, kb, N);
        }
        for (int64_t ic = 0; ic < M; ic += PM) {
            int64_t mb = M - ic < PM ? M - ic : PM;
            if (transA) {   // (kb, mb)
                round_block(as, A + pc * lda + ic, lda, kb, mb);
            } else {        // (mb, kb)
                round_block(as, A + ic * lda + pc, lda, mb, kb);
            }
            kern_sgemm(transA, transB, mb, N, kb, alpha, as, transA ? mb : kb, bs,
                       transB ? kb : N, bt, C + ic * ldc, ldc);
        }
    }
    free(bs), free(as);
}
