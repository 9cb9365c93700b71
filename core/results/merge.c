/* merge.c: `mpsl merge`: every run of several results databases copied into one, with all
 * its rows, under a new id, and where it came from in run_sources.
 *
 * The merge runs the same pass twice: first as a plan against the output opened read-only
 * (nothing is written anywhere: refusals and a dry run end there), then, when the plan
 * holds, for real inside one BEGIN IMMEDIATE transaction on the output, which re-checks
 * everything in case another process wrote the output in between. The tables that belong to
 * a run are read from the schema at run time (every table with a run_id column), so a table
 * added by a later schema version is copied without anyone remembering to list it here. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "merge.h"
#include "merge_input.h"
#include "store_internal.h"
#include "util/util.h"

/* Duplicates named in a refusal; the report keeps them all. */
#define MERGE_DUPLICATES_SHOWN 5

/* A table that belongs to runs, as one source has it. */
typedef struct run_table {
    char *name;
    int total;             /* its entry in the report's tables */
    int is_run_sources;    /* carried when the run has a row, else made from this merge */
    sqlite3_stmt *select;  /* on the source: its rows of one run */
    sqlite3_stmt *count;   /* on the source: how many (plan) */
    sqlite3_stmt *insert;  /* on the output (write) */
    int run_id_column;     /* run_id's place among select's columns */
} run_table;

typedef struct merge_ctx {
    const merge_options *opt;
    const char *out_path;
    merge_input *in;
    int n_in;
    merge_report *rep;
    sqlite3 *out;          /* the connection this pass plans or writes on */
    store *out_store;      /* the output's store in the write pass, NULL in the plan */
    int write;
    char merged_at[40];    /* one time for every run_sources row of this merge */
    sqlite3_stmt *known_find, *known_add;
} merge_ctx;

/* Append a formatted line to a report list; 0, or -1 out of memory. */
static int add_line(char ***list, int *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int add_line(char ***list, int *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *line = NULL;
    int len = vasprintf(&line, fmt, ap);
    va_end(ap);
    char **grown = len >= 0 ? realloc(*list, sizeof **list * (size_t)(*n + 1)) : NULL;
    if (!grown) {
        free(len >= 0 ? line : NULL);
        return -1;
    }
    grown[(*n)++] = line;
    *list = grown;
    return 0;
}

static void free_lines(char ***list, int *n)
{
    for (int i = 0; i < *n; i++) {
        free((*list)[i]);
    }
    free(*list);
    *list = NULL;
    *n = 0;
}

/* "name" with inner quotes doubled, for identifiers read from a schema. Caller frees. */
static char *quoted(const char *name)
{
    char *q = malloc(2 * strlen(name) + 3);
    if (!q) {
        return NULL;
    }
    size_t j = 0;
    q[j++] = '"';
    for (const char *c = name; *c; c++) {
        if (*c == '"') {
            q[j++] = '"';
        }
        q[j++] = *c;
    }
    q[j++] = '"';
    q[j] = '\0';
    return q;
}

static int nomem(mpsl_error *err)
{
    return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory merging results databases");
}

static int source_error(const merge_input *in, const char *step, mpsl_error *err)
{
    return mpsl_errs(err, MPSL_ERR_IO, "source '%s': %s failed: %s", in->path, step,
                     sqlite3_errmsg(in->db));
}

static int out_error(const merge_ctx *m, int rc, const char *step, mpsl_error *err)
{
    if (m->out_store) { /* the store's messages: locked, read-only, full, corrupt */
        return store_sql_error(m->out_store, rc, step, err);
    }
    return mpsl_errs(err, MPSL_ERR_IO, "output '%s': %s failed: %s", m->out_path, step,
                     sqlite3_errmsg(m->out));
}

/* 1 when db's main schema has the table, 0 when not, -1 on error. */
static int has_table(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT 1 FROM main.sqlite_master WHERE type = 'table' "
                                "AND name = ?1", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* ------------------------------------------------------------ runs already known */

/* temp.merge_known: every run the output holds, and every run this pass has taken so far,
 * by identity (one execution: its start, host, name and config) and by origin (the database
 * and run it was first recorded in). A TEMP table: it never touches the output's file. */
static int known_setup(merge_ctx *m, mpsl_error *err)
{
    static const char *const ddl =
        "DROP TABLE IF EXISTS temp.merge_known;"
        "CREATE TEMP TABLE merge_known (started_at TEXT, host TEXT, name TEXT, config_yaml TEXT,"
        " source_db TEXT, source_run_id INTEGER, input INTEGER NOT NULL, run INTEGER NOT NULL);"
        "CREATE INDEX temp.merge_known_identity ON merge_known(started_at, name);"
        "CREATE INDEX temp.merge_known_origin ON merge_known(source_db, source_run_id);";
    int rc = sqlite3_exec(m->out, ddl, NULL, NULL, NULL);
    int runs = has_table(m->out, "runs"), sources = has_table(m->out, "run_sources");
    if (rc == SQLITE_OK && (runs < 0 || sources < 0)) {
        rc = sqlite3_errcode(m->out);
    }
    if (rc == SQLITE_OK && runs) {
        /* input -1: the output itself */
        rc = sqlite3_exec(m->out, sources
            ? "INSERT INTO temp.merge_known SELECT r.started_at, r.host, r.name, r.config_yaml,"
              " s.source_db, s.source_run_id, -1, r.id FROM main.runs r"
              " LEFT JOIN main.run_sources s ON s.run_id = r.id"
            : "INSERT INTO temp.merge_known SELECT started_at, host, name, config_yaml, NULL,"
              " NULL, -1, id FROM main.runs", NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_prepare_v2(m->out,
            "SELECT input, run, (started_at = ?1 AND host IS ?2 AND name IS ?3"
            " AND config_yaml IS ?4) AS same FROM temp.merge_known"
            " WHERE (started_at = ?1 AND host IS ?2 AND name IS ?3 AND config_yaml IS ?4)"
            " OR (source_db = ?5 AND source_run_id = ?6) ORDER BY same DESC LIMIT 1",
            -1, &m->known_find, NULL);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_prepare_v2(m->out, "INSERT INTO temp.merge_known VALUES "
                                "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", -1, &m->known_add, NULL);
    }
    return rc == SQLITE_OK ? MPSL_OK : out_error(m, rc, "reading the runs it holds", err);
}

static void known_finish(merge_ctx *m)
{
    sqlite3_finalize(m->known_find);
    sqlite3_finalize(m->known_add);
    m->known_find = m->known_add = NULL;
    sqlite3_exec(m->out, "DROP TABLE IF EXISTS temp.merge_known", NULL, NULL, NULL);
}

/* A source run as the duplicate check sees it. */
typedef struct run_key {
    int64_t id;
    sqlite3_value *started_at, *host, *name, *config_yaml; /* the runs row's own values */
    const char *origin_db;  /* where it was first recorded: its run_sources row, or here */
    int64_t origin_run;
} run_key;

static void bind_key(sqlite3_stmt *st, const run_key *key)
{
    sqlite3_bind_value(st, 1, key->started_at);
    sqlite3_bind_value(st, 2, key->host);
    sqlite3_bind_value(st, 3, key->name);
    sqlite3_bind_value(st, 4, key->config_yaml);
    sqlite3_bind_text(st, 5, key->origin_db, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 6, key->origin_run);
}

/* 1 (and a line in the report) when the run is known, 0 when it is new, <0 on error. */
static int known_check(merge_ctx *m, int k, const run_key *key, mpsl_error *err)
{
    sqlite3_reset(m->known_find);
    bind_key(m->known_find, key);
    int rc = sqlite3_step(m->known_find);
    if (rc == SQLITE_DONE) {
        return 0;
    }
    if (rc != SQLITE_ROW) {
        return out_error(m, rc, "looking for duplicate runs", err);
    }
    int other = sqlite3_column_int(m->known_find, 0);
    int64_t other_run = sqlite3_column_int64(m->known_find, 1);
    int same = sqlite3_column_int(m->known_find, 2);
    const merge_input *in = &m->in[k];
    char why[600];
    if (same) {
        snprintf(why, sizeof why, "same start, host, name and config");
    } else {
        snprintf(why, sizeof why, "both come from %s run %" PRId64, key->origin_db,
                 key->origin_run);
    }
    int bad;
    if (other < 0) {
        bad = add_line(&m->rep->duplicates, &m->rep->n_duplicates,
                       "%s run %" PRId64 " = %s run %" PRId64 " (%s)", in->path, key->id,
                       m->out_path, other_run, why);
    } else {
        const merge_input *o = &m->in[other];
        int twice = o->dev == in->dev && o->ino == in->ino;
        bad = add_line(&m->rep->duplicates, &m->rep->n_duplicates,
                       "%s run %" PRId64 " = %s run %" PRId64 " (%s; %s)", in->path, key->id,
                       o->path, other_run, why,
                       twice ? "the same file given twice" : "both sources of this merge");
    }
    return bad ? nomem(err) : 1;
}

static int known_add(merge_ctx *m, int k, const run_key *key, mpsl_error *err)
{
    sqlite3_reset(m->known_add);
    bind_key(m->known_add, key);
    sqlite3_bind_int(m->known_add, 7, k);
    sqlite3_bind_int64(m->known_add, 8, key->id);
    int rc = sqlite3_step(m->known_add);
    return rc == SQLITE_DONE ? MPSL_OK : out_error(m, rc, "noting a run", err);
}

/* ------------------------------------------------------------ the tables of a source */

static int table_total(merge_report *rep, const char *name)
{
    for (int i = 0; i < rep->n_tables; i++) {
        if (!strcmp(rep->tables[i].name, name)) {
            return i;
        }
    }
    merge_table_rows *grown = realloc(rep->tables, sizeof *grown * (size_t)(rep->n_tables + 1));
    if (!grown) {
        return -1;
    }
    rep->tables = grown;
    grown[rep->n_tables].name = mpsl_strdup(name);
    grown[rep->n_tables].rows = 0;
    return grown[rep->n_tables].name ? rep->n_tables++ : -1;
}

static void tables_free(run_table *t, int n)
{
    for (int i = 0; i < n; i++) {
        free(t[i].name);
        sqlite3_finalize(t[i].select);
        sqlite3_finalize(t[i].count);
        sqlite3_finalize(t[i].insert);
    }
    free(t);
}

/* INSERT INTO main."t" ("a", "b", ...) VALUES (?, ?, ...) with the columns of select,
 * leaving out the one at skip (-1: none). */
static char *insert_sql(const char *table, sqlite3_stmt *select, int skip)
{
    char *qt = quoted(table);
    char *cols = mpsl_strdup(""), *marks = mpsl_strdup("");
    int n = sqlite3_column_count(select), first = 1;
    for (int c = 0; qt && cols && marks && c < n; c++) {
        if (c == skip) {
            continue;
        }
        char *qc = quoted(sqlite3_column_name(select, c));
        char *more = qc ? mpsl_strfmt("%s%s%s", cols, first ? "" : ", ", qc) : NULL;
        char *mark = mpsl_strfmt("%s%s?", marks, first ? "" : ", ");
        free(qc);
        free(cols);
        free(marks);
        cols = more;
        marks = mark;
        first = 0;
    }
    char *sql = qt && cols && marks
                    ? mpsl_strfmt("INSERT INTO main.%s (%s) VALUES (%s)", qt, cols, marks)
                    : NULL;
    free(qt);
    free(cols);
    free(marks);
    return sql;
}

static int column_index(sqlite3_stmt *st, const char *name)
{
    for (int c = 0; c < sqlite3_column_count(st); c++) {
        if (!strcmp(sqlite3_column_name(st, c), name)) {
            return c;
        }
    }
    return -1;
}

/* Refuse a table that references runs through a column other than run_id: it would be
 * copied with its reference pointing at the wrong run. */
static int check_references(merge_ctx *m, const merge_input *in, mpsl_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(in->db,
        "SELECT m.name, f.\"from\" FROM sqlite_master m, pragma_foreign_key_list(m.name) f"
        " WHERE m.type = 'table' AND f.\"table\" = 'runs' AND f.\"from\" <> 'run_id'",
        -1, &st, NULL);
    int status = MPSL_OK;
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        status = mpsl_errs(err, MPSL_ERR_INVALID,
                           "source '%s': table '%s' references runs through column '%s'; this "
                           "mpsl's merge maps run_id columns only (merging into %s refused)",
                           in->path, (const char *)sqlite3_column_text(st, 0),
                           (const char *)sqlite3_column_text(st, 1), m->out_path);
    } else if (rc != SQLITE_DONE) {
        status = source_error(in, "reading its schema", err);
    }
    sqlite3_finalize(st);
    return status;
}

/* The source's tables with a run_id column, and statements to read (and in the write pass,
 * insert) one run's rows; tables with neither run_id nor a place in the schema are noted. */
static int tables_open(merge_ctx *m, const merge_input *in, run_table **out, int *n,
                       mpsl_error *err)
{
    *out = NULL;
    *n = 0;
    int status = check_references(m, in, err);
    if (status) {
        return status;
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(in->db,
        "SELECT m.name, EXISTS (SELECT 1 FROM pragma_table_info(m.name) c"
        " WHERE c.name = 'run_id') FROM sqlite_master m WHERE m.type = 'table'"
        " AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND m.name NOT IN ('runs', 'meta')"
        " ORDER BY m.name", -1, &st, NULL);
    run_table *t = NULL;
    while (status == MPSL_OK && rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (!sqlite3_column_int(st, 1)) {
            if (add_line(&m->rep->ignored_tables, &m->rep->n_ignored_tables, "%s: table '%s'",
                         in->path, name)) {
                status = nomem(err);
            }
            continue;
        }
        run_table *grown = realloc(t, sizeof *t * (size_t)(*n + 1));
        if (!grown) {
            status = nomem(err);
            break;
        }
        t = grown;
        run_table *r = &t[(*n)++];
        memset(r, 0, sizeof *r);
        r->name = mpsl_strdup(name);
        r->total = r->name ? table_total(m->rep, name) : -1;
        char *q = quoted(name);
        char *sel = q ? mpsl_strfmt("SELECT * FROM main.%s WHERE run_id = ?1", q) : NULL;
        char *cnt = q ? mpsl_strfmt("SELECT COUNT(*) FROM main.%s WHERE run_id = ?1", q) : NULL;
        free(q);
        if (r->total < 0 || !sel || !cnt) {
            status = nomem(err);
        } else if (sqlite3_prepare_v2(in->db, sel, -1, &r->select, NULL) != SQLITE_OK ||
                   sqlite3_prepare_v2(in->db, cnt, -1, &r->count, NULL) != SQLITE_OK) {
            status = source_error(in, "reading its tables", err);
        }
        free(sel);
        free(cnt);
        if (status) {
            break;
        }
        r->is_run_sources = !strcmp(name, "run_sources");
        r->run_id_column = column_index(r->select, "run_id");
        if (m->write) {
            char *ins = insert_sql(name, r->select, -1);
            rc = ins ? sqlite3_prepare_v2(m->out, ins, -1, &r->insert, NULL) : SQLITE_NOMEM;
            free(ins);
            if (rc != SQLITE_OK) {
                status = rc == SQLITE_NOMEM ? nomem(err)
                                            : out_error(m, rc, "preparing to copy rows", err);
            }
        }
    }
    if (status == MPSL_OK && rc != SQLITE_OK && rc != SQLITE_DONE) {
        status = source_error(in, "reading its schema", err);
    }
    sqlite3_finalize(st);
    *out = t;
    return status;
}

/* ------------------------------------------------------------ copying a run */

/* Bind the current row of select to insert (made by insert_sql with the same skip): every
 * column but the one at skip, with value in place of the one at replace (-1: none). */
static void bind_row(sqlite3_stmt *insert, sqlite3_stmt *select, int skip, int replace,
                     int64_t value)
{
    sqlite3_reset(insert);
    for (int c = 0, p = 1; c < sqlite3_column_count(select); c++) {
        if (c == skip) {
            continue;
        }
        if (c == replace) {
            sqlite3_bind_int64(insert, p++, value);
        } else {
            sqlite3_bind_value(insert, p++, sqlite3_column_value(select, c));
        }
    }
}

/* Every row of one table for run `from`, as run `to`; *rows gets how many. */
static int copy_rows(merge_ctx *m, const merge_input *in, run_table *t, int64_t from,
                     int64_t to, int64_t *rows, mpsl_error *err)
{
    *rows = 0;
    sqlite3_reset(t->select);
    sqlite3_bind_int64(t->select, 1, from);
    int rc;
    while ((rc = sqlite3_step(t->select)) == SQLITE_ROW) {
        bind_row(t->insert, t->select, -1, t->run_id_column, to);
        int w = sqlite3_step(t->insert);
        if (w != SQLITE_DONE) {
            char step[200];
            snprintf(step, sizeof step, "copying %s of %s run %" PRId64, t->name, in->path,
                     from);
            return out_error(m, w, step, err);
        }
        (*rows)++;
    }
    if (rc != SQLITE_DONE) {
        return source_error(in, "reading a run's rows", err);
    }
    return MPSL_OK;
}

static int count_rows(const merge_input *in, run_table *t, int64_t run, int64_t *rows,
                      mpsl_error *err)
{
    sqlite3_reset(t->count);
    sqlite3_bind_int64(t->count, 1, run);
    if (sqlite3_step(t->count) != SQLITE_ROW) {
        return source_error(in, "counting a run's rows", err);
    }
    *rows = sqlite3_column_int64(t->count, 0);
    return MPSL_OK;
}

/* Where a run not merged before came from: this source. */
static int add_origin(merge_ctx *m, const merge_input *in, int64_t from, int64_t to,
                      mpsl_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(m->out, "INSERT INTO main.run_sources (run_id, source_db, "
                                "source_run_id, source_schema, merged_at) VALUES (?, ?, ?, ?, ?)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, to);
        sqlite3_bind_text(st, 2, in->abs_path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, from);
        sqlite3_bind_int(st, 4, in->schema);
        sqlite3_bind_text(st, 5, m->merged_at, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? MPSL_OK : out_error(m, rc, "recording where a run came from", err);
}

/* One run: the runs row (the row of select_runs, without its id), then every table's rows. */
static int copy_run(merge_ctx *m, const merge_input *in, sqlite3_stmt *select_runs,
                    sqlite3_stmt *insert_run, int id_column, int64_t from, run_table *t,
                    int n_tables, mpsl_error *err)
{
    int64_t to = 0;
    if (m->write) {
        bind_row(insert_run, select_runs, id_column, -1, 0);
        int rc = sqlite3_step(insert_run);
        if (rc != SQLITE_DONE) {
            char step[200];
            snprintf(step, sizeof step, "copying %s run %" PRId64, in->path, from);
            return out_error(m, rc, step, err);
        }
        to = sqlite3_last_insert_rowid(m->out);
    }
    for (int i = 0; i < n_tables; i++) {
        int64_t rows = 0;
        int status = m->write ? copy_rows(m, in, &t[i], from, to, &rows, err)
                              : count_rows(in, &t[i], from, &rows, err);
        if (status == MPSL_OK && t[i].is_run_sources && rows == 0) {
            /* not merged before: its origin is this source (merged ones keep the first) */
            status = m->write ? add_origin(m, in, from, to, err) : MPSL_OK;
            rows = 1;
        }
        if (status) {
            return status;
        }
        m->rep->tables[t[i].total].rows += rows;
    }
    return MPSL_OK;
}

/* The run's origin: its run_sources row when it was merged before, else this source. */
static int origin_of(const merge_input *in, sqlite3_stmt *origin, int64_t id, run_key *key,
                     char **owned, mpsl_error *err)
{
    *owned = NULL;
    key->origin_db = in->abs_path;
    key->origin_run = id;
    if (!origin) {
        return MPSL_OK;
    }
    sqlite3_reset(origin);
    sqlite3_bind_int64(origin, 1, id);
    int rc = sqlite3_step(origin);
    if (rc == SQLITE_ROW) {
        *owned = mpsl_strdup((const char *)sqlite3_column_text(origin, 0));
        if (!*owned) {
            return nomem(err);
        }
        key->origin_db = *owned;
        key->origin_run = sqlite3_column_int64(origin, 1);
    } else if (rc != SQLITE_DONE) {
        return source_error(in, "reading run_sources", err);
    }
    return MPSL_OK;
}

/* Every run of source k, in id order: checked against the runs known so far, then copied
 * (write pass) or counted (plan). */
static int source_pass(merge_ctx *m, int k, mpsl_error *err)
{
    merge_input *in = &m->in[k];
    merge_source_report *sr = &m->rep->sources[k];
    sr->runs = sr->copied = sr->skipped = 0;
    run_table *t = NULL;
    int n_tables = 0;
    sqlite3_stmt *runs = NULL, *origin = NULL, *insert_run = NULL;
    int status = tables_open(m, in, &t, &n_tables, err);
    if (status == MPSL_OK &&
        (sqlite3_prepare_v2(in->db, "SELECT * FROM main.runs ORDER BY id", -1, &runs, NULL) ||
         sqlite3_prepare_v2(in->db, "SELECT source_db, source_run_id FROM main.run_sources "
                            "WHERE run_id = ?1", -1, &origin, NULL))) {
        status = source_error(in, "reading its runs", err);
    }
    int c_id = -1, c_start = -1, c_host = -1, c_name = -1, c_yaml = -1, c_status = -1;
    if (status == MPSL_OK) {
        c_id = column_index(runs, "id");
        c_start = column_index(runs, "started_at");
        c_host = column_index(runs, "host");
        c_name = column_index(runs, "name");
        c_yaml = column_index(runs, "config_yaml");
        c_status = column_index(runs, "status");
        if (c_id < 0 || c_start < 0 || c_host < 0 || c_name < 0 || c_yaml < 0 || c_status < 0) {
            status = mpsl_errs(err, MPSL_ERR_INVALID,
                               "source '%s': its runs table lacks columns every mpsl results "
                               "database has (id, name, host, started_at, config_yaml, status)",
                               in->path);
        }
    }
    if (status == MPSL_OK && m->write) {
        char *sql = insert_sql("runs", runs, c_id);
        int rc = sql ? sqlite3_prepare_v2(m->out, sql, -1, &insert_run, NULL) : SQLITE_NOMEM;
        free(sql);
        if (rc != SQLITE_OK) {
            status = rc == SQLITE_NOMEM ? nomem(err) : out_error(m, rc, "preparing to copy runs",
                                                                 err);
        }
    }
    int rc = SQLITE_ROW;
    while (status == MPSL_OK && (rc = sqlite3_step(runs)) == SQLITE_ROW) {
        sr->runs++;
        run_key key = {
            .id = sqlite3_column_int64(runs, c_id),
            .started_at = sqlite3_column_value(runs, c_start),
            .host = sqlite3_column_value(runs, c_host),
            .name = sqlite3_column_value(runs, c_name),
            .config_yaml = sqlite3_column_value(runs, c_yaml),
        };
        char *owned = NULL;
        status = origin_of(in, origin, key.id, &key, &owned, err);
        int known = status ? status : known_check(m, k, &key, err);
        if (known == 1) {
            sr->skipped += m->opt->skip_duplicates;
        } else if (known == 0) {
            status = known_add(m, k, &key, err);
            const char *st = (const char *)sqlite3_column_text(runs, c_status);
            if (status == MPSL_OK && st && !strcmp(st, "running") &&
                add_line(&m->rep->running, &m->rep->n_running, "%s run %" PRId64, in->path,
                         key.id)) {
                status = nomem(err);
            }
            if (status == MPSL_OK) {
                status = copy_run(m, in, runs, insert_run, c_id, key.id, t, n_tables, err);
            }
            sr->copied += status == MPSL_OK;
        } else {
            status = known;
        }
        free(owned);
    }
    if (status == MPSL_OK && rc != SQLITE_DONE) {
        status = source_error(in, "reading its runs", err);
    }
    sqlite3_finalize(runs);
    sqlite3_finalize(origin);
    sqlite3_finalize(insert_run);
    tables_free(t, n_tables);
    return status;
}

/* ------------------------------------------------------------ the passes */

static void report_reset(merge_report *rep)
{
    free_lines(&rep->running, &rep->n_running);
    free_lines(&rep->duplicates, &rep->n_duplicates);
    free_lines(&rep->ignored_tables, &rep->n_ignored_tables);
    for (int i = 0; i < rep->n_tables; i++) {
        free(rep->tables[i].name);
    }
    free(rep->tables);
    rep->tables = NULL;
    rep->n_tables = 0;
    rep->copied = rep->skipped = 0;
}

static int cmp_tables(const void *a, const void *b)
{
    return strcmp(((const merge_table_rows *)a)->name, ((const merge_table_rows *)b)->name);
}

/* The refusal for duplicates, naming the first few. */
static int refuse_duplicates(const merge_ctx *m, mpsl_error *err)
{
    const merge_report *rep = m->rep;
    char list[768] = "";
    size_t used = 0;
    for (int i = 0; i < rep->n_duplicates && i < MERGE_DUPLICATES_SHOWN; i++) {
        int w = snprintf(list + used, sizeof list - used, "\n  %s", rep->duplicates[i]);
        used = w < 0 || (size_t)w >= sizeof list - used ? sizeof list - 1 : used + (size_t)w;
    }
    int more = rep->n_duplicates - MERGE_DUPLICATES_SHOWN;
    return mpsl_errs(err, MPSL_ERR_INVALID,
                     "%d run%s of the sources %s already in %s (or given twice); nothing "
                     "written (--skip-duplicates merges the others and skips these):%s%s",
                     rep->n_duplicates, rep->n_duplicates == 1 ? "" : "s",
                     rep->n_duplicates == 1 ? "is" : "are", m->out_path, list,
                     more > 0 ? "\n  ..." : "");
}

static int merge_pass(merge_ctx *m, mpsl_error *err)
{
    report_reset(m->rep);
    int status = known_setup(m, err);
    for (int k = 0; status == MPSL_OK && k < m->n_in; k++) {
        status = source_pass(m, k, err);
        m->rep->copied += m->rep->sources[k].copied;
        m->rep->skipped += m->rep->sources[k].skipped;
    }
    known_finish(m);
    if (m->rep->n_tables > 1) {
        qsort(m->rep->tables, (size_t)m->rep->n_tables, sizeof *m->rep->tables, cmp_tables);
    }
    if (status == MPSL_OK && m->rep->n_duplicates > 0 && !m->opt->skip_duplicates) {
        status = refuse_duplicates(m, err);
    }
    return status;
}

/* The write pass in one transaction on the output, opened (created or upgraded) by
 * store_open. A new output that ends up with no runs because the merge failed is removed,
 * so that a failed merge leaves nothing behind. */
static int merge_write(merge_ctx *m, mpsl_error *err)
{
    int status = store_open(m->out_path, STORE_READ_WRITE, &m->out_store, err);
    if (status) {
        return status;
    }
    m->out = store_db(m->out_store);
    m->write = 1;
    status = store_begin(m->out_store, err);
    sqlite3_stmt *now = NULL;
    if (status == MPSL_OK) {
        int rc = sqlite3_prepare_v2(m->out, "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", -1,
                                    &now, NULL);
        if (rc == SQLITE_OK && sqlite3_step(now) == SQLITE_ROW) {
            snprintf(m->merged_at, sizeof m->merged_at, "%s", sqlite3_column_text(now, 0));
        } else {
            status = out_error(m, sqlite3_errcode(m->out), "reading the time", err);
        }
        sqlite3_finalize(now);
    }
    if (status == MPSL_OK) {
        status = merge_pass(m, err);
    }
    if (status == MPSL_OK) {
        status = store_commit(m->out_store, err);
    } else {
        store_rollback(m->out_store);
    }
    int empty_new = 0;
    if (status != MPSL_OK && !m->rep->out_existed) {
        sqlite3_stmt *st = NULL;
        empty_new = sqlite3_prepare_v2(m->out, "SELECT COUNT(*) FROM main.runs", -1, &st,
                                       NULL) == SQLITE_OK &&
                    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) == 0;
        sqlite3_finalize(st);
    }
    store_close(m->out_store);
    m->out_store = NULL;
    m->out = NULL;
    if (empty_new) {
        static const char *const sides[] = {"", "-wal", "-shm"};
        for (size_t i = 0; i < sizeof sides / sizeof *sides; i++) {
            char *p = mpsl_strfmt("%s%s", m->out_path, sides[i]);
            if (p) {
                unlink(p);
            }
            free(p);
        }
    }
    return status;
}

/* The output among the sources (the same file under any name) is refused before anything
 * is read: merging a database into itself would copy every run onto itself. */
static int check_out_not_source(const char *out_path, const char *const *sources, int n,
                                mpsl_error *err)
{
    struct stat o, s;
    if (stat(out_path, &o) != 0) {
        return MPSL_OK; /* absent: cannot be a source, which must exist */
    }
    for (int k = 0; k < n; k++) {
        if (stat(sources[k], &s) == 0 && s.st_dev == o.st_dev && s.st_ino == o.st_ino) {
            return mpsl_errs(err, MPSL_ERR_INVALID,
                             "the output '%s' is also a source ('%s'); merge into another "
                             "file (-o)",
                             out_path, sources[k]);
        }
    }
    return MPSL_OK;
}

int store_merge(const char *out_path, const char *const *sources, int n_sources,
                const merge_options *opt, merge_report *rep, mpsl_error *err)
{
    memset(rep, 0, sizeof *rep);
    if (!out_path || !*out_path || n_sources < 1) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "merge: an output and at least one source");
    }
    rep->sources = calloc((size_t)n_sources, sizeof *rep->sources);
    merge_input *in = calloc((size_t)n_sources, sizeof *in);
    if (!rep->sources || !in) {
        free(in);
        return nomem(err);
    }
    rep->n_sources = n_sources;
    int status = check_out_not_source(out_path, sources, n_sources, err);
    sqlite3 *peek = NULL;
    if (status == MPSL_OK) {
        status = merge_output_peek(out_path, &peek, &rep->out_existed, &rep->out_schema, err);
    }
    char *tmpdir = NULL;
    int opened = 0;
    for (int k = 0; status == MPSL_OK && k < n_sources; k++) {
        status = merge_input_open(&in[k], sources[k], k, &tmpdir, err);
        opened = k + 1; /* closed below, also when it failed half-way */
        merge_source_report *sr = &rep->sources[k];
        sr->path = sources[k];
        sr->schema = in[k].schema;
        sr->upgraded_copy = in[k].copy != NULL;
        sr->journal_applied = in[k].journal && in[k].copy != NULL;
    }
    merge_ctx m = {.opt = opt, .out_path = out_path, .in = in, .n_in = n_sources, .rep = rep,
                   .out = peek};
    if (status == MPSL_OK) {
        status = merge_pass(&m, err); /* the plan: reads only */
    }
    sqlite3_close_v2(peek);
    if (status == MPSL_OK && !opt->dry_run) {
        status = merge_write(&m, err);
    }
    for (int k = 0; k < opened; k++) {
        merge_input_close(&in[k]);
    }
    free(in);
    merge_tmpdir_remove(tmpdir);
    return status;
}

void merge_report_free(merge_report *rep)
{
    if (!rep) {
        return;
    }
    report_reset(rep);
    free(rep->sources);
    memset(rep, 0, sizeof *rep);
}
