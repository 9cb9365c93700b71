/* stats.h: summary statistics of repeated runs (seeds): mean, sample standard deviation and a
 * 95% confidence interval for the mean from Student's t distribution. docs/queries.md
 * ("Statistics") states the formulas. */
#ifndef MPSL_STATS_H
#define MPSL_STATS_H

#include <stddef.h>

typedef struct stats_summary {
    size_t n;           /* finite values summarised (NaN and infinities are skipped) */
    double mean;        /* NaN when n == 0 */
    double sd;          /* sample standard deviation (n - 1 in the denominator); NaN when n < 2 */
    double ci95;        /* half-width of the 95% interval: t(0.975, n-1) * sd / sqrt(n); NaN when n < 2 */
    double min, max;
} stats_summary;

/* Summarise values[0..n). */
stats_summary stats_summarise(const double *values, size_t n);

/* The 0.975 quantile of Student's t distribution with df degrees of freedom (df >= 1): the
 * multiplier of a two-sided 95% interval. 12.706 for df = 1, 1.960 as df grows. */
double stats_t975(double df);

#endif
