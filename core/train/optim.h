/* optim.h: optimizers (SGD with momentum, Adam, AdamW), gradient-norm clipping and learning
 * rate schedules (constant, step, cosine with warmup) over a model's flat parameter buffer.
 * Frozen entries (trainable[i] == 0) are never touched. */
#ifndef MPSL_OPTIM_H
#define MPSL_OPTIM_H

#include <stdint.h>

#include "mpsl/plugin.h"

typedef enum optim_kind { OPTIM_SGD = 0, OPTIM_ADAM, OPTIM_ADAMW } optim_kind;
typedef enum schedule_kind { SCHEDULE_CONSTANT = 0, SCHEDULE_STEP, SCHEDULE_COSINE } schedule_kind;

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
    double min_lr;          /* cosine: final learning rate */
    int64_t total_epochs;   /* cosine: length of the schedule */
} optim_settings;

/* The learning rate for a 0-based epoch. */
double optim_lr(const optim_settings *o, int64_t epoch);

typedef struct optim_state {
    optim_settings settings;
    int64_t n;
    int64_t t;              /* steps taken (Adam bias correction) */
    float *m, *v;           /* (n) moments; v unused by SGD */
} optim_state;

int optim_state_init(optim_state *o, const optim_settings *s, int64_t n, mpsl_error *err);
void optim_state_free(optim_state *o);
/* One step on param with grad at the epoch's learning rate. Returns the learning rate used. */
double optim_state_step(optim_state *o, float *param, float *grad, const uint8_t *trainable,
                        int64_t epoch);

#endif
