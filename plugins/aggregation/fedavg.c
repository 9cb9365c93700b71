/* fedavg.c: Federated Averaging (McMahan et al.): local training of the whole model on each
 * sampled client, sample-weighted averaging on the server. The machinery is in federated.h. */
#include <mpsl/plugin.h>

#include "federated.h"

static const mpsl_param_spec fedavg_spec[] = {FEDAVG_PARAM_SPECS};

static const mpsl_plugin_desc fedavg_desc = {
    .abi_major = MPSL_ABI_MAJOR,
    .abi_minor = MPSL_ABI_MINOR,
    .name = "fedavg",
    .version = "1.0.0",
    .kind = MPSL_KIND_AGGREGATION,
    .summary = "Federated Averaging: local training of the whole model, weighted averaging",
    .params = fedavg_spec,
    .n_params = MPSL_COUNT(fedavg_spec),
    .params_size = sizeof(fedavg_params),
    .api = &fedavg_api,
};

MPSL_PLUGIN_EXPORT int mpsl_plugin_entry(const mpsl_host *h, const mpsl_plugin_desc **desc,
                                         mpsl_error *err)
{
    (void)h;
    (void)err;
    *desc = &fedavg_desc;
    return MPSL_OK;
}
