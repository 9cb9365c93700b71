/* write.c: recording a run: its start (with plugins and tags, in one transaction), its end,
 * and every figure it measures. Each write either succeeds whole or undoes only itself. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "util/util.h"

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v) {
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_null(st, i);
    }
}

static int insert_run_rows(store *s, const store_run_info *info, int64_t *run_id,
                           mpsl_error *err)
{
    sqlite3_stmt *st = store_stmt(s, STMT_RUN_INSERT, err);
    if (!st) {
        return MPSL_ERR_IO;
    }
    bind_text(st, 1, info->name);
    bind_text(st, 2, info->experiment_path);
    bind_text(st, 3, info->config_yaml);
    if (info->seed <= (uint64_t)INT64_MAX) {
        sqlite3_bind_int64(st, 4, (sqlite3_int64)info->seed);
    } else { /* beyond SQLite's integers: keep every digit as text */
        char seed[24];
        snprintf(seed, sizeof seed, "%" PRIu64, info->seed);
        sqlite3_bind_text(st, 4, seed, -1, SQLITE_TRANSIENT);
    }
    bind_text(st, 5, info->method);
    bind_text(st, 6, info->dataset);
    bind_text(st, 7, info->revision);
    bind_text(st, 8, info->mpsl_version);
    bind_text(st, 9, info->host);
    sqlite3_bind_int(st, 10, info->n_clients);
    bind_text(st, 11, info->transport ? info->transport : "local");
    sqlite3_bind_int(st, 12, info->n_ranks > 0 ? info->n_ranks : 1);
    bind_text(st, 13, info->hosts ? info->hosts : info->host);
    bind_text(st, 14, info->config_json);
    bind_text(st, 15, info->sweep_id);
    bind_text(st, 16, info->sweep_point);
    bind_text(st, 17, info->class_names);
    int rc = store_step_done(s, st, "recording the run", err);
    if (rc) {
        return rc;
    }
    *run_id = sqlite3_last_insert_rowid(s->db);
    for (int i = 0; i < info->n_plugins; i++) {
        const store_plugin_row *p = &info->plugins[i];
        if (!p->slot || !p->name) {
            return mpsl_errs(err, MPSL_ERR_INVALID,
                             "results database '%s': plugin %d of run '%s' has no %s", s->path,
                             i, info->name, p->slot ? "name" : "slot");
        }
        st = store_stmt(s, STMT_PLUGIN_INSERT, err);
        if (!st) {
            return MPSL_ERR_IO;
        }
        char abi[32];
        snprintf(abi, sizeof abi, "%" PRIu32 ".%" PRIu32, p->abi_major, p->abi_minor);
        sqlite3_bind_int64(st, 1, *run_id);
        bind_text(st, 2, p->slot);
        bind_text(st, 3, p->name);
        bind_text(st, 4, p->version);
        bind_text(st, 5, p->path);
        bind_text(st, 6, abi);
        rc = store_step_done(s, st, "recording the run's plugins", err);
        if (rc) {
            return rc;
        }
    }
    for (const char *const *t = info->tags; t && *t; t++) {
        st = store_stmt(s, STMT_TAG_INSERT, err);
        if (!st) {
            return MPSL_ERR_IO;
        }
        sqlite3_bind_int64(st, 1, *run_id);
        bind_text(st, 2, *t);
        rc = store_step_done(s, st, "recording the run's tags", err);
        if (rc) {
            return rc;
        }
    }
    return MPSL_OK;
}

int store_run_begin(store *s, const store_run_info *info, int64_t *run_id, mpsl_error *err)
{
    if (!info || !info->name || !*info->name) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "results database '%s': a run needs a name",
                         s->path);
    }
    if (info->n_plugins > 0 && !info->plugins) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "results database '%s': run '%s': %d plugins "
                         "announced, none given", s->path, info->name, info->n_plugins);
    }
    int nested = 0;
    int rc = store_tx_begin(s, &nested, err);
    if (rc) {
        return rc;
    }
    rc = insert_run_rows(s, info, run_id, err);
    int end = store_tx_end(s, nested, rc == MPSL_OK, err);
    return rc ? rc : end;
}

static int valid_status(const char *status)
{
    return status && (!strcmp(status, "finished") || !strcmp(status, "failed") ||
                      !strcmp(status, "interrupted"));
}

int store_run_end(store *s, int64_t run_id, const char *status, const char *message,
                  double wall_seconds, int64_t peak_rss_bytes, mpsl_error *err)
{
    if (!valid_status(status)) {
        return mpsl_errs(err, MPSL_ERR_INVALID,
                         "results database '%s': run %" PRId64 " cannot end with status '%s' "
                         "(finished, failed or interrupted)",
                         s->path, run_id, status ? status : "(null)");
    }
    sqlite3_stmt *st = store_stmt(s, STMT_RUN_END, err);
    if (!st) {
        return MPSL_ERR_IO;
    }
    bind_text(st, 1, status);
    bind_text(st, 2, message);
    if (isfinite(wall_seconds) && wall_seconds >= 0) {
        sqlite3_bind_double(st, 3, wall_seconds);
    }
    if (peak_rss_bytes >= 0) {
        sqlite3_bind_int64(st, 4, peak_rss_bytes);
    }
    sqlite3_bind_int64(st, 5, run_id);
    int rc = store_step_done(s, st, "recording the end of the run", err);
    if (rc) {
        return rc;
    }
    if (sqlite3_changes(s->db) != 1) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "results database '%s': no run %" PRId64,
                         s->path, run_id);
    }
    return MPSL_OK;
}

int store_metric(store *s, int64_t run_id, int64_t epoch, const char *name, double value,
                 mpsl_error *err)
{
    if (!name || !*name) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "results database '%s': metric without a name",
                         s->path);
    }
    sqlite3_stmt *st = store_stmt(s, STMT_METRIC, err);
    if (!st) {
        return MPSL_ERR_IO;
    }
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, epoch);
    bind_text(st, 3, name);
    sqlite3_bind_double(st, 4, value); /* NaN is stored as NULL */
    return store_step_done(s, st, "recording an epoch metric", err);
}

int store_client_metric(store *s, int64_t run_id, int64_t epoch, int client,
                        const char *name, double value, mpsl_error *err)
{
    if (!name || !*name) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "results database '%s': metric without a name",
                         s->path);
    }
    sqlite3_stmt *st = store_stmt(s, STMT_CLIENT_METRIC, err);
    if (!st) {
        return MPSL_ERR_IO;
    }
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, epoch);
    sqlite3_bind_int(st, 3, client);
    bind_text(st, 4, name);
    sqlite3_bind_double(st, 5, value);
    return store_step_done(s, st, "recording a client metric", err);
}

int store_step_metric(store *s, int64_t run_id, int64_t epoch, int64_t step, int client,
                      const char *name, double value, mpsl_error *err)
{
    if (!name || !*name) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "results database '%s': metric without a name",
                         s->path);
    }
    sqlite3_stmt *st = store_stmt(s, STMT_STEP_METRIC, err);
    if (!st) {
        return MPSL_ERR_IO;
    }
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, epoch);
    sqlite3_bind_int64(st, 3, step);
    sqlite3_bind_int(st, 4, client);
    bind_text(st, 5, name);
    sqlite3_bind_double(st, 6, value);
    return store_step_done(s, st, "recording a step metric", err);
}

int store_comm(store *s, int64_t run_id, int64_t epoch, int client, const char *direction,
               const char *kind, int64_t bytes, int64_t messages, mpsl_error *err)
{
    if (!direction || (strcmp(direction, "up") && strcmp(direction, "down"))) {
        return mpsl_errs(err, MPSL_ERR_INVALID,
                         "results database '%s': direction '%s' is not 'up' or 'down'", s->path,
                         direction ? direction : "(null)");
    }
    if (!kind || !*kind || bytes < 0 || messages < 0) {
        return mpsl_errs(err, MPSL_ERR_INVALID,
                         "results database '%s': bad communication record (kind '%s', %" PRId64
                         " bytes, %" PRId64 " messages)",
                         s->path, kind ? kind : "(null)", bytes, messages);
    }
    sqlite3_stmt *st = store_stmt(s, STMT_COMM, err);
    if (!st) {
        return MPSL_ERR_IO;
    }
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, epoch);
    sqlite3_bind_int(st, 3, client);
    bind_text(st, 4, direction);
    bind_text(st, 5, kind);
    sqlite3_bind_int64(st, 6, bytes);
    sqlite3_bind_int64(st, 7, messages);
    return store_step_done(s, st, "recording communication", err);
}

int store_compute(store *s, int64_t run_id, int64_t epoch, const char *party, int client,
                  const char *pass, double flops, mpsl_error *err)
{
    if (!party || (strcmp(party, "client") && strcmp(party, "server"))) {
        return mpsl_errs(err, MPSL_ERR_INVALID,
                         "results database '%s': party '%s' is not 'client' or 'server'",
                         s->path, party ? party : "(null)");
    }
    if (!pass || (strcmp(pass, "forward") && strcmp(pass, "backward"))) {
        return mpsl_errs(err, MPSL_ERR_INVALID,
                         "results database '%s': pass '%s' is not 'forward' or 'backward'",
                         s->path, pass ? pass : "(null)");
    }
    if (!(flops >= 0) || !isfinite(flops)) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "results database '%s': bad FLOP count %g",
                         s->path, flops);
    }
    sqlite3_stmt *st = store_stmt(s, STMT_COMPUTE, err);
    if (!st) {
        return MPSL_ERR_IO;
    }
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, epoch);
    bind_text(st, 3, party);
    sqlite3_bind_int(st, 4, client < 0 ? -1 : client);
    bind_text(st, 5, pass);
    sqlite3_bind_double(st, 6, flops);
    return store_step_done(s, st, "recording compute", err);
}

int store_client_data(store *s, int64_t run_id, int client, int64_t n_samples,
                      const int64_t *class_counts, int64_t n_classes, mpsl_error *err)
{
    if (n_samples < 0 || n_classes < 0 || (n_classes > 0 && !class_counts)) {
        return mpsl_errs(err, MPSL_ERR_INVALID,
                         "results database '%s': bad partition record for client %d", s->path,
                         client);
    }
    /* The histogram as a JSON array: "[12,0,7]" (at most 21 characters per count). */
    size_t cap = 3 + (size_t)n_classes * 22;
    char *json = malloc(cap);
    if (!json) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory recording client %d", client);
    }
    size_t len = 0;
    json[len++] = '[';
    for (int64_t c = 0; c < n_classes; c++) {
        len += (size_t)snprintf(json + len, cap - len, "%s%" PRId64, c ? "," : "",
                                class_counts[c]);
    }
    json[len++] = ']';
    json[len] = '\0';
    sqlite3_stmt *st = store_stmt(s, STMT_CLIENT_DATA, err);
    if (!st) {
        free(json);
        return MPSL_ERR_IO;
    }
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int(st, 2, client);
    sqlite3_bind_int64(st, 3, n_samples);
    sqlite3_bind_text(st, 4, json, (int)len, SQLITE_TRANSIENT);
    int rc = store_step_done(s, st, "recording a client's data", err);
    free(json);
    return rc;
}

int store_run_end_if_running(store *s, int64_t run_id, const char *status, const char *message,
                             mpsl_error *err)
{
    if (!valid_status(status)) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "cannot end a run with status '%s'",
                         status ? status : "(null)");
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "UPDATE runs SET status = ?3, message = ?1, "
                                "ended_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                                "WHERE id = ?2 AND status = 'running'",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(st);
        return store_sql_error(s, rc, "marking a run failed", err);
    }
    bind_text(st, 1, message);
    sqlite3_bind_int64(st, 2, run_id);
    bind_text(st, 3, status);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? MPSL_OK : store_sql_error(s, rc, "marking a run failed", err);
}

int store_checkpoint_add(store *s, int64_t run_id, int64_t epoch, int64_t step,
                         const char *path, int64_t bytes, mpsl_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "INSERT OR REPLACE INTO checkpoints (run_id, epoch, step, path, "
                                "bytes) VALUES (?1, ?2, ?5, ?3, ?4)", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, run_id);
        sqlite3_bind_int64(st, 2, epoch);
        bind_text(st, 3, path);
        sqlite3_bind_int64(st, 4, bytes);
        sqlite3_bind_int64(st, 5, step);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? MPSL_OK : store_sql_error(s, rc, "recording a checkpoint", err);
}

/* Paths of a query's first column, malloc'd. */
static int collect_paths(store *s, sqlite3_stmt *st, char ***paths, int64_t **epochs, int *n,
                         const char *what, mpsl_error *err)
{
    *paths = NULL;
    *n = 0;
    if (epochs) {
        *epochs = NULL;
    }
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 8;
            char **p = realloc(*paths, (size_t)cap * sizeof *p);
            int64_t *e = epochs ? realloc(*epochs, (size_t)cap * sizeof *e) : NULL;
            if (p) {
                *paths = p;
            }
            if (e) {
                *epochs = e;
            }
            if (!p || (epochs && !e)) {
                return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
            }
        }
        const char *text = (const char *)sqlite3_column_text(st, 0);
        (*paths)[*n] = mpsl_strdup(text ? text : "");
        if (epochs) {
            (*epochs)[*n] = sqlite3_column_int64(st, 1);
        }
        (*n)++;
    }
    return rc == SQLITE_DONE ? MPSL_OK : store_sql_error(s, rc, what, err);
}

int store_checkpoint_prune(store *s, int64_t run_id, int64_t keep, char ***paths, int *n,
                           mpsl_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT path FROM checkpoints WHERE run_id = ?1 "
                                "ORDER BY epoch DESC, step DESC LIMIT -1 OFFSET ?2", -1, &st,
                                NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(st);
        return store_sql_error(s, rc, "listing checkpoints", err);
    }
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, keep);
    rc = collect_paths(s, st, paths, NULL, n, "listing checkpoints", err);
    sqlite3_finalize(st);
    if (rc != MPSL_OK) {
        return rc;
    }
    st = NULL;
    rc = sqlite3_prepare_v2(s->db,
                            "DELETE FROM checkpoints WHERE run_id = ?1 AND rowid NOT IN "
                            "(SELECT rowid FROM checkpoints WHERE run_id = ?1 "
                            "ORDER BY epoch DESC, step DESC LIMIT ?2)", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, run_id);
        sqlite3_bind_int64(st, 2, keep);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? MPSL_OK : store_sql_error(s, rc, "pruning checkpoints", err);
}

int store_checkpoint_list(store *s, int64_t run_id, char ***paths, int64_t **epochs, int *n,
                          mpsl_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT path, epoch * 4294967296 + step FROM checkpoints "
                                "WHERE run_id = ?1 ORDER BY epoch DESC, step DESC", -1, &st,
                                NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(st);
        return store_sql_error(s, rc, "listing checkpoints", err);
    }
    sqlite3_bind_int64(st, 1, run_id);
    rc = collect_paths(s, st, paths, epochs, n, "listing checkpoints", err);
    sqlite3_finalize(st);
    return rc;
}

int store_run_resume(store *s, int64_t run_id, int64_t epoch, int64_t step, mpsl_error *err)
{
    static const char *const sql[] = {
        "UPDATE runs SET status = 'running', message = NULL, ended_at = NULL WHERE id = ?1",
        "DELETE FROM epoch_metrics WHERE run_id = ?1 AND epoch >= ?2",
        "DELETE FROM client_metrics WHERE run_id = ?1 AND epoch >= ?2",
        "DELETE FROM comm WHERE run_id = ?1 AND epoch >= ?2",
        "DELETE FROM compute WHERE run_id = ?1 AND epoch >= ?2",
        /* the steps of the resumed epoch before the checkpoint were recorded and stay */
        "DELETE FROM step_metrics WHERE run_id = ?1 AND epoch * 4294967296 + step > "
        "?2 * 4294967296 + ?3",
        "DELETE FROM checkpoints WHERE run_id = ?1 AND epoch * 4294967296 + step > "
        "?2 * 4294967296 + ?3",
    };
    int rc = store_begin(s, err);
    for (size_t i = 0; i < sizeof sql / sizeof sql[0] && rc == MPSL_OK; i++) {
        sqlite3_stmt *st = NULL;
        int src = sqlite3_prepare_v2(s->db, sql[i], -1, &st, NULL);
        if (src == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, run_id);
            if (sqlite3_bind_parameter_count(st) >= 2) {
                sqlite3_bind_int64(st, 2, epoch);
            }
            if (sqlite3_bind_parameter_count(st) >= 3) {
                sqlite3_bind_int64(st, 3, step);
            }
            src = sqlite3_step(st);
        }
        sqlite3_finalize(st);
        if (src != SQLITE_DONE) {
            rc = store_sql_error(s, src, "resuming the run", err);
        }
    }
    if (rc == MPSL_OK) {
        rc = store_commit(s, err);
    } else {
        store_rollback(s);
    }
    return rc;
}
