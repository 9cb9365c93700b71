/* partition.c: splitting a training set among clients (IID, Dirichlet, shards), reproducibly
 * from the spec's seed. Every scheme first decides an owner client per sample; the index
 * lists are then built by one ascending scan, so each client's list is sorted and the result
 * depends only on the seed and the labels. */
#include "partition.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static const char *scheme_name(partition_scheme s)
{
    switch (s) {
    case PARTITION_IID: return "IID";
    case PARTITION_DIRICHLET: return "Dirichlet";
    case PARTITION_SHARDS: return "shards";
    }
    return "unknown";
}

/* Sample indices grouped by class, ascending inside each class (a stable sort by label).
 * sorted (n); start (n_classes + 1): class c occupies sorted[start[c] .. start[c+1]). */
static int group_by_class(const int32_t *labels, int64_t n, int64_t n_classes, int64_t *sorted,
                          int64_t *start)
{
    int64_t *fill = calloc((size_t)n_classes, sizeof *fill);
    if (!fill) {
        return MPSL_ERR_NOMEM;
    }
    memset(start, 0, (size_t)(n_classes + 1) * sizeof *start);
    for (int64_t i = 0; i < n; i++) {
        start[labels[i] + 1]++;
    }
    for (int64_t c = 0; c < n_classes; c++) {
        start[c + 1] += start[c];
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t c = labels[i];
        sorted[start[c] + fill[c]++] = i;
    }
    free(fill);
    return MPSL_OK;
}

static void assign_iid(mpsl_rng *rng, int64_t n, int K, int32_t *owner, int64_t *perm)
{
    for (int64_t i = 0; i < n; i++) {
        perm[i] = i;
    }
    mpsl_rng_shuffle(rng, perm, n);
    /* Client k deals positions [k*n/K, (k+1)*n/K): sizes differ by at most one. */
    for (int k = 0; k < K; k++) {
        int64_t a = (int64_t)k * n / K, b = (int64_t)(k + 1) * n / K;
        for (int64_t i = a; i < b; i++) {
            owner[perm[i]] = (int32_t)k;
        }
    }
}

/* One Dirichlet draw, as Flower's DirichletPartitioner: per class, shuffle its samples, draw
 * proportions p ~ Dir(alpha) (normalised Gamma(alpha) draws) and cut at
 * floor(cumsum(p) * m). count (K) receives the client sizes. */
static void assign_dirichlet_once(mpsl_rng *rng, const int64_t *sorted, const int64_t *start,
                                  int64_t n_classes, int K, double alpha, int32_t *owner,
                                  int64_t *scratch, double *prop, int64_t *count)
{
    memset(count, 0, (size_t)K * sizeof *count);
    for (int64_t c = 0; c < n_classes; c++) {
        int64_t m = start[c + 1] - start[c];
        if (m == 0) {
            continue;
        }
        memcpy(scratch, sorted + start[c], (size_t)m * sizeof *scratch);
        mpsl_rng_shuffle(rng, scratch, m);
        double sum = 0.0;
        do {
            /* With small alpha every Gamma draw can underflow to 0; draw again then. */
            sum = 0.0;
            for (int k = 0; k < K; k++) {
                prop[k] = mpsl_rng_gamma(rng, alpha);
                sum += prop[k];
            }
        } while (!(sum > 0.0) || !isfinite(sum));
        double cum = 0.0;
        int64_t from = 0;
        for (int k = 0; k < K; k++) {
            int64_t to;
            if (k == K - 1) {
                to = m;
            } else {
                cum += prop[k] / sum;
                to = (int64_t)(cum * (double)m);
                if (to > m) {
                    to = m;
                }
                if (to < from) {
                    to = from;
                }
            }
            for (int64_t i = from; i < to; i++) {
                owner[scratch[i]] = (int32_t)k;
            }
            count[k] += to - from;
            from = to;
        }
    }
}

static int assign_dirichlet(const partition_spec *spec, mpsl_rng *rng, const int32_t *labels,
                            int64_t n, int64_t n_classes, int32_t *owner, mpsl_error *err)
{
    int K = spec->n_clients;
    int64_t *sorted = malloc((size_t)n * sizeof *sorted);
    int64_t *scratch = malloc((size_t)n * sizeof *scratch);
    int64_t *start = malloc((size_t)(n_classes + 1) * sizeof *start);
    int64_t *count = malloc((size_t)K * sizeof *count);
    double *prop = malloc((size_t)K * sizeof *prop);
    int rc = MPSL_OK;
    if (!sorted || !scratch || !start || !count || !prop) {
        rc = mpsl_errs(err, MPSL_ERR_NOMEM, "partition: out of memory for %lld samples",
                       (long long)n);
        goto done;
    }
    rc = group_by_class(labels, n, n_classes, sorted, start);
    if (rc != MPSL_OK) {
        mpsl_errs(err, rc, "partition: out of memory for %lld classes", (long long)n_classes);
        goto done;
    }
    int64_t best_min = -1;
    int best_client = 0;
    for (int64_t attempt = 0; attempt <= spec->max_redraws; attempt++) {
        assign_dirichlet_once(rng, sorted, start, n_classes, K, spec->alpha, owner, scratch,
                              prop, count);
        int kmin = 0;
        for (int k = 1; k < K; k++) {
            if (count[k] < count[kmin]) {
                kmin = k;
            }
        }
        if (count[kmin] >= spec->min_per_client) {
            goto done;
        }
        if (count[kmin] > best_min) {
            best_min = count[kmin];
            best_client = kmin;
        }
    }
    rc = mpsl_err(err,
                  "partition: Dirichlet(alpha = %g) over %d clients could not give every client "
                  "at least min_per_client = %lld samples in %lld draws (the best draw left "
                  "client %d with %lld); use a larger alpha, fewer clients or a smaller "
                  "min_per_client",
                  spec->alpha, K, (long long)spec->min_per_client,
                  (long long)spec->max_redraws + 1, best_client, (long long)best_min);
done:
    free(sorted);
    free(scratch);
    free(start);
    free(count);
    free(prop);
    return rc;
}

static int assign_shards(mpsl_rng *rng, const int32_t *labels, int64_t n, int64_t n_classes,
                         int K, int32_t *owner, mpsl_error *err)
{
    int64_t S = 2 * (int64_t)K;
    int64_t *sorted = malloc((size_t)n * sizeof *sorted);
    int64_t *start = malloc((size_t)(n_classes + 1) * sizeof *start);
    int64_t *perm = malloc((size_t)S * sizeof *perm);
    int rc = MPSL_OK;
    if (!sorted || !start || !perm) {
        rc = mpsl_errs(err, MPSL_ERR_NOMEM, "partition: out of memory for %lld samples",
                       (long long)n);
        goto done;
    }
    rc = group_by_class(labels, n, n_classes, sorted, start);
    if (rc != MPSL_OK) {
        mpsl_errs(err, rc, "partition: out of memory for %lld classes", (long long)n_classes);
        goto done;
    }
    for (int64_t s = 0; s < S; s++) {
        perm[s] = s;
    }
    mpsl_rng_shuffle(rng, perm, S);
    /* Shard s is sorted[s*n/S, (s+1)*n/S); client k gets shards perm[2k] and perm[2k+1]. */
    for (int64_t j = 0; j < S; j++) {
        int64_t s = perm[j];
        int64_t a = s * n / S, b = (s + 1) * n / S;
        for (int64_t i = a; i < b; i++) {
            owner[sorted[i]] = (int32_t)(j / 2);
        }
    }
done:
    free(sorted);
    free(start);
    free(perm);
    return rc;
}

int partition_create(const partition_spec *spec, const int32_t *labels, int64_t n,
                     int64_t n_classes, partition *out, mpsl_error *err)
{
    if (!out) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "partition: no output given");
    }
    memset(out, 0, sizeof *out);
    if (!spec || (n > 0 && !labels)) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "partition: no spec or labels given");
    }
    int K = spec->n_clients;
    const char *name = scheme_name(spec->scheme);
    if (spec->scheme != PARTITION_IID && spec->scheme != PARTITION_DIRICHLET &&
        spec->scheme != PARTITION_SHARDS) {
        return mpsl_err(err, "partition: unknown scheme %d", (int)spec->scheme);
    }
    if (K < 1) {
        return mpsl_err(err, "partition: n_clients must be at least 1 (got %d)", K);
    }
    if (n < 0 || n_classes < 1) {
        return mpsl_err(err, "partition: bad split (%lld samples, %lld classes)", (long long)n,
                        (long long)n_classes);
    }
    if ((int64_t)K > n) {
        return mpsl_err(err,
                        "partition: %d clients but only %lld samples: client %lld would "
                        "receive no samples; use at most %lld clients",
                        K, (long long)n, (long long)n, (long long)n);
    }
    for (int64_t i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= n_classes) {
            return mpsl_err(err, "partition: sample %lld has label %d outside 0..%lld",
                            (long long)i, (int)labels[i], (long long)(n_classes - 1));
        }
    }
    if (spec->scheme == PARTITION_DIRICHLET) {
        if (!(spec->alpha > 0.0) || !isfinite(spec->alpha)) {
            return mpsl_err(err,
                            "partition: Dirichlet alpha must be a finite number > 0 (got %g); "
                            "small values (0.1) give skewed clients, large ones (100) "
                            "near-IID clients",
                            spec->alpha);
        }
        if (spec->min_per_client < 0 || spec->max_redraws < 0) {
            return mpsl_err(err,
                            "partition: min_per_client (%lld) and max_redraws (%lld) must "
                            "not be negative",
                            (long long)spec->min_per_client, (long long)spec->max_redraws);
        }
        if (spec->min_per_client > n / K) {
            return mpsl_err(err,
                            "partition: min_per_client = %lld is impossible: %lld samples "
                            "among %d clients give at most %lld each; use fewer clients or a "
                            "smaller min_per_client",
                            (long long)spec->min_per_client, (long long)n, K,
                            (long long)(n / K));
        }
    }

    int32_t *owner = malloc((size_t)(n > 0 ? n : 1) * sizeof *owner);
    int64_t *count = calloc((size_t)K, sizeof *count);
    int64_t **index = calloc((size_t)K, sizeof *index);
    int64_t *perm = NULL;
    int rc = MPSL_OK;
    if (!owner || !count || !index) {
        rc = mpsl_errs(err, MPSL_ERR_NOMEM, "partition: out of memory for %lld samples",
                       (long long)n);
        goto fail;
    }

    mpsl_rng rng;
    mpsl_rng_seed(&rng, spec->seed);
    switch (spec->scheme) {
    case PARTITION_IID:
        perm = malloc((size_t)n * sizeof *perm);
        if (!perm) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "partition: out of memory for %lld samples",
                           (long long)n);
            goto fail;
        }
        assign_iid(&rng, n, K, owner, perm);
        break;
    case PARTITION_DIRICHLET:
        rc = assign_dirichlet(spec, &rng, labels, n, n_classes, owner, err);
        break;
    case PARTITION_SHARDS:
        rc = assign_shards(&rng, labels, n, n_classes, K, owner, err);
        break;
    }
    if (rc != MPSL_OK) {
        goto fail;
    }

    for (int64_t i = 0; i < n; i++) {
        count[owner[i]]++;
    }
    for (int k = 0; k < K; k++) {
        if (count[k] == 0) {
            rc = mpsl_err(err,
                          "partition: client %d would receive no samples (%s partition of "
                          "%lld samples among %d clients); use fewer clients%s",
                          k, name, (long long)n, K,
                          spec->scheme == PARTITION_DIRICHLET
                              ? ", a larger alpha or min_per_client >= 1"
                          : spec->scheme == PARTITION_SHARDS ? " or the IID scheme"
                                                             : "");
            goto fail;
        }
    }
    for (int k = 0; k < K; k++) {
        index[k] = malloc((size_t)count[k] * sizeof *index[k]);
        if (!index[k]) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "partition: out of memory for client %d", k);
            goto fail;
        }
        count[k] = 0;
    }
    /* One ascending scan: every client's list comes out sorted. */
    for (int64_t i = 0; i < n; i++) {
        int32_t k = owner[i];
        index[k][count[k]++] = i;
    }
    free(owner);
    free(perm);
    out->n_clients = K;
    out->count = count;
    out->index = index;
    return MPSL_OK;

fail:
    if (index) {
        for (int k = 0; k < K; k++) {
            free(index[k]);
        }
    }
    free(index);
    free(count);
    free(owner);
    free(perm);
    return rc;
}

void partition_destroy(partition *p)
{
    if (!p) {
        return;
    }
    if (p->index) {
        for (int k = 0; k < p->n_clients; k++) {
            free(p->index[k]);
        }
    }
    free(p->index);
    free(p->count);
    memset(p, 0, sizeof *p);
}

void partition_histogram(const partition *p, int k, const int32_t *labels, int64_t n_classes,
                         int64_t *counts)
{
    if (!counts || n_classes <= 0) {
        return;
    }
    memset(counts, 0, (size_t)n_classes * sizeof *counts);
    if (!p || !labels || k < 0 || k >= p->n_clients) {
        return;
    }
    for (int64_t i = 0; i < p->count[k]; i++) {
        int32_t c = labels[p->index[k][i]];
        if (c >= 0 && c < n_classes) {
            counts[c]++;
        }
    }
}
