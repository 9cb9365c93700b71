/* federated.h: Federated Averaging, shared by the fedavg and fedprox plugins (header-only so
 * each plugin stays one .so). Each round the server sends the global model's trainable
 * parameters to a sample of clients; each trains a full copy locally for some epochs on its
 * own partition and sends its parameters back; the server averages them weighted by the
 * samples each client processed. FedProx adds (mu/2)||w - w_global||^2 to each client's
 * objective. All parameter traffic goes through the message layer. */
#ifndef MPSL_FEDERATED_H
#define MPSL_FEDERATED_H

#include <math.h>
#include <mpsl/plugin.h>
#include <string.h>

#include "local_step.h"

typedef struct fedavg_params {
    double fraction;        /* share of clients sampled per round */
    int64_t local_epochs;
    int64_t batch_size;     /* per-client batch; 0: ceil(train.batch_size / clients) */
    double mu;              /* FedProx proximal weight (fedprox only) */
} fedavg_params;

#define FEDAVG_PARAM_SPECS \
    MPSL_PARAM_FLOAT(fedavg_params, fraction, "fraction", 0, 1e-9, 1, "1",                     \
                     "share of clients sampled each round (at least one)"),                      \
    MPSL_PARAM_INT(fedavg_params, local_epochs, "local_epochs", 0, 1, 10000, "1",                \
                   "passes over its partition a client makes per round"),                        \
    MPSL_PARAM_INT(fedavg_params, batch_size, "batch_size", 0, 0, 1000000, "0",                  \
                   "client mini-batch; 0: ceil(train.batch_size / clients), as in MPSL")

typedef struct fedavg {
    const mpsl_host *h;
    fedavg_params p;
} fedavg;

static int fedavg_create(const mpsl_host *h, mpsl_session *s, const void *params,
                         const char *where, void **state, mpsl_error *err)
{
    (void)s;
    (void)where;
    fedavg *f = h->alloc(sizeof *f);
    if (!f) {
        h->error_set(err, "out of memory");
        return MPSL_ERR_NOMEM;
    }
    f->h = h;
    f->p = *(const fedavg_params *)params;
    *state = f;
    return MPSL_OK;
}

static void fedavg_destroy(void *state)
{
    fedavg *f = state;
    f->h->free(f);
}

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

/* Choose which clients take part this round: all, or a random subset of the given size. */
static int sample_clients(const mpsl_host *h, mpsl_session *s, double fraction, int *chosen)
{
    int K = h->n_clients(s);
    int m = (int)ceil(fraction * K - 1e-9);
    if (m < 1) {
        m = 1;
    }
    for (int k = 0; k < K; k++) {
        chosen[k] = k;
    }
    if (m < K) {
        for (int i = 0; i < m; i++) { /* partial Fisher-Yates: the first m are the sample */
            int j = i + (int)(h->random(s) * (K - i));
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

typedef struct round_buffers {
    mpsl_model *global, *local;
    mpsl_batch *batch;
    float *dlogits, *payload;
    float *anchor;          /* FedProx: the client's copy of the global model it received */
    double *sum;
    int *chosen;
} round_buffers;

/* One client's part of a round: receive the global model, train, send the result back. */
static int train_client(fedavg *f, mpsl_session *s, round_buffers *rb, int k, int64_t round,
                        int64_t local_batch, step_stats *total, mpsl_error *err)
{
    const mpsl_host *h = f->h;
    int64_t n, P = h->model_trainable_count(rb->global);
    float *gparam = h->model_params(rb->global, &n);
    float *lparam = h->model_params(rb->local, &n);
    const uint8_t *trainable = h->model_trainable(rb->global);
    mpsl_tensor msg = {.data = rb->payload, .dtype = MPSL_F32, .ndim = 1, .shape = {P}};

    gather(rb->payload, gparam, trainable, n);
    int rc = h->send(s, MPSL_SERVER, k, MPSL_MSG_PARAMETERS, &msg, err);
    if (rc == MPSL_OK) {
        rc = h->recv(s, k, MPSL_SERVER, MPSL_MSG_PARAMETERS, &msg, err);
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    scatter(lparam, rb->payload, trainable, n);

    mpsl_optim *opt;
    rc = h->optim_create(s, rb->local, &opt, err); /* fresh optimizer state each round */
    if (rc != MPSL_OK) {
        return rc;
    }
    h->set_party(s, MPSL_PARTY_CLIENT, k);
    step_stats st = {0};
    proximal prox = {(float)f->p.mu, rb->anchor};
    if (rb->anchor) {
        memcpy(rb->anchor, lparam, (size_t)n * sizeof(float));
    }
    for (int64_t e = 0; e < f->p.local_epochs && rc == MPSL_OK; e++) {
        int64_t got;
        while (rc == MPSL_OK && (got = h->client_next(s, k, rb->batch, local_batch, err)) > 0) {
            rc = local_step(h, s, rb->local, opt, rb->batch, rb->dlogits, round, &prox, &st,
                            err);
            if (rc == MPSL_OK && h->should_stop(s)) {
                rc = MPSL_ERR_INTERRUPTED;
            }
        }
        if (rc == MPSL_OK && got < 0) {
            rc = (int)got;
        }
    }
    h->optim_destroy(opt);
    h->set_party(s, MPSL_PARTY_SERVER, -1);
    if (rc != MPSL_OK) {
        return rc;
    }

    gather(rb->payload, lparam, trainable, n);
    rc = h->send(s, k, MPSL_SERVER, MPSL_MSG_PARAMETERS, &msg, err);
    if (rc == MPSL_OK) {
        rc = h->recv(s, MPSL_SERVER, k, MPSL_MSG_PARAMETERS, &msg, err);
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    /* Weighted by the samples the client processed; normalised after the round. */
    for (int64_t j = 0; j < P; j++) {
        rb->sum[j] += (double)st.seen * rb->payload[j];
    }
    total->loss_sum += st.loss_sum;
    total->correct += st.correct;
    total->seen += st.seen;
    rc = h->record_client(s, round, k, "train_loss", st.loss_sum / (double)st.seen, err);
    if (rc == MPSL_OK) {
        rc = h->record_client(s, round, k, "train_acc", (double)st.correct / (double)st.seen, err);
    }
    if (rc == MPSL_OK) {
        rc = h->record_client(s, round, k, "samples", (double)st.seen, err);
    }
    return rc;
}

static int fedavg_rounds(fedavg *f, mpsl_session *s, round_buffers *rb, mpsl_error *err)
{
    const mpsl_host *h = f->h;
    const mpsl_train_settings *t = h->settings(s);
    int K = h->n_clients(s);
    int64_t local_batch = f->p.batch_size ? f->p.batch_size : (t->batch_size + K - 1) / K;
    int64_t n, P = h->model_trainable_count(rb->global);
    float *gparam = h->model_params(rb->global, &n);
    const uint8_t *trainable = h->model_trainable(rb->global);
    int rc = MPSL_OK;
    for (int64_t round = 0; round < t->epochs && rc == MPSL_OK; round++) {
        int m = sample_clients(h, s, f->p.fraction, rb->chosen);
        memset(rb->sum, 0, (size_t)P * sizeof *rb->sum);
        step_stats total = {0};
        for (int i = 0; i < m && rc == MPSL_OK; i++) {
            rc = train_client(f, s, rb, rb->chosen[i], round, local_batch, &total, err);
            h->progress(s, round, i + 1, m);
        }
        if (rc != MPSL_OK) {
            break;
        }
        for (int64_t j = 0; j < P; j++) {
            rb->payload[j] = (float)(rb->sum[j] / (double)total.seen);
        }
        scatter(gparam, rb->payload, trainable, n);
        rc = h->epoch_end(s, round, rb->global, total.loss_sum / (double)total.seen,
                          (double)total.correct / (double)total.seen, err);
    }
    return rc;
}

static int fedavg_run(void *state, mpsl_session *s, mpsl_error *err)
{
    fedavg *f = state;
    const mpsl_host *h = f->h;
    const mpsl_train_settings *t = h->settings(s);
    int K = h->n_clients(s);
    int64_t local_batch = f->p.batch_size ? f->p.batch_size : (t->batch_size + K - 1) / K;
    round_buffers rb = {0};
    int rc = h->model_create(s, MPSL_PART_ALL, &rb.global, err);
    if (rc == MPSL_OK) {
        rc = h->model_create(s, MPSL_PART_ALL, &rb.local, err);
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    int64_t n;
    int64_t P = h->model_trainable_count(rb.global);
    (void)h->model_params(rb.global, &n);
    rb.batch = h->batch_create(s, local_batch, err);
    if (!rb.batch) {
        return MPSL_ERR_NOMEM;
    }
    rb.dlogits = h->alloc((size_t)(local_batch * h->model_output_size(rb.global)) * sizeof(float));
    rb.payload = h->alloc((size_t)(P ? P : 1) * sizeof(float));
    rb.sum = h->alloc((size_t)(P ? P : 1) * sizeof(double));
    rb.chosen = h->alloc((size_t)K * sizeof(int));
    rb.anchor = f->p.mu != 0.0 ? h->alloc((size_t)(n ? n : 1) * sizeof(float)) : NULL;
    if (!rb.dlogits || !rb.payload || !rb.sum || !rb.chosen || (f->p.mu != 0.0 && !rb.anchor)) {
        h->error_set(err, "out of memory for FedAvg buffers (%lld trainable parameters)",
                     (long long)P);
        rc = MPSL_ERR_NOMEM;
    } else {
        rc = fedavg_rounds(f, s, &rb, err);
    }
    h->free(rb.dlogits);
    h->free(rb.payload);
    h->free(rb.sum);
    h->free(rb.chosen);
    h->free(rb.anchor);
    return rc;
}

static const mpsl_aggregation_api fedavg_api = {
    .size = sizeof(mpsl_aggregation_api),
    .create = fedavg_create,
    .destroy = fedavg_destroy,
    .run = fedavg_run,
};

#endif
