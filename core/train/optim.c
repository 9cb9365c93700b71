/* optim.c: SGD/Adam/AdamW steps and learning-rate schedules as flat loops over one buffer,
 * following PyTorch's definitions so that runs can be checked against it. */
#include "optim.h"

#include <math.h>
#include <string.h>

#include "util/util.h"

double optim_lr(const optim_settings *o, int64_t epoch)
{
    switch (o->schedule) {
    case SCHEDULE_STEP:
        return o->lr * pow(o->gamma, (double)(epoch / (o->step_epochs > 0 ? o->step_epochs : 1)));
    case SCHEDULE_COSINE: {
        if (epoch < o->warmup_epochs) {
            return o->lr * (double)(epoch + 1) / (double)o->warmup_epochs;
        }
        int64_t span = o->total_epochs - o->warmup_epochs;
        double progress = span > 1 ? (double)(epoch - o->warmup_epochs) / (double)(span - 1) : 1.0;
        if (progress > 1.0) {
            progress = 1.0;
        }
        return o->min_lr + 0.5 * (o->lr - o->min_lr) * (1.0 + cos(M_PI * progress));
    }
    case SCHEDULE_CONSTANT:
    default:
        return o->lr;
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

static void clip_gradients(float *grad, const uint8_t *trainable, int64_t n, double max_norm)
{
    double sq = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (trainable[i]) {
            sq += (double)grad[i] * grad[i];
        }
    }
    double norm = sqrt(sq);
    if (norm > max_norm) {
        /* PyTorch's clip_grad_norm_ adds 1e-6 to the norm; do the same to match it. */
        float scale = (float)(max_norm / (norm + 1e-6));
        for (int64_t i = 0; i < n; i++) {
            grad[i] *= scale;
        }
    }
}

double optim_state_step(optim_state *o, float *param, float *grad, const uint8_t *trainable,
                        int64_t epoch)
{
    const optim_settings *s = &o->settings;
    double lr = optim_lr(s, epoch);
    if (s->clip_norm > 0) {
        clip_gradients(grad, trainable, o->n, s->clip_norm);
    }
    o->t++;
    float wd = (float)s->weight_decay;
    if (s->kind == OPTIM_SGD) {
        float mu = (float)s->momentum;
        for (int64_t i = 0; i < o->n; i++) {
            if (!trainable[i]) {
                continue;
            }
            float g = grad[i] + wd * param[i];
            if (mu != 0.0f) {
                /* PyTorch: the first step initialises the buffer with the gradient. */
                o->m[i] = o->t == 1 ? g : mu * o->m[i] + g;
                g = o->m[i];
            }
            param[i] -= (float)lr * g;
        }
        return lr;
    }
    double bc1 = 1.0 - pow(s->beta1, (double)o->t);
    double bc2 = 1.0 - pow(s->beta2, (double)o->t);
    float b1 = (float)s->beta1, b2 = (float)s->beta2;
    float step = (float)(lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    float eps = (float)s->eps;
    int decoupled = s->kind == OPTIM_ADAMW;
    for (int64_t i = 0; i < o->n; i++) {
        if (!trainable[i]) {
            continue;
        }
        float g = grad[i];
        if (decoupled) {
            param[i] *= 1.0f - (float)lr * wd;
        } else {
            g += wd * param[i];
        }
        o->m[i] = b1 * o->m[i] + (1.0f - b1) * g;
        o->v[i] = b2 * o->v[i] + (1.0f - b2) * g * g;
        param[i] -= step * o->m[i] / (sqrtf(o->v[i]) / bc2_sqrt + eps);
    }
    return lr;
}
