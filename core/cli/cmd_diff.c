/* cmd_diff.c: `mpsl diff RUN RUN...`: the config keys whose values differ among runs, one
 * column per run, from the runs' stored resolved configs flattened to dotted keys. */
#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "results/flatten.h"
#include "results/store.h"
#include "table.h"

static const char diff_usage[] =
    "usage: mpsl diff RUN RUN... [--db PATH] [--format table|csv|json] [--all]\n"
    "Show the config keys (dotted, e.g. strategy.plugin) whose values differ among the runs,\n"
    "one column per run; '-' (null in json) where a run's config lacks the key. --all shows\n"
    "every key. In table format each key is a row.\n";

typedef struct run_config {
    long long id;
    char header[32];   /* the run's column: "run 12" */
    config_pair *pairs; /* NULL when the run stored no config */
    size_t n;
} run_config;

/* Every key of every run, each once, in the order first seen. */
static const char **union_keys(const run_config *rc, int nruns, size_t *n_out)
{
    size_t total = 0, n = 0;
    for (int r = 0; r < nruns; r++) {
        total += rc[r].n;
    }
    const char **keys = malloc((total ? total : 1) * sizeof *keys);
    for (int r = 0; keys && r < nruns; r++) {
        for (size_t i = 0; i < rc[r].n; i++) {
            int seen = 0;
            for (size_t j = 0; j < n && !seen; j++) {
                seen = strcmp(keys[j], rc[r].pairs[i].key) == 0;
            }
            if (!seen) {
                keys[n++] = rc[r].pairs[i].key;
            }
        }
    }
    *n_out = n;
    return keys;
}

static int values_differ(const run_config *rc, int nruns, const char *key)
{
    const char *first = config_pairs_get(rc[0].pairs, rc[0].n, key);
    for (int r = 1; r < nruns; r++) {
        const char *v = config_pairs_get(rc[r].pairs, rc[r].n, key);
        if ((first == NULL) != (v == NULL) || (first && strcmp(first, v) != 0)) {
            return 1;
        }
    }
    return 0;
}

int cmd_diff(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"format", required_argument, NULL, 'f'},
        {"all", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = cli_default_db();
    table_format format = TABLE_FORMAT_TABLE;
    int all = 0;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'a': all = 1; break;
        case 'f':
            if (table_format_parse(optarg, &format) != 0) {
                fprintf(stderr, "mpsl diff: unknown format '%s' (table, csv or json)\n", optarg);
                return 2;
            }
            break;
        case 'h': fputs(diff_usage, stdout); return 0;
        case ':':
            fprintf(stderr, "mpsl diff: option '%s' needs a value\n%s", argv[optind - 1],
                    diff_usage);
            return 2;
        default:
            fprintf(stderr, "mpsl diff: unknown option '%s'\n%s", argv[optind - 1], diff_usage);
            return 2;
        }
    }
    int nruns = argc - optind;
    if (nruns < 2 && !(all && nruns == 1)) {
        fprintf(stderr, "mpsl diff: which runs? give two or more run ids (from `mpsl runs`), "
                        "or one with --all\n%s", diff_usage);
        return 2;
    }
    run_config *rc = calloc((size_t)nruns, sizeof *rc);
    if (!rc) {
        fputs("mpsl diff: out of memory\n", stderr);
        return 1;
    }
    for (int i = 0; i < nruns; i++) {
        if (cli_parse_run_id(argv[optind + i], &rc[i].id) != 0) {
            fprintf(stderr, "mpsl diff: '%s' is not a run id (a positive number from "
                            "`mpsl runs`)\n", argv[optind + i]);
            free(rc);
            return 2;
        }
        snprintf(rc[i].header, sizeof rc[i].header, "run %lld", rc[i].id);
    }

    mpsl_error err = {{0}};
    store *s = NULL;
    int status = 0;
    if (store_open(db, STORE_READ_ONLY, &s, &err) != MPSL_OK) {
        fprintf(stderr, "mpsl diff: %s\n", err.msg);
        status = 1;
    }
    for (int i = 0; status == 0 && i < nruns; i++) {
        char *json = NULL;
        if (config_of_run(store_db(s), rc[i].id, &json, &err) != MPSL_OK) {
            fprintf(stderr, "mpsl diff: %s (%s)\n", err.msg, db);
            status = 1;
        } else if (!json) {
            fprintf(stderr, "mpsl diff: note: run %lld stored no config; its column is empty\n",
                    rc[i].id);
        } else if (config_flatten(json, &rc[i].pairs, &rc[i].n, &err) != MPSL_OK) {
            fprintf(stderr, "mpsl diff: run %lld: %s\n", rc[i].id, err.msg);
            status = 1;
        }
        free(json);
    }

    table *t = NULL;
    size_t n_keys = 0;
    const char **keys = status == 0 ? union_keys(rc, nruns, &n_keys) : NULL;
    table_column *cols = status == 0 ? calloc((size_t)nruns + 1, sizeof *cols) : NULL;
    if (status == 0 && (!keys || !cols)) {
        fputs("mpsl diff: out of memory\n", stderr);
        status = 1;
    }
    if (status == 0) {
        cols[0] = (table_column){"key", TABLE_TEXT};
        for (int i = 0; i < nruns; i++) {
            cols[i + 1] = (table_column){rc[i].header, TABLE_TEXT};
        }
        t = table_create(cols, nruns + 1);
    }
    int shown = 0;
    for (size_t k = 0; t && status == 0 && k < n_keys; k++) {
        if (!all && !values_differ(rc, nruns, keys[k])) {
            continue;
        }
        int row = table_add_row(t);
        int bad = row < 0 || table_set(t, row, 0, keys[k]) != 0;
        for (int i = 0; !bad && i < nruns; i++) {
            bad = table_set(t, row, i + 1, config_pairs_get(rc[i].pairs, rc[i].n, keys[k])) != 0;
        }
        if (bad) {
            fputs("mpsl diff: out of memory\n", stderr);
            status = 1;
        }
        shown++;
    }
    if (status == 0 && !t) {
        fputs("mpsl diff: out of memory\n", stderr);
        status = 1;
    }
    if (status == 0) {
        if (format == TABLE_FORMAT_TABLE && shown == 0) {
            printf("the %d runs' configs are equal (--all lists them)\n", nruns);
        } else {
            table_print(t, format, stdout);
        }
    }
    table_destroy(t);
    free(cols);
    free(keys);
    for (int i = 0; i < nruns; i++) {
        config_pairs_free(rc[i].pairs, rc[i].n);
    }
    free(rc);
    store_close(s);
    return status;
}
