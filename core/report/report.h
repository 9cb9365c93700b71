/* report.h: reports and plots of runs in a results database, as files that need nothing
 * else to be read: one HTML page with inline CSS and inline SVG (no JavaScript, no network),
 * or one standalone SVG. `mpsl report` and `mpsl plot` are thin layers over these.
 *
 *   report_buf page = {0};
 *   report_options o = {.metric = "test_acc", .db_path = "results.db"};
 *   if (report_html(db, ids, n, &o, &page, &err) == MPSL_OK)
 *       report_buf_write(&page, "report.html", &err);
 *   report_buf_free(&page);
 *
 * Runs that differ only by seed form a group (core/results/groups.h; --group-by chooses the
 * keys instead): one colour and line style per group in every figure, drawn as the mean of
 * its runs with a band (mean ± sd by default) when it has two or more.
 *
 * Module layout: buf.c (text, escaping, units, files), svg.c (the chart kinds), data.c (the
 * queries), series.c (figures against epoch, step, bytes, time; repeats merged), grouping.c
 * (the groups of a report), charts.c (each figure from the data), tables.c (the group, target,
 * tokenizer-drift and config-difference tables), html.c (the page). */
#ifndef MPSL_REPORT_H
#define MPSL_REPORT_H

#include <stdint.h>

#include "report/buf.h"
#include "report/data.h"
#include "report/series.h"
#include "report/svg.h"

struct sqlite3;

typedef struct report_options {
    const char *title;        /* page title; NULL: "mpsl report: N runs" */
    const char *metric;       /* the classification test metric of tables and figures; NULL:
                                 test_acc */
    const char *db_path;      /* named in the page and in messages */
    const char *group_by;     /* groups_make's keys; NULL: runs that differ only by seed */
    report_band band;         /* around a group's mean */
    report_link link;         /* the link model of estimated communication time; zero rates:
                                 REPORT_LINK_UP_MBPS / REPORT_LINK_DOWN_MBPS */
    double target;            /* the target of the time-to-target table; NaN: none */
} report_options;

/* The whole page for runs ids[0..n) (n >= 1), in that order. Errors: a missing run
 * (MPSL_ERR_INVALID, "no run N in PATH"), a bad group_by (MPSL_ERR_INVALID, groups_make's
 * message), SQLite errors (MPSL_ERR_IO), out of memory. */
int report_html(struct sqlite3 *db, const int64_t *ids, int n, const report_options *o,
                report_buf *out, mpsl_error *err);

/* What `mpsl plot` draws. */
typedef struct report_plot_options {
    const char *metric;       /* an epoch_metrics name (step_metrics for REPORT_X_STEP), or
                                 bytes, bytes_up, bytes_down */
    const char *db_path;
    const char *title;        /* NULL: the metric's name */
    const char *group_by;     /* as in report_options */
    report_xaxis x;
    report_band band;
    report_link link;         /* for REPORT_X_COMM */
    svg_scale x_scale, y_scale;
} report_plot_options;

/* One standalone SVG of a figure against o->x, one line (or mean and band) per group. Runs
 * without the figure are listed as "(no data)". When no run has it: MPSL_ERR_INVALID naming
 * the figure, the closest name the runs have ("did you mean"), and every name they have; for
 * REPORT_X_STEP, also the setting that records steps (metrics.every_steps). */
int report_plot_svg(struct sqlite3 *db, const int64_t *ids, int n,
                    const report_plot_options *o, report_buf *out, mpsl_error *err);

/* ---- groups (grouping.c) ---- */

typedef struct report_group {
    char *label;      /* "#ID label" for one run, "label (n=K)" for K; label: groups_make's
                         ("strategy.plugin=fedprox, strategy.mu=0.01") */
    char *legend;     /* the same with dotted keys cut to their last part ("plugin=fedprox,
                         mu=0.01 (n=3)"): legends and categories, where room is short */
    int color;        /* palette index and line style, the same in every figure and table */
    int *members;     /* indices into the report's runs */
    int n;
    int retrieval;    /* the task of its runs (groups never mix tasks) */
} report_group;

/* Groups of runs[0..n): groups_make over each task's runs apart (a classification and a
 * retrieval run never share a group), classification groups first; colours 0, 1, ... */
int report_make_groups(struct sqlite3 *db, const report_run *runs, int n, const char *group_by,
                       report_group **groups, int *ngroups, mpsl_error *err);
void report_free_groups(report_group *g, int n);

/* ---- the figures (charts.c) ---- */

/* What a figure draws: the report's runs and some of its groups. */
typedef struct report_view {
    struct sqlite3 *db;
    const report_run *runs;
    const report_group *const *groups;
    int ngroups;
    report_band band;
    report_link link;
} report_view;

/* A figure against x, one mean line (with band) per group. */
int report_chart_lines(const report_view *v, const char *metric, report_xaxis x,
                       const svg_chart *c, report_buf *out, mpsl_error *err);
/* One line of report_chart_figures: a per-epoch figure, its legend name, its dash style, and
 * optionally the figures bounding its band (lo, hi: e.g. tokenizer_drift_min and _max). */
typedef struct report_line_spec {
    const char *metric, *lo, *hi, *name;
    int style;
} report_line_spec;
/* Several per-epoch figures against the epoch, a line per group and figure (the mean of the
 * group's runs, in the group's colour, spec.style's dashes), the band the mean of lo and hi
 * where a spec names them (no band otherwise). Legends are "GROUP: NAME" with two groups or
 * more, NAME with one. */
int report_chart_figures(const report_view *v, const report_line_spec *lines, int nlines,
                         const svg_chart *c, report_buf *out, mpsl_error *err);
/* Client against server FLOPs, grouped bars per group (the mean of its runs). */
int report_chart_flops(const report_view *v, const svg_chart *c, report_buf *out);
/* Measured compute and wait time of the server and the mean client, bars per group. */
int report_chart_time(const report_view *v, const svg_chart *c, report_buf *out);
/* Spread of a client metric over the clients of each group's runs at their last epoch. */
int report_chart_client_spread(const report_view *v, const char *metric, const svg_chart *c,
                               report_buf *out, mpsl_error *err);
/* Which runs share a partition: group[i] is the first run j <= i whose client data equals
 * run i's, or -1 when run i recorded none. */
int report_partition_groups(struct sqlite3 *db, const report_run *runs, int n, int *group,
                            mpsl_error *err);
/* Class histograms per client of run i, stacked bars named by the run's class names (the note
 * names the runs that share the partition, from group[]). */
int report_chart_client_data(struct sqlite3 *db, const report_run *runs, int n,
                             const int *group, int i, const svg_chart *c, report_buf *out,
                             mpsl_error *err);
/* A y-axis label for a metric name ("test accuracy" for test_acc). */
const char *report_metric_label(const char *metric);
/* 1 for a metric where lower is better (its name has "loss" or "error"). */
int report_metric_lower_better(const char *metric);

/* ---- the tables (tables.c) ---- */

/* One row per group: its runs, and mean ± sd (n) of each figure (final and best of each of
 * metrics[0..nmetrics), bytes, FLOPs, time, memory). */
int report_table_groups(const report_view *v, const char *const *metrics, int nmetrics,
                        report_buf *out, mpsl_error *err);
/* Per group: epochs, wall time, bytes per client and estimated communication time until
 * `metric` first reaches target (at least, or at most for a loss), mean ± sd over the runs
 * that reach it, and how many do; "not reached" when none. */
int report_table_target(const report_view *v, const char *metric, double target,
                        report_buf *out, mpsl_error *err);
/* MPSL's tokenizer-drift diagnostics at each run's last epoch that has them, mean ± sd (n)
 * per group: cross_acc_own, cross_acc_others, own_tokenizer_test_acc_mean,
 * train_acc_avg_tokenizer and tokenizer_drift_mean. */
int report_table_drift(const report_view *v, report_buf *out, mpsl_error *err);
/* The config keys whose values differ between the runs of the groups, a column per group
 * (a group whose runs differ lists their values). */
int report_table_config_diff(const report_view *v, report_buf *out, mpsl_error *err);

#endif
