/* plot.c: `mpsl plot`'s one figure as a standalone SVG (report.h), and its refusal of a
 * figure no given run recorded. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "report/report.h"
#include "util/util.h"

/* MPSL_ERR_INVALID: no run has the figure. Names the runs, the closest name they have, and
 * every name they have; for steps, the setting that records them. */
static int refuse(sqlite3 *db, const int64_t *ids, int n, const report_plot_options *o,
                  mpsl_error *err)
{
    int steps = o->x == REPORT_X_STEP;
    char **names = NULL;
    int count = 0;
    int status = report_metric_list(db, ids, n, steps, &names, &count, err);
    if (status != MPSL_OK) {
        return status;
    }
    /* The byte figures are names too, on the per-epoch axes. */
    const char *extra[] = {"bytes", "bytes_up", "bytes_down"};
    const char **cands = calloc((size_t)count + 3, sizeof *cands);
    report_buf which = {0}, have = {0};
    if (!cands) {
        report_free_names(names, count);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    int nc = 0;
    for (int i = 0; i < count; i++) {
        cands[nc++] = names[i];
        report_buf_printf(&have, "%s%s", i ? ", " : "", names[i]);
    }
    for (int i = 0; !steps && i < 3; i++) {
        cands[nc++] = extra[i];
    }
    for (int i = 0; i < n && i < 8; i++) {
        report_buf_printf(&which, "%s%lld", i ? ", " : "", (long long)ids[i]);
    }
    const char *near = cfg_did_you_mean(o->metric, cands, (size_t)nc);
    char hint[160] = "";
    if (near) {
        snprintf(hint, sizeof hint, " (did you mean '%s'?)", near);
    }
    const char *runs = which.p ? which.p : "", *more = n > 8 ? ", ..." : "";
    const char *they = n > 1 ? "they have" : "it has";
    /* A byte figure, or a figure the runs have drawn against bytes or communication time:
     * what is missing is the communication. */
    int has = 0;
    for (int i = 0; i < count && !has; i++) {
        has = !strcmp(names[i], o->metric);
    }
    int no_comm = report_bytes_figure(o->metric) ||
                  (has && (o->x == REPORT_X_BYTES || o->x == REPORT_X_COMM));
    if (steps && count == 0) {
        status = mpsl_errs(err, MPSL_ERR_INVALID,
                           "no per-step figure '%s' in run%s %s%s: %s recorded no step "
                           "figures (set metrics.every_steps in the experiment to record the "
                           "training loss and accuracy every N steps, or plot --x epoch)",
                           o->metric, n > 1 ? "s" : "", runs, more, n > 1 ? "they" : "it");
    } else if (steps) {
        status = mpsl_errs(err, MPSL_ERR_INVALID,
                           "no per-step figure '%s' in run%s %s%s%s; %s: %s", o->metric,
                           n > 1 ? "s" : "", runs, more, hint, they, have.p ? have.p : "none");
    } else if (no_comm) {
        const char *against = report_bytes_figure(o->metric)
                                  ? "" : ": nothing to draw against bytes or communication time";
        status = mpsl_errs(err, MPSL_ERR_INVALID,
                           "no communication recorded in run%s %s%s (centralized runs send "
                           "nothing)%s", n > 1 ? "s" : "", runs, more, against);
    } else {
        status = mpsl_errs(err, MPSL_ERR_INVALID,
                           "no per-epoch figure '%s' in run%s %s%s%s; %s: %s; or bytes, "
                           "bytes_up, bytes_down", o->metric, n > 1 ? "s" : "", runs, more, hint,
                           they, have.p ? have.p : "none");
    }
    if (which.oom || have.oom) {
        status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    report_buf_free(&which);
    report_buf_free(&have);
    free(cands);
    report_free_names(names, count);
    return status;
}

/* 1 when run id can draw the figure on o's axes (a bytes or communication-time x also needs
 * the run's comm rows). */
static int drawable_run(sqlite3 *db, int64_t id, const report_plot_options *o)
{
    if (!report_has_points(db, id, o->metric, o->x)) {
        return 0;
    }
    return o->x != REPORT_X_BYTES && o->x != REPORT_X_COMM
               ? 1 : report_has_points(db, id, "bytes", REPORT_X_EPOCH);
}

int report_plot_svg(sqlite3 *db, const int64_t *ids, int n, const report_plot_options *o,
                    report_buf *out, mpsl_error *err)
{
    report_run *runs = NULL;
    int status = report_load_runs(db, o->db_path, ids, n, "test_acc", &runs, err);
    if (status != MPSL_OK) {
        return status;
    }
    int any = 0;
    for (int i = 0; i < n && !any; i++) {
        any = drawable_run(db, ids[i], o);
    }
    if (!any) {
        status = refuse(db, ids, n, o, err);
        report_free_runs(runs, n);
        return status;
    }
    report_group *groups = NULL;
    int ng = 0;
    status = report_make_groups(db, runs, n, o->group_by, &groups, &ng, err);
    const report_group **gp = calloc((size_t)(ng > 0 ? ng : 1), sizeof *gp);
    if (status == MPSL_OK && !gp) {
        status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    for (int g = 0; status == MPSL_OK && g < ng; g++) {
        gp[g] = &groups[g];
    }
    int bytes = report_bytes_figure(o->metric);
    char note[200];
    snprintf(note, sizeof note, "%s%s%s",
             ng < n ? "lines: the mean of a group's runs; band: " : "",
             ng < n ? report_band_label(o->band) : "",
             bytes ? (ng < n ? "; bytes cumulative, mean over clients"
                             : "cumulative, mean over clients")
                   : "");
    char xlabel[160];
    if (o->x == REPORT_X_COMM) {
        snprintf(xlabel, sizeof xlabel, "%s (%g Mbit/s up, %g down)", report_xaxis_label(o->x),
                 o->link.up_mbps, o->link.down_mbps);
    } else {
        snprintf(xlabel, sizeof xlabel, "%s", report_xaxis_label(o->x));
    }
    report_unit xu = o->x == REPORT_X_BYTES ? REPORT_BYTES
                     : o->x == REPORT_X_SECONDS || o->x == REPORT_X_COMM ||
                               o->x == REPORT_X_SIM ? REPORT_SECONDS
                                                                          : REPORT_PLAIN;
    svg_chart c = {
        .title = o->title ? o->title : o->metric,
        .note = *note ? note : NULL,
        .x_label = xlabel,
        .y_label = report_metric_label(o->metric),
        .x_unit = xu,
        .y_unit = report_metric_unit(o->metric),
        .x_integer = o->x == REPORT_X_EPOCH || o->x == REPORT_X_STEP,
        .y_zero = bytes || report_metric_unit(o->metric) != REPORT_PLAIN,
        .width = 720,
        .height = 400,
        .standalone = 1,
        .x_scale = o->x_scale,
        .y_scale = o->y_scale,
    };
    if (status == MPSL_OK) {
        report_view v = {.db = db, .runs = runs, .groups = gp, .ngroups = ng, .band = o->band,
                         .link = o->link};
        status = report_chart_lines(&v, o->metric, o->x, &c, out, err);
    }
    free(gp);
    report_free_groups(groups, ng);
    report_free_runs(runs, n);
    if (status == MPSL_OK && out->oom) {
        status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory drawing %s", o->metric);
    }
    return status;
}
