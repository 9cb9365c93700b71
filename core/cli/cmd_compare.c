/* cmd_compare.c: `mpsl compare RUN RUN...`: runs side by side: final and best test metric,
 * final loss, bytes per client each way, FLOPs per party, wall time and peak memory. */
#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "results/store.h"
#include "table.h"

static const char compare_usage[] =
    "usage: mpsl compare RUN RUN... [--db PATH] [--format table|csv|json] [--metric NAME]\n"
    "Put runs side by side. --metric picks the test metric (default test_acc); its best is\n"
    "the maximum, or the minimum for a name containing 'loss' or 'error'. In table format\n"
    "each run is a column; in csv and json each run is a row.\n";

/* %s: MAX or MIN for the best value; %s: the loss column unless the metric is that loss. */
static const char compare_sql_fmt[] =
    "SELECT s.id, s.name, s.method, s.dataset, s.n_clients, s.status, s.epochs,"
    " (SELECT e.value FROM epoch_metrics e WHERE e.run_id = s.id AND e.name = ?2"
    "   ORDER BY e.epoch DESC LIMIT 1),"
    " (SELECT %s(e.value) FROM epoch_metrics e WHERE e.run_id = s.id AND e.name = ?2)"
    "%s, s.bytes_up_per_client, s.bytes_down_per_client, s.client_flops,"
    " s.client_flops_per_client, s.server_flops, s.wall_seconds, s.peak_rss_bytes,"
    " t.server_compute_seconds, t.server_wait_seconds, t.client_compute_seconds,"
    " t.client_wait_seconds, (SELECT transport || ' x' || n_ranks FROM runs WHERE id = s.id) "
    "FROM run_summary s JOIN run_times t ON t.run_id = s.id WHERE s.id = ?1";

static int parse_run_id(const char *s, long long *id)
{
    char *end = NULL;
    *id = strtoll(s, &end, 10);
    return *s && !*end && *id > 0 ? 0 : -1;
}

int cmd_compare(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"format", required_argument, NULL, 'f'},
        {"metric", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = cli_default_db(), *metric = "test_acc";
    table_format format = TABLE_FORMAT_TABLE;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'f':
            if (table_format_parse(optarg, &format) != 0) {
                fprintf(stderr, "mpsl compare: unknown format '%s' (table, csv or json)\n",
                        optarg);
                return 2;
            }
            break;
        case 'm':
            if (!*optarg) {
                fprintf(stderr, "mpsl compare: --metric wants a metric name\n");
                return 2;
            }
            metric = optarg;
            break;
        case 'h': fputs(compare_usage, stdout); return 0;
        case ':':
            fprintf(stderr, "mpsl compare: option '%s' needs a value\n%s", argv[optind - 1],
                    compare_usage);
            return 2;
        default:
            fprintf(stderr, "mpsl compare: unknown option '%s'\n%s", argv[optind - 1],
                    compare_usage);
            return 2;
        }
    }
    int nruns = argc - optind;
    if (nruns < 1) {
        fprintf(stderr, "mpsl compare: which runs? (ids from `mpsl runs`)\n%s", compare_usage);
        return 2;
    }
    long long *ids = calloc((size_t)nruns, sizeof *ids);
    if (!ids) {
        fputs("mpsl compare: out of memory\n", stderr);
        return 1;
    }
    for (int i = 0; i < nruns; i++) {
        if (parse_run_id(argv[optind + i], &ids[i]) != 0) {
            fprintf(stderr, "mpsl compare: '%s' is not a run id (a positive number from "
                            "`mpsl runs`)\n", argv[optind + i]);
            free(ids);
            return 2;
        }
    }

    /* Column names that carry the chosen metric. */
    char final_name[160], best_name[160];
    snprintf(final_name, sizeof final_name, "final_%s", metric);
    snprintf(best_name, sizeof best_name, "best_%s", metric);
    table_column cols[] = {
        {"id", TABLE_INT},
        {"name", TABLE_TEXT},
        {"method", TABLE_TEXT},
        {"dataset", TABLE_TEXT},
        {"n_clients", TABLE_INT},
        {"status", TABLE_TEXT},
        {"epochs", TABLE_INT},
        {final_name, TABLE_REAL},
        {best_name, TABLE_REAL},
        {"final_test_loss", TABLE_REAL},
        {"bytes_up_per_client", TABLE_BYTES},
        {"bytes_down_per_client", TABLE_BYTES},
        {"client_flops", TABLE_FLOPS},
        {"client_flops_per_client", TABLE_FLOPS},
        {"server_flops", TABLE_FLOPS},
        {"wall_seconds", TABLE_SECONDS},
        {"peak_rss_bytes", TABLE_BYTES},
        /* measured time per party: the server's, and each client's mean (its role's time) */
        {"server_compute_seconds", TABLE_SECONDS},
        {"server_wait_seconds", TABLE_SECONDS},
        {"client_compute_seconds", TABLE_SECONDS},
        {"client_wait_seconds", TABLE_SECONDS},
        {"transport", TABLE_TEXT},
    };
    int ncols = (int)(sizeof cols / sizeof cols[0]);
    /* With --metric test_loss the loss is already there: drop the fixed column. */
    int loss_column = strcmp(metric, "test_loss") != 0;
    if (!loss_column) {
        memmove(&cols[9], &cols[10], sizeof cols[0] * (size_t)(ncols - 10));
        ncols--;
    }

    mpsl_error err = {{0}};
    store *s = NULL;
    if (store_open(db, STORE_READ_ONLY, &s, &err) != MPSL_OK) {
        fprintf(stderr, "mpsl compare: %s\n", err.msg);
        free(ids);
        return 1;
    }
    sqlite3 *h = store_db(s);
    /* Lower is better for losses and errors. */
    int minimize = strstr(metric, "loss") || strstr(metric, "error");
    char sql[sizeof compare_sql_fmt + 32];
    snprintf(sql, sizeof sql, compare_sql_fmt, minimize ? "MIN" : "MAX",
             loss_column ? ", s.final_test_loss" : "");
    sqlite3_stmt *st = NULL;
    table *t = table_create(cols, ncols);
    int rc = t ? sqlite3_prepare_v2(h, sql, -1, &st, NULL) : SQLITE_NOMEM;
    int status = 0;
    for (int i = 0; rc == SQLITE_OK && i < nruns; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, ids[i]);
        sqlite3_bind_text(st, 2, metric, -1, SQLITE_STATIC);
        int before = table_rows(t);
        rc = table_add_stmt_rows(t, st);
        if (rc == SQLITE_OK && table_rows(t) == before) {
            fprintf(stderr, "mpsl compare: no run %lld in %s\n", ids[i], db);
            status = 1;
            break;
        }
    }
    if (rc != SQLITE_OK) {
        fprintf(stderr, "mpsl compare: reading %s: %s\n", db,
                rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(h));
        status = 1;
    } else if (status == 0) {
        if (format == TABLE_FORMAT_TABLE) {
            table_print_transposed(t, stdout);
        } else {
            table_print(t, format, stdout);
        }
    }
    sqlite3_finalize(st);
    table_destroy(t);
    store_close(s);
    free(ids);
    return status;
}
