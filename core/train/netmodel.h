/* netmodel.h: clients as they really are, for time: each client's compute speed and link
 * (uplink, downlink, latency) and the server's speed (the experiment's `network:` section),
 * and the simulated wall time they give a run from the exact bytes and counted FLOPs of each
 * party (docs/config.md, network). The model changes nothing a run computes: it only adds
 * the simulated times to what is recorded. */
#ifndef MPSL_NETMODEL_H
#define MPSL_NETMODEL_H

#include <stdint.h>

#include "config/config.h"
#include "mpsl/plugin.h"

/* One client's device and link. Bandwidths in bytes per second, 0: unlimited. */
typedef struct client_link {
    double speed;           /* compute speed factor: FLOP/s = speed x client_flops */
    double up_Bps, down_Bps;
    double latency_s;       /* one way, per message */
} client_link;

typedef struct netmodel {
    int on;                 /* a `network:` section was given */
    int kind;               /* NET_CONSTANT, NET_LOGNORMAL, NET_TABLE */
    double client_flops;    /* FLOP/s of a client of speed 1 */
    double server_flops;    /* FLOP/s of the server */
    int n_clients;
    client_link *link;      /* (n_clients) */
} netmodel;

enum { NET_CONSTANT = 0, NET_LOGNORMAL = 1, NET_TABLE = 2 };

/* Validate the `network:` mapping (NULL: the model is off) and derive every client's link:
 * the same on every rank, from the keys and the seed alone. A table file is read relative to
 * the working directory. */
int netmodel_parse(netmodel *nm, const cfg_node *section, int n_clients, uint64_t seed,
                   mpsl_error *err);
void netmodel_free(netmodel *nm);
/* The key table, for the stored configuration's defaults. */
const mpsl_param_spec *netmodel_spec(size_t *n);

/* One interval of a party's work in an epoch: a step (its 1-based number), or the rest of
 * the epoch (NETMODEL_EPOCH_END: a federated round, MPSL's tokenizer upload), with the
 * simulated seconds it computed and moved data. Plain data: clients report them. */
#define NETMODEL_EPOCH_END INT64_MAX
typedef struct sim_row {
    int64_t slot;
    double compute_s, transfer_s;
} sim_row;

/* What a party did since its last interval closed, as simulated seconds. FLOPs at the
 * party's speed; bytes at the client's link (up what it sent, down what it received) plus
 * one latency per message. The server's row has only compute (its side of each link is the
 * client's row). */
sim_row netmodel_client_row(const netmodel *nm, int client, int64_t slot, double flops,
                            int64_t up_bytes, int64_t down_bytes, int64_t messages);
sim_row netmodel_server_row(const netmodel *nm, int64_t slot, double flops);

/* The epoch's simulated wall time from every party's rows (client[i] is the client of row
 * i; MPSL_SERVER for the server's): per slot, the slowest client that worked in it (the one
 * waited for) plus the server's compute in it; summed over slots. */
double netmodel_epoch_seconds(const sim_row *rows, const int *client, int n);

#endif
