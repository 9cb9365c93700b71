/* local_step.h: one supervised step of a whole model on one party, shared by the strategies
 * that train complete models (centralized, FedAvg): forward through tokenizers, encoder and
 * head, the task's loss (h->loss), backward, optimizer step. Header-only so each plugin
 * stays one .so. */
#ifndef MPSL_LOCAL_STEP_H
#define MPSL_LOCAL_STEP_H

#include <mpsl/plugin.h>

typedef struct step_stats {
    double loss_sum;     /* sum over samples of the per-sample loss */
    int64_t correct, seen;
} step_stats;

/* FedProx's proximal term (mu/2)||w - anchor||^2 over the trainable parameters; its
 * gradient mu (w - anchor) is added before the optimizer step. mu = 0 adds nothing, so
 * FedProx with mu = 0 is FedAvg bit for bit. */
typedef struct proximal {
    float mu;
    const float *anchor;    /* the global model's parameters (same layout) */
} proximal;

/* dlogits: scratch of at least b->n * h->model_output_size(m) floats; prox may be NULL.
 * The loss is the task's (h->loss): cross-entropy for classification, the summed
 * contrastive loss for retrieval; "correct" counts its hits (argmax, or in-batch R@1). */
static inline int local_step(const mpsl_host *h, mpsl_session *s, mpsl_model *m,
                             mpsl_optim *opt, const mpsl_batch *b, float *dlogits,
                             int64_t epoch, const proximal *prox, step_stats *st,
                             mpsl_error *err)
{
    mpsl_tensor tokens, logits, dtokens;
    h->model_zero_grad(m);
    int rc = h->model_tokenize(m, b, &tokens, err);
    if (rc == MPSL_OK) {
        rc = h->model_encode(m, &tokens, &logits, err);
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    int64_t C = logits.shape[1], hits = 0;
    double loss = h->loss(s, dlogits, logits.data, b->labels, b->n, &hits);
    mpsl_tensor dl = {.data = dlogits, .dtype = MPSL_F32, .ndim = 2, .shape = {b->n, C}};
    rc = h->model_encode_backward(m, &dl, &dtokens, err);
    if (rc == MPSL_OK) {
        rc = h->model_tokenize_backward(m, &dtokens, err);
    }
    if (rc == MPSL_OK && prox && prox->mu != 0.0f) {
        int64_t n;
        const float *w = h->model_params(m, &n);
        float *g = h->model_grads(m, &n);
        const uint8_t *trainable = h->model_trainable(m);
        for (int64_t i = 0; i < n; i++) {
            if (trainable[i]) {
                g[i] += prox->mu * (w[i] - prox->anchor[i]);
            }
        }
    }
    if (rc == MPSL_OK) {
        rc = h->optim_step(opt, epoch, err);
    }
    st->loss_sum += loss * (double)b->n;
    st->correct += hits;
    st->seen += b->n;
    return rc;
}

#endif
