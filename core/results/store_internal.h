/* store_internal.h: what the files of core/results/ share and nobody else sees: the store
 * struct, its cached prepared statements, SQLite error translation and the schema steps. */
#ifndef MPSL_STORE_INTERNAL_H
#define MPSL_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store.h"

/* Prepared statements, prepared on first use and kept until store_close. */
typedef enum store_stmt_id {
    STMT_RUN_INSERT = 0,
    STMT_PLUGIN_INSERT,
    STMT_TAG_INSERT,
    STMT_RUN_END,
    STMT_METRIC,
    STMT_CLIENT_METRIC,
    STMT_COMM,
    STMT_COMPUTE,
    STMT_CLIENT_DATA,
    STMT_RUN_CONFIG,
    STMT_RUN_EXISTS,
    STMT_STEP_METRIC,
    STMT_COUNT
} store_stmt_id;

struct store {
    sqlite3 *db;
    char *path;
    store_mode mode;
    int busy_ms;
    sqlite3_stmt *stmt[STMT_COUNT];
};

#define STORE_DEFAULT_BUSY_MS 10000

/* Translate a failed SQLite call into a message naming the database and the step, with a
 * hint where the fix is known (locked, read-only, full, not a database). Returns
 * MPSL_ERR_IO (MPSL_ERR_NOMEM for SQLITE_NOMEM). */
int store_sql_error(const store *s, int rc, const char *step, mpsl_error *err);

/* The cached statement, reset and with bindings cleared; NULL with err set on failure. */
sqlite3_stmt *store_stmt(store *s, store_stmt_id id, mpsl_error *err);

/* Run a statement that returns no rows to completion, then reset it. */
int store_step_done(store *s, sqlite3_stmt *st, const char *step, mpsl_error *err);

/* One exec of SQL text (no bindings). */
int store_exec(store *s, const char *sql, const char *step, mpsl_error *err);

/* A write of several statements that must succeed or fail together: BEGIN IMMEDIATE when
 * no transaction is open, else a savepoint inside the caller's transaction, so that a
 * failure undoes only this write. */
int store_tx_begin(store *s, int *nested, mpsl_error *err);
int store_tx_end(store *s, int nested, int ok, mpsl_error *err);

/* 1 when the file path + suffix ("-wal", "-shm", "-journal", ".journal") exists. */
int store_file_beside(const char *path, const char *suffix);
/* "file:" URI for path followed by query ("?immutable=1", "?mode=ro"): "file:///abs/path" for
 * an absolute path, "file:rel/path" else; '%', '?' and '#' in the path are escaped so that a
 * file name holding them is not read as part of the query. Caller frees; NULL out of memory. */
char *store_file_uri(const char *path, const char *query);

/* schema.c: bring the database (inside an open write transaction) from its user_version up
 * to STORE_SCHEMA_VERSION. *from gets the version found. */
int store_schema_migrate(store *s, int *from, mpsl_error *err);
/* The integer in the first column of a one-row query (PRAGMA user_version, a count) on any
 * connection; SQLITE_OK, or the failing SQLite result code (*out untouched). */
int store_sql_int(sqlite3 *db, const char *sql, int *out);
/* Counts the tables that are not SQLite's own. */
#define STORE_SQL_USER_TABLES \
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
/* Read PRAGMA user_version. */
int store_schema_version_read(store *s, int *version, mpsl_error *err);
/* Number of tables that are not SQLite's own (to tell an empty file from a foreign one). */
int store_schema_user_tables(store *s, int *count, mpsl_error *err);

#endif
