/* cmd_show.c: `mpsl show RUN`: one run in full: summary, plugins, tags, per-epoch metrics,
 * per-client data, bytes by direction and kind, FLOPs by party and pass, MPSL's tokenizer
 * drift (when its diagnostics were recorded), resolved config. */
#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "results/store.h"
#include "table.h"

static const char show_usage[] =
    "usage: mpsl show RUN [--db PATH] [--format table|csv|json] [--section NAME]\n"
    "Show one run in full. Sections: summary, plugins, tags, epochs, clients, comm, compute,\n"
    "drift (MPSL's diagnostics; only when recorded), config; --section prints only one (CSV\n"
    "prints each section after a '# NAME' line).\n";

static const char *const show_sections[] = {"summary", "plugins", "tags",    "epochs", "clients",
                                            "comm",    "compute", "drift", "config"};
enum { SHOW_DRIFT = 7 };
enum { SHOW_NSECTIONS = sizeof show_sections / sizeof show_sections[0] };

/* The JSON key of each section in `--format json`. */
static const char *const show_json_keys[SHOW_NSECTIONS] = {
    "run", "plugins", "tags", "epochs", "clients", "comm", "compute", "drift", "config_yaml"};

static const table_column summary_columns[] = {
    {"id", TABLE_INT},
    {"name", TABLE_TEXT},
    {"status", TABLE_TEXT},
    {"message", TABLE_TEXT},
    {"method", TABLE_TEXT},
    {"dataset", TABLE_TEXT},
    {"n_clients", TABLE_INT},
    {"seed", TABLE_INT},
    {"experiment_path", TABLE_TEXT},
    {"revision", TABLE_TEXT},
    {"mpsl_version", TABLE_TEXT},
    {"host", TABLE_TEXT},
    {"transport", TABLE_TEXT},
    {"n_ranks", TABLE_INT},
    {"hosts", TABLE_TEXT},
    {"started_at", TABLE_TIME},
    {"ended_at", TABLE_TIME},
    {"wall_seconds", TABLE_SECONDS},
    {"peak_rss_bytes", TABLE_BYTES},
    {"epochs", TABLE_INT},
    {"final_test_acc", TABLE_REAL},
    {"best_test_acc", TABLE_REAL},
    {"final_test_loss", TABLE_REAL},
    {"bytes_up_per_client", TABLE_BYTES},
    {"bytes_down_per_client", TABLE_BYTES},
    {"client_flops", TABLE_FLOPS},
    {"client_flops_per_client", TABLE_FLOPS},
    {"server_flops", TABLE_FLOPS},
};
static const char summary_sql[] =
    "SELECT r.id, r.name, r.status, r.message, r.method, r.dataset, r.n_clients, r.seed, "
    "r.experiment_path, r.revision, r.mpsl_version, r.host, r.transport, r.n_ranks, r.hosts, "
    "r.started_at, r.ended_at, "
    "s.wall_seconds, s.peak_rss_bytes, s.epochs, s.final_test_acc, s.best_test_acc, "
    "s.final_test_loss, s.bytes_up_per_client, s.bytes_down_per_client, s.client_flops, "
    "s.client_flops_per_client, s.server_flops "
    "FROM runs r JOIN run_summary s ON s.id = r.id WHERE r.id = ?1";

static const table_column plugin_columns[] = {
    {"slot", TABLE_TEXT}, {"name", TABLE_TEXT}, {"version", TABLE_TEXT},
    {"abi", TABLE_TEXT},  {"path", TABLE_TEXT},
};
static const char plugin_sql[] =
    "SELECT slot, name, version, abi, path FROM run_plugins WHERE run_id = ?1 ORDER BY rowid";

static const table_column tag_columns[] = {{"tag", TABLE_TEXT}};
static const char tag_sql[] = "SELECT tag FROM run_tags WHERE run_id = ?1 ORDER BY tag";

static const table_column client_columns[] = {
    {"client", TABLE_INT},      {"n_samples", TABLE_INT},     {"class_histogram", TABLE_JSON_RAW},
    {"train_acc", TABLE_REAL},  {"train_loss", TABLE_REAL},   {"bytes_up", TABLE_BYTES},
    {"bytes_down", TABLE_BYTES}, {"compute_seconds", TABLE_SECONDS},
    {"wait_seconds", TABLE_SECONDS},
};
static const char client_sql[] =
    "WITH cl AS (SELECT client FROM client_data WHERE run_id = ?1"
    "  UNION SELECT client FROM comm WHERE run_id = ?1"
    "  UNION SELECT client FROM client_metrics WHERE run_id = ?1) "
    "SELECT cl.client, d.n_samples, d.class_histogram,"
    " (SELECT m.value FROM client_metrics m WHERE m.run_id = ?1 AND m.client = cl.client"
    "   AND m.name = 'train_acc' ORDER BY m.epoch DESC LIMIT 1),"
    " (SELECT m.value FROM client_metrics m WHERE m.run_id = ?1 AND m.client = cl.client"
    "   AND m.name = 'train_loss' ORDER BY m.epoch DESC LIMIT 1),"
    " (SELECT SUM(c.bytes) FROM comm c WHERE c.run_id = ?1 AND c.client = cl.client"
    "   AND c.direction = 'up'),"
    " (SELECT SUM(c.bytes) FROM comm c WHERE c.run_id = ?1 AND c.client = cl.client"
    "   AND c.direction = 'down'),"
    " (SELECT SUM(m.value) FROM client_metrics m WHERE m.run_id = ?1 AND m.client = cl.client"
    "   AND m.name = 'compute_seconds'),"
    " (SELECT SUM(m.value) FROM client_metrics m WHERE m.run_id = ?1 AND m.client = cl.client"
    "   AND m.name = 'wait_seconds') "
    "FROM cl LEFT JOIN client_data d ON d.run_id = ?1 AND d.client = cl.client "
    "ORDER BY cl.client";

static const table_column comm_columns[] = {
    {"direction", TABLE_TEXT}, {"kind", TABLE_TEXT},    {"bytes", TABLE_BYTES},
    {"messages", TABLE_INT},   {"clients", TABLE_INT},  {"bytes_per_client", TABLE_BYTES},
};
static const char comm_sql[] =
    "SELECT direction, kind, bytes, messages, clients, bytes * 1.0 / NULLIF(COALESCE("
    "(SELECT n_clients FROM runs WHERE id = ?1), clients), 0) "
    "FROM comm_by_kind WHERE run_id = ?1 ORDER BY direction DESC, kind";

static const table_column compute_columns[] = {
    {"party", TABLE_TEXT},   {"pass", TABLE_TEXT},   {"flops", TABLE_FLOPS},
    {"flops_per_client", TABLE_FLOPS},
};
static const char compute_sql[] =
    "SELECT party, pass, SUM(flops), CASE WHEN party = 'client' THEN SUM(flops) / NULLIF("
    "(SELECT n_clients FROM runs WHERE id = ?1), 0) END "
    "FROM compute_totals WHERE run_id = ?1 GROUP BY party, pass "
    "ORDER BY party, pass DESC";

/* MPSL's drift diagnostics (strategy.diagnostics) per client at the last epoch that has
 * them: its tokenizer's distance from the average, its tokenizer on the test split, and on
 * its own training sample the average, its own tokenizer and the others' (the mean of its
 * row of the cross-accuracy matrix without the diagonal). */
static const table_column drift_columns[] = {
    {"epoch", TABLE_INT},
    {"client", TABLE_INT},
    {"tokenizer_drift", TABLE_REAL},
    {"own_tokenizer_test_acc", TABLE_REAL},
    {"train_acc_avg_tokenizer", TABLE_REAL},
    {"cross_acc_own", TABLE_REAL},
    {"cross_acc_others", TABLE_REAL},
};
static const char drift_sql[] =
    "WITH last AS (SELECT MAX(epoch) AS e FROM client_metrics WHERE run_id = ?1"
    "  AND name = 'tokenizer_drift'),"
    " cm AS (SELECT client, name, value FROM client_metrics, last WHERE run_id = ?1"
    "  AND epoch = last.e) "
    "SELECT (SELECT e FROM last), c.client,"
    " (SELECT value FROM cm WHERE cm.client = c.client AND name = 'tokenizer_drift'),"
    " (SELECT value FROM cm WHERE cm.client = c.client AND name = 'own_tokenizer_test_acc'),"
    " (SELECT value FROM cm WHERE cm.client = c.client AND name = 'train_acc_avg_tokenizer'),"
    " (SELECT value FROM cm WHERE cm.client = c.client"
    "   AND name = 'cross_acc_tok_' || c.client),"
    " (SELECT AVG(value) FROM cm WHERE cm.client = c.client AND name LIKE 'cross_acc_tok_%'"
    "   AND name != 'cross_acc_tok_' || c.client) "
    "FROM (SELECT DISTINCT client FROM cm WHERE name = 'tokenizer_drift') c ORDER BY c.client";

static const table_column config_columns[] = {{"config_yaml", TABLE_TEXT}};

/* The display kind of a metric from the naming conventions in docs/results-schema.md. */
static table_kind metric_kind(const char *name)
{
    size_t n = strlen(name);
    if (n >= 6 && !strcmp(name + n - 6, "_bytes")) {
        return TABLE_BYTES;
    }
    if ((n >= 8 && !strcmp(name + n - 8, "_seconds")) || !strcmp(name, "wall_s")) {
        return TABLE_SECONDS;
    }
    if (n >= 5 && !strcmp(name + n - 5, "flops")) {
        return TABLE_FLOPS;
    }
    return TABLE_REAL;
}

/* A table from a fixed query bound to the run id. */
static int query_table(sqlite3 *db, const char *sql, const table_column *cols, int ncols,
                       long long id, table **out)
{
    sqlite3_stmt *st = NULL;
    *out = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        *out = table_create(cols, ncols);
        rc = *out ? table_add_stmt_rows(*out, st) : SQLITE_NOMEM;
    }
    sqlite3_finalize(st);
    return rc;
}

/* The per-epoch table: one column per metric the run recorded (conventional ones first),
 * then bytes and FLOPs of that epoch. The metric names live in *names until the caller
 * frees them after the table. */
static int epoch_table(sqlite3 *db, long long id, table **out, char ***names, int *nnames)
{
    *out = NULL;
    *names = NULL;
    *nnames = 0;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
        "SELECT DISTINCT name FROM epoch_metrics WHERE run_id = ?1 ORDER BY "
        "CASE name WHEN 'test_acc' THEN 0 WHEN 'test_loss' THEN 1 WHEN 'train_acc' THEN 2 "
        "WHEN 'train_loss' THEN 3 WHEN 'epoch_seconds' THEN 4 WHEN 'peak_rss_bytes' THEN 5 "
        "ELSE 6 END, name", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, id);
    int cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*nnames == cap) {
            cap = cap ? cap * 2 : 8;
            char **grown = realloc(*names, sizeof *grown * (size_t)cap);
            if (!grown) {
                sqlite3_finalize(st);
                return SQLITE_NOMEM;
            }
            *names = grown;
        }
        (*names)[*nnames] = strdup((const char *)sqlite3_column_text(st, 0));
        if (!(*names)[(*nnames)++]) {
            sqlite3_finalize(st);
            return SQLITE_NOMEM;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        return rc;
    }
    int ncols = 1 + *nnames + 4;
    table_column *cols = calloc((size_t)ncols, sizeof *cols);
    size_t cap_sql = 1024 + (size_t)*nnames * 128;
    char *sql = malloc(cap_sql);
    if (!cols || !sql) {
        free(cols);
        free(sql);
        return SQLITE_NOMEM;
    }
    cols[0] = (table_column){"epoch", TABLE_INT};
    size_t len = (size_t)snprintf(sql, cap_sql,
        "WITH ep AS (SELECT epoch FROM epoch_metrics WHERE run_id = ?1"
        " UNION SELECT epoch FROM comm WHERE run_id = ?1"
        " UNION SELECT epoch FROM compute WHERE run_id = ?1) SELECT ep.epoch");
    for (int i = 0; i < *nnames; i++) {
        cols[1 + i] = (table_column){(*names)[i], metric_kind((*names)[i])};
        len += (size_t)snprintf(sql + len, cap_sql - len,
                                ", (SELECT value FROM epoch_metrics WHERE run_id = ?1"
                                " AND epoch = ep.epoch AND name = ?%d)", 2 + i);
    }
    cols[ncols - 4] = (table_column){"bytes_up", TABLE_BYTES};
    cols[ncols - 3] = (table_column){"bytes_down", TABLE_BYTES};
    cols[ncols - 2] = (table_column){"client_flops", TABLE_FLOPS};
    cols[ncols - 1] = (table_column){"server_flops", TABLE_FLOPS};
    snprintf(sql + len, cap_sql - len,
        ", (SELECT SUM(bytes) FROM comm WHERE run_id = ?1 AND epoch = ep.epoch"
        " AND direction = 'up')"
        ", (SELECT SUM(bytes) FROM comm WHERE run_id = ?1 AND epoch = ep.epoch"
        " AND direction = 'down')"
        ", (SELECT SUM(flops) FROM compute_totals WHERE run_id = ?1 AND epoch = ep.epoch"
        " AND party = 'client')"
        ", (SELECT SUM(flops) FROM compute_totals WHERE run_id = ?1 AND epoch = ep.epoch"
        " AND party = 'server') FROM ep ORDER BY ep.epoch");
    rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    free(sql);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        for (int i = 0; i < *nnames; i++) {
            sqlite3_bind_text(st, 2 + i, (*names)[i], -1, SQLITE_STATIC);
        }
        *out = table_create(cols, ncols);
        rc = *out ? table_add_stmt_rows(*out, st) : SQLITE_NOMEM;
    }
    sqlite3_finalize(st);
    free(cols);
    return rc;
}

static void print_section_text(int i, const table *t, FILE *out)
{
    if (i == 0) {
        table_print_transposed(t, out);
        return;
    }
    if (i == SHOW_NSECTIONS - 1) { /* config, verbatim */
        const char *yaml = table_rows(t) ? table_get(t, 0, 0) : NULL;
        fprintf(out, "\nconfig:%s", yaml ? "\n" : " (none)\n");
        if (yaml) {
            fputs(yaml, out);
            if (*yaml && yaml[strlen(yaml) - 1] != '\n') {
                fputc('\n', out);
            }
        }
        return;
    }
    if (table_rows(t) == 0) {
        fprintf(out, "\n%s: (none)\n", show_sections[i]);
        return;
    }
    if (i == 2) { /* tags on one line */
        fputs("\ntags:", out);
        for (int r = 0; r < table_rows(t); r++) {
            fprintf(out, "%s%s", r ? ", " : " ", table_get(t, r, 0));
        }
        fputc('\n', out);
        return;
    }
    if (i == SHOW_DRIFT) {
        fprintf(out, "\ndrift (the client tokenizers at epoch %s; the run's train_acc is each "
                "client's own tokenizer on its own batches):\n", table_get(t, 0, 0));
    } else {
        fprintf(out, "\n%s:\n", show_sections[i]);
    }
    table_print(t, TABLE_FORMAT_TABLE, out);
}

static void print_section_json(int i, const table *t, FILE *out)
{
    if (i == 0) {
        if (table_rows(t)) {
            table_print_json_object(t, 0, out);
        } else {
            fputs("null", out);
        }
    } else if (i == 2) { /* tags: plain strings */
        fputc('[', out);
        for (int r = 0; r < table_rows(t); r++) {
            if (r) {
                fputs(", ", out);
            }
            table_print_json_string(table_get(t, r, 0), out);
        }
        fputc(']', out);
    } else if (i == SHOW_NSECTIONS - 1) {
        table_print_json_string(table_rows(t) ? table_get(t, 0, 0) : NULL, out);
    } else {
        table_print_json_array(t, out);
    }
}

int cmd_show(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"format", required_argument, NULL, 'f'},
        {"section", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = cli_default_db();
    table_format format = TABLE_FORMAT_TABLE;
    int only = -1;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'f':
            if (table_format_parse(optarg, &format) != 0) {
                fprintf(stderr, "mpsl show: unknown format '%s' (table, csv or json)\n", optarg);
                return 2;
            }
            break;
        case 's':
            for (int i = 0; i < SHOW_NSECTIONS; i++) {
                if (!strcmp(optarg, show_sections[i])) {
                    only = i;
                }
            }
            if (only < 0) {
                fprintf(stderr, "mpsl show: unknown section '%s' (summary, plugins, tags, "
                                "epochs, clients, comm, compute, drift, config)\n", optarg);
                return 2;
            }
            break;
        case 'h': fputs(show_usage, stdout); return 0;
        case ':':
            fprintf(stderr, "mpsl show: option '%s' needs a value\n%s", argv[optind - 1],
                    show_usage);
            return 2;
        default:
            fprintf(stderr, "mpsl show: unknown option '%s'\n%s", argv[optind - 1], show_usage);
            return 2;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "mpsl show: %s\n%s",
                argc - optind ? "one run id at a time" : "which run? (ids from `mpsl runs`)",
                show_usage);
        return 2;
    }
    const char *arg = argv[optind];
    long long id = 0;
    if (cli_parse_run_id(arg, &id) != 0) {
        fprintf(stderr, "mpsl show %s: not a run id (a positive number from `mpsl runs`)\n",
                arg);
        return 2;
    }

    mpsl_error err = {{0}};
    store *s = NULL;
    if (store_open(db, STORE_READ_ONLY, &s, &err) != MPSL_OK) {
        fprintf(stderr, "mpsl show %s: %s\n", arg, err.msg);
        return 1;
    }
    int exists = store_run_exists(s, id, &err);
    if (exists <= 0) {
        if (exists == 0) {
            fprintf(stderr, "mpsl show %s: no run %lld in %s\n", arg, id, db);
        } else {
            fprintf(stderr, "mpsl show %s: %s\n", arg, err.msg);
        }
        store_close(s);
        return 1;
    }

    sqlite3 *h = store_db(s);
    table *t[SHOW_NSECTIONS] = {NULL};
    char **names = NULL;
    int nnames = 0;
    int rc = query_table(h, summary_sql, summary_columns,
                         (int)(sizeof summary_columns / sizeof summary_columns[0]), id, &t[0]);
    if (rc == SQLITE_OK) {
        rc = query_table(h, plugin_sql, plugin_columns,
                         (int)(sizeof plugin_columns / sizeof plugin_columns[0]), id, &t[1]);
    }
    if (rc == SQLITE_OK) {
        rc = query_table(h, tag_sql, tag_columns, 1, id, &t[2]);
    }
    if (rc == SQLITE_OK) {
        rc = epoch_table(h, id, &t[3], &names, &nnames);
    }
    if (rc == SQLITE_OK) {
        rc = query_table(h, client_sql, client_columns,
                         (int)(sizeof client_columns / sizeof client_columns[0]), id, &t[4]);
    }
    if (rc == SQLITE_OK) {
        rc = query_table(h, comm_sql, comm_columns,
                         (int)(sizeof comm_columns / sizeof comm_columns[0]), id, &t[5]);
    }
    if (rc == SQLITE_OK) {
        rc = query_table(h, compute_sql, compute_columns,
                         (int)(sizeof compute_columns / sizeof compute_columns[0]), id, &t[6]);
    }
    if (rc == SQLITE_OK) {
        rc = query_table(h, drift_sql, drift_columns,
                         (int)(sizeof drift_columns / sizeof drift_columns[0]), id,
                         &t[SHOW_DRIFT]);
    }
    if (rc == SQLITE_OK) {
        rc = query_table(h, "SELECT config_yaml FROM runs WHERE id = ?1", config_columns, 1,
                         id, &t[SHOW_NSECTIONS - 1]);
    }
    /* Runs without the diagnostics show no drift section unless it is asked for. */
    int skip_drift = only < 0 && rc == SQLITE_OK && table_rows(t[SHOW_DRIFT]) == 0;
    int status = 0;
    if (rc != SQLITE_OK) {
        fprintf(stderr, "mpsl show %s: reading %s: %s\n", arg, db,
                rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(h));
        status = 1;
    } else if (format == TABLE_FORMAT_JSON) {
        if (only >= 0) {
            print_section_json(only, t[only], stdout);
        } else {
            fputc('{', stdout);
            for (int i = 0; i < SHOW_NSECTIONS; i++) {
                if (i == SHOW_DRIFT && skip_drift) {
                    continue;
                }
                fputs(i ? ",\n " : "", stdout);
                table_print_json_string(show_json_keys[i], stdout);
                fputs(": ", stdout);
                print_section_json(i, t[i], stdout);
            }
            fputc('}', stdout);
        }
        fputc('\n', stdout);
    } else if (format == TABLE_FORMAT_CSV) {
        for (int i = 0; i < SHOW_NSECTIONS; i++) {
            if ((only >= 0 && i != only) || (i == SHOW_DRIFT && skip_drift)) {
                continue;
            }
            if (only < 0) {
                printf("%s# %s\n", i ? "\n" : "", show_sections[i]);
            }
            table_print(t[i], TABLE_FORMAT_CSV, stdout);
        }
    } else {
        for (int i = 0; i < SHOW_NSECTIONS; i++) {
            if ((only < 0 || i == only) && !(i == SHOW_DRIFT && skip_drift)) {
                print_section_text(i, t[i], stdout);
            }
        }
    }
    for (int i = 0; i < SHOW_NSECTIONS; i++) {
        table_destroy(t[i]);
    }
    for (int i = 0; i < nnames; i++) {
        free(names[i]);
    }
    free(names);
    store_close(s);
    return status;
}
