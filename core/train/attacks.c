/* attacks.c: the audit's label-leakage attacks (see attacks.h and docs/privacy.md). */
#include "attacks.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/rng.h"

int64_t attack_sign_hits(const float *g, int64_t n, int64_t C, const int32_t *labels)
{
    int64_t hits = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *row = g + i * C;
        int64_t best = 0;
        for (int64_t c = 1; c < C; c++) {
            if (row[c] < row[best]) {
                best = c;
            }
        }
        hits += best == labels[i];
    }
    return hits;
}

typedef struct scored {
    double score;
    uint8_t positive;
} scored;

static int by_score(const void *a, const void *b)
{
    double x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    return (x > y) - (x < y);
}

double attack_auc(const double *score, const uint8_t *positive, int64_t n)
{
    scored *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v) {
        return -1.0;
    }
    int64_t pos = 0;
    for (int64_t i = 0; i < n; i++) {
        v[i] = (scored){score[i], positive[i] ? 1 : 0};
        pos += v[i].positive;
    }
    int64_t neg = n - pos;
    if (pos == 0 || neg == 0) {
        free(v);
        return -1.0;
    }
    qsort(v, (size_t)n, sizeof *v, by_score);
    /* the positives' rank sum, tied scores sharing their mean rank */
    double rank_sum = 0.0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        int64_t tied_pos = 0;
        while (j < n && v[j].score == v[i].score) {
            tied_pos += v[j].positive;
            j++;
        }
        double mean_rank = 0.5 * (double)(i + 1 + j); /* ranks i+1 .. j */
        rank_sum += mean_rank * (double)tied_pos;
        i = j;
    }
    free(v);
    return (rank_sum - 0.5 * (double)pos * (double)(pos + 1)) / ((double)pos * (double)neg);
}

double attack_norm_auc(const double *norms, const int32_t *labels, int64_t n, int64_t C)
{
    uint8_t *is_c = malloc((size_t)(n ? n : 1));
    if (!is_c) {
        return -1.0;
    }
    double sum = 0.0;
    int counted = 0;
    for (int64_t c = 0; c < C; c++) {
        for (int64_t i = 0; i < n; i++) {
            is_c[i] = labels[i] == c;
        }
        double auc = attack_auc(norms, is_c, n);
        if (auc >= 0.0) {
            sum += auc;
            counted++;
        }
    }
    free(is_c);
    return counted ? sum / counted : -1.0;
}

int64_t attack_direction_pairs(const float *rows, int64_t n, int64_t per,
                               const int32_t *labels, double *score, uint8_t *same,
                               int64_t cap, int64_t *used)
{
    int64_t added = 0;
    for (int64_t i = 0; i < n && *used < cap; i++) {
        const float *a = rows + i * per;
        for (int64_t j = i + 1; j < n && *used < cap; j++) {
            const float *b = rows + j * per;
            double dot = 0.0, na = 0.0, nb = 0.0;
            for (int64_t t = 0; t < per; t++) {
                dot += (double)a[t] * (double)b[t];
                na += (double)a[t] * (double)a[t];
                nb += (double)b[t] * (double)b[t];
            }
            score[*used] = na > 0.0 && nb > 0.0 ? dot / sqrt(na * nb) : 0.0;
            same[*used] = labels[i] == labels[j];
            (*used)++;
            added++;
        }
    }
    return added;
}

/* ---------------------------------------------------------------- clustering */

static double sq_dist(const float *a, const float *b, int64_t dim)
{
    double d = 0.0;
    for (int64_t t = 0; t < dim; t++) {
        double e = (double)a[t] - (double)b[t];
        d += e * e;
    }
    return d;
}

int64_t attack_best_assignment(const int64_t *w, int k, int *assign)
{
    /* Hungarian method (Kuhn-Munkres, potentials form) minimising cost = max - w. */
    int64_t big = 0;
    for (int i = 0; i < k * k; i++) {
        big = w[i] > big ? w[i] : big;
    }
    int n = k;
    double *u = calloc((size_t)n + 1, sizeof *u), *v = calloc((size_t)n + 1, sizeof *v);
    double *minv = calloc((size_t)n + 1, sizeof *minv);
    int *p = calloc((size_t)n + 1, sizeof *p), *way = calloc((size_t)n + 1, sizeof *way);
    char *used = calloc((size_t)n + 1, 1);
    if (!u || !v || !minv || !p || !way || !used) {
        free(u), free(v), free(minv), free(p), free(way), free(used);
        return -1;
    }
    for (int i = 1; i <= n; i++) {
        p[0] = i;
        int j0 = 0;
        for (int j = 0; j <= n; j++) {
            minv[j] = INFINITY;
            used[j] = 0;
        }
        do {
            used[j0] = 1;
            int i0 = p[j0], j1 = 0;
            double delta = INFINITY;
            for (int j = 1; j <= n; j++) {
                if (used[j]) {
                    continue;
                }
                double cost = (double)(big - w[(i0 - 1) * k + (j - 1)]);
                double cur = cost - u[i0] - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if (minv[j] < delta) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (int j = 0; j <= n; j++) {
                if (used[j]) {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
        } while (p[j0] != 0);
        do {
            int j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0);
    }
    int64_t total = 0;
    for (int j = 1; j <= n; j++) {
        assign[p[j] - 1] = j - 1;
        total += w[(p[j] - 1) * k + (j - 1)];
    }
    free(u), free(v), free(minv), free(p), free(way), free(used);
    return total;
}

double attack_cluster_acc(const float *x, int64_t n, int64_t dim, const int32_t *labels,
                          int64_t C, uint64_t seed)
{
    if (n < 1 || C < 1) {
        return -1.0;
    }
    int k = (int)C;
    float *centre = malloc((size_t)k * (size_t)dim * sizeof *centre);
    double *sum = malloc((size_t)k * (size_t)dim * sizeof *sum);
    double *nearest = malloc((size_t)n * sizeof *nearest);
    int *of = malloc((size_t)n * sizeof *of), *assign = malloc((size_t)k * sizeof *assign);
    int64_t *count = malloc((size_t)k * sizeof *count);
    int64_t *w = calloc((size_t)k * (size_t)k, sizeof *w);
    double acc = -1.0;
    if (!centre || !sum || !nearest || !of || !assign || !count || !w) {
        goto done;
    }
    /* k-means++ seeding: the first centre uniformly, each next one with probability
     * proportional to the squared distance from the nearest centre so far */
    mpsl_rng rng;
    mpsl_rng_seed(&rng, seed);
    memcpy(centre, x + mpsl_rng_below(&rng, n) * dim, (size_t)dim * sizeof *centre);
    for (int64_t i = 0; i < n; i++) {
        nearest[i] = sq_dist(x + i * dim, centre, dim);
    }
    for (int c = 1; c < k; c++) {
        double total = 0.0;
        for (int64_t i = 0; i < n; i++) {
            total += nearest[i];
        }
        int64_t pick = 0;
        if (total > 0.0) {
            double r = mpsl_rng_uniform(&rng) * total;
            while (pick < n - 1 && (r -= nearest[pick]) >= 0.0) {
                pick++;
            }
        } else {
            pick = mpsl_rng_below(&rng, n);
        }
        memcpy(centre + (size_t)c * dim, x + pick * dim, (size_t)dim * sizeof *centre);
        for (int64_t i = 0; i < n; i++) {
            double d = sq_dist(x + i * dim, centre + (size_t)c * dim, dim);
            nearest[i] = d < nearest[i] ? d : nearest[i];
        }
    }
    for (int it = 0; it < 50; it++) {
        int changed = 0;
        for (int64_t i = 0; i < n; i++) {
            int best = 0;
            double bd = INFINITY;
            for (int c = 0; c < k; c++) {
                double d = sq_dist(x + i * dim, centre + (size_t)c * dim, dim);
                if (d < bd) {
                    bd = d;
                    best = c;
                }
            }
            changed |= it == 0 || of[i] != best;
            of[i] = best;
        }
        if (!changed) {
            break;
        }
        memset(sum, 0, (size_t)k * (size_t)dim * sizeof *sum);
        memset(count, 0, (size_t)k * sizeof *count);
        for (int64_t i = 0; i < n; i++) {
            count[of[i]]++;
            for (int64_t t = 0; t < dim; t++) {
                sum[(size_t)of[i] * dim + t] += x[i * dim + t];
            }
        }
        for (int c = 0; c < k; c++) {
            for (int64_t t = 0; count[c] && t < dim; t++) { /* an empty cluster keeps its centre */
                centre[(size_t)c * dim + t] = (float)(sum[(size_t)c * dim + t] / count[c]);
            }
        }
    }
    for (int64_t i = 0; i < n; i++) {
        if (labels[i] >= 0 && labels[i] < C) {
            w[(size_t)of[i] * k + labels[i]]++;
        }
    }
    int64_t matched = attack_best_assignment(w, k, assign);
    acc = matched < 0 ? -1.0 : (double)matched / (double)n;
done:
    free(centre), free(sum), free(nearest), free(of), free(assign), free(count), free(w);
    return acc;
}

/* ---------------------------------------------------------------- label counts */

void attack_label_shares(const float *delta, int64_t C, double *est)
{
    double lo = delta[0], total = 0.0;
    for (int64_t c = 1; c < C; c++) {
        lo = delta[c] < lo ? delta[c] : lo;
    }
    for (int64_t c = 0; c < C; c++) {
        est[c] = (double)delta[c] - lo;
        total += est[c];
    }
    for (int64_t c = 0; c < C; c++) {
        est[c] = total > 0.0 ? est[c] / total : 1.0 / (double)C;
    }
}

double attack_tv_distance(const double *p, const double *q, int64_t C)
{
    double d = 0.0;
    for (int64_t c = 0; c < C; c++) {
        d += fabs(p[c] - q[c]);
    }
    return 0.5 * d;
}
