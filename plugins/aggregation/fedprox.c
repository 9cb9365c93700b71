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

MPSL_PLUGIN(MPSL_KIND_AGGREGATION, "fedprox", "2.1.0",
            "FedProx: FedAvg with the proximal term (mu/2)||w - w_global||^2",
            &fedavg_api, fedavg_params, fedprox_spec);
