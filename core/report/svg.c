/* svg.c: line charts, grouped and stacked bars and box plots as plain SVG text. Text widths
 * are estimated (about 0.55 em per character) since there is no font engine; margins and
 * legend rows are sized from those estimates. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "report/svg.h"

enum {
    FONT = 12,            /* px: ticks, legend */
    TITLE_FONT = 14,
    LEGEND_ROW = 18,
    LEGEND_MAX_CHARS = 44,
    CAT_MAX_CHARS = 30,   /* category labels under bars */
};
#define CHAR_W 6.6        /* estimated px per character at FONT */

static const char *const palette[10] = {
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#79706e",
};

const char *svg_color(int i) { return palette[(i < 0 ? -i : i) % 10]; }

/* A series' line style: a dash pattern and a marker shape, so that lines of one colour, or
 * lines drawn over each other, stay apart (svg.h). */
static const char *line_dash(int style)
{
    static const char *const dash[] = {"", " stroke-dasharray=\"7 4\"", " stroke-dasharray=\"2 3\"",
                                       " stroke-dasharray=\"8 3 2 3\""};
    return dash[(style < 0 ? -style : style) % 4];
}

static void marker(report_buf *b, int style, double x, double y, const char *color)
{
    switch ((style < 0 ? -style : style) % 4) {
    case 1:
        report_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"6\" height=\"6\" fill=\"%s\"/>",
                          x - 3, y - 3, color);
        break;
    case 2:
        report_buf_printf(b, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" fill=\"%s\"/>", x,
                          y - 4, x + 3.6, y + 2.6, x - 3.6, y + 2.6, color);
        break;
    case 3:
        report_buf_printf(b, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" fill=\"none\" "
                          "stroke=\"%s\" stroke-width=\"1.5\"/>", x, y - 4, x + 4, y, x, y + 4,
                          x - 4, y, color);
        break;
    default:
        report_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>", x, y, color);
    }
}

/* ------------------------------------------------------------------ axes and ticks */

enum { MAX_TICKS = 40 };

typedef struct axis {
    double lo, hi;
    int log;             /* base-10 logarithmic: lo > 0 */
    int digits;          /* significant digits for tick labels */
    int nticks;
    double ticks[MAX_TICKS];
} axis;

static double nice_step(double range, int target)
{
    double raw = range / target;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

/* A linear axis on whole steps around [lo, hi]. */
static axis make_axis(double lo, double hi, int zero, int integer)
{
    axis a = {0};
    if (!isfinite(lo) || !isfinite(hi)) {
        lo = 0, hi = 1;
    }
    if (zero) {
        lo = fmin(lo, 0);
        hi = fmax(hi, 0);
    }
    if (hi - lo < 1e-12 * fmax(fabs(hi), 1)) {
        double pad = fabs(hi) > 0 ? fabs(hi) * 0.1 : 1;
        if (integer) {
            pad = 1;
        }
        hi += pad;
        if (!(zero && lo == 0)) {
            lo -= pad;
        }
        if (integer && lo < 0 && hi - pad >= 0 && zero == 0) {
            lo = hi - 2 * pad;
        }
    }
    double step = nice_step(hi - lo, integer ? 6 : 5);
    if (integer) {
        step = fmax(1, round(step));
    }
    a.lo = floor(lo / step + 1e-9) * step;
    a.hi = ceil(hi / step - 1e-9) * step;
    double big = fmax(fabs(a.lo), fabs(a.hi));
    int need = (int)ceil(log10(big / step + 1e-9)) + 1;
    a.digits = need < 3 ? 3 : need > 7 ? 7 : need;
    int n = (int)lround((a.hi - a.lo) / step) + 1;
    a.nticks = n < MAX_TICKS ? n : MAX_TICKS;
    for (int i = 0; i < a.nticks; i++) {
        a.ticks[i] = a.lo + i * step;
    }
    return a;
}

int svg_log_wanted(double lo, double hi)
{
    return isfinite(lo) && isfinite(hi) && lo > 0 && hi / lo > 100;
}

/* The 1-2-5 sequence (..., 0.5, 1, 2, 5, 10, 20, ...): the largest member at most v (dir < 0)
 * or the smallest at least v (dir > 0). */
static double seq125(double v, int dir)
{
    static const double m[] = {1, 2, 5, 10};
    double d = pow(10, floor(log10(v))), f = v / d;
    if (dir < 0) {
        for (int i = 3; i >= 0; i--) {
            if (m[i] <= f * (1 + 1e-9)) {
                return m[i] * d;
            }
        }
        return d;
    }
    for (int i = 0; i < 4; i++) {
        if (m[i] >= f * (1 - 1e-9)) {
            return m[i] * d;
        }
    }
    return 10 * d;
}

int svg_log_ticks(double lo, double hi, double *ticks, int max, double *axis_lo, double *axis_hi)
{
    /* The small slack keeps an exact decade (1000) from opening a decade of its own. */
    int dlo = (int)floor(log10(lo) + 1e-9), dhi = (int)ceil(log10(hi) - 1e-9);
    int n = 0;
    if (dhi - dlo <= 2) {
        /* Few decades: bounds and ticks on 1, 2, 5 times a power of ten, so that values
         * within one decade fill the plot instead of a corner of it. */
        *axis_lo = seq125(lo, -1);
        *axis_hi = seq125(hi, 1);
        if (*axis_hi <= *axis_lo * (1 + 1e-9)) { /* one value: a step either side */
            *axis_lo = seq125(*axis_lo * 0.99, -1);
            *axis_hi = seq125(*axis_hi * 1.01, 1);
        }
        for (double v = *axis_lo; v <= *axis_hi * (1 + 1e-9) && n < max; v = seq125(v * 1.01, 1)) {
            ticks[n++] = v;
        }
        return n;
    }
    *axis_lo = pow(10, dlo);
    *axis_hi = pow(10, dhi);
    int every = (dhi - dlo + 7) / 8; /* at most 9 labels */
    for (int d = dlo; d <= dhi && n < max; d += every) {
        ticks[n++] = pow(10, d);
    }
    return n;
}

static axis make_log_axis(double lo, double hi)
{
    axis a = {0};
    a.log = 1;
    a.digits = 3;
    if (!(lo > 0) || !isfinite(hi) || hi < lo) {
        lo = 1, hi = 10;
    }
    a.nticks = svg_log_ticks(lo, hi, a.ticks, MAX_TICKS, &a.lo, &a.hi);
    return a;
}

/* 1 when a scale draws values from lo to hi (plo: the smallest positive) logarithmically. */
static int scale_is_log(svg_scale scale, double lo, double hi, double plo)
{
    return scale == SVG_LOG ? isfinite(plo)
           : scale == SVG_AUTO ? lo >= 0 && svg_log_wanted(plo, hi) : 0;
}

/* Where v falls along the axis, 0 at lo and 1 at hi (NaN: not drawable, a non-positive v on
 * a logarithmic axis). */
static double axis_frac(const axis *a, double v)
{
    if (a->log) {
        return v > 0 ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo)) : NAN;
    }
    return (v - a->lo) / (a->hi - a->lo);
}

/* The plot area inside the whole picture. */
typedef struct frame {
    int W, H;               /* whole svg, legend included */
    double x0, x1, y0, y1;  /* plot area: x0 left, y0 bottom (px; y grows down) */
    axis xa, ya;
} frame;

static double fx(const frame *f, double x) { return f->x0 + axis_frac(&f->xa, x) * (f->x1 - f->x0); }

static double fy(const frame *f, double y) { return f->y0 - axis_frac(&f->ya, y) * (f->y0 - f->y1); }

/* Widest y tick label, in estimated px. */
static double y_tick_width(const svg_chart *c, const axis *ya)
{
    int chars = 1;
    for (int i = 0; i < ya->nticks; i++) {
        char t[48];
        int n = report_text_chars(report_fmt(ya->ticks[i], c->y_unit, ya->digits, t, sizeof t));
        chars = n > chars ? n : chars;
    }
    return chars * CHAR_W;
}

static int top_margin(const svg_chart *c) { return c->note ? 46 : 32; }

/* ------------------------------------------------------------------ legend */

typedef struct legend_item {
    const char *name;
    int color;
    int box;          /* 1: a square swatch (bars), 0: a line (series) */
    int no_data;      /* appends " (no data)" and greys the text */
    int style;        /* lines: dash pattern and marker (line_dash, marker) */
    int band;         /* lines: a translucent band behind the swatch */
    const char *same_as; /* lines: the earlier line this one covers, or NULL */
    int exact;        /* same_as: equal values ("same as"), else within a pixel ("overlaps") */
} legend_item;

enum { SAME_AS_CHARS = 24 };

static double legend_item_width(const legend_item *it)
{
    int chars = report_text_chars(it->name ? it->name : "");
    chars = chars > LEGEND_MAX_CHARS ? LEGEND_MAX_CHARS : chars;
    if (it->same_as) {
        int k = report_text_chars(it->same_as);
        chars += 12 + (k > SAME_AS_CHARS ? SAME_AS_CHARS : k);
    }
    return 30 + (chars + (it->no_data ? 10 : 0)) * CHAR_W + 16;
}

/* Rows the legend needs at this width. */
static int legend_rows(const legend_item *it, int n, double width)
{
    if (n == 0) {
        return 0;
    }
    int rows = 1;
    double x = 0;
    for (int i = 0; i < n; i++) {
        double w = legend_item_width(&it[i]);
        if (x > 0 && x + w > width) {
            rows++;
            x = 0;
        }
        x += w;
    }
    return rows;
}

static void legend_draw(report_buf *b, const legend_item *it, int n, double left, double width,
                        double top)
{
    double x = 0, y = top;
    report_buf_puts(b, "<g class=\"legend\">");
    for (int i = 0; i < n; i++) {
        double w = legend_item_width(&it[i]);
        if (x > 0 && x + w > width) {
            y += LEGEND_ROW;
            x = 0;
        }
        double sx = left + x, cy = y + LEGEND_ROW / 2.0;
        const char *col = svg_color(it[i].color);
        if (it[i].box) {
            report_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" "
                              "fill=\"%s\"/>", sx + 4, cy - 6, col);
        } else {
            if (it[i].band) {
                report_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"24\" height=\"12\" "
                                  "fill=\"%s\" fill-opacity=\"0.2\"/>", sx, cy - 6, col);
            }
            report_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                              "stroke=\"%s\" stroke-width=\"2.5\"%s/>", sx, cy, sx + 24, cy,
                              col, line_dash(it[i].style));
            marker(b, it[i].style, sx + 12, cy, col);
        }
        report_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\"%s>", sx + 30, cy + 4,
                          it[i].no_data ? " fill=\"#888\"" : "");
        if (report_text_chars(it[i].name ? it[i].name : "") > LEGEND_MAX_CHARS) {
            report_buf_puts(b, "<title>");
            report_buf_escape(b, it[i].name, 0);
            report_buf_puts(b, "</title>");
        }
        report_buf_escape(b, it[i].name, LEGEND_MAX_CHARS);
        if (it[i].no_data) {
            report_buf_puts(b, " (no data)");
        }
        if (it[i].same_as) {
            report_buf_puts(b, it[i].exact ? " (same as " : " (overlaps ");
            report_buf_escape(b, it[i].same_as, SAME_AS_CHARS);
            report_buf_puts(b, ")");
        }
        report_buf_puts(b, "</text>");
        x += w;
    }
    report_buf_puts(b, "</g>");
}

/* ------------------------------------------------------------------ frame */

static void svg_open(report_buf *b, const svg_chart *c, int W, int H)
{
    if (c->standalone) {
        report_buf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    }
    report_buf_printf(b,
                      "<svg %sclass=\"chart\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
                      "role=\"img\" font-family=\"DejaVu Sans, Liberation Sans, Arial, "
                      "sans-serif\" font-size=\"%d\" fill=\"#222\">\n",
                      c->standalone ? "xmlns=\"http://www.w3.org/2000/svg\" " : "", W, H, W, H,
                      FONT);
    report_buf_puts(b, "<title>");
    report_buf_escape(b, c->title, 0);
    report_buf_puts(b, "</title>\n");
    report_buf_printf(b, "<rect class=\"bg\" width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", W, H);
    report_buf_printf(b, "<text x=\"12\" y=\"20\" font-size=\"%d\" font-weight=\"bold\">",
                      TITLE_FONT);
    report_buf_escape(b, c->title, 90);
    report_buf_puts(b, "</text>\n");
    if (c->note) {
        report_buf_puts(b, "<text x=\"12\" y=\"37\" font-size=\"11\" fill=\"#666\">");
        report_buf_escape(b, c->note, 120);
        report_buf_puts(b, "</text>\n");
    }
}

static void svg_close(report_buf *b) { report_buf_puts(b, "</svg>\n"); }

/* The plot area for a chart with these axes, extra bottom margin and legend rows. */
static frame make_frame(const svg_chart *c, axis xa, axis ya, double bottom, int rows)
{
    frame f;
    f.xa = xa;
    f.ya = ya;
    f.W = c->width > 0 ? c->width : 600;
    int plot_h = c->height > 0 ? c->height : 320;
    double left = 16 + (c->y_label ? 18 : 0) + y_tick_width(c, &ya) + 10;
    f.x0 = left;
    f.x1 = f.W - 18;
    f.y1 = top_margin(c);
    f.y0 = plot_h - bottom;
    f.H = plot_h + (rows ? rows * LEGEND_ROW + 8 : 0);
    return f;
}

/* Light lines at 2..9 times each decade of a logarithmic axis, unlabelled, when the axis
 * spans few decades (more would be a grey wash): they are what makes a log axis readable. */
static void draw_log_minor(report_buf *b, const frame *f, int vertical)
{
    const axis *a = vertical ? &f->xa : &f->ya;
    if (!a->log || log10(a->hi) - log10(a->lo) > 5) {
        return;
    }
    for (double d = pow(10, floor(log10(a->lo) + 1e-9)); d < a->hi; d *= 10) {
        for (int m = 2; m <= 9; m++) {
            double v = d * m;
            if (v <= a->lo * (1 + 1e-9) || v >= a->hi * (1 - 1e-9)) {
                continue;
            }
            if (vertical) {
                double x = fx(f, v);
                report_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                                  "stroke=\"#f1f1f1\"/>", x, f->y0, x, f->y1);
            } else {
                double y = fy(f, v);
                report_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                                  "stroke=\"#f1f1f1\"/>", f->x0, y, f->x1, y);
            }
        }
    }
}

/* Grid, y ticks and labels, the axes and the axis titles. x ticks are the caller's. */
static void draw_y_axis(report_buf *b, const svg_chart *c, const frame *f)
{
    report_buf_printf(b, "<g class=\"axis%s\" font-size=\"11\">", f->ya.log ? " log" : "");
    draw_log_minor(b, f, 0);
    for (int i = 0; i < f->ya.nticks; i++) {
        double v = f->ya.ticks[i], y = fy(f, v);
        char t[48];
        report_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                          "stroke=\"#e2e2e2\"/>", f->x0, y, f->x1, y);
        report_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>",
                          f->x0 - 6, y + 4, report_fmt(v, c->y_unit, f->ya.digits, t, sizeof t));
    }
    report_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>",
                      f->x0, f->y0, f->x1, f->y0);
    report_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>",
                      f->x0, f->y0, f->x0, f->y1);
    if (c->y_label) {
        report_buf_printf(b, "<text transform=\"translate(16 %.1f) rotate(-90)\" "
                          "text-anchor=\"middle\" font-size=\"12\">", (f->y0 + f->y1) / 2);
        report_buf_escape(b, c->y_label, 60);
        if (f->ya.log) {
            report_buf_puts(b, " (log scale)");
        }
        report_buf_puts(b, "</text>");
    }
    report_buf_puts(b, "</g>\n");
}

static void draw_x_label(report_buf *b, const svg_chart *c, const frame *f, double y)
{
    if (c->x_label) {
        report_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
                          (f->x0 + f->x1) / 2, y);
        report_buf_escape(b, c->x_label, 90);
        if (f->xa.log) {
            report_buf_puts(b, " (log scale)");
        }
        report_buf_puts(b, "</text>\n");
    }
}

void svg_no_data(report_buf *b, const svg_chart *c, const char *why)
{
    int W = c->width > 0 ? c->width : 600, H = c->height > 0 ? c->height : 320;
    svg_open(b, c, W, H);
    report_buf_printf(b, "<rect x=\"16\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fafafa\" "
                      "stroke=\"#ddd\"/>", top_margin(c), W - 32, H - top_margin(c) - 16);
    report_buf_printf(b, "<text class=\"no-data\" x=\"%d\" y=\"%d\" text-anchor=\"middle\" "
                      "fill=\"#888\" font-size=\"14\">no data", W / 2, H / 2);
    if (why && *why) {
        report_buf_puts(b, ": ");
        report_buf_escape(b, why, 80);
    }
    report_buf_puts(b, "</text>\n");
    svg_close(b);
}

/* ------------------------------------------------------------------ line chart */

/* A point that can be drawn: finite, and positive on a logarithmic axis. */
static int drawable(double x, double y, int xlog, int ylog)
{
    return isfinite(x) && isfinite(y) && (!xlog || x > 0) && (!ylog || y > 0);
}

/* Value ranges of the series, bands included: all finite values, and the smallest positive. */
typedef struct ranges {
    double xlo, xhi, xplo, ylo, yhi, yplo;
} ranges;

static void range_add(double v, double *lo, double *hi, double *plo)
{
    if (isfinite(v)) {
        *lo = fmin(*lo, v), *hi = fmax(*hi, v);
        if (v > 0) {
            *plo = fmin(*plo, v);
        }
    }
}

static ranges series_ranges(const svg_series *s, int ns)
{
    ranges r = {INFINITY, -INFINITY, INFINITY, INFINITY, -INFINITY, INFINITY};
    for (int i = 0; i < ns; i++) {
        for (int k = 0; k < s[i].n; k++) {
            if (!isfinite(s[i].x[k]) || !isfinite(s[i].y[k])) {
                continue;
            }
            range_add(s[i].x[k], &r.xlo, &r.xhi, &r.xplo);
            range_add(s[i].y[k], &r.ylo, &r.yhi, &r.yplo);
            if (s[i].lo && s[i].hi) {
                range_add(s[i].lo[k], &r.ylo, &r.yhi, &r.yplo);
                range_add(s[i].hi[k], &r.ylo, &r.yhi, &r.yplo);
            }
        }
    }
    return r;
}

/* 1 when series a and b have the same points on the chart: 2 when their values are equal,
 * 1 when every point is within a pixel, 0 otherwise. */
static int coincide(const frame *f, const svg_series *a, const svg_series *b)
{
    if (a->n != b->n) {
        return 0;
    }
    int exact = 1, any = 0;
    for (int k = 0; k < a->n; k++) {
        int da = drawable(a->x[k], a->y[k], f->xa.log, f->ya.log);
        int db = drawable(b->x[k], b->y[k], f->xa.log, f->ya.log);
        if (da != db) {
            return 0;
        }
        if (!da) {
            continue;
        }
        any = 1;
        if (fabs(fx(f, a->x[k]) - fx(f, b->x[k])) >= 1 ||
            fabs(fy(f, a->y[k]) - fy(f, b->y[k])) >= 1) {
            return 0;
        }
        exact &= a->x[k] == b->x[k] && a->y[k] == b->y[k];
    }
    return any ? 1 + exact : 0;
}

/* The band of series s: one closed path per run of points with both bounds (a lone point gets
 * a vertical bar). A bound at or below zero on a logarithmic axis sits on the axis. */
static void draw_band(report_buf *b, const frame *f, const svg_series *s)
{
    double floor_y = f->ya.log ? f->ya.lo : -INFINITY;
    const char *col = svg_color(s->color);
    int k = 0;
    while (k < s->n) {
        int start = k;
        while (k < s->n && drawable(s->x[k], s->y[k], f->xa.log, 0) && isfinite(s->lo[k]) &&
               isfinite(s->hi[k]) && s->hi[k] > floor_y) {
            k++;
        }
        int end = k; /* points [start, end) have a band */
        if (end == start) {
            k++;
            continue;
        }
        if (end - start == 1) {
            report_buf_printf(b, "<path class=\"band\" d=\"M%.1f %.1f V%.1f\" stroke=\"%s\" "
                              "stroke-opacity=\"0.45\" stroke-width=\"5\"/>",
                              fx(f, s->x[start]), fy(f, s->hi[start]),
                              fy(f, fmax(s->lo[start], floor_y)), col);
            continue;
        }
        report_buf_puts(b, "<path class=\"band\" d=\"");
        for (int i = start; i < end; i++) {
            report_buf_printf(b, "%s%.1f %.1f", i == start ? "M" : " L", fx(f, s->x[i]),
                              fy(f, s->hi[i]));
        }
        for (int i = end - 1; i >= start; i--) {
            report_buf_printf(b, " L%.1f %.1f", fx(f, s->x[i]), fy(f, fmax(s->lo[i], floor_y)));
        }
        report_buf_printf(b, " Z\" fill=\"%s\" fill-opacity=\"0.18\" stroke=\"none\"/>", col);
    }
}

void svg_line_chart(report_buf *b, const svg_chart *c, const svg_series *s, int ns)
{
    ranges r = series_ranges(s, ns);
    if (!isfinite(r.xlo)) {
        svg_no_data(b, c, "no run has this figure");
        return;
    }
    axis xa = scale_is_log(c->x_scale, r.xlo, r.xhi, r.xplo)
                  ? make_log_axis(r.xplo, r.xhi) : make_axis(r.xlo, r.xhi, 0, c->x_integer);
    if (!xa.log && c->x_integer && r.xlo >= 1 && xa.lo < 1) {
        xa.lo = 1 - (r.xlo == r.xhi ? 1 : 0); /* epochs start at 1 */
        if (xa.lo < 0) {
            xa.lo = 0;
        }
        xa.nticks = 0; /* the ticks from the new start, on the same step */
        double step = xa.ticks[1] - xa.ticks[0];
        for (double v = ceil(xa.lo / step - 1e-9) * step; v <= xa.hi + 1e-9 && xa.nticks < MAX_TICKS;
             v += step) {
            xa.ticks[xa.nticks++] = v;
        }
    }
    /* A little headroom so the top line does not sit on the frame (decades give it on a
     * logarithmic axis). */
    double pad = (r.yhi - r.ylo) * 0.04;
    axis ya = scale_is_log(c->y_scale, r.ylo, r.yhi, r.yplo)
                  ? make_log_axis(r.yplo, r.yhi)
                  : make_axis(c->y_zero ? r.ylo : r.ylo - pad, r.yhi + pad, c->y_zero, 0);
    if (ya.log && !isfinite(r.yplo)) {
        svg_no_data(b, c, "no positive value for a logarithmic axis");
        return;
    }
    legend_item *items = calloc((size_t)(ns > 0 ? ns : 1), sizeof *items);
    if (!items) {
        b->oom = 1;
        return;
    }
    int maxn = 0;
    for (int i = 0; i < ns; i++) {
        int points = 0;
        for (int k = 0; k < s[i].n; k++) {
            points += drawable(s[i].x[k], s[i].y[k], xa.log, ya.log);
        }
        maxn = s[i].n > maxn ? s[i].n : maxn;
        items[i] = (legend_item){.name = s[i].name, .color = s[i].color, .no_data = points == 0,
                                 .style = s[i].style, .band = s[i].lo && s[i].hi};
    }
    int W = c->width > 0 ? c->width : 600;
    frame f = make_frame(c, xa, ya, 44, 0);
    for (int i = 0; i < ns; i++) { /* which later line hides an earlier one */
        for (int j = 0; j < i && !items[i].no_data && !items[i].same_as; j++) {
            int same = items[j].no_data ? 0 : coincide(&f, &s[i], &s[j]);
            if (same) {
                items[i].same_as = s[j].name;
                items[i].exact = same == 2;
            }
        }
    }
    int rows = legend_rows(items, ns, W - 40);
    f = make_frame(c, xa, ya, 44, rows);
    svg_open(b, c, f.W, f.H);
    draw_y_axis(b, c, &f);
    report_buf_printf(b, "<g class=\"axis%s\" font-size=\"11\">", f.xa.log ? " log" : "");
    draw_log_minor(b, &f, 1);
    for (int i = 0; i < f.xa.nticks; i++) {
        double v = f.xa.ticks[i], x = fx(&f, v);
        char t[48];
        report_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                          "stroke=\"#444\"/><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
                          "%s</text>", x, f.y0, x, f.y0 + 4, x, f.y0 + 16,
                          report_fmt(v, c->x_unit, f.xa.digits, t, sizeof t));
    }
    report_buf_puts(b, "</g>\n");
    draw_x_label(b, c, &f, f.y0 + 34);
    for (int i = 0; i < ns; i++) { /* bands first: every line stays on top of every band */
        if (!items[i].no_data && s[i].lo && s[i].hi) {
            draw_band(b, &f, &s[i]);
        }
    }
    int markers = maxn <= 60;
    for (int i = 0; i < ns; i++) {
        if (items[i].no_data) {
            continue;
        }
        const char *col = svg_color(s[i].color);
        report_buf_printf(b, "<g class=\"series\"><title>");
        report_buf_escape(b, s[i].name, 0);
        report_buf_puts(b, "</title><path class=\"series\" fill=\"none\" stroke-width=\"2\" "
                           "stroke-linejoin=\"round\" d=\"");
        int pen = 0, first = 1;
        for (int k = 0; k < s[i].n; k++) {
            if (!drawable(s[i].x[k], s[i].y[k], f.xa.log, f.ya.log)) {
                pen = 0;
                continue;
            }
            report_buf_printf(b, "%s%.1f %.1f", pen ? " L" : (first ? "M" : " M"),
                              fx(&f, s[i].x[k]), fy(&f, s[i].y[k]));
            pen = 1;
            first = 0;
        }
        report_buf_printf(b, "\" stroke=\"%s\"%s/>", col, line_dash(s[i].style));
        if (markers) {
            for (int k = 0; k < s[i].n; k++) {
                if (drawable(s[i].x[k], s[i].y[k], f.xa.log, f.ya.log)) {
                    marker(b, s[i].style, fx(&f, s[i].x[k]), fy(&f, s[i].y[k]), col);
                }
            }
        }
        report_buf_puts(b, "</g>\n");
    }
    legend_draw(b, items, ns, 20, f.W - 40, c->height > 0 ? c->height : 320);
    svg_close(b);
    free(items);
}

/* ------------------------------------------------------------------ categories */

/* Category labels along x: straight when they fit the band, else slanted. Returns the
 * extra bottom margin they need. */
static double cat_label_margin(const char *const *cats, int ncat, double band, int every)
{
    int chars = 0;
    for (int i = 0; i < ncat; i += every) {
        int n = report_text_chars(cats[i]);
        n = n > CAT_MAX_CHARS ? CAT_MAX_CHARS : n;
        chars = n > chars ? n : chars;
    }
    double w = chars * CHAR_W * (11.0 / FONT);
    return w <= band * every - 4 ? 0 : w * 0.64 - 8; /* sin(40 degrees) */
}

static void draw_cat_labels(report_buf *b, const frame *f, const char *const *cats, int ncat,
                            int every, int slant)
{
    double band = (f->x1 - f->x0) / ncat;
    report_buf_puts(b, "<g class=\"axis\" font-size=\"11\">");
    for (int i = 0; i < ncat; i += every) {
        double x = f->x0 + band * (i + 0.5);
        report_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                          "stroke=\"#444\"/>", x, f->y0, x, f->y0 + 4);
        if (slant) {
            report_buf_printf(b, "<text transform=\"translate(%.1f %.1f) rotate(-40)\" "
                              "text-anchor=\"end\">", x + 4, f->y0 + 14);
        } else {
            report_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", x,
                              f->y0 + 16);
        }
        report_buf_escape(b, cats[i], CAT_MAX_CHARS);
        report_buf_puts(b, "</text>");
    }
    report_buf_puts(b, "</g>\n");
}

/* Label every k-th category so at most ~24 labels show. */
static int label_every(int ncat) { return ncat <= 24 ? 1 : (ncat + 23) / 24; }

/* Frame for ncat categories along x with a y axis; *slant receives the label style. */
static frame cat_frame(const svg_chart *c, const char *const *cats, int ncat, axis ya,
                       int rows, int *slant)
{
    axis xa = {.lo = 0, .hi = 1, .digits = 3};
    frame f = make_frame(c, xa, ya, 44, rows);
    int every = label_every(ncat);
    double extra = cat_label_margin(cats, ncat, (f.x1 - f.x0) / ncat, every);
    *slant = extra > 0;
    if (extra > 0) {
        /* The labels take room from the plot, not from the legend below it. */
        f = make_frame(c, xa, ya, 44 + extra, rows);
    }
    return f;
}

void svg_bar_chart(report_buf *b, const svg_chart *c, const char *const *cats, int ncat,
                   const char *const *groups, const int *group_colors, int ngroup,
                   const double *values)
{
    double lo = INFINITY, hi = -INFINITY, plo = INFINITY;
    for (int i = 0; i < ncat * ngroup; i++) {
        range_add(values[i], &lo, &hi, &plo);
    }
    if (ncat == 0 || !isfinite(lo)) {
        svg_no_data(b, c, "no run has these figures");
        return;
    }
    legend_item items[16];
    int nitems = ngroup < 16 ? ngroup : 16;
    for (int g = 0; g < nitems; g++) {
        items[g] = (legend_item){.name = groups[g], .color = group_colors[g], .box = 1};
    }
    int W = c->width > 0 ? c->width : 600, slant;
    int rows = legend_rows(items, nitems, W - 40);
    /* Headroom for the value labels: 8% of a linear axis; a logarithmic one has its decade. */
    axis ya = scale_is_log(c->y_scale, lo, hi, plo) ? make_log_axis(plo, hi * 1.5)
                                                      : make_axis(lo, hi * 1.08, c->y_zero, 0);
    frame f = cat_frame(c, cats, ncat, ya, rows, &slant);
    svg_open(b, c, f.W, f.H);
    draw_y_axis(b, c, &f);
    double band = (f.x1 - f.x0) / ncat, bar = band * 0.8 / ngroup;
    int labels = ncat * ngroup <= 24;
    for (int i = 0; i < ncat; i++) {
        for (int g = 0; g < ngroup; g++) {
            double v = values[i * ngroup + g];
            double x = f.x0 + band * i + band * 0.1 + bar * g;
            char t[48];
            if (!isfinite(v)) {
                report_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                                  "font-size=\"10\" fill=\"#999\">n/a</text>",
                                  x + bar / 2, f.y0 - 4);
                continue;
            }
            if (f.ya.log && v <= 0) { /* no bar for it on a log axis: the number says it */
                report_buf_printf(b, "<text class=\"series\" x=\"%.1f\" y=\"%.1f\" "
                                  "text-anchor=\"middle\" font-size=\"10\" fill=\"#444\">%s"
                                  "</text>", x + bar / 2, f.y0 - 4,
                                  report_fmt(v, REPORT_PLAIN, 3, t, sizeof t));
                continue;
            }
            double y = f.ya.log ? fy(&f, v) : fy(&f, fmax(v, 0));
            double y0 = f.ya.log ? f.y0 : fy(&f, fmin(v, 0));
            report_buf_printf(b, "<rect class=\"series\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                              "height=\"%.1f\" fill=\"%s\"><title>", x, y, bar * 0.92,
                              fmax(y0 - y, 0), svg_color(group_colors[g]));
            report_buf_escape(b, cats[i], 0);
            report_buf_puts(b, ", ");
            report_buf_escape(b, groups[g], 0);
            report_buf_printf(b, ": %s</title></rect>",
                              report_fmt(v, c->y_unit, 3, t, sizeof t));
            if (labels) { /* compact (17G): the axis carries the unit */
                report_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                                  "font-size=\"10\" fill=\"#444\">%s</text>", x + bar * 0.46,
                                  y - 3, report_fmt(v, REPORT_PLAIN, 3, t, sizeof t));
            }
        }
    }
    draw_cat_labels(b, &f, cats, ncat, 1, slant);
    draw_x_label(b, c, &f, (c->height > 0 ? c->height : 320) - 8);
    legend_draw(b, items, nitems, 20, f.W - 40, c->height > 0 ? c->height : 320);
    svg_close(b);
}

void svg_stacked_bars(report_buf *b, const svg_chart *c, const char *const *cats, int ncat,
                      const char *const *stacks, int nstack, const double *values)
{
    double hi = 0;
    for (int i = 0; i < ncat; i++) {
        double sum = 0;
        for (int k = 0; k < nstack; k++) {
            double v = values[i * nstack + k];
            sum += isfinite(v) && v > 0 ? v : 0;
        }
        hi = fmax(hi, sum);
    }
    if (ncat == 0 || nstack == 0 || hi <= 0) {
        svg_no_data(b, c, "no client data");
        return;
    }
    enum { MAX_ITEMS = 24 };
    legend_item items[MAX_ITEMS + 1];
    int nitems = nstack <= MAX_ITEMS ? nstack : MAX_ITEMS;
    for (int k = 0; k < nitems; k++) {
        items[k] = (legend_item){.name = stacks[k], .color = k, .box = 1};
    }
    if (nstack > MAX_ITEMS) {
        items[nitems++] = (legend_item){.name = "... (colours repeat)", .color = 9, .box = 1};
    }
    int W = c->width > 0 ? c->width : 600, slant;
    int rows = legend_rows(items, nitems, W - 40);
    frame f = cat_frame(c, cats, ncat, make_axis(0, hi, 1, 0), rows, &slant);
    svg_open(b, c, f.W, f.H);
    draw_y_axis(b, c, &f);
    double band = (f.x1 - f.x0) / ncat, bar = band * (ncat > 40 ? 0.9 : 0.75);
    for (int i = 0; i < ncat; i++) {
        double x = f.x0 + band * i + (band - bar) / 2, acc = 0;
        report_buf_puts(b, "<g class=\"series\"><title>");
        report_buf_escape(b, cats[i], 0);
        report_buf_puts(b, ":");
        for (int k = 0; k < nstack; k++) {
            report_buf_printf(b, " %.0f", values[i * nstack + k]);
        }
        report_buf_puts(b, "</title>");
        for (int k = 0; k < nstack; k++) {
            double v = values[i * nstack + k];
            if (!isfinite(v) || v <= 0) {
                continue;
            }
            double ytop = fy(&f, acc + v), ybot = fy(&f, acc);
            report_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                              "fill=\"%s\"/>", x, ytop, bar, ybot - ytop, svg_color(k));
            acc += v;
        }
        report_buf_puts(b, "</g>");
    }
    report_buf_puts(b, "\n");
    draw_cat_labels(b, &f, cats, ncat, label_every(ncat), slant);
    draw_x_label(b, c, &f, (c->height > 0 ? c->height : 320) - 8);
    legend_draw(b, items, nitems, 20, f.W - 40, c->height > 0 ? c->height : 320);
    svg_close(b);
}

/* ------------------------------------------------------------------ box plot */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile(const double *v, int n, double q)
{
    double pos = q * (n - 1);
    int i = (int)floor(pos);
    double frac = pos - i;
    return i + 1 < n ? v[i] * (1 - frac) + v[i + 1] * frac : v[i];
}

svg_box svg_box_of(double *v, int n)
{
    svg_box box = {NAN, NAN, NAN, NAN, NAN, v, 0};
    int m = 0;
    for (int i = 0; i < n; i++) { /* drop NaNs */
        if (isfinite(v[i])) {
            v[m++] = v[i];
        }
    }
    if (m == 0) {
        return box;
    }
    qsort(v, (size_t)m, sizeof *v, cmp_double);
    box.min = v[0];
    box.max = v[m - 1];
    box.q1 = quantile(v, m, 0.25);
    box.median = quantile(v, m, 0.5);
    box.q3 = quantile(v, m, 0.75);
    box.n = m;
    return box;
}

void svg_box_plot(report_buf *b, const svg_chart *c, const char *const *cats,
                  const int *colors, int ncat, const svg_box *boxes)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < ncat; i++) {
        if (boxes[i].n > 0) {
            lo = fmin(lo, boxes[i].min), hi = fmax(hi, boxes[i].max);
        }
    }
    if (ncat == 0 || !isfinite(lo)) {
        svg_no_data(b, c, "no per-client figures");
        return;
    }
    int slant;
    double pad = (hi - lo) * 0.05;
    frame f = cat_frame(c, cats, ncat, make_axis(c->y_zero ? lo : lo - pad, hi + pad, c->y_zero, 0),
                        0, &slant);
    svg_open(b, c, f.W, f.H);
    draw_y_axis(b, c, &f);
    double band = (f.x1 - f.x0) / ncat, bw = fmin(band * 0.5, 80);
    for (int i = 0; i < ncat; i++) {
        const svg_box *x = &boxes[i];
        double cx = f.x0 + band * (i + 0.5);
        const char *col = svg_color(colors[i]);
        if (x->n == 0) {
            report_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                              "font-size=\"11\" fill=\"#999\">no data</text>", cx,
                              (f.y0 + f.y1) / 2);
            continue;
        }
        char t[5][32];
        report_buf_puts(b, "<g class=\"series\"><title>");
        report_buf_escape(b, cats[i], 0);
        report_buf_printf(b, ": %d clients, min %s, quartiles %s / %s / %s, max %s</title>",
                          x->n, report_fmt(x->min, c->y_unit, 3, t[0], 32),
                          report_fmt(x->q1, c->y_unit, 3, t[1], 32),
                          report_fmt(x->median, c->y_unit, 3, t[2], 32),
                          report_fmt(x->q3, c->y_unit, 3, t[3], 32),
                          report_fmt(x->max, c->y_unit, 3, t[4], 32));
        report_buf_printf(b, "<path class=\"series\" d=\"M%.1f %.1f V%.1f M%.1f %.1f H%.1f "
                          "M%.1f %.1f H%.1f\" stroke=\"#444\" fill=\"none\"/>",
                          cx, fy(&f, x->min), fy(&f, x->max), cx - bw / 4, fy(&f, x->min),
                          cx + bw / 4, cx - bw / 4, fy(&f, x->max), cx + bw / 4);
        double yq3 = fy(&f, x->q3), yq1 = fy(&f, x->q1);
        report_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                          "fill=\"%s\" fill-opacity=\"0.35\" stroke=\"%s\" stroke-width=\"1.5\"/>",
                          cx - bw / 2, yq3, bw, fmax(yq1 - yq3, 1), col, col);
        report_buf_printf(b, "<path d=\"M%.1f %.1f H%.1f\" stroke=\"%s\" stroke-width=\"3\"/>",
                          cx - bw / 2, fy(&f, x->median), cx + bw / 2, col);
        if (x->values && x->n <= 400) {
            for (int k = 0; k < x->n; k++) {
                /* Deterministic jitter so the file is the same for the same data. */
                uint32_t hsh = (uint32_t)(k + 1) * 2654435761u;
                double jx = ((hsh >> 8) % 1000 / 1000.0 - 0.5) * bw * 0.8;
                report_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.2\" fill=\"#333\" "
                                  "fill-opacity=\"0.45\"/>", cx + jx, fy(&f, x->values[k]));
            }
        }
        report_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                          "font-size=\"10\" fill=\"#555\">n=%d</text>", cx, fy(&f, x->max) - 5, x->n);
        report_buf_puts(b, "</g>\n");
    }
    draw_cat_labels(b, &f, cats, ncat, label_every(ncat), slant);
    draw_x_label(b, c, &f, (c->height > 0 ? c->height : 320) - 8);
    svg_close(b);
}
