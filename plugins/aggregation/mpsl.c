/* mpsl.c: parallel split learning (MPSL) as two roles. Clients hold only their tokenizers
 * and labels; the server holds one encoder + head. Each step every client sends its tokens,
 * the server runs ONE forward and backward over all clients' tokens concatenated, each client
 * computes its own loss from the logits it is sent, and gets back only its slice of the
 * cut-layer gradient. Everything that crosses between parties goes through the message
 * layer, which counts it.
 *
 * Client k draws b = ceil(B / K) samples a step (B = train.batch_size, K clients; or
 * client_batch). What an epoch is, `epoch`:
 * - one_pass (the default, as the reference implementation): every client makes exactly one
 *   pass over its partition of n_k samples, ceil(n_k / b) steps; the epoch is as long as the
 *   longest client's pass, and a client whose pass is over sits out the remaining steps (it
 *   sends nothing and is sent nothing), so the server's batch shrinks as clients finish;
 * - cycle: ceil(N / B) steps (N samples over all clients) in which every client takes part,
 *   restarting its partition reshuffled whenever its pass is over, so small partitions are
 *   cycled and large ones may not be finished within an epoch.
 * Every role derives who takes part in which step from the partition sizes, so no message
 * says it. With one client both are exactly the batch sequence of centralized training.
 *
 * At the end of each epoch the clients upload their tokenizers and the server averages them,
 * weighted by sample count (FedAvg style), in front of its encoder and head: the model that
 * is evaluated. The clients keep training their own tokenizers, which drift apart (the
 * reference's behaviour); two additions beside the reference:
 * - diagnostics: the server, which holds every uploaded tokenizer anyway, measures that drift
 *   when the epoch is evaluated (each client's tokenizer on the test split, the average on the
 *   clients' training data, a cross-accuracy matrix, each tokenizer's distance from the
 *   average) through the session API's diagnostics, which count no bytes and no FLOPs;
 * - sync_tokenizers_every N: every N epochs the server sends the average back and the clients
 *   replace theirs with it (counted as parameters down, as FedAvg's broadcast is).
 *
 * Retrieval's loss (`retrieval_loss`): by default each client computes the contrastive loss
 * over its own pairs from the embeddings it is sent (the reference's: a client sees only its
 * own b pairs as negatives). With `server` the server computes it over the whole
 * concatenated batch, every client's pairs as negatives for every other's, and the clients
 * exchange only tokens and cut-layer gradients; a classification loss stays with the clients,
 * whose labels never leave them.
 *
 * Dropout (dropout.h): in each step only the clients the host's participants() says are
 * there take part; the server's batch is what arrived. A client that misses a step draws no
 * batch in it: its pass simply goes on at its next step (in one_pass it may take part after
 * its pass would have ended, up to the epoch's last step, to catch up; what is still left
 * then is carried into the next epoch, as its cursor is). A step with fewer than min_clients
 * there is skipped by all.
 *
 * head_on_client: the U-shaped layout, in mpsl_ushaped.c: each client also holds a copy of the
 * head, so the server never receives d(loss)/d(logits), which names every label
 * (docs/privacy.md). defence: what each client does to the gradient it returns
 * (grad_defence.h), in either layout. */
#include <math.h>
#include <mpsl/plugin.h>
#include <stdio.h>
#include <string.h>

#include "dropout.h"
#include "local_step.h"
#include "mpsl_ushaped.h"
#include "split_step.h"

enum { EPOCH_ONE_PASS = 0, EPOCH_CYCLE = 1 };
enum { LOSS_ON_CLIENT = 0, LOSS_ON_SERVER = 1 };

typedef struct mpsl_params {
    int freeze_tokenizers;  /* 1: tokenizers stay as initialised; no cut-layer gradients sent */
    int64_t client_batch;   /* samples per client per step; 0: ceil(batch_size / clients) */
    int epoch;              /* EPOCH_ONE_PASS or EPOCH_CYCLE */
    int diagnostics;        /* 1: measure the tokenizers' drift when an epoch is evaluated */
    int64_t diagnostics_samples;      /* per client, of its training data; 0: all of it */
    int64_t diagnostics_test_samples; /* of the test split; 0: all of it */
    int diagnostics_cross;  /* 1: the cross-accuracy matrix too (K x K evaluations) */
    int64_t sync_tokenizers_every; /* broadcast the averaged tokenizer every N epochs; 0 never */
    int retrieval_loss;     /* LOSS_ON_CLIENT (the reference) or LOSS_ON_SERVER */
    mpsl_participation part; /* dropout, dropout_burst, min_clients, deadline */
    int head_on_client;     /* 1: U-shaped, mpsl_ushaped.c: the clients hold the head */
    int defence;            /* DEFENCE_* on the gradients a client returns (grad_defence.h) */
    double defence_noise;   /* its privacy knob */
} mpsl_params;

static const mpsl_param_spec mpsl_spec[] = {
    MPSL_PARAM_BOOL(mpsl_params, freeze_tokenizers, "freeze_tokenizers", "false",
                    "keep the client tokenizers frozen (no cut-layer gradients are sent)"),
    MPSL_PARAM_INT(mpsl_params, client_batch, "client_batch", 0, 0, 1000000, "0",
                   "samples per client per step; 0: ceil(train.batch_size / clients)"),
    MPSL_PARAM_ENUM(mpsl_params, epoch, "epoch", "one_pass|cycle", "one_pass",
                    "one_pass: each client passes over its partition once per epoch, sitting "
                    "out once done (the reference's); cycle: ceil(N / batch_size) steps, every "
                    "client in each, restarting its partition when done"),
    MPSL_PARAM_BOOL(mpsl_params, diagnostics, "diagnostics", "false",
                    "record the client tokenizers' drift when an epoch is evaluated (not "
                    "counted as traffic or FLOPs; costs about clients x one evaluation)"),
    MPSL_PARAM_INT(mpsl_params, diagnostics_samples, "diagnostics_samples", 0, 0, 1000000000,
                   "256", "diagnostics: training samples per client, spread over its "
                   "partition; 0: all of it"),
    MPSL_PARAM_INT(mpsl_params, diagnostics_test_samples, "diagnostics_test_samples", 0, 0,
                   1000000000, "0", "diagnostics: the first N test samples for each client "
                   "tokenizer's test accuracy; 0: the whole test split"),
    MPSL_PARAM_BOOL(mpsl_params, diagnostics_cross, "diagnostics_cross", "true",
                    "diagnostics: every client's tokenizer on every client's sample "
                    "(clients^2 evaluations of diagnostics_samples)"),
    MPSL_PARAM_INT(mpsl_params, sync_tokenizers_every, "sync_tokenizers_every", 0, 0, 1000000,
                   "0", "every N epochs the clients replace their tokenizers with the "
                   "sample-weighted average; 0: never (the reference)"),
    MPSL_PARAM_ENUM(mpsl_params, retrieval_loss, "retrieval_loss", "client|server", "client",
                    "retrieval: client: each client's contrastive loss over its own pairs (the "
                    "reference); server: the server's over all clients' pairs at once"),
    DROPOUT_PARAM_SPECS(mpsl_params, part),
    MPSL_PARAM_BOOL(mpsl_params, head_on_client, "head_on_client", "false",
                    "U-shaped: each client holds a copy of the head, computes its loss and "
                    "returns d(features); the server runs the encoder only"),
    MPSL_PARAM_ENUM(mpsl_params, defence, "defence", "none|gaussian|max_norm", "none",
                    "what a client does to the gradient it returns (logit or feature "
                    "gradients) against label leakage; see docs/privacy.md"),
    MPSL_PARAM_FLOAT(mpsl_params, defence_noise, "defence_noise", 0, 0, 1e6, "1",
                     "gaussian: noise std / RMS gradient entry of the batch; max_norm: target "
                     "norm / the batch's largest row norm (1: Li et al.'s heuristic)"),
};

static grad_defence defence_of(const mpsl_params *p)
{
    return (grad_defence){.kind = p->defence, .noise = p->defence_noise};
}

/* Where the task's loss is computed: retrieval_loss: server moves it to the server; the check
 * refuses it for any other task. */
static int loss_on_server(const mpsl_params *p)
{
    return p->retrieval_loss == LOSS_ON_SERVER;
}

/* What every role derives alike from the run: samples per client per step, the steps client
 * k takes part in (its first ones), and the steps of an epoch. */
static int64_t client_batch(const mpsl_session_api *api, mpsl_role *r, const mpsl_params *p)
{
    int K = api->n_clients(r);
    return p->client_batch ? p->client_batch : (api->settings(r)->batch_size + K - 1) / K;
}

/* N: the samples of all clients' partitions together (the weights' denominator). */
static int64_t all_samples(const mpsl_session_api *api, mpsl_role *r)
{
    int64_t N = 0;
    for (int k = 0; k < api->n_clients(r); k++) {
        N += api->client_samples(r, k);
    }
    return N;
}

/* cycle: ceil(N / B) steps, every client in each; one_pass: its own pass, ceil(n_k / b). */
static int64_t client_steps(const mpsl_session_api *api, mpsl_role *r, const mpsl_params *p,
                            int k)
{
    if (p->epoch == EPOCH_CYCLE) {
        int64_t N = all_samples(api, r), B = api->settings(r)->batch_size;
        return (N + B - 1) / B;
    }
    int64_t b = client_batch(api, r, p);
    return (api->client_samples(r, k) + b - 1) / b;
}

/* As long as the longest client's part. */
static int64_t steps_per_epoch(const mpsl_session_api *api, mpsl_role *r, const mpsl_params *p)
{
    int64_t steps = 0;
    for (int k = 0; k < api->n_clients(r); k++) {
        int64_t s = client_steps(api, r, p, k);
        steps = s > steps ? s : steps;
    }
    return steps;
}

/* Who takes part in a step. Every role keeps the same copy for all clients (participants()
 * is a pure function of seed, client and step), so the server and the clients agree on it
 * without a message. A client wants a step while it has taken part in fewer steps this epoch
 * than its pass has (one_pass: ceil(n_k / b); cycle: every step); without dropout that is
 * exactly the steps before its pass ends. */
typedef struct attendance {
    int64_t steps;          /* steps per epoch */
    int64_t *pass;          /* per client: the steps of its part of an epoch */
    int64_t *done;          /* per client: the steps it has taken part in this epoch */
    uint8_t *want, *status; /* per client, for the step being decided */
    int64_t skipped;        /* this epoch's steps that some client wanted but nobody took */
    mpsl_slot_work *work;   /* deadline: what a step asks of each client; else NULL (every
                               role keeps K of these: K^2 in one process) */
} attendance;

/* T, D: tokens per sample and their width; C: outputs per sample. */
static int attendance_setup(const mpsl_session_api *api, mpsl_role *r, const mpsl_params *p,
                            int64_t T, int64_t D, int64_t C, attendance *a)
{
    int K = api->n_clients(r);
    a->steps = steps_per_epoch(api, r, p);
    a->pass = api->alloc(r, (size_t)K * sizeof *a->pass);
    a->done = api->alloc(r, (size_t)K * sizeof *a->done);
    a->want = api->alloc(r, (size_t)K);
    a->status = api->alloc(r, (size_t)K);
    a->work = p->part.deadline > 0 ? api->alloc(r, (size_t)K * sizeof *a->work) : NULL;
    if (!a->pass || !a->done || !a->want || !a->status || (!a->work && p->part.deadline > 0)) {
        return MPSL_ERR_NOMEM;
    }
    /* a step of a full client batch b (a pass's last, smaller batch is predicted as full):
     * tokens up, [logits down, their gradient and the loss value up], [cut-layer gradient
     * down] */
    int64_t b = client_batch(api, r, p), tokens = b * T * D * 4, outs = b * C * 4;
    int loss = !loss_on_server(p), backward = !p->freeze_tokenizers;
    for (int k = 0; k < K; k++) {
        a->pass[k] = client_steps(api, r, p, k);
        if (!a->work) {
            continue;
        }
        a->work[k] = (mpsl_slot_work){
            .kind = MPSL_WORK_SPLIT_CLIENT, .loss = loss, .backward = backward, .steps = 1,
            .samples = b, .up_bytes = tokens + (loss ? outs + 8 : 0),
            .down_bytes = (loss ? outs : 0) + (backward ? tokens : 0),
            .messages = 1 + (loss ? 3 : 0) + (backward ? 1 : 0)};
    }
    return MPSL_OK;
}

/* Decide step `step` of `epoch`: a->status per client; returns how many take part. */
static int attendance_step(const mpsl_session_api *api, mpsl_role *r, const mpsl_params *p,
                           attendance *a, int64_t epoch, int64_t step, mpsl_error *err)
{
    int K = api->n_clients(r), wanted = 0;
    if (step == 0) {
        memset(a->done, 0, (size_t)K * sizeof *a->done);
        a->skipped = 0;
    }
    for (int k = 0; k < K; k++) {
        a->want[k] = a->done[k] < a->pass[k];
        wanted |= a->want[k];
    }
    int there = api->participants(r, &p->part, epoch * a->steps + step, a->want, a->work,
                                  a->status, err);
    for (int k = 0; k < K && there > 0; k++) {
        a->done[k] += a->status[k] == MPSL_SLOT_TAKES_PART;
    }
    a->skipped += wanted && there == 0;
    return there;
}

/* ---------------------------------------------------------------- the server */

typedef struct server {
    int K;
    int64_t b, T, D, C;
    mpsl_model *model, *eval;
    mpsl_optim *opt;
    float *tokens, *logits_grad, *scratch; /* the concatenated batch; an uploaded tokenizer */
    float *uploads, *average; /* diagnostics: every client's tokenizer, and their average */
    double *figures;        /* diagnostics: per-client scratch */
    int64_t *offset;        /* first row of each client's slice in this step */
    attendance att;         /* who takes part in the step */
    double loss_sum;        /* the epoch's loss as the server knows it: from the clients' */
    int64_t seen;           /* reported loss values, weighted by their batch sizes */
    int64_t correct;        /* retrieval_loss: server: the hits of its own loss calls */
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
    if (!sv->offset || !sv->tokens || !sv->logits_grad || !sv->scratch ||
        attendance_setup(api, r, p, sv->T, sv->D, sv->C, &sv->att) != MPSL_OK) {
        return MPSL_ERR_NOMEM;
    }
    if (p->diagnostics && !p->freeze_tokenizers) {
        sv->uploads = api->alloc(r, (size_t)sv->K * (size_t)(n_tok ? n_tok : 1) * sizeof(float));
        sv->average = api->alloc(r, (size_t)(n_tok ? n_tok : 1) * sizeof(float));
        sv->figures = api->alloc(r, (size_t)sv->K * sizeof(double));
        if (!sv->uploads || !sv->average || !sv->figures) {
            return MPSL_ERR_NOMEM;
        }
    }
    return MPSL_OK;
}

/* 2-3. Receive the tokens of every client taking part in this step into one batch, run
 * encoder + head once, send each its own slice of the logits (unless the server computes the
 * loss itself: *out keeps the outputs for it). A client sitting the step out has an empty
 * slice and exchanges nothing. */
static int server_forward(const mpsl_session_api *api, mpsl_role *r, const mpsl_params *p,
                          server *sv, mpsl_tensor *out, mpsl_error *err)
{
    int rc = gather_client_tokens(api, r, sv->K, sv->att.status, sv->tokens, sv->b, sv->T,
                                  sv->D, sv->offset, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    api->model_zero_grad(sv->model);
    mpsl_tensor all = f32(sv->tokens, sv->offset[sv->K], sv->T, sv->D), logits;
    rc = api->model_encode(sv->model, &all, &logits, err);
    *out = logits;
    for (int k = 0; k < sv->K && rc == MPSL_OK && !loss_on_server(p); k++) {
        int64_t n = sv->offset[k + 1] - sv->offset[k];
        if (n == 0) {
            continue;
        }
        mpsl_tensor slice = f32((float *)logits.data + sv->offset[k] * sv->C, n, sv->C, 0);
        rc = api->send(r, k, MPSL_MSG_LOGITS, &slice, err);
    }
    return rc;
}

/* One backward pass from the logit gradient over the whole batch, the server's step, and each
 * client's slice of the cut-layer gradient. */
static int server_backpropagate(const mpsl_session_api *api, mpsl_role *r,
                                const mpsl_params *p, server *sv, int64_t epoch,
                                mpsl_error *err)
{
    int64_t total = sv->offset[sv->K];
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
        if (n == 0) {
            continue;
        }
        mpsl_tensor slice = f32((float *)dtokens.data + sv->offset[k] * TD, n, sv->T, sv->D);
        rc = api->send(r, k, MPSL_MSG_CUT_GRADS, &slice, err);
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
        if (n == 0) {
            continue;
        }
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
    return server_backpropagate(api, r, p, sv, epoch, err);
}

/* retrieval_loss: server, in place of 4-5: the task's loss over the whole batch (each client's
 * pairs are negatives for every other's), its gradient straight into the backward pass. */
static int server_loss(const mpsl_session_api *api, mpsl_role *r, const mpsl_params *p,
                       server *sv, int64_t epoch, const mpsl_tensor *out, mpsl_error *err)
{
    int64_t total = sv->offset[sv->K], hits = 0;
    double value = 0.0;
    int rc = api->loss(r, out->data, NULL, total, sv->logits_grad, &value, &hits, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    sv->loss_sum += value * (double)total;
    sv->correct += hits;
    sv->seen += total;
    return server_backpropagate(api, r, p, sv, epoch, err);
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
    int64_t n_tok, total = all_samples(api, r);
    float *eval = api->model_part(sv->eval, MPSL_PART_TOKENIZERS, &n_tok);
    memset(eval, 0, (size_t)n_tok * sizeof(float));
    for (int k = 0; k < sv->K; k++) {
        /* the diagnostics keep every upload; the average alone needs one at a time */
        float *mine = sv->uploads ? sv->uploads + (size_t)k * (size_t)n_tok : sv->scratch;
        mpsl_tensor up = f32(mine, n_tok, 0, 0);
        int rc = api->recv(r, k, MPSL_MSG_PARAMETERS, &up, err);
        if (rc != MPSL_OK) {
            return rc;
        }
        float w = (float)((double)api->client_samples(r, k) / (double)total);
        for (int64_t i = 0; i < n_tok; i++) {
            eval[i] += w * mine[i];
        }
    }
    return MPSL_OK;
}

/* ---------------------------------------------------------------- diagnostics */

/* Whether the host evaluates this epoch (its rule): the diagnostics follow it, so that
 * train.eval_every bounds their cost as it bounds the evaluation's. */
static int evaluated(const mpsl_session_api *api, mpsl_role *r, int64_t epoch)
{
    const mpsl_train_settings *t = api->settings(r);
    return (epoch + 1) % t->eval_every == 0 || epoch == t->epochs - 1;
}

/* The mean, min and max over clients of sv->figures, as epoch metrics NAME_mean/_min/_max. */
static int record_spread(const mpsl_session_api *api, mpsl_role *r, const server *sv,
                         const char *name, mpsl_error *err)
{
    double sum = 0, lo = sv->figures[0], hi = sv->figures[0];
    for (int k = 0; k < sv->K; k++) {
        sum += sv->figures[k];
        lo = sv->figures[k] < lo ? sv->figures[k] : lo;
        hi = sv->figures[k] > hi ? sv->figures[k] : hi;
    }
    const char *suffix[] = {"mean", "min", "max"};
    double value[] = {sum / sv->K, lo, hi};
    int rc = MPSL_OK;
    for (int i = 0; i < 3 && rc == MPSL_OK; i++) {
        char full[48];
        snprintf(full, sizeof full, "%s_%s", name, suffix[i]);
        rc = api->record(r, full, value[i], err);
    }
    return rc;
}

/* What the clients' own tokenizers hide. The evaluation model holds the average (kept aside
 * and put back bit for bit); for each measurement a client's upload takes its place. Client
 * metrics: tokenizer_drift (||t_k - avg|| / ||avg||), own_tokenizer_test_acc,
 * train_acc_avg_tokenizer (the average on client k's sample) and cross_acc_tok_J (client J's
 * tokenizer on client k's sample: row k of the matrix is recorded under client k). Epoch
 * metrics: their spreads, the average's train accuracy and the matrix's diagonal and the rest,
 * weighted by the clients' partition sizes as train_acc is. */
static int diagnose(const mpsl_session_api *api, mpsl_role *r, const mpsl_params *p,
                    server *sv, mpsl_error *err)
{
    int64_t n_tok, total = all_samples(api, r);
    float *tok = api->model_part(sv->eval, MPSL_PART_TOKENIZERS, &n_tok);
    memcpy(sv->average, tok, (size_t)n_tok * sizeof(float));
    double avg_norm = 0;
    for (int64_t i = 0; i < n_tok; i++) {
        avg_norm += (double)sv->average[i] * (double)sv->average[i];
    }
    int rc = MPSL_OK;
    for (int k = 0; k < sv->K && rc == MPSL_OK; k++) {
        const float *mine = sv->uploads + (size_t)k * (size_t)n_tok;
        double d = 0;
        for (int64_t i = 0; i < n_tok; i++) {
            double e = (double)mine[i] - (double)sv->average[i];
            d += e * e;
        }
        sv->figures[k] = avg_norm > 0 ? sqrt(d / avg_norm) : sqrt(d); /* all-zero: absolute */
        rc = api->record_client(r, k, "tokenizer_drift", sv->figures[k], err);
    }
    if (rc == MPSL_OK) {
        rc = record_spread(api, r, sv, "tokenizer_drift", err);
    }
    /* the average on each client's training sample */
    double pooled = 0, own = 0, others = 0;
    for (int k = 0; k < sv->K && rc == MPSL_OK; k++) {
        double acc;
        rc = api->evaluate(r, sv->eval, k, p->diagnostics_samples, &acc, NULL, err);
        if (rc == MPSL_OK) {
            rc = api->record_client(r, k, "train_acc_avg_tokenizer", acc, err);
        }
        pooled += (double)api->client_samples(r, k) / (double)total * acc;
    }
    if (rc == MPSL_OK) {
        rc = api->record(r, "train_acc_avg_tokenizer", pooled, err);
    }
    /* each client's own tokenizer: on the test split, and on every client's sample */
    for (int j = 0; j < sv->K && rc == MPSL_OK; j++) {
        memcpy(tok, sv->uploads + (size_t)j * (size_t)n_tok, (size_t)n_tok * sizeof(float));
        rc = api->evaluate(r, sv->eval, MPSL_SERVER, p->diagnostics_test_samples,
                           &sv->figures[j], NULL, err);
        if (rc == MPSL_OK) {
            rc = api->record_client(r, j, "own_tokenizer_test_acc", sv->figures[j], err);
        }
        for (int k = 0; k < sv->K && p->diagnostics_cross && rc == MPSL_OK; k++) {
            double acc, w = (double)api->client_samples(r, k) / (double)total;
            char name[48];
            snprintf(name, sizeof name, "cross_acc_tok_%d", j);
            rc = api->evaluate(r, sv->eval, k, p->diagnostics_samples, &acc, NULL, err);
            if (rc == MPSL_OK) {
                rc = api->record_client(r, k, name, acc, err);
            }
            if (j == k) {
                own += w * acc;
            } else {
                others += w * acc / (double)(sv->K - 1);
            }
        }
    }
    memcpy(tok, sv->average, (size_t)n_tok * sizeof(float));
    if (rc == MPSL_OK) {
        rc = record_spread(api, r, sv, "own_tokenizer_test_acc", err);
    }
    if (rc == MPSL_OK && p->diagnostics_cross) {
        rc = api->record(r, "cross_acc_own", own, err);
    }
    if (rc == MPSL_OK && p->diagnostics_cross && sv->K > 1) {
        rc = api->record(r, "cross_acc_others", others, err);
    }
    return rc;
}

/* Whether the clients take the average after this epoch: every N epochs, never after the
 * last (nothing trains after it). */
static int sync_due(const mpsl_session_api *api, mpsl_role *r, const mpsl_params *p,
                    int64_t epoch)
{
    return p->sync_tokenizers_every > 0 && !p->freeze_tokenizers &&
           (epoch + 1) % p->sync_tokenizers_every == 0 &&
           epoch + 1 < api->settings(r)->epochs;
}

/* The average, the evaluation model's tokenizers, down to every client (counted as
 * parameters, as FedAvg's broadcast of its global model is). */
static int send_average(const mpsl_session_api *api, mpsl_role *r, server *sv, mpsl_error *err)
{
    int64_t n_tok;
    float *avg = api->model_part(sv->eval, MPSL_PART_TOKENIZERS, &n_tok);
    mpsl_tensor down = f32(avg, n_tok, 0, 0);
    int rc = MPSL_OK;
    for (int k = 0; k < sv->K && rc == MPSL_OK; k++) {
        rc = api->send(r, k, MPSL_MSG_PARAMETERS, &down, err);
    }
    return rc;
}

/* head_on_client: what every U-shaped role derives alike from these parameters. */
static int ushaped_plan_of(const mpsl_session_api *api, mpsl_role *r, const mpsl_params *p,
                           ushaped_plan *plan)
{
    int K = api->n_clients(r);
    int64_t *steps = api->alloc(r, (size_t)K * sizeof *steps);
    if (!steps) {
        return MPSL_ERR_NOMEM;
    }
    for (int k = 0; k < K; k++) {
        steps[k] = client_steps(api, r, p, k);
    }
    *plan = (ushaped_plan){.freeze_tokenizers = p->freeze_tokenizers,
                           .b = client_batch(api, r, p),
                           .steps = steps_per_epoch(api, r, p),
                           .client_steps = steps,
                           .sync_every = p->sync_tokenizers_every,
                           .defence = defence_of(p)};
    return MPSL_OK;
}

static int mpsl_server(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *r,
                       const void *params, mpsl_error *err)
{
    const mpsl_params *p = params;
    if (p->head_on_client) {
        ushaped_plan plan;
        int rc = ushaped_plan_of(api, r, p, &plan);
        return rc == MPSL_OK ? ushaped_server(h, api, r, &plan, err) : rc;
    }
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
    if (rc == MPSL_OK && loss_on_server(p)) {
        rc = api->keep(r, "correct", &sv.correct, sizeof sv.correct, err);
    }
    int64_t epochs = api->settings(r)->epochs, steps = sv.att.steps;
    for (int64_t epoch = api->first_epoch(r); epoch < epochs && rc == MPSL_OK; epoch++) {
        int64_t first = epoch == api->first_epoch(r) ? api->first_step(r) : 0;
        if (first == 0) {
            sv.loss_sum = 0;
            sv.seen = 0;
            sv.correct = 0;
        }
        for (int64_t step = 0; step < first && rc == MPSL_OK; step++) {
            /* resumed inside the epoch: who took part in its steps so far */
            rc = attendance_step(api, r, p, &sv.att, epoch, step, err) < 0 ? MPSL_ERR_INVALID
                                                                           : MPSL_OK;
        }
        for (int64_t step = first; step < steps && rc == MPSL_OK; step++) {
            int there = attendance_step(api, r, p, &sv.att, epoch, step, err);
            rc = there < 0 ? there : MPSL_OK;
            mpsl_tensor out;
            if (rc == MPSL_OK && there > 0) { /* a skipped step: nobody sends anything */
                rc = server_forward(api, r, p, &sv, &out, err);
            }
            if (rc == MPSL_OK && there > 0) {
                rc = loss_on_server(p) ? server_loss(api, r, p, &sv, epoch, &out, err)
                                       : server_backward(api, r, p, &sv, epoch, err);
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
        if (rc == MPSL_OK && sv.uploads && evaluated(api, r, epoch)) {
            rc = diagnose(api, r, p, &sv, err); /* the drift of this epoch, before any sync */
        }
        if (rc == MPSL_OK && sync_due(api, r, p, epoch)) {
            rc = send_average(api, r, &sv, err);
        }
        if (rc == MPSL_OK && dropout_active(&p->part)) {
            rc = api->record(r, "skipped_steps", (double)sv.att.skipped, err);
        }
        if (rc == MPSL_OK) {
            /* train_loss is the server's view, from the loss values the clients reported (or
             * its own); train_acc comes from the clients' own records (or its own hits). An
             * epoch whose every step was skipped has neither. */
            double acc = loss_on_server(p) && sv.seen ? (double)sv.correct / (double)sv.seen
                                                      : -1.0;
            double loss = sv.seen ? sv.loss_sum / (double)sv.seen : -1.0;
            rc = api->epoch_end(r, epoch, sv.eval, loss, acc, err);
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

/* 7. Its slice of the cut-layer gradient back through its tokenizers, and its step. */
static int cut_layer_backward(const mpsl_session_api *api, mpsl_role *r, const mpsl_params *p,
                              client *c, int64_t got, int64_t epoch, mpsl_error *err)
{
    if (p->freeze_tokenizers) {
        return MPSL_OK;
    }
    mpsl_tensor g = f32(c->cut_grads, got, c->T, c->D);
    int rc = api->recv(r, MPSL_SERVER, MPSL_MSG_CUT_GRADS, &g, err);
    if (rc == MPSL_OK) {
        rc = api->model_tokenize_backward(c->tok, &g, err);
    }
    if (rc == MPSL_OK) {
        rc = api->optim_step(c->opt, epoch, err);
    }
    /* the gradients are spent: in one process the next client's backward reuses the memory */
    api->model_release_grads(c->tok);
    return rc;
}

/* One step of a client that takes part in it: 1. draw its mini-batch (the first of a new
 * pass when its previous pass is over), tokenize, send the tokens up; 4. compute the
 * task's loss over its own mini-batch from the logits it gets back (cross-entropy with its
 * own labels, or for retrieval the contrastive loss among its own pairs) and return
 * d(loss)/d(logits) and the loss value; 7. backpropagate the cut-layer gradient through its
 * tokenizers and step. */
static int client_step(const mpsl_session_api *api, mpsl_role *r, const mpsl_params *p,
                       client *c, int64_t epoch, step_stats *st, mpsl_error *err)
{
    int64_t got = draw_client_batch(api, r, c->batch, c->b, err);
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
    if (rc != MPSL_OK) {
        return rc;
    }
    if (loss_on_server(p)) { /* nothing to compute: the server's loss covers its pairs */
        st->seen += got;
        return cut_layer_backward(api, r, p, c, got, epoch, err);
    }
    mpsl_tensor logits = f32(c->logits, got, c->C, 0);
    rc = api->recv(r, MPSL_SERVER, MPSL_MSG_LOGITS, &logits, err);
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
    grad_defence d = defence_of(p);
    grad_defence_apply(api, r, &d, c->dlogits, got, c->C); /* none: untouched */
    mpsl_tensor grad = f32(c->dlogits, got, c->C, 0);
    mpsl_tensor scalar = {.data = &loss, .dtype = MPSL_F64, .ndim = 1, .shape = {1}};
    rc = api->send(r, MPSL_SERVER, MPSL_MSG_LOGIT_GRADS, &grad, err);
    if (rc == MPSL_OK) {
        rc = api->send(r, MPSL_SERVER, MPSL_MSG_SCALARS, &scalar, err);
    }
    return rc == MPSL_OK ? cut_layer_backward(api, r, p, c, got, epoch, err) : rc;
}

static int mpsl_client(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *r,
                       const void *params, mpsl_error *err)
{
    const mpsl_params *p = params;
    if (p->head_on_client) {
        ushaped_plan plan;
        int rc = ushaped_plan_of(api, r, p, &plan);
        return rc == MPSL_OK ? ushaped_client(h, api, r, &plan, err) : rc;
    }
    client c = {0};
    int rc = client_setup(api, r, p, &c, err);
    if (rc == MPSL_ERR_NOMEM && !err->msg[0]) {
        h->error_set(err, "out of memory for client %d", api->client_id(r));
    }
    step_stats st = {0}; /* the epoch's figures so far outlive a checkpoint inside it */
    if (rc == MPSL_OK) {
        rc = api->keep(r, "stats", &st, sizeof st, err);
    }
    attendance att = {0};
    if (rc == MPSL_OK && attendance_setup(api, r, p, c.T, c.D, c.C, &att) != MPSL_OK) {
        h->error_set(err, "out of memory for client %d", api->client_id(r));
        rc = MPSL_ERR_NOMEM;
    }
    int me = api->client_id(r);
    int64_t epochs = api->settings(r)->epochs, steps = att.steps;
    for (int64_t epoch = api->first_epoch(r); epoch < epochs && rc == MPSL_OK; epoch++) {
        int64_t first = epoch == api->first_epoch(r) ? api->first_step(r) : 0;
        if (first == 0) {
            st = (step_stats){0};
        }
        dropout_tally tally = {0}; /* from decisions alone: replayed when resumed */
        for (int64_t step = 0; step < steps && rc == MPSL_OK; step++) {
            int there = attendance_step(api, r, p, &att, epoch, step, err);
            if (there < 0) {
                rc = there;
                break;
            }
            dropout_count(&tally, att.status[me]);
            if (step < first) {
                continue; /* resumed inside the epoch: done before the checkpoint */
            }
            if (att.status[me] == MPSL_SLOT_TAKES_PART) {
                rc = client_step(api, r, p, &c, epoch, &st, err);
            }
            /* a client that sits the step out still ends it: checkpoints are taken by all */
            if (rc == MPSL_OK) {
                rc = api->step_end(r, epoch, step + 1, err);
            }
            if (rc == MPSL_OK && api->should_stop(r)) {
                rc = MPSL_ERR_INTERRUPTED;
            }
        }
        if (rc == MPSL_OK) {
            /* with the loss on the server a client knows no loss or hits of its own */
            rc = loss_on_server(p) ? api->record(r, "samples", (double)st.seen, err)
                                   : record_client_stats(api, r, &st, err);
        }
        if (rc == MPSL_OK && dropout_active(&p->part)) {
            rc = dropout_record(api, r, &tally, err);
        }
        if (rc == MPSL_OK && !p->freeze_tokenizers) { /* upload for the evaluation model */
            int64_t n_tok;
            float *tok = api->model_params(c.tok, &n_tok);
            mpsl_tensor up = f32(tok, n_tok, 0, 0);
            rc = api->send(r, MPSL_SERVER, MPSL_MSG_PARAMETERS, &up, err);
        }
        if (rc == MPSL_OK && sync_due(api, r, p, epoch)) {
            /* the average replaces its tokenizers; its optimizer's moments stay (as FedAvg's
             * client optimizers keep theirs across rounds by default) */
            int64_t n_tok;
            float *tok = api->model_params(c.tok, &n_tok);
            mpsl_tensor down = f32(tok, n_tok, 0, 0);
            rc = api->recv(r, MPSL_SERVER, MPSL_MSG_PARAMETERS, &down, err);
        }
        if (rc == MPSL_OK) {
            rc = api->epoch_end(r, epoch, NULL, 0, 0, err);
        }
    }
    return rc;
}

/* Before anything is recorded: the server can compute only a loss that needs no labels. */
static int mpsl_check(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *sr,
                      const void *params, const char *where, mpsl_error *err)
{
    const mpsl_params *p = params;
    int task = api->dataset_info(sr)->task;
    int rc = dropout_check(h, api, sr, &p->part, api->n_clients(sr), where, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    if (loss_on_server(p) && task != MPSL_TASK_RETRIEVAL) {
        h->error_set(err, "%s.retrieval_loss: server needs a retrieval task, but the dataset's "
                     "task is %s: its loss needs the clients' labels, which never leave them "
                     "(use retrieval_loss: client, the default)", where ? where : "strategy",
                     mpsl_task_name(task));
        return MPSL_ERR_INVALID;
    }
    if (p->head_on_client && (loss_on_server(p) || p->diagnostics)) {
        h->error_set(err, "%s.head_on_client: true leaves the server without a head, so %s "
                     "cannot be used with it", where ? where : "strategy",
                     loss_on_server(p) ? "retrieval_loss: server" : "diagnostics: true");
        return MPSL_ERR_INVALID;
    }
    if (p->head_on_client && dropout_active(&p->part)) {
        h->error_set(err, "%s.head_on_client: true does not take dropout, min_clients or a "
                     "deadline yet: the U-shaped step waits for every client (leave them at "
                     "their defaults, or use head_on_client: false)", where ? where : "strategy");
        return MPSL_ERR_INVALID;
    }
    if (p->defence != DEFENCE_NONE && loss_on_server(p)) {
        h->error_set(err, "%s.defence: with retrieval_loss: server the clients return no "
                     "gradient to protect", where ? where : "strategy");
        return MPSL_ERR_INVALID;
    }
    return MPSL_OK;
}

static const mpsl_strategy_api mpsl_api = {
    .size = sizeof(mpsl_strategy_api),
    .session_version = MPSL_SESSION_API_VERSION,
    .check = mpsl_check,
    .server = mpsl_server,
    .client = mpsl_client,
};

MPSL_PLUGIN(MPSL_KIND_AGGREGATION, "mpsl", "2.3.0",
            "parallel split learning: client tokenizers, one server pass over all clients",
            &mpsl_api, mpsl_params, mpsl_spec);
