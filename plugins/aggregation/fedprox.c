/* fedprox.c: FedProx (Li et al.): FedAvg whose clients minimise their loss plus
 * (mu/2)||w - w_global||^2, keeping local models near the global one on non-IID data.
 * With mu = 0 it is FedAvg bit for bit. The machinery is in federated.h. */
#include <mpsl/plugin.h>

#include "federated.h"

static const mpsl_param_spec fedprox_spec[] = {
    FEDAVG_PARAM_SPECS,
    MPSL_PARAM_FLOAT(fedavg_params, mu, "mu", 0, 0, 1e6, "0.01",
                     "weight of the proximal term (mu/2)||w - w_global||^2"),
};

static const mpsl_plugin_desc fedprox_desc = {
    .abi_major = MPSL_ABI_MAJOR,
    .abi_minor = MPSL_ABI_MINOR,
    .name = "fedprox",
    .version = "1.0.0",
    .kind = MPSL_KIND_AGGREGATION,
    .summary = "FedProx: FedAvg with the proximal term (mu/2)||w - w_global||^2",
    .params = fedprox_spec,
    .n_params = MPSL_COUNT(fedprox_spec),
    .params_size = sizeof(fedavg_params),
    .api = &fedavg_api,
};

MPSL_PLUGIN_EXPORT int mpsl_plugin_entry(const mpsl_host *h, const mpsl_plugin_desc **desc,
                                         mpsl_error *err)
{
    (void)h;
    (void)err;
    *desc = &fedprox_desc;
    return MPSL_OK;
}
