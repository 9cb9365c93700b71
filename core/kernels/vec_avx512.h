/* vec_avx512.h (private to core/kernels): 16-lane AVX-512 versions of elementwise loops
 * (vec_avx512.c). Call them only when kern_vec_avx512() answers 1. */
#ifndef MPSL_KERN_VEC_AVX512_H
#define MPSL_KERN_VEC_AVX512_H

#include <stdint.h>

/* 1 when the CPU has AVX-512F (and the OS saves its state) and MPSL_VEC is not "avx2"
 * ("avx2" keeps the 8-lane code everywhere: the tests compare the two). Decided once per
 * process. */
int kern_vec_avx512(void);

/* out[i] = gelu(inp[i]) for i in [begin, end); the same bits as the 8-lane loop. */
void kern_gelu_forward_avx512(float *out, const float *inp, int64_t begin, int64_t end);
/* dinp[i] = dout[i] * gelu'(inp[i]) for i in [begin, end); the same bits as the 8-lane loop. */
void kern_gelu_backward_avx512(float *dinp, const float *dout, const float *inp, int64_t begin,
                               int64_t end);
/* In place: s (T) = softmax(s). */
void kern_softmax_row_avx512(float *s, int64_t T);
/* In place: dp (T) = p * (dp - sum(p * dp)). */
void kern_softmax_backward_row_avx512(float *dp, const float *p, int64_t T);

#endif
