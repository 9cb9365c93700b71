/* series.c: runs' figures against epoch, step, bytes, wall time or estimated communication
 * time, and repeats merged into mean and band (series.h). */
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "report/series.h"
#include "util/stats.h"
#include "util/util.h"

static const char *const xaxis_words[] = {"epoch", "step", "bytes", "seconds", "comm", "sim"};

int report_xaxis_parse(const char *word, report_xaxis *x)
{
    for (int i = 0; i < (int)(sizeof xaxis_words / sizeof *xaxis_words); i++) {
        if (!strcmp(word, xaxis_words[i])) {
            *x = (report_xaxis)i;
            return 0;
        }
    }
    return -1;
}

const char *report_xaxis_label(report_xaxis x)
{
    switch (x) {
    case REPORT_X_STEP: return "training step";
    case REPORT_X_BYTES: return "bytes per client, up + down";
    case REPORT_X_SECONDS: return "wall time (sum of epoch_seconds)";
    case REPORT_X_COMM: return "estimated communication time per client";
    case REPORT_X_SIM: return "simulated wall time (network model)";
    default: return "epoch (round)";
    }
}

int report_link_parse(const char *text, report_link *link)
{
    char *end = NULL;
    double up = strtod(text, &end), down = up;
    if (end == text) {
        return -1;
    }
    if (*end == ',') {
        const char *rest = end + 1;
        down = strtod(rest, &end);
        if (end == rest) {
            return -1;
        }
    }
    if (*end || !isfinite(up) || !isfinite(down) || up <= 0 || down <= 0) {
        return -1;
    }
    link->up_mbps = up;
    link->down_mbps = down;
    return 0;
}

double report_link_seconds(const report_link *link, double bytes_up, double bytes_down)
{
    double t = 0;
    if (link->up_mbps > 0) {
        t += bytes_up * 8 / (link->up_mbps * 1e6);
    }
    if (link->down_mbps > 0) {
        t += bytes_down * 8 / (link->down_mbps * 1e6);
    }
    return t;
}

int report_band_parse(const char *word, report_band *band)
{
    static const char *const words[] = {"sd", "ci95", "none"};
    for (int i = 0; i < 3; i++) {
        if (!strcmp(word, words[i])) {
            *band = (report_band)i;
            return 0;
        }
    }
    return -1;
}

const char *report_band_label(report_band band)
{
    return band == REPORT_BAND_CI95 ? "mean \xC2\xB1 95% CI"
           : band == REPORT_BAND_NONE ? "mean" : "mean \xC2\xB1 sd";
}

void report_points_free(report_points *p)
{
    free(p->key);
    free(p->x);
    free(p->y);
    memset(p, 0, sizeof *p);
}

/* Append one point; -1 when out of memory. */
static int push(report_points *p, int *cap, double key, double x, double y)
{
    if (p->n == *cap) {
        int c = *cap ? *cap * 2 : 32;
        double *k = realloc(p->key, (size_t)c * sizeof *k);
        if (k) {
            p->key = k;
        }
        double *xs = k ? realloc(p->x, (size_t)c * sizeof *xs) : NULL;
        if (xs) {
            p->x = xs;
        }
        double *ys = xs ? realloc(p->y, (size_t)c * sizeof *ys) : NULL;
        if (!ys) {
            return -1;
        }
        p->y = ys;
        *cap = c;
    }
    p->key[p->n] = key;
    p->x[p->n] = x;
    p->y[p->n] = y;
    p->n++;
    return 0;
}

int report_bytes_figure(const char *metric)
{
    return !strcmp(metric, "bytes") ? 1 : !strcmp(metric, "bytes_up") ? 2
           : !strcmp(metric, "bytes_down") ? 3 : 0;
}

static double col(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

static int fail(sqlite3 *db, report_points *p, mpsl_error *err)
{
    report_points_free(p);
    return mpsl_errs(err, MPSL_ERR_IO, "reading the results database (a run's series): %s",
                     sqlite3_errmsg(db));
}

/* Points of the per-epoch axes: the x figures accumulate over every epoch, a point is made at
 * each epoch that has the figure. */
static int load_epochs(sqlite3 *db, int64_t run_id, const char *metric, report_xaxis xa,
                       const report_link *link, report_points *p, mpsl_error *err)
{
    static const char sql[] =
        "SELECT w.epoch, w.epoch_seconds, w.bytes_up, w.bytes_down,"
        " (SELECT e.value FROM epoch_metrics e WHERE e.run_id = ?1 AND e.epoch = w.epoch"
        "   AND e.name = ?2),"
        " EXISTS (SELECT 1 FROM comm c WHERE c.run_id = ?1),"
        " (SELECT MAX(1, COALESCE(r.n_clients, 1)) FROM runs r WHERE r.id = ?1),"
        " (SELECT e.value FROM epoch_metrics e WHERE e.run_id = ?1 AND e.epoch = w.epoch"
        "   AND e.name = 'sim_epoch_seconds') "
        "FROM epoch_wide w WHERE w.run_id = ?1 ORDER BY w.epoch";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        return fail(db, p, err);
    }
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, metric, -1, SQLITE_STATIC);
    int bytes = report_bytes_figure(metric), cap = 0, rc;
    double up = 0, down = 0, secs = 0, sim = 0;
    const report_link no_link = {0, 0};
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int comm = sqlite3_column_int(st, 5);
        double clients = sqlite3_column_double(st, 6);
        double bu = col(st, 2), bd = col(st, 3);
        up += isfinite(bu) ? bu / clients : 0;
        down += isfinite(bd) ? bd / clients : 0;
        secs += col(st, 1); /* a missing epoch_seconds leaves the time unknown from there */
        sim += col(st, 7);  /* likewise sim_epoch_seconds: a run without the network model */
        if ((bytes || xa == REPORT_X_BYTES || xa == REPORT_X_COMM) && !comm) {
            continue;
        }
        if (xa == REPORT_X_SIM && !isfinite(sim)) {
            continue;
        }
        double y = bytes == 1 ? up + down : bytes == 2 ? up : bytes == 3 ? down : col(st, 4);
        if (!bytes && sqlite3_column_type(st, 4) == SQLITE_NULL) {
            continue;
        }
        double epoch = sqlite3_column_double(st, 0) + 1, x;
        switch (xa) {
        case REPORT_X_BYTES: x = up + down; break;
        case REPORT_X_SECONDS: x = secs; break;
        case REPORT_X_SIM: x = sim; break;
        case REPORT_X_COMM: x = report_link_seconds(link ? link : &no_link, up, down); break;
        default: x = epoch; break;
        }
        if (push(p, &cap, epoch, x, y)) {
            sqlite3_finalize(st);
            report_points_free(p);
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory reading a series");
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? MPSL_OK : fail(db, p, err);
}

/* step_metrics: the whole run's rows (client -1) where there are any, else the mean over
 * clients at each step. */
static int load_steps(sqlite3 *db, int64_t run_id, const char *metric, report_points *p,
                      mpsl_error *err)
{
    static const char sql[] =
        "SELECT epoch, step, AVG(value) FROM step_metrics WHERE run_id = ?1 AND name = ?2"
        " AND (client = -1 OR NOT EXISTS (SELECT 1 FROM step_metrics s WHERE s.run_id = ?1"
        "   AND s.name = ?2 AND s.client = -1))"
        " GROUP BY epoch, step ORDER BY epoch, step";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        return fail(db, p, err);
    }
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, metric, -1, SQLITE_STATIC);
    int cap = 0, rc;
    int64_t epoch = -1;
    double offset = 0, last = 0; /* steps before this epoch; the last step seen in it */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t e = sqlite3_column_int64(st, 0);
        if (e != epoch) {
            offset += last;
            last = 0;
            epoch = e;
        }
        double step = sqlite3_column_double(st, 1);
        last = step > last ? step : last;
        if (push(p, &cap, offset + step, offset + step, col(st, 2))) {
            sqlite3_finalize(st);
            report_points_free(p);
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory reading a series");
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? MPSL_OK : fail(db, p, err);
}

int report_load_points(sqlite3 *db, int64_t run_id, const char *metric, report_xaxis x,
                       const report_link *link, report_points *out, mpsl_error *err)
{
    memset(out, 0, sizeof *out);
    if (x == REPORT_X_STEP) {
        return report_bytes_figure(metric) ? MPSL_OK : load_steps(db, run_id, metric, out, err);
    }
    return load_epochs(db, run_id, metric, x, link, out, err);
}

int report_has_points(sqlite3 *db, int64_t run_id, const char *metric, report_xaxis x)
{
    const char *sql =
        x == REPORT_X_STEP ? "SELECT EXISTS (SELECT 1 FROM step_metrics WHERE run_id = ?1 "
                             "AND name = ?2)"
        : report_bytes_figure(metric) ? "SELECT EXISTS (SELECT 1 FROM comm WHERE run_id = ?1)"
                               : "SELECT EXISTS (SELECT 1 FROM epoch_metrics WHERE run_id = ?1 "
                                 "AND name = ?2)";
    if (x == REPORT_X_STEP && report_bytes_figure(metric)) {
        return 0;
    }
    sqlite3_stmt *st = NULL;
    int has = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, run_id);
        if (sqlite3_bind_parameter_count(st) >= 2) {
            sqlite3_bind_text(st, 2, metric, -1, SQLITE_STATIC);
        }
        has = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    return has;
}

void report_merged_free(report_merged *m)
{
    free(m->x);
    free(m->y);
    free(m->lo);
    free(m->hi);
    memset(m, 0, sizeof *m);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int report_merge_points(const report_points *runs, int nruns, report_band band,
                        report_merged *out)
{
    memset(out, 0, sizeof *out);
    int total = 0;
    for (int r = 0; r < nruns; r++) {
        total += runs[r].n;
        out->members += runs[r].n > 0;
    }
    if (total == 0) {
        return MPSL_OK;
    }
    /* Every key any run has, once, in order. */
    double *keys = malloc((size_t)total * sizeof *keys);
    double *ys = malloc((size_t)(nruns > 0 ? nruns : 1) * sizeof *ys);
    int *at = calloc((size_t)(nruns > 0 ? nruns : 1), sizeof *at); /* each run's next point */
    out->x = malloc((size_t)total * sizeof *out->x);
    out->y = malloc((size_t)total * sizeof *out->y);
    out->lo = malloc((size_t)total * sizeof *out->lo);
    out->hi = malloc((size_t)total * sizeof *out->hi);
    if (!keys || !ys || !at || !out->x || !out->y || !out->lo || !out->hi) {
        free(keys);
        free(ys);
        free(at);
        report_merged_free(out);
        return MPSL_ERR_NOMEM;
    }
    int nk = 0;
    for (int r = 0; r < nruns; r++) {
        for (int i = 0; i < runs[r].n; i++) {
            keys[nk++] = runs[r].key[i];
        }
    }
    qsort(keys, (size_t)nk, sizeof *keys, cmp_double);
    int m = 0;
    for (int i = 0; i < nk; i++) {
        if (i > 0 && keys[i] == keys[i - 1]) {
            continue;
        }
        /* The runs' points at this key (each run's keys ascend). */
        size_t ny = 0;
        double xsum = 0;
        for (int r = 0; r < nruns; r++) {
            while (at[r] < runs[r].n && runs[r].key[at[r]] < keys[i]) {
                at[r]++;
            }
            if (at[r] < runs[r].n && runs[r].key[at[r]] == keys[i] &&
                isfinite(runs[r].y[at[r]]) && isfinite(runs[r].x[at[r]])) {
                ys[ny++] = runs[r].y[at[r]];
                xsum += runs[r].x[at[r]];
            }
        }
        /* sd and ci95 are NaN below two runs. stats_t975 remembers whole degrees of freedom,
         * so a step curve's thousands of points cost no integration each. */
        stats_summary st = stats_summarise(ys, ny);
        double mean = st.mean;
        double half = band == REPORT_BAND_SD ? st.sd : band == REPORT_BAND_CI95 ? st.ci95 : NAN;
        out->x[m] = ny ? xsum / (double)ny : NAN;
        out->y[m] = mean;
        out->lo[m] = mean - half;
        out->hi[m] = mean + half;
        m++;
    }
    out->n = m;
    free(keys);
    free(ys);
    free(at);
    return MPSL_OK;
}
