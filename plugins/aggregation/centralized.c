/* centralized.c: the reference point: the same model trained on the union of all clients'
 * data by one party (counted as the server), with the run's batch size and optimizer. */
#include <mpsl/plugin.h>

#include "local_step.h"

typedef struct centralized {
    const mpsl_host *h;
} centralized;

static int central_create(const mpsl_host *h, mpsl_session *s, const void *params,
                          const char *where, void **state, mpsl_error *err)
{
    (void)s;
    (void)params;
    (void)where;
    centralized *c = h->alloc(sizeof *c);
    if (!c) {
        h->error_set(err, "out of memory");
        return MPSL_ERR_NOMEM;
    }
    c->h = h;
    *state = c;
    return MPSL_OK;
}

static void central_destroy(void *state)
{
    centralized *c = state;
    c->h->free(c);
}

static int central_run(void *state, mpsl_session *s, mpsl_error *err)
{
    const mpsl_host *h = ((centralized *)state)->h;
    const mpsl_train_settings *t = h->settings(s);
    mpsl_model *m;
    mpsl_optim *opt;
    int rc = h->model_create(s, MPSL_PART_ALL, &m, err);
    if (rc != MPSL_OK || (rc = h->optim_create(s, m, &opt, err)) != MPSL_OK) {
        return rc;
    }
    mpsl_batch *b = h->batch_create(s, t->batch_size, err);
    float *dlogits = h->alloc((size_t)(t->batch_size * h->model_output_size(m)) * sizeof(float));
    if (!b || !dlogits) {
        h->free(dlogits);
        if (b) {
            h->error_set(err, "out of memory for the logit gradients");
        }
        return MPSL_ERR_NOMEM;
    }
    h->set_party(s, MPSL_PARTY_SERVER, -1);
    int64_t samples = 0;
    for (int k = 0; k < h->n_clients(s); k++) {
        samples += h->client_samples(s, k);
    }
    int64_t steps = (samples + t->batch_size - 1) / t->batch_size;
    for (int64_t epoch = 0; epoch < t->epochs && rc == MPSL_OK; epoch++) {
        step_stats st = {0};
        int64_t n, step = 0;
        while (rc == MPSL_OK && (n = h->client_next(s, -1, b, t->batch_size, err)) > 0) {
            rc = local_step(h, s, m, opt, b, dlogits, epoch, NULL, &st, err);
            if (rc == MPSL_OK && h->should_stop(s)) {
                rc = MPSL_ERR_INTERRUPTED;
            }
            h->progress(s, epoch, ++step, steps);
        }
        if (rc == MPSL_OK && n < 0) {
            rc = (int)n;
        }
        if (rc == MPSL_OK) {
            rc = h->epoch_end(s, epoch, m, st.loss_sum / (double)st.seen,
                              (double)st.correct / (double)st.seen, err);
        }
    }
    h->free(dlogits);
    return rc;
}

static const mpsl_aggregation_api central_api = {
    .size = sizeof(mpsl_aggregation_api),
    .create = central_create,
    .destroy = central_destroy,
    .run = central_run,
};

static const mpsl_plugin_desc central_desc = {
    .abi_major = MPSL_ABI_MAJOR,
    .abi_minor = MPSL_ABI_MINOR,
    .name = "centralized",
    .version = "1.0.0",
    .kind = MPSL_KIND_AGGREGATION,
    .summary = "the whole model trained on the union of the clients' data",
    .api = &central_api,
};

MPSL_PLUGIN_EXPORT int mpsl_plugin_entry(const mpsl_host *h, const mpsl_plugin_desc **desc,
                                         mpsl_error *err)
{
    (void)h;
    (void)err;
    *desc = &central_desc;
    return MPSL_OK;
}
