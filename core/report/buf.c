/* buf.c: the report module's text buffer, escaping, human units and atomic file writes. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report/buf.h"
#include "util/util.h"

void report_buf_free(report_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static int reserve(report_buf *b, size_t extra)
{
    if (b->oom) {
        return -1;
    }
    if (b->len + extra + 1 <= b->cap) {
        return 0;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1) {
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static void put_n(report_buf *b, const char *s, size_t n)
{
    if (reserve(b, n) == 0) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
    }
}

void report_buf_puts(report_buf *b, const char *s) { put_n(b, s, strlen(s)); }

void report_buf_printf(report_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t)n < sizeof small) {
        put_n(b, small, (size_t)n);
        return;
    }
    if (reserve(b, (size_t)n) == 0) {
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
    }
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when it is not valid. */
static int utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80) {
        return 1;
    }
    int n = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (n == 0 || s[0] >= 0xF8) {
        return 0;
    }
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
    }
    /* Overlong 3- and 4-byte forms, surrogates and code points past U+10FFFF. */
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0) ||
        (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90)) {
        return 0;
    }
    return n;
}

void report_buf_escape(report_buf *b, const char *text, int max_chars)
{
    const unsigned char *s = (const unsigned char *)(text ? text : "");
    int total = report_text_chars((const char *)s);
    int keep = max_chars > 0 && total > max_chars ? max_chars - 1 : total;
    for (int chars = 0; *s && chars < keep; chars++) {
        int n = utf8_len(s);
        if (n == 0) {
            report_buf_puts(b, "\xEF\xBF\xBD"); /* U+FFFD */
            s++;
            continue;
        }
        switch (*s) {
        case '&': report_buf_puts(b, "&amp;"); break;
        case '<': report_buf_puts(b, "&lt;"); break;
        case '>': report_buf_puts(b, "&gt;"); break;
        case '"': report_buf_puts(b, "&quot;"); break;
        case '\'': report_buf_puts(b, "&#39;"); break;
        default:
            if (*s >= 0x20 || *s == '\t' || *s == '\n') {
                put_n(b, (const char *)s, (size_t)n);
            } else if (*s == '\r') {
                put_n(b, " ", 1);
            }
            break;
        }
        s += n;
    }
    if (keep < total) {
        report_buf_puts(b, "\xE2\x80\xA6"); /* … */
    }
}

int report_text_chars(const char *text)
{
    int chars = 0;
    for (const unsigned char *s = (const unsigned char *)text; *s; chars++) {
        int n = utf8_len(s);
        s += n ? n : 1;
    }
    return chars;
}

int report_buf_write(const report_buf *b, const char *path, mpsl_error *err)
{
    if (b->oom) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory building %s", path);
    }
    const char *text = b->p ? b->p : "";
    if (strcmp(path, "-") == 0) {
        if (fwrite(text, 1, b->len, stdout) != b->len || fflush(stdout) != 0) {
            return mpsl_errs(err, MPSL_ERR_IO, "cannot write to standard output: %s",
                             strerror(errno));
        }
        return MPSL_OK;
    }
    char *tmp = mpsl_strfmt("%s.tmp%ld", path, (long)getpid());
    if (!tmp) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory writing %s", path);
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int status = mpsl_errs(err, MPSL_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        free(tmp);
        return status;
    }
    int ok = fwrite(text, 1, b->len, f) == b->len;
    int saved = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = 0;
        saved = errno;
    }
    if (!ok) {
        unlink(tmp);
        free(tmp);
        return mpsl_errs(err, MPSL_ERR_IO, "cannot write %s: %s", path, strerror(saved));
    }
    free(tmp);
    return MPSL_OK;
}

/* v scaled by 1000s with a unit from units[] ("" for plain numbers: 1.5k, 2M). */
static void scaled(double v, const char *const *units, int nunits, const char *unit0,
                   const char *sep, int digits, char *buf, size_t n)
{
    double a = fabs(v);
    int u = -1;
    /* Round first so 999.96 kB prints as 1 MB rather than 1e+03 kB. */
    while (u + 1 < nunits) {
        char probe[64];
        snprintf(probe, sizeof probe, "%.*g", digits, a);
        if (strtod(probe, NULL) < 1000) {
            break;
        }
        a /= 1000;
        v /= 1000;
        u++;
    }
    snprintf(buf, n, "%.*g%s%s", digits, v, u < 0 ? (*unit0 ? sep : "") : sep,
             u < 0 ? unit0 : units[u]);
}

const char *report_fmt(double v, report_unit unit, int digits, char *buf, size_t n)
{
    static const char *const plain[] = {"k", "M", "G", "T", "P", "E"};
    static const char *const bytes[] = {"kB", "MB", "GB", "TB", "PB", "EB"};
    static const char *const flops[] = {"kFLOP", "MFLOP", "GFLOP", "TFLOP", "PFLOP", "EFLOP"};
    if (isnan(v)) {
        snprintf(buf, n, "-");
        return buf;
    }
    if (fabs(v) < 1e-12) {
        v = 0; /* no "-0" or "1e-17" at an axis origin */
    }
    switch (unit) {
    case REPORT_BYTES: scaled(v, bytes, 6, "B", " ", digits, buf, n); break;
    case REPORT_FLOPS: scaled(v, flops, 6, "FLOP", " ", digits, buf, n); break;
    case REPORT_SECONDS:
        if (fabs(v) < 60) {
            snprintf(buf, n, "%.*g s", digits, v);
        } else if (v < 3600) {
            long s = lround(v);
            snprintf(buf, n, "%ldm %02lds", s / 60, s % 60);
        } else {
            long m = lround(v / 60);
            snprintf(buf, n, "%ldh %02ldm", m / 60, m % 60);
        }
        break;
    default:
        if (fabs(v) < 1000) {
            snprintf(buf, n, "%.*g", digits, v);
        } else {
            scaled(v, plain, 6, "", "", digits, buf, n);
        }
        break;
    }
    return buf;
}

report_unit report_metric_unit(const char *metric)
{
    size_t n = strlen(metric);
    if (strncmp(metric, "bytes", 5) == 0 || (n >= 6 && !strcmp(metric + n - 6, "_bytes"))) {
        return REPORT_BYTES;
    }
    if (n >= 8 && !strcmp(metric + n - 8, "_seconds")) {
        return REPORT_SECONDS;
    }
    if (strstr(metric, "flops")) {
        return REPORT_FLOPS;
    }
    return REPORT_PLAIN;
}
