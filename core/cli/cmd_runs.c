/* cmd_runs.c: `mpsl runs`: list the runs in a results database, newest last, with filters
 * on status, method, dataset, name (a glob) and tags. */
#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "results/store.h"
#include "table.h"

static const char runs_usage[] =
    "usage: mpsl runs [--db PATH] [--format table|csv|json] [--status S] [--method M]\n"
    "                 [--dataset D] [--name GLOB] [--tag T]... [--limit N]\n"
    "List runs: id, name, method, dataset, clients, status, epochs, final and best test_acc,\n"
    "start time and wall time. --status is running, finished, failed or interrupted; --name\n"
    "takes a glob ('mnist-*'); --tag may repeat (all must match); --limit keeps the newest N.\n";

#define RUNS_MAX_TAGS 16

static const table_column runs_columns[] = {
    {"id", TABLE_INT},           {"name", TABLE_TEXT},         {"method", TABLE_TEXT},
    {"dataset", TABLE_TEXT},     {"clients", TABLE_INT},       {"status", TABLE_TEXT},
    {"epochs", TABLE_INT},       {"final_test_acc", TABLE_REAL}, {"best_test_acc", TABLE_REAL},
    {"started_at", TABLE_TIME},  {"wall_seconds", TABLE_SECONDS},
};

int cmd_runs(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},     {"format", required_argument, NULL, 'f'},
        {"status", required_argument, NULL, 's'}, {"method", required_argument, NULL, 'm'},
        {"dataset", required_argument, NULL, 'D'}, {"name", required_argument, NULL, 'n'},
        {"tag", required_argument, NULL, 't'},    {"limit", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *db = cli_default_db(), *status = NULL, *method = NULL, *dataset = NULL,
               *name = NULL;
    const char *tags[RUNS_MAX_TAGS];
    int ntags = 0;
    long long limit = -1;
    table_format format = TABLE_FORMAT_TABLE;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'f':
            if (table_format_parse(optarg, &format) != 0) {
                fprintf(stderr, "mpsl runs: unknown format '%s' (table, csv or json)\n", optarg);
                return 2;
            }
            break;
        case 's':
            if (strcmp(optarg, "running") && strcmp(optarg, "finished") &&
                strcmp(optarg, "failed") && strcmp(optarg, "interrupted")) {
                fprintf(stderr, "mpsl runs: unknown status '%s' (running, finished, failed "
                                "or interrupted)\n", optarg);
                return 2;
            }
            status = optarg;
            break;
        case 'm': method = optarg; break;
        case 'D': dataset = optarg; break;
        case 'n': name = optarg; break;
        case 't':
            if (ntags == RUNS_MAX_TAGS) {
                fprintf(stderr, "mpsl runs: at most %d --tag options\n", RUNS_MAX_TAGS);
                return 2;
            }
            tags[ntags++] = optarg;
            break;
        case 'l': {
            char *end = NULL;
            limit = strtoll(optarg, &end, 10);
            if (!*optarg || *end || limit <= 0) {
                fprintf(stderr, "mpsl runs: --limit wants a positive number, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        }
        case 'h': fputs(runs_usage, stdout); return 0;
        case ':':
            fprintf(stderr, "mpsl runs: option '%s' needs a value\n%s", argv[optind - 1],
                    runs_usage);
            return 2;
        default:
            fprintf(stderr, "mpsl runs: unknown option '%s'\n%s", argv[optind - 1], runs_usage);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mpsl runs: unexpected argument '%s'\n%s", argv[optind], runs_usage);
        return 2;
    }

    char sql[2048];
    size_t len = (size_t)snprintf(sql, sizeof sql,
        "SELECT * FROM (SELECT id, name, method, dataset, n_clients, status, epochs, "
        "final_test_acc, best_test_acc, started_at, wall_seconds FROM run_summary s WHERE 1");
    if (status) {
        len += (size_t)snprintf(sql + len, sizeof sql - len, " AND status = :status");
    }
    if (method) {
        len += (size_t)snprintf(sql + len, sizeof sql - len, " AND method = :method");
    }
    if (dataset) {
        len += (size_t)snprintf(sql + len, sizeof sql - len, " AND dataset = :dataset");
    }
    if (name) {
        len += (size_t)snprintf(sql + len, sizeof sql - len, " AND name GLOB :name");
    }
    for (int i = 0; i < ntags; i++) {
        len += (size_t)snprintf(sql + len, sizeof sql - len,
                                " AND EXISTS (SELECT 1 FROM run_tags t WHERE t.run_id = s.id"
                                " AND t.tag = ?%d)", 10 + i);
    }
    snprintf(sql + len, sizeof sql - len, " ORDER BY id DESC LIMIT :limit) ORDER BY id");

    mpsl_error err = {{0}};
    store *s = NULL;
    if (store_open(db, STORE_READ_ONLY, &s, &err) != MPSL_OK) {
        fprintf(stderr, "mpsl runs: %s\n", err.msg);
        return 1;
    }
    sqlite3 *h = store_db(s);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(h, sql, -1, &st, NULL);
    table *t = table_create(runs_columns, (int)(sizeof runs_columns / sizeof runs_columns[0]));
    if (rc == SQLITE_OK && t) {
        sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":status"), status, -1, NULL);
        sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":method"), method, -1, NULL);
        sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":dataset"), dataset, -1, NULL);
        sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":name"), name, -1, NULL);
        sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":limit"), limit);
        for (int i = 0; i < ntags; i++) {
            sqlite3_bind_text(st, 10 + i, tags[i], -1, NULL);
        }
        rc = table_add_stmt_rows(t, st);
    } else if (!t) {
        rc = SQLITE_NOMEM;
    }
    int status_out = 0;
    if (rc != SQLITE_OK) {
        fprintf(stderr, "mpsl runs: reading %s: %s\n", db, sqlite3_errmsg(h));
        status_out = 1;
    } else {
        table_print(t, format, stdout);
        if (format == TABLE_FORMAT_TABLE && table_rows(t) == 0) {
            printf("(no runs in %s%s)\n", db,
                   status || method || dataset || name || ntags ? " match these filters" : "");
        }
    }
    table_destroy(t);
    sqlite3_finalize(st);
    store_close(s);
    return status_out;
}
