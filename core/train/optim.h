/* optim.h: optimizers (SGD with momentum, Adam, AdamW), gradient-norm clipping and learning
 * rate schedules (constant, step, cosine with warmup) over a model's flat parameter buffer,
 * with parameter groups: spans of the buffer with their own learning rate and weight decay.
 * Frozen spans are never touched. */
#ifndef MPSL_OPTIM_H
#define MPSL_OPTIM_H

#include <stdint.h>

#include "mpsl/plugin.h"

typedef enum optim_kind { OPTIM_SGD = 0, OPTIM_ADAM, OPTIM_ADAMW } optim_kind;
typedef enum schedule_kind { SCHEDULE_CONSTANT = 0, SCHEDULE_STEP, SCHEDULE_COSINE } schedule_kind;

/* A parameter group as written in train.optimizer.groups: the first group whose `match`
 * glob (fnmatch) matches a parameter's name decides its settings. */
typedef struct optim_group {
    const char *match;
    int has_lr, has_weight_decay;
    double lr, weight_decay;
    int frozen;
} optim_group;
#define OPTIM_MAX_GROUPS 16

typedef struct optim_settings {
    optim_kind kind;
    double lr;
    double momentum;        /* SGD */
    double beta1, beta2, eps; /* Adam, AdamW */
    double weight_decay;    /* SGD and Adam: L2 added to the gradient; AdamW: decoupled */
    double clip_norm;       /* > 0: scale gradients so their global L2 norm is at most this */
    schedule_kind schedule;
    int64_t step_epochs;    /* step: multiply by gamma every step_epochs epochs */
    double gamma;
    int64_t warmup_epochs;  /* cosine: linear warmup from lr/warmup to lr */
    double min_lr;          /* cosine: the rate the curve reaches at the end of the run */
    int64_t total_epochs;   /* cosine: length of the schedule */
    int n_groups;
    optim_group groups[OPTIM_MAX_GROUPS];
} optim_settings;

/* The learning rate for a 0-based epoch, for a group whose base rate is base_lr. */
double optim_lr(const optim_settings *o, double base_lr, int64_t epoch);


/* One contiguous span of the flat buffer with its group's settings. */
typedef struct optim_span {
    int64_t offset, count;
    double lr;              /* base learning rate before the schedule */
    double weight_decay;
} optim_span;

typedef struct optim_state {
    optim_settings settings;
    int64_t n;
    int64_t t;              /* steps taken (Adam bias correction) */
    float *m, *v;           /* (n) moments; v unused by SGD */
} optim_state;

int optim_state_init(optim_state *o, const optim_settings *s, int64_t n, mpsl_error *err);
void optim_state_free(optim_state *o);
/* One step over the trainable spans of param with grad at the epoch's learning rates.
 * Gradient clipping uses the norm over all spans together, as PyTorch's clip_grad_norm_
 * over all parameters does. */
void optim_state_step(optim_state *o, float *param, float *grad, const optim_span *spans,
                      int n_spans, int64_t epoch);

#endif
