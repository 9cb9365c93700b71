/* check.h: the tiny assertion kit every C test uses. A failed CHECK prints file:line and the
 * expression, counts the failure, and the test's main() returns check_exit() so that any
 * failure makes the test (and `meson test`) exit non-zero. */
#ifndef MPSL_TEST_CHECK_H
#define MPSL_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        check_count++;                                                                   \
        if (!(cond)) {                                                                   \
            check_failures++;                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);     \
        }                                                                                \
    } while (0)

/* Checks that haystack contains needle, printing both when it does not. */
#define CHECK_CONTAINS(haystack, needle)                                                 \
    do {                                                                                 \
        check_count++;                                                                   \
        const char *h_ = (haystack), *n_ = (needle);                                     \
        if (!h_ || !strstr(h_, n_)) {                                                    \
            check_failures++;                                                            \
            fprintf(stderr, "%s:%d: expected \"%s\" in \"%s\"\n", __FILE__, __LINE__, n_,  \
                    h_ ? h_ : "(null)");                                                 \
        }                                                                                \
    } while (0)

/* |a - b| <= tol * max(1, |b|) */
#define CHECK_CLOSE(a, b, tol)                                                           \
    do {                                                                                 \
        check_count++;                                                                   \
        double a_ = (a), b_ = (b);                                                       \
        double s_ = fabs(b_) > 1.0 ? fabs(b_) : 1.0;                                     \
        if (!(fabs(a_ - b_) <= (tol) * s_)) {                                            \
            check_failures++;                                                            \
            fprintf(stderr, "%s:%d: %s = %.9g, expected %.9g (tol %g)\n", __FILE__,       \
                    __LINE__, #a, a_, b_, (double)(tol));                                \
        }                                                                                \
    } while (0)

static inline int check_exit(void)
{
    fprintf(stderr, "%d checks, %d failed\n", check_count, check_failures);
    return check_failures ? 1 : 0;
}

#endif
