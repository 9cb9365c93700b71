/* template_aggregation.c: a complete training strategy to copy when writing your own.
 *
 * HOW TO MAKE A NEW STRATEGY FROM THIS FILE
 *   1. Copy:   cp template_aggregation.c my_strategy.c   (or: mpsl new-plugin aggregation NAME)
 *   2. Rename: replace the prefix "ta_" and the name "template_aggregation" (last line).
 *   3. Build:  cc -shared -fPIC -O2 $(pkg-config --cflags mpsl-plugin) my_strategy.c \
 *                 -o my_strategy.so   (or add it to plugins/aggregation/meson.build).
 *   4. Change: the two roles. A strategy is a SERVER role and a CLIENT role: two plain
 *              sequential functions that share nothing but the messages they exchange through
 *              api->send / api->recv (which count every byte). Each creates its own models
 *              (api->model_create(r, parts, ...): a split strategy gives clients
 *              MPSL_PART_TOKENIZERS and the server MPSL_PART_ENCODER | MPSL_PART_HEAD), its
 *              own optimizers and batches; FLOPs are charged to the role whose model ran. In
 *              one process the roles run as coroutines; under mpirun each in its own rank.
 *              plugins/aggregation/mpsl.c and federated.h are complete examples.
 *
 * WHAT THIS ONE DOES: centralized training on the server, the reference every distributed
 * strategy is compared with, plus the smallest client role that talks to it. Each epoch:
 *   client k: sends its partition size (one float, a SCALARS message) and ends the epoch;
 *   server:   receives every client's size (the epoch's sample count, recorded as
 *             "clients_samples"), trains one model on the union of the clients' data in
 *             batches of train.batch_size (api->next_batch on the server draws that union):
 *                 zero grads -> tokenize -> encode -> the task's loss -> encode backward ->
 *                 tokenize backward -> optimizer step
 *             and ends the epoch with its training loss and accuracy (evaluated when due).
 *
 * RULES IT FOLLOWS (see mpsl/plugin.h)
 * - Every role calls epoch_end() once per epoch, in order; the server's waits for the
 *   clients' (their reports carry their counters and records).
 * - Check should_stop() in every loop and return MPSL_ERR_INTERRUPTED promptly.
 * - On failure return the status with err set. Models, optimizers, batches and memory from
 *   api->alloc belong to the role and are released when it ends, however it ends.
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

// Validate the parameters against the run before anything is recorded.
static int ta_check(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *server,
                    const void *params, const char *where, mpsl_error *err)
{
    (void)params;
    const mpsl_train_settings *st = api->settings(server);
    if (st->batch_size < 1 || st->epochs < 1) {
        h->error_set(err, "%s: template_aggregation needs batch_size >= 1 and epochs >= 1",
                     where);
        return MPSL_ERR_INVALID;
    }
    return MPSL_OK;
}

static int ta_client(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *r,
                     const void *params, mpsl_error *err)
{
    (void)h;
    (void)params;
    const mpsl_train_settings *st = api->settings(r);
    for (int64_t epoch = api->first_epoch(r); epoch < st->epochs; epoch++) {
        float size = (float)api->client_samples(r, api->client_id(r));
        mpsl_tensor msg = {.data = &size, .dtype = MPSL_F32, .ndim = 1, .shape = {1}};
        int rc = api->send(r, MPSL_SERVER, MPSL_MSG_SCALARS, &msg, err);
        if (rc == MPSL_OK) {
            rc = api->epoch_end(r, epoch, NULL, 0, 0, err);
        }
        if (rc != MPSL_OK) {
            return rc;
        }
    }
    return MPSL_OK;
}

static int ta_server(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *r,
                     const void *params, mpsl_error *err)
{
    const ta_params *p = params;
    const mpsl_train_settings *st = api->settings(r);
    mpsl_model *m;
    mpsl_optim *o;
    int rc;
    if ((rc = api->model_create(r, MPSL_PART_ALL, &m, err)) != MPSL_OK ||
        (rc = api->optim_create(r, m, &o, err)) != MPSL_OK) {
        return rc;
    }
    int64_t C = api->model_output_size(m); // floats per sample (classes, or embeddings)
    mpsl_batch *b = api->batch_create(r, st->batch_size, err);
    float *dlogits = api->alloc(r, (size_t)(st->batch_size * C) * sizeof(float));
    if (!b || !dlogits) {
        if (b) { // batch_create wrote its own message
            h->error_set(err, "template_aggregation: out of memory");
        }
        return MPSL_ERR_NOMEM;
    }
    for (int64_t epoch = api->first_epoch(r); epoch < st->epochs; epoch++) {
        double samples = 0.0;
        for (int k = 0; k < api->n_clients(r); k++) {
            float size;
            mpsl_tensor msg = {.data = &size, .dtype = MPSL_F32, .ndim = 1, .shape = {1}};
            if ((rc = api->recv(r, k, MPSL_MSG_SCALARS, &msg, err)) != MPSL_OK) {
                return rc;
            }
            samples += size;
        }
        if ((rc = api->record(r, "clients_samples", samples, err)) != MPSL_OK) {
            return rc;
        }
        double loss_sum = 0.0;
        int64_t seen = 0, correct_sum = 0, steps = 0;
        for (;;) {
            if (api->should_stop(r)) {
                return MPSL_ERR_INTERRUPTED;
            }
            // the next batch of the union of all clients; 0 ends the pass (the epoch)
            int64_t n = api->next_batch(r, b, st->batch_size, err);
            if (n <= 0) {
                if (n < 0) {
                    return (int)n;
                }
                break;
            }
            mpsl_tensor tokens, logits, dtokens;
            api->model_zero_grad(m);
            if ((rc = api->model_tokenize(m, b, &tokens, err)) != MPSL_OK ||
                (rc = api->model_encode(m, &tokens, &logits, err)) != MPSL_OK) {
                return rc;
            }
            double loss;
            int64_t correct = 0;
            // the task's loss (cross-entropy, or the retrieval contrastive loss), its gradient
            if ((rc = api->loss(r, logits.data, b->labels, n, dlogits, &loss, &correct, err)) !=
                MPSL_OK) {
                return rc;
            }
            mpsl_tensor dl = {.data = dlogits, .dtype = MPSL_F32, .ndim = 2, .shape = {n, C}};
            if ((rc = api->model_encode_backward(m, &dl, &dtokens, err)) != MPSL_OK ||
                (rc = api->model_tokenize_backward(m, &dtokens, err)) != MPSL_OK ||
                (rc = api->optim_step(o, epoch, err)) != MPSL_OK) {
                return rc;
            }
            loss_sum += loss * (double)n;
            correct_sum += correct;
            seen += n;
            steps++;
        }
        if (p->record_steps && (rc = api->record(r, "steps", (double)steps, err)) != MPSL_OK) {
            return rc;
        }
        double train_loss = seen ? loss_sum / (double)seen : 0.0;
        double train_acc = seen ? (double)correct_sum / (double)seen : 0.0;
        if ((rc = api->epoch_end(r, epoch, m, train_loss, train_acc, err)) != MPSL_OK) {
            return rc;
        }
    }
    return MPSL_OK;
}

static const mpsl_strategy_api ta_api = {
    .size = sizeof(mpsl_strategy_api),
    .session_version = MPSL_SESSION_API_VERSION,
    .check = ta_check,
    .server = ta_server,
    .client = ta_client,
};

MPSL_PLUGIN(MPSL_KIND_AGGREGATION, "template_aggregation", "2.0.0",
            "template: centralized training on the server, clients report their sizes",
            &ta_api, ta_params, ta_spec);
