/* vecmath.h (private to core/kernels): 8-wide float vectors written with GCC's vector
 * extensions, so that the hot loops vectorise at any optimisation level, and exp/erf
 * approximations that vectorise (libm's expf/erff do not). Functions marked KERN_CLONES are
 * compiled twice on x86-64, for AVX2+FMA (x86-64-v3) and for the baseline, and the loader
 * picks one for the CPU at hand. */
#ifndef MPSL_KERN_VECMATH_H
#define MPSL_KERN_VECMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Every function taking or returning v8f is inlined, so there is no vector ABI to warn about. */
#pragma GCC diagnostic ignored "-Wpsabi"
/* -std=c11 turns off contraction of a*b+c into fused multiply-adds; the vector code wants
 * them (the AVX2 clones are about 1.5x faster with FMA). Applies to the rest of the file. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef uint32_t v8u __attribute__((vector_size(32)));

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 && \
    !defined(MPSL_NO_CLONES)
#define KERN_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define KERN_CLONES
#endif
#define KERN_INLINE static inline __attribute__((always_inline))

#define V8(x) ((v8f){(x), (x), (x), (x), (x), (x), (x), (x)})
#define V8I(x) ((v8i){(x), (x), (x), (x), (x), (x), (x), (x)})

KERN_INLINE v8f v_load(const float *p)
{
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

KERN_INLINE void v_store(float *p, v8f v) { memcpy(p, &v, sizeof v); }

/* The first n (0 <= n <= 8) lanes from p, the others `fill`. */
KERN_INLINE v8f v_load_part(const float *p, int64_t n, float fill)
{
    float tmp[8];
    for (int i = 0; i < 8; i++) {
        tmp[i] = i < n ? p[i] : fill;
    }
    return v_load(tmp);
}

KERN_INLINE void v_store_part(float *p, v8f v, int64_t n)
{
    float tmp[8];
    v_store(tmp, v);
    for (int64_t i = 0; i < n; i++) {
        p[i] = tmp[i];
    }
}

/* The formulas below are written once, as macros that define a function for a vector type
 * (VF, its int32 VI and uint32 VU twins), so that the 8-lane functions here and the 16-lane
 * ones of the AVX-512 kernels (vec_avx512.c) compute every lane with the same operations in
 * the same order: the same bits. A scalar operand of a vector operation is broadcast;
 * ((VF){0} + c) is c in every lane. */

/* mask lanes (all ones / zero, as comparisons give) pick a, others b */
#define VEC_SELECT_FN(name, VF, VI)                                                           \
    KERN_INLINE VF name(VI mask, VF a, VF b)                                                  \
    {                                                                                         \
        return (VF)(((VI)a & mask) | ((VI)b & ~mask));                                        \
    }

/* e^x (Cephes expf: range reduction by ln 2, degree-6 polynomial; about 1 ulp). Returns 0
 * below -87.33 (where e^x leaves the normal range) and saturates above 88. */
#define VEC_EXP_FN(name, select, VF, VI, VU)                                                  \
    KERN_INLINE VF name(VF x)                                                                 \
    {                                                                                         \
        VI under = x < -87.3365447505531f;                                                    \
        /* clamp so that NaN stays NaN (comparisons with NaN are false) */                    \
        x = select(x > 88.0f, (VF){0} + 88.0f, x);                                            \
        x = select(under, (VF){0} + -87.3365447505531f, x);                                   \
        VF fx = x * 1.44269504088896341f;                                                     \
        fx = (fx + 12582912.0f) - 12582912.0f; /* round to nearest integer */                 \
        VF r = x - fx * 0.693359375f;                                                         \
        r = r - fx * -2.12194440e-4f;                                                         \
        VF y = (VF){0} + 1.9875691500e-4f;                                                    \
        y = y * r + 1.3981999507e-3f;                                                         \
        y = y * r + 8.3334519073e-3f;                                                         \
        y = y * r + 4.1665795894e-2f;                                                         \
        y = y * r + 1.6666665459e-1f;                                                         \
        y = y * r + 5.0000001201e-1f;                                                         \
        y = y * (r * r) + r + 1.0f;                                                           \
        VI n = __builtin_convertvector(fx, VI);                                               \
        VF pow2n = (VF)((VU)(n + 127) << 23); /* unsigned: NaN lanes must not shift a sign */ \
        return select(under, (VF){0}, y * pow2n);                                             \
    }

/* erf(x) given also e = exp(-x*x) (callers often need it anyway): Abramowitz & Stegun
 * 7.1.26, absolute error below 1.5e-7 (the approximation PyTorch's vectorised CPU erf uses). */
#define VEC_ERF_WITH_EXP_FN(name, VF, VI)                                                     \
    KERN_INLINE VF name(VF x, VF e)                                                           \
    {                                                                                         \
        VI sign = (VI)x & (int32_t)0x80000000u;                                               \
        VF ax = (VF)((VI)x & 0x7fffffff);                                                     \
        VF t = 1.0f / (ax * 0.3275911f + 1.0f);                                               \
        VF r = t * 1.061405429f + -1.453152027f;                                              \
        r = r * t + 1.421413741f;                                                             \
        r = r * t + -0.284496736f;                                                            \
        r = r * t + 0.254829592f;                                                             \
        VF res = 1.0f - r * t * e;                                                            \
        return (VF)((VI)res ^ sign);                                                          \
    }

/* GELU (exact, erf form) and its derivative, for activation.c and its AVX-512 twin:
 *   gelu(x) = x * Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2;
 *   gelu'(x) = Phi(x) + x * phi(x), phi(x) = exp(-x^2/2) / sqrt(2 pi). */
#define VEC_GELU_FNS(gelu, gelu_grad, exp, erf_with_exp, VF)                                  \
    KERN_INLINE VF gelu(VF x)                                                                 \
    {                                                                                         \
        VF e = exp(x * x * -0.5f); /* exp(-(x/sqrt 2)^2) */                                   \
        VF erf = erf_with_exp(x * (float)M_SQRT1_2, e);                                       \
        return x * 0.5f * (1.0f + erf);                                                       \
    }                                                                                         \
    KERN_INLINE VF gelu_grad(VF x)                                                            \
    {                                                                                         \
        VF e = exp(x * x * -0.5f);                                                            \
        VF cdf = 0.5f * (1.0f + erf_with_exp(x * (float)M_SQRT1_2, e));                       \
        return cdf + x * e * 0.3989422804014327f;                                             \
    }

VEC_SELECT_FN(v_select, v8f, v8i)
VEC_EXP_FN(v_exp, v_select, v8f, v8i, v8u)
VEC_ERF_WITH_EXP_FN(v_erf_with_exp, v8f, v8i)
VEC_GELU_FNS(v_gelu, v_gelu_grad, v_exp, v_erf_with_exp, v8f)

KERN_INLINE v8f v_max(v8f a, v8f b) { return v_select(a > b, a, b); }
KERN_INLINE v8f v_min(v8f a, v8f b) { return v_select(a < b, a, b); }

KERN_INLINE float v_hsum(v8f v)
{
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

KERN_INLINE float v_hmax(v8f v)
{
    float m = v[0];
    for (int i = 1; i < 8; i++) {
        m = v[i] > m ? v[i] : m;
    }
    return m;
}

/* Column sums: dst[c] += sum over r < rows of src[r*ld + c] for c in [c0, c1), summed in row
 * order (so the result does not depend on how columns are split between threads). */
void kern_colsum_acc(float *dst, const float *src, int64_t rows, int64_t ld, int64_t c0,
                     int64_t c1);

#endif
