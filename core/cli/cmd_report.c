/* cmd_report.c: `mpsl report RUN... -o report.html`: one self-contained HTML page (inline
 * CSS and SVG, no script, no network) with runs side by side and their plots. Runs are
 * chosen by id, by the filters of `mpsl runs`, or both (ids that pass the filters). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "report/report.h"
#include "results/store.h"

static const char report_usage[] =
    "usage: mpsl report [RUN...] -o FILE.html [--db PATH] [--status S] [--method M]\n"
    "                   [--dataset D] [--name GLOB] [--tag T]... [--limit N] [--metric NAME]\n"
    "                   [--title TEXT]\n"
    "Write one self-contained HTML report (inline CSS and SVG, no script, no network): the\n"
    "runs side by side (the figures of `mpsl compare`), learning curves, cumulative bytes per\n"
    "client, client versus server FLOPs, per-client accuracy spread and each client's class\n"
    "histogram. Runs are the ids given, or those the filters select (as in `mpsl runs`), or\n"
    "both: ids that pass the filters. With neither, every run. -o - writes to stdout.\n"
    "--metric picks the test metric of the table and first plot (default test_acc).\n";

#define REPORT_MAX_TAGS 16

/* A run id: a positive number. */
static int parse_id(const char *s, int64_t *id)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    *id = v;
    return *s && !*end && v > 0 ? 0 : -1;
}

int cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},      {"output", required_argument, NULL, 'o'},
        {"status", required_argument, NULL, 's'},  {"method", required_argument, NULL, 'm'},
        {"dataset", required_argument, NULL, 'D'}, {"name", required_argument, NULL, 'n'},
        {"tag", required_argument, NULL, 't'},     {"limit", required_argument, NULL, 'l'},
        {"metric", required_argument, NULL, 'M'},  {"title", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *db = cli_default_db(), *output = NULL, *metric = "test_acc", *title = NULL;
    const char *tags[REPORT_MAX_TAGS];
    report_filter filter = {0};
    filter.tags = tags;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'o': output = optarg; break;
        case 's':
            if (strcmp(optarg, "running") && strcmp(optarg, "finished") &&
                strcmp(optarg, "failed") && strcmp(optarg, "interrupted")) {
                fprintf(stderr, "mpsl report: unknown status '%s' (running, finished, failed "
                                "or interrupted)\n", optarg);
                return 2;
            }
            filter.status = optarg;
            break;
        case 'm': filter.method = optarg; break;
        case 'D': filter.dataset = optarg; break;
        case 'n': filter.name = optarg; break;
        case 't':
            if (filter.ntags == REPORT_MAX_TAGS) {
                fprintf(stderr, "mpsl report: at most %d --tag options\n", REPORT_MAX_TAGS);
                return 2;
            }
            tags[filter.ntags++] = optarg;
            break;
        case 'l': {
            char *end = NULL;
            filter.limit = strtoll(optarg, &end, 10);
            if (!*optarg || *end || filter.limit <= 0) {
                fprintf(stderr, "mpsl report: --limit wants a positive number, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        }
        case 'M':
            if (!*optarg) {
                fprintf(stderr, "mpsl report: --metric wants a metric name\n");
                return 2;
            }
            metric = optarg;
            break;
        case 'T': title = optarg; break;
        case 'h': fputs(report_usage, stdout); return 0;
        case ':':
            fprintf(stderr, "mpsl report: option '%s' needs a value\n%s", argv[optind - 1],
                    report_usage);
            return 2;
        default:
            fprintf(stderr, "mpsl report: unknown option '%s'\n%s", argv[optind - 1],
                    report_usage);
            return 2;
        }
    }
    if (!output) {
        fprintf(stderr, "mpsl report: where to? (-o report.html, or -o - for stdout)\n%s",
                report_usage);
        return 2;
    }
    int nids = argc - optind;
    int64_t *ids = calloc((size_t)(nids > 0 ? nids : 1), sizeof *ids);
    if (!ids) {
        fputs("mpsl report: out of memory\n", stderr);
        return 1;
    }
    for (int i = 0; i < nids; i++) {
        if (parse_id(argv[optind + i], &ids[i]) != 0) {
            fprintf(stderr, "mpsl report: '%s' is not a run id (a positive number from "
                            "`mpsl runs`)\n", argv[optind + i]);
            free(ids);
            return 2;
        }
    }

    mpsl_error err = {{0}};
    store *s = NULL;
    if (store_open(db, STORE_READ_ONLY, &s, &err) != MPSL_OK) {
        fprintf(stderr, "mpsl report: %s\n", err.msg);
        free(ids);
        return 1;
    }
    struct sqlite3 *h = store_db(s);
    int filtered = filter.status || filter.method || filter.dataset || filter.name ||
                   filter.ntags || filter.limit > 0;
    int status = 0;
    int64_t *chosen = NULL;
    int nchosen = 0;
    if (nids == 0 || filtered) {
        if (report_select_runs(h, &filter, &chosen, &nchosen, &err) != MPSL_OK) {
            fprintf(stderr, "mpsl report: %s\n", err.msg);
            status = 1;
        }
    }
    if (status == 0 && nids > 0) {
        for (int i = 0; i < nids; i++) { /* every id must exist, filtered or not */
            int exists = store_run_exists(s, ids[i], &err);
            if (exists < 0) {
                fprintf(stderr, "mpsl report: %s\n", err.msg);
            } else if (exists == 0) {
                fprintf(stderr, "mpsl report: no run %lld in %s\n", (long long)ids[i], db);
            }
            if (exists <= 0) {
                status = 1;
                break;
            }
        }
        if (status == 0 && filtered) { /* the given ids, in their order, that pass */
            int kept = 0;
            for (int i = 0; i < nids; i++) {
                for (int j = 0; j < nchosen; j++) {
                    if (chosen[j] == ids[i]) {
                        ids[kept++] = ids[i];
                        break;
                    }
                }
            }
            nids = kept;
        }
        if (status == 0) {
            free(chosen);
            chosen = ids;
            nchosen = nids;
            ids = NULL;
        }
    }
    if (status == 0 && nchosen == 0) {
        fprintf(stderr, "mpsl report: no runs in %s%s\n", db,
                filtered ? " match these filters" : "");
        status = 1;
    }
    if (status == 0) {
        report_buf page = {0};
        report_options o = {.title = title, .metric = metric, .db_path = db};
        if (report_html(h, chosen, nchosen, &o, &page, &err) != MPSL_OK ||
            report_buf_write(&page, output, &err) != MPSL_OK) {
            fprintf(stderr, "mpsl report: %s\n", err.msg);
            status = 1;
        } else if (strcmp(output, "-") != 0) {
            fprintf(stderr, "mpsl report: %d run%s -> %s (%zu bytes)\n", nchosen,
                    nchosen == 1 ? "" : "s", output, page.len);
        }
        report_buf_free(&page);
    }
    free(chosen);
    free(ids);
    store_close(s);
    return status;
}
