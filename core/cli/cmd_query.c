/* cmd_query.c: `mpsl query "SQL"`: one read-only statement against a results database,
 * printed as a table, CSV or JSON. Three locks keep it read-only: the file is opened with
 * SQLITE_OPEN_READONLY and PRAGMA query_only, an authorizer refuses every action that is
 * not a read (INSERT, DROP, ATTACH, writing PRAGMAs, transactions...) with a message saying
 * which, and the prepared statement must be sqlite3_stmt_readonly() and the only one. */
#include <getopt.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "results/store.h"
#include "table.h"

static const char query_usage[] =
    "usage: mpsl query \"SQL\" [--db PATH] [--format table|csv|json]\n"
    "Run one read-only SQL statement (SELECT, WITH ... SELECT, VALUES, EXPLAIN or a PRAGMA\n"
    "that only reads, such as table_info) and print its rows. The database is opened\n"
    "read-only; writes, ATTACH, transactions and several statements are refused. The table\n"
    "shows reals to 6 significant digits; csv and json keep them exact. Tables and views:\n"
    "docs/results-schema.md; example queries: docs/queries.md.\n";

static const char only_reads[] =
    "mpsl query runs one read-only statement (SELECT, WITH, VALUES, EXPLAIN or a reading "
    "PRAGMA); change results with `mpsl run`, or with sqlite3 on a copy";

/* PRAGMAs that only read. Those in the first list may take an argument (a table or index
 * name, a row limit); the others are refused with one, since `PRAGMA x = v` sets x. */
static const char *const pragma_read_with_arg[] = {
    "table_info", "table_xinfo", "index_list", "index_info", "index_xinfo",
    "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check", "table_list",
};
static const char *const pragma_read_bare[] = {
    "user_version", "schema_version", "application_id", "page_size", "page_count",
    "freelist_count", "encoding", "journal_mode", "foreign_keys", "compile_options",
    "database_list", "function_list", "module_list", "pragma_list", "collation_list",
    "data_version", "query_only",
};

typedef struct query_guard {
    char why[320];    /* the first refusal, for the message */
} query_guard;

static int in_list(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; name && i < n; i++) {
        if (!strcmp(name, list[i])) {
            return 1;
        }
    }
    return 0;
}

static const char *action_name(int action)
{
    switch (action) {
    case SQLITE_INSERT: return "INSERT";
    case SQLITE_UPDATE: return "UPDATE";
    case SQLITE_DELETE: return "DELETE";
    case SQLITE_ATTACH: return "ATTACH";
    case SQLITE_DETACH: return "DETACH";
    case SQLITE_ALTER_TABLE: return "ALTER TABLE";
    case SQLITE_REINDEX: return "REINDEX";
    case SQLITE_ANALYZE: return "ANALYZE";
    case SQLITE_TRANSACTION: return "a transaction (BEGIN, COMMIT, ROLLBACK)";
    case SQLITE_SAVEPOINT: return "SAVEPOINT";
    case SQLITE_CREATE_INDEX: case SQLITE_CREATE_TABLE: case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_CREATE_TEMP_TABLE: case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_CREATE_TEMP_VIEW: case SQLITE_CREATE_TRIGGER: case SQLITE_CREATE_VIEW:
    case SQLITE_CREATE_VTABLE:
        return "CREATE";
    case SQLITE_DROP_INDEX: case SQLITE_DROP_TABLE: case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_DROP_TEMP_TABLE: case SQLITE_DROP_TEMP_TRIGGER: case SQLITE_DROP_TEMP_VIEW:
    case SQLITE_DROP_TRIGGER: case SQLITE_DROP_VIEW: case SQLITE_DROP_VTABLE:
        return "DROP";
    default: return NULL;
    }
}

static int guard(void *ctx, int action, const char *a1, const char *a2, const char *db,
                 const char *trigger)
{
    (void)db;
    (void)trigger;
    query_guard *g = ctx;
    const char *what = NULL;
    char buf[200];
    switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_RECURSIVE:
        return SQLITE_OK;
    case SQLITE_FUNCTION:
        if (a2 && !strcmp(a2, "load_extension")) {
            what = "load_extension()";
            break;
        }
        return SQLITE_OK;
    case SQLITE_PRAGMA:
        if (in_list(a1, pragma_read_with_arg, sizeof pragma_read_with_arg / sizeof *pragma_read_with_arg) ||
            (!a2 && in_list(a1, pragma_read_bare, sizeof pragma_read_bare / sizeof *pragma_read_bare))) {
            return SQLITE_OK;
        }
        snprintf(buf, sizeof buf, "PRAGMA %s%s%s (%s)", a1 ? a1 : "?", a2 ? " = " : "",
                 a2 ? a2 : "", a2 ? "it would set a value" : "not a PRAGMA that only reads");
        what = buf;
        break;
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
        /* The schema table is written by CREATE (insert) and DROP (delete) before their own
         * action codes come; say so. SQLite updates it when it sets up a table-valued PRAGMA
         * (pragma_table_info(...)), which reads: let that through (a real UPDATE of the
         * schema table is refused by SQLite itself and by the read-only connection). */
        if (a1 && (!strcmp(a1, "sqlite_master") || !strcmp(a1, "sqlite_schema") ||
                   !strcmp(a1, "sqlite_temp_master") || !strcmp(a1, "sqlite_temp_schema"))) {
            if (action == SQLITE_UPDATE) {
                return SQLITE_OK;
            }
            what = action == SQLITE_INSERT ? "CREATE" : "DROP";
            break;
        }
        snprintf(buf, sizeof buf, "%s on %s", action_name(action), a1 ? a1 : "a table");
        what = buf;
        break;
    default: {
        const char *name = action_name(action);
        if (name && action == SQLITE_ATTACH) {
            snprintf(buf, sizeof buf, "ATTACH of another database%s%s", a1 && *a1 ? " " : "",
                     a1 && *a1 ? a1 : "");
            what = buf;
        } else {
            what = name ? name : "this statement";
        }
        break;
    }
    }
    if (!g->why[0]) {
        snprintf(g->why, sizeof g->why, "%s", what);
    }
    return SQLITE_DENY;
}

/* The text form of a REAL for the aligned table: whole numbers and large ones in full
 * (rounded: 4325760, not 4.32576e+06), others to 6 significant digits. */
static void real_text(double v, char *buf, size_t n)
{
    if (isfinite(v) && (v == floor(v) || fabs(v) >= 1e5) && fabs(v) < 1e15) {
        snprintf(buf, n, "%.0f", v);
    } else {
        snprintf(buf, n, "%.6g", v);
    }
}

/* Only comments, blanks and semicolons left after the first statement? */
static int only_trailer(sqlite3 *h, const char *tail)
{
    while (tail && *tail) {
        sqlite3_stmt *next = NULL;
        const char *rest = NULL;
        int rc = sqlite3_prepare_v2(h, tail, -1, &next, &rest);
        if (rc != SQLITE_OK || next) {
            sqlite3_finalize(next);
            return 0;
        }
        if (!rest || rest == tail) {
            break;
        }
        tail = rest;
    }
    return 1;
}

/* Step the statement into a table whose column kinds follow the values: all integers INT,
 * all numbers REAL, otherwise TEXT. */
static int collect(sqlite3_stmt *st, table_format format, table **out)
{
    int ncols = sqlite3_column_count(st);
    int rows = 0, cap = 0, rc;
    char **cells = NULL;
    int *kinds = calloc((size_t)ncols, sizeof *kinds); /* bit 1 int seen, 2 real, 4 text */
    if (!kinds) {
        return SQLITE_NOMEM;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (rows == cap) {
            cap = cap ? cap * 2 : 64;
            char **c = realloc(cells, sizeof *cells * (size_t)cap * (size_t)ncols);
            if (!c) {
                rc = SQLITE_NOMEM;
                break;
            }
            cells = c;
        }
        for (int c = 0; c < ncols; c++) {
            char num[64];
            const char *v = NULL;
            switch (sqlite3_column_type(st, c)) {
            case SQLITE_NULL: break;
            case SQLITE_INTEGER:
                snprintf(num, sizeof num, "%lld", (long long)sqlite3_column_int64(st, c));
                v = num;
                kinds[c] |= 1;
                break;
            case SQLITE_FLOAT: {
                double d = sqlite3_column_double(st, c);
                if (format == TABLE_FORMAT_TABLE) {
                    real_text(d, num, sizeof num);
                } else {
                    table_real_exact(d, num, sizeof num);
                }
                v = num;
                kinds[c] |= isfinite(d) ? 2 : 4;
                break;
            }
            case SQLITE_BLOB:
                snprintf(num, sizeof num, "(blob, %d bytes)", sqlite3_column_bytes(st, c));
                v = num;
                kinds[c] |= 4;
                break;
            default:
                v = (const char *)sqlite3_column_text(st, c);
                kinds[c] |= 4;
                break;
            }
            cells[(size_t)rows * (size_t)ncols + (size_t)c] = v ? strdup(v) : NULL;
        }
        rows++;
    }
    table_column *cols = calloc((size_t)ncols, sizeof *cols);
    table *t = NULL;
    if ((rc == SQLITE_DONE || rc == SQLITE_ROW) && cols) {
        for (int c = 0; c < ncols; c++) {
            cols[c].name = sqlite3_column_name(st, c);
            cols[c].kind = kinds[c] & 4 ? TABLE_TEXT : kinds[c] & 2 ? TABLE_REAL : TABLE_INT;
            /* The aligned table shows reals as real_text wrote them: TABLE_INT's kind keeps
             * them right-aligned and unchanged (TABLE_REAL would cut to 4 digits). */
            if (format == TABLE_FORMAT_TABLE && cols[c].kind == TABLE_REAL) {
                cols[c].kind = TABLE_INT;
            }
        }
        t = table_create(cols, ncols);
        for (int r = 0; t && r < rows; r++) {
            int row = table_add_row(t);
            for (int c = 0; row >= 0 && c < ncols; c++) {
                if (table_set(t, row, c, cells[(size_t)r * (size_t)ncols + (size_t)c]) != 0) {
                    row = -1;
                }
            }
            if (row < 0) {
                table_destroy(t);
                t = NULL;
            }
        }
        rc = t ? SQLITE_DONE : SQLITE_NOMEM;
    } else if (!cols) {
        rc = SQLITE_NOMEM;
    }
    for (size_t i = 0; i < (size_t)rows * (size_t)ncols; i++) {
        free(cells[i]);
    }
    free(cells);
    free(cols);
    free(kinds);
    *out = t;
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int cmd_query(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = cli_default_db();
    table_format format = TABLE_FORMAT_TABLE;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'f':
            if (table_format_parse(optarg, &format) != 0) {
                fprintf(stderr, "mpsl query: unknown format '%s' (table, csv or json)\n", optarg);
                return 2;
            }
            break;
        case 'h': fputs(query_usage, stdout); return 0;
        case ':':
            fprintf(stderr, "mpsl query: option '%s' needs a value\n%s", argv[optind - 1],
                    query_usage);
            return 2;
        default:
            fprintf(stderr, "mpsl query: unknown option '%s'\n%s", argv[optind - 1], query_usage);
            return 2;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "mpsl query: %s\n%s",
                argc - optind < 1 ? "which SQL? (one statement, quoted)"
                                  : "one SQL statement, quoted as one argument",
                query_usage);
        return 2;
    }
    const char *sql = argv[optind];

    mpsl_error err = {{0}};
    store *s = NULL;
    if (store_open(db, STORE_READ_ONLY, &s, &err) != MPSL_OK) {
        fprintf(stderr, "mpsl query: %s\n", err.msg);
        return 1;
    }
    sqlite3 *h = store_db(s);
    sqlite3_exec(h, "PRAGMA query_only = 1", NULL, NULL, NULL);
    query_guard g = {{0}};
    sqlite3_set_authorizer(h, guard, &g);
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v2(h, sql, -1, &st, &tail);
    int status = 0;
    if (rc != SQLITE_OK) {
        if (g.why[0]) {
            fprintf(stderr, "mpsl query: refused: %s; %s\n", g.why, only_reads);
        } else {
            fprintf(stderr, "mpsl query: %s\n", sqlite3_errmsg(h));
        }
        status = 1;
    } else if (!st) {
        fprintf(stderr, "mpsl query: no SQL statement in '%s'\n", sql);
        status = 2;
    } else if (!only_trailer(h, tail)) {
        fprintf(stderr, "mpsl query: refused: more than one statement (text follows the "
                        "first ';'); %s\n", only_reads);
        status = 1;
    } else if (!sqlite3_stmt_readonly(st)) {
        fprintf(stderr, "mpsl query: refused: the statement would write; %s\n", only_reads);
        status = 1;
    } else if (sqlite3_column_count(st) == 0) {
        fprintf(stderr, "mpsl query: refused: the statement returns no rows (not a query); "
                        "%s\n", only_reads);
        status = 1;
    } else {
        table *t = NULL;
        rc = collect(st, format, &t);
        if (rc != SQLITE_OK) {
            fprintf(stderr, "mpsl query: %s\n",
                    rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(h));
            status = 1;
        } else {
            table_print(t, format, stdout);
            if (format == TABLE_FORMAT_TABLE && table_rows(t) == 0) {
                printf("(no rows)\n");
            }
        }
        table_destroy(t);
    }
    sqlite3_finalize(st);
    sqlite3_set_authorizer(h, NULL, NULL);
    store_close(s);
    return status;
}
