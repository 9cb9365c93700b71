/* test_results_cli.c: `mpsl runs`, `show` and `compare` on a small database, in table, CSV
 * and JSON; their messages for bad input; and the example SQL of docs/results-schema.md
 * (given as argv[1]), each of which must run. */
#include "cli/cli.h"
#include <stdarg.h>

#include "results_test.h"

static const char *dir;
static char *db;

/* Three runs: a finished MPSL run whose name needs CSV quoting, a finished FedAvg run and
 * one still running. */
static void populate(void)
{
    mpsl_error err = {{0}};
    store *s = NULL;
    CHECK(store_open(db, STORE_READ_WRITE, &s, &err) == MPSL_OK);
    if (!s) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    const store_plugin_row plugins[] = {
        {"dataset", "mnist", "1.0.0", "/opt/mpsl/plugins/dataset_mnist.so", 1, 0},
        {"aggregation", "mpsl", "0.3.0", "/opt/mpsl/plugins/aggregation_mpsl.so", 1, 0},
    };
    const char *tags1[] = {"paper", "mnist", NULL};
    const char *tags2[] = {"paper", NULL};
    const char *method[2] = {"mpsl", "fedavg"};
    for (int r = 0; r < 2; r++) {
        store_run_info info = {
            .name = r == 0 ? "mnist, \"quoted\" run" : "mnist-fedavg",
            .experiment_path = "experiments/quickstart.yaml",
            .config_yaml = "experiment: quickstart\nseed: 42\ntrain:\n  epochs: 3\n",
            .seed = 42, .method = method[r], .dataset = "mnist", .revision = "v0.1-3-gabc",
            .mpsl_version = "0.1.0", .host = "lab1", .n_clients = 4, .plugins = plugins,
            .n_plugins = 2, .tags = r == 0 ? tags1 : tags2};
        int64_t id = 0;
        CHECK(store_run_begin(s, &info, &id, &err) == MPSL_OK);
        for (int e = 0; e < 3; e++) {
            CHECK(store_begin(s, &err) == MPSL_OK);
            double acc = (r == 0 ? 0.80 : 0.70) + 0.05 * e - (e == 2 ? 0.06 : 0);
            store_metric(s, id, e, "test_acc", acc, &err);
            store_metric(s, id, e, "test_loss", 1.0 / (e + 1), &err);
            store_metric(s, id, e, "train_loss", 1.2 / (e + 1), &err);
            store_metric(s, id, e, "epoch_seconds", 61.5, &err);
            store_metric(s, id, e, "peak_rss_bytes", 2.5e8, &err);
            for (int c = 0; c < 4; c++) {
                store_client_metric(s, id, e, c, "train_acc", 0.6 + 0.01 * c, &err);
                store_client_metric(s, id, e, c, "train_loss", 0.9, &err);
                store_comm(s, id, e, c, "up", r == 0 ? "activations" : "weights",
                           r == 0 ? 1500000 : 4000000, 10, &err);
                store_comm(s, id, e, c, "down", r == 0 ? "gradients" : "weights",
                           r == 0 ? 500000 : 4000000, 10, &err);
                store_compute(s, id, e, "client", c, "forward", 1.5e9, &err);
                store_compute(s, id, e, "client", c, "backward", 3e9, &err);
            }
            store_compute(s, id, e, "server", -1, "forward", r == 0 ? 2e10 : 0, &err);
            store_compute(s, id, e, "server", -1, "backward", r == 0 ? 4e10 : 0, &err);
            CHECK(store_commit(s, &err) == MPSL_OK);
        }
        for (int c = 0; c < 4; c++) {
            const int64_t hist[3] = {10 + c, c, 5};
            CHECK(store_client_data(s, id, c, 15 + 2 * c, hist, 3, &err) == MPSL_OK);
        }
        CHECK(store_run_end(s, id, "finished", NULL, 190.25, 262144000, &err) == MPSL_OK);
    }
    store_run_info running = {.name = "cifar-live", .method = "fedprox", .dataset = "cifar10",
                              .n_clients = 8, .config_yaml = "seed: 1\n"};
    int64_t id = 0;
    CHECK(store_run_begin(s, &running, &id, &err) == MPSL_OK);
    store_close(s);
}

typedef struct result {
    int rc;
    char *out, *err;
} result;

static result run(rt_verb verb, const char *a0, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, a0);
    for (const char *a = a0; a && argc < 31; a = va_arg(ap, const char *)) {
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    argv[argc] = NULL;
    result r;
    r.rc = rt_capture(dir, verb, &r.out, &r.err, argc, argv);
    return r;
}

static void done(result *r)
{
    free(r->out);
    free(r->err);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++) {
        n += *s == '\n';
    }
    return n;
}

static void test_runs(void)
{
    result r = run(cmd_runs, "runs", "--db", db, NULL);
    CHECK(r.rc == 0);
    CHECK_CONTAINS(r.out, "final_test_acc");
    CHECK_CONTAINS(r.out, "mnist-fedavg");
    CHECK_CONTAINS(r.out, "cifar-live");
    CHECK_CONTAINS(r.out, "3m 10s"); /* wall time in human units */
    CHECK(count_lines(r.out) == 4);
    done(&r);

    r = run(cmd_runs, "runs", "--db", db, "--status", "running", NULL);
    CHECK(r.rc == 0 && count_lines(r.out) == 2);
    CHECK_CONTAINS(r.out, "cifar-live");
    done(&r);
    r = run(cmd_runs, "runs", "--db", db, "--tag", "mnist", "--format", "csv", NULL);
    CHECK(r.rc == 0 && count_lines(r.out) == 2);
    CHECK_CONTAINS(r.out, "1,\"mnist, \"\"quoted\"\" run\",mpsl,mnist,4,finished,3,");
    done(&r);
    r = run(cmd_runs, "runs", "--db", db, "--tag", "paper", "--method", "fedavg", NULL);
    CHECK(r.rc == 0 && count_lines(r.out) == 2);
    done(&r);
    r = run(cmd_runs, "runs", "--db", db, "--name", "mnist*", "--dataset", "mnist", NULL);
    CHECK(r.rc == 0 && count_lines(r.out) == 3);
    done(&r);
    r = run(cmd_runs, "runs", "--db", db, "--limit", "1", "--format", "json", NULL);
    CHECK(r.rc == 0);
    CHECK(rt_json_valid(r.out));
    CHECK_CONTAINS(r.out, "\"id\": 3, \"name\": \"cifar-live\"");
    CHECK(!strstr(r.out, "mnist"));
    done(&r);
    r = run(cmd_runs, "runs", "--db", db, "--format", "json", NULL);
    CHECK(rt_json_valid(r.out));
    CHECK_CONTAINS(r.out, "\"name\": \"mnist, \\\"quoted\\\" run\"");
    CHECK_CONTAINS(r.out, "\"final_test_acc\": 0.84");
    CHECK_CONTAINS(r.out, "\"best_test_acc\": 0.85");
    CHECK_CONTAINS(r.out, "\"wall_seconds\": 190.25");
    CHECK_CONTAINS(r.out, "\"final_test_acc\": null"); /* the running run */
    done(&r);
    r = run(cmd_runs, "runs", "--db", db, "--status", "weird", NULL);
    CHECK(r.rc == 2);
    CHECK_CONTAINS(r.err, "unknown status 'weird'");
    done(&r);
    r = run(cmd_runs, "runs", "--db", db, "--status", "failed", NULL);
    CHECK(r.rc == 0);
    CHECK_CONTAINS(r.out, "(no runs in");
    done(&r);
    r = run(cmd_runs, "runs", "--bogus", NULL);
    CHECK(r.rc == 2);
    CHECK_CONTAINS(r.err, "mpsl runs: unknown option '--bogus'");
    done(&r);
    r = run(cmd_runs, "runs", "--limit", "zero", NULL);
    CHECK(r.rc == 2);
    CHECK_CONTAINS(r.err, "--limit wants a positive number");
    done(&r);
    r = run(cmd_runs, "runs", "--db", NULL);
    CHECK(r.rc == 2);
    CHECK_CONTAINS(r.err, "needs a value");
    done(&r);
    char *missing = rt_path(dir, "nowhere.db");
    r = run(cmd_runs, "runs", "--db", missing, NULL);
    CHECK(r.rc == 1);
    CHECK_CONTAINS(r.err, "no results database");
    CHECK(access(missing, F_OK) != 0); /* reading never creates */
    free(missing);
    done(&r);
}

static void test_show(void)
{
    result r = run(cmd_show, "show", "1", "--db", db, NULL);
    CHECK(r.rc == 0);
    CHECK_CONTAINS(r.out, "mnist, \"quoted\" run");
    CHECK_CONTAINS(r.out, "plugins:");
    CHECK_CONTAINS(r.out, "/opt/mpsl/plugins/aggregation_mpsl.so");
    CHECK_CONTAINS(r.out, "0.3.0");
    CHECK_CONTAINS(r.out, "\ntags: mnist, paper\n");
    CHECK_CONTAINS(r.out, "\nstatus                   finished\n"); /* no padding after */
    CHECK_CONTAINS(r.out, "epochs:");
    CHECK_CONTAINS(r.out, "epoch_seconds");
    CHECK_CONTAINS(r.out, "clients:");
    CHECK_CONTAINS(r.out, "[13,3,5]");
    CHECK_CONTAINS(r.out, "comm:");
    CHECK_CONTAINS(r.out, "activations");
    CHECK_CONTAINS(r.out, "4.5 MB");   /* bytes up per client over 3 epochs */
    CHECK_CONTAINS(r.out, "compute:");
    CHECK_CONTAINS(r.out, "18 GFLOP"); /* client backward, all clients */
    CHECK_CONTAINS(r.out, "config:\nexperiment: quickstart\nseed: 42\n");
    done(&r);

    r = run(cmd_show, "show", "--format", "json", "--db", db, "1", NULL);
    CHECK(r.rc == 0);
    CHECK(rt_json_valid(r.out));
    CHECK_CONTAINS(r.out, "\"run\": {\"id\": 1,");
    CHECK_CONTAINS(r.out, "\"tags\": [\"mnist\", \"paper\"]");
    CHECK_CONTAINS(r.out, "\"class_histogram\": [10,0,5]");
    CHECK_CONTAINS(r.out, "\"bytes_up_per_client\": 4500000");
    CHECK_CONTAINS(r.out, "\"seed\": 42");
    CHECK_CONTAINS(r.out, "\"config_yaml\": \"experiment: quickstart\\nseed: 42\\n");
    CHECK_CONTAINS(r.out, "\"direction\": \"up\", \"kind\": \"activations\", \"bytes\": 18000000");
    done(&r);

    r = run(cmd_show, "show", "2", "--db", db, "--format", "csv", NULL);
    CHECK(r.rc == 0);
    CHECK_CONTAINS(r.out, "# summary\nid,name,status");
    CHECK_CONTAINS(r.out, "# epochs\nepoch,test_acc,test_loss,train_loss,epoch_seconds,"
                          "peak_rss_bytes,bytes_up,bytes_down,client_flops,server_flops\n");
    CHECK_CONTAINS(r.out, "# config\nconfig_yaml\n\"experiment: quickstart\n");
    done(&r);
    r = run(cmd_show, "show", "2", "--db", db, "--format", "csv", "--section", "comm", NULL);
    CHECK(r.rc == 0);
    CHECK(r.out && !strcmp(r.out, "direction,kind,bytes,messages,clients,bytes_per_client\n"
                                  "up,weights,48000000,120,4,12000000\n"
                                  "down,weights,48000000,120,4,12000000\n"));
    done(&r);
    r = run(cmd_show, "show", "3", "--db", db, NULL); /* no figures yet */
    CHECK(r.rc == 0);
    CHECK_CONTAINS(r.out, "epochs: (none)");
    CHECK_CONTAINS(r.out, "running");
    done(&r);
    r = run(cmd_show, "show", "3", "--db", db, "--format", "json", NULL);
    CHECK(rt_json_valid(r.out));
    done(&r);

    r = run(cmd_show, "show", "42", "--db", db, NULL);
    CHECK(r.rc == 1);
    char want[512];
    snprintf(want, sizeof want, "mpsl show 42: no run 42 in %s", db);
    CHECK_CONTAINS(r.err, want);
    done(&r);
    r = run(cmd_show, "show", "abc", "--db", db, NULL);
    CHECK(r.rc == 2);
    CHECK_CONTAINS(r.err, "mpsl show abc: not a run id");
    done(&r);
    r = run(cmd_show, "show", NULL);
    CHECK(r.rc == 2);
    CHECK_CONTAINS(r.err, "which run?");
    done(&r);
    r = run(cmd_show, "show", "1", "--section", "nope", NULL);
    CHECK(r.rc == 2);
    done(&r);
}

static void test_compare(void)
{
    result r = run(cmd_compare, "compare", "1", "2", "--db", db, NULL);
    CHECK(r.rc == 0);
    CHECK_CONTAINS(r.out, "bytes_up_per_client");
    CHECK_CONTAINS(r.out, "4.5 MB");
    CHECK_CONTAINS(r.out, "12 MB");
    CHECK_CONTAINS(r.out, "54 GFLOP"); /* client FLOPs: 3 epochs x 4 clients x 4.5 GFLOP */
    CHECK_CONTAINS(r.out, "180 GFLOP"); /* server FLOPs of run 1 */
    CHECK_CONTAINS(r.out, "262 MB");    /* peak memory, 262144000 bytes */
    done(&r);
    r = run(cmd_compare, "compare", "--format", "csv", "--db", db, "2", "1", NULL);
    CHECK(r.rc == 0 && count_lines(r.out) == 3);
    /* seed and sweep follow n_clients (no sweep: empty) */
    CHECK_CONTAINS(r.out, "\n2,mnist-fedavg,fedavg,mnist,4,42,,finished,3,");
    CHECK_CONTAINS(r.out, ",12000000,12000000,54000000000,13500000000,0,190.25,262144000,,,,,local x1\n");
    done(&r);
    r = run(cmd_compare, "compare", "--format", "json", "--db", db, "1", "2", "3", NULL);
    CHECK(r.rc == 0);
    CHECK(rt_json_valid(r.out));
    CHECK_CONTAINS(r.out, "\"best_test_acc\": 0.85");
    CHECK_CONTAINS(r.out, "\"server_flops\": 180000000000");
    done(&r);
    r = run(cmd_compare, "compare", "--format", "json", "--metric", "test_loss", "--db", db,
            "1", NULL);
    CHECK_CONTAINS(r.out, "\"best_test_loss\": 0.3333333333333333, \"bytes_up_per_client\"");
    done(&r);
    r = run(cmd_compare, "compare", "1", "99", "--db", db, NULL);
    CHECK(r.rc == 1);
    CHECK_CONTAINS(r.err, "mpsl compare: no run 99 in");
    done(&r);
    r = run(cmd_compare, "compare", "1", "x2", "--db", db, NULL);
    CHECK(r.rc == 2);
    CHECK_CONTAINS(r.err, "'x2' is not a run id");
    done(&r);
    r = run(cmd_compare, "compare", "--format", "yaml", "1", NULL);
    CHECK(r.rc == 2);
    CHECK_CONTAINS(r.err, "unknown format 'yaml'");
    done(&r);
    /* a metric no selected run recorded is a usage error naming the ones they did */
    r = run(cmd_compare, "compare", "1", "2", "--metric", "test_acc_", "--db", db, NULL);
    CHECK(r.rc == 2 && r.out && !*r.out);
    CHECK_CONTAINS(r.err, "no selected run recorded a metric 'test_acc_' (did you mean "
                          "'test_acc'?); they recorded: ");
    CHECK_CONTAINS(r.err, "train_loss");
    done(&r);
    r = run(cmd_compare, "compare", "--db", db, NULL);
    CHECK(r.rc == 2);
    CHECK_CONTAINS(r.err, "which runs?");
    done(&r);
    r = run(cmd_compare, "compare", "--db", db, "--sweep", "last", NULL);
    CHECK(r.rc == 1);
    CHECK_CONTAINS(r.err, "--sweep last: no run in");
    done(&r);
    r = run(cmd_compare, "compare", "--db", db, "--sweep", "s1", NULL);
    CHECK(r.rc == 1);
    CHECK_CONTAINS(r.err, "no runs of sweep 's1'");
    done(&r);
    r = run(cmd_compare, "compare", "--db", db, "1", "--target", "high", NULL);
    CHECK(r.rc == 2);
    CHECK_CONTAINS(r.err, "--target 'high' is not a number");
    done(&r);
    r = run(cmd_compare, "compare", "--db", db, "1", "--target", "1", "--link-mbps", "0", NULL);
    CHECK(r.rc == 2);
    CHECK_CONTAINS(r.err, "--link-mbps '0': expected UP or UP,DOWN");
    done(&r);
    r = run(cmd_compare, "compare", "--db", db, "1", "--group-by", "methd", NULL);
    CHECK(r.rc == 2);
    CHECK_CONTAINS(r.err, "unknown key 'methd'");
    done(&r);
}

/* The number after "key": in JSON text (NAN when absent or null). */
static double json_field(const char *json, const char *key)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = json ? strstr(json, pat) : NULL;
    if (!p || strncmp(p + strlen(pat), "null", 4) == 0) {
        return NAN;
    }
    return strtod(p + strlen(pat), NULL);
}

/* Runs 1 and 2 (one dataset) as one group: mean, sample sd, 95% interval; the target. */
static void test_compare_groups(void)
{
    result r = run(cmd_compare, "compare", "--format", "json", "--group-by", "dataset", "--db",
                   db, "1", "2", NULL);
    CHECK(r.rc == 0 && rt_json_valid(r.out));
    CHECK_CONTAINS(r.out, "\"group\": \"dataset=mnist\", \"runs\": [1, 2], \"n\": 2");
    /* final test_acc: 0.84 and 0.74 */
    CHECK_CLOSE(json_field(r.out, "final_test_acc_mean"), 0.79, 1e-12);
    CHECK_CLOSE(json_field(r.out, "final_test_acc_sd"), sqrt(0.005), 1e-12);
    CHECK_CLOSE(json_field(r.out, "final_test_acc_ci95"), 12.7062047361747 * 0.05, 1e-9);
    CHECK(json_field(r.out, "final_test_acc_n") == 2);
    CHECK_CLOSE(json_field(r.out, "bytes_up_per_client_mean"), 8.25e6, 1e-12);
    done(&r);
    r = run(cmd_compare, "compare", "--group-by", "dataset", "--db", db, "1", "2", NULL);
    CHECK(r.rc == 0);
    CHECK_CONTAINS(r.out, "final_test_acc 95% CI");
    CHECK_CONTAINS(r.out, "0.79 ± 0.07071");
    CHECK_CONTAINS(r.out, "[0.1547, 1.425]");
    done(&r);
    /* groups of one run (and one without metrics): no sd, no interval, still a summary */
    r = run(cmd_compare, "compare", "--group-by", "strategy", "--db", db, "1", "2", "3", NULL);
    CHECK(r.rc == 0);
    CHECK_CONTAINS(r.out, "group                    strategy=mpsl  strategy=fedavg  strategy=fedprox\n");
    CHECK_CONTAINS(r.out, "final_test_acc           0.84           0.74             -\n");
    CHECK_CONTAINS(r.out, "final_test_acc 95% CI    -              -                -\n");
    done(&r);
    r = run(cmd_compare, "compare", "--group-by", "strategy", "--format", "json", "--db", db, "1",
            "3", NULL);
    CHECK(r.rc == 0 && rt_json_valid(r.out));
    CHECK_CLOSE(json_field(r.out, "final_test_acc_mean"), 0.84, 1e-12);
    CHECK_CONTAINS(r.out, "\"final_test_acc_sd\": null, \"final_test_acc_ci95\": null, "
                          "\"final_test_acc_n\": 1");
    CHECK_CONTAINS(r.out, "\"final_test_acc_mean\": null, \"final_test_acc_sd\": null, "
                          "\"final_test_acc_ci95\": null, \"final_test_acc_n\": 0");
    done(&r);
    /* target 0.85: run 1 reaches it after 2 epochs (123 s, 4 MB per client); run 2 never */
    r = run(cmd_compare, "compare", "--format", "json", "--target", "0.85", "--db", db, "1", "2",
            NULL);
    CHECK(r.rc == 0 && rt_json_valid(r.out));
    CHECK_CONTAINS(r.out, "\"epochs_to_target\": 2, \"seconds_to_target\": 123, "
                          "\"bytes_per_client_to_target\": 4000000, "
                          "\"est_comm_seconds_to_target\": 2.56");
    CHECK_CONTAINS(r.out, "\"epochs_to_target\": null, \"seconds_to_target\": null");
    done(&r);
    r = run(cmd_compare, "compare", "--target", "0.85", "--link-mbps", "100", "--db", db, "1",
            "2", NULL);
    CHECK(r.rc == 0);
    CHECK_CONTAINS(r.out, "target: test_acc >= 0.85; est. comm time at 100 Mbit/s up, "
                          "100 Mbit/s down per client");
    CHECK_CONTAINS(r.out, "not reached");
    CHECK_CONTAINS(r.out, "0.32 s"); /* 4 MB at 100 Mbit/s */
    done(&r);
    /* a loss target is reached at or below it: test_loss 1, 1/2, 1/3 */
    r = run(cmd_compare, "compare", "--format", "csv", "--metric", "test_loss", "--target", "0.5",
            "--group-by", "dataset", "--db", db, "1", "2", NULL);
    CHECK(r.rc == 0);
    CHECK_CONTAINS(r.out, "target_reached,epochs_to_target_mean,epochs_to_target_sd,"
                          "epochs_to_target_ci95,epochs_to_target_n,");
    CHECK_CONTAINS(r.out, ",local x1,2,2,0,0,2,123,0,0,2,");
    done(&r);
}

/* diff of runs stored with YAML only (as before schema 4): their configs converted. */
static void test_diff(void)
{
    /* runs 1 and 2 have one config; run 3 has only "seed: 1" */
    result r = run(cmd_diff, "diff", "1", "2", "--db", db, NULL);
    CHECK(r.rc == 0);
    CHECK_CONTAINS(r.out, "the 2 runs' configs are equal (--all lists them)");
    done(&r);
    r = run(cmd_diff, "diff", "1", "3", "--db", db, "--format", "csv", NULL);
    CHECK(r.rc == 0);
    CHECK(r.out && strcmp(r.out, "key,run 1,run 3\nexperiment,quickstart,\nseed,42,1\n"
                                 "train.epochs,3,\n") == 0);
    done(&r);
    r = run(cmd_diff, "diff", "1", "3", "--db", db, "--format", "json", NULL);
    CHECK(r.rc == 0 && rt_json_valid(r.out));
    CHECK_CONTAINS(r.out, "{\"key\": \"train.epochs\", \"run 1\": \"3\", \"run 3\": null}");
    done(&r);
    r = run(cmd_diff, "diff", "2", "--all", "--db", db, NULL);
    CHECK(r.rc == 0);
    CHECK_CONTAINS(r.out, "train.epochs  3\n");
    done(&r);
    r = run(cmd_diff, "diff", "1", "--db", db, NULL);
    CHECK(r.rc == 2);
    CHECK_CONTAINS(r.err, "give two or more run ids");
    done(&r);
    r = run(cmd_diff, "diff", "1", "9", "--db", db, NULL);
    CHECK(r.rc == 1);
    CHECK_CONTAINS(r.err, "mpsl diff: no run 9 in the database (");
    done(&r);
    r = run(cmd_diff, "diff", "1", "-2", "--db", db, NULL);
    CHECK(r.rc == 2);
    done(&r);
}

/* Every ```sql block of the schema document runs on this database. */
static void test_doc_queries(const char *doc_path)
{
    char *doc = rt_read_file(doc_path);
    CHECK(doc != NULL);
    if (!doc) {
        return;
    }
    sqlite3 *h = NULL;
    CHECK(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    int blocks = 0;
    for (char *p = strstr(doc, "```sql\n"); p; p = strstr(p, "```sql\n")) {
        p += 7;
        char *end = strstr(p, "```");
        if (!end) {
            break;
        }
        *end = '\0';
        const char *sql = p;
        while (sql && *sql) {
            sqlite3_stmt *st = NULL;
            const char *tail = NULL;
            int rc = sqlite3_prepare_v2(h, sql, -1, &st, &tail);
            if (rc != SQLITE_OK) {
                fprintf(stderr, "doc query failed: %s\n%s\n", sqlite3_errmsg(h), sql);
                CHECK(rc == SQLITE_OK);
                break;
            }
            if (st) {
                while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                }
                if (rc != SQLITE_DONE) {
                    fprintf(stderr, "doc query failed: %s\n%s\n", sqlite3_errmsg(h), sql);
                }
                CHECK(rc == SQLITE_DONE);
                blocks++;
            }
            sqlite3_finalize(st);
            sql = tail;
        }
        p = end + 3;
    }
    CHECK(blocks >= 4);
    sqlite3_close(h);
    free(doc);
}

int main(int argc, char **argv)
{
    char *tmp = rt_tmpdir();
    CHECK(tmp != NULL);
    if (!tmp) {
        return check_exit();
    }
    dir = tmp;
    db = rt_path(dir, "results.db");
    populate();
    test_runs();
    test_show();
    test_compare();
    test_compare_groups();
    test_diff();
    if (argc > 1) {
        test_doc_queries(argv[1]);
    }
    free(db);
    if (getenv("MPSL_TEST_KEEP")) { /* keep the database to look at by hand */
        fprintf(stderr, "kept %s\n", tmp);
    } else {
        rt_rmtree(tmp);
    }
    free(tmp);
    return check_exit();
}
