/* charts.c: each figure of a report, read from the database and drawn with svg.c. Run i of
 * a report is palette colour i everywhere, in the table's swatches too. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"
#include "util/util.h"

char *report_run_label(const report_run *r)
{
    return mpsl_strfmt("#%lld %s (%s)", (long long)r->id, r->name, r->method);
}

const char *report_metric_label(const char *metric)
{
    static const struct {
        const char *name, *label;
    } labels[] = {
        {"test_acc", "test accuracy"},     {"test_loss", "test loss"},
        {"train_acc", "train accuracy"},   {"train_loss", "train loss"},
        {"epoch_seconds", "seconds per epoch"}, {"eval_seconds", "evaluation seconds"},
        {"peak_rss_bytes", "peak memory"},  {"bytes", "bytes per client (up + down)"},
        {"bytes_up", "bytes per client, up"}, {"bytes_down", "bytes per client, down"},
    };
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
        if (!strcmp(metric, labels[i].name)) {
            return labels[i].label;
        }
    }
    return metric;
}

int report_chart_epochs(sqlite3 *db, const report_run *runs, int n, const char *metric,
                        const svg_chart *c, report_buf *out, mpsl_error *err)
{
    svg_series *s = calloc((size_t)(n > 0 ? n : 1), sizeof *s);
    char **labels = calloc((size_t)(n > 0 ? n : 1), sizeof *labels);
    int status = s && labels ? MPSL_OK : mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && status == MPSL_OK; i++) {
        double *x = NULL, *y = NULL;
        status = report_load_series(db, runs[i].id, metric, &x, &y, &s[i].n, err);
        s[i].x = x;
        s[i].y = y;
        s[i].color = i;
        labels[i] = report_run_label(&runs[i]);
        s[i].name = labels[i];
        if (status == MPSL_OK && !labels[i]) {
            status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        }
    }
    if (status == MPSL_OK) {
        svg_line_chart(out, c, s, n);
    }
    for (int i = 0; s && labels && i < n; i++) {
        free((void *)s[i].x);
        free((void *)s[i].y);
        free(labels[i]);
    }
    free(s);
    free(labels);
    return status;
}

/* Grouped bars, one group of n_groups values per run (value(run, g); NaN shows as n/a). */
static int bars_per_run(const report_run *runs, int n, const char *const *groups,
                        const int *colors, int n_groups,
                        double (*value)(const report_run *r, int group), const svg_chart *c,
                        report_buf *out)
{
    double *v = calloc((size_t)(n > 0 ? n : 1) * (size_t)n_groups, sizeof *v);
    const char **cats = calloc((size_t)(n > 0 ? n : 1), sizeof *cats);
    char **labels = calloc((size_t)(n > 0 ? n : 1), sizeof *labels);
    int ok = v && cats && labels;
    for (int i = 0; ok && i < n; i++) {
        for (int g = 0; g < n_groups; g++) {
            v[i * n_groups + g] = value(&runs[i], g);
        }
        labels[i] = mpsl_strfmt("#%lld %s", (long long)runs[i].id, runs[i].method);
        cats[i] = labels[i] ? labels[i] : "?";
    }
    if (ok) {
        svg_bar_chart(out, c, cats, n, groups, colors, n_groups, v);
    }
    for (int i = 0; labels && i < n; i++) {
        free(labels[i]);
    }
    free(labels);
    free(cats);
    free(v);
    if (!ok) {
        out->oom = 1;
    }
    return ok ? MPSL_OK : MPSL_ERR_NOMEM;
}

static double flops_value(const report_run *r, int group)
{
    /* A run with no client work recorded (centralized) shows n/a, not a zero bar. */
    int client = isfinite(r->client_flops) && r->client_flops > 0;
    switch (group) {
    case 0: return client ? r->client_flops_per_client : NAN;
    case 1: return client ? r->client_flops : NAN;
    default: return r->server_flops;
    }
}

int report_chart_flops(const report_run *runs, int n, const svg_chart *c, report_buf *out)
{
    static const char *const groups[] = {"client, mean per client", "clients, all together",
                                         "server"};
    static const int colors[] = {0, 3, 1};
    return bars_per_run(runs, n, groups, colors, 3, flops_value, c, out);
}

static double time_value(const report_run *r, int group)
{
    const double v[4] = {r->server_compute_s, r->server_wait_s, r->client_compute_s,
                         r->client_wait_s};
    return v[group];
}

int report_chart_time(const report_run *runs, int n, const svg_chart *c, report_buf *out)
{
    static const char *const groups[] = {"server computing", "server waiting",
                                         "client computing (mean)", "client waiting (mean)"};
    static const int colors[] = {1, 5, 0, 4};
    return bars_per_run(runs, n, groups, colors, 4, time_value, c, out);
}

int report_chart_client_spread(sqlite3 *db, const report_run *runs, int n, const char *metric,
                               const svg_chart *c, report_buf *out, mpsl_error *err)
{
    svg_box *boxes = calloc((size_t)(n > 0 ? n : 1), sizeof *boxes);
    double **vals = calloc((size_t)(n > 0 ? n : 1), sizeof *vals);
    char **labels = calloc((size_t)(n > 0 ? n : 1), sizeof *labels);
    const char **cats = calloc((size_t)(n > 0 ? n : 1), sizeof *cats);
    int *colors = calloc((size_t)(n > 0 ? n : 1), sizeof *colors);
    int status = boxes && vals && labels && cats && colors
                     ? MPSL_OK
                     : mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && status == MPSL_OK; i++) {
        int nv = 0;
        int64_t epoch = -1;
        status = report_load_client_values(db, runs[i].id, metric, &vals[i], &nv, &epoch, err);
        boxes[i] = svg_box_of(vals[i], nv);
        labels[i] = epoch >= 0 ? mpsl_strfmt("#%lld %s, epoch %lld", (long long)runs[i].id,
                                             runs[i].method, (long long)epoch + 1)
                               : mpsl_strfmt("#%lld %s", (long long)runs[i].id, runs[i].method);
        cats[i] = labels[i] ? labels[i] : "?";
        colors[i] = i;
    }
    if (status == MPSL_OK) {
        svg_box_plot(out, c, cats, colors, n, boxes);
    }
    for (int i = 0; vals && labels && i < n; i++) {
        free(vals[i]);
        free(labels[i]);
    }
    free(boxes);
    free(vals);
    free(labels);
    free(cats);
    free(colors);
    return status;
}

int report_partition_groups(sqlite3 *db, const report_run *runs, int n, int *group,
                            mpsl_error *err)
{
    double **counts = calloc((size_t)(n > 0 ? n : 1), sizeof *counts);
    int *nc = calloc((size_t)(n > 0 ? n : 1), sizeof *nc);
    int *nk = calloc((size_t)(n > 0 ? n : 1), sizeof *nk);
    int status = counts && nc && nk ? MPSL_OK
                                    : mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && status == MPSL_OK; i++) {
        status = report_load_client_data(db, runs[i].id, &counts[i], &nc[i], &nk[i], err);
        group[i] = nc[i] > 0 ? i : -1;
        for (int j = 0; status == MPSL_OK && group[i] == i && j < i; j++) {
            if (group[j] == j && nc[j] == nc[i] && nk[j] == nk[i] &&
                !memcmp(counts[j], counts[i], sizeof(double) * (size_t)(nc[i] * nk[i]))) {
                group[i] = j;
            }
        }
    }
    for (int i = 0; counts && i < n; i++) {
        free(counts[i]);
    }
    free(counts);
    free(nc);
    free(nk);
    return status;
}

int report_chart_client_data(sqlite3 *db, const report_run *runs, int n, const int *group,
                             int i, const svg_chart *c, report_buf *out, mpsl_error *err)
{
    double *counts = NULL;
    int nc = 0, nk = 0;
    int status = report_load_client_data(db, runs[i].id, &counts, &nc, &nk, err);
    if (status != MPSL_OK) {
        return status;
    }
    char **cats = calloc((size_t)(nc > 0 ? nc : 1), sizeof *cats);
    char **stacks = calloc((size_t)(nk > 0 ? nk : 1), sizeof *stacks);
    /* The runs sharing this partition, for the note. */
    report_buf who = {0};
    int shared = 0;
    for (int j = 0; j < n; j++) {
        if (group[j] == i) {
            report_buf_printf(&who, "%s#%lld", shared ? ", " : "", (long long)runs[j].id);
            shared++;
        }
    }
    char *note = mpsl_strfmt("%d clients, %d classes; %s %s", nc, nk,
                             shared > 1 ? "the same partition in runs" : "run",
                             who.p ? who.p : "");
    int ok = cats && stacks && note && !who.oom;
    for (int k = 0; ok && k < nc; k++) {
        ok = (cats[k] = mpsl_strfmt("%d", k)) != NULL;
    }
    for (int k = 0; ok && k < nk; k++) {
        ok = (stacks[k] = mpsl_strfmt("class %d", k)) != NULL;
    }
    if (ok) {
        svg_chart cc = *c;
        cc.note = note;
        svg_stacked_bars(out, &cc, (const char *const *)cats, nc,
                         (const char *const *)stacks, nk, counts);
    } else {
        status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; cats && k < nc; k++) {
        free(cats[k]);
    }
    for (int k = 0; stacks && k < nk; k++) {
        free(stacks[k]);
    }
    free(cats);
    free(stacks);
    free(note);
    free(counts);
    report_buf_free(&who);
    return status;
}

int report_plot_svg(sqlite3 *db, const char *db_path, const char *metric, const int64_t *ids,
                    int n, const char *title, report_buf *out, mpsl_error *err)
{
    report_run *runs = NULL;
    int status = report_load_runs(db, db_path, ids, n, "test_acc", &runs, err);
    if (status != MPSL_OK) {
        return status;
    }
    int any = 0;
    for (int i = 0; i < n; i++) {
        any |= report_has_metric(db, ids[i], metric);
    }
    if (!any) {
        char *names = report_metric_names(db, ids, n);
        report_buf which = {0};
        for (int i = 0; i < n && i < 8; i++) {
            report_buf_printf(&which, "%s%lld", i ? ", " : "", (long long)ids[i]);
        }
        status = mpsl_errs(err, MPSL_ERR_INVALID,
                           "no per-epoch figure '%s' in run%s %s%s (they have: %s; or "
                           "bytes, bytes_up, bytes_down)",
                           metric, n > 1 ? "s" : "", which.p ? which.p : "", n > 8 ? ", ..." : "",
                           names && *names ? names : "none");
        report_buf_free(&which);
        free(names);
        report_free_runs(runs, n);
        return status;
    }
    int bytes = !strncmp(metric, "bytes", 5) && (!metric[5] || !strcmp(metric + 5, "_up") ||
                                                  !strcmp(metric + 5, "_down"));
    svg_chart c = {
        .title = title ? title : metric,
        .note = bytes ? "cumulative, mean over clients; the run loop's epochs from 1" : NULL,
        .x_label = "epoch (round)",
        .y_label = report_metric_label(metric),
        .x_unit = REPORT_PLAIN,
        .y_unit = report_metric_unit(metric),
        .x_integer = 1,
        .y_zero = bytes || report_metric_unit(metric) != REPORT_PLAIN,
        .width = 720,
        .height = 400,
        .standalone = 1,
    };
    status = report_chart_epochs(db, runs, n, metric, &c, out, err);
    report_free_runs(runs, n);
    if (status == MPSL_OK && out->oom) {
        status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory drawing %s", metric);
    }
    return status;
}
