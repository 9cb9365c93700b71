/* mpsl.c: parallel split learning (MPSL). Clients hold only their tokenizers and labels; the
 * server holds one encoder + head. Each step every client sends its tokens, the server runs
 * ONE forward and backward over all clients' tokens concatenated, each client computes its own
 * loss from the logits it is sent, and gets back only its slice of the cut-layer gradient.
 * Everything that crosses between parties goes through the message layer, which counts it.
 *
 * An epoch is ceil(N / B) server steps (N samples over all clients, B = train.batch_size);
 * in each step client k contributes min(ceil(B / K), what is left of its current pass)
 * samples, cycling through its own partition. With one client this is exactly the batch
 * sequence of centralized training. */
#include <mpsl/plugin.h>
#include <string.h>

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

/* What one client holds. */
typedef struct client {
    mpsl_model *tok;        /* its tokenizers */
    mpsl_optim *opt;
    mpsl_batch *batch;      /* its mini-batch, labels included: they never leave */
    float *logits, *dlogits, *cut_grads;
    int64_t n;              /* samples in the current step */
    double loss_sum;
    int64_t correct, seen;
} client;

typedef struct mpsl_state {
    const mpsl_host *h;
    mpsl_params p;
    int K;
    int64_t b, T, D, C;
    client *clients;
    mpsl_model *server, *eval;
    mpsl_optim *server_opt;
    float *tokens, *logits_grad, *scratch; /* server buffers for the concatenated batch */
    int64_t *offset;        /* first row of each client's slice in this step */
    double server_loss_sum; /* the epoch's loss as the server knows it: from the clients' */
    int64_t server_seen;    /* reported loss values, weighted by their batch sizes */
} mpsl_state;

static int mpsl_create(const mpsl_host *h, mpsl_session *s, const void *params,
                       const char *where, void **state, mpsl_error *err)
{
    (void)where;
    mpsl_state *st = h->alloc(sizeof *st);
    if (!st) {
        h->error_set(err, "out of memory");
        return MPSL_ERR_NOMEM;
    }
    st->h = h;
    st->p = *(const mpsl_params *)params;
    st->K = h->n_clients(s);
    *state = st;
    return MPSL_OK;
}

static void mpsl_destroy(void *state)
{
    mpsl_state *st = state;
    const mpsl_host *h = st->h;
    if (st->clients) {
        for (int k = 0; k < st->K; k++) {
            h->free(st->clients[k].logits);
            h->free(st->clients[k].dlogits);
            h->free(st->clients[k].cut_grads);
        }
    }
    h->free(st->clients);
    h->free(st->tokens);
    h->free(st->logits_grad);
    h->free(st->scratch);
    h->free(st->offset);
    h->free(st);
}

static mpsl_tensor f32(float *data, int64_t a, int64_t b, int64_t c)
{
    mpsl_tensor t = {.data = data, .dtype = MPSL_F32, .ndim = c ? 3 : (b ? 2 : 1)};
    t.shape[0] = a;
    t.shape[1] = b;
    t.shape[2] = c;
    return t;
}

/* Models, optimizers and buffers for every party. */
static int setup(mpsl_state *st, mpsl_session *s, mpsl_error *err)
{
    const mpsl_host *h = st->h;
    const mpsl_train_settings *t = h->settings(s);
    st->b = st->p.client_batch ? st->p.client_batch : (t->batch_size + st->K - 1) / st->K;
    int rc = h->model_create(s, MPSL_PART_ENCODER | MPSL_PART_HEAD, &st->server, err);
    if (rc == MPSL_OK) {
        rc = h->model_create(s, MPSL_PART_ALL, &st->eval, err);
    }
    if (rc == MPSL_OK) {
        rc = h->optim_create(s, st->server, &st->server_opt, err);
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    h->model_token_shape(st->server, &st->T, &st->D);
    st->C = h->model_output_size(st->server); /* floats per sample of the server's output */
    size_t rows = (size_t)(st->b * st->K);
    st->clients = h->alloc((size_t)st->K * sizeof *st->clients);
    st->offset = h->alloc((size_t)(st->K + 1) * sizeof *st->offset);
    st->tokens = h->alloc(rows * (size_t)(st->T * st->D) * sizeof(float));
    st->logits_grad = h->alloc(rows * (size_t)st->C * sizeof(float));
    int64_t n_eval;
    h->model_params(st->eval, &n_eval);
    st->scratch = h->alloc((size_t)n_eval * sizeof(float));
    if (!st->clients || !st->offset || !st->tokens || !st->logits_grad || !st->scratch) {
        h->error_set(err, "out of memory for the server's batch of %zu rows", rows);
        return MPSL_ERR_NOMEM;
    }
    for (int k = 0; k < st->K && rc == MPSL_OK; k++) {
        client *c = &st->clients[k];
        rc = h->model_create(s, MPSL_PART_TOKENIZERS, &c->tok, err);
        if (rc == MPSL_OK && !st->p.freeze_tokenizers) {
            rc = h->optim_create(s, c->tok, &c->opt, err);
        }
        if (rc != MPSL_OK) {
            return rc;
        }
        c->batch = h->batch_create(s, st->b, err);
        c->logits = h->alloc((size_t)(st->b * st->C) * sizeof(float));
        c->dlogits = h->alloc((size_t)(st->b * st->C) * sizeof(float));
        c->cut_grads = h->alloc((size_t)(st->b * st->T * st->D) * sizeof(float));
        if (!c->batch || !c->logits || !c->dlogits || !c->cut_grads) {
            if (c->batch) {
                h->error_set(err, "out of memory for client %d", k);
            }
            return MPSL_ERR_NOMEM;
        }
    }
    return MPSL_OK;
}

/* 1. Each client draws its mini-batch, tokenizes it and sends the tokens up. */
static int clients_forward(mpsl_state *st, mpsl_session *s, mpsl_error *err)
{
    const mpsl_host *h = st->h;
    for (int k = 0; k < st->K; k++) {
        client *c = &st->clients[k];
        int64_t got = h->client_next(s, k, c->batch, st->b, err);
        if (got == 0) {
            got = h->client_next(s, k, c->batch, st->b, err); /* next pass of its data */
        }
        if (got < 0) {
            return (int)got;
        }
        c->n = got;
        h->set_party(s, MPSL_PARTY_CLIENT, k);
        if (!st->p.freeze_tokenizers) {
            h->model_zero_grad(c->tok);
        }
        mpsl_tensor tokens;
        int rc = h->model_tokenize(c->tok, c->batch, &tokens, err);
        if (rc == MPSL_OK) {
            rc = h->send(s, k, MPSL_SERVER, MPSL_MSG_ACTIVATIONS, &tokens, err);
        }
        if (rc != MPSL_OK) {
            return rc;
        }
    }
    return MPSL_OK;
}

/* 2-3. The server concatenates all tokens, runs encoder + head once, sends each client its
 * own slice of the logits. */
static int server_forward(mpsl_state *st, mpsl_session *s, mpsl_error *err)
{
    const mpsl_host *h = st->h;
    int64_t row = 0, TD = st->T * st->D;
    for (int k = 0; k < st->K; k++) {
        st->offset[k] = row;
        mpsl_tensor slot = f32(st->tokens + row * TD, st->clients[k].n, st->T, st->D);
        int rc = h->recv(s, MPSL_SERVER, k, MPSL_MSG_ACTIVATIONS, &slot, err);
        if (rc != MPSL_OK) {
            return rc;
        }
        row += slot.shape[0];
    }
    st->offset[st->K] = row;
    h->set_party(s, MPSL_PARTY_SERVER, -1);
    h->model_zero_grad(st->server);
    mpsl_tensor all = f32(st->tokens, row, st->T, st->D), logits;
    int rc = h->model_encode(st->server, &all, &logits, err);
    for (int k = 0; k < st->K && rc == MPSL_OK; k++) {
        int64_t n = st->offset[k + 1] - st->offset[k];
        mpsl_tensor slice = f32((float *)logits.data + st->offset[k] * st->C, n, st->C, 0);
        rc = h->send(s, MPSL_SERVER, k, MPSL_MSG_LOGITS, &slice, err);
    }
    return rc;
}

/* 4. Each client computes the task's loss over its own mini-batch (h->loss: cross-entropy
 * with its own labels, or for retrieval the contrastive loss among its own image-caption
 * pairs, which needs no labels) and returns d(loss)/d(logits) and the loss value. */
static int clients_loss(mpsl_state *st, mpsl_session *s, mpsl_error *err)
{
    const mpsl_host *h = st->h;
    for (int k = 0; k < st->K; k++) {
        client *c = &st->clients[k];
        mpsl_tensor logits = f32(c->logits, c->n, st->C, 0);
        int rc = h->recv(s, k, MPSL_SERVER, MPSL_MSG_LOGITS, &logits, err);
        if (rc != MPSL_OK) {
            return rc;
        }
        h->set_party(s, MPSL_PARTY_CLIENT, k);
        int64_t hits = 0;
        double loss = h->loss(s, c->dlogits, c->logits, c->batch->labels, c->n, &hits);
        c->loss_sum += loss * (double)c->n;
        c->correct += hits;
        c->seen += c->n;
        float value = (float)loss;
        mpsl_tensor grad = f32(c->dlogits, c->n, st->C, 0), scalar = f32(&value, 1, 0, 0);
        rc = h->send(s, k, MPSL_SERVER, MPSL_MSG_LOGIT_GRADS, &grad, err);
        if (rc == MPSL_OK) {
            rc = h->send(s, k, MPSL_SERVER, MPSL_MSG_SCALARS, &scalar, err);
        }
        if (rc != MPSL_OK) {
            return rc;
        }
    }
    return MPSL_OK;
}

/* 5-6. The server weights each client's gradient by its share of the batch (the aggregated
 * loss is sum_k (b_k / B) L_k), backpropagates once, steps, and sends each client its slice
 * of the cut-layer gradient. */
static int server_backward(mpsl_state *st, mpsl_session *s, int64_t epoch, mpsl_error *err)
{
    const mpsl_host *h = st->h;
    int64_t total = st->offset[st->K];
    for (int k = 0; k < st->K; k++) {
        int64_t n = st->offset[k + 1] - st->offset[k];
        float *g = st->logits_grad + st->offset[k] * st->C;
        mpsl_tensor grad = f32(g, n, st->C, 0);
        float value;
        mpsl_tensor scalar = f32(&value, 1, 0, 0);
        int rc = h->recv(s, MPSL_SERVER, k, MPSL_MSG_LOGIT_GRADS, &grad, err);
        if (rc == MPSL_OK) {
            rc = h->recv(s, MPSL_SERVER, k, MPSL_MSG_SCALARS, &scalar, err);
        }
        if (rc != MPSL_OK) {
            return rc;
        }
        float share = (float)n / (float)total;
        for (int64_t i = 0; i < n * st->C; i++) {
            g[i] *= share;
        }
        st->server_loss_sum += (double)value * (double)n;
        st->server_seen += n;
    }
    h->set_party(s, MPSL_PARTY_SERVER, -1);
    mpsl_tensor dlogits = f32(st->logits_grad, total, st->C, 0), dtokens;
    int rc = h->model_encode_backward(st->server, &dlogits, &dtokens, err);
    if (rc == MPSL_OK) {
        rc = h->optim_step(st->server_opt, epoch, err);
    }
    if (rc != MPSL_OK || st->p.freeze_tokenizers) {
        return rc;
    }
    int64_t TD = st->T * st->D;
    for (int k = 0; k < st->K && rc == MPSL_OK; k++) {
        int64_t n = st->offset[k + 1] - st->offset[k];
        mpsl_tensor slice = f32((float *)dtokens.data + st->offset[k] * TD, n, st->T, st->D);
        rc = h->send(s, MPSL_SERVER, k, MPSL_MSG_CUT_GRADS, &slice, err);
    }
    return rc;
}

/* 7. Each client backpropagates its cut-layer gradient through its tokenizers and steps. */
static int clients_backward(mpsl_state *st, mpsl_session *s, int64_t epoch, mpsl_error *err)
{
    const mpsl_host *h = st->h;
    if (st->p.freeze_tokenizers) {
        return MPSL_OK;
    }
    for (int k = 0; k < st->K; k++) {
        client *c = &st->clients[k];
        mpsl_tensor g = f32(c->cut_grads, c->n, st->T, st->D);
        int rc = h->recv(s, k, MPSL_SERVER, MPSL_MSG_CUT_GRADS, &g, err);
        h->set_party(s, MPSL_PARTY_CLIENT, k);
        if (rc == MPSL_OK) {
            rc = h->model_tokenize_backward(c->tok, &g, err);
        }
        if (rc == MPSL_OK) {
            rc = h->optim_step(c->opt, epoch, err);
        }
        if (rc != MPSL_OK) {
            return rc;
        }
    }
    return MPSL_OK;
}

/* The evaluation model: clients upload their tokenizers, the server averages them weighted by
 * sample count (FedAvg style) and puts them in front of its encoder and head. Layouts: the
 * full model holds the tokenizers' parameters first, then the server's, in declaration
 * order. With frozen tokenizers nothing changes on the clients, so nothing is sent. */
static int build_eval_model(mpsl_state *st, mpsl_session *s, mpsl_error *err)
{
    const mpsl_host *h = st->h;
    int64_t n_eval, n_tok, n_srv;
    float *eval = h->model_params(st->eval, &n_eval);
    const float *srv = h->model_params(st->server, &n_srv);
    h->model_params(st->clients[0].tok, &n_tok);
    if (n_tok + n_srv != n_eval) {
        h->error_set(err, "mpsl: tokenizer (%lld) and server (%lld) parameters do not add up "
                     "to the full model's (%lld)", (long long)n_tok, (long long)n_srv,
                     (long long)n_eval);
        return MPSL_ERR_INTERNAL;
    }
    memcpy(eval + n_tok, srv, (size_t)n_srv * sizeof(float));
    if (st->p.freeze_tokenizers) {
        memcpy(eval, h->model_params(st->clients[0].tok, &n_tok), (size_t)n_tok * sizeof(float));
        return MPSL_OK;
    }
    int64_t total = 0;
    for (int k = 0; k < st->K; k++) {
        total += h->client_samples(s, k);
    }
    memset(eval, 0, (size_t)n_tok * sizeof(float));
    for (int k = 0; k < st->K; k++) {
        mpsl_tensor up = f32(h->model_params(st->clients[k].tok, &n_tok), n_tok, 0, 0);
        mpsl_tensor recv = f32(st->scratch, n_tok, 0, 0);
        int rc = h->send(s, k, MPSL_SERVER, MPSL_MSG_PARAMETERS, &up, err);
        if (rc == MPSL_OK) {
            rc = h->recv(s, MPSL_SERVER, k, MPSL_MSG_PARAMETERS, &recv, err);
        }
        if (rc != MPSL_OK) {
            return rc;
        }
        float w = (float)((double)h->client_samples(s, k) / (double)total);
        for (int64_t i = 0; i < n_tok; i++) {
            eval[i] += w * st->scratch[i];
        }
    }
    return MPSL_OK;
}

static int run_epoch(mpsl_state *st, mpsl_session *s, int64_t epoch, mpsl_error *err)
{
    const mpsl_host *h = st->h;
    int64_t N = 0;
    for (int k = 0; k < st->K; k++) {
        N += h->client_samples(s, k);
        st->clients[k].loss_sum = 0;
        st->clients[k].correct = st->clients[k].seen = 0;
    }
    st->server_loss_sum = 0;
    st->server_seen = 0;
    int64_t B = h->settings(s)->batch_size;
    int64_t steps = (N + B - 1) / B;
    int rc = MPSL_OK;
    for (int64_t step = 0; step < steps && rc == MPSL_OK; step++) {
        rc = clients_forward(st, s, err);
        if (rc == MPSL_OK) {
            rc = server_forward(st, s, err);
        }
        if (rc == MPSL_OK) {
            rc = clients_loss(st, s, err);
        }
        if (rc == MPSL_OK) {
            rc = server_backward(st, s, epoch, err);
        }
        if (rc == MPSL_OK) {
            rc = clients_backward(st, s, epoch, err);
        }
        if (rc == MPSL_OK && h->should_stop(s)) {
            rc = MPSL_ERR_INTERRUPTED;
        }
        h->progress(s, epoch, step + 1, steps);
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    int64_t correct = 0, seen = 0;
    for (int k = 0; k < st->K && rc == MPSL_OK; k++) {
        const client *c = &st->clients[k];
        correct += c->correct;
        seen += c->seen;
        rc = h->record_client(s, epoch, k, "train_loss", c->loss_sum / (double)c->seen, err);
        if (rc == MPSL_OK) {
            rc = h->record_client(s, epoch, k, "train_acc", (double)c->correct / (double)c->seen,
                                  err);
        }
        if (rc == MPSL_OK) {
            rc = h->record_client(s, epoch, k, "samples", (double)c->seen, err);
        }
    }
    if (rc == MPSL_OK) {
        rc = build_eval_model(st, s, err);
    }
    if (rc == MPSL_OK) {
        /* train_loss is the server's view, from the loss values the clients reported; the
         * per-client figures above are the clients' own. */
        rc = h->epoch_end(s, epoch, st->eval, st->server_loss_sum / (double)st->server_seen,
                          (double)correct / (double)seen, err);
    }
    return rc;
}

static int mpsl_run(void *state, mpsl_session *s, mpsl_error *err)
{
    mpsl_state *st = state;
    int rc = setup(st, s, err);
    int64_t epochs = st->h->settings(s)->epochs;
    for (int64_t epoch = 0; epoch < epochs && rc == MPSL_OK; epoch++) {
        rc = run_epoch(st, s, epoch, err);
    }
    return rc;
}

static const mpsl_aggregation_api mpsl_api = {
    .size = sizeof(mpsl_aggregation_api),
    .create = mpsl_create,
    .destroy = mpsl_destroy,
    .run = mpsl_run,
};

static const mpsl_plugin_desc mpsl_desc = {
    .abi_major = MPSL_ABI_MAJOR,
    .abi_minor = MPSL_ABI_MINOR,
    .name = "mpsl",
    .version = "1.0.0",
    .kind = MPSL_KIND_AGGREGATION,
    .summary = "parallel split learning: client tokenizers, one server pass over all clients",
    .params = mpsl_spec,
    .n_params = MPSL_COUNT(mpsl_spec),
    .params_size = sizeof(mpsl_params),
    .api = &mpsl_api,
};

MPSL_PLUGIN_EXPORT int mpsl_plugin_entry(const mpsl_host *h, const mpsl_plugin_desc **desc,
                                         mpsl_error *err)
{
    (void)h;
    (void)err;
    *desc = &mpsl_desc;
    return MPSL_OK;
}
