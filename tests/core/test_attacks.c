/* test_attacks.c: the leakage audit's attacks (core/train/attacks.c) on small cases worked
 * out by hand. */
#include <stdlib.h>

#include "check.h"
#include "train/attacks.h"

static void sign(void)
{
    /* row 0: the one negative entry is its label 1; row 1: the smallest is class 0, its
     * label 2 (a gradient no cross-entropy gives: the attack misses it) */
    const float g[] = {0.2f, -0.5f, 0.3f, -0.1f, 0.05f, 0.05f};
    const int32_t labels[] = {1, 2};
    CHECK(attack_sign_hits(g, 2, 3, labels) == 1);
}

static void auc(void)
{
    /* positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ordered */
    const double s[] = {0.1, 0.4, 0.35, 0.8};
    const uint8_t pos[] = {0, 0, 1, 1};
    CHECK_CLOSE(attack_auc(s, pos, 4), 0.75, 1e-12);
    const double tie[] = {1.0, 1.0};
    const uint8_t one[] = {1, 0};
    CHECK_CLOSE(attack_auc(tie, one, 2), 0.5, 1e-12);   /* a tie counts one half */
    const uint8_t none[] = {0, 0};
    CHECK(attack_auc(tie, none, 2) < 0.0);              /* no positives: no figure */
}

static void norm(void)
{
    /* class 0 has the small norms (AUC 0), class 1 the large ones (AUC 1): mean 0.5; a
     * class that never occurs (2) is left out */
    const double norms[] = {1, 2, 3, 4};
    const int32_t labels[] = {0, 0, 1, 1};
    CHECK_CLOSE(attack_norm_auc(norms, labels, 4, 3), 0.5, 1e-12);
    const double mixed[] = {1, 4, 2, 3};  /* class 0: {1,4} vs {2,3}: 2 of 4 pairs */
    CHECK_CLOSE(attack_norm_auc(mixed, labels, 4, 2), 0.5, 1e-12);
    const double apart[] = {1, 2, 4, 3};  /* class 0: {1,2} below {4,3}: AUC 0 and 1 */
    const int32_t l2[] = {1, 1, 0, 0};
    CHECK_CLOSE(attack_norm_auc(apart, l2, 4, 2), 0.5, 1e-12);
}

static void direction(void)
{
    /* a = (1,0), b = (2,0), c = (0,1): (a,b) cosine 1, same class; (a,c), (b,c) cosine 0,
     * different classes: AUC 1 */
    const float rows[] = {1, 0, 2, 0, 0, 1};
    const int32_t labels[] = {0, 0, 1};
    double score[4];
    uint8_t same[4];
    int64_t used = 0;
    CHECK(attack_direction_pairs(rows, 3, 2, labels, score, same, 4, &used) == 3);
    CHECK(used == 3);
    CHECK_CLOSE(score[0], 1.0, 1e-12);
    CHECK_CLOSE(score[1], 0.0, 1e-12);
    CHECK(same[0] == 1 && same[1] == 0 && same[2] == 0);
    CHECK_CLOSE(attack_auc(score, same, used), 1.0, 1e-12);
    used = 0;
    CHECK(attack_direction_pairs(rows, 3, 2, labels, score, same, 2, &used) == 2); /* capped */
}

static void assignment(void)
{
    const int64_t w2[] = {1, 5, 4, 1};
    int a[3];
    CHECK(attack_best_assignment(w2, 2, a) == 9);
    CHECK(a[0] == 1 && a[1] == 0);
    /* of the 6 permutations the best is r0->c1, r1->c2, r2->c0: 1 + 7 + 6 = 14 */
    const int64_t w3[] = {3, 1, 0, 0, 2, 7, 6, 0, 1};
    CHECK(attack_best_assignment(w3, 3, a) == 14);
    CHECK(a[0] == 1 && a[1] == 2 && a[2] == 0);
}

static void cluster(void)
{
    /* two far-apart groups of three; one holds labels 1,1,1, the other 0,0,1: the clusters
     * are the groups, named 1 and 0, so 5 of 6 are right */
    const float x[] = {0, 0, 0, 0.1f, 0.1f, 0, 10, 10, 10, 10.1f, 10.1f, 10};
    const int32_t labels[] = {1, 1, 1, 0, 0, 1};
    for (uint64_t seed = 1; seed <= 5; seed++) {
        CHECK_CLOSE(attack_cluster_acc(x, 6, 2, labels, 2, seed), 5.0 / 6.0, 1e-12);
    }
}

static void label_shares(void)
{
    /* deltas minus their minimum: 0.4, 0, 0.2 -> shares 2/3, 0, 1/3 */
    const float delta[] = {0.3f, -0.1f, 0.1f};
    double est[3];
    attack_label_shares(delta, 3, est);
    CHECK_CLOSE(est[0], 2.0 / 3.0, 1e-6);
    CHECK_CLOSE(est[1], 0.0, 1e-12);
    CHECK_CLOSE(est[2], 1.0 / 3.0, 1e-6);
    const float flat[] = {0.5f, 0.5f};
    attack_label_shares(flat, 2, est);
    CHECK_CLOSE(est[0], 0.5, 1e-12);
    const double p[] = {0.5, 0.5, 0}, q[] = {0, 0.5, 0.5};
    CHECK_CLOSE(attack_tv_distance(p, q, 3), 0.5, 1e-12);
    CHECK_CLOSE(attack_tv_distance(p, p, 3), 0.0, 1e-12);
}

int main(void)
{
    sign();
    auc();
    norm();
    direction();
    assignment();
    cluster();
    label_shares();
    return check_exit();
}
