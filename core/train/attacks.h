/* attacks.h: the label-leakage attacks of the audit (audit.c), as plain functions over what
 * the server received, so each can be checked against a hand computation
 * (tests/core/test_attacks.c). docs/privacy.md describes each and its reference. */
#ifndef MPSL_ATTACKS_H
#define MPSL_ATTACKS_H

#include <stdint.h>

/* Sign attack on logit gradients (Li et al., ICLR 2022): for softmax cross-entropy
 * d(loss)/d(logits) = (p - y) / b, whose only negative entry is the true class; the guess is
 * each row's smallest entry. g (n, C); returns how many rows' guesses equal labels. */
int64_t attack_sign_hits(const float *g, int64_t n, int64_t C, const int32_t *labels);

/* Area under the ROC curve of score for telling positive (1) from negative (0) items:
 * P(score of a random positive > that of a random negative), ties counting one half
 * (Mann-Whitney). -1 when either group is empty. Sorts a copy; O(n log n). */
double attack_auc(const double *score, const uint8_t *positive, int64_t n);

/* Norm attack (Li et al.): the gradient row's L2 norm as the score that a sample belongs to
 * class c, for each class present with both groups non-empty: the mean one-vs-rest AUC.
 * norms (n), labels (n) in [0, C). -1 when no class qualifies. */
double attack_norm_auc(const double *norms, const int32_t *labels, int64_t n, int64_t C);

/* Direction attack (Li et al.): within one message, the cosine similarity of two samples'
 * gradient rows as the score that they share their class. Appends the pairs of rows (n, per)
 * to score/same (capacity cap, *used so far) and returns how many it appended. */
int64_t attack_direction_pairs(const float *rows, int64_t n, int64_t per,
                               const int32_t *labels, double *score, uint8_t *same,
                               int64_t cap, int64_t *used);

/* Clustering attack (Liu et al., 2022): k-means (k = C, k-means++ seeding from `seed`, at
 * most 50 Lloyd iterations) on the rows x (n, dim), each cluster then named by the class
 * assignment that maximises the matches (Hungarian method); returns the accuracy of those
 * names. -1 for n < 1. */
double attack_cluster_acc(const float *x, int64_t n, int64_t dim, const int32_t *labels,
                          int64_t C, uint64_t seed);

/* The one-to-one assignment of k rows to k columns that maximises the summed w (k, k)
 * (Hungarian method, O(k^3)): assign[row] = column. Returns the maximum. */
int64_t attack_best_assignment(const int64_t *w, int k, int *assign);

/* Label counts from the head's bias update of one FedAvg/FedProx round: est (C) the
 * estimated class shares, proportional to delta_c - min_j delta_j (a class the client holds
 * many of pulls its bias up; the one it holds least, or none of, sinks furthest); uniform when
 * all deltas are equal. */
void attack_label_shares(const float *delta, int64_t C, double *est);

/* Total variation distance between two distributions over C classes: half the L1 distance,
 * in [0, 1]. */
double attack_tv_distance(const double *p, const double *q, int64_t C);

#endif
