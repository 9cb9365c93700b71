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
    CAT_MAX_CHARS = 22,   /* category labels under bars */
};
#define CHAR_W 6.6        /* estimated px per character at FONT */

static const char *const palette[10] = {
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#79706e",
};

const char *svg_color(int i) { return palette[(i < 0 ? -i : i) % 10]; }

/* Dashes for lines past the first ten colours, so repeated colours stay apart. */
static const char *line_dash(int i)
{
    static const char *const dash[] = {"", " stroke-dasharray=\"6 3\"", " stroke-dasharray=\"2 2\""};
    return dash[((i < 0 ? -i : i) / 10) % 3];
}

/* ------------------------------------------------------------------ axes and ticks */

typedef struct axis {
    double lo, hi, step;
    int digits;          /* significant digits for tick labels */
} axis;

static double nice_step(double range, int target)
{
    double raw = range / target;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

/* Axis bounds on whole steps around [lo, hi]. */
static axis make_axis(double lo, double hi, int zero, int integer)
{
    axis a;
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
    a.step = nice_step(hi - lo, integer ? 6 : 5);
    if (integer) {
        a.step = fmax(1, round(a.step));
    }
    a.lo = floor(lo / a.step + 1e-9) * a.step;
    a.hi = ceil(hi / a.step - 1e-9) * a.step;
    double big = fmax(fabs(a.lo), fabs(a.hi));
    int need = (int)ceil(log10(big / a.step + 1e-9)) + 1;
    a.digits = need < 3 ? 3 : need > 7 ? 7 : need;
    return a;
}

static int axis_ticks(const axis *a) { return (int)lround((a->hi - a->lo) / a->step) + 1; }
static double axis_tick(const axis *a, int i) { return a->lo + i * a->step; }

/* The plot area inside the whole picture. */
typedef struct frame {
    int W, H;               /* whole svg, legend included */
    double x0, x1, y0, y1;  /* plot area: x0 left, y0 bottom (px; y grows down) */
    axis xa, ya;
} frame;

static double fx(const frame *f, double x)
{
    return f->x0 + (x - f->xa.lo) / (f->xa.hi - f->xa.lo) * (f->x1 - f->x0);
}

static double fy(const frame *f, double y)
{
    return f->y0 - (y - f->ya.lo) / (f->ya.hi - f->ya.lo) * (f->y0 - f->y1);
}

/* Widest y tick label, in estimated px. */
static double y_tick_width(const svg_chart *c, const axis *ya)
{
    int chars = 1;
    for (int i = 0; i < axis_ticks(ya); i++) {
        char t[48];
        int n = report_text_chars(report_fmt(axis_tick(ya, i), c->y_unit, ya->digits, t, sizeof t));
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
} legend_item;

static double legend_item_width(const legend_item *it)
{
    int chars = report_text_chars(it->name ? it->name : "");
    chars = chars > LEGEND_MAX_CHARS ? LEGEND_MAX_CHARS : chars;
    return 24 + (chars + (it->no_data ? 10 : 0)) * CHAR_W + 16;
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
        if (it[i].box) {
            report_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" "
                              "fill=\"%s\"/>", sx + 4, cy - 6, svg_color(it[i].color));
        } else {
            report_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                              "stroke=\"%s\" stroke-width=\"3\"%s/>", sx, cy, sx + 18, cy,
                              svg_color(it[i].color), line_dash(it[i].color));
        }
        report_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\"%s>", sx + 24, cy + 4,
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

/* Grid, y ticks and labels, the axes and the axis titles. x ticks are the caller's. */
static void draw_y_axis(report_buf *b, const svg_chart *c, const frame *f)
{
    report_buf_puts(b, "<g class=\"axis\" font-size=\"11\">");
    for (int i = 0; i < axis_ticks(&f->ya); i++) {
        double v = axis_tick(&f->ya, i), y = fy(f, v);
        char t[48];
        report_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                          "stroke=\"#e6e6e6\"/>", f->x0, y, f->x1, y);
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

void svg_line_chart(report_buf *b, const svg_chart *c, const svg_series *s, int ns)
{
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    int maxn = 0;
    legend_item *items = calloc((size_t)(ns > 0 ? ns : 1), sizeof *items);
    if (!items) {
        b->oom = 1;
        return;
    }
    for (int i = 0; i < ns; i++) {
        int finite = 0;
        for (int k = 0; k < s[i].n; k++) {
            if (isfinite(s[i].x[k]) && isfinite(s[i].y[k])) {
                xlo = fmin(xlo, s[i].x[k]), xhi = fmax(xhi, s[i].x[k]);
                ylo = fmin(ylo, s[i].y[k]), yhi = fmax(yhi, s[i].y[k]);
                finite++;
            }
        }
        maxn = s[i].n > maxn ? s[i].n : maxn;
        items[i] = (legend_item){s[i].name, s[i].color, 0, finite == 0};
    }
    if (!isfinite(xlo)) {
        svg_no_data(b, c, "no run has this figure");
        free(items);
        return;
    }
    /* Value ranges get a little headroom so the top line does not sit on the frame. */
    double pad = (yhi - ylo) * 0.04;
    axis ya = make_axis(c->y_zero ? ylo : ylo - pad, yhi + pad, c->y_zero, 0);
    axis xa = make_axis(xlo, xhi, 0, c->x_integer);
    if (c->x_integer && xlo >= 1 && xa.lo < 1) {
        xa.lo = 1 - (xlo == xhi ? 1 : 0); /* epochs start at 1 */
        if (xa.lo < 0) {
            xa.lo = 0;
        }
    }
    int W = c->width > 0 ? c->width : 600;
    int rows = legend_rows(items, ns, W - 40);
    frame f = make_frame(c, xa, ya, 44, rows);
    svg_open(b, c, f.W, f.H);
    draw_y_axis(b, c, &f);
    report_buf_puts(b, "<g class=\"axis\" font-size=\"11\">");
    for (int i = 0; i < axis_ticks(&f.xa); i++) {
        double v = axis_tick(&f.xa, i), x = fx(&f, v);
        char t[48];
        report_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                          "stroke=\"#444\"/><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
                          "%s</text>", x, f.y0, x, f.y0 + 4, x, f.y0 + 16,
                          report_fmt(v, c->x_unit, f.xa.digits, t, sizeof t));
    }
    report_buf_puts(b, "</g>\n");
    draw_x_label(b, c, &f, f.y0 + 34);
    int markers = maxn <= 60;
    for (int i = 0; i < ns; i++) {
        if (items[i].no_data) {
            continue;
        }
        report_buf_printf(b, "<g class=\"series\"><title>");
        report_buf_escape(b, s[i].name, 0);
        report_buf_puts(b, "</title><path class=\"series\" fill=\"none\" stroke-width=\"2\" "
                           "stroke-linejoin=\"round\" d=\"");
        int pen = 0;
        for (int k = 0; k < s[i].n; k++) {
            if (!isfinite(s[i].x[k]) || !isfinite(s[i].y[k])) {
                pen = 0;
                continue;
            }
            report_buf_printf(b, "%s%.1f %.1f", pen ? " L" : (k ? " M" : "M"),
                              fx(&f, s[i].x[k]), fy(&f, s[i].y[k]));
            pen = 1;
        }
        report_buf_printf(b, "\" stroke=\"%s\"%s/>", svg_color(s[i].color),
                          line_dash(s[i].color));
        if (markers) {
            for (int k = 0; k < s[i].n; k++) {
                if (isfinite(s[i].x[k]) && isfinite(s[i].y[k])) {
                    report_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>",
                                      fx(&f, s[i].x[k]), fy(&f, s[i].y[k]),
                                      svg_color(s[i].color));
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

/* Frame for ncat categories along x with a y range; *slant receives the label style. */
static frame cat_frame(const svg_chart *c, const char *const *cats, int ncat, double ylo,
                       double yhi, int rows, int *slant)
{
    axis xa = {0, 1, 1, 3};
    axis ya = make_axis(ylo, yhi, c->y_zero, 0);
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
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < ncat * ngroup; i++) {
        if (isfinite(values[i])) {
            lo = fmin(lo, values[i]), hi = fmax(hi, values[i]);
        }
    }
    if (ncat == 0 || !isfinite(lo)) {
        svg_no_data(b, c, "no run has these figures");
        return;
    }
    legend_item items[16];
    int nitems = ngroup < 16 ? ngroup : 16;
    for (int g = 0; g < nitems; g++) {
        items[g] = (legend_item){groups[g], group_colors[g], 1, 0};
    }
    int W = c->width > 0 ? c->width : 600, slant;
    int rows = legend_rows(items, nitems, W - 40);
    frame f = cat_frame(c, cats, ncat, lo, hi * 1.08, rows, &slant);
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
            double y = fy(&f, fmax(v, 0)), y0 = fy(&f, fmin(v, 0));
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
        items[k] = (legend_item){stacks[k], k, 1, 0};
    }
    if (nstack > MAX_ITEMS) {
        items[nitems++] = (legend_item){"... (colours repeat)", 9, 1, 0};
    }
    int W = c->width > 0 ? c->width : 600, slant;
    int rows = legend_rows(items, nitems, W - 40);
    svg_chart cc = *c;
    cc.y_zero = 1;
    frame f = cat_frame(&cc, cats, ncat, 0, hi, rows, &slant);
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
    frame f = cat_frame(c, cats, ncat, c->y_zero ? lo : lo - pad, hi + pad, 0, &slant);
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
