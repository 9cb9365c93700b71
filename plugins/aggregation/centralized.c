/* centralized.c: the reference point: the same model trained on the union of all clients'
 * data by one party, the server (whose data cursor is that union), with the run's batch size
 * and optimizer. Clients have no role. */
#include <mpsl/plugin.h>

#include "local_step.h"

static int central_server(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *r,
                          const void *params, mpsl_error *err)
{
    (void)params;
    const mpsl_train_settings *t = api->settings(r);
    mpsl_model *m;
    mpsl_optim *opt;
    int rc = api->model_create(r, MPSL_PART_ALL, &m, err);
    if (rc != MPSL_OK || (rc = api->optim_create(r, m, &opt, err)) != MPSL_OK) {
        return rc;
    }
    mpsl_batch *b = api->batch_create(r, t->batch_size, err);
    float *dlogits = api->alloc(r, (size_t)(t->batch_size * api->model_output_size(m)) *
                                       sizeof(float));
    if (!b || !dlogits) {
        if (b) {
            h->error_set(err, "out of memory for the logit gradients");
        }
        return MPSL_ERR_NOMEM;
    }
    int64_t samples = 0;
    for (int k = 0; k < api->n_clients(r); k++) {
        samples += api->client_samples(r, k);
    }
    int64_t steps = (samples + t->batch_size - 1) / t->batch_size;
    step_stats st = {0}; /* the epoch's figures so far outlive a checkpoint inside it */
    rc = api->keep(r, "stats", &st, sizeof st, err);
    for (int64_t epoch = api->first_epoch(r); epoch < t->epochs && rc == MPSL_OK; epoch++) {
        /* the data cursor, restored with a checkpoint, knows where the epoch's pass is */
        int64_t n, step = epoch == api->first_epoch(r) ? api->first_step(r) : 0;
        if (step == 0) {
            st = (step_stats){0};
        }
        while (rc == MPSL_OK && (n = api->next_batch(r, b, t->batch_size, err)) > 0) {
            rc = local_step(api, r, m, opt, b, dlogits, epoch, NULL, &st, err);
            if (rc == MPSL_OK) {
                rc = api->step_end(r, epoch, step + 1, err);
            }
            if (rc == MPSL_OK && api->should_stop(r)) {
                rc = MPSL_ERR_INTERRUPTED;
            }
            api->progress(r, epoch, ++step, steps);
        }
        if (rc == MPSL_OK && n < 0) {
            rc = (int)n;
        }
        if (rc == MPSL_OK) {
            rc = api->epoch_end(r, epoch, m, st.loss_sum / (double)st.seen,
                                (double)st.correct / (double)st.seen, err);
        }
    }
    return rc;
}

static const mpsl_strategy_api central_api = {
    .size = sizeof(mpsl_strategy_api),
    .session_version = MPSL_SESSION_API_VERSION,
    .server = central_server,
    .client = NULL,
};

MPSL_PLUGIN_NO_PARAMS(MPSL_KIND_AGGREGATION, "centralized", "2.0.0",
                      "the whole model trained on the union of the clients' data", &central_api);
