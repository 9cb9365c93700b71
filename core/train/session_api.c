/* session_api.c: the session API of strategies' roles. Every call checks its arguments (a
 * strategy is plugin code, so mistakes become messages, not crashes), charges work to the
 * calling role (FLOPs follow the model's party), keeps track of what a role creates so it is
 * released however the role ends, and forwards to session, model, optimizer and message
 * code. */
#include "session_api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/flops.h"
#include "kernels/kernels.h"
#include "results/store.h"
#include "train/model.h"
#include "train/optim.h"
#include "train/deadline.h"
#include "train/participation.h"
#include "train/audit.h"
#include "train/checkpoint.h"
#include "train/session.h"
#include "train/sim_time.h"
#include "util/profile.h"

/* ---------------------------------------------------------------- who and what */

static int a_client_id(mpsl_role *r) { return r->id; }
static int a_n_clients(mpsl_role *r) { return r->s->ex->n_clients; }
static const mpsl_train_settings *a_settings(mpsl_role *r) { return &r->s->ex->train; }
static const mpsl_dataset_info *a_dataset_info(mpsl_role *r) { return &r->s->info; }
static int64_t a_client_samples(mpsl_role *r, int client)
{
    return client >= 0 && client < r->s->ex->n_clients ? r->s->part.count[client] : 0;
}
static int64_t a_output_size(mpsl_role *r) { return r->s->out_size; }
static double a_random(mpsl_role *r) { return mpsl_rng_uniform(&r->rng); }
static double a_shared_random(mpsl_role *r) { return mpsl_rng_uniform(&r->shared); }

/* ---------------------------------------------------------------- memory */

static void *a_alloc(mpsl_role *r, size_t bytes)
{
    void *p = mpsl_alloc(bytes);
    if (p && role_track(r, RES_MEMORY, p) != MPSL_OK) {
        mpsl_free(p);
        return NULL;
    }
    return p;
}

static void a_free(mpsl_role *r, void *p)
{
    if (p) {
        role_untrack(r, p);
        mpsl_free(p);
    }
}

/* ---------------------------------------------------------------- data */

static mpsl_batch *a_batch_create(mpsl_role *r, int64_t max_n, mpsl_error *err)
{
    if (max_n < 1) {
        mpsl_errs(err, MPSL_ERR_INTERNAL, "batch_create: max_n must be positive, got %lld",
                  (long long)max_n);
        return NULL;
    }
    mpsl_batch *b = session_batch_create(r->s, max_n, err);
    if (b && role_track(r, RES_BATCH, b) != MPSL_OK) {
        session_batch_destroy(r->s, b);
        mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return b;
}

static void a_batch_destroy(mpsl_role *r, mpsl_batch *b)
{
    if (b) {
        role_untrack(r, b);
        session_batch_destroy(r->s, b);
    }
}

/* A client draws its own partition; the server the union of all (centralized training). */
static int64_t a_next_batch(mpsl_role *r, mpsl_batch *b, int64_t n, mpsl_error *err)
{
    if (r->id == MPSL_SERVER && r->s->drv.api && r->s->drv.api->client) {
        /* with client roles the data, labels included, are the clients': the union is
         * centralized training's, whose strategy has no client role */
        return mpsl_errs(err, MPSL_ERR_INVALID, "next_batch: the server role of a strategy "
                         "with client roles draws no data; each client draws its own");
    }
    int64_t got = session_client_next(r->s, r->id, b, n, err);
    if (got > 0 && r->id != MPSL_SERVER) {
        r->step++; /* a client's steps are the batches it draws (the server reports its own) */
    }
    if (got > 0 && r->id != MPSL_SERVER && r->s->ex->metrics_leakage_audit) {
        /* the audit's ground truth, on its own path to the observer (audit.h) */
        int rc = audit_send_labels(r, b->labels, got, err);
        if (rc != MPSL_OK) {
            return rc;
        }
    }
    return got;
}

/* ---------------------------------------------------------------- models */

static int a_model_create(mpsl_role *r, int parts, mpsl_model **m, mpsl_error *err)
{
    int rc = model_create(r->s, parts, m, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    (*m)->role = r;
    (*m)->flops = r->flops;
    (*m)->seq = r->models_made++;
    if (r->restore && (*m)->seq < r->restore->n_models) {
        /* resuming: the parameters this role's model of that rank held at the checkpoint */
        const ckpt_tensor *saved = &r->restore->models[(*m)->seq];
        if (saved->parts != parts || saved->n != (*m)->n) {
            int refused = mpsl_errs(err, MPSL_ERR_INVALID, "resume: model %d of this role "
                                    "held parts %d and %lld parameters at the checkpoint, now "
                                    "parts %d and %lld (the strategy or model changed)",
                                    (*m)->seq, saved->parts, (long long)saved->n, parts,
                                    (long long)(*m)->n);
            model_destroy(*m);
            *m = NULL;
            return refused;
        }
        memcpy((*m)->param, saved->a, (size_t)saved->n * sizeof(float));
    }
    if (role_track(r, RES_MODEL, *m) != MPSL_OK) {
        model_destroy(*m);
        *m = NULL;
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    return MPSL_OK;
}

static void a_model_destroy(mpsl_model *m)
{
    if (m) {
        if (m->role) {
            role_untrack(m->role, m);
        }
        model_destroy(m);
    }
}

static float *a_model_params(mpsl_model *m, int64_t *n)
{
    *n = m->n;
    return m->param;
}

static float *a_model_part(mpsl_model *m, int part, int64_t *n)
{
    int64_t base, count;
    if (model_part_span(m, part, &base, &count) != MPSL_OK) {
        *n = 0;
        return NULL;
    }
    *n = count;
    return m->param + base;
}

static float *a_model_grads(mpsl_model *m, int64_t *n)
{
    *n = m->n;
    mpsl_error err;
    return model_ensure_grad(m, &err) == MPSL_OK ? m->grad : NULL;
}
static const uint8_t *a_model_trainable(mpsl_model *m) { return m->trainable; }
static int64_t a_model_trainable_count(mpsl_model *m) { return m->n_trainable; }
static void a_model_zero_grad(mpsl_model *m)
{
    if (m->grad) { /* a model without gradients yet gets a zeroed buffer on first backward */
        memset(m->grad, 0, (size_t)m->n * sizeof(float));
    }
}
static int a_model_token_shape(mpsl_model *m, int64_t *T, int64_t *D)
{
    *T = m->T;
    *D = m->D;
    return MPSL_OK;
}
static int64_t a_model_output_size(mpsl_model *m)
{
    return (m->parts & MPSL_PART_HEAD) ? m->C : 0;
}

/* The model's kernels count for the party that owns it. */
#define CHARGED_TO(m, call)                                                                    \
    do {                                                                                       \
        double *saved_ = flops_get_target();                                                   \
        flops_set_target((m)->flops);                                                          \
        rc = (call);                                                                           \
        flops_set_target(saved_);                                                              \
    } while (0)

static int a_model_tokenize(mpsl_model *m, const mpsl_batch *b, mpsl_tensor *tokens,
                            mpsl_error *err)
{
    int rc;
    CHARGED_TO(m, model_tokenize(m, b, tokens, err));
    return rc;
}

static int a_model_tokenize_backward(mpsl_model *m, const mpsl_tensor *dtokens, mpsl_error *err)
{
    int rc;
    CHARGED_TO(m, model_tokenize_backward(m, dtokens, err));
    return rc;
}

static int a_model_encode(mpsl_model *m, const mpsl_tensor *tokens, mpsl_tensor *logits,
                          mpsl_error *err)
{
    int rc;
    CHARGED_TO(m, model_encode(m, tokens, logits, err));
    return rc;
}

static int a_model_encode_backward(mpsl_model *m, const mpsl_tensor *dlogits,
                                   mpsl_tensor *dtokens, mpsl_error *err)
{
    int rc;
    CHARGED_TO(m, model_encode_backward(m, dlogits, dtokens, err));
    return rc;
}

static int a_model_features(mpsl_model *m, const mpsl_tensor *tokens, mpsl_tensor *features,
                            mpsl_error *err)
{
    int rc;
    CHARGED_TO(m, model_features(m, tokens, features, err));
    return rc;
}

static int a_model_features_backward(mpsl_model *m, const mpsl_tensor *dfeatures,
                                     mpsl_tensor *dtokens, mpsl_error *err)
{
    int rc;
    CHARGED_TO(m, model_features_backward(m, dfeatures, dtokens, err));
    return rc;
}

static int a_model_head(mpsl_model *m, const mpsl_tensor *features, mpsl_tensor *outputs,
                        mpsl_error *err)
{
    int rc;
    CHARGED_TO(m, model_head(m, features, outputs, err));
    return rc;
}

static int a_model_head_backward(mpsl_model *m, const mpsl_tensor *doutputs,
                                 mpsl_tensor *dfeatures, mpsl_error *err)
{
    int rc;
    CHARGED_TO(m, model_head_backward(m, doutputs, dfeatures, err));
    return rc;
}

static int64_t a_model_feature_width(mpsl_model *m) { return m->Dh; }
static void a_model_release_grads(mpsl_model *m)
{
    mpsl_free(m->grad);
    m->grad = NULL; /* model_ensure_grad makes a zeroed one on the next backward */
}

static int a_model_copy(mpsl_model *dst, const mpsl_model *src, mpsl_error *err)
{
    if (dst->role != src->role) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "model_copy: the two models belong to "
                         "different parties; parameters move between parties as messages");
    }
    return model_copy(dst, src, err);
}

/* train.on_nonfinite: stop the run naming the party, epoch and step, or warn once per party
 * and go on. */
static int nonfinite(mpsl_role *r, const char *what, double v, mpsl_error *err)
{
    char me[32];
    role_name(r, me, sizeof me);
    if (r->s->ex->warn_nonfinite) {
        if (!r->warned_nonfinite) {
            mpsl_log(MPSL_LOG_WARN, "the %s of %s is %g in epoch %lld (after step %lld); going "
                     "on (train.on_nonfinite: warn; said once per party)", what, me, v,
                     (long long)r->epochs_ended + 1, (long long)r->step);
            r->warned_nonfinite = 1;
        }
        return MPSL_OK;
    }
    /* the driver names the party in front of this */
    return mpsl_errs(err, MPSL_ERR_INVALID, "the %s is %g in epoch %lld (after step %lld): the "
                     "run stops (lower the learning rate or clip gradients, check the data and "
                     "weights, or set train.on_nonfinite: warn)", what, v,
                     (long long)r->epochs_ended + 1, (long long)r->step);
}

/* ---------------------------------------------------------------- optimizers */

static int a_optim_create(mpsl_role *r, mpsl_model *m, mpsl_optim **o, mpsl_error *err)
{
    if (m->role != r) {
        *o = NULL;
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "optim_create: the model belongs to another "
                         "party");
    }
    *o = calloc(1, sizeof **o);
    if (!*o) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    (*o)->m = m;
    (*o)->seq = r->optims_made++;
    int rc = optim_state_init(&(*o)->state, &r->s->ex->optim, m->n, err);
    if (rc == MPSL_OK && r->restore && (*o)->seq < r->restore->n_optims) {
        /* resuming: the moments and step count this optimizer had at the checkpoint */
        const ckpt_tensor *saved = &r->restore->optims[(*o)->seq];
        if (saved->n != m->n || !saved->b != !(*o)->state.v) {
            rc = mpsl_errs(err, MPSL_ERR_INVALID, "resume: optimizer %d of this role had %lld "
                           "floats of state at the checkpoint, now %lld (the strategy, model "
                           "or optimizer changed)", (*o)->seq, (long long)saved->n,
                           (long long)m->n);
        } else {
            (*o)->state.t = saved->t;
            memcpy((*o)->state.m, saved->a, (size_t)saved->n * sizeof(float));
            if (saved->b) {
                memcpy((*o)->state.v, saved->b, (size_t)saved->n * sizeof(float));
            }
        }
        if (rc != MPSL_OK) {
            optim_state_free(&(*o)->state);
            free(*o);
            *o = NULL;
            return rc;
        }
    }
    if (rc == MPSL_OK && role_track(r, RES_OPTIM, *o) != MPSL_OK) {
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

static void a_optim_destroy(mpsl_optim *o)
{
    if (o) {
        role_untrack(o->m->role, o);
        session_optim_free(o);
    }
}

/* Whether all n floats are finite. An exponent field of all ones (an infinity or a NaN) is
 * the only one that carries into bit 31 when 1 is added to it; OR-ing those sums is a
 * reduction in any order, so the loop vectorises (and, where the CPU has AVX2, runs 8 lanes
 * wide). The double sum of squares this check used to be was a serial chain of additions
 * that took longer than the Adam update itself (a FedAvg client's batch-1 step: 122,826
 * gradients a step). A sum of squared floats in double cannot overflow, so both tests agree. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 && \
    !defined(MPSL_NO_CLONES)
__attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
static int all_finite(const float *x, int64_t n)
{
    uint32_t carry = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, sizeof u);
        carry |= (u & 0x7f800000u) + 0x00800000u;
    }
    return !(carry & 0x80000000u);
}

static int a_optim_step(mpsl_optim *o, int64_t epoch, mpsl_error *err)
{
    if (epoch < 0) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "optim_step: negative epoch %lld", (long long)epoch);
    }
    if (!o->m->grad) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "optim_step before any backward pass");
    }
    /* A NaN or infinite gradient would spread through every parameter it touches. */
    int finite = 1;
    for (int i = 0; i < o->m->n_spans; i++) {
        finite &= all_finite(o->m->grad + o->m->spans[i].offset, o->m->spans[i].count);
    }
    if (!finite) {
        double sq = 0.0;   // the norm the message reports (inf or NaN)
        for (int i = 0; i < o->m->n_spans; i++) {
            const float *g = o->m->grad + o->m->spans[i].offset;
            for (int64_t j = 0; j < o->m->spans[i].count; j++) {
                sq += (double)g[j] * (double)g[j];
            }
        }
        int rc = nonfinite(o->m->role, "gradient norm", sqrt(sq), err);
        if (rc != MPSL_OK) {
            return rc;
        }
    }
    optim_state_step(&o->state, o->m->param, o->m->grad, o->m->spans, o->m->n_spans, epoch);
    return MPSL_OK;
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
    if (dout) { /* a training call: equal scores would give each caption's loss ln(n) */
        s->chance_sum += (double)n * (double)K * log((double)n);
        s->chance_n += (double)n;
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


/* metrics.every_steps: each loss call is one training step of its role; every `every` steps
 * the interval's mean loss and accuracy become a row (reported at the epoch's end). A run
 * resumed inside an epoch counts on from the checkpoint's step. */
static int step_metrics_add(mpsl_role *r, double loss, int64_t n, int64_t hits, mpsl_error *err)
{
    mpsl_session *s = r->s;
    if (r->loss_calls == 0 && r->epochs_ended == s->first_epoch && s->first_step > 0) {
        r->loss_calls = s->first_step;
    }
    r->loss_calls++;
    r->interval.samples += n;
    r->interval.loss_sum += loss * (double)n;
    r->interval.hits += hits;
    if (r->loss_calls % s->ex->metrics_every_steps == 0 && role_close_interval(r) != MPSL_OK) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory for metrics.every_steps rows");
    }
    return MPSL_OK;
}

static int a_loss(mpsl_role *r, const float *out, const int32_t *labels, int64_t n, float *dout,
                  double *loss, int64_t *correct, mpsl_error *err)
{
    double *saved = flops_get_target();
    flops_set_target(r->flops);
    double v = session_loss(r->s, dout, out, labels, n, correct);
    flops_set_target(saved);
    *loss = v;
    if (r->s->ex->metrics_every_steps > 0 && isfinite(v) && n > 0) {
        int rc = step_metrics_add(r, v, n, correct ? *correct : 0, err);
        if (rc != MPSL_OK) {
            return rc;
        }
    }
    char kmsg[256]; /* a kernel that refused its input (a label out of range) says why */
    int krc = kern_error_take(kmsg, sizeof kmsg);
    if (krc != MPSL_OK) {
        return mpsl_errs(err, krc, "the task's loss: %s", kmsg);
    }
    return isfinite(v) ? MPSL_OK : nonfinite(r, "training loss", v, err);
}

/* ---------------------------------------------------------------- messages */

static int a_send(mpsl_role *r, int to, mpsl_msg_kind kind, const mpsl_tensor *t,
                  mpsl_error *err)
{
    if ((int)kind < 0 || kind >= MPSL_MSG_KIND_COUNT) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "send: unknown message kind %d", (int)kind);
    }
    return messages_send(r, to, (int)kind, t, err);
}

static int a_recv(mpsl_role *r, int from, mpsl_msg_kind kind, mpsl_tensor *t, mpsl_error *err)
{
    if ((int)kind < 0 || kind >= MPSL_MSG_KIND_COUNT) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "recv: unknown message kind %d", (int)kind);
    }
    if ((from == MPSL_SERVER) == (r->id == MPSL_SERVER) || from < MPSL_SERVER ||
        from >= r->s->ex->n_clients) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "recv from %d by %d: one end must be the "
                         "server and the other a client", from, r->id);
    }
    int rc = messages_recv(r, from, (int)kind, t, err);
    if (rc == MPSL_OK) {
        sim_time_received(r, message_payload_bytes(t));
    }
    return rc;
}

/* ---------------------------------------------------------------- metrics and rhythm */

#define MAX_CLIENT_METRICS 64

/* A metric name fits role_metric's name (record and record_client, `who`, say so if not). */
static int check_metric_name(const char *who, const char *name, mpsl_error *err)
{
    size_t cap = sizeof ((role_metric *)0)->name;
    if (!name || !name[0] || strlen(name) >= cap) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "%s: a metric name of 1 to %zu characters is "
                         "needed", who, cap - 1);
    }
    return MPSL_OK;
}

static int a_record(mpsl_role *r, const char *name, double value, mpsl_error *err)
{
    int rc = check_metric_name("record", name, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    if (r->id == MPSL_SERVER) {
        return store_metric(r->s->db, r->s->run_id, r->epochs_ended, name, value, err);
    }
    for (int i = 0; i < r->n_metrics; i++) { /* the last value of a name counts */
        if (strcmp(r->metrics[i].name, name) == 0) {
            r->metrics[i].value = value;
            return MPSL_OK;
        }
    }
    if (r->n_metrics == MAX_CLIENT_METRICS) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "record: a client may record at most %d figures "
                         "per epoch", MAX_CLIENT_METRICS);
    }
    if (r->n_metrics == r->cap_metrics) {
        int grown = r->cap_metrics ? 2 * r->cap_metrics : 8;
        role_metric *bigger = realloc(r->metrics, (size_t)grown * sizeof *bigger);
        if (!bigger) {
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        }
        r->metrics = bigger;
        r->cap_metrics = grown;
    }
    role_metric *m = &r->metrics[r->n_metrics++];
    snprintf(m->name, sizeof m->name, "%s", name);
    m->value = value;
    return MPSL_OK;
}

/* A client's state, for the checkpoint file the server writes. */
static int send_checkpoint(mpsl_role *r, mpsl_error *err)
{
    ckpt_buf blob = {0};
    int rc = checkpoint_role_save(r, &blob, err);
    if (rc == MPSL_OK) {
        checkpoint_pad4(&blob);
        mpsl_tensor bt = {.data = blob.p, .dtype = MPSL_I32, .ndim = 1,
                          .shape = {(int64_t)(blob.len / 4)}};
        rc = messages_send(r, MPSL_SERVER, MSG_CHECKPOINT, &bt, err);
    }
    ckpt_buf_free(&blob);
    return rc;
}

/* A client's end of epoch: its counters and records go to the server as one report (not
 * counted as payload: it is the instrument, not the protocol). */
static int client_epoch_end(mpsl_role *r, int64_t epoch, mpsl_error *err)
{
    double now = mpsl_now();
    r->compute_s += now - r->resumed_at;
    r->resumed_at = now;
    if (role_close_interval(r) != MPSL_OK || /* the epoch's last steps, however many */
        sim_time_close(r, NETMODEL_EPOCH_END) != MPSL_OK) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    size_t metric_bytes = (size_t)r->n_metrics * sizeof(role_metric);
    size_t step_bytes = (size_t)r->n_step_rows * sizeof(role_step_row);
    size_t sim_bytes = (size_t)r->n_sim_rows * sizeof(sim_row);
    size_t bytes = sizeof(role_report) + metric_bytes + step_bytes + sim_bytes;
    int32_t *buf = calloc((bytes + 3) / 4, 4);
    if (!buf) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    role_report rep = {.epoch = epoch, .compute_s = r->compute_s, .wait_s = r->wait_s,
                       .n_metrics = r->n_metrics, .n_steps = r->n_step_rows,
                       .n_sim = r->n_sim_rows};
    memcpy(rep.flops, r->flops, sizeof rep.flops);
    memcpy(rep.sent_bytes, r->sent_bytes, sizeof rep.sent_bytes);
    memcpy(rep.sent_messages, r->sent_messages, sizeof rep.sent_messages);
    memcpy(buf, &rep, sizeof rep);
    if (r->n_metrics > 0) {   /* metrics is NULL while the role has recorded nothing */
        memcpy((char *)buf + sizeof rep, r->metrics, metric_bytes);
    }
    if (r->n_step_rows > 0) {
        memcpy((char *)buf + sizeof rep + metric_bytes, r->step_rows, step_bytes);
    }
    if (r->n_sim_rows > 0) {
        memcpy((char *)buf + sizeof rep + metric_bytes + step_bytes, r->sim_rows, sim_bytes);
    }
    mpsl_tensor t = {.data = buf, .dtype = MPSL_I32, .ndim = 1,
                     .shape = {(int64_t)((bytes + 3) / 4)}};
    int rc = messages_send(r, MPSL_SERVER, MSG_REPORT, &t, err);
    free(buf);
    role_reset_counters(r);
    r->epochs_ended = epoch + 1;
    r->step = 0;
    if (rc == MPSL_OK && session_checkpoint_due(r->s, epoch)) {
        rc = send_checkpoint(r, err); /* its state at the epoch's end, counters reset */
    }
    return rc;
}

static int a_epoch_end(mpsl_role *r, int64_t epoch, mpsl_model *eval_model, double train_loss,
                       double train_acc, mpsl_error *err)
{
    const mpsl_train_settings *t = &r->s->ex->train;
    if (epoch != r->epochs_ended || epoch >= t->epochs) {
        char me[32];
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "epoch_end(%lld) by %s: epochs run from 0 to "
                         "%lld, each ended once and in order (next is %lld)", (long long)epoch,
                         role_name(r, me, sizeof me), (long long)t->epochs - 1,
                         (long long)r->epochs_ended);
    }
    if (r->id != MPSL_SERVER) {
        if (eval_model) {
            return mpsl_errs(err, MPSL_ERR_INTERNAL, "epoch_end: only the server evaluates; a "
                             "client passes no model");
        }
        return client_epoch_end(r, epoch, err);
    }
    if (eval_model && eval_model->role != r) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "epoch_end: the evaluated model must be the "
                         "server's own");
    }
    return session_epoch_end(r, epoch, eval_model, train_loss, train_acc, err);
}

static int a_should_stop(mpsl_role *r)
{
    (void)r;
    return session_stop_requested != 0;
}

static void a_progress(mpsl_role *r, int64_t epoch, int64_t done, int64_t total)
{
    r->step = done;
    mpsl_session *s = r->s;
    if (r->id == MPSL_SERVER && s->progress) {
        s->progress->step = done;
    }
    if (r->id != MPSL_SERVER || s->rank != 0 || s->quiet) {
        return;
    }
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

static int64_t a_first_epoch(mpsl_role *r) { return r->s->first_epoch; }
static int64_t a_first_step(mpsl_role *r) { return r->s->first_step; }

/* The end of a step: a checkpoint when train.checkpoint.every_steps says so (the clients
 * hand their state to the server, which writes the file). */
static int a_step_end(mpsl_role *r, int64_t epoch, int64_t step, mpsl_error *err)
{
    if (epoch != r->epochs_ended || step < 1) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "step_end(%lld, %lld): a step of epoch %lld "
                         "(steps count from 1)", (long long)epoch, (long long)step,
                         (long long)r->epochs_ended);
    }
    r->step = step;
    if (sim_time_close(r, step) != MPSL_OK) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    int64_t every = r->s->ex->checkpoint_every_steps;
    if (every <= 0 || step % every != 0) {
        return MPSL_OK;
    }
    return r->id == MPSL_SERVER ? session_write_checkpoint(r, epoch, step, err)
                                : send_checkpoint(r, err);
}

static int a_keep(mpsl_role *r, const char *name, void *data, size_t bytes, mpsl_error *err)
{
    if (!name || !name[0] || strlen(name) >= sizeof r->kept[0].name || (!data && bytes)) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "keep: a name of 1 to %zu characters and the "
                         "memory to keep are needed", sizeof r->kept[0].name - 1);
    }
    for (int i = 0; i < r->n_kept; i++) {
        if (strcmp(r->kept[i].name, name) == 0) {
            return mpsl_errs(err, MPSL_ERR_INTERNAL, "keep: '%s' is kept already", name);
        }
    }
    if (r->n_kept == r->cap_kept) {
        int grown = r->cap_kept ? 2 * r->cap_kept : 8;
        struct role_kept *bigger = realloc(r->kept, (size_t)grown * sizeof *bigger);
        if (!bigger) {
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        }
        r->kept = bigger;
        r->cap_kept = grown;
    }
    struct role_kept *k = &r->kept[r->n_kept++];
    memset(k->name, 0, sizeof k->name);
    snprintf(k->name, sizeof k->name, "%s", name);
    k->data = data;
    k->bytes = bytes;
    if (!r->restore) {
        return MPSL_OK;
    }
    for (int i = 0; i < r->restore->n_kept; i++) {
        const ckpt_kept *saved = &r->restore->kept[i];
        if (strcmp(saved->name, name) == 0) {
            if (saved->bytes != bytes) {
                return mpsl_errs(err, MPSL_ERR_INVALID, "resume: '%s' was kept with %llu bytes, "
                                 "now %zu", name, (unsigned long long)saved->bytes, bytes);
            }
            memcpy(data, saved->data, bytes);
            return MPSL_OK;
        }
    }
    return mpsl_errs(err, MPSL_ERR_INVALID, "resume: the checkpoint holds no '%s' for this role",
                     name);
}

/* ---------------------------------------------------------------- diagnostics */

/* The server's measurements beside the protocol: no FLOPs (session_evaluate_on), no message,
 * and the time they take moved out of the epoch's training time and the server's compute. */
static int a_evaluate(mpsl_role *r, mpsl_model *m, int client, int64_t limit, double *acc,
                      double *loss, mpsl_error *err)
{
    mpsl_session *s = r->s;
    if (r->id != MPSL_SERVER || client < MPSL_SERVER || client >= s->ex->n_clients ||
        limit < 0) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "evaluate: the server's only, for the test "
                         "split or a client 0..%d, limit >= 0", s->ex->n_clients - 1);
    }
    double t0 = mpsl_now();
    int64_t *ids = NULL, n;
    mpsl_split split = MPSL_SPLIT_TEST;
    if (client == MPSL_SERVER) {
        n = limit && limit < s->info.n_test ? limit : s->info.n_test;
    } else {
        /* evenly spread over the partition, so a sample sorted by class still spans it */
        int64_t count = s->part.count[client];
        n = limit && limit < count ? limit : count;
        ids = malloc((size_t)n * sizeof *ids);
        if (!ids) {
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        }
        for (int64_t i = 0; i < n; i++) {
            ids[i] = s->part.index[client][(int64_t)((double)i * (double)count / (double)n)];
        }
        split = MPSL_SPLIT_TRAIN;
    }
    eval_result ev;
    int rc = session_evaluate_on(s, m, split, ids, n, 0, &ev, err);
    free(ids);
    if (rc == MPSL_OK) {
        *acc = ev.acc;
        if (loss) {
            *loss = ev.loss;
        }
        eval_result_free(&ev);
    }
    double spent = mpsl_now() - t0;
    s->diag_seconds += spent;
    s->epoch_started += spent;
    r->resumed_at += spent;
    return rc;
}

static int a_record_client(mpsl_role *r, int client, const char *name, double value,
                           mpsl_error *err)
{
    if (r->id != MPSL_SERVER || client < 0 || client >= r->s->ex->n_clients) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "record_client: the server's only, for a "
                         "client 0..%d", r->s->ex->n_clients - 1);
    }
    int rc = check_metric_name("record_client", name, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    return store_client_metric(r->s->db, r->s->run_id, r->epochs_ended, client, name, value,
                               err);
}

/* ---------------------------------------------------------------- participation */

static double a_work_seconds(mpsl_role *r, int client, const mpsl_slot_work *w,
                             mpsl_error *err)
{
    return deadline_work_seconds(r->s, client, w, err);
}

static int a_participants(mpsl_role *r, const mpsl_participation *p, int64_t slot,
                          const uint8_t *want, const mpsl_slot_work *work, uint8_t *status,
                          mpsl_error *err)
{
    int K = r->s->ex->n_clients;
    char why[256];
    if (!p || !want || !status || slot < 0 || (p->deadline > 0 && !work)) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "participants: settings, want and status "
                         "are needed (and work with a deadline), and a slot >= 0 (got %lld)",
                         (long long)slot);
    }
    if (participation_invalid(p, K, why, sizeof why)) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "participants: %s", why);
    }
    uint8_t *late = NULL;
    if (p->deadline > 0) {
        late = calloc((size_t)K, 1);
        if (!late) {
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        }
        for (int k = 0; k < K; k++) {
            double t = want[k] ? deadline_work_seconds(r->s, k, &work[k], err) : 0.0;
            if (t < 0) {
                free(late);
                return MPSL_ERR_INVALID;
            }
            late[k] = t > p->deadline;
        }
    }
    int n = participation_decide(&r->participation, r->s->ex->train.seed, K, p, slot, want,
                                 late, status);
    free(late);
    return n;
}

const mpsl_session_api *session_api(void)
{
    static const mpsl_session_api api = {
        .size = sizeof(mpsl_session_api),
        .version = MPSL_SESSION_API_VERSION,
        .client_id = a_client_id,
        .n_clients = a_n_clients,
        .settings = a_settings,
        .dataset_info = a_dataset_info,
        .client_samples = a_client_samples,
        .output_size = a_output_size,
        .random = a_random,
        .shared_random = a_shared_random,
        .alloc = a_alloc,
        .free = a_free,
        .batch_create = a_batch_create,
        .batch_destroy = a_batch_destroy,
        .next_batch = a_next_batch,
        .model_create = a_model_create,
        .model_destroy = a_model_destroy,
        .model_params = a_model_params,
        .model_part = a_model_part,
        .model_grads = a_model_grads,
        .model_trainable = a_model_trainable,
        .model_trainable_count = a_model_trainable_count,
        .model_zero_grad = a_model_zero_grad,
        .model_token_shape = a_model_token_shape,
        .model_output_size = a_model_output_size,
        .model_tokenize = a_model_tokenize,
        .model_tokenize_backward = a_model_tokenize_backward,
        .model_encode = a_model_encode,
        .model_encode_backward = a_model_encode_backward,
        .model_copy = a_model_copy,
        .optim_create = a_optim_create,
        .optim_destroy = a_optim_destroy,
        .optim_step = a_optim_step,
        .loss = a_loss,
        .send = a_send,
        .recv = a_recv,
        .record = a_record,
        .epoch_end = a_epoch_end,
        .should_stop = a_should_stop,
        .progress = a_progress,
        .first_epoch = a_first_epoch,
        .keep = a_keep,
        .step_end = a_step_end,
        .first_step = a_first_step,
        .evaluate = a_evaluate,
        .record_client = a_record_client,
        .participants = a_participants,
        .work_seconds = a_work_seconds,
        .model_features = a_model_features,
        .model_features_backward = a_model_features_backward,
        .model_head = a_model_head,
        .model_head_backward = a_model_head_backward,
        .model_feature_width = a_model_feature_width,
        .model_release_grads = a_model_release_grads,
        .model_release_activations = model_release_activations,
    };
    return profile_on ? session_api_profiled(&api) : &api;
}
