/* test_partition.c: IID, Dirichlet and shard partitions: reproducible from the seed, every
 * sample given to exactly one client, the skew Dirichlet's alpha promises, and each refusal. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "train/partition.h"

#define NC 10

/* Labels of a synthetic balanced split: sample i has class (i * 7) % NC, so that classes
 * interleave and a stable sort by label is not the identity. */
static int32_t *make_labels(int64_t n)
{
    int32_t *l = malloc((size_t)n * sizeof *l);
    for (int64_t i = 0; i < n; i++) {
        l[i] = (int32_t)((i * 7) % NC);
    }
    return l;
}

static partition_spec spec_of(partition_scheme scheme, int n_clients, uint64_t seed)
{
    partition_spec s = {scheme, n_clients, 0.5, 1, 100, seed};
    return s;
}

/* Every index 0..n-1 appears exactly once over all clients, and each list is ascending. */
static int covers_exactly_once(const partition *p, int64_t n)
{
    char *seen = calloc((size_t)n, 1);
    int ok = 1;
    int64_t total = 0;
    for (int k = 0; k < p->n_clients; k++) {
        for (int64_t i = 0; i < p->count[k]; i++) {
            int64_t x = p->index[k][i];
            if (x < 0 || x >= n || seen[x] || (i > 0 && p->index[k][i - 1] >= x)) {
                ok = 0;
            } else {
                seen[x] = 1;
            }
        }
        total += p->count[k];
    }
    free(seen);
    return ok && total == n;
}

static int same_partition(const partition *a, const partition *b)
{
    if (a->n_clients != b->n_clients) {
        return 0;
    }
    for (int k = 0; k < a->n_clients; k++) {
        if (a->count[k] != b->count[k] ||
            memcmp(a->index[k], b->index[k], (size_t)a->count[k] * sizeof(int64_t)) != 0) {
            return 0;
        }
    }
    return 1;
}

/* Mean over clients of the largest class share: 1/NC for perfectly mixed clients, 1 when
 * each client holds a single class. */
static double mean_top_share(const partition *p, const int32_t *labels)
{
    double sum = 0.0;
    for (int k = 0; k < p->n_clients; k++) {
        int64_t h[NC], top = 0;
        partition_histogram(p, k, labels, NC, h);
        for (int c = 0; c < NC; c++) {
            top = h[c] > top ? h[c] : top;
        }
        sum += (double)top / (double)p->count[k];
    }
    return sum / p->n_clients;
}

static void test_reproducible(void)
{
    int64_t n = 2000;
    int32_t *labels = make_labels(n);
    const partition_scheme schemes[] = {PARTITION_IID, PARTITION_DIRICHLET, PARTITION_SHARDS};
    for (size_t s = 0; s < MPSL_COUNT(schemes); s++) {
        partition a, b, c;
        mpsl_error err = {{0}};
        partition_spec sp = spec_of(schemes[s], 8, 42);
        CHECK(partition_create(&sp, labels, n, NC, &a, &err) == MPSL_OK);
        CHECK(partition_create(&sp, labels, n, NC, &b, &err) == MPSL_OK);
        sp.seed = 43;
        CHECK(partition_create(&sp, labels, n, NC, &c, &err) == MPSL_OK);
        CHECK(same_partition(&a, &b));
        CHECK(!same_partition(&a, &c));
        CHECK(covers_exactly_once(&a, n));
        CHECK(covers_exactly_once(&c, n));
        partition_destroy(&a);
        partition_destroy(&b);
        partition_destroy(&c);
        CHECK(a.index == NULL && a.count == NULL && a.n_clients == 0);
    }
    free(labels);
}

static void test_iid(void)
{
    int64_t n = 1003;
    int32_t *labels = make_labels(n);
    partition p;
    mpsl_error err = {{0}};
    partition_spec sp = spec_of(PARTITION_IID, 7, 1);
    CHECK(partition_create(&sp, labels, n, NC, &p, &err) == MPSL_OK);
    CHECK(p.n_clients == 7);
    for (int k = 0; k < 7; k++) {
        CHECK(p.count[k] == 143 || p.count[k] == 144); /* 1003 = 7 * 143 + 2 */
    }
    CHECK(covers_exactly_once(&p, n));
    /* A shuffle, not a deal of consecutive blocks. */
    CHECK(p.index[0][p.count[0] - 1] - p.index[0][0] > 500);
    CHECK(mean_top_share(&p, labels) < 0.25);
    partition_destroy(&p);

    /* As many clients as samples: one each. */
    sp.n_clients = (int)n;
    CHECK(partition_create(&sp, labels, n, NC, &p, &err) == MPSL_OK);
    for (int k = 0; k < p.n_clients; k++) {
        CHECK(p.count[k] == 1);
    }
    CHECK(covers_exactly_once(&p, n));
    partition_destroy(&p);

    /* One client gets everything, in order. */
    sp.n_clients = 1;
    CHECK(partition_create(&sp, labels, n, NC, &p, &err) == MPSL_OK);
    CHECK(p.count[0] == n && p.index[0][0] == 0 && p.index[0][n - 1] == n - 1);
    partition_destroy(&p);
    free(labels);
}

static void test_dirichlet(void)
{
    int64_t n = 10000;
    int32_t *labels = make_labels(n);
    partition p;
    mpsl_error err = {{0}};

    partition_spec sp = spec_of(PARTITION_DIRICHLET, 10, 7);
    sp.alpha = 0.1;
    sp.min_per_client = 50;
    sp.max_redraws = 1000;
    CHECK(partition_create(&sp, labels, n, NC, &p, &err) == MPSL_OK);
    for (int k = 0; k < p.n_clients; k++) {
        CHECK(p.count[k] >= 50);
    }
    CHECK(covers_exactly_once(&p, n));
    double skewed = mean_top_share(&p, labels);
    partition_destroy(&p);

    sp.alpha = 1e5;
    sp.min_per_client = 1;
    CHECK(partition_create(&sp, labels, n, NC, &p, &err) == MPSL_OK);
    CHECK(covers_exactly_once(&p, n));
    double mixed = mean_top_share(&p, labels);
    /* alpha 1e5: every client holds about 100 of each class. */
    for (int k = 0; k < p.n_clients; k++) {
        int64_t h[NC];
        partition_histogram(&p, k, labels, NC, h);
        for (int c = 0; c < NC; c++) {
            CHECK(h[c] >= 90 && h[c] <= 110);
        }
    }
    partition_destroy(&p);
    fprintf(stderr, "dirichlet mean top-class share: alpha 0.1 %.3f, alpha 1e5 %.3f\n", skewed,
            mixed);
    CHECK(skewed > 0.4);
    CHECK(mixed < 0.12);
    free(labels);
}

static void test_shards(void)
{
    int64_t n = 1000; /* 100 per class, 20 shards of 50 */
    int32_t *labels = make_labels(n);
    partition p;
    mpsl_error err = {{0}};
    partition_spec sp = spec_of(PARTITION_SHARDS, 10, 3);
    CHECK(partition_create(&sp, labels, n, NC, &p, &err) == MPSL_OK);
    CHECK(covers_exactly_once(&p, n));
    int two_class_clients = 0;
    for (int k = 0; k < p.n_clients; k++) {
        CHECK(p.count[k] == 100);
        int64_t h[NC], total = 0;
        int classes = 0;
        partition_histogram(&p, k, labels, NC, h);
        for (int c = 0; c < NC; c++) {
            total += h[c];
            classes += h[c] > 0;
            /* A shard lies inside one class, so class counts are multiples of 50. */
            CHECK(h[c] % 50 == 0);
        }
        CHECK(total == p.count[k]);
        CHECK(classes >= 1 && classes <= 2);
        two_class_clients += classes == 2;
    }
    CHECK(two_class_clients > 0);
    partition_destroy(&p);
    free(labels);
}

static void test_histogram(void)
{
    const int32_t labels[] = {0, 1, 1, 2, 2, 2};
    partition p;
    mpsl_error err = {{0}};
    partition_spec sp = spec_of(PARTITION_IID, 1, 9);
    CHECK(partition_create(&sp, labels, 6, 3, &p, &err) == MPSL_OK);
    int64_t h[3] = {-1, -1, -1};
    partition_histogram(&p, 0, labels, 3, h);
    CHECK(h[0] == 1 && h[1] == 2 && h[2] == 3);
    /* A client that does not exist has an empty histogram. */
    partition_histogram(&p, 5, labels, 3, h);
    CHECK(h[0] == 0 && h[1] == 0 && h[2] == 0);
    partition_destroy(&p);
}

static void test_refusals(void)
{
    int64_t n = 200;
    int32_t *labels = make_labels(n);
    partition p;
    mpsl_error err = {{0}};
    partition_spec sp;

    sp = spec_of(PARTITION_IID, 0, 1);
    CHECK(partition_create(&sp, labels, n, NC, &p, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "n_clients must be at least 1 (got 0)");
    CHECK(p.index == NULL && p.count == NULL);
    partition_destroy(&p); /* harmless after a refusal */

    sp = spec_of(PARTITION_IID, 201, 1);
    CHECK(partition_create(&sp, labels, n, NC, &p, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "201 clients but only 200 samples");
    CHECK_CONTAINS(err.msg, "client 200 would receive no samples");
    CHECK_CONTAINS(err.msg, "use at most 200 clients");

    const double bad_alpha[] = {0.0, -1.0, NAN, INFINITY};
    for (size_t i = 0; i < MPSL_COUNT(bad_alpha); i++) {
        sp = spec_of(PARTITION_DIRICHLET, 4, 1);
        sp.alpha = bad_alpha[i];
        err.msg[0] = '\0';
        CHECK(partition_create(&sp, labels, n, NC, &p, &err) == MPSL_ERR_INVALID);
        CHECK_CONTAINS(err.msg, "alpha must be a finite number > 0");
    }

    /* alpha 0.01: each class goes almost whole to one client; 40 clients cannot all get 3. */
    sp = spec_of(PARTITION_DIRICHLET, 40, 1);
    sp.alpha = 0.01;
    sp.min_per_client = 3;
    sp.max_redraws = 20;
    CHECK(partition_create(&sp, labels, n, NC, &p, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "at least min_per_client = 3 samples in 21 draws");
    CHECK_CONTAINS(err.msg, "the best draw left client");
    CHECK_CONTAINS(err.msg, "use a larger alpha, fewer clients");

    /* min_per_client 0 accepts the first draw, which leaves clients empty: refused. */
    sp.min_per_client = 0;
    CHECK(partition_create(&sp, labels, n, NC, &p, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "would receive no samples (Dirichlet partition of 200 samples "
                            "among 40 clients)");
    CHECK_CONTAINS(err.msg, "a larger alpha");

    sp = spec_of(PARTITION_DIRICHLET, 10, 1);
    sp.min_per_client = 21;
    CHECK(partition_create(&sp, labels, n, NC, &p, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "min_per_client = 21 is impossible");

    sp.min_per_client = -1;
    CHECK(partition_create(&sp, labels, n, NC, &p, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "must not be negative");

    /* Shards with as many clients as samples: half the 2n shards are empty, and some seed
     * gives one client two empty ones. */
    int refused = 0;
    for (uint64_t seed = 0; seed < 50 && !refused; seed++) {
        sp = spec_of(PARTITION_SHARDS, 20, seed);
        if (partition_create(&sp, labels, 20, NC, &p, &err) == MPSL_OK) {
            partition_destroy(&p);
        } else {
            refused = 1;
            CHECK_CONTAINS(err.msg, "would receive no samples (shards partition");
            CHECK_CONTAINS(err.msg, "or the IID scheme");
        }
    }
    CHECK(refused);

    labels[17] = NC;
    sp = spec_of(PARTITION_IID, 4, 1);
    CHECK(partition_create(&sp, labels, n, NC, &p, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "sample 17 has label 10 outside 0..9");
    labels[17] = -3;
    CHECK(partition_create(&sp, labels, n, NC, &p, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "sample 17 has label -3");
    free(labels);
}

int main(void)
{
    test_reproducible();
    test_iid();
    test_dirichlet();
    test_shards();
    test_histogram();
    test_refusals();
    return check_exit();
}
