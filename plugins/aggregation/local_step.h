/* local_step.h: one supervised step of a whole model within one role, shared by the
 * strategies that train complete models (centralized on the server, FedAvg and FedProx on
 * each client): forward through tokenizers, encoder and head, the task's loss, backward,
 * optimizer step. Header-only so each plugin stays one .so. */
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

/* dlogits: scratch of at least b->n * model_output_size(m) floats; prox may be NULL. The
 * loss is the task's (api->loss): cross-entropy for classification, the summed contrastive
 * loss for retrieval; "correct" counts its hits (argmax, or in-batch R@1). */
static inline int local_step(const mpsl_session_api *api, mpsl_role *r, mpsl_model *m,
                             mpsl_optim *opt, const mpsl_batch *b, float *dlogits,
                             int64_t epoch, const proximal *prox, step_stats *st,
                             mpsl_error *err)
{
    mpsl_tensor tokens, logits, dtokens;
    api->model_zero_grad(m);
    int rc = api->model_tokenize(m, b, &tokens, err);
    if (rc == MPSL_OK) {
        rc = api->model_encode(m, &tokens, &logits, err);
    }
    double loss = 0.0;
    int64_t hits = 0;
    if (rc == MPSL_OK) {
        rc = api->loss(r, logits.data, b->labels, b->n, dlogits, &loss, &hits, err);
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    mpsl_tensor dl = {.data = dlogits, .dtype = MPSL_F32, .ndim = 2,
                      .shape = {b->n, logits.shape[1]}};
    rc = api->model_encode_backward(m, &dl, &dtokens, err);
    if (rc == MPSL_OK) {
        rc = api->model_tokenize_backward(m, &dtokens, err);
    }
    if (rc == MPSL_OK && prox && prox->mu != 0.0f) {
        int64_t n;
        const float *w = api->model_params(m, &n);
        float *g = api->model_grads(m, &n);
        const uint8_t *trainable = api->model_trainable(m);
        for (int64_t i = 0; i < n; i++) {
            if (trainable[i]) {
                g[i] += prox->mu * (w[i] - prox->anchor[i]);
            }
        }
    }
    if (rc == MPSL_OK) {
        rc = api->optim_step(opt, epoch, err);
    }
    st->loss_sum += loss * (double)b->n;
    st->correct += hits;
    st->seen += b->n;
    return rc;
}

/* The per-client figures every strategy records at the end of its epoch. A client that
 * processed nothing (an empty partition) records only its 0 samples: a mean of nothing is
 * not a figure. */
static inline int record_client_stats(const mpsl_session_api *api, mpsl_role *r,
                                      const step_stats *st, mpsl_error *err)
{
    int rc = MPSL_OK;
    if (st->seen > 0) {
        rc = api->record(r, "train_loss", st->loss_sum / (double)st->seen, err);
        if (rc == MPSL_OK) {
            rc = api->record(r, "train_acc", (double)st->correct / (double)st->seen, err);
        }
    }
    if (rc == MPSL_OK) {
        rc = api->record(r, "samples", (double)st->seen, err);
    }
    return rc;
}

#endif
