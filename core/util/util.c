/* util.c: error messages, logging, aligned allocation, clocks and the seeded generator. */
#include "util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

static int verr(mpsl_error *err, const char *fmt, va_list ap)
{
    if (err) {
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    }
    return MPSL_ERR_INVALID;
}

int mpsl_err(mpsl_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(err, fmt, ap);
    va_end(ap);
    return MPSL_ERR_INVALID;
}

int mpsl_errs(mpsl_error *err, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(err, fmt, ap);
    va_end(ap);
    return status;
}

void mpsl_err_prefix(mpsl_error *err, const char *fmt, ...)
{
    if (!err) {
        return;
    }
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof err->msg) {
        /* The message is cut to the buffer, as every mpsl_error is. */
        size_t room = sizeof err->msg - (size_t)n;
        memcpy(err->msg + n, ": ", room > 2 ? 2 : room - 1);
        if (room > 3) {
            size_t keep = strlen(old) < room - 3 ? strlen(old) : room - 3;
            memcpy(err->msg + n + 2, old, keep);
            err->msg[n + 2 + keep] = '\0';
        } else {
            err->msg[sizeof err->msg - 1] = '\0';
        }
    }
}

static mpsl_log_level log_threshold = MPSL_LOG_INFO;

void mpsl_log_set_level(mpsl_log_level level) { log_threshold = level; }

void mpsl_log(mpsl_log_level level, const char *fmt, ...)
{
    if (level < log_threshold) {
        return;
    }
    if ((int)level < MPSL_LOG_DEBUG || level > MPSL_LOG_WARN) {
        level = MPSL_LOG_WARN;
    }
    static const char *const prefix[] = {"debug: ", "", "warning: "};
    va_list ap;
    va_start(ap, fmt);
    fputs(prefix[level], stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void *mpsl_alloc(size_t bytes)
{
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) {
        rounded = 64;
    }
    void *p = aligned_alloc(64, rounded);
    if (p) {
        memset(p, 0, rounded);
    }
    return p;
}

void mpsl_free(void *p) { free(p); }

char *mpsl_strdup(const char *s)
{
    if (!s) {
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) {
        memcpy(d, s, n);
    }
    return d;
}

char *mpsl_strfmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        return NULL;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

int mpsl_mkdir_p(const char *path, mpsl_error *err)
{
    char *p = mpsl_strdup(path);
    if (!p) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                int rc = mpsl_errs(err, MPSL_ERR_IO, "cannot create directory %s: %s", p,
                                   strerror(errno));
                free(p);
                return rc;
            }
            *s = c;
            if (!c) {
                break;
            }
        }
    }
    free(p);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return mpsl_errs(err, MPSL_ERR_IO, "%s is not a directory", path);
    }
    return MPSL_OK;
}

double mpsl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int64_t mpsl_peak_rss_bytes(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        return -1;
    }
    return (int64_t)ru.ru_maxrss * 1024; /* Linux reports kilobytes */
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void mpsl_rng_seed(mpsl_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        r->s[i] = splitmix64(&x);
    }
    r->has_spare = 0;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t mpsl_rng_u64(mpsl_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double mpsl_rng_uniform(mpsl_rng *r) { return (double)(mpsl_rng_u64(r) >> 11) * 0x1.0p-53; }

double mpsl_rng_normal(mpsl_rng *r)
{
    /* Box-Muller gives two independent values per pair of uniforms; keep the second.
     * 1 - u keeps the logarithm's argument in (0, 1]. */
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1 = 1.0 - mpsl_rng_uniform(r);
    double u2 = mpsl_rng_uniform(r);
    double radius = sqrt(-2.0 * log(u1));
    r->spare = radius * sin(2.0 * M_PI * u2);
    r->has_spare = 1;
    return radius * cos(2.0 * M_PI * u2);
}

double mpsl_rng_gamma(mpsl_rng *r, double shape)
{
    /* Marsaglia and Tsang; shapes below 1 use the boost Gamma(a) = Gamma(a+1) * U^(1/a). */
    if (shape < 1.0) {
        double u = 1.0 - mpsl_rng_uniform(r);
        return mpsl_rng_gamma(r, shape + 1.0) * pow(u, 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0;
    double c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = mpsl_rng_normal(r);
        double v = 1.0 + c * x;
        if (v <= 0.0) {
            continue;
        }
        v = v * v * v;
        double u = 1.0 - mpsl_rng_uniform(r);
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v)) {
            return d * v;
        }
    }
}

void mpsl_rng_shuffle(mpsl_rng *r, int64_t *a, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(mpsl_rng_u64(r) % (uint64_t)(i + 1));
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}
