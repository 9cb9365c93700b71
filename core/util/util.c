/* util.c: error messages, logging, aligned allocation, strings, folders and clocks. (The
 * seeded generator is in rng.c.) */
#include "util.h"

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
