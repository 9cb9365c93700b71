/* partition.h: splitting a training set among clients, reproducibly from a seed.
 * IID: a seeded shuffle dealt into near-equal parts. Dirichlet: per class, proportions drawn
 * from Dirichlet(alpha) (as Flower's DirichletPartitioner), re-drawn until every client has
 * at least min_per_client samples. Shards: sorted by label, cut into 2 * n_clients shards,
 * two random shards per client. */
#ifndef MPSL_PARTITION_H
#define MPSL_PARTITION_H

#include <stdint.h>

#include "mpsl/plugin.h"

typedef enum partition_scheme {
    PARTITION_IID = 0,
    PARTITION_DIRICHLET,
    PARTITION_SHARDS
} partition_scheme;

typedef struct partition_spec {
    partition_scheme scheme;
    int n_clients;
    double alpha;            /* Dirichlet concentration (> 0) */
    int64_t min_per_client;  /* Dirichlet: re-draw until each client has at least this many */
    int64_t max_redraws;     /* Dirichlet: give up with a clear message after this many */
    uint64_t seed;
} partition_spec;

typedef struct partition {
    int n_clients;
    int64_t *count;          /* (n_clients) samples per client */
    int64_t **index;         /* index[k][0..count[k]) sample indices into the split */
} partition;

/* labels (n) in [0, n_classes). Refuses (err set): n_clients < 1, more clients than samples,
 * a client left empty (message names the client and suggests fewer clients / larger alpha),
 * Dirichlet that cannot meet min_per_client within max_redraws. */
int partition_create(const partition_spec *spec, const int32_t *labels, int64_t n,
                     int64_t n_classes, partition *out, mpsl_error *err);
void partition_destroy(partition *p);

/* Class histogram of client k into counts (n_classes). */
void partition_histogram(const partition *p, int k, const int32_t *labels, int64_t n_classes,
                         int64_t *counts);

#endif
