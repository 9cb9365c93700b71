/* vec_avx512.c: 16-lane twins of the hottest elementwise loops (GELU forward and backward,
 * the attention's row softmax and its backward), for CPUs with AVX-512F. The 8-lane code
 * (vecmath.h, KERN_CLONES: AVX2 at best) uses half of such a core's vector width; these
 * loops are bound by the arithmetic of exp and erf, and run about 1.7x faster at 16 lanes
 * (2-core Zen 5 VM, GELU over 2.4M values: 1.07 ms against 1.85 ms).
 * The formulas are vecmath.h's, instantiated for 16 lanes: GELU gives the same bits as the
 * 8-lane path; the softmax sums its row in 16 partial sums instead of 8, so its last bits
 * may differ. Only this file is compiled for AVX-512 (the pragma below); callers check
 * kern_vec_avx512() first. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "kernels.h"
#include "vec_avx512.h"

static pthread_once_t vec_once = PTHREAD_ONCE_INIT;
static int use_avx512;

static void vec_init(void)
{
    const char *env = getenv("MPSL_VEC");
    use_avx512 = kern_sgemm_avx512_supported() && !(env && strcmp(env, "avx2") == 0);
}

int kern_vec_avx512(void)
{
    pthread_once(&vec_once, vec_init);
    return use_avx512;
}

#if defined(__x86_64__) && defined(__GNUC__)

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,fma")
#include <immintrin.h>

#include "vecmath.h"

typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
typedef uint32_t v16u __attribute__((vector_size(64)));

VEC_SELECT_FN(v16_select, v16f, v16i)
VEC_EXP_FN(v16_exp, v16_select, v16f, v16i, v16u)
VEC_ERF_WITH_EXP_FN(v16_erf_with_exp, v16f, v16i)
VEC_GELU_FNS(v16_gelu, v16_gelu_grad, v16_exp, v16_erf_with_exp, v16f)

/* The first n (0..16) of 16 lanes. */
KERN_INLINE __mmask16 first(int64_t n)
{
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}

/* Whole vectors are moved unmasked: a masked store costs several times a plain one on Zen
 * (GELU over 2.4M values took 2.5 ms with every store masked, 1.0 ms without). */
KERN_INLINE v16f load(const float *p) { return (v16f)_mm512_loadu_ps(p); }
KERN_INLINE void store(float *p, v16f v) { _mm512_storeu_ps(p, (__m512)v); }

/* The tail: p[0:n] as 16 lanes, the others `fill` (n < 16); and its store. */
KERN_INLINE v16f load_part(const float *p, int64_t n, float fill)
{
    return (v16f)_mm512_mask_loadu_ps(_mm512_set1_ps(fill), first(n), p);
}

KERN_INLINE void store_part(float *p, v16f v, int64_t n)
{
    _mm512_mask_storeu_ps(p, first(n), (__m512)v);
}

void kern_gelu_forward_avx512(float *out, const float *inp, int64_t begin, int64_t end)
{
    int64_t i = begin;
    for (; i + 16 <= end; i += 16) {
        store(out + i, v16_gelu(load(inp + i)));
    }
    if (i < end) {
        store_part(out + i, v16_gelu(load_part(inp + i, end - i, 0.0f)), end - i);
    }
}

void kern_gelu_backward_avx512(float *dinp, const float *dout, const float *inp, int64_t begin,
                               int64_t end)
{
    int64_t i = begin;
    for (; i + 16 <= end; i += 16) {
        store(dinp + i, load(dout + i) * v16_gelu_grad(load(inp + i)));
    }
    if (i < end) {
        int64_t n = end - i;
        store_part(dinp + i, load_part(dout + i, n, 0.0f) * v16_gelu_grad(load_part(inp + i, n, 0.0f)),
                   n);
    }
}

void kern_softmax_row_avx512(float *s, int64_t T)
{
    int64_t full = T / 16 * 16, n = T - full;
    __m512 mv = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < full; i += 16) {
        mv = _mm512_max_ps(mv, (__m512)load(s + i));
    }
    if (n) {
        mv = _mm512_max_ps(mv, (__m512)load_part(s + full, n, -INFINITY));
    }
    float m = _mm512_reduce_max_ps(mv);
    v16f sum = {0};
    for (int64_t i = 0; i < full; i += 16) {
        v16f e = v16_exp(load(s + i) - m);
        sum += e;
        store(s + i, e);
    }
    if (n) {
        v16f e = v16_exp(load_part(s + full, n, -INFINITY) - m);   // padding: exp(-inf) = 0
        sum += e;
        store_part(s + full, e, n);
    }
    float inv = 1.0f / _mm512_reduce_add_ps((__m512)sum);
    for (int64_t i = 0; i < full; i += 16) {
        store(s + i, load(s + i) * inv);
    }
    if (n) {
        store_part(s + full, load_part(s + full, n, 0.0f) * inv, n);
    }
}

void kern_softmax_backward_row_avx512(float *dp, const float *p, int64_t T)
{
    int64_t full = T / 16 * 16, n = T - full;
    v16f acc = {0};
    for (int64_t i = 0; i < full; i += 16) {
        acc += load(p + i) * load(dp + i);
    }
    if (n) {
        acc += load_part(p + full, n, 0.0f) * load_part(dp + full, n, 0.0f);
    }
    float dot = _mm512_reduce_add_ps((__m512)acc);
    for (int64_t i = 0; i < full; i += 16) {
        store(dp + i, load(p + i) * (load(dp + i) - dot));
    }
    if (n) {
        store_part(dp + full, load_part(p + full, n, 0.0f) * (load_part(dp + full, n, 0.0f) - dot),
                   n);
    }
}

#pragma GCC pop_options

#else /* not x86-64 GCC/clang: never called (kern_vec_avx512() is 0 there) */

void kern_gelu_forward_avx512(float *out, const float *inp, int64_t begin, int64_t end)
{
    (void)out, (void)inp, (void)begin, (void)end;
}
void kern_gelu_backward_avx512(float *dinp, const float *dout, const float *inp, int64_t begin,
                               int64_t end)
{
    (void)dinp, (void)dout, (void)inp, (void)begin, (void)end;
}
void kern_softmax_row_avx512(float *s, int64_t T) { (void)s, (void)T; }
void kern_softmax_backward_row_avx512(float *dp, const float *p, int64_t T)
{
    (void)dp, (void)p, (void)T;
}

#endif
