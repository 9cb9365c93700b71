/* local_step.h: one supervised step of a whole model on one party, shared by the strategies
 * that train complete models (centralized, FedAvg): forward through tokenizers, encoder and
 * head, cross-entropy, backward, optimizer step. Header-only so each plugin stays one .so. */
#ifndef MPSL_LOCAL_STEP_H
#define MPSL_LOCAL_STEP_H

#include <mpsl/plugin.h>

typedef struct step_stats {
    double loss_sum;     /* sum over samples of the per-sample loss */
    int64_t correct, seen;
} step_stats;

/* dlogits: scratch of at least b->n * C floats. */
static inline int local_step(const mpsl_host *h, mpsl_model *m, mpsl_optim *opt,
                             const mpsl_batch *b, float *dlogits, int64_t epoch,
                             step_stats *st, mpsl_error *err)
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
    double loss = h->kernels->cross_entropy(dlogits, logits.data, b->labels, b->n, C, 1.0f, &hits);
    mpsl_tensor dl = {.data = dlogits, .dtype = MPSL_F32, .ndim = 2, .shape = {b->n, C}};
    rc = h->model_encode_backward(m, &dl, &dtokens, err);
    if (rc == MPSL_OK) {
        rc = h->model_tokenize_backward(m, &dtokens, err);
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
