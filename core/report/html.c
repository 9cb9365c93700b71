/* html.c: the report page, as one HTML file with inline CSS and inline SVG: a section per
 * task (classification, retrieval) with its groups table, learning curves, the test metric
 * against bytes, wall time and estimated communication time, time to a target and the config
 * keys that differ; MPSL's tokenizer drift where runs recorded it (strategy.diagnostics);
 * then communication and compute, clients, and every run side by side.
 * No script, no external resource: it opens the same offline, in a mail attachment or from a
 * CI artifact, and prints (a print stylesheet: white background, figures kept whole, table
 * headers repeated). The page is also well-formed XML (void elements closed, only XML's
 * entities), which lets the tests check its structure and escaping with an XML parser. */
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
    ".grid.small{grid-template-columns:repeat(auto-fit,minmax(380px,1fr));margin-bottom:16px}\n"
    "table.groups,table.target,table.config-diff,table.drift{border-collapse:collapse;"
    "font-size:12px;width:100%}\n"
    "table.groups th,table.groups td,table.target th,table.target td,table.config-diff th,"
    "table.config-diff td,table.drift th,table.drift td{padding:5px;border-bottom:1px solid #eee;"
    "white-space:nowrap;text-align:left}\n"
    "table.groups th,table.target th,table.config-diff th,table.drift th{background:#eef0f5;"
    "font-weight:600;vertical-align:bottom;white-space:normal}\n"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    "table td.name{white-space:normal;min-width:120px;max-width:260px;overflow-wrap:anywhere}\n"
    "td.key{font-family:'DejaVu Sans Mono',monospace;font-size:11px}\n"
    "table.config-diff td{white-space:normal;max-width:320px;overflow-wrap:anywhere}\n"
    "td.not-reached{color:#8a6d00}\n"
    "span.n{color:#777}\n"
    "a{color:#2a5db0}\n"
    "p.lead{font-size:13px;color:#444;margin:0 0 10px;max-width:980px}\n"
    "h3{font-size:15px;margin:18px 0 8px}\n"
    "figure{margin:0;background:#fff;border:1px solid #dde;border-radius:6px;padding:8px}\n"
    "figure svg{width:100%;height:auto;display:block}\n"
    "figure.wide{grid-column:1/-1}\n"
    "figcaption{font-size:12px;color:#555;padding:4px 6px 2px}\n"
    "footer{color:#666;font-size:12px;margin-top:28px}\n"
    ".status-failed,.status-interrupted{color:#b3261e;font-weight:600}\n"
    ".status-running{color:#8a6d00}\n"
    /* Paper: white, every figure whole on its page, one figure per row, headers repeated. */
    "@media print{@page{margin:12mm}\n"
    "body{background:#fff;padding:0;font-size:11px}\n"
    "main{max-width:none}\n"
    ".scroll{overflow:visible;border:none}\n"
    ".grid,.grid.small{display:block}\n"
    "figure{break-inside:avoid;page-break-inside:avoid;border:1px solid #ccc;margin:0 0 10px}\n"
    "h2,h3{break-after:avoid;page-break-after:avoid}\n"
    "thead{display:table-header-group}\n"
    "tr{break-inside:avoid;page-break-inside:avoid}\n"
    /* Wide tables fit the page: small type, tight cells, numbers allowed to wrap. */
    "table.runs,table.groups,table.target,table.config-diff,table.drift{font-size:7.5px}\n"
    "table.runs th,table.runs td,table.groups th,table.groups td,table.target th,"
    "table.target td,table.config-diff th,table.config-diff td,table.drift th,"
    "table.drift td{padding:2px 3px;white-space:normal;min-width:0}\n"
    "table.runs th,table.groups th,table.target th,table.config-diff th,table.drift th{"
    "background:#fff;border-bottom:1px solid #999}\n"
    ".meta code{background:none}\n"
    "a{color:inherit;text-decoration:none}}\n";

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

static void runs_table(report_buf *b, const report_run *runs, int n, const int *color,
                       const char *metric)
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
                          (long long)r->id, svg_color(color[i]), (long long)r->id);
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

/* The figures and tables of one task's groups. */
typedef struct task_section {
    const char *id;        /* element id prefix: "" for classification, "retrieval-" */
    const char *title;
    const char *metric;    /* the headline test metric */
    const char *metric_label;
} task_section;

/* A figure of the headline metric against x, in its own <figure>. */
static int figure_lines(report_buf *b, const report_view *v, const char *id, const char *metric,
                        const char *ylabel, report_xaxis x, const char *title, const char *note,
                        const char *caption, int small, mpsl_error *err)
{
    svg_chart c = {.title = title, .note = note, .x_label = report_xaxis_label(x),
                   .y_label = ylabel, .y_unit = report_metric_unit(metric),
                   .x_integer = x == REPORT_X_EPOCH || x == REPORT_X_STEP,
                   .width = small ? 420 : 600, .height = small ? 280 : 330,
                   .y_scale = SVG_AUTO};
    char xlabel[160];
    switch (x) {
    case REPORT_X_BYTES:
        c.x_unit = REPORT_BYTES;
        c.x_scale = SVG_LOG;
        break;
    case REPORT_X_COMM:
        snprintf(xlabel, sizeof xlabel, "%s (%g Mbit/s up, %g down)", report_xaxis_label(x),
                 v->link.up_mbps, v->link.down_mbps);
        c.x_label = xlabel;
        c.x_unit = REPORT_SECONDS;
        c.x_scale = SVG_LOG;
        break;
    case REPORT_X_SECONDS:
    case REPORT_X_SIM:
        c.x_unit = REPORT_SECONDS;
        c.x_scale = SVG_AUTO;
        break;
    default: break;
    }
    figure_open(b, id, 0);
    int status = report_chart_lines(v, metric, x, &c, b, err);
    figure_close(b, caption);
    return status;
}

/* 1 when any run of the view has step figures of `name`. */
static int view_has_steps(const report_view *v, const char *name)
{
    for (int i = 0; i < v->ngroups; i++) {
        for (int m = 0; m < v->groups[i]->n; m++) {
            if (report_has_points(v->db, v->runs[v->groups[i]->members[m]].id, name,
                                  REPORT_X_STEP)) {
                return 1;
            }
        }
    }
    return 0;
}

/* 1 when some group of the view has two runs or more (so lines are means with bands). */
static int view_has_repeats(const report_view *v)
{
    for (int i = 0; i < v->ngroups; i++) {
        if (v->groups[i]->n >= 2) {
            return 1;
        }
    }
    return 0;
}

static int task_html(report_buf *b, const report_view *v, const task_section *t,
                     const report_options *o, mpsl_error *err)
{
    char id[96], title[200], note[160];
    int repeats = view_has_repeats(v);
    snprintf(note, sizeof note, "lines: each group's mean; band: %s over its runs",
             report_band_label(v->band));
    const char *band_note = repeats && v->band != REPORT_BAND_NONE ? note : NULL;
    report_buf_printf(b, "<section id=\"%s\">\n<h2>", *t->id ? "retrieval" : "classification");
    report_buf_escape(b, t->title, 0);
    report_buf_puts(b, "</h2>\n<p class=\"lead\">");
    int nruns = 0;
    for (int i = 0; i < v->ngroups; i++) {
        nruns += v->groups[i]->n;
    }
    report_buf_printf(b, "%d run%s in %d group%s (runs that differ only by seed form a group, "
                      "unless --group-by says otherwise). Each figure is the mean over a "
                      "group's runs; a group of two or more runs has a band of %s. Figures "
                      "are <em>mean \xC2\xB1 sd (n)</em> in the table.</p>\n",
                      nruns, nruns == 1 ? "" : "s", v->ngroups, v->ngroups == 1 ? "" : "s",
                      v->band == REPORT_BAND_CI95 ? "the 95% confidence interval of the mean "
                                                    "(Student t)"
                      : v->band == REPORT_BAND_NONE ? "none (--band none)"
                                                    : "\xC2\xB1 one sample standard deviation");
    /* The groups' figures. */
    static const char *const retrieval_metrics[] = {"recall_i2t_1", "recall_i2t_5",
                                                    "recall_i2t_10", "recall_t2i_1",
                                                    "recall_t2i_5", "recall_t2i_10",
                                                    "test_loss"};
    const char *cls_metrics[2] = {t->metric, "test_loss"};
    int status = *t->id
                     ? report_table_groups(v, retrieval_metrics, 7, b, err)
                     : report_table_groups(v, cls_metrics, strcmp(t->metric, "test_loss") ? 2 : 1,
                                           b, err);
    /* Retrieval: recall@1, @5, @10 each way, one small chart each. */
    if (status == MPSL_OK && *t->id) {
        report_buf_puts(b, "<h3>Recall at 1, 5 and 10</h3>\n<div class=\"grid small\">\n");
        for (int k = 0; k < 6 && status == MPSL_OK; k++) {
            const char *m = retrieval_metrics[k];
            snprintf(id, sizeof id, "plot-%s", m);
            snprintf(title, sizeof title, "%s per epoch", report_metric_label(m));
            status = figure_lines(b, v, id, m, "recall", REPORT_X_EPOCH, title, band_note,
                                  k < 3 ? "Image to text: the share of images whose own caption "
                                          "is among the top K texts."
                                        : "Text to image: the share of captions whose own image "
                                          "is among the top K images.", 1, err);
        }
        report_buf_puts(b, "</div>\n");
    }
    if (status == MPSL_OK) {
        report_buf_puts(b, "<h3>Learning curves</h3>\n<div class=\"grid\">\n");
    }
    struct {
        const char *id, *metric, *caption;
        report_xaxis x;
    } curves[] = {
        {"plot-test-metric", t->metric, "Test metric at each epoch (round) that evaluates.",
         REPORT_X_EPOCH},
        {"plot-test-loss", "test_loss", "Mean loss on the test split.", REPORT_X_EPOCH},
        {"plot-train-loss", "train_loss", "Mean training loss of each epoch.", REPORT_X_EPOCH},
        {"plot-train-loss-steps", "train_loss", "Training loss every metrics.every_steps steps "
         "(step_metrics); x counts the steps of earlier epochs too.", REPORT_X_STEP},
    };
    for (size_t k = 0; k < sizeof curves / sizeof curves[0] && status == MPSL_OK; k++) {
        if ((k == 1 && !strcmp(t->metric, "test_loss")) ||
            (curves[k].x == REPORT_X_STEP && !view_has_steps(v, "train_loss"))) {
            continue;
        }
        snprintf(id, sizeof id, "%s%s", t->id, curves[k].id);
        snprintf(title, sizeof title, "%s per %s", k == 0 ? t->metric_label : curves[k].metric,
                 curves[k].x == REPORT_X_STEP ? "training step" : "epoch");
        status = figure_lines(b, v, id, curves[k].metric,
                              k == 0 ? t->metric_label : report_metric_label(curves[k].metric),
                              curves[k].x, title, band_note, curves[k].caption, 0, err);
    }
    if (status == MPSL_OK) {
        report_buf_puts(b, "</div>\n<h3>Cost of the result</h3>\n<div class=\"grid\">\n");
    }
    /* The paper figures: the metric against what it cost. */
    char caption[400];
    struct {
        const char *id, *what;
        report_xaxis x;
    } costs[] = {
        {"plot-metric-bytes", "bytes per client", REPORT_X_BYTES},
        {"plot-metric-time", "wall time", REPORT_X_SECONDS},
        {"plot-metric-comm", "estimated communication time", REPORT_X_COMM},
    };
    for (size_t k = 0; k < sizeof costs / sizeof costs[0] && status == MPSL_OK; k++) {
        snprintf(id, sizeof id, "%s%s", t->id, costs[k].id);
        snprintf(title, sizeof title, "%s against %s", t->metric_label, costs[k].what);
        if (costs[k].x == REPORT_X_BYTES) {
            snprintf(caption, sizeof caption, "Payload bytes per client (up + down, mean over "
                     "clients) up to the end of each epoch, on a log axis. Runs without "
                     "communication (centralized) have no data.");
        } else if (costs[k].x == REPORT_X_SECONDS) {
            snprintf(caption, sizeof caption, "Wall time: the sum of the epochs' "
                     "epoch_seconds up to each epoch.");
        } else {
            snprintf(caption, sizeof caption, "A link model instead of the measured time: "
                     "each client's bytes up at %g Mbit/s plus its bytes down at %g Mbit/s, "
                     "summed over epochs (--link-mbps). Computation is not counted.",
                     v->link.up_mbps, v->link.down_mbps);
        }
        status = figure_lines(b, v, id, t->metric, t->metric_label, costs[k].x, title,
                              band_note, caption, 0, err);
    }
    if (status == MPSL_OK) {
        report_buf_puts(b, "</div>\n");
        snprintf(id, sizeof id, "%starget", t->id);
        report_buf_printf(b, "<h3 id=\"%s\">Time to target</h3>\n", id);
        if (isfinite(o->target)) {
            report_buf_printf(b, "<p class=\"lead\">Until %s first reaches %g (%s): epochs, "
                              "wall time, bytes per client and estimated communication time, "
                              "mean \xC2\xB1 sd over the runs that reach it.</p>\n",
                              t->metric_label, o->target,
                              report_metric_lower_better(t->metric) ? "at most" : "at least");
            status = report_table_target(v, t->metric, o->target, b, err);
        } else {
            report_buf_puts(b, "<p class=\"meta\">mpsl report --target VALUE tabulates the "
                               "epochs, time and bytes each group needs to reach VALUE.</p>\n");
        }
    }
    if (status == MPSL_OK) {
        snprintf(id, sizeof id, "%sconfig-diff", t->id);
        report_buf_printf(b, "<h3 id=\"%s\">How the configurations differ</h3>\n", id);
        status = report_table_config_diff(v, b, err);
    }
    report_buf_puts(b, "</section>\n");
    return status;
}

/* 1 when some run of group g recorded MPSL's drift diagnostics. */
static int group_has_drift(const report_view *v, const report_group *g)
{
    for (int m = 0; m < g->n; m++) {
        int64_t id = v->runs[g->members[m]].id;
        if (report_has_points(v->db, id, "tokenizer_drift_mean", REPORT_X_EPOCH) ||
            report_has_points(v->db, id, "own_tokenizer_test_acc_mean", REPORT_X_EPOCH)) {
            return 1;
        }
    }
    return 0;
}

/* MPSL's tokenizer-drift diagnostics (strategy.diagnostics): per group that recorded them,
 * the clients' drift and their own tokenizers' test accuracy per epoch, then the last
 * epoch's cross accuracy. Nothing when no run recorded them. */
static int drift_html(report_buf *b, const report_view *v, mpsl_error *err)
{
    const report_group **with = calloc((size_t)(v->ngroups > 0 ? v->ngroups : 1), sizeof *with);
    if (!with) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    int nw = 0;
    for (int g = 0; g < v->ngroups; g++) {
        if (group_has_drift(v, v->groups[g])) {
            with[nw++] = v->groups[g];
        }
    }
    if (nw == 0) {
        free(with);
        return MPSL_OK;
    }
    report_buf_puts(b, "<section id=\"tokenizer-drift\">\n<h2>Tokenizer drift (MPSL)</h2>\n"
                       "<p class=\"lead\">MPSL runs with <code>strategy.diagnostics: true</code> "
                       "measure, in each epoch that evaluates, how far each client's tokenizer "
                       "has moved from the clients' sample-weighted average "
                       "(<code>tokenizer_drift</code>: \xE2\x80\x96t<sub>k</sub> \xE2\x88\x92 "
                       "t\xCC\x84\xE2\x80\x96 / \xE2\x80\x96t\xCC\x84\xE2\x80\x96) and how "
                       "well each client's own tokenizer does with the server's encoder and "
                       "head on the test split, against the averaged tokenizers that "
                       "<code>test_acc</code> evaluates. Lines: the mean over a group's runs; "
                       "bands: the clients' minimum to maximum. Groups without diagnostics are "
                       "left out; docs/architecture.md, \"MPSL diagnostics\", has the "
                       "definitions.</p>\n<div class=\"grid\">\n");
    int status = MPSL_OK;
    for (int g = 0; g < nw && status == MPSL_OK; g++) {
        report_view one = *v;
        one.groups = &with[g];
        one.ngroups = 1;
        char id[64], title[300], note[300];
        snprintf(note, sizeof note, "%s%s", with[g]->legend,
                 "; band: the clients' min to max");
        snprintf(title, sizeof title, "Tokenizer drift per epoch");
        static const report_line_spec drift[] = {
            {"tokenizer_drift_mean", "tokenizer_drift_min", "tokenizer_drift_max",
             "tokenizer_drift, mean over clients", 0},
        };
        svg_chart cd = {.title = title, .note = note, .x_label = "epoch (round)",
                        .y_label = "relative distance from the average",
                        .x_integer = 1, .y_zero = 1, .width = 600, .height = 330,
                        .y_scale = SVG_LINEAR};
        snprintf(id, sizeof id, "plot-drift-%d", with[g]->color);
        figure_open(b, id, 0);
        status = report_chart_figures(&one, drift, 1, &cd, b, err);
        figure_close(b, "Relative distance of each client's tokenizer parameters from their "
                        "sample-weighted average, before any tokenizer sync: "
                        "tokenizer_drift_mean, band tokenizer_drift_min to _max.");
        static const report_line_spec acc[] = {
            {"own_tokenizer_test_acc_mean", "own_tokenizer_test_acc_min",
             "own_tokenizer_test_acc_max", "own tokenizer, test (mean over clients)", 0},
            {"test_acc", NULL, NULL, "averaged tokenizers, test (test_acc)", 1},
            {"train_acc_avg_tokenizer", NULL, NULL,
             "averaged tokenizers, clients' train data", 2},
        };
        svg_chart ca = {.title = "Own-tokenizer accuracy per epoch", .note = note,
                        .x_label = "epoch (round)", .y_label = "accuracy", .x_integer = 1,
                        .width = 600, .height = 330, .y_scale = SVG_LINEAR};
        snprintf(id, sizeof id, "plot-own-acc-%d", with[g]->color);
        if (status == MPSL_OK) {
            figure_open(b, id, 0);
            status = report_chart_figures(&one, acc, 3, &ca, b, err);
            figure_close(b, "Each client's own tokenizer with the server's encoder and head "
                            "on the test split (own_tokenizer_test_acc: mean, band min to "
                            "max), beside the averaged tokenizers on the test split "
                            "(test_acc) and on the clients' training samples "
                            "(train_acc_avg_tokenizer).");
        }
    }
    if (status == MPSL_OK) {
        report_view sel = *v;
        sel.groups = with;
        sel.ngroups = nw;
        report_buf_puts(b, "</div>\n<h3 id=\"drift-cross\">Cross accuracy, last epoch</h3>\n"
                           "<p class=\"lead\">At each run's last epoch with diagnostics: each "
                           "client's own tokenizer on its own training sample "
                           "(<code>cross_acc_own</code>) against the other clients' tokenizers "
                           "on it (<code>cross_acc_others</code>), weighted by partition size "
                           "(<code>diagnostics_cross</code>; <code>mpsl show RUN</code> has the "
                           "per-client matrix).</p>\n");
        status = report_table_drift(&sel, b, err);
    } else {
        report_buf_puts(b, "</div>\n");
    }
    report_buf_puts(b, "</section>\n");
    free(with);
    return status;
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
    report_group *groups = NULL;
    int ng = 0;
    status = report_make_groups(db, runs, n, o ? o->group_by : NULL, &groups, &ng, err);
    const report_group **all = calloc((size_t)(ng > 0 ? ng : 1), sizeof *all);
    int *color = calloc((size_t)n, sizeof *color);
    if (status == MPSL_OK && (!all || !color)) {
        status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    if (status != MPSL_OK) {
        free(all);
        free(color);
        report_free_groups(groups, ng);
        report_free_runs(runs, n);
        return status;
    }
    int ncls = 0;
    for (int g = 0; g < ng; g++) {
        all[g] = &groups[g];
        ncls += !groups[g].retrieval;
        for (int m = 0; m < groups[g].n; m++) {
            color[groups[g].members[m]] = groups[g].color;
        }
    }
    report_view view = {.db = db, .runs = runs, .groups = all, .ngroups = ng,
                        .band = o ? o->band : REPORT_BAND_SD,
                        .link = {REPORT_LINK_UP_MBPS, REPORT_LINK_DOWN_MBPS}};
    if (o && o->link.up_mbps > 0 && o->link.down_mbps > 0) {
        view.link = o->link;
    }
    report_options opts = o ? *o : (report_options){.target = NAN};
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
        report_buf_printf(b, "%s<a href=\"#run-%lld\">#%lld</a>", i ? ", " : "",
                          (long long)runs[i].id, (long long)runs[i].id);
    }
    report_buf_printf(b, ") in %d group%s.</p>\n</header>\n", ng, ng == 1 ? "" : "s");

    /* One section per task: a retrieval run's test_acc (the mean R@1) is no accuracy to draw
     * next to classifiers'. */
    char label[160];
    snprintf(label, sizeof label, "%s", report_metric_label(metric));
    task_section cls = {"", "Classification", metric, label};
    task_section ret = {"retrieval-", "Retrieval", "test_acc", "mean recall@1 (both ways)"};
    report_view part = view;
    if (ncls > 0) {
        part.groups = all;
        part.ngroups = ncls;
        status = task_html(b, &part, &cls, &opts, err);
    }
    if (status == MPSL_OK && ncls < ng) {
        part.groups = all + ncls;
        part.ngroups = ng - ncls;
        status = task_html(b, &part, &ret, &opts, err);
    }

    if (status == MPSL_OK) {
        status = drift_html(b, &view, err);
    }

    /* Communication and compute, every group. */
    if (status == MPSL_OK) {
        report_buf_puts(b, "<section id=\"cost\">\n<h2>Communication and compute</h2>\n"
                           "<div class=\"grid\">\n");
        svg_chart cb = {.title = "Cumulative bytes per client (up + down)",
                        .note = "mean over clients, summed over epochs and message kinds",
                        .x_label = "epoch (round)", .y_label = "bytes per client",
                        .y_unit = REPORT_BYTES, .x_integer = 1, .y_zero = 1, .width = 600,
                        .height = 330, .y_scale = SVG_AUTO};
        figure_open(b, "plot-bytes", 0);
        status = report_chart_lines(&view, "bytes", REPORT_X_EPOCH, &cb, b, err);
        figure_close(b, "Payload bytes the message layer moved, per client, up to the end of "
                        "each epoch (log scale when groups differ by more than 100 times). "
                        "Runs without communication (centralized) have no data. A line that "
                        "would hide another (FedAvg and FedProx send the same bytes) is "
                        "dashed and named \"same as\" in the legend.");
        svg_chart cf = {.title = "Client versus server FLOPs",
                        .note = "whole run, forward and backward passes; mean of a group's runs",
                        .y_label = "floating-point operations", .y_unit = REPORT_FLOPS,
                        .y_zero = 1, .width = 600, .height = 330, .y_scale = SVG_AUTO};
        figure_open(b, "plot-flops", 0);
        if (status == MPSL_OK) {
            status = report_chart_flops(&view, &cf, b);
        }
        figure_close(b, "Work counted by the kernels for each party (log scale when the bars "
                        "differ by more than 100 times). n/a: the run recorded no client "
                        "work.");
        svg_chart ct = {.title = "Time per party",
                        .note = "whole run, measured: computing, and waiting for messages",
                        .y_label = "seconds", .y_unit = REPORT_SECONDS, .y_zero = 1,
                        .width = 600, .height = 330, .y_scale = SVG_AUTO};
        figure_open(b, "plot-time", 0);
        if (status == MPSL_OK) {
            status = report_chart_time(&view, &ct, b);
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
        status = report_chart_client_spread(&view, "train_acc", &cs, b, err);
        figure_close(b, "Spread of client_metrics train_acc over the clients of each group's "
                        "runs, each at its run's last epoch that has it.");
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
            char fid[48];
            snprintf(fid, sizeof fid, "plot-client-data-%lld", (long long)runs[i].id);
            figure_open(b, fid, clients > 24);
            status = report_chart_client_data(db, runs, n, group, i, &cd, b, err);
            figure_close(b, "Training samples of each class held by each client (the "
                            "partition), classes named as the dataset names them. Runs with "
                            "the same partition share one chart.");
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
        report_buf_puts(b, "<section id=\"summary\">\n<h2>Runs side by side</h2>\n");
        runs_table(b, runs, n, color, metric);
        report_buf_puts(b, "</section>\n");
        report_buf_puts(b, "<footer><p>Epochs are counted from 1, as <code>mpsl run</code> "
                           "prints them (the database counts from 0). Bytes are exact payload "
                           "bytes in decimal units (1 MB = 10<sup>6</sup> bytes); FLOPs are "
                           "those the kernels counted. mean \xC2\xB1 sd: the mean over a "
                           "group's runs and their sample standard deviation; (n): how many "
                           "runs have the figure. The figures come from the views described "
                           "in docs/results-schema.md; <code>mpsl show RUN</code> has every "
                           "number, <code>mpsl query</code> answers the rest.</p>"
                           "</footer>\n</main>\n</body>\n</html>\n");
    }
    free(all);
    free(color);
    report_free_groups(groups, ng);
    report_free_runs(runs, n);
    if (status == MPSL_OK && b->oom) {
        status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory building the report");
    }
    return status;
}
