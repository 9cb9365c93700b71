/* deadlock_strategy.c: a broken strategy for the driver's tests: the server waits for a
 * message its clients never send (they end at once), or, with `client_waits: true`, every
 * client waits for a message the server never sends. The run must fail naming who waits for
 * what, never hang. */
#include <mpsl/plugin.h>

typedef struct dl_params {
    int client_waits;
} dl_params;

static const mpsl_param_spec dl_spec[] = {
    MPSL_PARAM_BOOL(dl_params, client_waits, "client_waits", "false",
                    "clients wait for the server instead"),
};

static int dl_server(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *r,
                     const void *params, mpsl_error *err)
{
    (void)h;
    if (((const dl_params *)params)->client_waits) {
        return MPSL_OK;
    }
    float v;
    mpsl_tensor t = {.data = &v, .dtype = MPSL_F32, .ndim = 1, .shape = {1}};
    return api->recv(r, 0, MPSL_MSG_SCALARS, &t, err);
}

static int dl_client(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *r,
                     const void *params, mpsl_error *err)
{
    (void)h;
    if (!((const dl_params *)params)->client_waits) {
        return MPSL_OK;
    }
    float v;
    mpsl_tensor t = {.data = &v, .dtype = MPSL_F32, .ndim = 1, .shape = {1}};
    return api->recv(r, MPSL_SERVER, MPSL_MSG_LOGITS, &t, err);
}

static const mpsl_strategy_api dl_api = {
    .size = sizeof(mpsl_strategy_api),
    .session_version = MPSL_SESSION_API_VERSION,
    .server = dl_server,
    .client = dl_client,
};

MPSL_PLUGIN(MPSL_KIND_AGGREGATION, "deadlock_strategy", "1.0.0",
            "a strategy whose roles wait forever (for tests)", &dl_api, dl_params, dl_spec);
