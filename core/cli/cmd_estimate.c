/* cmd_estimate.c: `mpsl estimate EXPERIMENT.yaml`: what one epoch will cost before running
 * it (bytes per client by direction and kind, FLOPs per party, parameters, activation
 * memory, MPSL's break-even against FedAvg), for the experiment, each point of its sweep, or
 * each shipped strategy (--all-strategies). The work is core/train/estimate.c's. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "run_cli.h"
#include "table.h"
#include "train/estimate.h"
#include "train/experiment.h"
#include "train/session.h"
#include "util/util.h"

static const char estimate_usage[] =
    "usage: mpsl estimate EXPERIMENT.yaml [--set KEY=VALUE]... [--format table|csv|json]\n"
    "                     [--all-strategies] [--per-client] [--table summary|comm|compute]\n"
    "                     [--no-sweep]\n"
    "Estimates one epoch of the experiment (each point of its sweep, or the file as written\n"
    "with --no-sweep; with --all-strategies,\n"
    "each of mpsl, fedavg, fedprox and centralized on the same experiment) without training:\n"
    "bytes per client by direction and message kind, FLOPs per party and pass (one measured\n"
    "step per batch size, scaled by the steps of an epoch), parameters and activation memory\n"
    "per party, and the token width and samples per client at which MPSL's bytes per client\n"
    "fall below FedAvg's. --per-client: one comm/compute row per client instead of the mean,\n"
    "min and max; --table: print only that table (CSV prints all three, a blank line apart).\n";

static const char *const all_strategies[] = {"mpsl", "fedavg", "fedprox", "centralized"};

static const table_column summary_cols[] = {
    {"point", TABLE_TEXT},          {"strategy", TABLE_TEXT},
    {"clients", TABLE_INT},         {"sampled_per_round", TABLE_INT},
    {"steps_per_epoch", TABLE_INT}, {"samples_min", TABLE_INT},
    {"samples_max", TABLE_INT},     {"tokens", TABLE_INT},
    {"width", TABLE_INT},           {"outputs", TABLE_INT},
    {"client_params", TABLE_INT},   {"client_trainable", TABLE_INT},
    {"server_params", TABLE_INT},   {"server_trainable", TABLE_INT},
    {"client_bytes_up", TABLE_BYTES}, {"client_bytes_down", TABLE_BYTES},
    {"client_flops", TABLE_FLOPS},  {"client_forward_flops", TABLE_FLOPS},
    {"server_flops", TABLE_FLOPS},  {"server_forward_flops", TABLE_FLOPS},
    {"client_activation_bytes", TABLE_BYTES}, {"server_activation_bytes", TABLE_BYTES},
    {"fedavg_bytes_per_round", TABLE_BYTES}, {"mpsl_bytes_per_client", TABLE_BYTES},
    {"breakeven_samples", TABLE_INT}, {"breakeven_width", TABLE_REAL},
    {"mpsl_below_fedavg", TABLE_TEXT},
};

static const table_column comm_cols[] = {
    {"point", TABLE_TEXT},   {"direction", TABLE_TEXT}, {"kind", TABLE_TEXT},
    {"bytes", TABLE_BYTES},  {"bytes_min", TABLE_BYTES}, {"bytes_max", TABLE_BYTES},
    {"messages", TABLE_REAL},
};
static const table_column comm_client_cols[] = {
    {"point", TABLE_TEXT}, {"client", TABLE_INT},  {"direction", TABLE_TEXT},
    {"kind", TABLE_TEXT},  {"bytes", TABLE_INT},   {"messages", TABLE_INT},
};
static const table_column compute_cols[] = {
    {"point", TABLE_TEXT}, {"party", TABLE_TEXT}, {"client", TABLE_INT},
    {"pass", TABLE_TEXT},  {"flops", TABLE_FLOPS},
};

typedef struct out_tables {
    table *summary, *comm, *compute;
    int per_client;
} out_tables;

static const char *const directions[2] = {"up", "down"};
static const char *const passes[2] = {"forward", "backward"};

/* Where MPSL sends less than FedAvg: "width > 2825; samples/client <= 51". */
static void below_text(const estimate *e, char *buf, size_t size)
{
    const estimate_breakeven *be = &e->be;
    char width[96] = "width: not variable";
    if (be->width_unmodelled) {
        snprintf(width, sizeof width, "width: not estimated for this layout");
    } else if (be->width_keys[0] && be->width_root > 0) {
        snprintf(width, sizeof width, "width %s %.4g%s", be->width_above ? ">" : "<",
                 be->width_root, be->width_exact ? "" : " (approx.)");
    } else if (be->width_keys[0]) {
        snprintf(width, sizeof width, "width: %s", be->width_above ? "always" : "never");
    }
    if (be->samples < 0) {
        snprintf(buf, size, "%s; never by samples per client", width);
    } else {
        snprintf(buf, size, "%s; samples/client <= %lld", width, (long long)be->samples);
    }
}

static void add_summary(table *t, const char *point, const estimate *e)
{
    int r = table_add_row(t), c = 0, K = e->n_clients;
    int64_t smin = K ? e->samples[0] : 0, smax = smin;
    double up = 0, down = 0, cf = 0, cff = 0;
    for (int k = 0; k < K; k++) {
        smin = e->samples[k] < smin ? e->samples[k] : smin;
        smax = e->samples[k] > smax ? e->samples[k] : smax;
        for (int kind = 0; kind < MPSL_MSG_KIND_COUNT; kind++) {
            up += (double)e->links[k].bytes[0][kind];
            down += (double)e->links[k].bytes[1][kind];
        }
        cf += e->client_flops[2 * k] + e->client_flops[2 * k + 1];
        cff += e->client_flops[2 * k];
    }
    int has_clients = strcmp(e->strategy, "centralized") != 0;
    char below[192];
    below_text(e, below, sizeof below);
    table_set(t, r, c++, point);
    table_set(t, r, c++, e->strategy);
    table_setf(t, r, c++, "%d", K);
    table_setf(t, r, c++, "%d", has_clients ? e->sampled : 0);
    table_setf(t, r, c++, "%lld", (long long)e->steps);
    table_setf(t, r, c++, "%lld", (long long)smin);
    table_setf(t, r, c++, "%lld", (long long)smax);
    table_setf(t, r, c++, "%lld", (long long)e->T);
    table_setf(t, r, c++, "%lld", (long long)e->D);
    table_setf(t, r, c++, "%lld", (long long)e->C);
    table_setf(t, r, c++, "%lld", (long long)e->client.params);
    table_setf(t, r, c++, "%lld", (long long)e->client.trainable);
    table_setf(t, r, c++, "%lld", (long long)e->server.params);
    table_setf(t, r, c++, "%lld", (long long)e->server.trainable);
    table_setf(t, r, c++, "%.15g", K ? up / K : 0);
    table_setf(t, r, c++, "%.15g", K ? down / K : 0);
    table_setf(t, r, c++, "%.17g", K ? cf / K : 0);
    table_setf(t, r, c++, "%.17g", K ? cff / K : 0);
    table_setf(t, r, c++, "%.17g", e->server_flops[0] + e->server_flops[1]);
    table_setf(t, r, c++, "%.17g", e->server_flops[0]);
    table_setf(t, r, c++, "%lld", (long long)e->client.activation_bytes);
    table_setf(t, r, c++, "%lld", (long long)e->server.activation_bytes);
    table_setf(t, r, c++, "%lld", (long long)e->be.fedavg_bytes);
    table_setf(t, r, c++, "%lld", (long long)e->be.mpsl_bytes);
    table_setf(t, r, c++, "%lld", (long long)e->be.samples);
    if (e->be.width_keys[0] && e->be.width_root > 0) {
        table_setf(t, r, c, "%.6g", e->be.width_root);
    }
    c++;
    table_set(t, r, c++, below);
}

static void add_comm(out_tables *o, const char *point, const estimate *e)
{
    int K = e->n_clients;
    for (int dir = 0; dir < 2; dir++) {
        for (int kind = 0; kind < MPSL_MSG_KIND_COUNT; kind++) {
            int64_t sum = 0, msgs = 0, lo = INT64_MAX, hi = 0;
            for (int k = 0; k < K; k++) {
                int64_t v = e->links[k].bytes[dir][kind], m = e->links[k].messages[dir][kind];
                sum += v;
                msgs += m;
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
                if (o->per_client && m > 0) { /* as the comm table: non-zero counters only */
                    int r = table_add_row(o->comm);
                    table_set(o->comm, r, 0, point);
                    table_setf(o->comm, r, 1, "%d", k);
                    table_set(o->comm, r, 2, directions[dir]);
                    table_set(o->comm, r, 3, message_kind_name(kind));
                    table_setf(o->comm, r, 4, "%lld", (long long)v);
                    table_setf(o->comm, r, 5, "%lld", (long long)m);
                }
            }
            if (o->per_client || msgs == 0) {
                continue;
            }
            int r = table_add_row(o->comm);
            table_set(o->comm, r, 0, point);
            table_set(o->comm, r, 1, directions[dir]);
            table_set(o->comm, r, 2, message_kind_name(kind));
            table_setf(o->comm, r, 3, "%.15g", (double)sum / K);
            table_setf(o->comm, r, 4, "%lld", (long long)lo);
            table_setf(o->comm, r, 5, "%lld", (long long)hi);
            table_setf(o->comm, r, 6, "%.15g", (double)msgs / K);
        }
    }
}

static void compute_row(table *t, const char *point, const char *party, int client, int pass,
                        double flops)
{
    int r = table_add_row(t);
    table_set(t, r, 0, point);
    table_set(t, r, 1, party);
    table_setf(t, r, 2, "%d", client);
    table_set(t, r, 3, passes[pass]);
    table_setf(t, r, 4, "%.17g", flops);
}

/* Per client (as the compute table: non-zero client rows; the server always), or the mean
 * over clients as client -1. */
static void add_compute(out_tables *o, const char *point, const estimate *e)
{
    int K = e->n_clients;
    for (int pass = 0; pass < 2; pass++) {
        double sum = 0;
        for (int k = 0; k < K; k++) {
            double f = e->client_flops[2 * k + pass];
            sum += f;
            if (o->per_client && f != 0) {
                compute_row(o->compute, point, "client", k, pass, f);
            }
        }
        if (!o->per_client && sum != 0) {
            compute_row(o->compute, point, "client", -1, pass, sum / K);
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        compute_row(o->compute, point, "server", -1, pass, e->server_flops[pass]);
    }
}

/* Estimate one experiment tree (owned) and add its rows. */
static int estimate_point(cfg_node *cfg, const char *label, const char *file, const char *dir,
                          out_tables *o, mpsl_error *err)
{
    experiment ex;
    int rc = experiment_build(cfg, file, dir, &ex, err);
    estimate e;
    memset(&e, 0, sizeof e);
    if (rc == MPSL_OK) {
        /* Costs follow from shapes, not values: model.weights is not read, so an estimate
         * needs no pretrained file and may --set another width than the file's. */
        ex.weights.path = NULL;
        rc = estimate_experiment(&ex, &e, err);
    }
    if (rc == MPSL_OK) {
        const char *point = label[0] ? label : ex.name;
        add_summary(o->summary, point, &e);
        add_comm(o, point, &e);
        add_compute(o, point, &e);
    }
    estimate_free(&e);
    experiment_free(&ex);
    if (rc != MPSL_OK && label[0]) {
        mpsl_err_prefix(err, "%s", label);
    }
    return rc;
}

/* The point, or one per shipped strategy with --all-strategies. cfg is owned. */
static int estimate_strategies(cfg_node *cfg, const char *label, int all, const char *file,
                               const char *dir, out_tables *o, mpsl_error *err)
{
    if (!all) {
        return estimate_point(cfg, label, file, dir, o, err);
    }
    int rc = MPSL_OK;
    for (size_t i = 0; i < MPSL_COUNT(all_strategies) && rc == MPSL_OK; i++) {
        cfg_node *one = cfg_clone(cfg);
        char set[64], name[640];
        snprintf(set, sizeof set, "strategy={plugin: %s}", all_strategies[i]);
        snprintf(name, sizeof name, "%s%sstrategy=%s", label, label[0] ? ", " : "",
                 all_strategies[i]);
        rc = one ? cfg_apply_override(one, set, err) : mpsl_errs(err, MPSL_ERR_NOMEM,
                                                                  "out of memory");
        if (rc == MPSL_OK) {
            rc = estimate_point(one, name, file, dir, o, err);
        } else {
            cfg_free(one);
        }
    }
    cfg_free(cfg);
    return rc;
}

static void print_tables(const out_tables *o, table_format format, const char *only)
{
    const table *ts[3] = {o->summary, o->comm, o->compute};
    const char *names[3] = {"summary", "comm", "compute"};
    const char *titles[3] = {"summary (per epoch; bytes and client FLOPs per client)",
                             "bytes per client per epoch, by direction and message kind",
                             "FLOPs per epoch, by party and pass"};
    if (format == TABLE_FORMAT_JSON && !only) {
        printf("{");
        for (int i = 0; i < 3; i++) {
            printf("%s\"%s\": ", i ? ", " : "", names[i]);
            table_print_json_array(ts[i], stdout);
        }
        printf("}\n");
        return;
    }
    int printed = 0;
    for (int i = 0; i < 3; i++) {
        if (only && strcmp(only, names[i]) != 0) {
            continue;
        }
        if (printed++) {
            printf("\n");
        }
        if (format == TABLE_FORMAT_TABLE) {
            printf("%s\n", titles[i]);
            if (i == 0) {
                table_print_transposed(ts[i], stdout);
                continue;
            }
        }
        table_print(ts[i], format, stdout);
    }
}

int cmd_estimate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"set", required_argument, NULL, 's'},   {"format", required_argument, NULL, 'f'},
        {"all-strategies", no_argument, NULL, 'a'}, {"per-client", no_argument, NULL, 'p'},
        {"table", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
        {"no-sweep", no_argument, NULL, 'n'},    {NULL, 0, NULL, 0},
    };
    const char *overrides[64], *only = NULL;
    int n_over = 0, all = 0, no_sweep = 0;
    out_tables o = {0};
    table_format format = TABLE_FORMAT_TABLE;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (n_over == 64) {
                fprintf(stderr, "mpsl estimate: at most 64 --set options\n");
                return 2;
            }
            overrides[n_over++] = optarg;
            break;
        case 'f':
            if (table_format_parse(optarg, &format) != 0) {
                fprintf(stderr, "mpsl estimate: unknown format '%s' (table, csv or json)\n",
                        optarg);
                return 2;
            }
            break;
        case 'a': all = 1; break;
        case 'n': no_sweep = 1; break;
        case 'p': o.per_client = 1; break;
        case 't':
            if (strcmp(optarg, "summary") && strcmp(optarg, "comm") && strcmp(optarg, "compute")) {
                fprintf(stderr, "mpsl estimate: unknown table '%s' (summary, comm or compute)\n",
                        optarg);
                return 2;
            }
            only = optarg;
            break;
        case 'h': fputs(estimate_usage, stdout); return 0;
        case ':':
            fprintf(stderr, "mpsl estimate: %s needs a value\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "mpsl estimate: unknown option '%s'\n%s", argv[optind - 1],
                    estimate_usage);
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "mpsl estimate: %s\n%s",
                optind == argc ? "which experiment file?" : "one experiment file at a time",
                estimate_usage);
        return 2;
    }
    const char *file = argv[optind];
    mpsl_error err = {{0}};
    char *dir = NULL;
    cfg_node *root = cli_load_experiment(file, &dir, &err);
    for (int i = 0; root && i < n_over; i++) {
        if (cfg_apply_override(root, overrides[i], &err) != MPSL_OK) {
            cfg_free(root);
            root = NULL;
        }
    }
    if (root && no_sweep) {
        cfg_remove(root, "sweep");
    }
    o.summary = table_create(summary_cols, (int)MPSL_COUNT(summary_cols));
    o.comm = o.per_client ? table_create(comm_client_cols, (int)MPSL_COUNT(comm_client_cols))
                          : table_create(comm_cols, (int)MPSL_COUNT(comm_cols));
    o.compute = table_create(compute_cols, (int)MPSL_COUNT(compute_cols));
    int rc = root && o.summary && o.comm && o.compute ? MPSL_OK : MPSL_ERR_INVALID;
    if (rc != MPSL_OK && root) {
        mpsl_err(&err, "out of memory");
    }
    if (rc == MPSL_OK && cfg_get(root, "sweep")) {
        sweep_point *pts = NULL;
        size_t total = 0;
        rc = sweep_expand(root, &pts, &total, &err);
        for (size_t i = 0; i < total && rc == MPSL_OK; i++) {
            cfg_node *one = cfg_clone(pts[i].cfg);
            rc = one ? estimate_strategies(one, pts[i].label, all, file, dir, &o, &err)
                     : mpsl_errs(&err, MPSL_ERR_NOMEM, "out of memory");
        }
        sweep_free_points(pts, total);
        cfg_free(root);
    } else if (rc == MPSL_OK) {
        rc = estimate_strategies(root, "", all, file, dir, &o, &err);
    } else {
        cfg_free(root);
    }
    if (rc == MPSL_OK) {
        print_tables(&o, format, only);
    } else {
        fprintf(stderr, "mpsl estimate: %s\n", err.msg);
    }
    table_destroy(o.summary);
    table_destroy(o.comm);
    table_destroy(o.compute);
    free(dir);
    return rc == MPSL_OK ? 0 : 1;
}
