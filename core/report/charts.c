/* charts.c: each figure of a report, read from the database and drawn with svg.c. Run i of
 * a report is palette colour i everywhere, in the table's swatches too. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"
#include "util/util.h"

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
        {"recall_i2t_1", "recall@1, image to text"}, {"recall_i2t_5", "recall@5, image to text"},
        {"recall_i2t_10", "recall@10, image to text"}, {"recall_t2i_1", "recall@1, text to image"},
        {"recall_t2i_5", "recall@5, text to image"}, {"recall_t2i_10", "recall@10, text to image"},
    };
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
        if (!strcmp(metric, labels[i].name)) {
            return labels[i].label;
        }
    }
    return metric;
}

int report_metric_lower_better(const char *metric)
{
    return strstr(metric, "loss") || strstr(metric, "error");
}

int report_chart_lines(const report_view *v, const char *metric, report_xaxis x,
                       const svg_chart *c, report_buf *out, mpsl_error *err)
{
    int ng = v->ngroups;
    svg_series *s = calloc((size_t)(ng > 0 ? ng : 1), sizeof *s);
    report_merged *m = calloc((size_t)(ng > 0 ? ng : 1), sizeof *m);
    int status = s && m ? MPSL_OK : mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    for (int g = 0; g < ng && status == MPSL_OK; g++) {
        const report_group *grp = v->groups[g];
        report_points *pts = calloc((size_t)grp->n, sizeof *pts);
        if (!pts) {
            status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
            break;
        }
        for (int k = 0; k < grp->n && status == MPSL_OK; k++) {
            status = report_load_points(v->db, v->runs[grp->members[k]].id, metric, x, &v->link,
                                        &pts[k], err);
        }
        if (status == MPSL_OK && report_merge_points(pts, grp->n, v->band, &m[g]) != MPSL_OK) {
            status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        }
        for (int k = 0; k < grp->n; k++) {
            report_points_free(&pts[k]);
        }
        free(pts);
        int band = grp->n >= 2 && v->band != REPORT_BAND_NONE;
        s[g] = (svg_series){.name = grp->legend, .color = grp->color, .x = m[g].x, .y = m[g].y,
                            .n = m[g].n, .lo = band ? m[g].lo : NULL,
                            .hi = band ? m[g].hi : NULL, .style = grp->color};
    }
    if (status == MPSL_OK) {
        svg_line_chart(out, c, s, ng);
    }
    for (int g = 0; m && g < ng; g++) {
        report_merged_free(&m[g]);
    }
    free(m);
    free(s);
    return status;
}

/* Grouped bars, one category per report group: nbars values, value(run, bar) averaged over
 * the group's runs that have it (NaN when none: drawn as n/a). */
static int bars_per_group(const report_view *v, const char *const *bars, const int *colors,
                          int nbars, double (*value)(const report_run *r, int bar),
                          const svg_chart *c, report_buf *out)
{
    int n = v->ngroups;
    double *vals = calloc((size_t)(n > 0 ? n : 1) * (size_t)nbars, sizeof *vals);
    const char **cats = calloc((size_t)(n > 0 ? n : 1), sizeof *cats);
    int ok = vals && cats;
    for (int i = 0; ok && i < n; i++) {
        const report_group *g = v->groups[i];
        for (int b = 0; b < nbars; b++) {
            double sum = 0;
            int k = 0;
            for (int m = 0; m < g->n; m++) {
                double x = value(&v->runs[g->members[m]], b);
                if (isfinite(x)) {
                    sum += x;
                    k++;
                }
            }
            vals[i * nbars + b] = k ? sum / k : NAN;
        }
        cats[i] = g->legend;
    }
    if (ok) {
        svg_bar_chart(out, c, cats, n, bars, colors, nbars, vals);
    }
    free(cats);
    free(vals);
    if (!ok) {
        out->oom = 1;
    }
    return ok ? MPSL_OK : MPSL_ERR_NOMEM;
}

static double flops_value(const report_run *r, int bar)
{
    /* A run with no client work recorded (centralized) shows n/a, not a zero bar. */
    int client = isfinite(r->client_flops) && r->client_flops > 0;
    switch (bar) {
    case 0: return client ? r->client_flops_per_client : NAN;
    case 1: return client ? r->client_flops : NAN;
    default: return r->server_flops;
    }
}

int report_chart_flops(const report_view *v, const svg_chart *c, report_buf *out)
{
    static const char *const bars[] = {"client, mean per client", "clients, all together",
                                       "server"};
    static const int colors[] = {0, 3, 1};
    return bars_per_group(v, bars, colors, 3, flops_value, c, out);
}

static double time_value(const report_run *r, int bar)
{
    const double v[4] = {r->server_compute_s, r->server_wait_s, r->client_compute_s,
                         r->client_wait_s};
    return v[bar];
}

int report_chart_time(const report_view *v, const svg_chart *c, report_buf *out)
{
    static const char *const bars[] = {"server computing", "server waiting",
                                       "client computing (mean)", "client waiting (mean)"};
    static const int colors[] = {1, 5, 0, 4};
    return bars_per_group(v, bars, colors, 4, time_value, c, out);
}

int report_chart_client_spread(const report_view *v, const char *metric, const svg_chart *c,
                               report_buf *out, mpsl_error *err)
{
    int n = v->ngroups;
    svg_box *boxes = calloc((size_t)(n > 0 ? n : 1), sizeof *boxes);
    double **vals = calloc((size_t)(n > 0 ? n : 1), sizeof *vals);
    const char **cats = calloc((size_t)(n > 0 ? n : 1), sizeof *cats);
    int *colors = calloc((size_t)(n > 0 ? n : 1), sizeof *colors);
    int status = boxes && vals && cats && colors
                     ? MPSL_OK
                     : mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && status == MPSL_OK; i++) {
        /* The clients of every run of the group, each at its run's last epoch. */
        const report_group *g = v->groups[i];
        int nv = 0;
        for (int m = 0; m < g->n && status == MPSL_OK; m++) {
            double *one = NULL;
            int k = 0;
            int64_t epoch = -1;
            status = report_load_client_values(v->db, v->runs[g->members[m]].id, metric, &one,
                                               &k, &epoch, err);
            if (status == MPSL_OK && k > 0) {
                double *all = realloc(vals[i], (size_t)(nv + k) * sizeof *all);
                if (all) {
                    memcpy(all + nv, one, (size_t)k * sizeof *all);
                    vals[i] = all;
                    nv += k;
                } else {
                    status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
                }
            }
            free(one);
        }
        boxes[i] = svg_box_of(vals[i], nv);
        cats[i] = g->legend;
        colors[i] = g->color;
    }
    if (status == MPSL_OK) {
        svg_box_plot(out, c, cats, colors, n, boxes);
    }
    for (int i = 0; vals && i < n; i++) {
        free(vals[i]);
    }
    free(boxes);
    free(vals);
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
    /* The dataset's own names where the run stored them, "class k" past them. */
    char **names = NULL;
    int nnames = 0;
    status = report_load_class_names(db, runs[i].id, &names, &nnames, err);
    int ok = cats && stacks && note && !who.oom;
    for (int k = 0; status == MPSL_OK && ok && k < nc; k++) {
        ok = (cats[k] = mpsl_strfmt("%d", k)) != NULL;
    }
    for (int k = 0; status == MPSL_OK && ok && k < nk; k++) {
        ok = (stacks[k] = k < nnames && *names[k] ? mpsl_strdup(names[k])
                                                  : mpsl_strfmt("class %d", k)) != NULL;
    }
    report_free_names(names, nnames);
    if (status == MPSL_OK && ok) {
        svg_chart cc = *c;
        cc.note = note;
        svg_stacked_bars(out, &cc, (const char *const *)cats, nc,
                         (const char *const *)stacks, nk, counts);
    } else if (status == MPSL_OK) {
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

/* A group's merged mean of one figure (no band). */
static int group_mean(const report_view *v, const report_group *grp, const char *metric,
                      report_merged *m, mpsl_error *err)
{
    report_points *pts = calloc((size_t)(grp->n > 0 ? grp->n : 1), sizeof *pts);
    int status = pts ? MPSL_OK : mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    for (int k = 0; k < grp->n && status == MPSL_OK; k++) {
        status = report_load_points(v->db, v->runs[grp->members[k]].id, metric, REPORT_X_EPOCH,
                                    &v->link, &pts[k], err);
    }
    if (status == MPSL_OK && report_merge_points(pts, grp->n, REPORT_BAND_NONE, m) != MPSL_OK) {
        status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; pts && k < grp->n; k++) {
        report_points_free(&pts[k]);
    }
    free(pts);
    return status;
}

int report_chart_figures(const report_view *v, const report_line_spec *lines, int nlines,
                         const svg_chart *c, report_buf *out, mpsl_error *err)
{
    int ns = v->ngroups * nlines;
    svg_series *s = calloc((size_t)(ns > 0 ? ns : 1), sizeof *s);
    report_merged *m = calloc((size_t)(ns > 0 ? ns : 1) * 3, sizeof *m);
    char **names = calloc((size_t)(ns > 0 ? ns : 1), sizeof *names);
    int status = s && m && names ? MPSL_OK : mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    for (int g = 0; g < v->ngroups && status == MPSL_OK; g++) {
        const report_group *grp = v->groups[g];
        for (int k = 0; k < nlines && status == MPSL_OK; k++) {
            int i = g * nlines + k;
            report_merged *mean = &m[3 * i], *lo = &m[3 * i + 1], *hi = &m[3 * i + 2];
            status = group_mean(v, grp, lines[k].metric, mean, err);
            if (status == MPSL_OK && lines[k].lo && lines[k].hi) {
                status = group_mean(v, grp, lines[k].lo, lo, err);
                if (status == MPSL_OK) {
                    status = group_mean(v, grp, lines[k].hi, hi, err);
                }
            }
            /* The band where min and max have the mean's epochs, else none. */
            int band = status == MPSL_OK && lo->n == mean->n && hi->n == mean->n && mean->n > 0;
            for (int p = 0; band && p < mean->n; p++) {
                band = lo->x[p] == mean->x[p] && hi->x[p] == mean->x[p];
            }
            names[i] = v->ngroups > 1 ? mpsl_strfmt("%s: %s", grp->legend, lines[k].name)
                                      : mpsl_strdup(lines[k].name);
            if (status == MPSL_OK && !names[i]) {
                status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
            }
            s[i] = (svg_series){.name = names[i], .color = grp->color, .x = mean->x,
                                .y = mean->y, .n = mean->n, .lo = band ? lo->y : NULL,
                                .hi = band ? hi->y : NULL, .style = lines[k].style};
        }
    }
    if (status == MPSL_OK) {
        svg_line_chart(out, c, s, ns);
    }
    for (int i = 0; m && i < 3 * ns; i++) {
        report_merged_free(&m[i]);
    }
    for (int i = 0; names && i < ns; i++) {
        free(names[i]);
    }
    free(names);
    free(m);
    free(s);
    return status;
}
