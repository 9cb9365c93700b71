/* cmd_report.c: `mpsl report RUN... -o report.html`: one self-contained HTML page (inline
 * CSS and SVG, no script, no network) with runs grouped (repeats of one configuration), side by
 * side, and the figures of a paper. Runs are chosen by id, by the filters of `mpsl runs`, or
 * both (ids that pass the filters). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "report/report.h"
#include "results/store.h"

static const char report_usage[] =
    "usage: mpsl report [RUN...] -o FILE.html [--db PATH] [--status S] [--method M]\n"
    "                   [--dataset D] [--name GLOB] [--tag T]... [--limit N] [--metric NAME]\n"
    "                   [--title TEXT] [--group-by KEYS] [--band sd|ci95|none]\n"
    "                   [--target VALUE] [--link-mbps UP[,DOWN]]\n"
    "Write one self-contained HTML report (inline CSS and SVG, no script, no network). Runs\n"
    "that differ only by seed form a group, drawn as its mean with a band; a section per task\n"
    "(classification; retrieval with recall@1/5/10): mean \xC2\xB1 sd (n) of every figure per\n"
    "group, learning curves, per-step training loss (metrics.every_steps), the test metric\n"
    "against bytes per client, wall time and estimated communication time, time to target and\n"
    "the config keys that differ; then bytes, FLOPs and time per party, per-client spread and\n"
    "class histograms, and every run side by side. Runs are the ids given, or those the\n"
    "filters select (as in `mpsl runs`), or both: ids that pass the filters. With neither,\n"
    "every run. -o - writes to stdout.\n"
    "  --metric NAME       the classification test metric (default test_acc)\n"
    "  --group-by KEYS     group by these comma-separated keys (run_params columns or dotted\n"
    "                      config keys) instead of everything but the seed\n"
    "  --band KIND         around a group's mean: sd (default: \xC2\xB1 one sample standard\n"
    "                      deviation), ci95 (the 95% interval of the mean), none\n"
    "  --target VALUE      tabulate epochs, time and bytes until the test metric reaches VALUE\n"
    "  --link-mbps UP[,DOWN]  the link of estimated communication time, in Mbit/s (default\n"
    "                      10,50; one number: both ways)\n";


#define REPORT_MAX_TAGS 16

int cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},      {"output", required_argument, NULL, 'o'},
        {"status", required_argument, NULL, 's'},  {"method", required_argument, NULL, 'm'},
        {"dataset", required_argument, NULL, 'D'}, {"name", required_argument, NULL, 'n'},
        {"tag", required_argument, NULL, 't'},     {"limit", required_argument, NULL, 'l'},
        {"metric", required_argument, NULL, 'M'},  {"title", required_argument, NULL, 'T'},
        {"group-by", required_argument, NULL, 'g'}, {"band", required_argument, NULL, 'b'},
        {"target", required_argument, NULL, 'x'},  {"link-mbps", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *db = cli_default_db(), *output = NULL, *metric = "test_acc", *title = NULL;
    const char *group_by = NULL;
    report_band band = REPORT_BAND_SD;
    report_link link = {REPORT_LINK_UP_MBPS, REPORT_LINK_DOWN_MBPS};
    double target = NAN;
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
        case 'g':
            if (!*optarg) {
                fprintf(stderr, "mpsl report: --group-by wants comma-separated keys (strategy, "
                                "lr, data.partition.alpha, ...)\n");
                return 2;
            }
            group_by = optarg;
            break;
        case 'b':
            if (report_band_parse(optarg, &band) != 0) {
                fprintf(stderr, "mpsl report: --band wants sd, ci95 or none, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'x': {
            char *end = NULL;
            target = strtod(optarg, &end);
            if (!*optarg || *end || !isfinite(target)) {
                fprintf(stderr, "mpsl report: --target wants a number (e.g. 0.8), not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        }
        case 'L':
            if (report_link_parse(optarg, &link) != 0) {
                fprintf(stderr, "mpsl report: --link-mbps wants UP or UP,DOWN in Mbit/s, "
                                "positive numbers (e.g. 10,50), not '%s'\n", optarg);
                return 2;
            }
            break;
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
        long long v;
        if (cli_parse_run_id(argv[optind + i], &v) != 0) {
            fprintf(stderr, "mpsl report: '%s' is not a run id (a positive number from "
                            "`mpsl runs`)\n", argv[optind + i]);
            free(ids);
            return 2;
        }
        ids[i] = v;
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
        report_options o = {.title = title, .metric = metric, .db_path = db,
                            .group_by = group_by, .band = band, .link = link, .target = target};
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
