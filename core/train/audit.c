/* audit.c: the label-leakage observer (audit.h, docs/privacy.md). What it uses of each
 * message is what the server's role received; the labels come only from its own path. Rows
 * of a client's message are matched with the labels of the batch that client drew last:
 * every strategy's client draws a batch, then sends what it computed from it, in order, and
 * messages from one sender arrive in order, in one process and over MPI. What the figures
 * cover must not depend on how messages of different clients interleave (which differs
 * between one process and MPI): the clustering sample takes each client's first rows, in its
 * own region, and what a client sends after its end-of-epoch report (the first batch of its
 * next epoch, which may arrive before the server ends the epoch) is held for the next one. */
#include "audit.h"

#include <stdio.h>

#include <stdlib.h>
#include <string.h>

#include "train/attacks.h"
#include "train/model.h"

/* What the server receives that depends on a batch's labels. */
enum { ST_ACTIVATIONS = 0, ST_LOGIT_GRADS, ST_FEATURE_GRADS, ST_COUNT };
static const char *const stream_name[ST_COUNT] = {"activations", "logit_grads",
                                                  "feature_grads"};

#define AUDIT_MAX_ROWS 200000   /* norm scores an epoch, per stream */
#define AUDIT_MAX_PAIRS 200000  /* direction pairs an epoch, per stream */

typedef struct stream {
    /* clustering: the epoch's first `samples` rows */
    float *x;               /* (K regions of samples / K rows) */
    int32_t *x_labels;
    int64_t *x_count;       /* (K) rows in each client's region */
    int64_t dim;
    /* norms */
    double *norm;
    int32_t *norm_labels;
    int64_t norm_n;
    /* direction pairs */
    double *pair_score;
    uint8_t *pair_same;
    int64_t pair_n;
    /* sign attack (logit gradients) */
    int64_t sign_hits, sign_n;
} stream;

typedef struct client_view {
    int32_t *labels;        /* the batch it drew last */
    int64_t n, cap;
    int64_t reported;       /* its end-of-epoch reports so far */
    int64_t *ahead_classes; /* (C) labels it drew after its report, for the next epoch */
    float *ahead_rows;      /* activations it sent after its report (one batch) */
    int32_t *ahead_labels;
    int64_t ahead_n, ahead_per;
    double *hist;           /* (C) labels drawn since its last full-model upload */
    float *global_bias;     /* (C) the head bias of the model the server sent it */
    int has_global;
    double hist_error;      /* this epoch's, -1 when none */
} client_view;

struct audit {
    mpsl_session *s;
    int64_t C, samples;
    stream st[ST_COUNT];
    client_view *cv;
    int64_t *class_seen;    /* (C) labels of this epoch's batches, for the majority baseline */
    int64_t P;              /* trainable floats of the whole model: a FedAvg model message */
    int64_t bias_at;        /* the head bias among them; -1 when the head has none */
    int64_t head_n;         /* floats of the head: a U-shaped client's head upload (0: a size
                               other uploads share, so no message is read as a head) */
    int64_t head_bias_at;   /* the bias within the head; -1 when it has none */
    float *init_bias;       /* (C) the head bias as initialised (the seed gives it) */
    double hist_sum, hist_uniform_sum;
    int64_t hist_n;
    int64_t unmatched;      /* messages whose rows did not match their client's labels */
    int64_t stored;         /* epochs stored so far */
};

/* Whether client k has ended the epoch the observer is still collecting. */
static int ahead(const audit *a, int k)
{
    return a->cv[k].reported > a->stored;
}

/* Where the head's bias (the last trainable 1-D tensor of C floats in the head) sits among
 * the trainable floats, as FedAvg packs them, and within the head, as U-shaped MPSL uploads
 * it; -1 if there is none. Its initial value is what the run's seed gives every model, which
 * the server can compute as well: the reference for a client's first head upload. */
static int locate_bias(audit *a, mpsl_error *err)
{
    mpsl_model *m;
    int rc = model_create(a->s, MPSL_PART_ALL, &m, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    int64_t tok_base, n_tok;
    model_part_span(m, MPSL_PART_TOKENIZERS, &tok_base, &n_tok);
    a->P = m->n_trainable;
    a->head_n = m->head.count != n_tok && m->head.count != a->P ? m->head.count : 0;
    a->bias_at = a->head_bias_at = -1;
    for (int i = 0; i < m->n_decls; i++) {
        const param_decl *d = &m->decls[i];
        if (d->offset >= m->head.base && d->offset < m->head.base + m->head.count &&
            d->ndim == 1 && d->count == a->C && m->trainable[d->offset]) {
            int64_t before = 0;
            for (int64_t j = 0; j < d->offset; j++) {
                before += m->trainable[j];
            }
            a->bias_at = before;
            a->head_bias_at = d->offset - m->head.base;
            memcpy(a->init_bias, m->param + d->offset, (size_t)a->C * sizeof(float));
        }
    }
    for (int k = 0; k < a->s->ex->n_clients && a->head_bias_at >= 0; k++) {
        memcpy(a->cv[k].global_bias, a->init_bias, (size_t)a->C * sizeof(float));
        a->cv[k].has_global = 1; /* U-shaped: a client's head starts from the initial one */
    }
    model_destroy(m);
    return MPSL_OK;
}

int audit_open(mpsl_session *s, mpsl_error *err)
{
    if (!s->ex->metrics_leakage_audit) {
        return MPSL_OK;
    }
    if (s->info.task != MPSL_TASK_CLASSIFICATION) {
        return mpsl_err(err, "metrics.leakage_audit: the audit recovers class labels and needs "
                        "a classification dataset, but this one's task is %s",
                        mpsl_task_name(s->info.task));
    }
    audit *a = calloc(1, sizeof *a);
    if (!a) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    s->audit = a;
    a->s = s;
    a->C = s->info.n_classes;
    a->samples = s->ex->metrics_leakage_samples;
    int K = s->ex->n_clients;
    a->cv = calloc((size_t)K, sizeof *a->cv);
    a->class_seen = calloc((size_t)a->C, sizeof *a->class_seen);
    a->init_bias = calloc((size_t)a->C, sizeof *a->init_bias);
    if (!a->cv || !a->class_seen || !a->init_bias) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < K; k++) {
        a->cv[k].hist = calloc((size_t)a->C, sizeof(double));
        a->cv[k].global_bias = calloc((size_t)a->C, sizeof(float));
        a->cv[k].hist_error = -1.0;
        a->cv[k].ahead_classes = calloc((size_t)a->C, sizeof(int64_t));
        if (!a->cv[k].hist || !a->cv[k].global_bias || !a->cv[k].ahead_classes) {
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        }
    }
    for (int i = 0; i < ST_COUNT; i++) {
        stream *st = &a->st[i];
        st->x_labels = malloc((size_t)(a->samples ? a->samples : 1) * sizeof(int32_t));
        st->norm = malloc(AUDIT_MAX_ROWS * sizeof(double));
        st->norm_labels = malloc(AUDIT_MAX_ROWS * sizeof(int32_t));
        st->pair_score = malloc(AUDIT_MAX_PAIRS * sizeof(double));
        st->pair_same = malloc(AUDIT_MAX_PAIRS);
        if (!st->x_labels || !st->norm || !st->norm_labels || !st->pair_score ||
            !st->pair_same) {
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory for the audit");
        }
    }
    return locate_bias(a, err);
}

void audit_close(mpsl_session *s)
{
    audit *a = s->audit;
    if (!a) {
        return;
    }
    for (int k = 0; a->cv && k < s->ex->n_clients; k++) {
        free(a->cv[k].labels);
        free(a->cv[k].hist);
        free(a->cv[k].global_bias);
        free(a->cv[k].ahead_classes);
        free(a->cv[k].ahead_rows);
        free(a->cv[k].ahead_labels);
    }
    for (int i = 0; i < ST_COUNT; i++) {
        stream *st = &a->st[i];
        free(st->x), free(st->x_labels), free(st->x_count), free(st->norm), free(st->norm_labels);
        free(st->pair_score), free(st->pair_same);
    }
    free(a->cv);
    free(a->class_seen);
    free(a->init_bias);
    free(a);
    s->audit = NULL;
}

int audit_send_labels(mpsl_role *r, const int32_t *labels, int64_t n, mpsl_error *err)
{
    mpsl_tensor t = {.data = (void *)labels, .dtype = MPSL_I32, .ndim = 1, .shape = {n}};
    return messages_send(r, MPSL_SERVER, MSG_AUDIT_LABELS, &t, err);
}

static void take_labels(audit *a, int k, const mpsl_tensor *t)
{
    client_view *v = &a->cv[k];
    int64_t n = t->shape[0];
    if (n > v->cap) {
        int32_t *grown = realloc(v->labels, (size_t)n * sizeof *grown);
        if (!grown) {
            v->n = 0;
            return;
        }
        v->labels = grown;
        v->cap = n;
    }
    memcpy(v->labels, t->data, (size_t)n * sizeof(int32_t));
    v->n = n;
    for (int64_t i = 0; i < n; i++) {
        int32_t y = v->labels[i];
        if (y >= 0 && y < a->C) {
            v->hist[y] += 1.0;
            if (ahead(a, k)) {
                v->ahead_classes[y]++;
            } else {
                a->class_seen[y]++;
            }
        }
    }
}

/* Client k's first rows of the epoch into its own region of the clustering sample. */
static void sample_rows(audit *a, int k, stream *st, const float *rows, const int32_t *labels,
                        int64_t n, int64_t per)
{
    int K = a->s->ex->n_clients;
    int64_t quota = a->samples / K;
    if (st->dim == 0 && quota > 0) {
        st->x = malloc((size_t)(quota * K) * (size_t)per * sizeof(float));
        st->x_count = calloc((size_t)K, sizeof *st->x_count);
        st->dim = st->x && st->x_count ? per : 0;
    }
    if (st->dim != per) {
        return;
    }
    for (int64_t i = 0; i < n && st->x_count[k] < quota; i++) {
        int64_t at = k * quota + st->x_count[k]++;
        memcpy(st->x + at * per, rows + i * per, (size_t)per * sizeof(float));
        st->x_labels[at] = labels[i];
    }
}

/* The rows of one message from client k, each with its label. */
static void take_rows(audit *a, int k, int which, const mpsl_tensor *t)
{
    client_view *v = &a->cv[k];
    int64_t n = t->shape[0], per = 1;
    for (int d = 1; d < t->ndim; d++) {
        per *= t->shape[d];
    }
    if (n != v->n || t->dtype != MPSL_F32) {
        a->unmatched++;
        return;
    }
    const float *rows = t->data;
    stream *st = &a->st[which];
    if (which == ST_ACTIVATIONS && ahead(a, k)) { /* its next epoch's first batch: held */
        float *r2 = realloc(v->ahead_rows, (size_t)(n * per) * sizeof(float));
        int32_t *l2 = realloc(v->ahead_labels, (size_t)n * sizeof(int32_t));
        v->ahead_rows = r2 ? r2 : v->ahead_rows;
        v->ahead_labels = l2 ? l2 : v->ahead_labels;
        if (r2 && l2) {
            memcpy(v->ahead_rows, rows, (size_t)(n * per) * sizeof(float));
            memcpy(v->ahead_labels, v->labels, (size_t)n * sizeof(int32_t));
            v->ahead_n = n;
            v->ahead_per = per;
        }
        return;
    }
    sample_rows(a, k, st, rows, v->labels, n, per);
    if (which == ST_ACTIVATIONS) {
        return; /* tokens: only the clustering attack applies */
    }
    for (int64_t i = 0; i < n && st->norm_n < AUDIT_MAX_ROWS; i++, st->norm_n++) {
        double q = 0.0;
        for (int64_t j = 0; j < per; j++) {
            q += (double)rows[i * per + j] * (double)rows[i * per + j];
        }
        st->norm[st->norm_n] = q;
        st->norm_labels[st->norm_n] = v->labels[i];
    }
    attack_direction_pairs(rows, n, per, v->labels, st->pair_score, st->pair_same,
                           AUDIT_MAX_PAIRS, &st->pair_n);
    if (which == ST_LOGIT_GRADS && per == a->C) {
        st->sign_hits += attack_sign_hits(rows, n, per, v->labels);
        st->sign_n += n;
    }
}

/* Parameters between the server and client k: FedAvg/FedProx's whole model (the global one
 * down, the client's trained one up), or U-shaped MPSL's head (the client's up each epoch;
 * the average down after a sync). The bias's change since the last model the client held
 * against the labels it drew meanwhile. */
static void take_model(audit *a, int k, int up, const mpsl_tensor *t)
{
    client_view *v = &a->cv[k];
    if (t->ndim != 1 || t->dtype != MPSL_F32) {
        return;
    }
    int whole = a->bias_at >= 0 && t->shape[0] == a->P;
    int head = a->head_bias_at >= 0 && a->head_n > 0 && t->shape[0] == a->head_n;
    if (!whole && !head) {
        return; /* MPSL's tokenizers, or no bias to read */
    }
    const float *bias = (const float *)t->data + (whole ? a->bias_at : a->head_bias_at);
    if (!up) {
        memcpy(v->global_bias, bias, (size_t)a->C * sizeof(float));
        v->has_global = 1;
        memset(v->hist, 0, (size_t)a->C * sizeof(double)); /* a round starts from it */
        return;
    }
    if (!v->has_global) {
        return;
    }
    double total = 0.0;
    for (int64_t c = 0; c < a->C; c++) {
        total += v->hist[c];
    }
    float *delta = malloc((size_t)a->C * sizeof *delta);
    double *est = malloc((size_t)a->C * sizeof *est), *truth = malloc((size_t)a->C * sizeof *truth);
    double *uniform = malloc((size_t)a->C * sizeof *uniform);
    if (delta && est && truth && uniform && total > 0.0) {
        for (int64_t c = 0; c < a->C; c++) {
            delta[c] = bias[c] - v->global_bias[c];
            truth[c] = v->hist[c] / total;
            uniform[c] = 1.0 / (double)a->C;
        }
        attack_label_shares(delta, a->C, est);
        v->hist_error = attack_tv_distance(est, truth, a->C);
        a->hist_sum += v->hist_error;
        a->hist_uniform_sum += attack_tv_distance(uniform, truth, a->C);
        a->hist_n++;
    }
    free(delta), free(est), free(truth), free(uniform);
    /* FedAvg: the next round starts from the model the server sends; U-shaped: the client
     * trains on from the head it just uploaded */
    v->has_global = head;
    if (head) {
        memcpy(v->global_bias, bias, (size_t)a->C * sizeof(float));
        memset(v->hist, 0, (size_t)a->C * sizeof(double));
    }
}

void audit_observe(mpsl_session *s, const message *msg)
{
    audit *a = s->audit;
    int kind = message_kind(msg), from = message_from(msg), to = message_to(msg);
    const mpsl_tensor *t = message_tensor(msg);
    if (!a) {
        return;
    }
    if (kind == MSG_REPORT) {
        if (from >= 0) {
            a->cv[from].reported++;
        }
        return;
    }
    if (kind == MSG_AUDIT_LABELS) {
        if (from >= 0 && t->dtype == MPSL_I32 && t->ndim == 1) {
            take_labels(a, from, t);
        }
        return;
    }
    if (from == MPSL_SERVER) { /* the server's own sends: what it gave each client */
        if (kind == MPSL_MSG_PARAMETERS) {
            take_model(a, to, 0, t);
        }
        return;
    }
    switch (kind) {
    case MPSL_MSG_ACTIVATIONS:
        take_rows(a, from, ST_ACTIVATIONS, t);
        break;
    case MPSL_MSG_LOGIT_GRADS:
        take_rows(a, from, ST_LOGIT_GRADS, t);
        break;
    case MPSL_MSG_FEATURE_GRADS:
        take_rows(a, from, ST_FEATURE_GRADS, t);
        break;
    case MPSL_MSG_PARAMETERS:
        take_model(a, from, 1, t);
        break;
    default:
        break;
    }
}

static int put(audit *a, int64_t epoch, const char *name, const char *suffix, double value,
               mpsl_error *err)
{
    char full[64];
    snprintf(full, sizeof full, "audit_%s%s%s", name, suffix ? "_" : "", suffix ? suffix : "");
    return value < 0.0 ? MPSL_OK : store_metric(a->s->db, a->s->run_id, epoch, full, value, err);
}

int audit_store_epoch(mpsl_session *s, int64_t epoch, mpsl_error *err)
{
    audit *a = s->audit;
    if (!a) {
        return MPSL_OK;
    }
    int rc = MPSL_OK;
    int64_t seen = 0, most = 0;
    for (int64_t c = 0; c < a->C; c++) {
        seen += a->class_seen[c];
        most = a->class_seen[c] > most ? a->class_seen[c] : most;
    }
    if (seen > 0) { /* what always guessing the most common class would score */
        rc = put(a, epoch, "majority_acc", NULL, (double)most / (double)seen, err);
    }
    for (int i = 0; i < ST_COUNT && rc == MPSL_OK; i++) {
        stream *st = &a->st[i];
        if (st->sign_n > 0) {
            rc = put(a, epoch, "sign_acc", NULL, (double)st->sign_hits / (double)st->sign_n, err);
        }
        if (rc == MPSL_OK && st->norm_n > 0) {
            rc = put(a, epoch, "norm_auc", stream_name[i],
                     attack_norm_auc(st->norm, st->norm_labels, st->norm_n, a->C), err);
        }
        if (rc == MPSL_OK && st->pair_n > 0) {
            rc = put(a, epoch, "direction_auc", stream_name[i],
                     attack_auc(st->pair_score, st->pair_same, st->pair_n), err);
        }
        /* the clients' regions of the clustering sample, in client order, made contiguous */
        int64_t x_n = 0, quota = a->samples / s->ex->n_clients;
        for (int k = 0; st->dim && k < s->ex->n_clients; k++) {
            memmove(st->x + x_n * st->dim, st->x + k * quota * st->dim,
                    (size_t)(st->x_count[k] * st->dim) * sizeof(float));
            memmove(st->x_labels + x_n, st->x_labels + k * quota,
                    (size_t)st->x_count[k] * sizeof(int32_t));
            x_n += st->x_count[k];
            st->x_count[k] = 0;
        }
        if (rc == MPSL_OK && x_n > 0) {
            uint64_t seed = s->ex->train.seed ^ ((uint64_t)epoch << 8) ^ (uint64_t)i;
            rc = put(a, epoch, "cluster_acc", stream_name[i],
                     attack_cluster_acc(st->x, x_n, st->dim, st->x_labels, a->C, seed), err);
        }
        st->norm_n = st->pair_n = st->sign_hits = st->sign_n = 0;
    }
    if (rc == MPSL_OK && a->hist_n > 0) {
        rc = put(a, epoch, "hist_error", NULL, a->hist_sum / (double)a->hist_n, err);
        if (rc == MPSL_OK) {
            rc = put(a, epoch, "hist_error_uniform", NULL,
                     a->hist_uniform_sum / (double)a->hist_n, err);
        }
    }
    for (int k = 0; k < s->ex->n_clients && rc == MPSL_OK; k++) {
        if (a->cv[k].hist_error >= 0.0) {
            rc = store_client_metric(s->db, s->run_id, epoch, k, "audit_hist_error",
                                     a->cv[k].hist_error, err);
        }
        a->cv[k].hist_error = -1.0;
    }
    if (rc == MPSL_OK && a->unmatched > 0) {
        rc = put(a, epoch, "unmatched_messages", NULL, (double)a->unmatched, err);
    }
    a->hist_sum = a->hist_uniform_sum = 0.0;
    a->hist_n = a->unmatched = 0;
    a->stored++;
    /* what the clients sent of the next epoch before this one was stored now counts */
    memset(a->class_seen, 0, (size_t)a->C * sizeof *a->class_seen);
    for (int k = 0; k < s->ex->n_clients; k++) {
        client_view *v = &a->cv[k];
        for (int64_t c = 0; c < a->C; c++) {
            a->class_seen[c] += v->ahead_classes[c];
            v->ahead_classes[c] = 0;
        }
        if (v->ahead_n > 0) {
            sample_rows(a, k, &a->st[ST_ACTIVATIONS], v->ahead_rows, v->ahead_labels,
                        v->ahead_n, v->ahead_per);
            v->ahead_n = 0;
        }
    }
    return rc;
}
