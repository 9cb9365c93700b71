/* data.c: the queries behind `mpsl report` and `mpsl plot`, over the views of
 * docs/results-schema.md (run_summary, epoch_wide) and the client tables. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/data.h"
#include "report/report.h"
#include "util/util.h"

static int sql_fail(sqlite3 *db, const char *what, mpsl_error *err)
{
    return mpsl_errs(err, MPSL_ERR_IO, "reading the results database (%s): %s", what,
                     sqlite3_errmsg(db));
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, const char *what,
                   mpsl_error *err)
{
    return sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK ? MPSL_OK
                                                                    : sql_fail(db, what, err);
}

static double col_double(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

static char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return mpsl_strdup(t ? (const char *)t : "");
}

/* A growing array of doubles or int64s. */
static int grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap) {
        return 0;
    }
    int c = *cap ? *cap * 2 : 16;
    while (c < need) {
        c *= 2;
    }
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) {
        return -1;
    }
    *p = q;
    *cap = c;
    return 0;
}

int report_select_runs(sqlite3 *db, const report_filter *f, int64_t **ids, int *n,
                       mpsl_error *err)
{
    *ids = NULL;
    *n = 0;
    char sql[2048];
    size_t len = (size_t)snprintf(sql, sizeof sql,
                                  "SELECT id FROM (SELECT id FROM runs r WHERE 1");
    if (f->status) {
        len += (size_t)snprintf(sql + len, sizeof sql - len, " AND status = :status");
    }
    if (f->method) {
        len += (size_t)snprintf(sql + len, sizeof sql - len, " AND method = :method");
    }
    if (f->dataset) {
        len += (size_t)snprintf(sql + len, sizeof sql - len, " AND dataset = :dataset");
    }
    if (f->name) {
        len += (size_t)snprintf(sql + len, sizeof sql - len, " AND name GLOB :name");
    }
    for (int i = 0; i < f->ntags && i < 64; i++) {
        len += (size_t)snprintf(sql + len, sizeof sql - len,
                                " AND EXISTS (SELECT 1 FROM run_tags t WHERE t.run_id = r.id"
                                " AND t.tag = ?%d)", 10 + i);
    }
    snprintf(sql + len, sizeof sql - len, " ORDER BY id DESC LIMIT :limit) ORDER BY id");
    sqlite3_stmt *st = NULL;
    if (prepare(db, sql, &st, "selecting runs", err)) {
        return MPSL_ERR_IO;
    }
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":status"), f->status, -1, NULL);
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":method"), f->method, -1, NULL);
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":dataset"), f->dataset, -1, NULL);
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":name"), f->name, -1, NULL);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":limit"),
                       f->limit > 0 ? f->limit : -1);
    for (int i = 0; i < f->ntags && i < 64; i++) {
        sqlite3_bind_text(st, 10 + i, f->tags[i], -1, NULL);
    }
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (grow((void **)ids, &cap, *n + 1, sizeof **ids)) {
            sqlite3_finalize(st);
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory selecting runs");
        }
        (*ids)[(*n)++] = sqlite3_column_int64(st, 0);
    }
    int status = rc == SQLITE_DONE ? MPSL_OK : sql_fail(db, "selecting runs", err);
    sqlite3_finalize(st);
    return status;
}

/* The figures of `mpsl compare` (cmd_compare.c), with the metric's best as MAX or MIN. */
static const char run_sql_fmt[] =
    "SELECT s.id, s.name, s.method, s.dataset, s.status, s.started_at, s.n_clients, s.epochs,"
    " (SELECT e.value FROM epoch_metrics e WHERE e.run_id = s.id AND e.name = ?2"
    "   ORDER BY e.epoch DESC LIMIT 1),"
    " (SELECT %s(e.value) FROM epoch_metrics e WHERE e.run_id = s.id AND e.name = ?2),"
    " s.final_test_loss, s.bytes_up_per_client, s.bytes_down_per_client, s.client_flops,"
    " s.client_flops_per_client, s.server_flops, s.wall_seconds, s.peak_rss_bytes,"
    " t.server_compute_seconds, t.server_wait_seconds, t.client_compute_seconds,"
    " t.client_wait_seconds,"
    " EXISTS (SELECT 1 FROM epoch_metrics e WHERE e.run_id = s.id AND e.name GLOB 'recall_*')"
    "  OR EXISTS (SELECT 1 FROM run_plugins p WHERE p.run_id = s.id AND p.slot = 'head'"
    "   AND p.name = 'retrieval') "
    "FROM run_summary s JOIN run_times t ON t.run_id = s.id "
    "WHERE s.id = ?1";

void report_free_runs(report_run *runs, int n)
{
    for (int i = 0; runs && i < n; i++) {
        free(runs[i].name);
        free(runs[i].method);
        free(runs[i].dataset);
        free(runs[i].status);
        free(runs[i].started_at);
    }
    free(runs);
}

int report_load_runs(sqlite3 *db, const char *db_path, const int64_t *ids, int n,
                     const char *metric, report_run **out, mpsl_error *err)
{
    *out = NULL;
    report_run *runs = calloc((size_t)(n > 0 ? n : 1), sizeof *runs);
    if (!runs) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory reading runs");
    }
    int minimize = report_metric_lower_better(metric);
    char sql[sizeof run_sql_fmt + 8];
    snprintf(sql, sizeof sql, run_sql_fmt, minimize ? "MIN" : "MAX");
    sqlite3_stmt *st = NULL;
    if (prepare(db, sql, &st, "reading run summaries", err)) {
        free(runs);
        return MPSL_ERR_IO;
    }
    int status = MPSL_OK;
    for (int i = 0; i < n && status == MPSL_OK; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, ids[i]);
        sqlite3_bind_text(st, 2, metric, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            status = mpsl_errs(err, MPSL_ERR_INVALID, "no run %lld in %s", (long long)ids[i],
                               db_path);
            break;
        }
        if (rc != SQLITE_ROW) {
            status = sql_fail(db, "reading run summaries", err);
            break;
        }
        report_run *r = &runs[i];
        r->id = sqlite3_column_int64(st, 0);
        r->name = col_text(st, 1);
        r->method = col_text(st, 2);
        r->dataset = col_text(st, 3);
        r->status = col_text(st, 4);
        r->started_at = col_text(st, 5);
        r->n_clients = sqlite3_column_int64(st, 6);
        r->epochs = sqlite3_column_int64(st, 7);
        r->final_metric = col_double(st, 8);
        r->best_metric = col_double(st, 9);
        r->final_test_loss = col_double(st, 10);
        r->bytes_up_per_client = col_double(st, 11);
        r->bytes_down_per_client = col_double(st, 12);
        r->client_flops = col_double(st, 13);
        r->client_flops_per_client = col_double(st, 14);
        r->server_flops = col_double(st, 15);
        r->wall_seconds = col_double(st, 16);
        r->peak_rss_bytes = col_double(st, 17);
        r->server_compute_s = col_double(st, 18);
        r->server_wait_s = col_double(st, 19);
        r->client_compute_s = col_double(st, 20);
        r->client_wait_s = col_double(st, 21);
        r->retrieval = sqlite3_column_int(st, 22);
        if (!r->name || !r->method || !r->dataset || !r->status || !r->started_at) {
            status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory reading runs");
        }
    }
    sqlite3_finalize(st);
    if (status != MPSL_OK) {
        report_free_runs(runs, n);
        return status;
    }
    *out = runs;
    return MPSL_OK;
}

int report_final_best(sqlite3 *db, int64_t run_id, const char *metric, int lower_better,
                      double *final, double *best, mpsl_error *err)
{
    static const char sql[] =
        "SELECT (SELECT value FROM epoch_metrics WHERE run_id = ?1 AND name = ?2"
        "   ORDER BY epoch DESC LIMIT 1),"
        " (SELECT MAX(value) FROM epoch_metrics WHERE run_id = ?1 AND name = ?2),"
        " (SELECT MIN(value) FROM epoch_metrics WHERE run_id = ?1 AND name = ?2)";
    *final = *best = NAN;
    sqlite3_stmt *st = NULL;
    if (prepare(db, sql, &st, "reading final figures", err)) {
        return MPSL_ERR_IO;
    }
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, metric, -1, SQLITE_STATIC);
    int status = MPSL_OK;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *final = col_double(st, 0);
        *best = col_double(st, lower_better ? 2 : 1);
    } else {
        status = sql_fail(db, "reading final figures", err);
    }
    sqlite3_finalize(st);
    return status;
}

void report_free_names(char **names, int n)
{
    for (int i = 0; names && i < n; i++) {
        free(names[i]);
    }
    free(names);
}

int report_metric_list(sqlite3 *db, const int64_t *ids, int n, int steps, char ***names,
                       int *count, mpsl_error *err)
{
    *names = NULL;
    *count = 0;
    const char *sql = steps ? "SELECT DISTINCT name FROM step_metrics WHERE run_id = ?1"
                            : "SELECT DISTINCT name FROM epoch_metrics WHERE run_id = ?1";
    sqlite3_stmt *st = NULL;
    if (prepare(db, sql, &st, "listing metric names", err)) {
        return MPSL_ERR_IO;
    }
    int cap = 0, status = MPSL_OK;
    for (int i = 0; i < n && status == MPSL_OK; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, ids[i]);
        int rc;
        while (status == MPSL_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *nm = (const char *)sqlite3_column_text(st, 0);
            int seen = !nm;
            for (int k = 0; !seen && k < *count; k++) {
                seen = !strcmp((*names)[k], nm);
            }
            if (seen) {
                continue;
            }
            if (grow((void **)names, &cap, *count + 1, sizeof **names) ||
                !((*names)[*count] = mpsl_strdup(nm))) {
                status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory listing metric names");
                break;
            }
            (*count)++;
        }
        if (status == MPSL_OK && rc != SQLITE_DONE) {
            status = sql_fail(db, "listing metric names", err);
        }
    }
    sqlite3_finalize(st);
    if (status != MPSL_OK) {
        report_free_names(*names, *count);
        *names = NULL;
        *count = 0;
    }
    return status;
}

int report_load_client_values(sqlite3 *db, int64_t run_id, const char *metric,
                              double **values, int *n, int64_t *epoch, mpsl_error *err)
{
    *values = NULL;
    *n = 0;
    *epoch = -1;
    static const char sql[] =
        "SELECT epoch, value FROM client_metrics WHERE run_id = ?1 AND name = ?2 AND epoch = "
        "(SELECT MAX(epoch) FROM client_metrics WHERE run_id = ?1 AND name = ?2) "
        "ORDER BY client";
    sqlite3_stmt *st = NULL;
    if (prepare(db, sql, &st, "reading per-client figures", err)) {
        return MPSL_ERR_IO;
    }
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, metric, -1, SQLITE_STATIC);
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (grow((void **)values, &cap, *n + 1, sizeof **values)) {
            sqlite3_finalize(st);
            free(*values);
            *values = NULL;
            *n = 0;
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory reading per-client figures");
        }
        *epoch = sqlite3_column_int64(st, 0);
        (*values)[(*n)++] = col_double(st, 1);
    }
    int status = rc == SQLITE_DONE ? MPSL_OK : sql_fail(db, "reading per-client figures", err);
    sqlite3_finalize(st);
    return status;
}

int report_load_client_data(sqlite3 *db, int64_t run_id, double **counts, int *n_clients,
                            int *n_classes, mpsl_error *err)
{
    *counts = NULL;
    *n_clients = *n_classes = 0;
    /* Sizes first, then the cells (a histogram may be shorter than the longest). */
    static const char size_sql[] =
        "SELECT MAX(d.client) + 1, MAX(CAST(h.key AS INTEGER)) + 1 "
        "FROM client_data d, json_each(d.class_histogram) h WHERE d.run_id = ?1 "
        "AND d.client >= 0";
    static const char cell_sql[] =
        "SELECT d.client, CAST(h.key AS INTEGER), h.value "
        "FROM client_data d, json_each(d.class_histogram) h WHERE d.run_id = ?1 "
        "AND d.client >= 0";
    sqlite3_stmt *st = NULL;
    if (prepare(db, size_sql, &st, "reading client data", err)) {
        return MPSL_ERR_IO;
    }
    sqlite3_bind_int64(st, 1, run_id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int status = sql_fail(db, "reading client data", err);
        sqlite3_finalize(st);
        return status;
    }
    int64_t nc = sqlite3_column_int64(st, 0), nk = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    if (nc <= 0 || nk <= 0) {
        return MPSL_OK;
    }
    if (nc > 1000000 || nk > 100000 || nc * nk > 50000000) {
        return mpsl_errs(err, MPSL_ERR_INVALID,
                         "run %lld: client data too large to draw (%lld clients, %lld classes)",
                         (long long)run_id, (long long)nc, (long long)nk);
    }
    double *c = calloc((size_t)(nc * nk), sizeof *c);
    if (!c) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory reading client data");
    }
    if (prepare(db, cell_sql, &st, "reading client data", err)) {
        free(c);
        return MPSL_ERR_IO;
    }
    sqlite3_bind_int64(st, 1, run_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t k = sqlite3_column_int64(st, 0), j = sqlite3_column_int64(st, 1);
        if (k >= 0 && k < nc && j >= 0 && j < nk) {
            c[k * nk + j] = col_double(st, 2);
        }
    }
    int status = rc == SQLITE_DONE ? MPSL_OK : sql_fail(db, "reading client data", err);
    sqlite3_finalize(st);
    if (status != MPSL_OK) {
        free(c);
        return status;
    }
    *counts = c;
    *n_clients = (int)nc;
    *n_classes = (int)nk;
    return MPSL_OK;
}

int report_load_class_names(sqlite3 *db, int64_t run_id, char ***names, int *n, mpsl_error *err)
{
    *names = NULL;
    *n = 0;
    /* A database read as it is (read-only, schema before 4) may lack the column. */
    sqlite3_stmt *st = NULL;
    if (prepare(db, "SELECT EXISTS (SELECT 1 FROM pragma_table_info('runs') WHERE name = "
                    "'class_names')", &st, "reading class names", err)) {
        return MPSL_ERR_IO;
    }
    int has = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (!has) {
        return MPSL_OK;
    }
    /* Anything but a JSON array (NULL, or text a foreign writer left) names none. */
    if (prepare(db, "SELECT j.key, j.value FROM runs r, json_each("
                    "CASE WHEN json_valid(r.class_names) THEN CASE WHEN json_type("
                    "r.class_names) = 'array' THEN r.class_names END END) j "
                    "WHERE r.id = ?1 ORDER BY j.key",
                &st, "reading class names", err)) {
        return MPSL_ERR_IO;
    }
    sqlite3_bind_int64(st, 1, run_id);
    int cap = 0, rc, status = MPSL_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 1);
        if (grow((void **)names, &cap, *n + 1, sizeof **names) ||
            !((*names)[*n] = mpsl_strdup(t ? (const char *)t : ""))) {
            status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory reading class names");
            break;
        }
        (*n)++;
    }
    if (status == MPSL_OK && rc != SQLITE_DONE) {
        status = sql_fail(db, "reading class names", err);
    }
    sqlite3_finalize(st);
    if (status != MPSL_OK) {
        report_free_names(*names, *n);
        *names = NULL;
        *n = 0;
    }
    return status;
}
