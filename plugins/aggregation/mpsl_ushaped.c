/* mpsl_ushaped.c: U-shaped MPSL (strategy.head_on_client: true). In plain MPSL the server
 * holds encoder and head and sends each client its logits; the gradient that comes back,
 * d(loss)/d(logits) = (p - y) / b for cross-entropy, names each label (docs/privacy.md). Here
 * each client holds its tokenizers AND a copy of the head, so the loss and the labels stay
 * with it:
 *   1. each client sends its tokens up (activations);
 *   2. the server runs the encoder ONCE over all clients' tokens concatenated and sends each
 *      client its slice of the encoder's output (features, (b,T,Dh));
 *   3. the client runs its head, its loss with its own labels, the head's backward and its
 *      head's optimizer step, and returns d(loss)/d(features) (feature_grads) and the loss
 *      value (scalars);
 *   4. the server weights each client's slice by its share of the batch, backpropagates once
 *      through the encoder, steps, and sends each client its slice of the cut-layer gradient
 *      (cut_grads), through which the client trains its tokenizers.
 * A client's head is trained on its own loss, as a FedAvg client's model is; at the end of
 * each epoch the clients upload their tokenizers and heads and the server averages each,
 * weighted by partition size, in front of its encoder: the model that is evaluated (as plain
 * MPSL averages the tokenizers). sync_tokenizers_every N sends both averages back every N
 * epochs. With one client this is centralized training step for step: the same loss, the
 * same gradients, and per-element optimizers over the same parameters.
 * The epoch (one_pass or cycle) and the batch per client are plain MPSL's (mpsl.c). */
#include <string.h>

#include "local_step.h"
#include "mpsl_ushaped.h"
#include "split_step.h"

/* After the last epoch nothing trains, so no sync then. */
static int sync_due(const mpsl_session_api *api, mpsl_role *r, const ushaped_plan *plan,
                    int64_t epoch)
{
    return plan->sync_every > 0 && (epoch + 1) % plan->sync_every == 0 &&
           epoch + 1 < api->settings(r)->epochs;
}

/* The parts a client uploads each epoch, in this order. */
static int uploaded_parts(const ushaped_plan *plan, int *parts)
{
    int n = 0;
    if (!plan->freeze_tokenizers) {
        parts[n++] = MPSL_PART_TOKENIZERS;
    }
    parts[n++] = MPSL_PART_HEAD;
    return n;
}

/* ---------------------------------------------------------------- the server */

typedef struct userver {
    int K;
    int64_t b, T, D, Dh;
    mpsl_model *enc, *eval;     /* the encoder it trains; encoder + the averages, evaluated */
    mpsl_optim *opt;
    float *tokens, *dfeatures, *scratch;
    int64_t *offset;            /* first row of each client's slice in this step */
    uint8_t *status;            /* MPSL_SLOT_TAKES_PART for the clients in this step */
    double loss_sum;            /* the epoch's loss as the clients reported it */
    int64_t seen;
} userver;

static int server_setup(const mpsl_session_api *api, mpsl_role *r, const ushaped_plan *plan,
                        userver *sv, mpsl_error *err)
{
    sv->K = api->n_clients(r);
    sv->b = plan->b;
    int rc = api->model_create(r, MPSL_PART_ENCODER, &sv->enc, err);
    if (rc == MPSL_OK) {
        rc = api->model_create(r, MPSL_PART_ALL, &sv->eval, err);
    }
    if (rc == MPSL_OK) {
        rc = api->optim_create(r, sv->enc, &sv->opt, err);
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    api->model_token_shape(sv->enc, &sv->T, &sv->D);
    sv->Dh = api->model_feature_width(sv->enc);
    size_t rows = (size_t)(sv->b * sv->K);
    int64_t n_tok, n_head;
    api->model_part(sv->eval, MPSL_PART_TOKENIZERS, &n_tok);
    api->model_part(sv->eval, MPSL_PART_HEAD, &n_head);
    int64_t most = n_tok > n_head ? n_tok : n_head;
    sv->offset = api->alloc(r, (size_t)(sv->K + 1) * sizeof *sv->offset);
    sv->status = api->alloc(r, (size_t)sv->K);
    sv->tokens = api->alloc(r, rows * (size_t)(sv->T * sv->D) * sizeof(float));
    sv->dfeatures = api->alloc(r, rows * (size_t)(sv->T * sv->Dh) * sizeof(float));
    sv->scratch = api->alloc(r, (size_t)(most ? most : 1) * sizeof(float));
    return sv->offset && sv->status && sv->tokens && sv->dfeatures && sv->scratch
               ? MPSL_OK
               : MPSL_ERR_NOMEM;
}

/* 1-2. Every taking part client's tokens into one batch, the encoder once, each client its
 * slice of the features. A client sitting the step out has an empty slice. */
static int server_forward(const mpsl_session_api *api, mpsl_role *r, const ushaped_plan *plan,
                          userver *sv, int64_t step, mpsl_error *err)
{
    int64_t F = sv->T * sv->Dh;
    for (int k = 0; k < sv->K; k++) {
        sv->status[k] = step < plan->client_steps[k] ? MPSL_SLOT_TAKES_PART : MPSL_SLOT_NOT_WANTED;
    }
    int rc = gather_client_tokens(api, r, sv->K, sv->status, sv->tokens, sv->b, sv->T, sv->D,
                                  sv->offset, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    api->model_zero_grad(sv->enc);
    mpsl_tensor all = f32(sv->tokens, sv->offset[sv->K], sv->T, sv->D), features;
    rc = api->model_features(sv->enc, &all, &features, err);
    for (int k = 0; k < sv->K && rc == MPSL_OK; k++) {
        int64_t n = sv->offset[k + 1] - sv->offset[k];
        if (n > 0) {
            mpsl_tensor slice = f32((float *)features.data + sv->offset[k] * F, n, sv->T, sv->Dh);
            rc = api->send(r, k, MPSL_MSG_FEATURES, &slice, err);
        }
    }
    return rc;
}

/* 4. Each client's d(features) weighted by its share of the batch (the aggregated loss is
 * sum_k (b_k / B) L_k), one backward pass, the step, each client its cut-layer gradient. */
static int server_backward(const mpsl_session_api *api, mpsl_role *r, const ushaped_plan *plan,
                           userver *sv, int64_t epoch, mpsl_error *err)
{
    int64_t total = sv->offset[sv->K], F = sv->T * sv->Dh, TD = sv->T * sv->D;
    for (int k = 0; k < sv->K; k++) {
        int64_t n = sv->offset[k + 1] - sv->offset[k];
        if (n == 0) {
            continue;
        }
        float *g = sv->dfeatures + sv->offset[k] * F;
        mpsl_tensor grad = f32(g, n, sv->T, sv->Dh);
        double value;
        mpsl_tensor scalar = {.data = &value, .dtype = MPSL_F64, .ndim = 1, .shape = {1}};
        int rc = api->recv(r, k, MPSL_MSG_FEATURE_GRADS, &grad, err);
        if (rc == MPSL_OK) {
            rc = api->recv(r, k, MPSL_MSG_SCALARS, &scalar, err);
        }
        if (rc != MPSL_OK) {
            return rc;
        }
        float share = (float)n / (float)total;
        for (int64_t i = 0; i < n * F; i++) {
            g[i] *= share;
        }
        sv->loss_sum += value * (double)n;
        sv->seen += n;
    }
    mpsl_tensor dfeat = f32(sv->dfeatures, total, sv->T, sv->Dh), dtokens;
    int rc = api->model_features_backward(sv->enc, &dfeat, &dtokens, err);
    if (rc == MPSL_OK) {
        rc = api->optim_step(sv->opt, epoch, err);
    }
    for (int k = 0; k < sv->K && rc == MPSL_OK && !plan->freeze_tokenizers; k++) {
        int64_t n = sv->offset[k + 1] - sv->offset[k];
        if (n > 0) {
            mpsl_tensor slice = f32((float *)dtokens.data + sv->offset[k] * TD, n, sv->T, sv->D);
            rc = api->send(r, k, MPSL_MSG_CUT_GRADS, &slice, err);
        }
    }
    return rc;
}

/* The evaluation model: the server's encoder behind the clients' tokenizers and in front of
 * their heads, each averaged by partition size. Frozen tokenizers are the same everywhere
 * (one seed), so they are not sent. */
static int build_eval_model(const mpsl_session_api *api, mpsl_role *r, const ushaped_plan *plan,
                            userver *sv, mpsl_error *err)
{
    int64_t n_enc, n_src;
    float *dst = api->model_part(sv->eval, MPSL_PART_ENCODER, &n_enc);
    const float *src = api->model_part(sv->enc, MPSL_PART_ENCODER, &n_src);
    memcpy(dst, src, (size_t)n_src * sizeof(float));
    int64_t total = 0;
    for (int k = 0; k < sv->K; k++) {
        total += api->client_samples(r, k);
    }
    int parts[2], n_parts = uploaded_parts(plan, parts);
    for (int i = 0; i < n_parts; i++) {
        int64_t n;
        float *avg = api->model_part(sv->eval, parts[i], &n);
        memset(avg, 0, (size_t)n * sizeof(float));
    }
    for (int k = 0; k < sv->K; k++) {
        float w = (float)((double)api->client_samples(r, k) / (double)total);
        for (int i = 0; i < n_parts; i++) {
            int64_t n;
            float *avg = api->model_part(sv->eval, parts[i], &n);
            mpsl_tensor up = f32(sv->scratch, n, 0, 0);
            int rc = api->recv(r, k, MPSL_MSG_PARAMETERS, &up, err);
            if (rc != MPSL_OK) {
                return rc;
            }
            for (int64_t j = 0; j < n; j++) {
                avg[j] += w * sv->scratch[j];
            }
        }
    }
    return MPSL_OK;
}

/* The averages down to every client (counted as parameters, as FedAvg's broadcast is). */
static int send_averages(const mpsl_session_api *api, mpsl_role *r, const ushaped_plan *plan,
                         userver *sv, mpsl_error *err)
{
    int parts[2], n_parts = uploaded_parts(plan, parts), rc = MPSL_OK;
    for (int k = 0; k < sv->K && rc == MPSL_OK; k++) {
        for (int i = 0; i < n_parts && rc == MPSL_OK; i++) {
            int64_t n;
            float *avg = api->model_part(sv->eval, parts[i], &n);
            mpsl_tensor down = f32(avg, n, 0, 0);
            rc = api->send(r, k, MPSL_MSG_PARAMETERS, &down, err);
        }
    }
    return rc;
}

int ushaped_server(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *r,
                   const ushaped_plan *plan, mpsl_error *err)
{
    userver sv = {0};
    int rc = server_setup(api, r, plan, &sv, err);
    if (rc == MPSL_ERR_NOMEM && !err->msg[0]) {
        h->error_set(err, "out of memory for the server's batch of %lld rows",
                     (long long)(sv.b * sv.K));
    }
    if (rc == MPSL_OK) {
        rc = api->keep(r, "loss_sum", &sv.loss_sum, sizeof sv.loss_sum, err);
    }
    if (rc == MPSL_OK) {
        rc = api->keep(r, "seen", &sv.seen, sizeof sv.seen, err);
    }
    int64_t epochs = api->settings(r)->epochs;
    for (int64_t epoch = api->first_epoch(r); epoch < epochs && rc == MPSL_OK; epoch++) {
        int64_t first = epoch == api->first_epoch(r) ? api->first_step(r) : 0;
        if (first == 0) {
            sv.loss_sum = 0;
            sv.seen = 0;
        }
        for (int64_t step = first; step < plan->steps && rc == MPSL_OK; step++) {
            rc = server_forward(api, r, plan, &sv, step, err);
            if (rc == MPSL_OK) {
                rc = server_backward(api, r, plan, &sv, epoch, err);
            }
            if (rc == MPSL_OK) {
                rc = api->step_end(r, epoch, step + 1, err);
            }
            if (rc == MPSL_OK && api->should_stop(r)) {
                rc = MPSL_ERR_INTERRUPTED;
            }
            api->progress(r, epoch, step + 1, plan->steps);
        }
        if (rc == MPSL_OK) {
            rc = build_eval_model(api, r, plan, &sv, err);
        }
        if (rc == MPSL_OK && sync_due(api, r, plan, epoch)) {
            rc = send_averages(api, r, plan, &sv, err);
        }
        if (rc == MPSL_OK) {
            /* train_loss from the loss values the clients reported; train_acc from their
             * own records (only they hold labels and outputs) */
            rc = api->epoch_end(r, epoch, sv.eval, sv.loss_sum / (double)sv.seen, -1.0, err);
        }
    }
    return rc;
}

/* ---------------------------------------------------------------- a client */

typedef struct uclient {
    mpsl_model *tok, *head;     /* its tokenizers; its copy of the head */
    mpsl_optim *tok_opt, *head_opt;
    mpsl_batch *batch;          /* its mini-batch, labels included: they never leave */
    float *features, *doutputs, *cut_grads, *sent;
    int64_t b, T, D, Dh, C;
} uclient;

static int client_setup(const mpsl_session_api *api, mpsl_role *r, const ushaped_plan *plan,
                        uclient *c, mpsl_error *err)
{
    c->b = plan->b;
    int rc = api->model_create(r, MPSL_PART_TOKENIZERS, &c->tok, err);
    if (rc == MPSL_OK) {
        rc = api->model_create(r, MPSL_PART_HEAD, &c->head, err);
    }
    if (rc == MPSL_OK && !plan->freeze_tokenizers) {
        rc = api->optim_create(r, c->tok, &c->tok_opt, err);
    }
    if (rc == MPSL_OK) {
        rc = api->optim_create(r, c->head, &c->head_opt, err);
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    api->model_token_shape(c->tok, &c->T, &c->D);
    c->Dh = api->model_feature_width(c->head);
    c->C = api->model_output_size(c->head);
    c->batch = api->batch_create(r, c->b, err);
    if (!c->batch) {
        return MPSL_ERR_NOMEM;
    }
    c->features = api->alloc(r, (size_t)(c->b * c->T * c->Dh) * sizeof(float));
    c->sent = api->alloc(r, (size_t)(c->b * c->T * c->Dh) * sizeof(float));
    c->doutputs = api->alloc(r, (size_t)(c->b * c->C) * sizeof(float));
    c->cut_grads = api->alloc(r, (size_t)(c->b * c->T * c->D) * sizeof(float));
    return c->features && c->sent && c->doutputs && c->cut_grads ? MPSL_OK : MPSL_ERR_NOMEM;
}

/* One step of a client that takes part in it (1, 3 and its end of 4, above). */
static int client_step(const mpsl_session_api *api, mpsl_role *r, const ushaped_plan *plan,
                       uclient *c, int64_t epoch, step_stats *st, mpsl_error *err)
{
    int64_t got = draw_client_batch(api, r, c->batch, c->b, err);
    if (got < 0) {
        return (int)got;
    }
    if (!plan->freeze_tokenizers) {
        api->model_zero_grad(c->tok);
    }
    api->model_zero_grad(c->head);
    mpsl_tensor tokens, outputs, dfeat;
    int rc = api->model_tokenize(c->tok, c->batch, &tokens, err);
    if (rc == MPSL_OK) {
        rc = api->send(r, MPSL_SERVER, MPSL_MSG_ACTIVATIONS, &tokens, err);
    }
    mpsl_tensor features = f32(c->features, got, c->T, c->Dh);
    if (rc == MPSL_OK) {
        rc = api->recv(r, MPSL_SERVER, MPSL_MSG_FEATURES, &features, err);
    }
    if (rc == MPSL_OK) {
        rc = api->model_head(c->head, &features, &outputs, err);
    }
    double loss = 0.0;
    int64_t hits = 0;
    if (rc == MPSL_OK) {
        rc = api->loss(r, outputs.data, c->batch->labels, got, c->doutputs, &loss, &hits, err);
    }
    mpsl_tensor dout = f32(c->doutputs, got, c->C, 0);
    if (rc == MPSL_OK) {
        rc = api->model_head_backward(c->head, &dout, &dfeat, err);
    }
    if (rc == MPSL_OK) {
        rc = api->optim_step(c->head_opt, epoch, err);
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    st->loss_sum += loss * (double)got;
    st->correct += hits;
    st->seen += got;
    /* what goes up is a copy: a defence's noise must not reach the head's own training */
    int64_t F = c->T * c->Dh;
    memcpy(c->sent, dfeat.data, (size_t)(got * F) * sizeof(float));
    grad_defence_apply(api, r, &plan->defence, c->sent, got, F);
    mpsl_tensor up = f32(c->sent, got, c->T, c->Dh);
    mpsl_tensor scalar = {.data = &loss, .dtype = MPSL_F64, .ndim = 1, .shape = {1}};
    rc = api->send(r, MPSL_SERVER, MPSL_MSG_FEATURE_GRADS, &up, err);
    if (rc == MPSL_OK) {
        rc = api->send(r, MPSL_SERVER, MPSL_MSG_SCALARS, &scalar, err);
    }
    if (rc != MPSL_OK || plan->freeze_tokenizers) {
        return rc;
    }
    mpsl_tensor g = f32(c->cut_grads, got, c->T, c->D);
    rc = api->recv(r, MPSL_SERVER, MPSL_MSG_CUT_GRADS, &g, err);
    if (rc == MPSL_OK) {
        rc = api->model_tokenize_backward(c->tok, &g, err);
    }
    return rc == MPSL_OK ? api->optim_step(c->tok_opt, epoch, err) : rc;
}

/* Upload (or, after a sync, receive) the tokenizers and the head, in uploaded_parts' order. */
static int exchange_parts(const mpsl_session_api *api, mpsl_role *r, const ushaped_plan *plan,
                          uclient *c, int receive, mpsl_error *err)
{
    int parts[2], n_parts = uploaded_parts(plan, parts), rc = MPSL_OK;
    for (int i = 0; i < n_parts && rc == MPSL_OK; i++) {
        int64_t n;
        mpsl_model *m = parts[i] == MPSL_PART_HEAD ? c->head : c->tok;
        float *w = api->model_part(m, parts[i], &n);
        mpsl_tensor t = f32(w, n, 0, 0);
        rc = receive ? api->recv(r, MPSL_SERVER, MPSL_MSG_PARAMETERS, &t, err)
                     : api->send(r, MPSL_SERVER, MPSL_MSG_PARAMETERS, &t, err);
    }
    return rc;
}

int ushaped_client(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *r,
                   const ushaped_plan *plan, mpsl_error *err)
{
    uclient c = {0};
    int rc = client_setup(api, r, plan, &c, err);
    if (rc == MPSL_ERR_NOMEM && !err->msg[0]) {
        h->error_set(err, "out of memory for client %d", api->client_id(r));
    }
    step_stats st = {0};
    if (rc == MPSL_OK) {
        rc = api->keep(r, "stats", &st, sizeof st, err);
    }
    int64_t epochs = api->settings(r)->epochs, mine = plan->client_steps[api->client_id(r)];
    for (int64_t epoch = api->first_epoch(r); epoch < epochs && rc == MPSL_OK; epoch++) {
        int64_t first = epoch == api->first_epoch(r) ? api->first_step(r) : 0;
        if (first == 0) {
            st = (step_stats){0};
        }
        for (int64_t step = first; step < plan->steps && rc == MPSL_OK; step++) {
            if (step < mine) {
                rc = client_step(api, r, plan, &c, epoch, &st, err);
            }
            if (rc == MPSL_OK) {
                rc = api->step_end(r, epoch, step + 1, err);
            }
            if (rc == MPSL_OK && api->should_stop(r)) {
                rc = MPSL_ERR_INTERRUPTED;
            }
        }
        if (rc == MPSL_OK) {
            rc = record_client_stats(api, r, &st, err);
        }
        if (rc == MPSL_OK) {
            rc = exchange_parts(api, r, plan, &c, 0, err);
        }
        if (rc == MPSL_OK && sync_due(api, r, plan, epoch)) {
            rc = exchange_parts(api, r, plan, &c, 1, err);
        }
        if (rc == MPSL_OK) {
            rc = api->epoch_end(r, epoch, NULL, 0, 0, err);
        }
    }
    return rc;
}
