/* elementwise.c: residual add and broadcast bias add (position embeddings), parallel over
 * slices, plus the column-sum helper that every bias gradient uses. */
#include <assert.h>

#include "flops.h"
#include "kernels.h"
#include "vecmath.h"

/* Elements per thread below which splitting costs more than it saves. */
#define ELEMENTWISE_GRAIN 16384

KERN_CLONES
void kern_colsum_acc(float *dst, const float *src, int64_t rows, int64_t ld, int64_t c0,
                     int64_t c1)
{
    // dst (c1) accumulated, src (rows, ld)
    int64_t c = c0;
    for (; c + 32 <= c1; c += 32) {
        v8f a0 = V8(0.0f), a1 = V8(0.0f), a2 = V8(0.0f), a3 = V8(0.0f);
        for (int64_t r = 0; r < rows; r++) {
            const float *s = src + r * ld + c;
            a0 += v_load(s);
            a1 += v_load(s + 8);
            a2 += v_load(s + 16);
            a3 += v_load(s + 24);
        }
        v_store(dst + c, v_load(dst + c) + a0);
        v_store(dst + c + 8, v_load(dst + c + 8) + a1);
        v_store(dst + c + 16, v_load(dst + c + 16) + a2);
        v_store(dst + c + 24, v_load(dst + c + 24) + a3);
    }
    for (; c + 8 <= c1; c += 8) {
        v8f a = V8(0.0f);
        for (int64_t r = 0; r < rows; r++) {
            a += v_load(src + r * ld + c);
        }
        v_store(dst + c, v_load(dst + c) + a);
    }
    for (; c < c1; c++) {
        float a = 0.0f;
        for (int64_t r = 0; r < rows; r++) {
            a += src[r * ld + c];
        }
        dst[c] += a;
    }
}

typedef struct {
    float *out;
    const float *a, *b;
    int64_t M;
} add_ctx;

/* out[i] = a[i] + b[i]; out may equal a or b (each element is read before it is written). */
KERN_CLONES
static void add_rows(float *out, const float *a, const float *b, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v_store(out + i, v_load(a + i) + v_load(b + i));
    }
    for (; i < n; i++) {
        out[i] = a[i] + b[i];
    }
}

static void add_range(void *p, int64_t begin, int64_t end, int part)
{
    add_ctx *c = p;
    add_rows(c->out + begin, c->a + begin, c->b + begin, end - begin);
}

void kern_add(float *out, const float *a, const float *b, int64_t N)
{
    // out (N), a (N), b (N)
    assert(N >= 0);
    add_ctx c = {out, a, b, 0};
    kern_parallel_for(N, ELEMENTWISE_GRAIN, add_range, &c);
    flops_add(MPSL_PASS_FORWARD, (double)N);
}

static void bias_add_range(void *p, int64_t begin, int64_t end, int part)
{
    // rows [begin, end) of out (B,M)
    add_ctx *c = p;
    int64_t M = c->M;
    for (int64_t r = begin; r < end; r++) {
        add_rows(c->out + r * M, c->a + r * M, c->b, M);
    }
}

void kern_bias_add_forward(float *out, const float *inp, const float *bias, int64_t B,
                           int64_t M)
{
    // out (B,M), inp (B,M), bias (M)
    assert(B >= 0 && M >= 0);
    if (M == 0) {
        return;
    }
    add_ctx c = {out, inp, bias, M};
    int64_t grain = ELEMENTWISE_GRAIN / M;
    kern_parallel_for(B, grain > 0 ? grain : 1, bias_add_range, &c);
    flops_add(MPSL_PASS_FORWARD, (double)B * (double)M);
}

typedef struct {
    float *dbias;
    const float *dout;
    int64_t B, M;
} colsum_ctx;

static void bias_grad_range(void *p, int64_t begin, int64_t end, int part)
{
    // columns [8*begin, 8*end) of dout (B,M)
    colsum_ctx *c = p;
    int64_t c1 = 8 * end < c->M ? 8 * end : c->M;
    kern_colsum_acc(c->dbias, c->dout, c->B, c->M, 8 * begin, c1);
}

void kern_bias_add_backward(float *dbias, const float *dout, int64_t B, int64_t M)
{
    // dbias (M) accumulated, dout (B,M)
    assert(B >= 0 && M >= 0);
    if (!dbias) {
        return;
    }
    colsum_ctx c = {dbias, dout, B, M};
    int64_t blocks = (M + 7) / 8, grain = ELEMENTWISE_GRAIN / (8 * (B > 0 ? B : 1));
    kern_parallel_for(blocks, grain > 0 ? grain : 1, bias_grad_range, &c);
    flops_add(MPSL_PASS_BACKWARD, (double)B * (double)M);
}
