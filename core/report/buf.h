/* buf.h: what the report module writes into: a growing text buffer with XML/HTML escaping,
 * numbers in human units (the same units as `mpsl show`: 1.23 MB, 4.5 GFLOP, 12.3 s), and
 * writing the result to a file in one step. */
#ifndef MPSL_REPORT_BUF_H
#define MPSL_REPORT_BUF_H

#include <stddef.h>

#include "mpsl/plugin.h"

/* Appends never fail: on allocation failure the buffer sets `oom` and ignores later
 * appends, so a caller checks once at the end. Zero-initialise to start. */
typedef struct report_buf {
    char *p;      /* NUL-terminated text, NULL while empty */
    size_t len, cap;
    int oom;
} report_buf;

void report_buf_free(report_buf *b);
void report_buf_puts(report_buf *b, const char *s);
void report_buf_printf(report_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Text for XML and HTML (element content and quoted attributes): & < > " ' escaped,
 * control characters dropped and invalid UTF-8 replaced by U+FFFD, so any run name yields
 * well-formed XML. max_chars > 0 cuts the text to that many characters with an ellipsis. */
void report_buf_escape(report_buf *b, const char *s, int max_chars);

/* Write the buffer to path ("-" is stdout) through a temporary file renamed into place, so a
 * failed write never leaves half a file. MPSL_OK or MPSL_ERR_IO/NOMEM with err naming path. */
int report_buf_write(const report_buf *b, const char *path, mpsl_error *err);

/* The display unit of a figure. */
typedef enum report_unit {
    REPORT_PLAIN = 0, /* 0.337, 1.5k, 2.3M */
    REPORT_BYTES,     /* 259 kB, 4.33 MB (decimal, like `mpsl show`) */
    REPORT_FLOPS,     /* 17 GFLOP */
    REPORT_SECONDS    /* 1.74 s, 2m 05s, 1h 02m */
} report_unit;

/* v in human units with `digits` significant digits ("-" for NaN), in buf. */
const char *report_fmt(double v, report_unit unit, int digits, char *buf, size_t n);
/* The unit a metric name implies: *_bytes, bytes*, *_seconds, *flops*. */
report_unit report_metric_unit(const char *metric);
/* Number of UTF-8 characters (not bytes) in s: for estimating text widths. */
int report_text_chars(const char *s);

#endif
