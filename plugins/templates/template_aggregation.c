/* template_aggregation.c: a complete training strategy to copy when writing your own.
 *
 * HOW TO MAKE A NEW STRATEGY FROM THIS FILE
 *   1. Copy:   cp template_aggregation.c my_strategy.c
 *   2. Rename: replace the prefix "ta_" and the name "template_aggregation" (in ta_desc).
 *   3. Build:  cc -shared -fPIC -O2 $(pkg-config --cflags mpsl-plugin) my_strategy.c \
 *                 -o my_strategy.so   (or add it to plugins/aggregation/meson.build).
 *   4. Change: run(). A split strategy creates one model per party instead of one for all
 *              (model_create(s, MPSL_PART_TOKENIZERS, ...) per client and
 *              MPSL_PART_ENCODER | MPSL_PART_HEAD for the server), sets the party before each
 *              party computes (set_party), and moves every tensor between parties with
 *              send()/recv() so that the bytes are counted. A federated one keeps a global
 *              model and copies or averages the flat parameter buffers (model_params).
 *
 * WHAT THIS ONE DOES: plain centralized training, the reference every distributed strategy
 * is compared with. One model with all parts; each epoch runs over the union of all clients'
 * data (client_next(s, -1, ...)) in batches of train.batch_size:
 *     zero grads -> tokenize -> encode -> cross-entropy -> encode backward ->
 *     tokenize backward -> optimizer step
 * then epoch_end() records the mean training loss and accuracy (and evaluates when due).
 * All FLOPs are attributed to the server. No tensors cross a link, so no bytes are counted.
 *
 * RULES IT FOLLOWS (see mpsl/plugin.h)
 * - Check should_stop() in every loop and return MPSL_ERR_INTERRUPTED promptly.
 * - On failure return the status with err set; the host releases models, optimizers and
 *   batches made through it even if run() fails, but releasing them yourself is tidy.
 * - Memory of your own comes from h->alloc and goes back with h->free.
 */
#include <stddef.h>

#include <mpsl/plugin.h>

typedef struct {
    int record_steps;
} ta_params;

static const mpsl_param_spec ta_spec[] = {
    MPSL_PARAM_BOOL(ta_params, record_steps, "record_steps", "false",
                    "also record the number of optimizer steps per epoch"),
};

typedef struct {
    const mpsl_host *h;
    ta_params p;
} ta_state;

static int ta_create(const mpsl_host *h, mpsl_session *s, const void *params,
                     const char *where, void **state, mpsl_error *err)
{
    // validate against the session here (client counts, batch sizes, ...)
    const mpsl_train_settings *st = h->settings(s);
    if (st->batch_size < 1 || st->epochs < 1) {
        h->error_set(err, "%s: template_aggregation needs batch_size >= 1 and epochs >= 1",
                     where);
        return MPSL_ERR_INVALID;
    }
    ta_state *t = h->alloc(sizeof(*t));
    if (!t) {
        h->error_set(err, "%s: out of memory", where);
        return MPSL_ERR_NOMEM;
    }
    t->h = h;
    t->p = *(const ta_params *)params;
    *state = t;
    return MPSL_OK;
}

static void ta_destroy(void *state)
{
    ta_state *t = state;
    if (t) {
        t->h->free(t);
    }
}

static int ta_run(void *state, mpsl_session *s, mpsl_error *err)
{
    ta_state *t = state;
    const mpsl_host *h = t->h;
    const mpsl_train_settings *st = h->settings(s);
    int64_t C = 0;           // floats the head gives per sample (classes, or retrieval embeddings)
    mpsl_model *m = NULL;
    mpsl_optim *o = NULL;
    mpsl_batch *b = NULL;
    float *dlogits = NULL;   // (batch_size, C)
    int rc;

    if ((rc = h->model_create(s, MPSL_PART_ALL, &m, err)) != MPSL_OK ||
        (rc = h->optim_create(s, m, &o, err)) != MPSL_OK) {
        goto done;
    }
    C = h->model_output_size(m);
    b = h->batch_create(s, st->batch_size, err);
    dlogits = h->alloc((size_t)(st->batch_size * C) * sizeof(float));
    if (!b || !dlogits) {
        rc = MPSL_ERR_NOMEM;
        if (b) { // batch_create wrote its own message
            h->error_set(err, "template_aggregation: out of memory");
        }
        goto done;
    }
    h->set_party(s, MPSL_PARTY_SERVER, MPSL_SERVER);   // all compute happens in one place

    for (int64_t epoch = 0; epoch < st->epochs; epoch++) {
        double loss_sum = 0.0;
        int64_t seen = 0, correct_sum = 0, steps = 0;
        for (;;) {
            if (h->should_stop(s)) {
                rc = MPSL_ERR_INTERRUPTED;
                goto done;
            }
            // the next batch of the union of all clients; 0 ends the pass (the epoch)
            int64_t n = h->client_next(s, -1, b, st->batch_size, err);
            if (n < 0) {
                rc = (int)n;
                goto done;
            }
            if (n == 0) {
                break;
            }
            mpsl_tensor tokens, logits, dtokens;
            h->model_zero_grad(m);
            if ((rc = h->model_tokenize(m, b, &tokens, err)) != MPSL_OK ||
                (rc = h->model_encode(m, &tokens, &logits, err)) != MPSL_OK) {
                goto done;
            }
            int64_t correct = 0;
            // the task's loss (cross-entropy, or the retrieval contrastive loss) and its gradient
            double loss = h->loss(s, dlogits, logits.data, b->labels, n, &correct);
            mpsl_tensor dl = {.data = dlogits, .dtype = MPSL_F32, .ndim = 2, .shape = {n, C}};
            if ((rc = h->model_encode_backward(m, &dl, &dtokens, err)) != MPSL_OK ||
                (rc = h->model_tokenize_backward(m, &dtokens, err)) != MPSL_OK ||
                (rc = h->optim_step(o, epoch, err)) != MPSL_OK) {
                goto done;
            }
            loss_sum += loss * (double)n;
            correct_sum += correct;
            seen += n;
            steps++;
        }
        if (t->p.record_steps &&
            (rc = h->record(s, epoch, "steps", (double)steps, err)) != MPSL_OK) {
            goto done;
        }
        double train_loss = seen ? loss_sum / (double)seen : 0.0;
        double train_acc = seen ? (double)correct_sum / (double)seen : 0.0;
        if ((rc = h->epoch_end(s, epoch, m, train_loss, train_acc, err)) != MPSL_OK) {
            goto done;
        }
    }
    rc = MPSL_OK;
done:
    h->free(dlogits);
    if (b) {
        h->batch_destroy(s, b);
    }
    if (o) {
        h->optim_destroy(o);
    }
    if (m) {
        h->model_destroy(m);
    }
    return rc;
}

static const mpsl_aggregation_api ta_api = {
    sizeof(mpsl_aggregation_api), ta_create, ta_destroy, ta_run,
};

static const mpsl_plugin_desc ta_desc = {
    MPSL_ABI_MAJOR, MPSL_ABI_MINOR, "template_aggregation", "1.0.0", MPSL_KIND_AGGREGATION,
    "template: centralized SGD over all clients' data, one model",
    ta_spec, MPSL_COUNT(ta_spec), sizeof(ta_params), &ta_api,
};

MPSL_PLUGIN_EXPORT int mpsl_plugin_entry(const mpsl_host *h, const mpsl_plugin_desc **desc,
                                         mpsl_error *err)
{
    (void)h;
    (void)err;
    *desc = &ta_desc;
    return MPSL_OK;
}
