/* estimate.c: one epoch's cost of an experiment without training it (`mpsl estimate`).
 *
 * The schedule (who processes how many samples in which step, which messages of what size
 * cross) is derived from the partition sizes with the rules of the shipped strategies
 * (plugins/aggregation/mpsl.c, federated.h, centralized.c): the same batch sizes, the same
 * data-cursor behaviour (a pass ends with an empty draw that reshuffles), the same message
 * shapes. FLOPs are not modelled: for each distinct batch size a party processes, one step of
 * that size runs once on real data with the FLOP counter on, through the very calls the
 * strategy makes (the kernels count as in a run), and is multiplied by how many such steps
 * the epoch has. Any change to a strategy's protocol must be mirrored here; the e2e test
 * (tests/core/e2e_estimate.sh) compares the estimate with what a real run records. */
#include "train/estimate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/flops.h"
#include "plugin/loader.h"
#include "train/model.h"
#include "train/session.h"
#include "util/util.h"

/* ---------------------------------------------------------------- strategy settings */

/* The value of a strategy parameter as the plugin's parameter block holds it, found by its
 * key in the plugin's own spec table (the struct is the plugin's, its layout is not). */
static const void *param_of(const plugin_slot *slot, const char *key, mpsl_param_type type,
                            const mpsl_param_spec **spec_out, mpsl_error *err)
{
    const mpsl_plugin_desc *d = slot->plugin.desc;
    for (size_t i = 0; i < d->n_params; i++) {
        if (strcmp(d->params[i].key, key) == 0 && d->params[i].type == type) {
            if (spec_out) {
                *spec_out = &d->params[i];
            }
            return (const char *)slot->params + d->params[i].offset;
        }
    }
    mpsl_err(err, "%s: strategy '%s' has no %s parameter '%s'; estimate derives the messages "
             "of the shipped mpsl, fedavg, fedprox and centralized plugins", slot->where,
             d->name, type == MPSL_PARAM_T_INT ? "integer" : "such", key);
    return NULL;
}

/* The name of an enum parameter's value ("one_pass"), in buf. */
static const char *enum_name(const mpsl_param_spec *spec, int index, char *buf, size_t size)
{
    const char *c = spec->choices;
    for (int i = 0; i < index && c; i++) {
        c = strchr(c, '|');
        c = c ? c + 1 : NULL;
    }
    size_t n = c ? strcspn(c, "|") : 0;
    snprintf(buf, size, "%.*s", (int)n, c ? c : "");
    return buf;
}

/* A client's batch as mpsl.c and federated.h choose it: the strategy's setting, or with 0
 * the run's batch_size shared among the K clients (rounded up). */
static int64_t client_batch(int64_t setting, int64_t batch_size, int K)
{
    return setting ? setting : (batch_size + K - 1) / K;
}

/* ---------------------------------------------------------------- data cursors */

/* A client's data cursor as session_client_next moves it: a draw at the end of a pass
 * returns 0 and starts the next pass. */
static int64_t cursor_draw(int64_t *pos, int64_t n, int64_t want)
{
    if (*pos >= n) {
        *pos = 0;
        return 0;
    }
    int64_t take = n - *pos < want ? n - *pos : want;
    *pos += take;
    return take;
}

/* ---------------------------------------------------------------- measured FLOPs */

/* Split steps: MPSL's client (tokenizers) and server (encoder + head); U-shaped MPSL's client
 * (tokenizers and a head) and server (the encoder alone); a whole model's local step. */
enum { STEP_SPLIT_CLIENT, STEP_SPLIT_SERVER, STEP_USHAPED_CLIENT, STEP_USHAPED_SERVER, STEP_LOCAL };

/* The steps that are handed tensors instead of drawing data. */
static int is_server_step(int kind)
{
    return kind == STEP_SPLIT_SERVER || kind == STEP_USHAPED_SERVER;
}

/* One party's model and what a step of it needs; FLOPs per batch size, measured once each. */
typedef struct bench {
    mpsl_session *s;
    mpsl_model *m;
    mpsl_model *head;           /* STEP_USHAPED_CLIENT: its head, a model of its own */
    int kind;
    int backward;               /* STEP_SPLIT_CLIENT: 0 with frozen tokenizers */
    int loss;                   /* split steps: whether this party computes the task's loss */
    mpsl_batch *batch;
    float *zeros;               /* stands in for received tokens, logits and gradients */
    float *dlogits;
    int64_t cap;
    int64_t *sizes;             /* measured batch sizes and their FLOPs */
    double (*flops)[2];
    int n_sizes, cap_sizes;
} bench;

static int bench_open(bench *b, mpsl_session *s, int parts, int kind, int backward,
                      int64_t cap, mpsl_error *err)
{
    memset(b, 0, sizeof *b);
    b->s = s;
    b->kind = kind;
    b->backward = backward;
    b->loss = !is_server_step(kind); /* MPSL's clients compute it, unless told otherwise */
    b->cap = cap > 0 ? cap : 1;
    int rc = model_create(s, parts, &b->m, err);
    if (rc == MPSL_OK && kind == STEP_USHAPED_CLIENT) {
        rc = model_create(s, MPSL_PART_HEAD, &b->head, err);
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    int64_t Dh = b->head ? b->head->Dh : b->m->Dh;
    int64_t per = b->m->T * (b->m->D > Dh ? b->m->D : Dh) + s->out_size + 1;
    b->zeros = mpsl_alloc((size_t)(b->cap * per) * sizeof(float));
    b->dlogits = mpsl_alloc((size_t)(b->cap * (s->out_size + 1)) * sizeof(float));
    if (!is_server_step(kind)) {
        b->batch = session_batch_create(s, b->cap, err);
        if (!b->batch) {
            return MPSL_ERR_NOMEM;
        }
    }
    if (!b->zeros || !b->dlogits) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory for a batch of %lld",
                         (long long)b->cap);
    }
    return MPSL_OK;
}

static void bench_close(bench *b)
{
    if (b->batch) {
        session_batch_destroy(b->s, b->batch);
    }
    model_destroy(b->m);
    model_destroy(b->head);
    mpsl_free(b->zeros);
    mpsl_free(b->dlogits);
    free(b->sizes);
    free(b->flops);
    memset(b, 0, sizeof *b);
}

/* n real training samples from the union of the clients' data (any n samples will do: the
 * kernels' counts depend on shapes only). */
static int fill(bench *b, int64_t n, mpsl_error *err)
{
    for (int tries = 0; tries < 3; tries++) {
        int64_t got = session_client_next(b->s, -1, b->batch, n, err);
        if (got < 0) {
            return (int)got;
        }
        if (got == n) {
            return MPSL_OK;
        }
    }
    return mpsl_errs(err, MPSL_ERR_INTERNAL, "estimate: cannot draw a batch of %lld samples "
                     "from %lld", (long long)n, (long long)b->s->n_all_train);
}

static mpsl_tensor f32(float *data, int64_t a, int64_t b, int64_t c)
{
    mpsl_tensor t = {.data = data, .dtype = MPSL_F32, .ndim = c ? 3 : 2};
    t.shape[0] = a;
    t.shape[1] = b;
    t.shape[2] = c;
    return t;
}

/* One step of n samples, the calls the strategy makes, FLOPs counted into f. */
static int run_step(bench *b, int64_t n, double f[2], mpsl_error *err)
{
    mpsl_model *m = b->m;
    int64_t T = m->T, D = m->D, C = b->s->out_size, hits;
    int64_t Dh = b->head ? b->head->Dh : m->Dh;
    memset(b->zeros, 0, (size_t)(b->cap * (T * (D > Dh ? D : Dh) + C + 1)) * sizeof(float));
    int rc = is_server_step(b->kind) ? MPSL_OK : fill(b, n, err);
    f[0] = f[1] = 0;
    flops_set_target(f);
    mpsl_tensor tokens, logits, dtokens;
    if (rc == MPSL_OK && b->kind == STEP_SPLIT_CLIENT) {
        /* mpsl.c client_step: tokenize, the loss on the logits it is sent, backward of the
         * cut-layer gradient it is sent */
        rc = model_tokenize(m, b->batch, &tokens, err);
        if (rc == MPSL_OK && b->loss) {
            session_loss(b->s, b->dlogits, b->zeros, b->batch->labels, n, &hits);
        }
        if (rc == MPSL_OK && b->backward) {
            mpsl_tensor g = f32(b->zeros, n, T, D);
            rc = model_tokenize_backward(m, &g, err);
        }
    } else if (rc == MPSL_OK && b->kind == STEP_USHAPED_CLIENT) {
        /* mpsl_ushaped.c client_step: tokenize, its head on the features it is sent, the
         * loss, the head's backward, the cut-layer gradient through its tokenizers */
        rc = model_tokenize(m, b->batch, &tokens, err);
        mpsl_tensor feat = f32(b->zeros, n, T, Dh), dfeat;
        if (rc == MPSL_OK) {
            rc = model_head(b->head, &feat, &logits, err);
        }
        if (rc == MPSL_OK) {
            session_loss(b->s, b->dlogits, logits.data, b->batch->labels, n, &hits);
            mpsl_tensor dl = f32(b->dlogits, n, C, 0);
            rc = model_head_backward(b->head, &dl, &dfeat, err);
        }
        if (rc == MPSL_OK && b->backward) {
            mpsl_tensor g = f32(b->zeros, n, T, D);
            rc = model_tokenize_backward(m, &g, err);
        }
    } else if (rc == MPSL_OK && b->kind == STEP_USHAPED_SERVER) {
        /* mpsl_ushaped.c server_forward/backward: the encoder alone, forward and backward */
        mpsl_tensor in = f32(b->zeros, n, T, D), feat;
        rc = model_features(m, &in, &feat, err);
        if (rc == MPSL_OK) {
            mpsl_tensor df = f32(b->zeros, n, T, Dh);
            rc = model_features_backward(m, &df, &dtokens, err);
        }
    } else if (rc == MPSL_OK && b->kind == STEP_SPLIT_SERVER) {
        /* mpsl.c server_forward/backward: encode the clients' tokens (and with
         * retrieval_loss: server, the loss over them all), backward once */
        mpsl_tensor in = f32(b->zeros, n, T, D);
        rc = model_encode(m, &in, &logits, err);
        if (rc == MPSL_OK) {
            mpsl_tensor dl = f32(b->dlogits, n, C, 0);
            memset(b->dlogits, 0, (size_t)(n * C) * sizeof(float));
            if (b->loss) {
                session_loss(b->s, b->dlogits, logits.data, NULL, n, &hits);
            }
            rc = model_encode_backward(m, &dl, &dtokens, err);
        }
    } else if (rc == MPSL_OK) {
        /* local_step.h: the whole model, forward, loss, backward */
        rc = model_tokenize(m, b->batch, &tokens, err);
        if (rc == MPSL_OK) {
            rc = model_encode(m, &tokens, &logits, err);
        }
        if (rc == MPSL_OK) {
            session_loss(b->s, b->dlogits, logits.data, b->batch->labels, n, &hits);
            mpsl_tensor dl = f32(b->dlogits, n, C, 0);
            rc = model_encode_backward(m, &dl, &dtokens, err);
        }
        if (rc == MPSL_OK) {
            rc = model_tokenize_backward(m, &dtokens, err);
        }
    }
    flops_set_target(NULL);
    return rc;
}

/* The FLOPs of a step of n samples: measured the first time, remembered after. */
static int bench_flops(bench *b, int64_t n, double f[2], mpsl_error *err)
{
    f[0] = f[1] = 0;
    if (n <= 0) {
        return MPSL_OK;
    }
    for (int i = 0; i < b->n_sizes; i++) {
        if (b->sizes[i] == n) {
            f[0] = b->flops[i][0];
            f[1] = b->flops[i][1];
            return MPSL_OK;
        }
    }
    if (b->n_sizes == b->cap_sizes) {
        int cap = b->cap_sizes ? 2 * b->cap_sizes : 8;
        int64_t *sz = realloc(b->sizes, (size_t)cap * sizeof *sz);
        if (sz) {
            b->sizes = sz;
        }
        double(*fl)[2] = realloc(b->flops, (size_t)cap * sizeof *fl);
        if (fl) {
            b->flops = fl;
        }
        if (!sz || !fl) {
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        }
        b->cap_sizes = cap;
    }
    int rc = run_step(b, n, f, err);
    if (rc == MPSL_OK) {
        b->sizes[b->n_sizes] = n;
        b->flops[b->n_sizes][0] = f[0];
        b->flops[b->n_sizes][1] = f[1];
        b->n_sizes++;
    }
    return rc;
}

/* ---------------------------------------------------------------- parties */

static void add_msg(estimate_link *l, int dir, int kind, int64_t bytes)
{
    l->bytes[dir][kind] += bytes;
    l->messages[dir][kind] += 1;
}

/* A party's model: its floats, and the activations at its part boundaries for a step of
 * max_batch samples: the tokens (T x D) it makes or receives, the encoder's output (T x D')
 * when it runs the encoder, and the logits (C) it computes or receives, as float32. */
static void describe_party(estimate_party *p, const mpsl_model *m, int64_t C, int64_t max_batch)
{
    p->params = m->n;
    p->trainable = m->n_trainable;
    p->max_batch = max_batch;
    int64_t per = m->T * m->D + C;
    if (m->parts & MPSL_PART_ENCODER) {
        per += m->T * m->enc[0].out_shape[1];
    }
    p->activation_bytes = max_batch * per * 4;
}

/* Whether MPSL's server computes the (retrieval) loss: its retrieval_loss is server (absent
 * from an mpsl plugin that predates the option: the clients do). */
static int mpsl_loss_on_server(const experiment *ex)
{
    const mpsl_param_spec *spec = NULL;
    mpsl_error none = {{0}};
    const int *v = param_of(&ex->strategy, "retrieval_loss", MPSL_PARAM_T_ENUM, &spec, &none);
    char name[32];
    return v && strcmp(enum_name(spec, *v, name, sizeof name), "server") == 0;
}

/* Whether the clients hold the head (head_on_client; absent from an mpsl plugin that
 * predates the option: no). */
static int mpsl_head_on_client(const experiment *ex)
{
    mpsl_error none = {{0}};
    const int *v = param_of(&ex->strategy, "head_on_client", MPSL_PARAM_T_BOOL, NULL, &none);
    return v && *v;
}

static int estimate_mpsl(mpsl_session *s, estimate *e, mpsl_error *err)
{
    experiment *ex = s->ex;
    const mpsl_param_spec *epoch_spec = NULL;
    const int *freeze = param_of(&ex->strategy, "freeze_tokenizers", MPSL_PARAM_T_BOOL, NULL,
                                 err);
    const int64_t *cb = freeze ? param_of(&ex->strategy, "client_batch", MPSL_PARAM_T_INT, NULL,
                                          err) : NULL;
    const int *ep = cb ? param_of(&ex->strategy, "epoch", MPSL_PARAM_T_ENUM, &epoch_spec, err)
                       : NULL;
    if (!ep) {
        return MPSL_ERR_INVALID;
    }
    int ushaped = mpsl_head_on_client(ex);
    char mode[32];
    int cycle = strcmp(enum_name(epoch_spec, *ep, mode, sizeof mode), "cycle") == 0;
    int K = e->n_clients;
    int64_t B = ex->train.batch_size, N = 0;
    int64_t b = client_batch(*cb, B, K);
    for (int k = 0; k < K; k++) {
        N += e->samples[k];
    }
    int64_t *steps_k = calloc((size_t)K, sizeof *steps_k);
    if (!steps_k) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    e->steps = 0;
    for (int k = 0; k < K; k++) {
        steps_k[k] = cycle ? (N + B - 1) / B : (e->samples[k] + b - 1) / b;
        e->steps = steps_k[k] > e->steps ? steps_k[k] : e->steps;
    }
    bench cl, sv;
    int server_loss = mpsl_loss_on_server(ex);
    int rc = bench_open(&cl, s, MPSL_PART_TOKENIZERS,
                        ushaped ? STEP_USHAPED_CLIENT : STEP_SPLIT_CLIENT, !*freeze, b, err);
    if (rc == MPSL_OK) {
        rc = bench_open(&sv, s, ushaped ? MPSL_PART_ENCODER : MPSL_PART_ENCODER | MPSL_PART_HEAD,
                        ushaped ? STEP_USHAPED_SERVER : STEP_SPLIT_SERVER, 1, b * K, err);
    } else {
        memset(&sv, 0, sizeof sv);
    }
    cl.loss = !server_loss;
    sv.loss = server_loss;
    int64_t *pos = calloc((size_t)K, sizeof *pos), max_total = 0, max_client = 0;
    int64_t TD = cl.m ? cl.m->T * cl.m->D : 0, C = s->out_size;
    int64_t TDh = cl.head ? cl.m->T * cl.head->Dh : 0; /* features per sample, U-shaped */
    if (!pos && rc == MPSL_OK) {
        rc = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    for (int64_t step = 0; step < e->steps && rc == MPSL_OK; step++) {
        int64_t total = 0;
        for (int k = 0; k < K && rc == MPSL_OK; k++) {
            if (step >= steps_k[k]) {
                continue; /* its pass is over: it sits the step out */
            }
            int64_t got = cursor_draw(&pos[k], e->samples[k], b);
            if (got == 0) {
                got = cursor_draw(&pos[k], e->samples[k], b);
            }
            estimate_link *l = &e->links[k];
            add_msg(l, 0, MPSL_MSG_ACTIVATIONS, got * TD * 4);
            if (ushaped) { /* features down, their gradient and the loss value up */
                add_msg(l, 1, MPSL_MSG_FEATURES, got * TDh * 4);
                add_msg(l, 0, MPSL_MSG_FEATURE_GRADS, got * TDh * 4);
                add_msg(l, 0, MPSL_MSG_SCALARS, 8);
            } else if (!server_loss) {
                add_msg(l, 1, MPSL_MSG_LOGITS, got * C * 4);
                add_msg(l, 0, MPSL_MSG_LOGIT_GRADS, got * C * 4);
                add_msg(l, 0, MPSL_MSG_SCALARS, 8); /* the loss value, float64 */
            }
            if (!*freeze) {
                add_msg(l, 1, MPSL_MSG_CUT_GRADS, got * TD * 4);
            }
            double f[2];
            rc = bench_flops(&cl, got, f, err);
            e->client_flops[2 * k] += f[0];
            e->client_flops[2 * k + 1] += f[1];
            total += got;
            max_client = got > max_client ? got : max_client;
        }
        double f[2] = {0, 0};
        if (rc == MPSL_OK) {
            rc = bench_flops(&sv, total, f, err);
        }
        e->server_flops[0] += f[0];
        e->server_flops[1] += f[1];
        max_total = total > max_total ? total : max_total;
    }
    /* sync_tokenizers_every N (where the plugin has it): after epoch 0 when N is 1 and
     * another epoch follows, the average goes down to every client */
    mpsl_error none = {{0}};
    const int64_t *sync = param_of(&ex->strategy, "sync_tokenizers_every", MPSL_PARAM_T_INT,
                                   NULL, &none);
    int synced = sync && *sync == 1 && ex->train.epochs > 1;
    if (rc == MPSL_OK) {
        for (int k = 0; k < K && !*freeze; k++) { /* tokenizers uploaded for evaluation */
            add_msg(&e->links[k], 0, MPSL_MSG_PARAMETERS, cl.m->n * 4);
            if (synced) {
                add_msg(&e->links[k], 1, MPSL_MSG_PARAMETERS, cl.m->n * 4);
            }
        }
        for (int k = 0; k < K && ushaped; k++) { /* and U-shaped, the heads too */
            add_msg(&e->links[k], 0, MPSL_MSG_PARAMETERS, cl.head->n * 4);
            if (synced) {
                add_msg(&e->links[k], 1, MPSL_MSG_PARAMETERS, cl.head->n * 4);
            }
        }
        describe_party(&e->client, cl.m, server_loss ? 0 : C, max_client); /* tokens, logits */
        describe_party(&e->server, sv.m, ushaped ? 0 : C, max_total);
        if (ushaped) { /* the client's head and the features it receives */
            e->client.params += cl.head->n;
            e->client.trainable += cl.head->n_trainable;
            e->client.activation_bytes += max_client * TDh * 4;
        }
    }
    free(pos);
    free(steps_k);
    bench_close(&cl);
    bench_close(&sv);
    return rc;
}

static int estimate_fedavg(mpsl_session *s, estimate *e, mpsl_error *err)
{
    experiment *ex = s->ex;
    const double *fraction = param_of(&ex->strategy, "fraction", MPSL_PARAM_T_FLOAT, NULL, err);
    const int64_t *local_epochs =
        fraction ? param_of(&ex->strategy, "local_epochs", MPSL_PARAM_T_INT, NULL, err) : NULL;
    const int64_t *batch =
        local_epochs ? param_of(&ex->strategy, "batch_size", MPSL_PARAM_T_INT, NULL, err) : NULL;
    if (!batch) {
        return MPSL_ERR_INVALID;
    }
    int K = e->n_clients;
    int64_t lb = client_batch(*batch, ex->train.batch_size, K);
    int m = (int)ceil(*fraction * K - 1e-9); /* federated.h sample_clients */
    e->sampled = m < 1 ? 1 : m;
    bench cl;
    int rc = bench_open(&cl, s, MPSL_PART_ALL, STEP_LOCAL, 1, lb, err);
    int64_t P = cl.m ? cl.m->n_trainable : 0, max_batch = 0;
    e->steps = 0;
    for (int k = 0; k < K && rc == MPSL_OK; k++) {
        /* figures of a round that samples client k (every round when fraction is 1) */
        add_msg(&e->links[k], 1, MPSL_MSG_PARAMETERS, P * 4);
        add_msg(&e->links[k], 0, MPSL_MSG_PARAMETERS, P * 4);
        int64_t pos = 0, steps = 0;
        for (int64_t ep = 0; ep < *local_epochs && rc == MPSL_OK; ep++) {
            int64_t got;
            while (rc == MPSL_OK && (got = cursor_draw(&pos, e->samples[k], lb)) > 0) {
                double f[2];
                rc = bench_flops(&cl, got, f, err);
                e->client_flops[2 * k] += f[0];
                e->client_flops[2 * k + 1] += f[1];
                max_batch = got > max_batch ? got : max_batch;
                steps++;
            }
        }
        e->steps = steps > e->steps ? steps : e->steps;
    }
    if (rc == MPSL_OK) {
        describe_party(&e->client, cl.m, s->out_size, max_batch);
        describe_party(&e->server, cl.m, s->out_size, 0); /* the global model, not run */
    }
    bench_close(&cl);
    return rc;
}

static int estimate_centralized(mpsl_session *s, estimate *e, mpsl_error *err)
{
    int64_t B = s->ex->train.batch_size, N = s->n_all_train, pos = 0, got, max_batch = 0;
    bench sv;
    int rc = bench_open(&sv, s, MPSL_PART_ALL, STEP_LOCAL, 1, B, err);
    e->steps = 0;
    while (rc == MPSL_OK && (got = cursor_draw(&pos, N, B)) > 0) {
        double f[2];
        rc = bench_flops(&sv, got, f, err);
        e->server_flops[0] += f[0];
        e->server_flops[1] += f[1];
        max_batch = got > max_batch ? got : max_batch;
        e->steps++;
    }
    if (rc == MPSL_OK) {
        describe_party(&e->server, sv.m, s->out_size, max_batch);
    }
    bench_close(&sv);
    return rc;
}

/* ---------------------------------------------------------------- break-even */

/* MPSL's bytes for one client of n samples in an epoch (one_pass, b samples a step): tokens
 * up and cut-layer gradients down (n T D 4 each), logits down and their gradients up (n C 4
 * each), one float64 loss value a step, the tokenizer upload (P_tok 4). U-shaped MPSL: C is
 * the features' floats per sample (T Dh), which cross as the logits do, and its head's P_head
 * floats go up too (0 for plain MPSL). */
static int64_t mpsl_client_bytes(int64_t n, int64_t T, int64_t D, int64_t C, int64_t b,
                                 int64_t p_tok, int cut_grads, int loss_msgs, int64_t p_head)
{
    int64_t steps = (n + b - 1) / b;
    return n * T * D * 4 * (cut_grads ? 2 : 1) + (loss_msgs ? 2 * n * C * 4 + 8 * steps : 0) +
           (cut_grads ? 4 * p_tok : 0) + 4 * p_head;
}

/* The parameter counts of the whole model (trainable) and of the tokenizers (all floats)
 * with every tokenizer's `dim` set to width. */
static int counts_at_width(mpsl_session *s, int64_t width, double *trainable, double *tok,
                           mpsl_error *err)
{
    experiment *ex = s->ex;
    cfg_node *root = cfg_clone(ex->root);
    if (!root) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    int rc = MPSL_OK;
    for (int i = 0; i < ex->n_tokenizers && rc == MPSL_OK; i++) {
        char set[160];
        snprintf(set, sizeof set, "model.tokenizers.%s.dim=%lld", ex->modality[i],
                 (long long)width);
        rc = cfg_apply_override(root, set, err);
    }
    experiment wide;
    memset(&wide, 0, sizeof wide);
    if (rc == MPSL_OK) {
        rc = experiment_build(root, ex->path, ex->dir, &wide, err);
    } else {
        cfg_free(root);
    }
    mpsl_model *m = NULL;
    if (rc == MPSL_OK) {
        wide.weights.path = NULL; /* a file of the configured width would not fit */
        s->ex = &wide;
        rc = model_create(s, MPSL_PART_ALL, &m, err);
        s->ex = ex;
    }
    if (rc == MPSL_OK) {
        int64_t base, count;
        model_part_span(m, MPSL_PART_TOKENIZERS, &base, &count);
        *trainable = (double)m->n_trainable;
        *tok = (double)count;
    }
    model_destroy(m);
    experiment_free(&wide);
    return rc;
}

/* The quadratic through three points, c[0] + c[1] x + c[2] x^2. */
static void quadratic(const double x[3], const double y[3], double c[3])
{
    double d01 = (y[1] - y[0]) / (x[1] - x[0]), d12 = (y[2] - y[1]) / (x[2] - x[1]);
    c[2] = (d12 - d01) / (x[2] - x[0]);
    c[1] = d01 - c[2] * (x[0] + x[1]);
    c[0] = y[0] - c[1] * x[0] - c[2] * x[0] * x[0];
}

static double poly(const double c[3], double x) { return c[0] + x * (c[1] + x * c[2]); }

/* Does every tokenizer take a `dim`? Then the width can be varied. */
static int width_keys(const experiment *ex, char *buf, size_t size)
{
    buf[0] = 0;
    for (int i = 0; i < ex->n_tokenizers; i++) {
        const mpsl_plugin_desc *d = ex->tokenizer[i].plugin.desc;
        int has = 0;
        for (size_t j = 0; j < d->n_params; j++) {
            has |= strcmp(d->params[j].key, "dim") == 0;
        }
        if (!has) {
            buf[0] = 0;
            return 0;
        }
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%smodel.tokenizers.%s.dim", i ? ", " : "",
                 ex->modality[i]);
    }
    return ex->n_tokenizers > 0;
}

/* Solve for the width where FedAvg's bytes (8 P(w)) equal MPSL's mean bytes per client
 * (linear in w through the tokens, plus 4 P_tok(w)); P and P_tok are quadratic in w. */
static int breakeven_width(mpsl_session *s, estimate *e, int64_t b, int cut_grads,
                           int loss_msgs, mpsl_error *err)
{
    estimate_breakeven *be = &e->be;
    be->width_root = -1;
    if (!width_keys(s->ex, be->width_keys, sizeof be->width_keys)) {
        return MPSL_OK;
    }
    int64_t w0 = e->D;
    double x[4], p[4], t[4];
    int got = 0;
    /* the configured width and its halvings first (small models, divisible like it) */
    int64_t tries[] = {w0, w0 % 2 ? 0 : w0 / 2, w0 % 4 ? 0 : w0 / 4, w0 % 8 ? 0 : w0 / 8,
                       2 * w0, 3 * w0};
    for (size_t i = 0; i < MPSL_COUNT(tries) && got < 4; i++) {
        mpsl_error quiet = {{0}}; /* a width the model refuses (heads must divide it) */
        if (tries[i] >= 1 && counts_at_width(s, tries[i], &p[got], &t[got], &quiet) == MPSL_OK) {
            x[got++] = (double)tries[i];
        }
    }
    if (got < 3) {
        be->width_keys[0] = 0; /* the model cannot be built at other widths */
        return MPSL_OK;
    }
    double cp[3], ct[3];
    quadratic(x, p, cp);
    quadratic(x, t, ct);
    be->width_exact = got == 4 && fabs(poly(cp, x[3]) - p[3]) < 0.5 &&
                      fabs(poly(ct, x[3]) - t[3]) < 0.5;
    /* MPSL per client, mean over clients: a1 w + a0 + 4 u P_tok(w) */
    double N = 0, steps = 0;
    for (int k = 0; k < e->n_clients; k++) {
        N += (double)e->samples[k];
        steps += (double)((e->samples[k] + b - 1) / b);
    }
    double K = e->n_clients, a1 = N / K * (double)e->T * 4 * (cut_grads ? 2 : 1);
    double a0 = loss_msgs ? N / K * (double)e->C * 8 + 8 * steps / K : 0;
    double u = cut_grads ? 4 : 0;
    /* g(w) = FedAvg - MPSL = A w^2 + Bw + C0; MPSL is below where g > 0 */
    double A = 8 * cp[2] - u * ct[2], Bc = 8 * cp[1] - u * ct[1] - a1;
    double C0 = 8 * cp[0] - u * ct[0] - a0;
    double root = -1;
    if (fabs(A) > 1e-12) {
        double disc = Bc * Bc - 4 * A * C0;
        if (disc >= 0) {
            double r1 = (-Bc - sqrt(disc)) / (2 * A), r2 = (-Bc + sqrt(disc)) / (2 * A);
            double hi = r1 > r2 ? r1 : r2;
            root = hi > 0 ? hi : -1;
        }
    } else if (fabs(Bc) > 1e-12) {
        root = -C0 / Bc > 0 ? -C0 / Bc : -1;
    }
    be->width_root = root;
    /* the sign of g beyond the root (or everywhere, without one) */
    double probe = root > 0 ? root * 2 + 1 : 1;
    be->width_above = A * probe * probe + Bc * probe + C0 > 0;
    return MPSL_OK;
}

static int breakeven(mpsl_session *s, estimate *e, mpsl_error *err)
{
    const experiment *ex = s->ex;
    int K = e->n_clients, cut_grads = 1, loss_msgs = 1;
    int64_t setting = 0; /* MPSL's default client batch for the other strategies */
    if (strcmp(e->strategy, "mpsl") == 0) {
        const int *freeze = param_of(&ex->strategy, "freeze_tokenizers", MPSL_PARAM_T_BOOL,
                                     NULL, err);
        const int64_t *cb = param_of(&ex->strategy, "client_batch", MPSL_PARAM_T_INT, NULL, err);
        cut_grads = freeze && !*freeze;
        setting = cb ? *cb : 0;
        loss_msgs = !mpsl_loss_on_server(ex);
    }
    int64_t b = client_batch(setting, ex->train.batch_size, K);
    mpsl_model *m;
    int rc = model_create(s, MPSL_PART_ALL, &m, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    int64_t base, p_tok, p_head = 0, C = e->C;
    model_part_span(m, MPSL_PART_TOKENIZERS, &base, &p_tok);
    int ushaped = strcmp(e->strategy, "mpsl") == 0 && mpsl_head_on_client(ex);
    if (ushaped) { /* features cross instead of logits, and the heads go up */
        model_part_span(m, MPSL_PART_HEAD, &base, &p_head);
        C = e->T * m->Dh;
        loss_msgs = 1;
    }
    estimate_breakeven *be = &e->be;
    be->fedavg_bytes = 8 * m->n_trainable;
    int64_t sum = 0;
    for (int k = 0; k < K; k++) {
        sum += mpsl_client_bytes(e->samples[k], e->T, e->D, C, b, p_tok, cut_grads, loss_msgs,
                                 p_head);
    }
    be->mpsl_bytes = sum / K;
    model_destroy(m);
    /* the most samples per client for which MPSL sends less (its bytes grow with n) */
    int64_t lo = -1, hi = (int64_t)1 << 40;
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (mpsl_client_bytes(mid, e->T, e->D, C, b, p_tok, cut_grads, loss_msgs, p_head) <
            be->fedavg_bytes) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    be->samples = lo;
    if (ushaped) { /* the width model below is plain MPSL's */
        be->width_unmodelled = 1;
        return MPSL_OK;
    }
    return breakeven_width(s, e, b, cut_grads, loss_msgs, err);
}

/* ---------------------------------------------------------------- the estimate */

int estimate_experiment(experiment *ex, estimate *e, mpsl_error *err)
{
    memset(e, 0, sizeof *e);
    snprintf(e->strategy, sizeof e->strategy, "%s", ex->strategy.plugin.desc->name);
    mpsl_session s = {.ex = ex, .host = host_services(), .n_ranks = 1, .transport = "local"};
    int rc = session_open_data(&s, err);
    if (rc == MPSL_OK) {
        rc = model_probe(&s, err); /* shapes, and the head's output size */
    }
    int K = ex->n_clients;
    e->n_clients = K;
    e->sampled = K;
    e->samples = calloc((size_t)K, sizeof *e->samples);
    e->links = calloc((size_t)K, sizeof *e->links);
    e->client_flops = calloc((size_t)K * 2, sizeof *e->client_flops);
    if (rc == MPSL_OK && (!e->samples || !e->links || !e->client_flops)) {
        rc = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory for %d clients", K);
    }
    mpsl_model *probe = NULL;
    if (rc == MPSL_OK) {
        for (int k = 0; k < K; k++) {
            e->samples[k] = s.part.count[k];
        }
        rc = model_create(&s, MPSL_PART_TOKENIZERS, &probe, err);
    }
    if (rc == MPSL_OK) {
        e->T = probe->T;
        e->D = probe->D;
        e->C = s.out_size;
        model_destroy(probe);
        if (strcmp(e->strategy, "mpsl") == 0) {
            rc = estimate_mpsl(&s, e, err);
        } else if (strcmp(e->strategy, "fedavg") == 0 || strcmp(e->strategy, "fedprox") == 0) {
            rc = estimate_fedavg(&s, e, err);
        } else if (strcmp(e->strategy, "centralized") == 0) {
            rc = estimate_centralized(&s, e, err);
        } else {
            rc = mpsl_err(err, "%s: strategy '%s': estimate knows the messages of mpsl, fedavg, "
                          "fedprox and centralized only (a strategy's protocol is its own code)",
                          ex->strategy.where, e->strategy);
        }
    }
    if (rc == MPSL_OK) {
        rc = breakeven(&s, e, err);
    }
    session_close(&s);
    return rc;
}

void estimate_free(estimate *e)
{
    free(e->samples);
    free(e->links);
    free(e->client_flops);
    memset(e, 0, sizeof *e);
}
