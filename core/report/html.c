/* html.c: the report page: a header, the side-by-side table (the figures of `mpsl compare`)
 * and the figures, as one HTML file with inline CSS and inline SVG. No script, no external
 * resource: it opens the same offline, in a mail attachment or from a CI artifact. The page
 * is also well-formed XML (void elements closed, only XML's entities), which lets the tests
 * check its structure and escaping with an XML parser. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpsl_build_config.h"
#include "report/report.h"
#include "util/util.h"

static const char page_css[] =
    "body{font-family:'DejaVu Sans','Liberation Sans',Arial,sans-serif;color:#222;"
    "background:#f4f5f7;margin:0;padding:16px}\n"
    "main{max-width:1260px;margin:0 auto}\n"
    "h1{font-size:24px;margin:0 0 4px}\n"
    "h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid #ccd;padding-bottom:4px}\n"
    ".meta{color:#555;font-size:13px;margin:0}\n"
    ".meta code{background:#e8e9ee;padding:1px 4px;border-radius:3px}\n"
    ".scroll{overflow-x:auto;background:#fff;border:1px solid #dde;border-radius:6px}\n"
    "table.runs{border-collapse:collapse;font-size:12px;width:100%}\n"
    "table.runs th,table.runs td{padding:5px 5px;border-bottom:1px solid #eee;"
    "white-space:nowrap}\n"
    "table.runs th{background:#eef0f5;text-align:left;font-weight:600;vertical-align:bottom;"
    "white-space:normal;min-width:40px}\n"
    "table.runs td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    "table.runs td.name{white-space:normal;min-width:90px;max-width:200px;"
    "overflow-wrap:anywhere}\n"
    "table.runs tr:last-child td{border-bottom:none}\n"
    ".swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;"
    "vertical-align:-1px}\n"
    ".na{color:#999}\n"
    ".grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:16px}\n"
    "figure{margin:0;background:#fff;border:1px solid #dde;border-radius:6px;padding:8px}\n"
    "figure svg{width:100%;height:auto;display:block}\n"
    "figure.wide{grid-column:1/-1}\n"
    "figcaption{font-size:12px;color:#555;padding:4px 6px 2px}\n"
    "footer{color:#666;font-size:12px;margin-top:28px}\n"
    ".status-failed,.status-interrupted{color:#b3261e;font-weight:600}\n"
    ".status-running{color:#8a6d00}\n";

/* ------------------------------------------------------------------ table */

typedef enum cell_kind { CELL_TEXT, CELL_INT, CELL_REAL, CELL_BYTES, CELL_FLOPS, CELL_SECONDS } cell_kind;

static void cell_number(report_buf *b, double v, cell_kind kind)
{
    char t[64];
    if (!isfinite(v)) {
        report_buf_puts(b, "<td class=\"num na\">-</td>");
        return;
    }
    switch (kind) {
    case CELL_INT: snprintf(t, sizeof t, "%.0f", v); break;
    case CELL_BYTES: report_fmt(v, REPORT_BYTES, 3, t, sizeof t); break;
    case CELL_FLOPS: report_fmt(v, REPORT_FLOPS, 3, t, sizeof t); break;
    case CELL_SECONDS: report_fmt(v, REPORT_SECONDS, 3, t, sizeof t); break;
    default: snprintf(t, sizeof t, "%.4g", v); break;
    }
    report_buf_printf(b, "<td class=\"num\">%s</td>", t);
}

static void cell_text(report_buf *b, const char *s, const char *cls)
{
    report_buf_printf(b, "<td%s%s%s>", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
    report_buf_escape(b, s, 0);
    report_buf_puts(b, "</td>");
}

static void runs_table(report_buf *b, const report_run *runs, int n, const char *metric)
{
    report_buf_puts(b, "<div class=\"scroll\"><table class=\"runs\">\n<thead><tr>"
                       "<th>run</th><th>name</th><th>method</th><th>dataset</th>"
                       "<th>clients</th><th>status</th><th>epochs</th><th>final ");
    report_buf_escape(b, metric, 0);
    report_buf_puts(b, "</th><th>best ");
    report_buf_escape(b, metric, 0);
    report_buf_puts(b, "</th>");
    if (strcmp(metric, "test_loss") != 0) {
        report_buf_puts(b, "<th>final test_loss</th>");
    }
    report_buf_puts(b, "<th>bytes up per client</th><th>bytes down per client</th>"
                       "<th>client FLOPs (all)</th><th>client FLOPs per client</th>"
                       "<th>server FLOPs</th><th>wall time</th><th>peak memory</th>"
                       "</tr></thead>\n<tbody>\n");
    for (int i = 0; i < n; i++) {
        const report_run *r = &runs[i];
        report_buf_printf(b, "<tr class=\"run\" id=\"run-%lld\"><td><span class=\"swatch\" "
                          "style=\"background:%s\"></span>#%lld</td>",
                          (long long)r->id, svg_color(i), (long long)r->id);
        report_buf_puts(b, "<td class=\"name\" title=\"");
        report_buf_escape(b, r->name, 0);
        report_buf_puts(b, "\">");
        report_buf_escape(b, r->name, 0);
        report_buf_puts(b, "</td>");
        cell_text(b, r->method, NULL);
        cell_text(b, r->dataset, NULL);
        cell_number(b, (double)r->n_clients, CELL_INT);
        char cls[48];
        snprintf(cls, sizeof cls, "status-%s", r->status);
        cell_text(b, r->status, strspn(r->status, "abcdefghijklmnopqrstuvwxyz") ==
                                    strlen(r->status) ? cls : NULL);
        cell_number(b, (double)r->epochs, CELL_INT);
        cell_number(b, r->final_metric, CELL_REAL);
        cell_number(b, r->best_metric, CELL_REAL);
        if (strcmp(metric, "test_loss") != 0) {
            cell_number(b, r->final_test_loss, CELL_REAL);
        }
        cell_number(b, r->bytes_up_per_client, CELL_BYTES);
        cell_number(b, r->bytes_down_per_client, CELL_BYTES);
        cell_number(b, r->client_flops, CELL_FLOPS);
        cell_number(b, r->client_flops_per_client, CELL_FLOPS);
        cell_number(b, r->server_flops, CELL_FLOPS);
        cell_number(b, r->wall_seconds, CELL_SECONDS);
        cell_number(b, r->peak_rss_bytes, CELL_BYTES);
        report_buf_puts(b, "</tr>\n");
    }
    report_buf_puts(b, "</tbody></table></div>\n");
}

/* ------------------------------------------------------------------ page */

static void figure_open(report_buf *b, const char *id, int wide)
{
    report_buf_printf(b, "<figure id=\"%s\"%s>\n", id, wide ? " class=\"wide\"" : "");
}

static void figure_close(report_buf *b, const char *caption)
{
    report_buf_puts(b, "<figcaption>");
    report_buf_escape(b, caption, 0);
    report_buf_puts(b, "</figcaption></figure>\n");
}

int report_html(sqlite3 *db, const int64_t *ids, int n, const report_options *o,
                report_buf *b, mpsl_error *err)
{
    const char *metric = o && o->metric ? o->metric : "test_acc";
    const char *db_path = o && o->db_path ? o->db_path : "results.db";
    report_run *runs = NULL;
    int status = report_load_runs(db, db_path, ids, n, metric, &runs, err);
    if (status != MPSL_OK) {
        return status;
    }
    char title[160];
    if (o && o->title) {
        snprintf(title, sizeof title, "%s", o->title);
    } else {
        snprintf(title, sizeof title, "mpsl report: %d run%s", n, n == 1 ? "" : "s");
    }
    char when[64];
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&now, &tm));

    report_buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
                       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n"
                       "<meta name=\"generator\" content=\"mpsl " MPSL_VERSION "\"/>\n<title>");
    report_buf_escape(b, title, 0);
    report_buf_printf(b, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<main>\n<header>\n<h1>",
                      page_css);
    report_buf_escape(b, title, 0);
    report_buf_printf(b, "</h1>\n<p class=\"meta\">Generated <time>%s</time> by mpsl "
                      MPSL_VERSION " from <code>", when);
    report_buf_escape(b, db_path, 0);
    report_buf_printf(b, "</code>: %d run%s (", n, n == 1 ? "" : "s");
    for (int i = 0; i < n; i++) {
        report_buf_printf(b, "%s#%lld", i ? ", " : "", (long long)runs[i].id);
    }
    report_buf_puts(b, ").</p>\n</header>\n");

    report_buf_puts(b, "<section id=\"summary\">\n<h2>Runs side by side</h2>\n");
    runs_table(b, runs, n, metric);
    report_buf_puts(b, "</section>\n");

    /* Learning curves. */
    report_buf_puts(b, "<section id=\"curves\">\n<h2>Learning curves</h2>\n<div class=\"grid\">\n");
    struct {
        const char *id, *metric, *caption;
    } curves[] = {
        {"plot-test-metric", metric, "Test metric at each epoch (round) that evaluates."},
        {"plot-test-loss", "test_loss", "Mean loss on the test split."},
        {"plot-train-loss", "train_loss", "Mean training loss of each epoch."},
    };
    for (size_t k = 0; k < sizeof curves / sizeof curves[0] && status == MPSL_OK; k++) {
        if (k == 1 && !strcmp(metric, "test_loss")) {
            continue;
        }
        char t[160];
        snprintf(t, sizeof t, "%s per epoch", curves[k].metric);
        svg_chart c = {.title = t, .x_label = "epoch (round)",
                       .y_label = report_metric_label(curves[k].metric),
                       .y_unit = report_metric_unit(curves[k].metric), .x_integer = 1,
                       .width = 600, .height = 330};
        figure_open(b, curves[k].id, 0);
        status = report_chart_epochs(db, runs, n, curves[k].metric, &c, b, err);
        figure_close(b, curves[k].caption);
    }
    report_buf_puts(b, "</div>\n</section>\n");

    /* Communication and compute. */
    if (status == MPSL_OK) {
        report_buf_puts(b, "<section id=\"cost\">\n<h2>Communication and compute</h2>\n"
                           "<div class=\"grid\">\n");
        svg_chart cb = {.title = "Cumulative bytes per client (up + down)",
                        .note = "mean over clients, summed over epochs and message kinds",
                        .x_label = "epoch (round)", .y_label = "bytes per client",
                        .y_unit = REPORT_BYTES, .x_integer = 1, .y_zero = 1, .width = 600,
                        .height = 330};
        figure_open(b, "plot-bytes", 0);
        status = report_chart_epochs(db, runs, n, "bytes", &cb, b, err);
        figure_close(b, "Payload bytes the message layer moved, per client, up to the end of "
                        "each epoch. Runs without communication (centralized) have no data.");
        svg_chart cf = {.title = "Client versus server FLOPs",
                        .note = "whole run, forward and backward passes",
                        .y_label = "floating-point operations", .y_unit = REPORT_FLOPS,
                        .y_zero = 1, .width = 600, .height = 330};
        figure_open(b, "plot-flops", 0);
        if (status == MPSL_OK) {
            status = report_chart_flops(runs, n, &cf, b);
        }
        figure_close(b, "Work counted by the kernels for each party. n/a: the run recorded "
                        "no client work.");
        svg_chart ct = {.title = "Time per party",
                        .note = "whole run, measured: computing, and waiting for messages",
                        .y_label = "seconds", .y_unit = REPORT_SECONDS, .y_zero = 1,
                        .width = 600, .height = 330};
        figure_open(b, "plot-time", 0);
        if (status == MPSL_OK) {
            status = report_chart_time(runs, n, &ct, b);
        }
        figure_close(b, "Each party's role: time computing and time waiting for messages. In "
                        "one process the roles take turns on one thread, so a role's wait "
                        "includes the others' compute; over MPI it is time spent waiting for "
                        "the network and the other ranks. n/a: not recorded (clients with no "
                        "role, or runs made before mpsl recorded it).");
        report_buf_puts(b, "</div>\n</section>\n");
    }

    /* Clients. */
    int *group = calloc((size_t)n, sizeof *group);
    if (status == MPSL_OK && !group) {
        status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    if (status == MPSL_OK) {
        report_buf_puts(b, "<section id=\"clients\">\n<h2>Clients</h2>\n<div class=\"grid\">\n");
        svg_chart cs = {.title = "Per-client training accuracy, last epoch",
                        .note = "box: quartiles; whiskers: min and max; dots: clients",
                        .y_label = "train accuracy", .width = 600, .height = 330};
        figure_open(b, "plot-client-spread", 0);
        status = report_chart_client_spread(db, runs, n, "train_acc", &cs, b, err);
        figure_close(b, "Spread of client_metrics train_acc over clients at each run's last "
                        "epoch that has it.");
        if (status == MPSL_OK) {
            status = report_partition_groups(db, runs, n, group, err);
        }
        enum { MAX_PARTITIONS = 8 };
        int drawn = 0, skipped = 0, any = 0;
        for (int i = 0; i < n && status == MPSL_OK; i++) {
            if (group[i] != i) {
                any |= group[i] >= 0;
                continue;
            }
            any = 1;
            if (drawn == MAX_PARTITIONS) {
                skipped++;
                continue;
            }
            char t[96];
            snprintf(t, sizeof t, "Client data: class histogram per client (run #%lld)",
                     (long long)runs[i].id);
            int clients = (int)runs[i].n_clients;
            svg_chart cd = {.title = t, .x_label = "client", .y_label = "training samples",
                            .y_zero = 1, .width = clients > 24 ? 1200 : 600, .height = 330};
            char id[48];
            snprintf(id, sizeof id, "plot-client-data-%lld", (long long)runs[i].id);
            figure_open(b, id, clients > 24);
            status = report_chart_client_data(db, runs, n, group, i, &cd, b, err);
            figure_close(b, "Training samples of each class held by each client (the "
                            "partition). Runs with the same partition share one chart.");
            drawn++;
        }
        if (status == MPSL_OK && !any) {
            svg_chart cd = {.title = "Client data", .width = 600, .height = 200};
            figure_open(b, "plot-client-data", 0);
            svg_no_data(b, &cd, "no run recorded client partitions");
            figure_close(b, "client_data is empty for these runs.");
        }
        if (skipped) {
            report_buf_printf(b, "<p class=\"meta\">%d more distinct partition%s not drawn.</p>\n",
                              skipped, skipped == 1 ? "" : "s");
        }
        report_buf_puts(b, "</div>\n</section>\n");
    }
    free(group);

    if (status == MPSL_OK) {
        report_buf_puts(b, "<footer><p>Epochs are counted from 1, as <code>mpsl run</code> "
                           "prints them (the database counts from 0). Bytes are exact payload "
                           "bytes in decimal units (1 MB = 10<sup>6</sup> bytes); FLOPs are "
                           "those the kernels counted. The figures come from the views "
                           "described in docs/results-schema.md; <code>mpsl show RUN</code> "
                           "has every number, <code>mpsl query</code> answers the rest.</p>"
                           "</footer>\n</main>\n</body>\n</html>\n");
    }
    report_free_runs(runs, n);
    if (status == MPSL_OK && b->oom) {
        status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory building the report");
    }
    return status;
}
