/* optim.c: SGD/Adam/AdamW steps and learning-rate schedules as flat loops over one buffer,
 * following PyTorch's definitions so that runs can be checked against it. */
#include "optim.h"

#include <math.h>
#include <string.h>

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
        int64_t span = o->total_epochs - o->warmup_epochs;
        double progress = span > 1 ? (double)(epoch - o->warmup_epochs) / (double)(span - 1) : 1.0;
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

static void sgd_span(optim_state *o, float *p, float *g, float *m, int64_t n, float lr, float wd)
{
    float mu = (float)o->settings.momentum;
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] + wd * p[i];
        if (mu != 0.0f) {
            /* PyTorch: the first step initialises the buffer with the gradient. */
            m[i] = o->t == 1 ? gi : mu * m[i] + gi;
            gi = m[i];
        }
        p[i] -= lr * gi;
    }
}

static void adam_span(optim_state *o, float *p, float *g, float *m, float *v, int64_t n,
                      double lr, float wd)
{
    const optim_settings *s = &o->settings;
    double bc1 = 1.0 - pow(s->beta1, (double)o->t);
    double bc2 = 1.0 - pow(s->beta2, (double)o->t);
    float b1 = (float)s->beta1, b2 = (float)s->beta2;
    float step = (float)(lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    float eps = (float)s->eps;
    float decay = 1.0f - (float)lr * wd;
    int decoupled = s->kind == OPTIM_ADAMW;
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i];
        if (decoupled) {
            p[i] *= decay;
        } else {
            gi += wd * p[i];
        }
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        p[i] -= step * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
    }
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
