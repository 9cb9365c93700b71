/* mpsl.c: parallel split learning (MPSL) as two roles. Clients hold only their tokenizers
 * and labels; the server holds one encoder + head. Each step every client sends its tokens,
 * the server runs ONE forward and backward over all clients' tokens concatenated, each client
 * computes its own loss from the logits it is sent, and gets back only its slice of the
 * cut-layer gradient. Everything that crosses between parties goes through the message
 * layer, which counts it.
 *
 * An epoch is ceil(N / B) server steps (N samples over all clients, B = train.batch_size);
 * in each step client k contributes min(ceil(B / K), what is left of its current pass)
 * samples, cycling through its own partition. With one client this is exactly the batch
 * sequence of centralized training.
 *
 * At the end of each epoch the clients upload their tokenizers and the server averages them,
 * weighted by sample count (FedAvg style), in front of its encoder and head: the model that
 * is evaluated. */
#include <mpsl/plugin.h>
#include <string.h>

#include "local_step.h"

typedef struct mpsl_params {
    int freeze_tokenizers;  /* 1: tokenizers stay as initialised; no cut-layer gradients sent */
    int64_t client_batch;   /* samples per client per step; 0: ceil(batch_size / clients) */
} mpsl_params;

static const mpsl_param_spec mpsl_spec[] = {
    MPSL_PARAM_BOOL(mpsl_params, freeze_tokenizers, "freeze_tokenizers", "false",
                    "keep the client tokenizers frozen (no cut-layer gradients are sent)"),
    MPSL_PARAM_INT(mpsl_params, client_batch, "client_batch", 0, 0, 1000000, "0",
                   "samples per client per step; 0: ceil(train.batch_size / clients)"),
};

static mpsl_tensor f32(float *data, int64_t a, int64_t b, int64_t c)
{
    mpsl_tensor t = {.data = data, .dtype = MPSL_F32, .ndim = c ? 3 : (b ? 2 : 1)};
    t.shape[0] = a;
    t.shape[1] = b;
    t.shape[2] = c;
    return t;
}

/* What every role derives alike from the run: samples per client per step, steps per epoch. */
static int64_t client_batch(const mpsl_session_api *api, mpsl_role *r, const mpsl_params *p)
{
    int K = api->n_clients(r);
    return p->client_batch ? p->client_batch : (api->settings(r)->batch_size + K - 1) / K;
}

static int64_t steps_per_epoch(const mpsl_session_api *api, mpsl_role *r)
{
    int64_t N = 0, B = api->settings(r)->batch_size;
    for (int k = 0; k < api->n_clients(r); k++) {
        N += api->client_samples(r, k);
    }
    return (N + B - 1) / B;
}

/* ---------------------------------------------------------------- the server */

typedef struct server {
    int K;
    int64_t b, T, D, C;
    mpsl_model *model, *eval;
    mpsl_optim *opt;
    float *tokens, *logits_grad, *scratch; /* the concatenated batch; an uploaded tokenizer */
    int64_t *offset;        /* first row of each client's slice in this step */
    double loss_sum;        /* the epoch's loss as the server knows it: from the clients' */
    int64_t seen;           /* reported loss values, weighted by their batch sizes */
} server;

static int server_setup(const mpsl_session_api *api, mpsl_role *r, const mpsl_params *p,
                        server *sv, mpsl_error *err)
{
    sv->K = api->n_clients(r);
    sv->b = client_batch(api, r, p);
    int rc = api->model_create(r, MPSL_PART_ENCODER | MPSL_PART_HEAD, &sv->model, err);
    if (rc == MPSL_OK) {
        rc = api->model_create(r, MPSL_PART_ALL, &sv->eval, err);
    }
    if (rc == MPSL_OK) {
        rc = api->optim_create(r, sv->model, &sv->opt, err);
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    api->model_token_shape(sv->model, &sv->T, &sv->D);
    sv->C = api->model_output_size(sv->model); /* floats per sample of the server's output */
    size_t rows = (size_t)(sv->b * sv->K);
    int64_t n_tok;
    api->model_part(sv->eval, MPSL_PART_TOKENIZERS, &n_tok);
    sv->offset = api->alloc(r, (size_t)(sv->K + 1) * sizeof *sv->offset);
    sv->tokens = api->alloc(r, rows * (size_t)(sv->T * sv->D) * sizeof(float));
    sv->logits_grad = api->alloc(r, rows * (size_t)sv->C * sizeof(float));
    sv->scratch = api->alloc(r, (size_t)(n_tok ? n_tok : 1) * sizeof(float));
    if (!sv->offset || !sv->tokens || !sv->logits_grad || !sv->scratch) {
        return MPSL_ERR_NOMEM;
    }
    return MPSL_OK;
}

/* 2-3. Receive every client's tokens into one batch, run encoder + head once, send each
 * client its own slice of the logits. */
static int server_forward(const mpsl_session_api *api, mpsl_role *r, server *sv,
                          mpsl_error *err)
{
    int64_t row = 0, TD = sv->T * sv->D;
    for (int k = 0; k < sv->K; k++) {
        sv->offset[k] = row;
        mpsl_tensor slot = f32(sv->tokens + row * TD, sv->b, sv->T, sv->D);
        int rc = api->recv(r, k, MPSL_MSG_ACTIVATIONS, &slot, err);
        if (rc != MPSL_OK) {
            return rc;
        }
        row += slot.shape[0];
    }
    sv->offset[sv->K] = row;
    api->model_zero_grad(sv->model);
    mpsl_tensor all = f32(sv->tokens, row, sv->T, sv->D), logits;
    int rc = api->model_encode(sv->model, &all, &logits, err);
    for (int k = 0; k < sv->K && rc == MPSL_OK; k++) {
        int64_t n = sv->offset[k + 1] - sv->offset[k];
        mpsl_tensor slice = f32((float *)logits.data + sv->offset[k] * sv->C, n, sv->C, 0);
        rc = api->send(r, k, MPSL_MSG_LOGITS, &slice, err);
    }
    return rc;
}

/* 5-6. Weight each client's logit gradient by its share of the batch (the aggregated loss is
 * sum_k (b_k / B) L_k), backpropagate once, step, and send each client its slice of the
 * cut-layer gradient. */
static int server_backward(const mpsl_session_api *api, mpsl_role *r, const mpsl_params *p,
                           server *sv, int64_t epoch, mpsl_error *err)
{
    int64_t total = sv->offset[sv->K];
    for (int k = 0; k < sv->K; k++) {
        int64_t n = sv->offset[k + 1] - sv->offset[k];
        float *g = sv->logits_grad + sv->offset[k] * sv->C;
        mpsl_tensor grad = f32(g, n, sv->C, 0);
        double value; /* float64, so the server's train_loss is the clients' own figure */
        mpsl_tensor scalar = {.data = &value, .dtype = MPSL_F64, .ndim = 1, .shape = {1}};
        int rc = api->recv(r, k, MPSL_MSG_LOGIT_GRADS, &grad, err);
        if (rc == MPSL_OK) {
            rc = api->recv(r, k, MPSL_MSG_SCALARS, &scalar, err);
        }
        if (rc != MPSL_OK) {
            return rc;
        }
        float share = (float)n / (float)total;
        for (int64_t i = 0; i < n * sv->C; i++) {
            g[i] *= share;
        }
        sv->loss_sum += (double)value * (double)n;
        sv->seen += n;
    }
    mpsl_tensor dlogits = f32(sv->logits_grad, total, sv->C, 0), dtokens;
    int rc = api->model_encode_backward(sv->model, &dlogits, &dtokens, err);
    if (rc == MPSL_OK) {
        rc = api->optim_step(sv->opt, epoch, err);
    }
    if (rc != MPSL_OK || p->freeze_tokenizers) {
        return rc;
    }
    int64_t TD = sv->T * sv->D;
    for (int k = 0; k < sv->K && rc == MPSL_OK; k++) {
        int64_t n = sv->offset[k + 1] - sv->offset[k];
        mpsl_tensor slice = f32((float *)dtokens.data + sv->offset[k] * TD, n, sv->T, sv->D);
        rc = api->send(r, k, MPSL_MSG_CUT_GRADS, &slice, err);
    }
    return rc;
}

/* The evaluation model: the server's encoder and head behind the clients' tokenizers,
 * averaged by sample count. Frozen tokenizers are the same in every model (initialised from
 * the same seed and weights), so then nothing is sent. */
static int build_eval_model(const mpsl_session_api *api, mpsl_role *r, const mpsl_params *p,
                            server *sv, mpsl_error *err)
{
    int parts[] = {MPSL_PART_ENCODER, MPSL_PART_HEAD};
    for (size_t i = 0; i < MPSL_COUNT(parts); i++) {
        int64_t n_src, n_dst;
        const float *src = api->model_part(sv->model, parts[i], &n_src);
        float *dst = api->model_part(sv->eval, parts[i], &n_dst);
        memcpy(dst, src, (size_t)n_src * sizeof(float));
    }
    if (p->freeze_tokenizers) {
        return MPSL_OK;
    }
    int64_t n_tok, total = 0;
    float *eval = api->model_part(sv->eval, MPSL_PART_TOKENIZERS, &n_tok);
    for (int k = 0; k < sv->K; k++) {
        total += api->client_samples(r, k);
    }
    memset(eval, 0, (size_t)n_tok * sizeof(float));
    for (int k = 0; k < sv->K; k++) {
        mpsl_tensor up = f32(sv->scratch, n_tok, 0, 0);
        int rc = api->recv(r, k, MPSL_MSG_PARAMETERS, &up, err);
        if (rc != MPSL_OK) {
            return rc;
        }
        float w = (float)((double)api->client_samples(r, k) / (double)total);
        for (int64_t i = 0; i < n_tok; i++) {
            eval[i] += w * sv->scratch[i];
        }
    }
    return MPSL_OK;
}

static int mpsl_server(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *r,
                       const void *params, mpsl_error *err)
{
    const mpsl_params *p = params;
    server sv = {0};
    int rc = server_setup(api, r, p, &sv, err);
    if (rc == MPSL_ERR_NOMEM && !err->msg[0]) {
        h->error_set(err, "out of memory for the server's batch of %lld rows",
                     (long long)(sv.b * sv.K));
    }
    /* the epoch's loss so far outlives a checkpoint inside the epoch */
    if (rc == MPSL_OK) {
        rc = api->keep(r, "loss_sum", &sv.loss_sum, sizeof sv.loss_sum, err);
    }
    if (rc == MPSL_OK) {
        rc = api->keep(r, "seen", &sv.seen, sizeof sv.seen, err);
    }
    int64_t epochs = api->settings(r)->epochs, steps = steps_per_epoch(api, r);
    for (int64_t epoch = api->first_epoch(r); epoch < epochs && rc == MPSL_OK; epoch++) {
        int64_t first = epoch == api->first_epoch(r) ? api->first_step(r) : 0;
        if (first == 0) {
            sv.loss_sum = 0;
            sv.seen = 0;
        }
        for (int64_t step = first; step < steps && rc == MPSL_OK; step++) {
            rc = server_forward(api, r, &sv, err);
            if (rc == MPSL_OK) {
                rc = server_backward(api, r, p, &sv, epoch, err);
            }
            if (rc == MPSL_OK) {
                rc = api->step_end(r, epoch, step + 1, err);
            }
            if (rc == MPSL_OK && api->should_stop(r)) {
                rc = MPSL_ERR_INTERRUPTED;
            }
            api->progress(r, epoch, step + 1, steps);
        }
        if (rc == MPSL_OK) {
            rc = build_eval_model(api, r, p, &sv, err);
        }
        if (rc == MPSL_OK) {
            /* train_loss is the server's view, from the loss values the clients reported;
             * train_acc comes from the clients' own records. */
            rc = api->epoch_end(r, epoch, sv.eval, sv.loss_sum / (double)sv.seen, -1.0, err);
        }
    }
    return rc;
}

/* ---------------------------------------------------------------- a client */

typedef struct client {
    mpsl_model *tok;        /* its tokenizers */
    mpsl_optim *opt;
    mpsl_batch *batch;      /* its mini-batch, labels included: they never leave */
    float *logits, *dlogits, *cut_grads;
    int64_t b, T, D, C;
} client;

static int client_setup(const mpsl_session_api *api, mpsl_role *r, const mpsl_params *p,
                        client *c, mpsl_error *err)
{
    c->b = client_batch(api, r, p);
    int rc = api->model_create(r, MPSL_PART_TOKENIZERS, &c->tok, err);
    if (rc == MPSL_OK && !p->freeze_tokenizers) {
        rc = api->optim_create(r, c->tok, &c->opt, err);
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    c->C = api->output_size(r); /* floats per sample of what the server returns */
    api->model_token_shape(c->tok, &c->T, &c->D);
    c->batch = api->batch_create(r, c->b, err);
    if (!c->batch) {
        return MPSL_ERR_NOMEM;
    }
    c->logits = api->alloc(r, (size_t)(c->b * c->C) * sizeof(float));
    c->dlogits = api->alloc(r, (size_t)(c->b * c->C) * sizeof(float));
    c->cut_grads = api->alloc(r, (size_t)(c->b * c->T * c->D) * sizeof(float));
    return c->logits && c->dlogits && c->cut_grads ? MPSL_OK : MPSL_ERR_NOMEM;
}

/* One step of a client: 1. draw its mini-batch, tokenize, send the tokens up; 4. compute the
 * task's loss over its own mini-batch from the logits it gets back (cross-entropy with its
 * own labels, or for retrieval the contrastive loss among its own pairs) and return
 * d(loss)/d(logits) and the loss value; 7. backpropagate the cut-layer gradient through its
 * tokenizers and step. */
static int client_step(const mpsl_session_api *api, mpsl_role *r, const mpsl_params *p,
                       client *c, int64_t epoch, step_stats *st, mpsl_error *err)
{
    int64_t got = api->next_batch(r, c->batch, c->b, err);
    if (got == 0) {
        got = api->next_batch(r, c->batch, c->b, err); /* next pass of its data */
    }
    if (got < 0) {
        return (int)got;
    }
    if (!p->freeze_tokenizers) {
        api->model_zero_grad(c->tok);
    }
    mpsl_tensor tokens;
    int rc = api->model_tokenize(c->tok, c->batch, &tokens, err);
    if (rc == MPSL_OK) {
        rc = api->send(r, MPSL_SERVER, MPSL_MSG_ACTIVATIONS, &tokens, err);
    }
    mpsl_tensor logits = f32(c->logits, got, c->C, 0);
    if (rc == MPSL_OK) {
        rc = api->recv(r, MPSL_SERVER, MPSL_MSG_LOGITS, &logits, err);
    }
    double loss = 0.0;
    int64_t hits = 0;
    if (rc == MPSL_OK) {
        rc = api->loss(r, c->logits, c->batch->labels, got, c->dlogits, &loss, &hits, err);
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    st->loss_sum += loss * (double)got;
    st->correct += hits;
    st->seen += got;
    mpsl_tensor grad = f32(c->dlogits, got, c->C, 0);
    mpsl_tensor scalar = {.data = &loss, .dtype = MPSL_F64, .ndim = 1, .shape = {1}};
    rc = api->send(r, MPSL_SERVER, MPSL_MSG_LOGIT_GRADS, &grad, err);
    if (rc == MPSL_OK) {
        rc = api->send(r, MPSL_SERVER, MPSL_MSG_SCALARS, &scalar, err);
    }
    if (rc != MPSL_OK || p->freeze_tokenizers) {
        return rc;
    }
    mpsl_tensor g = f32(c->cut_grads, got, c->T, c->D);
    rc = api->recv(r, MPSL_SERVER, MPSL_MSG_CUT_GRADS, &g, err);
    if (rc == MPSL_OK) {
        rc = api->model_tokenize_backward(c->tok, &g, err);
    }
    if (rc == MPSL_OK) {
        rc = api->optim_step(c->opt, epoch, err);
    }
    return rc;
}

static int mpsl_client(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *r,
                       const void *params, mpsl_error *err)
{
    const mpsl_params *p = params;
    client c = {0};
    int rc = client_setup(api, r, p, &c, err);
    if (rc == MPSL_ERR_NOMEM && !err->msg[0]) {
        h->error_set(err, "out of memory for client %d", api->client_id(r));
    }
    step_stats st = {0}; /* the epoch's figures so far outlive a checkpoint inside it */
    if (rc == MPSL_OK) {
        rc = api->keep(r, "stats", &st, sizeof st, err);
    }
    int64_t epochs = api->settings(r)->epochs, steps = steps_per_epoch(api, r);
    for (int64_t epoch = api->first_epoch(r); epoch < epochs && rc == MPSL_OK; epoch++) {
        int64_t first = epoch == api->first_epoch(r) ? api->first_step(r) : 0;
        if (first == 0) {
            st = (step_stats){0};
        }
        for (int64_t step = first; step < steps && rc == MPSL_OK; step++) {
            rc = client_step(api, r, p, &c, epoch, &st, err);
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
        if (rc == MPSL_OK && !p->freeze_tokenizers) { /* upload for the evaluation model */
            int64_t n_tok;
            float *tok = api->model_params(c.tok, &n_tok);
            mpsl_tensor up = f32(tok, n_tok, 0, 0);
            rc = api->send(r, MPSL_SERVER, MPSL_MSG_PARAMETERS, &up, err);
        }
        if (rc == MPSL_OK) {
            rc = api->epoch_end(r, epoch, NULL, 0, 0, err);
        }
    }
    return rc;
}

static const mpsl_strategy_api mpsl_api = {
    .size = sizeof(mpsl_strategy_api),
    .session_version = MPSL_SESSION_API_VERSION,
    .server = mpsl_server,
    .client = mpsl_client,
};

MPSL_PLUGIN(MPSL_KIND_AGGREGATION, "mpsl", "2.0.0",
            "parallel split learning: client tokenizers, one server pass over all clients",
            &mpsl_api, mpsl_params, mpsl_spec);
