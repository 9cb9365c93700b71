/* query.c: small read helpers over the results database (the CLI verbs run their own SQL
 * against the views through store_db()). */
#include <inttypes.h>
#include <stdlib.h>

#include "store_internal.h"
#include "util/util.h"

int store_run_exists(store *s, int64_t run_id, mpsl_error *err)
{
    sqlite3_stmt *st = store_stmt(s, STMT_RUN_EXISTS, err);
    if (!st) {
        return MPSL_ERR_IO;
    }
    sqlite3_bind_int64(st, 1, run_id);
    int rc = sqlite3_step(st);
    int result = rc == SQLITE_ROW ? 1 : 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        result = store_sql_error(s, rc, "looking up a run", err);
    }
    sqlite3_reset(st);
    return result;
}

static int dup_column(sqlite3_stmt *st, int col, char **out)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    *out = NULL;
    if (t && !(*out = mpsl_strdup((const char *)t))) {
        return MPSL_ERR_NOMEM;
    }
    return MPSL_OK;
}

int store_run_config(store *s, int64_t run_id, char **config_yaml, char **experiment_path,
                     mpsl_error *err)
{
    *config_yaml = NULL;
    *experiment_path = NULL;
    sqlite3_stmt *st = store_stmt(s, STMT_RUN_CONFIG, err);
    if (!st) {
        return MPSL_ERR_IO;
    }
    sqlite3_bind_int64(st, 1, run_id);
    int rc = sqlite3_step(st);
    int status = MPSL_OK;
    if (rc == SQLITE_ROW) {
        if (dup_column(st, 0, config_yaml) || dup_column(st, 1, experiment_path)) {
            free(*config_yaml);
            free(*experiment_path);
            *config_yaml = *experiment_path = NULL;
            status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory reading run %" PRId64,
                               run_id);
        }
    } else if (rc == SQLITE_DONE) {
        status = mpsl_errs(err, MPSL_ERR_INVALID, "no run %" PRId64 " in %s", run_id, s->path);
    } else {
        status = store_sql_error(s, rc, "reading a run's config", err);
    }
    sqlite3_reset(st);
    return status;
}
