/* cmd_plot.c: `mpsl plot METRIC RUN... -o file.svg`: one figure of some runs as a standalone
 * SVG line chart against epoch, training step, bytes, wall time or estimated communication
 * time; repeats of one configuration drawn as their mean with a band (the report's drawing). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "report/report.h"
#include "results/store.h"

static const char plot_usage[] =
    "usage: mpsl plot METRIC RUN... -o FILE.svg [--db PATH] [--title TEXT]\n"
    "                 [--x epoch|step|bytes|seconds|comm|sim] [--group-by KEYS]\n"
    "                 [--band sd|ci95|none] [--log-x] [--log-y] [--link-mbps UP[,DOWN]]\n"
    "Draw one figure of the runs as a standalone SVG: one line per group of runs that differ\n"
    "only by seed (the mean, with a band of \xC2\xB1 one sample standard deviation), one line\n"
    "per run where a group has one. METRIC is any name in epoch_metrics (test_acc, test_loss,\n"
    "train_loss, train_acc, epoch_seconds, recall_i2t_1, a plugin's own...), or bytes,\n"
    "bytes_up, bytes_down: cumulative payload bytes per client; with --x step, a name in\n"
    "step_metrics (train_loss, train_acc: recorded with metrics.every_steps).\n"
    "  --x epoch     the epoch (default)\n"
    "  --x step      the global training step (steps of earlier epochs added)\n"
    "  --x bytes     cumulative payload bytes per client, up + down\n"
    "  --x seconds   cumulative wall time (sum of epoch_seconds)\n"
    "  --x comm      estimated communication time: bytes up / UP + bytes down / DOWN per\n"
    "                client (--link-mbps, default 10,50 Mbit/s)\n"
    "  --x sim       cumulative simulated wall time (sum of sim_epoch_seconds; runs with a\n"
    "                network: model)\n"
    "  --group-by KEYS  group by these comma-separated keys instead of all but the seed\n"
    "  --band KIND   sd (default), ci95 (95% interval of the mean) or none\n"
    "  --log-x, --log-y  logarithmic axes (by default bytes, seconds, comm and every y axis\n"
    "                go logarithmic by themselves when values span more than 100 times)\n"
    "`mpsl show RUN` lists a run's metrics. -o - writes to stdout.\n";

int cmd_plot(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"output", required_argument, NULL, 'o'},
        {"title", required_argument, NULL, 'T'},
        {"x", required_argument, NULL, 'x'},
        {"group-by", required_argument, NULL, 'g'},
        {"band", required_argument, NULL, 'b'},
        {"log-x", no_argument, NULL, 'X'},
        {"log-y", no_argument, NULL, 'Y'},
        {"link-mbps", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = cli_default_db(), *output = NULL;
    report_plot_options o = {.band = REPORT_BAND_SD,
                             .link = {REPORT_LINK_UP_MBPS, REPORT_LINK_DOWN_MBPS},
                             .x_scale = SVG_LINEAR, .y_scale = SVG_AUTO};
    int log_x = 0, log_y = 0;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'o': output = optarg; break;
        case 'T': o.title = optarg; break;
        case 'x':
            if (report_xaxis_parse(optarg, &o.x) != 0) {
                fprintf(stderr, "mpsl plot: --x wants epoch, step, bytes, seconds, comm or sim, "
                                "not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'g':
            if (!*optarg) {
                fprintf(stderr, "mpsl plot: --group-by wants comma-separated keys (strategy, "
                                "lr, data.partition.alpha, ...)\n");
                return 2;
            }
            o.group_by = optarg;
            break;
        case 'b':
            if (report_band_parse(optarg, &o.band) != 0) {
                fprintf(stderr, "mpsl plot: --band wants sd, ci95 or none, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'X': log_x = 1; break;
        case 'Y': log_y = 1; break;
        case 'L':
            if (report_link_parse(optarg, &o.link) != 0) {
                fprintf(stderr, "mpsl plot: --link-mbps wants UP or UP,DOWN in Mbit/s, positive "
                                "numbers (e.g. 10,50), not '%s'\n", optarg);
                return 2;
            }
            break;
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
    o.metric = argv[optind];
    if (!*o.metric) {
        fprintf(stderr, "mpsl plot: empty metric name\n");
        return 2;
    }
    /* Epochs and steps count on a linear axis unless asked; amounts and times may span
     * decades and go logarithmic by themselves. */
    o.x_scale = log_x ? SVG_LOG
                : o.x == REPORT_X_EPOCH || o.x == REPORT_X_STEP ? SVG_LINEAR : SVG_AUTO;
    o.y_scale = log_y ? SVG_LOG : SVG_AUTO;
    int n = argc - optind - 1;
    int64_t *ids = calloc((size_t)n, sizeof *ids);
    if (!ids) {
        fputs("mpsl plot: out of memory\n", stderr);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        const char *a = argv[optind + 1 + i];
        long long v;
        if (cli_parse_run_id(a, &v) != 0) {
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
    o.db_path = db;
    report_buf svg = {0};
    int status = 0;
    if (report_plot_svg(store_db(s), ids, n, &o, &svg, &err) != MPSL_OK ||
        report_buf_write(&svg, output, &err) != MPSL_OK) {
        fprintf(stderr, "mpsl plot: %s\n", err.msg);
        status = 1;
    }
    report_buf_free(&svg);
    store_close(s);
    free(ids);
    return status;
}
