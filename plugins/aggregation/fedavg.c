/* fedavg.c: Federated Averaging (McMahan et al.): local training of the whole model on each
 * sampled client, sample-weighted averaging on the server. The machinery is in federated.h. */
#include <mpsl/plugin.h>

#include "federated.h"

static const mpsl_param_spec fedavg_spec[] = {FEDAVG_PARAM_SPECS};

MPSL_PLUGIN(MPSL_KIND_AGGREGATION, "fedavg", "2.1.0",
            "Federated Averaging: local training of the whole model, weighted averaging",
            &fedavg_api, fedavg_params, fedavg_spec);
