/* netmodel.c: the client and link model and the simulated time of an epoch (netmodel.h).
 *
 * Links come from the `network:` keys: one constant device and link for every client; or
 * each quantity log-normal around its median (median x exp(sigma z), z ~ N(0, 1) drawn from
 * a stream seeded by the run seed and the client, so every rank derives the same links); or
 * one row per client from a CSV table. */
#include "netmodel.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/rng.h"
#include "util/util.h"

typedef struct network_keys {
    int model;
    double client_gflops, server_gflops;
    double speed, uplink_mbps, downlink_mbps, latency_ms, sigma;
    const char *table;
} network_keys;

static const mpsl_param_spec network_spec[] = {
    MPSL_PARAM_ENUM(network_keys, model, "model", "constant|lognormal|table", "constant",
                    "constant: every client the same; lognormal: each quantity log-normal "
                    "around its value (sigma); table: one row per client from a CSV file"),
    MPSL_PARAM_FLOAT(network_keys, client_gflops, "client_gflops", 0, 1e-6, 1e9, "10",
                     "GFLOP/s a client of speed 1 sustains while training"),
    MPSL_PARAM_FLOAT(network_keys, server_gflops, "server_gflops", 0, 1e-6, 1e12, "1000",
                     "GFLOP/s the server sustains while training"),
    MPSL_PARAM_FLOAT(network_keys, speed, "speed", 0, 1e-6, 1e6, "1",
                     "compute speed factor of a client (lognormal: the median)"),
    MPSL_PARAM_FLOAT(network_keys, uplink_mbps, "uplink_mbps", 0, 0, 1e7, "10",
                     "client to server bandwidth, Mbit/s (lognormal: the median); 0: unlimited"),
    MPSL_PARAM_FLOAT(network_keys, downlink_mbps, "downlink_mbps", 0, 0, 1e7, "50",
                     "server to client bandwidth, Mbit/s (lognormal: the median); 0: unlimited"),
    MPSL_PARAM_FLOAT(network_keys, latency_ms, "latency_ms", 0, 0, 1e6, "30",
                     "one-way latency per message, ms (lognormal: the median)"),
    MPSL_PARAM_FLOAT(network_keys, sigma, "sigma", 0, 0, 10, "0.5",
                     "lognormal: standard deviation of the logarithm of each quantity"),
    MPSL_PARAM_STRING(network_keys, table, "table", 0, NULL,
                      "table: CSV with a header client,speed,uplink_mbps,downlink_mbps,"
                      "latency_ms and one row per client (relative to the working directory)"),
};

const mpsl_param_spec *netmodel_spec(size_t *n)
{
    *n = MPSL_COUNT(network_spec);
    return network_spec;
}

static double mbps_to_Bps(double mbps) { return mbps * 1e6 / 8.0; }

/* A CSV of one row per client: client,speed,uplink_mbps,downlink_mbps,latency_ms. */
static int read_table(netmodel *nm, const char *path, const char *where, mpsl_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        return mpsl_err(err, "%s: network.table: cannot open '%s': %s", where, path,
                        strerror(errno));
    }
    char line[1024];
    int lineno = 0, rc = MPSL_OK;
    uint8_t *seen = calloc((size_t)nm->n_clients, 1);
    if (!seen) {
        fclose(f);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    while (rc == MPSL_OK && fgets(line, sizeof line, f)) {
        lineno++;
        if (lineno == 1) {
            if (strncmp(line, "client,speed,uplink_mbps,downlink_mbps,latency_ms", 49) != 0) {
                rc = mpsl_err(err, "%s:1: the header must be client,speed,uplink_mbps,"
                              "downlink_mbps,latency_ms", path);
            }
            continue;
        }
        if (strspn(line, " \t\r\n") == strlen(line)) {
            continue;
        }
        long client;
        double speed, up, down, lat;
        char tail;
        if (sscanf(line, "%ld,%lf,%lf,%lf,%lf %c", &client, &speed, &up, &down, &lat, &tail) !=
            5) {
            rc = mpsl_err(err, "%s:%d: expected client,speed,uplink_mbps,downlink_mbps,"
                          "latency_ms (five numbers)", path, lineno);
        } else if (client < 0 || client >= nm->n_clients || seen[client]) {
            rc = mpsl_err(err, "%s:%d: client %ld is %s (the run has clients 0..%d, one row "
                          "each)", path, lineno, client,
                          client >= 0 && client < nm->n_clients ? "given twice" : "out of range",
                          nm->n_clients - 1);
        } else if (!(speed > 0) || !(up >= 0) || !(down >= 0) || !(lat >= 0) ||
                   !isfinite(speed + up + down + lat)) {
            rc = mpsl_err(err, "%s:%d: speed must be > 0, bandwidths and latency >= 0 (0 "
                          "bandwidth: unlimited)", path, lineno);
        } else {
            seen[client] = 1;
            nm->link[client] = (client_link){speed, mbps_to_Bps(up), mbps_to_Bps(down),
                                             lat / 1000.0};
        }
    }
    for (int k = 0; k < nm->n_clients && rc == MPSL_OK; k++) {
        if (!seen[k]) {
            rc = mpsl_err(err, "%s: no row for client %d (the run has %d clients)", path, k,
                          nm->n_clients);
        }
    }
    free(seen);
    fclose(f);
    return rc;
}

int netmodel_parse(netmodel *nm, const cfg_node *section, int n_clients, uint64_t seed,
                   mpsl_error *err)
{
    memset(nm, 0, sizeof *nm);
    if (!section) {
        return MPSL_OK;
    }
    char w[256];
    network_keys k;
    int rc = cfg_parse_params(section, network_spec, MPSL_COUNT(network_spec), &k, sizeof k,
                              "network", NULL, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    if ((k.model == NET_TABLE) != (k.table != NULL)) {
        return mpsl_err(err, "%s: network.table %s", cfg_where(section, w, sizeof w),
                        k.table ? "is read only with model: table" : "is needed with model: table");
    }
    nm->on = 1;
    nm->kind = k.model;
    nm->client_flops = k.client_gflops * 1e9;
    nm->server_flops = k.server_gflops * 1e9;
    nm->n_clients = n_clients;
    nm->link = calloc((size_t)n_clients, sizeof *nm->link);
    if (!nm->link) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    if (k.model == NET_TABLE) {
        return read_table(nm, k.table, cfg_where(section, w, sizeof w), err);
    }
    for (int c = 0; c < n_clients; c++) {
        double f[4] = {1, 1, 1, 1}; /* speed, up, down, latency factors */
        if (k.model == NET_LOGNORMAL) {
            mpsl_rng rng;
            mpsl_rng_seed(&rng, mpsl_mix64(seed ^ 0x6e65746d6f64656cull) ^ (uint64_t)c);
            for (int q = 0; q < 4; q++) {
                f[q] = exp(k.sigma * mpsl_rng_normal(&rng));
            }
        }
        nm->link[c] = (client_link){k.speed * f[0], mbps_to_Bps(k.uplink_mbps) * f[1],
                                    mbps_to_Bps(k.downlink_mbps) * f[2],
                                    k.latency_ms / 1000.0 * f[3]};
    }
    return MPSL_OK;
}

void netmodel_free(netmodel *nm)
{
    free(nm->link);
    memset(nm, 0, sizeof *nm);
}

sim_row netmodel_client_row(const netmodel *nm, int client, int64_t slot, double flops,
                            int64_t up_bytes, int64_t down_bytes, int64_t messages)
{
    const client_link *l = &nm->link[client];
    double t = (double)messages * l->latency_s;
    t += l->up_Bps > 0 ? (double)up_bytes / l->up_Bps : 0.0;
    t += l->down_Bps > 0 ? (double)down_bytes / l->down_Bps : 0.0;
    return (sim_row){slot, flops / (l->speed * nm->client_flops), t};
}

sim_row netmodel_server_row(const netmodel *nm, int64_t slot, double flops)
{
    return (sim_row){slot, flops / nm->server_flops, 0.0};
}

/* Rows in slot order, the server's first within a slot. */
typedef struct keyed {
    sim_row row;
    int client;
} keyed;

static int by_slot(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->row.slot != y->row.slot) {
        return x->row.slot < y->row.slot ? -1 : 1;
    }
    return (x->client > y->client) - (x->client < y->client);
}

double netmodel_epoch_seconds(const sim_row *rows, const int *client, int n)
{
    keyed *k = malloc((size_t)(n ? n : 1) * sizeof *k);
    if (!k) {
        return NAN;
    }
    for (int i = 0; i < n; i++) {
        k[i] = (keyed){rows[i], client[i]};
    }
    qsort(k, (size_t)n, sizeof *k, by_slot);
    double total = 0;
    for (int i = 0; i < n;) {
        double server = 0, slowest = 0;
        int64_t slot = k[i].row.slot;
        for (; i < n && k[i].row.slot == slot; i++) {
            double t = k[i].row.compute_s + k[i].row.transfer_s;
            if (k[i].client == MPSL_SERVER) {
                server += t;
            } else if (t > slowest) {
                slowest = t;
            }
        }
        total += slowest + server;
    }
    free(k);
    return total;
}
