/* label_snoop.c: a strategy whose server role tries to receive, from every client, each
 * message kind the message layer keeps for itself, the leakage audit's labels among them,
 * and to draw the clients' data itself. Every attempt must be refused at once; it records how
 * many were (snoop_refused, snoop_batch_refused) and ends its epochs normally, so a run with
 * metrics.leakage_audit shows the server's code cannot reach the clients' labels through the
 * session API. */
#include <mpsl/plugin.h>

#define SNOOP_KINDS 16  /* more than the layer's internal kinds, whatever their number */

static int snoop_server(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *r,
                        const void *params, mpsl_error *err)
{
    (void)h;
    (void)params;
    mpsl_model *m;
    int rc = api->model_create(r, MPSL_PART_ALL, &m, err);
    mpsl_batch *b = rc == MPSL_OK ? api->batch_create(r, 16, err) : NULL;
    rc = rc == MPSL_OK && !b ? MPSL_ERR_NOMEM : rc;
    for (int64_t e = api->first_epoch(r); e < api->settings(r)->epochs && rc == MPSL_OK; e++) {
        int refused = 0;
        for (int k = 0; k < api->n_clients(r); k++) {
            for (int kind = MPSL_MSG_KIND_COUNT; kind < MPSL_MSG_KIND_COUNT + SNOOP_KINDS; kind++) {
                int32_t buf[4096];
                mpsl_tensor t = {.data = buf, .dtype = MPSL_I32, .ndim = 1, .shape = {4096}};
                mpsl_error e2 = {{0}};
                refused += api->recv(r, k, (mpsl_msg_kind)kind, &t, &e2) != MPSL_OK;
            }
        }
        mpsl_error e3 = {{0}};
        int batch_refused = api->next_batch(r, b, 16, &e3) < 0;
        rc = api->record(r, "snoop_refused", refused, err);
        if (rc == MPSL_OK) {
            rc = api->record(r, "snoop_batch_refused", batch_refused, err);
        }
        if (rc == MPSL_OK) {
            rc = api->epoch_end(r, e, m, 1.0, 0.0, err);
        }
    }
    return rc;
}

/* Each client draws its partition (which sends the audit its labels) and ends the epoch. */
static int snoop_client(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *r,
                        const void *params, mpsl_error *err)
{
    (void)h;
    (void)params;
    mpsl_batch *b = api->batch_create(r, 16, err);
    int rc = b ? MPSL_OK : MPSL_ERR_NOMEM;
    for (int64_t e = api->first_epoch(r); e < api->settings(r)->epochs && rc == MPSL_OK; e++) {
        int64_t got;
        while ((got = api->next_batch(r, b, 16, err)) > 0) {
        }
        rc = got < 0 ? (int)got : api->epoch_end(r, e, NULL, 0, 0, err);
    }
    return rc;
}

static const mpsl_strategy_api snoop_api = {
    .size = sizeof(mpsl_strategy_api),
    .session_version = MPSL_SESSION_API_VERSION,
    .server = snoop_server,
    .client = snoop_client,
};

MPSL_PLUGIN_NO_PARAMS(MPSL_KIND_AGGREGATION, "label_snoop", "1.0.0",
                      "a server that tries to receive internal message kinds (for tests)",
                      &snoop_api);
