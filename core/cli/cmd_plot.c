/* cmd_plot.c: `mpsl plot METRIC RUN... -o file.svg`: one per-epoch metric of some runs as a
 * standalone SVG line chart (the same drawing as the report's). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "report/report.h"
#include "results/store.h"

static const char plot_usage[] =
    "usage: mpsl plot METRIC RUN... -o FILE.svg [--db PATH] [--title TEXT]\n"
    "Draw one per-epoch metric of the runs as a standalone SVG, one line per run. METRIC is\n"
    "any name in epoch_metrics (test_acc, test_loss, train_loss, train_acc, epoch_seconds,\n"
    "peak_rss_bytes, a plugin's own...) or bytes, bytes_up, bytes_down: cumulative payload\n"
    "bytes per client. `mpsl show RUN` lists a run's metrics. -o - writes to stdout.\n";

int cmd_plot(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"output", required_argument, NULL, 'o'},
        {"title", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = cli_default_db(), *output = NULL, *title = NULL;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'o': output = optarg; break;
        case 'T': title = optarg; break;
        case 'h': fputs(plot_usage, stdout); return 0;
        case ':':
            fprintf(stderr, "mpsl plot: option '%s' needs a value\n%s", argv[optind - 1],
                    plot_usage);
            return 2;
        default:
            fprintf(stderr, "mpsl plot: unknown option '%s'\n%s", argv[optind - 1], plot_usage);
            return 2;
        }
    }
    if (argc - optind < 2) {
        fprintf(stderr, "mpsl plot: which metric, and which runs?\n%s", plot_usage);
        return 2;
    }
    if (!output) {
        fprintf(stderr, "mpsl plot: where to? (-o plot.svg, or -o - for stdout)\n%s",
                plot_usage);
        return 2;
    }
    const char *metric = argv[optind];
    if (!*metric) {
        fprintf(stderr, "mpsl plot: empty metric name\n");
        return 2;
    }
    int n = argc - optind - 1;
    int64_t *ids = calloc((size_t)n, sizeof *ids);
    if (!ids) {
        fputs("mpsl plot: out of memory\n", stderr);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        const char *a = argv[optind + 1 + i];
        char *end = NULL;
        long long v = strtoll(a, &end, 10);
        if (!*a || *end || v <= 0) {
            fprintf(stderr, "mpsl plot: '%s' is not a run id (a positive number from "
                            "`mpsl runs`)\n", a);
            free(ids);
            return 2;
        }
        ids[i] = v;
    }
    mpsl_error err = {{0}};
    store *s = NULL;
    if (store_open(db, STORE_READ_ONLY, &s, &err) != MPSL_OK) {
        fprintf(stderr, "mpsl plot: %s\n", err.msg);
        free(ids);
        return 1;
    }
    report_buf svg = {0};
    int status = 0;
    if (report_plot_svg(store_db(s), db, metric, ids, n, title, &svg, &err) != MPSL_OK ||
        report_buf_write(&svg, output, &err) != MPSL_OK) {
        fprintf(stderr, "mpsl plot: %s\n", err.msg);
        status = 1;
    }
    report_buf_free(&svg);
    store_close(s);
    free(ids);
    return status;
}
