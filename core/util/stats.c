/* stats.c: mean, sample standard deviation and Student-t 95% intervals (stats.h). */
#include "stats.h"

#include <math.h>

/* Student's t density with df degrees of freedom. */
static double t_density(double x, double df)
{
    double log_c = lgamma((df + 1) / 2) - lgamma(df / 2) - 0.5 * log(df * M_PI);
    return exp(log_c - (df + 1) / 2 * log1p(x * x / df));
}

/* P(0 <= T <= x) by composite Simpson's rule: the density is smooth and x is at most ~13 for
 * the quantiles asked here, so 4000 panels give far more digits than a report prints. */
static double t_mass_from_zero(double x, double df)
{
    const int panels = 4000;
    double h = x / panels, sum = t_density(0, df) + t_density(x, df);
    for (int i = 1; i < panels; i++) {
        sum += (i % 2 ? 4 : 2) * t_density(i * h, df);
    }
    return sum * h / 3;
}

double stats_t975(double df)
{
    if (!(df >= 1)) {
        return NAN;
    }
    /* Each quantile costs ~4 ms of integration and reports ask for the same few degrees of
     * freedom for every cell: remember whole ones. (The CLI is single-threaded.) */
    static double known[256];
    int whole = df == floor(df) && df < 256;
    if (whole && known[(int)df] > 0) {
        return known[(int)df];
    }
    /* P(0 <= T <= q) = 0.475 (the density is symmetric); the mass grows with x: bisect. */
    double lo = 0, hi = 20;
    for (int i = 0; i < 60; i++) {
        double mid = 0.5 * (lo + hi);
        if (t_mass_from_zero(mid, df) < 0.475) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    double q = 0.5 * (lo + hi);
    if (whole) {
        known[(int)df] = q;
    }
    return q;
}

stats_summary stats_summarise(const double *values, size_t n)
{
    stats_summary s = {0, NAN, NAN, NAN, NAN, NAN};
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (isfinite(values[i])) {
            s.min = s.n == 0 || values[i] < s.min ? values[i] : s.min;
            s.max = s.n == 0 || values[i] > s.max ? values[i] : s.max;
            sum += values[i];
            s.n++;
        }
    }
    if (s.n == 0) {
        return s;
    }
    s.mean = sum / (double)s.n;
    if (s.n < 2) {
        return s;
    }
    /* two passes: the squared deviations from the mean, not E[x^2] - E[x]^2, which loses
     * every digit when the spread is small next to the mean (accuracies of 0.91 +- 0.001) */
    double ss = 0;
    for (size_t i = 0; i < n; i++) {
        if (isfinite(values[i])) {
            ss += (values[i] - s.mean) * (values[i] - s.mean);
        }
    }
    s.sd = sqrt(ss / (double)(s.n - 1));
    s.ci95 = stats_t975((double)(s.n - 1)) * s.sd / sqrt((double)s.n);
    return s;
}
