/* grad_check.h: helpers shared by the kernel and module tests: random fills, a tolerant
 * comparison of float arrays and central finite differences of a scalar loss. */
#ifndef MPSL_TEST_GRAD_CHECK_H
#define MPSL_TEST_GRAD_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "util/util.h"

/* n floats (at least one) from malloc, uninitialised; aborts when there is no memory. */
static inline float *test_floats(int64_t n)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!p) {
        abort();
    }
    return p;
}

static inline void fill_uniform(mpsl_rng *r, float *x, int64_t n, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++) {
        x[i] = lo + (hi - lo) * (float)mpsl_rng_uniform(r);
    }
}

/* Values in [-hi,-lo] U [lo,hi]: away from ReLU's kink so finite differences stay smooth. */
static inline void fill_away_from_zero(mpsl_rng *r, float *x, int64_t n, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++) {
        float v = lo + (hi - lo) * (float)mpsl_rng_uniform(r);
        x[i] = mpsl_rng_uniform(r) < 0.5 ? -v : v;
    }
}

/* a and b agree when |a-b| <= rtol * max(|a|,|b|) + atol. Returns 1 when they do. */
static inline int close_enough(double a, double b, double rtol, double atol)
{
    double m = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return fabs(a - b) <= rtol * m + atol;
}

/* Compare n floats; one CHECK per array, printing the first mismatch. */
static inline int check_arrays_(const char *file, int line, const char *what, const float *got,
                                const float *want, int64_t n, double rtol, double atol)
{
    check_count++;
    for (int64_t i = 0; i < n; i++) {
        if (!close_enough(got[i], want[i], rtol, atol) || isnan(got[i]) != isnan(want[i])) {
            check_failures++;
            fprintf(stderr, "%s:%d: %s[%lld] = %.9g, expected %.9g\n", file, line, what,
                    (long long)i, (double)got[i], (double)want[i]);
            return 0;
        }
    }
    return 1;
}
#define CHECK_ARRAYS(what, got, want, n, rtol, atol) \
    check_arrays_(__FILE__, __LINE__, what, got, want, n, rtol, atol)

/* Central differences of loss() with respect to x[0..n) (perturbed in place and restored),
 * compared with the analytic gradient g. Checks at most max_probe entries spread over x. */
typedef double (*loss_fn)(void *ctx);
static inline int check_fd_(const char *file, int line, const char *what, loss_fn loss,
                            void *ctx, float *x, const float *g, int64_t n, float eps,
                            double rtol, double atol, int64_t max_probe)
{
    check_count++;
    int64_t step = n > max_probe ? (n + max_probe - 1) / max_probe : 1;
    for (int64_t i = 0; i < n; i += step) {
        float keep = x[i];
        x[i] = keep + eps;
        double lp = loss(ctx);
        x[i] = keep - eps;
        double lm = loss(ctx);
        x[i] = keep;
        // the step actually taken in float
        double h = (double)(keep + eps) - (double)(keep - eps);
        double fd = (lp - lm) / h;
        if (!close_enough(g[i], fd, rtol, atol)) {
            check_failures++;
            fprintf(stderr, "%s:%d: d loss / d %s[%lld] = %.7g, finite difference %.7g\n",
                    file, line, what, (long long)i, (double)g[i], fd);
            return 0;
        }
    }
    return 1;
}
#define CHECK_FD(what, loss, ctx, x, g, n, eps, rtol, atol) \
    check_fd_(__FILE__, __LINE__, what, loss, ctx, x, g, n, eps, rtol, atol, 1000000)

/* For piecewise-linear losses (ReLU networks, linear layers with a loss linear in the
 * output): one-sided differences are exact away from kinks, and when a kink lies within
 * (x-eps, x+eps) the analytic gradient at x still equals the one-sided difference on the side
 * without it. So g[i] passes when it matches the central, forward or backward difference. A
 * wrong gradient matches none of the three. */
static inline int check_fd_kinks_(const char *file, int line, const char *what, loss_fn loss,
                                  void *ctx, float *x, const float *g, int64_t n, float eps,
                                  double rtol, double atol, int64_t max_probe)
{
    check_count++;
    int64_t step = n > max_probe ? (n + max_probe - 1) / max_probe : 1;
    for (int64_t i = 0; i < n; i += step) {
        float keep = x[i];
        double l0 = loss(ctx);
        x[i] = keep + eps;
        double lp = loss(ctx);
        double hp = (double)(keep + eps) - (double)keep;
        x[i] = keep - eps;
        double lm = loss(ctx);
        double hm = (double)keep - (double)(keep - eps);
        x[i] = keep;
        double central = (lp - lm) / (hp + hm), fwd = (lp - l0) / hp, bwd = (l0 - lm) / hm;
        if (!close_enough(g[i], central, rtol, atol) && !close_enough(g[i], fwd, rtol, atol) &&
            !close_enough(g[i], bwd, rtol, atol)) {
            check_failures++;
            fprintf(stderr, "%s:%d: d loss / d %s[%lld] = %.7g, finite differences %.7g "
                    "(central), %.7g (forward), %.7g (backward)\n", file, line, what,
                    (long long)i, (double)g[i], central, fwd, bwd);
            return 0;
        }
    }
    return 1;
}
#define CHECK_FD_KINKS(what, loss, ctx, x, g, n, eps, rtol, atol, max_probe) \
    check_fd_kinks_(__FILE__, __LINE__, what, loss, ctx, x, g, n, eps, rtol, atol, max_probe)

#endif
