/* estimate.h: what one epoch of an experiment will cost, before running it (`mpsl estimate`):
 * bytes per client by direction and message kind, FLOPs per party and pass, parameters and
 * activation memory per party, and where MPSL's traffic falls below FedAvg's.
 *
 * Bytes and step counts are derived from the partition sizes and the strategy's settings with
 * the same rules the shipped strategies (plugins/aggregation/) follow. FLOPs are measured, not
 * modelled: one step of every distinct batch size a party processes is run once with the FLOP
 * counter on (the same kernels a run counts), and multiplied by how many steps of that size an
 * epoch has. See docs/cli.md (`mpsl estimate`) for the definitions. */
#ifndef MPSL_ESTIMATE_H
#define MPSL_ESTIMATE_H

#include <stdint.h>

#include "train/experiment.h"

/* Bytes and messages one client's link carries in an epoch, by direction (0 up: client to
 * server, 1 down) and message kind (mpsl_msg_kind), as the comm table records them. */
typedef struct estimate_link {
    int64_t bytes[2][MPSL_MSG_KIND_COUNT];
    int64_t messages[2][MPSL_MSG_KIND_COUNT];
} estimate_link;

/* One party's model. */
typedef struct estimate_party {
    int64_t params;             /* floats of its model (0: it holds none) */
    int64_t trainable;          /* of which trainable */
    int64_t max_batch;          /* the largest batch it processes in one step */
    int64_t activation_bytes;   /* boundary activations of that step (see docs/cli.md) */
} estimate_party;

/* Where MPSL's bytes per client per epoch fall below FedAvg's (break-even). */
typedef struct estimate_breakeven {
    int64_t fedavg_bytes;       /* per sampled client per round: 2 x 4 x trainable floats */
    int64_t mpsl_bytes;         /* per client per epoch (mean over clients) at this config */
    /* samples per client: MPSL (one_pass) is below FedAvg for up to this many samples
     * (-1: even for 0 samples it is not) */
    int64_t samples;
    /* token width: MPSL is below FedAvg for widths above width_root when width_above is 1
     * (below it when 0); width_root < 0 when they never cross for positive widths, with
     * width_above then saying whether MPSL is always (1) or never (0) below */
    double width_root;
    int width_above;
    int width_exact;            /* 1: parameter counts were quadratic in the width, checked */
    char width_keys[256];       /* the keys varied: "model.tokenizers.image.dim, ..." */
    int width_unmodelled;       /* 1: no width break-even for this layout (U-shaped MPSL) */
} estimate_breakeven;

typedef struct estimate {
    char strategy[64];          /* the strategy plugin's name */
    int n_clients;
    int64_t *samples;           /* (n_clients) each client's partition */
    int64_t steps;              /* steps per epoch: the server's (mpsl, centralized), or
                                 * local steps per sampled client summed (fedavg: the most) */
    int sampled;                /* clients per round (fedavg/fedprox), else n_clients */
    int64_t T, D, C;            /* tokens per sample, token width, outputs per sample */
    estimate_link *links;       /* (n_clients) */
    double *client_flops;       /* (n_clients * 2): forward, backward */
    double server_flops[2];
    estimate_party client;      /* the clients' model (the largest client's batch) */
    estimate_party server;
    estimate_breakeven be;
} estimate;

/* Open ex's dataset, partition it as a run would, build the parties' models and estimate
 * one epoch (the first; see docs for `epoch: cycle`). Trains nothing, writes nothing. */
int estimate_experiment(experiment *ex, estimate *out, mpsl_error *err);
void estimate_free(estimate *est);

#endif
