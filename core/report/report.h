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
 * Module layout: buf.c (text, escaping, units, files), svg.c (the chart kinds), data.c (the
 * queries), charts.c (each figure of a report from the data), html.c (the page and table). */
#ifndef MPSL_REPORT_H
#define MPSL_REPORT_H

#include <stdint.h>

#include "report/buf.h"
#include "report/data.h"
#include "report/svg.h"

struct sqlite3;

typedef struct report_options {
    const char *title;        /* page title; NULL: "mpsl report: N runs" */
    const char *metric;       /* the test metric of the table and first plot; NULL: test_acc */
    const char *db_path;      /* named in the page and in messages */
} report_options;

/* The whole page for runs ids[0..n) (n >= 1), in that order. Errors: a missing run
 * (MPSL_ERR_INVALID, "no run N in PATH"), SQLite errors (MPSL_ERR_IO), out of memory. */
int report_html(struct sqlite3 *db, const int64_t *ids, int n, const report_options *o,
                report_buf *out, mpsl_error *err);

/* One standalone SVG of a per-epoch metric (any epoch_metrics name, or "bytes", "bytes_up",
 * "bytes_down": cumulative bytes per client), one line per run. Runs without the metric
 * are listed as "(no data)"; when none has it the result is MPSL_ERR_INVALID naming the
 * metrics the runs do have. title NULL: the metric's name. */
int report_plot_svg(struct sqlite3 *db, const char *db_path, const char *metric,
                    const int64_t *ids, int n, const char *title, report_buf *out,
                    mpsl_error *err);

/* ---- the figures, for html.c and report_plot_svg (charts.c) ---- */

/* "#3 name (method)": a run's label in legends (malloc'd). */
char *report_run_label(const report_run *r);
/* A per-epoch metric, one line per run (run i in palette colour i). */
int report_chart_epochs(struct sqlite3 *db, const report_run *runs, int n, const char *metric,
                        const svg_chart *c, report_buf *out, mpsl_error *err);
/* Client against server FLOPs, grouped bars per run. */
int report_chart_flops(const report_run *runs, int n, const svg_chart *c, report_buf *out);
/* Measured compute and wait time of the server and the mean client, grouped bars per run. */
int report_chart_time(const report_run *runs, int n, const svg_chart *c, report_buf *out);
/* Spread of a client metric over clients at the last epoch, a box per run. */
int report_chart_client_spread(struct sqlite3 *db, const report_run *runs, int n,
                               const char *metric, const svg_chart *c, report_buf *out,
                               mpsl_error *err);
/* Which runs share a partition: group[i] is the first run j <= i whose client data equals
 * run i's, or -1 when run i recorded none. */
int report_partition_groups(struct sqlite3 *db, const report_run *runs, int n, int *group,
                            mpsl_error *err);
/* Class histograms per client of run i, stacked bars (the note names the runs that share
 * the partition, from group[]). */
int report_chart_client_data(struct sqlite3 *db, const report_run *runs, int n,
                             const int *group, int i, const svg_chart *c, report_buf *out,
                             mpsl_error *err);
/* A y-axis label for a metric name ("test accuracy" for test_acc). */
const char *report_metric_label(const char *metric);

#endif
