/* optim.c: SGD/Adam/AdamW steps and learning-rate schedules as flat loops over one buffer,
 * following PyTorch's definitions so that runs can be checked against it. */
#include "optim.h"

#include <math.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif
#include <string.h>

#include "kernels/kernels.h"
#include "util/util.h"

double optim_lr(const optim_settings *o, double base_lr, int64_t epoch)
{
    switch (o->schedule) {
    case SCHEDULE_STEP:
        return base_lr * pow(o->gamma, (double)(epoch / (o->step_epochs > 0 ? o->step_epochs : 1)));
    case SCHEDULE_COSINE: {
        if (epoch < o->warmup_epochs) {
            return base_lr * (double)(epoch + 1) / (double)o->warmup_epochs;
        }
        /* PyTorch's CosineAnnealingLR(T_max = span, eta_min = min_lr) stepped once per epoch
         * (after a LinearLR warmup, as SequentialLR chains them): an epoch runs at the
         * curve's value at its start, which reaches min_lr only at the end of the run, so the
         * last epoch still trains. */
        int64_t span = o->total_epochs - o->warmup_epochs;
        double progress = span > 0 ? (double)(epoch - o->warmup_epochs) / (double)span : 1.0;
        if (progress > 1.0) {
            progress = 1.0;
        }
        return o->min_lr + 0.5 * (base_lr - o->min_lr) * (1.0 + cos(M_PI * progress));
    }
    case SCHEDULE_CONSTANT:
    default:
        return base_lr;
    }
}

int optim_state_init(optim_state *o, const optim_settings *s, int64_t n, mpsl_error *err)
{
    memset(o, 0, sizeof *o);
    o->settings = *s;
    o->n = n;
    o->m = mpsl_alloc((size_t)n * sizeof(float));
    if (s->kind != OPTIM_SGD) {
        o->v = mpsl_alloc((size_t)n * sizeof(float));
    }
    if (!o->m || (s->kind != OPTIM_SGD && !o->v)) {
        optim_state_free(o);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory for optimizer state (%lld floats)",
                         (long long)n);
    }
    return MPSL_OK;
}

void optim_state_free(optim_state *o)
{
    mpsl_free(o->m);
    mpsl_free(o->v);
    o->m = o->v = NULL;
}

static void clip_gradients(float *grad, const optim_span *spans, int n_spans, double max_norm)
{
    double sq = 0.0;
    for (int k = 0; k < n_spans; k++) {
        const float *g = grad + spans[k].offset;
        for (int64_t i = 0; i < spans[k].count; i++) {
            sq += (double)g[i] * g[i];
        }
    }
    double norm = sqrt(sq);
    if (norm > max_norm) {
        /* PyTorch's clip_grad_norm_ adds 1e-6 to the norm; do the same to match it. */
        float scale = (float)(max_norm / (norm + 1e-6));
        for (int k = 0; k < n_spans; k++) {
            float *g = grad + spans[k].offset;
            for (int64_t i = 0; i < spans[k].count; i++) {
                g[i] *= scale;
            }
        }
    }
}

/* The update loops below are branch-free over restrict pointers so that they vectorise (and
 * are compiled twice on x86-64, AVX2 and baseline, picked at load time); large spans are split
 * over the kernels' thread pool. Each element's arithmetic is exactly the scalar definition
 * (no contraction into FMAs under -std=c11), so results do not depend on the vector width or
 * the thread count. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 && \
    !defined(MPSL_NO_CLONES)
#define OPTIM_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define OPTIM_CLONES
#endif

/* Elements per slice below which a span is not split over threads (~0.1 ms of AdamW). */
#define OPTIM_GRAIN 65536

typedef struct {
    float *p, *g, *m, *v;
    float lr, wd, mu;      /* SGD */
    float b1, b2, step, bc2_sqrt, eps, decay;   /* Adam(W) */
    int mode;              /* SGD: 0 no momentum, 1 first step, 2 momentum; Adam: 1 AdamW */
} optim_job;

OPTIM_CLONES
static void sgd_plain(float *restrict p, const float *restrict g, int64_t n, float lr, float wd)
{
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] + wd * p[i];
        p[i] -= lr * gi;
    }
}

/* first: PyTorch's first step initialises the momentum buffer with the gradient */
OPTIM_CLONES
static void sgd_momentum(float *restrict p, const float *restrict g, float *restrict m,
                         int64_t n, float lr, float wd, float mu, int first)
{
    if (first) {
        for (int64_t i = 0; i < n; i++) {
            float gi = g[i] + wd * p[i];
            m[i] = gi;
            p[i] -= lr * gi;
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            float gi = g[i] + wd * p[i];
            float mi = mu * m[i] + gi;
            m[i] = mi;
            p[i] -= lr * mi;
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define OPTIM_AVX 1
/* Adam(W) over W/32 floats at a time (GCC only vectorises sqrtf with -fno-math-errno, which
 * this file cannot assume): the same operations in the same order as the scalar loop below,
 * each correctly rounded, so the results are bitwise the same at any width. Defined for AVX
 * (8 lanes) and AVX-512F (16: a FedAvg client at batch 1 spends as long in Adam as in its
 * forward pass, waiting on the divisions and square roots). Returns the number of elements
 * done (a multiple of the lanes). */
#define ADAM_VEC_FN(name, W, isa)                                                             \
    __attribute__((target(isa))) static int64_t name(float *restrict p,                       \
                                                     const float *restrict g,                 \
                                                     float *restrict m, float *restrict v,    \
                                                     int64_t n, const optim_job *j)           \
    {                                                                                         \
        const int lanes = W / 32;                                                             \
        const __m##W b1 = _mm##W##_set1_ps(j->b1), b2 = _mm##W##_set1_ps(j->b2);              \
        const __m##W c1 = _mm##W##_set1_ps(1.0f - j->b1);                                     \
        const __m##W c2 = _mm##W##_set1_ps(1.0f - j->b2);                                     \
        const __m##W step = _mm##W##_set1_ps(j->step), bc2 = _mm##W##_set1_ps(j->bc2_sqrt);   \
        const __m##W eps = _mm##W##_set1_ps(j->eps), decay = _mm##W##_set1_ps(j->decay);      \
        const __m##W wd = _mm##W##_set1_ps(j->wd);                                            \
        int decoupled = j->mode;                                                              \
        int64_t i = 0;                                                                        \
        for (; i + lanes <= n; i += lanes) {                                                  \
            __m##W gi = _mm##W##_loadu_ps(g + i), pi = _mm##W##_loadu_ps(p + i);              \
            if (decoupled) {                                                                  \
                pi = _mm##W##_mul_ps(pi, decay);                                              \
            } else {                                                                          \
                gi = _mm##W##_add_ps(gi, _mm##W##_mul_ps(wd, pi));                            \
            }                                                                                 \
            __m##W mi = _mm##W##_add_ps(_mm##W##_mul_ps(b1, _mm##W##_loadu_ps(m + i)),        \
                                        _mm##W##_mul_ps(c1, gi));                             \
            __m##W vi = _mm##W##_add_ps(_mm##W##_mul_ps(b2, _mm##W##_loadu_ps(v + i)),        \
                                        _mm##W##_mul_ps(_mm##W##_mul_ps(c2, gi), gi));        \
            _mm##W##_storeu_ps(m + i, mi);                                                    \
            _mm##W##_storeu_ps(v + i, vi);                                                    \
            __m##W den = _mm##W##_add_ps(_mm##W##_div_ps(_mm##W##_sqrt_ps(vi), bc2), eps);    \
            pi = _mm##W##_sub_ps(pi, _mm##W##_div_ps(_mm##W##_mul_ps(step, mi), den));        \
            _mm##W##_storeu_ps(p + i, pi);                                                    \
        }                                                                                     \
        return i;                                                                             \
    }

ADAM_VEC_FN(adam_avx, 256, "avx")
ADAM_VEC_FN(adam_avx512, 512, "avx512f")
#endif

/* The scalar definition (and the tail after adam_avx512 and adam_avx). */
static void adam_loop(float *restrict p, const float *restrict g, float *restrict m,
                      float *restrict v, int64_t n, const optim_job *j)
{
    int64_t i = 0;
#ifdef OPTIM_AVX
    if (__builtin_cpu_supports("avx512f")) {
        i = adam_avx512(p, g, m, v, n, j);
    }
    if (__builtin_cpu_supports("avx")) {
        i += adam_avx(p + i, g + i, m + i, v + i, n - i, j);
    }
#endif
    float b1 = j->b1, b2 = j->b2, step = j->step, bc2_sqrt = j->bc2_sqrt, eps = j->eps;
    float wd = j->wd, decay = j->decay;
    if (j->mode) {   // AdamW: decoupled weight decay
        for (; i < n; i++) {
            float gi = g[i];
            float pi = p[i] * decay;
            float mi = b1 * m[i] + (1.0f - b1) * gi;
            float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
            m[i] = mi;
            v[i] = vi;
            p[i] = pi - step * mi / (sqrtf(vi) / bc2_sqrt + eps);
        }
    } else {
        for (; i < n; i++) {
            float gi = g[i] + wd * p[i];
            float mi = b1 * m[i] + (1.0f - b1) * gi;
            float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
            m[i] = mi;
            v[i] = vi;
            p[i] -= step * mi / (sqrtf(vi) / bc2_sqrt + eps);
        }
    }
}

static void sgd_range(void *ctx, int64_t b, int64_t e, int part)
{
    const optim_job *j = ctx;
    if (j->mode == 0) {
        sgd_plain(j->p + b, j->g + b, e - b, j->lr, j->wd);
    } else {
        sgd_momentum(j->p + b, j->g + b, j->m + b, e - b, j->lr, j->wd, j->mu, j->mode == 1);
    }
}

static void adam_range(void *ctx, int64_t b, int64_t e, int part)
{
    const optim_job *j = ctx;
    adam_loop(j->p + b, j->g + b, j->m + b, j->v + b, e - b, j);
}

static void sgd_span(optim_state *o, float *p, float *g, float *m, int64_t n, float lr, float wd)
{
    float mu = (float)o->settings.momentum;
    optim_job j = {.p = p, .g = g, .m = m, .lr = lr, .wd = wd, .mu = mu,
                   .mode = mu == 0.0f ? 0 : o->t == 1 ? 1 : 2};
    kern_parallel_for(n, OPTIM_GRAIN, sgd_range, &j);
}

static void adam_span(optim_state *o, float *p, float *g, float *m, float *v, int64_t n,
                      double lr, float wd)
{
    const optim_settings *s = &o->settings;
    double bc1 = 1.0 - pow(s->beta1, (double)o->t);
    double bc2 = 1.0 - pow(s->beta2, (double)o->t);
    optim_job j = {.p = p, .g = g, .m = m, .v = v, .wd = wd,
                   .b1 = (float)s->beta1, .b2 = (float)s->beta2,
                   .step = (float)(lr / bc1), .bc2_sqrt = (float)sqrt(bc2),
                   .eps = (float)s->eps, .decay = 1.0f - (float)lr * wd,
                   .mode = s->kind == OPTIM_ADAMW};
    kern_parallel_for(n, OPTIM_GRAIN, adam_range, &j);
}

void optim_state_step(optim_state *o, float *param, float *grad, const optim_span *spans,
                      int n_spans, int64_t epoch)
{
    const optim_settings *s = &o->settings;
    if (s->clip_norm > 0) {
        clip_gradients(grad, spans, n_spans, s->clip_norm);
    }
    o->t++;
    for (int k = 0; k < n_spans; k++) {
        const optim_span *sp = &spans[k];
        double lr = optim_lr(s, sp->lr, epoch);
        float *p = param + sp->offset, *g = grad + sp->offset, *m = o->m + sp->offset;
        if (s->kind == OPTIM_SGD) {
            sgd_span(o, p, g, m, sp->count, (float)lr, (float)sp->weight_decay);
        } else {
            adam_span(o, p, g, m, o->v + sp->offset, sp->count, lr, (float)sp->weight_decay);
        }
    }
}
