/* tables.c: the report's tables over groups of runs: each figure as mean ± sd (n), the time
 * and bytes to a target, and the config keys in which the groups differ. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"
#include "results/flatten.h"
#include "util/stats.h"
#include "util/util.h"

/* ------------------------------------------------------------------ cells */

/* "0.712 ± 0.013 (3)" for several values, "0.712" for one, "-" for none (NaN skipped):
 * the mean, the sample standard deviation, how many runs. */
static void cell_stats(report_buf *b, const double *v, int n, report_unit unit)
{
    stats_summary s = stats_summarise(v, (size_t)n);
    if (s.n == 0) {
        report_buf_puts(b, "<td class=\"num na\">-</td>");
        return;
    }
    /* Three digits for the sd too: two would print 140 as 1.4e+02. */
    char m[64], d[64];
    if (unit == REPORT_PLAIN) {
        snprintf(m, sizeof m, "%.4g", s.mean);
        snprintf(d, sizeof d, "%.3g", s.sd);
    } else {
        report_fmt(s.mean, unit, 3, m, sizeof m);
        report_fmt(s.sd, unit, 3, d, sizeof d);
    }
    if (s.n == 1) {
        report_buf_printf(b, "<td class=\"num\">%s</td>", m);
    } else {
        report_buf_printf(b, "<td class=\"num\">%s \xC2\xB1 %s <span class=\"n\">(%zu)</span></td>",
                          m, d, s.n);
    }
}

/* The group's swatch and label, and links to its runs' rows. */
static void cells_group(report_buf *b, const report_view *v, const report_group *g)
{
    report_buf_printf(b, "<td class=\"name\"><span class=\"swatch\" style=\"background:%s\">"
                      "</span>", svg_color(g->color));
    report_buf_escape(b, g->label, 0);
    report_buf_puts(b, "</td><td class=\"ids\">");
    for (int m = 0; m < g->n; m++) {
        long long id = (long long)v->runs[g->members[m]].id;
        report_buf_printf(b, "%s<a href=\"#run-%lld\">#%lld</a>", m ? " " : "", id, id);
    }
    report_buf_puts(b, "</td>");
}

/* One figure of each of the group's runs, into vals (g->n of them). */
typedef double (*run_figure)(const report_run *r);

static double f_bytes_up(const report_run *r) { return r->bytes_up_per_client; }
static double f_bytes_down(const report_run *r) { return r->bytes_down_per_client; }
static double f_client_flops(const report_run *r) { return r->client_flops; }
static double f_client_flops_pc(const report_run *r) { return r->client_flops_per_client; }
static double f_server_flops(const report_run *r) { return r->server_flops; }
static double f_wall(const report_run *r) { return r->wall_seconds; }
static double f_rss(const report_run *r) { return r->peak_rss_bytes; }
static double f_epochs(const report_run *r) { return (double)r->epochs; }

static const struct {
    const char *head;
    run_figure f;
    report_unit unit;
} cost_columns[] = {
    {"bytes up per client", f_bytes_up, REPORT_BYTES},
    {"bytes down per client", f_bytes_down, REPORT_BYTES},
    {"client FLOPs (all)", f_client_flops, REPORT_FLOPS},
    {"client FLOPs per client", f_client_flops_pc, REPORT_FLOPS},
    {"server FLOPs", f_server_flops, REPORT_FLOPS},
    {"wall time", f_wall, REPORT_SECONDS},
    {"peak memory", f_rss, REPORT_BYTES},
};
#define N_COST (sizeof cost_columns / sizeof cost_columns[0])

/* ------------------------------------------------------------------ groups */

int report_table_groups(const report_view *v, const char *const *metrics, int nmetrics,
                        report_buf *b, mpsl_error *err)
{
    /* metrics[0] gets its final and best value, the others their final. */
    report_buf_puts(b, "<div class=\"scroll\"><table class=\"groups\">\n<thead><tr>"
                       "<th>group</th><th>runs</th><th>method</th><th>epochs</th>");
    for (int k = 0; k < nmetrics; k++) {
        report_buf_puts(b, "<th>final ");
        report_buf_escape(b, metrics[k], 0);
        report_buf_puts(b, "</th>");
        if (k == 0) {
            report_buf_puts(b, "<th>best ");
            report_buf_escape(b, metrics[k], 0);
            report_buf_puts(b, "</th>");
        }
    }
    for (size_t c = 0; c < N_COST; c++) {
        report_buf_printf(b, "<th>%s</th>", cost_columns[c].head);
    }
    report_buf_puts(b, "</tr></thead>\n<tbody>\n");
    int status = MPSL_OK;
    double *vals = NULL, *best = NULL;
    for (int i = 0; i < v->ngroups && status == MPSL_OK; i++) {
        const report_group *g = v->groups[i];
        free(vals);
        free(best);
        vals = calloc((size_t)g->n, sizeof *vals);
        best = calloc((size_t)g->n, sizeof *best);
        if (!vals || !best) {
            status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
            break;
        }
        report_buf_printf(b, "<tr class=\"group\" id=\"group-%d\">", g->color);
        cells_group(b, v, g);
        /* The method of its runs, or each of them where they differ (--group-by). */
        report_buf_puts(b, "<td>");
        for (int m = 0; m < g->n; m++) {
            const char *meth = v->runs[g->members[m]].method;
            int seen = 0;
            for (int j = 0; j < m && !seen; j++) {
                seen = !strcmp(v->runs[g->members[j]].method, meth);
            }
            if (!seen) {
                report_buf_puts(b, m ? ", " : "");
                report_buf_escape(b, meth, 0);
            }
        }
        report_buf_puts(b, "</td>");
        for (int m = 0; m < g->n; m++) {
            vals[m] = f_epochs(&v->runs[g->members[m]]);
        }
        cell_stats(b, vals, g->n, REPORT_PLAIN);
        for (int k = 0; k < nmetrics && status == MPSL_OK; k++) {
            for (int m = 0; m < g->n && status == MPSL_OK; m++) {
                status = report_final_best(v->db, v->runs[g->members[m]].id, metrics[k],
                                           report_metric_lower_better(metrics[k]), &vals[m],
                                           &best[m], err);
            }
            cell_stats(b, vals, g->n, REPORT_PLAIN);
            if (k == 0) {
                cell_stats(b, best, g->n, REPORT_PLAIN);
            }
        }
        for (size_t c = 0; c < N_COST; c++) {
            for (int m = 0; m < g->n; m++) {
                vals[m] = cost_columns[c].f(&v->runs[g->members[m]]);
            }
            cell_stats(b, vals, g->n, cost_columns[c].unit);
        }
        report_buf_puts(b, "</tr>\n");
    }
    free(vals);
    free(best);
    report_buf_puts(b, "</tbody></table></div>\n");
    return status;
}

/* ------------------------------------------------------------------ target */

/* x at key in p, NaN when p has no such key. */
static double x_at(const report_points *p, double key)
{
    for (int i = 0; i < p->n; i++) {
        if (p->key[i] == key) {
            return p->x[i];
        }
    }
    return NAN;
}

#define N_TO_TARGET 5

/* For one run: the epoch, wall time, bytes per client, communication time and simulated time
 * (network model) when metric first reaches target (NaN each when it never does, the last
 * without a network model); *best its best value. */
static int run_to_target(const report_view *v, int64_t id, const char *metric, double target,
                         double out[N_TO_TARGET], double *best, mpsl_error *err)
{
    report_points p[N_TO_TARGET] = {{0}};
    static const report_xaxis axes[N_TO_TARGET] = {REPORT_X_EPOCH, REPORT_X_SECONDS,
                                                   REPORT_X_BYTES, REPORT_X_COMM, REPORT_X_SIM};
    int status = MPSL_OK;
    for (int a = 0; a < N_TO_TARGET && status == MPSL_OK; a++) {
        status = report_load_points(v->db, id, metric, axes[a], &v->link, &p[a], err);
    }
    int lower = report_metric_lower_better(metric);
    for (int a = 0; a < N_TO_TARGET; a++) {
        out[a] = NAN;
    }
    *best = NAN;
    for (int i = 0; status == MPSL_OK && i < p[0].n; i++) {
        double y = p[0].y[i];
        if (isfinite(y) && (isnan(*best) || (lower ? y < *best : y > *best))) {
            *best = y;
        }
        if (isnan(out[0]) && isfinite(y) && (lower ? y <= target : y >= target)) {
            double key = p[0].key[i];
            out[0] = key;
            for (int a = 1; a < N_TO_TARGET; a++) {
                out[a] = x_at(&p[a], key);
            }
        }
    }
    for (int a = 0; a < N_TO_TARGET; a++) {
        report_points_free(&p[a]);
    }
    return status;
}

int report_table_target(const report_view *v, const char *metric, double target,
                        report_buf *b, mpsl_error *err)
{
    report_buf_puts(b, "<div class=\"scroll\"><table class=\"target\">\n<thead><tr>"
                       "<th>group</th><th>runs</th><th>reached</th><th>epochs</th>"
                       "<th>wall time</th><th>bytes per client</th>"
                       "<th>estimated communication time</th>"
                       "<th>simulated time (network model)</th></tr></thead>\n<tbody>\n");
    int status = MPSL_OK;
    for (int i = 0; i < v->ngroups && status == MPSL_OK; i++) {
        const report_group *g = v->groups[i];
        double *cols = calloc((size_t)g->n * N_TO_TARGET, sizeof *cols);
        double *best = calloc((size_t)g->n, sizeof *best);
        if (!cols || !best) {
            free(cols);
            free(best);
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        }
        int reached = 0;
        double top = NAN;
        for (int m = 0; m < g->n && status == MPSL_OK; m++) {
            double r[N_TO_TARGET];
            status = run_to_target(v, v->runs[g->members[m]].id, metric, target, r, &best[m],
                                   err);
            for (int a = 0; a < N_TO_TARGET; a++) { /* column-major: one figure's values */
                cols[a * g->n + m] = r[a];
            }
            reached += isfinite(r[0]);
            int lower = report_metric_lower_better(metric);
            if (isfinite(best[m]) && (isnan(top) || (lower ? best[m] < top : best[m] > top))) {
                top = best[m];
            }
        }
        report_buf_printf(b, "<tr class=\"group\">");
        cells_group(b, v, g);
        if (reached == 0) {
            char t[48];
            snprintf(t, sizeof t, "%.4g", top);
            report_buf_printf(b, "<td class=\"not-reached\" colspan=\"6\">not reached "
                              "(best %s)</td>", isfinite(top) ? t : "-");
        } else {
            report_buf_printf(b, "<td class=\"num\">%d of %d</td>", reached, g->n);
            static const report_unit units[N_TO_TARGET] = {REPORT_PLAIN, REPORT_SECONDS,
                                                           REPORT_BYTES, REPORT_SECONDS,
                                                           REPORT_SECONDS};
            for (int a = 0; a < N_TO_TARGET; a++) {
                cell_stats(b, cols + a * g->n, g->n, units[a]);
            }
        }
        report_buf_puts(b, "</tr>\n");
        free(cols);
        free(best);
    }
    report_buf_puts(b, "</tbody></table></div>\n");
    return status;
}

/* ------------------------------------------------------------------ config diff */

typedef struct run_config {
    config_pair *pairs;
    size_t n;
} run_config;

/* The distinct values of key over the group's runs, " | " between them ("(unset)" for a run
 * without it). malloc'd. */
static char *group_values(const report_group *g, const run_config *cfg, const char *key)
{
    report_buf b = {0};
    const char **seen = calloc((size_t)g->n, sizeof *seen);
    int ns = 0;
    for (int m = 0; seen && m < g->n; m++) {
        const run_config *c = &cfg[g->members[m]];
        const char *val = config_pairs_get(c->pairs, c->n, key);
        val = val ? val : "(unset)";
        int dup = 0;
        for (int j = 0; j < ns && !dup; j++) {
            dup = !strcmp(seen[j], val);
        }
        if (!dup) {
            report_buf_printf(&b, "%s%s", ns ? " | " : "", val);
            seen[ns++] = val;
        }
    }
    free(seen);
    if (!seen || b.oom) {
        report_buf_free(&b);
        return NULL;
    }
    return b.p ? b.p : mpsl_strdup("");
}

/* 1 when key has the same value (or is unset) in every run of the view. */
static int same_everywhere(const report_view *v, const run_config *cfg, const char *key)
{
    const char *first = NULL;
    int any = 0;
    for (int i = 0; i < v->ngroups; i++) {
        const report_group *g = v->groups[i];
        for (int m = 0; m < g->n; m++) {
            const run_config *c = &cfg[g->members[m]];
            const char *val = config_pairs_get(c->pairs, c->n, key);
            if (!any) {
                first = val;
                any = 1;
            } else if ((first == NULL) != (val == NULL) || (val && strcmp(first, val))) {
                return 0;
            }
        }
    }
    return 1;
}

int report_table_config_diff(const report_view *v, report_buf *b, mpsl_error *err)
{
    /* Configs are indexed like the report's runs; only the view's runs are read. */
    int nruns = 0;
    for (int i = 0; i < v->ngroups; i++) {
        for (int m = 0; m < v->groups[i]->n; m++) {
            nruns = v->groups[i]->members[m] + 1 > nruns ? v->groups[i]->members[m] + 1 : nruns;
        }
    }
    run_config *cfg = calloc((size_t)(nruns > 0 ? nruns : 1), sizeof *cfg);
    if (!cfg) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    int status = MPSL_OK;
    for (int i = 0; i < v->ngroups && status == MPSL_OK; i++) {
        for (int m = 0; m < v->groups[i]->n && status == MPSL_OK; m++) {
            int r = v->groups[i]->members[m];
            char *json = NULL;
            status = config_of_run(v->db, (long long)v->runs[r].id, &json, err);
            if (status == MPSL_OK && json) {
                status = config_flatten(json, &cfg[r].pairs, &cfg[r].n, err);
            }
            free(json);
        }
    }
    /* Keys in the order the runs' configs first have them; those that differ somewhere. */
    const char **keys = NULL;
    int nkeys = 0, cap = 0;
    for (int r = 0; r < nruns && status == MPSL_OK; r++) {
        for (size_t k = 0; k < cfg[r].n; k++) {
            const char *key = cfg[r].pairs[k].key;
            int dup = 0;
            for (int j = 0; j < nkeys && !dup; j++) {
                dup = !strcmp(keys[j], key);
            }
            /* The run's name is in the runs table; as a config key it only repeats it. */
            if (dup || !strcmp(key, "name") || same_everywhere(v, cfg, key)) {
                continue;
            }
            if (nkeys == cap) {
                cap = cap ? cap * 2 : 32;
                const char **grown = realloc(keys, (size_t)cap * sizeof *keys);
                if (!grown) {
                    status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
                    break;
                }
                keys = grown;
            }
            keys[nkeys++] = key;
        }
    }
    if (status == MPSL_OK && nkeys == 0) {
        report_buf_puts(b, "<p class=\"meta\">The runs' resolved configurations are the "
                           "same.</p>\n");
    } else if (status == MPSL_OK) {
        report_buf_puts(b, "<div class=\"scroll\"><table class=\"config-diff\">\n<thead><tr>"
                           "<th>config key</th>");
        for (int i = 0; i < v->ngroups; i++) {
            report_buf_printf(b, "<th><span class=\"swatch\" style=\"background:%s\"></span>",
                              svg_color(v->groups[i]->color));
            report_buf_escape(b, v->groups[i]->label, 60);
            report_buf_puts(b, "</th>");
        }
        report_buf_puts(b, "</tr></thead>\n<tbody>\n");
        for (int k = 0; k < nkeys && status == MPSL_OK; k++) {
            report_buf_puts(b, "<tr><td class=\"key\">");
            report_buf_escape(b, keys[k], 0);
            report_buf_puts(b, "</td>");
            for (int i = 0; i < v->ngroups; i++) {
                char *val = group_values(v->groups[i], cfg, keys[k]);
                if (!val) {
                    status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
                    break;
                }
                /* Long values (a list of tokenizers) are cut; the tooltip has them whole. */
                report_buf_puts(b, "<td title=\"");
                report_buf_escape(b, val, 0);
                report_buf_puts(b, "\">");
                report_buf_escape(b, val, 80);
                report_buf_puts(b, "</td>");
                free(val);
            }
            report_buf_puts(b, "</tr>\n");
        }
        report_buf_puts(b, "</tbody></table></div>\n");
    }
    free(keys);
    for (int r = 0; r < nruns; r++) {
        config_pairs_free(cfg[r].pairs, cfg[r].n);
    }
    free(cfg);
    return status;
}

int report_table_drift(const report_view *v, report_buf *b, mpsl_error *err)
{
    static const char *const metrics[] = {"cross_acc_own", "cross_acc_others",
                                          "own_tokenizer_test_acc_mean",
                                          "train_acc_avg_tokenizer", "tokenizer_drift_mean"};
    static const char *const heads[] = {
        "cross_acc_own: own tokenizer, own data", "cross_acc_others: others' tokenizers, own data",
        "own-tokenizer test accuracy (mean over clients)",
        "averaged tokenizers on clients' data (train_acc_avg_tokenizer)",
        "tokenizer drift (mean over clients)"};
    enum { NM = sizeof metrics / sizeof metrics[0] };
    report_buf_puts(b, "<div class=\"scroll\"><table class=\"drift\">\n<thead><tr><th>group</th>"
                       "<th>runs</th>");
    for (int k = 0; k < NM; k++) {
        report_buf_puts(b, "<th>");
        report_buf_escape(b, heads[k], 0);
        report_buf_puts(b, "</th>");
    }
    report_buf_puts(b, "</tr></thead>\n<tbody>\n");
    int status = MPSL_OK;
    for (int i = 0; i < v->ngroups && status == MPSL_OK; i++) {
        const report_group *g = v->groups[i];
        double *vals = calloc((size_t)(g->n > 0 ? g->n : 1), sizeof *vals);
        if (!vals) {
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        }
        report_buf_puts(b, "<tr class=\"group\">");
        cells_group(b, v, g);
        for (int k = 0; k < NM && status == MPSL_OK; k++) {
            for (int m = 0; m < g->n && status == MPSL_OK; m++) {
                double best = NAN;
                status = report_final_best(v->db, v->runs[g->members[m]].id, metrics[k], 0,
                                           &vals[m], &best, err);
            }
            if (status == MPSL_OK) {
                cell_stats(b, vals, g->n, REPORT_PLAIN);
            }
        }
        report_buf_puts(b, "</tr>\n");
        free(vals);
    }
    report_buf_puts(b, "</tbody></table></div>\n");
    return status;
}
