/* svg.h: small SVG charts with no plotting library: line chart (with bands), grouped bars,
 * stacked bars and box plot. Each writes one complete <svg> element (axes with "nice" ticks in
 * human units, linear or logarithmic, grid, title, legend below the plot) into a report_buf.
 * Every text is escaped; data marks carry class="series" (bands class="band", logarithmic
 * axes class="axis log") so tests can tell a chart with data from an empty frame.
 *
 *   svg_chart c = {.title = "test_acc", .x_label = "epoch", .y_label = "accuracy",
 *                  .x_integer = 1, .width = 600, .height = 320};
 *   double x[] = {1, 2, 3}, y[] = {0.3, 0.4, 0.5};
 *   svg_series s = {.name = "run 1", .x = x, .y = y, .n = 3};
 *   svg_line_chart(&buf, &c, &s, 1);
 */
#ifndef MPSL_REPORT_SVG_H
#define MPSL_REPORT_SVG_H

#include "report/buf.h"

/* How an axis maps values: linear, logarithmic (base 10: only positive values are drawn), or
 * automatic: logarithmic when the positive values span more than two decades (max / min >
 * 100, svg_log_wanted) and none is below zero, linear otherwise. */
typedef enum svg_scale { SVG_LINEAR = 0, SVG_LOG, SVG_AUTO } svg_scale;

typedef struct svg_chart {
    const char *title;     /* above the plot */
    const char *note;      /* a smaller line under the title, or NULL */
    const char *x_label;   /* under the x axis */
    const char *y_label;   /* beside the y axis */
    report_unit x_unit, y_unit;
    int x_integer;         /* x ticks on whole numbers only (epochs, rounds) */
    int y_zero;            /* the y axis includes 0 (amounts: bytes, FLOPs, samples) */
    int width, height;     /* px, of the plot with its axes; the legend adds rows below */
    int standalone;        /* a file of its own: XML declaration and xmlns (inline in HTML
                              neither is wanted) */
    svg_scale x_scale, y_scale; /* line charts: both; bar charts: y only */
} svg_chart;

/* One line: points (x[i], y[i]); a NaN y breaks the line. With lo and hi, a translucent band
 * from lo[i] to hi[i] is drawn under the line (a NaN breaks it: a point with one value has
 * none). style picks the dash pattern and marker shape (0: solid, circles; 1: dashed,
 * squares; 2: dotted, triangles; 3: dash-dot, diamonds; then repeating), so that lines of the
 * same colour, or lines on top of each other, stay apart. A line whose points equal an
 * earlier line's is named in the legend "(same as NAME)", one within a pixel "(overlaps
 * NAME)": the later line is drawn over the earlier and would hide it. */
typedef struct svg_series {
    const char *name;      /* legend text */
    int color;             /* palette index (svg_color) */
    const double *x, *y;
    int n;
    const double *lo, *hi; /* the band, or NULL */
    int style;
} svg_series;

/* Five-number summary of one category's values, and the values themselves (may be NULL). */
typedef struct svg_box {
    double min, q1, median, q3, max;
    const double *values;
    int n;                 /* 0: "no data" for this category */
} svg_box;

/* A colour of the categorical palette (10 colours, then repeating). */
const char *svg_color(int i);

/* 1 when positive values from lo to hi (lo > 0) span more than two decades: what SVG_AUTO
 * draws on a logarithmic axis. */
int svg_log_wanted(double lo, double hi);

/* The ticks of a logarithmic axis holding [lo, hi] (0 < lo <= hi), from *axis_lo to
 * *axis_hi. Values within about two decades: bounds and ticks on the 1-2-5 sequence (20k,
 * 50k, 100k, 200k); wider: whole decades around lo and hi, every k-th labelled when there
 * would be more than 9. Returns the number of ticks written (at most max). */
int svg_log_ticks(double lo, double hi, double *ticks, int max, double *axis_lo,
                  double *axis_hi);

/* Lines, one per series, with markers when points are few, bands under them. Series with no
 * point to draw (none finite; on a logarithmic axis none positive) are listed in the legend as
 * "(no data)". */
void svg_line_chart(report_buf *b, const svg_chart *c, const svg_series *s, int ns);

/* Grouped bars: ncat categories along x, ngroup bars in each, values[cat * ngroup + g];
 * NaN is drawn as "n/a". group_colors[g] are palette indices. On a logarithmic y axis (c->
 * y_scale) bars rise from the axis' lowest decade and a zero is written "0" at the base. */
void svg_bar_chart(report_buf *b, const svg_chart *c, const char *const *cats, int ncat,
                   const char *const *groups, const int *group_colors, int ngroup,
                   const double *values);

/* Stacked bars: ncat bars of nstack segments, values[cat * nstack + k], segment k in
 * palette colour k. Category labels are thinned when there are many. */
void svg_stacked_bars(report_buf *b, const svg_chart *c, const char *const *cats, int ncat,
                      const char *const *stacks, int nstack, const double *values);

/* Box and whiskers (min..max, quartiles, median) with the values as dots, one per category;
 * colors[i] are palette indices. */
void svg_box_plot(report_buf *b, const svg_chart *c, const char *const *cats,
                  const int *colors, int ncat, const svg_box *boxes);

/* A frame with the title and a centred "no data" line (why, escaped). */
void svg_no_data(report_buf *b, const svg_chart *c, const char *why);

/* Five-number summary of v[0..n) (sorted in place). */
svg_box svg_box_of(double *v, int n);

#endif
