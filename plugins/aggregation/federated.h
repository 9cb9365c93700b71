/* federated.h: Federated Averaging as two roles, shared by the fedavg and fedprox plugins
 * (header-only so each plugin stays one .so). Each round the server sends the global model's
 * trainable parameters to a sample of clients; each trains its own full copy for some local
 * epochs on its own partition and sends its parameters back; the server averages them
 * weighted by the samples each processed (its partition size times the local epochs, which
 * the server knows from the partition). FedProx adds (mu/2)||w - w_global||^2 to each
 * client's objective. All parameter traffic goes through the message layer.
 *
 * Each client's optimizer is created once, before the first round, and keeps its state
 * (Adam's moments and step count) across the rounds, as in the reference implementation; the
 * server averages models only (client_optimizer: keep). client_optimizer: reset creates a
 * fresh optimizer for every round instead.
 *
 * Which clients a round samples is drawn from the shared random stream, which every role
 * sees identically: the server and each client draw the same sample without a message, so a
 * client that is not sampled simply sits the round out.
 *
 * Dropout (dropout.h): of the sampled clients, those the host's participants() says are not
 * there this round sit it out too; the server averages the clients that reported, weighted
 * as always by the samples each processed. A round with fewer than min_clients there is
 * skipped: nobody trains and the global model stays as it was. With a deadline (seconds of
 * simulated time under the network model) a client whose round would take longer misses it;
 * with partial_work it instead makes as many local steps as fit (FedProx's partial work) and
 * reports how many samples that was, which weights it in the average. */
#ifndef MPSL_FEDERATED_H
#define MPSL_FEDERATED_H

#include <math.h>
#include <mpsl/plugin.h>
#include <string.h>

#include "dropout.h"
#include "local_step.h"

enum { CLIENT_OPTIM_KEEP = 0, CLIENT_OPTIM_RESET = 1 };

typedef struct fedavg_params {
    double fraction;        /* share of clients sampled per round */
    int64_t local_epochs;
    int64_t batch_size;     /* per-client batch; 0: ceil(train.batch_size / clients) */
    int client_optimizer;   /* CLIENT_OPTIM_KEEP or CLIENT_OPTIM_RESET */
    double mu;              /* FedProx proximal weight (fedprox only) */
    mpsl_participation part; /* dropout, dropout_burst, min_clients, deadline */
    int partial_work;       /* a client over the deadline makes the local steps that fit */
} fedavg_params;

#define FEDAVG_PARAM_SPECS \
    MPSL_PARAM_FLOAT(fedavg_params, fraction, "fraction", 0, 1e-9, 1, "1",                     \
                     "share of clients sampled each round (at least one)"),                      \
    MPSL_PARAM_INT(fedavg_params, local_epochs, "local_epochs", 0, 1, 10000, "1",                \
                   "passes over its partition a client makes per round"),                        \
    MPSL_PARAM_INT(fedavg_params, batch_size, "batch_size", 0, 0, 1000000, "0",                  \
                   "client mini-batch; 0: ceil(train.batch_size / clients), as in MPSL"),       \
    MPSL_PARAM_ENUM(fedavg_params, client_optimizer, "client_optimizer", "keep|reset", "keep", \
                    "keep: each client's optimizer state carries across rounds (the "            \
                    "reference's); reset: a fresh optimizer every round"),                    \
    DROPOUT_PARAM_SPECS(fedavg_params, part),                                                  \
    MPSL_PARAM_BOOL(fedavg_params, partial_work, "partial_work", "false",                       \
                    "with deadline: a client whose round would overrun it makes the local "      \
                    "steps that fit instead of missing the round (FedProx's partial work); "     \
                    "clients then report their samples (8 bytes up), which weight the average")

/* Pack the trainable entries of a model's parameters into buf (n_trainable floats). */
static void gather(float *buf, const float *param, const uint8_t *trainable, int64_t n)
{
    for (int64_t i = 0, j = 0; i < n; i++) {
        if (trainable[i]) {
            buf[j++] = param[i];
        }
    }
}

static void scatter(float *param, const float *buf, const uint8_t *trainable, int64_t n)
{
    for (int64_t i = 0, j = 0; i < n; i++) {
        if (trainable[i]) {
            param[i] = buf[j++];
        }
    }
}

/* This round's clients, in client order: all, or a random subset of the given size drawn
 * from the shared stream (so every role computes the same sample). Returns how many. */
static int sample_clients(const mpsl_session_api *api, mpsl_role *r, double fraction,
                          int *chosen)
{
    int K = api->n_clients(r);
    int m = (int)ceil(fraction * K - 1e-9);
    if (m < 1) {
        m = 1;
    }
    for (int k = 0; k < K; k++) {
        chosen[k] = k;
    }
    if (m < K) {
        for (int i = 0; i < m; i++) { /* partial Fisher-Yates: the first m are the sample */
            int j = i + (int)(api->shared_random(r) * (K - i));
            int t = chosen[i];
            chosen[i] = chosen[j];
            chosen[j] = t;
        }
        for (int i = 1; i < m; i++) { /* train in client order, for readable logs */
            for (int j = i; j > 0 && chosen[j - 1] > chosen[j]; j--) {
                int t = chosen[j];
                chosen[j] = chosen[j - 1];
                chosen[j - 1] = t;
            }
        }
    }
    return m;
}

/* The buffers every role keeps to decide a round alike: K entries each, in every role, so
 * K^2 in all in one process; the work (56 bytes a client) only where a deadline needs it. */
typedef struct round_plan {
    uint8_t *want, *status;
    mpsl_slot_work *work;   /* with a deadline: what a round asks of each client; else NULL */
    int64_t *cap;           /* partial_work: the local steps a client may make; -1: all */
} round_plan;

static int round_plan_alloc(const mpsl_session_api *api, mpsl_role *r, const fedavg_params *p,
                            round_plan *rp)
{
    size_t K = (size_t)api->n_clients(r);
    rp->want = api->alloc(r, K);
    rp->status = api->alloc(r, K);
    rp->work = p->part.deadline > 0 ? api->alloc(r, K * sizeof *rp->work) : NULL;
    rp->cap = api->alloc(r, K * sizeof *rp->cap);
    return rp->want && rp->status && (rp->work || p->part.deadline <= 0) && rp->cap
               ? MPSL_OK : MPSL_ERR_NOMEM;
}

/* Samples in the first s local steps of batch B over a partition of n, from a pass's start. */
static int64_t samples_in_steps(int64_t s, int64_t n, int64_t B)
{
    int64_t q = (n + B - 1) / B;
    int64_t rest = (s % q) * B;
    return (s / q) * n + (rest < n ? rest : n);
}

/* Client k's round: local_epochs passes in batches of B, its P trainable floats down and up
 * (and its sample count up, with partial_work), cut to `steps` local steps. */
static mpsl_slot_work round_work(const mpsl_session_api *api, mpsl_role *r,
                                 const fedavg_params *p, int k, int64_t P, int64_t B,
                                 int64_t steps)
{
    int64_t n = api->client_samples(r, k);
    return (mpsl_slot_work){.kind = MPSL_WORK_LOCAL, .steps = steps,
                            .samples = samples_in_steps(steps, n, B),
                            .up_bytes = P * 4 + (p->partial_work ? 8 : 0), .down_bytes = P * 4,
                            .messages = 2 + (p->partial_work ? 1 : 0)};
}

/* Of the round's sample `chosen` (m clients), who is there: rp->status[k] per client (K),
 * and with partial_work the local steps each may make (rp->cap). Returns how many take part,
 * or a negative status. */
static int round_participants(const mpsl_session_api *api, mpsl_role *r, const fedavg_params *p,
                              int64_t round, const int *chosen, int m, int64_t P, int64_t B,
                              round_plan *rp, mpsl_error *err)
{
    int K = api->n_clients(r);
    memset(rp->want, 0, (size_t)K);
    for (int i = 0; i < m; i++) {
        rp->want[chosen[i]] = 1;
    }
    for (int k = 0; k < K; k++) {
        int64_t n = api->client_samples(r, k), full = p->local_epochs * ((n + B - 1) / B);
        rp->cap[k] = -1;
        if (!rp->work) { /* no deadline: nothing depends on the work */
            continue;
        }
        rp->work[k] = round_work(api, r, p, k, P, B, full);
        if (!rp->want[k] || !p->partial_work) {
            continue;
        }
        double t = api->work_seconds(r, k, &rp->work[k], err);
        if (t < 0) {
            return MPSL_ERR_INVALID;
        }
        if (t <= p->part.deadline) {
            continue;
        }
        int64_t lo = 0, hi = full - 1; /* the most steps that fit: lo fits (0 does not count) */
        while (lo < hi) {
            int64_t mid = lo + (hi - lo + 1) / 2;
            mpsl_slot_work w = round_work(api, r, p, k, P, B, mid);
            double tm = api->work_seconds(r, k, &w, err);
            if (tm < 0) {
                return MPSL_ERR_INVALID;
            }
            if (tm <= p->part.deadline) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        if (lo >= 1) { /* partial work; with no step that fits it misses the deadline */
            rp->cap[k] = lo;
            rp->work[k] = round_work(api, r, p, k, P, B, lo);
        }
    }
    return api->participants(r, &p->part, round, rp->want, rp->work, rp->status, err);
}

static mpsl_tensor vector_of(float *data, int64_t n)
{
    return (mpsl_tensor){.data = data, .dtype = MPSL_F32, .ndim = 1, .shape = {n}};
}

/* The server: send the global model to the round's clients, average what comes back. */
static int fedavg_server(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *r,
                         const void *params, mpsl_error *err)
{
    const fedavg_params *p = params;
    const mpsl_train_settings *t = api->settings(r);
    int K = api->n_clients(r);
    mpsl_model *global;
    int rc = api->model_create(r, MPSL_PART_ALL, &global, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    int64_t n, P = api->model_trainable_count(global);
    float *gparam = api->model_params(global, &n);
    const uint8_t *trainable = api->model_trainable(global);
    float *payload = api->alloc(r, (size_t)(P ? P : 1) * sizeof(float));
    double *sum = api->alloc(r, (size_t)(P ? P : 1) * sizeof(double));
    int *chosen = api->alloc(r, (size_t)K * sizeof(int));
    round_plan rp;
    if (!payload || !sum || !chosen || round_plan_alloc(api, r, p, &rp) != MPSL_OK) {
        h->error_set(err, "out of memory for FedAvg buffers (%lld trainable parameters)",
                     (long long)P);
        return MPSL_ERR_NOMEM;
    }
    int64_t B = p->batch_size ? p->batch_size : (t->batch_size + K - 1) / K;
    for (int64_t round = api->first_epoch(r); round < t->epochs && rc == MPSL_OK; round++) {
        int sampled = sample_clients(api, r, p->fraction, chosen), m = 0;
        int there = round_participants(api, r, p, round, chosen, sampled, P, B, &rp, err);
        if (there < 0) {
            return there;
        }
        for (int i = 0; i < sampled; i++) { /* the round's clients: those that are there */
            if (rp.status[chosen[i]] == MPSL_SLOT_TAKES_PART) {
                chosen[m++] = chosen[i];
            }
        }
        if (dropout_active(&p->part)) {
            rc = api->record(r, "skipped_rounds", m == 0 ? 1.0 : 0.0, err);
        }
        gather(payload, gparam, trainable, n);
        for (int i = 0; i < m && rc == MPSL_OK; i++) {
            mpsl_tensor msg = vector_of(payload, P);
            rc = api->send(r, chosen[i], MPSL_MSG_PARAMETERS, &msg, err);
        }
        memset(sum, 0, (size_t)P * sizeof *sum);
        double total = 0.0;
        for (int i = 0; i < m && rc == MPSL_OK; i++) {
            int k = chosen[i];
            mpsl_tensor msg = vector_of(payload, P);
            rc = api->recv(r, k, MPSL_MSG_PARAMETERS, &msg, err);
            /* weighted by the samples the client processed: its partition, local_epochs
             * times (with partial_work: the count it reports); normalised after the round */
            double w = (double)api->client_samples(r, k) * (double)p->local_epochs;
            if (rc == MPSL_OK && p->partial_work) {
                mpsl_tensor count = {.data = &w, .dtype = MPSL_F64, .ndim = 1, .shape = {1}};
                rc = api->recv(r, k, MPSL_MSG_SCALARS, &count, err);
            }
            for (int64_t j = 0; j < P && rc == MPSL_OK; j++) {
                sum[j] += w * payload[j];
            }
            total += w;
            api->progress(r, round, i + 1, m);
            if (rc == MPSL_OK && api->should_stop(r)) {
                rc = MPSL_ERR_INTERRUPTED;
            }
        }
        if (rc != MPSL_OK) {
            break;
        }
        if (m > 0) { /* a skipped round leaves the global model as it was */
            for (int64_t j = 0; j < P; j++) {
                payload[j] = (float)(sum[j] / total);
            }
            scatter(gparam, payload, trainable, n);
        }
        /* the round's training loss and accuracy: from the clients' records */
        rc = api->epoch_end(r, round, global, -1.0, -1.0, err);
    }
    return rc;
}

/* A client: in the rounds that sample it, receive the global model, train its copy locally,
 * send the result back. */
static int fedavg_client(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *r,
                         const void *params, mpsl_error *err)
{
    const fedavg_params *p = params;
    const mpsl_train_settings *t = api->settings(r);
    int K = api->n_clients(r), me = api->client_id(r);
    int64_t local_batch = p->batch_size ? p->batch_size : (t->batch_size + K - 1) / K;
    mpsl_model *local;
    int rc = api->model_create(r, MPSL_PART_ALL, &local, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    int64_t n, P = api->model_trainable_count(local);
    float *lparam = api->model_params(local, &n);
    const uint8_t *trainable = api->model_trainable(local);
    mpsl_batch *batch = api->batch_create(r, local_batch, err);
    if (!batch) {
        return MPSL_ERR_NOMEM;
    }
    float *dlogits = api->alloc(r, (size_t)(local_batch * api->model_output_size(local)) *
                                       sizeof(float));
    /* Where the parameters travel from and to: with every parameter trainable, the model's
     * own buffer (the packed and the model's layout are then one), else a packed copy. A
     * buffer less per client: 0.49 MB of the quickstart's model. */
    float *payload = P == n && n > 0 ? lparam : api->alloc(r, (size_t)(P ? P : 1) * sizeof(float));
    int *chosen = api->alloc(r, (size_t)K * sizeof(int));
    round_plan rp;
    /* FedProx: the client's copy of the global model it received */
    float *anchor = p->mu != 0.0 ? api->alloc(r, (size_t)(n ? n : 1) * sizeof(float)) : NULL;
    if (!dlogits || !payload || !chosen || round_plan_alloc(api, r, p, &rp) != MPSL_OK ||
        (p->mu != 0.0 && !anchor)) {
        h->error_set(err, "out of memory for FedAvg buffers (%lld trainable parameters)",
                     (long long)P);
        return MPSL_ERR_NOMEM;
    }
    /* keep: one optimizer for the whole run, made before the first round; being the role's,
     * it is saved with every checkpoint and restored when the run resumes */
    mpsl_optim *opt = NULL;
    if (p->client_optimizer == CLIENT_OPTIM_KEEP) {
        rc = api->optim_create(r, local, &opt, err);
    }
    for (int64_t round = api->first_epoch(r); round < t->epochs && rc == MPSL_OK; round++) {
        int m = sample_clients(api, r, p->fraction, chosen);
        int there = round_participants(api, r, p, round, chosen, m, P, local_batch, &rp, err);
        if (there < 0) {
            return there;
        }
        int64_t cap = rp.cap[me], steps = 0; /* partial work: at most cap local steps */
        if (rp.status[me] == MPSL_SLOT_TAKES_PART) {
            mpsl_tensor msg = vector_of(payload, P);
            rc = api->recv(r, MPSL_SERVER, MPSL_MSG_PARAMETERS, &msg, err);
            if (rc != MPSL_OK) {
                break;
            }
            if (payload != lparam) {
                scatter(lparam, payload, trainable, n);
            }
            if (p->client_optimizer == CLIENT_OPTIM_RESET) {
                rc = api->optim_create(r, local, &opt, err); /* fresh state each round */
                if (rc != MPSL_OK) {
                    break;
                }
            }
            step_stats st = {0};
            proximal prox = {(float)p->mu, anchor};
            if (anchor) {
                memcpy(anchor, lparam, (size_t)n * sizeof(float));
            }
            for (int64_t e = 0; e < p->local_epochs && rc == MPSL_OK && steps != cap; e++) {
                int64_t got = 0;
                while (rc == MPSL_OK && steps != cap &&
                       (got = api->next_batch(r, batch, local_batch, err)) > 0) {
                    rc = local_step(api, r, local, opt, batch, dlogits, round, &prox, &st, err);
                    steps++;
                    if (rc == MPSL_OK && api->should_stop(r)) {
                        rc = MPSL_ERR_INTERRUPTED;
                    }
                }
                if (rc == MPSL_OK && got < 0) {
                    rc = (int)got;
                }
            }
            if (p->client_optimizer == CLIENT_OPTIM_RESET) {
                api->optim_destroy(opt);
                opt = NULL;
            }
            /* until its next round the client holds parameters and optimizer state only: in
             * one process the next client's steps reuse the gradients' and activations'
             * memory (1.6 MB of the quickstart's encoder at batch 5) */
            api->model_release_grads(local);
            if (rc == MPSL_OK) {
                rc = api->model_release_activations(local, err);
            }
            if (rc == MPSL_OK) {
                if (payload != lparam) {
                    gather(payload, lparam, trainable, n);
                }
                msg = vector_of(payload, P);
                rc = api->send(r, MPSL_SERVER, MPSL_MSG_PARAMETERS, &msg, err);
            }
            if (rc == MPSL_OK && p->partial_work) { /* its weight in the average */
                double seen = (double)st.seen;
                mpsl_tensor count = {.data = &seen, .dtype = MPSL_F64, .ndim = 1, .shape = {1}};
                rc = api->send(r, MPSL_SERVER, MPSL_MSG_SCALARS, &count, err);
            }
            if (rc == MPSL_OK && p->partial_work) {
                rc = api->record(r, "partial_round", cap >= 0 ? 1.0 : 0.0, err);
            }
            if (rc == MPSL_OK) {
                rc = record_client_stats(api, r, &st, err);
            }
        }
        if (rc == MPSL_OK && dropout_active(&p->part) && rp.status[me] != MPSL_SLOT_NOT_WANTED) {
            dropout_tally tally = {0};
            dropout_count(&tally, rp.status[me]);
            rc = dropout_record(api, r, &tally, err);
        }
        if (rc == MPSL_OK) {
            rc = api->epoch_end(r, round, NULL, 0, 0, err);
        }
    }
    return rc;
}

/* Before anything is recorded: the dropout settings against the round's sample. */
static int fedavg_check(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *sr,
                        const void *params, const char *where, mpsl_error *err)
{
    const fedavg_params *p = params;
    int K = api->n_clients(sr), m = (int)ceil(p->fraction * K - 1e-9);
    if (p->partial_work && p->part.deadline <= 0) {
        h->error_set(err, "%s: strategy.partial_work needs a strategy.deadline to fit the work "
                     "into", where ? where : "experiment");
        return MPSL_ERR_INVALID;
    }
    return dropout_check(h, api, sr, &p->part, m < 1 ? 1 : m, where, err);
}

static const mpsl_strategy_api fedavg_api = {
    .size = sizeof(mpsl_strategy_api),
    .session_version = MPSL_SESSION_API_VERSION,
    .check = fedavg_check,
    .server = fedavg_server,
    .client = fedavg_client,
};

#endif
