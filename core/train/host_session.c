/* host_session.c: the session entries of the host table. They check their arguments (a
 * strategy is plugin code, so mistakes become messages, not crashes), keep track of what a
 * strategy creates so the run can release it, and forward to session, model and optimizer
 * code. */
#include "host_session.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/flops.h"
#include "results/store.h"
#include "train/model.h"
#include "train/optim.h"
#include "train/session.h"

struct mpsl_optim {
    mpsl_model *m;
    optim_state state;
};

/* Append p to a growable array of pointers. */
static int track(void ***items, int *n, int *cap, void *p)
{
    if (*n == *cap) {
        int grown = *cap ? 2 * *cap : 16;
        void **bigger = realloc(*items, (size_t)grown * sizeof *bigger);
        if (!bigger) {
            return MPSL_ERR_NOMEM;
        }
        *items = bigger;
        *cap = grown;
    }
    (*items)[(*n)++] = p;
    return MPSL_OK;
}

static void untrack(void **items, int *n, void *p)
{
    for (int i = 0; i < *n; i++) {
        if (items[i] == p) {
            items[i] = items[--*n];
            return;
        }
    }
}

static const mpsl_train_settings *h_settings(mpsl_session *s) { return &s->ex->train; }
static int h_n_clients(mpsl_session *s) { return s->ex->n_clients; }
static int64_t h_client_samples(mpsl_session *s, int client)
{
    return client >= 0 && client < s->ex->n_clients ? s->part.count[client] : 0;
}
static const mpsl_dataset_info *h_dataset_info(mpsl_session *s) { return &s->info; }
static double h_random(mpsl_session *s) { return mpsl_rng_uniform(&s->rng); }

static mpsl_batch *h_batch_create(mpsl_session *s, int64_t max_n, mpsl_error *err)
{
    if (max_n < 1) {
        mpsl_errs(err, MPSL_ERR_INTERNAL, "batch_create: max_n must be positive, got %lld",
                  (long long)max_n);
        return NULL;
    }
    mpsl_batch *b = session_batch_create(s, max_n, err);
    if (b && track((void ***)&s->batches, &s->n_batches, &s->cap_batches, b) != MPSL_OK) {
        session_batch_destroy(s, b);
        mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return b;
}

static void h_batch_destroy(mpsl_session *s, mpsl_batch *b)
{
    untrack((void **)s->batches, &s->n_batches, b);
    session_batch_destroy(s, b);
}

static int h_model_create(mpsl_session *s, int parts, mpsl_model **m, mpsl_error *err)
{
    int rc = model_create(s, parts, m, err);
    if (rc == MPSL_OK && track((void ***)&s->models, &s->n_models, &s->cap_models, *m) != MPSL_OK) {
        model_destroy(*m);
        *m = NULL;
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    return rc;
}

static void h_model_destroy(mpsl_model *m)
{
    if (m) {
        untrack((void **)m->s->models, &m->s->n_models, m);
        model_destroy(m);
    }
}

static float *h_model_params(mpsl_model *m, int64_t *n)
{
    *n = m->n;
    return m->param;
}
static float *h_model_grads(mpsl_model *m, int64_t *n)
{
    *n = m->n;
    mpsl_error err;
    return model_ensure_grad(m, &err) == MPSL_OK ? m->grad : NULL;
}
static const uint8_t *h_model_trainable(mpsl_model *m) { return m->trainable; }
static int64_t h_model_trainable_count(mpsl_model *m) { return m->n_trainable; }
static void h_model_zero_grad(mpsl_model *m)
{
    if (m->grad) { /* a model without gradients yet gets a zeroed buffer on first backward */
        memset(m->grad, 0, (size_t)m->n * sizeof(float));
    }
}
static int h_model_token_shape(mpsl_model *m, int64_t *T, int64_t *D)
{
    *T = m->T;
    *D = m->D;
    return MPSL_OK;
}

static int h_optim_create(mpsl_session *s, mpsl_model *m, mpsl_optim **o, mpsl_error *err)
{
    *o = calloc(1, sizeof **o);
    if (!*o) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    (*o)->m = m;
    int rc = optim_state_init(&(*o)->state, &s->ex->optim, m->n, err);
    if (rc == MPSL_OK && track((void ***)&s->optims, &s->n_optims, &s->cap_optims, *o) != MPSL_OK) {
        rc = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        optim_state_free(&(*o)->state);
    }
    if (rc != MPSL_OK) {
        free(*o);
        *o = NULL;
    }
    return rc;
}

void session_optim_free(mpsl_optim *o)
{
    optim_state_free(&o->state);
    free(o);
}

static void h_optim_destroy(mpsl_optim *o)
{
    if (o) {
        untrack((void **)o->m->s->optims, &o->m->s->n_optims, o);
        session_optim_free(o);
    }
}

static int h_optim_step(mpsl_optim *o, int64_t epoch, mpsl_error *err)
{
    if (epoch < 0) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "optim_step: negative epoch %lld", (long long)epoch);
    }
    if (!o->m->grad) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "optim_step before any backward pass");
    }
    optim_state_step(&o->state, o->m->param, o->m->grad, o->m->spans, o->m->n_spans, epoch);
    return MPSL_OK;
}

static void h_set_party(mpsl_session *s, mpsl_party party, int client)
{
    if (party == MPSL_PARTY_CLIENT && client >= 0 && client < s->ex->n_clients) {
        flops_set_target(s->client_flops + 2 * client);
    } else {
        if (party == MPSL_PARTY_CLIENT) {
            mpsl_log(MPSL_LOG_WARN, "set_party: no client %d; FLOPs go to the server", client);
        }
        flops_set_target(s->server_flops);
    }
}

static int h_record(mpsl_session *s, int64_t epoch, const char *name, double value,
                    mpsl_error *err)
{
    return store_metric(s->db, s->run_id, epoch, name, value, err);
}

static int h_record_client(mpsl_session *s, int64_t epoch, int client, const char *name,
                           double value, mpsl_error *err)
{
    if (client < 0 || client >= s->ex->n_clients) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "record_client: no client %d", client);
    }
    return store_client_metric(s->db, s->run_id, epoch, client, name, value, err);
}

static int h_should_stop(mpsl_session *s)
{
    (void)s;
    return session_stop_requested != 0;
}

static void h_progress(mpsl_session *s, int64_t epoch, int64_t done, int64_t total)
{
    double now = mpsl_now();
    int tty = isatty(STDERR_FILENO);
    if (total <= 0 || done <= 0 || now - s->last_progress < (tty ? 1.0 : 30.0)) {
        return;
    }
    s->last_progress = now;
    double spent = now - s->epoch_started;
    double eta = spent / (double)done * (double)(total - done);
    fprintf(stderr, "%s[%s] epoch %lld/%lld: step %lld/%lld (%.0f%%), %.0f s in, ETA %.0f s%s",
            tty ? "\r" : "", s->ex->name, (long long)epoch + 1, (long long)s->ex->train.epochs,
            (long long)done, (long long)total, 100.0 * (double)done / (double)total, spent, eta,
            tty ? "   " : "\n");
    s->progress_shown = tty;
}

/* ---------------------------------------------------------------- the task's loss */

void session_retrieval_shape(const mpsl_session *s, int64_t *K, int64_t *E)
{
    int retrieval = s->info.task == MPSL_TASK_RETRIEVAL && s->out_ndim == 2;
    *K = retrieval ? s->out_shape[0] - 1 : 0;
    *E = retrieval ? s->out_shape[1] : 0;
}

/* Images of a batch whose own caption scores highest among the batch's captions (ties
 * count against the image): img, txt (n,E); scores (n,n) scratch. Not counted as FLOPs:
 * this is a metric, not part of the loss. */
static int64_t in_batch_hits(const mpsl_session *s, const float *img, const float *txt,
                             float *scores, int64_t n, int64_t E)
{
    double *saved = flops_get_target();
    flops_set_target(NULL);
    s->host->kernels->linear_forward(scores, img, txt, NULL, n, E, n);
    flops_set_target(saved);
    int64_t hits = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *row = scores + i * n;
        int64_t j = 0;
        while (j < n && (j == i || row[j] < row[i])) {
            j++;
        }
        hits += j == n;
    }
    return hits;
}

double session_loss(mpsl_session *s, float *dout, const float *out, const int32_t *labels,
                    int64_t n, int64_t *correct)
{
    const mpsl_kernels *kern = s->host->kernels;
    int64_t K, E;
    session_retrieval_shape(s, &K, &E);
    if (correct) {
        *correct = 0;
    }
    if (n <= 0) {
        return 0.0;
    }
    if (!K) {
        return kern->cross_entropy(dout, out, labels, n, s->out_size, 1.0f, correct);
    }
    /* Retrieval: out (n, 1+K, E). Scratch: img, txt, dimg, dtxt (n,E) and scores (n,n). */
    if (n > s->loss_cap) {
        mpsl_free(s->loss_scratch);
        s->loss_scratch = mpsl_alloc((size_t)(4 * n * E + n * n) * sizeof(float));
        s->loss_cap = s->loss_scratch ? n : 0;
        if (!s->loss_scratch) {
            mpsl_log(MPSL_LOG_WARN, "out of memory for the retrieval loss of %lld samples",
                     (long long)n);
            return NAN;
        }
    }
    float *img = s->loss_scratch, *txt = img + n * E, *dimg = txt + n * E, *dtxt = dimg + n * E;
    float *scores = dtxt + n * E;
    int64_t R = 1 + K;
    size_t row = (size_t)E * sizeof(float);
    for (int64_t b = 0; b < n; b++) {
        memcpy(img + b * E, out + b * R * E, row);
        if (dout) {
            memset(dout + b * R * E, 0, row);
        }
    }
    double total = 0.0;
    for (int64_t k = 1; k <= K; k++) {
        for (int64_t b = 0; b < n; b++) {
            memcpy(txt + b * E, out + (b * R + k) * E, row);
        }
        total += kern->contrastive_loss(dout ? dimg : NULL, dout ? dtxt : NULL, img, txt, n, E,
                                        1.0f);
        if (dout) {
            for (int64_t b = 0; b < n; b++) {
                float *di = dout + b * R * E;
                for (int64_t e = 0; e < E; e++) {
                    di[e] += dimg[b * E + e];
                }
                memcpy(dout + (b * R + k) * E, dtxt + b * E, row);
            }
        }
        if (k == 1 && correct) {
            *correct = in_batch_hits(s, img, txt, scores, n, E);
        }
    }
    return total;
}

static int64_t h_model_output_size(mpsl_model *m)
{
    return (m->parts & MPSL_PART_HEAD) ? m->C : 0;
}

void host_session_fill(mpsl_host *t)
{
    t->settings = h_settings;
    t->n_clients = h_n_clients;
    t->client_samples = h_client_samples;
    t->dataset_info = h_dataset_info;
    t->random = h_random;
    t->batch_create = h_batch_create;
    t->batch_destroy = h_batch_destroy;
    t->client_next = session_client_next;
    t->model_create = h_model_create;
    t->model_destroy = h_model_destroy;
    t->model_params = h_model_params;
    t->model_grads = h_model_grads;
    t->model_trainable = h_model_trainable;
    t->model_trainable_count = h_model_trainable_count;
    t->model_zero_grad = h_model_zero_grad;
    t->model_tokenize = model_tokenize;
    t->model_token_shape = h_model_token_shape;
    t->model_encode = model_encode;
    t->model_encode_backward = model_encode_backward;
    t->model_tokenize_backward = model_tokenize_backward;
    t->model_copy = model_copy;
    t->optim_create = h_optim_create;
    t->optim_destroy = h_optim_destroy;
    t->optim_step = h_optim_step;
    t->send = messages_send;
    t->recv = messages_recv;
    t->set_party = h_set_party;
    t->record = h_record;
    t->record_client = h_record_client;
    t->epoch_end = session_epoch_end;
    t->should_stop = h_should_stop;
    t->progress = h_progress;
    t->loss = session_loss;
    t->model_output_size = h_model_output_size;
}
